"""OLED run configuration: the paper's hyper-parameters as defaults, the authors' code values behind a switch,
and the smoke / quick / paper presets (which only cut epochs and data, never the architecture).

Paper (Section 4.1): t = 87.5, lambda = 1, gamma = 50, Adam(lr 5e-4, beta1 0.5, beta2 0.9), 300 epochs, model
selection on 150 inliers + 150 outliers from the training data. Where the paper is silent the authors' code is
used (reference notes 4.1): batch 1024 (MNIST-like, UCSD) / 256 (CIFAR-10), MM updated on every 3rd (MNIST-like,
UCSD) / 4th (CIFAR-10) epoch. ``code_defaults=True`` switches to everything the code did differently from the
paper: gamma 12.5 / 30 / 50 (MNIST / CIFAR-10 / UCSD), MM's CIFAR-10 loss without the context term, the TFP
"lower" percentile of the threshold unit, the authors' networks (``architecture="code"``: MG with BN only in its
second block, R's decoder without BN and clip, three UCSD output channels; oled_tf/networks.py) and 400 epochs at
``--scale=paper``.

``mask_gradient`` other than "faithful" is beyond the paper (a surrogate gradient through the threshold unit,
``oled_tf.networks.ThresholdUnit``); ``--code_defaults`` leaves it faithful.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from common.config import RunConfig, option
from common.errors import ConfigError

# How MG's gradient passes the threshold unit: "faithful" = Eq. 2 as written (the paper and the code); the other
# two are beyond the paper (oled_tf.networks.ThresholdUnit, oled_tf/README.md).
MASK_GRADIENTS = ("faithful", "straight_through", "smooth")
# "paper": the block structure of Sections 3.3 / 3.4.1; "code": the authors' networks (--code_defaults).
ARCHITECTURES = ("paper", "code")
DATASETS = ("mnist", "mnist5k", "fashion_mnist", "cifar10", "image_folder", "ucsd")
PROTOCOLS = ("auto", "memae", "ocgan", "one_vs_rest")
THRESHOLD_MODES = ("paper", "code")
MASKS = ("learned", "random")  # learned = OLED; random = the CAE ablation (Section 4.6)
SELECTIONS = ("s_avg", "per_score")
REDUCTIONS = ("mean", "norm")  # oled_tf.losses.REDUCTIONS (this module imports nothing heavy)

# Authors' code values per input kind (reference notes 4.1.6, 4.1.7, 4.1.9).
CODE_GAMMA = {"mnist": 12.5, "cifar": 30.0, "ucsd": 50.0}
CODE_MM_USES_CONTEXT = {"mnist": True, "cifar": False, "ucsd": True}
CODE_MASK_UPDATE_EVERY = {"mnist": 3, "cifar": 4, "ucsd": 3}
CODE_BATCH_SIZE = {"mnist": 1024, "cifar": 256, "ucsd": 1024}
CODE_EPOCHS = 400
PAPER_EPOCHS = 300
PAPER_GAMMA = 50.0
# Defaults of the issue-18 switches with the paper networks (evidence: docs/oled-notes.md "Issue 18").
DEFAULT_DECODER_BN = True    # paper 3.3 (the code: none; not clearly better in OLED runs, notes "Issue 18")
DEFAULT_OUTPUT_CLIP = False  # the code's (paper 3.3: clip to [-1, 1]; worse as a plain AE, notes "Issue 18")
DEFAULT_LOSS_REDUCTION = "norm"  # the paper's norms, under which gamma = 50 balances the terms (Sec. 4.1)
# Number of classes of the datasets with a fixed class list (--normal_class is checked before any data is read).
N_CLASSES = {"mnist": 10, "mnist5k": 10, "fashion_mnist": 10, "cifar10": 10}
# Quick epochs (docs/oled-notes.md "Issue 18", quick preset): sized so that the ten Fashion-MNIST classes (5,850
# training images each) take <= ~90 min on an idle 2-core CPU. Smaller training sets (mnist5k's 183 images per
# class, a small image folder) get more epochs, up to the same number of training images seen
# (QUICK_EPOCHS_DEFAULT x 5,850) and at most QUICK_MAX_EPOCHS (their per-epoch validation then dominates).
QUICK_EPOCHS_DEFAULT = 6
QUICK_FULL_TRAIN = 5850
QUICK_MAX_EPOCHS = 60


def quick_epochs(n_train: int | None) -> int:
    """Quick-preset epochs for ``n_train`` training images (None: unknown -> the default)."""
    if not n_train:
        return QUICK_EPOCHS_DEFAULT
    want = -(-QUICK_EPOCHS_DEFAULT * QUICK_FULL_TRAIN // int(n_train))
    return int(min(max(want, QUICK_EPOCHS_DEFAULT), QUICK_MAX_EPOCHS))


# mnist5k's MemAE split leaves 183 training images per class.
QUICK_EPOCHS = {"mnist5k": quick_epochs(183)}


def image_folder_channels(root) -> int | None:
    """1 when every image of an image folder (``<root>/<class>/*`` or ``<root>/{train,test}/<class>/*``) is gray,
    3 when one is not (as ``common.datasets.load_images`` decides, from the file headers only), None when the
    folder holds no images (``oled_tf.data`` then stops with the error that names the layout)."""
    from pathlib import Path

    from PIL import Image

    from common.data_images import IMAGE_EXTENSIONS, list_class_folders

    if not root or not Path(root).is_dir():
        return None
    root = Path(root)
    bases = [root / "train", root / "test"] if (root / "train").is_dir() and (root / "test").is_dir() else [root]
    files = [f for b in bases for fs in list_class_folders(b, IMAGE_EXTENSIONS)[1] for f in fs]
    if not files:
        return None
    for f in files:
        try:
            with Image.open(f) as im:
                if im.mode not in ("1", "L", "LA"):
                    return 3
        except OSError:
            return None  # unreadable: data.py reports the file
    return 1


def image_folder_train_size(root, normal_class: int, n_val_inliers: int = 150) -> int | None:
    """Estimated training images of ``normal_class`` in an image folder, from the file listing only:
    ``<root>/train/<class>/`` minus the validation inliers (OCGAN-style), or 2/3 of ``<root>/<class>/`` minus
    them (MemAE-style, ``common.protocols.memae_mnist_split``); None when the folder cannot be listed."""
    from pathlib import Path

    from common.data_images import IMAGE_EXTENSIONS, list_class_folders

    if not root or not Path(root).is_dir():
        return None
    root = Path(root)
    ocgan = (root / "train").is_dir() and (root / "test").is_dir()
    _, files = list_class_folders(root / "train" if ocgan else root, IMAGE_EXTENSIONS)
    if not 0 <= normal_class < len(files):
        return None
    n = len(files[normal_class]) if ocgan else int(len(files[normal_class]) * 2 / 3)
    return max(n - n_val_inliers, 1)


def input_kind(dataset: str, channels: int | None = None) -> str:
    """The network family for a dataset: ``mnist`` (28x28x1), ``cifar`` (32x32x3) or ``ucsd`` (30x30x1)."""
    if dataset in ("mnist", "mnist5k", "fashion_mnist"):
        return "mnist"
    if dataset == "cifar10":
        return "cifar"
    if dataset == "ucsd":
        return "ucsd"
    if dataset == "image_folder":
        return "mnist" if channels == 1 else "cifar"
    raise ConfigError(f"OLED does not support --dataset={dataset!r}; choose one of {', '.join(DATASETS)}")


@dataclasses.dataclass
class OLEDConfig(RunConfig):
    """Everything one OLED run needs; ``None`` fields are filled by :meth:`resolved`."""

    method: ClassVar[str] = "oled"
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # Seconds on tiny data: checks the plumbing only.
        "smoke": dict(epochs=2, batch_size=16, train_limit=48, test_limit=64, n_val_inliers=8, n_val_outliers=8,
                      ucsd_test_videos=0, seg_images=16, bn_recalibration=True, validate_every=1),
        # ~8 minutes per Fashion-MNIST class on an idle 2-core CPU (docs/oled-notes.md "Issue 18"): all
        # training images of the normal class, QUICK_EPOCHS epochs, validation every 2nd epoch, a stratified
        # 600-image subset of the test set. Same networks and losses as the paper.
        "quick": dict(epochs=QUICK_EPOCHS_DEFAULT, batch_size=64, train_limit=0, test_limit=600, n_val_inliers=150,
                      n_val_outliers=150, ucsd_test_videos=3, seg_images=200, bn_recalibration=True,
                      validate_every=2),
        # The paper's settings (a GPU): all data, 300 epochs (400 with code_defaults), code batch sizes.
        "paper": dict(epochs=None, batch_size=None, train_limit=0, test_limit=0, n_val_inliers=150,
                      n_val_outliers=150, ucsd_test_videos=0, seg_images=500, bn_recalibration=False,
                      validate_every=1),
    }

    STRATEGIES: ClassVar[tuple[str, ...]] = ("default", "mirrored", "multi_worker")  # OLED trains through
    # common.multiplayer.MultiPlayerModel: per-replica loss weighting and metric all-reduce under any strategy.
    CODE_ROOTS: ClassVar[tuple[str, ...]] = ("oled_tf.experiment",)

    # Objective (Section 4.1) and its code variants.
    t: float = option(87.5, "Threshold t of the threshold unit: the top (100 - t)% activations are masked (a "
                      "percentage in (0, 100)).", minimum=0.0, exclusive_minimum=True, maximum=100.0,
                      exclusive_maximum=True)
    gamma: float | None = option(None, "Weight of L_cont (paper: 50; with --code_defaults 12.5 / 30 / 50 for MNIST "
                                 "/ CIFAR-10 / UCSD).", minimum=0.0)
    lambda_rec: float = option(1.0, "Weight lambda of L_rec (paper: 1).", minimum=0.0)
    mask_update_every: int | None = option(None, "Train MM on epochs with epoch % N == 0 (paper silent; default the "
                                           "authors' code: 3 for MNIST-like and UCSD, 4 for CIFAR-10; 1 = every "
                                           "epoch).", minimum=0, exclusive_minimum=True)
    mm_uses_context: bool | None = option(None, "MM's objective includes the context term L_cont (paper: yes; "
                                          "default: yes, or the authors' code with --code_defaults: not on "
                                          "CIFAR-10).")
    threshold_eps: float = option(1e-12, "The 'infinitesimal' eps of Eq. 2 (code: 1e-12).", minimum=0.0,
                                  exclusive_minimum=True)
    threshold_mode: str | None = option(None, "How many pixels T masks: 'paper' = round((100-t)% of the pixels), "
                                        "'code' = the TFP lower percentile of the authors' code (default: paper, "
                                        "or code with --code_defaults).", choices=THRESHOLD_MODES)
    code_defaults: bool = option(False, "Use the authors' code values where they differ from the paper: gamma per "
                                 "dataset, CIFAR MM loss without L_cont, TFP 'lower' percentile, the authors' "
                                 "networks, 400 epochs.")
    architecture: str | None = option(None, "Networks: paper (Sections 3.3, 3.4.1) or code (the authors' scripts); "
                                      "default: paper, or code with --code_defaults.", choices=ARCHITECTURES)
    decoder_bn: bool | None = option(None, "BN in every block of R's decoder (paper 3.3: yes; the authors' code: "
                                     "no). Default: yes, the paper's (the code's decoder without BN was better as a "
                                     "plain auto-encoder but not in short OLED runs, docs/oled-notes.md "
                                     "'Issue 18'); --nodecoder_bn gives the code's.")
    output_clip: bool | None = option(None, "Clip R's output to [-1, 1] (paper 3.3: yes; the authors' code: no). "
                                      "Default: no, the code's (the clip cost 1-3.5 AUROC points as a plain "
                                      "auto-encoder, docs/oled-notes.md 'Issue 18'); --output_clip restores the "
                                      "paper text.")
    loss_reduction: str | None = option(None, "Reading of the norms of Eq. 5-7: 'mean' = the authors' code "
                                        "(means over all pixels, L_cont L1 averaged over all pixels); 'norm' = the "
                                        "paper's norms per sample (squared L2 for L_mask / L_rec, unsquared L2 "
                                        "for L_cont), batch mean. Default: norm (mean with --code_defaults).",
                                        choices=REDUCTIONS)
    mm_adam_epsilon: float = option(1e-7, "Adam epsilon of MM's optimizer (paper silent; the code: the Keras "
                                    "default 1e-7). MG's faithful gradient through T is rounding noise of "
                                    "~1e-6 (mean reduction); an epsilon well above it damps MG's random steps.",
                                    minimum=0.0, exclusive_minimum=True)
    mg_bn_frozen: bool = option(False, "BEYOND THE PAPER: on epochs where MM is not trained, run MG's BN in "
                                "inference mode (moving statistics frozen), so the masks R trains on equal the "
                                "inference masks and only change on MM epochs.")
    selection: str = option("s_avg", "Model selection on the validation set: s_avg = one epoch (best validation "
                            "s_avg) for all four scores; per_score = each score at its own best epoch (the "
                            "authors' code).", choices=SELECTIONS)
    validate_every: int | None = option(None, "Validate (and possibly select) every k-th epoch and at the last "
                                        "one (default: the preset; 1 = every epoch, as the paper).", minimum=0,
                                        exclusive_minimum=True)
    mask_gradient: str = option("faithful", "Backward pass of the threshold unit: faithful = Eq. 2 (paper, code); "
                                "BEYOND THE PAPER: straight_through (Eq. 2 forward, sigmoid-surrogate gradient) or "
                                "smooth (sigmoid mask forward and backward).", choices=MASK_GRADIENTS)
    mask_temperature: float = option(0.5, "Width of the beyond-paper sigmoid surrogate, in units of the sample's "
                                     "activation-map std (only with --mask_gradient other than faithful).",
                                     minimum=0.0, exclusive_minimum=True)
    learning_rate: float = option(5e-4, "Adam learning rate of both players (paper: 5e-4).", minimum=0.0,
                                  exclusive_minimum=True)
    beta_1: float = option(0.5, "Adam beta_1 of both players (paper: 0.5).", minimum=0.0, maximum=1.0)
    beta_2: float = option(0.9, "Adam beta_2 of both players (paper: 0.9).", minimum=0.0, maximum=1.0)
    mask: str = option("learned", "learned = OLED; random = the context auto-encoder ablation (Section 4.6, "
                       "Table 4): a random --random_mask_size square masked instead of MM.", choices=MASKS)
    random_mask_size: int = option(10, "Side of the random square of the CAE ablation.", minimum=0,
                                   exclusive_minimum=True)
    # Data and protocol.
    protocol: str = option("auto", "One-class protocol (auto: memae for mnist/mnist5k, ocgan for "
                           "cifar10/fashion_mnist; see oled_tf/data.py).", choices=PROTOCOLS)
    train_limit: int | None = option(None, "Use at most this many training images / patches (0 = all; default: "
                                     "the --scale preset).", minimum=0)
    test_limit: int | None = option(None, "Stratified subset of the test set (0 = all; default: the preset).",
                                    minimum=0)
    n_val_inliers: int | None = option(None, "Validation inliers for model selection (paper: 150; default: the "
                                       "preset).", minimum=0)
    n_val_outliers: int | None = option(None, "Validation outliers for model selection (paper: 150; default: the "
                                        "preset).", minimum=0)
    ucsd_patch_stride: int = option(30, "Stride of the 30x30 UCSD patches (30 = non-overlapping).", minimum=0,
                                    exclusive_minimum=True)
    ucsd_test_videos: int | None = option(None, "Evaluate on the first N UCSD test videos (0 = all; default: the "
                                          "preset).", minimum=0)
    seg_images: int | None = option(None, "Table 5: test inliers and outliers used for the pixel AUROC of the mask "
                                    "generator as a segmenter (default: the preset).", minimum=0)
    eval_batch_size: int = option(256, "Batch size of scoring (evaluation, selection, figures).", minimum=0,
                                  exclusive_minimum=True)
    # Recompute BN moving statistics from (up to 1024) training images before every evaluation: a correction
    # for short runs, not in the paper (see OLED.recalibrate_batch_norm); on for smoke/quick, off for paper.
    bn_recalibration: bool | None = option(None, "Recompute BN moving statistics from training images before each "
                                           "evaluation (not in the paper; default: on for smoke/quick, off for "
                                           "paper).")
    figures: bool = option(True, "Write the Fig. 2/3 and Fig. 4 PNG files into <workdir>/figures.")
    # Reproduce the bug of the authors' UCSD test script (s_mask overwritten by s_rec); off = correct protocol.
    ucsd_smask_bug: bool = option(False, "Reproduce the authors' UCSD test-script bug (s_mask := s_rec).")

    def resolved(self):
        if self.scale == "quick" and self.epochs is None and self.dataset in QUICK_EPOCHS:
            self = dataclasses.replace(self, epochs=QUICK_EPOCHS[self.dataset])
        if (self.scale == "quick" and self.epochs is None and self.dataset == "image_folder"
                and not self.train_limit):
            self = dataclasses.replace(self, epochs=quick_epochs(image_folder_train_size(
                self.data_dir, self.normal_class, self.n_val_inliers if self.n_val_inliers is not None else 150)))
        cfg = super().resolved()
        if cfg.dataset is None:
            raise ConfigError("--dataset is required: one of " + ", ".join(DATASETS))
        if cfg.dataset not in DATASETS:
            raise ConfigError(f"OLED does not support --dataset={cfg.dataset!r}; choose one of {', '.join(DATASETS)}")
        # image_folder: the kind (network, batch size, MM schedule) follows the images' channels, as in data.py.
        kind = input_kind(cfg.dataset, image_folder_channels(cfg.data_dir) if cfg.dataset == "image_folder" else None)
        up: dict[str, Any] = {}
        if cfg.architecture is None:
            up["architecture"] = "code" if cfg.code_defaults else "paper"
        code_nets = up.get("architecture", cfg.architecture) == "code"
        if cfg.decoder_bn is None:
            up["decoder_bn"] = False if code_nets else DEFAULT_DECODER_BN
        if cfg.output_clip is None:
            up["output_clip"] = False if code_nets else DEFAULT_OUTPUT_CLIP
        if cfg.loss_reduction is None:
            up["loss_reduction"] = "mean" if cfg.code_defaults else DEFAULT_LOSS_REDUCTION
        if cfg.gamma is None:
            up["gamma"] = CODE_GAMMA[kind] if cfg.code_defaults else PAPER_GAMMA
        if cfg.mm_uses_context is None:
            up["mm_uses_context"] = CODE_MM_USES_CONTEXT[kind] if cfg.code_defaults else True
        if cfg.threshold_mode is None:
            up["threshold_mode"] = "code" if cfg.code_defaults else "paper"
        if cfg.mask_update_every is None:  # paper silent: the code's schedule
            up["mask_update_every"] = CODE_MASK_UPDATE_EVERY[kind]
        if cfg.epochs is None:
            up["epochs"] = CODE_EPOCHS if cfg.code_defaults else PAPER_EPOCHS
        if cfg.batch_size is None:  # paper silent: the code's batch size
            up["batch_size"] = CODE_BATCH_SIZE[kind]
        cfg = dataclasses.replace(cfg, **up)
        cfg.check_ranges()
        return cfg

    def check_ranges(self) -> None:
        """ConfigError for a --normal_class outside the dataset's classes (the bounds of single fields are
        checked by :meth:`common.config.RunConfig.check_fields` from their :func:`common.config.option`)."""
        n = N_CLASSES.get(self.dataset)
        if n is not None and not 0 <= self.normal_class < n:
            raise ConfigError(f"--normal_class={self.normal_class} is out of range for {self.dataset} ({n} classes: "
                              f"0..{n - 1})")
