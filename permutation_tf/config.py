"""Configuration of ``python -m permutation_tf.train`` (the video method and its TABLE IV baselines).

Presets cut data and epochs (videos per class, frames per video, steps) and set the training recipe
(``RECIPE_FIELDS``); the network is always CaffeNet conv1..fc7 with conv1 stride 2 and the Top-CNN. ``paper`` =
Sec. IV-D with the paper's recipe (``FAITHFUL``): M = 5, skip 2, 225 x 225 frames, SGD momentum 0.9, lr 1e-3,
batch 10, 100 epochs, all segments of 50/10 (UCF101) or 100/15 (VID) videos per class. ``quick`` (issue 21) trains
``LEARNS`` (beyond the paper: batch norm, He init, all M! orders per step, dropout in the Top-CNN only, weight decay
5e-4, lr 1e-2) for 250 steps at 64 x 64, sized so that a ten-class TABLE IV takes ~2 h on the idle 2-core CPU
(0.65 s per step of ours at M = 5): docs/permutation-notes.md, "Video: mixed batches, a recipe that learns".

Every field is a flag of ``permutation_tf.train`` (:func:`common.config.option`; the field ``task`` is the flag
``--method``); choices and bounds are checked once by :meth:`common.config.RunConfig.resolved`.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

from common.config import RunConfig, option
from common.errors import ConfigError

METHODS = ("permutation", "rotnet", "shuffle_learn", "aot", "sorting")
POOLINGS = ("mean", "max")
SCORES = ("sampled", "all")
INPUT_NORMS = ("mean_image", "mean_pixel", "pm1")
INITS = ("caffe", "caffe_zero_bias", "he", "glorot")
DROPOUTS = ("fc6_fc7_fc8", "fc8", "none")
TRAIN_ORDERS = ("sampled", "all")
NORMS = ("none", "batch")
# The training recipe (issue 21). FAITHFUL = the paper's CaffeNet trained in Caffe (Caffe's init, no batch norm,
# CaffeNet's dropout, one label per segment; no weight decay: the paper names none). LEARNS = the recipe the quick
# and smoke presets use, chosen from measurements (docs/permutation-notes.md, "Video: a recipe that learns"):
# beyond the paper in batch norm, He init, all orders per step, dropout placement, weight decay and lr 1e-2.
RECIPE_FIELDS = ("norm", "init", "train_orders", "dropout", "weight_decay", "lr")
FAITHFUL = dict(norm="none", init="caffe", train_orders="sampled", dropout="fc6_fc7_fc8", weight_decay=0.0, lr=1e-3)
LEARNS = dict(norm="batch", init="he", train_orders="all", dropout="fc8", weight_decay=5e-4, lr=1e-2)
MIN_FRAME_SIZE = 64     # smallest input for which conv1 (stride 2)..pool5 leaves >= 1 pixel
PAPER_FRAME_SIZE = 225  # Sec. IV-D


@dataclasses.dataclass
class VideoConfig(RunConfig):
    method: ClassVar[str] = "permutation_video"
    CODE_ROOTS: ClassVar[tuple[str, ...]] = ("permutation_tf.pipeline", "permutation_tf.model", "permutation_tf.data",
                                             "permutation_tf.evaluate")

    task: str = option("permutation", "permutation = the paper's frame permutation prediction; the others are "
                       "TABLE IV baselines.", choices=METHODS, flag="method")
    m: int = option(5, "Frames per segment M (M! permutation classes; TABLE V: 3..6; rotnet uses 1, shuffle_learn "
                    "5, sorting 4).", minimum=1)
    skip: int = option(2, "Frames skipped between the frames of a segment (TABLE VI; 2 = f1,f4,f7,...).", minimum=0)
    frame_size: int | None = option(None, f"Frames are resized to this square size (paper {PAPER_FRAME_SIZE}; "
                                    "quick 64; at least 64 for CaffeNet conv1..pool5).", minimum=MIN_FRAME_SIZE)
    conv1_stride: int = option(2, "Stride of conv1 during pretext training (Sec. III-C; CaffeNet: 4).", minimum=1)
    class_list: str | None = option(None, "Class-list file (default permutation_tf/data/<dataset>_20.txt for "
                                    "ucf101 / imagenet_vid).")
    train_videos_per_class: int | None = option(None, "Cap on training videos per class (default: preset).",
                                                minimum=1)
    test_videos_per_class: int | None = option(None, "Cap on test videos per class (default: preset).", minimum=1)
    max_frames: int | None = option(None, "Frames decoded per training video (default: preset; paper all).",
                                    minimum=1)
    test_max_frames: int | None = option(None, "Frames decoded per test video (default: preset; paper all).",
                                         minimum=1)
    steps_per_epoch: int | None = option(None, "Training steps per epoch (default: one pass over the segments).",
                                         minimum=1)
    test_permutations: int = option(1, "Deterministic permutation labels scored per test segment.", minimum=1)
    score: str = option("sampled", "Headline score: the segment's own label (paper) or the mean over all labels.",
                        choices=SCORES)
    pooling: str = option("mean", "Segment-to-video pooling of Eq. 9 scores.", choices=POOLINGS)
    lr: float | None = option(None, "SGD learning rate (default: the --scale preset; paper: 1e-3, Sec. IV-D; "
                              "quick: 1e-2, with batch norm).", minimum=0, exclusive_minimum=True)
    momentum: float = option(0.9, "SGD momentum (Sec. IV-D).", minimum=0)
    eq8_class_average: bool = option(False, "Divide the cross-entropy by M! as Eq. 8 is printed.")
    input_norm: str = option("mean_image", "Base-CNN input: mean_image = CaffeNet's (pixels 0..255 minus the mean "
                             "frame of the normal training videos, Caffe's mean file); mean_pixel = minus the "
                             "per-channel mean; pm1 = [0, 1] mapped to [-1, 1] (this package's first version, does "
                             "not learn on moving_fashion).", choices=INPUT_NORMS)
    # The recipe (RECIPE_FIELDS): None = the --scale preset's (paper: FAITHFUL; quick, smoke: LEARNS).
    init: str | None = option(None, "Weight init (default: the --scale preset; paper: caffe): caffe = "
                              "bvlc_reference_caffenet's Gaussians (std 0.01 conv, 0.005 fc) and 0/1 biases; "
                              "caffe_zero_bias = the same Gaussians, every bias 0; he = He-normal, zero biases (NOT "
                              "in the paper; meant with --norm=batch); glorot = Keras defaults (Glorot-uniform, zero "
                              "biases; the first version).", choices=INITS)
    norm: str | None = option(None, "Normalisation (default: the --scale preset; paper: none): none = CaffeNet as "
                              "in the paper; batch = BatchNormalization before every ReLU of the Base-CNN and before "
                              "the Top-CNN's fc8 ReLU (NOT in the paper).", choices=NORMS)
    train_orders: str | None = option(None, "Training examples per segment (default: the --scale preset; paper: "
                                      "sampled): sampled = the segment permuted by one random label (Eq. 1-2, the "
                                      "paper); all = all M! orders of every segment in one step from one Base-CNN "
                                      "pass per frame (Eq. 8 in expectation over the label; NOT in the paper). Also "
                                      "used by sorting.", choices=TRAIN_ORDERS)
    dropout: str | None = option(None, "Dropout 0.5 placement (default: the --scale preset; paper: fc6_fc7_fc8): "
                                 "fc6_fc7_fc8 = CaffeNet's drop6 / drop7 in every frame's Base-CNN and drop8 in the "
                                 "Top-CNN; fc8 = the Top-CNN's only; none.", choices=DROPOUTS)
    weight_decay: float | None = option(None, "L2 weight decay on every kernel, Caffe solver style (gradient + wd w; "
                                        "default: the --scale preset; paper: 0, the paper names none; CaffeNet's "
                                        "reference solver uses 5e-4).", minimum=0)
    mix_videos: int = option(24, "Training videos decoded at once and interleaved one segment each, so a batch "
                             "holds segments of min(batch, this, videos) videos.", minimum=1)
    eval_batch_size: int = option(32, "Segments per batch when scoring the test videos.", minimum=1)

    PRESETS: ClassVar[dict] = {
        "smoke": dict(epochs=1, batch_size=4, frame_size=64, train_videos_per_class=2, test_videos_per_class=1,
                      max_frames=14, test_max_frames=14, steps_per_epoch=2, **LEARNS),
        "quick": dict(epochs=5, batch_size=10, frame_size=64, train_videos_per_class=50, test_videos_per_class=10,
                      max_frames=48, test_max_frames=24, steps_per_epoch=50, **LEARNS),
        "paper": dict(epochs=100, batch_size=10, frame_size=PAPER_FRAME_SIZE, **FAITHFUL),
    }

    def resolved(self):
        cfg = super().resolved()      # presets, every field's choices and bounds, the strategy
        if not 3 <= cfg.m <= 6 and cfg.task in ("permutation", "aot"):
            raise ConfigError(f"--m must be 3..6 (the paper's TABLE V range), not {cfg.m}")
        if cfg.task == "permutation":
            # A preset's frame cap never cuts a clip below one segment (TABLE V's M = 6 and TABLE VI's skip 3
            # span 16 and 17 frames); a cap given by the user is kept (and too short a clip is an error).
            from common.data_video import segment_span

            span = segment_span(cfg.m, cfg.skip)
            raised = {k: span for k in ("max_frames", "test_max_frames")
                      if getattr(self, k) is None and getattr(cfg, k) is not None and getattr(cfg, k) < span}
            cfg = dataclasses.replace(cfg, **raised)
        return cfg
