"""artifacts_tf through the run lifecycle: ``python -m artifacts_tf.train --strategy=mirrored`` really trains on
two logical CPU devices (metrics.json records two replicas, the exports are written and checked, a second start
reuses the finished run), and every network builds, trains one step and exports at the paper's sizes (issue 17,
item 10): the game at 96 px (STL-10) and 128 px (the ImageNet pre-training, Sec. 4.4), the 227 px AlexNet of
the transfer protocols (Tables 3-5)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from tests.fixtures_formats import make_mnist_like

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _train(args, replicas=None, timeout=600):
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2", "REPRO_NO_PROGRESS": "1",
           "REPRO_NO_DOWNLOAD": "1", "CUDA_VISIBLE_DEVICES": ""}
    if replicas:
        env["REPRO_CPU_REPLICAS"] = str(replicas)
    return subprocess.run([sys.executable, "-m", "artifacts_tf.train", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_mirrored_on_two_cpu_replicas_trains_exports_and_is_reused(tmp_path):
    make_mnist_like(tmp_path / "data" / "fashion_mnist", n_train=48, n_test=24, gz=False)
    work, export = tmp_path / "w", tmp_path / "export"
    args = ["--dataset=fashion_mnist", f"--data_dir={tmp_path / 'data'}", "--scale=smoke", "--image_size=32",
            "--strategy=mirrored", "--nofigures", f"--workdir={work}", f"--export_dir={export}"]
    r = _train(args, replicas=2)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    m = json.loads((work / "metrics.json").read_text())
    assert m["strategy"] == "mirrored" and m["replicas"] == 2
    assert set(m["final_losses"]) >= {"d_loss", "g_loss", "mask_loss"}
    assert all(np.isfinite(v) for v in m["final_losses"].values())
    assert np.isfinite(m["transfer"]["discriminator"]["accuracy"])
    assert set(m["export"]) == {"artifacts_fashion_mnist", "artifacts_fashion_mnist_classifier"}
    meta = json.loads((export / "artifacts_fashion_mnist" / "1" / "assets.extra" / "export.json").read_text())
    sig = meta["signatures"]["serving_default"]
    assert sig["input_range"] == [-1.0, 1.0] and sig["kind"] == "images" and sig["input_shape"] == [32, 32, 3]
    assert set(m["export"]["artifacts_fashion_mnist"]["max_abs_diff_fresh_process"]["serving_default"]) == \
        {"features", "real_probability", "damage_mask"}        # no anomaly_score: C scores realness
    # The same command again: the finished run is reused, nothing trained or exported a second time.
    again = _train(args, replicas=2)
    assert again.returncode == 0 and "reused" in again.stdout, (again.stdout + again.stderr)[-2000:]
    assert sorted(p.name for p in (export / "artifacts_fashion_mnist").iterdir()) == ["1"]


def test_refused_strategies_are_one_line(tmp_path):
    r = _train(["--dataset=fashion_mnist", f"--discriminator_dir={tmp_path}", "--transfer=voc07",
                f"--transfer_data_dir={tmp_path}", "--strategy=mirrored"])
    lines = (r.stdout + r.stderr).strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: --strategy=mirrored"), lines


@pytest.mark.parametrize("size", [96, 128])
def test_paper_size_game_step_and_export(size, tmp_path, reload_in_process):
    """The paper's networks at STL-10 (96) and ImageNet pre-training (128) size: one AE step, one game step of
    both players (distributed repair network, history buffer, mask head), the discriminator export reloaded and
    compared (in this process: the fresh-process reload is tested at smoke size). Batch of two."""
    import keras
    import tensorflow as tf

    from artifacts_tf.config import ArtifactsConfig
    from artifacts_tf.experiment import _adam, build_model, preprocessing
    from artifacts_tf.model import discriminator_serve_fn
    from artifacts_tf.networks import Autoencoder
    from common.export import check_export, export_saved_model

    keras.utils.set_random_seed(0)
    cfg = ArtifactsConfig(dataset="stl10", scale="paper", image_size=size, history_size=4).resolved()
    x = np.random.default_rng(0).uniform(-1, 1, (2, size, size, 3)).astype(np.float32)
    ae = Autoencoder(size, 3, cfg.encoder_kernel, cfg.lrelu_slope, cfg.ae_output)
    ae(tf.zeros((1, size, size, 3)))
    ae.compile(_adam(cfg, 10), loss="mse")
    assert np.isfinite(ae.train_on_batch(x, x))
    ae.trainable = False
    model = build_model(cfg, ae)
    model.compile(_adam(cfg, 10), _adam(cfg, 10))
    logs = model.train_step(tf.constant(x))
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert int(model.d_optimizer.iterations.numpy()) == 1 and int(model.g_optimizer.iterations.numpy()) == 1
    serve = discriminator_serve_fn(model.discriminator)
    path = export_saved_model(model.discriminator, serve, tmp_path, "artifacts_paper", (size, size, 3),
                              metadata={"signatures": {"serving_default": preprocessing(cfg)}})
    expected = {k: np.asarray(v) for k, v in serve(tf.constant(x)).items()}
    assert expected["damage_mask"].shape == (2, size // 16, size // 16)
    check_export(path, x, expected)


def test_paper_size_transfer_alexnet_227(tmp_path, reload_in_process):
    """Tables 3-5: the 227x227 ImageNet AlexNet initialised from a 128 px discriminator trunk, one VOC-style
    fine-tuning step (20 sigmoid outputs), the layer-wise feature model at 227, and the classifier exported."""
    import keras
    import tensorflow as tf

    from artifacts_tf import transfer as tr
    from artifacts_tf.networks import build_alexnet_trunk
    from common.export import check_export, export_saved_model

    keras.utils.set_random_seed(0)
    trunk = build_alexnet_trunk(128)
    net = tr.imagenet_alexnet_from_trunk(trunk, 20)
    net.compile(keras.optimizers.SGD(1e-3, momentum=0.9), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    x = np.random.default_rng(1).uniform(0, 1, (2, 227, 227, 3)).astype(np.float32)
    y = (np.random.default_rng(2).uniform(size=(2, 20)) > 0.5).astype(np.float32)
    assert np.isfinite(net.train_on_batch(x, y))
    feats = tr.layerwise_feature_model(tr.imagenet_trunk_from(trunk))
    out = feats(tf.constant(x * 2 - 1))
    assert [int(v.shape[-1]) for v in out] == [int(v) for v in tr.layerwise_sizes(feats).values()]

    def serve(images):
        return {"logits": tf.cast(net(images, training=False), tf.float32)}

    path = export_saved_model(net, serve, tmp_path, "alexnet_227", (227, 227, 3))
    check_export(path, x, {"logits": np.asarray(serve(tf.constant(x))["logits"])})


def test_multi_worker_is_refused_in_one_line():
    r = _train(["--dataset=fashion_mnist", "--strategy=multi_worker"])
    lines = (r.stdout + r.stderr).strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "--strategy=multi_worker is not supported" in lines[0], lines
