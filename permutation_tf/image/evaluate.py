"""Metrics of one image pretext-task run (Section IV-B: AUROC of the one-vs-all test set).

NumPy / scikit-learn only. The anomaly score itself is defined in :mod:`permutation_tf.image.scoring`; here the
per-transformation losses ``[N, T]`` it sums are turned into the AUROC of the score (the table cell), the AUROC
each transformation would give alone (an alternative score, reported for the README), and the PCA-20 floor of
:mod:`common.floors` fitted on the same training images and scored on the same test images.
"""
from __future__ import annotations

import numpy as np

from common.floors import FLOOR_ROW, N_COMPONENTS, pca_floor_auroc
from common.metrics import auroc


def image_metrics(test_y, losses: np.ndarray, transformation_names) -> dict:
    """AUROC (fraction; label 1 = anomaly) of the summed score, of each transformation alone, and score means."""
    from permutation_tf.image.scoring import score_from_losses

    test_y = np.asarray(test_y)
    scores = np.asarray(score_from_losses(losses))
    per_t = {name: auroc(test_y, losses[:, i]) for i, name in enumerate(transformation_names)}
    return {
        "auroc": auroc(test_y, scores),
        "auroc_per_transformation": per_t,
        "mean_score_normal": float(scores[test_y == 0].mean()),
        "mean_score_anomalous": float(scores[test_y == 1].mean()),
    }


def floor_metrics(train_x, test_x, test_y, seed: int) -> dict:
    """The PCA-20 reconstruction-error floor on the same split (``common.floors``)."""
    return {"row": FLOOR_ROW, "n_components": N_COMPONENTS,
            "auroc": pca_floor_auroc(train_x, test_x, test_y, N_COMPONENTS, seed)}
