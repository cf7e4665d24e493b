"""Table 2 (TPH-YOLOv5 on VisDrone): notebook 05's measured quick-profile table and the paper's
claim.

The measured numbers are in ``papers_tables/measured/table2_quick_synthetic.csv`` (committed by
``ci/run_notebooks.py --update-committed``; each ``source`` is a run id of ``commands.csv``, read
back as the command by ``ugs.measured.load_measured``). The quick profile trains the 640 rows,
baseline and w/ UGS, at 256 px with a small TPH-YOLOv5."""

import pytest

from ugs.measured import load_measured
from ugs.papers import load_table

QUICK_ROWS = ("tph_yolov5_x_640", "tph_yolov5_x_640_ugs")


def _measured():
    return {(r["row"], r["column"]): r for r in load_measured("table2_quick_synthetic.csv").records}


def test_measured_quick_profile_is_in_table2s_schema_and_runs_each_rows_config():
    records, paper = _measured(), load_table(2)
    assert {row for row, _ in records} == set(QUICK_ROWS)
    assert {col for _, col in records} == {"AP", "AP_s", "AP_m", "train_loss"}
    for (row, col), r in records.items():
        config = f"configs/tph_yolov5/tph_yolov5_x{'_ugs' if row.endswith('_ugs') else ''}_640_visdrone.py"
        assert r["status"] == "measured" and r["run"] == f"05_visdrone_yolo/{row}"
        assert f"ugs.openmmlab.train {config} --profile quick --data-root data/synthetic" in r["source"]
        assert "--image-size 256" in r["source"] and r["input_size"] == "(256, 256)"
        assert (r["method"], r["variant"]) == (paper.record(row, "AP")["method"], paper.record(row, "AP")["variant"])
        assert 0.0 < r["value"] < 100.0 if col == "train_loss" else 0.0 <= r["value"] <= 100.0


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "the quick profile (one epoch of 10 steps on 40 synthetic images at 256 px, a TPH-YOLOv5 at "
    "depth 0.33 / width 0.25 from scratch, CPU) leaves both rows at AP 0; Table 2's +2.5 AP comes "
    "from TPH-YOLOv5-x trained 80 epochs on VisDrone at 640 and 1536. Notebook 05 says so; its "
    "paper profile is the run that can test this claim."))
def test_ugs_improves_tph_yolov5_at_640():
    measured = _measured()
    for col in ("AP", "AP_s"):
        base, ugs = measured[("tph_yolov5_x_640", col)], measured[("tph_yolov5_x_640_ugs", col)]
        assert ugs["value"] > base["value"], (col, base["value"], ugs["value"])
