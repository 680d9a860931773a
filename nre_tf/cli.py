"""What NRE's entry points (``python -m nre_tf.train``, ``nre_tf.table1`` .. ``table4``) share: the table's default ``--lambdas`` and the JSON
report. Defines no flag; the flags come from :class:`nre_tf.config.NREConfig`
(:func:`common.flags.define_config_flags`), defined by each entry module.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence


def set_default_lambdas(lambdas: Sequence[float]) -> None:
    """Make ``lambdas`` the default of ``--lambdas`` of this entry point (a table's own triplet; ``--help`` shows
    it). Call after the flags are defined."""
    from absl import flags

    flags.FLAGS.set_default("lambdas", ",".join(f"{v:g}" for v in lambdas))


def json_report(show: Sequence[str] | None = None) -> Callable:
    """``metrics -> JSON text`` (only the keys ``show`` when given; in-memory keys starting with ``_`` never)."""
    def report(metrics: dict) -> str:
        res = {k: v for k, v in metrics.items() if not str(k).startswith("_")}
        return json.dumps({k: res[k] for k in show if k in res} if show else res, indent=2, default=str)
    return report
