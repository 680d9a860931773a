"""Throughput of the streaming input pipelines of ``common/streaming.py`` (images/s out of the tf.data pipeline).

Writes real images into a temporary folder in the real formats, then times full epochs (after one warm-up
epoch, so the files are in the page cache and the graph is built):

* ``folder-resize``: an image folder of JPEGs (Fashion-MNIST training images, gray -> RGB, upscaled to
  ``--side`` x ``--side`` like a typical ImageNet/Places photo), decoded and resized to 96x96;
* ``folder-artifacts``: the same with the artifacts authors' training augmentation
  (``common.augment.artifacts_train``: random resized crop to 96x96, flip, colour jitter);
* ``stl10-mmap``: STL-10 ``unlabeled_X.bin`` of the same images at 96x96 streamed from the memory map, with the
  same augmentation.

    .venv/bin/python benchmarks/bench_streaming.py [--n=2000] [--side=256] [--batch=64] [--epochs=2] \
        [--rounds=1] [--warmup=1] [--peak_probe=full|small|off] [--out=results.json]

Each pipeline is one dataset of ``--warmup + --rounds x --epochs`` epochs; a timed call consumes one epoch
(:mod:`benchmarks.timing`): ``--warmup`` untimed epochs, then ``--rounds`` rounds of ``--epochs`` epochs.

Prints the machine (CPU model, bf16 flags), the load average (with a warning when it is above 0.5 per core),
the peak probe (for the record: this pipeline is decode / resize bound, so no FLOPs are counted and no
fraction of peak is given), the data, then per pipeline its median seconds per epoch (wall and CPU) and
images per second (96x96 out); a table of all rows and the path of the JSON results.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from PIL import Image  # noqa: E402

from benchmarks import timing  # noqa: E402
from common import augment, streaming  # noqa: E402
from common.datasets import load_images  # noqa: E402


def write_folder(root: Path, x: np.ndarray, y: np.ndarray, side: int) -> None:
    for k, (img, lab) in enumerate(zip(x, y)):
        d = root / f"class_{lab}"
        d.mkdir(parents=True, exist_ok=True)
        im = Image.fromarray(img[..., 0]).convert("RGB").resize((side, side), Image.BILINEAR)
        im.save(d / f"{k:06d}.jpg", quality=90)


def write_stl10(root: Path, x: np.ndarray) -> None:
    d = root / "stl10_binary"
    d.mkdir(parents=True, exist_ok=True)
    rgb = np.stack([np.asarray(Image.fromarray(i[..., 0]).convert("RGB").resize((96, 96), Image.BILINEAR))
                    for i in x])
    (d / "unlabeled_X.bin").write_bytes(np.ascontiguousarray(rgb.transpose(0, 3, 2, 1)).tobytes())
    (d / "class_names.txt").write_text("\n".join(f"c{i}" for i in range(10)) + "\n")


def time_epochs(src, epochs: int, batch: int, rounds: int, warmup: int, **kw) -> timing.Measurement:
    """One call = one epoch out of the pipeline (returns its number of images); the first ``warmup`` epochs
    put the files in the page cache and build the graph."""
    ds = streaming.make_dataset(src, seed=0, batch_size=batch, num_epochs=warmup + rounds * epochs, **kw)
    it = iter(ds)
    per_epoch = streaming.steps_per_epoch(src, batch)

    def epoch() -> int:
        return sum(int(next(it)["image"].shape[0]) for _ in range(per_epoch))

    return timing.time_call(epoch, warmup=warmup, rounds=rounds, calls=epochs)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--side", type=int, default=256)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--epochs", type=int, default=2)
    timing.add_flags(p, rounds=1, warmup=1)
    a = p.parse_args()
    report = timing.Report("bench_streaming", a)
    fm = load_images("fashion_mnist", "train", download=False, limit=a.n)
    prep = functools.partial(augment.artifacts_train, size=(96, 96))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_folder(tmp / "folder", fm.x, fm.y, a.side)
        write_stl10(tmp, fm.x)
        folder = streaming.image_folder_source(tmp / "folder")
        stl = streaming.stl10_source(tmp, "unlabeled", download_ok=False)
        print(f"{a.n} Fashion-MNIST images; JPEG {a.side}x{a.side}; batch {a.batch}", flush=True)
        for name, src, kw in (("folder-resize", folder, {"size": (96, 96)}),
                              ("folder-artifacts", folder, {"preprocess": prep}),
                              ("stl10-mmap", stl, {"preprocess": prep})):
            m = time_epochs(src, a.epochs, a.batch, a.rounds, a.warmup, **kw)
            report.add(name, m, precision=None, items=m.output, unit="img", note="96x96 out",
                       flops_note="decode / resize bound: not counted", pipeline=name, images=a.n, side=a.side,
                       batch=a.batch)
    report.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
