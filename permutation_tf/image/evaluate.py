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


def rule_aurocs(test_y, losses: np.ndarray, task: str, seed: int) -> dict[str, float]:
    """``{rule: AUROC}`` (fraction; label 1 = anomaly) of every score rule that applies to ``task``."""
    from permutation_tf.image.scoring import scores_by_rule

    return {rule: auroc(test_y, s) for rule, s in scores_by_rule(losses, task, seed).items()}


def image_metrics(test_y, losses: np.ndarray, transformation_names, task: str, rule: str, seed: int) -> dict:
    """AUROC of the chosen score ``rule`` (the table cell), of every rule, of each transformation alone, the
    score means, and how many test scores tie (a saturated loss gives equal scores)."""
    from permutation_tf.image.scoring import scores_by_rule

    test_y = np.asarray(test_y)
    scores = scores_by_rule(losses, task, seed)[rule]
    per_t = {name: auroc(test_y, losses[:, i]) for i, name in enumerate(transformation_names)}
    return {
        "auroc": auroc(test_y, scores),
        "score": rule,
        "auroc_per_rule": rule_aurocs(test_y, losses, task, seed),
        "auroc_per_transformation": per_t,
        "mean_score_normal": float(scores[test_y == 0].mean()),
        "mean_score_anomalous": float(scores[test_y == 1].mean()),
        "tied_score_fraction": float(1.0 - len(np.unique(scores)) / len(scores)),
        "min_loss": float(np.min(losses)),
    }


def saturated_ce(losses: np.ndarray) -> np.ndarray:
    """What ``tf.nn.sparse_softmax_cross_entropy_with_logits`` returns in float32 for an exact loss ``L`` whose
    label is the arg-max: ``log(fl32(1 + (e^L - 1)))``, 0 below ~6e-8 (the op this package used before the
    non-saturating form of ``tasks._ce``); a diagnostic of how much of the ranking that rounding destroyed."""
    eps = np.expm1(np.asarray(losses, np.float64)).astype(np.float32)
    return np.log(np.float32(1.0) + eps).astype(np.float32)


def curve_diagnostics(test_y, losses: np.ndarray) -> dict:
    """Per curve point: median mean-loss of normal and anomalous test images, the fraction of tied mean-loss
    scores, the AUROC of the identity transformation alone and of the mean loss with saturating float32 CE."""
    test_y = np.asarray(test_y)
    mean = np.asarray(losses, np.float64).mean(axis=1)
    sat = saturated_ce(losses).astype(np.float64).mean(axis=1)
    return {"median_loss_normal": float(np.median(mean[test_y == 0])),
            "median_loss_anomalous": float(np.median(mean[test_y == 1])),
            "tied_fraction": float(1.0 - len(np.unique(mean)) / len(mean)),
            "auroc_identity_only": auroc(test_y, losses[:, 0]),
            "auroc_mean_loss_saturated_ce": auroc(test_y, sat),
            "tied_fraction_saturated_ce": float(1.0 - len(np.unique(sat)) / len(sat))}


def floor_metrics(train_x, test_x, test_y, seed: int) -> dict:
    """The PCA-20 reconstruction-error floor on the same split (``common.floors``)."""
    return {"row": FLOOR_ROW, "n_components": N_COMPONENTS,
            "auroc": pca_floor_auroc(train_x, test_x, test_y, N_COMPONENTS, seed)}
