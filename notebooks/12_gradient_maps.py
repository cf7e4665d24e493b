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
# # 12 · Gradient-magnitude maps and the average object gradient per size (Figs. 1, 2, 5)
#
# The paper's motivation (Sec. 1, Figs. 1-2) is a measurement: the L2 norm over channels of
# the gradient of the loss with respect to the regression features, drawn as a map over the
# image (Fig. 1), and summed inside each ground-truth box and averaged per COCO size class
# (Fig. 2: "the average gradient of each object scale ... the mean across objects in the
# corresponding size category"). By the last epoch, medium and large objects' gradients have
# dropped while small objects' stay pronounced, its "convergence challenge"; Fig. 5 shows the
# maps again, the L2 loss against UGS, with UGS's small-object gradients less salient.
#
# The paper draws them for Faster R-CNN R-18 on VisDrone (100 test images) and compares with
# an L2 loss (Fig. 5). So does this notebook, with the kit's Faster R-CNN configs, twice:
#
# * **L2**: Faster R-CNN with mmdet's `MSELoss` on the box deltas of both stages (RPN and
#   R-CNN, `loss_bbox`; Table 6's "L2 (Baseline)" reading), set through the training tool's
#   `--cfg-options`, no config copy;
# * **UGS**: the kit's Faster R-CNN w/ UGS config (UGS in the RPN and the R-CNN head).
#
# The recording is the kit's `GradientDiagnosticsHook` (`ugs/openmmlab/diagnostics_hook.py`,
# statistics in `ugs/diagnostics.py`): every iteration of the first and the last epoch, the
# gradient of the training loss at the RPN's shared conv output (per FPN level: the map the
# RPN's regression layer reads; its gradient also carries the objectness loss's, since the
# two branches share it; for a dense head such as FCOS the hook takes the regression tower's
# output instead), its
# L2 norm over channels per cell; an object's gradient is the sum of those magnitudes over the
# cells inside its box, over all levels (a box narrower than the stride takes the cell of
# its centre); sizes are COCO's (area < 32^2, < 96^2, larger, in original-image pixels).
#
# | | `quick` (the default) | `paper` | `study` (the CPU study, issue 16; Sec. 6) |
# |---|---|---|---|
# | data | 24 of the kit's synthetic 256-px training images | VisDrone-DET 2019 train | the study's synthetic set (200 images at 128 px, `data/synth128`) |
# | model, schedule | ResNet-18 from scratch, 2 epochs, CPU | ResNet-50, the 1x schedule (12 epochs), GPUs | the quick ResNet-18 from the study's pretrained backbone, the study's 48 epochs, seeds 0-4 |
# | L2 / UGS runs | trained here, the hook on | trained here, the hook on | the study's own runs of Table 6's L2 baseline and of full UGS (`t6_l2_baseline`, `faster_rcnn_ugs`), their first and last epoch replayed with the hook (`python -m ugs.openmmlab.study replay`) |
#
# Paper profile: `papermill notebooks/12_gradient_maps.ipynb out.ipynb -p profile paper -p dataset visdrone -p data_root /path/to/VisDrone`
#
# Study profile: `papermill notebooks/12_gradient_maps.ipynb out.ipynb -p profile study` (Sec. 1-5 show
# seed `seed`, Sec. 6 every seed with intervals; the runs come from `python -m ugs.openmmlab.study run
# --arms t6_l2_baseline faster_rcnn_ugs`, ~5 h, or from the kit's archive of them)

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
import math
import shlex
import time

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display
from PIL import Image

from ugs import stats
from ugs.diagnostics import COCO_SIZES, CONVERGENCE_READINGS, claim_verdict, claim_words, convergence_readings
from ugs.papers import read_table, write_table
from ugs.openmmlab import runs as runs_tool
from ugs.openmmlab import study

ROOT = pathlib.Path(ugs.__file__).resolve().parent.parent  # the repository root
_t_start = time.perf_counter()

# %% [markdown]
# ## Parameters
#
# * `profile`, `dataset`, `data_root`: as in notebook 03. The study's setting is fixed
#   (`ugs.openmmlab.study.SETTINGS`): there `dataset`, `data_root`, `epochs`, `train_images`,
#   `image_size` and `work_dir` are not used, and `seed` picks the seed Sec. 1-5 show.
# * `epochs`: `None` means quick 2, paper 12. `train_images`: `None` uses every training
#   image (quick: 24, so that the main job fits its 20 minutes on 2 cores).
# * Re-running retrains (quick, paper): each run's work dir is deleted first. The study profile
#   trains nothing unless `study_train` (its runs take ~30 min each); a finished study run of
#   this machine whose replay is missing is replayed (~1.5 min).

# %% tags=["parameters"]
profile = "quick"  # "quick" (CPU, synthetic, minutes), "paper" (VisDrone, GPUs) or "study" (the CPU study's runs)
dataset = "synthetic"  # "synthetic" or "visdrone"
data_root = None  # None: synthetic -> <repo>/data/synthetic (generated if absent); visdrone -> required
epochs = None  # None: quick 2, paper 12
train_images = None  # None: quick 24, paper all
seed = 0
image_size = 256  # quick profile only
work_dir = "work_dirs/12_gradient_maps"  # runs go to <work_dir>/<loss>
output_dir = "outputs/12_gradient_maps"  # figures and the measured statistics
study_train = False  # study profile: train (and replay) the study's L2 / UGS runs not finished yet (~1 h per seed)

# %%
RUNS = {  # loss -> (config, --cfg-options)
    "l2": ("configs/faster_rcnn/faster_rcnn_r50_fpn_1x_visdrone.py",
           ['model.rpn_head.loss_bbox={"type": "MSELoss", "loss_weight": 1.0}',
            'model.roi_head.bbox_head.loss_bbox={"type": "MSELoss", "loss_weight": 1.0}']),
    "ugs": ("configs/faster_rcnn/faster_rcnn_r50_fpn_ugs_1x_visdrone.py", []),
}
DEFAULTS = {"quick": dict(epochs=2, train_images=24), "paper": dict(epochs=12, train_images=None),
            "study": dict(epochs=study.SETTINGS["epochs"], train_images=None)}
#: the study's arms of the two losses (the same configs as RUNS: Table 6's L2 row sets MSELoss in both stages)
STUDY_ARMS = dict(zip(RUNS, study.GRADIENT_ARMS))


if profile not in DEFAULTS:
    raise ValueError(f"profile must be 'quick', 'paper' or 'study', got {profile!r}")
if profile == "study":  # the study's setting: a changed value would be another study
    if train_images is not None:
        raise ValueError("profile 'study' has a fixed setting (ugs.openmmlab.study.SETTINGS): leave train_images at None")
    data_root, image_size, work_dir = study.check_notebook_setting(
        dataset=dataset, data_root=data_root, epochs=epochs, gpus=1, max_per_img=study.SETTINGS["max_per_img"],
        seed=seed)
data_path = runs_tool.dataset_path(dataset, data_root, ROOT)
epochs = DEFAULTS[profile]["epochs"] if epochs is None else epochs
train_images = DEFAULTS[profile]["train_images"] if train_images is None else train_images
if not isinstance(epochs, int) or epochs < 2:
    raise ValueError(f"epochs must be an integer >= 2 (first and last epoch differ), got {epochs!r}")
if train_images is not None and (not isinstance(train_images, int) or train_images < 1):
    raise ValueError(f"train_images must be None or an integer >= 1, got {train_images!r}")
work_path, output_path = runs_tool.resolve(work_dir, ROOT), runs_tool.resolve(output_dir, ROOT)
output_path.mkdir(parents=True, exist_ok=True)

# %%
# NBVAL_CHECK_OUTPUT
print(f"profile {profile}, dataset {dataset}, {epochs} epochs, seed {seed}, "
      f"training images {train_images or 'all'}")
for loss, (cfg, opts) in RUNS.items():
    print(f"  {loss:4s} {cfg}" + (f"  + {' '.join(opts)}" if opts else ""))
if profile == "study":
    print(f"  the study: seeds {list(study.SETTINGS['seeds'])}, runs {', '.join(STUDY_ARMS.values())} in "
          f"{study.SETTINGS['work_root']}/<arm>-seed<s>, else their archived replays ({study.GRADIENT_ARCHIVE}); "
          f"unfinished runs {'trained' if study_train else 'named only'}")

# %% [markdown]
# ## 1 · Data

# %%
if dataset == "synthetic":
    runs_tool.ensure_synthetic(data_path, ROOT, image_size if profile == "study" else None)
n_train = runs_tool.count_images(data_path, "train")
if train_images is not None and train_images > n_train:
    raise ValueError(f"train_images={train_images} but {data_path} has {n_train} training images")
print(f"{n_train} training images in {data_path}; using {train_images or n_train}")

# %% [markdown]
# ## 2 · Training with the hook
#
# One run per loss, the hook recording every iteration of epoch 1 and of the last epoch
# (`epochs=[1, -1]`) and saving the maps of every image there (`save_maps`), no validation
# (the run helpers are `ugs/openmmlab/runs.py`, shared with notebooks 03, 09, 10 and 11; the full
# output is in `<run>/train_stdout.log`).

# %%
def command(loss):
    cfg, opts = RUNS[loss]
    hook = json.dumps([{"type": "GradientDiagnosticsHook", "epochs": [1, -1], "save_maps": 64}])
    out = work_path / loss
    options = [f"custom_hooks={hook}", f"train_cfg.val_begin={epochs + 1}",
               "default_hooks.checkpoint.interval=1000", *opts]
    if train_images is not None:
        options.append(f"train_dataloader.dataset.indices={train_images}")
    cmd = runs_tool.train_command(cfg, root=ROOT, profile=profile, data_root=data_path, work_dir=out, epochs=epochs,
                                  seed=seed, max_per_img=None, image_size=image_size, options=options)
    return cmd, out


results = {}
if profile != "study":
    for loss in RUNS:
        cmd, out = command(loss)
        run = runs_tool.train(loss, cmd, out, ROOT, expect="gradient_diagnostics.json")
        results[loss] = run["result"]
        skipped = [ln for ln in run["log"].read_text(encoding="utf-8").splitlines() if "non-finite" in ln.lower()]
        print(f"  {loss}: {len(results[loss]['iterations'])} iterations recorded in {run['seconds']:.0f} s"
              + (f"; {len(skipped)} log lines about skipped non-finite steps" if skipped else ""), flush=True)

# %% [markdown]
# In the study profile nothing above is trained. The runs are the CPU study's own
# (`ugs.openmmlab.study`: 48 epochs from the study's pretrained backbone, seeds 0-4, Table 6's
# L2 row and full UGS), and the hook does not run during them: after a run finishes, its first
# epoch is run again from the start (the run's own command stopped after epoch 1, so with the
# 48-epoch schedule's learning rates) and its last epoch again from its checkpoint of epoch 47,
# both with the hook recording every iteration (`study.replay_gradients`; `python -m
# ugs.openmmlab.study run` does it after each such run). A replay is kept in the run's work dir
# and, for the kit's own runs, in `benchmarks/results/study/gradients/` (the statistics and one
# image's maps), so these sections work on a machine that has not trained them.

# %%
if profile == "study":
    arms = list(STUDY_ARMS.values())
    if study_train:
        study.ensure_pretrained()
        study.train_and_replay(arms, study.SETTINGS["seeds"], epochs=epochs, work_root=work_path)
    for _arm, _done in study.finished(arms, work_root=work_path, epochs=epochs).items():
        for _s in sorted(_done):   # a finished run of this machine not replayed yet (~1.5 min each)
            if not (study.run_dir(work_path, _arm, _s) / "gradients.json").is_file():
                study.replay_gradients(_arm, _s, epochs=epochs, work_root=work_path)
    replays = study.finished_gradients(arms, work_root=work_path, epochs=epochs)
    for loss, arm in STUDY_ARMS.items():
        got = replays.get(arm, {})
        print(f"  {loss:4s} {arm}: replays of seeds {sorted(got) or 'none'}"
              + (f" ({', '.join(f'{n} from the {o}' for o, n in collections.Counter(r['origin'] for r in got.values()).items())})"
                 if got else ""))
    _missing = [arm for arm in arms if seed not in replays.get(arm, {})]
    if _missing:
        raise RuntimeError(f"seed {seed}: no finished, replayed study run of {', '.join(_missing)}; train them with "
                           f"`python -m ugs.openmmlab.study run --arms {' '.join(_missing)} --seeds {seed}` "
                           "(or study_train=True)")
    for loss, arm in STUDY_ARMS.items():
        _g = replays[arm][seed]
        results[loss] = dict(object_gradient_by_epoch={"1": _g["epochs"]["first"], str(epochs): _g["epochs"]["last"]})

# %% [markdown]
# ## 3 · Average object gradient per size, first and last epoch (Fig. 2)

# %%
first, last = "1", str(epochs)
table = {}
print(f"{'loss':4s} {'size':7s} {'objects':>8s} {'epoch 1':>10s} {f'epoch {epochs}':>10s} {'last / first':>12s}")
for loss, res in results.items():
    by = res["object_gradient_by_epoch"]
    for s in COCO_SIZES:
        a, b = by[first][s], by[last][s]
        ratio = b["mean"] / a["mean"] if a["mean"] and b["mean"] is not None else float("nan")
        table[(loss, s)] = (a["mean"], b["mean"], ratio, a["count"])
        fmt = lambda v: f"{v:10.4g}" if v is not None else f"{'-':>10s}"  # noqa: E731
        print(f"{loss:4s} {s:7s} {a['count']:8d} {fmt(a['mean'])} {fmt(b['mean'])} {ratio:12.3f}")
stats_path = output_path / "object_gradient_by_size.json"
stats_path.write_text(json.dumps({f"{k[0]}/{k[1]}": dict(zip(("epoch_first", "epoch_last", "last_over_first", "objects"), v))
                                  for k, v in table.items()}, indent=1))

fig, ax = plt.subplots(1, 2, figsize=(11, 3.8))
for i, loss in enumerate(results):
    x = np.arange(len(COCO_SIZES))
    for j, (ep, lab) in enumerate(((0, "epoch 1"), (1, f"epoch {epochs}"))):
        ax[i].bar(x + (j - 0.5) * 0.38, [table[(loss, s)][ep] or 0 for s in COCO_SIZES], 0.38, label=lab)
    ax[i].set_xticks(x, COCO_SIZES)
    ax[i].set(title=f"Faster R-CNN, {loss.upper()}: average object gradient", ylabel="sum of |grad| in the box")
    ax[i].legend()
fig.tight_layout()
fig.savefig(output_path / "figure2_object_gradient.png", dpi=100)
plt.show()

# %% [markdown]
# ## 4 · Maps over the image (Figs. 1, 5)
#
# One training image recorded in both the first and the last epoch (each epoch sees every
# image once); its finest level's map (stride 4), upsampled to the image and laid over it,
# L2 and UGS, first and last epoch. Each map is scaled by its own maximum: the colours show
# where the gradient is, the numbers above show how large it is.

# %%
def saved_maps(loss):
    out = collections.defaultdict(dict)
    if profile == "study":  # the replays' maps of one image (study.figure1_maps): the work dir's, else the archive's
        arm = STUDY_ARMS[loss]
        files = study.figure1_maps(arm, seed, work_root=work_path)
        if not files:
            archived = {w: ROOT / study.GRADIENT_ARCHIVE / "maps" / f"{arm}-seed{seed}-{w}.npz" for w in ("first", "last")}
            files = {w: f for w, f in archived.items() if f.is_file()}
        for which, f in files.items():
            z = np.load(f)
            name = pathlib.PurePath(str(z["img_path"])).name  # recorded on another machine: this clone's copy
            image = next(data_path.rglob(name), None)
            if image is None:
                raise FileNotFoundError(f"{f}: its image {name} is not under {data_path}")
            out[str(image)][1 if which == "first" else epochs] = z
        return out
    for f in sorted((work_path / loss / "gradient_maps").glob("*.npz")):
        z = np.load(f)
        it = int(f.name.split("_")[0][4:])
        ep = next(r["epoch"] for r in results[loss]["iterations"] if r["iter"] == it)
        out[str(runs_tool.resolve(str(z["img_path"]), ROOT))][ep] = z  # the run's cwd is ROOT
    return out


maps = {loss: saved_maps(loss) for loss in results}
common = sorted(p for p in maps["l2"] if {1, epochs} <= set(maps["l2"][p]) and {1, epochs} <= set(maps["ugs"].get(p, {})))
if not common:
    raise RuntimeError("no image was recorded in both the first and the last epoch of both runs")
# the image with the most small objects
pick = max(common, key=lambda p: int((maps["ugs"][p][1]["object_areas"] < 32 ** 2).sum()))


def overlay(ax, z, title):
    h, w = (int(v) for v in z["img_shape"])
    img = np.asarray(Image.open(pick).convert("RGB").resize((w, h)))
    if bool(z["flip"]):
        img = img[:, ::-1] if str(z["flip_direction"]) in ("horizontal", "") else img[::-1]
    m = z["map_0"]
    up = np.kron(m, np.ones((int(z["strides"][0]),) * 2))[:h, :w]
    ax.imshow(img)
    ax.imshow(up / max(up.max(), 1e-12), cmap="jet", alpha=0.5)
    for x1, y1, x2, y2 in z["boxes"]:
        ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="w", lw=0.6))
    ax.set_title(f"{title}\nmax {m.max():.2e}", fontsize=9)
    ax.axis("off")


fig, ax = plt.subplots(1, 4, figsize=(16, 4.4))
for i, (loss, ep) in enumerate(((l, e) for l in ("l2", "ugs") for e in (1, epochs))):
    overlay(ax[i], maps[loss][pick][ep], f"{loss.upper()}, epoch {ep}")
fig.suptitle(f"|d loss / d RPN feature| (stride {int(maps['ugs'][pick][1]['strides'][0])}) on {pathlib.Path(pick).name}")
fig.tight_layout(rect=(0, 0, 1, 0.93))  # room for the suptitle
fig.savefig(output_path / "figure1_5_maps.png", dpi=100)
plt.show()

# %% [markdown]
# ## 5 · What this shows
#
# Generated from the numbers above. The paper's claim (Fig. 2) is that from the first to the
# last epoch the small objects' gradient falls less than the medium and large ones' under a
# conventional loss; Fig. 5's that UGS makes the small objects' gradients less salient.

# %% tags=["verdict"]
def drop(loss, s):
    return table[(loss, s)][2]


lines = []
for loss in results:
    d = {s: drop(loss, s) for s in COCO_SIZES if np.isfinite(drop(loss, s))}
    lines.append(f"* **{loss.upper()}**: last / first epoch average object gradient " +
                 ", ".join(f"{s} {v:.2f}" for s, v in d.items()) +
                 (" - small objects' gradient falls least, as in Fig. 2." if len(d) > 1 and max(d, key=d.get) == "small"
                  else " - small objects' gradient does not fall least here." if len(d) > 1 else ""))
sm = {loss: table[(loss, "small")][1] for loss in results}
med = {loss: table[(loss, "medium")][1] for loss in results}
rel = {loss: sm[loss] / med[loss] if sm[loss] and med[loss] else float("nan") for loss in results}
lines.append(f"* At the last epoch, small over medium average object gradient: L2 {rel['l2']:.2f}, UGS {rel['ugs']:.2f} "
             f"({'UGS makes small objects relatively less salient' if rel['ugs'] < rel['l2'] else 'UGS does not make small objects relatively less salient'} here; "
             "the two losses' absolute gradient scales differ, so only ratios within a loss are compared).")
if profile == "quick":
    lines.append(f"* This is the quick profile: {epochs} epochs from scratch on synthetic images, one seed. It shows the "
                 "tool working and the direction of the effect in a toy setting, not the paper's VisDrone numbers.")
if profile == "study":
    lines.append(f"* This is seed {seed} of the CPU study's five (48 epochs from the study's pretrained backbone, the "
                 "synthetic set at 128 px). Sec. 6 has every seed, each reading with its interval.")
display(Markdown("\n".join(lines)))


# %% [markdown]
# ## 6 · The CPU study: L2 and UGS over five seeds
#
# One run cannot tell a pattern from seed noise. The CPU study (issue 16; README "The CPU
# study") trains Table 6's L2 baseline and full UGS for 48 epochs with five seeds, and Sec. 2
# describes how their first and last epochs are replayed with the hook. Per seed, from the
# average object gradient per COCO size of the first and the last epoch:
#
# * **Fig. 2's claim** ("convergence challenge"): from the first to the last epoch the small
#   objects' gradient falls less than the medium ones'. Read as the ratio
#   (last / first, small) / (last / first, medium) > 1, i.e. a positive paired difference
#   log(last / first) small - medium, per loss (the synthetic set has no large objects). The
#   paper shows Fig. 2 for a conventional loss and makes no Fig. 2 claim for UGS; the kit asks
#   the same question of UGS, so a "contradicted" there says only that Fig. 2's pattern is
#   absent under UGS (small objects' gradient falls more than the medium ones'). Whether UGS
#   removes the pattern needs it shown under L2 first; Fig. 5 is the reading that compares the
#   two losses;
# * **Fig. 5's claim**: at the last epoch UGS makes the small objects' gradient less salient
#   than L2 does. Read within each loss, whose absolute gradient scales differ, as small /
#   medium at the last epoch, and compared UGS against L2: the paired difference of its log < 0.
#
# Each difference is a Student-t 95 % interval over the seeds (`ugs.stats.paired_comparison`),
# shown as a ratio (exp). A claim **holds** when its interval lies on the claim's side of 1,
# is **contradicted** when on the other side, and is **not resolved** when it contains 1.
# The study profile writes the table `<output_dir>/figure2_measured.csv` (the runner commits it
# as `papers_tables/measured/study/figure2_study_synthetic128.csv`); the other profiles read
# that committed table.

# %%
STUDY_TABLE = ROOT / "papers_tables" / "measured" / "study" / "figure2_study_synthetic128.csv"


study_rows = []
if profile == "study":
    readings = convergence_readings(*({s_: g["epochs"] for s_, g in replays.get(a, {}).items()}
                                      for a in STUDY_ARMS.values()))
    paired = sorted(readings["l2_small_vs_medium"][0])
    print(f"seeds with both runs replayed: {paired} ({len(paired)} of {len(study.SETTINGS['seeds'])})")
    for row, what, side in CONVERGENCE_READINGS:
        base, treat = readings[row]
        print(f"  {what}: per seed " + ", ".join(f"{s}: {math.exp(treat[s] - base[s]):.3f}" for s in sorted(base)))
    if len(paired) >= 2:
        sources = [replays[a][s_]["commands"][w] for s_ in paired for a in STUDY_ARMS.values() for w in ("first", "last")]
        for row, what, side in CONVERGENCE_READINGS:
            c = stats.paired_comparison(*readings[row])
            m, lo, hi = (math.exp(c[k]) for k in ("diff_mean", "ci_low", "ci_high"))
            study_rows.append(dict(row=row, what=what, side=side, ratio=m, low=lo, high=hi,
                                   n=c["n"],
                                   per_seed=[math.exp(readings[row][1][s] - readings[row][0][s]) for s in c["seeds"]],
                                   verdict=claim_verdict(lo, hi, side)))
        records = [dict(row=r["row"], method="Faster R-CNN (L2 / UGS)", variant=r["what"], column=col, value=float(f"{v:.4g}"),
                        status="measured", source=" ; ".join(runs_tool.portable(shlex.split(c), ROOT) for c in sources),
                        profile=profile, dataset="synthetic", epochs=str(epochs),
                        seeds=" ".join(map(str, paired)),
                        note=f"per-seed ratios {', '.join(f'{x:.3f}' for x in r['per_seed'])}; claim's side of 1: "
                             f"{claim_words(r['side'])}")
                   for r in study_rows for col, v in (("ratio", r["ratio"]), ("ratio_ci95_low", r["low"]),
                                                      ("ratio_ci95_high", r["high"]))]
        path = write_table(records, output_path / "figure2_measured.csv")
        print("wrote", path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    else:
        print("fewer than 2 seeds with both runs: no interval yet, no table written")
elif STUDY_TABLE.is_file():
    committed = read_table(STUDY_TABLE)
    for row, what, side in CONVERGENCE_READINGS:
        v = {c: committed.value(row, c) for c in ("ratio", "ratio_ci95_low", "ratio_ci95_high")}
        study_rows.append(dict(row=row, what=what, side=side, ratio=v["ratio"],
                               low=v["ratio_ci95_low"], high=v["ratio_ci95_high"], n=len(committed.record(row, "ratio")["seeds"].split()),
                               per_seed=[], verdict=claim_verdict(v["ratio_ci95_low"], v["ratio_ci95_high"], side)))
    print(f"the committed study table {STUDY_TABLE.relative_to(ROOT)}")
else:
    _archived = study.finished_gradients(list(STUDY_ARMS.values()), work_root=study.SETTINGS["work_root"], log=lambda m: None)
    print(f"no study table committed yet ({STUDY_TABLE.relative_to(ROOT)}); replayed study runs so far: "
          + ", ".join(f"{a} seeds {sorted(_archived.get(a, {})) or 'none'}" for a in STUDY_ARMS.values()))

if study_rows:
    fig, ax = plt.subplots(figsize=(8, 3.2))
    for i, r in enumerate(study_rows):
        ax.errorbar([r["ratio"]], [i], xerr=[[r["ratio"] - r["low"]], [r["high"] - r["ratio"]]], fmt="o", color="k", capsize=4)
        ax.scatter(r["per_seed"], [i] * len(r["per_seed"]), s=12, color="tab:blue", zorder=3)
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_xscale("log")
    for _axis in (ax.xaxis.set_major_formatter, ax.xaxis.set_minor_formatter):  # 0.8, not 8 x 10^-1
        _axis(plt.FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.set_yticks(range(len(study_rows)), [f"{r['what']}\n(claim: {claim_words(r['side'])} 1)" for r in study_rows],
                  fontsize=8)
    ax.set(xlabel="ratio (geometric mean over seeds, 95 % interval; dots: seeds)",
           title=f"CPU study, {study_rows[0]['n']} seeds: Figs. 2 and 5")
    fig.tight_layout()
    fig.savefig(output_path / "study_figure2.png", dpi=100)
    plt.show()
    display(Markdown("\n".join(
        f"* **{r['what']}**: {r['ratio']:.2f}x [{r['low']:.2f}, {r['high']:.2f}] over {r['n']} seeds (the claim: "
        f"{claim_words(r['side'])} 1): **{r['verdict']}** in this setting (48 epochs on the 128-px synthetic set, not the paper's VisDrone)."
        for r in study_rows)))
print(f"total {time.perf_counter() - _t_start:.0f} s")
