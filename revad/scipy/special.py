"""SciPy's special functions on revad's Vars and Arrays (``import revad.scipy.special as sp``).

Each function gives SciPy's value. On plain numbers and ndarrays it is SciPy's function itself;
on Vars and Arrays it records one group whose partials SciPy computed too (the ufunc-pair group:
gammaln's is digamma, j0's is -j1; ``revad.scipy._rows`` lists them), or, for logsumexp,
softmax, log_softmax and multigammaln, a few of revad's array ops. SciPy's ufuncs reach the same
rows directly: ``scipy.special.gammaln(x)`` of an Array is recorded too.

An argument without a derivative (the order of a Bessel function, the shape ``a`` of
gammainc) must be a constant there: a Var or Array raises a TypeError saying why.

>>> import numpy as np, revad
>>> import revad.scipy.special as sp
>>> g = revad.grad(lambda x: np.sum(sp.gammaln(x)))(np.array([1.0, 2.0]))
>>> np.round(g, 6)
array([-0.577216,  0.422784])
"""
import numpy as np
import scipy.special as _ss  # type: ignore[import-untyped]

from revad import _array, _core
from revad._core import functions as _functions
from revad.scipy import _lift
from revad.scipy._rows import ROWS as _ROWS
from revad.scipy._rows import call as _call

__all__ = ["beta", "betainc", "betaln", "digamma", "entr", "erf", "erfc", "erfcinv", "erfinv",
           "expit", "gamma", "gammainc", "gammaincc", "gammaln", "i0", "i1", "iv",
           "ive", "j0", "j1", "jv", "kl_div", "log_ndtr", "log_softmax", "logit",
           "logsumexp", "multigammaln", "ndtr", "ndtri", "poch", "polygamma", "psi",
           "rel_entr", "rgamma", "softmax", "stdtr", "xlog1py", "xlogy", "y0", "y1",
           "yn"]
if "betaincc" in _ROWS:  # SciPy >= 1.11
    __all__.append("betaincc")


def _make(name, fn, partials):
    def f(*args):
        if any(_lift.is_node(_lift.operand(a)) for a in args):
            return _call(name, fn, partials, args)
        return fn(*args)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = (f"scipy.special.{name}, differentiable where SciPy has the derivative.\n\n"
                 f"    >>> import numpy as np, revad, scipy.special\n"
                 f"    >>> import revad.scipy.special as sp\n"
                 f"    >>> x = revad.Array([0.3, 0.6])\n"
                 f"    >>> args = (2.0,) * {len(partials) - 1} + (x,)\n"
                 f"    >>> y = sp.{name}(*args)\n"
                 f"    >>> vals = (2.0,) * {len(partials) - 1} + (x.value,)\n"
                 f"    >>> bool(np.allclose(y.value, scipy.special.{name}(*vals), rtol=1e-13))\n"
                 f"    True\n")
    return f


def _row(name):
    fn, partials = _ROWS[name]
    return _make(name, fn, partials)


# One function per row of revad.scipy._rows (the partials live there).
gammaln = _row("gammaln")
psi = _row("psi")
gamma = _row("gamma")
rgamma = _row("rgamma")
beta = _row("beta")
betaln = _row("betaln")
erfc = _row("erfc")
erfinv = _row("erfinv")
erfcinv = _row("erfcinv")
logit = _row("logit")
xlogy = _row("xlogy")
xlog1py = _row("xlog1py")
i0 = _row("i0")
i1 = _row("i1")
iv = _row("iv")
ive = _row("ive")
j0 = _row("j0")
j1 = _row("j1")
jv = _row("jv")
y0 = _row("y0")
y1 = _row("y1")
yn = _row("yn")
gammainc = _row("gammainc")
gammaincc = _row("gammaincc")
entr = _row("entr")
kl_div = _row("kl_div")
rel_entr = _row("rel_entr")
ndtr = _row("ndtr")
log_ndtr = _row("log_ndtr")
ndtri = _row("ndtri")
poch = _row("poch")
stdtr = _row("stdtr")
betainc = _row("betainc")
digamma = psi
if "betaincc" in _ROWS:  # SciPy >= 1.11
    betaincc = _row("betaincc")


def _op_row(name, row, example):
    """A function of revad's op table under SciPy's name (erf; expit, revad's sigmoid)."""
    fn = getattr(_ss, name)

    def f(x):
        x = _lift.operand(x)
        return _functions[row](x) if _lift.is_node(x) else fn(x)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = (f"scipy.special.{name} (revad's {row} on Vars and Arrays).\n\n"
                 f"    >>> import revad.scipy.special as sp\n"
                 f"    >>> import revad\n"
                 f"    >>> round(sp.{name}(revad.Var(0.5)).value, 6)\n"
                 f"    {example}\n")
    return f


erf = _op_row("erf", "erf", "0.5205")  # (values: mpmath)
expit = _op_row("expit", "sigmoid", "0.622459")

_POLYGAMMA_N = "the order n is an integer: no derivative; pass a constant"


def polygamma(n, x):
    """scipy.special.polygamma: the n-th derivative of digamma; d/dx is polygamma(n + 1, x).

    >>> import revad
    >>> import revad.scipy.special as sp
    >>> x = revad.Var(2.0)
    >>> y = sp.polygamma(1, x)
    >>> y.backward()
    >>> round(y.value, 6), round(x.grad, 6)
    (0.644934, -0.404114)
    """
    if not (_lift.is_node(_lift.operand(n)) or _lift.is_node(_lift.operand(x))):
        return _ss.polygamma(n, x)
    return _call("polygamma", _ss.polygamma,
                 (_POLYGAMMA_N, lambda n, x, y: _ss.polygamma(np.asarray(n) + 1, x)), (n, x))


def _max_const(v, axis):
    """The maximum of values v over axis (kept), 0 where it is not finite: a constant shift."""
    if v.size == 0:
        return np.zeros([1] * v.ndim)
    m = np.max(v, axis=axis, keepdims=True)
    return np.where(np.isfinite(m), m, 0.0)


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    """scipy.special.logsumexp: log(sum(b * exp(a))) over axis, computed stably.

    ``b`` scales each term (it may be recorded too); with ``return_sign`` the result is
    ``(log|s|, sign(s))``, the sign a constant ndarray. On plain data: SciPy's own result.

    >>> import numpy as np, revad
    >>> import revad.scipy.special as sp
    >>> x = revad.Array([0.0, np.log(3.0)])
    >>> y = sp.logsumexp(x, b=np.array([1.0, 2.0]))
    >>> round(float(y.value), 6)
    1.94591
    >>> y.backward()
    >>> np.round(x.grad, 6)
    array([0.142857, 0.857143])
    """
    nodes, (a, b) = _lift.operands(a, b)
    if not nodes:
        return _ss.logsumexp(a, axis=axis, b=b, keepdims=keepdims, return_sign=return_sign)
    if type(a) is _core.Var:
        a = _array.array(a)
    if b is None and not return_sign:
        return _array.logsumexp(a, axis=axis, keepdims=keepdims)
    shape = np.shape(a) if b is None else np.broadcast_shapes(np.shape(a), np.shape(b))
    axes = tuple(range(len(shape))) if axis is None else axis
    # SciPy's shift leaves out the terms b zeroes. Comparisons, not values: under a trace, b's
    # zeros and the sum's signs are guarded, not every element (the shift itself is recorded).
    masked = a if np.shape(a) == shape else np.broadcast_to(a, shape)
    if b is not None:
        zero = np.asarray(b == 0)
        if zero.any():
            masked = np.where(np.broadcast_to(zero, shape), -np.inf, masked)
    m = (_array._logsumexp_shift(masked, axes) if _lift.is_node(masked)
         else _max_const(np.asarray(masked, np.float64), axes))
    e = np.exp(a - m)
    s = np.sum(e if b is None else e * b, axis=axes, keepdims=True)
    if return_sign:
        pos, neg, zero = (np.asarray(c, np.float64) for c in (s > 0, s < 0, s == 0))
        sign = np.where(pos + neg + zero > 0, pos - neg, np.nan)  # (nan: SciPy's sign of nan)
        r = np.log(np.abs(s)) + m
    else:
        r = np.log(s) + m
    if not keepdims:
        r = np.squeeze(r, axis=axes)
        if return_sign:
            sign = np.squeeze(sign, axis=axes)
    if return_sign:
        return r, (sign[()] if sign.ndim == 0 else sign)
    return r


def log_softmax(x, axis=None):
    """scipy.special.log_softmax: x - logsumexp(x, axis), computed stably.

    >>> import numpy as np, revad
    >>> import revad.scipy.special as sp
    >>> np.round(sp.log_softmax(revad.Array([0.0, np.log(3.0)])).value, 6)
    array([-1.386294, -0.287682])
    """
    nodes, (x,) = _lift.operands(x)
    if not nodes:
        return _ss.log_softmax(x, axis=axis)
    return x - logsumexp(x, axis=axis, keepdims=True)


def softmax(x, axis=None):
    """scipy.special.softmax: exp(x) / sum(exp(x), axis), computed stably.

    >>> import numpy as np, revad
    >>> import revad.scipy.special as sp
    >>> np.round(sp.softmax(revad.Array([0.0, np.log(3.0)])).value, 6)
    array([0.25, 0.75])
    """
    nodes, (x,) = _lift.operands(x)
    if not nodes:
        return _ss.softmax(x, axis=axis)
    return np.exp(log_softmax(x, axis=axis))


def multigammaln(a, d):
    """scipy.special.multigammaln: the log of the multivariate gamma function of dimension d,
    d (d - 1) / 4 log(pi) + sum over j < d of gammaln(a - j / 2). ``d`` is a constant integer.

    >>> import revad
    >>> import revad.scipy.special as sp
    >>> a = revad.Var(3.0)
    >>> y = sp.multigammaln(a, 2)
    >>> y.backward()
    >>> round(y.value, 6), round(a.grad, 6)
    (1.550195, 1.625941)
    """
    nodes, (a,) = _lift.operands(a)
    if not nodes:
        return _ss.multigammaln(a, d)
    if _lift.is_node(_lift.operand(d)) or not np.isscalar(d) or np.floor(d) != d:
        raise ValueError("revad: multigammaln: d must be a constant integer (SciPy's rule)")
    d = int(d)
    if np.any(np.asarray(a.value) <= 0.5 * (d - 1)):
        raise ValueError(f"revad: multigammaln: every a must be greater than (d - 1) / 2 = "
                         f"{0.5 * (d - 1)} (SciPy's rule)")
    r = d * (d - 1) * 0.25 * np.log(np.pi)
    for j in range(d):  # d terms, each one group over all of a
        r = r + globals()["gammaln"](a - 0.5 * j)
    return r
