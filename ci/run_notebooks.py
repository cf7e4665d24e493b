"""Execute the kit's notebooks headless with papermill, and commit or regress their tables.

    python ci/run_notebooks.py --out outputs/main            # every notebook, main parameter set
    python ci/run_notebooks.py 02 --out /tmp/o -p rho 1.0    # one notebook, a parameter changed
    python ci/run_notebooks.py --update-committed            # regenerate notebooks/*.ipynb and
                                                             # papers_tables/measured/*.csv
    python ci/run_notebooks.py --tier ci --update-committed  # regenerate tests/notebooks/*.ipynb
                                                             # and papers_tables/measured/ci/*.csv
    python ci/run_notebooks.py --tier study --update-committed   # the CPU study's tables from its
                                                             # finished runs -> measured/study/

Two parameter sets ("tiers") of the same notebooks:

* ``main``: each notebook's own defaults (its quick profile on the CPU). The main job
  (``bash ci/main.sh``) runs it; the committed copies are ``notebooks/NN.ipynb`` (what a user
  opens) and the tables in ``papers_tables/measured/``.
* ``ci``: the defaults changed by :data:`CI_TIER` below (fewer rows, images or iterations), small
  enough for the test command to re-execute every notebook. The committed copies are
  ``tests/notebooks/NN.ipynb`` (executed with the ``ci`` parameters injected; nbval re-executes
  them in ``bash ci/test.sh``) and the tables in ``papers_tables/measured/ci/``.
* ``study``: the notebooks with a CPU study section (:data:`STUDY_TIER`), in the ``study``
  profile. Notebooks 03 and 09 report the study's finished runs (``ugs.openmmlab.study``; training
  them takes hours: ``python -m ugs.openmmlab.study run`` or the notebook with ``-p profile
  study``), notebook 12 their gradient replays (Figs. 1/2); notebook 11 trains its Fig. 6 study
  itself (10 runs of 100 iterations, ~22 min). Only the tables are committed, to
  ``papers_tables/measured/study/``; the executed notebook goes to ``outputs/study/``. Never part of the main job or CI.

The ``.py`` twin (jupytext py:percent) is the source: each run first builds the notebook from
it, so an unsynced ``.ipynb`` never runs. Each notebook NAME gets ``output_dir`` OUT/NAME
(figures, tables) and its executed copy is written to OUT/NAME.ipynb; its measured tables are
then compared with the committed ones of its tier (``ugs.measured``), the differences beyond
the stated tolerances printed and written to OUT/regression.txt (``--check``: and the run
fails). ``--update-committed`` executes, then writes the committed notebook and tables: the
only way they change. Execution metadata that changes on every run is stripped, so a committed
file changes only when its content does.
"""
from __future__ import annotations

import argparse
import ast
import json
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
CI_NOTEBOOKS = ROOT / "tests" / "notebooks"
sys.path.insert(0, str(ROOT))

from ugs import measured  # noqa: E402  (standard library only)
from ugs import reproducible  # noqa: E402  (standard library only)
from ugs.openmmlab.runs import resolve as _resolve  # noqa: E402  (standard library only)

#: The test command's parameter set: each notebook's defaults changed as below (and
#: ``output_dir`` / ``work_dir`` moved under ``outputs/ci`` / ``work_dirs/ci``). Chosen so that
#: every notebook still runs every code path it has in the main set, and the central
#: comparison (FCOS vs FCOS w/ UGS) keeps the main set's schedule. Times: README.
CI_TIER = {
    "01_gradient_instability": {},
    "02_ugs_components": {},
    "03_visdrone_detectors": {},                                     # the main set: the 3 FCOS rows, 3 epochs
    "04_visdrone_dino": {"profile": "quick"},                        # the main set: both rows, 8 steps each
    "05_visdrone_yolo": {},                                          # the main set: both rows, 10 steps each
    "06_soda_a_rotated": {},                                         # the main set: 2 runs of 10 steps
    "07_voc_coco": {},                                               # the main set: 4 runs of 10 steps
    "08_training_cost": {"repeats": 2, "warmup": 1},                 # timings are excluded from the check
    "09_ablation": {"rows": ["l2_baseline", "ce_in_um_ur_l0.5_g0.5_r0.5"], "train_images": 24},
    "10_grid_parameters": {"points": ["rcnn_grid_n10"], "train_images": 24},
    "11_gradient_variance": {"iters": 8, "seeds": [0]},
    "12_gradient_maps": {"epochs": 2, "train_images": 16},
}


#: The study tier's parameter set: the notebooks with a study section, in the study profile;
#: 03 reports the finished runs only (a run not finished yet is named, not trained), 11 trains
#: its ten short runs (~22 min), 12 reads the gradient replays of the finished L2 / UGS runs
#: (the work dir's, else the committed ones; it replays a finished run of this machine that has
#: none yet, ~1.5 min each, and trains nothing)
STUDY_TIER = {
    "03_visdrone_detectors": {"profile": "study", "study_train": False},
    "09_ablation": {"profile": "study", "study_train": False},
    "11_gradient_variance": {"profile": "study"},
    "12_gradient_maps": {"profile": "study", "study_train": False},
}


def discover(selectors):
    """Notebook sources in order; a selector matches a name's prefix ('02') or the name."""
    sources = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
    if not selectors:
        return sources
    chosen = []
    for sel in selectors:
        hits = [p for p in sources if p.stem == sel or p.stem.startswith(sel)]
        if not hits:
            names = ", ".join(p.stem for p in sources)
            raise SystemExit(f"run_notebooks: no notebook matches {sel!r}; have: {names}")
        chosen.extend(h for h in hits if h not in chosen)
    return chosen


def tier_parameters(name: str, tier: str) -> dict:
    """The parameters injected for notebook ``name`` in ``tier`` (none for ``main``)."""
    if tier == "main":
        return {}
    if tier == "study":
        if name not in STUDY_TIER:
            raise SystemExit(f"run_notebooks: {name} has no study section; the study tier runs "
                             f"{', '.join(STUDY_TIER)}")
        return {**STUDY_TIER[name], "output_dir": f"outputs/study/{name}"}
    if name not in CI_TIER:
        raise SystemExit(f"run_notebooks: {name} has no entry in CI_TIER (ci/run_notebooks.py)")
    return {**CI_TIER[name], "output_dir": f"outputs/ci/{name}", "work_dir": f"work_dirs/ci/{name}"}


def clean_execution_metadata(nb) -> None:
    """Drop what papermill adds that changes on every run (timings, empty tag lists), and give
    the notebook the jupytext settings of ``notebooks/jupytext.toml``: JupyterLab's jupytext
    opens a pair whose .ipynb is newer than its .py (any order a ``git clone`` writes them in)
    only when both files, written as py:percent, are the same text, header included."""
    import tomllib

    config = tomllib.loads((NOTEBOOKS / "jupytext.toml").read_text(encoding="utf-8"))
    jt = nb.metadata.setdefault("jupytext", {})
    jt.update({k: config[k] for k in ("formats", "cell_metadata_filter") if k in config})
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.metadata.get("tags") == []:
            del cell.metadata["tags"]


def keep_checked_outputs_only(nb) -> None:
    """The CI copy keeps the outputs nbval compares (cells marked ``# NBVAL_CHECK_OUTPUT``);
    figures and logs of the other cells would only bloat the repository."""
    for cell in nb.cells:
        if cell.cell_type == "code" and not cell.source.startswith("# NBVAL_CHECK_OUTPUT"):
            cell.outputs = []


def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def run_one(source: pathlib.Path, target: pathlib.Path, parameters: dict, profile: str | None) -> dict:
    """Execute ``source`` into ``target``; return the notebook's parameter defaults."""
    import jupytext
    import nbformat
    import papermill as pm

    nb = jupytext.read(source)
    for i, cell in enumerate(nb.cells):   # stable ids: a re-run changes only what changed
        cell.id = f"cell-{i:03d}"
    with tempfile.TemporaryDirectory() as tmp:
        generated = pathlib.Path(tmp) / (source.stem + ".ipynb")
        jupytext.write(nb, generated)
        known = pm.inspect_notebook(str(generated))
        params = dict(parameters)
        if profile is not None and "profile" in known:
            params.setdefault("profile", profile)
        if "work_dir" not in known:    # the ci tier moves work dirs of notebooks that have one
            params.pop("work_dir", None)
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise SystemExit(f"run_notebooks: {source.name} has no parameter(s) {unknown}; "
                             f"its parameters are {sorted(known)}")
        pm.execute_notebook(str(generated), str(target), parameters=params or None,
                            cwd=str(NOTEBOOKS), progress_bar=sys.stderr.isatty(),
                            log_output=False)
    executed = nbformat.read(target, as_version=4)
    clean_execution_metadata(executed)
    nbformat.write(executed, target)
    return {k: ast.literal_eval(v["default"]) for k, v in known.items()
            if k in ("output_dir", "work_dir")}


def resolve(path) -> pathlib.Path:
    """A path as given, relative ones taken from the repository root."""
    return _resolve(path, ROOT)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="*", help="names or number prefixes (default: all)")
    ap.add_argument("--tier", choices=measured.TIERS, default="main",
                    help="parameter set: main (the notebooks' defaults; the main job), ci "
                         "(CI_TIER, what the test command re-executes) or study (STUDY_TIER: the "
                         "CPU study's finished runs); default main")
    ap.add_argument("--out", default=None, help="output folder (default outputs/main, or "
                    "outputs/ci-run / outputs/study-run for --tier ci / study)")
    ap.add_argument("--profile", default="quick", help="value for a notebook's `profile` "
                    "parameter where it has one and the tier does not set it (default quick)")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                    metavar=("NAME", "VALUE"), help="extra papermill parameter (JSON value)")
    ap.add_argument("--update-committed", action="store_true",
                    help="execute the tier's parameter set and write its committed notebooks "
                         "and measured tables")
    ap.add_argument("--check", action="store_true",
                    help="exit non-zero when a measured table differs from the committed one "
                         "beyond tolerance")
    args = ap.parse_args(argv)
    if args.update_committed and args.parameter:
        raise SystemExit("run_notebooks: --update-committed runs the tier's own parameters; "
                         "drop -p (or change CI_TIER / the notebook's defaults)")

    reproducible.set_environment()  # kernels and their trainings inherit it; a value set by the
                                    # caller wins (e.g. to measure its effect)
    sources = discover(args.notebooks or (list(STUDY_TIER) if args.tier == "study" else []))
    if args.update_committed:
        out = None
    else:
        out = resolve(args.out or {"main": "outputs/main", "ci": "outputs/ci-run",
                                   "study": "outputs/study-run"}[args.tier]).resolve()
        out.mkdir(parents=True, exist_ok=True)
    tolerances = measured.load_tolerances()
    summary, failed, regressions = [], [], []
    for i, source in enumerate(sources, 1):
        name = source.stem
        params = {**tier_parameters(name, args.tier),
                  **{k: parse_value(v) for k, v in args.parameter}}
        if args.update_committed:
            target = {"main": NOTEBOOKS, "ci": CI_NOTEBOOKS,
                      "study": ROOT / "outputs" / "study"}[args.tier] / f"{name}.ipynb"
            profile = None if args.tier != "ci" else args.profile
        else:
            target, profile = out / f"{name}.ipynb", args.profile
            params["output_dir"] = str(out / name)
        target.parent.mkdir(parents=True, exist_ok=True)
        print(f"[{i}/{len(sources)}] {name} ({args.tier}) -> "
              f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}", flush=True)
        start = time.perf_counter()
        entry = dict(notebook=name, tier=args.tier)
        try:
            defaults = run_one(source, target, params, profile)
            status = "ok"
        except Exception as exc:  # papermill raises PapermillExecutionError with the cell
            status = f"failed: {type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
            failed.append(name)
            print(str(exc), file=sys.stderr)
        seconds = time.perf_counter() - start
        print(f"    {status} in {seconds:.1f} s", flush=True)
        if status == "ok":
            table_dir = resolve(params.get("output_dir", defaults.get("output_dir", "")))
            if args.update_committed:
                import nbformat
                if args.tier == "ci":
                    nb = nbformat.read(target, as_version=4)
                    keep_checked_outputs_only(nb)
                    nbformat.write(nb, target)
                for path in measured.commit_tables(name, table_dir, args.tier):
                    print(f"    committed {path.relative_to(ROOT)}", flush=True)
            elif measured.tables_of(name, args.tier):
                try:
                    diffs = measured.compare_notebook(name, table_dir, args.tier, tolerances)
                except FileNotFoundError as exc:
                    diffs, entry["regression_error"] = [], str(exc)
                    print(f"    regression: {exc}", flush=True)
                    regressions.append(f"{name}: {exc}")
                else:
                    print("    regression: " + measured.report(diffs).replace("\n", "\n    "), flush=True)
                    regressions += [f"{name}: {d.message()}" for d in diffs]
                entry["differences"] = [d.message() for d in diffs]
        summary.append(dict(entry, status=status, seconds=round(seconds, 1), executed=str(target)))
    if out is not None:
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        (out / "regression.txt").write_text(
            (f"{len(regressions)} difference(s) from papers_tables/measured"
             f"{'' if args.tier == 'main' else '/' + args.tier} beyond tolerance:\n" + "\n".join(regressions)
             if regressions else "no difference beyond tolerance") + "\n")
        print(f"summary: {out / 'summary.json'}; regression: {out / 'regression.txt'}")
    if failed:
        print(f"run_notebooks: {len(failed)} notebook(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    if regressions and args.check:
        print(f"run_notebooks: {len(regressions)} measured value(s) differ beyond tolerance", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
