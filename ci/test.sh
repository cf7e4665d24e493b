#!/usr/bin/env bash
# README command 2: set up the environment (idempotent) and run the test suite: unit tests of
# the ugs core, data and environment checks, every paper config built and stepped, nbval on the
# CI notebooks (tests/notebooks/*.ipynb: every notebook with the ci parameter set, executed
# once), then the regression of the tables they measured against papers_tables/measured/ci/.
#   bash ci/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/bootstrap.sh
exec .venv/bin/python -m pytest tests --nbval-lax -p no:cacheprovider "$@"
