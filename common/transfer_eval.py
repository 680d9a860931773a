"""Transfer evaluation of a pre-trained Keras network: linear probe, fine-tuning, and the STL-10 ten-fold protocol.

Self-supervised features are judged by what a supervised classifier trained on top of them reaches:

* NRE Table 2 (VOC 2007 classification, following Krähenbühl et al. / [64]): the pre-trained conv1..FC7 plus a
  new FC8, trained with FC8 only ("FC8"), FC6..FC8 ("FC6-8") or everything ("all");
  :func:`transfer_classifier` + :func:`evaluate_voc`.
* The artifacts paper, Table 1 ("Convolutional layers were pretrained on the proposed self-supervised task and
  kept fixed during transfer"; "the fully-connected layers are randomly initialized") and Table 2 ("a linear
  classifier on top of conv5 features", conv1-conv5 frozen or fine-tuned; "the average accuracy from models
  trained on the ten pre-defined folds"): :func:`transfer_classifier` with ``up_to``/``reinit`` and
  :func:`stl10_ten_fold` (:func:`fold_protocol` on STL-10's ``fold_indices.txt``).

Building blocks:

* :func:`transfer_classifier` -- a COPY of the pre-trained network (the original is never changed), optionally
  cut after a named layer, with chosen layers re-initialised (:func:`reinitialise`: fresh draws from the
  layer's own initialisers, for the fully connected layers of a transfer) and only the chosen layers trainable,
  plus a new dense head (flattened input). :func:`linear_probe` = every pre-trained layer frozen.
  :func:`feature_extractor` = the frozen network up to a named layer.
* :func:`fit_classifier` / :func:`predict` / :func:`accuracy_of` -- ``tf.data`` training and scoring (uint8
  images scaled by ``preprocess``, default ``x / 255``; optional ``augment`` tensor op on training batches).
* :func:`fold_protocol` -- train on each fold, test on the whole test set; mean and sample SD (ddof=1) over
  the folds.

No function here seeds the global random state: a run seeds once at its start (``common.training.start_run``);
shuffling takes an explicit ``seed``. Frozen layers are Keras ``trainable = False`` (BatchNormalization then
runs in inference mode). Models must be functional / Sequential (``keras.models.clone_model``).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from common.errors import ConfigError, DataError

__all__ = ["feature_extractor", "reinitialise", "transfer_classifier", "linear_probe", "fit_classifier",
           "predict", "accuracy_of", "masked_sigmoid_bce", "evaluate_voc", "fold_protocol", "stl10_ten_fold",
           "keras_fold_trainer"]


def _copy(model):
    import keras

    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def _layer_names(model) -> list[str]:
    return [layer.name for layer in model.layers]


def _check_names(model, names: Iterable[str], what: str) -> set[str]:
    names = set(names)
    unknown = sorted(names - set(_layer_names(model)))
    if unknown:
        raise ConfigError(f"{what}: {model.name} has no layer {unknown}; its layers: {_layer_names(model)}")
    return names


def feature_extractor(model, layer: str):
    """The frozen sub-network of ``model`` (a copy) from its inputs to the output of ``layer``."""
    import keras

    _check_names(model, [layer], "feature_extractor")
    m = _copy(model)
    out = keras.Model(m.inputs, m.get_layer(layer).output, name=f"{model.name}_to_{layer}")
    out.trainable = False
    return out


def reinitialise(layer) -> None:
    """Draw ``layer``'s kernel and bias afresh from its own initialisers (Dense / Conv layers)."""
    done = False
    for attr, init in (("kernel", "kernel_initializer"), ("bias", "bias_initializer")):
        var, fn = getattr(layer, attr, None), getattr(layer, init, None)
        if var is not None and fn is not None:
            var.assign(fn(tuple(var.shape), dtype=var.dtype))
            done = True
    if not done:
        raise ConfigError(f"layer {layer.name!r} ({type(layer).__name__}) has no kernel/bias to re-initialise")


def transfer_classifier(base, n_outputs: int, *, up_to: str | None = None, train_layers="all",
                        reinit: Sequence[str] = (), head_name: str = "classifier", name: str | None = None):
    """A classifier on a copy of the pre-trained network ``base``.

    Args:
      base: a built functional / Sequential Keras model (not modified).
      n_outputs: units of the new dense head (logits; no activation).
      up_to: cut the copy after this layer (e.g. ``"conv5"``); None = the whole network.
      train_layers: ``"all"``, ``"none"`` or an iterable of layer names of ``base`` to train; every other
        pre-trained layer is frozen. The head is always trained.
      reinit: names of layers re-initialised before training (e.g. the fully connected layers of a transfer).
      head_name: name of the head layer (``"fc8"`` for AlexNet-on-VOC).
    """
    import keras

    if n_outputs < 1:
        raise ConfigError(f"n_outputs must be >= 1, got {n_outputs}")
    if isinstance(train_layers, str):
        if train_layers not in ("all", "none"):
            raise ConfigError(f"train_layers must be 'all', 'none' or layer names, got {train_layers!r}")
        train = set(_layer_names(base)) if train_layers == "all" else set()
    else:
        train = _check_names(base, train_layers, "train_layers")
    redo = _check_names(base, reinit, "reinit")
    net = _copy(base)
    if up_to is not None:
        _check_names(base, [up_to], "up_to")
        net = keras.Model(net.inputs, net.get_layer(up_to).output, name=f"{base.name}_to_{up_to}")
        kept = set(_layer_names(net))
        dropped = sorted((train | redo) - kept)
        if dropped:
            raise ConfigError(f"layers {dropped} lie after {up_to!r} and are not part of the classifier")
    for layer in net.layers:
        if layer.name in redo:
            reinitialise(layer)
        layer.trainable = layer.name in train
    x_in = keras.Input(tuple(net.input_shape[1:]))
    h = net(x_in)
    if len(h.shape) > 2:
        h = keras.layers.Flatten(name=f"{head_name}_flatten")(h)
    out = keras.layers.Dense(int(n_outputs), name=head_name)(h)
    return keras.Model(x_in, out, name=name or f"{base.name}_transfer")


def linear_probe(base, layer: str, n_outputs: int, head_name: str = "linear"):
    """Every pre-trained layer up to ``layer`` frozen, a linear classifier on its (flattened) output."""
    return transfer_classifier(base, n_outputs, up_to=layer, train_layers="none", head_name=head_name)


def _unit(x):
    import tensorflow as tf

    return tf.cast(x, tf.float32) / 255.0


def _dataset(x, y, batch_size: int, preprocess, augment=None, shuffle_seed: int | None = None):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y) if y is not None else (x,))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)

    def prep(xb, *rest):
        xb = preprocess(xb)
        if augment is not None:
            xb = augment(xb)
        return (xb, *rest)

    return ds.map(prep, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def fit_classifier(model, x, y, *, epochs: int, batch_size: int, optimizer=None, loss=None,
                   preprocess: Callable | None = None, augment: Callable | None = None, seed: int = 0):
    """Compile ``model`` (default: Adam 1e-3, sparse softmax cross-entropy on logits) and train it on (x, y).

    ``preprocess`` maps a batch of raw images to the network's input (default ``float32(x) / 255``);
    ``augment`` is a tensor op applied to training batches only; ``seed`` fixes the shuffling order.
    Returns the Keras ``History``.
    """
    import keras

    if epochs < 1 or batch_size < 1:
        raise ConfigError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    if len(x) == 0 or len(x) != len(y):
        raise DataError(f"fit_classifier: {len(x)} images and {len(y)} labels")
    model.compile(optimizer=optimizer or keras.optimizers.Adam(1e-3),
                  loss=loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ds = _dataset(x, y, batch_size, preprocess or _unit, augment, shuffle_seed=seed)
    return model.fit(ds, epochs=epochs, verbose=0, shuffle=False)  # ds is shuffled (seeded) above


def predict(model, x, batch_size: int = 256, preprocess: Callable | None = None) -> np.ndarray:
    """The model's outputs for ``x`` (preprocessed like :func:`fit_classifier`, no augmentation)."""
    return np.asarray(model.predict(_dataset(x, None, batch_size, preprocess or _unit), verbose=0))


def accuracy_of(model, x, y, batch_size: int = 256, preprocess: Callable | None = None) -> float:
    """Top-1 accuracy (fraction) of the model's argmax on (x, y)."""
    from common.metrics import accuracy

    return accuracy(np.asarray(y).reshape(-1), np.argmax(predict(model, x, batch_size, preprocess), axis=1))


def masked_sigmoid_bce(y_true, logits):
    """Multi-label sigmoid cross-entropy over the labels that are not 0 (y_true: +1 present / -1 absent / 0
    ignored, e.g. VOC's "difficult"); mean over the counted labels of each example."""
    import tensorflow as tf

    y = tf.cast(y_true, tf.float32)
    mask = tf.cast(tf.not_equal(y, 0.0), tf.float32)
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(y > 0, tf.float32), logits=logits)
    return tf.reduce_sum(ce * mask, axis=-1) / tf.maximum(tf.reduce_sum(mask, axis=-1), 1.0)


def evaluate_voc(model, voc_dir, epochs: int, batch_size: int, lr: float = 1e-3, seed: int = 0,
                 limit: int | None = None) -> float:
    """Train a 20-output classifier (from :func:`transfer_classifier`) on VOC 2007 trainval with
    :func:`masked_sigmoid_bce` (SGD, momentum 0.9, random horizontal flips) and return the test mAP in %
    (VOC2007 11-point AP, ``common.voc``; single centre view at test time)."""
    import keras
    import tensorflow as tf

    from common.voc import VOC_CLASSES, load_voc2007, voc07_map

    if model.output_shape[-1] != len(VOC_CLASSES):
        raise ConfigError(f"evaluate_voc needs {len(VOC_CLASSES)} outputs, the model has {model.output_shape[-1]}")
    tr = load_voc2007(voc_dir, "trainval", limit=limit)
    te = load_voc2007(voc_dir, "test", limit=limit)
    fit_classifier(model, tr.x, tr.labels, epochs=epochs, batch_size=batch_size,
                   optimizer=keras.optimizers.SGD(lr, momentum=0.9), loss=masked_sigmoid_bce,
                   augment=lambda xb: tf.image.random_flip_left_right(xb, seed=seed), seed=seed)
    return 100.0 * voc07_map(predict(model, te.x, batch_size), te.labels)


def fold_protocol(fit_and_score: Callable, folds: Sequence, x_train, y_train, x_test, y_test) -> dict:
    """Train on each fold of the training set and test on the whole test set (STL-10's protocol, Coates et al.).

    ``fit_and_score(x_fold, y_fold, x_test, y_test) -> accuracy`` trains a fresh classifier (e.g. from
    :func:`keras_fold_trainer`). Returns ``{"mean", "sd", "per_fold", "n_folds", "fold_sizes"}``; ``sd`` is the
    sample standard deviation over the folds (ddof=1; 0 for one fold), in the unit of the accuracies.
    """
    if not len(folds):
        raise DataError("fold_protocol: no folds")
    n = len(x_train)
    if len(y_train) != n or len(x_test) != len(y_test) or len(x_test) == 0:
        raise DataError(f"fold_protocol: {n} training images / {len(y_train)} labels, {len(x_test)} test images / "
                        f"{len(y_test)} labels")
    accs, sizes = [], []
    for i, idx in enumerate(folds):
        idx = np.asarray(idx, np.int64)
        if idx.size == 0 or idx.min() < 0 or idx.max() >= n:
            raise DataError(f"fold {i + 1} is empty or indexes outside the {n} training images")
        accs.append(float(fit_and_score(x_train[idx], y_train[idx], x_test, y_test)))
        sizes.append(int(idx.size))
    mean = math.fsum(accs) / len(accs)
    sd = math.sqrt(math.fsum((a - mean) ** 2 for a in accs) / (len(accs) - 1)) if len(accs) > 1 else 0.0
    return {"mean": mean, "sd": sd, "per_fold": accs, "n_folds": len(accs), "fold_sizes": sizes}


def keras_fold_trainer(build: Callable, *, epochs: int, batch_size: int, optimizer: Callable | None = None,
                       preprocess: Callable | None = None, augment: Callable | None = None, seed: int = 0,
                       percent: bool = False) -> Callable:
    """``fit_and_score`` for :func:`fold_protocol`: ``build()`` a fresh classifier per fold (e.g.
    ``lambda: transfer_classifier(disc, 10, up_to="conv5", train_layers="none")``), :func:`fit_classifier` it
    (``optimizer()`` makes a fresh optimiser) and return its test accuracy (a fraction, or % with ``percent``)."""
    def fit_and_score(x, y, xt, yt):
        model = build()
        fit_classifier(model, x, y, epochs=epochs, batch_size=batch_size,
                       optimizer=optimizer() if optimizer else None, preprocess=preprocess, augment=augment,
                       seed=seed)
        acc = accuracy_of(model, xt, yt, batch_size, preprocess)
        return 100.0 * acc if percent else acc
    return fit_and_score


def stl10_ten_fold(fit_and_score: Callable, data_dir=None, download: bool = True,
                   test_limit: int | None = None) -> dict:
    """STL-10's standard protocol: train on each of the 10 pre-defined folds of 1,000 labelled training images
    (``fold_indices.txt``), test on the 8,000 test images (the first ``test_limit`` if set); mean and SD over
    the folds (:func:`fold_protocol`), plus the number of test images."""
    from common.datasets import load_images, stl10_folds

    tr = load_images("stl10", "train", data_dir, download)
    te = load_images("stl10", "test", data_dir, download, limit=test_limit)
    out = fold_protocol(fit_and_score, stl10_folds(data_dir, download), tr.x, tr.y, te.x, te.y)
    out["n_test"] = int(len(te.x))
    return out
