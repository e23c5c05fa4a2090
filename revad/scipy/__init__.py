"""SciPy's functions on revad's Vars and Arrays, as ``autograd.scipy`` offers them
(``revad.scipy.special``, ``.stats``, ``.linalg``, ``.signal``, ``.integrate``).

``import revad.scipy.special as sp`` and ``import revad.scipy.stats as st`` give functions of
SciPy's names whose values are SciPy's and whose gradients revad records. SciPy itself stays
optional for revad: only this package needs it.

>>> import revad.scipy.special as sp
>>> round(float(sp.gammaln(4.0)), 6)
1.791759
"""


def _require_scipy():
    """SciPy, or an ImportError that says revad.scipy needs it."""
    try:
        import scipy.special  # type: ignore[import-untyped]  # noqa: F401
    except ImportError as e:  # pragma: no cover - exercised without SciPy only
        raise ImportError("revad.scipy needs SciPy: pip install scipy") from e


_require_scipy()
