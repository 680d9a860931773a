"""Training throughput of one full adversarial step of Learning to Spot Artifacts: frozen autoencoder forward,
damage, distributed repair (R1..R5 in the decoder), the AlexNet discriminator with both heads on real and
corrupted images, history-buffer mixing, and both Adam updates.

    .venv/bin/python benchmarks/bench_artifacts.py [--image_size=96] [--batch_sizes=64]
        [--precisions=float32,mixed_bfloat16] [--steps=3] [--rounds=3] [--warmup=1]
        [--peak_probe=full|small|off] [--out=results.json]

For every (precision, batch size): build the baseline model under the Keras dtype policy, compile one
``tf.function`` of ``train_step``, run ``--warmup`` warm-up steps (the first traces; its time is printed), then
time ``--rounds`` rounds of ``--steps`` steps on a fixed random batch (:mod:`benchmarks.timing`).

Prints the machine (CPU model, bf16 flags), the load average (with a warning when it is above 0.5 per core)
and the float32 / bf16 peak probe first; then per (precision, batch) one line: median seconds per step (wall
and CPU) and their spread, images per second (batch / seconds per step, i.e. real images consumed per second),
GFLOP/s and its fraction of the peak of that precision, and the first step's time. A table of all rows and the
path of the JSON results follow. FLOPs per step (:mod:`benchmarks.flops`): the conv / dense MACs of one eager
forward pass of the step (``compute_outputs``), backward counted for the players' networks (discriminator,
repair network), not through the frozen autoencoder.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import flops, timing  # noqa: E402


def bench(report: timing.Report, image_size: int, batch: int, precision: str, steps: int, rounds: int,
          warmup: int) -> dict:
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
    macs = flops.count_macs(model, lambda: model.compute_outputs(x, training=True),
                            groups={"discriminator": model.discriminator, "repair": model.repair_net})
    step_flops = flops.train_step_flops(macs["macs"], sum(macs["groups"].values()))
    step = tf.function(model.train_step)
    m = timing.time_call(lambda: step(x)["d_loss"], warmup=warmup, rounds=rounds, calls=steps)
    first = m.warmup_wall[0] if m.warmup_wall else None
    keras.mixed_precision.set_global_policy("float32")
    return report.add(f"{image_size}px batch {batch}", m, precision=precision, items=batch, unit="img",
                      flops=step_flops, flops_note="conv/dense MACs of compute_outputs; backward for C and R",
                      note=f"first step {first:.1f} s" if first is not None else "", image_size=image_size,
                      batch_size=batch, steps=steps, first_step_seconds=first, macs=macs)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image_size", type=int, default=96)
    p.add_argument("--batch_sizes", default="64")
    p.add_argument("--precisions", default="float32,mixed_bfloat16")
    p.add_argument("--steps", type=int, default=3, help="timed steps per round")
    timing.add_flags(p, rounds=3, warmup=1)
    a = p.parse_args()
    report = timing.Report("bench_artifacts", a)
    for prec in a.precisions.split(","):
        for b in (int(v) for v in a.batch_sizes.split(",")):
            bench(report, a.image_size, b, prec, a.steps, a.rounds, a.warmup)
    report.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
