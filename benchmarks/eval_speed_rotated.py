"""Speed of the kit's SODA-A evaluation against the direct method, on a case of SODA-A's scale.

A seeded synthetic scene like SODA-A's test split (default 100 images of 4,000 x 3,000 px, 3,000
small rotated objects of 9 classes and 20,000 detections per image: ~3 jittered detections per
object, the rest clutter), scored in one process by

* **ours**: ``ugs.evaluation.rotated.RotatedBoxEvaluator`` (SODA-A's protocol: 20,000 detections
  per image and class, Small / eS / rS / gS / Normal), on every image; and
* **the direct method**, as SODA-A's official 2023 evaluator does it: per image and class a
  dense IoU matrix from ``mmcv.ops.box_iou_rotated`` (float32, mmcv's CPU kernel) and
  pycocotools' ``COCOeval`` loop (``evaluate`` + ``accumulate``, the same area ranges and
  detection limit). It takes hours at full size, so it runs on the first ``--direct-images``
  images and its full time is extrapolated linearly (the images are alike), stated as such.

On those first images our precision and recall arrays and metrics are compared with (a) the
same pycocotools loop fed with the kit's float64 IoU, which must agree exactly (the matching and
accumulation), and (b) the direct method itself, whose float32 IoU differs from the exact one by
up to ~6e-7 and can put a pair on the other side of a threshold: the script counts the pairs
within 1e-6 of a threshold and prints the largest differences. The ratio, not the absolute time,
is the result (absolute times depend on the machine and its load).

    python benchmarks/eval_speed_rotated.py                        # 100 images, direct on 2
    python benchmarks/eval_speed_rotated.py --images 10 --direct-images 1 --out result.json
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import platform
import time

import numpy as np

from ugs.evaluation.coco_ap import _Progress
from ugs.evaluation.rotated import SODA_A_AREA_RANGES, RotatedBoxEvaluator


def make_scene(images: int, objects: int, dets: int, seed: int, size=(4000, 3000), classes: int = 9):
    """Ground truth (converted-JSON layout) and detections (a dict of arrays)."""
    rng = np.random.default_rng(seed)
    anns, d_img, d_cat, d_box, d_score = [], [], [], [], []
    for im in range(1, images + 1):
        side = np.minimum(14.0 * np.exp(rng.normal(0, 0.5, objects)), 60)
        aspect = rng.uniform(1, 3, objects)
        gt = np.c_[rng.uniform(30, size[0] - 30, objects), rng.uniform(30, size[1] - 30, objects),
                   side * np.sqrt(aspect), side / np.sqrt(aspect), rng.uniform(-math.pi / 2, math.pi / 2, objects)]
        cat = rng.integers(0, classes, objects)
        anns += [dict(id=len(anns) + k + 1, image_id=im, category_id=int(c), rbox=b.tolist())
                 for k, (b, c) in enumerate(zip(gt, cat))]
        copies = rng.integers(0, 6, objects)                       # ~3 detections per object
        src = np.repeat(np.arange(objects), copies)[:dets]
        jitter = rng.normal(0, 1, (src.size, 5)) * np.c_[gt[src, 2:4] * 0.12, gt[src, 2:4] * 0.12,
                                                          np.full(src.size, 0.08)]
        near = gt[src] + jitter
        near[:, 2:4] = np.abs(near[:, 2:4])
        n_far = dets - src.size
        side_f = np.minimum(14.0 * np.exp(rng.normal(0, 0.5, n_far)), 60)
        far = np.c_[rng.uniform(0, size[0], n_far), rng.uniform(0, size[1], n_far), side_f * 1.4, side_f / 1.4,
                    rng.uniform(-math.pi / 2, math.pi / 2, n_far)]
        d_box.append(np.r_[near, far])
        d_cat.append(np.r_[cat[src], rng.integers(0, classes, n_far)])
        d_img.append(np.full(dets, im))
        d_score.append(rng.random(dets))
    gt = dict(images=[dict(id=i) for i in range(1, images + 1)],
              categories=[dict(id=c, name=f"class{c}") for c in range(classes)], annotations=anns)
    det = dict(image_id=np.concatenate(d_img), category_id=np.concatenate(d_cat), rbox=np.concatenate(d_box),
               score=np.concatenate(d_score))
    return gt, det


def subset(gt, det, first: int):
    keep = det["image_id"] <= first
    return (dict(gt, images=gt["images"][:first], annotations=[a for a in gt["annotations"] if a["image_id"] <= first]),
            {k: v[keep] for k, v in det.items()})


def direct(gt, det, iou="mmcv"):
    """A dense rotated IoU per image and class (``iou="mmcv"``: mmcv's ``box_iou_rotated`` in
    float32, as the official evaluator; ``"kit"``: the kit's float64 IoU) + pycocotools' loop;
    returns the COCOeval."""
    import torch
    from mmcv.ops import box_iou_rotated

    from ugs.evaluation.rotated_iou import rotated_iou_matrix
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    class RotatedCOCOeval(COCOeval):
        def computeIoU(self, imgId, catId):
            gts, dts = self._gts[imgId, catId], self._dts[imgId, catId]
            if len(gts) == 0 and len(dts) == 0:
                return []
            order = np.argsort([-d["score"] for d in dts], kind="mergesort")
            dts = [dts[i] for i in order][:self.params.maxDets[-1]]
            if not gts or not dts:
                return []
            if iou == "kit":
                return rotated_iou_matrix([d["rbox"] for d in dts], [g["rbox"] for g in gts])
            return box_iou_rotated(torch.tensor([d["rbox"] for d in dts], dtype=torch.float32),
                                   torch.tensor([g["rbox"] for g in gts], dtype=torch.float32)).numpy()

    def bbox(b):              # a box with the rotated box's w * h, so COCO's areas are SODA's
        return [b[0], b[1], b[2], b[3]]
    coco_gt = dict(images=gt["images"], categories=gt["categories"],
                   annotations=[dict(a, bbox=bbox(a["rbox"]), area=a["rbox"][2] * a["rbox"][3], iscrowd=0)
                                for a in gt["annotations"]])
    results = [dict(image_id=int(i), category_id=int(c), rbox=b.tolist(), bbox=bbox(b), score=float(s))
               for i, c, b, s in zip(det["image_id"], det["category_id"], det["rbox"], det["score"])]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = coco_gt
        coco.createIndex()
        E = RotatedCOCOeval(coco, coco.loadRes(results), "bbox")
        E.params.areaRng = [[lo, hi] for _, lo, hi in SODA_A_AREA_RANGES]
        E.params.areaRngLbl = [label for label, _, _ in SODA_A_AREA_RANGES]
        E.params.maxDets = [20000]
        E.evaluate()
        E.accumulate()
    return E


def summary(precision):
    """SODA-A's AP values from a precision array (T, R, K, A, M): mean of the valid entries."""
    def mean(x):
        v = x[x > -1]
        return float(v.mean()) if v.size else -1.0
    out = {"AP": mean(precision[:, :, :, 0, 0]), "AP50": mean(precision[0, :, :, 0, 0]),
           "AP75": mean(precision[5, :, :, 0, 0])}
    for a, key in enumerate(("AP_eS", "AP_rS", "AP_gS", "AP_N"), start=1):
        out[key] = mean(precision[:, :, :, a, 0])
    return out


def near_threshold_pairs(gt, det, thrs, eps=1e-6):
    """Same-class pairs whose IoU lies within ``eps`` of an IoU threshold (could flip between
    float32 and float64)."""
    ev = RotatedBoxEvaluator(gt)
    d_img = ev.gt.image_positions(det["image_id"])
    d_cat = ev.gt.category_positions(det["category_id"])
    order = np.lexsort((-det["score"], d_cat, d_img))
    pd, pg, iou = ev._pairs(d_img[order], d_cat[order], det["rbox"][order], _Progress(False))
    return int((np.abs(iou[:, None] - np.asarray(thrs)[None, :]) < eps).sum())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--objects", type=int, default=3000, help="objects per image")
    ap.add_argument("--dets", type=int, default=20000, help="detections per image")
    ap.add_argument("--direct-images", type=int, default=2, help="images the direct method runs on")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="write the record as JSON here")
    args = ap.parse_args(argv)
    if not 1 <= args.direct_images <= args.images:
        ap.error("--direct-images must be in [1, --images]")
    t0 = time.perf_counter()
    gt, det = make_scene(args.images, args.objects, args.dets, args.seed)
    print(f"scene: {args.images} images x {args.objects} objects x {args.dets} detections "
          f"({time.perf_counter() - t0:.1f} s to generate)", flush=True)

    t0 = time.perf_counter()
    ours_all = RotatedBoxEvaluator(gt).evaluate(det)
    t_ours = time.perf_counter() - t0
    print(f"ours, all {args.images} images: {t_ours:.1f} s; AP {ours_all['AP']:.4f}", flush=True)

    gt_k, det_k = subset(gt, det, args.direct_images)
    t0 = time.perf_counter()
    ev_k = RotatedBoxEvaluator(gt_k)
    ours_k = ev_k.evaluate(det_k)
    t_ours_k = time.perf_counter() - t0
    t0 = time.perf_counter()
    E = direct(gt_k, det_k)
    t_direct_k = time.perf_counter() - t0
    t_direct_all = t_direct_k * args.images / args.direct_images
    E_kit = direct(gt_k, det_k, iou="kit")          # the same loop fed with the kit's IoU
    diffs = {}
    for name, ref in (("mmcv_iou", E), ("kit_iou", E_kit)):
        ms, mo = summary(ref.eval["precision"]), summary(ev_k.precision)
        diffs[name] = dict(max_precision_diff=float(np.abs(ev_k.precision - ref.eval["precision"]).max()),
                           max_recall_diff=float(np.abs(ev_k.recall - ref.eval["recall"]).max()),
                           max_metric_diff=max(abs(ms[k] - mo[k]) for k in ms))
    near = near_threshold_pairs(gt_k, det_k, ev_k.iou_thrs)
    print(f"direct method (mmcv box_iou_rotated + pycocotools), first {args.direct_images} image(s): "
          f"{t_direct_k:.1f} s; ours on the same: {t_ours_k:.2f} s", flush=True)
    for name, what in (("kit_iou", "the direct loop fed with the kit's float64 IoU"),
                       ("mmcv_iou", "the direct method (mmcv's float32 IoU)")):
        d = diffs[name]
        print(f"  ours vs {what}: max |precision diff| {d['max_precision_diff']:.3g}, max |recall diff| "
              f"{d['max_recall_diff']:.3g}, max |metric diff| {d['max_metric_diff']:.3g}")
    print(f"  ({near} candidate pairs have an IoU within 1e-6 of a threshold, where float32 and float64 can "
          "fall on different sides)")
    print(f"  ratio on those images: {t_direct_k / t_ours_k:.0f}x")
    print(f"whole scene: ours {t_ours:.1f} s measured; direct ~{t_direct_all / 60:.0f} min extrapolated "
          f"-> ratio ~{t_direct_all / t_ours:.0f}x")
    rec = dict(command="python benchmarks/eval_speed_rotated.py " + " ".join(argv or []),
               images=args.images, objects_per_image=args.objects, dets_per_image=args.dets,
               direct_images=args.direct_images, seed=args.seed, ours_seconds=t_ours,
               ours_seconds_on_direct_images=t_ours_k, direct_seconds_on_direct_images=t_direct_k,
               direct_seconds_extrapolated=t_direct_all, ratio=t_direct_all / t_ours,
               differences=diffs, pairs_near_threshold=near,
               metrics_ours_all={k: ours_all[k] for k in ("AP", "AP50", "AP75", "AP_eS", "AP_rS", "AP_gS", "AP_N")},
               metrics_ours_direct_images={k: ours_k[k] for k in ("AP", "AP50", "AP75")},
               machine=dict(processor=platform.processor() or platform.machine(), python=platform.python_version()))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(rec, f, indent=1)
            f.write("\n")
        print("wrote", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
