"""OLED end to end on tiny data in the real on-disk format: smoke train, evaluate, figures, SavedModel export
reloaded in a fresh process (which must give the model's scores for any batch size)."""
import json
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from tests.fixtures_formats import bar_images, write_image_folder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    from oled_tf.config import OLEDConfig
    from oled_tf.experiment import run

    root = tmp_path_factory.mktemp("folder")
    rng = np.random.default_rng(0)
    write_image_folder(root, {"horizontal": bar_images(rng, 40, False, bars=2),
                              "vertical": bar_images(rng, 40, True, bars=2)})
    work, export = tmp_path_factory.mktemp("work"), tmp_path_factory.mktemp("export")
    cfg = OLEDConfig(dataset="image_folder", data_dir=str(root), normal_class=0, scale="smoke", workdir=str(work),
                     export_dir=str(export), resume=False)
    metrics = run(cfg)
    return cfg, metrics, work, export


def test_smoke_run_writes_every_score(smoke_run):
    cfg, metrics, work, _ = smoke_run
    saved = json.loads((work / "metrics.json").read_text())
    for key in ("auroc", "auroc_last_epoch"):
        assert set(saved[key]) == {"s_rec", "s_mask", "s_cont", "s_avg"}
        assert all(0.0 <= v <= 1.0 for v in saved[key].values())
    assert saved["data"]["protocol"] == "memae_mnist" and saved["data"]["n_val_inliers"] == 8
    assert "inlier" in saved["segmentation_auroc"]
    assert json.loads((work / "config.json").read_text())["gamma"] == 50.0   # the paper's value by default
    # issue 18: one epoch for all four scores (s_avg), the learning gate with R's variance and its baseline
    assert len(set(saved["best_epoch"].values())) == 1
    gate = saved["learning_gate"]
    assert gate["r_output_variance"] > 0 and gate["floor_auroc"] == saved["floor"]["pca20_auroc"]
    for where, key in (("selected", "auroc"), ("last_epoch", "auroc_last_epoch")):
        assert gate[where]["plain_reconstruction_auroc"] == saved[key]["s_rec"]
        assert gate[where]["below_plain_reconstruction"] == (saved[key]["s_avg"] < saved[key]["s_rec"])
    assert gate["passed"] == (not any(gate[w]["below_plain_reconstruction"] or gate[w]["below_floor"]
                                      for w in ("selected", "last_epoch")))
    health = saved["training_health"]
    assert len(health["mask_iou_prev"]) == len(health["validated_epochs"]) and health["mask_iou_prev"][0] is None
    assert all(0.0 <= v <= 1.0 for v in health["mask_iou_prev"][1:])
    for name in ("fig2_reconstructions.png", "fig4_hist_s_avg.png"):
        assert (work / "figures" / name).stat().st_size > 1000


def test_normalised_scores_finite_in_unit_interval(smoke_run):
    _, _, work, _ = smoke_run
    z = np.load(work / "test_scores.npz")
    for k in ("s_rec", "s_mask", "s_cont", "s_avg"):
        assert np.all(np.isfinite(z[k])) and z[k].min() >= 0.0 and z[k].max() <= 1.0
        assert z[k].max() - z[k].min() > 0   # not a constant
    np.testing.assert_allclose(z["s_avg"], (z["s_rec"] + z["s_mask"] + z["s_cont"]) / 3, rtol=1e-6)


def test_export_reloads_in_fresh_process_with_same_scores(smoke_run):
    from oled_tf.data import prepare

    cfg, metrics, work, export = smoke_run
    version = export / "oled_image_folder_0" / "1"
    # metrics["export"]: {model name: entry} (common.lifecycle.Run.export)
    assert (version / "saved_model.pb").exists() and metrics["export"]["oled_image_folder_0"]["path"] == str(version)
    x = prepare(cfg.resolved()).test_x[:5]          # a batch size the run never used
    np.save(work / "x.npy", x)
    code = ("import numpy as np, tensorflow as tf, sys;"
            f"f = tf.saved_model.load({str(version)!r}).signatures['serving_default'];"
            f"out = f(images=tf.constant(np.load({str(work / 'x.npy')!r})));"
            f"np.savez({str(work / 'out.npz')!r}, **{{k: v.numpy() for k, v in out.items()}})")
    subprocess.run([sys.executable, "-c", code], check=True, cwd="/", capture_output=True)
    out = np.load(work / "out.npz")
    assert set(out.files) == {"anomaly_score", "s_rec", "s_mask", "s_cont", "mask", "reconstruction"}
    assert out["mask"].shape == (5, 28, 28, 1) and out["reconstruction"].shape == (5, 28, 28, 1)
    z = np.load(work / "test_scores.npz")
    for k in ("s_rec", "s_mask", "s_cont"):
        np.testing.assert_allclose(out[k], z[k][:5], atol=1e-4)
    np.testing.assert_allclose(out["anomaly_score"], z["s_avg"][:5], atol=1e-4)
