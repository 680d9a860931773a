"""Throughput of the frame-permutation model (segments/s) for training and scoring, fp32 and bf16.

The model is the full M-stream siamese CaffeNet + Top-CNN (M = 5, conv1 stride 2); inputs are fixed random
segments already on the device (the model alone, no decoding), so the numbers are the compute ceiling; the
streaming pipeline is benchmarked by ``benchmarks/bench_streaming.py``. One warm-up call (graph build) is not
timed. ``train`` = one SGD step (Eq. 6-8) on ``batch`` permuted segments; ``score`` = the per-segment
scores of :meth:`FramePermutationModel.segment_losses` (one Base-CNN pass per frame, all M! labels).

    .venv/bin/python benchmarks/bench_permutation_video.py [--size=225] [--batches=10,64] \
        [--precisions=float32,mixed_bfloat16] [--steps=5] [--m=5]

Prints one line per (precision, batch, mode): segments/s and frames/s (wall clock) and segments per CPU second,
then each row's speed relative to the first precision and batch of the same run (by CPU time: the steadier clock on
a shared machine; absolute speeds compare only within one run).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from permutation_tf.model import build_model, make_task  # noqa: E402


def bench(precision: str, batch: int, size: int, m: int, steps: int) -> dict:
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    model = build_model(make_task("permutation", m), (size, size))
    rng = np.random.default_rng(0)
    data = {"frames": tf.constant(rng.uniform(0, 1, (batch, m, size, size, 3)).astype(np.float32)),
            "label": tf.constant(rng.integers(0, math.factorial(m), batch))}
    out = {}
    train = tf.function(model.train_step)
    score = tf.function(model.segment_losses)
    for mode, fn in (("train", lambda: train(data)["loss"]),
                     ("score", lambda: score(data["frames"], data["label"])["all"])):
        fn().numpy()
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(steps):
            r = fn()
        float(tf.reduce_sum(r))
        dt, dc = (time.perf_counter() - t0) / steps, (time.process_time() - c0) / steps
        out[mode] = (batch / dt, batch / dc)
    keras.mixed_precision.set_global_policy("float32")
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=225)
    p.add_argument("--batches", default="10,64")
    p.add_argument("--precisions", default="float32,mixed_bfloat16")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--m", type=int, default=5)
    a = p.parse_args()
    from common.config import bf16_cpu_flags

    device = "GPU" if tf.config.list_physical_devices("GPU") else f"CPU ({os.cpu_count()} cores)"
    flags = bf16_cpu_flags()
    print(f"device: {device}; M={a.m}, frames {a.size}x{a.size}; CPU bf16 flags: "
          f"{', '.join(flags) if flags else 'none (bf16 is emulated on this CPU)'}; load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    rows = {}
    for precision in a.precisions.split(","):
        for batch in (int(b) for b in a.batches.split(",")):
            r = bench(precision, batch, a.size, a.m, a.steps)
            for mode, (sps, cps) in r.items():
                rows[precision, batch, mode] = cps
                print(f"{precision:15s} batch {batch:3d} {mode:5s}: {sps:8.2f} segments/s ({sps * a.m:8.1f} frames/s); "
                      f"{cps:8.2f} segments per CPU second", flush=True)
    # Absolute speeds differ between machines and loads: the same-run ratios (by CPU time) are what compare.
    ref = next(iter(rows))
    print(f"relative to {ref[0]} batch {ref[1]} (segments per CPU second, same run):")
    for (precision, batch, mode), cps in rows.items():
        print(f"  {precision:15s} batch {batch:3d} {mode:5s}: {cps / rows[ref[0], ref[1], mode]:6.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
