"""Transfer protocols of the paper, each on the discriminator's convolutional layers (conv1..conv5):

* Table 1 (Sec. 5.1): conv layers frozen, fully connected layers fc6-fc8 re-initialised and trained on the
  labelled set (:func:`fc_head_accuracy`), plus the two floors reported beside them with the same protocol
  (randomly initialised frozen conv layers; the frozen pre-trained autoencoder encoder).
* Table 2 (Sec. 5.2.1): "a linear classifier on top of conv5 features", trained on each of the ten folds, mean
  and SD over the folds (``common.transfer_eval.fold_protocol``; SD = sample SD over the folds): "conv1-conv5
  frozen" (:func:`fold_linear_accuracy`, logistic regression on the frozen conv5 features) and "conv1-conv5
  finetuned" (:func:`fold_finetune_accuracy`: the same linear classifier with the whole trunk trainable).
* Table 3 (Sec. 5.2.2), VOC 2007 classification: the 227x227 ImageNet AlexNet (pool5, fc6-fc8 randomly
  initialised) whose conv1..conv5 come from the discriminator, everything fine-tuned ("The convolutional layers
  are fine-tuned, i.e., not frozen") on trainval with ``common.transfer_eval.evaluate_voc``; mAP on test
  (:func:`voc07_map`).
* Tables 4-5 (Sec. 5.2.3), the layer-wise protocol of [44]: conv1..conv5 frozen, each layer's map average-pooled
  so that it flattens to about 9,200 values (:func:`pooled_side`), one multinomial logistic regression per layer,
  top-1 accuracy on the validation images (:func:`layerwise_accuracy`), images streamed from image folders.

Table 1 and the frozen Table 2 row: because the convolutional layers are frozen, their features are computed once
per image (no augmentation at transfer time, a deviation from the paper's 200 epochs of augmented training that
makes the protocol affordable; the code fine-tunes with its training augmentation) and the fully connected head
is trained on them. Optimiser (paper silent): the code's fine-tuning Adam (lr 1e-3, beta1 0.5), decayed linearly
to 1 % of it; the fine-tuned Table 2 row uses the same optimiser and the authors' training augmentation
(``common.augment.artifacts_train``) since its images go through the trunk at every step anyway.
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
    """Table 2, "conv1-conv5 frozen": multinomial logistic regression on frozen (flattened) conv5 features, one
    per fold (``common.linear_eval.logreg_accuracy``), tested on the whole test set; returns
    ``common.transfer_eval.fold_protocol``'s dict (``per_fold`` accuracies in %, their ``mean`` and sample ``sd``)."""
    from common.linear_eval import logreg_accuracy
    from common.transfer_eval import fold_protocol

    def fit_and_score(f, y, ft, yt):
        return 100.0 * logreg_accuracy(f, y, ft, yt, seed=seed)

    return fold_protocol(fit_and_score, folds, train_f.reshape(len(train_f), -1), np.asarray(train_y),
                         test_f.reshape(len(test_f), -1), np.asarray(test_y))


# ------------------------------------------------------------------------ Table 2: conv1-conv5 finetuned
def fold_classifier(feature_model, num_classes: int, finetune: bool):
    """A linear classifier on conv5 (flattened) over a COPY of ``feature_model`` (images -> conv5 features,
    :func:`artifacts_tf.networks.transfer_features`; the original is never changed): the whole trunk trainable
    (``finetune``, Table 2 "conv1-conv5 finetuned") or frozen ("conv1-conv5 frozen")."""
    from common.transfer_eval import transfer_classifier

    return transfer_classifier(feature_model, num_classes, train_layers="all" if finetune else "none",
                               head_name="linear", name="fold_finetuned" if finetune else "fold_frozen")


def train_fold_classifier(model, x: np.ndarray, y: np.ndarray, *, image_size: int, epochs: int, batch_size: int,
                          learning_rate: float = 1e-3, augment: bool = True, seed: int = 0,
                          run_eagerly: bool = False) -> None:
    """Train ``model`` (images in [-1, 1] -> logits) on uint8 images ``x`` with labels ``y``: batches from
    ``common.streaming`` (order and augmentation seeds from (seed, epoch, index)), the authors' training
    preprocessing ``common.augment.artifacts_train`` (``augment=False``: a plain resize), the code's fine-tuning
    Adam (beta1 0.5, linear decay to 1 % of ``learning_rate``), softmax cross-entropy. ``run_eagerly``: no
    graph tracing (same arithmetic; saves the trace on tiny data)."""
    import keras

    from common import augment as aug
    from common.streaming import array_source, make_dataset, steps_per_epoch

    source = array_source(x, y)
    size = (image_size, image_size)
    color = x.shape[-1] == 3

    def prep(image, s):
        if augment:
            return aug.artifacts_train(image, s, size, color=color)
        return aug.to_signed(aug.resize(image, size))

    steps = steps_per_epoch(source, batch_size)
    ds = make_dataset(source, seed=seed, batch_size=batch_size, preprocess=prep, num_epochs=None)
    lr = keras.optimizers.schedules.PolynomialDecay(learning_rate, steps * max(epochs, 1), learning_rate * 0.01,
                                                    power=1.0)
    model.compile(keras.optimizers.Adam(lr, beta_1=0.5),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), run_eagerly=run_eagerly)
    model.fit(ds.map(lambda d: (d["image"], d["label"])), epochs=epochs, steps_per_epoch=steps, verbose=0)


def classifier_accuracy(model, x: np.ndarray, y: np.ndarray, image_size: int, batch_size: int = 100) -> float:
    """Top-1 accuracy (%) of ``model``'s argmax on uint8 images (plain resize to [-1, 1], no augmentation)."""
    pred = [np.argmax(np.asarray(model(b, training=False)), -1) for b in eval_dataset(x, image_size, batch_size)]
    return 100.0 * float(np.mean(np.concatenate(pred) == np.asarray(y)))


def fold_finetune_accuracy(feature_model, train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                           test_y: np.ndarray, folds: list[np.ndarray], num_classes: int, *, image_size: int,
                           epochs: int, batch_size: int, learning_rate: float = 1e-3, augment: bool = True,
                           seed: int = 0, run_eagerly: bool = False) -> dict:
    """Table 2, "conv1-conv5 finetuned": per fold a fresh copy of the pre-trained trunk plus a linear classifier
    on conv5, everything trained (:func:`fold_classifier`, :func:`train_fold_classifier`), tested on the whole
    test set; ``common.transfer_eval.fold_protocol``'s dict (accuracies in %, mean, sample SD)."""
    from common.transfer_eval import fold_protocol

    def fit_and_score(x, y, xt, yt):
        model = fold_classifier(feature_model, num_classes, finetune=True)
        train_fold_classifier(model, x, y, image_size=image_size, epochs=epochs, batch_size=batch_size,
                              learning_rate=learning_rate, augment=augment, seed=seed, run_eagerly=run_eagerly)
        return classifier_accuracy(model, xt, yt, image_size)

    return fold_protocol(fit_and_score, folds, train_x, np.asarray(train_y), test_x, np.asarray(test_y))


# ------------------------------------------------------------------------------ Table 3: VOC 2007
def imagenet_alexnet_from_trunk(trunk, num_classes: int = 20):
    """The 227x227 ImageNet AlexNet (``networks.build_imagenet_alexnet``: VALID conv1 / pools, pool5, fc6-fc8
    randomly initialised) with conv1..conv5 copied from a discriminator trunk (any input size: the kernels do not
    depend on it), taking images in [0, 1] (``common.transfer_eval``'s convention) and rescaling them to the
    discriminator's [-1, 1]."""
    import keras

    from artifacts_tf.networks import IMAGENET_TRANSFER_SIZE, build_imagenet_alexnet

    net = build_imagenet_alexnet(num_classes)
    target = net.get_layer("alexnet_trunk")
    for name in CONV_LAYERS:
        target.get_layer(name).set_weights(trunk.get_layer(name).get_weights())
    x = keras.Input((IMAGENET_TRANSFER_SIZE, IMAGENET_TRANSFER_SIZE, 3), name="images")
    out = net(keras.layers.Rescaling(2.0, offset=-1.0, name="to_signed")(x))
    return keras.Model(x, out, name="alexnet_voc07")


def voc07_map(trunk, voc_dir, *, epochs: int, batch_size: int, learning_rate: float = 1e-3, seed: int = 0,
              limit: int | None = None) -> float:
    """Table 3, "Classification (mAP)": :func:`imagenet_alexnet_from_trunk` with 20 outputs fine-tuned on VOC
    2007 trainval and scored on test by ``common.transfer_eval.evaluate_voc`` (sigmoid cross-entropy with the
    "difficult" labels left out, SGD momentum 0.9, random flips; VOC2007 11-point mAP in %, single centre view).
    ``limit``: the first ``limit`` images of each split (smoke / quick scale)."""
    from common.transfer_eval import evaluate_voc

    model = imagenet_alexnet_from_trunk(trunk, 20)
    return evaluate_voc(model, voc_dir, epochs, batch_size, learning_rate, seed, limit)


# ----------------------------------------------------------------- Tables 4-5: the layer-wise protocol
CONV_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")
# Sec. 5.2.3: "The outputs of the convolutional layers are resized such that the flattened features are of similar
# size (~9200)" (the framework of [44]).
LAYERWISE_TARGET = 9200
# Images whose pooled features give the standardisation statistics (a seeded subset of the training images).
LAYERWISE_STATS_IMAGES = 10_000


def pooled_side(channels: int, map_side: int, target: int = LAYERWISE_TARGET) -> int:
    """The side s of the s x s average-pooled map with s * s * channels closest to ``target`` (at most the map's
    own side). AlexNet at 227x227: conv1 (55x55x96) -> 10x10 = 9,600; conv2 (27x27x256) -> 6x6 = 9,216; conv3,
    conv4 (13x13x384) -> 5x5 = 9,600; conv5 (13x13x256) -> 6x6 = 9,216 (the sizes of [44]'s framework)."""
    side = max(1, int(round((target / channels) ** 0.5)))
    return min(side, int(map_side))


def _pool_matrix(n: int, s: int) -> np.ndarray:
    """(s, n): row i averages input positions floor(i n / s) .. ceil((i + 1) n / s) - 1 (adaptive pooling)."""
    m = np.zeros((s, n), np.float32)
    for i in range(s):
        lo, hi = (i * n) // s, -(-((i + 1) * n) // s)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


def _adaptive_average_pool(x, side: int):
    """(B, H, W, C) -> (B, side, side, C): the average over the adaptive bins of :func:`_pool_matrix`."""
    import tensorflow as tf

    ph = tf.constant(_pool_matrix(int(x.shape[1]), side))
    pw = tf.constant(_pool_matrix(int(x.shape[2]), side))
    return tf.einsum("ih,bhwc,jw->bijc", ph, tf.cast(x, tf.float32), pw)


def imagenet_trunk_from(trunk, image_size: int | None = None):
    """A fresh standard ImageNet AlexNet trunk (VALID conv1 and pools, ``networks.build_alexnet_trunk``) at
    ``image_size`` (default 227) with conv1..conv5 copied from ``trunk`` (a discriminator trunk of any input
    size: the kernels do not depend on it)."""
    from artifacts_tf.networks import IMAGENET_TRANSFER_SIZE, build_alexnet_trunk

    out = build_alexnet_trunk(image_size or IMAGENET_TRANSFER_SIZE, 3, padding="valid", name="alexnet_trunk")
    for name in CONV_LAYERS:
        out.get_layer(name).set_weights(trunk.get_layer(name).get_weights())
    return out


def layerwise_feature_model(trunk):
    """Frozen ``trunk`` (conv1..conv4 after ReLU; conv5 gets its ReLU here, BN removed as in transfer, Sec. 4.4)
    -> for each layer the map average-pooled to :func:`pooled_side` and flattened: a functional model with five
    float32 outputs, named ``conv1``..``conv5``."""
    import keras

    trunk.trainable = False
    x = keras.Input(trunk.input_shape[1:], name="images")
    maps = trunk(x, training=False)
    outs = []
    for name, m in zip(CONV_LAYERS, maps):
        if name == "conv5":
            m = keras.layers.ReLU(name="conv5_relu")(m)
        side = pooled_side(int(m.shape[-1]), int(m.shape[1]))
        pooled = keras.layers.Lambda(lambda t, s=side: _adaptive_average_pool(t, s), name=f"{name}_pool",
                                     output_shape=(side, side, int(m.shape[-1])))(m)
        outs.append(keras.layers.Flatten(name=name)(pooled))
    model = keras.Model(x, outs, name="layerwise_features")
    model.trainable = False
    return model


def layerwise_sizes(feature_model) -> dict:
    """{layer: number of pooled features} of a :func:`layerwise_feature_model`."""
    return {name: int(t.shape[-1]) for name, t in zip(CONV_LAYERS, feature_model.outputs)}


def balanced_subset(source, limit: int | None, seed: int):
    """A ``common.streaming.Source`` holding a seeded class-balanced subset of ``limit`` examples of ``source``
    (``limit`` 0 / None: ``source`` itself); the subset's order is the source's (sorted)."""
    from artifacts_tf.data import stratified_indices
    from common.streaming import subset

    if not limit or limit >= len(source):
        return source
    return subset(source, stratified_indices(np.asarray(source.labels), limit, np.random.default_rng(seed)))


def _stream(source, image_size: int, batch_size: int, seed: int, train: bool, num_epochs=1, start_epoch: int = 0):
    """(images in [-1, 1], labels) batches: the authors' preprocessing at ``image_size`` (training: random
    resized crop + flip, ``common.augment.artifacts_train`` without colour jitter; evaluation: central 85 % crop,
    ``artifacts_eval``)."""
    from functools import partial

    from common import augment as aug
    from common.streaming import make_dataset

    size = (image_size, image_size)
    prep = partial(aug.artifacts_train, size=size, color=False) if train else partial(aug.artifacts_eval, size=size)
    ds = make_dataset(source, seed=seed, batch_size=batch_size, preprocess=prep, shuffle=train,
                      start_epoch=start_epoch, num_epochs=num_epochs)
    return ds.map(lambda d: (d["image"], d["label"]))


def feature_statistics(feature_model, batches, max_images: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per layer, the mean and variance of each pooled feature over the first ``max_images`` images of
    ``batches`` (streamed, float64 sums): the standardisation of the logistic regressions' inputs."""
    sums = sq = None
    n = 0
    for x, _ in batches:
        feats = [np.asarray(f, np.float64) for f in feature_model(x, training=False)]
        if sums is None:
            sums = [np.zeros(f.shape[1]) for f in feats]
            sq = [np.zeros(f.shape[1]) for f in feats]
        for k, f in enumerate(feats):
            sums[k] += f.sum(0)
            sq[k] += np.square(f).sum(0)
        n += len(feats[0])
        if n >= max_images:
            break
    means = [s / n for s in sums]
    # A feature that never varies over these images (a dead ReLU) is left unscaled, as StandardScaler does.
    return [(m, np.where(q / n - m * m > 1e-8, q / n - m * m, 1.0)) for m, q in zip(means, sq)]


def layerwise_probe(feature_model, stats, num_classes: int, seed: int | None = None):
    """Images -> five logit vectors: the frozen pooled features of each layer, standardised with the fixed
    training statistics ``stats`` (so each classifier is still linear in the features), then one Dense layer
    per layer (multinomial logistic regression, softmax cross-entropy at training). Outputs named
    ``conv1``..``conv5``."""
    import keras

    x = keras.Input(feature_model.input_shape[1:], name="images")
    feats = feature_model(x, training=False)
    outs = []
    for k, (name, f) in enumerate(zip(CONV_LAYERS, feats)):
        mean, var = stats[k]
        z = keras.layers.Normalization(mean=mean.astype(np.float32), variance=var.astype(np.float32),
                                       name=f"{name}_standardise")(f)
        init = keras.initializers.GlorotUniform(None if seed is None else seed + k)
        outs.append(keras.layers.Dense(num_classes, kernel_initializer=init, name=name, dtype="float32")(z))
    return keras.Model(x, outs, name="layerwise_probe")


def layerwise_accuracy(trunk, train_source, val_source, workdir, *, image_size: int, epochs: int, batch_size: int,
                       learning_rate: float = 0.01, seed: int = 0, resume: bool = True,
                       stats_images: int = LAYERWISE_STATS_IMAGES, run_eagerly: bool = False) -> dict:
    """Tables 4-5: the layer-wise protocol on streamed image folders (never loaded whole).

    ``trunk`` frozen (its weights are the pre-trained discriminator's; build it at ``image_size``, 227 in the
    paper); :func:`layerwise_feature_model` pools each layer to about 9,200 values; the features are standardised
    with statistics from the first ``stats_images`` training images of one seeded pass; the five logistic
    regressions are trained together (independent heads on a frozen trunk, so the summed loss trains each on its
    own) by SGD (momentum 0.9, ``learning_rate`` decayed linearly to 1 % of it; paper silent) over the streamed
    training images, ``epochs`` epochs, resumable in ``<workdir>/checkpoint`` (``common.training.fit_resumable``);
    then top-1 accuracy (%) of each on the validation images. Returns ``{"accuracy": {layer: %}, "features":
    {layer: size}, "train_images", "val_images", "classes"}``."""
    import keras

    from common.streaming import data_errors, steps_per_epoch
    from common.training import fit_resumable

    feats = layerwise_feature_model(trunk)
    num_classes = max(len(train_source.classes), int(np.max(train_source.labels)) + 1)
    with data_errors(train_source):
        stats = feature_statistics(feats, _stream(train_source, image_size, batch_size, seed + 1, True),
                                   stats_images)
    probe = layerwise_probe(feats, stats, num_classes, seed=seed)
    steps = steps_per_epoch(train_source, batch_size)
    lr = keras.optimizers.schedules.PolynomialDecay(learning_rate, steps * max(epochs, 1), learning_rate * 0.01,
                                                    power=1.0)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    probe.compile(keras.optimizers.SGD(lr, momentum=0.9), loss=[loss] * len(CONV_LAYERS), run_eagerly=run_eagerly)

    def data(first):
        ds = _stream(train_source, image_size, batch_size, seed, True, num_epochs=None, start_epoch=first)
        return ds.map(lambda x, y: (x, (y,) * len(CONV_LAYERS)))

    with data_errors(train_source):
        fit_resumable(probe, data, epochs=epochs, workdir=workdir, steps_per_epoch=steps, resume=resume,
                      tensorboard=False, verbose=0)
    correct = np.zeros(len(CONV_LAYERS))
    n = 0
    with data_errors(val_source):
        for x, y in _stream(val_source, image_size, batch_size, seed, False):
            logits = probe(x, training=False)
            y = np.asarray(y)
            correct += [float(np.sum(np.argmax(np.asarray(lg), -1) == y)) for lg in logits]
            n += len(y)
    return {"accuracy": {name: 100.0 * float(c) / n for name, c in zip(CONV_LAYERS, correct)},
            "features": layerwise_sizes(feats), "train_images": len(train_source), "val_images": n,
            "classes": num_classes}


# ------------------------------------------------------------- the CPU-scale probe (--transfer=probe)
def extract_feature_list(feature_model, images: np.ndarray, image_size: int, batch_size: int) -> list[np.ndarray]:
    """Run a multi-output ``feature_model`` (frozen, inference mode) over uint8 images; one float32 (N, d) array
    per output, flattened."""
    from common.training import progress

    ds = eval_dataset(images, image_size, batch_size)
    parts = None
    for x in progress(ds, desc="features", total=-(-len(images) // batch_size), unit="batch"):
        outs = feature_model(x, training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        arrays = [np.asarray(o, np.float32).reshape(len(x), -1) for o in outs]
        parts = [[a] for a in arrays] if parts is None else [p + [a] for p, a in zip(parts, arrays)]
    return [np.concatenate(p, 0) for p in parts]


def pixel_features(images: np.ndarray) -> np.ndarray:
    """The raw-pixel floor: the stored uint8 pixels (no resize), flattened, in [0, 1]."""
    return (np.asarray(images, np.float32) / 255.0).reshape(len(images), -1)


def probe_layers(train_feats: list[np.ndarray], train_y, test_feats: list[np.ndarray], test_y, names, *,
                 val_fraction: float, seed: int, label: str = "") -> dict:
    """``common.linear_eval.logreg_validated`` on each layer's features (regularisation chosen on a validation
    split of the training features only); ``{layer: {"accuracy" %, "C", "val_accuracy" {C: %}, sizes}}``."""
    import time

    from common.linear_eval import logreg_validated

    out = {}
    for name, ftr, fte in zip(names, train_feats, test_feats):
        t0 = time.time()
        r = logreg_validated(ftr, train_y, fte, test_y, val_fraction=val_fraction, seed=seed)
        out[name] = {**r, "accuracy": 100.0 * r["accuracy"],
                     "val_accuracy": {f"{c:g}": 100.0 * a for c, a in r["val_accuracy"].items()},
                     "seconds": time.time() - t0}
        print(f"probe {label} {name}: {out[name]['accuracy']:.2f}% test (C {r['C']:g} chosen on validation "
              f"{max(out[name]['val_accuracy'].values()):.2f}%; {r['n_features']} features, "
              f"{out[name]['seconds']:.0f} s)", flush=True)
    return out
