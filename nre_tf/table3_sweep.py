"""What NRE's Table 3 depends on: one factor at a time around the Table 3 defaults, on one or more datasets
(issue 11, NRE item 4; the cells and what is shared between them: :mod:`nre_tf.adversarial_sweep`).

    python -m nre_tf.table3_sweep --datasets=mnist5k,fashion_mnist --scale=quick --workdir=runs/t3_sweep \
        [--factors=baseline,nre_epochs,T,lambdas,representation,ae_epochs,magnet_epochs,substitute,nre_seed]

The base configuration is ``nre_tf.table3``'s (the same flags: --lambdas default 0.6,0.2,0.2, --T, --epochs,
--ae_epochs, --magnet_epochs ...). Writes ``<workdir>/sweep.csv`` and ``<workdir>/sweep.md`` after every cell;
a killed sweep started again with the same flags resumes (finished cells are not run again).
"""
from absl import flags

from common import flags as cflags
from nre_tf import cli
from nre_tf.config import NREConfig

cflags.define_config_flags(NREConfig, groups=("table3",))
cli.set_default_lambdas((0.6, 0.2, 0.2))
flags.DEFINE_list("datasets", ["mnist5k", "fashion_mnist"], "Datasets of the sweep (Table 3 datasets: mnist, "
                  "mnist5k, fashion_mnist).")
flags.DEFINE_list("factors", ["baseline", "nre_epochs", "T", "lambdas", "representation", "ae_epochs",
                              "magnet_epochs", "substitute", "nre_seed"], "Factors to vary, one at a time.")
FLAGS = flags.FLAGS


def main(argv):
    import dataclasses

    from nre_tf import adversarial_sweep as sweep

    workdir = FLAGS.workdir or f"runs/nre_table3_sweep_{FLAGS.scale}"
    base = NREConfig.from_flags(cflags.flag_values(NREConfig))
    sweep.check_arguments(base, FLAGS.datasets, FLAGS.factors, FLAGS.dataset)
    base = cflags.preflight(base)
    for ds in FLAGS.datasets:  # every dataset's flags and folders checked before anything is trained
        cflags.preflight(dataclasses.replace(base, dataset=ds, workdir=f"{workdir}/{ds}"))
    sweep.run(base, FLAGS.datasets, workdir, FLAGS.factors, log=lambda m: print(m, flush=True))
    print(f"wrote {workdir}/sweep.csv and {workdir}/sweep.md")


if __name__ == "__main__":
    cflags.run(main)
