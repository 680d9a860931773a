"""Keras models of NRE: the plain auto-encoder (module A and the starting point of E_phi + D) and the NRE model.

How the neighbours reach the train step (design choice, documented in the README): the similarity space R_A is
the frozen encoder A of a trained plain auto-encoder, so the *bank* ``R_A(X_i)`` of all training samples never
changes during NRE training and is computed once. Before an epoch (every ``refresh_every`` epochs, see
:class:`NeighbourRefresh`) the current ``X' = D(E_phi(X))`` of every training sample is encoded by A and the
indices of its T nearest / T farthest bank entries are looked up (Eq. 2-3, in ``nre_tf/neighbours.py``). The
data pipeline (:class:`NeighbourBatches`) then yields ``(x, near_latents, far_latents)`` batches, the bank rows
of those indices, shapes (B, H, W, C), (B, T, d), (B, T, d). ``train_step`` computes ``R_A(X)`` and
``R_A(X')`` with the frozen A and the loss of Eq. 5 in R_A against the stored neighbour latents; gradients flow
through A (frozen) into D and E_phi.

Training steps: every model here is a one-player :class:`common.multiplayer.MultiPlayerModel` (the player is
the trained networks, with the optimizer given to ``compile``): losses in float32 under mixed precision, loss
scaling under ``mixed_float16``, and per-replica loss scaling / metric aggregation under a ``tf.distribute``
strategy come from there.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from common.multiplayer import MultiPlayerModel, Player
from nre_tf import losses


def _f32(x):
    return tf.cast(x, tf.float32)


class _OnePlayerModel(MultiPlayerModel):
    """A model whose networks ``trained_networks()`` are trained by one optimizer on ``outputs["loss"]``."""

    player_name = "model"

    def compile(self, optimizer, **kwargs):
        """``optimizer`` trains ``trained_networks()`` (wrapped for loss scaling under ``mixed_float16``)."""
        self.compile_players([Player(self.player_name, self.trained_networks, optimizer,
                                     lambda out: out["loss"])], **kwargs)
        self.optimizer = self.players[0].optimizer

    def trained_networks(self) -> list:
        raise NotImplementedError


class AutoEncoder(_OnePlayerModel):
    """Reconstruction auto-encoder ``D(E(corrupt(X)))`` trained with a pixel MSE.

    ``corruption``:
      * ``none`` -- the plain AE of Hinton & Salakhutdinov [20] (Table 1 "AE"; module A of Section 3.1; the
        initialisation of E_phi + D in Section 3.2).
      * ``gaussian`` -- denoising AE [57] (Table 1 "DAE") and MagNet's reformer training (reference notes 5.4):
        additive Gaussian noise of std ``noise_std``, clipped to [0, 1], clean target.
      * ``block`` -- context encoder [42] (Table 1 "Context AE"): a random square block of side ``block_frac`` x
        the image side is set to zero and the loss is the MSE *inside the block only* (Pathak et al.'s masked
        reconstruction loss; their adversarial term is not used -- assumption).
    """

    def __init__(self, encoder, decoder, corruption: str = "none", noise_std: float = 0.1,
                 block_frac: float = 0.5, seed: int = 0, **kw):
        super().__init__(metric_names=("loss",), **kw)
        if corruption not in ("none", "gaussian", "block"):
            raise ValueError(f"unknown corruption {corruption!r}")
        self.encoder, self.decoder = encoder, decoder
        self.corruption, self.noise_std, self.block_frac = corruption, float(noise_std), float(block_frac)
        self.seed_gen = keras.random.SeedGenerator(seed)

    def trained_networks(self) -> list:
        return [self.encoder, self.decoder]

    def call(self, x, training=False):
        return self.decoder(self.encoder(x, training=training), training=training)

    def encode(self, x, training=False):
        return self.encoder(x, training=training)

    def _block_mask(self, x):
        """1 inside one random square block per image, 0 elsewhere; shape (B, H, W, 1)."""
        shape = tf.shape(x)
        b, h, w = shape[0], shape[1], shape[2]
        side_h = tf.cast(tf.round(tf.cast(h, tf.float32) * self.block_frac), tf.int32)
        side_w = tf.cast(tf.round(tf.cast(w, tf.float32) * self.block_frac), tf.int32)
        top = keras.random.randint((b, 1), 0, h - side_h + 1, seed=self.seed_gen)
        left = keras.random.randint((b, 1), 0, w - side_w + 1, seed=self.seed_gen)
        rows = tf.range(h)[None, :]
        cols = tf.range(w)[None, :]
        in_r = tf.cast((rows >= top) & (rows < top + side_h), tf.float32)  # (B, H)
        in_c = tf.cast((cols >= left) & (cols < left + side_w), tf.float32)  # (B, W)
        return (in_r[:, :, None] * in_c[:, None, :])[..., None]

    def compute_outputs(self, data, training=False):
        """Corrupt, reconstruct and the pixel MSE (float32; inside the block only for ``block``)."""
        x = _f32(data[0] if isinstance(data, (tuple, list)) else data)
        mask = None
        if self.corruption == "gaussian":
            noise = keras.random.normal(tf.shape(x), stddev=self.noise_std, seed=self.seed_gen)
            x_in = tf.clip_by_value(x + noise, 0.0, 1.0)
        elif self.corruption == "block":
            mask = self._block_mask(x)
            x_in = x * (1.0 - mask)
        else:
            x_in = x
        sq = tf.square(x - _f32(self(x_in, training=training)))
        if mask is None:
            loss = tf.reduce_mean(sq)
        else:  # Pathak et al.: reconstruction loss only on the dropped region
            loss = tf.reduce_sum(sq * mask) / tf.maximum(
                tf.reduce_sum(mask) * tf.cast(tf.shape(x)[-1], tf.float32), 1.0)
        return {"loss": loss}


class SplitBrainAE(_OnePlayerModel):
    """Split-brain auto-encoder [64] adapted to one-channel images (assumption, documented in the README).

    Zhang et al. split the *channels* (L vs ab) and let each half-network predict the other half. A grey digit
    has one channel, so the image is split into its left and right halves instead: sub-network 1 sees the left
    half and predicts the right one, sub-network 2 the reverse; the representation is the concatenation of the
    two encoders' latents (each of half the latent size, so the total size equals the plain AE's). Regression
    (MSE) losses, not Zhang's classification losses.
    """

    def __init__(self, enc_l, dec_l, enc_r, dec_r, **kw):
        super().__init__(metric_names=("loss",), **kw)
        self.enc_l, self.dec_l, self.enc_r, self.dec_r = enc_l, dec_l, enc_r, dec_r

    def trained_networks(self) -> list:
        return [self.enc_l, self.dec_l, self.enc_r, self.dec_r]

    @staticmethod
    def halves(x):
        w = x.shape[2]
        return x[:, :, : w // 2], x[:, :, w // 2:]

    def call(self, x, training=False):
        left, right = self.halves(x)
        return tf.concat([self.dec_r(self.enc_r(right, training=training), training=training),
                          self.dec_l(self.enc_l(left, training=training), training=training)], axis=2)

    def encode(self, x, training=False):
        left, right = self.halves(x)
        return tf.concat([self.enc_l(left, training=training), self.enc_r(right, training=training)], axis=-1)

    def compute_outputs(self, data, training=False):
        x = _f32(data[0] if isinstance(data, (tuple, list)) else data)
        left, right = self.halves(x)
        pred_right = _f32(self.dec_l(self.enc_l(left, training=training), training=training))
        pred_left = _f32(self.dec_r(self.enc_r(right, training=training), training=training))
        return {"loss": 0.5 * (tf.reduce_mean(tf.square(right - pred_right)) +
                               tf.reduce_mean(tf.square(left - pred_left)))}


class NREModel(_OnePlayerModel):
    """E_phi + D trained with Eq. 5 in the similarity space R_A of a frozen encoder A (Sections 3.1-3.2).

    Args:
      encoder, decoder: E_phi and D, normally copies of a trained plain auto-encoder (Section 3.2: "the weights
        of these networks are initialized based on an optimized traditional encoder-decoder network").
      sim_encoder: A, the frozen encoder of the plain auto-encoder; its output (ReLU on top) is R_A.
      lambdas: (lambda1, lambda2, lambda3), summing to 1.
    ``train_step`` expects ``(x, near_latents (B,T,d), far_latents (B,T,d))`` (see module docstring).
    """

    def __init__(self, encoder, decoder, sim_encoder, lambdas=(0.5, 0.2, 0.3), **kw):
        super().__init__(metric_names=("loss", "d_x_xrec", "d_xrec_near", "s_xrec_far", "pixel_mse"), **kw)
        self.encoder, self.decoder, self.sim_encoder = encoder, decoder, sim_encoder
        self.sim_encoder.trainable = False
        self.lambdas = losses.check_lambdas(lambdas)

    def trained_networks(self) -> list:
        """E_phi and D (A is frozen: not a player)."""
        return [self.encoder, self.decoder]

    def call(self, x, training=False):
        """X~ = D(E_phi(X))."""
        return self.decoder(self.encoder(x, training=training), training=training)

    def encode(self, x, training=False):
        """The learned representation E_phi(X)."""
        return self.encoder(x, training=training)

    def sim_latent(self, x):
        """R_A(x) with the frozen A (inference mode)."""
        return self.sim_encoder(x, training=False)

    def compute_nre_loss(self, x, near, far, training=False):
        """Eq. 5 on one batch; returns (loss, (t1, t2, t3), x_rec)."""
        x = tf.cast(x, tf.float32)
        x_rec = self(x, training=training)
        ra_x = self.sim_latent(x)
        ra_xp = self.sim_latent(x_rec)
        loss, terms = losses.nre_loss(ra_x, ra_xp, tf.cast(near, tf.float32), tf.cast(far, tf.float32),
                                      self.lambdas)
        return loss, terms, x_rec

    def compute_outputs(self, data, training=False):
        """Eq. 5 on one ``(x, near_latents, far_latents)`` batch, its three terms and the pixel MSE (float32)."""
        x, near, far = data
        x = _f32(x)
        loss, (t1, t2, t3), x_rec = self.compute_nre_loss(x, near, far, training=training)
        return {"loss": loss, "d_x_xrec": t1, "d_xrec_near": t2, "s_xrec_far": t3,
                "pixel_mse": tf.reduce_mean(tf.square(x - _f32(x_rec)))}

    def serve(self, images):
        """The exported signature: images -> {anomaly_score, latent, reconstruction} (Section 4.5 score)."""
        x_rec = self(images, training=False)
        return {"anomaly_score": losses.reconstruction_error(images, x_rec),
                "latent": _f32(self.encode(images, training=False)),
                "reconstruction": _f32(x_rec)}


def predict_batched(fn, x, batch_size: int = 256) -> np.ndarray:
    """Apply ``fn`` (a Keras model or callable on float32 batches) to a uint8/float array in batches."""
    outs = []
    for i in range(0, len(x), batch_size):
        outs.append(np.asarray(fn(to_float(x[i:i + batch_size]), training=False)))
    return np.concatenate(outs, axis=0)


def to_float(x) -> np.ndarray:
    """uint8 [0, 255] -> float32 [0, 1]; float input is passed through as float32."""
    x = np.asarray(x)
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)


class NeighbourBatches(keras.utils.PyDataset):
    """Batches ``(x, bank[near_idx], bank[far_idx])`` for :meth:`NREModel.train_step`.

    ``near_idx`` / ``far_idx`` (N, T) are replaced in place by :class:`NeighbourRefresh`; epoch ``e`` visits
    the samples in the order of a permutation of ``(seed, e)`` only (set by :meth:`set_epoch`), so a resumed run
    sees the batches of an uninterrupted one.
    """

    def __init__(self, x, bank, near_idx, far_idx, batch_size: int, seed: int = 0, shuffle: bool = True):
        super().__init__()
        self.x, self.bank = x, np.asarray(bank, np.float32)
        self.near_idx, self.far_idx = np.asarray(near_idx), np.asarray(far_idx)
        self.batch_size, self.shuffle, self.seed = int(batch_size), shuffle, int(seed)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.order = (np.random.default_rng([self.seed, int(epoch)]).permutation(len(self.x)) if self.shuffle
                      else np.arange(len(self.x)))

    def __len__(self):
        return int(np.ceil(len(self.x) / self.batch_size))

    def __getitem__(self, i):
        idx = np.sort(self.order[i * self.batch_size:(i + 1) * self.batch_size])
        return (to_float(self.x[idx]), self.bank[self.near_idx[idx]], self.bank[self.far_idx[idx]])


class NeighbourRefresh(keras.callbacks.Callback):
    """Recompute N(X') and F(X') (Eq. 2-3) for every training sample every ``every`` epochs, and set the
    epoch's sample order of ``data``.

    ``lookup(query_latents, query_ids) -> (near_idx, far_idx)`` is the neighbour search (k-means or exact).
    The refresh times are appended to ``self.seconds``. The current indices are the callback's checkpoint
    state (``get_state`` / ``set_state``), so a run resumed between two refreshes uses the same neighbours.
    """

    def __init__(self, data: NeighbourBatches, lookup, every: int = 1, batch_size: int = 256, labels=None):
        super().__init__()
        self.data, self.lookup, self.every, self.batch_size = data, lookup, max(1, int(every)), batch_size
        self.labels = None if labels is None else np.asarray(labels)
        self.seconds: list[float] = []
        self.rates: list[dict] = []  # same-class rates of N(X') / F(X') per refresh (with ``labels``)
        self._have_indices = False

    def queries(self, model=None) -> np.ndarray:
        """R_A(X') = A(D(E_phi(X))) of every training sample with the current E_phi + D of ``model`` (default:
        the model being trained; Eq. 2-3 queries)."""
        model = model or self.model
        return predict_batched(lambda xb, training=False: model.sim_latent(model(xb, training=False)),
                               self.data.x, self.batch_size)

    def refresh(self):
        import time

        t0 = time.perf_counter()
        q = self.queries()
        near, far = self.lookup(q, np.arange(len(q)))
        self.data.near_idx, self.data.far_idx = np.asarray(near), np.asarray(far)
        self._have_indices = True
        self.seconds.append(time.perf_counter() - t0)
        if self.labels is not None:  # diagnostic only: labels never reach the loss
            from nre_tf.gates import neighbour_rates

            self.rates.append(neighbour_rates(self.labels, self.data.near_idx, self.data.far_idx))

    def get_state(self) -> dict:
        return {"near_idx": np.asarray(self.data.near_idx), "far_idx": np.asarray(self.data.far_idx),
                "rates": list(self.rates)}

    def set_state(self, state: dict) -> None:
        self.data.near_idx, self.data.far_idx = np.asarray(state["near_idx"]), np.asarray(state["far_idx"])
        self.rates = list(state.get("rates", []))
        self._have_indices = True

    def on_epoch_begin(self, epoch, logs=None):
        self.data.set_epoch(epoch)
        if not self._have_indices or epoch % self.every == 0:
            self.refresh()
