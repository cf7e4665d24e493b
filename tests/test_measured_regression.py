"""The measured tables are regressed: committed only through the runner, re-measured by the
test command's CI notebooks, compared value by value under stated tolerances.

The unit tests build small tables by hand (the expected differences are the ones the test
planted); ``test_perturbed_committed_copy_fails_the_check`` does the same on a copy of every
real committed table; ``test_ci_tables_match_committed`` is the regression itself, run after
nbval has executed ``tests/notebooks/*.ipynb`` in the same session.
"""
import csv
import importlib.util
import pathlib

import jupytext
import nbformat
import pytest

from ugs import measured
from ugs.papers import read_table, write_table

ROOT = pathlib.Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("run_notebooks", ROOT / "ci" / "run_notebooks.py")
run_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_notebooks)

CMD_A = ".venv/bin/python -m ugs.openmmlab.train configs/fcos/fcos_r50_fpn_1x_visdrone.py --work-dir work_dirs/nb/fcos --seed 0"
CMD_B = "/usr/bin/python3 -m ugs.openmmlab.train configs/fcos/fcos_r50_fpn_ugs_1x_visdrone.py --work-dir work_dirs/nb/fcos_ugs"


def _record(row, column, value, source, **extra):
    return dict(row=row, method=row.upper(), variant="baseline", column=column, value=value,
                status="measured", source=source, derivation="", profile="quick", **extra)


def _tables(tmp_path, new_values, committed_values=None, tol_lines=None):
    """A committed table (run ids + commands file) and a re-run's table (full commands)."""
    committed_values = committed_values or {("fcos", "AP"): 10.0, ("fcos", "AP_s"): 4.0,
                                            ("fcos_ugs", "AP"): 12.0, ("fcos_ugs", "time"): 3.0}
    src = {"fcos": CMD_A, "fcos_ugs": CMD_B}
    new_path = write_table([_record(r, c, v, src[r]) for (r, c), v in new_values.items()],
                           tmp_path / "out" / "t.csv")
    ids = {"fcos": "nb/fcos", "fcos_ugs": "nb/fcos_ugs"}
    old_path = write_table([_record(r, c, v, ids[r]) for (r, c), v in committed_values.items()],
                           tmp_path / "committed" / "t.csv")
    tol = tmp_path / "tol.csv"
    tol.write_text("table,column,check,abs_tol,rel_tol,why\n" + "\n".join(tol_lines or [
        "t,AP,value,0.5,0,half a point",
        "t,AP_s,value,0,0.125,an eighth",
        "t,time,excluded,,,wall clock"]) + "\n", encoding="utf-8")
    commands = {"nb/fcos": "python -m ugs.openmmlab.train configs/fcos/fcos_r50_fpn_1x_visdrone.py --work-dir work_dirs/nb/fcos --seed 0",
                "nb/fcos_ugs": "python -m ugs.openmmlab.train configs/fcos/fcos_r50_fpn_ugs_1x_visdrone.py --work-dir work_dirs/nb/fcos_ugs"}
    return old_path, new_path, measured.load_tolerances(tol), commands


SAME = {("fcos", "AP"): 10.0, ("fcos", "AP_s"): 4.0, ("fcos_ugs", "AP"): 12.0, ("fcos_ugs", "time"): 3.0}


def test_identical_rerun_has_no_difference(tmp_path):
    old, new, tol, cmds = _tables(tmp_path, SAME)
    assert measured.compare_table(old, new, tol, cmds, "nb") == []


def test_tolerance_boundaries_absolute_relative_excluded(tmp_path):
    # AP: |10.5 - 10| = 0.5 <= 0.5 passes; AP_s: |4.5 - 4| = 0.5 <= 0.125 * 4 = 0.5 passes;
    # time: excluded, a 100x change passes
    inside = {("fcos", "AP"): 10.5, ("fcos", "AP_s"): 4.5, ("fcos_ugs", "AP"): 11.5, ("fcos_ugs", "time"): 300.0}
    old, new, tol, cmds = _tables(tmp_path, inside)
    assert measured.compare_table(old, new, tol, cmds, "nb") == []
    # just past each bound: 10.5 + 2^-10 and 4.5 + 2^-10 fail, 12 - 0.5 - 2^-10 fails
    outside = {("fcos", "AP"): 10.5 + 2 ** -10, ("fcos", "AP_s"): 4.5 + 2 ** -10,
               ("fcos_ugs", "AP"): 11.5 - 2 ** -10, ("fcos_ugs", "time"): 3.0}
    old, new, tol, cmds = _tables(tmp_path, outside)
    diffs = measured.compare_table(old, new, tol, cmds, "nb")
    assert sorted((d.row, d.column, d.kind) for d in diffs) == [
        ("fcos", "AP", "value"), ("fcos", "AP_s", "value"), ("fcos_ugs", "AP", "value")]
    ap = next(d for d in diffs if (d.row, d.column) == ("fcos", "AP"))
    assert (ap.committed, ap.new) == (10.0, 10.5 + 2 ** -10)
    msg = ap.message()
    assert "table t" in msg and "row 'fcos'" in msg and "column 'AP'" in msg
    assert "committed 10," in msg and "new 10.501" in msg and "±(0.5)" in msg


def test_missing_and_extra_rows_are_differences(tmp_path):
    new_values = {("fcos", "AP"): 10.0, ("fcos", "AP_s"): 4.0, ("fcos_ugs", "time"): 3.0,
                  ("fcos", "AP50"): 20.0}
    old, new, tol, cmds = _tables(tmp_path, new_values, tol_lines=[
        "t,*,value,0.5,0,any", "t,time,excluded,,,wall clock"])
    diffs = measured.compare_table(old, new, tol, cmds, "nb")
    assert sorted((d.row, d.column, d.kind) for d in diffs) == [
        ("fcos", "AP50", "extra"), ("fcos_ugs", "AP", "missing")]
    assert "missing from the re-run" in next(d for d in diffs if d.kind == "missing").message()


def test_changed_command_is_a_difference(tmp_path):
    old, new, tol, cmds = _tables(tmp_path, SAME)
    cmds = {**cmds, "nb/fcos": cmds["nb/fcos"].replace("--seed 0", "--seed 1")}
    diffs = measured.compare_table(old, new, tol, cmds, "nb")
    assert [(d.row, d.kind) for d in diffs] == [("nb/fcos", "command")]
    assert "--seed 1" in diffs[0].message() and "--seed 0" in diffs[0].message()


def test_column_without_a_stated_tolerance_is_an_error(tmp_path):
    old, new, tol, cmds = _tables(tmp_path, SAME, tol_lines=["t,AP,value,0.5,0,only AP"])
    with pytest.raises(KeyError, match="no tolerance stated for table 't', column 'AP_s'"):
        measured.compare_table(old, new, tol, cmds, "nb")


@pytest.mark.parametrize("line, message", [
    ("t,AP,value,0.5,0,", "line 2: every tolerance says why"),
    ("t,AP,value,-1,0,neg", "line 2: abs_tol must be a finite number >= 0"),
    ("t,AP,value,x,0,nan", "line 2: abs_tol 'x' is not a number"),
    ("t,AP,loose,0.5,0,bad check", "line 2: check must be 'value' or 'excluded'"),
])
def test_malformed_tolerance_file_names_the_line(tmp_path, line, message):
    path = tmp_path / "tol.csv"
    path.write_text("table,column,check,abs_tol,rel_tol,why\n" + line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        measured.load_tolerances(path)


def test_run_ids_and_portable_commands():
    assert measured.run_id(CMD_A, "03_x") == "03_x/fcos"
    assert measured.run_id("python benchmarks/training_cost.py --setting quick --out outputs/08/cost_q.json",
                           "08_y") == "08_y/cost_q"
    with pytest.raises(ValueError, match="has no --work-dir or --out"):
        measured.run_id("python -c 1", "nb")
    assert measured.portable_command(CMD_B).startswith("python -m ugs.openmmlab.train ")
    records, cmds = measured.with_run_ids([_record("f", "AP", 1.0, CMD_A + " ; " + CMD_B)], "nb")
    assert records[0]["source"] == "nb/fcos ; nb/fcos_ugs"
    assert cmds["nb/fcos_ugs"] == ("python -m ugs.openmmlab.train configs/fcos/fcos_r50_fpn_ugs_1x_visdrone.py "
                                   "--work-dir work_dirs/nb/fcos_ugs")


def test_commit_tables_writes_run_ids_and_merges_commands(tmp_path, monkeypatch):
    monkeypatch.setitem(measured.MEASURED_TABLES, "nb", [("t_measured.csv", "t_quick.csv")])
    monkeypatch.setitem(measured.MEASURED_TABLES, "nc", [("u_measured.csv", "u_quick.csv")])
    out = tmp_path / "outputs"
    write_table([_record("fcos", "AP", 10.0, CMD_A), _record("fcos_ugs", "AP", 12.0, CMD_B)],
                out / "nb" / "t_measured.csv")
    write_table([_record("g", "AP", 1.0, "python x.py --out outputs/nc/run_g.json")], out / "nc" / "u_measured.csv")
    measured.commit_tables("nb", out / "nb", "ci", root=tmp_path)
    measured.commit_tables("nc", out / "nc", "ci", root=tmp_path)
    dest = tmp_path / "papers_tables" / "measured" / "ci"
    t = read_table(dest / "t_quick.csv")
    assert [(r["row"], r["value"], r["source"]) for r in t.records] == [
        ("fcos", 10.0, "nb/fcos"), ("fcos_ugs", 12.0, "nb/fcos_ugs")]
    with open(dest / "commands.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["run", "command"] and [r[0] for r in rows[1:]] == ["nb/fcos", "nb/fcos_ugs", "nc/run_g"]
    # re-committing nb with one run drops nb's stale command, keeps nc's
    write_table([_record("fcos", "AP", 9.0, CMD_A)], out / "nb" / "t_measured.csv")
    measured.commit_tables("nb", out / "nb", "ci", root=tmp_path)
    assert sorted(measured.read_commands(dest / "commands.csv")) == ["nb/fcos", "nc/run_g"]
    with pytest.raises(FileNotFoundError, match="wrote no"):
        measured.commit_tables("nb", tmp_path / "empty", "ci", root=tmp_path)


def _committed_pairs():
    notebooks = sorted({**measured.MEASURED_TABLES, **measured.STUDY_TABLES})
    return [(tier, nb, committed) for tier in measured.TIERS for nb in notebooks
            for _, committed in measured.tables_of(nb, tier)]


def test_each_tier_has_its_folder_and_tables():
    base = ROOT / "papers_tables" / "measured"
    assert [measured.measured_root(t) for t in ("main", "ci", "study")] == [base, base / "ci", base / "study"]
    assert measured.tables_of("03_visdrone_detectors", "main") == [("table1_measured.csv", "table1_quick_synthetic.csv")]
    assert measured.tables_of("03_visdrone_detectors", "study") == [("table1_study.csv", "table1_study_synthetic128.csv")]
    assert measured.tables_of("09_ablation", "study") == [("table6_study.csv", "table6_study_synthetic128.csv")]
    assert measured.tables_of("01_gradient_instability", "study") == []
    with pytest.raises(ValueError, match="tier must be one of"):
        measured.tables_of("03_visdrone_detectors", "nightly")
    # the study tier runs the notebooks with a study section, in the study profile, finished runs only
    assert run_notebooks.tier_parameters("03_visdrone_detectors", "study") == {
        "profile": "study", "study_train": False, "output_dir": "outputs/study/03_visdrone_detectors"}
    assert run_notebooks.tier_parameters("09_ablation", "study") == {
        "profile": "study", "study_train": False, "output_dir": "outputs/study/09_ablation"}
    with pytest.raises(SystemExit, match="02_ugs_components has no study section"):
        run_notebooks.tier_parameters("02_ugs_components", "study")


@pytest.mark.parametrize("tier, notebook, committed", _committed_pairs(),
                         ids=lambda v: v if isinstance(v, str) else None)
def test_committed_tables_are_complete(tier, notebook, committed):
    # every committed table exists, names runs that commands.csv lists, and has a stated
    # tolerance for each of its columns
    dest = measured.measured_root(tier)
    table = read_table(dest / committed)
    commands = measured.read_commands(dest / measured.COMMANDS_FILE)
    tolerances = measured.load_tolerances()
    assert table.records, f"{committed} is empty"
    for r in table.records:
        for rid in measured.split_sources(r["source"]):
            assert rid.startswith(notebook + "/") and rid in commands, f"{committed}: run {rid!r} not in commands.csv"
        measured.tolerance_for(tolerances, table.name, r["column"])


@pytest.mark.parametrize("tier, notebook, committed", _committed_pairs(),
                         ids=lambda v: v if isinstance(v, str) else None)
def test_perturbed_committed_copy_fails_the_check(tmp_path, tier, notebook, committed):
    # the re-run is the committed table itself (run ids turned back into commands); the
    # committed copy in tmp has one checked value moved by twice its tolerance plus one
    dest = measured.measured_root(tier)
    commands = measured.read_commands(dest / measured.COMMANDS_FILE)
    tolerances = measured.load_tolerances()
    table = read_table(dest / committed)
    rerun = [{k: v for k, v in r.items() if k != "run"}            # the commands put back
             for r in measured.load_measured(committed, tier).records]
    new = write_table(rerun, tmp_path / "new" / committed)
    assert measured.compare_table(dest / committed, new, tolerances, commands, notebook) == []
    target = next(r for r in table.records
                  if measured.tolerance_for(tolerances, table.name, r["column"]).check == "value")
    tol = measured.tolerance_for(tolerances, table.name, target["column"])
    moved = target["value"] + 2 * (tol.abs_tol + tol.rel_tol * abs(target["value"])) + 1.0
    perturbed = [{**r, "value": moved} if r is target else dict(r) for r in table.records]
    old = write_table(perturbed, tmp_path / "committed" / committed)
    diffs = measured.compare_table(old, new, tolerances, commands, notebook)
    assert [(d.row, d.column, d.committed, d.new) for d in diffs] == [
        (target["row"], target["column"], moved, target["value"])]
    assert f"table {table.name}, row {target['row']!r}, column {target['column']!r}" in diffs[0].message()


def test_every_notebook_has_a_ci_copy_in_sync_with_its_source():
    # tests/notebooks/NN.ipynb = the .py's cells + papermill's injected cell with CI_TIER's values
    for source in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")):
        copy = ROOT / "tests" / "notebooks" / f"{source.stem}.ipynb"
        assert copy.is_file(), f"no CI copy {copy}: python ci/run_notebooks.py --tier ci --update-committed {source.stem[:2]}"
        nb = nbformat.read(copy, as_version=4)
        injected = [i for i, c in enumerate(nb.cells) if "injected-parameters" in c.metadata.get("tags", ())]
        assert len(injected) == 1, f"{copy.name}: {len(injected)} injected-parameters cells"
        cells = [c for i, c in enumerate(nb.cells) if i != injected[0]]
        text = jupytext.read(source)
        assert [(c.cell_type, c.source.strip()) for c in cells] == \
            [(c.cell_type, c.source.strip()) for c in text.cells], f"{copy.name} is out of sync with {source.name}"
        assert "parameters" in nb.cells[injected[0] - 1].metadata.get("tags", ())
        namespace = {}
        exec(nb.cells[injected[0]].source, namespace)
        expected = run_notebooks.tier_parameters(source.stem, "ci")
        defaults = nb.cells[injected[0] - 1].source
        if "work_dir" not in defaults:
            expected.pop("work_dir")
        if "\nprofile = " in "\n" + defaults:     # the runner's --profile default, quick
            expected.setdefault("profile", "quick")
        assert {k: v for k, v in namespace.items() if not k.startswith("__")} == expected
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.execution_count is not None for c in code), f"{copy.name} is not executed"
        assert not [o for c in code for o in c.get("outputs", []) if o.output_type == "error"]


@pytest.mark.regression
@pytest.mark.parametrize("notebook", sorted(measured.MEASURED_TABLES))
def test_ci_tables_match_committed(notebook, request):
    """The regression: what nbval's execution of tests/notebooks/<notebook>.ipynb measured in
    this session, against papers_tables/measured/ci/ (tolerances: tolerances.csv)."""
    if notebook not in request.config.ugs_ci_notebooks:
        pytest.skip(f"tests/notebooks/{notebook}.ipynb is not executed in this session "
                    "(bash ci/test.sh executes every CI notebook first)")
    diffs = measured.compare_notebook(notebook, ROOT / "outputs" / "ci" / notebook, "ci")
    assert not diffs, f"{notebook}: " + measured.report(diffs)
