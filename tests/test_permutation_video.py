"""permutation_tf video half: the M-stream siamese network (Eq. 3-5), the loss (Eq. 8), the score rule (Eq. 9)
and pooling, a smoke training, the Moving Fashion-MNIST maker, the 20-class lists, export reload."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from common.errors import ConfigError
from common.video_clips import permutation_set, permute, segment_dataset
from permutation_tf import losses
from permutation_tf.evaluate import video_auroc
from permutation_tf.model import build_model, make_task

SIZE = 64


@pytest.fixture(scope="module")
def model3():
    tf.keras.utils.set_random_seed(0)
    # the default network (CaffeNet's input and initialisation); the mean of uniform [0, 1] frames is 127.5 / 255
    return build_model(make_task("permutation", 3), (SIZE, SIZE), lr=1e-3, input_mean=np.full((SIZE, SIZE, 3), 127.5))


def _segments(n, m, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, m, SIZE, SIZE, 3)).astype(np.float32)


def test_streams_share_one_base_and_concatenate(model3):
    x = _segments(2, 3)
    logits = model3(x)
    assert logits.shape == (2, math.factorial(3))                                 # Eq. 5: softmax over M!
    base_vars = model3.base.trainable_variables
    assert len(base_vars) == 20          # conv1..fc7 once (conv2, 4, 5 as 2 groups), not once per stream
    assert {id(v) for v in model3.trainable_variables} == \
        {id(v) for v in base_vars} | {id(v) for v in model3.top.trainable_variables}
    feats = model3.features(x)                                                   # Eq. 3 per frame
    np.testing.assert_allclose(feats[:, 1], model3.base(x[:, 1]), rtol=1e-4, atol=1e-5)
    concat = tf.reshape(feats, (2, -1))                                          # Eq. 4: r_1 | r_2 | r_3
    np.testing.assert_allclose(concat[:, 4096:8192], feats[:, 1])
    np.testing.assert_allclose(model3.top(concat), logits, rtol=1e-4, atol=1e-5)


def test_scores_from_one_base_pass_equal_the_direct_ones(model3):
    x, labels = _segments(2, 3, 1), np.array([4, 1])
    permuted = np.stack([permute(s, y) for s, y in zip(x, labels)])
    out = model3.segment_losses(tf.constant(permuted), tf.constant(labels))
    direct = [[float(losses.cross_entropy([y], model3(permute(s, y)[None]))[0]) for y in range(6)] for s in x]
    np.testing.assert_allclose(out["sampled"], [direct[0][4], direct[1][1]], rtol=1e-4)
    np.testing.assert_allclose(out["all"], np.mean(direct, axis=1), rtol=1e-4)
    np.testing.assert_allclose(model3.ordered(tf.constant(permuted), tf.constant(labels)), x)
    model3.set_score_range(np.array([1.0, 3.0]))
    served = model3.serve(tf.constant(x))
    np.testing.assert_allclose(served["anomaly_score_raw"], out["all"], rtol=1e-4)
    np.testing.assert_allclose(served["anomaly_score"], (out["all"] - 1.0) / 2.0, rtol=1e-4)
    np.testing.assert_allclose(served["permutation_probabilities"], tf.nn.softmax(model3(x)), rtol=1e-4, atol=1e-6)


def test_cross_entropy_hand_case_and_minmax():
    logits = np.log(np.array([[1.0, 3.0], [2.0, 2.0]], np.float32))             # p = (1/4, 3/4), (1/2, 1/2)
    np.testing.assert_allclose(losses.cross_entropy([0, 1], logits), [math.log(4), math.log(2)], rtol=1e-6)
    np.testing.assert_allclose(losses.cross_entropy([0, 1], logits, average_over_classes=True),
                               [math.log(4) / 2, math.log(2) / 2], rtol=1e-6)  # Eq. 8 as printed: / M!
    np.testing.assert_allclose(losses.anomaly_scores([2.0, 4.0, 3.0]), [0.0, 1.0, 0.5])   # Eq. 9


def test_segment_scores_pool_into_video_auroc():
    # Video 0 (normal) and 1, 2 (anomalies); segment (1, 0) is scored under two labels (K = 2): rows averaged.
    raw = np.array([1.0, 2.0, 5.0, 3.0, 4.0, 1.0, 9.0])
    video = np.array([0, 0, 1, 1, 1, 2, 2])
    segment = np.array([0, 1, 0, 0, 1, 0, 1])
    labels = np.array([0, 1, 1])
    mean = video_auroc(raw, video, segment, labels, "mean")
    # segments: v0 {1, 2}, v1 {4, 4}, v2 {1, 9} -> Eq. 9 over 6 segments: (x - 1) / 8
    np.testing.assert_allclose(mean["video_scores"], [0.5 / 8, 3 / 8, 4 / 8])
    assert mean["n_segments"] == 6 and mean["auroc"] == 1.0
    mx = video_auroc(raw, video, segment, labels, "max")
    np.testing.assert_allclose(mx["video_scores"], [1 / 8, 3 / 8, 1.0])


def test_a_few_steps_on_a_fixed_batch_lower_the_loss(model3):
    x = _segments(2, 3, 2)
    labels = np.array([0, 5])
    batch = {"frames": tf.constant(np.stack([permute(s, y) for s, y in zip(x, labels)])),
             "label": tf.constant(labels)}
    step = tf.function(model3.train_step)
    first = float(step(batch)["loss"])
    for _ in range(3):
        step(batch)
    model3.loss_tracker.reset_state()
    assert float(step(batch)["loss"]) < first - 0.1


@pytest.mark.parametrize("method,streams,classes", [("rotnet", 1, 4), ("shuffle_learn", 3, 2), ("aot", 5, 2),
                                                    ("sorting", 4, 12)])
def test_baseline_tasks(method, streams, classes):
    t = make_task(method, 5)
    assert (t.streams, t.n_classes) == (streams, classes)
    if method == "sorting":                          # a permutation and its reverse share a class: 24 -> 12
        perms = permutation_set(4)
        rev = {tuple(p): k for k, p in enumerate(perms)}
        for k, p in enumerate(perms):
            assert t.targets[k] == t.targets[rev[tuple(p[::-1])]]
        assert len(set(t.targets.tolist())) == 12
    if method == "shuffle_learn":                    # (b, c, d) in order; (b, a, d), (b, e, d) shuffled
        assert t.orders.tolist() == [[1, 2, 3], [1, 0, 3], [1, 4, 3]] and t.targets.tolist() == [1, 0, 0]


def test_config_rejects_bad_values():
    from permutation_tf.config import VideoConfig

    with pytest.raises(ConfigError, match="--m must be 3..6"):
        VideoConfig(dataset="moving_fashion", m=8, workdir="/tmp/x").resolved()
    with pytest.raises(ConfigError, match="pooling"):
        VideoConfig(dataset="moving_fashion", pooling="median", workdir="/tmp/x").resolved()
    for field, value in (("input_norm", "imagenet"), ("init", "xavier"), ("norm", "layer"), ("dropout", "fc7"),
                         ("train_orders", "some")):
        with pytest.raises(ConfigError, match=f"--{field} must be one of"):
            VideoConfig(dataset="moving_fashion", workdir="/tmp/x", **{field: value}).resolved()


def test_preset_frame_caps_cover_one_segment_and_short_test_videos_fail_before_decoding(tmp_path):
    """TABLE V's M = 6 (16 frames at skip 2) and TABLE VI's skip 3 (17 frames at M = 5) ran into the quick
    preset's caps (16 / 14 frames; the smoke preset's are 14 / 14): the preset's caps now grow to one segment, a
    user's cap is kept, and a test
    video shorter than one segment is one DataError up front, not an error inside the tf.data pipeline."""
    from common.data_video import VideoItem
    from common.errors import DataError
    from permutation_tf.config import VideoConfig
    from permutation_tf.data import test_stream
    from permutation_tf.make_moving_fashion import write_avi

    def caps(**kw):                                    # the smoke preset caps both at 14 frames
        cfg = VideoConfig(dataset="moving_fashion", scale="smoke", workdir="/tmp/x", **kw).resolved()
        return cfg.max_frames, cfg.test_max_frames

    assert caps() == (14, 14)                          # M = 5, skip 2: 13 frames, preset unchanged
    assert caps(m=6) == (16, 16)
    assert caps(skip=3) == (17, 17)
    assert caps(skip=3, max_frames=12) == (12, 17)     # the user's value is kept
    assert caps(task="shuffle_learn", skip=3) == (14, 14)

    path = tmp_path / "short.avi"
    write_avi(path, np.zeros((10, 32, 32), np.uint8))
    cfg = VideoConfig(dataset="moving_fashion", scale="smoke", workdir="/tmp/x", m=5).resolved()
    task = make_task("permutation", 5)
    with pytest.raises(DataError, match=r"1 test video\(s\) hold no segment of M=5 frames with skip 2 \(13 "
                                        r"frames, reading at most 14\), e.g. .*short.avi"):
        test_stream(cfg, task, [VideoItem(path, 0, "a")])
    cfg = VideoConfig(dataset="moving_fashion", scale="smoke", workdir="/tmp/x", m=3).resolved()
    assert test_stream(cfg, make_task("permutation", 3), [VideoItem(path, 0, "a")]) is not None


def _moving_item_frames(n=6, seed=0):
    """Black canvases with a bright 8 x 8 item at random places in the middle (as in Moving Fashion-MNIST)."""
    rng = np.random.default_rng(seed)
    frames = np.zeros((n, SIZE, SIZE, 3), np.uint8)
    for f in frames:
        y, x = rng.integers(16, 40, 2)
        f[y:y + 8, x:x + 8] = (200, 150, 100)
    return frames


def test_caffe_input_subtracts_the_training_mean_so_the_background_is_zero():
    """CaffeNet's input (bvlc_reference_caffenet: 0..255 minus the mean file): the black background that no item
    crosses maps to exactly 0 (the first version mapped it to -1, which dominated every conv1 response), the mean
    frame maps to 0, and the mean is a weight of the Base-CNN (so a SavedModel carries it)."""
    from permutation_tf.networks import InputNormalization, build_base_cnn, frame_mean, set_input_mean

    frames = _moving_item_frames()
    x = frames.astype(np.float32) / 255.0
    base = build_base_cnn((SIZE, SIZE))                                  # default: mean_image, caffe init
    set_input_mean(base, frame_mean(frames))
    layer = base.get_layer("input_norm")
    out = layer(x).numpy()
    assert np.all(out[:, :16] == 0) and np.all(out[:, :, :16] == 0)      # background, never crossed by an item
    np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-3)             # the mean frame maps to 0
    assert out.max() > 100                                               # the item stands out on the 0..255 scale
    assert [w.path for w in base.non_trainable_weights if "input_norm" in w.path]
    pixel = InputNormalization("mean_pixel")
    pixel.build((None, SIZE, SIZE, 3))
    pixel.mean.assign(frame_mean(frames, "mean_pixel"))
    np.testing.assert_allclose(pixel(x).numpy()[0, 0, 0], -frames.reshape(-1, 3).mean(0), rtol=1e-5)
    old = InputNormalization("pm1")
    assert np.all(old(x).numpy()[:, :16] == -1.0)


def test_batch_norm_top_cnn_scores_every_order_like_the_concatenation():
    """``--norm=batch`` (beyond the paper): the one-pass scoring of all M! orders (fc8's linearity, then fc8's
    batch norm as its inference-time affine map) equals concatenating each order and calling the Top-CNN."""
    from permutation_tf.networks import TopCNN

    rng = np.random.default_rng(0)
    top = TopCNN(3, 6, feature_dim=16, hidden=8, norm="batch")
    top.build()
    top.bn8.moving_mean.assign(rng.normal(size=8).astype(np.float32))
    top.bn8.moving_variance.assign(rng.uniform(0.5, 2.0, 8).astype(np.float32))
    feats = tf.constant(rng.normal(size=(2, 3, 16)).astype(np.float32))
    orders = permutation_set(3)
    direct = np.stack([top(tf.reshape(tf.gather(feats, o, axis=1), (2, -1))).numpy() for o in orders], axis=1)
    np.testing.assert_allclose(top.logits_for_orders(feats, orders), direct, rtol=1e-4, atol=1e-5)


def test_caffe_initialisation_follows_the_reference_prototxt():
    """Gaussian std 0.01 (conv, classifier) / 0.005 (fc6, fc7, the Top-CNN's hidden fc8); biases 0 or 1 as in
    bvlc_reference_caffenet's train_val.prototxt."""
    tf.keras.utils.set_random_seed(0)
    model = build_model(make_task("permutation", 3), (SIZE, SIZE))
    weights = {w.path: w.numpy() for w in model.weights}

    def find(*parts):
        return [v for k, v in weights.items() if all(p in k for p in parts)]

    for layer, std, bias in (("conv1", 0.01, 0.0), ("conv2", 0.01, 1.0), ("conv3", 0.01, 0.0), ("conv4", 0.01, 1.0),
                             ("conv5", 0.01, 1.0), ("fc6", 0.005, 1.0), ("fc7", 0.005, 1.0), ("fc8", 0.005, 1.0),
                             ("fc9", 0.01, 0.0)):
        kernels, biases = find(layer, "kernel"), find(layer, "bias")
        assert kernels and biases, layer
        for k in kernels:
            assert abs(k.std() / std - 1) < 0.1 and abs(k.mean()) < std / 5, layer
        for b in biases:
            assert np.all(b == bias), layer


def test_moving_fashion_is_deterministic_and_in_video_folder_layout(tmp_path):
    from common.data_video import read_video, video_folder_items
    from permutation_tf.make_moving_fashion import make

    a = make(tmp_path / "a", train_per_class=1, test_per_class=1, frames=16, size=48, seed=3)
    b = make(tmp_path / "b", train_per_class=1, test_per_class=1, frames=16, size=48, seed=3)
    files = sorted(p.relative_to(a) for p in a.rglob("*.avi"))
    assert len(files) == 20 and files == sorted(p.relative_to(b) for p in b.rglob("*.avi"))
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    train = video_folder_items(a, "train")
    assert [i.label for i in train] == list(range(10)) and train[9].class_name == "9_ankle_boot"
    clip = read_video(train[1].path)
    assert clip.shape == (16, 48, 48, 3)
    centroids = [np.argwhere(f[..., 0] > 60).mean(0) for f in clip]           # the item moves
    assert np.linalg.norm(centroids[-1] - centroids[0]) > 3


def test_class_list_selects_ucf101_videos(tmp_path):
    from permutation_tf.data import load_split
    from permutation_tf.make_moving_fashion import write_avi

    root = tmp_path / "UCF101"
    classes = ["ApplyEyeMakeup", "Biking", "Drumming"]
    (root / "ucfTrainTestlist").mkdir(parents=True)
    (root / "ucfTrainTestlist" / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(classes)))
    lists = {"train": [], "test": []}
    for c in classes:
        (root / "UCF-101" / c).mkdir(parents=True)
        for g, split in ((1, "test"), (8, "train")):
            name = f"{c}/v_{c}_g{g:02d}_c01.avi"
            write_avi(root / "UCF-101" / name, np.zeros((3, 16, 16), np.uint8))
            lists[split].append(name)
    (root / "ucfTrainTestlist" / "trainlist01.txt").write_text("".join(f"{n} 1\n" for n in lists["train"]))
    (root / "ucfTrainTestlist" / "testlist01.txt").write_text("".join(f"{n}\n" for n in lists["test"]))
    (tmp_path / "two.txt").write_text("# two classes\nDrumming  # instruments\nApplyEyeMakeup\n")
    train, test = load_split("ucf101", tmp_path, class_list=str(tmp_path / "two.txt"))
    assert sorted((i.class_name, i.label) for i in train) == [("ApplyEyeMakeup", 1), ("Drumming", 0)]
    assert all("_g01_" in str(i.path) for i in test) and len(test) == 2
    shipped = (Path(__file__).resolve().parents[1] / "permutation_tf" / "data" / "ucf101_20.txt")
    from permutation_tf.data import read_class_list
    assert len(read_class_list(shipped)) == 20


def test_training_stream_builds_under_global_seed_zero(tmp_path):
    """Regression: Dataset.shuffle(seed=<tensor>) failed to build after keras.utils.set_random_seed(0)."""
    from common.data_video import video_folder_items
    from permutation_tf.make_moving_fashion import make

    root = make(tmp_path / "mf", train_per_class=1, test_per_class=1, frames=16, size=48, seed=0)
    tf.keras.utils.set_random_seed(0)
    items = video_folder_items(root, "train")[:2]
    ds = segment_dataset(items, m=3, skip=0, size=(48, 48), seed=0, training=True, batch_size=8, num_epochs=1)
    labels = np.concatenate([b["label"].numpy() for b in ds])
    assert len(labels) == 2 * 14


def test_export_reloads_in_a_fresh_process(tmp_path, model3):
    from common.lifecycle import Run
    from permutation_tf.config import VideoConfig
    from permutation_tf.pipeline import export

    model3.set_score_range(np.array([0.5, 2.5]))
    cfg = VideoConfig(dataset="moving_fashion", normal_class=2, m=3, export_dir=str(tmp_path), workdir=str(tmp_path),
                      frame_size=SIZE)
    out = export(Run(cfg, tmp_path, tf.distribute.get_strategy()), model3, cfg, _segments(2, 3, 5))
    assert Path(out["path"]) == tmp_path / "permutation_moving_fashion_2" / "1"
    # metrics["export"][<model name>]: {"max_abs_diff_fresh_process": {signature: {output: diff}}, ...}
    assert set(out["max_abs_diff_fresh_process"]["serving_default"]) == {"anomaly_score", "anomaly_score_raw",
                                                                         "permutation_probabilities"}


def test_video_job_fills_the_floor_row_and_rereads_a_finished_run(tmp_path):
    """A TABLE V job at smoke scale on a tiny Moving Fashion-MNIST: its floor cell is the run's own floor, the
    job's ``floor`` (no training) gives the same value, and a second call re-reads the finished run."""
    from common.registry import FLOOR_ROW
    from permutation_tf.make_moving_fashion import make
    from permutation_tf.video_tables import VIDEO_JOBS

    make(tmp_path / "data" / "moving_fashion", train_per_class=2, test_per_class=1, frames=16, size=48, seed=0)
    job = next(j for j in VIDEO_JOBS if j.key == "permutation.table5/moving_fashion_permutation_m3_skip2_class4")
    assert job.cells == (("UCF101", "M = 3"), (FLOOR_ROW, "M = 3")) and job.variant == "moving_fashion"
    res = job.run("smoke", tmp_path / "work", tmp_path / "data")
    floor = res.values[(FLOOR_ROW, "M = 3")]
    assert 0.0 <= res.values[("UCF101", "M = 3")] <= 100.0 and floor == res.extra["floor_auroc"]
    assert job.floor("smoke", tmp_path / "work", tmp_path / "data") == {(FLOOR_ROW, "M = 3"): floor}
    metrics = tmp_path / "work" / "class4" / "metrics.json"
    stamp = metrics.stat().st_mtime_ns
    again = job.run("smoke", tmp_path / "work", tmp_path / "data")
    assert again.values == res.values and metrics.stat().st_mtime_ns == stamp  # re-read, not retrained


def test_constant_scores_are_flagged_as_ties_not_measurements():
    from permutation_tf.evaluate import constant_scores

    flat = np.full(12, np.log(6.0)) * (1 + 1e-7 * np.arange(12))   # float rounding around ln 6: a tie
    assert constant_scores({"sampled": flat, "all": flat + np.arange(12) * 0.01}) == {"sampled": True, "all": False}
    assert video_auroc(flat, np.arange(12) // 3, np.arange(12) % 3, np.array([0, 1, 0, 1]))["auroc"] == 0.5


# ------------------------------------------------------------------------------------- issue 21: the recipe
def _arrow_of_time_segments(n, m, rng, step=8, block=12):
    """Ordered segments (n, m, 64, 64, 3) in [0, 1]: a textured block moving ``step`` px per frame to the RIGHT
    (an unambiguous arrow of time) from a random place; every permutation of such a segment is recognisable."""
    out = np.zeros((n, m, SIZE, SIZE, 3), np.float32)
    patch = rng.uniform(0.4, 1.0, (block, block, 3)).astype(np.float32)
    for i in range(n):
        x0 = rng.integers(0, SIZE - block - step * (m - 1) + 1)
        y0 = rng.integers(0, SIZE - block + 1)
        for t in range(m):
            out[i, t, y0:y0 + block, x0 + step * t:x0 + step * t + block] = patch
    return out


def test_the_quick_recipe_learns_an_arrow_of_time():
    """Issue 21: the repository's own model with the quick preset's recipe reaches a held-out pretext loss well
    below chance (ln 3! = 1.79) within 40 SGD steps of batch 10 on clips with an unambiguous arrow of time (the
    paper's CaffeNet recipe did not move from chance in 120 such steps, docs/permutation-notes.md)."""
    from permutation_tf.config import VideoConfig
    from permutation_tf.pipeline import build

    cfg = VideoConfig(dataset="moving_fashion", scale="quick", m=3, workdir="/tmp/x").resolved()
    assert (cfg.norm, cfg.train_orders) == ("batch", "all")
    tf.keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    train = _arrow_of_time_segments(400, 3, rng)
    task = make_task("permutation", 3)
    model = build(cfg, task, input_mean=255.0 * train[:, 0].mean(0))
    step = tf.function(model.train_step)
    for k in range(40):
        x = train[rng.choice(len(train), 10, replace=False)]
        y = rng.integers(0, 6, 10)
        step({"frames": tf.constant(np.stack([permute(s, l) for s, l in zip(x, y)])), "label": tf.constant(y)})
    held = _arrow_of_time_segments(40, 3, np.random.default_rng(1))
    loss = float(np.mean(model.segment_losses(tf.constant(held), tf.zeros(40, tf.int64))["all"]))
    assert loss < 0.5 * math.log(6), loss


def test_all_orders_training_is_the_mean_over_every_order():
    """--train_orders=all: the training loss of a segment is the mean of Eq. 8 over all M! orders (one Base-CNN
    pass per frame), equal to concatenating every order and calling the Top-CNN (inference, no dropout)."""
    tf.keras.utils.set_random_seed(0)
    model = build_model(make_task("permutation", 3), (SIZE, SIZE), norm="batch", init="he", dropout="none",
                        train_orders="all", input_mean=np.full((SIZE, SIZE, 3), 127.5))
    x = _segments(2, 3, 4)
    labels = np.array([2, 5])
    permuted = tf.constant(np.stack([permute(s, y) for s, y in zip(x, labels)]))
    out = model.compute_outputs({"frames": permuted, "label": tf.constant(labels)}, training=False)
    direct = [float(losses.cross_entropy([y], model(permute(s, y)[None]))[0]) for s in x for y in range(6)]
    np.testing.assert_allclose(float(out["loss"]), np.mean(direct), rtol=1e-4)
    logits, targets = model.train_logits(permuted, tf.constant(labels), training=False)
    assert logits.shape == (12, 6) and targets.numpy().tolist() == list(range(6)) * 2


def test_recipe_options_initialise_drop_and_decay_as_documented():
    """--init=he (He-normal, zero biases), --init=caffe_zero_bias, --dropout placement, --weight_decay = Caffe's
    ``g + wd w`` as the L2 penalty wd/2 |w|^2 on every kernel (none on biases), in the loss the step minimises."""
    from permutation_tf.networks import TopCNN, build_base_cnn

    base = build_base_cnn((SIZE, SIZE), init="he", dropout="fc8", weight_decay=5e-4)
    kernels = [w for w in base.trainable_weights if "kernel" in w.path]
    for w in base.trainable_weights:
        if "bias" in w.path:
            assert np.all(w.numpy() == 0), w.path
    fc6 = next(w for w in kernels if "fc6" in w.path).numpy()
    assert abs(fc6.std() / math.sqrt(2.0 / fc6.shape[0]) - 1) < 0.1                 # He: std sqrt(2 / fan_in)
    assert all(layer.rate == 0 for layer in base.layers if isinstance(layer, tf.keras.layers.Dropout))
    penalty = sum(float(v) for v in base.losses)
    np.testing.assert_allclose(penalty, 5e-4 / 2 * sum(float(np.sum(w.numpy() ** 2)) for w in kernels), rtol=1e-4)
    caffe0 = build_base_cnn((SIZE, SIZE), init="caffe_zero_bias")
    assert all(np.all(w.numpy() == 0) for w in caffe0.trainable_weights if "bias" in w.path)
    assert [layer.rate for layer in caffe0.layers if isinstance(layer, tf.keras.layers.Dropout)] == [0.5, 0.5]
    assert TopCNN(3, 6, dropout="fc8").drop8.rate == 0.5 and TopCNN(3, 6, dropout="none").drop8.rate == 0.0
    assert not build_base_cnn((SIZE, SIZE)).losses                                      # default: no decay


def test_heldout_pretext_loss_and_chance():
    """metrics.json's ``heldout_pretext_loss``: the mean ``all`` cross-entropy of the NORMAL class's test segments;
    ``chance_loss``: the entropy of the task's class distribution (ln M! for ours)."""
    from permutation_tf.evaluate import heldout_pretext_loss

    scored = {"all": np.array([1.0, 2.0, 9.0, 3.0]), "sampled": np.array([0.5, 1.5, 9.0, 2.5]),
              "video_label": np.array([4, 4, 1, 4])}
    out = heldout_pretext_loss(scored, 4, make_task("permutation", 3))
    assert out["heldout_pretext_loss"] == 2.0 and out["heldout_pretext_loss_sampled"] == 1.5
    assert out["heldout_segments"] == 3 and out["chance_loss"] == pytest.approx(math.log(6))
    assert make_task("permutation", 5).chance_loss == pytest.approx(math.log(120))
    assert make_task("sorting").chance_loss == pytest.approx(math.log(12))
    assert make_task("rotnet").chance_loss == pytest.approx(math.log(4))
    assert make_task("shuffle_learn").chance_loss == pytest.approx(-(math.log(1 / 3) / 3 + 2 / 3 * math.log(2 / 3)))


# -------------------------------------------------------------------------------- issue 21: the stand-in
def _shift(a, b):
    """Circular shift (dx, dy) that moves frame a onto frame b (phase correlation; the canvas wraps)."""
    import cv2

    (dx, dy), _ = cv2.phaseCorrelate(a.astype(np.float64), b.astype(np.float64))
    return np.array([dx, dy])


def test_fashion_motion_classes_differ_in_motion_not_in_where_the_item_is():
    """The class generator: class k moves at heading 36 k degrees with its speed (2.5 / 4 px per frame) on a
    wrap-around canvas; the reversed clip moves like class k + 5; the start is uniform, so the mean frame over
    clips is flat (no position cue for a single frame)."""
    from permutation_tf.make_moving_fashion import class_motion, render_class_clip

    item = np.zeros((28, 28), np.uint8)
    item[6:22, 9:19] = 200
    item[6:10, 4:24] = 255                                           # a "T": not symmetric under rotation
    for k in range(10):
        clip = render_class_clip(item, k, np.random.default_rng(k), 8, 64)
        v = np.mean([_shift(clip[t], clip[t + 1]) for t in range(7)], axis=0)
        prof = class_motion(k)
        assert abs(np.linalg.norm(v) / prof["speed"] - 1) < 0.3, (k, v)
        heading = np.degrees(np.arctan2(v[1], v[0])) % 360
        assert min(abs(heading - prof["heading"]), 360 - abs(heading - prof["heading"])) < 20, (k, heading)
        back = np.mean([_shift(clip[t + 1], clip[t]) for t in range(7)], axis=0)
        opposite = class_motion((k + 5) % 10)["heading"]
        assert min(abs(np.degrees(np.arctan2(back[1], back[0])) % 360 - opposite),
                   360 - abs(np.degrees(np.arctan2(back[1], back[0])) % 360 - opposite)) < 20
    frames = np.concatenate([render_class_clip(item, 3, np.random.default_rng(100 + i), 2, 64)[:1]
                             for i in range(1000)]).astype(np.float64)
    cells = frames.mean(0).reshape(4, 16, 4, 16).mean(axis=(1, 3))  # mean brightness of 16 x 16 cells
    assert cells.std() / cells.mean() < 0.2


def test_fashion_motion_set_shares_appearance_across_classes(tmp_path):
    """``make(motion="class")``: a fraction ``shared_items`` of each class's clips shows an item of any
    category, so the classes share appearance; the rest show the class's own items; the set is deterministic."""
    from permutation_tf.make_moving_fashion import item_index, make

    a = make(tmp_path / "a", train_per_class=4, test_per_class=1, frames=16, size=48, seed=1, motion="class",
             shared_items=0.5)
    b = make(tmp_path / "b", train_per_class=4, test_per_class=1, frames=16, size=48, seed=1, motion="class",
             shared_items=0.5)
    files = sorted(p.relative_to(a) for p in a.rglob("*.avi"))
    assert len(files) == 50 and all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    labels = np.repeat(np.arange(10), 100)                           # a split of 1,000 images, 10 categories
    rng = np.random.default_rng(0)
    picks = [item_index(1000, 300 + i, i, 20, 0.5, rng) for i in range(20)]   # class 3's own images: 300..399
    assert len(set(labels[picks[:10]].tolist())) >= 4                # the shared half: many categories
    assert picks[10:] == list(range(310, 320))                       # the rest: the class's own items
    assert "motion=class" in (a / "README.txt").read_text()
    from common.errors import DataError
    with pytest.raises(DataError, match="--motion must be one of"):
        make(tmp_path / "c", motion="bounce")
