"""What NRE's Table 3 depends on: one factor at a time around the Table 3 defaults, on one or more datasets
(issue 11, NRE item 4; the cells and what is shared between them: :mod:`nre_tf.adversarial_sweep`).

    python -m nre_tf.table3_sweep --datasets=mnist5k,fashion_mnist --scale=quick --workdir=runs/t3_sweep \
        [--factors=baseline,nre_epochs,T,lambdas,representation,ae_epochs,magnet_epochs,substitute,nre_seed]

The base configuration is ``nre_tf.table3``'s (the same flags: --lambdas default 0.6,0.2,0.2, --T, --epochs,
--ae_epochs, --magnet_epochs ...). Writes ``<workdir>/sweep.csv`` and ``<workdir>/sweep.md`` after every cell;
a killed sweep started again with the same flags resumes (finished cells are not run again).
"""
from __future__ import annotations

from absl import flags

FLAGS = flags.FLAGS


def main(argv):
    import dataclasses

    from common.errors import ConfigError
    from nre_tf import adversarial_sweep as sweep
    from nre_tf.train import config_from_flags

    if len(argv) > 1:
        raise ConfigError(f"unexpected arguments {list(argv[1:])}; all options are --flags")
    if FLAGS.dataset is not None:
        raise ConfigError("the sweep takes --datasets (comma-separated), not --dataset")
    unknown = sorted(set(FLAGS.factors) - set(sweep.FACTORS))
    if unknown:
        raise ConfigError(f"unknown --factors {', '.join(unknown)}; choose from {', '.join(sweep.FACTORS)}")
    bad = [d for d in FLAGS.datasets if d not in ("mnist", "mnist5k", "fashion_mnist")]
    if bad or not FLAGS.datasets:
        raise ConfigError(f"--datasets must list Table 3 datasets (mnist, mnist5k, fashion_mnist), got "
                          f"{','.join(FLAGS.datasets) or 'none'}")
    workdir = FLAGS.workdir or f"runs/nre_table3_sweep_{FLAGS.scale}"
    base = config_from_flags(default_lambdas=(0.6, 0.2, 0.2))
    for ds in FLAGS.datasets:  # every dataset's flags and folders checked before anything is trained
        from common import flags as cflags

        cflags.preflight(dataclasses.replace(base, dataset=ds, workdir=f"{workdir}/{ds}"))
    sweep.run(base, FLAGS.datasets, workdir, FLAGS.factors, log=lambda m: print(m, flush=True))
    print(f"wrote {workdir}/sweep.csv and {workdir}/sweep.md")


if __name__ == "__main__":
    import nre_tf.train  # noqa: F401  (defines the shared and NRE flags)

    flags.DEFINE_list("datasets", ["mnist5k", "fashion_mnist"], "Datasets of the sweep (Table 3 datasets: mnist, "
                      "mnist5k, fashion_mnist).")
    flags.DEFINE_list("factors", ["baseline", "nre_epochs", "T", "lambdas", "representation", "ae_epochs",
                                  "magnet_epochs", "substitute", "nre_seed"], "Factors to vary, one at a time.")
    from common import flags as cflags

    cflags.run(main, nre_tf.train)
