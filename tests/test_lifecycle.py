"""The one run lifecycle (common/lifecycle.py), flags generated from a config dataclass (common/flags.py), config
checks done once (common/config.py) and the run identity's code hash over what a run imports
(common/run_identity.py)."""
import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import ClassVar

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from common.config import RunConfig, option
from common.errors import ConfigError, ReproError

REPO = Path(__file__).resolve().parent.parent


@dataclasses.dataclass
class ToyConfig(RunConfig):
    method: ClassVar[str] = "toy"
    CODE_ROOTS: ClassVar[tuple] = ("common.lifecycle",)
    PRESETS: ClassVar[dict] = {"smoke": dict(epochs=2, batch_size=8), "quick": {}, "paper": {}}
    width: int = option(4, "Hidden units.", minimum=1)
    mode: str = option("a", "A mode.", choices=("a", "b"))


CALLS = []


def toy_body(run):
    """A tiny regression model: build in the scope, train, export with a checked signature."""
    import keras
    import tensorflow as tf

    from common.export import Signature

    CALLS.append(run.config.seed)
    cfg = run.config
    rng = np.random.default_rng(cfg.seed)
    x = rng.normal(size=(20, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    with run.scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(cfg.width), keras.layers.Dense(1)])
        model.compile("adam", "mse", jit_compile=False)
    run.record_model(model)
    bs = run.batch_size_for(len(x))
    with run.timer("train"):
        hist = model.fit(x, y, batch_size=bs, epochs=cfg.epochs, verbose=0)
    if cfg.export_dir:
        def serve(images):
            return {"anomaly_score": tf.reshape(model(images), [-1])}

        run.export("toy", model, {"serving_default": Signature(serve, (3,), "images")},
                   samples={"serving_default": x[:5]}, preprocessing={"input_range": [0, 1], "kind": "images"})
    return {"loss": float(hist.history["loss"][-1]), "_in_memory": object()}


def test_config_checks_fields_once():
    with pytest.raises(ConfigError, match=r"--seed must be >= 0, got -1"):
        ToyConfig(seed=-1).resolved()
    with pytest.raises(ConfigError, match=r"--seed must be <= 4294967295"):
        ToyConfig(seed=2**32).resolved()
    with pytest.raises(ConfigError, match=r"--mode must be one of a, b, got 'c'"):
        ToyConfig(mode="c").resolved()
    with pytest.raises(ConfigError, match=r"--width must be >= 1, got 0"):
        ToyConfig(width=0).resolved()
    with pytest.raises(ConfigError, match=r"--epochs must be > 0, got 0"):
        ToyConfig(epochs=0).resolved()


def test_strategy_refused_where_unsupported_or_without_tf_config(monkeypatch):
    @dataclasses.dataclass
    class OneDevice(ToyConfig):
        STRATEGIES: ClassVar[tuple] = ("default",)

    with pytest.raises(ConfigError, match=r"--strategy=mirrored is not supported by toy"):
        OneDevice(strategy="mirrored").resolved()
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="needs the TF_CONFIG environment variable"):
        ToyConfig(strategy="multi_worker").resolved()


def test_code_hash_covers_what_a_run_imports(tmp_path, monkeypatch):
    """Editing a module the run imports changes the code hash; editing one it does not (a report) does not."""
    from common import run_identity as ri

    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "lib.py").write_text("def f():\n    from pkg import helper\n    return helper.g()\n")
    (pkg / "helper.py").write_text("def g():\n    return 1\n")
    (pkg / "report.py").write_text("X = 1\n")
    monkeypatch.setattr(ri, "REPO_ROOT", tmp_path)
    assert sorted(ri.code_modules(["pkg.lib"])) == ["pkg", "pkg.helper", "pkg.lib"]
    before = ri.source_hash(["pkg.lib"])
    (pkg / "report.py").write_text("X = 2\n")
    assert ri.source_hash(["pkg.lib"]) == before
    (pkg / "helper.py").write_text("def g():\n    return 2\n")
    assert ri.source_hash(["pkg.lib"]) != before


def test_real_packages_do_not_hash_the_report():
    from common.run_identity import code_modules

    mods = code_modules(["common.lifecycle", "common.training"])
    assert "common.run_identity" in mods and "common.config" in mods
    assert "common.report" not in mods and "common.run_tables" not in mods


def test_lifecycle_reuses_finished_runs_and_exports_once(tmp_path):
    from common.lifecycle import run_experiment

    CALLS.clear()
    cfg = ToyConfig(scale="smoke", workdir=str(tmp_path / "w"))
    m = run_experiment(cfg, toy_body)
    assert "_in_memory" in m  # returned, not written
    stored = json.loads((tmp_path / "w" / "metrics.json").read_text())
    assert "_in_memory" not in stored
    assert stored["replicas"] == 1 and stored["strategy"] == "default" and stored["precision"] == "float32"
    assert stored["jit_compile"] is False and stored["batch_size_effective"] == 8 and stored["train_seconds"] > 0
    before = (tmp_path / "w" / "metrics.json").read_bytes()

    # The same config and code again: the stored metrics, nothing trained, nothing rewritten.
    again = run_experiment(cfg, toy_body)
    assert CALLS == [0] and again == stored
    assert (tmp_path / "w" / "metrics.json").read_bytes() == before

    # A new --export_dir on the finished run: the body runs again and only the export is added.
    exp = tmp_path / "exports"
    m3 = run_experiment(dataclasses.replace(cfg, export_dir=str(exp)), toy_body)
    assert len(CALLS) == 2
    assert m3["loss"] == stored["loss"] and m3["train_seconds"] == stored["train_seconds"]
    entry = m3["export"]["toy"]
    assert entry["path"] == str(exp / "toy" / "1") and not entry["reused"]
    meta = json.loads((exp / "toy" / "1" / "assets.extra" / "export.json").read_text())
    assert meta["signatures"]["serving_default"]["input_range"] == [0, 1]
    assert meta["weights_digest"] == entry["weights_digest"]

    # The same --export_dir again: reused, no second version with the same weights.
    run_experiment(dataclasses.replace(cfg, export_dir=str(exp)), toy_body)
    assert sorted(p.name for p in (exp / "toy").iterdir() if not p.name.startswith(".")) == ["1"]


def test_batch_larger_than_the_data_is_recorded(tmp_path):
    from common.lifecycle import run_experiment

    m = run_experiment(ToyConfig(scale="smoke", batch_size=64, workdir=str(tmp_path / "w")), toy_body)
    assert m["batch_size_effective"] == 20


def test_a_body_that_ignores_the_strategy_is_an_error(tmp_path):
    from common.lifecycle import run_experiment

    def no_scope(run):
        return {"x": 1}

    with pytest.raises(ReproError, match="--strategy=mirrored was accepted but the run built nothing under it"):
        run_experiment(ToyConfig(scale="smoke", strategy="mirrored", workdir=str(tmp_path / "w")), no_scope)
    assert not (tmp_path / "w" / "metrics.json").exists()


ENTRY = textwrap.dedent('''
    """Toy entry point."""
    import dataclasses
    from typing import ClassVar

    from common import flags as cflags
    from common.config import RunConfig, option


    @dataclasses.dataclass
    class Cfg(RunConfig):
        method: ClassVar[str] = "toy"
        lambdas: tuple = option((0.5, 0.5), "Two weights.", parse=lambda s: tuple(float(v) for v in s.split(",")))
        mode: str = option("a", "A mode of the toy.", choices=("a", "b"))
        width: int | None = option(None, "Hidden units (default: 4).", minimum=1)
        internal: int = option(3, no_flag=True)


    cflags.define_config_flags(Cfg)


    def main(argv):
        cfg = cflags.config_from_flags(Cfg)
        print("CONFIG", cfg.lambdas, cfg.mode, cfg.width, cfg.seed, cfg.internal)


    if __name__ == "__main__":
        cflags.run(main)
''')


def _entry(tmp_path, *args):
    path = tmp_path / "toy_entry.py"
    path.write_text(ENTRY)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(path), f"--workdir={tmp_path / 'w'}", *args], capture_output=True,
                          text=True, env=env, cwd=str(tmp_path), timeout=120)


def test_flags_are_generated_from_the_config(tmp_path):
    out = _entry(tmp_path, "--lambdas=0.2,0.8", "--mode=b", "--width=7", "--seed=5")
    assert out.returncode == 0, out.stderr
    assert "CONFIG (0.2, 0.8) b 7 5 3" in out.stdout
    helped = _entry(tmp_path, "--help")
    assert helped.returncode == 0
    for text in ("--lambdas", "Two weights.", "--mode: <a|b>", "--width", "--seed", "--strategy"):
        assert text in helped.stdout, text
    assert "--internal" not in helped.stdout


@pytest.mark.parametrize("args, message", [
    (["--seed=-1"], "error: --seed must be >= 0, got -1"),
    (["--seed=4294967296"], "error: --seed must be <= 4294967295"),
    (["--mode=c"], "error: flag --mode=c: value should be one of <a|b>"),
    (["--width=0"], "error: --width must be >= 1, got 0"),
    (["--lambdas=x,y"], "error: --lambdas='x,y' cannot be read"),
])
def test_bad_flag_values_are_one_line(tmp_path, args, message):
    out = _entry(tmp_path, *args)
    assert out.returncode == 2
    lines = [l for l in out.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith(message), out.stderr
    assert not (tmp_path / "w").exists()
