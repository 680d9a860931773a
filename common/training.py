"""Training utilities shared by the four methods: seeding, determinism, precision, strategy, callbacks.

Typical use in a package's ``run(config)``::

    setup_run(config.seed, config.deterministic, config.precision)
    strategy = get_strategy(config.strategy)
    with strategy.scope():
        model = build(...); model.compile(...)
    model.fit(ds, epochs=config.epochs, callbacks=standard_callbacks(workdir, resume=config.resume),
              verbose=fit_verbosity())

``standard_callbacks`` gives a CSV log (``<workdir>/log.csv``), TensorBoard logs (``<workdir>/tb``) and
resumable checkpoints (``keras.callbacks.BackupAndRestore`` in ``<workdir>/backup``: an interrupted run started
again with the same workdir continues from the last finished epoch).
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from common.errors import ConfigError

log = logging.getLogger(__name__)


def setup_run(seed: int, deterministic: bool = True, precision: str = "float32") -> None:
    """Seed Python, NumPy and TensorFlow, enable op determinism and set the Keras dtype policy."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    set_precision(precision)


def set_precision(precision: str) -> None:
    """``float32``, ``mixed_bfloat16`` (AMX/bf16 CPUs, TPUs, Ampere+ GPUs) or ``mixed_float16`` (GPUs)."""
    import keras

    if precision not in ("float32", "mixed_bfloat16", "mixed_float16"):
        raise ConfigError(f"unknown precision {precision!r}; use float32, mixed_bfloat16 or mixed_float16")
    keras.mixed_precision.set_global_policy(precision)


def get_strategy(name: str = "default"):
    """A ``tf.distribute`` strategy: default (one device), mirrored (local GPUs) or multi_worker (TF_CONFIG).

    Create it at the start of a run, before the models (and, for multi_worker, before other TensorFlow work);
    models, optimizers and metrics are then built inside ``strategy.scope()``. Custom training steps follow
    :mod:`common.multiplayer`.
    """
    import json

    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ConfigError("--strategy=multi_worker needs the TF_CONFIG environment variable describing the "
                              "cluster (see tf.distribute.MultiWorkerMirroredStrategy)")
        try:
            spec = json.loads(os.environ["TF_CONFIG"])
            spec["cluster"], spec["task"]["type"], spec["task"]["index"]  # noqa: B018 (presence check)
        except (ValueError, KeyError, TypeError):
            raise ConfigError("TF_CONFIG must be JSON like {\"cluster\": {\"worker\": [\"host:port\", ...]}, "
                              "\"task\": {\"type\": \"worker\", \"index\": 0}}") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ConfigError(f"unknown --strategy={name!r}; use default, mirrored or multi_worker")


def is_chief(strategy=None) -> bool:
    """True on the worker that writes results: always, except under multi-worker training, where the chief is
    the task of type ``chief`` or, when the cluster has none, worker 0 (the TensorFlow convention)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type in (None, "chief"):
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()


def for_this_worker(config, strategy):
    """``config`` for the chief; for another worker of a multi-worker run, a copy whose ``workdir`` is a fresh
    temporary folder (checkpoints, logs and metrics of its own, deleted by the caller) and without an
    ``export_dir``, so that only the chief writes results and the export. Returns ``(config, temporary dir or
    None)``."""
    import dataclasses
    import tempfile

    if is_chief(strategy):
        return config, None
    tmp = tempfile.mkdtemp(prefix=f"worker{strategy.cluster_resolver.task_id}_")
    return dataclasses.replace(config, workdir=tmp, export_dir=None), tmp


def weights_digest(model) -> str:
    """SHA-256 (first 16 hex digits) of a model's weights, in order: equal digests = identical weights."""
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()[:16]


def resolve_jit_compile(value, strategy_name: str = "default", deterministic: bool = True):
    """Resolve ``auto`` the way Keras does on this machine and log it: off on CPU, under tf.distribute and
    with op determinism; on for a single GPU otherwise."""
    import tensorflow as tf

    if value in (True, False):
        resolved = value
    else:
        resolved = bool(tf.config.list_physical_devices("GPU")) and strategy_name == "default" \
            and not deterministic
    log.info("jit_compile=%s (flag value %r)", resolved, value)
    return resolved


def fit_verbosity() -> int:
    """Keras ``verbose``: an updating progress bar on a terminal, one line per epoch in a log file."""
    return 1 if sys.stdout.isatty() else 2


def standard_callbacks(workdir: str | os.PathLike, resume: bool = True, tensorboard: bool = True) -> list:
    """CSV log, TensorBoard and resumable checkpoints under ``workdir`` (see module docstring)."""
    import keras

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    backup = workdir / "backup"
    if not resume and backup.exists():
        import shutil

        shutil.rmtree(backup)
    cbs = [keras.callbacks.BackupAndRestore(str(backup), delete_checkpoint=False),
           keras.callbacks.CSVLogger(str(workdir / "log.csv"), append=resume)]
    if tensorboard:
        cbs.append(keras.callbacks.TensorBoard(str(workdir / "tb"), write_graph=False, profile_batch=0))
    return cbs


def progress(iterable=None, desc: str = "", total: int | None = None, unit: str = "it"):
    """A tqdm progress bar on stderr for long non-Keras work (feature extraction, scoring, k-means)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, unit=unit, file=sys.stderr, dynamic_ncols=True,
                disable=os.environ.get("REPRO_NO_PROGRESS") == "1")


def start_run(config):
    """The prelude of every entry point's ``run(config)``: resolve the scale preset, write
    ``<workdir>/config.json``, then seed and set determinism and precision. Returns ``(resolved config, workdir)``."""
    from common.config import save_config
    from common.paths import check_output_dirs

    cfg = config.resolved()
    check_output_dirs(cfg.workdir, cfg.export_dir)  # before any work: a bad --workdir / --export_dir fails now
    workdir = Path(cfg.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, workdir)
    setup_run(cfg.seed, cfg.deterministic, cfg.precision)
    return cfg, workdir


def shuffled_batches(arrays, batch_size: int, seed: int):
    """A ``tf.data.Dataset`` of ``arrays`` (one array or a tuple) shuffled anew every epoch (seeded) and batched:
    what ``model.fit(x, batch_size=..., shuffle=True)`` does, without Keras' array adapter. That adapter maps
    batches with a parallel ``map``, which TensorFlow's op-determinism rewrite turns into a ``MapDataset`` and
    logs ``E0000 ... NodeDef mentions attribute use_unbounded_threadpool`` once per epoch. Pass the dataset to
    ``fit`` with ``shuffle=False`` (the order is the dataset's)."""
    import tensorflow as tf

    n = len(arrays[0] if isinstance(arrays, tuple) else arrays)
    return (tf.data.Dataset.from_tensor_slices(arrays)
            .shuffle(n, seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size).prefetch(tf.data.AUTOTUNE))
