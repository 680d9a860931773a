"""One :class:`PretextTask` per self-supervised method of Section IV-C: its networks (the shared backbone of
:mod:`permutation_tf.image.networks` plus one small head), its transformations and its loss.

A task is a component of :class:`permutation_tf.image.model.PretextModel`. It holds no variables: ``build``
returns the networks (a dict of Keras models the trainer owns) and the two loss functions take them as an
argument:

* ``transformation_losses(nets, x, training, seed) -> [B, T]``: the pretext loss of every image under each of
  the task's ``T`` transformations (the 100 tile orders, the 4 rotations, the 5 hidden blocks, ...). The anomaly
  score (:mod:`permutation_tf.image.scoring`, ``--score``) is built from the ``T`` columns.
* ``training_loss(nets, x, training, seed, mode)``: the scalar minimised by training: by default
  (``mode="all"``, ``--train_transformations=all``) the mean of the same ``[B, T]`` losses, i.e. every image is
  trained under all of its transformations in each step (the exact expectation of the methods' "one random
  transformation per image"; Gidaris et al. found feeding all four rotations of an image in the same batch
  best); ``mode="one"`` draws one transformation per image (Noroozi & Favaro's sampling); plus Counting's
  contrastive term, which needs a second image. ``seed`` is the model's ``keras.random.SeedGenerator``.
* ``weight_decay`` (set by :func:`make_task`): L2 on every kernel of the task's networks (``--weight_decay``).

Paper silences and our choices are listed in each class's docstring and in the package README.
"""
from __future__ import annotations

import tensorflow as tf

from common.errors import ConfigError
from permutation_tf.image import networks as nets_lib
from permutation_tf.image import transforms as T
from permutation_tf.image.config import TASK_NAMES  # noqa: F401 (re-exported)


def _gap(feature_map):
    """Global average pooling ``[N, h, w, F] -> [N, F]`` in float32."""
    return tf.reduce_mean(tf.cast(feature_map, tf.float32), axis=[1, 2])


def _ce(labels, logits):
    """Sparse softmax cross-entropy per example (any leading shape), computed without saturating.

    ``-log p(y) = softplus(logsumexp_{k != y} z_k - z_y)``: the same value as
    ``tf.nn.sparse_softmax_cross_entropy_with_logits``, but that op forms ``log(1 + eps)`` and returns exactly 0
    (or a multiple of 6e-8) once the network is confident (eps < 6e-8), which ties most test images of a
    converged network (notes, "Images (Table II)"); this form keeps fp32's relative precision down to ~1e-38.
    """
    logits = tf.cast(logits, tf.float32)
    onehot = tf.one_hot(labels, tf.shape(logits)[-1], dtype=tf.float32)
    z_y = tf.reduce_sum(logits * onehot, axis=-1)
    others = tf.reduce_logsumexp(logits + onehot * tf.float32.min, axis=-1)
    return tf.nn.softplus(others - z_y)


class PretextTask:
    """Base class. ``name`` (CLI), ``title`` (as the paper's column), ``reference``, ``transformations`` (names of
    the ``T`` columns of :meth:`transformation_losses`)."""

    name = "task"
    title = ""
    reference = ""
    transformations: tuple[str, ...] = ()
    needs_color = False
    tiled = False  # works on 2 x 2 tiles of the image (needs H divisible by 8)
    weight_decay = 0.0  # L2 on every kernel of the task's networks (networks.l2_regularizer)

    @property
    def n_transformations(self) -> int:
        return len(self.transformations)

    def check_input(self, input_shape) -> None:
        h, w, c = input_shape
        if h != w:
            raise ConfigError(f"{self.name}: images must be square, got {h}x{w}")
        if h % (8 if self.tiled else 4):
            raise ConfigError(f"{self.name}: the image side must be divisible by {8 if self.tiled else 4}, got {h}")
        if self.needs_color and c != 3:
            raise ConfigError(f"--task={self.name} predicts colour from gray and needs RGB images; this dataset has "
                              f"{c} channel(s) (use cifar10, cifar100 or an RGB image_folder)")

    def build(self, input_shape) -> dict:
        raise NotImplementedError

    def transformation_losses(self, nets: dict, x, training: bool = False, seed=None):
        """``[B, T]`` losses of every image under each transformation (``seed``: a
        ``keras.random.SeedGenerator`` for training-time randomness, e.g. Jigsaw's tile jitter)."""
        raise NotImplementedError

    def training_loss(self, nets: dict, x, training: bool = True, seed=None, mode: str = "all"):
        """The minimised scalar. ``mode="all"``: the mean over every transformation of every image; ``"one"``:
        one transformation per image drawn from ``seed`` (the methods' own sampling; same expectation)."""
        losses = self.transformation_losses(nets, x, training=training, seed=seed)
        if mode == "all" or self.n_transformations == 1:
            return tf.reduce_mean(losses)
        return tf.reduce_mean(tf.gather(losses, self.draw(tf.shape(losses)[0], seed), axis=1, batch_dims=1))

    def draw(self, n, seed):
        """``[n]`` int32 transformation indices, uniform, from ``seed``."""
        import keras

        return keras.random.randint([n], 0, self.n_transformations, dtype="int32", seed=seed)


class Jigsaw(PretextTask):
    """Solving jigsaw puzzles (Noroozi & Favaro, ECCV 2016, paper ref. [35]).

    The centre crop of the image (30 x 30 of 32 x 32) is cut into a 3 x 3 grid of tiles; a context-free network
    (CFN) runs the shared backbone on each tile separately (siamese, shared weights), concatenates the nine
    pooled tile features in puzzle order (:class:`PuzzleHead`: all 100 orders at once) and classifies which of the 100 permutations of
    :func:`jigsaw_permutations` (maximal Hamming distance, Noroozi's algorithm) was applied (cross-entropy).
    Differences from the original, forced by 28-32 pixel images: 10 x 10 tiles taken edge to edge (Noroozi cuts
    64 x 64 tiles with random gaps out of 85 x 85 cells, against edge-continuity shortcuts), no per-tile
    normalisation. Because the CFN sees each tile separately, permuting the tiles permutes the tile features:
    each tile goes through the backbone once and the 100 puzzles are gathers of its features, which is exactly
    the loss on the 100 shuffled images (checked by a test).

    (A first version used a 2 x 2 grid, all 24 orders: it learned the puzzle within two epochs from the black
    border alone and scored 84 / 77 AUROC on Fashion-MNIST classes 0 / 1, below the PCA floor; see README.)
    """

    name, title, reference = "jigsaw", "Jigsaw [35]", "Noroozi & Favaro, ECCV 2016"

    def __init__(self, n_permutations: int = T.JIGSAW_N_PERMUTATIONS, jitter: int = 0):
        self.n_permutations, self.jitter = int(n_permutations), int(jitter)

    @property
    def permutations(self):
        return T.jigsaw_permutations(self.n_permutations)

    @property
    def transformations(self):
        return tuple("perm" + "".join(map(str, p)) for p in self.permutations)

    def check_input(self, input_shape) -> None:
        super().check_input(input_shape)
        if input_shape[0] // T.JIGSAW_GRID - self.jitter < 4:
            raise ConfigError(f"jigsaw: images of side {input_shape[0]} with --jigsaw_jitter={self.jitter} give "
                              f"tiles smaller than 4 pixels")

    def build(self, input_shape):
        head = nets_lib.PuzzleHead(T.JIGSAW_GRID ** 2, self.n_permutations, weight_decay=self.weight_decay,
                                   name="jigsaw_head")
        head.build((None, T.JIGSAW_GRID ** 2, nets_lib.feature_dim()))
        return {"backbone": nets_lib.build_backbone(input_shape[-1], weight_decay=self.weight_decay), "head": head}

    def tile_features(self, nets, x, training, seed=None):
        """Pooled backbone features of the 3 x 3 tiles, ``[B, 9, F]`` (row-major tile order); with a jitter the
        tiles are cut at random offsets when ``training`` (from ``seed``), centred otherwise."""
        tiles = T.jigsaw_tiles(x, jitter=self.jitter, seed=seed if training else None)
        s = tf.shape(tiles)
        flat = tf.reshape(tiles, [s[0] * s[1], s[2], s[3], s[4]])
        f = _gap(nets["backbone"](flat, training=training))
        return tf.reshape(f, [s[0], s[1], f.shape[-1]])

    def transformation_losses(self, nets, x, training=False, seed=None):
        f = self.tile_features(nets, x, training, seed)                 # [B, 9, F]
        perms = self.permutations                                       # [P, 9]: slot i holds tile perm[i]
        logits = nets["head"](f, perms)                                 # [B, P, P]: puzzle p's logits
        labels = tf.broadcast_to(tf.range(len(perms), dtype=tf.int32)[None], tf.shape(logits)[:2])
        return _ce(labels, logits)

    def training_loss(self, nets, x, training=True, seed=None, mode="all"):
        if mode == "all":
            return super().training_loss(nets, x, training, seed, mode)
        f = self.tile_features(nets, x, training, seed)
        labels = self.draw(tf.shape(f)[0], seed)                        # Noroozi: one order per image
        logits = nets["head"].call_per_image(f, tf.gather(tf.constant(self.permutations), labels))
        return tf.reduce_mean(_ce(labels, logits))


class RotNet(PretextTask):
    """Predicting image rotations (Gidaris, Singh, Komodakis, ICLR 2018, paper ref. [26]).

    Four classes: the image rotated by 0, 90, 180, 270 degrees; backbone, global average pooling, classifier
    head; cross-entropy. As in RotNet's code all four rotated copies of every image are in the same batch. The
    anomaly score is GEOM's simplified score restricted to rotations: ``-sum_k log p(k | rot_k(x))``.
    """

    name, title, reference = "rotnet", "RotNet [26]", "Gidaris, Singh, Komodakis, ICLR 2018"
    transformations = tuple(f"rot{90 * k}" for k in T.ROTATIONS)

    def build(self, input_shape):
        wd = self.weight_decay
        return {"backbone": nets_lib.build_backbone(input_shape[-1], weight_decay=wd),
                "head": nets_lib.build_classifier_head(nets_lib.feature_dim(), len(T.ROTATIONS), name="rot_head",
                                                       weight_decay=wd)}

    def transformation_losses(self, nets, x, training=False, seed=None):
        images, labels = T.all_rotations(x)
        logits = nets["head"](_gap(nets["backbone"](images, training=training)), training=training)
        return tf.transpose(tf.reshape(_ce(labels, logits), [len(T.ROTATIONS), -1]))   # [B, 4]


class Colorization(PretextTask):
    """Colorful image colorization (Zhang, Isola, Efros, ECCV 2016, paper ref. [25]).

    Gray (luma) in, colour out: the backbone sees the gray part of :func:`split_luma_chroma` and a decoder
    head classifies each pixel's colour into ``bins x bins`` chroma bins (Zhang: 313 in-gamut ab bins of size
    10 over CIE Lab, predicted at 1/4 resolution); per-pixel cross-entropy averaged over the image. Not done:
    Zhang's class rebalancing (it favours vivid colours in the pictures; the anomaly score is the plain loss)
    and the annealed-mean decoding (only needed to render a colour image). One transformation (colour -> gray).
    Needs RGB images.
    """

    name, title, reference = "colorization", "Color [25]", "Zhang, Isola, Efros, ECCV 2016"
    transformations = ("gray_to_color",)
    needs_color = True

    def __init__(self, bins: int = 10):
        self.bins = int(bins)

    def build(self, input_shape):
        wd = self.weight_decay
        return {"backbone": nets_lib.build_backbone(1, weight_decay=wd),
                "head": nets_lib.build_decoder_head(nets_lib.feature_dim(), self.bins ** 2, name="color_head",
                                                    weight_decay=wd)}

    def transformation_losses(self, nets, x, training=False, seed=None):
        gray, chroma = T.split_luma_chroma(x)
        logits = nets["head"](nets["backbone"](gray, training=training), training=training)
        ce = _ce(T.chroma_classes(chroma, self.bins), logits)              # [B, H, W]
        return tf.reduce_mean(ce, axis=[1, 2])[:, None]


class SplitBrain(PretextTask):
    """Split-brain auto-encoders (Zhang, Isola, Efros, CVPR 2017, paper ref. [37]).

    Two disjoint sub-networks predict each half of the channels from the other: F1 gray -> colour (as
    Colorization) and F2 colour -> gray (``bins`` luma classes); classification losses, which the paper found
    better than regression. Each sub-network is the shared backbone with a decoder head (Zhang splits one
    AlexNet into two half-width halves; we keep the backbone's width for both). Two transformations (the two
    directions); needs RGB images.
    """

    name, title, reference = "splitbrain", "Split-Brain [37]", "Zhang, Isola, Efros, CVPR 2017"
    transformations = ("gray_to_color", "color_to_gray")
    needs_color = True

    def __init__(self, bins: int = 10):
        self.bins = int(bins)

    def build(self, input_shape):
        f, wd = nets_lib.feature_dim(), self.weight_decay
        return {"backbone_gray": nets_lib.build_backbone(1, name="backbone_gray", weight_decay=wd),
                "head_gray": nets_lib.build_decoder_head(f, self.bins ** 2, name="gray_to_color_head",
                                                         weight_decay=wd),
                "backbone_color": nets_lib.build_backbone(2, name="backbone_color", weight_decay=wd),
                "head_color": nets_lib.build_decoder_head(f, self.bins, name="color_to_gray_head", weight_decay=wd)}

    def transformation_losses(self, nets, x, training=False, seed=None):
        gray, chroma = T.split_luma_chroma(x)
        to_color = nets["head_gray"](nets["backbone_gray"](gray, training=training), training=training)
        to_gray = nets["head_color"](nets["backbone_color"](chroma, training=training), training=training)
        l1 = tf.reduce_mean(_ce(T.chroma_classes(chroma, self.bins), to_color), axis=[1, 2])
        l2 = tf.reduce_mean(_ce(T.quantize(gray[..., 0], self.bins), to_gray), axis=[1, 2])
        return tf.stack([l1, l2], axis=1)


class Inpainting(PretextTask):
    """Context encoders: feature learning by inpainting (Pathak et al., CVPR 2016, paper ref. [36]).

    A block of the image is hidden (set to 0, the mean of [-1, 1]); the backbone encodes the rest and a decoder
    head (tanh) paints the image; loss = mean squared error over the hidden block. Transformations: Pathak's
    central block (half the side) and the four quadrant blocks (:func:`block_masks`), which together cover
    every pixel. Not done: Pathak's adversarial loss term (weight 0.001; it sharpens the painting) and the
    10x weighted overlap border.
    """

    name, title, reference = "inpainting", "Inpaint [36]", "Pathak et al., CVPR 2016"
    transformations = ("center", "top_left", "top_right", "bottom_left", "bottom_right")

    def build(self, input_shape):
        wd = self.weight_decay
        return {"backbone": nets_lib.build_backbone(input_shape[-1], weight_decay=wd),
                "head": nets_lib.build_decoder_head(nets_lib.feature_dim(), input_shape[-1], activation="tanh",
                                                    name="inpaint_head", weight_decay=wd)}

    def transformation_losses(self, nets, x, training=False, seed=None):
        x = tf.cast(x, tf.float32)
        block = tf.constant(T.block_masks(int(x.shape[1])))              # [M, H, W, 1]
        m = block.shape[0]
        b = tf.shape(x)[0]
        masks = tf.repeat(block, b, axis=0)                            # [M*B, H, W, 1], mask-major
        xs = tf.tile(x, [m, 1, 1, 1])
        painted = nets["head"](nets["backbone"](T.apply_mask(xs, masks), training=training), training=training)
        err = tf.reduce_sum(masks * tf.square(painted - xs), axis=[1, 2, 3])
        err = err / (tf.reduce_sum(masks, axis=[1, 2, 3]) * tf.cast(tf.shape(x)[-1], tf.float32))
        return tf.transpose(tf.reshape(err, [m, b]))                     # [B, M]


class Counting(PretextTask):
    """Representation learning by learning to count (Noroozi, Pirsiavash, Favaro, ICCV 2017, paper ref. [38]).

    A network phi maps an image to a non-negative count vector; the counts of the half-resolution image D(x)
    must equal the sum of the counts of its four tiles T_j(x) (Eq. 3), and differ by at least the margin M from
    the counts of another image y (Eq. 4): loss = ||phi(D(x)) - sum_j phi(T_j(x))||^2
    + max(0, M - ||phi(D(y)) - sum_j phi(T_j(x))||^2), with the paper's 1000 counts and M = 10; y is the next
    image of the batch. phi = shared backbone, global average pooling, Dense + ReLU. D is 2 x 2 average pooling
    (Noroozi: bilinear downsampling by 2). The anomaly score uses the sum constraint only (one transformation:
    the tiling); the contrastive term depends on which other image is drawn.
    """

    name, title, reference = "counting", "Count [38]", "Noroozi, Pirsiavash, Favaro, ICCV 2017"
    transformations = ("tiling",)
    tiled = True

    def __init__(self, n_counts: int = 1000, margin: float = 10.0):
        self.n_counts, self.margin = int(n_counts), float(margin)

    def build(self, input_shape):
        wd = self.weight_decay
        return {"backbone": nets_lib.build_backbone(input_shape[-1], weight_decay=wd),
                "head": nets_lib.build_counting_head(nets_lib.feature_dim(), self.n_counts, weight_decay=wd)}

    def counts(self, nets, x, training):
        """``(phi(D(x)) [B, K], phi(T_j(x)) [B, 4, K])`` from one backbone pass over the 5 half-size images."""
        down = T.downsample(x)
        tiles = T.split_tiles(tf.cast(x, tf.float32))
        s = tf.shape(tiles)
        both = tf.concat([down, tf.reshape(tiles, [s[0] * s[1], s[2], s[3], s[4]])], axis=0)
        phi = nets["head"](_gap(nets["backbone"](both, training=training)), training=training)
        return phi[:s[0]], tf.reshape(phi[s[0]:], [s[0], s[1], self.n_counts])

    def transformation_losses(self, nets, x, training=False, seed=None):
        phi_down, phi_tiles = self.counts(nets, x, training)
        return T.counting_residual(phi_down, phi_tiles)[:, None]

    def training_loss(self, nets, x, training=True, seed=None, mode="all"):   # one transformation: mode moot
        phi_down, phi_tiles = self.counts(nets, x, training)
        other = tf.roll(phi_down, shift=1, axis=0)
        return tf.reduce_mean(T.counting_residual(phi_down, phi_tiles)
                              + T.counting_contrast(other, phi_tiles, self.margin))


def make_task(name: str, color_bins: int = 10, n_counts: int = 1000, count_margin: float = 10.0,
              weight_decay: float = 0.0, jigsaw_permutations: int = T.JIGSAW_N_PERMUTATIONS,
              jigsaw_jitter: int = 0) -> PretextTask:
    """The task for ``--task=name`` (``weight_decay``: L2 on every kernel of its networks)."""
    if name == "jigsaw":
        task = Jigsaw(jigsaw_permutations, jigsaw_jitter)
    elif name == "rotnet":
        task = RotNet()
    elif name == "colorization":
        task = Colorization(color_bins)
    elif name == "splitbrain":
        task = SplitBrain(color_bins)
    elif name == "inpainting":
        task = Inpainting()
    elif name == "counting":
        task = Counting(n_counts, count_margin)
    else:
        raise ConfigError(f"unknown --task={name!r}; choose one of {', '.join(TASK_NAMES)}")
    task.weight_decay = float(weight_decay)
    return task
