"""Execute the kit's notebooks headless with papermill.

    python ci/run_notebooks.py --out outputs/main            # every notebook, quick profile
    python ci/run_notebooks.py 02 --out /tmp/o -p rho 1.0    # one notebook, a parameter changed
    python ci/run_notebooks.py --update-committed            # regenerate notebooks/*.ipynb

The ``.py`` twin (jupytext py:percent) is the source: each run first builds the notebook
from it, so an unsynced ``.ipynb`` never runs. Each notebook NAME gets ``output_dir`` set to
OUT/NAME (figures, tables), and its executed copy is written to OUT/NAME.ipynb.
``--update-committed`` instead executes with the notebook's own defaults and writes
notebooks/NAME.ipynb, the copy nbval checks; execution metadata that changes on every run
is stripped so that the committed file changes only when its content does.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


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


def clean_execution_metadata(nb) -> None:
    """Drop what papermill adds that changes on every run (timings, empty tag lists)."""
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.metadata.get("tags") == []:
            del cell.metadata["tags"]


def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def run_one(source: pathlib.Path, target: pathlib.Path, parameters: dict, profile: str | None):
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="*", help="names or number prefixes (default: all)")
    ap.add_argument("--out", default="outputs/main", help="output folder (default outputs/main)")
    ap.add_argument("--profile", default="quick", help="value for a notebook's `profile` "
                    "parameter where it has one (default quick)")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                    metavar=("NAME", "VALUE"), help="extra papermill parameter (JSON value)")
    ap.add_argument("--update-committed", action="store_true",
                    help="execute with defaults and write notebooks/NAME.ipynb")
    args = ap.parse_args(argv)

    sources = discover(args.notebooks)
    out = (ROOT / args.out).resolve() if not args.update_committed else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    summary, failed = [], []
    for i, source in enumerate(sources, 1):
        name = source.stem
        params = {k: parse_value(v) for k, v in args.parameter}
        if args.update_committed:
            target, profile = NOTEBOOKS / f"{name}.ipynb", None
        else:
            target, profile = out / f"{name}.ipynb", args.profile
            params["output_dir"] = str(out / name)
        print(f"[{i}/{len(sources)}] {name} -> {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}",
              flush=True)
        start = time.perf_counter()
        try:
            run_one(source, target, params, profile)
            status = "ok"
        except Exception as exc:  # papermill raises PapermillExecutionError with the cell
            status = f"failed: {type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
            failed.append(name)
            print(str(exc), file=sys.stderr)
        seconds = time.perf_counter() - start
        print(f"    {status} in {seconds:.1f} s", flush=True)
        summary.append(dict(notebook=name, status=status, seconds=round(seconds, 1),
                            executed=str(target)))
    if out is not None:
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        print(f"summary: {out / 'summary.json'}")
    if failed:
        print(f"run_notebooks: {len(failed)} notebook(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
