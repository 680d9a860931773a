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
from permutation_tf.image.scoring import PROB_TASKS, SCORE_RULES

TASK_NAMES = ("jigsaw", "colorization", "inpainting", "counting", "splitbrain", "rotnet")
DATASETS = ("fashion_mnist", "mnist", "mnist5k", "cifar10", "cifar100", "image_folder")
GRAY_DATASETS = ("fashion_mnist", "mnist", "mnist5k")
COLOR_TASKS = ("colorization", "splitbrain")
PAPER_EPOCHS = 100
PAPER_BATCH_SIZE = 64
FOLDER_IMAGE_SIZE = 64
IMAGE_SIZE = 32          # 28 x 28 images padded to 32 x 32, CIFAR as is
TRAIN_MODES = ("all", "one")
AUGMENTATIONS = ("none", "flip_shift")
MAX_JIGSAW_PERMUTATIONS = 1000
MAX_ALL_ORDERS = 200     # above it --train_transformations=all does not fit in memory (the head forms every order)


@dataclasses.dataclass
class ImageTaskConfig(RunConfig):
    """One pretext task trained on one normal class; ``None`` fields are filled from the scale preset."""

    method: ClassVar[str] = "permutation_image"
    CODE_ROOTS: ClassVar[tuple[str, ...]] = ("permutation_tf.image.pipeline", "permutation_tf.image.model",
                                             "permutation_tf.image.data", "permutation_tf.image.evaluate",
                                             "permutation_tf.image.scoring", "permutation_tf.image.tasks")
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # Seconds on a few images: checks the plumbing only.
        "smoke": dict(epochs=2, batch_size=16, train_limit=64, test_limit=100, eval_every=0),
        # A random subset of the normal class's training images, few epochs, a stratified subset of the test
        # set; same networks, losses and score. Measured per class on the 2-core CPU shared with 5 other jobs
        # (load 12-16): 1.8 min Jigsaw, 4.3 min RotNet (RotNet trains 4 rotated copies of every image).
        "quick": dict(epochs=5, batch_size=64, train_limit=1000, test_limit=1000, eval_every=0),
        # The paper: all training images of the class, 100 epochs, batch 64, the whole test set; the learning
        # curve (every score rule's AUROC) every 10 epochs (measurement only: the cell is the last epoch's).
        "paper": dict(epochs=PAPER_EPOCHS, batch_size=PAPER_BATCH_SIZE, train_limit=0, test_limit=0,
                      eval_every=10),
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
    score: str = option("mean_loss", "Anomaly score rule (permutation_tf/image/scoring.py; the paper is silent for "
                        "images): mean_loss = pretext loss averaged over all transformations of the test image; "
                        "drawn_loss = the loss of ONE transformation drawn per test image (Sec. III-D's video "
                        "rule taken literally); mean_prob = minus the softmax probability of the applied "
                        "transformation, averaged (jigsaw, rotnet). metrics.json holds every rule's AUROC.",
                        choices=SCORE_RULES)
    eval_every: int | None = option(None, "Score the test set every this many epochs and write the learning curve "
                                    "(AUROC of every score rule, and the PCA-20 floor) to curve.json and "
                                    "metrics.json (0 = only at the end; default: the preset, paper 10). The cell "
                                    "is always the last epoch's.", minimum=0)
    train_transformations: str = option("all", "Transformations per training image and step: all = every one of "
                                        "the task's (the exact expectation; RotNet's code feeds all 4 rotations); "
                                        "one = one drawn per image (Noroozi & Favaro's jigsaw sampling).",
                                        choices=TRAIN_MODES)
    jigsaw_permutations: int = option(100, "Jigsaw: size of the permutation set, chosen by maximal Hamming "
                                      "distance (Noroozi & Favaro: 100 to 1000; 1000 in their final model).",
                                      minimum=2, maximum=MAX_JIGSAW_PERMUTATIONS)
    jigsaw_jitter: int = option(0, "Jigsaw: pixels of random tile offset within its cell (tile side = cell - "
                                "jitter; Noroozi & Favaro: 64-pixel tiles in 75-pixel cells); 0 = tiles edge to "
                                "edge.", minimum=0)
    augment: str = option("none", "Training augmentation beyond the task's transformations: none (GEOM's code) or "
                          "flip_shift (random horizontal flip and up to 2-pixel shift, RotNet's CIFAR code).",
                          choices=AUGMENTATIONS)
    weight_decay: float = option(0.0, "L2 penalty weight_decay * sum(w^2) on every kernel (Keras L2; Caffe decay d "
                                 "= 2 * weight_decay: Noroozi / Gidaris 5e-4 -> 2.5e-4, GEOM's 0.5 * 5e-4). 0 = none "
                                 "(Keras Adam defaults).", minimum=0)
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
        if self.score not in SCORE_RULES:
            raise ConfigError(f"--score must be one of {', '.join(SCORE_RULES)}, got {self.score!r}")
        if self.score == "mean_prob" and self.task not in PROB_TASKS:
            raise ConfigError(f"--score=mean_prob needs a softmax classification task ({', '.join(PROB_TASKS)}); "
                              f"{self.task}'s loss is not -log p")
        if self.task != "jigsaw" and (self.jigsaw_permutations != 100 or self.jigsaw_jitter):
            raise ConfigError(f"--jigsaw_permutations / --jigsaw_jitter apply to --task=jigsaw only (got "
                              f"--task={self.task})")
        if self.task == "jigsaw" and self.jigsaw_permutations > MAX_ALL_ORDERS and self.train_transformations == "all":
            raise ConfigError(f"--jigsaw_permutations={self.jigsaw_permutations} with --train_transformations=all "
                              f"forms {self.jigsaw_permutations} puzzles per image and step (more than "
                              f"{MAX_ALL_ORDERS} does not fit); use --train_transformations=one")
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
