"""SODA-A's crops, as the SODA authors' split tool (``tools/data/sodaa/sodaa_split.py`` with
``split_configs/sodaa_train.json``) makes them, for training and for testing on crops.

* **Windows**: 800 x 800 with a gap (overlap) of 150 px, i.e. a step of 650; the last window
  of a row / column is moved back to end at the image's edge; a window is kept when the share of
  it that lies inside the image is above ``img_rate_thr`` 0.6 (when none is, the best ones are
  kept), :func:`sliding_windows`.
* **Objects**: an object belongs to a window when at least ``iof_thr`` 0.7 of its polygon's area
  lies inside the window (intersection over the object's own area, the polygon clipped to the
  window rectangle: :func:`window_iofs`); its polygon is shifted into the crop, not
  clipped (``trunc`` marks iof < 1). Only the converter's kept objects are cropped (the official
  tool crops every polygon of 8 numbers and its training loader then drops the under-2 px
  ones silently; the kit's converter has counted those already).
* **Ignore regions** are painted out of the pixels before cropping: a mask is 0 inside every
  ignore polygon, then 1 again inside every kept object's polygon (integer vertices, as the
  official tool), and the image is multiplied by it.
* **Padding**: a window reaching past the image is filled with the official padding value
  (104, 116, 124) in OpenCV's BGR order.
* **Names** encode the offsets: ``<stem>__<size>__<x>___<y>`` (:func:`crop_name`,
  :func:`parse_crop_name`), so crop detections can be shifted back to the full image.

Written per crop: ``images/<name>.jpg`` and ``annfiles/<name>.txt`` in the DOTA text format that
mmrotate's ``DOTADataset`` reads (``x1 y1 x2 y2 x3 y3 x4 y4 <class> 0`` per object), and one
``crops.json`` with every window and the accounting: each kept object of the source set is in
at least one crop, or listed in ``objects_in_no_crop``.

numpy, OpenCV and PIL only.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple, Union

import numpy as np

from .soda_a import SODA_A_CLASSES

__all__ = ["sliding_windows", "window_iofs", "polygon_window_iof", "crop_name", "parse_crop_name", "crop_soda_a",
           "PADDING_BGR"]

PADDING_BGR = (104, 116, 124)
_NAME = re.compile(r"^(?P<stem>.+)__(?P<size>\d+)__(?P<x>-?\d+)___(?P<y>-?\d+)$")


def sliding_windows(width: int, height: int, size: int = 800, gap: int = 150,
                    img_rate_thr: float = 0.6) -> np.ndarray:
    """The kept windows ``(N, 4)`` as ``x0, y0, x1, y1`` (int64), in the official tool's order
    (x outer, y inner)."""
    if not size > gap >= 0:
        raise ValueError(f"need size > gap >= 0, got size {size}, gap {gap}")
    step = size - gap

    def starts(extent):
        n = 1 if extent <= size else math.ceil((extent - size) / step + 1)
        s = [step * i for i in range(n)]
        if len(s) > 1 and s[-1] + size > extent:
            s[-1] = extent - size
        return s

    start = np.array([(x, y) for x in starts(width) for y in starts(height)], dtype=np.int64)
    win = np.concatenate([start, start + size], axis=1)
    inside = win.copy()
    inside[:, 0::2] = np.clip(inside[:, 0::2], 0, width)
    inside[:, 1::2] = np.clip(inside[:, 1::2], 0, height)
    rate = ((inside[:, 2] - inside[:, 0]) * (inside[:, 3] - inside[:, 1])) / float(size * size)
    if not (rate > img_rate_thr).any():
        rate[np.abs(rate - rate.max()) < 0.01] = 1.0
    return win[rate > img_rate_thr]


def window_iofs(polys, window: Sequence[float]) -> np.ndarray:
    """For each polygon of ``polys`` (``(N, 2K)`` flat), the area inside the window ``x0, y0,
    x1, y1`` over its own area (0 for a degenerate polygon): the polygons clipped by the window's
    four edges at once (:func:`ugs.evaluation.rotated_iou.clip_half_plane`)."""
    from ugs.evaluation.rotated_iou import clip_half_plane, polygon_area

    pts = np.asarray(polys, dtype=np.float64)
    if pts.size == 0:
        return np.zeros(0)
    pts = pts.reshape(pts.shape[0], -1, 2)
    n, k = pts.shape[:2]
    # the clip's slots from the start: both areas are then summed over the same number of slots,
    # so a polygon wholly inside the window has an iof of exactly 1
    pts = np.concatenate([pts, np.zeros((n, 4, 2))], axis=1)
    count = np.full(n, k)
    area = np.abs(polygon_area(pts, count))
    x0, y0, x1, y1 = (float(v) for v in window)
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])      # counter-clockwise (y-up)
    clipped, cnt = pts, count
    for e in range(4):
        clipped, cnt = clip_half_plane(clipped, cnt, corners[e], corners[(e + 1) % 4], slots=k + 4)
    inside = np.where(cnt >= 3, np.abs(polygon_area(clipped, cnt)), 0.0)
    return np.where(area > 0, inside / np.where(area > 0, area, 1.0), 0.0)


def polygon_window_iof(poly: Sequence[float], window: Sequence[float]) -> float:
    """:func:`window_iofs` of one polygon."""
    return float(window_iofs([poly], window)[0])


def crop_name(stem: str, size: int, x: int, y: int) -> str:
    return f"{stem}__{size}__{x}___{y}"


def parse_crop_name(name: str) -> Tuple[str, int, int, int]:
    """``(stem, size, x, y)`` of a crop name (a path or a file name with extension is fine)."""
    base = Path(name).name
    base = base[:-len(Path(base).suffix)] if Path(base).suffix in (".jpg", ".png", ".txt", ".json") else base
    m = _NAME.match(base)
    if not m:
        raise ValueError(f"{name!r} is not a crop name of the form <stem>__<size>__<x>___<y>")
    return m["stem"], int(m["size"]), int(m["x"]), int(m["y"])


def crop_soda_a(converted_json: Union[str, Path], images_dir: Union[str, Path], out_dir: Union[str, Path],
                size: int = 800, gap: int = 150, iof_thr: float = 0.7, img_rate_thr: float = 0.6,
                progress: Optional[Callable[[int, int], None]] = None) -> dict:
    """Crop a converted split (``ugs data soda-a``'s JSON, its images in ``images_dir``) into
    ``out_dir`` (see the module docstring); returns the ``crops.json`` content."""
    import cv2

    doc = json.loads(Path(converted_json).read_text(encoding="utf-8"))
    images_dir, out_dir = Path(images_dir), Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "annfiles").mkdir(parents=True, exist_ok=True)
    by_image = {im["id"]: [] for im in doc["images"]}
    for a in doc["annotations"]:
        by_image[a["image_id"]].append(a)
    ignore = {im["id"]: [] for im in doc["images"]}
    for g in doc.get("ignore_regions", []):
        ignore[g["image_id"]].append(g["poly"])
    crops, in_no_crop, objects = [], [], 0
    for k, im in enumerate(doc["images"]):
        path = images_dir / im["file_name"]
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise FileNotFoundError(f"{path}: cannot read the image (listed in {converted_json})")
        if img.shape[:2] != (im["height"], im["width"]):
            raise ValueError(f"{path}: image is {img.shape[1]}x{img.shape[0]}, {converted_json} says "
                             f"{im['width']}x{im['height']}")
        anns = by_image[im["id"]]
        if ignore[im["id"]]:
            mask = np.ones(img.shape[:2], dtype=np.uint8)
            for poly in ignore[im["id"]]:
                cv2.fillPoly(mask, [np.asarray(poly, dtype=np.float64).astype(np.int32).reshape(-1, 2)], 0)
            for a in anns:
                cv2.fillPoly(mask, [np.asarray(a["poly"], dtype=np.float64).astype(np.int32).reshape(-1, 2)], 1)
            img = img * mask[:, :, None]
        stem = Path(im["file_name"]).stem
        windows = sliding_windows(im["width"], im["height"], size, gap, img_rate_thr)
        assigned = np.zeros(len(anns), dtype=bool)
        polys = np.asarray([a["poly"] for a in anns], dtype=np.float64).reshape(-1, 8)   # kept objects: 4 points
        for x0, y0, x1, y1 in windows.tolist():
            name = crop_name(stem, size, x0, y0)
            iofs = window_iofs(polys, (x0, y0, x1, y1))
            hit = np.flatnonzero(iofs >= iof_thr)
            assigned[hit] = True
            n_trunc = int((iofs[hit] < 1).sum())
            lines = []
            for j in hit.tolist():
                shifted = polys[j].reshape(-1, 2) - (x0, y0)
                lines.append(" ".join(f"{v:.2f}" for v in shifted.ravel())
                             + f" {SODA_A_CLASSES[anns[j]['category_id']]} 0")
            patch = np.empty((size, size, 3), dtype=np.uint8)
            patch[:] = PADDING_BGR
            h, w = min(y1, im["height"]) - y0, min(x1, im["width"]) - x0
            patch[:h, :w] = img[y0:y0 + h, x0:x0 + w]
            cv2.imwrite(str(out_dir / "images" / f"{name}.jpg"), patch)
            (out_dir / "annfiles" / f"{name}.txt").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
            crops.append(dict(name=name, source=im["file_name"], x=x0, y=y0, size=size, objects=len(lines),
                              truncated=int(n_trunc)))
        objects += len(anns)
        in_no_crop += [dict(source=im["file_name"], annotation_id=anns[j]["id"]) for j in np.flatnonzero(~assigned)]
        if progress is not None:
            progress(k + 1, len(doc["images"]))
    result = dict(source=str(converted_json), size=size, gap=gap, iof_thr=iof_thr, img_rate_thr=img_rate_thr,
                  images=len(doc["images"]), objects=objects, crops=crops, objects_in_no_crop=in_no_crop,
                  ignore_regions_painted=sum(len(v) for v in ignore.values()))
    (out_dir / "crops.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result
