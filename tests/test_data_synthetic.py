"""ugs.data.synthetic: the seeded small-object set in the VisDrone layout."""
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ugs.data import convert_visdrone, generate_synthetic, read_visdrone_annotation

LINE = re.compile(rb"^\d+,\d+,\d+,\d+,[01],\d+,[01],[012]$")   # 8 non-negative integers


@pytest.fixture(scope="module")
def default_set(tmp_path_factory):
    """The default set (200 train / 50 val, 256 px, seed 0), timed."""
    out = tmp_path_factory.mktemp("synth_default")
    t0 = time.perf_counter()
    meta = generate_synthetic(out)
    return out, meta, time.perf_counter() - t0


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth_small")
    return out, generate_synthetic(out, num_train=6, num_val=3, image_size=128, seed=7)


def _ann_bytes(root: Path):
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.glob("*/annotations/*.txt"))}


def test_default_set_generates_in_under_10_s(default_set):
    out, meta, seconds = default_set
    # the brief: seconds, not minutes (about 4 s on a loaded 2-core machine)
    assert seconds < 10.0
    assert meta["generation_seconds"] <= seconds


def test_layout_and_line_format(small):
    out, meta = small
    for split, n in (("train", 6), ("val", 3)):
        imgs = sorted((out / split / "images").glob("*.jpg"))
        anns = sorted((out / split / "annotations").glob("*.txt"))
        assert [p.stem for p in imgs] == [p.stem for p in anns] == [f"s{i:07d}" for i in range(n)]
        for p in imgs:
            with Image.open(p) as im:
                assert im.size == (128, 128) and im.format == "JPEG"
        for p in anns:
            raw = p.read_bytes()
            assert raw.endswith(b"\r\n")                      # CRLF line ends
            for line in raw.split(b"\r\n")[:-1]:
                assert LINE.match(line), line
    assert json.loads((out / "meta.json").read_text())["parameters"]["seed"] == 7


def test_same_seed_same_bytes(small, tmp_path):
    out, _ = small
    generate_synthetic(tmp_path, num_train=6, num_val=3, image_size=128, seed=7)
    assert _ann_bytes(tmp_path) == _ann_bytes(out)
    # the images too (same encoder on the same machine)
    for p in sorted(out.glob("*/images/*.jpg")):
        assert (tmp_path / p.relative_to(out)).read_bytes() == p.read_bytes()


def test_different_seed_differs(small, tmp_path):
    out, _ = small
    generate_synthetic(tmp_path, num_train=6, num_val=3, image_size=128, seed=8)
    a, b = _ann_bytes(tmp_path), _ann_bytes(out)
    assert a.keys() == b.keys()
    assert sum(a[k] != b[k] for k in a) == len(a)           # every file differs


def test_an_image_does_not_depend_on_the_split_size(small, tmp_path):
    # image i of a split comes from SeedSequence([seed, split, i]): 2 train images instead of
    # 6 leave train/s0000001 and every val image unchanged
    out, _ = small
    generate_synthetic(tmp_path, num_train=2, num_val=3, image_size=128, seed=7)
    a, b = _ann_bytes(tmp_path), _ann_bytes(out)
    assert a["train/annotations/s0000001.txt"] == b["train/annotations/s0000001.txt"]
    assert all(a[k] == b[k] for k in a if k.startswith("val/"))


def test_regeneration_removes_its_own_stale_files_only(tmp_path):
    generate_synthetic(tmp_path, num_train=4, num_val=1, image_size=96, seed=0)
    keep = tmp_path / "train" / "images" / "notes.txt"
    keep.write_text("mine")
    generate_synthetic(tmp_path, num_train=2, num_val=1, image_size=96, seed=0)
    assert len(list((tmp_path / "train" / "images").glob("*.jpg"))) == 2
    assert len(list((tmp_path / "train" / "annotations").glob("*.txt"))) == 2
    assert keep.read_text() == "mine"


def _objects(root: Path):
    """(category, w, h, truncation, occlusion) of every object line, read back from disk."""
    rows = []
    for p in sorted(root.glob("*/annotations/*.txt")):
        rows += [(r.category, r.width, r.height, r.truncation, r.occlusion)
                 for r in read_visdrone_annotation(p) if 1 <= r.category <= 10]
    return np.array(rows)


def test_size_distribution_is_visdrone_like(default_set):
    out, meta, _ = default_set
    o = _objects(out)
    w, h = o[:, 1].astype(float), o[:, 2].astype(float)
    s = np.sqrt(w * h)
    assert len(o) > 2500                                    # 250 images x 8..24 objects
    assert np.mean(w * h < 32 ** 2) > 0.6                   # mostly COCO-small
    assert np.mean(w * h < 16 ** 2) > 0.3                   # many tiny ones
    assert 11 <= np.median(s) <= 17                         # median ~14 px
    assert np.percentile(s, 99) > 40 and s.max() <= 96      # a tail, capped at 96 px
    assert min(w.min(), h.min()) >= 1
    # meta.json reports the same statistics as the files on disk
    assert meta["size_stats"]["objects"] == len(o)
    assert meta["size_stats"]["fraction_area_under_32sq"] == pytest.approx(np.mean(w * h < 1024), abs=1e-4)


def test_classes_aspects_occlusion_truncation(default_set):
    out, meta, _ = default_set
    o = _objects(out)
    cats, w, h = o[:, 0], o[:, 1].astype(float), o[:, 2].astype(float)
    counts = np.bincount(cats, minlength=11)[1:]
    assert (counts / counts.sum() > 0.02).all()             # all 10 classes, none negligible
    ar = w / h
    elong = np.maximum(w, h) / np.minimum(w, h)
    assert np.median(ar[cats == 1]) < 0.6                   # pedestrians stand tall
    assert np.median(elong[cats == 9]) > 2.2                # buses are long (either way round)
    assert np.median(elong[cats == 4]) > 1.4                # cars too
    occ = np.bincount(o[:, 4], minlength=3)
    assert occ[0] > occ[1] > occ[2] > 0                     # all three occlusion levels
    assert 0 < o[:, 3].sum() < 0.15 * len(o)                # some truncated objects


def test_round_trip_through_the_converter(default_set):
    out, meta, _ = default_set
    for split in ("train", "val"):
        sm = meta["splits"][split]
        r = convert_visdrone(out / split, out / "annotations" / f"{split}.json")
        assert r["lines"] == sm["lines"] == r["kept"] + r["ignored"] + r["rejected"]
        assert r["kept"] == sm["annotated_objects"]
        assert r["ignored"] == sm["ignored_regions"] > 0
        assert r["ignored_reasons"] == {"ignored_region": sm["ignored_regions"]}
        # the only rejections are the category-11 "others", written with score 0
        assert r["rejected_reasons"] == {"others": sm["others_objects"]}
        assert r["clipped"] == 0                               # boxes are written in-image
        coco = json.loads((out / "annotations" / f"{split}.json").read_text())
        assert {i["width"] for i in coco["images"]} == {256}
        for a in coco["annotations"]:
            x, y, bw, bh = a["bbox"]
            assert x >= 0 and y >= 0 and x + bw <= 256 and y + bh <= 256


def test_bad_parameters():
    with pytest.raises(ValueError, match="image_size"):
        generate_synthetic("/nonexistent-never-written", image_size=32)
    with pytest.raises(ValueError, match="num_train"):
        generate_synthetic("/nonexistent-never-written", num_train=-1)
    with pytest.raises(ValueError, match="seed"):
        generate_synthetic("/nonexistent-never-written", seed=-3)
