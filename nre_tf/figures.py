"""Figure helpers specific to NRE (the PNG writers themselves are ``common/plots.py``)."""
from __future__ import annotations

import numpy as np


def embed_2d(features, seed: int = 0, max_points: int = 2000) -> np.ndarray:
    """2-D embedding of ``features`` (N, d) for Fig. 1: t-SNE (scikit-learn, PCA initialisation, perplexity
    min(30, (N-1)/3)) of the first ``max_points`` rows. The paper does not say which embedding it plots
    (assumption)."""
    from sklearn.manifold import TSNE

    f = np.asarray(features, np.float32)[:max_points]
    if len(f) < 5:
        return np.pad(f[:, :2], ((0, 0), (0, max(0, 2 - f.shape[1]))))
    perplexity = float(min(30.0, (len(f) - 1) / 3.0))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(f)
