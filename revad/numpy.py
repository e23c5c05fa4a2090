"""``import revad.numpy as np``: NumPy, for code written in autograd's style.

revad's Arrays implement NumPy's own protocols (``__array_ufunc__``, ``__array_function__``), so
NumPy's functions already differentiate them; this module is NumPy's namespace with the few
names that need revad: ``array`` and ``asarray`` (which stack Vars and Arrays on the tape,
and give NumPy's own result for plain data), ``logsumexp``, ``linalg`` (NumPy's,
with revad's differentiable functions), and ``r_`` and ``c_`` (which join Arrays and
Vars on the tape; NumPy's own cannot see them).
A NumPy function revad does not support raises a TypeError naming it.

>>> import revad
>>> import revad.numpy as np
>>> revad.grad(lambda x: np.sum(np.tanh(x) ** 2))(np.array([0.5, -1.0])).round(6)
array([ 0.726862, -1.007065])
"""
import numpy as _np
from numpy import *  # noqa: F403  (the namespace users expect)
from numpy import random  # noqa: F401

from revad import _array
from revad import _linalg as linalg  # type: ignore[no-redef]  # noqa: F401
from revad._array import array, asarray, logsumexp  # type: ignore[no-redef]  # noqa: F401

# NumPy's own r_ and c_ turn Arrays into arrays: these join them on the tape.
r_ = _array.r_  # type: ignore[assignment, misc]
c_ = _array.c_  # type: ignore[assignment, misc]


def __getattr__(name):
    if name == "__path__":  # a module, not a package: see below
        raise AttributeError(name)
    return getattr(_np, name)


# autograd's spellings `import revad.numpy.random as npr` and `from revad.numpy.linalg import
# solve` find this namespace's own submodules (NumPy's random and fft, revad's linalg where it
# has one). Without them, NumPy's packages were imported a second time under revad's name,
# which replaced this module's linalg with NumPy's and failed for fft.
import sys as _sys  # noqa: E402

for _name in ("random", "linalg", "fft"):
    _sys.modules[f"{__name__}.{_name}"] = globals().get(_name) or getattr(_np, _name)
