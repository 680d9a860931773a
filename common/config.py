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
import os
import types
import typing
from pathlib import Path
from typing import Any, ClassVar

from common.errors import ConfigError
from common.jsonio import to_jsonable, write_json_atomic, write_text_atomic  # noqa: F401 (re-exported)
from common.paths import REPO_ROOT
from common.run_identity import commit, short_hash

SCALES = ("smoke", "quick", "paper")
STRATEGIES = ("default", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")
SEED_MAX = 2**32 - 1  # TensorFlow's and NumPy's seed range is [0, 2**32 - 1]


def option(default=None, help: str = "", *, choices: tuple | None = None, flag: str | None = None,
           parse=None, minimum: float | None = None, maximum: float | None = None, exclusive_minimum: bool = False,
           exclusive_maximum: bool = False, no_flag: bool = False, flag_default=dataclasses.MISSING,
           group: str | None = None):
    """A config field with everything its command-line flag needs, in one place (:mod:`common.flags` defines
    the flag from it; :meth:`RunConfig.resolved` checks the value once):

    ``help``: the flag's help text; ``choices``: allowed values (an enum flag); ``flag``: the flag's name when it
    differs from the field's; ``parse``: ``str -> value`` for values a plain flag cannot hold (e.g. a tuple
    given as "0.5,0.2,0.3"; the flag is then a string flag); ``minimum`` / ``maximum``: bounds (with
    ``exclusive_minimum`` / ``exclusive_maximum``: strict); ``no_flag``: a field set by code only (a table job,
    an upstream run), never from the command line; ``flag_default``: the flag's default when it differs from the field's
    (e.g. a field None = "the preset" whose flag shows a value); ``group``: the field is a flag only of the entry
    points that ask for this group (``define_config_flags(cls, groups=...)``: an option one entry point would
    ignore is not offered there)."""
    meta = {"help": help, "choices": tuple(choices) if choices else None, "flag": flag, "parse": parse,
            "minimum": minimum, "maximum": maximum, "exclusive_minimum": exclusive_minimum,
            "exclusive_maximum": exclusive_maximum, "no_flag": no_flag, "group": group}
    if flag_default is not dataclasses.MISSING:
        meta["flag_default"] = flag_default
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def field_type(cls, name: str):
    """The base Python type of field ``name`` of dataclass ``cls`` (``int | None`` -> int; Any -> str)."""
    hint = typing.get_type_hints(cls).get(name, str)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = args[0] if args and typing.get_origin(hint) in (typing.Union, types.UnionType) else hint
    base = typing.get_origin(base) or base
    return base if isinstance(base, type) else str


@dataclasses.dataclass
class RunConfig:
    """Fields shared by every entry point (each one a shared flag, :mod:`common.flags`).

    Class attributes a package sets: ``method`` (the run identity's method name), ``PRESETS``,
    ``STRATEGIES`` (the ``--strategy`` values the method supports; another value is refused by
    :meth:`resolved` with one line), ``CODE_ROOTS`` (the library modules a run imports; the run identity hashes
    them and every project module they import, :func:`common.run_identity.code_modules`)."""

    method: ClassVar[str] = "method"
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {s: {} for s in SCALES}
    STRATEGIES: ClassVar[tuple[str, ...]] = STRATEGIES
    CODE_ROOTS: ClassVar[tuple[str, ...]] = ()

    dataset: str | None = option(None, "Dataset name (see `python -m common.datasets --help`).")
    data_dir: str | None = option(None, "Root of the datasets (default: $REPRO_DATA_DIR, else <repo>/data).")
    normal_class: int = option(0, "Index of the normal (inlier) class for one-class experiments.", minimum=0)
    epochs: int | None = option(None, "Training epochs (default: the --scale preset).", minimum=0,
                                exclusive_minimum=True)
    batch_size: int | None = option(None, "Batch size (default: the --scale preset).", minimum=0,
                                    exclusive_minimum=True)
    seed: int = option(0, "Random seed (Python, NumPy, TensorFlow, data splits), 0 .. 2**32 - 1.", minimum=0,
                       maximum=SEED_MAX)
    workdir: str | None = option(None, "Output folder: config.json, metrics.json, checkpoints, logs, figures "
                                 "(default: runs/<method>_<dataset>_class<c>_<scale>_<config hash>).")
    scale: str = option("quick", "smoke: seconds, for tests; quick: minutes on a CPU with real data; paper: the "
                        "paper's exact settings (a GPU).", choices=SCALES)
    export_dir: str | None = option(None, "If set, export a SavedModel to <export_dir>/<model_name>/<version>/.")
    strategy: str = option("default", "tf.distribute strategy: default (one device), mirrored (all local GPUs, or "
                           "the logical CPU devices) or multi_worker (MultiWorkerMirroredStrategy from TF_CONFIG).",
                           choices=STRATEGIES)
    precision: str = option("float32", "Keras dtype policy; mixed_bfloat16 uses AMX/bf16 units on recent CPUs and "
                            "GPUs; auto = mixed_bfloat16 where the CPU has native bf16 units (amx_bf16 / "
                            "avx512_bf16) or on a bf16 GPU, float32 otherwise (config.json records the choice).",
                            choices=PRECISIONS)
    jit_compile: Any = option("auto", "XLA compilation of the train step (metrics.json records what ran).",
                              choices=("auto", "true", "false"),
                              parse=lambda v: {"auto": "auto", "true": True, "false": False}[v])
    resume: bool = option(True, "Resume from the last checkpoint in --workdir if there is one.")
    deterministic: bool = option(True, "Enable TensorFlow op determinism (slower on GPU).")
    force: bool = option(False, "Start fresh even when --workdir holds another configuration's run: its contents "
                         "are moved aside into <workdir>/stale-<time>/ (see common/run_identity.py).")

    @classmethod
    def from_flags(cls, common: dict, **extra):
        """Build from a dict of field values (``common.flags.config_from_flags``); unknown keys fail."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {**common, **extra}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"unknown config field(s) for {cls.__name__}: {', '.join(unknown)}")
        return cls(**values)

    def resolved(self):
        """A copy with every None field that the scale preset defines filled in, and a default workdir; every
        field checked against its :func:`option` metadata (choices, bounds) and the strategy against what the
        method supports and the environment it needs."""
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
        cfg.check_fields()
        cfg.check_strategy()
        if cfg.workdir is None:
            cfg = dataclasses.replace(cfg, workdir=str(default_workdir(cfg)))
        return cfg

    def check_fields(self) -> None:
        """ConfigError naming ``--<flag>`` for the first field whose value is outside its choices or bounds, or
        a string flag given as an empty string."""
        for f in dataclasses.fields(self):
            meta, value = f.metadata, getattr(self, f.name)
            if not meta or value is None:
                continue
            flag = f"--{meta.get('flag') or f.name}"
            if isinstance(value, str) and not value.strip() and meta.get("choices") is None:
                raise ConfigError(f"{flag} is empty; give a value or leave the flag out")
            choices = meta.get("choices")
            if choices is not None and not meta.get("parse") and value not in choices:
                raise ConfigError(f"{flag} must be one of {', '.join(map(str, choices))}, got {value!r}")
            lo, hi = meta.get("minimum"), meta.get("maximum")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if lo is not None and (value <= lo if meta.get("exclusive_minimum") else value < lo):
                    raise ConfigError(f"{flag} must be {'>' if meta.get('exclusive_minimum') else '>='} {lo}, "
                                      f"got {value}")
                if hi is not None and (value >= hi if meta.get("exclusive_maximum") else value > hi):
                    raise ConfigError(f"{flag} must be {'<' if meta.get('exclusive_maximum') else '<='} {hi}, "
                                      f"got {value}")

    def check_strategy(self) -> None:
        """``--strategy`` must be one the method supports, and ``multi_worker`` needs a TF_CONFIG naming a
        cluster (without one, N machines started the same way would give N independent full runs)."""
        if self.strategy not in self.STRATEGIES:
            raise ConfigError(f"--strategy={self.strategy} is not supported by {self.method} (supported: "
                              f"{', '.join(self.STRATEGIES)})")
        if self.strategy == "multi_worker":
            check_tf_config()

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


def check_tf_config() -> None:
    """ConfigError unless TF_CONFIG describes a cluster and this task (``--strategy=multi_worker``)."""
    import json

    try:
        spec = json.loads(os.environ["TF_CONFIG"])
        spec["cluster"], spec["task"]["type"], spec["task"]["index"]  # noqa: B018 (presence check)
    except KeyError:
        raise ConfigError("--strategy=multi_worker needs the TF_CONFIG environment variable describing the cluster "
                          "and this task (see tf.distribute.MultiWorkerMirroredStrategy); without it each machine "
                          "would train alone") from None
    except (ValueError, TypeError):
        raise ConfigError("TF_CONFIG must be JSON like {\"cluster\": {\"worker\": [\"host:port\", ...]}, "
                          "\"task\": {\"type\": \"worker\", \"index\": 0}}") from None


def default_workdir(cfg: RunConfig) -> Path:
    """``runs/<method>_<dataset>_class<c>_<scale>_<hash>``: ``<hash>`` (8 hex digits of
    :func:`common.run_identity.config_hash`) covers every field that changes the result (seed, method flags,
    ...), so two runs that differ in any of them never share a default workdir."""
    parts = [cfg.method, cfg.dataset or "data"]
    if cfg.normal_class is not None:
        parts.append(f"class{cfg.normal_class}")
    parts += [cfg.scale, short_hash(cfg)]
    return REPO_ROOT / "runs" / "_".join(str(p) for p in parts)


def save_config(config: RunConfig, workdir: str | os.PathLike | None = None) -> Path:
    """Write the resolved config to ``<workdir>/config.json``."""
    workdir = Path(workdir or config.workdir)
    return write_json_atomic(config.to_dict(), workdir / "config.json")


def write_metrics(metrics: dict, workdir: str | os.PathLike) -> Path:
    """Write ``<workdir>/metrics.json`` (call once, when the run has finished); the run's ``identity.json`` and
    ``config.json`` are written first if no checkpoint has written them (:func:`common.run_identity.commit`)."""
    commit(workdir)
    return write_json_atomic(metrics, Path(workdir) / "metrics.json")
