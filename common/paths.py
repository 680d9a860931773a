"""Repository paths and the one default data directory.

The data directory is, in order: the ``--data_dir`` flag, the environment variable ``REPRO_DATA_DIR``,
then ``<repo>/data``.

The last two make up the *default* data directory (:func:`default_data_dir`): it is used when no ``--data_dir``
is given, it need not exist (a fresh clone has no ``<repo>/data``; neither does a ``REPRO_DATA_DIR`` that points to
a folder not created yet: both are created when a download writes into them), and only it may fall back to the
copies of a dataset installed on the system (see :mod:`common.datasets`). An explicit ``--data_dir`` must exist
and never falls back. Whether a directory is the default is decided by whether ``--data_dir`` was given
(``None``), never by comparing paths: code that resolves the default must keep passing ``None`` on to the
dataset readers, not the resolved path (which they would take as an explicit ``--data_dir``).
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR_ENV = "REPRO_DATA_DIR"


def default_data_dir() -> Path:
    """The data directory used when no ``--data_dir`` is given: ``$REPRO_DATA_DIR`` if set (non-empty), else
    ``<repo>/data``. It may not exist (see the module docstring)."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else REPO_ROOT / "data"


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path:
    """``data_dir`` if given, else :func:`default_data_dir`. The result is a path only: pass the original
    ``data_dir`` (``None`` for the default), not this, on to the dataset readers."""
    return Path(data_dir).expanduser() if data_dir else default_data_dir()


def check_output_dir(path: str | os.PathLike, flag: str) -> Path:
    """Check, before any work is done, that ``path`` can be used as an output folder: every part of it that
    exists is a directory, and a file can be created in it. Folders this check had to create are removed again
    (the run creates them when it writes). Raises ConfigError naming ``--<flag>`` and what to do."""
    from common.errors import ConfigError

    p = Path(path).expanduser()
    for part in [p, *p.parents]:
        if part.exists() or part.is_symlink():
            if not part.is_dir():
                what = "is a file, not a directory" if part == p else f"is inside {part}, which is a file"
                raise ConfigError(f"--{flag}={path} {what}; choose another --{flag}")
            break
    created = [q for q in [p, *p.parents] if not q.exists()]
    try:
        p.mkdir(parents=True, exist_ok=True)
        import tempfile

        fd, probe = tempfile.mkstemp(prefix=".write_test.", dir=p)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ConfigError(f"--{flag}={path} cannot be created or written ({e.strerror or e}); choose a "
                          f"writable --{flag}") from None
    finally:
        for q in created:  # innermost first
            try:
                q.rmdir()
            except OSError:
                break
    return p


def check_output_dirs(workdir=None, export_dir=None) -> None:
    """:func:`check_output_dir` for a run's ``--workdir`` and ``--export_dir`` (None: not used)."""
    for flag, path in (("workdir", workdir), ("export_dir", export_dir)):
        if path:
            check_output_dir(path, flag)
