"""The closest point on a polygon's boundary: the localization targets of the UGS Oriented
RepPoints head (:mod:`ugs.rotated.reppoints_head`).

Plain PyTorch, no framework import. Polygons are given by their vertices in order around the
boundary (either direction); the boundary is the closed chain of edges ``v_0 v_1, ...,
v_{V-1} v_0``. Nothing here needs the polygon to be convex: the boundary is treated as a set
of segments, and a point inside the polygon is projected onto the nearest edge as well (it
is a boundary projection, not a projection onto the filled region).
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

__all__ = ["project_to_segments", "project_to_polygon_boundary", "qbox_vertices"]


def qbox_vertices(qboxes: Tensor) -> Tensor:
    """mmrotate's qbox layout ``(..., 8)`` = ``x1 y1 x2 y2 x3 y3 x4 y4`` -> ``(..., 4, 2)``."""
    if qboxes.shape[-1] != 8:
        raise ValueError(f"qboxes must have last dimension 8, got shape {tuple(qboxes.shape)}")
    return qboxes.reshape(qboxes.shape[:-1] + (4, 2))


def project_to_segments(points: Tensor, a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:
    """The closest point of each segment ``a b`` to ``points``.

    Args:
        points, a, b: ``(..., 2)``, broadcast against each other.

    Returns:
        ``(closest (..., 2), squared distance (...))``. The parameter along the segment is
        clamped to [0, 1]; a segment of length 0 gives its end point ``a``.
    """
    ab = b - a
    len2 = (ab * ab).sum(-1)
    t = ((points - a) * ab).sum(-1) / len2.clamp_min(torch.finfo(len2.dtype).tiny)
    t = torch.where(len2 > 0, t.clamp(0, 1), torch.zeros_like(t))
    closest = a + t.unsqueeze(-1) * ab
    d2 = ((points - closest) ** 2).sum(-1)
    return closest, d2


def project_to_polygon_boundary(points: Tensor, vertices: Tensor) -> Tuple[Tensor, Tensor]:
    """The point of each polygon's boundary nearest to each point, and its distance.

    Args:
        points: ``(..., K, 2)``, K points per polygon (K may be 1).
        vertices: ``(..., V, 2)``, the polygon's vertices in boundary order, leading
            dimensions broadcastable to those of ``points``.

    Returns:
        ``(projected (..., K, 2), distance (..., K))``. A point already on the boundary comes
        back unchanged (distance 0). Where two edges are equally near (a point on the bisector
        of a corner region's inner side, the centre of a square), the edge with the lower index
        (``v_i v_{i+1}``, smallest ``i``) is taken. Differentiable almost everywhere; the
        head uses it on detached points.
    """
    if points.shape[-1] != 2 or vertices.shape[-1] != 2 or vertices.dim() < 2:
        raise ValueError(f"points must be (..., K, 2) and vertices (..., V, 2), got "
                         f"{tuple(points.shape)} and {tuple(vertices.shape)}")
    if vertices.shape[-2] < 2:
        raise ValueError(f"a polygon needs at least 2 vertices, got {vertices.shape[-2]}")
    a = vertices.unsqueeze(-3)                          # (..., 1, V, 2)
    b = vertices.roll(-1, dims=-2).unsqueeze(-3)        # next vertex, v_{V-1} -> v_0
    closest, d2 = project_to_segments(points.unsqueeze(-2), a, b)   # (..., K, V, 2), (..., K, V)
    best = d2.argmin(-1, keepdim=True)                  # first minimum on ties
    proj = torch.gather(closest, -2, best.unsqueeze(-1).expand(best.shape + (2,))).squeeze(-2)
    dist = torch.gather(d2, -1, best).squeeze(-1).sqrt()
    return proj, dist
