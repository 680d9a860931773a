"""Seeded augmentation ops (common/augment.py): each op gives the same result eagerly and inside Dataset.map
(big_vision pp/ops_image_test idea), plus one hand-made case per op."""
import functools

import numpy as np
import pytest
import tensorflow as tf

from common import augment

SEEDS = np.array([[0, 1], [7, 3], [123, 9], [5, 5]], np.int64)


def _image(h=24, w=24, seed=0):
    return np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)


OPS = {
    "random_resized_crop": functools.partial(augment.random_resized_crop, size=(12, 12)),
    "random_flip": augment.random_flip,
    "color_jitter": augment.color_jitter,
    "central_crop_resize": lambda im, s: augment.central_crop_resize(im, (10, 10)),
    "artifacts_train": functools.partial(augment.artifacts_train, size=(16, 16)),
    "artifacts_eval": functools.partial(augment.artifacts_eval, size=(16, 16)),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_same_eagerly_and_in_dataset_map(name):
    op = OPS[name]
    images = np.stack([_image(24, 30, k) for k in range(len(SEEDS))])
    eager = np.stack([op(tf.constant(im), tf.constant(s)).numpy() for im, s in zip(images, SEEDS)])
    mapped = np.stack(list(tf.data.Dataset.from_tensor_slices((images, SEEDS)).map(op).as_numpy_iterator()))
    np.testing.assert_array_equal(eager, mapped)
    again = np.stack([op(tf.constant(im), tf.constant(s)).numpy() for im, s in zip(images, SEEDS)])
    np.testing.assert_array_equal(eager, again)


def test_random_ops_depend_on_the_seed():
    im = tf.constant(_image())
    for name in ("random_resized_crop", "color_jitter", "artifacts_train"):
        outs = {OPS[name](im, tf.constant(s)).numpy().tobytes() for s in SEEDS}
        assert len(outs) > 1, name


def test_flip_of_a_known_image():
    im = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    outs = [augment.random_flip(im, tf.constant([s, 0])).numpy() for s in range(40)]
    flipped = [np.array_equal(o, im[:, ::-1]) for o in outs]
    kept = [np.array_equal(o, im) for o in outs]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 8 <= sum(flipped) <= 32  # probability 1/2


def test_crop_at_scale_one_keeps_the_whole_image():
    im = _image(20, 20)
    for s in SEEDS:
        out = augment.random_resized_crop(im, tf.constant(s), (20, 20), area_range=(1.0, 1.0))
        np.testing.assert_array_equal(out.numpy(), im)


def test_crop_is_a_window_of_the_requested_area():
    im = np.arange(16 * 16 * 3, dtype=np.float32).reshape(16, 16, 3)
    for s in SEEDS:
        out = augment.random_resized_crop(im, tf.constant(s), (8, 8), area_range=(0.25, 0.25),
                                          aspect_ratio_range=(1.0, 1.0)).numpy()
        top, left = int(out[0, 0, 0]) // 48, (int(out[0, 0, 0]) % 48) // 3
        np.testing.assert_array_equal(out, im[top:top + 8, left:left + 8])


def test_legacy_resize_is_tf1_align_corners_false():
    row = np.array([[0.0], [1.0]], np.float32).reshape(1, 2, 1)
    legacy = augment.resize(row, (1, 4), legacy=True).numpy().ravel()
    np.testing.assert_allclose(legacy, [0.0, 0.5, 1.0, 1.0])          # TF1: src = dst * in/out
    modern = augment.resize(row, (1, 4), legacy=False).numpy().ravel()
    np.testing.assert_allclose(modern, [0.0, 0.25, 0.75, 1.0])        # half-pixel centres


def test_jitter_with_zero_strength_is_identity():
    im = _image()
    for s in SEEDS:
        out = augment.color_jitter(im, tf.constant(s), brightness=0.0, saturation=(1.0, 1.0))
        np.testing.assert_array_equal(out.numpy(), im)


def test_jitter_brightness_adds_one_bounded_delta():
    im = _image()
    deltas = []
    for s in SEEDS:
        d = augment.color_jitter(im, tf.constant(s), brightness=0.1, saturation=(1.0, 1.0)).numpy() - im
        np.testing.assert_allclose(d, d.flat[0], atol=1e-6)
        assert -0.1 <= d.flat[0] < 0.1
        deltas.append(d.flat[0])
    assert len(set(np.round(deltas, 6))) == len(SEEDS)


def test_jitter_saturation_leaves_gray_pixels_and_scales_colour():
    gray = np.full((4, 4, 3), 0.4, np.float32)
    for s in SEEDS:
        out = augment.color_jitter(gray, tf.constant(s), brightness=0.0).numpy()
        np.testing.assert_allclose(out, gray, atol=1e-6)
    red = np.zeros((2, 2, 3), np.float32)
    red[..., 0], red[..., 1:] = 0.8, 0.4                       # HSV saturation 0.5
    out = augment.color_jitter(red, tf.constant([1, 2]), brightness=0.0, saturation=(0.5, 0.5)).numpy()
    np.testing.assert_allclose(out[0, 0], [0.8, 0.6, 0.6], atol=1e-5)  # saturation 0.25, value kept


def test_central_crop_keeps_the_centre():
    im = _image(20, 20)
    out = augment.central_crop_resize(im, (10, 10), fraction=0.5).numpy()
    np.testing.assert_array_equal(out, im[5:15, 5:15])


def test_artifacts_train_and_eval_range():
    im = _image(40, 50)
    for fn in (OPS["artifacts_train"], OPS["artifacts_eval"]):
        out = fn(tf.constant(im), tf.constant([3, 4])).numpy()
        assert out.shape == (16, 16, 3) and out.min() >= -1.0 and out.max() <= 1.0
    np.testing.assert_array_equal(augment.to_signed(np.array([0.0, 0.5, 1.0, 1.2])).numpy(), [-1.0, 0.0, 1.0, 1.0])
