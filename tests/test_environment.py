"""The two install routes agree, the README's commands are the ones CI runs, the stack imports."""
import pathlib
import re
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
# conda names the torch package differently from pip
CONDA_TO_PIP = {"pytorch": "torch"}
STACK = ("torch", "torchvision", "numpy", "mmengine", "mmcv", "mmdet", "mmyolo", "mmrotate")


def _lock():
    pins = {}
    for n, line in enumerate((ROOT / "ci/requirements.lock").read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        assert m, f"ci/requirements.lock line {n} is not NAME==VERSION: {line!r}"
        pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def _environment_yml():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pins = {}
    for dep in env["dependencies"]:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        for item in items:
            if item.startswith("--") or item == "pip" or item == "./ci/jupyterlab":
                continue   # pip options; the kit's JupyterLab settings (a local folder, no version)
            m = re.fullmatch(r"([A-Za-z0-9_.\-]+)(==|=)([^\s]+)", item)
            assert m, f"environment.yml dependency without an exact pin: {item!r}"
            name = CONDA_TO_PIP.get(m.group(1), m.group(1)).lower()
            pins[name] = m.group(3)
    return pins


def test_environment_yml_and_lock_pin_the_same_versions():
    lock, env = _lock(), _environment_yml()
    # every package environment.yml names has the lock's version (python, the CUDA
    # meta-package and setuptools are not in a pip freeze)
    for name, version in env.items():
        if name in ("python", "pytorch-cuda", "setuptools"):
            continue
        assert name in lock, f"environment.yml pins {name} but ci/requirements.lock does not"
        assert lock[name] == version, f"{name}: environment.yml {version} vs lock {lock[name]}"
    assert env["python"] == "3.11"
    for name in STACK:
        assert name in env and name in lock, f"{name} must be pinned on both routes"


def test_constraints_agree_with_the_lock_and_bootstrap():
    lock = _lock()
    for line in (ROOT / "ci/constraints.txt").read_text().splitlines():
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line.strip())
        if m:
            assert lock[m.group(1).lower()] == m.group(2), f"ci/constraints.txt: {line}"
    bootstrap = (ROOT / "ci/bootstrap.sh").read_text()
    setuptools = re.search(r"SETUPTOOLS_VERSION=(\S+)", bootstrap).group(1)
    assert setuptools == _environment_yml()["setuptools"]
    assert int(setuptools.split(".")[0]) < 70        # mmcv 2.0.1's setup.py imports pkg_resources


def test_readme_leads_with_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```(?:bash|sh)?\n(.*?)```", readme, re.S).group(1)
    commands = [l.split("#")[0].strip() for l in first_block.splitlines() if l.split("#")[0].strip()]
    assert commands == ["bash ci/main.sh", "bash ci/test.sh"], commands
    ci = (ROOT / ".ci/run").read_text()
    assert "bash ci/test.sh" in ci
    for script in ("ci/main.sh", "ci/test.sh"):
        assert "bash ci/bootstrap.sh" in (ROOT / script).read_text(), f"{script} must set up first"


def test_the_pinned_stack_imports_and_runs_a_compiled_op():
    out = subprocess.run([sys.executable, "-m", "ugs.openmmlab.check_stack"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lock = _lock()
    for name in ("mmcv", "mmdet", "mmyolo", "mmrotate", "mmengine", "numpy"):
        assert f"{name} {lock[name]}" in out.stdout, out.stdout


def test_core_imports_no_framework():
    # the UGS math is plain PyTorch: importing ugs pulls in no OpenMMLab package
    code = ("import sys, ugs, ugs.instability, ugs.papers; "
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('mmdet', 'mmcv', 'mmengine', 'mmyolo', 'mmrotate')]; print(bad); "
            "sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


def test_both_install_routes_ship_the_jupyterlab_settings():
    # JupyterLab opens a notebook's .py twin as the notebook: ci/jupyterlab/ is installed by the
    # pip route (ci/bootstrap.sh) and the conda route (environment.yml) alike
    import json
    import sys

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_items = [i for d in env["dependencies"] if isinstance(d, dict) for i in d["pip"]]
    assert "./ci/jupyterlab" in pip_items
    assert "./ci/jupyterlab" in (ROOT / "ci/bootstrap.sh").read_text()
    shipped = ROOT / "ci/jupyterlab/ugs-jupytext-default-viewer.json"
    setting = json.loads(shipped.read_text())
    assert setting["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]["python"] == "Jupytext Notebook"
    installed = pathlib.Path(sys.prefix) / "share/jupyter/lab/settings/overrides.d" / shipped.name
    assert installed.is_file(), f"{installed} missing: run bash ci/bootstrap.sh"
    assert json.loads(installed.read_text()) == setting
