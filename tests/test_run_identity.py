"""Run identity (common/run_identity.py): a workdir resumes only the state of its own config and code, --force /
--noresume move old state aside, default workdirs separate every result flag, frozen weights are loaded by hash,
a non-finite loss stops training with one message and keeps the last good checkpoint, and run_all --force
renews each job's workdir (once when jobs share it)."""
import dataclasses
import json
import sys

import numpy as np
import pytest

from common import run_identity as ri
from common.config import RunConfig, write_metrics
from common.errors import ConfigError


@dataclasses.dataclass
class _Cfg(RunConfig):
    method = "toy"
    PRESETS = {"smoke": {"epochs": 1, "batch_size": 4}, "quick": {"epochs": 2, "batch_size": 4},
               "paper": {"epochs": 3, "batch_size": 4}}
    gamma: float = 50.0
    mask: str = "learned"
    figures: bool = True


def _cfg(workdir, **kw):
    return _Cfg(dataset="toyset", scale="smoke", workdir=str(workdir), **kw).resolved()


def test_hash_covers_result_fields_only():
    base = _Cfg(dataset="toyset", scale="smoke").resolved()
    same = [dict(workdir="/elsewhere"), dict(export_dir="/exports"), dict(resume=False), dict(force=True),
            dict(figures=False)]
    for kw in same:
        assert ri.config_hash(dataclasses.replace(base, **kw)) == ri.config_hash(base), kw
    for kw in (dict(seed=5), dict(gamma=1.0), dict(mask="random"), dict(epochs=9), dict(precision="mixed_bfloat16")):
        assert ri.config_hash(dataclasses.replace(base, **kw)) != ri.config_hash(base), kw


def test_default_workdir_separates_every_result_flag():
    # Defect 1: the default workdir ignored --seed and the method flags, so a rerun resumed another run.
    dirs = {_Cfg(dataset="toyset", scale="smoke", **kw).resolved().workdir
            for kw in ({}, {"seed": 5}, {"gamma": 1.0}, {"mask": "random"})}
    assert len(dirs) == 4
    a = _Cfg(dataset="toyset", scale="smoke", normal_class=3).resolved().workdir
    assert a.split("/")[-1].startswith("toy_toyset_class3_smoke_") and len(a.split("_")[-1]) == 8
    assert _Cfg(dataset="toyset", scale="smoke", normal_class=3, figures=False).resolved().workdir == a


def test_workdir_is_resumed_only_by_its_own_config(tmp_path, capsys):
    work = tmp_path / "w"
    cfg = _cfg(work)
    assert ri.prepare_workdir(cfg) is False
    assert not work.exists() or not any(work.iterdir())  # nothing that looks like a run before it saves
    write_metrics({"auroc": 0.9}, work)                     # commits config.json + identity.json first
    ident = json.loads((work / "identity.json").read_text())
    assert ident["config_hash"] == ri.config_hash(cfg) and ident["code"]["sources"]
    assert json.loads((work / "config.json").read_text())["seed"] == 0

    assert ri.prepare_workdir(cfg) is True                              # same config: resume
    assert ri.prepare_workdir(dataclasses.replace(cfg, figures=False)) is True
    with pytest.raises(ConfigError) as e:                               # another config: one clear line
        ri.prepare_workdir(_cfg(work, seed=5, gamma=1.0, mask="random"))
    msg = str(e.value)
    assert "\n" not in msg and "--force" in msg and "--workdir" in msg
    for part in ("seed: 0 -> 5", "gamma: 50.0 -> 1.0", "mask: 'learned' -> 'random'"):
        assert part in msg
    assert json.loads((work / "metrics.json").read_text()) == {"auroc": 0.9}  # untouched

    # --force: the old run is moved aside (nothing deleted) and the new one starts fresh.
    forced = _cfg(work, seed=5, force=True)
    assert ri.prepare_workdir(forced) is False
    stale = [p for p in work.iterdir() if p.name.startswith("stale-")]
    assert len(stale) == 1 and (stale[0] / "metrics.json").exists() and not (work / "metrics.json").exists()
    assert "moved the previous contents" in capsys.readouterr().out
    write_metrics({"auroc": 0.5}, work)
    assert json.loads((work / "identity.json").read_text())["config"]["seed"] == 5
    # --noresume with the same config also starts fresh (ModelSelection state included).
    assert ri.prepare_workdir(dataclasses.replace(forced, force=False, resume=False)) is False
    assert len([p for p in work.iterdir() if p.name.startswith("stale-")]) == 2


def test_other_code_and_unknown_state_are_refused(tmp_path):
    work = tmp_path / "w"
    cfg = _cfg(work)
    ri.prepare_workdir(cfg)
    write_metrics({}, work)
    ident = json.loads((work / "identity.json").read_text())
    ident["code"]["sources"] = "0" * 64
    (work / "identity.json").write_text(json.dumps(ident))
    with pytest.raises(ConfigError, match=r"code: sources 00000000 .*-> [0-9a-f]{8}"):
        ri.prepare_workdir(cfg)
    # A workdir of a run made before run identity existed (config.json + a Keras backup, no identity.json).
    legacy = tmp_path / "legacy"
    (legacy / "backup").mkdir(parents=True)
    (legacy / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="without an identity record.*--force"):
        ri.prepare_workdir(_cfg(legacy))
    assert ri.prepare_workdir(_cfg(legacy, force=True)) is False and not (legacy / "config.json").exists()


def _toy_model(seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.build((None, 3))
    return model


def test_frozen_weights_are_loaded_by_hash(tmp_path):
    run_dir = tmp_path / "stage1"
    ri.prepare_workdir(_cfg(run_dir, seed=2))
    src = _toy_model(1)
    ri.save_frozen_weights(run_dir, "encoder", src)
    assert ri.frozen_weights_id(run_dir, "encoder").count(":") == 1

    dst = _toy_model(2)
    ident = ri.load_frozen_weights(run_dir, dst, "encoder", expected={"method": "toy", "seed": 2})
    assert ident["config"]["seed"] == 2
    assert all(np.array_equal(a, b) for a, b in zip(src.get_weights(), dst.get_weights()))
    with pytest.raises(ConfigError, match="seed: expected 3, the run has 2"):
        ri.load_frozen_weights(run_dir, dst, "encoder", expected={"seed": 3})
    with pytest.raises(ConfigError, match="method: expected 'oled'"):
        ri.load_frozen_weights(run_dir, dst, "encoder", expected={"method": "oled"})
    with pytest.raises(ConfigError, match="no frozen network 'decoder'.*encoder"):
        ri.load_frozen_weights(run_dir, dst, "decoder")
    with pytest.raises(ConfigError, match="not a run directory"):
        ri.load_frozen_weights(tmp_path, dst, "encoder")
    # Another run retrained the file in place: the hash no longer matches what the run recorded.
    _toy_model(7).save_weights(str(run_dir / "encoder.weights.h5"))
    with pytest.raises(ConfigError, match="changed after the run recorded it"):
        ri.load_frozen_weights(run_dir, dst, "encoder")


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    import keras

    from common.training import NonFiniteLoss, epoch_batches, fit_resumable

    # w <- w - lr * 2x(wx - y) with lr * x^2 = 10: the error grows 19x per step and overflows after ~30 steps.
    x = np.ones((16, 1), np.float32)
    y = np.zeros((16, 1), np.float32)

    def linear():
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, kernel_initializer="ones",
                                                                         use_bias=False)])
        model.compile(keras.optimizers.SGD(5.0), "mse")
        return model

    model = linear()
    with pytest.raises(NonFiniteLoss) as e:
        fit_resumable(model, lambda first: epoch_batches((x, y), 4, 0, first, 40), epochs=40, workdir=tmp_path,
                      steps_per_epoch=4, tensorboard=False, verbose=0)
    msg = str(e.value)
    kept = sorted((tmp_path / "checkpoint").glob("epoch-*"))
    assert len(kept) == 1 and "\n" not in msg and "non-finite loss=" in msg and str(kept[0]) in msg
    last_epoch = json.loads((kept[0] / "state.json").read_text())["epoch"]
    assert f"in epoch {last_epoch + 1};" in msg
    assert all(np.isfinite(h["loss"]) for h in json.loads((kept[0] / "state.json").read_text())["history"])
    assert not (tmp_path / "metrics.json").exists()

    # Non-finite from the first epoch inside a run: one line, and nothing that looks like a run is left
    # (config.json / identity.json are written with the first checkpoint, which never came).
    work = tmp_path / "run"
    ri.prepare_workdir(_cfg(work))
    y_bad = np.full((16, 1), np.inf, np.float32)
    with pytest.raises(NonFiniteLoss, match="in epoch 1; no checkpoint was written"):
        fit_resumable(linear(), lambda first: epoch_batches((x, y_bad), 4, 0, first, 2), epochs=2, workdir=work,
                      steps_per_epoch=4, tensorboard=False, verbose=0)
    for name in ("metrics.json", "config.json", "identity.json", "checkpoint"):
        assert not (work / name).exists(), name


def test_resume_restores_rng_state(tmp_path):
    """Dropout draws from a keras SeedGenerator, whose state model.save_weights leaves out: a run resumed after
    epoch 1 must draw the masks of an uninterrupted run (and so end with the same losses)."""
    import keras

    from common.training import epoch_batches, fit_resumable

    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    y = x.sum(axis=1, keepdims=True)

    def fit(work, epochs):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(16), keras.layers.Dropout(0.5, seed=1),
                                  keras.layers.Dense(1)])
        model.compile(keras.optimizers.Adam(0.01), "mse")
        return [h["loss"] for h in fit_resumable(model, lambda first: epoch_batches((x, y), 8, 0, first, epochs),
                                                   epochs=epochs, workdir=work, steps_per_epoch=4,
                                                   tensorboard=False, verbose=0)]

    ref = fit(tmp_path / "ref", 3)
    fit(tmp_path / "cut", 1)
    assert fit(tmp_path / "cut", 3) == ref


FAKE_TABLES = """
from pathlib import Path
from common.registry import Job

def first(scale, workdir, data_dir):
    seen = sorted(p.name for p in workdir.iterdir() if not p.name.startswith("stale-"))
    (workdir / "state.txt").write_text("fresh")
    return {("Inlier", "AUCROC"): float(len(seen))}

def second(scale, workdir, data_dir):
    return {("Outlier", "AUCROC"): 1.0 if (workdir / "state.txt").exists() else 0.0}

JOBS = [Job("oled.table5", "a", [("Inlier", "AUCROC")], first),
        Job("oled.table5", "b", [("Outlier", "AUCROC")], second, workdir_name="oled.table5/a")]
"""


def test_run_all_force_renews_each_workdir_once(tmp_path, monkeypatch):
    from common import run_tables

    name = "fake_identity_pkg_" + str(abs(hash(str(tmp_path))) % 10 ** 8)
    (tmp_path / "pkgs" / name).mkdir(parents=True)
    (tmp_path / "pkgs" / name / "__init__.py").write_text("")
    (tmp_path / "pkgs" / name / "tables.py").write_text(FAKE_TABLES)
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    packages = {"nre": "no_pkg_a", "artifacts": "no_pkg_b", "permutation": "no_pkg_c", "oled": name}
    results = tmp_path / "results"
    try:
        run_tables.run("smoke", only="oled.table5", results_dir=results, packages=packages)
        work = results / "runs" / "smoke" / "oled.table5" / "a"
        (work / "old_checkpoint").write_text("stale weights")
        run_tables.run("smoke", only="oled.table5", results_dir=results, packages=packages, force=True)
        cells = json.loads((results / "cells/smoke/oled.table5/a.json").read_text())["cells"]
        assert cells[0]["value"] == 0.0  # job a started in an empty workdir: the old state was moved aside
        cells = json.loads((results / "cells/smoke/oled.table5/b.json").read_text())["cells"]
        assert cells[0]["value"] == 1.0  # job b shares a's workdir: not moved again, it sees a's new state
        stale = [p for p in work.iterdir() if p.name.startswith("stale-")]
        assert len(stale) == 1 and (stale[0] / "old_checkpoint").exists()
    finally:
        for mod in [m for m in sys.modules if m.startswith(name)]:
            del sys.modules[mod]
