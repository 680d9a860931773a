"""Table 1 of NRE: SVM accuracy on the representation E(X) of five auto-encoders (Section 4.2).

Protocol: AE [20], denoising AE [57], context AE [42], split-brain AE [64] and NRE_{0.5,0.2,0.3}, each
trained for 40 and for 100 epochs on the (unlabelled) training images; the training and test images are mapped
to E(X); a linear SVM and an RBF SVM (gamma 0.01) are fitted on the training representations (with their labels)
and the test accuracy is reported (``common/linear_eval.py``). The row "PCA-20 floor (ours)" is the same SVMs on
the 20-d PCA projection of the pixels (``nre_tf/floors.py``; no epochs, so both epoch columns agree).

One training run per baseline provides both columns: the weights are saved after epoch E1 and E2 (40 and 100 at
paper scale). NRE for the E-epoch column starts from the plain AE after E epochs, uses that AE's encoder as A,
and is then trained for E epochs with Eq. 5 (assumption: the paper does not say how the AE pre-training and the
NRE epochs share the budget).

Library code (no flags); the entry point is ``python -m nre_tf.table1 --dataset=mnist5k --scale=quick``.
"""
from __future__ import annotations

import time
from pathlib import Path

TABLE = "nre.table1"
ROWS = {"ae": "AE [20]", "dae": "DAE [57]", "context": "Context AE [42]", "splitbrain": "Split-Brain AE [64]",
        "nre": "NRE_0.5,0.2,0.3 (Ours)"}
PAPER = {  # Table 1 as printed: (L-SVM 40, L-SVM 100, R-SVM 40, R-SVM 100)
    "ae": (0.969, 0.969, 0.961, 0.972), "dae": (0.942, 0.936, 0.954, 0.964),
    "context": (0.970, 0.974, 0.978, 0.981), "splitbrain": (0.972, 0.973, 0.975, 0.979),
    "nre": (0.977, 0.978, 0.981, 0.984)}


def columns(e1: int, e2: int) -> list[tuple[str, str, int]]:
    """(registry column name, classifier kind, which snapshot) in the paper's order."""
    return [("L-SVM 40", "linear_svm", e1), ("L-SVM 100", "linear_svm", e2),
            ("R-SVM 40", "rbf_svm", e1), ("R-SVM 100", "rbf_svm", e2)]


def run(config) -> dict:
    """Run the Table 1 protocol for ``config`` (an :class:`nre_tf.config.NREConfig`); returns the results dict
    (also written to ``<workdir>/metrics.json``)."""
    from common.config import write_metrics
    from common.linear_eval import NRE_RBF_GAMMA, fit_and_score
    from common.training import start_run
    from nre_tf import trainer
    from nre_tf.floors import classification_floor, table1_cells

    cfg, workdir = start_run(config)
    t_start = time.perf_counter()
    x, y, xt, yt = trainer.load_classification_split(cfg.dataset, cfg.data_dir, cfg.n_train, cfg.n_test, cfg.seed)
    e1, e2 = (int(e) for e in cfg.epoch_pair)
    floor = classification_floor(x, y, xt, yt, cfg.seed)  # row "PCA-20 floor (ours)": SVMs on PCA-20 pixels
    feats, timings, nre_info = {}, {}, {}
    ae_nets = None
    for kind in ("ae", "dae", "context", "splitbrain"):
        model, nets, secs = trainer.train_autoencoder(
            kind, x, e2, cfg.batch_size, workdir / kind, lr=cfg.ae_lr, latent_dim=cfg.latent_dim, seed=cfg.seed,
            snapshot_epochs=(e1,), resume=cfg.resume)
        timings[kind] = secs
        for e in (e1, e2):
            trainer.load_snapshot(nets, workdir / kind, e)
            feats[(kind, e)] = (trainer.encode(model, x), trainer.encode(model, xt))
        if kind == "ae":
            ae_nets, ae_model = nets, model
    recon = {}
    for e in (e1, e2):
        trainer.load_snapshot(ae_nets, workdir / "ae", e)
        recon[("ae", e)] = trainer.reconstruct(ae_model, xt[:16])
        nre, info = trainer.train_nre(ae_nets["encoder"], ae_nets["decoder"], ae_nets["encoder"], x, cfg.lambdas,
                                      cfg.T, e, cfg.batch_size, workdir / f"nre_e{e}", lr=cfg.lr,
                                      clusters=cfg.clusters, exact=cfg.exact, refresh_every=cfg.refresh_every,
                                      seed=cfg.seed, resume=cfg.resume)
        feats[("nre", e)] = (trainer.encode(nre, x), trainer.encode(nre, xt))
        recon[("nre", e)] = trainer.reconstruct(nre, xt[:16])
        nre_info[e] = info
        timings[f"nre_e{e}"] = info["train_seconds"]
    values = {}
    for kind, row in ROWS.items():
        for col, clf, e in columns(e1, e2):
            f_tr, f_te = feats[(kind, e)]
            values[(row, col)] = fit_and_score(clf, f_tr, y, f_te, yt, gamma=NRE_RBF_GAMMA, seed=cfg.seed)
    values.update(table1_cells(floor, [c for c, _, _ in columns(e1, e2)]))
    results = {
        "table": TABLE, "dataset": cfg.dataset, "scale": cfg.scale, "epochs": [e1, e2],
        "n_train": int(len(x)), "n_test": int(len(xt)), "lambdas": list(cfg.lambdas), "T": cfg.T,
        "values": {f"{r} | {c}": v for (r, c), v in values.items()},
        "paper": {f"{ROWS[k]} | {c}": PAPER[k][i] for k in ROWS for i, (c, _, _) in enumerate(columns(e1, e2))},
        "floor": {f"pca20_{k}": v for k, v in floor.items()},
        "train_seconds": timings, "nre": {str(k): v for k, v in nre_info.items()},
        "wall_seconds": time.perf_counter() - t_start,
    }
    write_metrics(results, workdir)
    _figures(cfg, workdir, xt, yt, feats, recon, values, e1, e2)
    results["_cells"] = values
    return results


def _figures(cfg, workdir: Path, xt, yt, feats, recon, values, e1, e2):
    """Fig. 1 (2-D t-SNE embedding of the test E(X), AE vs NRE, titled with the same classifier's -- the linear
    SVM's -- accuracy) and Fig. 4 (reconstructions: input / NRE / AE) as PNG files in ``workdir``."""
    import numpy as np

    from common.plots import save_embedding_2d, save_image_grid
    from nre_tf.figures import embed_2d

    col = columns(e1, e2)[1][0]  # L-SVM at the longer training
    panels = [(f"{name}: L-SVM acc {values[(ROWS[kind], col)]:.3f}", embed_2d(feats[(kind, e2)][1], seed=cfg.seed), yt)
              for kind, name in (("ae", "AE  E(X)"), ("nre", "NRE  E_phi(X)"))]
    save_embedding_2d(panels, workdir / "fig1_embedding.png", title=f"Fig. 1 ({cfg.dataset}, {e2} epochs)")
    x16 = xt[:16].astype(np.float32) / 255.0
    save_image_grid([("input", x16), ("NRE", recon[("nre", e2)]), ("AE", recon[("ae", e2)])],
                    workdir / "fig4_reconstructions.png", title=f"Fig. 4 ({cfg.dataset})", value_range=(0.0, 1.0))
