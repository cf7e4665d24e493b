"""Table 6's "Bayesian YOLO" row in Faster R-CNN: a Gaussian R-CNN box head, registered in
mmdet's MODELS.

* ``GaussianNLLLoss`` - mmdet's loss interface around :func:`ugs.baselines.gaussian_nll`:
  ``pred (N, 8)`` holds the 4 means then the 4 log-variances of one box, ``target (N, 4)``
  the box-coder deltas, ``weight (N, 4)`` mmdet's ``bbox_weights``.
* ``GaussianShared2FCBBoxHead`` - mmdet's ``Shared2FCBBoxHead`` whose ``fc_reg`` predicts
  ``8`` values per box (per class, or once with ``reg_class_agnostic=True``): class ``c``
  owns columns ``8 c .. 8 c + 7`` = ``[mu_dx, mu_dy, mu_dw, mu_dh, s_dx, s_dy, s_dw, s_dh]``,
  ``s = log sigma^2``. mmdet's own ``BBoxHead.loss`` then selects the 8 values of the RoI's
  ground-truth class (its ``view(N, num_classes, -1)``) and hands them to
  ``GaussianNLLLoss`` with the usual targets, weights and ``avg_factor`` (the number of
  sampled RoIs), so nothing of mmdet's loss path is rewritten. Everything that decodes
  boxes (``_predict_by_feat_single``, ``regress_by_class``) sees the means only: the
  predicted variance is not used at test time.

Kraus & Dietmayer (ITSC 2019) also estimate epistemic uncertainty with Monte-Carlo dropout at
test time; that changes the reported variance, not the trained means or the boxes, and is
not part of this row (the paper's Table 6 compares localization training signals).
"""
from __future__ import annotations

from typing import Optional

from mmdet.models.roi_heads.bbox_heads.convfc_bbox_head import Shared2FCBBoxHead
from mmdet.registry import MODELS
from torch import Tensor, nn

from ugs.baselines import gaussian_nll, split_mean_log_var


@MODELS.register_module()
class GaussianNLLLoss(nn.Module):
    """Gaussian NLL on ``(N, 2 k)`` predictions (k means, k log-variances) against ``(N, k)``
    targets, mmdet's loss interface (``weight``, ``avg_factor``, ``reduction_override``)."""

    def __init__(self, reduction: str = "mean", loss_weight: float = 1.0) -> None:
        super().__init__()
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None, reduction_override: Optional[str] = None,
                **kwargs) -> Tensor:
        mean, log_var = split_mean_log_var(pred, target.size(-1))
        reduction = reduction_override or self.reduction
        if reduction != "mean":
            avg_factor = None
        return self.loss_weight * gaussian_nll(mean, log_var, target, reduction=reduction,
                                               weight=weight, avg_factor=avg_factor)


@MODELS.register_module()
class GaussianShared2FCBBoxHead(Shared2FCBBoxHead):
    """R-CNN box head predicting a Gaussian per delta (see the module docstring).

    Args:
        loss_bbox: the regression loss; default ``GaussianNLLLoss(loss_weight=1.0)``. It
            receives 8 values per positive RoI (means, log-variances), so it must be a loss
            that reads both.
        Other arguments: as ``Shared2FCBBoxHead``.
    """

    def __init__(self, *args, loss_bbox: Optional[dict] = None, **kwargs) -> None:
        loss_bbox = dict(type="GaussianNLLLoss", loss_weight=1.0) if loss_bbox is None \
            else loss_bbox
        super().__init__(*args, loss_bbox=loss_bbox, **kwargs)
        if self.reg_decoded_bbox:
            raise ValueError("GaussianShared2FCBBoxHead: reg_decoded_bbox=True is not supported "
                             "(the Gaussian is over the coder's deltas)")
        self.box_dim = self.bbox_coder.encode_size
        self.num_reg = 1 if self.reg_class_agnostic else self.num_classes
        if self.with_reg:
            # mmdet's predictor type and input, two values (mean, log-variance) per delta
            fc_reg = self.reg_predictor_cfg.copy()
            fc_reg.update(in_features=self.reg_last_dim,
                          out_features=self.num_reg * 2 * self.box_dim)
            self.fc_reg = MODELS.build(fc_reg)

    def split_pred(self, bbox_pred: Tensor) -> tuple:
        """``(N, num_reg 8)`` -> means ``(N, num_reg 4)`` (mmdet's layout) and log-variances
        ``(N, num_reg 4)``. 4-d deltas ``(N, num_reg 4)`` raise (they carry no variance)."""
        if bbox_pred.size(-1) != self.num_reg * 2 * self.box_dim:
            raise ValueError(f"bbox_pred must have {self.num_reg * 2 * self.box_dim} values per "
                             f"RoI (means and log-variances), got {tuple(bbox_pred.shape)}")
        mean, log_var = split_mean_log_var(
            bbox_pred.reshape(bbox_pred.size(0), self.num_reg, 2 * self.box_dim), self.box_dim)
        return mean.reshape(bbox_pred.size(0), -1), log_var.reshape(bbox_pred.size(0), -1)

    def _predict_by_feat_single(self, roi: Tensor, cls_score: Tensor, bbox_pred: Tensor,
                                img_meta: dict, rescale: bool = False, rcnn_test_cfg=None):
        if bbox_pred is not None:
            bbox_pred = self.split_pred(bbox_pred)[0]
        return super()._predict_by_feat_single(roi, cls_score, bbox_pred, img_meta,
                                               rescale=rescale, rcnn_test_cfg=rcnn_test_cfg)

    def regress_by_class(self, priors: Tensor, label: Tensor, bbox_pred: Tensor,
                         img_meta: dict) -> Tensor:
        return super().regress_by_class(priors, label, self.split_pred(bbox_pred)[0], img_meta)
