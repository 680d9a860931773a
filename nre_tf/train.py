"""Train NRE on one dataset: the plain AE (module A), then E_phi + D with Eq. 5; optional SavedModel export.

    python -m nre_tf.train --dataset=mnist5k --lambdas=0.5,0.2,0.3 --T=1 --clusters=0 --scale=quick \
        [--export_dir=exports]

Datasets: mnist, mnist5k, fashion_mnist (28x28, conv AE), ucsd_ped2 (30x30 patches of the normal training
frames, conv AE), image_folder (``--data_dir`` = root of ``<class>/*.jpg``, resized to 227x227, AlexNet AE).
This is the ONLY module that defines NRE's flags; the table entry points (``nre_tf.table1`` ...) reuse them.
The export's ``serving_default`` maps ``images`` (float32 [0, 1], (N, H, W, C)) to ``anomaly_score`` (per-image
mean squared reconstruction error, Section 4.5), ``latent`` (E_phi(X)) and ``reconstruction``.
"""
from __future__ import annotations

import json
import time

from absl import flags

from common import flags as cflags

flags.DEFINE_string("lambdas", None, "lambda1,lambda2,lambda3 of Eq. 5 (sum 1). Default: the table's "
                    "(train/table1: 0.5,0.2,0.3; table3/table4: 0.6,0.2,0.2; table2: 0.5,0.25,0.25).")
flags.DEFINE_integer("T", 1, "Number of near and of far samples per training sample (Eq. 5).")
flags.DEFINE_integer("clusters", 0, "K of the k-means neighbour search (Section 3.2); 0 = automatic "
                     "(N // 150 clipped to [10, 400]).")
flags.DEFINE_boolean("exact", False, "Exact (brute-force) Eq. 2-3 instead of the k-means speed-up.")
flags.DEFINE_integer("refresh_every", 1, "Recompute N(X') and F(X') every this many NRE epochs.")
flags.DEFINE_integer("latent_dim", 128, "Size of the latent of the convolutional AE.")
flags.DEFINE_float("lr", 1e-4, "Adam learning rate of E_phi + D (paper: 1e-4).")
flags.DEFINE_float("ae_lr", 1e-4, "Adam learning rate of the plain AE (assumption: as NRE).")
flags.DEFINE_integer("ae_epochs", None, "Epochs of the plain AE (default: the --scale preset).")
flags.DEFINE_integer("n_train", None, "Training images kept (0 = all; default: the --scale preset).")
flags.DEFINE_integer("n_test", None, "Test images kept (0 = all; default: the --scale preset).")
flags.DEFINE_enum("nre_budget", "split", ("split", "extra"), "Table 1: how NRE spends a column's E epochs: split = "
                  "AE warm-up + Eq. 5 epochs summing to E (the paper's same-epochs rule); extra = E AE + E Eq. 5.")
flags.DEFINE_float("nre_warmup", 0.5, "Table 1, --nre_budget=split: fraction of the E epochs given to the AE "
                   "warm-up (chosen; the paper is silent).")
flags.DEFINE_integer("magnet_epochs", None, "Table 3: epochs of MagNet's reformer AE (default: the --scale preset).")
flags.DEFINE_integer("magnet_batch_size", None, "Table 3: batch size of MagNet's reformer AE (default: the preset).")
flags.DEFINE_float("magnet_lr", 1e-3, "Table 3: Adam learning rate of MagNet's reformer AE (MagNet: 1e-3).")

FLAGS = flags.FLAGS


def parse_lambdas(text, default):
    from common.errors import ConfigError

    if text is None:
        return tuple(default)
    try:
        return tuple(float(v) for v in str(text).split(","))
    except ValueError:
        raise ConfigError(f"--lambdas must be three comma-separated numbers like 0.5,0.2,0.3, got {text!r}") \
            from None


def config_from_flags(default_lambdas=(0.5, 0.2, 0.3)):
    """The resolved NREConfig of the parsed flags, checked before any TensorFlow import
    (:func:`common.flags.preflight`; entry points only)."""
    from nre_tf.config import NREConfig

    return cflags.preflight(NREConfig.from_flags(
        cflags.common_values(), lambdas=parse_lambdas(FLAGS.lambdas, default_lambdas), T=FLAGS.T,
        clusters=FLAGS.clusters, exact=FLAGS.exact, refresh_every=FLAGS.refresh_every,
        latent_dim=FLAGS.latent_dim, lr=FLAGS.lr, ae_lr=FLAGS.ae_lr, ae_epochs=FLAGS.ae_epochs,
        n_train=FLAGS.n_train, n_test=FLAGS.n_test, nre_budget=FLAGS.nre_budget, nre_warmup=FLAGS.nre_warmup,
        magnet_epochs=FLAGS.magnet_epochs, magnet_batch_size=FLAGS.magnet_batch_size, magnet_lr=FLAGS.magnet_lr))


def run(config) -> dict:
    """Train the plain AE then NRE for ``config``; write config.json / metrics.json; export if asked.

    Under ``--strategy=multi_worker`` only the chief writes into ``workdir`` and ``export_dir``; the other
    workers write into a temporary folder that is deleted at the end."""
    from common.training import run_on_this_worker

    return run_on_this_worker(config, _run)


def _run(config, strategy) -> dict:
    import numpy as np

    from common.config import write_metrics
    from common.run_identity import save_frozen_weights
    from common.training import start_run, weights_digest
    from nre_tf import trainer
    from nre_tf.data import training_images
    from nre_tf.losses import reconstruction_error
    from nre_tf.model import to_float

    cfg, workdir = start_run(config)
    t0 = time.perf_counter()
    x, xt, arch = training_images(cfg)
    kind = "ae"
    ae, nets, ae_s = trainer.train_autoencoder(kind, x, cfg.ae_epochs, cfg.batch_size, workdir / "ae",
                                               lr=cfg.ae_lr, latent_dim=cfg.latent_dim, seed=cfg.seed,
                                               resume=cfg.resume, arch=arch, strategy=strategy)
    nre, info = trainer.train_nre(nets["encoder"], nets["decoder"], nets["encoder"], x, cfg.lambdas, cfg.T,
                                  cfg.epochs, cfg.batch_size, workdir / "nre", lr=cfg.lr, clusters=cfg.clusters,
                                  exact=cfg.exact, refresh_every=cfg.refresh_every, seed=cfg.seed,
                                  resume=cfg.resume, strategy=strategy)
    # For a later stage: common.run_identity.load_frozen_weights(workdir, model, "nre" | "ae").
    save_frozen_weights(workdir, "ae", ae)
    save_frozen_weights(workdir, "nre", nre)
    metrics = {"dataset": cfg.dataset, "n_train": int(len(x)), "ae_train_seconds": ae_s, "nre": info,
               "weights_digest": weights_digest(nre)}
    if xt is not None:
        for name, m in (("ae", ae), ("nre", nre)):
            rec = trainer.reconstruct(m, xt)
            metrics[f"{name}_test_mse"] = float(np.mean(reconstruction_error(to_float(xt), rec)))
    if cfg.export_dir:
        from common.export import export_saved_model

        path = export_saved_model(nre, nre.serve, cfg.export_dir, f"nre_{cfg.dataset}", tuple(x.shape[1:]))
        metrics["export"] = str(path)
    metrics["wall_seconds"] = time.perf_counter() - t0
    write_metrics(metrics, workdir)
    return metrics


def main(argv):
    res = run(config_from_flags())
    print(json.dumps(res, indent=2, default=str))


if __name__ == "__main__":
    cflags.run(main)
