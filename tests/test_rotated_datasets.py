"""SODA-A's crops through mmrotate (``ugs.rotated.datasets.SODAACropDataset``): every object of
the crops comes back through mmrotate's own loading pipeline as the rotated box the converter
gave it (shifted into the crop), in a fixed order, with the crop's offset; bad lines are named."""
import json

import numpy as np
import pytest

pytest.importorskip("mmrotate")
import ugs.openmmlab.compat  # noqa: E402,F401  (mmrotate on Python >= 3.10)

from ugs.data.soda_a import convert_soda_a, rbox_to_poly  # noqa: E402
from ugs.data.soda_a_crops import crop_soda_a  # noqa: E402
from ugs.data.synthetic_soda_a import generate_synthetic_soda_a  # noqa: E402


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    root = tmp_path_factory.mktemp("soda")
    generate_synthetic_soda_a(root, splits={"val": 2}, seed=6)
    doc = convert_soda_a(root / "val", root / "val.json")
    crop_soda_a(root / "val.json", root / "val" / "Images", root / "crops")
    return root, doc


def build(root, **kw):
    from mmengine.registry import DefaultScope
    from mmrotate.registry import DATASETS
    from mmrotate.utils import register_all_modules

    import ugs.rotated.datasets  # noqa: F401  (registers SODAACropDataset)

    register_all_modules(init_default_scope=False)
    pipeline = [dict(type="mmdet.LoadImageFromFile"),
                dict(type="mmdet.LoadAnnotations", with_bbox=True, box_type="qbox"),
                dict(type="ConvertBoxType", box_type_mapping=dict(gt_bboxes="rbox"))]
    with DefaultScope.overwrite_default_scope("mmrotate"):      # only while building: later tests keep theirs
        return DATASETS.build(dict(type="SODAACropDataset", data_root=str(root / "crops"), ann_file="annfiles/",
                                   data_prefix=dict(img_path="images/"), pipeline=pipeline, **kw))


def test_objects_come_back_as_the_converters_boxes(crops):
    root, doc = crops
    ds = build(root)
    index = json.loads((root / "crops" / "crops.json").read_text())["crops"]
    assert len(ds) == len(index) and [ds.get_data_info(i)["img_id"] for i in range(len(ds))] == \
        sorted(c["name"] for c in index)
    assert sum(len(ds.get_data_info(i)["instances"]) for i in range(len(ds))) == sum(c["objects"] for c in index)
    sample = ds[0]
    info = ds.get_data_info(0)
    x, y = info["crop_offset"]
    assert sample["img"].shape == (800, 800, 3)
    got = sample["gt_bboxes"].tensor.numpy()
    source_id = next(im["id"] for im in doc["images"] if im["file_name"] == info["source"])
    want = np.array([a["rbox"] for a in doc["annotations"] if a["image_id"] == source_id])
    labels = [a["category_id"] for a in doc["annotations"] if a["image_id"] == source_id]
    assert len(got) > 0
    for box, label in zip(got, sample["gt_bboxes_labels"].tolist()):
        # the same rectangle: mmrotate's qbox -> rbox keeps OpenCV's convention (w and h may be
        # swapped against le90), so compare the four corners as sets
        corners = rbox_to_poly(box) + (x, y)
        dist = [np.abs(rbox_to_poly(w)[:, None, :] - corners[None]).sum(-1).min(1).max() for w in want]
        k = int(np.argmin(dist))
        assert dist[k] < 1e-2 and labels[k] == label


def test_a_bad_line_is_named(crops):
    root, _ = crops
    first = sorted((root / "crops" / "annfiles").glob("*.txt"))[0]
    lines = first.read_text().splitlines()
    first.write_text("\n".join([lines[0], lines[1].replace(lines[1].split()[8], "tractor")] + lines[2:]) + "\n")
    with pytest.raises(ValueError, match=rf"{first.name}, line 2: expected .* got '.*tractor 0'"):
        build(root)
    first.write_text("\n".join(lines) + "\n")
