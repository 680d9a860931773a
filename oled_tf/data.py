"""Data for OLED runs: read a dataset with ``common.datasets``, split it with ``common.protocols``, scale to
[-1, 1] (notes 4.3: x / 127.5 - 1) and apply the scale preset's cuts.

Protocols (``--protocol=auto`` picks the paper's for each dataset):

* ``memae``: MemAE's protocol on the pooled data (MNIST train + test, or mnist5k), OLED Table 1.
* ``ocgan``: OCGAN protocol 2 (official train / test split, whole test set), OLED Table 2; the validation set
  of 150 inliers + 150 outliers (Section 4.1) is held out of the training split. Auto for CIFAR-10 and
  Fashion-MNIST (the latter so that numbers compare with the one-vs-rest GEOM / RotNet results), and for an
  image folder with ``train/`` and ``test/`` sub-folders.
* ``one_vs_rest``: the GEOM protocol without a validation set (the last epoch is evaluated).
* UCSD Ped2: 30x30 patches of the training frames (all normal) for training; the test frames are cut into the
  same patches and scored at frame level. The training data holds no outliers, so there is no labelled
  validation set and the last epoch is evaluated (the authors' validation patches are not public, notes 4.3).
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from common import datasets, protocols
from common.errors import ConfigError, DataError
from oled_tf.config import OLEDConfig, input_kind

log = logging.getLogger(__name__)


@dataclasses.dataclass
class PreparedData:
    kind: str
    train_x: np.ndarray            # float32 [-1, 1]
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray             # image datasets: 1 = outlier; UCSD: per-patch placeholder (frame labels below)
    test_raw: np.ndarray | None    # uint8 test images (Table 5 foreground); None for UCSD
    summary: dict
    # UCSD only: patch -> frame index (global over the test videos) and per-video frame labels.
    frame_ids: np.ndarray | None = None
    video_lengths: list[int] | None = None
    video_labels: list[np.ndarray] | None = None


def to_unit_range(x_uint8: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1] (notes 4.3)."""
    return (np.asarray(x_uint8, np.float32) / 127.5 - 1.0).astype(np.float32)


def _subset(rng: np.random.Generator, n: int, limit: int) -> np.ndarray:
    return np.sort(rng.choice(n, size=limit, replace=False)) if 0 < limit < n else np.arange(n)


def _stratified(rng: np.random.Generator, y: np.ndarray, limit: int) -> np.ndarray:
    """A random subset of ``limit`` test items that keeps the inlier / outlier proportion."""
    if not 0 < limit < len(y):
        return np.arange(len(y))
    inl, out = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    n_in = max(1, int(round(limit * len(inl) / len(y))))
    n_out = max(1, limit - n_in)
    return np.sort(np.concatenate([rng.choice(inl, min(n_in, len(inl)), replace=False),
                                   rng.choice(out, min(n_out, len(out)), replace=False)]))


def _load_image_split(cfg: OLEDConfig):
    name = cfg.dataset
    if name == "image_folder":
        root = Path(cfg.data_dir or "")
        if not cfg.data_dir or not root.is_dir():
            raise DataError(f"--dataset=image_folder needs --data_dir=<root> with <root>/<class>/*.png|jpg "
                            f"(or <root>/train/<class>/ and <root>/test/<class>/); got {cfg.data_dir!r}")
        has_split = (root / "train").is_dir() and (root / "test").is_dir()
        splits = ("train", "test") if has_split else ("all",)
        sets = [datasets.load_images(name, s, root, size=(32, 32)) for s in splits]
        if sets[0].x.shape[-1] == 1:  # gray folder: the 28x28x1 network
            sets = [datasets.load_images(name, s, root, size=(28, 28)) for s in splits]
        if len(sets[0].classes) < 2:
            raise DataError(f"--data_dir={cfg.data_dir} holds one class ({', '.join(sets[0].classes)}); OLED's "
                            f"one-class protocol needs at least two class sub-folders (inliers and outliers)")
        return sets, ("ocgan" if has_split else "memae")
    if name == "mnist5k":
        return [datasets.load_images(name, "all", cfg.data_dir)], "memae"
    sets = [datasets.load_images(name, s, cfg.data_dir) for s in ("train", "test")]
    return sets, ("memae" if name == "mnist" else "ocgan")


def prepare_images(cfg: OLEDConfig) -> PreparedData:
    sets, auto = _load_image_split(cfg)
    protocol = auto if cfg.protocol == "auto" else cfg.protocol
    n_classes = len(sets[0].classes)
    if not 0 <= cfg.normal_class < n_classes:
        raise ConfigError(f"--normal_class={cfg.normal_class} is out of range for {cfg.dataset} "
                          f"({n_classes} classes: 0..{n_classes - 1})")
    if protocol == "memae":
        x, y = protocols.pool_sets(*sets)
        split = protocols.memae_mnist_split(x, y, cfg.normal_class, cfg.seed, n_val_inliers=cfg.n_val_inliers,
                                            n_val_outliers=cfg.n_val_outliers)
    elif len(sets) < 2:
        raise ConfigError(f"--protocol={protocol} needs separate train and test splits; {cfg.dataset} has one")
    elif protocol == "ocgan":
        split = protocols.ocgan_cifar_split(sets[0], sets[1], cfg.normal_class, cfg.seed,
                                            n_val_inliers=cfg.n_val_inliers, n_val_outliers=cfg.n_val_outliers)
    else:
        split = protocols.one_vs_rest_split(sets[0], sets[1], cfg.normal_class)
    rng = np.random.default_rng(cfg.seed + 1000)
    tr = _subset(rng, len(split.train_x), cfg.train_limit or 0)
    te = _stratified(rng, split.test_y, cfg.test_limit or 0)
    kind = input_kind(cfg.dataset, sets[0].x.shape[-1])
    summary = {**split.summary(), "n_train_used": int(len(tr)), "n_test_used": int(len(te)),
               "n_test_inliers_used": int(np.sum(split.test_y[te] == 0)),
               "n_test_outliers_used": int(np.sum(split.test_y[te] == 1)), "input_kind": kind,
               "files": sorted({f for s in sets for f in s.files})}
    log.info("data: %s", summary)
    return PreparedData(kind=kind, train_x=to_unit_range(split.train_x[tr]), val_x=to_unit_range(split.val_x),
                        val_y=np.asarray(split.val_y, np.int64), test_x=to_unit_range(split.test_x[te]),
                        test_y=np.asarray(split.test_y[te], np.int64), test_raw=split.test_x[te], summary=summary)


def prepare_ucsd(cfg: OLEDConfig) -> PreparedData:
    data = datasets.load_ucsd(cfg.data_dir, "ped2")
    size, stride = protocols.UCSD_PATCH_SIZE, cfg.ucsd_patch_stride
    train_patches = np.concatenate([protocols.extract_patches(v.frames, size, stride)[0] for v in data.train])
    rng = np.random.default_rng(cfg.seed + 1000)
    tr = _subset(rng, len(train_patches), cfg.train_limit or 0)
    videos = data.test[:cfg.ucsd_test_videos] if cfg.ucsd_test_videos else data.test
    missing = [v.name for v in videos if v.frame_labels is None]
    if missing:
        raise DataError(f"UCSD test videos {missing} have no frame labels (UCSDped2.m or *_gt masks missing)")
    patches, ids, offset = [], [], 0
    for v in videos:
        p, f, _ = protocols.extract_patches(v.frames, size, stride)
        patches.append(p)
        ids.append(f + offset)
        offset += len(v.frames)
    test_x = np.concatenate(patches)[..., None]
    summary = {"protocol": "ucsd_ped2_patches", "n_train_patches": int(len(train_patches)),
               "n_train_used": int(len(tr)), "n_test_videos": len(videos), "n_test_frames": int(offset),
               "n_test_patches": int(len(test_x)), "patch_size": size, "patch_stride": stride,
               "n_anomalous_frames": int(sum(int(v.frame_labels.sum()) for v in videos)), "input_kind": "ucsd",
               "files": [str(Path(data.root).resolve())]}
    log.info("data: %s", summary)
    empty = np.zeros((0, size, size, 1), np.float32)
    return PreparedData(kind="ucsd", train_x=to_unit_range(train_patches[tr][..., None]), val_x=empty,
                        val_y=np.zeros(0, np.int64), test_x=to_unit_range(test_x),
                        test_y=np.zeros(len(test_x), np.int64), test_raw=None, summary=summary,
                        frame_ids=np.concatenate(ids), video_lengths=[len(v.frames) for v in videos],
                        video_labels=[np.asarray(v.frame_labels, np.int64) for v in videos])


def prepare(cfg: OLEDConfig) -> PreparedData:
    """Load, split and scale the data of a resolved config."""
    return prepare_ucsd(cfg) if cfg.dataset == "ucsd" else prepare_images(cfg)
