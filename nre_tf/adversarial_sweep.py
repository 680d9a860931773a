"""What NRE's Table 3 result depends on: a one-factor-at-a-time sweep around the Table 3 defaults (issue 11, NRE
item 4). Library code (no flags); the entry point is ``python -m nre_tf.table3_sweep``.

The paper reports NRE_{0.6,0.2,0.2} far ahead of MagNet after black-box FGSM (0.849 vs 0.614 at eps 0.2, Table 3);
our quick runs put the two level. Each *cell* of the sweep is the Table 3 protocol of :mod:`nre_tf.adversarial`
(the same functions: target, MagNet reformer, plain AE, NRE, substitute, FGSM, refinement) with ONE factor changed
from the base configuration:

* ``nre_epochs``: the number of Eq. 5 epochs of NRE (``epochs``);
* ``T``: near / far samples per training sample (Eq. 5);
* ``lambdas``: (1, 0, 0) (Eq. 5 without its neighbour terms: a reconstruction in R_A's space only) and a
  relation-heavy triplet;
* ``representation``: which representation is refined, i.e. the space R_A of Eq. 5 (``A``: the plain conv AE's
  FC latent, the default, or MagNet's own encoder) and which trained auto-encoder E_phi + D start from and
  refine (``init``: MagNet's reformer, the default, or the plain conv AE, which then refines with its own
  latent as R_A);
* ``ae_epochs``: training length of the plain AE that defines R_A;
* ``magnet_epochs``: training length of MagNet's reformer, which is also NRE's starting point;
* ``substitute``: the substitute's accuracy (fewer Jacobian-augmentation rounds; cleverhans' MLP);
* ``nre_seed``: the base cell with another seed for NRE's training only (data split, target, MagNet, A and the
  substitute unchanged): how much one seed moves NRE, to read the other rows against.

Shared networks are trained once per dataset and reused by every cell that needs them (MagNet's reformer per
``magnet_epochs``, the plain AE per ``ae_epochs``, the target, one substitute per kind and number of rounds),
each from the run's seed so that the order of the cells does not change them; their checkpoints / weights live
in ``<workdir>/<dataset>/`` and a killed sweep resumes: every finished cell is a JSON file
``<workdir>/<dataset>/cells/<cell>.json`` and is not run again, unfinished trainings resume from their checkpoints
(``common.training.fit_resumable``). After every cell the sweep rewrites ``<workdir>/sweep.csv`` (every number)
and ``<workdir>/sweep.md`` (the eps = 0.2 / 0.3 summary), atomically.

A cell whose NRE or MagNet refinement keeps less than ``adversarial.MIN_CLEAN_FRACTION`` of the target's clean
accuracy is kept (a sweep is about what breaks it) and marked ``collapsed`` in both files.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from common.errors import ConfigError
from nre_tf import adversarial as t3

FACTORS = ("baseline", "nre_epochs", "T", "lambdas", "representation", "ae_epochs", "magnet_epochs", "substitute",
           "nre_seed")
# Fields of NREConfig that a cell may override (the others would change the data or the protocol).
CELL_FIELDS = ("epochs", "T", "lambdas", "ae_epochs", "magnet_epochs", "substitute_rounds")
A_CHOICES = ("plain", "magnet")  # R_A: the plain conv AE's FC latent (Table 3 default) or MagNet's encoder
INIT_CHOICES = ("magnet", "plain")  # E_phi + D start from (and refine) MagNet's reformer or the plain conv AE
# Reformers of every cell: MagNet's AE, NRE, and (for reference) the plain conv AE that defines R_A.
REFORMERS = ("magnet", "nre", "ae")
CSV_COLUMNS = ("dataset", "factor", "value", "cell", "target_accuracy", "substitute_accuracy",
               *(f"clean_{r}" for r in REFORMERS), *(f"{r}_{c}" for r in ("none",) + REFORMERS for c in t3.EPSILONS),
               "gap_0.2", "gap_0.3", "nre_pixel_mse", "nre_seconds", "collapsed")


@dataclasses.dataclass(frozen=True)
class Cell:
    """One configuration of the sweep: the base config with ``overrides`` (fields of :data:`CELL_FIELDS`), R_A
    from ``A``, E_phi + D initialised from ``init``, the substitute ``substitute`` and NRE's seed ``nre_seed``
    (None: the run's seed)."""

    factor: str
    value: str
    overrides: tuple = ()
    A: str = "plain"
    init: str = "magnet"
    substitute: str = "cnn"
    nre_seed: int | None = None

    def __post_init__(self):
        if self.factor not in FACTORS:
            raise ConfigError(f"unknown sweep factor {self.factor!r}; choose from {', '.join(FACTORS)}")
        bad = sorted({k for k, _ in self.overrides} - set(CELL_FIELDS))
        if bad or self.A not in A_CHOICES or self.init not in INIT_CHOICES or self.substitute not in ("cnn", "mlp"):
            raise ConfigError(f"bad sweep cell {self}: overrides must be among {', '.join(CELL_FIELDS)}, A one of "
                              f"{A_CHOICES}, init one of {INIT_CHOICES}, substitute cnn or mlp")

    @property
    def name(self) -> str:
        """A file-name-safe id, unique within a sweep."""
        text = f"{self.factor}-{self.value}".replace(",", "_").replace("=", "").replace(" ", "")
        return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)

    def config(self, base):
        """The resolved base config with this cell's overrides."""
        return dataclasses.replace(base, **dict(self.overrides))


def cells_for(base, factors=FACTORS) -> list[Cell]:
    """The sweep around the resolved ``base`` config: the base cell and 1-2 values per factor in ``factors``.

    Values are set relative to the base (so a smoke sweep is small and a quick one is the issue's): NRE epochs
    1 and 3x; T 3 and 5; lambdas (1, 0, 0) and (0.2, 0.4, 0.4); R_A = MagNet's encoder, or E_phi + D = the plain
    AE; the plain AE 3x longer; MagNet's reformer a quarter as long; a substitute after one round (no Jacobian
    augmentation) and the cleverhans MLP; NRE with seed + 1."""
    unknown = sorted(set(factors) - set(FACTORS))
    if unknown:
        raise ConfigError(f"unknown sweep factor(s) {', '.join(unknown)}; choose from {', '.join(FACTORS)}")
    e, ae, me, r = base.epochs, base.ae_epochs, base.magnet_epochs, base.substitute_rounds
    lam = ",".join(f"{v:g}" for v in base.lambdas)
    out = {"baseline": [Cell("baseline", f"epochs={e},T={base.T},lambdas={lam},ae={ae},magnet={me}")],
           "nre_epochs": [Cell("nre_epochs", str(v), (("epochs", v),)) for v in sorted({1, 3 * e} - {e})],
           "T": [Cell("T", str(v), (("T", v),)) for v in (3, 5) if v != base.T],
           "lambdas": [Cell("lambdas", ",".join(f"{x:g}" for x in v), (("lambdas", v),))
                       for v in ((1.0, 0.0, 0.0), (0.2, 0.4, 0.4)) if v != tuple(base.lambdas)],
           "representation": [Cell("representation", "A=MagNet encoder", A="magnet"),
                              Cell("representation", "E_phi+D=plain AE", init="plain")],
           "ae_epochs": [Cell("ae_epochs", str(3 * ae), (("ae_epochs", 3 * ae),))],
           "magnet_epochs": [Cell("magnet_epochs", str(max(1, me // 4)), (("magnet_epochs", max(1, me // 4)),))]
           if me > 1 else [],
           "substitute": ([Cell("substitute", "cnn, 1 round", (("substitute_rounds", 1),))] if r > 1 else [])
           + [Cell("substitute", f"mlp, {r} rounds", substitute="mlp")],
           "nre_seed": [Cell("nre_seed", str(base.seed + 1), nre_seed=base.seed + 1)]}
    return [c for f in FACTORS if f in factors for c in out[f]]


class _Shared:
    """The networks that several cells share, trained on first use (each from the run's seed) and kept."""

    def __init__(self, cfg, workdir: Path, data):
        self.cfg, self.workdir, self.data = cfg, workdir, data
        self.magnet, self.plain, self.subs, self.attacks = {}, {}, {}, {}
        self.target = self._classifier("target", lambda: t3.train_target(data[0], data[1], cfg.attack_epochs),
                                       lambda: _basic_cnn(data[0], "target"))
        from common.metrics import accuracy
        from nre_tf.blackbox import predict_labels

        self.target_accuracy = accuracy(data[5], predict_labels(self.target, data[4]))

    def _classifier(self, name, train, build):
        """Load ``<workdir>/<name>.weights.h5`` (recorded in the run's identity) or train and save it."""
        from common.run_identity import load_frozen_weights, read_identity, save_frozen_weights

        ident = read_identity(self.workdir) or {}
        if name in ident.get("weights", {}):
            model = build()
            load_frozen_weights(self.workdir, model, name)
            return model
        _seed(self.cfg.seed)
        model = train()
        save_frozen_weights(self.workdir, name, model)
        return model

    def _autoencoder(self, cache: dict, train, tag: str, epochs: int):
        """``(model, nets)`` of the auto-encoder ``train`` trained ``epochs`` epochs, in
        ``<workdir>/<tag>_e<epochs>``."""
        if epochs not in cache:
            _seed(self.cfg.seed)
            model, nets, _ = train(self.cfg, self.data[0], self.workdir / f"{tag}_e{epochs}", epochs)
            cache[epochs] = (model, nets)
        return cache[epochs]

    def magnet_ae(self, epochs):
        return self._autoencoder(self.magnet, t3.train_magnet, "magnet", epochs)

    def plain_ae(self, epochs):
        return self._autoencoder(self.plain, t3.train_plain_ae, "plain_ae", epochs)

    def substitute(self, kind, rounds):
        """The substitute and its FGSM examples of the attack images, per (kind, rounds)."""
        from nre_tf.blackbox import mlp, train_substitute

        key = (kind, rounds)
        if key not in self.subs:
            x_sub, y_sub, x_att = self.data[2], self.data[3], self.data[4]
            name = f"substitute_{kind}_r{rounds}"
            build = (lambda: _basic_cnn(x_sub, "substitute_cnn")) if kind == "cnn" else (lambda: mlp(x_sub.shape[1:]))
            sub = self._classifier(name, lambda: train_substitute(self.target, x_sub, y_sub, rounds,
                                                                  self.cfg.substitute_epochs, kind), build)
            self.subs[key] = sub
            self.attacks[key] = t3.attack_examples(sub, x_att)
        return self.subs[key], self.attacks[key]


def _basic_cnn(x, name):
    from nre_tf.blackbox import basic_cnn, compile_classifier

    return compile_classifier(basic_cnn(x.shape[1:], name=name))


def _seed(seed: int) -> None:
    """Every shared network starts from the run's seed, whatever cell needed it first (resume-safe)."""
    import keras

    keras.utils.set_random_seed(seed)


def run_cell(cell: Cell, base, shared: _Shared, workdir: Path) -> dict:
    """One cell: NRE trained as the cell says, MagNet and NRE refinement of the cell's substitute's FGSM examples."""
    import numpy as np

    from common.metrics import accuracy
    from nre_tf import trainer
    from nre_tf.blackbox import predict_labels
    from nre_tf.model import to_float

    cfg = cell.config(base)
    x, x_att, y_att = shared.data[0], shared.data[4], shared.data[5]
    magnet, mnets = shared.magnet_ae(cfg.magnet_epochs)
    plain, pnets = shared.plain_ae(cfg.ae_epochs)
    sim = pnets["encoder"] if cell.A == "plain" else mnets["encoder"]
    init = mnets if cell.init == "magnet" else pnets
    t0 = time.perf_counter()
    nre, info = t3.train_nre_reformer(cfg, init, sim, x, workdir / "cells" / cell.name, seed=cell.nre_seed)
    nre_s = time.perf_counter() - t0
    sub, adversarial = shared.substitute(cell.substitute, cfg.substitute_rounds)
    reformers = {"magnet": magnet, "nre": nre, "ae": plain}
    values, none = t3.defended_accuracies(shared.target, reformers, adversarial, y_att)
    clean = {name: t3.refined_accuracy(shared.target, m, x_att, y_att) for name, m in reformers.items()}
    row = {"dataset": base.dataset, "factor": cell.factor, "value": cell.value, "cell": cell.name,
           "target_accuracy": shared.target_accuracy,
           "substitute_accuracy": accuracy(y_att, predict_labels(sub, x_att)),
           **{f"clean_{name}": v for name, v in clean.items()},
           "nre_pixel_mse": float(np.mean((trainer.reconstruct(nre, x_att) - to_float(x_att)) ** 2)),
           "nre_seconds": nre_s, "nre_clusters": info["clusters"],
           "collapsed": ",".join(n for n in ("magnet", "nre")
                                 if not t3.refinement_ok(clean[n], shared.target_accuracy)),
           "config": {k: getattr(cfg, k) for k in CELL_FIELDS} | {"A": cell.A, "init": cell.init,
                                                                   "substitute": cell.substitute,
                                                                   "nre_seed": cell.nre_seed}}
    for eps in t3.EPSILONS:
        col = t3.column(eps)
        row[f"none_{eps}"] = none[col]
        for name in REFORMERS:
            row[f"{name}_{eps}"] = values[(name, col)]
    row["gap_0.2"], row["gap_0.3"] = row["nre_0.2"] - row["magnet_0.2"], row["nre_0.3"] - row["magnet_0.3"]
    return row


SWEEP_DATASETS = ("mnist", "mnist5k", "fashion_mnist")  # Table 3's datasets


def check_arguments(base, datasets, factors, dataset=None) -> None:
    """ConfigError (one line) for arguments the sweep cannot honour: ``--dataset`` (the sweep takes
    ``--datasets``), unknown factors or datasets, and flags the sweep would silently ignore (``--substitute``:
    the ``substitute`` factor varies it; ``--strategy``: the Table 3 classifiers train outside any strategy)."""
    if dataset is not None:
        raise ConfigError("the sweep takes --datasets (comma-separated), not --dataset")
    unknown = sorted(set(factors) - set(FACTORS))
    if unknown:
        raise ConfigError(f"unknown --factors {', '.join(unknown)}; choose from {', '.join(FACTORS)}")
    bad = [d for d in datasets if d not in SWEEP_DATASETS]
    if bad or not datasets:
        raise ConfigError(f"--datasets must list Table 3 datasets ({', '.join(SWEEP_DATASETS)}), got "
                          f"{','.join(datasets) or 'none'}")
    if base.substitute != "cnn":
        raise ConfigError("the sweep varies the substitute itself (factor substitute); leave out --substitute")
    base.refuse_strategy("Table 3 sweep")


def run(base, datasets, workdir, factors=FACTORS, log=print) -> list[dict]:
    """The sweep over ``cells_for(base, factors)`` on each of ``datasets`` (``base``: an NREConfig of Table 3's
    defaults; its ``dataset`` / ``workdir`` are replaced per dataset by ``<workdir>/<dataset>``). Returns every
    finished cell's row (also in ``<workdir>/sweep.csv`` / ``sweep.md``)."""
    from common.config import write_json_atomic
    from common.lifecycle import run_experiment

    workdir = Path(workdir)
    rows = []

    def sweep_dataset(run):
        """The cells of one dataset; a finished cell (its JSON file) is not run again, so a killed sweep
        resumes. Run with ``reuse_finished=False``: the factors are not part of the run identity."""
        cfg, ds_dir = run.config, run.workdir
        cells = cells_for(cfg, factors)
        todo = [c for c in cells if not (ds_dir / "cells" / f"{c.name}.json").is_file()]
        log(f"{cfg.dataset}: {len(cells)} cells, {len(cells) - len(todo)} already done")
        shared = _Shared(cfg, ds_dir, t3.attack_split(cfg)) if todo else None
        for cell in cells:
            path = ds_dir / "cells" / f"{cell.name}.json"
            if not path.is_file():
                t0 = time.perf_counter()
                row = run_cell(cell, cfg, shared, ds_dir)
                row["wall_seconds"] = time.perf_counter() - t0
                write_json_atomic(row, path)
                log(f"{cfg.dataset} {cell.factor}={cell.value}: MagNet / NRE at eps 0.2 {row['magnet_0.2']:.3f} / "
                    f"{row['nre_0.2']:.3f} ({row['wall_seconds']:.0f} s)")
            rows.append(_read(path))
            write_tables(rows, workdir)
        return {"dataset": cfg.dataset, "cells": [c.name for c in cells], "ran": [c.name for c in todo]}

    for ds in datasets:
        run_experiment(dataclasses.replace(base, dataset=ds, workdir=str(workdir / ds)), sweep_dataset,
                       reuse_finished=False)
    return rows


def _read(path) -> dict:
    import json

    return json.loads(Path(path).read_text())


def write_tables(rows, workdir) -> None:
    """``<workdir>/sweep.csv`` (every column of :data:`CSV_COLUMNS`) and ``<workdir>/sweep.md``, atomically."""
    import csv
    import io

    from common.config import write_text_atomic

    buf = io.StringIO()
    w = csv.DictWriter(buf, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in r.items()})
    write_text_atomic(Path(workdir) / "sweep.csv", buf.getvalue())
    write_text_atomic(Path(workdir) / "sweep.md", markdown(rows))


def markdown(rows) -> str:
    """The summary table: accuracy of the target after MagNet / NRE refinement, gap = NRE - MagNet."""
    head = ("| dataset | factor | value | substitute acc. | clean M / N | eps 0.1 M / N | eps 0.2 M / N | "
            "gap 0.2 | eps 0.3 M / N | gap 0.3 | NRE pixel MSE |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        mark = f" (collapsed: {r['collapsed']})" if r.get("collapsed") else ""
        lines.append(f"| {r['dataset']} | {r['factor']} | {r['value']}{mark} | {r['substitute_accuracy']:.3f} | "
                     f"{r['clean_magnet']:.3f} / {r['clean_nre']:.3f} | {r['magnet_0.1']:.3f} / {r['nre_0.1']:.3f} | "
                     f"{r['magnet_0.2']:.3f} / {r['nre_0.2']:.3f} | {r['gap_0.2']:+.3f} | "
                     f"{r['magnet_0.3']:.3f} / {r['nre_0.3']:.3f} | {r['gap_0.3']:+.3f} | {r['nre_pixel_mse']:.4f} |")
    return "\n".join(lines) + "\n"
