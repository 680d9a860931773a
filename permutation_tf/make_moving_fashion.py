"""Moving Fashion-MNIST: a deterministic video set built from the real Fashion-MNIST images, in the
``video_folder`` layout, so the frame-permutation method runs on real decoded video files on a CPU machine.

    python -m permutation_tf.make_moving_fashion --out=DIR [--train_per_class=20 --test_per_class=8
        --frames=24 --size=64 --seed=0 --data_dir=DIR_WITH_FASHION_MNIST]

Each clip shows ONE Fashion-MNIST item (train clips from the training images, test clips from the test images,
``--train_per_class`` / ``--test_per_class`` distinct images per class) moving on a smooth random trajectory on a
black ``size`` x ``size`` canvas for ``--frames`` frames: the centre follows a constant velocity plus a slow
sinusoidal wobble and bounces off the canvas borders; the item's scale drifts linearly (0.9..1.3 of 28 px) and
its rotation drifts linearly (up to +-20 degrees over the clip). The class of a clip is the item's category.

Layout (``common.data_video.video_folder_items`` with split folders)::

    DIR/train/<k>_<name>/<k>_<name>_<i>.avi      DIR/test/<k>_<name>/...     DIR/README.txt

Folder names start with the Fashion-MNIST label ``k`` so that the sorted folder order (the reader's label
order) is the Fashion-MNIST label order. Frames are written through OpenCV's ``VideoWriter`` (MJPG in .avi,
10 fps, 3 channels). Everything is drawn from ``numpy.random.default_rng([seed, split, class, i])``, so the same
arguments give byte-identical files. An existing complete output (``README.txt`` written last) is kept.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from common.errors import DataError

CLASS_NAMES = ("tshirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
               "ankle_boot")
FPS = 10
MIN_FRAMES = 16


def class_folder(label: int) -> str:
    return f"{label}_{CLASS_NAMES[label]}"


def render_clip(item: np.ndarray, rng: np.random.Generator, frames: int, size: int) -> np.ndarray:
    """(frames, size, size) uint8: ``item`` (28x28 uint8) moving on a smooth trajectory with scale/rotation
    drift (see module docstring)."""
    import cv2

    s0, s1 = rng.uniform(0.9, 1.3, size=2)
    r0 = rng.uniform(-10, 10)
    r1 = r0 + rng.uniform(-20, 20)
    margin = 14.0 * max(s0, s1)
    lo, hi = margin, size - margin
    pos = rng.uniform(lo, hi, size=2)
    speed = rng.uniform(1.0, 2.5)
    angle = rng.uniform(0, 2 * np.pi)
    vel = speed * np.array([np.cos(angle), np.sin(angle)])
    wobble_amp, wobble_freq, wobble_phase = rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.3), rng.uniform(0, 2 * np.pi)
    out = np.zeros((frames, size, size), np.uint8)
    for t in range(frames):
        a = t / max(frames - 1, 1)
        scale, rot = s0 + (s1 - s0) * a, r0 + (r1 - r0) * a
        m = cv2.getRotationMatrix2D((14.0, 14.0), rot, scale)
        m[:, 2] += pos - 14.0
        out[t] = cv2.warpAffine(item, m, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
        step = vel + wobble_amp * np.array([np.cos(wobble_freq * t + wobble_phase),
                                            np.sin(wobble_freq * t + wobble_phase)])
        pos = pos + step
        for d in range(2):  # bounce off the borders
            if pos[d] < lo or pos[d] > hi:
                vel[d] = -vel[d]
                pos[d] = np.clip(pos[d], lo, hi)
    return out


def write_avi(path: Path, frames: np.ndarray) -> None:
    import cv2

    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (w, h))
    if not writer.isOpened():
        raise DataError(f"OpenCV cannot write MJPG .avi files to {path} (no video writer backend)")
    try:
        for f in frames:
            writer.write(np.repeat(f[:, :, None], 3, axis=2))
    finally:
        writer.release()


def make(out, train_per_class: int = 20, test_per_class: int = 8, frames: int = 24, size: int = 64,
         seed: int = 0, data_dir=None) -> Path:
    """Write the set to ``out`` (see module docstring); returns ``out``. Kept if already complete.

    Fashion-MNIST is read from ``data_dir`` (``--data_dir``; None: the default data directory, then the system
    copy /usr/share/datasets/fashion-mnist, which an explicit ``data_dir`` never falls back to)."""
    from common.datasets import load_images

    out = Path(out)
    if frames < MIN_FRAMES:
        raise DataError(f"--frames must be >= {MIN_FRAMES}, not {frames}")
    if size < 40:
        raise DataError(f"--size must be >= 40 pixels (a 28-pixel item has to move on it), not {size}")
    if train_per_class < 1 or test_per_class < 1:
        raise DataError("--train_per_class and --test_per_class must be >= 1")
    if (out / "README.txt").is_file():
        return out
    if out.exists() and any(out.iterdir()):
        raise DataError(f"{out} exists, is not empty and holds no complete moving_fashion set (README.txt); "
                        f"remove it or choose another --out")
    try:  # data_dir None (no --data_dir) also reads the system copy of Fashion-MNIST; an explicit one does not
        sets = {"train": load_images("fashion_mnist", "train", data_dir),
                "test": load_images("fashion_mnist", "test", data_dir)}
    except DataError as e:
        raise DataError(f"cannot write the Moving Fashion-MNIST set to {out} (it is drawn from Fashion-MNIST): "
                        f"{e}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp"))
    try:
        for split_id, (split, n) in enumerate((("train", train_per_class), ("test", test_per_class))):
            ims = sets[split]
            for label in range(10):
                idx = np.flatnonzero(ims.y == label)
                if len(idx) < n:
                    raise DataError(f"Fashion-MNIST {split} has {len(idx)} images of class {label}, fewer than {n}")
                folder = tmp / split / class_folder(label)
                folder.mkdir(parents=True)
                pick = np.sort(np.random.default_rng([seed, split_id, label]).choice(len(idx), n, replace=False))
                for i, j in enumerate(pick):
                    rng = np.random.default_rng([seed, split_id, label, i])
                    clip = render_clip(ims.x[idx[j]].reshape(28, 28), rng, frames, size)
                    write_avi(folder / f"{class_folder(label)}_{i:03d}.avi", clip)
        (tmp / "README.txt").write_text(
            f"Moving Fashion-MNIST (permutation_tf.make_moving_fashion): {train_per_class} train / "
            f"{test_per_class} test clips per class, {frames} frames of {size}x{size}, seed {seed}; train clips "
            f"from Fashion-MNIST train images, test clips from its test images.\n")
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv):
    from absl import flags

    f = flags.FLAGS
    out = make(f.out, f.train_per_class, f.test_per_class, f.frames, f.size, f.seed, f.data_dir)
    n = sum(1 for _ in out.rglob("*.avi"))
    print(f"moving_fashion: {n} clips in {out}")


if __name__ == "__main__":
    from absl import app, flags

    from common.errors import exit_on_error

    flags.DEFINE_string("out", None, "Output folder (video_folder layout: OUT/{train,test}/<class>/*.avi).")
    flags.DEFINE_integer("train_per_class", 20, "Training clips per class.")
    flags.DEFINE_integer("test_per_class", 8, "Test clips per class.")
    flags.DEFINE_integer("frames", 24, "Frames per clip (>= 16).")
    flags.DEFINE_integer("size", 64, "Canvas size in pixels.")
    flags.DEFINE_integer("seed", 0, "Seed of the item choice and trajectories.")
    flags.DEFINE_string("data_dir", None, "Where Fashion-MNIST is (default: $REPRO_DATA_DIR, <repo>/data, then "
                        "the system copy).")
    flags.mark_flag_as_required("out")
    app.run(exit_on_error(main))
    sys.exit(0)
