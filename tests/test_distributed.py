"""OLED and NRE under tf.distribute and mixed precision (issue 7, defects 2 and 3), and multi-worker OLED: two worker
processes on 127.0.0.1 with TF_CONFIG finish with the same weights, and only the chief writes results and the
export."""
import json
import os
import socket
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from tests.fixtures_formats import bar_images, make_mnist_like, write_image_folder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def bars(tmp_path_factory):
    root = tmp_path_factory.mktemp("bars")
    rng = np.random.default_rng(0)
    write_image_folder(root, {"horizontal": bar_images(rng, 30, False), "vertical": bar_images(rng, 30, True)})
    return root


@pytest.fixture
def restore_policy():
    yield
    import keras

    keras.mixed_precision.set_global_policy("float32")


def test_oled_trains_under_mirrored_and_mixed_bfloat16(bars, tmp_path, restore_policy):
    """Defect 2 (tf.cond around m_optimizer.apply: merge_call error under MirroredStrategy) and bf16 OLED; MM
    trained in epoch 0 and frozen in epoch 1, so both step functions run under the strategy."""
    from oled_tf.config import OLEDConfig
    from oled_tf.experiment import run

    cfg = OLEDConfig(dataset="image_folder", data_dir=str(bars), scale="smoke", workdir=str(tmp_path / "w"),
                     strategy="mirrored", precision="mixed_bfloat16", epochs=2, mask_update_every=2, train_limit=32,
                     test_limit=24, figures=False, resume=False)
    m = run(cfg)
    assert (tmp_path / "w" / "metrics.json").exists()
    assert set(m["final_losses"]) >= {"r_loss", "mm_objective"}
    assert all(np.isfinite(v) for v in m["final_losses"].values())


def test_oled_cli_mirrored_on_two_logical_cpus(bars, tmp_path):
    """`python -m oled_tf.train --strategy=mirrored` really trains with two replicas (REPRO_CPU_REPLICAS=2 splits
    the CPU into two logical devices); MM trained in epoch 0 and frozen in epoch 1; the export is of the
    undistributed copy and reloads."""
    work = tmp_path / "w"
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2", "REPRO_NO_PROGRESS": "1",
           "CUDA_VISIBLE_DEVICES": "", "REPRO_CPU_REPLICAS": "2"}
    p = subprocess.run([sys.executable, "-m", "oled_tf.train", "--dataset=image_folder", f"--data_dir={bars}",
                        "--scale=smoke", "--strategy=mirrored", "--epochs=2", "--mask_update_every=2",
                        "--train_limit=32", "--test_limit=24", "--nofigures", "--noresume", f"--workdir={work}",
                        f"--export_dir={tmp_path / 'export'}"], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    m = json.loads((work / "metrics.json").read_text())
    assert m["strategy"] == "mirrored" and m["replicas"] == 2
    assert set(m["final_losses"]) >= {"r_loss", "mm_objective"}
    assert all(np.isfinite(v) for v in m["final_losses"].values())
    assert (tmp_path / "export" / "oled_image_folder_0" / "1" / "saved_model.pb").exists()


def test_nre_trains_under_mirrored_and_mixed_bfloat16(tmp_path, restore_policy):
    """Defect 3: NRE crashed under mixed precision (float32 image minus a bf16 reconstruction)."""
    from nre_tf.config import NREConfig
    from nre_tf.experiment import run

    make_mnist_like(tmp_path / "data" / "mnist", n_train=48, n_test=8)
    cfg = NREConfig(dataset="mnist", data_dir=str(tmp_path / "data"), scale="smoke", workdir=str(tmp_path / "w"),
                    strategy="mirrored", precision="mixed_bfloat16", latent_dim=8, n_train=0, n_test=0,
                    clusters=2, resume=False)
    m = run(cfg)
    assert np.isfinite(m["nre_test_mse"]) and np.isfinite(m["ae_test_mse"])
    assert (tmp_path / "w" / "metrics.json").exists()


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_multi_worker_oled_same_weights_and_chief_writes(bars, tmp_path):
    """Two workers, one smoke epoch each, in step through the collective ops."""
    work, export = tmp_path / "work", tmp_path / "export"
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    args = [sys.executable, "-m", "oled_tf.train", "--dataset=image_folder", f"--data_dir={bars}", "--scale=smoke",
            "--strategy=multi_worker", "--epochs=1", "--train_limit=32",
            "--test_limit=24", "--nofigures", "--noresume", f"--workdir={work}", f"--export_dir={export}"]
    procs = []
    for i in range(2):
        env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2", "REPRO_NO_PROGRESS": "1",
               "CUDA_VISIBLE_DEVICES": "",
               "TF_CONFIG": json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})}
        procs.append(subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    deadline = time.time() + 480
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=max(1.0, deadline - time.time()))[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    for i, (p, out) in enumerate(zip(procs, outs)):
        assert p.returncode == 0, f"worker {i}:\n{out[-3000:]}"
    digests = [[l.split()[-1] for l in out.splitlines() if l.startswith("weights digest")] for out in outs]
    assert len(digests[0]) == 1 and digests[0] == digests[1], digests
    # Only the chief (worker 0) wrote into the shared workdir and export dir.
    metrics = json.loads((work / "metrics.json").read_text())
    assert metrics["weights_digest"] == digests[0][0]
    assert "exported" in outs[0] and "exported" not in outs[1]
    assert [p.name for p in (export / "oled_image_folder_0").iterdir()] == ["1"]
    assert sorted(p.name for p in work.iterdir() if p.name.startswith("worker")) == []
