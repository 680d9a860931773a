"""Speed-related properties that a benchmark alone would not guard: ``--precision=auto`` picks bf16 only with
native bf16 units and records the choice; OLED's MM-frozen step has no backward pass through the mask
generator; BN recalibration sets the moving statistics to the data's (public Keras APIs only)."""
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from common import config as cconfig

AVX2_ONLY = "processor\t: 0\nflags\t\t: fpu sse sse2 avx avx2 fma\n"
AMX = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"
AVX512_BF16 = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n"


@pytest.mark.parametrize("cpuinfo,gpu,expected", [(AVX2_ONLY, False, "float32"), (AMX, False, "mixed_bfloat16"),
                                                  (AVX512_BF16, False, "mixed_bfloat16"),
                                                  (AVX2_ONLY, True, "mixed_bfloat16"), ("", False, "float32")])
def test_precision_auto_resolves_from_the_cpu_flags(monkeypatch, tmp_path, cpuinfo, gpu, expected):
    from nre_tf.config import NREConfig
    from oled_tf.config import OLEDConfig

    monkeypatch.setattr(cconfig, "read_cpuinfo", lambda: cpuinfo)
    monkeypatch.setattr(cconfig, "gpu_has_bf16", lambda: gpu)
    for cls, dataset in ((OLEDConfig, "mnist5k"), (NREConfig, "mnist5k")):
        cfg = cls(dataset=dataset, precision="auto", scale="smoke").resolved()
        assert cfg.precision == expected
        assert cfg.resolved().precision == expected       # resolving again keeps it
    explicit = OLEDConfig(dataset="mnist5k", precision="float32", scale="smoke").resolved()
    assert explicit.precision == "float32"                 # only "auto" is resolved


def test_precision_auto_lands_in_config_json_as_float32_without_bf16_units(monkeypatch, tmp_path):
    from common.run_identity import commit
    from common.training import start_run
    from oled_tf.config import OLEDConfig

    monkeypatch.setattr(cconfig, "read_cpuinfo", lambda: AVX2_ONLY)
    monkeypatch.setattr(cconfig, "gpu_has_bf16", lambda: False)
    try:
        cfg, workdir = start_run(OLEDConfig(dataset="mnist5k", precision="auto", scale="smoke",
                                            workdir=str(tmp_path / "run")))
        commit()  # what the run's first checkpoint does
        assert json.loads((workdir / "config.json").read_text())["precision"] == "float32"
        assert json.loads((workdir / "identity.json").read_text())["config"]["precision"] == "float32"
        assert keras.config.dtype_policy().name == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_bf16_cpu_flags_reads_only_the_flags_lines(monkeypatch):
    monkeypatch.setattr(cconfig, "read_cpuinfo", lambda: "model name\t: amx_bf16 lookalike\n" + AVX2_ONLY)
    assert cconfig.bf16_cpu_flags() == []
    monkeypatch.setattr(cconfig, "read_cpuinfo", lambda: AMX)
    assert cconfig.bf16_cpu_flags() == ["amx_bf16", "avx512_bf16"]


def _oled():
    from oled_tf.model import OLED

    model = OLED("mnist", seed=3)
    model(keras.ops.zeros((2, 28, 28, 1)))
    model.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    return model


def test_mm_frozen_step_has_no_backward_pass_through_the_mask_generator():
    from oled_tf.model import MASK_PLAYER

    model = _oled()
    model.set_frozen([MASK_PLAYER])
    graph = tf.function(model.train_step).get_concrete_function(tf.TensorSpec((2, 28, 28, 1), tf.float32)).graph
    backward = [op.name for op in graph.get_operations() if op.name.startswith("gradient_tape/")]
    assert any("reconstructor" in n for n in backward)                 # R's backward pass is there
    assert not [n for n in backward if "mask_generator" in n]          # MG's is not (not even R's tape's)


def test_recalibrate_batch_norm_sets_moving_statistics_to_the_data_and_keeps_momentum():
    model = _oled()
    x = np.random.default_rng(0).uniform(-1, 1, (16, 28, 28, 1)).astype("float32")
    encoder = model.reconstructor.get_layer("encoder_mnist")
    bn = encoder.get_layer("enc_conv1_bn")
    conv_out = keras.Model(encoder.input, encoder.get_layer("enc_conv1").output)
    momenta = [bn.momentum, model.mask_generator.get_layer("mg_conv2_bn").momentum]
    model.recalibrate_batch_norm(x)
    mask, _ = model.make_mask(tf.constant(x), training=False)
    # R's BN sees the clean and the masked batch together, as in training (mask computed after MG's BN was
    # recalibrated, i.e. with the statistics the recalibration pass itself used).
    h = conv_out(np.concatenate([x, x * mask.numpy()])).numpy()
    np.testing.assert_allclose(bn.moving_mean.numpy(), h.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), h.var(axis=(0, 1, 2)), rtol=1e-3, atol=1e-5)
    assert [bn.momentum, model.mask_generator.get_layer("mg_conv2_bn").momentum] == momenta
