"""Table 6 (component ablation): the measured quick-profile table and the paper's claim.

The measured numbers are notebook 09's quick profile, kept as data in
``papers_tables/measured/table6_quick_synthetic.csv`` (committed by ``ci/run_notebooks.py --update-committed``;
every record's ``source`` is a run id of ``commands.csv`` there, read back as the command by
``ugs.measured.load_measured``). Only two rows are measured there
(L2, full UGS); the other eleven are built and run one step in
``tests/test_table6_baselines.py``.
"""
import os

import pytest

from ugs.ablation import TABLE6_CONFIGS
from ugs.measured import load_measured
from ugs.papers import load_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEASURED = os.path.join(ROOT, "papers_tables", "measured", "table6_quick_synthetic.csv")
QUICK_ROWS = ("l2_baseline", "ce_in_um_ur_l0.5_g0.5_r0.5")


def _measured():
    return {(r["row"], r["column"]): r for r in load_measured(os.path.basename(MEASURED)).records}


def test_measured_quick_profile_is_in_the_paper_schema_and_joins_table6():
    records, paper = _measured(), load_table(6)
    assert {row for row, _ in records} == set(QUICK_ROWS)
    for (row, col), r in records.items():
        assert col in ("AP", "AP50", "AP_s", "train_loss")
        assert r["status"] == "measured" and r["run"] == f"09_ablation/{row}"
        assert f"ugs.openmmlab.train {TABLE6_CONFIGS[row]}" in r["source"]
        assert "--profile quick" in r["source"]
        if col == "train_loss":             # the mean logged loss, not a paper column
            assert 0.0 < r["value"] < 100.0
            continue
        assert r["value"] == -1.0 or 0.0 <= r["value"] <= 100.0
        p = paper.record(row, col)          # the settings join on the paper's record
        for key in paper.settings:
            assert r[key] == p[key], (row, key)


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "the quick profile (one epoch on 40 synthetic 256-px images, ResNet-18 from scratch, CPU) "
    "leaves every row at AP ~0: it cannot reach Table 6's VisDrone levels, and one run per row "
    "cannot resolve the paper's 0.2-2.9 AP differences; notebook 09 says so. The paper profile "
    "(notebook 09 with -p profile paper) is the run that can test this claim."))
def test_full_ugs_gain_over_l2_matches_table6():
    paper, measured = load_table(6), _measured()
    best, base = "ce_in_um_ur_l0.5_g0.5_r0.5", "l2_baseline"
    for col in ("AP", "AP_s"):
        paper_gain = paper.value(best, col) - paper.value(base, col)
        ours = measured[(best, col)]["value"] - measured[(base, col)]["value"]
        assert abs(ours - paper_gain) <= 1.0, (col, ours, paper_gain)
        assert abs(measured[(best, col)]["value"] - paper.value(best, col)) <= 2.0
