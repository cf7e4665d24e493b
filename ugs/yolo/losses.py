"""YOLOv5's classification and objectness loss with its positive-class weight, for mmyolo.

TPH-YOLOv5's hyper-parameters (``hyp.VisDrone.yaml``) set ``cls_pw = 0.631`` and ``obj_pw = 0.911``:
YOLOv5 builds ``BCEWithLogitsLoss(pos_weight=...)`` from them, which mmdet's ``CrossEntropyLoss``
(what mmyolo's YOLOv5 configs use) has no argument for. :class:`PosWeightedBCELoss` is that loss
in mmyolo's loss interface: ``mean`` over all elements of
``-(p * y * log sigmoid(x) + (1 - y) * log(1 - sigmoid(x)))``, times ``loss_weight``.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmyolo.registry import MODELS

__all__ = ["PosWeightedBCELoss"]


@MODELS.register_module()
class PosWeightedBCELoss(nn.Module):
    """Args:
        pos_weight: the weight of the positive term (YOLOv5's ``cls_pw`` / ``obj_pw``).
        reduction: ``"mean"`` (YOLOv5's), ``"sum"`` or ``"none"``.
        loss_weight: the loss gain (YOLOv5's ``cls`` / ``obj``, scaled as its ``train.py`` does).
    """

    def __init__(self, pos_weight: float = 1.0, reduction: str = "mean", loss_weight: float = 1.0) -> None:
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"PosWeightedBCELoss: reduction must be mean, sum or none, got {reduction!r}")
        self.pos_weight, self.reduction, self.loss_weight = float(pos_weight), reduction, float(loss_weight)

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[float] = None, reduction_override: Optional[str] = None) -> torch.Tensor:
        reduction = reduction_override or self.reduction
        loss = F.binary_cross_entropy_with_logits(pred, target.to(pred.dtype), reduction="none",
                                                  pos_weight=pred.new_tensor(self.pos_weight))
        if weight is not None:
            loss = loss * weight
        if reduction == "mean":
            loss = loss.sum() / avg_factor if avg_factor is not None else loss.mean()
        elif reduction == "sum":
            loss = loss.sum()
        return self.loss_weight * loss
