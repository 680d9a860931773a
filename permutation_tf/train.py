r"""Train and evaluate the frame-permutation anomaly detector (or a TABLE IV video baseline) on one normal class.

    python -m permutation_tf.train --dataset=ucf101|imagenet_vid|video_folder|moving_fashion --normal_class=0 \
        [--method=permutation|rotnet|shuffle_learn|aot|sorting] [--m=5] [--skip=2] [--scale=quick|paper|smoke] \
        [--pooling=mean|max] [--test_permutations=1] [--export_dir=DIR] [--data_dir=DIR] [--workdir=DIR] \
        [--strategy=default|mirrored|multi_worker]

Flags and ``main`` only: the flags are the fields of :class:`permutation_tf.config.VideoConfig`; the run is
:func:`permutation_tf.pipeline.run` (the one-vs-all videos, training on the normal class's segments, the scores,
AUROC and PCA-20 floor, ``metrics.json``, the optional export checked in a fresh process).
"""
from __future__ import annotations

from common import flags as cflags
from permutation_tf.config import VideoConfig

cflags.define_config_flags(VideoConfig)


main = cflags.entry_main(VideoConfig, "permutation_tf.pipeline")

if __name__ == "__main__":
    cflags.run(main)
