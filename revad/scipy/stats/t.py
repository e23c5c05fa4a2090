"""scipy.stats.t's functions on revad's Vars and Arrays. The density is differentiable in x,
df, loc and scale; cdf and sf (SciPy's stdtr) in x, loc and scale, not in df (a Var there
raises TypeError: SciPy has no derivative in df).

>>> import numpy as np, revad
>>> from revad.scipy.stats import t
>>> round(float(t.logpdf(revad.Var(0.0), 1.0).value), 6)
-1.14473
"""
import numpy as np

from revad.scipy import special as _sp
from revad.scipy.stats._common import Continuous


def _logpdf(z, df):
    return (np.log(_sp.poch(0.5 * df, 0.5)) - 0.5 * (np.log(df) + np.log(np.pi))
            - (df + 1) / 2 * np.log1p(z * z / df))


pdf, logpdf, cdf, logcdf, sf, logsf = Continuous(
    "t", ("df",), logpdf=_logpdf,
    cdf=lambda z, df: _sp.stdtr(df, z), sf=lambda z, df: _sp.stdtr(df, -z),
    example="(3.5,)").functions()

__all__ = ["pdf", "logpdf", "cdf", "logcdf", "sf", "logsf"]
