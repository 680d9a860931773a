"""Time one NRE neighbour refresh (N(X') and F(X') of Eq. 2-3 for every training sample) at 60k and 1M latents.

A refresh = encode every X' with A (model-dependent, timed separately with the 28x28 conv encoder) + the
k-means lookup of ``nre_tf/neighbours.py`` (the bank's clustering is fitted once per NRE run, also timed).
Latents are synthetic: non-negative (ReLU) 128-d codes drawn around 10 random class directions, the shape of
R_A for MNIST; the timing does not depend on their values beyond the cluster sizes.

    .venv/bin/python benchmarks/bench_nre_neighbours.py [--sizes=60000,1000000] [--dim=128] [--T=1]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nre_tf.neighbours import KMeansNeighbours, brute_force_neighbours  # noqa: E402
from nre_tf.config import auto_clusters  # noqa: E402


def synthetic_latents(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 1, size=(10, d)).astype(np.float32)
    lab = rng.integers(0, 10, size=n)
    out = np.empty((n, d), np.float32)
    for lo in range(0, n, 100_000):
        hi = min(n, lo + 100_000)
        out[lo:hi] = np.maximum(centres[lab[lo:hi]] + 0.5 * rng.standard_normal((hi - lo, d), np.float32), 0)
    return out


def encode_throughput(n: int = 2048) -> float:
    """Images per second of R_A(D(E_phi(X))) for the 28x28 conv networks (batch 256, CPU here)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from nre_tf import networks

    enc, dec = networks.build_autoencoder("conv", (28, 28, 1))
    x = np.random.default_rng(0).uniform(size=(n, 28, 28, 1)).astype(np.float32)
    f = lambda b: enc(dec(enc(b, training=False), training=False), training=False)  # noqa: E731
    f(x[:256])
    t = time.perf_counter()
    for i in range(0, n, 256):
        np.asarray(f(x[i:i + 256]))
    return n / (time.perf_counter() - t)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="60000,1000000")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--T", type=int, default=1)
    p.add_argument("--exact_max", type=int, default=60000, help="also time the exact search up to this size")
    a = p.parse_args()
    res = {"dim": a.dim, "T": a.T, "cpu_count": os.cpu_count(), "sizes": {}}
    for n in (int(s) for s in a.sizes.split(",")):
        bank = synthetic_latents(n, a.dim, 0)
        queries = synthetic_latents(n, a.dim, 1)  # stands for R_A(X') of the n training samples
        k = auto_clusters(n)
        t = time.perf_counter()
        km = KMeansNeighbours(n_clusters=k, T=a.T, seed=0).fit(bank)
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        km.query(queries, exclude=np.arange(n))
        q_s = time.perf_counter() - t
        row = {"clusters": k, "kmeans_fit_seconds": fit_s, "kmeans_iterations": km.n_iter_,
               "refresh_lookup_seconds": q_s}
        if n <= a.exact_max:
            t = time.perf_counter()
            brute_force_neighbours(bank, queries, a.T, exclude=np.arange(n))
            row["exact_lookup_seconds"] = time.perf_counter() - t
        res["sizes"][str(n)] = row
        print(json.dumps({str(n): row}), flush=True)
        del bank, queries, km
    ips = encode_throughput()
    res["encode_images_per_second_conv28"] = ips
    for n, row in res["sizes"].items():
        row["refresh_encode_seconds_estimate"] = int(n) / ips
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
