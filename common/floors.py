"""The floor every one-class table shows beside its learned methods: PCA reconstruction error.

A PCA with ``n_components`` (20 by default) is fitted on the *same* training images of the *same* split that
the learned method trains on, in the same job; a test image's anomaly score is its squared reconstruction
error ``||x - P P^T (x - mu) - mu||^2`` in pixel space (higher = more anomalous, as in :mod:`common.metrics`).
A learned method whose AUROC is below this floor is a finding to explain in the package README, not to hide.
The report shows it as the row "PCA-20 floor (ours)" (``common.registry.FLOOR_ROW``, a row the report adds).

* Image-level one-class tables: :func:`pca_floor_auroc`.
* Frame-level video tables on patches (UCSD Ped2, OLED Table 3, NRE Table 4): :func:`floor_metrics` with the
  patches' frame ids fits the PCA on the same training patches, scores every test patch and takes the maximum
  over a frame's patches (``common.protocols.frame_scores_from_patches``, as the methods do), then the pooled
  frame-level AUROC and EER.
* A representation table (NRE Table 1: SVM accuracy on a learned code) has no anomaly score; its floor is the
  same classifier on the 20-d PCA projection (:meth:`PCAFloor.transform`) of the same training images.

NumPy / scikit-learn only (no TensorFlow), so any job can call it.
"""
from __future__ import annotations

import numpy as np

from common.errors import DataError
from common.metrics import auroc, frame_level_metrics
from common.protocols import frame_scores_from_patches
from common.registry import FLOOR_ROW  # noqa: F401  (re-exported: the report's row name)

N_COMPONENTS = 20


def _flat(x, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim < 2 or a.shape[0] == 0:
        raise DataError(f"PCA floor: {what} must be a non-empty batch of images, got shape {a.shape}")
    return a.reshape(a.shape[0], -1)


class PCAFloor:
    """PCA fitted on training images; :meth:`score` is the per-image squared reconstruction error."""

    def __init__(self, n_components: int = N_COMPONENTS, seed: int = 0):
        self.n_components, self.seed = int(n_components), int(seed)

    def fit(self, train_x) -> "PCAFloor":
        from sklearn.decomposition import PCA

        x = _flat(train_x, "training images")
        k = min(self.n_components, x.shape[0], x.shape[1])
        self.pca_ = PCA(n_components=k, svd_solver="full" if x.shape[0] * x.shape[1] <= 4_000_000 else "randomized",
                        random_state=self.seed).fit(x)
        return self

    def score(self, test_x) -> np.ndarray:
        x = _flat(test_x, "test images")
        if x.shape[1] != self.pca_.n_features_in_:
            raise DataError(f"PCA floor: test images have {x.shape[1]} values each, training images "
                            f"{self.pca_.n_features_in_}")
        rec = self.pca_.inverse_transform(self.pca_.transform(x))
        return np.sum((x - rec) ** 2, axis=1)

    def transform(self, x) -> np.ndarray:
        """The (N, n_components) PCA projection of images ``x`` (a representation for a classification floor)."""
        x = _flat(x, "images")
        if x.shape[1] != self.pca_.n_features_in_:
            raise DataError(f"PCA floor: images have {x.shape[1]} values each, training images "
                            f"{self.pca_.n_features_in_}")
        return self.pca_.transform(x)


def pca_floor_auroc(train_x, test_x, test_y, n_components: int = N_COMPONENTS, seed: int = 0) -> float:
    """AUROC (label 1 = anomaly) of the PCA reconstruction-error floor fitted on ``train_x``."""
    return auroc(test_y, PCAFloor(n_components, seed).fit(train_x).score(test_x))


def floor_metrics(train_x, test_x, test_y=None, frame_ids=None, video_lengths=None, video_labels=None,
                  n_components: int = N_COMPONENTS, seed: int = 0) -> dict:
    """The floor of a one-class split, as recorded in a run's ``metrics.json`` under ``"floor"``.

    Image level (``test_y``: 1 = anomaly): ``{"pca20_auroc"}``. Patches of video frames (``frame_ids``: the
    frame of every test patch, numbered over the concatenated ``video_lengths``; ``video_labels``: one 0/1
    array per video): frame score = max over its patches, pooled over all test frames, ``{"pca20_auroc",
    "pca20_eer"}`` (fractions).
    """
    key = f"pca{n_components}"
    scores = PCAFloor(n_components, seed).fit(train_x).score(test_x)
    if frame_ids is None:
        return {f"{key}_auroc": auroc(test_y, scores)}
    n_frames = int(sum(video_lengths))
    frames = frame_scores_from_patches(scores, frame_ids, n_frames)
    per_video = np.split(frames, np.cumsum(video_lengths)[:-1])
    m = frame_level_metrics(per_video, video_labels, pooling="pooled", normalisation="none")
    return {f"{key}_auroc": float(m["auroc"]), f"{key}_eer": float(m["eer"])}
