"""Registry jobs of the video tables (TABLES IV-VI) for ``common.run_tables`` (protocol: ``common/registry.py``).
The lead adds :data:`VIDEO_JOBS` to ``permutation_tf/tables.py``'s ``JOBS``.

Imports nothing heavy at module level. Every job builds a :class:`permutation_tf.config.VideoConfig` and calls
:func:`permutation_tf.pipeline.run`; cell values are AUROC percentages (the paper's unit), one job per normal
class, ``n_parts`` = the number of classes (the report averages the parts, as the paper averages 20 classes).

* On the paper's data (``ucf101``, ``imagenet_vid``; 20 classes each; skip with one line when absent):
  TABLE IV (rows UCF101 / ILSVRC2015): ours and the implemented baselines (RotNet on frames, Shuffle and Learn,
  AoT, Sorting); Video Colorization and Tracking are not implemented (README.md (video part)). TABLE V: M = 3..6,
  TABLE VI: skip 0..3 (ours).
* Variants ``fashion_motion`` (issue 21: Fashion-MNIST items whose motion is the class, half of the clips with
  an item of a random category) and ``moving_fashion`` (the first stand-in: trajectories independent of the
  class), both made by :mod:`permutation_tf.make_moving_fashion`, 10 classes, written on first use: the same
  jobs, filling the row "UCF101" of each table in the variant's sub-table.

Every job (on ILSVRC2015: only in ``extra``, the table has one floor row, filled by the UCF101 jobs) also
fills the row "PCA-20 floor (ours)" of its column (:data:`common.registry.FLOOR_ROW`): the mean
PCA-20 reconstruction error of a segment's frames, fitted on the normal training frames, scored and pooled like
the method on the same test stream (``permutation_tf.evaluate``); ``floor`` recomputes it without training.

Jobs that are the same run share a workdir (``workdir_name``): TABLE IV "Ours" = TABLE V "M = 5" = TABLE VI
"Skip = 2" (M = 5, skip 2), so a finished run is re-read, not retrained.
"""
from __future__ import annotations

from pathlib import Path

from common.registry import FLOOR_ROW, Job, JobResult

T4, T5, T6 = "permutation.table4", "permutation.table5", "permutation.table6"
COLUMN = {"permutation": "Ours", "rotnet": "RotNet [26]", "shuffle_learn": "Shuffle and Learn [43]",
          "aot": "AoT [44]", "sorting": "Sorting [45]"}
NOT_IMPLEMENTED = {"Video Colorization [41]": "needs the colorization-as-tracking network of Vondrick et al. "
                   "(reference-frame pointer + LAB quantisation); not built here",
                   "Tracking [42]": "needs patch tracking with dense trajectories / SURF tracks of Wang and Gupta "
                   "and a triplet ranking loss; not built here"}
DATASETS = {"ucf101": ("UCF101", 20), "imagenet_vid": ("ILSVRC2015", 20), "moving_fashion": ("UCF101", 10),
            "fashion_motion": ("UCF101", 10)}
STAND_INS = ("fashion_motion", "moving_fashion")   # generated from Fashion-MNIST (variant sub-tables)
# Quick-scale test cost of RotNet is per frame (x4 rotations): score 4 frames of each test video.
QUICK_OVERRIDES = {"rotnet": dict(test_max_frames=4)}


def _config(dataset, c, method, m, skip, scale, workdir, data_dir, seed=0):
    from permutation_tf.config import VideoConfig

    kw = QUICK_OVERRIDES.get(method, {}) if scale in ("quick", "smoke") else {}
    return VideoConfig(dataset=dataset, normal_class=c, task=method, m=m, skip=skip, scale=scale, seed=seed,
                       workdir=str(Path(workdir) / f"class{c}"), data_dir=None if data_dir is None else str(data_dir),
                       resume=True, **kw)


def _run(*args) -> dict:
    from permutation_tf.pipeline import run

    return run(_config(*args))


def _extra(m: dict) -> dict:
    keep = ("auroc_sampled", "auroc_all", "segment_auroc", "normal_name", "epochs", "batch_size", "data",
            "train_seconds", "score_seconds", "segments_per_second", "score_segments_per_second", "wall_seconds",
            "loss_per_epoch", "accuracy_per_epoch", "m", "skip", "task", "heldout_pretext_loss",
            "heldout_pretext_loss_sampled", "train_pretext_loss", "chance_loss", "recipe", "recipe_faithful")
    out = {k: m[k] for k in keep if k in m}
    out["floor_auroc"] = 100.0 * m["floor"]["auroc"]
    return out


def _job(table, column, dataset, c, method, m=5, skip=2):
    row, n = DATASETS[dataset]
    variant = dataset if dataset in STAND_INS else ""
    prefix = f"{dataset}_"
    setting = f"{method}_m{m}_skip{skip}"

    # One floor row per table and variant: the UCF101 jobs fill it on the paper's data, not ILSVRC2015's.
    floor_cells = () if dataset == "imagenet_vid" else ((FLOOR_ROW, column),)

    def run(scale, workdir, data_dir):
        res = _run(dataset, c, method, m, skip, scale, workdir, data_dir)
        values = {(row, column): 100.0 * res["auroc"]}
        values.update({cell: 100.0 * res["floor"]["auroc"] for cell in floor_cells})
        return JobResult(values=values, seeds=(0,), extra=_extra(res))

    def floor(scale, workdir, data_dir, seed=0):
        from permutation_tf.evaluate import floor_only

        cfg = _config(dataset, c, method, m, skip, scale, workdir, data_dir, seed)
        return {(FLOOR_ROW, column): 100.0 * floor_only(cfg)["auroc"]}

    return Job(table=table, name=f"{prefix}{setting}_class{c}", cells=((row, column),) + floor_cells,
               run=run, floor=floor if floor_cells else None,
               datasets=(dataset,) if dataset not in STAND_INS else ("fashion_mnist",), n_parts=n,
               workdir_name=f"permutation.video/{prefix}{setting}", variant=variant,
               description=f"{column} on {dataset}, M={m}, skip={skip}, class {c} normal, one-vs-all")


def _jobs(dataset: str) -> list[Job]:
    n = DATASETS[dataset][1]
    out = [_job(T4, COLUMN[method], dataset, c, method) for method in COLUMN for c in range(n)]
    out += [_job(T5, f"M = {m}", dataset, c, "permutation", m=m) for m in (3, 4, 5, 6) for c in range(n)]
    out += [_job(T6, f"Skip = {s}", dataset, c, "permutation", skip=s) for s in (0, 1, 2, 3) for c in range(n)]
    return out


VIDEO_JOBS = _jobs("ucf101") + _jobs("imagenet_vid") + _jobs("fashion_motion") + _jobs("moving_fashion")
