"""OLED training speed: ours against a reference loop written the way the authors' script runs, in one process.

    .venv/bin/python benchmarks/bench_oled.py [--kind=mnist] [--batch=64] [--precisions=float32,mixed_bfloat16]
        [--steps=3] [--rounds=3] [--warmup=1] [--epoch_images=640] [--e2e_repeats=2] [--throughput_batches=]
        [--jit_compile=auto|true|false] [--selection_cost] [--peak_probe=full|small|off] [--out=results.json]

Only ratios measured in the same run count: these machines differ from session to session (some CPUs have AMX
bf16 units, some only AVX2) and are shared, so absolute images per second say little. Printed as
``ours/reference = reference seconds / our seconds`` (above 1 = ours is faster), from wall-clock time and from
the process's CPU time (``time.process_time``, all threads): on a loaded shared machine the CPU time is the
steadier of the two, as it leaves out the time other jobs held the cores.

**The reference loop** (authors' ``train.py``, reference notes section 4.1) on the same networks (the encoder,
decoder and mask generator of an :class:`oled_tf.model.OLED`, a second instance so that the two never share
weights or optimizer state):

* three ``tf.GradientTape`` (encoder, decoder, mask module), each watching everything it touches, one Adam each;
  the encoder's and the decoder's gradients are taken separately from the same reconstructor loss;
* ``@tf.function train_step(images, epoch)`` with ``epoch`` a Python int: every new epoch value traces and
  optimises the step again; inside, ``if epoch % every == 0`` takes and applies the mask module's gradient
  (so on the other epochs MG's backward pass is dropped, as in ours);
* the threshold unit: per sample, the TFP "lower" 87.5th percentile of the activation map by a full sort
  (``tf.math.top_k`` with k = all pixels, as TFP 0.11 sorts) inside ``tf.map_fn``, + 1e-12; M = r / (r + 1e-12)
  with r = ReLU(t - A); the context loss with the non-differentiable inverse mask 1[M == 0];
* losses as coded: L_rec + L_mask + gamma L_ctx for R, -(L_mask + gamma L_ctx) for MG (gamma 12.5, MNIST);
  ``tf.keras.backend.clear_session()`` after each epoch is left out (it only resets Keras' name counters here).

**Ours** is what ``oled_tf.train`` runs: :class:`OLED` compiled with one Adam per player and
:class:`oled_tf.model.MaskUpdateSchedule`, i.e. one cached step function per set of frozen players
(:mod:`common.multiplayer`; the MM-frozen step has no MM tape, gradient or update), with XLA as
``--jit_compile=auto`` resolves it there (on a CPU-only machine the cached timed probe of
``oled_tf.experiment.jit_choice`` at the benchmark's batch; ``--jit_compile=true|false`` forces it).
``--step_time`` only times the quick preset's model with and without XLA (and one validation) per precision.

Measured, per precision:

* **one step**, MM-update steps and other steps separately: both step functions traced and warmed up first,
  then ``--rounds`` rounds of ``--steps`` steps of each of the four step functions on one fixed batch, the
  order rotated every round; the median per-step time of each is compared (interleaving keeps a shared CPU's
  load changes out of the ratio). A fifth step function, ours as it was before frozen players cost nothing
  (MG's gradient computed on non-MM steps, not applied), gives the "before" of that change;
* **end to end**, a three-epoch schedule with MM updated on epoch 0 only (``mask_update_every=3``, the code's
  MNIST schedule), from freshly built models so that every trace is included: ours ``model.fit(dataset,
  epochs=3, callbacks=[MaskUpdateSchedule(3)])`` (2 traces), the reference's Python loop over the same
  ``tf.data`` batches (3 traces); ``--e2e_repeats`` alternating repeats, the minimum of each compared.

bf16 (``mixed_bfloat16``) is measured only where it runs on native units (AMX / avx512_bf16 in
``/proc/cpuinfo``, or a GPU; :func:`common.config.native_bf16`); elsewhere the line says "no native bf16 on
this CPU" (emulated bf16 is several times slower than fp32 and says nothing about a bf16 machine).

``--throughput_batches=64,256`` additionally prints our images per second per batch size (one MM-update step).

All timing is :mod:`benchmarks.timing`'s. Prints the machine (CPU model, bf16 flags), the load average (with a
warning when it is above 0.5 per core) and the float32 / bf16 peak probe first; then, per precision, one line
per timed step function or schedule (median seconds wall and CPU and their spread, images per second, GFLOP/s
and its fraction of the peak of that precision) and the ours/reference lines above; at the end a table of all
rows, the load after the run and the path of the JSON results. FLOPs (:mod:`benchmarks.flops`): the conv /
dense MACs of one eager ``compute_outputs``; backward counted for the reconstructor, and for the mask generator
on MM-update steps (and in the "before" step, which computes MG's gradient); the same useful work for ours and
the reference (whatever the reference does beyond it is its overhead). ``--selection_cost`` prints one line:
CPU seconds of an epoch and of each part of the per-epoch selection work, and their fractions.
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import flops, timing  # noqa: E402

CODE_GAMMA_MNIST = 12.5
T = 87.5
EPS = 1e-12


# ---------------------------------------------------------------------------------------------- reference loop
def percentile_lower(a, q: float):
    """TFP 0.11 ``percentile(a, q, interpolation="lower")`` over all elements of ``a``: a full descending sort
    (``top_k`` with k = all elements, TFP's ``_sort_tensor``), then the element at the "lower" index."""
    import tensorflow as tf

    flat = tf.reshape(a, [-1])
    n = flat.shape[0]
    descending = tf.math.top_k(flat, k=n, sorted=True).values
    ascending_index = int(q / 100.0 * (n - 1))  # floor(q/100 (n - 1)), "lower"
    return descending[n - 1 - ascending_index]


class ReferenceLoop:
    """The authors' training step (module docstring) on the encoder, decoder and mask generator of ``model``."""

    def __init__(self, model, gamma: float = CODE_GAMMA_MNIST, every: int = 3, t: float = T):
        import keras
        import tensorflow as tf

        self.encoder = model.reconstructor.get_layer(f"encoder_{model.kind}")
        self.decoder = model.reconstructor.get_layer(f"decoder_{model.kind}")
        self.mask_model = model.mask_generator
        self.gamma, self.every, self.t = float(gamma), int(every), float(t)
        self.opts = [keras.optimizers.Adam(5e-4, beta_1=0.5, beta_2=0.9) for _ in range(3)]
        for opt, net in zip(self.opts, (self.encoder, self.decoder, self.mask_model)):
            opt.build(net.trainable_variables)
        self.traces = 0
        self.train_step = tf.function(self._train_step)

    def _train_step(self, images, epoch: int):
        import tensorflow as tf

        self.traces += 1  # Python side effect: runs once per trace
        enc, dec, mg = self.encoder, self.decoder, self.mask_model
        with tf.GradientTape() as enc_tape, tf.GradientTape() as dec_tape, tf.GradientTape() as mask_tape:
            x_hat = tf.cast(dec(enc(images, training=True), training=True), tf.float32)
            a = tf.cast(mg(images, training=True), tf.float32)
            thr = tf.map_fn(lambda m: percentile_lower(m, self.t), a) + EPS
            r = tf.nn.relu(tf.reshape(thr, [-1, 1, 1, 1]) - a)
            mask = r / (r + EPS)
            x_m = images * mask
            x_hat_m = tf.cast(dec(enc(x_m, training=True), training=True), tf.float32)
            inverse = tf.cast(tf.equal(mask, 0.0), tf.float32)
            l_rec = tf.reduce_mean(tf.square(images - x_hat))
            l_mask = tf.reduce_mean(tf.square(images - x_hat_m))
            l_ctx = self.gamma * tf.reduce_mean(tf.abs(images * inverse - x_hat_m * inverse))
            r_loss = l_rec + l_mask + l_ctx
            m_loss = -(l_mask + l_ctx)
        enc_grads = enc_tape.gradient(r_loss, enc.trainable_variables)
        dec_grads = dec_tape.gradient(r_loss, dec.trainable_variables)
        self.opts[0].apply_gradients(zip(enc_grads, enc.trainable_variables))
        self.opts[1].apply_gradients(zip(dec_grads, dec.trainable_variables))
        if epoch % self.every == 0:
            mask_grads = mask_tape.gradient(m_loss, mg.trainable_variables)
            self.opts[2].apply_gradients(zip(mask_grads, mg.trainable_variables))
        return r_loss

    def fit(self, dataset, epochs: int) -> None:
        for epoch in range(epochs):
            for batch in dataset:
                loss = self.train_step(batch, epoch)
            float(loss)


# ------------------------------------------------------------------------------------------------------ ours
JIT_COMPILE = "auto"  # --jit_compile: ours as ``oled_tf.experiment`` resolves it (auto: XLA_ON_CPU_KINDS)


BATCH = 64  # --batch: the probe of --jit_compile=auto times this batch


def build_ours(kind: str):
    import keras

    from oled_tf.config import OLEDConfig
    from oled_tf.experiment import jit_choice
    from oled_tf.model import OLED

    jit = JIT_COMPILE
    if jit == "auto":  # as oled_tf.train resolves it (the cached probe; None where no probe applies: off)
        cfg = OLEDConfig(dataset="mnist5k", scale="quick", workdir="/tmp/unused").resolved()
        jit = bool(jit_choice(cfg, kind, BATCH)[0])
    model = OLED(kind, gamma=CODE_GAMMA_MNIST, seed=17)
    model(keras.ops.zeros((2, *model.input_shape_)), training=False)
    model.compile(keras.optimizers.Adam(5e-4, 0.5, 0.9), keras.optimizers.Adam(5e-4, 0.5, 0.9), jit_compile=jit)
    return model


def our_step_functions(model, x):
    """``{"mm": step with MM trained, "other": step with MM frozen}``, each traced (and run once) here."""
    import tensorflow as tf

    from oled_tf.model import MASK_PLAYER

    fns = {}
    for name, frozen in (("mm", ()), ("other", (MASK_PLAYER,))):
        model.set_frozen(frozen)
        fns[name] = tf.function(model.train_step, jit_compile=model.jit_compile)
        float(fns[name](x)["r_loss"])  # traced now, under this frozen set
    model.set_frozen(())
    return fns


def unskipped_step(model):
    """The step of a non-MM epoch as it was before frozen players cost nothing (the review's "before"): both
    tapes, MG's gradient computed (its global norm returned, so that graph pruning keeps it) but not applied."""
    import tensorflow as tf

    from oled_tf.model import MASK_PLAYER

    r, m = model.player("reconstructor"), model.player(MASK_PLAYER)

    @tf.function(jit_compile=model.jit_compile)
    def step(x):
        rv, mv = r.trainable_variables(), m.trainable_variables()
        with tf.GradientTape() as r_tape, tf.GradientTape() as m_tape:
            out = model.compute_outputs(x, training=True)
            r_loss, m_loss = r.loss(out), m.loss(out)
        r.optimizer.apply(r_tape.gradient(r_loss, rv), rv)
        return {"r_loss": r_loss, "mg_grad_norm": tf.linalg.global_norm(m_tape.gradient(m_loss, mv))}

    return step


# ---------------------------------------------------------------------------------------------------- timing
STEP_VARIANTS = ("ours_mm", "ours_other", "ref_mm", "ref_other", "ours_other_unskipped")


def step_flops(model, x) -> dict:
    """FLOPs of one step on the batch ``x``: ``mm`` (both players trained; also the "before" step, which
    computes MG's gradient), ``other`` (MG frozen: its forward only), from the MACs of one eager forward pass."""
    macs = flops.count_macs(model, lambda: model.compute_outputs(x, training=True),
                            groups={"reconstructor": model.reconstructor, "mask_generator": model.mask_generator})
    return {"mm": flops.train_step_flops(macs["macs"]),
            "other": flops.train_step_flops(macs["macs"], macs["groups"]["reconstructor"]), "macs": macs["macs"]}


def per_step(kind: str, batch: int, steps: int, rounds: int, warmup: int = 1) -> dict:
    """Median wall / CPU seconds per step of our and the reference's MM-update and other steps (interleaved
    rounds, order rotated), and the ratios reference / ours of both clocks."""
    import numpy as np
    import tensorflow as tf

    ours, ref_model = build_ours(kind), build_ours(kind)
    ref = ReferenceLoop(ref_model)
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (batch, *ours.input_shape_)).astype("float32"))
    fns = our_step_functions(ours, x)
    before = unskipped_step(ours)
    work = step_flops(ours, x)
    variants = {"ours_mm": lambda: fns["mm"](x)["r_loss"], "ours_other": lambda: fns["other"](x)["r_loss"],
                "ref_mm": lambda: ref.train_step(x, 0), "ref_other": lambda: ref.train_step(x, 1),
                "ours_other_unskipped": lambda: before(x)["r_loss"]}
    ms = timing.time_rounds(variants, rounds=rounds, calls=steps, warmup=warmup)  # the reference traces in warm-up
    med = {clock: {k: m.median(clock) for k, m in ms.items()} for clock in ("wall", "cpu")}
    ratios = {clock: {"mm": m["ref_mm"] / m["ours_mm"], "other": m["ref_other"] / m["ours_other"],
                      "other_unskipped": m["ref_other"] / m["ours_other_unskipped"]} for clock, m in med.items()}
    flops_of = {k: work["mm" if k.endswith(("_mm", "unskipped")) else "other"] for k in variants}
    return {"seconds_per_step": med, "ratios": ratios, "measurements": ms, "flops": flops_of,
            "flops_per_image": {k: v / batch for k, v in work.items()}}


def end_to_end(kind: str, batch: int, epoch_images: int, repeats: int, epochs: int = 3) -> dict:
    """Seconds of a three-epoch schedule (MM on epoch 0) from fresh models, traces included; min over repeats."""
    import numpy as np
    import tensorflow as tf

    from oled_tf.model import MaskUpdateSchedule
    from oled_tf.networks import INPUT_SHAPES

    data = np.random.default_rng(1).uniform(-1, 1, (epoch_images, *INPUT_SHAPES[kind])).astype("float32")
    dataset = lambda: tf.data.Dataset.from_tensor_slices(data).batch(batch)  # noqa: E731

    def ours():
        model, ds = build_ours(kind), dataset()
        # one step function per frozen set: MM trained, MM frozen
        return lambda: model.fit(ds, epochs=epochs, callbacks=[MaskUpdateSchedule(3)], shuffle=False, verbose=0)

    def reference():
        loop, ds = ReferenceLoop(build_ours(kind)), dataset()
        return lambda: loop.fit(ds, epochs) or loop

    ms = timing.time_rounds({"ours": ours, "reference": reference}, rounds=repeats, calls=1, warmup=0, fresh=True)
    best = {clock: {k: m.best(clock) for k, m in ms.items()} for clock in ("wall", "cpu")}
    return {"seconds": best, "measurements": ms,
            "ratio": {clock: b["reference"] / b["ours"] for clock, b in best.items()},
            "reference_traces": ms["reference"].output.traces, "epochs": epochs, "epoch_images": epoch_images}


def selection_cost(kind: str, n_train: int, batch: int, n_val: int, n_recal: int, epochs: int = 3) -> dict:
    """CPU seconds of a training epoch (mean over a three-epoch MM schedule, traced beforehand) against the per-epoch
    work of :class:`oled_tf.evaluate.ModelSelection`: BN recalibration on ``n_recal`` training images, scoring
    the ``n_val`` validation images (+ AUROCs), the snapshot (``get_weights`` to npz), and, for comparison, the
    resumable checkpoint that ``fit_resumable`` writes after every epoch (weights, both Adams). Quick-scale shapes:
    400 training images (``train_limit``), batch 32, 150 + 150 validation images, recalibration on all
    training images (at most 1024)."""
    import tempfile
    from pathlib import Path

    import numpy as np
    import tensorflow as tf

    from common.training import Checkpoint
    from oled_tf import evaluate as ev
    from oled_tf.model import MaskUpdateSchedule
    from oled_tf.networks import INPUT_SHAPES

    rng = np.random.default_rng(2)
    train_x = rng.uniform(-1, 1, (n_train, *INPUT_SHAPES[kind])).astype("float32")
    val_x = rng.uniform(-1, 1, (n_val, *INPUT_SHAPES[kind])).astype("float32")
    val_y = (np.arange(n_val) % 2).astype(np.int64)
    recal_x = train_x[:n_recal]
    model = build_ours(kind)
    ds = tf.data.Dataset.from_tensor_slices(train_x).batch(batch)
    fit = lambda: model.fit(ds, epochs=epochs, callbacks=[MaskUpdateSchedule(3)], shuffle=False, verbose=0)  # noqa
    epoch = timing.time_call(fit, warmup=1, rounds=1).median("cpu") / epochs  # the warm-up fit traces
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Checkpoint(Path(tmp) / "checkpoint", model)
        count = itertools.count()
        parts = {"recalibration": lambda: model.recalibrate_batch_norm(recal_x),
                 "validation": lambda: ev.image_aurocs(val_y, ev.normalise(ev.raw_scores(model, val_x, 256))),
                 "snapshot": lambda: ev.save_snapshot(model, Path(tmp) / "epoch_0.npz"),
                 "checkpoint": lambda: ckpt.save(next(count), {})}
        # in this order, as one epoch's end does; the warm-up round traces the scoring function
        ms = timing.time_rounds(parts, rounds=2, calls=1, warmup=1, rotate=False)
    cost = {k: m.median("cpu") for k, m in ms.items()}
    return {"epoch_seconds": epoch, "seconds": cost, "all_seconds": {k: m.to_dict() for k, m in ms.items()},
            "fraction_of_epoch": {k: v / epoch for k, v in cost.items()},
            "n_train": n_train, "batch": batch, "n_val": n_val, "n_recal": n_recal}


def throughput(kind: str, batch: int, steps: int, rounds: int, warmup: int) -> tuple[timing.Measurement, float]:
    """Our MM-update step at ``batch``: its measurement and FLOPs."""
    import numpy as np
    import tensorflow as tf

    model = build_ours(kind)
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (batch, *model.input_shape_)).astype("float32"))
    fn = our_step_functions(model, x)["mm"]
    work = step_flops(model, x)["mm"]
    return timing.time_call(lambda: fn(x)["r_loss"], warmup=warmup, rounds=rounds, calls=steps), work


def step_times(kind: str, batch: int, jits: list[bool], steps: int, rounds: int, warmup: int) -> dict:
    """Wall / CPU seconds per step of ``oled_tf.experiment``'s model (the quick preset's resolved defaults) with
    and without XLA, for the MM-update step and the step of the other epochs, and of one validation (BN
    recalibration on 1024 images + scoring 300 validation images): what sizes the quick preset."""
    import numpy as np
    import tensorflow as tf

    from oled_tf import evaluate as ev
    from oled_tf.config import OLEDConfig
    from oled_tf.experiment import build_model
    from oled_tf.model import MASK_PLAYER

    cfg = OLEDConfig(dataset="fashion_mnist", scale="quick", workdir="/tmp/unused").resolved()
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(-1, 1, (batch, 28, 28, 1)).astype("float32"))
    variants = {}
    for jit in jits:
        model = build_model(cfg, kind, jit=jit)
        for name, frozen in (("mm", ()), ("other", (MASK_PLAYER,))):
            model.set_frozen(frozen)
            fn = tf.function(model.train_step, jit_compile=jit)
            float(fn(x)["r_loss"])  # trace / compile outside the timing
            variants[f"{name}_{'xla' if jit else 'plain'}"] = (lambda f: lambda: f(x)["r_loss"])(fn)
        model.set_frozen(())
    recal_x = rng.uniform(-1, 1, (1024, 28, 28, 1)).astype("float32")
    val_x = rng.uniform(-1, 1, (300, 28, 28, 1)).astype("float32")
    val_y = (np.arange(300) % 2).astype(np.int64)

    def validation():
        model.recalibrate_batch_norm(recal_x)
        return ev.image_aurocs(val_y, ev.normalise(ev.raw_scores(model, val_x, 256)))

    ms = timing.time_rounds(variants, rounds=rounds, calls=steps, warmup=warmup)
    ms["validation"] = timing.time_call(validation, rounds=2, calls=1, warmup=1)
    return {k: {"wall": m.median("wall"), "cpu": m.median("cpu")} for k, m in ms.items()}


# ------------------------------------------------------------------------------------------------------ main
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kind", default="mnist", choices=("mnist",))
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--precisions", default="float32,mixed_bfloat16")
    p.add_argument("--steps", type=int, default=3, help="steps of each step function per round")
    p.add_argument("--epoch_images", type=int, default=640)
    p.add_argument("--e2e_repeats", type=int, default=2)
    p.add_argument("--throughput_batches", default="")
    p.add_argument("--selection_cost", action="store_true", help="only measure the per-epoch validation / "
                   "snapshot cost against an epoch (quick-scale shapes, float32) and exit")
    p.add_argument("--jit_compile", default="auto", choices=("auto", "true", "false"),
                   help="XLA for ours (auto: as oled_tf.train resolves it; the reference never uses XLA)")
    p.add_argument("--step_time", action="store_true", help="only time our quick-preset model's steps with and "
                   "without XLA (and one validation) per --precisions at --batch, and exit")
    timing.add_flags(p, rounds=3, warmup=1, rounds_help="interleaved rounds of --steps steps (median reported)")
    a = p.parse_args()
    global JIT_COMPILE, BATCH
    JIT_COMPILE = {"auto": "auto", "true": True, "false": False}[a.jit_compile]
    BATCH = a.batch

    import keras
    import tensorflow as tf

    from common.config import native_bf16

    tf.get_logger().setLevel("ERROR")  # the reference's retrace-per-epoch warning is the point, not news

    report = timing.Report("bench_oled", a)
    if a.selection_cost:
        keras.mixed_precision.set_global_policy("float32")
        c = report.data["selection_cost"] = selection_cost(a.kind, 400, 32, 300, 400)
        print(f"quick scale, float32, CPU seconds: one epoch ({c['n_train']} images, batch {c['batch']}) "
              f"{c['epoch_seconds']:.2f} s; per-epoch selection work: " + ", ".join(
                  f"{k} {v:.3f} s ({100 * c['fraction_of_epoch'][k]:.1f}%)" for k, v in c["seconds"].items())
              + f"; selection total (recalibration + validation + snapshot) "
              f"{100 * sum(v for k, v in c['fraction_of_epoch'].items() if k != 'checkpoint'):.1f}% of an epoch",
              flush=True)
        report.finish()
        return 0
    if a.step_time:
        out = report.data["step_time"] = {}
        for prec in a.precisions.split(","):
            keras.mixed_precision.set_global_policy(prec)
            keras.utils.set_random_seed(0)
            t = out[prec] = step_times(a.kind, a.batch, [False, True], a.steps, a.rounds, a.warmup)
            print(f"{prec} batch {a.batch}: " + ", ".join(f"{k} {v['wall']:.3f} s ({v['cpu']:.2f} CPU)"
                                                          for k, v in t.items()), flush=True)
        keras.mixed_precision.set_global_policy("float32")
        report.finish()
        return 0
    rows = report.data["rows"] = []
    for prec in a.precisions.split(","):
        if prec == "mixed_bfloat16" and not native_bf16():
            print(f"{prec}: no native bf16 on this CPU (not measured)", flush=True)
            rows.append({"precision": prec, "skipped": "no native bf16 on this CPU"})
            continue
        keras.mixed_precision.set_global_policy(prec)
        keras.utils.set_random_seed(0)
        row = {"precision": prec, "kind": a.kind, "batch": a.batch}
        s = per_step(a.kind, a.batch, a.steps, a.rounds, a.warmup)
        for k in STEP_VARIANTS:
            report.add(f"step {k}", s["measurements"][k], precision=prec, items=a.batch, unit="img",
                       flops=s["flops"][k], variant=k, batch=a.batch)
        sec, rat = s["seconds_per_step"], s["ratios"]

        def line(label, ours_key, ref_key, ratio_key):
            return (f"  {label}: ours {sec['wall'][ours_key]:.3f} s ({sec['cpu'][ours_key]:.3f} s CPU), reference "
                    f"{sec['wall'][ref_key]:.3f} s ({sec['cpu'][ref_key]:.3f} s CPU) -> ours/reference "
                    f"{rat['wall'][ratio_key]:.3f} wall, {rat['cpu'][ratio_key]:.3f} CPU")

        print(f"{prec} batch {a.batch}, one step (median of {a.rounds} rounds x {a.steps} steps):\n"
              + line("MM-update steps", "ours_mm", "ref_mm", "mm") + "\n"
              + line("other steps    ", "ours_other", "ref_other", "other") + "\n"
              + line("other steps, MG's gradient computed but not applied (before)", "ours_other_unskipped",
                     "ref_other", "other_unskipped"), flush=True)
        e = end_to_end(a.kind, a.batch, a.epoch_images, a.e2e_repeats)
        per_image = s["flops_per_image"]
        e2e_flops = a.epoch_images * (per_image["mm"] + (e["epochs"] - 1) * per_image["other"])
        for k in ("ours", "reference"):
            report.add(f"three epochs {k}", e["measurements"][k], precision=prec, statistic="best",
                       items=e["epochs"] * a.epoch_images, unit="img", flops=e2e_flops, batch=a.batch,
                       flops_note="MM on epoch 0 only; traces included in the time")
        es = e["seconds"]
        print(f"  three epochs x {a.epoch_images} images (MM on epoch 0, traces included, min of "
              f"{a.e2e_repeats}): ours {es['wall']['ours']:.1f} s ({es['cpu']['ours']:.1f} s CPU), reference "
              f"{es['wall']['reference']:.1f} s ({es['cpu']['reference']:.1f} s CPU; {e['reference_traces']} "
              f"traces) -> ours/reference {e['ratio']['wall']:.3f} wall, {e['ratio']['cpu']:.3f} CPU", flush=True)
        drop = ("measurements",)
        row.update(per_step={k: v for k, v in s.items() if k not in drop},
                   end_to_end={k: v for k, v in e.items() if k not in drop})
        for b in (int(v) for v in a.throughput_batches.split(",") if v):
            m, work = throughput(a.kind, b, a.steps, a.rounds, a.warmup)
            r = report.add(f"ours mm step, batch {b}", m, precision=prec, items=b, unit="img", flops=work, batch=b)
            row.setdefault("images_per_second", {})[b] = r["items_per_second"]
        rows.append(row)
    keras.mixed_precision.set_global_policy("float32")
    report.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
