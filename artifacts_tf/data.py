"""Data of one run: unlabelled images for the autoencoder and the game, labelled and test images for transfer.

All images stay uint8 at their stored size in memory; they are resized to ``image_size``, gray replicated to RGB
and scaled to [-1, 1] on the fly (the code's x / 255 * 2 - 1), so 60k Fashion-MNIST images never become 60k float
96x96x3 arrays: for training by ``common.streaming`` + ``common.augment.artifacts_train`` (the authors'
preprocessing; see ``artifacts_tf.experiment.game_batches``), for evaluation by :func:`eval_dataset`.

* ``stl10``: unlabelled = ``unlabeled`` (100k), labelled = ``train`` (5k), test = ``test`` (8k); folds = the ten
  predefined ``fold_indices.txt`` folds (Table 2).
* ``fashion_mnist`` (the stand-in used on this machine): unlabelled = the 60k training images *without* labels,
  labelled = the training images with labels, test = the 10k test images; folds = ten seeded disjoint folds of
  ``fold_size`` labelled training images (the STL-10 folds hold 1,000 of 5,000).
* ``image_folder``: ``<data_dir>/train/<class>/*`` (unlabelled and labelled) and ``<data_dir>/test/<class>/*``
  (``val/`` when there is no ``test/``, as in ImageNet). The unlabelled images are streamed from the files
  (``common.streaming.image_folder_source``: ImageNet-scale pre-training never holds the folder in memory); the
  labelled and test images are read into memory only for ``--transfer=table1`` (a small labelled folder); with
  another transfer only 16 test images are read, for Fig. 6 and the export check.

The unlabelled set is a ``common.streaming.Source`` for every dataset (STL-10's 100k images are read from the
memory-mapped binary, ``stl10_source``); ``pretrain_limit`` takes a seeded random subset of it.

Training augmentation (paper Sec. 5.2.1: "we randomly resize the images and extract 96x96 crops"; code, notes
2.2): ``common.augment.artifacts_train``: a random crop covering 1/3 to all of the image with aspect 3/4..4/3,
resized back, a random horizontal flip and, on RGB data, the code's colour jitter (Fashion-MNIST is gray: none).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from common.datasets import load_images, stl10_folds
from common.errors import DataError


# Test images read for Fig. 6 and the export check when the test set itself is not needed (image folders).
PREVIEW_IMAGES = 16


@dataclasses.dataclass
class RunData:
    unlabelled: object              # common.streaming.Source (uint8 (H, W, C) examples, streamed)
    labelled_x: np.ndarray
    labelled_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    classes: list
    folds: list                     # index arrays into labelled_x (Table 2)
    summary: dict


def _subset(n: int, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    if not limit or limit >= n:
        return np.arange(n)
    return np.sort(rng.choice(n, int(limit), replace=False))


def stratified_indices(y: np.ndarray, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    """A class-balanced random subset of ``limit`` indices (all when limit is 0/None or >= len(y))."""
    if not limit or limit >= len(y):
        return np.arange(len(y))
    classes = np.unique(y)
    per = max(1, int(limit) // len(classes))
    out = [rng.choice(np.flatnonzero(y == c), min(per, int(np.sum(y == c))), replace=False) for c in classes]
    return np.sort(np.concatenate(out))


def load(cfg) -> RunData:
    """The three sets (and the folds) for a resolved config; DataError when the dataset is missing."""
    from common.datasets import check_data_dir
    from common.streaming import array_source, image_folder_source, stl10_source, subset

    rng = np.random.default_rng(cfg.seed + 101)
    d = cfg.data_dir
    if cfg.dataset == "stl10":
        unl = stl10_source(check_data_dir("stl10", d), "unlabeled")
        lab = load_images("stl10", "train", d)
        test = load_images("stl10", "test", d)
        folds = stl10_folds(d)
    elif cfg.dataset == "fashion_mnist":
        lab = load_images("fashion_mnist", "train", d)
        test = load_images("fashion_mnist", "test", d)
        unl = array_source(lab.x, name="fashion_mnist")   # the training images without their labels
        folds = None
    elif cfg.dataset == "image_folder":
        root = check_data_dir("image_folder", d)
        unl = image_folder_source(root, split="train")
        # ImageNet / Places have val/ where other folders have test/.
        test_split = "test" if (root / "test").is_dir() else "val"
        if cfg.transfer in ("table1", "probe"):
            lab = load_images("image_folder", "train", d)
            test = load_images("image_folder", test_split, d)
        else:   # Tables 3-5 pre-training: nothing read whole
            lab = test = None
            test_source = image_folder_source(root, split=test_split)
        folds = None
    else:
        raise DataError(f"unsupported dataset {cfg.dataset!r}")
    unlabelled = subset(unl, _subset(len(unl), cfg.pretrain_limit, rng))
    if lab is None:
        return _streamed_image_folder(cfg, unlabelled, test_source)
    l_idx = stratified_indices(lab.y, cfg.labelled_limit, rng)
    t_idx = stratified_indices(test.y, cfg.test_limit, rng)
    labelled_x, labelled_y = np.asarray(lab.x[l_idx]), lab.y[l_idx]
    if folds is not None:
        pos = {int(i): k for k, i in enumerate(l_idx)}
        folds = [np.array([pos[int(i)] for i in f if int(i) in pos], np.int64) for f in folds[:cfg.folds]]
    else:
        folds = make_folds(len(labelled_y), cfg.folds, cfg.fold_size, cfg.seed)
    if len(np.unique(labelled_y)) < 2:
        raise DataError(f"the labelled {cfg.dataset} set holds fewer than two classes; it cannot train a classifier")
    summary = {"unlabelled": int(len(unlabelled)), "labelled": int(len(labelled_y)), "test": int(len(t_idx)),
               "stored_size": list(lab.x.shape[1:]), "image_size": cfg.image_size, "classes": len(lab.classes),
               "folds": len(folds), "fold_sizes": [int(len(f)) for f in folds]}
    return RunData(unlabelled, labelled_x, labelled_y, np.asarray(test.x[t_idx]), test.y[t_idx], list(lab.classes),
                   folds, summary)


def _streamed_image_folder(cfg, unlabelled, test_source) -> RunData:
    """An image folder without the Table 1 transfer (ImageNet pre-training for Tables 3-5): nothing is read
    whole; the labelled set is empty and ``test_x`` holds the first :data:`PREVIEW_IMAGES` test images (sorted
    listing), resized to ``image_size``, for Fig. 6 and the export check."""
    import tensorflow as tf

    from common.streaming import data_errors, make_dataset, subset

    first = subset(test_source, np.arange(min(PREVIEW_IMAGES, len(test_source))))
    with data_errors(first):
        batch = next(iter(make_dataset(first, seed=cfg.seed, batch_size=len(first), shuffle=False,
                                       size=(cfg.image_size, cfg.image_size))))
    preview = np.asarray(tf.image.convert_image_dtype(batch["image"], tf.uint8, saturate=True))
    summary = {"unlabelled": int(len(unlabelled)), "labelled": 0, "test": int(len(preview)), "streamed": True,
               "stored_size": None, "image_size": cfg.image_size, "classes": len(unlabelled.classes), "folds": 0,
               "fold_sizes": [], "note": f"--transfer={cfg.transfer}: labelled and test images not loaded; "
                                         f"test = the first {len(preview)} test images, for Fig. 6 / export"}
    return RunData(unlabelled, np.zeros((0,) + preview.shape[1:], np.uint8), np.zeros(0, np.int64), preview,
                   np.asarray(first.labels), list(unlabelled.classes), [], summary)


def make_folds(n: int, n_folds: int, fold_size: int | None, seed: int) -> list[np.ndarray]:
    """``n_folds`` disjoint seeded folds of ``fold_size`` indices out of ``n`` (fold_size 0: n // n_folds)."""
    size = int(fold_size) if fold_size else n // max(n_folds, 1)
    if n_folds * size > n:
        size = n // max(n_folds, 1)
    perm = np.random.default_rng(seed + 202).permutation(n)
    return [np.sort(perm[i * size:(i + 1) * size]) for i in range(n_folds)]


def to_model_range(images, image_size: int):
    """uint8 (B, H, W, C) -> float32 (B, S, S, 3) in [-1, 1] (bilinear resize, gray replicated)."""
    import tensorflow as tf

    x = tf.image.convert_image_dtype(tf.convert_to_tensor(images), tf.float32)
    if x.shape[-1] == 1:
        x = tf.image.grayscale_to_rgb(x)
    if x.shape[1] != image_size or x.shape[2] != image_size:
        x = tf.image.resize(x, (image_size, image_size), method="bilinear")
    return tf.clip_by_value(x * 2.0 - 1.0, -1.0, 1.0)


def eval_dataset(images: np.ndarray, image_size: int, batch_size: int, labels: np.ndarray | None = None):
    """Model-range images (and labels) in their stored order, for feature extraction and figures (no
    augmentation; the training pipeline is :func:`artifacts_tf.experiment.game_batches` on ``common.streaming``)."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((images,) if labels is None else (images, labels))

    def prep_eval(*item):
        x = to_model_range(item[0], image_size)
        return x if labels is None else (x, item[1])

    ds = ds.batch(batch_size).map(prep_eval, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
