"""Time one NRE neighbour refresh (N(X') and F(X') of Eq. 2-3 for every training sample) at 60k and 1M latents.

A refresh = encode every X' with A (model-dependent, timed separately with the 28x28 conv encoder) + the
k-means lookup of ``nre_tf/neighbours.py`` (the bank's clustering is fitted once per NRE run, also timed).
Latents are synthetic: non-negative (ReLU) 128-d codes drawn around 10 random class directions, the shape of
R_A for MNIST; the timing does not depend on their values beyond the cluster sizes.

    .venv/bin/python benchmarks/bench_nre_neighbours.py [--sizes=60000,1000000] [--dim=128] [--T=1] \
        [--exact_max=60000] [--encode_images=2048] [--rounds=1] [--warmup=0] [--peak_probe=full|small|off] \
        [--out=results.json]

Each part is timed with :mod:`benchmarks.timing` (``--warmup`` untimed calls, then ``--rounds`` single-call
rounds; the encoder: one warm-up pass at least). Prints the machine (CPU model, bf16 flags), the load average
(with a warning when it is above 0.5 per core) and the float32 / bf16 peak probe; then per size one line per
part: the k-means fit (K = ``nre_tf.config.auto_clusters(n)``; its iterations), the refresh lookup
(``query`` of n codes, the query's own index excluded) and, up to ``--exact_max`` latents, the exact search; then
the encoder's images per second and, per size, the refresh's estimated encode seconds (n / images per second).
Each line gives median seconds (wall and CPU) and GFLOP/s of the float32 matrix products with their fraction of
the float32 peak (:mod:`benchmarks.flops`; the lookup's within-cluster products are estimated with the queries
spread over the clusters as the bank is); a table of all rows and the path of the JSON results follow.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import flops, timing  # noqa: E402
from nre_tf.config import auto_clusters  # noqa: E402
from nre_tf.neighbours import KMeansNeighbours, brute_force_neighbours  # noqa: E402

def synthetic_latents(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 1, size=(10, d)).astype(np.float32)
    lab = rng.integers(0, 10, size=n)
    out = np.empty((n, d), np.float32)
    for lo in range(0, n, 100_000):
        hi = min(n, lo + 100_000)
        out[lo:hi] = np.maximum(centres[lab[lo:hi]] + 0.5 * rng.standard_normal((hi - lo, d), np.float32), 0)
    return out


def encode_throughput(report: timing.Report, n: int, rounds: int, warmup: int, batch: int = 256) -> float:
    """Images per second of R_A(D(E_phi(X))) for the 28x28 conv networks (batch 256, CPU here)."""
    from nre_tf import networks

    enc, dec = networks.build_autoencoder("conv", (28, 28, 1))
    x = np.random.default_rng(0).uniform(size=(n, 28, 28, 1)).astype(np.float32)
    f = lambda b: enc(dec(enc(b, training=False), training=False), training=False)  # noqa: E731
    macs_batch = flops.count_macs(enc, lambda: f(x[:batch]))["macs"] + \
        flops.count_macs(dec, lambda: f(x[:batch]))["macs"]

    def encode_all():
        for i in range(0, n, batch):
            np.asarray(f(x[i:i + batch]))

    m = timing.time_call(encode_all, rounds=rounds, warmup=max(1, warmup))
    row = report.add(f"encode R_A(D(E(X))) {n} images", m, items=n, unit="img",
                     flops=flops.forward_flops(macs_batch * n / batch), flops_note="conv/dense MACs, inference")
    return row["items_per_second"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="60000,1000000")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--T", type=int, default=1)
    p.add_argument("--exact_max", type=int, default=60000, help="also time the exact search up to this size")
    p.add_argument("--encode_images", type=int, default=2048, help="images for the encoder's throughput")
    timing.add_flags(p, rounds=1, warmup=0)
    a = p.parse_args()
    report = timing.Report("bench_nre_neighbours", a)
    once = {"rounds": a.rounds, "warmup": a.warmup}
    res = report.data.setdefault("sizes", {})
    report.data.update(dim=a.dim, T=a.T)
    print(f"dim {a.dim}, T {a.T}", flush=True)
    for n in (int(s) for s in a.sizes.split(",")):
        bank = synthetic_latents(n, a.dim, 0)
        queries = synthetic_latents(n, a.dim, 1)  # stands for R_A(X') of the n training samples
        k = auto_clusters(n)
        km = KMeansNeighbours(n_clusters=k, T=a.T, seed=0)
        m = timing.time_call(lambda: km.fit(bank), **once)
        fit = report.add(f"n={n:,d} k-means fit (K={k})", m, items=n, unit="vec", n=n, iterations=km.n_iter_,
                         flops=flops.kmeans_fit_flops(n, a.dim, k, km.fit_sample, km.n_iter_))
        m = timing.time_call(lambda: km.query(queries, exclude=np.arange(n)), **once)
        lookup = report.add(f"n={n:,d} refresh lookup", m, items=n, unit="vec", n=n,
                            flops=flops.cluster_lookup_flops(km.sizes_, a.dim, n_queries_assigned=n),
                            flops_note="assignment + within-cluster products (queries spread as the bank)")
        row = {"clusters": k, "kmeans_fit_seconds": fit["seconds_per_call"]["wall"],
               "kmeans_iterations": km.n_iter_, "refresh_lookup_seconds": lookup["seconds_per_call"]["wall"]}
        if n <= a.exact_max:
            m = timing.time_call(lambda: brute_force_neighbours(bank, queries, a.T, exclude=np.arange(n)), **once)
            exact = report.add(f"n={n:,d} exact lookup", m, items=n, unit="vec", n=n,
                               flops=flops.brute_force_flops(n, n, a.dim))
            row["exact_lookup_seconds"] = exact["seconds_per_call"]["wall"]
        res[str(n)] = row
        bank = queries = km = m = None  # free the memory before the next size
    ips = encode_throughput(report, a.encode_images, a.rounds, a.warmup)
    report.data["encode_images_per_second_conv28"] = ips
    for n, row in res.items():
        row["refresh_encode_seconds_estimate"] = int(n) / ips
        print(f"n={int(n):,d}: refresh = encode ~{row['refresh_encode_seconds_estimate']:.2f} s (estimate) + lookup "
              f"{row['refresh_lookup_seconds']:.2f} s", flush=True)
    report.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
