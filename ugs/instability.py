"""Gradient instability of L2 and IoU box losses on small objects (UGS, Eq. 1-7).

Each closed form of Sec. 3.1 is one function, as printed in the paper, and where the
printed form is not the derivative of the stated loss, a ``*_derived`` twin gives the
derivative worked out in notebook 01 (sympy, checked against autograd). The differentiable
losses are here too, so autograd can check every closed form.

Conventions: anchors ``(x_a, y_a, w_a, h_a)`` and boxes ``(x, y, w, h)`` in pixels,
centre-size form; offsets as in Eq. 1. All functions take tensors (or floats) and
broadcast.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "l2_offset_loss", "l2_log_size_loss", "iou_loss_shifted_squares",
    "l2_center_hessian", "l2_size_hessian", "l2_size_hessian_derived",
    "iou_loss_gradient", "iou_loss_gradient_derived",
    "iou_loss_hessian", "iou_loss_hessian_derived",
]


# --- the losses (Eq. 1, 2, 5) -------------------------------------------------------------
def l2_offset_loss(x_hat: Tensor, x: Tensor, x_a: Tensor, w_a: Tensor) -> Tensor:
    """Eq. 1-2 for a centre coordinate: ``((x - x_a)/w_a - (x_hat - x_a)/w_a)^2``."""
    return ((x - x_a) / w_a - (x_hat - x_a) / w_a) ** 2


def l2_log_size_loss(w_hat: Tensor, w: Tensor, w_a: Tensor) -> Tensor:
    """Eq. 1-2 for a size: ``(log(w/w_a) - log(w_hat/w_a))^2``."""
    return (torch.log(w / w_a) - torch.log(w_hat / w_a)) ** 2


def iou_loss_shifted_squares(x_hat: Tensor, x: Tensor, w: Tensor) -> Tensor:
    """Eq. 5, ``-ln(I/U)``, for two w x w squares whose centres differ by ``x - x_hat``
    along one axis (the setting of Sec. 3.1, after Xu et al. 2021). Needs ``|x - x_hat| < w``.
    """
    d = (x - x_hat).abs()
    inter = w * (w - d)
    union = 2 * w * w - inter
    return -torch.log(inter / union)


# --- closed forms as printed ---------------------------------------------------------------
def l2_center_hessian(w_a):
    """Eq. 3: ``d^2 L2 / d x_hat^2 = 2 / w_a^2`` (exact for every x_hat)."""
    return 2.0 / w_a ** 2


def l2_size_hessian(w_hat):
    """Eq. 4 as printed: ``d^2 L2 / d w_hat^2 = 2 / w_hat^2``.

    This is the curvature at the minimum (``w_hat = w``); elsewhere see
    :func:`l2_size_hessian_derived`.
    """
    return 2.0 / w_hat ** 2


def iou_loss_gradient(w, d):
    """Eq. 6 as printed: ``|d L_IoU / d x_hat| = 2 / (w^2 - d^2)``.

    Not the derivative of Eq. 5 (units of 1/length^2 for a gradient that must have 1/length);
    see :func:`iou_loss_gradient_derived`.
    """
    return 2.0 / (w ** 2 - d ** 2)


def iou_loss_hessian(w, d):
    """Eq. 7 as printed: ``d^2 L_IoU / d x_hat^2 = 4 w / (w^2 - d^2)^2``.

    Neither the second derivative of Eq. 5 nor the derivative of the printed Eq. 6; see
    :func:`iou_loss_hessian_derived`.
    """
    return 4.0 * w / (w ** 2 - d ** 2) ** 2


# --- closed forms derived from the stated losses (notebook 01) -----------------------------
def l2_size_hessian_derived(w_hat, w):
    """Second derivative of :func:`l2_log_size_loss` in ``w_hat``:
    ``2 (1 + log(w / w_hat)) / w_hat^2``; equals Eq. 4 at ``w_hat = w``."""
    ratio = w / w_hat
    log_ratio = torch.log(ratio) if torch.is_tensor(ratio) else math.log(ratio)
    return 2.0 * (1.0 + log_ratio) / w_hat ** 2


def iou_loss_gradient_derived(w, d):
    """``d L_IoU / d x_hat = -2 w / (w^2 - d^2) * sign(x - x_hat)`` for shifted squares;
    this returns its magnitude ``2 w / (w^2 - d^2)`` (about ``2 / w`` for ``d << w``)."""
    return 2.0 * w / (w ** 2 - d ** 2)


def iou_loss_hessian_derived(w, d):
    """``d^2 L_IoU / d x_hat^2 = 4 w d / (w^2 - d^2)^2`` for ``0 < d < w`` (about ``4 d / w^3``
    for a fixed pixel error ``d << w``: the paper's 1/w^3 scaling holds). ``d`` is the
    displacement ``|x - x_hat|``; its sign is ignored."""
    return 4.0 * w * abs(d) / (w ** 2 - d ** 2) ** 2
