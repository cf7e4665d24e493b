"""Weighting and reduction shared by the UGS losses (one place, one behaviour)."""
from __future__ import annotations

from typing import Optional

from torch import Tensor

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def weight_and_reduce(loss: Tensor, weight: Optional[Tensor], reduction: str,
                      avg_factor: Optional[float] = None) -> Tensor:
    """Multiply by ``weight`` (broadcast to ``loss``) and reduce.

    ``mean`` divides by the number of elements (not by the weight sum), or by ``avg_factor``
    when one is given (the normaliser detectors share across losses, e.g. the number of
    positives over all GPUs); an empty ``loss`` reduces to a 0-d zero that is still connected
    to the graph, so ``backward()`` works.
    """
    if avg_factor is not None and reduction != "mean":
        raise ValueError(f"avg_factor only applies to reduction='mean', got {reduction!r}")
    if weight is not None:
        if weight.shape != loss.shape:
            try:
                weight = weight.expand_as(loss)
            except RuntimeError:
                raise ValueError(f"weight of shape {tuple(weight.shape)} does not broadcast to "
                                 f"the per-target loss of shape {tuple(loss.shape)}") from None
        loss = loss * weight
    if reduction == "none":
        return loss
    if reduction == "sum" or loss.numel() == 0:
        return loss.sum()
    if avg_factor is not None:
        return loss.sum() / avg_factor
    return loss.mean()
