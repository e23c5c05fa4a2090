"""Second order and Jacobians, with JAX's and autograd's names: ``hvp``, ``hessian``,
``jacfwd``, ``jacrev``, ``hessian_vector_product``, ``make_hvp``, ``make_jvp``.

A Hessian-vector product takes one of two routes. In C (``_hessian_products``): f recorded
once on a private tape, then one tangent sweep and one second-order sweep over it (forward over
reverse, ADOL-C's hess_vec: sweep.h's ``rv_second_order``, the op table's second partials); a
Hessian is one such pair of sweeps per column, f still recorded once. Recorded (the first-order
transforms, which nest: revad._nested): reverse over reverse, the gradient of ``grad(f) . v``.
The recorded route serves where C cannot: inside an outer derivative (``grad(hvp(f))``), and
for a tape holding a Python function (``revad.primitive``) or a SciPy function, whose kinds
have no second-order rule in C.
"""
import functools

import numpy as np

from revad import _core, _functional, _nested, _sparse
from revad._array import array
from revad._core import Var
from revad._forward import jvp
from revad._functional import grad


def _single(argnums, what):
    if isinstance(argnums, bool) or not isinstance(argnums, (int, np.integer)):
        raise TypeError(f"revad: {what} takes one argnum, an int; got {argnums!r}")
    return int(argnums)


def _flag(sparse, what):
    if not isinstance(sparse, (bool, np.bool_)):
        raise TypeError(f"revad: {what}'s sparse is True or False; got {sparse!r}")
    return bool(sparse)


def _recorded(args):
    """Whether a call must record itself (inside a derivative, or given Vars and Arrays): then
    the transforms take their nested route, differentiable again, not one private recording."""
    return _core._in_derivative() or any(_nested.holds_nodes(a) for a in args)


def _like(v, x, what):
    """Tangent v checked against argument x: a float64 array of x's shape (a float for a
    number)."""
    if isinstance(x, (list, tuple, dict)):
        raise TypeError(f"revad: {what} differentiates in a number or an array; got a "
                        f"{type(x).__name__}")
    vx = np.asarray(v, dtype=np.float64)
    if vx.shape != np.shape(x):
        raise ValueError(f"revad: {what}: v has shape {vx.shape}, but the argument has shape "
                         f"{np.shape(x)}")
    return vx if np.ndim(x) else float(vx)


def _in_c(args):
    """Whether a second-order call on args may take the C route: no outer derivative is being
    taken (the result must then be recorded, revad._nested) and no argument holds a node."""
    return not _core._in_derivative() and not any(_nested.holds_nodes(a) for a in args)


def _hessian_products(f, args, argnum, V):
    """``(value, gradient, H V)`` of scalar ``f`` in ``args[argnum]`` (a number or a float
    ndarray; the other arguments are constants), f recorded once on a private tape, then one
    tangent and one second-order sweep in C per column of ``V`` (shape ``(x.size, k)``, the
    directions in x's flattened C order). The gradient comes shaped like x, ``H V`` as
    ``(x.size, k)``. None where the C route cannot run: f's tape holds an entry with no
    second-order rule (a Python or SciPy function); the caller then takes the recorded route.
    The caller checks that the call is not nested (``_in_c``).

    The entry point for whatever needs many products of one Hessian (``hessian``: V the
    identity; a sparse Hessian: V the seeds of its colours).
    """
    x = args[argnum]
    V = np.asarray(V, dtype=np.float64)
    if V.ndim != 2 or V.shape[0] != np.size(x):
        raise ValueError(f"revad: V must have shape (x.size, k) = ({np.size(x)}, k); got "
                         f"{V.shape}")

    def record_and_sweep():
        boxed, leaves, _ = _functional._box(x, f"argument {argnum}")
        a = list(args)
        a[argnum] = boxed
        out = _functional._scalar_output(f(*a))
        if type(out) is not Var or out.is_leaf:  # a constant, or a leaf returned as it is
            g = np.zeros(np.size(x))
            if type(out) is Var and type(x) is not np.ndarray and leaves[0] is out:
                g[0] = 1.0  # (x a number: its one leaf)
            return (out.value if type(out) is Var else out), g, np.zeros(V.shape)
        _functional._check_private(out)
        if _core._second_order_blocker(out) is not None:
            return None
        g, HV = _core._hessian_products(out, _core._leaf_slots(out, leaves), V)
        return out.value, g, HV

    saved = _core._enter_private()
    try:
        r = record_and_sweep()  # (its frame gone, the private tape may be kept for the next call)
    finally:
        _core._exit_private(saved)
    if r is None:
        return None
    value, g, HV = r
    return value, (g.reshape(np.shape(x)) if isinstance(x, np.ndarray) else float(g[0])), HV


def hvp(f, argnums=0):
    """The Hessian-vector product of scalar ``f`` in ``args[argnums]``: ``hvp(f)(*args, v)``
    returns ``H v`` shaped like that argument. In C: f recorded once, then one tangent sweep
    and one second-order sweep (forward over reverse, with the op table's second partials).
    Inside an outer derivative, or where f's tape holds a Python or SciPy function, it is the
    gradient of ``grad(f) . v`` instead (reverse over reverse, recorded: differentiable again,
    and it needs only a user primitive's VJP).

    >>> import numpy as np, revad
    >>> f = lambda x: x[0] ** 2 * x[1] + x[1] ** 3
    >>> revad.hvp(f)(np.array([1.0, 2.0]), np.array([1.0, 0.0]))   # H = [[2x1, 2x0], [2x0, 6x1]]
    array([4., 2.])
    """
    k = _single(argnums, "hvp")
    recorded = _recorded_hvp(f, k)

    @functools.wraps(f)
    def hvp_f(*args):
        if not args:
            raise TypeError("revad: hvp(f)(*args, v) needs the arguments and v")
        *args, v = args
        if not -len(args) <= k < len(args):
            raise TypeError(f"revad: hvp's argnums={k} is out of range for {len(args)} "
                            "positional argument(s) (v comes last)")
        x = args[k]
        v = _like(v, x, "hvp")
        if _in_c(args):
            r = _hessian_products(f, args, k, np.reshape(v, (-1, 1)))
            if r is not None:
                hv = r[2][:, 0]
                return hv.reshape(np.shape(x)) if isinstance(x, np.ndarray) else float(hv[0])
        return recorded(args, v)

    return hvp_f


def _recorded_hvp(f, k):
    """hvp's recorded route: (args, v) -> the gradient of grad(f) . v, reverse over reverse."""
    g = grad(f, k)

    def hvp_recorded(args, v):
        def g_dot_v(*a):
            gk = g(*a)
            return (gk * v).sum() if np.ndim(v) else gk * v

        return grad(g_dot_v, k)(*args)

    return hvp_recorded


def _zero(a):
    if isinstance(a, (list, tuple)):
        return type(a)(_zero(e) for e in a)
    if isinstance(a, dict):
        return {key: _zero(e) for key, e in a.items()}
    return np.zeros(np.shape(a)) if np.ndim(a) else 0.0


def jacfwd(f, argnums=0, sparse=False):
    """The Jacobian of ``f`` in ``args[argnums]`` by forward mode, as JAX's: shaped
    ``f(x).shape + x.shape``; f is recorded once, then one tangent sweep per input element.

    ``sparse=True`` returns a ``scipy.sparse.csr_matrix`` of shape ``(f(x).size, x.size)`` (x
    and f(x) flattened, C order): the tape's sparsity pattern, a distance-2 colouring of its
    columns, and one tangent sweep per colour (a banded Jacobian: a handful, whatever n).
    Inside a function being differentiated the dense form records itself (differentiable again;
    ``sparse=True`` is not, and raises there).

    >>> import numpy as np, revad
    >>> revad.jacfwd(lambda x: np.sin(x) * x[0])(np.array([0.0, 1.0]))
    array([[0.        , 0.        ],
           [0.84147098, 0.        ]])
    >>> revad.jacfwd(lambda x: x[1:] - x[:-1], sparse=True)(np.zeros(4)).toarray()
    array([[-1.,  1.,  0.,  0.],
           [ 0., -1.,  1.,  0.],
           [ 0.,  0., -1.,  1.]])
    """
    k = _single(argnums, "jacfwd")
    sparse = _flag(sparse, "jacfwd")

    @functools.wraps(f)
    def jac_f(*args):
        if sparse or not _recorded(args):
            return _sparse.jacobian(f, args, None, k, "fwd", sparse, "jacfwd")
        x = args[k]
        _like(np.zeros(np.shape(x)), x, "jacfwd")
        cols = []
        for e in np.eye(max(np.size(x), 1))[:np.size(x)]:
            tangents = tuple((e.reshape(np.shape(x)) if np.ndim(x) else float(e[0]))
                             if j == k % len(args) else _zero(a) for j, a in enumerate(args))
            cols.append(jvp(f, tuple(args), tangents)[1])  # recorded: kept on the tape
        if not cols:  # an empty argument: f's own shape, times nothing
            return np.zeros(np.shape(jvp(f, tuple(args), tuple(_zero(a) for a in args))[0])
                            + np.shape(x))
        jac = np.moveaxis(array(cols), 0, -1)
        return np.reshape(jac, jac.shape[:-1] + np.shape(x))

    return jac_f


def jacrev(f, argnums=0, sparse=False):
    """The Jacobian of ``f`` in ``args[argnums]`` by reverse mode, as JAX's: shaped
    ``f(x).shape + x.shape``; f is recorded once, then one reverse sweep per output element
    over that one recording.

    ``sparse=True`` returns a ``scipy.sparse.csr_matrix`` of shape ``(f(x).size, x.size)``
    (flattened, C order), from the tape's pattern, a distance-2 colouring of its rows and one
    reverse sweep per colour.

    >>> import numpy as np, revad
    >>> revad.jacrev(lambda x: np.sin(x) * x[0])(np.array([0.0, 1.0]))
    array([[0.        , 0.        ],
           [0.84147098, 0.        ]])
    >>> revad.jacrev(lambda x: x ** 2, sparse=True)(np.array([1.0, 2.0])).toarray()
    array([[2., 0.],
           [0., 4.]])
    """
    from revad._functional import jacobian

    k = _single(argnums, "jacrev")
    sparse = _flag(sparse, "jacrev")

    @functools.wraps(f)
    def jac_f(*args, **kwargs):
        if sparse or not _recorded(args):
            return _sparse.jacobian(f, args, kwargs, k, "rev", sparse, "jacrev")
        return jacobian(f, k)(*args, **kwargs)

    return jac_f


def hessian(f, argnums=0, sparse=False):
    """The Hessian of scalar ``f`` in ``args[argnums]``, shaped ``x.shape + x.shape`` (JAX's
    and autograd's ``hessian``): one Hessian-vector product per element of x, f recorded once
    for all of them (in C; where ``hvp`` takes the recorded route, one ``hvp`` each).

    ``sparse=True`` returns a ``scipy.sparse.csr_matrix`` of shape ``(n, n)``, n = x.size: an
    x of any shape is flattened (C order), and entry ``[i, j]`` is the second derivative in
    ``x.flat[i]`` and ``x.flat[j]``. It is computed from the tape's sparsity pattern (the
    inputs that interact through a nonlinear op), a star colouring of it and one
    Hessian-vector product per colour: a banded Hessian costs three, whatever n. Its stored
    entries are the pattern's (an entry may hold 0.0 where the pattern over-estimates). SciPy
    is needed for it; SciPy's ``minimize(..., method="trust-constr", hess=...)`` takes it.

    >>> import numpy as np, revad
    >>> revad.hessian(lambda x: x[0] ** 2 * x[1] + x[1] ** 3)(np.array([1.0, 2.0]))
    array([[ 4.,  2.],
           [ 2., 12.]])
    >>> H = revad.hessian(lambda x: np.sum(x[1:] * x[:-1] ** 2), sparse=True)(np.ones(4))
    >>> H.nnz, H.toarray()
    (9, array([[2., 2., 0., 0.],
           [2., 2., 2., 0.],
           [0., 2., 2., 2.],
           [0., 0., 2., 0.]]))
    """
    k = _single(argnums, "hessian")
    h = _recorded_hvp(f, k)
    if _flag(sparse, "hessian"):
        @functools.wraps(f)
        def sparse_hessian_f(*args):
            return _sparse.sparse_hessian(f, args, k, "hessian(sparse=True)")

        return sparse_hessian_f

    @functools.wraps(f)
    def hessian_f(*args):
        x = args[k]
        _like(np.zeros(np.shape(x)), x, "hessian")
        shape = np.shape(x)
        if np.size(x) and _in_c(args):
            r = _hessian_products(f, args, k, np.eye(np.size(x)))
            if r is not None:  # column j is H e_j; row j, as below (H is symmetric)
                return np.ascontiguousarray(r[2].T).reshape(shape + shape)
        rows = [np.asarray(h(args, e.reshape(shape) if shape else float(e[0])),
                           dtype=np.float64)
                for e in np.eye(max(np.size(x), 1))[:np.size(x)]]
        if not rows:
            return np.zeros(shape + shape)
        return np.stack(rows).reshape(shape + shape)

    return hessian_f


def hessian_sparsity(f, argnums=0):
    """The sparsity pattern of the Hessian of scalar ``f`` in ``args[argnums]`` (flattened, C
    order), read from the tape without computing a derivative: a boolean
    ``scipy.sparse.csr_matrix`` (n, n), True where two inputs interact through a nonlinear op
    (a superset of the nonzeros; exact for the usual structures).

    >>> import numpy as np, revad
    >>> f = lambda x: np.sum((x[1:] - x[:-1] ** 2) ** 2)
    >>> revad.hessian_sparsity(f)(np.ones(4)).toarray().astype(int)
    array([[1, 1, 0, 0],
           [1, 1, 1, 0],
           [0, 1, 1, 1],
           [0, 0, 1, 1]])
    """
    k = _single(argnums, "hessian_sparsity")

    @functools.wraps(f)
    def pattern_f(*args):
        return _sparse.hessian_pattern(f, args, k, "hessian_sparsity")

    return pattern_f


def jacobian_sparsity(f, argnums=0):
    """The sparsity pattern of the Jacobian of ``f`` in ``args[argnums]``, read from the tape:
    a boolean ``scipy.sparse.csr_matrix`` (f(x).size, x.size), True where an output depends on
    an input through a derivative that is not zero everywhere.

    >>> import numpy as np, revad
    >>> revad.jacobian_sparsity(lambda x: x[1:] * x[:-1])(np.ones(3)).toarray()
    array([[ True,  True, False],
           [False,  True,  True]])
    """
    k = _single(argnums, "jacobian_sparsity")

    @functools.wraps(f)
    def pattern_f(*args):
        return _sparse.jacobian_pattern(f, args, k, "jacobian_sparsity")

    return pattern_f


def hessian_vector_product(f, argnum=0):
    """autograd's name: ``hessian_vector_product(f)(*args, v)`` is ``hvp(f)(*args, v)``.

    >>> import numpy as np, revad
    >>> revad.hessian_vector_product(lambda x: np.sum(x ** 3))(np.array([1.0, 2.0]),
    ...                                                       np.array([1.0, 1.0]))
    array([ 6., 12.])
    """
    return hvp(f, argnum)


def make_hvp(f, argnum=0):
    """autograd's ``make_hvp``: ``make_hvp(f)(*args)`` returns ``(hvp_fn, grad)``, where
    ``hvp_fn(v)`` is the Hessian-vector product at args.

    >>> import numpy as np, revad
    >>> hvp_fn, g = revad.make_hvp(lambda x: np.sum(x ** 3))(np.array([1.0, 2.0]))
    >>> g, hvp_fn(np.array([1.0, 0.0]))
    (array([ 3., 12.]), array([6., 0.]))
    """
    k = _single(argnum, "make_hvp")
    h = hvp(f, k)

    def maker(*args):
        return (lambda v: h(*args, v)), grad(f, k)(*args)

    return maker


def make_jvp(f, argnum=0):
    """autograd's ``make_jvp``: ``make_jvp(f)(*args)`` returns ``jvp_fn``, with
    ``jvp_fn(v) = (f(*args), the derivative along v)``.

    >>> import numpy as np, revad
    >>> revad.make_jvp(lambda x: np.sin(x))(np.array([0.0, 1.0]))(np.array([1.0, 1.0]))
    (array([0.        , 0.84147098]), array([1.        , 0.54030231]))
    """
    k = _single(argnum, "make_jvp")

    def maker(*args):
        def jvp_fn(v):
            tangents = tuple(_like(v, a, "make_jvp") if j == k % len(args) else _zero(a)
                             for j, a in enumerate(args))
            return jvp(f, tuple(args), tangents)

        return jvp_fn

    return maker


def linear_combination_of_hessians(f, argnum=0):
    """For vector-valued ``f``: ``h(*args, v)`` is the Hessian of ``sum(v * f(*args))`` in
    ``args[argnum]`` (what SciPy's ``NonlinearConstraint`` takes as ``hess``).

    >>> import numpy as np, revad
    >>> f = lambda x: np.stack([x[0] ** 2, x[0] * x[1]])
    >>> revad.linear_combination_of_hessians(f)(np.array([1.0, 2.0]), np.array([1.0, 3.0]))
    array([[2., 3.],
           [3., 0.]])
    """
    k = _single(argnum, "linear_combination_of_hessians")

    @functools.wraps(f)
    def h(*args):
        *args, v = args
        w = np.asarray(v, dtype=np.float64)

        def weighted(*a):
            out = f(*a)
            return (out * w).sum() if hasattr(out, "sum") else out * w

        return hessian(weighted, k)(*args)

    return h


__all__ = ["hvp", "hessian", "jacfwd", "jacrev", "hessian_vector_product", "make_hvp",
           "make_jvp", "linear_combination_of_hessians", "hessian_sparsity", "jacobian_sparsity"]
