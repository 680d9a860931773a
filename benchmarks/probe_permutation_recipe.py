"""Recipe probe for the video method (issue 21): train one normal class with several recipes in one process and
print, per recipe, the held-out pretext loss against chance (ln M!), the training loss per epoch, the AUROCs
and the time. Each recipe is a full :func:`permutation_tf.pipeline.run` (the same code as ``permutation_tf.train``).

    .venv/bin/python benchmarks/probe_permutation_recipe.py --dataset=fashion_motion --normal_class=0 --m=3 \
        --epochs=6 --steps_per_epoch=25 --recipes=faithful,learn,learn-sampled [--out=probe.json]

Recipes (``name=flag:value,...`` on the command line adds one): ``faithful`` = the paper's CaffeNet recipe
(``permutation_tf.config.FAITHFUL``, the paper preset's: Caffe init, no batch norm, dropout after fc6 / fc7 /
fc8, one label per segment, no weight decay); ``learn`` = ``LEARNS``, the quick preset's: batch norm + He init +
all M! orders + dropout in the Top-CNN only + weight decay 5e-4 + lr 1e-2;
``learn-<x>`` = ``learn`` with one element put back (``sampled``, ``nobn`` = no batch norm with zero-bias Caffe
init, ``drop678`` = CaffeNet's dropout placement, ``nodrop``, ``nowd``, ``lr1e-3`` = the paper's lr).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from permutation_tf.config import FAITHFUL, LEARNS as LEARN  # noqa: E402

RECIPES = {
    "faithful": FAITHFUL,
    "learn": LEARN,
    "learn-sampled": {**LEARN, "train_orders": "sampled"},
    "learn-nobn": {**LEARN, "norm": "none", "init": "caffe_zero_bias"},
    "learn-drop678": {**LEARN, "dropout": "fc6_fc7_fc8"},
    "learn-nodrop": {**LEARN, "dropout": "none"},
    "learn-nowd": {**LEARN, "weight_decay": 0.0},
    "learn-lr1e-3": {**LEARN, "lr": 1e-3},
}


def parse_recipe(text: str) -> tuple[str, dict]:
    if text in RECIPES:
        return text, RECIPES[text]
    name, _, spec = text.partition("=")
    kw = {}
    for part in filter(None, spec.split(",")):
        k, _, v = part.partition(":")
        kw[k] = float(v) if k in ("lr", "weight_decay") else v
    return name, kw


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="fashion_motion")
    p.add_argument("--data_dir", default=None)
    p.add_argument("--normal_class", type=int, default=0)
    p.add_argument("--m", type=int, default=3)
    p.add_argument("--skip", type=int, default=2)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--steps_per_epoch", type=int, default=25)
    p.add_argument("--scale", default="quick")
    p.add_argument("--recipes", default="faithful,learn")
    p.add_argument("--workdir", default="/tmp/probe_permutation_recipe")
    p.add_argument("--out", default=None)
    a = p.parse_args()

    from permutation_tf.config import VideoConfig
    from permutation_tf.pipeline import run

    rows = []
    for text in a.recipes.split(";") if ";" in a.recipes else a.recipes.split(","):
        name, kw = parse_recipe(text)
        cfg = VideoConfig(dataset=a.dataset, data_dir=a.data_dir, normal_class=a.normal_class, m=a.m, skip=a.skip,
                          scale=a.scale, epochs=a.epochs, steps_per_epoch=a.steps_per_epoch,
                          workdir=f"{a.workdir}/{a.dataset}_c{a.normal_class}_m{a.m}_s{a.skip}_{a.epochs}x"
                                  f"{a.steps_per_epoch}_{name}", resume=False, **kw)
        t0 = time.time()
        m = run(cfg)
        row = {"recipe": name, "flags": kw, "m": a.m, "steps": a.epochs * a.steps_per_epoch,
               "heldout": m["heldout_pretext_loss"], "chance": m["chance_loss"],
               "train_inference": m["train_pretext_loss"],
               "ratio": m["heldout_pretext_loss"] / m["chance_loss"], "loss_per_epoch": m["loss_per_epoch"],
               "auroc": m["auroc"], "auroc_all": m["auroc_all"], "floor": m["floor"]["auroc"],
               "train_seconds": m["train_seconds"], "wall_seconds": time.time() - t0,
               "load": os.getloadavg()[0]}
        rows.append(row)
        print(f"{name:16s} M={a.m} steps={row['steps']} heldout {row['heldout']:.3f} / chance {row['chance']:.3f} "
              f"= {row['ratio']:.2f} (train videos, inference: {row['train_inference']:.3f}); "
              f"train loss/epoch {' '.join(f'{v:.2f}' for v in row['loss_per_epoch'])}; "
              f"AUROC {row['auroc']:.3f} all {row['auroc_all']:.3f} floor {row['floor']:.3f}; "
              f"train {row['train_seconds']:.0f} s, wall {row['wall_seconds']:.0f} s, load {row['load']:.2f}",
              flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rows, f, indent=1)
    assert all(math.isfinite(r["heldout"]) for r in rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
