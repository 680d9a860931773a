"""``run(config)``: one image pretext task trained on one normal class and evaluated one-vs-all (Section IV-C).

The steps, in the paper's order: read and split the data (:mod:`.data`), train the pretext task on the normal
class (:func:`train`), score the test images by the pretext loss under all of the task's transformations
(:mod:`.scoring`), compute the AUROC and the PCA-20 floor on the same split (:mod:`.evaluate`), and optionally
export the scorer (:func:`export`). Writes ``config.json``, ``log.csv``, ``tb/``, ``checkpoint/`` (exact resume),
``test_losses.npz`` and ``metrics.json`` into the workdir.

A run whose workdir already holds a ``metrics.json`` written under the same resolved config is not repeated
(with ``resume``): its metrics are returned, which is how the registry's average jobs re-read the class runs.
"""
from __future__ import annotations

import time
from pathlib import Path

from permutation_tf.image.config import ImageTaskConfig


def model_name(cfg: ImageTaskConfig) -> str:
    """``permutation_image_<task>_<dataset>_<class>``: the export folder name."""
    return f"permutation_image_{cfg.task}_{cfg.dataset}_{cfg.normal_class}"


def build_model(cfg: ImageTaskConfig, input_shape):
    """The task's :class:`PretextModel`, built and compiled with Adam(``learning_rate``)."""
    import keras

    from common.training import resolve_jit_compile
    from permutation_tf.image.model import PretextModel
    from permutation_tf.image.tasks import make_task

    task = make_task(cfg.task, cfg.color_bins, cfg.n_counts, cfg.count_margin)
    model = PretextModel(task, input_shape, name=f"pretext_{cfg.task}")
    model.build_all()
    model.compile(keras.optimizers.Adam(cfg.learning_rate),
                  jit_compile=resolve_jit_compile(cfg.jit_compile, cfg.strategy, cfg.deterministic))
    return model


class EpochTimer:
    """A Keras callback factory recording the wall time of every training epoch (seconds)."""

    @staticmethod
    def make():
        import keras

        class _Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seconds: list[float] = []

            def on_epoch_begin(self, epoch, logs=None):
                self._t = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self._t)

        return _Timer()


def train(model, cfg: ImageTaskConfig, train_x, workdir: Path) -> dict:
    """Train the pretext task on the normal-class images: ``epochs`` epochs of shuffled batches of ``batch_size``
    (the last, smaller batch kept). Returns the per-epoch losses and wall times."""
    from common.training import epoch_batches, fit_resumable, num_batches

    timer = EpochTimer.make()
    t0 = time.time()
    # Exact resume (common/training.py): epoch e's batches depend on (seed, e) only.
    logs = fit_resumable(model, lambda first: epoch_batches(train_x, cfg.batch_size, cfg.seed, first, cfg.epochs),
                         epochs=cfg.epochs, workdir=workdir, steps_per_epoch=num_batches(len(train_x), cfg.batch_size),
                         callbacks=[timer], resume=cfg.resume)
    return {"loss_per_epoch": [float(l["loss"]) for l in logs if "loss" in l],
            "epoch_seconds": [round(s, 3) for s in timer.seconds], "train_seconds": time.time() - t0}


def export(model, cfg: ImageTaskConfig, sample) -> dict:
    """Export ``serving_default`` (images in [-1, 1] -> anomaly_score, transformation_losses) and check it in a
    fresh process."""
    import numpy as np
    import tensorflow as tf

    from common.export import check_export, export_saved_model

    path = export_saved_model(model, model.serve, cfg.export_dir, model_name(cfg), model.input_shape_)
    expected = {k: np.asarray(v) for k, v in model.serve(tf.constant(sample)).items()}
    diffs = check_export(path, sample, expected, atol=1e-3, rtol=1e-3)
    print(f"exported {path} (fresh-process check passed)", flush=True)
    return {"path": str(path), "max_abs_diff_fresh_process": diffs}


def run(config: ImageTaskConfig) -> dict:
    """Train, score, evaluate and (optionally) export one pretext task on one normal class; returns metrics."""
    import numpy as np

    from common.config import write_metrics
    from common.run_identity import finished_metrics
    from common.training import start_run
    from permutation_tf.image import evaluate
    from permutation_tf.image.data import prepare
    from permutation_tf.image.scoring import transformation_losses

    resolved = config.resolved()
    if resolved.resume and not resolved.export_dir:
        done = finished_metrics(resolved)
        if done is not None:
            print(f"{resolved.task} {resolved.dataset} class {resolved.normal_class}: finished run in "
                  f"{resolved.workdir}, AUROC {done['auroc']:.4f}", flush=True)
            return done
    t_start = time.time()
    cfg, workdir = start_run(config)
    data = prepare(cfg)
    print(f"{cfg.task} on {cfg.dataset} class {cfg.normal_class} ({data.summary['class_name']}), scale "
          f"{cfg.scale}: {len(data.train_x)} training images {data.input_shape}, {len(data.test_x)} test images "
          f"({data.summary['n_test_anomalies']} anomalous); {cfg.epochs} epochs of batch {cfg.batch_size}; "
          f"workdir {workdir}", flush=True)

    from common.training import get_strategy

    with get_strategy(cfg.strategy).scope():
        model = build_model(cfg, data.input_shape)
    training = train(model, cfg, data.train_x, workdir)

    t_eval = time.time()
    losses = transformation_losses(model, data.test_x, cfg.eval_batch_size, desc="scoring test set")
    np.savez(workdir / "test_losses.npz", losses=losses, labels=data.test_y, classes=data.test_classes)
    metrics = {"method": f"permutation_image/{cfg.task}", "task": cfg.task, "reference": model.task.reference,
               "dataset": cfg.dataset, "normal_class": cfg.normal_class, "scale": cfg.scale, "seed": cfg.seed,
               "epochs": cfg.epochs, "batch_size": cfg.batch_size, "precision": cfg.precision, "data": data.summary,
               **evaluate.image_metrics(data.test_y, losses, model.task.transformations), **training}
    if cfg.floor:
        metrics["floor"] = evaluate.floor_metrics(data.train_x, data.test_x, data.test_y, cfg.seed)
    metrics["eval_seconds"] = time.time() - t_eval
    if cfg.export_dir:
        metrics["export"] = export(model, cfg, data.test_x[:37])
    metrics["wall_seconds"] = time.time() - t_start
    write_metrics(metrics, workdir)
    floor = f", PCA-20 floor {metrics['floor']['auroc']:.4f}" if cfg.floor else ""
    print(f"{cfg.task} {cfg.dataset} class {cfg.normal_class}: AUROC {metrics['auroc']:.4f}{floor} "
          f"({workdir / 'metrics.json'})", flush=True)
    return metrics
