"""Train and evaluate a kit config with mmengine, in the paper profile or the quick profile.

    python -m ugs.openmmlab.train configs/fcos/fcos_r50_fpn_ugs_1x_visdrone.py \
        --data-root data/visdrone --work-dir work_dirs/fcos_ugs                       # paper
    python -m ugs.openmmlab.train configs/fcos/fcos_r50_fpn_ugs_1x_visdrone.py \
        --profile quick --data-root data/synth --work-dir work_dirs/q --epochs 4      # CPU
    torchrun --nproc_per_node 4 -m ugs.openmmlab.train CONFIG --launcher pytorch --gpus 4 ...

The paper profile is the config as written (the paper's recipe). The quick profile changes
only the size of the run, never the method: ResNet-18 from scratch (no download), a 64-channel
FPN and head with 2 convs, images at ``image_size`` (default 256), 4 images per step, lr 0.01,
and the config's schedule compressed onto the short run so that most steps are at the base rate
(the config's own warm-up over the first tenth of the iterations, one x0.1 decay where the
config's last decay sits; see ``_quick_schedule``). Every run writes the fully merged config
(``merged_config.py``) into its work dir next to its checkpoints, logs and ``metrics.json``;
training shows progress and ETA in the log, resumes exactly with ``--resume``, and skips and
counts non-finite steps (``NonFiniteGuardOptimWrapper``).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import os.path as osp
import sys
from typing import Optional

PROFILES = ("paper", "quick")
#: the paper's images per optimizer step (Sec. 4.1.2: batch 16 over 4 GPUs); a config's own
#: ``paper_batch`` takes precedence (TPH-YOLOv5 at 1536: 4)
PAPER_BATCH = 16


def _load(config: str):
    from mmengine.config import Config

    if not osp.isfile(config):
        raise FileNotFoundError(f"config {config!r} does not exist")
    return Config.fromfile(config)


#: the quick profile's input normalisation (ImageNet's RGB statistics, the torchvision convention)
QUICK_MEAN, QUICK_STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)


def _quick_backbone() -> dict:
    """The quick profile's backbone: ResNet-18 from scratch, all four stages (no download)."""
    return dict(type="ResNet", depth=18, num_stages=4, out_indices=(0, 1, 2, 3),
                frozen_stages=-1, norm_cfg=dict(type="BN", requires_grad=True),
                norm_eval=False, style="pytorch", init_cfg=None)


def _quick_loaders(cfg) -> None:
    """4 images per step; one loader process, re-created (and re-seeded from the run's seed)
    every epoch: the augmentation draws of an epoch do not depend on what ran before, so a
    resumed run sees the same flips as an uninterrupted one."""
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.num_workers = 1
        loader.persistent_workers = False
    cfg.train_dataloader.batch_size = 4


#: mmdet's per-iteration warm-ups the quick profile keeps (type and factor), mapped to the
#: variants that accept fractional epochs (``ugs.openmmlab.schedulers``)
_WARMUPS = {"LinearLR": "EpochFractionLinearLR", "ConstantLR": "EpochFractionConstantLR"}
#: the share of the run the quick profile's warm-up takes: the paper profile's 500 warm-up
#: iterations are 10.3% of its 12 epochs x 405 iterations (VisDrone train, 16 per step)
QUICK_WARMUP_SHARE = 0.1


def _quick_schedule(cfg, epochs: int) -> None:
    """The config's schedule compressed onto a short run (``epochs``), most of it at the base
    rate: the config's own warm-up (its type and factor) over the first
    :data:`QUICK_WARMUP_SHARE` of the iterations, then the base rate, then one x0.1 decay at the
    fraction of the run where the config's *last* decay sits (11/12 for the 1x configs, 20/24
    for DINO). The config's earlier decay (8/12 in 1x) is dropped: it is made for a detector
    near its plateau, and in a run of a few hundred steps from scratch it would put a third of
    the steps at a tenth of the rate. All points are rounded to whole iterations. Logging every
    10 iterations, a checkpoint per epoch."""
    old_epochs = cfg.train_cfg.max_epochs
    schedule = []
    for sched in cfg.get("param_scheduler") or []:
        if not sched.get("by_epoch", True) and sched["type"] in _WARMUPS:
            warmup = {k: v for k, v in sched.items() if k not in ("_scope_", "begin", "end")}
            schedule.append(dict(warmup, type=_WARMUPS[sched["type"]], by_epoch=True,
                                 convert_to_iter_based=True, begin=0,
                                 end=round(epochs * QUICK_WARMUP_SHARE, 6)))
    steps = [s for s in cfg.get("param_scheduler") or []
             if s["type"] == "MultiStepLR" and s.get("by_epoch", True)]
    last = max((m for s in steps for m in s["milestones"]), default=None)
    if last is not None:
        schedule.append(dict(type="EpochFractionMultiStepLR", by_epoch=True,
                             convert_to_iter_based=True, begin=0, end=epochs, gamma=0.1,
                             milestones=[epochs * last / old_epochs]))
    cfg.param_scheduler = schedule
    cfg.train_cfg.max_epochs = epochs
    _follow_val_interval(cfg, old_epochs, epochs)
    cfg.default_hooks.logger.interval = 10
    cfg.default_hooks.checkpoint.update(interval=1, max_keep_ckpts=2)


def apply_quick_profile(cfg, image_size: int = 256, epochs: int = 4) -> None:
    """Shrink the run to CPU minutes; the detector head and its losses stay as configured."""
    m = cfg.model
    m.backbone = _quick_backbone()
    if cfg.get("default_scope") == "mmrotate":       # Table 3: mmdet's ResNet from mmrotate's scope
        m.backbone.type = "mmdet.ResNet"
    m.data_preprocessor.update(mean=list(QUICK_MEAN), std=list(QUICK_STD),
                               bgr_to_rgb=True)
    m.neck.update(in_channels=[64, 128, 256, 512], out_channels=64)
    if "rpn_head" in m:
        shrink_two_stage(m, channels=64, fc_channels=256)
    else:
        m.bbox_head.update(in_channels=64, feat_channels=64, stacked_convs=2)
        if "point_feat_channels" in m.bbox_head:      # (Oriented) RepPoints
            m.bbox_head.point_feat_channels = 64
        if "norm_cfg" in m.bbox_head or "FCOS" in m.bbox_head.type:
            m.bbox_head.norm_cfg = dict(type="GN", num_groups=16, requires_grad=True)
    _quick_loaders(cfg)
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        for leaf in leaf_datasets(loader.dataset):
            for step in leaf.pipeline:
                if step["type"].split(".")[-1] == "Resize":
                    step["scale"] = (image_size, image_size)
    _one_pass_per_epoch(cfg)
    cfg.optim_wrapper.optimizer.lr = 0.01
    _quick_schedule(cfg, epochs)


def _one_pass_per_epoch(cfg) -> None:
    """A ``RepeatDataset`` around the training set (mmdet's VOC recipe repeats VOC07+12 three
    times per epoch) repeats once in the quick profile: its ``--epochs`` count passes over the
    images, as in every other quick run."""
    ds = cfg.train_dataloader.dataset
    while "dataset" in ds or "datasets" in ds:
        if ds.get("type") == "RepeatDataset":
            ds.times = 1
        if "dataset" not in ds:
            break
        ds = ds.dataset


#: detector types that get :func:`apply_quick_profile_detr` instead of :func:`apply_quick_profile`
DETR_TYPES = ("DINO", "UGSDINO")


def apply_quick_profile_detr(cfg, image_size: int = 256, epochs: int = 4) -> None:
    """The quick profile of a DETR-style model (DINO): ResNet-18 from scratch (all four stages,
    so the level count stays the config's), the transformer at 256-d (mmdet 3.1's DINO
    decoder hard-codes a 128-feature sine encoding of the reference boxes, so 256 is the only
    width it builds with) but with 1 encoder and 2 decoder layers and 512-wide FFNs, 100 queries and up to 20 denoising queries, 4 images per step, the config's own
    DETR-style augmentation with every scale multiplied by ``image_size / 800`` (so images
    are at most ``image_size`` on the short side), and the config's optimizer (AdamW, lr kept,
    backbone lr not reduced: it is not pretrained) on the compressed schedule of
    :func:`_quick_schedule` (DINO's config has no warm-up; its decay at 20 of 24 epochs
    becomes one at 5/6 of the run). The head, its losses and the matcher stay as configured."""
    m = cfg.model
    m.backbone = _quick_backbone()
    m.neck.update(in_channels=[64, 128, 256, 512])
    dims, heads = 256, 8
    m.num_queries = 100
    m.encoder.num_layers = 1
    m.encoder.layer_cfg.self_attn_cfg.update(embed_dims=dims, num_heads=heads)
    m.encoder.layer_cfg.ffn_cfg.update(embed_dims=dims, feedforward_channels=512)
    m.decoder.num_layers = 2
    m.decoder.layer_cfg.self_attn_cfg.update(embed_dims=dims, num_heads=heads)
    m.decoder.layer_cfg.cross_attn_cfg.update(embed_dims=dims, num_heads=heads)
    m.decoder.layer_cfg.ffn_cfg.update(embed_dims=dims, feedforward_channels=512)
    m.positional_encoding.num_feats = dims // 2
    m.bbox_head.embed_dims = dims
    m.dn_cfg.group_cfg.num_dn_queries = 20
    _quick_loaders(cfg)
    scale_pipelines(cfg, image_size / 800)
    cfg.optim_wrapper.pop("paramwise_cfg", None)
    _quick_schedule(cfg, epochs)


def scale_pipelines(cfg, scale: float) -> None:
    """Multiply every image size of the train / val / test pipelines (``Resize``,
    ``RandomChoiceResize``, ``RandomCrop``, also inside ``RandomChoice`` branches) by ``scale``."""
    shrunk = set()  # loaders may share step objects (val and test): shrink each step once

    def shrink(steps):
        for step in steps:
            if id(step) in shrunk:
                continue
            shrunk.add(id(step))
            if isinstance(step, list):
                shrink(step)
            elif step["type"] == "RandomChoice":
                for branch in step["transforms"]:
                    shrink(branch)
            elif step["type"] in ("RandomChoiceResize", "Resize"):
                key = "scales" if "scales" in step else "scale"
                sizes = step[key] if key == "scales" else [step[key]]
                sizes = [tuple(max(1, round(v * scale)) for v in s) for s in sizes]
                step[key] = sizes if key == "scales" else sizes[0]
            elif step["type"] == "RandomCrop":
                step["crop_size"] = tuple(max(1, round(v * scale)) for v in step["crop_size"])

    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        for leaf in leaf_datasets(loader.dataset):
            shrink(leaf.pipeline)


def shrink_two_stage(model, channels: int, fc_channels: int) -> None:
    """Quick profile for a model with ``rpn_head`` / ``roi_head``: RPN and RoI extractor at the
    FPN's ``channels``, R-CNN FCs at ``fc_channels`` (sizes only; heads and losses unchanged)."""
    model.rpn_head.update(in_channels=channels, feat_channels=channels)
    roi = model.roi_head
    for key in ("bbox_roi_extractor", "bbox_head"):
        items = roi[key] if isinstance(roi[key], list) else [roi[key]]
        for item in items:
            if key == "bbox_roi_extractor":
                item.out_channels = channels
            else:
                item.update(in_channels=channels, fc_out_channels=fc_channels)


def set_max_per_img(cfg, max_per_img: int) -> None:
    """Detections kept per image (``test_cfg.rcnn`` for two-stage models) and evaluated."""
    test_cfg = cfg.model.test_cfg
    (test_cfg.rcnn if "rcnn" in test_cfg else test_cfg).max_per_img = max_per_img
    for name in ("val_evaluator", "test_evaluator"):
        if _is_kit_metric(cfg[name]):
            cfg[name].max_dets = max_per_img


def leaf_datasets(dataset) -> list:
    """The dataset configs that read files, inside a loader's ``dataset`` (through mmengine's
    ``RepeatDataset`` / ``ClassBalancedDataset`` (``dataset``) and ``ConcatDataset``
    (``datasets``) wrappers), in order."""
    if "datasets" in dataset:
        return [leaf for d in dataset.datasets for leaf in leaf_datasets(d)]
    if "dataset" in dataset:
        return leaf_datasets(dataset.dataset)
    return [dataset]


#: the annotation files of the kit's own layout (``ugs data visdrone`` / ``ugs data synth``)
KIT_ANN_FILES = ("annotations/train.json", "annotations/val.json")
#: the kit's metrics (their ``ann_file``, ``max_dets`` and ``outfile_dir`` are set here)
KIT_METRICS = ("VisDroneMetric", "CocoBoxMetric", "SODAAMetric")


def _is_kit_metric(evaluator) -> bool:
    """An evaluator config of one of :data:`KIT_METRICS`, with or without a registry scope
    (``mmdet.VisDroneMetric`` in an mmyolo config)."""
    return str(evaluator.get("type", "")).split(".")[-1] in KIT_METRICS


def set_data_root(cfg, data_root: str) -> None:
    """Point every loader and the evaluator at ``data_root``.

    * Configs in the kit's layout (Tables 1, 5-7: ``annotations/{train,val}.json``): images
      under the config's ``data_prefix``, or ``{train,val}/images`` of a synthetic set (a
      ``meta.json`` in ``data_root``).
    * Configs in a stock layout (Table 4: COCO 2017's ``annotations/instances_*.json``, or a
      ``VOCdevkit``): every dataset keeps its own files relative to ``data_root`` (the synthetic
      copies of ``ugs data synth-layouts`` have the same layout), the kit's evaluator reads
      ``data_root`` + the validation set's ``ann_file``."""
    data_root = osp.join(data_root, "")
    loaders = ((cfg.train_dataloader, "train"), (cfg.val_dataloader, "val"), (cfg.test_dataloader, "val"))
    leaves = [(leaf, split) for loader, split in loaders for leaf in leaf_datasets(loader.dataset)]
    if all(leaf.get("type") == "SODAACropDataset" for leaf, _ in leaves):
        _set_soda_a_root(cfg, data_root, [leaf for leaf, _ in leaves])
        return
    kit_layout = all(leaf.get("ann_file") in KIT_ANN_FILES for leaf, _ in leaves)
    synthetic = kit_layout and osp.isfile(osp.join(data_root, "meta.json"))
    for leaf, split in leaves:
        leaf.data_root = data_root
        if kit_layout:
            leaf.ann_file = f"annotations/{split}.json"
        if synthetic:
            leaf.data_prefix = dict(img=f"{split}/images/")
    val_ann = leaf_datasets(cfg.val_dataloader.dataset)[0].get("ann_file")
    for name in ("val_evaluator", "test_evaluator"):
        if _is_kit_metric(cfg[name]) and val_ann:
            cfg[name].ann_file = osp.join(data_root, val_ann)


def _set_soda_a_root(cfg, data_root: str, leaves) -> None:
    """SODA-A (Table 3): every crop set keeps its split (``crops/<split>/``) under ``data_root``,
    the evaluator reads ``converted/<split>.json`` of the evaluated split."""
    for leaf in leaves:
        split = osp.basename(osp.normpath(leaf.data_root))
        leaf.data_root = osp.join(data_root, "crops", split, "")
    split = osp.basename(osp.normpath(leaf_datasets(cfg.val_dataloader.dataset)[0].data_root))
    for name in ("val_evaluator", "test_evaluator"):
        if _is_kit_metric(cfg[name]):
            cfg[name].ann_file = osp.join(data_root, "converted", f"{split}.json")


def _follow_val_interval(cfg, old_epochs: int, epochs: int) -> None:
    """A config that evaluates once, after its last epoch (``val_interval == max_epochs``, Table
    3), still does so in a run of another length."""
    if cfg.train_cfg.get("val_interval") == old_epochs:
        cfg.train_cfg.val_interval = epochs


def scale_schedule(cfg, epochs: int) -> None:
    """Set ``max_epochs`` and move the by-epoch LR steps proportionally (8 and 11 of 12); a
    YOLOv5 parameter-scheduler hook's schedule is stretched to the new length."""
    old = cfg.train_cfg.max_epochs
    cfg.train_cfg.max_epochs = epochs
    _follow_val_interval(cfg, old, epochs)
    hook = cfg.get("default_hooks", {}).get("param_scheduler", {})
    if "max_epochs" in hook:        # mmyolo's YOLOv5ParamSchedulerHook: its cosine spans the run
        hook.max_epochs = epochs
    for sched in cfg.get("param_scheduler") or []:
        if sched.get("by_epoch", True) and "milestones" in sched:
            sched["milestones"] = sorted({max(1, math.floor(m * epochs / old))
                                          for m in sched["milestones"]})
            sched["end"] = epochs


def build_config(config: str, *, profile: str = "paper", data_root: Optional[str] = None,
                 work_dir: Optional[str] = None, epochs: Optional[int] = None, seed: int = 0,
                 gpus: int = 1, image_size: int = 256, max_per_img: Optional[int] = None,
                 launcher: str = "none", resume: bool = False, options: Optional[dict] = None):
    """The merged mmengine Config for one run (see the module docstring)."""
    import torch

    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    if gpus < 1:
        raise ValueError(f"gpus must be >= 1, got {gpus}")
    cfg = _load(config)
    if profile == "quick":
        if cfg.model.type == "YOLODetector":      # TPH-YOLOv5 (mmyolo): its own quick profile
            from ugs.yolo.profile import apply_quick_profile_yolo as quick
        elif cfg.model.type in DETR_TYPES:
            quick = apply_quick_profile_detr
        else:
            quick = apply_quick_profile
        quick(cfg, image_size=image_size, epochs=epochs or 4)
    else:
        total = int(cfg.get("paper_batch", PAPER_BATCH))     # a config may state its own (TPH-YOLOv5)
        if total % gpus:
            raise ValueError(f"gpus={gpus} does not divide the paper's batch of {total}")
        cfg.train_dataloader.batch_size = total // gpus
        optimizer = cfg.optim_wrapper.get("optimizer", {})
        if "batch_size_per_gpu" in optimizer:                # mmyolo's weight-decay scaling reads it
            optimizer.batch_size_per_gpu = total // gpus
    if epochs is not None and profile != "quick":
        scale_schedule(cfg, epochs)
    if data_root is not None:
        set_data_root(cfg, data_root)
    if profile == "quick" and cfg.model.type == "YOLODetector":
        from ugs.yolo.profile import fit_missing_anchors
        fit_missing_anchors(cfg, image_size, seed=seed)
    if max_per_img is not None:
        set_max_per_img(cfg, max_per_img)
    cfg.work_dir = work_dir or osp.join("work_dirs", osp.splitext(osp.basename(config))[0])
    for name in ("val_evaluator", "test_evaluator"):
        if _is_kit_metric(cfg[name]):
            cfg[name].outfile_dir = cfg.work_dir
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.launcher = launcher
    cfg.resume = resume
    if not torch.cuda.is_available():
        cfg.env_cfg.dist_cfg = dict(backend="gloo")
        if launcher != "none":
            # CPU DDP: device_ids must stay None (mmengine's default passes the local rank)
            cfg.model_wrapper_cfg = dict(type="MMDistributedDataParallel", device_ids=None,
                                         broadcast_buffers=False, find_unused_parameters=False)
    cfg.default_hooks.pop("visualization", None)
    if options:
        cfg.merge_from_dict(options)
    return cfg


def _memoize_config_formatting() -> None:
    """mmengine formats the whole config with yapf each time it logs, dumps or checkpoints it
    (six times in a one-epoch run, about 0.6 s each on the CPU), mostly the same text each time.
    The formatter's output is cached by its input, so the files written do not change."""
    from mmengine.config import config as config_module

    format_code = config_module.FormatCode
    if getattr(format_code, "memoized", False):
        return
    cache = {}

    def memoized(text, style_config=None, **kwargs):
        key = (text, repr(style_config), repr(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = format_code(text, style_config=style_config, **kwargs)
        return cache[key]

    memoized.memoized = True
    config_module.FormatCode = memoized


def run(cfg) -> dict:
    """Train (validating at the config's interval) and return the last ``metrics.json``."""
    from mmengine.runner import Runner

    import ugs.openmmlab.runtime  # noqa: F401  (registers the UGS modules)

    _memoize_config_formatting()
    from .fast_roi_align import install as fast_cpu_roi_align
    fast_cpu_roi_align()     # mmcv's RoIAlign numbers, faster on the CPU (ugs.openmmlab.fast_roi_align)

    import torch
    import torch.distributed as dist

    if cfg.launcher == "pytorch" and not torch.cuda.is_available() and not dist.is_initialized():
        # mmengine 0.10's pytorch launcher calls torch.cuda.set_device; on a CPU machine the
        # process group is opened here (gloo, torchrun's environment) and the Runner reuses it
        dist.init_process_group(backend="gloo")
    os.makedirs(cfg.work_dir, exist_ok=True)
    cfg.dump(osp.join(cfg.work_dir, "merged_config.py"))
    runner = Runner.from_cfg(cfg)
    runner.train()
    path = osp.join(cfg.work_dir, "metrics.json")
    metrics = {}
    if osp.isfile(path):
        with open(path, encoding="utf-8") as f:
            metrics = json.load(f)
    return dict(metrics=metrics, log_dir=runner.log_dir, work_dir=cfg.work_dir)


def read_scalars(log_dir: str) -> list:
    """The logged scalars (one dict per logged step) of a run, from mmengine's vis_data."""
    path = osp.join(log_dir, "vis_data", "scalars.json")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _parse_options(pairs):
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise SystemExit(f"--cfg-options: expected KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ugs.openmmlab.train",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("config")
    ap.add_argument("--profile", choices=PROFILES, default="paper")
    ap.add_argument("--data-root", help="folder with annotations/{train,val}.json and images")
    ap.add_argument("--work-dir")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gpus", type=int, default=int(os.environ.get("WORLD_SIZE", 1)))
    ap.add_argument("--image-size", type=int, default=256, help="quick profile only")
    ap.add_argument("--max-per-img", type=int, help="detections kept per image (and evaluated)")
    ap.add_argument("--resume", action="store_true", help="resume from the work dir's last checkpoint")
    ap.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    ap.add_argument("--cfg-options", nargs="+", metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        ap.error(f"--epochs must be >= 1, got {args.epochs}")
    if args.profile == "quick":  # CPU runs that repeat bit for bit across machines (ugs.reproducible)
        from ugs import reproducible
        print("quick profile, CPU settings: " + " ".join(f"{k}={v}" for k, v in reproducible.apply().items()),
              flush=True)
    cfg = build_config(args.config, profile=args.profile, data_root=args.data_root,
                       work_dir=args.work_dir, epochs=args.epochs, seed=args.seed, gpus=args.gpus,
                       image_size=args.image_size, max_per_img=args.max_per_img,
                       launcher=args.launcher, resume=args.resume,
                       options=_parse_options(args.cfg_options))
    result = run(cfg)
    import torch.distributed as dist

    distributed = dist.is_available() and dist.is_initialized()
    if distributed:
        # an explicit shutdown after a successful run: a process group left to interpreter
        # finalization can abort the process (gloo's worker threads, SIGABRT after training)
        dist.destroy_process_group()
    m = result["metrics"]
    if m:
        print("final: " + ", ".join(f"{k} {100 * m[k]:.1f}" for k in
                                    ("AP", "AP50", "AP75", "AP_s", "AP_m", "AP_l") if k in m))
    if distributed:
        # Even after the shutdown a 2-process CPU run aborted once more in interpreter
        # finalization ("terminate called without an active exception", SIGABRT, exit -6 after
        # "final:" was printed by both ranks: a C++ thread still joinable at exit). Everything
        # is written and closed by now (checkpoints, metrics.json, the logs, flushed below), so
        # a distributed run leaves without finalization and torchrun sees exit 0.
        import logging

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
