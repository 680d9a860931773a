"""Train one self-supervised image pretext task on one normal class and evaluate it as an anomaly detector.

    python -m permutation_tf.train_image --task=jigsaw --dataset=fashion_mnist --normal_class=0 --scale=quick
    python -m permutation_tf.train_image --task=rotnet --dataset=cifar100 --normal_class=17 --scale=paper
    python -m permutation_tf.train_image --task=colorization --dataset=image_folder --data_dir=/data/imagenet20 \
        --normal_class=3 --export_dir=exports

Tasks (Section IV-C of the permutation paper): jigsaw, colorization, inpainting, counting, splitbrain, rotnet.
Only this module reads flags: ``main`` builds an :class:`ImageTaskConfig` and calls
:func:`permutation_tf.image.pipeline.run`.
"""
from __future__ import annotations

import logging

from absl import app, flags

from common import flags as cflags
from common.errors import ConfigError, exit_on_error
from permutation_tf.image.config import ImageTaskConfig
from permutation_tf.image.tasks import TASK_NAMES

flags.DEFINE_enum("task", "rotnet", TASK_NAMES, "The pretext task (Section IV-C).")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate (paper silent; GEOM's code: Keras default 1e-3).")
flags.DEFINE_integer("train_limit", None, "Use at most this many training images of the normal class (0 = all; "
                     "default: the --scale preset).")
flags.DEFINE_integer("test_limit", None, "Stratified subset of the test set (0 = all; default: the preset).")
flags.DEFINE_integer("image_size", None, "Side of the square network input (default 32; image folders 64).")
flags.DEFINE_integer("color_bins", 10, "Colorization / Split-Brain: quantisation bins per channel.")
flags.DEFINE_integer("n_counts", 1000, "Counting: length of the count vector (Noroozi et al.: 1000).")
flags.DEFINE_float("count_margin", 10.0, "Counting: margin M of the contrastive term (Noroozi et al.: 10).")
flags.DEFINE_boolean("floor", True, "Also compute the PCA-20 reconstruction floor on the same split.")

FLAGS = flags.FLAGS


def config_from_flags() -> ImageTaskConfig:
    common = cflags.common_values()
    common["jit_compile"] = cflags.parse_jit_compile(common["jit_compile"])
    return ImageTaskConfig.from_flags(
        common, task=FLAGS.task, learning_rate=FLAGS.learning_rate, train_limit=FLAGS.train_limit,
        test_limit=FLAGS.test_limit, image_size=FLAGS.image_size, color_bins=FLAGS.color_bins,
        n_counts=FLAGS.n_counts, count_margin=FLAGS.count_margin, floor=FLAGS.floor)


@exit_on_error
def main(argv):
    if len(argv) > 1:
        raise ConfigError(f"unexpected arguments {argv[1:]}; all options are --flags")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from permutation_tf.image.pipeline import run

    run(config_from_flags())


if __name__ == "__main__":
    app.run(main)
