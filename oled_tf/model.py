"""The OLED model: Reconstructor R and Mask Module MM = T(MG(.)) trained as a min-max game (Section 3.5).

``OLED`` is a ``keras.Model`` with one optimizer per player (``compile(r_optimizer, m_optimizer)``) and a custom
``train_step`` with one ``GradientTape`` per player, following the keras-io DCGAN/WGAN-GP examples:

* R minimises  L_mask + gamma * L_cont + lambda * L_rec   (Eq. 8)
* MM maximises L_mask + gamma * L_cont                   (Eq. 8; L_rec does not depend on MM)

Both players are updated from the same forward pass (simultaneous updates, as in the authors' code). The mask
module is only updated while ``mask_update_enabled`` is true; :class:`MaskUpdateSchedule` sets it at the start
of every epoch to ``epoch % mask_update_every == 0`` (the authors' code updates MM every 3rd epoch on MNIST and
UCSD and every 4th on CIFAR-10; the paper is silent, notes 4.1.7).

``mask_kind="random"`` turns the model into the context auto-encoder (CAE) of the ablation (Section 4.6): the
same R, a random ``random_mask_size`` x ``random_mask_size`` square masked during training and at test time, no
MM to train.

``call(x)`` runs inference (BN in inference mode) and returns the raw per-sample scores, the mask, the
activation map and both reconstructions; :meth:`OLED.normalised_scores` maps raw scores to [0, 1] with the
min/max stored by :meth:`OLED.set_score_range` (the evaluation set's, Section 3.6), which is what the exported
``serving_default`` signature returns.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from oled_tf import losses
from oled_tf.networks import (INPUT_SHAPES, ThresholdUnit, build_mask_generator, build_reconstructor,
                              random_square_mask)

SCORE_NAMES = ("s_rec", "s_mask", "s_cont")


class OLED(keras.Model):
    """OLED for one input kind (``"mnist"``, ``"cifar"`` or ``"ucsd"``); inputs are images in [-1, 1]."""

    def __init__(self, kind: str = "mnist", t: float = 87.5, gamma: float = 50.0, lambda_rec: float = 1.0,
                 threshold_eps: float = 1e-12, threshold_mode: str = "paper", mm_uses_context: bool = True,
                 mask_kind: str = "learned", random_mask_size: int = 10, seed: int = 17, **kwargs):
        super().__init__(**kwargs)
        if mask_kind not in ("learned", "random"):
            raise ValueError(f"mask_kind must be 'learned' or 'random', got {mask_kind!r}")
        self.kind, self.t, self.gamma, self.lambda_rec = kind, float(t), float(gamma), float(lambda_rec)
        self.mm_uses_context, self.mask_kind, self.random_mask_size = bool(mm_uses_context), mask_kind, int(random_mask_size)
        self.input_shape_ = INPUT_SHAPES[kind]
        self.reconstructor = build_reconstructor(kind, seed)
        self.mask_generator = build_mask_generator(kind, seed)
        self.threshold_unit = ThresholdUnit(t, threshold_eps, threshold_mode, name="threshold_unit")
        self.seed_generator = keras.random.SeedGenerator(seed, name="random_mask_seed")
        # 1.0 while MM is trained (set per epoch by MaskUpdateSchedule).
        self.mask_update_enabled = keras.Variable(1.0, trainable=False, dtype="float32", name="mask_update_enabled")
        # Min / max of the raw scores over the evaluation set (Section 3.6), used by normalised_scores().
        self.score_min = keras.Variable([0.0, 0.0, 0.0], trainable=False, dtype="float32", name="score_min")
        self.score_max = keras.Variable([1.0, 1.0, 1.0], trainable=False, dtype="float32", name="score_max")
        self.r_loss_tracker = keras.metrics.Mean(name="r_loss")
        self.m_loss_tracker = keras.metrics.Mean(name="mm_objective")
        self.l_mask_tracker = keras.metrics.Mean(name="l_mask")
        self.l_cont_tracker = keras.metrics.Mean(name="l_cont")
        self.l_rec_tracker = keras.metrics.Mean(name="l_rec")

    # ----------------------------------------------------------------------------------------------- setup
    def compile(self, r_optimizer, m_optimizer=None, **kwargs):
        """One Adam per player; the optimizers are built here so that ``train_step`` never creates variables."""
        super().compile(optimizer=None, **kwargs)
        self.r_optimizer = r_optimizer
        self.m_optimizer = m_optimizer
        self.r_optimizer.build(self.reconstructor.trainable_variables)
        if self.mask_kind == "learned":
            if m_optimizer is None:
                raise ValueError("OLED with a learned mask needs an m_optimizer")
            self.m_optimizer.build(self.mask_generator.trainable_variables)

    @property
    def metrics(self):
        return [self.r_loss_tracker, self.m_loss_tracker, self.l_mask_tracker, self.l_cont_tracker,
                self.l_rec_tracker]

    # ------------------------------------------------------------------------------------------- forward
    def make_mask(self, x, training: bool = False):
        """Mask module MM(x) = T(MG(x)) (or a random square for the CAE); returns (mask, activation map)."""
        if self.mask_kind == "random":
            shape = keras.ops.shape(x)
            mask = random_square_mask(shape[0], self.input_shape_[0], self.input_shape_[1], self.random_mask_size,
                                      seed=self.seed_generator)
            return mask, 1.0 - mask
        activation = self.mask_generator(x, training=training)
        return self.threshold_unit(activation), activation

    def forward(self, x, training: bool = False) -> dict:
        """One pass of both players: reconstruction of x and of the masked image x_m = x * MM(x) (Eq. 3)."""
        mask, activation = self.make_mask(x, training=training)
        # Masked pixels take 0, the midpoint of [-1, 1] (Section 3.4.3); a 1-channel mask covers every channel.
        x_m = keras.ops.cast(x, mask.dtype) * mask
        x_hat = self.reconstructor(x, training=training)
        x_hat_m = self.reconstructor(x_m, training=training)
        return {"mask": mask, "activation": activation, "masked_image": x_m, "reconstruction": x_hat,
                "masked_reconstruction": x_hat_m}

    def objectives(self, x, out: dict) -> dict:
        """The three losses (Eq. 5-7) and both players' objectives (Eq. 8) for a forward pass ``out``."""
        l_mask = losses.mask_loss(x, out["masked_reconstruction"])
        l_cont = losses.context_loss(x, out["masked_reconstruction"], out["mask"])
        l_rec = losses.reconstruction_loss(x, out["reconstruction"])
        return {"l_mask": l_mask, "l_cont": l_cont, "l_rec": l_rec,
                "r_loss": losses.reconstructor_objective(l_mask, l_cont, l_rec, self.gamma, self.lambda_rec),
                "mm_objective": losses.mask_module_objective(l_mask, l_cont, self.gamma, self.mm_uses_context)}

    def call(self, x, training: bool = False):
        out = self.forward(x, training=training)
        out.update(losses.per_sample_scores(x, out["reconstruction"], out["masked_reconstruction"], out["mask"]))
        return out

    # ---------------------------------------------------------------------------------------------- train
    def train_step(self, data):
        x = data[0] if isinstance(data, (tuple, list)) else data
        with tf.GradientTape() as r_tape, tf.GradientTape() as m_tape:
            out = self.forward(x, training=True)
            obj = self.objectives(x, out)
            # MM maximises its objective: minimise the negative.
            m_loss = -obj["mm_objective"]

        # Train the reconstructor: minimise L_mask + gamma L_cont + lambda L_rec.
        r_vars = self.reconstructor.trainable_variables
        self.r_optimizer.apply(r_tape.gradient(obj["r_loss"], r_vars), r_vars)

        # Train the mask module (only on the epochs the schedule enables): maximise L_mask + gamma L_cont.
        if self.mask_kind == "learned":
            m_vars = self.mask_generator.trainable_variables
            m_grads = m_tape.gradient(m_loss, m_vars)

            def _apply():
                self.m_optimizer.apply(m_grads, m_vars)
                return tf.constant(True)

            tf.cond(self.mask_update_enabled > 0.5, _apply, lambda: tf.constant(False))

        for name, tracker in (("r_loss", self.r_loss_tracker), ("mm_objective", self.m_loss_tracker),
                              ("l_mask", self.l_mask_tracker), ("l_cont", self.l_cont_tracker),
                              ("l_rec", self.l_rec_tracker)):
            tracker.update_state(obj[name])
        return {m.name: m.result() for m in self.metrics}

    def recalibrate_batch_norm(self, x) -> None:
        """Set every BN layer's moving mean / variance to the statistics of ``x`` under the current weights.

        Not in the paper: a correction for short runs. Keras BN (momentum 0.99, the code's setting) needs several
        hundred updates before its moving averages reach the data's statistics; after the ~100 steps of
        ``--scale=quick`` they are still about half way from their initial (0, 1), and the inference-mode
        reconstructions collapse to a constant gray. One training-mode pass with momentum 0 (MG on ``x``, R on
        ``x`` and the masked ``x`` together, as in training) replaces them by the statistics of ``x``; weights are
        untouched. Enabled by ``--bn_recalibration`` (default: on for smoke/quick, off for paper, see README).
        """
        bns = [l for net in (self.reconstructor, self.mask_generator) for l in net._flatten_layers()
               if isinstance(l, keras.layers.BatchNormalization)]
        saved = [l.momentum for l in bns]
        try:
            for l in bns:
                l.momentum = 0.0
            x = tf.convert_to_tensor(x, tf.float32)
            mask, _ = self.make_mask(x, training=True)
            self.reconstructor(tf.concat([x, x * tf.cast(mask, x.dtype)], 0), training=True)
        finally:
            for l, m in zip(bns, saved):
                l.momentum = m

    # ---------------------------------------------------------------------------------------------- score
    def set_score_range(self, raw: dict) -> None:
        """Store min/max of raw ``s_rec, s_mask, s_cont`` over an evaluation set for :meth:`normalised_scores`."""
        import numpy as np

        self.score_min.assign(np.array([np.min(raw[k]) for k in SCORE_NAMES], np.float32))
        self.score_max.assign(np.array([np.max(raw[k]) for k in SCORE_NAMES], np.float32))

    def normalised_scores(self, raw: dict) -> dict:
        """Min-max normalise raw scores with the stored range; s_avg = mean of the three (Section 3.6)."""
        out = {}
        for i, k in enumerate(SCORE_NAMES):
            span = tf.maximum(self.score_max[i] - self.score_min[i], 1e-12)
            out[k] = (tf.cast(raw[k], tf.float32) - self.score_min[i]) / span
        out["s_avg"] = (out["s_rec"] + out["s_mask"] + out["s_cont"]) / 3.0
        return out

    def serve(self, images):
        """``serving_default``: images in [-1, 1] -> anomaly_score (s_avg), s_rec, s_mask, s_cont, mask, reconstruction."""
        out = self.call(images, training=False)
        scores = self.normalised_scores(out)
        return {"anomaly_score": scores["s_avg"], "s_rec": scores["s_rec"], "s_mask": scores["s_mask"],
                "s_cont": scores["s_cont"], "mask": out["mask"], "reconstruction": out["reconstruction"]}


class MaskUpdateSchedule(keras.callbacks.Callback):
    """Enables MM's updates on epochs with ``epoch % every == 0`` (authors' code, notes 4.1.7); every=1: always."""

    def __init__(self, every: int = 1, first_epoch: int = 0):
        super().__init__()
        if every < 1:
            raise ValueError(f"mask_update_every must be >= 1, got {every}")
        self.every, self.first_epoch = int(every), int(first_epoch)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.mask_update_enabled.assign(1.0 if (epoch + self.first_epoch) % self.every == 0 else 0.0)
