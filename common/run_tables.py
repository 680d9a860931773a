"""Run every registered job of the four papers' tables, keep what finished, and render ``results/REPORT.md``.

    python -m common.run_tables --scale=smoke|quick|paper [--only=oled.table1,nre,oled.table1/class3]
        [--results_dir=results] [--data_dir=DIR] [--force]

For each paper the jobs come from ``<package>.tables.JOBS`` (see the docstring of ``common.registry`` for the
protocol). One line per table or job says what happened:

    skip nre.table2: not implemented yet (no package nre_tf)
    skip oled.table5: no job registered in oled_tf.tables
    skip oled.table3/ped2: <what data is missing>           (the job raised common.errors.DataError)
    done oled.table1/class0: cached (scale=quick, finished 2024-...)   (not re-run without --force)
    run  oled.table1/class1 (scale=quick, datasets: mnist)
    done oled.table1/class1: OLED (Ours) s_rec|AUCROC=0.9712, ... in 64 s

A missing package or ``tables`` module means "not implemented yet"; an ImportError raised from *inside* an
existing package is a bug and propagates. Any exception of a job other than DataError stops the run; the report
is rendered in any case from the jobs that finished.

This module imports no TensorFlow (the jobs import it when they run).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from common.config import write_json_atomic
from common.errors import ConfigError, DataError, exit_on_error
from common.paths import REPO_ROOT
from common.registry import PACKAGES, PAPERS, SCALES, Job, JobResult, Table, all_tables, result_path, \
    validate_jobs
from common.report import DEFAULT_RESULTS_DIR, RESULT_FORMAT, write_report


class Selection:
    """The ``--only`` filter: papers (``nre``), tables (``oled.table1``) or jobs (``oled.table1/class3``)."""

    def __init__(self, only: str | None):
        self.items = [s.strip() for s in (only or "").split(",") if s.strip()]
        tables = all_tables()
        for item in self.items:
            table_id = item.split("/", 1)[0]
            if item not in PAPERS and table_id not in tables:
                raise ConfigError(f"--only: {item!r} is neither a paper ({', '.join(PAPERS)}), a table id "
                                  f"(e.g. oled.table1) nor <table id>/<job name>")

    def table(self, t: Table) -> bool:
        return not self.items or any(i == t.paper or i.split("/", 1)[0] == t.id for i in self.items)

    def job(self, j: Job) -> bool:
        if not self.items:
            return True
        paper = j.table.split(".", 1)[0]
        return any(i in (paper, j.table, j.key) for i in self.items)


def discover(paper: str, package: str) -> tuple[list[Job] | None, str]:
    """The jobs of ``package.tables`` or (None, why not)."""
    try:
        importlib.import_module(package)
    except ModuleNotFoundError as e:
        if e.name == package:
            return None, f"not implemented yet (no package {package})"
        raise
    module_name = f"{package}.tables"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name == module_name:
            return None, f"not implemented yet (no module {module_name})"
        raise
    jobs = getattr(module, "JOBS", None)
    if not isinstance(jobs, (list, tuple)):
        raise ValueError(f"{module_name} must define JOBS as a list of common.registry.Job")
    jobs = list(jobs)
    validate_jobs(jobs)
    for job in jobs:
        if job.table.split(".", 1)[0] != paper:
            raise ValueError(f"{module_name} registers job {job.key}, which belongs to another paper")
    return jobs, ""


def git_commit() -> str | None:
    """HEAD of the repository (with '+dirty' when tracked files are modified), or None without git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def _normalise(job: Job, out: Any) -> JobResult:
    """Check what ``job.run`` returned: exactly the job's cells, finite floats, JSON-serialisable extras."""
    if isinstance(out, JobResult):
        result = out
    elif isinstance(out, Mapping):
        result = JobResult(values=out)
    else:
        raise TypeError(f"job {job.key} returned {type(out).__name__}; expected a dict {{(row, col): value}} "
                        f"or a common.registry.JobResult")
    values = {}
    for key, v in result.values.items():
        if not (isinstance(key, (tuple, list)) and len(key) == 2):
            raise TypeError(f"job {job.key} returned key {key!r}; expected a (row, col) pair")
        v = float(v)
        if not math.isfinite(v):
            raise ValueError(f"job {job.key} returned {v} for cell {tuple(key)!r}")
        values[(str(key[0]), str(key[1]))] = v
    if set(values) != set(job.cells):
        raise ValueError(f"job {job.key} returned cells {sorted(values)} but declares {sorted(job.cells)}")
    json.dumps(dict(result.extra))  # raises TypeError when not JSON-serialisable
    seeds = tuple(int(s) for s in (result.seeds if result.seeds is not None else job.seeds))
    return JobResult(values=values, seeds=seeds, extra=dict(result.extra))


def _finished(path: Path, job: Job) -> dict | None:
    """The stored result of ``job`` if it is complete and fills the job's current cells."""
    try:
        res = json.loads(path.read_text())
        cells = {(c["row"], c["col"]) for c in res["cells"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if res.get("format") != RESULT_FORMAT or cells != set(job.cells):
        return None
    return res


def run_job(job: Job, scale: str, results_dir: Path, data_dir: Path | None, force: bool,
            forced: set | None = None) -> str:
    """Run one job unless finished; return 'cached', 'done' or 'skipped'. With ``force`` the job's workdir is
    moved aside first (``<workdir>/stale-<time>/``, :func:`common.run_identity.move_aside`) so the job really
    recomputes instead of resuming old checkpoints; ``forced`` holds the workdirs already renewed in this
    invocation, so jobs sharing a workdir (a table re-reading another's run) train it once."""
    path = result_path(results_dir, scale, job.table, job.name)
    if path.exists() and not force:
        res = _finished(path, job)
        if res is not None:
            print(f"done {job.key}: cached (scale={scale}, finished {res.get('finished_at')})", flush=True)
            return "cached"
        print(f"note {job.key}: {path} does not match the job's cells; running it again", flush=True)
    workdir = Path(results_dir) / "runs" / scale / (job.workdir_name or f"{job.table}/{job.name}")
    if force and (forced is None or workdir not in forced):
        from common.run_identity import move_aside

        moved = move_aside(workdir)
        if moved is not None:
            print(f"note {job.key}: --force: moved the previous contents of {workdir} to {moved}", flush=True)
        if forced is not None:
            forced.add(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    datasets = job.needed_datasets()
    print(f"run  {job.key} (scale={scale}, datasets: {', '.join(datasets)})", flush=True)
    start = time.monotonic()
    try:
        out = job.run(scale, workdir, data_dir)
    except DataError as e:
        print(f"skip {job.key}: {e}", flush=True)
        return "skipped"
    wall = time.monotonic() - start
    result = _normalise(job, out)
    record = {
        "format": RESULT_FORMAT,
        "table": job.table,
        "job": job.name,
        "scale": scale,
        "cells": [{"row": r, "col": c, "value": result.values[(r, c)]} for r, c in job.cells],
        "n_parts": job.n_parts,
        "seeds": list(result.seeds),
        "datasets": list(datasets),
        "extra": result.extra,
        "description": job.description,
        "variant": job.variant,
        "wall_time_s": round(wall, 3),
        "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "workdir": str(workdir),
    }
    write_json_atomic(record, path)
    shown = ", ".join(f"{r}|{c}={result.values[(r, c)]:.4g}" for r, c in job.cells)
    print(f"done {job.key}: {shown} in {wall:.0f} s", flush=True)
    return "done"


def run(scale: str, only: str | None = None, results_dir: Path = DEFAULT_RESULTS_DIR,
        data_dir: Path | None = None, force: bool = False, packages: Mapping[str, str] | None = None) -> dict:
    """Run the selected jobs and render the report; return counts per outcome. ``packages`` maps paper to
    package name (default :data:`common.registry.PACKAGES`; tests substitute fake packages)."""
    if scale not in SCALES:
        raise ConfigError(f"--scale={scale!r}: expected one of {', '.join(SCALES)}")
    packages = dict(PACKAGES if packages is None else packages)
    selection = Selection(only)
    results_dir = Path(results_dir)
    counts = {"done": 0, "cached": 0, "skipped": 0, "not_run": 0}
    forced: set[Path] = set()
    try:
        for paper in PAPERS:
            tables = [t for t in all_tables().values() if t.paper == paper and selection.table(t)]
            if not tables:
                continue
            jobs, why = discover(paper, packages[paper])
            if jobs is None:
                for t in tables:
                    print(f"skip {t.id}: {why}", flush=True)
                    counts["not_run"] += 1
                continue
            for item in selection.items:
                if "/" in item and item.split(".", 1)[0] == paper and item not in {j.key for j in jobs}:
                    raise ConfigError(f"--only: no job {item!r} in {packages[paper]}.tables; its jobs: "
                                      f"{', '.join(j.key for j in jobs) or 'none'}")
            for t in tables:
                table_jobs = [j for j in jobs if j.table == t.id and selection.job(j)]
                if not table_jobs:
                    print(f"skip {t.id}: no job registered in {packages[paper]}.tables", flush=True)
                    counts["not_run"] += 1
                    continue
                for job in table_jobs:
                    counts[run_job(job, scale, results_dir, data_dir, force, forced)] += 1
    finally:
        path = write_report(results_dir)
        print(f"report: {path}", flush=True)
    print(f"summary: {counts['done']} jobs run, {counts['cached']} cached, {counts['skipped']} skipped for "
          f"missing data, {counts['not_run']} tables without a job", flush=True)
    return counts


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the jobs import TensorFlow; keep its C++ chatter out
    parser = argparse.ArgumentParser(prog="python -m common.run_tables",
                                     description="Run the registered table cells and render results/REPORT.md.")
    parser.add_argument("--scale", required=True, choices=SCALES,
                        help="smoke: seconds, checks the plumbing; quick: reduced runs; paper: the paper's settings")
    parser.add_argument("--only", default=None,
                        help="comma-separated papers, table ids or <table id>/<job name> (default: everything)")
    parser.add_argument("--results_dir", default=str(DEFAULT_RESULTS_DIR), help="default: <repo>/results")
    parser.add_argument("--data_dir", default=None,
                        help="dataset root passed to the jobs (default: $REPRO_DATA_DIR or <repo>/data)")
    parser.add_argument("--force", action="store_true", help="run jobs again even when a result exists, from "
                        "scratch (their old workdirs are moved aside, not resumed)")
    args = parser.parse_args(argv)
    run(args.scale, args.only, Path(args.results_dir), Path(args.data_dir) if args.data_dir else None, args.force)


if __name__ == "__main__":
    main(sys.argv[1:])
