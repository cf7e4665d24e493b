"""The notebook run helpers of ``ugs/openmmlab/runs.py``: commands written out by hand."""
import pathlib
import re
import sys

import pytest

from ugs.openmmlab import runs


ROOT = pathlib.Path("/repo")


def test_resolve_and_relative():
    assert runs.resolve("data/synthetic", ROOT) == pathlib.Path("/repo/data/synthetic")
    assert runs.resolve("/abs/x", ROOT) == pathlib.Path("/abs/x")
    assert runs.relative("/repo/work_dirs/a", ROOT) == "work_dirs/a"
    assert runs.relative("/elsewhere/a", ROOT) == "/elsewhere/a"


def test_train_command_without_max_per_img_and_portable():
    cmd = runs.train_command("configs/c.py", root=ROOT, profile="quick", data_root="/repo/data/synthetic",
                             work_dir="/repo/work_dirs/x", epochs=1, seed=3, max_per_img=None, image_size=256,
                             options=["a=1", "b=2"], python=sys.executable)
    assert cmd == [sys.executable, "-m", "ugs.openmmlab.train", "configs/c.py", "--profile", "quick",
                   "--data-root", "data/synthetic", "--work-dir", "work_dirs/x", "--epochs", "1", "--seed", "3",
                   "--image-size", "256", "--cfg-options", "a=1", "b=2"]
    assert runs.portable(cmd, ROOT) == ("python -m ugs.openmmlab.train configs/c.py --profile quick "
                                        "--data-root data/synthetic --work-dir work_dirs/x --epochs 1 --seed 3 "
                                        "--image-size 256 --cfg-options a=1 b=2")
    with_max = runs.train_command("configs/c.py", root=ROOT, profile="paper", data_root="/d", work_dir="w",
                                  epochs=12, seed=0, max_per_img=500, image_size=256, python="py")
    assert with_max == ["py", "-m", "ugs.openmmlab.train", "configs/c.py", "--profile", "paper", "--data-root",
                        "/d", "--work-dir", "w", "--epochs", "12", "--seed", "0", "--max-per-img", "500"]


def test_train_expects_its_result_file(tmp_path):
    ok = [sys.executable, "-c", "import json; json.dump({'n': 7}, open('out/result.json', 'w')); print('hi')"]
    run = runs.train("ok", ok, tmp_path / "out", tmp_path, show=lambda line: None, expect="result.json")
    assert run["result"] == {"n": 7} and "metrics" not in run
    assert run["log"].read_text() == "hi\n"
    with pytest.raises(RuntimeError, match="wrote no .*metrics.json"):
        runs.train("none", [sys.executable, "-c", "print(1)"], tmp_path / "out", tmp_path, show=lambda line: None)


def test_dataset_path_and_count_images(tmp_path):
    assert runs.dataset_path("synthetic", None, ROOT) == pathlib.Path("/repo/data/synthetic")
    assert runs.dataset_path("visdrone", "vd", ROOT) == pathlib.Path("/repo/vd")
    with pytest.raises(ValueError, match="needs data_root"):
        runs.dataset_path("visdrone", None, ROOT)
    with pytest.raises(ValueError, match="'coco'"):
        runs.dataset_path("coco", None, ROOT)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "train.json").write_text('{"images": [{"id": 1}, {"id": 2}, {"id": 5}]}')
    assert runs.count_images(tmp_path, "train") == 3


def test_check_visdrone_names_what_is_missing_and_the_commands(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        runs.check_visdrone(tmp_path)
    msg = str(err.value)
    for part in ("annotations/train.json", "annotations/val.json", "VisDrone2019-DET-train/images/",
                 "VisDrone2019-DET-val/images/",
                 f"python -m ugs.cli data visdrone {tmp_path}/VisDrone2019-DET-val {tmp_path}/annotations/val.json"):
        assert part in msg
    (tmp_path / "annotations").mkdir()
    for split in ("train", "val"):
        (tmp_path / "annotations" / f"{split}.json").write_text("{}")
        (tmp_path / f"VisDrone2019-DET-{split}" / "images").mkdir(parents=True)
    runs.check_visdrone(tmp_path)                       # complete: no error
    (tmp_path / "VisDrone2019-DET-val" / "images").rmdir()
    with pytest.raises(FileNotFoundError, match=r"no VisDrone2019-DET-val/images/\."):
        runs.check_visdrone(tmp_path)


def test_train_without_a_result_file(tmp_path):
    # a run whose metric writes no file (mmdet's VOC metric): only the exit status counts
    run = runs.train("voc", [sys.executable, "-c", "print(1)"], tmp_path / "out", tmp_path, show=lambda line: None,
                     expect=None)
    assert run["result"] is None and "metrics" not in run
    with pytest.raises(RuntimeError, match="exit 3"):
        runs.train("bad", [sys.executable, "-c", "raise SystemExit(3)"], tmp_path / "out", tmp_path,
                   show=lambda line: None, expect=None)


@pytest.mark.parametrize("line, want", [
    ("11/30 04:08:58 - mmengine - INFO - Epoch(val) [1][50/50]    coco/AP: 0.1230  coco/AP50: 0.4000  "
     "coco/AP_l: -100.0000  data_time: 0.0024  time: 0.0981", "  epoch 1 val: AP 0.1  AP50 0.4  AP_l -"),
    ("11/30 04:08:35 - mmengine - INFO - Epoch(val) [4][50/50]    pascal_voc/mAP: 0.5120  pascal_voc/AP50: 0.5120  "
     "data_time: 0.0023  time: 0.0985", "  epoch 4 val: mAP 0.5  AP50 0.5"),
    ("11/30 01:46:43 - mmengine - INFO - Epoch(val) [1][50/50]    visdrone/AP: 0.0800  visdrone/AP_l: -100.0000  "
     "data_time: 0.0028", "  epoch 1 val: AP 0.1  AP_l -"),
    ("11/30 01:46:43 - mmengine - INFO - Epoch(val) [1][10/50]    eta: 0:00:02  time: 0.0613", None),
])
def test_condense_shows_each_metrics_validation_summary(line, want):
    assert runs.condense(line) == want


_FAKE_RUN = r'''
import json, sys
lines = [
    "11/30 04:08:50 - mmengine - INFO - Epoch(train) [1][1/2]  lr: 1.0e-02  eta: 0:00:04  time: 0.5  loss: 2.5000  loss_cls: 1.5000  loss_bbox: 1.0000",
    "11/30 04:08:51 - mmengine - INFO - Epoch(train) [1][2/2]  lr: 1.0e-02  eta: 0:00:00  time: 0.5  loss: 2.2500  loss_cls: 1.2500  loss_bbox: 1.0000",
    "11/30 04:08:52 - mmengine - INFO - Epoch(val) [1][4/4]    coco/AP: 0.2500  coco/AP50: 0.5000  data_time: 0.0024",
    "final: AP 25.0 AP_s -100.0",
]
for line in lines:
    print(line, flush=True)
open(sys.argv[1], "w").write(json.dumps({"AP": 25.0}))
'''


def test_train_prints_each_progress_update_outside_a_notebook(tmp_path, capsys):
    script = tmp_path / "fake_run.py"
    script.write_text(_FAKE_RUN)
    out = tmp_path / "w"
    run = runs.train("toy", [sys.executable, str(script), str(out / "metrics.json")], out, tmp_path)
    assert run["metrics"] == {"AP": 25.0}
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("[toy] $ ")
    assert lines[1] == "[toy] epoch 1 iter    1/2  eta 0:00:04  loss 2.500  loss_cls 1.500  loss_bbox 1.000"
    assert lines[3] == ("[toy] epoch 1 iter    2/2  eta 0:00:00  loss 2.250  loss_cls 1.250  loss_bbox 1.000"
                        "  |  epoch 1 val: AP 0.2  AP50 0.5")
    assert re.fullmatch(r"\[toy\] done in \d+ s  final: AP 25\.0 AP_s -", lines[-1])
    assert len(lines) == 5   # the command, 2 steps, the val summary after the last, done


def test_train_in_a_notebook_keeps_one_live_line_per_run(tmp_path):
    """Executed as papermill executes a notebook (nbclient, a real kernel): each run leaves its
    command and exactly one display output, whose last state is the run's summary."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    script = tmp_path / "fake_run.py"
    script.write_text(_FAKE_RUN)
    code = (f"import sys\nfrom ugs.openmmlab import runs\n"
            f"for name in ('a', 'b'):\n"
            f"    runs.train(name, [sys.executable, {str(script)!r}, {str(tmp_path)!r} + f'/{{name}}/metrics.json'],"
            f" {str(tmp_path)!r} + f'/{{name}}', {str(tmp_path)!r})\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    displays = [o for o in outputs if o.output_type == "display_data"]
    assert len(displays) == 2
    for name, d in zip("ab", displays):
        assert re.fullmatch(rf"\[{name}\] done in \d+ s  final: AP 25\.0 AP_s -", d.data["text/plain"])
    printed = "".join(o.text for o in outputs if o.output_type == "stream")
    assert printed.count("$ ") == 2 and "epoch 1 iter" not in printed   # no wall of log lines


def test_ensure_synthetic_makes_the_set_at_the_size_asked_and_refuses_another(tmp_path):
    import json
    root = pathlib.Path(__file__).resolve().parents[1]
    data = tmp_path / "synth64"
    assert runs.ensure_synthetic(data, root, image_size=64) is True
    meta = json.loads((data / "meta.json").read_text())["parameters"]
    assert meta["image_size"] == [64, 64]
    first = json.loads((data / "annotations" / "val.json").read_text())["images"][0]
    assert (first["width"], first["height"]) == (64, 64)
    assert runs.ensure_synthetic(data, root, image_size=64) is False       # there: not made again
    with pytest.raises(ValueError, match=r"synth64: a synthetic set of 64x64 px \(meta.json\), not 96x96"):
        runs.ensure_synthetic(data, root, image_size=96)
