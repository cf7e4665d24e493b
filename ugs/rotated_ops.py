"""Plain-PyTorch versions of the rotated-box ops that mmcv 2.0.1 has for CUDA only (Table 3's
Rotated FCOS and Oriented RepPoints), differentiable where the losses need it.

* :func:`diff_iou_rotated_2d` - IoU of rotated boxes ``(B, N, 5)`` with gradients (Rotated FCOS's
  ``RotatedIoULoss``; mmcv's ``diff_iou_rotated_2d``).
* :func:`convex_iou` - IoU of the convex hull of each 9-point set ``(N, 18)`` with each polygon
  ``(K, 8)`` (Oriented RepPoints' ``ConvexAssigner``; mmcv's ``convex_iou``), no gradient.
* :func:`convex_giou` - GIoU of the convex hull of each point set with its polygon ``(N, 8)``, and
  its gradient with respect to the 18 coordinates, as mmcv's ``convex_giou`` returns them (the
  ``ConvexGIoULoss`` backward uses that gradient).
* :func:`min_area_polygons` - the minimum-area rectangle around each point set ``(N, 18) -> (N,
  8)`` (mmcv's ``min_area_polygons``; no gradient, as mmcv's).
* :func:`chamfer_distance` - squared nearest-neighbour distances between 2-d point sets, both
  ways, with their indices (mmcv's ``chamfer_distance``), differentiable.

The geometry: a point set's convex hull by Andrew's monotone chain (vectorised over sets; its
vertices are points of the set, so gradients reach them), intersections by Sutherland-Hodgman
clipping against the convex polygon's edges, areas by the shoelace formula; the minimum-area
rectangle by rotating calipers over the hull's edges. Boxes are ``(cx, cy, w, h, angle)`` in
radians with mmcv's corner convention (the width along the angle). Everything in the dtype of the
input; no framework import (``ugs.rotated.cpu_ops`` puts these behind mmcv's names for CPU tensors).
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

__all__ = ["box_corners", "convex_hull", "polygon_area", "clip_polygon", "diff_iou_rotated_2d", "convex_iou",
           "convex_giou", "min_area_polygons", "chamfer_distance"]


def box_corners(boxes: Tensor) -> Tensor:
    """``(..., 4, 2)`` corners of ``(..., 5)`` boxes, counter-clockwise in a y-up frame."""
    cx, cy, w, h, a = boxes.unbind(-1)
    c, s = torch.cos(a), torch.sin(a)
    ux, uy, vx, vy = c * w / 2, s * w / 2, -s * h / 2, c * h / 2
    xs = torch.stack([cx - ux - vx, cx + ux - vx, cx + ux + vx, cx - ux + vx], -1)
    ys = torch.stack([cy - uy - vy, cy + uy - vy, cy + uy + vy, cy - uy + vy], -1)
    return torch.stack([xs, ys], -1)


def _cross(o: Tensor, a: Tensor, b: Tensor) -> Tensor:
    return (a[..., 0] - o[..., 0]) * (b[..., 1] - o[..., 1]) - (a[..., 1] - o[..., 1]) * (b[..., 0] - o[..., 0])


def polygon_area(poly: Tensor, count: Tensor) -> Tensor:
    """Signed shoelace area of ``(N, K, 2)`` polygons using their first ``count`` vertices."""
    k = poly.shape[1]
    idx = torch.arange(k, device=poly.device)[None, :]
    nxt = torch.where(idx + 1 < count[:, None], idx + 1, torch.zeros_like(idx))
    q = torch.gather(poly, 1, nxt[:, :, None].expand(-1, -1, 2))
    cross = poly[:, :, 0] * q[:, :, 1] - poly[:, :, 1] * q[:, :, 0]
    return torch.where(idx < count[:, None], cross, torch.zeros_like(cross)).sum(1) / 2


def clip_polygon(poly: Tensor, count: Tensor, a: Tensor, b: Tensor, slots: int) -> Tuple[Tensor, Tensor]:
    """Clip polygons ``(N, K, 2)`` (first ``count`` vertices) by the half-plane left of ``a -> b``
    (``(N, 2)`` each; inside when the cross product >= 0); the result in ``slots`` vertices."""
    n, k = poly.shape[:2]
    idx = torch.arange(k, device=poly.device)[None, :]
    live = idx < count[:, None]
    nxt = torch.where(idx + 1 < count[:, None], idx + 1, torch.zeros_like(idx))
    q = torch.gather(poly, 1, nxt[:, :, None].expand(-1, -1, 2))
    sp = _cross(a[:, None, :], b[:, None, :], poly)
    sq = _cross(a[:, None, :], b[:, None, :], q)
    pin, qin = sp >= 0, sq >= 0
    crossing = (pin != qin) & live
    denom = torch.where(crossing, sp - sq, torch.ones_like(sp))          # safe: no NaN in any branch
    t = torch.where(crossing, sp / denom, torch.zeros_like(sp))
    inter = poly + t[:, :, None] * (q - poly)
    cand = torch.stack([poly, inter], 2).reshape(n, 2 * k, 2)
    keep = torch.stack([pin & live, crossing], 2).reshape(n, 2 * k)
    order = torch.sort((~keep).to(torch.uint8), dim=1, stable=True).indices[:, :slots]
    if order.shape[1] < slots:
        order = torch.cat([order, order[:, :1].expand(-1, slots - order.shape[1])], 1)
    out = torch.gather(cand, 1, order[:, :, None].expand(-1, -1, 2))
    return out, keep.sum(1).clamp(max=slots)


def convex_hull(points: Tensor) -> Tuple[Tensor, Tensor]:
    """Convex hulls of ``(N, P, 2)`` point sets (Andrew's monotone chain, collinear points
    dropped): vertices ``(N, P, 2)`` counter-clockwise (y-up), their count ``(N,)``; the
    vertices are gathered from ``points``, so gradients flow to them."""
    n, p = points.shape[:2]
    dev = points.device
    # sort by x, then y (two stable sorts)
    o = torch.sort(points[..., 1], dim=1, stable=True).indices
    o = torch.gather(o, 1, torch.sort(torch.gather(points[..., 0], 1, o), dim=1, stable=True).indices)
    pts = torch.gather(points, 1, o[:, :, None].expand(-1, -1, 2))
    rows = torch.arange(n, device=dev)

    def chain(seq):
        stack = torch.zeros(n, p, dtype=torch.long, device=dev)
        size = torch.zeros(n, dtype=torch.long, device=dev)
        for k in seq:
            pk = pts[:, k]
            for _ in range(p):
                can = size >= 2
                a = pts[rows, stack[rows, (size - 2).clamp(min=0)]]
                b = pts[rows, stack[rows, (size - 1).clamp(min=0)]]
                pop = can & (_cross(a, b, pk) <= 0)
                if not bool(pop.any()):
                    break
                size = size - pop.long()
            stack[rows, size.clamp(max=p - 1)] = k
            size = (size + 1).clamp(max=p)
        return stack, size

    lower, nl = chain(range(p))
    upper, nu = chain(range(p - 1, -1, -1))
    # hull = lower[:-1] + upper[:-1]
    idx = torch.arange(2 * p, device=dev)[None, :]
    both = torch.cat([lower, upper], 1)
    from_lower = idx < (nl - 1)[:, None]
    pos_upper = (idx - (nl - 1)[:, None]).clamp(min=0, max=p - 1) + p
    pick = torch.where(from_lower, idx.expand(n, -1), pos_upper)
    count = (nl - 1) + (nu - 1)
    sel = torch.gather(both, 1, pick)[:, :p]
    verts = torch.gather(pts, 1, sel[:, :, None].expand(-1, -1, 2))
    return verts, count.clamp(min=1, max=p)


def _ccw(poly: Tensor) -> Tensor:
    """Quadrilaterals ``(N, 4, 2)`` in counter-clockwise order (reversed where clockwise)."""
    area = polygon_area(poly, torch.full((poly.shape[0],), 4, device=poly.device))
    return torch.where((area < 0)[:, None, None], poly.flip(1), poly)


def _intersection(poly: Tensor, count: Tensor, quad: Tensor) -> Tensor:
    """Area of (convex polygon ``poly`` with ``count`` vertices) intersected with CCW ``quad``."""
    slots = poly.shape[1] + 4
    cur = torch.cat([poly, poly[:, :4].new_zeros(poly.shape[0], 4, 2)], 1) if poly.shape[1] < slots else poly
    cnt = count
    for e in range(4):
        cur, cnt = clip_polygon(cur, cnt, quad[:, e], quad[:, (e + 1) % 4], slots)
    area = polygon_area(cur, cnt)
    return torch.where(cnt >= 3, area.clamp(min=0), torch.zeros_like(area))


def diff_iou_rotated_2d(box1: Tensor, box2: Tensor) -> Tensor:
    """IoU of ``box1[b, i]`` and ``box2[b, i]`` (both ``(B, N, 5)``), differentiable; 0 where the
    union is 0."""
    shape = box1.shape[:-1]
    b1, b2 = box1.reshape(-1, 5), box2.reshape(-1, 5)
    c1, c2 = box_corners(b1), box_corners(b2)
    inter = _intersection(c2, torch.full((c2.shape[0],), 4, device=c2.device), c1)
    union = b1[:, 2] * b1[:, 3] + b2[:, 2] * b2[:, 3] - inter
    ok = union > 0
    iou = torch.where(ok, inter / torch.where(ok, union, torch.ones_like(union)), torch.zeros_like(union))
    return iou.reshape(shape)


def _hull_iou_terms(pointsets: Tensor, quads: Tensor):
    """Hull of each point set and (inter, union, hull area) with each CCW quad (paired rows)."""
    hull, cnt = convex_hull(pointsets.reshape(-1, pointsets.shape[-1] // 2, 2))
    hull_area = polygon_area(hull, cnt).clamp(min=0)
    quad_area = polygon_area(quads, torch.full((quads.shape[0],), 4, device=quads.device)).clamp(min=0)
    inter = _intersection(hull, cnt, quads)
    return inter, hull_area + quad_area - inter


@torch.no_grad()
def convex_iou(pointsets: Tensor, polygons: Tensor) -> Tensor:
    """``(N, K)`` IoU of each point set's convex hull with each polygon (any vertex order)."""
    n, k = pointsets.shape[0], polygons.shape[0]
    if n == 0 or k == 0:
        return pointsets.new_zeros(n, k)
    quads = _ccw(polygons.reshape(-1, 4, 2))
    p = pointsets[:, None, :].expand(n, k, pointsets.shape[1]).reshape(n * k, -1)
    q = quads[None].expand(n, k, 4, 2).reshape(n * k, 4, 2)
    inter, union = _hull_iou_terms(p, q)
    iou = torch.where(union > 0, inter / union.clamp(min=torch.finfo(union.dtype).tiny), torch.zeros_like(union))
    return iou.reshape(n, k)


def _giou(pointsets: Tensor, polygons: Tensor) -> Tensor:
    quads = _ccw(polygons.reshape(-1, 4, 2))
    inter, union = _hull_iou_terms(pointsets, quads)
    pts = pointsets.reshape(pointsets.shape[0], -1, 2)
    enclose_hull, cnt = convex_hull(torch.cat([pts, quads], 1))
    enclose = polygon_area(enclose_hull, cnt).clamp(min=0)
    tiny = torch.finfo(union.dtype).tiny
    iou = torch.where(union > 0, inter / union.clamp(min=tiny), torch.zeros_like(union))
    return iou - torch.where(enclose > 0, (enclose - union) / enclose.clamp(min=tiny), torch.zeros_like(enclose))


def convex_giou(pointsets: Tensor, polygons: Tensor) -> Tuple[Tensor, Tensor]:
    """GIoU ``(N,)`` of each point set's hull with its polygon (rows paired) and its gradient
    ``(N, 18)`` with respect to the point coordinates (what mmcv's op returns; the enclosing
    region is the convex hull of both)."""
    with torch.enable_grad():
        pts = pointsets.detach().clone().requires_grad_(True)
        giou = _giou(pts, polygons.detach())
        grad, = torch.autograd.grad(giou.sum(), pts) if giou.numel() else (torch.zeros_like(pts),)
    return giou.detach(), grad


@torch.no_grad()
def min_area_polygons(pointsets: Tensor) -> Tensor:
    """``(N, 8)`` corners of the minimum-area rectangle around each point set (rotating
    calipers over the hull's edges), counter-clockwise (y-up)."""
    n = pointsets.shape[0]
    if n == 0:
        return pointsets.new_zeros(0, 8)
    hull, cnt = convex_hull(pointsets.reshape(n, -1, 2))
    p = hull.shape[1]
    idx = torch.arange(p, device=hull.device)[None, :]
    valid = idx < cnt[:, None]
    nxt = torch.where(idx + 1 < cnt[:, None], idx + 1, torch.zeros_like(idx))
    edge = torch.gather(hull, 1, nxt[:, :, None].expand(-1, -1, 2)) - hull           # (N, P, 2)
    length = edge.norm(dim=-1)
    ok = valid & (length > 0)
    u = edge / length.clamp(min=torch.finfo(hull.dtype).tiny)[..., None]              # (N, E, 2)
    v = torch.stack([-u[..., 1], u[..., 0]], -1)
    pu = torch.einsum("nkd,ned->nek", hull, u)                                         # (N, E, P)
    pv = torch.einsum("nkd,ned->nek", hull, v)
    big = torch.finfo(hull.dtype).max
    m = valid[:, None, :]
    umin = torch.where(m, pu, torch.full_like(pu, big)).amin(-1)
    umax = torch.where(m, pu, torch.full_like(pu, -big)).amax(-1)
    vmin = torch.where(m, pv, torch.full_like(pv, big)).amin(-1)
    vmax = torch.where(m, pv, torch.full_like(pv, -big)).amax(-1)
    area = torch.where(ok, (umax - umin) * (vmax - vmin), torch.full_like(umax, float("inf")))
    best = area.argmin(1)
    rows = torch.arange(n, device=hull.device)
    ub, vb = u[rows, best], v[rows, best]
    a0, a1, b0, b1 = umin[rows, best], umax[rows, best], vmin[rows, best], vmax[rows, best]
    corners = [a0[:, None] * ub + b0[:, None] * vb, a1[:, None] * ub + b0[:, None] * vb,
               a1[:, None] * ub + b1[:, None] * vb, a0[:, None] * ub + b1[:, None] * vb]
    out = torch.stack(corners, 1)
    # a set with no edge of positive length (all points equal): its point, four times
    single = ~ok.any(1)
    out = torch.where(single[:, None, None], hull[:, :1].expand(-1, 4, -1), out)
    return out.reshape(n, 8)


def chamfer_distance(xyz1: Tensor, xyz2: Tensor):
    """``(dist1 (B, N), dist2 (B, M), idx1, idx2)``: for each point of one set the squared
    distance to the nearest point of the other, and its index (int32), as mmcv's op."""
    d = ((xyz1[:, :, None, :] - xyz2[:, None, :, :]) ** 2).sum(-1)
    dist1, idx1 = d.min(2)
    dist2, idx2 = d.min(1)
    return dist1, dist2, idx1.int(), idx2.int()
