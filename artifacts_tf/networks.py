"""Networks of "Learning to Spot Artifacts" (Jenni & Favaro, CVPR 2018): autoencoder {E, D}, damage Omega,
repair network R1..R5, AlexNet discriminator C with its real/fake and mask heads, and the transfer classifier.

Layer sizes are the paper's (Section 4.4), which agree with the authors' STL-10 code (reference notes 2.3-2.6):

* Encoder E (Fig. 4): (32) 3c1 - (64) 2c2 - (128) 2c2 - (256) 2c2 - (512) 2c2; a 96x96 image gives phi(x) of
  6x6x512, each entry seeing an 18x18 patch. Ablation (h) uses 3x3 kernels in E2..E5.
* Decoder D = D1..D5: (256) 3rc2 - (128) 3rc2 - (64) 3rc2 - (32) 3rc2 - (3) 3c1, "rc" = bilinear x2 resize then a
  3x3 convolution. BN (decay 0.975, eps 1e-3 as coded) after every layer of E and D but the last.
* Damage (Sec. 4.1, Eq. 1): Omega in {0,1}^{MxN} (1 = kept) drawn per image with P(drop) = theta and shared by
  all L channels; a dropped entry is replaced by u * phi(x) with u the 3x3 uniform filter (Sec. 4.4; stride 1,
  SAME, averages only over positions inside the map, as TF's avg_pool does), see :func:`damage`.
* Repair block (Fig. 5): BN -> concat(drop mask) -> 3x3 conv + BN + lrelu -> 3x3 conv -> gated by the drop mask
  and added to the block's input, so that only dropped positions change (Eq. 1, 2). R1 sits on phi (512), R2..R5
  after D1..D4 (256, 128, 64, 32 channels), the mask nearest-upsampled to each resolution.
* Discriminator C (Sec. 4.4): AlexNet up to conv5 (SAME padding, groups of 2 in conv2/4/5, LRN after pool1/2),
  no pool5, BN only after conv5 (no gamma, as coded), ReLU; mask head = one 3x3 conv to 1 channel on the 6x6 conv5
  map (C^mask, one logit per encoder position); class head = fc6 (4096, a 6x6 convolution over conv5), dropout
  0.5, then the output layer ("we remove the second fully-connected layer"), one logit for C^class.

Where this port follows the paper rather than the code (each has a switch; see artifacts_tf/README.md):
* leaky-ReLU slope 0.1 ("f(x) = max(x/10, x)"); the code uses 0.2 (``lrelu_slope``).
* the last decoder layer is followed by the leaky ReLU like every other layer of D ("All convolutional layers in E
  and D are followed by the leaky-ReLU"); the code uses tanh (``ae_output="tanh"``).
* the repair block starts with batch normalisation (Fig. 5); the code never applies that first BN
  (``repair_input_bn=False``).
* no BN in fc6 (paper: BN only after conv5); the code normalises fc6 too (``fc6_bn=True``).
* C^class is one sigmoid logit (Eq. 4 uses a probability); the code's 2-way softmax is the same function of the
  logit difference.

Where the paper is silent the code is followed: He (fan_avg, truncated normal) init in E, D, R; Glorot uniform and
bias 0.1 in C; L2 weight decay 5e-5 (TF1 slim scale, i.e. 2.5e-5 * sum w^2 in Keras terms); C rescales its [-1, 1]
input to 0..255 minus the ImageNet mean.
"""
from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

IMAGE_SIZE = 96            # STL-10 (and the Fashion-MNIST stand-in, resized)
IMAGENET_PRETRAIN_SIZE = 128  # Sec. 4.4: random 128x128 crops of ImageNet for the unsupervised stage
IMAGENET_TRANSFER_SIZE = 227  # standard AlexNet input for Tables 3-5
ENCODER_FILTERS = (32, 64, 128, 256, 512)
DECODER_FILTERS = (256, 128, 64, 32)
BN_MOMENTUM = 0.975
BN_EPSILON = 1e-3
L2 = 2.5e-5                # slim l2_regularizer(5e-5) = 5e-5 * sum(w^2) / 2
IMAGENET_MEAN = (123.68, 116.78, 103.94)
PAPER_LRELU_SLOPE = 0.1
CODE_LRELU_SLOPE = 0.2


def _he():
    return keras.initializers.VarianceScaling(2.0, mode="fan_avg", distribution="truncated_normal")


def _reg():
    return keras.regularizers.L2(L2)


def _conv(filters, kernel, strides=1, name=None, use_bias=True, **kw):
    return layers.Conv2D(filters, kernel, strides=strides, padding="same", kernel_initializer=_he(),
                         kernel_regularizer=_reg(), use_bias=use_bias, name=name, **kw)


def _bn(name, scale=True):
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, scale=scale, name=name)


@keras.saving.register_keras_serializable(package="artifacts_tf")
class MaxLeakyReLU(layers.Layer):
    """f(x) = max(x, slope * x), the paper's leaky ReLU "max(x/10, x)" (Sec. 4.4) written as in the paper; for
    0 <= slope <= 1 the same function as ``keras.layers.LeakyReLU`` (only the subgradient at 0 may differ). See
    :data:`LRELU_IMPL`."""

    def __init__(self, negative_slope: float = PAPER_LRELU_SLOPE, **kwargs):
        super().__init__(**kwargs)
        self.negative_slope = float(negative_slope)

    def call(self, x):
        return keras.ops.maximum(x, keras.ops.cast(self.negative_slope, x.dtype) * x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


# How E, D and R compute the leaky ReLU (same function, no weights): "layer" = keras.layers.LeakyReLU (TF's
# LeakyRelu op, whose gradient op makes Grappler's remapper fail on the whole step: "Mutation::Apply error ...
# LeakyReluGrad"), "maximum" = MaxLeakyReLU. Read when a network is built; benchmarks/bench_artifacts.py --lrelu
# times both (docs/artifacts-notes.md, "Speed").
LRELU_IMPLS = ("layer", "maximum")
LRELU_IMPL = "layer"


def leaky_relu(slope: float, name: str | None = None) -> layers.Layer:
    """The leaky ReLU of E, D and R with ``slope`` (paper 0.1), implemented as :data:`LRELU_IMPL` says."""
    if LRELU_IMPL == "maximum":
        return MaxLeakyReLU(slope, name=name)
    if LRELU_IMPL == "layer":
        return layers.LeakyReLU(negative_slope=slope, name=name)
    raise ValueError(f"LRELU_IMPL must be one of {LRELU_IMPLS}, got {LRELU_IMPL!r}")


# ------------------------------------------------------------------------------------------- autoencoder
def build_encoder(image_size: int = IMAGE_SIZE, channels: int = 3, encoder_kernel: int = 2,
                  lrelu_slope: float = PAPER_LRELU_SLOPE, name: str = "encoder") -> keras.Model:
    """E (Sec. 4.4, Fig. 4): 3x3 s1 conv to 32, then four stride-2 convs (2x2 kernels; 3x3 for ablation (h))."""
    x = keras.Input((image_size, image_size, channels), name="images")
    h = x
    for i, f in enumerate(ENCODER_FILTERS):
        k, s = (3, 1) if i == 0 else (encoder_kernel, 2)
        h = _conv(f, k, s, name=f"e{i + 1}_conv", use_bias=False)(h)
        h = _bn(f"e{i + 1}_bn")(h)
        h = leaky_relu(lrelu_slope, f"e{i + 1}_lrelu")(h)
    return keras.Model(x, h, name=name)


def build_decoder_block(index: int, in_shape: tuple, lrelu_slope: float = PAPER_LRELU_SLOPE,
                        ae_output: str = "lrelu", out_channels: int = 3, prefix: str = "d") -> keras.Model:
    """D_index (1-based). D1..D4: bilinear x2 resize, 3x3 conv, BN, lrelu; D5: 3x3 conv to RGB (no BN)."""
    x = keras.Input(in_shape)
    if index <= 4:
        h = layers.UpSampling2D(2, interpolation="bilinear", name=f"{prefix}{index}_resize")(x)
        h = _conv(DECODER_FILTERS[index - 1], 3, name=f"{prefix}{index}_conv", use_bias=False)(h)
        h = _bn(f"{prefix}{index}_bn")(h)
        h = leaky_relu(lrelu_slope, f"{prefix}{index}_lrelu")(h)
    else:
        h = _conv(out_channels, 3, name=f"{prefix}5_conv")(x)
        if ae_output == "tanh":
            h = layers.Activation("tanh", name=f"{prefix}5_tanh")(h)
        elif ae_output == "lrelu":
            h = leaky_relu(lrelu_slope, f"{prefix}5_lrelu")(h)
        else:
            raise ValueError(f"ae_output must be 'lrelu' (paper) or 'tanh' (code), got {ae_output!r}")
    return keras.Model(x, h, name=f"{prefix}{index}")


def decoder_input_shapes(image_size: int = IMAGE_SIZE) -> list[tuple]:
    """Input shapes of D1..D5 for a square image of ``image_size`` (the grid side is image_size / 16)."""
    g = image_size // 16
    chans = (ENCODER_FILTERS[-1],) + DECODER_FILTERS
    return [(g * 2 ** i, g * 2 ** i, chans[i]) for i in range(5)]


class Autoencoder(keras.Model):
    """{E, D1..D5}, pre-trained with Eq. 3 and then frozen (Sec. 4.2). ``call(x)`` = D(E(x))."""

    def __init__(self, image_size: int = IMAGE_SIZE, channels: int = 3, encoder_kernel: int = 2,
                 lrelu_slope: float = PAPER_LRELU_SLOPE, ae_output: str = "lrelu", **kwargs):
        super().__init__(**kwargs)
        if image_size % 16:
            raise ValueError(f"image_size must be a multiple of 16 (four stride-2 layers), got {image_size}")
        self.image_size, self.channels = int(image_size), int(channels)
        self.encoder_kernel = int(encoder_kernel)
        self.encoder = build_encoder(image_size, channels, encoder_kernel, lrelu_slope)
        self.decoder_blocks = [build_decoder_block(i + 1, s, lrelu_slope, ae_output, channels)
                               for i, s in enumerate(decoder_input_shapes(image_size))]

    @property
    def grid(self) -> int:
        return self.image_size // 16

    def decode(self, phi, training: bool = False):
        h = phi
        for block in self.decoder_blocks:
            h = block(h, training=training)
        return h

    def call(self, x, training: bool = False):
        return self.decode(self.encoder(x, training=training), training=training)


# ------------------------------------------------------------------------------------------------ damage
def sample_keep_mask(batch_size, grid: int, drop_rate, seed=None):
    """Omega (B, M, N, 1) float32: 1 = kept, 0 = dropped, i.i.d. with P(drop) = theta (Sec. 4.1)."""
    u = keras.random.uniform((batch_size, grid, grid, 1), seed=seed)
    return keras.ops.cast(u >= drop_rate, "float32")


def uniform_average(phi, kernel: int = 3):
    """u * phi(x): the 3x3 (stride 1, SAME) average of Sec. 4.4; border averages use only in-map positions."""
    return tf.nn.avg_pool2d(phi, kernel, 1, "SAME")


def damage(phi, keep_mask, kernel: int = 3):
    """phi_hat(x) = Omega * phi(x) + (1 - Omega) * (u * phi(x))  (Sec. 3 item 2 and Eq. 1); Omega is
    broadcast over the L channels."""
    keep = keras.ops.cast(keep_mask, phi.dtype)
    return keep * phi + (1.0 - keep) * uniform_average(phi, kernel)


def upsample_mask(mask, size: int):
    """U_i(Omega): nearest-neighbour upsampling of a (B, M, N, 1) mask to ``size`` x ``size`` (Eq. 2)."""
    return tf.image.resize(mask, (size, size), method="nearest")


# ------------------------------------------------------------------------------------------------ repair
@keras.saving.register_keras_serializable(package="artifacts_tf")
class RepairBlock(layers.Layer):
    """One repair layer R_i (Fig. 5), residual and gated: ``h + (1 - Omega) * r(h, 1 - Omega)``.

    r = conv3x3(lrelu(BN(conv3x3(concat(BN(h), drop_mask))))). ``gated=False`` is ablation (i) (the residual is
    added everywhere); ``input_bn=False`` is the authors' code (no BN before the concatenation).
    """

    def __init__(self, depth: int, gated: bool = True, input_bn: bool = True,
                 lrelu_slope: float = PAPER_LRELU_SLOPE, **kwargs):
        super().__init__(**kwargs)
        self.depth, self.gated, self.input_bn, self.lrelu_slope = int(depth), bool(gated), bool(input_bn), lrelu_slope
        self.bn_in = _bn("bn_in") if input_bn else None
        self.conv1 = _conv(depth, 3, name="conv1", use_bias=False)
        self.bn1 = _bn("bn1")
        self.act = leaky_relu(lrelu_slope)
        self.conv2 = layers.Conv2D(depth, 3, padding="same", kernel_initializer=_he(), name="conv2")

    def build(self, input_shape):
        h_shape = tuple(input_shape[0])
        if self.bn_in is not None:
            self.bn_in.build(h_shape)
        cat = h_shape[:-1] + (h_shape[-1] + 1,)
        self.conv1.build(cat)
        self.bn1.build(h_shape[:-1] + (self.depth,))
        self.conv2.build(h_shape[:-1] + (self.depth,))
        self.built = True

    def residual(self, h, drop_mask, training=False):
        z = self.bn_in(h, training=training) if self.bn_in is not None else h
        z = keras.ops.concatenate([z, keras.ops.cast(drop_mask, z.dtype)], axis=-1)
        z = self.act(self.bn1(self.conv1(z), training=training))
        return self.conv2(z)

    def call(self, inputs, training=False):
        h, drop_mask = inputs
        r = self.residual(h, drop_mask, training=training)
        if self.gated:
            r = keras.ops.cast(drop_mask, r.dtype) * r
        return h + r

    def get_config(self):
        return {**super().get_config(), "depth": self.depth, "gated": self.gated, "input_bn": self.input_bn,
                "lrelu_slope": self.lrelu_slope}


class RepairNetwork(keras.Model):
    """R = {R1..R5} inside the frozen decoder (Eq. 1, 2), or all five before D1 (``placement="local"``, (b))."""

    def __init__(self, image_size: int = IMAGE_SIZE, placement: str = "distributed", gated: bool = True,
                 input_bn: bool = True, lrelu_slope: float = PAPER_LRELU_SLOPE, **kwargs):
        super().__init__(**kwargs)
        if placement not in ("distributed", "local"):
            raise ValueError(f"placement must be 'distributed' or 'local', got {placement!r}")
        self.placement, self.gated = placement, bool(gated)
        shapes = decoder_input_shapes(image_size)
        depths = [s[-1] for s in shapes] if placement == "distributed" else [shapes[0][-1]] * 5
        self.blocks = [RepairBlock(d, gated, input_bn, lrelu_slope, name=f"r{i + 1}") for i, d in enumerate(depths)]
        self.shapes = shapes

    def repair_decode(self, phi_hat, keep_mask, decoder_blocks, training=False):
        """D-hat(phi_hat) = D5(R5(D4(...R2(D1(R1(phi_hat)))))), each R_i gated by the upsampled drop mask."""
        drop = 1.0 - keras.ops.cast(keep_mask, "float32")
        h = phi_hat
        if self.placement == "local":
            for block in self.blocks:
                h = block([h, drop], training=training)
            for d in decoder_blocks:
                h = d(h, training=False)
            return h
        for i, d in enumerate(decoder_blocks):
            m = drop if i == 0 else upsample_mask(drop, self.shapes[i][0])
            h = self.blocks[i]([h, m], training=training)
            h = d(h, training=False)
        return h


# ------------------------------------------------------------------------------------------ discriminator
@keras.saving.register_keras_serializable(package="artifacts_tf")
class LRN(layers.Layer):
    """AlexNet local response normalisation (depth radius 2, alpha 2e-5, beta 0.75, as coded); float32 inside."""

    def call(self, x):
        y = tf.nn.local_response_normalization(tf.cast(x, tf.float32), depth_radius=2, bias=1.0, alpha=2e-5,
                                               beta=0.75)
        return tf.cast(y, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="artifacts_tf")
class ImageNetRescale(layers.Layer):
    """[-1, 1] -> 0..255 minus the ImageNet RGB mean (code: x * 127.5 - (mean - 127.5)); gray is replicated."""

    def call(self, x):
        if x.shape[-1] == 1:
            x = keras.ops.repeat(x, 3, axis=-1)
        mean = keras.ops.convert_to_tensor([m - 127.5 for m in IMAGENET_MEAN], x.dtype)
        return x * 127.5 - mean

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (3,)


@keras.saving.register_keras_serializable(package="artifacts_tf")
class GroupedConv2D(layers.Layer):
    """AlexNet's two-group convolution as split -> two convolutions -> concat (what the original does on two
    GPUs). Same function and parameter count as ``Conv2D(groups=2)``, whose CPU kernel in Keras 3 goes through a
    freshly XLA-compiled function at every eager call."""

    def __init__(self, filters, kernel, groups=2, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel, self.groups, self.use_bias = int(filters), kernel, int(groups), bool(use_bias)
        if self.filters % self.groups:
            raise ValueError(f"filters {filters} not divisible by groups {groups}")
        self.convs = [layers.Conv2D(self.filters // self.groups, kernel, padding="same",
                                    kernel_initializer="glorot_uniform", use_bias=use_bias,
                                    bias_initializer=keras.initializers.Constant(0.1), kernel_regularizer=_reg(),
                                    name=f"group{g}") for g in range(self.groups)]

    def build(self, input_shape):
        c = int(input_shape[-1])
        if c % self.groups:
            raise ValueError(f"input channels {c} not divisible by groups {self.groups}")
        for conv in self.convs:
            conv.build(tuple(input_shape[:-1]) + (c // self.groups,))
        self.built = True

    def call(self, x):
        parts = keras.ops.split(x, self.groups, axis=-1)
        return keras.ops.concatenate([conv(p) for conv, p in zip(self.convs, parts)], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel": self.kernel, "groups": self.groups,
                "use_bias": self.use_bias}


def _aconv(filters, kernel, strides=1, groups=1, padding="same", name=None, use_bias=True):
    if groups > 1:
        return GroupedConv2D(filters, kernel, groups, use_bias=use_bias, name=name)
    return layers.Conv2D(filters, kernel, strides=strides, padding=padding,
                         kernel_initializer="glorot_uniform", bias_initializer=keras.initializers.Constant(0.1),
                         kernel_regularizer=_reg(), use_bias=use_bias, name=name)


def build_alexnet_trunk(image_size: int = IMAGE_SIZE, channels: int = 3, padding: str = "same",
                        name: str = "alexnet_trunk", conv5_bias: bool = False) -> keras.Model:
    """AlexNet conv1..conv5 (Krizhevsky et al.). Outputs ``[conv1, ..., conv4, conv5_pre]``: conv1-4 after ReLU
    (and pool/LRN for 1, 2), conv5 *before* its BN and ReLU (conv5 has no bias, as coded; BN is applied by
    the discriminator, and removed for transfer, Sec. 4.4). ``padding="valid"`` with 227x227 inputs is the
    standard ImageNet AlexNet (conv2 pads 2, conv3-5 pad 1, i.e. SAME), used for Tables 3-5. ``conv5_bias``: the
    form of :func:`fold_conv5_bn` (conv5 with the BN folded into its kernel and bias)."""
    x = keras.Input((image_size, image_size, channels), name="images")
    h = ImageNetRescale(name="rescale")(x)
    pool_pad = padding
    c1 = layers.ReLU(name="conv1_relu")(_aconv(96, 11, 4, padding=padding, name="conv1")(h))
    h = LRN(name="lrn1")(layers.MaxPooling2D(3, 2, padding=pool_pad, name="pool1")(c1))
    c2 = layers.ReLU(name="conv2_relu")(_aconv(256, 5, groups=2, name="conv2")(h))
    h = LRN(name="lrn2")(layers.MaxPooling2D(3, 2, padding=pool_pad, name="pool2")(c2))
    c3 = layers.ReLU(name="conv3_relu")(_aconv(384, 3, name="conv3")(h))
    c4 = layers.ReLU(name="conv4_relu")(_aconv(384, 3, groups=2, name="conv4")(c3))
    c5 = _aconv(256, 3, groups=2, name="conv5", use_bias=conv5_bias)(c4)
    return keras.Model(x, [c1, c2, c3, c4, c5], name=name)


class Discriminator(keras.Model):
    """C (Sec. 4.3, 4.4): trunk + BN(conv5, no gamma) + ReLU, no pool5; heads C^class (1 logit) and C^mask.

    ``call(x)`` returns ``{"class_logit": (B,), "mask_logits": (B, M, N), "conv5": (B, M, N, 256)}``.
    """

    def __init__(self, image_size: int = IMAGE_SIZE, channels: int = 3, fc6_bn: bool = False,
                 mask_head: bool = True, dropout_rate: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.image_size = int(image_size)
        self.trunk = build_alexnet_trunk(image_size, channels)
        grid = self.trunk.output_shape[-1][1]
        self.grid = int(grid)
        self.conv5_bn = _bn("conv5_bn", scale=False)
        self.conv5_relu = layers.ReLU(name="conv5_relu")
        self.fc6 = _aconv(4096, grid, padding="valid", name="fc6", use_bias=not fc6_bn)
        self.fc6_bn = _bn("fc6_bn", scale=False) if fc6_bn else None
        self.fc6_relu = layers.ReLU(name="fc6_relu")
        self.dropout = layers.Dropout(dropout_rate, name="fc6_dropout")
        self.class_out = _aconv(1, 1, padding="valid", name="class_logit")
        self.has_mask_head = bool(mask_head)
        self.mask_out = _aconv(1, 3, name="mask_logits") if mask_head else None

    def features(self, x, training=False):
        """conv5 after BN and ReLU (the representation the heads see)."""
        return self.conv5_relu(self.conv5_bn(self.trunk(x, training=training)[-1], training=training))

    def call(self, x, training=False):
        c5 = self.features(x, training=training)
        h = self.fc6(c5)
        if self.fc6_bn is not None:
            h = self.fc6_bn(h, training=training)
        h = self.dropout(self.fc6_relu(h), training=training)
        out = {"class_logit": keras.ops.reshape(self.class_out(h), (-1,)), "conv5": c5}
        if self.mask_out is not None:
            out["mask_logits"] = keras.ops.squeeze(self.mask_out(c5), -1)
        return out

    def head_variables(self, which: str) -> list:
        """Trainable variables of one head (``"mask"``) so that a switched-off head is not handed to Adam."""
        if which == "mask":
            return list(self.mask_out.trainable_variables) if self.mask_out is not None else []
        raise ValueError(which)


# ------------------------------------------------------------------------------------------- GAN (ablation l)
class GANGenerator(keras.Model):
    """Ablation (l): a standard GAN generator, z ~ N(0, I) (128-d) -> dense to phi's shape (6x6x512, BN, lrelu)
    -> a fresh, trainable decoder with the autoencoder decoder's architecture (D1..D5)."""

    def __init__(self, image_size: int = IMAGE_SIZE, channels: int = 3, z_dim: int = 128,
                 lrelu_slope: float = PAPER_LRELU_SLOPE, ae_output: str = "lrelu", **kwargs):
        super().__init__(**kwargs)
        self.z_dim = int(z_dim)
        shapes = decoder_input_shapes(image_size)
        self.phi_shape = shapes[0]
        g, _, c = shapes[0]
        self.project = layers.Dense(g * g * c, kernel_initializer=_he(), use_bias=False, name="g_project")
        self.project_bn = _bn("g_project_bn")
        self.act = leaky_relu(lrelu_slope)
        self.blocks = [build_decoder_block(i + 1, s, lrelu_slope, ae_output, channels, prefix="g")
                       for i, s in enumerate(shapes)]

    def call(self, z, training=False):
        h = keras.ops.reshape(self.project(z), (-1, *self.phi_shape))
        h = self.act(self.project_bn(h, training=training))
        for b in self.blocks:
            h = b(h, training=training)
        return h


# --------------------------------------------------------------------------------------------- transfer
def transfer_features(trunk: keras.Model, conv5_bn=None):
    """A functional model images -> conv5 features for transfer: ReLU(conv5) without BN (paper, Sec. 4.4:
    "removed in transfer experiments"), or ReLU(BN(conv5)) in inference mode when the discriminator's BN
    layer ``conv5_bn`` is given (the code keeps it)."""
    x = keras.Input(trunk.input_shape[1:], name="images")
    c5 = trunk(x, training=False)[-1]
    if conv5_bn is not None:
        c5 = conv5_bn(c5, training=False)
    return keras.Model(x, layers.ReLU(name="conv5_transfer_relu")(c5), name="transfer_features")


def fold_conv5_bn(trunk: keras.Model, conv5_bn, name: str = "folded_trunk") -> keras.Model:
    """A copy of ``trunk`` whose conv5 absorbs the discriminator's conv5 BN in inference mode: conv5 has no bias
    and the BN no gamma (as coded), so BN(conv5(x)) = conv5(x) * s + b with s = 1 / sqrt(moving_var + eps) and
    b = beta - moving_mean * s per channel; the copy's conv5 gets kernel * s and bias b (same outputs, the
    kernels of conv1..conv4 copied unchanged). Dropping the BN instead (paper Sec. 4.4, "removed in transfer
    experiments") leaves conv5 without any bias: its ReLU then cuts at 0 instead of at the learned thresholds."""
    import numpy as np

    size, channels = int(trunk.input_shape[1]), int(trunk.input_shape[-1])
    pad = trunk.get_layer("conv1").padding
    out = build_alexnet_trunk(size, channels, padding=pad, name=name, conv5_bias=True)
    for layer in ("conv1", "conv2", "conv3", "conv4"):
        out.get_layer(layer).set_weights(trunk.get_layer(layer).get_weights())
    var = np.asarray(conv5_bn.moving_variance, np.float64)
    s = 1.0 / np.sqrt(var + conv5_bn.epsilon)
    if conv5_bn.gamma is not None:
        s = s * np.asarray(conv5_bn.gamma, np.float64)
    beta = np.asarray(conv5_bn.beta, np.float64) if conv5_bn.beta is not None else 0.0
    b = beta - np.asarray(conv5_bn.moving_mean, np.float64) * s
    src, dst = trunk.get_layer("conv5"), out.get_layer("conv5")
    width = dst.filters // dst.groups
    for g, (cs, cd) in enumerate(zip(src.convs, dst.convs)):
        part = slice(g * width, (g + 1) * width)
        cd.kernel.assign((np.asarray(cs.kernel, np.float64) * s[part]).astype(np.float32))
        cd.bias.assign(b[part].astype(np.float32))
    return out


def build_fc_head(in_shape: tuple, num_classes: int, seed: int | None = None, name: str = "fc_head") -> keras.Model:
    """The fully connected layers of AlexNet, re-initialised for transfer (Sec. 5.1): fc6 4096 (a convolution
    over the whole feature map, like the discriminator's), dropout 0.5, fc7 4096, dropout 0.5, fc8 to the
    classes (logits)."""
    init = lambda i: keras.initializers.GlorotUniform(None if seed is None else seed + i)
    f = keras.Input(in_shape, name="features")
    h = layers.Flatten(name="flatten")(f)
    h = layers.Dense(4096, activation="relu", kernel_initializer=init(0), name="fc6")(h)
    h = layers.Dropout(0.5, name="drop6")(h)
    h = layers.Dense(4096, activation="relu", kernel_initializer=init(1), name="fc7")(h)
    h = layers.Dropout(0.5, name="drop7")(h)
    out = layers.Dense(num_classes, kernel_initializer=init(2), name="fc8", dtype="float32")(h)
    return keras.Model(f, out, name=name)


def build_imagenet_alexnet(num_classes: int = 1000, pool5: bool = True) -> keras.Model:
    """The 227x227 ImageNet AlexNet (Tables 3-5): the same conv layers (weights load by name from a 96x96
    discriminator trunk) with VALID conv1/pools, pool5 and the fc6-fc7-fc8 head."""
    trunk = build_alexnet_trunk(IMAGENET_TRANSFER_SIZE, 3, padding="valid", name="alexnet_trunk")
    x = keras.Input((IMAGENET_TRANSFER_SIZE, IMAGENET_TRANSFER_SIZE, 3), name="images")
    c5 = layers.ReLU(name="conv5_relu")(trunk(x)[-1])
    if pool5:
        c5 = layers.MaxPooling2D(3, 2, name="pool5")(c5)
    head = build_fc_head(tuple(c5.shape[1:]), num_classes)
    return keras.Model(x, head(c5), name="alexnet_imagenet")
