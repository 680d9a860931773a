"""NRE fidelity fixes of issue 11: Table 1's epoch budget (NRE gets the same E epochs as every baseline), the
paper's 50,000 MNIST training images, the control and floor rows of Table 1, and Table 3's clean-accuracy guard."""
import numpy as np
import pytest

from common.errors import ConfigError
from nre_tf.config import NREConfig, nre_epoch_split


def test_epoch_split_sums_to_the_budget():
    assert [nre_epoch_split(e) for e in (40, 100, 2, 5)] == [(20, 20), (50, 50), (1, 1), (2, 3)]
    assert nre_epoch_split(5, "split", 0.8) == (4, 1) and nre_epoch_split(3, "split", 0.1) == (1, 2)
    assert nre_epoch_split(40, "extra") == (40, 40)  # the other reading: 2E in all
    with pytest.raises(ConfigError, match="cannot be split"):
        nre_epoch_split(1)
    for bad in (dict(nre_budget="half"), dict(nre_warmup=1.0), dict(nre_warmup=0.0),
                dict(epoch_pair=(1, 3), nre_budget="split")):
        with pytest.raises(ConfigError):
            NREConfig(dataset="mnist5k", scale="smoke", **bad).resolved()


def test_mnist_keeps_the_papers_first_50000_training_images(tmp_path, monkeypatch):
    from fixtures_formats import make_mnist_like
    from nre_tf import trainer

    data = make_mnist_like(tmp_path / "mnist", n_train=30, n_test=12)
    monkeypatch.setattr(trainer, "MNIST_PAPER_TRAIN", 20)  # stands for 50,000 on a 30-image file
    x, y, xt, yt = trainer.load_classification_split("mnist", tmp_path, 0, 0, 0)
    assert np.array_equal(x[..., 0], data["train"][0][:20]) and np.array_equal(y, data["train"][1][:20])
    assert np.array_equal(xt[..., 0], data["test"][0])  # all 10,000 test images


def test_floor_rows_are_registered_and_computed_without_training():
    from common import registry
    from nre_tf.floors import raw_pixel_floor, random_encoder_floor, table1_cells
    from nre_tf.tables import JOBS, T1_COLS

    job = next(j for j in JOBS if j.key == "nre.table1/mnist5k")
    table = registry.get_table("nre.table1")
    added = {registry.AE_CONTROL_ROW, registry.FLOOR_ROW, registry.RAW_PIXEL_ROW, registry.RANDOM_ENCODER_ROW}
    assert all(table.accepts((r, c)) for r in added for c in T1_COLS)
    assert {r for r, _ in job.cells} >= added
    # common.add_floors fills only the untrained rows: the control needs training.
    assert registry.AE_CONTROL_ROW not in registry.FLOOR_ROWS
    # Separable classes: both SVMs solve them on raw pixels and on a random (untrained) encoder's code.
    rng = np.random.default_rng(0)
    means = rng.uniform(0, 1, (3, 28, 28, 1)) > 0.5

    def images(n, seed):
        r = np.random.default_rng(seed)
        lab = np.arange(n) % 3
        img = np.where(r.uniform(size=(n, 28, 28, 1)) < 0.1, ~means[lab], means[lab])  # 10% pixels flipped
        return (img * 255).astype(np.uint8), lab

    (x, y), (xt, yt) = images(90, 1), images(45, 2)
    raw = raw_pixel_floor(x, y, xt, yt)
    import keras

    keras.utils.set_random_seed(0)
    rand = random_encoder_floor(x, y, xt, yt, latent_dim=16)
    assert raw["linear_svm"] == 1.0 and rand["linear_svm"] >= 0.9, (raw, rand)
    cells = table1_cells({"pca20": {"linear_svm": 0.1, "rbf_svm": 0.2}, "raw_pixels": raw,
                          "random_encoder": rand}, T1_COLS)
    assert cells[(registry.RAW_PIXEL_ROW, "R-SVM 100")] == raw["rbf_svm"]
    assert cells[(registry.FLOOR_ROW, "L-SVM 40")] == 0.1 and len(cells) == 12


def test_table1_gives_nre_the_same_epochs_as_the_baselines(tmp_path):
    """A column of E = 2 epochs: NRE = 1 AE epoch + 1 Eq. 5 epoch (the old code trained 2 + 2)."""
    from nre_tf import trainer
    from nre_tf.representation_eval import train_ae_and_nre

    cfg = NREConfig(dataset="mnist5k", scale="smoke", workdir=str(tmp_path), latent_dim=4, batch_size=32,
                    clusters=2, epoch_pair=(2, 2), nre_budget="split").resolved()
    x, _, xt, _ = trainer.load_classification_split("mnist5k", None, 64, 8, 0)
    feats, recon, info, _ = train_ae_and_nre(cfg, x, xt, tmp_path)
    assert (info[2]["ae_warmup_epochs"], info[2]["eq5_epochs"], info[2]["total_epochs"]) == (1, 1, 2)
    assert len((tmp_path / "nre_e2" / "log.csv").read_text().strip().splitlines()) == 1 + 1  # header + 1 epoch
    # The plain AE ran E = 2 epochs (not 2 x 2) and saved the warm-up snapshot NRE starts from.
    assert len((tmp_path / "ae" / "log.csv").read_text().strip().splitlines()) == 1 + 2
    assert (tmp_path / "ae" / "epoch1_encoder.weights.h5").exists()
    assert sorted(feats) == [("ae", 2), ("nre", 2)] and recon[("nre", 2)].shape == (8, 28, 28, 1)
    assert "a_heldout_mse" in info["gates"]["per_column"]["2"]  # the gates of the split reading's A


def test_refinement_guard_threshold():
    from nre_tf.adversarial import MIN_CLEAN_FRACTION, RefinementError, check_refinement

    check_refinement("MagNet", 0.5 * 0.94 + 1e-9, 0.94)  # at the threshold: passes
    with pytest.raises(RefinementError, match="destroys clean accuracy.*0.101.*0.941"):
        check_refinement("MagNet", 0.101, 0.941, loss=0.05)
    assert MIN_CLEAN_FRACTION == 0.5


def test_table3_stops_before_writing_when_the_reformer_collapses(tmp_path):
    """One reformer epoch at a learning rate that saturates its sigmoids: a constant output, chance accuracy."""
    from nre_tf import adversarial

    cfg = NREConfig(dataset="mnist5k", scale="smoke", workdir=str(tmp_path), n_train=1024, n_test=200,
                    magnet_epochs=1, magnet_lr=5.0, lambdas=(0.6, 0.2, 0.2), encoder_a_root=str(tmp_path / "a"))
    with pytest.raises(adversarial.RefinementError, match="refinement by MagNet .* destroys clean accuracy"):
        adversarial.run(cfg)
    assert not (tmp_path / "metrics.json").exists() and not (tmp_path / "plain_ae").exists()
