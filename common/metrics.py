"""Evaluation metrics shared by the four reproductions (numpy / scikit-learn only, no TensorFlow).

Conventions used everywhere in this module:

* **Higher score = more anomalous.** Labels are ``1`` = anomaly / outlier (the *positive* class of the ROC) and
  ``0`` = normal / inlier. A model whose natural score is a "normality" (e.g. a discriminator probability) must
  be negated by the caller before it gets here.
* **Fractions, not percentages.** Every function returns a value in ``[0, 1]`` (AUROC 0.9772, EER 0.054,
  accuracy 0.984). Papers print percentages; multiply by 100 only when formatting a report.
* **Exact AUROC.** :func:`auroc` is scikit-learn's ``roc_auc_score`` (trapezoid over all distinct thresholds,
  ties counted as one half). The OLED code used Keras' bucketed ``tf.keras.metrics.AUC`` with 10-2000
  thresholds on min-max normalised scores, which is only an approximation of this number (reference notes 4.4).
* **One EER formula** (:func:`eer`): the point where the ROC curve, linearly interpolated between its vertices,
  crosses the anti-diagonal ``FPR = 1 - TPR`` (i.e. false-positive rate = false-negative rate); the EER is that
  FPR. This is exactly the quantity OLED's UCSD test script computes with
  ``brentq(lambda x: 1 - x - interp1d(fpr, tpr)(x), 0, 1)`` on sklearn's ``roc_curve`` (reference notes 4.4);
  we compute the crossing in closed form instead of with a root finder, which gives the same value without
  depending on how ``interp1d`` treats the repeated FPR values of vertical ROC steps. The EER does not depend
  on which class is called positive as long as the score is oriented consistently.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from common.errors import DataError, ConfigError

__all__ = [
    "MetricError",
    "auroc",
    "eer",
    "roc_points",
    "minmax",
    "accuracy",
    "frame_level_metrics",
    "POOLINGS",
    "NORMALISATIONS",
]

POOLINGS = ("pooled", "per_video")
NORMALISATIONS = ("per_video", "global", "none")


class MetricError(DataError):
    """A metric cannot be computed from the given labels/scores (one class only, NaN scores, shape mismatch)."""


def _labels_scores(labels, scores, what: str = "scores") -> tuple[np.ndarray, np.ndarray]:
    """Validate and return (labels int64 0/1, scores float64) as flat arrays."""
    y = np.asarray(labels).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise MetricError(f"labels ({y.size}) and {what} ({s.size}) differ in length; pass one score per label")
    if y.size == 0:
        raise MetricError(f"empty labels/{what}: nothing to evaluate")
    if not np.all(np.isfinite(s)):
        bad = int(np.sum(~np.isfinite(s)))
        raise MetricError(f"{bad} of {s.size} {what} are NaN or infinite; check the model outputs before evaluating")
    uniq = np.unique(y)
    if not np.all(np.isin(uniq, (0, 1))):
        raise MetricError(f"labels must be 0 (normal) or 1 (anomaly), got values {uniq[:10].tolist()}")
    if uniq.size < 2:
        only = "anomalies" if uniq[0] == 1 else "normal samples"
        raise MetricError(f"AUROC/EER need both classes but the labels contain only {only} ({y.size} samples)")
    return y.astype(np.int64), s


def auroc(labels, scores) -> float:
    """Exact area under the ROC curve (scikit-learn ``roc_auc_score``), as a fraction in [0, 1].

    ``labels``: 1 = anomaly (positive class), 0 = normal. ``scores``: higher = more anomalous.
    Raises :class:`MetricError` (a ``ReproError``) if only one class is present or a score is not finite.
    """
    y, s = _labels_scores(labels, scores)
    return float(roc_auc_score(y, s))


def roc_points(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)`` of scikit-learn's ``roc_curve`` with all vertices kept (anomaly = positive)."""
    y, s = _labels_scores(labels, scores)
    fpr, tpr, thr = roc_curve(y, s, pos_label=1, drop_intermediate=False)
    return fpr, tpr, thr


def eer(labels, scores) -> float:
    """Equal error rate as a fraction in [0, 1] (formula in the module docstring).

    The ROC vertices (FPR_i, TPR_i) are joined by straight lines; along that polyline g = FPR + TPR - 1 never
    decreases, from -1 at (0, 0) to +1 at (1, 1). The EER is the FPR of the point where g = 0, found by linear
    interpolation on the first segment where g changes sign (on a vertical step of the ROC this is the step's
    FPR; on a horizontal step it is 1 - TPR). Equals OLED's ``brentq(1 - x - interp1d(fpr, tpr)(x))``.

    Hand example: normal scores {0.1, 0.2, 0.3, 0.6}, anomaly scores {0.5, 0.7, 0.8, 0.9}: the ROC passes through
    (FPR 0.25, TPR 0.75), so the EER is 0.25 (AUROC 15/16).
    """
    fpr, tpr, _ = roc_points(labels, scores)
    g = fpr + tpr - 1.0
    # First vertex with g >= 0; g[0] = -1 (the (0,0) vertex) and g[-1] = +1, so 1 <= k <= len-1.
    k = int(np.argmax(g >= 0.0))
    if g[k] == 0.0:
        return float(fpr[k])
    g0, g1 = g[k - 1], g[k]
    t = -g0 / (g1 - g0)
    return float(fpr[k - 1] + t * (fpr[k] - fpr[k - 1]))


def minmax(x, rtol: float = 1e-5) -> np.ndarray:
    """Min-max normalisation to [0, 1]: ``(x - min) / (max - min)`` as float64; a constant input gives zeros.

    A span below ``rtol`` times the scores' magnitude counts as constant: it is float rounding, not signal (the
    float32 sums of identical inputs differ in their last bits with their position in a batch, and stretching
    that noise to [0, 1] gave a folder of identical images an AUROC of 0.667 instead of 0.5).
    Raises :class:`MetricError` on an empty or non-finite input.
    """
    a = np.asarray(x, dtype=np.float64)
    if a.size == 0:
        raise MetricError("minmax of an empty array: nothing to normalise")
    if not np.all(np.isfinite(a)):
        raise MetricError("minmax input contains NaN or infinite values; check the scores")
    lo, hi = a.min(), a.max()
    if hi - lo <= rtol * max(abs(hi), abs(lo)):
        return np.zeros_like(a)
    return (a - lo) / (hi - lo)


def accuracy(y_true, y_pred) -> float:
    """Classification accuracy as a fraction in [0, 1]: mean of ``y_true == y_pred``."""
    t = np.asarray(y_true).reshape(-1)
    p = np.asarray(y_pred).reshape(-1)
    if t.shape != p.shape:
        raise MetricError(f"y_true ({t.size}) and y_pred ({p.size}) differ in length")
    if t.size == 0:
        raise MetricError("accuracy of zero samples: nothing to evaluate")
    return float(np.mean(t == p))


def frame_level_metrics(
    video_scores: Sequence,
    video_labels: Sequence,
    pooling: str = "pooled",
    normalisation: str = "per_video",
) -> dict:
    """Frame-level AUROC and EER over a set of test videos, with the two choices that change the numbers explicit.

    Args:
      video_scores: one 1-D array of frame scores per video (higher = more anomalous). For patch models the
        frame score is the maximum over the frame's patches (``common.protocols.frame_scores_from_patches``).
      video_labels: one 1-D 0/1 array per video (1 = anomalous frame), same lengths as ``video_scores``.
      pooling: ``"pooled"`` = concatenate the (normalised) frames of all videos and compute ONE AUROC and ONE
        EER (MemAE's video evaluation, reference notes 5.2, and the usual UCSD frame-level protocol);
        ``"per_video"`` = AUROC and EER of every video separately, then their unweighted mean. A video whose
        frames are all of one class has no ROC and is skipped in ``"per_video"`` (counted in
        ``n_videos_skipped``).
      normalisation: ``"per_video"`` = min-max normalise each video's scores on its own (MemAE's regularity
        score; changes the pooled AUROC because it aligns the videos' score ranges); ``"global"`` = one min-max
        over all frames of all videos (a monotone map: leaves AUROC/EER unchanged, kept for completeness);
        ``"none"`` = raw scores.

    Returns:
      ``dict(auroc, eer, pooling, normalisation, n_frames, n_anomalous_frames, n_videos, n_videos_scored,
      n_videos_skipped)``; auroc and eer are fractions in [0, 1].
    """
    if pooling not in POOLINGS:
        raise ConfigError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if normalisation not in NORMALISATIONS:
        raise ConfigError(f"normalisation must be one of {NORMALISATIONS}, got {normalisation!r}")
    if len(video_scores) != len(video_labels):
        raise MetricError(f"{len(video_scores)} score arrays but {len(video_labels)} label arrays; "
                          "pass one of each per video")
    if len(video_scores) == 0:
        raise MetricError("no videos given to frame_level_metrics")
    scores, labels = [], []
    for i, (s, y) in enumerate(zip(video_scores, video_labels)):
        s = np.asarray(s, dtype=np.float64).reshape(-1)
        y = np.asarray(y).reshape(-1).astype(np.int64)
        if s.shape != y.shape:
            raise MetricError(f"video {i}: {s.size} frame scores but {y.size} frame labels")
        if s.size == 0:
            raise MetricError(f"video {i} has no frames")
        if not np.all(np.isfinite(s)):
            raise MetricError(f"video {i}: frame scores contain NaN or infinite values")
        if normalisation == "per_video":
            s = minmax(s)
        scores.append(s)
        labels.append(y)
    if normalisation == "global":
        allv = minmax(np.concatenate(scores))
        scores = np.split(allv, np.cumsum([len(s) for s in scores])[:-1])

    n_frames = int(sum(len(y) for y in labels))
    n_anom = int(sum(int(y.sum()) for y in labels))
    out = dict(pooling=pooling, normalisation=normalisation, n_frames=n_frames, n_anomalous_frames=n_anom,
               n_videos=len(labels))
    if pooling == "pooled":
        s_all, y_all = np.concatenate(scores), np.concatenate(labels)
        out.update(auroc=auroc(y_all, s_all), eer=eer(y_all, s_all), n_videos_scored=len(labels),
                   n_videos_skipped=0)
        return out
    aucs, eers = [], []
    for s, y in zip(scores, labels):
        if np.unique(y).size < 2:
            continue
        aucs.append(auroc(y, s))
        eers.append(eer(y, s))
    if not aucs:
        raise MetricError("per-video frame metrics need at least one video with both normal and anomalous "
                          "frames; every video here has a single class (use pooling='pooled')")
    out.update(auroc=float(np.mean(aucs)), eer=float(np.mean(eers)), n_videos_scored=len(aucs),
               n_videos_skipped=len(labels) - len(aucs))
    return out
