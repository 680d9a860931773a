"""Image augmentation as seeded tensor ops (stateless: the same seed gives the same result eagerly, inside a
``tf.function`` and inside ``tf.data.Dataset.map``).

Every random op takes ``seed``, an int32/int64 tensor of shape [2] (as ``tf.random.stateless_*`` ops do), and
one image (H, W, C) float32 in [0, 1] unless stated otherwise. Nothing here draws from a global generator, so a
pipeline that derives one seed per example (``common.streaming`` does: a function of (run seed, epoch, example
index)) is reproducible and resumable.

The augmentation follows the Learning-to-Spot-Artifacts authors' ``Preprocessor.py`` (sjenni/
LearningToSpotArtifacts; reference notes /work/shared/reference/original-code.md section 2.2), used with
``augment_color=True`` by ``train_stl10.py`` (SDNet) and ``fine_tune_stl10.py``:

* ``extract_random_patch``: a crop drawn by ``sample_distorted_bounding_box`` from the whole-image box
  (area fraction 0.333..1.0, aspect ratio 0.75..1.33, ``min_object_covered`` 0.1 and 100 attempts, TF1's
  defaults, falling back to the whole image), resized to the target with bilinear if u > 0.5 else bicubic
  interpolation (TF1 ``resize_bilinear`` / ``resize_bicubic`` with ``align_corners=False``, i.e. without half-pixel
  centres: :func:`resize` with ``legacy=True`` reproduces them);
* ``random_flip_left_right``;
* ``color_and_scale``: x/255, then if u > 0.5 saturation(brightness(x)) else brightness(saturation(x)), with
  brightness delta uniform in [-32/255, 32/255) and saturation factor uniform in [0.5, 1.5); then x*2-1 clipped to
  [-1, 1];
* test time (``process_test``): central crop keeping 85 % of each side, bilinear resize, no colour jitter.

:func:`artifacts_train` and :func:`artifacts_eval` are those two compositions.
"""
from __future__ import annotations

import tensorflow as tf

# Authors' Preprocessor defaults (section 2.2 of the reference notes).
AREA_RANGE = (0.333, 1.0)
ASPECT_RATIO_RANGE = (0.75, 1.33)
MIN_OBJECT_COVERED = 0.1      # TF1 sample_distorted_bounding_box default
MAX_ATTEMPTS = 100            # TF1 sample_distorted_bounding_box default
BRIGHTNESS_MAX_DELTA = 32.0 / 255.0
SATURATION_RANGE = (0.5, 1.5)
CENTRAL_FRACTION = 0.85

__all__ = ["split_seed", "resize", "random_resized_crop", "random_flip", "color_jitter", "central_crop_resize",
           "to_signed", "artifacts_train", "artifacts_eval", "AREA_RANGE", "ASPECT_RATIO_RANGE",
           "BRIGHTNESS_MAX_DELTA", "SATURATION_RANGE", "CENTRAL_FRACTION"]


def split_seed(seed, num: int):
    """``num`` independent [2] seeds derived from ``seed`` (``tf.random.experimental.stateless_split``)."""
    return tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=num))


def resize(image, size, method: str = "bilinear", legacy: bool = False):
    """Resize one image (H, W, C) float to ``size=(h, w)``.

    ``legacy=True``: TF1 ``resize_bilinear`` / ``resize_bicubic`` with ``align_corners=False`` (no half-pixel
    centres), as in the authors' code; otherwise ``tf.image.resize`` (half-pixel centres). Resizing to the input's
    own size returns it unchanged with either convention.
    """
    if method not in ("bilinear", "bicubic"):
        raise ValueError(f"resize method must be 'bilinear' or 'bicubic', not {method!r}")
    image = tf.convert_to_tensor(image, tf.float32)
    size = tf.constant([int(size[0]), int(size[1])], tf.int32)
    batch = image[None]
    if legacy:
        op = tf.raw_ops.ResizeBilinear if method == "bilinear" else tf.raw_ops.ResizeBicubic
        out = op(images=batch, size=size, align_corners=False, half_pixel_centers=False)
    else:
        out = tf.image.resize(batch, size, method=method)
    return out[0]


def random_resized_crop(image, seed, size, area_range=AREA_RANGE, aspect_ratio_range=ASPECT_RATIO_RANGE,
                        min_object_covered: float = MIN_OBJECT_COVERED, max_attempts: int = MAX_ATTEMPTS,
                        methods=("bilinear", "bicubic"), legacy: bool = True):
    """The authors' ``extract_random_patch``: crop a box drawn by ``stateless_sample_distorted_bounding_box``
    (area fraction in ``area_range``, aspect ratio in ``aspect_ratio_range``, whole image if no box is found in
    ``max_attempts``) and resize it to ``size=(h, w)`` with ``methods[0]`` if u > 0.5 else ``methods[1]`` (the
    authors' bilinear/bicubic coin). ``area_range=(1, 1)`` on an image of aspect ratio 1 keeps the whole image.
    """
    image = tf.convert_to_tensor(image, tf.float32)
    box_seed, coin_seed = split_seed(seed, 2)
    begin, box_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=box_seed,
        min_object_covered=min_object_covered, aspect_ratio_range=list(aspect_ratio_range),
        area_range=list(area_range), max_attempts=max_attempts, use_image_if_no_bounding_boxes=True)
    crop = tf.slice(image, begin, box_size)
    if methods[0] == methods[1]:
        out = resize(crop, size, methods[0], legacy)
    else:
        coin = tf.random.stateless_uniform([], coin_seed)
        out = tf.cond(coin > 0.5, lambda: resize(crop, size, methods[0], legacy),
                      lambda: resize(crop, size, methods[1], legacy))
    return tf.ensure_shape(out, [int(size[0]), int(size[1]), image.shape[-1]])


def random_flip(image, seed):
    """Horizontal flip with probability 1/2 (``tf.image.stateless_random_flip_left_right``)."""
    return tf.image.stateless_random_flip_left_right(tf.convert_to_tensor(image, tf.float32), seed)


def color_jitter(image, seed, brightness: float = BRIGHTNESS_MAX_DELTA, saturation=SATURATION_RANGE):
    """The authors' colour augmentation on an RGB image in [0, 1] (``color_and_scale`` without the scaling):
    with probability 1/2 saturation(brightness(x)), else brightness(saturation(x)); brightness adds a delta
    uniform in [-brightness, brightness), saturation multiplies HSV saturation by a factor uniform in
    [saturation[0], saturation[1]) (``tf.image.adjust_saturation``). No clipping (the authors clip after scaling
    to [-1, 1], see :func:`to_signed`). ``brightness=0, saturation=(1, 1)`` is the identity.
    """
    image = tf.convert_to_tensor(image, tf.float32)
    lo, hi = float(saturation[0]), float(saturation[1])
    if brightness < 0 or lo < 0 or hi < lo:
        raise ValueError(f"color_jitter needs brightness >= 0 and 0 <= saturation[0] <= saturation[1], got "
                         f"{brightness}, {saturation}")
    order_seed, delta_seed, factor_seed = split_seed(seed, 3)
    delta = tf.random.stateless_uniform([], delta_seed, -brightness, brightness) if brightness else 0.0
    factor = tf.random.stateless_uniform([], factor_seed, lo, hi) if hi > lo else tf.constant(lo)

    def bright(x):
        return x + delta

    def sat(x):
        return x if (lo == hi == 1.0) else tf.image.adjust_saturation(x, factor)

    coin = tf.random.stateless_uniform([], order_seed)
    return tf.cond(coin > 0.5, lambda: sat(bright(image)), lambda: bright(sat(image)))


def central_crop_resize(image, size, fraction: float = CENTRAL_FRACTION, legacy: bool = True):
    """The authors' test-time ``central_crop``: keep the central ``fraction`` of each side
    (``tf.image.central_crop``), bilinear resize to ``size``."""
    crop = tf.image.central_crop(tf.convert_to_tensor(image, tf.float32), fraction)
    return tf.ensure_shape(resize(crop, size, "bilinear", legacy), [int(size[0]), int(size[1]), image.shape[-1]])


def to_signed(image):
    """[0, 1] -> [-1, 1]: x*2-1 clipped to [-1, 1] (the end of the authors' ``color_and_scale``)."""
    return tf.clip_by_value(tf.convert_to_tensor(image, tf.float32) * 2.0 - 1.0, -1.0, 1.0)


def artifacts_train(image, seed, size=(96, 96), color: bool = True):
    """Training preprocessing of the artifacts code (``process_train``): random resized crop, random flip,
    colour jitter (``color=False``: none, the Preprocessor's ``augment_color=False``), scale to [-1, 1].
    ``image``: (H, W, 3) float in [0, 1]."""
    crop_seed, flip_seed, color_seed = split_seed(seed, 3)
    x = random_resized_crop(image, crop_seed, size)
    x = random_flip(x, flip_seed)
    if color:
        x = color_jitter(x, color_seed)
    return to_signed(x)


def artifacts_eval(image, seed=None, size=(96, 96)):
    """Test preprocessing of the artifacts code (``process_test``): central 85 % crop, bilinear resize,
    scale to [-1, 1]. ``seed`` is ignored (deterministic), so it fits the pipeline's ``preprocess(image, seed)``."""
    del seed
    return to_signed(central_crop_resize(image, size))
