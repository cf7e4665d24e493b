#!/usr/bin/env bash
# README command 2: set up the environment (idempotent) and run the test suite: unit tests of
# the ugs core, data and environment checks, and nbval on every executed notebook.
#   bash ci/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/bootstrap.sh
exec .venv/bin/python -m pytest tests notebooks --nbval-lax -p no:cacheprovider "$@"
