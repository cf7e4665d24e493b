"""The VOC metric Table 4's VOC configs use (mmdet's ``VOCMetric``: mAP at IoU 0.5, the VOC2007
11-point interpolation, ``difficult`` objects ignored, VOC's legacy "+1" pixel coordinates;
``eval_mode="area"`` available) against an independent implementation written here after the
PASCAL VOC devkit's procedure, on randomized fixtures."""
import numpy as np
import pytest

pytest.importorskip("mmdet")
import torch  # noqa: E402
from mmdet.evaluation.functional import eval_map  # noqa: E402
from mmdet.evaluation.metrics import VOCMetric  # noqa: E402


def devkit_ap(gts, dets, num_classes, mode="11points", thr=0.5):
    """mAP as the VOC devkit computes it, class by class with explicit loops.

    gts: per image a list of (class, [x1, y1, x2, y2], difficult); dets: a list of
    (image, class, [x1, y1, x2, y2], score). Boxes are inclusive pixel boxes (width x2 - x1 + 1).
    A class without a non-difficult object is left out of the mean (mmdet's convention)."""
    def iou(a, b):
        iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
        ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
        if iw <= 0 or ih <= 0:
            return 0.0
        inter = iw * ih
        area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
        return inter / (area(a) + area(b) - inter)

    aps = []
    for c in range(num_classes):
        objs = {i: [(box, d) for cls, box, d in g if cls == c] for i, g in enumerate(gts)}
        used = {i: [False] * len(o) for i, o in objs.items()}
        npos = sum(1 for o in objs.values() for _, d in o if not d)
        if npos == 0:
            continue
        cdets = sorted([d for d in dets if d[1] == c], key=lambda d: -d[3])
        tp, fp = [], []
        for img, _, box, _ in cdets:
            best, best_j = -1.0, -1
            for j, (g, _) in enumerate(objs[img]):
                o = iou(box, g)
                if o > best:
                    best, best_j = o, j
            if best >= thr:
                if objs[img][best_j][1]:                  # difficult: neither TP nor FP
                    continue
                if not used[img][best_j]:
                    used[img][best_j] = True
                    tp.append(1), fp.append(0)
                else:                                     # a second detection of the same object
                    tp.append(0), fp.append(1)
            else:
                tp.append(0), fp.append(1)
        ctp, cfp = np.cumsum(tp), np.cumsum(fp)
        rec = ctp / npos
        prec = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps)
        if mode == "11points":
            ap = sum(max([p for r, p in zip(rec, prec) if r >= t], default=0.0) for t in np.linspace(0, 1, 11)) / 11
        else:                                             # area under the monotone envelope
            mrec = [0.0, *rec, 1.0]
            mpre = [0.0, *prec, 0.0]
            for i in range(len(mpre) - 2, -1, -1):
                mpre[i] = max(mpre[i], mpre[i + 1])
            ap = sum((mrec[i + 1] - mrec[i]) * mpre[i + 1] for i in range(len(mrec) - 1) if mrec[i + 1] != mrec[i])
        aps.append(ap)
    return float(np.mean(aps))


def fixture(seed, num_images=25, num_classes=4):
    rng = np.random.default_rng(seed)
    gts, dets = [], []
    for i in range(num_images):
        g = []
        for _ in range(rng.integers(0, 6)):
            x, y = rng.integers(0, 300, 2)
            w, h = rng.integers(4, 120, 2)
            g.append((int(rng.integers(0, num_classes)), [int(x), int(y), int(x + w), int(y + h)], bool(rng.random() < 0.2)))
        gts.append(g)
        for cls, box, _ in g:                             # jittered hits, sometimes twice
            for _ in range(rng.integers(0, 3)):
                j = rng.normal(0, 6, 4)
                dets.append((i, cls, [float(v + dv) for v, dv in zip(box, j)], float(rng.random())))
        for _ in range(rng.integers(0, 4)):               # false positives
            x, y = rng.uniform(0, 300, 2)
            w, h = rng.uniform(4, 100, 2)
            dets.append((i, int(rng.integers(0, num_classes)), [x, y, x + w, y + h], float(rng.random())))
    return gts, dets


def mmdet_inputs(gts, dets, num_classes):
    results, anns = [], []
    for i, g in enumerate(gts):
        per_class = []
        for c in range(num_classes):
            d = [b + [s] for img, cls, b, s in dets if img == i and cls == c]
            per_class.append(np.array(d, dtype=np.float32).reshape(-1, 5))
        results.append(per_class)
        keep = [(c, b) for c, b, d in g if not d]
        ign = [(c, b) for c, b, d in g if d]
        anns.append(dict(bboxes=np.array([b for _, b in keep], dtype=np.float32).reshape(-1, 4),
                         labels=np.array([c for c, _ in keep], dtype=np.int64),
                         bboxes_ignore=np.array([b for _, b in ign], dtype=np.float32).reshape(-1, 4),
                         labels_ignore=np.array([c for c, _ in ign], dtype=np.int64)))
    return results, anns


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("mode", ["11points", "area"])
def test_mmdets_voc_map_equals_the_devkit_procedure(seed, mode):
    gts, dets = fixture(seed)
    want = devkit_ap(gts, dets, 4, mode)
    results, anns = mmdet_inputs(gts, dets, 4)
    got, _ = eval_map(results, anns, iou_thr=0.5, eval_mode=mode, use_legacy_coordinate=True, nproc=1,
                      logger="silent")
    assert 0.05 < want < 0.999                            # a fixture that can tell methods apart
    assert got == pytest.approx(want, abs=2e-6)


def test_difficult_objects_and_the_11_point_interpolation_by_hand():
    # one class, one image: two objects, one difficult; detections (score order): a hit on the
    # difficult one (ignored), a hit on the other (TP), a miss (FP). Recall 1 at precision 1,
    # so all 11 points are 1 -> AP 1.0; without the difficult flag: recall 0.5 at precision 1
    # (points 0 .. 0.5: six of 11), recall 1 at 2/3 (points 0.6 .. 1: five) -> (6 + 5 * 2/3) / 11
    gts = [[(0, [0, 0, 9, 9], True), (0, [50, 50, 69, 69], False)]]
    dets = [(0, 0, [0, 0, 9, 9], 0.9), (0, 0, [50, 50, 69, 69], 0.8), (0, 0, [200, 200, 220, 220], 0.7)]
    assert devkit_ap(gts, dets, 1) == pytest.approx(1.0)
    results, anns = mmdet_inputs(gts, dets, 1)
    assert eval_map(results, anns, iou_thr=0.5, eval_mode="11points", use_legacy_coordinate=True, nproc=1,
                    logger="silent")[0] == pytest.approx(1.0)
    gts = [[(0, [0, 0, 9, 9], False), (0, [50, 50, 69, 69], False)]]
    dets = [(0, 0, [50, 50, 69, 69], 0.9), (0, 0, [200, 200, 220, 220], 0.8), (0, 0, [0, 0, 9, 9], 0.7)]
    results, anns = mmdet_inputs(gts, dets, 1)
    assert eval_map(results, anns, iou_thr=0.5, eval_mode="11points", use_legacy_coordinate=True, nproc=1,
                    logger="silent")[0] == pytest.approx((6 + 5 * 2 / 3) / 11, abs=1e-6)


def test_the_metric_class_the_configs_use_gives_the_same_map():
    gts, dets = fixture(11, num_images=12, num_classes=3)
    metric = VOCMetric(metric="mAP", eval_mode="11points", iou_thrs=0.5)
    metric.dataset_meta = dict(classes=("a", "b", "c"), dataset_type="VOC2007")
    samples = []
    for i, g in enumerate(gts):
        keep = [(c, b) for c, b, d in g if not d]
        ign = [(c, b) for c, b, d in g if d]
        mine = [d for d in dets if d[0] == i]
        samples.append(dict(
            gt_instances=dict(labels=torch.tensor([c for c, _ in keep], dtype=torch.long),
                              bboxes=torch.tensor([b for _, b in keep], dtype=torch.float32).reshape(-1, 4)),
            ignored_instances=dict(labels=torch.tensor([c for c, _ in ign], dtype=torch.long),
                                   bboxes=torch.tensor([b for _, b in ign], dtype=torch.float32).reshape(-1, 4)),
            pred_instances=dict(bboxes=torch.tensor([d[2] for d in mine], dtype=torch.float32).reshape(-1, 4),
                                scores=torch.tensor([d[3] for d in mine], dtype=torch.float32),
                                labels=torch.tensor([d[1] for d in mine], dtype=torch.long))))
    metric.process({}, samples)
    out = metric.compute_metrics(metric.results)
    assert out["mAP"] == pytest.approx(devkit_ap(gts, dets, 3), abs=1e-3)     # mmdet rounds to 3 digits
