"""The one backbone every image pretext task uses, and the small heads on top of it.

The paper names no network for the image experiments (Section IV-C only cites the six methods; the authors' code
is not public, reference notes 3). The original methods use AlexNet/CaffeNet-sized networks on 224 x 224 (or
larger) images, far too large for 28 x 28 / 32 x 32 images and a 2-core CPU. We use ONE small fully-convolutional
VGG-style backbone for all six tasks so that the tasks, not the networks, differ:

    conv3x3(w) BN ReLU, maxpool 2,
    conv3x3(2w) BN ReLU, maxpool 2,
    conv3x3(4w) BN ReLU, conv3x3(4w) BN ReLU              -> [H/4, W/4, 4w] feature map   (w = 16: 66 k weights)

about 4.9 M multiply-adds per 32 x 32 gray image. (A first version with two convolutions per stage and w = 32,
29 M multiply-adds, trained RotNet at ~50 images/s on the shared 2-core CPU: too slow for ten classes at quick
scale.)
It takes any spatial size divisible by 4: whole 32 x 32 images (RotNet, the dense tasks), 16 x 16 tiles (Jigsaw,
Counting) and larger folder images. BN momentum 0.9 and epsilon 1e-5 as in GEOM's WRN (reference notes 5.5), so
the moving statistics settle within the few hundred steps of a quick run.

Heads (one per task, in :mod:`permutation_tf.image.tasks`):

* :func:`build_classifier_head`: Dense(256) ReLU -> Dense(n) logits, on the global-average-pooled features
  (RotNet: n = 4; Jigsaw: on the concatenated features of the tiles, n = 24; Noroozi's CFN likewise concatenates
  per-tile features before its fc7/fc8 classifier).
* :class:`PuzzleHead` (Jigsaw): the same Dense(256) ReLU -> Dense(n) on the concatenated features of the nine
  tiles in puzzle order, evaluated for all permutations at once: the first Dense on a concatenation is a sum of
  one projection per slot, so each (tile, slot) projection is computed once and a permutation is a gather-sum
  of them (60x fewer multiply-adds than 100 separate Dense calls, same function).
* :func:`build_counting_head`: Dense(k) ReLU, the non-negative count vector of Noroozi et al. 2017.
* :func:`build_decoder_head`: a 1x1 convolution to 2w channels, then twice (nearest upsampling x2, conv3x3 BN
  ReLU: w channels) back to full resolution, and a 1x1 output convolution (Colorization, Split-Brain: per-pixel class logits; Inpainting: the image, tanh).

Every head's last layer computes in float32 (``dtype="float32"``), so the losses are float32 under a mixed
precision policy.
"""
from __future__ import annotations

import keras
from keras import layers

BACKBONE_WIDTH = 16
BN_MOMENTUM, BN_EPSILON = 0.9, 1e-5
FEATURE_STRIDE = 4


def l2_regularizer(weight_decay: float):
    """``keras.regularizers.L2(weight_decay)`` (adds ``weight_decay * sum(w^2)`` to the loss; Caffe's decay
    ``d`` is ``weight_decay = d / 2``), or None for 0."""
    return keras.regularizers.L2(weight_decay) if weight_decay else None


def _conv_bn_relu(x, filters: int, name: str, weight_decay: float = 0.0):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_regularizer=l2_regularizer(weight_decay),
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_backbone(channels: int, width: int = BACKBONE_WIDTH, name: str = "backbone",
                   weight_decay: float = 0.0) -> keras.Model:
    """The shared backbone: ``[B, H, W, channels]`` (any H, W divisible by 4) -> ``[B, H/4, W/4, 4 * width]``;
    ``weight_decay``: L2 on every kernel (:func:`l2_regularizer`)."""
    inp = keras.Input((None, None, channels), name=f"{name}_input")
    x = _conv_bn_relu(inp, width, f"{name}_b1", weight_decay)
    x = layers.MaxPooling2D(2, name=f"{name}_pool1")(x)
    x = _conv_bn_relu(x, 2 * width, f"{name}_b2", weight_decay)
    x = layers.MaxPooling2D(2, name=f"{name}_pool2")(x)
    x = _conv_bn_relu(x, 4 * width, f"{name}_b3c1", weight_decay)
    x = _conv_bn_relu(x, 4 * width, f"{name}_b3c2", weight_decay)
    return keras.Model(inp, x, name=name)


def feature_dim(width: int = BACKBONE_WIDTH) -> int:
    return 4 * width


def build_classifier_head(in_dim: int, n_classes: int, hidden: int = 256, name: str = "head",
                          weight_decay: float = 0.0) -> keras.Model:
    """``[B, in_dim]`` pooled features -> ``[B, n_classes]`` float32 logits."""
    reg = l2_regularizer(weight_decay)
    inp = keras.Input((in_dim,), name=f"{name}_input")
    x = layers.Dense(hidden, activation="relu", kernel_regularizer=reg, name=f"{name}_fc1")(inp)
    out = layers.Dense(n_classes, dtype="float32", kernel_regularizer=reg, name=f"{name}_logits")(x)
    return keras.Model(inp, out, name=name)


class PuzzleHead(layers.Layer):
    """Dense(hidden) ReLU -> Dense(n_classes) on the concatenation of ``n_slots`` tile features, for many orders.

    ``call(features [B, n_slots, F], perms [P, n_slots] int)`` -> logits ``[B, P, n_classes]`` (float32), where
    order p puts tile ``perms[p, s]`` in slot ``s``: exactly ``Dense(concat_s features[:, perms[p, s]])``. The
    first kernel ``[n_slots, F, hidden]`` is the ``(n_slots * F, hidden)`` matrix of that Dense, initialised Glorot
    uniform over that matrix.
    """

    def __init__(self, n_slots: int, n_classes: int, hidden: int = 256, weight_decay: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.n_slots, self.n_classes, self.hidden = int(n_slots), int(n_classes), int(hidden)
        self.weight_decay = float(weight_decay)
        self.out = layers.Dense(self.n_classes, dtype="float32", kernel_regularizer=l2_regularizer(weight_decay),
                                name="logits")

    def build(self, input_shape):
        f = int(input_shape[-1])
        limit = (6.0 / (self.n_slots * f + self.hidden)) ** 0.5
        self.kernel = self.add_weight(shape=(self.n_slots, f, self.hidden), name="kernel",
                                      initializer=keras.initializers.RandomUniform(-limit, limit),
                                      regularizer=l2_regularizer(self.weight_decay))
        self.bias = self.add_weight(shape=(self.hidden,), name="bias", initializer="zeros")
        self.out.build((None, self.hidden))

    def call(self, features, perms):
        """All images under every order of ``perms [P, n_slots]`` -> ``[B, P, n_classes]``."""
        import tensorflow as tf

        perms = tf.cast(perms, tf.int32)
        z = tf.einsum("btf,sfh->tsbh", features, tf.cast(self.kernel, features.dtype))   # tile t for slot s
        slots = tf.broadcast_to(tf.range(self.n_slots, dtype=tf.int32)[None], tf.shape(perms))
        picked = tf.gather_nd(z, tf.stack([perms, slots], axis=-1))      # [P, n_slots, B, hidden]
        h = tf.nn.relu(tf.reduce_sum(picked, axis=1) + tf.cast(self.bias, features.dtype))   # [P, B, hidden]
        return self.out(tf.transpose(h, [1, 0, 2]))                     # [B, P, n_classes]

    def call_per_image(self, features, perms):
        """Image b under its own order ``perms[b]`` (``[B, n_slots]``) -> ``[B, n_classes]``: the same function
        as :meth:`call` for one order per image, without forming the other orders."""
        import tensorflow as tf

        perms = tf.cast(perms, tf.int32)
        tiles = tf.gather(features, perms, axis=1, batch_dims=1)         # [B, n_slots, F]: slot s holds perm[s]
        h = tf.einsum("bsf,sfh->bh", tiles, tf.cast(self.kernel, features.dtype))
        return self.out(tf.nn.relu(h + tf.cast(self.bias, features.dtype)))


def build_counting_head(in_dim: int, n_counts: int, name: str = "count_head",
                        weight_decay: float = 0.0) -> keras.Model:
    """``[B, in_dim]`` pooled features -> ``[B, n_counts]`` non-negative counts (float32)."""
    inp = keras.Input((in_dim,), name=f"{name}_input")
    out = layers.Dense(n_counts, activation="relu", dtype="float32", kernel_regularizer=l2_regularizer(weight_decay),
                       name=f"{name}_counts")(inp)
    return keras.Model(inp, out, name=name)


def build_decoder_head(in_channels: int, out_channels: int, activation: str | None = None,
                       width: int = BACKBONE_WIDTH, name: str = "decoder", weight_decay: float = 0.0) -> keras.Model:
    """``[B, H/4, W/4, in_channels]`` -> ``[B, H, W, out_channels]`` (float32; ``activation`` on the output)."""
    reg = l2_regularizer(weight_decay)
    inp = keras.Input((None, None, in_channels), name=f"{name}_input")
    x = layers.Conv2D(2 * width, 1, use_bias=False, kernel_regularizer=reg, name=f"{name}_reduce")(inp)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_bn0")(x)
    x = layers.ReLU(name=f"{name}_relu0")(x)
    for i in (1, 2):
        x = layers.UpSampling2D(2, name=f"{name}_up{i}")(x)
        x = _conv_bn_relu(x, width, f"{name}_c{i}", weight_decay)
    out = layers.Conv2D(out_channels, 1, activation=activation, dtype="float32", kernel_regularizer=reg,
                        name=f"{name}_out")(x)
    return keras.Model(inp, out, name=name)
