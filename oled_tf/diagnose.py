"""Cheap diagnostics behind the defaults of issue 18 (docs/oled-notes.md "Issue 18"), each seconds to minutes:

* ``plain_ae``: R alone as a plain auto-encoder (clean MSE only) with a given decoder (``--decoder_bn``,
  ``--output_clip``), trained on the quick split's training images, BN recalibrated on them, scored by s_rec on
  the quick test subset, with the PCA-20 floor of the same split (the review's probe, cause 1).
* ``loss_scales``: at initialisation, on one training batch, the value of L_mask, gamma * L_cont and lambda * L_rec
  and the norm of each term's gradient on R, per ``--loss_reduction``; and the size of MG's gradient of MM's
  objective (faithful threshold unit) against Adam's epsilon (causes 2 and 3).

    python -m oled_tf.diagnose plain_ae --dataset=fashion_mnist --classes=0,2 --variants=bn_clip,bn,clip,none
    python -m oled_tf.diagnose loss_scales --dataset=fashion_mnist --classes=0
"""
from __future__ import annotations

import argparse
import json
import sys
import time

VARIANTS = {"bn_clip": (True, True), "bn": (True, False), "clip": (False, True), "none": (False, False)}


def _data(dataset: str, cls: int, train_limit: int, seed: int):
    from oled_tf.config import OLEDConfig
    from oled_tf.data import prepare

    cfg = OLEDConfig(dataset=dataset, normal_class=cls, scale="quick", train_limit=train_limit, seed=seed,
                     workdir="/tmp/oled_diagnose").resolved()
    return cfg, prepare(cfg)


def recalibrate(net, x) -> None:
    """Momentum-0 training-mode pass: BN moving statistics := those of ``x`` (as OLED.recalibrate_batch_norm)."""
    import keras

    def walk(layer):
        for sub in getattr(layer, "layers", ()):
            yield sub
            yield from walk(sub)

    bns = [l for l in walk(net) if isinstance(l, keras.layers.BatchNormalization)]
    saved = [l.momentum for l in bns]
    for l in bns:
        l.momentum = 0.0
    net(x, training=True)
    for l, m in zip(bns, saved):
        l.momentum = m


def plain_ae(dataset: str, cls: int, variant: str, train_limit: int = 400, epochs: int = 6, batch: int = 32,
             seed: int = 0) -> dict:
    """AUROC of R as a plain auto-encoder with the decoder ``variant`` (see :data:`VARIANTS`)."""
    import keras
    import numpy as np

    from common import metrics
    from common.floors import floor_metrics
    from oled_tf.networks import build_reconstructor

    cfg, data = _data(dataset, cls, train_limit, seed)
    keras.utils.set_random_seed(seed)
    bn, clip = VARIANTS[variant]
    net = build_reconstructor("mnist", seed + 17, "paper", decoder_bn=bn, output_clip=clip)
    net.compile(keras.optimizers.Adam(5e-4, beta_1=0.5, beta_2=0.9), loss="mse")
    t0 = time.time()
    net.fit(data.train_x, data.train_x, batch_size=batch, epochs=epochs, shuffle=True, verbose=0)
    seconds = time.time() - t0
    recalibrate(net, data.train_x[:1024])
    rec = net.predict(data.test_x, batch_size=256, verbose=0)
    score = np.sum(np.square(data.test_x - rec), axis=(1, 2, 3))
    floor = floor_metrics(data.train_x, data.test_x, data.test_y, None, None, None, seed=seed)["pca20_auroc"]
    return {"dataset": dataset, "class": cls, "variant": variant, "decoder_bn": bn, "output_clip": clip,
            "train_images": len(data.train_x), "steps": epochs * -(-len(data.train_x) // batch),
            "auroc": metrics.auroc(data.test_y, score), "floor": floor, "train_seconds": seconds,
            "out_of_range_fraction": float(np.mean(np.abs(data.test_x) > 0.999))}


def loss_scales(dataset: str, cls: int, reductions=("mean", "norm"), batch: int = 64, seed: int = 0) -> list[dict]:
    """Values and R-gradient norms of the three terms of Eq. 8 at initialisation, per reduction; MG's gradient."""
    import keras
    import numpy as np
    import tensorflow as tf

    from oled_tf.model import OLED

    cfg, data = _data(dataset, cls, 0, seed)
    x = tf.constant(data.train_x[:batch])
    out = []
    for red in reductions:
        keras.utils.set_random_seed(seed)
        m = OLED("mnist", gamma=cfg.gamma, decoder_bn=cfg.decoder_bn, output_clip=cfg.output_clip,
                 loss_reduction=red, seed=seed + 17)
        m(tf.zeros((2, 28, 28, 1)))
        rv, mv = m.reconstructor.trainable_variables, m.mask_generator.trainable_variables
        with tf.GradientTape(persistent=True) as tape:
            o = m.compute_outputs(x, training=True)
            terms = {"l_mask": o["l_mask"], "gamma_l_cont": m.gamma * o["l_cont"],
                     "lambda_l_rec": m.lambda_rec * o["l_rec"]}
            mm_obj = o["mm_objective"]
        row = {"reduction": red, "gamma": m.gamma}
        for k, v in terms.items():
            g = tape.gradient(v, rv)
            row[k] = float(v)
            row[f"grad_R_{k}"] = float(tf.linalg.global_norm([t for t in g if t is not None]))
        gm = [t for t in tape.gradient(mm_obj, mv) if t is not None]
        flat = np.concatenate([np.abs(np.asarray(t)).ravel() for t in gm]) if gm else np.zeros(1)
        row.update(mg_grad_abs_median=float(np.median(flat)), mg_grad_abs_max=float(flat.max()),
                   mg_grad_nonzero=float(np.mean(flat > 0)), adam_epsilon_default=1e-7)
        out.append(row)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("plain_ae", "loss_scales"))
    p.add_argument("--dataset", default="fashion_mnist")
    p.add_argument("--classes", default="0,2")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--train_limit", type=int, default=400)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    for v in a.variants.split(","):
        if v not in VARIANTS:
            p.error(f"unknown --variants entry {v!r}; choose from {', '.join(VARIANTS)}")
    for c in (int(c) for c in a.classes.split(",")):
        if a.what == "plain_ae":
            for v in a.variants.split(","):
                print(json.dumps(plain_ae(a.dataset, c, v, a.train_limit, a.epochs, a.batch, a.seed)), flush=True)
        else:
            for row in loss_scales(a.dataset, c, seed=a.seed):
                print(json.dumps({"class": c, **row}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
