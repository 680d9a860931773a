"""The transfer protocols of artifacts_tf beyond Table 1: Table 2 "conv1-conv5 finetuned" (the trunk trains,
the frozen mode does not), Table 3's ImageNet AlexNet initialised from a discriminator trunk, and the layer-wise
protocol of Tables 4-5 (per-layer pooled sizes, end to end on a streamed JPEG image folder). Random trunks and
tiny data: these check behaviour, not accuracy levels."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from artifacts_tf import transfer as tr
from artifacts_tf.networks import build_alexnet_trunk, transfer_features

S = 32


def _conv_weights(trunk):
    return {name: [np.array(w) for w in trunk.get_layer(name).get_weights()] for name in tr.CONV_LAYERS}


def _colour_images(rng, n_per_class, side, classes=((230, 30, 30), (30, 230, 30), (30, 30, 230))):
    """Images of distinct solid colours (plus noise), labels 0..len(classes)-1: linearly separable."""
    x, y = [], []
    for k, c in enumerate(classes):
        for _ in range(n_per_class):
            x.append(np.clip(np.array(c)[None, None] + rng.integers(-20, 21, (side, side, 3)), 0, 255))
            y.append(k)
    return np.asarray(x, np.uint8), np.asarray(y, np.int64)


def test_table2_finetuned_trains_the_conv_layers_and_frozen_does_not():
    import keras

    keras.utils.set_random_seed(0)
    base = build_alexnet_trunk(S)
    feats = transfer_features(base)
    before = _conv_weights(base)
    x, y = _colour_images(np.random.default_rng(0), 4, S)
    for finetune in (True, False):
        model = tr.fold_classifier(feats, 3, finetune=finetune)
        copy = model.get_layer("transfer_features").get_layer("alexnet_trunk")
        head0 = np.array(model.get_layer("linear").kernel)
        tr.train_fold_classifier(model, x, y, image_size=S, epochs=1, batch_size=6, augment=False, run_eagerly=True)
        after = _conv_weights(copy)
        changed = {n: any(not np.array_equal(a, b) for a, b in zip(after[n], before[n])) for n in tr.CONV_LAYERS}
        assert all(changed.values()) if finetune else not any(changed.values()), (finetune, changed)
        assert not np.array_equal(np.array(model.get_layer("linear").kernel), head0)  # the classifier trains
    assert all(all(np.array_equal(a, b) for a, b in zip(_conv_weights(base)[n], before[n]))
               for n in tr.CONV_LAYERS)                                            # the original is a copy source
    folds = [np.array([0, 1, 4, 5, 8, 9]), np.array([2, 3, 6, 7, 10, 11])]
    res = tr.fold_finetune_accuracy(feats, x, y, x, y, folds, 3, image_size=S, epochs=1, batch_size=6,
                                    augment=False, seed=1, run_eagerly=True)
    assert res["n_folds"] == 2 and res["fold_sizes"] == [6, 6]
    assert all(0.0 <= a <= 100.0 for a in res["per_fold"]) and res["mean"] == pytest.approx(np.mean(res["per_fold"]))
    assert res["sd"] == pytest.approx(np.std(res["per_fold"], ddof=1))


def test_layerwise_pooled_sizes_are_about_9200_at_227():
    trunk = tr.imagenet_trunk_from(build_alexnet_trunk(S))
    sizes = tr.layerwise_sizes(tr.layerwise_feature_model(trunk))
    # conv1 55x55x96 -> 10x10, conv2 27x27x256 -> 6x6, conv3/4 13x13x384 -> 5x5, conv5 13x13x256 -> 6x6
    assert sizes == {"conv1": 9600, "conv2": 9216, "conv3": 9600, "conv4": 9600, "conv5": 9216}
    assert all(abs(v - tr.LAYERWISE_TARGET) / tr.LAYERWISE_TARGET < 0.05 for v in sizes.values())
    # the pooling is an average over adaptive bins covering the whole map
    x = np.random.default_rng(0).normal(size=(2, 13, 13, 3)).astype(np.float32)
    got = np.asarray(tr._adaptive_average_pool(x, 5))
    want = np.stack([np.stack([x[:, (i * 13) // 5:-(-((i + 1) * 13) // 5), (j * 13) // 5:-(-((j + 1) * 13) // 5)]
                               .mean(axis=(1, 2)) for j in range(5)], 1) for i in range(5)], 1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_layerwise_protocol_end_to_end_on_a_streamed_jpeg_folder(tmp_path):
    import keras

    from common.streaming import image_folder_source
    from tests.fixtures_formats import write_image_folder

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(1)
    names = ("red", "green", "blue")
    for split, n in (("train", 8), ("val", 4)):
        x, y = _colour_images(rng, n, 40)
        write_image_folder(tmp_path / split, {names[k]: x[y == k] for k in range(3)}, ext=".jpg")
    train = tr.balanced_subset(image_folder_source(tmp_path, "train", nested=True), 18, seed=0)
    assert len(train) == 18 and np.bincount(train.labels).tolist() == [6, 6, 6]
    val = image_folder_source(tmp_path, "val", nested=True)
    side = 67  # a small standard AlexNet (VALID conv1 / pools; conv3-5 maps 3x3, pooled 3x3) so that it takes seconds
    trunk = tr.imagenet_trunk_from(build_alexnet_trunk(S), image_size=side)
    res = tr.layerwise_accuracy(trunk, train, val, tmp_path / "probe", image_size=side, epochs=1, batch_size=6,
                                seed=0, run_eagerly=True)
    acc = res["accuracy"]
    assert res["val_images"] == 12 and res["classes"] == 3 and set(acc) == set(tr.CONV_LAYERS)
    # at 67x67 the maps of conv3-5 are 3x3: pooled sides are capped by the map (documented in pooled_side)
    assert res["features"] == {"conv1": 9600, "conv2": 9216, "conv3": 3456, "conv4": 3456, "conv5": 2304}
    assert all(0.0 <= a <= 100.0 for a in acc.values())
    assert np.mean(list(acc.values())) > 100.0 / 3 + 20, acc                   # solid colours: far above chance
    assert (tmp_path / "probe" / "log.csv").exists()                            # trained by fit_resumable


def test_tables_3_to_5_skip_with_one_line_before_any_training(tmp_path):
    from artifacts_tf import tables
    from common.errors import DataError

    jobs = {f"{j.table}/{j.name}": j for j in tables.JOBS}
    (tmp_path / "data" / "imagenet" / "train" / "n01").mkdir(parents=True)   # ImageNet without images, no VOC
    for key, missing in (("artifacts.table3/voc07_cls", "VOC 2007"), ("artifacts.table4/imagenet", "no images"),
                         ("artifacts.table5/places", "places")):
        with pytest.raises(DataError) as err:
            jobs[key].run("smoke", tmp_path / "runs" / "smoke" / key, tmp_path / "data")
        assert "\n" not in str(err.value) and missing in str(err.value), str(err.value)
    assert not (tmp_path / "runs").exists()                                   # nothing trained, nothing written


def test_protocol_options_are_checked_before_anything_runs():
    from artifacts_tf.config import ArtifactsConfig
    from common.errors import ConfigError

    with pytest.raises(ConfigError, match="--transfer_data_dir"):
        ArtifactsConfig(dataset="fashion_mnist", transfer="layerwise").resolved()
    with pytest.raises(ConfigError, match="--discriminator_dir"):
        ArtifactsConfig(dataset="fashion_mnist", discriminator_dir="/x").resolved()       # with transfer=table1
    cfg = ArtifactsConfig(dataset="fashion_mnist", transfer="voc07", transfer_data_dir="/v", scale="paper").resolved()
    assert (cfg.voc_epochs, cfg.layerwise_epochs, cfg.finetune_folds) == (80, 10, False)


def test_image_folder_pretraining_streams_the_files(tmp_path):
    """ImageNet-scale pre-training (Tables 3-5) never reads the folder whole: with --transfer other than table1
    the unlabelled set is a streamed Source (a seeded --pretrain_limit subset), no labelled image is loaded, the
    game batches come from the files at image_size, and an unreadable file is one DataError naming it."""
    from artifacts_tf import data as adata
    from artifacts_tf.config import ArtifactsConfig
    from artifacts_tf.experiment import game_batches
    from common.errors import DataError
    from common.streaming import Source, data_errors
    from tests.fixtures_formats import write_image_folder

    rng = np.random.default_rng(2)
    for split, n, side in (("train", 6, 40), ("val", 2, 52)):         # stored sizes differ from image_size
        x, y = _colour_images(rng, n, side)
        write_image_folder(tmp_path / split, {f"c{k}": x[y == k] for k in range(3)}, ext=".jpg")
    cfg = ArtifactsConfig(dataset="image_folder", data_dir=str(tmp_path), scale="smoke", image_size=S,
                          batch_size=4, pretrain_limit=10, transfer="none").resolved()
    d = adata.load(cfg)
    assert isinstance(d.unlabelled, Source) and len(d.unlabelled) == 10
    assert len(d.labelled_y) == 0 and d.summary["streamed"] and d.test_x.shape == (6, S, S, 3)
    assert d.test_x.dtype == np.uint8 and sorted(set(d.test_y.tolist())) == [0, 1, 2]
    again = adata.load(cfg)                                             # seeded subset: the same files
    first = [np.asarray(b) for b in game_batches(cfg, d.unlabelled, seed=1, epochs=1)[0](0)]
    second = [np.asarray(b) for b in game_batches(cfg, again.unlabelled, seed=1, epochs=1)[0](0)]
    assert len(first) == 2 and first[0].shape == (4, S, S, 3)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert -1.0 <= min(b.min() for b in first) and max(b.max() for b in first) <= 1.0
    bad = sorted((tmp_path / "train" / "c1").glob("*.jpg"))[0]
    bad.write_bytes(bad.read_bytes()[:40])                               # truncated JPEG
    cfg_all = ArtifactsConfig(dataset="image_folder", data_dir=str(tmp_path), scale="smoke", image_size=S,
                              batch_size=4, pretrain_limit=0, transfer="none").resolved()
    src = adata.load(cfg_all).unlabelled
    with pytest.raises(DataError, match=bad.name):
        with data_errors(src):
            for _ in game_batches(cfg_all, src, seed=1, epochs=1)[0](0):
                pass
