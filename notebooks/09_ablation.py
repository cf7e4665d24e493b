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
# # 09 · The component ablation of UGS on Faster R-CNN (Table 6)
#
# Table 6 of *Uncertainty-Aware Gradient Stabilization for Small Object Detection*
# (Sun et al., ICCV 2025) trains Faster R-CNN R-50 FPN on VisDrone-DET `val` thirteen
# times. Five rows are "existing gradient stabilization" methods; eight build UGS up one
# component at a time:
#
# | block | rows | what changes |
# |---|---|---|
# | existing gradient stabilization | L2 (baseline), Smooth-L1, IoU loss, gradient clipping, Bayesian YOLO | the box-regression loss (or the optimizer step) |
# | classification-based localization | L_CE (uniform grid), L_CE + IN | Eq. 10 on a uniform grid, then on the IN grid of Eq. 9 |
# | CE + uncertainty minimization | lambda = 0.1, 0.5, 1.0 | + lambda Eq. 12 |
# | CE + UM + refinement | (gamma, rho) = (0.1, 0.5), (0.5, 0.5), (0.5, 1) | + gamma L^ur (Eq. 14-16) |
#
# Every row is one config file under `configs/faster_rcnn/table6/` (the table of Sec. 1
# lists them), trained with the kit's tool `python -m ugs.openmmlab.train`; no row has code
# of its own except Bayesian YOLO's Gaussian box head (`ugs/baselines.py`,
# `ugs/openmmlab/gaussian_head.py`).
#
# **Two profiles.** `paper` is the paper's recipe (R-50, VisDrone, 1333 x 800, 12 epochs,
# 16 images per step, all 13 rows: about 13 x 1x-schedule trainings on GPUs). `quick` is a
# smoke sweep that fits in minutes on a CPU: two rows (L2, full UGS), ResNet-18
# from scratch, 40 synthetic 256 px training images, one epoch. The paper profile is one
# command:
#
# ```bash
# papermill notebooks/09_ablation.ipynb out.ipynb -p profile paper -p dataset visdrone -p data_root /path/to/VisDrone -p gpus 4
# ```
#
# A third profile, `study`, is the kit's CPU study (issue 16, Sec. 7): Table 6's build-up
# (L2, Smooth-L1, L_CE, + IN, + lambda L_UM, + gamma L^ur) on the quick recipe at 128 px with
# a pretrained backbone, 48 epochs, **five seeds per row** paired by seed (~12 h on 2 cores, measured).
# Sec. 7 reads its committed table (`papers_tables/measured/study/`, written by the runner's
# study tier); `-p profile study` trains what is not finished yet (resumable) and shows its
# seed-`seed` runs in Sec. 4-6.

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
import shlex
import time

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from ugs.ablation import TABLE6_CONFIGS, TABLE6_STAGES
from ugs.openmmlab import runs as runs_tool
from ugs.openmmlab import study
from ugs.papers import load_table, write_table

ROOT = pathlib.Path(ugs.__file__).resolve().parent.parent  # the repository root
_t_start = time.perf_counter()

# %% [markdown]
# ## Parameters
#
# * `profile`: `"quick"` (CPU smoke sweep), `"paper"` (Sec. 4.1.2 recipe) or `"study"` (the CPU
#   study; its setting is `ugs.openmmlab.study.SETTINGS`, so `epochs`, `image_size`,
#   `train_images`, `data_root` and `work_dir` are not used there; `seed` picks the seed Sec.
#   4-6 show, and `study_train` whether unfinished runs are trained or only named).
# * `rows`: Table 6 row ids to train, or `None`: every row in the paper profile, the smoke set
#   (L2, full UGS: the build-up's two ends; any other row when named) in the quick profile.
# * `dataset` / `data_root`: `"synthetic"` (default `data/synthetic`, generated if absent) or
#   `"visdrone"` (a converted VisDrone-DET folder, required).
# * `epochs`: `None` = quick 1, paper 12. `train_images` (quick only): the first N training
#   images (`None` = all). `image_size` (quick only).
# * Re-running **retrains from scratch**: `work_dir/<row>` is deleted first.

# %% tags=["parameters"]
profile = "quick"  # "quick" (CPU, synthetic, minutes), "paper" (Sec. 4.1.2, GPUs) or "study" (CPU, hours)
rows = None  # None: paper -> all 13 Table 6 rows; quick -> l2_baseline, full UGS
dataset = "synthetic"  # "synthetic" (the kit's generated set) or "visdrone" (VisDrone-DET 2019)
data_root = None  # None: synthetic -> <repo>/data/synthetic (generated if absent); visdrone -> required
epochs = None  # None: quick 1, paper 12 (the 1x schedule)
gpus = 1  # GPUs per run; > 1 launches torch.distributed.run (the paper: 4)
work_dir = "work_dirs/09_ablation"  # checkpoints and logs go to <work_dir>/<row>
seed = 0  # training seed (mmengine randomness)
max_per_img = 500  # detections kept per image and evaluated (the VisDrone toolkit's 500)
image_size = 256  # quick profile only: the side images are resized to
train_images = 40  # quick profile only: train on the first N images (None: all)
output_dir = "outputs/09_ablation"  # measured table and figures are written here
study_train = True  # study profile: train the study's runs not finished yet (False: report the finished ones)

# %%
QUICK_ROWS = ["l2_baseline", "ce_in_um_ur_l0.5_g0.5_r0.5"]   # two rows keep the main job within 20 min
PROFILE_EPOCHS = {"quick": 1, "paper": 12, "study": study.SETTINGS["epochs"]}
#: Table 6 row id -> the study's arm (the study trains the build-up's six rows)
STUDY_ARMS = {row: arm for arm, row in study.PAPER_ROWS["table6"].items()}
METRICS = ("AP", "AP50", "AP_s")  # Table 6's columns
PAPER_BATCH = 16
table6 = load_table(6)


def resolve(path):
    """A path as given, relative ones taken from the repository root."""
    return runs_tool.resolve(path, ROOT)


def check_rows(names):
    """The row list, or a ValueError naming the unknown entries and the known ones."""
    if isinstance(names, str) or not list(names):
        raise ValueError(f"rows must be None or a non-empty list of Table 6 row ids, got {names!r}")
    unknown = [r for r in names if r not in TABLE6_CONFIGS]
    if unknown:
        raise ValueError(f"unknown Table 6 row(s) {unknown}; known: {', '.join(TABLE6_CONFIGS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"rows lists a row twice: {list(names)}")
    return list(names)


if profile not in PROFILE_EPOCHS:
    raise ValueError(f"profile must be 'quick', 'paper' or 'study', got {profile!r}")
if dataset not in ("synthetic", "visdrone"):
    raise ValueError(f"dataset must be 'synthetic' or 'visdrone', got {dataset!r}")
rows = check_rows(rows if rows is not None else {"quick": QUICK_ROWS, "paper": list(TABLE6_CONFIGS),
                                                 "study": list(STUDY_ARMS)}[profile])
if profile == "study":  # the study's setting is study.SETTINGS: a changed value would be another study
    data_root, image_size, work_dir = study.check_notebook_setting(
        dataset=dataset, data_root=data_root, epochs=epochs, gpus=gpus, max_per_img=max_per_img, seed=seed)
    if [r for r in rows if r not in STUDY_ARMS]:
        raise ValueError(f"row(s) {[r for r in rows if r not in STUDY_ARMS]} are not in the study; its rows: "
                         f"{', '.join(STUDY_ARMS)}")
epochs = PROFILE_EPOCHS[profile] if epochs is None else epochs
for _name, _v, _lo in (("epochs", epochs, 1), ("gpus", gpus, 1), ("max_per_img", max_per_img, 1),
                       ("image_size", image_size, 32), ("seed", seed, 0)):
    if not isinstance(_v, int) or isinstance(_v, bool) or _v < _lo:
        raise ValueError(f"{_name} must be an integer >= {_lo}, got {_v!r}")
if train_images is not None and (not isinstance(train_images, int) or isinstance(train_images, bool)
                                 or train_images < 4):
    raise ValueError(f"train_images must be None or an integer >= 4, got {train_images!r}")
if profile == "paper" and PAPER_BATCH % gpus:
    raise ValueError(f"gpus={gpus} does not divide the paper's {PAPER_BATCH} images per step")
if dataset == "visdrone":
    if data_root is None:
        raise ValueError("dataset 'visdrone' needs data_root: the folder with VisDrone2019-DET-{train,val}/ "
                         "and annotations/{train,val}.json (python -m ugs.cli data visdrone SPLIT_DIR OUT_JSON)")
    data_path = resolve(data_root)
    for _s in ("train", "val"):
        if not (data_path / "annotations" / f"{_s}.json").is_file():
            raise FileNotFoundError(f"{data_path}/annotations/{_s}.json is missing; convert with "
                                    f"python -m ugs.cli data visdrone {data_path}/VisDrone2019-DET-{_s} "
                                    f"{data_path}/annotations/{_s}.json")
else:
    data_path = resolve(data_root if data_root is not None else "data/synthetic")
work_path = resolve(work_dir)
output_path = resolve(output_dir)
output_path.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## 1 · The thirteen rows and their configs
#
# Each Table 6 row id of `papers_tables/table6_ablation.csv` maps to one config. Where each
# baseline's loss acts was decided from the paper: UGS replaces the box regression of **both**
# stages, so the loss-swap baselines (L2, Smooth-L1, IoU) do too, and every row differs from
# the L2 baseline in one thing. Gradient clipping is the L2 baseline with the global gradient
# norm clipped to 1 (Sec. 4.8: "||grad|| <= 1.0"). Bayesian YOLO's Gaussian head is the R-CNN
# head (the uncertainty of the final boxes); its RPN keeps the L2 loss. On the UGS side,
# `beta = 0` is the uniform grid (L_CE without IN), `lam = 0` switches UM off and
# `gamma = 0` the refinement step.

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'row':28s} {'config':58s} where")
for r in TABLE6_CONFIGS:
    print(f"{r:28s} {TABLE6_CONFIGS[r]:58s} {TABLE6_STAGES.get(r, 'RPN + R-CNN (UGS knobs)')}")
print()
print(table6.to_markdown(columns=list(METRICS)))

# %% [markdown]
# The paper-profile command of every row (VisDrone converted as in the README's Data
# section; `torch.distributed.run` with 4 GPUs, 16 images per step):

# %%
# NBVAL_CHECK_OUTPUT
def paper_command(row, data="data/visdrone", n_gpus=4):
    cmd = ["python", "-m"]
    if n_gpus > 1:
        cmd += ["torch.distributed.run", "--nproc_per_node", str(n_gpus), "-m"]
    cmd += ["ugs.openmmlab.train", TABLE6_CONFIGS[row], "--data-root", data,
            "--work-dir", f"work_dirs/table6/{row}", "--seed", "0"]
    if n_gpus > 1:
        cmd += ["--launcher", "pytorch", "--gpus", str(n_gpus)]
    return shlex.join(cmd)


for r in TABLE6_CONFIGS:
    print(paper_command(r))

# %% [markdown]
# The run plan of this execution, checked before anything trains (an unknown row stops here
# with the list of known ones):

# %%
# NBVAL_CHECK_OUTPUT
print(f"profile {profile}, dataset {dataset}, {epochs} epoch(s), seed {seed}, gpus {gpus}"
      + (f", image_size {image_size}, train_images {train_images}" if profile == "quick" else ""))
for r in rows:
    print(f"  {r:28s} {TABLE6_CONFIGS[r]}")
try:
    check_rows(["l2_baseline", "l1_baseline"])
except ValueError as e:
    print("ValueError:", e)

# %% [markdown]
# ## 2 · Data
#
# The synthetic set (`python -m ugs.cli data synth`, 200 train / 50 val images of 256 px,
# mostly COCO-small objects in the VisDrone format) is generated when missing.

# %%
if dataset == "synthetic":   # the study's set at its own image size
    runs_tool.ensure_synthetic(data_path, ROOT, image_size if profile == "study" else None)
coco = {s: json.loads((data_path / "annotations" / f"{s}.json").read_text(encoding="utf-8"))
        for s in ("train", "val")}
n_train = len(coco["train"]["images"]) if (profile != "quick" or train_images is None) \
    else min(train_images, len(coco["train"]["images"]))
print(f"{dataset}: training on {n_train} of {len(coco['train']['images'])} train images, "
      f"evaluating on all {len(coco['val']['images'])} val images "
      f"({len(coco['val']['annotations'])} objects)")

# %% [markdown]
# ## 3 · Training
#
# Each row is one run of the training tool in its own process, as one would type it; each run
# shows one live progress line (the full output is in `<work_dir>/<row>/train_stdout.log`;
# the run helpers are `ugs/openmmlab/runs.py`, shared with notebooks 03 and 10).
# The quick profile adds `--cfg-options train_dataloader.dataset.indices=N` (the first N
# training images) and validates after the last epoch only.


# %%
def train_command(row):
    """The command line of one row: ``runs_tool.train_command`` (shared with notebooks 03 and
    10) with this notebook's quick-profile options."""
    options = []
    if profile == "quick":
        options = [f"train_cfg.val_interval={epochs}"]
        if train_images is not None:
            options.append(f"train_dataloader.dataset.indices={train_images}")
    return runs_tool.train_command(TABLE6_CONFIGS[row], root=ROOT, profile=profile, data_root=data_path,
                                   work_dir=work_path / row, epochs=epochs, seed=seed,
                                   max_per_img=max_per_img, image_size=image_size, gpus=gpus,
                                   options=options)


def train(row):
    """One row trained from scratch (``runs_tool.train``: its work dir is deleted first)."""
    return runs_tool.train(row, train_command(row), work_path / row, ROOT)


if profile == "study":   # every seed of every row (finished runs skipped), then seed `seed`'s runs
    _done = study.seed_runs([STUDY_ARMS[r] for r in rows], seed, train_missing=study_train, epochs=epochs,
                            work_root=work_path)
    runs = {r: _done[STUDY_ARMS[r]] for r in rows if STUDY_ARMS[r] in _done}
    rows = [r for r in rows if r in runs]
else:
    runs = {r: train(r) for r in rows}
total_s = sum(v["seconds"] for v in runs.values())
print(f"\ntrained {len(runs)} row(s) in {total_s:.0f} s: "
      + ", ".join(f"{r} {v['seconds']:.0f} s" for r, v in runs.items()))

# %% [markdown]
# ## 4 · Results next to Table 6
#
# Each run's `metrics.json` (the last epoch's VisDrone evaluation) becomes records of the
# `papers_tables` schema: the Table 6 row id and its setting columns (`group`, `lambda`,
# `gamma`, `rho`, `IN`, copied from the paper's record so the two tables join on them),
# `status = measured`, the exact command as `source`, plus `profile`, `dataset`, `epochs`,
# `seed`. Values in percent; `-1` means no ground truth of that size.

# %%
records, measured = [], {}
for r, run in runs.items():
    m = run["metrics"]
    measured[r] = {}
    for col in METRICS:
        paper = table6.record(r, col)
        v = float(m[col])
        measured[r][col] = round(100 * v, 2) if v >= 0 else None
        records.append(dict(
            row=r, method=paper["method"], variant=paper["variant"], column=col,
            value=round(100 * v, 2) if v >= 0 else -1.0, status="measured", source=run["command"],
            derivation="", **{k: paper[k] for k in table6.settings},
            profile=profile, dataset=dataset, epochs=str(epochs), seed=str(seed),
            note=("-1: no ground truth of this size; " if v < 0 else "")
            + f"last epoch of {epochs}; {n_train} training images"))
    records.append({**records[-1], "column": "train_loss", "value": round(runs_tool.train_loss(run["work_dir"]), 4),
                    "note": f"mean logged training loss of epoch {epochs}: a fingerprint of the run"})
table_path = write_table(records, output_path / "table6_measured.csv")
print(f"wrote {len(records)} records to {table_path}")


def cell(v, sign=False):
    if v is None:
        return "-"
    v = round(v, 1) + 0.0
    return f"{v:+.1f}" if sign else f"{v:.1f}"


lines = ["| row | " + " | ".join(f"{c} paper | {c} measured" for c in METRICS)
         + " | ΔAP vs L2, paper | ΔAP vs L2, measured |", "|---|" + "---:|" * (2 * len(METRICS) + 2)]
base = "l2_baseline"
for r in TABLE6_CONFIGS:
    got = measured.get(r, {})
    d_paper = table6.value(r, "AP") - table6.value(base, "AP")
    d_meas = (got["AP"] - measured[base]["AP"]) if (r in measured and base in measured
                                                    and got.get("AP") is not None
                                                    and measured[base]["AP"] is not None) else None
    lines.append(f"| {r} | " + " | ".join(f"{cell(table6.value(r, c))} | {cell(got.get(c))}" for c in METRICS)
                 + f" | {cell(d_paper, True)} | {cell(d_meas, True)} |")
comparison_md = (f"**{profile} profile, {dataset}, {epochs} epoch(s), seed {seed}** "
                 "(`-` in a measured column: row not trained in this run)\n\n" + "\n".join(lines))
(output_path / "comparison.md").write_text(comparison_md + "\n", encoding="utf-8")
display(Markdown(comparison_md))

# %% [markdown]
# ## 5 · Plots: per row, and against lambda, gamma and rho
#
# Left: AP and AP_s of every row, the paper's bars (left axis) and this run's (right axis,
# its own scale, since a quick run is far below the paper; rows not trained have no measured
# bar). Right: the three sweeps of Table 6, AP and AP_s, paper (lines, left axis) and
# measured (hollow squares, right axis, only where that row was trained): against lambda (UM
# rows, gamma = 0), against gamma at rho = 0.5 and against rho at gamma = 0.5 (UR rows,
# lambda = 0.5).

# %%
order = list(TABLE6_CONFIGS)
x = np.arange(len(order))
fig = plt.figure(figsize=(15, 7.5))
grid = fig.add_gridspec(2, 4)
for i, col in enumerate(("AP", "AP_s")):
    ax = fig.add_subplot(grid[i, :2])
    ax.bar(x - 0.2, [table6.value(r, col) for r in order], 0.4, color="C0", label="paper (R-50, VisDrone)")
    ax.set_ylabel(f"{col} (%), paper", color="C0")
    ax.set_xticks(x, order if i else [""] * len(order), rotation=60, ha="right", fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    twin = ax.twinx()  # the measured bars on their own scale (the quick profile is near 0)
    twin.bar(x + 0.2, [measured.get(r, {}).get(col) or 0.0 for r in order], 0.4, color="C3",
             label=f"measured ({profile}), right axis")
    twin.set_ylabel(f"{col} (%), measured", color="C3")
    twin.set_ylim(0, max([1.0] + [1.15 * (measured[r][col] or 0.0) for r in measured]))
    for j, r in enumerate(order):
        if r not in measured:
            twin.text(j + 0.2, 0.0, "not run", rotation=90, ha="center", va="bottom", fontsize=7, color="grey")
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="upper left")
sweeps = [
    ("lambda", "AP, AP_s vs lambda (UM, gamma = 0)", ["ce_in", "ce_in_um_l0.1", "ce_in_um_l0.5", "ce_in_um_l1.0"],
     [0.0, 0.1, 0.5, 1.0]),
    ("gamma", "AP, AP_s vs gamma (lambda = rho = 0.5)", ["ce_in_um_l0.5", "ce_in_um_ur_l0.5_g0.1_r0.5",
                                                      "ce_in_um_ur_l0.5_g0.5_r0.5"], [0.0, 0.1, 0.5]),
    ("rho", "AP, AP_s vs rho (lambda = gamma = 0.5)", ["ce_in_um_ur_l0.5_g0.5_r0.5", "ce_in_um_ur_l0.5_g0.5_r1"],
     [0.5, 1.0]),
]
for k, (name, title, rs, xs) in enumerate(sweeps):
    ax = fig.add_subplot(grid[k // 2, 2 + k % 2])
    twin = ax.twinx()
    for col, colour in (("AP", "C0"), ("AP_s", "C2")):
        ax.plot(xs, [table6.value(r, col) for r in rs], "-o", color=colour, label=f"{col} paper")
        pts = [(xv, measured[r][col]) for xv, r in zip(xs, rs) if r in measured and measured[r][col] is not None]
        if pts:
            twin.plot(*zip(*pts), "s", mfc="none", ms=9, color=colour, label=f"{col} measured (right)")
    twin.set_ylim(0, max([1.0] + [1.15 * (measured[r][c] or 0.0) for r in rs if r in measured
                                  for c in ("AP", "AP_s")]))
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(name)
    ax.set_ylabel("% (paper)")
    twin.set_ylabel("% (measured)")
    ax.grid(True, alpha=0.3)
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], fontsize=7)
ax = fig.add_subplot(grid[1, 3])
ax.axis("off")
ax.text(0, 0.9, "lambda = 0 point: L_CE + IN\ngamma = 0 point: lambda = 0.5, no UR\n"
        "measured markers only for rows\ntrained in this run", fontsize=8, va="top")
fig.tight_layout()
fig.savefig(output_path / "table6.png", dpi=110)
print("saved", output_path / "table6.png")
plt.show()

# %% [markdown]
# ## 6 · What the tiny setting can and cannot show
#
# The quick profile is a **real run of a tiny setting**: ResNet-18 from scratch, 40 synthetic
# 256 px images, one epoch (10 steps of 4 images), two rows, evaluated on 50 synthetic
# images. It shows that every piece of the ablation works end to end: the row configs, the
# baseline losses, the UGS heads with their knobs, training, VisDrone-style evaluation, and a
# table in the paper's schema next to Table 6.
#
# It **cannot** show any of Table 6's differences. After 10 steps from scratch every row
# is at or near AP 0, so the measured differences are noise; the paper's differences between
# rows are 0.1-2.9 AP after a full 1x schedule of an ImageNet-pretrained R-50 on 6,471
# VisDrone images, well below what one short run per row can resolve even on a larger CPU
# budget. The other ten rows are built, run one training step and predict in
# `tests/test_table6_baselines.py`, but are not trained here. The claim is checked by the
# paper profile (all 13 rows, 12 epochs, VisDrone, GPUs):
#
# `papermill notebooks/09_ablation.ipynb out.ipynb -p profile paper -p dataset visdrone -p data_root /path/to/VisDrone -p gpus 4`

# %%
for r in rows:
    print(f"{r:28s} AP {cell(measured[r]['AP'])} (paper {cell(table6.value(r, 'AP'))}), "
          f"AP_s {cell(measured[r]['AP_s'])} (paper {cell(table6.value(r, 'AP_s'))}), "
          f"{runs[r]['seconds']:.0f} s")
print(f"\nsetting: {profile} profile, {dataset}, {n_train} training images, {epochs} epoch(s), seed {seed}; "
      + ("one run per row: no spread is measured, so these numbers neither confirm nor refute Table 6."
         if profile != "study" else f"seed {seed} of the study's five: Sec. 7 has every seed, each step with its interval."))

# %% [markdown]
# ## 7 · The CPU study: Table 6's build-up, five seeds per row
#
# The kit's CPU study (issue 16; `ugs.openmmlab.study`, README "CPU study") trains the six rows
# of Table 6's build-up on Faster R-CNN (L2, Smooth-L1, L_CE on a uniform grid, + the IN grid,
# + 0.5 L_UM, + 0.5 L^ur: full UGS) in one fixed setting: the quick recipe on the synthetic set
# at 128 px, the backbone pretrained on that set, **48 epochs, seeds 0-4**, rows paired by
# seed. It is not trained to a plateau (FCOS still gains from 48 to 96 epochs there), so each
# statement holds "after 48 epochs on this set". Each step of the build-up is one comparison:
# both rows' mean and SD, the paired difference with its 95 % interval, the smallest
# detectable difference (80 % power), the paper's printed difference and the verdict
# (holds / contradicted / not resolved, as in notebook 03's Sec. 6).
#
# The numbers come from the committed `papers_tables/measured/study/` table, or, in the study
# profile, from this run's own.

# %%
study_table, study_source = study.study_table("table6", "table6_study_synthetic128.csv", fresh=profile == "study",
                                              work_root=work_path, out=output_path / "table6_study.csv")
study_rows = study.read_comparisons(study_table.records, "table6") if study_table is not None else []
if study_table is None:
    print(f"no study table yet ({runs_tool.relative(study_source, ROOT)}): `python -m ugs.openmmlab.study run "
          "--table table6` trains it (no run yet); this notebook joins the runner's study tier (STUDY_TIER, "
          "ugs.measured.STUDY_TABLES) when it has runs to commit")
else:
    _runs = study.read_runs(study_table.records)
    print(f"{runs_tool.relative(study_source, ROOT)}: " + ", ".join(
        f"{a} {len(_runs[a]['AP'])} seed(s)" for a in study.TABLES["table6"]["arms"] if a in _runs))
    display(Markdown(study.comparisons_markdown(study_rows)))
    fig = study.plot_study(study_table.records, "table6",
                           "CPU study, Table 6's build-up on Faster R-CNN: AP and AP_s after 48 epochs, 128 px",
                           out=output_path / "study_table6.png")
    print("saved", output_path / "study_table6.png")
    plt.show()

# %% [markdown]
# The notebook's verdict: this run's rows (Sec. 4-6), then the CPU study's (Sec. 7).

# %% tags=["verdict"]
if rows:
    _verdict = (f"**Verdict** ({profile} profile, seed {seed}): "
                + "; ".join(f"{r} AP {cell(measured[r]['AP'])}, AP_s {cell(measured[r]['AP_s'])}" for r in rows)
                + (". One run per row, so no spread is measured: these numbers neither confirm nor refute Table 6."
                   if profile != "study" else f". Seed {seed}'s runs of the study; Sec. 7 has its five seeds per row."))
else:  # the study profile with no seed-`seed` run in this work root (its records may be in the archive)
    _verdict = (f"**Verdict** ({profile} profile, seed {seed}): no finished seed-{seed} run under "
                f"{runs_tool.relative(work_path, ROOT)}, so Sec. 4-6 show none (the archive keeps each run's "
                "record, not its work dir); Sec. 7 reads every finished run.")
if study_rows:
    _verdict += "\n\n" + study.verdict_sentence(study_rows)
display(Markdown(_verdict))

# %%
print(f"notebook ran in {time.perf_counter() - _t_start:.0f} s "
      + (f"(training {total_s:.0f} s of it)" if profile != "study" else
         f"(seed {seed}'s study runs took {total_s:.0f} s when they were trained)")
      + f"; outputs in {output_path}")

