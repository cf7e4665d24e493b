"""The R-CNN stage with UGS: ``UGSShared2FCBBoxHead``, ``UGSStandardRoIHead`` and
``UGSCascadeRoIHead``, registered in mmdet's MODELS.

``UGSShared2FCBBoxHead`` (mmdet's ``Shared2FCBBoxHead`` otherwise):

* ``fc_reg`` outputs ``4 (n + 1)`` logits per RoI (``reg_class_agnostic=True``) or
  ``num_classes * 4 (n + 1)`` (class-specific; class c, delta k, grid point j at column
  ``(c * 4 + k) (n + 1) + j``);
* the regression targets are the R-CNN coder's own targets: for ``DeltaXYWHBBoxCoder`` the
  deltas of Eq. 1 divided by its stds (0.1, 0.1, 0.2, 0.2 in Faster R-CNN), which is what
  ``encode`` returns. They are signed and centred on 0, so they go on the symmetric IN grid
  unmapped; Table 7's best R-CNN grid is the default: alpha = 5, beta = 1.0, n = 5 (a
  positive RoI, IoU >= 0.5, has |dx| / 0.1 <= 2.5 and |dw| / 0.2 <= 3.5; anything beyond
  +-alpha is clamped by the grid);
* ``loss_ce`` (Eq. 10) + ``loss_um`` (lambda Eq. 12) replace the L1 / SmoothL1 loss: per side,
  weighted by mmdet's ``bbox_weights``, divided by the number of sampled RoIs (mmdet's
  ``avg_factor`` for ``loss_bbox``); the class-specific head is trained on the logits of the
  RoI's ground-truth class, as mmdet does;
* everything that decodes ``bbox_pred`` sees 4-d deltas: ``_predict_by_feat_single`` and
  ``regress_by_class`` (and through it Cascade R-CNN's ``refine_bboxes`` and
  ``_refine_roi``) first turn the logits into their expectation over the grid.

With mmdet's own ``StandardRoIHead`` / ``CascadeRoIHead`` the head trains with Eq. 10 + 12 but
without the refinement step (``ugs_um_raw`` is then only logged: its key holds no "loss").

``UGSStandardRoIHead`` (mmdet's ``StandardRoIHead`` otherwise) adds the refinement step of
Eq. 14-15 for the R-CNN stage: the levels ``P_i`` the RoI extractor reads are perturbed along
``d L_UM(R-CNN) / d P_i`` (the gradient flows back through RoIAlign; normalised per image and
level by :func:`ugs.refinement.refine_perturbation`), then RoI extraction and the regression
branch (shared FCs + ``fc_reg``) run again on the perturbed levels for the same sampled
positive RoIs with the same targets and normaliser (negatives have no regression loss);
``loss_ur = gamma * L^ur`` (``CE + lambda UM`` there, or ``UM`` with
``ur_objective="entropy"``). The options (gamma, rho, ...) are the bbox head's ``ugs``.
The step itself is :func:`rcnn_refinement_loss`, run for one stage by
``UGSRoIBBoxLossMixin._ugs_bbox_loss``.

``UGSCascadeRoIHead`` (mmdet's ``CascadeRoIHead`` otherwise) runs that same stage loss for
every stage of Cascade R-CNN: Eq. 10 + 12 on the stage's own coder deltas (its stds) and the
refinement step on the FPN levels its RoI extractor reads; the boxes passed from one stage to
the next are decoded from the stage's expected deltas (``regress_by_class`` above).
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

import torch
from mmdet.models.roi_heads.bbox_heads.convfc_bbox_head import Shared2FCBBoxHead
from mmdet.models.roi_heads.cascade_roi_head import CascadeRoIHead
from mmdet.models.roi_heads.standard_roi_head import StandardRoIHead
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi
from torch import Tensor

from ugs.refinement import refine_perturbation

from .rpn_head import UGSDeltaHeadOptions, delta_terms

#: Table 7's best R-CNN grid (alpha = 5, beta = 1.0, n = 5).
UGS_RCNN_DEFAULTS = dict(alpha=5.0, beta=1.0, n=5)


@MODELS.register_module()
class UGSShared2FCBBoxHead(UGSDeltaHeadOptions, Shared2FCBBoxHead):
    """R-CNN bbox head with UGS localization (see the module docstring).

    Args:
        ugs: UGS options: alpha, beta, n (defaults :data:`UGS_RCNN_DEFAULTS`, Table 7), lam,
            gamma, rho, refine_norm, ur_objective, loss_weight, refine_every (defaults as
            :data:`ugs.openmmlab.dense_ugs.UGS_DENSE_DEFAULTS`); gamma / rho / refine_norm /
            ur_objective are read by :class:`UGSStandardRoIHead`. ``mapping`` is not accepted.
        loss_bbox: must be left out (``None``): UGS is the regression loss.
        Other arguments: as ``Shared2FCBBoxHead``.
    """

    def __init__(self, *args, ugs: Optional[dict] = None, loss_bbox: Optional[dict] = None,
                 **kwargs) -> None:
        cfg = self._ugs_delta_cfg(ugs, kwargs)
        super().__init__(*args, **kwargs)
        self._ugs_delta_setup(cfg, loss_bbox)
        self.ugs_num_reg = 1 if self.reg_class_agnostic else self.num_classes
        if self.with_reg:
            # same predictor type and input as mmdet's, widened to one distribution per delta
            fc_reg = self.reg_predictor_cfg.copy()
            fc_reg.update(in_features=self.reg_last_dim, out_features=self.ugs_logit_dim)
            self.fc_reg = MODELS.build(fc_reg)

    @staticmethod
    def ugs_grid_defaults() -> dict:
        return UGS_RCNN_DEFAULTS

    # ---- forward --------------------------------------------------------------------------
    def forward(self, x: Tensor) -> tuple:
        """Class scores and regression logits ``(N, num_reg * 4 * (n + 1))``."""
        cls_score, bbox_pred = super().forward(x)
        return cls_score, (bbox_pred.float() if bbox_pred is not None else None)

    def forward_reg(self, x: Tensor) -> Tensor:
        """The regression branch alone on RoI features (shared convs / FCs, reg convs / FCs,
        ``fc_reg``), for the refinement pass."""
        for conv in self.shared_convs:
            x = conv(x)
        if self.num_shared_fcs > 0:
            if self.with_avg_pool:
                x = self.avg_pool(x)
            x = x.flatten(1)
            for fc in self.shared_fcs:
                x = self.relu(fc(x))
        for conv in self.reg_convs:
            x = conv(x)
        if x.dim() > 2:
            if self.with_avg_pool:
                x = self.avg_pool(x)
            x = x.flatten(1)
        for fc in self.reg_fcs:
            x = self.relu(fc(x))
        return self.fc_reg(x).float()

    # ---- decoding -------------------------------------------------------------------------
    @property
    def ugs_logit_dim(self) -> int:
        return self.ugs_num_reg * self.ugs_num_deltas * self.ugs_grid.num_bins

    def logits_to_deltas(self, bbox_pred: Tensor) -> Tensor:
        """``(N, num_reg D (n + 1))`` logits -> ``(N, num_reg D)`` expected deltas (the layout
        mmdet decodes; D = the coder's ``encode_size``). Deltas (``(N, num_reg D)``) pass
        through unchanged."""
        dims = self.ugs_num_deltas
        if bbox_pred.size(-1) == self.ugs_num_reg * dims:
            return bbox_pred
        if bbox_pred.size(-1) != self.ugs_logit_dim:
            raise ValueError(f"bbox_pred must have {self.ugs_logit_dim} logits (or "
                             f"{self.ugs_num_reg * dims} deltas) per RoI, got "
                             f"{tuple(bbox_pred.shape)}")
        bins = self.ugs_grid.num_bins
        logits = bbox_pred.reshape(bbox_pred.size(0), -1, dims, bins)
        return self.ugs_grid.decode(logits).reshape(bbox_pred.size(0), -1)

    def _predict_by_feat_single(self, roi: Tensor, cls_score: Tensor, bbox_pred: Tensor,
                                img_meta: dict, rescale: bool = False, rcnn_test_cfg=None):
        if bbox_pred is not None:
            bbox_pred = self.logits_to_deltas(bbox_pred)
        return super()._predict_by_feat_single(roi, cls_score, bbox_pred, img_meta,
                                               rescale=rescale, rcnn_test_cfg=rcnn_test_cfg)

    def regress_by_class(self, priors: Tensor, label: Tensor, bbox_pred: Tensor,
                         img_meta: dict) -> Tensor:
        return super().regress_by_class(priors, label, self.logits_to_deltas(bbox_pred),
                                        img_meta)

    # ---- losses ---------------------------------------------------------------------------
    def positive_inds(self, labels: Tensor) -> Tensor:
        return ((labels >= 0) & (labels < self.num_classes)).nonzero().squeeze(1)

    def ugs_pos_terms(self, pos_bbox_pred: Tensor, pos_labels: Tensor, pos_targets: Tensor,
                      pos_weights: Tensor, avg_factor: float) -> Tuple[Tensor, Tensor]:
        """Eq. 10 / 12 of the positive RoIs: ``pos_bbox_pred (P, num_reg 4 (n + 1))`` -> the
        distributions of the ground-truth class (class-specific) or the only ones (agnostic)
        against the coder deltas ``pos_targets (P, 4)``; summed and divided by
        ``avg_factor``."""
        bins = self.ugs_grid.num_bins
        logits = pos_bbox_pred.reshape(pos_bbox_pred.size(0), self.ugs_num_reg,
                                       self.ugs_num_deltas, bins)
        reg_index = torch.zeros_like(pos_labels) if self.reg_class_agnostic else pos_labels
        logits = logits[torch.arange(logits.size(0), device=logits.device), reg_index]
        return delta_terms(self.ugs_grid, logits, pos_targets, pos_weights, avg_factor)

    def loss(self, cls_score: Optional[Tensor], bbox_pred: Optional[Tensor], rois: Tensor,
             labels: Tensor, label_weights: Tensor, bbox_targets: Optional[Tensor],
             bbox_weights: Optional[Tensor], reduction_override: Optional[str] = None) -> dict:
        """mmdet's classification loss and accuracy; ``loss_ce`` / ``loss_um`` (weighted) and
        ``ugs_um_raw`` (unweighted L_UM, for Eq. 15) in place of ``loss_bbox``.
        ``reduction_override`` applies to the classification loss only (OHEM)."""
        losses = super().loss(cls_score, None, rois, labels, label_weights, bbox_targets,
                              bbox_weights, reduction_override=reduction_override)
        if bbox_pred is None or bbox_targets is None:
            return losses
        pos = self.positive_inds(labels)
        ce, um = self.ugs_pos_terms(bbox_pred[pos], labels[pos], bbox_targets[pos],
                                    bbox_weights[pos], avg_factor=bbox_targets.size(0))
        w = self.ugs_cfg["loss_weight"]
        losses.update(loss_ce=w * ce, loss_um=w * self.ugs_cfg["lam"] * um, ugs_um_raw=um)
        return losses


def rcnn_refinement_loss(um_raw: Tensor, levels: Sequence[Tensor],
                         reg_forward: Callable[[List[Tensor]], Tensor],
                         terms: Callable[[Tensor], Tuple[Tensor, Tensor]], ugs_cfg: dict
                         ) -> Tensor:
    """``gamma * L^ur`` for one R-CNN stage (Eq. 14-16).

    Args:
        um_raw: the stage's unweighted L_UM computed from ``levels`` (through RoIAlign).
        levels: the FPN levels the RoI extractor reads.
        reg_forward: perturbed levels -> regression output of the positive RoIs.
        terms: that output -> ``(CE, UM)`` against the clean pass's targets, normalised as
            there (:meth:`UGSShared2FCBBoxHead.ugs_pos_terms`).
        ugs_cfg: the bbox head's resolved ``ugs`` options.
    """
    levels = list(levels)
    deltas = refine_perturbation(um_raw, levels, ugs_cfg["rho"], norm=ugs_cfg["refine_norm"])
    ce, um = terms(reg_forward([f + d for f, d in zip(levels, deltas)]))
    if ugs_cfg["ur_objective"] == "entropy":
        ur = um
    else:
        ur = ugs_cfg["loss_weight"] * (ce + ugs_cfg["lam"] * um)
    return ugs_cfg["gamma"] * ur


def _reg_forward(extractor, bbox_head, x: Sequence[Tensor], rois: Tensor,
                 shared_head=None) -> Tensor:
    """RoI extraction and the regression branch only (for the refinement pass)."""
    bbox_feats = extractor(list(x)[:extractor.num_inputs], rois)
    if shared_head is not None:
        bbox_feats = shared_head(bbox_feats)
    return bbox_head.forward_reg(bbox_feats)


class UGSRoIBBoxLossMixin:
    """The bbox loss of one R-CNN stage with the refinement step, shared by
    :class:`UGSStandardRoIHead` (one stage) and :class:`UGSCascadeRoIHead` (every stage)."""

    def _ugs_bbox_loss(self, x: Tuple[Tensor], sampling_results, *, bbox_head, extractor,
                       bbox_forward: Callable[[Tuple[Tensor], Tensor], dict], rcnn_train_cfg,
                       shared_head=None, stage: int = 0) -> dict:
        """Forward, targets, Eq. 10 + 12 and (when gamma > 0) ``loss_ur`` of one stage.

        Returns mmdet's ``bbox_results`` (``cls_score``, ``bbox_pred``, ``bbox_feats``) with
        ``rois``, ``loss_bbox`` (the loss dict) and ``bbox_targets``, what both
        ``StandardRoIHead`` and ``CascadeRoIHead`` (``refine_bboxes``) read."""
        bh = bbox_head
        rois = bbox2roi([res.priors for res in sampling_results])
        bbox_results = bbox_forward(x, rois)
        targets = bh.get_targets(sampling_results, rcnn_train_cfg, concat=True)
        losses = bh.loss(bbox_results["cls_score"], bbox_results["bbox_pred"], rois, *targets)
        um_raw = losses.pop("ugs_um_raw")
        cfg = bh.ugs_cfg
        if cfg["gamma"] > 0 and self.training and um_raw.requires_grad:
            k = cfg.get("refine_every", 1)
            calls = self.__dict__.setdefault("_ugs_calls", {})
            calls[stage] = calls.get(stage, 0) + 1
            if (calls[stage] - 1) % k == 0:
                labels, _, t, w = targets
                pos = bh.positive_inds(labels)
                if pos.numel() == 0:      # L^ur is an empty sum
                    losses["loss_ur"] = um_raw * 0
                else:
                    levels = list(x)[:extractor.num_inputs]
                    losses["loss_ur"] = k * rcnn_refinement_loss(
                        um_raw, levels,
                        lambda lv: _reg_forward(extractor, bh, lv, rois[pos], shared_head),
                        lambda out: bh.ugs_pos_terms(out, labels[pos], t[pos], w[pos],
                                                     avg_factor=labels.numel()), cfg)
        bbox_results.update(rois=rois, loss_bbox=losses, bbox_targets=targets)
        return bbox_results


@MODELS.register_module()
class UGSStandardRoIHead(UGSRoIBBoxLossMixin, StandardRoIHead):
    """``StandardRoIHead`` whose bbox loss adds the R-CNN refinement step (module docstring).

    Works with any bbox head that has ``ugs_cfg``, ``forward_reg``, ``ugs_pos_terms`` and a
    ``loss`` returning ``ugs_um_raw`` (:class:`UGSShared2FCBBoxHead`); with another bbox head
    it is ``StandardRoIHead``. ``ugs.refine_every = k`` runs the step on every k-th training
    call only, with ``loss_ur`` weighted by k there (as the dense heads' mixin does).
    """

    def _bbox_reg_forward(self, x: Sequence[Tensor], rois: Tensor) -> Tensor:
        """RoI extraction and the regression branch only."""
        return _reg_forward(self.bbox_roi_extractor, self.bbox_head, x, rois,
                            self.shared_head if self.with_shared_head else None)

    def bbox_loss(self, x: Tuple[Tensor], sampling_results) -> dict:
        if not hasattr(self.bbox_head, "ugs_cfg"):
            return super().bbox_loss(x, sampling_results)
        return self._ugs_bbox_loss(
            x, sampling_results, bbox_head=self.bbox_head, extractor=self.bbox_roi_extractor,
            bbox_forward=self._bbox_forward, rcnn_train_cfg=self.train_cfg,
            shared_head=self.shared_head if self.with_shared_head else None)


@MODELS.register_module()
class UGSCascadeRoIHead(UGSRoIBBoxLossMixin, CascadeRoIHead):
    """``CascadeRoIHead`` whose every stage with a UGS bbox head trains with Eq. 16: CE + lambda
    UM on that stage's coder deltas and the refinement step (Eq. 14-15) on the FPN levels its
    RoI extractor reads, through RoIAlign, for that stage's sampled positive RoIs (the step
    of :class:`UGSStandardRoIHead`, run per stage). The losses are logged per stage
    (``s0.loss_ur``, ``s1.loss_ur``, ...) and, like every stage loss of ``CascadeRoIHead``,
    weighted by ``stage_loss_weights``.

    Between stages the boxes are refined by mmdet's ``refine_bboxes`` (training) and
    ``_refine_roi`` (inference); both go through the bbox head's ``regress_by_class``, which
    for :class:`UGSShared2FCBBoxHead` decodes the expectation over the grid first, so every
    stage's boxes come from the previous stage's expected deltas (one distribution per delta
    with ``reg_class_agnostic=True``, as stock Cascade R-CNN; the predicted class's with
    ``False``). Stages whose bbox head is not a UGS head train as in ``CascadeRoIHead``.
    """

    def bbox_loss(self, stage: int, x: Tuple[Tensor], sampling_results) -> dict:
        bh = self.bbox_head[stage]
        if not hasattr(bh, "ugs_cfg"):
            return super().bbox_loss(stage, x, sampling_results)
        return self._ugs_bbox_loss(
            x, sampling_results, bbox_head=bh, extractor=self.bbox_roi_extractor[stage],
            bbox_forward=lambda feats, rois: self._bbox_forward(stage, feats, rois),
            rcnn_train_cfg=self.train_cfg[stage], stage=stage)
