"""Streaming tf.data sources (common/streaming.py) on tiny files in the real formats: PNG folders, STL-10 binaries."""
import functools

import numpy as np
import pytest
import tensorflow as tf

from common import augment, streaming
from common.data_images import load_stl10
from common.errors import DataError
from tests.fixtures_formats import make_stl10, truncate, write_image_folder


def _rgb(n, h=6, w=5, seed=0):
    return list(np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8))


@pytest.fixture
def folder(tmp_path):
    imgs = {"b_cls": _rgb(3, seed=1), "a_cls": _rgb(4, seed=2)}
    write_image_folder(tmp_path / "imgs", imgs)
    return tmp_path / "imgs", imgs


def _epochs(ds):
    return [(b["index"], b["label"], b["image"]) for b in ds.as_numpy_iterator()]


def test_listing_is_sorted_with_labels_from_class_folders(folder):
    root, imgs = folder
    files = streaming.list_image_files(root)
    assert files.classes == ["a_cls", "b_cls"]
    assert [p.split("/")[-2:] for p in files.paths] == [["a_cls", f"{i:04d}.png"] for i in range(4)] + \
        [["b_cls", f"{i:04d}.png"] for i in range(3)]
    np.testing.assert_array_equal(files.labels, [0, 0, 0, 0, 1, 1, 1])


def test_split_nested_and_list_file_layouts(tmp_path):
    write_image_folder(tmp_path / "inet" / "train", {"n02": _rgb(1), "n01": _rgb(2)})
    write_image_folder(tmp_path / "inet" / "val", {"n03": _rgb(1)})
    tr = streaming.list_image_files(tmp_path / "inet", "train")
    assert tr.classes == ["n01", "n02", "n03"] and list(tr.labels) == [0, 0, 1]     # union over split folders
    write_image_folder(tmp_path / "places" / "a", {"airfield": _rgb(1)})
    write_image_folder(tmp_path / "places" / "a" / "apartment_building", {"outdoor": _rgb(2)})
    write_image_folder(tmp_path / "places" / "b", {"bakery": _rgb(1)})
    pl = streaming.list_image_files(tmp_path / "places", nested=True)
    assert pl.classes == ["a/airfield", "a/apartment_building/outdoor", "b/bakery"]
    assert list(pl.labels) == [0, 1, 1, 2]
    lst = tmp_path / "list.txt"
    lst.write_text("/a/airfield/0000.png 0\n/b/bakery/0000.png 4\n")
    li = streaming.list_image_files(tmp_path / "places", list_file=lst)
    assert list(li.labels) == [0, 4] and li.paths[1].endswith("b/bakery/0000.png")


def test_streamed_pixels_and_labels_match_the_files(folder):
    root, imgs = folder
    src = streaming.image_folder_source(root)
    (idx, lab, img), = _epochs(streaming.make_dataset(src, seed=0, batch_size=7, shuffle=False))
    np.testing.assert_array_equal(idx, np.arange(7))
    np.testing.assert_array_equal(lab, [0, 0, 0, 0, 1, 1, 1])
    expected = np.stack(imgs["a_cls"] + imgs["b_cls"]).astype(np.float32) / 255
    np.testing.assert_allclose(img, expected, atol=1e-6)
    assert src.origin == str(root)
    # size=(H, W): resized on the fly; to the stored size it is the identity.
    (_, _, same), = _epochs(streaming.make_dataset(src, seed=0, batch_size=7, shuffle=False, size=(6, 5)))
    np.testing.assert_allclose(same, expected, atol=1e-6)
    (_, _, small), = _epochs(streaming.make_dataset(src, seed=0, batch_size=7, size=(3, 4)))
    assert small.shape == (7, 3, 4, 3)


def test_gray_and_colour_files_mix_as_rgb(tmp_path):
    gray = np.random.default_rng(0).integers(0, 256, (6, 5), dtype=np.uint8)
    write_image_folder(tmp_path, {"g": [gray], "c": _rgb(1)})
    src = streaming.image_folder_source(tmp_path)
    (_, _, img), = _epochs(streaming.make_dataset(src, seed=0, batch_size=2, shuffle=False))
    np.testing.assert_allclose(img[1], np.repeat(gray[..., None], 3, 2) / 255, atol=1e-6)


def test_order_is_a_function_of_seed_and_epoch_and_resumable(folder):
    src = streaming.image_folder_source(folder[0])
    prep = functools.partial(augment.artifacts_train, size=(4, 4))

    def run(seed, start=0, epochs=3, preprocess=prep):
        return _epochs(streaming.make_dataset(src, seed=seed, batch_size=7, preprocess=preprocess,
                                              size=(4, 4), start_epoch=start, num_epochs=epochs))

    a = run(0)
    orders = [tuple(e[0]) for e in a]
    assert all(sorted(o) == list(range(7)) for o in orders)                 # each epoch: a permutation
    assert len(set(orders)) == 3                                            # epochs differ
    assert orders == [tuple(streaming.epoch_order(7, 0, e).numpy()) for e in range(3)]   # f(seed, epoch)
    assert orders != [tuple(e[0]) for e in run(1, preprocess=None)]         # another seed, another order
    resumed = run(0, start=1, epochs=2)                                     # a run resumed at epoch 1 ...
    for x, y in zip(resumed, a[1:]):                                        # ... sees the same images, order
        np.testing.assert_array_equal(x[0], y[0])                           # and augmentation
        np.testing.assert_array_equal(x[2], y[2])
    assert not np.array_equal(a[0][2][np.argsort(a[0][0])], a[1][2][np.argsort(a[1][0])])  # new draw per epoch


def test_stl10_streams_from_the_file_without_loading_it(tmp_path, monkeypatch):
    data = make_stl10(tmp_path, n_train=4, n_unlabeled=5)
    whole = load_stl10("train", tmp_path)

    def no_fromfile(*a, **k):
        raise AssertionError("STL-10 images must be memory-mapped, not read whole")

    src = streaming.stl10_source(tmp_path, "train")
    monkeypatch.setattr(np, "fromfile", no_fromfile)
    un = streaming.stl10_source(tmp_path, "unlabeled")
    (idx, lab, img), = _epochs(streaming.make_dataset(src, seed=3, batch_size=4))
    np.testing.assert_array_equal(lab, whole.y[idx])
    np.testing.assert_allclose(img, whole.x[idx] / 255, atol=1e-6)
    (idx, lab, img), = _epochs(streaming.make_dataset(un, seed=3, batch_size=5))
    assert sorted(idx) == list(range(5)) and (lab == -1).all()
    np.testing.assert_allclose(img, data["unlabeled"][idx] / 255, atol=1e-6)
    assert un.origin.endswith("unlabeled_X.bin") and un.shape == (96, 96, 3)


def test_array_source_matches_the_array_and_converts_gray():
    x = np.random.default_rng(0).integers(0, 256, (5, 4, 4, 1), dtype=np.uint8)
    src = streaming.array_source(x, labels=np.arange(5))
    (idx, lab, img), = _epochs(streaming.make_dataset(src, seed=1, batch_size=5))
    np.testing.assert_array_equal(lab, idx)
    np.testing.assert_allclose(img, np.repeat(x[idx], 3, -1) / 255, atol=1e-6)
    with pytest.raises(DataError, match="uint8"):
        streaming.array_source(x.astype(np.float32))


def test_batches_never_mix_epochs_and_endless_streams_keep_going():
    src = streaming.array_source(np.zeros((7, 2, 2, 1), np.uint8))
    ds = streaming.make_dataset(src, seed=0, batch_size=3, num_epochs=None, start_epoch=5)
    batches = [b["index"] for b in ds.take(3 * streaming.steps_per_epoch(src, 3)).as_numpy_iterator()]
    assert [len(b) for b in batches] == [3, 3, 1] * 3
    for e in range(3):
        np.testing.assert_array_equal(np.concatenate(batches[3 * e:3 * e + 3]),
                                      streaming.epoch_order(7, 0, 5 + e).numpy())


def test_empty_and_missing_folders_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        streaming.image_folder_source(tmp_path / "nope")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    (tmp_path / "empty" / "cls" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="no images in"):
        streaming.image_folder_source(tmp_path / "empty")


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage"])
def test_corrupt_image_names_the_file(folder, damage):
    root, _ = folder
    bad = root / "b_cls" / "0001.png"
    if damage == "truncated":
        truncate(bad)
    elif damage == "empty":
        bad.write_bytes(b"")
    else:
        bad.write_bytes(b"not an image at all")
    src = streaming.image_folder_source(root)
    with pytest.raises(DataError, match=str(bad)):
        with streaming.data_errors(src):
            _epochs(streaming.make_dataset(src, seed=0, batch_size=2, size=(6, 5)))


def test_truncated_stl10_is_a_data_error(tmp_path):
    root = make_stl10(tmp_path, n_unlabeled=3) and tmp_path / "stl10_binary"
    truncate(root / "unlabeled_X.bin", 0.5)
    with pytest.raises(DataError, match="truncated"):
        streaming.stl10_source(tmp_path, "unlabeled", download_ok=False)


def test_data_errors_lets_other_errors_through():
    with pytest.raises(tf.errors.InvalidArgumentError):
        with streaming.data_errors():
            tf.reshape(tf.zeros([3]), [2])


def test_mixed_sizes_without_a_size_are_a_data_error(tmp_path):
    write_image_folder(tmp_path, {"a": _rgb(1, 6, 5), "b": _rgb(1, 7, 5)})
    src = streaming.image_folder_source(tmp_path)
    with pytest.raises(DataError, match="differ in size"):
        with streaming.data_errors(src):
            _epochs(streaming.make_dataset(src, seed=0, batch_size=2))
    (_, _, img), = _epochs(streaming.make_dataset(src, seed=0, batch_size=2, size=(6, 5)))
    assert img.shape == (2, 6, 5, 3)
