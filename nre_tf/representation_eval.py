"""Table 1 of NRE: SVM accuracy on the representation E(X) of five auto-encoders (Section 4.2).

Protocol: AE [20], denoising AE [57], context AE [42], split-brain AE [64] and NRE_{0.5,0.2,0.3}, each
trained for 40 and for 100 epochs on the (unlabelled) training images (MNIST: 50,000 training and 10,000 test
images, Section 4.2; ``trainer.load_classification_split``); the training and test images are mapped to E(X); a
linear SVM and an RBF SVM (gamma 0.01) are fitted on the training representations (with their labels) and the
test accuracy is reported (``common/linear_eval.py``).

Epoch budget. "For fairness, all methods are trained for the same number of epochs" (Section 4.2). One training
run per baseline provides both columns (weights saved after epoch E1 and E2 = 40 and 100 at paper scale). NRE's
E-epoch column spends the same E epochs: ``W = nre_epoch_split(E)[0]`` epochs of the plain AE (the snapshot of
the AE [20] run after W epochs: its encoder is A and the initialisation of E_phi + D, Section 3.2), then
``E - W`` epochs of Eq. 5. The split is CHOSEN (half and half, ``nre_tf.config.nre_epoch_split``): the paper
does not say how the AE pre-training and the Eq. 5 epochs share the budget and the authors published no code.
``--nre_budget=extra`` gives NRE E AE epochs + E Eq. 5 epochs (2E in all; beyond the paper's fairness rule).

Rows we add (``common.registry.ADDED_ROWS``), computed in the same job on the same split with the same SVMs:

* "AE, NRE's total epochs (control, ours)": the plain AE run's snapshot after NRE's total number of epochs
  (W + Eq. 5 epochs). With the default split that total is E, so this row equals AE [20] by construction; with
  ``--nre_budget=extra`` it is the AE trained for 2E epochs, i.e. what the extra epochs give without Eq. 5.
* the floors (``nre_tf/floors.py``): "PCA-20 floor (ours)" (the 20-d PCA projection of the pixels), "Raw-pixel
  floor (ours)" (the 784 pixel values) and "Random-encoder floor (ours)" (E(X) of the same convolutional encoder
  at its random initialisation). None of them is trained, so the 40- and the 100-epoch columns hold the same
  value.

Every network is trained by ``nre_tf.trainer`` inside the run's ``--strategy`` scope, so ``--strategy=mirrored``
trains all of them under the strategy (the SVMs and floors need none).

Library code (no flags); the entry point is ``python -m nre_tf.table1 --dataset=mnist5k --scale=quick``.
"""
from __future__ import annotations

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
    """Run the Table 1 protocol for ``config`` (an :class:`nre_tf.config.NREConfig`) through the shared lifecycle
    (:func:`nre_tf.results.run_with_cells`); returns the results dict (also written to
    ``<workdir>/metrics.json``) with the table cells in ``"_cells"``."""
    from nre_tf.results import run_with_cells

    return run_with_cells(config, body)


def body(run) -> dict:
    from common.linear_eval import NRE_RBF_GAMMA, fit_and_score
    from common.registry import AE_CONTROL_ROW
    from nre_tf import trainer
    from nre_tf.floors import table1_cells, table1_floors

    cfg, workdir = run.config, run.workdir
    x, y, xt, yt = trainer.load_classification_split(cfg.dataset, cfg.data_dir, cfg.n_train, cfg.n_test, cfg.seed)
    e1, e2 = (int(e) for e in cfg.epoch_pair)
    split = epoch_split(cfg)
    total = {e: sum(split[e]) for e in (e1, e2)}  # NRE's epochs in all: E (split) or 2E (extra)
    # The floor rows (PCA-20, raw pixels, random encoder): the same SVMs, no training.
    floors = table1_floors(x, y, xt, yt, cfg.latent_dim, cfg.seed)
    feats, timings = {}, {}
    for kind in ("dae", "context", "splitbrain"):
        model, nets, timings[kind] = trainer.train_autoencoder(
            kind, x, e2, cfg.batch_size, workdir / kind, lr=cfg.ae_lr, latent_dim=cfg.latent_dim, seed=cfg.seed,
            snapshot_epochs=(e1, e2), resume=cfg.resume, strategy=run)
        for e in (e1, e2):
            trainer.load_snapshot(nets, workdir / kind, e)
            feats[(kind, e)] = (trainer.encode(model, x), trainer.encode(model, xt))
    ae_feats, recon, nre_info, ae_timings = train_ae_and_nre(cfg, x, xt, workdir, strategy=run)
    feats.update(ae_feats)
    timings.update(ae_timings)
    values = {}
    for kind, row in ROWS.items():
        for col, clf, e in columns(e1, e2):
            f_tr, f_te = feats[(kind, e)]
            values[(row, col)] = fit_and_score(clf, f_tr, y, f_te, yt, gamma=NRE_RBF_GAMMA, seed=cfg.seed)
    for col, clf, e in columns(e1, e2):  # the control: plain AE for NRE's total number of epochs
        if total[e] == e:  # the same run and snapshot as AE [20]: the same SVM on the same features
            values[(AE_CONTROL_ROW, col)] = values[(ROWS["ae"], col)]
        else:
            f_tr, f_te = feats[("ae", total[e])]
            values[(AE_CONTROL_ROW, col)] = fit_and_score(clf, f_tr, y, f_te, yt, gamma=NRE_RBF_GAMMA,
                                                          seed=cfg.seed)
    values.update(table1_cells(floors, [c for c, _, _ in columns(e1, e2)]))
    results = {
        "table": TABLE, "dataset": cfg.dataset, "scale": cfg.scale, "epochs": [e1, e2],
        "nre_budget": cfg.nre_budget, "nre_epoch_split": {str(e): list(split[e]) for e in (e1, e2)},
        "n_train": int(len(x)), "n_test": int(len(xt)), "lambdas": list(cfg.lambdas), "T": cfg.T,
        "values": {f"{r} | {c}": v for (r, c), v in values.items()},
        "paper": {f"{ROWS[k]} | {c}": PAPER[k][i] for k in ROWS for i, (c, _, _) in enumerate(columns(e1, e2))},
        "floor": floors,
        "train_seconds": timings, "nre": {str(k): v for k, v in nre_info.items()},
    }
    _figures(cfg, workdir, xt, yt, feats, recon, values, e1, e2)
    results["_cells"] = values
    return results


def epoch_split(cfg) -> dict[int, tuple[int, int]]:
    """Column epochs E -> (AE warm-up epochs, Eq. 5 epochs) of NRE (``nre_tf.config.nre_epoch_split``)."""
    from nre_tf.config import nre_epoch_split

    return {int(e): nre_epoch_split(int(e), cfg.nre_budget, cfg.nre_warmup) for e in cfg.epoch_pair}


def train_ae_and_nre(cfg, x, xt, workdir: Path, strategy=None):
    """The plain AE [20] (one run, snapshots after E1, E2, NRE's warm-ups and NRE's totals) and NRE's two
    columns, each initialised from the AE snapshot after its warm-up and trained ``E - W`` epochs with Eq. 5.

    Returns ``(feats, recon, nre_info, timings)``: ``feats[(kind, epochs)] = (E(x), E(xt))`` for ``("ae", E)``
    at E1, E2 and NRE's totals, and ``("nre", E)``; ``recon`` the first 16 test reconstructions of both.
    ``strategy``: what holds the models (``nre_tf.trainer.train_autoencoder``)."""
    from nre_tf import trainer

    split = epoch_split(cfg)
    total = {e: sum(s) for e, s in split.items()}
    keep = set(split) | {w for w, _ in split.values()} | set(total.values())
    model, nets, ae_seconds = trainer.train_autoencoder(
        "ae", x, max(keep), cfg.batch_size, workdir / "ae", lr=cfg.ae_lr, latent_dim=cfg.latent_dim, seed=cfg.seed,
        snapshot_epochs=sorted(keep), resume=cfg.resume, strategy=strategy)
    feats, recon, info_all, timings = {}, {}, {}, {"ae": ae_seconds}
    for e in sorted(set(split) | set(total.values())):
        trainer.load_snapshot(nets, workdir / "ae", e)
        feats[("ae", e)] = (trainer.encode(model, x), trainer.encode(model, xt))
        if e in split:
            recon[("ae", e)] = trainer.reconstruct(model, xt[:16])
    for e, (warm, n_eq5) in split.items():
        trainer.load_snapshot(nets, workdir / "ae", warm)  # A and the initialisation of E_phi + D
        nre, info = trainer.train_nre(nets["encoder"], nets["decoder"], nets["encoder"], x, cfg.lambdas, cfg.T,
                                      n_eq5, cfg.batch_size, workdir / f"nre_e{e}", lr=cfg.lr, clusters=cfg.clusters,
                                      exact=cfg.exact, refresh_every=cfg.refresh_every, seed=cfg.seed,
                                      resume=cfg.resume, strategy=strategy)
        feats[("nre", e)] = (trainer.encode(nre, x), trainer.encode(nre, xt))
        recon[("nre", e)] = trainer.reconstruct(nre, xt[:16])
        info_all[e] = dict(info, ae_warmup_epochs=warm, eq5_epochs=n_eq5, total_epochs=total[e])
        timings[f"nre_e{e}"] = info["train_seconds"]
    return feats, recon, info_all, timings


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
