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
# # 03 · FCOS, GFL V1, Faster R-CNN and Cascade R-CNN on VisDrone, without and with UGS (Table 1)
#
# Table 1 of *Uncertainty-Aware Gradient Stabilization for Small Object Detection*
# (Sun et al., ICCV 2025) reports COCO-style AP on the VisDrone-DET 2019 `val` set for
# several detectors, each trained once as printed and once with UGS. This notebook trains
# and evaluates eight of those rows with the kit's configs and compares them with the
# printed numbers:
#
# | Table 1 row | config |
# |---|---|
# | FCOS | `configs/fcos/fcos_r50_fpn_1x_visdrone.py` |
# | *FCOS, control* (not in the paper) | `configs/fcos/fcos_r50_fpn_grid_iou_1x_visdrone.py` (UGS's regression parametrisation, FCOS's IoU loss) |
# | FCOS w/ UGS | `configs/fcos/fcos_r50_fpn_ugs_1x_visdrone.py` (the IoU loss replaced by Eq. 16) |
# | GFL V1 | `configs/gfl/gfl_r50_fpn_1x_visdrone.py` |
# | GFL V1 w/ UGS | `configs/gfl/gfl_r50_fpn_ugs_1x_visdrone.py` (DFL replaced by Eq. 16; QFL and GIoU kept) |
# | Faster R-CNN | `configs/faster_rcnn/faster_rcnn_r50_fpn_1x_visdrone.py` |
# | Faster R-CNN w/ UGS | `configs/faster_rcnn/faster_rcnn_r50_fpn_ugs_1x_visdrone.py` (the RPN's and the R-CNN head's L1 on the deltas replaced by Eq. 16) |
# | Cascade R-CNN | `configs/cascade_rcnn/cascade_rcnn_r50_fpn_1x_visdrone.py` |
# | Cascade R-CNN w/ UGS | `configs/cascade_rcnn/cascade_rcnn_r50_fpn_ugs_1x_visdrone.py` (SmoothL1 replaced by Eq. 16 in the RPN and in each of the three stages, refinement per stage) |
#
# DINO has its own notebook (04).
#
# **Why FCOS has a control row.** `UGSFCOSHead` changes two things against FCOS: the
# *parametrisation* of the regression (FCOS predicts `exp(Scale(x))` pixels per side; the UGS
# head predicts a distribution over the interval grid per side, in strides, log-mapped, decoded
# to its expectation) and the *loss* (IoU loss -> Eq. 16). The control keeps the UGS head's
# outputs and decoding and trains them with FCOS's own IoU loss (Eq. 16's terms switched off).
# So the table reads baseline / control / w/ UGS: baseline -> control is the parametrisation
# alone, control -> w/ UGS is the loss alone, and only the second is what the paper attributes
# to UGS. (GFL V1 needs no control: its head already predicts a distribution over bins, and
# UGS changes the loss on it, DFL -> Eq. 16, and the grid; the R-CNN heads keep their deltas.)
#
# **Which rows run by default.** In the paper profile, all nine. In the quick profile, the
# three FCOS rows (FCOS, its control, FCOS w/ UGS): the comparison this notebook is built
# around, with the control that splits it. Each further row costs the main job 1.5-2 minutes
# (GFL V1) to several (on the CPU a two-stage detector trains several times slower than a
# one-stage one: its R-CNN heads see 512 sampled RoIs per image, three times over for
# Cascade, plus a refinement pass each with UGS), and the main job has to fit in 20 minutes
# on a 2-core machine (the measured times are in Sec. 5 and the README). GFL V1 and the R-CNN
# rows run in the quick profile exactly like the others when they are named, and the CPU
# study (Sec. 6) has GFL V1 and Faster R-CNN with five seeds each:
#
# ```bash
# papermill notebooks/03_visdrone_detectors.ipynb out.ipynb -p detectors '["gfl", "gfl_ugs", "faster_rcnn", "faster_rcnn_ugs", "cascade_rcnn", "cascade_rcnn_ugs"]'
# ```
#
# **Three profiles, one notebook.** All run the same heads and losses; only the size of the
# run differs.
#
# | | `quick` (the default) | `paper` (Sec. 4.1.2) | `study` (the CPU study, Sec. 6) |
# |---|---|---|---|
# | data | the kit's synthetic small-object set (`ugs data synth`: 200 train / 50 val images, 256 px) | VisDrone-DET 2019 (6,471 train / 548 val images) | the same generator at 128 px (`data/synth128`) |
# | backbone | ResNet-18 from scratch, 64-channel FPN and head | ResNet-50, ImageNet-pretrained | the quick one, backbone pretrained on the synthetic set (`python -m ugs.openmmlab.pretrain`) |
# | input | 256 x 256 | 1333 x 800, no multi-scale training | 128 x 128 |
# | schedule | 3 epochs, 4 images per step, SGD lr 0.01; the config's warm-up over the first tenth of the steps, x0.1 at 11/12 of them | 12 epochs ("1x"), 16 images per step over 4 GPUs, SGD lr 0.02, warm-up 500 steps, decays at 8 and 11 | the quick recipe for 48 epochs, **5 seeds per row**, rows paired by seed |
# | hardware | the CPU, minutes | GPUs, hours | the CPU, ~8 h for its 7 rows (2 cores) |
#
# The paper profile is one command (VisDrone converted as in the README's "Data" section):
#
# ```bash
# papermill notebooks/03_visdrone_detectors.ipynb out.ipynb -p profile paper -p dataset visdrone -p data_root /path/to/VisDrone -p gpus 4
# ```
#
# What the notebook does: prepare the data (Sec. 1), train each detector with the kit's
# training tool `python -m ugs.openmmlab.train` in a subprocess (Sec. 2), evaluate it with
# the VisDrone toolkit's rules and compare with Table 1 (Sec. 3), plot the losses (Sec. 4),
# and say what the numbers do and do not show (Sec. 5). Sec. 6 reads the CPU study's committed
# table (five seeds per row, every gain with its interval) and says which claims hold there;
# `-p profile study` runs that study (resumable: finished runs are skipped) and shows its
# seed-`seed` runs in Sec. 1-5.

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
import collections
import json
import os
import shlex
import subprocess
import time

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from ugs.openmmlab import runs as runs_tool
from ugs.openmmlab import study
from ugs.openmmlab.train import read_scalars
from ugs.papers import load_table, write_table

ROOT = pathlib.Path(ugs.__file__).resolve().parent.parent  # the repository root
_t_start = time.perf_counter()

# %% [markdown]
# ## Parameters
#
# Every knob is in the next cell (papermill's `parameters` cell). Relative paths are resolved
# against the repository root, wherever the notebook is started from.
#
# * `profile`: `"quick"`, `"paper"` or `"study"` (the table above). The study's setting is
#   fixed by `ugs.openmmlab.study.SETTINGS` (data, image size, epochs, seeds 0-4, work dirs
#   `work_dirs/study/<row>-seed<s>`), so `epochs`, `image_size`, `data_root` and `work_dir`
#   are not used there; `seed` picks the seed whose runs Sec. 1-5 show, and `study_train`
#   says whether runs not finished yet are trained (hours) or only named.
# * `dataset`: `"synthetic"` or `"visdrone"`; `data_root` is the folder holding
#   `annotations/{train,val}.json` and the images. `None` with `synthetic` means
#   `data/synthetic` (generated if it is not there); `visdrone` needs it.
# * `epochs`: `None` means the profile's default (quick 3, paper 12).
# * `detectors`: any of the nine rows (Table 1's eight and the FCOS control), in the order
#   given; `None` means the profile's default (quick: the three FCOS rows; paper: all
#   nine). The UGS gain is shown for each pair that is complete, and the FCOS gain is split
#   into parametrisation and loss when the control ran too.
# * Re-running the notebook **retrains from scratch**: each detector's work dir
#   (`work_dir/<detector>`) is deleted first, so every number below comes from this run.

# %% tags=["parameters"]
profile = "quick"  # "quick" (CPU, synthetic, minutes), "paper" (Sec. 4.1.2, GPUs) or "study" (CPU, hours)
dataset = "synthetic"  # "synthetic" (the kit's generated set) or "visdrone" (VisDrone-DET 2019)
data_root = None  # None: synthetic -> <repo>/data/synthetic (generated if absent); visdrone -> required
epochs = None  # None: quick 3, paper 12 (the paper's 1x schedule)
detectors = None  # which rows to train, in this order; None: quick -> the 3 FCOS rows, paper -> all 9
gpus = 1  # GPUs per run; > 1 launches torch.distributed.run (the paper: 4)
work_dir = "work_dirs/03_visdrone_detectors"  # checkpoints and logs go to <work_dir>/<detector>
seed = 0  # training seed (mmengine randomness)
max_per_img = 500  # detections kept per image and evaluated (the VisDrone toolkit's 500)
image_size = 256  # quick profile only: the side images are resized to
output_dir = "outputs/03_visdrone_detectors"  # measured table and figures are written here
study_train = True  # study profile: train the study's runs not finished yet (False: report the finished ones)

# %% [markdown]
# The nine detectors the notebook knows, each with its config and its Table 1 row id in
# `papers_tables/table1_visdrone.csv` (the measured records use the same ids, so the two can
# be joined on row and column; the control has its own id, `fcos_grid_iou`, which the paper's
# table does not have). The parameters are checked before anything is trained.

# %%
DETECTORS = {  # name -> (config, Table 1 row id, baseline it is compared with, or None)
    "fcos": ("configs/fcos/fcos_r50_fpn_1x_visdrone.py", "fcos", None),
    "fcos_grid_iou": ("configs/fcos/fcos_r50_fpn_grid_iou_1x_visdrone.py", "fcos_grid_iou", "fcos"),
    "fcos_ugs": ("configs/fcos/fcos_r50_fpn_ugs_1x_visdrone.py", "fcos_ugs", "fcos"),
    "gfl": ("configs/gfl/gfl_r50_fpn_1x_visdrone.py", "gfl_v1", None),
    "gfl_ugs": ("configs/gfl/gfl_r50_fpn_ugs_1x_visdrone.py", "gfl_v1_ugs", "gfl"),
    "faster_rcnn": ("configs/faster_rcnn/faster_rcnn_r50_fpn_1x_visdrone.py", "faster_rcnn", None),
    "faster_rcnn_ugs": ("configs/faster_rcnn/faster_rcnn_r50_fpn_ugs_1x_visdrone.py", "faster_rcnn_ugs",
                        "faster_rcnn"),
    "cascade_rcnn": ("configs/cascade_rcnn/cascade_rcnn_r50_fpn_1x_visdrone.py", "cascade_rcnn", None),
    "cascade_rcnn_ugs": ("configs/cascade_rcnn/cascade_rcnn_r50_fpn_ugs_1x_visdrone.py", "cascade_rcnn_ugs",
                         "cascade_rcnn"),
}
#: rows that are not in Table 1 (controls): name -> (method, variant) for the measured records
CONTROLS = {"fcos_grid_iou": ("FCOS", "control: UGS parametrisation, IoU loss")}
QUICK_DEFAULT = ["fcos", "fcos_grid_iou", "fcos_ugs"]   # FCOS, its control, FCOS w/ UGS
DEFAULT_DETECTORS = {"quick": QUICK_DEFAULT, "paper": list(DETECTORS),  # see "Which rows run by default"
                     "study": study.TABLES["table1"]["arms"]}
PROFILE_EPOCHS = {"quick": 3, "paper": 12, "study": study.SETTINGS["epochs"]}
METRICS = ("AP", "AP50", "AP_s", "AP_m", "AP_l")  # Table 1's columns
PAPER_BATCH = 16  # Sec. 4.1.2: 16 images per step


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
        raise ValueError(f"unknown detector(s) {unknown}; known: {', '.join(DETECTORS)} "
                         "(DINO is notebook 04)")
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


if profile not in PROFILE_EPOCHS:
    raise ValueError(f"profile must be 'quick', 'paper' or 'study', got {profile!r}")
if dataset not in ("synthetic", "visdrone"):
    raise ValueError(f"dataset must be 'synthetic' or 'visdrone', got {dataset!r}")
detectors = check_detectors(DEFAULT_DETECTORS[profile] if detectors is None else detectors)
if profile == "study":  # the study's setting is study.SETTINGS: a changed value would be another study
    data_root, image_size, work_dir = study.check_notebook_setting(
        dataset=dataset, data_root=data_root, epochs=epochs, gpus=gpus, max_per_img=max_per_img, seed=seed)
    _not_in_study = [d for d in detectors if d not in study.TABLES["table1"]["arms"]]
    if _not_in_study:
        raise ValueError(f"detector(s) {_not_in_study} are not in the study; its rows: "
                         f"{', '.join(study.TABLES['table1']['arms'])}")
epochs = PROFILE_EPOCHS[profile] if epochs is None else epochs
for _name, _v, _lo in (("epochs", epochs, 1), ("gpus", gpus, 1), ("max_per_img", max_per_img, 1),
                       ("image_size", image_size, 32), ("seed", seed, 0)):
    if not isinstance(_v, int) or isinstance(_v, bool) or _v < _lo:
        raise ValueError(f"{_name} must be an integer >= {_lo}, got {_v!r}")
if profile == "paper" and PAPER_BATCH % gpus:
    raise ValueError(f"gpus={gpus} does not divide the paper's {PAPER_BATCH} images per step (use 1, 2, 4, 8 or 16)")
if dataset == "visdrone":
    if data_root is None:
        raise ValueError("dataset 'visdrone' needs data_root: the folder with VisDrone2019-DET-{train,val}/ "
                         "and annotations/{train,val}.json (python -m ugs.cli data visdrone SPLIT_DIR OUT_JSON)")
    data_path = resolve(data_root)
    check_visdrone_root(data_path)
else:
    data_path = resolve(data_root if data_root is not None else "data/synthetic")
work_path = resolve(work_dir)
output_path = resolve(output_dir)
output_path.mkdir(parents=True, exist_ok=True)
if profile == "paper" and dataset == "synthetic":
    print("note: the paper profile on the synthetic set runs the paper's recipe on toy data")

# %% [markdown]
# The run plan (with the default parameters: three quick runs of three epochs each, the
# FCOS rows):

# %%
# NBVAL_CHECK_OUTPUT
print(f"profile {profile}, dataset {dataset}, {epochs} epochs, seed {seed}, gpus {gpus}, "
      f"max_per_img {max_per_img}" + (f", image_size {image_size}" if profile != "paper" else ""))
if profile == "study":
    print(f"  the study: seeds {list(study.SETTINGS['seeds'])}, {study.SETTINGS['init']} backbone, runs in "
          f"{study.SETTINGS['work_root']}/<row>-seed<s>; unfinished runs {'trained' if study_train else 'named only'}")
for d in detectors:
    cfg, row, base = DETECTORS[d]
    print(f"  {d:16s} {cfg:62s} Table 1 row {row!r}" + (f", compared with {base!r}" if base else ""))

# %% [markdown]
# A name the notebook does not know stops it here, before any training, with the list of
# the known ones:

# %%
# NBVAL_CHECK_OUTPUT
try:
    check_detectors(["fcos", "retinanet"])
except ValueError as e:
    print("ValueError:", e)

# %% [markdown]
# The printed Table 1 numbers for these rows come from `papers_tables/table1_visdrone.csv`
# (typed once from the paper; nothing is typed in this notebook):

# %%
# NBVAL_CHECK_OUTPUT
table1 = load_table(1)
print(table1.to_markdown(rows=[DETECTORS[d][1] for d in detectors if d not in CONTROLS], columns=list(METRICS)))

# %% [markdown]
# ## 1 · Data
#
# The synthetic set is the kit's stand-in for VisDrone on a CPU: aerial-looking 256 px
# images with 8-24 objects of the 10 VisDrone classes, most of them COCO-small, plus
# ignored regions, occlusion, truncation and "others" boxes, written in the VisDrone text
# format and converted by the same converter as the real data. It is generated once
# (`python -m ugs.cli data synth <root>`, about 5 s) when `annotations/val.json` is missing;
# a given seed always gives the same files.

# %%
if profile == "study":  # generated at the study's image size when missing (seconds)
    runs_tool.ensure_synthetic(data_path, ROOT, image_size)
    print(f"the study's synthetic set at {image_size} px: {data_path}")
elif dataset == "synthetic" and not (data_path / "annotations" / "val.json").is_file():
    _cmd = [sys.executable, "-m", "ugs.cli", "data", "synth", str(data_path)]
    print("$", shlex.join(_cmd), flush=True)
    _t0 = time.perf_counter()
    _gen = subprocess.run(_cmd, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))})
    print(_gen.stdout)
    if _gen.returncode != 0:
        raise RuntimeError(f"ugs data synth failed (exit {_gen.returncode}):\n{_gen.stderr[-3000:]}")
    print(f"generated in {time.perf_counter() - _t0:.1f} s")
else:
    print(f"using the existing {dataset} data in {data_path}")
for _split in ("train", "val"):
    if not (data_path / "annotations" / f"{_split}.json").is_file():
        raise FileNotFoundError(f"{data_path / 'annotations' / f'{_split}.json'} is missing")

# %% [markdown]
# What the detectors are trained and evaluated on, read from the converted COCO JSON (the
# area limits are COCO's: small < 32^2 px, large >= 96^2 px, which decide AP_s / AP_m / AP_l).
# For the synthetic set, the generator's parameters from its `meta.json` come first.

# %%
# NBVAL_CHECK_OUTPUT
coco = {s: json.loads((data_path / "annotations" / f"{s}.json").read_text(encoding="utf-8"))
        for s in ("train", "val")}
_meta_file = data_path / "meta.json"
if dataset == "synthetic" and _meta_file.is_file():
    _p = json.loads(_meta_file.read_text(encoding="utf-8"))["parameters"]
    print(f"synthetic set: {_p['num_train']} train + {_p['num_val']} val images, "
          f"{_p['image_size'][0]}x{_p['image_size'][1]} px, seed {_p['seed']}")
rows = []
for s, d in coco.items():
    wh = np.array([a["bbox"][2:] for a in d["annotations"]], dtype=np.float64).reshape(-1, 2)
    area = wh[:, 0] * wh[:, 1]
    n_ign = sum(len(im.get("ignored_regions") or []) for im in d["images"])
    rows.append((s, len(d["images"]), len(area), len(area) / max(len(d["images"]), 1), n_ign,
                 np.mean(area < 32 ** 2), np.mean((area >= 32 ** 2) & (area < 96 ** 2)), np.mean(area >= 96 ** 2),
                 np.median(np.sqrt(area))))
print(f"{'split':5s} {'images':>6s} {'objects':>7s} {'per image':>9s} {'ignored regions':>15s} "
      f"{'small':>6s} {'medium':>6s} {'large':>6s} {'median sqrt(area)':>17s}")
for s, n_img, n_obj, per, n_ign, sm, md, lg, med in rows:
    print(f"{s:5s} {n_img:6d} {n_obj:7d} {per:9.1f} {n_ign:15d} {sm:6.1%} {md:6.1%} {lg:6.1%} {med:14.1f} px")
_names = {c["id"]: c["name"] for c in coco["val"]["categories"]}
_counts = collections.Counter(a["category_id"] for a in coco["val"]["annotations"])
print("val objects per class:", ", ".join(f"{_names[c]} {_counts.get(c, 0)}" for c in sorted(_names)))

# %% [markdown]
# One validation image with its boxes (colour = class) and its ignored regions (dashed):
# detections and ground truth with half their area in a dashed box are not evaluated, as in
# the VisDrone toolkit.


# %%
def image_file(split, file_name):
    """Where the loaders read an image of ``split`` (the configs' data_prefix)."""
    folder = f"{split}/images" if dataset == "synthetic" else f"VisDrone2019-DET-{split}/images"
    return data_path / folder / file_name


_img = coco["val"]["images"][0]
_anns = [a for a in coco["val"]["annotations"] if a["image_id"] == _img["id"]]
_colours = plt.get_cmap("tab10")
fig, ax = plt.subplots(figsize=(8.6, 6.6 * _img["height"] / _img["width"]))
ax.imshow(plt.imread(image_file("val", _img["file_name"])))
for a in _anns:
    x, y, w, h = a["bbox"]
    ax.add_patch(plt.Rectangle((x, y), w, h, fill=False, lw=1.2, color=_colours(a["category_id"] - 1)))
for x, y, w, h in _img.get("ignored_regions") or []:
    ax.add_patch(plt.Rectangle((x, y), w, h, fill=False, lw=1.5, ls="--", color="white"))
ax.legend(handles=[plt.Line2D([], [], color=_colours(c - 1), lw=2, label=_names[c])
                   for c in sorted({a["category_id"] for a in _anns})],
          loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
ax.set_title(f"val image {_img['file_name']}: {len(_anns)} objects, "
             f"{len(_img.get('ignored_regions') or [])} ignored region(s)")
ax.axis("off")
fig.tight_layout()
fig.savefig(output_path / "sample_image.png", dpi=110)
print("saved", output_path / "sample_image.png")
plt.show()

# %% [markdown]
# ## 2 · Training
#
# Each detector is one run of the kit's training tool, in its own process, exactly as one
# would type it:
#
# `python -m ugs.openmmlab.train CONFIG --profile P --data-root D --work-dir W/<detector> --epochs E --seed S --max-per-img M`
#
# (with `torch.distributed.run --nproc_per_node G ... --launcher pytorch --gpus G` for
# several GPUs). The tool merges the profile into the config, trains, validates after every
# epoch with `VisDroneMetric` (COCO AP with the toolkit's ignored-region rule, up to
# `max_per_img` detections per image) and writes `metrics.json` into the work dir. Below,
# each run shows its command and one live progress line (epoch, iteration, ETA, losses, the
# latest validation AP), rewritten in place; the full output of each run is kept in `W/<detector>/train_stdout.log`.


# %%
def train_command(detector):
    """The command line (list) that trains ``detector``, run from the repository root."""
    return runs_tool.train_command(DETECTORS[detector][0], root=ROOT, profile=profile, data_root=data_path,
                                   work_dir=work_path / detector, epochs=epochs, seed=seed,
                                   max_per_img=max_per_img, image_size=image_size, gpus=gpus)


def train(detector):
    """Train ``detector`` from scratch (its work dir is deleted first); return its command string,
    wall seconds and work dir. The helpers are ``ugs/openmmlab/runs.py``, shared with notebook 10."""
    r = runs_tool.train(detector, train_command(detector), work_path / detector, ROOT)
    return r["command"], r["seconds"], r["work_dir"]


# %% [markdown]
# In the study profile each row is trained for every seed of the study, seed-major, by
# `ugs.openmmlab.study.seed_runs` (the same training tool, from the study's pretrained
# backbone, made first when missing; a finished run is skipped, a stopped one resumes), and
# Sec. 3-5 show the runs of seed `seed`. With `study_train = False` nothing
# is trained: the rows whose seed-`seed` run is not finished are named and left out.


# %%
if profile == "study":
    runs = study.seed_runs(detectors, seed, train_missing=study_train, epochs=epochs, work_root=work_path)
    detectors = [d for d in detectors if d in runs]
else:
    runs = {}
    for d in detectors:
        command, seconds, out = train(d)
        runs[d] = dict(command=command, seconds=seconds, work_dir=out)
total_s = sum(r["seconds"] for r in runs.values())
print(f"\ntrained {len(runs)} detector(s) in {total_s:.0f} s:",
      ", ".join(f"{d} {r['seconds']:.0f} s" for d, r in runs.items()))

# %% [markdown]
# ## 3 · Results against Table 1
#
# Each run's `metrics.json` holds the last epoch's evaluation (fractions in [0, 1]; `-1`
# where the evaluated set has no ground truth of that size, COCO's convention). They become
# records of the `papers_tables` schema: the Table 1 row id, `status = measured`, the exact
# command as `source`, and the setting columns `profile`, `dataset`, `epochs`, `seed`. Values
# are in percent like the paper's; a `-1` is written as `-1.0` with a note. The control's
# records carry its own row id and say in `variant` what it is.

# %%
records, measured = [], {}
for d, r in runs.items():
    m = json.loads((r["work_dir"] / "metrics.json").read_text(encoding="utf-8"))
    row = DETECTORS[d][1]
    method, variant = CONTROLS[d] if d in CONTROLS else (table1.select(row)[0][k] for k in ("method", "variant"))
    measured[d] = {}
    for col in METRICS:
        v = float(m[col])
        value = round(100 * v, 2) if v >= 0 else -1.0
        measured[d][col] = value if v >= 0 else None
        records.append(dict(
            row=row, method=method, variant=variant, column=col, value=value,
            status="measured", source=r["command"], derivation="",
            profile=profile, dataset=dataset, epochs=str(epochs), seed=str(seed),  # text: write_table blanks a 0
            note=("-1: no ground truth of this size in the evaluated set; " if v < 0 else "")
            + f"last epoch of {epochs}"))
    records.append({**records[-1], "column": "train_loss", "value": round(runs_tool.train_loss(r["work_dir"]), 4),
                    "note": f"mean logged training loss of epoch {epochs}: a fingerprint of the run"})
table_path = write_table(records, output_path / "table1_measured.csv")
print(f"wrote {len(records)} records to {table_path}")

# %% [markdown]
# Paper (Table 1, VisDrone `val`, R-50, 12 epochs) next to this run, in AP points; `-` means
# the evaluated set has no object of that size (or, in the paper columns of the control, that
# the paper has no such row).


# %%
def cell(v, sign=False):
    if v is None:
        return "-"
    v = round(v, 1) + 0.0  # no "-0.0"
    return f"{v:+.1f}" if sign else f"{v:.1f}"


header = "| row | " + " | ".join(f"{c} paper | {c} measured" for c in METRICS) + " |"
lines = [header, "|---|" + "---:|" * (2 * len(METRICS))]
def label(d):
    """The row's name in the tables: Table 1's method, or the control's own description."""
    return f"{CONTROLS[d][0]}, {CONTROLS[d][1]}" if d in CONTROLS else table1.select(DETECTORS[d][1])[0]["method"]


def printed(d, col):
    """Table 1's value for ``d``'s row, None for a control (the paper has no such row)."""
    return None if d in CONTROLS else table1.value(DETECTORS[d][1], col)


for d in detectors:
    lines.append(f"| {label(d)} | " + " | ".join(f"{cell(printed(d, c))} | {cell(measured[d][c])}" for c in METRICS)
                 + " |")
comparison_md = f"**{profile} profile, {dataset}, {epochs} epoch(s), seed {seed}**\n\n" + "\n".join(lines)
display(Markdown(comparison_md))

# %% [markdown]
# The UGS gain, `w/ UGS - baseline`, for every pair that was trained (the control is not a
# pair of the paper's; it comes after):


# %%
def gain(a, b):
    return None if a is None or b is None else a - b


pairs = [(d, DETECTORS[d][2]) for d in detectors if DETECTORS[d][2] in detectors and d not in CONTROLS]
gains = {}
lines = ["| pair | " + " | ".join(f"Δ{c} paper | Δ{c} measured" for c in METRICS) + " |",
         "|---|" + "---:|" * (2 * len(METRICS))]
for ugs_d, base_d in pairs:
    ugs_row, base_row = DETECTORS[ugs_d][1], DETECTORS[base_d][1]
    gains[ugs_d] = {c: gain(measured[ugs_d][c], measured[base_d][c]) for c in METRICS}
    paper_gain = {c: gain(table1.value(ugs_row, c), table1.value(base_row, c)) for c in METRICS}
    lines.append(f"| {label(base_d)} -> w/ UGS | "
                 + " | ".join(f"{cell(paper_gain[c], True)} | {cell(gains[ugs_d][c], True)}" for c in METRICS)
                 + " |")
if pairs:
    display(Markdown("\n".join(lines)))
else:
    print("no complete baseline / w/ UGS pair among", detectors)
gains_md = "\n".join(lines) if pairs else ""

# %% [markdown]
# **The FCOS gain split in two**, when the control ran beside both FCOS rows:
# `control - baseline` is what the UGS head's parametrisation alone does (same IoU loss),
# `w/ UGS - control` what Eq. 16 alone does (same parametrisation). Their sum is the
# `w/ UGS - baseline` gain above.

# %%
split = {}
if all(d in measured for d in ("fcos", "fcos_grid_iou", "fcos_ugs")):
    split = {"parametrisation (control - FCOS)": {c: gain(measured["fcos_grid_iou"][c], measured["fcos"][c])
                                                  for c in METRICS},
             "loss (FCOS w/ UGS - control)": {c: gain(measured["fcos_ugs"][c], measured["fcos_grid_iou"][c])
                                              for c in METRICS}}
    split_md = "\n".join(["| FCOS gain, split | " + " | ".join(f"Δ{c}" for c in METRICS) + " |",
                          "|---|" + "---:|" * len(METRICS)]
                         + [f"| {k} | " + " | ".join(cell(v[c], True) for c in METRICS) + " |"
                            for k, v in split.items()])
    display(Markdown(split_md))
else:
    split_md = ""
    print("the split needs fcos, fcos_grid_iou and fcos_ugs; trained:", list(measured))
_ = (output_path / "comparison.md").write_text("\n\n".join(filter(None, [comparison_md, gains_md, split_md])) + "\n",
                                           encoding="utf-8")

# %% [markdown]
# ## 4 · Loss curves
#
# From each run's mmengine log (`vis_data/scalars.json`, one entry per logged step): the
# total loss and the localization terms against the iteration. The baselines localize with
# `loss_bbox` (FCOS: IoU loss; GFL: GIoU; Faster R-CNN: L1, Cascade R-CNN: SmoothL1) and,
# for GFL, `loss_dfl`; with UGS the localization is `loss_ce` (Eq. 10), `loss_um` (lambda
# Eq. 12) and `loss_ur` (the refinement term of Eq. 16), and GFL keeps its GIoU `loss_bbox`.
# For the two-stage detectors each term is the sum over the RPN and the R-CNN stage(s), as
# they enter the total loss (Cascade's stages weighted 1, 0.5, 0.25). The last panel is the
# validation AP after each epoch.

# %%
LOC_TERMS = ("loss_bbox", "loss_dfl", "loss_ce", "loss_um", "loss_ur")
scalars = {}
for d, r in runs.items():
    logs = sorted(r["work_dir"].glob("*/vis_data/scalars.json"))
    if not logs:
        raise FileNotFoundError(f"no vis_data/scalars.json under {r['work_dir']}")
    # a study run resumed over several sittings logs each into its own folder: all, in order
    scalars[d] = [e for log in (logs if profile == "study" else logs[-1:]) for e in read_scalars(str(log.parent.parent))]

TERM_COLOURS = dict(zip(LOC_TERMS, ("C0", "C1", "C2", "C3", "C4")))
n_panels = len(runs) + 1
n_cols = min(3, n_panels)
n_rows = -(-n_panels // n_cols)
fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.6 * n_cols, 3.6 * n_rows), squeeze=False)
axes = axes.ravel()
for ax, (d, entries) in zip(axes, scalars.items()):
    train_log = [e for e in entries if "loss" in e and "iter" in e]
    it = [e["iter"] for e in train_log]
    train_log = [runs_tool.loss_terms(e) for e in train_log]
    ax.plot(it, [e["loss"] for e in train_log], "k-", lw=2, label="loss (total)")
    for k in LOC_TERMS:
        if any(k in e for e in train_log):
            ax.plot(it, [e.get(k, np.nan) for e in train_log], "-", lw=1.3, color=TERM_COLOURS[k], label=k)
    ax.set_title(f"{d} ({DETECTORS[d][1]})")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
ax = axes[len(runs)]
for d, entries in scalars.items():
    val_log = [e for e in entries if "visdrone/AP" in e]
    family = DETECTORS[d][2] or d  # a baseline, its control and its UGS twin share a colour
    ax.plot([e["step"] for e in val_log], [e["visdrone/AP"] for e in val_log], marker="o",
            color=f"C{list(DETECTORS).index(family) % 10}",
            ls="--" if DETECTORS[d][2] is None else (":" if d in CONTROLS else "-"),
            label=d)
ax.set_title("validation AP after each epoch (dashed: baseline, dotted: control)")
ax.set_xlabel("epoch")
ax.set_ylabel("AP (%)")
ax.xaxis.get_major_locator().set_params(integer=True)
ax.grid(True, alpha=0.3)
ax.legend(fontsize=8)
for ax in axes[n_panels:]:
    ax.axis("off")
fig.tight_layout()
fig.savefig(output_path / "loss_curves.png", dpi=110)
print("saved", output_path / "loss_curves.png")
plt.show()

# %% [markdown]
# ## 5 · What the quick profile does and does not show
#
# The quick profile is a **real measurement of a tiny setting**: ResNet-18 trained from
# scratch on 200 synthetic 256 px images for 3 epochs (150 steps of 4 images) and evaluated
# on 50 images; the paper trains an ImageNet-pretrained R-50 for about 4,850 steps of 16
# VisDrone images at up to 1333 x 800 and evaluates on 548. It shows that the pipeline works
# end to end: data in the VisDrone format -> the UGS heads (Eq. 8-16 in the trained rows) ->
# training with mmengine -> evaluation with the VisDrone rules -> a table in the paper's
# schema.
#
# **Why only the FCOS rows are in the quick default.** One quick epoch (50 steps of 4 images
# at 256 px, validation and start-up included) measured on the kit's 2-core CPU with nothing
# else running, `python -m ugs.openmmlab.train CONFIG --profile quick --data-root
# data/synthetic --epochs 1`: Faster R-CNN 95 s, Faster R-CNN w/ UGS 140 s, Cascade R-CNN
# 184 s, Cascade R-CNN w/ UGS 284 s, against about 27 s for each one-stage row (the whole
# 3-epoch run of FCOS or GFL takes about 85 s, 1.5-2 min on a slower 2-core machine). At the
# profile's 3 epochs the four R-CNN rows add roughly half an hour, and even the GFL V1 pair
# pushed the main job past its 20 minutes on a slower 2-core machine (README), so the quick
# default trains the three FCOS rows; GFL V1 and the R-CNN rows run when named in
# `detectors` (same profile, same epochs, nothing else changes), and Sec. 6 has GFL V1 and
# Faster R-CNN with five seeds each.
#
# It does **not** reproduce Table 1. The absolute numbers are not comparable with the
# paper's (another data set, a smaller backbone without pretraining, a small fraction of the
# paper's steps and pixels), and after so few steps every detector is far from converged.
# Each row is one run with one seed: at this scale, a difference between a baseline and its
# UGS twin is within run-to-run noise unless it is large, so the measured gains neither
# confirm nor refute Table 1. (Re-running with `-p seed 1`, `-p seed 2`, ... gives a feel
# for that spread.) And a large difference after 150 steps from scratch says how quickly
# each loss gets a detector started in this setting, not where it ends after a full
# schedule on real data. The claim is checked by the paper profile:
#
# `papermill notebooks/03_visdrone_detectors.ipynb out.ipynb -p profile paper -p dataset visdrone -p data_root /path/to/VisDrone -p gpus 4`
#
# The gains this run measured, in AP points:

# %%
for ugs_d, base_d in pairs:
    ugs_row, base_row = DETECTORS[ugs_d][1], DETECTORS[base_d][1]
    g, p = gains[ugs_d], {c: gain(table1.value(ugs_row, c), table1.value(base_row, c)) for c in ("AP", "AP_s")}
    print(f"{base_d} -> {ugs_d}: AP {cell(measured[base_d]['AP'])} -> {cell(measured[ugs_d]['AP'])} "
          f"({cell(g['AP'], True)}; paper {cell(p['AP'], True)}), "
          f"AP_s {cell(measured[base_d]['AP_s'])} -> {cell(measured[ugs_d]['AP_s'])} "
          f"({cell(g['AP_s'], True)}; paper {cell(p['AP_s'], True)})")
print(f"\nsetting: {profile} profile, {dataset} ({len(coco['train']['images'])} train / "
      f"{len(coco['val']['images'])} val images), {epochs} epoch(s), seed {seed}.")
print("One run per row, so no spread is measured here: these gains are what this run gave, "
      "not evidence for or against Table 1." if profile != "study" else
      f"Seed {seed} of the study's five: Sec. 6 has every seed, each gain with its interval.")
if split:
    _p, _l = (split[k]["AP"] for k in split)
    print(f"\nFCOS, split by the control: of the {cell(_p + _l, True)} AP between FCOS and FCOS w/ UGS, "
          f"{cell(_p, True)} comes with the UGS head's parametrisation under the stock IoU loss and "
          f"{cell(_l, True)} with Eq. 16 on that parametrisation. Only the second is the paper's claim.")

# %% [markdown]
# **Does every baseline learn?** A comparison is only worth reading when the baseline itself
# trains. The quick schedule keeps most steps at the base rate (the config's warm-up over the
# first tenth, one decay at 11/12) so that a short run is not spent at a tenth of the rate.
# Below, each trained row's validation AP after every epoch; a row counts as learning when its
# AP rises from the first epoch to the last and ends above 1 AP (a detector that has learned
# nothing scores about 0 on this set). FCOS's stock parametrisation (`exp(Scale(x))` pixels,
# from an output of about 1 px for every side at the start) is the slowest starter here; the
# control row shows how much of its gap to the UGS head is that parametrisation.

# %%
learning = {}
for d, entries in scalars.items():
    ap = [e["visdrone/AP"] for e in entries if "visdrone/AP" in e]
    learning[d] = bool(len(ap) > 1 and ap[-1] > ap[0] and ap[-1] > 1.0)
    print(f"{d:16s} AP per epoch: {' -> '.join(f'{v:.1f}' for v in ap):32s} "
          + ("learns" if learning[d] else "does NOT learn in this run"))
_stuck = [d for d, ok in learning.items() if not ok]
print("\nevery trained row learns" if not _stuck else f"\nnot learning in this run: {_stuck}")

# %% [markdown]
# ## 6 · The CPU study: five seeds per row, every gain with its interval
#
# One run per row cannot tell a gain from seed noise. The kit's CPU study (issue 16;
# `ugs.openmmlab.study`, README "CPU study") trains Table 1's rows that a 2-core machine can
# afford (FCOS, its control, FCOS w/ UGS, GFL V1 and Faster R-CNN, each without and with UGS;
# not Cascade R-CNN) in one fixed setting: the quick recipe on the synthetic set at 128 px,
# the backbone pretrained on that set (the same weights for every row), **48 epochs, seeds
# 0-4**, the rows paired by seed. The schedule is not a plateau: FCOS still gains AP from 48
# to 96 epochs (the pilot curves in `benchmarks/results/study_pilot/`), so every statement
# below holds "after 48 epochs on this set", the way the paper compares its rows after its 1x
# schedule.
#
# For each comparison: both rows' mean and standard deviation, the paired difference
# `treatment - baseline` with its 95 % Student-t interval, and the smallest difference the
# study could have detected (80 % power). The verdict on the paper's claim (its printed
# difference, from `papers_tables/`) is **holds** when the interval lies on the paper's side
# of 0, **contradicted** when it lies on the other side, **not resolved** when it contains 0;
# the FCOS control's comparisons are not claims of the paper (only their direction is said).
#
# The numbers come from the committed study table `papers_tables/measured/study/` (written by
# `python ci/run_notebooks.py --tier study --update-committed` from the finished runs), or, in
# the study profile, from this run's own table.

# %%
study_table, study_source = study.study_table("table1", "table1_study_synthetic128.csv", fresh=profile == "study",
                                              work_root=work_path, out=output_path / "table1_study.csv")
study_rows = study.read_comparisons(study_table.records, "table1") if study_table is not None else []
if study_table is None:
    print(f"no study table yet ({study_source}): `python -m ugs.openmmlab.study run --table table1` trains it, "
          "`python ci/run_notebooks.py --tier study --update-committed 03` commits it")
else:
    _runs = study.read_runs(study_table.records)
    print(f"{runs_tool.relative(study_source, ROOT)}: " + ", ".join(f"{a} {len(_runs[a]['AP'])} seed(s)"
                                          for a in study.TABLES["table1"]["arms"] if a in _runs))
    _missing = [a for a in study.TABLES["table1"]["arms"] if a not in _runs]
    if _missing:
        print("rows without a finished run yet:", ", ".join(_missing))
    display(Markdown(study.comparisons_markdown(study_rows)))

# %% [markdown]
# Every run of the table: one dot per seed, the same seed's runs joined between neighbouring
# rows of a comparison, and each row's mean with the 95 % interval of that mean.

# %%
if study_table is not None:
    fig = study.plot_study(study_table.records, "table1",
                           "CPU study, Table 1's rows: final AP and AP_s after 48 epochs, synthetic set at 128 px",
                           out=output_path / "study_table1.png")
    print("saved", output_path / "study_table1.png")
    plt.show()

# %% [markdown]
# The notebook's verdict: this run's rows (Sec. 3-5), then the CPU study's (Sec. 6).

# %% tags=["verdict"]
_gains = "; ".join(f"{u} - {b}: {cell(gains[u]['AP'], True)} AP, {cell(gains[u]['AP_s'], True)} AP_s"
                   for u, b in pairs)
_verdict = (
    f"**Verdict** ({profile} profile, {dataset}, {epochs} epoch(s), seed {seed}): {_gains}. "
    + ("No row has a finished run; " if not learning else "Every trained row learns; " if not _stuck
       else f"not learning in this run: {', '.join(_stuck)}; ")
    + {"quick": "one run per row, so these gains are not evidence for or against Table 1 (the paper profile tests it).",
       "paper": "one run per row, without a measured spread: set them beside Table 1's gains.",
       "study": f"seed {seed}'s runs of the study; its five seeds per row, with intervals, are Sec. 6."}[profile])
if study_rows:
    _verdict += "\n\n" + study.verdict_sentence(study_rows)
display(Markdown(_verdict))

# %%
print(f"notebook ran in {time.perf_counter() - _t_start:.0f} s "
      + (f"(training {total_s:.0f} s of it)" if profile != "study" else
         f"(seed {seed}'s study runs took {total_s:.0f} s when they were trained)")
      + f"; outputs in {output_path}")

# %% [markdown]
# ## Recap
#
# * **Rows**: Table 1's FCOS, GFL V1, Faster R-CNN and Cascade R-CNN, each without and with
#   UGS, and FCOS's control (UGS's parametrisation with the IoU loss), each one run of
#   `python -m ugs.openmmlab.train` with the kit's configs. The quick profile runs the three
#   FCOS rows by default (the others with
#   `-p detectors '["gfl", "gfl_ugs", "faster_rcnn", "faster_rcnn_ugs", "cascade_rcnn", "cascade_rcnn_ugs"]'`,
#   see "Which rows run by default"); the paper profile runs all nine. DINO is notebook 04.
# * **Profiles**: `quick` (synthetic set, ResNet-18 from scratch, 256 px, 3 epochs on the CPU)
#   and `paper` (VisDrone-DET 2019, R-50, 1333x800, 12 epochs, 16 images per step over 4 GPUs,
#   SGD 0.02) run the same heads and losses; only the size of the run differs.
# * **Every number is from this run**: each detector's work dir is deleted before it trains;
#   the results are written to `table1_measured.csv` in the `papers_tables` schema
#   (`status = measured`, `source` = the exact command, settings `profile`, `dataset`,
#   `epochs`, `seed`) and set beside the printed Table 1, gains included.
# * **Loss curves** show the baseline localization terms (IoU / GIoU, DFL) and UGS's
#   (`loss_ce`, `loss_um`, `loss_ur`) over training, and the AP after each epoch.
# * **The control** (`fcos_grid_iou`) splits the FCOS gain into the parametrisation's part
#   (control - FCOS) and the loss's part (w/ UGS - control); only the second is UGS's claim.
# * **The CPU study** (Sec. 6): Table 1's affordable rows for 48 epochs at 128 px, five
#   seeds each, paired by seed; each gain with its 95 % interval and detectable difference and
#   a verdict on the paper's claim, read from `papers_tables/measured/study/`. `-p profile
#   study` trains what is not finished yet (hours) and shows its seed-`seed` runs in Sec. 1-5.
# * **Every baseline is checked to learn** (AP rising over the epochs, above 1 AP at the end)
#   under the quick schedule, which keeps most steps at the base rate.
# * **Reading**: the quick profile shows that data, UGS heads, training and VisDrone-rule
#   evaluation work end to end; its numbers are not the paper's and its gains, one seed at a
#   tiny scale, do not test Table 1. The paper profile does:
#   `papermill notebooks/03_visdrone_detectors.ipynb out.ipynb -p profile paper -p dataset visdrone -p data_root /path/to/VisDrone -p gpus 4`.
