"""Protocol sizes, class balance, disjointness and determinism on synthetic label arrays (no TensorFlow)."""
import numpy as np
import pytest

from common import protocols as P
from common.errors import ConfigError, DataError, ReproError


def _mnist_like_pool():
    """Labels with the real MNIST train+test class counts (70 000); x = the index, so x[i] identifies image i."""
    counts = [6903, 7877, 6990, 7141, 6824, 6313, 6876, 7293, 6825, 6958]
    y = np.repeat(np.arange(10), counts)
    y = np.random.default_rng(123).permutation(y)
    x = np.arange(len(y), dtype=np.int64)
    return x, y


def _mnist5k_like():
    y = np.random.default_rng(5).permutation(np.repeat(np.arange(10), 500))
    return np.arange(5000, dtype=np.int64), y


def _check_memae(split, x, y, c):
    # Disjoint index sets; images match their indices.
    tr, va, te = split.train_idx, split.val_idx, split.test_idx
    assert len(np.intersect1d(tr, va)) == 0 and len(np.intersect1d(tr, te)) == 0
    assert len(np.intersect1d(va, te)) == 0
    assert len(np.unique(te)) == len(te) and len(np.unique(va)) == len(va)
    np.testing.assert_array_equal(split.train_x, x[tr])
    np.testing.assert_array_equal(split.test_x, x[te])
    np.testing.assert_array_equal(split.val_x, x[va])
    # Training is normal only; labels follow the original classes (1 = anomaly).
    assert np.all(y[tr] == c)
    np.testing.assert_array_equal(split.test_y, (y[te] != c).astype(int))
    np.testing.assert_array_equal(split.val_y, (y[va] != c).astype(int))
    np.testing.assert_array_equal(split.test_classes, y[te])


@pytest.mark.parametrize("c", [0, 1, 9])
def test_memae_mnist_sizes(c):
    x, y = _mnist_like_pool()
    s = P.memae_mnist_split(x, y, normal_class=c, seed=17)
    _check_memae(s, x, y, c)
    n_c = int(np.sum(y == c))
    n_train_portion = int(n_c * 2 / 3)
    n_test_in = n_c - n_train_portion
    summ = s.summary()
    assert summ["n_train"] == n_train_portion - 150
    assert summ["n_val_inliers"] == 150 and summ["n_val_outliers"] == 150
    assert summ["n_test_inliers"] == n_test_in
    assert summ["n_test_outliers"] == int(0.30 * n_test_in)
    # Train + val inliers + test inliers = the whole normal class.
    assert summ["n_train"] + 150 + n_test_in == n_c
    # Outliers come from several other classes, never the normal one.
    assert len(np.unique(s.test_classes[s.test_y == 1])) == 9


def test_memae_on_mnist5k():
    x, y = _mnist5k_like()
    s = P.memae_mnist_split(x, y, normal_class=3, seed=0)
    _check_memae(s, x, y, 3)
    assert len(s.train_x) == 333 - 150 and np.sum(s.test_y == 0) == 167 and np.sum(s.test_y == 1) == 50


def test_memae_determinism_and_seed():
    x, y = _mnist_like_pool()
    a = P.memae_mnist_split(x, y, 4, seed=1)
    b = P.memae_mnist_split(x, y, 4, seed=1)
    c = P.memae_mnist_split(x, y, 4, seed=2)
    for f in ("train_idx", "val_idx", "test_idx"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert not np.array_equal(a.test_idx, c.test_idx)


def test_memae_outlier_ratio_of_test_set():
    x, y = _mnist5k_like()
    s = P.memae_mnist_split(x, y, 0, seed=0, outlier_ratio=0.3 / 0.7)
    frac = np.mean(s.test_y)
    assert abs(frac - 0.30) < 0.01


def test_memae_images_2d_and_errors():
    y = np.repeat(np.arange(10), 500)
    x = np.zeros((5000, 28, 28, 1), np.uint8)
    s = P.memae_mnist_split(x, y, 2, seed=0)
    assert s.train_x.shape[1:] == (28, 28, 1)
    with pytest.raises(ConfigError):
        P.memae_mnist_split(x, y, 11, seed=0)
    with pytest.raises(DataError):  # too few images for 150 validation inliers
        P.memae_mnist_split(x[:1000], np.tile(np.arange(10), 100), 2, seed=0)


def _cifar_like():
    rng = np.random.default_rng(0)
    ytr = rng.permutation(np.repeat(np.arange(10), 5000))
    yte = rng.permutation(np.repeat(np.arange(10), 1000))
    return (np.arange(50000), ytr), (np.arange(100000, 110000), yte)


def test_ocgan_protocol2():
    train, test = _cifar_like()
    s = P.ocgan_cifar_split(train, test, normal_class=6, seed=17)
    assert len(s.train_x) == 5000 - 150
    assert np.all(train[1][s.train_idx] == 6)
    assert np.sum(s.val_y == 0) == 150 and np.sum(s.val_y == 1) == 150
    assert np.all(train[1][s.val_idx[s.val_y == 0]] == 6) and np.all(train[1][s.val_idx[s.val_y == 1]] != 6)
    assert len(np.intersect1d(s.train_idx, s.val_idx)) == 0
    assert np.sum(s.test_y == 0) == 1000 and np.sum(s.test_y == 1) == 9000
    assert s.sources == dict(train="train", val="train", test="test")
    np.testing.assert_array_equal(s.test_x, test[0])
    # Without validation: all 5000 training images of the class.
    s0 = P.ocgan_cifar_split(train, test, 6, seed=0, n_val_inliers=0, n_val_outliers=0)
    assert len(s0.train_x) == 5000 and len(s0.val_x) == 0


def test_one_vs_rest():
    train, test = _cifar_like()
    s = P.one_vs_rest_split(train, test, normal_class=0)
    assert len(s.train_x) == 5000 and len(s.val_x) == 0
    assert np.sum(s.test_y == 0) == 1000 and np.sum(s.test_y == 1) == 9000
    s2 = P.one_vs_rest_split(train, test, normal_class=0)
    np.testing.assert_array_equal(s.train_idx, s2.train_idx)


class _FakeImageSet:
    def __init__(self, x, y):
        self.x, self.y = x, y


def test_accepts_imageset_like_and_pool_sets():
    (xtr, ytr), (xte, yte) = _cifar_like()
    s = P.one_vs_rest_split(_FakeImageSet(xtr, ytr), _FakeImageSet(xte, yte), 1)
    assert len(s.train_x) == 5000
    x, y = P.pool_sets(_FakeImageSet(xtr, ytr), (xte, yte))
    assert len(x) == len(y) == 60000
    with pytest.raises(ReproError):
        P.one_vs_rest_split(xtr, (xte, yte), 1)


def test_validation_from_train_balance_and_removal():
    inl = np.arange(0, 1000)
    out = np.arange(1000, 3000)
    tr, va, vy = P.validation_from_train(inl, out, seed=3)
    assert len(va) == 300 and np.sum(vy == 0) == 150 and np.sum(vy == 1) == 150
    assert np.all(va[vy == 0] < 1000) and np.all(va[vy == 1] >= 1000)
    assert len(tr) == 850 and len(np.intersect1d(tr, va)) == 0
    tr2, va2, _ = P.validation_from_train(inl, out, seed=3)
    np.testing.assert_array_equal(va, va2)
    with pytest.raises(DataError):
        P.validation_from_train(inl[:100], out, seed=0)


def test_extract_patches_ped2_geometry():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 240, 360), dtype=np.uint8)
    p, ids, pos = P.extract_patches(frames)
    assert p.shape == (3 * 8 * 12, 30, 30) and p.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(ids), [96, 96, 96])
    # Every patch equals the frame crop at its position.
    for k in rng.integers(0, len(p), 20):
        r, c = pos[k]
        np.testing.assert_array_equal(p[k], frames[ids[k], r:r + 30, c:c + 30])
    # Non-overlapping tiling covers the frame exactly once.
    cover = np.zeros((240, 360), int)
    for r, c in pos[ids == 0]:
        cover[r:r + 30, c:c + 30] += 1
    assert np.all(cover == 1)


def test_extract_patches_stride_border_and_channels():
    frames = np.arange(2 * 50 * 70 * 3, dtype=np.float32).reshape(2, 50, 70, 3)
    p, ids, pos = P.extract_patches(frames, size=30, stride=15)
    rows, cols = P.patch_grid(50, 30, 15), P.patch_grid(70, 30, 15)
    np.testing.assert_array_equal(rows, [0, 15, 20])  # 20 = snapped to the border
    np.testing.assert_array_equal(cols, [0, 15, 30, 40])
    assert p.shape == (2 * 3 * 4, 30, 30, 3)
    k = 7
    r, c = pos[k]
    np.testing.assert_array_equal(p[k], frames[ids[k], r:r + 30, c:c + 30])
    _, _, pos2 = P.extract_patches(frames, size=30, stride=15, cover_border=False)
    assert pos2[:, 0].max() == 15
    with pytest.raises(ConfigError):
        P.extract_patches(frames, size=60)
    with pytest.raises(DataError):
        P.extract_patches(np.zeros((4, 4)))


def test_frame_scores_max_over_patches():
    scores = np.array([0.1, 0.5, 0.3, 0.9, 0.2, 0.2])
    ids = np.array([0, 0, 1, 1, 2, 2])
    np.testing.assert_allclose(P.frame_scores_from_patches(scores, ids, 3), [0.5, 0.9, 0.2])
    with pytest.raises(DataError, match="no patch"):
        P.frame_scores_from_patches(scores, ids, 4)
    with pytest.raises(DataError):
        P.frame_scores_from_patches(scores, ids + 1, 3)
