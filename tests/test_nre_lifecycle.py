"""NRE on the shared run lifecycle (issue 17): a finished run is reused without rewriting metrics.json, a new
--export_dir adds only the export (once), the table cells come back from a reused run, and nre_tf.train trains
under --strategy=mirrored on two logical CPU devices."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from fixtures_formats import make_mnist_like
from nre_tf.config import NREConfig

REPO = Path(__file__).resolve().parent.parent


def _cfg(tmp_path, **kw):
    return NREConfig(dataset="mnist", data_dir=str(tmp_path / "data"), scale="smoke", workdir=str(tmp_path / "w"),
                     latent_dim=8, n_train=0, n_test=0, clusters=2, encoder_a_root=str(tmp_path / "a"), **kw)


def test_rerun_reuses_metrics_and_adds_an_export_once(tmp_path):
    from nre_tf import experiment

    make_mnist_like(tmp_path / "data" / "mnist", n_train=48, n_test=8)
    metrics_file = tmp_path / "w" / "metrics.json"
    first = experiment.run(_cfg(tmp_path))
    stored = metrics_file.read_bytes()
    assert "export" not in first and first["replicas"] == 1 and first["strategy"] == "default"
    # The same run again: its stored metrics, nothing rewritten (the timings stay those of the run that trained).
    again = experiment.run(_cfg(tmp_path))
    assert metrics_file.read_bytes() == stored
    assert again["wall_seconds"] == first["wall_seconds"]
    # A new --export_dir: the finished run is exported; metrics.json gains the export and nothing else changes.
    export_dir = tmp_path / "export"
    with_export = experiment.run(_cfg(tmp_path, export_dir=str(export_dir)))
    after = json.loads(metrics_file.read_text())
    assert {k: v for k, v in after.items() if k != "export"} == json.loads(stored)
    entry = after["export"]["nre_mnist"]
    assert with_export["export"]["nre_mnist"]["path"] == entry["path"] and not entry["reused"]
    assert max(entry["max_abs_diff_fresh_process"]["serving_default"].values()) < 1e-4
    meta = json.loads((Path(entry["path"]) / "assets.extra" / "export.json").read_text())
    assert meta["signatures"]["serving_default"]["input_range"] == [0.0, 1.0]
    assert meta["signatures"]["serving_default"]["kind"] == "images"
    exported = metrics_file.read_bytes()
    # The same --export_dir again: no second version, metrics.json untouched.
    experiment.run(_cfg(tmp_path, export_dir=str(export_dir)))
    assert metrics_file.read_bytes() == exported
    assert [p.name for p in (export_dir / "nre_mnist").iterdir() if not p.name.startswith(".")] == ["1"]


def test_cells_come_back_from_a_reused_table_run(tmp_path):
    from fixtures_formats import make_ucsd_tree
    from nre_tf import ucsd_eval
    from nre_tf.results import cells_from_values, with_cells

    assert cells_from_values({"NRE_0.6,0.2,0.2 | EER": 12.5}) == {("NRE_0.6,0.2,0.2", "EER"): 12.5}
    assert with_cells({"values": {"a | b": 1.0}})["_cells"] == {("a", "b"): 1.0}
    make_ucsd_tree(tmp_path / "data", n_train=2, n_test=2, n_frames=4, shape=(60, 60))
    cfg = NREConfig(dataset="ucsd_ped2", data_dir=str(tmp_path / "data"), scale="smoke",
                    workdir=str(tmp_path / "w"), latent_dim=8, clusters=2, batch_size=8,
                    encoder_a_root=str(tmp_path / "a"))
    first = ucsd_eval.run(cfg)
    stored = (tmp_path / "w" / "metrics.json").read_bytes()
    second = ucsd_eval.run(cfg)  # reused: the stored metrics, with the cells rebuilt from "values"
    assert second["_cells"] == first["_cells"] and len(first["_cells"]) == 3
    assert (tmp_path / "w" / "metrics.json").read_bytes() == stored


def test_train_under_mirrored_on_two_cpu_replicas(tmp_path):
    make_mnist_like(tmp_path / "data" / "mnist", n_train=48, n_test=8)
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", "REPRO_NO_PROGRESS": "1",
           "CUDA_VISIBLE_DEVICES": "", "REPRO_CPU_REPLICAS": "2"}
    work, export = tmp_path / "w", tmp_path / "export"
    p = subprocess.run([sys.executable, "-m", "nre_tf.train", "--dataset=mnist", f"--data_dir={tmp_path / 'data'}",
                        "--scale=smoke", "--strategy=mirrored", "--latent_dim=8", "--n_train=0", "--n_test=0",
                        "--clusters=2", f"--workdir={work}", f"--export_dir={export}",
                        f"--encoder_a_root={tmp_path / 'a'}"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, (p.stdout + p.stderr)[-4000:]
    m = json.loads((work / "metrics.json").read_text())
    assert m["strategy"] == "mirrored" and m["replicas"] == 2
    losses = [m["ae_test_mse"], m["nre_test_mse"], *m["final_losses"].values()]
    assert all(v is not None and np.isfinite(v) for v in losses), losses
    assert max(m["export"]["nre_mnist"]["max_abs_diff_fresh_process"]["serving_default"].values()) < 1e-4


def test_table4_under_mirrored_on_two_cpu_replicas(tmp_path):
    """Table 4 trains its AE and both NRE variants under the strategy (Table 1 does the same through the same
    trainer; Tables 2 and 3 refuse --strategy=mirrored with one line, test below)."""
    from fixtures_formats import make_ucsd_tree

    make_ucsd_tree(tmp_path / "data", n_train=2, n_test=2, n_frames=4, shape=(60, 60))
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", "REPRO_NO_PROGRESS": "1",
           "CUDA_VISIBLE_DEVICES": "", "REPRO_CPU_REPLICAS": "2"}
    p = subprocess.run([sys.executable, "-m", "nre_tf.table4", "--dataset=ucsd_ped2", f"--data_dir={tmp_path / 'data'}",
                        "--scale=smoke", "--strategy=mirrored", "--latent_dim=8", "--clusters=2", "--batch_size=8",
                        f"--workdir={tmp_path / 'w'}", f"--encoder_a_root={tmp_path / 'a'}"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, (p.stdout + p.stderr)[-4000:]
    m = json.loads((tmp_path / "w" / "metrics.json").read_text())
    assert m["strategy"] == "mirrored" and m["replicas"] == 2
    assert len(m["values"]) == 3 and all(np.isfinite(v) for v in m["values"].values())


def test_tables_2_and_3_refuse_mirrored_with_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    for n, extra in ((2, ["--dataset=image_folder", f"--data_dir={tmp_path}"]), (3, ["--dataset=mnist5k"])):
        p = subprocess.run([sys.executable, "-m", f"nre_tf.table{n}", "--scale=smoke", "--strategy=mirrored",
                            f"--workdir={tmp_path / 'w'}", *extra], cwd=REPO, env=env, capture_output=True,
                           text=True, timeout=120)
        errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
        assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr[-2000:]
        assert len(errors) == 1 and f"not supported by NRE Table {n}" in errors[0], errors
        assert not (tmp_path / "w").exists()
