"""Errors a user can fix, and the one place that turns them into a clear message and a non-zero exit.

Every reader, protocol and entry point raises a :class:`ReproError` subclass whose message is ONE line saying
what was wrong and what to do (the path looked at, the files expected, where to get them). Entry points wrap
their ``main`` with :func:`exit_on_error` so the user sees ``error: <message>`` and exit status 2, never a
traceback from deep inside TensorFlow. Ctrl-C (KeyboardInterrupt) prints one line and exits 130 (128 + SIGINT,
the shell convention); the checkpoints written so far stay, so the same command resumes.
"""
from __future__ import annotations

import argparse
import functools
import sys

EXIT_ERROR = 2          # a ReproError (bad flag, bad data, bad path); also absl's flag errors (common.flags)
EXIT_INTERRUPTED = 130  # 128 + SIGINT
INTERRUPTED_MESSAGE = "interrupted; run the same command again to resume"


class ReproError(Exception):
    """Base class: an error caused by the user's input (data, flags, files), not by a bug."""


class DataError(ReproError):
    """A dataset is missing, truncated, corrupt or of the wrong shape."""


class ConfigError(ReproError):
    """A flag or config value is unknown, out of range or inconsistent."""


def check_positive(**values) -> None:
    """ConfigError for the first ``--name=value`` that is not > 0 (None = "take the default", allowed); for the
    argparse command lines (the config fields are checked by ``common.config.RunConfig.check_fields``)."""
    for name, value in values.items():
        if value is not None and not value > 0:
            raise ConfigError(f"--{name} must be > 0, got {value}")


def one_line(message) -> str:
    """``message`` as a single line (continuation lines joined with '; ')."""
    return "; ".join(part.strip() for part in str(message).splitlines() if part.strip())


def fail(message, status: int = EXIT_ERROR):
    """Print ``error: <message>`` (one line) on stderr and exit with ``status``."""
    sys.stdout.flush()
    print(f"error: {one_line(message)}", file=sys.stderr, flush=True)
    sys.exit(status)


def exit_on_error(main):
    """Decorator for an entry point's ``main``: a ReproError becomes one ``error:`` line on stderr and exit
    code 2; Ctrl-C becomes one ``interrupted`` line and exit code 130 (no traceback in either case)."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except ReproError as e:
            fail(e)
        except KeyboardInterrupt:
            sys.stdout.flush()
            print(INTERRUPTED_MESSAGE, file=sys.stderr, flush=True)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` for the argparse command lines (``common.datasets``, ``common.run_tables``):
    a usage error is one ``error:`` line naming the option and exit status 2, like every other bad input (the
    default prints the usage block first and prefixes the program name)."""

    def error(self, message):
        fail(f"{message} (see {self.prog} --help)")
