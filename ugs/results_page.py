"""One HTML page for a notebook run's output folder (``bash ci/main.sh`` -> ``outputs/main``).

The main job leaves a dozen executed notebooks, their tables, figures, ``summary.json`` and
``regression.txt`` in one folder; judging the run meant opening each. The page shows each
notebook's status, time and verdict (its one cell tagged ``verdict``), every measured table
beside the paper's numbers with the difference and its regression status, every figure, and
the environment:  ``python -m ugs.results_page outputs/main [--no-html-notebooks]``.

A measured table joins its paper table (``papers_tables/tableN_*.csv``, by the number in its
committed name) on (row, column): the measured CSVs reuse the paper's row ids and metric names,
so no hand-written map can drift. Settings are not joined: a quick run stands in for its paper
row at a smaller setting (Table 2: 256 px for the 640 row). Where no measured row is a paper
row (Fig. 6's per-bucket ratios) the measured values stand alone, the paper's values quoted.
Standard library only, plus nbformat / nbconvert imported where a notebook is read.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import html
import importlib.metadata
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from .measured import MEASURED_TABLES
from .papers import load_table, read_table

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("torch", "torchvision", "mmcv", "mmengine", "mmdet", "mmyolo", "mmrotate", "numpy")
IMAGE_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg")
NO_DIFFERENCE = "no difference beyond tolerance"   # regression.txt's first line for a clean run
VERDICT_TAG = "verdict"
CSS = """body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1100px;padding:0 1em}
table{border-collapse:collapse;margin:.5em 0;font-size:90%} td.num{text-align:right}
th,td{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}
.ok,.pos{color:#176f2c} .bad,.neg{color:#b3261e} .none{color:#777} .derived{color:#8a4b00}
.regression{font-weight:bold;padding:4px 8px} .regression.ok{background:#e3f4e6}
.regression.bad{background:#fbe4e2} .verdict{background:#f4f6fa;border-left:4px solid #5470c6}
[data-missing]{border:2px dashed #b3261e;padding:4px 8px;background:#fdf0ef}
figure{display:inline-block;margin:.5em;max-width:100%} img{max-width:100%}"""

esc = html.escape


def read_summary(path: Path) -> list:
    """summary.json's entries; anything malformed raises ValueError naming the file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no summary.json (run ci/run_notebooks.py --out first)")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a list of notebook entries, got {type(entries).__name__}")
    for i, e in enumerate(entries):
        if not (isinstance(e, dict) and isinstance(e.get("notebook"), str)
                and isinstance(e.get("status", ""), str)
                and isinstance(e.get("seconds", 0), (int, float))
                and isinstance(e.get("differences", []), list)):
            raise ValueError(f"{path}: entry {i} needs a 'notebook' name, a text 'status', a "
                             f"number 'seconds' and a list 'differences'; got {e!r}")
    return entries


def _read_notebook(path: Path):
    import nbformat
    try:
        return nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises several types for a broken file
        raise ValueError(f"{path}: not a readable notebook ({exc})") from None


def markdown(text: str) -> str:
    """Escaped text with the little markdown a verdict uses: headings dropped, links reduced to
    their text, `code`, **bold**, *emphasis*; wrapped lines joined, paragraph and list breaks kept."""
    text = "\n".join(re.sub(r"^\s{0,3}#{1,6}\s+", "", ln) for ln in text.strip().splitlines())
    text = re.sub(r"(?<!\n)\n(?!\n|\s*[*-]\s)", " ", text)   # a wrapped line joins its paragraph
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    pieces = re.split(r"(`[^`\n]+`)", text)
    for i, p in enumerate(pieces):
        if i % 2:
            pieces[i] = f"<code>{esc(p[1:-1])}</code>"
            continue
        p = esc(p, quote=False)
        p = re.sub(r"\*\*(.+?)\*\*|__(.+?)__", lambda m: f"<strong>{m[1] or m[2]}</strong>", p)
        pieces[i] = re.sub(r"(?<![\w*])[*_](?![\s*_])(.+?)(?<![\s*_])[*_](?![\w*])", r"<em>\1</em>", p)
    return "".join(pieces).replace("\n", "<br>")


def verdict(nb) -> str:
    """The verdict as HTML: the markdown cell's source, or the code cell's Markdown outputs, or
    failing those its printed text (a figure's or an object's text/plain is its repr, not a
    sentence: skipped)."""
    if nb is None:
        return '<span class="bad">(no executed notebook)</span>'
    cells = [c for c in nb.cells if VERDICT_TAG in (c.get("metadata", {}).get("tags") or [])]
    if not cells:
        return '<span class="none">(no verdict cell)</span>'
    cell, texts = cells[0], []
    outputs = cell.get("outputs", []) if cell.cell_type == "code" else []
    md = [o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    if cell.cell_type != "code":
        texts.append(cell.source)
    elif md:   # a cell that states its verdict as Markdown: that, not its printed lines
        texts += md
    for o in outputs if not md else []:
        data = o.get("data", {})
        plain = data.get("text/plain", "") if set(data) == {"text/plain"} else ""
        texts.append(o.get("text", "") if o.get("output_type") == "stream" else plain)
    text = "\n".join(t.strip() for t in texts if t and t.strip())
    if not text:
        return '<span class="bad">(the verdict cell has no text)</span>'
    more = (f' <span class="none">({len(cells)} cells tagged {VERDICT_TAG}; the first is shown)'
            '</span>') if len(cells) > 1 else ""
    return markdown(text) + more


def _num(v) -> str:
    return "-" if v is None else repr(float(v))


def _paper_table(committed: str, root: Path):
    m = re.match(r"(table\d+|figure\d+)", committed)
    try:
        return load_table(m[1], root / "papers_tables") if m else None
    except FileNotFoundError:
        return None


def _tolerance(entry: dict, committed_stem: str, committed_dir: str):
    """(status HTML, {(row, column): message} or None when not compared) from summary.json."""
    if entry.get("regression_error"):   # the runner then also writes an empty list
        return f'<span class="bad">not compared: {esc(entry["regression_error"])}</span>', None
    if "differences" not in entry:
        return ('<span class="none">not compared with the committed table (no regression '
                'result in summary.json)</span>'), None
    msgs = [m for m in entry["differences"] if m.startswith(f"table {committed_stem},")]
    where = f"{esc(committed_dir)}/{esc(committed_stem)}.csv"
    if not msgs:
        return f'<span class="ok">within tolerance of {where}</span>', {}
    hits = [(re.match(r"table \S+, row '(.*?)', column '(.*?)'", m), m) for m in msgs]
    items = "".join(f"<li>{esc(m)}</li>" for m in msgs)
    return (f'<span class="bad">{len(msgs)} difference(s) beyond tolerance of {where}</span>'
            f'<ul>{items}</ul>'), {(h[1], h[2]): m for h, m in hits if h}


def _no_object(r: dict) -> bool:
    """The kit writes -1 (no object of that size in the evaluated set) with a note saying so."""
    return str(r.get("note") or "").startswith("-1:")


def _paper_cells(r: dict, found: list) -> tuple:
    """(paper <td>, difference <td>) of measured record ``r`` and its paper lines ``found``."""
    none = '<td class="diff num none">-</td>'
    if len(found) != 1:
        why = f"ambiguous: {len(found)} paper lines" if found else "no paper value"
        return f'<td class="paper num none">{why}</td>', none
    p = found[0]
    if _no_object(r):
        r = {**r, "value": None}
    mark = (f'<sup class="derived" title="{esc(p["derivation"])}">&dagger;</sup>'
            if p["status"] == "derived" else "")
    paper = f'<td class="paper num" title="{esc(p["source"])}">{_num(p["value"])}{mark}</td>'
    if p["value"] is None or r["value"] is None:
        return paper, none
    d = r["value"] - p["value"]
    return paper, f'<td class="diff num {"neg" if d < 0 else "pos"}">{round(d, 6):+}</td>'


def measured_block(entry: dict, produced: str, committed: str, out: Path, root: Path) -> str:
    """One measured table beside the paper's values, or a visible 'missing' block."""
    path, cstem = out / entry["notebook"] / produced, Path(committed).stem
    attrs = f'class="measured" data-table="{esc(Path(produced).stem)}" data-committed="{esc(cstem)}"'
    if not path.is_file():
        return (f'<div {attrs} data-missing="1"><strong>missing:</strong> {esc(entry["notebook"])}'
                f'/{esc(produced)} was not written (the notebook failed or did not reach it); '
                f'committed copy: papers_tables/measured/{esc(committed)}</div>')
    table, paper = read_table(path), _paper_table(cstem, root)
    recs = table.records
    varying = [s for s in table.settings if len({r[s] for r in recs}) > 1]
    constant = ", ".join(f"{s}={recs[0][s]}" for s in table.settings
                         if recs and s not in varying and recs[0][s])
    index = {}
    for r in paper.records if paper else []:
        index.setdefault((r["row"], r["column"]), []).append(r)
    committed_dir = "papers_tables/measured" + ("/ci" if entry.get("tier") == "ci" else "")
    tol_html, flagged = _tolerance(entry, cstem, committed_dir)
    rows = []
    for r in recs:
        key = (r["row"], r["column"])
        if flagged is None:
            tol_td = '<td class="none">-</td>'
        else:
            tol_td = (f'<td class="bad" title="{esc(flagged[key])}">beyond</td>' if key in flagged
                      else '<td class="ok">ok</td>')
        cells = [esc(r["row"]), esc(r["method"]), esc(r["column"])] + [esc(r[s]) for s in varying]
        rows.append(f'<tr data-row="{esc(r["row"])}" data-column="{esc(r["column"])}">'
                    + "".join(f"<td>{c}</td>" for c in cells)
                    + (f'<td class="value num none" title="{esc(r["note"])}">-</td>'
                       if _no_object(r) else f'<td class="value num">{_num(r["value"])}</td>')
                    + "".join(_paper_cells(r, index.get(key, []))) + tol_td + "</tr>")
    head = "".join(f"<th>{esc(h)}</th>" for h in ["row", "method", "column", *varying, "measured",
                                                   "paper", "measured - paper", "vs committed"])
    paper_name = f"papers_tables/{paper.path.name}" if paper else "no paper table"
    notes = []
    if paper is None:
        notes.append("No paper table for this measurement: measured values alone.")
    elif not any(len(index.get((r["row"], r["column"]), [])) == 1 for r in recs):
        quoted = "; ".join(f"{_num(p['value'])} ({p['source']})" for p in paper.records
                           if p["column"] in {r["column"] for r in recs})
        notes.append(f"No clean mapping: none of these rows is a row of {paper_name}, so the measured "
                     "values stand alone." + (f" The paper prints: {quoted}." if quoted else ""))
    notes = [esc(n) for n in notes]
    if "&dagger;</sup>" in "".join(rows):
        notes.append("&dagger; derived from numbers the paper prints (not a table cell); "
                     "hover for the arithmetic.")
    return (f'<table {attrs}><caption><strong>{esc(produced)}</strong> vs {esc(paper_name)}'
            f'{" (" + esc(constant) + ")" if constant else ""}<br>{tol_html}</caption>'
            f'<thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            + "".join(f'<p class="note">{n}</p>' for n in notes))


def figures(name: str, out: Path, nb) -> list:
    """[(path, caption)]: image files under OUT/NAME, then the notebook's inline PNGs that no
    file holds, written to OUT/figures/NAME-k.png. A cell that calls ``savefig`` shows the
    figure it saved (at another dpi, so the bytes differ): its inline copy is skipped."""
    folder = out / name
    files = sorted(p for p in folder.rglob("*") if p.is_file()
                   and p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
    shown = [(p, str(p.relative_to(folder))) for p in files]
    saved = {hashlib.sha256(p.read_bytes()).digest() for p in files}
    dest = out / "figures"
    for old in dest.glob(f"{name}-*.png"):
        old.unlink()
    k = 0
    for i, cell in enumerate(nb.cells if nb is not None else []):
        if cell.cell_type != "code" or "savefig(" in cell.source:
            continue
        for o in cell.get("outputs", []):
            data = o.get("data", {}).get("image/png")
            if not data:
                continue
            png = base64.b64decode(data if isinstance(data, str) else "".join(data))
            if hashlib.sha256(png).digest() in saved:
                continue
            k += 1
            dest.mkdir(exist_ok=True)
            (dest / f"{name}-{k}.png").write_bytes(png)
            shown.append((dest / f"{name}-{k}.png", f"{name}-{k}.png (inline output of cell {i})"))
    return shown


def environment() -> list:
    """[(what, version or value)] of the interpreter building the page (the run's venv)."""
    rows = [("Python", platform.python_version())]
    for pkg in PACKAGES:
        try:
            rows.append((pkg, importlib.metadata.version(pkg)))
        except importlib.metadata.PackageNotFoundError:
            rows.append((pkg, "not installed"))
    try:
        cpu = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)[1]
    except (OSError, TypeError):   # no /proc (not Linux), or no model name in it
        cpu = platform.processor() or "unknown"
    rows.append(("CPU", f"{cpu.strip()}, {os.cpu_count()} cores"))
    try:
        gpu = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
        rows.append(("GPU", (gpu.returncode == 0 and gpu.stdout.strip()) or "none"))
    except (OSError, subprocess.SubprocessError):
        rows.append(("GPU", "none"))
    return rows


def _link(target: Path, out: Path) -> str:
    return esc(quote(Path(os.path.relpath(target, out)).as_posix()))


def _kv_table(rows) -> str:
    cells = "".join(f"<tr><th>{esc(a)}</th><td>{esc(b)}</td></tr>" for a, b in rows)
    return f"<table>{cells}</table>"


def _render(nb, target: Path, cache: dict) -> float:
    """Render ``nb`` to ``target`` with one HTMLExporter for the whole page; the seconds spent."""
    start = time.perf_counter()
    if "exporter" not in cache:
        from nbconvert import HTMLExporter
        cache["exporter"] = HTMLExporter()
    body, _ = cache["exporter"].from_notebook_node(nb)
    target.parent.mkdir(exist_ok=True)
    target.write_text(body, encoding="utf-8")
    return time.perf_counter() - start


def _notebook(entry: dict, out: Path, root: Path, render: bool, cache: dict) -> tuple:
    """(overview row, section) of one summary entry."""
    name, status = entry["notebook"], entry.get("status", "unknown")
    # OUT/NAME.ipynb first (it survives moving OUT), then the path summary.json recorded
    nb_path = next((p for p in (out / f"{name}.ipynb", Path(entry.get("executed") or "."))
                    if p.suffix == ".ipynb" and p.is_file()), None)
    nb = _read_notebook(nb_path) if nb_path else None
    for c in nb.cells if nb is not None else []:   # the profile the runner injected, if any
        if "injected-parameters" in (c.get("metadata", {}).get("tags") or []):
            cache.setdefault("profiles", set()).update(
                re.findall(r"^profile\s*=\s*['\"](\w+)['\"]", c.source, re.M))
    link = '<span class="bad">(no executed notebook)</span>'
    if nb_path is not None:
        target = out / "html" / f"{name}.html" if render else nb_path
        if render:
            cache["seconds"] = cache.get("seconds", 0.0) + _render(nb, target, cache)
        link = f'<a href="{_link(target, out)}">{esc(target.name)}</a>'
    cls, secs, v = ("ok" if status == "ok" else "bad"), f"{entry.get('seconds', 0):.1f} s", verdict(nb)
    tables = "".join(measured_block(entry, p, c, out, root) for p, c in MEASURED_TABLES.get(name, []))
    figs = "".join(f'<figure><img src="{_link(p, out)}" alt="{esc(cap)}"><figcaption>{esc(cap)}'
                   f'</figcaption></figure>' for p, cap in figures(name, out, nb))
    row = (f'<tr><td><a href="#nb-{esc(name)}">{esc(name)}</a></td><td class="{cls}">{esc(status)}'
           f'</td><td class="num">{secs}</td><td>{v}</td><td>{link}</td></tr>')
    section = (f'<section id="nb-{esc(name)}"><h2>{esc(name)}</h2><p><span class="{cls}">'
               f'{esc(status)}</span>, {secs}; executed notebook: {link}</p><p class="verdict">{v}</p>'
               + (f"<h3>Measured tables</h3>{tables}" if tables else "")
               + (f"<h3>Figures</h3>{figs}" if figs else "") + "</section>")
    return row, section


def build(out_dir, *, root=ROOT, render_notebooks=True) -> Path:
    """Write ``out_dir/index.html`` for the run in ``out_dir`` and return its path."""
    out, root = Path(out_dir).resolve(), Path(root)
    summary = read_summary(out / "summary.json")
    reg_path = out / "regression.txt"
    regression = ((reg_path.read_text(encoding="utf-8").splitlines() or ["(empty)"])[0]
                  if reg_path.is_file() else "regression.txt missing")
    cache = {}
    rows, sections = zip(*[_notebook(e, out, root, render_notebooks, cache) for e in summary]) \
        if summary else ((), ())
    total = sum(e.get("seconds", 0) for e in summary)
    tiers = ", ".join(sorted({e.get("tier", "?") for e in summary})) or "?"
    profile = ", ".join(sorted(cache.get("profiles", ()))) or "each notebook's default"
    n_ok = sum(e.get("status") == "ok" for e in summary)
    reg_cls = "ok" if regression.strip() == NO_DIFFERENCE else "bad"
    times = [(e["notebook"], f"{e.get('seconds', 0):.1f} s") for e in summary]
    times.append(("total", f"{total:.1f} s"))
    rendered = (f"Notebooks rendered to HTML in {cache.get('seconds', 0.0):.1f} s." if render_notebooks
                else "Notebooks not rendered: the links open the executed .ipynb files.")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>UGS kit results: {esc(out.name)}</title>
<style>{CSS}</style></head><body>
<h1>UGS reproduction kit: results in {esc(str(out))}</h1>
<p>Tier <strong>{esc(tiers)}</strong>, profile <strong>{esc(profile)}</strong>; {n_ok} of
{len(summary)} notebooks ok; total wall time {total:.1f} s ({total / 60:.1f} min).</p>
<p class="regression {reg_cls}">Regression against the committed tables: {esc(regression)}
(<a href="regression.txt">regression.txt</a>)</p>
<p class="note">The quick runs are tiny CPU settings: "measured - paper" says how far each is from
the paper's number, not whether the method reproduces; "vs committed" is the regression.</p>
<h2>Notebooks</h2><table><thead><tr><th>notebook</th><th>status</th><th>time</th><th>verdict</th>
<th>executed</th></tr></thead><tbody>{"".join(rows)}</tbody></table>
{"".join(sections)}
<h2>Environment</h2><p>The interpreter that built this page (the run's virtualenv).</p>
{_kv_table(environment())}<h3>Wall time per notebook</h3>{_kv_table(times)}
<p class="note">{rendered}</p>
</body></html>
"""
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ugs.results_page",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="the run's output folder (holds summary.json)")
    ap.add_argument("--no-html-notebooks", action="store_true",
                    help="link the executed .ipynb files instead of rendering them to HTML")
    args = ap.parse_args(argv)
    try:
        page = build(args.out, render_notebooks=not args.no_html_notebooks)
    except (OSError, ValueError, KeyError) as exc:
        print(f"results_page: {exc}", file=sys.stderr)
        return 1
    print(f"results page: {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
