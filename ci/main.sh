#!/usr/bin/env bash
# README command 1: set up the environment (idempotent) and run the main job: every notebook
# in its quick profile on the CPU (the main parameter set), executed notebooks + figures +
# tables in one folder, and each measured table compared with the committed one.
#   bash ci/main.sh [OUT]        (default OUT = outputs/main)
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/bootstrap.sh
out=${1:-outputs/main}
start=$(date +%s)
.venv/bin/python ci/run_notebooks.py --tier main --out "$out"
echo "main job: $(( $(date +%s) - start )) s; results in $out/"
echo "regression against papers_tables/measured/: $(head -n1 "$out/regression.txt") (details: $out/regression.txt)"
