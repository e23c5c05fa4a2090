"""The sparse Hessian of the chained Rosenbrock function (issue 17's target: <= 10x one
gradient, <= 3 colours), scalar loop and vectorised, with where its time goes.

Run from the repository root: ``python -m benchmarks.sparse_hessian [--n N] [--repeat R]``.
Each repeat times one ``revad.grad`` call and one sparse Hessian back to back (paired), and
prints the medians, their ratio and the Hessian's steps: recording (f once), pattern (the
tape's nonlinear interactions, in C), colouring (star, in C), HVPs (one tangent and one
second-order sweep per colour, in C) and recovery (in C).
"""
import argparse
import statistics
import time

import numpy as np

import revad
import revad.numpy as rnp
from revad import _sparse


def rosen_loop(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))


def rosen_vec(x):
    return rnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def run(f, x, repeat):
    g = revad.grad(f)
    g(x)
    _sparse.sparse_hessian(f, (x,), 0, "hessian")  # warm
    tg, th, steps = [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        g(x)
        t1 = time.perf_counter()
        stats = {}
        _sparse.sparse_hessian(f, (x,), 0, "hessian", stats)
        t2 = time.perf_counter()
        tg.append(t1 - t0)
        th.append(t2 - t1)
        steps.append(stats)
    med = statistics.median
    ratios = [h / g for g, h in zip(tg, th, strict=True)]
    parts = {k: med(s[k] for s in steps) for k in ("record", "pattern", "colouring", "hvps",
                                                   "recover")}
    return med(tg), med(th), med(ratios), steps[0]["colours"], parts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10 ** 4)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    x = np.random.default_rng(0).normal(size=args.n)
    print(f"chained Rosenbrock, n = {args.n}, median of {args.repeat} paired runs")
    print("form        grad (ms)  sparse H (ms)  ratio  colours  record  pattern  colouring"
          "  HVPs  recover (ms)")
    for name, f in (("scalar loop", rosen_loop), ("vectorised", rosen_vec)):
        tg, th, r, p, parts = run(f, x, args.repeat)
        print(f"{name:11s} {tg * 1e3:9.2f}  {th * 1e3:13.2f}  {r:5.1f}  {p:7d}  "
              + "  ".join(f"{parts[k] * 1e3:.2f}" for k in ("record", "pattern", "colouring",
                                                           "hvps", "recover")))


if __name__ == "__main__":
    main()
