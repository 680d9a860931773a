"""``run_all.sh`` / ``common.run_tables``: the plan and its time estimates, ``--dry_run``, one child process per
job (results, missing data, failures, the log file, the noise filter) and a parent whose memory stays flat."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from common import run_tables
from common.paths import REPO_ROOT
from common.run_job import CHILD_PREFIX, NOISE_PATTERNS, JobFailed, is_noise, log_path
from common.run_tables import Costs, fmt_duration

OURS = ("OLED (Ours) s_rec", "AUCROC")


def _packages(oled: str) -> dict[str, str]:
    return {"nre": "no_such_pkg_nre", "artifacts": "no_such_pkg_art", "permutation": "no_such_pkg_perm",
            "oled": oled}


@pytest.fixture
def make_pkg(tmp_path, monkeypatch):
    """make_pkg(source) -> the name of a package ``<name>/tables.py`` = source, importable from tmp_path/pkgs
    (the child processes find it through the parent: common.run_job.child_env)."""
    made = []

    def make(source: str) -> str:
        name = f"fake_run_all_{len(made)}_{abs(hash(str(tmp_path))) % 10**8}"
        pkg = tmp_path / "pkgs" / name
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "tables.py").write_text(source)
        made.append(name)
        return name

    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    yield make
    for mod in [m for m in sys.modules if any(m == n or m.startswith(n + ".") for n in made)]:
        del sys.modules[mod]


# ------------------------------------------------------------------------------------------------ the filter
NOISE = [
    "E0000 00:00:1796159301.123456    6864 meta_optimizer.cc:966] model_pruner failed: INVALID_ARGUMENT: "
    "Mutation::Apply error: fanout 'gradient_tape/model/leaky_re_lu/LeakyRelu/LeakyReluGrad' exist for missing "
    "node 'model/conv2d/BiasAdd'.",
    "I0000 00:00:1796159582.191259   15721 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU "
    "will not be used.",
    "I0000 00:00:1796159582.190791   15721 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders. To "
    "turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "W0000 00:00:1796159590.000001   15721 loop_optimizer.cc:933] Skipping loop optimization for Merge node",
    "E0000 00:00:1796159601.272111   15721 util.cc:131] oneDNN supports DT_INT32 only on platforms with AVX-512. "
    "Falling back to the default Eigen-based implementation if present.",
    "2026-12-01 21:13:05.1 W tensorflow/core/data/options: use_unbounded_threadpool is not supported",
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "WARNING:tensorflow:5 out of the last 5 calls to <function f at 0x7f> triggered tf.function retracing. "
    "Tracing is expensive and the excessive number of tracings could be due to ...",
    "This TensorFlow binary is optimized to use available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the "
    "appropriate compiler flags.",
    "E0000 00:00:1796159245.5   6864 cuda_dnn.cc:8310] Unable to register cuDNN factory: Attempting to register",
    "scoring:  40%|####      | 4/10 [00:01<00:02,  2.95it/s]",
    "100%|██████████| 10/10 [00:00<00:00, 1234.56it/s]",
    "k-means: 12it [00:03,  3.91it/s]",
    "feature 1/3\rfeature 2/3\rfeature 3/3",  # a bar redrawn in place
]
KEPT = [
    "OLED fashion_mnist class 0 scale smoke: 48 training images, 16 validation, 64 test; 2 epochs of batch 16",
    "  validation AUROC epoch 1: s_rec 0.5312, s_mask 0.6406 (new best: s_rec)",
    "Epoch 2/2",
    "3/3 - 4s - 1s/step - l_cont: 0.0514 - l_mask: 0.3334",
    "E0000 00:00:1796159245.5   6864 some_kernel.cc:12] Resource exhausted: OOM when allocating tensor",
    "WARNING:absl:a warning of the project",
    "note oled.table1/class3: 40% of the images were dropped | see data.json",
    "Traceback (most recent call last):",
    "ValueError: job oled.table1/class3 returned 0.5 for 2 cells",
]


def test_noise_filter():
    for line in NOISE:
        assert is_noise(line), line
    for line in KEPT:
        assert not is_noise(line), line
    assert not is_noise("a line ending in a carriage return\r")  # CRLF-ish endings are not bars
    names = {name for name, _ in NOISE_PATTERNS}
    assert {"glog info/warning", "grappler Mutation::Apply", "use_unbounded_threadpool", "tf.function retracing",
            "oneDNN notice", "tqdm bar"} <= names


# ------------------------------------------------------------------------------------------ plan and estimates
PLAN_TABLES = """
from common.registry import Job

def run(scale, workdir, data_dir, seed=0):
    raise AssertionError("a dry run runs nothing")

OURS = ("OLED (Ours) s_rec", "AUCROC")
JOBS = ([Job("oled.table1", f"class{k}", [OURS], run, n_parts=4) for k in range(4)]
        + [Job("oled.table3", "ped2", [OURS], run),
           Job("oled.table5", "mask", [("Inlier", "AUCROC")], run),
           Job("oled.table5", "other", [("Outlier", "AUCROC")], run),
           Job("oled.table4", "cae_class0", [("CAE s_rec", "AUCROC")], run, n_parts=1)])
"""


def _result(results: Path, scale: str, table: str, job: str, cell, wall: float, seeds=None):
    """A result file as common.run_tables writes it (per_seed values when ``seeds`` holds several)."""
    c = {"row": cell[0], "col": cell[1], "value": 0.5}
    if seeds and len(seeds) > 1:
        c["per_seed"] = {str(s): 0.5 for s in seeds}
    path = results / "cells" / scale / table / f"{job}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": 1, "table": table, "job": job, "scale": scale, "cells": [c],
                                "n_parts": 1, "seeds": list(seeds or [0]), "wall_time_s": wall,
                                "finished_at": "2026-01-01T00:00:00+00:00"}))


def test_plan_estimates_come_from_recorded_costs(make_pkg, tmp_path, capsys):
    name = make_pkg(PLAN_TABLES)
    results = tmp_path / "results"
    _result(results, "quick", "oled.table1", "class0", OURS, 100.0, seeds=[0, 1])  # 2 runs: 50 s each
    _result(results, "quick", "oled.table1", "class1", OURS, 70.0)
    _result(results, "smoke", "oled.table5", "mask", ("Inlier", "AUCROC"), 2.0)
    _result(results, "smoke", "oled.table5", "other", ("Outlier", "AUCROC"), 1.0)
    _result(results, "quick", "oled.table5", "other", ("Outlier", "AUCROC"), 10.0)  # quick/smoke = 10
    _result(results, "quick", "oled.table4", "oled_class0", ("OLED (Ours) s_rec", "AUCROC"), 30.0)
    _result(results, "quick", "oled.table4", "oled_class1", ("OLED (Ours) s_rec", "AUCROC"), 10.0)

    costs = Costs(results)
    jobs = {j.key: j for j in run_tables.discover("oled", name)[0]}
    assert costs.estimate(jobs["oled.table1/class0"], "quick") == (50.0, "recorded", "recorded")
    assert costs.estimate(jobs["oled.table1/class2"], "quick") == (60.0, "siblings", "siblings: mean of 2")
    sec, kind, how = costs.estimate(jobs["oled.table5/mask"], "quick")
    assert (sec, kind) == (pytest.approx(20.0), "other scale") and how.startswith("smoke result x 10")
    sec, kind, how = costs.estimate(jobs["oled.table4/cae_class0"], "quick")  # no sibling: the table's mean
    assert (sec, kind) == (pytest.approx(20.0), "table") and "mean of 2 other jobs of oled.table4" in how
    assert costs.estimate(jobs["oled.table3/ped2"], "quick") == (None, "none", "no estimate")
    assert costs.estimate(jobs["oled.table1/class2"], "paper")[0] is None  # nothing recorded at paper scale

    counts = run_tables.run("quick", only="oled", results_dir=results, packages=_packages(name), dry_run=True)
    out = capsys.readouterr().out
    assert counts == {"done": 0, "cached": 3, "skipped": 0, "not_run": 1}
    lines = out.splitlines()
    assert lines[-1] == ("plan: 5 runs of 5 jobs to do, 3 cached, 1 table without a job; estimated ~2 min 40 s "
                         "for 4 of them (siblings: 2, table: 1, other scale: 1); 1 run without an estimate "
                         "(not in the total)")
    assert "done oled.table1/class# (2 jobs, # = 0-1): cached (scale=quick, finished 2026-01-01T00:00:00+00:00)" \
        in lines
    assert "plan oled.table1/class# (2 jobs, # = 2-3): 1 run (seed 0) each, ~2 min 0 s (siblings: mean of 2)" \
        in lines
    assert "plan oled.table3/ped2: 1 run (seed 0), no estimate" in lines
    assert "skip oled.table2: no job registered in " + name + ".tables" in lines
    assert "done oled.table5/other: cached (scale=quick, finished 2026-01-01T00:00:00+00:00)" in lines
    # A dry run writes nothing.
    assert not (results / "REPORT.md").exists() and not (results / "runs").exists()

    # --force: the stored jobs are estimated from their own records; --seeds: only the missing seeds.
    run_tables.run("quick", only="oled.table1", results_dir=results, packages=_packages(name), dry_run=True,
                   force=True)
    out = capsys.readouterr().out
    assert "plan oled.table1/class# (4 jobs, # = 0-3): 1 run (seed 0) each, ~4 min 0 s (recorded: 2, " \
           "siblings: 2)" in out
    run_tables.run("quick", only="oled.table1/class0", results_dir=results, packages=_packages(name),
                   dry_run=True, seeds="0,1,2")
    out = capsys.readouterr().out
    assert "plan oled.table1/class0: 1 run (seed 2), ~50 s (recorded)" in out


def test_fmt_duration():
    assert [fmt_duration(s) for s in (0, 42.4, 60, 725, 3600, 12000)] == \
        ["0 s", "42 s", "1 min 0 s", "12 min 5 s", "1 h 0 min", "3 h 20 min"]


def test_dry_run_imports_no_tensorflow_and_writes_nothing(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    # The plan needs the standard library only (a fresh clone prints it before any install): numpy, scikit-learn,
    # TensorFlow and Keras are blocked in the child.
    code = ("import sys\nfor m in ('numpy', 'sklearn', 'tensorflow', 'keras', 'absl'): sys.modules[m] = None\n"
            "from common import run_tables\n"
            f"run_tables.main(['--scale=quick', '--dry_run', '--results_dir={tmp_path / 'r'}'])\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[-1].startswith("plan: ") and "\nplan oled.table1/" in res.stdout
    assert not (tmp_path / "r").exists()
    # The same through run_all.sh (which installs nothing for a dry run when .venv exists).
    if (REPO_ROOT / ".venv" / "bin" / "python").exists():
        res = subprocess.run(["bash", str(REPO_ROOT / "run_all.sh"), "--dry_run", "--scale=smoke",
                              "--only=oled.table3", f"--results_dir={tmp_path / 'r2'}"],
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        lines = res.stdout.splitlines()
        assert lines[0].startswith("plan oled.table3/") and lines[-1].startswith("plan: ") \
            and lines[-1].endswith("without an estimate (not in the total)")  # nothing recorded in r2
        assert "setup:" not in res.stdout + res.stderr and not (tmp_path / "r2").exists()
    res = subprocess.run(["bash", str(REPO_ROOT / "run_all.sh"), "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "--dry_run" in res.stdout


def test_dry_run_on_a_clone_without_a_venv_installs_nothing(tmp_path):
    """A fresh clone (no .venv): ./run_all.sh --dry_run prints the plan with the system Python, no setup."""
    import shutil

    clone = tmp_path / "clone"
    files = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True).stdout.split()
    for f in files:
        if f.startswith(("results/runs/",)) or not (REPO_ROOT / f).is_file():
            continue
        (clone / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / f, clone / f)
    res = subprocess.run(["bash", "run_all.sh", "--dry_run", "--only=oled.table1"], cwd=clone, capture_output=True,
                         text=True, env=dict(os.environ, PYTHON=sys.executable))
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[-1].startswith("plan: ") and "setup:" not in res.stdout + res.stderr
    assert not (clone / ".venv").exists()


# ------------------------------------------------------------------------------------ one process per job
CHILD_TABLES = """
import mmap
import os
import sys

import numpy as np

from common.errors import DataError
from common.registry import Job, JobResult

LEAK = []  # what a job keeps after it returns (TensorFlow's graphs, say): lost only when its process ends
OURS = ("OLED (Ours) s_rec", "AUCROC")

def part(k):
    def run(scale, workdir, data_dir, seed=0):
        # A fresh anonymous mapping, every page written: resident for sure (a malloc'd block may reuse pages
        # this process freed earlier, which would hide the leak from the in-process control).
        block = mmap.mmap(-1, {mb} * 2**20)
        np.frombuffer(block, np.uint8)[:] = 1
        LEAK.append(block)
        print("I0000 00:00:1796159582.191259   15721 cudart_stub.cc:31] Could not find cuda drivers on your "
              "machine, GPU will not be used.", file=sys.stderr, flush=True)
        print("E0000 00:00:1796159301.123456    6864 meta_optimizer.cc:966] model_pruner failed: "
              "INVALID_ARGUMENT: Mutation::Apply error: fanout 'gradient_tape/LeakyReluGrad' exist for missing "
              "node", file=sys.stderr, flush=True)
        print(f"training class {{k}} seed {{seed}}: epoch 1/1 loss=0.5", flush=True)
        return JobResult({{OURS: 0.5 + 0.01 * k + 0.001 * seed}},
                         extra={{"pid": os.getpid(), "no_progress": os.environ.get("REPRO_NO_PROGRESS"),
                                "leaked_mb": {mb} * len(LEAK)}})
    return run

def missing(scale, workdir, data_dir, seed=0):
    raise DataError(f"UCSD Ped2 not found under {{data_dir}}/ucsd")

def broken(scale, workdir, data_dir, seed=0):
    print("about to fail", flush=True)
    raise RuntimeError("boom in the job")

def bar_then_killed(scale, workdir, data_dir, seed=0):
    for i in range(20000):  # ~230 kB of a bar redrawn in place, no newline until the end
        sys.stderr.write(f"\\rstep {{i}}/20000")
    sys.stderr.write("\\n")
    print("after the bar", flush=True)
    os.kill(os.getpid(), 9)

JOBS = ([Job("oled.table1", f"class{{k}}", [OURS], part(k), n_parts=6) for k in range(6)]
        + [Job("oled.table3", "ped2", [OURS], missing), Job("oled.table5", "mask", [("Inlier", "AUCROC")], broken),
           Job("oled.table2", "class0", [OURS], bar_then_killed)])
"""


def test_jobs_run_in_child_processes(make_pkg, tmp_path, capsys):
    name = make_pkg(CHILD_TABLES.format(mb=1))
    results = tmp_path / "results"
    counts = run_tables.run("smoke", only="oled.table1/class0,oled.table1/class1,oled.table3", results_dir=results,
                            data_dir=tmp_path / "d", packages=_packages(name), isolate=True, seeds="0,1")
    out = capsys.readouterr().out
    assert counts == {"done": 2, "cached": 0, "skipped": 1, "not_run": 0}
    stored = json.loads((results / "cells/smoke/oled.table1/class1.json").read_text())
    assert stored["seeds"] == [0, 1] and stored["cells"][0]["per_seed"] == {"0": 0.51, "1": 0.511}
    extra = stored["extra"]["seed1"]
    assert extra["pid"] != os.getpid() and extra["no_progress"] == "1"  # another process; no bars off a tty
    assert extra["leaked_mb"] == 1  # a fresh process for every run: nothing left over from the one before
    # The user sees the job's own lines, not TensorFlow's; the log keeps everything.
    assert f"{CHILD_PREFIX}training class 1 seed 1: epoch 1/1 loss=0.5" in out
    assert "cudart_stub" not in out and "Mutation::Apply" not in out
    log = log_path(results / "runs/smoke/oled.table1/class1-seed1", "class1")
    text = log.read_text()
    assert "cudart_stub" in text and "Mutation::Apply" in text and "training class 1 seed 1" in text
    assert text.startswith("=== ") and text.rstrip().endswith("=== exit status 0")
    # Start and end lines with the elapsed time and what is left; a DataError in the child is a skip.
    run_lines = [line for line in out.splitlines() if line.startswith(("run  ", "done ", "skip "))]
    assert run_lines[0].startswith("run  oled.table1/class0 (scale=smoke, seed=0, datasets: ") \
        and run_lines[0].endswith("[1/6, no estimate; elapsed 0 s; left: 5 runs, no estimate]")
    assert run_lines[1].startswith("done oled.table1/class0, seed=0: OLED (Ours) s_rec|AUCROC=0.5 in ")
    # The runs left are estimated from the one just finished (recorded, siblings), ped2 not (another table).
    assert re.search(r" \[1/6; elapsed \d+ s; left: 5 runs, ~\d+ s \+ 2 without an estimate\]$", run_lines[1])
    assert run_lines[2].startswith("run  oled.table1/class0 (scale=smoke, seed=1, ") and "(recorded)" in run_lines[2]
    assert run_lines[4].startswith("run  oled.table1/class1 (scale=smoke, seed=0, ") and \
        "(siblings: mean of 1)" in run_lines[4]
    assert run_lines[-1] == f"skip oled.table3/ped2: UCSD Ped2 not found under {(tmp_path / 'd').resolve()}/ucsd"
    assert run_lines[-2].startswith("run  oled.table3/ped2 (scale=smoke, seed=0, ") and \
        run_lines[-2].endswith("; left: 1 run, no estimate]")  # its seed 1 is dropped with it
    assert len(run_lines) == 10
    assert (results / "REPORT.md").is_file() and not (results / "cells/smoke/oled.table3").exists()

    # Any other failure: one line naming the job and its log; the finished jobs stay and the report is rendered.
    (results / "REPORT.md").unlink()
    with pytest.raises(JobFailed) as failed:
        run_tables.run("smoke", only="oled.table5", results_dir=results, packages=_packages(name), isolate=True)
    log = log_path(results / "runs/smoke/oled.table5/mask", "mask")
    assert str(failed.value) == (f"job oled.table5/mask failed (exit status 1: RuntimeError: boom in the job); "
                                 f"its full output: {log}")
    assert "Traceback" in log.read_text() and (results / "REPORT.md").is_file()
    out = capsys.readouterr().out
    assert f"{CHILD_PREFIX}about to fail" in out and "summary:" not in out


def test_command_line_failure_is_one_line(make_pkg, tmp_path):
    name = make_pkg(CHILD_TABLES.format(mb=1))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), str(tmp_path / "pkgs")]))
    code = ("import sys; from common import run_tables; "
            f"run_tables.run = (lambda f: lambda *a, **k: f(*a, **{{**k, 'packages': {_packages(name)!r}}}))"
            "(run_tables.run); run_tables.main(sys.argv[1:])")
    res = subprocess.run([sys.executable, "-c", code, "--scale=smoke", "--only=oled.table5",
                          f"--results_dir={tmp_path / 'r'}"], capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.strip().splitlines() == [
        f"error: job oled.table5/mask failed (exit status 1: RuntimeError: boom in the job); its full output: "
        f"{tmp_path / 'r/runs/smoke/oled.table5/mask/job-mask.log'}"]
    assert (tmp_path / "r/REPORT.md").is_file()
    # The child's own command line: bad input is one error line.
    res = subprocess.run([sys.executable, "-m", "common.run_job", "--job=oled.table1", "--scale=smoke",
                          f"--workdir={tmp_path / 'w'}", f"--out={tmp_path / 'o.json'}"],
                         capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    assert res.returncode == 2 and res.stderr.startswith("error: --job='oled.table1'"), res.stderr


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    pytest.skip("no VmRSS in /proc/self/status")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")
def test_parent_memory_does_not_grow_with_the_number_of_jobs(make_pkg, tmp_path, capsys):
    mb = 40
    name = make_pkg(CHILD_TABLES.format(mb=mb))
    two = "oled.table1/class0,oled.table1/class1"
    # Control: in this process, every job's leak stays (the measurement sees it).
    before = _rss_mb()
    run_tables.run("smoke", only=two, results_dir=tmp_path / "inproc", packages=_packages(name))
    grown = _rss_mb() - before
    sys.modules[f"{name}.tables"].LEAK.clear()
    assert grown > 1.5 * mb, grown
    # One process per job: the parent stays flat from 2 jobs to 6.
    run_tables.run("smoke", only=two, results_dir=tmp_path / "n2", packages=_packages(name), isolate=True)
    after_2 = _rss_mb()
    run_tables.run("smoke", only="oled.table1", results_dir=tmp_path / "n6", packages=_packages(name), isolate=True)
    after_6 = _rss_mb()
    capsys.readouterr()
    assert after_6 - after_2 < 15, (after_2, after_6)
    stored = json.loads((tmp_path / "n6/cells/smoke/oled.table1/class5.json").read_text())
    assert stored["extra"]["leaked_mb"] == mb  # each child saw only its own job


def test_run_job_in_process_api_is_kept(make_pkg, tmp_path, capsys):
    name = make_pkg(CHILD_TABLES.format(mb=1))
    jobs = {j.key: j for j in run_tables.discover("oled", name)[0]}
    results = tmp_path / "r"
    assert run_tables.run_job(jobs["oled.table1/class2"], "smoke", results, None, False) == "done"
    assert run_tables.run_job(jobs["oled.table1/class2"], "smoke", results, None, False) == "cached"
    assert run_tables.run_job(jobs["oled.table3/ped2"], "smoke", results, tmp_path, False, isolate=True,
                              package=name) == "skipped"
    with pytest.raises(RuntimeError, match="boom"):  # in process a bug propagates as it is
        run_tables.run_job(jobs["oled.table5/mask"], "smoke", results, None, False)
    out = capsys.readouterr().out
    assert "done oled.table1/class2: cached" in out and "skip oled.table3/ped2: UCSD Ped2 not found" in out


def test_a_long_progress_bar_and_a_killed_child(make_pkg, tmp_path, capsys):
    name = make_pkg(CHILD_TABLES.format(mb=1))
    results = tmp_path / "r"
    with pytest.raises(JobFailed) as failed:
        run_tables.run("smoke", only="oled.table2", results_dir=results, packages=_packages(name), isolate=True)
    log = log_path(results / "runs/smoke/oled.table2/class0", "class0")
    assert str(failed.value) == f"job oled.table2/class0 failed (killed by signal SIGKILL); its full output: {log}"
    out = capsys.readouterr().out
    assert f"{CHILD_PREFIX}after the bar" in out and "step " not in out
    text = log.read_bytes()  # (read_text would turn the carriage returns into newlines)
    assert b"\rstep 0/20000\rstep 1/20000" in text and b"step 19999/20000\nafter the bar" in text
