"""Exact IoU of rotated boxes in numpy, vectorised over pairs (SODA-A's evaluation, Table 3).

A rotated box is ``(cx, cy, w, h, angle)`` (angle in radians; its corners are those of
:func:`ugs.data.soda_a.rbox_to_poly`). The intersection of two boxes is the second's rectangle
clipped by the four half-planes of the first (Sutherland-Hodgman, all pairs at once, at most 8
vertices), its area by the shoelace formula, in float64:

    IoU = inter / (w1 h1 + w2 h2 - inter),   0 when the union is 0.

Boxes with a zero side have area 0 and IoU 0 with everything (also with themselves: nothing to
overlap). :func:`candidate_pairs` finds the pairs whose axis-aligned hulls overlap, the only
ones that can have IoU > 0, so an image's few overlapping pairs are all that is clipped.

numpy only.
"""
from __future__ import annotations

import numpy as np

__all__ = ["rbox_corners", "rbox_hulls", "rotated_iou_pairs", "rotated_iou_matrix", "candidate_pairs",
           "polygon_area", "clip_half_plane"]


def rbox_corners(boxes) -> np.ndarray:
    """``(N, 4, 2)`` corners of ``(N, 5)`` boxes, counter-clockwise in a y-up frame (positive
    shoelace area)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    c, s = np.cos(b[:, 4]), np.sin(b[:, 4])
    ux, uy = c * b[:, 2] / 2, s * b[:, 2] / 2          # half the width along the angle
    vx, vy = -s * b[:, 3] / 2, c * b[:, 3] / 2         # half the height, perpendicular
    cx, cy = b[:, 0], b[:, 1]
    return np.stack([np.stack([cx - ux - vx, cy - uy - vy], -1), np.stack([cx + ux - vx, cy + uy - vy], -1),
                     np.stack([cx + ux + vx, cy + uy + vy], -1), np.stack([cx - ux + vx, cy - uy + vy], -1)], axis=1)


def rbox_hulls(boxes) -> np.ndarray:
    """``(N, 4)`` axis-aligned hulls ``x0, y0, x1, y1`` of ``(N, 5)`` boxes."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    c, s = np.abs(np.cos(b[:, 4])), np.abs(np.sin(b[:, 4]))
    hx = (c * b[:, 2] + s * b[:, 3]) / 2
    hy = (s * b[:, 2] + c * b[:, 3]) / 2
    return np.stack([b[:, 0] - hx, b[:, 1] - hy, b[:, 0] + hx, b[:, 1] + hy], axis=1)


def polygon_area(points: np.ndarray, count: np.ndarray = None) -> np.ndarray:
    """Shoelace area of ``(N, K, 2)`` polygons whose first ``count`` vertices are used (all
    when None); counter-clockwise (y-up) gives a positive area."""
    p = np.asarray(points, dtype=np.float64)
    n, k = p.shape[:2]
    if count is None:
        count = np.full(n, k)
    idx = np.arange(k)[None, :]
    nxt = np.where(idx + 1 < count[:, None], idx + 1, 0)
    q = np.take_along_axis(p, nxt[:, :, None].repeat(2, axis=2), axis=1)
    cross = p[:, :, 0] * q[:, :, 1] - p[:, :, 1] * q[:, :, 0]
    cross = np.where(idx < count[:, None], cross, 0.0)
    return cross.sum(axis=1) / 2


def clip_half_plane(subject: np.ndarray, count: np.ndarray, a: np.ndarray, b: np.ndarray, slots: int = 8):
    """Clip each polygon ``subject[i][:count[i]]`` by the half-plane left of the directed edge
    ``a[i] -> b[i]`` (inside when the cross product >= 0; ``a``, ``b`` ``(N, 2)`` or ``(2,)``).
    Returns the new polygons in ``slots`` vertices (a convex polygon of K vertices clipped by
    m half-planes has at most K + m: 8 for two quadrilaterals) and their counts."""
    n, k = subject.shape[:2]
    idx = np.arange(k)[None, :]
    live = idx < count[:, None]
    nxt = np.where(idx + 1 < count[:, None], idx + 1, 0)
    p = subject
    q = np.take_along_axis(subject, nxt[:, :, None].repeat(2, axis=2), axis=1)
    a, b = np.broadcast_to(a, (n, 2)), np.broadcast_to(b, (n, 2))
    ex, ey = (b - a)[:, 0:1], (b - a)[:, 1:2]
    sp = ex * (p[:, :, 1] - a[:, 1:2]) - ey * (p[:, :, 0] - a[:, 0:1])
    sq = ex * (q[:, :, 1] - a[:, 1:2]) - ey * (q[:, :, 0] - a[:, 0:1])
    pin, qin = sp >= 0, sq >= 0
    cross = (pin != qin) & live
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(cross, sp / (sp - sq), 0.0)
    inter = p + t[:, :, None] * (q - p)
    # candidates in order: vertex i (if inside), then the crossing of edge i (if any)
    cand = np.stack([p, inter], axis=2).reshape(n, 2 * k, 2)
    keep = np.stack([pin & live, cross], axis=2).reshape(n, 2 * k)
    order = np.argsort(~keep, axis=1, kind="stable")
    out = np.take_along_axis(cand, order[:, :, None].repeat(2, axis=2), axis=1)[:, :slots]
    if out.shape[1] < slots:
        out = np.concatenate([out, np.zeros((n, slots - out.shape[1], 2))], axis=1)
    new_count = np.minimum(keep.sum(axis=1), slots)
    return out, new_count


def _intersection_area(c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    """Area of the intersection of convex quadrilaterals ``(N, 4, 2)`` (counter-clockwise)."""
    n = c1.shape[0]
    poly = np.zeros((n, 8, 2))
    poly[:, :4] = c2
    count = np.full(n, 4)
    for e in range(4):
        poly, count = clip_half_plane(poly, count, c1[:, e], c1[:, (e + 1) % 4])
    area = polygon_area(poly, count)
    return np.where(count >= 3, np.maximum(area, 0.0), 0.0)


def rotated_iou_pairs(boxes1, boxes2, chunk: int = 65536) -> np.ndarray:
    """IoU of ``boxes1[i]`` and ``boxes2[i]`` for each ``i`` (both ``(N, 5)``)."""
    b1 = np.asarray(boxes1, dtype=np.float64).reshape(-1, 5)
    b2 = np.asarray(boxes2, dtype=np.float64).reshape(-1, 5)
    if b1.shape != b2.shape:
        raise ValueError(f"boxes1 and boxes2 must have the same shape, got {b1.shape} and {b2.shape}")
    out = np.zeros(b1.shape[0])
    for s in range(0, b1.shape[0], chunk):
        x1, x2 = b1[s:s + chunk], b2[s:s + chunk]
        a1, a2 = x1[:, 2] * x1[:, 3], x2[:, 2] * x2[:, 3]
        inter = _intersection_area(rbox_corners(x1), rbox_corners(x2))
        union = a1 + a2 - inter
        ok = (union > 0) & (a1 > 0) & (a2 > 0)
        out[s:s + chunk] = np.where(ok, inter / np.where(ok, union, 1.0), 0.0)
    return np.clip(out, 0.0, 1.0)


def candidate_pairs(boxes1, boxes2):
    """Index arrays ``(i, j)`` of the pairs whose axis-aligned hulls overlap (with a positive
    area), sorted by ``i`` then ``j``: every pair with IoU > 0 is among them. A sweep over the
    hulls sorted by their left edge, so the cost follows the number of nearby pairs, not
    ``N x M``."""
    h1, h2 = rbox_hulls(boxes1), rbox_hulls(boxes2)
    z = np.zeros(0, dtype=np.int64)
    if h1.shape[0] == 0 or h2.shape[0] == 0:
        return z, z
    order = np.argsort(h2[:, 0], kind="stable")
    x0 = h2[order, 0]
    widest = float((h2[:, 2] - h2[:, 0]).max())
    # a box of boxes2 can overlap box i only if its left edge lies in (x0_i - widest, x1_i)
    lo = np.searchsorted(x0, h1[:, 0] - widest, side="left")
    hi = np.searchsorted(x0, h1[:, 2], side="left")
    counts = np.maximum(hi - lo, 0)
    total = int(counts.sum())
    if total == 0:
        return z, z
    i = np.repeat(np.arange(h1.shape[0]), counts)
    offset = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    j = order[lo[i] + offset]
    ok = ((np.minimum(h1[i, 2], h2[j, 2]) > np.maximum(h1[i, 0], h2[j, 0]))
          & (np.minimum(h1[i, 3], h2[j, 3]) > np.maximum(h1[i, 1], h2[j, 1])))
    i, j = i[ok], j[ok]
    o = np.lexsort((j, i))
    return i[o].astype(np.int64), j[o].astype(np.int64)


def rotated_iou_matrix(boxes1, boxes2) -> np.ndarray:
    """Dense ``(N, M)`` IoU (only the candidate pairs are clipped)."""
    b1 = np.asarray(boxes1, dtype=np.float64).reshape(-1, 5)
    b2 = np.asarray(boxes2, dtype=np.float64).reshape(-1, 5)
    out = np.zeros((b1.shape[0], b2.shape[0]))
    i, j = candidate_pairs(b1, b2)
    if i.size:
        out[i, j] = rotated_iou_pairs(b1[i], b2[j])
    return out
