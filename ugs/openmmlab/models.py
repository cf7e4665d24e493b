"""Registers every UGS model component with mmdet (import this via ``custom_imports``):

    custom_imports = dict(imports=["ugs.openmmlab.models"], allow_failed_imports=False)
"""
from .dino_head import UGSDINO, UGSDINOHead  # noqa: F401
from .fcos_head import UGSFCOSHead  # noqa: F401
from .gfl_head import UGSGFLHead  # noqa: F401
from .two_stage import UGSRPNHead, UGSShared2FCBBoxHead, UGSStandardRoIHead  # noqa: F401

__all__ = ["UGSDINO", "UGSDINOHead", "UGSFCOSHead", "UGSGFLHead", "UGSRPNHead", "UGSShared2FCBBoxHead", "UGSStandardRoIHead"]
