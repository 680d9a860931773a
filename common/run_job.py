"""Run ONE registered job of a table in a process of its own (the child side of ``common.run_tables``), and the
parent's side: start that process, keep its whole output in a log file and show the user the project's lines.

    python -m common.run_job --job=oled.table1/class3 --scale=quick --workdir=DIR --out=FILE
        [--package=oled_tf] [--data_dir=DIR] [--seed=N]

The child re-discovers the job by its key in ``<package>.tables.JOBS`` (``--package``, default the paper's
package of :data:`common.registry.PACKAGES`), calls its ``run(scale, workdir, data_dir[, seed])``, checks what
it returned (:func:`common.run_tables._normalise`) and writes ``{"values": [[row, col, value], ...], "seeds":
[...], "extra": {...}}`` to ``--out``. When the job raises :class:`common.errors.DataError` it writes
``{"data_error": "<one line>"}`` instead and exits with :data:`EXIT_DATA_ERROR` (3), which the parent turns
into its ``skip <job>: <message>`` line. Any other exception is a bug: traceback on stderr, exit status 1 (a
:class:`common.errors.ReproError` of the job, e.g. a workdir of another configuration: one ``error:`` line,
exit status 2).

Why a process per job: TensorFlow never gives back the memory of the graphs, datasets and models it built, so
a run of hundreds of jobs in one process grows until it is killed; a child returns everything to the system
when it exits, and the parent (which imports no TensorFlow) stays flat.

Parent side (:func:`run_in_child`): the child's stdout and stderr go, complete and unfiltered, to a log file in
the job's workdir (``<workdir>/job-<job name>.log``, appended to, one header line per run); the user sees the
child's lines except TensorFlow's noise (:func:`is_noise`, patterns :data:`NOISE_PATTERNS`), indented by
:data:`CHILD_PREFIX`. Progress bars only on a terminal: when the parent's stdout is not a terminal the child gets
``REPRO_NO_PROGRESS=1`` (no tqdm bars, ``common.training.progress``); on a terminal the bars are shown in place
(one updating line) and never printed as lines.

This module imports no TensorFlow (the job does, in the child).
"""
from __future__ import annotations

import collections
import datetime as _dt
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from common.errors import ArgumentParser, ConfigError, DataError, ReproError, exit_on_error, one_line
from common.paths import REPO_ROOT

EXIT_DATA_ERROR = 3  # the job raised DataError; --out holds {"data_error": message}
CHILD_PREFIX = "  | "  # the child's lines as shown to the user
PROGRESS_ENV = "REPRO_NO_PROGRESS"
_MAX_PENDING = 1 << 16  # bytes of an unfinished output line kept by the parent

# TensorFlow / XLA / absl output that says nothing about the run (it stays in the job's log file).
NOISE_PATTERNS: tuple[tuple[str, re.Pattern], ...] = tuple((name, re.compile(rx)) for name, rx in (
    # glog-prefixed info and warning lines of the C++ runtime: "I0000 00:00:1796159245.881889    6864 file.cc:31] ..."
    ("glog info/warning", r"^[IW]\d{4} [\d:.]+\s+\d+ [^\s\]]+:\d+\] "),
    # the grappler error TensorFlow prints for every LeakyReluGrad it cannot fuse (harmless)
    ("grappler Mutation::Apply", r"^E\d{4} .*Mutation::Apply error"),
    # CUDA plugin registration on a machine without a GPU
    ("CUDA plugin registration", r"^E\d{4} .*(Unable to register cu(DNN|FFT|BLAS) factory|failed call to cuInit)"),
    ("use_unbounded_threadpool", r"use_unbounded_threadpool"),
    ("absl pre-init notice", r"^WARNING: All log messages before absl::InitializeLog\(\) is called"),
    ("tf.function retracing", r"tf\.function retracing"),
    # "oneDNN custom operations are on ...", "E0000 ... util.cc:131] oneDNN supports DT_INT32 only on platforms ..."
    ("oneDNN notice", r"oneDNN custom operations are on|TF_ENABLE_ONEDNN_OPTS|^[IWE]\d{4} .*\] oneDNN "),
    ("CPU instruction notice", r"This TensorFlow binary is optimized to use available CPU instructions|"
                               r"rebuild TensorFlow with the appropriate compiler flags"),
    # tqdm bars: "scoring:  40%|####      | 4/10 [00:01<00:02,  2.95it/s]" and "12it [00:03,  3.9it/s]"
    ("tqdm bar", r"\d+%\|[^|]*\|\s*[\d.]+[kMG]?/[\d.]+[kMG]?\s*\["),
    ("tqdm bar without total",
     r"^\s*(?:[^:]{0,80}:\s*)?[\d.]+[kMG]?[a-zA-Z/]* \[\d+:\d\d(?::\d\d)?,\s*[\d.?]+\s*\S*/s\]\s*$"),
))


def is_noise(line: str) -> bool:
    """Whether a line of a job's output is TensorFlow/tqdm noise the user need not see (see NOISE_PATTERNS).
    A line holding carriage returns is a progress bar redrawn in place: noise."""
    if "\r" in line.rstrip("\r"):
        return True
    return any(rx.search(line) for _, rx in NOISE_PATTERNS)


# ---------------------------------------------------------------------------------------------- the child
def _find_job(key: str, package: str | None):
    from common.registry import PACKAGES, PAPERS
    from common.run_tables import discover

    paper = key.split(".", 1)[0]
    if "/" not in key or paper not in PAPERS:
        raise ConfigError(f"--job={key!r}: expected <table id>/<job name>, e.g. oled.table1/class3")
    package = package or PACKAGES[paper]
    jobs, why = discover(paper, package)
    if jobs is None:
        raise ConfigError(f"--job={key}: {why}")
    for job in jobs:
        if job.key == key:
            return job
    raise ConfigError(f"--job={key}: no such job in {package}.tables")


def _write_json(obj, path: Path) -> None:
    from common.config import write_json_atomic

    write_json_atomic(obj, path)


def child(key: str, scale: str, workdir: Path, out: Path, data_dir: Path | None = None, seed: int | None = None,
          package: str | None = None) -> None:
    """Run the job ``key`` once and write its result (or its DataError) to ``out`` (see the module docstring)."""
    from common.run_tables import _normalise

    job = _find_job(key, package)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        raw = job.run(scale, workdir, data_dir) if seed is None else job.run(scale, workdir, data_dir, seed=seed)
    except DataError as e:
        _write_json({"data_error": one_line(e)}, out)
        sys.exit(EXIT_DATA_ERROR)
    result = _normalise(job, raw)
    _write_json({"values": [[r, c, v] for (r, c), v in result.values.items()], "seeds": list(result.seeds),
                 "extra": dict(result.extra)}, out)


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    from common.registry import SCALES

    parser = ArgumentParser(prog="python -m common.run_job",
                            description="Run one registered job (the child process of common.run_tables).")
    parser.add_argument("--job", required=True, help="<table id>/<job name>, e.g. oled.table1/class3")
    parser.add_argument("--scale", required=True, choices=SCALES)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--out", required=True, help="where the result (JSON) is written")
    parser.add_argument("--package", default=None, help="the package whose tables.JOBS holds the job "
                                                         "(default: the paper's, common.registry.PACKAGES)")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--seed", type=int, default=None, help="default: the job's own seeds (run without seed)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    child(args.job, args.scale, Path(args.workdir), Path(args.out), Path(args.data_dir) if args.data_dir else None,
          args.seed, args.package)


# ---------------------------------------------------------------------------------------------- the parent
class JobFailed(ReproError):
    """A job's child process failed (not for missing data): the message names the job and its log file."""


def log_path(workdir: Path, job_name: str) -> Path:
    """The log file of a job's child processes (jobs sharing a workdir keep separate logs)."""
    return Path(workdir) / f"job-{job_name}.log"


def _import_root(package: str) -> Path | None:
    """The directory from which ``package`` (already imported by the parent) is importable."""
    module = sys.modules.get(package)
    origin = getattr(module, "__file__", None)
    if origin is None:
        paths = list(getattr(module, "__path__", []) or [])
        return Path(paths[0]).resolve().parent if paths else None
    return Path(origin).resolve().parent.parent


def child_env(package: str, tty: bool) -> dict[str, str]:
    """The child's environment: the repository (and the directory of ``package`` when it lies elsewhere) on
    PYTHONPATH, unbuffered output, no progress bars unless the parent writes to a terminal."""
    env = dict(os.environ)
    roots = [str(REPO_ROOT)]
    root = _import_root(package)
    if root is not None and str(root) not in roots:
        roots.append(str(root))
    if env.get("PYTHONPATH"):
        roots.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(roots)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not tty:
        env[PROGRESS_ENV] = "1"
    return env


class _Display:
    """Shows the child's output lines that are not noise; on a terminal, a progress bar redrawn in place."""

    def __init__(self, tty: bool, tail: int = 20):
        self.tty = tty
        self.transient = False
        self.tail: collections.deque[str] = collections.deque(maxlen=tail)  # last shown lines (for a failure)
        self.width = shutil.get_terminal_size((100, 20)).columns if tty else 0

    def _clear(self) -> None:
        if self.transient:
            sys.stdout.write("\r\x1b[K")
            self.transient = False

    def line(self, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace").rstrip("\r")
        if not text.strip():
            return
        if is_noise(text):
            self._clear()
            return
        self._clear()
        self.tail.append(text)
        sys.stdout.write(f"{CHILD_PREFIX}{text}\n")
        sys.stdout.flush()

    def partial(self, pending: bytes) -> None:
        """An unfinished line: on a terminal, the latest redraw of a progress bar (text after the last \\r)."""
        if not self.tty or b"\r" not in pending:
            return
        text = pending.rsplit(b"\r", 1)[1].decode("utf-8", errors="replace").strip()
        if text:
            sys.stdout.write("\r" + (CHILD_PREFIX + text)[: max(self.width - 1, 10)] + "\x1b[K")
            sys.stdout.flush()
            self.transient = True

    def close(self) -> None:
        self._clear()
        sys.stdout.flush()


def _stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """After Ctrl-C (or any error in the parent): interrupt the child (a Ctrl-C on the terminal reached it too; a
    SIGINT sent to the parent alone did not), give it ``grace`` seconds to exit, then terminate, then kill it."""
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, grace), (signal.SIGKILL, None)):
        if proc.poll() is not None:
            return
        try:
            proc.send_signal(sig)
        except OSError:
            pass
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_in_child(job, package: str, scale: str, workdir: Path, data_dir: Path | None, seed: int | None):
    """Run ``job`` once in a child process (``python -m common.run_job``); return its
    :class:`common.registry.JobResult`. Raises DataError with the child's message when the job lacks its
    data, :class:`JobFailed` (one line naming the job and its log) for any other failure, KeyboardInterrupt
    when the child was interrupted."""
    from common.registry import JobResult

    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    log = log_path(workdir, job.name)
    tty = sys.stdout.isatty()
    with tempfile.TemporaryDirectory(prefix="run_job-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "common.run_job", f"--job={job.key}", f"--package={package}",
               f"--scale={scale}", f"--workdir={workdir}", f"--out={out}"]
        if data_dir is not None:
            cmd.append(f"--data_dir={Path(data_dir).resolve()}")
        if seed is not None:
            cmd.append(f"--seed={seed}")
        display = _Display(tty)
        with open(log, "ab") as log_file:
            stamp = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            log_file.write(f"=== {stamp} {' '.join(shlex.quote(c) for c in cmd)}\n".encode())
            log_file.flush()
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=child_env(package, tty), cwd=os.getcwd())
            try:
                fd = proc.stdout.fileno()
                pending = b""
                while True:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        break
                    log_file.write(chunk)
                    log_file.flush()
                    *lines, pending = (pending + chunk).split(b"\n")
                    for raw in lines:
                        display.line(raw)
                    display.partial(pending)
                    if len(pending) > _MAX_PENDING:  # a bar redrawn for hours, or a line without end
                        if b"\r" in pending:
                            pending = b"\r" + pending.rsplit(b"\r", 1)[1]  # still a bar when it ends
                        else:
                            display.line(pending)
                            pending = b""
                if pending:
                    display.line(pending)
                rc = proc.wait()
            except BaseException as e:
                display.close()
                _stop(proc)
                log_file.write(f"=== stopped by the parent ({type(e).__name__}), exit status {proc.returncode}\n"
                               .encode())
                raise
            finally:
                proc.stdout.close()
            display.close()
            message = None
            if rc == EXIT_DATA_ERROR and out.is_file():
                try:
                    message = json.loads(out.read_text()).get("data_error")
                except (OSError, ValueError, AttributeError):
                    message = None
            log_file.write(f"=== exit status {rc}{f' (data error: {message})' if message else ''}\n".encode())
        if rc in (130, -signal.SIGINT):
            raise KeyboardInterrupt
        if message:
            raise DataError(message)
        last = next((t for t in reversed(display.tail) if not t.startswith((" ", "\t"))), None) \
            or (display.tail[-1].strip() if display.tail else "")
        if rc < 0:  # its last line says nothing about why: killed from outside (the out-of-memory killer?)
            raise JobFailed(f"job {job.key} failed (killed by signal {signal.Signals(-rc).name}); its full output: "
                            f"{log}")
        if rc != 0 or not out.is_file():
            why = f"exit status {rc}" if rc else "exit status 0 but no result written"
            raise JobFailed(f"job {job.key} failed ({why}{': ' + last if last else ''}); its full output: {log}")
        try:
            res = json.loads(out.read_text())
            values = {(str(r), str(c)): float(v) for r, c, v in res["values"]}
            return JobResult(values=values, seeds=tuple(int(s) for s in res["seeds"]), extra=dict(res["extra"]))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise JobFailed(f"job {job.key}: unreadable result from its process ({e}); its full output: {log}") \
                from None


if __name__ == "__main__":
    main(sys.argv[1:])
