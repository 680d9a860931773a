"""Behaviour of artifacts_tf (Learning to Spot Artifacts): damage statistics and fill, gating, history buffer,
one adversarial step, the Table 1 ablation switches, the STL-10 fold protocol on a fixture and the export.

Networks are the paper's; the images are 32x32 instead of 96x96 (encoder grid 2x2, conv5 2x2) so that a step
takes seconds on a CPU.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from artifacts_tf import losses
from artifacts_tf.config import ArtifactsConfig
from artifacts_tf.model import ABLATIONS, SpotArtifacts, discriminator_serve_fn
from artifacts_tf.networks import Autoencoder, RepairBlock, damage, sample_keep_mask

S = 32  # image side in these tests (grid 2x2)


def _numpy_avg3(phi):
    """3x3 average over the in-map neighbours (stride 1), written out independently of TF."""
    b, h, w, c = phi.shape
    out = np.zeros_like(phi)
    for i in range(h):
        for j in range(w):
            win = phi[:, max(0, i - 1):i + 2, max(0, j - 1):j + 2, :]
            out[:, i, j, :] = win.mean(axis=(1, 2))
    return out


@pytest.mark.parametrize("theta", [0.3, 0.7])
def test_damage_fraction_shared_mask_and_average_fill(theta):
    keep = sample_keep_mask(200, 6, theta, seed=keras.random.SeedGenerator(1)).numpy()
    assert keep.shape == (200, 6, 6, 1)                                # one mask entry per position (all L)
    assert abs((1.0 - keep.mean()) - theta) < 0.03                     # P(drop) = theta, 7200 draws
    phi = np.random.default_rng(0).normal(size=(200, 6, 6, 8)).astype(np.float32)
    out = damage(tf.constant(phi), tf.constant(keep)).numpy()
    kept = np.broadcast_to(keep == 1.0, phi.shape)
    np.testing.assert_array_equal(out[kept], phi[kept])                # kept entries untouched
    np.testing.assert_allclose(out[~kept], _numpy_avg3(phi)[~kept], rtol=1e-5, atol=1e-6)  # u * phi, 3x3
    # every channel of a dropped position is replaced (the mask is shared across channels)
    dropped = keep[..., 0] == 0.0
    assert np.all(np.abs(out - phi)[dropped].min(axis=-1) > 0)


def test_gating_leaves_undamaged_positions_bit_identical():
    rng = np.random.default_rng(1)
    h = tf.constant(rng.normal(size=(4, 6, 6, 16)).astype(np.float32))
    drop = tf.constant((rng.uniform(size=(4, 6, 6, 1)) < 0.5).astype(np.float32))
    gated, ungated = RepairBlock(16, gated=True), RepairBlock(16, gated=False)
    out_g = gated([h, drop], training=True).numpy()
    ungated([h, drop], training=True)
    ungated.set_weights(gated.get_weights())
    out_u = ungated([h, drop], training=True).numpy()
    keep = np.broadcast_to(drop.numpy() == 0.0, out_g.shape)
    np.testing.assert_array_equal(out_g[keep], h.numpy()[keep])        # Eq. 1/2: only dropped entries change
    assert np.abs(out_g[~keep] - h.numpy()[~keep]).max() > 1e-4         # ... and those do
    assert np.abs(out_u[keep] - h.numpy()[keep]).max() > 1e-4           # (i) without gating: everywhere


@pytest.fixture(scope="module")
def autoencoder():
    keras.utils.set_random_seed(11)  # the same frozen AE in every run (it was unseeded: a flaky train-step test)
    ae = Autoencoder(S, 3)
    ae(tf.zeros((1, S, S, 3)))
    return ae


def _model(ae, build=True, **kw):
    kw.setdefault("history", False)
    m = SpotArtifacts(ae if kw.get("generator") != "gan" else None, S, 3, seed=3, **kw)
    if build:
        m.build_all()
    return m


def test_history_buffer_replaces_half_of_each_fake_batch(autoencoder):
    m = _model(autoencoder, build=False, history=True, history_size=6)
    keep = tf.ones((4, 2, 2, 1))

    def batch(v):
        return tf.fill((4, S, S, 3), float(v)) + tf.reshape(tf.range(4, dtype=tf.float32), (4, 1, 1, 1)) * 0.01

    seen = []
    for step in range(5):
        fake = batch(step + 1)
        mixed, _, fresh = m._mix_history(fake, keep)
        mixed = mixed.numpy()
        np.testing.assert_array_equal(fresh.numpy(), [1, 1, 0, 0])
        np.testing.assert_array_equal(mixed[:2], fake.numpy()[:2])     # first half: this step's examples
        if step == 0:                                                  # empty buffer: fresh examples stand in
            np.testing.assert_array_equal(mixed[2:], fake.numpy()[2:])
        else:                                                          # second half: earlier steps' examples
            for row in mixed[2:]:
                assert any(np.array_equal(row, s) for s in seen)
                assert row[0, 0, 0] < step + 1
        seen += list(fake.numpy()[2:])
        assert int(m.hist_count.numpy()) == min(2 * (step + 1), 6)


def test_one_train_step_moves_both_players_the_intended_way(autoencoder):
    keras.utils.set_random_seed(0)
    m = _model(autoencoder, dropout_rate=0.0, generator_loss="non_saturating")
    # R's step 0.005: with 0.05, one SGD step overshot for 2 of 6 random autoencoders (measured); 0.005 lowered
    # R's loss for all 6.
    m.compile(keras.optimizers.SGD(0.01), keras.optimizers.SGD(0.005))
    x = tf.constant(np.random.default_rng(2).uniform(-1, 1, (4, S, S, 3)).astype(np.float32))
    keep = tf.constant((np.arange(4 * 4).reshape(4, 2, 2, 1) % 2).astype(np.float32))

    def losses_now():
        phi = m.encode(x)
        fake = m.corrupt(x, phi, keep, training=True)
        o = m.objectives(x, m.real_images(x, phi), fake, keep, tf.ones((4,)), training=True)
        return float(o["d_loss"]), float(o["g_loss"])

    d0, g0 = losses_now()
    d_before = [v.numpy() for v in m.discriminator.weights]
    g_before = [v.numpy() for v in m.repair_net.weights]
    ae_before = [v.numpy() for v in autoencoder.weights]
    m.train_step((x, keep))
    d_after = [v.numpy() for v in m.discriminator.weights]
    for v, w in zip(m.discriminator.weights, d_before):               # new R against the old C
        v.assign(w)
    _, g_new_r = losses_now()
    for v, w in zip(m.discriminator.weights, d_after):                # new C against the old R
        v.assign(w)
    g_after = [v.numpy() for v in m.repair_net.weights]
    for v, w in zip(m.repair_net.weights, g_before):
        v.assign(w)
    d_new_c, _ = losses_now()
    assert d_new_c < d0                                                # C got better at Eq. 4 + Eq. 5
    assert g_new_r < g0                                                # R got better at fooling C
    assert any(not np.array_equal(a, b) for a, b in zip(g_after, g_before))
    for v, w in zip(autoencoder.weights, ae_before):                  # the autoencoder stays frozen
        np.testing.assert_array_equal(v.numpy(), w)


def test_each_ablation_changes_the_model_as_stated(autoencoder):
    base = ArtifactsConfig(dataset="fashion_mnist", scale="smoke").resolved()
    assert base.model_kwargs()["drop_rate"] == 0.5 and base.encoder_kernel == 2
    x = tf.constant(np.random.default_rng(3).uniform(-1, 1, (2, S, S, 3)).astype(np.float32))
    models = {}
    for letter in ABLATIONS:  # built from the --ablation letter exactly as train.py does (weights created lazily)
        cfg = ArtifactsConfig(dataset="fashion_mnist", scale="smoke", ablation=letter).resolved()
        kw = cfg.model_kwargs()
        kw["history_size"] = 4
        ae = autoencoder if cfg.encoder_kernel == 2 else Autoencoder(S, 3, encoder_kernel=cfg.encoder_kernel)
        models[letter] = SpotArtifacts(ae if kw.get("generator") != "gan" else None, S, 3, seed=1, **kw)
    b = models["baseline"]
    assert b.use_history and b.mask_prediction and b.has_generator_player and b.repair_net.placement == "distributed"
    phi = b.encode(x)
    assert not np.array_equal(b.real_images(x, phi).numpy(), x.numpy())
    np.testing.assert_array_equal(models["a"].real_images(x, phi).numpy(), x.numpy())               # (a)
    assert [blk.depth for blk in models["b"].repair_net.blocks] == [512] * 5                        # (b)
    assert [blk.depth for blk in b.repair_net.blocks] == [512, 256, 128, 64, 32]
    for letter, theta in zip("cdef", (0.1, 0.3, 0.7, 0.9)):                                         # (c)-(f)
        assert models[letter].drop_rate == theta
    keep = models["f"].sample_keep(400).numpy()
    assert abs((1 - keep.mean()) - 0.9) < 0.03
    g = models["g"]                                                                                  # (g)
    g.discriminator(x)
    n_mask = len(g.discriminator.head_variables("mask"))
    assert not g.mask_prediction and n_mask == 2
    assert len(g.d_variables()) == len(g.discriminator.trainable_variables) - n_mask
    enc_h = models["h"].autoencoder.encoder                                                          # (h)
    assert enc_h.get_layer("e2_conv").kernel.shape[:2] == (3, 3)
    assert b.autoencoder.encoder.get_layer("e2_conv").kernel.shape[:2] == (2, 2)
    assert not any(blk.gated for blk in models["i"].repair_net.blocks)                              # (i)
    assert all(blk.gated for blk in b.repair_net.blocks)
    assert not models["j"].use_history and not hasattr(models["j"], "hist_images")                  # (j)
    k = models["k"]                                                                                  # (k)
    assert not k.has_generator_player and k.g_variables() == [] and k.repair_net is None
    keep = b.sample_keep(2)
    np.testing.assert_allclose(k.corrupt(x, phi, keep).numpy(),
                               autoencoder.decode(damage(phi, keep)).numpy(), atol=1e-5)
    l = models["l"]                                                                                  # (l)
    assert l.gan_generator is not None and l.autoencoder is None and l.repair_net is None
    assert l.real_source == "input" and not l.mask_prediction


def test_losses_follow_eq4_eq5():
    real, fake = tf.constant([2.0, -1.0]), tf.constant([-3.0, 0.5])
    d = losses.discriminator_class_loss(real, fake).numpy()
    sig = lambda v: 1 / (1 + np.exp(-v))
    np.testing.assert_allclose(d, -np.log(sig(real.numpy())) - np.log(1 - sig(fake.numpy())), rtol=1e-5)
    np.testing.assert_allclose(losses.repair_class_loss(fake, "minimax").numpy(), np.log(1 - sig(fake.numpy())),
                               rtol=1e-5)
    logits = tf.constant([[[1.0, -2.0], [0.0, 3.0]]])
    omega = tf.constant([[[1.0, 0.0], [0.0, 1.0]]])
    p = sig(logits.numpy())
    want = -(omega.numpy() * np.log(p) + (1 - omega.numpy()) * np.log(1 - p)).mean()
    np.testing.assert_allclose(losses.mask_loss(logits, omega).numpy(), [want], rtol=1e-5)


def test_stl10_fold_protocol_on_fixture(tmp_path):
    from tests.fixtures_formats import write_stl10
    from artifacts_tf import data as adata
    from artifacts_tf.transfer import fold_linear_accuracy

    rng = np.random.default_rng(0)
    n = 40
    y = np.arange(n) % 4
    x = (rng.integers(0, 40, (n, 96, 96, 3)) + (y * 50)[:, None, None, None]).astype(np.uint8)
    folds = [np.sort(np.concatenate([np.arange(k * 4, k * 4 + 4), (np.arange(k * 4, k * 4 + 4) + 20) % n]))
             for k in range(10)]
    write_stl10(tmp_path, (x, y), (x[:12], y[:12]), x[:6], folds=folds)
    cfg = ArtifactsConfig(dataset="stl10", scale="smoke", data_dir=str(tmp_path), labelled_limit=0, test_limit=0,
                          pretrain_limit=0, folds=10).resolved()
    d = adata.load(cfg)
    assert len(d.folds) == 10 and [list(f) for f in d.folds] == [list(f) for f in folds]  # official folds
    assert len(d.unlabelled) == 6 and len(d.labelled_y) == n
    feats = d.labelled_x.reshape(n, -1)[:, ::97].astype(np.float32)
    res = fold_linear_accuracy(feats, d.labelled_y, feats[:12], d.test_y, d.folds)
    assert len(res["per_fold"]) == 10 and res["mean"] == pytest.approx(np.mean(res["per_fold"]))
    assert res["mean"] > 90.0                                          # separable fixture classes


def test_export_reloads_in_a_fresh_process(autoencoder, tmp_path):
    from common.export import check_export, export_saved_model

    m = _model(autoencoder)
    serve = discriminator_serve_fn(m.discriminator)
    path = export_saved_model(m.discriminator, serve, tmp_path, "artifacts_test", (S, S, 3))
    x = np.random.default_rng(4).uniform(-1, 1, (3, S, S, 3)).astype(np.float32)
    expected = {k: np.asarray(v) for k, v in serve(tf.constant(x)).items()}
    assert expected["features"].shape == (3, 256) and expected["damage_mask"].shape == (3, 2, 2)
    assert expected["real_probability"].shape == (3,)
    diffs = check_export(path, x, expected)
    assert set(diffs) == {"features", "real_probability", "damage_mask"}


def test_game_resumes_exactly_after_a_kill_history_buffer_included(autoencoder, tmp_path):
    """Two epochs in one go == one epoch, a new process-like start (fresh model), the second epoch resumed from
    the checkpoint: weights, both optimizers, the history buffer and the RNG states all come back."""
    from artifacts_tf.experiment import _adam, build_model, game_batches
    from common.streaming import array_source
    from common.training import fit_resumable

    cfg = ArtifactsConfig(dataset="fashion_mnist", scale="smoke", image_size=S, batch_size=4, history_size=4,
                          seed=5).resolved()
    images = np.random.default_rng(6).integers(0, 256, (4, 28, 28, 1)).astype(np.uint8)
    batches, steps = game_batches(cfg, array_source(images), seed=7, epochs=2)   # one step per epoch (short test)
    assert steps == 1

    def train(workdir, epochs):
        keras.utils.set_random_seed(0)
        m = build_model(cfg, autoencoder)
        m.compile(_adam(cfg, 4), _adam(cfg, 4), run_eagerly=True)  # no trace: seconds, same arithmetic
        hist = fit_resumable(m, batches, epochs=epochs, workdir=workdir, steps_per_epoch=steps, tensorboard=False,
                             verbose=0)
        state = [v.numpy() for v in m.weights] + [v.numpy() for o in (m.d_optimizer, m.g_optimizer)
                                                  for v in o.variables]
        return m, hist, state

    _, hist_a, a = train(tmp_path / "a", 2)
    train(tmp_path / "b", 1)                                         # "killed" after epoch 1
    m_b, hist_b, b = train(tmp_path / "b", 2)                        # a fresh model resumes epoch 2
    assert int(m_b.hist_count.numpy()) == 4 and int(m_b.d_optimizer.iterations.numpy()) == 2
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert hist_a == hist_b


def test_cli_help_and_one_line_errors_before_tensorflow(tmp_path):
    import subprocess
    import sys

    from common.paths import REPO_ROOT

    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    cmd = [sys.executable, "-m", "artifacts_tf.train"]
    ok = subprocess.run(cmd + ["--help"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "--autoencoder_dir" in ok.stdout and "--ablation" in ok.stdout
    for bad, what in ((["--dataset=fashion_mnist", "--image_size=40"], "--image_size"),
                      (["--dataset=fashion_mnist", "--ablation=z"], "--ablation"),
                      (["--dataset=fashion_mnist", f"--workdir={tmp_path / 'w'}", f"--autoencoder_dir={tmp_path}"],
                       "not a run directory")):
        r = subprocess.run(cmd + bad, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
        lines = (r.stdout + r.stderr).strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:") and what in lines[0], lines
    assert not (tmp_path / "w").exists()                                 # nothing half-written


def test_table1_floors_go_to_extra_not_registry_rows():
    from artifacts_tf import tables

    m = {"transfer": {"discriminator": {"accuracy": 71.0}, "random_init_conv": {"accuracy": 40.0},
                      "autoencoder_encoder": {"accuracy": 55.0}, "seconds": 1.0}, "autoencoder_id": "ab:cd"}
    extra = tables._extra(m)
    assert extra["floors"] == {"random-init frozen conv (floor)": 40.0, "frozen AE encoder (floor)": 55.0}
    assert extra["autoencoder_id"] == "ab:cd"
    for job in tables.JOBS:                                   # cells: the paper's rows only
        assert all("floor" not in row.lower() for row, _ in job.cells)


def test_mixed_float16_step_scales_losses_and_stays_finite():
    """Under mixed_float16 both players' optimizers are loss-scaled (common.multiplayer) and a step runs (the
    model's call used to refuse the float16 input that the policy autocasts)."""
    keras.config.set_dtype_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(1)
        ae = Autoencoder(S, 3)
        ae(tf.zeros((1, S, S, 3)))
        m = _model(ae, history=True, history_size=4)
        m.compile(keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4))
        assert all(isinstance(o, keras.optimizers.LossScaleOptimizer) for o in (m.d_optimizer, m.g_optimizer))
        x = tf.constant(np.random.default_rng(5).uniform(-1, 1, (4, S, S, 3)).astype(np.float32))
        logs = m.train_step(x)
        assert all(np.isfinite(float(v)) for v in logs.values())
        assert int(m.d_optimizer.iterations.numpy()) == 1 and int(m.g_optimizer.iterations.numpy()) == 1
    finally:
        keras.config.set_dtype_policy("float32")
