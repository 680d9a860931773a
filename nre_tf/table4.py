"""Entry point of NRE Table 4 (frame-level EER on UCSD Ped2 from 30x30 patch reconstruction errors, Section
4.5); the protocol is :mod:`nre_tf.ucsd_eval`.

    python -m nre_tf.table4 --data_dir=<folder holding UCSDped2> --scale=quick
"""
from __future__ import annotations


def main(argv):
    from nre_tf.cli import table_main
    from nre_tf.ucsd_eval import run

    table_main(argv, run, default_lambdas=(0.6, 0.2, 0.2))


if __name__ == "__main__":
    import nre_tf.train  # noqa: F401  (defines the flags)

    from common import flags as cflags

    cflags.run(main, nre_tf.train)
