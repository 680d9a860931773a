"""Run every registered job of the four papers' tables, keep what finished, and render ``results/REPORT.md``.

    python -m common.run_tables --scale=smoke|quick|paper [--only=oled.table1,nre,oled.table1/class3]
        [--results_dir=results] [--data_dir=DIR] [--seeds=0,1,2] [--force] [--dry_run]

For each paper the jobs come from ``<package>.tables.JOBS`` (see the docstring of ``common.registry`` for the
protocol). First the plan: one line per table without a job, per cached job and per job to run with its
estimated time (consecutive jobs of a table whose names differ only in their numbers share a line), then a
total (``--dry_run`` stops there, having run and written nothing):

    skip nre.table2: not implemented yet (no package nre_tf)
    skip oled.table5: no job registered in oled_tf.tables
    done oled.table1/class0: cached (scale=quick, finished 2024-...)   (not re-run without --force)
    plan oled.table1/class# (9 jobs, # = 1-9): 1 run (seed 0) each, ~9 min 36 s (siblings: mean of 1)
    plan oled.table3/ped2: 1 run (seed 0), no estimate
    plan: 10 runs of 10 jobs to do, 1 cached, 1 table without a job; estimated ~9 min 36 s for 9 of them ...

The estimates (:class:`Costs`) come only from the ``wall_time_s`` of finished results (the job's own, its
siblings', the job's at another scale times a measured ratio, the table's mean; the source is named on every
line); jobs without any are counted as "without an estimate", never guessed. Whether a job's data is there is
not known before it runs (the readers may download it or find a system copy). Then one line as each run starts
and ends, with the time elapsed and what is left:

    run  oled.table1/class1 (scale=quick, datasets: mnist) [2/10, est. ~64 s (siblings: mean of 1); elapsed ...]
      | <the job's own output lines>
    done oled.table1/class1: OLED (Ours) s_rec|AUCROC=0.9712, ... in 64 s [2/10; elapsed ...; left: 8 runs, ~9 min]
    skip oled.table3/ped2: <what data is missing>           (the job raised common.errors.DataError)

From the command line every run is a child process of its own (:mod:`common.run_job`: its memory goes back to
the system when it ends; its full output goes to ``<workdir>/job-<job>.log``, the screen gets it without
TensorFlow's noise). :func:`run` runs the jobs in this process unless ``isolate=True`` (tests with fake
packages, the Python API).

A missing package or ``tables`` module means "not implemented yet"; an ImportError raised from *inside* an
existing package is a bug and propagates. Any exception of a job other than DataError stops the run (from the
command line: one line naming the job and its log file); the report is rendered in any case from the jobs that
finished.

This module imports no TensorFlow (the jobs import it when they run).
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib
import json
import math
import os
import re
import statistics
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
from common.report import DEFAULT_RESULTS_DIR, RESULT_FORMAT, write_readmes, write_report


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
              force: bool = False, forced: set | None = None, isolate: bool = False, package: str = ""):
    """One call of ``job.run`` (with ``seed`` unless None); returns (JobResult, wall seconds, workdir). With
    ``force`` the job's workdir is moved aside first (``<workdir>/stale-<time>/``,
    :func:`common.run_identity.move_aside`) so the job really recomputes instead of resuming old checkpoints;
    ``forced`` holds the workdirs already renewed in this invocation, so jobs sharing a workdir (a table
    re-reading another's run) train it once. ``isolate``: run it in a child process
    (:func:`common.run_job.run_in_child`; ``package`` is where the child finds the job), else in this one."""
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
    if isolate:
        from common.run_job import run_in_child

        result = run_in_child(job, package or PACKAGES[job.table.split(".", 1)[0]], scale, workdir, data_dir, seed)
    else:
        out = job.run(scale, workdir, data_dir) if seed is None else job.run(scale, workdir, data_dir, seed=seed)
        result = _normalise(job, out)
    if seed is not None:
        result = JobResult(values=result.values, seeds=(seed,), extra=result.extra)
    return result, time.monotonic() - start, workdir


@dataclasses.dataclass
class JobPlan:
    """What is to be done for one job: its runs (``todo``: seeds; ``[None]`` = one run with the job's own seeds;
    empty when its stored result is reused, ``cached`` then says so) and the stored per-seed values (``have``)
    of the result ``old`` they are merged with."""
    job: Job
    package: str
    todo: list[int | None]
    have: dict[int, dict[Cell, float]]
    old: dict | None
    seeds_given: bool
    cached: str = ""  # the line "done <job>: cached (...)" when nothing is to run


def plan_job(job: Job, scale: str, results_dir: Path, force: bool, seeds: tuple[int, ...] | None = None,
             package: str = "") -> tuple[JobPlan, list[str]]:
    """Whether ``job`` is to run and with which seeds, and the notes to print about it (a stored result that
    does not match, seeds its run does not take). A cached job's plan has no runs (``todo == []``)."""
    path = result_path(results_dir, scale, job.table, job.name)
    per_seed = takes_seed(job.run)
    wanted = tuple(seeds) if seeds else job.seeds
    notes = []
    if seeds and not per_seed:
        notes.append(f"note {job.key}: its run takes no seed; run once with its own seeds {list(job.seeds)}")
    have: dict[int, dict[Cell, float]] = {}
    old = None
    if path.exists() and not force:
        old = _finished(path, job)
        if old is None:
            notes.append(f"note {job.key}: {path} does not match the job's cells; running it again")
        elif not seeds or not per_seed:
            return JobPlan(job, package, [], {}, old, bool(seeds),
                           f"done {job.key}: cached (scale={scale}, finished {old.get('finished_at')})"), notes
        else:
            have = stored_seed_values(old)
            if all(s in have for s in wanted):
                return JobPlan(job, package, [], have, old, True,
                               f"done {job.key}: cached (scale={scale}, seeds {sorted(have)}, finished "
                               f"{old.get('finished_at')})"), notes
            if not have:
                old = None  # values not separable by seed: run the wanted seeds afresh
    todo: list[int | None] = [s for s in wanted if s not in have] if per_seed else [None]
    return JobPlan(job, package, todo, have, old, bool(seeds)), notes


def execute_job(plan: JobPlan, scale: str, results_dir: Path, data_dir: Path | None, force: bool,
                forced: set | None = None, isolate: bool = False, tracker: "_Tracker | None" = None) -> str:
    """Run the runs of ``plan`` and store the job's result; return 'done' or 'skipped' (missing data)."""
    job = plan.job
    datasets = job.needed_datasets()
    runs: dict[int | None, tuple[JobResult, float, Path]] = {}
    for seed in plan.todo:
        shown_seed = "" if seed is None or (not plan.seeds_given and len(plan.todo) == 1) else f", seed={seed}"
        progress = tracker.started(job, seed) if tracker else ""
        print(f"run  {job.key} (scale={scale}{shown_seed}, datasets: {', '.join(datasets)}){progress}", flush=True)
        try:
            runs[seed] = _run_once(job, scale, results_dir, data_dir, seed, force, forced, isolate, plan.package)
        except DataError as e:
            if tracker:
                tracker.dropped(job)
            print(f"skip {job.key}: {e}", flush=True)
            return "skipped"
        values = runs[seed][0].values
        shown = ", ".join(f"{r}|{c}={values[(r, c)]:.4g}" for r, c in job.cells)
        progress = tracker.finished(job, seed, runs[seed][1]) if tracker else ""
        print(f"done {job.key}{shown_seed}: {shown} in {runs[seed][1]:.0f} s{progress}", flush=True)
    write_json_atomic(_record(job, scale, datasets, runs, plan.have, plan.old),
                      result_path(results_dir, scale, job.table, job.name))
    return "done"


def run_job(job: Job, scale: str, results_dir: Path, data_dir: Path | None, force: bool,
            seeds: tuple[int, ...] | None = None, forced: set | None = None, isolate: bool = False,
            package: str = "") -> str:
    """Run one job unless finished; return 'cached', 'done' or 'skipped'.

    ``seeds`` (``--seeds``): run the job once per seed that the stored result lacks (all with ``force``) and
    keep every seed's values; None: the job's own seeds, and a stored result is reused as it is. ``isolate``:
    each run in a child process (``package``: where it finds the job; default the paper's package).
    """
    plan, notes = plan_job(job, scale, results_dir, force, seeds, package)
    for line in notes + ([plan.cached] if plan.cached else []):
        print(line, flush=True)
    if not plan.todo:
        return "cached"
    return execute_job(plan, scale, results_dir, data_dir, force, forced, isolate)


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


# ------------------------------------------------------------------------------------------ time estimates
def fmt_duration(seconds: float) -> str:
    """``42 s``, ``12 min 5 s``, ``3 h 20 min``."""
    s = int(round(max(seconds, 0.0)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def _pattern(name: str) -> str:
    """A job name with its numbers replaced by '#': jobs of one table with the same pattern are siblings."""
    return re.sub(r"\d+", "#", name)


class Costs:
    """The recorded cost of one run of each finished job, from the result files: ``wall_time_s`` divided by the
    number of runs it sums (the seeds of its ``per_seed`` values; 1 for a result without them), keyed by
    (scale, table id, job name). :meth:`estimate` gives one run of a job, from the first of these sources:

    1. ``recorded``: the job's own result at that scale (it is run again: ``--force``, or another seed);
    2. ``siblings``: the mean over the other jobs of the same table at that scale whose names differ only in
       their numbers (``class3`` ~ ``class0``..``class9``; ``cae_class3`` ~ ``cae_class<k>``);
    3. ``other scale``: the job's result at another scale (nearest first) times the median ratio
       cost(this scale) / cost(that scale) over the jobs recorded at both, those of the same table if any,
       else all; no such job, no estimate from this source;
    4. ``table``: the mean over all jobs of the same table recorded at that scale (other methods or datasets of
       the table: a rough guess, and said so);
    5. none: "no estimate" (such runs are left out of the totals, and counted).

    The runs finished while ``run_tables`` runs are added (:meth:`add`), so later estimates use them. With
    another ``--results_dir`` than the repository's, the costs recorded in the repository's results complete
    its own (``fallback``): the same job costs the same wherever its result is written.
    """

    def __init__(self, results_dir: Path | None = None, fallback: Path | None = None):
        self.runs: dict[tuple[str, str, str], float] = {}
        for d in (results_dir, fallback):  # the costs recorded in results_dir first, then in ``fallback``
            if d is not None:
                self._read(Path(d) / "cells")

    def _read(self, root: Path) -> None:
        if not root.is_dir():
            return
        for path in sorted(root.glob("*/*/*.json")):
            if path.name.startswith("."):
                continue
            try:
                res = json.loads(path.read_text())
                wall = float(res["wall_time_s"])
                cells = res["cells"]
                n = len({s for c in cells for s in c["per_seed"]}) \
                    if cells and all("per_seed" in c for c in cells) else 1
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                continue
            if math.isfinite(wall) and wall >= 0 and n >= 1:
                self.runs.setdefault((path.parent.parent.name, path.parent.name, path.stem), wall / n)

    def add(self, scale: str, job: Job, seconds: float) -> None:
        self.runs[(scale, job.table, job.name)] = float(seconds)

    def _ratio(self, scale: str, other: str, table: str) -> tuple[float, int, bool] | None:
        """Median cost(scale)/cost(other) over the jobs recorded at both (same table first), how many, and
        whether they are of the same table."""
        for same_table in (True, False):
            ratios = [v / self.runs[(other, t, n)] for (s, t, n), v in self.runs.items()
                      if s == scale and (t == table or not same_table) and self.runs.get((other, t, n), 0) > 0]
            if ratios:
                return statistics.median(ratios), len(ratios), same_table
        return None

    def estimate(self, job: Job, scale: str) -> tuple[float | None, str, str]:
        """(seconds or None, source kind, how it was made) for one run of ``job`` at ``scale``."""
        own = self.runs.get((scale, job.table, job.name))
        if own is not None:
            return own, "recorded", "recorded"
        pattern = _pattern(job.name)
        sibs = [v for (s, t, n), v in self.runs.items()
                if s == scale and t == job.table and n != job.name and _pattern(n) == pattern]
        if sibs:
            return math.fsum(sibs) / len(sibs), "siblings", f"siblings: mean of {len(sibs)}"
        i = SCALES.index(scale)
        for other in sorted((x for x in SCALES if x != scale), key=lambda x: abs(SCALES.index(x) - i)):
            base = self.runs.get((other, job.table, job.name))
            ratio = self._ratio(scale, other, job.table) if base is not None else None
            if ratio is not None:
                r, k, same = ratio
                return base * r, "other scale", (f"{other} result x {r:.3g}, the median {scale}/{other} ratio of "
                                                 f"{k} {'job' if k == 1 else 'jobs'}{' of this table' if same else ''}")
        table = [v for (s, t, n), v in self.runs.items() if s == scale and t == job.table and n != job.name]
        if table:
            return (math.fsum(table) / len(table), "table",
                    f"table: mean of {len(table)} other {'job' if len(table) == 1 else 'jobs'} of {job.table}")
        return None, "none", "no estimate"


class _Tracker:
    """The runs of the plan still to do, for the elapsed time and the ETA printed at every run's start and end."""

    def __init__(self, plans: list[JobPlan], scale: str, costs: Costs):
        self.queue = [(p.job.key, p.job, s) for p in plans for s in p.todo]
        self.total, self.started_n = len(self.queue), 0
        self.scale, self.costs = scale, costs
        self.t0 = time.monotonic()

    def _pop(self, job: Job) -> None:
        if self.queue and self.queue[0][0] == job.key:
            self.queue.pop(0)

    def remaining(self) -> str:
        estimates = [self.costs.estimate(j, self.scale)[0] for _, j, _ in self.queue]
        known = [e for e in estimates if e is not None]
        if not estimates:
            return "nothing left"
        text = f"left: {len(estimates)} {'run' if len(estimates) == 1 else 'runs'}"
        if not known:
            return text + ", no estimate"
        text += f", ~{fmt_duration(math.fsum(known))}"
        if len(known) < len(estimates):
            text += f" + {len(estimates) - len(known)} without an estimate"
        return text

    def started(self, job: Job, seed) -> str:
        self._pop(job)
        self.started_n += 1
        est, _, how = self.costs.estimate(job, self.scale)
        guess = f"est. ~{fmt_duration(est)} ({how})" if est is not None else "no estimate"
        return (f" [{self.started_n}/{self.total}, {guess}; elapsed {fmt_duration(time.monotonic() - self.t0)}; "
                f"{self.remaining()}]")

    def finished(self, job: Job, seed, seconds: float) -> str:
        self.costs.add(self.scale, job, seconds)
        return (f" [{self.started_n}/{self.total}; elapsed {fmt_duration(time.monotonic() - self.t0)}; "
                f"{self.remaining()}]")

    def dropped(self, job: Job) -> None:
        """A job skipped for missing data: its other seeds do not run either."""
        self.queue = [q for q in self.queue if q[0] != job.key]


def _numbers_label(names: list[str]) -> tuple[str, str]:
    """Names that differ only in their numbers -> (the name with the varying numbers as '#', their values):
    ``[class0, ..., class9]`` -> ``("class#", "0-9")``."""
    split = [re.split(r"(\d+)", n) for n in names]
    varying = [i for i in range(1, len(split[0]), 2) if len({p[i] for p in split}) > 1]
    label = "".join("#" if i in varying else part for i, part in enumerate(split[0]))

    def ranges(values: set[str]) -> str:
        ints = sorted(int(v) for v in values)
        out, start = [], ints[0]
        for a, b in zip(ints, ints[1:] + [None]):
            if b != a + 1:
                out.append(f"{start}" if start == a else f"{start}-{a}")
                start = b
        return ",".join(out)

    sets = [{p[i] for p in split} for i in varying]
    if math.prod(len(v) for v in sets) == len({tuple(p[i] for i in varying) for p in split}):
        return label, " x ".join(ranges(v) for v in sets)  # every combination: "3-6 x 0-19"
    tuples = ["(" + ",".join(p[i] for i in varying) + ")" for p in split]
    return label, " ".join(tuples[:8]) + (f" ... ({len(tuples)} in all)" if len(tuples) > 8 else "")


def _estimate_text(plans: list[JobPlan], scale: str, costs: Costs) -> str:
    """The estimated time of the runs of ``plans`` and where it comes from."""
    ests = [(costs.estimate(p.job, scale), len(p.todo)) for p in plans]
    known = [((sec, kind, how), n) for (sec, kind, how), n in ests if sec is not None]
    n_unknown = sum(n for (sec, _, _), n in ests if sec is None)
    if not known:
        return "no estimate"
    total = math.fsum(sec * n for (sec, _, _), n in known)
    hows = {how for (_, _, how), _ in known}
    if len(hows) == 1:
        source = hows.pop()
    else:
        kinds: dict[str, int] = {}
        for (_, kind, _), n in known:
            kinds[kind] = kinds.get(kind, 0) + n
        source = ", ".join(f"{k}: {v}" for k, v in kinds.items())
    text = f"~{fmt_duration(total)} ({source})"
    if n_unknown:
        n_known = sum(n for _, n in known)
        text = f"~{fmt_duration(total)} for {n_known} {'run' if n_known == 1 else 'runs'} ({source}); " \
               f"{n_unknown} without an estimate"
    return text


def _runs_text(todo: list) -> str:
    n = len(todo)
    what = f"{n} {'run' if n == 1 else 'runs'}"
    if todo != [None]:
        what += f" (seed{'s' if n > 1 else ''} {', '.join(str(s) for s in todo)})"
    return what


def plan_lines(entries: list, scale: str, costs: Costs) -> list[str]:
    """The plan as printed: one line per skipped table, note, cached job or job to run; consecutive jobs of one
    table whose names differ only in their numbers (and with the same runs to do) share one line."""
    groups: list = []
    for e in entries:
        key = None if isinstance(e, str) else (e.job.table, _pattern(e.job.name), tuple(e.todo))
        if key is not None and groups and isinstance(groups[-1], tuple) and groups[-1][0] == key:
            groups[-1][1].append(e)
        else:
            groups.append(e if key is None else (key, [e]))
    out = []
    for g in groups:
        if isinstance(g, str):
            out.append(g)
            continue
        (table, _, todo), plans = g
        if len(plans) == 1:
            p = plans[0]
            out.append(p.cached if not todo else f"plan {p.job.key}: {_runs_text(list(todo))}, "
                                                 f"{_estimate_text(plans, scale, costs)}")
            continue
        label, values = _numbers_label([p.job.name for p in plans])
        what = f"{table}/{label} ({len(plans)} jobs, # = {values})"
        if not todo:
            done = sorted(str(p.old.get("finished_at")) for p in plans if p.old)
            when = done[0] if done[0] == done[-1] else f"{done[0]} .. {done[-1]}"
            out.append(f"done {what}: cached (scale={scale}, finished {when})")
        else:
            out.append(f"plan {what}: {_runs_text(list(todo))} each, {_estimate_text(plans, scale, costs)}")
    return out


def _plan_summary(plans: list[JobPlan], scale: str, costs: Costs, counts: dict) -> str:
    kinds: dict[str, int] = {}
    total, unknown = 0.0, 0
    for p in plans:
        est, kind, _ = costs.estimate(p.job, scale)
        if est is None:
            unknown += len(p.todo)
        else:
            total += est * len(p.todo)
            kinds[kind] = kinds.get(kind, 0) + len(p.todo)
    n_runs = sum(len(p.todo) for p in plans)
    text = (f"plan: {n_runs} {'run' if n_runs == 1 else 'runs'} of {len(plans)} {'job' if len(plans) == 1 else 'jobs'}"
            f" to do, {counts['cached']} cached, {counts['not_run']} {'table' if counts['not_run'] == 1 else 'tables'}"
            f" without a job")
    if kinds:
        text += (f"; estimated ~{fmt_duration(total)} for {sum(kinds.values())} of them ("
                 + ", ".join(f"{k}: {v}" for k, v in kinds.items()) + ")")
    if unknown:
        text += f"; {unknown} {'run' if unknown == 1 else 'runs'} without an estimate (not in the total)"
    return text


# ------------------------------------------------------------------------------------------------ the runner
def make_plan(scale: str, selection: Selection, results_dir: Path, force: bool, packages: Mapping[str, str],
              seeds: tuple[int, ...] | None, counts: dict) -> tuple[list[JobPlan], list]:
    """The plans of the jobs to run, in order, and every entry of the plan to print (:func:`plan_lines`): lines
    saying what is skipped and why, and the plans of all selected jobs, cached ones included (``counts`` gets
    the 'cached' and 'not_run' numbers)."""
    plans: list[JobPlan] = []
    entries: list = []
    for paper in PAPERS:
        tables = [t for t in all_tables().values() if t.paper == paper and selection.table(t)]
        if not tables:
            continue
        jobs, why = discover(paper, packages[paper])
        if jobs is None:
            for t in tables:
                entries.append(f"skip {t.id}: {why}")
                counts["not_run"] += 1
            continue
        for item in selection.items:
            if "/" in item and item.split(".", 1)[0] == paper and item not in {j.key for j in jobs}:
                raise ConfigError(f"--only: no job {item!r} in {packages[paper]}.tables; its jobs: "
                                  f"{', '.join(j.key for j in jobs) or 'none'}")
        for t in tables:
            table_jobs = [j for j in jobs if j.table == t.id and selection.job(j)]
            if not table_jobs:
                entries.append(f"skip {t.id}: no job registered in {packages[paper]}.tables")
                counts["not_run"] += 1
                continue
            for job in table_jobs:
                plan, notes = plan_job(job, scale, results_dir, force, seeds, packages[paper])
                entries += notes
                entries.append(plan)
                if plan.todo:
                    plans.append(plan)
                else:
                    counts["cached"] += 1
    return plans, entries


def run(scale: str, only: str | None = None, results_dir: Path = DEFAULT_RESULTS_DIR,
        data_dir: Path | None = None, force: bool = False, packages: Mapping[str, str] | None = None,
        seeds: tuple[int, ...] | None = None, dry_run: bool = False, isolate: bool = False) -> dict:
    """Print the plan, run the selected jobs and render the report; return counts per outcome. ``packages`` maps
    paper to package name (default :data:`common.registry.PACKAGES`; tests substitute fake packages); ``seeds``:
    run each job once per seed (``--seeds``; None = each job's own seeds); ``dry_run``: print the plan only
    (nothing is run or written); ``isolate``: every run in a child process of its own (the command line's way;
    :mod:`common.run_job`), else in this process."""
    if scale not in SCALES:
        raise ConfigError(f"--scale={scale!r}: expected one of {', '.join(SCALES)}")
    packages = dict(PACKAGES if packages is None else packages)
    seeds = parse_seeds(seeds)
    selection = Selection(only)
    results_dir = Path(results_dir)
    counts = {"done": 0, "cached": 0, "skipped": 0, "not_run": 0}
    forced: set[Path] = set()
    try:
        plans, entries = make_plan(scale, selection, results_dir, force, packages, seeds, counts)
        costs = Costs(results_dir, fallback=DEFAULT_RESULTS_DIR)
        for line in plan_lines(entries, scale, costs):
            print(line, flush=True)
        print(_plan_summary(plans, scale, costs, counts), flush=True)
        if dry_run:
            return counts
        tracker = _Tracker(plans, scale, costs)
        for plan in plans:
            counts[execute_job(plan, scale, results_dir, data_dir, force, forced, isolate, tracker)] += 1
    finally:
        if not dry_run:
            path = write_report(results_dir)
            print(f"report: {path}", flush=True)
            if Path(results_dir).resolve() == DEFAULT_RESULTS_DIR.resolve():  # the repository's own results
                for readme in write_readmes(results_dir):
                    print(f"results table refreshed: {readme}", flush=True)
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
    parser.add_argument("--dry_run", action="store_true",
                        help="print the plan (what would run, what is cached or skipped, the estimated time) and "
                             "exit; runs and writes nothing")
    args = parser.parse_args(argv)
    run(args.scale, args.only, Path(args.results_dir), Path(args.data_dir) if args.data_dir else None, args.force,
        seeds=parse_seeds(args.seeds), dry_run=args.dry_run, isolate=True)


if __name__ == "__main__":
    main(sys.argv[1:])
