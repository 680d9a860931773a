"""Train NRE on one dataset: the plain AE (module A), then E_phi + D with Eq. 5; optional SavedModel export.

    python -m nre_tf.train --dataset=mnist5k --lambdas=0.5,0.2,0.3 --T=1 --clusters=0 --scale=quick \
        [--export_dir=exports] [--strategy=mirrored]

Datasets: mnist, mnist5k, fashion_mnist (28x28, conv AE), ucsd_ped2 (30x30 patches of the normal training
frames, conv AE), image_folder (``--data_dir`` = root of ``<class>/*.jpg``, resized to 227x227, AlexNet AE).
The export's ``serving_default`` maps ``images`` (float32 in [0, 1], (N, H, W, C)) to ``anomaly_score``
(per-image mean squared reconstruction error, Section 4.5), ``latent`` (E_phi(X)) and ``reconstruction``; it is
reloaded and compared in a fresh process. The run itself: :mod:`nre_tf.experiment`.
"""
from common import flags as cflags
from nre_tf import cli
from nre_tf.config import NREConfig

cflags.define_config_flags(NREConfig, groups=())

main = cflags.entry_main(NREConfig, "nre_tf.experiment", cli.json_report())

if __name__ == "__main__":
    cflags.run(main)
