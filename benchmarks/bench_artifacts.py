"""Training throughput of one full adversarial step of Learning to Spot Artifacts: frozen autoencoder forward,
damage, distributed repair (R1..R5 in the decoder), the AlexNet discriminator with both heads on real and
corrupted images, history-buffer mixing, and both Adam updates.

    .venv/bin/python benchmarks/bench_artifacts.py [--image_size=96] [--batch_sizes=64]
        [--precisions=float32,mixed_bfloat16] [--lrelu=layer,maximum] [--steps=3] [--rounds=3] [--warmup=1]
        [--generator_loss=non_saturating] [--diagnose_steps=0] [--images=random|fashion_mnist]
        [--peak_probe=full|small|off] [--out=results.json]

For every (precision, batch size): build the baseline model under the Keras dtype policy, compile one
``tf.function`` of ``train_step``, run ``--warmup`` warm-up steps (the first traces; its time is printed), then
time ``--rounds`` rounds of ``--steps`` steps on a fixed random batch (:mod:`benchmarks.timing`).

Prints the machine (CPU model, bf16 flags), the load average (with a warning when it is above 0.5 per core)
and the float32 / bf16 peak probe first; then per (precision, batch) one line: median seconds per step (wall
and CPU) and their spread, images per second (batch / seconds per step, i.e. real images consumed per second),
GFLOP/s and its fraction of the peak of that precision, and the first step's time. A table of all rows and the
path of the JSON results follow. ``--lrelu`` times the leaky ReLU of E, D and R both ways
(``artifacts_tf.networks.LRELU_IMPL``: the ``LeakyRelu`` op, or ``tf.maximum(x, slope * x)``; same function).

``--diagnose_steps=N`` (generator-loss measurement, Sec. 4.3 / Eq. 4): after the timing, train the same model N
more steps on the fixed batch with ``--generator_loss`` and print, every N / 5 steps, C's held-out gates and R's
gradient norm under both forms of Eq. 4 (``SpotArtifacts.heldout_metrics`` on a second fixed batch): the minimax
form's gradient carries the factor C(x_hat), the non-saturating one 1 - C(x_hat). ``--images=fashion_mnist``
takes both batches from Fashion-MNIST (gray replicated, resized) instead of uniform noise. FLOPs per step (:mod:`benchmarks.flops`): the conv / dense MACs of one eager
forward pass of the step (``compute_outputs``), backward counted for the players' networks (discriminator,
repair network), not through the frozen autoencoder.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import flops, timing  # noqa: E402


def _images(kind: str, n: int, image_size: int, offset: int):
    import numpy as np

    if kind == "random":
        return np.random.default_rng(offset).uniform(-1, 1, (n, image_size, image_size, 3)).astype("float32")
    from artifacts_tf.data import to_model_range
    from common.datasets import load_images

    return np.asarray(to_model_range(load_images(kind, "train", limit=offset + n).x[offset:], image_size))


def diagnose(model, x, x_held, steps: int, step) -> list[dict]:
    """Train ``steps`` more steps on ``x``; every steps / 5 the held-out gates and R's gradient norms."""
    import numpy as np

    import tensorflow as tf

    rng = np.random.default_rng(7)
    keep = (rng.uniform(size=(len(x_held), model.grid, model.grid, 1)) >= model.drop_rate).astype("float32")
    metrics = tf.function(model.heldout_metrics)
    every = max(1, steps // 5)
    out = []
    for i in range(steps + 1):
        if i % every == 0 or i == steps:
            m = {k: float(v) for k, v in metrics(x_held, keep).items()}
            ratio = m.get("r_grad_norm_non_saturating", 0.0) / max(m.get("r_grad_norm_minimax", 0.0), 1e-30)
            out.append({"step": i, **m, "grad_ratio_non_saturating_over_minimax": ratio})
            print("    diagnose step {step}: ".format(step=i) + ", ".join(f"{k} {v:.4g}" for k, v in out[-1].items()
                                                                         if k != "step"), flush=True)
        if i < steps:
            step(x)
    return out


def bench(report: timing.Report, image_size: int, batch: int, precision: str, steps: int, rounds: int,
          warmup: int, lrelu: str = "layer", generator_loss: str = "non_saturating", diagnose_steps: int = 0,
          images: str = "random") -> dict:
    import keras
    import tensorflow as tf

    from artifacts_tf import networks
    from artifacts_tf.model import SpotArtifacts
    from artifacts_tf.networks import Autoencoder

    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    networks.LRELU_IMPL = lrelu
    ae = Autoencoder(image_size, 3)
    ae(tf.zeros((1, image_size, image_size, 3)))
    model = SpotArtifacts(ae, image_size, 3, history_size=4 * batch, generator_loss=generator_loss)
    model.compile(keras.optimizers.Adam(3e-4, beta_1=0.5), keras.optimizers.Adam(3e-4, beta_1=0.5))
    x = tf.constant(_images(images, batch, image_size, 0))
    macs = flops.count_macs(model, lambda: model.compute_outputs(x, training=True),
                            groups={"discriminator": model.discriminator, "repair": model.repair_net})
    step_flops = flops.train_step_flops(macs["macs"], sum(macs["groups"].values()))
    step = tf.function(model.train_step)
    m = timing.time_call(lambda: step(x)["d_loss"], warmup=warmup, rounds=rounds, calls=steps)
    first = m.warmup_wall[0] if m.warmup_wall else None
    diag = []
    if diagnose_steps:
        diag = diagnose(model, x, tf.constant(_images(images, batch, image_size, batch)), diagnose_steps, step)
    keras.mixed_precision.set_global_policy("float32")
    networks.LRELU_IMPL = "layer"
    return report.add(f"{image_size}px batch {batch} lrelu={lrelu}", m, precision=precision, items=batch,
                      unit="img", flops=step_flops, flops_note="conv/dense MACs of compute_outputs; backward for C "
                      "and R", note=f"first step {first:.1f} s" if first is not None else "", image_size=image_size,
                      batch_size=batch, steps=steps, first_step_seconds=first, macs=macs, lrelu=lrelu,
                      generator_loss=generator_loss, diagnose=diag)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image_size", type=int, default=96)
    p.add_argument("--batch_sizes", default="64")
    p.add_argument("--precisions", default="float32,mixed_bfloat16")
    p.add_argument("--lrelu", default="layer", help="comma list of leaky-ReLU implementations: layer, maximum")
    p.add_argument("--steps", type=int, default=3, help="timed steps per round")
    p.add_argument("--generator_loss", default="non_saturating", choices=("minimax", "non_saturating", "code"))
    p.add_argument("--diagnose_steps", type=int, default=0,
                   help="after timing, train this many more steps and print the held-out gates and R's gradients")
    p.add_argument("--images", default="random", choices=("random", "fashion_mnist"))
    timing.add_flags(p, rounds=3, warmup=1)
    a = p.parse_args()
    report = timing.Report("bench_artifacts", a)
    impls = a.lrelu.split(",")
    bad = sorted(set(impls) - {"layer", "maximum"})
    if bad:
        p.error(f"--lrelu: unknown implementation(s) {bad}; use layer, maximum")
    for prec in a.precisions.split(","):
        for b in (int(v) for v in a.batch_sizes.split(",")):
            for impl in impls:
                bench(report, a.image_size, b, prec, a.steps, a.rounds, a.warmup, impl, a.generator_loss,
                      a.diagnose_steps, a.images)
    report.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
