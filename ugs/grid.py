"""The interval non-uniform (IN) grid and its two-hot targets (UGS, Eq. 8-10).

Reference: Sun et al., "Uncertainty-Aware Gradient Stabilization for Small Object
Detection", ICCV 2025, Sec. 3.2.1.
"""
from __future__ import annotations

import math
from typing import Tuple, Union

import torch
from torch import Tensor, nn

__all__ = ["IntervalGrid", "interval_grid_values"]


def interval_grid_values(alpha: float, beta: float, n: int, dtype=torch.float64) -> Tensor:
    """Eq. 9: the n+1 points of the interval non-uniform grid on [-alpha, alpha].

    ``y_i = -alpha + 2 alpha i / n`` is the uniform grid and the IN grid is
    ``sign(y_i) * alpha / (exp(alpha beta) - 1) * (exp(beta |y_i|) - 1)``.
    ``beta = 0`` is the limit of Eq. 9, the uniform grid itself. A larger ``beta`` puts
    more points near zero (Sec. 3.2.1; Sec. 4.8 says the opposite, see notebook 02).

    Returns a float64 tensor of shape ``(n + 1,)``, strictly increasing, symmetric about 0,
    with ``values[0] == -alpha`` and ``values[n] == alpha`` exactly.
    """
    _check_grid_args(alpha, beta, n)
    i = torch.arange(n + 1, dtype=torch.float64)
    y = -alpha + 2.0 * alpha * i / n
    if alpha * beta < 1e-12:
        # the limit beta -> 0; the neglected terms are O(alpha * beta) relative.
        p = y
    else:
        # expm1 keeps the ratio accurate for small alpha * beta.
        p = torch.sign(y) * alpha * (torch.expm1(beta * y.abs()) / math.expm1(alpha * beta))
    # Pin the ends and the symmetry exactly (rounding would otherwise leave 1 ulp).
    p = (p - p.flip(0)) / 2
    p[0], p[-1] = -alpha, alpha
    return p.to(dtype)


def _check_grid_args(alpha: float, beta: float, n: int) -> None:
    if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}")
    if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta >= 0):
        raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if beta > 0 and alpha * beta > 700:
        raise ValueError(f"alpha * beta = {alpha * beta} overflows exp() in Eq. 9; use a smaller beta")


class IntervalGrid(nn.Module):
    """The IN grid of Eq. 9 with the two-hot encoding (Eq. 8) and expectation decoding.

    Args:
        alpha: half-width of the target range [-alpha, alpha] (> 0).
        beta: IN modulator (>= 0); 0 gives the uniform grid.
        n: number of intervals; the grid has n + 1 points (>= 1).

    The grid is a module so that ``values`` (a buffer, shape ``(n + 1,)``) moves with the
    detector under ``.to(device)``. Encoding and decoding accept tensors of any shape,
    device and floating dtype; the arithmetic runs in float32 (float64 for float64 input).

    Box convention: none. The grid quantizes whatever scalar target the adapter chooses
    (an anchor delta, a stride-normalised distance, a logit offset); the adapters document
    their mapping into [-alpha, alpha].
    """

    def __init__(self, alpha: float, beta: float, n: int) -> None:
        super().__init__()
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.n = n
        self.register_buffer("values", interval_grid_values(alpha, beta, n, torch.float32),
                             persistent=False)

    @property
    def num_bins(self) -> int:
        """n + 1, the number of logits one target needs."""
        return self.n + 1

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, n={self.n}"

    def _values_like(self, t: Tensor) -> Tensor:
        dtype = torch.float64 if t.dtype == torch.float64 else torch.float32
        if dtype == torch.float64:
            return interval_grid_values(self.alpha, self.beta, self.n).to(t.device)
        return self.values.to(device=t.device, dtype=dtype)

    def encode(self, t: Tensor, return_num_clamped: bool = False
               ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """Eq. 8 in interpolation form: continuous targets -> two-hot soft targets.

        Args:
            t: targets, any shape ``S``, floating dtype.
            return_num_clamped: also return how many targets lay outside [-alpha, alpha].

        Returns:
            ``p_star`` of shape ``S + (n + 1,)`` in ``t``'s dtype. For T between grid points
            y_l < y_r the weights are ``(y_r - T) / (y_r - y_l)`` on y_l and
            ``(T - y_l) / (y_r - y_l)`` on y_r, so they are >= 0, sum to 1 and
            ``sum_i p_star_i y_i == T`` (the decoded value of Sec. 3.2.1 recovers T).
            Targets outside the range are clamped to it first; with
            ``return_num_clamped`` a 0-d int64 tensor counting them comes second.

        Raises:
            ValueError: when ``t`` holds NaN or +-inf.

        Eq. 8 as printed weights each neighbour by its *own* distance times (n+1)/(2 alpha),
        which is reversed and assumes uniform spacing 2 alpha/(n+1); notebook 02, "Errata",
        shows both problems with numbers. The form here is the one whose expectation is T.
        """
        if not torch.is_floating_point(t):
            raise ValueError(f"t must be a floating tensor, got dtype {t.dtype}")
        if t.numel() and not bool(torch.isfinite(t).all()):
            bad = (~torch.isfinite(t)).sum().item()
            raise ValueError(f"t holds {bad} NaN/inf target(s); the grid encodes finite values only")
        values = self._values_like(t)
        tc = t.to(values.dtype)
        clamped = tc.clamp(-self.alpha, self.alpha)
        left = torch.searchsorted(values, clamped.contiguous(), right=True) - 1
        left = left.clamp(0, self.n - 1)
        y_l, y_r = values[left], values[left + 1]
        w_r = ((clamped - y_l) / (y_r - y_l)).clamp(0, 1)
        p_star = torch.zeros(t.shape + (self.n + 1,), dtype=values.dtype, device=t.device)
        p_star.scatter_(-1, left.unsqueeze(-1), (1 - w_r).unsqueeze(-1))
        p_star.scatter_add_(-1, (left + 1).unsqueeze(-1), w_r.unsqueeze(-1))
        p_star = p_star.to(t.dtype)
        if return_num_clamped:
            return p_star, (tc != clamped).sum()
        return p_star

    def check_logits(self, logits: Tensor, name: str = "logits") -> None:
        """Raise ValueError unless ``logits`` is floating with last dim n + 1."""
        if not torch.is_floating_point(logits):
            raise ValueError(f"{name} must be a floating tensor, got dtype {logits.dtype}")
        if logits.dim() == 0 or logits.shape[-1] != self.n + 1:
            raise ValueError(f"{name} must have last dimension n + 1 = {self.n + 1} "
                             f"(one logit per grid point), got shape {tuple(logits.shape)}")

    def decode(self, logits: Tensor) -> Tensor:
        """The expectation ``sum_i softmax(l)_i y_i`` (Sec. 3.2.1, after Eq. 10).

        Args:
            logits: ``(..., n + 1)``.
        Returns:
            ``(...)`` in the logits' dtype, inside [-alpha, alpha].
        """
        self.check_logits(logits)
        values = self._values_like(logits)
        prob = torch.softmax(logits.to(values.dtype), dim=-1)
        return (prob * values).sum(-1).to(logits.dtype)
