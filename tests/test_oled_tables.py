"""OLED's run_all jobs: the job list is valid for the registry, and a job fills its cells on an MNIST fixture
in the official IDX layout (Table 5: the mask generator as a segmenter of the digit foreground)."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from common.registry import JobResult, validate_jobs
from tests.fixtures_formats import write_idx


def _digits(rng, n):
    """MNIST-like: black background (0), a few bright strokes whose position depends on the label."""
    y = np.arange(n) % 10
    x = np.zeros((n, 28, 28), np.uint8)
    for i, c in enumerate(y):
        r = 4 + 2 * c
        x[i, r:r + 3, 4:24] = rng.integers(150, 256)
        x[i, 4:24, 4 + c:7 + c] = rng.integers(150, 256)
    return x, y.astype(np.uint8)


def test_jobs_are_valid_and_cover_tables_1_to_5():
    from oled_tf.tables import JOBS

    validate_jobs(JOBS)
    assert {j.table for j in JOBS} == {f"oled.table{i}" for i in range(1, 6)}
    for variant in ("", "mnist5k", "fashion_mnist"):  # the paper's MNIST, then the stand-in datasets
        t1 = [j for j in JOBS if j.table == "oled.table1" and j.variant == variant]
        assert len(t1) == 10 and all(j.n_parts == 10 for j in t1)
        assert {j.datasets for j in t1} == {(variant or "mnist",)}


def test_table5_job_on_mnist_fixture(tmp_path):
    from oled_tf.tables import JOBS

    rng = np.random.default_rng(0)
    d = tmp_path / "data" / "mnist"
    d.mkdir(parents=True)
    write_idx(d, *_digits(rng, 300), prefix="train")
    write_idx(d, *_digits(rng, 100), prefix="t10k")
    job = next(j for j in JOBS if j.key == "oled.table5/class8")
    res = job.run("smoke", tmp_path / "work", tmp_path / "data")
    assert isinstance(res, JobResult)
    assert set(res.values) == {("Inlier", "AUCROC"), ("Outlier", "AUCROC")}
    assert all(0.0 <= v <= 1.0 for v in res.values.values())
    assert res.extra["data"]["protocol"] == "memae_mnist" and res.extra["data"]["normal_class"] == 8
    # The run records the PCA-20 floor of its split; the Table 1 job's floor alone (no training) finds the same.
    t1 = next(j for j in JOBS if j.key == "oled.table1/class8")
    floor = t1.floor("smoke", tmp_path / "work", tmp_path / "data", seed=0)
    assert floor == {("PCA-20 floor (ours)", "AUCROC"): res.extra["floor"]["pca20_auroc"]}
