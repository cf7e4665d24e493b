"""Tests of ugs.evaluation: agreement with pycocotools, hand-worked AP values, the VisDrone
ignored-region rule, empty and bad inputs, metrics.json."""
from __future__ import annotations

import contextlib
import copy
import io
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ugs.evaluation import (CocoBoxEvaluator, coco_iou, evaluate_detections, format_summary,
                            ignored_box_mask, make_synthetic_scene, matlab_round,
                            write_metrics_json)

pytest.importorskip("pycocotools")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402


# ----------------------------------------------------------------------------- helpers

def run_pycocotools(gt: dict, dets: list, max_dets) -> COCOeval:
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        res = coco.loadRes(copy.deepcopy(dets))
        ev = COCOeval(coco, res, "bbox")
        ev.params.maxDets = list(max_dets)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def assert_agrees_with_pycocotools(gt: dict, dets: list, max_dets=(1, 10, 100)) -> dict:
    ours = CocoBoxEvaluator(gt, max_dets=max_dets, ignore_rule=None)
    res = ours.evaluate(dets)
    ref = run_pycocotools(gt, dets, max_dets)
    # the full precision / recall arrays are bit-identical
    np.testing.assert_array_equal(ours.precision, ref.eval["precision"])
    np.testing.assert_array_equal(ours.recall, ref.eval["recall"])
    stats = np.array(ref.stats, dtype=np.float64)
    if 100 not in max_dets:
        # pycocotools' summarize() computes stats[0] at maxDets=100 whatever params.maxDets
        # is (-> -1); the AP at the largest maxDets is the mean of its precision array.
        p = ref.eval["precision"][:, :, :, 0, -1]
        stats[0] = np.mean(p[p > -1]) if (p > -1).any() else -1.0
    np.testing.assert_allclose(res["stats"], stats, rtol=0, atol=1e-9)
    # per-class AP against pycocotools' precision array
    for k, (name, pc) in enumerate(res["per_class"].items()):
        p = ref.eval["precision"][:, :, k, 0, -1]
        want = np.mean(p[p > -1]) if (p > -1).any() else -1.0
        assert pc["AP"] == pytest.approx(want, abs=1e-12), name
    return res


def random_scene(rng: np.random.Generator, n_img=8, n_cat=4, max_gt=12, max_det=30,
                 score_levels=6, crowd_p=0.1):
    """Random small scene with the awkward cases: images without gts, images without
    detections, tied scores, duplicate gts (tied IoUs), crowd gts, gt 'area' differing from
    w * h, large boxes, unsorted non-contiguous ids, shuffled annotation / detection order."""
    img_ids = rng.choice(np.arange(1, 1000), size=n_img, replace=False)
    images = [{"id": int(i), "width": 200, "height": 150} for i in img_ids]
    cats = [{"id": int(c), "name": f"c{c}"} for c in rng.permutation(np.arange(1, n_cat + 1))]
    anns, dets = [], []
    for j, iid in enumerate(img_ids):
        n_gt = 0 if j % 4 == 1 else int(rng.integers(0, max_gt + 1))
        boxes = []
        for _ in range(n_gt):
            if boxes and rng.uniform() < 0.15:
                b = list(boxes[int(rng.integers(len(boxes)))])  # duplicate gt -> IoU ties
            else:
                side = rng.choice([4.0, 12.0, 30.0, 60.0, 120.0])
                w = float(np.round(side * rng.uniform(0.5, 1.5)))
                h = float(np.round(side * rng.uniform(0.5, 1.5)))
                b = [float(rng.integers(0, 180)), float(rng.integers(0, 130)), max(w, 1.0), max(h, 1.0)]
            boxes.append(b)
            area = b[2] * b[3] * (1.0 if rng.uniform() < 0.7 else float(rng.uniform(0.3, 1.0)))
            anns.append({"image_id": int(iid), "category_id": int(rng.integers(1, n_cat + 1)),
                         "bbox": b, "area": area, "iscrowd": int(rng.uniform() < crowd_p)})
        n_dt = 0 if j % 4 == 2 else int(rng.integers(0, max_det + 1))
        for _ in range(n_dt):
            if boxes and rng.uniform() < 0.6:
                b = np.array(boxes[int(rng.integers(len(boxes)))])
                if rng.uniform() < 0.7:
                    b = b + np.round(rng.normal(0, 0.15, 4) * b[[2, 3, 2, 3]] * 2) / 2
                b[2:] = np.maximum(b[2:], 0.5)
            else:
                b = np.array([rng.uniform(0, 180), rng.uniform(0, 130), rng.uniform(1, 70), rng.uniform(1, 70)])
            dets.append({"image_id": int(iid), "category_id": int(rng.integers(1, n_cat + 1)),
                         "bbox": [float(v) for v in b],
                         "score": float(rng.integers(1, score_levels + 1)) / score_levels})
    anns = [anns[i] for i in rng.permutation(len(anns))]
    for i, a in enumerate(anns):
        a["id"] = i + 1
    dets = [dets[i] for i in rng.permutation(len(dets))]
    return {"images": images, "categories": cats, "annotations": anns}, dets


def one_image_gt(gt_boxes, cat=1, width=100, height=100, regions=None):
    image = {"id": 1, "width": width, "height": height}
    if regions is not None:
        image["ignored_regions"] = regions
    return {"images": [image], "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
            "annotations": [{"id": i + 1, "image_id": 1, "category_id": cat, "bbox": list(b),
                             "area": b[2] * b[3], "iscrowd": 0} for i, b in enumerate(gt_boxes)]}


def det(box, score, cat=1, image_id=1):
    return {"image_id": image_id, "category_id": cat, "bbox": list(box), "score": score}


# ----------------------------------------------------------------------------- pycocotools agreement

@pytest.mark.parametrize("seed", range(8))
def test_agrees_with_pycocotools_default_maxdets(seed):
    gt, dets = random_scene(np.random.default_rng(seed))
    assert_agrees_with_pycocotools(gt, dets, (1, 10, 100))


@pytest.mark.parametrize("seed,max_dets", [(10, (1, 10, 5)), (11, (1, 10, 15)), (12, (1, 10, 1500)),
                                           (13, (1, 3, 7)), (14, (1, 10, 500))])
def test_agrees_with_pycocotools_custom_maxdets(seed, max_dets):
    # max_dets below the detections per (image, category) exercises the truncation
    gt, dets = random_scene(np.random.default_rng(seed), n_img=6, n_cat=2, max_det=60)
    assert_agrees_with_pycocotools(gt, dets, max_dets)


def test_agrees_with_pycocotools_dense_synthetic_scene():
    gt, dets = make_synthetic_scene(num_images=6, dets_per_image=400, seed=3)
    res = assert_agrees_with_pycocotools(gt, dets, (1, 10, 1500))
    assert 0.0 < res["AP"] < 1.0


@st.composite
def tiny_scenes(draw):
    """Boxes on a coarse integer grid: many exact IoU and score ties."""
    n_img = draw(st.integers(1, 3))
    coord = st.integers(0, 12)
    size = st.integers(0, 10)
    anns, dets = [], []
    for iid in range(1, n_img + 1):
        for _ in range(draw(st.integers(0, 5))):
            b = [float(draw(coord)), float(draw(coord)), float(draw(st.integers(1, 10))), float(draw(st.integers(1, 10)))]
            anns.append({"image_id": iid, "category_id": draw(st.integers(1, 2)), "bbox": b,
                         "area": b[2] * b[3] * draw(st.sampled_from([1.0, 1.0, 40.0, 200.0])),
                         "iscrowd": int(draw(st.integers(0, 7)) == 0)})
        for _ in range(draw(st.integers(0, 8))):
            b = [float(draw(coord)), float(draw(coord)), float(draw(size)), float(draw(size))]
            dets.append({"image_id": iid, "category_id": draw(st.integers(1, 2)), "bbox": b,
                         "score": draw(st.sampled_from([0.25, 0.5, 0.75, 1.0]))})
    for i, a in enumerate(anns):
        a["id"] = i + 1
    gt = {"images": [{"id": i, "width": 30, "height": 30} for i in range(1, n_img + 1)],
          "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}], "annotations": anns}
    return gt, dets


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_scenes(), st.sampled_from([(1, 10, 100), (1, 2, 3)]))
def test_agrees_with_pycocotools_hypothesis(scene, max_dets):
    gt, dets = scene
    if not dets:  # pycocotools' loadRes cannot take an empty list (see test_no_detections)
        return
    assert_agrees_with_pycocotools(gt, dets, max_dets)


def test_iou_matches_pycocotools_mask_iou():
    from pycocotools import mask as mask_utils
    rng = np.random.default_rng(0)
    d = rng.uniform(0, 50, (40, 4))
    g = np.round(rng.uniform(0, 50, (25, 4)))
    crowd = rng.uniform(size=25) < 0.3
    ref = mask_utils.iou(d.tolist(), g.tolist(), crowd.astype(np.uint8).tolist())
    np.testing.assert_array_equal(coco_iou(d, g, crowd), ref)


# ----------------------------------------------------------------------------- hand-worked values

def test_one_perfect_detection_gives_ap_1():
    # one gt, one identical detection: precision 1 at every recall point and threshold
    # (1 / (1 + eps) exactly as pycocotools computes tp / (tp + fp + eps), hence approx)
    gt = one_image_gt([[10, 10, 20, 20]])
    r = evaluate_detections(gt, [det([10, 10, 20, 20], 0.9)], ignore_rule=None)
    for key in ("AP", "AP50", "AP75", "AP_s"):
        assert r[key] == pytest.approx(1.0, abs=1e-12), key
    assert r["AR@100"] == r["AR@1"] == 1.0
    assert r["AP_m"] == r["AP_l"] == -1.0  # no medium / large gt: -1 as in pycocotools
    assert r["per_class"]["a"]["AP"] == pytest.approx(1.0, abs=1e-12)
    assert r["per_class"]["b"]["AP"] == -1.0


def test_detection_at_iou_0_6():
    # gt 10x10, det 10x6 inside it: IoU = 60 / 100 = 0.6 exactly; the test is IoU >= t, so it
    # matches at t = 0.50, 0.55, 0.60 (3 of 10 thresholds, precision 1) and fails at the
    # other 7 (precision 0): AP = 3/10 = 0.3, AP50 = 1, AP75 = 0, AR = 0.3.
    gt = one_image_gt([[0, 0, 10, 10]])
    r = evaluate_detections(gt, [det([0, 0, 10, 6], 0.9)], ignore_rule=None)
    assert r["AP"] == pytest.approx(0.3, abs=1e-12)
    assert r["AP50"] == pytest.approx(1.0, abs=1e-12) and r["AP75"] == 0.0
    assert r["AR@100"] == pytest.approx(0.3, abs=1e-12)


def test_false_positive_ranked_above_true_positive():
    # 1 gt; FP (score .9) then TP (score .8): recall [0, 1], precision [0, 1/2];
    # made monotone from the right -> [1/2, 1/2]; every one of the 101 recall points
    # reads 1/2 -> AP = 0.5 at every IoU threshold.
    gt = one_image_gt([[10, 10, 20, 20]])
    r = evaluate_detections(gt, [det([60, 60, 20, 20], 0.9), det([10, 10, 20, 20], 0.8)], ignore_rule=None)
    assert r["AP"] == pytest.approx(0.5, abs=1e-12) and r["AP50"] == pytest.approx(0.5, abs=1e-12)


def test_tp_fp_tp_101_point_value():
    # 2 gts; TP (.9), FP (.8), TP (.7): recall [.5, .5, 1], precision [1, 1/2, 2/3],
    # monotone -> [1, 2/3, 2/3]. Recall points 0.00..0.50 (51 of them) read 1, the 50 points
    # 0.51..1.00 read 2/3: AP = (51 + 50 * 2/3) / 101 = 0.83498...
    gt = one_image_gt([[10, 10, 20, 20], [50, 50, 20, 20]])
    dets = [det([10, 10, 20, 20], 0.9), det([80, 10, 10, 10], 0.8), det([50, 50, 20, 20], 0.7)]
    r = evaluate_detections(gt, dets, ignore_rule=None)
    want = (51 + 50 * 2 / 3) / 101
    assert r["AP"] == pytest.approx(want, abs=1e-12)
    assert r["AP50"] == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("reverse", [False, True])
def test_equal_iou_tie_goes_to_the_later_annotation(reverse):
    # D1 [0,0,10,10] has IoU 0.5 with both G1 [0,0,10,20] and G2 [0,0,20,10]; pycocotools
    # keeps the LAST gt (annotation order) of highest IoU. D2 = G1 exactly (IoU 1 with G1,
    # 1/3 with G2). Order G1, G2: D1 takes G2, D2 takes G1 -> 2 TPs, AP50 = 1.
    # Order G2, G1: D1 takes G1, D2 has only G2 at IoU 1/3 -> TP, FP: recall [.5, .5],
    # precision [1, .5]; recall points 0..0.50 read 1, the rest 0 -> AP50 = 51/101.
    g1, g2 = [0, 0, 10, 20], [0, 0, 20, 10]
    gt = one_image_gt([g2, g1] if reverse else [g1, g2])
    dets = [det([0, 0, 10, 10], 0.9), det(g1, 0.8)]
    r = assert_agrees_with_pycocotools(gt, dets)
    assert r["AP50"] == pytest.approx(51 / 101 if reverse else 1.0, abs=1e-12)


def test_regular_gt_preferred_over_better_overlapping_crowd_gt():
    # det D [0,0,10,10]; crowd gt C = D (crowd IoU = inter / area(D) = 1) listed first, and a
    # regular gt R [0,0,10,16] (IoU 100/160 = 0.625). At t = 0.50, 0.55, 0.60 D takes R
    # although C overlaps more (regular gts first) -> TP, precision 1. At t >= 0.65 only C
    # qualifies -> D is ignored, R is missed -> precision 0. AP = 3/10 = 0.3.
    gt = one_image_gt([[0, 0, 10, 10], [0, 0, 10, 16]])
    gt["annotations"][0]["iscrowd"] = 1
    r = assert_agrees_with_pycocotools(gt, [det([0, 0, 10, 10], 0.9)])
    assert r["AP"] == pytest.approx(0.3, abs=1e-12)


def test_max_dets_is_per_image_and_category():
    # like pycocotools: maxDets=1 keeps the best detection of each class in the image
    gt = one_image_gt([[10, 10, 20, 20]])
    gt["annotations"].append({"id": 2, "image_id": 1, "category_id": 2, "bbox": [50, 50, 20, 20],
                              "area": 400.0, "iscrowd": 0})
    dets = [det([10, 10, 20, 20], 0.9, cat=1), det([50, 50, 20, 20], 0.8, cat=2)]
    r = evaluate_detections(gt, dets, max_dets=(1, 10, 100), ignore_rule=None)
    assert r["AR@1"] == 1.0


# ----------------------------------------------------------------------------- ignored regions

def test_toolkit_rule_half_inside_dropped_49_percent_kept():
    # dropObjectsInIgr.m pixel conventions: region [0,0,50,100] -> max(1, .) -> [1,1,50,100]
    # paints columns 1..51 (inclusive); a box [x, y, 100, 10] counts columns x+1..x+100.
    # x = 1: columns 2..51 covered = 50 of 100 -> 0.50 -> dropped;
    # x = 2: columns 3..51 covered = 49 of 100 -> 0.49 -> kept.
    regions = [[0, 0, 50, 100]]
    boxes = [[1, 10, 100, 10], [2, 10, 100, 10]]
    drop = ignored_box_mask(boxes, regions, rule="toolkit", width=200, height=100)
    assert drop.tolist() == [True, False]


def test_continuous_rule_half_inside_dropped_49_percent_kept():
    # exact geometry: region x in [0, 50]; box [0,10,100,10] has 50 % inside, [1,10,100,10] 49 %
    regions = [[0, 0, 50, 100]]
    boxes = [[0, 10, 100, 10], [1, 10, 100, 10]]
    for rule in ("union", "per_region"):
        assert ignored_box_mask(boxes, regions, rule=rule).tolist() == [True, False]


def test_ignored_gt_removed_from_evaluation():
    # gt 1 is half inside the region -> removed, so a detection of gt 2 alone gives AP 1;
    # with the rule off gt 1 is a miss (recall 1/2).
    gt = one_image_gt([[1, 10, 100, 10], [120, 50, 20, 20]], width=200, height=100, regions=[[0, 0, 50, 100]])
    dets = [det([120, 50, 20, 20], 0.9)]
    on = evaluate_detections(gt, dets)
    off = evaluate_detections(gt, dets, ignore_rule=None)
    assert on["AP"] == pytest.approx(1.0, abs=1e-12) and on["counts"]["gts_dropped_by_ignored_regions"] == 1
    assert off["AR@100"] == 0.5


def test_detection_inside_region_dropped_not_a_false_positive():
    # det at score .9 lies inside the region: dropped, so the TP at score .5 ranks first (AP 1).
    # With the rule off it is a false positive ranked above the TP (AP 0.5).
    gt = one_image_gt([[120, 50, 20, 20]], width=200, height=100, regions=[[0, 0, 50, 100]])
    dets = [det([10, 10, 20, 20], 0.9), det([120, 50, 20, 20], 0.5)]
    for rule in ("toolkit", "union", "per_region"):
        r = evaluate_detections(gt, dets, ignore_rule=rule)
        assert r["AP"] == pytest.approx(1.0, abs=1e-12) and r["counts"]["dets_dropped_by_ignored_regions"] == 1
    assert evaluate_detections(gt, dets, ignore_rule=None)["AP"] == pytest.approx(0.5)


def test_rule_uses_union_of_regions_like_the_toolkit():
    # box x in [10, 50]; region A covers [10, 20] of it, region B [40, 50]: 25 % each, 50 %
    # together. The toolkit paints all regions into one mask -> dropped; a per-region test
    # would keep it. (toolkit pixels: A cols 1..21, B cols 40..60, box cols 11..50 -> 22/40.)
    regions = [[0, 0, 20, 100], [40, 0, 20, 100]]
    box = [[10, 10, 40, 10]]
    assert ignored_box_mask(box, regions, rule="toolkit", width=100, height=100).tolist() == [True]
    assert ignored_box_mask(box, regions, rule="union").tolist() == [True]
    assert ignored_box_mask(box, regions, rule="per_region").tolist() == [False]


@pytest.mark.parametrize("rule", ["toolkit", "per_region"])
def test_rule_on_equals_pycocotools_on_prefiltered_inputs(rule):
    # the rule only removes boxes before matching: evaluating with it equals pycocotools on
    # ground truth and detections filtered beforehand with ignored_box_mask
    gt, dets = make_synthetic_scene(num_images=6, dets_per_image=400, seed=4)
    size = {im["id"]: (im["width"], im["height"], im["ignored_regions"]) for im in gt["images"]}

    def keep(items):
        return [x for x in items if not ignored_box_mask(
            [x["bbox"]], size[x["image_id"]][2], rule=rule, width=size[x["image_id"]][0],
            height=size[x["image_id"]][1])[0]]

    ours = evaluate_detections(gt, dets, ignore_rule=rule, max_dets=(1, 10, 1500))
    assert ours["counts"]["gts_dropped_by_ignored_regions"] > 0
    assert ours["counts"]["dets_dropped_by_ignored_regions"] > 0
    filtered_gt = dict(gt, annotations=keep(gt["annotations"]))
    ref = assert_agrees_with_pycocotools(filtered_gt, keep(dets), (1, 10, 1500))
    assert ours["stats"] == ref["stats"]


def _literal_toolkit(boxes, regions, W, H):
    """Direct transcription of dropObjectsInIgr.m: paint a mask, integral image, query."""
    mask = np.zeros((H + 1, W + 1))  # 1-based; row/col 0 unused
    for r in regions:
        x, y, w, h = np.maximum(1, np.asarray(r, dtype=np.int64))
        mask[y:min(H, y + h) + 1, x:min(W, x + w) + 1] = 1
    mask[0, :] = 0
    mask[:, 0] = 0
    I = mask.cumsum(0).cumsum(1)
    out = []
    for b in boxes:
        x, y, w, h = (int(v) for v in np.maximum(1, matlab_round(np.asarray(b))))
        x = max(1, min(W, x))
        y = max(1, min(H, y))
        tl, tr = I[y, x], I[y, min(W, x + w)]
        bl, br = I[max(1, min(H, y + h)), x], I[max(1, min(H, y + h)), min(W, x + w)]
        out.append((tl + br - tr - bl) / (h * w) >= 0.5)
    return np.array(out)


@pytest.mark.parametrize("seed", range(4))
def test_toolkit_rule_equals_literal_mask_implementation(seed):
    rng = np.random.default_rng(seed)
    W, H = int(rng.integers(20, 60)), int(rng.integers(20, 60))
    regions = np.stack([rng.integers(-5, W, 4), rng.integers(-5, H, 4),
                        rng.integers(0, 25, 4), rng.integers(0, 25, 4)], axis=1)
    boxes = np.stack([rng.uniform(-5, W + 3, 300), rng.uniform(-5, H + 3, 300),
                      rng.uniform(0, 30, 300), rng.uniform(0, 30, 300)], axis=1)
    boxes[:20] = np.round(boxes[:20] * 2) / 2  # exact .5 values: MATLAB rounding
    got = ignored_box_mask(boxes, regions, rule="toolkit", width=W, height=H)
    np.testing.assert_array_equal(got, _literal_toolkit(boxes, regions, W, H))


def test_matlab_round_half_away_from_zero():
    assert matlab_round(np.array([0.5, 1.5, 2.5, -0.5, 2.4999])).tolist() == [1, 2, 3, -1, 2]


# ----------------------------------------------------------------------------- empty and bad inputs

def test_no_detections():
    # convention (as pycocotools' arrays): a category with gts and no detections has
    # precision 0 and recall 0 -> AP 0; area ranges / categories without gts stay -1.
    gt = one_image_gt([[10, 10, 20, 20]])
    r = evaluate_detections(gt, [], ignore_rule=None)
    assert r["AP"] == r["AP50"] == r["AR@100"] == r["AP_s"] == 0.0
    assert r["AP_m"] == r["AP_l"] == -1.0
    assert r["per_class"]["b"]["AP"] == -1.0


def test_no_ground_truth_at_all():
    # nothing to recall -> every metric is -1 (pycocotools' value for "no gts")
    gt = one_image_gt([])
    r = evaluate_detections(gt, [det([1, 1, 5, 5], 0.5)], ignore_rule=None)
    assert all(v == -1.0 for v in r["stats"])
    assert evaluate_detections(gt, [], ignore_rule=None)["AP"] == -1.0


def test_negative_box_size_names_the_detection():
    gt = one_image_gt([[10, 10, 20, 20]])
    dets = [det([10, 10, 20, 20], 0.9)] * 3 + [det([0, 0, -1, 5], 0.3)]
    with pytest.raises(ValueError, match=r"detection 3: field 'bbox'.*negative"):
        evaluate_detections(gt, dets)


def test_unknown_image_id_names_the_detection():
    gt = one_image_gt([[10, 10, 20, 20]])
    with pytest.raises(ValueError, match=r"detection 1: field 'image_id' = 7"):
        evaluate_detections(gt, [det([10, 10, 20, 20], 0.9), det([1, 1, 2, 2], 0.1, image_id=7)])


def test_other_bad_inputs():
    gt = one_image_gt([[10, 10, 20, 20]])
    with pytest.raises(ValueError, match=r"detection 0: field 'category_id' = 5"):
        evaluate_detections(gt, [det([1, 1, 2, 2], 0.5, cat=5)])
    with pytest.raises(ValueError, match=r"detection 1: missing field 'score'"):
        evaluate_detections(gt, [det([1, 1, 2, 2], 0.5), {"image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]}])
    with pytest.raises(ValueError, match=r"detection 0: field 'score' is not finite"):
        evaluate_detections(gt, [det([1, 1, 2, 2], float("nan"))])
    bad_gt = one_image_gt([[10, 10, -2, 20]])
    with pytest.raises(ValueError, match=r"annotation 0: field 'bbox'.*negative"):
        CocoBoxEvaluator(bad_gt)
    no_size = one_image_gt([[10, 10, 2, 2]], regions=[[0, 0, 5, 5]])
    del no_size["images"][0]["width"]
    with pytest.raises(ValueError, match="width/height"):
        CocoBoxEvaluator(no_size)  # the toolkit rule needs the image size
    CocoBoxEvaluator(no_size, ignore_rule="union")  # the continuous rule does not


# ----------------------------------------------------------------------------- formats and output

def test_detection_formats_agree():
    gt, dets = random_scene(np.random.default_rng(5))
    ref = evaluate_detections(gt, dets, ignore_rule=None)["stats"]
    cat_ids = np.array([d["category_id"] for d in dets])
    arr = np.array([[d["image_id"], *d["bbox"], d["score"], d["category_id"]] for d in dets])
    as_dict = {"image_id": arr[:, 0].astype(int), "category_id": cat_ids, "bbox": arr[:, 1:5], "score": arr[:, 5]}
    assert evaluate_detections(gt, arr, ignore_rule=None)["stats"] == ref
    assert evaluate_detections(gt, as_dict, ignore_rule=None)["stats"] == ref


def test_write_metrics_json_next_to_checkpoint(tmp_path):
    gt = one_image_gt([[10, 10, 20, 20]])
    r = evaluate_detections(gt, [det([10, 10, 20, 20], 0.9)], max_dets=(1, 10, 1500))
    ckpt = tmp_path / "work_dirs" / "dino_ugs" / "epoch_12.pth"
    path = write_metrics_json(r, ckpt, extra={"epoch": 12})
    assert path == ckpt.parent / "metrics.json"
    data = json.loads(path.read_text())
    assert data["AP"] == pytest.approx(1.0, abs=1e-12) and data["AR@1500"] == 1.0 and data["epoch"] == 12
    assert data["checkpoint"] == str(ckpt) and data["per_class"]["a"]["AP"] == r["per_class"]["a"]["AP"]
    assert "maxDets=1500" in format_summary(r)
