"""scipy.stats.norm's functions on revad's Vars and Arrays: x, loc and scale all recorded.

>>> import numpy as np, revad
>>> from revad.scipy.stats import norm
>>> g = revad.grad(lambda m: norm.logpdf(1.0, m, 2.0))(0.0)
>>> round(g, 6)
0.25
"""
from revad.scipy import special as _sp
from revad.scipy.stats._common import Continuous

_LOG_SQRT_2PI = 0.9189385332046727

pdf, logpdf, cdf, logcdf, sf, logsf = Continuous(
    "norm", (),
    logpdf=lambda z: -(z * z) / 2.0 - _LOG_SQRT_2PI,
    cdf=lambda z: _sp.ndtr(z), sf=lambda z: _sp.ndtr(-z),
    logcdf=lambda z: _sp.log_ndtr(z), logsf=lambda z: _sp.log_ndtr(-z)).functions()

__all__ = ["pdf", "logpdf", "cdf", "logcdf", "sf", "logsf"]
