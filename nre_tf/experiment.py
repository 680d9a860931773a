"""One NRE run (library code, no flags): encoder A (the shared, converged stage :mod:`nre_tf.encoder_a`), then
E_phi + D initialised from A's auto-encoder and trained with Eq. 5, optionally exported.

The entry point is ``python -m nre_tf.train``. :func:`run` goes through the shared lifecycle
(:func:`common.lifecycle.run_experiment`: finished-run reuse, run identity, ``--strategy`` scope, seeds,
precision, timing, ``metrics.json``); :func:`body` is what is NRE's own.

Datasets: mnist, mnist5k, fashion_mnist (28x28, conv AE), ucsd_ped2 (30x30 patches of the normal training
frames, conv AE), image_folder (``--data_dir`` = root of ``<class>/*.jpg``, resized to 227x227, AlexNet AE).

``--strategy=mirrored``: both auto-encoders are built in the strategy's scope and trained by
:class:`common.multiplayer.MultiPlayerModel` steps (per-replica loss weighting, all-reduced metrics);
``metrics.json`` records ``replicas``.

Export (``--export_dir``): ``<export_dir>/nre_<dataset>/<version>/``, reloaded and compared in a fresh process
(:meth:`common.lifecycle.Run.export`). Its ``serving_default`` maps ``images`` (float32 in [0, 1], (N, H, W, C):
28x28x1 digits, 30x30x1 patches or 227x227x3 images) to ``anomaly_score`` (per-image mean squared reconstruction
error, Section 4.5), ``latent`` (E_phi(X)) and ``reconstruction`` (D(E_phi(X)), in [0, 1]).
"""
from __future__ import annotations

INPUT_RANGE = [0.0, 1.0]  # NRE's images are floats in [0, 1] (nre_tf.model.to_float); OLED's are [-1, 1]


def run(config) -> dict:
    """Train the plain AE then NRE for ``config`` (an :class:`nre_tf.config.NREConfig`); returns the metrics
    (also in ``<workdir>/metrics.json``); exports when ``config.export_dir`` is set."""
    from common.lifecycle import run_experiment
    from nre_tf import encoder_a

    return run_experiment(encoder_a.prepare(config, _stage_images), body)


def _stage_images(cfg):
    """``(training images, arch)``: what encoder A is trained on."""
    from nre_tf.data import training_images

    x, _, arch = training_images(cfg)
    return x, arch


def model_name(cfg) -> str:
    return f"nre_{cfg.dataset}"


def body(run) -> dict:
    import numpy as np

    from common.run_identity import save_frozen_weights
    from common.training import weights_digest
    from nre_tf import encoder_a, trainer
    from nre_tf.data import DIGIT_DATASETS, training_images
    from nre_tf.gates import gates
    from nre_tf.losses import reconstruction_error
    from nre_tf.model import to_float

    cfg, workdir = run.config, run.workdir
    x, xt, arch = training_images(cfg)  # the data are read (and checked) before anything is trained
    y = None  # the training labels, for the gates only (digit datasets)
    if cfg.dataset in DIGIT_DATASETS:
        y = trainer.load_classification_split(cfg.dataset, cfg.data_dir, cfg.n_train, cfg.n_test, cfg.seed)[1]
    run.batch_size_for(len(x))
    stage = encoder_a.stage_record(cfg)
    with run.timer("train"):
        ae, nets = encoder_a.load(cfg, tuple(x.shape[1:]), arch)
        nre, info = trainer.train_nre(nets["encoder"], nets["decoder"], nets["encoder"], x, cfg.lambdas, cfg.T,
                                      cfg.epochs, cfg.batch_size, workdir / "nre", lr=cfg.lr, clusters=cfg.clusters,
                                      exact=cfg.exact, refresh_every=cfg.refresh_every, seed=cfg.seed,
                                      resume=cfg.resume, strategy=run, labels=y)
    run.record_model(nre)
    run.record(gates=gates(stage, info, y, name="NRE"))
    ae_s = stage["train_seconds"]
    # For a later stage: common.run_identity.load_frozen_weights(workdir, model, "nre" | "ae").
    save_frozen_weights(workdir, "ae", ae)
    save_frozen_weights(workdir, "nre", nre)
    metrics = {"dataset": cfg.dataset, "n_train": int(len(x)), "ae_train_seconds": ae_s, "nre": info,
               "weights_digest": weights_digest(nre),
               "encoder_a": {"id": cfg.encoder_a_id, "dir": cfg.encoder_a_dir, "epochs_run": stage["epochs_run"],
                             "best_epoch": stage["best_epoch"]},
               "final_losses": {"ae": stage["heldout_curve"][-1], "nre": trainer.last_loss(workdir / "nre")}}
    if xt is not None:
        for name, m in (("ae", ae), ("nre", nre)):
            rec = trainer.reconstruct(m, xt)
            metrics[f"{name}_test_mse"] = float(np.mean(reconstruction_error(to_float(xt), rec)))
    if cfg.export_dir:
        export(run, nre, tuple(x.shape[1:]), to_float(x[:8]))
    return metrics


def export(run, nre, input_shape, sample) -> dict:
    """Export ``nre`` (:meth:`nre_tf.model.NREModel.serve`) as ``nre_<dataset>`` and check it in a fresh process
    on ``sample`` (float32 in [0, 1]). Under a ``tf.distribute`` strategy an undistributed copy with the same
    weights is exported (the exported functions run on plain variables)."""
    from common.export import Signature
    from nre_tf import trainer

    model = run.undistributed(nre, lambda: trainer.undistributed_copy(nre))
    return run.export(model_name(run.config), model,
                      {"serving_default": Signature(model.serve, tuple(input_shape), "images")},
                      samples={"serving_default": sample},
                      preprocessing={"input_range": INPUT_RANGE, "kind": "images"})
