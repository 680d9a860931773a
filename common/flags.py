"""Shared absl flags, defined once for every entry point (defining them twice raises DuplicateFlagError).

Import this module from an entry point (``from common import flags as cflags``), define the package's own
flags beside it, and turn the parsed flags into a config object in ``main``:

    def main(argv):
        config = Config.from_flags(cflags.common_values(), t=FLAGS.t, ...)
        run(config)

Only entry points read ``FLAGS``; library code receives plain values. ``None`` for ``--epochs`` and
``--batch_size`` means "take the value of the chosen ``--scale`` preset".
"""
from __future__ import annotations

from absl import flags

from common.errors import ConfigError

SCALES = ("smoke", "quick", "paper")
STRATEGIES = ("default", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")

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
                  "on recent CPUs and GPUs.")
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
    return values


def parse_jit_compile(value: str):
    """Map the --jit_compile flag to what ``keras.Model.compile`` expects."""
    return {"auto": "auto", "true": True, "false": False}[value]
