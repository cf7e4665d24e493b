"""Gradient diagnostics of the paper's Figs. 1, 2, 5 and 6, in plain PyTorch.

The paper argues from measured gradients:

* **gradient-magnitude maps** (Figs. 1, 5): the L2 norm over channels of the gradient of the
  loss with respect to the regression features, one value per feature-map cell
  (:func:`gradient_magnitude`);
* **average object gradient per size** (Fig. 2): the magnitudes summed inside each ground-truth
  box (:func:`object_gradient_sums`), averaged per COCO size class (:func:`coco_size_bucket`,
  :func:`bucket_means`);
* **variance of the localization gradients per anchor size** (Fig. 6): for each anchor-width
  bucket (:func:`width_bucket`), the variance across training iterations of a per-iteration
  statistic, accumulated in one pass (:class:`Welford`, :class:`BucketVariance`); the
  per-anchor localization gradient is taken in the feature space the regression layer reads
  (:func:`anchor_feature_gradient_norms`), the same space for every loss.

Nothing here imports a detection framework; ``ugs.openmmlab.diagnostics_hook`` feeds these
functions from an mmengine training run.
"""
from __future__ import annotations

import math
from typing import Dict, Hashable, Iterable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

#: COCO's object-size classes by area (pixels^2): small < 32^2 <= medium < 96^2 <= large
COCO_SIZES = ("small", "medium", "large")
COCO_AREA_EDGES = (32.0 ** 2, 96.0 ** 2)
#: Fig. 6's anchor-width buckets (pixels): the paper reports w_a < 32; the panel groups anchors
#: by size, the kit uses octaves above 32
ANCHOR_WIDTH_EDGES = (32.0, 64.0, 128.0)


# ------------------------------------------------------------------------------ maps

def gradient_magnitude(grad: Tensor, channel_dim: int = -3) -> Tensor:
    """L2 norm over channels of a feature gradient: ``(..., C, H, W)`` -> ``(..., H, W)``."""
    if grad.dim() < 3:
        raise ValueError(f"grad: expected (..., C, H, W), got shape {tuple(grad.shape)}")
    return grad.detach().float().norm(p=2, dim=channel_dim)


def box_cell_mask(box: Sequence[float], shape: Tuple[int, int], stride: float,
                  offset: float = 0.5) -> Tensor:
    """Boolean ``(H, W)`` mask of the cells of a stride-``stride`` map inside ``box``.

    Cell ``(i, j)`` stands for the image point ``((j + offset) * stride, (i + offset) *
    stride)`` (mmdet's prior generators use ``offset = 0.5`` for points, 0 for anchors' centres
    on a grid of strides); it is inside ``box = (x1, y1, x2, y2)`` when ``x1 <= x < x2`` and
    ``y1 <= y < y2``. A box that contains no cell point (narrower than the stride) gets the one
    cell its centre falls in, so that every object has a gradient at every level.
    """
    h, w = shape
    if stride <= 0:
        raise ValueError(f"stride must be > 0, got {stride}")
    x1, y1, x2, y2 = (float(v) for v in box)
    if not (x2 >= x1 and y2 >= y1):
        raise ValueError(f"box must be (x1, y1, x2, y2) with x2 >= x1, y2 >= y1, got {box}")
    xs = (torch.arange(w, dtype=torch.float64) + offset) * stride
    ys = (torch.arange(h, dtype=torch.float64) + offset) * stride
    mask = ((ys >= y1) & (ys < y2))[:, None] & ((xs >= x1) & (xs < x2))[None, :]
    if not mask.any():
        j = min(max(int(math.floor((x1 + x2) / 2 / stride)), 0), w - 1)
        i = min(max(int(math.floor((y1 + y2) / 2 / stride)), 0), h - 1)
        mask[i, j] = True
    return mask


def object_gradient_sums(magnitude: Tensor, boxes: Tensor, stride: float,
                         offset: float = 0.5) -> Tensor:
    """Per box, the sum of ``magnitude`` ``(H, W)`` over the cells inside it
    (:func:`box_cell_mask`): ``boxes (N, 4)`` -> ``(N,)``."""
    if magnitude.dim() != 2:
        raise ValueError(f"magnitude: expected (H, W), got shape {tuple(magnitude.shape)}")
    boxes = torch.as_tensor(boxes, dtype=torch.float64).reshape(-1, 4)
    mag = magnitude.detach().double().cpu()
    return torch.stack([mag[box_cell_mask(b.tolist(), tuple(mag.shape), stride, offset)].sum()
                        for b in boxes]) if len(boxes) else torch.zeros(0, dtype=torch.float64)


# ------------------------------------------------------------------------------ buckets

def coco_size_bucket(areas) -> Tensor:
    """COCO size class index per area: 0 small (< 32^2), 1 medium (< 96^2), 2 large."""
    a = torch.as_tensor(areas, dtype=torch.float64)
    return torch.bucketize(a, torch.tensor(COCO_AREA_EDGES, dtype=torch.float64), right=True)


def width_bucket(widths, edges: Sequence[float] = ANCHOR_WIDTH_EDGES) -> Tensor:
    """Bucket index per width: 0 for ``w < edges[0]``, k for ``edges[k-1] <= w < edges[k]``,
    ``len(edges)`` above the last edge."""
    e = torch.tensor(sorted(edges), dtype=torch.float64)
    return torch.bucketize(torch.as_tensor(widths, dtype=torch.float64), e, right=True)


def width_bucket_names(edges: Sequence[float] = ANCHOR_WIDTH_EDGES) -> List[str]:
    """Names of :func:`width_bucket`'s buckets, e.g. ``['w<32', '32<=w<64', ..., 'w>=128']``."""
    e = [f"{v:g}" for v in sorted(edges)]
    return ([f"w<{e[0]}"] + [f"{a}<=w<{b}" for a, b in zip(e, e[1:])] + [f"w>={e[-1]}"])


def bucket_means(values, buckets, num_buckets: int) -> List[Optional[float]]:
    """Mean of ``values`` per bucket index (``None`` for an empty bucket)."""
    v = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
    b = torch.as_tensor(buckets, dtype=torch.long).reshape(-1)
    if v.shape != b.shape:
        raise ValueError(f"values and buckets differ in length: {v.numel()} vs {b.numel()}")
    out = []
    for k in range(num_buckets):
        sel = v[b == k]
        out.append(float(sel.mean()) if sel.numel() else None)
    return out


# ------------------------------------------------------------------------------ variance

class Welford:
    """Streaming mean and variance (Welford's update), one value at a time.

    ``var(ddof=0)`` is the population variance (``numpy.var``), ``ddof=1`` the sample one.
    """

    def __init__(self) -> None:
        self.count = 0
        self.mean = 0.0
        self._m2 = 0.0

    def update(self, x: float) -> None:
        x = float(x)
        if not math.isfinite(x):
            raise ValueError(f"Welford.update: non-finite value {x}")
        self.count += 1
        d = x - self.mean
        self.mean += d / self.count
        self._m2 += d * (x - self.mean)

    def extend(self, xs: Iterable[float]) -> None:
        for x in xs:
            self.update(x)

    def var(self, ddof: int = 0) -> float:
        return self._m2 / (self.count - ddof) if self.count > ddof else float("nan")

    def state(self) -> dict:
        return dict(count=self.count, mean=self.mean, var=self.var(0),
                    var_sample=self.var(1))


class BucketVariance:
    """One :class:`Welford` per bucket: ``update(bucket, value)`` across iterations."""

    def __init__(self, names: Sequence[Hashable]) -> None:
        self.names = list(names)
        self.acc: Dict[Hashable, Welford] = {n: Welford() for n in self.names}

    def update(self, name: Hashable, value: Optional[float]) -> None:
        if name not in self.acc:
            raise KeyError(f"unknown bucket {name!r}; known: {self.names}")
        if value is not None:
            self.acc[name].update(value)

    def state(self) -> dict:
        return {str(n): self.acc[n].state() for n in self.names}


# ------------------------------------------------------------------------------ anchors

def anchor_feature_gradient_norms(grad_out: Tensor, weight: Tensor,
                                  num_anchors: int) -> Tuple[Tensor, Tensor]:
    """Per-anchor localization gradient in the feature space of a 1x1 regression conv.

    ``grad_out (B, A * K, H, W)`` is the gradient of the loss at the conv's output, channel
    ``a * K + k`` belonging to anchor ``a`` (mmdet's layout); ``weight (A * K, C, 1, 1)`` the
    conv's weight. Anchor ``a`` at ``(b, i, j)`` contributes ``W_a^T g_a`` (a ``C``-vector) to
    the gradient of the feature there; returns its L2 norm and whether ``g_a`` is non-zero (the
    anchor took part in the loss), both ``(B, H * W * A)`` in mmdet's prior order (row, column,
    anchor).
    """
    b, ak, h, w = grad_out.shape
    if ak % num_anchors or weight.shape[0] != ak or weight.shape[2:] != (1, 1):
        raise ValueError(f"grad_out {tuple(grad_out.shape)} and weight {tuple(weight.shape)} do "
                         f"not form a 1x1 conv with {num_anchors} anchors")
    k = ak // num_anchors
    g = grad_out.detach().float().reshape(b, num_anchors, k, h, w)
    wt = weight.detach().float().reshape(num_anchors, k, -1)
    feat = torch.einsum("bakhw,akc->bhwac", g, wt)
    norms = feat.norm(dim=-1).reshape(b, -1)
    active = (g.abs().amax(dim=2) > 0).permute(0, 2, 3, 1).reshape(b, -1)
    return norms, active


def variance_ratio(var_a: float, var_b: float) -> float:
    """``var_a / var_b`` (nan when either is missing or ``var_b`` is 0)."""
    if var_a is None or var_b is None or not var_b or math.isnan(var_a) or math.isnan(var_b):
        return float("nan")
    return var_a / var_b


def t_interval(values: Sequence[float], level: float = 0.95) -> Tuple[float, float, float]:
    """(mean, low, high): Student-t confidence interval of the mean of ``values`` (needs >= 2
    finite values; with one the interval is that value)."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return float("nan"), float("nan"), float("nan")
    m = sum(v) / len(v)
    if len(v) < 2:
        return m, m, m
    from scipy import stats

    s = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))
    half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * s / math.sqrt(len(v))
    return m, m - half, m + half


# ------------------------------------------------------------------- Figs. 2 and 5 over seeds

#: the CPU study's readings of Figs. 2 and 5 (notebook 12, Sec. 6): (name, what it compares,
#: the claim's side of 1: +1 the ratio is claimed above 1, -1 below)
CONVERGENCE_READINGS = (
    ("l2_small_vs_medium", "L2: last/first epoch, small over medium", +1),
    ("ugs_small_vs_medium", "UGS: last/first epoch, small over medium", +1),
    ("ugs_vs_l2_small_salience", "last epoch small/medium, UGS over L2", -1),
)


def _log_ratio(a: Optional[float], b: Optional[float]) -> float:
    return math.log(a / b) if a is not None and b is not None and a > 0 and b > 0 else float("nan")


def convergence_readings(l2: Dict[int, dict], ugs: Dict[int, dict]) -> Dict[str, Tuple[Dict[int, float], Dict[int, float]]]:
    """Figs. 2 and 5 read per seed, over the seeds both losses have. ``l2`` and ``ugs`` are
    ``{seed: {"first": {size: {"mean": m}}, "last": {...}}}``: the average object gradient per
    COCO size of a run's first and last epoch (the gradient hook's ``object_gradient_by_epoch``
    entries). Returns, per name of :data:`CONVERGENCE_READINGS`, ``(baseline, treatment)`` as
    ``{seed: log value}``, so that treatment - baseline is the log of the reading's ratio:

    * ``l2_small_vs_medium`` / ``ugs_small_vs_medium``: log(last/first) of the medium objects'
      gradient, and of the small ones' (Fig. 2: small falls less, the ratio above 1);
    * ``ugs_vs_l2_small_salience``: log(small/medium) at the last epoch, L2's and UGS's (Fig. 5:
      UGS makes small objects less salient, the ratio below 1; within a loss, because the
      losses' absolute gradient scales differ).

    A size without objects (mean ``None``) gives NaN."""
    seeds = sorted(set(l2) & set(ugs))

    def change(g, size):
        return _log_ratio(g["last"][size]["mean"], g["first"][size]["mean"])

    def salience(g):
        return _log_ratio(g["last"]["small"]["mean"], g["last"]["medium"]["mean"])

    return {"l2_small_vs_medium": ({s: change(l2[s], "medium") for s in seeds}, {s: change(l2[s], "small") for s in seeds}),
            "ugs_small_vs_medium": ({s: change(ugs[s], "medium") for s in seeds}, {s: change(ugs[s], "small") for s in seeds}),
            "ugs_vs_l2_small_salience": ({s: salience(l2[s]) for s in seeds}, {s: salience(ugs[s]) for s in seeds})}


def _check_side(side: int) -> None:
    """A claim's side of 1 is +1 (above) or -1 (below); anything else is an error."""
    if side not in (1, -1):
        raise ValueError(f"side must be +1 or -1, got {side!r}")


def claim_words(side: int) -> str:
    """The words for a claim's side of 1: ``"above"`` (``side`` +1) or ``"below"`` (-1), as
    :func:`claim_verdict` reads ``side``."""
    _check_side(side)
    return "above" if side > 0 else "below"


def claim_verdict(low: float, high: float, side: int) -> str:
    """A ratio's interval ``[low, high]`` against a claim that it lies above 1 (``side`` +1) or
    below 1 (-1): ``holds`` (the interval on the claim's side), ``contradicted`` (on the other
    side) or ``not resolved`` (it contains 1, or is not defined)."""
    _check_side(side)
    if not (math.isfinite(low) and math.isfinite(high)):
        return "not resolved"
    above, below = low > 1, high < 1
    if (above and side > 0) or (below and side < 0):
        return "holds"
    if (below and side > 0) or (above and side < 0):
        return "contradicted"
    return "not resolved"
