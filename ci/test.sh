#!/usr/bin/env bash
# README command 2: set up the environment (idempotent) and run the test suite: unit tests of
# the ugs core, data and environment checks, every paper config built and stepped, nbval on the
# CI notebooks (tests/notebooks/*.ipynb: every notebook with the ci parameter set, executed
# once), JupyterLab and the results page in a headless Chromium (installed here from the system's
# packages), then the regression of the tables they measured against papers_tables/measured/ci/.
#   bash ci/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/bootstrap.sh
bash ci/system_packages.sh                  # Chromium for tests/test_browser.py
export UGS_REQUIRE_BROWSER=1                # so a missing browser fails those tests, never skips them
exec .venv/bin/python -m pytest tests --nbval-lax -p no:cacheprovider "$@"
