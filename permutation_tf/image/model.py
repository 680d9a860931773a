"""The one trainer of the six image pretext tasks: a ``keras.Model`` that takes the task as a component.

``PretextModel(task, input_shape)`` owns the networks the task builds (the shared backbone and the task's head)
and one optimizer (``compile(optimizer)``): it is a one-player :class:`common.multiplayer.MultiPlayerModel`
(the player trains every network on ``task.training_loss``, Eq. 6-7 of the paper for its own task: the pretext
loss jointly over all parameters), so loss scaling, per-replica loss weighting and the all-reduced metrics are
those of every other trainer of this repository. ``call(x)`` returns the per-transformation losses ``[B, T]`` in
inference mode; the anomaly score built from them lives in :mod:`permutation_tf.image.scoring`, and
:meth:`serve` is the exported signature.
"""
from __future__ import annotations

import tensorflow as tf

from common.multiplayer import MultiPlayerModel, Player
from permutation_tf.image.tasks import PretextTask

PLAYER = "networks"


class PretextModel(MultiPlayerModel):
    """A pretext task's networks and training step; inputs are images ``[B, H, W, C]`` in [-1, 1]."""

    def __init__(self, task: PretextTask, input_shape, score: str = "mean_loss", augment: str = "none",
                 train_transformations: str = "all", seed: int = 0, **kwargs):
        import keras

        from permutation_tf.image.pipeline import serve_rule

        super().__init__(metric_names=("loss",), **kwargs)
        self.task = task
        self.serve_score = serve_rule(score)   # the exported score: drawn_loss needs a label -> mean_loss
        self.augment, self.train_transformations = augment, train_transformations
        # Training-time randomness (augmentation, drawn transformations, tile jitter): a model variable, so a
        # checkpoint restores it (common.training.Checkpoint) and a resumed run draws what it would have drawn.
        self.seed_generator = keras.random.SeedGenerator(seed, name="train_randomness")
        self.input_shape_ = tuple(int(v) for v in input_shape)
        task.check_input(self.input_shape_)
        self.networks = task.build(self.input_shape_)   # dict name -> keras.Model (tracked by Keras)

    @property
    def loss_tracker(self):
        """The epoch mean of the training loss (``loss`` of the logs)."""
        return self.metrics[0]

    def build_all(self) -> None:
        """Create every variable (one inference pass on zeros): needed before restore and export."""
        self(tf.zeros((2, *self.input_shape_), tf.float32), training=False)

    def compile(self, optimizer, **kwargs):
        """One optimizer for all networks (one player), built here so that the step never creates variables;
        ``jit_compile`` ... pass through."""
        self.compile_players([Player(PLAYER, lambda: list(self.networks.values()), optimizer,
                                     lambda out: out["loss"])], **kwargs)
        self.optimizer = self.player(PLAYER).optimizer   # a named attribute: checkpoints hold its state

    def call(self, x, training: bool = False):
        return self.task.transformation_losses(self.networks, x, training=training)

    def compute_outputs(self, data, training: bool = False) -> dict:
        from permutation_tf.image.transforms import flip_shift

        x = data[0] if isinstance(data, (tuple, list)) else data
        if training and self.augment == "flip_shift":
            x = flip_shift(x, self.seed_generator)
        loss = self.task.training_loss(self.networks, x, training=training, seed=self.seed_generator,
                                       mode=self.train_transformations)
        return {"loss": tf.cast(loss, tf.float32)}

    def serve(self, images):
        """``serving_default``: images in [-1, 1] -> ``anomaly_score`` [B] (rule ``serve_score``) and
        ``transformation_losses`` [B, T]."""
        from permutation_tf.image.scoring import score_from_losses

        losses = self.call(images, training=False)
        return {"anomaly_score": score_from_losses(losses, self.serve_score), "transformation_losses": losses}
