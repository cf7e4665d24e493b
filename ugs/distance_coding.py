"""Putting non-negative box distances on the symmetric UGS grid (a kit decision).

The IN grid of Eq. 9 lives on [-alpha, alpha] and is densest at 0: it was designed for
anchor offsets (Eq. 1), which are 0 when the anchor fits. Point-based heads (FCOS, GFL V1)
regress four non-negative distances ``(l, t, r, b)`` from a location to the box sides; the
paper does not say how the symmetric grid applies to them. The kit offers two mappings of a
distance ``d`` measured in units of the level's stride:

``"log"`` (default): ``T = ln(d)``, decoded as ``d = exp(T_hat)``.
    The point-based twin of Eq. 1's ``log(w / w_a)`` with the stride as the "anchor": T = 0 is a
    side one stride away, which is where small objects on their FPN level sit (an object of
    16 px on P3, stride 8, has its sides about one stride from its centre), so the dense part
    of the IN grid serves exactly the small objects the paper targets, and the precision is
    relative (the same fraction of the distance at every scale). With alpha = 3 the range is
    d in [e^-3, e^3] = [0.05, 20.1] strides: FCOS's regress ranges put at most 8 strides on
    P3-P6; smaller distances clamp at 0.05 stride (0.4 px on P3).
``"linear"``: ``T = d - alpha``, decoded as ``d = T_hat + alpha``.
    GFL V1's own convention shifted onto the symmetric grid: with beta = 0, alpha = 8, n = 16
    this is GFL V1's 17-bin integral representation exactly (and ``localization_ce`` is its
    DFL), the baseline the UGS grid generalises. With beta > 0 the dense region sits at
    d = alpha strides, away from small objects, which is why it is not the default.

Both are elementwise, shape-preserving and differentiable.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["DistanceCoder", "DISTANCE_MAPPINGS"]

DISTANCE_MAPPINGS = ("log", "linear")


class DistanceCoder:
    """Map distances in stride units to grid targets and back.

    Args:
        alpha: the grid's half-range (> 0), the same alpha as the :class:`~ugs.IntervalGrid`.
        mapping: ``"log"`` or ``"linear"`` (see the module docstring).
    """

    def __init__(self, alpha: float, mapping: str = "log") -> None:
        if not (alpha > 0 and math.isfinite(alpha)):
            raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}")
        if mapping not in DISTANCE_MAPPINGS:
            raise ValueError(f"mapping must be one of {DISTANCE_MAPPINGS}, got {mapping!r}")
        self.alpha, self.mapping = float(alpha), mapping

    def __repr__(self) -> str:
        return f"DistanceCoder(alpha={self.alpha}, mapping={self.mapping!r})"

    @property
    def distance_range(self) -> tuple:
        """The distances (stride units) that map inside [-alpha, alpha]."""
        if self.mapping == "log":
            return math.exp(-self.alpha), math.exp(self.alpha)
        return 0.0, 2 * self.alpha

    def to_grid(self, distance: Tensor) -> Tensor:
        """Distances (stride units, >= 0) -> targets on the grid's axis (not clamped here;
        :meth:`ugs.IntervalGrid.encode` clamps and counts)."""
        if self.mapping == "log":
            lo = math.exp(-self.alpha) / 2        # keeps log finite for d = 0 (clamped anyway)
            return torch.log(distance.clamp_min(lo))
        return distance - self.alpha

    def from_grid(self, t: Tensor) -> Tensor:
        """Grid values (e.g. the decoded expectation) -> distances in stride units."""
        if self.mapping == "log":
            return torch.exp(t)
        return t + self.alpha
