"""The ``ugs`` command line: ``python -m ugs.cli data synth|visdrone``."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from ugs.cli import main


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "ugs.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.fixture()
def tiny_split(tmp_path):
    """One 40 x 30 image; 4 lines: car kept, region, others rejected, truck clipped to the
    image (x 30..40 of 30..45) -> kept 2, ignored 1, rejected 1."""
    root = tmp_path / "split"
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    Image.new("RGB", (40, 30), (100, 100, 100)).save(root / "images" / "x.jpg")
    (root / "annotations" / "x.txt").write_bytes(
        b"1,1,8,4,1,4,0,0,\r\n0,20,10,10,0,0,0,0,\r\n12,2,3,3,0,11,0,0,\r\n30,10,15,5,1,6,1,0,\r\n")
    return root


def test_synth_end_to_end(tmp_path):
    out = tmp_path / "synth"
    p = _run("data", "synth", out, "--num-train", 3, "--num-val", 2, "--image-size", 96,
             "--seed", 1)
    assert p.returncode == 0, p.stderr
    assert "generated 3 train + 2 val images" in p.stdout
    assert len(re.findall(r"lines \d+ = kept \d+ \+ ignored", p.stdout)) == 2  # one per split
    meta = json.loads((out / "meta.json").read_text())
    assert meta["parameters"]["image_size"] == [96, 96] and meta["parameters"]["seed"] == 1
    # the same scenes in Table 4's layouts: VOC07+12 lists (train split in halves) and COCO 2017
    lists = {y: (out / "VOCdevkit" / y / "ImageSets" / "Main" / f"{s}.txt").read_text().split()
             for y, s in (("VOC2007", "trainval"), ("VOC2012", "trainval"))}
    assert len(lists["VOC2007"]) == 2 and len(lists["VOC2012"]) == 1
    assert len(json.loads((out / "coco" / "annotations" / "instances_val2017.json").read_text())["images"]) == 2
    assert "voc VOC2007/test: images 2" in p.stdout
    for split, n in (("train", 3), ("val", 2)):
        coco = json.loads((out / "annotations" / f"{split}.json").read_text())
        assert len(coco["images"]) == n
        # in = out: the printed report's kept count is the number of COCO annotations
        assert len(coco["annotations"]) == meta["splits"][split]["annotated_objects"]


def test_visdrone_end_to_end_json_report(tiny_split, tmp_path):
    out = tmp_path / "o" / "x.json"
    p = _run("data", "visdrone", tiny_split, out, "--json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    # hand count: car + truck kept, one region, one "others"; the truck is clipped
    assert (r["lines"], r["kept"], r["ignored"], r["rejected"], r["clipped"]) == (4, 2, 1, 1, 1)
    coco = json.loads(out.read_text())
    assert [a["bbox"] for a in coco["annotations"]] == [[1, 1, 8, 4], [30, 10, 10, 5]]


def test_visdrone_text_report(tiny_split, tmp_path):
    p = _run("data", "visdrone", tiny_split, tmp_path / "x.json")
    assert p.returncode == 0, p.stderr
    assert "lines 4 = kept 2 + ignored 1 + rejected 1" in p.stdout


def test_bad_argument_via_subprocess(tmp_path):
    p = _run("data", "synth", tmp_path / "s", "--num-train", "0")
    assert p.returncode == 2 and "argument --num-train" in p.stderr
    p = _run("data", "visdrone", tmp_path / "missing", tmp_path / "x.json")
    assert p.returncode == 2 and "argument SPLIT_DIR" in p.stderr


def test_malformed_data_exits_1_naming_file_and_line(tiny_split, tmp_path):
    (tiny_split / "annotations" / "x.txt").write_bytes(b"1,1,8,4,1,4,0,0\r\n1,1,8,4,1,4,zero,0\r\n")
    p = _run("data", "visdrone", tiny_split, tmp_path / "x.json")
    assert p.returncode == 1
    assert "x.txt, line 2" in p.stderr and "zero" in p.stderr
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("argv, named", [
    (["data", "synth", "{t}/s", "--num-val", "-2"], "argument --num-val"),
    (["data", "synth", "{t}/s", "--image-size", "abc"], "argument --image-size"),
    (["data", "synth", "{t}/s", "--image-size", "32"], "argument --image-size"),
    (["data", "synth", "{t}/s", "--seed", "-1"], "argument --seed"),
    (["data", "synth", "{t}/file.txt"], "argument OUT"),
    (["data", "synth"], "OUT"),
    (["data", "visdrone", "{t}"], "OUT_JSON"),
    (["data", "visdrone", "{t}/nope", "{t}/x.json"], "argument SPLIT_DIR"),
    (["data", "visdrone", "{t}/noann", "{t}/x.json"], "argument SPLIT_DIR"),
    (["data", "visdrone", "{split}", "{t}"], "argument OUT_JSON"),
    (["data"], "DATA_COMMAND"),
    ([], "COMMAND"),
])
def test_bad_arguments_in_process(tmp_path, tiny_split, capsys, argv, named):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "noann" / "images").mkdir(parents=True)
    argv = [a.format(t=tmp_path, split=tiny_split) for a in argv]
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert named in capsys.readouterr().err


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "ugs"
    if not exe.exists():
        pytest.skip("the ugs console script is not installed (pip install -e . creates it)")
    p = subprocess.run([str(exe), "data", "--help"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "synth" in p.stdout and "visdrone" in p.stdout


def test_synth_layouts_rewrites_the_copies_and_names_a_bad_root(tmp_path):
    import shutil

    out = tmp_path / "s"
    assert _run("data", "synth", out, "--num-train", 2, "--num-val", 1, "--image-size", 64).returncode == 0
    shutil.rmtree(out / "VOCdevkit")
    shutil.rmtree(out / "coco")
    p = _run("data", "synth-layouts", out)
    assert p.returncode == 0, p.stderr
    assert f"wrote {out / 'VOCdevkit'} and {out / 'coco'}" in p.stdout
    assert (out / "VOCdevkit" / "VOC2012" / "ImageSets" / "Main" / "trainval.txt").is_file()
    bad = _run("data", "synth-layouts", tmp_path / "empty")
    assert bad.returncode == 2 and "has no annotations/train.json" in bad.stderr
