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

from common.config import RunConfig, option
from common.errors import ConfigError

NRE_BUDGETS = ("pretrained", "split", "extra")  # Table 1: what NRE's E epochs are (nre_epoch_split)

# Every dataset some NRE entry point reads (each entry point checks its own subset when it loads the data).
DATASETS = ("mnist", "mnist5k", "fashion_mnist", "ucsd_ped2", "ucsd", "image_folder")

# Table 1 trains every model for 40 and for 100 epochs; quick keeps the 40:100 ratio.
PRESETS = {
    "smoke": dict(epochs=1, batch_size=32, ae_epochs=2, ae_patience=1, n_train=256, n_test=256, epoch_pair=(2, 3),
                  attack_epochs=1, substitute_epochs=1, substitute_rounds=2, n_attack_test=128,
                  patches_per_frame=40, max_frames=40, eval_epochs=1, magnet_epochs=1, magnet_batch_size=32),
    "quick": dict(epochs=20, batch_size=128, ae_epochs=60, ae_patience=5, n_train=4000, n_test=1000,
                  epoch_pair=(40, 100), attack_epochs=3, substitute_epochs=10, substitute_rounds=1, n_attack_test=1000,
                  patches_per_frame=60, max_frames=1000, eval_epochs=5, magnet_epochs=100, magnet_batch_size=32),
    "paper": dict(epochs=100, batch_size=128, ae_epochs=200, ae_patience=10, n_train=0, n_test=0,
                  epoch_pair=(40, 100), attack_epochs=10, substitute_epochs=10, substitute_rounds=1, n_attack_test=0,
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


def parse_lambdas(text) -> tuple[float, ...]:
    """``--lambdas=0.5,0.2,0.3`` -> (0.5, 0.2, 0.3) (checked by :func:`check_lambdas` in ``resolved``)."""
    try:
        return tuple(float(v) for v in str(text).split(","))
    except ValueError:
        raise ConfigError(f"--lambdas must be three comma-separated numbers like 0.5,0.2,0.3, got {text!r}") \
            from None


def parse_epoch_pair(text) -> tuple[int, int]:
    """``--epoch_pair=40,100`` -> (40, 100)."""
    try:
        pair = tuple(int(v) for v in str(text).split(","))
    except ValueError:
        pair = ()
    if len(pair) != 2 or min(pair) < 1:
        raise ConfigError(f"--epoch_pair must be two positive epoch counts like 40,100, got {text!r}")
    return pair


@dataclasses.dataclass
class NREConfig(RunConfig):
    """Everything NRE's runs need (``nre_tf.experiment.run`` and the tables); ``None`` fields come from the scale
    preset. Every field is a flag of every NRE entry point (:func:`common.flags.define_config_flags`) with its help
    text, choices and bounds in its :func:`common.config.option`, checked once by :meth:`resolved`.

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
      ae_lr / ae_epochs / ae_patience / ae_holdout / encoder_a_root: the encoder-A stage
        (:mod:`nre_tf.encoder_a`): the plain AE defining R_A and initialising E_phi + D, trained once per
        training set with early stopping on a held-out reconstruction split and reused by every NRE run on the
        same data (Table 1 with ``--nre_budget=split|extra`` uses its warm-up AE as A instead).
      nre_budget / nre_warmup: how Table 1's NRE row uses a budget of E epochs (:func:`nre_epoch_split`).
        ``pretrained`` (default; the "budget reading" of issue 19): E_phi + D start from the converged
        encoder-A AE ("initialized based on an optimized traditional encoder-decoder network", Section 3.2) and
        train E epochs of Eq. 5; the control row is the same AE trained E more epochs with the plain MSE, so
        NRE and its control have the same epochs from the same initialisation ("for fairness, all methods are
        trained for the same number of epochs", Section 4.2); the paper's rows are trained E epochs from
        scratch. ``split``: ``warmup_epochs(E)`` epochs of the plain AE (A and the initialisation of
        E_phi + D), then the rest of the E epochs with Eq. 5 (the earlier reading; A is a half-trained AE).
        ``extra``: E epochs of AE, then E more of Eq. 5 (2E in all).
    """

    method: ClassVar[str] = "nre"
    PRESETS: ClassVar[dict] = PRESETS
    # The library modules of NRE's runs (nre_tf.train and the four tables): the run identity hashes them and
    # the project modules they import (common.run_identity.code_modules), not the tables registry or reports.
    CODE_ROOTS: ClassVar[tuple] = ("nre_tf.experiment", "nre_tf.representation_eval", "nre_tf.voc_transfer",
                                   "nre_tf.adversarial", "nre_tf.ucsd_eval")
    # Where the shared encoder-A stages live cannot change a number (their id, encoder_a_id, is a result field).
    NOT_RESULT_FIELDS: ClassVar[tuple] = ("encoder_a_root", "encoder_a_dir")

    lambdas: tuple = option((0.5, 0.2, 0.3), "lambda1,lambda2,lambda3 of Eq. 5 (sum 1). Default: the table's "
                            "(train/table1: 0.5,0.2,0.3; table3/table4: 0.6,0.2,0.2; table2: 0.5,0.25,0.25).",
                            parse=parse_lambdas, flag_default=None)
    T: int = option(1, "Number of near and of far samples per training sample (Eq. 5).", minimum=1)
    clusters: int = option(0, "K of the k-means neighbour search (Section 3.2); 0 = automatic (N // 150 clipped "
                           "to [10, 400]); ignored with --exact.", minimum=0)
    exact: bool = option(False, "Exact (brute-force) Eq. 2-3 instead of the k-means speed-up.")
    refresh_every: int = option(1, "Recompute N(X') and F(X') every this many NRE epochs.", minimum=1)
    arch: str = option("conv", "Networks (set by the dataset, never a flag): conv, magnet, alexnet.",
                       choices=("conv", "magnet", "alexnet"), no_flag=True)
    latent_dim: int = option(128, "Size of the latent of the convolutional AE.", minimum=0, exclusive_minimum=True)
    lr: float = option(1e-4, "Adam learning rate of E_phi + D (paper: 1e-4).", minimum=0, exclusive_minimum=True)
    ae_lr: float = option(1e-3, "Adam learning rate of the encoder-A stage (the plain AE defining R_A; the paper "
                          "gives none; measured: 1e-3, docs/nre-notes.md).", minimum=0, exclusive_minimum=True)
    ae_epochs: int | None = option(None, "Maximum epochs of the encoder-A stage, which stops earlier when its "
                                   "held-out reconstruction stops improving (default: the --scale preset).",
                                   minimum=0, exclusive_minimum=True)
    ae_patience: int | None = option(None, "Encoder-A stage: stop after this many epochs without a held-out "
                                     "improvement (default: the --scale preset).", minimum=0, exclusive_minimum=True)
    ae_holdout: float = option(0.1, "Encoder-A stage: fraction of the training images held out for its early "
                               "stopping (ours; the paper trains A on all images).", minimum=0, maximum=0.5,
                               exclusive_minimum=True)
    encoder_a_root: str | None = option(None, "Folder of the shared encoder-A stages, one per training set and "
                                        "setting (default: <repo>/runs/nre_encoder_a).")
    # Set by nre_tf.encoder_a.prepare: the stage's folder and its common.run_identity.frozen_weights_id (a result
    # field: a retrained A makes every NRE run that uses it a new run).
    encoder_a_dir: str | None = option(None, no_flag=True)
    encoder_a_id: str | None = option(None, no_flag=True)
    baseline_lr: float = option(1e-4, "Table 1: Adam learning rate of the rows trained from scratch (AE [20], DAE, "
                                "context, split-brain) and of the split / extra readings' AE warm-up (assumption: "
                                "NRE's 1e-4).", minimum=0, exclusive_minimum=True, group="table1")
    n_train: int | None = option(None, "Training images kept (0 = all; default: the --scale preset).", minimum=0)
    n_test: int | None = option(None, "Test images kept (0 = all; default: the --scale preset).", minimum=0)
    epoch_pair: tuple | None = option(None, "Table 1: the two epoch columns E1,E2 (paper: 40,100; default: the "
                                      "--scale preset).", parse=parse_epoch_pair, group="table1")
    attack_epochs: int | None = option(None, "Table 3: epochs of the target classifier (default: the preset).",
                                       minimum=0, exclusive_minimum=True, group="table3")
    substitute_epochs: int | None = option(None, "Table 3: epochs of each substitute training round (default: the "
                                           "preset).", minimum=0, exclusive_minimum=True, group="table3")
    substitute_rounds: int | None = option(None, "Table 3: substitute rounds with Jacobian augmentation (default: "
                                           "the preset).", minimum=0, exclusive_minimum=True, group="table3")
    n_attack_test: int | None = option(None, "Table 3: attack images kept (0 = all; default: the preset).",
                                       minimum=0, group="table3")
    substitute: str = option("cnn", "Table 3: substitute model of the black-box attack (cnn: the target's "
                             "architecture; mlp: cleverhans' 784-200-200-10).", choices=("cnn", "mlp"),
                             group="table3")
    patches_per_frame: int | None = option(None, "Table 4: 30x30 patches kept per training frame (0 = all; "
                                           "default: the preset).", minimum=0)
    max_frames: int | None = option(None, "Table 4: training frames kept (0 = all; default: the preset).",
                                    minimum=0)
    eval_epochs: int | None = option(None, "Table 2: epochs of each VOC 2007 classification setting (default: "
                                     "the preset).", minimum=0, exclusive_minimum=True, group="table2")
    magnet_epochs: int | None = option(None, "Table 3: epochs of MagNet's reformer AE (default: the --scale "
                                       "preset).", minimum=0, exclusive_minimum=True, group="table3")
    voc_dir: str | None = option(None, "Table 2: root of PASCAL VOC 2007 (holding VOCdevkit/VOC2007).",
                                 group="table2")
    nre_budget: str = option("pretrained", "Table 1: what NRE's E epochs are: pretrained = E Eq. 5 epochs from the "
                             "converged encoder-A AE (Sec. 3.2), against the control row trained E plain epochs from "
                             "the same AE; split = AE warm-up + Eq. 5 epochs summing to E, A = the warm-up; extra = "
                             "E AE + E Eq. 5.", choices=NRE_BUDGETS, group="table1")
    nre_warmup: float = option(0.5, "Table 1, --nre_budget=split: fraction of the E epochs given to the AE warm-up "
                               "(chosen; the paper is silent), strictly between 0 and 1.", minimum=0,
                               exclusive_minimum=True, group="table1")
    magnet_lr: float = option(1e-3, "Table 3: Adam learning rate of MagNet's reformer AE (MagNet: 1e-3).",
                              minimum=0, exclusive_minimum=True, group="table3")
    magnet_batch_size: int | None = option(None, "Table 3: batch size of MagNet's reformer AE (default: the "
                                           "preset).", minimum=0, exclusive_minimum=True, group="table3")

    def resolved(self):
        cfg = super().resolved()  # presets, then every field's choices and bounds (common.config.check_fields)
        if cfg.dataset is not None and cfg.dataset not in DATASETS:
            raise ConfigError(f"NRE does not support --dataset={cfg.dataset!r}; choose one of {', '.join(DATASETS)}")
        check_lambdas(cfg.lambdas)
        if cfg.clusters == 1:
            raise ConfigError(f"--clusters must be 0 (automatic) or >= 2, got {cfg.clusters}")
        if not cfg.nre_warmup < 1.0:
            raise ConfigError(f"--nre_warmup must be a fraction strictly between 0 and 1, got {cfg.nre_warmup}")
        if cfg.nre_budget == "split" and cfg.epoch_pair is not None and min(cfg.epoch_pair) < 2:
            raise ConfigError(f"--nre_budget=split needs at least 2 epochs per Table 1 column (one of AE warm-up, "
                              f"one of Eq. 5), got {tuple(cfg.epoch_pair)}; use --nre_budget=extra")
        return dataclasses.replace(cfg, lambdas=tuple(float(v) for v in cfg.lambdas))

    def refuse_strategy(self, what: str) -> None:
        """ConfigError (one line) when a run that trains outside any ``tf.distribute`` strategy (``what``, e.g.
        "Table 3") is asked for ``--strategy`` other than default: the flag must never silently do nothing."""
        if self.strategy != "default":
            raise ConfigError(f"--strategy={self.strategy} is not supported by NRE {what} (its classifiers train "
                              f"outside a tf.distribute strategy); use --strategy=default, or nre_tf.train / "
                              f"table1 / table4 for mirrored training")


def nre_epoch_split(total: int, budget: str = "split", warmup: float = 0.5) -> tuple[int, int]:
    """``(ae_warmup_epochs, eq5_epochs)`` of Table 1's NRE row for a column of ``total`` epochs.

    The paper gives every method the same number of epochs (Section 4.2) but does not say how NRE's AE
    pre-training (A, and the initialisation of E_phi + D, Section 3.2) and its Eq. 5 training share them, and
    the authors published no code (reference notes section 1). CHOSEN here: ``split`` gives the AE
    ``floor(warmup * total)`` epochs (at least 1, at most ``total - 1``) and Eq. 5 the rest: 40 -> 20 + 20,
    100 -> 50 + 50, quick 2 -> 1 + 1, 5 -> 2 + 3. ``extra`` is ``(total, total)``. ``pretrained`` is
    ``(0, total)``: no warm-up inside the budget, E_phi + D start from the converged encoder-A stage.
    """
    total = int(total)
    if budget == "pretrained":
        return 0, total
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
