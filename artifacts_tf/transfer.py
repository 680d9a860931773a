"""Transfer protocols: Table 1 (frozen conv layers, re-initialised fully connected layers trained on the labelled
set) and Table 2 (a linear classifier on frozen conv5, trained on each of the ten folds; mean and SD), plus the
two floors reported beside them with the same protocol (randomly initialised frozen conv layers; the frozen
pre-trained autoencoder encoder).

Because the convolutional layers are frozen, their features are computed once per image (no augmentation at
transfer time, a deviation from the paper's 200 epochs of augmented training that makes the protocol affordable;
the code fine-tunes with its training augmentation) and the fully connected head is trained on them. Optimiser
(paper silent): the code's fine-tuning Adam (lr 1e-3, beta1 0.5), decayed linearly to 1 % of it.
"""
from __future__ import annotations

import numpy as np

from artifacts_tf.data import eval_dataset


def extract_features(feature_model, images: np.ndarray, image_size: int, batch_size: int) -> np.ndarray:
    """Run ``feature_model`` (frozen, inference mode) over uint8 images; returns float32 (N, ...)."""
    from common.training import progress

    ds = eval_dataset(images, image_size, batch_size)
    out = [np.asarray(feature_model(x, training=False), np.float32)
           for x in progress(ds, desc="features", total=-(-len(images) // batch_size), unit="batch")]
    return np.concatenate(out, 0)


def fc_head_accuracy(train_f: np.ndarray, train_y: np.ndarray, test_f: np.ndarray, test_y: np.ndarray,
                     num_classes: int, epochs: int, batch_size: int = 128, learning_rate: float = 1e-3,
                     seed: int = 0) -> tuple[float, object]:
    """Train fc6-fc7-fc8 (re-initialised, :func:`networks.build_fc_head`) on frozen features (Table 1 protocol);
    returns (test accuracy as a percentage, the trained head)."""
    import keras
    import tensorflow as tf

    from artifacts_tf.networks import build_fc_head

    head = build_fc_head(tuple(train_f.shape[1:]), num_classes, seed=seed)
    steps = max(1, -(-len(train_f) // batch_size)) * max(epochs, 1)
    lr = keras.optimizers.schedules.PolynomialDecay(learning_rate, steps, learning_rate * 0.01, power=1.0)
    head.compile(keras.optimizers.Adam(lr, beta_1=0.5),
                 loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    ds = (tf.data.Dataset.from_tensor_slices((train_f, train_y)).shuffle(len(train_f), seed=seed)
          .batch(batch_size).prefetch(2))
    head.fit(ds, epochs=epochs, verbose=0)
    logits = head.predict(test_f, batch_size=256, verbose=0)
    return 100.0 * float(np.mean(np.argmax(logits, 1) == np.asarray(test_y))), head


def fold_linear_accuracy(train_f: np.ndarray, train_y: np.ndarray, test_f: np.ndarray, test_y: np.ndarray,
                         folds: list[np.ndarray], seed: int = 0) -> dict:
    """Table 2: multinomial logistic regression on frozen (flattened) conv5 features, one per fold; returns the
    per-fold test accuracies (%), their mean and SD (population SD, numpy default)."""
    from common.linear_eval import logreg_accuracy

    tr = train_f.reshape(len(train_f), -1)
    te = test_f.reshape(len(test_f), -1)
    accs = [100.0 * logreg_accuracy(tr[f], train_y[f], te, test_y, seed=seed) for f in folds]
    return {"per_fold": accs, "mean": float(np.mean(accs)), "sd": float(np.std(accs))}
