#!/usr/bin/env bash
# README command 1: set up the environment (idempotent) and run the main job: every notebook
# in its quick profile on the CPU, executed notebooks + figures + tables in one folder.
#   bash ci/main.sh [OUT]        (default OUT = outputs/main)
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/bootstrap.sh
out=${1:-outputs/main}
start=$(date +%s)
.venv/bin/python ci/run_notebooks.py --profile quick --out "$out"
echo "main job: $(( $(date +%s) - start )) s; results in $out/"
