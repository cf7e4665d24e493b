"""SODA-A's evaluation (``ugs.evaluation.rotated``): on axis-aligned boxes the same precision and
recall arrays as pycocotools' COCOeval run with SODA's area ranges and detection limit; every
metric unchanged when the whole scene is turned by 90 degrees; a case worked out by hand; and
input errors that name the bad entry."""
import contextlib
import copy
import io
import math

import numpy as np
import pytest

from ugs.evaluation.rotated import SODA_A_AREA_RANGES, RotatedBoxEvaluator, evaluate_soda_a

pycocotools = pytest.importorskip("pycocotools")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402


def fixture(seed, n_images=6, n_cats=3):
    """Random axis-aligned ground truth (xywh, areas from 9 to 2025 px^2, so every SODA range
    is populated) and detections: jittered copies of objects plus clutter, shared scores."""
    rng = np.random.default_rng(seed)
    images = [dict(id=i + 1, width=500, height=400) for i in range(n_images)]
    cats = [dict(id=c, name=f"c{c}") for c in range(n_cats)]
    anns, dets = [], []
    for im in images:
        for _ in range(int(rng.integers(0, 40))):
            w, h = rng.uniform(3, 45, 2)
            x, y = rng.uniform(0, 450), rng.uniform(0, 350)
            c = int(rng.integers(0, n_cats))
            anns.append(dict(id=len(anns) + 1, image_id=im["id"], category_id=c, bbox=[x, y, w, h], area=w * h,
                             iscrowd=0))
            for _ in range(int(rng.integers(0, 3))):
                j = rng.normal(0, 2, 4)
                dets.append(dict(image_id=im["id"], category_id=c, score=float(rng.random()),
                                 bbox=[x + j[0], y + j[1], max(0.5, w + j[2]), max(0.5, h + j[3])]))
        for _ in range(30):
            w, h = rng.uniform(3, 45, 2)
            dets.append(dict(image_id=im["id"], category_id=int(rng.integers(0, n_cats)), score=float(rng.random()),
                             bbox=[rng.uniform(0, 450), rng.uniform(0, 350), w, h]))
    return dict(images=images, categories=cats, annotations=anns), dets


def as_rotated(gt, dets):
    def rb(b):
        return [b[0] + b[2] / 2, b[1] + b[3] / 2, b[2], b[3], 0.0]
    rgt = dict(images=gt["images"], categories=gt["categories"],
               annotations=[dict(id=a["id"], image_id=a["image_id"], category_id=a["category_id"], rbox=rb(a["bbox"]))
                            for a in gt["annotations"]])
    return rgt, [dict(image_id=d["image_id"], category_id=d["category_id"], rbox=rb(d["bbox"]), score=d["score"])
                 for d in dets]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_axis_aligned_boxes_give_pycocotools_arrays(seed):
    gt, dets = fixture(seed)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        ref = COCOeval(coco, coco.loadRes(copy.deepcopy(dets)), "bbox")
        ref.params.areaRng = [[lo, hi] for _, lo, hi in SODA_A_AREA_RANGES]
        ref.params.areaRngLbl = [label for label, _, _ in SODA_A_AREA_RANGES]
        ref.params.maxDets = [20000]
        ref.evaluate()
        ref.accumulate()
    ev = RotatedBoxEvaluator(as_rotated(gt, dets)[0])
    metrics = ev.evaluate(as_rotated(gt, dets)[1])
    assert ev.precision.shape == ref.eval["precision"].shape
    np.testing.assert_allclose(ev.precision, ref.eval["precision"], atol=1e-12)
    np.testing.assert_allclose(ev.recall, ref.eval["recall"], atol=1e-12)
    # the headline numbers are means over the pycocotools array, Small range, valid entries
    p = ref.eval["precision"][:, :, :, 0, 0]
    assert metrics["AP"] == pytest.approx(p[p > -1].mean(), abs=1e-12)
    p50 = ref.eval["precision"][0, :, :, 0, 0]
    assert metrics["AP50"] == pytest.approx(p50[p50 > -1].mean(), abs=1e-12)
    assert 0.0 < metrics["AP"] < 1.0


def turn_90(rgt, rdets):
    """The whole scene turned by 90 degrees: (x, y) -> (H - y, x) in an image of W x H, which
    becomes H x W; each box's angle grows by pi / 2."""
    heights = {im["id"]: im["height"] for im in rgt["images"]}

    def t(image_id, b):
        return [heights[image_id] - b[1], b[0], b[2], b[3], b[4] + math.pi / 2]
    images = [dict(im, width=im["height"], height=im["width"]) for im in rgt["images"]]
    anns = [dict(a, rbox=t(a["image_id"], a["rbox"])) for a in rgt["annotations"]]
    return (dict(rgt, images=images, annotations=anns),
            [dict(d, rbox=t(d["image_id"], d["rbox"])) for d in rdets])


def test_turning_the_scene_by_90_degrees_changes_no_metric():
    rng = np.random.default_rng(7)
    gt, dets = fixture(4)
    rgt, rdets = as_rotated(gt, dets)
    for d in rdets:                                   # rotated boxes at every angle
        d["rbox"][4] = float(rng.uniform(-1.5, 1.5))
    for a in rgt["annotations"]:
        a["rbox"][4] = float(rng.uniform(-1.5, 1.5))
    for d, a in zip(rdets, rgt["annotations"]):      # some detections sit on their object
        d["rbox"] = list(np.add(a["rbox"], rng.normal(0, [1, 1, 1, 1, 0.05])))
    before = evaluate_soda_a(rgt, rdets)
    after = evaluate_soda_a(*turn_90(rgt, rdets))
    keys = ("AP", "AP50", "AP75", "AP_eS", "AP_rS", "AP_gS", "AP_N", "AR")
    assert before["AP50"] > 0.05
    for k in keys:
        assert after[k] == pytest.approx(before[k], abs=1e-12), k


def test_a_case_worked_out_by_hand():
    # one image, class 0: a 10 x 10 object (area 100: Small and eS) and a 30 x 30 one (900: Small
    # and gS); class 1: a 50 x 50 object (2500: no range). Detections: a perfect hit on the
    # first (score 0.9), a miss (0.8), the second found at IoU 0.64 (24 x 24 inside 30 x 30,
    # score 0.7). At IoU 0.50-0.60 both objects are found: precision 1 up to recall 0.5, then
    # 2/3 at recall 1; from 0.65 on only the first: AP over recall points 0..0.5 = 1 (51 of 101).
    gt = dict(images=[dict(id=1)], categories=[dict(id=0, name="a"), dict(id=1, name="b")],
              annotations=[dict(id=1, image_id=1, category_id=0, rbox=[50, 50, 10, 10, 0.3]),
                           dict(id=2, image_id=1, category_id=0, rbox=[200, 200, 30, 30, -0.7]),
                           dict(id=3, image_id=1, category_id=1, rbox=[400, 400, 50, 50, 0.0])])
    dets = [dict(image_id=1, category_id=0, rbox=[50, 50, 10, 10, 0.3], score=0.9),
            dict(image_id=1, category_id=0, rbox=[600, 600, 10, 10, 0.0], score=0.8),
            dict(image_id=1, category_id=0, rbox=[200, 200, 24, 24, -0.7], score=0.7)]
    m = evaluate_soda_a(gt, dets)
    low = (51 * 1.0 + 50 * (2 / 3)) / 101            # thresholds 0.50, 0.55, 0.60 (IoU 0.64 passes)
    high = 51 / 101                                   # 0.65 ... 0.95
    assert m["AP"] == pytest.approx((3 * low + 7 * high) / 10, abs=1e-12)
    assert m["AP50"] == pytest.approx(low, abs=1e-12)
    # eS: only the 10 x 10 object; the miss (area 100) counts as a false positive after it,
    # the 24 x 24 detection (576, outside eS) is unmatched there and ignored
    assert m["AP_eS"] == pytest.approx(1.0, abs=1e-12)
    assert m["AP_rS"] == -1.0 and m["AP_N"] == -1.0    # no ground truth in these ranges
    assert m["per_class"]["b"]["AP"] == -1.0           # class 1's only object is outside Small


def test_bad_detections_name_the_entry():
    gt = dict(images=[dict(id=1)], categories=[dict(id=0, name="a")],
              annotations=[dict(id=1, image_id=1, category_id=0, rbox=[5, 5, 4, 4, 0])])
    with pytest.raises(ValueError, match="detection 1: field 'rbox' must have 5 numbers"):
        evaluate_soda_a(gt, [dict(image_id=1, category_id=0, rbox=[5, 5, 4, 4, 0], score=1.0),
                             dict(image_id=1, category_id=0, rbox=[5, 5, 4, 4], score=1.0)])
    with pytest.raises(ValueError, match="detection 0: field 'rbox' has a negative width"):
        evaluate_soda_a(gt, [dict(image_id=1, category_id=0, rbox=[5, 5, -4, 4, 0], score=1.0)])
    with pytest.raises(ValueError, match="'image_id' = 7 is not an image"):
        evaluate_soda_a(gt, [dict(image_id=7, category_id=0, rbox=[5, 5, 4, 4, 0], score=1.0)])
    with pytest.raises(ValueError, match="annotation 0: field 'rbox' must have 5 numbers"):
        evaluate_soda_a(dict(gt, annotations=[dict(id=1, image_id=1, category_id=0, rbox=[5, 5, 4, 4])]), [])
