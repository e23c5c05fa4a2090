"""Second order (issue 17), ``--only second``: what a Hessian-vector product, a Hessian and a
nested gradient cost, each as a ratio to the same library's own first-order work, timed in
paired rounds (timing.paired), with revad, PyTorch and JAX side by side.

* HVP / gradient on the extended Rosenbrock function written as a Python loop over scalars
  (n = 10^4) and written with NumPy slices (n = 10^6): ``revad.hvp(f)(x, v)`` against
  ``revad.grad(f)(x)``; PyTorch's double backward (``torch.autograd.grad`` with
  ``create_graph=True``, then the gradient of g . v) against its gradient; JAX's
  ``jvp(grad(f))`` against ``grad(f)``, jit-compiled and eager. Issue 17's target: 4.
* Sparse Hessian / gradient on the same loop (n = 10^4): ``revad.hessian(f, sparse=True)``,
  with the colours it used (or the nonzeros, where revad does not say). Target: 10.
* Dense Hessian / 100 HVPs, n = 100, f(x) = x'Ax / 2 + log(sum(exp(Bx))): ``revad.hessian``
  against 100 calls of ``revad.hvp``; ``torch.func.hessian`` and ``jax.hessian`` against 100 of
  their own HVPs. Target: 1.2.
* ``grad(grad(f))`` of a chain of scalar ops (t = sin(t) / 2 + 0.3 x, 100 times): the time per
  entry of revad's tape (f recorded, its reverse sweep recorded, that record swept), against
  PyTorch's create_graph double backward and JAX's grad(grad(f)) on the same function (their
  time over revad's entry count).

Every result is checked against a closed form (the Rosenbrock Hessian is tridiagonal; the
dense one is A + B'(diag(p) - pp')B with p = softmax(Bx); the chain's derivatives follow a
recurrence in floats), so a wrong number is never reported as fast. The loop's peers run at the
largest of n, n/10, n/100 that fits their time budget (PyTorch's 0-d tensors cost seconds at
n = 10^4); JAX's jit is not run on the loop, whose every scalar op XLA compiles (20 s at
n = 100 on the development machine, minutes at n = 1,000). ``--quick`` runs tiny sizes (a smoke
test: the ratios say little) and leaves JAX's eager rows out.
"""
import math
import time

import numpy as np

from . import arrays, progress
from .modes import _fmt_time, _row
from .peers import INSTALL_HINTS, Torch
from .timing import paired
from .workloads import _rosenbrock_grad, _rosenbrock_start, rosenbrock

SECTIONS = ("second",)
SIZES = {"hvp_loop": 10_000, "hvp_vec": 1_000_000, "sparse": 10_000, "dense": 100,
         "gradgrad": 100}
QUICK_SIZES = {"hvp_loop": 100, "hvp_vec": 1_000, "sparse": 100, "dense": 20, "gradgrad": 20}
TARGETS = {"hvp_loop": 4.0, "hvp_vec": 4.0, "sparse": 10.0, "dense": 1.2}
TITLES = {
    "hvp_loop": "HVP / gradient, Rosenbrock loop",
    "hvp_vec": "HVP / gradient, Rosenbrock NumPy",
    "sparse": "sparse Hessian / gradient, Rosenbrock loop",
    "dense": "dense Hessian / n HVPs",
    "gradgrad": "grad(grad(f)) / grad(f), chain of scalar ops",
}
# One peer row's timings, at most: the README's main command runs every row, and a new user
# waits for them (20 s made the section 3 min under load).
BUDGET_S, QUICK_BUDGET_S = 10.0, 1.0
SLOW_REPEAT = 3  # rounds for a row whose calls take seconds
RTOL = 1e-8
NOT_AVAILABLE = "not available in this revad"
LOOP_JIT_NOTE = "not run: jit compiles each op of the loop (20 s at n = 100)"


# --- the functions and their closed forms ----------------------------------------------------

def _rosenbrock_hvp(x, v):
    """H v of the extended Rosenbrock function: each term couples x[i] and x[i + 1] only."""
    a, b = x[:-1], x[1:]
    hv = np.zeros_like(x)
    hv[:-1] += (1200 * a**2 - 400 * b + 2) * v[:-1] - 400 * a * v[1:]
    hv[1:] += -400 * a * v[:-1] + 200 * v[1:]
    return hv


def _rosenbrock_bands(x):
    """(diagonal, off-diagonal) of the extended Rosenbrock Hessian, which is tridiagonal."""
    a, b = x[:-1], x[1:]
    d = np.zeros_like(x)
    d[:-1] += 1200 * a**2 - 400 * b + 2
    d[1:] += 200.0
    return d, -400 * a


def dense_objective(B_, x, A, Bm):
    """x'Ax / 2 + log(sum(exp(Bx))), for B_ = numpy, torch or jax.numpy."""
    return 0.5 * x @ (A @ x) + B_.log(B_.sum(B_.exp(Bm @ x)))


def _dense_data(n):
    rng = np.random.default_rng(0)
    M = rng.normal(size=(n, n))
    A = M @ M.T / n + np.eye(n)
    Bm = rng.normal(size=(n // 2, n)) / math.sqrt(n)
    return A, Bm, rng.normal(size=n)


def _dense_hessian(A, Bm, x):
    z = Bm @ x
    p = np.exp(z - z.max())
    p /= p.sum()
    return A + Bm.T @ (np.diag(p) - np.outer(p, p)) @ Bm


def chain(x, m, k):
    """k steps of t = sin(t) / 2 + 0.3 x from t = x: 4 ops a step."""
    t = x
    for _ in range(k):
        t = m.sin(t) * 0.5 + x * 0.3
    return t


def _chain_derivatives(x, k):
    """(f', f'') of chain() by the recurrence t' = cos(t) t' / 2 + 0.3,
    t'' = (cos(t) t'' - sin(t) t'^2) / 2, in floats."""
    t, d1, d2 = x, 1.0, 0.0
    for _ in range(k):
        s, c = math.sin(t), math.cos(t)
        t, d1, d2 = 0.5 * s + 0.3 * x, 0.5 * c * d1 + 0.3, 0.5 * (c * d2 - s * d1 * d1)
    return d1, d2


def _inputs(n):
    """(x, v) for the HVP cases: the usual Rosenbrock start and a random direction."""
    x = np.array(_rosenbrock_start(n))
    return x, np.random.default_rng(1).normal(size=n)


def _rel_err(got, ref):
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        return math.inf
    if not got.size:
        return 0.0
    return float(np.max(np.abs(got - ref))) / max(1.0, float(np.max(np.abs(ref))))


def _sparse_err(H, x):
    """Relative error of a sparse Hessian against the tridiagonal closed form, without making
    it dense (n = 10^4 would be 800 MB): its three bands, and nothing outside them."""
    if not hasattr(H, "diagonal") or getattr(H, "shape", None) != (x.size, x.size):
        return math.inf
    d, off = _rosenbrock_bands(x)
    scale = max(1.0, float(np.max(np.abs(d))), float(np.max(np.abs(off))))
    err = max(float(np.max(np.abs(H.diagonal(0) - d))),
              float(np.max(np.abs(H.diagonal(1) - off))),
              float(np.max(np.abs(H.diagonal(-1) - off))))
    inside = sum(float(np.sum(np.abs(H.diagonal(k)))) for k in (-1, 0, 1))
    outside = float(abs(H).sum()) - inside
    return max(err, abs(outside)) / scale


def check(case, n, base_result, result):
    """'ok', or a loud MISMATCH naming the relative error, for a row's two results."""
    if case in ("hvp_loop", "hvp_vec", "sparse"):
        x, v = _inputs(n)
        errs = [_rel_err(base_result, _rosenbrock_grad(x)[1])]
        errs.append(_sparse_err(result, x) if case == "sparse"
                    else _rel_err(result, _rosenbrock_hvp(x, v)))
    elif case == "dense":
        A, Bm, x = _dense_data(n)
        ref = _dense_hessian(A, Bm, x)
        errs = [_rel_err(base_result, ref), _rel_err(result, ref)]
    else:
        d1, d2 = _chain_derivatives(0.7, n)
        errs = [_rel_err(base_result, d1), _rel_err(result, d2)]
    err = max(errs)
    if not err <= RTOL:  # also catches NaN
        return f"!!! MISMATCH: rel err {err:.2g}"
    return "ok"


# --- the libraries ---------------------------------------------------------------------------
# Each offers, per case it supports, ``case(n)`` -> (base, other): two callables returning the
# denominator's result (a gradient, or the n HVPs stacked) and the second-order result.

class Revad:
    impl = "revad"
    method = {"hvp_loop": "hvp(f)(x, v)", "hvp_vec": "hvp(f)(x, v)",
              "sparse": "hessian(f, sparse=True)", "dense": "hessian(f)",
              "gradgrad": "grad(grad(f))"}

    def __init__(self, revad):
        self.revad = revad

    def _hvp(self, f, n):
        r = self.revad
        x, v = _inputs(n)
        g, h = r.grad(f), r.hvp(f)
        return (lambda: g(x)), (lambda: h(x, v))

    def hvp_loop(self, n):
        return self._hvp(lambda x: rosenbrock(x, self.revad), n)

    def hvp_vec(self, n):
        return self._hvp(lambda x: arrays.rosenbrock(np, x), n)

    def sparse(self, n):
        r = self.revad

        def f(x):
            return rosenbrock(x, r)

        try:
            hs = r.hessian(f, sparse=True)
        except TypeError:  # no sparse= keyword: a revad before sparse Hessians
            return None
        x, _ = _inputs(n)
        g = r.grad(f)
        self.sparse_fn = hs  # where revad may say how many colours it used
        return (lambda: g(x)), (lambda: hs(x))

    def dense(self, n):
        r = self.revad
        A, Bm, x = _dense_data(n)

        def f(x):
            return dense_objective(np, x, A, Bm)

        h, hess = r.hvp(f), r.hessian(f)
        eye = np.eye(n)
        return (lambda: np.stack([h(x, e) for e in eye])), (lambda: hess(x))

    def gradgrad(self, k):
        r = self.revad

        def f(x):
            return chain(x, r, k)

        g, gg = r.grad(f), r.grad(r.grad(f))
        return (lambda: g(0.7)), (lambda: gg(0.7))

    def entries(self, k):
        """Entries on the tape of grad(grad(f)) for the chain of k steps: the leaf, f recorded,
        its reverse sweep recorded (what the outer sweep then runs over)."""
        r = self.revad
        (added, _), = arrays._tape_growth(lambda: r.Var(0.7), r.grad(lambda x: chain(x, r, k)),
                                          constants=False)
        return added + 1


class TorchPeer:
    impl = "torch"
    method = {"hvp_loop": "double backward, 0-d tensors", "hvp_vec": "double backward",
              "dense": "torch.func.hessian", "gradgrad": "create_graph double backward"}

    def __init__(self):
        import torch

        self.torch = torch
        self.version = torch.__version__

    def _double_backward(self, leaves, y, v):
        torch = self.torch
        g = torch.autograd.grad(y, leaves, create_graph=True)
        g = torch.stack(g) if isinstance(leaves, list) else g[0]
        h = torch.autograd.grad(torch.dot(g, v), leaves)
        return torch.stack(h) if isinstance(leaves, list) else h[0]

    def hvp_loop(self, n):
        torch = self.torch
        x, v = _inputs(n)
        xs, vt = x.tolist(), torch.from_numpy(v)

        def leaves():
            return [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in xs]

        def grad():
            ls = leaves()
            return torch.stack(torch.autograd.grad(rosenbrock(ls, torch), ls)).numpy()

        def hvp():
            ls = leaves()
            return self._double_backward(ls, rosenbrock(ls, torch), vt).numpy()

        return grad, hvp

    def hvp_vec(self, n):
        torch = self.torch
        x, v = _inputs(n)
        xt, vt = torch.from_numpy(x), torch.from_numpy(v)

        def leaf():
            return xt.detach().requires_grad_(True)

        def grad():
            x = leaf()
            return torch.autograd.grad(arrays.rosenbrock(torch, x), x)[0].numpy()

        def hvp():
            x = leaf()
            return self._double_backward(x, arrays.rosenbrock(torch, x), vt).numpy()

        return grad, hvp

    def dense(self, n):
        torch = self.torch
        A, Bm, x = (torch.from_numpy(a) for a in _dense_data(n))

        def f(x):
            return dense_objective(torch, x, A, Bm)

        eye = torch.eye(n, dtype=torch.float64)

        def hvps():
            out = []
            for e in eye:
                xl = x.detach().requires_grad_(True)
                out.append(self._double_backward(xl, f(xl), e))
            return torch.stack(out).numpy()

        hess = torch.func.hessian(f)
        return hvps, (lambda: hess(x).numpy())

    def gradgrad(self, k):
        torch = self.torch

        def grad():
            x = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
            return torch.autograd.grad(chain(x, torch, k), x)[0].item()

        def gradgrad():
            x = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
            g, = torch.autograd.grad(chain(x, torch, k), x, create_graph=True)
            return torch.autograd.grad(g, x)[0].item()

        return grad, gradgrad


class JaxPeer:
    method = {"hvp_loop": "jvp(grad(f)), eager, list of 0-d arrays",
              "hvp_vec": "jvp(grad(f))", "dense": "jax.hessian", "gradgrad": "grad(grad(f))"}

    def __init__(self, jit):
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)  # process-wide; affects nothing but JAX
        self.jax, self.jnp, self.jit = jax, jnp, jit
        self.impl = "jax jit" if jit else "jax eager"
        self.version = jax.__version__
        if jit:
            self.hvp_loop = None  # see LOOP_JIT_NOTE

    def _compile(self, fn):
        return self.jax.jit(fn) if self.jit else fn

    def _ready(self, a):
        return np.asarray(self.jax.block_until_ready(a))

    def _hvp_fn(self, f):
        jax = self.jax
        return self._compile(lambda x, v: jax.jvp(jax.grad(f), (x,), (v,))[1])

    def hvp_loop(self, n):
        jax, jnp = self.jax, self.jnp
        x, v = _inputs(n)
        # A list of 0-d arrays, as the scalar-loop benchmark passes JAX: no gather per x[i].
        xs = [jnp.asarray(a) for a in x]
        vs = [jnp.asarray(a) for a in v]

        def f(xs):
            return rosenbrock(xs, jnp)

        g, h = jax.grad(f), self._hvp_fn(f)
        return (lambda: self._ready(jnp.stack(g(xs)))), (lambda: self._ready(jnp.stack(h(xs, vs))))

    def hvp_vec(self, n):
        jax, jnp = self.jax, self.jnp
        x, v = (jnp.asarray(a) for a in _inputs(n))

        def f(x):
            return arrays.rosenbrock(jnp, x)

        g, h = self._compile(jax.grad(f)), self._hvp_fn(f)
        return (lambda: self._ready(g(x))), (lambda: self._ready(h(x, v)))

    def dense(self, n):
        jax, jnp = self.jax, self.jnp
        A, Bm, x = (jnp.asarray(a) for a in _dense_data(n))

        def f(x):
            return dense_objective(jnp, x, A, Bm)

        h, hess = self._hvp_fn(f), self._compile(jax.hessian(f))
        eye = list(jnp.eye(n))
        return ((lambda: self._ready(jnp.stack([h(x, e) for e in eye]))),
                (lambda: self._ready(hess(x))))

    def gradgrad(self, k):
        jax, jnp = self.jax, self.jnp

        def f(x):
            return chain(x, jnp, k)

        g, gg = self._compile(jax.grad(f)), self._compile(jax.grad(jax.grad(f)))
        return (lambda: float(g(0.7))), (lambda: float(gg(0.7)))


def load_peers(log=print):
    """The peers that import; a note (with how to install it) for each that does not."""
    out = []
    for name, make in (("torch", TorchPeer), ("jax jit", lambda: JaxPeer(True)),
                       ("jax eager", lambda: JaxPeer(False))):
        try:
            out.append(make())
        except ImportError as exc:
            hint = INSTALL_HINTS[Torch] if name == "torch" else 'pip install ".[bench]"'
            log(f"note: second order: {name} skipped (not installed: {exc}; {hint})")
            out.append(name)  # a name alone: not installed
    return out


# --- the section -----------------------------------------------------------------------------

COLUMNS = [("library", -10), ("n", 9), ("time", 9), ("denominator", 11), ("ratio", 7),
           ("target", 9), ("how, and what else", -44), ("check", -5)]


class Section:
    def __init__(self, revad, args, record):
        self.revad, self.record = revad, record
        self.quick = args.quick
        self.repeat = args.repeat or (3 if args.quick else 7)
        self.budget = QUICK_BUDGET_S if args.quick else BUDGET_S
        self.sizes = QUICK_SIZES if args.quick else SIZES
        self.entries = None  # revad's tape entries for grad(grad(chain)), for every library
        self.revad_s = {}  # case -> revad's time of the second-order call

    def row(self, case, impl, n, cells, **fields):
        _row([impl, f"{n:,}", *cells], [w for _, w in COLUMNS])
        self.record(workload=f"second:{case}", case=case, impl=impl, n=n, **fields)

    def note(self, case, impl, n, note):
        target = TARGETS.get(case) if impl == "revad" else None
        fields = {} if target is None else {"target": target}
        self.row(case, impl, n, ["-", "-", "-", "" if target is None else f"<= {target:g}", note,
                                 "-"], note=note, **fields)

    def measure(self, case, lib, n, warm=True):
        """Check-call both sides, then time them in paired rounds; print and record the row."""
        base, other = getattr(lib, case)(n)
        first_s = None
        if warm:  # an untimed call: a jit compiles, caches fill
            t0 = time.perf_counter()
            base(), other()
            first_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        base_result = base()
        tb = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = other()
        to = time.perf_counter() - t0
        status = check(case, n, base_result, result)
        repeat = self.repeat
        if (tb + to) * repeat > self.budget:
            repeat = max(1, min(SLOW_REPEAT, int(self.budget / (tb + to))))
        # Each batch after an untimed call of its own: each side's steady cost, not its cost
        # right after the other (timing.paired). revad always; a peer where the budget has room.
        warm_each = lib.impl == "revad" or 2 * (tb + to) * repeat <= self.budget
        progress.step(f"second order: {TITLES[case]}, {lib.impl} n={n:,}",
                      (tb + to) * repeat * (1 + warm_each))
        p = paired(base, other, repeat=repeat, first=(tb, to), warm_each=warm_each)
        target = TARGETS.get(case)
        extra = [lib.method[case]]
        fields = {"time_s": p.other, "base_s": p.base, "ratio": p.ratio, "check": status,
                  "method": lib.method[case], "rounds": repeat}
        if target is not None:
            fields["target"] = target
        if case == "sparse":
            colours = _colours(result, getattr(lib, "sparse_fn", None))
            fields["colours"] = colours
            fields["nnz"] = int(getattr(result, "nnz", -1))
            extra.append(f"{colours} colours" if colours is not None
                         else f"nnz {fields['nnz']:,} (colours not reported)")
        if case == "gradgrad" and self.entries:
            ns = p.other / self.entries * 1e9
            fields.update(entries=self.entries, ns_per_entry=ns)
            extra.append(f"{ns:,.0f} ns/entry")
        if lib.impl == "revad":
            self.revad_s[case] = p.other
        elif case in self.revad_s:
            fields["to_revad"] = p.other / self.revad_s[case]
            extra.append(f"{fields['to_revad']:.3g}x revad's time")
        if getattr(lib, "jit", False) and first_s is not None:
            fields["first_call_s"] = first_s
            extra.append(f"first calls {_fmt_time(first_s)}: compile")
        target_cell = ""
        if target is not None and lib.impl == "revad":
            target_cell = f"<= {target:g}" + ("" if p.ratio <= target else " !")
        self.row(case, lib.impl, n, [_fmt_time(p.other), _fmt_time(p.base), f"{p.ratio:.3g}x",
                                     target_cell, "; ".join(extra), status], **fields)

    def fit(self, case, lib, n):
        """The largest of n, n/10, n/100 at which a peer's row fits the budget, from one call
        of each side at the smallest (which also warms the peer up); None and a note if none."""
        sizes = [s for s in (n, n // 10, n // 100) if s >= 10]
        small = sizes[-1]
        progress.step(f"second order: {TITLES[case]}, {lib.impl} n={small:,} (to estimate n)")
        base, other = getattr(lib, case)(small)
        t0 = time.perf_counter()
        base(), other()
        per_element = (time.perf_counter() - t0) / small
        for s in sizes:  # the check call and SLOW_REPEAT rounds
            if per_element * s * (1 + SLOW_REPEAT) <= self.budget:
                return s
        if per_element * small * 2 <= self.budget:
            return small  # one round: a call of seconds, thousands of times revad's
        self.note(case, lib.impl, small, f"not run: ~{per_element * small:.2g} s a call at "
                                         f"n = {small:,} (budget {self.budget:g} s)")
        return None

    def case(self, case, peers):
        n = self.sizes[case]
        label = f"n = {n:,}" if case != "gradgrad" else f"{n} steps, {4 * n} ops"
        print(f"\n  {TITLES[case]}, {label}")
        if case == "gradgrad":
            self.entries = Revad(self.revad).entries(n)
        revad = Revad(self.revad)
        if case == "sparse" and revad.sparse(min(n, 10)) is None:
            self.note(case, "revad", n, NOT_AVAILABLE)
        else:
            self.measure(case, revad, n)
        for lib in peers:
            if self.quick and getattr(lib, "impl", lib) == "jax eager":
                continue  # seconds of dispatch in a smoke test: the full run has it
            if isinstance(lib, str):
                if case != "sparse":
                    self.note(case, lib, n, "not installed")
                continue
            if case == "sparse":
                continue  # no peer makes a sparse Hessian
            if getattr(lib, case, None) is None:
                self.note(case, lib.impl, n, LOOP_JIT_NOTE)
                continue
            m = self.fit(case, lib, n) if case == "hvp_loop" else n
            if m is not None:
                self.measure(case, lib, m, warm=case != "hvp_loop")


def _colours(H, hessian_fn):
    """The colours a sparse Hessian used, where revad says (on the result or the function)."""
    for obj in (H, hessian_fn, getattr(hessian_fn, "info", None),
                getattr(H, "info", None)):
        for name in ("n_colors", "n_colours", "colors", "colours", "ncolors"):
            c = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
            if c is None or callable(c):
                continue
            if np.ndim(c):  # a colour per column
                return len(set(np.asarray(c).ravel().tolist()))
            return int(c)
    return None


def run(revad, args, record):
    """The section, when --only selects it (all sections by default)."""
    if args.only and "second" not in args.only:
        return
    print("\n[second] second order: each ratio is the median of paired rounds of the second-order "
          "call against the same\n  library's own denominator (its gradient, or n of its "
          "HVPs); times are medians of the same rounds")
    peers = [] if getattr(args, "no_peers", False) else load_peers()
    section = Section(revad, args, record)
    _row([h for h, _ in COLUMNS], [w for _, w in COLUMNS])
    for case in ("hvp_loop", "hvp_vec", "sparse", "dense", "gradgrad"):
        section.case(case, peers)
    print("  (ratio: the second-order call over its denominator; '!' marks a revad ratio above "
          "issue 17's target)")
