"""OLED's objective (Section 3.5, Eq. 5-8) and the per-sample anomaly scores derived from it (Section 3.6).

Notation: x the inlier batch in [-1, 1]; M = MM(x) the mask (1 keeps, 0 masks); x_m = x * M (Eq. 3);
x_hat = R(x); x_hat_m = R(x_m). Reductions follow the authors' code (reference notes 4.1.6), where the paper
writes norms without saying how they are averaged:

* losses (training) are means over all elements of the batch;
* scores (evaluation) are per-sample sums over all pixels (notes 4.4).

The masked region x_c of Eq. 6 is written with (1 - M), which equals the code's indicator 1[M == 0] for a
binary mask and is differentiable; the context term is an L1 distance as coded (the paper writes a plain norm).
"""
from __future__ import annotations

from keras import ops


def _f32(v):
    """float32 (also under mixed precision); float64 stays float64 (the float64 gradient reference)."""
    return v if str(getattr(v, "dtype", "")).endswith("float64") else ops.cast(v, "float32")


def mask_loss(x, x_hat_m):
    """Eq. 5: L_mask = ||x - R(x_m)||^2, mean squared error between the image and the masked reconstruction."""
    return ops.mean(ops.square(_f32(x) - _f32(x_hat_m)))


def context_loss(x, x_hat_m, mask):
    """Eq. 6: L_cont = ||x_c - R(x_c)||, L1 error on the masked region (1 - M), averaged over all pixels as coded."""
    region = 1.0 - _f32(mask)
    return ops.mean(ops.abs(_f32(x) * region - _f32(x_hat_m) * region))


def reconstruction_loss(x, x_hat):
    """Eq. 7: L_rec = ||x - R(x)||^2, mean squared error of the reconstruction of the intact image."""
    return ops.mean(ops.square(_f32(x) - _f32(x_hat)))


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
