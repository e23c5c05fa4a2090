"""scipy.stats.chi2's functions on revad's Vars and Arrays. The density is differentiable in
x, df, loc and scale; cdf and sf (gammainc) in x, loc and scale, not in df (TypeError).

>>> import numpy as np, revad
>>> from revad.scipy.stats import chi2
>>> round(float(chi2.logpdf(revad.Var(2.0), 2.0).value), 6)
-1.693147
"""
import numpy as np

from revad.scipy import special as _sp
from revad.scipy.stats._common import Continuous

pdf, logpdf, cdf, logcdf, sf, logsf = Continuous(
    "chi2", ("df",),
    logpdf=lambda z, df: (_sp.xlogy(df / 2.0 - 1, z) - z / 2.0 - _sp.gammaln(df / 2.0)
                          - (np.log(2) * df) / 2.0),
    cdf=lambda z, df: _sp.gammainc(df / 2.0, z / 2.0),
    sf=lambda z, df: _sp.gammaincc(df / 2.0, z / 2.0),
    support=(0.0, float("inf")), example="(3.0,)").functions()

__all__ = ["pdf", "logpdf", "cdf", "logcdf", "sf", "logsf"]
