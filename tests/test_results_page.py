"""The main job's results page (``ugs.results_page``) on a synthetic output folder.

The folder imitates ``ci/run_notebooks.py --out OUT``: four executed notebooks made with
nbformat (a markdown verdict, a code verdict with a markdown and a PNG output, one without a
verdict, one that failed), ``summary.json``, ``regression.txt`` and real measured tables copied
from ``papers_tables/measured/`` into ``OUT/<notebook>/`` (Table 4 because it holds the paper's
derived values), Table 7 left out on purpose. The page is read back with ``html.parser``; every
expected number comes from the CSV files, read here with ``csv``.
"""
import base64
import csv
import json
import pathlib
import platform
import re
import shutil
import struct
import subprocess
import sys
import zlib
from html.parser import HTMLParser

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from ugs import results_page

ROOT = pathlib.Path(__file__).resolve().parents[1]
MEASURED = ROOT / "papers_tables" / "measured"
# notebook -> (file the notebook writes, committed copy), as in ugs.measured.MEASURED_TABLES
PRESENT = {"03_visdrone_detectors": ("table1_measured.csv", "table1_quick_synthetic.csv"),
           "07_voc_coco": ("table4_measured.csv", "table4_quick_synthetic.csv"),
           "09_ablation": ("table6_measured.csv", "table6_quick_synthetic.csv")}
MISSING = ("10_grid_parameters", "table7_measured")
VERDICT_03 = "## Verdict\n**FCOS w/ UGS** beats FCOS on the synthetic set (`AP` +10.9)."
VERDICT_07 = "UGS keeps VOC AP within *tolerance* of the committed run."
FLAGGED = ("fcos", "AP")   # the one difference planted in summary.json (table 1)
SECONDS = {"03_visdrone_detectors": 101.5, "07_voc_coco": 40.25, "09_ablation": 60.0,
           "10_grid_parameters": 3.0}


def png(r, g, b):
    """A valid 1x1 RGB PNG of one colour: different colours give different bytes."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes([0, r, g, b]))) + chunk(b"IEND", b""))


INLINE_07, INLINE_09, FILE_07 = png(255, 0, 0), png(0, 255, 0), png(0, 0, 255)


def image_output(data):
    return new_output("display_data", data={"image/png": base64.b64encode(data).decode(),
                                            "text/plain": "<Figure size 640x480 with 1 Axes>"})


def make_out(out):
    """The synthetic OUT folder; returns it."""
    out.mkdir(parents=True)
    nbs = {
        "03_visdrone_detectors": [new_code_cell("x = 1", outputs=[]),
                                  new_markdown_cell(VERDICT_03, metadata={"tags": ["verdict"]})],
        "07_voc_coco": [new_code_cell("display(Markdown(verdict_md)); plt.show()", metadata={"tags": ["verdict"]},
                                      outputs=[new_output("stream", name="stdout",
                                                          text="voc_r50: AP 0.0 (paper 79.5)\n"),
                                               new_output("display_data", data={
                                          "text/markdown": VERDICT_07,
                                          "text/plain": "<IPython.core.display.Markdown object>"}),
                                               image_output(INLINE_07)])],
        # no verdict cell; its only inline figure comes from a cell that saved it as a file
        "09_ablation": [new_code_cell("fig.savefig(output_path / 'table6.png'); plt.show()",
                                      outputs=[image_output(INLINE_09)])],
        "10_grid_parameters": [new_markdown_cell("Grid parameters did not finish.",
                                                 metadata={"tags": ["verdict"]})],
    }
    for name, cells in nbs.items():
        nbformat.write(new_notebook(cells=cells), out / f"{name}.ipynb")
        (out / name).mkdir()
    for name, (produced, committed) in PRESENT.items():
        shutil.copy(MEASURED / committed, out / name / produced)
    (out / "07_voc_coco" / "plots").mkdir()
    (out / "07_voc_coco" / "plots" / "table4.png").write_bytes(FILE_07)
    flagged = (f"table table1_quick_synthetic, row '{FLAGGED[0]}', column '{FLAGGED[1]}': committed "
               "1.0, new 9.0 (difference 8, tolerance ±(1 + 0.1 x |committed|))")
    summary = [
        dict(notebook="03_visdrone_detectors", tier="main", differences=[flagged], status="ok"),
        dict(notebook="07_voc_coco", tier="main", differences=[], status="ok"),
        dict(notebook="09_ablation", tier="main", differences=[], status="ok"),
        dict(notebook="10_grid_parameters", tier="main", differences=[], status="failed: RuntimeError: x",
             regression_error="10_grid_parameters wrote no table7_measured.csv"),
    ]
    for e in summary:
        e.update(seconds=SECONDS[e["notebook"]], executed=str(out / f"{e['notebook']}.ipynb"))
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "regression.txt").write_text(f"2 difference(s) from papers_tables/measured beyond tolerance:\n{flagged}\n")
    return out


# ----------------------------------------------------------------------------- a small DOM

VOID = {"img", "br", "meta", "link", "hr", "input", "source", "col", "wbr"}


class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent, self.children = tag, dict(attrs), parent, []

    def text(self):
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def find_all(self, tag=None, **attrs):
        out = []
        for c in self.children:
            if isinstance(c, Node):
                if (tag is None or c.tag == tag) and all(c.attrs.get(k.rstrip("_").replace("_", "-")) == v
                                                         for k, v in attrs.items()):
                    out.append(c)
                out += c.find_all(tag, **attrs)
        return out

    def classes(self):
        return (self.attrs.get("class") or "").split()


class Tree(HTMLParser):
    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.root = self.at = Node("#root", {}, None)
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.at)
        self.at.children.append(node)
        if tag not in VOID:
            self.at = node

    def handle_endtag(self, tag):
        node = self.at
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.at = node.parent

    def handle_data(self, data):
        self.at.children.append(data)


def parse(path):
    return Tree(path.read_text(encoding="utf-8")).root


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = make_out(tmp_path_factory.mktemp("page") / "out")
    page = results_page.build(out)
    return out, page, parse(page)


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def one(nodes):
    assert len(nodes) == 1, [n.attrs for n in nodes]
    return nodes[0]


def table_of(dom, stem):
    return one([n for n in dom.find_all(data_table=stem) if "measured" in n.classes()])


def cell(table, row, column, cls):
    tr = one(table.find_all("tr", data_row=row, data_column=column))
    return one([td for td in tr.find_all("td") if cls in td.classes()])


def section(dom, name):
    return one(dom.find_all("section", id=f"nb-{name}"))


# ----------------------------------------------------------------------------- tests

def test_page_is_written_in_out(built):
    out, page, _ = built
    assert page == out.resolve() / "index.html" and page.is_file()


def test_every_present_measured_table_lists_every_csv_value(built):
    out, _, dom = built
    for name, (produced, _) in PRESENT.items():
        table = table_of(dom, produced[:-4])
        assert table.tag == "table" and "data-missing" not in table.attrs
        records = read_csv(out / name / produced)
        assert len([tr for tr in table.find_all("tr") if "data-row" in tr.attrs]) == len(records)
        for r in records:
            shown = cell(table, r["row"], r["column"], "value").text()
            if r["note"].startswith("-1:"):   # the kit's code for "no object of this size"
                assert float(r["value"]) == -1.0 and shown == "-", r
            else:
                assert float(shown) == float(r["value"]), r


def test_paper_value_and_difference_from_the_paper_csv(built):
    out, _, dom = built
    cases = [("table1_measured", "03_visdrone_detectors", "table1_visdrone.csv", "fcos_ugs", "AP"),
             ("table4_measured", "07_voc_coco", "table4_voc_coco.csv", "faster_rcnn_r50_coco", "AP_s"),
             ("table6_measured", "09_ablation", "table6_ablation.csv", "l2_baseline", "AP50")]
    for stem, name, paper_file, row, column in cases:
        measured = next(float(r["value"]) for r in read_csv(out / name / f"{stem}.csv")
                        if (r["row"], r["column"]) == (row, column))
        paper = next(float(r["value"]) for r in read_csv(ROOT / "papers_tables" / paper_file)
                     if (r["row"], r["column"]) == (row, column))
        table = table_of(dom, stem)
        assert float(cell(table, row, column, "paper").text()) == paper
        diff = cell(table, row, column, "diff")
        assert abs(float(diff.text()) - (measured - paper)) < 1e-6
        assert ("neg" if measured - paper < 0 else "pos") in diff.classes()


def test_a_measured_row_the_paper_lacks_has_no_paper_value(built):
    _, _, dom = built
    table = table_of(dom, "table1_measured")   # fcos_grid_iou: the kit's control, not a paper row
    paper = read_csv(ROOT / "papers_tables" / "table1_visdrone.csv")
    assert not [r for r in paper if r["row"] == "fcos_grid_iou"]
    assert "none" in cell(table, "fcos_grid_iou", "AP", "paper").classes()
    assert cell(table, "fcos_grid_iou", "AP", "diff").text() == "-"
    assert cell(table, "fcos", "train_loss", "diff").text() == "-"


def test_no_object_of_a_size_is_not_a_value_minus_one(built):
    out, _, dom = built
    rec = next(r for r in read_csv(out / "03_visdrone_detectors" / "table1_measured.csv")
               if (r["row"], r["column"]) == ("fcos", "AP_l"))
    assert rec["value"] == "-1.0" and rec["note"].startswith("-1: no ground truth of this size")
    table = table_of(dom, "table1_measured")
    assert cell(table, "fcos", "AP_l", "value").text() == "-"
    assert cell(table, "fcos", "AP_l", "diff").text() == "-"
    paper = next(float(r["value"]) for r in read_csv(ROOT / "papers_tables" / "table1_visdrone.csv")
                 if (r["row"], r["column"]) == ("fcos", "AP_l"))
    assert float(cell(table, "fcos", "AP_l", "paper").text()) == paper


def test_derived_paper_values_are_marked_with_their_derivation(built):
    out, _, dom = built
    table = table_of(dom, "table4_measured")
    measured = {(r["row"], r["column"]) for r in read_csv(out / "07_voc_coco" / "table4_measured.csv")}
    paper = read_csv(ROOT / "papers_tables" / "table4_voc_coco.csv")
    derived = [r for r in paper if r["status"] == "derived" and (r["row"], r["column"]) in measured]
    assert derived   # R-50 w/ UGS on VOC and COCO (Sec. 4.4)
    for r in derived:
        mark = one(cell(table, r["row"], r["column"], "paper").find_all(class_="derived"))
        assert mark.attrs["title"] == r["derivation"] and mark.text() == "\u2020"
    printed = next(r for r in paper if r["status"] == "printed" and (r["row"], r["column"]) in measured)
    assert not cell(table, printed["row"], printed["column"], "paper").find_all(class_="derived")
    assert "\u2020 derived" in section(dom, "07_voc_coco").text()   # the legend line


def test_missing_table_is_flagged(built):
    _, _, dom = built
    block = table_of(dom, MISSING[1])
    assert block.attrs.get("data-missing") == "1"
    assert "missing" in block.text() and "table7_measured.csv" in block.text()
    assert block in section(dom, MISSING[0]).find_all()


def test_tolerance_status_per_table_and_cell(built):
    _, _, dom = built
    t1, t4 = table_of(dom, "table1_measured"), table_of(dom, "table4_measured")
    assert "1 difference(s) beyond tolerance" in t1.text()
    assert cell(t1, *FLAGGED, "bad").text() == "beyond"
    assert cell(t1, "fcos_ugs", "AP", "ok").text() == "ok"
    assert "within tolerance" in t4.text() and "beyond" not in t4.text()


def test_verdicts(built):
    _, _, dom = built
    v03 = one(section(dom, "03_visdrone_detectors").find_all("p", **{"class": "verdict"}))
    assert "FCOS w/ UGS beats FCOS on the synthetic set (AP +10.9)." in v03.text()
    assert "**" not in v03.text() and "#" not in v03.text()
    assert one(v03.find_all("strong")).text() == "FCOS w/ UGS"
    v07 = one(section(dom, "07_voc_coco").find_all("p", **{"class": "verdict"}))
    assert "UGS keeps VOC AP within tolerance of the committed run." in v07.text()
    assert "IPython" not in v07.text() and "Figure size" not in v07.text()
    assert "voc_r50" not in v07.text()   # the cell's printed lines give way to its Markdown verdict
    assert "(no verdict cell)" in section(dom, "09_ablation").text()
    for name in ("03_visdrone_detectors", "07_voc_coco", "10_grid_parameters"):
        assert "(no verdict cell)" not in section(dom, name).text()


def test_figures_files_and_inline_images(built):
    out, _, dom = built
    srcs = {img.attrs["src"] for img in dom.find_all("img")}
    assert (out / "figures" / "07_voc_coco-1.png").read_bytes() == INLINE_07
    assert "figures/07_voc_coco-1.png" in srcs
    assert "07_voc_coco/plots/table4.png" in srcs
    captions = [f.text() for f in section(dom, "07_voc_coco").find_all("figcaption")]
    assert any("plots/table4.png" in c for c in captions)
    assert not list((out / "figures").glob("09_ablation-*"))   # saved by its cell: not extracted


def test_header_notebook_links_and_environment(built):
    out, _, dom = built
    reg = one([p for p in dom.find_all("p") if "regression" in p.classes()])
    assert "bad" in reg.classes() and "2 difference(s)" in reg.text()
    text = dom.text()
    assert f"{sum(SECONDS.values()):.1f} s" in text and "main" in text
    hrefs = {a.attrs.get("href") for a in dom.find_all("a")}
    for name in SECONDS:
        assert f"html/{name}.html" in hrefs and (out / "html" / f"{name}.html").is_file()
    status = section(dom, "10_grid_parameters").find_all(class_="bad")
    assert any("failed: RuntimeError" in s.text() for s in status)
    assert platform.python_version() in text and "numpy" in text and "GPU" in text


def test_clean_run_is_green_and_notebooks_can_stay_ipynb(tmp_path):
    out = make_out(tmp_path / "out")
    (out / "regression.txt").write_text("no difference beyond tolerance\n")
    dom = parse(results_page.build(out, render_notebooks=False))
    reg = one([p for p in dom.find_all("p") if "regression" in p.classes()])
    assert "ok" in reg.classes() and "bad" not in reg.classes()
    hrefs = {a.attrs.get("href") for a in dom.find_all("a")}
    assert "03_visdrone_detectors.ipynb" in hrefs and not (out / "html").exists()


@pytest.mark.parametrize("content", ["{not json", '{"notebook": "03"}', '[{"status": "ok"}]'])
def test_malformed_summary_names_the_file(tmp_path, content):
    out = make_out(tmp_path / "out")
    (out / "summary.json").write_text(content)
    with pytest.raises(ValueError, match=re.escape(str(out / "summary.json"))):
        results_page.build(out, render_notebooks=False)


def test_cli_prints_the_page_path_last(tmp_path):
    out = make_out(tmp_path / "out")
    done = subprocess.run([sys.executable, "-m", "ugs.results_page", str(out), "--no-html-notebooks"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == f"results page: {out.resolve() / 'index.html'}"
    assert (out / "index.html").is_file()


def test_markdown_joins_wrapped_lines_and_keeps_paragraphs_and_bullets():
    from ugs.results_page import markdown
    assert markdown("**Verdict:** holds for a fixed\npixel error.") == "<strong>Verdict:</strong> holds for a fixed pixel error."
    assert markdown("one\n\ntwo\n* a\n* b") == "one<br><br>two<br>* a<br>* b"
