"""The kit's synthetic set written again in the PASCAL VOC and COCO 2017 layouts (same scenes,
same images), so the quick profile of Table 4 goes through mmdet's own ``VOCDataset`` and
``CocoDataset`` exactly as the paper profile does.

    ugs data synth-layouts data/synthetic        # -> data/synthetic/VOCdevkit/, data/synthetic/coco/

Source: the synthetic set's converted COCO JSON (``annotations/{train,val}.json``, VisDrone's
10 classes). ``train`` becomes COCO ``train2017`` and, as the VOC07+12 recipe reads two years,
VOC2007 ``trainval`` (its first half, rounded up) plus VOC2012 ``trainval`` (the rest); ``val``
becomes VOC2007 ``test`` / COCO ``val2017``. Decisions (the data sets have other vocabularies and no ignored
regions):

* **Classes**, VisDrone -> COCO: pedestrian, people -> person; bicycle; car, van -> car; truck;
  bus; tricycle, awning-tricycle, motor -> motorcycle. VisDrone -> VOC: the same, with truck ->
  car (VOC has no truck) and motorcycle named motorbike. The COCO JSON lists all 80 COCO
  categories with their official ids (mmdet maps labels by name, and a missing name would shift
  every label after it); the VOC classes are mmdet's 20.
* **difficult** (VOC): VisDrone's heavy occlusion (occlusion level 2, 50-100 % occluded); the
  VOC metric ignores these objects. **truncated**: VisDrone truncation > 0.
* **Ignored regions** have no place in either format: they are not written, and counted.

Every object is accounted for in the returned report. Images are hard-linked when the file
system allows it (copied otherwise).
"""
from __future__ import annotations

import collections
import json
import os
import shutil
from pathlib import Path
from typing import Dict
from xml.sax.saxutils import escape

__all__ = ["COCO_CATEGORIES", "VISDRONE_TO_COCO", "VISDRONE_TO_VOC", "write_voc_copy", "write_coco_copy",
           "write_layout_copies"]

#: COCO 2017's 80 categories with their official ids
COCO_CATEGORIES = (
    (1, "person"), (2, "bicycle"), (3, "car"), (4, "motorcycle"), (5, "airplane"), (6, "bus"), (7, "train"),
    (8, "truck"), (9, "boat"), (10, "traffic light"), (11, "fire hydrant"), (13, "stop sign"),
    (14, "parking meter"), (15, "bench"), (16, "bird"), (17, "cat"), (18, "dog"), (19, "horse"), (20, "sheep"),
    (21, "cow"), (22, "elephant"), (23, "bear"), (24, "zebra"), (25, "giraffe"), (27, "backpack"),
    (28, "umbrella"), (31, "handbag"), (32, "tie"), (33, "suitcase"), (34, "frisbee"), (35, "skis"),
    (36, "snowboard"), (37, "sports ball"), (38, "kite"), (39, "baseball bat"), (40, "baseball glove"),
    (41, "skateboard"), (42, "surfboard"), (43, "tennis racket"), (44, "bottle"), (46, "wine glass"),
    (47, "cup"), (48, "fork"), (49, "knife"), (50, "spoon"), (51, "bowl"), (52, "banana"), (53, "apple"),
    (54, "sandwich"), (55, "orange"), (56, "broccoli"), (57, "carrot"), (58, "hot dog"), (59, "pizza"),
    (60, "donut"), (61, "cake"), (62, "chair"), (63, "couch"), (64, "potted plant"), (65, "bed"),
    (67, "dining table"), (70, "toilet"), (72, "tv"), (73, "laptop"), (74, "mouse"), (75, "remote"),
    (76, "keyboard"), (77, "cell phone"), (78, "microwave"), (79, "oven"), (80, "toaster"), (81, "sink"),
    (82, "refrigerator"), (84, "book"), (85, "clock"), (86, "vase"), (87, "scissors"), (88, "teddy bear"),
    (89, "hair drier"), (90, "toothbrush"))
VISDRONE_TO_COCO = {"pedestrian": "person", "people": "person", "bicycle": "bicycle", "car": "car", "van": "car",
                    "truck": "truck", "tricycle": "motorcycle", "awning-tricycle": "motorcycle", "bus": "bus",
                    "motor": "motorcycle"}
VISDRONE_TO_VOC = {"pedestrian": "person", "people": "person", "bicycle": "bicycle", "car": "car", "van": "car",
                   "truck": "car", "tricycle": "motorbike", "awning-tricycle": "motorbike", "bus": "bus",
                   "motor": "motorbike"}
SPLITS = {"train": ("trainval", "train2017"), "val": ("test", "val2017")}
#: the VOC copy's split lists: (year, list name, source split, which half of the source's images)
VOC_LISTS = (("VOC2007", "trainval", "train", 0), ("VOC2012", "trainval", "train", 1),
             ("VOC2007", "test", "val", None))


def _place(src: Path, dst: Path) -> None:
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _source(root: Path, split: str) -> dict:
    path = root / "annotations" / f"{split}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: make the synthetic set first (ugs data synth {root})")
    return json.loads(path.read_text(encoding="utf-8"))


def _voc_xml(image: dict, objects: list, folder: str) -> str:
    lines = ["<annotation>", f"\t<folder>{folder}</folder>", f"\t<filename>{escape(image['file_name'])}</filename>",
             "\t<source><database>UGS kit synthetic set</database></source>",
             "\t<size>", f"\t\t<width>{image['width']}</width>", f"\t\t<height>{image['height']}</height>",
             "\t\t<depth>3</depth>", "\t</size>", "\t<segmented>0</segmented>"]
    for name, (x1, y1, x2, y2), truncated, difficult in objects:
        lines += ["\t<object>", f"\t\t<name>{name}</name>", "\t\t<pose>Unspecified</pose>",
                  f"\t\t<truncated>{truncated}</truncated>", f"\t\t<difficult>{difficult}</difficult>",
                  "\t\t<bndbox>", f"\t\t\t<xmin>{x1}</xmin>", f"\t\t\t<ymin>{y1}</ymin>",
                  f"\t\t\t<xmax>{x2}</xmax>", f"\t\t\t<ymax>{y2}</ymax>", "\t\t</bndbox>", "\t</object>"]
    return "\n".join(lines + ["</annotation>"]) + "\n"


def write_voc_copy(root, out=None) -> Dict[str, dict]:
    """Write ``root``'s synthetic set as ``out`` (default ``root/VOCdevkit``)/VOC2007 and /VOC2012
    (:data:`VOC_LISTS`). Boxes use VOC's 1-based inclusive pixel coordinates (``xmin = x + 1``,
    ``xmax = x + w``, rounded); image ids are the source split's name and the file's stem
    (``train_s0000000``: the synthetic splits number their images alike, and VOC2007 holds
    ``trainval`` and ``test`` in one folder). mmdet's ``VOCDataset`` subtracts 1 from all four and its VOC
    metric measures widths as ``xmax - xmin + 1`` (legacy coordinates), which gives back ``w``.
    Returns a report per split list (``"VOC2007/trainval"``, ...)."""
    root = Path(root)
    devkit = Path(out) if out is not None else root / "VOCdevkit"
    reports = {}
    for year_name, list_name, split, half in VOC_LISTS:
        year = devkit / year_name
        for d in ("Annotations", "ImageSets/Main", "JPEGImages"):
            (year / d).mkdir(parents=True, exist_ok=True)
        data = _source(root, split)
        names = {c["id"]: c["name"] for c in data["categories"]}
        images = data["images"]
        if half is not None:
            cut = (len(images) + 1) // 2
            images = images[:cut] if half == 0 else images[cut:]
        by_image = collections.defaultdict(list)
        for a in data["annotations"]:
            by_image[a["image_id"]].append(a)
        counts = collections.Counter()
        ids = []
        for im in images:
            # the synthetic splits number their images alike, and VOC2007 keeps trainval and
            # test in one folder: the source split's name makes each VOC image id unique
            name = f"{split}_{im['file_name']}"
            stem = Path(name).stem
            ids.append(stem)
            _place(root / split / "images" / im["file_name"], year / "JPEGImages" / name)
            objects = []
            for a in by_image[im["id"]]:
                counts["objects"] += 1
                x, y, w, h = a["bbox"]
                x1, y1 = int(round(x)) + 1, int(round(y)) + 1
                x2, y2 = int(round(x + w)), int(round(y + h))
                if x2 < x1 or y2 < y1:                   # under a pixel after rounding
                    counts["rejected: under one pixel"] += 1
                    continue
                difficult = int(a.get("occlusion", 0) == 2)
                counts["difficult" if difficult else "kept"] += 1
                objects.append((VISDRONE_TO_VOC[names[a["category_id"]]], (x1, y1, x2, y2),
                                int(a.get("truncation", 0) > 0), difficult))
            counts["ignored regions not written"] += len(im.get("ignored_regions") or [])
            (year / "Annotations" / f"{stem}.xml").write_text(_voc_xml(dict(im, file_name=name), objects, year_name),
                                                              encoding="utf-8")
        (year / "ImageSets" / "Main" / f"{list_name}.txt").write_text("".join(i + "\n" for i in ids),
                                                                      encoding="utf-8")
        reports[f"{year_name}/{list_name}"] = dict(images=len(ids), **counts)
    return reports


def write_coco_copy(root, out=None) -> Dict[str, dict]:
    """Write ``root``'s synthetic set as ``out`` (default ``root/coco``) in the COCO 2017 layout:
    ``annotations/instances_{train2017,val2017}.json`` and the images in ``train2017/``,
    ``val2017/``. Returns a report per split."""
    root = Path(root)
    out = Path(out) if out is not None else root / "coco"
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    coco_id = {name: i for i, name in COCO_CATEGORIES}
    reports = {}
    for split, (_, coco_split) in SPLITS.items():
        data = _source(root, split)
        names = {c["id"]: c["name"] for c in data["categories"]}
        (out / coco_split).mkdir(exist_ok=True)
        counts = collections.Counter()
        images = []
        for im in data["images"]:
            _place(root / split / "images" / im["file_name"], out / coco_split / im["file_name"])
            images.append({k: im[k] for k in ("id", "file_name", "width", "height")})
            counts["ignored regions not written"] += len(im.get("ignored_regions") or [])
        anns = []
        for a in data["annotations"]:
            counts["objects"] += 1
            counts["kept"] += 1
            anns.append(dict(id=a["id"], image_id=a["image_id"], category_id=coco_id[VISDRONE_TO_COCO[names[a["category_id"]]]],
                             bbox=a["bbox"], area=a["bbox"][2] * a["bbox"][3], iscrowd=0))
        doc = dict(info=dict(description=f"UGS kit synthetic set, {split} split, COCO layout", version="1.0"),
                   licenses=[], images=images, annotations=anns,
                   categories=[dict(id=i, name=n, supercategory="coco") for i, n in COCO_CATEGORIES])
        (out / "annotations" / f"instances_{coco_split}.json").write_text(json.dumps(doc), encoding="utf-8")
        reports[coco_split] = dict(images=len(images), **counts)
    return reports


def write_layout_copies(root) -> dict:
    """Both copies of ``root`` (``root/VOCdevkit``, ``root/coco``); their reports."""
    return dict(voc=write_voc_copy(root), coco=write_coco_copy(root))
