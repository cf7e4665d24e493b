"""Table 3 (four rotated detectors on SODA-A): notebook 06's measured quick-profile table and the
paper's claim.

The measured numbers are in ``papers_tables/measured/table3_quick_synthetic.csv`` (committed by
``ci/run_notebooks.py --update-committed``; each ``source`` is a run id of ``commands.csv``, read
back as the command by ``ugs.measured.load_measured``). The quick profile trains Rotated FCOS,
baseline and w/ UGS, for one epoch of 10 steps on a small synthetic SODA-A-format set."""

import pytest

from ugs.measured import load_measured
from ugs.papers import load_table

QUICK_ROWS = ("rotated_fcos", "rotated_fcos_ugs")
COLUMNS = {"AP", "AP50", "AP75", "AP_eS", "AP_rS", "AP_gS", "AP_N", "train_loss", "skipped_steps"}


def _measured():
    return {(r["row"], r["column"]): r for r in load_measured("table3_quick_synthetic.csv").records}


def test_measured_quick_profile_is_in_table3s_schema_and_runs_each_rows_config():
    records, paper = _measured(), load_table(3)
    assert {row for row, _ in records} == set(QUICK_ROWS)
    assert {col for _, col in records} == COLUMNS
    for (row, col), r in records.items():
        config = f"configs/table3/rotated_fcos_r50_fpn{'_ugs' if row.endswith('_ugs') else ''}_1x_sodaa.py"
        assert r["status"] == "measured" and r["run"] == f"06_soda_a_rotated/{row}"
        assert f"ugs.openmmlab.train {config} --profile quick --data-root data/synthetic_sodaa_small" in r["source"]
        assert "--image-size 256" in r["source"] and "--epochs 1" in r["source"]
        assert (r["method"], r["variant"]) == (paper.record(row, "AP")["method"], paper.record(row, "AP")["variant"])
        if col == "skipped_steps":
            assert r["value"] == 0.0, (row, "non-finite training steps")
        elif col == "train_loss":
            assert 0.0 < r["value"] < 100.0
        else:
            assert r["value"] == -1.0 or 0.0 <= r["value"] <= 100.0


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "the quick profile (Rotated FCOS with a ResNet-18 from scratch, one epoch of 10 steps on 40 "
    "synthetic crops at 256 px, CPU) leaves both rows at AP 0.0; Table 3's +2.6 AP for Rotated FCOS "
    "comes from R-50 models trained 12 epochs on SODA-A's 1200 px crops. Notebook 06 says so; its "
    "paper profile is the run that can test this claim."))
def test_ugs_improves_rotated_fcos():
    measured = _measured()
    for col in ("AP", "AP_eS"):
        base, ugs = measured[("rotated_fcos", col)], measured[("rotated_fcos_ugs", col)]
        assert ugs["value"] > base["value"], (col, base["value"], ugs["value"])
