"""``SODAAMetric`` (``ugs.rotated.metric``): an mmrotate model's crop predictions scored on the
original images as the SODA authors score them.

A tiny synthetic SODA-A split is made with the kit's own commands (``ugs data synth-soda-a``,
``ugs data crop``) and read back through ``SODAACropDataset`` and mmrotate's pipeline (so each
data sample carries ``crop_offset`` and ``source`` as in a real run):

* the crops' ground truth as predictions (score 1) gives AP 1 in every range that has objects
  (counted here from the converted JSON's areas) and -1 in a range without any;
* for noisy predictions (jittered, some dropped, false positives, random scores) the metric's
  numbers are exactly those of ``ugs eval soda-a ANN DETS --merge`` on the detections file it
  wrote, and strictly between 0 and 1;
* each wrong input stops with a message that names it.
"""
import copy
import json

import numpy as np
import pytest

pytest.importorskip("mmrotate")
import ugs.openmmlab.compat  # noqa: E402,F401  (mmrotate on Python >= 3.10)
import torch  # noqa: E402

from ugs.cli import main as ugs_main  # noqa: E402

KEYS = ("AP", "AP50", "AP75", "AP_eS", "AP_rS", "AP_gS", "AP_N")
#: SODA-A's ranges by w * h of the rotated box (closed), written out here, not imported
RANGES = {"AP": (0, 32 ** 2), "AP_eS": (0, 12 ** 2), "AP_rS": (12 ** 2, 20 ** 2), "AP_gS": (20 ** 2, 32 ** 2),
          "AP_N": (32 ** 2, 40 * 50)}


@pytest.fixture(scope="module")
def soda(tmp_path_factory):
    """The split (2 images -> 8 crops), its converted JSON and the crops as mmrotate samples."""
    from mmengine.registry import DefaultScope
    from mmrotate.registry import DATASETS
    from mmrotate.utils import register_all_modules

    import ugs.rotated.datasets  # noqa: F401  (registers SODAACropDataset)

    root = tmp_path_factory.mktemp("soda_metric")
    assert ugs_main(["data", "synth-soda-a", str(root / "synth"), "--num-train", "0", "--num-val", "2",
                     "--num-test", "0", "--seed", "3"]) == 0
    ann = root / "synth" / "converted" / "val.json"
    assert ugs_main(["data", "crop", str(ann), str(root / "crops"), "--images", str(root / "synth" / "val" / "Images")]) == 0
    index = json.loads((root / "crops" / "crops.json").read_text())
    assert index["objects_in_no_crop"] == []     # so the crops' ground truth covers every object

    register_all_modules(init_default_scope=False)
    pipeline = [dict(type="mmdet.LoadImageFromFile"),
                dict(type="mmdet.LoadAnnotations", with_bbox=True, box_type="qbox"),
                dict(type="ConvertBoxType", box_type_mapping=dict(gt_bboxes="rbox")),
                dict(type="mmdet.PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", "img_shape",
                                                            "crop_offset", "source"))]
    with DefaultScope.overwrite_default_scope("mmrotate"):
        ds = DATASETS.build(dict(type="SODAACropDataset", data_root=str(root / "crops"), ann_file="annfiles/",
                                 data_prefix=dict(img_path="images/"), pipeline=pipeline, test_mode=True))
    samples = [ds[i]["data_samples"] for i in range(len(ds))]
    assert len(samples) == len(index["crops"]) == 8
    return dict(root=root, ann=ann, doc=json.loads(ann.read_text()), samples=samples, meta=ds.metainfo)


def make_metric(ann_file, **kw):
    from mmengine.registry import DefaultScope
    from mmrotate.registry import METRICS

    import ugs.rotated.metric  # noqa: F401  (registers SODAAMetric)

    # in mmrotate's scope, whatever scope an earlier test of the session left as the default
    with DefaultScope.overwrite_default_scope("mmrotate"):
        return METRICS.build(dict(type="SODAAMetric", ann_file=str(ann_file), progress=False, **kw))


def with_predictions(sample, bboxes, scores, labels):
    from mmengine.structures import InstanceData

    s = copy.deepcopy(sample)
    s.pred_instances = InstanceData(bboxes=bboxes, scores=torch.as_tensor(scores, dtype=torch.float32),
                                    labels=torch.as_tensor(labels, dtype=torch.int64))
    return s.to_dict()          # what mmengine's Evaluator hands a metric


def evaluate(metric, meta, samples):
    metric.dataset_meta = meta
    for s in samples:
        metric.process({}, [s])
    return metric.evaluate(len(samples))


def perfect(samples):
    """Each crop's ground truth (mmrotate's RotatedBoxes) as its predictions, score 1."""
    return [with_predictions(s, s.gt_instances.bboxes, np.ones(len(s.gt_instances)), s.gt_instances.labels)
            for s in samples]


def expected_perfect(annotations):
    """100 where a range has ground truth, -100 (the evaluator's -1 as a percentage) where none."""
    area = np.array([a["rbox"][2] * a["rbox"][3] for a in annotations])
    out = {}
    for key in KEYS:
        lo, hi = RANGES.get(key, RANGES["AP"])
        out[key] = 100.0 if ((area >= lo) & (area <= hi)).any() else -100.0
    return out


def test_the_ground_truth_as_predictions_scores_1_in_every_range(soda, tmp_path):
    want = expected_perfect(soda["doc"]["annotations"])
    assert all(v == 100.0 for v in want.values())    # this seed has objects in every range
    got = evaluate(make_metric(soda["ann"], outfile_dir=str(tmp_path)), soda["meta"], perfect(soda["samples"]))
    assert got == {f"soda_a/{k}": v for k, v in want.items()}
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert {k: round(100 * written[k], 2) for k in KEYS} == want     # the bare keys, as fractions
    n_crop_objects = sum(len(s.gt_instances) for s in soda["samples"])
    assert written["num_detections"] == n_crop_objects > written["merged_to"] == len(soda["doc"]["annotations"])


def test_a_range_without_ground_truth_is_minus_1(soda, tmp_path):
    """The objects over 32^2 px removed from the annotations: AP_N has nothing to score (-1);
    their predictions are outside every other range, so those stay at 1."""
    doc = copy.deepcopy(soda["doc"])
    area = np.array([a["rbox"][2] * a["rbox"][3] for a in doc["annotations"]])
    # no prediction can cross the edge: the crops' annfiles round to 0.01 px, which changes the
    # area of a box near 32 x 32 by about 0.03 %
    assert not ((area > 0.998 * 1024) & (area < 1.002 * 1024)).any()
    doc["annotations"] = [a for a, s in zip(doc["annotations"], area) if s <= 1024]
    ann = tmp_path / "small_only.json"
    ann.write_text(json.dumps(doc))
    want = expected_perfect(doc["annotations"])
    assert want["AP_N"] == -100.0 and want["AP"] == 100.0
    got = evaluate(make_metric(ann, prefix="sodaa"), soda["meta"], perfect(soda["samples"]))
    assert got == {f"sodaa/{k}": v for k, v in want.items()}


def noisy(samples, seed=0):
    """Ground truth jittered (centre, size, angle), 20 % dropped, a few labels wrong, 4 false
    positives per crop, random scores; (N, 5) tensors, as a model's raw output."""
    rng = np.random.default_rng(seed)
    out = []
    for s in samples:
        box = s.gt_instances.bboxes.tensor.numpy().astype(np.float64)
        labels = s.gt_instances.labels.numpy().copy()
        keep = rng.random(len(box)) > 0.2
        box, labels = box[keep], labels[keep]
        box[:, :2] += rng.normal(0, 0.08, (len(box), 2)) * box[:, 2:4]
        box[:, 2:4] *= rng.uniform(0.85, 1.15, (len(box), 2))
        box[:, 4] += rng.normal(0, 0.05, len(box))
        wrong = rng.random(len(box)) < 0.05
        labels[wrong] = (labels[wrong] + 1) % 9
        fp = np.column_stack([rng.uniform(0, 800, (4, 2)), rng.uniform(4, 30, (4, 2)), rng.uniform(-1.5, 1.5, 4)])
        box = np.concatenate([box, fp])
        labels = np.concatenate([labels, rng.integers(0, 9, 4)])
        out.append(with_predictions(s, torch.as_tensor(box, dtype=torch.float32), rng.uniform(0.05, 1.0, len(box)),
                                    labels))
    return out


def test_noisy_predictions_give_the_numbers_of_ugs_eval_soda_a_merge(soda, tmp_path):
    got = evaluate(make_metric(soda["ann"], outfile_dir=str(tmp_path / "work")), soda["meta"], noisy(soda["samples"]))
    dets = tmp_path / "work" / "soda_a_crop_detections.json"
    assert dets.is_file()
    assert ugs_main(["eval", "soda-a", str(soda["ann"]), str(dets), "--merge", "--out", str(tmp_path / "cli.json")]) == 0
    cli = json.loads((tmp_path / "cli.json").read_text())
    mine = json.loads((tmp_path / "work" / "metrics.json").read_text())
    for k in KEYS + ("AR",):
        assert mine[k] == cli[k], k                               # exactly the same numbers
    assert mine["per_class"] == cli["per_class"]
    assert got == {f"soda_a/{k}": round(100 * cli[k], 2) for k in KEYS}
    for k in KEYS:
        assert 0.0 < cli[k] < 1.0, (k, cli[k])


def test_whole_images_without_merge(soda, tmp_path):
    """``merge=False``: each sample is a whole image of the annotations (found by its file
    name); its ground truth as predictions scores 1, as ``ugs eval soda-a`` without --merge."""
    doc = soda["doc"]
    samples = []
    for im in doc["images"]:
        anns = [a for a in doc["annotations"] if a["image_id"] == im["id"]]
        box = torch.tensor([a["rbox"] for a in anns], dtype=torch.float64)
        samples.append(dict(img_id=im["id"], img_path=f"/data/Images/{im['file_name']}",
                            pred_instances=dict(bboxes=box, scores=torch.ones(len(anns)),
                                                labels=torch.tensor([a["category_id"] for a in anns]))))
    got = evaluate(make_metric(soda["ann"], merge=False, outfile_dir=str(tmp_path)), soda["meta"], samples)
    assert got == {f"soda_a/{k}": v for k, v in expected_perfect(doc["annotations"]).items()}
    assert ugs_main(["eval", "soda-a", str(soda["ann"]), str(tmp_path / "soda_a_detections.json"),
                     "--out", str(tmp_path / "cli.json")]) == 0
    assert {k: round(100 * v, 2) for k, v in json.loads((tmp_path / "cli.json").read_text()).items()
            if k in KEYS} == {k: v for k, v in expected_perfect(doc["annotations"]).items()}


# ---------------------------------------------------------------------------------- errors

def test_a_missing_ann_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.json"):
        make_metric(tmp_path / "nowhere.json")


@pytest.mark.parametrize("key", ["crop_offset", "source"])
def test_a_sample_without_its_crop_metainfo_is_named(soda, key):
    s = perfect(soda["samples"][:1])[0]
    del s[key]
    metric = make_metric(soda["ann"])
    with pytest.raises(ValueError, match=rf"has no '{key}'.*meta_keys"):
        metric.process({}, [s])


def test_an_offset_that_contradicts_the_crop_name_is_named(soda):
    s = perfect(soda["samples"][:1])[0]
    s["crop_offset"] = (s["crop_offset"][0] + 1, s["crop_offset"][1])
    with pytest.raises(ValueError, match=rf"{s['img_id']}.*crop_offset"):
        make_metric(soda["ann"]).process({}, [s])


def test_a_source_image_not_in_the_annotations_is_named(soda, tmp_path):
    doc = copy.deepcopy(soda["doc"])
    gone = doc["images"].pop()
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] != gone["id"]]
    ann = tmp_path / "one_image.json"
    ann.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=rf"source image '{gone['file_name']}' of crop .* is not an image of "
                                         rf".*one_image.json"):
        evaluate(make_metric(ann), soda["meta"], perfect(soda["samples"]))


def test_crops_evaluated_as_images_are_not_dropped(soda):
    """``merge=False`` on crops: their names are no images of the annotations -> an error, not
    detections silently left out."""
    with pytest.raises(ValueError, match=r"image '.*__800__.*' is not an image of .*val.json.*merge=True"):
        evaluate(make_metric(soda["ann"], merge=False), soda["meta"], perfect(soda["samples"]))


def test_a_crop_evaluated_twice_is_named(soda):
    samples = perfect(soda["samples"])
    with pytest.raises(ValueError, match=rf"{samples[0]['img_id']}' was evaluated twice"):
        evaluate(make_metric(soda["ann"]), soda["meta"], samples + samples[:1])
