"""Uncertainty-guided refinement: the closed-form perturbation of Eq. 15 (for Eq. 14)."""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
from torch import Tensor

__all__ = ["refine_perturbation", "NORMS"]

NORMS = ("sample", "level")


def refine_perturbation(loss: Tensor, features: Sequence[Tensor], rho: float,
                        norm: str = "sample", eps: float = 1e-12) -> List[Tensor]:
    """Eq. 15: ``epsilon_i = rho * g_i / ||g_i||_2`` with ``g_i = d loss / d P_i``.

    Args:
        loss: 0-d tensor, the uncertainty loss L_UM (Eq. 12) computed from ``features``.
        features: the FPN levels ``P_i`` the head reads, each ``(B, ...)`` (batch first),
            e.g. ``(B, C, H_i, W_i)``.
        rho: perturbation radius (>= 0).
        norm: where the L2 norm is taken.
            ``"sample"`` (default): per image and per level, so every image's perturbation
            on every level has norm ``rho``; the step then does not depend on the batch size
            or the number of GPUs. It is the exact maximiser of the linearised inner problem
            of Eq. 14 when the constraint ``||epsilon|| <= rho`` holds per image and level
            (the per-image losses are a sum, so the problem separates).
            ``"level"``: over the whole level tensor, batch included (one ball per level, the
            reading of the authors' earlier SET code).
        eps: added to the norm so that a zero gradient gives a zero perturbation.

    Returns:
        One perturbation per level, same shape and dtype as the level (the norm is computed
        in float32, float64 for float64 levels), detached: the gradient
        is taken with ``retain_graph=True`` and without ``create_graph``, so the caller can
        still back-propagate ``loss`` and no second-order terms are built (Sharpness-Aware
        Minimization's first-order step, Foret et al. 2021). Only the feature gradients are
        computed, none for the weights. A level ``loss`` does not depend on gets zeros.
    """
    if not (rho >= 0):
        raise ValueError(f"rho must be >= 0, got {rho!r}")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    features = list(features)
    if not features:
        raise ValueError("features is empty: pass the list of feature maps (one per FPN level)")
    if loss.dim() != 0:
        raise ValueError(f"loss must be a 0-d tensor, got shape {tuple(loss.shape)}")
    if not loss.requires_grad:
        raise ValueError("loss does not require grad: compute it from the features (and do not "
                         "call refine_perturbation under torch.no_grad())")
    for i, f in enumerate(features):
        if not f.requires_grad:
            raise ValueError(f"features[{i}] does not require grad; the perturbation is the "
                             f"gradient of the loss with respect to it")
    if rho == 0:
        return [torch.zeros_like(f) for f in features]
    grads = torch.autograd.grad(loss, features, retain_graph=True, allow_unused=True)
    out = []
    for f, g in zip(features, grads):
        if g is None:
            out.append(torch.zeros_like(f))
            continue
        g32 = g.double() if g.dtype == torch.float64 else g.float()
        if norm == "sample":
            g_norm = g32.flatten(1).norm(dim=1).view((-1,) + (1,) * (g.dim() - 1))
        else:
            g_norm = g32.norm()
        out.append((rho * g32 / (g_norm + eps)).to(f.dtype))
    return out
