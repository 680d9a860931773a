"""Run configuration of "Learning to Spot Artifacts": the paper's values as defaults, the authors' code values
behind ``code_defaults`` (or one field each), the Table 1 ablation letter, and the smoke / quick / paper presets
(which cut images and epochs, never the architecture).

Paper (Sec. 4.4, 5.1): Adam lr 3e-4, beta1 0.5, linear decay to 3e-6; theta = 0.5 for the Table 1 baseline (0.7
for Tables 2-5); 400 epochs of unsupervised training on the 100k unlabelled STL-10 images, 200 epochs of transfer
on the 5k labelled ones. Paper silent, code used: batch 128 (the code's per-GPU batch), 500 AE epochs on STL-10
(the paper gives 80 for ImageNet only), L2 5e-5, BN decay 0.975. Transfer schedules the paper does not give:
VOC 2007 fine-tuning 80 epochs (``voc_epochs``, as nre_tf's VOC harness), the layer-wise logistic regressions 10
epochs of SGD at lr 0.01 (``layerwise_epochs``, ``layerwise_learning_rate``).

R's loss: Eq. 4 is written as the minimax game of [14] and trained "via adversarial training [14]"; the default is
[14]'s non-saturating generator loss (``generator_loss="non_saturating"``), ``minimax`` keeps Eq. 4 literally.

``code_defaults=True`` switches every value where the code differs from the paper: theta 0.7 (keep probability
0.3), leaky-ReLU slope 0.2, tanh decoder output, no BN before the repair block, BN in fc6, mask loss weight 0.1
and also on real images, R's extra kept-region MSE with weight 30, the code's generator loss, BN kept in the
transfer features.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from common.config import RunConfig, option
from common.errors import ConfigError

DATASETS = ("stl10", "image_folder", "fashion_mnist")
# table1: Table 1 (+ the Table 2 fold protocol); voc07: Table 3 VOC 2007 classification fine-tuned; layerwise:
# Tables 4-5 (conv1..conv5 frozen, pooled to ~9,200 values, one logistic regression per layer); none.
# probe: the CPU-scale protocol (frozen features computed once, standardised multinomial logistic regression with
# its regularisation chosen on a validation split, conv1..conv5 each as in Tables 4-5, with C's own initial weights
# as the paired floor and, with --floors, a random trunk, the AE encoder and raw pixels).
TRANSFER_PROTOCOLS = ("table1", "probe", "voc07", "layerwise", "none")
# (paper value, code value) of everything the two disagree on (reference notes 2.3-2.8).
PAPER_VS_CODE: dict[str, tuple[Any, Any]] = {
    "drop_rate": (0.5, 0.7),
    "lrelu_slope": (0.1, 0.2),
    "ae_output": ("lrelu", "tanh"),
    "repair_input_bn": (True, False),
    "fc6_bn": (False, True),
    "mask_loss_weight": (1.0, 0.1),
    "mask_on_real": (False, True),
    "repair_rec_weight": (0.0, 30.0),
    # Eq. 4 is written as the minimax game of [14] and trained "via adversarial training [14]"; [14] itself trains
    # the generator with the non-saturating -log D(G(z)) (saturating log(1 - D) has vanishing gradients once D
    # wins), which is also the flipped-label cross-entropy of the authors' code (docs/artifacts-notes.md,
    # "Generator loss"). "minimax" (Eq. 4 literally) stays a flag.
    "generator_loss": ("non_saturating", "code"),
    "transfer_conv5_bn": (False, True),
}

# Table 1 rows: letter -> (row label, SpotArtifacts keyword overrides relative to the baseline).
ABLATIONS: dict[str, tuple[str, dict]] = {
    "baseline": ("Baseline (dropping rate = 0.5)", {}),
    "a": ("(a) Input image as real", {"real_source": "input"}),
    "b": ("(b) Distributed vs. local repair network", {"repair": "local"}),
    "c": ("(c) Dropping rate = 0.1", {"drop_rate": 0.1}),
    "d": ("(d) Dropping rate = 0.3", {"drop_rate": 0.3}),
    "e": ("(e) Dropping rate = 0.7", {"drop_rate": 0.7}),
    "f": ("(f) Dropping rate = 0.9", {"drop_rate": 0.9}),
    "g": ("(g) Without mask prediction", {"mask_prediction": False}),
    "h": ("(h) 3 x 3 encoder convolutions", {"encoder_kernel": 3}),
    "i": ("(i) No gating in repair layers", {"gated": False}),
    "j": ("(j) No history of corrupted examples", {"history": False}),
    "k": ("(k) No repair network", {"repair": "none"}),
    "l": ("(l) GAN instead of damage & repair", {"generator": "gan", "real_source": "input",
                                                 "mask_prediction": False}),
}


def ablation_overrides(name: str) -> dict:
    if name not in ABLATIONS:
        raise ValueError(f"unknown ablation {name!r}; choose one of {', '.join(ABLATIONS)}")
    return dict(ABLATIONS[name][1])


@dataclasses.dataclass
class ArtifactsConfig(RunConfig):
    """Everything one run needs (autoencoder stage, game, transfer); ``None`` fields come from the preset."""

    method: ClassVar[str] = "artifacts"
    NOT_RESULT_FIELDS: ClassVar[tuple] = ("autoencoder_dir", "discriminator_dir")
    # The library module a run starts from (the run identity hashes it and the project modules it imports).
    CODE_ROOTS: ClassVar[tuple[str, ...]] = ("artifacts_tf.experiment",)
    # mirrored: the autoencoder stage and the game train under the strategy (tests/test_artifacts_run.py, two
    # logical CPU devices). multi_worker is refused: the autoencoder stage's Keras fit fails under
    # MultiWorkerMirroredStrategy (two workers on one host: "Attempt to convert a value (PerReplica ...) to a
    # Tensor" in the first AE step), and the game was never run that way.
    STRATEGIES: ClassVar[tuple[str, ...]] = ("default", "mirrored")
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # Seconds on tiny data (tests): checks the plumbing only.
        "smoke": dict(epochs=1, batch_size=8, ae_epochs=1, pretrain_limit=16, labelled_limit=40, test_limit=40,
                      transfer_epochs=1, history_size=16, folds=2, fold_size=20, voc_epochs=1,
                      layerwise_epochs=1, transfer="table1", ae_bn_images=16, monitor_every=0, monitor_images=8,
                      trend_snapshots=0),
        # An idle 2-core CPU (docs/artifacts-notes.md, "Quick preset"): the AE streams up to 60k unlabelled images
        # once (all of Fashion-MNIST: 1,875 steps of batch 32) and its BN statistics are re-estimated before it is frozen;
        # the game is one epoch over them (1,875 steps, the learning-rate decay spread over all of them), history
        # buffer on (10 batches, as 1,280 / 128 at paper scale); the CPU-scale probe (5,000 labels, 500 a class,
        # the full test set) instead of the paper's fc6-fc8 head. The networks and losses are the paper's.
        "quick": dict(epochs=1, batch_size=32, ae_epochs=1, pretrain_limit=60000, labelled_limit=5000,
                      test_limit=0, transfer_epochs=5, history_size=320, folds=10, fold_size=50, voc_epochs=2,
                      layerwise_epochs=2, transfer="probe", ae_bn_images=2048, monitor_every=125,
                      monitor_images=128, trend_snapshots=1),
        # The paper: all images, 400 epochs (code batch 128), 200 transfer epochs.
        "paper": dict(epochs=400, batch_size=128, ae_epochs=500, pretrain_limit=0, labelled_limit=0, test_limit=0,
                      transfer_epochs=200, history_size=1280, folds=10, fold_size=0, voc_epochs=80,
                      layerwise_epochs=10, transfer="table1", ae_bn_images=0, monitor_every=1000,
                      monitor_images=128, trend_snapshots=0),
    }

    ablation: str = option("baseline", "Table 1 row: baseline, (a) input image as real, (b) local repair, (c)-(f) "
                           "drop rate 0.1/0.3/0.7/0.9, (g) no mask prediction, (h) 3x3 encoder convs, (i) no gating, "
                           "(j) no history, (k) no repair network, (l) a standard GAN generator.",
                           choices=tuple(ABLATIONS))
    code_defaults: bool = option(False, "Use the authors' code values where they differ from the paper (theta 0.7, "
                                 "lrelu 0.2, tanh output, no repair input BN, fc6 BN, mask weight 0.1 and on reals, "
                                 "kept-region MSE 30, the code's generator loss, conv5 BN kept for transfer).")
    # The game (None = paper value, or the code's with code_defaults; the ablation letter may override).
    drop_rate: float | None = option(None, "theta, the probability of dropping an encoder position (paper Table 1 "
                                     "baseline 0.5; code 0.7), in (0, 1). Overridden by the ablations (c)-(f).",
                                     minimum=0.0, exclusive_minimum=True, maximum=1.0, exclusive_maximum=True)
    lrelu_slope: float | None = option(None, "Leaky-ReLU slope of E, D and R (paper 0.1, code 0.2).", minimum=0.0)
    ae_output: str | None = option(None, "Last decoder activation (paper lrelu, code tanh).",
                                   choices=("lrelu", "tanh"))
    repair_input_bn: bool | None = option(None, "BN before the mask concatenation in each repair block (paper "
                                          "Fig. 5: yes; code: no).")
    fc6_bn: bool | None = option(None, "BN in the discriminator's fc6 (paper: no, BN only after conv5; code: yes).")
    mask_loss_weight: float | None = option(None, "Weight of L_mask (Eq. 5) in C's loss (paper 1; code 0.1).",
                                            minimum=0.0)
    mask_on_real: bool | None = option(None, "Also train C^mask on real images with an all-kept target (code).")
    repair_rec_weight: float | None = option(None, "Weight of the code's kept-region MSE in R's loss (paper 0, "
                                             "code 30).", minimum=0.0)
    generator_loss: str | None = option(None, "R's side of Eq. 4: non_saturating (default: -log C(x_hat), Eq. 4 "
                                        "trained as in [14], also the code's flipped labels), minimax (Eq. 4 "
                                        "literally, log(1 - C(x_hat))), code (the authors' code as read; see "
                                        "artifacts_tf/losses.py).",
                                        choices=("minimax", "non_saturating", "code"))
    transfer_conv5_bn: bool | None = option(None, "Keep conv5's BN in the transfer features (code) instead of "
                                            "removing it (paper Sec. 4.4).")
    history_size: int | None = option(None, "Capacity of the buffer of corrupted examples (paper silent; default: "
                                      "the --scale preset).", minimum=1)
    learning_rate: float = option(3e-4, "Adam learning rate of both players (paper 3e-4).", minimum=0.0,
                                  exclusive_minimum=True)
    final_learning_rate: float = option(3e-6, "Learning rate reached by the linear decay (paper 3e-6).",
                                        minimum=0.0)
    beta_1: float = option(0.5, "Adam beta1 (paper 0.5).", no_flag=True)
    image_size: int = option(96, "Side of the square images fed to the networks (96 = STL-10), a multiple of 16, "
                             ">= 32.")
    augment: bool = option(True, "Random resized crops and flips during training (paper Sec. 5.2.1).")
    # Autoencoder stage: its own epochs; ``autoencoder_dir`` reuses (or creates) a pre-trained AE there.
    ae_epochs: int | None = option(None, "Autoencoder pre-training epochs (default: the --scale preset).",
                                   minimum=0, exclusive_minimum=True)
    autoencoder_dir: str | None = option(None, "--workdir of an earlier run whose frozen autoencoder to reuse "
                                         "(checked against its run identity and the weights' recorded sha256). "
                                         "Default: train it here.")
    # Set by experiment.run from --autoencoder_dir: common.run_identity.frozen_weights_id of the reused
    # autoencoder, so this run's identity changes when that run is retrained (the folder's path is not a result
    # field).
    autoencoder_id: str | None = option(None, no_flag=True)
    # Data: 0 = all.
    pretrain_limit: int | None = option(None, "Unlabelled images for the AE and the game (0 = all).", minimum=0)
    labelled_limit: int | None = option(None, "Labelled images for transfer, class-balanced (0 = all).", minimum=0)
    test_limit: int | None = option(None, "Test images, class-balanced (0 = all).", minimum=0)
    # Transfer (Table 1 protocol: frozen conv, re-initialised fc6-fc8) and the Table 2 fold protocol.
    # "autoencoder": stop after the AE stage (a run whose frozen AE other runs reuse with --autoencoder_dir).
    stage: str = option("all", "all: AE stage, game, transfer; autoencoder: stop after the AE stage (a run to reuse "
                        "with --autoencoder_dir).", choices=("all", "autoencoder"))
    transfer: str | None = option(None, "Transfer protocol after pre-training (default: the --scale preset: "
                                  "table1 at paper scale, probe at quick): table1 (Table 1: frozen conv, "
                                  "re-initialised fc6-fc8; plus the Table 2 fold protocol), probe (CPU scale: frozen "
                                  "conv1..conv5 features computed once, standardised multinomial logistic regression "
                                  "per layer with its regularisation chosen on a validation split of the labelled "
                                  "images; rows C, C's own initial weights and, with --floors, a random trunk, the AE "
                                  "encoder, raw pixels; plus the Table 2 fold protocol), voc07 (Table 3: the 227x227 "
                                  "AlexNet initialised from C's conv layers, fine-tuned on VOC 2007 classification, "
                                  "mAP), layerwise (Tables 4-5: conv1..conv5 frozen, pooled to ~9,200 values, one "
                                  "logistic regression per layer on an image folder), none.",
                                  choices=TRANSFER_PROTOCOLS)
    probe_val_fraction: float = option(0.2, "probe: fraction of each class of the labelled images held out to "
                                       "choose the logistic regression's regularisation (then refit on all).",
                                       minimum=0.0, exclusive_minimum=True, maximum=1.0, exclusive_maximum=True)
    ae_bn_images: int | None = option(None, "Re-estimate the autoencoder's BN statistics on this many training "
                                      "images (cumulative average, training-mode passes) before freezing it (0 = "
                                      "keep the moving averages; beyond the paper; default: the --scale preset).",
                                      minimum=0)
    monitor_every: int | None = option(None, "Every this many game steps: C's real / fake / mask accuracy and R's "
                                       "gradient under both forms of Eq. 4 on held-out images, R's and C's loss "
                                       "over the interval, the step time; printed and in metrics.json (0 = off; "
                                       "default: the --scale preset).", minimum=0)
    monitor_images: int | None = option(None, "Held-out (test) images of the --monitor_every gates.", minimum=1)
    trend_snapshots: int | None = option(None, "probe: also probe C at this many evenly spaced points of the game "
                                         "(its trunk saved there), the trend against game steps (0 = off).",
                                         minimum=0)
    transfer_epochs: int | None = option(None, "Epochs of the fully connected head (paper 200).", minimum=0,
                                         exclusive_minimum=True)
    transfer_learning_rate: float = option(1e-3, "Adam learning rate of the transfer heads.", no_flag=True)
    floors: bool = option(False, "Also transfer from randomly initialised conv layers and from the frozen AE "
                          "encoder (same protocol).")
    folds: int | None = option(None, "Table 2: number of folds of the linear protocol (0 = skip).", minimum=0)
    fold_size: int | None = option(None, "Table 2: labelled images per fold when the dataset has no predefined "
                                   "folds (STL-10 has ten of 1,000).", minimum=0)
    # Table 2 "conv1-conv5 finetuned": also run the fold protocol with the whole trunk trainable.
    finetune_folds: bool = option(False, "Table 2 'conv1-conv5 finetuned': also run the fold protocol with the "
                                  "whole trunk trainable (a linear classifier on conv5 per fold, trunk fine-tuned).")
    # Tables 3-5: the protocol's own data (VOC root; an image folder with train/ and val/), and optionally the
    # finished run whose discriminator trunk to transfer instead of pre-training here (checked like
    # autoencoder_dir; its common.run_identity.frozen_weights_id goes into discriminator_id).
    transfer_data_dir: str | None = option(None, "Data of --transfer=voc07 (the PASCAL VOC 2007 root, "
                                           "VOCdevkit/VOC2007) or --transfer=layerwise (an image folder with "
                                           "train/<class>/ and val/<class>/, classes may be nested: ImageNet, "
                                           "Places).")
    discriminator_dir: str | None = option(None, "--workdir of an earlier finished run whose discriminator conv "
                                           "layers to transfer with --transfer=voc07|layerwise instead of "
                                           "pre-training here (its config must match this run's pre-training "
                                           "flags; the weights must match their recorded sha256).")
    discriminator_id: str | None = option(None, no_flag=True)
    voc_epochs: int | None = option(None, "Epochs of VOC 2007 fine-tuning for --transfer=voc07 (default: the "
                                    "--scale preset; paper silent).", minimum=0, exclusive_minimum=True)
    layerwise_epochs: int | None = option(None, "Epochs of the layer-wise logistic regressions for "
                                          "--transfer=layerwise (default: the --scale preset; paper silent).",
                                          minimum=0, exclusive_minimum=True)
    layerwise_learning_rate: float = option(0.01, "SGD learning rate of the layer-wise logistic regressions "
                                            "(decayed linearly to 1 %; paper silent).", minimum=0.0,
                                            exclusive_minimum=True)
    eval_batch_size: int = option(100, "Batch size of feature extraction.", no_flag=True)
    figures: bool = option(True, "Write the Fig. 6-style PNG into <workdir>/figures.")

    def resolved(self):
        trend_from_preset = self.trend_snapshots is None
        cfg = super().resolved()
        if cfg.dataset is None:
            raise ConfigError("--dataset is required: one of " + ", ".join(DATASETS))
        if cfg.dataset not in DATASETS:
            raise ConfigError(f"--dataset={cfg.dataset!r} is not supported; choose one of {', '.join(DATASETS)}")
        if cfg.stage == "autoencoder" and cfg.autoencoder_dir:
            raise ConfigError("--stage=autoencoder trains an autoencoder; leave out --autoencoder_dir")
        if trend_from_preset and cfg.transfer != "probe":   # the preset's trend probe belongs to the probe
            cfg = dataclasses.replace(cfg, trend_snapshots=0)
        if cfg.trend_snapshots and cfg.transfer != "probe":
            raise ConfigError(f"--trend_snapshots probes C during the game with --transfer=probe, not "
                              f"--transfer={cfg.transfer}")
        if cfg.transfer in ("voc07", "layerwise") and not cfg.transfer_data_dir:
            what = "the PASCAL VOC 2007 root" if cfg.transfer == "voc07" else "an image folder with train/ and val/"
            raise ConfigError(f"--transfer={cfg.transfer} needs --transfer_data_dir ({what})")
        if cfg.discriminator_dir and cfg.transfer in ("table1", "probe", "none"):
            raise ConfigError("--discriminator_dir transfers an earlier run's trunk with --transfer=voc07 or "
                              "layerwise; Table 1 / Table 2 transfer the discriminator of the run itself")
        if cfg.discriminator_dir and (cfg.stage != "all" or cfg.autoencoder_dir):
            raise ConfigError("--discriminator_dir replaces the autoencoder stage and the game; leave out --stage "
                              "and --autoencoder_dir")
        if cfg.discriminator_dir and cfg.strategy != "default":
            raise ConfigError(f"--strategy={cfg.strategy} distributes the autoencoder stage and the game; a "
                              "--discriminator_dir run trains only the transfer protocols, on one device: leave out "
                              "--strategy")
        if cfg.image_size % 16 or cfg.image_size < 32:
            raise ConfigError(f"--image_size must be a multiple of 16 and >= 32, got {cfg.image_size}")
        up: dict[str, Any] = {}
        for name, (paper, code) in PAPER_VS_CODE.items():
            if getattr(cfg, name) is None:
                up[name] = code if cfg.code_defaults else paper
        cfg = dataclasses.replace(cfg, **up)
        return cfg

    def model_kwargs(self) -> dict:
        """SpotArtifacts keyword arguments: the resolved values, then the ablation's overrides (Table 1)."""
        kw = dict(drop_rate=self.drop_rate, lrelu_slope=self.lrelu_slope, ae_output=self.ae_output,
                  repair_input_bn=self.repair_input_bn, fc6_bn=self.fc6_bn, mask_loss_weight=self.mask_loss_weight,
                  mask_on_real=self.mask_on_real, repair_rec_weight=self.repair_rec_weight,
                  generator_loss=self.generator_loss, history_size=self.history_size)
        over = ablation_overrides(self.ablation)
        kw.update({k: v for k, v in over.items() if k != "encoder_kernel"})
        return kw

    @property
    def encoder_kernel(self) -> int:
        return int(ablation_overrides(self.ablation).get("encoder_kernel", 2))
