"""revad.trace's replay, measured (issue 18): medians, ratios taken in one run.

    PYTHONPATH=. python -m benchmarks.replay [--quick]

- scalar-loop Rosenbrock (n = 10^4): replayed value_and_grad / plain-float evaluation of f, eager
  value_and_grad / the same, and ns per entry of the forward replay and of the reverse sweep;
- the seed's neuron: a replayed value_and_grad call, and eager's;
- batch of 10^3 points (Rosenbrock n = 10^3 on an ndarray): 2 threads against 1;
- bytes per entry of a trace (its tape and a replay's buffers).
"""
import statistics
import sys
import time

import numpy as np

import revad

from .workloads import rosenbrock, seed_sigmoid


def _median(fn, repeat, number=1):
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        ts.append((time.perf_counter() - t0) / number)
    return statistics.median(ts)


def _paired(fa, fb, repeat):
    """Median of the per-pair ratios fb / fa, timed back to back."""
    ratios = []
    for _ in range(repeat):
        a = _median(fa, 1)
        b = _median(fb, 1)
        ratios.append(b / a)
    return statistics.median(ratios)


def run_replay(quick=False):
    import math
    rep = 5 if quick else 21
    n = 1000 if quick else 10_000
    x = [-1.2 if i % 2 == 0 else 1.0 for i in range(n)]
    f = lambda v: rosenbrock(v, revad)  # noqa: E731
    plain = lambda: rosenbrock(x, math)  # noqa: E731
    tr = revad.trace(f, x)
    vg = revad.value_and_grad(f)
    x2 = [v + 0.01 for v in x]
    replay = lambda: tr.value_and_grad(x2)  # noqa: E731
    eager = lambda: vg(x2)  # noqa: E731
    r_replay = _paired(plain, replay, rep)
    r_eager = _paired(plain, eager, rep)
    entries = tr.stats["entries"]
    t_fwd = _median(lambda: tr.value(x2), rep)
    t_vg = _median(replay, rep)
    print(f"== revad.trace (issue 18), medians of {rep}")
    print(f"  rosenbrock n={n}: replayed value_and_grad / plain floats = {r_replay:.3f} "
          f"(eager: {r_eager:.3f}); {entries} entries")
    print(f"    forward replay {1e9 * t_fwd / entries:.2f} ns/entry (value() call), "
          f"forward+reverse {1e9 * t_vg / entries:.2f} ns/entry, so reverse ~"
          f"{1e9 * (t_vg - t_fwd) / entries:.2f} ns/entry (with loading x and reading the "
          f"gradient)")
    # The sweeps alone: the same objective over an ndarray, whose loading and gradient are one
    # copy each (a list's are a Python float per element).
    xa = np.array(x2)
    tra = revad.trace(f, xa)
    ea = tra.stats["entries"]
    t_f = _median(lambda: tra.value(xa), rep)
    t_fb = _median(lambda: tra.value_and_grad(xa), rep)
    print(f"    over an ndarray ({ea} entries): forward replay {1e9 * t_f / ea:.2f} ns/entry, "
          f"reverse sweep {1e9 * (t_fb - t_f) / ea:.2f} ns/entry")
    w = [2.0, -3.0, -3.0, -1.0, -2.0]
    g = lambda v: seed_sigmoid(v, revad)  # noqa: E731
    trn = revad.trace(g, w)
    vgn = revad.value_and_grad(g)
    num = 2000
    t_tr = _median(lambda: trn.value_and_grad(w), rep, num)
    t_eg = _median(lambda: vgn(w), rep, num)
    print(f"  neuron: replayed value_and_grad {1e6 * t_tr:.2f} us, eager {1e6 * t_eg:.2f} us")
    nb = 100 if quick else 1000
    xb = np.array(x[:1000])
    trb = revad.trace(lambda v: rosenbrock(v, revad), xb)
    X = xb + 0.01 * np.random.default_rng(0).normal(size=(nb, xb.size))
    t1 = _median(lambda: trb.batch(X, threads=1), max(3, rep // 4))
    t2 = _median(lambda: trb.batch(X, threads=2), max(3, rep // 4))
    print(f"  batch of {nb} (rosenbrock n=1000, ndarray): 1 thread {1e3 * t1:.1f} ms, "
          f"2 threads {1e3 * t2:.1f} ms: {t1 / t2:.2f}x")
    s = tr.stats
    print(f"  bytes per entry: tape {s['tape_bytes_per_entry']:.1f} + replay buffers "
          f"{s['replay_bytes_per_entry']:.1f} = {s['bytes_per_entry']:.1f}")
    return {"rosenbrock_replay_ratio": r_replay, "rosenbrock_eager_ratio": r_eager,
            "neuron_us": 1e6 * t_tr, "neuron_eager_us": 1e6 * t_eg, "batch_speedup": t1 / t2,
            "bytes_per_entry": s["bytes_per_entry"]}


if __name__ == "__main__":
    run_replay(quick="--quick" in sys.argv)
