"""The CPU study (issue 16): the quick profile's detectors trained much longer on a synthetic
set, five seeds per arm, the arms paired by seed, every comparison with its interval.

    python -m ugs.openmmlab.study plan                      # arms, finished seeds, measured cost
    python -m ugs.openmmlab.study run --arms <a table's arms>   # seeds 0-4, seed-major, resumable
    python -m ugs.openmmlab.study report [--table table1 --out FILE.csv]   # comparisons, verdicts
    python -m ugs.openmmlab.study pilot --arms fcos --epochs 96   # one seed: AP after each epoch
    python -m ugs.openmmlab.study curves --out FILE.png     # the pilots' curves of a setting
    python -m ugs.openmmlab.study replay --arms faster_rcnn_ugs --seeds 0   # Figs. 1/2: the first and
                                                            # last epoch again, gradient hook on

Every run is one command of the training tool (``python -m ugs.openmmlab.train``), the quick
profile with ``--epochs``, ``--seed``, the study's data set and image size and, by default
(``--init pretrained``), the backbone initialised from the study's pretrained ResNet-18
(``python -m ugs.openmmlab.pretrain``; the same weights for every arm: the paper's runs start
from ImageNet weights, which cannot be downloaded here; committed, because weights made on
another machine differ in their last bits), in its own work dir
``<work_root>/<arm>-seed<s>`` (the merged config, the log, checkpoints, ``metrics.json``; the
folder's name is the run's id in the committed tables' ``commands.csv``). A run is *finished*
when its ``study_run.json`` records the same command and the same inputs (the SHA-256 of the
pretrained weights the command names: regenerated weights at the same path are a different
run): ``run`` skips it. A run that stopped part-way (its ``command.txt`` and ``inputs.json``
are the same and mmengine left a ``last_checkpoint``) continues from its last epoch with the
tool's ``--resume``; anything else starts from scratch. So the study can be completed over
several sittings, and changing a setting re-runs exactly the runs it changes. ``archive``
copies finished runs' records into git (:data:`ARCHIVE`), where the tables find them when the
work dirs are on another machine or gone.

Standard library only at import; the statistics are :mod:`ugs.stats`.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import re
import shlex
import shutil
import sys
import time
from typing import Dict, List, Optional, Sequence

from .. import stats
from ..ablation import TABLE6_CONFIGS
from . import runs

ROOT = pathlib.Path(__file__).resolve().parents[2]

#: arm -> config (relative to the repository root)
ARMS: Dict[str, str] = {
    "fcos": "configs/fcos/fcos_r50_fpn_1x_visdrone.py",
    "fcos_grid_iou": "configs/fcos/fcos_r50_fpn_grid_iou_1x_visdrone.py",
    "fcos_ugs": "configs/fcos/fcos_r50_fpn_ugs_1x_visdrone.py",
    "gfl": "configs/gfl/gfl_r50_fpn_1x_visdrone.py",
    "gfl_ugs": "configs/gfl/gfl_r50_fpn_ugs_1x_visdrone.py",
    "faster_rcnn": "configs/faster_rcnn/faster_rcnn_r50_fpn_1x_visdrone.py",
    "faster_rcnn_ugs": "configs/faster_rcnn/faster_rcnn_r50_fpn_ugs_1x_visdrone.py",
    **{f"t6_{row}": path for row, path in TABLE6_CONFIGS.items()
       if row in ("l2_baseline", "smooth_l1", "ce", "ce_in", "ce_in_um_l0.5")},
}

#: (comparison, baseline arm, treatment arm, the one thing it changes)
COMPARISONS = [
    ("table1_fcos", "fcos", "fcos_ugs", "FCOS -> FCOS w/ UGS (head parametrisation and loss)"),
    ("table1_fcos_parametrisation", "fcos", "fcos_grid_iou", "the UGS head's parametrisation, IoU loss kept"),
    ("table1_fcos_loss", "fcos_grid_iou", "fcos_ugs", "Eq. 16 instead of the IoU loss, same parametrisation"),
    ("table1_gfl", "gfl", "gfl_ugs", "GFL V1 -> GFL V1 w/ UGS"),
    ("table1_faster_rcnn", "faster_rcnn", "faster_rcnn_ugs", "Faster R-CNN -> Faster R-CNN w/ UGS"),
    ("table6_l2_to_smooth_l1", "t6_l2_baseline", "t6_smooth_l1", "L2 -> Smooth-L1"),
    ("table6_smooth_l1_to_ce", "t6_smooth_l1", "t6_ce", "Smooth-L1 -> L_CE on a uniform grid"),
    ("table6_ce_to_ce_in", "t6_ce", "t6_ce_in", "+ the IN grid"),
    ("table6_ce_in_to_um", "t6_ce_in", "t6_ce_in_um_l0.5", "+ lambda L_UM (0.5)"),
    ("table6_um_to_ur", "t6_ce_in_um_l0.5", "faster_rcnn_ugs", "+ gamma L^ur (0.5, rho 0.5): full UGS"),
]

#: the study's setting: the quick profile (ResNet-18, 4 images per step) on the kit's synthetic
#: set generated natively at 128 px (``ugs data synth data/synth128 --image-size 128``, made by
#: ``run`` when missing), 48 epochs, 5 seeds. Why (benchmarks/results/study_pilot/README.md):
#: at 256 px a step costs 2.7 times as much; no schedule the pilots could afford reached the
#: schedule rule's plateau (FCOS at 128 px: 24 -> 48 -> 96 epochs keep gaining AP), so the
#: schedule is the longest for which each table's study (``--arms`` of ``TABLES``) fits about
#: one night on 2 cores: Table 1's seven arms one night, Table 6's five more another.
SETTINGS = dict(profile="quick", data_root="data/synth128", epochs=48, image_size=128, max_per_img=500,
                seeds=(0, 1, 2, 3, 4), work_root="work_dirs/study", init="pretrained",
                pretrained="benchmarks/results/study/pretrained/resnet18_synthetic.pth")
#: the kit's own finished study runs: each one's ``study_run.json`` (command, inputs, final
#: metrics, validation curve), copied here by ``python -m ugs.openmmlab.study archive``. Work
#: dirs stay on the machine that trained them; these records are in git, so the committed study
#: tables can be completed over sittings on different machines and every value in them traced
#: to its run. ``report``, ``plan`` and the study tables read them for the runs a work root
#: lacks; ``run --skip-archived`` does not train them again.
ARCHIVE = "benchmarks/results/study/runs"
#: Figs. 1/2 in the study (notebook 12): the arms whose finished runs get their first and last
#: epochs replayed with the gradient hook (:func:`replay_gradients`; ``run`` does it after each
#: run of these arms): Table 6's L2 baseline against full UGS, as the paper's Fig. 5
GRADIENT_ARMS = ("t6_l2_baseline", "faster_rcnn_ugs")
#: per replayed iteration, the gradient maps (Fig. 1) of this many images are kept in the work
#: dir: the study's batch, so every training image's maps of both replayed epochs
REPLAY_MAPS = 4
#: the replays' records in git (``<arm>-seed<s>.json``, and in ``maps/`` both replayed epochs'
#: maps of one image, :func:`figure1_maps`), beside :data:`ARCHIVE`
GRADIENT_ARCHIVE = "benchmarks/results/study/gradients"
#: the committed log of the 2-epoch cost pilots of every arm in the study's setting (session 10,
#: a 2-core CPU): what ``plan`` prices an arm by when neither a finished run nor a pilot of this
#: machine is there (a work root on a new machine)
PILOT_COST_LOG = "benchmarks/results/study_pilot/cost_128px_e2.log"
#: how a run's backbone starts: ``pretrained`` (the weights of ``python -m ugs.openmmlab.pretrain``,
#: identical for every arm) or ``scratch`` (the quick profile's own: random)
INITS = ("pretrained", "scratch")
METRICS = ("AP", "AP_s")
#: the plateau rule: the best validation AP of the last ``window`` epochs is less than ``tol``
#: AP points above the best before them (ugs.stats.plateau_epoch)
PLATEAU = dict(window=3, tol=0.5)
#: the schedule rule the study uses (ugs.stats.schedule_plateau): no longer schedule's final AP
#: is 1 AP point higher
SCHEDULE_TOL = 1.0


#: arm -> (method, variant) in the study tables
LABELS: Dict[str, tuple] = {
    "fcos": ("FCOS", "baseline"),
    "fcos_grid_iou": ("FCOS", "IN-grid head, IoU loss (control)"),
    "fcos_ugs": ("FCOS", "w/ UGS"),
    "gfl": ("GFL V1", "baseline"),
    "gfl_ugs": ("GFL V1", "w/ UGS"),
    "faster_rcnn": ("Faster R-CNN", "baseline"),
    "faster_rcnn_ugs": ("Faster R-CNN", "w/ UGS (Table 6: + L^ur)"),
    "t6_l2_baseline": ("Faster R-CNN", "L2"),
    "t6_smooth_l1": ("Faster R-CNN", "Smooth-L1"),
    "t6_ce": ("Faster R-CNN", "L_CE, uniform grid"),
    "t6_ce_in": ("Faster R-CNN", "L_CE, IN grid"),
    "t6_ce_in_um_l0.5": ("Faster R-CNN", "L_CE, IN grid + 0.5 L_UM"),
}
#: the study's tables: name -> (its arms, its comparisons)
TABLES: Dict[str, dict] = {
    "table1": dict(arms=[a for a in ARMS if not a.startswith("t6_")],
                   comparisons=[c for c in COMPARISONS if c[0].startswith("table1_")]),
    "table6": dict(arms=[a for a in ARMS if a.startswith("t6_")] + ["faster_rcnn_ugs"],
                   comparisons=[c for c in COMPARISONS if c[0].startswith("table6_")]),
}
#: the statistics of a comparison written to the tables (keys of ugs.stats.paired_comparison)
STATISTICS = ("baseline_mean", "baseline_sd", "treatment_mean", "treatment_sd", "diff_mean", "ci_low",
              "ci_high", "detectable")


#: the paper's row of each arm, per study table (papers_tables/table1_visdrone.csv and
#: table6_ablation.csv); the FCOS control has no row: its comparisons carry no claim
PAPER_ROWS: Dict[str, Dict[str, str]] = {
    "table1": {"fcos": "fcos", "fcos_ugs": "fcos_ugs", "gfl": "gfl_v1", "gfl_ugs": "gfl_v1_ugs",
               "faster_rcnn": "faster_rcnn", "faster_rcnn_ugs": "faster_rcnn_ugs"},
    "table6": {"t6_l2_baseline": "l2_baseline", "t6_smooth_l1": "smooth_l1", "t6_ce": "ce", "t6_ce_in": "ce_in",
               "t6_ce_in_um_l0.5": "ce_in_um_l0.5", "faster_rcnn_ugs": "ce_in_um_ur_l0.5_g0.5_r0.5"},
}


def paper_difference(table: str, baseline: str, treatment: str, metric: str) -> Optional[float]:
    """The paper's printed ``treatment - baseline`` for ``metric`` (AP points), or None when an
    arm has no row in the paper's table (the control)."""
    from ..papers import load_table

    rows = PAPER_ROWS[table]
    if baseline not in rows or treatment not in rows:
        return None
    printed = load_table(1 if table == "table1" else 6)
    return round(printed.value(rows[treatment], metric) - printed.value(rows[baseline], metric), 2)


def verdict(paper_diff: Optional[float], ci_low: float, ci_high: float) -> str:
    """What the study says of the paper's claim that ``treatment - baseline`` has the sign of
    ``paper_diff``: ``holds`` (the 95 % interval is on the paper's side of 0),
    ``contradicted`` (on the other side), ``not resolved`` (it contains 0); without a printed
    difference (or a printed 0) only the measured direction is stated."""
    side = "above 0" if ci_low > 0 else "below 0" if ci_high < 0 else "contains 0"
    if not paper_diff:
        return f"no claim (interval {side})"
    if side == "contains 0":
        return "not resolved"
    return "holds" if (ci_low > 0) == (paper_diff > 0) else "contradicted"


def table_records(results: Dict[str, Dict[int, dict]], table: str, dataset: str) -> List[dict]:
    """The records (``papers_tables`` schema) of one study table from finished runs
    (:func:`collect`): each run's final AP / AP_s (``measured``; ``source`` its command) and,
    for each comparison with at least 2 seeds in both arms, its statistics in AP points
    (``derived``: ``source`` the commands of every run it pairs). Seeds finished in one arm
    only are left out of the comparison and named in its note."""
    if table not in TABLES:
        raise ValueError(f"unknown study table {table!r}; tables: {', '.join(TABLES)}")
    spec, records = TABLES[table], []
    for arm in spec["arms"]:
        method, variant = LABELS[arm]
        for seed, r in sorted(results.get(arm, {}).items()):
            for m in METRICS:
                records.append(dict(row=arm, method=method, variant=variant, column=m,
                                    value=round(100 * float(r["metrics"][m]), 2), status="measured",
                                    source=r["command"], profile="study", dataset=dataset,
                                    epochs=r["epochs"], seed=str(seed), note=f"last epoch of {r['epochs']}"))
    for name, base, treat, what in spec["comparisons"]:
        seeds = sorted(set(results.get(base, {})) & set(results.get(treat, {})))
        if len(seeds) < 2:
            continue
        alone = sorted(set(results.get(base, {})) ^ set(results.get(treat, {})))
        runs_used = [results[a][s] for a in (base, treat) for s in seeds]
        source = " ; ".join(r["command"] for r in runs_used)
        epochs = sorted({r["epochs"] for r in runs_used})
        for row in compare({a: results[a] for a in (base, treat)}, [(name, base, treat, what)]):
            for stat in STATISTICS:
                records.append(dict(
                    row=name, method=f"{LABELS[base][0]}: {LABELS[base][1]} -> {LABELS[treat][1]}",
                    variant=what, column=f"{row['metric']} {stat}", value=round(row[stat], 2),
                    status="derived", source=source,
                    derivation=(f"ugs.stats.paired_comparison of rows {base} (baseline) and {treat} "
                                f"(treatment), {row['metric']}, seeds {' '.join(map(str, seeds))}: "
                                "means, sample SDs, treatment - baseline with its 95% Student-t interval "
                                "and the difference detectable at 80% power"),
                    profile="study", dataset=dataset, epochs=" ".join(map(str, epochs)),
                    seed=" ".join(map(str, seeds)),
                    note=(f"n={len(seeds)}" + (f"; seeds {' '.join(map(str, alone))} finished in one arm "
                                               "only, left out" if alone else ""))))
    return records


def read_comparisons(records: Sequence[dict], table: str) -> List[dict]:
    """The comparisons a written study table holds (its ``derived`` records, e.g. the committed
    ``papers_tables/measured/study`` copy), in ``TABLES[table]`` order: one dict per comparison
    and metric with the :data:`STATISTICS`, ``n``, ``seeds``, the paper's printed difference
    (``paper``, None for the control) and the :func:`verdict`. Comparisons without a row in the
    table (fewer than 2 paired seeds when it was written) are left out."""
    if table not in TABLES:
        raise ValueError(f"unknown study table {table!r}; tables: {', '.join(TABLES)}")
    derived: Dict[tuple, float] = {}
    seeds: Dict[tuple, str] = {}
    for r in records:
        if r.get("status") != "derived":
            continue
        metric, _, stat = str(r["column"]).partition(" ")
        derived[(r["row"], metric, stat)] = float(r["value"])
        seeds[(r["row"], metric)] = str(r.get("seed", ""))
    out = []
    for name, base, treat, what in TABLES[table]["comparisons"]:
        for m in METRICS:
            if (name, m) not in seeds:
                continue
            missing = [st for st in STATISTICS if (name, m, st) not in derived]
            if missing:
                raise ValueError(f"study table {table}: comparison {name} {m} lacks {', '.join(missing)}")
            row = {st: derived[(name, m, st)] for st in STATISTICS}
            used = seeds[(name, m)].split()
            paper = paper_difference(table, base, treat, m)
            out.append(dict(comparison=name, baseline=base, treatment=treat, changes=what, metric=m,
                            n=len(used), seeds=used, paper=paper,
                            verdict=verdict(paper, row["ci_low"], row["ci_high"]), **row))
    return out


def study_table(table: str, committed: str, *, fresh: bool, work_root=SETTINGS["work_root"], out=None,
                archive=ARCHIVE, root=ROOT, log=print):
    """``(PaperTable or None, path)``: the study table ``table`` as its notebook shows it.
    ``fresh``: written to ``out`` from the study's finished runs (:func:`finished`: those under
    ``work_root``, then the ``archive``'s for the arms and seeds the work root lacks; how many
    of each is said through ``log``); None when there is none yet. Else the committed copy
    ``papers_tables/measured/study/<committed>``, its run ids expanded to commands (None when
    it is not committed)."""
    from .. import measured
    from ..papers import read_table, write_table

    if fresh:
        done = finished(TABLES[table]["arms"], work_root=work_root, archive=archive, root=root, log=log)
        origins = [r["origin"] for by_seed in done.values() for r in by_seed.values()]
        log(f"finished runs of {table}: " + ", ".join(f"{origins.count(o)} from {w}" for o, w in (
            ("work dir", runs.relative(runs.resolve(work_root, root), root)),
            ("archive", "the archive " + (runs.relative(runs.resolve(archive, root), root) if archive else "(none)")))))
        records = table_records(done, table, dataset=f"synthetic {SETTINGS['image_size']} px")
        if not records:
            return None, runs.resolve(work_root, root)
        path = write_table(records, out)
        return read_table(path), path
    path = measured.measured_root("study", root) / committed
    return (measured.load_measured(committed, "study", root) if path.is_file() else None), path


def comparisons_markdown(rows: Sequence[dict]) -> str:
    """The comparisons of :func:`read_comparisons` as a Markdown table."""
    lines = ["| comparison | metric | n | baseline | treatment | difference [95 % interval] | detectable | paper | verdict |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['comparison']} ({r['changes']}) | {r['metric']} | {r['n']} | "
                     f"{r['baseline_mean']:.2f} ± {r['baseline_sd']:.2f} | {r['treatment_mean']:.2f} ± "
                     f"{r['treatment_sd']:.2f} | {r['diff_mean']:+.2f} [{r['ci_low']:+.2f}, {r['ci_high']:+.2f}] | "
                     f"{r['detectable']:.2f} | " + ("-" if r["paper"] is None else f"{r['paper']:+.2f}")
                     + f" | {r['verdict']} |")
    return "\n".join(lines)


def verdict_sentence(rows: Sequence[dict]) -> str:
    """One sentence per notebook verdict: each comparison's difference, interval, n, the paper's
    printed difference and the verdict."""
    return (f"**CPU study** ({SETTINGS['epochs']} epochs on the synthetic set at {SETTINGS['image_size']} px, "
            "seeds paired): "
            + "; ".join(f"{r['comparison']} {r['metric']} {r['diff_mean']:+.2f} [{r['ci_low']:+.2f}, "
                        f"{r['ci_high']:+.2f}] (n={r['n']}, paper "
                        + ("none" if r["paper"] is None else f"{r['paper']:+.2f}") + f"): {r['verdict']}"
                        for r in rows)
            + ". These hold in this small synthetic setting only, not on the paper's data; each interval is a "
              "95 % interval of its own (no correction for the several comparisons, and AP and AP_s move together), "
              "and comparisons with different n pair different seeds, so their differences need not add up.")


def read_runs(records: Sequence[dict]) -> Dict[str, Dict[str, Dict[int, float]]]:
    """``{arm: {metric: {seed: value}}}`` (AP points) from a study table's ``measured`` records."""
    out: Dict[str, Dict[str, Dict[int, float]]] = {}
    for r in records:
        if r.get("status") == "measured" and r["column"] in METRICS:
            out.setdefault(r["row"], {}).setdefault(r["column"], {})[int(r["seed"])] = float(r["value"])
    return out


def plot_study(records: Sequence[dict], table: str, title: str, out=None):
    """One panel per metric: each arm's runs (a dot per seed, the same seed's runs joined across
    the arms of a comparison whose arms are neighbours in ``TABLES[table]``) with the arm's mean and 95 % interval of the mean. Saved to ``out``
    when given; returns the figure."""
    import matplotlib.pyplot as plt

    values = read_runs(records)
    arms = [a for a in TABLES[table]["arms"] if a in values]
    fig, axes = plt.subplots(1, len(METRICS), figsize=(6.2 * len(METRICS), 4.2), squeeze=False)
    seeds = sorted({s for a in arms for m in METRICS for s in values[a].get(m, {})})
    colours = {s: f"C{i % 10}" for i, s in enumerate(seeds)}
    for ax, m in zip(axes[0], METRICS):
        x = {a: i for i, a in enumerate(arms)}
        for _, base, treat, _ in TABLES[table]["comparisons"]:
            if base in x and treat in x and abs(x[base] - x[treat]) == 1:   # neighbours only: readable
                for sd in set(values[base].get(m, {})) & set(values[treat].get(m, {})):
                    ax.plot([x[base], x[treat]], [values[base][m][sd], values[treat][m][sd]],
                            color=colours[sd], lw=0.6, alpha=0.5)
        for a in arms:
            v = values[a].get(m, {})
            ax.scatter([x[a]] * len(v), list(v.values()), c=[colours[s] for s in v], s=22, zorder=3)
            if len(v) >= 2:
                mean, sd = stats.mean_sd(list(v.values()))
                half = stats.t_quantile(0.975, len(v) - 1) * sd / len(v) ** 0.5
                ax.errorbar(x[a] + 0.18, mean, yerr=half, fmt="s", color="k", ms=5, capsize=4, zorder=4)
        ax.set_xticks(range(len(arms)))
        ax.set_xticklabels([a.replace("_", "\n", 1) for a in arms], fontsize=8)
        ax.set_ylabel(f"{m} (AP points)")
        ax.set_title(f"{m}: one dot per seed; black: mean and its 95 % interval")
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(handles=[plt.Line2D([], [], marker="o", ls="", color=colours[s], label=f"seed {s}")
                               for s in seeds], fontsize=7, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    if out is not None:
        fig.savefig(out, dpi=110)
    return fig


def command(arm: str, seed: int, *, epochs: int, work_root, root=ROOT, data_root=SETTINGS["data_root"],
            image_size: int = SETTINGS["image_size"], init: str = SETTINGS["init"],
            pretrained=SETTINGS["pretrained"], work_dir=None, extra: Sequence[str] = ()) -> List[str]:
    """The training tool's command of one study run (in :func:`run_dir`); ``work_dir`` and
    ``extra`` (more ``--cfg-options``) make it a replay of part of that run (:func:`replay_command`)."""
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; arms: {', '.join(ARMS)}")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    options = pretrained_options(pretrained, root) if init == "pretrained" else []
    return runs.train_command(ARMS[arm], root=root, profile="quick", data_root=runs.resolve(data_root, root),
                              work_dir=work_dir or run_dir(work_root, arm, seed, root), epochs=epochs, seed=seed,
                              max_per_img=SETTINGS["max_per_img"], image_size=image_size,
                              options=[*options, *extra])


def pretrained_options(pretrained=SETTINGS["pretrained"], root=ROOT) -> List[str]:
    """The training tool's ``--cfg-options`` that start the quick profile's backbone (its
    ``init_cfg`` is None) from the ``pretrained`` weights."""
    return ["model.backbone.init_cfg._delete_=true", "model.backbone.init_cfg.type=Pretrained",
            f"model.backbone.init_cfg.checkpoint={runs.relative(runs.resolve(pretrained, root), root)}"]


def pilot_root(work_root, epochs: int, init: str = SETTINGS["init"], data_root=SETTINGS["data_root"],
               image_size: int = SETTINGS["image_size"]) -> str:
    """Where a pilot of ``epochs`` runs: ``<work_root>/pilot/<data folder>-<image size>/e<epochs>``
    from scratch, ``.../pt-e<epochs>`` from the pretrained backbone."""
    setting = f"{pathlib.PurePath(str(data_root)).name}-{int(image_size)}"
    return f"{work_root}/pilot/{setting}/{'pt-' if init == 'pretrained' else ''}e{epochs}"


def check_pretrained(init: str = SETTINGS["init"], pretrained=SETTINGS["pretrained"], root=ROOT) -> None:
    path = runs.resolve(pretrained, root)
    if init == "pretrained" and not path.is_file():
        raise SystemExit(f"{path}: the study's pretrained backbone is missing; make it with "
                         "`python -m ugs.openmmlab.pretrain` (~5 min) or pass --init scratch")


def run_dir(work_root, arm: str, seed: int, root=ROOT) -> pathlib.Path:
    return runs.resolve(work_root, root) / f"{arm}-seed{seed}"


def inputs(init: str = SETTINGS["init"], pretrained=SETTINGS["pretrained"], root=ROOT) -> Dict[str, str]:
    """``{file: sha256}`` of the files a run's command names and depends on by content: the
    pretrained backbone (``init='pretrained'``); empty from scratch."""
    if init != "pretrained":
        return {}
    path = runs.resolve(pretrained, root)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the study's pretrained backbone is missing; make it with "
                                "`python -m ugs.openmmlab.pretrain` (~5 min) or use --init scratch")
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {runs.relative(path, root): digest.hexdigest()}


def differs(record: dict, cmd: Sequence[str], used: Optional[Dict[str, str]]) -> Optional[str]:
    """Why a run's ``record`` (its ``command`` string and ``inputs``) is not the run of ``cmd``
    on the input files ``used`` (``None``: inputs not compared): ``"another command"``,
    ``"other inputs"``, or ``None`` when it is that run. The interpreter (the command's first
    word) is not compared: the same run started from another venv or clone is the same run."""
    if shlex.split(record.get("command", ""))[1:] != list(cmd)[1:]:
        return "another command"
    if used is not None and record.get("inputs", {}) != used:
        return "other inputs"
    return None


def state(work_dir: pathlib.Path, cmd: Sequence[str], used: Optional[Dict[str, str]] = None) -> str:
    """``finished`` (the run of ``cmd`` on ``used`` inputs, :func:`differs`), ``partial``
    (resumable: that run started, and a checkpoint) or ``new``."""
    used = used or {}
    record = work_dir / "study_run.json"
    if record.is_file() and differs(json.loads(record.read_text(encoding="utf-8")), cmd, used) is None:
        return "finished"
    started, started_inputs = work_dir / "command.txt", work_dir / "inputs.json"
    if (started.is_file() and started_inputs.is_file() and (work_dir / "last_checkpoint").is_file()
            and differs(dict(command=started.read_text(encoding="utf-8"),
                             inputs=json.loads(started_inputs.read_text(encoding="utf-8"))), cmd, used) is None):
        return "partial"
    return "new"


def curve(work_dir: pathlib.Path, metric: str = "visdrone/AP", log=print) -> List[float]:
    """Validation ``metric`` after each epoch, over every sitting of the run (mmengine logs a
    resumed run into a new timestamped folder; a later sitting's value for an epoch wins). An
    epoch with no validation logged (a sitting stopped after its checkpoint, before its
    validation was written) is not in the list, and is named through ``log``."""
    from .train import read_scalars   # standard library only at import

    by_epoch: Dict[int, float] = {}
    for scalars in sorted(work_dir.glob("*/vis_data/scalars.json")):
        for e in read_scalars(str(scalars.parent.parent)):
            if metric in e:   # a validation entry: its step is the epoch
                by_epoch[int(e["step"])] = float(e[metric])
    missing = sorted(set(range(1, max(by_epoch, default=0) + 1)) - set(by_epoch))
    if missing:
        log(f"{work_dir}: no {metric} logged for epoch(s) {missing}; the curve has the other "
            f"{len(by_epoch)} epochs only, so its position i is not epoch i + 1 after them")
    return [by_epoch[k] for k in sorted(by_epoch)]


def run_one(arm: str, seed: int, *, epochs: int, work_root, root=ROOT, **kw) -> dict:
    """Run (or skip, or resume) one arm and seed; returns its ``study_run.json`` record."""
    cmd = command(arm, seed, epochs=epochs, work_root=work_root, root=root, **kw)
    used = inputs(kw.get("init", SETTINGS["init"]), kw.get("pretrained", SETTINGS["pretrained"]), root)
    out = run_dir(work_root, arm, seed, root)
    st = state(out, cmd, used)
    if st == "finished":
        print(f"[{arm} seed {seed}] finished earlier: skipped", flush=True)
        return json.loads((out / "study_run.json").read_text(encoding="utf-8"))
    if st == "new" and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "command.txt").write_text(shlex.join(cmd), encoding="utf-8")
    (out / "inputs.json").write_text(json.dumps(used, indent=2) + "\n", encoding="utf-8")
    run = runs.train(f"{arm} seed {seed}", cmd + (["--resume"] if st == "partial" else []), out, root,
                     fresh=False)
    record = dict(command=shlex.join(cmd), inputs=used, arm=arm, seed=seed, epochs=epochs, seconds=run["seconds"],
                  resumed=st == "partial", metrics=run["metrics"], curve=curve(out),
                  finished=time.strftime("%Y-%m-%d %H:%M:%S"))
    (out / "study_run.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def replay_command(arm: str, seed: int, which: str, *, epochs: int, work_root, root=ROOT, **kw) -> List[str]:
    """The command that replays the ``first`` or the ``last`` epoch of a finished study run with
    the gradient hook (:mod:`ugs.openmmlab.diagnostics_hook`) recording every iteration of it
    and keeping the maps of :data:`REPLAY_MAPS` images per iteration, in
    :func:`replay_dir`: the run's own command (data, seed, weights, the
    ``epochs``-epoch schedule and its learning rates) stopped after epoch 1
    (``train_cfg.max_epochs=1``), or resumed from the run's checkpoint of epoch ``epochs - 1``
    (the training tool keeps the last two); no validation, no checkpoint written."""
    if which not in ("first", "last"):
        raise ValueError(f"which must be 'first' or 'last', got {which!r}")
    out = run_dir(work_root, arm, seed, root)
    hook = json.dumps([{"type": "GradientDiagnosticsHook", "epochs": [1 if which == "first" else epochs],
                        "save_maps": REPLAY_MAPS}])
    extra = [f"custom_hooks={hook}", f"train_cfg.val_begin={epochs + 1}",
             f"default_hooks.checkpoint.interval={epochs + 1}", "default_hooks.checkpoint.save_last=false"]
    if which == "first":
        extra.append("train_cfg.max_epochs=1")
    else:
        extra += ["resume=true", f"load_from={runs.relative(out / f'epoch_{epochs - 1}.pth', root)}"]
    return command(arm, seed, epochs=epochs, work_root=work_root, root=root,
                   work_dir=replay_dir(work_root, arm, seed, which, root), extra=extra, **kw)


def replay_dir(work_root, arm: str, seed: int, which: str, root=ROOT) -> pathlib.Path:
    """``<run dir>/gradients/<arm>-seed<s>-<which>``: a replay's work dir (its last component
    names the run in the committed tables' ``commands.csv``, so it carries arm and seed)."""
    return run_dir(work_root, arm, seed, root) / "gradients" / f"{arm}-seed{seed}-{which}"


def _iteration_means(result: dict) -> List[dict]:
    """Per recorded iteration of a hook's result: its number and the mean object gradient per
    COCO size (``None`` where that size has no object)."""
    return [dict(iter=r["iter"], **{name: v["mean"] for name, v in r["objects"].items()})
            for r in result["iterations"]]


def replay_gradients(arm: str, seed: int, *, epochs: int = SETTINGS["epochs"], work_root=SETTINGS["work_root"],
                     root=ROOT, log=print, **kw) -> dict:
    """Replay the first and the last epoch of the finished study run ``arm`` / ``seed`` with the
    gradient hook (:func:`replay_command`; a replay already done with the same command is
    reused) and write ``<run dir>/gradients.json``: the run's command and inputs, each replay's
    command and seconds, the average object gradient per COCO size of each replayed epoch
    (``epochs``: ``{"first": ..., "last": ...}``, the hook's ``object_gradient_by_epoch`` entry)
    and per iteration (``iterations``). Figs. 1/2 in the study (notebook 12); raises when the
    run is not finished or its checkpoint of epoch ``epochs - 1`` is gone."""
    out = run_dir(work_root, arm, seed, root)
    cmd = command(arm, seed, epochs=epochs, work_root=work_root, root=root, **kw)
    used = inputs(kw.get("init", SETTINGS["init"]), kw.get("pretrained", SETTINGS["pretrained"]), root)
    if state(out, cmd, used) != "finished":
        raise FileNotFoundError(f"{out}: no finished run of this setting to replay; train it first "
                                f"(python -m ugs.openmmlab.study run --arms {arm} --seeds {seed})")
    checkpoint = out / f"epoch_{epochs - 1}.pth"
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{checkpoint}: the last epoch is replayed from this checkpoint, which is "
                                "not here (the training tool keeps the last two epochs' checkpoints)")
    run = json.loads((out / "study_run.json").read_text(encoding="utf-8"))
    record = dict(arm=arm, seed=seed, run_command=run["command"], inputs=run.get("inputs", {}),
                  commands={}, seconds={}, epochs={}, iterations={})
    for which in ("first", "last"):
        rcmd, wd = replay_command(arm, seed, which, epochs=epochs, work_root=work_root, root=root, **kw), \
            replay_dir(work_root, arm, seed, which, root)
        done = wd / "gradient_diagnostics.json"
        if (done.is_file() and (wd / "command.txt").is_file()
                and differs(dict(command=(wd / "command.txt").read_text(encoding="utf-8")), rcmd, None) is None):
            log(f"[{arm} seed {seed}] {which} epoch replayed earlier: reused ({runs.relative(wd, root)})")
            result, seconds = json.loads(done.read_text(encoding="utf-8")), \
                json.loads((wd / "seconds.json").read_text(encoding="utf-8"))
        else:
            res = runs.train(f"{arm} seed {seed} {which} epoch", rcmd, wd, root, expect="gradient_diagnostics.json")
            (wd / "command.txt").write_text(shlex.join(rcmd), encoding="utf-8")
            (wd / "seconds.json").write_text(json.dumps(res["seconds"]), encoding="utf-8")
            result, seconds = res["result"], res["seconds"]
        key = "1" if which == "first" else str(epochs)
        if list(result["object_gradient_by_epoch"]) != [key]:
            raise RuntimeError(f"{done}: expected epoch {key} only, the hook recorded "
                               f"{sorted(result['object_gradient_by_epoch'])}")
        record["commands"][which] = shlex.join(rcmd)
        record["seconds"][which] = seconds
        record["epochs"][which] = result["object_gradient_by_epoch"][key]
        record["iterations"][which] = _iteration_means(result)
    (out / "gradients.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return record


def train_and_replay(arms: Sequence[str], seeds: Sequence[int], *, epochs: int, work_root, skip=None,
                     replay: bool = True, root=ROOT, **kw) -> None:
    """Train each arm and seed not in ``skip`` (``{arm: seeds}``) with :func:`run_one`, seed-major
    so that pairs complete early, and replay each run of :data:`GRADIENT_ARMS` right after it
    (:func:`replay_gradients`) unless ``replay`` is false. ``study run`` and notebook 12's
    ``study_train`` both do this."""
    skip = skip or {}
    todo = [(a, s) for s in seeds for a in arms if s not in skip.get(a, ())]
    for i, (arm, seed) in enumerate(todo, 1):
        print(f"({i}/{len(todo)})", end=" ", flush=True)
        run_one(arm, seed, epochs=epochs, work_root=work_root, root=root, **kw)
        if replay and arm in GRADIENT_ARMS:
            replay_gradients(arm, seed, epochs=epochs, work_root=work_root, root=root, **kw)


def check_notebook_setting(*, dataset, data_root, epochs, gpus, max_per_img, seed) -> tuple:
    """A training notebook's parameters in its ``study`` profile, whose setting is
    :data:`SETTINGS`: a ValueError names every parameter changed from its default (a changed
    value would be another study) and a seed outside the study's; else the study's
    ``(data_root, image_size, work_root)``, which the notebook uses instead of its own."""
    fixed = [n for n, v in (("dataset", dataset != "synthetic"), ("data_root", data_root is not None),
                            ("epochs", epochs not in (None, SETTINGS["epochs"])), ("gpus", gpus != 1),
                            ("max_per_img", max_per_img != SETTINGS["max_per_img"]))
             if v]
    if fixed:
        raise ValueError(f"profile 'study' has a fixed setting (ugs.openmmlab.study.SETTINGS); leave "
                         f"{', '.join(fixed)} at the default, or run another setting with "
                         "`python -m ugs.openmmlab.study run --work-root ...`")
    if seed not in SETTINGS["seeds"]:
        raise ValueError(f"profile 'study': seed must be one of the study's seeds {SETTINGS['seeds']}, got {seed!r}")
    return SETTINGS["data_root"], SETTINGS["image_size"], SETTINGS["work_root"]


def ensure_pretrained(pretrained=SETTINGS["pretrained"], root=ROOT, log=print) -> pathlib.Path:
    """The study's pretrained backbone (committed at :data:`SETTINGS`' path), made by ``python -m
    ugs.openmmlab.pretrain`` (~2-5 min on 2 cores) when it is missing; its path. Weights made on
    another machine differ in their last bits, so the archived runs do not count with them."""
    import subprocess

    path = runs.resolve(pretrained, root)
    if path.is_file():
        return path
    cmd = [sys.executable, "-m", "ugs.openmmlab.pretrain", "--out", runs.relative(path.parent, root),
           "--data-root", runs.relative(runs.resolve(SETTINGS["work_root"], root) / "pretrain_data", root)]
    log("$ " + shlex.join(cmd))
    made = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    log(made.stdout[-2000:])
    if made.returncode != 0 or not path.is_file():
        raise RuntimeError(f"pretraining failed (exit {made.returncode}), no {path}:\n{made.stderr[-3000:]}")
    return path


def seed_runs(arms: Sequence[str], seed: int, *, train_missing: bool, epochs: int = SETTINGS["epochs"],
              work_root=SETTINGS["work_root"], root=ROOT, log=print) -> Dict[str, dict]:
    """The study's finished runs of ``seed`` for ``arms``: ``{arm: study_run.json record plus
    work_dir}``, as a training notebook's study profile shows them. With ``train_missing`` every
    seed of every arm is run first (seed-major, :func:`run_one`: finished runs are skipped,
    stopped ones resume); the arms' seeds still unfinished are named through ``log``."""
    if train_missing:
        ensure_pretrained(root=root, log=log)
        for s in SETTINGS["seeds"]:
            for arm in arms:
                run_one(arm, s, epochs=epochs, work_root=work_root, root=root)
    done = finished(arms, work_root=work_root, epochs=epochs, root=root, log=log)   # their work dirs: no archive
    for arm in arms:
        left = [s for s in SETTINGS["seeds"] if s not in done.get(arm, {})]
        if left:
            log(f"{arm}: seed(s) {left} not finished under {runs.relative(runs.resolve(work_root, root), root)}")
    return {arm: dict(done[arm][seed], work_dir=run_dir(work_root, arm, seed, root))
            for arm in arms if seed in done.get(arm, {})}


def finished(arms: Sequence[str], *, work_root=SETTINGS["work_root"], epochs: int = SETTINGS["epochs"],
             seeds: Sequence[int] = SETTINGS["seeds"], archive=None, root=ROOT, log=print,
             **setting) -> Dict[str, Dict[int, dict]]:
    """``{arm: {seed: record}}`` of the finished runs of a setting (the study's unless
    ``setting`` gives ``init``, ``data_root``, ``image_size``): a record counts only when its
    command is the one :func:`run_one` would run now and its inputs are the files' now (when
    the pretrained weights are not on this machine, only the command is compared, and that is
    said through ``log``; the interpreter that ran the command is not compared); a record of
    another setting is named and left out. Runs come from
    ``work_root``; with ``archive`` (:data:`ARCHIVE`), its records fill the arms and seeds the
    work root lacks. Each record gains ``origin``: ``"work dir"`` or ``"archive"``."""
    init, pretrained = setting.get("init", SETTINGS["init"]), setting.get("pretrained", SETTINGS["pretrained"])
    try:
        used = inputs(init, pretrained, root)
    except FileNotFoundError:
        used = None
        log(f"{runs.relative(runs.resolve(pretrained, root), root)} is not here: the runs' recorded weights "
            "(their SHA-256) are not compared, only their commands")
    sources = [("work dir", {a: {int(json.loads(p.read_text(encoding="utf-8"))["seed"]): p
                                 for p in runs.resolve(work_root, root).glob(f"{a}-seed*/study_run.json")}
                             for a in arms})]
    if archive is not None:
        sources.append(("archive", {a: {int(p.stem.rsplit("-seed", 1)[1]): p
                                        for p in runs.resolve(archive, root).glob(f"{a}-seed*.json")
                                        if p.stem.rsplit("-seed", 1)[0] == a}
                                    for a in arms}))
    out: Dict[str, Dict[int, dict]] = {}
    for origin, found in sources:
        for arm in arms:
            for seed, path in sorted(found[arm].items()):
                if seed not in seeds or seed in out.get(arm, {}):
                    continue
                r = json.loads(path.read_text(encoding="utf-8"))
                want = command(arm, seed, epochs=epochs, work_root=work_root, root=root, **setting)
                why = differs(r, want, used)
                if why:
                    log(f"{runs.relative(path, root)}: left out ({why} than this setting's run: "
                        f"recorded {r.get('command')!r}, inputs {r.get('inputs')})")
                    continue
                out.setdefault(arm, {})[seed] = dict(r, origin=origin)
    return out


def archive_runs(arms: Sequence[str], *, work_root=SETTINGS["work_root"], archive=ARCHIVE, root=ROOT,
                 log=print, **kw) -> List[pathlib.Path]:
    """Copy the work root's finished runs of ``arms`` (:func:`finished`, the study's setting) to
    ``archive`` as ``<arm>-seed<s>.json``; an archived record of the same run with other metrics
    is replaced, and the change is said. Returns the files written."""
    folder = runs.resolve(archive, root)
    written = []
    for arm, by_seed in finished(arms, work_root=work_root, root=root, log=log, **kw).items():
        for seed, r in sorted(by_seed.items()):
            r = {k: v for k, v in r.items() if k != "origin"}
            path = folder / f"{arm}-seed{seed}.json"
            old = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
            if old == r:
                continue
            if old is not None:
                log(f"{runs.relative(path, root)}: replaced (metrics {old.get('metrics')} -> {r['metrics']})")
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(r, indent=2) + "\n", encoding="utf-8")
            written.append(path)
            log(f"archived {arm} seed {seed}: AP {100 * r['metrics']['AP']:.2f} -> {runs.relative(path, root)}")
    return written


def figure1_maps(arm: str, seed: int, *, work_root=SETTINGS["work_root"], root=ROOT) -> Dict[str, pathlib.Path]:
    """``{"first": npz, "last": npz}``: the gradient maps a replayed run keeps
    of the one training image recorded in both replayed epochs with the most small objects
    (COCO: area < 32^2 original-image pixels; ties: the first file name), the same image for
    every arm and seed of the study; ``{}`` when no image is in both."""
    import numpy as np

    def small_by_image(which):
        out = {}
        for f in sorted((replay_dir(work_root, arm, seed, which, root) / "gradient_maps").glob("*.npz")):
            with np.load(f) as z:
                out[pathlib.PurePath(str(z["img_path"])).name] = (int((z["object_areas"] < 32 ** 2).sum()), f)
        return out

    first, last = small_by_image("first"), small_by_image("last")
    both = sorted(set(first) & set(last), key=lambda name: (-first[name][0], name))
    return {"first": first[both[0]][1], "last": last[both[0]][1]} if both else {}


def archive_gradients(arms: Sequence[str], *, work_root=SETTINGS["work_root"], archive=GRADIENT_ARCHIVE,
                      root=ROOT, log=print, **kw) -> List[pathlib.Path]:
    """Copy the gradient replays (:func:`replay_gradients`) of the work root's finished runs of
    ``arms`` (those of :data:`GRADIENT_ARMS`) to ``archive``: ``<arm>-seed<s>.json`` and, in
    ``maps/``, both replayed epochs' maps of one image (:func:`figure1_maps`,
    ``<arm>-seed<s>-<first|last>.npz``). A replay of an older run than the finished one
    is named and left. Returns the files written."""
    folder = runs.resolve(archive, root)
    written = []
    for arm, by_seed in finished([a for a in arms if a in GRADIENT_ARMS], work_root=work_root, root=root,
                                 log=log, **kw).items():
        for seed, r in sorted(by_seed.items()):
            src = run_dir(work_root, arm, seed, root) / "gradients.json"
            if not src.is_file():
                log(f"{arm} seed {seed}: no gradient replay (python -m ugs.openmmlab.study replay --arms {arm} "
                    f"--seeds {seed})")
                continue
            g = json.loads(src.read_text(encoding="utf-8"))
            if differs(dict(command=g["run_command"], inputs=g["inputs"]), shlex.split(r["command"]),
                       r.get("inputs", {})):
                log(f"{runs.relative(src, root)}: left out (a replay of another run than the finished one)")
                continue
            files, before = {folder / f"{arm}-seed{seed}.json": src.read_bytes()}, len(written)
            for which, m in figure1_maps(arm, seed, work_root=work_root, root=root).items():
                files[folder / "maps" / f"{arm}-seed{seed}-{which}.npz"] = m.read_bytes()
            for path, data in files.items():
                if path.is_file() and path.read_bytes() == data:
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                written.append(path)
            if len(written) > before:
                log(f"archived {arm} seed {seed}'s gradient replay -> {runs.relative(folder, root)}")
    return written


def finished_gradients(arms: Sequence[str] = GRADIENT_ARMS, *, work_root=SETTINGS["work_root"],
                       epochs: int = SETTINGS["epochs"], seeds: Sequence[int] = SETTINGS["seeds"],
                       archive=GRADIENT_ARCHIVE, root=ROOT, log=print, **setting) -> Dict[str, Dict[int, dict]]:
    """``{arm: {seed: gradient replay record}}``: from the work root's runs, else from
    ``archive`` (``None``: the work root only); a record counts only when the run it replays is
    this setting's run (its command, :func:`differs`; its inputs when the weights are here),
    each record gaining ``origin``."""
    init, pretrained = setting.get("init", SETTINGS["init"]), setting.get("pretrained", SETTINGS["pretrained"])
    try:
        used = inputs(init, pretrained, root)
    except FileNotFoundError:
        used = None
    out: Dict[str, Dict[int, dict]] = {}
    for arm in arms:
        for seed in seeds:
            places = [("work dir", run_dir(work_root, arm, seed, root) / "gradients.json")]
            if archive is not None:
                places.append(("archive", runs.resolve(archive, root) / f"{arm}-seed{seed}.json"))
            want = command(arm, seed, epochs=epochs, work_root=work_root, root=root, **setting)
            for origin, path in places:
                if not path.is_file():
                    continue
                g = json.loads(path.read_text(encoding="utf-8"))
                why = differs(dict(command=g["run_command"], inputs=g["inputs"]), want, used)
                if why:
                    log(f"{runs.relative(path, root)}: left out (it replays {why} than this setting's run)")
                    continue
                out.setdefault(arm, {})[seed] = dict(g, origin=origin)
                break
    return out


def committed_pilot_seconds(path=PILOT_COST_LOG, root=ROOT) -> Dict[str, float]:
    """``{arm: seconds}`` of the 2-epoch cost pilots in the committed log ``path``: each arm's
    ``[<arm> seed 0] done in <N> s`` line (the study's setting; a log without such lines gives
    ``{}``)."""
    p = runs.resolve(path, root)
    if not p.is_file():
        return {}
    found = re.findall(r"^\[(\S+) seed 0\] done in (\d+(?:\.\d+)?) s\b", p.read_text(encoding="utf-8"), re.M)
    return {arm: float(sec) for arm, sec in found}


def collect(work_root, arms: Sequence[str] = tuple(ARMS), root=ROOT) -> Dict[str, Dict[int, dict]]:
    """``{arm: {seed: record}}`` of the finished runs under ``work_root``."""
    out: Dict[str, Dict[int, dict]] = {}
    for arm in arms:
        for record in sorted(runs.resolve(work_root, root).glob(f"{arm}-seed*/study_run.json")):
            r = json.loads(record.read_text(encoding="utf-8"))
            out.setdefault(arm, {})[int(r["seed"])] = r
    return out


def compare(results: Dict[str, Dict[int, dict]], comparisons=COMPARISONS, metrics=METRICS) -> List[dict]:
    """One row per comparison and metric (in AP points) with both arms over their common seeds
    (at least 2)."""
    rows = []
    for name, base, treat, what in comparisons:
        seeds = sorted(set(results.get(base, {})) & set(results.get(treat, {})))
        if len(seeds) < 2:
            continue
        for m in metrics:
            b = {s: 100 * float(results[base][s]["metrics"][m]) for s in seeds}    # metrics.json: fractions
            t = {s: 100 * float(results[treat][s]["metrics"][m]) for s in seeds}   # -> AP points
            rows.append(dict(comparison=name, baseline=base, treatment=treat, changes=what, metric=m,
                             **stats.paired_comparison(b, t)))
    return rows


def pilot_runs(work_root, arm: str = "fcos", root=ROOT, **setting) -> Dict[int, dict]:
    """``{schedule length: study_run.json record}`` of ``arm``'s finished pilots in a setting
    (``init``, ``data_root``, ``image_size``; the study's by default)."""
    out = {}
    where = runs.resolve(pilot_root(work_root, 1, **setting), root).parent
    prefix = "pt-" if setting.get("init", SETTINGS["init"]) == "pretrained" else ""
    for d in where.glob(f"{prefix}e[0-9]*"):
        if d.name[len(prefix) + 1:].isdigit():
            for rec in collect(d, [arm], root).get(arm, {}).values():
                out[int(rec["epochs"])] = rec
    return dict(sorted(out.items()))


def plot_curves(curves: Dict[str, List[float]], title: str, out=None):
    """Validation AP after each epoch, one line per label (the plateau's evidence); saved to
    ``out`` when given. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for label, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, label=label, linewidth=1.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation AP")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    if out is not None:
        fig.savefig(out, dpi=120)
    return fig


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ugs.openmmlab.study", description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=("plan", "run", "report", "archive", "replay", "pilot", "curves"),
                    help="pilot: one seed of each --arms for --epochs, its validation AP per epoch and "
                         "the plateau rule's epoch (stats.plateau_epoch, window 3, tol 0.5 AP); curves: "
                         "plot the first --arms' pilot curves of the setting to --out; archive: copy the "
                         f"work root's finished runs' records to {ARCHIVE} (committed: the kit's own runs) "
                         f"and their gradient replays to {GRADIENT_ARCHIVE}; replay: replay the first and last "
                         f"epoch of finished runs of {', '.join(GRADIENT_ARMS)} with the gradient hook (Figs. 1/2; "
                         "run does it after each such run)")
    ap.add_argument("--arms", nargs="+", default=None, choices=list(ARMS),
                    help="default: --table's arms, else all")
    ap.add_argument("--seeds", nargs="+", type=int, default=list(SETTINGS["seeds"]))
    ap.add_argument("--epochs", type=int, default=SETTINGS["epochs"])
    ap.add_argument("--work-root", default=SETTINGS["work_root"])
    ap.add_argument("--init", choices=INITS, default=SETTINGS["init"],
                    help="the backbone's start: the study's pretrained weights (default) or random")
    ap.add_argument("--data-root", default=SETTINGS["data_root"],
                    help="the synthetic set (``ugs data synth OUT [--image-size S]``)")
    ap.add_argument("--image-size", type=int, default=SETTINGS["image_size"])
    ap.add_argument("--table", choices=list(TABLES), default=None,
                    help="one study table: its arms (plan, run) and comparisons (report; required with --out)")
    ap.add_argument("--skip-archived", action="store_true",
                    help=f"run: do not train a run whose record in {ARCHIVE} is this setting's (the kit's "
                         "own study, continued); by default every run is trained here")
    ap.add_argument("--no-archive", action="store_true",
                    help=f"plan, report: only the work root's runs and replays, not those of {ARCHIVE} "
                         f"and {GRADIENT_ARCHIVE}")
    ap.add_argument("--no-replay", action="store_true",
                    help=f"run: no gradient replay after the runs of {', '.join(GRADIENT_ARMS)}; "
                         "plan: do not price those replays")
    ap.add_argument("--out", default=None, help="report: write the table (papers_tables schema) to this CSV; "
                                               "curves: the figure")
    args = ap.parse_args(argv)
    if args.action == "report" and args.out and not args.table:
        ap.error("--out needs --table (table1 or table6)")
    if args.arms is None:
        args.arms = list(TABLES[args.table]["arms"] if args.table else ARMS)
    setting = dict(init=args.init, data_root=args.data_root, image_size=args.image_size)

    def note(message):
        print(f"note: {message}", file=sys.stderr)

    default = {k: SETTINGS[k] for k in setting}
    if args.action == "run" and setting != default and args.work_root == SETTINGS["work_root"]:
        # a changed command restarts a run from scratch: the study's finished runs would be lost
        ap.error(f"--work-root: runs with another setting than the study's {default} need a "
                 f"work root of their own, not {SETTINGS['work_root']}")
    if args.action in ("run", "pilot"):
        check_pretrained(args.init)
        try:   # the synthetic set at the setting's size: generated when missing (seconds)
            runs.ensure_synthetic(runs.resolve(args.data_root, ROOT), ROOT, args.image_size)
        except ValueError as err:
            ap.error(f"--data-root / --image-size: {err}")
    if args.action == "curves":
        if not args.out:
            ap.error("curves needs --out FILE.png")
        import matplotlib
        matplotlib.use("Agg")     # a file, no window
        found = {e: rec["curve"] for e, rec in pilot_runs(args.work_root, args.arms[0], **setting).items()
                 if e >= 12}     # the 2-epoch cost pilots say nothing of a plateau
        if not found:
            raise SystemExit(f"no finished {args.arms[0]} pilot in this setting under {args.work_root}/pilot")
        plot_curves({f"{e} epochs": c for e, c in found.items()},
                    f"{args.arms[0]} seed 0, {args.image_size} px, {args.init} backbone: pilots",
                    runs.resolve(args.out, ROOT))
        print(f"{args.out}: {', '.join(f'{e} epochs' for e in found)}")
        return 0
    archive = None if args.no_archive else ARCHIVE
    if args.action == "plan":
        done = finished(args.arms, work_root=args.work_root, epochs=args.epochs, seeds=args.seeds,
                        archive=archive, log=note, **setting)
        replay_arms = [] if args.no_replay else [a for a in args.arms if a in GRADIENT_ARMS]
        replays = finished_gradients(replay_arms, work_root=args.work_root, epochs=args.epochs, seeds=args.seeds,
                                     archive=None if archive is None else GRADIENT_ARCHIVE,
                                     log=note, **setting) if replay_arms else {}
        total = 0.0
        committed = committed_pilot_seconds(PILOT_COST_LOG) if setting == default else {}
        elsewhere = False   # an arm priced by the committed pilot: another machine's speed
        for arm in args.arms:
            n = len(done.get(arm, {}))
            archived = sum(r["origin"] == "archive" for r in done.get(arm, {}).values())
            secs = [r["seconds"] for r in done.get(arm, {}).values() if r.get("seconds")]
            left = len(args.seeds) - n
            short = collect(pilot_root(args.work_root, 2, **setting), [arm]).get(arm, {})
            if secs:
                per_run = sum(secs) / len(secs)
                cost = f"{per_run / 60:.1f} min per run (measured)"
            elif short:   # the 2-epoch cost pilot, scaled: start-up counted every epoch, so a little high
                per_run = next(iter(short.values()))["seconds"] * args.epochs / 2
                cost = f"~{per_run / 60:.1f} min per run (its 2-epoch pilot x {args.epochs / 2:g})"
            elif arm in committed:   # no run or pilot on this machine: session 10's pilot, committed
                per_run = committed[arm] * args.epochs / 2
                elsewhere = elsewhere or left > 0     # counted in the total below
                cost = (f"~{per_run / 60:.1f} min per run (its committed 2-epoch pilot x {args.epochs / 2:g}, "
                        f"another machine: {PILOT_COST_LOG})")
            else:
                per_run, cost = None, "cost not measured (python -m ugs.openmmlab.study pilot --epochs 2)"
            total = None if total is None or (per_run is None and left) else total + (per_run or 0) * left
            if arm in replay_arms:   # Figs. 1/2: each run's two replayed epochs
                replayed = replays.get(arm, {})
                # an archived run without its replay cannot be replayed here (its checkpoints stayed
                # on the machine that trained it): named, not priced
                lost = sorted(s_ for s_, r in done.get(arm, {}).items() if r["origin"] == "archive" and s_ not in replayed)
                rsecs = [sum(g["seconds"].values()) for g in replayed.values() if g.get("seconds")]
                if rsecs:
                    per_replay = sum(rsecs) / len(rsecs)
                    cost += f" + {per_replay / 60:.1f} min per replay (measured; {len(replayed)} replayed)"
                    if total is not None:
                        total += per_replay * (len(args.seeds) - len(replayed) - len(lost))
                else:
                    cost += " + its replay (cost not measured yet, ~1.5 min on 2 cores; not counted below)"
                if lost:
                    cost += f"; seed(s) {lost} archived without a replay (not replayable without training again)"
            print(f"{arm:22s} {n}/{len(args.seeds)} seeds finished" + (f" ({archived} in the archive)" if archived
                                                                       else "") + f"; {cost}; {ARMS[arm]}")
        print("left to run: " + (f"~{total / 3600:.1f} h on this machine" if total is not None
                                 else "unknown (an arm's cost is not measured)")
              + (" (some arms priced by another machine's pilot: machines differ 1.3-3x)"
                 if elsewhere and total is not None else "")
              + ("" if archive is None else " (archived runs counted as finished: `run --skip-archived`)"))
        return 0
    if args.action == "pilot":
        for arm in args.arms:
            r = run_one(arm, args.seeds[0], epochs=args.epochs, **setting,
                        work_root=pilot_root(args.work_root, args.epochs, **setting))
            e = stats.plateau_epoch(r["curve"], window=PLATEAU["window"], tol=PLATEAU["tol"])
            print(f"{arm}: validation AP per epoch {' '.join(f'{v:.1f}' for v in r['curve'])}; per-epoch rule: "
                  + (f"plateau at epoch {e}" if e else f"no plateau in {args.epochs} epochs")
                  + f"; {r['seconds'] / 60:.1f} min")
            finals = {e: 100 * rec["metrics"]["AP"]   # metrics.json: a fraction
                      for e, rec in pilot_runs(args.work_root, arm, **setting).items()}
            s = stats.schedule_plateau(finals, tol=SCHEDULE_TOL)
            print(f"{arm}: final AP by schedule length {finals}; schedule rule (tol {SCHEDULE_TOL} AP): "
                  + (f"{s} epochs are enough" if s else "no schedule is long enough yet"))
        return 0
    if args.action == "archive":
        if setting != default or args.epochs != SETTINGS["epochs"]:
            ap.error(f"archive keeps the study's own runs ({default}, {SETTINGS['epochs']} epochs) only")
        written = archive_runs(args.arms, work_root=args.work_root, seeds=args.seeds)
        print(f"{len(written)} record(s) written to {ARCHIVE}" + ("" if written else " (all there already)"))
        written = archive_gradients(args.arms, work_root=args.work_root, seeds=args.seeds)
        print(f"{len(written)} file(s) of gradient replays written to {GRADIENT_ARCHIVE}"
              + ("" if written else " (none new)"))
        return 0
    if args.action == "replay":
        arms = [a for a in args.arms if a in GRADIENT_ARMS]
        if not arms:
            ap.error(f"--arms: replay is for {', '.join(GRADIENT_ARMS)}")
        for arm in arms:
            for seed in args.seeds:
                g = replay_gradients(arm, seed, epochs=args.epochs, work_root=args.work_root, **setting)
                print(f"{arm} seed {seed}: " + "; ".join(
                    f"{which} epoch " + ", ".join(f"{n} {v['mean']:.4g}" for n, v in g["epochs"][which].items()
                                                  if v["mean"] is not None)
                    for which in ("first", "last")))
        return 0
    if args.action == "run":
        archived = {}
        if args.skip_archived:
            archived = {a: {s for s, r in by_seed.items() if r["origin"] == "archive"} for a, by_seed in finished(
                args.arms, work_root=args.work_root, epochs=args.epochs, seeds=args.seeds, archive=ARCHIVE,
                log=note, **setting).items()}
            for a, seeds in archived.items():
                if seeds:  # a seed whose work dir is here is skipped as "finished earlier" below
                    print(f"{a}: seed(s) {sorted(seeds)} archived ({ARCHIVE}): skipped", flush=True)
        train_and_replay(args.arms, args.seeds, epochs=args.epochs, work_root=args.work_root, skip=archived,
                         replay=not args.no_replay, **setting)
        return 0
    results = finished(args.arms, work_root=args.work_root, epochs=args.epochs, seeds=args.seeds,
                       archive=archive, log=note, **setting)
    if args.out:
        from ..papers import write_table
        records = table_records(results, args.table, dataset=f"synthetic {args.image_size} px")
        if not records:
            raise SystemExit(f"no finished run of table {args.table}'s arms under {args.work_root}")
        print(f"{write_table(records, runs.resolve(args.out, ROOT))}: {len(records)} records", flush=True)
    rows = []
    for name in ([args.table] if args.table else list(TABLES)):
        for r in compare(results, TABLES[name]["comparisons"]):
            paper = paper_difference(name, r["baseline"], r["treatment"], r["metric"])
            rows.append(r)
            print(f"{r['comparison']:28s} {r['metric']:4s} n={r['n']}  {r['baseline_mean']:6.2f}+-{r['baseline_sd']:.2f} -> "
                  f"{r['treatment_mean']:6.2f}+-{r['treatment_sd']:.2f}  diff {r['diff_mean']:+.2f} "
                  f"[{r['ci_low']:+.2f}, {r['ci_high']:+.2f}]  detectable {r['detectable']:.2f}  paper "
                  + ("-" if paper is None else f"{paper:+.2f}") + f"  {verdict(paper, r['ci_low'], r['ci_high'])}")
    if not rows:
        print("no comparison has 2 finished seeds in both arms yet", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
