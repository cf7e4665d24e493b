"""A synthetic rotated small-object set written in SODA-A's exact layout (the CPU default of
Table 3; :mod:`ugs.data.soda_a` reads it like the real data).

Per split ``<root>/<split>/Images/<stem>.jpg`` and ``<root>/<split>/Annotations/<stem>.json``
(``annotations[]`` with ``poly`` and 0-indexed ``category_id``, ``categories`` with ``ignore``
last). Each image is larger than one 800 px crop; its objects are rotated rectangles of the 9
SODA-A classes at every angle (each class its own aspect ratio and colour), most under 32 x 32 px
(the side of an object's square is log-normal around ``median_size``), drawn without overlap on
a textured background. Some images get **ignore regions** (category 9) with unannotated clutter
drawn inside them, as SODA-A marks crowded areas. A small share of annotations is of the two
kinds the official loader drops (a polygon of 5 points, a box with a side under 2 px), so the
converter's accounting has something to count. Seeded: the same arguments give the same files.

numpy, OpenCV and PIL only.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, Tuple, Union

import numpy as np

from .soda_a import IGNORE_CATEGORY, SODA_A_CLASSES, rbox_to_poly

__all__ = ["generate_synthetic_soda_a", "SODA_A_SYNTH_VERSION"]

SODA_A_SYNTH_VERSION = 1
#: per class: aspect ratio (long / short side), relative size, colour (RGB)
_CLASS_STYLE = {
    "airplane": (1.1, 1.8, (235, 235, 240)), "helicopter": (1.3, 1.3, (60, 90, 60)),
    "small-vehicle": (2.0, 0.8, (200, 40, 40)), "large-vehicle": (3.0, 1.3, (230, 200, 60)),
    "ship": (3.5, 1.4, (250, 250, 250)), "container": (2.5, 1.0, (40, 90, 200)),
    "storage-tank": (1.0, 1.2, (180, 180, 170)), "swimming-pool": (1.6, 1.6, (40, 200, 220)),
    "windmill": (1.0, 1.0, (120, 120, 130)),
}


def _background(rng, width: int, height: int) -> np.ndarray:
    """Low-frequency textured ground (RGB uint8)."""
    import cv2

    coarse = rng.uniform(70, 150, size=(max(2, height // 64), max(2, width // 64), 3)).astype(np.float32)
    img = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    img += rng.normal(0, 6, size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def _draw(img, poly: np.ndarray, colour) -> None:
    import cv2

    pts = np.round(poly * 4).astype(np.int32).reshape(-1, 1, 2)        # 2 fractional bits
    cv2.fillPoly(img, [pts], tuple(int(c) for c in colour), lineType=cv2.LINE_AA, shift=2)
    dark = tuple(int(c * 0.45) for c in colour)
    cv2.polylines(img, [pts], True, dark, 1, lineType=cv2.LINE_AA, shift=2)


def generate_synthetic_soda_a(root: Union[str, Path], splits: Dict[str, int] = None,
                              image_size: Tuple[int, int] = (1100, 950), objects_per_image: Tuple[int, int] = (60, 160),
                              median_size: float = 14.0, sigma: float = 0.5, max_size: float = 64.0,
                              p_ignore_region: float = 0.5, p_malformed: float = 0.006, seed: int = 0) -> dict:
    """Write the set under ``root`` (see the module docstring); ``splits`` maps a split name to
    its number of images (default train 12, val 4, test 4); ``image_size`` is the largest
    ``(width, height)``: each image's side is drawn between 0.85 and 1 times it. Returns the
    parameters (also written to ``root/meta.json``) and the count of each kind of annotation."""
    from PIL import Image

    splits = dict(splits or {"train": 12, "val": 4, "test": 4})
    root = Path(root)
    rng = np.random.default_rng(seed)
    counts = {s: dict(images=0, objects=0, ignore=0, more_than_8_numbers=0, side_under_2px=0) for s in splits}
    categories = [dict(id=i, name=c) for i, c in enumerate(SODA_A_CLASSES)] + [dict(id=IGNORE_CATEGORY, name="ignore")]
    for split, n_images in splits.items():
        img_dir, ann_dir = root / split / "Images", root / split / "Annotations"
        img_dir.mkdir(parents=True, exist_ok=True)
        ann_dir.mkdir(parents=True, exist_ok=True)
        for k in range(n_images):
            width = int(image_size[0] * rng.uniform(0.85, 1.0))
            height = int(image_size[1] * rng.uniform(0.85, 1.0))
            img = _background(rng, width, height)
            anns = []
            # ignore regions first: clutter inside them, not annotated
            ignore_boxes = []
            if rng.random() < p_ignore_region:
                for _ in range(int(rng.integers(1, 3))):
                    w, h = rng.uniform(80, 220, size=2)
                    cx, cy = rng.uniform(w / 2, width - w / 2), rng.uniform(h / 2, height - h / 2)
                    rb = (cx, cy, w, h, rng.uniform(-math.pi / 2, math.pi / 2))
                    ignore_boxes.append(rb)
                    poly = rbox_to_poly(rb)
                    for _ in range(int(rng.integers(8, 20))):                    # clutter
                        c = SODA_A_CLASSES[int(rng.integers(len(SODA_A_CLASSES)))]
                        s = rng.uniform(5, 12)
                        f = rng.uniform(-0.4, 0.4, size=2)
                        _draw(img, rbox_to_poly((cx + f[0] * w, cy + f[1] * h, s * 1.5, s, rng.uniform(-3, 3))),
                              _CLASS_STYLE[c][2])
                    anns.append(dict(poly=[round(float(v), 1) for v in poly.ravel()], category_id=IGNORE_CATEGORY))
            placed = []          # (cx, cy, radius) of drawn objects, to avoid overlaps
            target = int(rng.integers(objects_per_image[0], objects_per_image[1] + 1))
            tries = 0
            while len(placed) < target and tries < target * 20:
                tries += 1
                cls = int(rng.integers(len(SODA_A_CLASSES)))
                aspect, rel, colour = _CLASS_STYLE[SODA_A_CLASSES[cls]]
                side = min(max_size, median_size * rel * math.exp(rng.normal(0, sigma)))
                w, h = side * math.sqrt(aspect), side / math.sqrt(aspect)
                kind = "ok"
                u = rng.random()
                if u < p_malformed / 2:
                    kind, h = "side_under_2px", rng.uniform(0.8, 1.8)
                elif u < p_malformed:
                    kind = "more_than_8_numbers"
                radius = math.hypot(w, h) / 2
                cx, cy = rng.uniform(radius, width - radius), rng.uniform(radius, height - radius)
                if any(math.hypot(cx - px, cy - py) < radius + pr + 1 for px, py, pr in placed):
                    continue
                if any(abs(cx - ib[0]) < ib[2] / 2 + radius and abs(cy - ib[1]) < ib[3] / 2 + radius
                       for ib in ignore_boxes):
                    continue
                placed.append((cx, cy, radius))
                poly = rbox_to_poly((cx, cy, w, h, rng.uniform(-math.pi, math.pi)))
                _draw(img, poly, colour)
                flat = [round(float(v), 1) for v in poly.ravel()]
                if kind == "more_than_8_numbers":      # a fifth point on the first edge
                    mid = (poly[0] + poly[1]) / 2
                    flat = flat[:2] + [round(float(mid[0]), 1), round(float(mid[1]), 1)] + flat[2:]
                anns.append(dict(poly=flat, category_id=cls))
                counts[split]["objects" if kind == "ok" else kind] += 1
            counts[split]["ignore"] += sum(a["category_id"] == IGNORE_CATEGORY for a in anns)
            counts[split]["images"] += 1
            stem = f"{split}{k:05d}"
            Image.fromarray(img).save(img_dir / f"{stem}.jpg", quality=92)
            doc = dict(images=dict(file_name=f"{stem}.jpg", height=height, width=width, id=k),
                       annotations=[dict(a, area=round(float(_area(a["poly"])), 2), image_id=k, id=j)
                                    for j, a in enumerate(anns)],
                       categories=categories)
            (ann_dir / f"{stem}.json").write_text(json.dumps(doc), encoding="utf-8")
    meta = dict(generator="ugs.data.synthetic_soda_a", generator_version=SODA_A_SYNTH_VERSION,
                layout="SODA-A: <split>/Images/*.jpg + <split>/Annotations/*.json",
                parameters=dict(splits=splits, image_size=list(image_size), objects_per_image=list(objects_per_image),
                                median_size=median_size, sigma=sigma, max_size=max_size,
                                p_ignore_region=p_ignore_region, p_malformed=p_malformed, seed=seed),
                counts=counts)
    (root / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def _area(flat) -> float:
    """Shoelace area of a flat polygon."""
    p = np.asarray(flat, dtype=np.float64).reshape(-1, 2)
    x, y = p[:, 0], p[:, 1]
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2
