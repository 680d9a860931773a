"""The floor rows of NRE's tables (``common.registry.FLOOR_ROWS``), on the same data as the table's run.

* Table 1 (SVM accuracy on a learned code) is not a one-class table. Its floors are the same classifiers
  (``common.linear_eval``: standardised features, L-SVM, R-SVM with gamma 0.01, C = 1) on representations that
  need no training, fitted on the same training images of the same split:

  - "PCA-20 floor (ours)": the 20-d PCA projection of the pixels (PCA fitted on the training images);
  - "Raw-pixel floor (ours)": the H*W*C pixel values in [0, 1] (784 on digits). The RBF kernel's gamma = 0.01
    is the paper's, fixed for every representation: on 784 standardised dimensions it is a narrower kernel
    than on the 128-d codes (squared distances scale with the dimension), which is part of what this floor
    measures;
  - "Random-encoder floor (ours)": E(X) of the Table 1 convolutional encoder (``networks.build_autoencoder
    ("conv")``, FC + ReLU latent of ``latent_dim``) at its random initialisation (Keras' default initialisers,
    drawn from the global seed that the run sets; batch norm in inference mode with its initial statistics).

  No training epochs are involved, so the 40- and the 100-epoch columns hold the same value.
* Table 4 (UCSD Ped2, frame-level EER in %): PCA reconstruction error of the same 30x30 training patches,
  frame score = max over the frame's patches, pooled EER over all test frames (as the method).
"""
from __future__ import annotations

import numpy as np

from common.registry import FLOOR_ROW, RANDOM_ENCODER_ROW, RAW_PIXEL_ROW

KINDS = ("linear_svm", "rbf_svm")
# Table 1 floor -> its registry row (the keys are those of table1_floors and of metrics.json "floor").
TABLE1_FLOOR_ROWS = {"pca20": FLOOR_ROW, "raw_pixels": RAW_PIXEL_ROW, "random_encoder": RANDOM_ENCODER_ROW}


def _svms(f_tr, y, f_te, yt, seed: int, standardize: bool = True) -> dict[str, float]:
    from common.linear_eval import NRE_RBF_GAMMA, fit_and_score

    return {kind: fit_and_score(kind, f_tr, y, f_te, yt, gamma=NRE_RBF_GAMMA, seed=seed, standardize=standardize)
            for kind in KINDS}


def classification_floor(x, y, xt, yt, seed: int = 0) -> dict[str, float]:
    """Test accuracy of ``linear_svm`` and ``rbf_svm`` on the PCA-20 projection fitted on ``x``."""
    from common.floors import PCAFloor

    pca = PCAFloor(seed=seed).fit(x)
    return _svms(pca.transform(x), y, pca.transform(xt), yt, seed)


def pixels(x) -> np.ndarray:
    """Images (uint8 0..255 or float in [0, 1]) as float32 (N, H*W*C) rows in [0, 1]."""
    from nre_tf.model import to_float

    a = to_float(np.asarray(x))
    return a.reshape(len(a), -1)


def raw_pixel_floor(x, y, xt, yt, seed: int = 0) -> dict[str, float]:
    """Test accuracy of the same SVMs on the raw pixel values (scaled to [0, 1]), not standardised: the pixels
    already share one scale, and standardising the near-constant border pixels blows them up. Measured on
    mnist5k (4,000 train / 1,000 test, shared 2-core CPU): LinearSVC standardised 0.819 in 82 s (dual) or more than
    10 min (primal, sklearn's "auto" choice here), unstandardised 0.867 in 1-3 s; and RBF's fixed gamma 0.01
    (Sec. 4.2) is meant for distances on that scale, not on 784 unit-variance dimensions."""
    return _svms(pixels(x), y, pixels(xt), yt, seed, standardize=False)


def random_encoder_floor(x, y, xt, yt, latent_dim: int = 128, seed: int = 0) -> dict[str, float]:
    """Test accuracy of the same SVMs on E(X) of the untrained convolutional encoder of Table 1.

    The weights are drawn from Keras' global seed: the caller seeds the run (``common.training.start_run``)."""
    from nre_tf import networks
    from nre_tf.model import predict_batched

    enc, _ = networks.build_autoencoder("conv", tuple(x.shape[1:]), latent_dim)
    f_tr = predict_batched(enc, x, 256).reshape(len(x), -1)
    f_te = predict_batched(enc, xt, 256).reshape(len(xt), -1)
    return _svms(f_tr, y, f_te, yt, seed)


def table1_floors(x, y, xt, yt, latent_dim: int = 128, seed: int = 0) -> dict[str, dict[str, float]]:
    """All Table 1 floors: ``{"pca20" | "raw_pixels" | "random_encoder": {"linear_svm", "rbf_svm"}}``."""
    return {"pca20": classification_floor(x, y, xt, yt, seed),
            "raw_pixels": raw_pixel_floor(x, y, xt, yt, seed),
            "random_encoder": random_encoder_floor(x, y, xt, yt, latent_dim, seed)}


def table1_cells(floor: dict, columns, row: str | None = None) -> dict:
    """Table 1 floor cells: the L-SVM columns get the linear SVM's accuracy, the R-SVM ones the RBF SVM's.

    ``floor`` is either one floor ``{"linear_svm", "rbf_svm"}`` (row ``row``, default the PCA-20 floor) or the
    dict of :func:`table1_floors` (all three floor rows)."""
    if "linear_svm" not in floor:
        out = {}
        for key, r in TABLE1_FLOOR_ROWS.items():
            out.update(table1_cells(floor[key], columns, r))
        return out
    row = row or FLOOR_ROW
    return {(row, c): floor["linear_svm" if c.startswith("L-SVM") else "rbf_svm"] for c in columns}


def ucsd_floor(train_patches, videos, seed: int = 0) -> dict[str, float]:
    """``{"pca20_auroc", "pca20_eer"}`` (fractions) of the patch floor on the labelled test ``videos``."""
    from common.floors import floor_metrics
    from nre_tf.data import video_patches

    patches, ids, offset = [], [], 0
    for v in videos:
        p, f = video_patches(v.frames)
        patches.append(p)
        ids.append(f + offset)
        offset += len(v.frames)
    return floor_metrics(train_patches, np.concatenate(patches), frame_ids=np.concatenate(ids),
                         video_lengths=[len(v.frames) for v in videos],
                         video_labels=[np.asarray(v.frame_labels, np.int64) for v in videos], seed=seed)


def table4_cells(floor: dict) -> dict:
    return {(FLOOR_ROW, "EER"): 100.0 * floor["pca20_eer"]}
