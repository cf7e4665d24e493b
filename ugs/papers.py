"""The paper's numbers as data: load, check and write tables in one long CSV schema.

Tables 1-7 and Figure 6 of Sun et al. (ICCV 2025) live in ``papers_tables/*.csv`` at the repo
root, one value per line (``papers_tables/README.md`` describes every column). This module
reads them, validates them, compares the paper's text claims with its tables
(:func:`check_text_claims`) and writes the kit's own measured numbers in the same schema
(:func:`write_table`). Standard library only: no torch, no pandas, no detection framework.

Example::

    from ugs.papers import load_table
    t1 = load_table(1)
    t1.value("dino_5scale_ugs", "AP")        # 38.1
    print(t1.to_markdown(rows=["fcos", "fcos_ugs"], columns=["AP", "AP_s"]))
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Union

#: Columns every table file has, in this order; table-specific setting columns follow.
REQUIRED_COLUMNS = ("row", "method", "variant", "column", "value", "status", "source", "derivation")
#: ``printed`` in a table cell, ``derived`` from printed numbers (see ``derivation``),
#: ``not_reported`` where the paper prints '-', ``measured`` by this kit.
STATUSES = ("printed", "derived", "not_reported", "measured")
#: Free-text columns that are neither a setting nor part of a record's key.
ANNOTATION_COLUMNS = ("note",)

CLAIMS_FILE = "text_claims.csv"
CLAIM_COLUMNS = ("claim", "section", "quote", "table", "row_from", "row_to", "column", "kind",
                 "quoted", "expected", "note", "table_to")
CLAIM_KINDS = ("delta", "ratio_pct", "value", "same")
CLAIM_EXPECTED = ("agrees", "mismatch")
#: Two printed numbers are "the same" when they differ by less than this.
SAME_TOLERANCE = 1e-9

PathLike = Union[str, Path]


def default_root() -> Path:
    """``papers_tables/`` beside the ``ugs`` package (the repository root)."""
    return Path(__file__).resolve().parent.parent / "papers_tables"


def _root(root: Optional[PathLike]) -> Path:
    return Path(root) if root is not None else default_root()


# ----------------------------------------------------------------------------- tables

@dataclass
class PaperTable:
    """One table file: ``records`` are dicts of strings, except ``value`` (float or None)."""

    name: str
    path: Path
    records: list
    settings: tuple = ()

    def rows(self) -> list:
        """Row ids in file order, each once."""
        return list(dict.fromkeys(r["row"] for r in self.records))

    def columns(self) -> list:
        """Metric names (the ``column`` field) in file order, each once."""
        return list(dict.fromkeys(r["column"] for r in self.records))

    def select(self, row: Optional[str] = None, column: Optional[str] = None, **settings) -> list:
        """Records matching ``row``, ``column`` and setting values (compared as text)."""
        out = []
        for r in self.records:
            if row is not None and r["row"] != row:
                continue
            if column is not None and r["column"] != column:
                continue
            if any(r.get(k) != str(v) for k, v in settings.items()):
                continue
            out.append(r)
        return out

    def record(self, row: str, column: str, **settings) -> dict:
        """The one record at (row, column[, settings]); KeyError if none, ValueError if several."""
        found = self.select(row, column, **settings)
        if not found:
            where = f"{self.path.name}: no record for row {row!r}, column {column!r}"
            if settings:
                where += f", settings {settings!r}"
            raise KeyError(f"{where} (rows: {', '.join(self.rows())}; "
                           f"columns: {', '.join(self.columns())})")
        if len(found) > 1:
            raise ValueError(f"{self.path.name}: {len(found)} records for row {row!r}, column "
                             f"{column!r}; narrow it with settings ({', '.join(self.settings)})")
        return found[0]

    def value(self, row: str, column: str, **settings) -> Optional[float]:
        """The number at (row, column); None where the paper prints '-'."""
        return self.record(row, column, **settings)["value"]

    def to_markdown(self, rows: Optional[Iterable[str]] = None,
                    columns: Optional[Iterable[str]] = None, digits: Optional[int] = None) -> str:
        """A rows x metrics pivot as a Markdown table ('-' not reported, '*' derived).

        Numbers are shown in their shortest form (13.0, 0.151) or with ``digits`` decimals.
        """
        rows = list(rows) if rows is not None else self.rows()
        columns = list(columns) if columns is not None else self.columns()
        lines = ["| row | method | " + " | ".join(columns) + " |",
                 "|---|---|" + "---:|" * len(columns)]
        any_derived = False
        for row in rows:
            in_row = self.select(row)
            if not in_row:
                raise KeyError(f"{self.path.name}: no row {row!r} (rows: {', '.join(self.rows())})")
            cells = []
            for column in columns:
                found = [r for r in in_row if r["column"] == column]
                if len(found) > 1:
                    raise ValueError(f"{self.path.name}: row {row!r} has {len(found)} records for "
                                     f"{column!r}; a pivot needs one")
                cell = _format_cell(found[0], digits) if found else ""
                any_derived |= cell.endswith("*")
                cells.append(cell)
            lines.append(f"| {row} | {in_row[0]['method']} | " + " | ".join(cells) + " |")
        if any_derived:
            lines += ["", "\\* derived, not printed (see the `derivation` column)"]
        return "\n".join(lines)


def _format_cell(record: dict, digits: Optional[int]) -> str:
    if record["value"] is None:
        return "-"
    value = record["value"]
    text = repr(value) if digits is None else f"{value:.{digits}f}"
    return text + "*" if record["status"] == "derived" else text


def _parse_number(text: str, where: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{where}: value {text!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{where}: value {text!r} is not finite")
    return number


def _check_records(rows: list, columns: list, where: str, line_numbers: list) -> tuple:
    """Validate raw records (all fields text); return (typed records, setting columns).

    ``columns`` is the header, ``where`` names the file, ``line_numbers[i]`` is the line of
    ``rows[i]`` in it.
    """
    settings = tuple(c for c in columns if c not in REQUIRED_COLUMNS and c not in ANNOTATION_COLUMNS)
    typed, seen = [], {}
    for raw, line in zip(rows, line_numbers):
        at = f"{where}, line {line}"
        if None in raw or any(v is None for v in raw.values()):
            raise ValueError(f"{at}: wrong number of fields (header has {len(columns)})")
        missing = [c for c in columns if c not in raw]
        if missing:
            raise ValueError(f"{at}: missing column(s) {', '.join(missing)}")
        for c in ("row", "method", "variant", "column", "source"):
            if not raw[c].strip():
                raise ValueError(f"{at}: empty {c!r}")
        status = raw["status"]
        if status not in STATUSES:
            raise ValueError(f"{at}: status {status!r} is not one of {', '.join(STATUSES)}")
        text = raw["value"].strip()
        if (text == "") != (status == "not_reported"):
            raise ValueError(f"{at}: value must be empty exactly when status is not_reported "
                             f"(value {text!r}, status {status!r})")
        if (raw["derivation"].strip() != "") != (status == "derived"):
            raise ValueError(f"{at}: a derivation is required for, and only for, status derived")
        key = (raw["row"], raw["column"]) + tuple(raw[s] for s in settings)
        if key in seen:
            raise ValueError(f"{at}: duplicate of line {seen[key]} (row {raw['row']!r}, column "
                             f"{raw['column']!r}, same settings)")
        seen[key] = line
        record = dict(raw)
        record["value"] = None if text == "" else _parse_number(text, at)
        typed.append(record)
    return typed, settings


def _read_csv(path: Path, required: tuple) -> tuple:
    """(header, rows, line numbers) of a UTF-8 CSV file; checks the header."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [c for c in required if c not in header]
        if missing:
            raise ValueError(f"{path}, line 1: missing required column(s) {', '.join(missing)}")
        if len(set(header)) != len(header):
            raise ValueError(f"{path}, line 1: repeated column name in header")
        rows, lines = [], []
        for raw in reader:
            rows.append(raw)
            lines.append(reader.line_num)
    return header, rows, lines


def read_table(path: PathLike) -> PaperTable:
    """Load and validate one table file given by its path."""
    path = Path(path)
    header, raw, lines = _read_csv(path, REQUIRED_COLUMNS)
    records, settings = _check_records(raw, header, str(path), lines)
    return PaperTable(name=path.stem, path=path, records=records, settings=settings)


def list_tables(root: Optional[PathLike] = None) -> list:
    """Names (file stems) of the table files under ``root``; the claims file is not a table."""
    return sorted(p.stem for p in _root(root).glob("*.csv") if p.name != CLAIMS_FILE)


def load_table(name: Union[str, int, Path], root: Optional[PathLike] = None) -> PaperTable:
    """Load a table by number (1), short name ("table1", "figure6"), stem or file path."""
    if isinstance(name, Path) or (isinstance(name, str) and name.endswith(".csv")):
        return read_table(name)
    key = f"table{name}" if isinstance(name, int) else str(name)
    names = list_tables(root)
    hits = [n for n in names if n == key] or [n for n in names if n.startswith(key + "_")]
    if not hits:
        raise FileNotFoundError(f"no table {name!r} in {_root(root)} (have: {', '.join(names)})")
    if len(hits) > 1:
        raise ValueError(f"table name {name!r} is ambiguous in {_root(root)}: {', '.join(hits)}")
    return read_table(_root(root) / f"{hits[0]}.csv")


def _value_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return repr(float(value)) if isinstance(value, float) else str(value)


def write_table(records: Iterable[dict], path: PathLike) -> Path:
    """Validate ``records`` and write them in the table schema (e.g. status ``measured``).

    Required columns come first; any other keys follow in first-seen order, blank where a
    record lacks them. ``derivation`` may be omitted (written empty). Returns the path.
    """
    path = Path(path)
    records = list(records)
    extra = []
    for r in records:
        extra += [k for k in r if k not in REQUIRED_COLUMNS and k not in extra]
    columns = list(REQUIRED_COLUMNS) + extra
    rows = []
    for i, r in enumerate(records):
        missing = [c for c in REQUIRED_COLUMNS if c not in r and c != "derivation"]
        if missing:
            raise ValueError(f"{path}, record {i} (line {i + 2}): missing {', '.join(missing)}")
        rows.append({c: _value_text(r.get(c)) if c == "value"
                     else ("" if r.get(c) is None else str(r.get(c)))
                     for c in columns})
    _check_records(rows, columns, str(path), list(range(2, len(rows) + 2)))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


# ----------------------------------------------------------------------------- text claims

@dataclass(frozen=True)
class ClaimCheck:
    """One text claim set against the tables.

    ``computed`` is what the data give (the difference ``to - from`` for ``delta`` and
    ``same``, ``(to / from - 1) * 100`` for ``ratio_pct``, the value itself for ``value``);
    ``quoted`` is the number in the text (None for ``same``, whose target is 0).
    """

    claim: str
    section: str
    quote: str
    kind: str
    column: str
    table: str
    table_to: str
    row_from: str
    row_to: str
    computed: float
    quoted: Optional[float]
    tolerance: float
    agrees: bool
    expected: str
    note: str

    @property
    def diff(self) -> float:
        """computed - quoted (computed - 0 for ``same``)."""
        return self.computed - (self.quoted or 0.0)

    @property
    def as_expected(self) -> bool:
        """True when the check's outcome is what the claims file says it should be."""
        return self.agrees == (self.expected == "agrees")


def _tolerance(quoted: str) -> float:
    """Half a unit of the quoted number's last digit: "2.5" -> 0.05, "15" -> 0.5."""
    decimals = len(quoted.split(".")[1]) if "." in quoted else 0
    return 0.5 * 10.0 ** -decimals


def load_text_claims(root: Optional[PathLike] = None) -> list:
    """The rows of ``text_claims.csv``, validated (errors name the file and line)."""
    path = _root(root) / CLAIMS_FILE
    _, rows, lines = _read_csv(path, CLAIM_COLUMNS)
    seen = {}
    for raw, line in zip(rows, lines):
        at = f"{path}, line {line}"
        if None in raw or any(v is None for v in raw.values()):
            raise ValueError(f"{at}: wrong number of fields")
        if raw["kind"] not in CLAIM_KINDS:
            raise ValueError(f"{at}: kind {raw['kind']!r} is not one of {', '.join(CLAIM_KINDS)}")
        if raw["expected"] not in CLAIM_EXPECTED:
            raise ValueError(f"{at}: expected {raw['expected']!r} is not one of "
                             f"{', '.join(CLAIM_EXPECTED)}")
        if raw["kind"] == "same":
            if raw["quoted"]:
                raise ValueError(f"{at}: a 'same' claim has no quoted number")
        else:
            _parse_number(raw["quoted"], f"{at}, quoted")
        if raw["kind"] != "value" and not raw["row_from"]:
            raise ValueError(f"{at}: kind {raw['kind']!r} needs row_from")
        if not raw["row_to"] or not raw["table"] or not raw["column"]:
            raise ValueError(f"{at}: table, row_to and column are required")
        if raw["claim"] in seen:
            raise ValueError(f"{at}: claim id {raw['claim']!r} repeats line {seen[raw['claim']]}")
        seen[raw["claim"]] = line
        raw["_line"] = line
    return rows


def check_text_claims(root: Optional[PathLike] = None) -> list:
    """Recompute every claim of ``text_claims.csv`` from the tables; one ClaimCheck each.

    A claim agrees when |computed - quoted| is below half a unit of the quoted number's last
    digit (0.05 for the usual one-decimal points, 0.5 for "15%"); ``same`` claims need the
    two printed values to be equal.
    """
    tables = {}

    def table(name: str) -> PaperTable:
        if name not in tables:
            tables[name] = load_table(name, root)
        return tables[name]

    def number(name: str, row: str, column: str, claim: dict) -> float:
        v = table(name).value(row, column)
        if v is None:
            raise ValueError(f"{CLAIMS_FILE}, line {claim['_line']}: {name} row {row!r} column "
                             f"{column!r} is not reported, so claim {claim['claim']!r} cannot be checked")
        return v

    results = []
    for c in load_text_claims(root):
        table_to = c["table_to"] or c["table"]
        to = number(table_to, c["row_to"], c["column"], c)
        if c["kind"] == "value":
            computed = to
        else:
            start = number(c["table"], c["row_from"], c["column"], c)
            computed = (to / start - 1.0) * 100.0 if c["kind"] == "ratio_pct" else to - start
        if c["kind"] == "same":
            quoted, tolerance = None, SAME_TOLERANCE
        else:
            quoted, tolerance = float(c["quoted"]), _tolerance(c["quoted"])
        agrees = abs(computed - (quoted or 0.0)) < tolerance
        results.append(ClaimCheck(
            claim=c["claim"], section=c["section"], quote=c["quote"], kind=c["kind"],
            column=c["column"], table=c["table"], table_to=table_to, row_from=c["row_from"],
            row_to=c["row_to"], computed=computed, quoted=quoted, tolerance=tolerance,
            agrees=agrees, expected=c["expected"], note=c["note"]))
    return results
