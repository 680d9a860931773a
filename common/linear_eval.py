"""Classifiers on frozen features (scikit-learn only, no TensorFlow): linear SVM, RBF SVM, logistic regression.

Used for NRE Table 1 ("a Support Vector Machine classifier on top of the represented training samples is
trained and the classification accuracy on test set is reported ... both a Linear SVM (L-SVM) and one with an
RBF kernel (R-SVM). The hyperparameter of RBF is set as 0.01 and is fixed in all experiments") and for
linear-probe evaluations of self-supervised features.

Choices (the paper states none of them except gamma = 0.01):

* Features are standardised (zero mean, unit variance per dimension, statistics from the training features
  only) inside a scikit-learn ``Pipeline``, so the test features never leak into the scaler. ``standardize=False``
  turns this off. Note that the RBF kernel exp(-gamma |x - y|^2) depends on the feature scale, so gamma = 0.01
  means different things with and without standardisation.
* L-SVM = ``LinearSVC`` (liblinear, squared hinge, one-vs-rest), which scales to 60 000 samples; R-SVM = ``SVC``
  (libsvm, one-vs-one). C = 1.0 is scikit-learn's default; the paper gives no C.
* ``SVC`` training costs O(n^2) to O(n^3) time and O(n^2) kernel-cache work: 60 000 samples take many minutes.
  ``max_train`` fits on a seeded random subsample of that many training samples (``None`` = all); the test set
  is always used in full.
* All functions return a fraction in [0, 1].
"""
from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC

from common.errors import ConfigError, DataError
from common.metrics import accuracy

__all__ = ["make_classifier", "fit_and_score", "linear_svm_accuracy", "rbf_svm_accuracy", "logreg_accuracy",
           "validation_split", "logreg_validated", "LOGREG_C_GRID",
           "NRE_RBF_GAMMA"]

# NRE Section 4.2: "The hyperparameter of RBF is set as 0.01 and is fixed in all experiments."
NRE_RBF_GAMMA = 0.01
# Solver budgets (not paper numbers): enough for liblinear / lbfgs to converge on standardised features.
_LINEAR_SVC_MAX_ITER = 10_000
_LOGREG_MAX_ITER = 2_000


def make_classifier(kind: str, C: float = 1.0, gamma: float = NRE_RBF_GAMMA, standardize: bool = True,
                    seed: int = 0) -> Pipeline:
    """An unfitted pipeline ``[StandardScaler] -> classifier`` with ``kind`` in {"linear_svm", "rbf_svm",
    "logreg"}."""
    if C <= 0:
        raise ConfigError(f"C must be > 0, got {C}")
    if kind == "linear_svm":
        clf = LinearSVC(C=C, max_iter=_LINEAR_SVC_MAX_ITER, random_state=seed)
    elif kind == "rbf_svm":
        if gamma <= 0:
            raise ConfigError(f"gamma must be > 0, got {gamma}")
        clf = SVC(kernel="rbf", C=C, gamma=gamma, random_state=seed)
    elif kind == "logreg":
        clf = LogisticRegression(C=C, max_iter=_LOGREG_MAX_ITER, random_state=seed)
    else:
        raise ConfigError(f"unknown classifier kind {kind!r}; use linear_svm, rbf_svm or logreg")
    steps = ([("scale", StandardScaler())] if standardize else []) + [("clf", clf)]
    return Pipeline(steps)


def _check(train_f, train_y, test_f, test_y):
    tf_ = np.asarray(train_f, dtype=np.float64)
    te = np.asarray(test_f, dtype=np.float64)
    ty = np.asarray(train_y).reshape(-1)
    ey = np.asarray(test_y).reshape(-1)
    for name, f, y in (("train", tf_, ty), ("test", te, ey)):
        if f.ndim != 2:
            raise DataError(f"{name} features must be 2-D (n_samples, n_features), got shape {f.shape}; "
                            "flatten them first")
        if len(f) != len(y):
            raise DataError(f"{name}: {len(f)} feature rows but {len(y)} labels")
        if len(f) == 0:
            raise DataError(f"{name} set is empty")
        if not np.all(np.isfinite(f)):
            raise DataError(f"{name} features contain NaN or infinite values")
    if tf_.shape[1] != te.shape[1]:
        raise DataError(f"train features have {tf_.shape[1]} dimensions but test features {te.shape[1]}")
    if np.unique(ty).size < 2:
        raise DataError("the training labels hold a single class; a classifier needs at least two")
    return tf_, ty, te, ey


def _subsample(f, y, max_train, seed):
    if max_train is None or len(f) <= int(max_train):
        return f, y
    if int(max_train) < 2:
        raise ConfigError(f"max_train must be >= 2, got {max_train}")
    idx = np.sort(np.random.default_rng(seed).choice(len(f), int(max_train), replace=False))
    if np.unique(y[idx]).size < 2:
        raise DataError(f"the {max_train}-sample training subsample holds a single class; raise max_train")
    return f[idx], y[idx]


def fit_and_score(kind: str, train_f, train_y, test_f, test_y, C: float = 1.0, gamma: float = NRE_RBF_GAMMA,
                  standardize: bool = True, max_train: int | None = None, seed: int = 0) -> float:
    """Fit ``make_classifier(kind, ...)`` on (a ``max_train`` subsample of) the training features and return the
    test accuracy as a fraction."""
    tf_, ty, te, ey = _check(train_f, train_y, test_f, test_y)
    tf_, ty = _subsample(tf_, ty, max_train, seed)
    model = make_classifier(kind, C=C, gamma=gamma, standardize=standardize, seed=seed)
    model.fit(tf_, ty)
    return accuracy(ey, model.predict(te))


def linear_svm_accuracy(train_f, train_y, test_f, test_y, C: float = 1.0, standardize: bool = True,
                        max_train: int | None = None, seed: int = 0) -> float:
    """Test accuracy of a linear SVM (``LinearSVC``) trained on the features (NRE Table 1, "L-SVM")."""
    return fit_and_score("linear_svm", train_f, train_y, test_f, test_y, C=C, standardize=standardize,
                         max_train=max_train, seed=seed)


def rbf_svm_accuracy(train_f, train_y, test_f, test_y, gamma: float = NRE_RBF_GAMMA, C: float = 1.0,
                     standardize: bool = True, max_train: int | None = None, seed: int = 0) -> float:
    """Test accuracy of an RBF-kernel SVM (``SVC``, gamma 0.01 as in NRE Section 4.2, "R-SVM").

    O(n^2) or worse in the number of training samples: pass ``max_train`` (seeded subsample) for large sets.
    """
    return fit_and_score("rbf_svm", train_f, train_y, test_f, test_y, C=C, gamma=gamma, standardize=standardize,
                         max_train=max_train, seed=seed)


def logreg_accuracy(train_f, train_y, test_f, test_y, C: float = 1.0, standardize: bool = True,
                    max_train: int | None = None, seed: int = 0) -> float:
    """Test accuracy of multinomial logistic regression (lbfgs) on the features (a linear probe)."""
    return fit_and_score("logreg", train_f, train_y, test_f, test_y, C=C, standardize=standardize,
                         max_train=max_train, seed=seed)


# Regularisation grid of :func:`logreg_validated` (inverse strengths C of scikit-learn's L2 logistic regression on
# standardised features; not a paper number).
LOGREG_C_GRID = (1e-3, 1e-2, 1e-1, 1.0)


def validation_split(train_y, val_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(fit indices, validation indices): a seeded stratified split of the training labels, ``val_fraction`` of
    each class (at least one example per class) held out."""
    y = np.asarray(train_y).reshape(-1)
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in (0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    fit, val = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        if len(idx) < 2:
            raise DataError(f"class {c} has {len(idx)} training example(s); a validation split needs two")
        n_val = min(len(idx) - 1, max(1, int(round(val_fraction * len(idx)))))
        val.append(idx[:n_val])
        fit.append(idx[n_val:])
    return np.sort(np.concatenate(fit)), np.sort(np.concatenate(val))


def _logreg_path(f, y, Cs, seed: int):
    """Standardise ``f`` (statistics of ``f`` only) and fit L2 multinomial logistic regression for each C in
    ascending order, each warm-started from the previous solution. Yields (C, scaler, fitted classifier)."""
    scaler = StandardScaler().fit(f)
    z = scaler.transform(f)
    clf = LogisticRegression(C=Cs[0], max_iter=_LOGREG_MAX_ITER, random_state=seed, warm_start=True)
    for C in Cs:
        clf.set_params(C=C)
        clf.fit(z, y)
        yield C, scaler, clf


def logreg_validated(train_f, train_y, test_f, test_y, Cs=LOGREG_C_GRID, val_fraction: float = 0.2,
                     seed: int = 0) -> dict:
    """Standardised multinomial logistic regression with its regularisation chosen on a validation split of the
    training features only (never the test set): fit on ``1 - val_fraction`` of each class for every C of ``Cs``
    (ascending, warm-started), pick the C with the best validation accuracy (ties: the stronger regularisation),
    refit scaler and classifier on all training features with that C, score the test features once.

    Features are kept in float32 (the scaler preserves it). Returns fractions in [0, 1]:
    ``{"accuracy", "C", "val_accuracy": {C: acc}, "n_fit", "n_val", "n_test", "n_features"}``."""
    f, y, te, ey = _check(train_f, train_y, test_f, test_y)
    f, te = np.asarray(train_f, np.float32).reshape(len(y), -1), np.asarray(test_f, np.float32).reshape(len(ey), -1)
    Cs = tuple(sorted(float(c) for c in Cs))
    if not Cs or Cs[0] <= 0:
        raise ConfigError(f"Cs must be positive, got {Cs}")
    fit_idx, val_idx = validation_split(y, val_fraction, seed)
    val_acc = {}
    for C, scaler, clf in _logreg_path(f[fit_idx], y[fit_idx], Cs, seed):
        val_acc[C] = accuracy(y[val_idx], clf.predict(scaler.transform(f[val_idx])))
    best = max(Cs, key=lambda c: (val_acc[c], -c))
    _, scaler, clf = next(_logreg_path(f, y, (best,), seed))
    return {"accuracy": accuracy(ey, clf.predict(scaler.transform(te))), "C": best, "val_accuracy": val_acc,
            "n_fit": int(len(fit_idx)), "n_val": int(len(val_idx)), "n_test": int(len(ey)),
            "n_features": int(f.shape[1])}
