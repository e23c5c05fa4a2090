"""The functional API (autograd / JAX style): transforms that turn f into its gradient.

Each call records f on a private tape: its arguments become leaves, the result is swept once,
and the gradients come back in the structure of the arguments.
"""
import functools
import operator

import numpy as np

from revad import _core, _nested
from revad._array import (
    Array,
    _nests_nodes,
    _private_grad,
    _private_leaf,
    _set_functional_hooks,
    _value_and_grad_call,
)
from revad._core import Var

_REAL_KINDS = "biuf"
_COMPLEX = (complex, np.complexfloating)


class _Nested(Exception):
    """_box met a Var or an Array: the call is a derivative of a derivative (revad._nested)."""


def _box(x, where):
    """Leaves for argument x: (x rebuilt with leaves for its numbers and arrays, the leaves in
    flattening order, unbox) where unbox() returns x's gradient in x's structure.

    Numbers become Var leaves, ndarrays Array leaves (whose gradients come back from the
    adjoint buffer in one slice); the leaves list is what forward mode seeds, in the order in
    which ``_tree`` flattens x's numbers.
    """
    kind = type(x)
    if kind is float or kind is int:  # the common cases first: no tree to walk
        leaves = _core._make_leaves([x])
        return leaves[0], leaves, lambda: leaves[0].grad
    if (kind is list or kind is tuple) and _core._all_real(x):
        leaves = _core._make_leaves(list(x))
        boxed = leaves if kind is list else tuple(leaves)
        return boxed, leaves, lambda: kind(_core._leaf_grads(leaves))
    if kind is Var or kind is Array or (kind is np.ndarray and _nests_nodes(x)):
        raise _Nested()  # a derivative of a derivative: revad._nested records it
    if kind is np.ndarray:
        leaf = _array_leaf(x, where)
        return leaf, [leaf], lambda: _private_grad(leaf)
    if kind is list or kind is tuple:
        parts = [_box(e, f"{where}[{k}]") for k, e in enumerate(x)]
        return (kind([p[0] for p in parts]), [v for p in parts for v in p[1]],
                lambda: kind([p[2]() for p in parts]))
    if kind is dict:
        parts = {k: _box(e, f"{where}[{k!r}]") for k, e in x.items()}
        return ({k: p[0] for k, p in parts.items()}, [v for p in parts.values() for v in p[1]],
                lambda: {k: p[2]() for k, p in parts.items()})
    if not isinstance(x, _COMPLEX) and _core._is_real(x):  # NumPy scalars, bools
        leaves = _core._make_leaves([x])
        return leaves[0], leaves, lambda: leaves[0].grad
    raise TypeError(f"revad: {where} is a {type(x).__name__}; differentiable arguments are real "
                    "numbers, NumPy arrays of reals, or lists, tuples and dicts of them")


def _array_leaf(x, where):
    """An ndarray argument as a revad.Array leaf: its gradient comes back from the adjoints."""
    if x.dtype.kind not in _REAL_KINDS:
        raise TypeError(f"revad: {where} is an array of dtype {x.dtype}; "
                        "differentiate with respect to real numbers only")
    return _private_leaf(x)


def _tree(x, where):
    """Flatten an argument's numbers: (list of them, build(items, as_grads) rebuilding it).

    ``build`` consumes ``items`` (an iterator) in order and rebuilds x's structure, arrays as
    float64 arrays of x's shapes (``as_grads``) or as object arrays of the items.
    """
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in _REAL_KINDS:
            raise TypeError(f"revad: {where} is an array of dtype {x.dtype}; "
                            "differentiate with respect to real numbers only")
        shape, size = x.shape, x.size

        def build(it, as_grads):
            items = [next(it) for _ in range(size)]
            if as_grads:
                return np.array(items, dtype=np.float64).reshape(shape)
            boxed = np.empty(size, dtype=object)
            boxed[:] = items
            return boxed.reshape(shape)

        return x.astype(np.float64, copy=False).ravel().tolist(), build
    if type(x) in (list, tuple):
        kind = type(x)
        parts = [_tree(e, f"{where}[{k}]") for k, e in enumerate(x)]
        return ([v for flat, _ in parts for v in flat],
                lambda it, as_grads: kind([b(it, as_grads) for _, b in parts]))
    if type(x) is dict:
        parts = {k: _tree(e, f"{where}[{k!r}]") for k, e in x.items()}
        return ([v for flat, _ in parts.values() for v in flat],
                lambda it, as_grads: {k: b(it, as_grads) for k, (_, b) in parts.items()})
    if not isinstance(x, _COMPLEX) and _core._is_real(x):
        return [x], lambda it, as_grads: next(it)
    raise TypeError(f"revad: {where} is a {type(x).__name__}; differentiable arguments are real "
                    "numbers, NumPy arrays of reals, or lists, tuples and dicts of them")


def _scalar_output(out):
    """The Var (or, for a result that ignores the inputs, the float) that f returned: a scalar,
    or an array of one element whatever its shape, as autograd accepts ((1,) and (1, 1))."""
    if type(out) is Array or isinstance(out, np.ndarray):
        if out.size != 1:
            kind = "an Array" if type(out) is Array else "an array"
            raise TypeError(f"revad: the function must return a scalar, but it returned {kind} "
                            f"of shape {out.shape}; reduce it (e.g. sum) before differentiating")
        out = out.reshape(())[()]
    if type(out) is Var:
        return out
    if _core._is_real(out):
        return float(out)
    raise TypeError(f"revad: the function must return a scalar (a Var or a real number), "
                    f"but it returned a {type(out).__name__}")


def _argnums(argnums):
    try:
        if isinstance(argnums, (tuple, list)):
            nums = tuple(argnums)
        else:
            nums = (operator.index(argnums),)
    except TypeError:
        nums = ()
    if not nums or not all(isinstance(k, int) for k in nums):
        raise TypeError("revad: argnums must be an int or a non-empty tuple of ints, "
                        f"got {argnums!r}")
    return nums


def value_and_grad(f, argnums=0):
    """Return a function computing ``(f(*args), gradient of f with respect to args[argnums])``.

    The value is a float. The gradient has the structure of the argument: a float for a number,
    a float64 array of the same shape for an array, a list/tuple/dict for a list/tuple/dict;
    for a tuple ``argnums``, a tuple of those. ``f`` receives Vars in place of the numbers and
    a ``revad.Array`` in place of an ndarray (NumPy's functions work on it), and must return a
    scalar.

    >>> import revad
    >>> def rosenbrock(x):
    ...     return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2
    ...                for i in range(len(x) - 1))
    >>> value, g = revad.value_and_grad(rosenbrock)([1.0, 2.0])
    >>> value, g
    (100.0, [-400.0, 200.0])
    """
    nums = _argnums(argnums)
    single = not isinstance(argnums, (tuple, list))

    # The call runs in C (_array_functional.pxi): it boxes the arguments (a repeated argnum
    # once, as in JAX), records f on a private tape, sweeps back from its result and unboxes
    # the gradients, calling _box, _scalar_output and _check_private below for everything else.
    @functools.wraps(f)
    def value_and_grad_f(*args, **kwargs):
        return _value_and_grad_call(f, args, kwargs, argnums, nums, single)

    return value_and_grad_f


def _check_private(out):
    """Raise unless out (not a leaf) was recorded on this call's private tape."""
    if not _core._on_current_tape(out):
        raise ValueError("revad: the function's result was recorded on another computation's "
                         "tape: it combines the arguments with a Var computed outside the "
                         "function. Pass that Var as an argument, or detach() it to use it as a "
                         "constant")


_set_functional_hooks(_box, _scalar_output, _check_private, _nested.value_and_grad, _Nested)


def grad(f, argnums=0):
    """Return a function computing the gradient of scalar-valued ``f``.

    As autograd's / JAX's ``grad``; see ``value_and_grad`` for the structure of the result.

    >>> import numpy as np, revad
    >>> def loss(w, x):
    ...     return revad.sigmoid(w[0] * x[0] + w[1] * x[1] + w[2])   # the seed's example 2
    >>> w, x = np.array([2.0, -3.0, -3.0]), np.array([-1.0, -2.0])
    >>> dw, dx = revad.grad(loss, argnums=(0, 1))(w, x)
    >>> np.round(dw, 3), np.round(dx, 3)
    (array([-0.197, -0.393,  0.197]), array([ 0.393, -0.59 ]))
    """
    value_and_grad_f = value_and_grad(f, argnums)

    @functools.wraps(f)
    def grad_f(*args, **kwargs):
        return value_and_grad_f(*args, **kwargs)[1]

    return grad_f


def elementwise_grad(f, argnums=0):
    """The derivative of a vectorised function, elementwise (autograd's ``elementwise_grad``).

    For ``f`` mapping an array to an array of the same shape, each output element depending only
    on the input element at its position, this is the gradient of ``sum(f(x))``: one backward
    sweep gives every f'(x_i).

    >>> import numpy as np, revad
    >>> revad.elementwise_grad(np.tanh)(np.array([0.0, 1.0]))
    array([1.        , 0.41997434])
    """
    def summed(*args, **kwargs):
        out = f(*args, **kwargs)
        if type(out) is Array:
            return out.sum()
        return sum(out) if isinstance(out, (list, tuple)) else np.sum(out)

    grad_f = grad(summed, argnums)
    functools.update_wrapper(grad_f, f)
    return grad_f


def jacobian(f, argnum=0, sparse=False):
    """The Jacobian of ``f`` in its argument ``argnum`` (a number or an array), as autograd's
    ``jacobian``: shaped ``f(x).shape + x.shape``. f is recorded once; then the Jacobian's
    rows come from reverse sweeps (one per output element) or its columns from tangent sweeps
    (one per input element), whichever are fewer (``jacrev`` and ``jacfwd`` choose one).
    ``sparse=True`` returns a ``scipy.sparse.csr_matrix`` (f(x).size, x.size) from the tape's
    sparsity pattern, by the side whose colouring has fewer colours. Inside a function being
    differentiated (or given Vars and Arrays) the dense form records itself instead, one
    vector-Jacobian product per row, so that it is differentiable again.

    >>> import numpy as np, revad
    >>> revad.jacobian(lambda x: np.array([x[0] * x[1], np.sin(x[0])]))(np.array([0.0, 3.0]))
    array([[3., 0.],
           [1., 0.]])
    """
    from revad import _second, _sparse
    from revad._array import array
    from revad._primitive import make_vjp

    if isinstance(argnum, bool) or not isinstance(argnum, int):
        raise TypeError(f"revad: jacobian takes one argnum, an int; got {argnum!r}")
    sparse = _second._flag(sparse, "jacobian")

    @functools.wraps(f)
    def jacobian_f(*args, **kwargs):
        if not -len(args) <= argnum < len(args):
            raise TypeError(f"revad: jacobian's argnum {argnum} is out of range for "
                            f"{len(args)} positional arguments")
        x = args[argnum]
        if isinstance(x, (list, tuple, dict)):
            raise TypeError("revad: jacobian differentiates in a number or an array; got a "
                            f"{type(x).__name__} (use make_vjp or grad for structures)")
        if sparse or not _second._recorded(args):
            return _sparse.jacobian(f, args, kwargs, argnum, "auto", sparse, "jacobian")
        vjp, ans = make_vjp(f, argnum)(*args, **kwargs)
        if isinstance(ans, (list, tuple, dict)):
            raise TypeError("revad: jacobian needs f to return a number or an array; it "
                            f"returned a {type(ans).__name__}")
        ans = np.asarray(ans, dtype=np.float64)
        # the rows are recorded nodes: stacked on the tape (np.asarray would keep their
        # values only, and an outer derivative would miss what they depend on)
        rows = [vjp(e.reshape(ans.shape)) for e in np.eye(ans.size)]
        if not rows:
            return np.zeros(ans.shape + np.shape(x))
        return np.reshape(array(rows), ans.shape + np.shape(x))

    return jacobian_f
