"""Classification-based localization: the cross-entropy of Eq. 10 and its gradient, Eq. 11."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ._reduction import check_reduction, weight_and_reduce
from .grid import IntervalGrid
from .uncertainty import finite_logits

__all__ = ["localization_ce"]


def localization_ce(logits: Tensor, targets: Tensor, grid: IntervalGrid,
                    reduction: str = "mean", weight: Optional[Tensor] = None,
                    avg_factor: Optional[float] = None) -> Tensor:
    """Eq. 10: cross-entropy between softmax(logits) and the two-hot targets of ``targets``.

    Args:
        logits: ``(..., n + 1)``, one distribution over ``grid`` per target.
        targets: ``(...)`` continuous targets, same leading shape as ``logits``; values
            outside [-alpha, alpha] are clamped by ``grid.encode``.
        grid: the :class:`IntervalGrid` the logits live on.
        reduction: ``"mean"`` (over targets), ``"sum"`` or ``"none"`` (shape ``(...)``).
        weight: optional per-target weight broadcastable to ``(...)``.
        avg_factor: with ``"mean"``, divide the (weighted) sum by this instead of the count.

    Returns:
        The loss, float32 for float32/bfloat16/float16 logits. Its gradient with respect to
        the logits is ``softmax(l) - p_star`` (Eq. 11), bounded in [-1, 1] per logit whatever
        the object's scale. An empty input gives a zero that still has a gradient.

    Reference: Sun et al., ICCV 2025, Eq. 10-11; with an integer uniform grid this is
    GFL V1's distribution focal loss (Li et al., NeurIPS 2020).
    """
    check_reduction(reduction)
    grid.check_logits(logits)
    if targets.shape != logits.shape[:-1]:
        raise ValueError(f"targets must have shape logits.shape[:-1] = {tuple(logits.shape[:-1])}, "
                         f"got {tuple(targets.shape)}")
    compute = torch.float64 if logits.dtype == torch.float64 else torch.float32
    p_star = grid.encode(targets.to(compute))
    loss = -(p_star * F.log_softmax(finite_logits(logits.to(compute)), dim=-1)).sum(-1)
    return weight_and_reduce(loss, weight, reduction, avg_factor)
