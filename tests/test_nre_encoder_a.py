"""Issue 19: encoder A as its own stage (trained once, early-stopped on held-out reconstruction, reused by every
NRE run on the same data, its id in the run identity), the gates (same-class rates of N(X') / F(X') by hand, the
WARNING line) and the Table 1 budget flag (pretrained by default, split behind --nre_budget)."""
import dataclasses
import logging
import os

import numpy as np
import pytest

from common.errors import ConfigError
from nre_tf import gates
from nre_tf.config import NREConfig, nre_epoch_split


def test_same_class_rates_by_hand():
    y = np.array([0, 0, 1, 1, 2, 2])
    near = np.array([[1], [0], [3], [2], [5], [4]])   # every N(X') of X's class
    far = np.array([[2], [3], [0], [5], [0], [1]])    # never
    assert gates.same_class_rate(y, near) == 1.0 and gates.same_class_rate(y, far) == 0.0
    # T = 2: sample 0's neighbours 1 (same) and 2 (other), the others both same: (1 + 2 * 5) / 12
    near2 = np.array([[1, 2], [0, 0], [3, 3], [2, 2], [5, 5], [4, 4]])
    assert gates.same_class_rate(y, near2) == pytest.approx(11 / 12)
    assert gates.chance_rate(y) == pytest.approx(1 / 3)
    assert gates.chance_rate(np.arange(10) % 10) == pytest.approx(0.1)
    assert gates.neighbour_rates(y, near, far) == {"near": 1.0, "far": 0.0}
    # near chance: 0.1 + 0.25 * 0.9 = 0.325 is the line on ten balanced classes
    assert gates.near_chance(0.30, 0.1) and not gates.near_chance(0.35, 0.1)
    x_fit = np.array([[0.0, 1.0], [1.0, 1.0]])
    assert gates.mean_image_mse(x_fit, np.array([[0.5, 0.0]])) == pytest.approx(0.5)  # (0 + 1) / 2


def test_gates_warn_once_when_neighbours_are_random(caplog):
    y = np.arange(100) % 10
    stage = {"heldout_mse": 0.02, "mean_image_mse": 0.068, "epochs_run": 20, "best_epoch": 15}
    bad = {"neighbour_rates": [{"near": 0.1, "far": 0.1}], "neighbour_rates_final": {"near": 0.12, "far": 0.1}}
    with caplog.at_level(logging.WARNING):
        g = gates.gates(stage, bad, y, name="t")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("WARNING: t: N(X') has the class of X only 0.100")
    assert g["a_below_mean_image"] and not g["neighbours_ok"] and not g["passed"]
    assert g["near_same_class_rate"] == 0.1 and g["near_same_class_rate_final"] == 0.12
    caplog.clear()
    good = {"neighbour_rates": [{"near": 0.86, "far": 0.03}]}
    with caplog.at_level(logging.WARNING):
        g = gates.gates(stage, good, y)
    assert g["passed"] and not [r for r in caplog.records if r.levelno == logging.WARNING]
    with caplog.at_level(logging.WARNING):  # A above the mean image: one line, gate failed
        g = gates.gates({**stage, "heldout_mse": 0.2}, good, y)
    assert not g["passed"] and sum("mean image" in r.getMessage() for r in caplog.records) == 1


def _stage_cfg(tmp_path, **kw):
    return NREConfig(dataset="mnist5k", scale="smoke", workdir=str(tmp_path / "w"), latent_dim=4, batch_size=32,
                     ae_epochs=3, ae_patience=1, encoder_a_root=str(tmp_path / "stages"), **kw).resolved()


def test_stage_trains_once_keeps_its_best_epoch_and_is_reused(tmp_path):
    from common import run_identity as ri
    from nre_tf import encoder_a, trainer

    x = trainer.load_classification_split("mnist5k", None, 96, 8, 0)[0]
    cfg = _stage_cfg(tmp_path)
    first, d = encoder_a.ensure(cfg, x)
    assert not first["reused"] and 1 <= first["epochs_run"] <= 3 and first["n_heldout"] == 10
    # the saved A is the best epoch's: its held-out MSE is the curve's minimum
    assert first["heldout_mse"] == pytest.approx(min(first["heldout_curve"]), rel=1e-5)
    log = (d / "train" / "log.csv").stat().st_mtime_ns
    again, d2 = encoder_a.ensure(cfg, x)  # the same data and settings: loaded, nothing trained
    assert again["reused"] and d2 == d and again["weights_id"] == first["weights_id"]
    assert (d / "train" / "log.csv").stat().st_mtime_ns == log
    # another setting or other data: another stage
    other, d3 = encoder_a.ensure(dataclasses.replace(cfg, ae_lr=3e-3), x)
    _, d4 = encoder_a.ensure(cfg, x[:90])
    assert len({d, d3, d4}) == 3 and other["weights_id"] != first["weights_id"]
    # the id enters NRE's run identity; where the stage lives does not
    a = dataclasses.replace(cfg, encoder_a_id=first["weights_id"], encoder_a_dir=str(d))
    b = dataclasses.replace(cfg, encoder_a_id=other["weights_id"], encoder_a_dir=str(d3))
    assert ri.config_hash(a) != ri.config_hash(b)
    assert ri.config_hash(a) == ri.config_hash(dataclasses.replace(a, encoder_a_dir="/else", encoder_a_root="/x"))
    # loading checks the recorded sha256
    model, nets = encoder_a.load(a, x.shape[1:])
    rec = trainer.reconstruct(model, x[:4])
    assert rec.shape == (4, 28, 28, 1) and set(nets) == {"encoder", "decoder"}
    with open(d / f"{encoder_a.A_NAME}.weights.h5", "ab") as f:
        f.write(b"x")
    with pytest.raises(ConfigError, match="changed after the run recorded it"):
        encoder_a.load(a, x.shape[1:])


def test_a_second_nre_run_loads_encoder_a(tmp_path, capsys):
    from fixtures_formats import make_mnist_like
    from nre_tf import experiment

    make_mnist_like(tmp_path / "data" / "mnist", n_train=48, n_test=8)
    base = dict(dataset="mnist", data_dir=str(tmp_path / "data"), scale="smoke", latent_dim=8, n_train=0, n_test=0,
                clusters=2, encoder_a_root=str(tmp_path / "stages"))
    m1 = experiment.run(NREConfig(workdir=str(tmp_path / "w1"), **base))
    assert "encoder A: trained" in capsys.readouterr().out
    m2 = experiment.run(NREConfig(workdir=str(tmp_path / "w2"), lambdas=(0.6, 0.2, 0.2), **base))
    assert "encoder A: reusing the frozen stage" in capsys.readouterr().out
    assert m1["encoder_a"]["id"] == m2["encoder_a"]["id"] and m1["encoder_a"]["dir"] == m2["encoder_a"]["dir"]
    for m in (m1, m2):  # the gates of every run: A vs the mean image, neighbour rates on the labels
        g = m["gates"]
        assert {"a_heldout_mse", "mean_image_mse", "near_same_class_rate", "far_same_class_rate", "chance_rate",
                "near_same_class_rate_final", "passed"} <= set(g)
        assert 0.0 <= g["near_same_class_rate"] <= 1.0 and g["chance_rate"] == pytest.approx(0.1, abs=0.02)
    assert len(os.listdir(tmp_path / "stages")) == 1


def test_budget_flag_wiring(tmp_path):
    from nre_tf import encoder_a, trainer
    from nre_tf.representation_eval import train_pretrained

    assert NREConfig().nre_budget == "pretrained"
    assert nre_epoch_split(40, "pretrained") == (0, 40) and nre_epoch_split(5, "split") == (2, 3)
    quick = NREConfig(dataset="mnist5k", scale="quick").resolved()
    assert tuple(quick.epoch_pair) == (40, 100) and quick.substitute_rounds == 1 and quick.ae_lr == 1e-3
    NREConfig(dataset="mnist5k", scale="smoke", epoch_pair=(1, 3)).resolved()  # fine: no warm-up to split
    with pytest.raises(ConfigError, match="split needs at least 2 epochs"):
        NREConfig(dataset="mnist5k", scale="smoke", epoch_pair=(1, 3), nre_budget="split").resolved()
    x, y, xt, _ = trainer.load_classification_split("mnist5k", None, 64, 8, 0)
    cfg = _stage_cfg(tmp_path, epoch_pair=(1, 2), clusters=2)
    cfg = encoder_a.prepare(cfg, lambda c: x)
    feats, recon, info, timings = train_pretrained(cfg, x, xt, tmp_path / "w", y=y)
    # NRE and the control: E2 = 2 epochs each, from A, snapshots after 1 and 2; AE [20]: 2 epochs from scratch
    for kind in ("ae", "control", "nre"):
        assert len((tmp_path / "w" / kind / "log.csv").read_text().strip().splitlines()) == 1 + 2, kind
        assert (tmp_path / "w" / kind / "epoch1_encoder.weights.h5").exists()
    assert sorted(feats) == [(k, e) for k in ("ae", "control", "nre") for e in (1, 2)]
    assert info["encoder_a_id"] == cfg.encoder_a_id and info["ae_warmup_epochs"] == 0
    assert len(info["neighbour_rates"]) == 2 and "passed" in info["gates"]
    # the control starts from A: one epoch at a vanishing learning rate leaves A's kernels in place
    a_model, a_nets = encoder_a.load(cfg, x.shape[1:])
    _, cnets, _ = trainer.train_autoencoder("ae", x, 1, 32, tmp_path / "c0", lr=1e-12, latent_dim=4, init=a_nets)
    for w_a, w_c in zip(a_nets["encoder"].trainable_weights, cnets["encoder"].trainable_weights):
        np.testing.assert_allclose(np.asarray(w_c), np.asarray(w_a), atol=1e-6)
