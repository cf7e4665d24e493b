"""Seeded synthetic VisDrone-like scenes for tests and benchmarks (no real data needed).

A scene has images of VisDrone sizes, ~65 small ground-truth boxes per image with a
VisDrone-like class mix (cars and pedestrians dominate), a few ignored regions, and a
dense detection list: jittered copies of the ground truths (good and poor localisation,
duplicates, some with the wrong class) plus background false positives, scored so that
better boxes tend to score higher. Numbers only resemble VisDrone; they are not real data.
"""
from __future__ import annotations

import numpy as np

__all__ = ["VISDRONE_CLASSES", "make_synthetic_scene"]

VISDRONE_CLASSES = ("pedestrian", "people", "bicycle", "car", "van", "truck", "tricycle",
                    "awning-tricycle", "bus", "motor")
# rough VisDrone-DET train class frequencies
_CLASS_FREQ = np.array([0.22, 0.08, 0.03, 0.38, 0.07, 0.03, 0.02, 0.01, 0.015, 0.135])
# rough median box side per class (pixels)
_CLASS_SIZE = np.array([14, 12, 16, 32, 36, 48, 28, 28, 70, 16], dtype=np.float64)
_IMAGE_SIZES = ((1360, 765), (1920, 1080), (2000, 1500), (960, 540))


def _boxes_in_image(rng, n, sizes, W, H):
    w = np.maximum(1.0, np.round(sizes * np.exp(rng.normal(0.0, 0.45, n)) * rng.uniform(0.7, 1.3, n)))
    h = np.maximum(1.0, np.round(sizes * np.exp(rng.normal(0.0, 0.45, n))))
    w = np.minimum(w, W - 1)
    h = np.minimum(h, H - 1)
    x = np.floor(rng.uniform(0, 1, n) * (W - w))
    y = np.floor(rng.uniform(0, 1, n) * (H - h))
    return np.stack([x, y, w, h], axis=1)


def make_synthetic_scene(num_images: int = 548, dets_per_image: int = 1500,
                         gts_per_image: int = 65, seed: int = 0, ignored_regions: bool = True,
                         score_decimals: int | None = 3, as_arrays: bool = False):
    """Return ``(coco_gt_dict, detections)``.

    ``detections`` is a COCO results list of dicts, or with ``as_arrays=True`` a dict of
    arrays (``image_id``, ``category_id``, ``bbox``, ``score``). ``score_decimals`` rounds
    the scores (3 decimals -> many exact ties, as real detectors produce after float16 or
    printing). Image ids are 1..num_images, annotation ids 1..G, category ids 1..10.
    """
    rng = np.random.default_rng(seed)
    K = len(VISDRONE_CLASSES)
    images, anns = [], []
    det_img, det_cat, det_box, det_score = [], [], [], []
    ann_id = 1
    for i in range(num_images):
        img_id = i + 1
        W, H = _IMAGE_SIZES[rng.integers(len(_IMAGE_SIZES))]
        ng = int(rng.poisson(gts_per_image))
        if rng.uniform() < 0.02:
            ng = 0  # a few images without objects
        cls = rng.choice(K, size=ng, p=_CLASS_FREQ / _CLASS_FREQ.sum())
        gt = _boxes_in_image(rng, ng, _CLASS_SIZE[cls], W, H)
        regions = []
        if ignored_regions:
            for _ in range(int(rng.integers(0, 4))):
                rw, rh = int(rng.integers(40, 300)), int(rng.integers(30, 200))
                regions.append([int(rng.integers(0, W - rw)), int(rng.integers(0, H - rh)), rw, rh])
        images.append({"id": img_id, "file_name": f"{img_id:07d}.jpg", "width": int(W), "height": int(H),
                       "ignored_regions": regions})
        for b, c in zip(gt, cls):
            anns.append({"id": ann_id, "image_id": img_id, "category_id": int(c) + 1,
                         "bbox": [float(v) for v in b], "area": float(b[2] * b[3]), "iscrowd": 0})
            ann_id += 1

        # detections: jittered copies of the gts, then background
        nd = dets_per_image
        n_copy = min(nd, int(round(ng * rng.uniform(2.0, 4.0))))
        src = rng.integers(0, max(ng, 1), n_copy) if ng else np.zeros(0, np.int64)
        if ng:
            base = gt[src]
            quality = rng.uniform(0.0, 1.0, n_copy)  # 1 = tight
            jit = (1.0 - quality)[:, None] * rng.normal(0.0, 0.35, (n_copy, 4)) * base[:, [2, 3, 2, 3]]
            cb = base + jit
            cb[:, 2:] = np.maximum(cb[:, 2:], 1.0)
            cc = cls[src].copy()
            wrong = rng.uniform(size=n_copy) < 0.1
            cc[wrong] = rng.integers(0, K, int(wrong.sum()))
            cs = np.clip(0.25 + 0.7 * quality + rng.normal(0, 0.12, n_copy), 0.01, 0.999)
        else:
            cb, cc, cs = np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros(0)
        n_bg = nd - cb.shape[0]
        bcls = rng.choice(K, size=n_bg, p=_CLASS_FREQ / _CLASS_FREQ.sum())
        bb = _boxes_in_image(rng, n_bg, _CLASS_SIZE[bcls], W, H)
        bb[:, :2] += rng.uniform(0, 1, (n_bg, 2))  # non-integer coordinates
        bs = np.clip(rng.beta(1.2, 6.0, n_bg), 0.001, 0.999)
        boxes = np.concatenate([cb, bb])
        scores = np.concatenate([cs, bs])
        if score_decimals is not None:
            scores = np.round(scores, score_decimals)
        det_img.append(np.full(nd, img_id))
        det_cat.append(np.concatenate([cc, bcls]) + 1)
        det_box.append(boxes)
        det_score.append(scores)

    cats = [{"id": k + 1, "name": name} for k, name in enumerate(VISDRONE_CLASSES)]
    gt_dict = {"images": images, "annotations": anns, "categories": cats}
    arrays = {
        "image_id": np.concatenate(det_img) if det_img else np.zeros(0, np.int64),
        "category_id": np.concatenate(det_cat) if det_cat else np.zeros(0, np.int64),
        "bbox": np.concatenate(det_box) if det_box else np.zeros((0, 4)),
        "score": np.concatenate(det_score) if det_score else np.zeros(0),
    }
    if as_arrays:
        return gt_dict, arrays
    dets = [{"image_id": int(i), "category_id": int(c), "bbox": [float(v) for v in b], "score": float(s)}
            for i, c, b, s in zip(arrays["image_id"].tolist(), arrays["category_id"].tolist(),
                                  arrays["bbox"], arrays["score"].tolist())]
    return gt_dict, dets
