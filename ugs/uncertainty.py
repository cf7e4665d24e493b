"""Uncertainty minimization: the entropy loss of Eq. 12 and its gradient (Eq. 13)."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ._reduction import check_reduction, weight_and_reduce

__all__ = ["uncertainty_loss", "entropy_logit_gradient", "finite_logits"]


def finite_logits(logits: Tensor) -> Tensor:
    """Replace -inf logits (masked bins) by the dtype's lowest finite value, so that a bin of
    probability 0 contributes 0 * log 0 = 0 instead of NaN, to the loss and its gradient."""
    return logits.clamp_min(torch.finfo(logits.dtype).min)


def uncertainty_loss(logits: Tensor, reduction: str = "mean",
                     weight: Optional[Tensor] = None,
                     avg_factor: Optional[float] = None) -> Tensor:
    """Eq. 12: the Shannon entropy ``H(p) = -sum_i p_i log p_i`` of ``p = softmax(logits)``.

    Args:
        logits: ``(..., n + 1)``, the localization distribution of each target.
        reduction: ``"mean"`` (over targets), ``"sum"`` or ``"none"`` (shape ``(...)``).
        weight: optional per-target weight broadcastable to ``(...)``.
        avg_factor: with ``"mean"``, divide the (weighted) sum by this instead of the count.

    Returns:
        The entropy in nats (0 for a one-hot, ``log(n + 1)`` for the uniform distribution),
        float32 for low-precision logits. An empty input gives a zero with a gradient.

    Its gradient with respect to the logits is ``-p_i (log p_i + H(p))`` (see
    :func:`entropy_logit_gradient`); Eq. 13's ``-(log p_i + 1)`` is the derivative with
    respect to ``p_i``, not to the logits (notebook 02, "Errata").
    """
    check_reduction(reduction)
    if not torch.is_floating_point(logits) or logits.dim() == 0:
        raise ValueError(f"logits must be a floating tensor of shape (..., n + 1), got "
                         f"dtype {logits.dtype}, shape {tuple(logits.shape)}")
    compute = torch.float64 if logits.dtype == torch.float64 else torch.float32
    log_p = F.log_softmax(finite_logits(logits.to(compute)), dim=-1)
    entropy = -(log_p.exp() * log_p).sum(-1)
    return weight_and_reduce(entropy, weight, reduction, avg_factor)


def entropy_logit_gradient(logits: Tensor) -> Tensor:
    """Closed form of d H(softmax(l)) / d l_i = -p_i (log p_i + H(p)), shape of ``logits``.

    Used by the tests and notebook 02 as the independent check of autograd on Eq. 12.
    """
    log_p = F.log_softmax(finite_logits(logits), dim=-1)
    p = log_p.exp()
    h = -(p * log_p).sum(-1, keepdim=True)
    return -p * (log_p + h)
