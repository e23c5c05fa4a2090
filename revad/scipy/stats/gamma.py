"""scipy.stats.gamma's functions on revad's Vars and Arrays. The density is differentiable in
x, a, loc and scale; cdf and sf (gammainc) in x, loc and scale, not in a (TypeError).

>>> import numpy as np, revad
>>> from revad.scipy.stats import gamma
>>> round(float(gamma.logpdf(revad.Var(1.0), 2.0).value), 6)
-1.0
"""
from revad.scipy import special as _sp
from revad.scipy.stats._common import Continuous

pdf, logpdf, cdf, logcdf, sf, logsf = Continuous(
    "gamma", ("a",),
    logpdf=lambda z, a: _sp.xlogy(a - 1.0, z) - z - _sp.gammaln(a),
    cdf=lambda z, a: _sp.gammainc(a, z), sf=lambda z, a: _sp.gammaincc(a, z),
    support=(0.0, float("inf")), example="(2.5,)").functions()

__all__ = ["pdf", "logpdf", "cdf", "logcdf", "sf", "logsf"]
