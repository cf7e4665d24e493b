"""Test-session wiring for the CI notebooks (``tests/notebooks/*.ipynb``, executed by nbval).

* Every notebook kernel and the trainings it starts run under ``ugs.reproducible``'s CPU
  settings (set here, inherited by the kernels), as when the committed tables were made.
* Each CI notebook collected in this session gets a fresh output folder
  (``outputs/ci/<name>``), so the table regression reads only what this session measured.
* Tests marked ``regression`` run after every other item: they read the tables that nbval's
  execution of the notebooks wrote (one execution per notebook, nothing is retrained).
"""
import pathlib
import shutil

from ugs import reproducible

ROOT = pathlib.Path(__file__).resolve().parents[1]
CI_NOTEBOOKS = ROOT / "tests" / "notebooks"
CI_OUTPUTS = ROOT / "outputs" / "ci"


def pytest_configure(config):
    reproducible.set_environment()
    config.ugs_ci_notebooks = set()


def _ci_notebook(item):
    path = pathlib.Path(str(item.fspath))
    return path.stem if path.suffix == ".ipynb" and path.parent == CI_NOTEBOOKS else None


def pytest_collection_modifyitems(session, config, items):
    executed = {stem for stem in map(_ci_notebook, items) if stem}
    config.ugs_ci_notebooks = executed
    for stem in executed:
        shutil.rmtree(CI_OUTPUTS / stem, ignore_errors=True)
    last = [i for i in items if i.get_closest_marker("regression")]
    items[:] = [i for i in items if not i.get_closest_marker("regression")] + last
