"""COCO-style box AP/AR in plain numpy, with the VisDrone ignored-region rule.

The numbers are those of ``pycocotools.cocoeval.COCOeval`` (iouType ``"bbox"``), computed
the same way, in a vectorised form:

* IoU as pycocotools' C ``bbIou``: ``inter / (area_dt + area_gt - inter)``, and for a crowd
  ground truth ``inter / area_dt``; box areas for the IoU are ``w * h``.
* per image and category, detections sorted by score with a stable sort (ties keep the
  input order) and cut to the largest ``max_dets``. Note: like pycocotools with
  ``useCats=1``, ``max_dets`` limits detections **per image and per category**.
* greedy matching, per IoU threshold ``t``, in score order: a detection takes, among the
  still unmatched ground truths with ``IoU >= min(t, 1 - 1e-10)``, the one of highest
  IoU, preferring any regular ground truth over an ignored one (crowd, or outside the
  area range), and on equal IoU the one that comes later in the annotation list. Crowd
  ground truths can be matched any number of times.
* a detection matched to an ignored ground truth is ignored; an unmatched detection whose
  own area ``w * h`` is outside the area range is ignored. Ground truths use their
  ``area`` field for the area ranges (``w * h`` if the field is missing); the ranges are
  closed on both ends, as in pycocotools.
* per category, area range and max-dets value: all detections of all images sorted by
  score (stable; ties by image id, then per-image rank), cumulative TP/FP, precision made
  monotone from the right, sampled at the 101 recall thresholds with
  ``searchsorted(recall, r, side="left")`` (0 past the last recall reached); recall is
  the final TP count over the number of non-ignored ground truths.
* precision and recall are -1 for a (category, area range) without non-ignored ground
  truths, and the summary means skip -1 entries (a metric with no entry at all is -1).

Differences from pycocotools, on purpose:

* ``summarize()`` of pycocotools computes ``stats[0]`` (AP) at ``maxDets=100`` whatever
  ``params.maxDets`` is, so with ``maxDets=[1, 10, 1500]`` it prints AP = -1. Here AP,
  like every AP metric, is at the largest ``max_dets``.
* the ``stats`` list here uses ``max_dets[0]``, ``max_dets[1]`` and ``max_dets[-1]`` for
  the three AR entries (pycocotools uses the first three entries of ``maxDets``; the
  same when there are exactly three).
* a ground-truth annotation id of 0 is a real id here (pycocotools stores matches by id
  and treats id 0 as "unmatched").
* detections or annotations whose ``category_id`` is not in ``categories`` raise
  ``ValueError`` (pycocotools silently drops them); so do unknown image ids, boxes with
  a negative width or height and non-finite numbers.
* evaluating an empty detection list works: every category with ground truths gets AP 0
  (pycocotools' ``loadRes`` fails on an empty list).
* before matching, the VisDrone ignored-region rule (see
  :mod:`ugs.evaluation.ignore_regions`) drops ground truths and detections that lie at
  least half inside the image's ``ignored_regions``; pass ``ignore_rule=None`` for plain
  COCO behaviour. Images without ``ignored_regions`` are not affected.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .ignore_regions import IGNORE_RULES, ignored_box_mask

__all__ = [
    "AREA_RANGES", "GroundTruth", "CocoBoxEvaluator", "load_ground_truth",
    "evaluate_detections", "detections_to_arrays", "write_metrics_json", "format_summary",
    "coco_iou",
]

#: COCO area ranges (pycocotools ``Params.areaRng``), by ground-truth area, closed intervals.
AREA_RANGES = (
    ("all", 0.0, 1e5 ** 2),
    ("small", 0.0, 32.0 ** 2),
    ("medium", 32.0 ** 2, 96.0 ** 2),
    ("large", 96.0 ** 2, 1e5 ** 2),
)


def _default_iou_thrs() -> np.ndarray:
    # same construction as pycocotools (np.arange would drift)
    return np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)


def _default_rec_thrs() -> np.ndarray:
    return np.linspace(0.0, 1.0, int(np.round((1.0 - 0.0) / 0.01)) + 1, endpoint=True)


# --------------------------------------------------------------------------------------
# input parsing and validation
# --------------------------------------------------------------------------------------

def _positions(query: np.ndarray, sorted_ids: np.ndarray, lookup: dict) -> np.ndarray:
    """Position of each query id in ``sorted_ids``; -1 where unknown."""
    q = np.asarray(query)
    if q.size == 0:
        return np.zeros(0, dtype=np.int64)
    if q.dtype.kind in "iuf" and sorted_ids.dtype.kind in "iuf" and sorted_ids.size:
        pos = np.searchsorted(sorted_ids, q)
        pos_c = np.minimum(pos, sorted_ids.size - 1)
        ok = sorted_ids[pos_c] == q
        return np.where(ok, pos_c, -1).astype(np.int64)
    return np.fromiter((lookup.get(_hashable(v), -1) for v in q.tolist()), dtype=np.int64,
                       count=q.size)


def _hashable(v):
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _id_index(ids: Sequence) -> tuple[np.ndarray, dict]:
    arr = np.asarray(list(ids))
    if arr.dtype.kind == "f" and np.all(np.mod(arr, 1) == 0):
        arr = arr.astype(np.int64)
    arr_sorted = np.unique(arr) if arr.size else arr
    if arr_sorted.size != arr.size:
        raise ValueError("duplicate ids in the ground truth ('images' or 'categories')")
    lookup = {_hashable(v): i for i, v in enumerate(arr_sorted.tolist())}
    return arr_sorted, lookup


def _check_boxes(box: np.ndarray, what: str, field: str = "bbox", layout: str = "[x, y, w, h]") -> None:
    """Shape, finiteness and non-negative sides (columns 2 and 3) of ``(N, len(layout))`` boxes;
    errors name ``what``, the index and ``field``."""
    n = layout.count(",") + 1
    if box.ndim != 2 or box.shape[1] != n:
        raise ValueError(f"{what}: field '{field}' must have {n} numbers {layout}, got shape {box.shape[1:]}")
    bad = ~np.isfinite(box).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{what} {i}: field '{field}' has a non-finite value {box[i].tolist()}")
    bad = (box[:, 2] < 0) | (box[:, 3] < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{what} {i}: field '{field}' has a negative width or height "
                         f"{box[i].tolist()} (expected {layout} with w, h >= 0)")


@dataclass
class GroundTruth:
    """Ground truth as flat arrays (annotation order kept).

    ``img`` / ``cat`` are positions in the sorted ``image_ids`` / ``cat_ids``.
    """
    image_ids: np.ndarray
    cat_ids: np.ndarray
    cat_names: list
    widths: np.ndarray
    heights: np.ndarray
    regions: list  # per image position, (R, 4) float array [x, y, w, h]
    img: np.ndarray
    cat: np.ndarray
    box: np.ndarray
    area: np.ndarray
    crowd: np.ndarray
    ann_ids: np.ndarray
    _img_lookup: dict = field(default_factory=dict, repr=False)
    _cat_lookup: dict = field(default_factory=dict, repr=False)

    @property
    def num_images(self) -> int:
        return int(self.image_ids.size)

    @property
    def num_categories(self) -> int:
        return int(self.cat_ids.size)

    def image_positions(self, ids) -> np.ndarray:
        return _positions(np.asarray(ids), self.image_ids, self._img_lookup)

    def category_positions(self, ids) -> np.ndarray:
        return _positions(np.asarray(ids), self.cat_ids, self._cat_lookup)


def load_ground_truth(source) -> GroundTruth:
    """Read a COCO ground-truth JSON (path, dict, or an already loaded :class:`GroundTruth`).

    Uses ``images`` (``id``, optional ``width``/``height`` and ``ignored_regions``),
    ``categories`` (``id``, ``name``) and ``annotations`` (``image_id``, ``category_id``,
    ``bbox``, optional ``area`` (default ``w * h``), ``iscrowd`` (default 0), ``id``).
    """
    if isinstance(source, GroundTruth):
        return source
    if isinstance(source, (str, os.PathLike)):
        with open(source, "r", encoding="utf-8") as fh:
            source = json.load(fh)
    if not isinstance(source, dict):
        raise TypeError("ground truth must be a COCO dict, a path to a COCO JSON, or a GroundTruth")
    for key in ("images", "categories"):
        if key not in source:
            raise ValueError(f"ground truth has no {key!r} list")
    images = source["images"]
    cats = source["categories"]
    anns = source.get("annotations", []) or []

    image_ids, img_lookup = _id_index([im["id"] for im in images])
    cat_ids, cat_lookup = _id_index([c["id"] for c in cats])
    n_img = image_ids.size
    widths = np.full(n_img, np.nan)
    heights = np.full(n_img, np.nan)
    regions: list = [np.zeros((0, 4))] * n_img
    for j, im in enumerate(images):
        p = img_lookup[_hashable(im["id"])]
        if im.get("width") is not None:
            widths[p] = float(im["width"])
        if im.get("height") is not None:
            heights[p] = float(im["height"])
        reg = im.get("ignored_regions") or []
        if len(reg):
            try:
                r = np.asarray(reg, dtype=np.float64)
            except (TypeError, ValueError):
                r = np.zeros((0, 3))
            if r.ndim != 2 or r.shape[1] != 4 or not np.isfinite(r).all() or (r[:, 2:] < 0).any():
                raise ValueError(f"image {j} (id {im['id']}): field 'ignored_regions' must be a list of "
                                 f"[x, y, w, h] with w, h >= 0, got {reg!r}")
            regions[p] = r
    names_by_id = {_hashable(c["id"]): str(c.get("name", c["id"])) for c in cats}
    cat_names = [names_by_id[_hashable(c)] for c in cat_ids.tolist()]
    if len(set(cat_names)) != len(cat_names):  # keep per-class keys unique
        cat_names = [f"{nm}_{c}" for nm, c in zip(cat_names, cat_ids.tolist())]

    n = len(anns)
    try:
        box = np.asarray([a["bbox"] for a in anns], dtype=np.float64).reshape(n, -1) if n else np.zeros((0, 4))
        a_img = [a["image_id"] for a in anns]
        a_cat = [a["category_id"] for a in anns]
    except (KeyError, TypeError, ValueError):
        for i, a in enumerate(anns):
            for k in ("bbox", "image_id", "category_id"):
                if k not in a:
                    raise ValueError(f"annotation {i}: missing field {k!r}") from None
            if np.size(a["bbox"]) != 4:
                raise ValueError(f"annotation {i}: field 'bbox' must have 4 numbers, got {a['bbox']!r}") from None
        raise
    _check_boxes(box, "annotation")
    img = _positions(np.asarray(a_img), image_ids, img_lookup)
    if (img < 0).any():
        i = int(np.argmax(img < 0))
        raise ValueError(f"annotation {i}: field 'image_id' = {a_img[i]!r} is not in 'images'")
    cat = _positions(np.asarray(a_cat), cat_ids, cat_lookup)
    if (cat < 0).any():
        i = int(np.argmax(cat < 0))
        raise ValueError(f"annotation {i}: field 'category_id' = {a_cat[i]!r} is not in 'categories'")
    area = np.asarray([a.get("area", b[2] * b[3]) for a, b in zip(anns, box)], dtype=np.float64)
    crowd = np.asarray([bool(a.get("iscrowd", 0)) for a in anns], dtype=bool)
    ann_ids = np.asarray([a.get("id", i + 1) for i, a in enumerate(anns)])
    return GroundTruth(image_ids, cat_ids, cat_names, widths, heights, regions, img, cat,
                       box, area, crowd, ann_ids, img_lookup, cat_lookup)


def detections_to_arrays(detections) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Detections -> ``(image_id, category_id, bbox (N, 4) xywh, score)`` arrays.

    Accepts a COCO results list of dicts, a path to such a JSON file, a dict of arrays
    with keys ``image_id``, ``category_id``, ``bbox``, ``score``, or an (N, 7) array
    ``[image_id, x, y, w, h, score, category_id]`` (pycocotools' numpy layout).
    """
    if isinstance(detections, (str, os.PathLike)):
        with open(detections, "r", encoding="utf-8") as fh:
            detections = json.load(fh)
    if isinstance(detections, dict):
        for k in ("image_id", "category_id", "bbox", "score"):
            if k not in detections:
                raise ValueError(f"detections dict: missing field {k!r}")
        img = np.asarray(detections["image_id"]).reshape(-1)
        cat = np.asarray(detections["category_id"]).reshape(-1)
        box = np.asarray(detections["bbox"], dtype=np.float64).reshape(-1, 4)
        score = np.asarray(detections["score"], dtype=np.float64).reshape(-1)
        n = img.size
        for k, v in (("category_id", cat), ("bbox", box), ("score", score)):
            if v.shape[0] != n:
                raise ValueError(f"detections dict: field {k!r} has {v.shape[0]} entries, 'image_id' has {n}")
        return img, cat, box, score
    if isinstance(detections, np.ndarray):
        arr = np.asarray(detections, dtype=np.float64)
        if arr.size == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0)
        if arr.ndim != 2 or arr.shape[1] != 7:
            raise ValueError("a detection array must be (N, 7): [image_id, x, y, w, h, score, category_id]")
        return arr[:, 0], arr[:, 6], arr[:, 1:5].copy(), arr[:, 5].copy()
    dets = list(detections)
    n = len(dets)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0)
    try:
        img = np.asarray([d["image_id"] for d in dets])
        cat = np.asarray([d["category_id"] for d in dets])
        box = np.asarray([d["bbox"] for d in dets], dtype=np.float64)
        score = np.asarray([d["score"] for d in dets], dtype=np.float64)
        if box.shape != (n, 4):
            raise ValueError
    except (KeyError, TypeError, ValueError):
        for i, d in enumerate(dets):
            if not isinstance(d, dict):
                raise ValueError(f"detection {i}: expected a dict, got {type(d).__name__}") from None
            for k in ("image_id", "category_id", "bbox", "score"):
                if k not in d:
                    raise ValueError(f"detection {i}: missing field {k!r}") from None
            if np.size(d["bbox"]) != 4:
                raise ValueError(f"detection {i}: field 'bbox' must have 4 numbers, got {d['bbox']!r}") from None
            try:
                float(d["score"])
            except (TypeError, ValueError):
                raise ValueError(f"detection {i}: field 'score' is not a number: {d['score']!r}") from None
        raise
    return img, cat, box, score


# --------------------------------------------------------------------------------------
# IoU
# --------------------------------------------------------------------------------------

def coco_iou(dt_xywh, gt_xywh, iscrowd=None) -> np.ndarray:
    """(D, G) IoU exactly as pycocotools' ``maskUtils.iou`` on boxes (same float operations)."""
    d = np.asarray(dt_xywh, dtype=np.float64).reshape(-1, 4)
    g = np.asarray(gt_xywh, dtype=np.float64).reshape(-1, 4)
    crowd = np.zeros(g.shape[0], bool) if iscrowd is None else np.asarray(iscrowd, bool).reshape(-1)
    w = np.minimum(d[:, None, 2] + d[:, None, 0], g[None, :, 2] + g[None, :, 0]) - np.maximum(d[:, None, 0], g[None, :, 0])
    h = np.minimum(d[:, None, 3] + d[:, None, 1], g[None, :, 3] + g[None, :, 1]) - np.maximum(d[:, None, 1], g[None, :, 1])
    pos = (w > 0) & (h > 0)
    inter = w * h
    da = (d[:, 2] * d[:, 3])[:, None]
    ga = (g[:, 2] * g[:, 3])[None, :]
    union = np.where(crowd[None, :], da, (da + ga) - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / union
    return np.where(pos, iou, 0.0)


# --------------------------------------------------------------------------------------
# progress
# --------------------------------------------------------------------------------------

class _Progress:
    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.t0 = time.perf_counter()

    def stage(self, msg: str) -> None:
        if self.enabled:
            print(f"[coco_ap {time.perf_counter() - self.t0:7.2f}s] {msg}", file=sys.stderr, flush=True)

    def iterate(self, it: Iterable, total: int, desc: str):
        if not self.enabled:
            return it
        try:
            from tqdm import tqdm  # optional
            return tqdm(it, total=total, desc=desc, file=sys.stderr, leave=False)
        except ImportError:
            return self._plain(it, total, desc)

    def _plain(self, it, total, desc):
        step = max(1, total // 10)
        for i, x in enumerate(it):
            if i % step == 0:
                self.stage(f"{desc}: {i}/{total}")
            yield x


# --------------------------------------------------------------------------------------
# the evaluator
# --------------------------------------------------------------------------------------

class CocoBoxEvaluator:
    """COCO box evaluator (pycocotools semantics) with the VisDrone ignored-region rule.

    Parameters
    ----------
    gt : COCO dict, path to a COCO JSON, or :class:`GroundTruth`.
    max_dets : max detections per image *and category* (pycocotools ``maxDets``); sorted.
        Use e.g. ``(1, 10, 500)`` or ``(1, 10, 1500)`` for VisDrone. AP metrics and
        ``AR`` are reported at the largest value.
    ignore_rule : ``"toolkit"`` (default; VisDrone dropObjectsInIgr.m: union of the ignored
        regions, pixel-exact), ``"union"``, ``"per_region"``, or ``None`` / ``"off"`` to
        disable. Only images with a non-empty ``ignored_regions`` list are affected.
    iou_thrs, rec_thrs : override pycocotools' 0.50:0.05:0.95 and 0:0.01:1.
    area_ranges : sequence of ``(label, lo, hi)``; default :data:`AREA_RANGES` (the labels
        ``all``/``small``/``medium``/``large`` are needed for the named metrics).
    progress : print stage timings and a progress bar (tqdm when installed) to stderr.

    After :meth:`evaluate`, ``precision`` (T, R, K, A, M) and ``recall`` (T, K, A, M) hold
    the same arrays as pycocotools' ``eval["precision"]`` / ``eval["recall"]``.
    """

    def __init__(self, gt, *, max_dets: Sequence[int] = (1, 10, 100), ignore_rule="toolkit",
                 iou_thrs=None, rec_thrs=None, area_ranges=None, progress: bool = False):
        self.gt = self._load_ground_truth(gt)
        md = sorted(int(m) for m in max_dets)
        if not md or md[0] < 1:
            raise ValueError(f"max_dets must be positive integers, got {list(max_dets)}")
        self.max_dets = md
        if ignore_rule in (None, False, "off", "none"):
            ignore_rule = None
        elif ignore_rule not in IGNORE_RULES:
            raise ValueError(f"ignore_rule must be one of {IGNORE_RULES} or None, got {ignore_rule!r}")
        self.ignore_rule = ignore_rule
        self.iou_thrs = _default_iou_thrs() if iou_thrs is None else np.asarray(iou_thrs, np.float64)
        self.rec_thrs = _default_rec_thrs() if rec_thrs is None else np.asarray(rec_thrs, np.float64)
        self.area_ranges = tuple(AREA_RANGES if area_ranges is None else
                                 [(str(l), float(a), float(b)) for l, a, b in area_ranges])
        self.progress = progress
        self.precision = None
        self.recall = None
        self._prepare_gt()

    # ---------------------------------------------------------------- input formats
    # (overridden by the rotated-box evaluator, ugs.evaluation.rotated)
    @staticmethod
    def _load_ground_truth(gt) -> GroundTruth:
        return load_ground_truth(gt)

    @staticmethod
    def _parse_detections(detections):
        return detections_to_arrays(detections)

    @staticmethod
    def _validate_boxes(box: np.ndarray, what: str) -> None:
        _check_boxes(box.reshape(-1, 4), what)

    # ---------------------------------------------------------------- ground truth
    def _drop_mask(self, img_pos: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """True for boxes inside ignored regions (per self.ignore_rule)."""
        drop = np.zeros(img_pos.size, dtype=bool)
        if self.ignore_rule is None or img_pos.size == 0:
            return drop
        g = self.gt
        with_regions = np.array([r.shape[0] > 0 for r in g.regions], dtype=bool)
        if not with_regions.any():
            return drop
        sel = np.nonzero(with_regions[img_pos])[0]
        if sel.size == 0:
            return drop
        order = sel[np.argsort(img_pos[sel], kind="stable")]
        ip = img_pos[order]
        cuts = np.nonzero(np.diff(ip))[0] + 1
        for chunk in np.split(order, cuts):
            p = int(img_pos[chunk[0]])
            w, h = g.widths[p], g.heights[p]
            if self.ignore_rule == "toolkit" and not (np.isfinite(w) and np.isfinite(h)):
                raise ValueError(f"image id {g.image_ids[p]!r} has 'ignored_regions' but no width/height, "
                                 "which the 'toolkit' ignore rule needs (or use ignore_rule='union')")
            drop[chunk] = ignored_box_mask(boxes[chunk], g.regions[p], rule=self.ignore_rule,
                                           width=w, height=h)
        return drop

    def _prepare_gt(self) -> None:
        g = self.gt
        drop = self._drop_mask(g.img, g.box)
        self.n_gt_dropped = int(drop.sum())
        keep = np.nonzero(~drop)[0]
        # sort by (image, category), stable -> annotation order inside a group
        order = keep[np.lexsort((g.cat[keep], g.img[keep]))]
        self._g_idx = order
        self._g_img = g.img[order]
        self._g_cat = g.cat[order]
        self._g_box = g.box[order]
        self._g_area = g.area[order]
        self._g_crowd = g.crowd[order]
        lo = np.array([a[1] for a in self.area_ranges])
        hi = np.array([a[2] for a in self.area_ranges])
        # (A, G): ignored for area range a
        self._g_ign = self._g_crowd[None, :] | (self._g_area[None, :] < lo[:, None]) | (self._g_area[None, :] > hi[:, None])
        K, A = g.num_categories, len(self.area_ranges)
        self._npig = np.zeros((K, A), dtype=np.int64)
        for a in range(A):
            self._npig[:, a] = np.bincount(self._g_cat[~self._g_ign[a]], minlength=K)

    # ---------------------------------------------------------------- main entry
    def evaluate(self, detections) -> dict:
        """Evaluate detections (see :func:`detections_to_arrays` for the accepted forms)."""
        prog = _Progress(self.progress)
        t_start = time.perf_counter()
        g = self.gt
        img_ids, cat_ids, box, score = self._parse_detections(detections)
        n_in = img_ids.size
        self._validate_boxes(box, "detection")
        if n_in and not np.isfinite(score).all():
            i = int(np.argmax(~np.isfinite(score)))
            raise ValueError(f"detection {i}: field 'score' is not finite ({score[i]})")
        img = g.image_positions(img_ids)
        if (img < 0).any():
            i = int(np.argmax(img < 0))
            raise ValueError(f"detection {i}: field 'image_id' = {img_ids[i]!r} is not an image of the ground truth")
        cat = g.category_positions(cat_ids)
        if (cat < 0).any():
            i = int(np.argmax(cat < 0))
            raise ValueError(f"detection {i}: field 'category_id' = {cat_ids[i]!r} is not a category of the ground truth")
        prog.stage(f"{n_in} detections, {g.num_images} images, {g.num_categories} categories")

        drop = self._drop_mask(img, box)
        n_dt_dropped = int(drop.sum())
        keep = np.nonzero(~drop)[0]
        # sort by (image, category, -score); lexsort is stable -> ties keep the input order
        order = keep[np.lexsort((-score[keep], cat[keep], img[keep]))]
        d_img, d_cat, d_score = img[order], cat[order], score[order]
        gid = d_img * g.num_categories + d_cat
        n = order.size
        new_grp = np.ones(n, dtype=bool)
        if n:
            new_grp[1:] = gid[1:] != gid[:-1]
        grp_start = np.maximum.accumulate(np.where(new_grp, np.arange(n), 0)) if n else np.zeros(0, np.int64)
        rank = np.arange(n) - grp_start
        within = rank < self.max_dets[-1]
        n_beyond = int(n - within.sum())
        order, d_img, d_cat, d_score, gid, rank = (x[within] for x in (order, d_img, d_cat, d_score, gid, rank))
        d_box = box[order]
        n = order.size
        prog.stage(f"ignored regions dropped {self.n_gt_dropped} gts / {n_dt_dropped} dets; "
                   f"{n_beyond} dets beyond max_dets")

        pd, pg, piou = self._pairs(d_img, d_cat, d_box, prog)
        prog.stage(f"{pd.size} candidate (det, gt) pairs with IoU >= {self.iou_thrs.min():.2f}")
        matches = self._match(n, gid, pd, pg, piou, prog)
        prog.stage(f"matching done ({matches[0].size} (area, IoU threshold, det) matches)")
        self._accumulate(d_cat, d_img, d_score, d_box, rank, matches)
        prog.stage("accumulation done")
        out = self._summaries()
        out["counts"] = {
            "images": g.num_images,
            "gts": int(g.img.size),
            "gts_dropped_by_ignored_regions": self.n_gt_dropped,
            "dets": int(n_in),
            "dets_dropped_by_ignored_regions": n_dt_dropped,
            "dets_beyond_max_dets": n_beyond,
        }
        out["time_s"] = time.perf_counter() - t_start
        self.results = out
        return out

    # ---------------------------------------------------------------- candidate pairs
    def _pairs(self, d_img, d_cat, d_box, prog):
        """All same-image, same-category (det, gt) pairs with IoU >= the lowest threshold.

        One small IoU block per (image, category) group that has both detections and
        ground truths, with the float operations of pycocotools' ``bbIou``.
        """
        thr_min = min(float(self.iou_thrs.min()), 1 - 1e-10)
        g = self.gt
        K = g.num_categories
        empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
        if d_img.size == 0 or self._g_img.size == 0:
            return empty
        n_grp = g.num_images * K
        gs = np.searchsorted(self._g_img * K + self._g_cat, np.arange(n_grp + 1))
        ds = np.searchsorted(d_img * K + d_cat, np.arange(n_grp + 1))
        both = np.nonzero((np.diff(gs) > 0) & (np.diff(ds) > 0))[0]
        # columns; x2 = w + x as in bbIou (D[2] + D[0])
        dx1, dy1 = d_box[:, 0].copy(), d_box[:, 1].copy()
        dx2, dy2 = d_box[:, 2] + d_box[:, 0], d_box[:, 3] + d_box[:, 1]
        da = d_box[:, 2] * d_box[:, 3]
        gb = self._g_box
        gx1, gy1 = gb[:, 0].copy(), gb[:, 1].copy()
        gx2, gy2 = gb[:, 2] + gb[:, 0], gb[:, 3] + gb[:, 1]
        ga = gb[:, 2] * gb[:, 3]
        gcrowd = self._g_crowd
        any_crowd = bool(gcrowd.any())
        out_d, out_g, out_iou = [], [], []
        for j in prog.iterate(both.tolist(), both.size, "IoU"):
            d0, d1, g0, g1 = ds[j], ds[j + 1], gs[j], gs[j + 1]
            w = np.minimum(dx2[d0:d1, None], gx2[None, g0:g1]) - np.maximum(dx1[d0:d1, None], gx1[None, g0:g1])
            h = np.minimum(dy2[d0:d1, None], gy2[None, g0:g1]) - np.maximum(dy1[d0:d1, None], gy1[None, g0:g1])
            di, gi = np.nonzero((w > 0) & (h > 0))
            if di.size == 0:
                continue
            inter = w[di, gi] * h[di, gi]
            di += d0
            gi += g0
            union = (da[di] + ga[gi]) - inter
            if any_crowd:
                union = np.where(gcrowd[gi], da[di], union)
            iou = inter / union
            ok = iou >= thr_min
            out_d.append(di[ok])
            out_g.append(gi[ok])
            out_iou.append(iou[ok])
        if not out_d:
            return empty
        return np.concatenate(out_d), np.concatenate(out_g), np.concatenate(out_iou)

    # ---------------------------------------------------------------- greedy matching
    def _match(self, n, gid, pd, pg, piou, prog):
        """Greedy matching for every (area range, IoU threshold) at once.

        Detections of one (image, category) group must be matched in score order, but
        groups are independent: step s handles the s-th detection (among those with a
        candidate pair) of every group together. Within a step, each detection picks, per
        (area, threshold) row, its best valid pair through a segment max of an integer key
        ``regular * BIG + rank`` where ``rank`` orders the pair by (IoU, annotation order).

        Returns the matches as flat arrays ``(area index, threshold index, det index,
        matched gt is ignored)``; unlisted (area, threshold, det) are unmatched.
        """
        A, T = len(self.area_ranges), self.iou_thrs.size
        G = self._g_img.size
        out_a, out_t, out_d, out_i = [], [], [], []
        if pd.size == 0:
            z = np.zeros(0, np.int64)
            return z, z, z, np.zeros(0, bool)
        # step of each active detection = its rank among active detections of its group
        act = np.unique(pd)  # sorted == (image, category, score) order
        ag = gid[act]
        first = np.ones(act.size, dtype=bool)
        first[1:] = ag[1:] != ag[:-1]
        step_act = np.arange(act.size) - np.maximum.accumulate(np.where(first, np.arange(act.size), 0))
        step_of = np.full(n, -1, dtype=np.int64)
        step_of[act] = step_act
        # pairs ordered by (step, det, iou, gt index)
        o = np.lexsort((pg, piou, pd, step_of[pd]))
        pd, pg, piou = pd[o], pg[o], piou[o]
        P = pd.size
        seg_first = np.ones(P, dtype=bool)
        seg_first[1:] = pd[1:] != pd[:-1]
        seg_start = np.nonzero(seg_first)[0]
        local = np.arange(P) - np.repeat(seg_start, np.diff(np.append(seg_start, P)))
        BIG = int(local.max()) + 1
        seg_det = pd[seg_start]
        seg_step = step_of[seg_det]
        n_steps = int(seg_step.max()) + 1
        step_bounds = np.searchsorted(seg_step, np.arange(n_steps + 1))
        seg_start_ext = np.append(seg_start, P)

        regular = ~self._g_ign[:, pg]  # (A, P)
        crowd = self._g_crowd[pg]  # (P,)
        base_key = regular.astype(np.int64) * BIG + local[None, :]  # (A, P)
        thr = np.minimum(self.iou_thrs, 1 - 1e-10)
        gt_taken = np.zeros((A, T, G), dtype=bool)
        for s in prog.iterate(range(n_steps), n_steps, "matching"):
            s0, s1 = step_bounds[s], step_bounds[s + 1]
            p0, p1 = seg_start_ext[s0], seg_start_ext[s1]
            gsl = pg[p0:p1]
            valid = (piou[None, None, p0:p1] >= thr[None, :, None]) & (
                crowd[None, None, p0:p1] | ~gt_taken[:, :, gsl])
            key = np.where(valid, base_key[:, None, p0:p1], -1)
            best = np.maximum.reduceat(key, seg_start[s0:s1] - p0, axis=2)  # (A, T, S)
            hit = best >= 0
            chosen = seg_start[s0:s1][None, None, :] + np.where(hit, best % BIG, 0)
            cg = pg[chosen]
            dets = seg_det[s0:s1][None, None, :]
            ai, ti, si = np.nonzero(hit)
            gt_taken[ai, ti, cg[ai, ti, si]] = True
            out_a.append(ai)
            out_t.append(ti)
            out_d.append(dets[0, 0, si])
            out_i.append(self._g_ign[ai, cg[ai, ti, si]])
        return (np.concatenate(out_a), np.concatenate(out_t), np.concatenate(out_d),
                np.concatenate(out_i))

    # ---------------------------------------------------------------- accumulation
    def _accumulate(self, d_cat, d_img, d_score, d_box, rank, matches):
        """pycocotools ``accumulate``: precision (T, R, K, A, M) and recall (T, K, A, M)."""
        A, T = len(self.area_ranges), self.iou_thrs.size
        R, K, M = self.rec_thrs.size, self.gt.num_categories, len(self.max_dets)
        precision = -np.ones((T, R, K, A, M))
        recall = -np.ones((T, K, A, M))
        n = d_cat.size
        d_area = d_box[:, 2] * d_box[:, 3]
        lo = np.array([a[1] for a in self.area_ranges])
        hi = np.array([a[2] for a in self.area_ranges])
        out_rng = (d_area[None, :] < lo[:, None]) | (d_area[None, :] > hi[:, None])  # (A, N)
        # all detections of a category by score, ties by image, then per-image rank
        order = np.lexsort((rank, d_img, -d_score, d_cat))
        cat_bounds = np.searchsorted(d_cat[order], np.arange(K + 1))
        pos_in_cat = np.empty(n, dtype=np.int64)
        pos_in_cat[order] = np.arange(n) - np.repeat(cat_bounds[:-1], np.diff(cat_bounds))
        # matches grouped by (category, area), then (threshold, position in category order)
        e_a, e_t, e_d, e_ign = matches
        e_cat, e_pos, e_rank = d_cat[e_d], pos_in_cat[e_d], rank[e_d]
        eo = np.lexsort((e_pos, e_t, e_a, e_cat))
        e_a, e_t, e_ign, e_cat, e_pos, e_rank = (x[eo] for x in (e_a, e_t, e_ign, e_cat, e_pos, e_rank))
        e_bounds = np.searchsorted(e_cat * A + e_a, np.arange(K * A + 1))
        for k in range(K):
            idx_k = order[cat_bounds[k]:cat_bounds[k + 1]]
            rank_k = rank[idx_k]
            for a in range(A):
                npig = int(self._npig[k, a])
                if npig == 0:
                    continue
                b0, b1 = e_bounds[k * A + a], e_bounds[k * A + a + 1]
                for m, md in enumerate(self.max_dets):
                    keep = rank_k < md
                    nd = int(keep.sum())
                    if nd == 0:
                        recall[:, k, a, m] = 0.0
                        precision[:, :, k, a, m] = 0.0
                        continue
                    col_of_pos = np.cumsum(keep) - 1
                    em = e_rank[b0:b1] < md
                    rows = e_t[b0:b1][em]
                    cols = col_of_pos[e_pos[b0:b1][em]]
                    out = out_rng[a][idx_k[keep]]
                    precision[:, :, k, a, m], recall[:, k, a, m] = self._pr_curve(
                        rows, cols, e_ign[b0:b1][em], out, npig)
        self.precision = precision
        self.recall = recall

    def _pr_curve(self, rows, cols, ign, out, npig: int):
        """101-point precision (T, R) and recall (T,) for one (category, area, max-dets).

        ``rows, cols, ign``: the matched (threshold, column) entries, sorted, ``ign`` True when
        the matched ground truth is ignored; ``out`` (nd,): detection area outside the range,
        columns being the detections in score order.

        This equals pycocotools' cumsum-based computation evaluated only at true positives:
        precision is highest at a TP within each run of FPs (FPs only lower it, ignored
        detections leave it unchanged), recall first reaches any threshold at a TP, so the
        ``searchsorted`` over the TP-only recall picks the same entries, and the TP / FP
        counts there are the same integers, hence the same floats. A detection is ignored
        when matched to an ignored gt, or unmatched with its area out of range, so the
        ignored count up to column c is ``#ign matches + #out - #(out and matched)``.
        """
        T = self.iou_thrs.size
        R = self.rec_thrs.size
        eps = np.spacing(1)
        q = np.zeros((T, R))
        rec = np.zeros(T)
        if rows.size == 0:
            return q, rec
        row_start = np.searchsorted(rows, np.arange(T + 1))
        first_of_row = np.repeat(row_start[:-1], np.diff(row_start))

        def within_row_cumsum(flag):
            c = np.cumsum(flag)
            base = np.concatenate([[0], c])[first_of_row]
            return c - base

        c_ign = within_row_cumsum(ign)
        c_outm = within_row_cumsum(out[cols])
        c_tp = within_row_cumsum(~ign)
        cum_out = np.cumsum(out)
        tp_sel = ~ign
        trows, tcols = rows[tp_sel], cols[tp_sel]
        tpc = c_tp[tp_sel]
        igc = c_ign[tp_sel] + cum_out[tcols] - c_outm[tp_sel]
        tpf = tpc.astype(np.float64)
        fpf = ((tcols + 1) - tpc - igc).astype(np.float64)
        pr = tpf / (fpf + tpf + eps)
        rc = tpf / npig
        tstart = np.searchsorted(trows, np.arange(T + 1))
        for t in range(T):
            r0, r1 = tstart[t], tstart[t + 1]
            nt = r1 - r0
            if nt == 0:
                continue
            rc_t = rc[r0:r1]
            rec[t] = rc_t[-1]
            env = np.maximum.accumulate(pr[r0:r1][::-1])[::-1]
            inds = np.searchsorted(rc_t, self.rec_thrs, side="left")
            inside = inds < nt
            q[t, inside] = env[inds[inside]]
        return q, rec

    # ---------------------------------------------------------------- summaries
    def _area_index(self, label: str):
        for i, (l, _, _) in enumerate(self.area_ranges):
            if l == label:
                return i
        return None

    def _thr_index(self, thr: float):
        hit = np.nonzero(np.isclose(self.iou_thrs, thr, rtol=0, atol=1e-12))[0]
        return int(hit[0]) if hit.size else None

    @staticmethod
    def _mean_valid(s: np.ndarray) -> float:
        v = s[s > -1]
        return float(np.mean(v)) if v.size else -1.0

    def ap(self, iou: float | None = None, area: str = "all", max_det: int | None = None,
           cat: int | None = None) -> float:
        """Mean precision (pycocotools ``_summarize`` semantics); -1 when undefined.

        ``cat`` is a category position (index into ``gt.cat_ids``), None for all.
        """
        a = self._area_index(area)
        m = self.max_dets.index(max_det if max_det is not None else self.max_dets[-1])
        if a is None:
            return -1.0
        s = self.precision
        if iou is not None:
            t = self._thr_index(iou)
            if t is None:
                return -1.0
            s = s[t:t + 1]
        s = s[:, :, :, a:a + 1, m:m + 1] if cat is None else s[:, :, cat:cat + 1, a:a + 1, m:m + 1]
        return self._mean_valid(s)

    def ar(self, area: str = "all", max_det: int | None = None, cat: int | None = None) -> float:
        """Mean recall over IoU thresholds (and categories); -1 when undefined."""
        a = self._area_index(area)
        m = self.max_dets.index(max_det if max_det is not None else self.max_dets[-1])
        if a is None:
            return -1.0
        s = self.recall
        s = s[:, :, a:a + 1, m:m + 1] if cat is None else s[:, cat:cat + 1, a:a + 1, m:m + 1]
        return self._mean_valid(s)

    def _summaries(self) -> dict:
        md = self.max_dets
        M = md[-1]
        out: dict[str, Any] = {
            "AP": self.ap(),
            "AP50": self.ap(iou=0.5),
            "AP75": self.ap(iou=0.75),
            "AP_s": self.ap(area="small"),
            "AP_m": self.ap(area="medium"),
            "AP_l": self.ap(area="large"),
        }
        for m in md:
            out[f"AR@{m}"] = self.ar(max_det=m)
        out["AR_s"] = self.ar(area="small")
        out["AR_m"] = self.ar(area="medium")
        out["AR_l"] = self.ar(area="large")
        m0, m1 = md[0], md[min(1, len(md) - 1)]
        out["stats"] = [out["AP"], out["AP50"], out["AP75"], out["AP_s"], out["AP_m"], out["AP_l"],
                        self.ar(max_det=m0), self.ar(max_det=m1), out[f"AR@{M}"],
                        out["AR_s"], out["AR_m"], out["AR_l"]]
        per_class = {}
        for k, name in enumerate(self.gt.cat_names):
            per_class[name] = {
                "category_id": _jsonable(self.gt.cat_ids[k]),
                "AP": self.ap(cat=k), "AP50": self.ap(iou=0.5, cat=k), "AP75": self.ap(iou=0.75, cat=k),
                "AP_s": self.ap(area="small", cat=k), "AP_m": self.ap(area="medium", cat=k),
                "AP_l": self.ap(area="large", cat=k), f"AR@{M}": self.ar(cat=k),
                "num_gts": int(self._npig[k, self._area_index("all") or 0]),
            }
        out["per_class"] = per_class
        out["max_dets"] = list(md)
        out["iou_thrs"] = [float(t) for t in self.iou_thrs]
        out["ignore_rule"] = self.ignore_rule
        return out


def _jsonable(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


def evaluate_detections(gt, detections, *, max_dets: Sequence[int] = (1, 10, 100),
                        ignore_rule="toolkit", progress: bool = False, **kwargs) -> dict:
    """One-call evaluation; returns the metrics dict of :meth:`CocoBoxEvaluator.evaluate`.

    Keys: ``AP AP50 AP75 AP_s AP_m AP_l`` (at the largest ``max_dets``), ``AR@<m>`` for
    each ``m`` in ``max_dets``, ``AR_s AR_m AR_l``, ``stats`` (the 12 numbers in
    pycocotools order), ``per_class`` (name -> metrics), ``counts``, ``max_dets``,
    ``iou_thrs``, ``ignore_rule``, ``time_s``. Values are fractions in [0, 1], -1 when a
    metric has no ground truth to be computed on.
    """
    ev = CocoBoxEvaluator(gt, max_dets=max_dets, ignore_rule=ignore_rule, progress=progress, **kwargs)
    return ev.evaluate(detections)


def _to_builtin(obj):
    if isinstance(obj, dict):
        return {str(k): _to_builtin(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_builtin(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _to_builtin(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_metrics_json(metrics: dict, checkpoint_path, filename: str = "metrics.json",
                       extra: dict | None = None) -> Path:
    """Write ``metrics`` as JSON next to ``checkpoint_path`` and return the written path.

    If ``checkpoint_path`` is an existing directory the file goes inside it, otherwise into
    the checkpoint's parent directory. ``extra`` (e.g. config name, epoch) is merged in;
    the checkpoint path itself is recorded under ``"checkpoint"``.
    """
    ckpt = Path(checkpoint_path)
    folder = ckpt if ckpt.is_dir() else ckpt.parent
    folder.mkdir(parents=True, exist_ok=True)
    payload = {"checkpoint": str(ckpt)}
    payload.update(_to_builtin(metrics))
    if extra:
        payload.update(_to_builtin(extra))
    path = folder / filename
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)
    return path


def format_summary(metrics: dict) -> str:
    """pycocotools-like text block of the 12 summary lines."""
    md = metrics.get("max_dets", [1, 10, 100])
    M = md[-1]
    m1 = md[min(1, len(md) - 1)]
    rows = [
        ("Average Precision", "(AP)", "0.50:0.95", "all", M),
        ("Average Precision", "(AP)", "0.50", "all", M),
        ("Average Precision", "(AP)", "0.75", "all", M),
        ("Average Precision", "(AP)", "0.50:0.95", "small", M),
        ("Average Precision", "(AP)", "0.50:0.95", "medium", M),
        ("Average Precision", "(AP)", "0.50:0.95", "large", M),
        ("Average Recall", "(AR)", "0.50:0.95", "all", md[0]),
        ("Average Recall", "(AR)", "0.50:0.95", "all", m1),
        ("Average Recall", "(AR)", "0.50:0.95", "all", M),
        ("Average Recall", "(AR)", "0.50:0.95", "small", M),
        ("Average Recall", "(AR)", "0.50:0.95", "medium", M),
        ("Average Recall", "(AR)", "0.50:0.95", "large", M),
    ]
    lines = []
    for (title, typ, iou, area, m), v in zip(rows, metrics["stats"]):
        lines.append(f" {title:<18} {typ} @[ IoU={iou:<9} | area={area:>6s} | maxDets={m:>4d} ] = {v:0.3f}")
    return "\n".join(lines)
