"""Learning to Spot Artifacts end to end: autoencoder pre-training (then frozen), the damage & repair game,
transfer (Table 1 and Table 2 protocols, with the two floors; or Table 3 VOC 2007 / the Tables 4-5 layer-wise
protocol), Fig. 6 renderings and SavedModel export.

    python -m artifacts_tf.train --dataset=fashion_mnist --scale=quick [--ablation=baseline|a|...|l]
        [--workdir=DIR] [--export_dir=DIR] [--floors] [--autoencoder_dir=DIR] [--finetune_folds]
    python -m artifacts_tf.train --dataset=stl10 --data_dir=/data --scale=paper --code_defaults
    python -m artifacts_tf.train --dataset=image_folder --data_dir=<imagenet> --image_size=128 --ablation=e
        --transfer=layerwise --transfer_data_dir=<places> --discriminator_dir=<that pre-training run>

Flags and ``main`` only: the flags are generated from :class:`artifacts_tf.config.ArtifactsConfig`, the run is
:func:`artifacts_tf.experiment.run` (what it writes into ``--workdir`` is described there).
"""
from common import flags as cflags
from artifacts_tf.config import ArtifactsConfig

cflags.define_config_flags(ArtifactsConfig)


main = cflags.entry_main(ArtifactsConfig, "artifacts_tf.experiment")

if __name__ == "__main__":
    cflags.run(main)
