r"""Train one self-supervised image pretext task on one normal class and evaluate it as an anomaly detector.

    python -m permutation_tf.train_image --task=jigsaw --dataset=fashion_mnist --normal_class=0 --scale=quick
    python -m permutation_tf.train_image --task=rotnet --dataset=cifar100 --normal_class=17 --scale=paper
    python -m permutation_tf.train_image --task=colorization --dataset=image_folder --data_dir=/data/imagenet20 \
        --normal_class=3 --export_dir=exports

Tasks (Section IV-C of the permutation paper): jigsaw, colorization, inpainting, counting, splitbrain, rotnet.
Flags and ``main`` only: the flags are the fields of :class:`permutation_tf.image.config.ImageTaskConfig`; the
run is :func:`permutation_tf.image.pipeline.run`.
"""
from __future__ import annotations

from common import flags as cflags
from permutation_tf.image.config import ImageTaskConfig

cflags.define_config_flags(ImageTaskConfig)


main = cflags.entry_main(ImageTaskConfig, "permutation_tf.image.pipeline")

if __name__ == "__main__":
    cflags.run(main)
