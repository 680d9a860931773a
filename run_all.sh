#!/usr/bin/env bash
# Runs every table cell of the four papers that has an implementation and its data, then renders
# results/REPORT.md. Finished cells are kept and not run again (use --force). See common/registry.py.
set -euo pipefail
cd "$(dirname "$0")"

usage() {
  cat <<'USAGE'
usage: ./run_all.sh [--scale=smoke|quick|paper] [--only=ITEMS] [--data_dir=DIR] [--results_dir=DIR]
                   [--seeds=0,1,2] [--force] [--dry_run]

  --scale        smoke (seconds, checks the plumbing), quick (reduced runs; the default) or paper
  --only         comma-separated papers (nre, artifacts, permutation, oled), table ids (oled.table1)
                 or single jobs (oled.table1/class3); default: everything
  --data_dir     dataset root (default: $REPRO_DATA_DIR, else ./data)
  --results_dir  where cells/ and REPORT.md go (default: ./results)
  --seeds        comma-separated seeds: run each job once per seed (only those its stored result lacks);
                 REPORT.md shows mean ± sd (n seeds); default: each job's own seed (0)
  --force        run jobs again even when their result exists
  --dry_run      print the plan only and exit: the jobs that would run, the ones skipped (cached, no
                 implementation) and why, and the estimated time from the recorded cost of finished jobs
                 (results/cells/*/*/*.json: wall_time_s); runs, installs and writes nothing (it uses the
                 existing .venv and runs scripts/setup.sh only when there is none)

First runs scripts/setup.sh (creates or reuses .venv), then
  .venv/bin/python -m common.run_tables ARGS
It prints the plan first, then one line when each job starts and ends (elapsed time, ETA of the rest).
Every job runs in a process of its own; its full output goes to <workdir>/job-<job>.log (workdirs are
under results/runs/<scale>/), the screen shows its lines without TensorFlow's log noise. Cells without an
implementation or without their data are skipped with one line saying what is missing; a job that fails
stops the run with one line naming the job and its log (REPORT.md is rendered in any case).
USAGE
}

has_scale=0
dry_run=0
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --scale|--scale=*) has_scale=1 ;;
    --dry_run) dry_run=1 ;;
  esac
done

args=("$@")
if [ "$has_scale" -eq 0 ]; then
  args=(--scale=quick "${args[@]}")
fi
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}

if [ "$dry_run" -eq 1 ]; then
  # The plan needs only the standard library: no setup, so a fresh clone prints it in seconds.
  py=.venv/bin/python
  [ -x "$py" ] || py=${PYTHON:-python3}
  exec "$py" -m common.run_tables "${args[@]}"
fi

if [ -f scripts/setup.sh ]; then
  bash scripts/setup.sh
else
  echo "run_all: scripts/setup.sh not found; using the existing .venv" >&2
fi
if [ ! -x .venv/bin/python ]; then
  echo "error: .venv/bin/python not found; run scripts/setup.sh first" >&2
  exit 2
fi
exec .venv/bin/python -m common.run_tables "${args[@]}"
