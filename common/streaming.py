"""Streaming ``tf.data`` input pipelines built from files: image folders, STL-10 binaries, in-memory arrays.

Use this where a dataset does not fit in memory (ImageNet / Places image folders, STL-10's 100k unlabelled
images); the whole-array readers of :mod:`common.datasets` stay the way to load the small datasets.

A :class:`Source` knows how many examples there are, their labels, and how to load example ``i`` as a uint8
(H, W, C) tensor; :func:`make_dataset` turns it into batches::

    src = image_folder_source("/data/imagenet", split="train")         # sorted listing, labels = class folders
    ds = make_dataset(src, seed=0, batch_size=64, start_epoch=initial_epoch, num_epochs=None,
                      preprocess=functools.partial(augment.artifacts_train, size=(96, 96)))
    with data_errors(src):                                              # corrupt file -> one DataError line
        model.fit(ds, initial_epoch=initial_epoch, epochs=10, steps_per_epoch=steps_per_epoch(src, 64))

(With Keras, stream endlessly and give ``steps_per_epoch``: a finite dataset is re-iterated from its first epoch
every Keras epoch, so every epoch would see the order of ``start_epoch``.)

Determinism and resuming. Epoch ``e`` visits the examples in the order :func:`epoch_order` (a permutation that
is a function of ``(seed, e)`` only, computed in the graph with ``tf.random.experimental.stateless_shuffle``), and
example ``i`` of epoch ``e`` is augmented with the seed :func:`example_seed` ``(seed, e, i)``. Elements keep their
order under parallel decoding (``deterministic=True``). So ``make_dataset(..., start_epoch=k)`` yields exactly what
an uninterrupted ``make_dataset(...)`` yields from its epoch ``k`` on: a run resumed at an epoch boundary sees the
same images in the same order with the same augmentation.

Elements are dicts: ``image`` float32 (H, W, C) (in [0, 1] unless ``preprocess`` maps elsewhere), ``label`` int64
(0-based, -1 = unlabelled), ``index`` int64 (the example's index in the source's sorted listing).
"""
from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf

from common.data_images import (IMAGE_EXTENSIONS, ImageSet, list_class_folders, list_split_classes, load_stl10,
                                 read_image, split_folder)
from common.errors import DataError

# Formats tf.io.decode_image reads; folders holding any other IMAGE_EXTENSIONS file (TIFF) are decoded with
# Pillow (common.data_images.read_image) through tf.numpy_function instead.
TF_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
# Seed salts: the shuffle and the augmentation of one run use independent streams.
SHUFFLE_SALT, AUGMENT_SALT = 0x5348, 0x4155
# data_errors() decodes up to this many files one by one to name the one that failed.
MAX_DIAGNOSE_FILES = 20000

__all__ = ["Source", "ImageFiles", "list_image_files", "image_folder_source", "stl10_source", "array_source",
           "subset", "epoch_order", "example_seed", "make_dataset", "steps_per_epoch", "data_errors", "find_unreadable",
           "TF_IMAGE_EXTENSIONS"]


# ----------------------------------------------------------------------------------------------- sources
@dataclass
class Source:
    """``n`` examples; ``load(i)`` (int64 scalar tensor -> uint8 (H, W, C) tensor) runs inside the graph.

    ``labels`` int64 (n,), -1 = unlabelled; ``classes`` names in label order; ``origin`` the folder or file read
    (record it in metrics.json); ``shape`` (H, W, C) when every example has it, else None; ``diagnose()`` returns
    a message naming an unreadable example (or None) and is called by :func:`data_errors` after a failure.
    """

    name: str
    n: int
    labels: np.ndarray
    classes: list[str]
    origin: str
    load: Callable
    shape: tuple | None = None
    diagnose: Callable[[], str | None] = field(default=lambda: None, repr=False)

    def __len__(self) -> int:
        return self.n


@dataclass(frozen=True)
class ImageFiles:
    """A sorted image listing: ``paths`` (str), ``labels`` int64 0-based, ``classes`` in label order."""

    paths: tuple[str, ...]
    labels: np.ndarray
    classes: list[str]
    root: str


def _nested_class_folders(base: Path, extensions) -> tuple[list[str], list[list[Path]]]:
    """Every folder under ``base`` holding images is a class named by its path relative to ``base``
    (Places365-Standard ``data_256/a/airfield/*.jpg`` -> class ``a/airfield``); sorted."""
    found: dict[str, list[Path]] = {}
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        fs = sorted(f for f in filenames if not f.startswith(".") and Path(f).suffix.lower() in extensions)
        if fs:
            rel = Path(dirpath).relative_to(base).as_posix()
            if rel == ".":
                raise DataError(f"images lie directly in {base}; with nested=True every image must be in a class "
                                f"sub-folder")
            found[rel] = [Path(dirpath) / f for f in fs]
    classes = sorted(found)
    return classes, [found[c] for c in classes]


def _read_list_file(list_file: Path, base: Path) -> tuple[list[Path], np.ndarray]:
    """Lines ``<relative path> <0-based integer label>`` (Places365 ``places365_train_standard.txt``, Caffe's
    ImageNet ``train.txt``); paths relative to ``base`` (a leading "/" is ignored)."""
    if not list_file.is_file():
        raise DataError(f"list file {list_file} does not exist; expected lines '<relative path> <label>'")
    paths, labels = [], []
    for lineno, line in enumerate(list_file.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit() or int(parts[1]) < 0:
            raise DataError(f"{list_file} line {lineno} is not '<relative path> <label>' with a label >= 0: "
                            f"{line.strip()[:80]!r}")
        paths.append(base / parts[0].strip().lstrip("/"))
        labels.append(int(parts[1]))
    if not paths:
        raise DataError(f"list file {list_file} lists no images")
    missing = [p for p in paths[:1000] if not p.is_file()]
    if missing:
        raise DataError(f"{list_file} lists {missing[0]}, which does not exist (checked the first "
                        f"{min(1000, len(paths))} entries); is the image root {base} right?")
    return paths, np.asarray(labels, np.int64)


def list_image_files(root, split: str = "all", nested: bool = False, list_file=None,
                     extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> ImageFiles:
    """List (never decode) the images of a folder dataset, sorted, with labels from class folders.

    Layouts: ``root/<class>/*.png|jpg|...`` (split "all"); ``root/<split>/<class>/*`` (ImageNet ``train/<wnid>/``;
    labels are then the sorted union of the class folders of all split folders, as in
    :func:`common.data_images.load_image_folder`); ``nested=True``: any depth, a class is the folder path
    holding the images (Places365 ``data_256/a/airfield/``, ``.../apartment_building/outdoor/``);
    ``list_file``: lines ``<path relative to root[/split]> <label>`` give files and labels (classes are then
    the label numbers).
    """
    root = Path(root)
    base = split_folder(root, split, hint=False)
    if list_file is not None:
        paths, labels = _read_list_file(Path(list_file), base)
        classes = [str(i) for i in range(int(labels.max()) + 1)]
        return ImageFiles(tuple(map(str, paths)), labels, classes, str(base))
    classes, local, files = list_split_classes(root, base, extensions,
                                               lister=_nested_class_folders if nested else list_class_folders,
                                               where=", at any depth" if nested else "")
    index = {c: i for i, c in enumerate(classes)}
    paths = tuple(str(f) for fs in files for f in fs)
    labels = np.asarray([index[c] for c, fs in zip(local, files) for _ in fs], np.int64)
    return ImageFiles(paths, labels, classes, str(base))


def _decode_tf(data, channels: int):
    return tf.io.decode_image(data, channels=channels, expand_animations=False)


def find_unreadable(paths, channels: int = 3, limit: int | None = MAX_DIAGNOSE_FILES) -> str | None:
    """Decode ``paths`` one by one with the pipeline's decoder; the first failure as a message, else None.

    Stops after ``limit`` files (None: all) and then says so."""
    for k, p in enumerate(paths):
        if limit is not None and k >= limit:
            return (f"the first {limit} of {len(paths)} files decode; the unreadable one is further on "
                    f"(find_unreadable(paths, limit=None) scans them all)")
        try:
            if Path(p).suffix.lower() in TF_IMAGE_EXTENSIONS:
                data = tf.io.read_file(p)
                if int(tf.strings.length(data)) == 0:
                    return f"{p} is empty (0 bytes); replace or delete the file"
                _decode_tf(data, channels)
            else:
                read_image(Path(p))
        except tf.errors.OpError as e:
            return (f"{p} cannot be decoded ({_first_reason(e.message)}); it is truncated or corrupt, replace or "
                    f"delete it")
        except DataError as e:
            return str(e)
    return None


def image_folder_source(root, split: str = "all", nested: bool = False, list_file=None, channels: int = 3,
                        limit: int | None = None) -> Source:
    """Stream an image folder (layouts as :func:`list_image_files`); files are read and decoded on the fly
    (``tf.io.decode_image``; Pillow for TIFF). ``channels``: 3 (gray files become RGB) or 1. ``limit`` keeps
    the first ``limit`` files of the sorted listing."""
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3, not {channels}")
    files = list_image_files(root, split, nested, list_file)
    paths, labels = files.paths, files.labels
    if limit is not None:
        if limit <= 0:
            raise DataError(f"limit must be a positive number of images, got {limit}")
        paths, labels = paths[:limit], labels[:limit]
    table = tf.constant(paths)
    use_pil = any(Path(p).suffix.lower() not in TF_IMAGE_EXTENSIONS for p in paths)
    mode = "RGB" if channels == 3 else "L"

    def pil_read(path):
        a = read_image(Path(path.decode()), mode=mode)
        return a if a.ndim == 3 else a[..., None]

    def load(i):
        path = tf.gather(table, i)
        if use_pil:
            img = tf.numpy_function(pil_read, [path], tf.uint8, stateful=False)
        else:
            img = _decode_tf(tf.io.read_file(path), channels)
        return tf.ensure_shape(img, [None, None, channels])

    return Source("image_folder", len(paths), labels, files.classes, files.root, load, None,
                  lambda: find_unreadable(paths, channels))


def stl10_source(data_dir, split: str = "unlabeled", download_ok: bool = True, limit: int | None = None) -> Source:
    """Stream STL-10 ``<split>_X.bin`` straight from the file: :func:`common.data_images.load_stl10` with
    ``mmap=True`` checks the files and maps them (never read whole); each example is copied out of the map
    when the pipeline asks for it. Images 96x96x3 uint8; labels 0..9, -1 for ``unlabeled``."""
    s = load_stl10(split, Path(data_dir), download_ok, limit, mmap=True)
    x = s.x

    def read(i):
        return np.ascontiguousarray(x[int(i)])

    def load(i):
        return tf.ensure_shape(tf.numpy_function(read, [i], tf.uint8, stateful=False), [96, 96, 3])

    return Source("stl10", len(s), s.y, s.classes, str(Path(s.source) / f"{split}_X.bin"), load, (96, 96, 3))


def array_source(images: ImageSet | np.ndarray, labels=None, classes=None, name: str = "arrays") -> Source:
    """An in-memory ImageSet (or uint8 (N, H, W, C) array) through the same pipeline as the streamed sources,
    so small datasets get the same augmentation and ordering."""
    if isinstance(images, ImageSet):
        labels, classes, name, origin, x = images.y, images.classes, images.name or name, images.source, images.x
    else:
        x, origin = images, "memory"
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.dtype != np.uint8 or len(x) == 0:
        raise DataError(f"array_source needs a non-empty uint8 (N, H, W, C) array, got {x.dtype} {x.shape}")
    y = np.full(len(x), -1, np.int64) if labels is None else np.asarray(labels, np.int64)
    if y.shape != (len(x),):
        raise DataError(f"array_source: {y.shape[0]} labels for {len(x)} images")
    table = tf.constant(x)

    def load(i):
        return tf.gather(table, i)

    return Source(name, len(x), y, list(classes or []), origin, load, tuple(x.shape[1:]))


# ------------------------------------------------------------------------------------------ the pipeline
def subset(source: Source, indices) -> Source:
    """The examples ``indices`` (int, in the order given) of ``source`` as a Source of their own: still streamed
    (example ``k`` of the subset loads example ``indices[k]`` of ``source``), labels and shape kept."""
    idx = np.asarray(indices, np.int64).reshape(-1)
    if len(idx) and (idx.min() < 0 or idx.max() >= len(source)):
        raise DataError(f"subset indices must lie in 0..{len(source) - 1}, got {idx.min()}..{idx.max()}")
    table = tf.constant(idx, tf.int64)

    def load(i):
        return source.load(tf.gather(table, i))

    return Source(source.name, len(idx), np.asarray(source.labels)[idx], source.classes, source.origin, load,
                  source.shape, source.diagnose)


def _seed_vector(seed: int, salt: int):
    return tf.constant([int(seed), salt], tf.int64)


def epoch_order(n: int, seed: int, epoch) -> tf.Tensor:
    """The order (a permutation of 0..n-1, int64) in which epoch ``epoch`` visits the examples: a function of
    ``(seed, epoch)`` only (``stateless_shuffle`` with seed fold_in([seed, SHUFFLE_SALT], epoch))."""
    s = tf.random.experimental.stateless_fold_in(_seed_vector(seed, SHUFFLE_SALT), tf.cast(epoch, tf.int64))
    return tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=s)


def example_seed(seed: int, epoch, index) -> tf.Tensor:
    """The [2] augmentation seed of example ``index`` in epoch ``epoch``: independent of the visiting order and
    of parallelism, so the same example gets the same augmentation in a resumed run."""
    s = tf.random.experimental.stateless_fold_in(_seed_vector(seed, AUGMENT_SALT), tf.cast(epoch, tf.int64))
    return tf.random.experimental.stateless_fold_in(s, tf.cast(index, tf.int64))


def steps_per_epoch(source: Source | int, batch_size: int, drop_remainder: bool = False) -> int:
    n = len(source) if not isinstance(source, int) else source
    return n // batch_size if drop_remainder else -(-n // batch_size)


def make_dataset(source: Source, *, seed: int, batch_size: int | None = None, size=None, preprocess=None,
                 shuffle: bool = True, start_epoch: int = 0, num_epochs: int | None = 1,
                 drop_remainder: bool = False, channels: int | None = 3,
                 num_parallel_calls=tf.data.AUTOTUNE) -> tf.data.Dataset:
    """Epochs ``start_epoch .. start_epoch+num_epochs-1`` (``num_epochs=None``: endless) of ``source``.

    Per example: ``load`` -> float32 in [0, 1] -> ``channels`` (1 <-> 3 by gray/RGB conversion; None keeps the
    stored channels) -> ``preprocess(image, seed)`` if given (e.g. :func:`common.augment.artifacts_train`, its
    seed is :func:`example_seed`), else a bilinear (antialiased) resize to ``size=(H, W)`` when given.
    ``shuffle=False`` visits 0..n-1 every epoch. Each epoch is cut into batches of ``batch_size`` (its last one
    smaller unless ``drop_remainder``; :func:`steps_per_epoch` batches per epoch); batches are prefetched.
    """
    if len(source) == 0:
        raise DataError(f"{source.origin}: no examples to stream")
    if batch_size is not None and batch_size < 1:
        raise DataError(f"batch_size must be >= 1, not {batch_size}")
    if num_epochs is not None and num_epochs < 1:
        raise DataError(f"num_epochs must be >= 1 (or None for endless), not {num_epochs}")
    n = len(source)
    labels = tf.constant(np.asarray(source.labels, np.int64))

    def element(e, i):
        image = tf.image.convert_image_dtype(source.load(i), tf.float32)
        c = image.shape[-1]
        if channels == 3 and c == 1:
            image = tf.image.grayscale_to_rgb(image)
        elif channels == 1 and c == 3:
            image = tf.image.rgb_to_grayscale(image)
        if preprocess is not None:
            image = preprocess(image, example_seed(seed, e, i))
        elif size is not None:
            image = tf.image.resize(image, [int(size[0]), int(size[1])], antialias=True)
        return {"image": image, "label": tf.gather(labels, i), "index": i}

    def epoch(e):
        idx = epoch_order(n, seed, e) if shuffle else tf.range(n, dtype=tf.int64)
        ds = tf.data.Dataset.from_tensor_slices(idx).map(lambda i: (e, i))
        ds = ds.map(element, num_parallel_calls=num_parallel_calls, deterministic=True)
        # Batched inside the epoch: a batch never mixes two epochs, so steps_per_epoch() batches are one epoch.
        return ds.batch(batch_size, drop_remainder=drop_remainder) if batch_size else ds

    epochs = (tf.data.Dataset.range(start_epoch, start_epoch + num_epochs) if num_epochs is not None
              else tf.data.Dataset.counter(start_epoch))
    ds = epochs.flat_map(epoch)
    return ds.prefetch(tf.data.AUTOTUNE)


# ------------------------------------------------------------------------------------------------ errors
_DATA_ERROR_RE = re.compile(r"DataError: (.+)")
_INPUT_MARKERS = ("IteratorGetNext", "Dataset", "Iterator::")


def _first_reason(message: str) -> str:
    for line in message.splitlines():
        line = line.split("}}")[-1].strip()
        if line and not line.startswith("[["):
            return line.split(" [Op:")[0].strip()
    return message.strip()[:200]


@contextlib.contextmanager
def data_errors(source: Source | None = None):
    """Turn a failure inside an input pipeline into one :class:`DataError` line naming the file.

    A DataError raised while decoding (STL-10 map, video, TIFF via Pillow) is re-raised with its own message;
    a TensorFlow decode error (corrupt PNG/JPEG) is diagnosed with ``source.diagnose()``, which names the first
    unreadable file. Errors that do not come from an input pipeline pass through unchanged.
    """
    try:
        yield
    except tf.errors.OpError as e:
        msg = e.message or ""
        found = _DATA_ERROR_RE.search(msg)
        if found:
            raise DataError(found.group(1).strip()) from None
        if not any(m in msg for m in _INPUT_MARKERS):
            raise
        where = source.origin if source is not None else "the input pipeline"
        if "Cannot batch tensors" in msg or "Cannot add tensor to the batch" in msg:
            raise DataError(f"images of {where} differ in size ({_first_reason(msg)}); pass size=(H, W) or a "
                            f"preprocess that outputs one size") from None
        named = source.diagnose() if source is not None else None
        if named:
            raise DataError(named) from None
        raise DataError(f"reading {where} failed: {_first_reason(msg)}") from None
