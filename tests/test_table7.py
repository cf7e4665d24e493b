"""Table 7 (grid parameters of Faster R-CNN w/ UGS): the measured quick sweep of notebook 10.

``papers_tables/measured/table7_quick_synthetic.csv`` is written by notebook 10's quick profile
(a 2-point smoke sweep, 1 epoch), committed by ``ci/run_notebooks.py --update-committed``;
every record's ``source`` is a run id of ``commands.csv``, read back as the command that trained
it by ``ugs.measured.load_measured``.
The commands are checked by rebuilding their configs with the training tool: each sets the
grid of the row's stage to the row's (alpha, beta, n) and leaves the other stage at its
default.
"""
import os
import shlex

import pytest

from ugs.measured import load_measured
from ugs.papers import load_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEASURED = os.path.join(ROOT, "papers_tables", "measured", "table7_quick_synthetic.csv")
SETTINGS = ("stage", "parameter", "alpha", "beta", "n")


def _measured():
    return load_measured(os.path.basename(MEASURED)).records


def test_measured_sweep_is_in_table7s_schema_with_the_rows_settings():
    paper = load_table(7)
    records = _measured()
    assert records
    for r in records:
        assert r["run"].startswith("10_grid_parameters/")
        if r["column"] == "train_loss":           # the mean logged loss, not a paper column
            assert 0.0 < r["value"] < 100.0
            continue
        printed = paper.select(r["row"], r["column"])
        assert len(printed) == 1, (r["row"], r["column"])
        for k in SETTINGS:                        # joinable on the grid settings
            assert r[k] == printed[0][k], (r["row"], k)
        assert r["status"] == "measured" and r["profile"] == "quick"
        assert "ugs.openmmlab.train" in r["source"] and "--profile quick" in r["source"]
        assert r["value"] == -1.0 or 0.0 <= r["value"] <= 100.0
    assert {r["stage"] for r in records} == {"RPN", "R-CNN"}


def test_each_measured_command_sets_its_rows_grid_on_its_stage():
    pytest.importorskip("mmdet")
    from ugs.openmmlab.train import _parse_options, build_config

    for r in _measured():
        argv = shlex.split(r["source"])
        config = argv[argv.index("ugs.openmmlab.train") + 1]
        options = argv[argv.index("--cfg-options") + 1:]
        cfg = build_config(os.path.join(ROOT, config), profile="quick", work_dir="/tmp/w",
                           options=_parse_options(options))
        rpn, rcnn = cfg.model.rpn_head.ugs, cfg.model.roi_head.bbox_head.ugs
        swept, other = (rpn, rcnn) if r["stage"] == "RPN" else (rcnn, rpn)
        assert (float(swept.alpha), float(swept.beta), int(swept.n)) == \
            (float(r["alpha"]), float(r["beta"]), int(r["n"])), r["row"]
        # the other stage keeps Table 7's best of its own stage
        best = (2.0, 1.0, 10) if r["stage"] == "R-CNN" else (5.0, 1.0, 5)
        assert (float(other.alpha), float(other.beta), int(other.n)) == best


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "the quick profile is a 2-point smoke sweep (1 epoch of a ResNet-18 from scratch on 128-px "
    "synthetic images): it neither covers the 15 points nor resolves Table 7's differences of a "
    "few tenths of AP; notebook 10 says so. The paper profile (all points, VisDrone, 12 epochs) "
    "is the run that can test Sec. 4.8's claim"))
def test_best_grids_are_alpha2_for_rpn_and_alpha5_for_rcnn():
    # Sec. 4.8: alpha = 2 (RPN) and alpha = 5 (R-CNN), beta = 1.0, are the best per stage
    records = [r for r in _measured() if r["column"] == "AP" and r["parameter"] == "alpha-beta"]
    for stage, best in (("RPN", ("2", "1.0")), ("R-CNN", ("5", "1.0"))):
        ab = {(r["alpha"], r["beta"]): r["value"] for r in records if r["stage"] == stage}
        assert len(ab) == 4, (stage, sorted(ab))
        assert max(ab, key=ab.get) == best
