"""Configuration of one image pretext-task run (Section IV-C) and its smoke / quick / paper presets.

Paper (Section IV-C): "We trained each of the model for 100 epochs on the normal class. Batch size for all methods
was set to 64"; one-vs-all on the official split (Section IV-B). Where the paper is silent: Adam with Keras
defaults (lr 1e-3), as GEOM's code (reference notes 5.5); images scaled to [-1, 1] and 28 x 28 images padded to
32 x 32 with -1 (black), as GEOM's code; image folders resized to ``image_size`` (default 64, see README).
Presets only cut epochs and data, never the networks.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from common.config import RunConfig, default_workdir
from common.errors import ConfigError
from permutation_tf.image.tasks import TASK_NAMES

DATASETS = ("fashion_mnist", "mnist", "mnist5k", "cifar10", "cifar100", "image_folder")
GRAY_DATASETS = ("fashion_mnist", "mnist", "mnist5k")
COLOR_TASKS = ("colorization", "splitbrain")
PAPER_EPOCHS = 100
PAPER_BATCH_SIZE = 64
FOLDER_IMAGE_SIZE = 64


@dataclasses.dataclass
class ImageTaskConfig(RunConfig):
    """One pretext task trained on one normal class; ``None`` fields are filled from the scale preset."""

    method: ClassVar[str] = "permutation_image"
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # Seconds on a few images: checks the plumbing only.
        "smoke": dict(epochs=2, batch_size=16, train_limit=64, test_limit=100),
        # A random subset of the normal class's training images, few epochs, a stratified subset of the test
        # set; same networks, losses and score. Measured per class on the 2-core CPU shared with 5 other jobs
        # (load 12-16): 1.8 min Jigsaw, 4.3 min RotNet (RotNet trains 4 rotated copies of every image).
        "quick": dict(epochs=5, batch_size=64, train_limit=1000, test_limit=1000),
        # The paper: all training images of the class, 100 epochs, batch 64, the whole test set.
        "paper": dict(epochs=PAPER_EPOCHS, batch_size=PAPER_BATCH_SIZE, train_limit=0, test_limit=0),
    }

    task: str = "rotnet"
    learning_rate: float = 1e-3
    train_limit: int | None = None   # 0 = every training image of the normal class
    test_limit: int | None = None    # 0 = the whole test set; else a stratified random subset
    image_size: int | None = None    # None: 32 (28 x 28 images padded, CIFAR as is), image folders 64
    color_bins: int = 10             # Colorization / Split-Brain: bins per chroma / luma channel
    n_counts: int = 1000             # Counting: size of the count vector (Noroozi et al.: 1000)
    count_margin: float = 10.0       # Counting: margin M of the contrastive term (Noroozi et al.: 10)
    eval_batch_size: int = 256
    floor: bool = True               # also compute the PCA-20 floor on the same split (common.floors)

    def resolved(self):
        if self.task not in TASK_NAMES:
            raise ConfigError(f"unknown --task={self.task!r}; choose one of {', '.join(TASK_NAMES)}")
        if self.dataset is None:
            raise ConfigError("--dataset is required: one of " + ", ".join(DATASETS))
        if self.dataset not in DATASETS:
            raise ConfigError(f"--dataset={self.dataset!r} is not supported by the image pretext tasks; choose one "
                              f"of {', '.join(DATASETS)}")
        if self.task in COLOR_TASKS and self.dataset in GRAY_DATASETS:
            raise ConfigError(f"--task={self.task} predicts colour from gray and needs RGB images; {self.dataset} is "
                              f"grayscale (use cifar10, cifar100 or an RGB image_folder)")
        cfg = self
        if cfg.workdir is None and cfg.scale in cfg.PRESETS:
            cfg = dataclasses.replace(cfg, workdir=str(default_workdir(f"{cfg.method}_{cfg.task}", cfg.dataset,
                                                                       cfg.normal_class, cfg.scale)))
        cfg = super(ImageTaskConfig, cfg).resolved()
        up: dict[str, Any] = {}
        if cfg.image_size is None:
            up["image_size"] = FOLDER_IMAGE_SIZE if cfg.dataset == "image_folder" else 32
        for name in ("train_limit", "test_limit"):
            if getattr(cfg, name) is None or getattr(cfg, name) < 0:
                raise ConfigError(f"--{name} must be >= 0 (0 = all), got {getattr(cfg, name)}")
        if cfg.learning_rate <= 0:
            raise ConfigError(f"--learning_rate must be > 0, got {cfg.learning_rate}")
        if cfg.color_bins < 2 or cfg.n_counts < 1 or cfg.count_margin <= 0:
            raise ConfigError("--color_bins must be >= 2, --n_counts >= 1 and --count_margin > 0")
        cfg = dataclasses.replace(cfg, **up)
        if cfg.image_size < 8 or cfg.image_size % 8:
            raise ConfigError(f"--image_size must be a positive multiple of 8, got {cfg.image_size}")
        return cfg
