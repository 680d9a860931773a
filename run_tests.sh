#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh), then runs the test suite in REPRO_TEST_WORKERS (default 2) pytest-xdist
# worker processes, one test file per worker at a time (--dist loadfile keeps a file's module fixtures in one
# process). Extra arguments go to pytest (e.g. -n 0 for one process).
set -euo pipefail
cd "$(dirname "$0")"
./scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
exec .venv/bin/python -m pytest tests -q -n "${REPRO_TEST_WORKERS:-2}" --dist loadfile "$@"
