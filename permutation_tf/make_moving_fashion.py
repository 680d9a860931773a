"""Moving Fashion-MNIST: deterministic video sets built from the real Fashion-MNIST images, in the
``video_folder`` layout, so the frame-permutation method runs on real decoded video files on a CPU machine.

    python -m permutation_tf.make_moving_fashion --out=DIR [--motion=random|class --train_per_class=20
        --test_per_class=8 --frames=24 --size=64 --seed=0 --shared_items=0.5 --data_dir=DIR_WITH_FASHION_MNIST]

Two generators (``--motion``):

* ``class`` (the ``fashion_motion`` dataset, issue 21): the class of a clip is its MOTION, as actions differ in
  UCF101. Class k moves its item at a constant velocity of heading 36 k degrees (+- 8 degrees jitter per clip),
  speed 2.5 px / frame for even k and 4 px / frame for odd k (+- 15 %), spinning at (k mod 3 - 1) x 3 degrees
  per frame, on a wrap-around (torus) canvas from a uniformly random start, so that every frame position is
  equally likely in every class and a single frame says nothing about the class by where the item is. The
  item's scale (0.9..1.2 of 28 px) is random and constant. A fraction ``shared_items`` of each class's clips
  shows an item of a random Fashion-MNIST category (appearance shared by all classes); the rest show an item
  of category k. Each class has an unambiguous arrow of time (a constant heading: the clip reversed moves the
  other way, which is class k + 5's heading), so its pretext task is learnable; a frame-level method (RotNet,
  the PCA floor) sees the class only through the non-shared items.
* ``random`` (the ``moving_fashion`` dataset, the first stand-in): the trajectory is drawn independently of the
  class (below), so the class shows only in the item's appearance.

In ``random``, each clip shows ONE Fashion-MNIST item (train clips from the training images, test clips from the
test images, ``--train_per_class`` / ``--test_per_class`` distinct images per class) moving on a smooth random
trajectory on a
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
MOTIONS = ("random", "class")
N_CLASSES = 10


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


def class_motion(label: int) -> dict:
    """The motion profile of class ``label`` in the ``class`` generator: heading (degrees), speed (px / frame),
    spin (degrees / frame)."""
    return {"heading": 360.0 * label / N_CLASSES, "speed": 2.5 if label % 2 == 0 else 4.0,
            "spin": 3.0 * (label % 3 - 1)}


def item_index(n_images: int, own: int, i: int, n: int, shared_items: float, rng: np.random.Generator) -> int:
    """The image of clip ``i`` of the ``n`` clips of a class: for the first round(n * shared_items) clips a
    random image of the whole split (any category: appearance shared across classes), else ``own`` (an image of
    the class's own category)."""
    return int(rng.integers(n_images)) if i < round(n * shared_items) else int(own)


def render_class_clip(item: np.ndarray, label: int, rng: np.random.Generator, frames: int, size: int) -> np.ndarray:
    """(frames, size, size) uint8: ``item`` (28x28 uint8) moving with class ``label``'s motion
    (:func:`class_motion`, jittered per clip) on a wrap-around canvas (module docstring)."""
    import cv2

    prof = class_motion(label)
    heading = np.deg2rad(prof["heading"] + rng.normal(0, 8.0))
    speed = prof["speed"] * rng.uniform(0.85, 1.15)
    vel = speed * np.array([np.cos(heading), np.sin(heading)])
    scale, r0 = rng.uniform(0.9, 1.2), rng.uniform(-180, 180)
    pos = rng.uniform(0, size, size=2)
    out = np.zeros((frames, size, size), np.uint8)
    for t in range(frames):
        m = cv2.getRotationMatrix2D((14.0, 14.0), r0 + prof["spin"] * t, scale)
        centre = np.mod(pos + vel * t, size)
        for dx in (-size, 0, size):          # the copies that wrap over the edges
            for dy in (-size, 0, size):
                mt = m.copy()
                mt[:, 2] += centre + (dx, dy) - 14.0
                out[t] = np.maximum(out[t], cv2.warpAffine(item, mt, (size, size), flags=cv2.INTER_LINEAR,
                                                           borderValue=0))
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
         seed: int = 0, data_dir=None, motion: str = "random", shared_items: float = 0.5) -> Path:
    """Write the set to ``out`` (see module docstring); returns ``out``. Kept if already complete.
    ``motion``: ``random`` (moving_fashion) or ``class`` (fashion_motion; ``shared_items`` of its clips show an
    item of a random category).

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
    if motion not in MOTIONS:
        raise DataError(f"--motion must be one of {', '.join(MOTIONS)}, not {motion!r}")
    if not 0.0 <= shared_items <= 1.0:
        raise DataError(f"--shared_items must be in [0, 1], not {shared_items}")
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
                    if motion == "random":
                        clip = render_clip(ims.x[idx[j]].reshape(28, 28), rng, frames, size)
                    else:
                        image = ims.x[item_index(len(ims.y), idx[j], i, n, shared_items, rng)]
                        clip = render_class_clip(image.reshape(28, 28), label, rng, frames, size)
                    write_avi(folder / f"{class_folder(label)}_{i:03d}.avi", clip)
        what = "trajectories independent of the class" if motion == "random" else \
            f"class-dependent motion, {shared_items:g} of the clips with an item of a random category"
        (tmp / "README.txt").write_text(
            f"Moving Fashion-MNIST (permutation_tf.make_moving_fashion, motion={motion}: {what}): {train_per_class} "
            f"train / {test_per_class} test clips per class, {frames} frames of {size}x{size}, seed {seed}; train "
            f"clips from Fashion-MNIST train images, test clips from its test images.\n")
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
    out = make(f.out, f.train_per_class, f.test_per_class, f.frames, f.size, f.seed, f.data_dir, f.motion,
               f.shared_items)
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
    flags.DEFINE_enum("motion", "random", list(MOTIONS), "random = moving_fashion (trajectory independent of the "
                      "class); class = fashion_motion (the class is the motion).")
    flags.DEFINE_float("shared_items", 0.5, "motion=class: fraction of each class's clips whose item is of a random "
                       "category.")
    flags.DEFINE_string("data_dir", None, "Where Fashion-MNIST is (default: $REPRO_DATA_DIR, <repo>/data, then "
                        "the system copy).")
    flags.mark_flag_as_required("out")
    app.run(exit_on_error(main))
    sys.exit(0)
