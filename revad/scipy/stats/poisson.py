"""scipy.stats.poisson's functions on revad's Vars and Arrays: differentiable in mu; k (and
loc) are counts, constants (a Var or Array there raises TypeError).

>>> import numpy as np, revad
>>> from revad.scipy.stats import poisson
>>> g = revad.grad(lambda mu: poisson.logpmf(3, mu))(2.0)
>>> round(g, 6)
0.5
"""
import numpy as np

from revad.scipy import _lift
from revad.scipy import special as _sp
from revad.scipy.stats._common import _masked


def _counts(name, k, loc):
    if _lift.is_node(_lift.operand(k)) or _lift.is_node(_lift.operand(loc)):
        raise TypeError(f"revad: poisson.{name}: k and loc are counts, not differentiable; "
                        "pass constants")
    return np.asarray(k, np.float64) - np.asarray(loc, np.float64)


def _make(name, recorded):
    import scipy.stats  # type: ignore[import-untyped]

    ref = getattr(scipy.stats.poisson, name)

    def f(k, mu, loc=0):
        nodes, (mu,) = _lift.operands(mu)
        kz = _counts(name, k, loc)  # (raises for a Var or Array count)
        if not nodes:
            return ref(k, mu, loc=loc)
        k = kz
        if k.ndim and type(mu) is not _lift.Array:
            mu = _lift.operands(mu, k)[1][0]  # a Var next to an array of counts: an Array
        return recorded(k, mu)
    f.__name__, f.__qualname__ = name, f"poisson.{name}"
    f.__doc__ = (f"scipy.stats.poisson.{name}(k, mu, loc=0): SciPy's value, differentiable in "
                 f"mu.\n\n"
                 f"    >>> import numpy as np, revad, scipy.stats\n"
                 f"    >>> from revad.scipy.stats import poisson\n"
                 f"    >>> mu = revad.Array([0.5, 4.0])\n"
                 f"    >>> y = poisson.{name}(np.array([1, 3]), mu)\n"
                 f"    >>> ref = scipy.stats.poisson.{name}(np.array([1, 3]), mu.value)\n"
                 f"    >>> bool(np.allclose(y.value, ref, rtol=1e-12))\n"
                 f"    True\n")
    return f


def _logpmf(k, mu):
    integer = (k >= 0) & (k == np.floor(k))
    kk = np.where(integer, k, 0.0)
    return _masked(_sp.xlogy(kk, mu) - _sp.gammaln(kk + 1) - mu, integer, -np.inf)


def _cdf(k, mu):
    kk = np.floor(np.maximum(k, 0.0))
    return _masked(_sp.gammaincc(kk + 1, mu), k >= 0, 0.0)


def _sf(k, mu):
    kk = np.floor(np.maximum(k, 0.0))
    return _masked(_sp.gammainc(kk + 1, mu), k >= 0, 1.0)


pmf = _make("pmf", lambda k, mu: np.exp(_logpmf(k, mu)))
logpmf = _make("logpmf", _logpmf)
cdf = _make("cdf", _cdf)
logcdf = _make("logcdf", lambda k, mu: np.log(_cdf(k, mu)))
sf = _make("sf", _sf)
logsf = _make("logsf", lambda k, mu: np.log(_sf(k, mu)))

__all__ = ["pmf", "logpmf", "cdf", "logcdf", "sf", "logsf"]
