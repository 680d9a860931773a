"""NRE pipeline: N / F on a constructed set (through nre_tf/neighbours), neighbour refresh during training,
FGSM bounds on a trained toy model, the SavedModel export reloaded in a fresh process, the CLI error path."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import keras

from fixtures_formats import make_mnist_like
from nre_tf import trainer
from nre_tf.config import NREConfig

REPO = Path(__file__).resolve().parent.parent


def constructed_bank():
    """Three groups of directions: A around e1, B between e1 and e2, C around e3 (far from A)."""
    a = [[1.0, 0.01 * i, 0.0] for i in range(10)]
    b = [[0.7, 0.7 + 0.01 * i, 0.0] for i in range(10)]
    c = [[0.0, 0.01 * i, 1.0] for i in range(10)]
    return np.array(a + b + c, np.float32)


@pytest.mark.parametrize("exact", [True, False])
def test_near_and_far_on_a_constructed_set(exact):
    bank = constructed_bank()
    lookup, info = trainer.make_lookup(bank, T=1, clusters=3, exact=exact, seed=0)
    q = np.array([[1.0, 0.031, 0.0], [0.0, 0.052, 1.0]], np.float32)
    near, far = lookup(q, np.array([-1, -1]))
    assert near[:, 0].tolist() == [3, 25]  # the most similar stored samples
    if exact:
        assert far[:, 0].tolist() == [20, 0]  # Eq. 3: argmin S
    else:  # k-means: drawn from the farthest cluster
        assert 20 <= far[0, 0] < 30 and 0 <= far[1, 0] < 10
    # A training sample never is its own neighbour (X_i != X').
    near, far = lookup(bank[[3]], np.array([3]))
    assert near[0, 0] in (2, 4) and far[0, 0] >= 20


def test_T_near_samples_are_the_T_most_similar():
    bank = constructed_bank()
    lookup, _ = trainer.make_lookup(bank, T=3, clusters=3, exact=False, seed=0)
    near, far = lookup(np.array([[1.0, 0.0, 0.0]], np.float32), np.array([0]))
    assert sorted(near[0].tolist()) == [1, 2, 3] and len(set(far[0].tolist())) == 3


def test_train_nre_refreshes_neighbours_every_epoch(tmp_path):
    keras.utils.set_random_seed(0)
    x = (np.random.default_rng(0).uniform(size=(64, 28, 28, 1)) * 255).astype(np.uint8)
    ae, nets, _ = trainer.train_autoencoder("ae", x, 1, 32, tmp_path / "ae", latent_dim=8, resume=False)
    before = [w.copy() for w in nets["encoder"].get_weights()]
    nre, info = trainer.train_nre(nets["encoder"], nets["decoder"], nets["encoder"], x, (0.5, 0.2, 0.3), 2, 3, 32,
                                  tmp_path / "nre", exact=True, refresh_every=2, resume=False)
    assert len(info["refresh_seconds"]) == 2  # epochs 0 and 2
    # The trained AE is untouched (E_phi + D are copies).
    assert all(np.array_equal(a, b) for a, b in zip(before, nets["encoder"].get_weights()))
    assert any(not np.array_equal(a, b) for a, b in zip(before, nre.encoder.get_weights()))


def test_fgsm_is_bounded_and_flips_a_trained_toy_model():
    from common.fgsm import fgsm

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    x = np.clip(0.4 + 0.2 * y[:, None, None, None] + 0.03 * rng.standard_normal((200, 4, 4, 1)), 0, 1)
    x = x.astype(np.float32)
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    model.compile(keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=30, verbose=0)
    clean = np.argmax(model.predict(x, verbose=0), 1)
    assert np.mean(clean == y) > 0.95
    eps = 0.2
    adv = fgsm(model, x, eps)
    assert np.max(np.abs(adv - x)) <= eps + 1e-5 and adv.min() >= 0 and adv.max() <= 1
    assert np.mean(np.argmax(model.predict(adv, verbose=0), 1) != clean) > 0.9


def test_export_reloads_in_a_fresh_process(tmp_path):
    from common.export import check_export
    from nre_tf import experiment as train

    make_mnist_like(tmp_path / "data" / "mnist", n_train=48, n_test=16)
    cfg = NREConfig(dataset="mnist", data_dir=str(tmp_path / "data"), scale="smoke", workdir=str(tmp_path / "w"),
                    export_dir=str(tmp_path / "export"), latent_dim=8, n_train=0, n_test=0, clusters=2,
                    encoder_a_root=str(tmp_path / "a"))
    metrics = train.run(cfg)
    path = Path(metrics["export"]["nre_mnist"]["path"])
    assert path.parent.name == "nre_mnist" and path.name == "1"
    # Same outputs as the in-process model, with a batch size other than the traced one.
    nre_w = tmp_path / "w" / "nre.weights.h5"
    assert nre_w.exists()
    x = np.random.default_rng(1).uniform(size=(3, 28, 28, 1)).astype(np.float32)
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    want = {k: v.numpy() for k, v in loaded.signatures["serving_default"](images=tf.constant(x)).items()}
    assert set(want) == {"anomaly_score", "latent", "reconstruction"}
    assert want["reconstruction"].shape == (3, 28, 28, 1) and want["anomaly_score"].shape == (3,)
    np.testing.assert_allclose(want["anomaly_score"],
                               np.mean((x - want["reconstruction"]) ** 2, axis=(1, 2, 3)), rtol=1e-4, atol=1e-6)
    diffs = check_export(path, x, want)
    assert max(diffs.values()) < 1e-4


def test_cli_rejects_bad_lambdas_with_one_line():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    p = subprocess.run([sys.executable, "-m", "nre_tf.train", "--dataset=mnist5k", "--lambdas=0.5,0.5,0.5",
                        "--scale=smoke"], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines()[-1].startswith("error: lambdas must be three non-negative numbers")


def test_table4_on_a_tiny_ucsd_tree(tmp_path):
    """The Table 4 pipeline end to end on a UCSD Ped2 tree in the official layout (random frames)."""
    from fixtures_formats import make_ucsd_tree
    from nre_tf import ucsd_eval as table4

    make_ucsd_tree(tmp_path / "data", n_train=2, n_test=2, n_frames=4, shape=(60, 60))
    cfg = NREConfig(dataset="ucsd_ped2", data_dir=str(tmp_path / "data"), scale="smoke",
                    workdir=str(tmp_path / "w"), latent_dim=8, clusters=2, batch_size=8,
                    encoder_a_root=str(tmp_path / "a"))
    res = table4.run(cfg)
    from common.registry import FLOOR_ROW

    assert set(res["_cells"]) == {("NRE_0.6,0.2,0.2", "EER"), ("NRE_0.6,0.4,0", "EER"), (FLOOR_ROW, "EER")}
    assert all(0.0 <= v <= 100.0 for v in res["_cells"].values())
    assert res["_cells"][(FLOOR_ROW, "EER")] == 100.0 * res["floor"]["pca20_eer"]
    assert res["n_test_frames"] == 8
