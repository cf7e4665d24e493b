"""``CocoBoxMetric`` (Table 4's COCO evaluator: the kit's numpy evaluator behind mmengine's metric
interface) against pycocotools' ``COCOeval`` on the same detections: random COCO-format ground
truth with crowd boxes, objects of all three sizes, images without objects, a category without
objects, and more than 100 detections on some images (COCO's maxDets cut)."""
import contextlib
import copy
import io
import json

import numpy as np
import pytest

pytest.importorskip("mmdet")
pycocotools = pytest.importorskip("pycocotools")
import torch  # noqa: E402
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402

CATEGORIES = [dict(id=1, name="person"), dict(id=3, name="car"), dict(id=8, name="truck"), dict(id=90, name="toothbrush")]


def _fixture(seed):
    rng = np.random.default_rng(seed)
    images, anns, dets = [], [], []
    for img_id in range(1, 9):
        images.append(dict(id=img_id, file_name=f"{img_id:012d}.jpg", width=640, height=480))
        n = 0 if img_id == 5 else int(rng.integers(1, 12))
        for _ in range(n):
            side = float(rng.choice([8.0, 20.0, 50.0, 150.0])) * float(rng.uniform(0.7, 1.3))
            w, h = side, side * float(rng.uniform(0.5, 2.0))
            x, y = float(rng.uniform(0, 640 - w)), float(rng.uniform(0, 480 - h))
            cat = int(rng.choice([1, 3, 8]))                     # 90 has no ground truth
            crowd = int(rng.random() < 0.1)
            anns.append(dict(id=len(anns) + 1, image_id=img_id, category_id=cat, bbox=[x, y, w, h],
                             area=w * h * float(rng.uniform(0.6, 1.0)), iscrowd=crowd))
            for _ in range(int(rng.integers(0, 3))):            # jittered hits, some of the wrong class
                j = rng.normal(0, 0.15 * side, 4)
                dets.append(dict(image_id=img_id, category_id=cat if rng.random() < 0.8 else 1,
                                 bbox=[x + j[0], y + j[1], max(1.0, w + j[2]), max(1.0, h + j[3])],
                                 score=float(rng.random())))
        crowded = img_id in (2, 6)              # 150 background detections of one class: > maxDets 100
        for _ in range(150 if crowded else int(rng.integers(0, 6))):
            w, h = float(rng.uniform(4, 200)), float(rng.uniform(4, 200))
            dets.append(dict(image_id=img_id, category_id=1 if crowded else int(rng.choice([1, 3, 8, 90])),
                             bbox=[float(rng.uniform(0, 600)), float(rng.uniform(0, 440)), w, h],
                             score=float(rng.random())))
    gt = dict(images=images, annotations=anns, categories=CATEGORIES)
    return gt, dets


def _pycocotools_stats(gt, dets):
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(copy.deepcopy(dets)), "bbox")   # maxDets [1, 10, 100]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return dict(zip(("AP", "AP50", "AP75", "AP_s", "AP_m", "AP_l"), ev.stats[:6]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coco_box_metric_agrees_with_pycocotools(tmp_path, seed):
    from ugs.openmmlab.metric import CocoBoxMetric

    gt, dets = _fixture(seed)
    assert sum(a["iscrowd"] for a in gt["annotations"]) > 0
    path = tmp_path / "instances_val2017.json"
    path.write_text(json.dumps(gt))
    metric = CocoBoxMetric(ann_file=str(path), outfile_dir=str(tmp_path))
    # the data set's label order differs from the category ids: labels are mapped by name
    classes = ("truck", "person", "toothbrush", "car")
    metric.dataset_meta = dict(classes=classes)
    label = {next(c["id"] for c in CATEGORIES if c["name"] == n): i for i, n in enumerate(classes)}
    samples = []
    for im in gt["images"]:
        mine = [d for d in dets if d["image_id"] == im["id"]]
        xyxy = [[d["bbox"][0], d["bbox"][1], d["bbox"][0] + d["bbox"][2], d["bbox"][1] + d["bbox"][3]] for d in mine]
        samples.append(dict(img_id=im["id"], pred_instances=dict(
            bboxes=torch.tensor(xyxy, dtype=torch.float32).reshape(-1, 4),
            scores=torch.tensor([d["score"] for d in mine], dtype=torch.float32),
            labels=torch.tensor([label[d["category_id"]] for d in mine], dtype=torch.int64))))
    metric.process({}, samples)
    out = metric.compute_metrics(metric.results)
    # the reference sees what the metric saw: boxes through float32, as the detector gives them
    seen = []
    for s in samples:
        p = s["pred_instances"]
        for b, sc, lb in zip(p["bboxes"].double().numpy(), p["scores"].numpy(), p["labels"].numpy()):
            seen.append(dict(image_id=s["img_id"], category_id=next(c["id"] for c in CATEGORIES if c["name"] == classes[lb]),
                             bbox=[b[0], b[1], b[2] - b[0], b[3] - b[1]], score=float(sc)))
    ref = _pycocotools_stats(gt, seen)
    assert 0 < ref["AP"] < 1
    for k, v in ref.items():
        assert out[k] == pytest.approx(round(100 * v, 2), abs=1e-9), k
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["AP"] == pytest.approx(ref["AP"], abs=1e-12)
    assert saved["num_detections"] == len(seen)


def test_coco_box_metric_is_registered_and_names_a_missing_file(tmp_path):
    from mmdet.registry import METRICS

    import ugs.openmmlab.runtime  # noqa: F401

    with pytest.raises(FileNotFoundError, match="instances_val2017.json"):
        METRICS.build(dict(type="CocoBoxMetric", ann_file=str(tmp_path / "instances_val2017.json")))
