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
# # 04 · DINO-5scale on VisDrone, without and with UGS (Table 1)
#
# Table 1's strongest result is DINO-5scale (Zhang et al., ICLR 2023) with an R-50 backbone:
# 35.5 AP on the VisDrone-DET 2019 `val` set, 38.1 with UGS. This notebook trains both rows
# with the kit's configs, evaluates them with the VisDrone rules and sets them beside the
# printed numbers:
#
# | Table 1 row | config |
# |---|---|
# | DINO-5scale | `configs/dino/dino_5scale_r50_24e_visdrone.py` |
# | DINO-5scale w/ UGS | `configs/dino/dino_5scale_r50_ugs_24e_visdrone.py` (`UGSDINO` + `UGSDINOHead`) |
#
# **How UGS enters a DETR-style head** (`ugs/openmmlab/dino_head.py`; the paper gives no
# details). DINO predicts a box as `sigmoid(reg_branch(h) + inverse_sigmoid(reference))` at
# every decoder layer, for the encoder's two-stage proposals and for the denoising queries.
# With UGS every `reg_branch` gives `n + 1 = 17` logits per coordinate (cx, cy, w, h) over the
# interval non-uniform grid of Eq. 9 and returns their **expectation**, so the decoder's
# iterative refinement, the Hungarian matcher and inference see ordinary 4-d boxes. The
# target of a query is the offset that decodes to its ground truth exactly,
# `inverse_sigmoid(gt) - inverse_sigmoid(reference)`, clamped to [-alpha, alpha]
# (alpha = 4, beta = 1.0, n = 16). Eq. 10 (`loss_ce`) + lambda Eq. 12 (`loss_um`) **replace
# DINO's L1 term** on the matched queries of every decoder layer, on the encoder's top-k
# proposals and on the positive denoising queries; the GIoU term and the matcher's costs are
# DINO's. The refinement step (Eq. 14-15) perturbs the five multi-scale encoder inputs along
# the normalised gradient of L_UM and adds the UGS terms of a second pass (`loss_ur`).
#
# **Two profiles, one notebook.** Both run the same heads, losses and matcher; only the
# size of the run differs.
#
# | | `quick` (the default on a machine without a GPU) | `paper` (Sec. 4.1.2; the default on a GPU machine with VisDrone in `data/visdrone`) |
# |---|---|---|
# | data | the kit's synthetic small-object set (the first 32 of its 200 train images; 50 val images; 256 px) | VisDrone-DET 2019 (6,471 train / 548 val images) |
# | backbone | ResNet-18 from scratch | ResNet-50, ImageNet-pretrained |
# | transformer | 1 encoder / 2 decoder layers, 100 queries, 20 denoising queries | 6 / 6 layers, 900 queries, 100 denoising queries |
# | input | DETR-style augmentation scaled to at most 128 px | DETR-style augmentation (multi-scale resize 480-800, random crop) |
# | schedule | 1 epoch, 4 images per step, AdamW lr 2e-4, x0.1 at 5/6 of the steps | 24 epochs, 16 images per step, AdamW lr 2e-4, x0.1 at epoch 20 |
# | detections kept | 300 | 1,500 (as DQ-DETR) |
# | hardware | the CPU, a few minutes | GPUs, days |
#
# The paper profile is one command. With VisDrone converted into `data/visdrone` (the
# README's "Data" section) on a GPU machine, the defaults choose it by themselves:
#
# ```bash
# papermill notebooks/04_visdrone_dino.ipynb out.ipynb -p epochs 24
# # the same, every choice spelled out (data elsewhere, 4 GPUs):
# papermill notebooks/04_visdrone_dino.ipynb out.ipynb -p profile paper -p dataset visdrone -p data_root /path/to/VisDrone -p gpus 4 -p epochs 24
# ```
#
# What the notebook does: prepare the data (Sec. 1), show the UGS box coding on numbers
# (Sec. 2), train both detectors with `python -m ugs.openmmlab.train` in subprocesses
# (Sec. 3), evaluate them with the VisDrone toolkit's rules against Table 1 (Sec. 4), plot
# the losses (Sec. 5), and say what the numbers do and do not show (Sec. 6).

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
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

from ugs.grid import IntervalGrid
from ugs.openmmlab import runs as runs_tool
from ugs.openmmlab.train import read_scalars
from ugs.papers import load_table, write_table

ROOT = pathlib.Path(ugs.__file__).resolve().parent.parent  # the repository root
_t_start = time.perf_counter()

# %% [markdown]
# ## Parameters
#
# Every knob is in the next cell (papermill's `parameters` cell). Relative paths are resolved
# against the repository root.
#
# * `profile`: `"quick"`, `"paper"` (the table above) or `"auto"`: `"paper"` when a CUDA
#   device is visible and a converted VisDrone is at `data_root` (or `data/visdrone` when
#   `data_root` is `None`), `"quick"` otherwise. The choice and its reason are printed.
# * `dataset`: `"synthetic"`, `"visdrone"` or `"auto"` (VisDrone for the paper profile, the
#   synthetic set for the quick one); `data_root` is the folder with
#   `annotations/{train,val}.json` and the images (`None`: `data/synthetic`, generated if
#   absent, or `data/visdrone`).
# * `gpus`: `None` means every visible CUDA device in the paper profile, 1 otherwise.
# * `epochs`: `None` means the profile's default (quick 1, paper 24).
# * `max_per_img`: detections kept per image and evaluated; `None` means quick 300, paper
#   1,500 (the quick model has 100 queries x 10 classes = 1,000 candidates).
# * `train_images`: quick profile only, train on the first N training images (`None`: all;
#   the default 32 keeps the main job within its 20 minutes on a 2-core machine; the test
#   command's set uses the same).
# * Re-running the notebook **retrains from scratch** (each detector's work dir is deleted).

# %% tags=["parameters"]
profile = "auto"  # "quick" (CPU, synthetic, minutes), "paper" (Sec. 4.1.2, GPUs) or "auto" (see above)
dataset = "auto"  # "synthetic", "visdrone" (VisDrone-DET 2019) or "auto" (paper -> visdrone, quick -> synthetic)
data_root = None  # None: synthetic -> <repo>/data/synthetic (generated if absent); visdrone -> <repo>/data/visdrone
epochs = None  # None: quick 1, paper 24 (the paper's DINO schedule)
detectors = ["dino", "dino_ugs"]  # which Table 1 rows to train, in this order
gpus = None  # GPUs per run (None: paper -> every visible CUDA device, quick -> 1); > 1 launches torch.distributed.run
work_dir = "work_dirs/04_visdrone_dino"  # checkpoints and logs go to <work_dir>/<detector>
seed = 0  # training seed (mmengine randomness)
max_per_img = None  # None: quick 300, paper 1500 (following DQ-DETR, Sec. 4.1.2)
image_size = 128  # quick profile only: the largest short side of the scaled DETR augmentation
train_images = 32  # quick profile only: train on the first N images (None: all 200)
output_dir = "outputs/04_visdrone_dino"  # measured table and figures are written here

# %%
DETECTORS = {  # name -> (config, Table 1 row id, baseline it is compared with, or None)
    "dino": ("configs/dino/dino_5scale_r50_24e_visdrone.py", "dino_5scale", None),
    "dino_ugs": ("configs/dino/dino_5scale_r50_ugs_24e_visdrone.py", "dino_5scale_ugs", "dino"),
}
PROFILE_EPOCHS = {"quick": 1, "paper": 24}
PROFILE_MAX_PER_IMG = {"quick": 300, "paper": 1500}
QUICK_CANDIDATES = 100 * 10  # quick profile: 100 queries x 10 classes
METRICS = ("AP", "AP50", "AP_s", "AP_m", "AP_l")  # Table 1's columns
PAPER_BATCH = 16


def resolve(path):
    """A path as given, relative ones taken from the repository root."""
    p = pathlib.Path(path).expanduser()
    return p if p.is_absolute() else ROOT / p


def check_detectors(names):
    """The detector list, or a ValueError naming the unknown entries and the known ones."""
    if isinstance(names, str) or not list(names):
        raise ValueError(f"detectors must be a non-empty list of names, got {names!r}")
    unknown = [d for d in names if d not in DETECTORS]
    if unknown:
        raise ValueError(f"unknown detector(s) {unknown}; known: {', '.join(DETECTORS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"detectors lists a name twice: {list(names)}")
    return list(names)


def check_visdrone_root(root):
    """Raise with the conversion commands when ``root`` is not a converted VisDrone folder."""
    how = ("convert the two splits first:\n"
           f"  python -m ugs.cli data visdrone {root}/VisDrone2019-DET-train {root}/annotations/train.json\n"
           f"  python -m ugs.cli data visdrone {root}/VisDrone2019-DET-val {root}/annotations/val.json")
    missing = [f"annotations/{s}.json" for s in ("train", "val")
               if not (root / "annotations" / f"{s}.json").is_file()]
    if missing:
        raise FileNotFoundError(f"data_root {root} has no {' or '.join(missing)}; {how}")
    no_images = [f"VisDrone2019-DET-{s}/images" for s in ("train", "val")
                 if not (root / f"VisDrone2019-DET-{s}" / "images").is_dir()]
    if no_images:
        raise FileNotFoundError(f"data_root {root} has no {' or '.join(no_images)} (the configs read "
                                f"the images from there); expected the layout of the README's Data section")


def visdrone_ready(root):
    """True when ``root`` holds a converted VisDrone (both annotation files)."""
    return all((root / "annotations" / f"{s}.json").is_file() for s in ("train", "val"))


if profile not in (*PROFILE_EPOCHS, "auto"):
    raise ValueError(f"profile must be 'quick', 'paper' or 'auto', got {profile!r}")
if dataset not in ("synthetic", "visdrone", "auto"):
    raise ValueError(f"dataset must be 'synthetic', 'visdrone' or 'auto', got {dataset!r}")
if profile == "auto":
    _candidate = resolve(data_root if data_root is not None else "data/visdrone")
    _cuda = torch.cuda.is_available()
    _data = dataset != "synthetic" and visdrone_ready(_candidate)
    profile = "paper" if _cuda and _data else "quick"
    print(f"profile 'auto' -> {profile!r}: CUDA device {'visible' if _cuda else 'not visible'}, "
          f"converted VisDrone {'found' if _data else 'not found'} at {_candidate}")
if dataset == "auto":
    dataset = "visdrone" if profile == "paper" else "synthetic"
if gpus is None:
    import torch

    gpus = max(1, torch.cuda.device_count()) if profile == "paper" else 1
detectors = check_detectors(detectors)
epochs = PROFILE_EPOCHS[profile] if epochs is None else epochs
max_per_img = PROFILE_MAX_PER_IMG[profile] if max_per_img is None else max_per_img
for _name, _v, _lo in (("epochs", epochs, 1), ("gpus", gpus, 1), ("max_per_img", max_per_img, 1),
                       ("image_size", image_size, 32), ("seed", seed, 0)):
    if not isinstance(_v, int) or isinstance(_v, bool) or _v < _lo:
        raise ValueError(f"{_name} must be an integer >= {_lo}, got {_v!r}")
if train_images is not None and (not isinstance(train_images, int) or isinstance(train_images, bool)
                                 or train_images < 4):
    raise ValueError(f"train_images must be None or an integer >= 4, got {train_images!r}")
if profile == "quick" and max_per_img > QUICK_CANDIDATES:
    raise ValueError(f"max_per_img={max_per_img}: the quick profile's DINO has only {QUICK_CANDIDATES} "
                     "(query, class) candidates per image; use <= 1000")
if profile == "paper" and PAPER_BATCH % gpus:
    raise ValueError(f"gpus={gpus} does not divide the paper's {PAPER_BATCH} images per step (use 1, 2, 4, 8 or 16)")
if dataset == "visdrone":
    data_path = resolve(data_root if data_root is not None else "data/visdrone")
    check_visdrone_root(data_path)
else:
    data_path = resolve(data_root if data_root is not None else "data/synthetic")
work_path = resolve(work_dir)
output_path = resolve(output_dir)
output_path.mkdir(parents=True, exist_ok=True)
if profile == "paper" and dataset == "synthetic":
    print("note: the paper profile on the synthetic set runs the paper's recipe on toy data")

# %%
# NBVAL_CHECK_OUTPUT
print(f"profile {profile}, dataset {dataset}, {epochs} epoch(s), seed {seed}, gpus {gpus}, "
      f"max_per_img {max_per_img}" + (f", image_size {image_size}" if profile == "quick" else "")
      + (f", train_images {train_images}" if profile == "quick" and train_images is not None else ""))
for d in detectors:
    cfg, row, base = DETECTORS[d]
    print(f"  {d:9s} {cfg:52s} Table 1 row {row!r}" + (f", compared with {base!r}" if base else ""))

# %% [markdown]
# The printed Table 1 numbers for these rows, from `papers_tables/table1_visdrone.csv`
# (typed once from the paper; nothing is typed in this notebook):

# %%
# NBVAL_CHECK_OUTPUT
table1 = load_table(1)
print(table1.to_markdown(rows=[DETECTORS[d][1] for d in detectors], columns=list(METRICS)))

# %% [markdown]
# ## 1 · Data
#
# The synthetic set (the kit's stand-in for VisDrone on a CPU, `python -m ugs.cli data synth`)
# is generated once when it is missing; VisDrone must be converted beforehand.

# %%
if not (dataset == "synthetic" and runs_tool.ensure_synthetic(data_path, ROOT)):
    print(f"using the existing {dataset} data in {data_path}")

# %%
# NBVAL_CHECK_OUTPUT
coco = {s: json.loads((data_path / "annotations" / f"{s}.json").read_text(encoding="utf-8"))
        for s in ("train", "val")}
for s, d in coco.items():
    wh = np.array([a["bbox"][2:] for a in d["annotations"]], dtype=np.float64).reshape(-1, 2)
    area = wh[:, 0] * wh[:, 1]
    print(f"{s:5s}: {len(d['images'])} images, {len(area)} objects ({len(area) / max(len(d['images']), 1):.1f} "
          f"per image), {np.mean(area < 32 ** 2):.1%} COCO-small, median sqrt(area) {np.median(np.sqrt(area)):.1f} px")

# %% [markdown]
# ## 2 · The box coding on numbers
#
# The grid of the DINO head (alpha = 4, beta = 1.0, n = 16, Eq. 9) is dense near 0, where the
# offsets of the later decoder layers and of the lightly-noised denoising queries lie, and
# reaches +-4 logit units (a factor e^4 = 55 in a small box's width). Below: the grid, and a
# round trip for a few boxes: ground truth and reference -> logit offset target -> two-hot
# (Eq. 8) -> expectation -> `sigmoid(expectation + inverse_sigmoid(reference))`, which gives
# the ground truth back. The same coding is tested in `tests/test_openmmlab_dino.py`.

# %%
# NBVAL_CHECK_OUTPUT
grid = IntervalGrid(4.0, 1.0, 16)
print("grid points:", " ".join(f"{v:+.3f}" for v in grid.values.tolist()))
print(f"spacing next to 0: {float(grid.values[9] - grid.values[8]):.3f} logit units "
      f"(uniform grid: {8 / 16:.3f})")
gt = torch.tensor([[0.30, 0.40, 0.010, 0.020], [0.70, 0.20, 0.050, 0.030], [0.52, 0.81, 0.200, 0.120]])
ref = torch.tensor([[0.31, 0.38, 0.014, 0.015], [0.66, 0.25, 0.030, 0.060], [0.50, 0.80, 0.150, 0.150]])
target = (torch.logit(gt, eps=1e-5) - torch.logit(ref, eps=1e-5)).clamp(-4, 4)
decoded = grid.decode(torch.log(grid.encode(target).clamp_min(1e-30)))
box = (decoded + torch.logit(ref, eps=1e-5)).sigmoid()
for g_, r_, t_, b_ in zip(gt.tolist(), ref.tolist(), target.tolist(), box.tolist()):
    print(f"gt {g_} ref {r_} -> target [{', '.join(f'{v:+.3f}' for v in t_)}] -> box [{', '.join(f'{v:.3f}' for v in b_)}]")
print("max |box - gt| =", f"{float((box - gt).abs().max()):.1e}")

# %% [markdown]
# ## 3 · Training
#
# Each detector is one run of the kit's training tool in its own process:
#
# `python -m ugs.openmmlab.train CONFIG --profile P --data-root D --work-dir W/<detector> --epochs E --seed S --max-per-img M`
#
# It validates after every epoch with `VisDroneMetric` (COCO AP with the toolkit's
# ignored-region rule, up to `max_per_img` detections per image) and writes `metrics.json`.
# Each run shows one live progress line; the full output is in `W/<detector>/train_stdout.log`.


# %%
def train_command(detector):
    """The command line (list) that trains ``detector``, run from the repository root (the run
    helpers are ``ugs/openmmlab/runs.py``, shared with notebooks 03, 09, 10, 11 and 12)."""
    return runs_tool.train_command(DETECTORS[detector][0], root=ROOT, profile=profile, data_root=data_path,
                                   work_dir=work_path / detector, epochs=epochs, seed=seed,
                                   max_per_img=max_per_img, image_size=image_size, gpus=gpus,
                                   options=[f"train_dataloader.dataset.indices={train_images}"]
                                   if profile == "quick" and train_images is not None else ())


# %%
runs = {}
for d in detectors:
    runs[d] = runs_tool.train(d, train_command(d), work_path / d, ROOT)
total_s = sum(r["seconds"] for r in runs.values())
print(f"\ntrained {len(runs)} detector(s) in {total_s:.0f} s:",
      ", ".join(f"{d} {r['seconds']:.0f} s" for d, r in runs.items()))

# %% [markdown]
# ## 4 · Results against Table 1
#
# Each run's `metrics.json` (the last epoch's evaluation) becomes records of the
# `papers_tables` schema: the Table 1 row id, `status = measured`, the exact command as
# `source`, and the settings `profile`, `dataset`, `epochs`, `seed`. Values are in percent;
# `-1` (no ground truth of that size in the evaluated set) is written as `-1.0` with a note.

# %%
records, measured = [], {}
for d, r in runs.items():
    m = json.loads((r["work_dir"] / "metrics.json").read_text(encoding="utf-8"))
    row = DETECTORS[d][1]
    printed = table1.select(row)[0]
    measured[d] = {}
    for col in METRICS:
        v = float(m[col])
        value = round(100 * v, 2) if v >= 0 else -1.0
        measured[d][col] = value if v >= 0 else None
        records.append(dict(
            row=row, method=printed["method"], variant=printed["variant"], column=col, value=value,
            status="measured", source=r["command"], derivation="",
            profile=profile, dataset=dataset, epochs=str(epochs), seed=str(seed),
            note=("-1: no ground truth of this size in the evaluated set; " if v < 0 else "")
            + f"last epoch of {epochs}; max_per_img {max_per_img}"))
    records.append({**records[-1], "column": "train_loss", "value": round(runs_tool.train_loss(r["work_dir"]), 4),
                    "note": f"mean logged training loss of epoch {epochs}: a fingerprint of the run"})
table_path = write_table(records, output_path / "table1_dino_measured.csv")
print(f"wrote {len(records)} records to {table_path}")


# %%
def cell(v, sign=False):
    if v is None:
        return "-"
    v = round(v, 1) + 0.0
    return f"{v:+.1f}" if sign else f"{v:.1f}"


def gain(a, b):
    return None if a is None or b is None else a - b


lines = ["| row | " + " | ".join(f"{c} paper | {c} measured" for c in METRICS) + " |",
         "|---|" + "---:|" * (2 * len(METRICS))]
for d in detectors:
    row = DETECTORS[d][1]
    lines.append(f"| {table1.select(row)[0]['method']} | "
                 + " | ".join(f"{cell(table1.value(row, c))} | {cell(measured[d][c])}" for c in METRICS) + " |")
pairs = [(d, DETECTORS[d][2]) for d in detectors if DETECTORS[d][2] in detectors]
gains = {}
for ugs_d, base_d in pairs:
    ugs_row, base_row = DETECTORS[ugs_d][1], DETECTORS[base_d][1]
    gains[ugs_d] = {c: gain(measured[ugs_d][c], measured[base_d][c]) for c in METRICS}
    paper_gain = {c: gain(table1.value(ugs_row, c), table1.value(base_row, c)) for c in METRICS}
    lines.append("| gain (w/ UGS - baseline) | "
                 + " | ".join(f"{cell(paper_gain[c], True)} | {cell(gains[ugs_d][c], True)}" for c in METRICS) + " |")
comparison_md = f"**{profile} profile, {dataset}, {epochs} epoch(s), seed {seed}**\n\n" + "\n".join(lines)
display(Markdown(comparison_md))
_ = (output_path / "comparison.md").write_text(comparison_md + "\n", encoding="utf-8")

# %% [markdown]
# ## 5 · Loss curves
#
# From each run's mmengine log: the total loss, the classification loss of the last decoder
# layer, and its localization terms: DINO's `loss_bbox` (L1) and `loss_iou` (GIoU); with UGS
# `loss_ce` (Eq. 10), `loss_um` (lambda Eq. 12), `loss_iou` (kept) and `loss_ur` (the
# refinement term, summed over all layers and query kinds). The denoising terms are shown
# dashed (`dn_loss_*`).

# %%
TERMS = ("loss_cls", "loss_bbox", "loss_iou", "loss_ce", "loss_um", "loss_ur")
COLOURS = dict(zip(TERMS, ("C0", "C1", "C2", "C3", "C4", "C5")))
scalars = {}
for d, r in runs.items():
    logs = sorted(r["work_dir"].glob("*/vis_data/scalars.json"))
    if not logs:
        raise FileNotFoundError(f"no vis_data/scalars.json under {r['work_dir']}")
    scalars[d] = read_scalars(str(logs[-1].parent.parent))
fig, axes = plt.subplots(1, len(runs), figsize=(5.6 * len(runs), 3.8), squeeze=False)
for ax, (d, entries) in zip(axes[0], scalars.items()):
    train_log = [e for e in entries if "loss" in e and "iter" in e]
    it = [e["iter"] for e in train_log]
    ax.plot(it, [e["loss"] for e in train_log], "k-", lw=2, label="loss (total)")
    for k in TERMS:
        for prefix, ls in (("", "-"), ("dn_", "--")):
            key = prefix + k
            if any(key in e for e in train_log):
                ax.plot(it, [e.get(key, np.nan) for e in train_log], ls, lw=1.2, color=COLOURS[k], label=key)
    ax.set_title(f"{d} ({DETECTORS[d][1]})")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
fig.tight_layout()
fig.savefig(output_path / "loss_curves.png", dpi=110)
print("saved", output_path / "loss_curves.png")
plt.show()

# %% [markdown]
# ### The weight of the UGS terms in DINO
#
# DINO w/ UGS sums its UGS terms over 4 coordinates, 6 decoder layers, the encoder proposals
# and the denoising queries, so its total loss starts far above the baseline's (the loss
# curves above, log scale), and DINO clips the gradient at norm 0.1. The paper gives no weight.
# The loss *value* misleads: the cross-entropy over 17 bins starts at ln 17 per coordinate,
# but its gradient with respect to the logits is bounded. The kit's rule: the weight that gives
# the UGS terms (CE + lambda UM, refinement off) the gradient norm, over all parameters, of the
# L1 terms they replace (weight 5), freshly initialised, median over batches
# (`python -m ugs.openmmlab.loss_balance`, module docstring). Its committed measurements in
# the paper profile, and the weight the config carries:

# %%
from mmengine.config import Config

_lb_dir = ROOT / "benchmarks" / "results" / "loss_balance"
_config_weight = Config.fromfile(str(ROOT / DETECTORS["dino_ugs"][0])).model.bbox_head.ugs.loss_weight
fig, ax = plt.subplots(figsize=(6.4, 3.4))
for _i, _f in enumerate(sorted(_lb_dir.glob("dino_*.json"))):
    _r = json.loads(_f.read_text(encoding="utf-8"))
    _ratios = [b["ratio"] for b in _r["per_batch"]]
    print(f"{_f.name}: {_r['device']}, image scale {_r['image_scale']}, {_r['batches']} batches of "
          f"{_r['batch_size']}: median ratio {_r['median_ratio']:.3f} -> loss_weight {_r['loss_weight']}")
    print(f"    {_r['command']}")
    ax.plot(_ratios, [_i] * len(_ratios), "o", alpha=0.6, label=f"{_f.stem} (median {_r['median_ratio']:.2f})")
ax.axvline(_config_weight, color="k", ls="--", label=f"config loss_weight {_config_weight}")
ax.set_yticks([])
ax.set_xlabel("|grad of the L1 terms| / |grad of the UGS terms| per batch")
ax.legend(fontsize=8)
ax.grid(True, alpha=0.3)
fig.tight_layout()
plt.show()
print(f"configs/dino/dino_5scale_r50_ugs_24e_visdrone.py carries loss_weight={_config_weight}: the "
      "paper-size measurement rounded to two digits (tests/test_loss_balance.py ties the two).")

# %% [markdown]
# ## 6 · What the quick profile does and does not show
#
# The quick profile is a **real measurement of a tiny setting**: a DINO-5scale with a
# ResNet-18 trained from scratch, one encoder and two decoder layers, on 32 synthetic
# images at up to 128 px for one epoch (8 steps of 4 images), evaluated on 50 images. It
# shows that the pipeline works end to end for a DETR-style detector: the UGS reg branches
# inside DINO's iterative refinement, two-stage proposals and denoising queries -> the
# Hungarian matcher on the decoded boxes -> Eq. 10 + 12 and the refinement step on the 5
# encoder levels -> training with mmengine -> evaluation with the VisDrone rules -> a table
# in the paper's schema.
#
# It does **not** reproduce Table 1: a DETR trained from scratch for 8 steps has not
# learned to detect (its AP is expected to be near 0 for both rows), so the measured gain
# says nothing about the paper's +2.6 AP. The claim is checked by the paper profile (24
# epochs of an ImageNet-pretrained R-50 on VisDrone, on GPUs):
#
# `papermill notebooks/04_visdrone_dino.ipynb out.ipynb -p profile paper -p dataset visdrone -p data_root /path/to/VisDrone -p gpus 4 -p epochs 24`
#
# **Do both rows learn in the quick setting when given the steps?** The quick default's 24
# steps are what the main job can afford, not what a DETR needs. `benchmarks/quick_baselines.py`
# trains both rows in the same quick profile for 6 epochs on all 200 training images (300
# steps, about 5 and 8 minutes on 2 CPU cores) and records the validation AP after every
# epoch; its committed record is read here (re-run it with the command it prints).

# %%
_qb = ROOT / "benchmarks" / "results" / "quick_baselines" / "dino.json"
if _qb.is_file():
    _rec = json.loads(_qb.read_text(encoding="utf-8"))
    print(f"{_qb.relative_to(ROOT)}: {_rec['command']}")
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for d, row in _rec["rows"].items():
        ep = [e["epoch"] for e in row["per_epoch"]]
        ap = [e["AP"] for e in row["per_epoch"]]
        print(f"  {d:9s} AP per epoch {' -> '.join(f'{a:.1f}' for a in ap)} "
              f"({'learns' if row['learns'] else 'does NOT learn'}; {row['seconds']:.0f} s)")
        ax.plot(ep, ap, marker="o", ls="--" if d == "dino" else "-", label=d)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation AP (%)")
    ax.set_title("quick profile, 6 epochs on 200 synthetic images")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    plt.show()
else:
    print(f"{_qb.relative_to(ROOT)} is missing; make it with "
          "python benchmarks/quick_baselines.py --rows dino dino_ugs --out benchmarks/results/quick_baselines/dino.json")

# %% tags=["verdict"]
display(Markdown(
    f"**Verdict** ({profile} profile, {epochs} epoch(s), seed {seed}): "
    + "; ".join(f"{u} - {b}: {cell(gains[u]['AP'], True)} AP, {cell(gains[u]['AP_s'], True)} AP_s" for u, b in pairs)
    + (". The quick run checks UGS's plumbing inside DINO; a few steps from scratch cannot test Table 1's DINO rows."
       if profile == "quick" else ". One run per row, without a measured spread: set them beside Table 1's gains.")))

# %%
for ugs_d, base_d in pairs:
    g = gains[ugs_d]
    print(f"{base_d} -> {ugs_d}: AP {cell(measured[base_d]['AP'])} -> {cell(measured[ugs_d]['AP'])} "
          f"({cell(g['AP'], True)}), AP_s {cell(measured[base_d]['AP_s'])} -> {cell(measured[ugs_d]['AP_s'])} "
          f"({cell(g['AP_s'], True)})")
print(f"setting: {profile} profile, {dataset} ({len(coco['train']['images'])} train / "
      f"{len(coco['val']['images'])} val images), {epochs} epoch(s), seed {seed}; one run per row.")
print(f"notebook ran in {time.perf_counter() - _t_start:.0f} s (training {total_s:.0f} s of it); "
      f"outputs in {output_path}")

# %% [markdown]
# ## Recap
#
# * **Rows**: Table 1's DINO-5scale and DINO-5scale w/ UGS (R-50), one run each of
#   `python -m ugs.openmmlab.train` with `configs/dino/`.
# * **UGS in DINO**: 17 logits per box coordinate over the IN grid, expectation out (matcher,
#   refinement, inference unchanged); target `inverse_sigmoid(gt) - inverse_sigmoid(reference)`
#   clamped to +-4; Eq. 10 + 12 replace L1 on matched, encoder and denoising queries, GIoU
#   kept; refinement on the 5 encoder input levels.
# * **Every number is from this run**, written to `table1_dino_measured.csv` in the
#   `papers_tables` schema and set beside the printed Table 1.
# * **UGS loss weight** 1.1, by a measured rule (the UGS terms get the L1 terms' gradient norm
#   at the start), from `benchmarks/results/loss_balance/`; the refinement term scales with it.
# * **Learning**: the quick default's 8 steps are too few for a DETR from scratch; given 300
#   steps in the same profile both rows learn (`benchmarks/results/quick_baselines/dino.json`).
# * **Reading**: the quick profile checks the plumbing, not the claim; the paper profile
#   (24 epochs, AdamW 2e-4, DETR augmentation, 1,500 detections per image) does.
