"""Learning to Spot Artifacts jobs for ``common.run_tables`` / ``run_all.sh`` (protocol: ``common/registry.py``).

Imports nothing heavy at module level. Every job builds an :class:`artifacts_tf.config.ArtifactsConfig` and calls
:func:`artifacts_tf.experiment.run`; values are test accuracies in percent, as the paper prints them.

* ``artifacts.table1/<row>``: one pre-training run per Table 1 row (``baseline``, ``a`` .. ``l``) on STL-10,
  transferred with the Table 1 protocol (frozen conv1-5, re-initialised fc6-fc8) at paper scale, with the CPU-scale
  probe (``--transfer=probe``: conv5 with its BN folded, standardised logistic regression, regularisation chosen on
  validation; conv1..conv5 and C's own initial weights in extra) at quick scale, where the Fashion-MNIST stand-in
  runs at 64x64 in mixed_bfloat16 (:data:`STAND_IN_QUICK`). All rows with the 2x2 encoder
  share one pre-trained autoencoder (``_autoencoder_<dataset>_k2`` beside the job folders), (h) its own 3x3 one.
  The baseline job also runs the two transfer floors (random-init frozen conv; frozen AE encoder), stored in
  ``extra["floors"]`` (not registry rows: ``common.floors.FLOOR_ROW`` is the PCA-20 floor of one-class tables).
  The shared autoencoder is its own run (``--stage=autoencoder``), reused through ``--autoencoder_dir`` (checked
  by run identity and weights hash).
* ``artifacts.table2/frozen``: "Ours (conv1-conv5 frozen)", the Table 2 fold protocol (linear classifier on frozen
  conv5, one per fold, mean and SD) on the theta = 0.7 model of Table 1 row (e) (Sec. 5.2: the transfer
  experiments use theta = 0.7); shares that job's folder.
* The same jobs on ``fashion_mnist`` (names ``fashion_mnist_<row>``), registered as dataset variants: unlabelled
  pre-training on the 60k training images without labels, transfer on the labelled training images, accuracy on
  the 10k test images (subsets at quick scale), images resized to 96x96x3.

* ``artifacts.table2/finetuned``: "Ours (conv1-conv5 finetuned)", the same folds with the whole trunk trained
  (computed by the row (e) run, ``--finetune_folds``; shares that job's folder).
* ``artifacts.table3/voc07_cls``, ``artifacts.table4/imagenet``, ``artifacts.table5/places``: one ImageNet
  pre-training run (``<data_dir>/imagenet/{train,val}/<class>/``, 128x128, theta = 0.7, Sec. 4.4; folder
  ``artifacts.pretrain/imagenet`` beside the tables' folders, its autoencoder ``_autoencoder_imagenet_k2`` there), then per job a transfer run
  on its conv layers (``--discriminator_dir``): VOC 2007 classification fine-tuned (``<data_dir>/voc2007``), the
  layer-wise protocol on ImageNet or on Places (``<data_dir>/places/{train,val}/<class>/``, classes may be
  nested). Each skips with one line when its data is missing, before any training.

Not registered: Table 3 detection (Fast R-CNN) and segmentation (FCN) (see README).
"""
from __future__ import annotations

from pathlib import Path

from common.registry import Job, JobResult

ROWS = ("baseline",) + tuple("abcdefghijkl")


def _config(dataset, scale, workdir, data_dir, ablation, **kw):
    from artifacts_tf.config import ArtifactsConfig

    return ArtifactsConfig(dataset=dataset, scale=scale, workdir=str(workdir), ablation=ablation,
                           data_dir=None if data_dir is None else str(data_dir), resume=True, **kw)


# Table 1 row (e) (theta = 0.7) is also the model of Table 2, whose jobs share its folder: its run computes both
# Table 2 rows (frozen and fine-tuned folds), so the three jobs have one configuration.
ROW_OPTIONS = {"e": {"finetune_folds": True}}


def _run(dataset, scale, workdir, data_dir, ablation, floors=False, ae_name=None, seed=0, **kw) -> dict:
    from artifacts_tf.experiment import AE_NAME, run
    from common.run_identity import read_identity

    # One autoencoder stage (its own run) per dataset, encoder kernel and seed, reused by every row.
    kernel = 3 if ablation == "h" else 2
    ae_dir = Path(workdir).parent / (f"_autoencoder_{ae_name or dataset}_k{kernel}" + (f"-seed{seed}" if seed else ""))
    if seed:
        kw["seed"] = seed
    size = {k: kw[k] for k in ("image_size", "precision", "seed") if k in kw}
    if AE_NAME not in ((read_identity(ae_dir) or {}).get("weights") or {}):
        run(_config(dataset, scale, ae_dir, data_dir, "h" if kernel == 3 else "baseline", stage="autoencoder",
                    transfer="none", figures=False, **size))
    return run(_config(dataset, scale, workdir, data_dir, ablation, floors=floors, autoencoder_dir=str(ae_dir),
                       **{**ROW_OPTIONS.get(ablation, {}), **kw}))


# Table 1's floors here are transfer floors (same protocol as the discriminator), not registry rows.
FLOORS = {"random_init_conv": "random-init frozen conv (floor)", "autoencoder_encoder": "frozen AE encoder (floor)",
          # the CPU-scale probe's further rows (--transfer=probe)
          "discriminator_init": "C's own initial weights (paired floor)", "pixels": "raw pixels (floor)",
          "discriminator_conv5_bn_dropped": "C, conv5 BN dropped (paper Sec. 4.4 text)"}


def _extra(m: dict) -> dict:
    keep = ("transfer", "final_losses", "data", "model", "autoencoder_seconds", "game_seconds", "wall_seconds",
            "game_images_per_second", "autoencoder_id", "game_gates", "image_size", "precision")
    out = {k: m[k] for k in keep if k in m}
    floors = {label: m["transfer"][k]["accuracy"] for k, label in FLOORS.items() if k in m.get("transfer", {})}
    if floors:
        out["floors"] = floors
    return out


# The Fashion-MNIST stand-in at quick scale (docs/artifacts-notes.md, "Quick preset"): 64x64x3 instead of 96x96x3
# (28 px of information; the 96 px step is ~2.1x dearer) and mixed_bfloat16 (native bf16 units: 1.01 vs 1.48 s per
# game step of batch 32, measured). The quick preset's transfer is the CPU-scale probe (--transfer=probe).
STAND_IN_QUICK = {"fashion_mnist": dict(image_size=64, precision="mixed_bfloat16")}


def _stand_in(dataset: str, scale: str) -> dict:
    return dict(STAND_IN_QUICK.get(dataset, {})) if scale == "quick" else {}


def _table1_job(dataset: str, row: str, variant: str) -> Job:
    from artifacts_tf.config import ABLATIONS

    label = ABLATIONS[row][0]

    def run(scale, workdir, data_dir, seed=0):
        kw = _stand_in(dataset, scale)
        if row != "baseline":   # the trend probe of C during the game: baseline only (each costs a layer-wise probe)
            kw["trend_snapshots"] = 0
        m = _run(dataset, scale, workdir, data_dir, row, floors=(row == "baseline"), seed=seed, **kw)
        return JobResult(values={(label, "Accuracy"): m["transfer"]["discriminator"]["accuracy"]}, seeds=(seed,),
                         extra=_extra(m))

    p = f"{dataset}_" if variant else ""
    on = (f" on {dataset} (96x96x3; quick scale: 64x64x3, mixed_bfloat16, the CPU-scale probe: conv5 with its BN "
          f"folded, standardised logistic regression, C chosen on validation)") if variant else ""
    return Job(table="artifacts.table1", name=f"{p}{row}", cells=((label, "Accuracy"),), run=run,
               datasets=(dataset,), variant=variant,
               description=f"{label}: pre-train, then frozen conv + re-initialised fc6-fc8{on}")


TABLE2_ROWS = {  # name suffix -> (row, fold result key in metrics.json, description)
    "frozen": ("Ours (conv1-conv5 frozen)", "folds_linear_conv5",
               "linear classifier on frozen conv5 of the theta=0.7 model, one per fold"),
    "finetuned": ("Ours (conv1-conv5 finetuned)", "folds_finetuned",
                  "conv1-conv5 fine-tuned + linear classifier on conv5 of the theta=0.7 model, one per fold"),
}


def _table2_job(dataset: str, variant: str, mode: str) -> Job:
    row, key, description = TABLE2_ROWS[mode]

    def run(scale, workdir, data_dir, seed=0):
        m = _run(dataset, scale, workdir, data_dir, "e", trend_snapshots=0, seed=seed, **_stand_in(dataset, scale))
        folds = m["transfer"]["discriminator"][key]
        return JobResult(values={(row, "Accuracy"): folds["mean"], (row, "SD"): folds["sd"]}, seeds=(seed,),
                         extra={"folds": folds, **_extra(m)})

    p = f"{dataset}_" if variant else ""
    return Job(table="artifacts.table2", name=f"{p}{mode}", cells=((row, "Accuracy"), (row, "SD")), run=run,
               datasets=(dataset,), variant=variant, workdir_name=f"artifacts.table1/{p}e", description=description)


def _jobs(dataset: str, variant: str = "") -> list[Job]:
    return [_table1_job(dataset, r, variant) for r in ROWS] + [_table2_job(dataset, variant, m) for m in TABLE2_ROWS]


# ------------------------------------------------------------------------------------------- Tables 3-5
# Sec. 4.4: the discriminator of Tables 3-5 is trained on 128x128 crops of ImageNet with theta = 0.7 (Sec. 5.2);
# one such pre-training run (and its autoencoder run) beside the job folders, shared by the three tables.
IMAGENET_PRETRAIN = dict(image_size=128)
# <results>/runs/<scale>/artifacts.pretrain/imagenet (its autoencoder run: .../_autoencoder_imagenet_k2).
PRETRAIN_DIR = ("artifacts.pretrain", "imagenet")


def _require(root: Path, what: str) -> None:
    """DataError (the registry's one-line skip) unless ``root`` holds what the job reads, checked before any
    training: an ImageNet-layout folder (``train/``, ``val/``) or VOC 2007."""
    from common.streaming import list_image_files
    from common.voc import find_voc2007

    if what == "voc2007":
        find_voc2007(root)
        return
    for split in ("train", "val"):
        list_image_files(root, split, nested=True)


def _imagenet_protocol(scale, workdir, data_dir, transfer: str, transfer_data: str, needs: tuple) -> dict:
    """Pre-train on ``<data_dir>/imagenet`` (shared run), then transfer its discriminator's conv layers with
    ``transfer`` on ``<data_dir>/<transfer_data>`` in this job's folder."""
    from artifacts_tf.experiment import TRUNK_NAME, run
    from common.paths import resolve_data_dir
    from common.run_identity import read_identity

    root = resolve_data_dir(data_dir)
    for name in needs:
        _require(root / name, name)
    pre_dir = Path(workdir).parent.parent.joinpath(*PRETRAIN_DIR)
    if TRUNK_NAME not in ((read_identity(pre_dir) or {}).get("weights") or {}):
        _run("image_folder", scale, pre_dir, root / "imagenet", "e", ae_name="imagenet", transfer="none",
             figures=False, **IMAGENET_PRETRAIN)
    return run(_config("image_folder", scale, workdir, root / "imagenet", "e", transfer=transfer,
                       transfer_data_dir=str(root / transfer_data), discriminator_dir=str(pre_dir),
                       **IMAGENET_PRETRAIN))


def _table3_run(scale, workdir, data_dir):
    cell = ("Ours", "Classification (mAP)")
    m = _imagenet_protocol(scale, workdir, data_dir, "voc07", "voc2007", ("voc2007", "imagenet"))
    return JobResult(values={cell: m["transfer"]["voc07_classification_map"]}, seeds=(0,), extra=m)


def _layerwise_job(table: str, name: str, target: str, datasets: tuple) -> Job:
    cells = tuple(("Ours", f"conv{i}") for i in range(1, 6))

    def run(scale, workdir, data_dir):
        needs = (target,) if target == "imagenet" else (target, "imagenet")
        m = _imagenet_protocol(scale, workdir, data_dir, "layerwise", target, needs)
        acc = m["transfer"]["accuracy"]
        return JobResult(values={c: acc[c[1]] for c in cells}, seeds=(0,), extra=m)

    return Job(table=table, name=name, cells=cells, run=run, datasets=datasets,
               description=f"ImageNet pre-training (128x128, theta=0.7), conv1..conv5 frozen and pooled to ~9,200 "
                           f"values, one logistic regression per layer on {target} (top-1 on val)")


JOBS = _jobs("stl10") + _jobs("fashion_mnist", variant="fashion_mnist") + [
    Job(table="artifacts.table3", name="voc07_cls", cells=(("Ours", "Classification (mAP)"),), run=_table3_run,
        datasets=("imagenet", "voc2007"),
        description="ImageNet pre-training (128x128, theta=0.7), 227x227 AlexNet from C's conv layers fine-tuned "
                    "on VOC 2007 trainval, test mAP"),
    _layerwise_job("artifacts.table4", "imagenet", "imagenet", ("imagenet",)),
    _layerwise_job("artifacts.table5", "places", "places", ("imagenet", "places")),
]
