"""Anchors for a YOLO-style detector from a data set, by TPH-YOLOv5's rule (YOLOv5's AutoAnchor as
its ``train.py`` runs it with ``anchors: 4`` in the model file: NOTES.md section 6).

    ugs data anchors data/visdrone/annotations/train.json --img-size 640     # prints the config lines

The rule, step by step (numpy only):

1. Each image is resized so that its long side is ``img_size`` (YOLOv5's letterbox at training
   size); every annotated box's width and height are scaled with it. Boxes with both sides under
   2 px after scaling are left out of the fit (YOLOv5 does the same) and counted.
2. k-means with ``levels x per_level`` centres (16 for TPH-YOLOv5's four levels of four) on the
   widths and heights divided by their standard deviation (30 Lloyd iterations, k-means++ start).
3. A genetic refinement: 1,000 generations, each multiplying the anchors by a random factor
   (each value mutated with probability 0.9 by ``1 + 0.1 * u * N(0, 1)``, ``u`` uniform per
   generation, clipped to [0.3, 3.0]; anchors at least 2 px) and keeping it when the fitness grows.
4. The fitness of anchors ``k``: for every box the best anchor's ratio ``min(w/kw, kw/w, h/kh,
   kh/h)``, kept where it exceeds ``1 / anchor_t`` (0 otherwise), averaged over the boxes. The
   **best possible recall** (BPR) is the share of boxes whose best ratio exceeds ``1 / anchor_t``:
   with ``anchor_t = 3`` (TPH-YOLOv5's ``hyp.VisDrone.yaml``) a box can be assigned to an anchor
   of at most 3x its width and height.
5. The anchors are sorted by area and split into levels, smallest on the finest level (stride 4).

Random draws come from numpy's generator seeded with ``seed``, so a run repeats exactly; YOLOv5's
own draws are unseeded, so its anchors for the same data differ slightly from run to run.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

__all__ = ["box_sizes", "anchor_metric", "fitness", "kmeans", "fit_anchors", "format_anchors"]


def box_sizes(ann_json, img_size: int) -> Tuple[np.ndarray, Dict[str, int]]:
    """Widths and heights (``(N, 2)``) of the annotated boxes of a COCO-style JSON at training
    size (long side ``img_size``), and counts: images, boxes, ``too small`` (both sides < 2 px,
    left out of the fit). Crowd boxes are skipped and counted."""
    path = Path(ann_json)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such annotation file (convert the data set first, e.g. ugs data visdrone)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg})") from None
    images = {}
    for i, im in enumerate(doc.get("images", [])):
        try:
            images[im["id"]] = float(max(im["width"], im["height"]))
        except (KeyError, TypeError):
            raise ValueError(f"{path}: images[{i}] needs id, width and height") from None
    counts = {"images": len(images), "boxes": 0, "crowd (skipped)": 0, "too small (< 2 px, left out)": 0}
    sizes = []
    for i, a in enumerate(doc.get("annotations", [])):
        if a.get("iscrowd", 0):
            counts["crowd (skipped)"] += 1
            continue
        if a.get("image_id") not in images:
            raise ValueError(f"{path}: annotations[{i}] has image_id {a.get('image_id')!r}, not an image of the file")
        w, h = a["bbox"][2:4]
        s = img_size / images[a["image_id"]]
        sizes.append((w * s, h * s))
        counts["boxes"] += 1
    wh = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    keep = (wh >= 2.0).any(axis=1)
    counts["too small (< 2 px, left out)"] = int((~keep).sum())
    return wh[keep], counts


def anchor_metric(anchors: np.ndarray, wh: np.ndarray) -> np.ndarray:
    """For every box, the best anchor's worse side ratio ``max_k min(w/kw, kw/w, h/kh, kh/h)``."""
    r = wh[:, None, :] / anchors[None, :, :]
    return np.minimum(r, 1.0 / r).min(axis=2).max(axis=1)


def fitness(anchors: np.ndarray, wh: np.ndarray, anchor_t: float) -> float:
    best = anchor_metric(anchors, wh)
    return float((best * (best > 1.0 / anchor_t)).mean())


def kmeans(x: np.ndarray, k: int, rng: np.random.Generator, iters: int = 30) -> np.ndarray:
    """Lloyd's k-means with a k-means++ start; an emptied cluster keeps its centre."""
    centres = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d = np.min(((x[:, None, :] - np.asarray(centres)[None]) ** 2).sum(2), axis=1)
        centres.append(x[rng.choice(len(x), p=d / d.sum())] if d.sum() > 0 else x[rng.integers(len(x))])
    c = np.asarray(centres, dtype=np.float64)
    for _ in range(iters):
        label = ((x[:, None, :] - c[None]) ** 2).sum(2).argmin(1)
        for j in range(k):
            if (label == j).any():
                c[j] = x[label == j].mean(0)
    return c


def fit_anchors(wh: np.ndarray, levels: int = 4, per_level: int = 4, anchor_t: float = 3.0,
                generations: int = 1000, seed: int = 0,
                progress: Optional[Callable[[int, float], None]] = None) -> Dict[str, object]:
    """The anchors of the module docstring's rule: ``anchors`` (levels x per_level (w, h), rounded
    to whole pixels as YOLOv5 writes them), ``fitness``, ``bpr`` and ``mean_best_ratio``.
    ``progress(generation, fitness)`` is called every 100 generations."""
    n = levels * per_level
    if len(wh) < n:
        raise ValueError(f"need at least {n} boxes of 2 px or more to fit {n} anchors, got {len(wh)}")
    rng = np.random.default_rng(seed)
    s = wh.std(0)
    k = kmeans(wh / s, n, rng) * s
    f = fitness(k, wh, anchor_t)
    for gen in range(1, generations + 1):
        v = np.ones(k.shape)
        while (v == 1).all():                     # mutate until something changes
            v = ((rng.random(k.shape) < 0.9) * rng.random() * rng.standard_normal(k.shape) * 0.1 + 1).clip(0.3, 3.0)
        kg = (k * v).clip(min=2.0)
        fg = fitness(kg, wh, anchor_t)
        if fg > f:
            f, k = fg, kg
        if progress is not None and gen % 100 == 0:
            progress(gen, f)
    k = k[np.argsort(k.prod(1))]
    rounded = np.round(k).astype(int)
    best = anchor_metric(rounded.astype(np.float64), wh)
    return dict(anchors=[[tuple(int(v) for v in a) for a in rounded[i * per_level:(i + 1) * per_level]]
                         for i in range(levels)],
                fitness=fitness(rounded.astype(np.float64), wh, anchor_t),
                bpr=float((best > 1.0 / anchor_t).mean()), mean_best_ratio=float(best.mean()))


def format_anchors(result: Dict[str, object], img_size: int, source: str, counts: Optional[dict] = None) -> str:
    """The config lines (a Python list of levels, each a list of (w, h)) with how they were made."""
    lines = [f"# anchors for img_size {img_size} from {source} (ugs data anchors): "
             f"BPR {result['bpr']:.4f}, fitness {result['fitness']:.4f}"
             + (f", {counts['boxes']} boxes" if counts else "")]
    levels: List[list] = result["anchors"]  # type: ignore[assignment]
    lines.append("anchors = [")
    for level in levels:
        lines.append("    [" + ", ".join(f"({w}, {h})" for w, h in level) + "],")
    lines.append("]")
    return "\n".join(lines)
