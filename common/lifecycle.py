"""The one run lifecycle every experiment goes through; a package supplies only the body of its method.

    def run(config: OLEDConfig) -> dict:
        return run_experiment(config, body)

    def body(run: Run) -> dict:
        cfg = run.config                               # resolved: presets, precision, workdir filled in
        data = prepare(cfg)                            # check the data before anything is trained
        with run.scope():                              # the --strategy's scope
            model = build_model(cfg)
        run.record_model(model)                        # what really ran: XLA on/off, dtype policy
        with run.timer("train"):
            history = train(model, cfg, data, run.workdir)
        metrics = evaluate(...)
        if cfg.export_dir:
            run.export(model_name(cfg), model, {"serving_default": Signature(model.serve, shape, "images")},
                       samples={"serving_default": data.test_x[:16]}, preprocessing={"input_range": [-1, 1]})
        return metrics

:func:`run_experiment` does, in this order and once for every package:

1. resolve and check the config (:meth:`common.config.RunConfig.resolved`: presets, every field's choices and
   bounds, the ``--strategy`` the method supports, TF_CONFIG for ``multi_worker``);
2. **reuse a finished run**: when ``--workdir`` holds the metrics of exactly this config and code
   (:func:`common.run_identity.finished_metrics`) they are returned as they are, nothing is trained or
   rewritten (its timings stay those of the run that trained); with an ``--export_dir`` the finished run has
   not exported to, the body runs again (training resumes with nothing left to do) and only the new export is
   added to the stored metrics;
3. the ``tf.distribute`` strategy (:func:`common.training.get_strategy`); under ``multi_worker`` a non-chief
   worker writes into a temporary folder (:func:`common.training.for_this_worker`);
4. :func:`common.training.start_run`: run identity of the workdir (resume / refuse / ``--force``), seeds,
   determinism, precision policy;
5. the body, timed; a body that never entered :meth:`Run.scope` under a strategy other than ``default`` is a
   bug reported as such (a ``--strategy`` flag must never silently do nothing);
6. ``metrics.json``: the body's metrics plus what the lifecycle knows (strategy, replicas, precision, what
   :meth:`Run.record` / :meth:`Run.record_model` noted, the exports, ``wall_seconds``), written atomically
   once the run has finished. Keys starting with ``_`` (in-memory results for a table job) are returned but
   not written.

Exports (:meth:`Run.export`) are written in the TF Serving layout with ``assets.extra/export.json`` (the
weights digest, the input range and kind of every signature, for ``python -m common.predict``), reloaded in
a fresh process and compared with the in-process model (:func:`common.export.check_export`); an export whose
latest version already holds the same weights and signatures is reused, not written a second time.
"""
from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path
from typing import Any, Callable

from common.errors import ReproError


@dataclasses.dataclass
class Run:
    """What a body receives: the resolved config, the workdir, the strategy, and the lifecycle's records."""

    config: Any
    workdir: Path
    strategy: Any
    records: dict = dataclasses.field(default_factory=dict)
    exports: dict = dataclasses.field(default_factory=dict)
    entered_scope: bool = False

    @contextlib.contextmanager
    def scope(self):
        """The strategy's scope: build the models, optimizers and metrics inside it."""
        self.entered_scope = True
        with self.strategy.scope():
            yield

    @property
    def replicas(self) -> int:
        return int(self.strategy.num_replicas_in_sync)

    def undistributed(self, model, build: Callable[[], Any]):
        """``model`` itself under the default strategy; under another, ``build()`` (called outside the
        strategy's scope) with ``model``'s weights: for what must run on plain variables after training, such as
        an export (Keras cannot export functions of mirrored variables)."""
        import tensorflow as tf

        if self.strategy is tf.distribute.get_strategy() or self.config.strategy == "default":
            return model
        with tf.distribute.get_strategy().scope():  # the default strategy, whatever scope the caller is in
            copy = build()
        copy.set_weights(model.get_weights())
        return copy

    def record(self, **values) -> None:
        """Note facts about what ran for ``metrics.json`` (the body's own metrics keep precedence)."""
        self.records.update(values)

    def record_model(self, model) -> None:
        """Record what Keras really compiled: ``jit_compile`` after Keras's own checks (it may turn a requested
        XLA off) and the dtype policy."""
        jit = getattr(model, "jit_compile", None)
        if jit is not None:
            self.records["jit_compile"] = bool(jit)
            if self.config.jit_compile is True and not jit:
                print("note: --jit_compile=true was requested but Keras compiled this model without XLA; "
                      "metrics.json records jit_compile=false", flush=True)
        policy = getattr(getattr(model, "dtype_policy", None), "name", None)
        if policy:
            self.records["dtype_policy"] = policy

    def batch_size_for(self, n: int, batch_size: int | None = None) -> int:
        """The batch size that really runs on ``n`` samples (``min(batch_size, n)``); recorded as
        ``batch_size_effective`` with a note when it differs from the requested one."""
        requested = int(batch_size or self.config.batch_size)
        effective = max(1, min(requested, int(n)))
        if effective != requested:
            print(f"note: --batch_size={requested} is larger than the {n} training samples; batches of {effective} "
                  f"run (metrics.json records batch_size_effective)", flush=True)
        self.records["batch_size_effective"] = effective
        return effective

    @contextlib.contextmanager
    def timer(self, name: str):
        """Time the block into ``<name>_seconds`` of the records."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.records[f"{name}_seconds"] = time.perf_counter() - t0

    def export(self, model_name: str, tracked, signatures: dict, samples: dict, *, preprocessing: dict,
               expected: dict | None = None, atol: float = 1e-4, rtol: float = 1e-4) -> dict:
        """Export ``signatures`` (``{name: common.export.Signature}``; one must be ``serving_default``) of the
        built model(s) ``tracked`` to ``<export_dir>/<model_name>/<version>/`` and check each signature named
        in ``samples`` (``{name: input batch}``) in a fresh process against the in-process function (or
        ``expected[name]``, a dict of outputs). ``preprocessing``: what a client must do to raw pixels, stored
        in ``assets.extra/export.json`` per signature (``{"input_range": [lo, hi], ...}`` for all, or
        ``{signature: {...}}``). Returns (and records) the export's entry of ``metrics["export"]``."""
        import numpy as np
        import tensorflow as tf

        from common.export import check_export, export_saved_model, find_same_export
        from common.training import weights_digest

        models = list(tracked) if isinstance(tracked, (list, tuple)) else [tracked]
        digest = weights_digest(models)
        per_signature = bool(preprocessing) and all(isinstance(v, dict) for v in preprocessing.values())
        per_sig = {name: dict(preprocessing.get(name, {}) if per_signature else preprocessing) for name in signatures}
        for name, pre in per_sig.items():  # what a client cannot read off the graph (python -m common.predict)
            missing = sorted({"input_range", "kind"} - set(pre))
            if missing:
                raise ValueError(f"export {model_name}/{name}: preprocessing lacks {missing}")
        metadata = {"method": self.config.method, "model_name": model_name, "weights_digest": digest,
                    "signatures": {name: {"input": sig.input_name, "input_shape": list(sig.input_shape),
                                          **per_sig[name]} for name, sig in signatures.items()}}
        path = find_same_export(self.config.export_dir, model_name, metadata)
        reused = path is not None
        if reused:
            print(f"export {path} already holds these weights and signatures: reused, no new version", flush=True)
        else:
            path = export_saved_model(models, None, self.config.export_dir, model_name, signatures=signatures,
                                      metadata=metadata)
        diffs = {}
        for name, x in samples.items():
            sig = signatures[name]
            want = (expected or {}).get(name)
            if want is None:
                want = {k: np.asarray(v) for k, v in sig.fn(tf.constant(np.asarray(x, np.float32))).items()}
            diffs[name] = check_export(path, x, want, input_name=sig.input_name, signature=name, atol=atol,
                                       rtol=rtol)
        print(f"exported {path} (fresh-process check passed)", flush=True)
        entry = {"path": str(path), "signatures": sorted(signatures), "weights_digest": digest, "reused": reused,
                 "max_abs_diff_fresh_process": diffs}
        self.exports[model_name] = entry
        return entry


def _export_done(done: dict, export_dir) -> bool:
    """Whether the stored metrics of a finished run record an export into ``export_dir`` that still exists."""
    entries = done.get("export")
    if not isinstance(entries, dict):
        return False
    paths = [e.get("path") for e in entries.values() if isinstance(e, dict)] + [entries.get("path")]
    root = Path(export_dir).resolve()
    for p in paths:
        if isinstance(p, str) and Path(p).is_dir():
            try:
                Path(p).resolve().relative_to(root)
                return True
            except ValueError:
                continue
    return False


def run_experiment(config, body: Callable[[Run], dict], *, reuse_finished: bool = True) -> dict:
    """Run ``body`` inside the lifecycle (see the module docstring); returns the run's metrics."""
    import shutil

    from common.config import write_metrics
    from common.run_identity import finished_metrics
    from common.training import for_this_worker, get_strategy, start_run

    t_start = time.perf_counter()
    cfg = config.resolved()
    done = finished_metrics(cfg) if reuse_finished and cfg.resume and not cfg.force else None
    if done is not None and (not cfg.export_dir or _export_done(done, cfg.export_dir)):
        print(f"{cfg.method}: {cfg.workdir} holds the finished run of this configuration and code; its metrics "
              f"are reused (nothing trained; --force or --noresume to run it again)", flush=True)
        return done
    strategy = get_strategy(cfg.strategy)
    cfg, worker_tmp = for_this_worker(cfg, strategy)
    try:
        cfg, workdir = start_run(cfg)
        run = Run(cfg, workdir, strategy)
        metrics = dict(body(run))
        if cfg.strategy != "default" and not run.entered_scope:
            raise ReproError(f"{cfg.method}: --strategy={cfg.strategy} was accepted but the run built nothing "
                             f"under it (a bug: its body must build inside run.scope())")
        added = {"strategy": cfg.strategy, "replicas": run.replicas, "precision": cfg.precision, **run.records}
        if run.exports:
            added["export"] = run.exports
        for key, value in added.items():
            metrics.setdefault(key, value)
        metrics.setdefault("wall_seconds", time.perf_counter() - t_start)
        if done is not None:  # a finished run re-entered for a new export: keep what it recorded
            metrics = {**done, "export": {**(done.get("export") or {}), **run.exports}}
        write_metrics({k: v for k, v in metrics.items() if not str(k).startswith("_")}, workdir)
        return metrics
    finally:
        if worker_tmp:
            shutil.rmtree(worker_tmp, ignore_errors=True)
