"""The pretext transformations of the six image tasks, as pure TensorFlow functions (no variables, no state).

Images are float tensors ``[B, H, W, C]`` in [-1, 1] (square, H divisible by 8). Every function here is
deterministic given its arguments; the randomness of training (which permutation, which image pairs) does not
exist in this package: every task trains on *all* of its transformations of every image (see
:mod:`permutation_tf.image.tasks`).

* Jigsaw (Noroozi & Favaro 2016): :func:`split_tiles` / :func:`merge_tiles` cut an image into a ``g x g`` grid
  of tiles (row-major) and put it back; :func:`shuffle_tiles` places tile ``perm[i]`` at position ``i``;
  :func:`jigsaw_tiles` is the 3 x 3 grid of the centre crop; :func:`jigsaw_permutations` the permutation set
  (100 of the 9! orders chosen by maximal Hamming distance, Noroozi's algorithm) and :func:`inverse_permutation`
  undoes one.
* RotNet (Gidaris et al. 2018): :func:`rotate` by ``k * 90`` degrees counter-clockwise, label ``k``
  (:data:`ROTATIONS` = 0, 1, 2, 3).
* Colorization (Zhang et al. 2016) and Split-Brain (Zhang et al. 2017): :func:`split_luma_chroma` turns an RGB
  image into its gray (luma Y) part and its colour (chroma U, V) part with the YUV transform; the tasks predict
  one from the other as classes of :func:`quantize` bins.
* Inpainting (Pathak et al. 2016): :func:`block_masks` are the hidden regions (the central block of half the
  side, Pathak's "central region", and the four quadrant blocks); :func:`apply_mask` fills a region with 0, the
  mean of [-1, 1] (Pathak fills with the mean pixel value).
* Counting (Noroozi et al. 2017): :func:`downsample` (2 x 2 average pooling, "D") and the 2 x 2 tiles ("T_j")
  whose counts must add up: :func:`counting_residual` is ``||phi(D(x)) - sum_j phi(T_j(x))||^2`` and
  :func:`counting_contrast` the margin term with another image.
"""
from __future__ import annotations

import functools
import itertools

import numpy as np
import tensorflow as tf

JIGSAW_GRID = 3           # Noroozi & Favaro: a 3 x 3 grid of tiles
JIGSAW_N_PERMUTATIONS = 100   # Noroozi & Favaro's sets have 100 to 1000 orders (Table 2 of their paper)
COUNT_GRID = 2            # Noroozi et al. 2017 (counting): 2 x 2 tiles
ROTATIONS = (0, 1, 2, 3)  # k of a rotation by k * 90 degrees counter-clockwise (RotNet's four classes)

# YUV ranges of tf.image.rgb_to_yuv for RGB in [0, 1]: Y in [0, 1], U in [-0.436, 0.436], V in [-0.615, 0.615].
U_MAX, V_MAX = 0.436, 0.615


# ------------------------------------------------------------------------------------------------------ tiles
@functools.lru_cache(maxsize=None)
def jigsaw_permutations(n: int = JIGSAW_N_PERMUTATIONS, grid: int = JIGSAW_GRID) -> np.ndarray:
    """``[n, grid*grid]`` int32: the permutation set of the jigsaw task; label i <-> row i.

    Noroozi & Favaro's "maximal Hamming distance" algorithm: start from one order (here the identity, so label
    0 is the unshuffled image; they start from a random one), then repeatedly add the order of the 9! whose
    minimum Hamming distance to the orders chosen so far is largest (ties: the first in lexicographic order).
    Deterministic.
    """
    k = grid * grid
    allp = np.array(list(itertools.permutations(range(k))), np.uint8)
    cols = np.ascontiguousarray(allp.T)                                  # [k, k!]: fast per-position compares

    def hamming_to(j):
        d = np.zeros(cols.shape[1], np.uint8)
        for pos in range(k):
            d += cols[pos] != cols[pos, j]
        return d

    chosen = [0]
    min_dist = hamming_to(0)
    for _ in range(n - 1):
        j = int(np.argmax(min_dist))
        chosen.append(j)
        np.minimum(min_dist, hamming_to(j), out=min_dist)
    return allp[chosen].astype(np.int32)


def center_crop_to_grid(x, grid: int):
    """The centred square crop of side ``grid * (H // grid)`` (32 x 32 -> 30 x 30 for a 3 x 3 grid)."""
    size = int(x.shape[1])
    crop = grid * (size // grid)
    off = (size - crop) // 2
    return x[:, off:off + crop, off:off + crop, :]


def jigsaw_tiles(x, grid: int = JIGSAW_GRID, jitter: int = 0, seed=None):
    """``[B, grid*grid, h, h, C]``: the tiles of the jigsaw puzzle (the grid of the centre crop), row-major.

    ``jitter`` J > 0: each tile is the ``(cell - J)``-pixel square cut from its cell at a random offset in
    ``[0, J]`` per axis, drawn per image and tile from ``seed`` (a ``keras.random.SeedGenerator``; Noroozi &
    Favaro cut 64-pixel tiles at random offsets out of 75-pixel cells so that the edges of neighbouring tiles do
    not continue each other), or the centred square without a seed (test time)."""
    tiles = split_tiles(center_crop_to_grid(x, grid), grid)
    if not jitter:
        return tiles
    cell = int(x.shape[1]) // grid
    shape = tf.shape(tiles)
    if seed is None:
        offsets = tf.fill([shape[0], shape[1], 2], jitter // 2)
    else:
        import keras

        offsets = keras.random.randint([shape[0], shape[1], 2], 0, jitter + 1, dtype="int32", seed=seed)
    return crop_per_item(tiles, offsets, cell - jitter, first_axis=2)


def crop_per_item(x, offsets, size: int, first_axis: int = 1):
    """Square crops of side ``size``, a different one per item: ``x [*lead, H, W, C]`` with the spatial axes at
    ``first_axis, first_axis + 1``, ``offsets [*lead, 2]`` int (row, column of the crop's corner)."""
    lead = first_axis
    span = tf.range(size, dtype=tf.int32)
    rows = offsets[..., 0:1] + span                                      # [*lead, size]
    cols = offsets[..., 1:2] + span
    x = tf.gather(x, rows, axis=first_axis, batch_dims=lead)
    return tf.gather(x, cols, axis=first_axis + 1, batch_dims=lead)


def flip_shift(x, seed, shift: int = 2):
    """Random horizontal flip and random translation by up to ``shift`` pixels per axis (the image padded with
    -1, black), independently per image, from ``seed`` (a ``keras.random.SeedGenerator``); the usual CIFAR
    augmentation of RotNet's code (random crop of the padded image, flip), at Fashion-MNIST's 2-pixel margin."""
    import keras

    x = tf.cast(x, tf.float32)
    b = tf.shape(x)[0]
    size = int(x.shape[1])
    flip = keras.random.uniform([b, 1, 1, 1], seed=seed) < 0.5
    x = tf.where(flip, tf.reverse(x, axis=[2]), x)
    padded = tf.pad(x, [[0, 0], [shift, shift], [shift, shift], [0, 0]], constant_values=-1.0)
    offsets = keras.random.randint([b, 2], 0, 2 * shift + 1, dtype="int32", seed=seed)
    return crop_per_item(padded, offsets, size)


def split_tiles(x, grid: int = COUNT_GRID):
    """``[B, H, W, C]`` -> ``[B, grid*grid, H/grid, W/grid, C]``, tiles in row-major order."""
    shape = tf.shape(x)
    b, h, w, c = shape[0], shape[1], shape[2], shape[3]
    th, tw = h // grid, w // grid
    t = tf.reshape(x, [b, grid, th, grid, tw, c])
    t = tf.transpose(t, [0, 1, 3, 2, 4, 5])
    return tf.reshape(t, [b, grid * grid, th, tw, c])


def merge_tiles(tiles, grid: int = COUNT_GRID):
    """Inverse of :func:`split_tiles`: ``[B, grid*grid, h, w, C]`` -> ``[B, grid*h, grid*w, C]``."""
    shape = tf.shape(tiles)
    b, th, tw, c = shape[0], shape[2], shape[3], shape[4]
    t = tf.reshape(tiles, [b, grid, grid, th, tw, c])
    t = tf.transpose(t, [0, 1, 3, 2, 4, 5])
    return tf.reshape(t, [b, grid * th, grid * tw, c])


def shuffle_tiles(x, perm, grid: int = COUNT_GRID):
    """The jigsaw puzzle of ``x`` for one permutation: position ``i`` of the result holds tile ``perm[i]``."""
    return merge_tiles(tf.gather(split_tiles(x, grid), np.asarray(perm, np.int32), axis=1), grid)


def inverse_permutation(perm) -> np.ndarray:
    """``inv`` with ``inv[perm[i]] = i``: ``shuffle_tiles(shuffle_tiles(x, perm), inv) == x``."""
    perm = np.asarray(perm, np.int64)
    inv = np.empty_like(perm)
    inv[perm] = np.arange(len(perm))
    return inv


# --------------------------------------------------------------------------------------------------- rotation
def rotate(x, k: int):
    """Rotate ``[B, H, W, C]`` images by ``k * 90`` degrees counter-clockwise (``np.rot90`` on axes 1, 2)."""
    return tf.image.rot90(x, k=k)


def all_rotations(x):
    """``[4 * B, H, W, C]``: rotations 0, 90, 180, 270 stacked (rotation-major), and their labels ``[4 * B]``."""
    b = tf.shape(x)[0]
    images = tf.concat([rotate(x, k) for k in ROTATIONS], axis=0)
    labels = tf.repeat(tf.constant(ROTATIONS, tf.int32), b)
    return images, labels


# ------------------------------------------------------------------------------------------------ colour split
def split_luma_chroma(x):
    """RGB ``[B, H, W, 3]`` in [-1, 1] -> (gray ``[B, H, W, 1]`` in [-1, 1], chroma ``[B, H, W, 2]`` in [-1, 1]).

    YUV (``tf.image.rgb_to_yuv`` of the image in [0, 1]): the gray part is the luma ``Y = 0.299 R + 0.587 G +
    0.114 B`` rescaled to [-1, 1]; the colour part is ``(U / 0.436, V / 0.615)``. Zhang et al. use CIE Lab (L and
    ab); YUV is the same split into lightness and two colour-opponent channels with an exact linear inverse
    (:func:`merge_luma_chroma`).
    """
    yuv = tf.image.rgb_to_yuv((tf.cast(x, tf.float32) + 1.0) / 2.0)
    gray = yuv[..., :1] * 2.0 - 1.0
    chroma = yuv[..., 1:] / tf.constant([U_MAX, V_MAX], tf.float32)
    return gray, chroma


def merge_luma_chroma(gray, chroma):
    """Inverse of :func:`split_luma_chroma` (RGB in [-1, 1])."""
    yuv = tf.concat([(gray + 1.0) / 2.0, chroma * tf.constant([U_MAX, V_MAX], tf.float32)], axis=-1)
    return tf.image.yuv_to_rgb(yuv) * 2.0 - 1.0


def quantize(v, bins: int):
    """Values in [-1, 1] -> class indices ``0 .. bins-1`` of ``bins`` equal-width bins (clipped at the ends)."""
    idx = tf.floor((tf.cast(v, tf.float32) + 1.0) / 2.0 * bins)
    return tf.cast(tf.clip_by_value(idx, 0, bins - 1), tf.int32)


def chroma_classes(chroma, bins: int):
    """Chroma ``[B, H, W, 2]`` -> one class per pixel ``u_bin * bins + v_bin`` in ``0 .. bins^2 - 1`` (the ab
    grid of Zhang et al., here a ``bins x bins`` grid over U, V)."""
    q = quantize(chroma, bins)
    return q[..., 0] * bins + q[..., 1]


# --------------------------------------------------------------------------------------------------- inpainting
def block_masks(size: int) -> np.ndarray:
    """The hidden regions of the inpainting task for ``size x size`` images: ``[5, size, size, 1]`` float32,
    1 = hidden. Mask 0 is Pathak's central block (half the side, a quarter of the area); masks 1-4 are the four
    quadrants (top-left, top-right, bottom-left, bottom-right), so the five together cover every pixel."""
    h = size // 2
    q = size // 4
    masks = np.zeros((5, size, size, 1), np.float32)
    masks[0, q:q + h, q:q + h] = 1.0
    for i, (r, c) in enumerate(((0, 0), (0, h), (h, 0), (h, h)), start=1):
        masks[i, r:r + h, c:c + h] = 1.0
    return masks


def apply_mask(x, mask):
    """Hide the region ``mask == 1`` of ``x``: the hidden pixels take 0, the mean of [-1, 1]."""
    return tf.cast(x, tf.float32) * (1.0 - mask)


# ------------------------------------------------------------------------------------------------------ counting
def downsample(x):
    """D(x): 2 x 2 average pooling, the image at half resolution (same size as one of its 2 x 2 tiles)."""
    return tf.nn.avg_pool2d(tf.cast(x, tf.float32), ksize=2, strides=2, padding="VALID")


def counting_residual(phi_down, phi_tiles):
    """``||phi(D(x)) - sum_j phi(T_j(x))||^2`` per image (Noroozi et al. 2017, Eq. 3): ``phi_down [B, K]``,
    ``phi_tiles [B, 4, K]`` -> ``[B]``."""
    return tf.reduce_sum(tf.square(phi_down - tf.reduce_sum(phi_tiles, axis=1)), axis=-1)


def counting_contrast(phi_down_other, phi_tiles, margin: float):
    """``max(0, M - ||phi(D(y)) - sum_j phi(T_j(x))||^2)`` per image (Noroozi et al. 2017, Eq. 4): the counts
    of another image ``y`` must differ from those of ``x`` by at least the margin ``M``."""
    d = tf.reduce_sum(tf.square(phi_down_other - tf.reduce_sum(phi_tiles, axis=1)), axis=-1)
    return tf.maximum(0.0, margin - d)
