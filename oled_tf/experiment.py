"""One OLED run as the paper describes it (Section 4.1), each step a named function; :func:`run` goes through the
shared lifecycle (:func:`common.lifecycle.run_experiment`: finished-run reuse, run identity, strategy scope,
seeds and precision, timing, export + fresh-process check, ``metrics.json``).

    from oled_tf.config import OLEDConfig
    from oled_tf.experiment import run
    metrics = run(OLEDConfig(dataset="mnist", normal_class=3, scale="quick"))

Writes into the workdir: ``config.json`` (resolved config), ``log.csv`` and TensorBoard logs, resumable
checkpoints, ``selection/`` (best epoch per score), ``figures/*.png``, ``test_scores.npz`` and ``metrics.json``
(every score's AUROC, plus EER for UCSD). The command line is ``python -m oled_tf.train`` (its flags are the
fields of :class:`oled_tf.config.OLEDConfig`); importing this module defines no flag.

Export (``--export_dir``, :func:`export`): ``<export_dir>/oled_<dataset>_<class>/<version>/`` (``cae_...`` for
the CAE ablation, ``oled_ucsd_ped2`` on UCSD). Inputs are float32 in [-1, 1] (uint8 pixels / 127.5 - 1,
:func:`oled_tf.data.to_unit_range`). Image models: ``serving_default`` takes ``images`` (B, 28, 28, 1) or (B,
32, 32, 3). UCSD: ``serving_default`` takes whole gray ``frames`` (B, H, W, 1) and returns frame scores (max over
the frame's 30x30 patches), ``patches`` takes 30x30 ``images``.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

from oled_tf.config import OLEDConfig

log = logging.getLogger(__name__)

INPUT_RANGE = (-1.0, 1.0)  # oled_tf.data.to_unit_range: x / 127.5 - 1
# Frames of the first UCSD test video whose frames-signature scores are compared with the evaluation's.
CHECK_FRAMES = 5


def model_name(cfg: OLEDConfig) -> str:
    """``oled_<dataset>_<class>`` (``oled_ucsd_ped2`` for UCSD, which has no normal class); CAE: ``cae_...``."""
    prefix = "oled" if cfg.mask == "learned" else "cae"
    return f"{prefix}_ucsd_ped2" if cfg.dataset == "ucsd" else f"{prefix}_{cfg.dataset}_{cfg.normal_class}"


# ``--jit_compile=auto`` on a CPU-only machine: for these kinds a short timed probe of the train step with and
# without XLA decides (:func:`jit_choice`, ``common/jit_probe.py``, cached per machine): XLA was 1.5x faster on an
# AVX2-only AMD CPU and 0.8x / 0.5x (fp32 / bf16) as fast on an AVX-512 + AMX Intel CPU (docs/oled-notes.md
# "Speed rule"). CIFAR-10 networks: XLA measured 2.8x / 2.5x slower (XLA's CPU convolutions do not use oneDNN),
# off without a probe; UCSD: not measured, off. Not at --scale=smoke (a probe costs more than its few steps).
XLA_ON_CPU_KINDS = ("mnist",)
PROBE_STEPS = 3  # timed steps per candidate after one that compiles


def build_model(cfg: OLEDConfig, kind: str, compile_model: bool = True, jit: bool | None = None):
    """The OLED model for a resolved config, compiled with one Adam per player (Section 4.1). ``jit``: XLA as
    decided by :func:`jit_choice` (None: ``cfg.jit_compile``, ``auto`` = off on a CPU)."""
    import keras

    from oled_tf.model import OLED

    model = OLED(kind, t=cfg.t, gamma=cfg.gamma, lambda_rec=cfg.lambda_rec, threshold_eps=cfg.threshold_eps,
                 threshold_mode=cfg.threshold_mode, mm_uses_context=cfg.mm_uses_context, mask_kind=cfg.mask,
                 mask_gradient=cfg.mask_gradient, mask_temperature=cfg.mask_temperature, architecture=cfg.architecture,
                 decoder_bn=cfg.decoder_bn, output_clip=cfg.output_clip, loss_reduction=cfg.loss_reduction,
                 mg_bn_frozen=cfg.mg_bn_frozen, random_mask_size=cfg.random_mask_size, seed=cfg.seed + 17)
    model(keras.ops.zeros((2, *model.input_shape_)), training=False)  # build (checkpoint restore, export)
    if compile_model:
        compile_oled(model, cfg, jit)
    return model


def compile_oled(model, cfg: OLEDConfig, jit: bool | None = None) -> None:
    """Compile ``model`` with one Adam per player (MM's with ``--mm_adam_epsilon``) and the XLA choice."""
    import keras

    from common.training import resolve_jit_compile

    def adam(epsilon=1e-7):
        return keras.optimizers.Adam(cfg.learning_rate, beta_1=cfg.beta_1, beta_2=cfg.beta_2, epsilon=epsilon)

    if jit is None:
        jit = resolve_jit_compile(cfg.jit_compile, cfg.strategy, cfg.deterministic, on_cpu=False)
    model.compile(adam(), adam(cfg.mm_adam_epsilon) if cfg.mask == "learned" else None, jit_compile=jit)


def jit_choice(cfg: OLEDConfig, kind: str, batch_size: int) -> tuple[bool | None, dict | None]:
    """``--jit_compile=auto`` on a CPU-only machine for :data:`XLA_ON_CPU_KINDS`: time the step of a non-MM epoch
    (the common one) of a throw-away model with and without XLA at the run's batch and precision
    (``common.jit_probe.choose``, cached per machine) and return ``(True/False, probe record)``; ``(None, None)``
    where no probe applies (a set flag, a GPU, a strategy, smoke scale, another kind). Global RNGs are re-seeded
    afterwards whether the probe ran or was cached, so the run does not depend on the cache."""
    import dataclasses as dc

    import keras
    import numpy as np
    import tensorflow as tf

    from common import jit_probe
    from oled_tf.model import MASK_PLAYER
    from oled_tf.networks import INPUT_SHAPES

    if (cfg.jit_compile != "auto" or tf.config.list_physical_devices("GPU") or cfg.strategy != "default"
            or cfg.scale == "smoke" or kind not in XLA_ON_CPU_KINDS):
        return None, None
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (batch_size, *INPUT_SHAPES[kind])).astype("float32"))

    def candidate(jit: bool):
        def make():
            m = build_model(dc.replace(cfg, jit_compile=False), kind)
            if cfg.mask == "learned":
                m.set_frozen((MASK_PLAYER,))
            fn = tf.function(m.train_step, jit_compile=jit)
            return lambda: float(fn(x)["r_loss"])
        return make

    key = {"method": "oled", "kind": kind, "batch": int(batch_size), "precision": cfg.precision,
           "step": "mm_frozen", "decoder_bn": cfg.decoder_bn, "mask": cfg.mask}
    probe = jit_probe.choose(key, {"xla": candidate(True), "plain": candidate(False)}, calls=PROBE_STEPS)
    keras.utils.set_random_seed(cfg.seed + 1)
    return probe["choice"] == "xla", probe


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


def export_signatures(model, cfg: OLEDConfig, ucsd: bool) -> tuple[dict, dict]:
    """The signatures of an export (``{name: common.export.Signature}``) and what a client must do to raw pixels
    for each (``assets.extra/export.json``). Image models: ``serving_default`` takes ``images``. UCSD:
    ``serving_default`` takes ``frames`` (B, H, W, 1) of any size and returns frame scores
    (:meth:`OLED.serve_frames`), ``patches`` takes 30x30 ``images`` (:meth:`OLED.serve`)."""
    from common.export import Signature

    shape = tuple(model.input_shape_)
    patches = Signature(model.serve, shape, "images")
    images = {"input_range": list(INPUT_RANGE), "kind": "images", "channels": int(shape[-1]),
              "size": [int(shape[0]), int(shape[1])]}
    if not ucsd:
        return {"serving_default": patches}, {"serving_default": images}
    stride = cfg.ucsd_patch_stride
    frames = Signature(lambda frames: model.serve_frames(frames, stride), (None, None, 1), "frames")
    return ({"serving_default": frames, "patches": patches},
            {"serving_default": {"input_range": list(INPUT_RANGE), "kind": "frames", "channels": 1,
                                 "patch_size": [int(shape[0]), int(shape[1])], "patch_stride": int(stride)},
             "patches": images})


def export(run, model, cfg: OLEDConfig, data, norm: dict) -> dict:
    """Export the model (its current weights and score range) through :meth:`common.lifecycle.Run.export`,
    which checks every signature in a fresh process against the in-process model.

    UCSD: the ``frames`` signature must first give the evaluation's frame scores (``oled_tf.evaluate
    .frame_scores`` of ``norm``) of the first test frames; a difference is a ReproError. Under a
    ``tf.distribute`` strategy a plain (undistributed) copy with the same weights is exported.
    """
    import numpy as np
    import tensorflow as tf

    from oled_tf import evaluate as ev

    model = run.undistributed(model, lambda: build_model(cfg, data.kind, compile_model=False))
    ucsd = data.frame_ids is not None
    signatures, preprocessing = export_signatures(model, cfg, ucsd)
    sample = data.test_x[:37]
    samples = {"patches" if ucsd else "serving_default": sample}
    if ucsd:
        frames = _first_test_frames(cfg, CHECK_FRAMES)
        got = {k: np.asarray(v) for k, v in signatures["serving_default"].fn(tf.constant(frames)).items()}
        evaluated = ev.frame_scores(norm, data.frame_ids, data.video_lengths)
        for k in ev.SCORES:  # the signature gives the evaluation's frame scores
            want = evaluated[k][0][:len(frames)]
            if not np.allclose(got["anomaly_score" if k == "s_avg" else k], want, atol=1e-4):
                from common.errors import ReproError

                raise ReproError(f"the frames signature's {k} differs from the evaluation's frame scores")
        samples["serving_default"] = frames
    return run.export(model_name(cfg), model, signatures, samples, preprocessing=preprocessing)


def _first_test_frames(cfg: OLEDConfig, n: int):
    """The first ``n`` frames of the first evaluated UCSD test video, (n, H, W, 1) in [-1, 1]."""
    from common import datasets
    from oled_tf.data import to_unit_range

    video = datasets.load_ucsd(cfg.data_dir, "ped2").test[0]
    return to_unit_range(video.frames[:n])[..., None]


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


def train(model, cfg: OLEDConfig, data, workdir: Path, batch_size: int | None = None) -> Trained:
    """Section 4.1: R on every step, MM on the epochs of its schedule (:class:`MaskUpdateSchedule`, authors'
    code), the validation AUROC of every score after each epoch with a snapshot of each score's best epoch
    (:class:`oled_tf.evaluate.ModelSelection`). Resumable: the checkpoint holds weights, both optimizers, the
    RNG state and the selection state, and epoch e's batches depend on (seed, e) only (common/training.py).
    ``batch_size``: the batch that really runs (default ``cfg.batch_size``; :meth:`common.lifecycle.Run
    .batch_size_for`)."""
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
                                      recal_x, selection=cfg.selection, every=cfg.validate_every, epochs=cfg.epochs)
        callbacks.append(selection)
    if cfg.mask == "learned":
        callbacks.append(MaskUpdateSchedule(cfg.mask_update_every))
    batch_size = int(batch_size or cfg.batch_size)
    t0 = time.time()
    history = fit_resumable(
        model, lambda first: epoch_batches(data.train_x, batch_size, cfg.seed, first, cfg.epochs),
        epochs=cfg.epochs, workdir=workdir, steps_per_epoch=num_batches(len(data.train_x), batch_size),
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
                      f"outliers, {'one epoch by s_avg' if cfg.selection == 's_avg' else 'per score'}, every "
                      f"{cfg.validate_every} epoch(s))" if sel else "last epoch"),
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
    workers train in step with it and write into a temporary folder that is deleted at the end
    (:func:`common.lifecycle.run_experiment`)."""
    from common.lifecycle import run_experiment

    return run_experiment(config, body)


def body(run) -> dict:
    """The paper's procedure, one named step per line (each documented above); ``run`` is the lifecycle's
    :class:`common.lifecycle.Run`."""
    from common.floors import floor_metrics
    from common.run_identity import save_frozen_weights
    from common.training import weights_digest
    from oled_tf.data import prepare

    cfg, workdir = run.config, run.workdir
    data = prepare(cfg)
    batch_size = run.batch_size_for(len(data.train_x))
    print(f"OLED {cfg.dataset} class {cfg.normal_class} scale {cfg.scale}: {len(data.train_x)} training images, "
          f"{len(data.val_x)} validation, {len(data.test_x)} test; {cfg.epochs} epochs of batch {batch_size}; "
          f"precision {cfg.precision}; strategy {cfg.strategy} ({run.replicas} replicas); workdir {workdir}",
          flush=True)
    with run.scope():
        model = build_model(cfg, data.kind, compile_model=False)  # before the probe: its RNG draws come first
        jit, probe = jit_choice(cfg, data.kind, batch_size)
        compile_oled(model, cfg, jit)
    run.record_model(model)  # jit_compile as resolved (auto: the probe, see XLA_ON_CPU_KINDS)
    if probe is not None:
        run.record(jit_probe={k: probe[k] for k in ("choice", "seconds", "cached", "signature")})
    print(f"XLA (jit_compile): {'on' if model.jit_compile else 'off'}"
          + (f" (probe{' cached' if probe['cached'] else ''}: s per step " + ", ".join(
              f"{k} {v:.3f}" for k, v in probe["seconds"].items()) + ")" if probe else ""), flush=True)

    trained = train(model, cfg, data, workdir, batch_size)
    with run.timer("eval"):
        evaluation = evaluate(model, cfg, data, trained)
        restore_best(model, trained, evaluation)
        save_test_scores(workdir, data, evaluation.norm)
        metrics = summarise(cfg, data, trained, evaluation)
        metrics.update(training_health(cfg, trained, workdir, metrics["method"]))
        seg = segment(model, cfg, data)
        if seg is not None:
            metrics["segmentation_auroc"] = seg
        if cfg.figures:
            draw_figures(model, cfg, data, evaluation.norm, workdir,
                         title=f"{metrics['method']} {cfg.dataset} class {cfg.normal_class}")

    metrics["weights_digest"] = weights_digest(model)
    print(f"weights digest {metrics['weights_digest']}", flush=True)
    if cfg.export_dir:
        export(run, model, cfg, data, evaluation.norm)
    # The evaluated network, for a later stage: common.run_identity.load_frozen_weights(workdir, model, "oled").
    save_frozen_weights(workdir, "oled", model)
    metrics.update(train_seconds=trained.seconds,  # eval_seconds: run.timer("eval") above
                   train_images_per_second=len(data.train_x) * cfg.epochs / max(trained.seconds, 1e-9))
    # The PCA-20 floor of the same split (common/floors.py; REPORT.md's row "PCA-20 floor (ours)").
    metrics["floor"] = floor_metrics(data.train_x, data.test_x, data.test_y, data.frame_ids, data.video_lengths,
                                     data.video_labels, seed=cfg.seed)
    metrics["learning_gate"] = learning_gate(model, cfg, data, metrics)
    return metrics


GATE_IMAGES = 2048  # test images (patches) over which the learning gate measures R's output variance


def learning_gate(model, cfg: OLEDConfig, data, metrics: dict) -> dict:
    """Whether OLED's claim can be read off this run (issue 18): R's output variance across the test inputs
    (per-pixel variance of R(x) over the first GATE_IMAGES test images, mean over pixels; and its ratio to the
    inputs' spread, ~1 healthy, 0 constant),
    the plain-reconstruction AUROC of R (s_rec: the method's own auto-encoder baseline, Sec. 3.1) and the PCA-20
    floor, each against s_avg at the reported (selected) and the last epoch. A WARNING line when s_avg is below
    either (then the masked scores do not add to plain reconstruction, or the run learned less than PCA)."""
    import numpy as np

    from oled_tf import evaluate as ev

    x = data.test_x[:GATE_IMAGES]
    rec = ev.model_outputs(model, x, cfg.eval_batch_size, ("reconstruction",))["reconstruction"]
    gate = {"r_output_variance": float(np.mean(np.var(np.asarray(rec, np.float64), axis=0))),
            "r_output_variation": ev.output_variation(x, rec), "floor_auroc": None}
    floor = (metrics.get("floor") or {}).get("pca20_auroc")
    gate["floor_auroc"] = None if floor is None else float(floor)
    warnings = []
    for where, key in (("selected", "auroc"), ("last_epoch", "auroc_last_epoch")):
        a = metrics[key]
        gate[where] = {"s_avg": a["s_avg"], "plain_reconstruction_auroc": a["s_rec"],
                       "below_plain_reconstruction": bool(a["s_avg"] < a["s_rec"]),
                       "below_floor": None if floor is None else bool(a["s_avg"] < floor)}
        if a["s_avg"] < a["s_rec"]:
            warnings.append(f"{where} s_avg {a['s_avg']:.4f} < R's plain reconstruction AUROC {a['s_rec']:.4f}")
        if floor is not None and a["s_avg"] < floor:
            warnings.append(f"{where} s_avg {a['s_avg']:.4f} < PCA-20 floor {floor:.4f}")
    gate["passed"] = not warnings
    if warnings:
        from absl import logging as absl_logging

        absl_logging.warning(f"WARNING: learning gate: {'; '.join(warnings)} (R output variation "
                             f"{gate['r_output_variation']:.3f})")
    return gate


def report(metrics: dict) -> str:
    """The lines ``python -m oled_tf.train`` prints at the end: every score's AUROC (and EER on UCSD)."""
    from oled_tf.evaluate import SCORES

    lines = [f"  {k}: AUROC {metrics['auroc'][k]:.4f}" + (f"  EER {metrics['eer'][k]:.4f}" if "eer" in metrics
                                                            else "") for k in SCORES]
    return "\n".join([f"{metrics.get('method', 'OLED')} results ({metrics.get('selection')} selection):"] + lines)
