"""The floor every one-class table shows beside its learned methods: PCA reconstruction error.

A PCA with ``n_components`` (20 by default) is fitted on the *same* training images of the *same* split that
the learned method trains on, in the same job; a test image's anomaly score is its squared reconstruction
error ``||x - P P^T (x - mu) - mu||^2`` in pixel space (higher = more anomalous, as in :mod:`common.metrics`).
A learned method whose AUROC is below this floor is a finding to explain in the package README, not to hide.
The report shows it as the row "PCA-20 floor (ours)".

NumPy / scikit-learn only (no TensorFlow), so any job can call it.
"""
from __future__ import annotations

import numpy as np

from common.errors import DataError
from common.metrics import auroc

FLOOR_ROW = "PCA-20 floor (ours)"
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


def pca_floor_auroc(train_x, test_x, test_y, n_components: int = N_COMPONENTS, seed: int = 0) -> float:
    """AUROC (label 1 = anomaly) of the PCA reconstruction-error floor fitted on ``train_x``."""
    return auroc(test_y, PCAFloor(n_components, seed).fit(train_x).score(test_x))
