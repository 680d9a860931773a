"""The OLED model: Reconstructor R and Mask Module MM = T(MG(.)) trained as a min-max game (Section 3.5).

``OLED`` is a :class:`common.multiplayer.MultiPlayerModel` with two players, each with its own Adam and its own
``GradientTape`` (``compile(r_optimizer, m_optimizer)``):

* ``"reconstructor"`` R minimises  L_mask + gamma * L_cont + lambda * L_rec   (Eq. 8)
* ``"mask_module"``   MM maximises L_mask + gamma * L_cont                   (Eq. 8; L_rec does not depend on MM)

Both players are updated from the same forward pass (simultaneous updates, as in the authors' code). The mask
module is trained only on the epochs :class:`MaskUpdateSchedule` enables (``epoch % mask_update_every == 0``;
the authors' code updates MM every 3rd epoch on MNIST and UCSD and every 4th on CIFAR-10; the paper is silent,
notes 4.1.7). On the other epochs MM is a *frozen player*: the step function of those epochs has no MM tape,
no MM gradient and no MM update (no branch around ``optimizer.apply``, so the step runs under every
``tf.distribute`` strategy; frozen MM costs nothing). MM still runs forward (training mode) to mask R's input.

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

from common.multiplayer import FreezeSchedule, MultiPlayerModel, Player
from oled_tf import losses
from oled_tf.networks import (INPUT_SHAPES, ThresholdUnit, build_mask_generator, build_reconstructor,
                              random_square_mask)

SCORE_NAMES = ("s_rec", "s_mask", "s_cont")
LOGGED = ("r_loss", "mm_objective", "l_mask", "l_cont", "l_rec")
MASK_PLAYER = "mask_module"


class OLED(MultiPlayerModel):
    """OLED for one input kind (``"mnist"``, ``"cifar"`` or ``"ucsd"``); inputs are images in [-1, 1]."""

    def __init__(self, kind: str = "mnist", t: float = 87.5, gamma: float = 50.0, lambda_rec: float = 1.0,
                 threshold_eps: float = 1e-12, threshold_mode: str = "paper", mm_uses_context: bool = True,
                 mask_kind: str = "learned", random_mask_size: int = 10, seed: int = 17,
                 mask_gradient: str = "faithful", mask_temperature: float = 0.5, architecture: str = "paper",
                 decoder_bn: bool | None = None, output_clip: bool | None = None, loss_reduction: str = "mean",
                 mg_bn_frozen: bool = False, **kwargs):
        self._xla_on_cpu = False  # see jit_compile
        super().__init__(metric_names=LOGGED, **kwargs)
        if mask_kind not in ("learned", "random"):
            raise ValueError(f"mask_kind must be 'learned' or 'random', got {mask_kind!r}")
        self.kind, self.t, self.gamma, self.lambda_rec = kind, float(t), float(gamma), float(lambda_rec)
        self.mm_uses_context, self.mask_kind, self.random_mask_size = bool(mm_uses_context), mask_kind, int(random_mask_size)
        self.input_shape_ = INPUT_SHAPES[kind]
        self.architecture = architecture  # "paper" or "code" (the authors' networks, oled_tf/networks.py)
        self.reconstructor = build_reconstructor(kind, seed, architecture, decoder_bn, output_clip)
        self.loss_reduction = loss_reduction  # "mean" (code) or "norm" (the paper's norms, oled_tf/losses.py)
        # Beyond the paper: MG's BN in inference mode (moving statistics frozen) on the steps where MM is frozen.
        self.mg_bn_frozen = bool(mg_bn_frozen)
        self.mask_generator = build_mask_generator(kind, seed, architecture)
        # mask_gradient: "faithful" (Eq. 2) or a beyond-paper surrogate gradient (networks.ThresholdUnit).
        self.threshold_unit = ThresholdUnit(t, threshold_eps, threshold_mode, gradient=mask_gradient,
                                            temperature=mask_temperature, name="threshold_unit")
        self.seed_generator = keras.random.SeedGenerator(seed, name="random_mask_seed")
        # Min / max of the raw scores over the evaluation set (Section 3.6), used by normalised_scores().
        self.score_min = keras.Variable([0.0, 0.0, 0.0], trainable=False, dtype="float32", name="score_min")
        self.score_max = keras.Variable([1.0, 1.0, 1.0], trainable=False, dtype="float32", name="score_max")

    # ----------------------------------------------------------------------------------------------- setup
    def compile(self, r_optimizer, m_optimizer=None, **kwargs):
        """One Adam per player (built here, so that the step never creates variables; wrapped for loss scaling
        under ``mixed_float16``). ``kwargs`` (``jit_compile`` ...) go to ``keras.Model.compile``."""
        players = [Player("reconstructor", self.reconstructor, r_optimizer, lambda out: out["r_loss"])]
        if self.mask_kind == "learned":
            if m_optimizer is None:
                raise ValueError("OLED with a learned mask needs an m_optimizer")
            # MM maximises its objective: minimise the negative.
            players.append(Player(MASK_PLAYER, self.mask_generator, m_optimizer, lambda out: -out["mm_objective"]))
        self.compile_players(players, **kwargs)
        # Named attributes so that checkpoints hold both optimizers' state.
        self.r_optimizer = self.player("reconstructor").optimizer
        self.m_optimizer = self.player(MASK_PLAYER).optimizer if self.mask_kind == "learned" else None

    @property
    def jit_compile(self):
        """Whether the train step runs under XLA. Keras turns XLA off whenever op determinism is on (some XLA ops
        lack deterministic GPU kernels); on a CPU-only machine OLED's XLA step is deterministic (bit-identical losses
        and weights when run again from the same state, ``tests/test_oled_speed.py``), so there ``True`` is kept
        (``--jit_compile=auto``: the timed probe of ``oled_tf.experiment.jit_choice`` decides)."""
        return self._xla_on_cpu or keras.Model.jit_compile.fget(self)

    @jit_compile.setter
    def jit_compile(self, value):
        import tensorflow as tf

        self._xla_on_cpu = bool(value) and value != "auto" and not tf.config.list_physical_devices("GPU")
        keras.Model.jit_compile.fset(self, False if self._xla_on_cpu else value)

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

    def forward(self, x, training: bool = False, mg_training: bool | None = None) -> dict:
        """One pass of both players: reconstruction of x and of the masked image x_m = x * MM(x) (Eq. 3).
        ``mg_training``: MG's BN mode when it differs from R's (None = ``training``)."""
        mask, activation = self.make_mask(x, training=training if mg_training is None else mg_training)
        return self.reconstruct(x, mask, activation, training=training)

    def reconstruct(self, x, mask, activation, training: bool = False) -> dict:
        """R's part of :meth:`forward` for a given mask (also used to differentiate w.r.t. the activation map)."""
        # Masked pixels take 0, the midpoint of [-1, 1] (Section 3.4.3); a 1-channel mask covers every channel.
        x_m = keras.ops.cast(x, mask.dtype) * mask
        x_hat = self.reconstructor(x, training=training)
        x_hat_m = self.reconstructor(x_m, training=training)
        return {"mask": mask, "activation": activation, "masked_image": x_m, "reconstruction": x_hat,
                "masked_reconstruction": x_hat_m}

    def objectives(self, x, out: dict) -> dict:
        """The three losses (Eq. 5-7) and both players' objectives (Eq. 8) for a forward pass ``out``."""
        red = self.loss_reduction
        l_mask = losses.mask_loss(x, out["masked_reconstruction"], red)
        l_cont = losses.context_loss(x, out["masked_reconstruction"], out["mask"], red)
        l_rec = losses.reconstruction_loss(x, out["reconstruction"], red)
        return {"l_mask": l_mask, "l_cont": l_cont, "l_rec": l_rec,
                "r_loss": losses.reconstructor_objective(l_mask, l_cont, l_rec, self.gamma, self.lambda_rec),
                "mm_objective": losses.mask_module_objective(l_mask, l_cont, self.gamma, self.mm_uses_context)}

    def call(self, x, training: bool = False):
        out = self.forward(x, training=training)
        out.update(losses.per_sample_scores(x, out["reconstruction"], out["masked_reconstruction"], out["mask"]))
        return out

    # ---------------------------------------------------------------------------------------------- train
    def compute_outputs(self, data, training: bool = False) -> dict:
        """The shared forward pass of one training step and Eq. 5-8 (float32 losses; see MultiPlayerModel)."""
        x = data[0] if isinstance(data, (tuple, list)) else data
        # One step function per frozen set (MultiPlayerModel), so this Python test is fixed at trace time.
        mg_training = training and not (self.mg_bn_frozen and MASK_PLAYER in self.frozen)
        return self.objectives(x, self.forward(x, training=training, mg_training=mg_training))

    def recalibrate_batch_norm(self, x) -> None:
        """Set every BN layer's moving mean / variance to the statistics of ``x`` under the current weights.

        Not in the paper: a correction for short runs. Keras BN (momentum 0.99, the code's setting) needs several
        hundred updates before its moving averages reach the data's statistics; after the ~100 steps of
        ``--scale=quick`` they are still about half way from their initial (0, 1), and the inference-mode
        reconstructions collapse to a constant gray. One training-mode pass with momentum 0 (MG on ``x``, R on
        ``x`` and the masked ``x`` together, as in training) replaces them by the statistics of ``x``; weights are
        untouched. Enabled by ``--bn_recalibration`` (default: on for smoke/quick, off for paper, see README).
        """
        def layers_of(layer):
            for sub in getattr(layer, "layers", ()):
                yield sub
                yield from layers_of(sub)

        bns = [l for net in (self.reconstructor, self.mask_generator) for l in layers_of(net)
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
        """Images (patches for UCSD) in [-1, 1] -> anomaly_score (s_avg), s_rec, s_mask, s_cont, mask,
        reconstruction: the ``serving_default`` signature of image models, the ``patches`` one on UCSD."""
        out = self.call(images, training=False)
        scores = self.normalised_scores(out)
        return {"anomaly_score": scores["s_avg"], "s_rec": scores["s_rec"], "s_mask": scores["s_mask"],
                "s_cont": scores["s_cont"], "mask": out["mask"], "reconstruction": out["reconstruction"]}

    def serve_frames(self, frames, stride: int = 30):
        """UCSD ``serving_default``: gray frames (B, H, W, 1) in [-1, 1] -> frame scores (B,).

        The frames are cut into ``input_shape_`` patches on the grid of the evaluation (stride ``stride``, a
        last patch snapped to the border, :func:`frame_patches`), every patch is scored as by :meth:`serve`, and
        a frame's ``anomaly_score`` / ``s_rec`` / ``s_mask`` / ``s_cont`` is the maximum over its patches
        (Section 4.5, as ``oled_tf.evaluate.frame_scores``); ``patch_anomaly_score`` (B, P) keeps the patches'
        s_avg in row-major order.
        """
        patches, per_frame = frame_patches(frames, self.input_shape_[0], stride)
        out = self.serve(patches)
        b = tf.shape(frames)[0]
        per_patch = {k: tf.reshape(out[k], tf.stack([b, per_frame])) for k in ("anomaly_score", *SCORE_NAMES)}
        res = {k: tf.reduce_max(v, axis=1) for k, v in per_patch.items()}
        res["patch_anomaly_score"] = per_patch["anomaly_score"]
        return res


def frame_patches(frames, size: int = 30, stride: int = 30):
    """``(patches (B * P, size, size, C), P)``: every frame of (B, H, W, C) cut on the grid of
    ``common.protocols.extract_patches`` (starts 0, stride, ... and a last one at the border when the grid
    leaves a strip), frame-major then row-major, as TensorFlow ops (any H, W >= size)."""
    frames = tf.convert_to_tensor(frames, tf.float32)
    shape = tf.shape(frames)

    def starts(length):
        grid = tf.range(0, length - size + 1, stride)
        last = tf.reshape(length - size, [1])
        return tf.concat([grid, last[: tf.cast(grid[-1] < last[0], tf.int32)]], 0)

    rows, cols = starts(shape[1]), starts(shape[2])
    nr, nc = tf.size(rows), tf.size(cols)
    offsets = tf.range(size)
    p = tf.gather(frames, tf.reshape(rows[:, None] + offsets[None, :], [-1]), axis=1)  # (B, nr*size, W, C)
    p = tf.gather(p, tf.reshape(cols[:, None] + offsets[None, :], [-1]), axis=2)       # (B, nr*size, nc*size, C)
    channels = frames.shape[-1]
    p = tf.reshape(p, tf.stack([-1, nr, size, nc, size, channels]))
    p = tf.transpose(p, [0, 1, 3, 2, 4, 5])
    return tf.reshape(p, [-1, size, size, channels]), nr * nc


class MaskUpdateSchedule(FreezeSchedule):
    """Trains MM on epochs with ``epoch % every == 0`` (authors' code, notes 4.1.7) and freezes it on the others
    (the step function without MM's tape, gradient and update); every=1: always."""

    def __init__(self, every: int = 1, first_epoch: int = 0):
        if every < 1:
            raise ValueError(f"mask_update_every must be >= 1, got {every}")
        self.every, self.first_epoch = int(every), int(first_epoch)
        super().__init__(self.frozen_players)

    def frozen_players(self, epoch: int) -> tuple:
        return () if (epoch + self.first_epoch) % self.every == 0 else (MASK_PLAYER,)
