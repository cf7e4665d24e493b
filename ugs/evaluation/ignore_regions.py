"""VisDrone-DET ignored-region rule, applied to boxes before COCO-style matching.

What the official toolkit does
------------------------------
``utils/dropObjectsInIgr.m`` of the VisDrone2018-DET toolkit (github.com/VisDrone/
VisDrone2018-DET-toolkit) paints **every** ignored region (category 0) of an image into
one binary H x W mask, builds an integral image of that mask, and then, for every
ground-truth box (category != 0) and every detection, counts the mask pixels inside the
box. A box is kept when ``count / (w * h) < 0.5`` and dropped otherwise. So the test is
against the **union** of the regions (two regions each covering 30 % of a box drop it),
not region by region, and the fraction is of the box's own area (not an IoU).

The toolkit works on integer pixels with a few off-by-one conventions (MATLAB 1-based,
inclusive ranges). Written out:

* region ``[rx, ry, rw, rh]`` -> ``max(1, .)`` on all four numbers, then it paints
  columns ``rx .. min(W, rx + rw)`` and rows ``ry .. min(H, ry + rh)`` (inclusive, so
  ``rw + 1`` columns);
* box ``[x, y, w, h]`` -> ``max(1, round(.))`` (MATLAB round: half away from zero),
  ``x, y`` clipped to ``[1, W] x [1, H]``; the integral-image query
  ``I(y, x) + I(y2, x2) - I(y, x2) - I(y2, x)`` with ``x2 = min(W, x + w)``,
  ``y2 = min(H, y + h)`` counts columns ``x + 1 .. x2`` and rows ``y + 1 .. y2``;
* drop when ``count / (w * h) >= 0.5`` (``w, h`` the rounded, unclipped size).

:func:`ignored_box_mask` offers three rules:

``"toolkit"`` (default)
    The pixel-exact emulation above. It needs the image width and height. Instead of
    painting a mask it counts lattice points of the (half-open) rectangles through
    coordinate compression, which gives the same integers without an H x W array.
``"union"``
    Continuous geometry: the area of ``box n (union of regions)`` over the box area.
``"per_region"``
    Continuous geometry, region by region: the largest ``area(box n region) / area(box)``.
    This is NOT what the toolkit does; it is offered for comparison only.

A box of zero area is never dropped by the continuous rules (the toolkit rule makes
every box at least 1 x 1 pixel, as the MATLAB code does).
"""
from __future__ import annotations

import numpy as np

__all__ = ["IGNORE_RULES", "ignored_box_mask", "covered_area", "matlab_round"]

IGNORE_RULES = ("toolkit", "union", "per_region")


def matlab_round(values: np.ndarray) -> np.ndarray:
    """Round half away from zero, as MATLAB's ``round`` (numpy's ``round`` is half-to-even)."""
    v = np.asarray(values, dtype=np.float64)
    a = np.abs(v)
    f = np.floor(a)
    r = f + ((a - f) >= 0.5)
    return np.copysign(r, v)


def _union_area_in_boxes(boxes: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """Area of ``box n union(regions)`` for every box; boxes and regions are ``x1 y1 x2 y2``.

    Coordinate compression: the region edges cut the plane into a grid of cells, each
    either inside the union or not; the overlap of a box with a cell is the product of
    the 1-D overlaps. Cost O(B * (Cx + Cy) + B * Cx * Cy) with C the number of cut lines,
    which is small (a few ignored regions per image).
    """
    n = boxes.shape[0]
    if n == 0 or regions.shape[0] == 0:
        return np.zeros(n)
    regions = regions[(regions[:, 2] > regions[:, 0]) & (regions[:, 3] > regions[:, 1])]
    if regions.shape[0] == 0:
        return np.zeros(n)
    xs = np.unique(np.concatenate([regions[:, 0], regions[:, 2]]))
    ys = np.unique(np.concatenate([regions[:, 1], regions[:, 3]]))
    # cell (i, j) = [xs[i], xs[i+1]) x [ys[j], ys[j+1]); inside iff its centre is in a region
    cx = 0.5 * (xs[:-1] + xs[1:])
    cy = 0.5 * (ys[:-1] + ys[1:])
    inside_x = (regions[:, None, 0] <= cx[None, :]) & (cx[None, :] < regions[:, None, 2])
    inside_y = (regions[:, None, 1] <= cy[None, :]) & (cy[None, :] < regions[:, None, 3])
    covered = (inside_x[:, :, None] & inside_y[:, None, :]).any(axis=0).astype(np.float64)
    ox = np.clip(np.minimum(boxes[:, 2:3], xs[None, 1:]) - np.maximum(boxes[:, 0:1], xs[None, :-1]), 0, None)
    oy = np.clip(np.minimum(boxes[:, 3:4], ys[None, 1:]) - np.maximum(boxes[:, 1:2], ys[None, :-1]), 0, None)
    return np.einsum("bi,ij,bj->b", ox, covered, oy)


def covered_area(boxes_xywh, regions_xywh, rule: str = "union") -> np.ndarray:
    """Continuous covered area of each box: by the union of regions, or the best single region."""
    boxes = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    regions = np.asarray(regions_xywh, dtype=np.float64).reshape(-1, 4)
    bx = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
    rx = np.concatenate([regions[:, :2], regions[:, :2] + regions[:, 2:]], axis=1)
    if rule == "union":
        return _union_area_in_boxes(bx, rx)
    if rule == "per_region":
        if boxes.shape[0] == 0 or regions.shape[0] == 0:
            return np.zeros(boxes.shape[0])
        w = np.clip(np.minimum(bx[:, None, 2], rx[None, :, 2]) - np.maximum(bx[:, None, 0], rx[None, :, 0]), 0, None)
        h = np.clip(np.minimum(bx[:, None, 3], rx[None, :, 3]) - np.maximum(bx[:, None, 1], rx[None, :, 1]), 0, None)
        return (w * h).max(axis=1)
    raise ValueError(f"covered_area: rule must be 'union' or 'per_region', got {rule!r}")


def _toolkit_drop(boxes: np.ndarray, regions: np.ndarray, width: int, height: int,
                  threshold: float) -> np.ndarray:
    """Pixel-exact emulation of dropObjectsInIgr.m (see the module docstring)."""
    W, H = int(width), int(height)
    reg = np.maximum(1.0, matlab_round(regions))  # the toolkit expects integer regions
    # painted inclusive pixel ranges -> half-open [start, end + 1)
    rx1 = reg[:, 0]
    ry1 = reg[:, 1]
    rx2 = np.minimum(W, reg[:, 0] + reg[:, 2]) + 1
    ry2 = np.minimum(H, reg[:, 1] + reg[:, 3]) + 1
    painted = np.stack([rx1, ry1, rx2, ry2], axis=1)

    pos = np.maximum(1.0, matlab_round(boxes))
    x = np.clip(pos[:, 0], 1, W)
    y = np.clip(pos[:, 1], 1, H)
    w = pos[:, 2]
    h = pos[:, 3]
    x2 = np.minimum(W, x + w)
    y2 = np.minimum(H, y + h)
    query = np.stack([x + 1, y + 1, x2 + 1, y2 + 1], axis=1)  # columns x+1..x2, rows y+1..y2
    count = _union_area_in_boxes(query, painted)
    return count / (w * h) >= threshold


def ignored_box_mask(boxes_xywh, regions_xywh, *, rule: str = "toolkit", width=None,
                     height=None, threshold: float = 0.5) -> np.ndarray:
    """Boolean mask, True for boxes the ignored-region rule drops.

    Parameters
    ----------
    boxes_xywh : (N, 4) array of ``[x, y, w, h]`` boxes (ground truths or detections).
    regions_xywh : (R, 4) array of ignored regions ``[x, y, w, h]`` of the same image.
    rule : ``"toolkit"`` (union, pixel-exact as dropObjectsInIgr.m; needs ``width`` and
        ``height``), ``"union"`` or ``"per_region"`` (continuous geometry).
    threshold : drop when the covered fraction of the box's own area is ``>= threshold``.
    """
    boxes = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    regions = np.asarray(regions_xywh, dtype=np.float64).reshape(-1, 4)
    if boxes.shape[0] == 0 or regions.shape[0] == 0:
        return np.zeros(boxes.shape[0], dtype=bool)
    if rule == "toolkit":
        if width is None or height is None:
            raise ValueError("ignore rule 'toolkit' needs the image width and height")
        return _toolkit_drop(boxes, regions, width, height, threshold)
    if rule in ("union", "per_region"):
        area = boxes[:, 2] * boxes[:, 3]
        cov = covered_area(boxes, regions, rule)
        return (area > 0) & (cov >= threshold * area)
    raise ValueError(f"unknown ignore rule {rule!r}; expected one of {IGNORE_RULES}")
