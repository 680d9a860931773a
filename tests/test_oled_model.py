"""Unit tests of OLED's networks, threshold unit, losses and train_step (tiny, CPU, seconds)."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from oled_tf import losses
from oled_tf.model import OLED, MaskUpdateSchedule
from oled_tf.networks import (INPUT_SHAPES, ThresholdUnit, build_mask_generator, build_reconstructor,
                              masked_pixel_count, random_square_mask)


def _adam():
    return keras.optimizers.Adam(5e-4, beta_1=0.5, beta_2=0.9)


@pytest.mark.parametrize("kind", ["mnist", "cifar", "ucsd"])
def test_networks_shapes_range_and_no_pooling(kind):
    r, mg = build_reconstructor(kind), build_mask_generator(kind)
    x = np.random.RandomState(0).uniform(-1, 1, (2, *INPUT_SHAPES[kind])).astype("float32")
    y, a = r(x).numpy(), mg(x).numpy()
    assert y.shape == x.shape and a.shape == (2, *INPUT_SHAPES[kind][:2], 1)
    assert y.min() >= -1.0 and y.max() <= 1.0          # clipped output (paper 3.3)
    assert a.min() >= 0.0                              # ReLU activation map (paper 3.4.1)
    names = [l.__class__.__name__ for m in (r, mg) for l in m._flatten_layers()]
    assert not any("Pool" in n for n in names)         # no max pooling
    assert "Dense" in names and "BatchNormalization" in names


@pytest.mark.parametrize("t,n,expected", [(87.5, 784, 98), (87.5, 1024, 128), (87.5, 900, 112), (50.0, 784, 392)])
def test_threshold_unit_masks_exact_count(t, n, expected):
    side = int(np.sqrt(n))
    rng = np.random.RandomState(1)
    a = rng.uniform(0, 3, (4, side, n // side, 1)).astype("float32")  # distinct values, no ties
    m = ThresholdUnit(t=t)(a).numpy()
    assert masked_pixel_count(n, t) == expected
    np.testing.assert_array_equal((m < 0.5).reshape(4, -1).sum(1), expected)
    # The masked pixels are exactly the top activations, and the mask is binary up to eps.
    top = np.argsort(-a.reshape(4, -1), axis=1)[:, :expected]
    for i in range(4):
        assert set(np.flatnonzero(m[i].ravel() < 0.5)) == set(top[i])
    assert np.all((m < 1e-6) | (m > 1 - 1e-6))


def test_threshold_unit_code_mode_counts_like_tfp_lower_percentile():
    assert masked_pixel_count(784, 87.5, "code") == 99     # index floor(0.875 * 783) = 685 of 784


# The threshold unit's gradient is checked against float64 finite differences in tests/test_oled_fidelity.py.


def test_random_square_mask_has_one_square():
    m = random_square_mask(5, 28, 28, 10, seed=keras.random.SeedGenerator(3)).numpy()
    assert m.shape == (5, 28, 28, 1)
    np.testing.assert_array_equal((m == 0).reshape(5, -1).sum(1), 100)


def test_losses_match_numpy():
    rng = np.random.RandomState(4)
    x, xh, xm = (rng.uniform(-1, 1, (3, 4, 4, 1)).astype("float32") for _ in range(3))
    mask = (rng.uniform(size=(3, 4, 4, 1)) > 0.2).astype("float32")
    np.testing.assert_allclose(losses.mask_loss(x, xm), np.mean((x - xm) ** 2), rtol=1e-6)
    np.testing.assert_allclose(losses.reconstruction_loss(x, xh), np.mean((x - xh) ** 2), rtol=1e-6)
    np.testing.assert_allclose(losses.context_loss(x, xm, mask), np.mean(np.abs((x - xm) * (1 - mask))), rtol=1e-6)
    s = losses.per_sample_scores(x, xh, xm, mask)
    np.testing.assert_allclose(s["s_cont"], np.abs((x - xm) * (1 - mask)).sum((1, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(losses.reconstructor_objective(1.0, 2.0, 3.0, 50.0, 1.0), 104.0)
    np.testing.assert_allclose(losses.mask_module_objective(1.0, 2.0, 50.0), 101.0)
    np.testing.assert_allclose(losses.mask_module_objective(1.0, 2.0, 50.0, use_context=False), 1.0)


def _objectives(model, x):
    out = model.forward(x, training=True)
    obj = model.objectives(x, out)
    return float(obj["r_loss"]), float(obj["mm_objective"])


def test_train_step_lowers_r_objective_and_raises_mm_objective():
    """One train_step: R's objective falls (MM fixed) and MM's objective rises (R fixed) on a fixed batch.

    eps = 1e-2 here: with the paper's infinitesimal eps (1e-12, the default) the mask is binary in float32, so
    MM's objective is piecewise constant in MG's weights and a one-step ascent check measures nothing but
    threshold crossings (see oled_tf/README.md); a finite eps makes Eq. 2 smooth enough to test the direction.
    """
    keras.utils.set_random_seed(0)
    model = OLED("mnist", threshold_eps=1e-2, seed=1)
    model.compile(_adam(), _adam())
    x = np.clip(np.random.RandomState(0).normal(0, 0.5, (32, 28, 28, 1)), -1, 1).astype("float32")
    r0, g0 = model.reconstructor.get_weights(), model.mask_generator.get_weights()
    r_before, m_before = _objectives(model, x)
    logs = model.train_step(tf.constant(x))
    assert set(logs) == {"r_loss", "mm_objective", "l_mask", "l_cont", "l_rec"}
    r1, g1 = model.reconstructor.get_weights(), model.mask_generator.get_weights()
    model.mask_generator.set_weights(g0)
    r_after, _ = _objectives(model, x)
    model.reconstructor.set_weights(r0)
    model.mask_generator.set_weights(g1)
    _, m_after = _objectives(model, x)
    assert r_after < r_before
    assert m_after > m_before


def test_mask_update_schedule_freezes_mm():
    model = OLED("mnist", seed=2)
    model.compile(_adam(), _adam())
    x = np.random.RandomState(5).uniform(-1, 1, (16, 28, 28, 1)).astype("float32")
    cb = MaskUpdateSchedule(every=3)
    cb.set_model(model)
    cb.on_epoch_begin(1)
    assert model.frozen == {"mask_module"}
    g0 = [v.numpy() for v in model.mask_generator.trainable_variables]
    r0 = model.reconstructor.get_weights()
    m_steps = int(model.m_optimizer.iterations.numpy())
    model.train_step(tf.constant(x))
    for v, w0 in zip(model.mask_generator.trainable_variables, g0):
        np.testing.assert_array_equal(v.numpy(), w0)
    assert int(model.m_optimizer.iterations.numpy()) == m_steps       # no MM update at all
    assert any(not np.array_equal(a, b) for a, b in zip(r0, model.reconstructor.get_weights()))
    cb.on_epoch_begin(3)
    assert model.frozen == frozenset()
    model.train_step(tf.constant(x))
    assert any(not np.array_equal(v.numpy(), w0) for v, w0 in zip(model.mask_generator.trainable_variables, g0))


def test_cae_mode_trains_without_mask_module():
    model = OLED("mnist", mask_kind="random", seed=3)
    model.compile(_adam())
    x = np.random.RandomState(6).uniform(-1, 1, (8, 28, 28, 1)).astype("float32")
    logs = model.train_step(tf.constant(x))
    assert np.isfinite(float(logs["r_loss"]))
    out = model(x)
    np.testing.assert_array_equal((out["mask"].numpy() == 0).reshape(8, -1).sum(1), 100)


def test_config_paper_defaults_and_code_values():
    from common.errors import ConfigError
    from oled_tf.config import OLEDConfig

    p = OLEDConfig(dataset="cifar10", scale="paper", workdir="/tmp/x").resolved()
    assert (p.t, p.gamma, p.lambda_rec, p.epochs, p.learning_rate, p.beta_1, p.beta_2) == (87.5, 50.0, 1.0, 300,
                                                                                             5e-4, 0.5, 0.9)
    assert p.mm_uses_context and p.threshold_mode == "paper" and p.n_val_inliers == 150 and not p.bn_recalibration
    assert (p.batch_size, p.mask_update_every) == (256, 4)          # paper silent: the code's values
    c = OLEDConfig(dataset="cifar10", scale="paper", workdir="/tmp/x", code_defaults=True).resolved()
    assert (c.gamma, c.mm_uses_context, c.threshold_mode, c.epochs) == (30.0, False, "code", 400)
    m = OLEDConfig(dataset="mnist", scale="paper", workdir="/tmp/x", code_defaults=True).resolved()
    assert (m.gamma, m.batch_size, m.mask_update_every) == (12.5, 1024, 3)
    q = OLEDConfig(dataset="mnist5k", scale="quick", workdir="/tmp/x").resolved()
    from oled_tf.config import QUICK_EPOCHS

    assert q.epochs == QUICK_EPOCHS["mnist5k"] and q.bn_recalibration and q.gamma == 50.0
    with pytest.raises(ConfigError):
        OLEDConfig(dataset="mnist", t=100.0, workdir="/tmp/x").resolved()
    with pytest.raises(ConfigError):
        OLEDConfig(dataset="svhn", workdir="/tmp/x").resolved()


def test_stratified_test_subset_keeps_proportions():
    from oled_tf.data import _stratified

    y = np.r_[np.zeros(1000, int), np.ones(9000, int)]
    idx = _stratified(np.random.default_rng(0), y, 600)
    assert len(idx) == 600 and len(np.unique(idx)) == 600 and np.sum(y[idx] == 0) == 60


def test_threshold_unit_masks_exactly_k_pixels_when_activations_tie():
    """Defect 4: with fewer than k positive activations (ReLU zeros tie at s = 0), Eq. 2 as written masked the
    whole image; T masks exactly k pixels: the positive ones, then the first zeros in row-major order."""
    a = np.zeros((2, 28, 28, 1), np.float32)
    a[0, :2, :5, 0] = np.arange(1, 11).reshape(2, 5)    # 10 positive activations, k = 98
    a[1] = 0.0                                            # an all-zero map
    m = ThresholdUnit(t=87.5)(a).numpy().reshape(2, -1)
    np.testing.assert_array_equal((m < 0.5).sum(1), [98, 98])
    assert np.all((m < 1e-6) | (m > 1 - 1e-6))
    pos = np.flatnonzero(a[0].ravel() > 0)
    assert np.all(m[0, pos] < 0.5)                       # every positive activation is masked
    zeros_masked = np.flatnonzero((m[0] < 0.5) & (a[0].ravel() == 0))
    np.testing.assert_array_equal(zeros_masked, np.flatnonzero(a[0].ravel() == 0)[:88])
    np.testing.assert_array_equal(np.flatnonzero(m[1] < 0.5), np.arange(98))
    # Without ties nothing changes: Eq. 2's value (the distinct-values test above checks the count).
    b = np.random.RandomState(3).uniform(0, 1, (1, 28, 28, 1)).astype("float32")
    flat = b.ravel()
    s = np.sort(flat)[::-1][97]
    r = np.maximum(s - flat, 0)
    np.testing.assert_allclose(ThresholdUnit(t=87.5, eps=1e-2)(b).numpy().ravel(), r / (r + 1e-2), rtol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_float16"])  # bf16 training: tests/test_distributed.py
def test_mixed_precision_step_float32_losses_and_loss_scaling(policy):
    try:
        keras.mixed_precision.set_global_policy(policy)
        model = OLED("mnist", seed=4)
        model.compile(_adam(), _adam())
        x = tf.constant(np.random.RandomState(7).uniform(-1, 1, (8, 28, 28, 1)).astype("float32"))
        out = model.compute_outputs(x, training=True)
        assert all(out[k].dtype == "float32" for k in ("r_loss", "mm_objective", "l_mask", "l_cont", "l_rec"))
        scaled = isinstance(model.r_optimizer, keras.optimizers.LossScaleOptimizer)
        assert scaled == isinstance(model.m_optimizer, keras.optimizers.LossScaleOptimizer) == (policy == "mixed_float16")
        g0 = [v.numpy() for v in model.mask_generator.trainable_variables]
        logs = model.train_step(x)
        assert all(np.isfinite(float(v)) for v in logs.values())
        assert any(not np.array_equal(v.numpy(), w) for v, w in zip(model.mask_generator.trainable_variables, g0))
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_frame_patches_match_the_evaluation_grid():
    from common.protocols import extract_patches
    from oled_tf.model import frame_patches

    for shape, stride in [((3, 60, 90, 1), 30), ((2, 65, 97, 1), 30), ((1, 64, 64, 1), 17)]:
        f = np.random.RandomState(0).uniform(-1, 1, shape).astype("float32")
        p, per_frame = frame_patches(f, 30, stride)
        want, ids, _ = extract_patches(f, 30, stride)
        np.testing.assert_array_equal(p.numpy(), want)
        assert int(per_frame) * shape[0] == len(want)


def test_ucsd_export_frames_signature_reloads_with_the_evaluation_frame_scores(tmp_path):
    """Defect 11: serving_default takes whole frames (patching + frame max inside the SavedModel) and gives the
    evaluation's frame scores in a fresh process; the 30x30 patch signature is kept as `patches`."""
    from oled_tf import evaluate as ev
    from oled_tf.config import OLEDConfig
    from oled_tf.data import prepare
    from common.lifecycle import Run
    from oled_tf.experiment import build_model, export
    from tests.fixtures_formats import make_ucsd_tree

    make_ucsd_tree(tmp_path / "data", n_train=1, n_test=2, n_frames=4, shape=(60, 90))
    cfg = OLEDConfig(dataset="ucsd", data_dir=str(tmp_path / "data"), scale="smoke", workdir=str(tmp_path / "w"),
                     export_dir=str(tmp_path / "export")).resolved()
    data = prepare(cfg)
    model = build_model(cfg, data.kind, compile_model=False)
    raw = ev.raw_scores(model, data.test_x)
    model.set_score_range(raw)
    run = Run(cfg, tmp_path / "w", tf.distribute.get_strategy())  # what the lifecycle hands the run's body
    info = export(run, model, cfg, data, ev.normalise(raw))
    assert info["signatures"] == ["patches", "serving_default"]
    assert set(info["max_abs_diff_fresh_process"]) == {"patches", "serving_default"}
    loaded = tf.saved_model.load(info["path"])
    frames = np.random.RandomState(1).uniform(-1, 1, (3, 60, 90, 1)).astype("float32")
    out = loaded.signatures["serving_default"](frames=tf.constant(frames))
    patches = loaded.signatures["patches"](images=frame_patches_np(frames))
    np.testing.assert_allclose(out["anomaly_score"].numpy(),
                               patches["anomaly_score"].numpy().reshape(3, 6).max(1), rtol=1e-5, atol=1e-6)
    assert out["patch_anomaly_score"].shape == (3, 6)


def frame_patches_np(frames):
    from common.protocols import extract_patches

    return tf.constant(extract_patches(frames, 30, 30)[0])
