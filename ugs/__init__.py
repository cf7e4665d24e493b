"""UGS: Uncertainty-Aware Gradient Stabilization for small object detection, in plain PyTorch.

Each equation of Sun et al., ICCV 2025 is one function or method:

* :class:`IntervalGrid` - the interval non-uniform grid (Eq. 9), two-hot targets (Eq. 8) and
  expectation decoding (Sec. 3.2.1).
* :func:`localization_ce` - classification-based localization (Eq. 10; gradient Eq. 11).
* :func:`uncertainty_loss` - uncertainty minimization, the entropy (Eq. 12; gradient Eq. 13).
* :func:`refine_perturbation` - the uncertainty-guided refinement step (Eq. 14-15).
* :class:`UGSLoss` - the whole localization objective (Eq. 16).

Nothing here imports a detection framework; adapters (mmdet, ...) live in sub-packages.
"""
from .grid import IntervalGrid, interval_grid_values
from .localization import localization_ce
from .objective import UGSLoss
from .refinement import refine_perturbation
from .uncertainty import entropy_logit_gradient, uncertainty_loss

__version__ = "0.1.0"

__all__ = [
    "IntervalGrid", "interval_grid_values", "localization_ce", "uncertainty_loss",
    "entropy_logit_gradient", "refine_perturbation", "UGSLoss", "__version__",
]
