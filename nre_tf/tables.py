"""NRE jobs for ``common.run_tables`` / ``run_all.sh`` (protocol: ``common/registry.py`` docstring).

Imports nothing heavy at module level. Each job builds an :class:`nre_tf.config.NREConfig` for the scale and
seed and calls the protocol's ``run`` (``nre_tf.representation_eval``, ``voc_transfer``, ``adversarial``,
``ucsd_eval``; the ``nre_tf.table<N>`` entry points call the same); the cells use the registry's row / column
names.

* ``nre.table1/mnist`` and ``nre.table3/mnist``: the paper's protocols on MNIST (all 20 / 8 cells).
* ``nre.table4/ped2``: UCSD Ped2 (2 cells); skipped with one line when the data are missing.
* ``nre.table2/voc07_cls``: AlexNet NRE pre-training on an ImageNet-layout folder (``<data_dir>/imagenet``,
  ``<root>/<class>/*.JPEG``) and the three VOC 2007 classification columns (``<data_dir>/voc2007``).
  Detection / segmentation columns are out of scope (README).

* ``nre.table1/{mnist5k,fashion_mnist}`` and ``nre.table3/{mnist5k,fashion_mnist}``: the same protocols on the
  datasets available here, registered as dataset variants (``./run_all.sh --only=nre.table1/mnist5k``).

Every job takes the seed of its run (``--seeds``). Table 1 also fills the rows "AE, NRE's total epochs (control,
ours)" (``nre_tf/representation_eval.py``), "PCA-20 floor (ours)", "Raw-pixel floor (ours)" and
"Random-encoder floor (ours)", Table 4 the row "PCA-20 floor (ours)" (``nre_tf/floors.py``), computed by the
same run on the same data; each such job's ``floor`` computes the floor cells alone from the same data
preparation, without training (``python -m common.add_floors``).
"""
from __future__ import annotations

import json

from common.registry import AE_CONTROL_ROW, FLOOR_ROW, FLOOR_ROWS, Job, JobResult

T1_ROWS = ("AE [20]", "DAE [57]", "Context AE [42]", "Split-Brain AE [64]", "NRE_0.5,0.2,0.3 (Ours)")
T1_COLS = ("L-SVM 40", "L-SVM 100", "R-SVM 40", "R-SVM 100")
T1_ADDED_ROWS = (AE_CONTROL_ROW,) + FLOOR_ROWS  # rows the report adds (common.registry.ADDED_ROWS)
T3_ROWS = ("MagNet [35]", "NRE_0.6,0.2,0.2 (Ours)")
T3_COLS = ("eps=0.01", "eps=0.1", "eps=0.2", "eps=0.3")
T4_CELLS = (("NRE_0.6,0.2,0.2", "EER"), ("NRE_0.6,0.4,0", "EER"))
T2_ROW = "NRE_0.5,0.25,0.25 (Ours)"
T2_COLS = ("Classification FC8", "Classification FC6-8", "Classification all")


def _config(dataset, scale, workdir, data_dir, lambdas, seed=0, **kw):
    from nre_tf.config import NREConfig

    return NREConfig(dataset=dataset, data_dir=None if data_dir is None else str(data_dir), scale=scale,
                     workdir=str(workdir), lambdas=lambdas, seed=seed, **kw)


def _result(res: dict, seed: int, keep=("values", "paper")) -> JobResult:
    cells = res.pop("_cells")
    extra = {k: v for k, v in res.items() if k not in keep}
    return JobResult(values=cells, seeds=(seed,), extra=json.loads(json.dumps(extra, default=str)))


def table1_job(dataset):
    def run(scale, workdir, data_dir, seed=0):
        from nre_tf import representation_eval as table1

        return _result(table1.run(_config(dataset, scale, workdir, data_dir, (0.5, 0.2, 0.3), seed)), seed)
    return run


def table1_floor(dataset):
    """The floor cells of a Table 1 job alone: the same split (same config and seed), no auto-encoder."""
    def floor(scale, workdir, data_dir, seed=0):
        from common.training import setup_run
        from nre_tf import trainer
        from nre_tf.floors import table1_cells, table1_floors

        cfg = _config(dataset, scale, workdir, data_dir, (0.5, 0.2, 0.3), seed).resolved()
        x, y, xt, yt = trainer.load_classification_split(cfg.dataset, cfg.data_dir, cfg.n_train, cfg.n_test,
                                                         cfg.seed)
        setup_run(cfg.seed, cfg.deterministic, cfg.precision)  # the random encoder's weights, as in the run
        return table1_cells(table1_floors(x, y, xt, yt, cfg.latent_dim, cfg.seed), T1_COLS)
    return floor


def table3_job(dataset):
    def run(scale, workdir, data_dir, seed=0):
        from nre_tf import adversarial as table3

        return _result(table3.run(_config(dataset, scale, workdir, data_dir, (0.6, 0.2, 0.2), seed)), seed)
    return run


def _table4(scale, workdir, data_dir, seed=0):
    from nre_tf import ucsd_eval as table4

    return _result(table4.run(_config("ucsd_ped2", scale, workdir, data_dir, (0.6, 0.2, 0.2), seed)), seed)


def _table4_floor(scale, workdir, data_dir, seed=0):
    from nre_tf.data import test_videos, training_patches
    from nre_tf.floors import table4_cells, ucsd_floor

    cfg = _config("ucsd_ped2", scale, workdir, data_dir, (0.6, 0.2, 0.2), seed).resolved()
    return table4_cells(ucsd_floor(training_patches(cfg), test_videos(cfg)[0], seed))


def _table2(scale, workdir, data_dir, seed=0):
    from common.paths import resolve_data_dir
    from nre_tf import voc_transfer as table2

    root = resolve_data_dir(data_dir)
    cfg = _config("image_folder", scale, workdir, root / "imagenet", (0.5, 0.25, 0.25), seed, clusters=400,
                  voc_dir=str(root / "voc2007"))
    return _result(table2.run(cfg), seed)


JOBS = [
    Job(table="nre.table1", name="mnist", cells=tuple((r, c) for r in T1_ROWS + T1_ADDED_ROWS for c in T1_COLS),
        run=table1_job("mnist"), datasets=("mnist",), floor=table1_floor("mnist"),
        description="5 auto-encoders x {40, 100} epochs, linear / RBF SVM on E(X)"),
    Job(table="nre.table3", name="mnist", cells=tuple((r, c) for r in T3_ROWS for c in T3_COLS),
        run=table3_job("mnist"), datasets=("mnist",),
        description="black-box FGSM (150-sample substitute), MagNet vs NRE refinement"),
    Job(table="nre.table4", name="ped2", cells=T4_CELLS + ((FLOOR_ROW, "EER"),), run=_table4,
        datasets=("ucsd_ped2",), floor=_table4_floor,
        description="30x30 patches, reconstruction error, frame-level EER, T = 1"),
    Job(table="nre.table2", name="voc07_cls", cells=tuple((T2_ROW, c) for c in T2_COLS), run=_table2,
        datasets=("imagenet", "voc2007"), description="AlexNet NRE pre-training (K = 400), VOC07 classification"),
]

# The same Table 1 and Table 3 protocols on the datasets available on a CPU machine (reported by run_all.sh in
# a sub-table "ours on <dataset>" of each table, next to the paper's MNIST values).
JOBS += [
    Job(table=f"nre.table{t}", name=ds, cells=cells, run=(table1_job if t == 1 else table3_job)(ds),
        datasets=(ds,), variant=ds, floor=table1_floor(ds) if t == 1 else None,
        description=f"the Table {t} protocol on {ds}")
    for t, cells in ((1, JOBS[0].cells), (3, JOBS[1].cells)) for ds in ("mnist5k", "fashion_mnist")
]
