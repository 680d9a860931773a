"""Entry point of NRE Table 1 (SVM accuracy on the representation of five auto-encoders, Section 4.2); the
protocol is :mod:`nre_tf.representation_eval`.

    python -m nre_tf.table1 --dataset=mnist5k --scale=quick      (flags: --help)
"""
from __future__ import annotations


def main(argv):
    from nre_tf.cli import table_main
    from nre_tf.representation_eval import run

    table_main(argv, run, default_lambdas=(0.5, 0.2, 0.3), show=("dataset", "scale", "values", "wall_seconds"))


if __name__ == "__main__":
    import nre_tf.train  # noqa: F401  (defines the flags)

    from common import flags as cflags

    cflags.run(main, nre_tf.train)
