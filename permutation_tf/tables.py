"""Permutation-paper jobs for ``common.run_tables`` / ``run_all.sh`` (protocol: ``common/registry.py`` docstring).

Imports nothing heavy at module level. Every job builds an :class:`ImageTaskConfig` for the scale and calls
:func:`permutation_tf.image.pipeline.run`; cell values are AUROC percentages (the paper's unit).

Image tables (Section IV-C; the six self-supervised tasks are the paper's baselines; Deep SVDD, GT and Inception
CAE are cited from other papers and not run here):

* ``permutation.table2/<task>_class<c>`` (task = jigsaw, rotnet; and count, inpainting in two columns the
  report adds, :data:`GRAY_TASKS`): Fashion-MNIST, normal class c, the row
  "Fashion-MNIST c". ``permutation.table2/<task>_avg`` fills the row "Fashion-MNIST avg" with the mean over the
  ten class runs, which it shares with the class jobs (one workdir per task: a finished class run is re-read, a
  missing one is trained), and the PCA-20 floor row (:data:`common.floors.FLOOR_ROW`), the mean of the per-class
  floors, each computed in the class run on the same split.
* The same jobs on ``mnist5k`` (``mnist5k_<task>_...``), registered as a dataset variant of Table II.
* ``permutation.table1/<task>_cifar10_class<c>`` / ``..._cifar100_class<c>`` (20 superclasses) and their
  ``..._avg`` jobs, all six tasks; ``permutation.table3/<task>_class<c>`` (ImageNet 20-class folder under
  ``<data_dir>/imagenet20/{train,test}/<class>/``) and ``<task>_avg``. Without their data they skip with one line.

The floor cell is declared only where the registry has the floor row (``Table.has_cell``), once per table and
variant (Table I: by the CIFAR-10 average jobs); the floor value is in every job's ``extra`` in any case.
"""
from __future__ import annotations

from pathlib import Path

from common.registry import FLOOR_ROW
from common.registry import Job, JobResult, get_table

TASKS = ("count", "colorization", "inpainting", "splitbrain", "jigsaw", "rotnet")
TASK_NAME = {"count": "counting", "colorization": "colorization", "inpainting": "inpainting",
             "splitbrain": "splitbrain", "jigsaw": "jigsaw", "rotnet": "rotnet"}
COLUMN = {"count": "Count [38]", "colorization": "Color [25]", "inpainting": "Inpaint [36]",
          "splitbrain": "Split-Brain [37]", "jigsaw": "Jigsaw [35]", "rotnet": "RotNet [26]"}
IMAGENET_FOLDER = "imagenet20"
# TABLE II prints Jigsaw and RotNet; Count and Inpaint are columns the report adds (common/tables_data). The two
# colour tasks need RGB images and are not run on gray data.
GRAY_TASKS = ("jigsaw", "rotnet", "count", "inpainting")


def _floor_cells(table: str, column: str) -> tuple:
    """``((FLOOR_ROW, column),)`` where the registry knows the floor row of ``table``, else ``()``."""
    cell = (FLOOR_ROW, column)
    return (cell,) if get_table(table).accepts(cell) else ()


def _data_dir(dataset: str, data_dir):
    if dataset != "image_folder":
        return data_dir
    from common.paths import resolve_data_dir

    return str(Path(resolve_data_dir(data_dir)) / IMAGENET_FOLDER)


def _class_config(task: str, dataset: str, c: int, scale: str, workdir: Path, data_dir, seed: int = 0):
    from permutation_tf.image.config import ImageTaskConfig

    d = _data_dir(dataset, data_dir)
    # Paper scale: bf16 where the CPU has native units, fp32 elsewhere (the cell records which ran).
    precision = "auto" if scale == "paper" else "float32"
    return ImageTaskConfig(task=TASK_NAME[task], dataset=dataset, normal_class=c, scale=scale, seed=seed,
                           workdir=str(Path(workdir) / f"class{c}"), data_dir=None if d is None else str(d),
                           resume=True, precision=precision)


def _run_class(task: str, dataset: str, c: int, scale: str, workdir: Path, data_dir) -> dict:
    from permutation_tf.image.pipeline import run

    return run(_class_config(task, dataset, c, scale, workdir, data_dir))


def _class_floor(task: str, dataset: str, c: int, scale: str, workdir: Path, data_dir, seed: int = 0) -> float:
    """The PCA-20 floor AUROC (%) of class ``c``'s split, from the run's own data preparation, no training."""
    from permutation_tf.image import evaluate
    from permutation_tf.image.data import prepare

    cfg = _class_config(task, dataset, c, scale, workdir, data_dir, seed).resolved()
    data = prepare(cfg)
    return 100.0 * evaluate.floor_metrics(data.train_x, data.test_x, data.test_y, cfg.seed)["auroc"]


def _extra(m: dict) -> dict:
    keep = ("auroc", "auroc_per_transformation", "epoch_seconds", "train_seconds", "eval_seconds", "wall_seconds",
            "loss_per_epoch", "epochs", "batch_size", "data", "score", "auroc_per_rule", "curve", "precision")
    out = {k: m[k] for k in keep if k in m}
    if "floor" in m:
        out["floor_auroc"] = m["floor"]["auroc"]
    return out


def _class_job(table, name, row, task, dataset, c, n_classes, variant, description):
    def run(scale, workdir, data_dir):
        m = _run_class(task, dataset, c, scale, workdir, data_dir)
        return JobResult(values={(row, COLUMN[task]): 100.0 * m["auroc"]}, seeds=(0,), extra=_extra(m))
    return Job(table=table, name=name, cells=((row, COLUMN[task]),), run=run, datasets=(_dataset_name(dataset),),
               workdir_name=f"{table}/{name.rsplit('_class', 1)[0]}", variant=variant, description=description)


def _avg_job(table, name, row, task, dataset, n_classes, variant, description, floor_cell):
    floor_cells = _floor_cells(table, COLUMN[task]) if floor_cell else ()

    def run(scale, workdir, data_dir):
        per_class = [_run_class(task, dataset, c, scale, workdir, data_dir) for c in range(n_classes)]
        aurocs = [100.0 * m["auroc"] for m in per_class]
        floors = [100.0 * m["floor"]["auroc"] for m in per_class]
        values = {(row, COLUMN[task]): sum(aurocs) / n_classes}
        values.update({cell: sum(floors) / n_classes for cell in floor_cells})
        extra = {"auroc_per_class": aurocs, "floor_auroc_per_class": floors, "floor_row": FLOOR_ROW,
                 "floor_auroc_mean": sum(floors) / n_classes,
                 "epoch_seconds_per_class": [m["epoch_seconds"] for m in per_class],
                 "train_seconds_per_class": [m["train_seconds"] for m in per_class]}
        return JobResult(values=values, seeds=(0,), extra=extra)
    def floor(scale, workdir, data_dir, seed=0):
        floors = [_class_floor(task, dataset, c, scale, workdir, data_dir, seed) for c in range(n_classes)]
        return {cell: sum(floors) / n_classes for cell in floor_cells}

    return Job(table=table, name=name, cells=((row, COLUMN[task]),) + floor_cells, run=run,
               datasets=(_dataset_name(dataset),), workdir_name=f"{table}/{name.rsplit('_avg', 1)[0]}",
               variant=variant, description=description, floor=floor if floor_cells else None)


def _dataset_name(dataset: str) -> str:
    return "imagenet" if dataset == "image_folder" else dataset


def _jobs(table: str, row_prefix: str, tasks, dataset: str, n_classes: int, name_prefix: str = "",
          variant: str = "", label: str = "", floor_cell: bool = True) -> list[Job]:
    label = label or dataset
    out = []
    for task in tasks:
        for c in range(n_classes):
            out.append(_class_job(table, f"{name_prefix}{task}_class{c}", f"{row_prefix} {c}", task, dataset, c,
                                  n_classes, variant, f"{COLUMN[task]} on {label}, class {c} normal, one-vs-all"))
        out.append(_avg_job(table, f"{name_prefix}{task}_avg", f"{row_prefix} avg", task, dataset, n_classes,
                            variant, f"{COLUMN[task]} on {label}: mean over the {n_classes} class runs, and the "
                                     f"PCA-20 floor on the same splits", floor_cell))
    return out


JOBS = (
    # TABLE II: Fashion-MNIST (the data this machine holds), and the same protocol on mnist5k.
    _jobs("permutation.table2", "Fashion-MNIST", GRAY_TASKS, "fashion_mnist", 10)
    + _jobs("permutation.table2", "Fashion-MNIST", GRAY_TASKS, "mnist5k", 10, name_prefix="mnist5k_",
            variant="mnist5k")
    # TABLE I: CIFAR-10 and CIFAR-100 (20 superclasses), all six tasks.
    + _jobs("permutation.table1", "CIFAR-10", TASKS, "cifar10", 10, name_prefix="cifar10_")
    # One floor row per table: Table I's is CIFAR-10's (CIFAR-100's floor is in its jobs' extra).
    + _jobs("permutation.table1", "CIFAR-100", TASKS, "cifar100", 20, name_prefix="cifar100_",
            label="CIFAR-100 superclasses", floor_cell=False)
    # TABLE III: ImageNet, 20 classes, from an image folder.
    + _jobs("permutation.table3", "ImageNet", TASKS, "image_folder", 20, label="ImageNet 20-class folder")
)

# TABLES IV-VI: the video method and its baselines (permutation_tf/video_tables.py).
from permutation_tf.video_tables import VIDEO_JOBS  # noqa: E402

JOBS = list(JOBS) + list(VIDEO_JOBS)
