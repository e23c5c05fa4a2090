"""Two of the seed's claims, measured.

* ``modes``: forward mode needs one sweep per input, reverse mode one sweep in all. For the
  extended Rosenbrock function of n = 10, 100, 1000 inputs, the whole gradient by n calls of
  ``revad.jvp`` (n recordings, n tangent sweeps) against one ``revad.value_and_grad``; and, on
  one recorded tape, n tangent sweeps against one reverse sweep.
* ``accuracy``: automatic differentiation is exact to rounding, numerical differentiation is
  not. For a few functions, the relative error of forward differences (f(x+h) - f(x)) / h over
  step sizes h = 1e-1 ... 1e-15 against revad's error, both against a 50-digit reference
  (mpmath, when installed; the closed-form derivative in float64 otherwise).
"""
import math

import numpy as np

from . import progress
from .timing import measure
from .workloads import _rosenbrock_start, rosenbrock

SECTIONS = ("modes", "accuracy")
MODE_SIZES = (10, 100, 1000)
QUICK_MODE_SIZES = (10, 100)
STEPS = [10.0 ** -k for k in range(1, 16)]


def _fmt_time(s):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def _row(cells, widths):
    padded = (str(c).rjust(w) if w > 0 else str(c).ljust(-w)
              for c, w in zip(cells, widths, strict=True))
    print("  ".join(padded).rstrip(), flush=True)


# --- forward vs reverse ----------------------------------------------------------------------

MODE_COLUMNS = [("n", 6), ("ops", 7), ("reverse: grad", 13), ("forward: n x jvp", 16),
                ("fwd/rev", 8), ("1 reverse sweep", 15), ("n tangent sweeps", 16), ("fwd/rev", 8),
                ("check", -5)]


def forward_vs_reverse(revad, sizes, repeat, record):
    """Print one row per n; pass each row to record(**row)."""
    from revad import _core

    print("\n[modes] forward vs reverse mode: the whole gradient of extended Rosenbrock, "
          "n inputs\n  forward mode: one jvp per input (each records f and sweeps once); "
          "reverse mode: one value_and_grad")
    widths = [w for _, w in MODE_COLUMNS]
    _row([h for h, _ in MODE_COLUMNS], widths)

    def f(v):
        return rosenbrock(v, revad)

    vg = revad.value_and_grad(f)
    last = None  # (n, seconds of n jvps, seconds of n tangent sweeps) of the last row
    for n in sizes:
        # Both grow as n^2; the jvps of a slow row are timed once, the sweeps repeat + 2 times.
        estimate = None
        if last:
            scale = (n / last[0]) ** 2
            estimate = last[1] * scale + last[2] * scale * (repeat + 2)
        progress.step(f"modes n={n:,}: {n:,} jvps against one value_and_grad", estimate)
        x = _rosenbrock_start(n)
        basis = [[1.0 if j == i else 0.0 for j in range(n)] for i in range(n)]
        eye = np.eye(n)

        def forward():
            return [revad.jvp(f, x, e)[1] for e in basis]

        rev = measure(lambda: vg(x), repeat=repeat)
        slow = n >= 1000  # about a second per call: one sample, no warm-up
        fwd = measure(forward, repeat=1 if slow else repeat, warmup=0 if slow else 1)

        leaves = [revad.Var(v) for v in x]
        y = f(leaves)
        n_ops = revad.tape_info(y)["n_ops"]
        sweeps = measure(lambda: [_core._tangent_sweep(y, leaves, e) for e in eye], repeat=repeat)

        def recorded():
            ls = [revad.Var(v) for v in x]
            return f(ls)

        one_reverse = measure(lambda out: out.backward(), setup=recorded, repeat=repeat)

        g_rev = np.array(rev.result[1])
        g_fwd = np.array(fwd.result)
        g_sweeps = np.array(sweeps.result)
        scale = max(1.0, float(np.max(np.abs(g_rev))))
        err = max(float(np.max(np.abs(g_fwd - g_rev))),
                  float(np.max(np.abs(g_sweeps - g_rev)))) / scale
        status = "ok" if err <= 1e-12 else f"!!! MISMATCH: rel err {err:.2g}"
        _row([n, n_ops, _fmt_time(rev.median), _fmt_time(fwd.median),
              f"{fwd.median / rev.median:.3g}x", _fmt_time(one_reverse.median),
              _fmt_time(sweeps.median),
              f"{sweeps.median / one_reverse.median:.3g}x", status], widths)
        record(workload="modes", n=n, impl="revad", n_ops=n_ops, reverse_s=rev.median,
               forward_jvp_s=fwd.median, reverse_sweep_s=one_reverse.median,
               tangent_sweeps_s=sweeps.median, check=status)
        y = leaves = None  # the tape, freed before the next row
        last = n, fwd.median, sweeps.median
    print("  (forward mode's cost grows with n times the cost of one evaluation; reverse mode's "
          "stays a small multiple of one)")


# --- numerical vs automatic accuracy ---------------------------------------------------------

def _functions(revad):
    """(name, x0, f(x, m) written once for m = math or revad, exact derivative d(M, x) for
    M = mpmath or math)."""
    def neuron(w0, m):  # the CS231n neuron as a function of w0, the others fixed
        return 1 / (1 + m.exp(-(w0 * -1.0 + -3.0 * -2.0 + -3.0)))

    def d_neuron(M, w0):
        s = 1 / (1 + M.exp(-(w0 * -1 + 6 - 3)))
        return s * (1 - s) * -1

    return [
        ("exp(x) at 1", 1.0, lambda x, m: m.exp(x), lambda M, x: M.exp(x)),
        ("neuron df/dw0", 2.0, neuron, d_neuron),
        ("sin(1/x) at 0.1", 0.1, lambda x, m: m.sin(1 / x), lambda M, x: -M.cos(1 / x) / (x * x)),
        ("log(x) at 1e-3", 1e-3, lambda x, m: m.log(x), lambda M, x: 1 / x),
    ]


def _exact(d, x0):
    try:
        import mpmath
    except ImportError:
        return float(d(math, x0)), "closed form in float64"
    with mpmath.workdps(50):
        return float(d(mpmath, mpmath.mpf(x0))), "mpmath, 50 digits"


def accuracy(revad, record):
    """Print the error table; pass each function's row to record(**row)."""
    progress.step("accuracy: finite differences against revad")
    rows = []
    source = None
    for name, x0, f, d in _functions(revad):
        exact, source = _exact(d, x0)
        fx = f(x0, math)
        fd = [abs(((f(x0 + h, math) - fx) / h) - exact) / abs(exact) for h in STEPS]
        ad = revad.grad(lambda x: f(x, revad))(x0)
        err = abs(ad - exact) / abs(exact)
        rows.append((name, fd, err))
        record(workload="accuracy", function=name, x0=x0, exact=exact, steps=STEPS,
               fd_rel_errors=fd, revad_rel_error=err, reference=source)
    print(f"\n[accuracy] relative error of df/dx: forward differences (f(x+h) - f(x))/h for "
          f"step h, and revad\n  (reference: {source})")
    widths = [8] + [max(12, len(name)) for name, _, _ in rows]
    _row(["h"] + [name for name, _, _ in rows], widths)
    for k, h in enumerate(STEPS):
        _row([f"{h:.0e}"] + [f"{fd[k]:.1e}" for _, fd, _ in rows], widths)
    _row(["best fd"] + [f"{min(fd):.1e}" for _, fd, _ in rows], widths)
    _row(["best h"] + [f"{STEPS[int(np.argmin(fd))]:.0e}" for _, fd, _ in rows], widths)
    _row(["revad"] + [f"{err:.1e}" for _, _, err in rows], widths)
    print("  (forward differences trade truncation error ~h against rounding error ~eps/h and "
          "never get much below sqrt(eps) ~ 1e-8; revad is exact to rounding)")


def run(revad, args, record):
    """Run the sections that --only selects (all by default)."""
    wanted = args.only
    if not wanted or "modes" in wanted:
        forward_vs_reverse(revad, QUICK_MODE_SIZES if args.quick else MODE_SIZES,
                           args.repeat or (3 if args.quick else 5), record)
    if not wanted or "accuracy" in wanted:
        accuracy(revad, record)
