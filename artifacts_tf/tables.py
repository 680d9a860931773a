"""Learning to Spot Artifacts jobs for ``common.run_tables`` / ``run_all.sh`` (protocol: ``common/registry.py``).

Imports nothing heavy at module level. Every job builds an :class:`artifacts_tf.config.ArtifactsConfig` and calls
:func:`artifacts_tf.train.run`; values are test accuracies in percent, as the paper prints them.

* ``artifacts.table1/<row>``: one pre-training run per Table 1 row (``baseline``, ``a`` .. ``l``) on STL-10,
  transferred with the Table 1 protocol (frozen conv1-5, re-initialised fc6-fc8). All rows with the 2x2 encoder
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

Not registered: Table 2 "conv1-conv5 finetuned" and Tables 3-5 (VOC 2007/2012, ImageNet, Places; see README).
"""
from __future__ import annotations

from pathlib import Path

from common.registry import Job, JobResult

ROWS = ("baseline",) + tuple("abcdefghijkl")


def _config(dataset, scale, workdir, data_dir, ablation, **kw):
    from artifacts_tf.config import ArtifactsConfig

    return ArtifactsConfig(dataset=dataset, scale=scale, workdir=str(workdir), ablation=ablation,
                           data_dir=None if data_dir is None else str(data_dir), resume=True, **kw)


def _run(dataset, scale, workdir, data_dir, ablation, floors=False) -> dict:
    from artifacts_tf.train import AE_NAME, run
    from common.run_identity import read_identity

    # One autoencoder stage (its own run) per dataset and encoder kernel, reused by every row.
    kernel = 3 if ablation == "h" else 2
    ae_dir = Path(workdir).parent / f"_autoencoder_{dataset}_k{kernel}"
    if AE_NAME not in ((read_identity(ae_dir) or {}).get("weights") or {}):
        run(_config(dataset, scale, ae_dir, data_dir, "h" if kernel == 3 else "baseline", stage="autoencoder",
                    transfer="none", figures=False))
    return run(_config(dataset, scale, workdir, data_dir, ablation, floors=floors, autoencoder_dir=str(ae_dir)))


# Table 1's floors here are transfer floors (same protocol as the discriminator), not registry rows.
FLOORS = {"random_init_conv": "random-init frozen conv (floor)", "autoencoder_encoder": "frozen AE encoder (floor)"}


def _extra(m: dict) -> dict:
    keep = ("transfer", "final_losses", "data", "model", "autoencoder_seconds", "game_seconds", "wall_seconds",
            "game_images_per_second", "autoencoder_id")
    out = {k: m[k] for k in keep if k in m}
    floors = {label: m["transfer"][k]["accuracy"] for k, label in FLOORS.items() if k in m.get("transfer", {})}
    if floors:
        out["floors"] = floors
    return out


def _table1_job(dataset: str, row: str, variant: str) -> Job:
    from artifacts_tf.config import ABLATIONS

    label = ABLATIONS[row][0]

    def run(scale, workdir, data_dir):
        m = _run(dataset, scale, workdir, data_dir, row, floors=(row == "baseline"))
        return JobResult(values={(label, "Accuracy"): m["transfer"]["discriminator"]["accuracy"]}, seeds=(0,),
                         extra=_extra(m))

    p = f"{dataset}_" if variant else ""
    on = f" on {dataset} (96x96x3)" if variant else ""
    return Job(table="artifacts.table1", name=f"{p}{row}", cells=((label, "Accuracy"),), run=run,
               datasets=(dataset,), variant=variant,
               description=f"{label}: pre-train, then frozen conv + re-initialised fc6-fc8{on}")


def _table2_job(dataset: str, variant: str) -> Job:
    row = "Ours (conv1-conv5 frozen)"

    def run(scale, workdir, data_dir):
        m = _run(dataset, scale, workdir, data_dir, "e")
        folds = m["transfer"]["discriminator"]["folds_linear_conv5"]
        return JobResult(values={(row, "Accuracy"): folds["mean"], (row, "SD"): folds["sd"]}, seeds=(0,),
                         extra={"folds": folds, **_extra(m)})

    p = f"{dataset}_" if variant else ""
    return Job(table="artifacts.table2", name=f"{p}frozen", cells=((row, "Accuracy"), (row, "SD")), run=run,
               datasets=(dataset,), variant=variant, workdir_name=f"artifacts.table1/{p}e",
               description="linear classifier on frozen conv5 of the theta=0.7 model, one per fold")


def _jobs(dataset: str, variant: str = "") -> list[Job]:
    return [_table1_job(dataset, r, variant) for r in ROWS] + [_table2_job(dataset, variant)]


JOBS = _jobs("stl10") + _jobs("fashion_mnist", variant="fashion_mnist")
