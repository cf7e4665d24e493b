"""UGS's grid for rotated boxes (Table 3; kit decisions, the paper gives none for rotated boxes).

Two encodings, plain PyTorch:

:class:`DeltaGrids` - one interval non-uniform grid (Eq. 9) per regressed delta, all with the
    same ``beta`` and ``n`` (so the logits of a box are one ``(D, n + 1)`` block and every
    distribution's entropy, Eq. 12, is on the same scale) and each with its own half-range
    ``alpha``. A rotated box coder's deltas do not share a range: with le90 and the edge swap
    of ``DeltaXYWHTRBBoxCoder`` the angle delta is bounded, ``|dtheta| <= pi / 4`` (of the two
    readings ``(w, h, t)`` and ``(h, w, t + pi / 2)`` the coder keeps the one with the smaller
    angle change), divided by its std; the midpoint-offset coder's ``da`` / ``db`` are at most
    half the box side, ``|da| <= 0.5``, divided by theirs. Those deltas get exactly their bound
    as ``alpha``; the centre and size deltas keep Table 7's grid.

:class:`CircularGrid` - a uniform grid of ``num_bins`` angles on a circle of ``period`` (pi
    for a rectangle's orientation), for an angle regressed on its own (Rotated FCOS). A plain
    two-hot on the line ``[-pi / 2, pi / 2)`` is wrong at the wrap: ``-pi / 2 + e`` and
    ``pi / 2 - e`` are boxes ``2 e`` apart but would be put at the two ends of the grid, and
    the expectation of a distribution split between the two ends is about 0, the
    perpendicular orientation. Here the two-hot weights go to the two neighbouring bins
    around the circle (the last bin's right neighbour is the first), and decoding takes the
    expectation with the bin angles unwrapped around the most probable bin (each bin moved by
    a multiple of the period to within half a period of it), so a two-hot target decodes to
    its own angle exactly, across the wrap too. The grid is uniform: no orientation is
    special for a small object (the IN grid's density near 0 serves deltas that are usually
    small; an absolute angle is not).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._reduction import weight_and_reduce
from .grid import IntervalGrid
from .localization import localization_ce
from .uncertainty import finite_logits, uncertainty_loss

__all__ = ["DeltaGrids", "CircularGrid", "EDGE_SWAP_ANGLE_BOUND", "MIDPOINT_OFFSET_BOUND"]

#: ``|dtheta|`` of ``DeltaXYWHTRBBoxCoder`` with le90 and ``edge_swap=True`` (before its std)
EDGE_SWAP_ANGLE_BOUND = math.pi / 4
#: ``|da|``, ``|db|`` of ``MidpointOffsetCoder`` (before its std): half the box side / the side
MIDPOINT_OFFSET_BOUND = 0.5


class DeltaGrids(nn.Module):
    """One :class:`~ugs.IntervalGrid` per delta (see the module docstring).

    Args:
        alphas: the half-range of each delta's grid, ``D`` values > 0.
        beta, n: shared by all grids (Eq. 9).
    """

    def __init__(self, alphas: Sequence[float], beta: float, n: int) -> None:
        super().__init__()
        alphas = [float(a) for a in alphas]
        if not alphas:
            raise ValueError("alphas is empty: give one half-range per delta")
        self.grids = nn.ModuleList(IntervalGrid(a, beta, n) for a in alphas)
        self.alphas, self.beta, self.n = tuple(alphas), float(beta), n

    @property
    def num_bins(self) -> int:
        return self.n + 1

    @property
    def num_deltas(self) -> int:
        return len(self.grids)

    def extra_repr(self) -> str:
        return f"alphas={tuple(round(a, 4) for a in self.alphas)}, beta={self.beta}, n={self.n}"

    def _check(self, logits: Tensor) -> None:
        if logits.dim() < 2 or logits.shape[-2:] != (self.num_deltas, self.num_bins):
            raise ValueError(f"logits must have shape (..., {self.num_deltas}, {self.num_bins}) "
                             f"(deltas, grid points), got {tuple(logits.shape)}")

    def decode(self, logits: Tensor) -> Tensor:
        """``(..., D, n + 1)`` -> ``(..., D)``: each delta's expectation over its own grid."""
        self._check(logits)
        return torch.stack([g.decode(logits[..., k, :]) for k, g in enumerate(self.grids)], -1)

    def encode(self, targets: Tensor) -> Tensor:
        """``(..., D)`` -> two-hot ``(..., D, n + 1)`` (each clamped to its own range)."""
        if targets.dim() == 0 or targets.shape[-1] != self.num_deltas:
            raise ValueError(f"targets must have shape (..., {self.num_deltas}) (one value per delta), "
                             f"got {tuple(targets.shape)}")
        return torch.stack([g.encode(targets[..., k]) for k, g in enumerate(self.grids)], -2)

    def terms(self, logits: Tensor, targets: Tensor, weight: Optional[Tensor],
              avg_factor: float) -> Tuple[Tensor, Tensor]:
        """Eq. 10 and Eq. 12 of ``logits (P, D, n + 1)`` against ``targets (P, D)``, weighted
        per delta (``weight (P, D)``), summed over deltas and boxes, divided by
        ``avg_factor``."""
        self._check(logits)
        if targets.shape != logits.shape[:-1]:
            raise ValueError(f"targets must have shape {tuple(logits.shape[:-1])}, "
                             f"got {tuple(targets.shape)}")
        targets = targets.detach()
        ce = sum(localization_ce(logits[:, k], targets[:, k], g,
                                 weight=None if weight is None else weight[:, k],
                                 avg_factor=avg_factor)
                 for k, g in enumerate(self.grids))
        um = uncertainty_loss(logits, weight=weight, avg_factor=avg_factor)
        return ce, um


class CircularGrid(nn.Module):
    """``num_bins`` angles ``-period / 2 + j period / num_bins`` on a circle (module docstring).

    Args:
        num_bins: number of grid angles (>= 3).
        period: the angle's period (``math.pi`` for a rectangle).
    """

    def __init__(self, num_bins: int, period: float = math.pi) -> None:
        super().__init__()
        if isinstance(num_bins, bool) or not isinstance(num_bins, int) or num_bins < 3:
            raise ValueError(f"num_bins must be an integer >= 3, got {num_bins!r}")
        if not (period > 0 and math.isfinite(period)):
            raise ValueError(f"period must be a finite number > 0, got {period!r}")
        self.num_bins, self.period = num_bins, float(period)
        self.step = self.period / num_bins
        self.register_buffer("values", self._values(torch.float32), persistent=False)

    def _values(self, dtype) -> Tensor:
        return -self.period / 2 + torch.arange(self.num_bins, dtype=torch.float64) * self.step \
            if dtype == torch.float64 else self._values(torch.float64).to(dtype)

    def extra_repr(self) -> str:
        return f"num_bins={self.num_bins}, period={self.period:.6g}"

    def wrap(self, theta: Tensor) -> Tensor:
        """Angles into ``[-period / 2, period / 2)``."""
        half = self.period / 2
        return torch.remainder(theta + half, self.period) - half

    def encode(self, theta: Tensor) -> Tensor:
        """Angles ``(...)`` (any real value) -> circular two-hot ``(..., num_bins)``: the weights
        of the two neighbouring grid angles around the circle, linear in the angle, summing to
        1. Raises ValueError for NaN / inf."""
        if not torch.is_floating_point(theta):
            raise ValueError(f"theta must be a floating tensor, got dtype {theta.dtype}")
        if theta.numel() and not bool(torch.isfinite(theta).all()):
            raise ValueError("theta holds NaN/inf; the grid encodes finite angles only")
        compute = torch.float64 if theta.dtype == torch.float64 else torch.float32
        u = (self.wrap(theta.to(compute)) + self.period / 2) / self.step   # in [0, num_bins)
        left = torch.floor(u).long().clamp(0, self.num_bins - 1)
        w_r = (u - left).clamp(0, 1)
        right = (left + 1) % self.num_bins
        p = torch.zeros(theta.shape + (self.num_bins,), dtype=compute, device=theta.device)
        p.scatter_(-1, left.unsqueeze(-1), (1 - w_r).unsqueeze(-1))
        p.scatter_add_(-1, right.unsqueeze(-1), w_r.unsqueeze(-1))
        return p.to(theta.dtype)

    def _check(self, logits: Tensor) -> None:
        if not torch.is_floating_point(logits) or logits.dim() == 0 \
                or logits.shape[-1] != self.num_bins:
            raise ValueError(f"logits must be floating with last dimension {self.num_bins}, got "
                             f"dtype {logits.dtype}, shape {tuple(logits.shape)}")

    def decode(self, logits: Tensor) -> Tensor:
        """``(..., num_bins)`` -> angles ``(...)`` in ``[-period / 2, period / 2)``: the
        expectation of the grid angles unwrapped around the most probable bin."""
        self._check(logits)
        compute = torch.float64 if logits.dtype == torch.float64 else torch.float32
        values = self._values(compute).to(logits.device)
        prob = torch.softmax(logits.to(compute), dim=-1)
        mode = values[prob.argmax(-1)].unsqueeze(-1)
        unwrapped = mode + self.wrap(values - mode)
        return self.wrap((prob * unwrapped).sum(-1)).to(logits.dtype)

    def ce(self, logits: Tensor, theta: Tensor, weight: Optional[Tensor] = None,
           avg_factor: Optional[float] = None) -> Tensor:
        """Eq. 10 on the circle: cross-entropy of ``softmax(logits)`` against
        :meth:`encode` ``(theta)``, weighted, summed and divided by ``avg_factor``."""
        self._check(logits)
        if theta.shape != logits.shape[:-1]:
            raise ValueError(f"theta must have shape {tuple(logits.shape[:-1])}, "
                             f"got {tuple(theta.shape)}")
        compute = torch.float64 if logits.dtype == torch.float64 else torch.float32
        p_star = self.encode(theta.detach().to(compute))
        loss = -(p_star * F.log_softmax(finite_logits(logits.to(compute)), -1)).sum(-1)
        return weight_and_reduce(loss, weight, "mean", avg_factor)
