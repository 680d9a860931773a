"""Shared absl flags, defined once for every entry point (defining them twice raises DuplicateFlagError), and
:func:`run`, the one way an entry point starts.

Import this module from an entry point (``from common import flags as cflags``), define the package's own
flags beside it, turn the parsed flags into a config object in ``main`` and start it with :func:`run`:

    def main(argv):
        config = Config.from_flags(cflags.common_values(), t=FLAGS.t, ...)
        run(config)

    if __name__ == "__main__":
        cflags.run(main)

:func:`run` gives every entry point the same command-line behaviour: ``--help`` lists the entry point's own
flags AND the shared ones and exits 0; a bad flag value (unknown enum value, non-numeric integer, unknown
flag, stray argument) is ONE ``error:`` line and exit status 2, never absl's "FATAL Flags parsing error" and
usage dump; a :class:`common.errors.ReproError` raised by ``main`` is one ``error:`` line and exit 2, Ctrl-C one
``interrupted`` line and exit 130 (:func:`common.errors.exit_on_error`).

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

SCALES = ("smoke", "quick", "paper")
STRATEGIES = ("default", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")

flags.DEFINE_string("dataset", None, "Dataset name (see `python -m common.datasets --help`).")
flags.DEFINE_string("data_dir", None, "Root of the datasets (default: $REPRO_DATA_DIR, else <repo>/data).")
flags.DEFINE_integer("normal_class", 0, "Index of the normal (inlier) class for one-class experiments.")
flags.DEFINE_integer("epochs", None, "Training epochs (default: the --scale preset).")
flags.DEFINE_integer("batch_size", None, "Batch size (default: the --scale preset).")
flags.DEFINE_integer("seed", 0, "Random seed (Python, NumPy, TensorFlow, data splits).")
flags.DEFINE_string("workdir", None, "Output folder: config.json, metrics.json, checkpoints, logs, figures "
                    "(default: runs/<method>_<dataset>_class<c>_<scale>_<config hash>).")
flags.DEFINE_enum("scale", "quick", SCALES, "smoke: seconds, for tests; quick: minutes on a CPU with real data; "
                  "paper: the paper's exact settings (a GPU).")
flags.DEFINE_string("export_dir", None, "If set, export a SavedModel to <export_dir>/<model_name>/<version>/.")
flags.DEFINE_enum("strategy", "default", STRATEGIES, "tf.distribute strategy: default (one device), mirrored "
                  "(all local GPUs) or multi_worker (MultiWorkerMirroredStrategy from TF_CONFIG).")
flags.DEFINE_enum("precision", "float32", PRECISIONS, "Keras dtype policy; mixed_bfloat16 uses AMX/bf16 units "
                  "on recent CPUs and GPUs; auto = mixed_bfloat16 where the CPU has native bf16 units (amx_bf16 / "
                  "avx512_bf16) or on a bf16 GPU, float32 otherwise (config.json records the choice).")
flags.DEFINE_enum("jit_compile", "auto", ("auto", "true", "false"), "XLA compilation of the train step.")
flags.DEFINE_boolean("resume", True, "Resume from the last checkpoint in --workdir if there is one.")
flags.DEFINE_boolean("deterministic", True, "Enable TensorFlow op determinism (slower on GPU).")
flags.DEFINE_boolean("force", False, "Start fresh even when --workdir holds another configuration's run: its "
                     "contents are moved aside into <workdir>/stale-<time>/ (see common/run_identity.py).")

FLAGS = flags.FLAGS

COMMON_FLAGS = ("dataset", "data_dir", "normal_class", "epochs", "batch_size", "seed", "workdir", "scale",
                "export_dir", "strategy", "precision", "jit_compile", "resume", "deterministic", "force")


def common_values() -> dict:
    """The parsed values of the shared flags as a plain dict (call only from an entry point's ``main``)."""
    values = {name: FLAGS[name].value for name in COMMON_FLAGS}
    if values["normal_class"] is not None and values["normal_class"] < 0:
        raise ConfigError(f"--normal_class must be >= 0, got {values['normal_class']}")
    for name in ("epochs", "batch_size"):
        if values[name] is not None and values[name] <= 0:
            raise ConfigError(f"--{name} must be a positive integer, got {values[name]}")
    for name in ("dataset", "data_dir", "workdir", "export_dir"):
        if values[name] is not None and not str(values[name]).strip():
            raise ConfigError(f"--{name} is empty; give a value or leave the flag out")
    return values


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


def parse_jit_compile(value: str):
    """Map the --jit_compile flag to what ``keras.Model.compile`` expects."""
    return {"auto": "auto", "true": True, "false": False}[value]


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
