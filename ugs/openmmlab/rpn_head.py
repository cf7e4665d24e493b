"""Faster R-CNN's RPN with UGS: ``UGSRPNHead``, registered in mmdet's MODELS.

What changes against mmdet's ``RPNHead`` (and nothing else):

* the regression conv outputs ``num_base_priors * 4 * (n + 1)`` logits per location: one
  distribution over the UGS grid per anchor and per delta ``(dx, dy, dw, dh)``. The box coder,
  its ``encode_size`` (4) and mmdet's target buffers are untouched: the predictor is widened,
  not the coder;
* the regression targets are the coder's own targets, i.e. for ``DeltaXYWHBBoxCoder`` the
  anchor deltas of Eq. 1, ``((x - x_a) / w_a, (y - y_a) / h_a, log(w / w_a), log(h / h_a))``,
  minus the coder's means and divided by its stds (RPN configs use means 0, stds 1, so the
  targets are Eq. 1 itself). These deltas are already signed and centred on 0 (0 = the anchor
  fits), which is what the symmetric IN grid of Eq. 9 was made for, so they go on the grid
  as they are: no mapping (unlike the non-negative distances of FCOS / GFL). Table 7's best
  grid for the RPN is the default: alpha = 2, beta = 1.0, n = 10; deltas outside
  [-alpha, alpha] are clamped by the grid;
* the L1 loss is replaced by ``loss_ce`` (Eq. 10) + ``loss_um`` (lambda Eq. 12), per anchor
  side weighted by mmdet's ``bbox_weights`` and divided by the same ``avg_factor`` as the
  RPN's L1 loss (the number of sampled anchors), plus ``loss_ur`` (gamma L^ur, Eq. 14-15),
  the refinement step of :class:`ugs.openmmlab.dense_ugs.UGSDenseHeadMixin` on the FPN
  levels, by the mixin's "positives" route: the levels holding a positive anchor are
  perturbed along the gradient of L_UM and the regression branch (the shared 3x3 conv, ReLU
  and the regression conv) runs again on them, evaluated at the clean pass's positive
  anchors only, with the clean pass's targets (no second assignment or sampling);
* proposals are decoded from the expectation over the grid (Sec. 3.2.1), then mmdet's own
  ``bbox_coder.decode`` and NMS.

Inside a two-stage detector the losses are logged as ``loss_rpn_cls``, ``rpn_loss_ce``,
``rpn_loss_um`` and ``rpn_loss_ur`` (``TwoStageDetector`` prefixes ``rpn_``).

``TwoStageDetector`` calls ``loss_and_predict``, not ``loss``, and the mixin has no
``loss_and_predict``: here it runs the mixin's ``loss()`` inside a per-step context
(:meth:`UGSRPNHead._ugs_step`) that keeps the clean forward outputs, and decodes the proposals
from them (no second forward). The context also keeps the targets, so that a second
``loss_by_feat`` in the same step (the mixin's "rerun" route) reuses the anchors the
``RandomSampler`` drew instead of drawing new ones.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.dense_heads.rpn_head import RPNHead
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS
from torch import Tensor, nn

from ugs.grid import IntervalGrid
from ugs.rotated_coding import DeltaGrids

from .dense_ugs import UGSDenseHeadMixin, UGSPositives, conv2d_at, grid_terms, resolve_ugs_cfg

#: Table 7's best RPN grid (alpha = 2, beta = 1.0, n = 10) and Table 6's best row.
UGS_RPN_DEFAULTS = dict(alpha=2.0, beta=1.0, n=10)


def resolve_delta_ugs_cfg(ugs: Optional[dict], defaults: dict) -> dict:
    """UGS options for a head whose targets are box-coder deltas: ``defaults`` (grid) over
    the dense defaults, then ``ugs``; checked by :func:`resolve_ugs_cfg`. Deltas are signed and
    centred on 0, so they need no distance ``mapping``: passing one is an error."""
    ugs = dict(ugs or {})
    if "mapping" in ugs:
        raise ValueError("ugs.mapping does not apply to box-coder deltas (they are already "
                         "signed and centred on 0 and go on the grid unmapped); remove it")
    cfg = resolve_ugs_cfg({**defaults, **ugs})
    cfg.pop("mapping")
    return cfg


def check_delta_head(head, loss_bbox, encode_sizes=(4,)) -> None:
    """Shared argument checks of the UGS delta heads (RPN, R-CNN; the rotated heads allow the
    rotated coders' 5 and 6 deltas through ``encode_sizes``)."""
    if loss_bbox is not None:
        raise ValueError(f"{type(head).__name__}: UGS replaces the delta regression loss "
                         f"(Eq. 10 + 12 instead of L1 / SmoothL1); remove loss_bbox from the "
                         f"config")
    if head.reg_decoded_bbox:
        raise ValueError(f"{type(head).__name__}: reg_decoded_bbox=True regresses boxes, not "
                         f"deltas; UGS needs the coder's deltas")
    if head.bbox_coder.encode_size not in encode_sizes:
        raise ValueError(f"{type(head).__name__}: the bbox coder must encode "
                         f"{' or '.join(map(str, encode_sizes))} deltas per box, "
                         f"got encode_size={head.bbox_coder.encode_size}")


def delta_terms(grid, logits: Tensor, deltas: Tensor, weight: Optional[Tensor],
                avg_factor: float):
    """Eq. 10 / 12 on coder deltas ``(P, D)`` (no distance mapping): one grid for every delta
    (:class:`~ugs.IntervalGrid`, the axis-aligned heads) or one per delta
    (:class:`~ugs.rotated_coding.DeltaGrids`, the rotated heads)."""
    if isinstance(grid, DeltaGrids):
        return grid.terms(logits, deltas, weight, avg_factor)
    return grid_terms(grid, logits, deltas, weight, avg_factor)


class UGSDeltaHeadOptions:
    """The construction the UGS delta heads share (:class:`UGSRPNHead`,
    :class:`~ugs.openmmlab.roi_head.UGSShared2FCBBoxHead` and their rotated subclasses in
    ``ugs.rotated``): the ``ugs`` options over the head's grid defaults, the stock regression
    loss left out, one grid for the coder's deltas. A head calls :meth:`_ugs_delta_cfg` before
    the stock ``__init__`` and :meth:`_ugs_delta_setup` after it."""

    #: deltas per box the coder may encode (the rotated heads: 5 or 6)
    ugs_encode_sizes = (4,)
    #: the (never used) regression loss the stock ``__init__`` builds; ``None``: its default.
    #: A registry that cannot see mmdet's unscoped names (mmrotate's) needs a scoped one.
    ugs_unused_loss_bbox = None

    @staticmethod
    def ugs_grid_defaults() -> dict:
        raise NotImplementedError

    def build_ugs_grid(self, cfg: dict):
        """One :class:`~ugs.IntervalGrid` for every delta (a rotated head: one per delta)."""
        return IntervalGrid(cfg["alpha"], cfg["beta"], cfg["n"])

    @property
    def ugs_num_deltas(self) -> int:
        return self.bbox_coder.encode_size

    def _ugs_delta_cfg(self, ugs: Optional[dict], kwargs: dict) -> dict:
        """The resolved ``ugs`` options; puts the unused loss into the stock ``kwargs``."""
        if self.ugs_unused_loss_bbox is not None:
            kwargs["loss_bbox"] = self.ugs_unused_loss_bbox
        return resolve_delta_ugs_cfg(ugs, self.ugs_grid_defaults())

    def _ugs_delta_setup(self, cfg: dict, loss_bbox) -> None:
        check_delta_head(self, loss_bbox, self.ugs_encode_sizes)
        self.ugs_cfg = cfg
        self.ugs_grid = self.build_ugs_grid(cfg)


class UGSAnchorDeltaMixin(UGSDeltaHeadOptions, UGSDenseHeadMixin):
    """Eq. 10, 12 and 14-16 for an anchor head whose targets are box-coder deltas: the
    regression predictor outputs ``num_base_priors * D * (n + 1)`` logits per location (channel
    ``a D (n + 1) + k (n + 1) + j`` = anchor a, delta k, grid point j; D = the coder's
    ``encode_size``), decoded to the expectation over the grid before the head's own decoding.
    Shared by :class:`UGSRPNHead` and the rotated anchor heads (``ugs.rotated``). The
    constructor takes ``ugs`` and ``loss_bbox`` (:class:`UGSDeltaHeadOptions`) before the stock
    head's arguments; a head using it gives ``ugs_grid_defaults`` (and ``build_ugs_grid`` for
    one grid per delta, a :class:`~ugs.rotated_coding.DeltaGrids`), builds its regression
    predictor with ``ugs_num_bins`` in ``_init_layers``, and implements ``ugs_reg_predictor``
    (the last regression conv) and ``ugs_reg_features(x)`` (what that conv reads)."""

    #: the key of the classification loss in the loss dict
    ugs_cls_loss_key = "loss_cls"

    def __init__(self, *args, ugs: Optional[dict] = None, loss_bbox: Optional[dict] = None,
                 **kwargs) -> None:
        cfg = self._ugs_delta_cfg(ugs, kwargs)
        self.ugs_num_bins = cfg["n"] + 1          # read by _init_layers inside super()
        super().__init__(*args, **kwargs)
        self._ugs_delta_setup(cfg, loss_bbox)
        self._ugs_state: Optional[dict] = None

    def forward(self, x: Tuple[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
        outs = super().forward(x)
        if self._ugs_state is not None and "outs" not in self._ugs_state:
            self._ugs_state["outs"] = outs        # the clean pass, kept for the proposals
        return outs

    def forward_reg(self, x: Tensor, level: int) -> Tensor:
        """The regression branch alone, for Eq. 14-15."""
        return self.ugs_reg_predictor(self.ugs_reg_features(x)).float()

    def forward_reg_at(self, x: Tensor, image: Tensor, row: Tensor, col: Tensor,
                       anchor: Tensor) -> Tensor:
        """The regression branch on one level, evaluated only at the anchors
        ``(image, row, col, anchor)``: logits ``(P, D, n + 1)``, the same numbers as
        ``forward_reg`` there (up to float summation order)."""
        out = self.ugs_reg_predictor_at(x, image, row, col)
        out = out.float().reshape(-1, self.num_base_priors, self.ugs_num_deltas,
                                  self.ugs_grid.num_bins)
        return out[torch.arange(out.size(0), device=out.device), anchor]

    def ugs_reg_predictor_at(self, x: Tensor, image: Tensor, row: Tensor, col: Tensor
                             ) -> Tensor:
        """``ugs_reg_predictor(ugs_reg_features(x))[image, :, row, col]``, computed at the points
        only where the predictor allows it."""
        return conv2d_at(self.ugs_reg_predictor, self.ugs_reg_features(x), image, row, col)

    def ugs_perturbed_terms(self, levels: Dict[int, Tensor], positives: UGSPositives):
        """CE and UM (Eq. 10, 12) of the regression branch on the perturbed ``levels`` at the
        clean pass's positive anchors, with its targets, weights and ``avg_factor``."""
        d = positives.data
        logits = torch.cat([self.forward_reg_at(f, *positives.where[i], d["anchor"][i])
                            for i, f in sorted(levels.items())])
        return self.ugs_terms(logits, d["targets"], d["weights"], d["avg_factor"])

    @staticmethod
    def _swap_reg_outputs(outs, reg_maps):
        cls_scores, _ = outs
        return [c.detach() for c in cls_scores], reg_maps

    # ---- decoding -------------------------------------------------------------------------
    def logits_to_delta_maps(self, bbox_preds: List[Tensor]) -> List[Tensor]:
        """Per level ``(B, A D (n + 1), H, W)`` logits -> ``(B, A D, H, W)`` expected deltas
        (the layout mmdet decodes)."""
        out = []
        bins, dims = self.ugs_grid.num_bins, self.ugs_num_deltas
        for p in bbox_preds:
            b, c, h, w = p.shape
            logits = p.reshape(b, c // (dims * bins), dims, bins, h, w).permute(0, 1, 4, 5, 2, 3)
            out.append(self.ugs_grid.decode(logits).permute(0, 1, 4, 2, 3).reshape(b, -1, h, w))
        return out

    def predict_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                        score_factors=None, **kwargs):
        """Expected deltas, then the head's own decoding and NMS."""
        return super().predict_by_feat(cls_scores, self.logits_to_delta_maps(bbox_preds),
                                       score_factors, **kwargs)

    # ---- losses ---------------------------------------------------------------------------
    def ugs_terms(self, logits: Tensor, deltas: Tensor, weight: Optional[Tensor],
                  avg_factor: float):
        """Eq. 10 / 12 on coder deltas (no distance mapping)."""
        return delta_terms(self.ugs_grid, logits, deltas, weight, avg_factor)

    @contextmanager
    def _ugs_step(self):
        """One training step: the first ``forward`` and the first target assignment are kept
        and reused (by ``loss_and_predict`` and by the refinement pass)."""
        outer = self._ugs_state
        self._ugs_state = {}
        try:
            yield self._ugs_state
        finally:
            self._ugs_state = outer

    def _targets(self, cls_scores, batch_gt_instances, batch_img_metas,
                 batch_gt_instances_ignore):
        state = self._ugs_state
        if state is not None and "targets" in state:
            return state["targets"]
        featmap_sizes = [featmap.size()[-2:] for featmap in cls_scores]
        assert len(featmap_sizes) == self.prior_generator.num_levels
        anchor_list, valid_flag_list = self.get_anchors(featmap_sizes, batch_img_metas,
                                                        device=cls_scores[0].device)
        targets = self.get_targets(anchor_list, valid_flag_list, batch_gt_instances,
                                   batch_img_metas,
                                   batch_gt_instances_ignore=batch_gt_instances_ignore)
        if state is not None:
            state["targets"] = targets
        return targets

    def loss_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                     batch_gt_instances, batch_img_metas,
                     batch_gt_instances_ignore=None) -> Dict[str, Tensor]:
        """The head's classification loss (per level, as mmdet's ``AnchorHead``) and Eq. 10 / 12
        in place of the delta regression loss."""
        (labels_list, label_weights_list, bbox_targets_list, bbox_weights_list,
         avg_factor) = self._targets(cls_scores, batch_gt_instances, batch_img_metas,
                                     batch_gt_instances_ignore)
        losses_cls = [
            self.loss_cls(c.permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels),
                          l.reshape(-1), w.reshape(-1), avg_factor=avg_factor)
            for c, l, w in zip(cls_scores, labels_list, label_weights_list)]
        bins, num_anchors, dims = self.ugs_grid.num_bins, self.num_base_priors, self.ugs_num_deltas
        # the positive anchors level by level: (image, row, col, anchor), logits, targets
        where, anchor = {}, {}
        logits = [bbox_preds[0].reshape(-1)[:0].reshape(0, dims, bins)]  # keeps the graph if empty
        targets, weights = [], []
        for level, (p, t, w) in enumerate(zip(bbox_preds, bbox_targets_list, bbox_weights_list)):
            b, _, h, wd = p.shape
            image, idx = (w > 0).any(-1).nonzero(as_tuple=True)          # t, w: (B, H W A, D)
            if image.numel() == 0:
                continue
            a, loc = idx % num_anchors, idx // num_anchors               # mmdet's (h, w, a) order
            row, col = loc // wd, loc % wd
            where[level], anchor[level] = (image, row, col), a
            logits.append(p.reshape(b, num_anchors, dims, bins, h, wd)[image, a, :, :, row, col])
            targets.append(t[image, idx])
            weights.append(w[image, idx])
        logits = torch.cat(logits)
        targets = torch.cat(targets) if targets else logits.new_zeros(0, dims)
        weights = torch.cat(weights) if weights else logits.new_zeros(0, dims)
        ce, um = self.ugs_terms(logits, targets, weights, avg_factor)
        losses = {self.ugs_cls_loss_key: losses_cls}
        losses.update(self.ugs_loss_dict(ce, um))
        losses["ugs_positives"] = UGSPositives(
            where=where, data=dict(anchor=anchor, targets=targets, weights=weights,
                                   avg_factor=avg_factor))
        return losses

    def loss(self, x: Tuple[Tensor], batch_data_samples) -> dict:
        """The mixin's losses (Eq. 10, 12, 14-16) with one target assignment per step."""
        with self._ugs_step():
            return UGSDenseHeadMixin.loss(self, x, batch_data_samples)


@MODELS.register_module()
class UGSRPNHead(UGSAnchorDeltaMixin, RPNHead):
    """RPN head with UGS localization (see the module docstring).

    Args:
        ugs: UGS options: alpha, beta, n (defaults :data:`UGS_RPN_DEFAULTS`, Table 7), lam,
            gamma, rho, refine_norm, ur_objective, loss_weight, refine_every (defaults as
            :data:`ugs.openmmlab.dense_ugs.UGS_DENSE_DEFAULTS`; ``loss_weight`` takes the L1
            loss's place). ``mapping`` is not accepted (deltas need none).
        loss_bbox: must be left out (``None``): UGS is the regression loss.
        Other arguments: as ``RPNHead``.
    """

    ugs_cls_loss_key = "loss_rpn_cls"

    @staticmethod
    def ugs_grid_defaults() -> dict:
        return UGS_RPN_DEFAULTS

    # ---- layers ---------------------------------------------------------------------------
    def _init_layers(self) -> None:
        super()._init_layers()
        self.rpn_reg = nn.Conv2d(self.feat_channels,
                                 self.num_base_priors * self.bbox_coder.encode_size
                                 * self.ugs_num_bins, 1)

    def forward_single(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Objectness ``(B, A, H, W)`` and regression logits ``(B, A * D * (n + 1), H, W)``,
        channel ``a * D (n + 1) + k (n + 1) + j`` = anchor a, delta k, grid point j."""
        cls_score, bbox_logits = super().forward_single(x)
        return cls_score, bbox_logits.float()

    @property
    def ugs_reg_predictor(self) -> nn.Module:
        return self.rpn_reg

    def ugs_reg_features(self, x: Tensor) -> Tensor:
        """The shared conv and ReLU (what ``rpn_reg`` reads)."""
        return torch.relu(self.rpn_conv(x))

    def ugs_reg_predictor_at(self, x: Tensor, image: Tensor, row: Tensor, col: Tensor
                             ) -> Tensor:
        """The shared 3x3 conv at the points only, then the 1x1 regression conv."""
        if isinstance(self.rpn_conv, nn.Conv2d):
            h = conv2d_at(self.rpn_conv, x, image, row, col)
        else:                                   # num_convs > 1: stacked ConvModules
            h = self.rpn_conv(x)[image, :, row, col]
        return F.linear(torch.relu(h), self.rpn_reg.weight.flatten(1), self.rpn_reg.bias)

    def loss_and_predict(self, x: Tuple[Tensor], batch_data_samples,
                         proposal_cfg=None) -> Tuple[dict, list]:
        """What ``TwoStageDetector`` calls: the UGS losses (refinement included) and the
        proposals decoded from the clean pass's outputs (no second forward)."""
        with self._ugs_step() as state:
            losses = UGSDenseHeadMixin.loss(self, x, batch_data_samples)
            outs = state["outs"]
        _, _, batch_img_metas = unpack_gt_instances(batch_data_samples)
        predictions = self.predict_by_feat(*outs, batch_img_metas=batch_img_metas,
                                           cfg=proposal_cfg)
        return losses, predictions
