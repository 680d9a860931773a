"""The anomaly score of the image pretext tasks, in one place.

The paper does not say how an image's anomaly score is computed for the six image methods (Section IV-C). For
its own video task it scores a segment by the pretext cross-entropy loss (Section III-D, Eq. 8-9: a network
trained on normal data predicts the pretext labels of normal inputs well, so anomalies get a higher loss). We
apply the same rule to images, over all of the task's transformations:

    score(x) = sum_{t = 1..T} L_task(t(x))          (higher = more anomalous)

where ``L_task(t(x))`` is the task's pretext loss of image x under transformation t (a column of
``PretextTask.transformation_losses``): the 24 tile orders of Jigsaw, the 4 rotations of RotNet (the GEOM-style
score ``-sum_k log p(k | rot_k(x))``, reference notes 5.5), the 5 hidden blocks of Inpainting, the gray -> colour
(and colour -> gray) predictions of Colorization / Split-Brain, and Counting's sum constraint. Eq. 9's min-max
normalisation is monotone and does not change the AUROC; it is not applied.

Alternatives (not used, see the README): GEOM's Dirichlet score on the softmax outputs; the loss of one
transformation only (the identity / the unshuffled image); a k-NN or one-class model on the backbone features.
"""
from __future__ import annotations

import numpy as np


def score_from_losses(losses):
    """``[B, T]`` per-transformation losses -> ``[B]`` anomaly scores (their sum). Works on tensors and arrays."""
    import tensorflow as tf

    return tf.reduce_sum(tf.cast(losses, tf.float32), axis=-1)


def transformation_losses(model, x, batch_size: int = 256, desc: str = "") -> np.ndarray:
    """``[N, T]`` per-transformation losses of images ``x`` (float32 [-1, 1]) under ``model`` in inference mode."""
    import tensorflow as tf

    from common.training import progress

    fn = tf.function(lambda b: model(b, training=False), reduce_retracing=True)
    out = []
    starts = range(0, len(x), batch_size)
    for i in progress(starts, desc=desc or "scoring", total=len(starts), unit="batch"):
        out.append(np.asarray(fn(tf.constant(x[i:i + batch_size], tf.float32))))
    return np.concatenate(out, axis=0) if out else np.zeros((0, model.task.n_transformations), np.float32)


def anomaly_scores(model, x, batch_size: int = 256, desc: str = "") -> np.ndarray:
    """``[N]`` anomaly scores (see the module docstring) of images ``x`` under ``model``."""
    return np.asarray(score_from_losses(transformation_losses(model, x, batch_size, desc)))
