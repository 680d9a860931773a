"""Entry point of NRE Table 3 (refining black-box FGSM adversarial examples, MagNet vs NRE, Section 4.4); the
protocol is :mod:`nre_tf.adversarial`.

    python -m nre_tf.table3 --dataset=mnist5k --scale=quick [--substitute=cnn|mlp]

Prints the table (``values``) with the column we add, the clean accuracy after refinement (``clean_refined``,
epsilon 0); stops with one ``error:`` line (exit 2, no ``metrics.json``) when refinement destroys clean accuracy.
``--strategy`` other than default is refused.
"""
from common import flags as cflags
from nre_tf import cli
from nre_tf.config import NREConfig

cflags.define_config_flags(NREConfig, groups=("table3",))
cli.set_default_lambdas((0.6, 0.2, 0.2))

main = cflags.entry_main(NREConfig, "nre_tf.adversarial", cli.json_report(
    show=("dataset", "scale", "target_accuracy", "substitute_accuracy", "no_defence", "clean_refined", "values",
          "reformer_loss", "wall_seconds")))

if __name__ == "__main__":
    cflags.run(main)
