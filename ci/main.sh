#!/usr/bin/env bash
# README command 1: set up the environment (idempotent) and run the main job: every notebook
# in its quick profile on the CPU (the main parameter set), executed notebooks + figures +
# tables in one folder, each measured table compared with the committed one, and one page of
# it all (OUT/index.html: verdicts, tables beside the paper, figures; its path is printed last).
#   bash ci/main.sh [OUT]        (default OUT = outputs/main)
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/bootstrap.sh
out=${1:-outputs/main}
start=$(date +%s)
status=0   # a failed notebook still gets its place on the results page; the job fails after it
.venv/bin/python ci/run_notebooks.py --tier main --out "$out" || status=$?
echo "main job: $(( $(date +%s) - start )) s; results in $out/"
echo "regression against papers_tables/measured/: $(head -n1 "$out/regression.txt") (details: $out/regression.txt)"
.venv/bin/python -m ugs.results_page "$out"   # last line: results page: <path>/index.html
exit "$status"
