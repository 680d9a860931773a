"""The Table 3 sweep's own logic (issue 11, NRE item 4): which cells it runs, and that a finished cell is not
run again (resume), without training anything."""
from __future__ import annotations

import json

import pytest

from common.errors import ConfigError
from nre_tf import adversarial_sweep as sweep
from nre_tf.config import NREConfig


def _base(tmp_path, **kw):
    # the sweep's values are relative to the base: fix the base (the quick preset of issue 11) here
    kw = {"epochs": 5, "ae_epochs": 5, "substitute_rounds": 4, **kw}
    return NREConfig(dataset="mnist5k", scale="quick", workdir=str(tmp_path), lambdas=(0.6, 0.2, 0.2), **kw).resolved()


def test_cells_change_one_factor_at_a_time(tmp_path):
    base = _base(tmp_path)
    cells = sweep.cells_for(base)
    names = [c.name for c in cells]
    assert len(set(names)) == len(names) and cells[0].factor == "baseline"
    changed = {}
    for c in cells[1:]:
        cfg = c.config(base)
        diff = {k for k in sweep.CELL_FIELDS if getattr(cfg, k) != getattr(base, k)}
        diff |= {k for k, v in (("A", "plain"), ("init", "magnet"), ("substitute", "cnn"), ("nre_seed", None))
                 if getattr(c, k) != v}
        assert len(diff) == 1, (c, diff)  # exactly one factor differs from the base
        changed.setdefault(c.factor, []).append((diff.pop(), c.value))
    # quick: epochs 5 -> 1 and 15, T 3 and 5, MagNet 100 -> 25 epochs, plain AE 5 -> 15, substitute 1 round / mlp
    assert changed["nre_epochs"] == [("epochs", "1"), ("epochs", "15")]
    assert changed["T"] == [("T", "3"), ("T", "5")]
    assert changed["magnet_epochs"] == [("magnet_epochs", "25")] and changed["ae_epochs"] == [("ae_epochs", "15")]
    assert [k for k, _ in changed["representation"]] == ["A", "init"]
    assert changed["substitute"] == [("substitute_rounds", "cnn, 1 round"), ("substitute", "mlp, 4 rounds")]
    assert [c.factor for c in sweep.cells_for(base, ("T",))] == ["T", "T"]
    with pytest.raises(ConfigError, match="unknown sweep factor"):
        sweep.cells_for(base, ("depth",))
    with pytest.raises(ConfigError, match="bad sweep cell"):
        sweep.Cell("T", "3", (("batch_size", 3),))


def test_finished_cells_are_not_run_again_and_tables_are_written(tmp_path):
    base = _base(tmp_path)
    cells = sweep.cells_for(base, ("baseline", "T"))
    row = {"dataset": "mnist5k", "target_accuracy": 0.95, "substitute_accuracy": 0.9, "clean_magnet": 0.95,
           "clean_nre": 0.4, "clean_ae": 0.9, "nre_pixel_mse": 0.003, "collapsed": "nre"}
    row.update({f"{r}_{e}": 0.5 for r in ("none", "magnet", "nre", "ae") for e in (0.01, 0.1, 0.2, 0.3)})
    row.update({"nre_0.2": 0.75, "gap_0.2": 0.25, "gap_0.3": 0.0})
    for c in cells:  # every cell already finished: the sweep must train nothing (no shared networks, no NRE)
        path = tmp_path / "mnist5k" / "cells" / f"{c.name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**row, "factor": c.factor, "value": c.value, "cell": c.name}))
    rows = sweep.run(base, ["mnist5k"], tmp_path, ("baseline", "T"), log=lambda m: None)
    assert [r["factor"] for r in rows] == ["baseline", "T", "T"]
    assert not (tmp_path / "mnist5k" / "target.weights.h5").exists()
    assert not any((tmp_path / "mnist5k").glob("magnet_e*"))
    md = (tmp_path / "sweep.md").read_text()
    assert "| mnist5k | T | 3 (collapsed: nre) | 0.900 | 0.950 / 0.400 |" in md and "| +0.250 |" in md
    csv_lines = (tmp_path / "sweep.csv").read_text().splitlines()
    assert csv_lines[0].startswith("dataset,factor,value,cell,") and len(csv_lines) == 4
    assert ",0.7500," in csv_lines[1]
