"""Learning gates of a run, written while it trains (Sec. 4.2-4.3; beyond the paper, for a CPU-scale check that
the game trains): Keras callbacks that every ``every`` steps print one line with the step time and append one JSON
record to a trace file in the run folder (``<workdir>/game_trace.jsonl``, ``<workdir>/autoencoder/trace.jsonl``).

* :class:`GameMonitor` (the game): C's accuracy on held-out real D(phi(x)) and corrupted x_hat images (fixed
  keep masks), its Eq. 5 mask accuracy, the mean C(x_hat), R's gradient norm under both forms of Eq. 4
  (:meth:`artifacts_tf.model.SpotArtifacts.heldout_metrics`), and the training losses averaged over the interval
  (R's loss trend); at the steps in ``snapshot_steps`` C's weights are saved for the trend probe.
* :class:`LossTrace` (the autoencoder stage): Eq. 3's training loss averaged over the interval.

The step is the optimizer's iteration count, so a resumed run continues the same trace: :func:`read_trace`
keeps the last record of every step.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import keras
import numpy as np


def read_trace(path) -> list[dict]:
    """The records of a trace file, one per step (the last written wins, e.g. after a resume), by step."""
    path = Path(path)
    if not path.is_file():
        return []
    by_step = {}
    for line in path.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            by_step[int(rec["step"])] = rec
    return [by_step[k] for k in sorted(by_step)]


def snapshot_path(workdir, step: int) -> Path:
    return Path(workdir) / f"discriminator_step{int(step)}.weights.h5"


def snapshot_steps(workdir) -> list[int]:
    """The game steps at which :class:`GameMonitor` saved C in ``workdir``."""
    steps = [p.name[len("discriminator_step"):-len(".weights.h5")] for p in
             Path(workdir).glob("discriminator_step*.weights.h5")]
    return sorted(int(s) for s in steps if s.isdigit())


class _Interval(keras.callbacks.Callback):
    """Every ``every`` optimizer steps: the interval's mean of the logged running means, the step time."""

    def __init__(self, path, every: int, steps_per_epoch: int, total_steps: int, keys=()):
        super().__init__()
        self.path, self.every = Path(path), int(every)
        self.steps_per_epoch, self.total = int(steps_per_epoch), int(total_steps)
        self.keys = tuple(keys)
        self._prev = {}
        self._t = None
        self._step0 = None

    def _optimizer_step(self) -> int:
        opt = getattr(self.model, "d_optimizer", None)
        opt = self.model.optimizer if opt is None else opt
        return int(keras.ops.convert_to_numpy(opt.iterations))

    def on_epoch_begin(self, epoch, logs=None):
        self._prev = {}
        self._t, self._step0 = time.perf_counter(), self._optimizer_step()

    def _interval_means(self, batch: int, logs: dict) -> dict:
        """Keras logs running means since the epoch began: the mean over the batches since the last record."""
        n = batch + 1
        out = {}
        for k in self.keys:
            if k not in logs:
                continue
            m = float(logs[k])
            pn, pm = self._prev.get(k, (0, 0.0))
            out[k] = (m * n - pm * pn) / max(n - pn, 1)
            self._prev[k] = (n, m)
        return out

    def on_train_batch_end(self, batch, logs=None):
        step = self._optimizer_step()
        if step % self.every and step != self.total:
            return
        now = time.perf_counter()
        seconds = (now - self._t) / max(step - self._step0, 1)
        self._t, self._step0 = now, step
        rec = {"step": step, "seconds_per_step": seconds, **self._interval_means(batch, logs or {}),
               **self.extra(step)}
        with self.path.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        print(self.line(rec), flush=True)

    def extra(self, step: int) -> dict:
        return {}

    def line(self, rec: dict) -> str:
        body = ", ".join(f"{k} {v:.4g}" for k, v in rec.items() if k not in ("step", "seconds_per_step"))
        return f"{self.name} step {rec['step']}/{self.total}: {rec['seconds_per_step']:.2f} s/step; {body}"

    name = "train"


class LossTrace(_Interval):
    """The autoencoder stage's Eq. 3 loss over each interval and its step time."""

    name = "autoencoder"

    def __init__(self, path, every, steps_per_epoch, total_steps):
        super().__init__(path, every, steps_per_epoch, total_steps, keys=("loss",))


class GameMonitor(_Interval):
    """The game's learning gates on held-out images (module docstring); saves C at ``snapshot_steps``."""

    name = "game"

    def __init__(self, path, every, steps_per_epoch, total_steps, heldout_x, seed: int = 0, snapshot_steps=(),
                 workdir=None):
        super().__init__(path, every, steps_per_epoch, total_steps,
                         keys=("d_loss", "g_loss", "d_class_loss", "mask_loss", "real_accuracy", "fake_accuracy",
                               "mask_accuracy"))
        self.x = np.asarray(heldout_x, np.float32)
        self.seed = int(seed)
        self.snapshot_steps = {int(s) for s in snapshot_steps}
        self.workdir = workdir
        self._fn = None
        self._keep = None

    def on_train_begin(self, logs=None):
        import tensorflow as tf

        m = self.model
        rng = np.random.default_rng(self.seed)
        self._keep = tf.constant((rng.uniform(size=(len(self.x), m.grid, m.grid, 1)) >= m.drop_rate)
                                 .astype(np.float32))
        self._fn = tf.function(m.heldout_metrics)

    def on_train_batch_end(self, batch, logs=None):
        step = self._optimizer_step()
        if step in self.snapshot_steps and self.workdir is not None:
            self.model.discriminator.save_weights(str(snapshot_path(self.workdir, step)))
        if self.every:
            super().on_train_batch_end(batch, logs)

    def extra(self, step: int) -> dict:
        out = self._fn(self.x, self._keep)
        return {f"heldout_{k}": float(v) for k, v in out.items()}

    def line(self, rec: dict) -> str:
        g = lambda k: rec.get(k, float("nan"))  # noqa: E731
        text = (f"game step {rec['step']}/{self.total}: {rec['seconds_per_step']:.2f} s/step; held-out C real acc "
                f"{g('heldout_real_accuracy'):.3f}, fake acc {g('heldout_fake_accuracy'):.3f}, mask acc "
                f"{g('heldout_mask_accuracy'):.3f}, C(x_hat) {g('heldout_fake_probability'):.3f}")
        if "heldout_r_grad_norm_minimax" in rec:
            text += (f", |grad R| non-saturating {g('heldout_r_grad_norm_non_saturating'):.3g} / minimax "
                     f"{g('heldout_r_grad_norm_minimax'):.3g}")
        return text + f"; interval d_loss {g('d_loss'):.4f}, g_loss {g('g_loss'):.4f}"


def summarise_game(trace: list[dict]) -> dict:
    """First / last held-out gates and R's loss trend of a game trace (for metrics.json)."""
    if not trace:
        return {}
    keys = [k for k in trace[-1] if k.startswith("heldout_") or k in ("g_loss", "d_loss")]
    out = {"points": len(trace), "steps": [r["step"] for r in trace],
           "median_seconds_per_step": float(np.median([r["seconds_per_step"] for r in trace]))}
    for k in keys:
        vals = [r[k] for r in trace if k in r]
        out[k] = {"first": vals[0], "last": vals[-1], "min": min(vals), "max": max(vals)}
    return out
