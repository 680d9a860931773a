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

UCSD Ped2 is not on this machine; ``python -m nre_tf.table4 --data_dir=<folder holding UCSDped2> --scale=...``.
"""
from __future__ import annotations

import json
import time


TABLE = "nre.table4"
VARIANTS = {"NRE_0.6,0.2,0.2": (0.6, 0.2, 0.2), "NRE_0.6,0.4,0": (0.6, 0.4, 0.0)}
PAPER = {"NRE_0.6,0.2,0.2": 17.5, "NRE_0.6,0.4,0": 14.0}
PATCH = 30


def training_patches(cfg):
    """uint8 (N, 30, 30, 1) patches of the normal training frames of UCSD Ped2."""
    import numpy as np

    from common.datasets import load_ucsd
    from common.protocols import extract_patches

    data = load_ucsd(cfg.data_dir, "ped2", splits=("train",), load_masks=False)
    frames = np.concatenate([v.frames for v in data.train])
    rng = np.random.default_rng([cfg.seed, 4])
    if cfg.max_frames and len(frames) > cfg.max_frames:
        frames = frames[np.sort(rng.choice(len(frames), cfg.max_frames, replace=False))]
    patches, fids, _ = extract_patches(frames, PATCH, PATCH)
    if cfg.patches_per_frame:
        per = len(patches) // len(frames)
        keep = min(per, cfg.patches_per_frame)
        idx = np.concatenate([f * per + np.sort(rng.choice(per, keep, replace=False)) for f in range(len(frames))])
        patches = patches[idx]
    return patches[..., None]


def score_video(model, frames, batch_size: int = 512):
    """Frame scores (max patch reconstruction error) of one test video (T, H, W) uint8."""
    import numpy as np

    from common.protocols import extract_patches, frame_scores_from_patches
    from nre_tf import trainer
    from nre_tf.losses import reconstruction_error
    from nre_tf.model import to_float

    patches, fids, _ = extract_patches(frames, PATCH, PATCH)
    p = patches[..., None]
    rec = trainer.reconstruct(model, p, batch_size)
    err = np.asarray(reconstruction_error(to_float(p), rec))
    return frame_scores_from_patches(err, fids, len(frames))


def run(config) -> dict:
    """Table 4 for ``config`` (the lambdas of ``config`` are ignored: both variants of the table are run)."""
    import numpy as np

    from common.config import write_metrics
    from common.datasets import load_ucsd
    from common.metrics import auroc, eer
    from common.training import start_run
    from nre_tf import trainer

    cfg, workdir = start_run(config)
    t0 = time.perf_counter()
    x = training_patches(cfg)
    test = load_ucsd(cfg.data_dir, "ped2", splits=("test",), load_masks=False).test
    missing = [v.name for v in test if v.frame_labels is None]
    if missing:
        from common.errors import DataError

        raise DataError(f"UCSD Ped2 test videos without frame labels: {', '.join(missing[:3])}; the .m ground-truth "
                        "file (UCSDped2.m) is needed for the frame-level EER")
    labels = np.concatenate([v.frame_labels for v in test]).astype(np.int64)
    ae, nets, ae_s = trainer.train_autoencoder("ae", x, cfg.ae_epochs, cfg.batch_size, workdir / "ae",
                                               lr=cfg.ae_lr, latent_dim=cfg.latent_dim, seed=cfg.seed,
                                               resume=cfg.resume)
    values, extra = {}, {"auroc": {}, "train_seconds": {"ae": ae_s}}
    scores = {"AE": np.concatenate([score_video(ae, v.frames) for v in test])}
    for name, lam in VARIANTS.items():
        nre, info = trainer.train_nre(nets["encoder"], nets["decoder"], nets["encoder"], x, lam, 1, cfg.epochs,
                                      cfg.batch_size, workdir / name, lr=cfg.lr, clusters=cfg.clusters,
                                      exact=cfg.exact, refresh_every=cfg.refresh_every, seed=cfg.seed,
                                      resume=cfg.resume)
        extra["train_seconds"][name] = info["train_seconds"]
        scores[name] = np.concatenate([score_video(nre, v.frames) for v in test])
    for name, s in scores.items():
        extra["auroc"][name] = auroc(labels, s)
        if name in VARIANTS:
            values[(name, "EER")] = 100.0 * eer(labels, s)
        else:
            extra["ae_eer_percent"] = 100.0 * eer(labels, s)
    results = {"table": TABLE, "dataset": "ucsd_ped2", "scale": cfg.scale, "n_train_patches": int(len(x)),
               "n_test_frames": int(len(labels)), "values": {f"{r} | {c}": v for (r, c), v in values.items()},
               "paper": {f"{k} | EER": v for k, v in PAPER.items()}, **extra,
               "wall_seconds": time.perf_counter() - t0}
    write_metrics(results, workdir)
    results["_cells"] = values
    return results


def main(argv):
    from common.errors import exit_on_error
    from nre_tf.train import config_from_flags

    @exit_on_error
    def _main():
        res = run(config_from_flags(default_lambdas=(0.6, 0.2, 0.2)))
        res.pop("_cells")
        print(json.dumps(res, indent=2, default=str))
    _main()


if __name__ == "__main__":
    import nre_tf.train  # noqa: F401  (defines the flags)

    from common import flags as cflags

    cflags.run(main, nre_tf.train)
