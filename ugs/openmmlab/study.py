"""The CPU study (issue 16): the quick profile's setting trained to a plateau with several
seeds per arm, the arms paired by seed, every comparison with its interval.

    python -m ugs.openmmlab.study plan                      # arms, runs, the estimated cost
    python -m ugs.openmmlab.study run [--arms fcos fcos_ugs] [--seeds 0 1 2 3 4]
    python -m ugs.openmmlab.study report                    # the paired comparisons
    python -m ugs.openmmlab.study pilot --arms fcos --epochs 24   # where the baseline plateaus

Every run is one command of the training tool (``python -m ugs.openmmlab.train``), the quick
profile with ``--epochs`` and ``--seed`` and, by default (``--init pretrained``), the backbone
initialised from the study's pretrained ResNet-18 (``python -m ugs.openmmlab.pretrain``, the same
weights for every arm: the paper's runs start from ImageNet weights, which cannot be downloaded
here), in its own work dir ``<work_root>/<arm>/seed<s>``
(the merged config, the log, checkpoints, ``metrics.json``). A run is *finished* when its
``study_run.json`` records the same command: ``run`` skips it. A run that stopped part-way
(its ``command.txt`` is the same command and mmengine left a ``last_checkpoint``) continues
from its last epoch with the tool's ``--resume``; anything else starts from scratch. So the
study can be completed over several sittings, and changing a setting re-runs exactly the
runs it changes.

Standard library only at import; the statistics are :mod:`ugs.stats`.
"""
from __future__ import annotations

import argparse
import json
import pathlib
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

#: the study's setting: the quick profile (ResNet-18, 256 px, 4 images per step) on
#: the kit's synthetic set, longer. ``epochs`` is fixed from the pilot's plateau (see ``plan``).
SETTINGS = dict(profile="quick", data_root="data/synthetic", epochs=12, image_size=256, max_per_img=500,
                seeds=(0, 1, 2, 3, 4), work_root="work_dirs/study", init="pretrained",
                pretrained="work_dirs/study/pretrained/resnet18_synthetic.pth")
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


def command(arm: str, seed: int, *, epochs: int, work_root, root=ROOT, data_root=SETTINGS["data_root"],
            image_size: int = SETTINGS["image_size"], init: str = SETTINGS["init"],
            pretrained=SETTINGS["pretrained"]) -> List[str]:
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; arms: {', '.join(ARMS)}")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    options = []
    if init == "pretrained":   # the quick profile's backbone has init_cfg=None: replace it
        options = ["model.backbone.init_cfg._delete_=true", "model.backbone.init_cfg.type=Pretrained",
                   f"model.backbone.init_cfg.checkpoint={runs.relative(runs.resolve(pretrained, root), root)}"]
    return runs.train_command(ARMS[arm], root=root, profile="quick", data_root=runs.resolve(data_root, root),
                              work_dir=run_dir(work_root, arm, seed, root), epochs=epochs, seed=seed,
                              max_per_img=SETTINGS["max_per_img"], image_size=image_size, options=options)


def pilot_root(work_root, epochs: int, init: str = SETTINGS["init"], data_root=SETTINGS["data_root"],
               image_size: int = SETTINGS["image_size"]) -> str:
    """Where a pilot of ``epochs`` runs: ``<work_root>/pilot/e<epochs>`` from scratch,
    ``<work_root>/pilot/pt-e<epochs>`` from the pretrained backbone, in a folder of its own
    (``<work_root>/pilot/<data folder>-<image size>/...``) for another data set or image size."""
    setting = ""
    if (str(data_root), int(image_size)) != (SETTINGS["data_root"], SETTINGS["image_size"]):
        setting = f"{pathlib.PurePath(str(data_root)).name}-{int(image_size)}/"
    return f"{work_root}/pilot/{setting}{'pt-' if init == 'pretrained' else ''}e{epochs}"


def _check_pretrained(init: str, pretrained=SETTINGS["pretrained"], root=ROOT) -> None:
    path = runs.resolve(pretrained, root)
    if init == "pretrained" and not path.is_file():
        raise SystemExit(f"{path}: the study's pretrained backbone is missing; make it with "
                         "`python -m ugs.openmmlab.pretrain` (~5 min) or pass --init scratch")


def run_dir(work_root, arm: str, seed: int, root=ROOT) -> pathlib.Path:
    return runs.resolve(work_root, root) / arm / f"seed{seed}"


def state(work_dir: pathlib.Path, cmd: Sequence[str]) -> str:
    """``finished``, ``partial`` (resumable: same command, a checkpoint) or ``new``."""
    text = shlex.join(cmd)
    record = work_dir / "study_run.json"
    if record.is_file() and json.loads(record.read_text(encoding="utf-8")).get("command") == text:
        return "finished"
    started = work_dir / "command.txt"
    if started.is_file() and started.read_text(encoding="utf-8") == text and (work_dir / "last_checkpoint").is_file():
        return "partial"
    return "new"


def curve(work_dir: pathlib.Path, metric: str = "visdrone/AP") -> List[float]:
    """Validation ``metric`` after each epoch, over every sitting of the run (mmengine logs a
    resumed run into a new timestamped folder; a later sitting's value for an epoch wins)."""
    from .train import read_scalars   # standard library only at import

    by_epoch: Dict[int, float] = {}
    for scalars in sorted(work_dir.glob("*/vis_data/scalars.json")):
        for e in read_scalars(str(scalars.parent.parent)):
            if metric in e:   # a validation entry: its step is the epoch
                by_epoch[int(e["step"])] = float(e[metric])
    return [by_epoch[k] for k in sorted(by_epoch)]


def run_one(arm: str, seed: int, *, epochs: int, work_root, root=ROOT, **kw) -> dict:
    """Run (or skip, or resume) one arm and seed; returns its ``study_run.json`` record."""
    cmd = command(arm, seed, epochs=epochs, work_root=work_root, root=root, **kw)
    out = run_dir(work_root, arm, seed, root)
    st = state(out, cmd)
    if st == "finished":
        print(f"[{arm} seed {seed}] finished earlier: skipped", flush=True)
        return json.loads((out / "study_run.json").read_text(encoding="utf-8"))
    if st == "new" and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "command.txt").write_text(shlex.join(cmd), encoding="utf-8")
    run = runs.train(f"{arm} seed {seed}", cmd + (["--resume"] if st == "partial" else []), out, root,
                     fresh=False)
    record = dict(command=shlex.join(cmd), arm=arm, seed=seed, epochs=epochs, seconds=run["seconds"],
                  resumed=st == "partial", metrics=run["metrics"], curve=curve(out),
                  finished=time.strftime("%Y-%m-%d %H:%M:%S"))
    (out / "study_run.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def collect(work_root, arms: Sequence[str] = tuple(ARMS), root=ROOT) -> Dict[str, Dict[int, dict]]:
    """``{arm: {seed: record}}`` of the finished runs under ``work_root``."""
    out: Dict[str, Dict[int, dict]] = {}
    for arm in arms:
        for record in sorted((runs.resolve(work_root, root) / arm).glob("seed*/study_run.json")):
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


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ugs.openmmlab.study", description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=("plan", "run", "report", "pilot"),
                    help="pilot: one seed of each --arms for --epochs, its validation AP per epoch and "
                         "the plateau rule's epoch (stats.plateau_epoch, window 3, tol 0.5 AP)")
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    ap.add_argument("--seeds", nargs="+", type=int, default=list(SETTINGS["seeds"]))
    ap.add_argument("--epochs", type=int, default=SETTINGS["epochs"])
    ap.add_argument("--work-root", default=SETTINGS["work_root"])
    ap.add_argument("--init", choices=INITS, default=SETTINGS["init"],
                    help="the backbone's start: the study's pretrained weights (default) or random")
    ap.add_argument("--data-root", default=SETTINGS["data_root"],
                    help="the synthetic set (``ugs data synth OUT [--image-size S]``)")
    ap.add_argument("--image-size", type=int, default=SETTINGS["image_size"])
    args = ap.parse_args(argv)
    if args.action in ("run", "pilot"):
        _check_pretrained(args.init)
    setting = dict(init=args.init, data_root=args.data_root, image_size=args.image_size)
    default = {k: SETTINGS[k] for k in setting}
    if args.action == "run" and setting != default and args.work_root == SETTINGS["work_root"]:
        # a changed command restarts a run from scratch: the study's finished runs would be lost
        ap.error(f"--work-root: runs with another setting than the study's {default} need a "
                 f"work root of their own, not {SETTINGS['work_root']}")
    if args.action == "plan":
        done = collect(args.work_root, args.arms)
        for arm in args.arms:
            n = sum(state(run_dir(args.work_root, arm, s), command(arm, s, epochs=args.epochs, work_root=args.work_root,
                                                                   **setting)) == "finished"
                    for s in args.seeds)
            secs = [r["seconds"] for r in done.get(arm, {}).values() if r["epochs"] == args.epochs]
            cost = f"{sum(secs) / len(secs) / 60:.1f} min per run (measured)" if secs else "cost not measured yet"
            print(f"{arm:22s} {n}/{len(args.seeds)} seeds finished; {cost}; {ARMS[arm]}")
        return 0
    if args.action == "pilot":
        for arm in args.arms:
            r = run_one(arm, args.seeds[0], epochs=args.epochs, **setting,
                        work_root=pilot_root(args.work_root, args.epochs, **setting))
            e = stats.plateau_epoch(r["curve"], window=PLATEAU["window"], tol=PLATEAU["tol"])
            print(f"{arm}: validation AP per epoch {' '.join(f'{v:.1f}' for v in r['curve'])}; per-epoch rule: "
                  + (f"plateau at epoch {e}" if e else f"no plateau in {args.epochs} epochs")
                  + f"; {r['seconds'] / 60:.1f} min")
            here = runs.resolve(pilot_root(args.work_root, args.epochs, **setting), ROOT).parent
            finals = {int(d.name.split("e")[-1]): 100 * rec["metrics"]["AP"]   # metrics.json: a fraction
                      for d in here.glob(("pt-" if args.init == "pretrained" else "") + "e[0-9]*")
                      for rec in collect(d, [arm]).get(arm, {}).values()}
            s = stats.schedule_plateau(finals, tol=SCHEDULE_TOL)
            print(f"{arm}: final AP by schedule length {finals}; schedule rule (tol {SCHEDULE_TOL} AP): "
                  + (f"{s} epochs are enough" if s else "no schedule is long enough yet"))
        return 0
    if args.action == "run":
        todo = [(a, s) for s in args.seeds for a in args.arms]   # seed-major: pairs complete early
        for i, (arm, seed) in enumerate(todo, 1):
            print(f"({i}/{len(todo)})", end=" ", flush=True)
            run_one(arm, seed, epochs=args.epochs, work_root=args.work_root, **setting)
        return 0
    rows = compare(collect(args.work_root, args.arms))
    for r in rows:
        print(f"{r['comparison']:28s} {r['metric']:4s} n={r['n']}  {r['baseline_mean']:6.2f}+-{r['baseline_sd']:.2f} -> "
              f"{r['treatment_mean']:6.2f}+-{r['treatment_sd']:.2f}  diff {r['diff_mean']:+.2f} "
              f"[{r['ci_low']:+.2f}, {r['ci_high']:+.2f}]  detectable {r['detectable']:.2f}")
    if not rows:
        print("no comparison has 2 finished seeds in both arms yet", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
