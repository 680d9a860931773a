"""PNG figures people would rather look at than read: image grids, score histograms, 2-D embeddings.

All functions take images in [0, 1] or [-1, 1] (``value_range``) as NHWC arrays, write one PNG with the
non-interactive Agg backend, and return its path.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no screen needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def to_display(img: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """``img`` scaled from ``value_range`` to [0, 1] (clipped), a single channel dropped, for ``imshow``."""
    lo, hi = value_range
    img = (np.asarray(img, np.float32) - lo) / (hi - lo)
    img = np.clip(img, 0.0, 1.0)
    return img[..., 0] if img.ndim == 3 and img.shape[-1] == 1 else img


def save_image_grid(rows: Sequence[tuple[str, np.ndarray]], path: str | os.PathLike, title: str = "",
                    value_range: tuple[float, float] = (-1.0, 1.0), cmap: str = "gray",
                    col_titles: Sequence[str] | None = None) -> Path:
    """One row per ``(label, images)``; images are (N,H,W[,C]); rows may have different lengths."""
    plt = pyplot()
    n_cols = max(len(imgs) for _, imgs in rows)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(1.3 * n_cols + 1.2, 1.3 * len(rows) + 0.6),
                             squeeze=False)
    for r, (label, imgs) in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(imgs):
                img = imgs[c]
                vr = value_range if np.asarray(img).dtype != np.bool_ else (0, 1)
                ax.imshow(to_display(img, vr), cmap=cmap, vmin=0, vmax=1)
            else:
                ax.axis("off")
            if c == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
            if r == 0 and col_titles is not None and c < len(col_titles):
                ax.set_title(col_titles[c], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(plt, fig, path)


def save_score_histogram(inlier_scores: np.ndarray, outlier_scores: np.ndarray, path: str | os.PathLike,
                         title: str = "", xlabel: str = "anomaly score", bins: int = 40) -> Path:
    """Overlaid histograms of inlier and outlier scores (OLED Fig. 4 style), densities on the y axis."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    all_s = np.concatenate([np.ravel(inlier_scores), np.ravel(outlier_scores)])
    edges = np.linspace(np.min(all_s), np.max(all_s) + 1e-12, bins + 1)
    ax.hist(np.ravel(inlier_scores), bins=edges, alpha=0.6, density=True, label=f"inliers (n={np.size(inlier_scores)})")
    ax.hist(np.ravel(outlier_scores), bins=edges, alpha=0.6, density=True, label=f"outliers (n={np.size(outlier_scores)})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(plt, fig, path)


def save_embedding_2d(panels: Sequence[tuple[str, np.ndarray, np.ndarray]], path: str | os.PathLike,
                      title: str = "") -> Path:
    """Side-by-side scatter plots, one per ``(title, points (N,2), labels (N,))``, coloured by label."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4), squeeze=False)
    for ax, (t, pts, labels) in zip(axes[0], panels):
        sc = ax.scatter(pts[:, 0], pts[:, 1], c=labels, cmap="tab10", s=4, alpha=0.8)
        ax.set_title(t, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(sc, ax=axes[0].tolist(), shrink=0.8)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(plt, fig, path)
