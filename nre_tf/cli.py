"""The one ``main`` of NRE's table entry points (``python -m nre_tf.table<N>``): flags -> config -> run -> JSON.

The flags themselves are defined once, in ``nre_tf.train`` (the shared ones in ``common.flags``).
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence


def table_main(argv: Sequence[str], run: Callable, default_lambdas: tuple[float, float, float],
               show: Sequence[str] | None = None, **config_updates) -> None:
    """Build the :class:`nre_tf.config.NREConfig` of the parsed flags (``default_lambdas`` when ``--lambdas``
    is not given; ``config_updates`` replace fields), call ``run(config)`` and print its results as JSON (only
    the keys ``show`` when given). Bad input ends with one ``error: ...`` line and a non-zero exit."""
    from common.errors import ConfigError, exit_on_error
    from nre_tf.train import config_from_flags

    @exit_on_error
    def _main():
        if len(argv) > 1:
            raise ConfigError(f"unexpected arguments {list(argv[1:])}; all options are --flags")
        cfg = config_from_flags(default_lambdas=default_lambdas)
        if config_updates:
            cfg = dataclasses.replace(cfg, **config_updates)
        res = dict(run(cfg))
        res.pop("_cells", None)
        print(json.dumps({k: res[k] for k in show if k in res} if show else res, indent=2, default=str))
    _main()
