"""Configuration of one image pretext-task run (Section IV-C) and its smoke / quick / paper presets.

Paper (Section IV-C): "We trained each of the model for 100 epochs on the normal class. Batch size for all methods
was set to 64"; one-vs-all on the official split (Section IV-B). Where the paper is silent: Adam with Keras
defaults (lr 1e-3), as GEOM's code (reference notes 5.5); images scaled to [-1, 1] and 28 x 28 images padded to
32 x 32 with -1 (black), as GEOM's code; image folders resized to ``image_size`` (default 64, see README).
Presets only cut epochs and data, never the networks.

Every field is a flag of ``permutation_tf.train_image`` (:func:`common.config.option`); choices and bounds are
checked once by :meth:`common.config.RunConfig.resolved`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

from common.config import RunConfig, option
from common.errors import ConfigError

TASK_NAMES = ("jigsaw", "colorization", "inpainting", "counting", "splitbrain", "rotnet")
DATASETS = ("fashion_mnist", "mnist", "mnist5k", "cifar10", "cifar100", "image_folder")
GRAY_DATASETS = ("fashion_mnist", "mnist", "mnist5k")
COLOR_TASKS = ("colorization", "splitbrain")
PAPER_EPOCHS = 100
PAPER_BATCH_SIZE = 64
FOLDER_IMAGE_SIZE = 64
IMAGE_SIZE = 32          # 28 x 28 images padded to 32 x 32, CIFAR as is


@dataclasses.dataclass
class ImageTaskConfig(RunConfig):
    """One pretext task trained on one normal class; ``None`` fields are filled from the scale preset."""

    method: ClassVar[str] = "permutation_image"
    CODE_ROOTS: ClassVar[tuple[str, ...]] = ("permutation_tf.image.pipeline", "permutation_tf.image.model",
                                             "permutation_tf.image.data", "permutation_tf.image.evaluate",
                                             "permutation_tf.image.scoring", "permutation_tf.image.tasks")
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

    task: str = option("rotnet", "The pretext task (Section IV-C).", choices=TASK_NAMES)
    learning_rate: float = option(1e-3, "Adam learning rate (paper silent; GEOM's code: Keras default 1e-3).",
                                  minimum=0, exclusive_minimum=True)
    train_limit: int | None = option(None, "Use at most this many training images of the normal class (0 = all; "
                                     "default: the --scale preset).", minimum=0)
    test_limit: int | None = option(None, "Stratified subset of the test set (0 = all; default: the preset).",
                                    minimum=0)
    image_size: int | None = option(None, f"Side of the square network input, a multiple of 8 (default "
                                    f"{IMAGE_SIZE}; image folders {FOLDER_IMAGE_SIZE}).", minimum=8)
    color_bins: int = option(10, "Colorization / Split-Brain: quantisation bins per channel.", minimum=2)
    n_counts: int = option(1000, "Counting: length of the count vector (Noroozi et al.: 1000).", minimum=1)
    count_margin: float = option(10.0, "Counting: margin M of the contrastive term (Noroozi et al.: 10).",
                                 minimum=0, exclusive_minimum=True)
    eval_batch_size: int = option(256, "Images per batch when scoring the test set.", minimum=1)
    floor: bool = option(True, "Also compute the PCA-20 reconstruction floor on the same split.")

    def resolved(self):
        if self.task not in TASK_NAMES:   # before check_fields: this wording names the flag's value
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
        if cfg.image_size is None:   # before the workdir's hash: it covers the size that runs
            cfg = dataclasses.replace(cfg, image_size=FOLDER_IMAGE_SIZE if cfg.dataset == "image_folder"
                                      else IMAGE_SIZE)
        cfg = super(ImageTaskConfig, cfg).resolved()   # presets, every field's choices and bounds, the strategy
        if self.workdir is None:     # runs/permutation_image_<task>_<dataset>_class<c>_<scale>_<hash>
            wd = Path(cfg.workdir)
            cfg = dataclasses.replace(cfg, workdir=str(wd.with_name(wd.name.replace(
                f"{cfg.method}_", f"{cfg.method}_{cfg.task}_", 1))))
        if cfg.image_size % 8:
            raise ConfigError(f"--image_size must be a positive multiple of 8, got {cfg.image_size}")
        return cfg
