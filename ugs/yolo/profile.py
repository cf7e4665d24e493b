"""The quick profile of the TPH-YOLOv5 configs (the training tool's ``--profile quick``).

It changes the size of the run, never the method: the same architecture at YOLOv5's smallest
multipliers (depth 0.33, width 0.25), images at ``image_size`` (the Mosaic canvas, the affine
border, the test resize and letterbox, the validation batch shapes), 4 images per step with one
loader process, and what is tied to the run's length scaled to it:

* YOLOv5's nominal batch of 64 is dropped (``accumulative_counts`` 1): a run of a few dozen steps
  would otherwise make a handful of updates; the weight-decay scaling stays YOLOv5's;
* the warm-up covers the first tenth of the run (the paper recipe: 2 of 80 epochs, at least 1,000
  iterations), the cosine schedule spans the run;
* the EMA's ramp is 10 updates instead of 2,000, so the evaluated EMA weights follow a short run;
* the objectness gain is rescaled by ``(image_size / paper size)^2``, as YOLOv5 scales it;
* anchors missing from the config are fitted to the training set at ``image_size`` by
  TPH-YOLOv5's rule (:func:`fit_missing_anchors`, what its ``train.py`` does at start).

Standard library and :mod:`ugs.data.anchors` only at import.
"""
from __future__ import annotations

import os.path as osp

__all__ = ["apply_quick_profile_yolo", "fit_missing_anchors", "set_image_size", "paper_size", "QUICK_WIDTH",
           "QUICK_DEPTH", "QUICK_EMA_RAMP"]

QUICK_DEPTH, QUICK_WIDTH = 0.33, 0.25
QUICK_EMA_RAMP = 10


def _steps(pipeline):
    """Every transform of a pipeline, descending into ``pre_transform`` lists (Mosaic, MixUp)."""
    for step in pipeline:
        yield step
        yield from _steps(step.get("pre_transform", []))


def paper_size(cfg) -> int:
    """The training size of a TPH-YOLOv5 config (its Mosaic canvas)."""
    for step in _steps(cfg.train_dataloader.dataset.pipeline):
        if step["type"] == "Mosaic":
            return int(step["img_scale"][0])
    raise ValueError("the config's training pipeline has no Mosaic step to read its image size from")


def set_image_size(cfg, image_size: int) -> None:
    """Put ``image_size`` into every sizing step of a TPH-YOLOv5 config's loaders: the Mosaic
    canvas (also inside MixUp's), the affine border, the test resize and letterbox, and the
    validation batch shapes."""
    s = (image_size, image_size)
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        for step in _steps(loader.dataset.pipeline):
            if step["type"] == "Mosaic":
                step["img_scale"] = s
            elif step["type"] == "YOLOv5RandomAffine":
                step["border"] = (-image_size // 2, -image_size // 2)
            elif step["type"] in ("YOLOv5KeepRatioResize", "LetterResize"):
                step["scale"] = s
        if loader.dataset.get("batch_shapes_cfg"):
            loader.dataset.batch_shapes_cfg.img_size = image_size


def apply_quick_profile_yolo(cfg, image_size: int = 256, epochs: int = 4) -> None:
    """Shrink a TPH-YOLOv5 config (see the module docstring) in place."""
    paper = paper_size(cfg)
    m = cfg.model
    for part in (m.backbone, m.neck):
        part.update(deepen_factor=QUICK_DEPTH, widen_factor=QUICK_WIDTH)
    m.bbox_head.head_module.widen_factor = QUICK_WIDTH
    m.bbox_head.loss_obj.loss_weight *= (image_size / paper) ** 2
    from ugs.openmmlab.train import _quick_loaders    # the training tool's (standard library at import)

    _quick_loaders(cfg)                             # 4 images per step, one loader process per epoch
    set_image_size(cfg, image_size)
    cfg.optim_wrapper.accumulative_counts = 1
    cfg.optim_wrapper.optimizer.batch_size_per_gpu = 4
    hook = cfg.default_hooks.param_scheduler
    hook.update(max_epochs=epochs, warmup_epochs=0.1 * epochs, warmup_mim_iter=0)
    for h in cfg.get("custom_hooks") or []:
        if h.get("type") == "EMAHook":
            h["gamma"] = QUICK_EMA_RAMP
    cfg.train_cfg.update(max_epochs=epochs, val_interval=1)
    cfg.default_hooks.logger.interval = 10
    cfg.default_hooks.checkpoint.update(interval=1, max_keep_ckpts=2)


def fit_missing_anchors(cfg, image_size: int, seed: int = 0, log=print) -> None:
    """When the config has no anchors, fit them to its training set (``data_root`` +
    ``ann_file`` of the train loader) at ``image_size`` and put them into the config."""
    from ugs.data.anchors import box_sizes, fit_anchors

    prior = cfg.model.bbox_head.prior_generator
    if prior.get("base_sizes"):
        return
    ds = cfg.train_dataloader.dataset
    ann = osp.join(ds.data_root, ds.ann_file)
    wh, counts = box_sizes(ann, image_size)
    result = fit_anchors(wh, levels=len(prior.strides), per_level=cfg.model.bbox_head.head_module.num_base_priors,
                         anchor_t=cfg.model.bbox_head.prior_match_thr, seed=seed)
    prior.base_sizes = [[list(a) for a in level] for level in result["anchors"]]
    log(f"quick profile: anchors fitted to {ann} at {image_size} px ({counts['boxes']} boxes, BPR "
        f"{result['bpr']:.3f}): {result['anchors']}")
