"""Repository paths and the one default data directory.

The data directory is, in order: the ``--data_dir`` flag, the environment variable ``REPRO_DATA_DIR``,
then ``<repo>/data``.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR_ENV = "REPRO_DATA_DIR"


def default_data_dir() -> Path:
    """The data directory used when no ``--data_dir`` is given."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else REPO_ROOT / "data"


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path:
    """``data_dir`` if given, else :func:`default_data_dir`."""
    return Path(data_dir).expanduser() if data_dir else default_data_dir()
