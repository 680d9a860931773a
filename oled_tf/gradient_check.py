"""How much of MM's learning signal reaches the mask generator through the threshold unit (Eq. 2).

MG is trained by the gradient of MM's objective (Eq. 8, L_mask + gamma L_cont) with respect to its activation
map A, dObjective/dA, which passes the threshold unit T. This module computes that gradient exactly as a
training step does (same forward pass, BN in training mode, float32), the same gradient with every network and
T in float64 (the reference), and compares them:

* ``nonzero``: fraction of the B x H x W entries of dObjective/dA that are not exactly 0;
* ``sign_agreement``: fraction of the entries with a non-zero float64 gradient whose float32 sign is the same
  (0 counts as disagreement: that pixel gets no signal); ``sign_agreement_where_nonzero``: the same among the
  entries where both are non-zero (0.5 = a coin flip).

Measure on real images (numbers in oled_tf/README.md)::

    python -m oled_tf.gradient_check --dataset=mnist5k --normal_class=7              # freshly initialised
    python -m oled_tf.gradient_check --workdir=runs/oled_mnist5k_class7_quick_...     # a finished run's weights
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from oled_tf.config import MASK_GRADIENTS

# OLED constructor arguments that fully describe a model (for the float64 / other-gradient copies).
_ARGS = ("kind", "t", "gamma", "lambda_rec", "mm_uses_context", "architecture")


def _model_args(model) -> dict:
    tu = model.threshold_unit
    return {**{k: getattr(model, k) for k in _ARGS}, "threshold_eps": tu.eps, "threshold_mode": tu.mode,
            "mask_gradient": tu.gradient, "mask_temperature": tu.temperature}


def copy_model(model, dtype: str = "float32", **overrides):
    """A copy of ``model`` (same weights, BN statistics included) with its layers in ``dtype`` and the OLED
    arguments ``overrides`` (e.g. ``mask_gradient="straight_through"``)."""
    import keras

    from oled_tf.model import OLED

    saved = keras.config.dtype_policy()
    keras.config.set_dtype_policy(dtype)
    try:
        copy = OLED(**{**_model_args(model), **overrides})
        copy(keras.ops.zeros((2, *copy.input_shape_), dtype=dtype), training=False)
    finally:
        keras.config.set_dtype_policy(saved)
    copy.set_weights([np.asarray(w, dtype) if np.issubdtype(np.asarray(w).dtype, np.floating) else w
                      for w in model.get_weights()])
    return copy


def activation_gradient(model, x) -> tuple[np.ndarray, np.ndarray]:
    """``(A, dObjective/dA)`` of MM's objective at MG's activation map A of the batch ``x``, computed as in a
    training step (``OLED.forward`` with ``training=True``; only A is differentiated). Runs in the model's dtype.

    The BN moving statistics are restored afterwards (a training-mode pass updates them)."""
    import tensorflow as tf

    weights = model.get_weights()
    dtype = model.mask_generator.outputs[0].dtype
    x = tf.convert_to_tensor(np.asarray(x), dtype)
    a = tf.convert_to_tensor(model.mask_generator(x, training=True))
    with tf.GradientTape() as tape:
        tape.watch(a)
        out = model.reconstruct(x, model.threshold_unit(a), a, training=True)
        objective = model.objectives(x, out)["mm_objective"]
    g = tape.gradient(objective, a)
    model.set_weights(weights)
    return np.asarray(a), np.asarray(g)


def agreement(g: np.ndarray, reference: np.ndarray) -> dict:
    """Non-zero fractions of ``g`` and ``reference`` and the sign agreement of ``g`` with ``reference``."""
    ref_nz, both = reference != 0, (reference != 0) & (g != 0)
    same = np.sign(g) == np.sign(reference)
    return {"nonzero": float(np.mean(g != 0)), "nonzero_float64": float(np.mean(ref_nz)),
            "sign_agreement": float(np.mean(same[ref_nz])) if ref_nz.any() else float("nan"),
            "sign_agreement_where_nonzero": float(np.mean(same[both])) if both.any() else float("nan")}


def measure(model, x, gradients=MASK_GRADIENTS) -> dict:
    """For each backward pass of T: ``agreement`` of the float32 dObjective/dA with the float64 one (same
    weights, same batch)."""
    out = {}
    for grad in gradients:
        m32 = copy_model(model, "float32", mask_gradient=grad)
        m64 = copy_model(model, "float64", mask_gradient=grad)
        _, g32 = activation_gradient(m32, x)
        _, g64 = activation_gradient(m64, x)
        out[grad] = agreement(g32, g64)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="mnist5k")
    p.add_argument("--data_dir", default=None)
    p.add_argument("--normal_class", type=int, default=7)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", default=None, help="a finished oled_tf.train run: measure with its weights")
    p.add_argument("--out", default=None, help="write the numbers as JSON here")
    args = p.parse_args(argv)

    import keras

    from common.errors import ReproError
    from oled_tf.config import OLEDConfig
    from oled_tf.data import prepare
    from oled_tf.experiment import build_model

    try:
        if args.workdir:
            from common.run_identity import load_frozen_weights

            import dataclasses

            names = {f.name for f in dataclasses.fields(OLEDConfig)}
            cfg = OLEDConfig(**{k: v for k, v in json.loads((Path(args.workdir) / "config.json").read_text()).items()
                                if k in names})
        else:
            cfg = OLEDConfig(dataset=args.dataset, data_dir=args.data_dir, normal_class=args.normal_class,
                             scale="quick", seed=args.seed, workdir="/tmp/unused").resolved()
        data = prepare(cfg)
        keras.utils.set_random_seed(args.seed)
        model = build_model(cfg, data.kind, compile_model=False)
        if args.workdir:
            load_frozen_weights(args.workdir, model, "oled")
        x = data.train_x[np.random.default_rng(args.seed).choice(len(data.train_x), args.batch, replace=False)]
        if not args.workdir:  # fresh BN statistics are (0, 1): take those of the batch, as a short run would
            model.recalibrate_batch_norm(x)
        res = {"dataset": cfg.dataset, "normal_class": cfg.normal_class, "batch": len(x),
               "weights": args.workdir or "initial", "threshold_eps": cfg.threshold_eps, **measure(model, x)}
    except ReproError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(res, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
