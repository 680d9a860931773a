"""Time the NRE neighbour lookup (nre_tf.neighbours.KMeansNeighbours) on synthetic ReLU codes.

For each size it prints: k-means fit time (and iterations), the time to find T near + T far samples for EVERY
training vector (``training_neighbours``, what NRE needs once per refresh), and, on a random subset of queries,
the exact brute-force lookup (NRE Eq. 2-3) for comparison: its time per query extrapolated to all vectors, and
the near recall of the k-means lookup (fraction of the exact top-T that it finds).

    .venv/bin/python benchmarks/bench_neighbours.py                      # 60 000 and 1 000 000 vectors, dim 64
    .venv/bin/python benchmarks/bench_neighbours.py --dim 128 --sizes 60000

The data: ``--modes`` Gaussian modes with non-negative random centres in ``dim`` dimensions, unit-variance
noise, then a ReLU (NRE's codes pass through a ReLU), float32.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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
    args = ap.parse_args(argv)

    print(f"python {platform.python_version()}, numpy {np.__version__}, cpus {os.cpu_count()}, "
          f"dim {args.dim}, K {args.clusters}, T {args.T}, fit_sample {args.fit_sample or 'all'}", flush=True)
    for n in (int(s) for s in args.sizes.split(",")):
        t0 = time.perf_counter()
        x = synthetic_codes(n, args.dim, args.modes, args.seed)
        t_gen = time.perf_counter() - t0

        nb = KMeansNeighbours(n_clusters=args.clusters, T=args.T, seed=args.seed,
                              fit_sample=args.fit_sample or None)
        t0 = time.perf_counter()
        nb.fit(x)
        t_fit = time.perf_counter() - t0

        t0 = time.perf_counter()
        near, far = nb.training_neighbours()
        t_query = time.perf_counter() - t0

        q = np.random.default_rng(args.seed + 1).choice(n, min(args.brute_queries, n), replace=False)
        t0 = time.perf_counter()
        near_b, _ = brute_force_neighbours(x, x[q], args.T, exclude=q)
        t_brute = time.perf_counter() - t0
        recall = np.mean([len(np.intersect1d(a, b)) / args.T for a, b in zip(near[q], near_b)])
        sizes = nb.sizes_
        print(f"n={n:>9,d}  data {t_gen:6.1f}s  fit {t_fit:6.1f}s ({nb.n_iter_} iters; cluster sizes "
              f"min {sizes.min()} median {int(np.median(sizes))} max {sizes.max()})  "
              f"near+far for all {n:,d}: {t_query:6.1f}s  | brute force {len(q)} queries {t_brute:5.1f}s "
              f"(~{t_brute / len(q) * n / 60:.1f} min for all)  near recall vs exact {recall:.3f}", flush=True)
        del x, near, far, nb


if __name__ == "__main__":
    main()
