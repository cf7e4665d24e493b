"""The kit as a newcomer meets it, in a real browser: JupyterLab opening a notebook's ``.py``
twin as a notebook, running it and saving the pair, and the main job's results page.

A headless Chromium from the system's package manager (Debian: ``apt-get install chromium``,
which ``ci/test.sh`` runs) driven by Playwright, pointed at that binary: Playwright's own
browser download needs the internet. Set ``UGS_CHROMIUM`` to use another Chromium. Without
one the tests are skipped, except where ``UGS_REQUIRE_BROWSER=1`` (``ci/test.sh`` sets it):
there a missing browser fails them. Screenshots go to ``outputs/tests/browser/``.
"""
from __future__ import annotations

import os
import pathlib
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import jupytext
import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHOTS = ROOT / "outputs" / "tests" / "browser"
NOTEBOOK = ROOT / "notebooks" / "02_ugs_components.py"
CHROMIUM = os.environ.get("UGS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
# Chromium as the probe of this machine kind runs it: no sandbox (root in a container), and no
# background connections (the network is closed; they would be refused many at a time).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic"]

if not CHROMIUM:
    if os.environ.get("UGS_REQUIRE_BROWSER") == "1":
        raise RuntimeError("UGS_REQUIRE_BROWSER=1 but no Chromium was found (install Debian's "
                           "`chromium` package, or set UGS_CHROMIUM to a Chromium binary)")
    pytest.skip("no Chromium (apt-get install chromium, or set UGS_CHROMIUM)", allow_module_level=True)
sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """``jupyter lab --no-browser`` on a free localhost port with a token, its user settings,
    workspaces and runtime files in a fresh folder (a user's own settings cannot leak in: what
    the test sees is what the kit's environment ships)."""
    home = tmp_path_factory.mktemp("lab")
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTER_CONFIG_DIR=str(home / "config"))
    # JupyterLab 4 renders only the cells in view by default; render them all, so the test can
    # count cells, prompts and figures in the page (a display setting; the viewer default
    # under test comes from the kit's environment, not from here)
    tracker = home / "settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text('{"windowingMode": "none"}')
    news = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false"}')   # no "news?" pop-up over the screenshots
    port, token = _free_port(), secrets.token_hex(16)
    log = open(home / "lab.log", "w")
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}",
           "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={ROOT}"]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"jupyter lab did not start; log:\n{(home / 'lab.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield dict(base=base, token=token, log=home / "lab.log")
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _run_all(page) -> None:
    """Run > Run All Cells, as a user would; clicked again while no cell has started (a click
    that lands before the kernel is connected is dropped). A JupyterLab dialog over the page
    fails the test with its text (it would block every click until the timeout, unexplained)."""
    for _ in range(6):
        dialog = page.locator(".jp-Dialog")
        if dialog.count() and dialog.first.is_visible():
            raise AssertionError(f"a JupyterLab dialog blocks the page: {dialog.first.inner_text()[:400]!r}")
        page.click(".lm-MenuBar-itemLabel:text-is('Run')")
        page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            prompts = page.evaluate("""() => [...document.querySelectorAll(
                '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')].map(e => e.textContent)""")
            if any("*" in t or re.search(r"\[\d+\]", t) for t in prompts):
                return
            time.sleep(0.2)
    raise AssertionError("Run All Cells started no cell in 60 s")


_PROGRESS = """() => {
  const cells = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell')];
  const prompts = cells.map(c => (c.querySelector('.jp-InputPrompt') || {}).textContent || '');
  const stderr = [...document.querySelectorAll(
      ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")];
  return {done: prompts.filter(p => /\\[\\d+\\]/.test(p)).length, busy: prompts.filter(p => p.includes('*')).length,
          tracebacks: stderr.map(e => e.textContent).filter(t => /Traceback|Error:/.test(t)).map(t => t.slice(0, 400))};
}"""


def test_py_twin_opens_as_a_notebook_runs_every_cell_and_saves_the_pair(lab, browser):
    ipynb = NOTEBOOK.with_suffix(".ipynb")
    saved = {p: (p.read_bytes(), p.stat()) for p in (NOTEBOOK, ipynb)}
    source = jupytext.read(NOTEBOOK)
    n_code = sum(c.cell_type == "code" for c in source.cells)
    # a fresh clone writes the pair in any order: make the .ipynb the newer file, the case
    # jupytext refuses unless the two are the same notebook
    t = saved[NOTEBOOK][1].st_mtime
    os.utime(ipynb, (t + 30, t + 30))
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{lab['base']}/lab/tree/notebooks/{NOTEBOOK.name}?token={lab['token']}&reset")
        page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell, .jp-FileEditor", timeout=90_000)
        assert page.locator(".jp-FileEditor").count() == 0, "the .py opened as a text file, not as a notebook"
        cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")
        deadline = time.monotonic() + 30
        while cells.count() < len(source.cells) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert cells.count() == len(source.cells), "the notebook's cells are not the .py's"
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']:visible", timeout=90_000)   # the open panel's (`?reset` leaves no other open; `:visible` still picks this one if a panel ever is)

        start, state = time.monotonic(), {}
        _run_all(page)
        while time.monotonic() - start < 300:
            state = page.evaluate(_PROGRESS)
            assert not state["tracebacks"], f"a cell failed in JupyterLab: {state['tracebacks'][0]}"
            if state["done"] == n_code and state["busy"] == 0:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"not every cell ran within 300 s: {state}")
        run_s = time.monotonic() - start
        figures = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output img")
        assert figures.count() >= 1, "no figure rendered"
        assert page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output").count() >= n_code // 2

        before = ipynb.stat().st_mtime_ns
        page.keyboard.press("Control+s")
        deadline = time.monotonic() + 30
        while ipynb.stat().st_mtime_ns == before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ipynb.stat().st_mtime_ns != before, "saving did not rewrite the paired .ipynb"
        time.sleep(1.0)   # the .py is written too; let both writes finish
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").first.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "02_ugs_components.png"))
        figures.first.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "02_ugs_components_figure.png"))

        executed = nbformat.read(ipynb, as_version=4)
        code = [c for c in executed.cells if c.cell_type == "code"]
        assert len(code) == n_code and all(c.execution_count for c in code)
        assert not [o for c in code for o in c.outputs if o.output_type == "error"]
        pngs = sum("image/png" in o.get("data", {}) for c in code for o in c.outputs)
        assert pngs == figures.count(), f"{pngs} figures saved, {figures.count()} shown"
        twin = jupytext.read(NOTEBOOK)   # the pair after JupyterLab wrote both
        assert [(c.cell_type, c.source) for c in twin.cells] == [(c.cell_type, c.source) for c in executed.cells]
        assert [(c.cell_type, c.source) for c in twin.cells] == [(c.cell_type, c.source) for c in source.cells]
        print(f"JupyterLab ran {n_code} code cells of {NOTEBOOK.name} in {run_s:.1f} s, {pngs} figures; "
              f"screenshots in {SHOTS.relative_to(ROOT)}")
    finally:
        page.close()
        for p, (data, st) in saved.items():
            p.write_bytes(data)
            os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_results_page_shows_every_table_figure_and_verdict(tmp_path, browser):
    """The main job's page, built from the committed notebooks and measured tables laid out as
    the runner lays out its output folder, opened in the browser: every measured table of
    ``ugs.measured.MEASURED_TABLES`` is there, filled and visible, every image loads, every
    notebook has its verdict and its rendered HTML."""
    import json

    from ugs import measured
    from ugs.results_page import build

    names = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    summary = []
    for name in names:
        shutil.copy(ROOT / "notebooks" / f"{name}.ipynb", tmp_path / f"{name}.ipynb")
        for produced, committed in measured.MEASURED_TABLES.get(name, []):
            (tmp_path / name).mkdir(exist_ok=True)
            shutil.copy(measured.measured_root("main", ROOT) / committed, tmp_path / name / produced)
        summary.append(dict(notebook=name, tier="main", status="ok", seconds=1.0,
                            executed=str(tmp_path / f"{name}.ipynb"), differences=[]))
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "regression.txt").write_text("no difference beyond tolerance\n")
    page_path = build(tmp_path)
    expected = {pathlib.Path(p).stem for tables in measured.MEASURED_TABLES.values() for p, _ in tables}

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(page_path.as_uri())
        page.wait_for_load_state("load")
        tables = page.locator("table.measured")
        shown = {tables.nth(i).get_attribute("data-table") for i in range(tables.count())}
        assert shown == expected
        assert page.locator("[data-missing]").count() == 0
        for i in range(tables.count()):
            t = tables.nth(i)
            t.scroll_into_view_if_needed()
            assert t.is_visible() and t.locator("tbody tr, tr").count() > 1, t.get_attribute("data-table")
        broken = page.evaluate("() => [...document.images].filter(i => !i.complete || i.naturalWidth === 0)"
                               ".map(i => i.getAttribute('src'))")
        assert page.evaluate("() => document.images.length") > 0 and not broken, broken
        text = page.inner_text("body")
        assert "(no verdict cell)" not in text and "(no executed notebook)" not in text
        assert page.locator("p.verdict").count() == len(names)
        links = page.evaluate("() => [...document.querySelectorAll('a[href$=\".html\"]')].map(a => a.href)")
        assert {pathlib.Path(urllib.request.url2pathname(h.split("file://", 1)[1])).stem for h in links} >= set(names)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(SHOTS / "results_page.png"))
    finally:
        page.close()


_SLOW_RUN = r'''
import json, sys, time
for line in [
    "11/30 04:08:50 - mmengine - INFO - Epoch(train) [1][1/2]  lr: 1.0e-02  eta: 0:00:04  time: 0.5  loss: 2.5000  loss_bbox: 1.0000",
    "11/30 04:08:51 - mmengine - INFO - Epoch(train) [1][2/2]  lr: 1.0e-02  eta: 0:00:00  time: 0.5  loss: 2.2500  loss_bbox: 1.0000",
    "final: AP 25.0",
]:
    print(line, flush=True)
    time.sleep(2.0)
open(sys.argv[1], "w").write(json.dumps({"AP": 25.0}))
'''


def test_training_progress_is_one_live_line_in_jupyterlab(lab, browser, tmp_path):
    """A training cell as the notebooks run it (``ugs.openmmlab.runs.train``), in JupyterLab:
    the run's progress is one output line that changes in place, from the steps to the end."""
    folder = ROOT / "outputs" / "tests" / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    script = tmp_path / "slow_run.py"
    script.write_text(_SLOW_RUN)
    code = (f"import sys\nfrom ugs.openmmlab import runs\n"
            f"runs.train('toy', [sys.executable, {str(script)!r}, {str(tmp_path / 'w' / 'metrics.json')!r}], "
            f"{str(tmp_path / 'w')!r}, {str(ROOT)!r})")
    nb_path = folder / "progress_line.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)],
                                            metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                     "language": "python"}}), nb_path)
    page = browser.new_page(viewport={"width": 1400, "height": 800})
    try:
        # `reset`: a fresh workspace, so the notebook the test before left open (and rewrote on
        # disk afterwards) is not restored beside this one, with its dialogs
        page.goto(f"{lab['base']}/lab/tree/{nb_path.relative_to(ROOT).as_posix()}?token={lab['token']}&reset")
        page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell", timeout=90_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']:visible", timeout=90_000)   # the open panel's (`?reset` leaves no other open; `:visible` still picks this one if a panel ever is)
        _run_all(page)
        lines_seen, counts = [], set()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            outs = page.evaluate("""() => [...document.querySelectorAll(
                '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-OutputArea-output')].map(e => e.textContent.trim())""")
            live = [o for o in outs if o.startswith("[toy] ") and not o.startswith("[toy] $")]
            counts.add(len(live))
            if live and (not lines_seen or lines_seen[-1] != live[0]):
                lines_seen.append(live[0])
            if live and "done in" in live[0]:
                break
            time.sleep(0.1)
        page.screenshot(path=str(SHOTS / "progress_line.png"))
        assert lines_seen and re.fullmatch(r"\[toy\] done in \d+ s  final: AP 25\.0", lines_seen[-1]), lines_seen
        assert any("epoch 1 iter" in t for t in lines_seen[:-1]), f"never saw a step before the end: {lines_seen}"
        assert counts <= {0, 1}, f"the run's progress took {max(counts)} output lines"
    finally:
        page.close()
        nb_path.unlink(missing_ok=True)
