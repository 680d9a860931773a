"""Gates of every NRE run (issue 19), recorded in ``metrics.json`` under ``gates``: is A worth its name, and
do the neighbours N(X') / F(X') of Eq. 2-3 carry class information?

* A's pixel MSE on the held-out reconstruction split of the encoder-A stage (:mod:`nre_tf.encoder_a`) against
  the MSE of predicting the mean training image for every held-out image (an A above that line has learnt
  less than the mean image; review 2026-12: A after 1-2 epochs at Adam 1e-4 is .200 / .147 vs .068).
* The same-class rate of N(X') and of F(X'): the fraction of (sample, neighbour) pairs whose labels agree,
  on the labelled training data. A DIAGNOSTIC ONLY: the labels never enter training (Eq. 5 sees only the
  bank rows of the neighbour indices). Chance is ``sum_c p_c^2`` (0.1 on ten balanced classes); a near rate
  close to chance means Eq. 5 pulls X' towards random samples, and the run says so in one WARNING line.
"""
from __future__ import annotations

import numpy as np

# "Near chance": the near-neighbour rate is within this fraction of the way from chance to 1 (0.1 -> 0.325 on
# ten balanced classes; chosen: the review measured .100 with a failed A and .85 with a trained one).
NEAR_CHANCE_FRACTION = 0.25
# The issue's bar for a reportable NRE cell: N(X') has X's class at least this often.
NEIGHBOUR_RATE_OK = 0.8


def same_class_rate(labels, idx) -> float:
    """Mean over samples i and their T neighbours idx[i, t] of ``labels[idx[i, t]] == labels[i]``."""
    labels = np.asarray(labels)
    idx = np.asarray(idx).reshape(len(labels), -1)
    return float(np.mean(labels[idx] == labels[:, None]))


def chance_rate(labels) -> float:
    """The same-class rate of neighbours drawn at random from the labels' distribution: ``sum_c p_c^2``."""
    _, counts = np.unique(np.asarray(labels), return_counts=True)
    p = counts / counts.sum()
    return float(np.sum(p * p))


def neighbour_rates(labels, near_idx, far_idx) -> dict:
    """``{"near": rate of N(X'), "far": rate of F(X')}`` (:func:`same_class_rate`)."""
    return {"near": same_class_rate(labels, near_idx), "far": same_class_rate(labels, far_idx)}


def near_chance(rate: float, chance: float) -> bool:
    return rate < chance + NEAR_CHANCE_FRACTION * (1.0 - chance)


def mse(a, b) -> float:
    """Mean squared difference of two image arrays in [0, 1] (float32)."""
    return float(np.mean(np.square(np.asarray(a, np.float32) - np.asarray(b, np.float32))))


def mean_image_mse(x_fit, x_val) -> float:
    """Pixel MSE of predicting the mean image of ``x_fit`` for every image of ``x_val`` (floats in [0, 1])."""
    mean = np.mean(np.asarray(x_fit, np.float32), axis=0, keepdims=True)
    return mse(np.broadcast_to(mean, np.shape(x_val)), x_val)


def gates(a_stage: dict, info: dict | None = None, labels=None, name: str = "NRE") -> dict:
    """The gate record of one NRE run: A's held-out MSE and the mean-image MSE (from the stage record
    ``a_stage``, :func:`nre_tf.encoder_a.ensure`) and, when the run had ``labels``, the same-class rates of
    N(X') / F(X') at the first refresh (X' = the reconstruction of the AE E_phi + D start from) and after the
    last epoch (``info`` of :func:`nre_tf.trainer.train_nre`). Logs one WARNING line per problem."""
    from absl import logging

    out = {"a_heldout_mse": a_stage.get("heldout_mse"), "mean_image_mse": a_stage.get("mean_image_mse"),
           "a_epochs": a_stage.get("epochs_run"), "a_best_epoch": a_stage.get("best_epoch"),
           "a_source": a_stage.get("source", "encoder_a stage")}
    a_ok = out["a_heldout_mse"] is not None and out["a_heldout_mse"] < out["mean_image_mse"]
    out["a_below_mean_image"] = bool(a_ok)
    if not a_ok:
        logging.warning(f"WARNING: {name}: encoder A's held-out pixel MSE {out['a_heldout_mse']:.4f} is not below "
                        f"the mean image's {out['mean_image_mse']:.4f}: R_A has learnt less than the mean image")
    rates = (info or {}).get("neighbour_rates")
    if labels is None or not rates:
        out["passed"] = bool(a_ok)
        return out
    chance = chance_rate(labels)
    first, last = rates[0], info.get("neighbour_rates_final", rates[-1])
    out.update(chance_rate=chance, near_same_class_rate=first["near"], far_same_class_rate=first["far"],
               near_same_class_rate_final=last["near"], far_same_class_rate_final=last["far"],
               neighbours_ok=bool(first["near"] >= NEIGHBOUR_RATE_OK))
    if near_chance(first["near"], chance):
        logging.warning(f"WARNING: {name}: N(X') has the class of X only {first['near']:.3f} of the time (chance "
                        f"{chance:.3f}): the neighbours Eq. 5 learns from are near random; check encoder A")
    out["passed"] = bool(a_ok and out["neighbours_ok"])
    return out
