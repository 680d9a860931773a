"""Throughput of the frame-permutation model (segments/s) for training and scoring, fp32 and bf16.

The model is the full M-stream siamese CaffeNet + Top-CNN (M = 5, conv1 stride 2); inputs are fixed random
segments already on the device (the model alone, no decoding), so the numbers are the compute ceiling; the
streaming pipeline is benchmarked by ``benchmarks/bench_streaming.py``. ``train`` = one SGD step (Eq. 6-8) on
``batch`` permuted segments; ``score`` = the per-segment scores of :meth:`FramePermutationModel.segment_losses`
(one Base-CNN pass per frame, all M! labels). Per (precision, batch) the two are timed interleaved
(:mod:`benchmarks.timing`): ``--warmup`` untimed calls each (the first builds the graph), then ``--rounds``
rounds of ``--steps`` calls.

    .venv/bin/python benchmarks/bench_permutation_video.py [--size=225] [--batches=10,64] \
        [--precisions=float32,mixed_bfloat16] [--steps=5] [--m=5] [--rounds=3] [--warmup=1] \
        [--peak_probe=full|small|off] [--recipe=faithful|learns] [--out=results.json]

``--recipe``: the paper's CaffeNet recipe (``permutation_tf.config.FAITHFUL``, one permuted order per segment) or
the quick preset's (``LEARNS``: batch norm, all M! orders per segment in each step, issue 21).

Prints the machine (CPU model, bf16 flags), the load average (with a warning when it is above 0.5 per core)
and the float32 / bf16 peak probe; one line per (precision, batch, mode): median seconds per call (wall and
CPU) and their spread, segments/s (wall clock) and frames/s, segments per CPU second, GFLOP/s and its fraction
of the peak of that precision; then each row's speed relative to the first precision and batch of the same run
(by CPU time: the steadier clock on a shared machine; absolute speeds compare only within one run); a table of
all rows and the path of the JSON results. FLOPs (:mod:`benchmarks.flops`): the conv / dense MACs of one eager
``train_logits`` (train: x3 for the backward) or ``segment_losses`` (score), the latter plus the Top-CNN's
``logits_for_orders`` products (``b M D S H`` + ``b V S M H`` MACs, not a layer call).
"""
from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import flops, timing  # noqa: E402
from permutation_tf.config import FAITHFUL, LEARNS  # noqa: E402
from permutation_tf.model import build_model, make_task  # noqa: E402

RECIPES = {"faithful": FAITHFUL, "learns": LEARNS}


def score_order_macs(model, batch: int) -> int:
    """MACs of ``TopCNN.logits_for_orders`` done outside a layer call: ``W_s r_m`` for every (stream position,
    frame) and the one-hot selection of every order (0 for RotNet, which calls the layers)."""
    task, top = model.task, model.top
    if task.rotation:
        return 0
    s, h = top.n_streams, top.hidden
    return batch * task.m * top.feature_dim * s * h + batch * task.n_variants * s * task.m * h


def bench(report: timing.Report, precision: str, batch: int, size: int, m: int, steps: int, rounds: int,
          warmup: int, recipe: str = "faithful") -> dict:
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    model = build_model(make_task("permutation", m), (size, size), **RECIPES[recipe])
    rng = np.random.default_rng(0)
    data = {"frames": tf.constant(rng.uniform(0, 1, (batch, m, size, size, 3)).astype(np.float32)),
            "label": tf.constant(rng.integers(0, math.factorial(m), batch))}
    train_macs = flops.count_macs(model, lambda: model.train_logits(data["frames"], data["label"]))["macs"]
    score_macs = flops.count_macs(model, lambda: model.segment_losses(data["frames"], data["label"]))["macs"]
    all_orders = score_order_macs(model, batch) if model.train_orders == "all" else 0   # logits_for_orders
    work = {"train": flops.train_step_flops(train_macs + all_orders),
            "score": flops.forward_flops(score_macs + score_order_macs(model, batch))}
    train = tf.function(model.train_step)
    score = tf.function(model.segment_losses)
    ms = timing.time_rounds({"train": lambda: train(data)["loss"],
                             "score": lambda: score(data["frames"], data["label"])["all"]},
                            rounds=rounds, calls=steps, warmup=warmup)
    keras.mixed_precision.set_global_policy("float32")
    return {mode: report.add(f"batch {batch} {mode}", meas, precision=precision, items=batch, unit="seg",
                             flops=work[mode], note=f"{batch * m / meas.median('wall'):.1f} frames/s",
                             mode=mode, batch_size=batch, m=m, size=size)
            for mode, meas in ms.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=225)
    p.add_argument("--batches", default="10,64")
    p.add_argument("--precisions", default="float32,mixed_bfloat16")
    p.add_argument("--steps", type=int, default=5, help="timed calls per round")
    p.add_argument("--m", type=int, default=5)
    p.add_argument("--recipe", choices=sorted(RECIPES), default="faithful")
    timing.add_flags(p, rounds=3, warmup=1)
    a = p.parse_args()
    report = timing.Report("bench_permutation_video", a)
    print(f"M={a.m}, frames {a.size}x{a.size}, recipe {a.recipe}", flush=True)
    cps = {}
    for precision in a.precisions.split(","):
        for batch in (int(b) for b in a.batches.split(",")):
            for mode, row in bench(report, precision, batch, a.size, a.m, a.steps, a.rounds, a.warmup,
                                   a.recipe).items():
                cps[precision, batch, mode] = row["items_per_cpu_second"]
    # Absolute speeds differ between machines and loads: the same-run ratios (by CPU time) are what compare.
    ref = next(iter(cps))
    print(f"relative to {ref[0]} batch {ref[1]} (segments per CPU second, same run):")
    relative = report.data.setdefault("relative_by_cpu_time", {"reference": [ref[0], ref[1]], "rows": []})
    for (precision, batch, mode), v in cps.items():
        r = v / cps[ref[0], ref[1], mode]
        relative["rows"].append({"precision": precision, "batch": batch, "mode": mode, "ratio": r})
        print(f"  {precision:15s} batch {batch:3d} {mode:5s}: {r:6.2f}x", flush=True)
    report.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
