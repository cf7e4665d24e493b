"""One paper-profile training iteration (and one inference) per config, at full size.

    python benchmarks/paper_step.py --device cuda                       # every paper config
    python benchmarks/paper_step.py --device cuda --configs fcos/fcos_r50_fpn_ugs_1x_visdrone.py

For a GPU user before a multi-GPU job, and for the kit's GPU check: each config is built exactly
as ``python -m ugs.openmmlab.train CONFIG --profile paper`` merges it (the ImageNet weights are
not loaded: no download), one SGD step runs on the paper's per-GPU batch (4 images at the
paper's 1333x800, synthetic, 60 boxes each with a median side of 20 px), then one inference.
Prints one JSON line per config (losses finite, seconds, peak memory, or the error) and writes
them all to ``--out``. The CPU test ``tests/test_paper_profile_builds.py`` does the same on
tiny images.
"""
from __future__ import annotations

import argparse
import json
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


def all_configs():
    """Table 1's configs, the FCOS control, Table 6's rows and Table 4's configs: every config the
    README gives a paper command for (Table 7's points are options of the Faster R-CNN w/ UGS
    config). The H200 check of session 4 ran the 24 before Table 4's were added."""
    from ugs.ablation import TABLE6_CONFIGS

    extra = ["fcos/fcos_r50_fpn_grid_iou_1x_visdrone.py"]
    table4 = [f"table4/faster_rcnn_{r}_fpn{u}_1x_{d}.py" for d in ("voc0712", "coco") for r in ("r50", "r101")
              for u in ("", "_ugs")]
    return list(dict.fromkeys(DEFAULT + extra + [p.removeprefix("configs/") for p in TABLE6_CONFIGS.values()]
                              + table4))


def batch(model, n, h, w, boxes, device, seed=0):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    g = torch.Generator().manual_seed(seed)
    samples, imgs = [], []
    for _ in range(n):
        imgs.append(torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g))
        side = (20.0 * torch.exp(0.6 * torch.randn(boxes, generator=g))).clamp(4, 128)
        cx = torch.rand(boxes, generator=g) * (w - side) + side / 2
        cy = torch.rand(boxes, generator=g) * (h - side) + side / 2
        s = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1.0, 1.0)))
        s.gt_instances = InstanceData(bboxes=torch.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], 1),
                                      labels=torch.randint(0, 10, (boxes,), generator=g))
        s.ignored_instances = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
        samples.append(s)
    data = model.data_preprocessor(dict(inputs=imgs, data_samples=samples), True)
    return data["inputs"], data["data_samples"]


def step(config, device, n, h, w):
    from mmdet.registry import MODELS

    from ugs.openmmlab.train import build_config

    cfg = build_config(os.path.join(ROOT, "configs", config), profile="paper", work_dir="/tmp/paper_step", gpus=4)
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model).to(device)
    model.init_weights()
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=cfg.optim_wrapper.optimizer.lr, momentum=0.9)
    inputs, samples = batch(model, n, h, w, 60, device)
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
    out = dict(config=config, ok=bool(torch.isfinite(total)), loss=float(total), train_step_s=round(train_s, 3),
               losses={k: round(float(v), 4) for k, v in logged.items() if k.startswith("loss")},
               batch=f"{n}x3x{inputs.shape[-2]}x{inputs.shape[-1]}")
    model.eval()
    try:
        with torch.no_grad():
            out["detections"] = [len(p.pred_instances) for p in model.predict(inputs, samples, rescale=False)]
    except RuntimeError as exc:  # e.g. mmcv built without its CUDA nms
        out["predict_error"] = str(exc).strip()[:300]
    if device.startswith("cuda"):
        out["peak_memory_GB"] = round(torch.cuda.max_memory_allocated() / 2 ** 30, 2)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--configs", nargs="+", default=DEFAULT, help="paths under configs/")
    ap.add_argument("--all", action="store_true", help="every paper config (Table 1, the FCOS control, Table 6, Table 4)")
    ap.add_argument("--images", type=int, default=4, help="images per step (the paper: 16 over 4 GPUs)")
    ap.add_argument("--size", type=int, nargs=2, default=(800, 1333), metavar=("H", "W"))
    ap.add_argument("--out", default="outputs/benchmarks/paper_step.json")
    ap.add_argument("--pytorch-focal-loss", action="store_true",
                    help="mmcv without CUDA ops: the focal loss in PyTorch (benchmarks/torch_fallbacks.py)")
    ap.add_argument("--pytorch-ops", action="store_true",
                    help="mmcv without CUDA ops: focal loss, nms, RoIAlign and multi-scale deformable "
                         "attention in PyTorch / torchvision for CUDA tensors (benchmarks/torch_fallbacks.py)")
    args = ap.parse_args(argv)
    if args.pytorch_ops:
        from torch_fallbacks import use_pytorch_ops
        use_pytorch_ops()
    elif args.pytorch_focal_loss:
        from torch_fallbacks import use_pytorch_focal_loss
        use_pytorch_focal_loss()
    if args.all:
        args.configs = all_configs()
    from mmdet.utils import register_all_modules

    import ugs.openmmlab.runtime  # noqa: F401
    register_all_modules(init_default_scope=True)
    results = []
    for c in args.configs:
        try:
            r = step(c, args.device, args.images, *args.size)
        except Exception as exc:  # report and go on: one broken config must not hide the others
            r = dict(config=c, ok=False, error=f"{type(exc).__name__}: {exc}"[:600],
                     where=traceback.format_exc().strip().splitlines()[-3:])
        print(json.dumps(r), flush=True)
        results.append(r)
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(dict(device=torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu",
                       torch=torch.__version__, command="python benchmarks/paper_step.py " + " ".join(sys.argv[1:]),
                       fallbacks="pytorch-ops" if args.pytorch_ops else
                       ("pytorch-focal-loss" if args.pytorch_focal_loss else None),
                       results=results), f, indent=1)
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
