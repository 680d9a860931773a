"""Table 1 of NRE: SVM accuracy on the representation E(X) of five auto-encoders (Section 4.2).

Protocol: AE [20], denoising AE [57], context AE [42], split-brain AE [64] and NRE_{0.5,0.2,0.3}, each
trained for 40 and for 100 epochs on the (unlabelled) training images (MNIST: 50,000 training and 10,000 test
images, Section 4.2; ``trainer.load_classification_split``); the training and test images are mapped to E(X); a
linear SVM and an RBF SVM (gamma 0.01) are fitted on the training representations (with their labels) and the
test accuracy is reported (``common/linear_eval.py``).

Epoch budget. "For fairness, all methods are trained for the same number of epochs" (Section 4.2). One training
run per model provides both columns (weights saved after epoch E1 and E2 = 40 and 100). ``--nre_budget``:

* ``pretrained`` (default, the budget reading of issue 19): encoder A is its own stage, trained to convergence
  once per training set (:mod:`nre_tf.encoder_a`, early stopping on held-out reconstruction) and reused; E_phi + D
  start from A's auto-encoder ("initialized based on an optimized traditional encoder-decoder network",
  Section 3.2) and train E epochs of Eq. 5 (one run of E2 epochs, snapshot after E1). The paper's rows AE [20],
  DAE, context and split-brain are trained E epochs from scratch (Adam ``baseline_lr``).
* ``split``: ``W = nre_epoch_split(E)[0]`` epochs of the plain AE (the snapshot of the AE [20] run after W
  epochs is A and the initialisation of E_phi + D), then ``E - W`` epochs of Eq. 5 (the earlier reading).
* ``extra``: E AE epochs + E Eq. 5 epochs (2E in all; beyond the paper's fairness rule).

Rows we add (``common.registry.ADDED_ROWS``), computed in the same job on the same split with the same SVMs:

* "AE, NRE's total epochs (control, ours)": the plain AE trained as many epochs as NRE in all. ``pretrained``:
  A's auto-encoder trained E more epochs with the plain MSE, same optimizer (Adam ``lr``) and batches as NRE's
  E Eq. 5 epochs: the same initialisation and the same epochs, only the loss differs. ``split``: the AE [20]
  run's snapshot after W + (E - W) = E epochs, i.e. equal to AE [20] by construction; ``extra``: after 2E.
* the floors (``nre_tf/floors.py``): "PCA-20 floor (ours)" (the 20-d PCA projection of the pixels), "Raw-pixel
  floor (ours)" (the 784 pixel values) and "Random-encoder floor (ours)" (E(X) of the same convolutional encoder
  at its random initialisation). None of them is trained, so the 40- and the 100-epoch columns hold the same
  value.

Gates (``metrics.json`` ``gates``, :mod:`nre_tf.gates`): A's held-out pixel MSE against the mean image's, and
the same-class rates of N(X') and F(X') on the labelled training images (a diagnostic; labels never enter
training), with one WARNING line when the neighbour rate is near chance.

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
    from nre_tf import encoder_a
    from nre_tf.results import run_with_cells

    cfg = config.resolved()
    if cfg.nre_budget == "pretrained":  # A's stage first: its id enters this run's identity
        cfg = encoder_a.prepare(cfg, training_images)
    return run_with_cells(cfg, body)


def training_images(cfg):
    """The Table 1 training images of ``cfg`` (uint8), what encoder A is trained on."""
    from nre_tf import trainer

    return trainer.load_classification_split(cfg.dataset, cfg.data_dir, cfg.n_train, cfg.n_test, cfg.seed)[0]


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
            kind, x, e2, cfg.batch_size, workdir / kind, lr=cfg.baseline_lr, latent_dim=cfg.latent_dim, seed=cfg.seed,
            snapshot_epochs=(e1, e2), resume=cfg.resume, strategy=run)
        for e in (e1, e2):
            trainer.load_snapshot(nets, workdir / kind, e)
            feats[(kind, e)] = (trainer.encode(model, x), trainer.encode(model, xt))
    train = train_pretrained if cfg.nre_budget == "pretrained" else train_ae_and_nre
    ae_feats, recon, nre_info, ae_timings = train(cfg, x, xt, workdir, strategy=run, y=y)
    run.record(gates=nre_info.pop("gates"))
    feats.update(ae_feats)
    timings.update(ae_timings)
    values = {}
    for kind, row in ROWS.items():
        for col, clf, e in columns(e1, e2):
            f_tr, f_te = feats[(kind, e)]
            values[(row, col)] = fit_and_score(clf, f_tr, y, f_te, yt, gamma=NRE_RBF_GAMMA, seed=cfg.seed)
    for col, clf, e in columns(e1, e2):  # the control: plain AE for NRE's total number of epochs
        if ("control", e) in feats:  # pretrained: A's AE trained E more plain epochs
            f_tr, f_te = feats[("control", e)]
            values[(AE_CONTROL_ROW, col)] = fit_and_score(clf, f_tr, y, f_te, yt, gamma=NRE_RBF_GAMMA,
                                                          seed=cfg.seed)
        elif total[e] == e:  # the same run and snapshot as AE [20]: the same SVM on the same features
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


def train_pretrained(cfg, x, xt, workdir: Path, strategy=None, y=None):
    """``--nre_budget=pretrained``: AE [20] from scratch for E2 epochs (snapshot after E1), and from encoder A's
    converged auto-encoder (``cfg.encoder_a_dir``) both NRE (E2 Eq. 5 epochs) and the control (E2 plain-MSE
    epochs at NRE's learning rate), each with a snapshot after E1. Returns what :func:`train_ae_and_nre` does;
    ``nre_info["gates"]`` holds the run's gates (``y``: the training labels, a diagnostic only)."""
    from nre_tf import encoder_a, trainer
    from nre_tf.gates import gates

    e1, e2 = (int(e) for e in cfg.epoch_pair)
    snaps = sorted({e1, e2})
    feats, recon, timings = {}, {}, {}
    model, nets, timings["ae"] = trainer.train_autoencoder(
        "ae", x, e2, cfg.batch_size, workdir / "ae", lr=cfg.baseline_lr, latent_dim=cfg.latent_dim, seed=cfg.seed,
        snapshot_epochs=snaps, resume=cfg.resume, strategy=strategy)
    _, a_nets = encoder_a.load(cfg, tuple(x.shape[1:]))
    control, cnets, timings["control"] = trainer.train_autoencoder(
        "ae", x, e2, cfg.batch_size, workdir / "control", lr=cfg.lr, latent_dim=cfg.latent_dim, seed=cfg.seed,
        snapshot_epochs=snaps, resume=cfg.resume, strategy=strategy, init=a_nets)
    nre, info = trainer.train_nre(a_nets["encoder"], a_nets["decoder"], a_nets["encoder"], x, cfg.lambdas, cfg.T,
                                  e2, cfg.batch_size, workdir / "nre", lr=cfg.lr, clusters=cfg.clusters,
                                  exact=cfg.exact, refresh_every=cfg.refresh_every, seed=cfg.seed,
                                  resume=cfg.resume, strategy=strategy, labels=y, snapshot_epochs=snaps)
    timings["nre"] = info["train_seconds"]
    nre_nets = {"encoder": nre.encoder, "decoder": nre.decoder}
    for e in snaps:
        for kind, m, n in (("ae", model, nets), ("control", control, cnets), ("nre", nre, nre_nets)):
            trainer.load_snapshot(n, workdir / kind, e)
            feats[(kind, e)] = (trainer.encode(m, x), trainer.encode(m, xt))
            recon[(kind, e)] = trainer.reconstruct(m, xt[:16])
    info = dict(info, ae_warmup_epochs=0, eq5_epochs=e2, snapshots=snaps, encoder_a_id=cfg.encoder_a_id)
    info["gates"] = gates(encoder_a.stage_record(cfg), info, y, name="Table 1 NRE")
    return feats, recon, info, timings


def train_ae_and_nre(cfg, x, xt, workdir: Path, strategy=None, y=None):
    """The plain AE [20] (one run, snapshots after E1, E2, NRE's warm-ups and NRE's totals) and NRE's two
    columns, each initialised from the AE snapshot after its warm-up and trained ``E - W`` epochs with Eq. 5.

    Returns ``(feats, recon, nre_info, timings)``: ``feats[(kind, epochs)] = (E(x), E(xt))`` for ``("ae", E)``
    at E1, E2 and NRE's totals, and ``("nre", E)``; ``recon`` the first 16 test reconstructions of both.
    ``strategy``: what holds the models (``nre_tf.trainer.train_autoencoder``). ``nre_info["gates"]``: the gates
    of each column's NRE run (A = its warm-up snapshot; ``y``: the training labels, a diagnostic only)."""
    from nre_tf import encoder_a, trainer
    from nre_tf.gates import gates, mean_image_mse, mse
    from nre_tf.model import to_float

    split = epoch_split(cfg)
    total = {e: sum(s) for e, s in split.items()}
    keep = set(split) | {w for w, _ in split.values()} | set(total.values())
    model, nets, ae_seconds = trainer.train_autoencoder(
        "ae", x, max(keep), cfg.batch_size, workdir / "ae", lr=cfg.baseline_lr, latent_dim=cfg.latent_dim,
        seed=cfg.seed, snapshot_epochs=sorted(keep), resume=cfg.resume, strategy=strategy)
    feats, recon, info_all, timings = {}, {}, {}, {"ae": ae_seconds}
    for e in sorted(set(split) | set(total.values())):
        trainer.load_snapshot(nets, workdir / "ae", e)
        feats[("ae", e)] = (trainer.encode(model, x), trainer.encode(model, xt))
        if e in split:
            recon[("ae", e)] = trainer.reconstruct(model, xt[:16])
    fit_idx, val_idx = encoder_a.holdout_split(len(x), cfg.ae_holdout, cfg.seed)
    x_val = to_float(x[val_idx])
    all_gates = {}
    for e, (warm, n_eq5) in split.items():
        trainer.load_snapshot(nets, workdir / "ae", warm)  # A and the initialisation of E_phi + D
        nre, info = trainer.train_nre(nets["encoder"], nets["decoder"], nets["encoder"], x, cfg.lambdas, cfg.T,
                                      n_eq5, cfg.batch_size, workdir / f"nre_e{e}", lr=cfg.lr, clusters=cfg.clusters,
                                      exact=cfg.exact, refresh_every=cfg.refresh_every, seed=cfg.seed,
                                      resume=cfg.resume, strategy=strategy, labels=y)
        a_stage = {"heldout_mse": mse(trainer.reconstruct(model, x_val), x_val), "epochs_run": warm,
                   "mean_image_mse": mean_image_mse(to_float(x[fit_idx]), x_val),
                   "source": f"{cfg.nre_budget} reading: the AE [20] run after {warm} epochs (trained on all "
                             "training images, the held-out split included)"}
        all_gates[str(e)] = gates(a_stage, info, y, name=f"Table 1 NRE ({e} epochs, {cfg.nre_budget})")
        feats[("nre", e)] = (trainer.encode(nre, x), trainer.encode(nre, xt))
        recon[("nre", e)] = trainer.reconstruct(nre, xt[:16])
        info_all[e] = dict(info, ae_warmup_epochs=warm, eq5_epochs=n_eq5, total_epochs=total[e])
        timings[f"nre_e{e}"] = info["train_seconds"]
    info_all["gates"] = {"per_column": all_gates, "passed": all(g["passed"] for g in all_gates.values())}
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
