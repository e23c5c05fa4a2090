"""Issue 16's families, one function each: what a gradient through it costs next to NumPy's own
evaluation of the same objective, and the bytes per element its op adds to the tape.

Each row's objective is written once for NumPy; revad's ``value_and_grad`` runs it on an Array
(NumPy's protocols dispatch to revad). The ratio is the paired median of value-and-gradient
over NumPy's evaluation, timed back to back (benchmarks.timing.paired_ratio).
"""
import numpy as np

from . import progress
from .arrays import _tape_growth
from .timing import paired_ratio


def _user_primitive():
    import revad

    @revad.primitive
    def softsign(x):
        return x / (1.0 + np.abs(x))

    revad.defvjp(softsign, lambda ans, x: lambda g: g / (1.0 + np.abs(x)) ** 2)
    return softsign


def _families(n):
    """(family, label, op on an array, the input)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 2.0, n)
    m = max(2, int(round(n ** 0.5 / 4)))  # a matrix with about n / 16 elements
    a = rng.normal(size=(m, m))
    spd = a @ a.T / m + np.eye(m)
    out = [("ufunc row", "log2", np.log2, x),
           ("shapes and selection", "roll", lambda v: np.roll(v, 3) * v, x)]
    try:
        import scipy.special

        import revad.scipy.special  # noqa: F401  (SciPy's ufuncs reach revad through it)
        out.append(("SciPy special (ufunc pair)", "gammaln", scipy.special.gammaln, x))
    except ImportError:
        pass
    out.append(("linear algebra (callback)", f"slogdet {m}x{m}",
                lambda v: np.linalg.slogdet(v)[1], spd))
    out.append(("user primitive", "softsign", _user_primitive(), x))
    return out


def run_families(quick=False):
    import revad
    n = 1000 if quick else 1_000_000
    records = []
    print(f"\n== issue 16's families: value-and-gradient / NumPy's evaluation, bytes per element "
          f"(n = {n:,})")
    print(f"  {'family':<28} {'function':<16} {'grad/numpy':>10} {'bytes/elem':>10}")
    for family, label, op, x in _families(n):
        progress.step(f"families: {label}")

        def objective(v, op=op):
            return np.sum(op(v))

        try:
            vg = revad.value_and_grad(objective)
            vg(x)
            ratio = paired_ratio(lambda: objective(x), lambda: vg(x), repeat=3 if quick else 7)
            (_, nbytes), = _tape_growth(lambda: revad.Array(x), op)
            status = f"{ratio:10.2f} {nbytes / x.size:10.1f}"
            records.append({"workload": f"family:{label}", "impl": "revad", "ratio": ratio,
                            "bytes_per_element": nbytes / x.size, "check": "ok"})
        except (TypeError, NotImplementedError) as e:
            status = f"refused: {e}"[:60]
            records.append({"workload": f"family:{label}", "impl": "revad", "refused": str(e)})
        print(f"  {family:<28} {label:<16} {status}")
    return records
