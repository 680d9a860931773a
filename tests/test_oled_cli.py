"""`python -m oled_tf.train` as a user runs it: UCSD Ped2 in its real folder layout (tiny fixture), frame-level
AUROC + EER in metrics.json (the export is tested in test_oled_train.py); bad input gives one error line and exit status 2."""
import json
import os
import subprocess
import sys

import numpy as np

from tests.fixtures_formats import make_ucsd_tree

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "REPRO_NO_PROGRESS": "1"}


def _train(*args):
    return subprocess.run([sys.executable, "-m", "oled_tf.train", *args], cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=600)


def test_ucsd_cli_smoke_frame_level_metrics(tmp_path):
    fx = make_ucsd_tree(tmp_path / "data", n_train=2, n_test=2, n_frames=6, shape=(60, 90))
    work = tmp_path / "work"
    p = _train("--dataset=ucsd", f"--data_dir={fx['root']}", "--scale=smoke", f"--workdir={work}")
    assert p.returncode == 0, p.stderr[-3000:]
    assert "Epoch 1/2" in p.stdout + p.stderr          # progress is visible
    m = json.loads((work / "metrics.json").read_text())
    assert m["data"]["n_test_frames"] == 12 and m["data"]["n_test_patches"] == 12 * 6
    assert m["data"]["files"] == [str(fx["root"].resolve())]     # what was actually read
    assert m["selection"] == "last epoch"               # UCSD training data has no outliers
    for key in ("auroc", "eer"):
        assert set(m[key]) == {"s_rec", "s_mask", "s_cont", "s_avg"}
        assert all(0.0 <= v <= 1.0 for v in m[key].values())
    z = np.load(work / "test_scores.npz")
    assert len(z["frame_ids"]) == 72 and np.all((z["s_avg"] >= 0) & (z["s_avg"] <= 1))
    assert (work / "figures" / "fig4_hist_s_avg.png").exists()


def test_cli_bad_input_one_error_line(tmp_path):
    p = _train("--dataset=ucsd", f"--data_dir={tmp_path / 'missing'}", "--scale=smoke", f"--workdir={tmp_path / 'w'}")
    assert p.returncode == 2
    err = [l for l in p.stderr.splitlines() if l.startswith("error:")]
    assert len(err) == 1 and "UCSD" in err[0] and "Traceback" not in p.stderr
    p = _train("--dataset=svhn", "--scale=smoke", f"--workdir={tmp_path / 'w2'}")
    assert p.returncode == 2 and p.stderr.strip().splitlines()[-1].startswith("error: OLED does not support")
