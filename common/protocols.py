"""One-class evaluation protocols as pure, seeded functions (numpy only, no TensorFlow).

Every split returns a :class:`OneClassSplit`. Labels follow one rule everywhere: ``1`` = anomaly / outlier,
``0`` = normal / inlier; scores are "higher = more anomalous" (see :mod:`common.metrics`). A split only selects
images; scaling to [-1, 1] or [0, 1] is the model's business. Randomness comes from
``numpy.random.default_rng(seed)`` created inside each function, so the same arguments always give the same split
and no global state is touched.

Protocols and where they come from:

* :func:`memae_mnist_split`: MemAE's MNIST protocol as used by OLED (Table 1) and implemented in OLED's
  ``mnist_experiment/scripts/train.py`` (reference notes 4.3 and 5.2).
* :func:`ocgan_cifar_split`: OCGAN protocol 2 for CIFAR-10 as used by OLED (Table 2; reference notes 4.3, 5.3).
* :func:`one_vs_rest_split`: the GEOM one-vs-rest protocol of the permutation paper (Tables I-III;
  reference notes 5.5).
* :func:`validation_from_train`: OLED Section 4.1 "Following [29] (ALOCC), a small validation set containing 150
  samples from inliers and 150 samples from outliers from the training set is used to determine the best epoch".
* :func:`extract_patches` / :func:`frame_scores_from_patches`: UCSD Ped2 patches of 30x30 (NRE Section 4.5,
  OLED Section 4.5) and the frame-level rule "a frame is anomalous if at least one of its pixels/patches is"
  (NRE Section 4.5 following ALOCC), i.e. frame score = maximum patch score.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from common.errors import ConfigError, DataError

__all__ = [
    "OneClassSplit",
    "memae_mnist_split",
    "ocgan_cifar_split",
    "one_vs_rest_split",
    "validation_from_train",
    "pool_sets",
    "extract_patches",
    "patch_grid",
    "frame_scores_from_patches",
    "N_VAL_INLIERS",
    "N_VAL_OUTLIERS",
    "UCSD_PATCH_SIZE",
    "UCSD_PATCH_STRIDE",
]

# OLED Section 4.1 (following ALOCC [29]): 150 inliers + 150 outliers taken from the training data.
N_VAL_INLIERS = 150
N_VAL_OUTLIERS = 150
# NRE Section 4.5 and OLED Section 4.5: "patches of size 30x30". Neither paper (nor any released code) states a
# stride; we default to non-overlapping patches (stride = size), which tile a 240x360 Ped2 frame exactly into
# 8 x 12 = 96 patches. ALOCC's code used 45x45 patches with stride 25 (train) / 10 (test) instead.
UCSD_PATCH_SIZE = 30
UCSD_PATCH_STRIDE = 30


@dataclasses.dataclass
class OneClassSplit:
    """A one-class train / validation / test split (labels: 1 = anomaly, 0 = normal).

    Attributes:
      train_x: training images, all of the normal class.
      val_x, val_y: validation images and labels (may be empty when the protocol has no validation set).
      test_x, test_y: test images and labels.
      train_idx, val_idx, test_idx: int64 indices of those images in their source arrays, named by
        ``sources`` (e.g. ``{"train": "pool", "val": "pool", "test": "pool"}`` for the MemAE protocol, whose
        images all come from one pooled array; ``"train"`` / ``"test"`` = the official train / test split).
        Indices with the same source are disjoint across train, val and test.
      test_classes, val_classes: original class labels of the test / validation images (for per-class analysis).
      normal_class: the class treated as normal.
      protocol: short protocol name; ``notes``: one line on the choices made.
    """

    train_x: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    train_idx: np.ndarray
    val_idx: np.ndarray
    test_idx: np.ndarray
    sources: dict
    test_classes: np.ndarray
    val_classes: np.ndarray
    normal_class: int
    protocol: str
    notes: str = ""

    def summary(self) -> dict:
        """Counts for logs and config files (JSON-serialisable)."""
        return dict(
            protocol=self.protocol,
            normal_class=int(self.normal_class),
            n_train=int(len(self.train_x)),
            n_val_inliers=int(np.sum(self.val_y == 0)),
            n_val_outliers=int(np.sum(self.val_y == 1)),
            n_test_inliers=int(np.sum(self.test_y == 0)),
            n_test_outliers=int(np.sum(self.test_y == 1)),
            sources=dict(self.sources),
            notes=self.notes,
        )


# ----------------------------------------------------------------------------------------------------------------
# Input helpers
# ----------------------------------------------------------------------------------------------------------------

def _xy(data: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Accept an ``ImageSet``-like object (``.x``, ``.y``) or an ``(x, y)`` pair; return arrays, checked."""
    if hasattr(data, "x") and hasattr(data, "y"):
        x, y = data.x, data.y
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
    else:
        raise ConfigError(f"{name} must be an ImageSet (with .x and .y) or an (x, y) pair, got {type(data).__name__}")
    x = np.asarray(x)
    y = np.asarray(y).reshape(-1)
    if len(x) != len(y):
        raise DataError(f"{name}: {len(x)} images but {len(y)} labels")
    if not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise DataError(f"{name}: class labels must be integers, got dtype {y.dtype}")
    return x, y.astype(np.int64)


def _check_class(y: np.ndarray, normal_class: int, name: str) -> None:
    classes = np.unique(y)
    if int(normal_class) not in set(classes.tolist()):
        raise ConfigError(f"normal_class {normal_class} does not occur in {name}; classes present: "
                          f"{classes.tolist()[:20]}")
    if classes.size < 2:
        raise DataError(f"{name} holds a single class ({classes[0]}): no outliers to draw")


def _choose(rng: np.random.Generator, pool: np.ndarray, n: int, what: str) -> np.ndarray:
    """``n`` distinct elements of ``pool`` (a seeded draw), sorted; one clear error if the pool is too small."""
    if n < 0:
        raise ConfigError(f"{what}: a negative count ({n}) was requested")
    if n > len(pool):
        raise DataError(f"{what}: need {n} images but only {len(pool)} are available; use a smaller count or a "
                        f"larger dataset")
    return np.sort(rng.choice(pool, size=n, replace=False)).astype(np.int64)


def pool_sets(*sets) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate several ``ImageSet``-like objects (or ``(x, y)`` pairs), e.g. MNIST train + test -> 70 000.

    The MemAE protocol pools the official splits first (OLED ``get_data``: ``np.concatenate((x_train, x_test))``).
    """
    if not sets:
        raise ConfigError("pool_sets needs at least one set")
    xs, ys = zip(*(_xy(s, f"set {i}") for i, s in enumerate(sets)))
    return np.concatenate(xs), np.concatenate(ys)


# ----------------------------------------------------------------------------------------------------------------
# Validation set (OLED Section 4.1 / ALOCC)
# ----------------------------------------------------------------------------------------------------------------

def validation_from_train(
    inlier_idx,
    outlier_idx,
    seed: int,
    n_inliers: int = N_VAL_INLIERS,
    n_outliers: int = N_VAL_OUTLIERS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hold out a labelled validation set from the training data: 150 inliers + 150 outliers by default.

    Source: OLED Section 4.1, "Following [29] (ALOCC), a small validation set containing 150 samples from inliers
    and 150 samples from outliers from the training set is used to determine the best epoch". (OLED's released
    code used 300 + 90 on MNIST and 300 + 300 on CIFAR-10, reference notes 4.3; we follow the paper's numbers.)

    Args:
      inlier_idx: indices of the normal-class training images. The validation inliers are drawn from these and
        REMOVED from the training set.
      outlier_idx: indices of other-class images the validation outliers may be drawn from. The caller must
        pass only images that are not in the test set (they are never trained on, since training uses the
        normal class only).
      seed: seed of the draw (``numpy.random.default_rng(seed)``).
      n_inliers, n_outliers: sizes; 0 gives an empty validation part.

    Returns:
      ``(train_idx, val_idx, val_y)``: remaining training indices (sorted), validation indices (the inliers
      first, then the outliers) and validation labels (0 for inliers, 1 for outliers).
    """
    inlier_idx = np.asarray(inlier_idx, dtype=np.int64).reshape(-1)
    outlier_idx = np.asarray(outlier_idx, dtype=np.int64).reshape(-1)
    if np.intersect1d(inlier_idx, outlier_idx).size:
        raise ConfigError("validation_from_train: inlier and outlier index sets overlap")
    rng = np.random.default_rng(seed)
    val_in = _choose(rng, inlier_idx, n_inliers, "validation inliers")
    val_out = _choose(rng, outlier_idx, n_outliers, "validation outliers")
    train_idx = np.sort(np.setdiff1d(inlier_idx, val_in, assume_unique=False))
    if train_idx.size == 0:
        raise DataError(f"no training images left after holding out {n_inliers} validation inliers "
                        f"from {inlier_idx.size}")
    val_idx = np.concatenate([val_in, val_out])
    val_y = np.concatenate([np.zeros(len(val_in), np.int64), np.ones(len(val_out), np.int64)])
    return train_idx, val_idx, val_y


def _sub_seed(seed: int, stream: int) -> int:
    """An independent, reproducible child seed for a second draw inside one protocol."""
    return int(np.random.SeedSequence([int(seed), int(stream)]).generate_state(1)[0])


# ----------------------------------------------------------------------------------------------------------------
# Image protocols
# ----------------------------------------------------------------------------------------------------------------

def memae_mnist_split(
    x,
    y,
    normal_class: int,
    seed: int,
    train_fraction: float = 2.0 / 3.0,
    outlier_ratio: float = 0.30,
    n_val_inliers: int = N_VAL_INLIERS,
    n_val_outliers: int = N_VAL_OUTLIERS,
) -> OneClassSplit:
    """MemAE's MNIST protocol (OLED Table 1; MemAE [9]) on a POOLED image set.

    Source: OLED Section 4.3 "the inliers are sampled from 1 class, and the outliers are sampled from the
    remaining 9 classes. The normal data is split into train and test sets with a ratio of 2:1, and the anomaly
    proportion is set to be 30%"; implemented as in OLED's ``mnist_experiment/scripts/train.py`` (reference
    notes 4.3, 5.2):

    1. ``x, y`` are the pooled data: MNIST / Fashion-MNIST train + test (70 000 images; use :func:`pool_sets`)
       or mnist5k (5 000 images).
    2. A random ``train_fraction`` (2/3; the OLED code writes 0.6667) of the normal-class images, rounded down,
       is the training portion; the rest are the test inliers.
    3. Test outliers: ``int(outlier_ratio * n_test_inliers)`` images drawn from the other classes. This follows
       the OLED code: 30 % *of the number of test inliers*, so anomalies are about 23 % of the test set. Pass
       ``outlier_ratio=0.3 / 0.7`` for the other reading (anomalies = 30 % of the test set).
    4. Validation (:func:`validation_from_train`, OLED Section 4.1): ``n_val_inliers`` (150) of the training
       portion are held out (removed from training) and ``n_val_outliers`` (150) other-class images that are
       NOT test outliers are drawn. (The OLED code used 300 inliers and 90 outliers; the paper says 150 + 150.)

    Returns a :class:`OneClassSplit` whose indices all point into the pooled ``x`` (``sources`` = "pool").
    On mnist5k (500 images per class) digit c gives 333 - 150 = 183 training images, 167 test inliers and 50
    test outliers.
    """
    x, y = _xy((x, y), "memae_mnist_split data")
    _check_class(y, normal_class, "the pooled data")
    if not 0.0 < train_fraction < 1.0:
        raise ConfigError(f"train_fraction must be in (0, 1), got {train_fraction}")
    if outlier_ratio < 0:
        raise ConfigError(f"outlier_ratio must be >= 0, got {outlier_ratio}")
    rng = np.random.default_rng(seed)
    inl = np.flatnonzero(y == normal_class)
    out = np.flatnonzero(y != normal_class)

    n_train = int(len(inl) * train_fraction)
    train_portion = _choose(rng, inl, n_train, "training inliers")
    test_in = np.setdiff1d(inl, train_portion)
    if test_in.size == 0:
        raise DataError(f"class {normal_class} has {len(inl)} images: none left for testing")
    n_test_out = int(len(test_in) * outlier_ratio)
    test_out = _choose(rng, out, n_test_out, "test outliers")

    remaining_out = np.setdiff1d(out, test_out)
    train_idx, val_idx, val_y = validation_from_train(train_portion, remaining_out, _sub_seed(seed, 1),
                                                      n_val_inliers, n_val_outliers)
    test_idx = np.concatenate([test_in, test_out])
    test_y = np.concatenate([np.zeros(len(test_in), np.int64), np.ones(len(test_out), np.int64)])
    return OneClassSplit(
        train_x=x[train_idx], val_x=x[val_idx], val_y=val_y, test_x=x[test_idx], test_y=test_y,
        train_idx=train_idx, val_idx=val_idx, test_idx=test_idx,
        sources=dict(train="pool", val="pool", test="pool"),
        test_classes=y[test_idx], val_classes=y[val_idx], normal_class=int(normal_class), protocol="memae_mnist",
        notes=(f"MemAE/OLED MNIST protocol: train fraction {train_fraction:.4f} of the normal class, test outliers "
               f"= int({outlier_ratio} x test inliers), validation {n_val_inliers}+{n_val_outliers} from "
               "non-test data"),
    )


def ocgan_cifar_split(
    train,
    test,
    normal_class: int,
    seed: int,
    n_val_inliers: int = N_VAL_INLIERS,
    n_val_outliers: int = N_VAL_OUTLIERS,
) -> OneClassSplit:
    """OCGAN protocol 2 for CIFAR-10 (OLED Table 2; OCGAN [Perera et al. 2019]; reference notes 4.3 and 5.3).

    Train on the training images of the normal class; test on the complete official test set (for CIFAR-10:
    that class's 1 000 test images as normal, the other 9 000 as anomalies). The validation set of OLED
    Section 4.1 is taken from the TRAINING split: ``n_val_inliers`` (150) normal-class training images, removed
    from training, plus ``n_val_outliers`` (150) training images of the other classes (the OLED code held out
    300 + 300; the paper says 150 + 150). ``n_val_inliers=n_val_outliers=0`` gives the pure OCGAN protocol
    (training on all 5 000 images of the class).

    Args:
      train, test: ``ImageSet``-like objects (``.x``, ``.y``) or ``(x, y)`` pairs of the official splits.
    Indices: train/val point into ``train``, test into ``test``.
    """
    xtr, ytr = _xy(train, "train")
    xte, yte = _xy(test, "test")
    _check_class(ytr, normal_class, "the training split")
    _check_class(yte, normal_class, "the test split")
    inl = np.flatnonzero(ytr == normal_class)
    out = np.flatnonzero(ytr != normal_class)
    train_idx, val_idx, val_y = validation_from_train(inl, out, seed, n_val_inliers, n_val_outliers)
    test_idx = np.arange(len(yte), dtype=np.int64)
    test_y = (yte != normal_class).astype(np.int64)
    return OneClassSplit(
        train_x=xtr[train_idx], val_x=xtr[val_idx], val_y=val_y, test_x=xte, test_y=test_y,
        train_idx=train_idx, val_idx=val_idx, test_idx=test_idx,
        sources=dict(train="train", val="train", test="test"),
        test_classes=yte.copy(), val_classes=ytr[val_idx], normal_class=int(normal_class), protocol="ocgan_p2",
        notes=(f"OCGAN protocol 2: normal-class training images minus {n_val_inliers} validation inliers; "
               f"{n_val_outliers} validation outliers from other-class training images; full test set"),
    )


def one_vs_rest_split(train, test, normal_class: int) -> OneClassSplit:
    """One-vs-rest on the official split (GEOM protocol, used by the permutation paper, Tables I-III).

    Source: permutation paper Section IV ("we train the self-supervised visual learning task on one class c ...
    samples from remaining C-1 classes are said to be abnormal") and GEOM's code (reference notes 5.5): train
    only on the training images of the normal class; test on the WHOLE official test set, anomaly = any other
    class. No validation set (the protocol has no model selection), so ``val_x``/``val_y`` are empty.
    Deterministic (no randomness). Indices: train into ``train``, test into ``test``.
    """
    xtr, ytr = _xy(train, "train")
    xte, yte = _xy(test, "test")
    _check_class(ytr, normal_class, "the training split")
    _check_class(yte, normal_class, "the test split")
    train_idx = np.flatnonzero(ytr == normal_class).astype(np.int64)
    empty = np.zeros(0, np.int64)
    return OneClassSplit(
        train_x=xtr[train_idx], val_x=xtr[empty], val_y=empty.copy(), test_x=xte,
        test_y=(yte != normal_class).astype(np.int64),
        train_idx=train_idx, val_idx=empty.copy(), test_idx=np.arange(len(yte), dtype=np.int64),
        sources=dict(train="train", val="train", test="test"),
        test_classes=yte.copy(), val_classes=empty.copy(), normal_class=int(normal_class), protocol="one_vs_rest",
        notes="GEOM one-vs-rest: all normal-class training images; whole test set, other classes anomalous",
    )


# ----------------------------------------------------------------------------------------------------------------
# UCSD patches
# ----------------------------------------------------------------------------------------------------------------

def patch_grid(length: int, size: int, stride: int, cover_border: bool = True) -> np.ndarray:
    """Start offsets ``0, stride, 2*stride, ...`` of patches along one axis of ``length`` pixels.

    With ``cover_border`` a last start ``length - size`` is added when the regular grid leaves a strip at the
    border uncovered (ALOCC's code also snaps its last patch to the border; reference notes 5.1), so every pixel
    lies in at least one patch.
    """
    if size > length:
        raise ConfigError(f"patch size {size} is larger than the frame side {length}")
    starts = list(range(0, length - size + 1, stride))
    if cover_border and starts[-1] + size < length:
        starts.append(length - size)
    return np.asarray(starts, dtype=np.int64)


def extract_patches(
    frames,
    size: int = UCSD_PATCH_SIZE,
    stride: int = UCSD_PATCH_STRIDE,
    cover_border: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut every frame into ``size x size`` patches on a regular grid.

    Defaults: 30x30 patches as in NRE Section 4.5 ("we divided the video frames into 2D patches of size 30x30")
    and OLED Section 4.5 ("divided into patches of size 30x30 pixels following [29]"). Neither paper states a
    stride, so the default is non-overlapping (stride 30), which tiles a 240x360 UCSD Ped2 frame exactly
    (8 x 12 = 96 patches per frame). See :func:`patch_grid` for ``cover_border``.

    Args:
      frames: ``(T, H, W)`` or ``(T, H, W, C)`` array (any dtype; kept).
    Returns:
      ``(patches, frame_ids, positions)``: ``patches`` ``(N, size, size[, C])`` in frame-major, then row-major
      order; ``frame_ids`` int64 ``(N,)`` = index of the source frame; ``positions`` int64 ``(N, 2)`` = (row,
      column) of each patch's top-left corner.
    """
    a = np.asarray(frames)
    if a.ndim not in (3, 4):
        raise DataError(f"frames must be (T, H, W) or (T, H, W, C), got shape {a.shape}")
    size, stride = int(size), int(stride)
    if size < 1 or stride < 1:
        raise ConfigError(f"patch size and stride must be >= 1, got size={size}, stride={stride}")
    t, h, w = a.shape[:3]
    if t == 0:
        raise DataError("no frames to cut into patches")
    rows = patch_grid(h, size, stride, cover_border)
    cols = patch_grid(w, size, stride, cover_border)
    # (T, nH, nW, [C,] size, size) view without copying, then select the grid starts.
    win = np.lib.stride_tricks.sliding_window_view(a, (size, size), axis=(1, 2))
    win = win[:, rows[:, None], cols[None, :]]  # one fancy index: copies only the selected windows
    if a.ndim == 4:  # (T, nr, nc, C, s, s) -> (T, nr, nc, s, s, C)
        win = np.moveaxis(win, 3, -1)
    nr, nc = len(rows), len(cols)
    patches = np.ascontiguousarray(win.reshape((t * nr * nc,) + win.shape[3:]))
    frame_ids = np.repeat(np.arange(t, dtype=np.int64), nr * nc)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    positions = np.tile(np.stack([rr.reshape(-1), cc.reshape(-1)], axis=1), (t, 1))
    return patches, frame_ids, positions


def frame_scores_from_patches(patch_scores, frame_ids, n_frames: int) -> np.ndarray:
    """Frame score = maximum of its patches' scores (higher = more anomalous).

    Source: the frame-level measure of NRE Section 4.5 / ALOCC ("a frame is considered as anomaly if at least
    one of its pixels is detected as anomaly"): a frame is as anomalous as its most anomalous patch.
    Every frame ``0 .. n_frames-1`` must own at least one patch.
    """
    s = np.asarray(patch_scores, dtype=np.float64).reshape(-1)
    ids = np.asarray(frame_ids).reshape(-1)
    if s.shape != ids.shape:
        raise DataError(f"{s.size} patch scores but {ids.size} frame ids")
    if not np.all(np.isfinite(s)):
        raise DataError(f"{int(np.sum(~np.isfinite(s)))} patch scores are NaN or infinite; check the model outputs")
    if not np.issubdtype(ids.dtype, np.integer):
        raise DataError(f"frame_ids must be integers, got dtype {ids.dtype}")
    n_frames = int(n_frames)
    if ids.size and (ids.min() < 0 or ids.max() >= n_frames):
        raise DataError(f"frame ids must lie in [0, {n_frames}), got range [{ids.min()}, {ids.max()}]")
    out = np.full(n_frames, -np.inf)
    np.maximum.at(out, ids, s)
    missing = np.flatnonzero(np.isneginf(out))
    if missing.size:
        raise DataError(f"{missing.size} of {n_frames} frames have no patch score (first: frame {missing[0]})")
    return out
