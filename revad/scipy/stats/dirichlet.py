"""scipy.stats.dirichlet's pdf and logpdf on revad's Vars and Arrays, differentiable in x and
alpha. As SciPy: x holds the components along its first axis (K of them, or K - 1, the last
then 1 - their sum), with further columns for more points.

>>> import numpy as np, revad
>>> from revad.scipy.stats import dirichlet
>>> g = revad.grad(lambda a: dirichlet.logpdf(np.array([0.2, 0.8]), a))(np.array([1.0, 1.0]))
>>> np.round(g, 6)
array([-0.609438,  0.776856])
"""
import numpy as np

from revad import _array
from revad.scipy import _lift
from revad.scipy import special as _sp


def _make(name):
    import scipy.stats  # type: ignore[import-untyped]

    ref = getattr(scipy.stats.dirichlet, name)

    def f(x, alpha):
        nodes, (x, alpha) = _lift.operands(x, alpha)
        if not nodes:
            return ref(x, alpha)
        ref(_lift.values(x), _lift.values(alpha))  # SciPy's checks of the values (raises)
        alpha = _array.array(alpha) if type(alpha) is not _array.Array else alpha
        x = _array.array(x) if type(x) is not _array.Array else x
        k = alpha.shape[0]
        if x.shape[0] == k - 1:
            x = np.concatenate([x, 1.0 - np.sum(x, axis=0, keepdims=True)], axis=0)
        col = np.reshape(alpha, (k,) + (1,) * (x.ndim - 1))
        lnb = np.sum(_sp.gammaln(alpha)) - _sp.gammaln(np.sum(alpha))
        r = np.sum(_sp.xlogy(col - 1.0, x), axis=0) - lnb
        return np.exp(r) if name == "pdf" else r
    f.__name__, f.__qualname__ = name, f"dirichlet.{name}"
    f.__doc__ = (f"scipy.stats.dirichlet.{name}(x, alpha): SciPy's value, differentiable in x "
                 f"and alpha.\n\n"
                 f"    >>> import numpy as np, revad, scipy.stats\n"
                 f"    >>> from revad.scipy.stats import dirichlet\n"
                 f"    >>> a = revad.Array([1.5, 2.0, 3.0])\n"
                 f"    >>> x = np.array([0.2, 0.3, 0.5])\n"
                 f"    >>> ref = scipy.stats.dirichlet.{name}(x, a.value)\n"
                 f"    >>> bool(np.allclose(dirichlet.{name}(x, a).value, ref, rtol=1e-12))\n"
                 f"    True\n")
    return f


pdf = _make("pdf")
logpdf = _make("logpdf")

__all__ = ["pdf", "logpdf"]
