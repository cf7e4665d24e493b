"""The UGS localization objective of Eq. 16: CE + lambda * UM + gamma * UR."""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

from torch import Tensor, nn

from .grid import IntervalGrid
from .localization import localization_ce
from .refinement import NORMS, refine_perturbation
from .uncertainty import uncertainty_loss

__all__ = ["UGSLoss", "UR_OBJECTIVES"]

UR_OBJECTIVES = ("localization", "entropy")


class UGSLoss(nn.Module):
    """Eq. 16 over one detector's localization logits.

    Args:
        alpha, beta, n: the :class:`IntervalGrid` (Eq. 9).
        lam: lambda, weight of the uncertainty loss L_UM (Eq. 12).
        gamma: weight of the refinement loss L^ur; 0 switches the refinement step off.
        rho: perturbation radius of Eq. 15.
        refine_norm: ``"sample"`` or ``"level"``, see :func:`refine_perturbation`.
        ur_objective: what L^ur is on the perturbed features. ``"localization"`` (default):
            the same ``CE + lambda * UM`` as on the clean features, so the head learns to
            localise correctly where the features are most uncertain (as the authors' SET
            code adds the head losses at the perturbed point). ``"entropy"``: ``UM`` alone,
            the literal inner term of Eq. 14. The paper does not say which.

    Defaults are Table 6's best row (lambda = gamma = rho = 0.5). Eq. 14's
    ``gamma * ||P_i||^2`` regulariser does not appear in Eq. 16 and is not applied.
    """

    def __init__(self, alpha: float, beta: float, n: int, lam: float = 0.5, gamma: float = 0.5,
                 rho: float = 0.5, refine_norm: str = "sample",
                 ur_objective: str = "localization") -> None:
        super().__init__()
        for name, value in (("lam", lam), ("gamma", gamma), ("rho", rho)):
            if not (value >= 0):
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        if refine_norm not in NORMS:
            raise ValueError(f"refine_norm must be one of {NORMS}, got {refine_norm!r}")
        if ur_objective not in UR_OBJECTIVES:
            raise ValueError(f"ur_objective must be one of {UR_OBJECTIVES}, got {ur_objective!r}")
        self.grid = IntervalGrid(alpha, beta, n)
        self.lam, self.gamma, self.rho = float(lam), float(gamma), float(rho)
        self.refine_norm, self.ur_objective = refine_norm, ur_objective

    def extra_repr(self) -> str:
        return (f"lam={self.lam}, gamma={self.gamma}, rho={self.rho}, "
                f"refine_norm={self.refine_norm!r}, ur_objective={self.ur_objective!r}")

    def _terms(self, logits: Tensor, targets: Tensor, weight: Optional[Tensor]):
        ce = localization_ce(logits, targets, self.grid, weight=weight)
        um = uncertainty_loss(logits, weight=weight)
        return ce, um

    def forward(self, logits: Tensor, targets: Tensor, weight: Optional[Tensor] = None,
                features: Optional[Sequence[Tensor]] = None,
                predict: Optional[Callable[[List[Tensor]], Tensor]] = None
                ) -> Dict[str, Tensor]:
        """Return the weighted terms of Eq. 16 as a dict (sum the ``loss_*`` values).

        Args:
            logits: ``(..., n + 1)`` predicted on ``features``.
            targets: ``(...)`` continuous targets in the grid's units.
            weight: optional per-target weight (e.g. FCOS centerness), broadcast to ``(...)``.
            features: the FPN levels the logits were computed from; with ``predict`` and
                ``gamma > 0`` the refinement term is added.
            predict: maps a list of (perturbed) levels to logits laid out like ``logits``
                (same positions, same targets): usually the regression branch of the head
                gathered at the positive locations.

        Returns:
            ``loss_ce`` (Eq. 10), ``loss_um`` (lambda * Eq. 12), ``loss_ur`` (gamma * L^ur, only
            when refinement runs) and ``num_clamped`` (targets outside [-alpha, alpha]; not a
            loss, for logging).
        """
        ce, um = self._terms(logits, targets, weight)
        out = {"loss_ce": ce, "loss_um": self.lam * um,
               "num_clamped": (targets.detach().abs() > self.grid.alpha).sum().float()}
        if self.gamma > 0 and features is not None:
            if predict is None:
                raise ValueError("predict is required with features: it re-runs the regression "
                                 "branch on the perturbed features (Eq. 16, L^ur)")
            out["loss_ur"] = self.gamma * self.refinement_loss(um, features, predict,
                                                               targets, weight)
        return out

    def refinement_loss(self, um: Tensor, features: Sequence[Tensor],
                        predict: Callable[[List[Tensor]], Tensor], targets: Tensor,
                        weight: Optional[Tensor] = None) -> Tensor:
        """L^ur of Eq. 16 (unweighted by gamma): the loss on ``P_i + epsilon_i*`` (Eq. 15)."""
        features = list(features)
        deltas = refine_perturbation(um, features, self.rho, norm=self.refine_norm)
        logits_p = predict([f + d for f, d in zip(features, deltas)])
        ce_p, um_p = self._terms(logits_p, targets, weight)
        if self.ur_objective == "entropy":
            return um_p
        return ce_p + self.lam * um_p
