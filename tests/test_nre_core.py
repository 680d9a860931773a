"""NRE core: Eq. 4 cosine S / D on hand-computed vectors, Eq. 5 terms, one train_step lowers Eq. 5."""
import numpy as np
import pytest

import keras
import tensorflow as tf

from common.errors import ConfigError
from nre_tf import losses, networks
from nre_tf.model import AutoEncoder, NREModel


def test_cosine_similarity_and_distance_by_hand():
    a = np.array([[1.0, 0.0, 0.0], [1.0, 2.0, 2.0], [3.0, 4.0, 0.0], [0.0, 0.0, 0.0]])
    b = np.array([[0.0, 1.0, 0.0], [2.0, 4.0, 4.0], [4.0, 3.0, 0.0], [1.0, 1.0, 1.0]])
    # by hand: orthogonal -> 0; parallel -> 1; (12 + 12) / (5 * 5) = 0.96; a zero vector -> 0
    s = losses.cosine_similarity(a, b).numpy()
    np.testing.assert_allclose(s, [0.0, 1.0, 0.96, 0.0], atol=1e-6)
    np.testing.assert_allclose(losses.cosine_distance(a, b).numpy(), [1.0, 0.0, 0.04, 1.0], atol=1e-6)


def test_eq5_terms_by_hand():
    ra_x = np.array([[1.0, 0.0]])
    ra_xp = np.array([[1.0, 1.0]])
    near = np.array([[[1.0, 1.0], [0.0, 1.0]]])  # T = 2: S = 1 and 1/sqrt2
    far = np.array([[[1.0, 0.0], [0.0, 2.0]]])  # S = 1/sqrt2 each
    t1, t2, t3 = (t.numpy()[0] for t in losses.nre_loss_terms(ra_x, ra_xp, near, far))
    r = 1 / np.sqrt(2)
    assert t1 == pytest.approx(1 - r, abs=1e-6)
    assert t2 == pytest.approx((1 - 1) + (1 - r), abs=1e-6)
    assert t3 == pytest.approx(2 * r, abs=1e-6)
    loss, _ = losses.nre_loss(ra_x, ra_xp, near, far, (0.5, 0.2, 0.3))
    assert float(loss) == pytest.approx(0.5 * t1 + 0.2 * t2 + 0.3 * t3, abs=1e-6)


@pytest.mark.parametrize("bad", [(0.5, 0.5, 0.5), (1.2, -0.1, -0.1), (0.5, 0.5), "a,b,c"])
def test_lambdas_must_sum_to_one(bad):
    with pytest.raises(ConfigError):
        losses.check_lambdas(bad)


def test_network_shapes():
    for arch, shape, d in [("conv", (28, 28, 1), 16), ("conv", (30, 30, 1), 16), ("magnet", (28, 28, 1), 588)]:
        enc, dec = networks.build_autoencoder(arch, shape, latent_dim=16)
        z = enc(np.zeros((2, *shape), np.float32))
        assert z.shape == (2, d) and float(tf.reduce_min(z)) >= 0.0  # ReLU on top of R_A
        assert dec(z).shape == (2, *shape)
    with pytest.raises(ConfigError):
        networks.build_autoencoder("vgg", (28, 28, 1))


def test_one_train_step_lowers_eq5_on_a_fixed_batch():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(16, 28, 28, 1)).astype(np.float32)
    enc_a, dec_a = networks.build_autoencoder("conv", (28, 28, 1), latent_dim=16)
    sim = keras.models.clone_model(enc_a)
    sim.set_weights(enc_a.get_weights())
    model = NREModel(enc_a, dec_a, sim, lambdas=(0.5, 0.2, 0.3))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    bank = np.asarray(sim(x))
    near = bank[rng.integers(0, 16, size=(16, 2))]
    far = bank[rng.integers(0, 16, size=(16, 2))]
    sim_before = [w.copy() for w in sim.get_weights()]
    before = float(model.compute_nre_loss(x, near, far)[0])
    model.train_step((tf.constant(x), tf.constant(near), tf.constant(far)))
    after = float(model.compute_nre_loss(x, near, far)[0])
    assert after < before
    for w0, w1 in zip(sim_before, sim.get_weights()):  # A stays frozen
        np.testing.assert_array_equal(w0, w1)


@pytest.mark.parametrize("corruption", ["none", "gaussian", "block"])
def test_autoencoder_variants_train(corruption):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(1).uniform(size=(32, 28, 28, 1)).astype(np.float32)
    enc, dec = networks.build_autoencoder("conv", (28, 28, 1), latent_dim=8)
    ae = AutoEncoder(enc, dec, corruption=corruption)
    ae.compile(optimizer=keras.optimizers.Adam(1e-3))
    hist = ae.fit(x, epochs=3, batch_size=16, verbose=0)
    assert np.all(np.isfinite(hist.history["loss"]))
    assert hist.history["loss"][-1] < hist.history["loss"][0]
