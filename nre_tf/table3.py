"""Entry point of NRE Table 3 (refining black-box FGSM adversarial examples, MagNet vs NRE, Section 4.4); the
protocol is :mod:`nre_tf.adversarial`.

    python -m nre_tf.table3 --dataset=mnist5k --scale=quick [--substitute=cnn|mlp]

Prints the table (``values``) with the column we add, the clean accuracy after refinement (``clean_refined``,
epsilon 0); stops with one ``error:`` line (exit 2, no ``metrics.json``) when refinement destroys clean accuracy.
"""
from __future__ import annotations

from absl import flags

FLAGS = flags.FLAGS


def main(argv):
    from nre_tf.adversarial import run
    from nre_tf.cli import table_main

    table_main(argv, lambda cfg: run(cfg, substitute=FLAGS.substitute), default_lambdas=(0.6, 0.2, 0.2),
               show=("dataset", "scale", "target_accuracy", "substitute_accuracy", "no_defence", "clean_refined",
                     "values", "reformer_loss", "wall_seconds"))


if __name__ == "__main__":
    import nre_tf.train  # noqa: F401  (defines the shared and NRE flags)

    flags.DEFINE_enum("substitute", "cnn", ("cnn", "mlp"), "Substitute model of the black-box attack.")
    from common import flags as cflags

    cflags.run(main, nre_tf.train)
