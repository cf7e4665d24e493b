"""Small-sample statistics for comparing training arms over seeds (standard library only).

A CPU study trains each arm (a config) with several seeds and pairs the arms by seed: seed s of
the baseline and seed s of UGS share their data order and initialisation as far as the configs
allow, so the per-seed difference removes what the seeds have in common. What a comparison
reports (:func:`paired_comparison`):

* each arm's mean and sample standard deviation;
* the mean paired difference with its Student-t interval, ``d_mean +- t(1 - a/2, n-1) s_d / sqrt(n)``;
* the smallest difference the design could have detected, ``(t(1 - a/2, n-1) + t(power, n-1))
  s_d / sqrt(n)``: the usual normal-theory approximation with Student quantiles (it ignores the
  noncentral t, which makes it slightly optimistic for n < 10; stated, not hidden).

Two rules say when a schedule is long enough. :func:`plateau_epoch` reads one run's validation
AP after each epoch: the best of the last ``window`` epochs is less than ``tol`` above the best
before them. It is fooled by a run whose AP swings at the base learning rate (the study's pilot
FCOS dropped from 26 to 8 AP and back within five epochs), so the study uses
:func:`schedule_plateau`: the final AP of whole schedules of different lengths (each with its
own warm-up and decay), long enough when no longer schedule ends ``tol`` higher.

Student's t quantile is computed here (the regularised incomplete beta function by its
continued fraction, then bisection), so the core needs no SciPy; the tests compare it with
SciPy's.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence

__all__ = ["t_cdf", "t_quantile", "mean_sd", "paired_comparison", "plateau_epoch", "schedule_plateau"]


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            return h
    raise ArithmeticError(f"incomplete beta: no convergence for a={a}, b={b}, x={x}")


def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(ln) * _betacf(a, b, x) / a
    return 1.0 - math.exp(ln) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t (bisection on :func:`t_cdf` to 1e-12)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    while hi - lo > 1e-12 * max(1.0, hi):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return 0.5 * (lo + hi)


def mean_sd(values: Sequence[float]):
    """Mean and sample standard deviation (n - 1); the deviation is NaN for one value."""
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    m = sum(values) / n
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1)) if n > 1 else float("nan")
    return m, sd


def paired_comparison(baseline: Dict[int, float], treatment: Dict[int, float], confidence: float = 0.95,
                      power: float = 0.8) -> dict:
    """Compare two arms paired by seed (``{seed: value}``): both arms' mean and deviation, the
    mean difference treatment - baseline with its ``confidence`` interval, and the smallest
    difference detectable at that level with ``power``. Seeds present in one arm only are an
    error (a silently unpaired seed would bias the difference)."""
    if set(baseline) != set(treatment):
        raise ValueError(f"arms are not paired: seeds {sorted(set(baseline) ^ set(treatment))} "
                         "are in one arm only")
    seeds = sorted(baseline)
    if len(seeds) < 2:
        raise ValueError(f"a paired comparison needs at least 2 seeds, got {len(seeds)}")
    n = len(seeds)
    diffs = [treatment[s] - baseline[s] for s in seeds]
    mb, sb = mean_sd([baseline[s] for s in seeds])
    mt, st = mean_sd([treatment[s] for s in seeds])
    md, sd = mean_sd(diffs)
    se = sd / math.sqrt(n)
    tc = t_quantile(0.5 + confidence / 2.0, n - 1)
    return dict(n=n, seeds=seeds, baseline_mean=mb, baseline_sd=sb, treatment_mean=mt, treatment_sd=st,
                diff_mean=md, diff_sd=sd, ci_low=md - tc * se, ci_high=md + tc * se, confidence=confidence,
                detectable=(tc + t_quantile(power, n - 1)) * se, power=power)


def plateau_epoch(values: Sequence[float], window: int = 3, tol: float = 0.5) -> Optional[int]:
    """The first epoch (1-based) at which the best value of the last ``window`` epochs exceeds
    the best before them by less than ``tol``; None while it still improves (or there are not
    more than ``window`` epochs)."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    for e in range(window + 1, len(values) + 1):
        if max(values[e - window:e]) - max(values[:e - window]) < tol:
            return e
    return None


def schedule_plateau(finals: Dict[int, float], tol: float) -> Optional[int]:
    """The shortest schedule (epochs) whose final value no longer schedule of ``finals``
    (``{epochs: final value}``) exceeds by ``tol`` or more; None when every schedule with a
    longer one to compare with is beaten (or there is none to compare with)."""
    lengths = sorted(finals)
    for i, e in enumerate(lengths[:-1]):
        if max(finals[f] for f in lengths[i + 1:]) - finals[e] < tol:
            return e
    return None
