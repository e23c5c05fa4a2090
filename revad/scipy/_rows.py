"""The rows of SciPy's special functions: each function with its partial in each argument, as
SciPy/NumPy calls on whole arrays. A call records one ufunc-pair group (group_pair.h): the
values are SciPy's, the partials are computed here once, at record time, and saved on the tape,
so that the backward and the tangent sweep run in C.

A row is ``name: (function, partials)``; partials has one entry per argument: a function of
(the arguments' values..., the output's values) giving d(output)/d(argument), or a string, the
reason the argument has no derivative here (a Var or Array there raises TypeError saying so;
a constant is fine).
"""
import numpy as np
import scipy.special as ss  # type: ignore[import-untyped]

from revad import _array, _core
from revad.scipy import _lift

_SQRT_PI = 1.7724538509055160
_SQRT_2PI = 2.5066282746310002
_LOG_SQRT_2PI = 0.9189385332046727


def _x_over(x, y):
    """x / y, 0 where x == 0 (where the function is 0 along y: xlogy(0, y) and the like)."""
    return np.where(x == 0, 0.0, x / y)


def _dgammainc_dx(a, x, y):
    """d/dx of the regularised lower incomplete gamma function: x^(a-1) e^-x / Gamma(a)."""
    return np.exp(ss.xlogy(a - 1.0, x) - x - ss.gammaln(a))


def _drgamma(x, y):
    """d/dx 1/Gamma(x) = -psi(x)/Gamma(x); at the poles of Gamma (x = -k), (-1)^k k!."""
    k = -np.asarray(x)
    pole = (k >= 0) & (k == np.floor(k))
    d = -y * ss.digamma(x)
    return np.where(pole, (-1.0) ** np.where(pole, k, 0) * ss.gamma(np.where(pole, k, 0) + 1.0), d)


def _dive_dx(v, x, y):
    """d/dx of ive(v, x) = iv(v, x) e^-|x|: iv' e^-|x| - sign(x) ive, where
    iv' = (iv(v-1) + iv(v+1)) / 2."""
    return 0.5 * (ss.ive(v - 1.0, x) + ss.ive(v + 1.0, x)) - np.sign(x) * y


def _dbetainc_dx(a, b, x, y):
    """d/dx of the regularised incomplete beta function: the beta density."""
    return np.exp(ss.xlogy(a - 1.0, x) + ss.xlog1py(b - 1.0, -x) - ss.betaln(a, b))


def _dstdtr_dt(df, t, y):
    """d/dt of Student's t distribution function: its density (scipy.stats.t's formula)."""
    return np.exp(np.log(ss.poch(0.5 * df, 0.5)) - 0.5 * (np.log(df) + np.log(np.pi))
                  - (df + 1.0) / 2.0 * np.log1p(t * t / df))


_ORDER = "no derivative in the order is available from SciPy; pass a constant order"
_INTEGER = "an integer argument has no derivative; pass a constant"
_SHAPE = ("no closed form for the derivative in a shape parameter; pass a constant "
          "(revad.primitive can supply one)")
_SHAPE_A = ("no closed form for the derivative in the shape a; pass a constant a "
            "(revad.primitive can supply one)")

ROWS = {
    "gammaln": (ss.gammaln, (lambda x, y: ss.digamma(x),)),
    "psi": (ss.psi, (lambda x, y: ss.polygamma(1, x),)),
    "gamma": (ss.gamma, (lambda x, y: y * ss.digamma(x),)),
    "rgamma": (ss.rgamma, (_drgamma,)),
    "beta": (ss.beta, (lambda a, b, y: y * (ss.digamma(a) - ss.digamma(a + b)),
                       lambda a, b, y: y * (ss.digamma(b) - ss.digamma(a + b)))),
    "betaln": (ss.betaln, (lambda a, b, y: ss.digamma(a) - ss.digamma(a + b),
                           lambda a, b, y: ss.digamma(b) - ss.digamma(a + b))),
    "erfc": (ss.erfc, (lambda x, y: (-2.0 / _SQRT_PI) * np.exp(-x * x),)),
    "erfinv": (ss.erfinv, (lambda x, y: (0.5 * _SQRT_PI) * np.exp(y * y),)),
    "erfcinv": (ss.erfcinv, (lambda x, y: (-0.5 * _SQRT_PI) * np.exp(y * y),)),
    "logit": (ss.logit, (lambda p, y: 1.0 / (p * (1.0 - p)),)),
    "xlogy": (ss.xlogy, (lambda x, z, y: np.log(z), lambda x, z, y: _x_over(x, z))),
    "xlog1py": (ss.xlog1py, (lambda x, z, y: np.log1p(z), lambda x, z, y: _x_over(x, 1.0 + z))),
    "i0": (ss.i0, (lambda x, y: ss.i1(x),)),
    "i1": (ss.i1, (lambda x, y: ss.ivp(1.0, x),)),
    "iv": (ss.iv, (_ORDER, lambda v, x, y: ss.ivp(v, x))),
    "ive": (ss.ive, (_ORDER, _dive_dx)),
    "j0": (ss.j0, (lambda x, y: -ss.j1(x),)),
    "j1": (ss.j1, (lambda x, y: ss.jvp(1.0, x),)),
    "jv": (ss.jv, (_ORDER, lambda v, x, y: ss.jvp(v, x))),
    "y0": (ss.y0, (lambda x, y: -ss.y1(x),)),
    "y1": (ss.y1, (lambda x, y: ss.yvp(1.0, x),)),
    "yn": (ss.yn, (_INTEGER, lambda n, x, y: ss.yvp(n, x))),
    "gammainc": (ss.gammainc, (_SHAPE_A, _dgammainc_dx)),
    "gammaincc": (ss.gammaincc, (_SHAPE_A, lambda a, x, y: -_dgammainc_dx(a, x, y))),
    "entr": (ss.entr, (lambda x, y: -(np.log(x) + 1.0),)),
    "kl_div": (ss.kl_div, (lambda x, z, y: np.log(x / z), lambda x, z, y: 1.0 - x / z)),
    "rel_entr": (ss.rel_entr, (lambda x, z, y: np.log(x / z) + 1.0,
                               lambda x, z, y: -_x_over(x, z))),
    "ndtr": (ss.ndtr, (lambda x, y: np.exp(-0.5 * x * x) / _SQRT_2PI,)),
    "log_ndtr": (ss.log_ndtr, (lambda x, y: np.exp(-0.5 * x * x - _LOG_SQRT_2PI - y),)),
    "ndtri": (ss.ndtri, (lambda p, y: _SQRT_2PI * np.exp(0.5 * y * y),)),
    "poch": (ss.poch, (lambda z, m, y: y * (ss.digamma(z + m) - ss.digamma(z)),
                       lambda z, m, y: y * ss.digamma(z + m))),
    "stdtr": (ss.stdtr, (_SHAPE, _dstdtr_dt)),
    "betainc": (ss.betainc, (_SHAPE, _SHAPE, _dbetainc_dx)),
}
if hasattr(ss, "betaincc"):  # SciPy >= 1.11
    ROWS["betaincc"] = (ss.betaincc, (_SHAPE, _SHAPE, lambda a, b, x, y: -_dbetainc_dx(a, b, x, y)))
# The same rows by SciPy's ufunc object, for __array_ufunc__ (digamma is psi).
_BY_UFUNC = {fn: (name, partials) for name, (fn, partials) in ROWS.items()}


def call(name, fn, partials, args):
    """fn(*args) recorded as one ufunc-pair group with the given partials (see the module)."""
    if len(args) != len(partials):
        raise TypeError(f"revad: scipy.special.{name} takes {len(partials)} argument(s), got "
                        f"{len(args)}")
    args = tuple(_lift.operand(a, none=False) for a in args)
    _core._quiet(1)  # values a replay recomputes (_Rerun): no guards on them (revad.trace)
    try:
        vals = [np.asarray(a.value, np.float64) if _lift.is_node(a) else a for a in args]
    finally:
        _core._quiet(-1)
    for a, p in zip(args, partials, strict=True):
        if isinstance(p, str) and _lift.is_node(a):
            raise TypeError(f"revad: scipy.special.{name} is not differentiable in this "
                            f"argument: {p}")
    with np.errstate(all="ignore"):
        y = np.asarray(fn(*vals))
        if y.dtype.kind not in "biuf":
            raise TypeError(f"revad: scipy.special.{name} gave dtype {y.dtype}; complex numbers "
                            "are not supported")
        y = y.astype(np.float64, copy=False)
        ds = [p(*vals, y) if _lift.is_node(a) else None
              for a, p in zip(args, partials, strict=True)]

    def recorded(nodes, y_node):  # the partials again, on recorded nodes (revad._nested)
        return [p(*nodes, y_node) if _lift.is_node(a) else None
                for a, p in zip(args, partials, strict=True)]

    return _array._pair(y, args, ds, recorded,
                        _Rerun(name, fn, partials, [None if _lift.is_node(a) else a
                                                    for a in args]))


class _Rerun:
    """The row at new values of its operands (revad.trace's replay): (values, the partials of
    each operand on the tape). Pickled by the row's name where it is one of ROWS."""

    def __init__(self, name, fn, partials, consts):
        self.name, self.fn, self.partials, self.consts = name, fn, partials, consts

    def __call__(self, node_values):
        it = iter(node_values)
        vals = [np.asarray(next(it), np.float64) if c is None else c for c in self.consts]
        with np.errstate(all="ignore"):
            y = np.asarray(self.fn(*vals)).astype(np.float64, copy=False)
            ds = [p(*vals, y) for c, p in zip(self.consts, self.partials, strict=True)
                  if c is None]
        return y, ds

    def __reduce__(self):
        if ROWS.get(self.name, (None, None)) == (self.fn, self.partials):
            return _rerun_row, (self.name, self.consts)
        return _Rerun, (self.name, self.fn, self.partials, self.consts)


def _rerun_row(name, consts):
    fn, partials = ROWS[name]
    return _Rerun(name, fn, partials, consts)


def apply_ufunc(ufunc, method, inputs, kwargs):
    """SciPy's ufunc reached through __array_ufunc__ of an Array or a Var: its row's group, or
    None if it has no row (the caller raises)."""
    row = _BY_UFUNC.get(ufunc)
    if row is None:
        return None
    name, partials = row
    if method != "__call__" or kwargs:
        what = f"method {method!r}" if method != "__call__" else f"arguments {sorted(kwargs)}"
        raise TypeError(f"revad: scipy.special.{name} with {what} is not supported on revad "
                        "Vars and Arrays")
    return call(name, ufunc, partials, inputs)
