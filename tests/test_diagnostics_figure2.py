"""Figs. 2 and 5 in the CPU study (issue 16): the committed table of notebook 12's study profile
(``papers_tables/measured/study/figure2_study_synthetic128.csv``, written by ``python
ci/run_notebooks.py --tier study --update-committed 12``) against the committed gradient replays
it was read from (``benchmarks/results/study/gradients/``), and the paper's two claims.

The expected values are worked out here from the replays' JSON files with NumPy / SciPy; neither
``ugs.diagnostics.convergence_readings`` nor ``ugs.stats`` is used."""
import csv
import functools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "papers_tables" / "measured" / "study" / "figure2_study_synthetic128.csv"
REPLAYS = ROOT / "benchmarks" / "results" / "study" / "gradients"
COMMANDS = ROOT / "papers_tables" / "measured" / "study" / "commands.csv"
L2, UGS = "t6_l2_baseline", "faster_rcnn_ugs"
#: the verdict each claim has in the committed table; the strict xfails below state it in words,
#: so a re-committed table that changes a verdict fails here until their reasons are rewritten
VERDICTS = {"l2_small_vs_medium": "not resolved", "ugs_small_vs_medium": "contradicted",
            "ugs_vs_l2_small_salience": "holds"}


def _table():
    with open(TABLE, newline="", encoding="utf-8") as fh:
        return {(r["row"], r["column"]): r for r in csv.DictReader(fh)}


@functools.lru_cache(maxsize=None)
def _replay(arm, seed):
    return json.loads((REPLAYS / f"{arm}-seed{seed}.json").read_text(encoding="utf-8"))


def _mean(replay, which, size):
    return replay["epochs"][which][size]["mean"]


def _per_seed_logs(row, seeds):
    """log of the reading per seed, written out from its definition in notebook 12, Sec. 6."""
    out = []
    for s in seeds:
        l2, ugs = _replay(L2, s), _replay(UGS, s)
        if row in ("l2_small_vs_medium", "ugs_small_vs_medium"):
            g = l2 if row.startswith("l2") else ugs
            # (last / first, small) / (last / first, medium)
            out.append(math.log((_mean(g, "last", "small") / _mean(g, "first", "small"))
                                / (_mean(g, "last", "medium") / _mean(g, "first", "medium"))))
        else:
            # (small / medium at the last epoch) of UGS over that of L2
            out.append(math.log((_mean(ugs, "last", "small") / _mean(ugs, "last", "medium"))
                                / (_mean(l2, "last", "small") / _mean(l2, "last", "medium"))))
    return np.array(out)


def _verdict_by_hand(low, high, side):
    if (side > 0 and low > 1) or (side < 0 and high < 1):
        return "holds"
    if (side > 0 and high < 1) or (side < 0 and low > 1):
        return "contradicted"
    return "not resolved"


def test_committed_figure2_study_table_follows_from_the_archived_replays():
    m = _table()
    rows = sorted({row for row, _ in m})
    assert rows == sorted(VERDICTS)
    archived = {arm: {int(p.stem.rsplit("seed", 1)[1]) for p in REPLAYS.glob(f"{arm}-seed*.json")} for arm in (L2, UGS)}
    paired = sorted(archived[L2] & archived[UGS])
    with open(COMMANDS, newline="", encoding="utf-8") as fh:
        commands = {r["run"]: r["command"] for r in csv.DictReader(fh)}
    for row in rows:
        seeds = [int(s) for s in m[(row, "ratio")]["seeds"].split()]
        # every seed whose L2 and UGS replays are both archived, and only those
        assert seeds == paired, row
        logs = _per_seed_logs(row, seeds)
        n = len(logs)
        half = sps.t.ppf(0.975, n - 1) * logs.std(ddof=1) / math.sqrt(n)
        want = {"ratio": math.exp(logs.mean()), "ratio_ci95_low": math.exp(logs.mean() - half),
                "ratio_ci95_high": math.exp(logs.mean() + half)}
        for col, value in want.items():
            r = m[(row, col)]
            assert r["status"] == "measured" and r["profile"] == "study" and r["epochs"] == "48"
            assert [int(x) for x in r["seeds"].split()] == seeds, (row, col)
            # written to 4 significant digits
            assert float(r["value"]) == pytest.approx(value, rel=1e-3), (row, col)
            # its sources: both replays (first, last epoch) of both losses for each seed, whose
            # commands are the archived replays' own (with the interpreter written as `python`)
            ids = r["source"].split(" ; ")
            assert sorted(ids) == sorted(f"12_gradient_maps/{a}-seed{s}-{w}" for a in (L2, UGS) for s in seeds
                                         for w in ("first", "last"))
            for rid in ids:
                arm_seed, which = rid.split("/")[1].rsplit("-", 1)
                arm, seed = arm_seed.rsplit("-seed", 1)
                typed = _replay(arm, int(seed))["commands"][which]
                assert commands[rid] == "python " + typed.split(" ", 1)[1], rid
        # the per-seed ratios in the note, to 3 decimals
        note = m[(row, "ratio")]["note"].split(";")[0].removeprefix("per-seed ratios ")
        assert [float(x) for x in note.split(", ")] == pytest.approx(np.exp(logs).tolist(), abs=6e-4)


@pytest.mark.parametrize("row", sorted(VERDICTS))
def test_the_committed_verdicts_are_those_stated(row):
    m = _table()
    low, high = float(m[(row, "ratio_ci95_low")]["value"]), float(m[(row, "ratio_ci95_high")]["value"])
    side = +1 if m[(row, "ratio")]["note"].endswith("above") else -1
    assert side == (-1 if row == "ugs_vs_l2_small_salience" else +1)
    assert _verdict_by_hand(low, high, side) == VERDICTS[row]


_SETTING = ("in the CPU study (48 epochs from the study's pretrained backbone on the 128-px synthetic "
            "set, the seeds of the committed table papers_tables/measured/study/figure2_study_synthetic128.csv)")
_WHERE = ("notebook 12, Sec. 6 plots it. The paper's own measurement is on VisDrone (the paper profile of "
          "notebook 12). ")
_NOT_RESOLVED = f"NOT RESOLVED {_SETTING}: its 95 % interval over the seeds contains 1; {_WHERE}"
_CONTRADICTED = f"CONTRADICTED {_SETTING}: its whole 95 % interval over the seeds lies below 1; {_WHERE}"


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=_NOT_RESOLVED + (
    "Claim (Fig. 2, with L2): from the first to the last epoch the small objects' gradient falls less "
    "than the medium ones', i.e. the ratio is above 1."))
def test_fig2_small_gradient_stays_pronounced_under_l2_in_the_cpu_study():
    assert float(_table()[("l2_small_vs_medium", "ratio_ci95_low")]["value"]) > 1.0


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=_CONTRADICTED + (
    "Claim (Fig. 2, read for UGS as well; the paper shows Fig. 2 for a conventional loss only): the same "
    "ratio above 1 with UGS's loss. Under UGS the small objects' gradient falls more than the medium "
    "ones' from the first to the last epoch, so Fig. 2's pattern is absent there."))
def test_fig2_small_gradient_stays_pronounced_under_ugs_in_the_cpu_study():
    assert float(_table()[("ugs_small_vs_medium", "ratio_ci95_low")]["value"]) > 1.0


def test_fig5_ugs_makes_small_gradients_less_salient_in_the_cpu_study():
    # Claim (Fig. 5): at the last epoch UGS makes small objects' gradient less salient (relative
    # to medium ones') than L2 does, i.e. the ratio UGS over L2 is below 1. It HOLDS in the CPU
    # study at the committed table's seeds (48 epochs, 128-px synthetic set; its whole 95 %
    # interval below 1, one uncorrected interval per reading); the paper profile of notebook 12
    # is the run that tests it on VisDrone.
    assert float(_table()[("ugs_vs_l2_small_salience", "ratio_ci95_high")]["value"]) < 1.0
