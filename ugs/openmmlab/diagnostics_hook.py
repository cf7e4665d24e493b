"""mmengine hook recording the paper's gradient diagnostics during training (Figs. 1, 2, 5, 6).

Enable it in a config or with the training tool's ``--cfg-options``::

    custom_hooks = [dict(type='GradientDiagnosticsHook', epochs=[1, -1])]
    python -m ugs.openmmlab.train CONFIG --cfg-options \
        'custom_hooks=[{"type": "GradientDiagnosticsHook", "iters": [1, 2, 3]}]'

At each chosen iteration it retains the gradient of the training loss on the regression
features and, after the backward pass, computes with :mod:`ugs.diagnostics`:

* **maps** (Figs. 1, 5): the L2 norm over channels of that gradient per cell of each pyramid
  level. Dense heads (FCOS, GFL, ...: a ``reg_convs`` tower): the output of the last
  regression conv, the feature the regression layer reads. Two-stage detectors: the RPN's
  shared conv output (``rpn_conv``; its gradient is the whole RPN loss's, objectness included).
* **object gradients** (Fig. 2): per ground-truth box, the magnitudes summed inside it over
  all levels (``ugs.diagnostics.object_gradient_sums``), averaged per COCO size class (box
  area in the original image's pixels) per recorded iteration and per epoch.
* **anchor variance** (Fig. 6; detectors with an RPN): per positive anchor, the localization
  gradient in the RPN conv's feature space, ``W_a^T g_a`` with ``g_a`` the loss gradient at
  the anchor's slice of the regression output ``rpn_reg`` (only the localization loss reads
  that output: the proposals are detached); its norm is averaged per anchor-width bucket
  each recorded iteration, and the variance across the recorded iterations of that average
  is accumulated per bucket (Welford), with the pooled variance over all anchors beside it.
  A positive anchor is one whose slice has a non-zero gradient. For UGS the clean pass's
  output carries CE + lambda UM; the refinement term (Eq. 14-15) acts on a perturbed copy.

Results go to ``<work_dir>/gradient_diagnostics.json`` (rewritten after every epoch and at
the end); with ``save_maps > 0`` the maps of the first ``save_maps`` images of each recorded
iteration go to ``<work_dir>/gradient_maps/iter<N>_img<k>.npz`` (levels ``map_<i>``, each
cropped to the image, the boxes in network-input pixels, their object gradients and areas
in original-image pixels, the image path, its ``img_shape`` and whether the pipeline flipped
it: ``flip``, ``flip_direction``).
"""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ugs.diagnostics import (ANCHOR_WIDTH_EDGES, COCO_SIZES, BucketVariance,
                             anchor_feature_gradient_norms, bucket_means, coco_size_bucket,
                             gradient_magnitude, object_gradient_sums, width_bucket,
                             width_bucket_names)


def _finite_or_none(x):
    """``x`` with every non-finite float replaced by ``None`` (JSON has no NaN)."""
    if isinstance(x, dict):
        return {k: _finite_or_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite_or_none(v) for v in x]
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


class _Capture:
    """Forward hook keeping (and retaining the gradient of) the first ``n`` outputs."""

    def __init__(self, module, n: int) -> None:
        self.n = n
        self.outputs: List[torch.Tensor] = []
        self.handle = module.register_forward_hook(self)

    def __call__(self, module, inputs, output):
        if len(self.outputs) < self.n and torch.is_grad_enabled() and output.requires_grad:
            output.retain_grad()
            self.outputs.append(output)

    def grads(self, what: str) -> List[torch.Tensor]:
        if len(self.outputs) != self.n:
            raise RuntimeError(f"GradientDiagnosticsHook: captured {len(self.outputs)} {what} "
                               f"outputs, expected one per level ({self.n})")
        if all(o.grad is None for o in self.outputs):
            raise RuntimeError(f"GradientDiagnosticsHook: no gradient reached the {what} output "
                               "at any level (was the loss backpropagated?)")
        # a level the loss never read (e.g. no positive anchor on it) has a zero gradient
        return [o.grad.detach() if o.grad is not None else torch.zeros_like(o.detach())
                for o in self.outputs]

    def remove(self) -> None:
        self.handle.remove()
        self.outputs = []


@HOOKS.register_module()
class GradientDiagnosticsHook(Hook):
    """Gradient-magnitude maps, object gradients per size and anchor-gradient variance.

    Args:
        iters: global training iterations (1-based) to record.
        epochs: epochs (1-based; -1 = the last) whose every iteration is recorded.
        save_maps: save the maps of this many images per recorded iteration (0: none).
        anchor_width_edges: edges (pixels) of the anchor-width buckets (Fig. 6).
        offset: a cell's point on the image is ``(index + offset) * stride``.
        out: JSON file name inside the work dir.
    """

    priority = "LOW"

    def __init__(self, iters: Sequence[int] = (), epochs: Sequence[int] = (),
                 save_maps: int = 0, anchor_width_edges: Sequence[float] = ANCHOR_WIDTH_EDGES,
                 offset: float = 0.5, out: str = "gradient_diagnostics.json") -> None:
        if not iters and not epochs:
            raise ValueError("GradientDiagnosticsHook: give iters or epochs to record")
        bad = [i for i in iters if int(i) < 1]
        if bad:
            raise ValueError(f"GradientDiagnosticsHook: iters are 1-based, got {bad}")
        bad = [e for e in epochs if int(e) == 0 or int(e) < -1]
        if bad:
            raise ValueError(f"GradientDiagnosticsHook: epochs are 1-based or -1, got {bad}")
        self.iters = {int(i) for i in iters}
        self.epochs = {int(e) for e in epochs}
        self.save_maps = int(save_maps)
        self.edges = tuple(float(e) for e in anchor_width_edges)
        self.bucket_names = width_bucket_names(self.edges)
        self.offset = float(offset)
        self.out = out
        self._captures: dict = {}
        self.records: list = []
        self.by_epoch: dict = {}
        self.var_across = BucketVariance(self.bucket_names)
        self.var_pooled = BucketVariance(self.bucket_names)

    # ---- which iterations --------------------------------------------------------------
    def _active(self, runner) -> bool:
        epoch = runner.epoch + 1
        last = getattr(runner, "max_epochs", None)
        return (runner.iter + 1 in self.iters or epoch in self.epochs
                or (-1 in self.epochs and last is not None and epoch == last))

    @staticmethod
    def _model(runner):
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    # ---- capture -----------------------------------------------------------------------
    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._remove()
        if not self._active(runner):
            return
        model = self._model(runner)
        if hasattr(model, "rpn_head"):
            head = model.rpn_head
            n = head.prior_generator.num_levels
            self._captures = dict(map=_Capture(head.rpn_conv, n), anchor=_Capture(head.rpn_reg, n))
            self._head = head
        elif hasattr(getattr(model, "bbox_head", None), "reg_convs"):
            head = model.bbox_head
            if len(head.reg_convs) == 0:
                raise RuntimeError("GradientDiagnosticsHook: the head has no regression tower")
            self._captures = dict(map=_Capture(head.reg_convs[-1], head.prior_generator.num_levels))
            self._head = head
        else:
            raise RuntimeError(f"GradientDiagnosticsHook: {type(model).__name__} has neither an "
                               "rpn_head nor a bbox_head with reg_convs")

    def _remove(self) -> None:
        for c in self._captures.values():
            c.remove()
        self._captures = {}

    # ---- statistics --------------------------------------------------------------------
    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self._captures:
            return
        try:
            rec = dict(iter=runner.iter + 1, epoch=runner.epoch + 1)     # 1-based
            samples = data_batch["data_samples"]
            strides = [s[0] if isinstance(s, (tuple, list)) else s
                       for s in self._head.prior_generator.strides]
            grads = self._captures["map"].grads("regression-feature")
            mags = [gradient_magnitude(g) for g in grads]            # (B, H, W) per level
            rec["objects"] = self._objects(mags, strides, samples, runner, rec["iter"])
            if "anchor" in self._captures:
                rec["anchors"] = self._anchors(self._captures["anchor"].grads("rpn_reg"), mags)
            self.records.append(rec)
        finally:
            self._remove()

    def _objects(self, mags, strides, samples, runner, it: int) -> dict:
        values, buckets = [], []
        for b, sample in enumerate(samples):
            boxes = sample.gt_instances.bboxes
            boxes = boxes.tensor if hasattr(boxes, "tensor") else boxes
            boxes = boxes.detach().double().cpu()
            sums = torch.zeros(len(boxes), dtype=torch.float64)
            for mag, s in zip(mags, strides):
                sums += object_gradient_sums(mag[b], boxes, s, self.offset)
            sf = sample.metainfo.get("scale_factor", (1.0, 1.0))
            area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
                    / (float(sf[0]) * float(sf[1])))
            values.append(sums)
            buckets.append(coco_size_bucket(area))
            if b < self.save_maps:
                self._save_maps(runner, it, b, sample, mags, strides, boxes, sums, area)
        v = torch.cat(values) if values else torch.zeros(0, dtype=torch.float64)
        k = torch.cat(buckets) if buckets else torch.zeros(0, dtype=torch.long)
        means = bucket_means(v, k, len(COCO_SIZES))
        out = {}
        ep = self.by_epoch.setdefault(str(runner.epoch + 1), {n: [0.0, 0] for n in COCO_SIZES})
        for i, name in enumerate(COCO_SIZES):
            sel = v[k == i]
            out[name] = dict(mean=means[i], count=int(sel.numel()))
            ep[name][0] += float(sel.sum())
            ep[name][1] += int(sel.numel())
        return out

    def _save_maps(self, runner, it, b, sample, mags, strides, boxes, sums, area) -> None:
        d = osp.join(runner.work_dir, "gradient_maps")
        os.makedirs(d, exist_ok=True)
        h, w = sample.metainfo["img_shape"][:2]
        arrays = {f"map_{i}": m[b][: -(-h // s), : -(-w // s)].cpu().numpy()
                  for i, (m, s) in enumerate(zip(mags, strides))}
        np.savez(osp.join(d, f"iter{it}_img{b}.npz"), boxes=boxes.numpy(),
                 strides=np.asarray(strides, dtype=float),
                 img_path=str(sample.metainfo.get("img_path", "")),
                 img_shape=np.asarray([h, w]), object_sums=sums.numpy(),
                 flip=bool(sample.metainfo.get("flip", False)),
                 flip_direction=str(sample.metainfo.get("flip_direction") or ""),
                 object_areas=area.numpy(), **arrays)

    def _anchors(self, reg_grads, mags) -> dict:
        head = self._head
        sizes = [tuple(g.shape[-2:]) for g in reg_grads]
        priors = head.prior_generator.grid_priors(sizes, device=reg_grads[0].device)
        norms, active, widths = [], [], []
        for g, p in zip(reg_grads, priors):
            nrm, act = anchor_feature_gradient_norms(g, head.rpn_reg.weight,
                                                     head.num_base_priors)
            norms.append(nrm)
            active.append(act)
            widths.append((p[:, 2] - p[:, 0]).expand(g.shape[0], -1))
        norms, active, widths = (torch.cat(t, 1).reshape(-1) for t in (norms, active, widths))
        k = width_bucket(widths[active].double())
        vals = norms[active].double()
        means = bucket_means(vals, k, len(self.bucket_names))
        out = {}
        for i, name in enumerate(self.bucket_names):
            sel = vals[k == i]
            self.var_across.update(name, means[i])
            for x in sel.tolist():
                self.var_pooled.update(name, x)
            out[name] = dict(mean=means[i], count=int(sel.numel()))
        return out

    # ---- output ------------------------------------------------------------------------
    def summary(self) -> dict:
        by_epoch = {e: {n: dict(sum=s, count=c, mean=(s / c if c else None))
                        for n, (s, c) in d.items()} for e, d in self.by_epoch.items()}
        res = dict(sizes=list(COCO_SIZES), object_gradient_by_epoch=by_epoch,
                   iterations=self.records, offset=self.offset)
        if any("anchors" in r for r in self.records):
            res["anchor_width_edges"] = list(self.edges)
            res["anchor_buckets"] = self.bucket_names
            res["anchor_variance_across_iters"] = self.var_across.state()
            res["anchor_variance_pooled"] = self.var_pooled.state()
        return res

    def _write(self, runner) -> None:
        path = osp.join(runner.work_dir, self.out)
        os.makedirs(runner.work_dir, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(_finite_or_none(self.summary()), f, indent=1)

    def after_train_epoch(self, runner) -> None:
        self._write(runner)

    def after_train(self, runner) -> None:
        self._remove()
        self._write(runner)
