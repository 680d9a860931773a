"""OLED fidelity checks (issue 11): the threshold unit's gradient against float64 finite differences, the
beyond-paper surrogate gradients, the authors'-code networks of --code_defaults, the image-folder schedule and the
reconstructor-collapse report. Tiny inputs, CPU, seconds."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from oled_tf import evaluate as ev
from oled_tf.config import OLEDConfig
from oled_tf.networks import ThresholdUnit, masked_pixel_count

T, SIDE = 75.0, 8  # 64-pixel maps, 16 masked


def _maps(seed=0, batch=2):
    """Activation maps with distinct, well separated values (no ties; a 1e-6 step never changes the ranking)."""
    rng = np.random.RandomState(seed)
    vals = np.stack([rng.permutation(SIDE * SIDE) for _ in range(batch)]).astype(np.float64)
    return (0.05 + vals / (SIDE * SIDE) + rng.uniform(0, 1e-3, vals.shape)).reshape(batch, SIDE, SIDE, 1)


def _eq2_numpy(a, eps):
    """Eq. 2 in float64 numpy: M = relu(s - A) / (relu(s - A) + eps), s = the k-th largest activation."""
    flat = a.reshape(len(a), -1)
    k = masked_pixel_count(flat.shape[1], T)
    s = -np.sort(-flat, axis=1)[:, k - 1:k]
    r = np.maximum(s - flat, 0.0)
    return (r / (r + eps)).reshape(a.shape), s


def _surrogate_numpy(a, temperature, tau=None):
    """The beyond-paper surrogate sigmoid((s - A) / tau), tau = temperature * std(A) + 1e-6 (held fixed)."""
    flat = a.reshape(len(a), -1)
    k = masked_pixel_count(flat.shape[1], T)
    s = -np.sort(-flat, axis=1)[:, k - 1:k]
    if tau is None:
        tau = temperature * flat.std(axis=1, keepdims=True) + 1e-6
    return (1.0 / (1.0 + np.exp(-(s - flat) / tau))).reshape(a.shape), tau


def _finite_difference(f, a, w, h=1e-6):
    """Central differences of sum(w * f(a)) with respect to every entry of a (float64)."""
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        up, down = a.copy(), a.copy()
        up[i] += h
        down[i] -= h
        g[i] = (np.sum(w * f(up)) - np.sum(w * f(down))) / (2 * h)
    return g


def _tf_gradient(unit, a, w, dtype="float32"):
    a = tf.constant(a, dtype)
    with tf.GradientTape() as tape:
        tape.watch(a)
        m = unit(a)
        loss = tf.reduce_sum(tf.constant(w, m.dtype) * m)
    return m.numpy(), tape.gradient(loss, a).numpy()


@pytest.mark.parametrize("gradient", ["faithful", "straight_through", "smooth"])
def test_threshold_unit_gradient_matches_float64_finite_differences(gradient):
    """dLoss/dA of T in float32 equals float64 central differences of the function it claims to differentiate:
    Eq. 2 (faithful; eps = 1e-2, where float32 can represent the derivative) or the sigmoid surrogate (the
    others, with the paper's eps = 1e-12: their forward pass is Eq. 2 / the surrogate, their gradient the
    surrogate's). Gradients through s (the k-th largest activation) are included."""
    a = _maps(0)
    w = np.random.RandomState(1).normal(size=a.shape)
    eps = 1e-2 if gradient == "faithful" else 1e-12
    unit = ThresholdUnit(t=T, eps=eps, gradient=gradient, temperature=0.5)
    m, g = _tf_gradient(unit, a, w)
    if gradient == "faithful":
        want_m = _eq2_numpy(a, eps)[0]
        fd = _finite_difference(lambda v: _eq2_numpy(v, eps)[0], a, w)
    else:
        soft, tau = _surrogate_numpy(a, 0.5)
        want_m = _eq2_numpy(a, eps)[0] if gradient == "straight_through" else soft
        fd = _finite_difference(lambda v: _surrogate_numpy(v, 0.5, tau)[0], a, w)
    np.testing.assert_allclose(m, want_m, atol=1e-6)
    assert np.abs(fd).max() > 1e-3  # the reference is a real, non-trivial gradient
    np.testing.assert_allclose(g, fd, rtol=2e-3, atol=2e-3 * np.abs(fd).max())
    if gradient == "straight_through":  # binary forward with exactly k masked, as Eq. 2
        np.testing.assert_array_equal((m < 0.5).reshape(2, -1).sum(1), masked_pixel_count(SIDE * SIDE, T))


def test_faithful_float32_gradient_is_mostly_rounded_away():
    """With the paper's eps = 1e-12, the float64 gradient of Eq. 2 is non-zero on every kept pixel (Eq. 2:
    -eps / (r + eps)^2), while float32 rounds r + eps to r and returns exactly 0 on most of them (README).
    Autodiff forms that derivative as 1/(r + eps) - r/(r + eps)^2, a difference of two ~1/r terms: float64
    keeps ~4 of its 16 digits (hence rtol 1e-2), float32 none (rounding noise of either sign, or 0)."""
    a = _maps(2, batch=4)
    w = np.random.RandomState(3).normal(size=a.shape)
    m32, g32 = _tf_gradient(ThresholdUnit(t=T), a, w, "float32")
    m64, g64 = _tf_gradient(ThresholdUnit(t=T, dtype="float64"), a, w, "float64")
    kept = m64 > 0.5
    r = np.maximum(_eq2_numpy(a, 1e-12)[1][:, :, None, None] - a, 0)
    np.testing.assert_allclose(g64[kept], (w * -1e-12 / (r + 1e-12) ** 2)[kept], rtol=1e-2)
    assert np.all(g64[kept] != 0)
    assert np.mean(g32[kept] == 0) > 0.5


def _bn_count(model):
    return sum(isinstance(l, keras.layers.BatchNormalization) for l in model._flatten_layers())


def test_code_defaults_build_the_authors_networks():
    """--code_defaults -> architecture "code": MG with BN only in its second block (the code's use_bn flags),
    R's decoder without BN and without the clip, 3 output channels on UCSD; the paper's networks otherwise."""
    from oled_tf.networks import build_decoder, build_mask_generator
    from oled_tf.experiment import build_model

    paper = OLEDConfig(dataset="mnist5k", scale="smoke", workdir="/tmp/x").resolved()
    code = OLEDConfig(dataset="mnist5k", scale="smoke", workdir="/tmp/x", code_defaults=True).resolved()
    assert (paper.architecture, code.architecture) == ("paper", "code")
    mc = build_model(code, "mnist", compile_model=False)
    assert _bn_count(build_mask_generator("mnist")) == 5 and _bn_count(mc.mask_generator) == 1
    bn = [l.name for l in mc.mask_generator._flatten_layers() if isinstance(l, keras.layers.BatchNormalization)]
    assert bn == ["mg_conv2_bn"]  # the 48-filter block, as in the code
    dec_p, dec_c = build_decoder("mnist"), mc.reconstructor.get_layer("decoder_mnist")
    assert _bn_count(dec_p) == 3 and _bn_count(dec_c) == 0
    assert _bn_count(mc.reconstructor.get_layer("encoder_mnist")) == 3  # the encoder keeps BN in both
    z = np.full((1, 64), 50.0, np.float32)
    assert dec_p(z).numpy().max() <= 1.0 and dec_c(z).numpy().max() > 1.0  # the paper's clip only
    assert _bn_count(build_mask_generator("ucsd")) == 5
    # The code's UCSD 3-channel output is compared with the gray patch by broadcasting: the step runs.
    from oled_tf.model import OLED

    m = OLED("ucsd", architecture="code", seed=1)
    assert _bn_count(m.mask_generator) == 1 and m.reconstructor.output.shape[-1] == 3
    out = m.compute_outputs(tf.zeros((2, 30, 30, 1)), training=True)
    assert np.isfinite(float(out["r_loss"]))


def _folder(root, mode):
    from PIL import Image

    rng = np.random.RandomState(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(3):
            shape = (12, 12) if mode == "L" else (12, 12, 3)
            Image.fromarray(rng.randint(0, 255, shape).astype(np.uint8), mode).save(root / c / f"{i}.png")
    return root


@pytest.mark.parametrize("mode,batch,every", [("L", 1024, 3), ("RGB", 256, 4)])
def test_image_folder_schedule_follows_the_images_channels(tmp_path, mode, batch, every):
    """Gray folders get the MNIST-like batch size and MM schedule of the authors' code, colour ones CIFAR's."""
    root = _folder(tmp_path / mode, mode)
    cfg = OLEDConfig(dataset="image_folder", data_dir=str(root), scale="paper", workdir=str(tmp_path / "w")).resolved()
    assert (cfg.batch_size, cfg.mask_update_every) == (batch, every)
    code = OLEDConfig(dataset="image_folder", data_dir=str(root), scale="paper", workdir=str(tmp_path / "w"),
                      code_defaults=True).resolved()
    assert code.gamma == (12.5 if mode == "L" else 30.0)


def test_collapse_report_and_validation_curves(tmp_path, caplog):
    """A constant R(x) is flagged (log + metrics flag), a faithful one is not; the curves PNG is written."""
    rng = np.random.RandomState(0)
    x = rng.uniform(-1, 1, (50, 28, 28, 1))
    assert ev.output_variation(x, x) == pytest.approx(1.0)
    assert ev.output_variation(x, np.broadcast_to(x.mean(0), x.shape)) < 1e-9
    variations = (0.8, 0.3, 0.02)
    history = [{"epoch": e, **{f"val_auroc_{k}": 0.9 - 0.1 * e for k in ev.SCORES}, "r_output_variation": v,
                "l_rec": 0.5 / (e + 1), "l_mask": 0.6 / (e + 1), "l_cont": 0.05} for e, v in enumerate(variations)]
    with caplog.at_level("WARNING"):
        health = ev.training_health(history, tmp_path / "curves.png", "t", [0])
    assert health["collapse_warning"] and health["collapsed_epochs"] == [2]
    assert "COLLAPSE" in caplog.text
    assert (tmp_path / "curves.png").stat().st_size > 5000
    json.dumps(health)
    assert not ev.training_health(history[:2])["collapse_warning"]


def test_gradient_agreement_counts_zeros_and_signs():
    """oled_tf.gradient_check.agreement, which the README's float32-vs-float64 table is made of."""
    from oled_tf.gradient_check import agreement

    ref = np.array([1.0, -2.0, 3.0, 0.0, -1.0])
    got = np.array([1.0, 2.0, 0.0, 0.0, -1e-9])
    a = agreement(got, ref)
    assert a["nonzero"] == pytest.approx(0.6) and a["nonzero_float64"] == pytest.approx(0.8)
    assert a["sign_agreement"] == pytest.approx(0.5)             # 2 of the 4 non-zero reference entries
    assert a["sign_agreement_where_nonzero"] == pytest.approx(2 / 3)
