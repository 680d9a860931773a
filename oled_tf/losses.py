"""OLED's objective (Section 3.5, Eq. 5-8) and the per-sample anomaly scores derived from it (Section 3.6).

Notation: x the inlier batch in [-1, 1]; M = MM(x) the mask (1 keeps, 0 masks); x_m = x * M (Eq. 3);
x_hat = R(x); x_hat_m = R(x_m). The paper writes norms without saying how they are averaged; ``reduction``
chooses the reading (``--loss_reduction``):

* losses (training): "mean" = the authors' code (reference notes 4.1.6), means over all elements of the batch;
  "norm" = the paper's norms per sample (Eq. 5, 7 squared, Eq. 6 not), averaged over the batch;
* scores (evaluation) are per-sample sums over all pixels (notes 4.4).

The masked region x_c of Eq. 6 is written with (1 - M), which equals the code's indicator 1[M == 0] for a
binary mask and is differentiable; the context term is an L1 distance as coded (the paper writes a plain norm).
"""
from __future__ import annotations

from keras import ops


def _f32(v):
    """float32 (also under mixed precision); float64 stays float64 (the float64 gradient reference)."""
    return v if str(getattr(v, "dtype", "")).endswith("float64") else ops.cast(v, "float32")


# How Eq. 5-7's norms are reduced: "mean" = the authors' code (means over all elements; L_cont an L1 error on the
# masked region averaged over all pixels); "norm" = the paper's norms read literally, per sample and then averaged
# over the batch: ||.||^2 (a sum of squares) for Eq. 5 and 7, ||.|| (the unsquared L2 norm) for Eq. 6.
REDUCTIONS = ("mean", "norm")


def _per_sample_sum(v):
    return ops.sum(v, axis=tuple(range(1, len(v.shape))))


def _check(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"loss reduction must be one of {REDUCTIONS}, got {reduction!r}")


def mask_loss(x, x_hat_m, reduction: str = "mean"):
    """Eq. 5: L_mask = ||x - R(x_m)||^2; "mean": mean squared error over all elements (code), "norm": the squared
    L2 norm of each sample, averaged over the batch."""
    _check(reduction)
    sq = ops.square(_f32(x) - _f32(x_hat_m))
    return ops.mean(sq) if reduction == "mean" else ops.mean(_per_sample_sum(sq))


def context_loss(x, x_hat_m, mask, reduction: str = "mean"):
    """Eq. 6: L_cont = ||x_c - R(x_c)|| on the masked region (1 - M). "mean": the code's L1 error averaged over
    all pixels; "norm": the unsquared L2 norm of each sample's masked-region error, averaged over the batch (the
    reading under which the paper's gamma = 50 balances L_cont against the squared norms of Eq. 5 and 7, Sec. 4.1;
    docs/oled-notes.md "Loss scale"). The norm's gradient is taken with a tiny floor under the root (an all-zero
    error has no gradient instead of NaN)."""
    _check(reduction)
    region = 1.0 - _f32(mask)
    diff = _f32(x) * region - _f32(x_hat_m) * region
    if reduction == "mean":
        return ops.mean(ops.abs(diff))
    return ops.mean(ops.sqrt(_per_sample_sum(ops.square(diff)) + 1e-12))


def reconstruction_loss(x, x_hat, reduction: str = "mean"):
    """Eq. 7: L_rec = ||x - R(x)||^2 of the intact image, reduced as :func:`mask_loss`."""
    _check(reduction)
    sq = ops.square(_f32(x) - _f32(x_hat))
    return ops.mean(sq) if reduction == "mean" else ops.mean(_per_sample_sum(sq))


def reconstructor_objective(l_mask, l_cont, l_rec, gamma: float, lambda_rec: float):
    """Eq. 8, the quantity R minimises: L_mask + gamma * L_cont + lambda * L_rec."""
    return l_mask + gamma * l_cont + lambda_rec * l_rec


def mask_module_objective(l_mask, l_cont, gamma: float, use_context: bool = True):
    """Eq. 8, the quantity MM maximises: L_mask + gamma * L_cont (L_rec does not depend on MM).

    ``use_context=False`` is the authors' CIFAR-10 code, where MM maximises L_mask only (notes 4.1.6).
    The caller minimises the negative of this value.
    """
    return l_mask + gamma * l_cont if use_context else l_mask


def per_sample_scores(x, x_hat, x_hat_m, mask):
    """Raw scores of Section 3.6 per sample, before min-max normalisation (notes 4.4).

    Returns a dict of (B,) float32 tensors: ``s_rec`` = sum (x - R(x))^2, ``s_mask`` = sum (x - R(x_m))^2,
    ``s_cont`` = sum |x_c - R(x_m)_c| over the masked region.
    """
    x, x_hat, x_hat_m, region = _f32(x), _f32(x_hat), _f32(x_hat_m), 1.0 - _f32(mask)
    axes = tuple(range(1, len(x.shape)))
    return {
        "s_rec": ops.sum(ops.square(x - x_hat), axis=axes),
        "s_mask": ops.sum(ops.square(x - x_hat_m), axis=axes),
        "s_cont": ops.sum(ops.abs(x * region - x_hat_m * region), axis=axes),
    }
