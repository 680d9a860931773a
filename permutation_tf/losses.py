"""Losses and the anomaly score of the frame-permutation method (Section III-C/D, Eq. 6-9).

Eq. 8 writes the cross-entropy with a 1/M! factor in front of the sum over the M! classes. With a one-hot
pseudo-label y only one term of that sum is non-zero, so Eq. 8 is the usual cross-entropy ``-log p_y`` divided by
the constant M!. That constant does not change the ranking of the anomaly scores (Eq. 9 min-max normalises
them) but it divides every gradient by M! (120 for M = 5, i.e. lr 1e-3 acts as 8.3e-6). We train with the usual
cross-entropy (``average_over_classes=False``, the default) and keep Eq. 8's literal form available
(``average_over_classes=True``, flag ``--eq8_class_average``); README.md (video part) lists this choice.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from common.metrics import minmax


def cross_entropy(labels, logits, average_over_classes: bool = False):
    """Per-example L(s_i, y_i) of Eq. 8: ``-log softmax(logits)[y]`` (divided by the number of classes when
    ``average_over_classes``). labels int (N,), logits (N, C) -> (N,) float32."""
    logits = tf.cast(logits, tf.float32)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32), logits=logits)
    if average_over_classes:
        ce = ce / tf.cast(tf.shape(logits)[-1], tf.float32)
    return ce


def mean_loss(labels, logits, average_over_classes: bool = False):
    """Eq. 6-7: the mean of Eq. 8 over the segments of a batch (theta and phi are optimised jointly)."""
    return tf.reduce_mean(cross_entropy(labels, logits, average_over_classes))


def anomaly_scores(segment_losses) -> np.ndarray:
    """Eq. 9: A(s_i) = (L_i - min L) / (max L - min L) over the test segments (all zeros if they are equal)."""
    return minmax(np.asarray(segment_losses, np.float64))
