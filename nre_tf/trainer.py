"""Training procedures of NRE (library code: plain values in, models out; no flags).

* :func:`load_classification_split` -- the train / test images of a Table 1 / Table 3 dataset.
* :func:`train_autoencoder` -- the plain AE (module A, Section 3.1) and the Table 1 baselines (denoising,
  context, split-brain) and MagNet's reformer (Table 3), with weight snapshots at chosen epochs (Table 1 reports
  40 and 100 epochs from one run).
* :func:`make_lookup` -- N(.) and F(.) of Eq. 2-3 over the bank R_A(X_i): the k-means speed-up of Section 3.2
  or the exact search, both from ``nre_tf/neighbours.py``.
* :func:`train_nre` -- E_phi + D initialised from a trained AE, trained with Eq. 5 (Section 3.2).

Neighbour refresh schedule (README): A is frozen, so the bank R_A(X_i) and its k-means clustering are computed
ONCE; the queries R_A(X') change with E_phi + D, so N(X') and F(X') are looked up again at the start of every
``refresh_every``-th NRE epoch (default: every epoch) for all training samples.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from nre_tf import neighbours as cn
from common.errors import ConfigError, DataError
from common.training import epoch_batches, fit_resumable, num_batches
from nre_tf import networks
from nre_tf.config import auto_clusters
from nre_tf.model import (AutoEncoder, NeighbourBatches, NeighbourRefresh, NREModel, SplitBrainAE,
                          predict_batched)

log = logging.getLogger(__name__)

AE_KINDS = ("ae", "dae", "context", "splitbrain", "magnet")
# Denoising-AE noise (assumption: the paper gives none; ALOCC's std 0.155, reference notes 5.1).
DAE_NOISE_STD = 0.155
# MagNet reformer training (reference notes 5.4): Gaussian noise std 0.1, Adam lr 1e-3 (Keras default).
MAGNET_NOISE_STD = 0.1
MAGNET_LR = 1e-3
# MNIST training images of Tables 1 and 3 ("50,000 and 10,000 samples as training and testing data", Section 4.2).
MNIST_PAPER_TRAIN = 50_000


def load_classification_split(dataset: str, data_dir=None, n_train: int = 0, n_test: int = 0, seed: int = 0):
    """``(x_train, y_train, x_test, y_test)`` uint8 images / int64 labels for mnist, fashion_mnist or mnist5k.

    mnist5k has one split of 5,000 images (500 per class): a seeded stratified 80 / 20 split makes 4,000 training
    and 1,000 test images, each in a seeded random order. MNIST: the paper's "50,000 and 10,000 samples as
    training and testing data" (Section 4.2; also Table 3, Section 4.4) -- the first 50,000 images of the
    official training split (which 50,000 the paper does not say: assumption) and the 10,000 test images.
    ``n_train`` / ``n_test`` > 0 keep a seeded random subset of that many (quick scale).
    """
    from common.datasets import load_images

    if dataset in ("mnist5k", "mnist_5k"):
        s = load_images("mnist5k", "all", data_dir)
        rng = np.random.default_rng([seed, 5000])
        test_idx = np.concatenate([rng.permutation(np.flatnonzero(s.y == c))[: int(round(0.2 * np.sum(s.y == c)))]
                                   for c in np.unique(s.y)])
        mask = np.zeros(len(s.y), bool)
        mask[test_idx] = True
        # The file is sorted by class: shuffle (seeded) so that "the first k images" are a random sample.
        tr_idx, te_idx = rng.permutation(np.flatnonzero(~mask)), rng.permutation(np.flatnonzero(mask))
        xtr, ytr, xte, yte = s.x[tr_idx], s.y[tr_idx], s.x[te_idx], s.y[te_idx]
    elif dataset in ("mnist", "fashion_mnist"):
        tr, te = load_images(dataset, "train", data_dir), load_images(dataset, "test", data_dir)
        xtr, ytr, xte, yte = tr.x, tr.y, te.x, te.y
        if dataset == "mnist":
            xtr, ytr = xtr[:MNIST_PAPER_TRAIN], ytr[:MNIST_PAPER_TRAIN]
    else:
        raise ConfigError(f"dataset {dataset!r} is not a Table 1 / Table 3 dataset; use mnist, mnist5k or "
                          "fashion_mnist")
    rng = np.random.default_rng([seed, 1])
    if n_train and n_train < len(xtr):
        i = np.sort(rng.choice(len(xtr), n_train, replace=False))
        xtr, ytr = xtr[i], ytr[i]
    if n_test and n_test < len(xte):
        i = np.sort(rng.choice(len(xte), n_test, replace=False))
        xte, yte = xte[i], yte[i]
    return xtr, ytr.astype(np.int64), xte, yte.astype(np.int64)


class _Snapshot(keras.callbacks.Callback):
    """Save the sub-networks' weights to ``<workdir>/epoch<E>_<name>.weights.h5`` after the listed epochs."""

    def __init__(self, nets: dict, epochs, workdir: Path):
        super().__init__()
        self.nets, self.epochs, self.workdir = nets, set(int(e) for e in epochs), Path(workdir)

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 in self.epochs:
            for name, net in self.nets.items():
                net.save_weights(str(self.workdir / f"epoch{epoch + 1}_{name}.weights.h5"))


def build_autoencoder_model(kind: str, input_shape, latent_dim: int = 128, seed: int = 0, arch: str = "conv"):
    """An uncompiled Keras model for AE ``kind`` and its named sub-networks ``{name: keras.Model}``.

    ``arch`` picks the networks of the plain / denoising / context AE (``conv`` or ``alexnet``); ``magnet``
    always uses MagNet's reformer architecture."""
    if kind == "splitbrain":
        h, w, c = input_shape
        half = (h, w // 2, c)
        nets = {}
        for side in ("l", "r"):
            e, d = networks.build_autoencoder("conv", half, max(1, latent_dim // 2))
            e.name, d.name = f"enc_{side}", f"dec_{side}"
            nets[f"enc_{side}"], nets[f"dec_{side}"] = e, d
        return SplitBrainAE(nets["enc_l"], nets["dec_l"], nets["enc_r"], nets["dec_r"]), nets
    if kind not in AE_KINDS:
        raise ConfigError(f"unknown auto-encoder kind {kind!r}; choose one of {', '.join(AE_KINDS)}")
    arch = "magnet" if kind == "magnet" else arch
    enc, dec = networks.build_autoencoder(arch, input_shape, latent_dim)
    corruption = {"ae": "none", "dae": "gaussian", "context": "block", "magnet": "gaussian"}[kind]
    noise = MAGNET_NOISE_STD if kind == "magnet" else DAE_NOISE_STD
    return AutoEncoder(enc, dec, corruption=corruption, noise_std=noise, seed=seed), {"encoder": enc,
                                                                                    "decoder": dec}


def train_autoencoder(kind: str, x, epochs: int, batch_size: int, workdir, lr: float = 1e-4,
                      latent_dim: int = 128, seed: int = 0, snapshot_epochs=(), resume: bool = True,
                      arch: str = "conv", strategy=None, init: dict | None = None, callbacks=(), stateful=()):
    """Train AE ``kind`` on uint8/float images ``x`` for ``epochs``; returns ``(model, nets, seconds)``.

    ``snapshot_epochs``: epochs after which the sub-network weights are saved (see :func:`load_snapshot`).
    ``lr``: Adam's learning rate (MagNet's reformer: pass ``MAGNET_LR``, its Keras default). ``strategy``: what
    holds the model: a ``tf.distribute`` strategy or a :class:`common.lifecycle.Run` (anything with
    ``.scope()``; default: the current strategy). ``init``: ``{name: network}`` whose weights the new
    sub-networks start from (e.g. encoder A's AE for Table 1's control row); ``callbacks`` / ``stateful``:
    extra Keras callbacks and the checkpointed ones among them (:func:`common.training.fit_resumable`).
    """
    from nre_tf.model import to_float

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    with (strategy or tf.distribute.get_strategy()).scope():
        model, nets = build_autoencoder_model(kind, tuple(x.shape[1:]), latent_dim, seed, arch)
        model.compile(optimizer=keras.optimizers.Adam(lr))
    xf = to_float(x)
    model(xf[:2])  # build
    for name, net in (init or {}).items():
        nets[name].set_weights(net.get_weights())
    t0 = time.perf_counter()
    # Exact resume (common/training.py): epoch e's order depends on (seed, e) only; the checkpoint holds the
    # optimizer and the corruption's RNG state.
    fit_resumable(model, lambda first: epoch_batches(xf, batch_size, seed, first, epochs), epochs=epochs,
                  workdir=workdir, steps_per_epoch=num_batches(len(xf), batch_size),
                  callbacks=[*callbacks, _Snapshot(nets, list(snapshot_epochs) + [epochs], workdir)],
                  stateful=stateful, resume=resume, tensorboard=False)
    return model, nets, time.perf_counter() - t0


def load_snapshot(nets: dict, workdir, epoch: int) -> dict:
    """Load the weights saved by :func:`train_autoencoder` after ``epoch`` into ``nets`` (in place)."""
    for name, net in nets.items():
        path = Path(workdir) / f"epoch{epoch}_{name}.weights.h5"
        if not path.exists():
            raise DataError(f"missing snapshot {path}; train the auto-encoder for at least {epoch} epochs")
        net.load_weights(str(path))
    return nets


def make_lookup(bank, T: int, clusters: int = 0, exact: bool = False, seed: int = 0):
    """``lookup(queries, query_ids) -> (near_idx, far_idx)`` over ``bank`` (the R_A codes of the training set).

    ``query_ids`` are the training indices of the queries, excluded from their own neighbours (Eq. 2-3:
    X_i != X', read as "not the sample X' was reconstructed from"). The k-means model is fitted once here.
    Returns ``(lookup, info)`` with the fit time and K.
    """
    bank = np.asarray(bank, np.float32)
    if exact:
        def lookup(q, ids):
            return cn.brute_force_neighbours(bank, q, T, exclude=ids)
        return lookup, {"lookup": "exact", "clusters": 0, "fit_seconds": 0.0}
    k = clusters or auto_clusters(len(bank))
    t0 = time.perf_counter()
    km = cn.KMeansNeighbours(n_clusters=k, T=T, seed=seed).fit(bank)
    fit_s = time.perf_counter() - t0

    def lookup(q, ids):
        return km.query(q, exclude=ids)
    return lookup, {"lookup": "kmeans", "clusters": k, "fit_seconds": fit_s, "kmeans": km}


def train_nre(encoder, decoder, sim_encoder, x, lambdas, T: int, epochs: int, batch_size: int, workdir,
              lr: float = 1e-4, clusters: int = 0, exact: bool = False, refresh_every: int = 1, seed: int = 0,
              resume: bool = True, strategy=None, labels=None, snapshot_epochs=()):
    """Section 3.2: train copies of (encoder, decoder) with Eq. 5 in the space of the frozen ``sim_encoder``.

    ``encoder`` / ``decoder`` are copied (the trained AE stays untouched) and become E_phi and D;
    ``sim_encoder`` (A) is copied and frozen. Returns ``(nre_model, info)``; ``info`` holds the lookup
    kind, K, the k-means fit time, the time of every neighbour refresh and, with ``labels`` (the training
    labels, a diagnostic only: they never enter the loss), the same-class rates of N(X') and F(X') at every
    refresh and after the last epoch (:mod:`nre_tf.gates`). ``snapshot_epochs``: epochs after which E_phi and
    D are saved (``<workdir>/epoch<E>_encoder|decoder.weights.h5``, :func:`load_snapshot`). ``strategy``: as in
    :func:`train_autoencoder`.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    with (strategy or tf.distribute.get_strategy()).scope():
        enc, dec = networks.clone_autoencoder(encoder, decoder)
        sim = keras.models.clone_model(sim_encoder)
        sim.set_weights(sim_encoder.get_weights())
        model = NREModel(enc, dec, sim, lambdas=lambdas)
        model.compile(optimizer=keras.optimizers.Adam(lr))
    # The bank R_A(X_i) of all training samples: fixed, A is frozen.
    bank = predict_batched(sim, x, 256)
    if len(bank) < T + 2:
        raise ConfigError(f"T={T} needs at least {T + 2} training samples, got {len(bank)}")
    lookup, info = make_lookup(bank, T, clusters, exact, seed)
    placeholder = np.zeros((len(x), T), np.int64)  # replaced by the first refresh (on_train_begin)
    data = NeighbourBatches(x, bank, placeholder, placeholder, batch_size, seed=seed)
    refresh = NeighbourRefresh(data, lookup, every=refresh_every, labels=labels)
    model(np.zeros((2, *x.shape[1:]), np.float32))  # build before fit / export
    t0 = time.perf_counter()
    # The refresh's neighbour indices are part of the checkpoint, so a run resumed between two refreshes
    # (refresh_every > 1) trains on the same neighbours as an uninterrupted one.
    snap = _Snapshot({"encoder": model.encoder, "decoder": model.decoder}, snapshot_epochs, workdir)
    fit_resumable(model, data, epochs=epochs, workdir=workdir, callbacks=[refresh, snap], stateful=[refresh],
                  resume=resume, tensorboard=False)
    info = {k: v for k, v in info.items() if k != "kmeans"}
    info.update(train_seconds=time.perf_counter() - t0, refresh_seconds=list(refresh.seconds))
    if labels is not None:
        from nre_tf.gates import neighbour_rates

        final = neighbour_rates(labels, *lookup(refresh.queries(model), np.arange(len(x))))
        info.update(neighbour_rates=list(refresh.rates), neighbour_rates_final=final)
    return model, info


def encode(model, x, batch_size: int = 256) -> np.ndarray:
    """The representation E(X) of any of the models above (``encode`` method), as float32 (N, d)."""
    return predict_batched(model.encode, x, batch_size).reshape(len(x), -1)


def reconstruct(model, x, batch_size: int = 256) -> np.ndarray:
    """D(E(X)) as float32 in [0, 1]."""
    return predict_batched(model, x, batch_size)


def undistributed_copy(nre: NREModel) -> NREModel:
    """An :class:`NREModel` with the weights of ``nre`` on plain variables, for the export of a model trained
    under ``tf.distribute``; call it outside the strategy's scope."""
    enc, dec = networks.clone_autoencoder(nre.encoder, nre.decoder)
    sim = keras.models.clone_model(nre.sim_encoder)
    sim.set_weights(nre.sim_encoder.get_weights())
    copy = NREModel(enc, dec, sim, lambdas=nre.lambdas)
    copy(np.zeros((2, *nre.encoder.input_shape[1:]), np.float32))
    return copy


def last_loss(workdir) -> float | None:
    """The last epoch's training loss in ``<workdir>/log.csv`` (written by ``common.training.fit_resumable``)."""
    import csv

    path = Path(workdir) / "log.csv"
    if not path.is_file():
        return None
    with path.open() as f:
        rows = list(csv.DictReader(f))
    return float(rows[-1]["loss"]) if rows and rows[-1].get("loss") else None
