"""Record once, replay (``--only replay``): ``revad.compile`` against eager ``value_and_grad``.

* The scalar-loop Rosenbrock (n = 10^4; 100 with --quick): compiled value_and_grad over the
  plain-float evaluation of f, eager value_and_grad over it, and CasADi's compiled evaluation
  of the same graph (built once, untimed) over it, all paired in rounds of this thread's CPU
  time; and the nanoseconds per tape entry of the forward replay alone (``.value``) and of the
  reverse sweep (value_and_grad's time less the forward's).
* Hessian-vector products on the same Rosenbrock and the NumPy one (n = 10^5): ``cf.hvp`` over
  eager ``revad.hvp`` and over ``cf``'s replayed gradient, paired.
* The seed's neuron, ``sigmoid(w . x + b)`` with ``argnums=(0, 1)``: microseconds per compiled
  call, per eager call, and per call of JAX's ``jit(value_and_grad)`` (its dispatch), each the
  median of batches.
* The four array workloads of benchmarks/arrays.py (shrunk with --quick) and the MLP at batch
  32: compiled over eager, paired (wall-clock, each batch after the other's threads idle).
* ``batch`` of 10^3 points of a 100-input Rosenbrock: one thread over two threads.
* Bytes per entry of a trace (its tape plus its replay buffers).

A missing peer (CasADi, JAX) is a note in its cell, never a failure.
"""
import math
import os
import statistics
import time

import numpy as np

from . import arrays as arrays_mod
from . import progress
from .scalar_args import _PlainSigmoid, neuron, paired, per_call
from .timing import paired_ratio
from .workloads import _rosenbrock_grad, _rosenbrock_start, rosenbrock

# "replay-batch", "replay-arrays": the batch row, the array rows alone (quicker runs than the
# whole section)
SECTIONS = ("replay", "replay-batch", "replay-arrays")
N, QUICK_N = 10_000, 100
BATCH_POINTS, QUICK_BATCH_POINTS = 1000, 50
BATCH_INPUTS = 100


def _flat(g):
    """A gradient's numbers, whatever its structure, as one float64 vector."""
    if isinstance(g, dict):
        g = list(g.values())
    if isinstance(g, (list, tuple)):
        parts = [_flat(e) for e in g]
        return np.concatenate(parts) if parts else np.zeros(0)
    return np.asarray(g, dtype=np.float64).ravel()


def _close(got, ref, rtol=1e-10):
    """Value and gradient agree to rtol (relative to the gradient's largest entry)."""
    (v, g), (rv, rg) = got, ref
    g, rg = _flat(g), _flat(rg)
    scale = max(1.0, float(np.max(np.abs(rg))) if rg.size else 1.0)
    return (abs(float(v) - float(rv)) <= rtol * max(1.0, abs(float(rv)))
            and g.shape == rg.shape and bool(np.all(np.abs(g - rg) <= rtol * scale)))


def _status(ok):
    return "ok" if ok else "!!! MISMATCH"


def _entries(tr):
    """(tape entries, bytes per entry of the tape and a replay's buffers) of a trace."""
    s = tr.stats
    return s["entries"], s["bytes_per_entry"]


# --- the scalar loop ---------------------------------------------------------------------------

def _casadi_eval(n):
    """CasADi's compiled evaluation of the Rosenbrock graph (build untimed), or None."""
    try:
        from .peers import Casadi
        peer = Casadi()
    except ImportError:
        return None
    F = peer._build(rosenbrock, n)

    def run(x):
        v, g = F(x)
        return float(v), np.asarray(g, dtype=np.float64).ravel()
    return run


def rosenbrock_rows(revad, n, repeat, record):
    x = _rosenbrock_start(n)
    xa = np.array(x)
    ref = _rosenbrock_grad(x)

    def f(xs):
        return rosenbrock(xs, revad)

    def plain():
        return rosenbrock(x, math)

    cf = revad.compile(f)
    eager = revad.value_and_grad(f)
    progress.step(f"replay: Rosenbrock n={n:,}, recording")
    ok = _close(cf(x), ref) and _close(cf(x), ref) and _close(eager(x), ref)
    tr = revad.trace(f, x)
    compiled = paired(plain, lambda: cf(x), repeat)
    progress.step(f"replay: Rosenbrock n={n:,}, eager")
    eager_ratio = paired(plain, lambda: eager(x), repeat)
    progress.step(f"replay: Rosenbrock n={n:,}, CasADi (its build is not timed)")
    casadi = _casadi_eval(n)
    casadi_ratio = None
    if casadi is not None:
        ok = ok and _close(casadi(xa), ref)
        casadi_ratio = paired(plain, lambda: casadi(xa), repeat)
    t_value = per_call(lambda: tr.value(x), repeat)
    t_vg = per_call(lambda: tr.value_and_grad(x), repeat)
    entries, bytes_per_entry = _entries(tr)
    fwd_ns, rev_ns = t_value / entries * 1e9, max(t_vg - t_value, 0.0) / entries * 1e9
    status = _status(ok)
    print(f"\n[replay] Rosenbrock, scalar loop, n = {n:,} ({entries:,} entries): value_and_grad "
          "over the plain-float f, paired, thread CPU time")
    print(f"  {'compiled':>9}  {'eager':>7}  {'CasADi eval':>11}  {'fwd ns/entry':>12}  "
          f"{'rev ns/entry':>12}  {'bytes/entry':>11}  check")
    cas = "not installed" if casadi_ratio is None else f"{casadi_ratio:.3g}x"
    print(f"  {compiled:8.3g}x  {eager_ratio:6.3g}x  {cas:>11}  {fwd_ns:12.3g}  {rev_ns:12.3g}  "
          f"{bytes_per_entry:11.3g}  {status}  (target: compiled <= 0.25)", flush=True)
    record(workload="replay", case="rosenbrock", impl="revad", n=n, entries=entries,
           compiled_to_plain=compiled, eager_to_plain=eager_ratio,
           casadi_eval_to_plain=casadi_ratio, forward_ns_per_entry=fwd_ns,
           reverse_ns_per_entry=rev_ns, bytes_per_entry=bytes_per_entry, check=status)


def hvp_rows(revad, n, n_np, repeat, record):
    """Replayed Hessian-vector products (cf.hvp) over eager revad.hvp and over the replayed
    gradient, on the scalar-loop Rosenbrock (n) and the NumPy one (n_np), paired."""
    print("\n[replay] Hessian-vector products: cf.hvp over eager revad.hvp and over cf's "
          "gradient, paired, thread CPU time")
    for case, f, x in (("rosenbrock_hvp", lambda xs: rosenbrock(xs, revad),
                        np.array(_rosenbrock_start(n))),
                       ("rosenbrock_np_hvp", lambda xs: arrays_mod.rosenbrock(np, xs),
                        np.array(_rosenbrock_start(n_np)))):
        progress.step(f"replay: {case} n={x.size:,}")
        v = np.random.default_rng(0).normal(size=x.size)
        cf, eager = revad.compile(f), revad.hvp(f)
        ok = bool(np.allclose(cf.hvp(x, v), eager(x, v), rtol=1e-10, atol=1e-8))
        over_eager = paired(lambda: eager(x, v), lambda: cf.hvp(x, v), repeat)
        over_grad = paired(lambda: cf(x), lambda: cf.hvp(x, v), repeat)
        status = _status(ok)
        print(f"  {case:>18} n={x.size:<8,} over eager {over_eager:6.3g}x  over the replayed "
              f"gradient {over_grad:6.3g}x  {status}", flush=True)
        record(workload="replay", case=case, impl="revad", n=x.size, hvp_to_eager=over_eager,
               hvp_to_grad=over_grad, check=status)


# --- the neuron -------------------------------------------------------------------------------

def _jax_neuron():
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    f = jax.jit(jax.value_and_grad(lambda w, x: jax.nn.sigmoid(w[0] * x[0] + w[1] * x[1] + w[2]),
                                   argnums=(0, 1)))
    w, x = jnp.array([2.0, -3.0, -3.0]), jnp.array([-1.0, -2.0])

    def run():
        v, g = f(w, x)
        jax.block_until_ready(g)
        return v, g
    run()
    return run


def neuron_rows(revad, repeat, record):
    w, x = [2.0, -3.0, -3.0], [-1.0, -2.0]

    def f(w, x):
        return neuron(w, x, revad)

    cf = revad.compile(f, argnums=(0, 1))
    eager = revad.value_and_grad(f, argnums=(0, 1))
    ok = _close(cf(w, x), eager(w, x)) and _close(cf(w, x), eager(w, x))
    progress.step("replay: the neuron")
    times = {"plain": per_call(lambda: neuron(w, x, _PlainSigmoid), repeat),
             "compiled": per_call(lambda: cf(w, x), repeat),
             "eager": per_call(lambda: eager(w, x), repeat)}
    jx = _jax_neuron()
    times["jax"] = per_call(jx, repeat) if jx else None
    status = _status(ok)
    print("\nthe seed's neuron, argnums=(0, 1), per call (lists):")
    print(f"  {'plain':>9}  {'compiled':>9}  {'eager':>9}  {'JAX jit':>9}  check")
    jtxt = "not installed" if times["jax"] is None else f"{times['jax'] * 1e6:6.2f} us"
    print(f"  {times['plain'] * 1e6:6.2f} us  {times['compiled'] * 1e6:6.2f} us  "
          f"{times['eager'] * 1e6:6.2f} us  {jtxt:>9}  {status}  (target: compiled <= 1 us)",
          flush=True)
    record(workload="replay", case="neuron", impl="revad", plain_s=times["plain"],
           compiled_s=times["compiled"], eager_s=times["eager"], jax_jit_s=times["jax"],
           check=status)


# --- the array workloads ------------------------------------------------------------------------

def _array_cases(quick):
    for w in arrays_mod.ARRAY_WORKLOADS:
        rng = np.random.default_rng(0)
        params, data = arrays_mod._shrink(w.name, rng) if quick else w.make(rng)
        yield w.name, w.fn, params, data
        if w.name == "mlp":
            rng = np.random.default_rng(0)
            params, data = arrays_mod._mlp_data(rng, 8 if quick else 32,
                                                (20, 8, 3) if quick else (784, 128, 10))
            yield "mlp, batch 32", w.fn, params, data


def array_rows(revad, quick, repeat, record):
    print("\n[replay] array workloads: compiled / eager value_and_grad, paired; the data as "
          "arguments (inputs of the\n  recording: a new minibatch is used on replay) and closed "
          "over (constants of the recording, as benchmarks/arrays.py's eager runs)")
    print(f"  {'workload':<16} {'eager':>9} {'compiled':>9} {'data as args':>12} "
          f"{'data closed over':>16}  check")
    pause = 0.0 if quick else arrays_mod._SETTLE_S
    for name, fn, params, data in _array_cases(quick):
        progress.step(f"replay: {name}")
        nums = tuple(range(len(params)))

        def objective(*a, fn=fn):
            return fn(np, *a)

        def closed(*p, fn=fn, data=data):
            return fn(np, *p, *data)

        eager = revad.value_and_grad(objective, argnums=nums)
        cf = revad.compile(objective, argnums=nums)
        cf_closed = revad.compile(closed, argnums=nums)
        args = (*params, *data)
        ref = eager(*args)
        ok = all(_close(c(), ref, 1e-9) for c in (lambda: cf(*args), lambda: cf(*args),
                                                   lambda: cf_closed(*params),
                                                   lambda: cf_closed(*params)))
        t_eager = statistics.median(_wall(lambda: eager(*args)) for _ in range(repeat))
        t_comp = statistics.median(_wall(lambda: cf(*args)) for _ in range(repeat))
        ratios = [paired_ratio(lambda: eager(*args), run, repeat=repeat, settle_s=pause,
                               batch_s=arrays_mod._BATCH_S if pause else 2e-3)
                  for run in (lambda: cf(*args), lambda: cf_closed(*params))]
        hand = None
        if name.startswith("mlp"):  # the same BLAS calls and passes, no AD: the floor
            ok = ok and _close(_mlp_by_hand(*args), ref, 1e-9)
            hand = paired_ratio(lambda: eager(*args), lambda: _mlp_by_hand(*args), repeat=repeat,
                                settle_s=pause, batch_s=arrays_mod._BATCH_S if pause else 2e-3)
        status = _status(ok)
        print(f"  {name:<16} {t_eager * 1e3:6.3g} ms {t_comp * 1e3:6.3g} ms {ratios[0]:11.3g}x "
              f"{ratios[1]:15.3g}x  {status}"
              + (f"  (NumPy by hand: {hand:.3g}x)" if hand is not None else ""), flush=True)
        record(workload="replay", case=name, impl="revad", eager_s=t_eager, compiled_s=t_comp,
               compiled_to_eager=ratios[0], closed_over_to_eager=ratios[1], check=status,
               **({"by_hand_to_eager": hand} if hand is not None else {}))
    print("  (target: compiled <= eager on all four; the MLP at batch 32 at most 0.5. NumPy by "
          "hand: the MLP's value and\n  gradient written out in NumPy, the same BLAS products "
          "and elementwise passes with no AD at all)")


def _mlp_by_hand(W1, b1, W2, b2, X, Y):
    """benchmarks/arrays.py's mlp and its gradient in plain NumPy (checked against eager)."""
    h = np.tanh(X @ W1 + b1)
    o = h @ W2 + b2
    m = o.max(axis=1, keepdims=True)
    e = np.exp(o - m)
    s = e.sum(axis=1, keepdims=True)
    value = np.mean(np.log(s[:, 0]) + m[:, 0] - np.sum(o * Y, axis=1))
    do = (e / s - Y) / X.shape[0]
    da = (do @ W2.T) * (1.0 - h * h)
    return value, (X.T @ da, da.sum(axis=0), h.T @ do, do.sum(axis=0))


def _wall(fn, min_s=2e-3):
    fn()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        t = time.perf_counter() - t0
        if t >= min_s:
            return t / n


# --- batch --------------------------------------------------------------------------------------

def batch_rows(revad, quick, repeat, record):
    points = QUICK_BATCH_POINTS if quick else BATCH_POINTS
    rng = np.random.default_rng(0)
    xs = rng.uniform(-1.5, 1.5, size=(points, BATCH_INPUTS))

    def f(v):
        return rosenbrock(v, revad)

    cf = revad.compile(f)
    values, grads = cf.batch(xs)
    ok = all(_close((values[i], grads[i]), _rosenbrock_grad(xs[i]))
             for i in range(0, points, max(1, points // 10)))
    progress.step(f"replay: batch of {points} points, 1 and 2 threads")
    ratio = paired_ratio(lambda: _batch(cf, xs, 2), lambda: _batch(cf, xs, 1), repeat=repeat)
    status = _status(ok)
    print(f"\n[replay] batch of {points:,} points (Rosenbrock, {BATCH_INPUTS} inputs each): "
          f"1 thread / 2 threads {ratio:.3g}x (target >= 1.7 on 2 cores; this machine has "
          f"{os.cpu_count()})  {status}", flush=True)
    record(workload="replay", case="batch", impl="revad", points=points,
           one_over_two_threads=ratio, check=status)


def _batch(cf, xs, threads):
    return cf.batch(xs, threads=threads)


def run(revad, args, record):
    """Run the section if --only selects it (or runs everything)."""
    if args.only and not args.only & set(SECTIONS):
        return
    if not hasattr(revad, "compile"):
        print("\n[replay] skipped: this revad has no compile")
        return
    repeat = args.repeat or (3 if args.quick else 7)
    if args.only and "replay" not in args.only:  # --only replay-batch and/or replay-arrays
        if "replay-arrays" in args.only:
            array_rows(revad, args.quick, min(repeat, 5), record)
        if "replay-batch" in args.only:
            batch_rows(revad, args.quick, repeat, record)
        return
    rosenbrock_rows(revad, QUICK_N if args.quick else N, repeat, record)
    hvp_rows(revad, QUICK_N if args.quick else N, 1000 if args.quick else 100_000, repeat, record)
    neuron_rows(revad, repeat, record)
    array_rows(revad, args.quick, min(repeat, 5), record)
    batch_rows(revad, args.quick, repeat, record)
