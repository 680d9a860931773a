"""Run configuration shared by every method, scale presets, and the JSON files each run writes.

Each package subclasses :class:`RunConfig` with its own fields (all with defaults) and a ``PRESETS`` dict
``{"smoke": {...}, "quick": {...}, "paper": {...}}``. Presets may only cut epochs and data (numbers of
images, classes, videos); they never change an architecture. ``resolved()`` fills every field left as None
from the chosen preset, so ``config.json`` records exactly what ran. The default workdir names the method,
dataset, class, scale and a hash of every result field (see :mod:`common.run_identity`).

Every run writes ``<workdir>/config.json`` (the resolved config), ``<workdir>/identity.json`` (config hash and
code version, :mod:`common.run_identity`) and ``<workdir>/metrics.json`` (its metrics), all atomically
(temporary file then rename), so an interrupted run never leaves a file that looks like a result.
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from common.errors import ConfigError
from common.paths import REPO_ROOT

SCALES = ("smoke", "quick", "paper")


@dataclasses.dataclass
class RunConfig:
    """Fields shared by every entry point (one per shared flag in :mod:`common.flags`)."""

    method: ClassVar[str] = "method"
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {s: {} for s in SCALES}

    dataset: str | None = None
    data_dir: str | None = None
    normal_class: int = 0
    epochs: int | None = None
    batch_size: int | None = None
    seed: int = 0
    workdir: str | None = None
    scale: str = "quick"
    export_dir: str | None = None
    strategy: str = "default"
    precision: str = "float32"
    jit_compile: Any = "auto"
    resume: bool = True
    deterministic: bool = True
    force: bool = False

    @classmethod
    def from_flags(cls, common: dict, **extra):
        """Build from :func:`common.flags.common_values` plus package-specific values; unknown keys fail."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {**common, **extra}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"unknown config field(s) for {cls.__name__}: {', '.join(unknown)}")
        return cls(**values)

    def resolved(self):
        """A copy with every None field that the scale preset defines filled in, and a default workdir."""
        if self.scale not in self.PRESETS:
            raise ConfigError(f"unknown --scale={self.scale!r}; choose one of {', '.join(self.PRESETS)}")
        preset = self.PRESETS[self.scale]
        names = {f.name for f in dataclasses.fields(self)}
        bad = sorted(set(preset) - names)
        if bad:  # a programming error in a package's PRESETS, reported clearly
            raise ConfigError(f"{type(self).__name__}.PRESETS[{self.scale!r}] sets unknown fields {bad}")
        updates = {k: v for k, v in preset.items() if getattr(self, k) is None}
        if self.precision == "auto":  # before the workdir name: its hash covers the precision that runs
            updates["precision"] = resolve_precision(self.precision)
        cfg = dataclasses.replace(self, **updates)
        if cfg.workdir is None:
            cfg = dataclasses.replace(cfg, workdir=str(default_workdir(cfg)))
        return cfg

    def to_dict(self) -> dict:
        return {"method": self.method, **dataclasses.asdict(self)}


# ------------------------------------------------------------------------------------------------- precision
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
CPUINFO = Path("/proc/cpuinfo")


def read_cpuinfo() -> str:
    """The text of ``/proc/cpuinfo`` ("" where there is none, e.g. not Linux)."""
    try:
        return CPUINFO.read_text()
    except OSError:
        return ""


def bf16_cpu_flags() -> list[str]:
    """This CPU's flags that mean native bf16 arithmetic (AMX tiles: ``amx_bf16``; AVX-512: ``avx512_bf16``)."""
    flags: set[str] = set()
    for line in read_cpuinfo().splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
    return [f for f in BF16_CPU_FLAGS if f in flags]


def gpu_has_bf16() -> bool:
    """Whether TensorFlow sees a GPU with bf16 units (compute capability 8.0 or later: Ampere, Hopper, ...)."""
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        cc = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if cc and cc[0] >= 8:
            return True
    return False


def native_bf16() -> bool:
    """bf16 runs on native units here: a CPU with AMX / avx512_bf16, or a bf16-capable GPU."""
    return bool(bf16_cpu_flags()) or gpu_has_bf16()


def resolve_precision(value: str) -> str:
    """``--precision=auto`` -> ``mixed_bfloat16`` where bf16 has native units (:func:`native_bf16`), else
    ``float32`` (on an AVX2-only CPU emulated bf16 is slower than float32); other values unchanged."""
    if value != "auto":
        return value
    return "mixed_bfloat16" if native_bf16() else "float32"


def default_workdir(cfg: RunConfig) -> Path:
    """``runs/<method>_<dataset>_class<c>_<scale>_<hash>``: ``<hash>`` (8 hex digits of
    :func:`common.run_identity.config_hash`) covers every field that changes the result (seed, method flags,
    ...), so two runs that differ in any of them never share a default workdir."""
    from common.run_identity import short_hash

    parts = [cfg.method, cfg.dataset or "data"]
    if cfg.normal_class is not None:
        parts.append(f"class{cfg.normal_class}")
    parts += [cfg.scale, short_hash(cfg)]
    return REPO_ROOT / "runs" / "_".join(str(p) for p in parts)


def _to_jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _to_jsonable(dataclasses.asdict(obj))
    return obj


def write_json_atomic(obj, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented JSON to ``path`` via a temporary file and an atomic rename."""
    return write_text_atomic(path, json.dumps(_to_jsonable(obj), indent=2, sort_keys=True, allow_nan=True) + "\n")


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` via a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def save_config(config: RunConfig, workdir: str | os.PathLike | None = None) -> Path:
    """Write the resolved config to ``<workdir>/config.json``."""
    workdir = Path(workdir or config.workdir)
    return write_json_atomic(config.to_dict(), workdir / "config.json")


def write_metrics(metrics: dict, workdir: str | os.PathLike) -> Path:
    """Write ``<workdir>/metrics.json`` (call once, when the run has finished); the run's ``identity.json`` and
    ``config.json`` are written first if no checkpoint has written them (:func:`common.run_identity.commit`)."""
    from common.run_identity import commit

    commit(workdir)
    return write_json_atomic(metrics, Path(workdir) / "metrics.json")
