"""Forward mode on the same tape: JAX's ``jvp``, one tangent sweep in C.

f is recorded once on a private tape, as ``grad`` records it; then ``rv_forward_tangent``
(sweep.h, generated from the same rows as the reverse sweep) carries the tangents from the leaves
to the output.
"""
import numpy as np

from revad import _core, _nested
from revad._array import Array, _check_constants, _slots_of
from revad._core import Var
from revad._functional import _COMPLEX, _box, _check_private, _scalar_output


def _as_args(primals, tangents):
    """(arguments, their tangents) as two tuples; a non-tuple primals is f's only argument."""
    if type(primals) is tuple:
        if type(tangents) not in (tuple, list) or len(tangents) != len(primals):
            raise ValueError(f"revad: primals is a tuple of {len(primals)} arguments, so tangents "
                             "must be a tuple of as many, one per argument, of the same structure; "
                             f"got {_describe(tangents)}")
        return primals, tuple(tangents)
    return (primals,), (tangents,)


def _describe(v):
    if type(v) in (tuple, list):
        return f"a {type(v).__name__} of {len(v)}"
    return f"a {type(v).__name__}"


def _flat_like(x, v, where):
    """The numbers of tangent v as floats, in the order in which x's leaves are made; v must
    have x's structure (an array may stand for a list of numbers and vice versa)."""
    if isinstance(x, np.ndarray):
        va = np.asarray(v)
        if va.dtype.kind not in "biuf":
            raise TypeError(f"revad: {where} must hold real numbers, got dtype {va.dtype}")
        if va.shape != x.shape:
            raise ValueError(f"revad: {where} has shape {va.shape} but its argument {x.shape}")
        return va.astype(np.float64).ravel().tolist()
    if type(x) in (list, tuple):
        if _core._all_real(x):  # the common case, checked in one go
            try:
                va = np.asarray(v)
            except ValueError:  # ragged (NumPy >= 1.24)
                va = None
            if va is not None and va.dtype == object:  # ragged or mixed (older NumPy)
                va = None
            if va is not None and va.shape == (len(x),) and type(v) in (list, tuple, np.ndarray):
                if va.dtype.kind not in "biuf":
                    raise TypeError(f"revad: {where} must hold real numbers, got {va.dtype}")
                return va.astype(np.float64).tolist()
        if isinstance(v, np.ndarray) and v.ndim == 1:
            v = list(v)
        if type(v) not in (list, tuple) or len(v) != len(x):
            raise ValueError(f"revad: {where} must be a list or tuple of {len(x)} like its "
                             f"argument, got {_describe(v)}")
        return [t for k, (e, ve) in enumerate(zip(x, v, strict=True))
                for t in _flat_like(e, ve, f"{where}[{k}]")]
    if type(x) is dict:
        if type(v) is not dict or v.keys() != x.keys():
            raise ValueError(f"revad: {where} must be a dict with the keys of its argument "
                             f"{sorted(map(repr, x))}")
        return [t for k, e in x.items() for t in _flat_like(e, v[k], f"{where}[{k!r}]")]
    # x is a number (the boxing of x has already checked that).
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v[()]
    if isinstance(v, _COMPLEX) or not _core._is_real(v):
        raise TypeError(f"revad: {where} must be a real number like its argument, "
                        f"got {type(v).__name__}")
    return [float(v)]


def _array_tangents(out, leaves, flat):
    """(values, tangents) of an Array result: one tangent sweep, every element's tangent."""
    k = 0
    for leaf in leaves:  # an argument returned as it is
        size = 1 if type(leaf) is Var else leaf.size
        if leaf is out:
            return out.value, np.asarray(flat[k:k + size], dtype=float).reshape(out.shape)
        k += size
    slots = _slots_of(out)
    if slots is None or out.size == 0:  # a constant
        return out.value, np.zeros(out.shape)
    first = out.reshape(-1)[0]
    _check_private(first)
    _check_constants(first)
    return out.value, _core._tangent_sweep(first, leaves, flat, slots)


def jvp(f, primals, tangents):
    """Forward mode: ``(f(*primals), the derivative of f along tangents)``, as JAX's ``jvp``.

    ``primals`` is a tuple of f's positional arguments (as in JAX); anything that is not a
    tuple is f's only argument, so ``jvp(f, x, v)`` works for a number, an array, a list or a
    dict ``x``. Arguments may be whatever ``grad`` takes; ``tangents`` has the same structure.
    f is recorded once on a private tape and one forward (tangent) sweep in compiled code
    computes sum_i df/dx_i * v_i. Both results are floats.

    One sweep gives one directional derivative: a full gradient of n inputs costs n sweeps,
    where the reverse sweep of ``grad`` gives all n at once.

    >>> import numpy as np, revad
    >>> f = lambda x, y: 2 * x * y + y + 3            # the seed's example 1
    >>> revad.jvp(f, (40.0, 4.0), (1.0, 0.0))       # dz/dx
    (327.0, 8.0)
    >>> revad.jvp(f, (40.0, 4.0), (0.0, 1.0))       # dz/dy
    (327.0, 81.0)
    >>> neuron = lambda w: revad.sigmoid(w[0] * -1.0 + w[1] * -2.0 + w[2])
    >>> value, dw0 = revad.jvp(neuron, np.array([2.0, -3.0, -3.0]), np.array([1.0, 0.0, 0.0]))
    >>> round(value, 3), round(dw0, 3)
    (0.731, -0.197)
    """
    args, tans = _as_args(primals, tangents)
    if _core._in_derivative() or any(_nested.holds_nodes(a) for a in args):
        return _nested.jvp(f, args, tans)  # recorded: a jvp inside a derivative
    saved = _core._enter_private()
    try:
        boxed, leaves, flat = [], [], []
        for k, (x, v) in enumerate(zip(args, tans, strict=True)):
            b, lv, _ = _box(x, f"argument {k}")
            boxed.append(b)
            leaves.extend(lv)
            flat.extend(_flat_like(x, v, f"tangent {k}"))
        out = f(*boxed)
        if type(out) is Array and out.size != 1:
            return _array_tangents(out, leaves, flat)
        if isinstance(out, np.ndarray) and out.size != 1:  # constant: not a function of them
            return out, np.zeros(out.shape)
        out = _scalar_output(out)
        if type(out) is not Var:
            return out, 0.0
        if not out.is_leaf:
            _check_private(out)
            _check_constants(out)  # the tangent sweep reads large constants unchecked
        return out.value, _core._tangent_sweep(out, leaves, flat)
    finally:
        _core._exit_private(saved)
