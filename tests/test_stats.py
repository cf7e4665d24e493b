"""ugs.stats against SciPy (a reference library) and against values worked out by hand."""
import math

import pytest

from ugs import stats


@pytest.mark.parametrize("df", [1, 2, 4, 9, 29, 200])
@pytest.mark.parametrize("p", [0.6, 0.8, 0.9, 0.975, 0.995, 0.05])
def test_t_quantile_and_cdf_match_scipy(p, df):
    scipy_stats = pytest.importorskip("scipy.stats")
    assert stats.t_quantile(p, df) == pytest.approx(scipy_stats.t.ppf(p, df), rel=1e-9, abs=1e-9)
    for t in (-3.0, -0.4, 0.0, 0.7, 2.5, 12.0):
        assert stats.t_cdf(t, df) == pytest.approx(scipy_stats.t.cdf(t, df), rel=1e-9, abs=1e-12)


def test_t_quantile_textbook_values():
    # printed tables of Student's t: t(0.975, 4) = 2.776, t(0.975, 9) = 2.262, t(0.8, 4) = 0.941
    assert stats.t_quantile(0.975, 4) == pytest.approx(2.776445, abs=1e-6)
    assert stats.t_quantile(0.975, 9) == pytest.approx(2.262157, abs=1e-6)
    assert stats.t_quantile(0.8, 4) == pytest.approx(0.940965, abs=1e-6)
    with pytest.raises(ValueError, match="p must be"):
        stats.t_quantile(1.0, 4)


def test_paired_comparison_by_hand():
    base = {0: 10.0, 1: 11.0, 2: 12.0, 3: 13.0, 4: 14.0}
    ugs = {0: 11.0, 1: 13.0, 2: 15.0, 3: 17.0, 4: 19.0}
    r = stats.paired_comparison(base, ugs)
    # differences 1..5: mean 3, sd sqrt(10/4), se sqrt(10/4)/sqrt(5) = 0.7071068
    se = math.sqrt(2.5) / math.sqrt(5)
    assert r["n"] == 5 and r["diff_mean"] == pytest.approx(3.0)
    assert r["diff_sd"] == pytest.approx(1.5811388)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((3 - 2.776445 * se, 3 + 2.776445 * se), abs=1e-6)
    assert r["detectable"] == pytest.approx((2.776445 + 0.940965) * se, abs=1e-6)
    assert (r["baseline_mean"], r["baseline_sd"]) == pytest.approx((12.0, 1.5811388))
    assert (r["treatment_mean"], r["treatment_sd"]) == pytest.approx((15.0, 3.1622777))


def test_paired_comparison_refuses_unpaired_or_single_seeds():
    with pytest.raises(ValueError, match=r"seeds \[2\] are in one arm only"):
        stats.paired_comparison({0: 1.0, 1: 2.0}, {0: 1.0, 1: 2.0, 2: 3.0})
    with pytest.raises(ValueError, match="at least 2 seeds"):
        stats.paired_comparison({0: 1.0}, {0: 2.0})


def test_paired_interval_matches_scipy_ttest():
    scipy_stats = pytest.importorskip("scipy.stats")
    base = {s: v for s, v in enumerate([20.1, 19.4, 21.0, 20.6, 19.9, 20.3])}
    ugs = {s: v for s, v in enumerate([20.9, 19.2, 21.8, 21.5, 20.0, 21.1])}
    r = stats.paired_comparison(base, ugs)
    res = scipy_stats.ttest_rel(list(ugs.values()), list(base.values()))
    ci = res.confidence_interval(0.95)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-9)


def test_plateau_epoch_by_hand():
    # best so far: 5, 9, 12, 13, 13.3, 13.4; the last 3 epochs' best over the earlier best:
    # at epoch 4: 13 - 5 = 8; epoch 5: 13.3 - 9 = 4.3; epoch 6: 13.4 - 12 = 1.4; epoch 7: 13.45 - 13 = 0.45 < 0.5
    ap = [5.0, 9.0, 12.0, 13.0, 13.3, 13.4, 13.45]
    assert stats.plateau_epoch(ap, window=3, tol=0.5) == 7
    assert stats.plateau_epoch(ap[:6], window=3, tol=0.5) is None
    assert stats.plateau_epoch([1.0, 1.2, 1.1], window=1, tol=0.5) == 2


def test_schedule_plateau_by_hand():
    # 12 -> 24 epochs gains 6 AP, 24 -> 48 gains 0.3: 24 is long enough at tol 1, 12 is not
    assert stats.schedule_plateau({12: 28.0, 24: 34.0, 48: 34.3}, tol=1.0) == 24
    assert stats.schedule_plateau({12: 28.0, 24: 34.0}, tol=1.0) is None
    assert stats.schedule_plateau({12: 34.5, 24: 34.0, 48: 35.2}, tol=1.0) == 12   # the best later is 0.7 above
    assert stats.schedule_plateau({12: 28.0, 24: 30.0, 48: 33.0}, tol=1.0) is None  # still +5 and +3
    assert stats.schedule_plateau({24: 34.0}, tol=1.0) is None
