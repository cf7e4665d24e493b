"""The kit's measured tables: where each notebook writes them, how they are committed, and the
regression check that compares a re-run with the committed copy.

A notebook run writes its measured tables (``papers_tables`` schema, ``status = measured``,
``source`` = the full command of each run) into its output folder. The committed copies under
``papers_tables/measured/`` (the main job's parameter set), ``papers_tables/measured/ci/``
(the smaller set the test command re-executes) and ``papers_tables/measured/study/`` (the CPU
study, hours of training, never in CI) are written only by ``ci/run_notebooks.py
--update-committed`` through :func:`commit_tables`: each ``source`` becomes a short run id
(``03_visdrone_detectors/fcos``) and the commands go, once each, to ``commands.csv`` beside
the tables. :func:`compare_table` then checks a re-run against a committed table value by value
under the per-table, per-column tolerances of ``papers_tables/measured/tolerances.csv``.

Standard library only, like :mod:`ugs.papers`.
"""
from __future__ import annotations

import csv
import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from .papers import read_table, write_table


#: What each notebook measures: notebook stem -> [(file it writes in its output folder,
#: committed file name)]. Notebooks 01, 02 and 12 write figures and statistics, no table.
MEASURED_TABLES: Dict[str, List[Tuple[str, str]]] = {
    "03_visdrone_detectors": [("table1_measured.csv", "table1_quick_synthetic.csv")],
    "04_visdrone_dino": [("table1_dino_measured.csv", "table1_dino_quick_synthetic.csv")],
    "05_visdrone_yolo": [("table2_measured.csv", "table2_quick_synthetic.csv")],
    "06_soda_a_rotated": [("table3_measured.csv", "table3_quick_synthetic.csv")],
    "07_voc_coco": [("table4_measured.csv", "table4_quick_synthetic.csv")],
    "08_training_cost": [("table5_measured_quick_cpu.csv", "table5_quick_cpu.csv")],
    "09_ablation": [("table6_measured.csv", "table6_quick_synthetic.csv")],
    "10_grid_parameters": [("table7_measured.csv", "table7_quick_synthetic.csv")],
    "11_gradient_variance": [("figure6_measured.csv", "figure6_quick_synthetic.csv")],
}
#: The CPU study's tables (issue 16), written by a notebook run with ``profile = "study"``
#: (``ugs.openmmlab.study``): notebook stem -> [(file in its output folder, committed file name)].
STUDY_TABLES: Dict[str, List[Tuple[str, str]]] = {
    "03_visdrone_detectors": [("table1_study.csv", "table1_study_synthetic128.csv")],
    "09_ablation": [("table6_study.csv", "table6_study_synthetic128.csv")],
    "11_gradient_variance": [("figure6_measured.csv", "figure6_study_synthetic128.csv")],
    "12_gradient_maps": [("figure2_measured.csv", "figure2_study_synthetic128.csv")],
}
#: Committed copies per parameter set ("tier"): main job -> measured/, test command -> measured/ci/,
#: the CPU study (hours; never in CI) -> measured/study/.
TIERS = ("main", "ci", "study")
COMMANDS_FILE = "commands.csv"
TOLERANCES_FILE = "tolerances.csv"
TOLERANCE_COLUMNS = ("table", "column", "check", "abs_tol", "rel_tol", "why")
#: Several commands in one ``source`` are joined with this (e.g. Fig. 6: two losses).
COMMAND_SEPARATOR = " ; "


def measured_root(tier: str = "main", root: Optional[Path] = None) -> Path:
    """``papers_tables/measured`` (tier ``main``), ``papers_tables/measured/ci`` (``ci``) or
    ``papers_tables/measured/study`` (``study``)."""
    if tier not in TIERS:
        raise ValueError(f"tier must be one of {TIERS}, got {tier!r}")
    base = Path(root) if root is not None else Path(__file__).resolve().parent.parent
    folder = base / "papers_tables" / "measured"
    return folder if tier == "main" else folder / tier


def tables_of(notebook: str, tier: str = "main") -> List[Tuple[str, str]]:
    """The tables ``notebook`` writes in ``tier``: [(file in its output folder, committed name)]
    (none where it writes none)."""
    if tier not in TIERS:
        raise ValueError(f"tier must be one of {TIERS}, got {tier!r}")
    return list((STUDY_TABLES if tier == "study" else MEASURED_TABLES).get(notebook, []))


# ----------------------------------------------------------------------------- run ids

def portable_command(command: str) -> str:
    """A command as a user types it: a leading interpreter path (``.venv/bin/python``,
    ``/usr/bin/python3``) becomes ``python``; the rest is unchanged."""
    parts = shlex.split(command)
    if parts and Path(parts[0]).name.startswith("python"):
        parts[0] = "python"
    return shlex.join(parts)


def run_id(command: str, notebook: str) -> str:
    """A short, stable id for one run: ``<notebook>/<name>``, the name being the last
    component of the command's ``--work-dir``, else the stem of its ``--out`` file.

    Raises ValueError for a command with neither (an id must not depend on row order)."""
    parts = shlex.split(command)
    for flag, take in (("--work-dir", lambda p: Path(p).name), ("--out", lambda p: Path(p).stem)):
        if flag in parts and parts.index(flag) + 1 < len(parts):
            return f"{notebook}/{take(parts[parts.index(flag) + 1])}"
    raise ValueError(f"{notebook}: cannot name the run of command {command!r}: it has no "
                     "--work-dir or --out")


def split_sources(source: str) -> List[str]:
    """The commands of one record's ``source`` (several are joined by ``' ; '``)."""
    return [c.strip() for c in source.split(COMMAND_SEPARATOR) if c.strip()]


def read_commands(path: Path) -> Dict[str, str]:
    """``{run id: command}`` of a commands file (empty when the file is absent)."""
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames != ["run", "command"]:
            raise ValueError(f"{path}, line 1: header must be 'run,command', got {reader.fieldnames}")
        out = {}
        for row in reader:
            if row["run"] in out:
                raise ValueError(f"{path}, line {reader.line_num}: run {row['run']!r} listed twice")
            out[row["run"]] = row["command"]
    return out


def write_commands(commands: Dict[str, str], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["run", "command"])
        for k in sorted(commands):
            w.writerow([k, commands[k]])


#: Stands for the run's output folder in a committed command (it differs between runs of the
#: same parameters: ``outputs/main/08_...`` for the main job, a temporary folder elsewhere).
OUTPUT_DIR = "OUTPUT_DIR"


def _without_output_dir(command: str, output_dir: Optional[Path]) -> str:
    if output_dir is None:
        return command
    out = Path(output_dir).resolve()
    repo = Path(__file__).resolve().parent.parent
    forms = [str(out)] + ([str(out.relative_to(repo))] if out.is_relative_to(repo) else [])
    for form in forms:
        command = command.replace(form, OUTPUT_DIR)
    return command


def with_run_ids(records: Iterable[dict], notebook: str,
                 output_dir: Optional[Path] = None) -> Tuple[List[dict], Dict[str, str]]:
    """Records whose ``source`` (full commands) is replaced by run ids, and ``{id: command}``
    (``output_dir``, where the run wrote its files, written as ``OUTPUT_DIR``).

    Two different commands that would get one id raise ValueError."""
    out, commands = [], {}
    for r in records:
        ids = []
        for cmd in split_sources(r["source"]):
            cmd = _without_output_dir(portable_command(cmd), output_dir)
            rid = run_id(cmd, notebook)
            if commands.get(rid, cmd) != cmd:
                raise ValueError(f"{notebook}: run id {rid!r} names two commands:\n  "
                                 f"{commands[rid]}\n  {cmd}")
            commands[rid] = cmd
            ids.append(rid)
        out.append({**r, "source": COMMAND_SEPARATOR.join(ids)})
    return out, commands


def commit_tables(notebook: str, output_dir: Path, tier: str = "main",
                  root: Optional[Path] = None) -> List[Path]:
    """Copy the tables ``notebook`` wrote into ``output_dir`` to the committed folder of
    ``tier``, sources as run ids, and replace that notebook's entries in ``commands.csv``.

    Raises FileNotFoundError naming the missing file when the run wrote no table it should."""
    dest = measured_root(tier, root)
    written, commands = [], {}
    for produced, committed in tables_of(notebook, tier):
        src = Path(output_dir) / produced
        if not src.is_file():
            raise FileNotFoundError(f"{notebook}: the run wrote no {src}; nothing was committed")
        table = read_table(src)
        records, cmds = with_run_ids(table.records, notebook, output_dir)
        commands.update(cmds)
        written.append((records, dest / committed))
    for records, path in written:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_table(records, path)
    if written:
        known = {k: v for k, v in read_commands(dest / COMMANDS_FILE).items()
                 if not k.startswith(notebook + "/")}
        write_commands({**known, **commands}, dest / COMMANDS_FILE)
    return [p for _, p in written]


def load_measured(committed: str, tier: str = "main", root: Optional[Path] = None):
    """A committed measured table (``ugs.papers.PaperTable``) with each ``source`` expanded
    from run ids back to the commands of ``commands.csv``; an unknown run id raises KeyError
    naming the table."""
    dest = measured_root(tier, root)
    table = read_table(dest / committed)
    commands = read_commands(dest / COMMANDS_FILE)
    for r in table.records:
        ids = split_sources(r["source"])
        missing = [i for i in ids if i not in commands]
        if missing:
            raise KeyError(f"{dest / committed}: run id(s) {missing} not in {dest / COMMANDS_FILE}")
        r["run"] = r["source"]
        r["source"] = COMMAND_SEPARATOR.join(commands[i] for i in ids)
    return table


# ----------------------------------------------------------------------------- tolerances

@dataclass(frozen=True)
class Tolerance:
    """|new - committed| <= abs_tol + rel_tol * |committed| passes; ``check = "excluded"``
    columns are not compared (``why`` says why)."""

    table: str
    column: str
    check: str
    abs_tol: float
    rel_tol: float
    why: str

    def allows(self, committed: Optional[float], new: Optional[float]) -> bool:
        if self.check == "excluded":
            return True
        if committed is None or new is None:
            return committed is None and new is None
        return abs(new - committed) <= self.abs_tol + self.rel_tol * abs(committed)

    def describe(self) -> str:
        if self.check == "excluded":
            return "excluded"
        parts = []
        if self.abs_tol:
            parts.append(f"{self.abs_tol:g}")
        if self.rel_tol:
            parts.append(f"{self.rel_tol:g} x |committed|")
        return "±(" + " + ".join(parts) + ")" if parts else "exact"


def load_tolerances(path: Optional[Path] = None) -> Dict[Tuple[str, str], Tolerance]:
    """``{(table stem, column): Tolerance}`` from ``tolerances.csv`` (column ``*`` = every
    column of that table without a line of its own). Malformed lines raise with the line."""
    path = Path(path) if path is not None else measured_root("main") / TOLERANCES_FILE
    out = {}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != TOLERANCE_COLUMNS:
            raise ValueError(f"{path}, line 1: header must be {','.join(TOLERANCE_COLUMNS)}")
        for row in reader:
            at = f"{path}, line {reader.line_num}"
            if row["check"] not in ("value", "excluded"):
                raise ValueError(f"{at}: check must be 'value' or 'excluded', got {row['check']!r}")
            if not row["why"].strip():
                raise ValueError(f"{at}: every tolerance says why")
            nums = []
            for c in ("abs_tol", "rel_tol"):
                text = row[c].strip() or "0"
                try:
                    v = float(text)
                except ValueError:
                    raise ValueError(f"{at}: {c} {row[c]!r} is not a number") from None
                if not math.isfinite(v) or v < 0:
                    raise ValueError(f"{at}: {c} must be a finite number >= 0, got {row[c]!r}")
                nums.append(v)
            key = (row["table"], row["column"])
            if key in out:
                raise ValueError(f"{at}: a second line for table {key[0]!r}, column {key[1]!r}")
            out[key] = Tolerance(row["table"], row["column"], row["check"], nums[0], nums[1], row["why"])
    return out


def tolerance_for(tolerances: Dict[Tuple[str, str], Tolerance], table: str, column: str) -> Tolerance:
    """The tolerance of ``column`` in ``table``; KeyError naming both when none is stated."""
    for key in ((table, column), (table, "*")):
        if key in tolerances:
            return tolerances[key]
    raise KeyError(f"no tolerance stated for table {table!r}, column {column!r} in "
                   f"{TOLERANCES_FILE}: add a line (with why)")


# ----------------------------------------------------------------------------- comparison

@dataclass(frozen=True)
class Difference:
    """One way a re-run differs from the committed table."""

    table: str
    row: str
    column: str
    settings: str
    committed: Optional[float]
    new: Optional[float]
    tolerance: str
    kind: str  # "value", "missing" (committed, not re-measured), "extra" (new), "command"

    def message(self) -> str:
        where = f"table {self.table}, row {self.row!r}, column {self.column!r}"
        if self.settings:
            where += f" ({self.settings})"
        if self.kind == "value":
            return (f"{where}: committed {_num(self.committed)}, new {_num(self.new)} "
                    f"(difference {_num(_diff(self.new, self.committed))}, tolerance {self.tolerance})")
        if self.kind == "missing":
            return f"{where}: committed {_num(self.committed)}, missing from the re-run"
        if self.kind == "extra":
            return f"{where}: new {_num(self.new)}, not in the committed table"
        return f"{where}: {self.tolerance}"


def _num(v) -> str:
    return "-" if v is None else f"{v:.6g}"


def _diff(a, b):
    return None if a is None or b is None else a - b


def _keyed(table) -> Dict[tuple, dict]:
    return {(r["row"], r["column"]) + tuple(r[s] for s in table.settings): r for r in table.records}


def compare_table(committed_path: Path, new_path: Path,
                  tolerances: Dict[Tuple[str, str], Tolerance],
                  committed_commands: Optional[Dict[str, str]] = None,
                  notebook: Optional[str] = None, output_dir: Optional[Path] = None) -> List[Difference]:
    """Every difference between the committed table and a re-run's table beyond tolerance.

    ``new_path`` is the table as the notebook wrote it (full commands as ``source``);
    ``committed_path`` the committed copy (run ids). With ``committed_commands`` and
    ``notebook``, each run's command is compared too (a changed command means the committed
    table no longer describes what runs)."""
    committed_path, new_path = Path(committed_path), Path(new_path)
    name = committed_path.stem
    old, new = read_table(committed_path), read_table(new_path)
    settings_names = old.settings
    if tuple(new.settings) != tuple(old.settings):
        return [Difference(name, "*", "*", "", None, None,
                           f"setting columns differ: committed {list(old.settings)}, new {list(new.settings)}",
                           "command")]
    a, b = _keyed(old), _keyed(new)
    out = []
    for key in list(a) + [k for k in b if k not in a]:
        row, column, *sett = key
        sett_text = ", ".join(f"{s}={v}" for s, v in zip(settings_names, sett) if v != "")
        tol = tolerance_for(tolerances, name, column)
        ra, rb = a.get(key), b.get(key)
        if rb is None:
            out.append(Difference(name, row, column, sett_text, ra["value"], None, tol.describe(), "missing"))
        elif ra is None:
            out.append(Difference(name, row, column, sett_text, None, rb["value"], tol.describe(), "extra"))
        elif not tol.allows(ra["value"], rb["value"]):
            out.append(Difference(name, row, column, sett_text, ra["value"], rb["value"],
                                  tol.describe(), "value"))
    if committed_commands is not None and notebook is not None:
        _, new_cmds = with_run_ids(new.records, notebook, output_dir)
        for rid, cmd in sorted(new_cmds.items()):
            was = committed_commands.get(rid)
            if was != cmd:
                out.append(Difference(name, rid, "source", "", None, None,
                                      f"run {rid!r} ran `{cmd}`; committed: "
                                      + (f"`{was}`" if was else "no such run"), "command"))
    return out


def compare_notebook(notebook: str, output_dir: Path, tier: str,
                     tolerances: Optional[Dict[Tuple[str, str], Tolerance]] = None,
                     root: Optional[Path] = None) -> List[Difference]:
    """Compare every table ``notebook`` wrote into ``output_dir`` with the committed copies of
    ``tier``. A table the run should have written and did not raises FileNotFoundError."""
    tolerances = tolerances if tolerances is not None else load_tolerances()
    dest = measured_root(tier, root)
    commands = read_commands(dest / COMMANDS_FILE)
    out = []
    for produced, committed in tables_of(notebook, tier):
        new_path = Path(output_dir) / produced
        if not new_path.is_file():
            raise FileNotFoundError(f"{notebook} wrote no {new_path} (did the notebook fail?)")
        if not (dest / committed).is_file():
            raise FileNotFoundError(f"no committed {dest / committed}: commit it with "
                                    f"`python ci/run_notebooks.py{'' if tier == 'main' else ' --tier ' + tier} "
                                    f"--update-committed {notebook[:2]}`")
        out += compare_table(dest / committed, new_path, tolerances, commands, notebook, output_dir)
    return out


def report(differences: List[Difference]) -> str:
    """One line per difference, or a line saying there is none."""
    if not differences:
        return "every measured value within its stated tolerance of the committed table"
    return f"{len(differences)} difference(s) beyond tolerance:\n" + \
        "\n".join("  " + d.message() for d in differences)
