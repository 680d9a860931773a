"""Configuration of ``python -m permutation_tf.train`` (the video method and its TABLE IV baselines).

Presets only cut data and epochs (videos per class, frames per video, steps); the network is always CaffeNet
conv1..fc7 with conv1 stride 2 and the Top-CNN. ``paper`` = Sec. IV-D: M = 5, skip 2, 225 x 225 frames, SGD
momentum 0.9, lr 1e-3, batch 10, 100 epochs, all segments of 50/10 (UCF101) or 100/15 (VID) videos per class.
``quick`` is sized for a shared 2-core CPU (measured: ~6 s per training step of 10 segments of 5 frames at 64 x 64
with the other helpers' load): see README.md (video part).
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

from common.config import RunConfig
from common.errors import ConfigError

POOLINGS = ("mean", "max")
SCORES = ("sampled", "all")


@dataclasses.dataclass
class VideoConfig(RunConfig):
    method: ClassVar[str] = "permutation_video"

    task: str = "permutation"            # permutation (ours) | rotnet | shuffle_learn | aot | sorting
    m: int = 5                           # frames per segment (TABLE V); rotnet 1, shuffle_learn 5, sorting 4
    skip: int = 2                        # frames skipped between the frames of a segment (TABLE VI)
    frame_size: int | None = None        # frames resized to frame_size x frame_size (paper: 225)
    conv1_stride: int = 2                # Sec. III-C (CaffeNet: 4)
    class_list: str | None = None        # default: permutation_tf/data/<dataset>_20.txt for ucf101 / imagenet_vid
    train_videos_per_class: int | None = None
    test_videos_per_class: int | None = None
    max_frames: int | None = None        # decode at most this many frames of a training video (None: all)
    test_max_frames: int | None = None   # same for test videos
    steps_per_epoch: int | None = None   # None: one pass over the normal-class segments
    test_permutations: int = 1           # labels scored per test segment (deterministic, seeded)
    score: str = "sampled"               # headline score: sampled (the paper's) or all (mean over all variants)
    pooling: str = "mean"                # segment -> video pooling
    lr: float = 1e-3
    momentum: float = 0.9
    eq8_class_average: bool = False      # literal 1/M! of Eq. 8 (see losses.py)
    input_norm: str = "mean_image"       # CaffeNet: 0..255 minus the training mean frame | mean_pixel | pm1 (old)
    init: str = "caffe"                  # CaffeNet's Gaussian weights and 0/1 biases | glorot (Keras defaults, old)
    norm: str = "none"                   # none (CaffeNet, the paper) | batch (BatchNorm before each ReLU; beyond paper)
    eval_batch_size: int = 32

    PRESETS: ClassVar[dict] = {
        "smoke": dict(epochs=1, batch_size=4, frame_size=64, train_videos_per_class=2, test_videos_per_class=1,
                      max_frames=14, test_max_frames=14, steps_per_epoch=2),
        "quick": dict(epochs=4, batch_size=10, frame_size=64, train_videos_per_class=8, test_videos_per_class=3,
                      max_frames=16, test_max_frames=14, steps_per_epoch=2),
        "paper": dict(epochs=100, batch_size=10, frame_size=225),
    }

    def resolved(self):
        cfg = super().resolved()
        if cfg.task not in ("permutation", "rotnet", "shuffle_learn", "aot", "sorting"):
            raise ConfigError(f"unknown --task={cfg.task!r}; use permutation, rotnet, shuffle_learn, aot or sorting")
        from permutation_tf.networks import INITS, INPUT_NORMS, NORMS

        if cfg.input_norm not in INPUT_NORMS:
            raise ConfigError(f"--input_norm must be one of {', '.join(INPUT_NORMS)}, not {cfg.input_norm!r}")
        if cfg.init not in INITS:
            raise ConfigError(f"--init must be one of {', '.join(INITS)}, not {cfg.init!r}")
        if cfg.norm not in NORMS:
            raise ConfigError(f"--norm must be one of {', '.join(NORMS)}, not {cfg.norm!r}")
        if cfg.pooling not in POOLINGS:
            raise ConfigError(f"--pooling must be one of {POOLINGS}, not {cfg.pooling!r}")
        if cfg.score not in SCORES:
            raise ConfigError(f"--score must be one of {SCORES}, not {cfg.score!r}")
        if not 3 <= cfg.m <= 6 and cfg.task in ("permutation", "aot"):
            raise ConfigError(f"--m must be 3..6 (the paper's TABLE V range), not {cfg.m}")
        if cfg.frame_size is not None and cfg.frame_size < 64:
            raise ConfigError(f"--frame_size must be >= 64 (CaffeNet conv1..pool5), not {cfg.frame_size}")
        if cfg.test_permutations < 1:
            raise ConfigError(f"--test_permutations must be >= 1, not {cfg.test_permutations}")
        if cfg.task == "permutation":
            # A preset's frame cap never cuts a clip below one segment (TABLE V's M = 6 and TABLE VI's skip 3
            # span 16 and 17 frames); a cap given by the user is kept (and too short a clip is an error).
            from common.video_clips import segment_span

            span = segment_span(cfg.m, cfg.skip)
            raised = {k: span for k in ("max_frames", "test_max_frames")
                      if getattr(self, k) is None and getattr(cfg, k) is not None and getattr(cfg, k) < span}
            cfg = dataclasses.replace(cfg, **raised)
        return cfg
