"""Table 1 (VisDrone val): configs for the implemented rows, and the paper's claim.

The measured numbers are notebook 03's quick profile, kept as data in
``papers_tables/measured/table1_quick_synthetic.csv`` (committed by ``ci/run_notebooks.py
--update-committed``; every record's ``source`` is a run id of ``commands.csv`` there, read back
as the command by ``ugs.measured.load_measured``). The quick profile runs the three FCOS rows
(FCOS, its control, FCOS w/ UGS) by default; the GFL V1 and Faster / Cascade R-CNN rows are
implemented (configs below) and run in notebook 03 when named in its ``detectors`` parameter, but
are not in the committed quick table (the main job's 20 minutes on 2 cores do not leave room for
them; the CPU study has GFL V1 and Faster R-CNN with five seeds each). DINO is notebook 04.
"""
import os
import re

import pytest

from ugs.measured import load_measured
from ugs.papers import load_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEASURED = os.path.join(ROOT, "papers_tables", "measured", "table1_quick_synthetic.csv")
PAIRS = (("fcos", "fcos_ugs"),)   # the quick default: the FCOS rows (GFL V1 and the R-CNN rows when named)
CONTROLS = {"fcos_grid_iou": "configs/fcos/fcos_r50_fpn_grid_iou_1x_visdrone.py"}   # not rows of Table 1
CONFIGS = {"fcos": "configs/fcos/fcos_r50_fpn_1x_visdrone.py",
           "fcos_ugs": "configs/fcos/fcos_r50_fpn_ugs_1x_visdrone.py",
           "gfl_v1": "configs/gfl/gfl_r50_fpn_1x_visdrone.py",
           "gfl_v1_ugs": "configs/gfl/gfl_r50_fpn_ugs_1x_visdrone.py",
           "faster_rcnn": "configs/faster_rcnn/faster_rcnn_r50_fpn_1x_visdrone.py",
           "faster_rcnn_ugs": "configs/faster_rcnn/faster_rcnn_r50_fpn_ugs_1x_visdrone.py",
           "cascade_rcnn": "configs/cascade_rcnn/cascade_rcnn_r50_fpn_1x_visdrone.py",
           "cascade_rcnn_ugs": "configs/cascade_rcnn/cascade_rcnn_r50_fpn_ugs_1x_visdrone.py"}
NOTEBOOK = os.path.join(ROOT, "notebooks", "03_visdrone_detectors.py")


def test_every_implemented_row_is_a_row_of_table1_with_a_config():
    rows = set(load_table(1).rows())
    for row, config in CONFIGS.items():
        assert row in rows, row
        assert os.path.isfile(os.path.join(ROOT, config)), config


def test_notebook_03_trains_every_implemented_row_with_its_config():
    # notebook 03's DETECTORS: name -> (config, Table 1 row id, baseline); each implemented
    # row is there with its config (read from the notebook's source, not imported: it runs)
    with open(NOTEBOOK, encoding="utf-8") as f:
        text = f.read()
    for row, config in {**CONFIGS, **CONTROLS}.items():
        assert re.search(rf'\(\s*"{re.escape(config)}",\s*"{re.escape(row)}",', text), row


def _measured():
    table = load_measured(os.path.basename(MEASURED))
    return {(r["row"], r["column"]): r for r in table.records}


def test_measured_quick_profile_is_in_the_paper_schema():
    records = _measured()
    paper_rows = set(load_table(1).rows())
    assert {row for row, _ in records} == {r for pair in PAIRS for r in pair} | set(CONTROLS)
    for (row, col), r in records.items():
        assert (row in paper_rows) != (row in CONTROLS), row     # a Table 1 row, or a control
        assert col in ("AP", "AP50", "AP_s", "AP_m", "AP_l", "train_loss")
        assert r["status"] == "measured" and r["run"].startswith("03_visdrone_detectors/")
        assert f"ugs.openmmlab.train {({**CONFIGS, **CONTROLS})[row]} --profile quick" in r["source"]
        if col == "train_loss":   # the mean logged loss: a positive, finite number
            assert 0.0 < r["value"] < 100.0
        else:
            assert r["value"] == -1.0 or 0.0 <= r["value"] <= 100.0


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "the quick profile (3 epochs on 200 synthetic 256-px images, ResNet-18 from scratch, CPU) "
    "measures a different, much smaller problem: it cannot reach Table 1's VisDrone levels, and "
    "a single seed cannot resolve FCOS's 2.5 AP difference; notebook 03 says so. The paper "
    "profile (README, 'Training') is the run that can test this claim."))
def test_ugs_gains_and_levels_match_table1():
    paper, measured = load_table(1), _measured()
    for base, ugs in PAIRS:
        paper_gain = paper.value(ugs, "AP") - paper.value(base, "AP")
        ours_gain = measured[(ugs, "AP")]["value"] - measured[(base, "AP")]["value"]
        assert abs(ours_gain - paper_gain) <= 1.0, (ugs, ours_gain, paper_gain)
        assert abs(measured[(ugs, "AP")]["value"] - paper.value(ugs, "AP")) <= 2.0
