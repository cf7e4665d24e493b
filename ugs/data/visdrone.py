"""VisDrone-DET (official text layout) -> COCO JSON, with the official toolkit's ignore rules.

Where to get the data
---------------------
VisDrone-DET 2019 ("Vision Meets Drones", Tianjin University AISKYEYE team): the download
links are on the official website http://aiskyeye.com/ and in the README of the VisDrone
GitHub organisation's dataset repository, https://github.com/VisDrone/VisDrone-Dataset
(task 1, "object detection in images"). The evaluation code is the MATLAB toolkit
https://github.com/VisDrone/VisDrone2018-DET-toolkit (``evalDET.m``). Splits and image counts:

===================================  ========  ==============================
folder                                images    annotations
===================================  ========  ==============================
``VisDrone2019-DET-train``            6,471     public
``VisDrone2019-DET-val``                548     public
``VisDrone2019-DET-test-dev``         1,610     public (the split to report)
``VisDrone2019-DET-test-challenge``   1,580     withheld (no ``annotations/``)
===================================  ========  ==============================

Expected layout: one split per folder, ``SPLIT/images/<stem>.jpg`` and
``SPLIT/annotations/<stem>.txt``, one text file per image (possibly empty), each non-blank
line::

    <bbox_left>,<bbox_top>,<bbox_width>,<bbox_height>,<score>,<object_category>,<truncation>,<occlusion>

eight integers, pixels, (left, top) the top-left corner. Some files end their lines with a
trailing comma, and CRLF line endings occur; both are accepted, as are LF and CR. ``score`` is 1 (evaluated) or
0 (ignored); ``object_category`` is 0 (ignored region), 1..10 (pedestrian, people, bicycle,
car, van, truck, tricycle, awning-tricycle, bus, motor) or 11 (others).

What the official toolkit does (read from its source)
------------------------------------------------------
* ``utils/dropObjectsInIgr.m`` collects every category-0 box into an ignore mask and deletes
  every ground-truth box *and every detection* with at least half of its own area inside the
  mask (an area-fraction rule, not IoU).
* ``utils/saveAnnoRes.m`` turns ``score`` into the "ignore" flag of ``utils/evalRes.m``: a
  score-0 box stays in the ground truth as an ignore box; a detection whose intersection with
  it covers at least the IoU threshold of the *detection's* area is then neither a true nor a
  false positive.
* ``utils/calcAccuracy.m`` loops over ``idClass = 1:10``: category 11 (others) is never
  evaluated and is not an ignore region either, so a detection on an "others" object is a
  plain false positive. The toolkit README: "The detections in the ignored regions or labeled
  as 'others' will be not considered in evaluation."
* A third-party count over the three public 2019 splits reports that ``score == 0``
  occurs exactly on categories 0 and 11 (not verified here: check your copy with the
  report's ``ignored_reasons`` / ``rejected_reasons``; ``score0_object`` should be 0); if so,
  rule 3 below only matters for other files.

The rules implemented here (one per input line, in this order)
--------------------------------------------------------------
1. ``category == 0`` -> an **ignored region**: appended to the image's ``"ignored_regions"``
   (``[x, y, w, h]`` after clipping); evaluation must drop every ground-truth box and every
   detection with >= 50 % of its own area inside the union of these regions, as
   ``dropObjectsInIgr.m`` does. Counted in ``ignored`` (reason ``ignored_region``).
2. ``category == 11`` (others) -> **rejected**, reason ``others``, whatever its score: it is
   not one of the 10 evaluated classes, and the toolkit does not make it an ignore region, so
   it is neither a training target nor an ignore region here.
3. ``score == 0`` with a category in 1..10 -> an **ignored region** too (reason
   ``score0_object``): the toolkit keeps such a box as an ignore box whose overlap is measured
   on the detection's own area; an ignored region with the 50 %-of-own-area rule is the same
   test at IoU 0.5 and the closest one-mechanism equivalent in COCO form (COCO's ``iscrowd``
   would reproduce evalRes more exactly, but the kit keeps ``iscrowd = 0`` on every
   annotation and one ignore mechanism for evaluation).
4. everything else (``score == 1``, category 1..10) -> a COCO **annotation** (``kept``), with
   ``category_id`` = the VisDrone category and ``truncation`` / ``occlusion`` copied.

Clipping (rules 1, 3, 4): a box covers the half-open pixel range ``[left, left + width)`` x
``[top, top + height)``; it is intersected with the image ``[0, W) x [0, H)``:
``x1 = max(left, 0)``, ``x2 = min(left + width, W)`` (same for y), ``bbox = [x1, y1, x2 - x1,
y2 - y1]`` as floats, ``area = (x2 - x1) * (y2 - y1)``. Boxes that change are counted in
``clipped``. A box with nothing left is **rejected**, never dropped silently: reason
``zero_area`` when the line itself has width or height 0, ``outside_image`` when its positive
area lies wholly outside the image (``region_zero_area`` / ``region_outside_image`` for rules 1
and 3).

Accounting: ``lines`` counts the non-blank lines of all annotation files (blank lines, such as
a final newline or an empty file, carry nothing and are counted in ``blank_lines``), and
``lines == kept + ignored + rejected`` is asserted for every split, with
``sum(rejected_reasons.values()) == rejected`` and ``sum(ignored_reasons.values()) ==
ignored``.

Malformed input raises ``ValueError`` naming the file, the 1-based line number and the text:
a field count other than 8 (after removing one trailing comma), a field that is not a decimal
integer, a negative width or height, a score other than 0 / 1, a category outside 0..11.
An annotation file without its image also raises (the image size is needed for clipping).
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import List, NamedTuple, Optional, Tuple, Union

from PIL import Image

__all__ = [
    "VISDRONE_CATEGORIES", "CATEGORY_NAMES", "IGNORED_REGION", "OTHERS",
    "VisDroneRecord", "read_visdrone_annotation", "parse_visdrone_text",
    "visdrone_to_coco", "convert_visdrone", "format_report",
]

#: The 10 evaluated VisDrone-DET classes, COCO ``categories`` ids 1..10 (= VisDrone ids).
CATEGORY_NAMES = ("pedestrian", "people", "bicycle", "car", "van", "truck", "tricycle",
                  "awning-tricycle", "bus", "motor")
VISDRONE_CATEGORIES = [{"id": i + 1, "name": n, "supercategory": "visdrone"}
                       for i, n in enumerate(CATEGORY_NAMES)]
IGNORED_REGION = 0
OTHERS = 11

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_INT = re.compile(r"^[+-]?[0-9]+$")
_FIELD_NAMES = ("bbox_left", "bbox_top", "bbox_width", "bbox_height", "score",
                "object_category", "truncation", "occlusion")
PathLike = Union[str, os.PathLike]


class VisDroneRecord(NamedTuple):
    """One non-blank annotation line, parsed; ``line`` is its 1-based line number."""
    left: int
    top: int
    width: int
    height: int
    score: int
    category: int
    truncation: int
    occlusion: int
    line: int


def _split_lines(text: str) -> List[str]:
    # CRLF, CR and LF all end a line; str.splitlines would also split on \x0b, \x1c, ...
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def parse_visdrone_text(text: str, source: str = "<string>") -> Tuple[List[VisDroneRecord], int]:
    """Parse the text of one annotation file. Returns ``(records, blank_lines)``.

    ``source`` names the file in error messages.
    """
    records: List[VisDroneRecord] = []
    blank = 0
    lines = _split_lines(text)
    if lines and lines[-1] == "":
        lines.pop()                     # the newline that ends the last line opens no new line
    for lineno, raw in enumerate(lines, start=1):
        s = raw.strip()
        if not s:
            blank += 1
            continue

        def bad(why: str) -> ValueError:
            return ValueError(f"{source}, line {lineno}: {why}: {raw.rstrip()!r}")

        if s.endswith(","):
            s = s[:-1]
        fields = [f.strip() for f in s.split(",")]
        if len(fields) != 8:
            raise bad(f"expected 8 comma-separated fields, got {len(fields)}")
        for k, f in enumerate(fields):
            if not _INT.match(f):
                raise bad(f"field {k + 1} ({_FIELD_NAMES[k]}) is not an integer ({f!r})")
        v = [int(f) for f in fields]
        if v[2] < 0 or v[3] < 0:
            raise bad(f"negative width or height ({v[2]}, {v[3]})")
        if v[4] not in (0, 1):
            raise bad(f"score must be 0 or 1 in a ground-truth file, got {v[4]}")
        if not 0 <= v[5] <= 11:
            raise bad(f"unknown category {v[5]} (expected 0..11)")
        records.append(VisDroneRecord(*v, line=lineno))
    return records, blank


def read_visdrone_annotation(path: PathLike) -> List[VisDroneRecord]:
    """Parse one VisDrone-DET annotation file into records (blank lines skipped).

    Raises ``ValueError`` naming ``path`` and the 1-based line number on a malformed line.
    """
    path = Path(path)
    text = path.read_bytes().decode("utf-8-sig")
    return parse_visdrone_text(text, str(path))[0]


def _clip(rec: VisDroneRecord, width: int, height: int):
    """Clip to ``[0, W) x [0, H)``. Returns ``(bbox, area, changed)`` or ``(reason, None, None)``."""
    if rec.width == 0 or rec.height == 0:
        return "zero_area", None, None
    x1, y1 = max(rec.left, 0), max(rec.top, 0)
    x2, y2 = min(rec.left + rec.width, width), min(rec.top + rec.height, height)
    if x2 <= x1 or y2 <= y1:
        return "outside_image", None, None
    changed = (x1, y1, x2, y2) != (rec.left, rec.top, rec.left + rec.width, rec.top + rec.height)
    w, h = x2 - x1, y2 - y1
    return [float(x1), float(y1), float(w), float(h)], float(w * h), changed


def visdrone_to_coco(split_dir: PathLike, *, images_dir: str = "images",
                     annotations_dir: str = "annotations",
                     allow_missing_annotations: bool = False) -> Tuple[dict, dict]:
    """Convert one split folder; returns ``(coco_dict, report)``. See the module docstring.

    Images are numbered 1..N in the sorted order of their file names; ``file_name`` is the
    name inside ``images/``. With ``allow_missing_annotations`` an image without a ``.txt``
    (e.g. test-challenge) gets no annotations instead of raising.
    """
    split_dir = Path(split_dir)
    img_dir, ann_dir = split_dir / images_dir, split_dir / annotations_dir
    if not img_dir.is_dir():
        raise FileNotFoundError(f"{split_dir}: no '{images_dir}/' folder (expected the "
                                f"VisDrone layout {images_dir}/*.jpg + {annotations_dir}/*.txt)")
    if not ann_dir.is_dir() and not allow_missing_annotations:
        raise FileNotFoundError(f"{split_dir}: no '{annotations_dir}/' folder")

    images = sorted(p for p in img_dir.iterdir()
                    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    by_stem = {}
    for p in images:
        if p.stem in by_stem:
            raise ValueError(f"{img_dir}: two images share the stem {p.stem!r}")
        by_stem[p.stem] = p
    ann_files = sorted(ann_dir.glob("*.txt")) if ann_dir.is_dir() else []
    orphans = [a.name for a in ann_files if a.stem not in by_stem]
    if orphans:
        raise ValueError(f"{ann_dir}: {len(orphans)} annotation file(s) without an image in "
                         f"{img_dir}, e.g. {orphans[0]}")
    ann_by_stem = {a.stem: a for a in ann_files}

    coco_images, coco_anns = [], []
    n_lines = n_blank = n_empty = n_clipped = 0
    n_missing = 0
    kept_cat: Counter = Counter()
    ignored_reasons: Counter = Counter()
    rejected_reasons: Counter = Counter()
    images_with_regions = 0

    for image_id, img_path in enumerate(images, start=1):
        with Image.open(img_path) as im:        # reads the header only, pixels stay on disk
            width, height = im.size
        entry = {"id": image_id, "file_name": img_path.name, "height": height,
                 "width": width, "ignored_regions": []}
        coco_images.append(entry)
        ann_path = ann_by_stem.get(img_path.stem)
        if ann_path is None:
            if not allow_missing_annotations:
                raise ValueError(f"{img_path}: no annotation file {ann_dir / (img_path.stem + '.txt')}")
            n_missing += 1
            continue
        text = ann_path.read_bytes().decode("utf-8-sig")
        records, blank = parse_visdrone_text(text, str(ann_path))
        n_blank += blank
        n_lines += len(records)
        if not records:
            n_empty += 1
        for rec in records:
            if rec.category == IGNORED_REGION:
                role = "ignored_region"
            elif rec.category == OTHERS:
                rejected_reasons["others"] += 1
                continue
            elif rec.score == 0:
                role = "score0_object"
            else:
                role = "object"
            bbox, area, changed = _clip(rec, width, height)
            if area is None:
                rejected_reasons[bbox if role == "object" else "region_" + bbox] += 1
                continue
            n_clipped += bool(changed)
            if role == "object":
                kept_cat[CATEGORY_NAMES[rec.category - 1]] += 1
                coco_anns.append({
                    "id": len(coco_anns) + 1, "image_id": image_id,
                    "category_id": rec.category, "bbox": bbox, "area": area, "iscrowd": 0,
                    "truncation": rec.truncation, "occlusion": rec.occlusion,
                })
            else:
                ignored_reasons[role] += 1
                entry["ignored_regions"].append(bbox)
        images_with_regions += bool(entry["ignored_regions"])

    kept, ignored = len(coco_anns), sum(ignored_reasons.values())
    rejected = sum(rejected_reasons.values())
    assert n_lines == kept + ignored + rejected, (n_lines, kept, ignored, rejected)
    report = {
        "split_dir": str(split_dir),
        "images": len(coco_images),
        "annotation_files": len(ann_files),
        "empty_files": n_empty,
        "images_without_annotation_file": n_missing,
        "blank_lines": n_blank,
        "lines": n_lines,
        "kept": kept,
        "ignored": ignored,
        "rejected": rejected,
        "ignored_reasons": dict(sorted(ignored_reasons.items())),
        "rejected_reasons": dict(sorted(rejected_reasons.items())),
        "clipped": n_clipped,
        "kept_per_category": {n: kept_cat.get(n, 0) for n in CATEGORY_NAMES},
        "images_with_ignored_regions": images_with_regions,
    }
    coco = {
        "info": {"description": f"VisDrone-DET split {split_dir.name}, converted by "
                                f"ugs.data.visdrone (rules in its module docstring)",
                 "source_layout": f"{images_dir}/*.jpg + {annotations_dir}/*.txt"},
        "images": coco_images,
        "annotations": coco_anns,
        "categories": [dict(c) for c in VISDRONE_CATEGORIES],
    }
    return coco, report


def convert_visdrone(split_dir: PathLike, out_json: Optional[PathLike], **kwargs) -> dict:
    """Convert ``split_dir`` (``images/`` + ``annotations/``) to COCO JSON at ``out_json``.

    Returns the report (counts ``lines == kept + ignored + rejected``, reasons, per-class
    counts); ``out_json=None`` converts without writing. ``kwargs`` go to
    :func:`visdrone_to_coco`.
    """
    coco, report = visdrone_to_coco(split_dir, **kwargs)
    report["out_json"] = None if out_json is None else str(out_json)
    if out_json is not None:
        out_json = Path(out_json)
        out_json.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_json.with_name(out_json.name + ".tmp")
        tmp.write_text(json.dumps(coco), encoding="utf-8")
        os.replace(tmp, out_json)
    return report


def format_report(report: dict) -> str:
    """A few human-readable lines for a converter report."""
    r = report
    lines = [
        f"{r['split_dir']}: {r['images']} images, {r['annotation_files']} annotation files "
        f"({r['empty_files']} empty)",
        f"  lines {r['lines']} = kept {r['kept']} + ignored {r['ignored']} "
        f"+ rejected {r['rejected']}   (blank lines {r['blank_lines']}, clipped {r['clipped']})",
    ]
    if r["ignored_reasons"]:
        lines.append("  ignored:  " + ", ".join(f"{k} {v}" for k, v in r["ignored_reasons"].items()))
    if r["rejected_reasons"]:
        lines.append("  rejected: " + ", ".join(f"{k} {v}" for k, v in r["rejected_reasons"].items()))
    lines.append("  kept per class: " + ", ".join(f"{k} {v}" for k, v in r["kept_per_category"].items()))
    if r.get("out_json"):
        lines.append(f"  -> {r['out_json']}")
    return "\n".join(lines)
