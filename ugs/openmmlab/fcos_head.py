"""FCOS with UGS: ``UGSFCOSHead``, registered in mmdet's MODELS.

What changes against mmdet's ``FCOSHead`` (and nothing else):

* the regression predictor outputs ``4 * (n + 1)`` logits per location (a distribution over
  the UGS grid per side) instead of 4 distances; no per-level ``Scale`` (it would only
  rescale logits);
* regression targets are always in stride units (``norm_on_bbox`` is forced on) and are put
  on the grid by :class:`ugs.distance_coding.DistanceCoder` (``mapping``);
* the IoU loss is replaced by Eq. 16: ``loss_ce`` (Eq. 10) + ``loss_um`` (lambda Eq. 12)
  + ``loss_ur`` (gamma L^ur, Eq. 14-15), each weighted per positive by FCOS's centerness
  target and normalised like FCOS's IoU loss; set ``loss_bbox`` to keep an IoU loss on the
  decoded boxes as well (off by default: the paper replaces the localization loss);
* at test time each side decodes to the expectation over the grid (then the mapping back).

Classification, centerness, assignment and post-processing are FCOS's own.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
from mmdet.models.dense_heads.anchor_free_head import AnchorFreeHead
from mmdet.models.dense_heads.fcos_head import FCOSHead
from mmdet.models.utils import multi_apply
from mmdet.registry import MODELS
from mmdet.utils import reduce_mean
from torch import Tensor, nn

from .dense_ugs import (UGSDenseHeadMixin, UGSPositives, conv2d_at, resolve_ugs_cfg,
                        split_flat_positives)


@MODELS.register_module()
class UGSFCOSHead(UGSDenseHeadMixin, FCOSHead):
    """FCOS head with UGS localization (see the module docstring).

    Args:
        ugs: options of the UGS objective, defaults in
            :data:`ugs.openmmlab.dense_ugs.UGS_DENSE_DEFAULTS` (alpha, beta, n, mapping, lam,
            gamma, rho, refine_norm, ur_objective, loss_weight, refine_every).
        loss_bbox: ``None`` (default) or an IoU-type loss config to add on decoded boxes.
        Other arguments: as ``FCOSHead``.
    """

    def __init__(self, *args, ugs: Optional[dict] = None, loss_bbox: Optional[dict] = None,
                 **kwargs) -> None:
        cfg = resolve_ugs_cfg(ugs)
        self.ugs_num_bins = cfg["n"] + 1          # read by _init_predictor inside super()
        kwargs["norm_on_bbox"] = True
        super().__init__(*args, loss_bbox=loss_bbox or dict(type="IoULoss", loss_weight=1.0),
                         **kwargs)
        self.with_iou_loss = loss_bbox is not None
        self._init_ugs(cfg)

    def _init_layers(self) -> None:
        AnchorFreeHead._init_layers(self)
        self.conv_centerness = nn.Conv2d(self.feat_channels, 1, 3, padding=1)

    def _init_predictor(self) -> None:
        super()._init_predictor()
        self.conv_reg = nn.Conv2d(self.feat_channels, 4 * self.ugs_num_bins, 3, padding=1)

    def forward(self, x: Tuple[Tensor]) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
        """Per level: class scores, regression logits ``(B, 4 (n + 1), H, W)``, centerness."""
        return multi_apply(self.forward_single, x)

    def forward_single(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        cls_score, bbox_logits, cls_feat, reg_feat = AnchorFreeHead.forward_single(self, x)
        centerness = self.conv_centerness(reg_feat if self.centerness_on_reg else cls_feat)
        return cls_score, bbox_logits.float(), centerness

    def forward_reg(self, x: Tensor, level: int) -> Tensor:
        """The regression branch alone (for the refinement pass)."""
        for layer in self.reg_convs:
            x = layer(x)
        return self.conv_reg(x).float()

    def forward_reg_at(self, x: Tensor, level: int, where) -> Tensor:
        """The regression branch on a whole level, its predictor only at the points ``where``
        (``(image, row, col)``): logits ``(P, 4, n + 1)``, as ``forward_reg(x, level)`` there."""
        for layer in self.reg_convs:
            x = layer(x)
        if self._ugs_predict_at_points:
            out = conv2d_at(self.conv_reg, x, *where)
        else:
            b, r, c = where
            out = self.conv_reg(x)[b, :, r, c]
        return out.float().reshape(-1, 4, self.ugs_grid.num_bins)

    #: compute ``conv_reg`` of the refinement pass at the positives only (see forward_reg_at)
    _ugs_predict_at_points = True

    def ugs_perturbed_terms(self, levels: Dict[int, Tensor], positives: UGSPositives):
        """CE and UM (Eq. 10, 12) of the regression branch on the perturbed ``levels`` at the
        clean pass's positives, weighted and normalised as there."""
        logits = torch.cat([self.forward_reg_at(f, i, positives.where[i])
                            for i, f in sorted(levels.items())])
        d = positives.data
        return self.ugs_terms(logits, d["targets"], d["weight"], d["avg_factor"])

    @staticmethod
    def _swap_reg_outputs(outs, reg_maps):
        cls_scores, _, centernesses = outs
        return ([c.detach() for c in cls_scores], reg_maps, [c.detach() for c in centernesses])

    def loss_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                     centernesses: List[Tensor], batch_gt_instances, batch_img_metas,
                     batch_gt_instances_ignore=None) -> Dict[str, Tensor]:
        """FCOS's losses with Eq. 10 / 12 in place of the IoU loss (see the module docstring)."""
        featmap_sizes = [featmap.size()[-2:] for featmap in cls_scores]
        points = self.prior_generator.grid_priors(featmap_sizes, dtype=bbox_preds[0].dtype,
                                                  device=bbox_preds[0].device)
        labels, bbox_targets = self.get_targets(points, batch_gt_instances)   # stride units
        num_imgs = cls_scores[0].size(0)
        bins = self.ugs_grid.num_bins
        flat_cls = torch.cat([c.permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels)
                              for c in cls_scores])
        flat_logits = torch.cat([p.permute(0, 2, 3, 1).reshape(-1, 4, bins) for p in bbox_preds])
        flat_ctr = torch.cat([c.permute(0, 2, 3, 1).reshape(-1) for c in centernesses])
        flat_labels = torch.cat(labels)
        flat_targets = torch.cat(bbox_targets)
        flat_points = torch.cat([p.repeat(num_imgs, 1) for p in points])

        pos_inds = ((flat_labels >= 0) & (flat_labels < self.num_classes)).nonzero().reshape(-1)
        num_pos = max(reduce_mean(torch.tensor(len(pos_inds), dtype=torch.float,
                                               device=flat_cls.device)), 1.0)
        loss_cls = self.loss_cls(flat_cls, flat_labels, avg_factor=num_pos)

        pos_logits = flat_logits[pos_inds]
        pos_targets = flat_targets[pos_inds]
        pos_ctr = flat_ctr[pos_inds]
        ctr_targets = self.centerness_target(pos_targets)
        ctr_denorm = max(reduce_mean(ctr_targets.sum().detach()), 1e-6)
        side_weight = ctr_targets[:, None].expand(-1, 4)
        ce, um = self.ugs_terms(pos_logits, pos_targets, side_weight, avg_factor=4 * ctr_denorm)
        losses = dict(loss_cls=loss_cls)
        losses.update(self.ugs_loss_dict(ce, um))
        losses["ugs_positives"] = UGSPositives(
            where=split_flat_positives(pos_inds, featmap_sizes, num_imgs),
            data=dict(targets=pos_targets, weight=side_weight, avg_factor=4 * ctr_denorm))
        if len(pos_inds) > 0:
            losses["loss_centerness"] = self.loss_centerness(pos_ctr, ctr_targets,
                                                             avg_factor=num_pos)
            if self.with_iou_loss:
                pos_points = flat_points[pos_inds]
                pred = self.ugs_integral(pos_logits)
                losses["loss_bbox"] = self.loss_bbox(
                    self.bbox_coder.decode(pos_points, pred),
                    self.bbox_coder.decode(pos_points, pos_targets),
                    weight=ctr_targets, avg_factor=ctr_denorm)
        else:
            losses["loss_centerness"] = pos_ctr.sum()
            if self.with_iou_loss:
                losses["loss_bbox"] = pos_logits.sum() * 0
        return losses

    def predict_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                        score_factors: Optional[List[Tensor]] = None, **kwargs):
        """Decode each side to its expectation over the grid, in pixels, then FCOS's own
        post-processing."""
        strides = [s if isinstance(s, (int, float)) else s[0] for s in self.strides]
        distances = [d * s for d, s in zip(self.logits_to_distance_maps(bbox_preds), strides)]
        return super().predict_by_feat(cls_scores, distances, score_factors, **kwargs)
