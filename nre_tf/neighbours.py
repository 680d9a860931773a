"""Near / far neighbour lookup for NRE (NumPy / scikit-learn, no TensorFlow).

NRE (Sabokrou et al.) Section 3.1, Eq. 2-4: for a sample X' the near set N(X') holds the T training samples of
HIGHEST cosine similarity S to X' in the latent space R_A, the far set F(X') the T samples of LOWEST similarity
(X_i != X'). S(a, b) = a.b / (|a| |b|) (Eq. 4) and the dissimilarity is D = 1 - S. The latent codes pass
through a ReLU, so S lies in [0, 1] for them (any real vectors are accepted: then S is in [-1, 1]).

Section 3.2 speeds this up: "we cluster the training samples into K clusters and the nearest neighbour
sample(s) are selected from the same cluster of X, and far-away samples are randomly selected from clusters that
have faraway centers from the cluster to which X belongs" (K = 400 on ImageNet, Section 4.3). That is
:class:`KMeansNeighbours`; :func:`brute_force_neighbours` is the exact Eq. 2-3 for small sets and for tests.

Implementation choices (the paper gives no details):

* Exact search: scikit-learn's ``NearestNeighbors`` (brute force, cosine metric). The T LEAST similar samples
  of q are the T MOST similar of -q (S(-q, x) = -S(q, x)), so the far set is a nearest-neighbour query too.
* Clustering: spherical (cosine) k-means on the L2-normalised codes: each code goes to the centre of highest
  cosine similarity, a centre is the re-normalised mean of its members (an empty cluster takes the worst-fitting
  code). Seeding: greedy k-means++ as scikit-learn's (squared Euclidean distance between unit vectors = 2 - 2S)
  on a seeded subset of at most 50 codes per cluster. The centres are fitted on a seeded subsample of at most
  ``fit_sample`` codes; then EVERY code is assigned to its most similar centre. scikit-learn's ``KMeans``,
  ``MiniBatchKMeans`` and ``kmeans_plusplus`` were measured in their place and not kept: on 60,000 x 128 codes,
  K = 400 (shared 2-core CPU) they took 147 s, 34 s and 49 s (with this Lloyd loop) of CPU against 10 s for this
  code (float32 matrix products), and MiniBatchKMeans left clusters of 1 and 415 codes (this code: 85..237).
  Per-cluster ``NearestNeighbors`` for the near search cost 7.8 s against 5.0 s per refresh of 60,000 queries.
* Near: exact top-T by cosine among the members of the query's cluster. If that cluster has fewer than T
  candidates (T + 1 when the query itself is excluded), the members of the clusters whose centres are most
  similar to that centre are added until there are enough.
* Far: T distinct samples drawn uniformly (seeded) from the members of the ``far_clusters`` clusters whose
  centres are LEAST similar to the query's cluster centre (non-empty clusters only, never one used for the near
  candidates, so near and far sets never share a sample; more clusters are added if they hold fewer than T
  samples). The default 1 (the single farthest cluster) is the closest cluster-level counterpart of Eq. 3.
  When all clusters outside the near candidates together hold fewer than T samples (a tiny set, or codes that
  are all alike so that k-means leaves clusters empty), the far samples are drawn uniformly from all samples
  other than the query and its near samples.
* A zero vector (possible after a ReLU) has similarity 0 with everything (D = 1).
"""
from __future__ import annotations

import numpy as np

from common.errors import ConfigError, DataError

__all__ = ["l2_normalise", "cosine_similarity", "cosine_similarity_matrix", "cosine_distance",
           "brute_force_neighbours", "KMeansNeighbours"]

_EPS = 1e-12
# Elements per float32 similarity block (about 64 MB): bounds the memory of the assignment matmuls.
_BLOCK = 1 << 24
# k-means++ seeding runs on at most this many codes per cluster (a seeded subset).
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
    return np.ascontiguousarray(a / np.maximum(norms, _EPS).astype(dtype))


def cosine_similarity(a, b) -> np.ndarray | float:
    """Row-wise cosine similarity S (NRE Eq. 4) of paired vectors: ``a``, ``b`` of shape (n, d) -> (n,).

    1-D inputs give a float. Computed in float64. S(a, 0) = 0 by convention. For all pairs use
    :func:`cosine_similarity_matrix`. Example: S((3, 4), (4, 3)) = 24/25 = 0.96.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise DataError(f"cosine_similarity needs paired vectors of equal shape, got {a.shape} and {b.shape}")
    s = np.sum(l2_normalise(a, np.float64) * l2_normalise(b, np.float64), axis=-1)
    s = np.clip(s, -1.0, 1.0)
    return float(s) if np.ndim(s) == 0 else s


def cosine_distance(a, b) -> np.ndarray | float:
    """NRE's dissimilarity D = 1 - S of paired vectors (see :func:`cosine_similarity`)."""
    return 1.0 - cosine_similarity(a, b)


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


def _nearest(index, queries: np.ndarray, T: int, ex: np.ndarray | None) -> np.ndarray:
    """Indices (into the fitted rows of the ``NearestNeighbors`` ``index``) of the T most similar rows of each
    query, best first, never the query's excluded index (``ex``, -1 = none)."""
    k = T + (1 if ex is not None and np.any(ex >= 0) else 0)
    idx = index.kneighbors(queries, n_neighbors=k, return_distance=False)
    if k == T:
        return idx
    keep = idx != ex[:, None]
    keep[keep.sum(axis=1) > T, -1] = False  # the excluded index was not among them: drop the k-th
    return idx[keep].reshape(len(idx), T)


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


def _cosine_index(x: np.ndarray):
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(algorithm="brute", metric="cosine").fit(x)


def brute_force_neighbours(latents, queries, T: int, exclude=None) -> tuple[np.ndarray, np.ndarray]:
    """Exact NRE Eq. 2-3: for each query the T most similar (near) and T least similar (far) latents.

    Args:
      latents: (n, d) training codes. queries: (q, d) codes.
      T: number of near and of far samples.
      exclude: optional (q,) training index per query that must not be returned (the query itself when the
        queries are training samples, Eq. 2-3's X_i != X'); -1 = none.
    Returns:
      ``(near_idx, far_idx)``, int64 (q, T) each: near sorted by decreasing similarity, far by increasing.
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
    index = _cosine_index(x)
    return _nearest(index, q, T, ex).astype(np.int64), _nearest(index, -q, T, ex).astype(np.int64)


class KMeansNeighbours:
    """NRE Section 3.2 lookup: spherical k-means, near samples inside the cluster, far samples drawn from the
    least similar clusters.

    Usage::

        nb = KMeansNeighbours(n_clusters=400, T=1, seed=0).fit(latents)       # latents (n, d)
        near, far = nb.training_neighbours()        # every training sample, itself excluded
        near, far = nb.query(other_codes)           # arbitrary codes

    Args:
      n_clusters: K (NRE uses 400 on ImageNet). Must be >= 2 and <= the number of latents.
      T: near / far samples per query (NRE Section 4.5 uses T = 1).
      seed: seeds the subsample, k-means and the far draws (``query`` calls advance one generator, so a fresh
        object with the same seed replays the same sequence).
      far_clusters: number of least similar clusters the far samples are drawn from (default 1).
      max_iter, tol: Lloyd iterations; stop when fewer than ``tol`` of the codes change cluster.
      fit_sample: fit the centres on at most this many vectors (seeded subsample); None = all.

    Fitted attributes: ``centres_`` (K, d) unit vectors, ``labels_`` (n,) cluster of every latent, ``sizes_``
    (K,), ``n_iter_``.
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
        self.n_clusters, self.T, self.seed = int(n_clusters), int(T), int(seed)
        self.far_clusters, self.max_iter, self.tol = int(far_clusters), int(max_iter), float(tol)
        self.fit_sample = None if fit_sample is None else int(fit_sample)
        self._rng = np.random.default_rng(self.seed)
        self.centres_ = None

    # ------------------------------------------------------------------------------------------------ k-means
    @staticmethod
    def _assign(x: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Most similar centre of every row, in blocks: (labels int64, similarity float32)."""
        labels, best = np.empty(len(x), np.int64), np.empty(len(x), np.float32)
        step = max(1, _BLOCK // len(centres))
        for lo in range(0, len(x), step):
            s = x[lo:lo + step] @ centres.T
            labels[lo:lo + step] = np.argmax(s, axis=1)
            best[lo:lo + step] = s[np.arange(len(s)), labels[lo:lo + step]]
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
        """New centres = normalised member means; an empty cluster takes the worst-fitting code; a cluster of
        zero vectors keeps its old centre."""
        import scipy.sparse

        onehot = scipy.sparse.csr_matrix((np.ones(len(x), np.float32), (labels, np.arange(len(x)))),
                                         shape=(self.n_clusters, len(x)))
        sums = np.asarray(onehot @ x, dtype=np.float32)
        empty = np.flatnonzero(np.bincount(labels, minlength=self.n_clusters) == 0)
        sums[empty] = x[np.argsort(best, kind="stable")[:empty.size]]
        new = l2_normalise(sums)
        zero = ~new.any(axis=1)
        new[zero] = centres[zero]
        return new

    def fit(self, latents, init_centres=None) -> "KMeansNeighbours":
        """Cluster ``latents`` (n, d) and remember them (as float32 unit vectors) for later lookups.

        ``init_centres`` (K, d) warm-starts the centres, e.g. from the previous fit's ``centres_``.
        """
        x = l2_normalise(_as_matrix(latents, "latents"))
        n, d = x.shape
        if self.n_clusters > n:
            raise ConfigError(f"n_clusters ({self.n_clusters}) exceeds the number of latents ({n})")
        if n < 2 * self.T + 1:
            raise ConfigError(f"{n} latents are too few for T = {self.T} near and T far samples besides the "
                              f"query; need at least {2 * self.T + 1}")
        rng = np.random.default_rng([self.seed, 1])
        sub = x[np.sort(rng.choice(n, self.fit_sample, replace=False))] if self.fit_sample and n > self.fit_sample \
            else x
        if init_centres is not None:
            centres = l2_normalise(init_centres)
            if centres.shape != (self.n_clusters, d):
                raise ConfigError(f"init_centres must have shape {(self.n_clusters, d)}, got {centres.shape}")
        else:
            centres = self._kmeans_pp(sub, rng)
        prev, self.n_iter_ = None, 0
        for it in range(self.max_iter):
            labels, best = self._assign(sub, centres)
            changed = 1.0 if prev is None else float(np.mean(labels != prev))
            centres, prev, self.n_iter_ = self._update(sub, labels, best, centres), labels, it + 1
            if changed < self.tol:
                break
        self.centres_, self._x = centres, x
        self.labels_, _ = self._assign(x, centres)
        self.sizes_ = np.bincount(self.labels_, minlength=self.n_clusters)
        order = np.argsort(self.labels_, kind="stable")  # members of each cluster, in increasing index order
        self._members = np.split(order, np.cumsum(self.sizes_)[:-1])
        csim = centres @ centres.T
        np.fill_diagonal(csim, np.inf)  # the cluster itself first, then by decreasing centre similarity
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
        return np.sort(np.concatenate(parts)), used

    def _far_pool(self, c: int, exclude_clusters: list[int], need: int) -> np.ndarray | None:
        """Members of the least similar clusters (never ``exclude_clusters``); None when they hold < ``need``."""
        parts, n_cl, count = [], 0, 0
        for j in self._by_similarity[c][::-1]:
            if self.sizes_[j] == 0 or int(j) in exclude_clusters:
                continue
            parts.append(self._members[j])
            n_cl += 1
            count += self.sizes_[j]
            if n_cl >= self.far_clusters and count >= need:
                break
        return np.concatenate(parts) if count >= need else None

    def _draw_far(self, pool: np.ndarray, n: int, excl: np.ndarray | None) -> np.ndarray:
        """``n`` rows of T distinct pool members each (uniform, seeded), never the row's excluded index."""
        rng, t = self._rng, self.T
        out = pool[rng.integers(len(pool), size=(n, t))]
        srt = np.sort(out, axis=1)
        bad = np.any(srt[:, 1:] == srt[:, :-1], axis=1)
        if excl is not None:
            bad |= np.any(out == excl[:, None], axis=1)
        for r in np.flatnonzero(bad):  # rare: redraw without replacement
            p = pool if excl is None else pool[pool != excl[r]]
            out[r] = rng.choice(p, size=t, replace=False)
        return out

    def _lookup(self, q: np.ndarray, qlab: np.ndarray, ex: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        nq, t = q.shape[0], self.T
        near = np.empty((nq, t), np.int64)
        far = np.empty((nq, t), np.int64)
        order = np.argsort(qlab, kind="stable")
        for grp in np.split(order, np.flatnonzero(np.diff(qlab[order])) + 1):
            c = int(qlab[grp[0]])
            gex = None if ex is None else ex[grp]
            need = t + (1 if gex is not None and np.any(gex >= 0) else 0)
            cand, used = self._near_candidates(c, need)
            if len(cand) < need:
                raise ConfigError(f"only {len(cand)} latents to choose {t} near samples from; lower T")
            # Exact top-T by cosine within the candidates (float32 products in blocks), the query's index excluded.
            xc = np.ascontiguousarray(self._x[cand].T)
            step = max(1, _BLOCK // len(cand))
            for lo in range(0, len(grp), step):
                rows = grp[lo:lo + step]
                s = q[rows] @ xc
                if gex is not None:
                    e = gex[lo:lo + step]
                    pos = np.minimum(np.searchsorted(cand, e), len(cand) - 1)
                    hit = (e >= 0) & (cand[pos] == e)
                    s[np.flatnonzero(hit), pos[hit]] = -np.inf
                near[rows] = cand[_top_t(s, t, largest=True)]
            pool = self._far_pool(c, used, t + (1 if gex is not None else 0))
            if pool is not None:
                far[grp] = self._draw_far(pool, len(grp), gex)
            else:  # too few samples outside the near clusters: any sample but the query and its near ones
                n = self._x.shape[0]
                for i, r in enumerate(grp):
                    banned = near[r] if gex is None else np.append(near[r], gex[i])
                    far[r] = self._rng.choice(np.setdiff1d(np.arange(n), banned), size=t, replace=False)
        return near, far

    def query(self, queries, exclude=None) -> tuple[np.ndarray, np.ndarray]:
        """Near and far samples (indices into the fitted latents) for arbitrary codes ``queries`` (q, d).

        ``exclude``: optional (q,) training index per query never to return (-1 = none). Returns
        ``(near_idx, far_idx)``, int64 (q, T); near sorted by decreasing similarity.
        """
        self._check_fitted()
        q = l2_normalise(_as_matrix(queries, "queries"))
        if q.shape[1] != self._x.shape[1]:
            raise DataError(f"queries have dimension {q.shape[1]} but the fitted latents {self._x.shape[1]}")
        ex = _check_exclude(exclude, q.shape[0], self._x.shape[0])
        return self._lookup(q, self._assign(q, self.centres_)[0], ex)

    def training_neighbours(self, indices=None) -> tuple[np.ndarray, np.ndarray]:
        """Near and far samples of fitted latents themselves (all, or ``indices``), each excluding itself."""
        self._check_fitted()
        n = self._x.shape[0]
        idx = np.arange(n, dtype=np.int64) if indices is None else np.asarray(indices, np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise ConfigError(f"indices must be in [0, {n})")
        return self._lookup(self._x[idx], self.labels_[idx], idx)
