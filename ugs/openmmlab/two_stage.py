"""Registers the UGS two-stage components with mmdet (Faster R-CNN and relatives):

* :class:`ugs.openmmlab.rpn_head.UGSRPNHead` - the RPN (Table 7: alpha 2, beta 1.0, n 10);
* :class:`ugs.openmmlab.roi_head.UGSShared2FCBBoxHead` - the R-CNN bbox head (alpha 5,
  beta 1.0, n 5);
* :class:`ugs.openmmlab.roi_head.UGSStandardRoIHead` - the RoI head that adds the R-CNN
  stage's refinement step (Eq. 14-15 through RoIAlign);
* :class:`ugs.openmmlab.roi_head.UGSCascadeRoIHead` - Cascade R-CNN's RoI head with that step
  in every stage.
"""
from __future__ import annotations

from .roi_head import (UGSCascadeRoIHead, UGSShared2FCBBoxHead, UGSStandardRoIHead,  # noqa: F401
                       rcnn_refinement_loss)
from .rpn_head import UGSRPNHead  # noqa: F401

__all__ = ["UGSRPNHead", "UGSShared2FCBBoxHead", "UGSStandardRoIHead", "UGSCascadeRoIHead",
           "rcnn_refinement_loss"]

