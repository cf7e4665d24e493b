"""ugs.data.visdrone: the VisDrone-DET text format -> COCO JSON converter.

Fixtures are written here in the exact released format (8 integers, CRLF, trailing commas,
empty files); every expected count and clipped box below was worked out by hand from the
rules in the module docstring (category 0 -> ignored region, category 11 -> rejected
"others", score 0 with category 1..10 -> ignored region, boxes clipped to [0, W) x [0, H)).
"""
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image, ImageFile

from ugs.data.visdrone import (CATEGORY_NAMES, VisDroneRecord, convert_visdrone,
                               parse_visdrone_text, read_visdrone_annotation, visdrone_to_coco)

# a.txt on a 100 x 80 image, CRLF, some trailing commas. Per line (hand-worked outcome):
A_LINES = [
    "10,20,30,15,1,4,0,0,",      # 1 car, inside                       -> kept [10,20,30,15]
    "0,0,40,30,0,0,0,0",         # 2 ignored region                     -> region [0,0,40,30]
    "5,5,10,10,1,1,0,1,",        # 3 pedestrian inside the region       -> kept (eval drops it)
    "50,50,8,8,0,11,0,0",        # 4 others, score 0                    -> rejected others
    "90,70,20,20,1,6,1,0",       # 5 truck over right+bottom: x 90..100, y 70..80 -> [90,70,10,10]
    "-4,30,10,6,1,10,1,2",       # 6 motor over the left edge: x 0..6   -> [0,30,6,6]
    "20,20,0,10,1,4,0,0",        # 7 width 0                            -> rejected zero_area
    "120,10,5,5,1,4,0,0",        # 8 starts right of x = 100            -> rejected outside_image
    "60,10,12,6,0,5,0,0",        # 9 van with score 0                   -> region (score0_object)
    "95,-3,20,8,0,0,0,0",        # 10 region over top+right: x 95..100, y 0..5 -> [95,0,5,5]
    "200,200,10,10,0,0,0,0",     # 11 region off the image              -> rejected region_outside_image
    "1,1,5,5,1,11,0,0",          # 12 others, score 1                   -> rejected others
]
# b.txt on a 50 x 40 image, LF, a blank line in the middle:
B_TEXT = ("1,2,3,4,1,2,0,0\n"          # line 1 people                   -> kept [1,2,3,4]
          "\n"                          # line 2 blank
          "10,10,45,35,1,9,0,1\n")      # line 3 bus: x 10..50, y 10..40  -> [10,10,40,30]


def _image(path: Path, w: int, h: int, colour=(90, 100, 110)):
    Image.new("RGB", (w, h), colour).save(path, quality=90)


@pytest.fixture()
def split(tmp_path):
    """4 images: a (100x80, 12 lines), b (50x40, 2 lines + 1 blank), c (empty file),
    d (a file holding only CRLF)."""
    root = tmp_path / "VisDrone2019-DET-val"
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for name, (w, h) in {"a": (100, 80), "b": (50, 40), "c": (64, 64), "d": (30, 20)}.items():
        _image(root / "images" / f"{name}.jpg", w, h)
    (root / "annotations" / "a.txt").write_bytes("".join(l + "\r\n" for l in A_LINES).encode())
    (root / "annotations" / "b.txt").write_bytes(B_TEXT.encode())
    (root / "annotations" / "c.txt").write_bytes(b"")
    (root / "annotations" / "d.txt").write_bytes(b"\r\n")
    return root


def test_report_counts_by_hand(split, tmp_path):
    r = convert_visdrone(split, tmp_path / "out" / "val.json")
    # kept: a1 a3 a5 a6 b1 b3 = 6; ignored: a2 a9 a10 = 3; rejected: a4 a7 a8 a11 a12 = 5
    assert (r["lines"], r["kept"], r["ignored"], r["rejected"]) == (14, 6, 3, 5)
    assert r["lines"] == r["kept"] + r["ignored"] + r["rejected"]
    assert r["rejected_reasons"] == {"others": 2, "zero_area": 1, "outside_image": 1,
                                     "region_outside_image": 1}
    assert r["ignored_reasons"] == {"ignored_region": 2, "score0_object": 1}
    # clipped: a5 (truck), a6 (motor), a10 (region), b3 (bus)
    assert r["clipped"] == 4
    # c.txt is empty, d.txt holds only a line end: 2 files without records; blank: b2, d1
    assert (r["images"], r["annotation_files"], r["empty_files"], r["blank_lines"]) == (4, 4, 2, 2)
    assert r["images_with_ignored_regions"] == 1
    assert r["kept_per_category"] == {n: (1 if n in ("pedestrian", "people", "car", "truck",
                                                     "bus", "motor") else 0)
                                      for n in CATEGORY_NAMES}


def test_coco_content_by_hand(split, tmp_path):
    out = tmp_path / "val.json"
    convert_visdrone(split, out)
    coco = json.loads(out.read_text())
    # images sorted by file name, ids 1..4, size from the header
    assert [(i["id"], i["file_name"], i["width"], i["height"]) for i in coco["images"]] == [
        (1, "a.jpg", 100, 80), (2, "b.jpg", 50, 40), (3, "c.jpg", 64, 64), (4, "d.jpg", 30, 20)]
    # a's regions in line order: a2, a9 (score-0 van), a10 clipped to x 95..100, y 0..5
    assert coco["images"][0]["ignored_regions"] == [[0, 0, 40, 30], [60, 10, 12, 6], [95, 0, 5, 5]]
    assert all(i["ignored_regions"] == [] for i in coco["images"][1:])
    anns = [(a["id"], a["image_id"], a["category_id"], a["bbox"], a["area"], a["iscrowd"],
             a["truncation"], a["occlusion"]) for a in coco["annotations"]]
    assert anns == [
        (1, 1, 4, [10.0, 20.0, 30.0, 15.0], 450.0, 0, 0, 0),   # a1 car 30*15
        (2, 1, 1, [5.0, 5.0, 10.0, 10.0], 100.0, 0, 0, 1),     # a3 pedestrian
        (3, 1, 6, [90.0, 70.0, 10.0, 10.0], 100.0, 0, 1, 0),   # a5 truck clipped 20x20 -> 10x10
        (4, 1, 10, [0.0, 30.0, 6.0, 6.0], 36.0, 0, 1, 2),      # a6 motor clipped 10 -> 6 wide
        (5, 2, 2, [1.0, 2.0, 3.0, 4.0], 12.0, 0, 0, 0),        # b1 people
        (6, 2, 9, [10.0, 10.0, 40.0, 30.0], 1200.0, 0, 0, 1),  # b3 bus clipped 45x35 -> 40x30
    ]
    assert all(isinstance(v, float) for a in coco["annotations"] for v in a["bbox"])
    assert coco["categories"] == [{"id": i + 1, "name": n, "supercategory": "visdrone"}
                                  for i, n in enumerate(CATEGORY_NAMES)]


def test_pycocotools_reads_the_output(split, tmp_path):
    from pycocotools.coco import COCO
    out = tmp_path / "val.json"
    convert_visdrone(split, out)
    c = COCO(str(out))
    # 6 annotations; image 1 (a.jpg) holds 4 of them; 10 categories
    assert len(c.getAnnIds()) == 6 and len(c.getAnnIds(imgIds=[1])) == 4
    assert len(c.getCatIds()) == 10


def test_image_size_is_read_without_decoding_pixels(split, tmp_path, monkeypatch):
    def no_decode(self):
        raise AssertionError("pixels decoded")
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decode)
    r = convert_visdrone(split, None)
    assert r["images"] == 4 and r["out_json"] is None


def test_parser_records_and_line_numbers(split):
    recs = read_visdrone_annotation(split / "annotations" / "b.txt")
    # the blank line 2 is skipped but numbering stays physical: records on lines 1 and 3
    assert recs == [VisDroneRecord(1, 2, 3, 4, 1, 2, 0, 0, line=1),
                    VisDroneRecord(10, 10, 45, 35, 1, 9, 0, 1, line=3)]
    recs = read_visdrone_annotation(split / "annotations" / "a.txt")
    assert len(recs) == 12 and recs[5] == VisDroneRecord(-4, 30, 10, 6, 1, 10, 1, 2, line=6)
    assert read_visdrone_annotation(split / "annotations" / "c.txt") == []
    assert read_visdrone_annotation(split / "annotations" / "d.txt") == []


def test_line_endings_and_bom():
    # CR-only, CRLF and LF are one line end each; a UTF-8 BOM is dropped by the file reader;
    # a line ending in a comma followed by spaces is still the 8-field form
    recs, blank = parse_visdrone_text("1,1,2,2,1,4,0,0\r2,2,3,3,1,4,0,0\r\n3,3,4,4,1,4,0,0, \n")
    assert [r.left for r in recs] == [1, 2, 3] and [r.line for r in recs] == [1, 2, 3]
    assert blank == 0


def test_bom_file(tmp_path):
    p = tmp_path / "x.txt"
    p.write_bytes(b"\xef\xbb\xbf7,8,9,10,1,3,0,0\r\n")
    assert read_visdrone_annotation(p) == [VisDroneRecord(7, 8, 9, 10, 1, 3, 0, 0, line=1)]


@pytest.mark.parametrize("bad, why", [
    ("1,2,3,4,1,4,0", "got 7"),                  # 7 fields
    ("1,2,3,4,1,4,0,0,0", "got 9"),              # 9 fields
    ("1,2,3,4,1,4,0,0,,", "got 9"),              # two trailing commas: one is removed, 9 left
    ("1,2,3.5,4,1,4,0,0", "bbox_width"),         # a float
    ("1,,3,4,1,4,0,0", "bbox_top"),              # an empty field
    ("a,b,c,d,e,f,g,h", "bbox_left"),            # text
    ("1,2,-3,4,1,4,0,0", "negative"),            # negative width
    ("1,2,3,-4,1,4,0,0", "negative"),            # negative height
    ("1,2,3,4,1,12,0,0", "unknown category 12"), # category outside 0..11
    ("1,2,3,4,1,-1,0,0", "unknown category -1"),
    ("1,2,3,4,2,4,0,0", "score"),                # a ground-truth score must be 0 or 1
])
def test_malformed_line_names_file_line_and_text(tmp_path, bad, why):
    p = tmp_path / "0000001_00000_d_0000001.txt"
    p.write_bytes(("5,5,5,5,1,4,0,0\r\n\r\n" + bad + "\r\n").encode())
    with pytest.raises(ValueError) as e:
        read_visdrone_annotation(p)
    msg = str(e.value)
    # the bad line is physical line 3 (line 2 is blank)
    assert str(p) in msg and "line 3" in msg and bad in msg and why in msg


def test_malformed_line_inside_a_split_names_the_annotation_file(split):
    p = split / "annotations" / "b.txt"
    p.write_bytes(b"1,2,3,4,1,2,0,0\n1,2,3,4,1,2,0\n")
    with pytest.raises(ValueError, match=r"b\.txt, line 2: expected 8"):
        convert_visdrone(split, None)


def test_annotation_without_image_raises(split):
    (split / "annotations" / "zz.txt").write_bytes(b"1,1,1,1,1,1,0,0\r\n")
    with pytest.raises(ValueError, match="zz.txt"):
        convert_visdrone(split, None)


def test_image_without_annotation_file(split):
    _image(split / "images" / "e.jpg", 10, 10)
    with pytest.raises(ValueError, match="e.jpg"):
        convert_visdrone(split, None)
    r = convert_visdrone(split, None, allow_missing_annotations=True)
    # the 14 lines of a-d are unchanged; e adds an image and no line
    assert (r["images"], r["images_without_annotation_file"], r["lines"]) == (5, 1, 14)


def test_zero_area_region_is_rejected_and_counted(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "annotations").mkdir()
    _image(tmp_path / "images" / "r.jpg", 20, 20)
    # a region of height 0 and a car of height 0: both rejected, under their own reasons
    (tmp_path / "annotations" / "r.txt").write_bytes(b"2,2,5,0,0,0,0,0\r\n2,2,5,0,1,4,0,0\r\n")
    r = convert_visdrone(tmp_path, None)
    assert (r["lines"], r["kept"], r["ignored"], r["rejected"]) == (2, 0, 0, 2)
    assert r["rejected_reasons"] == {"region_zero_area": 1, "zero_area": 1}


def test_missing_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="images"):
        convert_visdrone(tmp_path, None)
    (tmp_path / "images").mkdir()
    with pytest.raises(FileNotFoundError, match="annotations"):
        convert_visdrone(tmp_path, None)


# ---- property: in = out and clipped boxes inside the image, for any valid file -------------
_line = st.tuples(st.integers(-40, 140), st.integers(-40, 140), st.integers(0, 60),
                  st.integers(0, 60), st.integers(0, 1), st.integers(0, 11),
                  st.integers(0, 1), st.integers(0, 2))


@settings(max_examples=25, deadline=None)
@given(files=st.lists(st.tuples(st.lists(_line, max_size=12), st.booleans(), st.booleans()),
                      min_size=1, max_size=3),
       size=st.tuples(st.integers(8, 96), st.integers(8, 96)))
def test_accounting_holds_for_any_valid_file(files, size):
    W, H = size
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "images").mkdir()
        (root / "annotations").mkdir()
        exp_kept = exp_ignored = exp_rejected = 0
        for k, (lines, crlf, comma) in enumerate(files):
            _image(root / "images" / f"{k:03d}.jpg", W, H)
            eol = "\r\n" if crlf else "\n"
            text = "".join(",".join(map(str, v)) + ("," if comma else "") + eol for v in lines)
            (root / "annotations" / f"{k:03d}.txt").write_text(text, newline="")
            for (x, y, w, h, s, c, _, _) in lines:
                # expected role, written independently of the converter's code path
                visible = w > 0 and h > 0 and min(x + w, W) > max(x, 0) and min(y + h, H) > max(y, 0)
                if c == 11 or not visible:
                    exp_rejected += 1
                elif c == 0 or s == 0:
                    exp_ignored += 1
                else:
                    exp_kept += 1
        coco, r = visdrone_to_coco(root)
    assert r["lines"] == sum(len(f[0]) for f in files)
    assert (r["kept"], r["ignored"], r["rejected"]) == (exp_kept, exp_ignored, exp_rejected)
    assert r["lines"] == r["kept"] + r["ignored"] + r["rejected"]
    boxes = [a["bbox"] for a in coco["annotations"]]
    boxes += [b for im in coco["images"] for b in im["ignored_regions"]]
    for x, y, w, h in boxes:
        assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= W and y + h <= H
    for a in coco["annotations"]:
        assert a["area"] == a["bbox"][2] * a["bbox"][3] and 1 <= a["category_id"] <= 10
