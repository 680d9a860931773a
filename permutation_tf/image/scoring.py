"""The anomaly score of the image pretext tasks, in one place: the score rules of ``--score``.

The paper does not say how an image's anomaly score is computed for the six image methods (Section IV-C). For
its own video task it scores a segment by the pretext cross-entropy of the permutation label drawn for it
(Section III-D, Eq. 8-9: a network trained on normal data predicts the pretext labels of normal inputs well, so
anomalies get a higher loss). Applied to an image with the per-transformation losses ``L_t(x) = L_task(t(x))``
(the columns of ``PretextTask.transformation_losses``: the 100 tile orders of Jigsaw, the 4 rotations of RotNet,
the 5 hidden blocks of Inpainting, ...), the rules are (higher = more anomalous):

* ``mean_loss``: ``(1/T) sum_t L_t(x)``, the pretext loss averaged over every transformation of the image (the
  expectation of the drawn rule; for RotNet GEOM's "simplified" score in log form, ``-mean_k log p(k | rot_k x)``,
  reference notes 5.5).
* ``drawn_loss``: ``L_y(x)`` for ONE transformation ``y`` drawn per test image (:func:`drawn_transformations`,
  deterministic from the seed): Section III-D's rule taken literally. Its softmax form ``-p(y | y(x)) =
  -exp(-L_y)`` is a monotone function of it and has the same AUROC, so it is not a separate rule.
* ``mean_prob``: ``-(1/T) sum_t p(t | t(x)) = -(1/T) sum_t exp(-L_t(x))``, the softmax probability of the
  applied transformation averaged over the transformations (GEOM's commented-out simplified score, reference
  notes 5.5); only for the classification tasks (:data:`PROB_TASKS`), whose loss is ``-log p``.

Eq. 9's min-max normalisation is monotone and does not change the AUROC; it is not applied. Not offered: GEOM's
Dirichlet score (needs every softmax output of the training set), a k-NN / one-class model on the features.
"""
from __future__ import annotations

import numpy as np

SCORE_RULES = ("mean_loss", "drawn_loss", "mean_prob")
LABEL_FREE_RULES = ("mean_loss", "mean_prob")   # rules an exported scorer can apply to an unlabelled image
PROB_TASKS = ("jigsaw", "rotnet")               # loss = -log softmax probability of one label
DRAWN_STREAM = 22                                # the seed stream of the drawn test transformations


def rules_for(task: str) -> tuple[str, ...]:
    """The score rules that apply to ``task`` (``mean_prob`` needs a softmax classification loss)."""
    return SCORE_RULES if task in PROB_TASKS else tuple(r for r in SCORE_RULES if r != "mean_prob")


def drawn_transformations(n: int, n_transformations: int, seed: int) -> np.ndarray:
    """``[n]`` int: the transformation drawn for each of ``n`` test images (``drawn_loss``), uniform, fixed by
    ``seed`` (the same draw at every evaluation of a run)."""
    return np.random.default_rng([int(seed), DRAWN_STREAM]).integers(0, n_transformations, size=int(n))


def score_from_losses(losses, rule: str = "mean_loss", drawn=None):
    """``[B, T]`` per-transformation losses -> ``[B]`` float32 anomaly scores under ``rule`` (tensors or arrays;
    ``drawn``: ``[B]`` transformation indices, needed by ``drawn_loss``)."""
    import tensorflow as tf

    losses = tf.cast(losses, tf.float32)
    if rule == "mean_loss":
        return tf.reduce_mean(losses, axis=-1)
    if rule == "mean_prob":
        return -tf.reduce_mean(tf.exp(-losses), axis=-1)
    if rule == "drawn_loss":
        if drawn is None:
            raise ValueError("score rule drawn_loss needs the drawn transformation of every image")
        return tf.gather(losses, tf.cast(drawn, tf.int32), axis=1, batch_dims=1)
    raise ValueError(f"unknown score rule {rule!r}; choose one of {', '.join(SCORE_RULES)}")


def scores_by_rule(losses: np.ndarray, task: str, seed: int) -> dict[str, np.ndarray]:
    """``{rule: [N] scores}`` for every rule of :func:`rules_for` ``(task)`` (numpy, float64 where exact)."""
    losses = np.asarray(losses, np.float64)
    out = {"mean_loss": losses.mean(axis=1),
           "drawn_loss": losses[np.arange(len(losses)), drawn_transformations(len(losses), losses.shape[1], seed)]}
    if task in PROB_TASKS:
        out["mean_prob"] = -np.exp(-losses).mean(axis=1)
    return out


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


def anomaly_scores(model, x, rule: str = "mean_loss", seed: int = 0, batch_size: int = 256,
                   desc: str = "") -> np.ndarray:
    """``[N]`` anomaly scores (see the module docstring) of images ``x`` under ``model``."""
    losses = transformation_losses(model, x, batch_size, desc)
    if rule not in rules_for(model.task.name):
        raise ValueError(f"score rule {rule!r} does not apply to {model.task.name}")
    return scores_by_rule(losses, model.task.name, seed)[rule]
