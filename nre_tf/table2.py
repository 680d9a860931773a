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

    python -m nre_tf.table2 --dataset=image_folder --data_dir=<folder> --voc_dir=<VOC root> --scale=quick
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from absl import flags

TABLE = "nre.table2"
ROW = "NRE_0.5,0.25,0.25 (Ours)"
COLUMNS = {"fc8": "Classification FC8", "fc6-8": "Classification FC6-8", "all": "Classification all"}
PAPER = {"fc8": 55.9, "fc6-8": 71.2, "all": 74.4}
CONV_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")
EVAL_LR = 1e-3


def folder_images(cfg):
    """uint8 (N, 227, 227, 3) images of the image folder ``cfg.data_dir`` (gray repeated to RGB)."""
    import numpy as np

    from common.datasets import load_images
    from common.errors import DataError

    if not cfg.data_dir:
        raise DataError("the AlexNet pre-training needs --data_dir=<image folder root>/<class>/*.jpg")
    s = load_images("image_folder", "all", cfg.data_dir, size=(227, 227), limit=cfg.n_train or None)
    x = s.x if s.x.shape[-1] == 3 else np.repeat(s.x, 3, axis=-1)
    return x


def pretrain(cfg, workdir: Path):
    """Plain AlexNet AE, then NRE; returns (nre_model, info)."""
    from nre_tf import trainer

    x = folder_images(cfg)
    k = cfg.clusters or 400
    k = max(2, min(k, len(x) // 4))
    ae, nets, ae_s = trainer.train_autoencoder("ae", x, cfg.ae_epochs, cfg.batch_size, workdir / "ae",
                                               lr=cfg.ae_lr, seed=cfg.seed, resume=cfg.resume, arch="alexnet")
    nre, info = trainer.train_nre(nets["encoder"], nets["decoder"], nets["encoder"], x, cfg.lambdas, cfg.T,
                                  cfg.epochs, cfg.batch_size, workdir / "nre", lr=cfg.lr, clusters=k,
                                  exact=cfg.exact, refresh_every=cfg.refresh_every, seed=cfg.seed,
                                  resume=cfg.resume)
    nre.encoder.save_weights(str(workdir / "alexnet_nre_encoder.weights.h5"))
    info.update(ae_train_seconds=ae_s, n_images=int(len(x)))
    return nre, info


def classifier(encoder, mode: str):
    """conv1..FC7 (a copy of ``encoder``) + FC8 (20 logits) with the layers of ``mode`` trainable."""
    import keras

    enc = keras.models.clone_model(encoder)
    enc.set_weights(encoder.get_weights())
    for layer in enc.layers:
        if mode == "fc8":
            layer.trainable = False
        elif mode == "fc6-8":
            layer.trainable = layer.name not in CONV_LAYERS
        else:
            layer.trainable = True
    x_in = keras.Input(enc.input_shape[1:])
    out = keras.layers.Dense(20, name="fc8")(enc(x_in))
    return keras.Model(x_in, out, name=f"voc_{mode.replace('-', '_')}")


def masked_bce(y_true, logits):
    """Sigmoid cross-entropy over the classes whose label is not 'difficult' (y_true: +1 / 0 / -1)."""
    import tensorflow as tf

    y = tf.cast(y_true, tf.float32)
    mask = tf.cast(tf.not_equal(y, 0.0), tf.float32)
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(y > 0, tf.float32), logits=logits)
    return tf.reduce_sum(ce * mask, axis=-1) / tf.maximum(tf.reduce_sum(mask, axis=-1), 1.0)


def evaluate_voc(encoder, voc_dir, mode: str, epochs: int, batch_size: int, seed: int = 0,
                 limit: int | None = None) -> float:
    """Train FC8 (and more, per ``mode``) on VOC 2007 trainval; return the test mAP in %."""
    import keras
    import numpy as np
    import tensorflow as tf

    from common.voc import load_voc2007, voc07_map

    keras.utils.set_random_seed(seed)
    tr = load_voc2007(voc_dir, "trainval", limit=limit)
    te = load_voc2007(voc_dir, "test", limit=limit)
    model = classifier(encoder, mode)
    model.compile(optimizer=keras.optimizers.SGD(EVAL_LR, momentum=0.9), loss=masked_bce)
    ds = (tf.data.Dataset.from_tensor_slices((tr.x, tr.labels)).shuffle(len(tr.x), seed=seed)
          .map(lambda x, y: (tf.image.random_flip_left_right(tf.cast(x, tf.float32) / 255.0, seed=seed), y))
          .batch(batch_size))
    model.fit(ds, epochs=epochs, verbose=0)
    scores = model.predict(te.x.astype(np.float32) / 255.0, batch_size=batch_size, verbose=0)
    return 100.0 * voc07_map(scores, te.labels)


def run(config, voc_limit: int | None = None, require_voc: bool = True) -> dict:
    """Pre-train on the image folder, then run the three VOC classification settings if ``voc_dir`` is set."""
    from common.config import write_metrics
    from common.errors import DataError
    from common.training import start_run

    cfg, workdir = start_run(config)
    t0 = time.perf_counter()
    nre, info = pretrain(cfg, workdir)
    values = {}
    if cfg.voc_dir:
        for mode, col in COLUMNS.items():
            values[(ROW, col)] = evaluate_voc(nre.encoder, cfg.voc_dir, mode, cfg.eval_epochs, cfg.batch_size,
                                              cfg.seed, voc_limit)
    results = {"table": TABLE, "scale": cfg.scale, "pretraining": info,
               "values": {f"{r} | {c}": v for (r, c), v in values.items()},
               "paper": {f"{ROW} | {c}": PAPER[m] for m, c in COLUMNS.items()},
               "wall_seconds": time.perf_counter() - t0}
    write_metrics(results, workdir)
    if not cfg.voc_dir and require_voc:
        raise DataError("pre-training finished but --voc_dir is not set: the Table 2 classification columns need "
                        "PASCAL VOC 2007 (VOCdevkit/VOC2007)")
    results["_cells"] = values
    return results


FLAGS = flags.FLAGS


def main(argv):
    import dataclasses

    from common.errors import exit_on_error
    from nre_tf.train import config_from_flags

    @exit_on_error
    def _main():
        cfg = dataclasses.replace(config_from_flags(default_lambdas=(0.5, 0.25, 0.25)), voc_dir=FLAGS.voc_dir)
        res = run(cfg, require_voc=False)
        res.pop("_cells", None)
        if not cfg.voc_dir:
            print("note: no --voc_dir, the VOC 2007 classification columns were not evaluated")
        print(json.dumps(res, indent=2, default=str))
    _main()


if __name__ == "__main__":
    import nre_tf.train  # noqa: F401  (defines the flags)

    flags.DEFINE_string("voc_dir", None, "Root of PASCAL VOC 2007 (holding VOCdevkit/VOC2007).")
    from common import flags as cflags

    cflags.run(main, nre_tf.train)
