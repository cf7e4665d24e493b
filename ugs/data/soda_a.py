"""SODA-A (Table 3): its per-image JSON annotations, polygons -> rotated boxes, every object
accounted for.

**Layout** (as the SODA authors' ``rawData``; `README`, "Data"): one folder per split,

    <split>/Images/<stem>.jpg
    <split>/Annotations/<stem>.json    {"annotations": [{"poly": [x1, y1, ..., x4, y4],
                                                      "category_id": 0..9, ...}, ...],
                                        "categories": [... 10 entries, "ignore" last], ...}

The image size is read from the image file, as the official split tool does. Classes 0-8 are
evaluated (:data:`SODA_A_CLASSES`); category 9 marks **ignore regions** (painted out of the
pixels when cropping, never evaluated).

**Polygons -> rotated boxes** exactly as the official loader (mmrotate 0.x ``poly2obb_np`` with
``le90``): OpenCV's minimum-area rectangle of the four points (float32); a rectangle with a side
under 2 px is dropped; the long side becomes the width, the angle (radians) is brought into
[-pi/2, pi/2). The official loader also skips polygons with more than 8 numbers.

**Accounting.** The official code drops those two kinds of object silently (and skips empty
annotation files); here every annotation of a file ends in exactly one of ``objects`` (kept),
``ignore`` (category 9) or ``rejected`` (with its reason: :data:`REJECT_REASONS`), so
``annotations = objects + ignore + rejected`` per file and per split. Anything else (invalid
JSON, a missing or non-list ``annotations``, an annotation without a numeric ``poly`` of an even
number >= 6 of finite values, a ``category_id`` outside 0-9) is **malformed** and stops the
reading with :class:`SodaAFormatError`, naming the file and the index of the bad annotation.

numpy, OpenCV and PIL only (no framework import).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = ["SODA_A_CLASSES", "IGNORE_CATEGORY", "MIN_SIDE", "REJECT_REASONS", "SodaAFormatError",
           "poly_to_rbox_le90", "rbox_to_poly", "read_soda_a_annotation", "convert_soda_a",
           "format_soda_a_report"]

#: the 9 evaluated classes, in ``category_id`` order (0-indexed)
SODA_A_CLASSES = ("airplane", "helicopter", "small-vehicle", "large-vehicle", "ship", "container",
                  "storage-tank", "swimming-pool", "windmill")
IGNORE_CATEGORY = 9
#: a minimum-area rectangle with a side under this (px) is dropped, as the official loader does
MIN_SIDE = 2.0
REJECT_REASONS = {
    "more_than_8_numbers": "polygon with more than 8 numbers (the official loader skips these)",
    "side_under_2px": "minimum-area rectangle with a side under 2 px (the official loader drops these)",
}

PathLike = Union[str, Path]


class SodaAFormatError(ValueError):
    """A SODA-A annotation file that cannot be read; the message names the file (and the index
    of the bad annotation)."""


def poly_to_rbox_le90(poly: Sequence[float]) -> Tuple[Optional[Tuple[float, float, float, float, float]], Optional[str]]:
    """``(rbox, None)`` with ``rbox = (cx, cy, w, h, angle)`` (le90: ``w >= h``, angle in radians
    in [-pi/2, pi/2)) from a polygon of 8 numbers, or ``(None, reason)`` (a key of
    :data:`REJECT_REASONS`) where the official loader drops it."""
    import cv2

    if len(poly) > 8:
        return None, "more_than_8_numbers"
    pts = np.asarray(poly, dtype=np.float32).reshape(4, 2)
    (cx, cy), (w, h), deg = cv2.minAreaRect(pts)
    if w < MIN_SIDE or h < MIN_SIDE:
        return None, "side_under_2px"
    a = deg / 180.0 * math.pi
    if w < h:
        w, h = h, w
        a += math.pi / 2
    a = (a + math.pi / 2) % math.pi - math.pi / 2          # into [-pi/2, pi/2)
    if a >= math.pi / 2:                                    # float edge of the modulo
        a -= math.pi
    return (float(cx), float(cy), float(w), float(h), float(a)), None


def rbox_to_poly(rbox: Sequence[float]) -> np.ndarray:
    """The four corners ``(4, 2)`` of ``(cx, cy, w, h, angle)``: the width along the angle's
    direction (x right, y down, angle measured from the x axis towards y)."""
    cx, cy, w, h, a = (float(v) for v in rbox)
    c, s = math.cos(a), math.sin(a)
    u, v = np.array([c, s]) * w / 2, np.array([-s, c]) * h / 2
    centre = np.array([cx, cy])
    return np.stack([centre - u - v, centre + u - v, centre + u + v, centre - u + v])


def _numbers(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)


def read_soda_a_annotation(path: PathLike) -> Dict[str, list]:
    """Read one SODA-A annotation file: ``objects`` (``index``, ``category_id``, ``poly``,
    ``rbox``), ``ignore`` (``index``, ``poly``) and ``rejected`` (``index``, ``category_id``,
    ``poly``, ``reason``), each annotation in exactly one. An empty file has no annotations
    (``empty`` True). Raises :class:`SodaAFormatError` for a malformed file."""
    path = Path(path)
    out: Dict[str, list] = {"objects": [], "ignore": [], "rejected": [], "empty": False}
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        out["empty"] = True
        return out
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise SodaAFormatError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("annotations"), list):
        raise SodaAFormatError(f"{path}: no 'annotations' list at the top level")
    for i, ann in enumerate(doc["annotations"]):
        where = f"{path}: annotation {i}"
        if not isinstance(ann, dict):
            raise SodaAFormatError(f"{where}: not an object")
        if "poly" not in ann or "category_id" not in ann:
            raise SodaAFormatError(f"{where}: needs 'poly' and 'category_id', has {sorted(ann)}")
        poly, cat = ann["poly"], ann["category_id"]
        if not _numbers(poly) or len(poly) < 6 or len(poly) % 2:
            raise SodaAFormatError(f"{where}: 'poly' must be a list of an even number (>= 6) of numbers, "
                                   f"got {str(poly)[:80]}")
        if not all(math.isfinite(v) for v in poly):
            raise SodaAFormatError(f"{where}: 'poly' has a non-finite value: {poly}")
        if isinstance(cat, bool) or not isinstance(cat, (int, float)) or not math.isfinite(cat) \
                or cat != int(cat) or not 0 <= int(cat) <= IGNORE_CATEGORY:
            raise SodaAFormatError(f"{where}: 'category_id' must be an integer in 0-{IGNORE_CATEGORY}, got {cat!r}")
        cat = int(cat)
        poly = [float(v) for v in poly]
        if cat == IGNORE_CATEGORY:
            out["ignore"].append(dict(index=i, poly=poly))
            continue
        if len(poly) < 8:
            raise SodaAFormatError(f"{where}: an object's 'poly' needs 4 points (8 numbers), got {len(poly)}")
        rbox, reason = poly_to_rbox_le90(poly)
        if rbox is None:
            out["rejected"].append(dict(index=i, category_id=cat, poly=poly, reason=reason))
        else:
            out["objects"].append(dict(index=i, category_id=cat, poly=poly, rbox=list(rbox)))
    return out


def convert_soda_a(split_dir: PathLike, out_json: Optional[PathLike] = None, progress=None) -> dict:
    """Read every ``<split_dir>/Annotations/*.json`` with its image in ``<split_dir>/Images``
    and return (and with ``out_json`` write) one JSON: ``images`` (``id``, ``file_name``,
    ``width``, ``height``), ``annotations`` (``id``, ``image_id``, ``category_id``, ``poly``,
    ``rbox`` le90, ``area`` = w h of the rotated box, ``source_index``), ``ignore_regions``
    (``image_id``, ``poly``), ``categories`` and ``report`` (the accounting: per reason, per
    class, empty files). Stops with :class:`SodaAFormatError` / FileNotFoundError naming the
    file for a malformed annotation, a missing image, or an image without annotation."""
    from PIL import Image

    split_dir = Path(split_dir)
    ann_dir, img_dir = split_dir / "Annotations", split_dir / "Images"
    for d in (ann_dir, img_dir):
        if not d.is_dir():
            raise FileNotFoundError(f"{split_dir}: no {d.name}/ folder (SODA-A's layout: <split>/Images/*.jpg "
                                    "and <split>/Annotations/*.json)")
    ann_files = sorted(ann_dir.glob("*.json"))
    if not ann_files:
        raise FileNotFoundError(f"{ann_dir}: no *.json annotation files")
    images_without = sorted(p.name for p in img_dir.glob("*.jpg") if not (ann_dir / f"{p.stem}.json").is_file())
    if images_without:
        raise FileNotFoundError(f"{img_dir}: {len(images_without)} image(s) without an annotation file in {ann_dir}, "
                                f"e.g. {images_without[:3]}")
    images, annotations, ignore_regions = [], [], []
    report = dict(files=len(ann_files), annotations=0, objects=0, ignore=0, rejected=0, empty_files=[],
                  rejected_by_reason={k: 0 for k in REJECT_REASONS}, objects_per_class={c: 0 for c in SODA_A_CLASSES},
                  rejected_examples=[])
    for k, ann_path in enumerate(ann_files):
        img_path = img_dir / f"{ann_path.stem}.jpg"
        if not img_path.is_file():
            raise FileNotFoundError(f"{ann_path}: its image {img_path} does not exist")
        with Image.open(img_path) as im:
            width, height = im.size
        rec = read_soda_a_annotation(ann_path)
        image_id = k + 1
        images.append(dict(id=image_id, file_name=img_path.name, width=width, height=height))
        if rec["empty"]:
            report["empty_files"].append(ann_path.name)
        for o in rec["objects"]:
            w, h = o["rbox"][2], o["rbox"][3]
            annotations.append(dict(id=len(annotations) + 1, image_id=image_id, category_id=o["category_id"],
                                    poly=o["poly"], rbox=o["rbox"], area=w * h, source_index=o["index"]))
            report["objects_per_class"][SODA_A_CLASSES[o["category_id"]]] += 1
        for g in rec["ignore"]:
            ignore_regions.append(dict(image_id=image_id, poly=g["poly"], source_index=g["index"]))
        for r in rec["rejected"]:
            report["rejected_by_reason"][r["reason"]] += 1
            if len(report["rejected_examples"]) < 20:
                report["rejected_examples"].append(dict(file=ann_path.name, index=r["index"], reason=r["reason"]))
        n = len(rec["objects"]) + len(rec["ignore"]) + len(rec["rejected"])
        report["annotations"] += n
        report["objects"] += len(rec["objects"])
        report["ignore"] += len(rec["ignore"])
        report["rejected"] += len(rec["rejected"])
        if progress is not None:
            progress(k + 1, len(ann_files))
    assert report["annotations"] == report["objects"] + report["ignore"] + report["rejected"]
    doc = dict(images=images, annotations=annotations, ignore_regions=ignore_regions,
               categories=[dict(id=i, name=c) for i, c in enumerate(SODA_A_CLASSES)],
               source=str(split_dir), report=report)
    if out_json is not None:
        out_json = Path(out_json)
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(doc), encoding="utf-8")
    return doc


def format_soda_a_report(report: dict) -> str:
    """The accounting of :func:`convert_soda_a` as a few lines of text."""
    lines = [f"{report['files']} annotation files, {report['annotations']} annotations = "
             f"{report['objects']} objects + {report['ignore']} ignore regions + {report['rejected']} rejected"]
    for k, n in report["rejected_by_reason"].items():
        if n:
            lines.append(f"  rejected, {REJECT_REASONS[k]}: {n}")
    for ex in report["rejected_examples"][:5]:
        lines.append(f"    e.g. {ex['file']} annotation {ex['index']} ({ex['reason']})")
    if report["empty_files"]:
        lines.append(f"  empty annotation files (images without objects; the official loader skips them): "
                     f"{len(report['empty_files'])}, e.g. {report['empty_files'][:3]}")
    lines.append("  objects per class: " + ", ".join(f"{c} {n}" for c, n in report["objects_per_class"].items()))
    return "\n".join(lines)
