"""Notebook hygiene: pairs in sync, parameters cell, executed outputs, the headless runner.

nbval itself (``pytest tests --nbval-lax``, run by ci/test.sh) re-executes the CI copies
``tests/notebooks/*.ipynb`` (the same notebooks with the ``ci`` parameter set injected; their
sync with the ``.py`` is checked in ``test_measured_regression.py``) and compares the cells
marked ``# NBVAL_CHECK_OUTPUT``; the committed ``notebooks/*.ipynb`` (main parameter set) are
checked here for sync and a clean execution, and re-run by the main job.
"""
import json
import pathlib
import subprocess
import sys

import jupytext
import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NB = ROOT / "notebooks"
SOURCES = sorted(NB.glob("[0-9][0-9]_*.py"))


def _cells(nb):
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", ())))
            for c in nb.cells]


def test_every_notebook_has_both_twins():
    py = {p.stem for p in NB.glob("[0-9][0-9]_*.py")}
    ipynb = {p.stem for p in NB.glob("[0-9][0-9]_*.ipynb")}
    assert py == ipynb, f"unpaired: {sorted(py ^ ipynb)}"
    assert {"01_gradient_instability", "02_ugs_components"} <= py


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_pair_is_in_sync(source):
    # the .ipynb must be the .py's cells, unchanged (regenerate: ci/run_notebooks.py --update-committed)
    text = jupytext.read(source)
    executed = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    a, b = _cells(text), _cells(executed)
    assert len(a) == len(b), f"{source.name}: {len(a)} cells vs {len(b)} in the .ipynb"
    for i, (x, y) in enumerate(zip(a, b)):
        assert x == y, f"{source.name}: cell {i} differs between the .py and the .ipynb"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_jupyterlab_opens_the_py_when_the_ipynb_is_newer(source, tmp_path):
    """A fresh clone writes the two files in any order. JupyterLab's jupytext refuses to open a
    pair whose .ipynb is newer than its .py unless both are the same py:percent text (header
    included): the server's own contents manager, on a copy with the .ipynb 30 s newer."""
    import os
    import shutil

    from jupyter_server.services.contents.filemanager import FileContentsManager
    from jupytext.sync_contentsmanager import build_sync_jupytext_contents_manager_class

    folder = tmp_path / "notebooks"
    folder.mkdir()
    for f in (NB / "jupytext.toml", source, source.with_suffix(".ipynb")):
        shutil.copy(f, folder)
    t = os.stat(folder / source.name).st_mtime
    os.utime(folder / f"{source.stem}.ipynb", (t + 30, t + 30))
    manager = build_sync_jupytext_contents_manager_class(FileContentsManager)(root_dir=str(tmp_path))
    model = manager.get(f"notebooks/{source.name}")
    assert model["type"] == "notebook"
    assert [c["source"] for c in model["content"]["cells"]] == [c.source for c in jupytext.read(source).cells]


def test_only_the_notebooks_folder_is_paired():
    # JupyterLab opens every .py as a notebook (ci/jupyterlab/); a pairing rule at the root
    # would make saving ugs/grid.py from JupyterLab write a stray ugs/grid.ipynb
    assert not (ROOT / "jupytext.toml").exists()
    assert 'formats = "ipynb,py:percent"' in (NB / "jupytext.toml").read_text()


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_has_one_verdict_cell(source):
    # the results page (ugs.results_page) shows each notebook's verdict: the cell tagged `verdict`
    nb = jupytext.read(source)
    verdicts = [i for i, c in enumerate(nb.cells) if "verdict" in c.metadata.get("tags", ())]
    assert len(verdicts) == 1, f"{source.name}: {len(verdicts)} cells tagged verdict"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_has_one_parameters_cell_with_output_dir(source):
    nb = jupytext.read(source)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", ())]
    assert len(params) == 1, f"{source.name}: {len(params)} parameters cells"
    assert "output_dir" in params[0].source
    checked = [c for c in nb.cells if c.source.startswith("# NBVAL_CHECK_OUTPUT")]
    assert checked, f"{source.name}: no cell is checked by nbval"
    assert "shared/" not in source.read_text(), f"{source.name} must not read ../shared"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_committed_notebook_was_executed_without_errors(source):
    nb = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), f"{source.stem}.ipynb is not executed"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors
    checked = [c for c in code if c.source.startswith("# NBVAL_CHECK_OUTPUT")]
    assert all(c.outputs for c in checked), "a checked cell has no output to compare"


def test_runner_executes_headless_with_parameters(tmp_path):
    # what `bash ci/main.sh` does, for one notebook, with a parameter changed
    out = subprocess.run([sys.executable, "ci/run_notebooks.py", "01", "--out", str(tmp_path),
                          "-p", "pixel_error", "3.0"], capture_output=True, text=True, cwd=ROOT,
                         timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [s["status"] for s in summary] == ["ok"]
    executed = nbformat.read(tmp_path / "01_gradient_instability.ipynb", as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", ())]
    assert injected and "pixel_error = 3.0" in injected[0].source
    assert list((tmp_path / "01_gradient_instability").glob("*.png")), "no figure written"


def test_runner_rejects_unknown_parameters_and_notebooks(tmp_path):
    bad = subprocess.run([sys.executable, "ci/run_notebooks.py", "01", "--out", str(tmp_path),
                          "-p", "no_such_knob", "1"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode != 0 and "no_such_knob" in bad.stdout + bad.stderr
    missing = subprocess.run([sys.executable, "ci/run_notebooks.py", "99", "--out", str(tmp_path)],
                             capture_output=True, text=True, cwd=ROOT)
    assert missing.returncode != 0 and "no notebook matches '99'" in missing.stderr


@pytest.mark.parametrize("notebook, params, message", [
    ("03", ["-p", "epochs", "24"], "profile 'study' has a fixed setting (ugs.openmmlab.study.SETTINGS); leave epochs"),
    ("03", ["-p", "detectors", '["cascade_rcnn"]'], "detector(s) ['cascade_rcnn'] are not in the study"),
    ("09", ["-p", "rows", '["iou_loss"]'], "row(s) ['iou_loss'] are not in the study"),
    ("09", ["-p", "seed", "7"], "seed must be one of the study's seeds (0, 1, 2, 3, 4), got 7"),
    ("12", ["-p", "epochs", "12"], "profile 'study' has a fixed setting (ugs.openmmlab.study.SETTINGS); leave epochs"),
    ("12", ["-p", "train_images", "40"], "profile 'study' has a fixed setting (ugs.openmmlab.study.SETTINGS): "
                                         "leave train_images at None"),
])
def test_study_profile_refuses_a_changed_setting_before_training(tmp_path, notebook, params, message):
    # the study's setting is fixed; a changed value stops the notebook in its parameter checks
    out = subprocess.run([sys.executable, "ci/run_notebooks.py", notebook, "--out", str(tmp_path),
                          "-p", "profile", '"study"', "-p", "study_train", "false", *params],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode != 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary[0]["status"].startswith("failed: PapermillExecutionError: ValueError")
    assert message in summary[0]["status"], summary[0]["status"]
    own = {"03": "table1_measured.csv", "09": "table6_measured.csv", "12": "object_gradient_by_size.json"}[notebook]
    assert not (tmp_path / summary[0]["notebook"] / own).exists()    # nothing ran past the checks


def test_figure6_study_profile_refuses_a_changed_setting_before_training(tmp_path):
    # notebook 11's study profile is the CPU study's setting: changed iterations or seeds would be
    # another measurement; the check names both and nothing is trained
    out = subprocess.run([sys.executable, "ci/run_notebooks.py", "11", "--out", str(tmp_path), "-p", "profile",
                          '"study"', "-p", "iters", "10", "-p", "seeds", "[0]"],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode != 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary[0]["status"].startswith("failed: PapermillExecutionError: ValueError")
    assert ("profile 'study' has a fixed setting (ugs.openmmlab.study.SETTINGS); leave iters, seeds at the "
            "default") in summary[0]["status"], summary[0]["status"]
    assert not (tmp_path / summary[0]["notebook"] / "figure6_measured.csv").exists()


def test_gradient_maps_study_profile_shows_the_studys_replayed_runs(tmp_path):
    # notebook 12's study profile trains nothing: Sec. 1-5 show seed 0's replays of the study's L2 and
    # UGS runs (this machine's work dirs, else the kit's archive of them) and Sec. 6 every seed's readings
    from ugs.openmmlab import study
    out = subprocess.run([sys.executable, "ci/run_notebooks.py", "12", "--out", str(tmp_path), "-p", "profile", '"study"'],
                         capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    folder = tmp_path / json.loads((tmp_path / "summary.json").read_text())[0]["notebook"]
    assert (folder / "figure1_5_maps.png").is_file() and (folder / "figure2_object_gradient.png").is_file()
    shown = json.loads((folder / "object_gradient_by_size.json").read_text())
    archived = {loss: json.loads((ROOT / study.GRADIENT_ARCHIVE / f"{arm}-seed0.json").read_text())["epochs"]
                for loss, arm in zip(("l2", "ugs"), study.GRADIENT_ARMS)}
    for loss in ("l2", "ugs"):
        for size in ("small", "medium"):
            first, last = archived[loss]["first"][size]["mean"], archived[loss]["last"][size]["mean"]
            assert shown[f"{loss}/{size}"]["epoch_first"] == pytest.approx(first, rel=1e-12)
            assert shown[f"{loss}/{size}"]["last_over_first"] == pytest.approx(last / first, rel=1e-12)
    executed = nbformat.read(tmp_path / f"{folder.name}.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "t6_l2_baseline: replays of seeds [0" in text and "faster_rcnn_ugs: replays of seeds [0" in text
