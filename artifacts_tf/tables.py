"""Learning to Spot Artifacts jobs for ``common.run_tables`` / ``run_all.sh`` (protocol: ``common/registry.py``).

Imports nothing heavy at module level. Every job builds an :class:`artifacts_tf.config.ArtifactsConfig` and calls
:func:`artifacts_tf.train.run`; values are test accuracies in percent, as the paper prints them.

* ``artifacts.table1/<row>``: one pre-training run per Table 1 row (``baseline``, ``a`` .. ``l``) on STL-10,
  transferred with the Table 1 protocol (frozen conv1-5, re-initialised fc6-fc8). All rows with the 2x2 encoder
  share one pre-trained autoencoder (``_autoencoder_k2`` beside the job folders), (h) its own 3x3 one.
  The baseline job also runs the two floors (random-init frozen conv; frozen AE encoder), stored in ``extra``.
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


def _run(dataset, scale, workdir, data_dir, ablation, floors=False) -> dict:
    from artifacts_tf.config import ArtifactsConfig
    from artifacts_tf.train import run

    kernel = 3 if ablation == "h" else 2
    ae_dir = Path(workdir).parent / f"_autoencoder_{dataset}_k{kernel}"
    cfg = ArtifactsConfig(dataset=dataset, scale=scale, workdir=str(workdir), ablation=ablation, floors=floors,
                          data_dir=None if data_dir is None else str(data_dir), autoencoder_dir=str(ae_dir),
                          resume=True)
    return run(cfg)


def _extra(m: dict) -> dict:
    keep = ("transfer", "final_losses", "data", "model", "autoencoder_seconds", "game_seconds", "wall_seconds",
            "game_images_per_second")
    return {k: m[k] for k in keep if k in m}


def _table1_job(dataset: str, row: str, variant: str) -> Job:
    from artifacts_tf.model import ABLATIONS

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
