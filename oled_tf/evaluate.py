"""Scoring and evaluation of OLED (Section 3.6, 4.3-4.5): the four anomaly scores, exact AUROC (and EER for
video), model selection per score on the labelled validation set (Section 4.1), the mask module as a segmenter
(Table 5), and the figures (Fig. 2/3 image grids, Fig. 4 score histograms).

Score conventions: raw scores are per-sample sums (notes 4.4); each is min-max normalised over the evaluation
set (all of its inliers and outliers together, Section 3.6); ``s_avg`` is the mean of the three normalised
scores. Higher = more anomalous, label 1 = outlier (positive class of the ROC); AUROC is scikit-learn's exact
value (``common.metrics.auroc``), not the bucketed Keras AUC of the authors' code.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from common import metrics, plots, protocols
from common.training import progress

log = logging.getLogger(__name__)

RAW_SCORES = ("s_rec", "s_mask", "s_cont")
SCORES = ("s_rec", "s_mask", "s_cont", "s_avg")


def _fn(model, name: str, keys: tuple[str, ...]):
    """A cached ``tf.function`` returning ``keys`` of ``model(x, training=False)`` (BN in inference mode)."""
    cache = model.__dict__.setdefault("_oled_eval_fns", {})
    if name not in cache:
        def f(x):
            out = model(x, training=False)
            return {k: out[k] for k in keys}

        spec = tf.TensorSpec((None, *model.input_shape_), tf.float32)
        cache[name] = tf.function(f, input_signature=[spec])
    return cache[name]


def model_outputs(model, x: np.ndarray, batch_size: int = 256, keys: tuple[str, ...] = RAW_SCORES,
                  desc: str = "") -> dict[str, np.ndarray]:
    """Run the model over ``x`` in batches and return the requested outputs as numpy arrays."""
    fn = _fn(model, ",".join(keys), keys)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    n_batches = max(1, math.ceil(len(x) / batch_size))
    it = range(n_batches)
    if desc and n_batches > 4:
        it = progress(it, desc=desc, total=n_batches, unit="batch")
    for i in it:
        out = fn(tf.constant(x[i * batch_size:(i + 1) * batch_size]))
        for k in keys:
            parts[k].append(np.asarray(out[k], np.float32))
    return {k: np.concatenate(v) for k, v in parts.items()}


def raw_scores(model, x: np.ndarray, batch_size: int = 256, desc: str = "", ucsd_smask_bug: bool = False):
    """Raw per-sample ``s_rec, s_mask, s_cont``. ``ucsd_smask_bug`` reproduces the authors' UCSD test script,
    where the masked reconstructions were overwritten by the plain ones so that s_mask == s_rec (notes 4.5.2)."""
    raw = model_outputs(model, x, batch_size, RAW_SCORES, desc)
    if ucsd_smask_bug:
        raw["s_mask"] = raw["s_rec"].copy()
    return raw


def normalise(raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Min-max normalise each raw score over the evaluation set; ``s_avg`` = their mean (Section 3.6)."""
    out = {k: metrics.minmax(raw[k]) for k in RAW_SCORES}
    out["s_avg"] = (out["s_rec"] + out["s_mask"] + out["s_cont"]) / 3.0
    return out


def image_aurocs(labels: np.ndarray, scores: dict[str, np.ndarray]) -> dict[str, float]:
    """Exact AUROC of every score (1 = outlier positive)."""
    return {k: metrics.auroc(labels, scores[k]) for k in SCORES}


def frame_scores(scores: dict[str, np.ndarray], frame_ids: np.ndarray, video_lengths: list[int]):
    """UCSD: frame score = maximum over the frame's patches (of the normalised patch scores), split per video."""
    n_frames = int(sum(video_lengths))
    cuts = np.cumsum(video_lengths)[:-1]
    return {k: np.split(protocols.frame_scores_from_patches(scores[k], frame_ids, n_frames), cuts) for k in SCORES}


def video_metrics(per_video: dict[str, list[np.ndarray]], video_labels: list[np.ndarray]) -> dict[str, dict]:
    """Frame-level AUROC and EER, pooled over all test frames, without further normalisation (the patch scores
    are already min-max normalised over the whole evaluation set; a monotone map leaves AUROC/EER unchanged)."""
    out = {}
    for k in SCORES:
        m = metrics.frame_level_metrics(per_video[k], video_labels, pooling="pooled", normalisation="none")
        out[k] = {"auroc": m["auroc"], "eer": m["eer"]}
    return out


def segmentation_auroc(model, raw_images: np.ndarray, x: np.ndarray, labels: np.ndarray, n_per_set: int,
                       batch_size: int = 256) -> dict[str, float]:
    """Table 5: pixel AUROC of the activation map A of MG against the foreground (raw pixel != 0), computed over
    all pixels of ``n_per_set`` test inliers and, separately, ``n_per_set`` test outliers (Section 4.5)."""
    out = {}
    for name, lab in (("inlier", 0), ("outlier", 1)):
        idx = np.flatnonzero(labels == lab)[:n_per_set]
        if idx.size == 0:
            continue
        a = model_outputs(model, x[idx], batch_size, ("activation",))["activation"]
        fg = (np.asarray(raw_images[idx]).max(axis=-1, keepdims=True) != 0).astype(np.int64)
        if fg.min() == fg.max():
            continue
        out[name] = metrics.auroc(fg.ravel(), a.ravel())
    return out


# ------------------------------------------------------------------------------------------ model selection
def network_weights(model) -> list[np.ndarray]:
    """The weights of both networks (R, then MG) as numpy arrays: what a selection snapshot holds."""
    return model.reconstructor.get_weights() + model.mask_generator.get_weights()


def set_network_weights(model, weights: list[np.ndarray]) -> None:
    """Load weights in the order of :func:`network_weights` into the model's networks."""
    n = len(model.reconstructor.weights)
    model.reconstructor.set_weights(weights[:n])
    model.mask_generator.set_weights(weights[n:])


def save_snapshot(model, path: Path) -> None:
    w = network_weights(model)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, *w)
    tmp.replace(path)


def load_snapshot(model, path: Path) -> None:
    with np.load(path) as z:
        set_network_weights(model, [z[f"arr_{i}"] for i in range(len(z.files))])


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of the masked pixels (mask < 0.5) of two mask sets of the same images."""
    a, b = np.asarray(a) < 0.5, np.asarray(b) < 0.5
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def select_improved(aucs: dict[str, float], best: dict[str, float], selection: str = "s_avg") -> list[str]:
    """The scores whose best epoch becomes this one: ``"per_score"`` (the authors' code) each score that beat
    its own best; ``"s_avg"`` all four when s_avg beat its best (one epoch for every score), else none."""
    if selection == "per_score":
        return [k for k in SCORES if aucs[k] > best[k]]
    if selection == "s_avg":
        return list(SCORES) if aucs["s_avg"] > best["s_avg"] else []
    raise ValueError(f"selection must be 's_avg' or 'per_score', got {selection!r}")


class ModelSelection(keras.callbacks.Callback):
    """After every ``every``-th epoch and the last one: validation AUROC of each score; the weights of the best
    epoch are kept in ``<workdir>/selection/epoch_<e>.npz`` (Section 4.1: "a small validation set ... is used to
    determine the best epoch"). ``selection="s_avg"`` (default): one epoch for all four scores, the one with the
    best validation s_avg; ``"per_score"``: each score at its own best epoch, as in the authors' code (notes 4.4).
    Each validation also records the IoU of the validation images' masks with those of the previous validation
    (``mask_iou_prev``: how much the masks moved). The masks of each validation are kept in
    ``selection/masks_epoch_<e>.npy`` (the last two), so a resumed run compares with the epoch it resumes from.

    The best-so-far state is part of the training checkpoint (``get_state`` / ``set_state``, see
    :class:`common.training.Checkpoint`), so a resumed run continues with the state of the epoch it resumes
    from and a fresh run (``--noresume``, ``--force``) starts from nothing. ``selection/selection.json`` is a
    copy for people; it is never read. A snapshot file is deleted only once no saved checkpoint can refer to it."""

    def __init__(self, val_x: np.ndarray, val_y: np.ndarray, workdir: str | Path, batch_size: int = 256,
                 ucsd_smask_bug: bool = False, recalibration_x: np.ndarray | None = None, selection: str = "s_avg",
                 every: int = 1, epochs: int | None = None):
        super().__init__()
        self.val_x, self.val_y, self.batch_size, self.bug = val_x, val_y, batch_size, ucsd_smask_bug
        self.recalibration_x = recalibration_x
        select_improved({k: 0.0 for k in SCORES}, {k: 0.0 for k in SCORES}, selection)  # validates the name
        self.selection, self.every, self.epochs = selection, max(1, int(every)), epochs
        self._last_masks = None  # masks of the previous validation (restored from masks_path() on resume)
        self.dir = Path(workdir) / "selection"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_path = self.dir / "selection.json"
        self.best = {k: -1.0 for k in SCORES}
        self.best_epoch: dict[str, int | None] = {k: None for k in SCORES}
        self.history: list[dict] = []
        self._saved_epochs: set[int] = set()  # referenced by the last state handed to a checkpoint

    def snapshot_path(self, epoch: int) -> Path:
        return self.dir / f"epoch_{epoch}.npz"

    def masks_path(self, epoch: int) -> Path:
        return self.dir / f"masks_epoch_{epoch}.npy"

    def get_state(self) -> dict:
        self._saved_epochs = {e for e in self.best_epoch.values() if e is not None}
        return {"best": dict(self.best), "best_epoch": dict(self.best_epoch), "history": list(self.history)}

    def set_state(self, state: dict) -> None:
        self.best, self.best_epoch, self.history = dict(state["best"]), dict(state["best_epoch"]), \
            list(state["history"])
        self._saved_epochs = {e for e in self.best_epoch.values() if e is not None}
        missing = [str(self.snapshot_path(e)) for e in sorted(self._saved_epochs) if not self.snapshot_path(e).exists()]
        if missing:
            from common.errors import ConfigError

            raise ConfigError(f"the checkpoint refers to selection snapshots that are missing ({', '.join(missing)}); "
                              f"use --force to start the run again")
        last = self.masks_path(self.history[-1]["epoch"]) if self.history else None
        self._last_masks = np.load(last) if last is not None and last.exists() else None

    def validates(self, epoch: int) -> bool:
        """Every ``every``-th epoch (1-based) and the last one."""
        return (epoch + 1) % self.every == 0 or (self.epochs is not None and epoch + 1 >= self.epochs)

    def on_epoch_end(self, epoch, logs=None):
        if not self.validates(epoch):
            return
        if self.recalibration_x is not None:
            self.model.recalibrate_batch_norm(self.recalibration_x)
        out = model_outputs(self.model, self.val_x, self.batch_size, RAW_SCORES + ("reconstruction", "mask"))
        if self.bug:
            out["s_mask"] = out["s_rec"].copy()
        variation = output_variation(self.val_x, out["reconstruction"])
        iou = None if self._last_masks is None else mask_iou(self._last_masks, out["mask"])
        self._last_masks = out["mask"]
        tmp = self.dir / "masks.tmp.npy"
        np.save(tmp, out["mask"])
        tmp.replace(self.masks_path(epoch))
        for old in self.dir.glob("masks_epoch_*.npy"):  # this one and the one a checkpoint may resume from
            if int(old.stem.rsplit("_", 1)[1]) < (self.history[-1]["epoch"] if self.history else epoch):
                old.unlink()
        norm = normalise(out)
        aucs = image_aurocs(self.val_y, norm)
        improved = select_improved(aucs, self.best, self.selection)
        if improved:
            save_snapshot(self.model, self.snapshot_path(epoch))
            for k in improved:
                self.best[k], self.best_epoch[k] = aucs[k], epoch
        keep = {self.snapshot_path(e).name for e in self.best_epoch.values() if e is not None}
        keep |= {self.snapshot_path(e).name for e in self._saved_epochs}
        for p in self.dir.glob("epoch_*.npz"):
            if p.name not in keep:
                p.unlink()
        self.history.append({"epoch": epoch, **{f"val_auroc_{k}": aucs[k] for k in SCORES},
                             "r_output_variation": variation, "mask_iou_prev": iou,
                             **{k: float(v) for k, v in (logs or {}).items() if k in LOSS_KEYS}})
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"best": self.best, "best_epoch": self.best_epoch, "history": self.history},
                                  indent=2))
        tmp.replace(self.state_path)
        if logs is not None:
            logs.update({f"val_auroc_{k}": aucs[k] for k in SCORES})
        print(f"  validation AUROC epoch {epoch + 1}: " + ", ".join(f"{k} {aucs[k]:.4f}" for k in SCORES)
              + (f" (new best: {', '.join(improved)})" if improved else "")
              + f"; R(x) variation {variation:.3f}" + (f"; mask IoU with previous {iou:.3f}" if iou is not None
                                                          else ""), flush=True)
        if variation < COLLAPSE_RATIO:
            log.warning("epoch %d: the reconstructor's outputs hardly vary with the input (std of R(x) over the "
                        "validation images = %.3f x that of the images, < %.2f): R has collapsed to a near-constant "
                        "output", epoch + 1, variation, COLLAPSE_RATIO)


# ------------------------------------------------------------------------------------ training health, curves
# R(x) whose per-pixel spread over a set of images is below this fraction of the images' own spread is reported as
# collapsed (a healthy auto-encoder reproduces most of the spread; a constant output has none).
COLLAPSE_RATIO = 0.1
LOSS_KEYS = ("l_rec", "l_mask", "l_cont", "r_loss", "mm_objective")


def output_variation(x: np.ndarray, reconstructions: np.ndarray) -> float:
    """How much R's outputs vary with the input: the per-pixel standard deviation over the set of images of R(x),
    averaged over pixels, divided by the same for x. ~1 for a good reconstructor, ~0 for a constant output."""
    x, r = np.asarray(x, np.float64), np.asarray(reconstructions, np.float64)
    if r.shape[-1] != x.shape[-1]:  # the code's 3-channel UCSD output for gray patches
        r = r.mean(axis=-1, keepdims=True)
    return float(np.mean(np.std(r, axis=0)) / max(float(np.mean(np.std(x, axis=0))), 1e-12))


def training_health(history: list[dict], fig_path: Path | None = None, title: str = "",
                    mask_epochs: list[int] | None = None) -> dict:
    """Summary of a run's per-epoch validation history (``ModelSelection.history``) for ``metrics.json``, and the
    validation-curves PNG: AUROC of every score, the training losses and R's output variation per epoch.

    ``collapse_warning`` is True when R's output variation fell below :data:`COLLAPSE_RATIO` at some epoch (the
    epochs are listed); a warning is logged."""
    if not history:
        return {}
    var = [h.get("r_output_variation") for h in history]
    collapsed = [h["epoch"] for h, v in zip(history, var) if v is not None and v < COLLAPSE_RATIO]
    out = {"r_output_variation": var, "collapse_warning": bool(collapsed), "collapsed_epochs": collapsed,
           "validated_epochs": [h["epoch"] for h in history],
           "mask_iou_prev": [h.get("mask_iou_prev") for h in history],
           "val_auroc_per_epoch": {k: [h[f"val_auroc_{k}"] for h in history] for k in SCORES}}
    if collapsed:
        log.warning("COLLAPSE: the reconstructor's outputs hardly vary with the input at epoch(s) %s (R(x) variation "
                    "< %.2f of the images'); see the validation curves", ", ".join(str(e + 1) for e in collapsed),
                    COLLAPSE_RATIO)
    if fig_path is not None:
        out["curves_figure"] = str(save_validation_curves(history, fig_path, title, mask_epochs))
    return out


def save_validation_curves(history: list[dict], path: Path, title: str = "",
                           mask_epochs: list[int] | None = None) -> Path:
    """Per-epoch validation AUROC of every score, training losses and R(x) variation, one PNG (epochs from 1;
    shaded: epochs on which MM was trained)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] + 1 for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for ax in axes:
        for e in mask_epochs or ():
            ax.axvspan(e + 0.5, e + 1.5, color="0.9", lw=0)
        ax.set_xlabel("epoch")
    for k in SCORES:
        axes[0].plot(epochs, [h[f"val_auroc_{k}"] for h in history], marker="o", ms=3, label=k)
    axes[0].set_ylabel("validation AUROC")
    axes[0].legend(fontsize=7)
    for k in LOSS_KEYS[:3]:
        if all(k in h for h in history):
            axes[1].plot(epochs, [h[k] for h in history], marker="o", ms=3, label=k)
    axes[1].set_yscale("log")
    axes[1].set_ylabel("training loss (epoch mean)")
    axes[1].legend(fontsize=7)
    var = [h.get("r_output_variation", np.nan) for h in history]
    axes[2].plot(epochs, var, marker="o", ms=3, color="k")
    axes[2].axhline(COLLAPSE_RATIO, color="r", ls="--", lw=1, label=f"collapse threshold {COLLAPSE_RATIO}")
    axes[2].set_ylim(0, max(1.1, np.nanmax(var) * 1.05 if np.isfinite(np.nanmax(var)) else 1.1))
    axes[2].set_ylabel("std R(x) / std x (validation)")
    axes[2].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------------------- figures
def save_figures(model, x: np.ndarray, labels: np.ndarray, scores: dict[str, np.ndarray], fig_dir: Path,
                 title: str, n: int = 8, batch_size: int = 256, label_names=("inliers", "outliers")) -> list[Path]:
    """Fig. 2/3: inliers and outliers with the mask (masked pixels at the midpoint, shown gray), the masked
    image and the reconstruction of the masked image; Fig. 4: inlier / outlier histograms of every score."""
    fig_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    rows = []
    rng = np.random.default_rng(0)
    for name, lab in zip(label_names, (0, 1)):
        idx = np.flatnonzero(labels == lab)
        if idx.size == 0:
            continue
        idx = np.sort(rng.choice(idx, min(n, idx.size), replace=False))
        out = model_outputs(model, x[idx], batch_size, ("mask", "masked_image", "masked_reconstruction",
                                                         "reconstruction"))
        rows += [(f"{name}", x[idx]), ("mask", out["mask"] * 2.0 - 1.0), ("masked", out["masked_image"]),
                 ("R(masked)", out["masked_reconstruction"]), ("R(x)", out["reconstruction"])]
    if rows:
        paths.append(plots.save_image_grid(rows, fig_dir / "fig2_reconstructions.png", title=title))
    for k in SCORES:
        s = scores[k]
        if np.any(labels == 0) and np.any(labels == 1):
            paths.append(plots.save_score_histogram(s[labels == 0], s[labels == 1], fig_dir / f"fig4_hist_{k}.png",
                                                    title=f"{title}: {k}", xlabel=f"{k} (normalised)"))
    return paths
