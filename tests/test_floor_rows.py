"""The row "PCA-20 floor (ours)": the frame-level floor (max over a frame's patches) by hand, the floor cells of
the UCSD jobs of OLED Table 3 and NRE Table 4 on a UCSD tree in the official layout (no training), and NRE
Table 1's classification floor."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from common.floors import floor_metrics
from common.registry import FLOOR_ROW
from fixtures_formats import write_ucsd_tree


def test_frame_floor_takes_the_max_over_a_frames_patches():
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(3, 16))
    train = (rng.normal(size=(100, 3)) @ basis).reshape(100, 4, 4, 1)
    normal = (rng.normal(size=(12, 3)) @ basis).reshape(12, 4, 4, 1)
    test = normal.copy()
    test[[5, 9]] = rng.normal(size=(2, 4, 4, 1)) * 5  # one off-subspace patch in frames 2 and 4
    frame_ids = np.repeat(np.arange(6), 2)  # 6 frames x 2 patches: frames 0..2 in video 1, 3..5 in video 2
    labels = [np.array([0, 0, 1]), np.array([0, 1, 0])]
    m = floor_metrics(train, test, frame_ids=frame_ids, video_lengths=[3, 3], video_labels=labels, n_components=3)
    assert m == {"pca3_auroc": 1.0, "pca3_eer": 0.0}
    # Mean pooling instead of max would still rank here; a frame whose bad patch is scored low must not pass:
    m_swapped = floor_metrics(train, test, frame_ids=frame_ids, video_lengths=[3, 3],
                              video_labels=[np.array([1, 0, 0]), np.array([0, 1, 0])], n_components=3)
    assert m_swapped["pca3_auroc"] < 1.0
    img = floor_metrics(train, test, test_y=np.isin(np.arange(12), [5, 9]).astype(int), n_components=3)
    assert img == {"pca3_auroc": 1.0}


@pytest.fixture
def ucsd_tree(tmp_path):
    """Smooth gray frames; test frames 3.. of each video carry a bright square (the anomaly)."""
    rng = np.random.default_rng(1)

    def frames(n):
        return np.clip(110 + rng.normal(0, 4, (n, 60, 60)), 0, 255).astype(np.uint8)

    test, masks, ranges = [], [], []
    for i in range(2):
        v = frames(5)
        m = np.zeros(v.shape, bool)
        m[2:, 5 + 20 * i:20 + 20 * i, 8:24] = True
        v[m] = 250
        test.append(v)
        masks.append(m)
        ranges.append([(3, 5)])
    write_ucsd_tree(tmp_path / "data", "ped2", [frames(6), frames(6)], test, masks, ranges)
    return tmp_path / "data"


def test_ucsd_floor_cells_of_oled_table3_and_nre_table4(ucsd_tree, tmp_path):
    from nre_tf.tables import JOBS as NRE_JOBS
    from oled_tf.tables import JOBS as OLED_JOBS

    oled = next(j for j in OLED_JOBS if j.key == "oled.table3/ped2")
    nre = next(j for j in NRE_JOBS if j.key == "nre.table4/ped2")
    assert (FLOOR_ROW, "AUCROC") in oled.cells and (FLOOR_ROW, "EER") in oled.cells
    assert (FLOOR_ROW, "EER") in nre.cells
    o = oled.floor("smoke", tmp_path / "w1", ucsd_tree, seed=0)
    assert o == {(FLOOR_ROW, "AUCROC"): 1.0, (FLOOR_ROW, "EER"): 0.0}  # the bright squares are off-subspace
    n = nre.floor("smoke", tmp_path / "w2", ucsd_tree, seed=0)
    assert n == {(FLOOR_ROW, "EER"): 0.0}  # NRE prints EER in %


def test_nre_table1_floor_is_the_svms_on_the_pca_projection():
    from nre_tf.floors import classification_floor, table1_cells

    rng = np.random.default_rng(2)
    means = rng.normal(size=(3, 64)) * 3

    def images(n, seed):
        r = np.random.default_rng(seed)
        y = np.arange(n) % 3
        return (means[y] + r.normal(size=(n, 64))).reshape(n, 8, 8, 1), y

    x, y = images(150, 3)
    xt, yt = images(60, 4)
    floor = classification_floor(x, y, xt, yt)
    assert floor["linear_svm"] >= 0.95 and floor["rbf_svm"] >= 0.95
    cells = table1_cells({"linear_svm": 0.5, "rbf_svm": 0.7}, ("L-SVM 40", "L-SVM 100", "R-SVM 40", "R-SVM 100"))
    assert cells == {(FLOOR_ROW, "L-SVM 40"): 0.5, (FLOOR_ROW, "L-SVM 100"): 0.5, (FLOOR_ROW, "R-SVM 40"): 0.7,
                     (FLOOR_ROW, "R-SVM 100"): 0.7}


FLOOR_TABLES = """
from common.registry import FLOOR_ROW, Job

def run(scale, workdir, data_dir, seed=0):
    return {("OLED (Ours) s_rec", "AUCROC"): 0.9, (FLOOR_ROW, "AUCROC"): 0.8 + seed / 100}

def floor(scale, workdir, data_dir, seed=0):
    return {(FLOOR_ROW, "AUCROC"): 0.8 + seed / 100}

JOBS = [Job("oled.table1", "class0", [("OLED (Ours) s_rec", "AUCROC"), (FLOOR_ROW, "AUCROC")], run, floor=floor)]
"""


def test_add_floors_completes_results_stored_before_the_floor(tmp_path, monkeypatch):
    import json
    import sys

    from common import add_floors

    name = f"fake_floor_{abs(hash(str(tmp_path))) % 10**8}"
    (tmp_path / "pkgs" / name).mkdir(parents=True)
    (tmp_path / "pkgs" / name / "__init__.py").write_text("")
    (tmp_path / "pkgs" / name / "tables.py").write_text(FLOOR_TABLES)
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    packages = {"nre": "no_pkg_n", "artifacts": "no_pkg_a", "permutation": "no_pkg_p", "oled": name}
    stored = tmp_path / "r/cells/quick/oled.table1/class0.json"
    stored.parent.mkdir(parents=True)
    old = {"format": 1, "table": "oled.table1", "job": "class0", "scale": "quick", "seeds": [0, 2], "n_parts": 1,
           "cells": [{"row": "OLED (Ours) s_rec", "col": "AUCROC", "value": 0.9, "per_seed": {"0": 0.9, "2": 0.9}}]}
    stored.write_text(json.dumps(old))
    try:
        assert add_floors.run("quick", only="oled.table1", results_dir=tmp_path / "r", packages=packages) == \
            {"added": 1, "present": 0, "skipped": 0}
        res = json.loads(stored.read_text())
        assert res["cells"][1] == {"row": FLOOR_ROW, "col": "AUCROC", "value": pytest.approx(0.81),
                                   "per_seed": {"0": 0.8, "2": pytest.approx(0.82)}}
        assert res["floor_added"]["by"] == "common.add_floors"
        assert "| PCA-20 floor (ours) | – / 0.8100 ± 0.0141 (2 seeds) |" in (tmp_path / "r/REPORT.md").read_text()
        assert add_floors.run("quick", results_dir=tmp_path / "r", packages=packages)["present"] == 1
    finally:
        for mod in [m for m in sys.modules if m.startswith(name)]:
            del sys.modules[mod]
