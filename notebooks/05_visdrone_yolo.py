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
# # 05 · TPH-YOLOv5-x w/ UGS on VisDrone (Table 2)
#
# Table 2 puts UGS into a detector of the YOLO family built for small objects: **TPH-YOLOv5-x**
# (Zhu et al., ICCV Workshops 2021), trained on VisDrone2019-DET with TPH-YOLOv5's own recipe
# at two input sizes. The paper reports AP / AP_s / AP_m of 26.5 / 14.1 / 22.0 at 640 and
# 39.2 / 22.4 / 34.7 at 1536, and w/ UGS 29.0 / 16.7 / 23.9 and 41.7 / 24.2 / 36.2: +2.5 AP at
# both sizes, +2.6 and +1.8 AP_s.
#
# TPH-YOLOv5 is not part of mmyolo; the kit builds it from registered modules in its mmyolo
# adapter (`ugs/yolo/`): YOLOv5's CSP-Darknet, transformer encoder blocks (C3TR), a four-level
# neck with an extra stride-4 level for tiny objects, CBAM, four YOLOv5 heads with four anchors
# each, at the x scale (depth 1.33, width 1.25). The README's section "Table 2" gives the
# sources of every architecture and recipe choice, and the four paper commands.
#
# **UGS in the YOLOv5 head.** The paper gives no encoding for YOLO; the kit's choices
# (`ugs/yolo/ugs_head.py`): 17 logits per box coordinate and anchor; the centre offsets of the
# positives (in [-0.5, 1.5) cells after YOLOv5's neighbour assignment) as `offset - 0.5` on a
# uniform grid over [-1, 1]; the size ratios to the anchor (in (1/3, 3) at anchor_t 3) as
# `ln(wh / anchor)` on the interval non-uniform grid over [-ln 3, ln 3]; Eq. 10 + λ Eq. 12 in
# place of the CIoU loss, the objectness target the CIoU of the decoded expectation box, the
# refinement step (Eq. 14-15) on the four levels the head reads, and the expectation decoded
# back into YOLOv5's parameters at test time (mmyolo's decoding and NMS unchanged).
#
# **Two profiles.**
#
# | | `quick` (the default) | `paper` |
# |---|---|---|
# | rows | 640, baseline and w/ UGS (2 runs) | 640 and 1536, baseline and w/ UGS (4 runs) |
# | data | the kit's synthetic VisDrone-format set (the first 40 of its 200 training images, 256 px) | VisDrone2019-DET train / val, converted (README, "Data") |
# | model | TPH-YOLOv5 at depth 0.33, width 0.25, from scratch | TPH-YOLOv5-x, from scratch as TPH-YOLOv5's recipe |
# | schedule | 1 epoch at 256 px, 4 images per step, CPU | 80 epochs; 16 images per step at 640, 4 at 1536, accumulated to 64 |
# | anchors | fitted to the training set by the training tool (TPH-YOLOv5's rule) | fitted to VisDrone's training set at the input size (`ugs data anchors`), passed to the run |
# | time | about 1.5 minutes | 4 GPU trainings |
#
# ```bash
# papermill notebooks/05_visdrone_yolo.ipynb out.ipynb -p profile paper -p data_root data/visdrone -p gpus 4
# ```
#
# The quick profile changes the size of the run, never the method (`ugs/yolo/profile.py`): the
# same modules, head, losses, assignment, pipelines (Mosaic, MixUp, affine, HSV, flip), the
# mmyolo schedule and EMA hooks, and Table 1's VisDrone evaluation. One epoch of a small
# TPH-YOLOv5 from scratch detects next to nothing: its AP values show that the pipeline works,
# not whether UGS helps.

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
import subprocess
import time

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from ugs.openmmlab import runs as runs_tool
from ugs.papers import load_table, write_table

ROOT = pathlib.Path(ugs.__file__).resolve().parent.parent  # the repository root
_t_start = time.perf_counter()

# %% [markdown]
# ## Parameters
#
# * `profile`: `"quick"` or `"paper"` (the table above).
# * `input_sizes`: Table 2's input sizes to run, from `640` and `1536`; `None` means the
#   profile's default (paper both, quick `[640]`: the quick profile trains every row at
#   `image_size` with the same small model and 4 images per step, so a 1536 row would train the
#   same model as the 640 row; asking for it there is an error).
# * `data_root`: a converted VisDrone folder (README, "Data"); `None` means `data/visdrone` in
#   the paper profile and the synthetic set `data/synthetic` in the quick profile (generated if
#   absent).
# * `epochs`: `None` means the profile's default (quick 1, paper the recipe's 80).
# * `gpus`: GPUs per run (> 1 launches `torch.distributed.run`); it must divide the recipe's
#   images per step (16 at 640, 4 at 1536).
# * `fit_anchors`: paper profile only. The configs carry no anchors until a user fits them to
#   VisDrone (`anchors = None`); with `True` the notebook runs `ugs data anchors` on
#   `data_root`'s training set at each input size and passes the result to the runs (printed,
#   to paste into the configs); with `False` a config without anchors stops with that command.
#   The quick profile's training tool always fits missing anchors itself.
# * `image_size`, `train_images`: quick profile only; the side of the training and test images,
#   and how many training images are used (`None`: all 200; at least 40, so that the epoch
#   logs its training loss). The default 40 (10 steps of 4) keeps the main job within its 20
#   minutes on a 2-core machine.
# * Each run's work dir (`work_dir/<row>`) is deleted before it trains.

# %% tags=["parameters"]
profile = "quick"  # "quick" (CPU, synthetic data, minutes) or "paper" (GPUs, VisDrone)
input_sizes = None  # None: paper -> [640, 1536], quick -> [640]
data_root = None  # converted VisDrone; None: paper -> data/visdrone, quick -> data/synthetic
epochs = None  # None: quick 1, paper 80 (TPH-YOLOv5's recipe)
gpus = 1  # GPUs per run
fit_anchors = True  # paper profile: fit missing anchors to data_root's training set and pass them
work_dir = "work_dirs/05_visdrone_yolo"  # each run trains in <work_dir>/<row>
seed = 0  # training seed (also the anchor fit's)
image_size = 256  # quick profile only
train_images = 40  # quick profile only: the first N training images (None: all 200), at least 40
output_dir = "outputs/05_visdrone_yolo"  # measured table and figure

# %% [markdown]
# ## The four rows, their configs and commands
#
# A row id is Table 2's (`tph_yolov5_x_640`, `tph_yolov5_x_640_ugs`, ...); its config is
# `configs/tph_yolov5/tph_yolov5_x[_ugs]_<size>_visdrone.py`. Every run is evaluated by the
# kit's `VisDroneMetric`, as Table 1 (ignored regions as the VisDrone toolkit, up to 500
# detections per image).

# %%
PROFILES = ("quick", "paper")
SIZES = (640, 1536)
RECIPE_EPOCHS = 80
PAPER_BATCH = {640: 16, 1536: 4}          # images per step of TPH-YOLOv5's recipe (accumulated to 64)
METRICS = ("AP", "AP_s", "AP_m")          # Table 2's columns

table2 = load_table(2)


def row_id(size, ugs_):
    return f"tph_yolov5_x_{size}" + ("_ugs" if ugs_ else "")


def config_of(size, ugs_):
    return f"configs/tph_yolov5/tph_yolov5_x{'_ugs' if ugs_ else ''}_{size}_visdrone.py"


def check_int(name, value, lo):
    if not isinstance(value, int) or isinstance(value, bool) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")


if profile not in PROFILES:
    raise ValueError(f"profile must be 'quick' or 'paper', got {profile!r}")
if input_sizes is None:
    input_sizes = list(SIZES) if profile == "paper" else [640]
if isinstance(input_sizes, (str, int)) or not isinstance(input_sizes, (list, tuple)) or not input_sizes \
        or any(s not in SIZES for s in input_sizes) or len(set(input_sizes)) != len(input_sizes):
    raise ValueError(f"input_sizes must be a non-empty list of distinct values from {list(SIZES)}, got {input_sizes!r}")
if profile == "quick" and 1536 in input_sizes:
    raise ValueError("input_sizes: the quick profile trains every row at image_size with the same small model, "
                     "so a 1536 row would train the same model as the 640 row; use profile='paper' for 1536")
for _name, _v, _lo in (("gpus", gpus, 1), ("image_size", image_size, 64), ("seed", seed, 0)):
    check_int(_name, _v, _lo)
if image_size % 32:
    raise ValueError(f"image_size must be a multiple of 32 (TPH-YOLOv5's largest stride), got {image_size}")
if epochs is not None:
    check_int("epochs", epochs, 1)
if train_images is not None:
    check_int("train_images", train_images, 40)
if not isinstance(fit_anchors, bool):
    raise ValueError(f"fit_anchors must be True or False, got {fit_anchors!r}")
if profile == "paper":
    for _s in input_sizes:
        if PAPER_BATCH[_s] % gpus:
            raise ValueError(f"gpus={gpus} does not divide the recipe's {PAPER_BATCH[_s]} images per step at {_s}")

epochs = epochs if epochs is not None else (1 if profile == "quick" else RECIPE_EPOCHS)
data_path = runs_tool.resolve(data_root if data_root is not None else ("data/synthetic" if profile == "quick"
                                                                       else "data/visdrone"), ROOT)
work_path, output_path = runs_tool.resolve(work_dir, ROOT), runs_tool.resolve(output_dir, ROOT)
output_path.mkdir(parents=True, exist_ok=True)
ROWS = [(row_id(s, u), s, u) for s in input_sizes for u in (False, True)]


def command(row, size, ugs_, *, profile_, data, gpus_, anchors=None, python=None):
    options = [f"model.bbox_head.prior_generator.base_sizes={json.dumps(anchors, separators=(',', ':'))}"] \
        if anchors is not None else []
    if profile_ == "quick" and train_images is not None:
        options.append(f"train_dataloader.dataset.indices={train_images}")
    return runs_tool.train_command(config_of(size, ugs_), root=ROOT, profile=profile_, data_root=data,
                                   work_dir=work_path / row, epochs=epochs if profile_ == profile else RECIPE_EPOCHS,
                                   seed=seed, max_per_img=None, image_size=image_size, gpus=gpus_, options=options,
                                   python=python)


# %% [markdown]
# **The paper-profile commands** (4 GPUs, VisDrone converted into `data/visdrone`; run from the
# repository root). First the anchors, once per input size: paste the printed `anchors = [...]`
# into the size's two configs (or let this notebook pass them, `fit_anchors = True`). This
# notebook runs the same training commands with its parameters' data root, GPU count and epochs
# when `profile = "paper"`:

# %%
# NBVAL_CHECK_OUTPUT
for _s in SIZES:
    print(f"python -m ugs.cli data anchors data/visdrone/annotations/train.json --img-size {_s}"
          f"   # -> anchors of {config_of(_s, False)} and {config_of(_s, True)}")
for _s in SIZES:
    for _u in (False, True):
        _row = row_id(_s, _u)
        print(f"# Table 2 {_row}: {config_of(_s, _u)}")
        print(shlex.join(command(_row, _s, _u, profile_="paper", data=pathlib.Path("data/visdrone"), gpus_=4,
                                 python="python")))
print()
print(table2.to_markdown(columns=list(METRICS)))

# %% [markdown]
# ## 1 · Data and anchors
#
# The paper profile reads a converted VisDrone at `data_root` (checked here, with the
# conversion commands in the error when it is not). The quick profile generates the synthetic
# set when it is missing. Anchors: the paper profile fits them (when `fit_anchors` and a config
# has none) with TPH-YOLOv5's rule, on the training set's boxes at the input size; the quick
# profile leaves that to the training tool, which does the same at `image_size` and logs them.

# %%
if profile == "quick":
    runs_tool.ensure_synthetic(data_path, ROOT)
else:
    runs_tool.check_visdrone(data_path)
print(f"training images: {runs_tool.count_images(data_path, 'train')}, validation images: "
      f"{runs_tool.count_images(data_path, 'val')} ({data_path})")
if profile == "quick" and train_images is not None and train_images > runs_tool.count_images(data_path, "train"):
    raise ValueError(f"train_images={train_images} but {data_path} has "
                     f"{runs_tool.count_images(data_path, 'train')} training images")


def config_anchors(size):
    """The anchors written in the size's configs (None until a user pastes them)."""
    from mmengine.config import Config

    return Config.fromfile(str(ROOT / config_of(size, False))).model.bbox_head.prior_generator.get("base_sizes")


anchors = {}
if profile == "paper":
    for size in input_sizes:
        if config_anchors(size) or not fit_anchors:
            continue          # the configs' own anchors (or, without them, the configs' error names the command)
        _cmd = [sys.executable, "-m", "ugs.cli", "data", "anchors", str(data_path / "annotations" / "train.json"),
                "--img-size", str(size), "--seed", str(seed), "--json"]
        print("$", shlex.join(_cmd), flush=True)
        _out = subprocess.run(_cmd, cwd=ROOT, capture_output=True, text=True)
        if _out.returncode != 0:
            raise RuntimeError(f"ugs data anchors failed (exit {_out.returncode}):\n{_out.stderr[-3000:]}")
        _fit = json.loads(_out.stdout)
        anchors[size] = _fit["anchors"]
        print(f"anchors at {size} (BPR {_fit['bpr']:.4f}; paste into {config_of(size, False)} and its w/ UGS "
              f"twin):\nanchors = {_fit['anchors']}")

# %% [markdown]
# ## 2 · Training and evaluation, one run per row
#
# Each run is `python -m ugs.openmmlab.train` in its own process (`ugs/openmmlab/runs.py`); a
# live progress line per run is shown, the full output is kept in `<work_dir>/<row>/train_stdout.log`.

# %%
results = {}
for row, size, u in ROWS:
    cmd = command(row, size, u, profile_=profile, data=data_path, gpus_=gpus, anchors=anchors.get(size))
    results[row] = runs_tool.train(row, cmd, work_path / row, ROOT)
total_s = sum(r["seconds"] for r in results.values())
print(f"\n{len(results)} run(s) in {total_s:.0f} s:", ", ".join(f"{k} {r['seconds']:.0f} s" for k, r in results.items()))

# %% [markdown]
# ## 3 · Results next to Table 2
#
# AP, AP_s and AP_m come from each run's `metrics.json` (the kit's VisDrone evaluation of the
# last epoch). Records in the `papers_tables` schema, with Table 2's row and `input_size`
# (the size actually trained), `status = measured`, the exact command as `source`, and
# `profile`, `epochs`, `seed`; `train_loss` (the mean logged training loss of the last epoch)
# fingerprints each run where AP is near zero. The baseline's and the w/ UGS run's losses are
# not comparable with each other (different box terms).

# %%
records, measured = [], {}
for row, size, u in ROWS:
    m = results[row]["metrics"]
    measured[row] = {c: (round(100 * float(m[c]), 2) if float(m[c]) >= 0 else None) for c in METRICS}
    paper = table2.select(row)[0]
    trained = image_size if profile == "quick" else size
    base = dict(row=row, method=paper["method"], variant=paper["variant"], status="measured",
                source=results[row]["command"], derivation="", input_size=f"({trained}, {trained})",
                profile=profile, epochs=str(epochs), seed=str(seed))
    quick_note = ("quick profile: TPH-YOLOv5 at depth 0.33 / width 0.25 in place of x, 1 row per size; "
                  if profile == "quick" else "")
    for col in METRICS:
        v = measured[row][col]
        records.append(dict(base, column=col, value=-1.0 if v is None else v,
                            note=quick_note + "VisDrone AP (0.5:0.95), ignored regions as the toolkit, 500 per image"
                            + ("; -1: no ground truth of this size" if v is None else "")))
    records.append(dict(base, column="train_loss", value=round(runs_tool.train_loss(results[row]["work_dir"]), 4),
                        note=f"mean logged training loss of epoch {epochs}: a fingerprint of the run"))
table_path = write_table(records, output_path / "table2_measured.csv")
print(f"wrote {len(records)} records to {table_path}")


def cell(value):
    return "-" if value is None else f"{round(value, 1) + 0.0:.1f}"


lines = ["| row | input | " + " | ".join(f"{c} paper | {c} measured" for c in METRICS) + " | train loss |",
         "|---|---|" + "---:|" * (2 * len(METRICS) + 1)]
for row, size, u in ROWS:
    loss = next(r["value"] for r in records if r["row"] == row and r["column"] == "train_loss")
    lines.append(f"| {row} | {size}" + (f" (trained at {image_size})" if profile == "quick" else "") + " | "
                 + " | ".join(f"{cell(table2.value(row, c))} | {cell(measured[row][c])}" for c in METRICS)
                 + f" | {loss:.4f} |")
comparison_md = f"**{profile} profile, {epochs} epoch(s), seed {seed}**\n\n" + "\n".join(lines)
display(Markdown(comparison_md))
_ = (output_path / "comparison.md").write_text(comparison_md + "\n", encoding="utf-8")

# %% [markdown]
# Left: the paper's Table 2, baseline and w/ UGS per input size and metric. Right: the loss
# terms of this notebook's runs at their last logged iteration (mmengine's running mean, log
# scale): classification (`loss_cls`) and objectness (`loss_obj`) are the same terms in both
# runs; the baseline regresses with CIoU (`loss_bbox`), the w/ UGS run with Eq. 16's three terms
# (`loss_ce`, `loss_um`, `loss_ur`), all at YOLOv5's box gain times the w/ UGS config's
# `loss_weight`.

# %%
fig, (ax_p, ax_m) = plt.subplots(1, 2, figsize=(13, 4.2))
groups = [(s, c) for s in SIZES for c in METRICS]
for k, (s, c) in enumerate(groups):
    for j, u in enumerate((False, True)):
        ax_p.bar(k + (j - 0.5) * 0.38, table2.value(row_id(s, u), c), width=0.36, color="C1" if u else "C0",
                 edgecolor="k", linewidth=0.5, label=("w/ UGS" if u else "baseline") if k == 0 else None)
ax_p.set_xticks(range(len(groups)), [f"{c}\n{s}" for s, c in groups])
ax_p.set_ylabel("AP (%)")
ax_p.set_title("Table 2 (paper): TPH-YOLOv5-x on VisDrone")
ax_p.legend(fontsize=8)
terms = {}
for row, *_ in ROWS:
    last = [e for e in runs_tool.run_scalars(results[row]["work_dir"]) if "loss" in e and "epoch" in e][-1]
    terms[row] = {k: v for k, v in runs_tool.loss_terms(last).items() if k != "loss"}
names = list(dict.fromkeys(k for t in terms.values() for k in t))
width = 0.8 / len(ROWS)
for j, (row, *_) in enumerate(ROWS):
    ax_m.bar([i + (j - (len(ROWS) - 1) / 2) * width for i in range(len(names))],
             [terms[row].get(n, float("nan")) for n in names], width=width, color=f"C{j}", label=row)
ax_m.set_yscale("log")
ax_m.set_xticks(range(len(names)), names)
ax_m.set_ylabel("loss at the last logged iteration")
ax_m.set_title(f"this run ({profile} profile): loss terms")
ax_m.legend(fontsize=7)
fig.tight_layout()
fig.savefig(output_path / "table2.png", dpi=110)
print("saved", output_path / "table2.png")
plt.show()

# %% [markdown]
# ## 4 · What this shows
#
# Table 2's claim is +2.5 AP (and +1.8 to +2.6 AP_s) for TPH-YOLOv5-x on VisDrone at both input
# sizes. Testing it needs the paper profile: the x model, VisDrone, 80 epochs of TPH-YOLOv5's
# recipe with anchors fitted to VisDrone, and, to tell a 2.5-point gain from seed noise, more
# than one seed per row (`-p seed 1`, ...).
#
# The quick profile trains a small TPH-YOLOv5 from scratch for one epoch of 40 synthetic images:
# its AP values are at or near zero for both rows, and they are **not** evidence for or against
# the claim. What it does show: both configs' recipes (mmyolo's dataset, Mosaic / MixUp
# pipelines, fast collate, the YOLOv5 schedule and EMA hooks, the anchors fitted by TPH-YOLOv5's
# rule) run end to end with TPH-YOLOv5's modules and UGS's YOLOv5 head, are evaluated as Table 1
# is, and land in Table 2's schema; the regression in CI guards them by their training losses.

# %% tags=["verdict"]
near_zero = [row for row in measured if all(v is None or v < 1.0 for v in measured[row].values())]
for row, size, u in ROWS:
    print(f"{row}: " + ", ".join(f"{c} {cell(measured[row][c])} (paper {cell(table2.value(row, c))})"
                                 for c in METRICS))
verdict = (f"{len(near_zero)} of {len(measured)} rows have every AP below 1 point: the {profile} profile shows the "
           "pipeline, not UGS's effect on TPH-YOLOv5." if profile == "quick" else
           "paper profile: compare each w/ UGS row with its baseline above (one seed each).")
display(Markdown(f"**Verdict:** {verdict}"))
print(f"\nnotebook ran in {time.perf_counter() - _t_start:.0f} s (training {total_s:.0f} s of it); outputs in {output_path}")

# %% [markdown]
# ## Recap
#
# * Table 2's four rows are four configs: TPH-YOLOv5-x with TPH-YOLOv5's recipe at 640 and 1536,
#   and the same with UGS in its four YOLOv5 heads; every row is one command of the training
#   tool (listed above), run by this notebook in either profile.
# * The paper profile fits the anchors to VisDrone at each input size (TPH-YOLOv5's rule) when
#   the configs have none, and passes them to the runs.
# * The quick profile runs the same modules, head, pipelines, hooks and evaluation on the
#   synthetic set in about a minute and a half on the CPU; its numbers are a smoke test.
# * Results are written to `table2_measured.csv` in the `papers_tables` schema and shown next to
#   Table 2.
