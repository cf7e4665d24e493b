"""Everything a kit config needs registered (its ``custom_imports`` target)."""
from . import compat  # noqa: F401  (before anything imports mmrotate)
from . import models  # noqa: F401  (every UGS / baseline model component, see its __all__)
from .diagnostics_hook import GradientDiagnosticsHook  # noqa: F401
from .metric import CocoBoxMetric, VisDroneMetric  # noqa: F401
from .optim import NonFiniteGuardOptimWrapper  # noqa: F401
from . import schedulers  # noqa: F401  (the quick profile's fractional-epoch schedules)
