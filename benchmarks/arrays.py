"""Vectorised NumPy workloads (issue 3): revad's Arrays against NumPy and array AD libraries.

Each objective is written once against a small NumPy-like namespace ``B`` (NumPy itself for
NumPy, revad and autograd; ``jax.numpy``; ``mygrad``; a thin adapter for PyTorch). For each
workload the table gives the NumPy evaluation of the objective alone and, per library, the
time of value-and-gradient and its ratio to the NumPy time, the two timed back to back (the
cheap-gradient bound is about 5; issue 3's target for revad is 3).
"""
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from . import progress
from .timing import measure, paired_ratio, settle

# Idle time before each timed batch, for the threads of whatever ran before to stop spinning
# (timing.settle): OpenBLAS's spin for about 0.1 s.
_SETTLE_S = 0.15
# A paired batch lasts at least this long: several calls, so that the first after the pause
# (slower: caches, the helper threads waking) weighs less.
_BATCH_S = 0.03


# -- objectives -------------------------------------------------------------------------------

def rosenbrock(B, x):
    return B.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def logreg(B, w, X, y):
    z = X @ w
    return B.sum(B.log1p(B.exp(-z)) + (1.0 - y) * z)


def _logsumexp(B, v, axis):
    m = B.max(v, axis=axis, keepdims=True)
    return B.log(B.sum(B.exp(v - m), axis=axis)) + B.sum(m, axis=axis)


def mlp(B, W1, b1, W2, b2, X, Y):
    h = B.tanh(X @ W1 + b1)
    o = h @ W2 + b2
    return B.mean(_logsumexp(B, o, 1) - B.sum(o * Y, axis=1))


def gmm(B, alphas, means, icf, x, D, Lm, wishart_gamma, wishart_m, const):
    """The ADBench GMM objective; Q_k is assembled from icf by constant 0/1 matrices D, Lm."""
    n, d = x.shape
    K = alphas.shape[0]
    logdiag = icf[:, :d]
    ltri = icf[:, d:]
    qdiag = B.exp(logdiag)
    sum_qs = B.sum(logdiag, axis=1)
    Q = B.reshape(qdiag @ D + ltri @ Lm, (K, d, d))
    xc = B.reshape(x, (n, 1, d)) - B.reshape(means, (1, K, d))
    Lx = B.sum(B.reshape(Q, (1, K, d, d)) * B.reshape(xc, (n, K, 1, d)), axis=3)
    inner = alphas + sum_qs - 0.5 * B.sum(Lx * Lx, axis=2)
    slse = B.sum(_logsumexp(B, inner, 1))
    prior = B.sum(0.5 * wishart_gamma ** 2
                  * (B.sum(qdiag * qdiag, axis=1) + B.sum(ltri * ltri, axis=1))
                  - wishart_m * sum_qs)
    return const + slse - n * _logsumexp(B, B.reshape(alphas, (1, K)), 1)[0] + prior


# -- data -------------------------------------------------------------------------------------

@dataclass
class ArrayWorkload:
    name: str
    title: str
    fn: Callable        # fn(B, *params, *data)
    make: Callable      # rng -> (params tuple, data tuple)


def _rosen_data(rng, n=1_000_000):
    return (np.where(np.arange(n) % 2 == 0, -1.2, 1.0) + 0.1 * rng.normal(size=n),), ()


def _logreg_data(rng, n=10_000, p=1_000):
    X = rng.normal(size=(n, p))
    y = (rng.random(n) < 0.5).astype(np.float64)
    return (0.01 * rng.normal(size=p),), (X, y)


def _mlp_data(rng, batch=256, sizes=(784, 128, 10)):
    X = rng.normal(size=(batch, sizes[0]))
    Y = np.eye(sizes[2])[rng.integers(0, sizes[2], batch)]
    W1 = rng.normal(size=sizes[:2]) / math.sqrt(sizes[0])
    W2 = rng.normal(size=sizes[1:]) / math.sqrt(sizes[1])
    return (W1, np.zeros(sizes[1]), W2, np.zeros(sizes[2])), (X, Y)


def _multigammaln(a, d):
    """log of the multivariate gamma function (scipy.special.multigammaln), so that the
    benchmark needs no SciPy."""
    return d * (d - 1) / 4 * math.log(math.pi) + sum(math.lgamma(a - j / 2) for j in range(d))


def _gmm_data(rng, d=10, K=25, n=1000):
    alphas = rng.normal(size=K)
    means = rng.random(size=(K, d))
    icf = 0.1 * rng.normal(size=(K, d + d * (d - 1) // 2))
    x = rng.random(size=(n, d))
    D = np.zeros((d, d * d))
    D[np.arange(d), np.arange(d) * (d + 1)] = 1.0
    rows, cols = [], []
    for c in range(d):           # ADBench's column-major order of the strict lower triangle
        for r in range(c + 1, d):
            rows.append(r)
            cols.append(c)
    Lm = np.zeros((len(rows), d * d))
    Lm[np.arange(len(rows)), np.array(rows) * d + np.array(cols)] = 1.0
    gamma, m = 1.0, 0
    nn = d + m + 1
    C = nn * d * (math.log(gamma) - 0.5 * math.log(2)) - _multigammaln(0.5 * nn, d)
    const = -n * d * 0.5 * math.log(2 * math.pi) - K * C
    return (alphas, means, icf), (x, D, Lm, gamma, m, const)


ARRAY_WORKLOADS = [
    ArrayWorkload("rosenbrock_vec", "vectorised Rosenbrock, n = 10^6", rosenbrock, _rosen_data),
    ArrayWorkload("logreg", "logistic regression loss, 10^4 samples x 10^3 features", logreg,
                  _logreg_data),
    ArrayWorkload("mlp", "two-layer MLP loss, batch 256, 784-128-10 (tanh, softmax CE)", mlp,
                  _mlp_data),
    ArrayWorkload("gmm", "GMM log-likelihood, ADBench objective, d=10 K=25 n=1000", gmm, _gmm_data),
]


# -- libraries --------------------------------------------------------------------------------

def _revad(readonly):
    import revad

    def vg(fn, params, data):
        if readonly:  # the zero-copy opt-in for constant matrices
            data = tuple(_ro(a) for a in data)
        f = revad.value_and_grad(lambda *p: fn(np, *p, *data), argnums=tuple(range(len(params))))
        return lambda: f(*params)
    return vg


def _ro(a):
    if isinstance(a, np.ndarray):
        a = a.copy()
        a.setflags(write=False)
    return a


def _autograd():
    import autograd
    import autograd.numpy as anp

    def vg(fn, params, data):
        f = autograd.value_and_grad(lambda p: fn(anp, *p, *data))
        return lambda: f(tuple(params))
    return vg


def _mygrad():
    import mygrad as mg

    B = SimpleNamespace(sum=mg.sum, exp=mg.exp, log=mg.log, log1p=mg.log1p, tanh=mg.tanh,
                        max=mg.max, mean=mg.mean, reshape=mg.reshape)

    def vg(fn, params, data):
        def run():
            ps = [mg.tensor(p) for p in params]
            out = fn(B, *ps, *data)
            out.backward()
            return out.item(), [p.grad for p in ps]
        return run
    return vg


def _torch():
    import torch

    class T:
        sum = staticmethod(lambda x, axis=None, keepdims=False: torch.sum(x) if axis is None
                           else torch.sum(x, dim=axis, keepdim=keepdims))
        mean = staticmethod(lambda x, axis=None: torch.mean(x) if axis is None
                            else torch.mean(x, dim=axis))
        max = staticmethod(lambda x, axis=None, keepdims=False:
                           torch.amax(x, dim=axis, keepdim=keepdims))
        exp, log, log1p, tanh = torch.exp, torch.log, torch.log1p, torch.tanh
        reshape = torch.reshape

    def vg(fn, params, data):
        tdata = tuple(torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in data)

        def run():
            ps = [torch.tensor(p, requires_grad=True) for p in params]
            out = fn(T, *ps, *tdata)
            out.backward()
            return out.item(), [p.grad.numpy() for p in ps]
        return run
    return vg


def _jax(jit):
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    def vg(fn, params, data):
        jdata = tuple(jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in data)
        f = jax.value_and_grad(lambda p: fn(jnp, *p, *jdata))
        if jit:
            f = jax.jit(f)
        jparams = tuple(jnp.asarray(p) for p in params)

        def run():
            v, g = f(jparams)
            jax.block_until_ready(g)
            return float(v), g
        return run
    return vg


LIBRARIES = [
    ("revad", lambda: _revad(False)),
    ("revad (read-only data)", lambda: _revad(True)),
    ("autograd", _autograd),
    ("mygrad", _mygrad),
    ("torch eager", _torch),
    ("jax eager", lambda: _jax(False)),
    ("jax jit", lambda: _jax(True)),
]


# What a library's first call does besides the work (the progress line says it before it starts).
FIRST_CALL = {"jax jit": " (the first call compiles)",
              "jax eager": " (the first call compiles each op)"}

# The peers a user would otherwise run eagerly on the same NumPy code.
HEAD_TO_HEAD = ("autograd", "mygrad", "torch eager")


def _check(ref, got):
    v, g = got
    rv, rg = ref
    g = [np.asarray(a) for a in (g if isinstance(g, (list, tuple)) else [g])]
    if len(g) != len(rg):
        return f"!!! MISMATCH {len(g)} gradients, not {len(rg)}"
    err = abs(float(v) - rv) / max(1.0, abs(rv))
    for a, b in zip(g, rg, strict=True):
        err = max(err, float(np.max(np.abs(a - b))) / max(1.0, float(np.max(np.abs(b)))))
    return "ok" if err < 1e-8 else f"!!! MISMATCH rel err {err:.2g}"


def run_arrays(names=None, repeat=5, peers=True, quick=False):
    """Time every array workload; returns (records, number of gradient mismatches)."""
    records, mismatches = [], 0
    for w in ARRAY_WORKLOADS:
        if names and w.name not in names:
            continue
        rng = np.random.default_rng(0)
        params, data = w.make(rng)
        if quick:
            params, data = _shrink(w.name, rng)
        progress.step(f"{w.name}: numpy objective")
        print(f"\n== {w.name}: {w.title}")
        objective = lambda: w.fn(np, *params, *data)  # noqa: E731
        t_np = measure(objective, repeat=repeat, warmup=3).median
        print(f"  {'numpy objective':<24} {t_np * 1e3:9.2f} ms")
        ref, runs = None, {}
        for name, make in LIBRARIES:
            if not peers and not name.startswith("revad"):
                continue
            progress.step(f"{w.name}: {name}{FIRST_CALL.get(name, '')}")
            try:
                vg = make()
            except ImportError:
                print(f"  {name:<24} not installed")
                records.append({"workload": w.name, "impl": name, "note": "not installed"})
                continue
            run = vg(w.fn, params, data)
            t0 = time.perf_counter()
            first = run()
            t_first = time.perf_counter() - t0
            if ref is None:
                grads = first[1] if isinstance(first[1], (list, tuple)) else [first[1]]
                ref = (float(first[0]), [np.asarray(a) for a in grads])
            status = _check(ref, first)
            mismatches += status != "ok"
            reps = repeat if t_first < 2.0 else 1
            pause = 0.0 if quick else _SETTLE_S  # (--quick checks that it runs, not speed)
            # measure()'s warm-up call, timed here for the estimate (a first call can compile).
            t0 = time.perf_counter()
            run()
            estimate = _estimate(time.perf_counter() - t0, t_np, reps, pause)
            if estimate >= progress.LONG_S:
                progress.step(f"{w.name}: {name}", estimate)
            settle(pause)
            t = measure(run, repeat=reps, warmup=0).median
            # The ratio is timed in rounds of the objective and the gradient back to back, both
            # warm: NumPy's objective alone runs up to 2x slower while its temporaries still
            # fault in fresh pages, which would flatter every ratio. Each side's batch starts
            # once the other's threads have gone idle: right after NumPy's gemv, OpenBLAS's
            # spinning thread took a core from revad's (logistic regression: 13-16 ms against
            # 8-10), and PyTorch's from NumPy (which flattered PyTorch's ratio).
            ratio = paired_ratio(objective, run, repeat=reps, settle_s=pause,
                                 batch_s=_BATCH_S if pause else 2e-3)
            extra = f"  (first call {t_first * 1e3:.0f} ms: compile)" if name == "jax jit" else ""
            print(f"  {name:<24} {t * 1e3:9.2f} ms   grad/numpy {ratio:7.2f}   {status}{extra}")
            records.append({"workload": w.name, "impl": name, "seconds": t, "numpy_seconds": t_np,
                            "ratio": ratio, "check": status})
            runs[name] = (run, reps, records[-1])
        # Head to head: revad against each eager peer in the same paired rounds. Each ratio above
        # is timed against NumPy's objective at its own time, and the machine's load moves
        # between them; these two share every round.
        if "revad" in runs and not quick:
            mine, reps, _ = runs["revad"]
            for name in HEAD_TO_HEAD:
                if name in runs:
                    peer, peer_reps, record = runs[name]
                    progress.step(f"{w.name}: revad and {name} in the same rounds")
                    r = paired_ratio(peer, mine, repeat=min(reps, peer_reps), settle_s=_SETTLE_S,
                                     batch_s=_BATCH_S)
                    record["revad_over_peer"] = r
                    print(f"  {'revad / ' + name:<24} {'':9}      paired  {r:7.2f}   "
                          f"({'revad' if r < 1 else name} faster)")
    if any("check" in r for r in records):
        progress.step("tape cost")
        records += tape_costs(1000 if quick else 1_000_000)
    if names is None:
        from .families import run_families
        records += run_families(quick)
    return records, mismatches


def _estimate(t_call, t_objective, repeat, pause):
    """Seconds that the timings of one library take after its first call: `repeat` samples of at
    least timing's 2 ms, then `repeat` paired rounds (each side settled, warmed and batched)."""
    sample = max(t_call, 2e-3)
    rounds = 2 * pause + 2 * (t_call + t_objective) + 2 * max(_BATCH_S if pause else 2e-3,
                                                              t_call + t_objective)
    return repeat * sample + 2 * (t_call + t_objective) + repeat * rounds


def _shrink(name, rng):
    if name == "rosenbrock_vec":
        return _rosen_data(rng, 1000)
    if name == "logreg":
        return _logreg_data(rng, 100, 20)
    if name == "mlp":
        return _mlp_data(rng, 8, (20, 8, 3))
    return _gmm_data(rng, 3, 4, 20)


def _tape_growth(make, *build, constants=True):
    """Tape entries and bytes (columns, pool, block table and, if `constants`, the constant
    arrays it keeps) that each step of `build` adds, on a private tape, from the Array `make()`."""
    import revad

    def held(v):
        info = revad.tape_info(v if type(v) is revad.Var else v.reshape(-1)[0])
        return info["n_ops"], info["nbytes"] + (info["constant_nbytes"] if constants else 0)
    saved = revad._core._enter_private()
    try:
        x = make()
        last, out = held(x), []
        for step in build:
            x = step(x)
            now = held(x)
            out.append((now[0] - last[0], now[1] - last[1]))
            last = now
    finally:
        revad._core._exit_private(saved)
    return out


def entry_count_of_matvec(m=10_000, n=1_000):
    """Entries (and bytes) revad records for A @ w with constant A of shape (m, n)."""
    import revad
    A = np.random.default_rng(0).normal(size=(m, n))
    return _tape_growth(lambda: revad.Array(np.ones(n)), lambda w: A @ w, constants=False)[0]


def tape_costs(n=1_000_000):
    """Issue 3's memory figures: bytes per element of elementwise ops, entries of A @ w."""
    import revad
    c = np.arange(n, dtype=np.float64)
    (_, b_exp), (_, b_num), (_, b_arr) = _tape_growth(
        lambda: revad.Array(np.ones(n)), np.exp, lambda a: a * 2.0, lambda a: a * c)
    entries, nbytes = entry_count_of_matvec()
    print(f"\n== tape cost: elementwise op {b_exp / n:.2f} bytes/element (times a number "
          f"{b_num / n:.2f}, times a writable ndarray {b_arr / n:.2f}); A @ w with A 10^4 x 10^3: "
          f"{entries:,} slots in one group, {nbytes / 1e3:.0f} kB "
          "(A itself referenced, not copied)")
    return [{"workload": "tape_cost", "impl": "revad", "bytes_per_element_unary": b_exp / n,
             "bytes_per_element_scalar_const": b_num / n,
             "bytes_per_element_array_const": b_arr / n,
             "matvec_slots": entries, "matvec_nbytes": nbytes, "check": "ok"}]
