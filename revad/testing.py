"""Checking gradients: revad's against central finite differences.

``check_grad`` measures, ``assert_grad_close`` asserts (for pytest), the way
``torch.autograd.gradcheck`` and ``jax.test_util.check_grads`` are used to check one's own code:
a function that detaches a value, mixes in a float taken from a Var, or calls code revad cannot
see gets a wrong gradient without any error, and this is how one finds out.
"""
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from revad import _core
from revad._core import Var, no_grad
from revad._functional import _argnums, _box, _scalar_output, _tree, value_and_grad

__all__ = ["GradCheck", "assert_grad_close", "check_grad"]

# The best step for a central difference balances truncation (~h^2) against rounding (~eps/h):
# h ~ eps^(1/3), about 6e-6 in float64; it is scaled by max(1, |x|).
DEFAULT_EPS = 6e-6
# Entries far below the gradient's overall size are measured against this fraction of it, so
# that finite-difference noise around a zero partial does not read as a 100% error.
_FLOOR = 1e-3


class GradCheck(NamedTuple):
    """What ``check_grad`` found: the largest relative error, and a readable report.

    It unpacks as ``err, report = revad.check_grad(f, x)``; ``str()`` of it is the report.

    >>> import revad
    >>> result = revad.check_grad(lambda x: x * x, 3.0)
    >>> result.max_rel_error < 1e-9
    True
    """

    max_rel_error: float
    report: str

    def __str__(self):
        return self.report

    def __repr__(self):
        return (f"GradCheck(max_rel_error={self.max_rel_error:.3g}, "
                f"report=<{len(self.report.splitlines())} lines>)")


def _as_args(args):
    return args if type(args) is tuple else (args,)


def _value(f, args, nums):
    """f at args as a float, with the arguments in nums boxed as Vars (f sees what grad gives
    it) but nothing recorded."""
    saved = _core._enter_private()
    try:
        with no_grad():
            args = list(args)
            for k in nums:
                args[k] = _box(args[k], f"argument {k}")[0]
            out = _scalar_output(f(*args))
            return out.value if type(out) is Var else float(out)
    finally:
        _core._exit_private(saved)


def _paths(x, where=""):
    """Index labels of x's numbers, in the order of _tree's flattening."""
    if isinstance(x, np.ndarray):
        if x.ndim == 1:
            return [f"{where}[{i}]" for i in range(x.size)]
        return [f"{where}[{', '.join(map(str, ix))}]" for ix in np.ndindex(*x.shape)]
    if type(x) in (list, tuple):
        return [p for k, e in enumerate(x) for p in _paths(e, f"{where}[{k}]")]
    if type(x) is dict:
        return [p for k, e in x.items() for p in _paths(e, f"{where}[{k!r}]")]
    return [where or "(number)"]


def _rel_error(a, b, floor):
    if a == b or (math.isnan(a) and math.isnan(b)):  # equal infinities and nans agree
        return 0.0
    # One side nan or infinite, or opposite infinities.
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf
    return abs(a - b) / max(abs(a), abs(b), floor)


def check_grad(f: Callable[..., Any], args: Any, argnums: Any = None, *, eps: float = DEFAULT_EPS,
               worst: int = 5, order: int = 1) -> GradCheck:
    """Compare revad's gradient of f with central finite differences (``order=2``: revad's
    Hessian, column by column as Hessian-vector products, with central differences of revad's
    gradient; for arguments that are numbers or arrays).

    ``args`` is a tuple of f's positional arguments, or (not a tuple) its only argument; they
    may be what ``grad`` takes (numbers, arrays, lists, dicts). ``argnums`` picks the arguments
    to check (default: all). Each number x_i is moved by h = eps * max(1, |x_i|) both ways, so
    the cost is two evaluations of f per number: meant for small test problems.

    The relative error of one partial is |revad - fd| / max(|revad|, |fd|, 0.001 * G), G being
    the largest partial of all: entries much smaller than the gradient are held to 0.001 of its
    size, since finite differences cannot resolve them. Returns ``GradCheck(max_rel_error,
    report)``; the report tabulates the ``worst`` entries of each argument.

    >>> import numpy as np, revad
    >>> def neuron(w, x):
    ...     return revad.sigmoid(w[0] * x[0] + w[1] * x[1] + w[2])
    >>> w, x = np.array([2.0, -3.0, -3.0]), np.array([-1.0, -2.0])
    >>> err, report = revad.check_grad(neuron, (w, x))
    >>> err < 1e-8
    True
    >>> print(report)                                 # doctest: +ELLIPSIS
    check_grad: max relative error ... over 5 partials (central differences, h = 6e-06 * max(1, |x|))
    argument 0, shape (3,): worst 3 of 3
      index     revad               finite diff.        abs error   rel error
      [...]     ...
    >>> revad.check_grad(neuron, (w, x), argnums=0, order=2).max_rel_error < 1e-6
    True
    """  # noqa: E501 (the example prints its report lines whole)
    args = _as_args(args)
    nums = tuple(range(len(args))) if argnums is None else _argnums(argnums)
    nums = tuple(k % len(args) if -len(args) <= k < len(args) else k for k in nums)
    if any(not 0 <= k < len(args) for k in nums):
        raise TypeError(f"revad: argnums={argnums!r} but there are {len(args)} argument(s)")
    if not _core._is_real(eps) or isinstance(eps, bool):
        raise TypeError(f"revad: eps must be a real number, got {type(eps).__name__}")
    if not eps > 0:
        raise ValueError(f"revad: eps must be positive, got {eps!r}")
    if order not in (1, 2) or isinstance(order, bool):
        raise ValueError(f"revad: check_grad's order is 1 or 2, got {order!r}")
    rows = (_first_order_rows if order == 1 else _second_order_rows)(f, args, nums, eps)
    return _report(rows, eps, worst, "partial" if order == 1 else "second partial",
                   "" if order == 1 else " of the gradient")


def _report(rows, eps, worst, what, of):
    """check_grad's result from its rows."""
    scale = max((max(abs(a), abs(b)) for _, _, es in rows for _, a, b in es
                 if math.isfinite(a) and math.isfinite(b)), default=0.0)
    floor = _FLOOR * scale if scale > 0 else 1.0
    n = sum(len(es) for _, _, es in rows)
    errs = [[_rel_error(a, b, floor) for _, a, b in es] for _, _, es in rows]
    max_err = max((e for es in errs for e in es), default=0.0)

    lines = [f"check_grad: max relative error {max_err:.3g} over {n} {what}{'s' * (n != 1)} "
             f"(central differences{of}, h = {eps:g} * max(1, |x|))"]
    for (k, shape, es), er in zip(rows, errs, strict=True):
        order = sorted(range(len(es)), key=lambda i: -er[i])[:worst]
        lines.append(f"argument {k}, {shape}: worst {len(order)} of {len(es)}")
        lines.append(f"  {'index':<9} {'revad':<19} {'finite diff.':<19} {'abs error':<11} "
                     "rel error")
        for i in order:
            path, a, b = es[i]
            lines.append(f"  {path:<9} {a:<19.12g} {b:<19.12g} {abs(a - b):<11.2g} {er[i]:.2g}")
    return GradCheck(max_err, "\n".join(lines))


def _second_order_rows(f, args, nums, eps):
    """Per argument: (k, shape text, [(index, revad's H[j, i], differences of the gradient)])."""
    from revad._second import hvp

    rows = []
    for k in nums:
        x = args[k]
        if isinstance(x, (list, tuple, dict)):
            raise TypeError(f"revad: check_grad(order=2) takes numbers and arrays; argument {k} "
                            f"is a {type(x).__name__}")
        x = np.asarray(x, dtype=np.float64)
        grad_k = value_and_grad(f, argnums=k)
        moved = list(args)
        entries = []
        for i in range(x.size):
            e = np.zeros(x.size)
            e[i] = 1.0
            col = np.asarray(hvp(f, k)(*args, e.reshape(x.shape) if x.ndim else 1.0),
                             dtype=np.float64).reshape(-1)
            h = eps * max(1.0, abs(x.reshape(-1)[i]))
            moved[k] = (x.reshape(-1) + h * e).reshape(x.shape) if x.ndim else float(x) + h
            up = np.asarray(grad_k(*moved)[1], dtype=np.float64).reshape(-1)
            moved[k] = (x.reshape(-1) - h * e).reshape(x.shape) if x.ndim else float(x) - h
            down = np.asarray(grad_k(*moved)[1], dtype=np.float64).reshape(-1)
            fd = (up - down) / (2 * h)
            entries += [(f"[{j}, {i}]", float(col[j]), float(fd[j])) for j in range(x.size)]
        shape = f"shape {x.shape}" if np.ndim(args[k]) else type(args[k]).__name__
        rows.append((k, shape, entries))
    return rows


def _first_order_rows(f, args, nums, eps):
    """Per argument: (k, shape text, [(path, revad's partial, central difference)])."""
    _, grads = value_and_grad(f, argnums=nums)(*args)
    rows = []  # per argument: (k, shape text, [(path, revad, fd)])
    for k, g in zip(nums, grads, strict=True):
        flat, build = _tree(args[k], f"argument {k}")
        flat = [float(v) for v in flat]
        ad = [float(v) for v in _tree(g, "gradient")[0]]
        fd = []
        for i, x in enumerate(flat):
            h = eps * max(1.0, abs(x))
            up, down = list(flat), list(flat)
            up[i], down[i] = x + h, x - h
            moved = list(args)
            moved[k] = build(iter(up), True)
            f_up = _value(f, moved, nums)
            moved[k] = build(iter(down), True)
            f_down = _value(f, moved, nums)
            fd.append((f_up - f_down) / (up[i] - down[i]))
        if isinstance(args[k], np.ndarray):
            shape = f"shape {np.shape(args[k])}"
        else:
            shape = type(args[k]).__name__
        rows.append((k, shape, list(zip(_paths(args[k]), ad, fd, strict=True))))
    return rows


def assert_grad_close(f: Callable[..., Any], args: Any, argnums: Any = None, *, rtol: float = 1e-5,
                      eps: float = DEFAULT_EPS, worst: int = 5) -> GradCheck:
    """Assert that revad's gradient of f matches central finite differences to ``rtol``.

    Raises ``AssertionError`` carrying ``check_grad``'s report (so pytest shows the worst
    entries); returns the ``GradCheck`` when it passes. Arguments as for ``check_grad``.

    >>> import revad
    >>> from revad.testing import assert_grad_close
    >>> _ = assert_grad_close(lambda x, y: 2 * x * y + y + 3, (40.0, 4.0))
    >>> assert_grad_close(lambda x: x * x.detach(), 3.0)   # detach() cuts one path: wrong
    Traceback (most recent call last):
        ...
    AssertionError: revad's gradient differs from finite differences: max relative error 0.5 > rtol 1e-05
    check_grad: max relative error 0.5 over 1 partial (central differences, h = 6e-06 * max(1, |x|))
    argument 0, float: worst 1 of 1
      index     revad               finite diff.        abs error   rel error
      (number)  3                   6...                3           0.5
    """  # noqa: E501 (the example prints its report lines whole)
    if not _core._is_real(rtol) or isinstance(rtol, bool):
        raise TypeError(f"revad: rtol must be a real number, got {type(rtol).__name__}")
    result = check_grad(f, args, argnums, eps=eps, worst=worst)
    if not result.max_rel_error <= rtol:  # also catches nan
        raise AssertionError(f"revad's gradient differs from finite differences: max relative "
                             f"error {result.max_rel_error:.3g} > rtol {rtol:g}\n{result.report}")
    return result
