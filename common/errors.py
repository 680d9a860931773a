"""Errors a user can fix, and the one place that turns them into a clear message and a non-zero exit.

Every reader, protocol and entry point raises a :class:`ReproError` subclass whose message is ONE line saying
what was wrong and what to do (the path looked at, the files expected, where to get them). Entry points wrap
their ``main`` with :func:`exit_on_error` so the user sees ``error: <message>`` and exit status 2, never a
traceback from deep inside TensorFlow.
"""
from __future__ import annotations

import functools
import sys


class ReproError(Exception):
    """Base class: an error caused by the user's input (data, flags, files), not by a bug."""


class DataError(ReproError):
    """A dataset is missing, truncated, corrupt or of the wrong shape."""


class ConfigError(ReproError):
    """A flag or config value is unknown, out of range or inconsistent."""


def exit_on_error(main):
    """Decorator for absl ``main(argv)``: a ReproError becomes one ``error:`` line on stderr and exit code 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except ReproError as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            sys.exit(2)

    return wrapper
