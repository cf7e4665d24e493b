"""The Gaussian negative log-likelihood of Table 6's "Bayesian YOLO" row, in plain PyTorch.

Table 6 of Sun et al. (ICCV 2025) compares UGS with "existing gradient stabilization"
methods on Faster R-CNN. Four of them are stock losses or optimizer settings (L2, Smooth-L1,
the IoU loss of UnitBox, gradient clipping; see ``configs/faster_rcnn/table6/``). The fifth,
Bayesian YOLO (Kraus & Dietmayer, "Uncertainty estimation in one-stage object detection",
ITSC 2019), lets the box regressor predict, for every coordinate, a mean ``mu`` and a
log-variance ``s = log sigma^2`` of a Gaussian, and trains both with the Gaussian negative
log-likelihood (aleatoric uncertainty)::

    NLL(x | mu, s) = 1/2 * s + 1/2 * (x - mu)^2 * exp(-s)       (+ 1/2 log(2 pi), dropped)

Its gradients are

    d NLL / d mu = -(x - mu) * exp(-s)
    d NLL / d s  =  1/2 * (1 - (x - mu)^2 * exp(-s))

so a large error can be absorbed by a larger predicted variance: the gradient on ``mu`` is
the L2 gradient divided by ``sigma^2``, which is the "uncertainty-aware" damping the paper
compares UGS with. The constant ``1/2 log(2 pi)`` has no gradient and is left out (as
``torch.nn.functional.gaussian_nll_loss`` does by default; that function takes the variance,
not its logarithm). At test time the mean is the box (the variance is not used).

Nothing here imports a detection framework; the mmdet head is
:mod:`ugs.openmmlab.gaussian_head`.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ._reduction import check_reduction, weight_and_reduce

__all__ = ["gaussian_nll", "split_mean_log_var"]


def gaussian_nll(mean: Tensor, log_var: Tensor, target: Tensor, reduction: str = "mean",
                 weight: Optional[Tensor] = None, avg_factor: Optional[float] = None,
                 full: bool = False) -> Tensor:
    """Gaussian negative log-likelihood of ``target`` under ``N(mean, exp(log_var))``.

    Args:
        mean: predicted means, any shape.
        log_var: predicted log-variances ``s = log sigma^2``, the shape of ``mean``.
        target: the regression targets (e.g. box-coder deltas), the shape of ``mean``.
        reduction: ``"mean"`` (over elements, or divided by ``avg_factor``), ``"sum"`` or
            ``"none"``.
        weight: optional per-element weight broadcastable to ``mean`` (mmdet's
            ``bbox_weights``).
        avg_factor: with ``"mean"``, divide the weighted sum by this instead of the count.
        full: add the constant ``1/2 log(2 pi)`` per element (no effect on gradients).

    Returns:
        ``1/2 s + 1/2 (x - mu)^2 exp(-s)`` per element, weighted and reduced; float32 for
        lower-precision inputs.
    """
    check_reduction(reduction)
    if not (mean.shape == log_var.shape == target.shape):
        raise ValueError(f"mean, log_var and target must have one shape, got "
                         f"{tuple(mean.shape)}, {tuple(log_var.shape)}, {tuple(target.shape)}")
    compute = torch.float64 if mean.dtype == torch.float64 else torch.float32
    mean, log_var = mean.to(compute), log_var.to(compute)
    err = target.detach().to(compute) - mean
    loss = 0.5 * log_var + 0.5 * err.square() * torch.exp(-log_var)
    if full:
        loss = loss + 0.5 * torch.log(torch.tensor(2 * torch.pi, dtype=compute))
    return weight_and_reduce(loss, weight, reduction, avg_factor)


def split_mean_log_var(pred: Tensor, dim: int = 4) -> tuple:
    """``(..., 2 dim)`` -> the means ``(..., dim)`` and log-variances ``(..., dim)``: the layout
    of the Gaussian heads, ``[mu_1 .. mu_dim, s_1 .. s_dim]`` per box."""
    if pred.size(-1) != 2 * dim:
        raise ValueError(f"expected {2 * dim} values (means then log-variances) in the last "
                         f"dimension, got shape {tuple(pred.shape)}")
    return pred[..., :dim], pred[..., dim:]
