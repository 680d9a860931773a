"""Training throughput of the six image pretext tasks (one ``PretextModel.train_step`` per batch).

    .venv/bin/python benchmarks/bench_permutation_image.py [--tasks=jigsaw,rotnet,...] [--batch_size=64]
        [--precisions=float32,mixed_bfloat16] [--steps=5] [--size=32] [--rounds=3] [--warmup=2]
        [--peak_probe=full|small|off] [--out=results.json]

For every (task, precision): build the task's model for ``--size`` x ``--size`` images (1 channel; 3 for
Colorization and Split-Brain) under the Keras dtype policy, compile one ``tf.function`` of ``train_step``, run
``--warmup`` warm-up steps, then time ``--rounds`` rounds of ``--steps`` steps on a fixed random batch
(:mod:`benchmarks.timing`).

Prints the machine (CPU model, bf16 flags), the load average (with a warning when it is above 0.5 per core)
and the float32 / bf16 peak probe first; then per (task, precision) one line: median seconds per step (wall
and CPU) and their spread, training images per second (batch / seconds per step; an image counts once, whatever
number of transformations the task trains it under), GFLOP/s and its fraction of the peak of that precision;
per task the ratio bf16 / fp32 of images per second; at the end a table of all rows and the path of the JSON
results. FLOPs per step (:mod:`benchmarks.flops`): the conv / dense MACs of one eager ``task.training_loss``
(every network trained: 3 x the forward).
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import flops, timing  # noqa: E402

TASKS = ("jigsaw", "colorization", "inpainting", "counting", "splitbrain", "rotnet")


def bench(report: timing.Report, task_name: str, batch: int, precision: str, steps: int, size: int, rounds: int,
          warmup: int) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from permutation_tf.image.model import PretextModel
    from permutation_tf.image.tasks import make_task

    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    channels = 3 if task_name in ("colorization", "splitbrain") else 1
    model = PretextModel(make_task(task_name), (size, size, channels))
    model.build_all()
    model.compile(keras.optimizers.Adam(1e-3))
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (batch, size, size, channels)).astype("float32"))
    macs = flops.count_macs(model, lambda: model.task.training_loss(model.networks, x, training=True))
    step = tf.function(model.train_step)
    m = timing.time_call(lambda: step(x)["loss"], warmup=warmup, rounds=rounds, calls=steps)
    keras.mixed_precision.set_global_policy("float32")
    return report.add(f"{task_name} batch {batch}", m, precision=precision, items=batch, unit="img",
                      flops=flops.train_step_flops(macs["macs"]), flops_note="conv/dense MACs of training_loss, x3",
                      task=task_name, batch_size=batch, steps=steps, macs=macs["macs"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--precisions", default="float32,mixed_bfloat16")
    p.add_argument("--steps", type=int, default=5, help="timed steps per round")
    p.add_argument("--size", type=int, default=32)
    timing.add_flags(p, rounds=3, warmup=2)
    a = p.parse_args()
    tasks = [t for t in a.tasks.split(",") if t]
    bad = sorted(set(tasks) - set(TASKS))
    if bad:
        print(f"error: unknown task(s) {bad}; choose from {', '.join(TASKS)}", file=sys.stderr)
        return 2
    report = timing.Report("bench_permutation_image", a)
    ratios = report.data.setdefault("bf16_over_fp32", {})
    for task in tasks:
        by_prec = {prec: bench(report, task, a.batch_size, prec, a.steps, a.size, a.rounds, a.warmup)
                   for prec in a.precisions.split(",")}
        if "float32" in by_prec and "mixed_bfloat16" in by_prec:
            ratios[task] = by_prec["mixed_bfloat16"]["items_per_second"] / by_prec["float32"]["items_per_second"]
            print(f"{task:12s} bf16 / fp32 = {ratios[task]:.2f}", flush=True)
    report.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
