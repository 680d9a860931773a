"""Networks of OLED (Jewell, Khazaie, Mohsenzadeh, WACV 2022): the Reconstructor R and the mask generator MG.

One builder per input kind; layer sizes are those of the authors' code (reference notes, section 4.2), the
block structure is the paper's (Sections 3.3 and 3.4):

* ``"mnist"``  28x28x1 (MNIST, Fashion-MNIST, mnist5k), latent 64.
* ``"cifar"``  32x32x3 (CIFAR-10, image folders), latent 256.
* ``"ucsd"``   30x30x1 patches of UCSD Ped2 frames, latent 128.

Building blocks (authors' code): a *conv block* is Conv2D(5x5, SAME) -> BatchNorm -> activation; an *up block*
is Conv2D(5x5, stride 1, SAME) -> nearest UpSampling2D -> BatchNorm -> activation (convolution before the
upsampling). All kernels are 5x5. No max pooling anywhere (paper 3.3, 3.4.1).

Where this port follows the paper rather than the code (documented in oled_tf/README.md):
* R's output is clipped to [-1, 1] after the last convolution (paper 3.3). The code's LeakyReLU(0.2) output
  activation is kept before the clip.
* MG uses batch norm in *every* block (paper 3.4.1: "batch normalization and Leaky ReLU are used in each
  convolutional block, with the exception of the last convolution block that uses ReLU"); the code leaves BN out
  of MG's first convolution. The last block is conv -> BN -> ReLU (the exception concerns the activation only;
  our reading).
* The UCSD decoder outputs one channel for one-channel patches (the code outputs three channels and compares
  them with the gray input by broadcasting, a quirk listed in the notes 4.5.4).
* R's decoder has BN in every block (paper 3.3: "batch normalization are used in each convolutional block");
  the code's decoders have none (``use_bn=False`` in every decoder block of the three scripts).

``architecture="code"`` (``--code_defaults``) builds the authors' networks instead: MG with BN only in its
second block, a decoder without BN and without the clip, three output channels on UCSD.

Leaky-ReLU slopes as coded: 0.2 in R, 0.3 (the TF 2.3 Keras default, written out here) in MG.
Initialisers as coded: GlorotNormal(seed) for convolutions on MNIST and CIFAR, GlorotUniform on UCSD, Keras
defaults for Dense layers.
"""
from __future__ import annotations

import keras
from keras import layers

from oled_tf.config import ARCHITECTURES, MASK_GRADIENTS

INPUT_SHAPES = {"mnist": (28, 28, 1), "cifar": (32, 32, 3), "ucsd": (30, 30, 1)}
LATENT_DIMS = {"mnist": 64, "cifar": 256, "ucsd": 128}
R_SLOPE = 0.2  # tf.nn.leaky_relu slope used in the code's reconstructor
MG_SLOPE = 0.3  # Keras LeakyReLU() default in TF 2.3, used by the code's mask module


@keras.saving.register_keras_serializable(package="oled_tf")
class Clip(layers.Layer):
    """Clips its input to [-1, 1] (paper 3.3: "values after the last convolution layer are clipped")."""

    def call(self, x):
        return keras.ops.clip(x, -1.0, 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape


def output_dtype() -> str:
    """Dtype of the networks' outputs and of T: float32 (also under mixed precision), float64 when the global
    Keras dtype policy is float64 (the float64 reference of the gradient checks)."""
    return "float64" if keras.config.dtype_policy().name == "float64" else "float32"


def _check_kind(kind: str) -> None:
    if kind not in INPUT_SHAPES:
        raise ValueError(f"unknown OLED input kind {kind!r}; expected one of {sorted(INPUT_SHAPES)}")


def _check_architecture(architecture: str) -> None:
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown OLED architecture {architecture!r}; expected one of {ARCHITECTURES}")


def _init(kind: str, seed: int):
    if kind == "ucsd":
        return keras.initializers.GlorotUniform(seed=seed)
    return keras.initializers.GlorotNormal(seed=seed)


class _Blocks:
    """Creates conv / up blocks with unique, readable names and per-layer initialiser seeds."""

    def __init__(self, prefix: str, kind: str, seed: int):
        self.prefix, self.kind, self.seed, self.n = prefix, kind, seed, 0

    def _name(self, what: str) -> str:
        self.n += 1
        return f"{self.prefix}_{what}{self.n}"

    def _act(self, h, act: str, slope: float, name: str):
        if act == "lrelu":
            return layers.LeakyReLU(negative_slope=slope, name=name + "_lrelu")(h)
        if act == "relu":
            return layers.ReLU(name=name + "_relu")(h)
        raise ValueError(act)

    def conv(self, h, filters: int, strides: int = 1, act: str = "lrelu", slope: float = R_SLOPE, bn: bool = True):
        name = self._name("conv")
        h = layers.Conv2D(filters, 5, strides=strides, padding="same", kernel_initializer=_init(self.kind, self.seed + self.n),
                          name=name)(h)
        if bn:
            h = layers.BatchNormalization(name=name + "_bn")(h)
        return self._act(h, act, slope, name)

    def up(self, h, filters: int, factor: int = 2, act: str = "lrelu", slope: float = R_SLOPE, bn: bool = True):
        name = self._name("up")
        h = layers.Conv2D(filters, 5, strides=1, padding="same", kernel_initializer=_init(self.kind, self.seed + self.n),
                          name=name)(h)
        if factor > 1:
            h = layers.UpSampling2D(factor, interpolation="nearest", name=name + "_upsample")(h)
        if bn:
            h = layers.BatchNormalization(name=name + "_bn")(h)
        return self._act(h, act, slope, name)


def build_encoder(kind: str, seed: int = 17) -> keras.Model:
    """Encoder of R: strided conv blocks, flatten, linear Dense bottleneck (paper 3.3: dense bottleneck)."""
    _check_kind(kind)
    x = keras.Input(INPUT_SHAPES[kind], name="images")
    b = _Blocks("enc", kind, seed)
    if kind == "mnist":
        h = b.conv(x, 64, 2)      # 14x14
        h = b.conv(h, 96, 2)      # 7x7
        h = b.conv(h, 128, 1)     # 7x7x128
    elif kind == "cifar":
        h = b.conv(x, 128, 2)     # 16
        h = b.conv(h, 256, 2)     # 8
        h = b.conv(h, 512, 2)     # 4
        h = b.conv(h, 768, 1)     # 4x4x768
    else:  # ucsd
        h = b.conv(x, 32, 2)      # 15
        h = b.conv(h, 64, 1)
        h = b.conv(h, 128, 1)     # 15x15x128
    h = layers.Flatten(name="enc_flatten")(h)
    z = layers.Dense(LATENT_DIMS[kind], name="enc_latent")(h)
    return keras.Model(x, z, name=f"encoder_{kind}")


def build_decoder(kind: str, seed: int = 17, architecture: str = "paper", decoder_bn: bool | None = None,
                  output_clip: bool | None = None) -> keras.Model:
    """Decoder of R: Dense, reshape, conv/up blocks, last conv with LeakyReLU(0.2), clipped to [-1, 1].

    ``architecture="code"``: the authors' decoder, every block without BN (``use_bn=False`` in all three
    scripts), no clip, and three output channels on UCSD (compared with the gray patch by broadcasting).

    ``decoder_bn`` / ``output_clip`` (None = as ``architecture``) switch the decoder's BN and the final clip
    separately (issue 18 cause 1: the clip, not OLED's game, cost the paper-text decoder most of its AUROC)."""
    _check_kind(kind)
    _check_architecture(architecture)
    paper = architecture == "paper"
    bn = paper if decoder_bn is None else bool(decoder_bn)
    clip = paper if output_clip is None else bool(output_clip)
    z = keras.Input((LATENT_DIMS[kind],), name="latent")
    b = _Blocks("dec", kind, seed + 100)
    channels = INPUT_SHAPES[kind][-1] if paper or kind != "ucsd" else 3
    if kind == "mnist":
        h = layers.Dense(7 * 7 * 128, name="dec_dense")(z)
        h = layers.Reshape((7, 7, 128), name="dec_reshape")(h)
        h = b.up(h, 128, 2, bn=bn)       # 14
        h = b.up(h, 96, 2, bn=bn)        # 28
        h = b.up(h, 64, 1, bn=bn)
    elif kind == "cifar":
        h = layers.Dense(4 * 4 * 128, name="dec_dense")(z)
        h = layers.Reshape((4, 4, 128), name="dec_reshape")(h)
        h = b.up(h, 768, 2, bn=bn)       # 8
        h = b.up(h, 512, 2, bn=bn)       # 16
        h = b.up(h, 256, 2, bn=bn)       # 32
        h = b.conv(h, 128, 1, bn=bn)
    else:  # ucsd
        h = layers.Dense(15 * 15 * 32, name="dec_dense")(z)
        h = layers.Reshape((15, 15, 32), name="dec_reshape")(h)
        h = b.conv(h, 256, 1, bn=bn)
        h = b.up(h, 128, 2, bn=bn)       # 30
        h = b.conv(h, 64, 1, bn=bn)
    # Last convolution: no BN, LeakyReLU(0.2) as coded, then the paper's clip to [-1, 1] (not in the code).
    h = layers.Conv2D(channels, 5, padding="same", kernel_initializer=_init(kind, seed + 199), name="dec_out")(h)
    h = layers.LeakyReLU(negative_slope=R_SLOPE, name="dec_out_lrelu")(h)
    out = (Clip(name="dec_clip", dtype=output_dtype()) if clip
           else layers.Activation("linear", dtype=output_dtype(), name="dec_output"))(h)
    return keras.Model(z, out, name=f"decoder_{kind}")


def build_reconstructor(kind: str, seed: int = 17, architecture: str = "paper", decoder_bn: bool | None = None,
                        output_clip: bool | None = None) -> keras.Model:
    """R = decoder(encoder(x)); input and output in [-1, 1], shape ``INPUT_SHAPES[kind]`` (see
    :func:`build_decoder` for ``architecture="code"``, ``decoder_bn`` and ``output_clip``). The encoder is the
    same in both."""
    enc, dec = build_encoder(kind, seed), build_decoder(kind, seed, architecture, decoder_bn, output_clip)
    x = keras.Input(INPUT_SHAPES[kind], name="images")
    return keras.Model(x, dec(enc(x)), name=f"reconstructor_{kind}")


def build_mask_generator(kind: str, seed: int = 17, architecture: str = "paper") -> keras.Model:
    """MG: small conv auto-encoder with a spatial bottleneck and a ReLU, 1-channel activation map A >= 0.

    ``architecture="paper"``: BN in every block, the last one conv -> BN -> ReLU (paper 3.4.1, our reading).
    ``architecture="code"``: the authors' mask model, BN only in the second convolution block (the 48-filter
    one), none in the first, the up blocks or before the last ReLU (all three scripts)."""
    _check_kind(kind)
    _check_architecture(architecture)
    bn = architecture == "paper"
    x = keras.Input(INPUT_SHAPES[kind], name="images")
    b = _Blocks("mg", kind, seed + 200)
    s = MG_SLOPE
    if kind == "mnist":
        h = b.conv(x, 32, 2, slope=s, bn=bn)   # 14
        h = b.conv(h, 48, 2, slope=s)          # 7 (spatial bottleneck 7x7x48)
        h = b.up(h, 48, 2, slope=s, bn=bn)     # 14
        h = b.up(h, 32, 2, slope=s, bn=bn)     # 28
        a = b.up(h, 1, 1, act="relu", bn=bn)
    elif kind == "cifar":
        h = b.conv(x, 32, 2, slope=s, bn=bn)   # 16
        h = b.conv(h, 48, 2, slope=s)          # 8
        h = b.conv(h, 64, 2, slope=s, bn=bn)   # 4
        h = b.up(h, 64, 2, slope=s, bn=bn)     # 8
        h = b.up(h, 48, 2, slope=s, bn=bn)     # 16
        h = b.up(h, 32, 2, slope=s, bn=bn)     # 32
        a = b.up(h, 1, 1, act="relu", bn=bn)
    else:  # ucsd
        h = b.conv(x, 32, 2, slope=s, bn=bn)   # 15
        h = b.conv(h, 48, 1, slope=s)
        h = b.conv(h, 48, 1, slope=s, bn=bn)
        h = b.up(h, 32, 2, slope=s, bn=bn)     # 30
        a = b.conv(h, 1, 1, act="relu", bn=bn)
    a = layers.Activation("linear", dtype=output_dtype(), name="mg_activation_map")(a)
    return keras.Model(x, a, name=f"mask_generator_{kind}")


def masked_pixel_count(n_pixels: int, t: float, mode: str = "paper") -> int:
    """How many of ``n_pixels`` the threshold unit masks (sets to 0) in one activation map.

    ``mode="paper"``: the top (100 - t) % of the pixels, ``round(n * (100 - t) / 100)`` (Section 3.4.2; MNIST:
    98 of 784 at t = 87.5). ``mode="code"``: the authors' TFP percentile with interpolation "lower", the sorted
    element at index ``floor(t/100 * (n - 1))`` and every pixel at or above it (MNIST: 99 of 784).
    """
    if not 0.0 < t < 100.0:
        raise ValueError(f"threshold t must be in (0, 100), got {t}")
    if mode == "paper":
        k = int(round(n_pixels * (100.0 - t) / 100.0))
    elif mode == "code":
        k = n_pixels - int(t / 100.0 * (n_pixels - 1))
    else:
        raise ValueError(f"threshold mode must be 'paper' or 'code', got {mode!r}")
    return min(max(k, 1), n_pixels - 1)


@keras.saving.register_keras_serializable(package="oled_tf")
class ThresholdUnit(layers.Layer):
    """Threshold unit T (Section 3.4.2): activation map A (B, H, W, 1) -> mask (B, H, W, 1), 0 = masked.

    Per sample, ``s`` is the k-th largest activation with k = :func:`masked_pixel_count` (the pixels in the top
    (100 - t) % are masked, Eq. 1), and the mask is the continuous ReLU form of Eq. 2::

        M_ij = max(s - A_ij, 0) / (max(s - A_ij, 0) + eps)

    which is 0 where A_ij >= s and 1 - eps/(s - A_ij + eps) ~= 1 elsewhere. The paper's eps is "an infinitesimal
    positive scalar"; the authors' code uses 1e-12 (the default here). With such an eps, dM/dA = -eps/(r + eps)^2
    (r = s - A) is tiny except for pixels right below the threshold, so MG's learning signal through T is weak;
    this is the paper's formulation, kept as specified (``eps`` is a constructor argument / ``--threshold_eps``).
    Gradients also reach A through ``s`` (top-k values are differentiable). Computed in float32 (also under mixed
    precision); ``dtype="float64"`` gives the float64 reference used by the gradient checks.

    How little of MG's gradient survives (measured on real digits, oled_tf/README.md): in float32, r + 1e-12 == r
    once r > ~1e-5, so dM/dA is exactly 0 on most pixels and what is left is rounding noise. ``gradient``
    (``--mask_gradient``) chooses the backward pass:

    * ``"faithful"`` (default): Eq. 2 as written, value and gradient (the paper, the authors' code).
    * ``"straight_through"`` (beyond the paper): the forward value is Eq. 2's mask (binary, exactly k masked);
      the gradient is that of the surrogate ``sigmoid((s - A) / tau)``, ``tau = temperature * std(A)`` per
      sample (no gradient through tau). Every pixel near the threshold passes a gradient to MG.
    * ``"smooth"`` (beyond the paper): the surrogate is the mask, forward and backward (masked pixels are only
      partly removed; the number of masked pixels is no longer exactly k).

    Ties at ``s``: Eq. 2 as written masks every pixel with A_ij >= s, so when several pixels share the value s
    it masks more than k of them; MG's last ReLU makes this the common case early in training (a map with fewer
    than k positive activations has s = 0, and Eq. 2 then masked the whole image). Section 3.4.2 states the
    intent: "the same amount of pixels are masked in each image, ensuring that the reconstruction errors are
    comparable between samples". So exactly the k pixels ranked first by ``top_k`` are masked (ties broken by
    position, row-major first); a pixel tied with s but not among them keeps M = 1. Where the k-th and
    (k+1)-th activations differ (no tie), this is Eq. 2 exactly, value and gradient. (The authors' code adds
    1e-12 to s, which gives tied zero pixels M = 0.5 instead; reference notes 4.1.4.)
    """

    def __init__(self, t: float = 87.5, eps: float = 1e-12, mode: str = "paper", gradient: str = "faithful",
                 temperature: float = 0.5, **kwargs):
        kwargs.setdefault("dtype", output_dtype())
        super().__init__(**kwargs)
        masked_pixel_count(100, t, mode)  # validates t and mode
        if gradient not in MASK_GRADIENTS:
            raise ValueError(f"mask gradient must be one of {', '.join(MASK_GRADIENTS)}, got {gradient!r}")
        if not temperature > 0:
            raise ValueError(f"mask temperature must be > 0, got {temperature}")
        self.t, self.eps, self.mode = float(t), float(eps), mode
        self.gradient, self.temperature = gradient, float(temperature)

    def call(self, a):
        mask, flat, s = self._eq2_mask(a)
        if self.gradient == "faithful":
            return mask
        # Beyond the paper: a smooth surrogate of the step, sigmoid((s - A) / tau) with tau = temperature x the
        # sample's activation std (no gradient through tau), so that MG gets a gradient from every pixel.
        tau = keras.ops.stop_gradient(self.temperature * keras.ops.std(flat, axis=1, keepdims=True) + 1e-6)
        soft = keras.ops.reshape(keras.ops.sigmoid((s - flat) / tau), keras.ops.shape(mask))
        if self.gradient == "smooth":
            return soft  # the soft mask itself (forward changes too: masked pixels are only partly removed)
        # straight_through: the forward value of Eq. 2 (binary, exactly k masked), the gradient of the surrogate.
        return keras.ops.stop_gradient(mask - soft) + soft

    def _eq2_mask(self, a):
        """Eq. 2 with exactly k masked pixels: ``(mask (B, H, W, 1), flat A (B, HW), s (B, 1))``."""
        a = keras.ops.cast(a, self.compute_dtype)
        h, w = a.shape[1], a.shape[2]
        n = h * w
        k = masked_pixel_count(n, self.t, self.mode)
        flat = keras.ops.reshape(a, (-1, n))
        s = keras.ops.top_k(flat, k, sorted=True)[0][:, k - 1:k]    # (B, 1): the k-th largest activation
        r = keras.ops.relu(s - flat)
        eq2 = r / (r + self.eps)                                     # Eq. 2
        # Exactly k masked: all pixels above s, then the first (row-major) of those equal to s, as top_k ranks
        # them; the other pixels equal to s are kept (M = 1 instead of Eq. 2's 0).
        above = keras.ops.sum(keras.ops.cast(flat > s, "int32"), axis=1, keepdims=True)
        tied = keras.ops.cast(flat == s, "int32")
        kept_tie = keras.ops.logical_and(tied > 0, keras.ops.cumsum(tied, axis=1) > k - above)
        mask = eq2 + keras.ops.cast(kept_tie, flat.dtype)
        return keras.ops.reshape(mask, keras.ops.shape(a)), flat, s

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "t": self.t, "eps": self.eps, "mode": self.mode, "gradient": self.gradient,
                "temperature": self.temperature}


def random_square_mask(batch: int, height: int, width: int, size: int = 10, seed=None):
    """Context auto-encoder mask (Section 4.6): one random ``size`` x ``size`` square per sample set to 0.

    Returns a float32 tensor (batch, height, width, 1) of ones with a zero square at a uniformly drawn position.
    ``seed`` is a ``keras.random.SeedGenerator`` (or an int) so that masks are reproducible.
    """
    if size >= min(height, width):
        raise ValueError(f"random mask size {size} must be smaller than the image ({height}x{width})")
    top = keras.random.randint((batch, 1, 1, 1), 0, height - size + 1, seed=seed)
    left = keras.random.randint((batch, 1, 1, 1), 0, width - size + 1, seed=seed)
    rows = keras.ops.reshape(keras.ops.arange(height), (1, height, 1, 1))
    cols = keras.ops.reshape(keras.ops.arange(width), (1, 1, width, 1))
    inside = (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)
    return 1.0 - keras.ops.cast(inside, "float32")
