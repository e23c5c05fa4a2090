"""Scalar code over NumPy arguments (``--only scalar_args``).

autograd and JAX users pass ndarrays: ``value_and_grad(f)(x)`` then hands ``f`` a
``revad.Array``, and a scalar loop indexes it one element at a time. This section times the same
loops with a list and with an ndarray argument:

* Extended Rosenbrock at n = 10^4 in three spellings (``x[i]``; negative indices ``x[i - n]``;
  ``for a, b in zip(x[:-1], x[1:])``, slices and iteration): value_and_grad over the same loop on
  a list of plain floats, for a list argument and for an ndarray argument, each ratio timed in
  paired rounds; and ndarray over list, paired too.
* The seed's neuron, ``sigmoid(w[0]*x[0] + w[1]*x[1] + w[2])`` with ``argnums=(0, 1)``:
  microseconds per ``value_and_grad`` call with lists and with ndarrays, and the two paired.

The plain-float denominator is always the loop over a list (a loop over an ndarray's NumPy
scalars would itself be slower, and flatter the ratio). Times here are this thread's CPU time
(time.thread_time), not wall-clock: the ratios compare calls of microseconds to milliseconds,
and on a shared machine wall-clock rounds of them swung by 2x (a value_and_grad "faster" than
the plain loop) whenever another process held the core.
"""
import math
import statistics
import time

import numpy as np

from .workloads import _rosenbrock_grad, _rosenbrock_start

SECTIONS = ("scalar_args",)
N, QUICK_N = 10_000, 100
BATCH_S = 0.02  # a call at n = 10^4 lasts milliseconds: a few of them to each timed batch


def rosenbrock_indexed(x, m):
    total = 0.0
    for i in range(len(x) - 1):
        total = total + 100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2
    return total


def rosenbrock_negative(x, m):
    n = len(x)
    total = 0.0
    for i in range(n - 1):
        total = total + 100 * (x[i + 1 - n] - x[i - n] ** 2) ** 2 + (1 - x[i - n]) ** 2
    return total


def rosenbrock_pairs(x, m):
    total = 0.0
    for a, b in zip(x[:-1], x[1:], strict=True):
        total = total + 100 * (b - a ** 2) ** 2 + (1 - a) ** 2
    return total


LOOPS = (("x[i]", rosenbrock_indexed), ("x[i - n]", rosenbrock_negative),
         ("zip(x[:-1], x[1:])", rosenbrock_pairs))


def _per_call(fn, number):
    t0 = time.thread_time()
    for _ in range(number):
        fn()
    return (time.thread_time() - t0) / number


def _number(fn):
    """Calls to a batch of about BATCH_S seconds."""
    fn()
    return max(1, int(BATCH_S / max(_per_call(fn, 1), 1e-7)))


def paired(base, other, repeat):
    """Median over rounds of time(other) / time(base), the two timed back to back (as
    timing.paired_ratio, in thread CPU time)."""
    nb, no = _number(base), _number(other)
    return statistics.median(_per_call(other, no) / _per_call(base, nb) for _ in range(repeat))


def per_call(fn, repeat):
    """Median seconds per call over repeat batches."""
    n = _number(fn)
    return statistics.median(_per_call(fn, n) for _ in range(repeat))


def neuron(w, x, m):
    return m.sigmoid(w[0] * x[0] + w[1] * x[1] + w[2])


def _close(got, ref):
    return bool(np.allclose(got[0], ref[0], rtol=1e-10)
                and np.allclose(np.asarray(got[1], dtype=float), ref[1], rtol=1e-10))


def run(revad, args, record):
    """Print the section's two tables; pass each row to record(**row)."""
    if args.only and "scalar_args" not in args.only:
        return
    repeat = args.repeat or (3 if args.quick else 7)
    n = QUICK_N if args.quick else N
    xl = _rosenbrock_start(n)
    xa = np.array(xl)
    ref = _rosenbrock_grad(xl)
    print(f"\n[scalar_args] value_and_grad with a list and with an ndarray argument "
          f"(extended Rosenbrock, n = {n}); each / plain floats over a list, paired, "
          "thread CPU time")
    print(f"{'loop':>20}  {'list':>7}  {'ndarray':>7}  {'ndarray/list':>12}  check")
    for name, fn in LOOPS:
        vg = revad.value_and_grad(lambda x, fn=fn: fn(x, revad))
        ok = _close(vg(xl), ref) and _close(vg(xa), ref)
        def plain(fn=fn):
            return fn(xl, math)

        on_list = paired(plain, lambda: vg(xl), repeat)
        on_array = paired(plain, lambda: vg(xa), repeat)
        array_list = paired(lambda: vg(xl), lambda: vg(xa), repeat)
        status = "ok" if ok else "!!! MISMATCH"
        print(f"{name:>20}  {on_list:6.2f}x  {on_array:6.2f}x  {array_list:11.2f}x  {status}",
              flush=True)
        record(workload="scalar_args", impl="revad", loop=name, n=n, list_to_plain=on_list,
               ndarray_to_plain=on_array, ndarray_to_list=array_list, check=status)

    w, x = [2.0, -3.0, -3.0], [-1.0, -2.0]
    wa, xa = np.array(w), np.array(x)
    vg = revad.value_and_grad(lambda w, x: neuron(w, x, revad), argnums=(0, 1))
    f = 1 / (1 + math.exp(-(w[0] * x[0] + w[1] * x[1] + w[2])))
    d = f * (1 - f)
    want = (f, [d * x[0], d * x[1], d, d * w[0], d * w[1]])
    ok = all(_close((v, [*gw, *gx]), want) for v, (gw, gx) in (vg(w, x), vg(wa, xa)))
    times = {label: per_call(call, repeat) for label, call in (
        ("plain", lambda: neuron(w, x, _PlainSigmoid)), ("list", lambda: vg(w, x)),
        ("ndarray", lambda: vg(wa, xa)))}
    array_list = paired(lambda: vg(w, x), lambda: vg(wa, xa), repeat)
    status = "ok" if ok else "!!! MISMATCH"
    print("\nthe seed's neuron, value_and_grad(neuron, argnums=(0, 1)), per call:")
    print(f"{'plain floats':>12}  {'list':>8}  {'ndarray':>8}  {'ndarray/list':>12}  check")
    print(f"{times['plain'] * 1e6:9.2f} us  {times['list'] * 1e6:5.2f} us  "
          f"{times['ndarray'] * 1e6:5.2f} us  {array_list:11.2f}x  {status}", flush=True)
    record(workload="scalar_args", impl="revad", loop="neuron", plain_s=times["plain"],
           list_s=times["list"], ndarray_s=times["ndarray"], ndarray_to_list=array_list,
           check=status)


class _PlainSigmoid:
    """The neuron's one function for plain floats."""

    @staticmethod
    def sigmoid(z):
        return 1 / (1 + math.exp(-z))
