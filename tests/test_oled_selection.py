"""Issue 18 behaviour of OLED, each test seconds: one selected epoch for all scores (s_avg) against per-score
selection on a hand-made curve, validation every k epochs, the mask IoU, the two readings of Eq. 5-7's norms
against hand-computed values, the decoder's BN / clip switches, MG's BN frozen on non-MM steps, and the cached
timed XLA probe."""
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from oled_tf import evaluate as ev
from oled_tf import losses

# Validation AUROCs per epoch (hand-made): s_avg peaks at epoch 2, s_rec at 0, s_mask at 3, s_cont at 1.
CURVE = [
    {"s_rec": 0.90, "s_mask": 0.70, "s_cont": 0.60, "s_avg": 0.75},
    {"s_rec": 0.80, "s_mask": 0.72, "s_cont": 0.95, "s_avg": 0.80},
    {"s_rec": 0.85, "s_mask": 0.80, "s_cont": 0.70, "s_avg": 0.88},
    {"s_rec": 0.60, "s_mask": 0.90, "s_cont": 0.50, "s_avg": 0.70},
]


def _replay(selection):
    best, best_epoch = {k: -1.0 for k in ev.SCORES}, {k: None for k in ev.SCORES}
    for epoch, aucs in enumerate(CURVE):
        for k in ev.select_improved(aucs, best, selection):
            best[k], best_epoch[k] = aucs[k], epoch
    return best_epoch


def test_s_avg_selection_picks_one_epoch_for_all_scores_per_score_its_own():
    assert _replay("s_avg") == {k: 2 for k in ev.SCORES}
    assert _replay("per_score") == {"s_rec": 0, "s_mask": 3, "s_cont": 1, "s_avg": 2}
    with pytest.raises(ValueError):
        ev.select_improved(CURVE[0], CURVE[0], "best_of_all")


def test_validation_every_k_epochs_and_always_the_last(tmp_path):
    sel = ev.ModelSelection(np.zeros((2, 28, 28, 1), np.float32), np.array([0, 1]), tmp_path, every=3, epochs=8)
    assert [e for e in range(8) if sel.validates(e)] == [2, 5, 7]
    every = ev.ModelSelection(np.zeros((2, 28, 28, 1), np.float32), np.array([0, 1]), tmp_path, every=1, epochs=4)
    assert [e for e in range(4) if every.validates(e)] == [0, 1, 2, 3]


def test_mask_iou_of_masked_pixels():
    a = np.ones((1, 2, 3, 1)); b = np.ones((1, 2, 3, 1))
    a[0, 0, :2] = 0            # masked: (0,0), (0,1)
    b[0, 0, 1:] = 0            # masked: (0,1), (0,2)
    assert ev.mask_iou(a, b) == pytest.approx(1 / 3)
    assert ev.mask_iou(a, a) == 1.0


def test_loss_reductions_against_hand_computed_values():
    # Two samples of 2x2 pixels; mask 0 at pixel (0, 0) of each (the masked region), 1 elsewhere.
    x = np.array([[[1.0, 0.5], [0.0, -1.0]], [[0.2, 0.2], [0.2, 0.2]]], np.float32)[..., None]
    r = np.array([[[0.0, 0.5], [0.5, -1.0]], [[-0.4, 0.0], [0.2, 0.2]]], np.float32)[..., None]
    m = np.ones_like(x)
    m[:, 0, 0] = 0.0
    # squared errors: sample 0: 1, 0, .25, 0 (sum 1.25); sample 1: .36, .04, 0, 0 (sum .40)
    assert float(losses.mask_loss(x, r, "mean")) == pytest.approx(1.65 / 8)
    assert float(losses.mask_loss(x, r, "norm")) == pytest.approx((1.25 + 0.40) / 2)
    assert float(losses.reconstruction_loss(x, r, "norm")) == pytest.approx((1.25 + 0.40) / 2)
    # masked-region errors: 1.0 and 0.6. Code: L1 averaged over all 8 pixels; paper norm: mean of per-sample
    # unsquared L2 norms = (1.0 + 0.6) / 2.
    assert float(losses.context_loss(x, r, m, "mean")) == pytest.approx(1.6 / 8)
    assert float(losses.context_loss(x, r, m, "norm")) == pytest.approx(0.8, rel=1e-5)
    # the norm's gradient: d||e||/dR on the masked pixel = -(x - R)/||e|| / batch = -1/2 for sample 0
    rv = tf.Variable(r)
    with tf.GradientTape() as tape:
        loss = losses.context_loss(x, rv, m, "norm")
    g = tape.gradient(loss, rv).numpy()
    assert g[0, 0, 0, 0] == pytest.approx(-0.5) and g[1, 0, 0, 0] == pytest.approx(-0.5)
    assert np.count_nonzero(g) == 2   # only the masked pixels
    with pytest.raises(ValueError):
        losses.mask_loss(x, r, "sum")
    from oled_tf.config import REDUCTIONS

    assert REDUCTIONS == losses.REDUCTIONS


def test_decoder_switches_bn_and_clip_separately():
    from oled_tf.networks import build_decoder

    def bn_count(net):
        return sum(isinstance(l, keras.layers.BatchNormalization) for l in net.layers)

    z = np.full((2, 64), 30.0, np.float32)   # a large code: outputs far outside [-1, 1] without the clip
    paper = build_decoder("mnist", 0, "paper")
    assert bn_count(paper) == 3 and "dec_clip" in [l.name for l in paper.layers]
    nbn = build_decoder("mnist", 0, "paper", decoder_bn=False, output_clip=True)
    assert bn_count(nbn) == 0 and np.abs(nbn(z).numpy()).max() <= 1.0
    noclip = build_decoder("mnist", 0, "paper", decoder_bn=True, output_clip=False)
    assert bn_count(noclip) == 3 and "dec_clip" not in [l.name for l in noclip.layers]
    assert bn_count(build_decoder("mnist", 0, "code")) == 0
    code_bn = build_decoder("mnist", 0, "code", decoder_bn=True)
    assert bn_count(code_bn) == 3


def test_config_resolves_issue18_defaults_and_restores_the_paper_text():
    from oled_tf.config import DEFAULT_DECODER_BN, DEFAULT_LOSS_REDUCTION, DEFAULT_OUTPUT_CLIP, OLEDConfig

    q = OLEDConfig(dataset="fashion_mnist", scale="quick", workdir="/tmp/x").resolved()
    assert (q.decoder_bn, q.output_clip, q.loss_reduction) == (DEFAULT_DECODER_BN, DEFAULT_OUTPUT_CLIP,
                                                               DEFAULT_LOSS_REDUCTION)
    assert q.selection == "s_avg" and q.train_limit == 0 and q.validate_every >= 1
    text = OLEDConfig(dataset="fashion_mnist", scale="quick", workdir="/tmp/x", decoder_bn=True, output_clip=True,
                      loss_reduction="mean").resolved()
    assert (text.decoder_bn, text.output_clip, text.loss_reduction) == (True, True, "mean")
    code = OLEDConfig(dataset="mnist5k", scale="quick", workdir="/tmp/x", code_defaults=True).resolved()
    assert (code.decoder_bn, code.output_clip, code.loss_reduction, code.architecture) == (False, False, "mean",
                                                                                           "code")


@pytest.mark.parametrize("frozen_bn", [False, True])
def test_mg_bn_statistics_frozen_on_non_mm_steps(frozen_bn):
    from oled_tf.model import MASK_PLAYER, OLED

    keras.utils.set_random_seed(0)
    model = OLED("mnist", mg_bn_frozen=frozen_bn, seed=3)
    model(tf.zeros((2, 28, 28, 1)))
    model.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    model.set_frozen((MASK_PLAYER,))
    bn = [l for l in model.mask_generator.layers if isinstance(l, keras.layers.BatchNormalization)][0]
    before = bn.moving_mean.numpy().copy()
    step = tf.function(model.train_step)
    step(tf.constant(np.random.default_rng(0).uniform(-1, 1, (8, 28, 28, 1)).astype("float32")))
    moved = not np.allclose(bn.moving_mean.numpy(), before)
    assert moved is (not frozen_bn)


def test_jit_probe_picks_the_faster_and_caches_per_key(tmp_path):
    from common import jit_probe

    calls = []

    def timer(make, calls_=None, **kw):
        calls.append(make)
        return {"xla": 2.0, "plain": 1.0}[make]

    cands = {"xla": "xla", "plain": "plain"}   # the fake timer reads the name
    path = tmp_path / "probe.json"
    first = jit_probe.choose({"kind": "mnist", "batch": 64}, cands, path=path, timer=timer)
    assert first["choice"] == "plain" and not first["cached"] and len(calls) == 2
    again = jit_probe.choose({"kind": "mnist", "batch": 64}, cands, path=path, timer=timer)
    assert again["choice"] == "plain" and again["cached"] and len(calls) == 2
    other = jit_probe.choose({"kind": "mnist", "batch": 128}, cands, path=path, timer=timer)
    assert not other["cached"] and len(calls) == 4
    assert len(json.loads(path.read_text())) == 2


def test_quick_epochs_follow_the_training_set_size(tmp_path):
    from oled_tf.config import (QUICK_EPOCHS_DEFAULT, QUICK_FULL_TRAIN, QUICK_MAX_EPOCHS, OLEDConfig,
                                image_folder_train_size, quick_epochs)

    assert quick_epochs(QUICK_FULL_TRAIN) == QUICK_EPOCHS_DEFAULT and quick_epochs(None) == QUICK_EPOCHS_DEFAULT
    assert quick_epochs(QUICK_FULL_TRAIN // 3) == 3 * QUICK_EPOCHS_DEFAULT
    assert quick_epochs(10) == QUICK_MAX_EPOCHS
    for c, n in (("a", 600), ("b", 30)):            # MemAE-style folder: 2/3 of the class, minus 150 validation
        (tmp_path / c).mkdir()
        for i in range(n):
            (tmp_path / c / f"{i}.png").write_bytes(b"")
    assert image_folder_train_size(tmp_path, 0) == 400 - 150 and image_folder_train_size(tmp_path, 5) is None
    cfg = OLEDConfig(dataset="image_folder", data_dir=str(tmp_path), scale="quick", workdir="/tmp/x")
    assert cfg.resolved().epochs == quick_epochs(250)
