"""``run(config)`` of the video method: train and evaluate the frame-permutation anomaly detector (or a TABLE IV
video baseline) on one normal class, through :func:`common.lifecycle.run_experiment`.

:func:`body` follows the paper: the one-vs-all videos (Sec. IV-B), every test video checked to hold one segment
(before anything is trained), training on the normal class's segments (Eq. 1, 6-8), scoring every test segment
(Eq. 8-9), pooling per video and the AUROC; the PCA-20 floor on the same segments; ``metrics.json`` in the workdir
(a finished run with ``--resume`` is re-read, not retrained); an optional SavedModel
``<export_dir>/permutation_<dataset>_<class>/<version>/`` checked in a fresh process (:func:`export`).
The command line is ``python -m permutation_tf.train`` (flags and ``main`` only).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from permutation_tf.config import FAITHFUL, RECIPE_FIELDS, VideoConfig

log = logging.getLogger(__name__)


def model_name(cfg: VideoConfig) -> str:
    """The export folder name: ``permutation_<dataset>_<class>`` (``permutation_<task>_...`` for a baseline)."""
    return f"permutation_{cfg.dataset}_{cfg.normal_class}" if cfg.task == "permutation" else \
        f"permutation_{cfg.task}_{cfg.dataset}_{cfg.normal_class}"


def build(cfg: VideoConfig, task, input_mean=None):
    """The compiled :class:`permutation_tf.model.FramePermutationModel` of ``cfg`` (inside the run's scope)."""
    from permutation_tf.model import build_model

    return build_model(task, (cfg.frame_size, cfg.frame_size), cfg.conv1_stride, cfg.eq8_class_average, cfg.lr,
                       cfg.momentum, cfg.jit_compile, cfg.input_norm, cfg.init, input_mean=input_mean,
                       norm=cfg.norm, dropout=cfg.dropout, weight_decay=cfg.weight_decay,
                       train_orders=cfg.train_orders)


def train_model(model, cfg, items, workdir: Path) -> dict:
    """Eq. 6-8 on the normal class's segments (SGD momentum 0.9, lr 1e-3, batch 10)."""
    from common.training import fit_resumable
    from permutation_tf.data import train_stream

    _, steps, n = train_stream(cfg, model.task, items)
    t0 = time.time()
    logs = fit_resumable(model, lambda first: train_stream(cfg, model.task, items, start_epoch=first)[0],
                         epochs=cfg.epochs, workdir=workdir, steps_per_epoch=steps, resume=cfg.resume,
                         tensorboard=False)
    seconds = time.time() - t0
    return {"train_segments": n, "steps_per_epoch": steps, "train_seconds": seconds,
            "loss_per_epoch": [float(l["loss"]) for l in logs if "loss" in l],
            "accuracy_per_epoch": [float(l["accuracy"]) for l in logs if "accuracy" in l],
            "segments_per_second": steps * max(len(logs), 1) * cfg.batch_size / max(seconds, 1e-9)}


def preprocessing(cfg: VideoConfig, task) -> dict:
    """What a client does to raw video before the ``frames`` signature (``assets.extra/export.json``)."""
    return {"kind": "clips", "input_range": [0.0, 1.0], "frames_per_clip": int(task.m), "frame_skip": int(cfg.skip),
            "size": [int(cfg.frame_size), int(cfg.frame_size)], "channels": 3, "resize": "area",
            "frame_order": "temporal (the signature scores every permutation of the clip itself)",
            "input_norm": cfg.input_norm,
            "note": "uint8 RGB frames / 255; the network's own input normalisation (input_norm: "
                    + {"mean_image": "255 x minus the training videos' mean frame",
                       "mean_pixel": "255 x minus the training videos' per-channel mean",
                       "pm1": "2 x - 1"}[cfg.input_norm] + ") is part of the exported graph"}


def export(run, model, cfg: VideoConfig, sample) -> dict:
    """Export ``serving_default`` (``frames`` (batch, M, H, W, 3) in [0, 1], in temporal order ->
    ``anomaly_score``, ``anomaly_score_raw``, ``permutation_probabilities``) through :meth:`common.lifecycle.Run.export`
    (TF Serving layout, metadata, fresh-process check). Under a ``tf.distribute`` strategy an undistributed copy
    with the same weights (score range and mean frame included) is exported."""
    from common.export import Signature

    model = run.undistributed(model, lambda: build(cfg, model.task))
    return run.export(model_name(cfg), model, {"serving_default": Signature(model.serve, tuple(sample.shape[1:]),
                                                                             "frames")},
                      samples={"serving_default": sample}, preprocessing=preprocessing(cfg, model.task),
                      atol=1e-3, rtol=1e-3)


def run(config: VideoConfig) -> dict:
    """One run of ``config`` (:func:`common.lifecycle.run_experiment` with :func:`body`); returns its metrics."""
    from common.lifecycle import run_experiment

    return run_experiment(config, body)


def body(run) -> dict:
    """The method's part of a run (:mod:`common.lifecycle`)."""
    from common.video_clips import count_segments
    from permutation_tf import data, evaluate
    from permutation_tf.model import make_task
    from permutation_tf.networks import frame_mean

    cfg, workdir = run.config, run.workdir
    task = make_task(cfg.task, cfg.m)
    videos = data.one_class(cfg)
    data.check_test_videos(cfg, task, videos.test)            # before training: a short test video is an error now
    # A batch never spans two epochs (common.video_clips.segment_dataset): batches of min(batch, segments) run.
    n_train = count_segments(videos.train, task.m, cfg.skip, cfg.max_frames)
    if n_train:                                               # none: train_stream's DataError says so
        run.batch_size_for(n_train)
    frames = evaluate.training_frames(videos.train, cfg)      # the mean (Caffe's mean file) and the floor's PCA
    with run.scope():
        model = build(cfg, task, input_mean=frame_mean(frames, cfg.input_norm))
    run.record_model(model)
    training = train_model(model, cfg, videos.train, workdir)
    floor = evaluate.fit_floor(videos.train, cfg, cfg.seed, frames)
    del frames
    t0 = time.time()
    scored = evaluate.score_segments(model, data.test_stream(cfg, task, videos.test), floor)
    score_seconds = time.time() - t0
    results = evaluate.evaluate(scored, videos.test_labels, cfg.pooling)
    constant = evaluate.constant_scores(scored)
    if any(constant.values()):
        log.warning("the network's test scores do not vary with its input (%s): its outputs are the same for "
                    "every segment, so its AUROC is a tie (0.5), not a measurement; the training did not move it "
                    "(see loss_per_epoch): train longer or with another --lr",
                    ", ".join(k for k, v in constant.items() if v))
        print("WARNING: constant scores: the network's outputs do not vary with its input; AUROC 0.5 by ties",
              flush=True)
    heldout = evaluate.heldout_pretext_loss(scored, videos.normal_class, task)
    # The same loss on (up to 8 of) the TRAINING videos, inference mode: far below the held-out one = overfitting
    # to the training items; as high = the inference path (e.g. batch-norm statistics) differs from training.
    seen = evaluate.score_segments(model, data.test_stream(cfg, task, data.evenly(videos.train, 8)))
    heldout["train_pretext_loss"] = float(np.mean(seen["all"]))
    if heldout["heldout_pretext_loss"] > 0.9 * heldout["chance_loss"]:
        log.warning("held-out pretext loss %.3f > 0.9 x chance %.3f: the network did not learn its pretext task",
                    heldout["heldout_pretext_loss"], heldout["chance_loss"])
        print(f"WARNING: held-out pretext loss {heldout['heldout_pretext_loss']:.3f} is above 0.9 x the chance loss "
              f"{heldout['chance_loss']:.3f} (the best input-independent loss): the network has not learned its "
              f"pretext "
              f"task, so its AUROC measures untrained features", flush=True)
    model.set_score_range(scored["all"])
    recipe = {k: getattr(cfg, k) for k in RECIPE_FIELDS}
    metrics = {
        **heldout, "recipe": recipe, "recipe_faithful": recipe == FAITHFUL,
        "auroc": results[cfg.score]["auroc"], "score": cfg.score, "pooling": cfg.pooling,
        "auroc_sampled": results["sampled"]["auroc"], "auroc_all": results["all"]["auroc"],
        "segment_auroc": {k: v["segment_auroc"] for k, v in results.items()},
        "floor": {"auroc": results["floor"]["auroc"], "segment_auroc": results["floor"]["segment_auroc"],
                  "what": "PCA-20 reconstruction error of the segment's frames, fitted on the normal training frames"},
        "task": cfg.task, "m": task.m, "skip": cfg.skip, "normal_class": videos.normal_class,
        "normal_name": videos.normal_name, "epochs": cfg.epochs, "batch_size": cfg.batch_size,
        "data": {"train_videos": len(videos.train), "test_videos": len(videos.test),
                 "test_anomalous_videos": int(videos.test_labels.sum()),
                 "test_segments": results["sampled"]["n_segments"], "test_permutations": cfg.test_permutations},
        **training, "score_seconds": score_seconds,
        "score_segments_per_second": len(scored["all"]) / max(score_seconds, 1e-9),
        "constant_scores_warning": any(constant.values()), "constant_scores": constant,
    }
    if cfg.export_dir:
        batch = next(iter(data.test_stream(cfg, task, videos.test)))
        sample = model.ordered(batch["frames"], batch["label"])[:4]
        export(run, model, cfg, sample.numpy())
    return metrics


def report(m: dict) -> str:
    """The line ``permutation_tf.train`` prints when a run is done (or re-read)."""
    return (f"{m['task']} normal class {m['normal_class']} ({m['normal_name']}): AUROC {m['auroc']:.4f} "
            f"({m['score']}, {m['pooling']} pooling); all-labels {m['auroc_all']:.4f}; PCA-20 floor "
            f"{m['floor']['auroc']:.4f}")
