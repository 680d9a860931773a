"""Entry point of NRE Table 4 (frame-level EER on UCSD Ped2 from 30x30 patch reconstruction errors, Section
4.5); the protocol is :mod:`nre_tf.ucsd_eval`.

    python -m nre_tf.table4 --data_dir=<folder holding UCSDped2> --scale=quick
"""
from common import flags as cflags
from nre_tf import cli
from nre_tf.config import NREConfig

cflags.define_config_flags(NREConfig, groups=())
cli.set_default_lambdas((0.6, 0.2, 0.2))

main = cflags.entry_main(NREConfig, "nre_tf.ucsd_eval", cli.json_report())

if __name__ == "__main__":
    cflags.run(main)
