"""The training data of NRE's runs (library code: a resolved :class:`nre_tf.config.NREConfig` in, arrays out).

* :func:`training_images` -- what ``nre_tf.train`` trains on, per ``--dataset``.
* :func:`folder_images` -- an ImageNet-layout folder as 227x227 RGB (the AlexNet pre-training of Table 2).
* :func:`training_patches` -- the 30x30 patches of the normal UCSD Ped2 training frames (Table 4).
* :func:`video_patches` -- the patches of test videos with the frame of every patch (frame scores = max).
"""
from __future__ import annotations

import numpy as np

from common.errors import ConfigError, DataError

DIGIT_DATASETS = ("mnist", "mnist5k", "fashion_mnist")
ALEXNET_SIZE = (227, 227)
PATCH = 30


def folder_images(cfg) -> np.ndarray:
    """uint8 (N, 227, 227, 3) images of the image folder ``cfg.data_dir`` (``<root>/<class>/*.jpg``; labels unused;
    gray images repeated to RGB by ``common.datasets.load_images(..., rgb=True)``)."""
    from common.datasets import load_images

    if not cfg.data_dir:
        raise DataError("the AlexNet pre-training needs --data_dir=<image folder root>/<class>/*.jpg")
    return load_images("image_folder", "all", cfg.data_dir, size=ALEXNET_SIZE, limit=cfg.n_train or None,
                       rgb=True).x


def training_patches(cfg) -> np.ndarray:
    """uint8 (N, 30, 30, 1) patches of the normal training frames of UCSD Ped2 (Section 4.5).

    Non-overlapping patches (stride 30, ``common.protocols.extract_patches``); ``cfg.max_frames`` > 0 keeps a
    seeded random subset of the frames and ``cfg.patches_per_frame`` > 0 a seeded random subset of each frame's
    patches (quick scale; assumptions, the paper is silent).
    """
    from common.datasets import load_ucsd
    from common.protocols import extract_patches

    data = load_ucsd(cfg.data_dir, "ped2", splits=("train",), load_masks=False)
    frames = np.concatenate([v.frames for v in data.train])
    rng = np.random.default_rng([cfg.seed, 4])
    if cfg.max_frames and len(frames) > cfg.max_frames:
        frames = frames[np.sort(rng.choice(len(frames), cfg.max_frames, replace=False))]
    patches, _, _ = extract_patches(frames, PATCH, PATCH)
    if cfg.patches_per_frame:
        per = len(patches) // len(frames)
        keep = min(per, cfg.patches_per_frame)
        idx = np.concatenate([f * per + np.sort(rng.choice(per, keep, replace=False)) for f in range(len(frames))])
        patches = patches[idx]
    return patches[..., None]


def video_patches(frames) -> tuple[np.ndarray, np.ndarray]:
    """``(patches uint8 (P, 30, 30, 1), frame_ids (P,))`` of one video's frames (T, H, W)."""
    from common.protocols import extract_patches

    patches, fids, _ = extract_patches(frames, PATCH, PATCH)
    return patches[..., None], fids


def training_images(cfg):
    """``(x_train uint8 (N,H,W,C), x_test or None, arch)`` for ``cfg.dataset`` (``nre_tf.train``)."""
    from nre_tf import trainer

    if cfg.dataset in DIGIT_DATASETS:
        x, _, xt, _ = trainer.load_classification_split(cfg.dataset, cfg.data_dir, cfg.n_train, cfg.n_test,
                                                        cfg.seed)
        return x, xt, "conv"
    if cfg.dataset in ("ucsd_ped2", "ucsd"):
        return training_patches(cfg), None, "conv"
    if cfg.dataset == "image_folder":
        return folder_images(cfg), None, "alexnet"
    raise ConfigError(f"--dataset={cfg.dataset!r} is not supported by nre_tf.train; use one of "
                      f"{', '.join(DIGIT_DATASETS)}, ucsd_ped2, image_folder")


def test_videos(cfg):
    """The UCSD Ped2 test videos with frame labels and their labels pooled (int64); DataError when a video has
    no frame labels."""
    from common.datasets import load_ucsd

    test = load_ucsd(cfg.data_dir, "ped2", splits=("test",), load_masks=False).test
    missing = [v.name for v in test if v.frame_labels is None]
    if missing:
        raise DataError(f"UCSD Ped2 test videos without frame labels: {', '.join(missing[:3])}; the .m ground-truth "
                        "file (UCSDped2.m) is needed for the frame-level EER")
    return test, np.concatenate([v.frame_labels for v in test]).astype(np.int64)
