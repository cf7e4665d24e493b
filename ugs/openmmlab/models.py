"""Registers every UGS model component with mmdet (import this via ``custom_imports``):

    custom_imports = dict(imports=["ugs.openmmlab.models"], allow_failed_imports=False)
"""
from .dino_head import UGSDINO, UGSDINOHead  # noqa: F401
from .fcos_head import UGSFCOSHead  # noqa: F401
from .gaussian_head import GaussianNLLLoss, GaussianShared2FCBBoxHead  # noqa: F401
from .gfl_head import UGSGFLHead  # noqa: F401
from .two_stage import (UGSCascadeRoIHead, UGSRPNHead, UGSShared2FCBBoxHead,  # noqa: F401
                        UGSStandardRoIHead)

__all__ = ["GaussianNLLLoss", "GaussianShared2FCBBoxHead", "UGSCascadeRoIHead", "UGSDINO",
           "UGSDINOHead", "UGSFCOSHead", "UGSGFLHead", "UGSRPNHead", "UGSShared2FCBBoxHead",
           "UGSStandardRoIHead"]
