"""The synthetic set's VOC and COCO copies (``ugs data synth-layouts``) read back through mmdet's
own ``VOCDataset`` and ``CocoDataset``: the same images, every object where the source has it,
boxes converted by hand here, and the kit's data check clean on both copies."""
import json

import pytest

from ugs.data.check import VOC_CLASSES, check_coco, check_voc
from ugs.data.layouts import COCO_CATEGORIES, VISDRONE_TO_COCO, VISDRONE_TO_VOC, write_layout_copies


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from ugs.data import make_synthetic_set

    root = tmp_path_factory.mktemp("layouts")
    make_synthetic_set(root, num_train=6, num_val=3, image_size=96, seed=2)
    reports = write_layout_copies(root)
    return root, reports


def _source(root, split):
    return json.loads((root / "annotations" / f"{split}.json").read_text())


def test_mappings_land_in_the_target_vocabularies():
    assert set(VISDRONE_TO_VOC.values()) <= set(VOC_CLASSES)
    assert set(VISDRONE_TO_COCO.values()) <= {n for _, n in COCO_CATEGORIES}
    assert len(COCO_CATEGORIES) == 80 and len({i for i, _ in COCO_CATEGORIES}) == 80


def test_every_object_is_accounted_for_and_the_checks_are_clean(synth):
    root, reports = synth
    # train -> VOC2007 trainval (first half, rounded up) + VOC2012 trainval (the rest), as VOC07+12
    for split, voc_lists, coco_split in (("train", ("VOC2007/trainval", "VOC2012/trainval"), "train2017"),
                                         ("val", ("VOC2007/test",), "val2017")):
        src = _source(root, split)
        n_obj, n_img = len(src["annotations"]), len(src["images"])
        n_ign = sum(len(im.get("ignored_regions") or []) for im in src["images"])
        heavy = sum(a["occlusion"] == 2 for a in src["annotations"])
        v = {k: sum(reports["voc"][lst].get(k, 0) for lst in voc_lists)
             for k in ("images", "objects", "kept", "difficult", "rejected: under one pixel",
                       "ignored regions not written")}
        assert v["images"] == n_img and v["objects"] == n_obj
        assert v["kept"] + v["difficult"] + v["rejected: under one pixel"] == n_obj
        assert v["difficult"] <= heavy
        assert v["ignored regions not written"] == n_ign
        c = reports["coco"][coco_split]
        assert c["images"] == n_img and c["objects"] == c["kept"] == n_obj
    stems = ["train_" + p.stem for p in sorted((root / "train" / "images").glob("*.jpg"))]
    listed = [(root / "VOCdevkit" / y / "ImageSets/Main/trainval.txt").read_text().split() for y in ("VOC2007", "VOC2012")]
    assert listed[0] + listed[1] == stems and len(listed[0]) == 3 and len(listed[1]) == 3   # 6 train images
    # the files as written, read back by the data check (another reader): the same counts per list,
    # so no list's files overwrote another's (VOC2007 holds trainval and test in one folder)
    voc, coco = check_voc(root / "VOCdevkit"), check_coco(root / "coco")
    assert voc["problems"] == 0 and coco["problems"] == 0
    for entry in voc["splits"]:
        written = reports["voc"][entry["split"]]
        assert entry["counts"]["images"] == written["images"], entry["split"]
        assert entry["counts"].get("difficult", 0) == written.get("difficult", 0), entry["split"]
        assert entry["counts"]["objects"] == written.get("kept", 0) + written.get("difficult", 0), entry["split"]
    assert sorted(e["split"] for e in voc["splits"]) == sorted(reports["voc"])
    for entry in coco["splits"]:
        assert entry["counts"]["objects"] == reports["coco"][entry["split"]]["kept"], entry["split"]


def test_mmdets_datasets_read_the_copies_back(synth):
    pytest.importorskip("mmdet")
    from mmdet.datasets import CocoDataset, VOCDataset
    from mmdet.utils import register_all_modules

    register_all_modules()
    root, _ = synth
    src = _source(root, "val")
    names = {c["id"]: c["name"] for c in src["categories"]}
    by_file = {im["file_name"]: [a for a in src["annotations"] if a["image_id"] == im["id"]] for im in src["images"]}

    coco = CocoDataset(data_root=str(root / "coco"), ann_file="annotations/instances_val2017.json",
                       data_prefix=dict(img="val2017/"), test_mode=True, pipeline=[])
    coco_classes = list(coco.metainfo["classes"])
    assert len(coco) == len(src["images"])
    for i in range(len(coco)):
        info = coco.get_data_info(i)
        want = by_file[info["img_path"].split("/")[-1]]
        got = sorted((tuple(round(v, 3) for v in ins["bbox"]), coco_classes[ins["bbox_label"]]) for ins in info["instances"])
        # COCO's xywh -> mmdet's xyxy, the class renamed by the mapping
        exp = sorted((tuple(round(v, 3) for v in (x, y, x + w, y + h)), VISDRONE_TO_COCO[names[a["category_id"]]])
                     for a in want for x, y, w, h in [a["bbox"]])
        assert got == exp

    voc = VOCDataset(data_root=str(root / "VOCdevkit"), ann_file="VOC2007/ImageSets/Main/test.txt",
                     data_prefix=dict(sub_data_root="VOC2007/"), test_mode=True, pipeline=[])
    assert len(voc) == len(src["images"])
    for i in range(len(voc)):
        info = voc.get_data_info(i)
        want = by_file[info["img_path"].split("/")[-1].removeprefix("val_")]
        got = sorted((tuple(ins["bbox"]), VOC_CLASSES[ins["bbox_label"]], ins["ignore_flag"]) for ins in info["instances"])
        # xmin = round(x) + 1, xmax = round(x + w) written; mmdet subtracts 1 from all four;
        # difficult (heavy occlusion) comes back as ignore_flag 1
        exp = sorted(((round(x), round(y), round(x + w) - 1, round(y + h) - 1), VISDRONE_TO_VOC[names[a["category_id"]]],
                      int(a["occlusion"] == 2))
                     for a in want for x, y, w, h in [a["bbox"]] if round(x + w) >= round(x) + 1 and round(y + h) >= round(y) + 1)
        assert got == exp
