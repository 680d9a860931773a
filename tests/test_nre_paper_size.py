"""Every NRE network at the paper's sizes (issue 17, item 10; the paper scale is never run here): one training
step of the plain AE, one Eq. 5 step of NRE initialised from it, and one export reloaded and compared (in this
process: the fresh-process reload is tested at smoke size, tests/test_nre_pipeline.py), on a
batch of two, so that a user with a GPU meets no shape or dtype error after hours of data preparation.

* ``alexnet``: Table 2's AlexNet AE on 227x227x3 images (the ``image_folder`` path of ``nre_tf.train``);
* ``conv`` 28x28x1: Tables 1 and 3's digits (and the Table 1 baselines DAE, context AE, split-brain AE);
* ``conv`` 30x30x1: Table 4's UCSD Ped2 patches;
* ``magnet`` 28x28x1: MagNet's reformer, which Table 3's NRE shares.
"""
import numpy as np
import pytest

import keras
import tensorflow as tf

from nre_tf.config import NREConfig

CASES = [("alexnet", (227, 227, 3), "image_folder"), ("conv", (28, 28, 1), "mnist"),
         ("conv", (30, 30, 1), "ucsd_ped2"), ("magnet", (28, 28, 1), "mnist")]


def _one_step(model, data) -> dict:
    """One optimizer step on one batch through ``fit`` (the path training takes); returns the logs."""
    hist = model.fit(tf.data.Dataset.from_tensors(data), epochs=1, verbose=0, shuffle=False)
    logs = {k: float(v[-1]) for k, v in hist.history.items()}
    assert logs and all(np.isfinite(v) for v in logs.values()), logs
    return logs


@pytest.mark.parametrize("arch, shape, dataset", CASES, ids=[f"{a}-{s[0]}" for a, s, _ in CASES])
def test_paper_size_step_and_export(tmp_path, arch, shape, dataset, reload_in_process):
    from common.lifecycle import Run
    from nre_tf import experiment, networks, trainer
    from nre_tf.model import NREModel

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).uniform(size=(2, *shape)).astype(np.float32)
    kind = "magnet" if arch == "magnet" else "ae"
    ae, nets = trainer.build_autoencoder_model(kind, shape, latent_dim=128, arch=arch)
    ae.compile(optimizer=keras.optimizers.Adam(1e-4))
    _one_step(ae, x)
    # Eq. 5: E_phi + D start from the AE, A is its (frozen) encoder; neighbours from the bank of the batch.
    enc, dec = networks.clone_autoencoder(nets["encoder"], nets["decoder"])
    nre = NREModel(enc, dec, nets["encoder"], lambdas=(0.5, 0.2, 0.3))
    nre.compile(optimizer=keras.optimizers.Adam(1e-4))
    bank = np.asarray(nets["encoder"](x, training=False)).reshape(2, -1)
    near = far = bank[[1, 0]][:, None, :]  # T = 1: the other sample of the batch
    logs = _one_step(nre, (x, near, far))
    assert {"loss", "d_x_xrec", "d_xrec_near", "s_xrec_far"} <= set(logs)
    # The export of nre_tf.train, reloaded and compared.
    cfg = NREConfig(dataset=dataset, scale="paper", workdir=str(tmp_path / "w"), export_dir=str(tmp_path / "e"))
    run = Run(cfg, tmp_path / "w", tf.distribute.get_strategy())
    out = nre.serve(tf.constant(x))
    assert out["reconstruction"].shape == (2, *shape) and out["anomaly_score"].shape == (2,)
    entry = experiment.export(run, nre, shape, x)  # the reloaded outputs have the in-process shapes
    assert max(entry["max_abs_diff_fresh_process"]["serving_default"].values()) < 1e-4


@pytest.mark.parametrize("kind", ["dae", "context", "splitbrain"])
def test_table1_baselines_at_paper_size_take_a_step(kind):
    from nre_tf import trainer

    keras.utils.set_random_seed(0)
    model, _ = trainer.build_autoencoder_model(kind, (28, 28, 1), latent_dim=128)
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    _one_step(model, np.random.default_rng(0).uniform(size=(2, 28, 28, 1)).astype(np.float32))
    assert trainer.encode(model, np.zeros((2, 28, 28, 1), np.float32)).shape[0] == 2
