"""Hessian-vector products against gradients (issue 17's speed targets), paired in one process.

    PYTHONPATH=. python benchmarks/hvp_ratio.py [--repeat 7] [--trees OLD NEW ...]

For each revad tree (a directory holding the ``revad`` package; default: this checkout) it
runs itself in a subprocess with that tree first on the path and prints the medians of
HVP time / gradient time for the scalar-loop Rosenbrock (n = 10^4, a Python loop over the
elements of an ndarray argument) and the vectorised one (n = 10^6, NumPy slicing on the
Array), and revad.hessian of a dense n = 100 function against 100 calls of revad.hvp. The
gradient and the HVP are timed alternately, each sample one call, so that both see the same
machine; each ratio is the median of the per-round ratios.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def rosen_loop(x):
    total = 0.0
    for i in range(len(x) - 1):
        total = total + 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
    return total


def rosen_vec(x):
    import numpy as np
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def _paired(a, b, repeat):
    """Median seconds of a() and b(), and the median of the per-round ratios b/a."""
    a(), b()  # warm up
    ta, tb, ratios = [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        a()
        t1 = time.perf_counter()
        b()
        t2 = time.perf_counter()
        ta.append(t1 - t0)
        tb.append(t2 - t1)
        ratios.append((t2 - t1) / (t1 - t0))
    return statistics.median(ta), statistics.median(tb), statistics.median(ratios)


def run_here(repeat):
    import numpy as np

    import revad

    rng = np.random.default_rng(0)
    out = {}
    for name, f, n in [("scalar loop, n = 10^4", rosen_loop, 10 ** 4),
                       ("vectorised, n = 10^6", rosen_vec, 10 ** 6)]:
        x = rng.uniform(-1.0, 1.5, n)
        v = rng.normal(size=n)
        g, h = revad.grad(f), revad.hvp(f)
        out[name] = _paired(lambda: g(x), lambda: h(x, v), repeat)

    n = 100
    A = rng.normal(size=(n, n)) / n
    A = A @ A.T

    def dense(x):  # a dense quadratic plus a log-sum-exp
        return 0.5 * (x @ A @ x) + revad.logsumexp(x)

    x = rng.normal(size=n)
    H, hv = revad.hessian(dense), revad.hvp(dense)
    eye = np.eye(n)
    out["hessian n = 100 / 100 HVPs"] = _paired(lambda: [hv(x, e) for e in eye], lambda: H(x),
                                                max(3, repeat // 2))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--trees", nargs="*", default=[os.getcwd()])
    ap.add_argument("--child", action="store_true")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_here(args.repeat)))
        return
    for tree in args.trees:
        env = dict(os.environ, PYTHONPATH=os.path.abspath(tree), PYTHONDONTWRITEBYTECODE="1")
        r = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", "--repeat",
                            str(args.repeat)], env=env, capture_output=True, text=True,
                           check=True)
        print(f"revad from {tree}:")
        for name, (ta, tb, ratio) in json.loads(r.stdout).items():
            first, second = ("100 HVPs", "hessian") if "hessian" in name else ("grad", "hvp")
            print(f"  {name:28s} {first} {ta * 1e3:9.1f} ms   {second} {tb * 1e3:9.1f} ms   "
                  f"ratio {ratio:6.2f}")


if __name__ == "__main__":
    main()
