"""SODA-A's data (``ugs.data.soda_a``, ``ugs.data.soda_a_crops``, ``ugs.data.synthetic_soda_a``):
polygons -> le90 boxes worked out by hand, every annotation accounted for, malformed files
named with the annotation's index, the official windows and iof rule by hand and against
shapely, the crop / merge round trip, ignore regions painted out, and the commands."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ugs.data.soda_a import (SodaAFormatError, convert_soda_a, poly_to_rbox_le90, rbox_to_poly,
                             read_soda_a_annotation)
from ugs.data.soda_a_crops import crop_name, crop_soda_a, parse_crop_name, polygon_window_iof, sliding_windows
from ugs.data.synthetic_soda_a import generate_synthetic_soda_a

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def rect(cx, cy, w, h, deg):
    """Corners of a w x h rectangle turned by deg, written out with cos / sin."""
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    pts = [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]
    return [v for x, y in pts for v in (cx + c * x - s * y, cy + s * x + c * y)]


@pytest.mark.parametrize("w, h, deg, want_w, want_h, want_deg", [
    (10, 4, 30, 10, 4, 30),          # long side along 30 degrees
    (4, 10, 30, 10, 4, -60),         # long side along 120 degrees -> 120 - 180 = -60 (le90)
    (10, 4, 0, 10, 4, 0),
    (4, 10, 0, 10, 4, -90),          # a vertical box: -90 (the range is [-90, 90))
    (10, 4, 100, 10, 4, -80),        # 100 degrees -> -80
])
def test_le90_by_hand(w, h, deg, want_w, want_h, want_deg):
    rb, reason = poly_to_rbox_le90(rect(50, 60, w, h, deg))
    assert reason is None
    assert rb[0] == pytest.approx(50, abs=1e-3) and rb[1] == pytest.approx(60, abs=1e-3)
    assert (rb[2], rb[3]) == (pytest.approx(want_w, abs=1e-3), pytest.approx(want_h, abs=1e-3))
    assert math.degrees(rb[4]) == pytest.approx(want_deg, abs=1e-3)


def test_rejections_follow_the_official_loader():
    assert poly_to_rbox_le90(rect(5, 5, 10, 1.5, 20))[1] == "side_under_2px"
    assert poly_to_rbox_le90(rect(5, 5, 10, 2.5, 20))[1] is None
    assert poly_to_rbox_le90(list(range(10)))[1] == "more_than_8_numbers"


def write(path, doc):
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


def test_every_annotation_is_kept_ignored_or_rejected(tmp_path):
    anns = [dict(poly=rect(20, 20, 12, 6, 10), category_id=2),            # kept
            dict(poly=rect(40, 40, 30, 30, 0), category_id=9),            # ignore region
            dict(poly=rect(60, 20, 12, 1, 45), category_id=0),            # side under 2 px
            dict(poly=rect(80, 80, 8, 8, 0) + [81, 81], category_id=4),   # 10 numbers
            dict(poly=rect(70, 30, 9, 5, -30), category_id=8)]            # kept
    rec = read_soda_a_annotation(write(tmp_path / "a.json", dict(annotations=anns, categories=[])))
    assert [o["index"] for o in rec["objects"]] == [0, 4] and [o["category_id"] for o in rec["objects"]] == [2, 8]
    assert [g["index"] for g in rec["ignore"]] == [1]
    assert [(r["index"], r["reason"]) for r in rec["rejected"]] == [(2, "side_under_2px"), (3, "more_than_8_numbers")]
    assert read_soda_a_annotation(write(tmp_path / "e.json", ""))["empty"] is True


@pytest.mark.parametrize("doc, message", [
    ("{not json", r"bad\.json: not valid JSON \(line 1"),
    (dict(images=[]), r"bad\.json: no 'annotations' list"),
    (dict(annotations=[dict(poly=[0, 0, 1, 0, 1, 1, 0, 1], category_id=1), dict(category_id=1)]),
     r"bad\.json: annotation 1: needs 'poly' and 'category_id'"),
    (dict(annotations=[dict(poly=[0, 0, 1, 0, 1], category_id=1)]), r"annotation 0: 'poly' must be a list of an even"),
    (dict(annotations=[dict(poly=[0, 0, 1, 0, 1, 1], category_id=3)]), r"annotation 0: an object's 'poly' needs 4"),
    (dict(annotations=[dict(poly=[0, 0, "1", 0, 1, 1, 0, 1], category_id=3)]), r"annotation 0: 'poly' must be"),
    (dict(annotations=[dict(poly=[0, 0, 1, 0, 1, 1, 0, 1], category_id=10)]), r"annotation 0: 'category_id' must be"),
    (dict(annotations=[dict(poly=[0, 0, 1, 0, 1, 1, 0, 1], category_id=1.5)]), r"annotation 0: 'category_id' must be"),
    ('{"annotations": [{"poly": [0, 0, 1, 0, 1, 1, 0, 1], "category_id": NaN}]}', r"annotation 0: 'category_id' must be"),
    ('{"annotations": [{"poly": [0, 0, 1, 0, 1, 1, 0, 1], "category_id": Infinity}]}', r"annotation 0: 'category_id' must be"),
    ('{"annotations": [{"poly": [0, 0, 1, 0, 1, 1, 0, NaN], "category_id": 1}]}', r"annotation 0: 'poly' has a non-finite"),
])
def test_a_malformed_file_names_itself_and_the_annotation(tmp_path, doc, message):
    with pytest.raises(SodaAFormatError, match=message):
        read_soda_a_annotation(write(tmp_path / "bad.json", doc))


def test_converter_accounts_for_the_synthetic_set_and_names_missing_files(tmp_path):
    meta = generate_synthetic_soda_a(tmp_path, splits={"train": 3}, seed=4)
    doc = convert_soda_a(tmp_path / "train", tmp_path / "train.json")
    rep, made = doc["report"], meta["counts"]["train"]
    assert rep["objects"] == made["objects"] == len(doc["annotations"]) > 100
    assert rep["ignore"] == made["ignore"] == len(doc["ignore_regions"])
    assert rep["rejected_by_reason"] == {k: made[k] for k in ("more_than_8_numbers", "side_under_2px")}
    assert rep["annotations"] == rep["objects"] + rep["ignore"] + rep["rejected"]
    assert json.loads((tmp_path / "train.json").read_text())["report"] == rep
    areas = np.array([a["area"] for a in doc["annotations"]])
    assert (areas <= 32 ** 2).mean() > 0.8                      # mostly small, as SODA-A
    assert all(im["width"] > 800 and im["height"] > 800 for im in doc["images"])   # larger than a crop
    (tmp_path / "train" / "Images" / "train00001.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"train00001\.json: its image .*train00001\.jpg does not exist"):
        convert_soda_a(tmp_path / "train")


def test_windows_by_hand():
    # 2000 px: starts 0, 650, 1300 -> the last moved back to 1200 (2000 - 800)
    w = sliding_windows(2000, 700)
    assert w.tolist() == [[0, 0, 800, 800], [650, 0, 1450, 800], [1200, 0, 2000, 800]]
    # 1000 x 1000: starts 0, 200; a 900 x 300 image: one window, 300 / 800 of it inside
    # (rate 0.42 < 0.6): no window passes, so the best ones are kept
    assert sliding_windows(1000, 1000).tolist() == [[0, 0, 800, 800], [0, 200, 800, 1000],
                                                    [200, 0, 1000, 800], [200, 200, 1000, 1000]]
    assert sliding_windows(900, 300).tolist() == [[0, 0, 800, 800], [100, 0, 900, 800]]


def test_iof_against_shapely():
    geometry = pytest.importorskip("shapely.geometry")
    rng = np.random.default_rng(0)
    for _ in range(300):
        poly = rect(*rng.uniform(0, 120, 2), *rng.uniform(2, 60, 2), rng.uniform(0, 180))
        win = (40, 30, 100, 90)
        p = geometry.Polygon(np.reshape(poly, (4, 2)))
        want = p.intersection(geometry.box(*win)).area / p.area
        assert polygon_window_iof(poly, win) == pytest.approx(want, abs=1e-9)


def test_crop_names_round_trip():
    assert parse_crop_name(crop_name("P0001", 800, 650, 1200)) == ("P0001", 800, 650, 1200)
    assert parse_crop_name("some/dir/a__b__800__0___650.jpg") == ("a__b", 800, 0, 650)
    with pytest.raises(ValueError, match="not a crop name"):
        parse_crop_name("P0001.jpg")


def test_crops_keep_every_object_paint_ignore_regions_and_shift_back(tmp_path):
    from PIL import Image

    generate_synthetic_soda_a(tmp_path, splits={"val": 2}, seed=2, p_ignore_region=1.0)
    doc = convert_soda_a(tmp_path / "val", tmp_path / "val.json")
    res = crop_soda_a(tmp_path / "val.json", tmp_path / "val" / "Images", tmp_path / "crops")
    assert res["objects"] == len(doc["annotations"]) and res["objects_in_no_crop"] == []
    assert res["ignore_regions_painted"] == len(doc["ignore_regions"]) > 0
    by_id = {a["id"]: a for a in doc["annotations"]}
    crop = res["crops"][0]
    stem, size, x, y = parse_crop_name(crop["name"])
    lines = (tmp_path / "crops" / "annfiles" / f"{crop['name']}.txt").read_text().splitlines()
    assert len(lines) == crop["objects"] > 0
    # an object fully inside the crop comes back at its place: shift its crop polygon back
    source = [a for a in doc["annotations"] if doc["images"][a["image_id"] - 1]["file_name"] == f"{stem}.jpg"]
    back = [np.asarray([float(v) for v in line.split()[:8]]).reshape(4, 2) + (x, y) for line in lines]
    for poly in back:
        assert min(np.abs(np.asarray(a["poly"]).reshape(4, 2) - poly).max() for a in source) < 0.01
    # ignore regions: black where an ignore polygon covers no object (the first image's first region)
    img = np.asarray(Image.open(tmp_path / "val" / "Images" / f"{stem}.jpg"))
    region = np.asarray(doc["ignore_regions"][0]["poly"]).reshape(4, 2).mean(axis=0).astype(int)
    name = next(c["name"] for c in res["crops"] if c["source"] == doc["images"][doc["ignore_regions"][0]["image_id"] - 1]
                ["file_name"] and c["x"] <= region[0] < c["x"] + 800 and c["y"] <= region[1] < c["y"] + 800)
    _, _, cx, cy = parse_crop_name(name)
    patch = np.asarray(Image.open(tmp_path / "crops" / "images" / f"{name}.jpg"))
    assert img.shape[2] == 3 and patch[region[1] - cy, region[0] - cx].max() < 20     # painted out (JPEG noise)
    assert len(by_id) == len(doc["annotations"])


def test_commands_convert_crop_and_evaluate(tmp_path):
    def ugs(*args):
        return subprocess.run([sys.executable, "-m", "ugs.cli", *map(str, args)], cwd=ROOT, capture_output=True,
                              text=True, timeout=300)
    r = ugs("data", "synth-soda-a", tmp_path / "s", "--num-train", "0", "--num-val", "2", "--num-test", "0")
    assert r.returncode == 0, r.stderr
    assert "annotations =" in r.stdout and (tmp_path / "s" / "converted" / "val.json").is_file()
    r = ugs("data", "crop", tmp_path / "s" / "converted" / "val.json", tmp_path / "c")
    assert r.returncode == 0 and "0 objects in no crop" in r.stdout, r.stdout + r.stderr
    doc = json.loads((tmp_path / "s" / "converted" / "val.json").read_text())
    # perfect detections on the full images: every metric with ground truth is 1
    dets = [dict(file_name=doc["images"][a["image_id"] - 1]["file_name"], category_id=a["category_id"],
                 rbox=a["rbox"], score=1.0) for a in doc["annotations"]]
    (tmp_path / "d.json").write_text(json.dumps(dets))
    r = ugs("eval", "soda-a", tmp_path / "s" / "converted" / "val.json", tmp_path / "d.json", "--out", tmp_path / "m.json")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["AP"] == pytest.approx(1.0) and m["AP50"] == pytest.approx(1.0)
    # the same detections written on crops (each object in every crop that holds it) merge back to 1
    crops = json.loads((tmp_path / "c" / "crops.json").read_text())["crops"]
    cdets = []
    for c in crops:
        for line in (tmp_path / "c" / "annfiles" / f"{c['name']}.txt").read_text().splitlines():
            rb, _ = poly_to_rbox_le90([float(v) for v in line.split()[:8]])
            cdets.append(dict(file_name=c["name"], category_id=["airplane", "helicopter", "small-vehicle",
                              "large-vehicle", "ship", "container", "storage-tank", "swimming-pool",
                              "windmill"].index(line.split()[8]), rbox=list(rb), score=1.0))
    (tmp_path / "cd.json").write_text(json.dumps(cdets))
    r = ugs("eval", "soda-a", tmp_path / "s" / "converted" / "val.json", tmp_path / "cd.json", "--merge", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["AP"] == pytest.approx(1.0) and len(cdets) > len(dets)
    # crop detections without --merge: an error naming the detection and the fix
    r = ugs("eval", "soda-a", tmp_path / "s" / "converted" / "val.json", tmp_path / "cd.json")
    assert r.returncode == 1 and "detection 0" in r.stderr and "use --merge" in r.stderr
    # a malformed annotation file stops the conversion with its name and index
    bad = tmp_path / "s" / "val" / "Annotations" / "val00001.json"
    d = json.loads(bad.read_text())
    d["annotations"][3]["category_id"] = 12
    bad.write_text(json.dumps(d))
    r = ugs("data", "soda-a", tmp_path / "s" / "val", tmp_path / "x.json")
    assert r.returncode == 1 and "val00001.json: annotation 3: 'category_id'" in r.stderr


coord = st.floats(-20, 1020, allow_nan=False)
number = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 2000), st.text(max_size=3),
                   st.none(), st.booleans())


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.fixed_dictionaries({"poly": st.one_of(st.lists(coord, min_size=6, max_size=12),
                                                                   st.lists(number, max_size=10)),
                                       "category_id": st.one_of(st.integers(-2, 12), number)}), max_size=6))
def test_parser_never_crashes_nor_drops_silently(tmp_path_factory, anns):
    path = tmp_path_factory.mktemp("p") / "x.json"
    path.write_text(json.dumps(dict(annotations=anns)), encoding="utf-8")
    try:
        rec = read_soda_a_annotation(path)
    except SodaAFormatError as e:
        assert "x.json" in str(e)
        return
    indices = sorted(r["index"] for k in ("objects", "ignore", "rejected") for r in rec[k])
    assert indices == list(range(len(anns)))               # each annotation in exactly one list


@settings(max_examples=1000, deadline=None)
@given(st.floats(43, 1957), st.floats(43, 1457), st.floats(3, 60), st.floats(3, 60), st.floats(-3.2, 3.2))
def test_an_object_inside_a_crop_comes_back_at_its_place(cx, cy, w, h, a):
    # the object as a crop holds it (shifted by the window's offsets) and as a detection on that
    # crop, taken back by the merge path of `ugs eval soda-a --merge`
    from ugs.evaluation.rotated import merge_crop_detections, resolve_image_ids

    poly = rbox_to_poly((cx, cy, w, h, a))
    gt = dict(images=[dict(id=1, file_name="img.jpg")])
    inside = [win for win in sliding_windows(2000, 1500).tolist() if polygon_window_iof(poly.ravel(), win) == 1.0]
    assert inside, "with 150 px of overlap, an object under 60 px inside the image lies fully inside some window"
    dets = [dict(file_name=crop_name("img", 800, x0, y0), category_id=3, score=0.5,
                 rbox=[cx - x0, cy - y0, w, h, a]) for x0, y0, _, _ in inside]
    merged = merge_crop_detections(resolve_image_ids(dets, gt, merge=True))
    assert len(merged) == 1 and merged[0]["image_id"] == 1          # the copies from overlapping crops merge
    np.testing.assert_allclose(rbox_to_poly(merged[0]["rbox"]), poly, atol=1e-9)
