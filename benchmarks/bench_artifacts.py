"""Training throughput of one full adversarial step of Learning to Spot Artifacts: frozen autoencoder forward,
damage, distributed repair (R1..R5 in the decoder), the AlexNet discriminator with both heads on real and
corrupted images, history-buffer mixing, and both Adam updates.

    python benchmarks/bench_artifacts.py [--image_size=96] [--batch_sizes=64] [--precisions=float32,mixed_bfloat16]
                                         [--steps=3] [--out=results.json]

For every (precision, batch size): build the baseline model under the Keras dtype policy, compile one
``tf.function`` of ``train_step``, run 1 warm-up step, then time ``--steps`` steps on a fixed random batch and
report images per second (batch * steps / seconds), i.e. real images consumed per second. Prints the CPU load
average too: on a shared machine it explains most of the variance.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def bench(image_size: int, batch: int, precision: str, steps: int) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from artifacts_tf.model import SpotArtifacts
    from artifacts_tf.networks import Autoencoder

    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    ae = Autoencoder(image_size, 3)
    ae(tf.zeros((1, image_size, image_size, 3)))
    model = SpotArtifacts(ae, image_size, 3, history_size=4 * batch)
    model.compile(keras.optimizers.Adam(3e-4, beta_1=0.5), keras.optimizers.Adam(3e-4, beta_1=0.5))
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (batch, image_size, image_size, 3)).astype("float32"))
    step = tf.function(model.train_step)
    t0 = time.perf_counter()
    float(step(x)["d_loss"])
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        logs = step(x)
    float(logs["d_loss"])
    dt = time.perf_counter() - t0
    return {"image_size": image_size, "precision": precision, "batch_size": batch, "steps": steps, "seconds": dt,
            "first_step_seconds": first, "images_per_second": batch * steps / dt, "load_average": os.getloadavg(),
            "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU"}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image_size", type=int, default=96)
    p.add_argument("--batch_sizes", default="64")
    p.add_argument("--precisions", default="float32,mixed_bfloat16")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    rows = []
    for prec in a.precisions.split(","):
        for b in (int(v) for v in a.batch_sizes.split(",")):
            r = bench(a.image_size, b, prec, a.steps)
            rows.append(r)
            print(f"{a.image_size}px {prec:15s} batch {b:4d}: {r['images_per_second']:8.2f} img/s "
                  f"({r['steps']} steps in {r['seconds']:.1f} s, first step {r['first_step_seconds']:.1f} s, "
                  f"{r['device']}, load {r['load_average'][0]:.1f})", flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
