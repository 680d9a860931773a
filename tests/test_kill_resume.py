"""Kill-and-resume: an OLED smoke run killed by SIGKILL at a random point after its first checkpoint and started
again with the same command finishes with exactly the numbers of an uninterrupted run (CPU, op determinism);
the same workdir refuses another configuration with one line; NRE training resumes exactly too (a non-finite
loss and the RNG state: tests/test_run_identity.py)."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.fixtures_formats import bar_images, write_image_folder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "REPRO_NO_PROGRESS": "1", "CUDA_VISIBLE_DEVICES": ""}
TIMING = {"train_seconds", "eval_seconds", "wall_seconds", "train_images_per_second"}


def _cmd(data, work, *extra):
    return [sys.executable, "-m", "oled_tf.train", "--dataset=image_folder", f"--data_dir={data}", "--scale=smoke",
            "--epochs=3", "--train_limit=32", "--test_limit=32", "--nofigures", f"--workdir={work}", *extra]


def _first_checkpoint(work) -> bool:
    # Either layout counts (this code's checkpoint/, Keras BackupAndRestore's backup/ before it).
    return any((work / "checkpoint").glob("epoch-*")) or (work / "backup" / "training_metadata.json").exists()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    rng = np.random.default_rng(0)
    write_image_folder(root / "data", {"horizontal": bar_images(rng, 24, False),
                                       "vertical": bar_images(rng, 24, True)})
    ref, killed = root / "ref", root / "killed"
    # The uninterrupted run and the run to be killed start together (two processes, same command but workdir).
    p_ref = subprocess.Popen(_cmd(root / "data", ref), cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    p_kill = subprocess.Popen(_cmd(root / "data", killed), cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not _first_checkpoint(killed) and p_kill.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    delay = random.uniform(0.0, 1.0)  # a random point of the second epoch (an epoch takes seconds)
    time.sleep(delay)
    alive = p_kill.poll() is None
    p_kill.send_signal(signal.SIGKILL)
    p_kill.wait()
    out_ref, _ = p_ref.communicate(timeout=600)
    assert p_ref.returncode == 0, out_ref[-3000:]
    assert alive and not (killed / "metrics.json").exists(), f"the run finished before the kill ({delay:.2f} s)"
    again = subprocess.run(_cmd(root / "data", killed), cwd=REPO, env=ENV, capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    return root, ref, killed, again.stdout + again.stderr, delay


def test_killed_run_resumes_to_identical_metrics(runs):
    _, ref, killed, log, delay = runs
    assert "resumed from" in log, log[-2000:]
    a = json.loads((ref / "metrics.json").read_text())
    b = json.loads((killed / "metrics.json").read_text())
    assert set(a) == set(b)
    for key in sorted(set(a) - TIMING):
        assert a[key] == b[key], f"{key} differs after a kill {delay:.2f} s after the first checkpoint"
    sa, sb = np.load(ref / "test_scores.npz"), np.load(killed / "test_scores.npz")
    assert all(np.array_equal(sa[k], sb[k]) for k in sa.files)
    # The CSV log has every epoch once, with the uninterrupted run's values.
    assert (ref / "log.csv").read_text() == (killed / "log.csv").read_text()


def test_same_workdir_refuses_another_config(runs):
    # Defect 1: the same workdir with --seed=5 --gamma=1 --mask=random used to train 0 epochs and report the
    # seed-0 OLED weights as CAE / seed 5.
    root, ref, _, _, _ = runs
    before = (ref / "metrics.json").read_text()
    p = subprocess.run(_cmd(root / "data", ref, "--seed=5", "--gamma=1", "--mask=random"), cwd=REPO, env=ENV,
                       capture_output=True, text=True, timeout=600)
    err = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert p.returncode == 2 and len(err) == 1 and "Traceback" not in p.stderr, p.stderr[-2000:]
    for part in ("seed: 0 -> 5", "gamma: 50.0 -> 1.0", "mask: 'learned' -> 'random'", "--force"):
        assert part in err[0]
    assert (ref / "metrics.json").read_text() == before


def test_nre_training_resumes_exactly(tmp_path):
    import keras

    from nre_tf import trainer

    x = (np.random.default_rng(0).uniform(size=(32, 28, 28, 1)) * 255).astype(np.uint8)

    keras.utils.set_random_seed(0)
    _, nets = trainer.build_autoencoder_model("ae", (28, 28, 1), latent_dim=8, seed=0)  # A: any fixed AE

    def train(work, nre_epochs):
        keras.utils.set_random_seed(0)
        nre, _ = trainer.train_nre(nets["encoder"], nets["decoder"], nets["encoder"], x, (0.5, 0.2, 0.3), 1,
                                   nre_epochs, 16, work, exact=True, refresh_every=2, seed=0)
        return nre.get_weights()

    ref = train(tmp_path / "ref", 2)
    # Stopped after the first NRE epoch, between two neighbour refreshes (refresh_every=2: the indices of epoch
    # 0 are part of the checkpoint), then run to the end.
    train(tmp_path / "cut", 1)
    cut = train(tmp_path / "cut", 2)
    assert all(np.array_equal(a, b) for a, b in zip(ref, cut))
