"""OLED jobs for ``common.run_tables`` / ``run_all.sh`` (protocol: ``common/registry.py`` docstring).

Imports nothing heavy at module level. Every job builds an :class:`oled_tf.config.OLEDConfig` for the scale and
seed and calls :func:`oled_tf.experiment.run`; cell values are the AUROC (and EER) fractions of its ``metrics.json``.

* ``oled.table1/class<c>``: MNIST, MemAE protocol, normal class c (10 parts, averaged by the report).
* ``oled.table2/class<c>``: CIFAR-10, OCGAN protocol 2.
* ``oled.table3/ped2``: UCSD Ped2, 30x30 patches, frame-level AUROC and EER.
* ``oled.table4/cae_class<c>``: the context auto-encoder (same R, random 10x10 square); ``oled.table4/
  oled_class<c>`` re-reads the Table 1 runs (shared workdir: the finished run is resumed and re-evaluated; its
  run identity must match, and ``run_all.sh --force`` renews the shared workdir once, see common/run_tables.py).
* ``oled.table5/class8``: the mask generator of the Table 1 digit-8 run as a segmenter (pixel AUROC).
* Tables 1, 4 and 5 again on ``mnist5k`` and ``fashion_mnist`` (jobs ``<dataset>_class<c>`` ...), registered as
  dataset variants: the report shows them in a sub-table "ours on <dataset>" beside the paper's MNIST values.
* Table 1 on the same two datasets with ``code_defaults=True`` (the authors' configuration), variants
  ``<dataset>_code_defaults`` (jobs ``<dataset>_code_defaults_class<c>``), and with the paper text's decoder
  (``decoder_bn=True, output_clip=True``; the default has no clip, as the code), variants ``<dataset>_paper_decoder``.

Every one-class job (Tables 1-4) also fills the row "PCA-20 floor (ours)" (``common/floors.py``): PCA
reconstruction error fitted on the same training images of the same split, computed by the same run
(``metrics.json["floor"]``); in Table 4 the CAE jobs carry it (same split as the Table 1 runs). Each job's
``floor`` computes those cells alone from the same data preparation (``python -m common.add_floors``).
"""
from __future__ import annotations

from common.registry import FLOOR_ROW, Job, JobResult

SCORES = ("s_rec", "s_mask", "s_cont", "s_avg")
OURS = {s: f"OLED (Ours) {s}" for s in SCORES}
CAE = {s: f"CAE {s}" for s in SCORES}


def _config(dataset, scale, workdir, data_dir, seed, **kw):
    from oled_tf.config import OLEDConfig

    return OLEDConfig(dataset=dataset, scale=scale, workdir=str(workdir), seed=seed,
                      data_dir=None if data_dir is None else str(data_dir), **kw)


def _run(dataset, scale, workdir, data_dir, seed, **kw) -> dict:
    from oled_tf.experiment import run

    return run(_config(dataset, scale, workdir, data_dir, seed, **kw))


def _extra(m: dict) -> dict:
    # auroc: each score at its validation-selected epoch (labelled outliers, paper 4.1); auroc_last_epoch: no
    # selection, the number that is like-for-like with methods that never see an outlier (GEOM, RotNet).
    keep = ("auroc", "auroc_last_epoch", "eer", "eer_last_epoch", "best_epoch", "selection", "data",
            "segmentation_auroc", "train_seconds", "wall_seconds", "epochs", "floor", "collapse_warning",
            "training_health", "learning_gate", "jit_compile", "jit_probe", "precision")
    return {k: m[k] for k in keep if k in m}


def _floor_cells(floor: dict, columns=("AUCROC",)) -> dict:
    return {(FLOOR_ROW, col): floor["pca20_auroc" if col == "AUCROC" else "pca20_eer"] for col in columns}


def _floor_job(dataset, columns=("AUCROC",), **kw):
    """The floor cells of a job alone: the job's data preparation (same config, same split), no training."""
    def floor(scale, workdir, data_dir, seed=0):
        from common.floors import floor_metrics
        from oled_tf.data import prepare

        d = prepare(_config(dataset, scale, workdir, data_dir, seed, **kw).resolved())
        return _floor_cells(floor_metrics(d.train_x, d.test_x, d.test_y, d.frame_ids, d.video_lengths,
                                          d.video_labels, seed=seed), columns)
    return floor


def _image_job(dataset, rows, floor: bool = True, **kw):
    def run(scale, workdir, data_dir, seed=0):
        m = _run(dataset, scale, workdir, data_dir, seed, **kw)
        values = {(rows[s], "AUCROC"): m["auroc"][s] for s in SCORES}
        if floor:
            values.update(_floor_cells(m["floor"]))
        return JobResult(values=values, seeds=(seed,), extra=_extra(m))
    return run


def _ucsd(scale, workdir, data_dir, seed=0):
    m = _run("ucsd", scale, workdir, data_dir, seed)
    values = _floor_cells(m["floor"], ("AUCROC", "EER"))
    for s in SCORES:
        values[(OURS[s], "AUCROC")] = m["auroc"][s]
        values[(OURS[s], "EER")] = m["eer"][s]
    return JobResult(values=values, seeds=(seed,), extra=_extra(m))


def _segmentation(dataset):
    def run(scale, workdir, data_dir, seed=0):
        m = _run(dataset, scale, workdir, data_dir, seed, normal_class=8)
        seg = m["segmentation_auroc"]
        return JobResult(values={("Inlier", "AUCROC"): seg["inlier"], ("Outlier", "AUCROC"): seg["outlier"]},
                         seeds=(seed,), extra=_extra(m))
    return run


def _cells(rows, floor: bool = True):
    return tuple((rows[s], "AUCROC") for s in SCORES) + (((FLOOR_ROW, "AUCROC"),) if floor else ())


def _table1_jobs(dataset: str, variant: str = "", **kw) -> list[Job]:
    """Table 1 (ten one-class runs) on an MNIST-like dataset; ``variant`` is "" for the paper's MNIST, else the
    name of the sub-table the report shows it in; ``kw`` are further OLEDConfig fields (e.g. code_defaults)."""
    p = f"{variant}_" if variant else ""
    on = f" on {dataset}" if variant else ""
    # oled_tf.data picks the protocol: MemAE's on pooled MNIST / mnist5k, the official train/test split otherwise.
    protocol = "MemAE protocol" if dataset in ("mnist", "mnist5k") else "official train/test split"
    setting = "".join(f", {k}={v}" for k, v in sorted(kw.items()))
    return [Job(table="oled.table1", name=f"{p}class{c}", cells=_cells(OURS),
                run=_image_job(dataset, OURS, normal_class=c, **kw), datasets=(dataset,), n_parts=10,
                variant=variant, floor=_floor_job(dataset, normal_class=c, **kw),
                description=f"OLED, class {c} normal, {protocol}{on}{setting}") for c in range(10)]


def _mnist_like_jobs(dataset: str, variant: str = "") -> list[Job]:
    """Tables 1, 4 and 5 (MemAE protocol, CAE ablation, segmentation) on an MNIST-like dataset; ``variant`` is
    "" for the paper's MNIST, else the dataset that stands in for it (reported in its own sub-table)."""
    p = f"{dataset}_" if variant else ""
    on = f" on {dataset}" if variant else ""
    return (
        _table1_jobs(dataset, variant)
        + [Job(table="oled.table4", name=f"{p}cae_class{c}", cells=_cells(CAE),
               run=_image_job(dataset, CAE, normal_class=c, mask="random"), datasets=(dataset,), n_parts=10,
               variant=variant, floor=_floor_job(dataset, normal_class=c, mask="random"),
               description=f"CAE ablation (random 10x10 mask), class {c}{on}") for c in range(10)]
        + [Job(table="oled.table4", name=f"{p}oled_class{c}", cells=_cells(OURS, floor=False),
               run=_image_job(dataset, OURS, floor=False, normal_class=c), datasets=(dataset,), n_parts=10,
               variant=variant, workdir_name=f"oled.table1/{p}class{c}",
               description=f"OLED rows of Table 4 = the Table 1 run of class {c}{on}") for c in range(10)]
        + [Job(table="oled.table5", name=f"{p}class8", cells=(("Inlier", "AUCROC"), ("Outlier", "AUCROC")),
               run=_segmentation(dataset), datasets=(dataset,), workdir_name=f"oled.table1/{p}class8",
               variant=variant, description=f"MM of the Table 1 class-8 run as a segmenter of the foreground{on}")]
    )


JOBS = (
    _mnist_like_jobs("mnist")
    + [Job(table="oled.table2", name=f"class{c}", cells=_cells(OURS),
           run=_image_job("cifar10", OURS, normal_class=c), datasets=("cifar10",), n_parts=10,
           floor=_floor_job("cifar10", normal_class=c),
           description=f"OLED, CIFAR-10 class {c} normal, OCGAN protocol 2") for c in range(10)]
    + [Job(table="oled.table3", name="ped2",
           cells=tuple((OURS[s], col) for s in SCORES for col in ("AUCROC", "EER"))
           + ((FLOOR_ROW, "AUCROC"), (FLOOR_ROW, "EER")),
           run=_ucsd, datasets=("ucsd_ped2",), floor=_floor_job("ucsd", ("AUCROC", "EER")),
           description="OLED, UCSD Ped2 30x30 patches, frame level")]
    # The same protocols on the data a CPU machine has (dataset variants, reported beside the paper's MNIST).
    + _mnist_like_jobs("mnist5k", variant="mnist5k")
    + _mnist_like_jobs("fashion_mnist", variant="fashion_mnist")
    # Table 1 with the authors' code configuration (networks, gamma, threshold unit, MM inputs: --code_defaults),
    # issue 11 item 3/7: on digit 8 it cleared the PCA-20 floor where the paper's networks did not.
    + _table1_jobs("mnist5k", variant="mnist5k_code_defaults", code_defaults=True)
    + _table1_jobs("fashion_mnist", variant="fashion_mnist_code_defaults", code_defaults=True)
    # Issue 18 cause 1: the paper text's decoder (BN + the [-1, 1] clip) beside the default (BN, the code's
    # unclipped output), everything else the defaults.
    + _table1_jobs("mnist5k", variant="mnist5k_paper_decoder", decoder_bn=True, output_clip=True)
    + _table1_jobs("fashion_mnist", variant="fashion_mnist_paper_decoder", decoder_bn=True, output_clip=True)
)
