"""``--jit_compile=auto`` on a CPU-only machine by a short timed probe, cached per machine.

Whether XLA speeds up a train step on a CPU depends on the CPU: OLED's MNIST step ran 1.5x faster with XLA on an
AVX2-only AMD CPU and 0.8x (float32) / 0.5x (bf16) as fast on an AVX-512 + AMX Intel CPU, where oneDNN's kernels
beat XLA's (docs/oled-notes.md "Speed rule"). No rule from CPU flags was shown to hold on both kinds, so
:func:`choose` times both candidates on the machine it runs on and keeps the faster.

The cache (``$REPRO_CACHE_DIR/jit_probe.json``, default ``~/.cache/repro/jit_probe.json``) is keyed by the
caller's key (model kind, batch, precision ...) plus the CPU model, its flags and the TensorFlow version, so a
probe runs once per machine and setting; a run records the timings it used (``metrics.json: jit_probe``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)


def cache_path() -> Path:
    root = os.environ.get("REPRO_CACHE_DIR") or str(Path.home() / ".cache" / "repro")
    return Path(root) / "jit_probe.json"


def machine_signature() -> str:
    """CPU model name, a hash of its flags and the TensorFlow version: a probe's result holds for these."""
    import tensorflow as tf

    model, flags = "unknown", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1].strip()
    except OSError:
        pass
    digest = hashlib.sha1(" ".join(sorted(flags.split())).encode()).hexdigest()[:10]
    return f"{model} | flags {digest} | tf {tf.__version__} | cores {os.cpu_count()}"


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def time_candidate(make_step: Callable[[], Callable[[], Any]], calls: int = 3, warmup: int = 1) -> float:
    """Median wall seconds of one call of the step ``make_step()`` returns, after ``warmup`` calls (trace /
    compile)."""
    step = make_step()
    for _ in range(warmup):
        step()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def choose(key: dict, candidates: dict[str, Callable[[], Callable[[], Any]]], calls: int = 3, warmup: int = 1,
           path: Path | None = None, timer: Callable | None = None) -> dict:
    """The fastest of ``candidates`` (``{name: factory of a no-argument step}``) for ``key`` on this machine:
    ``{"choice": name, "seconds": {name: median s per call}, "cached": bool, "signature": ...}``. Cached (see
    the module docstring); a cached entry is reused only when it timed the same candidate names."""
    path = path or cache_path()
    timer = timer or time_candidate  # looked up at call time (tests replace it)
    full_key = json.dumps({**key, "machine": machine_signature()}, sort_keys=True)
    cache = _load(path)
    hit = cache.get(full_key)
    if hit and set(hit.get("seconds", {})) == set(candidates):
        return {**hit, "cached": True}
    seconds = {name: float(timer(make, calls=calls, warmup=warmup)) for name, make in candidates.items()}
    choice = min(seconds, key=seconds.get)
    entry = {"choice": choice, "seconds": seconds, "signature": machine_signature(), "when": time.time()}
    cache = _load(path)  # another process may have written meanwhile
    cache[full_key] = entry
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
        tmp.replace(path)
    except OSError as e:  # a read-only home: the choice still holds for this run
        log.warning("jit probe cache %s not written: %s", path, e)
    log.info("jit probe %s: %s (s per step: %s)", key, choice, seconds)
    return {**entry, "cached": False}
