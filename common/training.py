"""Training utilities shared by the four methods: seeding, determinism, precision, strategy, callbacks.

Typical use in the body of a package's run (:func:`common.lifecycle.run_experiment` has called
:func:`start_run` and made the strategy)::

    with run.scope():
        model = build(...); model.compile(...)
    history = fit_resumable(model, lambda first: epoch_batches(x, cfg.batch_size, cfg.seed, first, cfg.epochs),
                            epochs=cfg.epochs, workdir=workdir, steps_per_epoch=num_batches(len(x), bs),
                            callbacks=[...], stateful=[...], resume=cfg.resume)

``fit_resumable`` writes a CSV log (``<workdir>/log.csv``), TensorBoard logs (``<workdir>/tb``) and a
:class:`Checkpoint` after every epoch (``<workdir>/checkpoint``). Resume is exact: a run killed at any point and
started again with the same command finishes with the same numbers as an uninterrupted run (CPU, op
determinism), because the checkpoint holds everything the next epoch depends on (weights, optimizer and RNG
states, callback state) and each epoch's data order depends on (seed, epoch) only (:func:`epoch_batches`).
"""
from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

from common.errors import ConfigError, ReproError

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
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=mirrored_devices())
    if name == "multi_worker":
        from common.config import check_tf_config

        check_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ConfigError(f"unknown --strategy={name!r}; use default, mirrored or multi_worker")


CPU_REPLICAS_ENV = "REPRO_CPU_REPLICAS"


def mirrored_devices() -> list[str] | None:
    """The devices of ``--strategy=mirrored``: every GPU where there is one (None: TensorFlow's default);
    without a GPU, every logical CPU device. ``REPRO_CPU_REPLICAS=N`` splits the CPU into N logical devices
    first (before TensorFlow initialises its devices), so that mirrored training with N replicas can be run
    and tested on a CPU-only machine."""
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return None
    n = os.environ.get(CPU_REPLICAS_ENV)
    if n:
        try:
            n = int(n)
            assert n >= 1
        except (ValueError, AssertionError):
            raise ConfigError(f"{CPU_REPLICAS_ENV}={os.environ[CPU_REPLICAS_ENV]!r} must be a positive integer") \
                from None
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
        except RuntimeError:  # already initialised (a second run in one process): keep what is there
            pass
    return [d.name for d in tf.config.list_logical_devices("CPU")]


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
    """SHA-256 (first 16 hex digits) of a model's weights (or of a list of models' weights), in order: equal
    digests = identical weights."""
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    for m in (model if isinstance(model, (list, tuple)) else [model]):
        for w in m.get_weights():
            h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()[:16]


def resolve_jit_compile(value, strategy_name: str = "default", deterministic: bool = True, on_cpu: bool = False):
    """Resolve ``auto`` and log it. On a GPU as Keras does (on for a single GPU), except under tf.distribute and
    with op determinism; on a CPU-only machine ``on_cpu`` (Keras: off; a package passes True where XLA measured
    faster on CPU: OLED's MNIST networks, see ``oled_tf.experiment.XLA_ON_CPU_KINDS``)."""
    import tensorflow as tf

    if value in (True, False):
        resolved = value
    elif tf.config.list_physical_devices("GPU"):
        resolved = strategy_name == "default" and not deterministic
    else:
        resolved = bool(on_cpu)
    log.info("jit_compile=%s (flag value %r)", resolved, value)
    return resolved


def fit_verbosity() -> int:
    """Keras ``verbose``: an updating progress bar on a terminal, one line per epoch in a log file."""
    return 1 if sys.stdout.isatty() else 2


class NonFiniteLoss(ReproError):
    """Training produced a non-finite loss; the last good checkpoint is kept."""


def epoch_batches(arrays, batch_size: int, seed: int, first_epoch: int, epochs: int):
    """A ``tf.data.Dataset`` of the batches of epochs ``first_epoch .. epochs - 1`` of ``arrays`` (one array or
    a tuple of arrays with the same first dimension), for ``fit(..., steps_per_epoch=ceil(n / batch_size))``.

    Epoch ``e`` visits the samples in the order of a stateless permutation of ``(seed, e)`` only, so a run
    resumed at epoch ``e`` sees exactly the batches an uninterrupted run sees (``shuffle(...,
    reshuffle_each_iteration=True)`` restarts at epoch 0's order after a restart)."""
    import tensorflow as tf

    single = not isinstance(arrays, (tuple, list))
    tensors = tuple(tf.convert_to_tensor(a) for a in ((arrays,) if single else arrays))
    n = int(tensors[0].shape[0])

    def one_epoch(e):
        order = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64),
                                                         seed=tf.stack([tf.constant(seed, tf.int64), e]))
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

    def gather(idx):
        out = tuple(tf.gather(t, idx) for t in tensors)
        return out[0] if single else out

    return (tf.data.Dataset.range(first_epoch, epochs).flat_map(one_epoch)
            .map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE))


def num_batches(n: int, batch_size: int) -> int:
    """Batches per epoch of ``n`` samples (the last one may be smaller)."""
    return -(-int(n) // int(batch_size))


class Checkpoint:
    """The complete training state after an epoch, in ``<directory>/epoch-<E>/``, written to a temporary folder
    and renamed, so a run killed at any point (SIGKILL included) finds the last finished epoch intact.

    Holds the model's weights with its optimizers (``model.save_weights``), every other variable of the model
    (the states of its ``keras.random.SeedGenerator`` s, which ``save_weights`` leaves out), the logs of every
    epoch so far, and ``state()`` of each object in ``stateful`` (callbacks with ``get_state() -> dict`` of JSON
    values and numpy arrays, and ``set_state(dict)``). Before the first save the active run's identity is
    committed (:func:`common.run_identity.commit`)."""

    def __init__(self, directory, model, stateful=()):
        self.dir, self.model, self.stateful = Path(directory), model, list(stateful)
        self.history: list[dict] = []

    def _extra_variables(self):
        weights = {id(v) for v in self.model.weights}
        return [v for v in self.model.variables if id(v) not in weights]

    def latest(self) -> Path | None:
        done = sorted(p for p in self.dir.glob("epoch-*") if (p / "state.json").is_file())
        return done[-1] if done else None

    def clear(self) -> None:
        import shutil

        if self.dir.exists():
            shutil.rmtree(self.dir)

    def restore(self) -> int:
        """Load the latest checkpoint into the model and the stateful objects; returns the epochs it finished
        (0 when there is none). The model and its optimizers must be built."""
        import numpy as np

        path = self.latest()
        if path is None:
            return 0
        state = json.loads((path / "state.json").read_text())
        opt = getattr(self.model, "optimizer", None)
        if opt is not None and not opt.built:
            opt.build(self.model.trainable_variables)
        self.model.load_weights(str(path / "model.weights.h5"))
        extra = self._extra_variables()
        with np.load(path / "variables.npz") as z:
            if len(z.files) != len(extra):
                raise ConfigError(f"checkpoint {path} holds {len(z.files)} extra variables, the model has "
                                  f"{len(extra)}: it was written by another model; use --force")
            for i, v in enumerate(extra):
                v.assign(z[f"v{i}"])
        arrays = {}
        if (path / "arrays.npz").exists():
            with np.load(path / "arrays.npz") as z:
                arrays = {k: z[k] for k in z.files}
        for i, obj in enumerate(self.stateful):
            st = dict(state["states"][i])
            for key in state["array_keys"][i]:
                st[key] = arrays[f"{i}/{key}"]
            obj.set_state(st)
        self.history = state["history"]
        print(f"resumed from {path} (epoch {state['epoch']})", flush=True)
        return int(state["epoch"])

    def save(self, epoch: int, logs: dict) -> Path:
        """Write the state after epoch ``epoch`` (0-based) as ``epoch-<epoch + 1>``; older ones are removed."""
        import shutil

        import numpy as np

        from common.run_identity import commit

        self.history.append({k: float(v) for k, v in (logs or {}).items()})
        commit(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{epoch + 1:06d}"
        tmp = self.dir / f".tmp-{name}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        self.model.save_weights(str(tmp / "model.weights.h5"))
        np.savez(tmp / "variables.npz", **{f"v{i}": np.asarray(v.numpy()) for i, v in
                                           enumerate(self._extra_variables())})
        states, array_keys, arrays = [], [], {}
        for i, obj in enumerate(self.stateful):
            st = obj.get_state()
            array_keys.append(sorted(k for k, v in st.items() if isinstance(v, np.ndarray)))
            arrays.update({f"{i}/{k}": st[k] for k in array_keys[-1]})
            states.append({k: v for k, v in st.items() if k not in array_keys[-1]})
        if arrays:
            np.savez(tmp / "arrays.npz", **arrays)
        with open(tmp / "state.json", "w") as f:
            json.dump({"epoch": epoch + 1, "history": self.history, "states": states, "array_keys": array_keys},
                      f, allow_nan=True)
        for p in tmp.iterdir():  # the data on disk before the rename makes it visible
            with open(p, "rb") as f:
                os.fsync(f.fileno())
        final = self.dir / name
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
        for p in self.dir.iterdir():
            if p != final and (p.name.startswith("epoch-") or p.name.startswith(".tmp-")):
                shutil.rmtree(p, ignore_errors=True)
        return final


def _truncate_log(path: Path, first_epoch: int) -> None:
    """Keep the header and the rows of epochs < ``first_epoch`` of a Keras CSV log (delete it when 0)."""
    if not path.exists():
        return
    if first_epoch == 0:
        path.unlink()
        return
    lines = path.read_text().splitlines(keepends=True)
    keep = lines[:1] + [l for l in lines[1:] if l.split(",", 1)[0].strip().isdigit()
                        and int(l.split(",", 1)[0]) < first_epoch]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(keep))
    os.replace(tmp, path)


def fit_resumable(model, data, *, epochs: int, workdir, steps_per_epoch: int | None = None, callbacks=(),
                  stateful=(), resume: bool = True, tensorboard: bool = True, verbose: int | None = None) -> list:
    """``model.fit`` that survives being killed: returns the logs of every epoch (restored ones included).

    ``data`` is a dataset or a callable ``data(first_epoch)`` returning one (use :func:`epoch_batches` with
    ``steps_per_epoch`` so the order of each epoch depends on (seed, epoch) only). The latest
    :class:`Checkpoint` in ``<workdir>/checkpoint`` is restored first (``resume=False``: deleted), together with
    the ``stateful`` objects (e.g. a model-selection callback); a finished run trains 0 epochs. Callbacks run in
    this order after each epoch: a non-finite check (raises :class:`NonFiniteLoss` before anything of that
    epoch is saved), ``callbacks``, the CSV log ``<workdir>/log.csv`` (rows of epochs not in the checkpoint are
    dropped on resume), the checkpoint, TensorBoard (``<workdir>/tb``). The model's global state that the
    checkpoint cannot see (Python / NumPy / TF global generators) must not be used during training."""
    import math

    import keras

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    ckpt = Checkpoint(workdir / "checkpoint", model, stateful)
    if not resume:
        ckpt.clear()
    first = ckpt.restore()
    _truncate_log(workdir / "log.csv", first)
    if first >= epochs:
        print(f"{workdir}: all {epochs} epochs are in the checkpoint; nothing left to train", flush=True)
        return ckpt.history

    def check_finite(epoch, logs):
        bad = {k: v for k, v in (logs or {}).items() if not math.isfinite(float(v))}
        if bad:
            last = ckpt.latest()
            kept = f"the last good checkpoint {last} is kept" if last else "no checkpoint was written"
            raise NonFiniteLoss(f"training diverged: non-finite {', '.join(f'{k}={v}' for k, v in bad.items())} "
                                f"in epoch {epoch + 1}; {kept} (lower the learning rate or check the data)")

    cbs = [keras.callbacks.LambdaCallback(on_epoch_end=check_finite), *callbacks,
           keras.callbacks.CSVLogger(str(workdir / "log.csv"), append=True),
           keras.callbacks.LambdaCallback(on_epoch_end=ckpt.save)]
    if tensorboard:
        cbs.append(keras.callbacks.TensorBoard(str(workdir / "tb"), write_graph=False, profile_batch=0))
    model.fit(data(first) if callable(data) else data, epochs=epochs, initial_epoch=first,
              steps_per_epoch=steps_per_epoch, shuffle=False, callbacks=cbs,
              verbose=fit_verbosity() if verbose is None else verbose)
    return ckpt.history


def progress(iterable=None, desc: str = "", total: int | None = None, unit: str = "it"):
    """A tqdm progress bar on stderr for long non-Keras work (feature extraction, scoring, k-means)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, unit=unit, file=sys.stderr, dynamic_ncols=True,
                disable=os.environ.get("REPRO_NO_PROGRESS") == "1")


def start_run(config):
    """The prelude of every entry point's ``run(config)``: resolve the scale preset, check the run identity of
    ``--workdir`` (:func:`common.run_identity.prepare_workdir`: resume this config's state, refuse another's,
    ``--force`` moves it aside), then seed and set determinism and precision. Returns ``(resolved config,
    workdir)``. ``config.json`` and ``identity.json`` are written when the run first saves something."""
    from common.paths import check_output_dirs
    from common.run_identity import prepare_workdir

    cfg = config.resolved()
    check_output_dirs(cfg.workdir, cfg.export_dir)  # before any work: a bad --workdir / --export_dir fails now
    workdir = Path(cfg.workdir)
    prepare_workdir(cfg, workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    setup_run(cfg.seed, cfg.deterministic, cfg.precision)
    return cfg, workdir
