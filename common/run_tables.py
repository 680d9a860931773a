"""Run every registered job of the four papers' tables, keep what finished, and render ``results/REPORT.md``.

    python -m common.run_tables --scale=smoke|quick|paper [--only=oled.table1,nre,oled.table1/class3]
        [--results_dir=results] [--data_dir=DIR] [--seeds=0,1,2] [--force]

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
from common.errors import ArgumentParser, ConfigError, DataError, exit_on_error
from common.paths import REPO_ROOT
from common.registry import PACKAGES, PAPERS, SCALES, Cell, Job, JobResult, Table, all_tables, result_path, \
    takes_seed, validate_jobs
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


def stored_seed_values(res: dict) -> dict[int, dict[Cell, float]]:
    """``{seed: {cell: value}}`` of a stored result: its ``per_seed`` values, or the values of a single-seed
    result; ``{}`` when the values cannot be told apart by seed (one run that used several seeds)."""
    cells = res["cells"]
    if all("per_seed" in c for c in cells):
        out: dict[int, dict[Cell, float]] = {}
        for c in cells:
            for seed, v in c["per_seed"].items():
                out.setdefault(int(seed), {})[(c["row"], c["col"])] = float(v)
        return out
    seeds = res.get("seeds") or []
    if len(seeds) == 1:
        return {int(seeds[0]): {(c["row"], c["col"]): float(c["value"]) for c in cells}}
    return {}


def seed_workdir(results_dir: Path, scale: str, job: Job, seed: int | None) -> Path:
    """The job's workdir for ``seed`` (seed 0 or a job run without a seed: ``<workdir_name>``; seed s:
    ``<workdir_name>-seed<s>``)."""
    name = job.workdir_name or f"{job.table}/{job.name}"
    return Path(results_dir) / "runs" / scale / (name if not seed else f"{name}-seed{seed}")


def _run_once(job: Job, scale: str, results_dir: Path, data_dir: Path | None, seed: int | None,
              force: bool = False, forced: set | None = None):
    """One call of ``job.run`` (with ``seed`` unless None); returns (JobResult, wall seconds, workdir). With
    ``force`` the job's workdir is moved aside first (``<workdir>/stale-<time>/``,
    :func:`common.run_identity.move_aside`) so the job really recomputes instead of resuming old checkpoints;
    ``forced`` holds the workdirs already renewed in this invocation, so jobs sharing a workdir (a table
    re-reading another's run) train it once."""
    workdir = seed_workdir(results_dir, scale, job, seed)
    if force and (forced is None or workdir not in forced):
        from common.run_identity import move_aside

        moved = move_aside(workdir)
        if moved is not None:
            print(f"note {job.key}: --force: moved the previous contents of {workdir} to {moved}", flush=True)
        if forced is not None:
            forced.add(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    out = job.run(scale, workdir, data_dir) if seed is None else job.run(scale, workdir, data_dir, seed=seed)
    result = _normalise(job, out)
    if seed is not None:
        result = JobResult(values=result.values, seeds=(seed,), extra=result.extra)
    return result, time.monotonic() - start, workdir


def run_job(job: Job, scale: str, results_dir: Path, data_dir: Path | None, force: bool,
            seeds: tuple[int, ...] | None = None, forced: set | None = None) -> str:
    """Run one job unless finished; return 'cached', 'done' or 'skipped'.

    ``seeds`` (``--seeds``): run the job once per seed that the stored result lacks (all with ``force``) and
    keep every seed's values; None: the job's own seeds, and a stored result is reused as it is.
    """
    path = result_path(results_dir, scale, job.table, job.name)
    per_seed = takes_seed(job.run)
    wanted = tuple(seeds) if seeds else job.seeds
    if seeds and not per_seed:
        print(f"note {job.key}: its run takes no seed; run once with its own seeds {list(job.seeds)}", flush=True)
    have: dict[int, dict[Cell, float]] = {}
    old = None
    if path.exists() and not force:
        old = _finished(path, job)
        if old is None:
            print(f"note {job.key}: {path} does not match the job's cells; running it again", flush=True)
        elif not seeds or not per_seed:
            print(f"done {job.key}: cached (scale={scale}, finished {old.get('finished_at')})", flush=True)
            return "cached"
        else:
            have = stored_seed_values(old)
            if all(s in have for s in wanted):
                print(f"done {job.key}: cached (scale={scale}, seeds {sorted(have)}, finished "
                      f"{old.get('finished_at')})", flush=True)
                return "cached"
            if not have:
                old = None  # values not separable by seed: run the wanted seeds afresh
    datasets = job.needed_datasets()
    todo: list[int | None] = [s for s in wanted if s not in have] if per_seed else [None]
    runs: dict[int | None, tuple[JobResult, float, Path]] = {}
    for seed in todo:
        shown_seed = "" if seed is None or (not seeds and len(todo) == 1) else f", seed={seed}"
        print(f"run  {job.key} (scale={scale}{shown_seed}, datasets: {', '.join(datasets)})", flush=True)
        try:
            runs[seed] = _run_once(job, scale, results_dir, data_dir, seed, force, forced)
        except DataError as e:
            print(f"skip {job.key}: {e}", flush=True)
            return "skipped"
        values = runs[seed][0].values
        shown = ", ".join(f"{r}|{c}={values[(r, c)]:.4g}" for r, c in job.cells)
        print(f"done {job.key}{shown_seed}: {shown} in {runs[seed][1]:.0f} s", flush=True)
    write_json_atomic(_record(job, scale, datasets, runs, have, old), path)
    return "done"


def _stored_extra(old: dict, seed: int) -> dict:
    """The extra metrics of ``seed`` in a stored result (keyed ``seed<s>`` when it holds several seeds)."""
    extra = old.get("extra") or {}
    return extra.get(f"seed{seed}", {}) if len(old.get("seeds") or []) > 1 else extra


def _record(job: Job, scale: str, datasets, runs: dict, have: dict, old: dict | None) -> dict:
    """The result file of ``job``: the new runs merged with the seeds ``have`` of a stored result ``old``."""
    if None in runs:  # a run without a seed of its own: stored as it returned
        result, wall, workdir = runs[None]
        seed_values, seeds, extra = None, list(result.seeds), result.extra
    else:
        seed_values = {**have, **{s: r.values for s, (r, _, _) in runs.items()}}
        seeds = sorted(seed_values)
        extras = {**{s: _stored_extra(old, s) for s in have}, **{s: r.extra for s, (r, _, _) in runs.items()}}
        extra = extras[seeds[0]] if len(seeds) == 1 else {f"seed{s}": extras[s] for s in seeds}
        wall = sum(w for _, w, _ in runs.values()) + (float(old.get("wall_time_s", 0.0)) if old else 0.0)
        workdir = runs[max(runs)][2]
    cells = []
    for r, c in job.cells:
        if seed_values is None:
            cells.append({"row": r, "col": c, "value": result.values[(r, c)]})
        else:
            vals = [seed_values[s][(r, c)] for s in seeds]
            cells.append({"row": r, "col": c, "value": math.fsum(vals) / len(vals),
                          "per_seed": {str(s): seed_values[s][(r, c)] for s in seeds}})
    return {
        "format": RESULT_FORMAT,
        "table": job.table,
        "job": job.name,
        "scale": scale,
        "cells": cells,
        "n_parts": job.n_parts,
        "seeds": seeds,
        "datasets": list(datasets),
        "extra": extra,
        "description": job.description,
        "variant": job.variant,
        "wall_time_s": round(wall, 3),
        "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "workdir": str(workdir),
    }


def run(scale: str, only: str | None = None, results_dir: Path = DEFAULT_RESULTS_DIR,
        data_dir: Path | None = None, force: bool = False, packages: Mapping[str, str] | None = None,
        seeds: tuple[int, ...] | None = None) -> dict:
    """Run the selected jobs and render the report; return counts per outcome. ``packages`` maps paper to
    package name (default :data:`common.registry.PACKAGES`; tests substitute fake packages); ``seeds``: run
    each job once per seed (``--seeds``; None = each job's own seeds)."""
    if scale not in SCALES:
        raise ConfigError(f"--scale={scale!r}: expected one of {', '.join(SCALES)}")
    packages = dict(PACKAGES if packages is None else packages)
    seeds = parse_seeds(seeds)
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
                    counts[run_job(job, scale, results_dir, data_dir, force, seeds, forced)] += 1
    finally:
        path = write_report(results_dir)
        print(f"report: {path}", flush=True)
    print(f"summary: {counts['done']} jobs run, {counts['cached']} cached, {counts['skipped']} skipped for "
          f"missing data, {counts['not_run']} tables without a job", flush=True)
    return counts


def parse_seeds(seeds) -> tuple[int, ...] | None:
    """``--seeds``: "0,1,2" or a sequence of ints -> distinct non-negative seeds in order; None/"" -> None."""
    if seeds is None or seeds == "":
        return None
    items = [t.strip() for t in seeds.split(",")] if isinstance(seeds, str) else list(seeds)
    try:
        out = tuple(int(t) for t in items)
    except (TypeError, ValueError):
        raise ConfigError(f"--seeds={seeds!r}: expected comma-separated non-negative integers, e.g. 0,1,2") \
            from None
    if not out or any(s < 0 for s in out) or len(set(out)) != len(out):
        raise ConfigError(f"--seeds={seeds!r}: expected distinct non-negative integers, e.g. 0,1,2")
    return out


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the jobs import TensorFlow; keep its C++ chatter out
    parser = ArgumentParser(prog="python -m common.run_tables",
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
    parser.add_argument("--seeds", default=None,
                        help="comma-separated seeds, e.g. 0,1,2: run each job once per seed (the ones a stored "
                             "result lacks) and report mean ± sd (default: each job's own seed)")
    args = parser.parse_args(argv)
    run(args.scale, args.only, Path(args.results_dir), Path(args.data_dir) if args.data_dir else None, args.force,
        seeds=parse_seeds(args.seeds))


if __name__ == "__main__":
    main(sys.argv[1:])
