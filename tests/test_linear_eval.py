"""Linear / RBF SVM and logistic-regression accuracies on features (no TensorFlow)."""
import numpy as np
import pytest

from common import linear_eval as L
from common.errors import ConfigError, ReproError


def _blobs(n_per=60, n_classes=3, dim=10, sep=4.0, seed=0, noise_seed=None):
    """Gaussian classes; ``seed`` fixes the class means, ``noise_seed`` (default: seed) the samples."""
    means = np.random.default_rng(seed).normal(size=(n_classes, dim)) * sep
    y = np.repeat(np.arange(n_classes), n_per)
    rng = np.random.default_rng([seed, 1] if noise_seed is None else [seed, 2, noise_seed])
    x = means[y] + rng.normal(size=(len(y), dim))
    return x, y


def _xor(n=400, seed=0):
    """Not linearly separable: label = sign(x0) xor sign(x1)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 2))
    y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(int)
    return x, y


def test_separable_blobs_all_classifiers():
    xtr, ytr = _blobs(seed=0)
    xte, yte = _blobs(seed=0, noise_seed=1)  # same class means, fresh samples
    for fn in (L.linear_svm_accuracy, L.rbf_svm_accuracy, L.logreg_accuracy):
        acc = fn(xtr, ytr, xte, yte)
        assert 0.95 <= acc <= 1.0


def test_rbf_beats_linear_on_xor_and_gamma_matters():
    xtr, ytr = _xor(seed=0)
    xte, yte = _xor(seed=1)
    lin = L.linear_svm_accuracy(xtr, ytr, xte, yte)
    rbf = L.rbf_svm_accuracy(xtr, ytr, xte, yte, gamma=1.0, C=10.0)
    assert lin < 0.7 and rbf > 0.9
    # gamma is passed through: an absurdly small gamma makes the kernel nearly constant -> poor fit.
    tiny = L.rbf_svm_accuracy(xtr, ytr, xte, yte, gamma=1e-6)
    assert tiny < rbf


def test_standardisation_inside_pipeline():
    # Features on a huge scale: with gamma=0.01 and raw features every off-diagonal kernel value is ~0, so the
    # RBF SVM cannot generalise; standardised inside the pipeline it separates the classes.
    xtr, ytr = _blobs(n_classes=2, dim=4, seed=2)
    xte, yte = _blobs(n_classes=2, dim=4, seed=2, noise_seed=1)
    xtr, xte = xtr * 1e4, xte * 1e4
    raw = L.rbf_svm_accuracy(xtr, ytr, xte, yte, standardize=False)
    std = L.rbf_svm_accuracy(xtr, ytr, xte, yte, standardize=True)
    assert std > 0.95 and raw < std
    pipe = L.make_classifier("rbf_svm")
    assert [name for name, _ in pipe.steps] == ["scale", "clf"]
    assert pipe.named_steps["clf"].gamma == L.NRE_RBF_GAMMA == 0.01


def test_max_train_subsample_is_seeded():
    xtr, ytr = _xor(n=600, seed=3)
    xte, yte = _xor(seed=4)
    a = L.rbf_svm_accuracy(xtr, ytr, xte, yte, gamma=1.0, max_train=100, seed=5)
    b = L.rbf_svm_accuracy(xtr, ytr, xte, yte, gamma=1.0, max_train=100, seed=5)
    assert a == b
    full = L.rbf_svm_accuracy(xtr, ytr, xte, yte, gamma=1.0)
    assert 0.0 <= a <= 1.0 and 0.0 <= full <= 1.0


def test_errors():
    x, y = _blobs()
    with pytest.raises(ReproError, match="single class"):
        L.linear_svm_accuracy(x, np.zeros_like(y), x, y)
    with pytest.raises(ReproError, match="dimensions"):
        L.logreg_accuracy(x, y, x[:, :3], y)
    with pytest.raises(ReproError, match="2-D"):
        L.logreg_accuracy(x.reshape(len(x), 2, 5), y, x, y)
    with pytest.raises(ConfigError):
        L.make_classifier("knn")
    with pytest.raises(ConfigError):
        L.rbf_svm_accuracy(x, y, x, y, gamma=0)
