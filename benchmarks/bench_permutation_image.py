"""Training throughput of the six image pretext tasks (one ``PretextModel.train_step`` per batch).

    python benchmarks/bench_permutation_image.py [--tasks=jigsaw,rotnet,...] [--batch_size=64]
        [--precisions=float32,mixed_bfloat16] [--steps=5] [--size=32] [--out=results.json]

For every (task, precision): build the task's model for 32 x 32 images (1 channel; 3 for Colorization and
Split-Brain) under the Keras dtype policy, compile one ``tf.function`` of ``train_step``, run 2 warm-up steps, then
time ``--steps`` steps on a fixed random batch and report training images per second (batch * steps / seconds;
an image counts once, whatever number of transformations the task trains it under) and, per task, the ratio
bf16 / fp32. Prints the CPU load average too: on a shared machine it explains most of the variance.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TASKS = ("jigsaw", "colorization", "inpainting", "counting", "splitbrain", "rotnet")


def bench(task_name: str, batch: int, precision: str, steps: int, size: int) -> dict:
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
    step = tf.function(model.train_step)
    for _ in range(2):
        logs = step(x)
    float(logs["loss"])
    t0 = time.perf_counter()
    for _ in range(steps):
        logs = step(x)
    float(logs["loss"])
    dt = time.perf_counter() - t0
    keras.mixed_precision.set_global_policy("float32")
    return {"task": task_name, "precision": precision, "batch_size": batch, "steps": steps, "seconds": dt,
            "images_per_second": batch * steps / dt, "load_average": os.getloadavg()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--precisions", default="float32,mixed_bfloat16")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    tasks = [t for t in a.tasks.split(",") if t]
    bad = sorted(set(tasks) - set(TASKS))
    if bad:
        print(f"error: unknown task(s) {bad}; choose from {', '.join(TASKS)}", file=sys.stderr)
        return 2
    rows = []
    for task in tasks:
        by_prec = {}
        for prec in a.precisions.split(","):
            r = bench(task, a.batch_size, prec, a.steps, a.size)
            rows.append(r)
            by_prec[prec] = r["images_per_second"]
            print(f"{task:12s} {prec:15s} batch {a.batch_size:3d}: {r['images_per_second']:8.1f} img/s "
                  f"({r['steps']} steps in {r['seconds']:.2f} s, load {r['load_average'][0]:.1f})", flush=True)
        if "float32" in by_prec and "mixed_bfloat16" in by_prec:
            ratio = by_prec["mixed_bfloat16"] / by_prec["float32"]
            print(f"{task:12s} bf16 / fp32 = {ratio:.2f}", flush=True)
            rows.append({"task": task, "bf16_over_fp32": ratio})
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
