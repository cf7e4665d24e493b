"""SODA-A's crops, as the SODA authors' split tool (``tools/data/sodaa/sodaa_split.py`` with
``split_configs/sodaa_train.json``) makes them, for training and for testing on crops.

* **Windows**: 800 x 800 with a gap (overlap) of 150 px, i.e. a step of 650; the last window
  of a row / column is moved back to end at the image's edge; a window is kept when the share of
  it that lies inside the image is above ``img_rate_thr`` 0.6 (when none is, the best ones are
  kept), :func:`sliding_windows`.
* **Objects**: an object belongs to a window when at least ``iof_thr`` 0.7 of its polygon's area
  lies inside the window (intersection over the object's own area, the polygon clipped to the
  window rectangle: :func:`polygon_window_iof`); its polygon is shifted into the crop, not
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

__all__ = ["sliding_windows", "polygon_window_iof", "crop_name", "parse_crop_name", "crop_soda_a",
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


def _clip_to_rect(points: np.ndarray, x0, y0, x1, y1) -> np.ndarray:
    """Sutherland-Hodgman: a polygon ``(K, 2)`` clipped to an axis-aligned rectangle."""
    out = points
    for axis, bound, keep_greater in ((0, x0, True), (0, x1, False), (1, y0, True), (1, y1, False)):
        if len(out) == 0:
            break
        pts, nxt = out, np.roll(out, -1, axis=0)
        res = []
        for p, q in zip(pts, nxt):
            p_in = p[axis] >= bound if keep_greater else p[axis] <= bound
            q_in = q[axis] >= bound if keep_greater else q[axis] <= bound
            if p_in:
                res.append(p)
            if p_in != q_in:
                t = (bound - p[axis]) / (q[axis] - p[axis])
                res.append(p + t * (q - p))
        out = np.array(res, dtype=np.float64).reshape(-1, 2)
    return out


def _shoelace(points: np.ndarray) -> float:
    if len(points) < 3:
        return 0.0
    x, y = points[:, 0], points[:, 1]
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2


def polygon_window_iof(poly: Sequence[float], window: Sequence[float]) -> float:
    """Area of the polygon inside the window, over the polygon's area (0 for a degenerate
    polygon)."""
    pts = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
    area = _shoelace(pts)
    if area <= 0:
        return 0.0
    return _shoelace(_clip_to_rect(pts, *(float(v) for v in window))) / area


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
        for x0, y0, x1, y1 in windows.tolist():
            name = crop_name(stem, size, x0, y0)
            lines, n_trunc = [], 0
            for j, a in enumerate(anns):
                iof = polygon_window_iof(a["poly"], (x0, y0, x1, y1))
                if iof >= iof_thr:
                    assigned[j] = True
                    n_trunc += iof < 1
                    shifted = np.asarray(a["poly"], dtype=np.float64).reshape(-1, 2) - (x0, y0)
                    lines.append(" ".join(f"{v:.2f}" for v in shifted.ravel())
                                 + f" {SODA_A_CLASSES[a['category_id']]} 0")
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
