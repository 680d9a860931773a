"""The multi-player training pattern (common/multiplayer.py) on tiny models: a frozen player is neither updated nor
differentiated, losses must be float32, mixed_float16 scales the loss, and under a 2-replica MirroredStrategy
(two logical CPUs, in a subprocess) the update and the logged metrics are those of the global batch."""
import os
import subprocess
import sys
import textwrap

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from common.multiplayer import FreezeSchedule, MultiPlayerModel, Player

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GRADIENTS_OF = {"a": 0, "b": 0}  # how often a kernel's gradient was computed (eager steps)


def _probe(name):
    @tf.custom_gradient
    def identity(v):
        def grad(dy):
            GRADIENTS_OF[name] += 1
            return dy
        return tf.identity(v), grad
    return identity


class ProbedDense(keras.layers.Layer):
    """y = x W; counts the gradients computed for W."""

    def __init__(self, units, probe, **kw):
        super().__init__(**kw)
        self.units, self.probe = units, probe

    def build(self, shape):
        self.kernel = self.add_weight(shape=(shape[-1], self.units), initializer="glorot_uniform")

    def call(self, x):
        return keras.ops.matmul(x, keras.ops.cast(_probe(self.probe)(self.kernel * 1.0), x.dtype))


class Game(MultiPlayerModel):
    """a minimises ||b(a(x)) - x||^2, b maximises it (b's output feeds a's loss, so a's backward pass runs
    through b's ops; b's kernel must still get no gradient while b is frozen)."""

    def __init__(self, loss_dtype="float32", **kw):
        super().__init__(metric_names=("err",), **kw)
        self.a, self.b = ProbedDense(3, "a"), ProbedDense(4, "b")
        self.loss_dtype = loss_dtype

    def call(self, x):
        return self.b(self.a(x))

    def compute_outputs(self, data, training=False):
        y = self.b(self.a(data))
        err = keras.ops.mean(keras.ops.square(keras.ops.cast(y, self.loss_dtype) - keras.ops.cast(data, self.loss_dtype)))
        return {"err": err}


def _game(**kw):
    g = Game(**kw)
    g(np.zeros((1, 4), np.float32))
    g.compile_players([Player("a", g.a, keras.optimizers.Adam(0.1), lambda o: o["err"]),
                       Player("b", g.b, keras.optimizers.Adam(0.1), lambda o: -o["err"])])
    return g


X = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)


def test_frozen_player_is_neither_updated_nor_differentiated():
    g = _game()
    b0, a0 = g.b.kernel.numpy().copy(), g.a.kernel.numpy().copy()
    g.set_frozen(["b"])
    GRADIENTS_OF.update(a=0, b=0)
    g.train_step(tf.constant(X))
    assert GRADIENTS_OF == {"a": 1, "b": 0}              # b's gradient was not computed
    np.testing.assert_array_equal(g.b.kernel.numpy(), b0)
    assert int(g.player("b").optimizer.iterations) == 0
    assert not np.array_equal(g.a.kernel.numpy(), a0)
    g.set_frozen([])
    g.train_step(tf.constant(X))
    assert GRADIENTS_OF == {"a": 2, "b": 1}
    assert not np.array_equal(g.b.kernel.numpy(), b0)
    with pytest.raises(KeyError):
        g.set_frozen(["c"])


def test_fit_switches_cached_step_functions_per_epoch():
    g = _game()
    b_seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            b_seen.append(g.b.kernel.numpy().copy())

    g.fit(X, epochs=4, batch_size=4, verbose=0,
          callbacks=[FreezeSchedule(lambda e: [] if e % 2 == 0 else ["b"]), Record()])
    np.testing.assert_array_equal(b_seen[0], b_seen[1])   # epoch 1: b frozen
    assert not np.array_equal(b_seen[1], b_seen[2])        # epoch 2: b trained again
    assert int(g.player("b").optimizer.iterations) == 4    # 2 epochs x 2 steps
    assert int(g.player("a").optimizer.iterations) == 8
    assert len({id(f) for f in g._step_functions.values()}) == 2


def test_loss_must_be_float32():
    g = _game(loss_dtype="float16")
    with pytest.raises(TypeError, match="float32"):
        g.train_step(tf.constant(X))


def test_mixed_float16_scales_the_loss_and_skips_non_finite_steps():
    try:
        keras.mixed_precision.set_global_policy("mixed_float16")
        g = _game()
        for name in ("a", "b"):
            assert isinstance(g.player(name).optimizer, keras.optimizers.LossScaleOptimizer)
        opt = g.player("a").optimizer
        scale0 = float(np.asarray(opt.dynamic_scale))
        assert scale0 > 1.0
        a0 = g.a.kernel.numpy().copy()
        bad = X.copy()
        bad[0, 0] = 6e4  # its square overflows float16: non-finite gradients, the step is skipped
        g.train_step(tf.constant(bad))
        np.testing.assert_array_equal(g.a.kernel.numpy(), a0)
        assert float(np.asarray(opt.dynamic_scale)) == scale0 / 2
        g.train_step(tf.constant(X))
        assert not np.array_equal(g.a.kernel.numpy(), a0)
        assert g.a.kernel.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


SCRIPT = textwrap.dedent("""
    import numpy as np, tensorflow as tf, keras
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from common.multiplayer import MultiPlayerModel, Player

    class Lin(MultiPlayerModel):
        def __init__(self):
            super().__init__(metric_names=("loss",))
            self.d = keras.layers.Dense(1, kernel_initializer="ones", use_bias=False)
        def call(self, x):
            return self.d(x)
        def compute_outputs(self, data, training=False):
            return {"loss": keras.ops.mean(keras.ops.square(self.d(data)))}

    # Batches of 12 (6 + 6 per replica) and 7 (4 + 3: uneven replica batches).
    x = np.random.default_rng(0).normal(size=(19, 3)).astype("float32")
    def train(strategy):
        with strategy.scope():
            m = Lin(); m(x[:1])
            m.compile_players([Player("d", m.d, keras.optimizers.SGD(0.1), lambda o: o["loss"])])
        h = m.fit(x, batch_size=12, epochs=1, verbose=0, shuffle=False)
        return m.d.kernel.numpy().ravel(), h.history["loss"][0]
    w1, l1 = train(tf.distribute.get_strategy())
    ms = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    w2, l2 = train(ms)
    w0 = np.ones(3)
    losses = []
    for b in (x[:12], x[12:]):  # SGD on the mean over each global batch, by hand
        r = b @ w0
        losses.append(np.mean(r ** 2))
        w0 = w0 - 0.1 * 2 * b.T @ r / len(b)
    want = (12 * losses[0] + 7 * losses[1]) / 19      # epoch mean over the samples
    print("RESULT", ms.num_replicas_in_sync, np.abs(w1 - w2).max(), np.abs(w2 - w0).max(), l1, l2, want)
""")


def test_mirrored_two_replicas_average_over_the_global_batch():
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2"}
    p = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    line = [l for l in p.stdout.splitlines() if l.startswith("RESULT")][-1].split()
    replicas, dw, dw_hand, l1, l2, want = int(line[1]), *(float(v) for v in line[2:])
    assert replicas == 2
    assert dw < 1e-5 and dw_hand < 1e-5      # the SGD steps of one device on the global batches
    assert l1 == pytest.approx(want, rel=1e-5) and l2 == pytest.approx(want, rel=1e-5)
