"""The row "PCA-20 floor (ours)" of NRE's tables (``common/floors.py``), on the same data as the table's run.

* Table 1 (SVM accuracy on a learned code) is not a one-class table: its floor is the same classifiers
  (``common.linear_eval``: standardised features, L-SVM, R-SVM with gamma 0.01) on the 20-d PCA projection of
  the pixels, PCA fitted on the same training images. No training epochs are involved, so the 40- and the
  100-epoch column hold the same value.
* Table 4 (UCSD Ped2, frame-level EER in %): PCA reconstruction error of the same 30x30 training patches,
  frame score = max over the frame's patches, pooled EER over all test frames (as the method).
"""
from __future__ import annotations

import numpy as np

from common.registry import FLOOR_ROW


def classification_floor(x, y, xt, yt, seed: int = 0) -> dict[str, float]:
    """Test accuracy of ``linear_svm`` and ``rbf_svm`` on the PCA-20 projection fitted on ``x``."""
    from common.floors import PCAFloor
    from common.linear_eval import NRE_RBF_GAMMA, fit_and_score

    pca = PCAFloor(seed=seed).fit(x)
    f_tr, f_te = pca.transform(x), pca.transform(xt)
    return {kind: fit_and_score(kind, f_tr, y, f_te, yt, gamma=NRE_RBF_GAMMA, seed=seed)
            for kind in ("linear_svm", "rbf_svm")}


def table1_cells(floor: dict, columns) -> dict:
    """The floor row of Table 1: the L-SVM columns get the linear SVM's accuracy, the R-SVM ones the RBF SVM's."""
    return {(FLOOR_ROW, c): floor["linear_svm" if c.startswith("L-SVM") else "rbf_svm"] for c in columns}


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
