"""Speed-related properties that a benchmark alone would not guard: ``--precision=auto`` picks bf16 only with
native bf16 units and records the choice; OLED's MM-frozen step has no backward pass through the mask
generator; BN recalibration sets the moving statistics to the data's (public Keras APIs only);
``--jit_compile=auto`` picks XLA where it was measured faster."""
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


def test_jit_compile_auto_is_decided_by_the_timed_probe_on_a_cpu(monkeypatch, tmp_path):
    """``--jit_compile=auto`` without a GPU: for OLED's MNIST networks at quick / paper scale a timed probe of
    both step functions decides (``common.jit_probe``; here its timer is faked both ways), not at smoke scale
    and not for the CIFAR-10 networks (XLA's CPU convolutions measured slower); an explicit value always wins,
    even under op determinism (Keras would refuse, see OLED.jit_compile); with a GPU, Keras' rule (off under op
    determinism)."""
    from common import jit_probe, training
    from oled_tf.config import OLEDConfig
    from oled_tf.experiment import build_model, jit_choice

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path))
    quick = OLEDConfig(dataset="mnist5k", scale="quick").resolved()
    assert quick.jit_compile == "auto" and quick.deterministic
    for faster, want in (("xla", True), ("plain", False)):
        # jit_choice's candidates are timed in the order xla, plain: a fake timer returning these seconds
        seconds = iter((1.0, 2.0) if faster == "xla" else (2.0, 1.0))
        monkeypatch.setattr(jit_probe, "time_candidate", lambda make, calls=3, warmup=1, it=seconds: next(it))
        monkeypatch.setattr(jit_probe, "cache_path", lambda f=faster: tmp_path / f"{f}.json")
        jit, probe = jit_choice(quick, "mnist", 64)
        assert jit is want and set(probe["seconds"]) == {"xla", "plain"}
        assert build_model(quick, "mnist", jit=jit).jit_compile is want
    assert jit_choice(quick, "cifar", 64) == (None, None)
    assert build_model(quick, "cifar").jit_compile is False
    smoke = OLEDConfig(dataset="mnist5k", scale="smoke").resolved()
    assert jit_choice(smoke, "mnist", 16) == (None, None) and build_model(smoke, "mnist").jit_compile is False
    forced = OLEDConfig(dataset="mnist5k", scale="smoke", jit_compile=True).resolved()
    assert jit_choice(forced, "mnist", 16) == (None, None) and build_model(forced, "mnist").jit_compile is True
    off = OLEDConfig(dataset="mnist5k", scale="quick", jit_compile=False).resolved()
    assert build_model(off, "mnist").jit_compile is False
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["GPU:0"])
    assert training.resolve_jit_compile("auto", deterministic=True, on_cpu=True) is False
    assert training.resolve_jit_compile("auto", deterministic=False, on_cpu=False) is True


def test_xla_train_step_is_deterministic_and_agrees_with_the_plain_step():
    """The claim OLED.jit_compile rests on: on a CPU the XLA step gives identical losses and weights when run
    again from the same state (weights, BN statistics and both Adams restored), and it computes what the plain
    step does (first-step losses to float32 rounding; later steps drift apart only by rounding, which Adam's
    normalised first updates amplify, so weights are not compared across the two)."""
    from oled_tf.model import OLED

    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (8, 28, 28, 1)).astype("float32"))

    def build(jit):
        keras.utils.set_random_seed(5)  # not every initialiser takes OLED's seed
        model = OLED("mnist", gamma=12.5, seed=5)
        model(x[:2])
        model.compile(keras.optimizers.Adam(5e-4, 0.5, 0.9), keras.optimizers.Adam(5e-4, 0.5, 0.9), jit_compile=jit)
        assert model.jit_compile is jit
        return model, tf.function(model.train_step, jit_compile=jit)

    model, step = build(True)
    state = list({id(v): v for v in [*model.variables, *model.r_optimizer.variables,
                                     *model.m_optimizer.variables]}.values())
    start = [v.numpy() for v in state]
    runs = []
    for _ in range(2):
        for v, value in zip(state, start):
            v.assign(value)
        model.reset_metrics()  # the step returns running means over the epoch
        losses = [{k: float(v) for k, v in step(x).items()} for _ in range(2)]
        runs.append((losses, [v.numpy() for v in state]))
    assert runs[0][0] == runs[1][0]
    assert all(np.array_equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))
    assert any(not np.array_equal(a, b) for a, b in zip(start, runs[0][1]))  # the steps did train
    plain, plain_step = build(False)
    first = {k: float(v) for k, v in plain_step(x).items()}
    for k in ("l_rec", "l_mask", "l_cont", "r_loss", "mm_objective"):
        assert runs[0][0][0][k] == pytest.approx(first[k], rel=1e-4)
