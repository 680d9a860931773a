"""Table 4 of NRE: frame-level EER on UCSD Ped2 from the reconstruction error of 30x30 patches (Section 4.5).

Protocol: all 30x30 patches of the (normal) training frames train the plain AE and then NRE_{0.6,0.2,0.2} and
NRE_{0.6,0.4,0} with T = 1 (both initialised from the same AE, whose encoder is A). Test patches are scored by
their reconstruction error ``||X - X~||^2`` (mean over pixels; Section 4.5 follows [46]); a frame's score is the
maximum over its patches ("a frame is considered as anomaly if at least one of its pixels is detected as
anomaly", ``common.protocols.frame_scores_from_patches``); the EER is computed over all test frames of all test
videos pooled (``common.metrics.eer``), reported in % as the paper prints it.

Assumptions (the paper is silent): non-overlapping patches (stride 30, border-snapped grid:
``common.protocols.extract_patches``), gray frames scaled to [0, 1]; ``patches_per_frame`` > 0 keeps a seeded
random subset of each training frame's patches and ``max_frames`` > 0 limits the training frames (quick scale).

Also fills the row "PCA-20 floor (ours)": PCA reconstruction error of the same training patches, pooled to
frames the same way (``nre_tf.floors``).

The AE and both NRE variants are trained inside the run's ``--strategy`` scope (``--strategy=mirrored`` trains
them under the strategy).

Library code (no flags); the entry point is ``python -m nre_tf.table4 --data_dir=<folder holding UCSDped2>
--scale=...`` (UCSD Ped2 is not on this machine).
"""
from __future__ import annotations

TABLE = "nre.table4"
VARIANTS = {"NRE_0.6,0.2,0.2": (0.6, 0.2, 0.2), "NRE_0.6,0.4,0": (0.6, 0.4, 0.0)}
PAPER = {"NRE_0.6,0.2,0.2": 17.5, "NRE_0.6,0.4,0": 14.0}


def score_video(model, frames, batch_size: int = 512):
    """Frame scores (max patch reconstruction error) of one test video (T, H, W) uint8."""
    import numpy as np

    from common.protocols import frame_scores_from_patches
    from nre_tf import trainer
    from nre_tf.data import video_patches
    from nre_tf.losses import reconstruction_error
    from nre_tf.model import to_float

    p, fids = video_patches(frames)
    rec = trainer.reconstruct(model, p, batch_size)
    err = np.asarray(reconstruction_error(to_float(p), rec))
    return frame_scores_from_patches(err, fids, len(frames))


def run(config) -> dict:
    """Table 4 for ``config`` (the lambdas of ``config`` are ignored: both variants of the table are run), through
    the shared lifecycle (:func:`nre_tf.results.run_with_cells`); the cells are in ``"_cells"``."""
    from nre_tf import encoder_a
    from nre_tf.data import training_patches
    from nre_tf.results import run_with_cells

    return run_with_cells(encoder_a.prepare(config, training_patches), body)


def body(run) -> dict:
    import numpy as np

    from common.metrics import auroc, eer
    from nre_tf import encoder_a, trainer
    from nre_tf.data import test_videos, training_patches
    from nre_tf.floors import table4_cells, ucsd_floor
    from nre_tf.gates import gates

    cfg, workdir = run.config, run.workdir
    x = training_patches(cfg)
    test, labels = test_videos(cfg)
    floor = ucsd_floor(x, test, cfg.seed)  # the PCA-20 floor on the same patches (row "PCA-20 floor (ours)")
    stage = encoder_a.stage_record(cfg)  # A: the shared, converged plain AE on the same patches
    ae_s = stage["train_seconds"]
    ae, nets = encoder_a.load(cfg, tuple(x.shape[1:]))
    run.record(gates=gates(stage, None, None, name="Table 4 NRE"))
    values, extra = {}, {"auroc": {}, "train_seconds": {"ae": ae_s}}
    scores = {"AE": np.concatenate([score_video(ae, v.frames) for v in test])}
    for name, lam in VARIANTS.items():
        nre, info = trainer.train_nre(nets["encoder"], nets["decoder"], nets["encoder"], x, lam, 1, cfg.epochs,
                                      cfg.batch_size, workdir / name, lr=cfg.lr, clusters=cfg.clusters,
                                      exact=cfg.exact, refresh_every=cfg.refresh_every, seed=cfg.seed,
                                      resume=cfg.resume, strategy=run)
        extra["train_seconds"][name] = info["train_seconds"]
        scores[name] = np.concatenate([score_video(nre, v.frames) for v in test])
    for name, s in scores.items():
        extra["auroc"][name] = auroc(labels, s)
        if name in VARIANTS:
            values[(name, "EER")] = 100.0 * eer(labels, s)
        else:
            extra["ae_eer_percent"] = 100.0 * eer(labels, s)
    values.update(table4_cells(floor))
    results = {"table": TABLE, "dataset": "ucsd_ped2", "scale": cfg.scale, "n_train_patches": int(len(x)),
               "floor": floor,
               "n_test_frames": int(len(labels)), "values": {f"{r} | {c}": v for (r, c), v in values.items()},
               "paper": {f"{k} | EER": v for k, v in PAPER.items()}, **extra}
    results["_cells"] = values
    return results
