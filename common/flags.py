"""Flags generated from the config dataclasses, and :func:`run`, the one way an entry point starts.

Every option is a field of a :class:`common.config.RunConfig` subclass, declared once with
:func:`common.config.option` (help text, allowed values, bounds, flag name); :func:`define_config_flags` turns
the fields into absl flags (the shared fields of ``RunConfig`` are defined here, once; defining a flag twice
would raise DuplicateFlagError) and :func:`config_from_flags` turns the parsed flags back into a config, checked
by :meth:`RunConfig.resolved` before any TensorFlow import. An entry module holds its flags and ``main`` only:

    from common import flags as cflags
    from oled_tf.config import OLEDConfig

    cflags.define_config_flags(OLEDConfig)

    def main(argv):
        from oled_tf.experiment import run      # the library, imported once the flags are good
        run(cflags.config_from_flags(OLEDConfig))

    if __name__ == "__main__":
        cflags.run(main)

:func:`run` gives every entry point the same command-line behaviour: ``--help`` lists the entry point's own
flags AND the shared ones and exits 0; a bad flag value (unknown enum value, non-numeric integer, out of its
bounds, unknown flag, stray argument) is ONE ``error:`` line and exit status 2, never absl's "FATAL Flags
parsing error" and usage dump; a :class:`common.errors.ReproError` raised by ``main`` is one ``error:`` line and
exit 2, Ctrl-C one ``interrupted`` line and exit 130 (:func:`common.errors.exit_on_error`).

Importing this module sets ``TF_CPP_MIN_LOG_LEVEL=2`` unless the user set it: TensorFlow's C++ INFO/WARNING
lines (CUDA probing, CPU features) would otherwise come before every message of an entry point. Entry points
import it before anything that imports TensorFlow.

Only entry points read ``FLAGS``; library code receives plain values. ``None`` for ``--epochs`` and
``--batch_size`` means "take the value of the chosen ``--scale`` preset".
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before any TensorFlow import (see module docstring)

from absl import app, flags  # noqa: E402

from common.errors import ConfigError, exit_on_error, fail  # noqa: E402

from common.config import PRECISIONS, SCALES, STRATEGIES, RunConfig, field_type  # noqa: E402,F401

FLAGS = flags.FLAGS


def flag_name(f) -> str:
    """The command-line name of config field ``f`` (its :func:`common.config.option` ``flag``, else its name)."""
    return f.metadata.get("flag") or f.name


_GROUPS: dict[type, tuple[str, ...] | None] = {}  # config class -> the option groups this entry point offers


def flag_fields(config_cls) -> list:
    """The fields of ``config_cls`` that are command-line flags of this entry point: every field but ``no_flag``
    ones and those of an option ``group`` the entry point did not ask for (:func:`define_config_flags`)."""
    import dataclasses

    groups = _GROUPS.get(config_cls)
    return [f for f in dataclasses.fields(config_cls) if not f.metadata.get("no_flag")
            and (groups is None or f.metadata.get("group") is None or f.metadata["group"] in groups)]


def define_config_flags(config_cls, groups: tuple[str, ...] | None = None) -> None:
    """Define one absl flag per field of the config dataclass ``config_cls`` from its
    :func:`common.config.option` metadata (help, choices, flag name, parse); fields whose flag is already
    defined (the shared :class:`common.config.RunConfig` fields, or a sibling entry point's) are skipped, so
    every option is defined once, from one place. Field type -> flag: choices -> enum; bool -> boolean; int ->
    integer; float -> float; others (and ``parse`` fields) -> string. ``groups``: the option groups
    (:func:`common.config.option` ``group``) this entry point uses; None = all (a field of another group is no
    flag here and keeps its default, so that no accepted flag is silently ignored)."""
    import dataclasses

    _GROUPS[config_cls] = None if groups is None else tuple(groups)
    for f in flag_fields(config_cls):
        name = flag_name(f)
        if name in FLAGS:
            continue
        meta, kind = f.metadata, field_type(config_cls, f.name)
        help_text = meta.get("help") or f.name.replace("_", " ")
        default = meta.get("flag_default", f.default if f.default is not dataclasses.MISSING else None)
        if meta.get("choices"):
            choices = [str(c) for c in meta["choices"]]
            flags.DEFINE_enum(name, None if default is None else str(default), choices, help_text)
        elif meta.get("parse") is not None:
            flags.DEFINE_string(name, default if isinstance(default, str) or default is None else
                                ",".join(map(str, default)) if isinstance(default, (tuple, list)) else str(default),
                                help_text)
        elif kind is bool:
            flags.DEFINE_boolean(name, default, help_text)
        elif kind is int:
            flags.DEFINE_integer(name, default, help_text)
        elif kind is float:
            flags.DEFINE_float(name, default, help_text)
        elif kind is str:
            flags.DEFINE_string(name, default, help_text)
        else:
            raise TypeError(f"{config_cls.__name__}.{f.name}: a {kind.__name__} field needs option(parse=...) to "
                            f"be a flag, or option(no_flag=True)")


def flag_values(config_cls) -> dict:
    """The parsed flags of ``config_cls``'s fields as field values (``parse`` applied; a flag left at None is
    left out, so the field keeps its default). Call only from an entry point's ``main``."""
    values = {}
    for f in flag_fields(config_cls):
        value = FLAGS[flag_name(f)].value
        if value is None:
            continue
        parse = f.metadata.get("parse")
        if parse is not None:
            try:
                value = parse(value)
            except (ValueError, TypeError, KeyError) as e:
                raise ConfigError(f"--{flag_name(f)}={value!r} cannot be read: {e}") from None
        values[f.name] = value
    return values


def config_from_flags(config_cls, **overrides):
    """The config of the parsed flags (``overrides`` replace fields), checked by :func:`preflight` before any
    TensorFlow import: bad values, bad output folders and a missing ``--data_dir`` fail here, in one line."""
    config = config_cls.from_flags(flag_values(config_cls), **overrides)
    preflight(config)
    return config


define_config_flags(RunConfig)


def preflight(config):
    """Every check of a run that needs no TensorFlow, for an entry point's ``main`` to call before ``run``
    imports it: the flag values (``config.resolved()``), the output folders (``--workdir``, ``--export_dir``:
    :func:`common.paths.check_output_dirs`) and that an explicit ``--data_dir`` exists
    (:func:`common.datasets.check_data_dir`). Returns the resolved config."""
    from common.datasets import check_data_dir
    from common.paths import check_output_dirs

    cfg = config.resolved()
    check_output_dirs(cfg.workdir, cfg.export_dir)
    check_data_dir(cfg.dataset, cfg.data_dir)
    return cfg


def entry_main(config_cls, library: str, report=None, run_kwargs: dict | None = None):
    """The ``main`` of an entry point: the config of the parsed flags (:func:`config_from_flags`: bad flags fail
    here, before TensorFlow is imported), then the library module ``library`` (e.g. ``"oled_tf.experiment"``) is
    imported and ``library.run(config, **run_kwargs)`` runs; its metrics are printed by ``report`` (default the
    library's own ``report`` function when it has one). An entry module is its flags and
    ``main = cflags.entry_main(Config, "pkg.library")``."""
    import importlib
    import logging

    def main(argv):
        config = config_from_flags(config_cls)
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        logging.getLogger("tensorflow").setLevel(logging.WARNING)  # SavedModel writing logs every asset at INFO
        module = importlib.import_module(library)
        metrics = module.run(config, **(run_kwargs or {}))
        show = report or getattr(module, "report", None)
        if show is not None:
            print(show(metrics), flush=True)
        return 0

    return main


# ------------------------------------------------------------------------------------------- entry points
HELP_ARGS = ("--help", "-help", "-h", "-?", "--helpshort", "--helpfull")


def _main_module_name() -> str:
    # absl registers the flags and key flags of the ``__main__`` module under sys.argv[0].
    return sys.argv[0]


def adopt_key_flags(*modules) -> None:
    """Make the flags of ``modules`` (this module's shared flags are always included) key flags of the main
    module, so that ``--help`` lists them beside the entry point's own (``flags.adopt_module_key_flags`` for
    the ``__main__`` module, callable from here)."""
    main = _main_module_name()
    for module in (sys.modules[__name__], *modules):
        for flag in FLAGS.get_key_flags_for_module(module):
            FLAGS.register_key_flag_for_module(main, flag)


def help_text() -> str:
    """The entry point's docstring, then its own and the shared flags (absl's module help of ``__main__``)."""
    doc = (sys.modules["__main__"].__doc__ or "").strip()
    return f"{doc}\n\nflags:\n{FLAGS.main_module_help()}\n"


def parse_argv(argv: list[str]) -> list[str]:
    """The ``flags_parser`` of :func:`run`: --help -> help on stdout, exit 0; any flag error -> one ``error:``
    line, exit 2; positional arguments are refused (every option is a --flag)."""
    args = list(argv[1:])
    if "--" in args:
        args = args[:args.index("--")]
    if any(a.split("=", 1)[0] in HELP_ARGS for a in args):
        sys.stdout.write(help_text())
        sys.stdout.flush()
        sys.exit(0)
    try:
        rest = FLAGS(argv)
    except flags.Error as e:
        fail(f"{e} (see --help)")
    if len(rest) > 1:
        fail(f"unexpected arguments {rest[1:]}; every option is a --flag (see --help)")
    return rest


def run(main, *modules) -> None:
    """Start an entry point: ``absl.app.run(main)`` with :func:`parse_argv` as the flags parser, the flags of
    ``modules`` (and the shared ones) shown by ``--help``, and ``main`` wrapped in
    :func:`common.errors.exit_on_error`."""
    adopt_key_flags(*modules)
    app.run(exit_on_error(main), flags_parser=parse_argv)
