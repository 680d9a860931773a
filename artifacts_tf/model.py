"""The adversarial game of Section 4.3: the repair network R against the discriminator C, the autoencoder frozen.

``SpotArtifacts`` is a :class:`common.multiplayer.MultiPlayerModel` with two players, the discriminator C and the
repair network R (``compile(d_optimizer, g_optimizer)`` declares them with ``compile_players``): one optimizer and
one ``GradientTape`` per player, both updated from the same forward pass (simultaneous updates, as in the authors'
code, reference notes 2.7):

* C minimises  -[log C(D(phi(x))) + log(1 - C(x_hat))]  (Eq. 4)  +  mask_loss_weight * L_mask (Eq. 5)  + L2
* R minimises  -log C(x_hat)  (Eq. 4 trained "via adversarial training [14]" in [14]'s non-saturating form, which
  is also the authors' flipped-label cross-entropy; ``generator_loss="minimax"`` is Eq. 4 literally, log(1 - C);
  see :func:`losses.repair_class_loss` and the code's variant)  + repair_rec_weight * kept-region MSE (code only)  + L2

with x_hat = D-hat(phi_hat(x)) the damaged-and-repaired image (Eq. 1, 2) and D(phi(x)) the autoencoded image used
as the real example (Sec. 4.2). The history buffer of corrupted examples (Sec. 5.1 (j), after Shrivastava et al.)
replaces half of every corrupted minibatch that C sees by earlier corrupted examples; R's loss uses only the
fresh half (the buffer examples carry no gradient).

The ablations of Table 1 are constructor arguments (:data:`ABLATIONS` maps the letters to them). No optimizer
update is wrapped in a runtime condition: a model without a repair network ((k)) simply has no R player, fixed
when the model is built.

Losses are float32 means over the local batch (:meth:`SpotArtifacts.compute_outputs`); the shared base class
weights them by the replica's share of the global batch, wraps the optimizers for loss scaling under
``mixed_float16`` and adds R's L2 terms (C's L2 terms are part of ``d_loss``'s player loss, since C's player trains
a list of variables: the mask head is left out for (g)).
"""
from __future__ import annotations

import keras
import tensorflow as tf

from artifacts_tf import losses
from artifacts_tf.config import ABLATIONS  # noqa: F401 (re-exported: the Table 1 rows)
from common.multiplayer import MultiPlayerModel, Player
from artifacts_tf.networks import (PAPER_LRELU_SLOPE, Autoencoder, Discriminator, GANGenerator, RepairNetwork,
                                   damage, sample_keep_mask, upsample_mask)

METRICS = ("d_loss", "g_loss", "d_class_loss", "mask_loss", "real_accuracy", "fake_accuracy", "mask_accuracy")
D_PLAYER, G_PLAYER = "discriminator", "repair"


class SpotArtifacts(MultiPlayerModel):
    """Damage & repair generator + discriminator C; ``autoencoder`` is pre-trained and frozen here.

    Arguments (baseline values = the paper's; letters = Table 1 ablations):
      drop_rate theta (0.5; (c)-(f)), real_source "autoencoded" | "input" ((a), (l)), repair "distributed" |
      "local" ((b)) | "none" ((k)), gated ((i)), mask_prediction ((g)), history ((j)), generator
      "damage_repair" | "gan" ((l)), generator_loss (see :mod:`losses`), mask_loss_weight (paper 1, code 0.1),
      mask_on_real (code: also predict an all-kept mask on real images), repair_rec_weight (code 30, paper 0).
    """

    def __init__(self, autoencoder: Autoencoder | None, image_size: int = 96, channels: int = 3,
                 drop_rate: float = 0.5, real_source: str = "autoencoded", repair: str = "distributed",
                 gated: bool = True, mask_prediction: bool = True, history: bool = True, history_size: int = 512,
                 generator: str = "damage_repair", generator_loss: str = "non_saturating", mask_loss_weight: float = 1.0,
                 mask_on_real: bool = False, repair_rec_weight: float = 0.0, repair_input_bn: bool = True,
                 fc6_bn: bool = False, dropout_rate: float = 0.5, lrelu_slope: float = PAPER_LRELU_SLOPE,
                 ae_output: str = "lrelu", z_dim: int = 128, seed: int = 0, **kwargs):
        super().__init__(metric_names=METRICS, **kwargs)
        if not 0.0 < drop_rate < 1.0:
            raise ValueError(f"drop_rate theta must be in (0, 1), got {drop_rate}")
        if real_source not in ("autoencoded", "input"):
            raise ValueError(f"real_source must be 'autoencoded' or 'input', got {real_source!r}")
        if repair not in ("distributed", "local", "none"):
            raise ValueError(f"repair must be 'distributed', 'local' or 'none', got {repair!r}")
        if generator not in ("damage_repair", "gan"):
            raise ValueError(f"generator must be 'damage_repair' or 'gan', got {generator!r}")
        if generator_loss not in losses.GENERATOR_LOSSES:
            raise ValueError(f"generator_loss must be one of {losses.GENERATOR_LOSSES}, got {generator_loss!r}")
        if generator == "damage_repair" and autoencoder is None:
            raise ValueError("damage & repair needs the pre-trained autoencoder")
        self.image_size, self.channels = int(image_size), int(channels)
        self.drop_rate, self.real_source, self.generator_kind = float(drop_rate), real_source, generator
        self.mask_prediction, self.use_history = bool(mask_prediction), bool(history)
        self.generator_loss, self.mask_loss_weight = generator_loss, float(mask_loss_weight)
        self.mask_on_real, self.repair_rec_weight = bool(mask_on_real), float(repair_rec_weight)
        self.grid = self.image_size // 16
        self.autoencoder = autoencoder
        if autoencoder is not None:
            autoencoder.trainable = False
        self.repair_net = None
        self.gan_generator = None
        if generator == "gan":
            self.gan_generator = GANGenerator(image_size, channels, z_dim, lrelu_slope, ae_output, name="gan_generator")
        elif repair != "none":
            self.repair_net = RepairNetwork(image_size, repair, gated, repair_input_bn, lrelu_slope, name="repair")
        self.discriminator = Discriminator(image_size, channels, fc6_bn=fc6_bn, mask_head=True,
                                           dropout_rate=dropout_rate, name="discriminator")
        self.z_dim = int(z_dim)
        self.seed_generator = keras.random.SeedGenerator(seed, name="damage_seed")
        self.history_size = int(history_size) if history else 0
        if self.use_history:
            if self.history_size < 1:
                raise ValueError(f"history_size must be >= 1, got {history_size}")
            self.hist_images = self.add_weight(shape=(self.history_size, image_size, image_size, channels),
                                               initializer="zeros", trainable=False, name="history_images")
            self.hist_keep = self.add_weight(shape=(self.history_size, self.grid, self.grid, 1),
                                             initializer="ones", trainable=False, name="history_keep")
            self.hist_count = self.add_weight(shape=(), initializer="zeros", dtype="int32", trainable=False,
                                              name="history_count")

    # ------------------------------------------------------------------------------------------- setup
    @property
    def generator_network(self):
        return self.gan_generator if self.gan_generator is not None else self.repair_net

    @property
    def has_generator_player(self) -> bool:
        return self.generator_network is not None

    def build(self, input_shape=None):
        """Sub-networks create their variables when first called (see :meth:`build_all`)."""
        self.built = True

    def build_all(self) -> None:
        """Create every variable (one inference pass on a zero batch)."""
        self(tf.zeros((2, self.image_size, self.image_size, self.channels)), training=False)

    def d_variables(self) -> list:
        skip = {id(v) for v in self.discriminator.head_variables("mask")} if not self.mask_prediction else set()
        return [v for v in self.discriminator.trainable_variables if id(v) not in skip]

    def g_variables(self) -> list:
        return list(self.generator_network.trainable_variables) if self.has_generator_player else []

    def compile(self, d_optimizer, g_optimizer=None, **kwargs):
        """Declare the players (:meth:`compile_players`): C minimises ``d_loss`` + its L2 terms over
        :meth:`d_variables`, R (or G for (l)) minimises ``g_loss`` (+ its L2 terms). ``g_optimizer`` may be None
        only for ablation (k), which has no R player. ``kwargs`` (``jit_compile`` ...) go to ``keras.Model``."""
        self.build_all()
        players = [Player(D_PLAYER, self.d_variables, d_optimizer, lambda out: out["d_loss"] + out["d_l2"])]
        if self.has_generator_player:
            if g_optimizer is None:
                raise ValueError("this model trains a generator player and needs a g_optimizer")
            players.append(Player(G_PLAYER, self.generator_network, g_optimizer, lambda out: out["g_loss"]))
        self.compile_players(players, **kwargs)
        # Named attributes so that checkpoints (model.save_weights) hold both optimizers' state.
        self.d_optimizer = self.player(D_PLAYER).optimizer
        self.g_optimizer = self.player(G_PLAYER).optimizer if self.has_generator_player else None

    # ----------------------------------------------------------------------------------------- forward
    # Randomness under a strategy with several replicas: every replica holds the same seed state, so a draw
    # from ``self.seed_generator`` would give every replica the same damage masks (and the same buffer slots).
    # Per-replica draws fold the replica id into the drawn seed; draws that must agree on every replica (the
    # buffer slots written, see _mix_history) do not. With one replica the draws are Keras's, unchanged.
    @staticmethod
    def _replica_context():
        """The replica context when the step runs on more than one replica, else None."""
        ctx = tf.distribute.get_replica_context()
        return ctx if ctx is not None and ctx.num_replicas_in_sync > 1 else None

    def _replica_seed(self, per_replica: bool):
        ctx = self._replica_context()
        seed = tf.cast(tf.math.floormod(self.seed_generator.next(), tf.int32.max - 1), tf.int32)
        if per_replica:
            seed = tf.random.experimental.stateless_fold_in(seed, ctx.replica_id_in_sync_group)
        return seed

    def _uniform(self, shape, per_replica: bool = True):
        if self._replica_context() is None:
            return keras.random.uniform(shape, seed=self.seed_generator)
        return tf.random.stateless_uniform(shape, seed=self._replica_seed(per_replica))

    def _normal(self, shape):
        if self._replica_context() is None:
            return keras.random.normal(shape, seed=self.seed_generator)
        return tf.random.stateless_normal(shape, seed=self._replica_seed(True))

    def sample_keep(self, batch_size):
        if self._replica_context() is None:
            return sample_keep_mask(batch_size, self.grid, self.drop_rate, seed=self.seed_generator)
        return tf.cast(self._uniform((batch_size, self.grid, self.grid, 1)) >= self.drop_rate, tf.float32)

    def real_images(self, x, phi):
        """The real examples C sees: D(phi(x)) (Sec. 4.2), or the input itself ((a), (l))."""
        if self.real_source == "input" or self.autoencoder is None:
            return x
        return self.autoencoder.decode(phi, training=False)

    def corrupt(self, x, phi, keep, training=False):
        """x_hat: D-hat(phi_hat(x)) with repair (Eq. 1, 2), D(phi_hat(x)) without ((k)), or G(z) ((l))."""
        if self.gan_generator is not None:
            z = self._normal((tf.shape(x)[0], self.z_dim))
            return self.gan_generator(z, training=training)
        phi_hat = damage(phi, keep)
        if self.repair_net is None:
            return self.autoencoder.decode(phi_hat, training=False)
        return self.repair_net.repair_decode(phi_hat, keep, self.autoencoder.decoder_blocks, training=training)

    def encode(self, x):
        return None if self.autoencoder is None else self.autoencoder.encoder(x, training=False)

    def _mix_history(self, fake, keep):
        """Replace the second half of the corrupted batch by random buffer examples (fresh ones while the buffer
        is empty) and write those replaced fresh examples into the buffer (sequentially until full, then at
        random slots). Returns (examples for C, their keep masks, 1.0 for the fresh rows).

        Under a strategy with several replicas the buffer is one buffer shared by all of them: each replica draws
        its own earlier examples from it, and the replaced fresh examples of every replica (gathered across
        replicas) are written into the same slots on every replica, so the copies never diverge and the
        checkpoint holds the whole buffer."""
        b = tf.shape(fake)[0]
        half = b // 2
        n_fresh = b - half
        fake32 = tf.cast(fake, tf.float32)
        count = self.hist_count.value
        u = self._uniform((half,))
        idx = tf.minimum(tf.cast(u * tf.cast(tf.maximum(count, 1), tf.float32), tf.int32), tf.maximum(count - 1, 0))
        have = count > 0
        old_x = tf.where(have, tf.gather(self.hist_images.value, idx), tf.stop_gradient(fake32[n_fresh:]))
        old_k = tf.where(have, tf.gather(self.hist_keep.value, idx), keep[n_fresh:])
        # Write the fresh examples that were replaced (those of every replica under a strategy).
        new_x, new_k = tf.stop_gradient(fake32[n_fresh:]), keep[n_fresh:]
        ctx = self._replica_context()
        if ctx is not None:
            new_x, new_k = ctx.all_gather(new_x, axis=0), ctx.all_gather(new_k, axis=0)
        n_new = tf.shape(new_x)[0]
        u2 = self._uniform((n_new,), per_replica=False)
        rand_pos = tf.minimum(tf.cast(u2 * self.history_size, tf.int32), self.history_size - 1)
        seq_pos = (count + tf.range(n_new)) % self.history_size
        pos = tf.where(count + n_new <= self.history_size, seq_pos, rand_pos)[:, None]
        self.hist_images.assign(tf.tensor_scatter_nd_update(self.hist_images.value, pos, new_x))
        self.hist_keep.assign(tf.tensor_scatter_nd_update(self.hist_keep.value, pos, new_k))
        self.hist_count.assign(tf.minimum(count + n_new, self.history_size))
        mixed = tf.concat([fake32[:n_fresh], old_x], 0)
        fresh = tf.concat([tf.ones((n_fresh,)), tf.zeros((half,))], 0)
        return tf.cast(mixed, fake.dtype), tf.concat([keep[:n_fresh], old_k], 0), fresh

    def objectives(self, x, real, fake, keep, fresh, training=True) -> dict:
        """C on concat(real, corrupted) in one pass (shared BN statistics, as coded) and both players' losses."""
        b = tf.shape(real)[0]
        out = self.discriminator(tf.concat([real, tf.cast(fake, real.dtype)], 0), training=training)
        real_logit, fake_logit = out["class_logit"][:b], out["class_logit"][b:]
        d_class = tf.reduce_mean(losses.discriminator_class_loss(real_logit, fake_logit))
        d_loss = d_class
        mask_l = tf.constant(0.0)
        if self.mask_prediction:
            fake_mask = losses.mask_loss(out["mask_logits"][b:], keep)
            if self.mask_on_real:
                per = 0.5 * (fake_mask + losses.mask_loss(out["mask_logits"][:b], tf.ones_like(keep)))
            else:
                per = fake_mask
            mask_l = tf.reduce_mean(per)
            d_loss = d_loss + self.mask_loss_weight * mask_l
        g_per = losses.repair_class_loss(fake_logit, self.generator_loss) * fresh
        g_loss = tf.reduce_sum(g_per) / tf.maximum(tf.reduce_sum(fresh), 1.0)
        if self.repair_rec_weight > 0.0 and self.repair_net is not None:
            full = upsample_mask(keep, self.image_size)
            rec = losses.kept_region_reconstruction(x, fake, full) * fresh
            g_loss = g_loss + self.repair_rec_weight * tf.reduce_sum(rec) / tf.maximum(tf.reduce_sum(fresh), 1.0)
        mask_prob = tf.sigmoid(tf.cast(out.get("mask_logits", tf.zeros_like(keep[..., 0])), tf.float32))
        stats = {
            "real_accuracy": tf.reduce_mean(tf.cast(real_logit > 0, tf.float32)),
            "fake_accuracy": tf.reduce_mean(tf.cast(fake_logit <= 0, tf.float32)),
            "mask_accuracy": tf.reduce_mean(tf.cast(tf.equal(tf.cast(mask_prob[b:] > 0.5, tf.float32),
                                                             tf.reshape(keep, tf.shape(mask_prob[b:]))), tf.float32)),
        }
        return {"d_loss": d_loss, "g_loss": g_loss, "d_class_loss": d_class, "mask_loss": mask_l, **stats}

    # ------------------------------------------------------------------------------------------- train
    def compute_outputs(self, data, training=False) -> dict:
        """The shared forward pass of one step (:class:`MultiPlayerModel` trains the players from it). ``data``
        is a batch of images in [-1, 1], or ``(images, keep)`` with a given keep mask Omega (B, M, N, 1) instead
        of a freshly sampled one. Returns :meth:`objectives` plus ``d_l2``, C's L2 terms (float32)."""
        if isinstance(data, (tuple, list)):
            x, keep = data[0], (data[1] if len(data) > 1 else None)
        else:
            x, keep = data, None
        x = tf.convert_to_tensor(x)
        if keep is None:
            keep = self.sample_keep(tf.shape(x)[0])
        keep = tf.cast(keep, tf.float32)
        phi = self.encode(x)
        real = self.real_images(x, phi)
        fake = self.corrupt(x, phi, keep, training=training)
        if self.use_history:
            fake_d, keep_d, fresh = self._mix_history(fake, keep)
        else:
            fake_d, keep_d, fresh = fake, keep, tf.ones((tf.shape(x)[0],))
        out = self.objectives(x, real, fake_d, keep_d, fresh, training=training)
        reg = [tf.cast(l, tf.float32) for l in self.discriminator.losses]
        out["d_l2"] = tf.add_n(reg) if reg else tf.constant(0.0)
        return out

    # ------------------------------------------------------------------------------------- diagnostics
    def heldout_metrics(self, x, keep) -> dict:
        """Learning gates on held-out images ``x`` with fixed keep masks ``keep`` (B, M, N, 1), everything in
        inference mode: C's accuracy on the real examples D(phi(x)) and on the corrupted x_hat (no history
        buffer), its Eq. 5 mask accuracy on x_hat, the mean C(x_hat) ("fake probability": C's probability that a
        corrupted image is real) and, when there is an R / G player, the global gradient norm over its variables
        of R's side of Eq. 4 in both forms (``minimax``: log(1 - C), ``non_saturating``: -log C), so that the
        saturation of the minimax form is visible (its gradient carries the factor C(x_hat), the other 1 - C)."""
        x = tf.cast(x, tf.float32)
        keep = tf.cast(keep, tf.float32)
        phi = self.encode(x)
        real = self.real_images(x, phi)
        variables = self.g_variables()
        with tf.GradientTape(persistent=True) as tape:
            fake = self.corrupt(x, phi, keep, training=False)
            out_f = self.discriminator(tf.cast(fake, tf.float32), training=False)
            fake_logit = tf.cast(out_f["class_logit"], tf.float32)
            r_loss = {k: tf.reduce_mean(losses.repair_class_loss(fake_logit, k))
                      for k in ("minimax", "non_saturating")}
        out_r = self.discriminator(tf.cast(real, tf.float32), training=False)
        res = {"real_accuracy": tf.reduce_mean(tf.cast(tf.cast(out_r["class_logit"], tf.float32) > 0, tf.float32)),
               "fake_accuracy": tf.reduce_mean(tf.cast(fake_logit <= 0, tf.float32)),
               "fake_probability": tf.reduce_mean(tf.sigmoid(fake_logit)),
               "real_probability": tf.reduce_mean(tf.sigmoid(tf.cast(out_r["class_logit"], tf.float32)))}
        if "mask_logits" in out_f:
            pred_keep = tf.cast(tf.cast(out_f["mask_logits"], tf.float32) > 0, tf.float32)
            res["mask_accuracy"] = tf.reduce_mean(tf.cast(tf.equal(pred_keep, tf.reshape(keep, tf.shape(pred_keep))),
                                                          tf.float32))
        if variables:
            for k, v in r_loss.items():
                grads = [g for g in tape.gradient(v, variables) if g is not None]
                res[f"r_grad_norm_{k}"] = tf.linalg.global_norm([tf.cast(g, tf.float32) for g in grads])
        del tape
        return res

    # ------------------------------------------------------------------------------------------ infer
    def render(self, x, keep=None):
        """Fig. 6 panels for a batch: input, autoencoded, damaged-and-repaired, true and predicted keep masks."""
        x = tf.cast(x, tf.float32)  # a mixed policy autocasts the call input to float16 / bfloat16
        if keep is None:
            keep = self.sample_keep(tf.shape(x)[0])
        phi = self.encode(x)
        auto = x if self.autoencoder is None else self.autoencoder.decode(phi, training=False)
        fake = self.corrupt(x, phi, keep, training=False)
        out = self.discriminator(tf.cast(fake, tf.float32), training=False)
        return {"input": x, "autoencoded": tf.cast(auto, tf.float32), "corrupted": tf.cast(fake, tf.float32),
                "keep_mask": tf.cast(keep[..., 0], tf.float32),
                "predicted_keep": tf.sigmoid(tf.cast(out["mask_logits"], tf.float32)),
                "fake_probability": tf.sigmoid(tf.cast(out["class_logit"], tf.float32))}

    def call(self, x, training=False):
        out = self.render(x) if not training else None
        d = self.discriminator(x, training=training)
        return {"class_logit": d["class_logit"], "mask_logits": d["mask_logits"], **({} if out is None else out)}


def discriminator_serve_fn(discriminator: Discriminator):
    """``serving_default`` of the pre-trained discriminator: images in [-1, 1] (B, S, S, C) ->
    ``features`` (B, 256): conv5 (after BN and ReLU) averaged over positions; ``real_probability`` (B,):
    C^class; ``damage_mask`` (B, M, N): sigma(C^mask), the probability that each encoder position was *dropped*
    (1 - predicted Omega)."""

    def serve(images):
        out = discriminator(images, training=False)
        return {"features": tf.reduce_mean(tf.cast(out["conv5"], tf.float32), axis=(1, 2)),
                "real_probability": tf.sigmoid(tf.cast(out["class_logit"], tf.float32)),
                "damage_mask": 1.0 - tf.sigmoid(tf.cast(out["mask_logits"], tf.float32))}

    return serve
