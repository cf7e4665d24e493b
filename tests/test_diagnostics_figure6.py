"""Figure 6 (Sec. 4.6): the variance of the small anchors' localization gradient, Smooth-L1
over UGS, as measured by notebook 11's quick profile.

The measured numbers are kept as data in ``papers_tables/measured/figure6_quick_synthetic.csv``
(written by the notebook; each record's ``source`` is the training commands). The paper's
2.9x is read from ``papers_tables/figure6.csv``.
"""
import math
import os

import pytest

from ugs.diagnostics import width_bucket_names
from ugs.papers import load_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEASURED = os.path.join(ROOT, "papers_tables", "measured", "figure6_quick_synthetic.csv")


def _measured(committed=os.path.basename(MEASURED), tier="main"):
    """A committed Fig. 6 table by (row, column); its sources read back from run ids to commands."""
    from ugs.measured import load_measured

    return {(r["row"], r["column"]): r for r in load_measured(committed, tier).records}


def test_measured_figure6_is_in_the_paper_schema():
    m = _measured()
    small = f"ugs_vs_smooth_l1_{width_bucket_names()[0]}"
    assert (small, "variance_ratio") in m
    for (row, col), r in m.items():
        assert r["status"] == "measured" and r["method"] == "UGS vs. Smooth-L1"
        assert "ugs.openmmlab.train" in r["source"] and "GradientDiagnosticsHook" in r["source"]
        assert "--profile quick" in r["source"]
        assert col in ("variance_ratio", "variance_ratio_ci95_low", "variance_ratio_ci95_high",
                       "variance_ratio_pooled", "cv2_ratio")
        assert r["value"] > 0 and math.isfinite(r["value"])
    lo, mid, hi = (m[(small, c)]["value"] for c in ("variance_ratio_ci95_low", "variance_ratio",
                                                      "variance_ratio_ci95_high"))
    assert lo <= mid <= hi
    # the same quantity as the paper's Figure 6 records
    assert load_table("figure6").value("fig6_caption", "variance_ratio") > 1


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "the quick profile (Faster R-CNN with ResNet-18 from scratch, the first 10 iterations on "
    "256-px synthetic images, one seed, CPU) measures UGS's small-anchor gradient varying MORE "
    "than Smooth-L1's (a ratio below 1 for w < 32 px, in the committed table), and one seed "
    "gives no interval. These are the first iterations "
    "of training, under the learning-rate warm-up, where the paper does not say which 100 "
    "iterations it measured; the mini setting cannot test the claim. Notebook 11 says so; the "
    "paper profile (VisDrone, R-50, 100 iterations, 3 seeds) is the run that can test the 2.9x."))
def test_ugs_lowers_small_anchor_gradient_variance_as_in_figure6():
    m = _measured()
    small = f"ugs_vs_smooth_l1_{width_bucket_names()[0]}"
    paper = load_table("figure6").value("fig6_caption", "variance_ratio")
    assert m[(small, "variance_ratio_ci95_low")]["value"] > 1.0
    assert abs(m[(small, "variance_ratio")]["value"] - paper) / paper < 0.35


def _study():
    return _measured("figure6_study_synthetic128.csv", "study")


def test_study_figure6_is_the_studys_setting_and_in_the_paper_schema():
    # notebook 11's study profile (python ci/run_notebooks.py --tier study --update-committed 11):
    # 5 seeds x 2 losses, the first 100 iterations of the study's 48-epoch schedule from its
    # committed pretrained backbone, on the 128-px synthetic set
    m = _study()
    small = f"ugs_vs_smooth_l1_{width_bucket_names()[0]}"
    assert (small, "variance_ratio") in m
    for (row, col), r in m.items():
        assert r["status"] == "measured" and r["profile"] == "study"
        assert str(r["iterations"]) == "100" and r["seeds"] == "0 1 2 3 4"
        commands = r["source"].split(" ; ")
        assert len(commands) == 10 and all("GradientDiagnosticsHook" in c for c in commands)
        for c in commands:
            assert "--profile quick --data-root data/synth128" in c and "--epochs 48" in c
            assert "--image-size 128" in c and "train_cfg.max_epochs=2" in c
            assert "init_cfg.checkpoint=benchmarks/results/study/pretrained/resnet18_synthetic.pth" in c
        assert r["value"] > 0 and math.isfinite(r["value"])
    lo, mid, hi = (m[(small, c)]["value"] for c in ("variance_ratio_ci95_low", "variance_ratio",
                                                      "variance_ratio_ci95_high"))
    assert lo <= mid <= hi
    # the interval follows from the five per-seed ratios in the note (log scale, SciPy's t)
    import numpy as np
    from scipy import stats as sps
    ratios = [float(x) for x in m[(small, "variance_ratio")]["note"].split(";")[0]
              .removeprefix("per-seed ratios ").split(", ")]
    logs = np.log(ratios)
    half = sps.t.ppf(0.975, len(logs) - 1) * logs.std(ddof=1) / np.sqrt(len(logs))
    want = np.exp([logs.mean() - half, logs.mean(), logs.mean() + half])
    # the note's ratios are written to 3 decimals: a relative error of up to ~2.5% at 0.02
    assert [lo, mid, hi] == pytest.approx(list(want), rel=0.05)


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "CONTRADICTED in the CPU study's setting: over the first 100 iterations of the study's "
    "schedule (5 seeds, pretrained backbone, 128-px synthetic set), Smooth-L1's small-anchor "
    "gradient varies about 0.02x as much as UGS's, the whole 95 % interval far below 1 (the "
    "committed table, papers_tables/measured/study/figure6_study_synthetic128.csv); the "
    "scale-free CV^2 ratio is below 1 too. Notebook 11's study profile shows why: UGS's gradient "
    "swells between iterations ~50 and ~85 while Smooth-L1's stays flat. This is the kit's "
    "reading of an under-specified measurement (which gradient, which 100 iterations) on a small "
    "synthetic problem, not the paper's VisDrone run; the paper profile is the run that tests the 2.9x."))
def test_ugs_lowers_small_anchor_gradient_variance_in_the_cpu_study():
    m = _study()
    small = f"ugs_vs_smooth_l1_{width_bucket_names()[0]}"
    assert m[(small, "variance_ratio_ci95_low")]["value"] > 1.0
