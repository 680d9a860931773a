"""The one timing helper of every script in ``benchmarks/``: timed rounds, the machine and its load, a peak
probe, achieved GFLOP/s as a fraction of that peak, and the JSON + table report.

* :func:`time_rounds` / :func:`time_call`: ``warmup`` untimed-for-the-statistics calls of each callable, then
  ``rounds`` rounds of ``calls`` calls (several callables interleaved, the order rotated every round, so a
  shared CPU's load changes fall on all of them alike); the last output of a round is fetched (``.numpy()``)
  inside the timed region. Each round gives wall (``time.perf_counter``) and process-CPU (``time.process_time``,
  all threads) seconds per call; :class:`Measurement` keeps them all and :func:`summarise` gives the median,
  min, max, mean, standard deviation and spread (``(max - min) / median``). On a loaded shared machine the CPU
  time is the steadier clock: it leaves out the time other jobs held the cores.
* :func:`machine_info`: CPU model (``/proc/cpuinfo`` "model name"), cores, the bf16 flags
  (:func:`common.config.bf16_cpu_flags`), whether bf16 has native units (:func:`common.config.native_bf16`),
  the device and library versions. :func:`load_warning`: the 1-minute load average above 0.5 per core
  before a run means other jobs share the CPU and the numbers are unreliable.
* :func:`peak_probe`: in the same process, a float32 ``tf.linalg.matmul`` (2048 x 2048 by 2048 x 2048) and a
  ``tf.nn.conv2d`` (64 x 56 x 56 x 64 input, 3 x 3 x 64 x 64 kernel, SAME), and both in bfloat16 where the
  CPU (or GPU) has native bf16 units; GFLOP/s of each (median of 3 rounds after one warm-up call). The peak of a
  precision is the faster of its two probes.
* :class:`Report`: prints the machine, the load and the peak first; :meth:`Report.add` records one timed
  measurement with its work per call (items, FLOPs: see :mod:`benchmarks.flops`) and prints a line; fp32 rows
  are compared with the fp32 peak, ``*bfloat16`` rows with the bf16 one. :meth:`Report.finish` prints the table
  and the load after the run and writes everything as JSON (``--out``, default
  ``runs/bench/<script>_<date>-<time>.json``, the path printed).

Every script adds the shared flags with :func:`add_flags`: ``--rounds``, ``--warmup``, ``--peak_probe``
(``full`` | ``small`` | ``off``), ``--out``.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from common.paths import REPO_ROOT

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

LOAD_PER_CORE_LIMIT = 0.5
PROBE_SIZES = {  # matmul n (n x n by n x n); conv2d (batch, height, width, in channels, kernel, out channels)
    "full": {"matmul": 2048, "conv2d": (64, 56, 56, 64, 3, 64)},
    "small": {"matmul": 256, "conv2d": (2, 14, 14, 16, 3, 16)},
}


# ------------------------------------------------------------------------------------------------- machine
def cpu_model() -> str:
    """The CPU's "model name" from ``/proc/cpuinfo`` (else :func:`platform.processor`, else "unknown")."""
    from common.config import read_cpuinfo

    for line in read_cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def load_average() -> list[float]:
    """``os.getloadavg()`` (1, 5 and 15 minutes); NaNs where the platform has none."""
    try:
        return [float(v) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return [math.nan] * 3


def load_warning(load_1min: float, cores: int | None, limit: float = LOAD_PER_CORE_LIMIT) -> str | None:
    """A warning text when the 1-minute load average is above ``limit`` per core, else None."""
    cores = max(1, int(cores or 1))
    if not load_1min > limit * cores:
        return None
    return (f"load average {load_1min:.2f} on {cores} cores is above {limit} per core before the run: other jobs "
            f"share the CPU, so these numbers are unreliable (compare only ratios measured in this run, and "
            f"prefer the CPU-time columns)")


def machine_info() -> dict:
    """CPU model, cores, bf16 flags, native bf16, device and versions (module docstring)."""
    import numpy as np
    import tensorflow as tf

    from common.config import bf16_cpu_flags, native_bf16

    gpus = tf.config.list_physical_devices("GPU")
    return {"cpu_model": cpu_model(), "cores": os.cpu_count(), "bf16_cpu_flags": bf16_cpu_flags(),
            "native_bf16": native_bf16(), "device": f"GPU x {len(gpus)}" if gpus else "CPU",
            "python": platform.python_version(), "numpy": np.__version__, "tensorflow": tf.__version__,
            "hostname": platform.node()}


# -------------------------------------------------------------------------------------------------- timing
def summarise(values) -> dict:
    """Median, min, max, mean, standard deviation (0 for one value), spread = (max - min) / median, n."""
    v = [float(x) for x in values]
    if not v:
        return {"n": 0}
    med = statistics.median(v)
    return {"n": len(v), "median": med, "min": min(v), "max": max(v), "mean": statistics.fmean(v),
            "stdev": statistics.stdev(v) if len(v) > 1 else 0.0,
            "spread": (max(v) - min(v)) / med if med > 0 else 0.0}


def fetch(out):
    """Wait for ``out``: ``.numpy()`` of every tensor in it (nested dicts, lists and tuples); returns ``out``."""
    if isinstance(out, Mapping):
        for v in out.values():
            fetch(v)
    elif isinstance(out, (list, tuple)):
        for v in out:
            fetch(v)
    elif hasattr(out, "numpy"):
        out.numpy()
    return out


@dataclasses.dataclass
class Measurement:
    """Seconds per call of one timed callable: ``wall`` and ``cpu`` hold one value per timed round (the mean
    over its ``calls`` calls), ``warmup_wall`` / ``warmup_cpu`` one per warm-up call; ``output`` is the last
    output (not written to JSON)."""

    calls: int
    wall: list = dataclasses.field(default_factory=list)
    cpu: list = dataclasses.field(default_factory=list)
    warmup_wall: list = dataclasses.field(default_factory=list)
    warmup_cpu: list = dataclasses.field(default_factory=list)
    output: Any = dataclasses.field(default=None, repr=False)

    @property
    def rounds(self) -> int:
        return len(self.wall)

    def median(self, clock: str = "wall") -> float:
        return statistics.median(getattr(self, clock))

    def best(self, clock: str = "wall") -> float:
        return min(getattr(self, clock))

    def to_dict(self) -> dict:
        return {"rounds": self.rounds, "calls_per_round": self.calls,
                "seconds_per_call": {"wall": summarise(self.wall), "cpu": summarise(self.cpu)},
                "all_seconds_per_call": {"wall": list(self.wall), "cpu": list(self.cpu)},
                "warmup_seconds": {"wall": list(self.warmup_wall), "cpu": list(self.warmup_cpu)}}


def time_rounds(variants: Mapping[str, Callable[[], Any]], *, rounds: int = 3, calls: int = 1, warmup: int = 1,
                rotate: bool = True, fresh: bool = False, fetch: Callable[[Any], Any] = fetch,
                wall_clock: Callable[[], float] = time.perf_counter,
                cpu_clock: Callable[[], float] = time.process_time) -> dict[str, Measurement]:
    """Time several callables in interleaved rounds (module docstring): ``warmup`` single calls of each first,
    then ``rounds`` rounds in each of which every callable runs ``calls`` times (the order rotated by one each
    round unless ``rotate=False``) and its last output is passed to ``fetch`` before the clocks stop.

    ``fresh=True``: each value of ``variants`` is a factory, called (untimed) before every warm-up call and
    every round, that returns the callable to time (e.g. a freshly built model's ``fit``, so that its traces are
    timed every round). ``wall_clock`` / ``cpu_clock`` are injectable for tests. Returns name -> Measurement.
    """
    if rounds < 1 or calls < 1 or warmup < 0:
        raise ValueError(f"need rounds >= 1, calls >= 1 and warmup >= 0, got {rounds}, {calls}, {warmup}")
    names = list(variants)
    out = {k: Measurement(calls=calls) for k in names}

    def run(name: str, n: int) -> tuple[float, float]:
        fn = variants[name]() if fresh else variants[name]
        w0, c0 = wall_clock(), cpu_clock()
        for _ in range(n):
            result = fn()
        fetch(result)
        w, c = wall_clock() - w0, cpu_clock() - c0
        out[name].output = result
        return w / n, c / n

    for name in names:
        for _ in range(warmup):
            w, c = run(name, 1)
            out[name].warmup_wall.append(w)
            out[name].warmup_cpu.append(c)
    for r in range(rounds):
        shift = r % len(names) if rotate else 0
        for name in names[shift:] + names[:shift]:
            w, c = run(name, calls)
            out[name].wall.append(w)
            out[name].cpu.append(c)
    return out


def time_call(fn: Callable[[], Any], **kwargs) -> Measurement:
    """:func:`time_rounds` of one callable (same keyword arguments)."""
    return time_rounds({"call": fn}, **kwargs)["call"]


# ----------------------------------------------------------------------------------------------- peak probe
def _probe_functions():
    import tensorflow as tf

    @tf.function(jit_compile=False, autograph=False)
    def matmul(a, b):
        return tf.reduce_sum(tf.linalg.matmul(a, b))

    @tf.function(jit_compile=False, autograph=False)
    def conv2d(x, k):
        return tf.reduce_sum(tf.nn.conv2d(x, k, strides=1, padding="SAME"))

    return matmul, conv2d


def peak_probe(size: str | Mapping = "full", *, rounds: int = 3, precisions=None, **timing_kwargs) -> dict:
    """GFLOP/s of a matmul and a conv2d probe per precision (module docstring).

    ``size``: a key of :data:`PROBE_SIZES` or a dict like its values. ``precisions``: default float32, plus
    bfloat16 where :func:`common.config.native_bf16`; a precision asked for without native units is still
    measured. Returns ``{"sizes": ..., "float32": {"matmul": {...}, "conv2d": {...}}, "bfloat16": ... or
    {"skipped": reason}, "peak_gflops": {precision: the faster probe}}``; each probe holds its shape, FLOPs,
    ``seconds`` (median wall per call), ``gflops`` and the :class:`Measurement` as a dict.
    """
    import numpy as np
    import tensorflow as tf

    from common.config import native_bf16

    sizes = dict(PROBE_SIZES[size] if isinstance(size, str) else size)
    n = int(sizes["matmul"])
    b, h, w, c, k, f = (int(v) for v in sizes["conv2d"])
    rng = np.random.default_rng(0)
    a32 = tf.constant(rng.standard_normal((n, n), np.float32))
    x32 = tf.constant(rng.standard_normal((b, h, w, c), np.float32))
    k32 = tf.constant(rng.standard_normal((k, k, c, f), np.float32) / (k * math.sqrt(c)))
    native = native_bf16()
    if precisions is None:
        precisions = ("float32", "bfloat16") if native else ("float32",)
    matmul, conv2d = _probe_functions()
    result = {"sizes": {"matmul": [n, n, n], "conv2d": {"input": [b, h, w, c], "kernel": [k, k, c, f]}},
              "peak_gflops": {}}
    if "bfloat16" not in precisions:
        result["bfloat16"] = {"skipped": "no native bf16 units on this machine (emulated bf16 says nothing of a "
                                         "bf16 machine)"}
    for prec in precisions:
        dtype = tf.as_dtype(prec)
        a, x, kern = (tf.cast(t, dtype) for t in (a32, x32, k32))
        probes = {"matmul": (lambda: matmul(a, a), 2 * n ** 3, f"{n}x{n} @ {n}x{n}"),
                  "conv2d": (lambda: conv2d(x, kern), 2 * b * h * w * c * k * k * f,
                             f"{b}x{h}x{w}x{c} * {k}x{k}x{c}x{f} SAME")}
        result[prec] = {}
        for name, (fn, flops, shape) in probes.items():
            m = time_call(fn, rounds=rounds, **timing_kwargs)
            sec = m.median("wall")
            result[prec][name] = {"shape": shape, "flops": flops, "seconds": sec,
                                  "gflops": flops / sec / 1e9 if sec > 0 else math.inf, "timing": m.to_dict()}
        result["peak_gflops"][prec] = max(p["gflops"] for p in result[prec].values())
        if prec == "bfloat16" and not native:
            result[prec]["note"] = "emulated: no native bf16 units"
    return result


def peak_key(precision: str | None) -> str | None:
    """The peak a precision is compared with: ``float32`` -> float32, ``*bfloat16`` -> bfloat16, else None."""
    if not precision:
        return None
    if "bfloat16" in precision:
        return "bfloat16"
    return "float32" if precision == "float32" else None


# ---------------------------------------------------------------------------------------------------- report
def add_flags(parser: argparse.ArgumentParser, *, rounds: int = 3, warmup: int = 1,
              rounds_help: str = "timed rounds (the median is reported)") -> argparse.ArgumentParser:
    """The flags every benchmark shares: ``--rounds``, ``--warmup``, ``--peak_probe``, ``--out``."""
    parser.add_argument("--rounds", type=int, default=rounds, help=rounds_help)
    parser.add_argument("--warmup", type=int, default=warmup, help="untimed warm-up calls before the rounds")
    parser.add_argument("--peak_probe", default="full", choices=(*PROBE_SIZES, "off"),
                        help="size of the matmul / conv2d peak probe run first (off: no fraction of peak)")
    parser.add_argument("--out", default=None,
                        help="JSON results file (default: runs/bench/<script>_<date>-<time>.json)")
    return parser


def default_out(name: str, started: datetime.datetime) -> Path:
    return REPO_ROOT / "runs" / "bench" / f"{name}_{started:%Y%m%d-%H%M%S}.json"


def _fmt(v: float | None, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if v == 0:
        return "0"
    mag = math.floor(math.log10(abs(v)))
    return f"{v:.{max(0, digits - 1 - mag)}f}" if mag < digits else f"{v:,.0f}"


class Report:
    """One benchmark run: machine, load, peak probe, timed rows, extra data (``report.data``), JSON file.

    ``Report(name, args)`` (``args`` from a parser with :func:`add_flags`) prints the header, warns about the
    load and runs the peak probe (``args.peak_probe``); :meth:`add` records rows; :meth:`finish` writes the
    JSON (``args.out`` or the default path) and prints the table.
    """

    def __init__(self, name: str, args: argparse.Namespace | Mapping | None = None, *, probe: str | None = None,
                 out: str | None = None):
        self.name = name
        self.args = dict(vars(args) if isinstance(args, argparse.Namespace) else (args or {}))
        self.started = datetime.datetime.now()
        self.out = out if out is not None else self.args.get("out")
        self.rows: list[dict] = []
        self.data: dict = {}
        self.warnings: list[str] = []
        self.load_before, self.load_after = load_average(), None
        self.machine = machine_info()
        m = self.machine
        flags = ", ".join(m["bf16_cpu_flags"]) or "none"
        print(f"{name}: {m['cpu_model']}, {m['cores']} cores, {m['device']}; bf16 CPU flags: {flags} (native bf16: "
              f"{'yes' if m['native_bf16'] else 'no, bf16 is emulated'}); TF {m['tensorflow']}, numpy "
              f"{m['numpy']}, python {m['python']}; load average "
              f"{' '.join(f'{v:.2f}' for v in self.load_before)}", flush=True)
        warning = load_warning(self.load_before[0], m["cores"])
        if warning:
            self.warn(warning)
        probe = probe if probe is not None else self.args.get("peak_probe", "full")
        self.peak = None if probe == "off" else peak_probe(probe)
        if self.peak is not None:
            parts = []
            for prec in ("float32", "bfloat16"):
                p = self.peak.get(prec, {})
                if "skipped" in p:
                    parts.append(f"{prec}: {p['skipped']}")
                elif p:
                    parts.append(f"{prec} matmul {p['matmul']['shape']} {_fmt(p['matmul']['gflops'])} GFLOP/s, "
                                 f"conv2d {p['conv2d']['shape']} {_fmt(p['conv2d']['gflops'])} GFLOP/s")
            print("peak probe: " + "; ".join(parts), flush=True)

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        print(f"WARNING: {text}", file=sys.stderr, flush=True)

    def peak_gflops(self, precision: str) -> float | None:
        key = peak_key(precision)
        return None if self.peak is None or key is None else self.peak["peak_gflops"].get(key)

    def add(self, label: str, m: Measurement, /, *, precision: str | None = "float32", items: float | None = None,
            unit: str = "items", flops: float | None = None, flops_note: str | None = None,
            statistic: str = "median", note: str = "", **fields) -> dict:
        """Record (and print) one measurement: ``items`` (images, segments, ...) and ``flops`` done per call;
        rates from the median (``statistic="best"``: the minimum) seconds per call; ``precision=None`` for work that
        is not floating-point arithmetic (no peak to compare with). ``fields`` go into the row."""
        if statistic not in ("median", "best"):
            raise ValueError(f"statistic must be 'median' or 'best', not {statistic!r}")
        pick = m.median if statistic == "median" else m.best
        wall, cpu = pick("wall"), pick("cpu")
        row = {"label": label, "precision": precision, "unit": unit, "items_per_call": items,
               "flops_per_call": flops, "flops_note": flops_note, "statistic": statistic,
               "seconds_per_call": {"wall": wall, "cpu": cpu}, "timing": m.to_dict(), **fields}
        row["items_per_second"] = items / wall if items and wall > 0 else None
        row["items_per_cpu_second"] = items / cpu if items and cpu > 0 else None
        row["gflops"] = flops / wall / 1e9 if flops and wall > 0 else None
        peak = self.peak_gflops(precision)
        row["peak_gflops"] = peak
        row["fraction_of_peak"] = row["gflops"] / peak if row["gflops"] and peak else None
        self.rows.append(row)
        spread = summarise(m.wall).get("spread", 0.0)
        tag = f" [{precision}]" if precision else ""
        text = (f"  {label}{tag}: {_fmt(wall)} s/call wall (±{100 * spread:.0f}% over {m.rounds} x {m.calls}), "
                f"{_fmt(cpu)} s CPU")
        if row["items_per_second"]:
            text += f"; {_fmt(row['items_per_second'])} {unit}/s, {_fmt(row['items_per_cpu_second'])} per CPU s"
        if row["gflops"]:
            text += f"; {_fmt(row['gflops'])} GFLOP/s"
            if row["fraction_of_peak"]:
                text += f" = {100 * row['fraction_of_peak']:.1f}% of the {peak_key(precision)} peak"
        print(text + (f"; {note}" if note else ""), flush=True)
        return row

    def table(self) -> str:
        head = ("benchmark", "precision", "s/call wall", "±", "s/call CPU", "rate (wall)", "per CPU s",
                "GFLOP/s", "% peak")
        lines = []
        for r in self.rows:
            spread = r["timing"]["seconds_per_call"]["wall"].get("spread")
            rate = f"{_fmt(r['items_per_second'])} {r['unit']}/s" if r["items_per_second"] else "-"
            lines.append((r["label"], r["precision"] or "-", _fmt(r["seconds_per_call"]["wall"]),
                          "-" if spread is None else f"{100 * spread:.0f}%", _fmt(r["seconds_per_call"]["cpu"]),
                          rate, _fmt(r["items_per_cpu_second"]), _fmt(r["gflops"]),
                          "-" if not r["fraction_of_peak"] else f"{100 * r['fraction_of_peak']:.1f}"))
        widths = [max(len(str(x)) for x in col) for col in zip(head, *lines)]
        fmt = lambda row: "  ".join(str(x).ljust(w) if i < 2 else str(x).rjust(w)  # noqa: E731
                                    for i, (x, w) in enumerate(zip(row, widths)))
        return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *map(fmt, lines)])

    def to_dict(self) -> dict:
        return {"benchmark": self.name, "command": [sys.executable, *sys.argv], "args": self.args,
                "started": self.started.isoformat(timespec="seconds"),
                "finished": datetime.datetime.now().isoformat(timespec="seconds"), "machine": self.machine,
                "load_average": {"before": self.load_before, "after": self.load_after},
                "load_per_core_limit": LOAD_PER_CORE_LIMIT, "warnings": self.warnings, "peak_probe": self.peak,
                "rows": self.rows, "data": self.data}

    def finish(self) -> Path:
        """Print the table and the load after the run, write the JSON; returns its path."""
        from common.config import write_json_atomic

        self.load_after = load_average()
        if self.rows:
            print("\n" + self.table())
        print(f"load average before {self.load_before[0]:.2f}, after {self.load_after[0]:.2f} "
              f"({self.machine['cores']} cores)" + ("; see the warning above" if self.warnings else ""))
        path = write_json_atomic(self.to_dict(), self.out or default_out(self.name, self.started))
        print(f"results: {path}", flush=True)
        return path
