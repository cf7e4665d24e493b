"""UGS in the YOLOv5 head (Table 2: TPH-YOLOv5 w/ UGS), for mmyolo.

YOLOv5 regresses, per anchor and cell, ``xy = 2 sigmoid(t) - 0.5`` (the centre's offset from the
cell's corner, in cells) and ``wh = (2 sigmoid(t))^2 x anchor``, and trains them with the CIoU
loss. A ground truth is assigned to an anchor when both side ratios are within ``anchor_t``
(``prior_match_thr``), in its own cell and the two nearest neighbours (``near_neighbor_thr``).
The paper gives no encoding for YOLO; the kit decides:

* **Targets, on two grids.** The offsets of the positives lie in [-0.5, 1.5) after the
  neighbour assignment: ``t_xy = offset - 0.5`` on a grid over [-1, 1] that is *uniform*
  (beta 0: the offsets are spread evenly over the cell, no value deserves more resolution).
  The size ratios lie in (1/anchor_t, anchor_t), whose log is symmetric: ``t_wh = ln(wh /
  anchor)`` on the IN grid over [-ln anchor_t, ln anchor_t] with beta 1.0 (Table 7's best beta;
  the log ratios pile up near 0 when the anchors fit the data). n = 16 intervals for both
  (17 logits per coordinate and anchor).
* **Losses.** Eq. 10 + lambda Eq. 12 *in place of* the CIoU loss (as every other UGS head of the
  kit replaces its detector's box loss), weighted by YOLOv5's box gain; the objectness target
  stays YOLOv5's: the CIoU of the decoded (expectation) box with the target, detached, clamped at
  0. Classification and objectness losses are the configured ones. L^ur (Eq. 14-16): the four
  levels the head reads perturbed along the normalised gradient of L_UM, the head's 1x1
  prediction convs run again, CE + lambda UM on the same positives.
* **Decoding** by expectation: ``offset = E[t_xy] + 0.5``, ``wh = anchor x exp(E[t_wh])``. At
  test time the expectation is written back in YOLOv5's own parameters (``sigmoid(t) = (offset +
  0.5) / 2`` and ``sqrt(ratio) / 2``) and mmyolo's decoding and NMS run unchanged.

The assignment is YOLOv5's, written here again because mmyolo's ``loss_by_feat`` does it inline
(``tests/test_yolo_ugs_head.py`` checks it on a case worked out by hand).
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.dist import get_dist_info
from mmyolo.models.dense_heads import YOLOv5HeadModule
from mmyolo.models.losses.iou_loss import bbox_overlaps
from mmyolo.registry import MODELS
from torch import Tensor

from ugs.grid import IntervalGrid
from ugs.openmmlab.dense_ugs import UGSDenseHeadMixin, grid_terms

from .head import TPHYOLOv5Head

__all__ = ["UGS_YOLO_DEFAULTS", "UGSYOLOv5HeadModule", "UGSYOLOv5Head"]

#: the kit's choices (module docstring); lam / gamma / rho are Table 6's best row
UGS_YOLO_DEFAULTS = dict(n=16, beta_xy=0.0, beta_wh=1.0, lam=0.5, gamma=0.5, rho=0.5, refine_norm="sample",
                         ur_objective="localization", loss_weight=1.0, refine_every=1)


@MODELS.register_module()
class UGSYOLOv5HeadModule(YOLOv5HeadModule):
    """YOLOv5's 1x1 prediction convs with ``4 (n + 1)`` box logits per anchor (in place of 4);
    per anchor the channels are ``[box logits | objectness | classes]``."""

    def __init__(self, *args, num_bins: int = 17, **kwargs) -> None:
        self.num_bins = int(num_bins)
        super().__init__(*args, **kwargs)

    def _init_layers(self) -> None:
        self.num_box = 4 * self.num_bins
        self.num_out_attrib = self.num_box + 1 + self.num_classes
        super()._init_layers()

    def init_weights(self) -> None:
        """YOLOv5's bias priors at this layout's positions (objectness for ~8 objects per 640 px
        image, classes at 0.6 / num_classes); the box logits start uniform."""
        nn.Module.apply(self, lambda m: m.reset_parameters() if isinstance(m, nn.Conv2d) else None)
        for conv, s in zip(self.convs_pred, self.featmap_strides):
            b = conv.bias.data.view(self.num_base_priors, -1)
            b[:, :self.num_box] = 0.0
            b[:, self.num_box] += math.log(8 / (640 / s) ** 2)
            b[:, self.num_box + 1:] += math.log(0.6 / (self.num_classes - 0.999999))
            conv.bias.data = b.view(-1)

    def forward_single(self, x: Tensor, convs: nn.Module) -> Tuple[Tensor, Tensor, Tensor]:
        pred = convs(x)
        bs, _, ny, nx = pred.shape
        pred = pred.view(bs, self.num_base_priors, self.num_out_attrib, ny, nx)
        box = pred[:, :, :self.num_box].reshape(bs, -1, ny, nx)
        obj = pred[:, :, self.num_box:self.num_box + 1].reshape(bs, -1, ny, nx)
        cls = pred[:, :, self.num_box + 1:].reshape(bs, -1, ny, nx)
        return cls, box, obj

    def box_logits(self, x: Tensor, level: int) -> Tensor:
        """The box logits map of one level alone (the refinement pass)."""
        return self.forward_single(x, self.convs_pred[level])[1]


@MODELS.register_module()
class UGSYOLOv5Head(UGSDenseHeadMixin, TPHYOLOv5Head):
    """TPH-YOLOv5's head with UGS (module docstring). Args: those of mmyolo's ``YOLOv5Head``
    (``loss_bbox`` gives the box gain and the CIoU of the objectness target), and ``ugs`` (keys
    of :data:`UGS_YOLO_DEFAULTS`)."""

    def __init__(self, *args, ugs: Optional[dict] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        cfg = dict(UGS_YOLO_DEFAULTS, **(ugs or {}))
        unknown = set(cfg) - set(UGS_YOLO_DEFAULTS)
        if unknown:
            raise ValueError(f"UGSYOLOv5Head: unknown ugs keys {sorted(unknown)}; known: {sorted(UGS_YOLO_DEFAULTS)}")
        if self.head_module.num_bins != cfg["n"] + 1:
            raise ValueError(f"UGSYOLOv5Head: head_module.num_bins ({self.head_module.num_bins}) must be ugs.n + 1 "
                             f"({cfg['n'] + 1})")
        self.ugs_cfg = cfg
        self.grid_xy = IntervalGrid(1.0, cfg["beta_xy"], cfg["n"])
        self.grid_wh = IntervalGrid(math.log(self.prior_match_thr), cfg["beta_wh"], cfg["n"])

    # ------------------------------------------------------------------ encoding and decoding
    def encode(self, offsets: Tensor, wh: Tensor, priors_wh: Tensor) -> Tensor:
        """Targets on the grids' axes: ``(P, 4)`` = ``offset - 0.5`` (x, y), ``ln(wh / prior)``."""
        return torch.cat([offsets - 0.5, torch.log(wh / priors_wh)], dim=1)

    def expectation(self, logits: Tensor) -> Tensor:
        """``(..., 4, n + 1)`` logits -> ``(..., 4)`` expectations on the grids' axes."""
        return torch.cat([self.grid_xy.decode(logits[..., :2, :]), self.grid_wh.decode(logits[..., 2:, :])], -1)

    def decode(self, logits: Tensor, priors_wh: Tensor) -> Tensor:
        """``(P, 4, n + 1)`` logits of positives -> ``(P, 4)`` xywh in cells (xy from the cell's corner)."""
        t = self.expectation(logits)
        return torch.cat([t[:, :2] + 0.5, priors_wh * torch.exp(t[:, 2:])], dim=1)

    def _level_logits(self, bbox_pred: Tensor) -> Tensor:
        b, _, h, w = bbox_pred.shape
        return bbox_pred.view(b, self.num_base_priors, 4, self.ugs_cfg["n"] + 1, h, w)

    # ------------------------------------------------------------------ YOLOv5's assignment
    def assign(self, targets_normed: Tensor, level: int, h: int, w: int):
        """YOLOv5's positives of one level for ``targets_normed`` (``(priors, boxes, 7)`` from
        ``_convert_gt_to_norm_format``): ``(img, prior, gy, gx, cls, offsets, wh, priors_wh)``,
        offsets from the cell's corner and sizes in cells; ``None`` when there is none."""
        if targets_normed.shape[1] == 0:
            return None
        scale = targets_normed.new_tensor([1, 1, w, h, w, h, 1])
        t = targets_normed * scale
        priors = self.priors_base_sizes[level]                       # (priors, 2), in cells
        ratio = t[..., 4:6] / priors[:, None]
        t = t[torch.max(ratio, 1 / ratio).max(2)[0] < self.prior_match_thr]
        if t.shape[0] == 0:
            return None
        cxcy = t[:, 2:4]
        from_far = cxcy.new_tensor([w, h]) - cxcy
        thr = self.near_neighbor_thr
        left, up = ((cxcy % 1 < thr) & (cxcy > 1)).T
        right, down = ((from_far % 1 < thr) & (from_far > 1)).T
        # the own cell, then the neighbour to the left, up, right, down when the centre is near it
        picks = torch.stack([torch.ones_like(left), left, up, right, down])
        shifts = cxcy.new_tensor([[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1]])
        t = t.repeat(5, 1, 1)[picks]
        shift = shifts[:, None].expand(5, picks.shape[1], 2)[picks]
        cell = (t[:, 2:4] - shift * thr).long()
        prior = t[:, 6].long()
        return (t[:, 0].long(), prior, cell[:, 1], cell[:, 0], t[:, 1].long(), t[:, 2:4] - cell, t[:, 4:6],
                priors[prior])

    # ------------------------------------------------------------------ losses
    def loss(self, x: Sequence[Tensor], batch_data_samples) -> dict:
        if isinstance(batch_data_samples, dict):         # mmyolo's fast collate
            return self.ugs_loss(x, batch_data_samples["bboxes_labels"], batch_data_samples["img_metas"])
        return super().loss(x, batch_data_samples)

    def loss_by_feat(self, cls_scores: Sequence[Tensor], bbox_preds: Sequence[Tensor], objectnesses: Sequence[Tensor],
                     batch_gt_instances, batch_img_metas: Sequence[dict], batch_gt_instances_ignore=None) -> dict:
        if isinstance(batch_gt_instances, Tensor):       # mmyolo converts the fast tensor in place
            batch_gt_instances = batch_gt_instances.clone()
        targets = self._convert_gt_to_norm_format(batch_gt_instances, batch_img_metas)
        zero = cls_scores[0].new_zeros(())
        loss_cls, loss_obj, ce, um = zero, zero, zero, zero
        for i in range(self.num_levels):
            b, _, h, w = bbox_preds[i].shape
            target_obj = torch.zeros_like(objectnesses[i])
            pos = self.assign(targets, i, h, w)
            if pos is None:
                ce, um = ce + bbox_preds[i].sum() * 0, um + bbox_preds[i].sum() * 0
                loss_cls = loss_cls + cls_scores[i].sum() * 0
            else:
                img, prior, gy, gx, cls, offsets, wh, priors_wh = pos
                logits = self._level_logits(bbox_preds[i])[img, prior, :, :, gy, gx]       # (P, 4, n + 1)
                box = self.decode(logits, priors_wh)
                iou = bbox_overlaps(box, torch.cat([offsets, wh], 1), iou_mode="ciou", bbox_format="xywh")
                target_obj[img, prior, gy, gx] = iou.detach().clamp(0).to(target_obj.dtype)
                n_pos = float(len(img))
                t = self.encode(offsets, wh, priors_wh)
                ce_xy, um_xy = grid_terms(self.grid_xy, logits[:, :2], t[:, :2], None, n_pos)
                ce_wh, um_wh = grid_terms(self.grid_wh, logits[:, 2:], t[:, 2:], None, n_pos)
                ce, um = ce + ce_xy + ce_wh, um + um_xy + um_wh
                if self.num_classes > 1:
                    scores = cls_scores[i].view(b, self.num_base_priors, -1, h, w)[img, prior, :, gy, gx]
                    onehot = torch.zeros_like(scores)
                    onehot[torch.arange(len(cls), device=cls.device), cls] = 1.0
                    loss_cls = loss_cls + self.loss_cls(scores, onehot)
                else:
                    loss_cls = loss_cls + cls_scores[i].sum() * 0
            loss_obj = loss_obj + self.loss_obj(objectnesses[i], target_obj) * self.obj_level_weights[i]
        _, world = get_dist_info()
        scale = b * world
        gain = self.loss_bbox.loss_weight * self.ugs_cfg["loss_weight"] * scale
        return dict(loss_cls=loss_cls * scale, loss_obj=loss_obj * scale, loss_ce=gain * ce,
                    loss_um=gain * self.ugs_cfg["lam"] * um, ugs_um_raw=um)

    # ------------------------------------------------------------------ the mixin's hooks
    def forward_reg(self, x: Tensor, level: int) -> Tensor:
        return self.head_module.box_logits(x, level)

    def _swap_reg_outputs(self, outs, reg_maps: List[Tensor]):
        cls_scores, _, objectnesses = outs
        return cls_scores, reg_maps, objectnesses

    # ------------------------------------------------------------------ inference
    def to_yolov5_maps(self, bbox_preds: Sequence[Tensor]) -> List[Tensor]:
        """Box logits maps -> YOLOv5's 4 raw values per anchor (the expectation written back in
        its parameters: ``sigmoid(t_xy) = (offset + 0.5) / 2``, ``sigmoid(t_wh) = sqrt(ratio) / 2``)."""
        out, eps = [], 1e-6
        for p in bbox_preds:
            b, _, h, w = p.shape
            t = self.expectation(self._level_logits(p).permute(0, 1, 4, 5, 2, 3))      # (b, priors, h, w, 4)
            s = torch.cat([(t[..., :2] + 1.0) / 2, torch.exp(t[..., 2:] / 2) / 2], -1).clamp(eps, 1 - eps)
            out.append(torch.logit(s).permute(0, 1, 4, 2, 3).reshape(b, -1, h, w))
        return out

    def predict_by_feat(self, cls_scores, bbox_preds, objectnesses=None, *args, **kwargs):
        return super().predict_by_feat(cls_scores, self.to_yolov5_maps(bbox_preds), objectnesses, *args, **kwargs)
