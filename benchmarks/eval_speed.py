"""Speed of ugs.evaluation against plain pycocotools on a dense VisDrone-like scene.

Generates a seeded synthetic scene (default: 548 images, as VisDrone-DET val, x 1,500
detections per image, ~65 small ground truths per image, 10 classes; see
``ugs.evaluation.synthetic``), then in the same process and on the same inputs times

* ours: ``CocoBoxEvaluator(gt, max_dets=(1, 10, N), ignore_rule=None).evaluate(dets)``
  (ground-truth indexing included), and
* pycocotools: ``COCO`` index + ``loadRes`` + ``COCOeval`` with ``maxDets=[1, 10, N]``,
  ``evaluate() + accumulate() + summarize()``,

checks that they agree (precision / recall arrays and the 12 summary numbers; pycocotools'
``stats[0]`` is taken from its precision array because its ``summarize()`` computes AP at
maxDets=100 only), and prints both times and the ratio pycocotools time / our time.

The ratio, not the absolute time, is the result: absolute times depend on the machine and
its load. pycocotools is pure-Python per detection and takes minutes at the full size;
use ``--images`` to run a smaller case. ``--skip-pycocotools`` times ours only.

Example::

    python benchmarks/eval_speed.py --images 548 --dets 1500 --repeats 1
"""
from __future__ import annotations

import argparse
import contextlib
import io
import platform
import time

import numpy as np

from ugs.evaluation import CocoBoxEvaluator, make_synthetic_scene


def time_ours(gt, dets, max_dets, repeats, ignore_rule=None):
    best, ev, res = float("inf"), None, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        ev = CocoBoxEvaluator(gt, max_dets=max_dets, ignore_rule=ignore_rule)
        res = ev.evaluate(dets)
        best = min(best, time.perf_counter() - t0)
    return best, ev, res


def time_pycocotools(gt, dets, max_dets, repeats):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    best, E = float("inf"), None
    for _ in range(repeats):
        dets_copy = [dict(d, bbox=list(d["bbox"])) for d in dets]  # loadRes mutates its input
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO()
            coco.dataset = gt
            coco.createIndex()
            res = coco.loadRes(dets_copy)
            E = COCOeval(coco, res, "bbox")
            E.params.maxDets = list(max_dets)
            E.evaluate()
            E.accumulate()
            E.summarize()
        best = min(best, time.perf_counter() - t0)
    return best, E


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=548)
    ap.add_argument("--dets", type=int, default=1500, help="detections per image (also the largest maxDets)")
    ap.add_argument("--gts", type=int, default=65, help="mean ground truths per image")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs per evaluator (best is reported)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-pycocotools", action="store_true")
    args = ap.parse_args(argv)
    max_dets = (1, 10, args.dets)

    t0 = time.perf_counter()
    gt, dets = make_synthetic_scene(num_images=args.images, dets_per_image=args.dets,
                                    gts_per_image=args.gts, seed=args.seed)
    print(f"scene: {args.images} images, {len(gt['annotations'])} gts, {len(dets)} detections, "
          f"maxDets {list(max_dets)} (generated in {time.perf_counter() - t0:.1f}s)")
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")

    t_ours, ev, res = time_ours(gt, dets, max_dets, args.repeats)
    print(f"ours        : {t_ours:8.2f} s   AP {res['AP']:.4f}  AP50 {res['AP50']:.4f}  "
          f"AR@{args.dets} {res[f'AR@{args.dets}']:.4f}")
    t_rule, _, res_rule = time_ours(gt, dets, max_dets, 1, ignore_rule="toolkit")
    c = res_rule["counts"]
    print(f"ours+ignore : {t_rule:8.2f} s   (toolkit ignored-region rule: dropped "
          f"{c['gts_dropped_by_ignored_regions']} gts, {c['dets_dropped_by_ignored_regions']} dets; "
          f"AP {res_rule['AP']:.4f})")
    if args.skip_pycocotools:
        return 0

    t_ref, E = time_pycocotools(gt, dets, max_dets, args.repeats)
    stats = np.array(E.stats, dtype=np.float64)
    p = E.eval["precision"][:, :, :, 0, -1]
    stats[0] = np.mean(p[p > -1]) if (p > -1).any() else -1.0
    diff = float(np.max(np.abs(stats - np.asarray(res["stats"]))))
    same_arrays = (np.array_equal(ev.precision, E.eval["precision"])
                   and np.array_equal(ev.recall, E.eval["recall"]))
    print(f"pycocotools : {t_ref:8.2f} s   AP {stats[0]:.4f}  AP50 {stats[1]:.4f}  AR@{args.dets} {stats[8]:.4f}")
    print(f"agreement   : max |stats difference| = {diff:.3g}; precision/recall arrays identical: {same_arrays}")
    print(f"speed ratio : {t_ref / t_ours:.1f}x  (pycocotools time / ours)")
    ok = diff <= 1e-9 and same_arrays
    if not ok:
        print("MISMATCH between the evaluators")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
