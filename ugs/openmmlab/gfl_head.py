"""GFL V1 with UGS: ``UGSGFLHead``, registered in mmdet's MODELS.

GFL V1 already localizes by classification: 17 bins at 0, 1, ..., 16 strides, trained with
the distribution focal loss (DFL). UGS replaces exactly that part and keeps the rest of GFL
(QFL classification, GIoU loss on the decoded boxes, ATSS assignment):

* the bins are the UGS grid (Eq. 9) through :class:`ugs.distance_coding.DistanceCoder`
  (``reg_max`` is set to n, so the head has ``4 * (n + 1)`` regression outputs);
* the integral (decoding) is the expectation over that grid (:class:`UGSIntegral`), for the
  GIoU loss, the quality target and inference alike;
* DFL is replaced by Eq. 16's ``loss_ce`` (Eq. 10) + ``loss_um`` (lambda Eq. 12), weighted
  per positive by GFL's quality weight like DFL, with ``ugs.loss_weight`` in DFL's place
  (0.25 in GFL's config), plus ``loss_ur`` (Eq. 14-15) from the refinement step.

With ``mapping="linear", alpha=8, beta=0, n=16, lam=0, gamma=0`` the head computes GFL V1's
losses exactly (tests/test_openmmlab_heads.py checks it).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.models.dense_heads.gfl_head import GFLHead
from mmdet.models.utils import multi_apply
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_overlaps
from mmdet.utils import reduce_mean
from torch import Tensor

from .dense_ugs import UGSDenseHeadMixin, UGSPositives, conv2d_at, resolve_ugs_cfg


@MODELS.register_module()
class UGSGFLHead(UGSDenseHeadMixin, GFLHead):
    """GFL V1 head with UGS localization (see the module docstring).

    Args:
        ugs: UGS options (defaults :data:`ugs.openmmlab.dense_ugs.UGS_DENSE_DEFAULTS`);
            ``loss_weight`` takes DFL's place (GFL's configs use 0.25).
        Other arguments: as ``GFLHead``; ``reg_max`` and ``loss_dfl`` are not used.
    """

    def __init__(self, *args, ugs: Optional[dict] = None, **kwargs) -> None:
        cfg = resolve_ugs_cfg(ugs)
        kwargs["reg_max"] = cfg["n"]
        super().__init__(*args, **kwargs)
        self._init_ugs(cfg)
        self.integral = self.ugs_integral

    def forward_reg(self, x: Tensor, level: int) -> Tensor:
        """The regression branch alone (for the refinement pass)."""
        for conv in self.reg_convs:
            x = conv(x)
        return self.scales[level](self.gfl_reg(x)).float()

    def forward_reg_at(self, x: Tensor, level: int, where) -> Tensor:
        """The regression branch on a whole level, its predictor only at the points ``where``
        (``(image, row, col)``): logits ``(P, 4, n + 1)``, as ``forward_reg(x, level)`` there."""
        for conv in self.reg_convs:
            x = conv(x)
        if self._ugs_predict_at_points:
            out = conv2d_at(self.gfl_reg, x, *where)
        else:
            b, r, c = where
            out = self.gfl_reg(x)[b, :, r, c]
        return self.scales[level](out).float().reshape(-1, 4, self.ugs_grid.num_bins)

    #: compute ``gfl_reg`` of the refinement pass at the positives only (see forward_reg_at)
    _ugs_predict_at_points = True

    def ugs_perturbed_terms(self, levels: Dict[int, Tensor], positives: UGSPositives):
        """CE and UM (Eq. 10, 12) on the perturbed ``levels`` at the clean pass's positives,
        level by level with the clean pass's weights and normalisers."""
        d = positives.data
        ces, ums = [], []
        for i, f in sorted(levels.items()):
            ce, um = self.ugs_terms(self.forward_reg_at(f, i, positives.where[i]),
                                    d["targets"][i], d["weights"][i], avg_factor=4.0)
            ces.append(ce)
            ums.append(um)
        return sum(ces) / d["weight_sum"], sum(ums) / d["weight_sum"]

    @staticmethod
    def _swap_reg_outputs(outs, reg_maps):
        cls_scores, _ = outs
        return [c.detach() for c in cls_scores], reg_maps

    def loss_by_feat_single(self, anchors: Tensor, cls_score: Tensor, bbox_pred: Tensor,
                            labels: Tensor, label_weights: Tensor, bbox_targets: Tensor,
                            stride: Tuple[int], avg_factor: int):
        """GFL's per-level loss with the DFL replaced by Eq. 10 and 12."""
        assert stride[0] == stride[1], "h stride is not equal to w stride!"
        bins = self.ugs_grid.num_bins
        anchors = anchors.reshape(-1, 4)
        cls_score = cls_score.permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels)
        bbox_pred = bbox_pred.permute(0, 2, 3, 1).reshape(-1, 4 * bins)
        bbox_targets = bbox_targets.reshape(-1, 4)
        labels = labels.reshape(-1)
        label_weights = label_weights.reshape(-1)
        pos_inds = ((labels >= 0) & (labels < self.num_classes)).nonzero().squeeze(1)
        score = label_weights.new_zeros(labels.shape)

        pos_logits = bbox_pred[pos_inds].reshape(-1, 4, bins)
        if len(pos_inds) > 0:
            pos_centers = self.anchor_center(anchors[pos_inds]) / stride[0]
            weight_targets = cls_score.detach().sigmoid().max(dim=1)[0][pos_inds]
            pos_pred = self.bbox_coder.decode(pos_centers, self.integral(pos_logits))
            pos_target_boxes = bbox_targets[pos_inds] / stride[0]
            score[pos_inds] = bbox_overlaps(pos_pred.detach(), pos_target_boxes, is_aligned=True)
            # distances in strides, not clamped by the coder: the grid clamps and counts
            target_dist = self.bbox_coder.encode(pos_centers, pos_target_boxes)
            loss_bbox = self.loss_bbox(pos_pred, pos_target_boxes, weight=weight_targets,
                                       avg_factor=1.0)
            side_weight = weight_targets[:, None].expand(-1, 4)
            ce, um = self.ugs_terms(pos_logits, target_dist, side_weight, avg_factor=4.0)
            positives = (pos_inds, target_dist, side_weight)
        else:
            loss_bbox = bbox_pred.sum() * 0
            ce = um = bbox_pred.sum() * 0
            weight_targets = bbox_pred.new_tensor(0)
            positives = None
        loss_cls = self.loss_cls(cls_score, (labels, score), weight=label_weights,
                                 avg_factor=avg_factor)
        return loss_cls, loss_bbox, ce, um, weight_targets.sum(), positives

    def loss_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                     batch_gt_instances, batch_img_metas,
                     batch_gt_instances_ignore=None) -> Dict[str, Tensor]:
        """GFL's loss aggregation, with ``loss_ce`` / ``loss_um`` in place of ``loss_dfl``."""
        featmap_sizes = [featmap.size()[-2:] for featmap in cls_scores]
        device = cls_scores[0].device
        anchor_list, valid_flag_list = self.get_anchors(featmap_sizes, batch_img_metas,
                                                        device=device)
        (anchor_list, labels_list, label_weights_list, bbox_targets_list, _,
         avg_factor) = self.get_targets(anchor_list, valid_flag_list, batch_gt_instances,
                                        batch_img_metas,
                                        batch_gt_instances_ignore=batch_gt_instances_ignore)
        avg_factor = reduce_mean(torch.tensor(avg_factor, dtype=torch.float, device=device)).item()
        losses_cls, losses_bbox, ces, ums, weight_sums, positives = multi_apply(
            self.loss_by_feat_single, anchor_list, cls_scores, bbox_preds, labels_list,
            label_weights_list, bbox_targets_list, self.prior_generator.strides,
            avg_factor=avg_factor)
        weight_sum = reduce_mean(sum(weight_sums)).clamp_(min=1).item()
        losses = dict(loss_cls=losses_cls, loss_bbox=[l / weight_sum for l in losses_bbox])
        losses.update(self.ugs_loss_dict(sum(ces) / weight_sum, sum(ums) / weight_sum))
        where, targets, weights = {}, {}, {}
        for level, (pos, (h, w)) in enumerate(zip(positives, featmap_sizes)):
            if pos is not None:        # pos_inds index the level's (B, H, W) map, image-major
                inds, targets[level], weights[level] = pos
                where[level] = (inds // (h * w), (inds % (h * w)) // w, inds % w)
        losses["ugs_positives"] = UGSPositives(
            where=where, data=dict(targets=targets, weights=weights, weight_sum=weight_sum))
        return losses
