"""Data of one image pretext-task run: read (``common.datasets``), split one-vs-all (``common.protocols``), cut
to the preset's sizes, scale to [-1, 1] and bring to ``image_size``.

Protocol (Section IV-B, GEOM's code, reference notes 5.5): train on the training images of the normal class of the
official split, test on the whole official test split, every other class is an anomaly
(:func:`common.protocols.one_vs_rest_split`). Per dataset:

* ``fashion_mnist``, ``mnist``, ``cifar10``: the official train / test split, 10 classes.
* ``cifar100``: the 20 superclasses (coarse labels) as classes (Section IV-A), official split.
* ``mnist5k`` (5,000 MNIST digits, no official split): a seeded stratified 80 / 20 split of each digit into
  train / test (4,000 / 1,000 images), then the same one-vs-all protocol.
* ``image_folder`` (Table III's ImageNet 20-class subset): ``<data_dir>/train/<class>/`` and
  ``<data_dir>/test/<class>/`` (classes = sorted folder names), images resized to ``image_size``.

Scaling: ``x / 127.5 - 1``. Images smaller than ``image_size`` are padded with -1 (black) on all sides (28 x 28
-> 32 x 32, as GEOM's code pads MNIST / Fashion-MNIST with zeros before scaling); other sizes are resized
(bilinear).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from common import datasets, protocols
from common.errors import DataError
from permutation_tf.image.config import ImageTaskConfig

MNIST5K_TEST_FRACTION = 0.2


@dataclasses.dataclass
class ImageData:
    train_x: np.ndarray       # float32 [-1, 1], [N, S, S, C], all of the normal class
    test_x: np.ndarray
    test_y: np.ndarray        # 1 = anomaly (another class), 0 = the normal class
    test_classes: np.ndarray  # original class of each test image
    classes: list
    summary: dict

    @property
    def input_shape(self) -> tuple:
        return tuple(self.train_x.shape[1:])


def pooled_split(x, y, seed: int, test_fraction: float = MNIST5K_TEST_FRACTION):
    """A stratified train / test split of a pooled set (mnist5k): ``round(test_fraction * n_c)`` random images of
    each class c go to the test part. Returns ``((train_x, train_y), (test_x, test_y))`` in the original order."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), bool)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        test[rng.choice(idx, int(round(test_fraction * len(idx))), replace=False)] = True
    return (x[~test], y[~test]), (x[test], y[test])


def stratified_subset(labels, limit: int, seed: int) -> np.ndarray:
    """Sorted indices of a random subset of about ``limit`` items with the class proportions of ``labels``
    (every class keeps at least one item); all indices when ``limit`` is 0 or not smaller than the set."""
    labels = np.asarray(labels)
    if limit <= 0 or limit >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = max(1, int(round(limit * len(idx) / len(labels))))
        keep.append(rng.choice(idx, min(k, len(idx)), replace=False))
    return np.sort(np.concatenate(keep))


def to_model_input(x_uint8: np.ndarray, size: int) -> np.ndarray:
    """uint8 ``[N, H, W, C]`` -> float32 ``[N, size, size, C]`` in [-1, 1] (pad with -1 or resize, see module)."""
    x = x_uint8.astype(np.float32) / 127.5 - 1.0
    n, h, w, c = x.shape
    if (h, w) == (size, size):
        return x
    if h <= size and w <= size:
        top, left = (size - h) // 2, (size - w) // 2
        out = np.full((n, size, size, c), -1.0, np.float32)
        out[:, top:top + h, left:left + w] = x
        return out
    import tensorflow as tf

    return tf.image.resize(x, (size, size), method="bilinear").numpy().astype(np.float32)


def load_split(cfg: ImageTaskConfig):
    """The official (or, for mnist5k, the seeded pooled) train and test ``(x, y)`` sets and the class names."""
    name = cfg.dataset
    if name == "mnist5k":
        pool = datasets.load_images("mnist5k", "all", cfg.data_dir)
        train, test = pooled_split(pool.x, pool.y, cfg.seed)
        return train, test, list(pool.classes)
    if name == "image_folder":
        from pathlib import Path

        from common.paths import resolve_data_dir

        root = Path(resolve_data_dir(cfg.data_dir))
        if not (root / "train").is_dir() or not (root / "test").is_dir():
            raise DataError(f"--dataset=image_folder needs {root}/train/<class>/*.jpg and {root}/test/<class>/*.jpg "
                            f"(pass the folder with --data_dir)")
        size = (cfg.image_size, cfg.image_size)
        tr = datasets.load_images("image_folder", "train", root, size=size)
        te = datasets.load_images("image_folder", "test", root, size=size)
        return (tr.x, tr.y), (te.x, te.y), list(tr.classes)
    kw = {"label_mode": "coarse"} if name == "cifar100" else {}
    tr = datasets.load_images(name, "train", cfg.data_dir, **kw)
    te = datasets.load_images(name, "test", cfg.data_dir, **kw)
    return (tr.x, tr.y), (te.x, te.y), list(tr.classes)


def prepare(cfg: ImageTaskConfig) -> ImageData:
    """Read, split one-vs-all on ``cfg.normal_class``, cut to ``train_limit`` / ``test_limit``, scale."""
    train, test, classes = load_split(cfg)
    if not 0 <= cfg.normal_class < len(classes):
        raise DataError(f"--normal_class={cfg.normal_class} is out of range: {cfg.dataset} has {len(classes)} "
                        f"classes (0..{len(classes) - 1})")
    split = protocols.one_vs_rest_split(train, test, cfg.normal_class)
    rng = np.random.default_rng(cfg.seed)
    train_idx = np.arange(len(split.train_x))
    if cfg.train_limit and cfg.train_limit < len(train_idx):
        train_idx = np.sort(rng.choice(train_idx, cfg.train_limit, replace=False))
    test_idx = stratified_subset(split.test_classes, cfg.test_limit, cfg.seed + 1)
    data = ImageData(
        train_x=to_model_input(split.train_x[train_idx], cfg.image_size),
        test_x=to_model_input(split.test_x[test_idx], cfg.image_size),
        test_y=split.test_y[test_idx], test_classes=split.test_classes[test_idx], classes=classes, summary={})
    if len(np.unique(data.test_y)) < 2:
        raise DataError(f"the test set of {cfg.dataset} class {cfg.normal_class} holds only one kind of image "
                        f"(normal or anomalous); use a larger --test_limit")
    data.summary = dict(split.summary(), n_train_used=int(len(data.train_x)), n_test_used=int(len(data.test_x)),
                        n_test_anomalies=int(data.test_y.sum()), input_shape=list(data.input_shape),
                        classes=len(classes), class_name=str(classes[cfg.normal_class]))
    return data
