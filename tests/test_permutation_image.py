"""permutation_tf.image: the six pretext transformations on hand-made cases, the scoring rule on a toy model, the
CIFAR-100 superclass protocol on a fixture, the registry jobs, and one smoke run of the entry point (loss goes
down, metrics and floor written, export reloaded in a fresh process; bad input gives one error line)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests import fixtures_formats as ff

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "REPRO_NO_PROGRESS": "1"}

tf = pytest.importorskip("tensorflow")

from permutation_tf.image import transforms as T  # noqa: E402


def _tiled_image():
    """A 1 x 4 x 4 x 1 image whose 2 x 2 tiles hold 10+i (i = row-major tile index) plus the pixel position."""
    x = np.zeros((1, 4, 4, 1), np.float32)
    for i, (r, c) in enumerate(((0, 0), (0, 2), (2, 0), (2, 2))):
        x[0, r:r + 2, c:c + 2, 0] = 10 * (i + 1) + np.arange(4).reshape(2, 2)
    return x


def test_jigsaw_tiles_shuffle_and_inverse():
    x = _tiled_image()
    tiles = T.split_tiles(tf.constant(x), 2).numpy()
    assert tiles.shape == (1, 4, 2, 2, 1)
    assert [tiles[0, i, 0, 0, 0] for i in range(4)] == [10, 20, 30, 40]
    perm = [2, 0, 3, 1]
    shuffled = T.shuffle_tiles(tf.constant(x), perm).numpy()
    # position 0 (top-left) now holds tile 2 (bottom-left), position 1 (top-right) tile 0, ...
    np.testing.assert_array_equal(shuffled[0, :2, :2, 0], x[0, 2:, :2, 0])
    np.testing.assert_array_equal(shuffled[0, :2, 2:, 0], x[0, :2, :2, 0])
    np.testing.assert_array_equal(shuffled[0, 2:, 2:, 0], x[0, :2, 2:, 0])
    inv = T.inverse_permutation(perm)
    np.testing.assert_array_equal(inv, [1, 3, 0, 2])
    np.testing.assert_array_equal(T.shuffle_tiles(tf.constant(shuffled), inv).numpy(), x)
    np.testing.assert_array_equal(T.merge_tiles(tf.constant(tiles)).numpy(), x)
    # the jigsaw puzzle proper: a 3 x 3 grid of the centre crop, 100 orders of maximal Hamming distance
    perms = T.jigsaw_permutations()
    assert perms.shape == (100, 9) and len({tuple(p) for p in perms}) == 100
    assert all(sorted(p) == list(range(9)) for p in perms)
    np.testing.assert_array_equal(perms[0], np.arange(9))               # label 0 = the unshuffled image
    dist = (perms[:, None] != perms[None]).sum(-1) + 99 * np.eye(100, dtype=int)
    assert dist.min() >= 6                                              # any two orders differ in 6+ tiles
    big = np.arange(32 * 32, dtype=np.float32).reshape(1, 32, 32, 1)
    jt = T.jigsaw_tiles(tf.constant(big)).numpy()
    assert jt.shape == (1, 9, 10, 10, 1)
    np.testing.assert_array_equal(jt[0, 4], big[0, 11:21, 11:21])       # the centre tile of the 30 x 30 crop
    np.testing.assert_array_equal(jt[0, 5], big[0, 11:21, 21:31])


def test_rotation_labels():
    x = np.zeros((2, 4, 4, 1), np.float32)
    x[0, 0, 3, 0] = 1.0    # top-right corner
    x[1, 3, 3, 0] = 1.0    # bottom-right corner
    images, labels = T.all_rotations(tf.constant(x))
    images, labels = images.numpy(), labels.numpy()
    np.testing.assert_array_equal(labels, [0, 0, 1, 1, 2, 2, 3, 3])
    # 90 degrees counter-clockwise: the top-right corner goes to the top-left
    assert images[2, 0, 0, 0] == 1.0 and images[2].sum() == 1.0
    assert images[4, 3, 0, 0] == 1.0      # 180: top-right -> bottom-left
    assert images[6, 3, 3, 0] == 1.0      # 270: top-right -> bottom-right
    assert images[3, 0, 3, 0] == 1.0      # image 1 at 90: bottom-right -> top-right
    for k in range(4):
        np.testing.assert_array_equal(images[2 * k:2 * k + 2], np.rot90(x, k, axes=(1, 2)))


def test_colour_to_gray_split():
    rgb01 = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0.5]], np.float32)   # red, green, blue, gray
    x = tf.constant((rgb01 * 2 - 1).reshape(1, 2, 2, 3))
    gray, chroma = T.split_luma_chroma(x)
    gray, chroma = gray.numpy().reshape(4), chroma.numpy().reshape(4, 2)
    np.testing.assert_allclose((gray + 1) / 2, [0.299, 0.587, 0.114, 0.5], atol=1e-3)
    np.testing.assert_allclose(chroma[3], [0, 0], atol=1e-3)           # gray has no colour
    assert chroma[0, 1] > 0.9 and chroma[2, 0] > 0.9                  # red -> high V, blue -> high U
    np.testing.assert_allclose(T.merge_luma_chroma(tf.constant(gray.reshape(1, 2, 2, 1)),
                                                   tf.constant(chroma.reshape(1, 2, 2, 2))).numpy(),
                               x.numpy(), atol=1e-3)
    classes = T.chroma_classes(tf.constant(chroma.reshape(1, 2, 2, 2)), 10).numpy().reshape(4)
    assert classes[3] == 5 * 10 + 5                                    # the middle bin of U and of V
    np.testing.assert_array_equal(T.quantize(tf.constant([-1.0, -0.95, 0.0, 0.99, 1.0, 3.0]), 10).numpy(),
                                  [0, 0, 5, 9, 9, 9])


def test_inpainting_mask_regions():
    m = T.block_masks(8)
    assert m.shape == (5, 8, 8, 1)
    center = np.zeros((8, 8)); center[2:6, 2:6] = 1
    np.testing.assert_array_equal(m[0, ..., 0], center)
    top_right = np.zeros((8, 8)); top_right[:4, 4:] = 1
    np.testing.assert_array_equal(m[2, ..., 0], top_right)
    np.testing.assert_array_equal(m[1:].sum(0)[..., 0], np.ones((8, 8)))   # the quadrants tile the image
    x = np.full((1, 8, 8, 3), 0.7, np.float32)
    hidden = T.apply_mask(tf.constant(x), tf.constant(m[0:1])).numpy()
    assert np.all(hidden[0, 2:6, 2:6] == 0) and np.all(hidden[0, :2] == np.float32(0.7))


def test_counting_sum_constraint():
    """phi = number of pixels above 0.2 counts isolated dots the same at half resolution (a dot in a 2x2 block
    averages to 0.25) and in the four tiles, so the constraint holds exactly; the contrast term is the margin
    minus the squared count difference to another image."""
    x = np.zeros((2, 8, 8, 1), np.float32)
    for r, c in ((0, 0), (2, 5), (5, 1), (7, 7)):     # 4 dots, in different 2x2 blocks, spread over the tiles
        x[0, r, c, 0] = 1.0
    x[1, 3, 3, 0] = 1.0                               # 1 dot

    def phi(z):
        return tf.reduce_sum(tf.cast(z > 0.2, tf.float32), axis=[-3, -2, -1])[..., None]

    down = T.downsample(tf.constant(x))
    assert down.shape == (2, 4, 4, 1)
    phi_down, phi_tiles = phi(down), phi(T.split_tiles(tf.constant(x)))
    np.testing.assert_array_equal(phi_down.numpy()[:, 0], [4, 1])
    np.testing.assert_array_equal(phi_tiles.numpy()[0, :, 0], [1, 1, 1, 1])
    np.testing.assert_array_equal(T.counting_residual(phi_down, phi_tiles).numpy(), [0, 0])
    other = tf.roll(phi_down, 1, axis=0)              # image 0 is compared with image 1 and vice versa
    np.testing.assert_allclose(T.counting_contrast(other, phi_tiles, 10.0).numpy(), [10 - 9, 10 - 9])
    # a phi that ignores scale (the pixel sum) violates the constraint by (sum/4 - sum)^2
    s = tf.reduce_sum(tf.constant(x), axis=[1, 2, 3])
    mass_down = tf.reduce_sum(down, axis=[1, 2, 3])[:, None]
    mass_tiles = tf.reduce_sum(T.split_tiles(tf.constant(x)), axis=[2, 3, 4])[..., None]
    np.testing.assert_allclose(T.counting_residual(mass_down, mass_tiles).numpy(), (s.numpy() * 0.75) ** 2)


def _model(task_name, channels=1, size=16):
    from permutation_tf.image.model import PretextModel
    from permutation_tf.image.tasks import make_task

    import keras
    keras.utils.set_random_seed(1)
    m = PretextModel(make_task(task_name, n_counts=8), (size, size, channels))
    m.build_all()
    return m


def test_scoring_rule_on_toy_model_rotnet_and_jigsaw():
    """The default score is the mean over the task's transformations of the pretext loss: for RotNet
    -mean_k log p(k | rot_k(x)) computed here by hand from the networks; for Jigsaw the puzzles built
    explicitly from the image tiles (the model's feature-gather must give the same losses)."""
    from permutation_tf.image.scoring import anomaly_scores, transformation_losses

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (5, 16, 16, 1)).astype(np.float32)
    rot = _model("rotnet")
    by_hand = np.zeros(5)
    for k in range(4):
        f = tf.reduce_mean(rot.networks["backbone"](np.rot90(x, k, axes=(1, 2)).copy(), training=False), [1, 2])
        logp = tf.nn.log_softmax(rot.networks["head"](f, training=False)).numpy()
        by_hand -= logp[:, k] / 4
    np.testing.assert_allclose(anomaly_scores(rot, x, batch_size=2), by_hand, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(rot.serve(tf.constant(x))["anomaly_score"].numpy(), by_hand, rtol=1e-4, atol=1e-4)

    jig = _model("jigsaw")
    losses = transformation_losses(jig, x, batch_size=3)
    assert losses.shape == (5, 100)
    for p_idx in (0, 7, 99):
        # the puzzle built on the images: tile perm[i] at slot i, each tile through the backbone
        tiles = tf.gather(T.jigsaw_tiles(tf.constant(x)), T.jigsaw_permutations()[p_idx], axis=1)
        f = tf.reduce_mean(jig.networks["backbone"](tf.reshape(tiles, [45, 5, 5, 1]), training=False), [1, 2])
        logits = jig.networks["head"](tf.reshape(f, [5, 9, -1]), np.arange(9)[None])[:, 0]   # slot order as given
        want = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=[p_idx] * 5, logits=logits).numpy()
        np.testing.assert_allclose(losses[:, p_idx], want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(anomaly_scores(jig, x), losses.mean(1), rtol=1e-5)
    # Noroozi's sampling (--train_transformations=one): one order per image, the same logits as the full head
    f = jig.task.tile_features(jig.networks, tf.constant(x), False)
    idx = np.array([0, 7, 99, 3, 3])
    one = jig.networks["head"].call_per_image(f, jig.task.permutations[idx]).numpy()
    np.testing.assert_allclose(one, jig.networks["head"](f, jig.task.permutations).numpy()[np.arange(5), idx],
                               rtol=1e-4, atol=1e-5)


def test_score_rules_on_hand_computed_losses():
    """mean_loss, drawn_loss and mean_prob on a 3 x 2 loss table whose values are worked out by hand."""
    from permutation_tf.image.evaluate import image_metrics
    from permutation_tf.image.scoring import (drawn_transformations, rules_for, score_from_losses,
                                              scores_by_rule)

    losses = np.array([[0.0, np.log(2.0)], [np.log(4.0), np.log(4.0)], [np.log(2.0), 2 * np.log(2.0)]], np.float32)
    np.testing.assert_allclose(score_from_losses(losses, "mean_loss").numpy(),
                               [np.log(2) / 2, np.log(4), 1.5 * np.log(2)], rtol=1e-6)
    # p = exp(-L): (1, 1/2), (1/4, 1/4), (1/2, 1/4) -> -mean p
    np.testing.assert_allclose(score_from_losses(losses, "mean_prob").numpy(), [-0.75, -0.25, -0.375], rtol=1e-6)
    np.testing.assert_allclose(score_from_losses(losses, "drawn_loss", drawn=[1, 0, 0]).numpy(),
                               [np.log(2), np.log(4), np.log(2)], rtol=1e-6)
    with pytest.raises(ValueError, match="needs the drawn"):
        score_from_losses(losses, "drawn_loss")
    drawn = drawn_transformations(3, 2, seed=5)
    np.testing.assert_array_equal(drawn, drawn_transformations(3, 2, seed=5))      # fixed by the seed
    by_rule = scores_by_rule(losses, "jigsaw", seed=5)
    np.testing.assert_allclose(by_rule["drawn_loss"], losses[np.arange(3), drawn], rtol=1e-6)
    assert set(rules_for("jigsaw")) == {"mean_loss", "drawn_loss", "mean_prob"}
    assert "mean_prob" not in rules_for("inpainting") and "mean_prob" not in scores_by_rule(losses, "counting", 0)
    # the rules can disagree: a normal image solved perfectly but for one hard order (losses 0, ln 8) against
    # an anomaly half-solved under both (ln 2, ln 2): mean loss 1.04 > 0.69 ranks the normal image first
    # (AUROC 0), mean probability -(1 + 1/8)/2 < -(1/2 + 1/2)/2 ranks the anomaly first (AUROC 1)
    two = np.array([[0.0, np.log(8.0)], [np.log(2.0), np.log(2.0)]], np.float32)
    m = image_metrics(np.array([0, 1]), two, ("a", "b"), "rotnet", "mean_prob", seed=5)
    assert m["score"] == "mean_prob" and m["auroc"] == 1.0
    assert m["auroc_per_rule"]["mean_loss"] == 0.0 and m["auroc_per_rule"]["mean_prob"] == 1.0
    assert m["auroc_per_transformation"] == {"a": 1.0, "b": 0.0} and m["tied_score_fraction"] == 0.0


def test_cross_entropy_does_not_saturate():
    """tasks._ce equals TensorFlow's sparse softmax cross-entropy where that is exact, and stays positive and
    exact (log(1 + 2 e^-30) = 1.87e-13) where TensorFlow's op rounds a confident prediction to 0."""
    from permutation_tf.image.tasks import _ce

    logits = tf.constant([[2.0, -1.0, 0.5], [30.0, 0.0, 0.0], [0.0, 30.0, 0.0]])
    labels = tf.constant([2, 0, 0])
    ours = _ce(labels, logits).numpy()
    ref = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits).numpy()
    np.testing.assert_allclose(ours[[0, 2]], ref[[0, 2]], rtol=1e-6)
    assert ref[1] == 0.0
    np.testing.assert_allclose(ours[1], np.log1p(2 * np.exp(-30.0)), rtol=1e-5)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = tf.reduce_sum(_ce(labels, logits))
    assert np.all(np.isfinite(tape.gradient(loss, logits).numpy()))


def test_jigsaw_jitter_and_flip_shift_crop_inside_the_cell():
    """Jittered tiles are (cell - J)-pixel squares of their own cell (centred without a seed); flip_shift gives
    each image a shifted (and maybe mirrored) copy of itself with -1 filling what came from outside."""
    import keras

    big = np.arange(2 * 32 * 32, dtype=np.float32).reshape(2, 32, 32, 1)
    centred = T.jigsaw_tiles(tf.constant(big), jitter=2).numpy()
    assert centred.shape == (2, 9, 8, 8, 1)
    np.testing.assert_array_equal(centred[1, 4], big[1, 12:20, 12:20])          # cell 11:21, offset 1
    rand = T.jigsaw_tiles(tf.constant(big), jitter=2, seed=keras.random.SeedGenerator(3)).numpy()
    for b in range(2):
        for t in range(9):
            r0, c0 = 1 + 10 * (t // 3), 1 + 10 * (t % 3)
            cell = big[b, r0:r0 + 10, c0:c0 + 10, 0]
            top_left = rand[b, t, 0, 0, 0]
            (i,), (j,) = np.nonzero(cell == top_left)
            assert i <= 2 and j <= 2
            np.testing.assert_array_equal(rand[b, t, :, :, 0], cell[i:i + 8, j:j + 8])
    x = np.random.default_rng(0).uniform(0, 1, (6, 8, 8, 1)).astype(np.float32)
    out = T.flip_shift(tf.constant(x), keras.random.SeedGenerator(1), shift=2).numpy()
    assert out.shape == x.shape
    for b in range(6):
        found = False
        for img in (x[b], x[b, :, ::-1]):
            padded = np.pad(img, ((2, 2), (2, 2), (0, 0)), constant_values=-1)
            found |= any(np.array_equal(out[b], padded[i:i + 8, j:j + 8]) for i in range(5) for j in range(5))
        assert found


def test_weight_decay_adds_l2_of_every_kernel():
    from permutation_tf.image.model import PretextModel
    from permutation_tf.image.tasks import make_task

    m = PretextModel(make_task("jigsaw", weight_decay=1e-3), (16, 16, 1))
    m.build_all()
    kernels = [v for v in m.trainable_variables if "kernel" in v.path]
    assert len(kernels) == 6                                  # 4 convolutions, the puzzle kernel, the logits
    want = 1e-3 * sum(float(tf.reduce_sum(tf.square(k))) for k in kernels)
    got = sum(float(l) for net in m.networks.values() for l in net.losses)
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("task,channels,n_t", [("inpainting", 1, 5), ("counting", 1, 1), ("colorization", 3, 1),
                                                ("splitbrain", 3, 2)])
def test_other_tasks_shapes_and_one_training_step(task, channels, n_t):
    import keras

    m = _model(task, channels, size=8)
    m.compile(keras.optimizers.Adam(1e-3))
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (4, 8, 8, channels)).astype(np.float32))
    losses = m(x)
    assert losses.shape == (4, n_t) and np.all(np.isfinite(losses.numpy())) and np.all(losses.numpy() >= 0)
    before = [v.numpy().copy() for v in m.trainable_variables]
    logs = m.train_step(x)
    assert np.isfinite(float(logs["loss"]))
    assert any(not np.array_equal(b, v.numpy()) for b, v in zip(before, m.trainable_variables))


def test_cifar100_superclasses_one_vs_all(tmp_path):
    """Table I's CIFAR-100 rows use the 20 superclasses: the coarse labels decide normal vs anomalous."""
    from permutation_tf.image.config import ImageTaskConfig
    from permutation_tf.image.data import prepare

    rng = np.random.default_rng(0)
    tx, vx = rng.integers(0, 256, (12, 32, 32, 3), np.uint8), rng.integers(0, 256, (8, 32, 32, 3), np.uint8)
    fine_tr, coarse_tr = np.array([4, 30, 55, 72, 1, 2, 3, 5, 6, 7, 8, 9]), np.array([0, 0, 0, 0] + [1] * 8)
    fine_te, coarse_te = np.array([72, 4, 1, 2, 3, 5, 6, 7]), np.array([0, 0, 1, 1, 1, 19, 19, 19])
    ff.write_cifar100(tmp_path, tx, fine_tr, coarse_tr, vx, fine_te, coarse_te)
    cfg = ImageTaskConfig(task="rotnet", dataset="cifar100", normal_class=0, scale="smoke", data_dir=str(tmp_path),
                          workdir=str(tmp_path / "w")).resolved()
    data = prepare(cfg)
    assert data.train_x.shape == (4, 32, 32, 3)                     # the four superclass-0 training images
    np.testing.assert_allclose(data.train_x, tx[:4] / 127.5 - 1, atol=1e-6)
    np.testing.assert_array_equal(data.test_y, [0, 0, 1, 1, 1, 1, 1, 1])
    assert data.summary["classes"] == 20
    with pytest.raises(Exception, match="out of range"):
        prepare(ImageTaskConfig(task="rotnet", dataset="cifar100", normal_class=20, scale="smoke",
                                data_dir=str(tmp_path), workdir=str(tmp_path / "w")).resolved())


def test_config_rejects_colour_task_on_gray_data_and_registry_is_valid():
    from common.errors import ConfigError
    from common.registry import validate_jobs
    from permutation_tf.image.config import ImageTaskConfig
    from permutation_tf.tables import JOBS

    with pytest.raises(ConfigError, match="needs RGB"):
        ImageTaskConfig(task="colorization", dataset="fashion_mnist").resolved()
    with pytest.raises(ConfigError, match="unknown --task"):
        ImageTaskConfig(task="sudoku", dataset="fashion_mnist").resolved()
    with pytest.raises(ConfigError, match="mean_prob needs"):
        ImageTaskConfig(task="inpainting", dataset="fashion_mnist", score="mean_prob").resolved()
    with pytest.raises(ConfigError, match="jigsaw only"):
        ImageTaskConfig(task="rotnet", dataset="fashion_mnist", jigsaw_jitter=2).resolved()
    with pytest.raises(ConfigError, match="train_transformations=one"):
        ImageTaskConfig(task="jigsaw", dataset="fashion_mnist", jigsaw_permutations=1000).resolved()
    paper = ImageTaskConfig(task="jigsaw", dataset="fashion_mnist", scale="paper").resolved()
    assert (paper.epochs, paper.batch_size, paper.train_limit, paper.test_limit, paper.eval_every) == (100, 64, 0, 0, 10)
    validate_jobs(list(JOBS))
    keys = {j.key for j in JOBS}
    assert {f"permutation.table2/{t}_class{c}" for t in ("jigsaw", "rotnet") for c in range(10)} <= keys
    assert "permutation.table2/mnist5k_rotnet_avg" in keys and "permutation.table3/count_class19" in keys


def test_cli_smoke_loss_decreases_floor_and_export_fresh_process(tmp_path):
    ff.make_l_shapes_fashion(tmp_path / "data")  # upright "L" shapes: learnable rotations
    work, exports = tmp_path / "work", tmp_path / "exports"
    p = subprocess.run([sys.executable, "-m", "permutation_tf.train_image", "--task=rotnet",
                        "--dataset=fashion_mnist", f"--data_dir={tmp_path / 'data'}", "--normal_class=1",
                        "--scale=smoke", "--epochs=4", "--eval_every=3", f"--workdir={work}",
                        f"--export_dir={exports}"],
                       cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    m = json.loads((work / "metrics.json").read_text())
    losses = m["loss_per_epoch"]
    assert len(losses) == 4 and losses[-1] < losses[0], losses
    assert 0.0 <= m["auroc"] <= 1.0 and 0.0 <= m["floor"]["auroc"] <= 1.0 and len(m["epoch_seconds"]) == 4
    assert m["data"]["n_train_used"] == 20                            # the 20 class-1 training images
    # the learning curve: epochs 3 and 4 (the last), every rule, the floor; the cell is the last point's rule
    curve = json.loads((work / "curve.json").read_text())
    assert [p["epoch"] for p in m["curve"]] == [3, 4] and curve["points"] == m["curve"]
    assert set(m["curve"][-1]["auroc"]) == {"mean_loss", "drawn_loss", "mean_prob"}
    assert m["curve"][-1]["auroc"]["mean_loss"] == m["auroc"] == m["auroc_per_rule"]["mean_loss"]
    assert curve["floor_auroc"] == m["floor"]["auroc"] and m["curve"][0]["train_loss"] == losses[2]
    export_dir = exports / "permutation_image_rotnet_fashion_mnist_1" / "1"
    # metrics["export"]: {model name: entry} (common.lifecycle.Run.export)
    entry = m["export"]["permutation_image_rotnet_fashion_mnist_1"]
    assert (export_dir / "saved_model.pb").exists() and entry["path"] == str(export_dir)
    # the run reloaded the export in a fresh process (common.export.check_export) and compared its outputs
    diffs = entry["max_abs_diff_fresh_process"]["serving_default"]
    assert set(diffs) == {"anomaly_score", "transformation_losses"}
    assert max(diffs.values()) < 1e-3
    # the exported scorer gives the scores the AUROC was computed from (sum of the saved per-rotation losses)
    from permutation_tf.image.config import ImageTaskConfig
    from permutation_tf.image.data import prepare

    saved = np.load(work / "test_losses.npz")
    data = prepare(ImageTaskConfig(task="rotnet", dataset="fashion_mnist", data_dir=str(tmp_path / "data"),
                                   normal_class=1, scale="smoke", workdir=str(work)).resolved())
    out = tf.saved_model.load(str(export_dir)).signatures["serving_default"](images=tf.constant(data.test_x[:10]))
    np.testing.assert_allclose(out["anomaly_score"].numpy(), saved["losses"][:10].mean(1), rtol=1e-3, atol=1e-3)
    # bad input: one error line, exit status 2, no traceback
    bad = subprocess.run([sys.executable, "-m", "permutation_tf.train_image", "--task=splitbrain",
                          "--dataset=fashion_mnist", f"--workdir={tmp_path / 'bad'}"],
                         cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("error: --task=splitbrain")
    assert "Traceback" not in bad.stderr and not (tmp_path / "bad" / "metrics.json").exists()
