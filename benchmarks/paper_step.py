"""One paper-profile training iteration (and one inference) per config, at full size.

    python benchmarks/paper_step.py --device cuda                       # Table 1
    python benchmarks/paper_step.py --device cuda --all                 # Tables 1, 2, 3, 4, 6 and the control
    python benchmarks/paper_step.py --device cuda --tables 2 3 4        # groups: 1 control 2 3 4 6
    python benchmarks/paper_step.py --device cuda --configs fcos/fcos_r50_fpn_ugs_1x_visdrone.py
    python benchmarks/paper_step.py --device cuda --tables 3 --pytorch-ops --pytorch-rotated-ops
    python benchmarks/paper_step.py --device cuda --tables 3 --mmcv-cuda-ops .whl/mmcv-2.0.1.tar.gz
    python benchmarks/paper_step.py --device cpu --tables 2 3 --images 1 --size 256 256   # a CPU check

For a GPU user before a multi-GPU job, and for the kit's GPU check: each config is built exactly
as ``python -m ugs.openmmlab.train CONFIG --profile paper --gpus 4`` merges it (the ImageNet
weights are not loaded: no download), one optimizer step (the config's optimizer type: SGD,
Adam or AdamW, at its lr) runs on the paper's per-GPU batch of synthetic images at the
config's training size, then one inference (``predict``, no rescale):

* Tables 1, 4, 6 and the FCOS control (mmdet): 4 images of 800x1333, 60 boxes each (square,
  median side 20 px).
* Table 2 (TPH-YOLOv5 x, mmyolo): the config's per-GPU batch (4 at 640x640, 1 at 1536x1536),
  60 boxes each (median side 20 px, aspect ratios around 1) in mmyolo's ``bboxes_labels``
  format. The paper configs have no anchors (``ugs data anchors`` fits them on the data): here
  they are fitted, with the kit's rule (``ugs.data.anchors.fit_anchors``), on 4,000 boxes drawn
  from the same synthetic size distribution.
* Table 3 (mmrotate): the config's per-GPU batch (1) at its training resize (1200x1200), 60
  rotated boxes each (median side 20 px, angle uniform in le90), quadrilaterals for Oriented
  RepPoints (its pipeline keeps them).

``--images`` and ``--size H W`` override the batch and the image size of every table (small
values for a CPU check). Prints one JSON line per config (``table``, losses finite, seconds,
peak memory, or the error; one broken config does not stop the others) and writes them all to
``--out``. Without mmcv's CUDA ops: ``--pytorch-ops`` (benchmarks/torch_fallbacks.py) and, for
Table 3, ``--pytorch-rotated-ops`` (mmcv's CUDA-only rotated ops on CUDA tensors through the
kit's plain-PyTorch ``ugs.rotated_ops``; ``nms_rotated``, ``box_iou_rotated`` and
``RoIAlignRotated`` have no such version, so a config that needs them reports their error), or
``--mmcv-cuda-ops SRC`` (benchmarks/mmcv_cuda_ops.py builds some of mmcv's CUDA kernels from its
source release SRC, a tarball or folder; the ops installed are recorded). The CPU tests
``tests/test_paper_profile_builds.py``, ``tests/test_tph_yolo.py`` and
``tests/test_table3_configs.py`` build the same configs on tiny images;
``tests/test_paper_step.py`` checks this script's plumbing.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import inspect
import json
import logging
import math
import os
import sys
import time
import traceback

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

DEFAULT = ["fcos/fcos_r50_fpn_1x_visdrone.py", "fcos/fcos_r50_fpn_ugs_1x_visdrone.py",
           "gfl/gfl_r50_fpn_1x_visdrone.py", "gfl/gfl_r50_fpn_ugs_1x_visdrone.py",
           "faster_rcnn/faster_rcnn_r50_fpn_1x_visdrone.py", "faster_rcnn/faster_rcnn_r50_fpn_ugs_1x_visdrone.py",
           "cascade_rcnn/cascade_rcnn_r50_fpn_1x_visdrone.py", "cascade_rcnn/cascade_rcnn_r50_fpn_ugs_1x_visdrone.py",
           "dino/dino_5scale_r50_24e_visdrone.py", "dino/dino_5scale_r50_ugs_24e_visdrone.py"]
TABLES = ("1", "control", "6", "4", "2", "3")
BOXES = 60          # ground-truth boxes per image
MMDET_SIZE = (800, 1333)


def table_groups() -> dict:
    """Table -> its configs (paths under configs/), in the order ``--all`` runs them."""
    from ugs.ablation import TABLE6_CONFIGS

    return {
        "1": list(DEFAULT),
        "control": ["fcos/fcos_r50_fpn_grid_iou_1x_visdrone.py"],
        "6": [p.removeprefix("configs/") for p in TABLE6_CONFIGS.values()],
        "4": [f"table4/faster_rcnn_{r}_fpn{u}_1x_{d}.py" for d in ("voc0712", "coco") for r in ("r50", "r101")
              for u in ("", "_ugs")],
        "2": [f"tph_yolov5/tph_yolov5_x{u}_{s}_visdrone.py" for s in (640, 1536) for u in ("", "_ugs")],
        "3": [f"table3/{d}_r50_fpn{u}_1x_sodaa.py"
              for d in ("rotated_retinanet", "rotated_fcos", "oriented_reppoints", "oriented_rcnn")
              for u in ("", "_ugs")],
    }


def all_configs(tables=TABLES):
    """The configs of ``tables`` (default: all of them: Table 1, the FCOS control, Table 6, Table
    4, Table 2 and Table 3: every config the README gives a paper command for; Table 7's points
    are options of the Faster R-CNN w/ UGS config). The H200 check of session 4 ran the 24 of
    Tables 1 and 6 and the control."""
    groups = table_groups()
    unknown = [t for t in tables if t not in groups]
    if unknown:
        raise ValueError(f"unknown table(s) {unknown}; known: {', '.join(TABLES)}")
    return list(dict.fromkeys(c for t in TABLES if t in tables for c in groups[t]))


def table_of(config: str) -> str:
    return next((t for t, cs in table_groups().items() if config in cs), "?")


def kind_of(config: str) -> str:
    """Which stack builds the config: mmyolo (Table 2), mmrotate (Table 3) or mmdet."""
    if config.startswith("tph_yolov5/"):
        return "mmyolo"
    if config.startswith("table3/"):
        return "mmrotate"
    return "mmdet"


# ------------------------------------------------------------------------------ synthetic data

def _sides(n, g, aspect=0.0):
    """Box widths and heights: log-normal sides with a median of 20 px (4-128 px); ``aspect`` the
    spread of the log aspect ratio (0: squares)."""
    side = 20.0 * torch.exp(0.6 * torch.randn(n, generator=g))
    if not aspect:
        side = side.clamp(4, 128)
        return side, side
    r = torch.exp(aspect * torch.randn(n, generator=g))
    return (side * r.sqrt()).clamp(4, 128), (side / r.sqrt()).clamp(4, 128)


def _centres(w, h, W, H, g):
    return (torch.rand(len(w), generator=g) * (W - w) + w / 2, torch.rand(len(h), generator=g) * (H - h) + h / 2)


def batch(model, n, h, w, boxes, device, seed=0):
    """mmdet: ``n`` images of h x w with ``boxes`` square boxes each, through the model's data
    preprocessor."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    g = torch.Generator().manual_seed(seed)
    samples, imgs = [], []
    for _ in range(n):
        imgs.append(torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g))
        side, _ = _sides(boxes, g)
        cx, cy = _centres(side, side, w, h, g)
        s = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1.0, 1.0)))
        s.gt_instances = InstanceData(bboxes=torch.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], 1),
                                      labels=torch.randint(0, 10, (boxes,), generator=g))
        s.ignored_instances = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
        samples.append(s)
    data = model.data_preprocessor(dict(inputs=imgs, data_samples=samples), True)
    return data["inputs"], data["data_samples"]


def yolo_batch(model, n, h, w, boxes, seed=0):
    """mmyolo: the training batch as ``yolov5_collate`` gives it (stacked images, one
    ``bboxes_labels`` tensor of [image, label, x1, y1, x2, y2]) through the data preprocessor,
    and the inference batch (the same images, one DetDataSample each)."""
    import numpy as np
    from mmdet.structures import DetDataSample

    g = torch.Generator().manual_seed(seed)
    imgs, rows = [], []
    for i in range(n):
        imgs.append(torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g))
        bw, bh = _sides(boxes, g, aspect=0.5)
        cx, cy = _centres(bw, bh, w, h, g)
        rows.append(torch.stack([torch.full((boxes,), float(i)), torch.randint(0, 10, (boxes,), generator=g).float(),
                                 cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1))
    train = model.data_preprocessor(dict(inputs=torch.stack(imgs), data_samples=dict(bboxes_labels=torch.cat(rows))),
                                    True)
    samples = [DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1.0, 1.0),
                                           pad_param=np.zeros(4, np.float32))) for _ in range(n)]
    test = model.data_preprocessor(dict(inputs=imgs, data_samples=samples), False)
    return (train["inputs"], train["data_samples"]), (test["inputs"], test["data_samples"])


def rotated_batch(model, n, h, w, boxes, qbox, seed=0):
    """mmrotate: ``n`` images with ``boxes`` rotated boxes each (cx, cy, w, h, angle in le90's
    [-pi/2, pi/2)), as quadrilaterals when ``qbox``, through the data preprocessor."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    from mmrotate.structures.bbox import RotatedBoxes

    g = torch.Generator().manual_seed(seed)
    samples, imgs = [], []
    for i in range(n):
        imgs.append(torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g))
        bw, bh = _sides(boxes, g, aspect=0.5)
        reach = torch.sqrt(bw ** 2 + bh ** 2)                     # the rotated box stays inside
        cx, cy = _centres(reach, reach, w, h, g)
        angle = (torch.rand(boxes, generator=g) - 0.5) * math.pi
        gt = RotatedBoxes(torch.stack([cx, cy, bw, bh, angle], 1))
        empty = RotatedBoxes(torch.zeros(0, 5))
        if qbox:
            gt, empty = gt.convert_to("qbox"), empty.convert_to("qbox")
        s = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1.0, 1.0), img_id=i,
                                        img_path=f"synthetic_{i}.png"))
        s.gt_instances = InstanceData(bboxes=gt, labels=torch.randint(0, 9, (boxes,), generator=g))
        s.ignored_instances = InstanceData(bboxes=empty, labels=torch.zeros(0, dtype=torch.long))
        samples.append(s)
    data = model.data_preprocessor(dict(inputs=imgs, data_samples=samples), True)
    return data["inputs"], data["data_samples"]


@functools.lru_cache(maxsize=None)
def synthetic_anchors(seed=0, n=4000):
    """TPH-YOLOv5's 4 x 4 anchors fitted (the kit's k-means + genetic rule) on box sizes drawn
    like :func:`yolo_batch`'s."""
    from ugs.data.anchors import fit_anchors

    bw, bh = _sides(n, torch.Generator().manual_seed(seed), aspect=0.5)
    return fit_anchors(torch.stack([bw, bh], 1).double().numpy(), seed=seed)["anchors"]


# ---------------------------------------------------------------------------------- one config

def _pipeline_size(cfg):
    """(H, W) of a Table 3 config's training resize."""
    for t in cfg.train_dataloader.dataset.pipeline:
        if t.type.split(".")[-1] == "Resize" and "scale" in t:
            return int(t.scale[1]), int(t.scale[0])
    raise ValueError("no Resize with a scale in the training pipeline")


def _qbox(cfg):
    """Oriented RepPoints: its training pipeline keeps the quadrilaterals (no ConvertBoxType)."""
    return not any(t.type.split(".")[-1] == "ConvertBoxType" for t in cfg.train_dataloader.dataset.pipeline)


def full_batch_and_size(cfg, kind):
    """The paper's per-GPU batch (the merged config's, on 4 GPUs) and the training size (H, W):
    mmdet's 1333x800, TPH-YOLOv5's ``img_scale``, Table 3's training resize."""
    if kind == "mmyolo":
        size = tuple(int(v) for v in cfg.img_scale)[::-1]
    elif kind == "mmrotate":
        size = _pipeline_size(cfg)
    else:
        size = MMDET_SIZE
    return int(cfg.train_dataloader.batch_size), size


def make_optimizer(cfg, model):
    """torch's version of the config's optimizer type (SGD, Adam, AdamW) at the config's lr,
    momentum / betas and weight decay; SGD (momentum 0.9) for any other type."""
    o = cfg.optim_wrapper.optimizer
    kind, wd = str(o.get("type", "SGD")).split(".")[-1], float(o.get("weight_decay", 0.0))
    params = [p for p in model.parameters() if p.requires_grad]
    if kind in ("Adam", "AdamW"):
        return getattr(torch.optim, kind)(params, lr=o.lr, betas=tuple(o.get("betas", (0.9, 0.999))), weight_decay=wd)
    return torch.optim.SGD(params, lr=o.lr, momentum=float(o.get("momentum", 0.9)) if kind == "SGD" else 0.9,
                           weight_decay=wd if kind == "SGD" else 0.0)


def _registry_and_scope(kind):
    from mmengine.registry import DefaultScope

    if kind == "mmyolo":
        from mmyolo.registry import MODELS
    elif kind == "mmrotate":
        from mmrotate.registry import MODELS
    else:
        from mmdet.registry import MODELS
    return MODELS, DefaultScope.overwrite_default_scope(kind)


def step(config, device, n=None, h=None, w=None):
    """One training step and one inference of ``config`` (a path under configs/); ``n`` images
    (default: the config's per-GPU batch on 4 GPUs) of h x w (default: its training size)."""
    from ugs.openmmlab.train import build_config

    kind = kind_of(config)
    options = {}
    if kind == "mmyolo":
        options["model.bbox_head.prior_generator.base_sizes"] = synthetic_anchors()
    cfg = build_config(os.path.join(ROOT, "configs", config), profile="paper", work_dir="/tmp/paper_step", gpus=4,
                       options=options)
    full_n, (full_h, full_w) = full_batch_and_size(cfg, kind)
    n = n or full_n
    if h is None or w is None:
        h, w = full_h, full_w
    if "init_cfg" in cfg.model.backbone:
        cfg.model.backbone.init_cfg = None
    registry, scope = _registry_and_scope(kind)
    with scope:
        torch.manual_seed(0)
        model = registry.build(cfg.model).to(device)
        model.init_weights()
        model.train()
        opt = make_optimizer(cfg, model)
        if kind == "mmyolo":
            (inputs, samples), (test_inputs, test_samples) = yolo_batch(model, n, h, w, BOXES)
        elif kind == "mmrotate":
            inputs, samples = rotated_batch(model, n, h, w, BOXES, _qbox(cfg))
            test_inputs, test_samples = inputs, samples
        else:
            inputs, samples = batch(model, n, h, w, BOXES, device)
            test_inputs, test_samples = inputs, samples
        if device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        total, logged = model.parse_losses(model.loss(inputs, samples))
        opt.zero_grad()
        total.backward()
        opt.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        train_s = time.perf_counter() - t0
        out = dict(config=config, table=table_of(config), ok=bool(torch.isfinite(total)), loss=float(total),
                   train_step_s=round(train_s, 3),
                   losses={k: round(float(v), 4) for k, v in logged.items() if k.startswith("loss")},
                   batch=f"{n}x3x{inputs.shape[-2]}x{inputs.shape[-1]}", optimizer=type(opt).__name__)
        model.eval()
        try:
            with torch.no_grad():
                out["detections"] = [len(p.pred_instances)
                                     for p in model.predict(test_inputs, test_samples, rescale=False)]
        except Exception as exc:  # e.g. mmcv built without its CUDA nms / nms_rotated
            out["predict_error"] = f"{type(exc).__name__}: {exc}".strip()[:300]
    if device.startswith("cuda"):
        out["peak_memory_GB"] = round(torch.cuda.max_memory_allocated() / 2 ** 30, 2)
    return out


# ---------------------------------------------------------------------------- op replacements

def use_pytorch_rotated_ops() -> dict:
    """mmcv's CUDA-only rotated ops (those of ``ugs.rotated.cpu_ops.BINDINGS``) through the kit's
    plain-PyTorch versions (``ugs.rotated_ops``) for tensors on any device
    (``cpu_ops.install(every_device=True)``); a later ``cpu_ops.install()`` restores the CPU-only
    dispatch. Returns ``{op: [modules patched]}``."""
    importlib.import_module("ugs.rotated.runtime")   # mmrotate's modules imported, cpu_ops installed
    from ugs.rotated import cpu_ops

    return cpu_ops.install(every_device=True)


def install_mmcv_cuda_ops(src, build_dir):
    """``benchmarks/mmcv_cuda_ops.py``'s ``install(src, build_dir=...)`` (its default build folder
    when ``build_dir`` is None): the list of ops it installed."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        module = importlib.import_module("mmcv_cuda_ops")
    except ImportError as exc:
        raise RuntimeError(f"--mmcv-cuda-ops: benchmarks/mmcv_cuda_ops.py cannot be imported ({exc})") from exc
    install = getattr(module, "install", None)
    if install is None:
        raise RuntimeError("--mmcv-cuda-ops: benchmarks/mmcv_cuda_ops.py has no install(src, build_dir=...)")
    kwargs = {} if build_dir is None else dict(build_dir=build_dir)
    if "log" in inspect.signature(install).parameters:      # its build messages off stdout (the JSON lines)
        kwargs["log"] = functools.partial(print, file=sys.stderr, flush=True)
    return list(install(src, **kwargs))


# ------------------------------------------------------------------------------------------ CLI

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--configs", nargs="+", default=None, help="paths under configs/ (default: Table 1's)")
    ap.add_argument("--tables", nargs="+", choices=TABLES, help="the configs of these tables (groups)")
    ap.add_argument("--all", action="store_true",
                    help="every paper config (Table 1, the FCOS control, Tables 6, 4, 2 and 3)")
    ap.add_argument("--images", type=int, default=None,
                    help="images per step (default: the config's per-GPU batch on 4 GPUs: 4 for mmdet's "
                         "16, 4 / 1 for TPH-YOLOv5 at 640 / 1536, 1 for Table 3)")
    ap.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"),
                    help="image size of every config (default: its training size: 800x1333 for mmdet, "
                         "640 / 1536 square for TPH-YOLOv5, 1200x1200 for Table 3)")
    ap.add_argument("--out", default="outputs/benchmarks/paper_step.json")
    ap.add_argument("--pytorch-focal-loss", action="store_true",
                    help="mmcv without CUDA ops: the focal loss in PyTorch (benchmarks/torch_fallbacks.py)")
    ap.add_argument("--pytorch-ops", action="store_true",
                    help="mmcv without CUDA ops: focal loss, nms, RoIAlign and multi-scale deformable "
                         "attention in PyTorch / torchvision for CUDA tensors (benchmarks/torch_fallbacks.py)")
    ap.add_argument("--pytorch-rotated-ops", action="store_true",
                    help="mmcv without CUDA ops (Table 3): its CUDA-only rotated ops (diff_iou_rotated_2d, "
                         "convex_iou / giou, min_area_polygons, chamfer_distance) in the kit's PyTorch "
                         "(ugs.rotated_ops) on every device; nms_rotated, box_iou_rotated and RoIAlignRotated "
                         "stay mmcv's")
    ap.add_argument("--mmcv-cuda-ops", metavar="SRC",
                    help="build mmcv's CUDA kernels from its source release SRC (tarball or folder) and use them "
                         "(benchmarks/mmcv_cuda_ops.py install)")
    ap.add_argument("--mmcv-cuda-build-dir", default=None,
                    help="build folder for --mmcv-cuda-ops (default: mmcv_cuda_ops.py's)")
    args = ap.parse_args(argv)
    from mmengine.logging import MMLogger
    MMLogger.get_current_instance().setLevel(logging.WARNING)   # not every model's weight-init report
    if args.all and args.tables:
        ap.error("--all and --tables: give one")
    if args.configs is not None and (args.all or args.tables):
        ap.error("--configs and --all / --tables: give one")
    cuda_ops = None
    if args.mmcv_cuda_ops:                    # first: before anything binds mmcv's ops
        try:
            cuda_ops = install_mmcv_cuda_ops(args.mmcv_cuda_ops, args.mmcv_cuda_build_dir)
            print(json.dumps(dict(mmcv_cuda_ops=cuda_ops)), flush=True)
        except Exception as exc:  # report and go on: the fallbacks may still run the configs
            cuda_ops = dict(error=f"{type(exc).__name__}: {exc}"[:600])
            print(json.dumps(dict(mmcv_cuda_ops=cuda_ops)), file=sys.stderr, flush=True)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    if args.pytorch_ops:
        from torch_fallbacks import use_pytorch_ops
        use_pytorch_ops()
    elif args.pytorch_focal_loss:
        from torch_fallbacks import use_pytorch_focal_loss
        use_pytorch_focal_loss()
    configs = all_configs() if args.all else all_configs(args.tables) if args.tables else (args.configs or DEFAULT)
    kinds = {kind_of(c) for c in configs}
    from mmdet.utils import register_all_modules

    importlib.import_module("ugs.openmmlab.runtime")   # the kit's modules registered in mmdet
    register_all_modules(init_default_scope=True)
    if "mmyolo" in kinds:
        from mmyolo.utils import register_all_modules as register_mmyolo

        importlib.import_module("ugs.yolo.runtime")
        register_mmyolo(init_default_scope=False)
    if "mmrotate" in kinds or args.pytorch_rotated_ops:
        importlib.import_module("ugs.rotated.runtime")   # the collections shim first, then mmrotate
        from mmrotate.utils import register_all_modules as register_mmrotate
        register_mmrotate(init_default_scope=False)
    rotated_ops = use_pytorch_rotated_ops() if args.pytorch_rotated_ops else None
    h, w = args.size if args.size else (None, None)
    results = []
    for c in configs:
        try:
            r = step(c, args.device, args.images, h, w)
        except Exception as exc:  # report and go on: one broken config must not hide the others
            r = dict(config=c, table=table_of(c), ok=False, error=f"{type(exc).__name__}: {exc}"[:600],
                     where=traceback.format_exc().strip().splitlines()[-3:])
        print(json.dumps(r), flush=True)
        results.append(r)
        if args.device.startswith("cuda"):
            with contextlib.suppress(Exception):
                torch.cuda.empty_cache()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fallbacks = [name for name, on in (("pytorch-ops", args.pytorch_ops),
                                       ("pytorch-focal-loss", args.pytorch_focal_loss and not args.pytorch_ops),
                                       ("pytorch-rotated-ops", args.pytorch_rotated_ops)) if on]
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(dict(device=torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu",
                       torch=torch.__version__, command="python benchmarks/paper_step.py " + " ".join(sys.argv[1:]),
                       fallbacks=" + ".join(fallbacks) or None, mmcv_cuda_ops=cuda_ops,
                       pytorch_rotated_ops=rotated_ops, results=results), f, indent=1)
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
