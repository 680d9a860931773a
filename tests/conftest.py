"""Shared pytest fixtures."""
import pytest


@pytest.fixture
def reload_in_process(monkeypatch):
    """Exports checked after a reload in this process instead of a fresh one (``common.export.FRESH_PROCESS``):
    for the paper-size network tests, which check shapes and dtypes; the fresh-process reload is tested on every
    method's smoke-size export."""
    from common import export

    monkeypatch.setattr(export, "FRESH_PROCESS", False)
