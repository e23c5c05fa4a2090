"""scipy.stats.beta's functions on revad's Vars and Arrays. The density is differentiable in
x, a, b, loc and scale; cdf and sf (betainc) in x, loc and scale, not in a or b (TypeError).

>>> import numpy as np, revad
>>> from revad.scipy.stats import beta
>>> round(float(beta.logpdf(revad.Var(0.5), 2.0, 2.0).value), 6)
0.405465
"""
from revad.scipy import special as _sp
from revad.scipy.stats._common import Continuous


def _sf(z, a, b):
    if hasattr(_sp, "betaincc"):
        return _sp.betaincc(a, b, z)
    return 1.0 - _sp.betainc(a, b, z)  # SciPy < 1.11


pdf, logpdf, cdf, logcdf, sf, logsf = Continuous(
    "beta", ("a", "b"),
    logpdf=lambda z, a, b: _sp.xlog1py(b - 1.0, -z) + _sp.xlogy(a - 1.0, z) - _sp.betaln(a, b),
    cdf=lambda z, a, b: _sp.betainc(a, b, z), sf=_sf,
    support=(0.0, 1.0), example="(2.0, 3.0)").functions()

__all__ = ["pdf", "logpdf", "cdf", "logcdf", "sf", "logsf"]
