"""What the distributions of revad.scipy.stats share: their functions built from a standard
form (SciPy's own formulas, in z = (x - loc) / scale) with revad's recorded ops and the
special-function rows, and SciPy's own answer on plain data."""
import numpy as np

from revad.scipy import _lift

_NAMES = ("pdf", "logpdf", "cdf", "logcdf", "sf", "logsf")


def _doc(dist, method, shapes, example):
    args = ", ".join(["x", *shapes, "loc=0, scale=1"])
    return (f"scipy.stats.{dist}.{method}({args}): SciPy's value; x, loc, scale and the shape "
            f"parameters may be Vars or Arrays (those of the cdf family: see the module).\n\n"
            f"    >>> import numpy as np, revad, scipy.stats\n"
            f"    >>> from revad.scipy.stats import {dist}\n"
            f"    >>> x = revad.Array([0.3, 0.6])\n"
            f"    >>> args = {example}\n"
            f"    >>> y = {dist}.{method}(x, *args)\n"
            f"    >>> bool(np.allclose(y.value, scipy.stats.{dist}.{method}(x.value, *args), "
            f"rtol=1e-12))\n"
            f"    True\n")


def _split(name, shapes, args, kw):
    """(shape parameters, loc, scale) from SciPy's calling convention."""
    ns = len(shapes)
    if len(args) < ns + 1:
        raise TypeError(f"revad: {name} needs x and the shape parameter(s) {', '.join(shapes)}")
    extra = list(args[ns + 1:])
    loc = extra.pop(0) if extra else kw.pop("loc", 0.0)
    scale = extra.pop(0) if extra else kw.pop("scale", 1.0)
    if extra or kw:
        raise TypeError(f"revad: {name}: unexpected arguments {extra or sorted(kw)}")
    return list(args[1:ns + 1]), loc, scale


def _masked(r, keep, fill):
    """r where keep (a constant bool array) holds, else the constant fill; r itself if keep
    holds everywhere (no extra group)."""
    if np.all(keep):
        return r
    return np.where(keep, r, fill)


class Continuous:
    """The six functions of a continuous distribution from its standard forms.

    logpdf(z, *shapes) is required; cdf, sf, logcdf, logsf default as SciPy's do (logcdf =
    log(cdf)). support: (lo, hi) of z, outside which the density is 0 and the cdf 0 or 1."""

    def __init__(self, dist, shapes, logpdf, cdf, sf, logcdf=None, logsf=None,
                 support=(-np.inf, np.inf), example="()"):
        self.dist, self.shapes, self.support, self.example = dist, shapes, support, example
        self.std = {"logpdf": logpdf, "cdf": cdf, "sf": sf,
                    "logcdf": logcdf or (lambda z, *s: np.log(cdf(z, *s))),
                    "logsf": logsf or (lambda z, *s: np.log(sf(z, *s)))}

    def function(self, method):
        import scipy.stats  # type: ignore[import-untyped]
        ref = getattr(getattr(scipy.stats, self.dist), method)
        name = f"{self.dist}.{method}"

        def f(*args, **kw):
            shapes, loc, scale = _split(name, self.shapes, args, dict(kw))
            nodes, ops = _lift.operands(args[0], loc, scale, *shapes)
            if not nodes:
                return ref(*args, **kw)
            x, loc, scale, *shapes = ops
            with np.errstate(invalid="ignore", divide="ignore"):  # (nan and inf as SciPy's)
                return self._recorded(method, x, loc, scale, shapes)
        f.__name__, f.__qualname__ = method, name
        f.__doc__ = _doc(self.dist, method, self.shapes, self.example)
        return f

    def _recorded(self, method, x, loc, scale, shapes):
        z = (x - loc) / scale
        zv = np.asarray(_lift.values(z))
        lo, hi = self.support
        inside = ~((zv < lo) | (zv > hi))  # (nan inside: the formulas give nan, as SciPy)
        bad = np.asarray(_lift.values(scale)) <= 0
        if method in ("pdf", "logpdf"):
            r = _masked(self.std["logpdf"](z, *shapes) - np.log(scale), inside, -np.inf)
            if method == "pdf":
                r = np.exp(r)
        else:
            r = self.std[method](z, *shapes)
            below = (0.0 if method in ("cdf", "sf") else -np.inf)
            above = 1.0 if method in ("cdf", "sf") else 0.0
            if method in ("sf", "logsf"):
                below, above = above, below
            r = _masked(r, inside | (zv > hi), below)
            r = _masked(r, ~(zv > hi), above)
        return _masked(r, ~bad, np.nan)

    def functions(self):
        return [self.function(m) for m in _NAMES]
