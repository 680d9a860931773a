"""The M-stream siamese network of Section III-B (Fig. 3): one Base-CNN (CaffeNet conv1..fc7) shared by every
stream (Eq. 3), the concatenation operator O (Eq. 4) and the Top-CNN T, a classifier over the task's classes
(Eq. 5: the M! permutations for the paper's method).

Base-CNN = CaffeNet [58] conv1..fc7, as in Caffe's ``bvlc_reference_caffenet`` deploy file:

    conv1 96x11x11 (stride 2 during pretext training, Sec. III-C; CaffeNet uses 4) relu, max-pool 3/2, LRN(5)
    conv2 256x5x5 pad 2 group 2 (GroupedConv2D), relu, max-pool 3/2, LRN(5)
    conv3 384x3x3 pad 1, relu;  conv4 384x3x3 pad 1 group 2, relu;  conv5 256x3x3 pad 1 group 2, relu, max-pool 3/2
    fc6 4096 relu dropout 0.5;  fc7 4096 relu dropout 0.5

Choices where the paper is silent (listed in README.md (video part)): the Top-CNN (its layers are in a supplement that
is not available) is ``fc8`` 1024 ReLU + dropout 0.5 + ``fc9`` to the classes; weights use the Keras defaults
(Glorot-uniform, zero biases) rather than Caffe's Gaussian(0.01/0.005); inputs in [0, 1] are mapped to [-1, 1].
The fc6 input size follows the frame size (2x2x256 at 64x64, 12x12x256 at 225x225 with stride 2).

Weight sharing (Eq. 3) is literal: the M frames of a segment are folded into the batch and pass through the ONE
Base-CNN, so the model holds a single set of base variables whatever M is.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

FEATURE_DIM = 4096      # fc7
TOP_HIDDEN = 1024       # fc8 of the Top-CNN (paper silent)
MIN_FRAME_SIZE = 64     # smallest input for which conv1(stride 2)..pool5 leaves >= 1 pixel


class LRN(keras.layers.Layer):
    """Caffe's across-channel LRN: x / (1 + alpha/n * sum_{n neighbours} x^2)^beta, n = 5, alpha 1e-4, beta 0.75."""

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, **kwargs):
        super().__init__(**kwargs)
        self.size, self.alpha, self.beta = int(size), float(alpha), float(beta)

    def call(self, x):
        y = tf.nn.local_response_normalization(tf.cast(x, tf.float32), depth_radius=self.size // 2, bias=1.0,
                                               alpha=self.alpha / self.size, beta=self.beta)
        return tf.cast(y, x.dtype)

    def get_config(self):
        return {**super().get_config(), "size": self.size, "alpha": self.alpha, "beta": self.beta}


class GroupedConv2D(keras.layers.Layer):
    """Caffe's ``group: 2`` convolution: the input channels split in ``groups`` halves, each convolved by its own
    ``filters / groups`` filters, outputs concatenated (same function and parameter count as
    ``Conv2D(groups=2)``, written as separate convolutions because TensorFlow's grouped CPU kernel is ~9x slower
    than two plain convolutions here)."""

    def __init__(self, filters: int, kernel_size: int, groups: int = 2, padding: str = "valid", **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.groups, self.padding = int(filters), int(kernel_size), int(groups), padding
        self.convs = [keras.layers.Conv2D(self.filters // self.groups, self.kernel_size, padding=padding,
                                          activation="relu", name=f"g{g}") for g in range(self.groups)]

    def build(self, input_shape):
        c = int(input_shape[-1]) // self.groups
        for conv in self.convs:
            conv.build((*input_shape[:-1], c))
        self.built = True

    def call(self, x):
        parts = tf.split(x, self.groups, axis=-1)
        return tf.concat([conv(p) for conv, p in zip(self.convs, parts)], axis=-1)

    def compute_output_shape(self, input_shape):
        return self.convs[0].compute_output_shape(input_shape)[:-1] + (self.filters,)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "groups": self.groups, "padding": self.padding}


def build_base_cnn(frame_size=(225, 225), conv1_stride: int = 2, name: str = "base_cnn") -> keras.Model:
    """CaffeNet conv1..fc7 (module docstring) mapping a frame (H, W, 3) in [0, 1] to its fc7 feature r_k."""
    h, w = int(frame_size[0]), int(frame_size[1])
    if min(h, w) < MIN_FRAME_SIZE:
        raise ValueError(f"CaffeNet conv1..pool5 needs frames of at least {MIN_FRAME_SIZE}x{MIN_FRAME_SIZE}, "
                         f"not {h}x{w}")
    L = keras.layers
    x_in = keras.Input((h, w, 3), name="frame")
    x = L.Rescaling(2.0, offset=-1.0, name="to_pm1")(x_in)
    x = L.Conv2D(96, 11, strides=conv1_stride, activation="relu", name="conv1")(x)
    x = L.MaxPooling2D(3, 2, name="pool1")(x)
    x = LRN(name="norm1")(x)
    x = L.ZeroPadding2D(2)(x)
    x = GroupedConv2D(256, 5, name="conv2")(x)
    x = L.MaxPooling2D(3, 2, name="pool2")(x)
    x = LRN(name="norm2")(x)
    x = L.Conv2D(384, 3, padding="same", activation="relu", name="conv3")(x)
    x = GroupedConv2D(384, 3, padding="same", name="conv4")(x)
    x = GroupedConv2D(256, 3, padding="same", name="conv5")(x)
    x = L.MaxPooling2D(3, 2, name="pool5")(x)
    x = L.Flatten()(x)
    x = L.Dense(FEATURE_DIM, activation="relu", name="fc6")(x)
    x = L.Dropout(0.5, name="drop6")(x)
    x = L.Dense(FEATURE_DIM, activation="relu", name="fc7")(x)
    x = L.Dropout(0.5, name="drop7")(x)
    return keras.Model(x_in, x, name=name)


class TopCNN(keras.layers.Layer):
    """T of Eq. 5 on the concatenation x_i = O(r_1..r_S) (Eq. 4): fc8 (``hidden``, ReLU, dropout 0.5) -> fc9
    (``n_classes`` logits; the softmax is applied by the loss / :meth:`probabilities`).

    :meth:`logits_for_orders` gives the logits of MANY frame orders of the same features at once: because fc8
    is linear in the concatenation, ``W [r_o1; ..; r_oS] = sum_s W_s r_os``, so the products ``W_s r_m`` are
    computed once per (stream position s, frame m) and summed per order (exactly equal to concatenating every
    order and calling the layer; tested)."""

    def __init__(self, n_streams: int, n_classes: int, feature_dim: int = FEATURE_DIM, hidden: int = TOP_HIDDEN,
                 **kwargs):
        super().__init__(**kwargs)
        self.n_streams, self.n_classes = int(n_streams), int(n_classes)
        self.feature_dim, self.hidden = int(feature_dim), int(hidden)
        self.fc8 = keras.layers.Dense(self.hidden, name="fc8")
        self.drop8 = keras.layers.Dropout(0.5, name="drop8")
        self.fc9 = keras.layers.Dense(self.n_classes, name="fc9")

    def build(self, input_shape=None):
        self.fc8.build((None, self.n_streams * self.feature_dim))
        self.fc9.build((None, self.hidden))
        self.built = True

    def call(self, x, training=False):
        """x: (N, S * D) concatenated features -> (N, n_classes) logits."""
        h = tf.nn.relu(self.fc8(x))
        return self.fc9(self.drop8(h, training=training))

    def logits_for_orders(self, features, orders):
        """features (B, M, D) of M frames; orders (V, S) int frame indices -> (B, V, n_classes) logits of the
        concatenations ``O(r_{orders[v, 0]}, ..., r_{orders[v, S-1]})`` (inference, no dropout)."""
        orders = np.asarray(orders, np.int32)
        m = int(features.shape[1])
        kernel = tf.cast(tf.reshape(self.fc8.kernel, (self.n_streams, self.feature_dim, self.hidden)),
                         features.dtype)
        partial = tf.einsum("bmd,sdh->bsmh", features, kernel)                    # W_s r_m
        onehot = tf.constant(np.eye(m, dtype=np.float32)[orders], features.dtype)   # (V, S, M)
        pre = tf.einsum("vsm,bsmh->bvh", onehot, partial) + tf.cast(self.fc8.bias, features.dtype)
        return self.fc9(tf.nn.relu(pre))

    def get_config(self):
        return {**super().get_config(), "n_streams": self.n_streams, "n_classes": self.n_classes,
                "feature_dim": self.feature_dim, "hidden": self.hidden}
