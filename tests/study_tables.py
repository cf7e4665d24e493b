"""Reading a committed CPU-study table (``papers_tables/measured/study/``) with the csv module
alone, for the tests that recompute its statistics and read the paper's claims from its runs."""
import csv
from pathlib import Path

STUDY = Path(__file__).resolve().parents[1] / "papers_tables" / "measured" / "study"


def read_committed(committed):
    """``(runs, derived)`` of a committed study table: ``runs[(arm, metric)] = {seed: value}``
    from its ``measured`` records, ``derived[(comparison, metric, statistic)] = (value, seeds
    text)`` from its ``derived`` ones (any other status fails)."""
    runs, derived = {}, {}
    with open(STUDY / committed, newline="") as fh:
        for r in csv.DictReader(fh):
            if r["status"] == "measured":
                runs.setdefault((r["row"], r["column"]), {})[int(r["seed"])] = float(r["value"])
            else:
                assert r["status"] == "derived", r
                metric, stat = r["column"].split(" ")
                derived[(r["row"], metric, stat)] = (float(r["value"]), r["seed"])
    return runs, derived
