"""The shared benchmark helpers (benchmarks/timing.py, benchmarks/flops.py): the MAC counter against hand-computed
counts, the timing statistics on a fake clock (no real time is measured), the peak probe's result structure on
a tiny size, the load warning and the JSON report. Speeds are never asserted."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import flops, timing  # noqa: E402


# ------------------------------------------------------------------------------------------------- MAC counter
def tiny_model():
    """Input 8x8x3 -> Conv2D(4, 3x3 valid) -> DepthwiseConv2D(3x3 same, x2) -> Conv2DTranspose(2, 2x2, stride 2)
    -> Flatten -> Dense(5), with the hand count of MACs per example:

    * conv:      output 6x6 = 36 positions x kernel 3*3*3*4 = 108    -> 3888
    * depthwise: output 6x6 = 36 positions x kernel 3*3*4*2 = 72     -> 2592
    * transpose: input 6x6 = 36 positions x kernel 2*2*2*8 = 64      -> 2304 (output 12x12x2)
    * dense:     12*12*2 = 288 inputs x 5 units                      -> 1440
    """
    L = keras.layers
    x_in = keras.Input((8, 8, 3))
    x = L.Conv2D(4, 3, name="conv")(x_in)
    x = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="depthwise")(x)
    x = L.Conv2DTranspose(2, 2, strides=2, name="transpose")(x)
    x = L.BatchNormalization(name="bn")(x)  # not counted
    out = L.Dense(5, name="dense")(L.Flatten()(x))
    return keras.Model(x_in, out)


HAND = {"conv": 3888, "depthwise": 2592, "transpose": 2304, "dense": 1440}


def test_count_macs_built_shapes_matches_hand_count():
    r = flops.count_macs(tiny_model())
    assert r["method"] == "built shapes"
    assert {row["name"]: row["macs"] for row in r["layers"]} == HAND
    assert r["macs"] == sum(HAND.values()) == 10224


def test_count_macs_forward_pass_counts_batch_and_every_call():
    model = tiny_model()
    x = np.zeros((3, 8, 8, 3), np.float32)
    r = flops.count_macs(model, lambda: model(x))
    assert r["method"] == "forward pass"
    assert r["macs"] == 3 * 10224
    twice = flops.count_macs(model, lambda: (model(x), model(x[:1])), groups={"conv": model.get_layer("conv")})
    assert twice["macs"] == 4 * 10224
    assert twice["groups"] == {"conv": 4 * 3888}
    assert {row["name"]: row["calls"] for row in twice["layers"]}["dense"] == 2
    for layer in model.layers:  # the hooks are gone again
        assert "call" not in vars(layer)
    assert flops.count_macs(model, lambda: model(x))["macs"] == 3 * 10224


def test_layer_macs_conv3d_grouped_separable():
    L = keras.layers
    conv3d = L.Conv3D(2, 3)
    conv3d.build((None, 5, 5, 5, 1))
    assert flops.layer_macs(conv3d, (1, 5, 5, 5, 1), (1, 3, 3, 3, 2)) == 27 * (27 * 1 * 2)
    grouped = L.Conv2D(6, 3, groups=2)
    grouped.build((None, 8, 8, 4))
    assert flops.layer_macs(grouped, (1, 8, 8, 4), (1, 6, 6, 6)) == 36 * (3 * 3 * 2 * 6)
    sep = L.SeparableConv2D(6, 3)
    sep.build((None, 8, 8, 4))
    assert flops.layer_macs(sep, (1, 8, 8, 4), (1, 6, 6, 6)) == 36 * (3 * 3 * 4 + 4 * 6)
    assert flops.layer_macs(L.ReLU(), (1, 4), (1, 4)) is None


def test_flop_formulas():
    assert flops.forward_flops(10) == 20
    assert flops.train_step_flops(10) == 60                 # 3 x the forward
    assert flops.train_step_flops(10, trained_macs=4) == 36  # forward 20 + backward 4 * 4
    assert flops.brute_force_flops(n=100, n_queries=10, dim=8) == 4 * 100 * 10 * 8
    assert flops.cluster_lookup_flops([3, 5], dim=2) == 2 * 2 * (9 + 25)
    assert flops.cluster_lookup_flops([3, 5], dim=2, n_queries_assigned=7) == 2 * 2 * 34 + 2 * 2 * 2 * 7
    # seeding 2*d*n_pp*(1 + trials*(k-1)) with n_pp = min(m, 50 k), trials = 2 + int(log k); Lloyd + final assign
    assert flops.kmeans_fit_flops(n=1000, dim=4, k=2, fit_sample=500, n_iter=3) == \
        2 * 4 * 100 * (1 + 2 * 1) + 2 * 4 * 2 * (500 * 3 + 1000)


# ------------------------------------------------------------------------------------------- timing statistics
class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_time_call_statistics_on_a_fake_clock():
    wall, cpu = FakeClock(), FakeClock()
    durations = iter([5.0, 1.0, 3.0, 2.0, 2.0, 4.0, 6.0])  # warm-up, then 3 rounds of 2 calls
    fetched = []

    def fn():
        d = next(durations)
        wall.t += d
        cpu.t += d / 2
        return d

    m = timing.time_call(fn, warmup=1, rounds=3, calls=2, fetch=fetched.append, wall_clock=wall, cpu_clock=cpu)
    assert m.warmup_wall == [5.0] and m.warmup_cpu == [2.5]
    assert m.wall == [2.0, 2.0, 5.0] and m.cpu == [1.0, 1.0, 2.5]
    assert m.rounds == 3 and m.calls == 2 and m.output == 6.0
    assert fetched == [5.0, 3.0, 2.0, 6.0]  # the last output of the warm-up call and of every round
    assert m.median() == 2.0 and m.best("cpu") == 1.0
    s = m.to_dict()["seconds_per_call"]["wall"]
    assert s == {"n": 3, "median": 2.0, "min": 2.0, "max": 5.0, "mean": 3.0, "stdev": pytest.approx(3 ** 0.5),
                 "spread": 1.5}
    assert timing.summarise([4.0]) == {"n": 1, "median": 4.0, "min": 4.0, "max": 4.0, "mean": 4.0, "stdev": 0.0,
                                       "spread": 0.0}


def test_time_rounds_interleaves_rotates_and_makes_fresh_callables():
    order, made = [], []
    clock = FakeClock()
    variants = {k: (lambda k=k: order.append(k)) for k in "abc"}
    timing.time_rounds(variants, rounds=3, warmup=1, wall_clock=clock, cpu_clock=clock)
    assert "".join(order) == "abc" + "abc" + "bca" + "cab"
    order.clear()
    timing.time_rounds(variants, rounds=2, warmup=0, rotate=False, wall_clock=clock, cpu_clock=clock)
    assert "".join(order) == "abcabc"

    def factory():
        made.append(1)
        return lambda: len(made)

    m = timing.time_rounds({"x": factory}, rounds=2, warmup=1, fresh=True, wall_clock=clock, cpu_clock=clock)["x"]
    assert len(made) == 3 and m.output == 3
    with pytest.raises(ValueError):
        timing.time_call(lambda: None, rounds=0)


def test_fetch_waits_for_every_tensor():
    seen = []

    class T:
        def numpy(self):
            seen.append(self)

    t = T()
    assert timing.fetch({"a": t, "b": [t, (t, 1)]})["a"] is t
    assert len(seen) == 3


def test_load_warning():
    assert timing.load_warning(0.9, 2) is None
    assert "unreliable" in timing.load_warning(1.1, 2)
    assert len(timing.load_average()) == 3


# ---------------------------------------------------------------------------------------------------- peak probe
def test_peak_probe_structure_tiny(monkeypatch):
    import common.config

    monkeypatch.setattr(common.config, "native_bf16", lambda: False)
    r = timing.peak_probe({"matmul": 8, "conv2d": (1, 4, 4, 2, 3, 2)}, rounds=1, warmup=0)
    assert r["sizes"] == {"matmul": [8, 8, 8], "conv2d": {"input": [1, 4, 4, 2], "kernel": [3, 3, 2, 2]}}
    assert "skipped" in r["bfloat16"] and set(r["peak_gflops"]) == {"float32"}
    fp32 = r["float32"]
    assert fp32["matmul"]["flops"] == 2 * 8 ** 3
    assert fp32["conv2d"]["flops"] == 2 * (1 * 4 * 4) * (3 * 3 * 2) * 2
    for probe in fp32.values():
        assert probe["seconds"] > 0 and probe["gflops"] > 0 and probe["timing"]["rounds"] == 1
    assert r["peak_gflops"]["float32"] == max(fp32["matmul"]["gflops"], fp32["conv2d"]["gflops"])


# -------------------------------------------------------------------------------------------------------- report
def test_report_rows_fraction_of_the_right_peak_and_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    report = timing.Report("bench_test", {"out": str(out), "peak_probe": "off"})
    assert report.peak is None
    report.peak = {"peak_gflops": {"float32": 10.0, "bfloat16": 40.0}}  # a made-up peak
    m = timing.Measurement(calls=1, wall=[2.0, 1.0, 3.0], cpu=[4.0, 4.0, 4.0])
    fp32 = report.add("step", m, precision="float32", items=8, unit="img", flops=4e9)
    bf16 = report.add("step", m, precision="mixed_bfloat16", items=8, unit="img", flops=4e9)
    best = report.add("step", m, precision="float32", items=8, flops=4e9, statistic="best")
    none = report.add("io", m, precision=None, items=8)
    assert fp32["items_per_second"] == 4.0 and fp32["items_per_cpu_second"] == 2.0 and fp32["gflops"] == 2.0
    assert fp32["fraction_of_peak"] == pytest.approx(0.2) and bf16["fraction_of_peak"] == pytest.approx(0.05)
    assert best["gflops"] == 4.0
    assert none["gflops"] is None and none["fraction_of_peak"] is None
    report.data["extra"] = {"ratio": 1.5}
    assert report.finish() == out
    d = json.loads(out.read_text())
    assert d["benchmark"] == "bench_test" and len(d["rows"]) == 4 and d["data"] == {"extra": {"ratio": 1.5}}
    assert set(d["machine"]) >= {"cpu_model", "cores", "bf16_cpu_flags", "native_bf16"}
    assert len(d["load_average"]["before"]) == 3 and len(d["load_average"]["after"]) == 3
    printed = capsys.readouterr().out
    assert "% peak" in printed and str(out) in printed
