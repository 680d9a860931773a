"""common/transfer_eval.py on tiny synthetic data: a linear probe on frozen features separates separable classes
and leaves the pre-trained network untouched; layer selection, re-initialisation; the ten-fold protocol's mean
and SD over the folds of an STL-10 fixture in the official layout."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from common.errors import ConfigError, DataError
from fixtures_formats import write_stl10


def _base():
    """A small 'pre-trained' network: conv1 (linear) -> flatten -> fc1 -> fc2."""
    import keras

    x_in = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, padding="same", name="conv1")(x_in)
    h = keras.layers.Flatten(name="flatten")(h)
    h = keras.layers.Dense(16, activation="relu", name="fc1")(h)
    return keras.Model(x_in, keras.layers.Dense(8, name="fc2")(h), name="base")


def _halves(n, seed):
    """Class 0: the left half is bright; class 1: the right half (plus noise). Linearly separable pixels."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(0, 0.3, (n, 8, 8, 1)).astype(np.float32)
    x[y == 0, :, :4] += 1.0
    x[y == 1, :, 4:] += 1.0
    return x, y


def _weights(model, name):
    return [np.array(w) for w in model.get_layer(name).get_weights()]


def test_linear_probe_separates_separable_features_and_freezes_the_network():
    import keras
    import tensorflow as tf

    from common import transfer_eval as T

    keras.utils.set_random_seed(0)
    base = _base()
    before = [np.array(w) for w in base.get_weights()]
    probe = T.linear_probe(base, "conv1", 2)
    conv_before = _weights(probe.layers[1], "conv1")
    assert [w.name for w in probe.trainable_weights] == ["kernel", "bias"]  # the head alone
    x, y = _halves(256, 0)
    xt, yt = _halves(128, 1)
    ident = lambda b: tf.cast(b, tf.float32)  # noqa: E731  (already float features)
    T.fit_classifier(probe, x, y, epochs=15, batch_size=32, optimizer=keras.optimizers.Adam(1e-2),
                     preprocess=ident)
    assert T.accuracy_of(probe, xt, yt, preprocess=ident) >= 0.95
    # Chance level on shuffled labels: the accuracy measures the classes, not the label order.
    assert T.accuracy_of(probe, xt, np.random.default_rng(2).permutation(yt), preprocess=ident) < 0.7
    np.testing.assert_array_equal(_weights(probe.layers[1], "conv1")[0], conv_before[0])  # frozen
    for a, b in zip(base.get_weights(), before):  # the pre-trained network itself is never changed
        np.testing.assert_array_equal(a, b)
    feats = T.feature_extractor(base, "flatten")
    assert feats.output_shape == (None, 256) and not feats.trainable_weights


def test_transfer_classifier_trains_chosen_layers_and_reinitialises_fc():
    import keras

    from common import transfer_eval as T

    keras.utils.set_random_seed(1)
    base = _base()
    m = T.transfer_classifier(base, 3, train_layers=("fc1",), reinit=("fc1", "fc2"), head_name="fc3")
    inner = m.layers[1]
    trained = {v.path.split("/")[-2] for v in m.trainable_weights}
    assert trained == {"fc1", "fc3"}
    assert not np.allclose(_weights(inner, "fc1")[0], _weights(base, "fc1")[0])  # fresh draws
    np.testing.assert_array_equal(_weights(inner, "conv1")[0], _weights(base, "conv1")[0])  # transferred
    assert m.output_shape == (None, 3)
    everything = T.transfer_classifier(base, 3, train_layers="all")
    assert len(everything.trainable_weights) == len(base.trainable_weights) + 2
    with pytest.raises(ConfigError, match="no layer"):
        T.transfer_classifier(base, 3, train_layers=("conv9",))
    with pytest.raises(ConfigError, match="after 'conv1'"):
        T.transfer_classifier(base, 3, up_to="conv1", train_layers=("fc1",))


def test_fold_protocol_mean_and_sd_over_the_stl10_folds(tmp_path):
    from common import transfer_eval as T

    rng = np.random.default_rng(0)
    xtr = rng.integers(0, 256, (20, 96, 96, 3), dtype=np.uint8)
    ytr = np.arange(20) % 10
    xte = rng.integers(0, 256, (6, 96, 96, 3), dtype=np.uint8)
    yte = np.arange(6) % 10
    folds = [np.arange(k + 1) + k for k in range(10)]  # fold k: k+1 images, starting at image k
    write_stl10(tmp_path, (xtr, ytr), (xte, yte), folds=folds)
    seen = []

    def fit_and_score(x, y, xt, yt):
        seen.append((x, y, xt, yt))
        return len(x) / 10.0  # a known "accuracy" per fold: 0.1, 0.2, ..., 1.0

    res = T.stl10_ten_fold(fit_and_score, tmp_path, download=False)
    assert res["n_folds"] == 10 and res["fold_sizes"] == list(range(1, 11)) and res["n_test"] == 6
    assert res["per_fold"] == pytest.approx([k / 10 for k in range(1, 11)])
    assert res["mean"] == pytest.approx(0.55)
    assert res["sd"] == pytest.approx(np.std(np.arange(1, 11) / 10, ddof=1))  # 0.3028
    for k, (x, y, xt, yt) in enumerate(seen):  # each fold's own images; always the whole test set
        np.testing.assert_array_equal(x, xtr[folds[k]])
        np.testing.assert_array_equal(y, ytr[folds[k]])
        np.testing.assert_array_equal(xt, xte)
    with pytest.raises(DataError, match="fold 1"):
        T.fold_protocol(fit_and_score, [np.array([20])], xtr, ytr, xte, yte)


def test_keras_fold_trainer_runs_a_fresh_model_per_fold():
    import keras

    from common import transfer_eval as T

    keras.utils.set_random_seed(0)
    x, y = _halves(60, 3)
    xt, yt = _halves(40, 4)
    x8 = ((x - x.min()) / (x.max() - x.min()) * 255).astype(np.uint8)
    xt8 = ((np.clip(xt, x.min(), x.max()) - x.min()) / (x.max() - x.min()) * 255).astype(np.uint8)
    base = _base()
    built = []

    def build():
        built.append(T.linear_probe(base, "conv1", 2))
        return built[-1]

    trainer = T.keras_fold_trainer(build, epochs=20, batch_size=10, optimizer=lambda: keras.optimizers.Adam(1e-2),
                                   percent=True)
    res = T.fold_protocol(trainer, [np.arange(0, 30), np.arange(30, 60)], x8, y, xt8, yt)
    assert len(built) == 2 and built[0] is not built[1]
    assert res["mean"] >= 90.0 and len(res["per_fold"]) == 2
