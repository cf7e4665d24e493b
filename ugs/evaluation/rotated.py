"""SODA-A's evaluation (Table 3): COCO-style AP of rotated boxes with SODA's size ranges, fast.

**The protocol** (the SODA authors' 2023 evaluator, ``sodaa_eval.py`` of shaunyuan22/SODA-mmrotate
at 5913e30; NOTES section 7): per image and class, detections sorted by score and cut to 20,000;
rotated IoU; exact COCO greedy matching at IoU 0.50:0.05:0.95; 101 recall points; a box's
area is ``w * h`` of the rotated box, for ground truth and detections alike; the ranges

    Small [0, 32^2] (the headline AP, AP50, AP75), eS [0, 12^2], rS [12^2, 20^2],
    gS [20^2, 32^2], Normal [32^2, 40 x 50]

(closed, as pycocotools); ground truth outside a range is ignored in it, an unmatched
detection outside it too. Category 9 (ignore) is never evaluated: the converter keeps it out
of the annotations. The kit follows the 2023 evaluator, not the 2025 rewrite, because the
rewrite changes the protocol (each detection matched only to its best-IoU ground truth; images
without detections skipped, so their ground truth never counts as missed), while the 2023
version is COCO's matching, whose numbers the paper's tables (2023-2025 SODA-A results) were
made with. One deliberate difference: the 2023 code numbers ground truth and detections from 0
and stores matches by id, so the first ground truth and the first detection of the whole set
can never count as matched (pycocotools numbers from 1); here every id is a real id, as
pycocotools behaves.

**The speed.** The official evaluator computes a dense IoU matrix per image and class with
mmcv's single-threaded CPU kernel and matches in a Python loop over every (threshold, area
range, detection, ground truth): reported at about 4 h 40 min for the test split. Here the
matching and accumulation are the kit's vectorised COCO evaluator
(:class:`ugs.evaluation.coco_ap.CocoBoxEvaluator`, pycocotools' numbers), and only the pairs
whose axis-aligned hulls overlap are clipped (:mod:`ugs.evaluation.rotated_iou`): small objects
spread over a large image overlap few others. ``benchmarks/eval_speed_rotated.py`` measures
both on a synthetic case of SODA's scale.

numpy only.
"""
from __future__ import annotations

import json
import os
from typing import Sequence

import numpy as np

from .coco_ap import CocoBoxEvaluator, GroundTruth, _check_boxes, _id_index, _positions
from .rotated_iou import candidate_pairs, rotated_iou_pairs

__all__ = ["SODA_A_AREA_RANGES", "SODA_A_MAX_DETS", "SODA_A_METRICS", "RotatedBoxEvaluator",
           "load_rotated_ground_truth", "rotated_detections_to_arrays", "evaluate_soda_a",
           "format_soda_a_metrics", "rotated_nms", "merge_crop_detections", "resolve_image_ids"]

#: (label, lo, hi) of SODA-A's evaluator, by the rotated box's w * h; "Small" is the headline
SODA_A_AREA_RANGES = (("Small", 0.0, 32.0 ** 2), ("eS", 0.0, 12.0 ** 2), ("rS", 12.0 ** 2, 20.0 ** 2),
                      ("gS", 20.0 ** 2, 32.0 ** 2), ("Normal", 32.0 ** 2, 40.0 * 50.0))
SODA_A_MAX_DETS = (20000,)
#: the metrics Table 3 reports (the evaluator also returns ``AR`` and ``per_class``)
SODA_A_METRICS = ("AP", "AP50", "AP75", "AP_eS", "AP_rS", "AP_gS", "AP_N")
_SHORT = {"eS": "AP_eS", "rS": "AP_rS", "gS": "AP_gS", "Normal": "AP_N"}


def _check_rboxes(box: np.ndarray, what: str) -> None:
    _check_boxes(box, what, field="rbox", layout="[cx, cy, w, h, angle]")


def load_rotated_ground_truth(source) -> GroundTruth:
    """Ground truth of rotated boxes from a dict or JSON path with ``images`` (``id``),
    ``categories`` (``id``, ``name``) and ``annotations`` (``image_id``, ``category_id``,
    ``rbox`` ``[cx, cy, w, h, angle]``, optional ``area`` (default ``w * h``), ``id``):
    the JSON ``ugs data soda-a`` writes."""
    if isinstance(source, GroundTruth):
        return source
    if isinstance(source, (str, os.PathLike)):
        with open(source, "r", encoding="utf-8") as fh:
            source = json.load(fh)
    for key in ("images", "categories"):
        if key not in source:
            raise ValueError(f"ground truth has no {key!r} list")
    anns = source.get("annotations", []) or []
    image_ids, img_lookup = _id_index([im["id"] for im in source["images"]])
    cat_ids, cat_lookup = _id_index([c["id"] for c in source["categories"]])
    names = {c["id"]: str(c.get("name", c["id"])) for c in source["categories"]}
    n = len(anns)
    for i, a in enumerate(anns):
        for k in ("rbox", "image_id", "category_id"):
            if k not in a:
                raise ValueError(f"annotation {i}: missing field {k!r}")
        if np.size(a["rbox"]) != 5:
            raise ValueError(f"annotation {i}: field 'rbox' must have 5 numbers [cx, cy, w, h, angle], "
                             f"got {a['rbox']!r}")
    box = np.asarray([a["rbox"] for a in anns], dtype=np.float64).reshape(n, -1) if n else np.zeros((0, 5))
    _check_rboxes(box, "annotation")
    img = _positions(np.asarray([a["image_id"] for a in anns]), image_ids, img_lookup)
    cat = _positions(np.asarray([a["category_id"] for a in anns]), cat_ids, cat_lookup)
    for arr, key in ((img, "image_id"), (cat, "category_id")):
        if (arr < 0).any():
            i = int(np.argmax(arr < 0))
            raise ValueError(f"annotation {i}: field {key!r} = {anns[i][key]!r} is unknown")
    area = np.asarray([a.get("area", b[2] * b[3]) for a, b in zip(anns, box)], dtype=np.float64)
    n_img = image_ids.size
    return GroundTruth(image_ids, cat_ids, [names[c] for c in cat_ids.tolist()], np.full(n_img, np.nan),
                       np.full(n_img, np.nan), [np.zeros((0, 4))] * n_img, img, cat, box, area,
                       np.zeros(n, dtype=bool), np.asarray([a.get("id", i + 1) for i, a in enumerate(anns)]),
                       img_lookup, cat_lookup)


def rotated_detections_to_arrays(detections):
    """Detections -> ``(image_id, category_id, rbox (N, 5), score)``: a list of dicts
    (``image_id``, ``category_id``, ``rbox``, ``score``), a JSON path to one, a dict of
    arrays with those keys, or an ``(N, 8)`` array ``[image_id, cx, cy, w, h, angle, score,
    category_id]``."""
    if isinstance(detections, (str, os.PathLike)):
        with open(detections, "r", encoding="utf-8") as fh:
            detections = json.load(fh)
    if isinstance(detections, np.ndarray):
        arr = np.asarray(detections, dtype=np.float64)
        if arr.size == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 5)), np.zeros(0)
        if arr.ndim != 2 or arr.shape[1] != 8:
            raise ValueError("a detection array must be (N, 8): [image_id, cx, cy, w, h, angle, score, category_id]")
        return arr[:, 0], arr[:, 7], arr[:, 1:6].copy(), arr[:, 6].copy()
    if isinstance(detections, dict):
        missing = [k for k in ("image_id", "category_id", "rbox", "score") if k not in detections]
        if missing:
            raise ValueError(f"detections dict: missing field(s) {missing}")
        img = np.asarray(detections["image_id"]).reshape(-1)
        box = np.asarray(detections["rbox"], dtype=np.float64).reshape(-1, 5)
        return (img, np.asarray(detections["category_id"]).reshape(-1), box,
                np.asarray(detections["score"], dtype=np.float64).reshape(-1))
    dets = list(detections)
    if not dets:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 5)), np.zeros(0)
    for i, d in enumerate(dets):
        if not isinstance(d, dict):
            raise ValueError(f"detection {i}: expected a dict, got {type(d).__name__}")
        missing = [k for k in ("image_id", "category_id", "rbox", "score") if k not in d]
        if missing:
            raise ValueError(f"detection {i}: missing field(s) {missing}")
        if np.size(d["rbox"]) != 5:
            raise ValueError(f"detection {i}: field 'rbox' must have 5 numbers, got {d['rbox']!r}")
    return (np.asarray([d["image_id"] for d in dets]), np.asarray([d["category_id"] for d in dets]),
            np.asarray([d["rbox"] for d in dets], dtype=np.float64),
            np.asarray([d["score"] for d in dets], dtype=np.float64))


class RotatedBoxEvaluator(CocoBoxEvaluator):
    """COCO-style evaluation of rotated boxes (pycocotools' matching and accumulation, rotated
    IoU); by default SODA-A's protocol (module docstring). ``precision`` / ``recall`` after
    :meth:`evaluate` are pycocotools' arrays over :attr:`area_ranges`."""

    def __init__(self, gt, *, max_dets: Sequence[int] = SODA_A_MAX_DETS, area_ranges=SODA_A_AREA_RANGES,
                 iou_thrs=None, rec_thrs=None, progress: bool = False):
        super().__init__(gt, max_dets=max_dets, ignore_rule=None, iou_thrs=iou_thrs, rec_thrs=rec_thrs,
                         area_ranges=area_ranges, progress=progress)

    _load_ground_truth = staticmethod(load_rotated_ground_truth)
    _parse_detections = staticmethod(rotated_detections_to_arrays)

    @staticmethod
    def _validate_boxes(box: np.ndarray, what: str) -> None:
        _check_rboxes(box.reshape(-1, 5), what)

    def _pairs(self, d_img, d_cat, d_box, prog):
        """Same-image, same-class (det, gt) pairs with rotated IoU >= the lowest threshold:
        per (image, class) group, the pairs whose hulls overlap, clipped exactly."""
        thr_min = min(float(self.iou_thrs.min()), 1 - 1e-10)
        K = self.gt.num_categories
        empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
        if d_img.size == 0 or self._g_img.size == 0:
            return empty
        n_grp = self.gt.num_images * K
        gs = np.searchsorted(self._g_img * K + self._g_cat, np.arange(n_grp + 1))
        ds = np.searchsorted(d_img * K + d_cat, np.arange(n_grp + 1))
        both = np.nonzero((np.diff(gs) > 0) & (np.diff(ds) > 0))[0]
        out_d, out_g = [], []
        for j in prog.iterate(both.tolist(), both.size, "candidate pairs"):
            d0, d1, g0, g1 = ds[j], ds[j + 1], gs[j], gs[j + 1]
            di, gi = candidate_pairs(d_box[d0:d1], self._g_box[g0:g1])
            out_d.append(di + d0)
            out_g.append(gi + g0)
        if not out_d:
            return empty
        pd, pg = np.concatenate(out_d), np.concatenate(out_g)
        iou = rotated_iou_pairs(d_box[pd], self._g_box[pg])
        ok = iou >= thr_min
        return pd[ok], pg[ok], iou[ok]

    def _summaries(self) -> dict:
        head = self.area_ranges[0][0]
        out = {"AP": self.ap(area=head), "AP50": self.ap(iou=0.5, area=head), "AP75": self.ap(iou=0.75, area=head)}
        for label, _, _ in self.area_ranges[1:]:
            out[_SHORT.get(label, f"AP_{label}")] = self.ap(area=label)
        out["AR"] = self.ar(area=head)
        out["per_class"] = {name: {"category_id": self.gt.cat_ids[k].item(), "AP": self.ap(area=head, cat=k),
                                   "AP50": self.ap(iou=0.5, area=head, cat=k),
                                   "num_gts": int(self._npig[k, 0])}
                            for k, name in enumerate(self.gt.cat_names)}
        out["area_ranges"] = [list(a) for a in self.area_ranges]
        out["max_dets"] = list(self.max_dets)
        out["iou_thrs"] = [float(t) for t in self.iou_thrs]
        return out


def evaluate_soda_a(gt, detections, progress: bool = False) -> dict:
    """SODA-A's metrics (``AP AP50 AP75 AP_eS AP_rS AP_gS AP_N AR``, fractions; -1 where a
    range has no ground truth) of rotated detections on full images."""
    return RotatedBoxEvaluator(gt, progress=progress).evaluate(detections)


def format_soda_a_metrics(metrics: dict) -> str:
    return "  ".join(f"{k} {100 * metrics[k]:.1f}" if metrics[k] >= 0 else f"{k} -"
                     for k in SODA_A_METRICS if k in metrics)


def rotated_nms(boxes, scores, iou_thr: float = 0.5) -> np.ndarray:
    """Greedy NMS of rotated boxes: indices kept, highest score first (ties keep the input
    order); a box is suppressed by a kept one of higher rank with IoU > ``iou_thr`` (as mmcv's
    ``nms_rotated``)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    b = b[order]
    i, j = candidate_pairs(b, b)
    later = j > i
    i, j = i[later], j[later]
    iou = rotated_iou_pairs(b[i], b[j])
    hit = iou > iou_thr
    i, j = i[hit], j[hit]
    starts = np.searchsorted(i, np.arange(b.shape[0] + 1))
    suppressed = np.zeros(b.shape[0], dtype=bool)
    keep = []
    for k in range(b.shape[0]):
        if suppressed[k]:
            continue
        keep.append(k)
        suppressed[j[starts[k]:starts[k + 1]]] = True
    return order[np.asarray(keep, dtype=np.int64)]


def resolve_image_ids(detections: list, gt: dict, merge: bool = False) -> list:
    """Give each detection an ``image_id`` of ``gt`` (the converted JSON): from its own
    ``image_id``, or from ``file_name`` (the image's file name or stem; with ``merge``, a crop
    name ``<stem>__<size>__<x>___<y>``, the box shifted back by the crop's offsets). Raises
    naming the first detection that matches no image."""
    from ugs.data.soda_a_crops import parse_crop_name

    by_stem = {os.path.splitext(im["file_name"])[0]: im["id"] for im in gt["images"]}
    known = {im["id"] for im in gt["images"]}
    out = []
    for i, d in enumerate(detections):
        d = dict(d)
        if merge:
            if "file_name" not in d:
                raise ValueError(f"detection {i}: --merge needs 'file_name' (the crop's name), has {sorted(d)}")
            try:
                stem, _, x, y = parse_crop_name(d["file_name"])
            except ValueError as e:
                raise ValueError(f"detection {i}: {e}") from None
            rb = [float(v) for v in d["rbox"]]
            d["rbox"] = [rb[0] + x, rb[1] + y, *rb[2:]]
        elif "image_id" in d:
            if d["image_id"] not in known:
                raise ValueError(f"detection {i}: 'image_id' = {d['image_id']!r} is not an image of the annotations")
            out.append(d)
            continue
        elif "file_name" in d:
            stem = os.path.splitext(os.path.basename(str(d["file_name"])))[0]
        else:
            raise ValueError(f"detection {i}: needs 'image_id' or 'file_name', has {sorted(d)}")
        if stem not in by_stem:
            raise ValueError(f"detection {i}: image {stem!r} is not in the annotations"
                             + (" (is it a crop? use --merge)" if "__" in stem and not merge else ""))
        d["image_id"] = by_stem[stem]
        out.append(d)
    return out


def merge_crop_detections(detections: list, iou_thr: float = 0.5) -> list:
    """Crop detections already shifted onto their full image (:func:`resolve_image_ids` with
    ``merge``) -> per image and class, rotated NMS at ``iou_thr`` (SODA-A's official merge:
    0.5), as the official evaluation does before scoring."""
    groups = {}
    for k, d in enumerate(detections):
        groups.setdefault((d["image_id"], d["category_id"]), []).append(k)
    keep = []
    for idx in groups.values():
        kept = rotated_nms([detections[k]["rbox"] for k in idx], [detections[k]["score"] for k in idx], iou_thr)
        keep.extend(idx[k] for k in kept)
    return [detections[k] for k in sorted(keep)]
