"""The NRE objective (Sabokrou, Khalooei, Adeli, ICCV 2019), written as differentiable TensorFlow ops.

Equation numbers are the paper's:

* Eq. 4 -- :func:`cosine_similarity` ``S(a, b) = a.b / (||a|| ||b||)``; :func:`cosine_distance` ``D = 1 - S``
  (Section 3.1, "D(.,.) = 1 - S(.,.)"). Latents of R_A end in a ReLU, so S is in [0, 1].
* Eq. 1 -- :func:`nre_loss` with T = 1.
* Eq. 5 -- :func:`nre_loss`: ``lambda1 D(R_A(X), R_A(X')) + lambda2 sum_i D(R_A(X'), R_A(X0_i))
  + lambda3 sum_i S(R_A(X'), R_A(Xinf_i))`` with ``X' = D(E_phi(X))`` and ``lambda1 + lambda2 + lambda3 = 1``.
* Eq. 2 / Eq. 3 (the neighbour functions N and F) are look-ups, not losses: they live in
  ``nre_tf/neighbours.py`` and are driven by :mod:`nre_tf.trainer`.

Conventions (assumptions, the paper is silent): the T terms are *summed* as Eq. 5 writes them (not averaged);
the loss of a batch is the mean over its samples; a zero vector (possible after the ReLU) has cosine similarity 0
with everything, implemented by dividing by ``max(||a|| ||b||, 1e-12)``.
"""
from __future__ import annotations

import tensorflow as tf

from nre_tf.config import check_lambdas  # noqa: F401  (validation lives with the config: no TF)

_EPS = 1e-12


def cosine_similarity(a, b, axis: int = -1):
    """Eq. 4: cosine similarity of ``a`` and ``b`` along ``axis`` (broadcasting like ``a * b``)."""
    a = tf.cast(a, tf.float32)
    b = tf.cast(b, tf.float32)
    dot = tf.reduce_sum(a * b, axis=axis)
    norms = tf.norm(a, axis=axis) * tf.norm(b, axis=axis)
    return dot / tf.maximum(norms, _EPS)


def cosine_distance(a, b, axis: int = -1):
    """``D(a, b) = 1 - S(a, b)`` (Section 3.1, below Eq. 3)."""
    return 1.0 - cosine_similarity(a, b, axis=axis)


def nre_loss_terms(ra_x, ra_xp, ra_near, ra_far):
    """The three per-sample terms of Eq. 5 (before the lambdas).

    Args:
      ra_x: R_A(X), shape (B, d).
      ra_xp: R_A(X') with X' = D(E_phi(X)), shape (B, d).
      ra_near: R_A of the T nearest samples N(X'), shape (B, T, d).
      ra_far: R_A of the T farthest samples F(X'), shape (B, T, d).
    Returns:
      (t1, t2, t3), each of shape (B,): ``D(R_A(X), R_A(X'))``, ``sum_i D(R_A(X'), R_A(X0_i))`` and
      ``sum_i S(R_A(X'), R_A(Xinf_i))``.
    """
    ra_x, ra_xp, ra_near, ra_far = (tf.cast(t, tf.float32) for t in (ra_x, ra_xp, ra_near, ra_far))
    ra_xp_b = tf.expand_dims(ra_xp, 1)  # (B, 1, d) broadcast against the T neighbours
    t1 = cosine_distance(ra_x, ra_xp)
    t2 = tf.reduce_sum(cosine_distance(ra_xp_b, ra_near), axis=1)
    t3 = tf.reduce_sum(cosine_similarity(ra_xp_b, ra_far), axis=1)
    return t1, t2, t3


def nre_loss(ra_x, ra_xp, ra_near, ra_far, lambdas):
    """Eq. 5 (Eq. 1 when T = 1), averaged over the batch. Returns ``(loss, (t1, t2, t3) batch means)``."""
    l1, l2, l3 = lambdas
    t1, t2, t3 = nre_loss_terms(ra_x, ra_xp, ra_near, ra_far)
    per_sample = l1 * t1 + l2 * t2 + l3 * t3
    return tf.reduce_mean(per_sample), (tf.reduce_mean(t1), tf.reduce_mean(t2), tf.reduce_mean(t3))


def reconstruction_error(x, x_rec):
    """Per-sample mean squared error ``||X - X~||^2 / n_pixels`` (the anomaly score of Section 4.5, shape (B,))."""
    x = tf.cast(x, tf.float32)
    x_rec = tf.cast(x_rec, tf.float32)
    return tf.reduce_mean(tf.reshape(tf.square(x - x_rec), [tf.shape(x)[0], -1]), axis=1)
