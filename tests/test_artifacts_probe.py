"""The CPU-scale transfer protocol of artifacts_tf (``--transfer=probe``) and what it relies on: conv5's BN folded
into conv5 gives the same outputs, the regularisation of the logistic regression is chosen on a validation split
(never on the test set), the autoencoder's BN statistics re-estimation, and one smoke run through the lifecycle:
C's initial-weights snapshot equals C before the first game step, the probe's rows, the learning-gate trace."""
from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from common.linear_eval import logreg_validated, make_classifier, validation_split
from tests.fixtures_formats import make_mnist_like


def test_conv5_bn_fold_gives_identical_conv5_outputs():
    import tensorflow as tf

    from artifacts_tf.networks import Discriminator, fold_conv5_bn

    disc = Discriminator(32, 3, name="d")
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 3)).astype("float32"))
    disc(x, training=False)
    bn = disc.conv5_bn
    rng = np.random.default_rng(1)
    bn.moving_mean.assign(rng.normal(0, 30, 256).astype("float32"))
    bn.moving_variance.assign(rng.uniform(10, 4000, 256).astype("float32"))
    bn.beta.assign(rng.normal(0, 1, 256).astype("float32"))
    folded = fold_conv5_bn(disc.trunk, bn)
    want = np.asarray(bn(disc.trunk(x, training=False)[-1], training=False))
    maps = folded(x, training=False)
    got = np.asarray(maps[-1])
    scale = np.abs(want).max()
    assert scale > 1.0 and np.max(np.abs(got - want)) <= 1e-5 * scale
    for a, b in zip(maps[:4], disc.trunk(x, training=False)[:4]):         # conv1..conv4 unchanged
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert folded.get_layer("conv5").use_bias and not disc.trunk.get_layer("conv5").use_bias


def test_probe_regularisation_is_chosen_on_validation_only():
    rng = np.random.default_rng(0)
    n, d = 300, 40
    y = np.arange(n) % 3
    f = rng.normal(size=(n, d)) + 0.6 * np.eye(3)[y] @ rng.normal(size=(3, d))
    ft = rng.normal(size=(150, d)) + 0.6 * np.eye(3)[np.arange(150) % 3] @ rng.normal(size=(3, d))
    grid = (1e-4, 1e-2, 1.0)
    r = logreg_validated(f, y, ft, np.arange(150) % 3, Cs=grid, val_fraction=0.2, seed=3)
    # The split: 20 % of each class held out, disjoint, covering the training set.
    fit, val = validation_split(y, 0.2, seed=3)
    assert len(val) == 60 and np.all(np.bincount(y[val]) == 20) and not set(fit) & set(val)
    assert sorted(np.concatenate([fit, val])) == list(range(n)) and r["n_val"] == 60 and r["n_fit"] == 240
    # The chosen C is the best validation score (ties: the smaller C); the scores are those of classifiers fitted
    # on the fit part and scored on the validation part (recomputed independently, cold-started: up to a sample).
    best = max(grid, key=lambda c: (r["val_accuracy"][c], -c))
    assert r["C"] == best
    for C in grid:
        clf = make_classifier("logreg", C=C).fit(f[fit], y[fit])
        assert r["val_accuracy"][C] == pytest.approx(np.mean(clf.predict(f[val]) == y[val]), abs=1.5 / 60)
    assert len(set(r["val_accuracy"].values())) > 1            # the grid matters on this data
    # ... and the test set never enters it: other test features / labels, the same C and validation scores.
    for test_f, test_y in ((rng.normal(size=(150, d)) * 50, rng.integers(0, 3, 150)), (ft, (np.arange(150) + 1) % 3)):
        other = logreg_validated(f, y, test_f, test_y, Cs=grid, val_fraction=0.2, seed=3)
        assert other["C"] == r["C"] and other["val_accuracy"] == r["val_accuracy"]
    # The test accuracy is the refit-on-all classifier's, scored once.
    refit = make_classifier("logreg", C=best).fit(f, y)
    assert r["accuracy"] == pytest.approx(np.mean(refit.predict(ft) == np.arange(150) % 3), abs=0.02)


def test_autoencoder_bn_recalibration_is_the_average_of_batch_statistics():
    import keras

    from artifacts_tf.experiment import recalibrate_batchnorm

    inp = keras.Input((3,))
    model = keras.Model(inp, keras.layers.BatchNormalization(momentum=0.975, epsilon=1e-3)(inp))
    bn = model.layers[-1]
    rng = np.random.default_rng(0)
    batches = [rng.normal(5.0 * k, 1.0 + k, (8, 3)).astype("float32") for k in range(4)]
    n = recalibrate_batchnorm(model, iter(batches), max_images=24)
    assert n == 24                                            # stops after the batch that reaches max_images
    used = batches[:3]
    np.testing.assert_allclose(np.asarray(bn.moving_mean), np.mean([b.mean(0) for b in used], 0), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(bn.moving_variance), np.mean([b.var(0) for b in used], 0), rtol=1e-4)
    assert bn.momentum == 0.975                               # restored


def test_probe_run_rows_init_snapshot_and_learning_gates(tmp_path, monkeypatch):
    """A smoke run with --transfer=probe --floors: C's initial-weights file equals C just before the first game
    step (and differs from C after the game), the probe reports every row on the same labels, conv1..conv5 for
    the trunks, and metrics.json holds the held-out gates of every monitored step."""
    import common.training
    from artifacts_tf import experiment
    from artifacts_tf.config import ArtifactsConfig
    from artifacts_tf.networks import Discriminator

    make_mnist_like(tmp_path / "data" / "fashion_mnist", n_train=40, n_test=20, gz=False)
    seen = {}
    real_fit = common.training.fit_resumable

    def spy(model, data, **kw):
        if hasattr(model, "discriminator"):                   # the game, not the autoencoder stage
            seen["before"] = [np.array(w) for w in model.discriminator.get_weights()]
        out = real_fit(model, data, **kw)
        if hasattr(model, "discriminator"):
            seen["after"] = [np.array(w) for w in model.discriminator.get_weights()]
        return out

    monkeypatch.setattr(common.training, "fit_resumable", spy)   # train_game imports it at call time
    work = tmp_path / "w"
    cfg = ArtifactsConfig(dataset="fashion_mnist", data_dir=str(tmp_path / "data"), scale="smoke", image_size=32,
                          transfer="probe", floors=True, figures=False, workdir=str(work), monitor_every=1,
                          trend_snapshots=1, labelled_limit=40, test_limit=20, folds=0)
    m = experiment.run(cfg)
    init = Discriminator(32, 3, name="discriminator")
    init(np.zeros((1, 32, 32, 3), np.float32), training=False)
    init.load_weights(str(work / "discriminator_init.weights.h5"))
    snap = init.get_weights()
    assert len(snap) == len(seen["before"])
    for a, b in zip(snap, seen["before"]):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(snap, seen["after"]))
    t = m["transfer"]
    rows = {k for k, v in t.items() if isinstance(v, dict) and "accuracy" in v}
    assert rows == {"discriminator", "discriminator_init", "discriminator_step1", "discriminator_conv5_bn_dropped",
                    "random_init_conv", "autoencoder_encoder", "pixels"}
    for k in ("discriminator", "discriminator_init", "discriminator_step1", "random_init_conv"):
        assert list(t[k]["layers"]) == ["conv1", "conv2", "conv3", "conv4", "conv5"]
        assert t[k]["accuracy"] == t[k]["layers"]["conv5"]["accuracy"]
    assert list(t["discriminator_conv5_bn_dropped"]["layers"]) == ["conv5"]
    assert t["pixels"]["layers"]["pixels"]["n_features"] == 28 * 28
    for v in (t[k] for k in rows):
        for layer in v["layers"].values():
            assert layer["n_fit"] + layer["n_val"] == 40 and layer["n_test"] == 20 and 0 <= layer["accuracy"] <= 100
    assert set(t["paired_gain"]) == {"conv1", "conv2", "conv3", "conv4", "conv5"}
    trace = m["game_trace"]
    assert [r["step"] for r in trace] == [1, 2]
    for r in trace:
        for k in ("heldout_real_accuracy", "heldout_fake_accuracy", "heldout_mask_accuracy",
                  "heldout_fake_probability", "heldout_r_grad_norm_minimax", "heldout_r_grad_norm_non_saturating",
                  "g_loss", "seconds_per_step"):
            assert np.isfinite(r[k]), (k, r)
    assert m["game_gates"]["points"] == 2
    assert json.loads((work / "metrics.json").read_text())["transfer"]["discriminator"]["accuracy"] == \
        t["discriminator"]["accuracy"]
