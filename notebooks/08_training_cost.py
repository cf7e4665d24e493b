# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 08 · What UGS costs: training time, FLOPs, parameters, memory (Table 5)
#
# Table 5 of *Uncertainty-Aware Gradient Stabilization for Small Object Detection* (Sun et al.,
# ICCV 2025) prices UGS on FCOS R-50 (one RTX 3090, 1333x800, batch 2): seconds per training
# batch, inference GFLOPs and parameters, FCOS against FCOS w/ UGS. This notebook measures the
# kit's own cost with `benchmarks/training_cost.py`, which builds FCOS and the UGS variants of
# one head **in the same process, on the same inputs**, and reports ratios UGS / baseline,
# component by component:
#
# | variant | what |
# |---|---|
# | `ce_in` | CE on the interval non-uniform grid (Eq. 8-11): the wider regression output |
# | `ce_in_um` | + uncertainty minimisation (Eq. 12) |
# | `ugs` | + uncertainty-guided refinement (Eq. 14-16): full UGS |
#
# Time is the median seconds per training iteration (forward, losses, backward, SGD step)
# after warm-up, the variants interleaved round-robin so that load from other processes hits
# all alike; FLOPs are inference multiply-adds (mmengine's counter, as mmdet's `get_flops`);
# memory is the peak resident set of a fresh process (CPU) or the CUDA peak. The script's
# docstring details every measure.
#
# | | `quick` (the default) | `paper` |
# |---|---|---|
# | setting | the quick profile's model (ResNet-18, 64-channel head), 256 px, batch 4 | the configs as written (FCOS R-50 FPN, GN head), 1333x800, batch 2 (Table 5) |
# | where | the CPU, 1 thread, about a minute | a GPU (`device="cuda"`) or, slowly, the CPU |
#
# From a shell, the same numbers: `python benchmarks/training_cost.py --setting quick` (or
# `--setting paper [--device cuda]`).

# %%
# Make the repository root importable when the kit is not pip-installed
# (the notebook runs from notebooks/ or from the repository root).
import pathlib
import sys

try:
    import ugs  # noqa: F401
except ImportError:
    for _candidate in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents]:
        if (_candidate / "ugs" / "__init__.py").is_file():
            sys.path.insert(0, str(_candidate))
            break
    import ugs  # noqa: F401

# %%
import json
import os
import shlex
import subprocess
import time

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from ugs.papers import load_table, write_table

ROOT = pathlib.Path(ugs.__file__).resolve().parent.parent  # the repository root
_t_start = time.perf_counter()

# %% [markdown]
# ## Parameters

# %% tags=["parameters"]
profile = "quick"  # "quick": the quick setting on the CPU; "paper": Table 5's setting
device = "cpu"  # "cpu" or "cuda"
repeats = None  # timed iterations per variant; None: quick 6, paper 3 on the CPU / 20 on a GPU
warmup = None  # untimed iterations first; None: quick 1, paper 1 on the CPU / 5 on a GPU
threads = 1  # CPU threads for torch (see the script's --threads)
extra_variants = []  # e.g. ['every2={"refine_every": 2}']: UGS options measured beside
output_dir = "outputs/08_training_cost"

# %%
if profile not in ("quick", "paper"):
    raise ValueError(f"profile must be 'quick' or 'paper', got {profile!r}")
if device not in ("cpu", "cuda"):
    raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
on_gpu = device == "cuda"
repeats = (6 if profile == "quick" else 20 if on_gpu else 3) if repeats is None else repeats
warmup = (1 if profile == "quick" else 5 if on_gpu else 1) if warmup is None else warmup
for _n, _v, _lo in (("repeats", repeats, 1), ("warmup", warmup, 0), ("threads", threads, 0)):
    if not isinstance(_v, int) or isinstance(_v, bool) or _v < _lo:
        raise ValueError(f"{_n} must be an integer >= {_lo}, got {_v!r}")
output_path = (ROOT / output_dir) if not pathlib.Path(output_dir).is_absolute() else pathlib.Path(output_dir)
output_path.mkdir(parents=True, exist_ok=True)
out_json = output_path / f"training_cost_{profile}_{device}.json"

# %% [markdown]
# The paper's Table 5, from `papers_tables/table5_training_cost.csv` (typed once from the
# paper), and its ratios:

# %%
# NBVAL_CHECK_OUTPUT
t5 = load_table(5)
print(t5.to_markdown(rows=["fcos", "fcos_ugs"], columns=["AP", "time_s_per_batch", "GFLOPs", "params_M"]))
PAPER = {key: t5.value("fcos_ugs", col) / t5.value("fcos", col)
         for key, col in (("time", "time_s_per_batch"), ("gflops", "GFLOPs"), ("params_m", "params_M"))}
print("paper ratios w/ UGS / FCOS: " + ", ".join(f"{k} {v:.4f} ({100 * (v - 1):+.1f}%)" for k, v in PAPER.items()))

# %% [markdown]
# ## 1 · The benchmark
#
# One subprocess (so that its threads and memory are its own); its report is printed as it
# comes.

# %%
setting = "quick" if profile == "quick" else "paper"
cmd = [sys.executable, "benchmarks/training_cost.py", "--setting", setting, "--device", device,
       "--repeats", str(repeats), "--warmup", str(warmup), "--threads", str(threads), "--out", str(out_json)]
for e in extra_variants:
    cmd += ["--extra-variant", e]
print("$", shlex.join(["python" if c == sys.executable else c.replace(str(ROOT) + os.sep, "") for c in cmd]), flush=True)
_t0 = time.perf_counter()
proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                      env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))})
report = proc.stdout[proc.stdout.find("Training cost, setting"):]
print(report)
if proc.returncode != 0:
    raise RuntimeError(f"benchmark failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
print(f"benchmark wall time {time.perf_counter() - _t0:.0f} s")
res = json.loads(out_json.read_text())

# %% [markdown]
# ## 2 · Ratios against the paper's
#
# Overheads in percent, UGS component by component; the paper's Table 5 gives only the full
# UGS row. The time ratio on a CPU is not the paper's GPU ratio (different hardware balances
# convolutions and the small per-positive operations of UGS differently); it is the kit's
# own number on this machine.

# %%
R, base = res["results"], res["results"]["baseline"]
names = [n for n in R if n != "baseline"]
keys = (("time", "time"), ("gflops", "GFLOPs"), ("params_m", "params"), ("memory_mb", "peak memory"))
pct = {n: {k: (100 * (R[n][k] / base[k] - 1) if R[n].get(k) is not None and base.get(k) else None) for k, _ in keys}
       for n in names}
fmt = lambda v: f"{v:+8.2f}%" if v is not None else f"{'-':>9s}"  # noqa: E731
print(f"{'variant':12s} " + " ".join(f"{lab:>11s}" for _, lab in keys))
for n in names:
    print(f"{n:12s} " + " ".join(f"{fmt(pct[n][k]):>11s}" for k, _ in keys))
print(f"{'paper (ugs)':12s} " + " ".join(f"{fmt(100 * (PAPER[k] - 1)) if k in PAPER else '-':>11s}" for k, _ in keys))

fig, ax = plt.subplots(figsize=(9, 3.8))
x = np.arange(len(keys))
w = 0.8 / (len(names) + 1)
for i, n in enumerate(names):
    ax.bar(x + i * w, [pct[n][k] or 0 for k, _ in keys], w, label=n)
ax.bar(x + len(names) * w, [100 * (PAPER[k] - 1) if k in PAPER else 0 for k, _ in keys], w, color="k",
       label="paper, Table 5 (full UGS)")
ax.set_xticks(x + 0.4 - w / 2, [lab for _, lab in keys])
ax.axhline(0, color="k", lw=0.6)
ax.set(ylabel="overhead over FCOS (%)", title=f"UGS cost, {res['setting']} setting, {res['device']}")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(output_path / f"table5_overheads_{profile}_{device}.png", dpi=100)
plt.show()

# %% [markdown]
# ## 3 · Against the goals
#
# The kit's goals (issue 6): full UGS training step at most +15 % (the paper's), aiming at
# +10 %; without the refinement step under +3 %; inference FLOPs at most the paper's +0.6 %;
# parameters under +1 %. Checked by the benchmark on what it measured:

# %%
for c in res["goal_checks"]:
    extra = f" (fastest iterations {c['overhead_pct_min']:+.2f}%)" if "overhead_pct_min" in c else ""
    print(f"[{'PASS' if c['passed'] else 'FAIL'}] {c['goal']}: {c['variant']} {c['overhead_pct']:+.2f}%{extra}")

# %% [markdown]
# ## 4 · The measured table
#
# In the paper's Table 5 schema (`status = measured`, the benchmark command as `source`),
# written to `<output_dir>/table5_measured_<profile>_<device>.csv`.

# %% tags=["verdict"]
src = shlex.join(["python" if c == sys.executable else c.replace(str(ROOT) + os.sep, "") for c in cmd])
COLS = {"time": "time_s_per_batch", "gflops": "GFLOPs", "params_m": "params_M", "memory_mb": "peak_memory_MB"}
records = []
for n, r in R.items():
    for k, col in COLS.items():
        if r.get(k) is None:
            continue
        records.append(dict(row="fcos" if n == "baseline" else f"fcos_{n}", method=r["what"], variant=n, column=col,
                            value=round(r[k], 6), status="measured", source=src, setting=res["setting"],
                            device=res["device"], image=res["image"], batch=res["batch"], threads=res["threads"],
                            note=f"ratio to FCOS {r[k] / base[k]:.4f}" if n != "baseline" else ""))
path = write_table(records, output_path / f"table5_measured_{profile}_{device}.csv")
print("wrote", path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
full = pct.get("ugs", {})
display(Markdown(
    f"Full UGS costs **{full.get('time', float('nan')):+.1f} %** training time per iteration in this {res['setting']} "
    f"setting on {res['device']} (paper: {100 * (PAPER['time'] - 1):+.1f} % on a GPU), "
    f"{full.get('gflops', float('nan')):+.2f} % inference FLOPs (paper {100 * (PAPER['gflops'] - 1):+.2f} %) and "
    f"{full.get('params_m', float('nan')):+.2f} % parameters (paper {100 * (PAPER['params_m'] - 1):+.1f} %, which the paper "
    "does not explain; the kit's UGS only widens the last regression conv from 4 to 4 (n + 1) outputs and drops "
    "FCOS's per-level scales). Without the refinement step "
    f"(`ce_in_um`) the time overhead is {pct.get('ce_in_um', {}).get('time', float('nan')):+.1f} %: the refinement's "
    "second pass through the regression branch is the expensive part."))
print(f"total {time.perf_counter() - _t_start:.0f} s")
