"""Check a PASCAL VOC or COCO 2017 folder before a long training job: ``ugs data check voc|coco ROOT``.

Both checks read every annotation and account for every object: each one is counted as kept,
as ``difficult`` (VOC; kept, ignored by the VOC metric), as a crowd box (COCO; kept, ignored by
the COCO metric) or as rejected, with the reason, the file and (for XML) the line. Missing image
files and malformed files are problems; the command exits non-zero when there is any.

**VOC** (``ROOT`` = the ``VOCdevkit`` folder, as mmdet's VOC configs expect)::

    ROOT/VOC2007/{Annotations/*.xml, ImageSets/Main/{trainval,test}.txt, JPEGImages/*.jpg}
    ROOT/VOC2012/{Annotations/*.xml, ImageSets/Main/trainval.txt, JPEGImages/*.jpg}

Every split list found among ``trainval``, ``train``, ``val`` and ``test`` is checked. An object
needs ``name`` (one of the 20 VOC classes) and ``bndbox`` with numeric ``xmin ymin xmax ymax``
and ``xmax > xmin``, ``ymax > ymin``; ``difficult`` and ``truncated`` are optional (0 when
absent), as in mmdet's ``VOCDataset``.

**COCO** (``ROOT`` holding ``annotations/instances_{train2017,val2017}.json`` and the images
in ``train2017/``, ``val2017/``): images need ``id``, ``file_name``, ``width``, ``height``;
an annotation needs a known ``image_id`` and ``category_id`` and a ``bbox`` of four numbers
with positive width and height (mmdet's ``CocoDataset`` drops the others silently).

No detection framework is imported here.
"""
from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Dict, List, Optional
from xml.parsers import expat

__all__ = ["VOC_CLASSES", "check_voc", "check_coco", "format_check", "parse_xml_with_lines"]

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor")
VOC_SPLITS = ("trainval", "train", "val", "test")
COCO_SPLITS = ("train2017", "val2017")
#: at most this many problems of one kind are listed per split (all are counted)
MAX_LISTED = 20


class _Node:
    """An XML element with the line it starts on."""

    __slots__ = ("tag", "line", "children", "text")

    def __init__(self, tag: str, line: int) -> None:
        self.tag, self.line, self.children, self.text = tag, line, [], ""

    def find(self, tag: str) -> Optional["_Node"]:
        return next((c for c in self.children if c.tag == tag), None)

    def findall(self, tag: str) -> List["_Node"]:
        return [c for c in self.children if c.tag == tag]


def parse_xml_with_lines(data: bytes) -> _Node:
    """Parse ``data`` into :class:`_Node` trees that know their line numbers; an
    ``expat.ExpatError`` (with ``lineno``) on malformed XML."""
    parser = expat.ParserCreate()
    root = _Node("#document", 0)
    stack = [root]

    def start(tag, attrs):
        node = _Node(tag, parser.CurrentLineNumber)
        stack[-1].children.append(node)
        stack.append(node)

    def end(tag):
        stack.pop()

    def chars(text):
        stack[-1].text += text

    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.CharacterDataHandler = chars
    parser.Parse(data, True)
    if not root.children:
        raise expat.ExpatError("no element found")
    return root.children[0]


class _Split:
    """Counts and problems of one split."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.counts = collections.Counter()
        self.per_class = collections.Counter()
        self.rejected = collections.Counter()
        self.problems: Dict[str, List[str]] = collections.defaultdict(list)

    def problem(self, kind: str, text: str) -> None:
        self.problems[kind].append(text)

    def reject(self, reason: str, where: str, detail: str = "") -> None:
        """Count an object as rejected for ``reason`` and list it as a malformed object."""
        self.rejected[reason] += 1
        self.counts["rejected"] += 1
        self.problem("malformed object", f"{where}: {reason}" + (f" {detail}" if detail else ""))

    def as_dict(self) -> dict:
        return dict(split=self.name, counts=dict(self.counts), per_class=dict(sorted(self.per_class.items())),
                    rejected=dict(self.rejected),
                    problems={k: dict(count=len(v), listed=v[:MAX_LISTED]) for k, v in self.problems.items()})


def _number(node: Optional[_Node]) -> Optional[float]:
    if node is None:
        return None
    try:
        return float(node.text.strip())
    except ValueError:
        return None


def _check_voc_xml(path: Path, image_dir: Path, split: _Split) -> None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        split.problem("missing annotation file", str(path))
        return
    try:
        root = parse_xml_with_lines(data)
    except expat.ExpatError as e:
        split.problem("malformed XML", f"{path}:{e.lineno}: {expat.ErrorString(e.code) if e.code else e}")
        return
    name = root.find("filename")
    file_name = name.text.strip() if name is not None and name.text.strip() else path.stem + ".jpg"
    if not (image_dir / file_name).is_file():
        split.problem("missing image file", f"{image_dir / file_name} (named by {path})")
    split.counts["images"] += 1
    for k, obj in enumerate(root.findall("object")):
        split.counts["objects"] += 1
        where = f"{path}:{obj.line}: object {k}"
        cls = obj.find("name")
        cls = cls.text.strip() if cls is not None else ""
        box = obj.find("bndbox")
        coords = [_number(box.find(t)) if box is not None else None for t in ("xmin", "ymin", "xmax", "ymax")]
        reason = detail = None        # reason: the counted kind; detail: what this object shows
        if not cls:
            reason = "no <name>"
        elif cls not in VOC_CLASSES:
            reason, detail = "unknown class", repr(cls)
        elif box is None:
            reason = "no <bndbox>"
        elif any(c is None for c in coords):
            reason = "a <bndbox> coordinate is missing or not a number"
        elif coords[2] <= coords[0] or coords[3] <= coords[1]:
            reason, detail = "empty box", str(coords)
        if reason:
            split.reject(reason, where, detail)
            continue
        difficult = obj.find("difficult")
        if difficult is not None and not difficult.text.strip().lstrip("-").isdigit():
            # mmdet's int() would fail on it
            split.reject("<difficult> is not an integer", where, f"{difficult.text.strip()!r}")
            continue
        is_difficult = difficult is not None and int(difficult.text) != 0
        split.counts["difficult" if is_difficult else "kept"] += 1
        split.per_class[cls] += 1


def check_voc(root) -> dict:
    """Check a ``VOCdevkit`` folder (module docstring); returns the report."""
    root = Path(root)
    years = [d for d in sorted(root.glob("VOC20*")) if d.is_dir()]
    report = dict(format="voc", root=str(root), splits=[], problems=0)
    if not years:
        report["error"] = (f"{root} has no VOC20xx folder: expected ROOT/VOC2007 and ROOT/VOC2012, each with "
                           "Annotations/, ImageSets/Main/ and JPEGImages/ (the VOCdevkit layout)")
        report["problems"] = 1
        return report
    for year in years:
        lists = [year / "ImageSets" / "Main" / f"{s}.txt" for s in VOC_SPLITS]
        lists = [p for p in lists if p.is_file()]
        if not lists:
            report["splits"].append(dict(split=year.name, counts={}, per_class={}, rejected={}, problems={
                "missing split list": dict(count=1, listed=[f"{year}/ImageSets/Main/ has none of "
                                                            f"{', '.join(s + '.txt' for s in VOC_SPLITS)}"])}))
            continue
        for lst in lists:
            split = _Split(f"{year.name}/{lst.stem}")
            ids = [line.strip() for line in lst.read_text(encoding="utf-8").splitlines() if line.strip()]
            for i in ids:
                _check_voc_xml(year / "Annotations" / f"{i.split()[0]}.xml", year / "JPEGImages", split)
            report["splits"].append(split.as_dict())
    report["problems"] = sum(p["count"] for s in report["splits"] for p in s["problems"].values())
    return report


def check_coco(root) -> dict:
    """Check a COCO 2017 folder (module docstring); returns the report."""
    root = Path(root)
    report = dict(format="coco", root=str(root), splits=[], problems=0)
    found = [s for s in COCO_SPLITS if (root / "annotations" / f"instances_{s}.json").is_file()]
    if not found:
        report["error"] = (f"{root}/annotations/ has neither instances_train2017.json nor "
                           "instances_val2017.json (images go in ROOT/train2017/ and ROOT/val2017/)")
        report["problems"] = 1
        return report
    for s in found:
        split = _Split(s)
        path = root / "annotations" / f"instances_{s}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            split.problem("malformed JSON", f"{path}:{e.lineno}:{e.colno}: {e.msg}")
            report["splits"].append(split.as_dict())
            continue
        missing_keys = [k for k in ("images", "annotations", "categories") if not isinstance(data.get(k), list)]
        if missing_keys:
            split.problem("malformed JSON", f"{path}: no list {', '.join(repr(k) for k in missing_keys)}")
            report["splits"].append(split.as_dict())
            continue
        cats = {c.get("id"): c.get("name") for c in data["categories"]}
        images = {}
        for k, im in enumerate(data["images"]):
            bad = [key for key in ("id", "file_name", "width", "height") if key not in im]
            if bad:
                split.problem("malformed image", f"{path}: images[{k}] has no {', '.join(bad)}")
                continue
            if im["id"] in images:
                split.problem("malformed image", f"{path}: images[{k}] repeats id {im['id']}")
                continue
            images[im["id"]] = im
            split.counts["images"] += 1
            if not (root / s / im["file_name"]).is_file():
                split.problem("missing image file", str(root / s / im["file_name"]))
        for k, ann in enumerate(data["annotations"]):
            split.counts["objects"] += 1
            where = f"{path}: annotations[{k}] (id {ann.get('id')})"
            bbox = ann.get("bbox")
            reason = detail = None
            if ann.get("image_id") not in images:
                reason, detail = "unknown image_id", repr(ann.get("image_id"))
            elif ann.get("category_id") not in cats:
                reason, detail = "unknown category_id", repr(ann.get("category_id"))
            elif not (isinstance(bbox, list) and len(bbox) == 4
                      and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)):
                reason, detail = "bbox is not four numbers", repr(bbox)
            elif bbox[2] <= 0 or bbox[3] <= 0:
                reason, detail = "empty box (width or height <= 0)", repr(bbox)
            if reason:
                split.reject(reason, where, detail)
                continue
            split.counts["crowd" if ann.get("iscrowd") else "kept"] += 1
            split.per_class[str(cats[ann["category_id"]])] += 1
        report["splits"].append(split.as_dict())
    report["problems"] = sum(p["count"] for s in report["splits"] for p in s["problems"].values())
    return report


def format_check(report: dict) -> str:
    """The report as text: per split the counts (every object accounted for) and the problems."""
    lines = [f"{report['format'].upper()} check of {report['root']}"]
    if "error" in report:
        return "\n".join(lines + [f"error: {report['error']}"])
    for s in report["splits"]:
        c = s["counts"]
        extra = "difficult" if report["format"] == "voc" else "crowd"
        lines.append(f"  {s['split']}: {c.get('images', 0)} images, {c.get('objects', 0)} objects = "
                     f"{c.get('kept', 0)} kept + {c.get(extra, 0)} {extra} + {c.get('rejected', 0)} rejected")
        for reason, n in s["rejected"].items():
            lines.append(f"    rejected, {reason}: {n}")
        for kind, p in s["problems"].items():
            lines.append(f"    {kind}: {p['count']}")
            lines += [f"      {t}" for t in p["listed"]]
            if p["count"] > len(p["listed"]):
                lines.append(f"      ... and {p['count'] - len(p['listed'])} more (--json lists the first "
                             f"{MAX_LISTED})")
    lines.append(f"{report['problems']} problem(s)" if report["problems"] else "no problems")
    return "\n".join(lines)
