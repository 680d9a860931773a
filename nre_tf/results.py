"""NRE's runs on the shared lifecycle (:func:`common.lifecycle.run_experiment`), with the table cells kept.

Each run's body returns its metrics with ``"values"`` (``"<row> | <column>"`` -> number, written to
``metrics.json``) and ``"_cells"`` (``(row, column)`` -> number, for a table job; not written). When the
lifecycle reuses a finished run it returns the stored metrics, which have no ``"_cells"``: :func:`with_cells`
rebuilds them from ``"values"``, so a table job gets the same cells either way.
"""
from __future__ import annotations

from typing import Callable

SEP = " | "


def cells_from_values(values: dict) -> dict:
    """``{"row | col": v}`` -> ``{(row, col): v}``."""
    return {tuple(key.split(SEP, 1)): value for key, value in values.items()}


def with_cells(metrics: dict) -> dict:
    """``metrics`` with ``"_cells"`` (rebuilt from ``"values"`` when missing, i.e. a reused finished run)."""
    if "_cells" not in metrics and isinstance(metrics.get("values"), dict):
        metrics = {**metrics, "_cells": cells_from_values(metrics["values"])}
    return metrics


def run_with_cells(config, body: Callable) -> dict:
    """``run_experiment(config, body)`` with :func:`with_cells` applied to its result."""
    from common.lifecycle import run_experiment

    return with_cells(run_experiment(config, body))
