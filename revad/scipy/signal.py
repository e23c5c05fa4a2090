"""``scipy.signal`` for revad Arrays: ``convolve`` is differentiable (any number of dimensions,
modes 'full', 'valid' and 'same'); every other name is SciPy's own.

>>> import numpy as np, revad, revad.scipy.signal
>>> k = np.array([1.0, 2.0])
>>> revad.grad(lambda x: np.sum(revad.scipy.signal.convolve(x, k, mode="valid")))(np.ones(3))
array([2., 3., 1.])
"""
import numpy as np
import scipy.signal as _ss  # type: ignore[import-untyped]

from revad._primitive import defjvp, defvjp, primitive


def _full_window(s1, s2, mode):
    """The slices of the full convolution (shape s1 + s2 - 1) that mode keeps."""
    if mode not in ("full", "valid", "same"):
        raise ValueError(f"revad: convolve: mode must be 'full', 'valid' or 'same', got {mode!r}")
    full = [n1 + n2 - 1 for n1, n2 in zip(s1, s2, strict=True)]
    if mode == "full":
        size = full
    elif mode == "same":
        size = list(s1)
    else:
        size = [abs(n1 - n2) + 1 for n1, n2 in zip(s1, s2, strict=True)]
    start = [(f - n) // 2 for f, n in zip(full, size, strict=True)]
    return full, start


def _embed(g, full, start):
    """g placed at start in zeros of shape full: the adjoint of taking that window."""
    for ax, (f, s) in enumerate(zip(full, start, strict=True)):
        n = np.shape(g)[ax]
        shape = list(np.shape(g))
        parts = []
        if s:
            shape[ax] = s
            parts.append(np.zeros(shape))
        parts.append(g)
        if f - s - n:
            shape[ax] = f - s - n
            parts.append(np.zeros(shape))
        if len(parts) > 1:
            g = np.concatenate(parts, axis=ax)
    return g


def _flip(x):
    return x[(slice(None, None, -1),) * np.ndim(x)]


def _convolve_vjp(k):
    def maker(ans, in1, in2, mode="full", method="auto"):
        other = in2 if k == 0 else in1
        full, start = _full_window(np.shape(in1), np.shape(in2), mode)
        return lambda g: convolve(_embed(g, full, start), _flip(other), mode="valid",
                                  method=method)
    return maker


def _convolve_jvp(k):
    def maker(g, ans, in1, in2, mode="full", method="auto"):
        return _ss.convolve(g, in2, mode, method) if k == 0 else _ss.convolve(in1, g, mode, method)
    return maker


convolve = primitive(_ss.convolve)
defvjp(convolve, _convolve_vjp(0), _convolve_vjp(1))
defjvp(convolve, _convolve_jvp(0), _convolve_jvp(1))


def __getattr__(name):
    if name.startswith("__"):  # (not _ss's __all__ and the like: this module's own)
        raise AttributeError(name)
    return getattr(_ss, name)
