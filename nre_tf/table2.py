"""Entry point of NRE Table 2 (AlexNet NRE pre-training on an image folder, then the PASCAL VOC 2007
classification columns, Section 4.3); the protocol is :mod:`nre_tf.voc_transfer`.

    python -m nre_tf.table2 --dataset=image_folder --data_dir=<folder> --voc_dir=<VOC root> --scale=quick
"""
from __future__ import annotations

from absl import flags

FLAGS = flags.FLAGS


def main(argv):
    from nre_tf.cli import table_main
    from nre_tf.voc_transfer import run

    table_main(argv, lambda cfg: run(cfg, require_voc=False), default_lambdas=(0.5, 0.25, 0.25),
               voc_dir=FLAGS.voc_dir)


if __name__ == "__main__":
    import nre_tf.train  # noqa: F401  (defines the flags)

    flags.DEFINE_string("voc_dir", None, "Root of PASCAL VOC 2007 (holding VOCdevkit/VOC2007).")
    from common import flags as cflags

    cflags.run(main, nre_tf.train)
