"""Train and evaluate the frame-permutation anomaly detector (or a TABLE IV video baseline) on one normal class.

    python -m permutation_tf.train --dataset=ucf101|imagenet_vid|video_folder|moving_fashion --normal_class=0 \
        [--method=permutation|rotnet|shuffle_learn|aot|sorting] [--m=5] [--skip=2] [--scale=quick|paper|smoke] \
        [--pooling=mean|max] [--test_permutations=1] [--export_dir=DIR] [--data_dir=DIR] [--workdir=DIR]

``run(config)`` follows the paper: the one-vs-all videos (Sec. IV-B), training on the normal class's segments
(Eq. 1, 6-8), scoring every test segment (Eq. 8-9), pooling per video and the AUROC; the PCA-20 floor on the same
segments; ``metrics.json`` in the workdir (a finished run with ``--resume`` is re-read, not retrained); an
optional SavedModel ``<export_dir>/permutation_<dataset>_<class>/<version>/`` checked in a fresh process.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path


from common.config import write_metrics
from permutation_tf.config import VideoConfig

log = logging.getLogger(__name__)


def train_model(model, cfg, items, workdir: Path) -> dict:
    """Eq. 6-8 on the normal class's segments (SGD momentum 0.9, lr 1e-3, batch 10)."""
    from common.training import fit_resumable
    from permutation_tf.data import train_stream

    _, steps, n = train_stream(cfg, model.task, items)
    t0 = time.time()
    logs = fit_resumable(model, lambda first: train_stream(cfg, model.task, items, start_epoch=first)[0],
                         epochs=cfg.epochs, workdir=workdir, steps_per_epoch=steps, resume=cfg.resume,
                         tensorboard=False)
    seconds = time.time() - t0
    return {"train_segments": n, "steps_per_epoch": steps, "train_seconds": seconds,
            "loss_per_epoch": [float(l["loss"]) for l in logs if "loss" in l],
            "accuracy_per_epoch": [float(l["accuracy"]) for l in logs if "accuracy" in l],
            "segments_per_second": steps * max(len(logs), 1) * cfg.batch_size / max(seconds, 1e-9)}


def export(model, cfg, sample) -> dict:
    """SavedModel ``permutation_<dataset>_<class>/<version>/``, reloaded and compared in a fresh process."""
    from common.export import check_export, export_saved_model

    name = f"permutation_{cfg.dataset}_{cfg.normal_class}" if cfg.task == "permutation" else \
        f"permutation_{cfg.task}_{cfg.dataset}_{cfg.normal_class}"
    path = export_saved_model(model, model.serve, cfg.export_dir, name, tuple(sample.shape[1:]), input_name="frames")
    expected = {k: v.numpy() for k, v in model.serve(sample).items()}
    diffs = check_export(path, sample, expected, input_name="frames", atol=1e-3, rtol=1e-3)
    return {"path": str(path), "max_abs_diff": diffs}


def run(config: VideoConfig) -> dict:
    from common.run_identity import finished_metrics
    from common.training import start_run
    from permutation_tf import data, evaluate
    from permutation_tf.model import build_model, make_task

    resolved = config.resolved()
    if resolved.resume and not resolved.export_dir:
        done = finished_metrics(resolved)  # this exact config and code has finished: re-read, do not retrain
        if done is not None:
            return done
    cfg, workdir = start_run(config)
    t_start = time.time()
    task = make_task(cfg.task, cfg.m)
    videos = data.one_class(cfg)
    from permutation_tf.networks import frame_mean

    frames = evaluate.training_frames(videos.train, cfg)      # the mean (Caffe's mean file) and the floor's PCA
    model = build_model(task, (cfg.frame_size, cfg.frame_size), cfg.conv1_stride, cfg.eq8_class_average, cfg.lr,
                        cfg.momentum, cfg.jit_compile, cfg.input_norm, cfg.init,
                        input_mean=frame_mean(frames, cfg.input_norm), norm=cfg.norm)
    training = train_model(model, cfg, videos.train, workdir)
    floor = evaluate.fit_floor(videos.train, cfg, cfg.seed, frames)
    del frames
    t0 = time.time()
    scored = evaluate.score_segments(model, data.test_stream(cfg, task, videos.test), floor)
    score_seconds = time.time() - t0
    results = evaluate.evaluate(scored, videos.test_labels, cfg.pooling)
    constant = evaluate.constant_scores(scored)
    if any(constant.values()):
        log.warning("the network's test scores do not vary with its input (%s): its outputs are the same for "
                    "every segment, so its AUROC is a tie (0.5), not a measurement; the training did not move it "
                    "(see loss_per_epoch): train longer or with another --lr",
                    ", ".join(k for k, v in constant.items() if v))
        print("WARNING: constant scores: the network's outputs do not vary with its input; AUROC 0.5 by ties",
              flush=True)
    model.set_score_range(scored["all"])
    metrics = {
        "auroc": results[cfg.score]["auroc"], "score": cfg.score, "pooling": cfg.pooling,
        "auroc_sampled": results["sampled"]["auroc"], "auroc_all": results["all"]["auroc"],
        "segment_auroc": {k: v["segment_auroc"] for k, v in results.items()},
        "floor": {"auroc": results["floor"]["auroc"], "segment_auroc": results["floor"]["segment_auroc"],
                  "what": "PCA-20 reconstruction error of the segment's frames, fitted on the normal training frames"},
        "task": cfg.task, "m": task.m, "skip": cfg.skip, "normal_class": videos.normal_class,
        "normal_name": videos.normal_name, "epochs": cfg.epochs, "batch_size": cfg.batch_size,
        "data": {"train_videos": len(videos.train), "test_videos": len(videos.test),
                 "test_anomalous_videos": int(videos.test_labels.sum()),
                 "test_segments": results["sampled"]["n_segments"], "test_permutations": cfg.test_permutations},
        **training, "score_seconds": score_seconds,
        "score_segments_per_second": len(scored["all"]) / max(score_seconds, 1e-9),
        "constant_scores_warning": any(constant.values()), "constant_scores": constant,
    }
    if cfg.export_dir:
        batch = next(iter(data.test_stream(cfg, task, videos.test)))
        sample = model.ordered(batch["frames"], batch["label"])[:4]
        metrics["export"] = export(model, cfg, sample.numpy())
    metrics["wall_seconds"] = time.time() - t_start
    write_metrics(metrics, workdir)
    return metrics


# ------------------------------------------------------------------------------------------------- entry point
def _define_flags():
    from absl import flags

    from common import flags as _cflags  # noqa: F401  (defines the shared flags)

    flags.DEFINE_enum("method", "permutation", ["permutation", "rotnet", "shuffle_learn", "aot", "sorting"],
                      "permutation = the paper's frame permutation prediction; the others are TABLE IV baselines.")
    flags.DEFINE_integer("m", 5, "Frames per segment M (M! permutation classes; TABLE V: 3..6).")
    flags.DEFINE_integer("skip", 2, "Frames skipped between the frames of a segment (TABLE VI; 2 = f1,f4,f7,...).")
    flags.DEFINE_integer("frame_size", None, "Frames are resized to this square size (paper 225; quick 64).")
    flags.DEFINE_string("class_list", None, "Class-list file (default permutation_tf/data/<dataset>_20.txt).")
    flags.DEFINE_integer("train_videos_per_class", None, "Cap on training videos per class (default: preset).")
    flags.DEFINE_integer("test_videos_per_class", None, "Cap on test videos per class (default: preset).")
    flags.DEFINE_integer("max_frames", None, "Frames decoded per training video (default: preset; paper all).")
    flags.DEFINE_integer("test_max_frames", None, "Frames decoded per test video (default: preset; paper all).")
    flags.DEFINE_integer("steps_per_epoch", None, "Training steps per epoch (default: one pass over the segments).")
    flags.DEFINE_integer("test_permutations", 1, "Deterministic permutation labels scored per test segment.")
    flags.DEFINE_enum("score", "sampled", ["sampled", "all"], "Headline score: the segment's own label (paper) "
                      "or the mean over all labels.")
    flags.DEFINE_enum("pooling", "mean", ["mean", "max"], "Segment-to-video pooling of Eq. 9 scores.")
    flags.DEFINE_float("lr", 1e-3, "SGD learning rate (Sec. IV-D).")
    flags.DEFINE_boolean("eq8_class_average", False, "Divide the cross-entropy by M! as Eq. 8 is printed.")
    flags.DEFINE_enum("input_norm", "mean_image", ["mean_image", "mean_pixel", "pm1"],
                      "Base-CNN input: mean_image = CaffeNet's (pixels 0..255 minus the mean frame of the normal "
                      "training videos, Caffe's mean file); mean_pixel = minus the per-channel mean; pm1 = [0, 1] "
                      "mapped to [-1, 1] (this package's first version, does not learn on moving_fashion).")
    flags.DEFINE_enum("init", "caffe", ["caffe", "glorot"],
                      "Weight init: caffe = bvlc_reference_caffenet's Gaussians (std 0.01 conv, 0.005 fc) and 0/1 "
                      "biases; glorot = Keras defaults (Glorot-uniform, zero biases; the first version).")
    flags.DEFINE_enum("norm", "none", ["none", "batch"],
                      "none = CaffeNet as in the paper; batch = BatchNormalization before every ReLU of the "
                      "Base-CNN and before the Top-CNN's fc8 ReLU (NOT in the paper; a beyond-paper option).")


def main(argv):
    from absl import flags

    from common import flags as cflags

    f = flags.FLAGS
    config = VideoConfig.from_flags(
        cflags.common_values(), task=f.method, m=f.m, skip=f.skip, frame_size=f.frame_size,
        class_list=f.class_list, train_videos_per_class=f.train_videos_per_class,
        test_videos_per_class=f.test_videos_per_class, max_frames=f.max_frames, test_max_frames=f.test_max_frames,
        steps_per_epoch=f.steps_per_epoch, test_permutations=f.test_permutations, score=f.score,
        pooling=f.pooling, lr=f.lr, eq8_class_average=f.eq8_class_average, input_norm=f.input_norm, init=f.init,
        norm=f.norm)
    cflags.preflight(config)
    m = run(config)
    print(f"{m['task']} normal class {m['normal_class']} ({m['normal_name']}): AUROC {m['auroc']:.4f} "
          f"({m['score']}, {m['pooling']} pooling); all-labels {m['auroc_all']:.4f}; PCA-20 floor "
          f"{m['floor']['auroc']:.4f}")


if __name__ == "__main__":
    from common import flags as cflags

    _define_flags()
    cflags.run(main)
