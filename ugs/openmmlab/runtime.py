"""Everything a kit config needs registered (its ``custom_imports`` target)."""
from . import compat  # noqa: F401  (before anything imports mmrotate)
from .metric import VisDroneMetric  # noqa: F401
from .models import UGSDINO, UGSDINOHead  # noqa: F401
from .models import UGSFCOSHead, UGSGFLHead, UGSRPNHead, UGSShared2FCBBoxHead, UGSStandardRoIHead  # noqa: F401,E501
from .optim import NonFiniteGuardOptimWrapper  # noqa: F401
