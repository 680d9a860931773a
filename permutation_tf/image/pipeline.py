"""``run(config)``: one image pretext task trained on one normal class and evaluated one-vs-all (Section IV-C).

The steps, in the paper's order: read and split the data (:mod:`.data`), train the pretext task on the normal
class (:func:`train`), score the test images by the pretext loss under all of the task's transformations
(:mod:`.scoring`), compute the AUROC and the PCA-20 floor on the same split (:mod:`.evaluate`), and optionally
export the scorer (:func:`export`). Writes ``config.json``, ``log.csv``, ``tb/``, ``checkpoint/`` (exact resume),
``test_losses.npz`` and ``metrics.json`` into the workdir.

The run goes through :func:`common.lifecycle.run_experiment` (:func:`run` -> :func:`body`): a run whose workdir
already holds the metrics of the same resolved config and code is not repeated (with ``resume``): its metrics
are returned, which is how the registry's average jobs re-read the class runs.
"""
from __future__ import annotations

import time
from pathlib import Path

from permutation_tf.image.config import ImageTaskConfig


def model_name(cfg: ImageTaskConfig) -> str:
    """``permutation_image_<task>_<dataset>_<class>``: the export folder name."""
    return f"permutation_image_{cfg.task}_{cfg.dataset}_{cfg.normal_class}"


def build_model(cfg: ImageTaskConfig, input_shape):
    """The task's :class:`PretextModel`, built and compiled with Adam(``learning_rate``) (call it inside the
    run's strategy scope)."""
    import keras

    from common.training import resolve_jit_compile
    from permutation_tf.image.model import PretextModel
    from permutation_tf.image.tasks import make_task

    task = make_task(cfg.task, cfg.color_bins, cfg.n_counts, cfg.count_margin, cfg.weight_decay,
                     cfg.jigsaw_permutations, cfg.jigsaw_jitter)
    model = PretextModel(task, input_shape, score=cfg.score, augment=cfg.augment,
                         train_transformations=cfg.train_transformations, seed=cfg.seed, name=f"pretext_{cfg.task}")
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


class LearningCurve:
    """A Keras callback factory: every ``every`` epochs (and after the last) score the test set and record the
    AUROC of every score rule (:func:`permutation_tf.image.evaluate.rule_aurocs`) with the epoch's training
    loss; ``points`` go to ``<workdir>/curve.json`` as they come and survive a resume (``get_state``)."""

    @staticmethod
    def make(cfg: ImageTaskConfig, test_x, test_y, workdir: Path, floor: float | None = None):
        import keras

        from common.config import write_json_atomic
        from permutation_tf.image.evaluate import curve_diagnostics, rule_aurocs
        from permutation_tf.image.scoring import transformation_losses

        class _Curve(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.points: list[dict] = []
                self.last_losses = None   # (epoch, [N, T] losses) of the last point scored in this process

            def on_epoch_end(self, epoch, logs=None):
                e = epoch + 1
                if not cfg.eval_every or (e % cfg.eval_every and e != cfg.epochs):
                    return
                t0 = time.perf_counter()
                losses = transformation_losses(self.model, test_x, eval_batch_size(cfg), desc=f"curve epoch {e}")
                self.last_losses = (e, losses)
                self.points.append({"epoch": e, "train_loss": float((logs or {}).get("loss", float("nan"))),
                                    "auroc": rule_aurocs(test_y, losses, cfg.task, cfg.seed),
                                    **curve_diagnostics(test_y, losses), "min_loss": float(losses.min()),
                                    "seconds": time.perf_counter() - t0})
                write_json_atomic({"floor_auroc": floor, "score": cfg.score, "points": self.points},
                                  workdir / "curve.json")
                print(f"curve epoch {e}: " + ", ".join(f"{r} {a:.4f}" for r, a in self.points[-1]["auroc"].items())
                      + ("" if floor is None else f", floor {floor:.4f}"), flush=True)

            def get_state(self):
                return {"points": self.points}

            def set_state(self, state):
                self.points = list(state["points"])

        return _Curve()


def eval_batch_size(cfg: ImageTaskConfig) -> int:
    """Images per scoring batch: ``eval_batch_size``, cut for Jigsaw sets above 100 orders (the puzzle head holds
    ``[orders, 9, batch, 256]`` activations)."""
    if cfg.task != "jigsaw":
        return cfg.eval_batch_size
    return max(1, min(cfg.eval_batch_size, 25600 // cfg.jigsaw_permutations))


def train(model, cfg: ImageTaskConfig, train_x, workdir: Path, batch_size: int | None = None,
          curve=None) -> dict:
    """Train the pretext task on the normal-class images: ``epochs`` epochs of shuffled batches of ``batch_size``
    (default ``cfg.batch_size``; the last, smaller batch kept), with the :class:`LearningCurve` callback
    ``curve`` if given. Returns the per-epoch losses and wall times."""
    from common.training import epoch_batches, fit_resumable, num_batches

    batch_size = int(batch_size or cfg.batch_size)
    timer = EpochTimer.make()
    t0 = time.time()
    extra = [curve] if curve is not None else []
    # Exact resume (common/training.py): epoch e's batches depend on (seed, e) only.
    logs = fit_resumable(model, lambda first: epoch_batches(train_x, batch_size, cfg.seed, first, cfg.epochs),
                         epochs=cfg.epochs, workdir=workdir, steps_per_epoch=num_batches(len(train_x), batch_size),
                         callbacks=[timer, *extra], stateful=extra, resume=cfg.resume)
    return {"loss_per_epoch": [float(l["loss"]) for l in logs if "loss" in l],
            "epoch_seconds": [round(s, 3) for s in timer.seconds], "train_seconds": time.time() - t0}


def export(run, model, cfg: ImageTaskConfig, sample) -> dict:
    """Export ``serving_default`` (``images`` in [-1, 1], the model's input shape -> ``anomaly_score``,
    ``transformation_losses``) through the lifecycle (:meth:`common.lifecycle.Run.export`: TF Serving layout,
    metadata, checked in a fresh process). Under a ``tf.distribute`` strategy an undistributed copy with the
    same weights is exported."""
    from common.export import Signature

    model = run.undistributed(model, lambda: build_model(cfg, model.input_shape_))
    return run.export(model_name(cfg), model, {"serving_default": Signature(model.serve, model.input_shape_,
                                                                             "images")},
                      samples={"serving_default": sample}, atol=1e-3, rtol=1e-3,
                      preprocessing=preprocessing(cfg, model.input_shape_))


def preprocessing(cfg: ImageTaskConfig, input_shape) -> dict:
    """What a client does to raw pixels before ``serving_default`` (:func:`permutation_tf.image.data.to_model_input`):
    ``x / 127.5 - 1`` (uint8 -> [-1, 1]); smaller images (28 x 28) padded with -1 to the input size, image folders
    resized (bilinear)."""
    return {"kind": "images", "input_range": [-1.0, 1.0], "size": [int(input_shape[0]), int(input_shape[1])],
            "channels": int(input_shape[2]), "resize": "bilinear" if cfg.dataset == "image_folder" else "pad",
            "scaling": "x / 127.5 - 1 of 0..255 pixels; images smaller than the input padded with -1 (black) on all "
                       "sides, image folders resized (bilinear)",
            "anomaly_score": f"score rule {serve_rule(cfg.score)} (permutation_tf/image/scoring.py)"}


def serve_rule(score: str) -> str:
    """The rule of the exported ``anomaly_score``: ``score`` where it needs no label, else (``drawn_loss``) its
    expectation over the draw, ``mean_loss``."""
    from permutation_tf.image.scoring import LABEL_FREE_RULES

    return score if score in LABEL_FREE_RULES else "mean_loss"


def run(config: ImageTaskConfig) -> dict:
    """Train, score, evaluate and (optionally) export one pretext task on one normal class; returns metrics
    (:func:`common.lifecycle.run_experiment`: a finished run of this config and code is re-read, not repeated)."""
    from common.lifecycle import run_experiment

    return run_experiment(config, body)


def body(run) -> dict:
    """The method's part of a run (:mod:`common.lifecycle`): data, model, training, scores, floor, export."""
    import numpy as np

    from permutation_tf.image import evaluate
    from permutation_tf.image.data import prepare
    from permutation_tf.image.scoring import transformation_losses

    cfg, workdir = run.config, run.workdir
    data = prepare(cfg)
    batch_size = run.batch_size_for(len(data.train_x))
    print(f"{cfg.task} on {cfg.dataset} class {cfg.normal_class} ({data.summary['class_name']}), scale "
          f"{cfg.scale}: {len(data.train_x)} training images {data.input_shape}, {len(data.test_x)} test images "
          f"({data.summary['n_test_anomalies']} anomalous); {cfg.epochs} epochs of batch {batch_size}; "
          f"workdir {workdir}", flush=True)
    floor = evaluate.floor_metrics(data.train_x, data.test_x, data.test_y, cfg.seed) if cfg.floor else None
    with run.scope():
        model = build_model(cfg, data.input_shape)
    run.record_model(model)
    curve = (LearningCurve.make(cfg, data.test_x, data.test_y, workdir, floor and floor["auroc"])
             if cfg.eval_every else None)
    training = train(model, cfg, data.train_x, workdir, batch_size, curve)

    t_eval = time.time()
    if curve is not None and curve.last_losses is not None and curve.last_losses[0] == cfg.epochs:
        losses = curve.last_losses[1]   # the last epoch was just scored for the curve
    else:
        losses = transformation_losses(model, data.test_x, eval_batch_size(cfg), desc="scoring test set")
    np.savez(workdir / "test_losses.npz", losses=losses, labels=data.test_y, classes=data.test_classes)
    metrics = {"method": f"permutation_image/{cfg.task}", "task": cfg.task, "reference": model.task.reference,
               "dataset": cfg.dataset, "normal_class": cfg.normal_class, "scale": cfg.scale, "seed": cfg.seed,
               "epochs": cfg.epochs, "batch_size": cfg.batch_size, "precision": cfg.precision, "data": data.summary,
               **evaluate.image_metrics(data.test_y, losses, model.task.transformations, cfg.task, cfg.score,
                                        cfg.seed), **training}
    if curve is not None:
        metrics["curve"] = curve.points
    if floor is not None:
        metrics["floor"] = floor
    metrics["eval_seconds"] = time.time() - t_eval
    if cfg.export_dir:
        export(run, model, cfg, data.test_x[:37])
    floor_txt = f", PCA-20 floor {metrics['floor']['auroc']:.4f}" if cfg.floor else ""
    rules = ", ".join(f"{r} {a:.4f}" for r, a in metrics["auroc_per_rule"].items())
    print(f"{cfg.task} {cfg.dataset} class {cfg.normal_class}: AUROC {metrics['auroc']:.4f} ({cfg.score}; {rules})"
          f"{floor_txt} ({workdir / 'metrics.json'})", flush=True)
    return metrics


def report(metrics: dict) -> str:
    """The one line ``permutation_tf.train_image`` prints when a run is done (or re-read)."""
    floor = f", PCA-20 floor {metrics['floor']['auroc']:.4f}" if "floor" in metrics else ""
    return (f"{metrics.get('task')} {metrics.get('dataset')} class {metrics.get('normal_class')}: AUROC "
            f"{metrics['auroc']:.4f} ({metrics.get('score', 'mean_loss')}){floor}")
