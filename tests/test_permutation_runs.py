"""permutation_tf runs through common.lifecycle (issue 17): both trainers under --strategy=mirrored on two logical
CPU devices (REPRO_CPU_REPLICAS=2, metrics.json records 2 replicas), what ran is recorded (--jit_compile=true that
Keras turns off, a --batch_size larger than the data), a test video shorter than one segment is refused before
anything is trained, and every network at the paper's sizes takes one training step and exports (batch of two)."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from tests import fixtures_formats as ff

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "REPRO_NO_PROGRESS": "1"}

tf = pytest.importorskip("tensorflow")


def _run(args, timeout=600, **env):
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, env={**ENV, **env}, capture_output=True, text=True,
                          timeout=timeout)


def test_image_task_trains_under_mirrored_on_two_cpus_and_records_what_ran(tmp_path):
    """--strategy=mirrored really trains (2 replicas); --jit_compile=true, which Keras turns off under op
    determinism, is recorded as it ran; --batch_size=1000 on 20 images runs (and is recorded as) one batch of 20;
    the export (an undistributed copy) is checked in a fresh process."""
    data = ff.make_l_shapes_fashion(tmp_path / "data")
    work, exports = tmp_path / "work", tmp_path / "exports"
    p = _run(["permutation_tf.train_image", "--task=rotnet", "--dataset=fashion_mnist", f"--data_dir={data}",
              "--normal_class=1", "--scale=smoke", "--strategy=mirrored", "--jit_compile=true", "--batch_size=1000",
              f"--workdir={work}", f"--export_dir={exports}"], REPRO_CPU_REPLICAS="2")
    assert p.returncode == 0, p.stderr[-3000:]
    m = json.loads((work / "metrics.json").read_text())
    assert m["strategy"] == "mirrored" and m["replicas"] == 2
    assert len(m["loss_per_epoch"]) == 2 and all(math.isfinite(v) for v in m["loss_per_epoch"])
    assert m["jit_compile"] is False and "jit_compile=true was requested" in p.stdout
    assert m["batch_size"] == 1000 and m["batch_size_effective"] == 20
    entry = m["export"]["permutation_image_rotnet_fashion_mnist_1"]
    meta = json.loads((tmp_path / entry["path"] / "assets.extra" / "export.json").read_text())
    sig = meta["signatures"]["serving_default"]
    assert sig["kind"] == "images" and sig["input_range"] == [-1.0, 1.0] and sig["input_shape"] == [32, 32, 1]
    assert max(entry["max_abs_diff_fresh_process"]["serving_default"].values()) < 1e-3


def test_video_trains_under_mirrored_on_two_cpus_and_exports_frames(tmp_path):
    from permutation_tf.make_moving_fashion import make

    make(tmp_path / "data" / "moving_fashion", train_per_class=2, test_per_class=1, frames=16, size=48, seed=0)
    work, exports = tmp_path / "work", tmp_path / "exports"
    p = _run(["permutation_tf.train", "--dataset=moving_fashion", f"--data_dir={tmp_path / 'data'}",
              "--normal_class=1", "--scale=smoke", "--m=3", "--strategy=mirrored", f"--workdir={work}",
              f"--export_dir={exports}"], REPRO_CPU_REPLICAS="2")
    assert p.returncode == 0, p.stderr[-3000:]
    m = json.loads((work / "metrics.json").read_text())
    assert m["strategy"] == "mirrored" and m["replicas"] == 2
    assert all(math.isfinite(v) for v in m["loss_per_epoch"] + m["accuracy_per_epoch"]) and m["loss_per_epoch"]
    assert 0.0 <= m["auroc"] <= 1.0
    # issue 21: whether the pretext task was learned, on the normal class's held-out segments; 2 smoke steps
    # do not learn it, and the run says so in one WARNING line
    assert m["chance_loss"] == pytest.approx(math.log(6)) and m["heldout_segments"] > 0
    assert math.isfinite(m["heldout_pretext_loss"]) and m["heldout_pretext_loss"] > 0.9 * m["chance_loss"]
    assert sum(line.startswith("WARNING: held-out pretext loss") for line in p.stdout.splitlines()) == 1
    assert m["recipe"]["train_orders"] == "all" and m["recipe"]["norm"] == "batch"
    entry = m["export"]["permutation_moving_fashion_1"]
    sig = json.loads((tmp_path / entry["path"] / "assets.extra" / "export.json").read_text())["signatures"][
        "serving_default"]
    # frames (batch, M, H, W, 3) in [0, 1], temporal order; the network's mean-frame subtraction is in the graph
    assert sig["input"] == "frames" and sig["kind"] == "clips" and sig["input_range"] == [0.0, 1.0]
    assert sig["input_shape"] == [3, 64, 64, 3] and sig["frames_per_clip"] == 3 and sig["frame_skip"] == 2
    assert sig["input_norm"] == "mean_image"
    assert set(entry["max_abs_diff_fresh_process"]["serving_default"]) == {
        "anomaly_score", "anomaly_score_raw", "permutation_probabilities"}


def test_short_test_video_is_refused_before_training(tmp_path):
    """A test video shorter than one segment (10 frames; M = 5 at skip 2 spans 13) is one error line before
    anything is trained: no checkpoint, config.json, identity.json or metrics.json is left in the workdir."""
    from permutation_tf.make_moving_fashion import write_avi

    root = tmp_path / "videos"
    for split, n in (("train", 16), ("test", 10)):
        for c in ("a", "b"):
            (root / split / c).mkdir(parents=True)
            write_avi(root / split / c / "v0.avi", np.random.default_rng(0).integers(0, 255, (n, 32, 32), np.uint8))
    work = tmp_path / "work"
    p = _run(["permutation_tf.train", "--dataset=video_folder", f"--data_dir={root}", "--scale=smoke", "--m=5",
              "--test_max_frames=20", f"--workdir={work}"], timeout=300)
    assert p.returncode == 2, p.stderr[-3000:]
    assert p.stderr.strip().splitlines()[-1].startswith("error: 2 test video(s) hold no segment of M=5 frames")
    assert "Traceback" not in p.stderr
    left = sorted(str(q.relative_to(work)) for q in work.rglob("*")) if work.exists() else []
    assert not [q for q in left if q.split("/")[0] in ("checkpoint", "config.json", "identity.json", "metrics.json")], \
        left


@pytest.fixture
def float32_policy():
    yield
    import keras

    keras.mixed_precision.set_global_policy("float32")


def test_paper_size_video_network_one_step_and_export(tmp_path, float32_policy):
    """Sec. IV-D: the 5-stream siamese CaffeNet (conv1 stride 2) at 225 x 225 frames, 120 classes: one SGD step on
    two segments and the export of the frames signature (checked in a fresh process)."""
    import keras

    from common.lifecycle import Run
    from permutation_tf.config import PAPER_FRAME_SIZE, VideoConfig
    from permutation_tf.model import build_model, make_task
    from permutation_tf.pipeline import export

    keras.utils.set_random_seed(0)
    size = PAPER_FRAME_SIZE
    task = make_task("permutation", 5)
    model = build_model(task, (size, size), input_mean=np.full((size, size, 3), 100.0, np.float32))
    rng = np.random.default_rng(0)
    frames = tf.constant(rng.uniform(0, 1, (2, 5, size, size, 3)).astype(np.float32))
    before = model.top.fc8.kernel.numpy()[:4].copy()
    logs = tf.function(model.train_step)({"frames": frames, "label": tf.constant([0, 77])})
    assert math.isfinite(float(logs["loss"])) and not np.array_equal(before, model.top.fc8.kernel.numpy()[:4])
    model.set_score_range(np.array([1.0, 9.0]))
    cfg = VideoConfig(dataset="ucf101", normal_class=0, frame_size=size, m=5, export_dir=str(tmp_path / "exp"),
                      workdir=str(tmp_path / "w"))
    out = export(Run(cfg, tmp_path / "w", tf.distribute.get_strategy()), model, cfg, frames.numpy())
    assert out["path"].endswith("permutation_ucf101_0/1")
    got = tf.saved_model.load(out["path"]).signatures["serving_default"](frames=frames)
    assert got["permutation_probabilities"].shape == (2, 120) and got["anomaly_score"].shape == (2,)


@pytest.mark.parametrize("task,shape", [("jigsaw", (32, 32, 1)), ("rotnet", (32, 32, 1)), ("inpainting", (32, 32, 1)),
                                        ("counting", (32, 32, 1)), ("colorization", (32, 32, 3)),
                                        ("splitbrain", (32, 32, 3)), ("jigsaw", (64, 64, 3)), ("rotnet", (64, 64, 3)),
                                        ("inpainting", (64, 64, 3)), ("counting", (64, 64, 3)),
                                        ("colorization", (64, 64, 3)), ("splitbrain", (64, 64, 3))])
def test_paper_size_image_networks_one_step_and_export(task, shape, tmp_path, float32_policy):
    """Each pretext task at the sizes its tables run at (Tables I-II: 28 x 28 padded to 32 and CIFAR 32 x 32;
    Table III: the ImageNet folder at 64 x 64 RGB), with the paper's settings (Adam, Counting's 1000 counts): one
    training step on two images, and the export of the 64 x 64 networks reloaded and compared (in this process, to
    keep the test cheap; the 32 x 32 ones export the same graph, and the run's own export is checked in a fresh
    process by the smoke runs)."""
    import keras

    from common.export import Signature, export_saved_model
    from permutation_tf.image.config import ImageTaskConfig
    from permutation_tf.image.pipeline import build_model, model_name, preprocessing

    keras.utils.set_random_seed(0)
    dataset = "image_folder" if shape[0] == 64 else ("cifar10" if shape[2] == 3 else "fashion_mnist")
    cfg = ImageTaskConfig(task=task, dataset=dataset, scale="paper", image_size=shape[0],
                          export_dir=str(tmp_path / "exp"), workdir=str(tmp_path / "w")).resolved()
    model = build_model(cfg, shape)
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (2, *shape)).astype(np.float32))
    before = [v.numpy().copy() for v in model.trainable_variables]
    logs = tf.function(model.train_step)(x)
    assert math.isfinite(float(logs["loss"]))
    assert any(not np.array_equal(b, v.numpy()) for b, v in zip(before, model.trainable_variables))
    if shape[0] == 64:
        path = export_saved_model(model, None, cfg.export_dir, model_name(cfg),
                                  signatures={"serving_default": Signature(model.serve, shape, "images")},
                                  metadata={"signatures": {"serving_default": preprocessing(cfg, shape)}})
        got = tf.saved_model.load(str(path)).signatures["serving_default"](images=x)
        want = model.serve(x)
        assert set(got) == {"anomaly_score", "transformation_losses"}
        for k in got:
            np.testing.assert_allclose(got[k].numpy(), want[k].numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("argv, expect", [
    (["permutation_tf.train", "--dataset=moving_fashion", "--seed=-1"], "error: --seed must be >= 0"),
    (["permutation_tf.train", "--dataset=moving_fashion", "--frame_size=32"], "error: --frame_size must be >= 64"),
    (["permutation_tf.train", "--dataset=moving_fashion", "--strategy=multi_worker"], "error: --strategy=multi_worker "
                                                                                       "needs the TF_CONFIG"),
    (["permutation_tf.train_image", "--dataset=fashion_mnist", "--seed=4294967296"], "error: --seed must be <= "),
    (["permutation_tf.train_image", "--dataset=fashion_mnist", "--color_bins=1"], "error: --color_bins must be >= 2"),
])
def test_bad_flags_are_one_line_before_tensorflow(tmp_path, argv, expect):
    """Every option is a field of the config (common.config.option) checked once by RunConfig.resolved: one error
    line, exit 2, before TensorFlow is imported, nothing written."""
    env = {k: v for k, v in ENV.items() if k != "TF_CONFIG"}
    p = subprocess.run([sys.executable, "-m", *argv, f"--workdir={tmp_path / 'w'}"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.strip().splitlines()[-1].startswith(expect), p.stderr[-2000:]
    assert "Traceback" not in p.stderr and "cudart_stub" not in p.stderr and not (tmp_path / "w").exists()


@pytest.mark.parametrize("module, own", [
    ("permutation_tf.train", ["--method:", "--m:", "--skip:", "--frame_size:", "--pooling:", "--input_norm:",
                              "--momentum:"]),
    ("permutation_tf.train_image", ["--task:", "--learning_rate:", "--train_limit:", "--image_size:", "--[no]floor:"]),
])
def test_help_lists_the_config_flags(module, own):
    p = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO, env=ENV, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    for flag in own + ["--dataset:", "--strategy:", "--export_dir:", "--scale:"]:
        assert f"  {flag}" in p.stdout, flag


def test_one_step_and_serve_under_mixed_bfloat16(float32_policy):
    """Both trainers under the bf16 policy (common.multiplayer: float32 losses, bf16 networks): one step and the
    serving function give finite float32 values."""
    import keras

    from permutation_tf.image.model import PretextModel
    from permutation_tf.image.tasks import make_task as image_task
    from permutation_tf.model import build_model, make_task

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    keras.utils.set_random_seed(0)
    video = build_model(make_task("permutation", 3), (64, 64), input_mean=np.full((64, 64, 3), 100.0, np.float32))
    frames = tf.constant(np.random.default_rng(0).uniform(0, 1, (2, 3, 64, 64, 3)).astype(np.float32))
    logs = tf.function(video.train_step)({"frames": frames, "label": tf.constant([0, 5])})
    assert math.isfinite(float(logs["loss"])) and math.isfinite(float(logs["accuracy"]))
    out = video.serve(frames)
    assert out["anomaly_score"].dtype == tf.float32 and np.all(np.isfinite(out["anomaly_score_raw"].numpy()))
    for name in ("rotnet", "jigsaw", "colorization"):
        channels = 3 if name == "colorization" else 1
        model = PretextModel(image_task(name), (32, 32, channels))
        model.build_all()
        model.compile(keras.optimizers.Adam(1e-3))
        x = tf.constant(np.random.default_rng(1).uniform(-1, 1, (2, 32, 32, channels)).astype(np.float32))
        assert math.isfinite(float(tf.function(model.train_step)(x)["loss"])), name
        assert np.all(np.isfinite(model.serve(x)["anomaly_score"].numpy())), name
