"""Add the floor rows (``common.registry.FLOOR_ROWS``, e.g. "PCA-20 floor (ours)") to job results stored before
the floor existed, without retraining.

    python -m common.add_floors --scale=quick [--only=oled.table1,nre] [--results_dir=results] [--data_dir=DIR]

For every selected job that has a ``floor`` function (``common.registry.Job.floor``) and a stored result at
that scale holding all of the job's cells except its floor cells, the floor cells are computed for every seed
of the stored result by the job's own data preparation (same config, same seed, hence the same split; no
training) and added to the result file (per seed where the file keeps per-seed values); the file records
``floor_added`` (when, by which commit). Then ``<results_dir>/REPORT.md`` is rendered again. One line per job:

    floor oled.table1/mnist5k_class3: PCA-20 floor (ours)|AUCROC=0.8123 (seeds [0]) in 3 s
    done  oled.table1/mnist5k_class4: already has its floor cells
    skip  oled.table3/ped2: no stored result at scale quick

This module imports no TensorFlow (a job's ``floor`` may).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from common.config import write_json_atomic
from common.errors import ConfigError, DataError, exit_on_error
from common.registry import FLOOR_ROWS, PACKAGES, PAPERS, SCALES, Job, all_tables, result_path
from common.report import DEFAULT_RESULTS_DIR, write_report
from common.run_tables import Selection, discover, git_commit, seed_workdir, stored_seed_values


def add_floor(job: Job, scale: str, results_dir: Path, data_dir: Path | None) -> str:
    """Add ``job``'s floor cells to its stored result; returns 'added', 'present' or 'skipped'."""
    path = result_path(results_dir, scale, job.table, job.name)
    if not path.is_file():
        print(f"skip  {job.key}: no stored result at scale {scale}", flush=True)
        return "skipped"
    res = json.loads(path.read_text())
    have = {(c["row"], c["col"]) for c in res["cells"]}
    floor_cells = [c for c in job.cells if c[0] in FLOOR_ROWS]
    if have == set(job.cells):
        print(f"done  {job.key}: already has its floor cells", flush=True)
        return "present"
    if have != set(job.cells) - set(floor_cells):
        print(f"skip  {job.key}: {path} holds other cells than the job's; run the job again", flush=True)
        return "skipped"
    per_seed = stored_seed_values(res)
    seeds = sorted(per_seed) if per_seed else [int(s) for s in res.get("seeds") or [0]]
    if len(seeds) > 1 and not per_seed:
        print(f"skip  {job.key}: {path} holds one run of several seeds; run the job again", flush=True)
        return "skipped"
    start = time.monotonic()
    values: dict[int, Mapping] = {}
    try:
        for seed in seeds:
            values[seed] = job.floor(scale, seed_workdir(results_dir, scale, job, seed), data_dir, seed=seed)
    except DataError as e:
        print(f"skip  {job.key}: {e}", flush=True)
        return "skipped"
    keep_per_seed = all("per_seed" in c for c in res["cells"])
    for r, c in floor_cells:
        vals = [float(values[s][(r, c)]) for s in seeds]
        if not all(math.isfinite(v) for v in vals):
            raise ValueError(f"the floor of {job.key} is not finite: {vals}")
        cell = {"row": r, "col": c, "value": math.fsum(vals) / len(vals)}
        if keep_per_seed:
            cell["per_seed"] = {str(s): v for s, v in zip(seeds, vals)}
        res["cells"].append(cell)
    order = {cell: i for i, cell in enumerate(job.cells)}
    res["cells"].sort(key=lambda cell: order[(cell["row"], cell["col"])])
    res["floor_added"] = {"by": "common.add_floors", "git_commit": git_commit(),
                          "at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    write_json_atomic(res, path)
    shown = ", ".join(f"{r}|{c}={math.fsum(values[s][(r, c)] for s in seeds) / len(seeds):.4g}"
                      for r, c in floor_cells)
    print(f"floor {job.key}: {shown} (seeds {seeds}) in {time.monotonic() - start:.0f} s", flush=True)
    return "added"


def run(scale: str, only: str | None = None, results_dir: Path = DEFAULT_RESULTS_DIR, data_dir: Path | None = None,
        packages: Mapping[str, str] | None = None) -> dict:
    """Add the floor to every selected stored result that lacks it, render the report; counts per outcome."""
    if scale not in SCALES:
        raise ConfigError(f"--scale={scale!r}: expected one of {', '.join(SCALES)}")
    packages = dict(PACKAGES if packages is None else packages)
    selection = Selection(only)
    counts = {"added": 0, "present": 0, "skipped": 0}
    try:
        for paper in PAPERS:
            if not any(t.paper == paper and selection.table(t) for t in all_tables().values()):
                continue
            jobs, _ = discover(paper, packages[paper])
            for job in jobs or []:
                if job.floor is not None and selection.job(job):
                    counts[add_floor(job, scale, Path(results_dir), data_dir)] += 1
    finally:
        print(f"report: {write_report(Path(results_dir))}", flush=True)
    print(f"summary: floor added to {counts['added']} results, {counts['present']} had it, {counts['skipped']} "
          f"skipped", flush=True)
    return counts


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = argparse.ArgumentParser(prog="python -m common.add_floors", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", required=True, choices=SCALES)
    parser.add_argument("--only", default=None, help="comma-separated papers, table ids or <table id>/<job name>")
    parser.add_argument("--results_dir", default=str(DEFAULT_RESULTS_DIR), help="default: <repo>/results")
    parser.add_argument("--data_dir", default=None, help="dataset root (default: $REPRO_DATA_DIR or <repo>/data)")
    args = parser.parse_args(argv)
    run(args.scale, args.only, Path(args.results_dir), Path(args.data_dir) if args.data_dir else None)


if __name__ == "__main__":
    main(sys.argv[1:])
