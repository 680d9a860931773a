"""Table 2 of NRE: AlexNet NRE pre-training on an ImageNet-layout image folder and the PASCAL VOC 2007
classification harness of its three classification columns (Section 4.3).

Pre-training: the plain AlexNet AE (encoder = AlexNet conv1..FC7, decoder = its mirror with up-sampling and
deconvolutions, ``nre_tf.networks``) on all images of ``--data_dir`` (``<root>/<class>/*.jpg``, resized to
227x227; labels unused), then NRE_{0.5,0.25,0.25} initialised from it, neighbours by k-means with K = 400
(``--clusters``; capped at N // 4 for a small folder).

Evaluation (following [64] / Krähenbühl et al. as the paper says; details are ASSUMPTIONS): the pre-trained
conv1..FC7 plus a new FC8 (20 outputs, sigmoid cross-entropy; "difficult" labels are left out of the loss and of
the AP), trained on VOC 2007 trainval and scored on test with the VOC2007 11-point mAP (``common/voc.py``):

* ``Classification FC8``: everything up to FC7 frozen, only FC8 trained ("on top of FC6 and FC7, a linear
  classifier is trained");
* ``Classification FC6-8``: conv1..conv5 frozen, FC6, FC7, FC8 trained;
* ``Classification all``: the whole network fine-tuned.
SGD with momentum 0.9, lr 1e-3, batch ``batch_size``, random horizontal flips, ``eval_epochs`` epochs, single
centre 227x227 view at test time (no 10-crop).

Detection (Fast R-CNN) and segmentation (FCN) are out of scope (README): they need the Caffe-era Fast R-CNN /
FCN training stacks, selective-search proposals and VOC 2012 segmentation data, none of which exists here.

``--strategy`` other than default is refused with one line: the VOC classifiers (``common.transfer_eval``)
train outside any ``tf.distribute`` strategy.

Library code (no flags); the entry point is

    python -m nre_tf.table2 --dataset=image_folder --data_dir=<folder> --voc_dir=<VOC root> --scale=quick
"""
from __future__ import annotations

from pathlib import Path

TABLE = "nre.table2"
ROW = "NRE_0.5,0.25,0.25 (Ours)"
COLUMNS = {"fc8": "Classification FC8", "fc6-8": "Classification FC6-8", "all": "Classification all"}
PAPER = {"fc8": 55.9, "fc6-8": 71.2, "all": 74.4}
EVAL_LR = 1e-3


def pretrain(cfg, workdir: Path):
    """Encoder A (the plain AlexNet AE of the shared stage :mod:`nre_tf.encoder_a`), then NRE from it; returns
    (nre_model, info) with the gates in ``info["gates"]``."""
    from nre_tf import encoder_a, trainer
    from nre_tf.data import folder_images
    from nre_tf.gates import gates

    x = folder_images(cfg)
    k = cfg.clusters or 400
    k = max(2, min(k, len(x) // 4))
    stage = encoder_a.stage_record(cfg)
    ae_s = stage["train_seconds"]
    _, nets = encoder_a.load(cfg, tuple(x.shape[1:]), "alexnet")
    nre, info = trainer.train_nre(nets["encoder"], nets["decoder"], nets["encoder"], x, cfg.lambdas, cfg.T,
                                  cfg.epochs, cfg.batch_size, workdir / "nre", lr=cfg.lr, clusters=k,
                                  exact=cfg.exact, refresh_every=cfg.refresh_every, seed=cfg.seed,
                                  resume=cfg.resume)
    nre.encoder.save_weights(str(workdir / "alexnet_nre_encoder.weights.h5"))
    info.update(ae_train_seconds=ae_s, n_images=int(len(x)), gates=gates(stage, info, None, name="Table 2 NRE"))
    return nre, info


# Layers trained in each setting (the rest of conv1..FC7 frozen; the new FC8 is always trained).
TRAIN_LAYERS = {"fc8": "none", "fc6-8": ("fc6", "fc7"), "all": "all"}


def classifier(encoder, mode: str):
    """conv1..FC7 (a copy of ``encoder``) + FC8 (20 logits) with the layers of ``mode`` trainable."""
    from common.transfer_eval import transfer_classifier

    return transfer_classifier(encoder, 20, train_layers=TRAIN_LAYERS[mode], head_name="fc8",
                               name=f"voc_{mode.replace('-', '_')}")


def run(config, voc_limit: int | None = None, require_voc: bool = True) -> dict:
    """Pre-train on the image folder, then run the three VOC classification settings if ``voc_dir`` is set,
    through the shared lifecycle (:func:`nre_tf.results.run_with_cells`; the cells are in ``"_cells"``).
    ``require_voc``: without ``voc_dir``, refuse before anything is trained (a table job) instead of
    pre-training only (the entry point)."""
    from common.errors import DataError
    from nre_tf import encoder_a
    from nre_tf.data import folder_images
    from nre_tf.results import run_with_cells

    config.refuse_strategy("Table 2")
    if not config.voc_dir and require_voc:
        raise DataError("--voc_dir is not set: the Table 2 classification columns need PASCAL VOC 2007 "
                        "(VOCdevkit/VOC2007)")
    cfg = encoder_a.prepare(config, lambda c: (folder_images(c), "alexnet"))
    return run_with_cells(cfg, lambda run: body(run, voc_limit))


def body(run, voc_limit: int | None = None) -> dict:
    from common.transfer_eval import evaluate_voc

    cfg, workdir = run.config, run.workdir
    nre, info = pretrain(cfg, workdir)
    run.record(gates=info.pop("gates"))
    values = {}
    if cfg.voc_dir:
        for mode, col in COLUMNS.items():
            values[(ROW, col)] = evaluate_voc(classifier(nre.encoder, mode), cfg.voc_dir, cfg.eval_epochs,
                                              cfg.batch_size, EVAL_LR, cfg.seed, voc_limit)
    else:
        print("note: no --voc_dir, the VOC 2007 classification columns were not evaluated")
    return {"table": TABLE, "scale": cfg.scale, "pretraining": info,
            "values": {f"{r} | {c}": v for (r, c), v in values.items()},
            "paper": {f"{ROW} | {c}": PAPER[m] for m, c in COLUMNS.items()}, "_cells": values}
