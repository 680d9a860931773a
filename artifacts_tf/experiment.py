"""Learning to Spot Artifacts, the library side of a run: autoencoder pre-training (then frozen), the damage &
repair game, transfer (Table 1 and Table 2 protocols, with the two floors; or Table 3 VOC 2007 / the Tables 4-5
layer-wise protocol), Fig. 6 renderings and the SavedModel exports, all inside the one run lifecycle
(:func:`common.lifecycle.run_experiment`). ``python -m artifacts_tf.train`` (flags and ``main`` only) and
:mod:`artifacts_tf.tables` call :func:`run`; importing this module defines no flag.

Writes into ``--workdir``: ``config.json`` / ``identity.json`` (common/run_identity.py), the AE stage
(``autoencoder.weights.h5`` recorded with its sha256 in ``identity.json``, its resumable checkpoints in
``autoencoder/``; unless ``--autoencoder_dir`` names an earlier run to reuse), ``log.csv`` / TensorBoard /
``checkpoint/`` of the game (exact kill-and-resume), ``discriminator_trunk.weights.h5`` (C's conv layers, recorded
like the AE, for ``--discriminator_dir``), ``layerwise/`` (the resumable layer-wise classifiers),
``figures/fig6.png``, ``metrics.json`` (transfer accuracies, losses, timings).

``--strategy=mirrored`` trains the autoencoder and the game under the strategy (both built in ``run.scope()``; the
game's per-replica loss weighting and metric all-reduce are :class:`common.multiplayer.MultiPlayerModel`'s, the
history buffer of corrupted examples is shared by all replicas, :class:`artifacts_tf.model.SpotArtifacts`); the
transfer protocols, Fig. 6 and the exports then run on an undistributed copy with the same weights
(:func:`undistributed`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from pathlib import Path

import numpy as np

from common.errors import ConfigError
from artifacts_tf.config import ArtifactsConfig

log = logging.getLogger(__name__)


def _adam(cfg, steps: int):
    import keras

    lr = keras.optimizers.schedules.PolynomialDecay(cfg.learning_rate, max(steps, 1), cfg.final_learning_rate,
                                                    power=1.0)
    return keras.optimizers.Adam(lr, beta_1=cfg.beta_1)


# ------------------------------------------------------------------------------------------ AE stage
AE_NAME = "autoencoder"
# Config fields of an earlier run that must equal this run's for its autoencoder to be reused.
AE_FIELDS = ("dataset", "image_size", "lrelu_slope", "ae_output", "ae_epochs", "pretrain_limit", "augment",
             "precision", "seed", "ae_bn_images")


def game_batches(cfg, source, seed: int, epochs: int):
    """``data(first_epoch)`` for :func:`common.training.fit_resumable` and its steps per epoch: the unlabelled
    ``common.streaming.Source`` through :func:`common.streaming.make_dataset` (epoch order and per-example
    augmentation seeds depend on (seed, epoch, index) only, so a resumed run sees the same batches); training
    preprocessing :func:`common.augment.artifacts_train` (the authors' ``process_train``; colour jitter on RGB
    data only), or a plain resize to [-1, 1] with ``--noaugment``."""
    from common import augment
    from common.streaming import make_dataset, steps_per_epoch

    size = (cfg.image_size, cfg.image_size)
    color = source.shape is None or source.shape[-1] == 3   # streamed folders decode to RGB
    if cfg.augment:
        def prep(image, s):
            return augment.artifacts_train(image, s, size, color=color)
    else:
        def prep(image, s):
            return augment.to_signed(augment.resize(image, size))
    drop = len(source) >= cfg.batch_size

    def data(first):
        return make_dataset(source, seed=seed, batch_size=cfg.batch_size, preprocess=prep, start_epoch=first,
                            num_epochs=max(epochs - first, 1), drop_remainder=drop).map(lambda d: d["image"])

    return data, steps_per_epoch(source, cfg.batch_size, drop)


def _check_upstream(cfg, run_dir, name: str, fields, flag: str) -> tuple[str, dict]:
    """(frozen_weights_id of network ``name`` of the earlier run ``run_dir``, that run's config), after checking
    that run's ``fields`` equal ``cfg``'s (one-line ConfigError otherwise)."""
    from common.run_identity import frozen_weights_id, read_identity

    weights_id = frozen_weights_id(run_dir, name)
    upstream = read_identity(run_dir)["config"]
    bad = [f"{k}: this run {getattr(cfg, k)!r}, that run {upstream.get(k, '<unset>')!r}" for k in fields
           if upstream.get(k, "<unset>") != getattr(cfg, k)]
    if bad:
        raise ConfigError(f"the run in {run_dir} trained another {name.replace('_', ' ')} ({', '.join(bad)}); "
                          f"pass the --workdir of a matching run as --{flag}")
    return weights_id, upstream


def check_autoencoder_run(cfg, ae_dir) -> str:
    """The id (:func:`common.run_identity.frozen_weights_id`) of the autoencoder of the earlier run ``ae_dir``,
    after checking that run trained the same autoencoder as ``cfg`` would (one-line ConfigError otherwise)."""
    ae_id, upstream = _check_upstream(cfg, ae_dir, AE_NAME, AE_FIELDS, "autoencoder_dir")
    kernel = ArtifactsConfig(ablation=upstream.get("ablation", "baseline")).encoder_kernel
    if kernel != cfg.encoder_kernel:
        raise ConfigError(f"the run in {ae_dir} trained a {kernel}x{kernel}-encoder autoencoder, ablation "
                          f"{cfg.ablation} needs {cfg.encoder_kernel}x{cfg.encoder_kernel}; pass another "
                          f"--autoencoder_dir")
    return ae_id


# The discriminator's conv layers (conv1..conv5, ``networks.build_alexnet_trunk``), saved by every finished game
# as a frozen network of its run, transferred by later runs with --discriminator_dir (Tables 3-5).
TRUNK_NAME = "discriminator_trunk"
# Config fields of an earlier run that must equal this run's for its discriminator trunk to be transferred.
DISC_FIELDS = AE_FIELDS + ("ablation", "code_defaults", "drop_rate", "epochs", "batch_size", "learning_rate",
                           "final_learning_rate", "history_size")


def check_discriminator_run(cfg, disc_dir) -> str:
    """The id of the discriminator trunk of the earlier run ``disc_dir``, after checking that run's pre-training
    is the one ``cfg`` describes."""
    return _check_upstream(cfg, disc_dir, TRUNK_NAME, DISC_FIELDS, "discriminator_dir")[0]


def recalibrate_batchnorm(model, batches, max_images: int) -> int:
    """Re-estimate every BN layer's moving statistics of ``model`` (beyond the paper; "precise BN"): reset them,
    then run training-mode forward passes over ``batches`` until ``max_images`` images, with the k-th batch
    (k = 0, 1, ...) updating at momentum k / (k + 1), so the statistics end as the plain average of the batch
    statistics instead of an exponential average that still holds its initial values (momentum 0.975 keeps
    0.975^32 = 45 % of them after 32 steps). No weight changes. Returns the number of images used."""
    import keras
    import tensorflow as tf

    bns = [l for l in model._flatten_layers() if isinstance(l, keras.layers.BatchNormalization)]
    saved = [l.momentum for l in bns]
    for l in bns:
        l.moving_mean.assign(tf.zeros_like(l.moving_mean))
        l.moving_variance.assign(tf.ones_like(l.moving_variance))
    n = k = 0
    try:
        for x in batches:
            for l in bns:
                l.momentum = k / (k + 1.0)
            model(x, training=True)
            k, n = k + 1, n + int(x.shape[0])
            if n >= max_images:
                break
    finally:
        for l, m in zip(bns, saved):
            l.momentum = m
    return n


def pretrain_autoencoder(cfg, data, workdir: Path, scope=contextlib.nullcontext):
    """Sec. 4.2: train {E, D} with Eq. 3 on the unlabelled images (resumable, in ``<workdir>/autoencoder``) and
    record it as this run's frozen network; or load it from ``--autoencoder_dir`` (an earlier run, checked by
    :func:`common.run_identity.load_frozen_weights`) or from this run when it already finished the stage.
    ``scope``: the strategy's scope (``run.scope``), in which the autoencoder and its optimizer are built.
    Returns the autoencoder, frozen."""
    import tensorflow as tf

    from artifacts_tf.losses import autoencoder_loss
    from artifacts_tf.networks import Autoencoder
    from common.run_identity import load_frozen_weights, read_identity, save_frozen_weights
    from common.streaming import data_errors
    from common.training import fit_resumable

    with scope():
        ae = Autoencoder(cfg.image_size, 3, cfg.encoder_kernel, cfg.lrelu_slope, cfg.ae_output, name="autoencoder")
        ae(tf.zeros((1, cfg.image_size, cfg.image_size, 3)))
    if cfg.autoencoder_dir:
        load_frozen_weights(cfg.autoencoder_dir, ae, AE_NAME,
                            expected={"method": cfg.method, **{k: getattr(cfg, k) for k in AE_FIELDS}})
        print(f"autoencoder: reusing the frozen one of {cfg.autoencoder_dir} ({cfg.autoencoder_id})", flush=True)
    elif AE_NAME in ((read_identity(workdir) or {}).get("weights") or {}):
        load_frozen_weights(workdir, ae, AE_NAME)
        print(f"autoencoder: this run finished the stage before; loaded {workdir / (AE_NAME + '.weights.h5')}",
              flush=True)
    else:
        t0 = time.time()
        batches, steps = game_batches(cfg, data.unlabelled, cfg.seed + 1, cfg.ae_epochs)
        with scope():
            ae.compile(_adam(cfg, steps * cfg.ae_epochs), loss=lambda y, p: autoencoder_loss(y, p))
        from artifacts_tf.monitor import LossTrace

        cbs = []
        if cfg.monitor_every:
            (workdir / AE_NAME).mkdir(parents=True, exist_ok=True)
            cbs.append(LossTrace(workdir / AE_NAME / "trace.jsonl", cfg.monitor_every, steps, steps * cfg.ae_epochs))
        with data_errors(data.unlabelled):   # an unreadable streamed file: one DataError naming it
            hist = fit_resumable(ae, lambda first: batches(first).map(lambda x: (x, x)), epochs=cfg.ae_epochs,
                                 workdir=workdir / AE_NAME, steps_per_epoch=steps, resume=cfg.resume,
                                 tensorboard=False, callbacks=cbs)
        print(f"autoencoder: trained {cfg.ae_epochs} epochs ({steps * cfg.ae_epochs} steps) in "
              f"{time.time() - t0:.0f} s, loss {hist[-1]['loss']:.4f}", flush=True)
        if cfg.ae_bn_images:
            t1 = time.time()
            recal, _ = game_batches(cfg, data.unlabelled, cfg.seed + 3, 1)
            with data_errors(data.unlabelled):
                n = recalibrate_batchnorm(ae, recal(0), cfg.ae_bn_images)
            print(f"autoencoder: BN statistics re-estimated on {n} training images in {time.time() - t1:.0f} s",
                  flush=True)
        save_frozen_weights(workdir, AE_NAME, ae)
    ae.trainable = False
    return ae


# ------------------------------------------------------------------------------------------- game
def build_model(cfg, autoencoder):
    from artifacts_tf.model import SpotArtifacts

    kw = cfg.model_kwargs()
    model = SpotArtifacts(autoencoder if kw.get("generator") != "gan" else None, cfg.image_size, 3,
                          seed=cfg.seed + 17, name="spot_artifacts", **kw)
    return model


def train_game(cfg, data, autoencoder, workdir: Path, scope=contextlib.nullcontext, on_compiled=None):
    """Sec. 4.3: C against R (or G for (l)) for ``cfg.epochs`` epochs on the unlabelled images, resumable
    exactly: the checkpoint holds both players' weights and optimizers, the history buffer (model variables)
    and the damage / dropout RNG states, and each epoch's batches depend on (seed, epoch) only. The model and
    its optimizers are built in ``scope`` (the strategy's); ``on_compiled(model)`` (``run.record_model``) is
    called once it is compiled."""
    from common.streaming import data_errors
    from common.training import fit_resumable, resolve_jit_compile

    from artifacts_tf.data import to_model_range
    from artifacts_tf.monitor import GameMonitor
    from common.run_identity import read_identity, save_frozen_weights

    batches, steps = game_batches(cfg, data.unlabelled, cfg.seed + 2, cfg.epochs)
    with scope():
        model = build_model(cfg, autoencoder)
        model.compile(_adam(cfg, steps * cfg.epochs), _adam(cfg, steps * cfg.epochs) if model.has_generator_player
                      else None, jit_compile=resolve_jit_compile(cfg.jit_compile, cfg.strategy, cfg.deterministic))
    if on_compiled is not None:
        on_compiled(model)
    # C's own initial weights, the paired floor of the probe: saved once, before the first game step (a resumed
    # run keeps the file of its first start).
    if INIT_NAME not in ((read_identity(workdir) or {}).get("weights") or {}):
        save_frozen_weights(workdir, INIT_NAME, model.discriminator)
    total = steps * cfg.epochs
    snaps = trend_steps(total, cfg.trend_snapshots)
    cbs = []
    if cfg.monitor_every or snaps:
        held = np.asarray(to_model_range(data.test_x[:cfg.monitor_images], cfg.image_size))
        cbs.append(GameMonitor(workdir / "game_trace.jsonl", cfg.monitor_every, steps, total, held,
                               seed=cfg.seed + 11, snapshot_steps=snaps, workdir=workdir))
    with data_errors(data.unlabelled):
        hist = fit_resumable(model, batches, epochs=cfg.epochs, workdir=workdir, steps_per_epoch=steps,
                             resume=cfg.resume, callbacks=cbs)
    return model, dict(hist[-1]) if hist else {}


# C's weights before the first game step (``train_game``), a frozen network of the run.
INIT_NAME = "discriminator_init"


def trend_steps(total: int, n: int) -> tuple[int, ...]:
    """``n`` evenly spaced game steps strictly inside (0, total): where C is saved for the trend probe."""
    return tuple(sorted({int(round(total * k / (n + 1))) for k in range(1, n + 1)} - {0, total})) if n else ()


# --------------------------------------------------------------------------------------- transfer
def transfer_table1(cfg, data, model, autoencoder) -> dict:
    """Table 1 protocol (Sec. 5.1) for the discriminator and, with ``cfg.floors``, the two floors; also the
    Table 2 fold protocol on the discriminator's frozen conv5 (and, with ``cfg.finetune_folds``, with the whole
    trunk fine-tuned)."""
    from artifacts_tf import transfer as tr
    from artifacts_tf.networks import build_alexnet_trunk, transfer_features

    n_cls = len(data.classes)

    def evaluate(name, feature_model, folds: bool):
        f_tr = tr.extract_features(feature_model, data.labelled_x, cfg.image_size, cfg.eval_batch_size)
        f_te = tr.extract_features(feature_model, data.test_x, cfg.image_size, cfg.eval_batch_size)
        acc, head = tr.fc_head_accuracy(f_tr, data.labelled_y, f_te, data.test_y, n_cls, cfg.transfer_epochs,
                                        learning_rate=cfg.transfer_learning_rate, seed=cfg.seed + 5)
        out = {"accuracy": acc}
        if folds and data.folds:
            out["folds_linear_conv5"] = tr.fold_linear_accuracy(f_tr, data.labelled_y, f_te, data.test_y,
                                                                data.folds, seed=cfg.seed)
            if cfg.finetune_folds:
                out["folds_finetuned"] = tr.fold_finetune_accuracy(
                    feature_model, data.labelled_x, data.labelled_y, data.test_x, data.test_y, data.folds, n_cls,
                    image_size=cfg.image_size, epochs=cfg.transfer_epochs, batch_size=cfg.batch_size,
                    learning_rate=cfg.transfer_learning_rate, augment=cfg.augment, seed=cfg.seed + 6)
                print(f"Table 2 {name} conv1-conv5 finetuned: {out['folds_finetuned']['mean']:.2f}% "
                      f"(SD {out['folds_finetuned']['sd']:.2f})", flush=True)
        print(f"transfer {name}: {acc:.2f}% test accuracy", flush=True)
        return out, head

    t0 = time.time()
    disc = model.discriminator
    feats = transfer_features(disc.trunk, disc.conv5_bn if cfg.transfer_conv5_bn else None)
    results, head = evaluate("discriminator", feats, True)
    res = {"discriminator": results}
    if cfg.floors:
        # The random-init floor: a fresh trunk of the same network (its initial weights follow from --seed).
        rand = transfer_features(build_alexnet_trunk(cfg.image_size, 3, name="random_trunk"))
        res["random_init_conv"] = evaluate("random-init conv (floor)", rand, True)[0]
        if autoencoder is not None:
            enc = autoencoder.encoder
            res["autoencoder_encoder"] = evaluate("frozen AE encoder (floor)", enc, False)[0]
    res["seconds"] = time.time() - t0
    return res, feats, head


def _discriminator_from(cfg, path):
    """A fresh (undistributed) discriminator of the run's configuration with the weights file ``path``."""
    import tensorflow as tf

    from artifacts_tf.networks import Discriminator

    disc = Discriminator(cfg.image_size, 3, fc6_bn=cfg.fc6_bn, mask_head=True, name="discriminator")
    disc(tf.zeros((1, cfg.image_size, cfg.image_size, 3)), training=False)
    disc.load_weights(str(path))
    return disc


def transfer_probe(cfg, data, model, autoencoder, workdir: Path) -> dict:
    """The CPU-scale transfer protocol (``--transfer=probe``; the paper's Table 1 head stays ``table1``): frozen
    features computed once per image (no augmentation), then per feature set and layer standardised multinomial
    logistic regression with its regularisation chosen on a validation split of the labelled images only
    (``common.linear_eval.logreg_validated``), refit on all labelled images, scored once on the test images.

    Layers conv1..conv5 as in the layer-wise protocol of Tables 4-5 (:func:`transfer.layerwise_feature_model`:
    each map average-pooled to about 9,200 values, at most its own size), conv5 with the discriminator's BN folded
    into it (:func:`networks.fold_conv5_bn`). Rows, all on the same labels: ``discriminator`` (C after the game;
    its conv5 accuracy is the Table 1 cell), ``discriminator_init`` (C's own weights before the first game step:
    the paired floor) and, with ``cfg.floors``: ``discriminator_conv5_bn_dropped`` (conv5 with its BN removed, the
    paper's Sec. 4.4 text), ``random_init_conv`` (an independent random trunk), ``autoencoder_encoder`` (phi(x),
    flattened) and ``pixels`` (the stored pixels); with ``cfg.trend_snapshots``: ``discriminator_step<N>`` (C saved
    at game step N). Also the Table 2 fold protocol on C's (folded) conv5, as :func:`transfer_table1` does."""
    from artifacts_tf import transfer as tr
    from artifacts_tf.monitor import snapshot_path, snapshot_steps
    from artifacts_tf.networks import build_alexnet_trunk, fold_conv5_bn, transfer_features

    t0 = time.time()
    y, yt = np.asarray(data.labelled_y), np.asarray(data.test_y)
    kw = dict(val_fraction=cfg.probe_val_fraction, seed=cfg.seed + 7)

    def layerwise(label, trunk, layers=tr.CONV_LAYERS):
        fm = tr.layerwise_feature_model(trunk)
        f_tr = tr.extract_feature_list(fm, data.labelled_x, cfg.image_size, cfg.eval_batch_size)
        f_te = tr.extract_feature_list(fm, data.test_x, cfg.image_size, cfg.eval_batch_size)
        keep = [tr.CONV_LAYERS.index(n) for n in layers]
        out = tr.probe_layers([f_tr[i] for i in keep], y, [f_te[i] for i in keep], yt, layers, label=label, **kw)
        return {"accuracy": out[layers[-1]]["accuracy"], "layers": out}, (f_tr[-1], f_te[-1])

    def single(label, name, f_tr, f_te):
        out = tr.probe_layers([f_tr], y, [f_te], yt, [name], label=label, **kw)
        return {"accuracy": out[name]["accuracy"], "layers": out}

    disc = model.discriminator
    folded = fold_conv5_bn(disc.trunk, disc.conv5_bn, name="c_folded")
    res = {"protocol": "probe", "n_labelled": int(len(y)), "n_test": int(len(yt)),
           "val_fraction": cfg.probe_val_fraction}
    res["discriminator"], (c5_tr, c5_te) = layerwise("C", folded)
    if data.folds:
        res["discriminator"]["folds_linear_conv5"] = tr.fold_linear_accuracy(c5_tr, y, c5_te, yt, data.folds,
                                                                             seed=cfg.seed)
        if cfg.finetune_folds:
            res["discriminator"]["folds_finetuned"] = tr.fold_finetune_accuracy(
                transfer_features(folded), data.labelled_x, y, data.test_x, yt, data.folds, len(data.classes),
                image_size=cfg.image_size, epochs=cfg.transfer_epochs, batch_size=cfg.batch_size,
                learning_rate=cfg.transfer_learning_rate, augment=cfg.augment, seed=cfg.seed + 6)
    del c5_tr, c5_te
    init = _discriminator_from(cfg, workdir / f"{INIT_NAME}.weights.h5")
    res["discriminator_init"] = layerwise("C init", fold_conv5_bn(init.trunk, init.conv5_bn, name="init_folded"))[0]
    for step in (snapshot_steps(workdir) if cfg.trend_snapshots else ()):
        snap = _discriminator_from(cfg, snapshot_path(workdir, step))
        res[f"discriminator_step{step}"] = layerwise(f"C step {step}", fold_conv5_bn(snap.trunk, snap.conv5_bn,
                                                                                     name="snap_folded"))[0]
        res[f"discriminator_step{step}"]["step"] = step
    if cfg.floors:
        res["discriminator_conv5_bn_dropped"] = layerwise("C conv5 BN dropped", disc.trunk, ("conv5",))[0]
        res["random_init_conv"] = layerwise("random trunk", build_alexnet_trunk(cfg.image_size, 3,
                                                                                name="random_trunk"))[0]
        if autoencoder is not None:
            enc = [tr.extract_feature_list(autoencoder.encoder, x, cfg.image_size, cfg.eval_batch_size)[0]
                   for x in (data.labelled_x, data.test_x)]
            res["autoencoder_encoder"] = single("AE encoder", "phi", *enc)
        res["pixels"] = single("pixels", "pixels", tr.pixel_features(data.labelled_x),
                               tr.pixel_features(data.test_x))
    c, c0 = res["discriminator"], res["discriminator_init"]
    res["paired_gain"] = {k: c["layers"][k]["accuracy"] - c0["layers"][k]["accuracy"] for k in c["layers"]}
    res["seconds"] = time.time() - t0
    print("probe (conv5, %): " + ", ".join(f"{k} {v['accuracy']:.2f}" for k, v in res.items()
                                           if isinstance(v, dict) and "accuracy" in v), flush=True)
    return res


def transfer_protocol(cfg, trunk, workdir: Path) -> dict:
    """Table 3 (``voc07``) or Tables 4-5 (``layerwise``) on the conv layers of ``trunk`` (a discriminator trunk;
    BN after conv5 removed, paper Sec. 4.4), with the data of ``cfg.transfer_data_dir``. ``labelled_limit`` /
    ``test_limit`` cut the protocol's training / evaluation images (VOC: the first images of each split;
    image folders: seeded class-balanced subsets)."""
    from artifacts_tf import transfer as tr
    from artifacts_tf.networks import IMAGENET_TRANSFER_SIZE

    t0 = time.time()
    if cfg.transfer == "voc07":
        m = tr.voc07_map(trunk, cfg.transfer_data_dir, epochs=cfg.voc_epochs, batch_size=cfg.batch_size,
                         seed=cfg.seed, limit=cfg.labelled_limit or None)
        out = {"voc07_classification_map": m}
        print(f"Table 3 VOC 2007 classification (fine-tuned): {m:.2f}% mAP", flush=True)
    elif cfg.transfer == "layerwise":
        from common.streaming import image_folder_source

        root = cfg.transfer_data_dir
        train = tr.balanced_subset(image_folder_source(root, "train", nested=True), cfg.labelled_limit, cfg.seed + 303)
        val = tr.balanced_subset(image_folder_source(root, "val", nested=True), cfg.test_limit, cfg.seed + 304)
        out = tr.layerwise_accuracy(tr.imagenet_trunk_from(trunk), train, val, workdir / "layerwise",
                                    image_size=IMAGENET_TRANSFER_SIZE, epochs=cfg.layerwise_epochs,
                                    batch_size=cfg.batch_size, learning_rate=cfg.layerwise_learning_rate,
                                    seed=cfg.seed, resume=cfg.resume)
        print("layer-wise top-1 (%): " + ", ".join(f"{k} {v:.2f}" for k, v in out["accuracy"].items()), flush=True)
    else:
        raise ValueError(f"transfer_protocol: {cfg.transfer!r} is not voc07 or layerwise")
    out["seconds"] = time.time() - t0
    return out


def transfer_earlier_run(run) -> dict:
    """``--discriminator_dir``: no autoencoder stage and no game; the conv layers of that run's discriminator
    (checked by :func:`common.run_identity.load_frozen_weights`) through :func:`transfer_protocol` (one device:
    :meth:`ArtifactsConfig.resolved` refuses another ``--strategy`` for such a run)."""
    from artifacts_tf.networks import build_alexnet_trunk
    from common.run_identity import load_frozen_weights

    cfg = run.config
    trunk = build_alexnet_trunk(cfg.image_size)
    load_frozen_weights(cfg.discriminator_dir, trunk, TRUNK_NAME, expected={"method": cfg.method})
    print(f"transfer: the discriminator conv layers of {cfg.discriminator_dir} ({cfg.discriminator_id})", flush=True)
    return {"method": "Learning to Spot Artifacts (transfer)", "dataset": cfg.dataset, "scale": cfg.scale,
            "protocol": cfg.transfer, "transfer_data_dir": cfg.transfer_data_dir,
            "discriminator_dir": cfg.discriminator_dir, "discriminator_id": cfg.discriminator_id,
            "transfer": transfer_protocol(cfg, trunk, run.workdir)}


# ------------------------------------------------------------------------------------------- figure
def save_fig6(model, data, path: Path, title: str, n: int = 8) -> Path:
    """Fig. 6 style: input, autoencoded, damaged-and-repaired, true and predicted drop masks (white = dropped)."""
    import numpy as np
    import tensorflow as tf

    from artifacts_tf.data import to_model_range
    from common import plots

    x = to_model_range(data.test_x[:n], model.image_size)
    r = model.render(x)

    def mask_img(m):
        up = tf.image.resize(1.0 - tf.convert_to_tensor(m)[..., None], (model.image_size,) * 2, method="nearest")
        return np.asarray(up * 2.0 - 1.0)

    rows = [("input", np.asarray(r["input"])), ("autoencoded", np.asarray(r["autoencoded"])),
            ("damaged +\nrepaired", np.asarray(r["corrupted"])), ("dropped\n(true)", mask_img(r["keep_mask"])),
            ("dropped\n(C^mask)", mask_img(r["predicted_keep"]))]
    return plots.save_image_grid(rows, path, title=title)


# ------------------------------------------------------------------------------------------- export
def model_name(cfg) -> str:
    return f"artifacts_{cfg.dataset}"


def preprocessing(cfg) -> dict:
    """What a client does to raw pixels before either export (:func:`artifacts_tf.data.to_model_range`): uint8
    RGB (gray replicated to three channels), bilinear resize to ``image_size`` x ``image_size``, then
    x / 127.5 - 1, i.e. the range [-1, 1]."""
    return {"kind": "images", "input_range": [-1.0, 1.0], "channels": 3, "size": [cfg.image_size, cfg.image_size],
            "resize": "bilinear"}


def export(run, model, feats, head, data) -> dict:
    """``artifacts_<dataset>/<version>``: images -> features, real_probability, damage_mask; and (after transfer)
    ``artifacts_<dataset>_classifier/<version>``: images -> probabilities, class_id. Both through
    :meth:`common.lifecycle.Run.export` (TF Serving layout, ``assets.extra/export.json``, re-run in a fresh
    process and compared with this one). ``model``, ``feats`` and ``head`` are undistributed
    (:func:`undistributed`). There is no ``anomaly_score`` output: the discriminator scores how *real* an image
    looks (``real_probability``) and where it looks damaged (``damage_mask``). Returns ``{model name: entry}``."""
    import numpy as np
    import tensorflow as tf

    from artifacts_tf.data import to_model_range
    from artifacts_tf.model import discriminator_serve_fn
    from common.export import Signature

    cfg = run.config
    shape = (cfg.image_size, cfg.image_size, 3)
    sample = np.asarray(to_model_range(data.test_x[:16], cfg.image_size))
    serve = discriminator_serve_fn(model.discriminator)
    out = {model_name(cfg): run.export(model_name(cfg), model.discriminator,
                                       {"serving_default": Signature(serve, shape, "images")},
                                       samples={"serving_default": sample}, preprocessing=preprocessing(cfg))}
    if head is not None:
        def classify(images):
            p = tf.nn.softmax(tf.cast(head(feats(images, training=False), training=False), tf.float32))
            return {"probabilities": p, "class_id": tf.argmax(p, axis=-1, output_type=tf.int32)}

        name = model_name(cfg) + "_classifier"
        out[name] = run.export(name, [feats, head], {"serving_default": Signature(classify, shape, "images")},
                               samples={"serving_default": sample}, preprocessing=preprocessing(cfg))
    return out


def undistributed(cfg, model, autoencoder):
    """``(model, autoencoder)`` as they are under the default strategy; under another, plain copies (built
    outside the strategy's scope) with the same weights, history buffer and RNG state, for what runs after the
    game on one device: the transfer protocols (their heads and fine-tuned copies are built outside the scope),
    Fig. 6 and the exports (Keras cannot export functions of mirrored variables)."""
    import tensorflow as tf

    from artifacts_tf.networks import Autoencoder

    if cfg.strategy == "default":
        return model, autoencoder
    with tf.distribute.get_strategy().scope():   # the default strategy
        ae = None
        if autoencoder is not None:
            ae = Autoencoder(cfg.image_size, 3, cfg.encoder_kernel, cfg.lrelu_slope, cfg.ae_output,
                             name="autoencoder")
            ae(tf.zeros((1, cfg.image_size, cfg.image_size, 3)))
            ae.set_weights(autoencoder.get_weights())
            ae.trainable = False
        copy = build_model(cfg, ae)
        copy.build_all()
        copy.set_weights(model.get_weights())
    return copy, ae


# --------------------------------------------------------------------------------------------- run
def run(config: ArtifactsConfig) -> dict:
    """Autoencoder stage -> game -> transfer (+ floors, Table 2 folds) -> Fig. 6 -> export, or (``--stage=
    autoencoder``) the autoencoder stage only, or (``--discriminator_dir``) the transfer of an earlier run's conv
    layers; through :func:`common.lifecycle.run_experiment` (a finished run is reused). Returns the metrics."""
    from common.lifecycle import run_experiment

    # The upstream runs' identities are part of this one's (they change when that run is retrained).
    if config.autoencoder_dir:
        config = dataclasses.replace(config, autoencoder_id=check_autoencoder_run(config.resolved(),
                                                                                  config.autoencoder_dir))
    if config.discriminator_dir:
        config = dataclasses.replace(config, discriminator_id=check_discriminator_run(config.resolved(),
                                                                                      config.discriminator_dir))
    return run_experiment(config, body)


def body(run) -> dict:
    """The lifecycle's body of :func:`run` (``run``: :class:`common.lifecycle.Run`)."""
    from common.run_identity import read_identity, save_frozen_weights
    from artifacts_tf.data import load
    from artifacts_tf.config import ABLATIONS

    cfg, workdir = run.config, run.workdir
    if cfg.discriminator_dir:
        return transfer_earlier_run(run)
    data = load(cfg)
    run.batch_size_for(len(data.unlabelled))
    print(f"Spot Artifacts {cfg.dataset} scale {cfg.scale} ablation {cfg.ablation}: {data.summary}; "
          f"{cfg.epochs} epochs of batch {cfg.batch_size}; strategy {cfg.strategy} ({run.replicas} replicas); "
          f"workdir {workdir}", flush=True)
    with run.timer("autoencoder"):
        autoencoder = pretrain_autoencoder(cfg, data, workdir, run.scope)
    if cfg.stage == "autoencoder":
        print(f"autoencoder stage done: reuse it with --autoencoder_dir={workdir}", flush=True)
        return {"method": "Learning to Spot Artifacts (autoencoder stage)", "dataset": cfg.dataset,
                "scale": cfg.scale, "seed": cfg.seed, "data": data.summary, "encoder_kernel": cfg.encoder_kernel,
                "autoencoder_seconds": run.records["autoencoder_seconds"]}
    with run.timer("game"):
        model, final_losses = train_game(cfg, data, autoencoder, workdir, run.scope, run.record_model)
    game_seconds = run.records["game_seconds"]
    if TRUNK_NAME not in ((read_identity(workdir) or {}).get("weights") or {}):  # recorded once the game is done
        save_frozen_weights(workdir, TRUNK_NAME, model.discriminator.trunk)  # for --discriminator_dir (Tables 3-5)
    metrics = {"method": "Learning to Spot Artifacts", "dataset": cfg.dataset, "scale": cfg.scale,
               "ablation": cfg.ablation, "row": ABLATIONS[cfg.ablation][0], "seed": cfg.seed, "data": data.summary,
               "model": cfg.model_kwargs(), "encoder_kernel": cfg.encoder_kernel, "final_losses": final_losses,
               "autoencoder_dir": cfg.autoencoder_dir or str(workdir), "autoencoder_id": cfg.autoencoder_id,
               "autoencoder_seconds": run.records["autoencoder_seconds"], "game_seconds": game_seconds,
               "game_images_per_second": len(data.unlabelled) * cfg.epochs / max(game_seconds, 1e-9)}
    model, autoencoder = undistributed(cfg, model, autoencoder)   # the rest runs on one device
    from artifacts_tf.monitor import read_trace, summarise_game

    trace = read_trace(workdir / "game_trace.jsonl")
    if trace:
        metrics["game_trace"] = trace
        metrics["game_gates"] = summarise_game(trace)
    ae_trace = read_trace(Path(cfg.autoencoder_dir or workdir) / AE_NAME / "trace.jsonl")
    if ae_trace:
        metrics["autoencoder_trace"] = ae_trace
    feats = head = None
    if cfg.transfer == "table1":
        metrics["transfer"], feats, head = transfer_table1(cfg, data, model, autoencoder)
    elif cfg.transfer == "probe":
        metrics["transfer"] = transfer_probe(cfg, data, model, autoencoder, workdir)
    elif cfg.transfer in ("voc07", "layerwise"):
        metrics["transfer"] = transfer_protocol(cfg, model.discriminator.trunk, workdir)
    if cfg.figures:
        metrics["figure"] = str(save_fig6(model, data, workdir / "figures" / "fig6.png",
                                          f"{ABLATIONS[cfg.ablation][0]} ({cfg.dataset}, {cfg.scale})"))
    if cfg.export_dir:
        export(run, model, feats, head, data)   # recorded by the lifecycle in metrics["export"]
    if cfg.transfer in ("table1", "probe"):
        print(f"results ({workdir / 'metrics.json'}): " + ", ".join(
            f"{k} {v['accuracy']:.2f}%" for k, v in metrics["transfer"].items()
            if isinstance(v, dict) and "accuracy" in v), flush=True)
    return metrics
