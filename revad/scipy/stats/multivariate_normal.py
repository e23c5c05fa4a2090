"""scipy.stats.multivariate_normal's pdf and logpdf on revad's Vars and Arrays, differentiable
in x, mean and cov (a recorded Cholesky factor: revad.numpy.linalg). cdf and logcdf are
refused: SciPy integrates them numerically, with no derivative.

>>> import numpy as np, revad
>>> from revad.scipy.stats import multivariate_normal as mvn
>>> g = revad.grad(lambda m: mvn.logpdf(np.array([1.0, 2.0]), m, np.eye(2)))(np.zeros(2))
>>> g
array([1., 2.])
"""
import numpy as np

from revad import _array
from revad.scipy import _lift

_LOG_2PI = 1.8378770664093453


def _make(name):
    import scipy.stats  # type: ignore[import-untyped]

    ref = getattr(scipy.stats.multivariate_normal, name)

    def f(x, mean=None, cov=1, allow_singular=False):
        nodes, (x, mean, cov) = _lift.operands(x, mean, cov)
        if not nodes:
            return ref(x, mean, cov, allow_singular=allow_singular)
        xv = np.asarray(_lift.values(x), np.float64)
        mv = None if mean is None else np.asarray(_lift.values(mean), np.float64)
        cv = np.asarray(_lift.values(cov), np.float64)
        ref(xv, mv, cv, allow_singular=allow_singular)  # SciPy's checks of the values
        dim = xv.shape[-1] if xv.ndim else (mv.size if mv is not None and mv.ndim else 1)
        if allow_singular:
            raise TypeError(f"revad: multivariate_normal.{name}: allow_singular=True is not "
                            "supported on Vars and Arrays")
        d = x if mean is None else x - mean
        if type(d) is not _array.Array:
            d = _array.array(d)
        d = np.reshape(d, d.shape[:-1] + (dim,)) if d.ndim else np.reshape(d, (dim,))
        if _lift.is_node(cov):
            c = _array.array(cov) if type(cov) is not _array.Array else cov
            c = c * np.eye(dim) if c.ndim == 0 else (np.diag(c) if c.ndim == 1 else c)
            chol = np.linalg.cholesky(c)  # recorded (revad._linalg): differentiable in cov
            # u = L^-1 d: each row of d whitened, (x - mean) with identity covariance
            u = np.swapaxes(np.linalg.solve(chol, np.reshape(d, (-1, dim)).T), 0, 1)
            u = np.reshape(u, d.shape)
        else:
            c = cv * np.eye(dim) if cv.ndim == 0 else (np.diag(cv) if cv.ndim == 1 else cv)
            chol = np.linalg.cholesky(c)
            w = np.linalg.inv(chol).T  # whitening: (x - mean) @ w has identity covariance
            w.setflags(write=False)
            u = d @ w
        logdet = 2.0 * np.sum(np.log(np.diagonal(chol)))
        r = -0.5 * (dim * _LOG_2PI + logdet) - 0.5 * np.sum(u * u, axis=-1)
        return np.exp(r) if name == "pdf" else r
    f.__name__, f.__qualname__ = name, f"multivariate_normal.{name}"
    f.__doc__ = (f"scipy.stats.multivariate_normal.{name}(x, mean=None, cov=1): SciPy's value, "
                 f"differentiable in x, mean and cov.\n\n"
                 f"    >>> import numpy as np, revad, scipy.stats\n"
                 f"    >>> from revad.scipy.stats import multivariate_normal as mvn\n"
                 f"    >>> m = revad.Array([0.5, -1.0])\n"
                 f"    >>> cov = np.array([[2.0, 0.3], [0.3, 1.0]])\n"
                 f"    >>> ref = scipy.stats.multivariate_normal.{name}([1.0, 0.0], m.value, cov)\n"
                 f"    >>> bool(np.allclose(mvn.{name}([1.0, 0.0], m, cov).value, ref, "
                 f"rtol=1e-12))\n"
                 f"    True\n")
    return f


pdf = _make("pdf")
logpdf = _make("logpdf")


def cdf(*args, **kwargs):
    """Refused on Vars and Arrays (SciPy integrates it numerically); SciPy's on plain data.

    >>> import numpy as np
    >>> from revad.scipy.stats import multivariate_normal as mvn
    >>> round(float(mvn.cdf(np.zeros(2), np.zeros(2), np.eye(2))), 6)
    0.25
    """
    import scipy.stats  # type: ignore[import-untyped]

    if any(_lift.is_node(_lift.operand(a)) for a in [*args, *kwargs.values()]):
        raise TypeError("revad: multivariate_normal.cdf is not differentiable (SciPy integrates "
                        "it numerically)")
    return scipy.stats.multivariate_normal.cdf(*args, **kwargs)


def logcdf(*args, **kwargs):
    """Refused on Vars and Arrays, as cdf; SciPy's on plain data.

    >>> import numpy as np
    >>> from revad.scipy.stats import multivariate_normal as mvn
    >>> round(float(mvn.logcdf(np.zeros(2), np.zeros(2), np.eye(2))), 6)
    -1.386294
    """
    import scipy.stats  # type: ignore[import-untyped]

    if any(_lift.is_node(_lift.operand(a)) for a in [*args, *kwargs.values()]):
        raise TypeError("revad: multivariate_normal.logcdf is not differentiable (SciPy "
                        "integrates it numerically)")
    return scipy.stats.multivariate_normal.logcdf(*args, **kwargs)

__all__ = ["pdf", "logpdf", "cdf", "logcdf"]
