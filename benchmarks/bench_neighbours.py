"""Time the NRE neighbour lookup (nre_tf.neighbours.KMeansNeighbours) on synthetic ReLU codes.

    .venv/bin/python benchmarks/bench_neighbours.py                      # 60 000 and 1 000 000 vectors, dim 64
    .venv/bin/python benchmarks/bench_neighbours.py --dim 128 --sizes 60000 [--rounds=1] [--warmup=0] \
        [--peak_probe=full|small|off] [--out=results.json]

For each size it times (:mod:`benchmarks.timing`, ``--warmup`` untimed calls then ``--rounds`` rounds, each a
single call): making the data, the k-means fit (and its iterations), the time to find T near + T far samples for
EVERY training vector (``training_neighbours``, what NRE needs once per refresh), and, on a random subset of
queries, the exact brute-force lookup (NRE Eq. 2-3) for comparison.

Prints the machine (CPU model, bf16 flags), the load average (with a warning when it is above 0.5 per core)
and the float32 peak probe (TensorFlow matmul / conv2d: the ceiling the NumPy matrix products here are compared
with); then per size one line per timed part (median seconds wall and CPU, GFLOP/s of its float32 matrix
products and their fraction of the float32 peak: :mod:`benchmarks.flops`) and a summary line: cluster sizes,
the brute force's time per query extrapolated to all vectors, and the near recall of the k-means lookup
(fraction of the exact top-T that it finds); a table of all rows and the path of the JSON results.

The data: ``--modes`` Gaussian modes with non-negative random centres in ``dim`` dimensions, unit-variance
noise, then a ReLU (NRE's codes pass through a ReLU), float32.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import flops, timing  # noqa: E402
from nre_tf.neighbours import KMeansNeighbours, brute_force_neighbours  # noqa: E402


def synthetic_codes(n: int, dim: int, modes: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = (np.maximum(rng.normal(size=(modes, dim)), 0) * 3.0).astype(np.float32)
    out = np.empty((n, dim), np.float32)
    step = 1 << 18
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        lab = rng.integers(modes, size=hi - lo)
        out[lo:hi] = np.maximum(centres[lab] + rng.standard_normal((hi - lo, dim), dtype=np.float32), 0)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="60000,1000000", help="comma-separated numbers of vectors")
    ap.add_argument("--dim", type=int, default=64, help="latent dimension")
    ap.add_argument("--clusters", type=int, default=400, help="K (NRE uses 400 on ImageNet)")
    ap.add_argument("--T", type=int, default=5, help="near / far samples per query")
    ap.add_argument("--modes", type=int, default=1000, help="Gaussian modes of the synthetic data")
    ap.add_argument("--brute_queries", type=int, default=1000, help="queries for the brute-force comparison")
    ap.add_argument("--fit_sample", type=int, default=200_000, help="k-means fit subsample (0 = all vectors)")
    ap.add_argument("--seed", type=int, default=0)
    timing.add_flags(ap, rounds=1, warmup=0)
    args = ap.parse_args(argv)
    report = timing.Report("bench_neighbours", args)
    once = {"rounds": args.rounds, "warmup": args.warmup}

    print(f"dim {args.dim}, K {args.clusters}, T {args.T}, fit_sample {args.fit_sample or 'all'}", flush=True)
    for n in (int(s) for s in args.sizes.split(",")):
        m = timing.time_call(lambda: synthetic_codes(n, args.dim, args.modes, args.seed), **once)
        x = m.output
        report.add(f"n={n:,d} data", m, precision=None, items=n, unit="vec", n=n)

        nb = KMeansNeighbours(n_clusters=args.clusters, T=args.T, seed=args.seed,
                              fit_sample=args.fit_sample or None)
        m = timing.time_call(lambda: nb.fit(x), **once)
        report.add(f"n={n:,d} k-means fit", m, items=n, unit="vec", n=n, iterations=nb.n_iter_,
                   flops=flops.kmeans_fit_flops(n, args.dim, args.clusters, args.fit_sample or None, nb.n_iter_),
                   flops_note="float32 matrix products (seeding, Lloyd, final assignment)")

        m = timing.time_call(nb.training_neighbours, **once)
        near = m.output[0]
        report.add(f"n={n:,d} near+far for all", m, items=n, unit="vec", n=n,
                   flops=flops.cluster_lookup_flops(nb.sizes_, args.dim),
                   flops_note="within-cluster products (each vector against its cluster)")

        q = np.random.default_rng(args.seed + 1).choice(n, min(args.brute_queries, n), replace=False)
        m = timing.time_call(lambda: brute_force_neighbours(x, x[q], args.T, exclude=q), **once)
        near_b, _ = m.output
        t_brute = m.median("wall")
        recall = np.mean([len(np.intersect1d(a, b)) / args.T for a, b in zip(near[q], near_b)])
        report.add(f"n={n:,d} brute force {len(q)} queries", m, items=len(q), unit="query", n=n,
                   flops=flops.brute_force_flops(n, len(q), args.dim), flops_note="two all-pairs cosine products")
        sizes = nb.sizes_
        summary = {"n": n, "iterations": nb.n_iter_, "cluster_sizes": {"min": int(sizes.min()),
                   "median": int(np.median(sizes)), "max": int(sizes.max())},
                   "brute_force_minutes_for_all": t_brute / len(q) * n / 60, "near_recall_vs_exact": float(recall)}
        report.data.setdefault("sizes", {})[str(n)] = summary
        print(f"n={n:>9,d}: {nb.n_iter_} k-means iterations; cluster sizes min {sizes.min()} median "
              f"{int(np.median(sizes))} max {sizes.max()}; brute force ~{summary['brute_force_minutes_for_all']:.1f} "
              f"min for all {n:,d}; near recall vs exact {recall:.3f}", flush=True)
        x = near = near_b = nb = m = None  # free the memory before the next size
    report.finish()


if __name__ == "__main__":
    main()
