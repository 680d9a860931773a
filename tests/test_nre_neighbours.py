"""Neighbour lookup for NRE: cosine S / D by hand, brute force, k-means agreement on separated clusters."""
import numpy as np
import pytest

from nre_tf import neighbours as N
from common.errors import ConfigError, ReproError


def test_cosine_similarity_and_distance_by_hand():
    assert N.cosine_similarity([3.0, 4.0], [4.0, 3.0]) == pytest.approx(24 / 25)
    assert N.cosine_distance([3.0, 4.0], [4.0, 3.0]) == pytest.approx(1 / 25)
    assert N.cosine_similarity([1.0, 0.0], [1.0, 1.0]) == pytest.approx(1 / np.sqrt(2))
    assert N.cosine_distance([1.0, 0.0], [0.0, 2.0]) == pytest.approx(1.0)  # orthogonal ReLU codes: S = 0
    # Row-wise pairs, scale invariance, zero vector -> S = 0.
    s = N.cosine_similarity([[1, 0], [2, 2], [0, 0]], [[5, 0], [1, 1], [1, 1]])
    np.testing.assert_allclose(s, [1.0, 1.0, 0.0])
    m = N.cosine_similarity_matrix([[1, 0], [0, 1]], [[1, 1], [1, 0], [0, 3]])
    np.testing.assert_allclose(m, [[1 / np.sqrt(2), 1, 0], [1 / np.sqrt(2), 0, 1]], rtol=1e-6)
    with pytest.raises(ReproError):
        N.cosine_similarity([1, 2], [1, 2, 3])


def test_brute_force_tiny_by_hand():
    lat = np.array([[1, 0], [0.9, 0.1], [0.5, 0.5], [0, 1]], float)
    near, far = N.brute_force_neighbours(lat, np.array([[1.0, 0.0]]), T=2)
    np.testing.assert_array_equal(near, [[0, 1]])
    np.testing.assert_array_equal(far, [[3, 2]])
    # Excluding the query itself (index 0) moves the next one in.
    near, far = N.brute_force_neighbours(lat, lat[:1], T=2, exclude=[0])
    np.testing.assert_array_equal(near, [[1, 2]])
    np.testing.assert_array_equal(far, [[3, 2]])


def _separated(n_clusters=8, per=60, dim=32, noise=0.02, seed=0, sizes=None):
    """ReLU'd (non-negative) codes around well separated random directions, as NRE's encoder would give."""
    rng = np.random.default_rng(seed)
    cent = np.maximum(rng.normal(size=(n_clusters, dim)), 0)
    cent /= np.linalg.norm(cent, axis=1, keepdims=True)
    sizes = [per] * n_clusters if sizes is None else sizes
    truth = np.repeat(np.arange(n_clusters), sizes)
    x = cent[truth] * rng.uniform(1.0, 2.0, (len(truth), 1)) + noise * rng.normal(size=(len(truth), dim))
    return np.maximum(x, 0).astype(np.float32), truth, cent


def test_kmeans_agrees_with_brute_force_on_separated_clusters():
    x, truth, cent = _separated()
    nb = N.KMeansNeighbours(n_clusters=8, T=5, seed=0).fit(x)
    # k-means recovered the true clusters (a bijection between labels and true clusters).
    pairs = set(zip(nb.labels_.tolist(), truth.tolist()))
    assert len(pairs) == 8 and len({p[0] for p in pairs}) == 8

    near_k, far_k = nb.training_neighbours()
    near_b, far_b = N.brute_force_neighbours(x, x, T=5, exclude=np.arange(len(x)))
    # Near sets identical. Float32 similarities can tie exactly, so: identical index sets on every row whose
    # T-th and (T+1)-th best similarities are apart, and identical similarity values on all rows.
    xn = x / np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    sim = xn @ xn.T
    np.fill_diagonal(sim, -np.inf)
    ranked = -np.sort(-sim, axis=1)
    clear = ranked[:, 4] - ranked[:, 5] > 2e-6
    assert clear.mean() > 0.8
    np.testing.assert_array_equal(np.sort(near_k[clear], axis=1), np.sort(near_b[clear], axis=1))
    rows = np.arange(len(x))[:, None]
    np.testing.assert_allclose(np.sort(sim[rows, near_k], axis=1), np.sort(sim[rows, near_b], axis=1), atol=1e-5)
    assert not np.any(near_k == np.arange(len(x))[:, None])
    # Far samples lie outside the query's cluster; T distinct per query, disjoint from the near set.
    assert np.all(truth[far_k] != truth[:, None]) and np.all(truth[far_b] != truth[:, None])
    srt = np.sort(far_k, axis=1)
    assert np.all(srt[:, 1:] != srt[:, :-1])
    assert not np.any([np.intersect1d(a, b).size for a, b in zip(near_k, far_k)])


def _ring(per=40, noise=0.005, seed=0):
    """8 clusters of non-negative codes whose centres lie on a ring: centre j is a Gaussian bump around
    coordinate j (sigma 1), so S(centre j, centre k) falls with the ring distance (0.78, 0.37, 0.11, 0.036):
    the least similar cluster of j is j + 4, by a margin (0.07) well above the noise."""
    i = np.arange(8)
    cent = np.array([np.exp(-np.minimum((i - j) % 8, (j - i) % 8) ** 2 / 2.0) for j in range(8)])
    cent /= np.linalg.norm(cent, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    truth = np.repeat(i, per)
    x = cent[truth] * rng.uniform(1.0, 2.0, (len(truth), 1)) + noise * rng.normal(size=(len(truth), 8))
    return np.maximum(x, 0).astype(np.float32), truth


def test_far_samples_come_from_the_farthest_cluster():
    x, truth = _ring()
    nb = N.KMeansNeighbours(n_clusters=8, T=3, seed=0, far_clusters=1).fit(x)
    assert len(set(zip(nb.labels_.tolist(), truth.tolist()))) == 8
    _, far_k = nb.training_neighbours()
    _, far_b = N.brute_force_neighbours(x, x, T=3, exclude=np.arange(len(x)))
    opposite = (truth + 4) % 8
    # Exact Eq. 3 (brute force) and the k-means draw agree on where the far samples are: the opposite cluster.
    assert np.all(truth[far_b] == opposite[:, None])
    assert np.all(truth[far_k] == opposite[:, None])
    # With 3 far clusters the draws come from clusters j+3, j+4, j+5 (the three least similar), and vary.
    nb3 = N.KMeansNeighbours(n_clusters=8, T=3, seed=0, far_clusters=3).fit(x)
    _, far3 = nb3.training_neighbours()
    ring_dist = np.minimum((truth[far3] - truth[:, None]) % 8, (truth[:, None] - truth[far3]) % 8)
    assert np.all(ring_dist >= 3) and np.any(ring_dist == 3)


def test_query_new_points_and_exclusion():
    x, truth, _ = _separated(seed=1)
    nb = N.KMeansNeighbours(n_clusters=8, T=3, seed=1).fit(x)
    near, far = nb.query(x[:20])
    # Without exclusion a training point is its own nearest neighbour.
    np.testing.assert_array_equal(near[:, 0], np.arange(20))
    near_e, _ = nb.query(x[:20], exclude=np.arange(20))
    assert not np.any(near_e == np.arange(20)[:, None])
    near_b, _ = N.brute_force_neighbours(x, x[:20], T=3, exclude=np.arange(20))
    np.testing.assert_array_equal(np.sort(near_e, axis=1), np.sort(near_b, axis=1))
    # Fresh points near cluster members.
    q = x[:5] + 0.001
    near_q, _ = nb.query(q)
    assert np.all(truth[near_q] == truth[:5, None])


def test_small_cluster_falls_back_to_neighbouring_clusters():
    # Cluster 3 has only 2 members but T = 4: its near sets are completed from the most similar clusters.
    x, truth, _ = _separated(n_clusters=4, sizes=[50, 50, 50, 2], seed=2)
    nb = N.KMeansNeighbours(n_clusters=4, T=4, seed=0, far_clusters=1).fit(x)
    small = np.flatnonzero(truth == 3)
    near, far = nb.training_neighbours(small)
    assert near.shape == (2, 4) and far.shape == (2, 4)
    assert not np.any(near == small[:, None])
    assert all(len(set(r)) == 4 for r in near)
    # The other member of the small cluster is the most similar.
    np.testing.assert_array_equal(near[:, 0], small[::-1])
    assert not np.any([np.intersect1d(a, b).size for a, b in zip(near, far)])


def test_codes_all_alike_still_give_disjoint_near_and_far():
    # Identical (here: all-zero ReLU) codes leave k-means clusters empty; the far samples then come from every
    # sample other than the query and its near samples (without that fallback: "not enough samples" error).
    x = np.zeros((8, 16), np.float32)
    near, far = N.KMeansNeighbours(n_clusters=2, T=2, seed=0).fit(x).training_neighbours()
    assert near.shape == far.shape == (8, 2)
    for i in range(8):
        assert i not in near[i] and i not in far[i] and not set(near[i]) & set(far[i])
        assert len(set(far[i])) == 2


def test_determinism_with_seed():
    x, _, _ = _separated(seed=3)
    a = N.KMeansNeighbours(8, T=2, seed=7).fit(x).training_neighbours()
    b = N.KMeansNeighbours(8, T=2, seed=7).fit(x).training_neighbours()
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_subsampled_fit_and_warm_start():
    x, truth, _ = _separated(n_clusters=6, per=400, seed=4)
    nb = N.KMeansNeighbours(6, T=2, seed=0, fit_sample=600).fit(x)
    assert len({p for p in zip(nb.labels_.tolist(), truth.tolist())}) == 6
    nb2 = N.KMeansNeighbours(6, T=2, seed=0).fit(x, init_centres=nb.centres_)
    np.testing.assert_array_equal(nb2.labels_, nb.labels_)


def test_errors():
    x, _, _ = _separated()
    with pytest.raises(ConfigError):
        N.KMeansNeighbours(n_clusters=1)
    with pytest.raises(ConfigError):
        N.KMeansNeighbours(n_clusters=4, far_clusters=4)
    with pytest.raises(ConfigError):
        N.KMeansNeighbours(n_clusters=4).query(x)
    with pytest.raises(ReproError):
        N.KMeansNeighbours(n_clusters=1000).fit(x)
    with pytest.raises(ReproError, match="NaN"):
        N.brute_force_neighbours(np.full((3, 2), np.nan), x[:1, :2], T=1)
