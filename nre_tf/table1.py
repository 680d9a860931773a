"""Entry point of NRE Table 1 (SVM accuracy on the representation of five auto-encoders, Section 4.2); the
protocol is :mod:`nre_tf.representation_eval`.

    python -m nre_tf.table1 --dataset=mnist5k --scale=quick      (flags: --help)
"""
from common import flags as cflags
from nre_tf import cli
from nre_tf.config import NREConfig

cflags.define_config_flags(NREConfig, groups=("table1",))
cli.set_default_lambdas((0.5, 0.2, 0.3))

main = cflags.entry_main(NREConfig, "nre_tf.representation_eval",
                         cli.json_report(show=("dataset", "scale", "values", "wall_seconds")))

if __name__ == "__main__":
    cflags.run(main)
