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

from common.config import RunConfig
from common.errors import ConfigError, check_non_negative, check_positive

# How MG's gradient passes the threshold unit: "faithful" = Eq. 2 as written (the paper and the code); the other
# two are beyond the paper (oled_tf.networks.ThresholdUnit, oled_tf/README.md).
MASK_GRADIENTS = ("faithful", "straight_through", "smooth")
# "paper": the block structure of Sections 3.3 / 3.4.1; "code": the authors' networks (--code_defaults).
ARCHITECTURES = ("paper", "code")
DATASETS = ("mnist", "mnist5k", "fashion_mnist", "cifar10", "image_folder", "ucsd")
PROTOCOLS = ("auto", "memae", "ocgan", "one_vs_rest")

# Authors' code values per input kind (reference notes 4.1.6, 4.1.7, 4.1.9).
CODE_GAMMA = {"mnist": 12.5, "cifar": 30.0, "ucsd": 50.0}
CODE_MM_USES_CONTEXT = {"mnist": True, "cifar": False, "ucsd": True}
CODE_MASK_UPDATE_EVERY = {"mnist": 3, "cifar": 4, "ucsd": 3}
CODE_BATCH_SIZE = {"mnist": 1024, "cifar": 256, "ucsd": 1024}
CODE_EPOCHS = 400
PAPER_EPOCHS = 300
PAPER_GAMMA = 50.0
# Number of classes of the datasets with a fixed class list (--normal_class is checked before any data is read).
N_CLASSES = {"mnist": 10, "mnist5k": 10, "fashion_mnist": 10, "cifar10": 10}
# mnist5k's MemAE split leaves 183 training images per class, fewer than the quick preset's 600: more epochs.
QUICK_EPOCHS = {"mnist5k": 15}


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
                      ucsd_test_videos=0, seg_images=16, bn_recalibration=True),
        # ~1-2 minutes per normal class on 2 CPU cores (MNIST-like): a subsample of the training images, few
        # epochs, a stratified subsample of the test set. Same networks and losses as the paper.
        "quick": dict(epochs=6, batch_size=32, train_limit=400, test_limit=600, n_val_inliers=150,
                      n_val_outliers=150, ucsd_test_videos=3, seg_images=200, bn_recalibration=True),
        # The paper's settings (a GPU): all data, 300 epochs (400 with code_defaults), code batch sizes.
        "paper": dict(epochs=None, batch_size=None, train_limit=0, test_limit=0, n_val_inliers=150,
                      n_val_outliers=150, ucsd_test_videos=0, seg_images=500, bn_recalibration=False),
    }

    # Objective (Section 4.1) and its code variants.
    t: float = 87.5
    gamma: float | None = None
    lambda_rec: float = 1.0
    mask_update_every: int | None = None
    mm_uses_context: bool | None = None
    threshold_eps: float = 1e-12
    threshold_mode: str | None = None
    code_defaults: bool = False
    # Networks: "paper" (Sections 3.3, 3.4.1) or "code" (the authors' scripts); None = code with code_defaults.
    architecture: str | None = None
    # Backward pass of the threshold unit: "faithful" (Eq. 2, default) or beyond the paper "straight_through" /
    # "smooth" with a sigmoid surrogate of width mask_temperature x std(A) (oled_tf.networks.ThresholdUnit).
    mask_gradient: str = "faithful"
    mask_temperature: float = 0.5
    learning_rate: float = 5e-4
    beta_1: float = 0.5
    beta_2: float = 0.9
    # "learned" = OLED; "random" = the context auto-encoder ablation of Section 4.6 (Table 4).
    mask: str = "learned"
    random_mask_size: int = 10
    # Data and protocol.
    protocol: str = "auto"
    train_limit: int | None = None      # 0 = all training images (patches for UCSD)
    test_limit: int | None = None       # 0 = the whole test set; else a stratified random subset
    n_val_inliers: int | None = None
    n_val_outliers: int | None = None
    ucsd_patch_stride: int = 30
    ucsd_test_videos: int | None = None  # 0 = all test videos
    seg_images: int | None = None        # Table 5: test inliers and outliers used for the pixel AUROC
    eval_batch_size: int = 256
    # Recompute BN moving statistics from (up to 1024) training images before every evaluation: a correction
    # for short runs, not in the paper (see OLED.recalibrate_batch_norm); on for smoke/quick, off for paper.
    bn_recalibration: bool | None = None
    figures: bool = True
    # Reproduce the bug of the authors' UCSD test script (s_mask overwritten by s_rec); off = correct protocol.
    ucsd_smask_bug: bool = False

    def resolved(self):
        if self.scale == "quick" and self.epochs is None and self.dataset in QUICK_EPOCHS:
            self = dataclasses.replace(self, epochs=QUICK_EPOCHS[self.dataset])
        cfg = super().resolved()
        if cfg.dataset is None:
            raise ConfigError("--dataset is required: one of " + ", ".join(DATASETS))
        if cfg.dataset not in DATASETS:
            raise ConfigError(f"OLED does not support --dataset={cfg.dataset!r}; choose one of {', '.join(DATASETS)}")
        if cfg.protocol not in PROTOCOLS:
            raise ConfigError(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {cfg.protocol!r}")
        if cfg.mask not in ("learned", "random"):
            raise ConfigError(f"--mask must be 'learned' (OLED) or 'random' (CAE ablation), got {cfg.mask!r}")
        if not 0.0 < cfg.t < 100.0:
            raise ConfigError(f"--t must be a percentage in (0, 100), got {cfg.t}")
        if cfg.threshold_eps <= 0:
            raise ConfigError(f"--threshold_eps must be > 0, got {cfg.threshold_eps}")
        if cfg.mask_gradient not in MASK_GRADIENTS:
            raise ConfigError(f"--mask_gradient must be one of {', '.join(MASK_GRADIENTS)}, got {cfg.mask_gradient!r}")
        if not cfg.mask_temperature > 0:
            raise ConfigError(f"--mask_temperature must be > 0, got {cfg.mask_temperature}")
        if cfg.architecture is not None and cfg.architecture not in ARCHITECTURES:
            raise ConfigError(f"--architecture must be one of {', '.join(ARCHITECTURES)}, got {cfg.architecture!r}")
        # image_folder: the kind (network, batch size, MM schedule) follows the images' channels, as in data.py.
        kind = input_kind(cfg.dataset, image_folder_channels(cfg.data_dir) if cfg.dataset == "image_folder" else None)
        up: dict[str, Any] = {}
        if cfg.architecture is None:
            up["architecture"] = "code" if cfg.code_defaults else "paper"
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
        """ConfigError for a count, limit or weight out of range (a negative limit must not mean "all")."""
        n = N_CLASSES.get(self.dataset)
        if n is not None and not 0 <= self.normal_class < n:
            raise ConfigError(f"--normal_class={self.normal_class} is out of range for {self.dataset} ({n} classes: "
                              f"0..{n - 1})")
        check_non_negative(train_limit=self.train_limit, test_limit=self.test_limit,
                           ucsd_test_videos=self.ucsd_test_videos, seg_images=self.seg_images,
                           n_val_inliers=self.n_val_inliers, n_val_outliers=self.n_val_outliers,
                           gamma=self.gamma, lambda_rec=self.lambda_rec)
        check_positive(epochs=self.epochs, batch_size=self.batch_size, mask_update_every=self.mask_update_every,
                       random_mask_size=self.random_mask_size, ucsd_patch_stride=self.ucsd_patch_stride,
                       eval_batch_size=self.eval_batch_size, learning_rate=self.learning_rate)
