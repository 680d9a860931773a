"""One training pattern for ``keras.Model`` subclasses with several players (games, adversarial training, and
one-player models that need the same care): one optimizer and one ``GradientTape`` per player.

A model subclasses :class:`MultiPlayerModel`, computes the shared forward pass and every loss in
:meth:`MultiPlayerModel.compute_outputs`, and declares its players with :meth:`MultiPlayerModel.compile_players`.
A :class:`Player` is a named ``(variables, optimizer, loss)`` entry: ``variables`` are what it trains (a network,
a list of networks / variables, or a callable returning them), ``loss(outputs)`` the scalar it *minimises* (a
player that maximises returns the negative). What the pattern takes care of:

* **Frozen players cost nothing.** :meth:`~MultiPlayerModel.set_frozen` selects one step function per set of
  frozen players (each traced once and cached); a frozen player has no tape, no gradient and no optimizer
  update in its step function. There is no Python or ``tf.cond`` branch around an optimizer update, so the step
  works under every ``tf.distribute`` strategy (a ``tf.cond`` around ``optimizer.apply`` raises
  "merge_call called while defining a new graph" under ``MirroredStrategy``). Each tape watches only its own
  player's variables, so one player's backward pass never runs through another player's networks unless that
  player's loss depends on them.
* **float32 losses.** A player's loss must be a float32 tensor computed from float32 values (cast network
  outputs first; a bf16 / f16 loss raises ``TypeError`` at trace time), also under mixed precision.
* **Loss scaling under ``mixed_float16``.** Each player's optimizer is wrapped in
  ``keras.optimizers.LossScaleOptimizer`` (dynamic loss scale; gradients unscaled, and the step skipped with a
  smaller scale when they are not finite): ``optimizer.scale_loss`` before the gradient, ``optimizer.apply``
  after. Other policies leave the optimizers as given.
* **Per-replica scaling under a strategy.** A loss is the mean over the replica's local batch; it is weighted
  by ``local_batch / global_batch`` (the global size summed over replicas, exact for uneven last batches) before
  the gradient, so that the optimizers' all-reduce SUM of the gradients gives the gradient of the mean over
  the GLOBAL batch.
* **Metrics aggregated across replicas.** The logged values (``metric_names`` keys of the outputs, each a
  local-batch mean) are all-reduced into global-batch means before they reach the ``keras.metrics.Mean``
  trackers, weighted by the global batch size, so the epoch logs are means over every sample seen.

Example (a two-player game; the artifacts paper's discriminator vs repair network reads the same way)::

    class Game(MultiPlayerModel):
        def __init__(self):
            super().__init__(metric_names=("g_loss", "d_loss"))
            self.generator, self.discriminator = make_g(), make_d()

        def compute_outputs(self, data, training=False):
            x = data                                     # one batch
            fake = self.generator(x, training=training)
            real_logit = ops.cast(self.discriminator(x, training=training), "float32")
            fake_logit = ops.cast(self.discriminator(fake, training=training), "float32")
            d_loss = bce(1, real_logit) + bce(0, fake_logit)   # float32 means over the local batch
            return {"g_loss": bce(1, fake_logit), "d_loss": d_loss}

    with strategy.scope():
        game = Game()
        game.compile_players([Player("generator", game.generator, keras.optimizers.Adam(2e-4),
                                     lambda out: out["g_loss"]),
                              Player("discriminator", game.discriminator, keras.optimizers.Adam(2e-4),
                                     lambda out: out["d_loss"])])
    game.set_frozen(["discriminator"])       # e.g. from a callback's on_epoch_begin; [] trains both
    game.fit(ds, epochs=3, callbacks=[FreezeSchedule(lambda epoch: [] if epoch % 2 == 0 else ["discriminator"])])

All active players are updated from the same forward pass (simultaneous updates). A frozen player's networks
still run forward in ``compute_outputs`` (its BatchNorm statistics keep updating when it runs in training
mode); only its training is skipped.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Callable, Iterable, Mapping, Sequence

import keras
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Player:
    """One player: minimises ``loss(outputs)`` over ``variables`` with ``optimizer``.

    ``variables``: a Keras layer / model (its trainable variables), a list of layers and / or variables, or a
    callable returning such a list (evaluated when the step is traced).
    ``loss``: maps the dict of :meth:`MultiPlayerModel.compute_outputs` to a float32 scalar, the mean over the
    local batch, to minimise.
    """

    name: str
    variables: Any
    optimizer: Any
    loss: Callable[[Mapping[str, Any]], Any]

    def items(self) -> list:
        """The layers and / or variables this player trains."""
        v = self.variables() if callable(self.variables) and not isinstance(self.variables, keras.layers.Layer) \
            else self.variables
        return list(v) if isinstance(v, (list, tuple)) else [v]

    def trainable_variables(self) -> list:
        out = []
        for item in self.items():
            out.extend(item.trainable_variables if isinstance(item, keras.layers.Layer) else [item])
        return out


def loss_scaled(optimizer, policy_name: str | None = None):
    """``optimizer`` wrapped in ``keras.optimizers.LossScaleOptimizer`` under the ``mixed_float16`` policy
    (``policy_name``, default the global Keras policy); unchanged otherwise or when already wrapped."""
    policy_name = policy_name or keras.config.dtype_policy().name
    if policy_name == "mixed_float16" and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def batch_size_of(data) -> tf.Tensor:
    """The leading dimension of the first tensor of a (nested) batch, as float32."""
    first = tf.nest.flatten(data)[0]
    return tf.cast(tf.shape(first)[0], tf.float32)


def replica_share(local_n) -> tf.Tensor:
    """``local_n / global_n`` in a replica context (1.0 with a single replica): the weight that turns a mean
    over the local batch into this replica's part of the mean over the global batch."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return tf.constant(1.0, tf.float32)
    return local_n / ctx.all_reduce(tf.distribute.ReduceOp.SUM, local_n)


class MultiPlayerModel(keras.Model):
    """Base class of a model trained by several players (see the module docstring).

    Subclasses implement :meth:`compute_outputs` and call :meth:`compile_players`; ``fit`` then trains the
    players that are not frozen. ``metric_names``: keys of the outputs logged as epoch means.
    """

    def __init__(self, metric_names: Sequence[str] = (), **kwargs):
        super().__init__(**kwargs)
        self._metric_names = tuple(metric_names)
        self._trackers = [keras.metrics.Mean(name=n) for n in self._metric_names]
        self._players_list: tuple = ()
        self._frozen: frozenset = frozenset()
        self._step_functions: dict = {}

    # --------------------------------------------------------------------------------------------- declare
    def compile_players(self, players: Iterable[Player], **compile_kwargs) -> None:
        """Declare the players (optimizers wrapped for loss scaling under ``mixed_float16`` and built here, so
        that the step never creates variables) and compile the model (``jit_compile``, ``steps_per_execution``
        ... pass through). Call it inside the strategy scope."""
        players = tuple(players)
        names = [p.name for p in players]
        if len(set(names)) != len(names):
            raise ValueError(f"player names must be unique, got {names}")
        super().compile(optimizer=None, **compile_kwargs)
        wrapped = []
        for p in players:
            p = dataclasses.replace(p, optimizer=loss_scaled(p.optimizer, self.dtype_policy.name))
            p.optimizer.build(p.trainable_variables())
            wrapped.append(p)
        self._players_list = tuple(wrapped)
        self._frozen = frozenset()
        self._step_functions = {}

    @property
    def players(self) -> tuple:
        """The declared players (optimizers as used, i.e. loss-scale wrapped under ``mixed_float16``)."""
        return self._players_list

    def player(self, name: str) -> Player:
        for p in self._players_list:
            if p.name == name:
                return p
        raise KeyError(f"no player {name!r}; players: {[p.name for p in self._players_list]}")

    @property
    def metrics(self):
        return list(self._trackers)

    # ---------------------------------------------------------------------------------------------- freeze
    @property
    def frozen(self) -> frozenset:
        """Names of the players that the current step function does not train."""
        return self._frozen

    def set_frozen(self, names: Iterable[str]) -> None:
        """Freeze exactly the players ``names`` (``()`` trains all) from the next step on.

        Switches ``train_function`` to the step function of that set (traced on first use, then cached), so a
        callback's ``on_epoch_begin`` can change it between epochs of one ``fit``.
        """
        frozen = frozenset(names)
        unknown = frozen - {p.name for p in self._players_list}
        if unknown:
            raise KeyError(f"unknown player(s) {sorted(unknown)}; players: {[p.name for p in self._players_list]}")
        if frozen == self._frozen:
            return
        self._frozen = frozen
        if self.train_function is not None:  # inside fit (or after one): switch to the cached step function
            self.train_function = None
            self.make_train_function()

    def make_train_function(self, force: bool = False):
        """Keras' ``make_train_function``, cached per set of frozen players."""
        cached = self._step_functions.get(self._frozen)
        if cached is not None and not force:
            self.train_function = cached
            return cached
        super().make_train_function(force=True)  # sets self.train_function (Keras returns None here)
        self._step_functions[self._frozen] = self.train_function
        return self.train_function

    # ------------------------------------------------------------------------------------------------ step
    def compute_outputs(self, data, training: bool = False) -> dict:
        """The shared forward pass of one (local) batch: a dict holding every player's loss inputs and every
        logged value (float32 scalars, means over the local batch)."""
        raise NotImplementedError

    def train_step(self, data):
        """One step of every player that is not frozen, from one shared forward pass."""
        active = [p for p in self._players_list if p.name not in self._frozen]
        local_n = batch_size_of(data)
        share = replica_share(local_n)
        tapes = [tf.GradientTape(watch_accessed_variables=False) for _ in active]
        variables = [p.trainable_variables() for p in active]
        with contextlib.ExitStack() as stack:
            for tape, vs in zip(tapes, variables):
                stack.enter_context(tape).watch([v.value for v in vs])
            outputs = self.compute_outputs(data, training=True)
            scaled = []
            for p in active:
                loss = tf.convert_to_tensor(p.loss(outputs))
                if loss.dtype != tf.float32:
                    raise TypeError(f"the loss of player {p.name!r} is {loss.dtype.name}; compute losses in float32 "
                                    "(cast the network outputs to float32 first)")
                reg = self._regularisation(p)
                if reg:
                    loss = loss + tf.add_n(reg)
                scaled.append(p.optimizer.scale_loss(loss * share))
        for p, tape, vs, loss in zip(active, tapes, variables, scaled):
            p.optimizer.apply(tape.gradient(loss, vs), vs)
        self._update_trackers(outputs, local_n)
        logs = {m.name: m.result() for m in self.metrics}
        if _multi_worker(tf.distribute.get_strategy()):
            # Keras reduces the logs of a multi-worker step with strategy.reduce("MEAN", v, axis=0), which
            # fails on scalars: hand over shape (1,) values (identical on every replica, see _update_trackers).
            logs = {k: tf.reshape(v, [1]) for k, v in logs.items()}
        return logs

    def _regularisation(self, player: Player) -> list:
        """Float32 regularisation losses (``layer.losses``) of the player's networks."""
        return [tf.cast(l, tf.float32) for item in player.items() if isinstance(item, keras.layers.Layer)
                for l in item.losses]

    def _update_trackers(self, outputs: Mapping[str, Any], local_n) -> None:
        if not self._trackers:
            return
        values = tf.stack([tf.cast(outputs[n], tf.float32) for n in self._metric_names])
        weight = local_n
        ctx = tf.distribute.get_replica_context()
        if ctx is not None and ctx.num_replicas_in_sync > 1:
            summed = ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.concat([values * local_n, [local_n]], 0))
            weight = summed[-1]
            values = summed[:-1] / weight
        for i, tracker in enumerate(self._trackers):
            tracker.update_state(values[i], sample_weight=weight)


def _multi_worker(strategy) -> bool:
    """True for a MultiWorkerMirroredStrategy whose cluster has more than one task."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return False
    return sum(len(tasks) for tasks in resolver.cluster_spec().as_dict().values()) > 1


class FreezeSchedule(keras.callbacks.Callback):
    """Calls ``model.set_frozen(frozen_at(epoch))`` at the start of every epoch (also after a resume)."""

    def __init__(self, frozen_at: Callable[[int], Iterable[str]]):
        super().__init__()
        self.frozen_at = frozen_at

    def on_epoch_begin(self, epoch, logs=None):
        self.model.set_frozen(self.frozen_at(epoch))
