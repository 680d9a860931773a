"""OLED's networks at the paper's sizes (paper scale is never run here): MNIST 28x28x1, CIFAR-10 32x32x3 and UCSD
Ped2 30x30x1 patches of whole 240x360 frames, each built from the --scale=paper config as ``oled_tf.experiment``
builds it (the networks do not depend on the scale; XLA off, as --jit_compile=auto resolves on a GPU with the
default op determinism; the XLA step is tested in test_oled_speed.py), trained for one step with MM updated (Keras fit, as the run does) and exported
through the lifecycle's export with the run's signatures, on a batch of two; every signature of the export is
reloaded and compared with the in-process model (the fresh-process check of the same export code runs in
test_oled_train.py and test_oled_model.py). A user with a GPU must not meet a shape or dtype error after hours
of data preparation. The authors' networks (--code_defaults) take the same shapes; their UCSD 3-channel step
runs in test_oled_fidelity.py."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf

UCSD_PED2_FRAME = (240, 360)  # UCSD Ped2 frames (gray)


@pytest.mark.parametrize("dataset", ["mnist", "cifar10", "ucsd"])
def test_paper_size_network_trains_one_step_and_exports(dataset, tmp_path):
    import keras

    from common.lifecycle import Run
    from oled_tf.config import OLEDConfig, input_kind
    from oled_tf.experiment import build_model, export_signatures, model_name
    from oled_tf.model import SCORE_NAMES, MaskUpdateSchedule

    cfg = OLEDConfig(dataset=dataset, scale="paper", workdir=str(tmp_path / "w"), jit_compile=False,
                     export_dir=str(tmp_path / "export")).resolved()
    assert cfg.batch_size >= 256 and cfg.epochs == 300  # the paper / code sizes; only the batch below is cut
    kind = input_kind(dataset)
    keras.utils.set_random_seed(0)
    model = build_model(cfg, kind)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (2, *model.input_shape_)).astype("float32")
    before = [v.numpy() for v in model.mask_generator.trainable_variables]
    hist = model.fit(tf.data.Dataset.from_tensors(x).repeat(), epochs=1, steps_per_epoch=1, verbose=0,
                     callbacks=[MaskUpdateSchedule(cfg.mask_update_every)])
    assert all(np.isfinite(v[-1]) for v in hist.history.values()), hist.history
    assert any(not np.array_equal(v.numpy(), w) for v, w in zip(model.mask_generator.trainable_variables, before))
    model.set_score_range({k: np.array([0.0, 1.0]) for k in SCORE_NAMES})

    signatures, preprocessing = export_signatures(model, cfg, ucsd=kind == "ucsd")
    inputs = {"serving_default": x}
    if kind == "ucsd":
        inputs = {"patches": x, "serving_default": rng.uniform(-1, 1, (2, *UCSD_PED2_FRAME, 1)).astype("float32")}
    run = Run(cfg, tmp_path / "w", tf.distribute.get_strategy())
    entry = run.export(model_name(cfg), model, signatures, samples={}, preprocessing=preprocessing)
    loaded = tf.saved_model.load(entry["path"])
    assert sorted(loaded.signatures) == sorted(signatures) == entry["signatures"]
    for name, batch in inputs.items():
        sig = signatures[name]
        got = loaded.signatures[name](**{sig.input_name: tf.constant(batch)})
        want = sig.fn(tf.constant(batch))
        assert set(got) == set(want)
        for k in want:
            np.testing.assert_allclose(got[k].numpy(), want[k].numpy(), atol=1e-4, rtol=1e-4, err_msg=f"{name} {k}")
        assert got["anomaly_score"].shape == (2,)
    if kind == "ucsd":  # 8 x 12 patches of 30x30 per Ped2 frame
        assert got["patch_anomaly_score"].shape == (2, 96)
