"""The objectives of Section 4 (Eq. 3-5), per example, in float32.

Every function returns one value per example; :func:`average` divides their sum by the *global* batch size
(``tf.nn.compute_average_loss`` semantics), so that under a ``tf.distribute`` strategy the per-replica losses add
up to the mean over the global batch. Logits may arrive in bfloat16/float16 (mixed precision): everything is
cast to float32 first.

Notation: ``real_logit`` = C^class logit of a real example (the autoencoded image D(phi(x)), Sec. 4.2),
``fake_logit`` = C^class logit of a corrupted example x_hat = D-hat(phi_hat(x)); C^class = sigmoid(logit).
"""
from __future__ import annotations

import tensorflow as tf

GENERATOR_LOSSES = ("minimax", "non_saturating", "code")


def _f32(v):
    return tf.cast(v, tf.float32)


def average(per_example, global_batch_size=None):
    """Sum over the local examples divided by the global batch size (default: the local batch x replicas)."""
    per_example = _f32(per_example)
    if global_batch_size is None:
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        global_batch_size = tf.cast(tf.shape(per_example)[0] * replicas, tf.float32)
    return tf.reduce_sum(per_example) / tf.cast(global_batch_size, tf.float32)


def autoencoder_loss(x, x_rec):
    """Eq. 3: L_auto = |D(E(x)) - x|^2 per example, as the mean over pixels (the paper's sum up to a constant;
    the code's 30 x MSE only rescales it, which Adam ignores)."""
    d = _f32(x_rec) - _f32(x)
    return tf.reduce_mean(tf.square(d), axis=tf.range(1, tf.rank(d)))


def discriminator_class_loss(real_logit, fake_logit):
    """Eq. 4, C's side: C maximises log C(D(phi(x))) + log(1 - C(x_hat)); we minimise the negative, i.e. the
    binary cross-entropy with real = 1, corrupt = 0. Per example pair: softplus(-l_real) + softplus(l_fake)."""
    return tf.nn.softplus(-_f32(real_logit)) + tf.nn.softplus(_f32(fake_logit))


def repair_class_loss(fake_logit, kind: str = "minimax"):
    """Eq. 4, R's side, per corrupted example.

    * ``minimax`` (the paper's Eq. 4): R minimises log(1 - C(x_hat)) = -softplus(l).
    * ``non_saturating``: R minimises -log C(x_hat) = softplus(-l) (flipped labels, the usual GAN practice and
      the code's generator cross-entropy).
    * ``code``: the authors' code as read (reference notes 2.7): the generator's loss collection also holds
      C's cross-entropy on the same corrupted examples, so R minimises -log C(x_hat) - log(1 - C(x_hat)), which
      is smallest at C(x_hat) = 1/2.
    """
    l = _f32(fake_logit)
    if kind == "minimax":
        return -tf.nn.softplus(l)
    if kind == "non_saturating":
        return tf.nn.softplus(-l)
    if kind == "code":
        return tf.nn.softplus(-l) + tf.nn.softplus(l)
    raise ValueError(f"generator loss must be one of {GENERATOR_LOSSES}, got {kind!r}")


def mask_loss(mask_logits, keep_mask):
    """Eq. 5: L_mask = -sum_ij Omega_ij log sigma(C^mask_ij) + (1 - Omega_ij) log(1 - sigma(C^mask_ij)), per
    example, averaged over the M x N positions (the paper's sum up to the constant M*N). ``keep_mask`` is
    Omega (1 = kept) of shape (B, M, N) or (B, M, N, 1)."""
    logits = _f32(mask_logits)
    target = tf.reshape(_f32(keep_mask), tf.shape(logits))
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=logits)
    return tf.reduce_mean(ce, axis=tf.range(1, tf.rank(ce)))


def kept_region_reconstruction(x, x_hat, keep_mask_full):
    """The authors' code adds to R's loss an MSE between x and x_hat on the kept region only (keep mask
    nearest-upsampled to the image; mean over the kept pixels). Not in the paper; weight ``repair_rec_weight``
    (code: 30, default 0)."""
    w = _f32(keep_mask_full)
    d = tf.square(_f32(x_hat) - _f32(x)) * w
    axes = tf.range(1, tf.rank(d))
    n = tf.reduce_sum(w * tf.ones_like(d), axis=axes)
    return tf.reduce_sum(d, axis=axes) / tf.maximum(n, 1.0)
