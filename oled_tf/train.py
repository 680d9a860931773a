"""Train and evaluate OLED on one dataset / normal class; optionally export a SavedModel.

    python -m oled_tf.train --dataset=mnist --normal_class=3 --scale=quick [--workdir=DIR] [--export_dir=DIR]
    python -m oled_tf.train --dataset=ucsd --data_dir=/data/UCSD_Anomaly_Dataset.v1p2 --scale=paper
    python -m oled_tf.train --dataset=cifar10 --normal_class=0 --strategy=mirrored     # all local GPUs

Writes into ``--workdir``: ``config.json`` (resolved config), ``log.csv`` and TensorBoard logs, resumable
checkpoints, ``selection/`` (best epoch per score), ``figures/*.png`` and ``metrics.json`` (every score's AUROC,
plus EER for UCSD). Every flag is a field of :class:`oled_tf.config.OLEDConfig` (help, allowed values and
bounds there); the run itself is :func:`oled_tf.experiment.run`.
"""
from __future__ import annotations

from common import flags as cflags
from oled_tf.config import OLEDConfig

cflags.define_config_flags(OLEDConfig)


main = cflags.entry_main(OLEDConfig, "oled_tf.experiment")

if __name__ == "__main__":
    cflags.run(main)
