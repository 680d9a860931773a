"""NRE run configuration: one dataclass, three scale presets (smoke / quick / paper).

Presets only cut epochs and data (numbers of images); the architecture is the same at every scale. ``paper``
uses the paper's numbers where it gives them (Adam, lr 1e-4, Section 4.1; 40 / 100 epochs, Table 1; 50,000 /
150 / 9,850 images, Table 3; K = 400 on ImageNet, Section 4.3) and the ASSUMPTIONS listed in nre_tf/README.md
elsewhere (batch size, latent size, AE pre-training epochs).
"""
from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

from common.config import RunConfig
from common.errors import ConfigError, check_non_negative, check_positive

NRE_BUDGETS = ("split", "extra")  # Table 1: how NRE's E epochs are shared (nre_epoch_split)

# Every dataset some NRE entry point reads (each entry point checks its own subset when it loads the data).
DATASETS = ("mnist", "mnist5k", "fashion_mnist", "ucsd_ped2", "ucsd", "image_folder")

# Table 1 trains every model for 40 and for 100 epochs; quick keeps the 40:100 ratio.
PRESETS = {
    "smoke": dict(epochs=1, batch_size=32, ae_epochs=1, n_train=256, n_test=256, epoch_pair=(2, 3),
                  attack_epochs=1, substitute_epochs=1, substitute_rounds=2, n_attack_test=128,
                  patches_per_frame=40, max_frames=40, eval_epochs=1, magnet_epochs=1, magnet_batch_size=32),
    "quick": dict(epochs=5, batch_size=128, ae_epochs=5, n_train=4000, n_test=1000, epoch_pair=(2, 5),
                  attack_epochs=3, substitute_epochs=10, substitute_rounds=4, n_attack_test=1000,
                  patches_per_frame=60, max_frames=1000, eval_epochs=5, magnet_epochs=100, magnet_batch_size=32),
    "paper": dict(epochs=100, batch_size=128, ae_epochs=100, n_train=0, n_test=0, epoch_pair=(40, 100),
                  attack_epochs=10, substitute_epochs=10, substitute_rounds=6, n_attack_test=0,
                  patches_per_frame=0, max_frames=0, eval_epochs=80, magnet_epochs=100, magnet_batch_size=256),
}


def check_lambdas(lambdas) -> tuple[float, float, float]:
    """Validate a (lambda1, lambda2, lambda3) triplet: three non-negative numbers summing to 1 (Eq. 1)."""
    try:
        lam = tuple(float(v) for v in lambdas)
    except (TypeError, ValueError):
        raise ConfigError(f"lambdas (--lambdas) must be three numbers like 0.5,0.2,0.3, got {lambdas!r}") from None
    if len(lam) != 3 or min(lam) < 0 or abs(sum(lam) - 1.0) > 1e-6:
        raise ConfigError(f"lambdas must be three non-negative numbers summing to 1 (Eq. 1, --lambdas), got "
                          f"{','.join(map(str, lam))} ({len(lam)} numbers, sum {sum(lam):g})")
    return lam


@dataclasses.dataclass
class NREConfig(RunConfig):
    """Everything ``nre_tf.train.run`` needs; ``None`` fields come from the scale preset.

    NRE-specific fields:
      lambdas: (lambda1, lambda2, lambda3) of Eq. 5, summing to 1.
      T: near / far samples per training sample (Eq. 5).
      clusters: K of the k-means speed-up (Section 3.2); 0 = automatic (N // 150 clipped to [10, 400]);
        ignored with ``exact``.
      exact: brute-force Eq. 2-3 instead of k-means (for checking).
      refresh_every: recompute N(X') and F(X') every this many NRE epochs (Section 3.1: "as the training
        continues ... N and F can better uncover close-by and far-away samples").
      arch: ``conv`` (28x28 digits, 30x30 patches), ``magnet`` (Table 3), ``alexnet`` (Table 2).
      latent_dim: size of the FC latent of the ``conv`` networks.
      lr / ae_lr: Adam learning rates of E_phi + D (paper: 1e-4) and of the plain AE (assumption: the same).
      ae_epochs: epochs of the plain AE that defines R_A and initialises E_phi + D.
      n_train / n_test: images kept (0 = all).
      magnet_epochs: epochs of MagNet's reformer AE (MagNet: 100, batch 256); the model is tiny (310
        weights) and learns slowly, so quick keeps the 100 epochs on the reduced data.
      magnet_lr / magnet_batch_size: Adam learning rate and batch size of MagNet's reformer (MagNet: Keras'
        default 1e-3 and 256, reference notes 5.4). The all-sigmoid reformer first sits on a plateau where its
        output is one constant grey level (loss = the pixel variance, about 0.099 on digits, chance accuracy
        after refinement) and leaves it after a number of Adam STEPS (on mnist5k: still there after 30 epochs
        = 480 steps at batch 256; out of it between 625 and 1,250 steps at batch 32). MagNet's recipe makes
        55,000 / 256 x 100 = 21,500 steps; 4,000 images at batch 256 make only 1,600, which can end on the
        plateau. Quick therefore keeps the 100 epochs (the same compute) at batch 32: 12,500 steps. Paper scale
        keeps MagNet's 256.
      nre_budget / nre_warmup: how Table 1's NRE row uses a budget of E epochs (:func:`nre_epoch_split`).
        ``split`` (default): ``warmup_epochs(E)`` epochs of the plain AE (A and the initialisation of
        E_phi + D), then the rest of the E epochs with Eq. 5, so NRE gets the same number of epochs as every
        baseline (Section 4.2: "all methods are trained for the same number of epochs"). ``extra``: E epochs
        of AE, then E more of Eq. 5 (2E in all; the other reading of the paper, beyond its fairness rule).
    """

    method: ClassVar[str] = "nre"
    PRESETS: ClassVar[dict] = PRESETS

    lambdas: tuple = (0.5, 0.2, 0.3)
    T: int = 1
    clusters: int = 0
    exact: bool = False
    refresh_every: int = 1
    arch: str = "conv"
    latent_dim: int = 128
    lr: float = 1e-4
    ae_lr: float = 1e-4
    ae_epochs: int | None = None
    n_train: int | None = None
    n_test: int | None = None
    epoch_pair: tuple | None = None
    attack_epochs: int | None = None
    substitute_epochs: int | None = None
    substitute_rounds: int | None = None
    n_attack_test: int | None = None
    patches_per_frame: int | None = None
    max_frames: int | None = None
    eval_epochs: int | None = None
    magnet_epochs: int | None = None
    voc_dir: str | None = None
    nre_budget: str = "split"
    nre_warmup: float = 0.5
    magnet_lr: float = 1e-3
    magnet_batch_size: int | None = None

    def resolved(self):
        cfg = super().resolved()
        if cfg.dataset is not None and cfg.dataset not in DATASETS:
            raise ConfigError(f"NRE does not support --dataset={cfg.dataset!r}; choose one of {', '.join(DATASETS)}")
        check_lambdas(cfg.lambdas)
        check_non_negative(n_train=cfg.n_train, n_test=cfg.n_test, patches_per_frame=cfg.patches_per_frame,
                           max_frames=cfg.max_frames, n_attack_test=cfg.n_attack_test)
        check_positive(epochs=cfg.epochs, batch_size=cfg.batch_size, ae_epochs=cfg.ae_epochs,
                       latent_dim=cfg.latent_dim, lr=cfg.lr, ae_lr=cfg.ae_lr, eval_epochs=cfg.eval_epochs,
                       attack_epochs=cfg.attack_epochs, magnet_lr=cfg.magnet_lr,
                       magnet_batch_size=cfg.magnet_batch_size, substitute_epochs=cfg.substitute_epochs,
                       substitute_rounds=cfg.substitute_rounds, magnet_epochs=cfg.magnet_epochs)
        if cfg.T < 1:
            raise ConfigError(f"--T must be >= 1, got {cfg.T}")
        if cfg.clusters < 0 or cfg.clusters == 1:
            raise ConfigError(f"--clusters must be 0 (automatic) or >= 2, got {cfg.clusters}")
        if cfg.nre_budget not in NRE_BUDGETS:
            raise ConfigError(f"--nre_budget must be one of {', '.join(NRE_BUDGETS)}, got {cfg.nre_budget!r}")
        if not 0.0 < cfg.nre_warmup < 1.0:
            raise ConfigError(f"--nre_warmup must be a fraction strictly between 0 and 1, got {cfg.nre_warmup}")
        if cfg.nre_budget == "split" and cfg.epoch_pair is not None and min(cfg.epoch_pair) < 2:
            raise ConfigError(f"--nre_budget=split needs at least 2 epochs per Table 1 column (one of AE warm-up, "
                              f"one of Eq. 5), got {tuple(cfg.epoch_pair)}; use --nre_budget=extra")
        if cfg.refresh_every < 1:
            raise ConfigError(f"--refresh_every must be >= 1, got {cfg.refresh_every}")
        return dataclasses.replace(cfg, lambdas=tuple(float(v) for v in cfg.lambdas))


def nre_epoch_split(total: int, budget: str = "split", warmup: float = 0.5) -> tuple[int, int]:
    """``(ae_warmup_epochs, eq5_epochs)`` of Table 1's NRE row for a column of ``total`` epochs.

    The paper gives every method the same number of epochs (Section 4.2) but does not say how NRE's AE
    pre-training (A, and the initialisation of E_phi + D, Section 3.2) and its Eq. 5 training share them, and
    the authors published no code (reference notes section 1). CHOSEN here: ``split`` gives the AE
    ``floor(warmup * total)`` epochs (at least 1, at most ``total - 1``) and Eq. 5 the rest: 40 -> 20 + 20,
    100 -> 50 + 50, quick 2 -> 1 + 1, 5 -> 2 + 3. ``extra`` is ``(total, total)``.
    """
    total = int(total)
    if budget == "extra":
        return total, total
    if total < 2:
        raise ConfigError(f"a budget of {total} epoch(s) cannot be split between the AE warm-up and Eq. 5; "
                          "use at least 2 epochs or --nre_budget=extra")
    w = min(total - 1, max(1, int(math.floor(float(warmup) * total))))
    return w, total - w


def auto_clusters(n: int) -> int:
    """K for ``clusters=0``: about 150 samples per cluster, between 10 and 400 (400 = the paper's ImageNet K)."""
    return int(min(400, max(10, n // 150), max(2, n // 4)))
