"""Entry point of NRE Table 2 (AlexNet NRE pre-training on an image folder, then the PASCAL VOC 2007
classification columns, Section 4.3); the protocol is :mod:`nre_tf.voc_transfer`.

    python -m nre_tf.table2 --dataset=image_folder --data_dir=<folder> --voc_dir=<VOC root> --scale=quick

Without ``--voc_dir`` only the pre-training runs (a note says so). ``--strategy`` other than default is refused.
"""
from common import flags as cflags
from nre_tf import cli
from nre_tf.config import NREConfig

cflags.define_config_flags(NREConfig, groups=("table2",))
cli.set_default_lambdas((0.5, 0.25, 0.25))

main = cflags.entry_main(NREConfig, "nre_tf.voc_transfer", cli.json_report(),
                         run_kwargs={"require_voc": False})

if __name__ == "__main__":
    cflags.run(main)
