"""Encoder / decoder networks of NRE (Sabokrou, Khalooei, Adeli, ICCV 2019).

The paper (Section 4.1) defers the architectures to a supplementary file that was never published (the
repository ``Sabokrou/NRE`` holds only a README), so every size below is an ASSUMPTION taken from the authors'
closest public code, ALOCC (reference notes section 5.1): 5x5 stride-2 convolutions, batch-norm (momentum 0.9,
epsilon 1e-5), LeakyReLU 0.2 in the encoder, ReLU in the decoder, weights drawn from a normal with std 0.02.
Section 3.1 adds that the similarity encoder ``A`` "is composed of several convolutional, sub-sampling, and fully
connected layers" with "a ReLU layer on top of R_A", so every encoder here ends in a fully connected layer
followed by a ReLU; the latent ``E(X)`` is therefore non-negative and the cosine similarity of Eq. 4 between two
latents lies in [0, 1].

Images are floats in [0, 1] (channels last); decoders end in a sigmoid. Under a mixed-precision policy the
convolutional AE's latent ReLU and output sigmoid run in float32 (the losses and R_A are then float32).

Builders:

* :func:`conv_encoder` / :func:`conv_decoder` -- the convolutional AE for 28x28 digits and for 30x30 UCSD
  patches (the same builder; the spatial sizes are computed from the input size: 28->14->7->4 and
  30->15->8->4, mirrored by stride-2 transposed convolutions cropped to the encoder's sizes).
* :func:`magnet_encoder` / :func:`magnet_decoder` -- MagNet's MNIST reformer auto-encoder ("MNIST_I", reference
  notes 5.4), the architecture Table 3 uses for both MagNet and NRE_{0.6,0.2,0.2} ("same architecture,
  different objective").
* :func:`alexnet_encoder` / :func:`alexnet_decoder` -- AlexNet (Krizhevsky et al. 2012, 227x227 input, LRN,
  grouped conv2/4/5) up to FC7 and its mirror (Section 4.3: "converting the convolutional and sub-sampling
  layers to deconvolutional and up-sampling layers").
* :func:`build_autoencoder` -- picks the pair for an ``arch`` name and input shape.
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers

from common.errors import ConfigError

ARCHS = ("conv", "magnet", "alexnet")

# ALOCC house style (reference notes 5.1).
_BN = dict(momentum=0.9, epsilon=1e-5)
_SLOPE = 0.2


def _init():
    return keras.initializers.RandomNormal(stddev=0.02)


def _halvings(size: int, n: int) -> list[int]:
    """Spatial sizes of ``n`` stride-2 SAME convolutions: [size, ceil(size/2), ...] (n + 1 entries)."""
    sizes = [size]
    for _ in range(n):
        sizes.append(math.ceil(sizes[-1] / 2))
    return sizes


def conv_encoder(input_shape, latent_dim: int = 128, filters=(32, 64, 128), name="encoder") -> keras.Model:
    """Convolutional encoder: [conv 5x5 s2 -> BN -> LeakyReLU(0.2)] x len(filters) -> flatten -> FC -> ReLU.

    The first block has no batch-norm (DCGAN / ALOCC discriminator convention). The final ReLU is the one of
    Section 3.1 that makes R_A non-negative.
    """
    x_in = keras.Input(shape=tuple(input_shape), name="images")
    h = x_in
    for i, f in enumerate(filters):
        h = layers.Conv2D(f, 5, strides=2, padding="same", kernel_initializer=_init(), name=f"conv{i + 1}")(h)
        if i > 0:
            h = layers.BatchNormalization(**_BN, name=f"bn{i + 1}")(h)
        h = layers.LeakyReLU(negative_slope=_SLOPE, name=f"lrelu{i + 1}")(h)
    h = layers.Flatten(name="flatten")(h)
    h = layers.Dense(latent_dim, kernel_initializer=_init(), name="fc_latent")(h)
    z = layers.ReLU(name="latent_relu", dtype="float32")(h)  # float32 latents under mixed precision
    return keras.Model(x_in, z, name=name)


def conv_decoder(output_shape, latent_dim: int = 128, filters=(32, 64, 128), name="decoder") -> keras.Model:
    """Mirror of :func:`conv_encoder`: FC -> reshape -> [deconv 5x5 s2 (cropped) -> BN -> ReLU] -> sigmoid."""
    h_out, w_out, c_out = (int(s) for s in output_shape)
    n = len(filters)
    hs, ws = _halvings(h_out, n), _halvings(w_out, n)
    z_in = keras.Input(shape=(latent_dim,), name="latent")
    h = layers.Dense(hs[-1] * ws[-1] * filters[-1], kernel_initializer=_init(), name="fc_dec")(z_in)
    h = layers.Reshape((hs[-1], ws[-1], filters[-1]), name="reshape")(h)
    h = layers.BatchNormalization(**_BN, name="bn_fc")(h)
    h = layers.ReLU(name="relu_fc")(h)
    out_filters = list(reversed(filters[:-1])) + [c_out]
    for j, f in enumerate(out_filters):
        level = n - 1 - j  # target spatial size index
        h = layers.Conv2DTranspose(f, 5, strides=2, padding="same", kernel_initializer=_init(),
                                   name=f"deconv{j + 1}")(h)
        crop_h, crop_w = 2 * hs[level + 1] - hs[level], 2 * ws[level + 1] - ws[level]
        if crop_h or crop_w:  # 4 -> 8 cropped to 7 (28x28), 8 -> 16 cropped to 15 (30x30)
            h = layers.Cropping2D(((0, crop_h), (0, crop_w)), name=f"crop{j + 1}")(h)
        if j < len(out_filters) - 1:
            h = layers.BatchNormalization(**_BN, name=f"dbn{j + 1}")(h)
            h = layers.ReLU(name=f"drelu{j + 1}")(h)
    x_out = layers.Activation("sigmoid", name="reconstruction", dtype="float32")(h)  # float32 under mixed precision
    return keras.Model(z_in, x_out, name=name)


def magnet_encoder(input_shape, name="encoder") -> keras.Model:
    """MagNet MNIST_I encoder half: conv 3 (3x3, sigmoid) -> avg-pool 2 -> conv 3 (3x3, sigmoid) -> flatten.

    MagNet's layers carry an activity L2 of 1e-9 (reference notes 5.4), kept here. The flattened 14x14x3 map is
    the latent; it is already non-negative (sigmoid), the extra ReLU of Section 3.1 is a no-op and kept for
    uniformity.
    """
    reg = keras.regularizers.L2(1e-9)
    x_in = keras.Input(shape=tuple(input_shape), name="images")
    h = layers.Conv2D(3, 3, padding="same", activation="sigmoid", activity_regularizer=reg, name="conv1")(x_in)
    h = layers.AveragePooling2D(2, padding="same", name="pool")(h)
    h = layers.Conv2D(3, 3, padding="same", activation="sigmoid", activity_regularizer=reg, name="conv2")(h)
    h = layers.Flatten(name="flatten")(h)
    z = layers.ReLU(name="latent_relu")(h)
    return keras.Model(x_in, z, name=name)


def magnet_decoder(output_shape, name="decoder") -> keras.Model:
    """MagNet MNIST_I decoder half: conv 3 (sigmoid) -> up-sample 2 -> conv 3 (sigmoid) -> conv C (sigmoid)."""
    h_out, w_out, c_out = (int(s) for s in output_shape)
    hh, ww = math.ceil(h_out / 2), math.ceil(w_out / 2)
    reg = keras.regularizers.L2(1e-9)
    z_in = keras.Input(shape=(hh * ww * 3,), name="latent")
    h = layers.Reshape((hh, ww, 3))(z_in)
    h = layers.Conv2D(3, 3, padding="same", activation="sigmoid", activity_regularizer=reg, name="conv3")(h)
    h = layers.UpSampling2D(2, name="up")(h)
    h = layers.Cropping2D(((0, 2 * hh - h_out), (0, 2 * ww - w_out)), name="crop")(h)
    h = layers.Conv2D(3, 3, padding="same", activation="sigmoid", activity_regularizer=reg, name="conv4")(h)
    x_out = layers.Conv2D(c_out, 3, padding="same", activation="sigmoid", activity_regularizer=reg,
                          name="reconstruction")(h)
    return keras.Model(z_in, x_out, name=name)


class LRN(layers.Layer):
    """AlexNet local response normalisation (depth_radius 2, alpha 2e-5, beta 0.75, bias 1)."""

    def call(self, x):
        return tf.nn.local_response_normalization(x, depth_radius=2, alpha=2e-5, beta=0.75, bias=1.0)


ALEXNET_INPUT = (227, 227, 3)


def alexnet_encoder(input_shape=ALEXNET_INPUT, name="encoder") -> keras.Model:
    """AlexNet conv1..conv5 + FC6 + FC7 (ReLU); the FC7 activations are the latent E(X) (4096-d).

    Layer names ``conv1``..``conv5``, ``fc6``, ``fc7`` are what the Table 2 evaluation harness freezes / reads.
    Dropout of the supervised AlexNet is left out of the auto-encoder (assumption).
    """
    if tuple(input_shape) != ALEXNET_INPUT:
        raise ConfigError(f"the AlexNet encoder takes 227x227x3 images, got {tuple(input_shape)}; resize first")
    x_in = keras.Input(shape=ALEXNET_INPUT, name="images")
    h = layers.Conv2D(96, 11, strides=4, padding="valid", activation="relu", name="conv1")(x_in)  # 55
    h = LRN(name="lrn1")(h)
    h = layers.MaxPooling2D(3, 2, name="pool1")(h)  # 27
    h = layers.Conv2D(256, 5, padding="same", groups=2, activation="relu", name="conv2")(h)
    h = LRN(name="lrn2")(h)
    h = layers.MaxPooling2D(3, 2, name="pool2")(h)  # 13
    h = layers.Conv2D(384, 3, padding="same", activation="relu", name="conv3")(h)
    h = layers.Conv2D(384, 3, padding="same", groups=2, activation="relu", name="conv4")(h)
    h = layers.Conv2D(256, 3, padding="same", groups=2, activation="relu", name="conv5")(h)
    h = layers.MaxPooling2D(3, 2, name="pool5")(h)  # 6
    h = layers.Flatten(name="flatten")(h)
    h = layers.Dense(4096, activation="relu", name="fc6")(h)
    z = layers.Dense(4096, activation="relu", name="fc7")(h)  # ReLU on top of R_A (Section 3.1)
    return keras.Model(x_in, z, name=name)


def alexnet_decoder(name="decoder") -> keras.Model:
    """Mirror of :func:`alexnet_encoder`: FC7' -> FC6' -> 6x6x256 -> [up-sample, deconv] ... -> 227x227x3.

    Each max-pool becomes a bilinear up-sampling to the encoder's size before the pool (6->13->27->55) and each
    convolution a transposed convolution with the same kernel; conv1 (11x11 stride 4) becomes an 11x11 stride-4
    transposed convolution (55 -> 227).
    """
    z_in = keras.Input(shape=(4096,), name="latent")
    h = layers.Dense(4096, activation="relu", name="dfc7")(z_in)
    h = layers.Dense(6 * 6 * 256, activation="relu", name="dfc6")(h)
    h = layers.Reshape((6, 6, 256))(h)
    h = layers.Resizing(13, 13, interpolation="bilinear", name="up5")(h)
    h = layers.Conv2DTranspose(384, 3, padding="same", activation="relu", name="deconv5")(h)
    h = layers.Conv2DTranspose(384, 3, padding="same", activation="relu", name="deconv4")(h)
    h = layers.Conv2DTranspose(256, 3, padding="same", activation="relu", name="deconv3")(h)
    h = layers.Resizing(27, 27, interpolation="bilinear", name="up2")(h)
    h = layers.Conv2DTranspose(96, 5, padding="same", activation="relu", name="deconv2")(h)
    h = layers.Resizing(55, 55, interpolation="bilinear", name="up1")(h)
    x_out = layers.Conv2DTranspose(3, 11, strides=4, padding="valid", activation="sigmoid",
                                   name="reconstruction")(h)  # (55-1)*4+11 = 227
    return keras.Model(z_in, x_out, name=name)


def build_autoencoder(arch: str, input_shape, latent_dim: int = 128):
    """Return ``(encoder, decoder)`` for ``arch`` in :data:`ARCHS` and an image shape (H, W, C)."""
    input_shape = tuple(int(s) for s in input_shape)
    if arch == "conv":
        return conv_encoder(input_shape, latent_dim), conv_decoder(input_shape, latent_dim)
    if arch == "magnet":
        return magnet_encoder(input_shape), magnet_decoder(input_shape)
    if arch == "alexnet":
        return alexnet_encoder(input_shape), alexnet_decoder()
    raise ConfigError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")


def clone_autoencoder(encoder: keras.Model, decoder: keras.Model, name_prefix: str = "copy"):
    """A fresh copy of an (encoder, decoder) pair with the same weights (used to freeze A and to start E_phi+D)."""
    enc = keras.models.clone_model(encoder)
    dec = keras.models.clone_model(decoder)
    enc.set_weights(encoder.get_weights())
    dec.set_weights(decoder.get_weights())
    return enc, dec
