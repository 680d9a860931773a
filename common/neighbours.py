"""Near / far neighbour lookup for NRE (numpy / scipy only, no TensorFlow).

NRE (Sabokrou et al.) Section 3.1, Eq. 2-4: for a sample X' the near set N(X') holds the T training samples of
HIGHEST cosine similarity S to X' in the latent space R_A, the far set F(X') the T samples of LOWEST similarity
(X_i != X'). S(a, b) = a.b / (|a| |b|) (Eq. 4) and the dissimilarity is D = 1 - S. The latent codes pass
through a ReLU, so S lies in [0, 1] for them (this module accepts any real vectors: then S is in [-1, 1]).

Section 3.2 speeds this up: "we cluster the training samples into K clusters and the nearest neighbour
sample(s) are selected from the same cluster of X, and far-away samples are randomly selected from clusters that
have faraway centers from the cluster to which X belongs" (K = 400 on ImageNet, Section 4.3). That is
:class:`KMeansNeighbours`; :func:`brute_force_neighbours` is the exact Eq. 2-3 for small sets and for tests.

Implementation choices (the paper gives no details):

* Spherical k-means (cosine k-means): vectors are L2-normalised, each point goes to the centre of highest
  cosine similarity, a centre is the re-normalised mean of its members; k-means++ seeding with the squared
  Euclidean distance on the unit sphere (2 - 2S), greedy as in scikit-learn (best of 2 + log K candidates). For speed the centres are fitted on a seeded subsample of at
  most ``fit_sample`` vectors (all of them if fewer); then EVERY vector is assigned to its most similar centre.
  All matrix products are float32 and chunked, so memory stays bounded.
* Near: exact top-T by cosine among the members of the query's cluster (the cluster whose centre is most similar
  to the query). If that cluster has fewer than T candidates (T + 1 when the query itself is excluded), the
  members of the clusters whose centres are most similar to that centre are added until there are enough.
* Far: T distinct samples drawn uniformly (seeded) from the members of the ``far_clusters`` clusters whose
  centres are LEAST similar to the query's cluster centre (non-empty clusters only, never one used for the near
  candidates, so near and far sets never share a sample; more clusters are added if they hold fewer than T
  samples). The paper gives no number of far clusters; the default 1 (the single farthest cluster) is the
  closest cluster-level counterpart of Eq. 3's argmin.
* A zero vector (possible after a ReLU) has similarity 0 with everything (D = 1).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse

from common.errors import ConfigError, DataError

__all__ = [
    "l2_normalise",
    "cosine_similarity",
    "cosine_similarity_matrix",
    "cosine_distance",
    "brute_force_neighbours",
    "KMeansNeighbours",
]

_EPS = 1e-12
# Elements per float32 similarity block (about 64 MB); bounds the memory of every chunked matmul.
_BLOCK = 1 << 24
# k-means++ seeding runs on at most this many points per cluster (a seeded subset), which keeps it cheap for
# K = 400 while leaving plenty of points per centre to choose from.
_INIT_PER_CLUSTER = 50


def _as_matrix(a, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 2:
        raise DataError(f"{name} must be a 2-D array (n_samples, dim), got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise DataError(f"{name} is empty (shape {a.shape})")
    if not np.all(np.isfinite(a)):
        raise DataError(f"{name} contains NaN or infinite values; check the encoder outputs")
    return a


def l2_normalise(a, dtype=np.float32) -> np.ndarray:
    """Rows scaled to unit L2 norm (``dtype``, C-contiguous); zero rows stay zero."""
    a = np.asarray(a, dtype=dtype)
    norms = np.sqrt(np.einsum("...i,...i->...", a, a, dtype=np.float64))[..., None]
    out = a / np.maximum(norms, _EPS).astype(dtype)
    return np.ascontiguousarray(out)


def cosine_similarity(a, b) -> np.ndarray | float:
    """Row-wise cosine similarity S (NRE Eq. 4) of paired vectors: ``a``, ``b`` of shape (n, d) -> (n,).

    1-D inputs give a float. Computed in float64. S(a, 0) = 0 by convention. For all pairs use
    :func:`cosine_similarity_matrix`. Example: S((3, 4), (4, 3)) = 24/25 = 0.96.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise DataError(f"cosine_similarity needs paired vectors of equal shape, got {a.shape} and {b.shape}")
    na = np.sqrt(np.sum(a * a, axis=-1))
    nb = np.sqrt(np.sum(b * b, axis=-1))
    s = np.sum(a * b, axis=-1) / np.maximum(na * nb, _EPS)
    s = np.clip(s, -1.0, 1.0)
    return float(s) if np.ndim(s) == 0 else s


def cosine_distance(a, b) -> np.ndarray | float:
    """NRE's dissimilarity D = 1 - S of paired vectors (see :func:`cosine_similarity`)."""
    s = cosine_similarity(a, b)
    return 1.0 - s


def cosine_similarity_matrix(a, b) -> np.ndarray:
    """All-pairs cosine similarity: ``a`` (n, d), ``b`` (m, d) -> float32 (n, m)."""
    a = _as_matrix(a, "a")
    b = _as_matrix(b, "b")
    if a.shape[1] != b.shape[1]:
        raise DataError(f"dimension mismatch: {a.shape[1]} vs {b.shape[1]}")
    return l2_normalise(a) @ l2_normalise(b).T


def _check_exclude(exclude, n_queries: int, n_data: int) -> np.ndarray | None:
    if exclude is None:
        return None
    ex = np.asarray(exclude, dtype=np.int64).reshape(-1)
    if ex.size != n_queries:
        raise ConfigError(f"exclude must hold one training index per query ({n_queries}), got {ex.size}")
    if ex.size and (ex.min() < -1 or ex.max() >= n_data):
        raise ConfigError(f"exclude indices must be in [-1, {n_data}) (-1 = exclude nothing)")
    return ex


def _top_t(s: np.ndarray, t: int, largest: bool) -> np.ndarray:
    """Column indices of the ``t`` largest (or smallest) entries of each row of ``s``, best first."""
    key = -s if largest else s
    if t < s.shape[1]:
        part = np.argpartition(key, t - 1, axis=1)[:, :t]
    else:
        part = np.broadcast_to(np.arange(s.shape[1]), (s.shape[0], s.shape[1])).copy()
    vals = np.take_along_axis(key, part, axis=1)
    order = np.argsort(vals, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def brute_force_neighbours(latents, queries, T: int, exclude=None) -> tuple[np.ndarray, np.ndarray]:
    """Exact NRE Eq. 2-3: for each query the T most similar (near) and T least similar (far) latents.

    Args:
      latents: (n, d) training codes. queries: (q, d) codes.
      T: number of near and of far samples.
      exclude: optional (q,) training index per query that must not be returned (the query itself when the
        queries are training samples, Eq. 2-3's X_i != X'); -1 = none.
    Returns:
      ``(near_idx, far_idx)``, int64 (q, T) each: near sorted by decreasing similarity, far by increasing.
    Cost O(q n d), chunked over the queries; meant for small sets and as the reference of the k-means lookup.
    """
    x = l2_normalise(_as_matrix(latents, "latents"))
    q = l2_normalise(_as_matrix(queries, "queries"))
    if x.shape[1] != q.shape[1]:
        raise DataError(f"latents have dimension {x.shape[1]} but queries {q.shape[1]}")
    n = x.shape[0]
    ex = _check_exclude(exclude, q.shape[0], n)
    T = int(T)
    extra = 1 if ex is not None and np.any(ex >= 0) else 0
    if T < 1 or T + extra > n:
        raise ConfigError(f"T must be in [1, {n - extra}] for {n} latents"
                          f"{' with the query excluded' if extra else ''}, got {T}")
    near = np.empty((q.shape[0], T), np.int64)
    far = np.empty((q.shape[0], T), np.int64)
    step = max(1, _BLOCK // n)
    for lo in range(0, q.shape[0], step):
        hi = min(lo + step, q.shape[0])
        s = q[lo:hi] @ x.T
        if ex is not None:
            rows = np.flatnonzero(ex[lo:hi] >= 0)
            s_near = s.copy()
            s_near[rows, ex[lo:hi][rows]] = -np.inf
            s[rows, ex[lo:hi][rows]] = np.inf
            near[lo:hi] = _top_t(s_near, T, largest=True)
        else:
            near[lo:hi] = _top_t(s, T, largest=True)
        far[lo:hi] = _top_t(s, T, largest=False)
    return near, far


class KMeansNeighbours:
    """NRE Section 3.2 lookup: spherical k-means, near samples inside the cluster, far samples from far clusters.

    Usage::

        nb = KMeansNeighbours(n_clusters=400, T=1, seed=0).fit(latents)       # latents (n, d)
        near, far = nb.training_neighbours()        # every training sample, itself excluded
        near, far = nb.query(other_codes)           # arbitrary codes

    Args:
      n_clusters: K (NRE uses 400 on ImageNet). Must be >= 2 and <= the number of latents.
      T: near / far samples per query (NRE Section 4.5 uses T = 1).
      seed: seeds the subsample, the k-means++ initialisation and the far draws (``query`` calls advance one
        generator, so a fresh object with the same seed replays the same sequence).
      far_clusters: number of least-similar clusters the far samples are drawn from (default 1; see module
        docstring).
      max_iter, tol: Lloyd iterations; stop when fewer than ``tol`` of the points change cluster.
      fit_sample: fit the centres on at most this many vectors (seeded subsample); None = all.

    Fitted attributes: ``centres_`` (K, d) unit vectors, ``labels_`` (n,) cluster of every latent,
    ``sizes_`` (K,), ``n_iter_``.
    """

    def __init__(self, n_clusters: int = 400, T: int = 1, seed: int = 0, far_clusters: int = 1,
                 max_iter: int = 30, tol: float = 1e-3, fit_sample: int | None = 200_000):
        if int(n_clusters) < 2:
            raise ConfigError(f"n_clusters must be >= 2, got {n_clusters}")
        if int(T) < 1:
            raise ConfigError(f"T must be >= 1, got {T}")
        if not 1 <= int(far_clusters) <= int(n_clusters) - 1:
            raise ConfigError(f"far_clusters must be in [1, n_clusters - 1 = {int(n_clusters) - 1}], "
                              f"got {far_clusters}")
        if int(max_iter) < 1:
            raise ConfigError(f"max_iter must be >= 1, got {max_iter}")
        if fit_sample is not None and int(fit_sample) < int(n_clusters):
            raise ConfigError(f"fit_sample ({fit_sample}) must be at least n_clusters ({n_clusters})")
        self.n_clusters = int(n_clusters)
        self.T = int(T)
        self.seed = int(seed)
        self.far_clusters = int(far_clusters)
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.fit_sample = None if fit_sample is None else int(fit_sample)
        self._rng = np.random.default_rng(self.seed)
        self.centres_ = None

    # ------------------------------------------------------------------------------------------------ k-means
    @staticmethod
    def _assign(x: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Most similar centre of every row (chunked): (labels int64, similarity float32)."""
        n, k = x.shape[0], centres.shape[0]
        labels = np.empty(n, np.int64)
        best = np.empty(n, np.float32)
        ct = np.ascontiguousarray(centres.T)
        step = max(1, _BLOCK // k)
        for lo in range(0, n, step):
            s = x[lo:lo + step] @ ct
            lab = np.argmax(s, axis=1)
            labels[lo:lo + step] = lab
            best[lo:lo + step] = s[np.arange(len(lab)), lab]
        return labels, best

    def _kmeans_pp(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Greedy k-means++ seeding (as scikit-learn's ``kmeans_plusplus``) with d^2 = 2 - 2 S.

        Each step draws ``2 + int(log K)`` candidates with probability proportional to d^2 (the squared
        Euclidean distance between unit vectors) and keeps the one that lowers the total d^2 most. Runs on a
        seeded subset of at most ``_INIT_PER_CLUSTER * K`` points (all if fewer).
        """
        k = self.n_clusters
        if x.shape[0] > _INIT_PER_CLUSTER * k:
            x = x[np.sort(rng.choice(x.shape[0], _INIT_PER_CLUSTER * k, replace=False))]
        n = x.shape[0]
        trials = 2 + int(np.log(k))
        idx = np.empty(k, np.int64)
        idx[0] = rng.integers(n)
        d2 = np.maximum(2.0 - 2.0 * (x @ x[idx[0]]), 0.0)  # float32, (n,)
        for j in range(1, k):
            total = float(d2.sum(dtype=np.float64))
            if total <= 0:  # fewer distinct directions than clusters: take any unused point
                unused = np.setdiff1d(np.arange(n), idx[:j])
                idx[j] = unused[rng.integers(len(unused))]
                continue
            cand = np.searchsorted(np.cumsum(d2, dtype=np.float64), rng.random(trials) * total, side="right")
            cand = np.minimum(cand, n - 1)
            cd2 = np.maximum(2.0 - 2.0 * (x @ x[cand].T), 0.0)  # (n, trials)
            np.minimum(cd2, d2[:, None], out=cd2)
            best = int(np.argmin(cd2.sum(axis=0, dtype=np.float64)))
            idx[j] = cand[best]
            d2 = np.ascontiguousarray(cd2[:, best])
        return x[idx].copy()

    def _update(self, x: np.ndarray, labels: np.ndarray, best: np.ndarray, centres: np.ndarray) -> np.ndarray:
        """New centres = normalised member means; an empty cluster takes the worst-fitting point as its centre."""
        n, k = x.shape[0], self.n_clusters
        onehot = scipy.sparse.csr_matrix((np.ones(n, np.float32), (labels, np.arange(n))), shape=(k, n))
        sums = np.asarray(onehot @ x, dtype=np.float32)
        counts = np.bincount(labels, minlength=k)
        empty = np.flatnonzero(counts == 0)
        if empty.size:
            worst = np.argsort(best, kind="stable")[:empty.size]
            sums[empty] = x[worst]
        new = l2_normalise(sums)
        # A cluster whose members are all zero vectors keeps its old centre.
        zero = np.flatnonzero(np.einsum("ij,ij->i", new, new) == 0)
        new[zero] = centres[zero]
        return new

    def fit(self, latents, init_centres=None) -> "KMeansNeighbours":
        """Cluster ``latents`` (n, d) and remember them (as float32 unit vectors) for later lookups.

        ``init_centres`` (K, d) warm-starts the centres, e.g. from the previous epoch's fit when NRE refreshes
        the neighbours as the encoder changes.
        """
        x = l2_normalise(_as_matrix(latents, "latents"))
        n, d = x.shape
        if self.n_clusters > n:
            raise ConfigError(f"n_clusters ({self.n_clusters}) exceeds the number of latents ({n})")
        if n < self.T + 1:
            raise ConfigError(f"T ({self.T}) must be smaller than the number of latents ({n})")
        rng = np.random.default_rng([self.seed, 1])
        if self.fit_sample is not None and n > self.fit_sample:
            sub = x[np.sort(rng.choice(n, self.fit_sample, replace=False))]
        else:
            sub = x
        if init_centres is not None:
            c = np.asarray(init_centres)
            if c.shape != (self.n_clusters, d):
                raise ConfigError(f"init_centres must have shape {(self.n_clusters, d)}, got {c.shape}")
            centres = l2_normalise(c)
        else:
            centres = self._kmeans_pp(sub, rng)
        prev = None
        self.n_iter_ = 0
        for it in range(self.max_iter):
            labels, best = self._assign(sub, centres)
            changed = 1.0 if prev is None else float(np.mean(labels != prev))
            centres = self._update(sub, labels, best, centres)
            prev = labels
            self.n_iter_ = it + 1
            if changed < self.tol:
                break
        self.centres_ = centres
        self._x = x
        self.labels_, _ = self._assign(x, centres)
        self.sizes_ = np.bincount(self.labels_, minlength=self.n_clusters)
        order = np.argsort(self.labels_, kind="stable")  # members of each cluster, in increasing index order
        self._members = np.split(order, np.cumsum(self.sizes_)[:-1])
        csim = centres @ centres.T
        # Clusters by decreasing centre similarity; the cluster itself always first.
        np.fill_diagonal(csim, np.inf)
        self._by_similarity = np.argsort(-csim, axis=1, kind="stable")
        return self

    # ------------------------------------------------------------------------------------------------ lookup
    def _check_fitted(self):
        if self.centres_ is None:
            raise ConfigError("KMeansNeighbours.query called before fit(latents)")

    def _near_candidates(self, c: int, need: int) -> tuple[np.ndarray, list[int]]:
        used, parts, count = [], [], 0
        for j in self._by_similarity[c]:
            if self.sizes_[j] == 0:
                continue
            used.append(int(j))
            parts.append(self._members[j])
            count += self.sizes_[j]
            if count >= need:
                break
        cand = parts[0] if len(parts) == 1 else np.sort(np.concatenate(parts))
        return cand, used

    def _far_pool(self, c: int, exclude_clusters: list[int], need: int) -> np.ndarray:
        parts, n_cl, count = [], 0, 0
        for j in self._by_similarity[c][::-1]:
            if self.sizes_[j] == 0 or int(j) in exclude_clusters:
                continue
            parts.append(self._members[j])
            n_cl += 1
            count += self.sizes_[j]
            if n_cl >= self.far_clusters and count >= need:
                break
        if count < need:
            raise ConfigError(f"not enough samples outside the near clusters to draw {self.T} far samples; "
                              "use fewer clusters or a smaller T")
        return np.concatenate(parts)

    def _draw_far(self, pool: np.ndarray, n: int, rng: np.random.Generator, excl: np.ndarray | None) -> np.ndarray:
        """``n`` rows of T distinct pool members each (uniform, seeded), never the row's excluded index."""
        t = self.T
        out = pool[rng.integers(len(pool), size=(n, t))]
        srt = np.sort(out, axis=1)
        bad = np.any(srt[:, 1:] == srt[:, :-1], axis=1) if t > 1 else np.zeros(n, bool)
        if excl is not None:
            bad |= np.any(out == excl[:, None], axis=1)
        for r in np.flatnonzero(bad):  # rare: redraw without replacement
            p = pool if excl is None else pool[pool != excl[r]]
            out[r] = rng.choice(p, size=t, replace=False)
        return out

    def _lookup(self, q: np.ndarray, qlab: np.ndarray, ex: np.ndarray | None, rng) -> tuple[np.ndarray, np.ndarray]:
        nq, t = q.shape[0], self.T
        near = np.empty((nq, t), np.int64)
        far = np.empty((nq, t), np.int64)
        order = np.argsort(qlab, kind="stable")
        bounds = np.flatnonzero(np.diff(qlab[order])) + 1
        for grp in np.split(order, bounds):
            c = int(qlab[grp[0]])
            gex = None if ex is None else ex[grp]
            need = t + (1 if gex is not None and np.any(gex >= 0) else 0)
            cand, used = self._near_candidates(c, need)
            if len(cand) < need:
                raise ConfigError(f"only {len(cand)} latents to choose {t} near samples from; lower T")
            xc = np.ascontiguousarray(self._x[cand].T)
            step = max(1, _BLOCK // len(cand))
            for lo in range(0, len(grp), step):
                rows = grp[lo:lo + step]
                s = q[rows] @ xc
                if gex is not None:
                    e = gex[lo:lo + step]
                    pos = np.searchsorted(cand, e)
                    hit = (e >= 0) & (pos < len(cand))
                    hit[hit] &= cand[pos[hit]] == e[hit]
                    s[np.flatnonzero(hit), pos[hit]] = -np.inf
                near[rows] = cand[_top_t(s, t, largest=True)]
            pool = self._far_pool(c, used, t + (1 if gex is not None else 0))
            far[grp] = self._draw_far(pool, len(grp), rng, gex)
        return near, far

    def query(self, queries, exclude=None) -> tuple[np.ndarray, np.ndarray]:
        """Near and far samples (indices into the fitted latents) for arbitrary codes ``queries`` (q, d).

        Each query belongs to the cluster of its most similar centre. ``exclude``: optional (q,) training index
        per query never to return (-1 = none). Returns ``(near_idx, far_idx)``, int64 (q, T); near sorted by
        decreasing similarity.
        """
        self._check_fitted()
        q = l2_normalise(_as_matrix(queries, "queries"))
        if q.shape[1] != self._x.shape[1]:
            raise DataError(f"queries have dimension {q.shape[1]} but the fitted latents {self._x.shape[1]}")
        ex = _check_exclude(exclude, q.shape[0], self._x.shape[0])
        qlab, _ = self._assign(q, self.centres_)
        return self._lookup(q, qlab, ex, self._rng)

    def training_neighbours(self, indices=None) -> tuple[np.ndarray, np.ndarray]:
        """Near and far samples of fitted latents themselves (all, or ``indices``), each excluding itself.

        Uses the stored cluster of every latent. Returns ``(near_idx, far_idx)``, int64 (len(indices), T).
        """
        self._check_fitted()
        n = self._x.shape[0]
        idx = np.arange(n, dtype=np.int64) if indices is None else np.asarray(indices, np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise ConfigError(f"indices must be in [0, {n})")
        return self._lookup(self._x[idx], self.labels_[idx], idx, self._rng)
