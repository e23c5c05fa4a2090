"""SciPy's distributions on revad's Vars and Arrays, as ``autograd.scipy.stats`` offers them:
``from revad.scipy.stats import norm; norm.logpdf(x, loc, scale)``. Each function gives SciPy's
value (on plain data, SciPy's own result) and records its gradient in every argument that has
one (the modules say which do not).

>>> import numpy as np, revad
>>> from revad.scipy.stats import norm
>>> round(float(norm.logpdf(revad.Var(0.0)).value), 6)
-0.918939
"""
from revad.scipy.stats import beta, chi2, dirichlet, gamma, multivariate_normal, norm, poisson, t

__all__ = ["beta", "chi2", "dirichlet", "gamma", "multivariate_normal", "norm", "poisson", "t"]
