"""Train and evaluate OLED on one dataset / normal class; optionally export a SavedModel.

    python -m oled_tf.train --dataset=mnist --normal_class=3 --scale=quick [--workdir=DIR] [--export_dir=DIR]
    python -m oled_tf.train --dataset=ucsd --data_dir=/data/UCSD_Anomaly_Dataset.v1p2 --scale=paper

Writes into ``--workdir``: ``config.json`` (resolved config), ``log.csv`` and TensorBoard logs, resumable
checkpoints, ``selection/`` (best epoch per score), ``figures/*.png`` and ``metrics.json`` (every score's AUROC,
plus EER for UCSD). Only this module reads flags: ``main`` builds an :class:`OLEDConfig` and calls :func:`run`.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

from absl import flags

from common import flags as cflags
from common.config import write_metrics
from oled_tf.config import OLEDConfig

log = logging.getLogger(__name__)

flags.DEFINE_float("t", 87.5, "Threshold t of the threshold unit: the top (100 - t)% activations are masked.")
flags.DEFINE_float("gamma", None, "Weight of L_cont (paper: 50; with --code_defaults 12.5 / 30 / 50 for MNIST / "
                   "CIFAR-10 / UCSD).")
flags.DEFINE_float("lambda_rec", 1.0, "Weight lambda of L_rec (paper: 1).")
flags.DEFINE_integer("mask_update_every", None, "Train MM on epochs with epoch % N == 0 (paper silent; default "
                     "the authors' code: 3 for MNIST-like and UCSD, 4 for CIFAR-10; 1 = every epoch).")
flags.DEFINE_boolean("code_defaults", False, "Use the authors' code values where they differ from the paper: "
                     "gamma per dataset, CIFAR MM loss without L_cont, TFP 'lower' percentile, the authors' networks, "
                     "400 epochs.")
flags.DEFINE_float("threshold_eps", 1e-12, "The 'infinitesimal' eps of Eq. 2 (code: 1e-12).")
flags.DEFINE_enum("mask_gradient", "faithful", ("faithful", "straight_through", "smooth"), "Backward pass of the "
                  "threshold unit: faithful = Eq. 2 (paper, code); BEYOND THE PAPER: straight_through (Eq. 2 "
                  "forward, sigmoid-surrogate gradient) or smooth (sigmoid mask forward and backward).")
flags.DEFINE_float("mask_temperature", 0.5, "Width of the beyond-paper sigmoid surrogate, in units of the "
                   "sample's activation-map std (only with --mask_gradient other than faithful).")
flags.DEFINE_enum("architecture", None, ("paper", "code"), "Networks: paper (Sections 3.3, 3.4.1) or code (the "
                  "authors' scripts); default: paper, or code with --code_defaults.")
flags.DEFINE_enum("threshold_mode", None, ("paper", "code"), "How many pixels T masks: 'paper' = round((100-t)% "
                  "of the pixels), 'code' = the TFP lower percentile of the authors' code (default: paper, or "
                  "code with --code_defaults).")
flags.DEFINE_enum("mask", "learned", ("learned", "random"), "learned = OLED; random = the context auto-encoder "
                  "ablation (Section 4.6, Table 4): a random --random_mask_size square masked instead of MM.")
flags.DEFINE_integer("random_mask_size", 10, "Side of the random square of the CAE ablation.")
flags.DEFINE_enum("protocol", "auto", ("auto", "memae", "ocgan", "one_vs_rest"), "One-class protocol "
                  "(auto: memae for mnist/mnist5k, ocgan for cifar10/fashion_mnist; see oled_tf/data.py).")
flags.DEFINE_integer("train_limit", None, "Use at most this many training images / patches (0 = all; default: "
                     "the --scale preset).")
flags.DEFINE_integer("test_limit", None, "Stratified subset of the test set (0 = all; default: the preset).")
flags.DEFINE_integer("ucsd_test_videos", None, "Evaluate on the first N UCSD test videos (0 = all; default: "
                     "the preset).")
flags.DEFINE_integer("ucsd_patch_stride", 30, "Stride of the 30x30 UCSD patches (30 = non-overlapping).")
flags.DEFINE_boolean("ucsd_smask_bug", False, "Reproduce the authors' UCSD test-script bug (s_mask := s_rec).")
flags.DEFINE_boolean("bn_recalibration", None, "Recompute BN moving statistics from training images before "
                     "each evaluation (not in the paper; default: on for smoke/quick, off for paper).")
flags.DEFINE_boolean("figures", True, "Write the Fig. 2/3 and Fig. 4 PNG files into <workdir>/figures.")

FLAGS = flags.FLAGS


def config_from_flags() -> OLEDConfig:
    common = cflags.common_values()
    common["jit_compile"] = cflags.parse_jit_compile(common["jit_compile"])
    return OLEDConfig.from_flags(
        common, t=FLAGS.t, gamma=FLAGS.gamma, lambda_rec=FLAGS.lambda_rec,
        mask_update_every=FLAGS.mask_update_every, code_defaults=FLAGS.code_defaults,
        threshold_eps=FLAGS.threshold_eps, threshold_mode=FLAGS.threshold_mode, mask=FLAGS.mask,
        mask_gradient=FLAGS.mask_gradient, mask_temperature=FLAGS.mask_temperature, architecture=FLAGS.architecture,
        random_mask_size=FLAGS.random_mask_size, protocol=FLAGS.protocol, train_limit=FLAGS.train_limit,
        test_limit=FLAGS.test_limit, ucsd_test_videos=FLAGS.ucsd_test_videos,
        ucsd_patch_stride=FLAGS.ucsd_patch_stride, ucsd_smask_bug=FLAGS.ucsd_smask_bug, figures=FLAGS.figures,
        bn_recalibration=FLAGS.bn_recalibration)


def model_name(cfg: OLEDConfig) -> str:
    """``oled_<dataset>_<class>`` (``oled_ucsd_ped2`` for UCSD, which has no normal class); CAE: ``cae_...``."""
    prefix = "oled" if cfg.mask == "learned" else "cae"
    return f"{prefix}_ucsd_ped2" if cfg.dataset == "ucsd" else f"{prefix}_{cfg.dataset}_{cfg.normal_class}"


# ``--jit_compile=auto`` on a CPU-only machine: XLA for the MNIST networks only. Measured (CPU seconds of one
# training step with XLA / without, batch 64, same process; README "Speed"): MNIST 0.66x (MM steps) and 0.69x
# (other steps); CIFAR-10 networks (batch 8) 2.8x and 2.5x, i.e. slower: XLA's CPU
# convolutions do not use oneDNN, which only pays off on the small MNIST convolutions. UCSD: not measured, off.
# Not at --scale=smoke either: its few steps cost less than XLA's compile (a smoke run took 2x as long with it).
XLA_ON_CPU_KINDS = ("mnist",)


def build_model(cfg: OLEDConfig, kind: str, compile_model: bool = True):
    """The OLED model for a resolved config, compiled with one Adam per player (Section 4.1)."""
    import keras

    from common.training import resolve_jit_compile
    from oled_tf.model import OLED

    model = OLED(kind, t=cfg.t, gamma=cfg.gamma, lambda_rec=cfg.lambda_rec, threshold_eps=cfg.threshold_eps,
                 threshold_mode=cfg.threshold_mode, mm_uses_context=cfg.mm_uses_context, mask_kind=cfg.mask,
                 mask_gradient=cfg.mask_gradient, mask_temperature=cfg.mask_temperature, architecture=cfg.architecture,
                 random_mask_size=cfg.random_mask_size, seed=cfg.seed + 17)
    model(keras.ops.zeros((2, *model.input_shape_)), training=False)  # build (checkpoint restore, export)
    if not compile_model:
        return model

    def adam():
        return keras.optimizers.Adam(cfg.learning_rate, beta_1=cfg.beta_1, beta_2=cfg.beta_2)

    model.compile(adam(), adam() if cfg.mask == "learned" else None,
                  jit_compile=resolve_jit_compile(cfg.jit_compile, cfg.strategy, cfg.deterministic,
                                                  on_cpu=kind in XLA_ON_CPU_KINDS and cfg.scale != "smoke"))
    return model


def _evaluate_state(model, cfg, data) -> tuple[dict, dict, dict]:
    """Raw and normalised test scores of the model's current weights, and their metrics."""
    from oled_tf import evaluate as ev

    raw = ev.raw_scores(model, data.test_x, cfg.eval_batch_size, desc="scoring test set",
                        ucsd_smask_bug=cfg.ucsd_smask_bug)
    norm = ev.normalise(raw)
    if data.frame_ids is not None:
        frames = ev.frame_scores(norm, data.frame_ids, data.video_lengths)
        m = ev.video_metrics(frames, data.video_labels)
        return raw, norm, {"auroc": {k: v["auroc"] for k, v in m.items()}, "eer": {k: v["eer"] for k, v in m.items()}}
    return raw, norm, {"auroc": ev.image_aurocs(data.test_y, norm)}



def export(model, cfg: OLEDConfig, data, norm: dict, strategy=None) -> dict:
    """Export the model (its current weights and score range) and check it in a fresh process.

    Image models: ``serving_default`` takes ``images``. UCSD: ``serving_default`` takes ``frames`` (B, H, W, 1)
    in [-1, 1] and returns frame scores (max over the frame's patches, :meth:`OLED.serve_frames`), checked
    against the evaluation's frame scores of the first test frames; ``patches`` takes 30x30 ``images``. Under a
    ``tf.distribute`` strategy a plain (undistributed) copy with the same weights is exported.
    """
    import numpy as np
    import tensorflow as tf

    from common.export import Signature, check_export, export_saved_model
    from oled_tf import evaluate as ev

    if strategy is not None and strategy is not tf.distribute.get_strategy():
        copy = build_model(cfg, data.kind, compile_model=False)
        copy.set_weights(model.get_weights())
        model = copy
    patches = Signature(model.serve, model.input_shape_, "images")
    if data.frame_ids is None:
        signatures = {"serving_default": patches}
    else:
        stride = cfg.ucsd_patch_stride
        signatures = {"serving_default": Signature(lambda frames: model.serve_frames(frames, stride),
                                                   (None, None, 1), "frames"),
                      "patches": patches}
    path = export_saved_model(model, None, cfg.export_dir, model_name(cfg), signatures=signatures)
    sample = data.test_x[:37]
    expected = {k: np.asarray(v) for k, v in model.serve(tf.constant(sample)).items()}
    diffs = {"patches" if data.frame_ids is not None else "serving_default":
             check_export(path, sample, expected, signature="patches" if data.frame_ids is not None
                          else "serving_default")}
    if data.frame_ids is not None:
        frames = _first_test_frames(cfg, 5)
        got = {k: np.asarray(v) for k, v in model.serve_frames(tf.constant(frames), stride).items()}
        evaluated = ev.frame_scores(norm, data.frame_ids, data.video_lengths)
        for k in ev.SCORES:  # the signature gives the evaluation's frame scores
            want = evaluated[k][0][:len(frames)]
            if not np.allclose(got["anomaly_score" if k == "s_avg" else k], want, atol=1e-4):
                from common.errors import ReproError

                raise ReproError(f"the frames signature's {k} differs from the evaluation's frame scores")
        diffs["serving_default"] = check_export(path, frames, got, input_name="frames")
    print(f"exported {path} (fresh-process check passed)", flush=True)
    return {"path": str(path), "signatures": sorted(signatures), "max_abs_diff_fresh_process": diffs}


def _first_test_frames(cfg: OLEDConfig, n: int):
    """The first ``n`` frames of the first evaluated UCSD test video, (n, H, W, 1) in [-1, 1]."""
    from common import datasets
    from oled_tf.data import to_unit_range

    video = datasets.load_ucsd(cfg.data_dir, "ped2").test[0]
    return to_unit_range(video.frames[:n])[..., None]


# ------------------------------------------------------------------------------------------- the run's steps
@dataclasses.dataclass
class Trained:
    """What :func:`train` leaves: the epoch logs, the selection callback (None without a labelled validation
    set), the BN recalibration images (None when off) and the training time."""

    history: list
    selection: Any
    recalibration_x: Any
    seconds: float


@dataclasses.dataclass
class Evaluation:
    """Test metrics of the last epoch and of each score at its own selected epoch, and the test scores (raw and
    normalised) of the weights :func:`restore_best` keeps."""

    last: dict
    selected: dict
    best_epoch: dict
    kept_epoch: int | None  # the s_avg-selected epoch; None = the last epoch
    last_weights: list
    raw: dict
    norm: dict


def train(model, cfg: OLEDConfig, data, workdir: Path) -> Trained:
    """Section 4.1: R on every step, MM on the epochs of its schedule (:class:`MaskUpdateSchedule`, authors'
    code), the validation AUROC of every score after each epoch with a snapshot of each score's best epoch
    (:class:`oled_tf.evaluate.ModelSelection`). Resumable: the checkpoint holds weights, both optimizers, the
    RNG state and the selection state, and epoch e's batches depend on (seed, e) only (common/training.py)."""
    import numpy as np

    from common.training import epoch_batches, fit_resumable, num_batches
    from oled_tf import evaluate as ev
    from oled_tf.model import MaskUpdateSchedule

    recal_x = None
    if cfg.bn_recalibration:
        rng = np.random.default_rng(cfg.seed + 7)
        recal_x = data.train_x[np.sort(rng.choice(len(data.train_x), min(1024, len(data.train_x)), replace=False))]
    callbacks, selection = [], None
    if len(data.val_x) and len(np.unique(data.val_y)) == 2:
        selection = ev.ModelSelection(data.val_x, data.val_y, workdir, cfg.eval_batch_size, cfg.ucsd_smask_bug,
                                      recal_x)
        callbacks.append(selection)
    if cfg.mask == "learned":
        callbacks.append(MaskUpdateSchedule(cfg.mask_update_every))
    t0 = time.time()
    history = fit_resumable(
        model, lambda first: epoch_batches(data.train_x, cfg.batch_size, cfg.seed, first, cfg.epochs),
        epochs=cfg.epochs, workdir=workdir, steps_per_epoch=num_batches(len(data.train_x), cfg.batch_size),
        callbacks=callbacks, stateful=[selection] if selection else [], resume=cfg.resume)
    return Trained(history, selection, recal_x, time.time() - t0)


def evaluate(model, cfg: OLEDConfig, data, trained: Trained) -> Evaluation:
    """Test metrics of the last epoch and of each score at its own best validation epoch (Section 4.1, notes
    4.4), each selected epoch's snapshot loaded in turn; leaves the model at one of these states
    (:func:`restore_best` then chooses)."""
    from oled_tf import evaluate as ev

    if trained.recalibration_x is not None:
        model.recalibrate_batch_norm(trained.recalibration_x)
    states = {None: _evaluate_state(model, cfg, data)}  # None = the last epoch
    last = states[None][2]
    selected = {key: dict(vals) for key, vals in last.items()}
    best_epoch = dict(trained.selection.best_epoch) if trained.selection else {k: None for k in ev.SCORES}
    last_weights = ev.network_weights(model)
    for epoch in sorted({e for e in best_epoch.values() if e is not None}):
        ev.load_snapshot(model, trained.selection.snapshot_path(epoch))
        states[epoch] = _evaluate_state(model, cfg, data)
        for k in ev.SCORES:
            if best_epoch[k] == epoch:
                for key in selected:
                    selected[key][k] = states[epoch][2][key][k]
    kept = best_epoch["s_avg"]
    raw, norm, _ = states[kept]
    return Evaluation(last, selected, best_epoch, kept, last_weights, raw, norm)


def restore_best(model, trained: Trained, evaluation: Evaluation) -> None:
    """Load the weights that are drawn and exported, the s_avg-selected epoch's (the last epoch's without a
    validation set), and store the score range of the test set under them (Section 3.6)."""
    from oled_tf import evaluate as ev

    if evaluation.kept_epoch is not None:
        ev.load_snapshot(model, trained.selection.snapshot_path(evaluation.kept_epoch))
    else:
        ev.set_network_weights(model, evaluation.last_weights)
    model.set_score_range(evaluation.raw)


def save_test_scores(workdir: Path, data, norm: dict) -> Path:
    """``test_scores.npz``: the normalised test scores of the kept weights (what ``serving_default`` returns
    for the same images), with the labels (and UCSD's patch -> frame ids)."""
    import numpy as np

    path = workdir / "test_scores.npz"
    np.savez(path, labels=data.test_y, **norm, **({"frame_ids": data.frame_ids} if data.frame_ids is not None else {}))
    return path


def segment(model, cfg: OLEDConfig, data) -> dict | None:
    """Table 5: the mask module as a segmenter (pixel AUROC of MG's activation map against the foreground), on
    MNIST-like data with the raw test images at hand; None otherwise."""
    from oled_tf import evaluate as ev

    if data.test_raw is None or cfg.mask != "learned" or data.kind != "mnist":
        return None
    return ev.segmentation_auroc(model, data.test_raw, data.test_x, data.test_y, cfg.seg_images,
                                 cfg.eval_batch_size)


def draw_figures(model, cfg: OLEDConfig, data, norm: dict, workdir: Path, title: str) -> None:
    """Fig. 2/3 (inputs, masks, masked images, reconstructions) and Fig. 4 (score histograms) into
    ``<workdir>/figures``; UCSD: frame-score histograms, and the image grids of patches."""
    import numpy as np

    from oled_tf import evaluate as ev

    fig_dir = workdir / "figures"
    if data.frame_ids is None:
        ev.save_figures(model, data.test_x, data.test_y, norm, fig_dir, title, batch_size=cfg.eval_batch_size)
        return
    from common import plots

    fs = ev.frame_scores(norm, data.frame_ids, data.video_lengths)
    labels = np.concatenate(data.video_labels)
    flat = {k: np.concatenate(v) for k, v in fs.items()}
    for k in ev.SCORES:
        plots.save_score_histogram(flat[k][labels == 0], flat[k][labels == 1], fig_dir / f"fig4_hist_{k}.png",
                                   title=f"UCSD Ped2 frames: {k}", xlabel=f"{k} (frame max)")
    ev.save_figures(model, data.test_x, labels[data.frame_ids], norm, fig_dir / "patches", title,
                    batch_size=cfg.eval_batch_size,
                    label_names=("patches of normal frames", "patches of anomalous frames"))


def summarise(cfg: OLEDConfig, data, trained: Trained, evaluation: Evaluation) -> dict:
    """The metrics dict of a run (before segmentation, export and timings are added)."""
    import numpy as np

    sel = trained.selection
    metrics = {
        "method": "OLED" if cfg.mask == "learned" else "CAE", "dataset": cfg.dataset,
        "normal_class": cfg.normal_class, "scale": cfg.scale, "seed": cfg.seed, "epochs": cfg.epochs,
        "precision": cfg.precision, "data": data.summary, "auroc": evaluation.selected["auroc"],
        "auroc_last_epoch": evaluation.last["auroc"], "best_epoch": evaluation.best_epoch,
        "selection": (f"validation ({int(np.sum(data.val_y == 0))} inliers + {int(np.sum(data.val_y == 1))} "
                      f"outliers)" if sel else "last epoch"),
        "val_auroc_best": dict(sel.best) if sel else None,
        "bn_recalibration": bool(cfg.bn_recalibration),
        "final_losses": dict(trained.history[-1]) if trained.history else {},
    }
    if "eer" in evaluation.selected:
        metrics["eer"], metrics["eer_last_epoch"] = evaluation.selected["eer"], evaluation.last["eer"]
    return metrics


def training_health(cfg: OLEDConfig, trained: Trained, workdir: Path, method: str) -> dict:
    """Per-epoch validation curves (PNG) and R's collapse check (``oled_tf/evaluate.py``); ``{}`` without a
    validation set."""
    from oled_tf import evaluate as ev

    if trained.selection is None:
        return {}
    health = ev.training_health(
        trained.selection.history, workdir / "figures" / "validation_curves.png" if cfg.figures else None,
        f"{method} {cfg.dataset} class {cfg.normal_class}",
        [e for e in range(cfg.epochs) if cfg.mask == "learned" and e % cfg.mask_update_every == 0])
    return {"training_health": health, "collapse_warning": health["collapse_warning"]}


def run(config: OLEDConfig) -> dict:
    """Train, select, evaluate, draw and (optionally) export one OLED run; returns the metrics dict.

    Under ``--strategy=multi_worker`` only the chief writes into ``workdir`` and ``export_dir``; the other
    workers train in step with it and write into a temporary folder that is deleted at the end.
    """
    from common.training import run_on_this_worker

    return run_on_this_worker(config, _run)


def _run(config: OLEDConfig, strategy) -> dict:
    """The paper's procedure, one named step per line (each documented above)."""
    from common.training import start_run

    t_start = time.time()
    cfg, workdir = start_run(config)

    from common.floors import floor_metrics
    from common.run_identity import save_frozen_weights
    from common.training import weights_digest
    from oled_tf import evaluate as ev
    from oled_tf.data import prepare

    data = prepare(cfg)
    print(f"OLED {cfg.dataset} class {cfg.normal_class} scale {cfg.scale}: {len(data.train_x)} training images, "
          f"{len(data.val_x)} validation, {len(data.test_x)} test; {cfg.epochs} epochs of batch {cfg.batch_size}; "
          f"precision {cfg.precision}; workdir {workdir}", flush=True)
    with strategy.scope():
        model = build_model(cfg, data.kind)
    print(f"XLA (jit_compile): {'on' if model.jit_compile else 'off'}", flush=True)

    trained = train(model, cfg, data, workdir)
    t_eval = time.time()
    evaluation = evaluate(model, cfg, data, trained)
    restore_best(model, trained, evaluation)
    save_test_scores(workdir, data, evaluation.norm)
    metrics = summarise(cfg, data, trained, evaluation)
    metrics["jit_compile"] = bool(model.jit_compile)  # the resolved --jit_compile (auto: see XLA_ON_CPU_KINDS)
    metrics.update(training_health(cfg, trained, workdir, metrics["method"]))
    seg = segment(model, cfg, data)
    if seg is not None:
        metrics["segmentation_auroc"] = seg
    if cfg.figures:
        draw_figures(model, cfg, data, evaluation.norm, workdir,
                     title=f"{metrics['method']} {cfg.dataset} class {cfg.normal_class}")
    eval_seconds = time.time() - t_eval

    metrics["weights_digest"] = weights_digest(model)
    print(f"weights digest {metrics['weights_digest']}", flush=True)
    if cfg.export_dir:
        metrics["export"] = export(model, cfg, data, evaluation.norm, strategy)
    # The evaluated network, for a later stage: common.run_identity.load_frozen_weights(workdir, model, "oled").
    save_frozen_weights(workdir, "oled", model)
    metrics.update(train_seconds=trained.seconds, eval_seconds=eval_seconds, wall_seconds=time.time() - t_start,
                   train_images_per_second=len(data.train_x) * cfg.epochs / max(trained.seconds, 1e-9))
    # The PCA-20 floor of the same split (common/floors.py; REPORT.md's row "PCA-20 floor (ours)").
    metrics["floor"] = floor_metrics(data.train_x, data.test_x, data.test_y, data.frame_ids, data.video_lengths,
                                     data.video_labels, seed=cfg.seed)
    write_metrics(metrics, workdir)
    lines = [f"  {k}: AUROC {metrics['auroc'][k]:.4f}" + (f"  EER {metrics['eer'][k]:.4f}" if "eer" in metrics
                                                            else "") for k in ev.SCORES]
    print("\n".join([f"OLED results ({metrics['selection']} selection), {workdir / 'metrics.json'}:"] + lines),
          flush=True)
    return metrics


def main(argv):
    config = config_from_flags()
    cflags.preflight(config)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    run(config)


if __name__ == "__main__":
    cflags.run(main)
