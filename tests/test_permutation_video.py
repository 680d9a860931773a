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
    for field, value in (("input_norm", "imagenet"), ("init", "he"), ("norm", "layer")):
        with pytest.raises(ConfigError, match=f"--{field} must be one of"):
            VideoConfig(dataset="moving_fashion", workdir="/tmp/x", **{field: value}).resolved()


def test_preset_frame_caps_cover_one_segment_and_short_test_videos_fail_before_decoding(tmp_path):
    """TABLE V's M = 6 (16 frames at skip 2) and TABLE VI's skip 3 (17 frames at M = 5) ran into the quick
    preset's caps (16 / 14 frames): the preset's caps now grow to one segment, a user's cap is kept, and a test
    video shorter than one segment is one DataError up front, not an error inside the tf.data pipeline."""
    from common.data_video import VideoItem
    from common.errors import DataError
    from permutation_tf.config import VideoConfig
    from permutation_tf.data import test_stream
    from permutation_tf.make_moving_fashion import write_avi

    def caps(**kw):
        cfg = VideoConfig(dataset="moving_fashion", scale="quick", workdir="/tmp/x", **kw).resolved()
        return cfg.max_frames, cfg.test_max_frames

    assert caps() == (16, 14)                          # M = 5, skip 2: 13 frames, preset unchanged
    assert caps(m=6) == (16, 16)
    assert caps(skip=3) == (17, 17)
    assert caps(skip=3, max_frames=14) == (14, 17)     # the user's value is kept
    assert caps(task="shuffle_learn", skip=3) == (16, 14)

    path = tmp_path / "short.avi"
    write_avi(path, np.zeros((10, 32, 32), np.uint8))
    cfg = VideoConfig(dataset="moving_fashion", scale="quick", workdir="/tmp/x", m=5).resolved()
    task = make_task("permutation", 5)
    with pytest.raises(DataError, match=r"1 test video\(s\) hold no segment of M=5 frames with skip 2 \(13 "
                                        r"frames, reading at most 14\), e.g. .*short.avi"):
        test_stream(cfg, task, [VideoItem(path, 0, "a")])
    cfg = VideoConfig(dataset="moving_fashion", scale="quick", workdir="/tmp/x", m=3).resolved()
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
