"""The one trainer of the six image pretext tasks: a ``keras.Model`` that takes the task as a component.

``PretextModel(task, input_shape)`` owns the networks the task builds (the shared backbone and the task's head)
and one optimizer (``compile(optimizer)``); ``train_step`` minimises ``task.training_loss`` (Eq. 6-7 of the
paper for its own task: the pretext loss jointly over all parameters), ``test_step`` reports the same loss.
``call(x)`` returns the per-transformation losses ``[B, T]`` in inference mode; the anomaly score built from them
lives in :mod:`permutation_tf.image.scoring`, and :meth:`serve` is the exported signature.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from permutation_tf.image.tasks import PretextTask


class PretextModel(keras.Model):
    """A pretext task's networks and training step; inputs are images ``[B, H, W, C]`` in [-1, 1]."""

    def __init__(self, task: PretextTask, input_shape, **kwargs):
        super().__init__(**kwargs)
        self.task = task
        self.input_shape_ = tuple(int(v) for v in input_shape)
        task.check_input(self.input_shape_)
        self.networks = task.build(self.input_shape_)   # dict name -> keras.Model (tracked by Keras)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def build_all(self) -> None:
        """Create every variable (one inference pass on zeros): needed before restore and export."""
        self(tf.zeros((2, *self.input_shape_), tf.float32), training=False)

    def compile(self, optimizer, **kwargs):
        """One optimizer for all networks, built here so that ``train_step`` never creates variables."""
        super().compile(optimizer=optimizer, **kwargs)
        self.optimizer.build(self.trainable_variables)

    @property
    def metrics(self):
        return [self.loss_tracker]

    def call(self, x, training: bool = False):
        return self.task.transformation_losses(self.networks, x, training=training)

    def train_step(self, data):
        x = data[0] if isinstance(data, (tuple, list)) else data
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            loss = self.task.training_loss(self.networks, x, training=True)
            scaled = self.optimizer.scale_loss(loss)   # loss scaling under mixed_float16, identity otherwise
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data):
        x = data[0] if isinstance(data, (tuple, list)) else data
        self.loss_tracker.update_state(self.task.training_loss(self.networks, x, training=False))
        return {"loss": self.loss_tracker.result()}

    def serve(self, images):
        """``serving_default``: images in [-1, 1] -> ``anomaly_score`` [B] and ``transformation_losses`` [B, T]."""
        from permutation_tf.image.scoring import score_from_losses

        losses = self.call(images, training=False)
        return {"anomaly_score": score_from_losses(losses), "transformation_losses": losses}
