"""The M-stream siamese network of Section III-B (Fig. 3): one Base-CNN (CaffeNet conv1..fc7) shared by every
stream (Eq. 3), the concatenation operator O (Eq. 4) and the Top-CNN T, a classifier over the task's classes
(Eq. 5: the M! permutations for the paper's method).

Base-CNN = CaffeNet [58] conv1..fc7, as in Caffe's ``bvlc_reference_caffenet`` deploy file:

    conv1 96x11x11 (stride 2 during pretext training, Sec. III-C; CaffeNet uses 4) relu, max-pool 3/2, LRN(5)
    conv2 256x5x5 pad 2 group 2 (GroupedConv2D), relu, max-pool 3/2, LRN(5)
    conv3 384x3x3 pad 1, relu;  conv4 384x3x3 pad 1 group 2, relu;  conv5 256x3x3 pad 1 group 2, relu, max-pool 3/2
    fc6 4096 relu dropout 0.5;  fc7 4096 relu dropout 0.5

Choices where the paper is silent (listed in README.md (video part)): the Top-CNN (its layers are in a supplement that
is not available) is ``fc8`` 1024 ReLU + dropout 0.5 + ``fc9`` to the classes. The fc6 input size follows the frame
size (2x2x256 at 64x64, 12x12x256 at 225x225 with stride 2).

Input and initialisation (``input_norm``, ``init``): the paper trains "CaffeNet" in Caffe and says no more, so the
defaults are CaffeNet's own (``bvlc_reference_caffenet``'s ``train_val.prototxt``): pixels in 0..255 with the
training set's **mean image** subtracted (``transform_param { mean_file }``; here the mean frame of the normal
class's training videos, a non-trainable weight of the model set by :func:`set_input_mean`, so an export carries
it), and Gaussian weights (std 0.01 for the convolutions and the Top-CNN's classifier fc9, 0.005 for fc6, fc7 and
the Top-CNN's hidden fc8), biases 0 (conv1, conv3, classifier) or 1 (conv2, conv4, conv5, fc6, fc7, the
hidden fc8). ``norm="batch"`` (beyond the paper) adds batch norm before the ReLUs (:func:`build_base_cnn`,
:class:`TopCNN`). ``input_norm="mean_pixel"`` subtracts the per-channel mean instead (Caffe's ``mean_value``);
``input_norm="pm1"`` and ``init="glorot"`` are this package's first version ([0, 1] mapped to [-1, 1], Keras
defaults: Glorot-uniform, zero biases), with which the network did not learn on Moving Fashion-MNIST (README).

Recipe options beyond the paper (issue 21; measured in docs/permutation-notes.md, "Video: a recipe that learns"):
``init="he"`` (He-normal kernels, zero biases; with ``norm="batch"``), ``init="caffe_zero_bias"`` (CaffeNet's
Gaussians with every bias 0: Caffe's bias 1 in fc6 / fc7 / fc8 makes every hidden vector nearly the same large
vector at initialisation), ``dropout`` placement (``fc6_fc7_fc8`` = CaffeNet's drop6 / drop7 in every frame's
Base-CNN plus the Top-CNN's drop8; ``fc8`` = the Top-CNN's only; ``none``), and ``weight_decay`` (Caffe solver
style, ``w <- w - lr (g + wd w)`` on kernels, not biases: an L2 penalty ``wd / 2 |w|^2``; the paper is silent,
CaffeNet's reference solver uses 5e-4).

Weight sharing (Eq. 3) is literal: the M frames of a segment are folded into the batch and pass through the ONE
Base-CNN, so the model holds a single set of base variables whatever M is.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from permutation_tf.config import DROPOUTS, INITS, INPUT_NORMS, MIN_FRAME_SIZE, NORMS  # noqa: F401 (re-exported)

FEATURE_DIM = 4096      # fc7
TOP_HIDDEN = 1024       # fc8 of the Top-CNN (paper silent)
# bvlc_reference_caffenet train_val.prototxt: (weight std, bias) of each layer.
CAFFE_INIT = {"conv1": (0.01, 0.0), "conv2": (0.01, 1.0), "conv3": (0.01, 0.0), "conv4": (0.01, 1.0),
              "conv5": (0.01, 1.0), "fc6": (0.005, 1.0), "fc7": (0.005, 1.0), "classifier": (0.01, 0.0)}


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


class InputNormalization(keras.layers.Layer):
    """Frames in [0, 1] -> the network's input. ``mean_image`` / ``mean_pixel`` (Caffe): ``255 x - mean`` with
    ``mean`` (H, W, 3) in 0..255 a non-trainable weight (zero until :func:`set_input_mean`; a per-pixel frame
    for ``mean_image``, the per-channel values broadcast over the frame for ``mean_pixel``). ``pm1``: ``2 x - 1``."""

    def __init__(self, mode: str = "mean_image", **kwargs):
        super().__init__(**kwargs)
        if mode not in INPUT_NORMS:
            raise ValueError(f"input_norm must be one of {INPUT_NORMS}, not {mode!r}")
        self.mode = mode

    def build(self, input_shape):
        if self.mode != "pm1":
            self.mean = self.add_weight(name="mean", shape=tuple(int(d) for d in input_shape[1:]),
                                        initializer="zeros", trainable=False)
        self.built = True

    def call(self, x):
        if self.mode == "pm1":
            return 2.0 * x - 1.0
        return 255.0 * x - tf.cast(self.mean, x.dtype)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def frame_mean(frames_0_255: np.ndarray, mode: str = "mean_image") -> np.ndarray:
    """The (H, W, 3) mean that :class:`InputNormalization` subtracts, from frames (N, H, W, 3) in 0..255:
    the mean frame (``mean_image``) or the per-channel mean broadcast over the frame (``mean_pixel``)."""
    mean = np.asarray(frames_0_255).mean(axis=0, dtype=np.float64)      # accumulated in float64, no float copy
    if mode == "mean_pixel":
        mean = np.broadcast_to(mean.mean(axis=(0, 1)), mean.shape)
    return np.asarray(mean, np.float32)


def set_input_mean(base: keras.Model, mean: np.ndarray) -> None:
    """Store the training mean (H, W, 3) in 0..255 in the Base-CNN's input layer (no-op for ``pm1``)."""
    layer = base.get_layer("input_norm")
    if layer.mode != "pm1":
        layer.mean.assign(np.asarray(mean, np.float32))


def _init(layer: str, init: str, weight_decay: float = 0.0) -> dict:
    """Keras arguments of a layer: its initialisers (Caffe's Gaussian with the prototxt's constant bias or
    zero bias, He-normal with zero bias, or the Keras defaults) and the kernel's L2 penalty ``wd / 2 |w|^2``."""
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, not {init!r}")
    out = {"kernel_regularizer": keras.regularizers.L2(weight_decay / 2)} if weight_decay > 0 else {}
    if init == "glorot":
        return out
    if init == "he":
        return {**out, "kernel_initializer": keras.initializers.HeNormal(), "bias_initializer": "zeros"}
    std, bias = CAFFE_INIT[layer]
    return {**out, "kernel_initializer": keras.initializers.RandomNormal(stddev=std),
            "bias_initializer": keras.initializers.Constant(0.0 if init == "caffe_zero_bias" else bias)}


class GroupedConv2D(keras.layers.Layer):
    """Caffe's ``group: 2`` convolution: the input channels split in ``groups`` halves, each convolved by its own
    ``filters / groups`` filters, outputs concatenated (same function and parameter count as
    ``Conv2D(groups=2)``, written as separate convolutions because TensorFlow's grouped CPU kernel is ~9x slower
    than two plain convolutions here)."""

    def __init__(self, filters: int, kernel_size: int, groups: int = 2, padding: str = "valid",
                 initializers: dict | None = None, activation: str | None = "relu", **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.groups, self.padding = int(filters), int(kernel_size), int(groups), padding
        self.activation = activation
        self.convs = [keras.layers.Conv2D(self.filters // self.groups, self.kernel_size, padding=padding,
                                          activation=activation, name=f"g{g}", **(initializers or {}))
                      for g in range(self.groups)]

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
                "groups": self.groups, "padding": self.padding,
                "activation": self.activation}


def build_base_cnn(frame_size=(225, 225), conv1_stride: int = 2, name: str = "base_cnn",
                   input_norm: str = "mean_image", init: str = "caffe", norm: str = "none",
                   dropout: str = "fc6_fc7_fc8", weight_decay: float = 0.0) -> keras.Model:
    """CaffeNet conv1..fc7 (module docstring) mapping a frame (H, W, 3) in [0, 1] to its fc7 feature r_k;
    ``input_norm`` / ``init`` / ``dropout`` / ``weight_decay`` as in the module docstring. ``norm="batch"`` (NOT
    in the paper or CaffeNet) puts a BatchNormalization between every convolution / fc6 / fc7 and its ReLU
    (statistics over all frames of the batch, i.e. over every stream: the streams still share one set of
    variables)."""
    h, w = int(frame_size[0]), int(frame_size[1])
    if min(h, w) < MIN_FRAME_SIZE:
        raise ValueError(f"CaffeNet conv1..pool5 needs frames of at least {MIN_FRAME_SIZE}x{MIN_FRAME_SIZE}, "
                         f"not {h}x{w}")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, not {norm!r}")
    if dropout not in DROPOUTS:
        raise ValueError(f"dropout must be one of {DROPOUTS}, not {dropout!r}")
    L = keras.layers
    base_dropout = 0.5 if dropout == "fc6_fc7_fc8" else 0.0

    def kw(layer):
        return _init(layer, init, weight_decay)

    bn = norm == "batch"
    act = None if bn else "relu"

    def post(x, layer):                                   # [BN] + ReLU after a layer built without activation
        if not bn:
            return x
        return L.ReLU(name=f"relu_{layer}")(L.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"bn_{layer}")(x))

    x_in = keras.Input((h, w, 3), name="frame")
    x = InputNormalization(input_norm, name="input_norm")(x_in)
    x = post(L.Conv2D(96, 11, strides=conv1_stride, activation=act, name="conv1", **kw("conv1"))(x), "conv1")
    x = L.MaxPooling2D(3, 2, name="pool1")(x)
    x = LRN(name="norm1")(x)
    x = L.ZeroPadding2D(2)(x)
    x = post(GroupedConv2D(256, 5, name="conv2", initializers=kw("conv2"), activation=act)(x), "conv2")
    x = L.MaxPooling2D(3, 2, name="pool2")(x)
    x = LRN(name="norm2")(x)
    x = post(L.Conv2D(384, 3, padding="same", activation=act, name="conv3", **kw("conv3"))(x), "conv3")
    x = post(GroupedConv2D(384, 3, padding="same", name="conv4", initializers=kw("conv4"),
                           activation=act)(x), "conv4")
    x = post(GroupedConv2D(256, 3, padding="same", name="conv5", initializers=kw("conv5"),
                           activation=act)(x), "conv5")
    x = L.MaxPooling2D(3, 2, name="pool5")(x)
    x = L.Flatten()(x)
    x = post(L.Dense(FEATURE_DIM, activation=act, name="fc6", **kw("fc6"))(x), "fc6")
    x = L.Dropout(base_dropout, name="drop6")(x)
    x = post(L.Dense(FEATURE_DIM, activation=act, name="fc7", **kw("fc7"))(x), "fc7")
    x = L.Dropout(base_dropout, name="drop7")(x)
    return keras.Model(x_in, x, name=name)


class TopCNN(keras.layers.Layer):
    """T of Eq. 5 on the concatenation x_i = O(r_1..r_S) (Eq. 4): fc8 (``hidden``, ReLU, dropout 0.5 unless
    ``dropout="none"``) -> fc9
    (``n_classes`` logits; the softmax is applied by the loss / :meth:`probabilities`).

    :meth:`logits_for_orders` gives the logits of MANY frame orders of the same features at once: because fc8
    is linear in the concatenation, ``W [r_o1; ..; r_oS] = sum_s W_s r_os``, so the products ``W_s r_m`` are
    computed once per (stream position s, frame m) and summed per order (exactly equal to concatenating every
    order and calling the layer; tested)."""

    def __init__(self, n_streams: int, n_classes: int, feature_dim: int = FEATURE_DIM, hidden: int = TOP_HIDDEN,
                 init: str = "caffe", norm: str = "none", dropout: str = "fc6_fc7_fc8", weight_decay: float = 0.0,
                 **kwargs):
        super().__init__(**kwargs)
        self.n_streams, self.n_classes = int(n_streams), int(n_classes)
        self.feature_dim, self.hidden, self.init, self.norm = int(feature_dim), int(hidden), init, norm
        self.dropout, self.weight_decay = dropout, float(weight_decay)
        self.bn8 = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="bn_fc8") \
            if norm == "batch" else None
        self.fc8 = keras.layers.Dense(self.hidden, name="fc8", **_init("fc7", init, weight_decay))  # as fc6 / fc7
        self.drop8 = keras.layers.Dropout(0.0 if dropout == "none" else 0.5, name="drop8")
        self.fc9 = keras.layers.Dense(self.n_classes, name="fc9", **_init("classifier", init, weight_decay))

    def build(self, input_shape=None):
        self.fc8.build((None, self.n_streams * self.feature_dim))
        self.fc9.build((None, self.hidden))
        if self.bn8 is not None:
            self.bn8.build((None, self.hidden))
        self.built = True

    def call(self, x, training=False):
        """x: (N, S * D) concatenated features -> (N, n_classes) logits."""
        h = self.fc8(x)
        if self.bn8 is not None:
            h = self.bn8(h, training=training)
        return self.fc9(self.drop8(tf.nn.relu(h), training=training))

    def logits_for_orders(self, features, orders, training=False):
        """features (B, M, D) of M frames; orders (V, S) int frame indices -> (B, V, n_classes) logits of the
        concatenations ``O(r_{orders[v, 0]}, ..., r_{orders[v, S-1]})``. ``training``: drop8 active and fc8's
        batch norm on the statistics of the B x V concatenations (all-orders training); else inference."""
        orders = np.asarray(orders, np.int32)
        m = int(features.shape[1])
        kernel = tf.cast(tf.reshape(self.fc8.kernel, (self.n_streams, self.feature_dim, self.hidden)),
                         features.dtype)
        partial = tf.einsum("bmd,sdh->bsmh", features, kernel)                    # W_s r_m
        onehot = tf.constant(np.eye(m, dtype=np.float32)[orders], features.dtype)   # (V, S, M)
        pre = tf.einsum("vsm,bsmh->bvh", onehot, partial) + tf.cast(self.fc8.bias, features.dtype)
        if self.bn8 is not None:                                   # inference: a per-unit affine map
            pre = tf.reshape(self.bn8(tf.reshape(pre, [-1, self.hidden]), training=training), tf.shape(pre))
        return self.fc9(self.drop8(tf.nn.relu(pre), training=training))

    def get_config(self):
        return {**super().get_config(), "n_streams": self.n_streams, "n_classes": self.n_classes,
                "feature_dim": self.feature_dim, "hidden": self.hidden, "init": self.init,
                "norm": self.norm, "dropout": self.dropout, "weight_decay": self.weight_decay}
