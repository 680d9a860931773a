"""Anomaly scores of the test segments (Eq. 8-9), pooled per video, AUROC one-vs-all (Sec. III-D, IV-B), and the
PCA-20 floor on the frames of the same segments.

A segment's raw score is its cross-entropy under its deterministic permutation label (``sampled``, the paper's
rule; with ``test_permutations`` K > 1 the mean over its K labels) or the mean over every label (``all``).
Eq. 9 min-max normalises the raw scores over all test segments; a video's score pools its segments'
normalised scores (``mean`` by default, ``max`` offered); the AUROC is over the test videos, anomaly = a video
of another class. The floor scores a segment by the mean PCA reconstruction error of its M frames
(:class:`common.floors.PCAFloor` fitted on the frames of the normal training videos) and is pooled the same way.
"""
from __future__ import annotations

import numpy as np

from common.data_video import read_video
from common.floors import PCAFloor
from common.metrics import auroc
from common.video_clips import aggregate_segment_scores
from permutation_tf.losses import anomaly_scores


def training_frames(items, cfg) -> np.ndarray:
    """Every frame (at most ``cfg.max_frames`` per video) of the normal training videos, uint8 (N, H, W, 3)."""
    return np.concatenate([read_video(i.path, max_frames=cfg.max_frames, size=(cfg.frame_size, cfg.frame_size))
                           for i in items])


def fit_floor(items, cfg, seed: int = 0, frames: np.ndarray | None = None) -> PCAFloor:
    """PCA-20 fitted on every frame (at most ``cfg.max_frames`` per video) of the normal training videos
    (``frames``: those frames, already read by :func:`training_frames`)."""
    frames = training_frames(items, cfg) if frames is None else frames
    return PCAFloor(seed=seed).fit(frames.astype(np.float32) / 255.0)


def score_segments(model, test_ds, floor: PCAFloor | None = None) -> dict:
    """Run the model over the test stream: per streamed segment its raw scores, video, segment, class and floor.
    ``model=None`` scores the floor alone."""
    import tensorflow as tf

    fn = None if model is None else tf.function(model.segment_losses)
    cols = {k: [] for k in ("sampled", "all", "video", "segment", "video_label", "floor")}
    for batch in test_ds:
        if fn is not None:
            out = fn(batch["frames"], batch["label"])
            cols["sampled"].append(out["sampled"].numpy())
            cols["all"].append(out["all"].numpy())
        for k in ("video", "segment", "video_label"):
            cols[k].append(batch[k].numpy())
        if floor is not None:
            f = batch["frames"].numpy()
            cols["floor"].append(floor.score(f.reshape(f.shape[0] * f.shape[1], -1)).reshape(f.shape[:2]).mean(1))
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in cols.items()}


def _per_segment(values, video, segment):
    """Average the K rows of a segment scored under K labels into one score per (video, segment)."""
    key = video.astype(np.int64) * 1_000_000 + segment.astype(np.int64)
    uniq, inverse = np.unique(key, return_inverse=True)
    out = np.bincount(inverse, weights=values, minlength=len(uniq)) / np.bincount(inverse, minlength=len(uniq))
    return out, uniq // 1_000_000


def video_auroc(raw, video, segment, video_is_anomaly: np.ndarray, pooling: str = "mean") -> dict:
    """Eq. 9 over the test segments, pooled per video -> AUROC (and the per-video scores)."""
    seg_raw, seg_video = _per_segment(np.asarray(raw, np.float64), video, segment)
    normalised = anomaly_scores(seg_raw)
    ids, vid_scores = aggregate_segment_scores(normalised, seg_video, pooling)
    labels = video_is_anomaly[ids]
    return {"auroc": auroc(labels, vid_scores), "segment_auroc": auroc(video_is_anomaly[seg_video], normalised),
            "video_scores": vid_scores, "video_ids": ids, "n_segments": int(len(seg_raw))}


def evaluate(scored: dict, test_labels: np.ndarray, pooling: str = "mean") -> dict:
    """AUROCs of every score column (``sampled``, ``all``, ``floor``) of :func:`score_segments`."""
    out = {}
    for k in ("sampled", "all", "floor"):
        if scored[k].size:
            r = video_auroc(scored[k], scored["video"], scored["segment"], np.asarray(test_labels), pooling)
            out[k] = {"auroc": r["auroc"], "segment_auroc": r["segment_auroc"], "n_segments": r["n_segments"]}
    return out


def heldout_pretext_loss(scored: dict, normal_class: int, task) -> dict:
    """Whether the pretext task was learned: ``heldout_pretext_loss`` = the mean cross-entropy (inference mode,
    the ``all`` column: the mean over every variant of the task, i.e. Eq. 8 in expectation over the label) on the
    test segments of the normal class (held out from training), against ``chance_loss`` = the loss of the best
    input-independent prediction (ln M! for the permutation task); ``heldout_pretext_loss_sampled`` = the same
    under each segment's own label."""
    normal = np.asarray(scored["video_label"]) == int(normal_class)
    return {"heldout_pretext_loss": float(np.mean(scored["all"][normal])),
            "heldout_pretext_loss_sampled": float(np.mean(scored["sampled"][normal])),
            "heldout_segments": int(normal.sum()), "chance_loss": task.chance_loss}


def constant_scores(scored: dict, rtol: float = 1e-5) -> dict[str, bool]:
    """Per score column (``sampled``, ``all``): whether the network's raw test scores are one value up to float
    rounding (the tie rule of :func:`common.metrics.minmax`): its outputs do not vary with its input, so its AUROC
    is 0.5 by ties, not a measurement (an untrained or collapsed network)."""
    out = {}
    for k in ("sampled", "all"):
        a = np.asarray(scored.get(k, ()), np.float64)
        if a.size:
            out[k] = bool(a.max() - a.min() <= rtol * max(abs(a.max()), abs(a.min())))
    return out


def floor_only(cfg) -> dict:
    """The PCA-20 floor of one run's split (the ``floor`` entry of :func:`evaluate`), from the run's own data
    preparation and test stream, without training: what ``common.add_floors`` adds to results stored earlier."""
    from permutation_tf import data
    from permutation_tf.model import make_task

    cfg = cfg.resolved()
    videos = data.one_class(cfg)
    scored = score_segments(None, data.test_stream(cfg, make_task(cfg.task, cfg.m), videos.test),
                            fit_floor(videos.train, cfg, cfg.seed))
    return evaluate(scored, videos.test_labels, cfg.pooling)["floor"]
