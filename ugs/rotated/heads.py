"""UGS in three of Table 3's rotated detectors (mmrotate 1.0.0rc1), registered in mmrotate's
MODELS: ``UGSRotatedRetinaHead``, ``UGSOrientedRPNHead`` and ``UGSRotatedShared2FCBBoxHead``
(Oriented R-CNN's two stages, with mmdet's ``UGSStandardRoIHead``), ``UGSRotatedFCOSHead``.
Oriented RepPoints is :mod:`ugs.rotated.reppoints_head`.

The paper gives no encoding for rotated boxes; the kit's (tested in
``tests/test_rotated_coding.py`` (the coders' round trips, the bounds, the circular grid) and
``tests/test_table3_configs.py`` (every config builds, steps and predicts on the CPU)):

* **Rotated RetinaNet** and **Oriented R-CNN's R-CNN stage**: the five deltas of mmrotate's
  ``DeltaXYWHTRBBoxCoder`` (le90, edge swap, divided by the coder's stds), each on its own grid
  (:class:`ugs.rotated_coding.DeltaGrids`): ``dx, dy, dw, dh`` on Table 7's grid of the
  axis-aligned head they correspond to (RetinaNet's anchors are the RPN's kind, stds 1:
  alpha 2, n 10; R-CNN: alpha 5, n 5), ``dtheta`` on a grid whose half-range is exactly its
  bound, ``pi / 4`` with the edge swap (``pi / 2`` without) divided by its std (1 for
  RetinaNet, 0.1 for R-CNN: 7.85). The R-CNN stage is class-agnostic, as mmrotate's config.
* **Oriented R-CNN's RPN**: the six deltas of ``MidpointOffsetCoder``; ``dx .. dh`` on the RPN's
  Table 7 grid, ``da``, ``db`` (the top and right vertices' offsets along the horizontal box,
  at most half its side) on a grid of half-range ``0.5 / std`` (1.0 with the config's 0.5).
* **Rotated FCOS**: the four distances in strides as the kit's FCOS head
  (:mod:`ugs.openmmlab.fcos_head`: log mapping, alpha 3, n 16) and the angle on a
  :class:`ugs.rotated_coding.CircularGrid` of ``n + 1`` bins over the rectangle's period pi
  (the same number of bins as the distances, so all five entropies are on the same scale).
  CE and UM are averaged over the five distributions (``5 x`` FCOS's centerness normaliser,
  where the kit's FCOS head has ``4 x``).

Each head's regression loss is replaced by Eq. 16 (``loss_ce`` + ``loss_um`` + ``loss_ur``); the
refinement step (Eq. 14-15) perturbs the FPN levels the head reads (for the R-CNN stage through
``RoIAlignRotated``, by ``ugs.openmmlab.roi_head``). Everything else is the stock head's.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Tuple

import torch
from mmdet.models.dense_heads.anchor_free_head import AnchorFreeHead
from mmdet.models.dense_heads.retina_head import RetinaHead
from mmdet.models.utils import multi_apply
from mmdet.utils import reduce_mean
from mmrotate.models.dense_heads.oriented_rpn_head import OrientedRPNHead
from mmrotate.models.dense_heads.rotated_fcos_head import RotatedFCOSHead
from mmrotate.registry import MODELS
from torch import Tensor, nn

from ugs.localization import localization_ce
from ugs.openmmlab.dense_ugs import (UGSDenseHeadMixin, UGSPositives, conv2d_at,
                                     resolve_ugs_cfg, split_flat_positives)
from ugs.openmmlab.roi_head import UGSShared2FCBBoxHead
from ugs.openmmlab.rpn_head import UGS_RPN_DEFAULTS, UGSAnchorDeltaMixin, UGSRPNHead
from ugs.rotated_coding import (EDGE_SWAP_ANGLE_BOUND, MIDPOINT_OFFSET_BOUND, CircularGrid,
                                DeltaGrids)
from ugs.uncertainty import uncertainty_loss

__all__ = ["UGSRotatedRetinaHead", "UGSOrientedRPNHead", "UGSRotatedShared2FCBBoxHead",
           "UGSRotatedFCOSHead", "xywht_delta_alphas", "midpoint_offset_alphas"]


#: the regression loss the stock ``__init__`` builds and UGS never calls (scoped: mmrotate's
#: registry does not see mmdet's unscoped names)
_UNUSED_LOSS = dict(type="mmdet.L1Loss", loss_weight=1.0)


def _zero_means(coder, name: str) -> None:
    if any(float(m) != 0 for m in coder.means):
        raise ValueError(f"{name}: the grid ranges assume target_means of 0, got {coder.means}")


def xywht_delta_alphas(coder, alpha: float) -> List[float]:
    """Half-ranges of the five ``DeltaXYWHTRBBoxCoder`` deltas: ``alpha`` for ``dx .. dh``, the
    angle delta's bound (``pi / 4`` with the edge swap, else ``pi / 2``; le90 only; divided by
    ``norm_factor * pi`` when the coder has one) over its std."""
    name = type(coder).__name__
    if name != "DeltaXYWHTRBBoxCoder":
        raise ValueError(f"the rotated UGS heads need DeltaXYWHTRBBoxCoder, got {name}")
    if coder.angle_version != "le90":
        raise ValueError(f"{name}: the angle grid is derived for angle_version='le90', "
                         f"got {coder.angle_version!r}")
    _zero_means(coder, name)
    bound = EDGE_SWAP_ANGLE_BOUND if coder.edge_swap else math.pi / 2
    if coder.norm_factor:
        bound /= coder.norm_factor * math.pi
    return [alpha] * 4 + [bound / float(coder.stds[4])]


def midpoint_offset_alphas(coder, alpha: float) -> List[float]:
    """Half-ranges of the six ``MidpointOffsetCoder`` deltas: ``alpha`` for ``dx .. dh``,
    ``0.5 / std`` for ``da`` and ``db``."""
    name = type(coder).__name__
    if name != "MidpointOffsetCoder":
        raise ValueError(f"the rotated UGS RPN needs MidpointOffsetCoder, got {name}")
    _zero_means(coder, name)
    return [alpha] * 4 + [MIDPOINT_OFFSET_BOUND / float(s) for s in coder.stds[4:]]


@MODELS.register_module()
class UGSRotatedRetinaHead(UGSAnchorDeltaMixin, RetinaHead):
    """Rotated RetinaNet's head (mmdet's ``RetinaHead`` with mmrotate's rotated anchors and
    ``DeltaXYWHTRBBoxCoder``, as mmrotate's config) with UGS localization: ``retina_reg``
    outputs one distribution per anchor and delta, Eq. 10 + 12 replace the L1 loss (weighted
    by mmdet's ``bbox_weights``, divided by RetinaNet's ``avg_factor``, the positives), and the
    refinement step runs on the levels holding a positive anchor (module docstring).

    Args:
        ugs: alpha, beta, n (default the RPN's Table 7 grid: 2, 1.0, 10; ``alpha`` is that of
            ``dx .. dh``, the angle's is derived from the coder), lam, gamma, rho, refine_norm,
            ur_objective, loss_weight, refine_every.
        loss_bbox: must be left out.
        Other arguments: as ``RetinaHead``.
    """

    ugs_encode_sizes = (5,)
    ugs_unused_loss_bbox = _UNUSED_LOSS

    @staticmethod
    def ugs_grid_defaults() -> dict:
        return UGS_RPN_DEFAULTS

    def build_ugs_grid(self, cfg: dict) -> DeltaGrids:
        return DeltaGrids(xywht_delta_alphas(self.bbox_coder, cfg["alpha"]), cfg["beta"],
                          cfg["n"])

    def _init_layers(self) -> None:
        super()._init_layers()
        self.retina_reg = nn.Conv2d(self.feat_channels,
                                    self.num_base_priors * self.bbox_coder.encode_size
                                    * self.ugs_num_bins, 3, padding=1)

    def forward_single(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Class scores and regression logits ``(B, A 5 (n + 1), H, W)``."""
        cls_score, bbox_logits = super().forward_single(x)
        return cls_score, bbox_logits.float()

    @property
    def ugs_reg_predictor(self) -> nn.Module:
        return self.retina_reg

    def ugs_reg_features(self, x: Tensor) -> Tensor:
        for conv in self.reg_convs:
            x = conv(x)
        return x


@MODELS.register_module()
class UGSOrientedRPNHead(UGSRPNHead, OrientedRPNHead):
    """Oriented R-CNN's RPN (``OrientedRPNHead``, ``MidpointOffsetCoder``) with UGS: the kit's
    :class:`~ugs.openmmlab.rpn_head.UGSRPNHead` over the coder's six deltas, each on its own
    grid (module docstring); proposals are decoded from the expected deltas by the stock
    head. ``ugs.alpha`` is that of ``dx .. dh``."""

    ugs_encode_sizes = (6,)
    ugs_unused_loss_bbox = _UNUSED_LOSS

    def build_ugs_grid(self, cfg: dict) -> DeltaGrids:
        return DeltaGrids(midpoint_offset_alphas(self.bbox_coder, cfg["alpha"]), cfg["beta"],
                          cfg["n"])


@MODELS.register_module()
class UGSRotatedShared2FCBBoxHead(UGSShared2FCBBoxHead):
    """Oriented R-CNN's R-CNN head (``Shared2FCBBoxHead`` with ``predict_box_type='rbox'`` and
    ``DeltaXYWHTRBBoxCoder``) with UGS: the kit's
    :class:`~ugs.openmmlab.roi_head.UGSShared2FCBBoxHead` over the five deltas, each on its own
    grid (module docstring; ``ugs.alpha`` is that of ``dx .. dh``, Table 7's 5 by default). Use
    it under mmdet's ``UGSStandardRoIHead`` for the refinement step through
    ``RoIAlignRotated``."""

    ugs_encode_sizes = (5,)
    ugs_unused_loss_bbox = _UNUSED_LOSS

    def build_ugs_grid(self, cfg: dict) -> DeltaGrids:
        return DeltaGrids(xywht_delta_alphas(self.bbox_coder, cfg["alpha"]), cfg["beta"],
                          cfg["n"])


@MODELS.register_module()
class UGSRotatedFCOSHead(UGSDenseHeadMixin, RotatedFCOSHead):
    """Rotated FCOS with UGS localization (module docstring).

    What changes against ``RotatedFCOSHead``: ``conv_reg`` outputs ``4 (n + 1)`` logits (the
    distances in strides, log-mapped onto the IN grid), ``conv_angle`` outputs ``n + 1`` logits
    (a circular grid over pi); no per-level ``Scale`` and no angle ``Scale`` (they would only
    rescale logits); ``loss_ce`` + ``loss_um`` (+ ``loss_ur``) replace the rotated IoU loss, each
    weighted per positive by the centerness target; at test time the distances decode to their
    expectation and the angle to its circular expectation. Set ``loss_bbox`` to keep a rotated
    IoU loss on the decoded boxes as well (off by default). Classification, centerness,
    assignment and post-processing are the stock head's.

    Args:
        ugs: as :class:`ugs.openmmlab.fcos_head.UGSFCOSHead` (alpha, beta, n, mapping, lam,
            gamma, rho, refine_norm, ur_objective, loss_weight, refine_every).
        loss_bbox: ``None`` (default) or a rotated IoU-type loss on decoded boxes.
        Other arguments: as ``RotatedFCOSHead``; ``angle_coder`` must stay the
        ``PseudoAngleCoder`` and ``loss_angle`` ``None`` (the circular grid is the angle's
        coding and loss), ``use_hbbox_loss`` False.
    """

    def __init__(self, *args, ugs: Optional[dict] = None, loss_bbox: Optional[dict] = None,
                 **kwargs) -> None:
        cfg = resolve_ugs_cfg(ugs)
        self.ugs_num_bins = cfg["n"] + 1
        kwargs["norm_on_bbox"] = True
        kwargs["scale_angle"] = False
        for key, allowed in (("loss_angle", None), ("use_hbbox_loss", False)):
            if kwargs.get(key, allowed) != allowed:
                raise ValueError(f"UGSRotatedFCOSHead: {key} must be {allowed!r} (the angle is "
                                 f"regressed on the circular grid), got {kwargs[key]!r}")
        coder = kwargs.get("angle_coder", dict(type="PseudoAngleCoder"))
        if coder.get("type") != "PseudoAngleCoder":
            raise ValueError(f"UGSRotatedFCOSHead: angle_coder must be PseudoAngleCoder, got "
                             f"{coder.get('type')!r}")
        super().__init__(*args, loss_bbox=loss_bbox or dict(type="RotatedIoULoss"), **kwargs)
        self.with_iou_loss = loss_bbox is not None
        self._init_ugs(cfg)
        self.ugs_angle_grid = CircularGrid(self.ugs_num_bins, math.pi)

    def _init_layers(self) -> None:
        AnchorFreeHead._init_layers(self)
        self.conv_centerness = nn.Conv2d(self.feat_channels, 1, 3, padding=1)
        self.conv_angle = nn.Conv2d(self.feat_channels, self.ugs_num_bins, 3, padding=1)

    def _init_predictor(self) -> None:
        super()._init_predictor()
        self.conv_reg = nn.Conv2d(self.feat_channels, 4 * self.ugs_num_bins, 3, padding=1)

    def forward(self, x: Tuple[Tensor]):
        """Per level: class scores, distance logits ``(B, 4 (n + 1), H, W)``, angle logits
        ``(B, n + 1, H, W)``, centerness."""
        return multi_apply(self.forward_single, x)

    def forward_single(self, x: Tensor):
        cls_score, bbox_logits, cls_feat, reg_feat = AnchorFreeHead.forward_single(self, x)
        centerness = self.conv_centerness(reg_feat if self.centerness_on_reg else cls_feat)
        return cls_score, bbox_logits.float(), self.conv_angle(reg_feat).float(), centerness

    def ugs_rotated_terms(self, dist_logits: Tensor, angle_logits: Tensor, distances: Tensor,
                          angles: Tensor, weight: Tensor, denorm: float):
        """CE (Eq. 10: the distances on the IN grid, the angle on the circle) and UM (Eq. 12,
        all five distributions) of ``P`` positives, weighted by ``weight (P,)`` and divided by
        ``5 denorm``."""
        avg = 5 * denorm
        ce = localization_ce(dist_logits, self.ugs_coder.to_grid(distances.detach()),
                             self.ugs_grid, weight=weight[:, None].expand(-1, 4), avg_factor=avg)
        ce = ce + self.ugs_angle_grid.ce(angle_logits, angles, weight=weight, avg_factor=avg)
        um = uncertainty_loss(torch.cat([dist_logits, angle_logits[:, None]], 1),
                              weight=weight[:, None].expand(-1, 5), avg_factor=avg)
        return ce, um

    def ugs_perturbed_terms(self, levels: Dict[int, Tensor], positives: UGSPositives):
        """CE and UM of the regression branch on the perturbed ``levels`` at the clean pass's
        positives (distances and angle), weighted and normalised as there."""
        dist, angle = [], []
        for i, f in sorted(levels.items()):
            feat = f
            for layer in self.reg_convs:
                feat = layer(feat)
            where = positives.where[i]
            dist.append(conv2d_at(self.conv_reg, feat, *where).float()
                        .reshape(-1, 4, self.ugs_num_bins))
            angle.append(conv2d_at(self.conv_angle, feat, *where).float())
        d = positives.data
        return self.ugs_rotated_terms(torch.cat(dist), torch.cat(angle), d["distances"],
                                      d["angles"], d["weight"], d["denorm"])

    def loss_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                     angle_preds: List[Tensor], centernesses: List[Tensor], batch_gt_instances,
                     batch_img_metas, batch_gt_instances_ignore=None) -> Dict[str, Tensor]:
        """Rotated FCOS's losses with Eq. 10 / 12 in place of the rotated IoU loss."""
        featmap_sizes = [featmap.size()[-2:] for featmap in cls_scores]
        points = self.prior_generator.grid_priors(featmap_sizes, dtype=bbox_preds[0].dtype,
                                                  device=bbox_preds[0].device)
        labels, bbox_targets, angle_targets = self.get_targets(points, batch_gt_instances)
        num_imgs = cls_scores[0].size(0)
        bins = self.ugs_num_bins
        flat_cls = torch.cat([c.permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels)
                              for c in cls_scores])
        flat_dist = torch.cat([p.permute(0, 2, 3, 1).reshape(-1, 4, bins) for p in bbox_preds])
        flat_angle = torch.cat([p.permute(0, 2, 3, 1).reshape(-1, bins) for p in angle_preds])
        flat_ctr = torch.cat([c.permute(0, 2, 3, 1).reshape(-1) for c in centernesses])
        flat_labels = torch.cat(labels)
        flat_targets = torch.cat(bbox_targets)
        flat_angle_targets = torch.cat(angle_targets).reshape(-1)
        flat_points = torch.cat([p.repeat(num_imgs, 1) for p in points])

        pos_inds = ((flat_labels >= 0) & (flat_labels < self.num_classes)).nonzero().reshape(-1)
        num_pos = max(reduce_mean(torch.tensor(len(pos_inds), dtype=torch.float,
                                               device=flat_cls.device)), 1.0)
        loss_cls = self.loss_cls(flat_cls, flat_labels, avg_factor=num_pos)
        pos_dist, pos_angle = flat_dist[pos_inds], flat_angle[pos_inds]
        pos_targets, pos_angle_targets = flat_targets[pos_inds], flat_angle_targets[pos_inds]
        pos_ctr = flat_ctr[pos_inds]
        ctr_targets = self.centerness_target(pos_targets)
        denorm = max(reduce_mean(ctr_targets.sum().detach()), 1e-6)
        ce, um = self.ugs_rotated_terms(pos_dist, pos_angle, pos_targets, pos_angle_targets,
                                        ctr_targets, denorm)
        losses = dict(loss_cls=loss_cls)
        losses.update(self.ugs_loss_dict(ce, um))
        losses["ugs_positives"] = UGSPositives(
            where=split_flat_positives(pos_inds, featmap_sizes, num_imgs),
            data=dict(distances=pos_targets, angles=pos_angle_targets, weight=ctr_targets,
                      denorm=denorm))
        if len(pos_inds) > 0:
            losses["loss_centerness"] = self.loss_centerness(pos_ctr, ctr_targets,
                                                             avg_factor=num_pos)
            if self.with_iou_loss:
                pos_points = flat_points[pos_inds]
                pred = torch.cat([self.ugs_integral(pos_dist),
                                  self.ugs_angle_grid.decode(pos_angle)[:, None]], -1)
                target = torch.cat([pos_targets, pos_angle_targets[:, None]], -1)
                losses["loss_bbox"] = self.loss_bbox(
                    self.bbox_coder.decode(pos_points, pred),
                    self.bbox_coder.decode(pos_points, target),
                    weight=ctr_targets, avg_factor=denorm)
        else:
            losses["loss_centerness"] = pos_ctr.sum()
            if self.with_iou_loss:
                losses["loss_bbox"] = pos_dist.sum() * 0
        return losses

    def predict_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                        angle_preds: List[Tensor], score_factors: Optional[List[Tensor]] = None,
                        **kwargs):
        """Distances to their expectation (pixels), the angle to its circular expectation,
        then the stock post-processing."""
        strides = [s if isinstance(s, (int, float)) else s[0] for s in self.strides]
        distances = [d * s for d, s in zip(self.logits_to_distance_maps(bbox_preds), strides)]
        angles = [self.ugs_angle_grid.decode(a.permute(0, 2, 3, 1)).unsqueeze(1)
                  for a in angle_preds]
        return RotatedFCOSHead.predict_by_feat(self, cls_scores, distances, angles,
                                               score_factors, **kwargs)
