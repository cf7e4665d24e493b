"""``ugs data check voc|coco``: fixtures written here in the real formats (VOC XML with
``difficult``, ``truncated``, missing optional fields, CRLF line ends; COCO JSON with crowd
boxes), every object accounted for by hand, broken files named with their line."""
import json

import pytest

from ugs.cli import main
from ugs.data.check import check_coco, check_voc, parse_xml_with_lines


def _voc_xml(filename, objects, crlf=False, with_filename=True):
    """A VOC annotation as the devkit writes it; ``objects``: (name, box, difficult or None,
    truncated or None)."""
    parts = ["<annotation>", "\t<folder>VOC2007</folder>"]
    if with_filename:
        parts.append(f"\t<filename>{filename}</filename>")
    parts += ["\t<size>", "\t\t<width>500</width>", "\t\t<height>375</height>", "\t\t<depth>3</depth>", "\t</size>"]
    for name, box, difficult, truncated in objects:
        parts += ["\t<object>", f"\t\t<name>{name}</name>", "\t\t<pose>Unspecified</pose>"]
        if truncated is not None:
            parts.append(f"\t\t<truncated>{truncated}</truncated>")
        if difficult is not None:
            parts.append(f"\t\t<difficult>{difficult}</difficult>")
        if box is not None:
            parts.append("\t\t<bndbox>")
            parts += [f"\t\t\t<{k}>{v}</{k}>" for k, v in zip(("xmin", "ymin", "xmax", "ymax"), box)]
            parts.append("\t\t</bndbox>")
        parts.append("\t</object>")
    parts.append("</annotation>")
    return ("\r\n" if crlf else "\n").join(parts) + "\n"


def _voc(root):
    """VOC2007 trainval (3 images) + test (2 images), VOC2012 trainval (1 image)."""
    y7 = root / "VOC2007"
    for d in ("Annotations", "ImageSets/Main", "JPEGImages"):
        (y7 / d).mkdir(parents=True)
    files = {
        "000001": _voc_xml("000001.jpg", [("dog", (48, 240, 195, 371), 0, 0), ("person", (8, 12, 352, 498), 1, 0)],
                           crlf=True),
        "000002": _voc_xml("000002.jpg", [("train", (139, 200, 207, 301), None, None)]),      # optional fields absent
        "000003": _voc_xml("000003.jpg", [("sofa", (123, 155, 215, 195), 0, 1), ("chair", (239, 156, 307, 205), 1, 1),
                                          ("chair", (10, 10, 10, 50), 0, 0)],                  # line of an empty box
                           with_filename=False),
        "000004": _voc_xml("000004.jpg", [("car", (1, 2, 30, 40), 0, 0), ("spaceship", (5, 5, 9, 9), 0, 0)]),
        "000005": _voc_xml("000005.jpg", [("cat", None, 0, 0), ("cat", ("a", 1, 2, 3), 0, 0)]),
    }
    for i, text in files.items():
        (y7 / "Annotations" / f"{i}.xml").write_bytes(text.encode())
        if i != "000005":
            (y7 / "JPEGImages" / f"{i}.jpg").write_bytes(b"\xff\xd8")
    (y7 / "ImageSets/Main/trainval.txt").write_text("000001\n000002\n000003\n")
    (y7 / "ImageSets/Main/test.txt").write_text("000004\r\n000005\r\n")
    y12 = root / "VOC2012"
    for d in ("Annotations", "ImageSets/Main", "JPEGImages"):
        (y12 / d).mkdir(parents=True)
    (y12 / "Annotations/2008_000001.xml").write_text(_voc_xml("2008_000001.jpg", [("bird", (1, 1, 20, 20), 0, 0)]))
    (y12 / "JPEGImages/2008_000001.jpg").write_bytes(b"\xff\xd8")
    (y12 / "ImageSets/Main/trainval.txt").write_text("2008_000001\n")
    return root


def _split(report, name):
    return next(s for s in report["splits"] if s["split"] == name)


def test_voc_check_accounts_for_every_object(tmp_path):
    r = check_voc(_voc(tmp_path))
    tv = _split(r, "VOC2007/trainval")
    # 000001: dog + person (difficult); 000002: train; 000003: sofa, chair (difficult), empty chair
    assert tv["counts"] == dict(images=3, objects=6, kept=3, difficult=2, rejected=1)
    assert tv["per_class"] == {"chair": 1, "dog": 1, "person": 1, "sofa": 1, "train": 1}
    assert tv["rejected"] == {"empty box": 1}
    listed = tv["problems"]["malformed object"]["listed"]
    # 000003.xml: the third <object> starts on line 28 (5 header lines + 2 objects of 11 lines + 1)
    lines = _voc_xml("x", [("sofa", (1, 1, 2, 2), 0, 1), ("chair", (1, 1, 2, 2), 1, 1), ("chair", (1, 1, 2, 2), 0, 0)],
                     with_filename=False).split("\n")
    third_object_line = [i + 1 for i, t in enumerate(lines) if t == "\t<object>"][2]
    assert listed == [f"{tmp_path}/VOC2007/Annotations/000003.xml:{third_object_line}: object 2: empty box "
                      "[10.0, 10.0, 10.0, 50.0]"]
    te = _split(r, "VOC2007/test")
    assert te["counts"] == dict(images=2, objects=4, kept=1, rejected=3)
    assert te["rejected"] == {"unknown class": 1, "no <bndbox>": 1,
                              "a <bndbox> coordinate is missing or not a number": 1}
    assert te["problems"]["missing image file"]["count"] == 1
    assert "000005.jpg" in te["problems"]["missing image file"]["listed"][0]
    assert _split(r, "VOC2012/trainval")["counts"] == dict(images=1, objects=1, kept=1)
    assert r["problems"] == 1 + 3 + 1                        # trainval: 1 object; test: 3 objects + 1 image


def test_voc_check_names_a_malformed_file_and_its_line(tmp_path):
    root = _voc(tmp_path)
    bad = root / "VOC2007/Annotations/000002.xml"
    bad.write_text("<annotation>\n  <object>\n    <name>dog</name>\n  </objekt>\n</annotation>\n")
    (root / "VOC2007/Annotations/000001.xml").unlink()
    tv = _split(check_voc(root), "VOC2007/trainval")
    assert tv["problems"]["malformed XML"]["listed"] == [f"{bad}:4: mismatched tag"]
    assert tv["problems"]["missing annotation file"]["listed"] == [str(root / "VOC2007/Annotations/000001.xml")]
    assert tv["counts"]["images"] == 1                         # only 000003 was read


def test_xml_lines_with_crlf():
    node = parse_xml_with_lines(b"<a>\r\n <b>1</b>\r\n <c>\r\n  <d>x</d>\r\n </c>\r\n</a>\r\n")
    assert [(c.tag, c.line) for c in node.children] == [("b", 2), ("c", 3)]
    assert node.find("c").find("d").line == 4 and node.find("b").text == "1"


def _coco(root, break_json=False):
    (root / "annotations").mkdir(parents=True)
    for s in ("train2017", "val2017"):
        (root / s).mkdir()
    train = dict(
        images=[dict(id=1, file_name="a.jpg", width=640, height=480), dict(id=2, file_name="b.jpg", width=640, height=480),
                dict(id=3, file_name="c.jpg", width=10, height=10)],
        annotations=[
            dict(id=10, image_id=1, category_id=1, bbox=[10, 10, 20, 30], area=600, iscrowd=0),
            dict(id=11, image_id=1, category_id=18, bbox=[100, 50, 200, 150], area=30000, iscrowd=1),   # crowd
            dict(id=12, image_id=2, category_id=1, bbox=[0, 0, 0, 5], area=0, iscrowd=0),               # empty
            dict(id=13, image_id=9, category_id=1, bbox=[1, 1, 2, 2], area=4, iscrowd=0),               # no image 9
            dict(id=14, image_id=2, category_id=99, bbox=[1, 1, 2, 2], area=4, iscrowd=0),              # no category
            dict(id=15, image_id=2, category_id=18, bbox=[5, 5, 8, 8], area=64, iscrowd=0)],
        categories=[dict(id=1, name="person"), dict(id=18, name="dog")])
    (root / "annotations/instances_train2017.json").write_text(json.dumps(train))
    for f in ("a.jpg", "b.jpg"):                               # c.jpg missing
        (root / "train2017" / f).write_bytes(b"\xff\xd8")
    val = '{"images": [{"id": 1, "file_name": "v.jpg", "width": 5, "height": 5}],\n "annotations": [],\n "categories": []}'
    if break_json:
        val = val.replace('"annotations": [],', '"annotations": [,')
    (root / "annotations/instances_val2017.json").write_text(val)
    (root / "val2017/v.jpg").write_bytes(b"\xff\xd8")
    return root


def test_coco_check_accounts_for_every_object(tmp_path):
    r = check_coco(_coco(tmp_path))
    tr = _split(r, "train2017")
    assert tr["counts"] == dict(images=3, objects=6, kept=2, crowd=1, rejected=3)
    assert tr["per_class"] == {"dog": 2, "person": 1}
    assert tr["rejected"] == {"empty box (width or height <= 0)": 1, "unknown image_id": 1, "unknown category_id": 1}
    assert tr["problems"]["missing image file"]["listed"] == [str(tmp_path / "train2017/c.jpg")]
    assert _split(r, "val2017")["counts"] == dict(images=1)
    assert r["problems"] == 3 + 1


def test_coco_check_names_the_line_of_broken_json(tmp_path):
    r = check_coco(_coco(tmp_path, break_json=True))
    listed = _split(r, "val2017")["problems"]["malformed JSON"]["listed"]
    assert listed[0].startswith(f"{tmp_path}/annotations/instances_val2017.json:2:")


def test_the_command_exits_non_zero_on_problems_and_zero_on_a_clean_set(tmp_path, capsys):
    assert main(["data", "check", "coco", str(_coco(tmp_path / "c"))]) == 1
    out = capsys.readouterr().out
    assert "train2017: 3 images, 6 objects = 2 kept + 1 crowd + 3 rejected" in out
    clean = tmp_path / "clean"
    y7 = clean / "VOC2007"
    for d in ("Annotations", "ImageSets/Main", "JPEGImages"):
        (y7 / d).mkdir(parents=True)
    (y7 / "Annotations/1.xml").write_text(_voc_xml("1.jpg", [("cow", (1, 1, 5, 5), 0, 0)]))
    (y7 / "JPEGImages/1.jpg").write_bytes(b"\xff\xd8")
    (y7 / "ImageSets/Main/test.txt").write_text("1\n")
    assert main(["data", "check", "voc", str(clean)]) == 0
    assert "no problems" in capsys.readouterr().out
    assert main(["data", "check", "voc", str(tmp_path / "c")]) == 1           # a COCO folder: no VOC20xx
    assert "no VOC20xx folder" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["data", "check", "voc", str(tmp_path / "nope")])
