"""Training throughput of one OLED step (both players: R and MM forward + backward + Adam updates).

    python benchmarks/bench_oled.py [--kind=mnist] [--batch_sizes=64,256] [--precisions=float32,mixed_bfloat16]
                                    [--steps=5] [--out=results.json]

For every (precision, batch size): build OLED for ``--kind`` under the Keras dtype policy, compile one
``tf.function`` of ``train_step`` (MM updates enabled), run 2 warm-up steps, then time ``--steps`` steps on a
fixed random batch and report images per second (batch * steps / seconds). Prints the CPU load average too:
on a shared machine it explains most of the variance.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def bench(kind: str, batch: int, precision: str, steps: int) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from oled_tf.model import OLED
    from oled_tf.networks import INPUT_SHAPES

    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    model = OLED(kind)
    model.compile(keras.optimizers.Adam(5e-4, 0.5, 0.9), keras.optimizers.Adam(5e-4, 0.5, 0.9))
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (batch, *INPUT_SHAPES[kind])).astype("float32"))
    step = tf.function(model.train_step)
    for _ in range(2):
        logs = step(x)
    float(logs["r_loss"])
    t0 = time.perf_counter()
    for _ in range(steps):
        logs = step(x)
    float(logs["r_loss"])
    dt = time.perf_counter() - t0
    return {"kind": kind, "precision": precision, "batch_size": batch, "steps": steps, "seconds": dt,
            "images_per_second": batch * steps / dt, "load_average": os.getloadavg()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kind", default="mnist", choices=("mnist", "cifar", "ucsd"))
    p.add_argument("--batch_sizes", default="64,256")
    p.add_argument("--precisions", default="float32,mixed_bfloat16")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    rows = []
    for prec in a.precisions.split(","):
        for b in (int(v) for v in a.batch_sizes.split(",")):
            r = bench(a.kind, b, prec, a.steps)
            rows.append(r)
            print(f"{a.kind:6s} {prec:15s} batch {b:4d}: {r['images_per_second']:8.1f} img/s "
                  f"({r['steps']} steps in {r['seconds']:.2f} s, load {r['load_average'][0]:.1f})", flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
