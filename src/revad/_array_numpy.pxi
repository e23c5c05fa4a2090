# NumPy's protocols (__array_ufunc__, __array_function__) and the Python-level entry points.
# Part of revad._array (included textually by _array.pyx: one module, several files).

# ---------------------------------------------------------------------------------------------
# NumPy's protocols

# The (code, arity) pairs _apply accepts: the op table's functions.
_APPLY_ROWS = frozenset((fn.code, fn.arity) for fn in _core.functions.values())

# NumPy's ufuncs on Arrays: first the map Var.__array_ufunc__ reads too (_core._ufunc_functions,
# _ufunc_comparisons, from the op table), then these, for Arrays only.
_UFUNC_EXTRA = {"matmul": lambda x, y: _matmul(x, y)}
# No gradient anywhere: their results are bool constants, as in autograd.
_UFUNC_CONST = {"isnan", "isinf", "isfinite", "signbit", "logical_and", "logical_or",
                "logical_not", "logical_xor"}


cdef object _array_ufunc(ufunc, str method, tuple inputs, dict kwargs):
    name = ufunc.__name__
    if kwargs.get("out") is not None:
        raise TypeError(f"revad: numpy.{name} with out= would write into a NumPy array and drop "
                        "the gradient; use the returned Array")
    kwargs.pop("out", None)
    if method == "__call__":
        if kwargs:
            raise TypeError(f"revad: numpy.{name} with arguments {sorted(kwargs)} is not "
                            "supported on revad Arrays")
        fn = _core._ufunc_functions.get(name)
        if fn is not None:
            return _apply(fn.code, fn.arity, inputs)
        code = _core._ufunc_comparisons.get(name)
        if code is not None:  # bool arrays, recorded for replay (see _compare)
            return _compare(code, inputs[0], inputs[1])
        recipe = _UFUNC_EXTRA.get(name)
        if recipe is not None:
            return recipe(*inputs)
        if name in _UFUNC_CONST:
            return ufunc(*[np.asarray(_values(i)) for i in inputs])
        r = _special_ufunc(ufunc, method, inputs, kwargs)  # SciPy's (_array_special.pxi)
        if r is not None:
            return r
    elif (method == "reduce" and len(inputs) == 1
          and not set(kwargs) - {"axis", "keepdims", "dtype"}):
        _no_extras(f"{name}.reduce", kwargs.get("dtype"), {})
        axis = kwargs.get("axis", 0)
        keepdims = kwargs.get("keepdims", False)
        if name == "add":
            return _sum(inputs[0], axis, keepdims)
        red = {"multiply": (RV_MUL, "prod"), "maximum": (RV_MAXIMUM, "max"),
               "minimum": (RV_MINIMUM, "min")}.get(name)
        if red is not None:
            return _tree_reduce(inputs[0], red[0], axis, keepdims, red[1])
    elif method == "accumulate" and name == "add" and len(inputs) == 1:
        _no_extras("add.accumulate", kwargs.pop("dtype", None), {})
        axis = kwargs.pop("axis", 0)
        if isinstance(axis, (tuple, list)) and len(axis) == 1:
            axis = axis[0]
        if axis is None or isinstance(axis, (tuple, list)):
            raise ValueError(f"revad: numpy.add.accumulate takes one axis, got {axis!r}")
        if not kwargs:
            return _cumsum(inputs[0], axis)
    raise TypeError(f"revad: numpy.{name} (method {method!r}) is not differentiable by revad "
                    "on Arrays; computing it on the values would silently drop the gradient")


def _np_sum(a, axis=None, dtype=None, out=None, keepdims=False, **kw):
    _no_out("sum", out)
    _no_extras("sum", dtype, kw)
    return _sum(_to_array(a), axis, keepdims)


def _np_mean(a, axis=None, dtype=None, out=None, keepdims=False, **kw):
    _no_out("mean", out)
    _no_extras("mean", dtype, kw)
    return _mean(_to_array(a), axis, keepdims)


def _np_prod(a, axis=None, dtype=None, out=None, keepdims=False, **kw):
    _no_out("prod", out)
    _no_extras("prod", dtype, kw)
    return _tree_reduce(_to_array(a), RV_MUL, axis, keepdims, "prod")


def _np_max(a, axis=None, out=None, keepdims=False, **kw):
    _no_out("max", out)
    _no_extras("max", None, kw)
    return _tree_reduce(_to_array(a), RV_MAXIMUM, axis, keepdims, "max")


def _np_min(a, axis=None, out=None, keepdims=False, **kw):
    _no_out("min", out)
    _no_extras("min", None, kw)
    return _tree_reduce(_to_array(a), RV_MINIMUM, axis, keepdims, "min")


def _np_var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
    _no_out("var", out)
    _no_extras("var", dtype, kw)
    a = _to_array(a)
    d = _binop(RV_SUB, a, _mean(a, axis, True))
    axes = _norm_axes(axis, len((<Array>a).shape))
    cdef int64_t n = _prod(tuple((<Array>a).shape[k] for k in axes))
    # As NumPy: ddof past the count divides by zero (inf or nan), never by a negative number.
    return _binop(RV_DIV, _sum(_unop(RV_SQUARE, d), axis, keepdims), max(float(n - ddof), 0.0))


def _np_std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
    _no_extras("std", dtype, kw)
    a = _to_array(a)
    v = _np_var(a, axis, dtype, out, ddof, keepdims)
    axes = _norm_axes(axis, len((<Array>a).shape))
    if _prod(tuple((<Array>a).shape[k] for k in axes)) == 1 and ddof == 0:
        # One element: the deviation is zero whatever it is, and so is the gradient (the
        # square root's partial at 0 would make it inf * 0 = nan).
        return _binop(RV_MUL, v, 0.0)
    return _unop(RV_SQRT, v)


cdef int _no_out(str name, out) except -1:
    if out is not None:
        raise TypeError(f"revad: numpy.{name} with out= would drop the gradient")
    return 0


cdef int _no_extras(str name, object dtype, dict kw) except -1:
    """Raise for the arguments revad does not implement, which ignored would give another number
    than NumPy's (where=, initial=, correction=, an integer dtype)."""
    if dtype is not None and np.dtype(dtype).kind != "f":
        raise TypeError(f"revad: numpy.{name} with dtype={np.dtype(dtype)} is not supported on "
                        "revad Arrays (their values are float64)")
    extra = sorted([k for k, v in kw.items() if not (k == "where" and v is True)
                    and not (k == "casting" and v == "same_kind")])
    if extra:
        raise TypeError(f"revad: numpy.{name} with arguments {extra} is not supported on revad "
                        "Arrays")
    return 0


def _np_cumsum(a, axis=None, dtype=None, out=None):
    _no_out("cumsum", out)
    _no_extras("cumsum", dtype, {})
    return _cumsum(_to_array(a), axis)


def _np_dot(a, b, out=None):
    _no_out("dot", out)
    return _dot(a, b)


def _np_inner(a, b):
    a, b = _operand(a), _operand(b)
    na, nb = len(_shape_of(a)), len(_shape_of(b))
    if na == 0 or nb == 0:
        return _binop(RV_MUL, a, b)
    if na == 1 and nb == 1:
        return _dot(a, b)
    # The last axes of both, summed over: a's other axes then b's lead.
    return _np_tensordot(a, b, ([na - 1], [nb - 1]))


def _np_einsum(subscripts, *operands, out=None, optimize=False, **kw):
    _no_out("einsum", out)
    if kw or not isinstance(subscripts, str):
        raise TypeError("revad: numpy.einsum is supported with a subscripts string and operands "
                        "only (no dtype, order, casting or interleaved form)")
    return _einsum_many(subscripts, operands, optimize)


def _np_tensordot(a, b, axes=2):
    sa, sb = _shape_of(_operand(a)), _shape_of(_operand(b))
    na, nb = len(sa), len(sb)
    if _is_int(axes):
        k = int(axes)
        if k < 0 or k > min(na, nb):
            raise _AxisError(f"revad: tensordot: axes={k} for operands of {na} and {nb} "
                             "dimensions")
        ax_a, ax_b = list(range(na - k, na)), list(range(k))
    else:
        try:
            ax_a, ax_b = axes
        except (TypeError, ValueError) as e:
            raise type(e)(f"revad: tensordot: axes must be an integer or a pair of axis "
                          f"sequences, got {axes!r}") from None
        ax_a = list(_axis_tuple(ax_a, na, "tensordot axes"))
        ax_b = list(_axis_tuple(ax_b, nb, "tensordot axes"))
    if len(ax_a) != len(ax_b) or na + nb > 52:
        raise ValueError(f"revad: tensordot: axes {axes} do not pair up dimensions of the operands")
    for i, j in zip(ax_a, ax_b):
        if sa[i] != sb[j]:
            raise ValueError(f"revad: tensordot: shape-mismatch for sum (axis {i} of size "
                             f"{sa[i]} against axis {j} of size {sb[j]})")
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    ta = list(letters[:na])
    tb = list(letters[na:na + nb])
    for i, j in zip(ax_a, ax_b):
        tb[j] = ta[i]
    out = [c for c in ta if c not in tb] + [c for c in tb if c not in ta]
    return _einsum("".join(ta) + "," + "".join(tb) + "->" + "".join(out), (a, b))


def _np_outer(a, b, out=None):
    _no_out("outer", out)
    return _outer(a, b)


def _np_concatenate(arrays, axis=0, out=None, **kw):
    _no_out("concatenate", out)
    _no_extras("concatenate", kw.pop("dtype", None), kw)
    if axis is not None:
        _axis_index(axis, 64, "axis")  # its type; its range is NumPy's to check, on the slot maps
    return _concatenate(arrays, axis)


def _np_stack(arrays, axis=0, out=None, **kw):
    _no_out("stack", out)
    _no_extras("stack", kw.pop("dtype", None), kw)
    _axis_index(axis, 64, "axis")  # its type; its range is NumPy's to check, on the slot maps
    return _stack_like(list(arrays), axis)


def _np_hstack(tup, **kw):
    items = []
    for o in tup:
        o = _node_or_const(o)
        o = _to_array(o) if type(o) in (Array, Var) else np.atleast_1d(o)
        if type(o) is Array and not (<Array>o).shape:
            o = _reshape(o, (1,))
        items.append(o)
    return _concatenate(items, 0 if len(_shape_of(items[0])) == 1 else 1)


def _np_vstack(tup, **kw):
    items = []
    for o in tup:
        o = _node_or_const(o)
        o = _to_array(o) if type(o) in (Array, Var) else o
        s = _shape_of(o)
        if len(s) < 2:
            o = _reshape(o, (1, -1)) if type(o) is Array else np.reshape(o, (1, -1))
        items.append(o)
    return _concatenate(items, 0)


def _np_where(condition, x=None, y=None):
    if x is None or y is None:
        raise TypeError("revad: numpy.where with one argument (nonzero) is not supported on Arrays")
    return _where(condition, x, y)


def _np_clip(a, a_min=None, a_max=None, out=None, **kw):
    _no_out("clip", out)
    a_min = kw.pop("min", a_min)
    a_max = kw.pop("max", a_max)
    return _clip(a, a_min, a_max)


def _np_take(a, indices, axis=None, out=None, mode="raise"):
    _no_out("take", out)
    return _take(a, indices, axis, mode)


def _np_reshape(a, *args, **kw):
    shape = kw.pop("newshape", kw.pop("shape", None))
    if shape is None:
        shape = args[0]
    order = kw.pop("order", args[1] if len(args) > 1 else "C")
    return _to_array(a).reshape(shape, order=order)


def _np_ravel(a, order="C"):
    return _to_array(a).ravel(order)


def _np_transpose(a, axes=None):
    return _transpose(_to_array(a), axes)


def _np_squeeze(a, axis=None):
    return _squeeze(_to_array(a), axis)


def _np_expand_dims(a, axis):
    return _expand_dims(_to_array(a), axis)


def _np_swapaxes(a, axis1, axis2):
    a = _to_array(a)
    axes = list(range(len((<Array>a).shape)))
    i, j = _axis_index(axis1, len(axes), "axis1"), _axis_index(axis2, len(axes), "axis2")
    axes[i], axes[j] = axes[j], axes[i]
    return _transpose(a, tuple(axes))


def _np_moveaxis(a, source, destination):
    a = _to_array(a)
    nd = len((<Array>a).shape)
    src = _axis_tuple(source, nd, "source")
    dst = _axis_tuple(destination, nd, "destination")
    if len(src) != len(dst):
        raise ValueError("revad: moveaxis: `source` and `destination` arguments must have the "
                         "same number of elements")
    order = [n for n in range(nd) if n not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return _transpose(a, tuple(order))


def _np_broadcast_to(array, shape, subok=False):
    return _broadcast_to(_to_array(array), shape)


def _np_atleast_1d(*arys):
    return _atleast_all(arys, 1)  # (_array_select.pxi)


def _np_atleast_2d(*arys):
    return _atleast_all(arys, 2)


def _np_norm(x, ord=None, axis=None, keepdims=False):
    return _norm(x, ord, axis, keepdims)


def _np_shape(a):
    return _to_array(a).shape


def _np_ndim(a):
    return len(_shape_of(_to_array(a)))


def _np_size(a, axis=None):
    a = _to_array(a)
    return a.size if axis is None else a.shape[_axis_index(axis, len(a.shape), "axis")]


def _np_like(fill):
    def like(a, dtype=None, order="K", subok=True, shape=None, **kw):
        return np.full(shape if shape is not None else _shape_of(_to_array(a)), fill,
                       dtype=dtype or np.float64)
    return like


def _np_full_like(a, fill_value, dtype=None, order="K", subok=True, shape=None, **kw):
    return np.full(shape if shape is not None else _shape_of(_to_array(a)), _values(fill_value),
                   dtype=dtype or np.float64)


def _np_copy(a, order="K", subok=False):
    return a


def _np_trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    _no_out("trace", out)
    _no_extras("trace", dtype, {})
    return _sum(_diagonal(a, offset, axis1, axis2), -1, False)


def _np_diagonal(a, offset=0, axis1=0, axis2=1):
    return _diagonal(a, offset, axis1, axis2)


def _np_diag(v, k=0):
    a = _to_array(v)
    if len((<Array>a).shape) == 2:
        return _diagonal(a, k, 0, 1)
    # A vector on the k-th diagonal of a square matrix of zeros (NumPy raises for other ranks).
    return _remap_fill("diag", a, lambda x, is_map: np.diag(x, k))


cdef object _diagonal(object a, object offset, object axis1, object axis2):
    """numpy.diagonal: the elements (i + max(-offset, 0), i + max(offset, 0)) of axes axis1,
    axis2, along a new last axis; the other axes lead, in order."""
    a = _to_array(a)
    cdef tuple shape = (<Array>a).shape
    cdef int nd = len(shape)
    if nd < 2:
        raise ValueError("revad: diagonal needs an array of at least two dimensions, "
                         f"got shape {shape}")
    if not _is_int(offset):
        raise TypeError("revad: the diagonal's offset must be an integer, "
                        f"got {type(offset).__name__}")
    i, j = _axis_index(axis1, nd, "axis1"), _axis_index(axis2, nd, "axis2")
    if i == j:
        raise ValueError("revad: axis1 and axis2 cannot be the same")
    rest = tuple([d for d in range(nd) if d != i and d != j])
    r0, c0 = max(-int(offset), 0), max(int(offset), 0)
    n = max(0, min(shape[i] - r0, shape[j] - c0))
    k = np.arange(n)
    return _transpose(a, rest + (i, j))[(Ellipsis, k + r0, k + c0)]


def _np_isclose(*args, **kw):
    return np.isclose(*[np.asarray(_values(a)) for a in args], **kw)


_FUNCTIONS = {
    np.sum: _np_sum, np.mean: _np_mean, np.prod: _np_prod,
    np.max: _np_max, np.amax: _np_max, np.min: _np_min, np.amin: _np_min,
    np.var: _np_var, np.std: _np_std,
    np.cumsum: _np_cumsum, np.dot: _np_dot, np.inner: _np_inner, np.outer: _np_outer,
    np.concatenate: _np_concatenate, np.stack: _np_stack, np.hstack: _np_hstack,
    np.vstack: _np_vstack, np.where: _np_where, np.clip: _np_clip, np.take: _np_take,
    np.reshape: _np_reshape, np.ravel: _np_ravel, np.transpose: _np_transpose,
    np.squeeze: _np_squeeze, np.expand_dims: _np_expand_dims, np.swapaxes: _np_swapaxes,
    np.moveaxis: _np_moveaxis, np.broadcast_to: _np_broadcast_to,
    np.atleast_1d: _np_atleast_1d, np.atleast_2d: _np_atleast_2d,
    np.linalg.norm: _np_norm, np.shape: _np_shape, np.ndim: _np_ndim, np.size: _np_size,
    np.zeros_like: _np_like(0.0), np.ones_like: _np_like(1.0), np.empty_like: _np_like(0.0),
    np.full_like: _np_full_like, np.copy: _np_copy, np.trace: _np_trace, np.diag: _np_diag,
    np.diagonal: _np_diagonal, np.isclose: _np_isclose, np.einsum: _np_einsum,
    np.tensordot: _np_tensordot,
}
# A row of the op table that NumPy writes as a function (sinc), and the parts of a real number.
_FUNCTIONS.update({np.sinc: _core.functions["sinc"], np.real: lambda val: val,
                   np.imag: lambda val: np.zeros(np.shape(_values(val)))[()]})


# ---------------------------------------------------------------------------------------------
# Python-level entry points for revad.numpy and the functional API

def logsumexp(a, axis=None, keepdims=False):
    """log(sum(exp(a))) over axis, computed stably (scipy.special.logsumexp's meaning).

    >>> import numpy as np, revad
    >>> x = revad.Array([1000.0, 1000.0])
    >>> y = revad.logsumexp(x)
    >>> round(y.item(), 6)
    1000.693147
    >>> y.backward()
    >>> x.grad
    array([0.5, 0.5])
    """
    if type(a) is not Array and type(a) is not Var and not _holds_nodes(a):
        return _plain_logsumexp(a, axis, keepdims)  # plain data: a plain result, as SciPy's
    return _logsumexp(_to_array(a), axis, keepdims)


def array(obj, dtype=None, *, copy=True, order="K", ndmin=0):
    """numpy.array, except that sequences holding Vars or Arrays are stacked on the tape.

    Plain data gives exactly what ``numpy.array`` gives (a list of ints stays int, ``dtype=``
    is honoured), so that code written for ``autograd.numpy`` indexes and counts with it as
    before. Data holding Vars or Arrays gives a float64 revad Array (``ndmin`` adds leading
    axes); another ``dtype`` would drop the gradient, and raises.

    >>> import revad, revad.numpy as np
    >>> np.array([1, 2, 3]).dtype
    dtype('int64')
    >>> x = revad.Var(2.0)
    >>> y = np.sum(np.array([x, x * x]) * np.array([1.0, 3.0]))
    >>> y.backward()
    >>> x.grad
    13.0
    """
    if not _holds_node(obj):
        return np.array(obj, dtype=dtype, copy=copy, order=order, ndmin=ndmin)
    if dtype is not None and np.dtype(dtype) != np.float64:
        raise TypeError(f"revad: array(..., dtype={np.dtype(dtype)}) of Vars or Arrays would drop "
                        "their gradient; revad records float64 (leave dtype out)")
    r = _node_array(obj)
    if ndmin > len(r.shape):
        r = r.reshape((1,) * (ndmin - len(r.shape)) + r.shape)
    return r


def asarray(obj, dtype=None, order=None):
    """numpy.asarray, except that a revad Array is returned as it is and sequences holding Vars
    or Arrays are stacked on the tape (as ``array`` does).

    >>> import revad, revad.numpy as np
    >>> a = revad.Array([1.0, 2.0])
    >>> np.asarray(a) is a, np.asarray([1, 2]).dtype
    (True, dtype('int64'))
    """
    if not _holds_node(obj):
        return np.asarray(obj, dtype=dtype, order=order)
    return array(obj, dtype=dtype)


cdef inline bint _holds_node(object obj):
    """Whether obj is or holds a Var or an Array (in nested lists, tuples or object arrays)."""
    return type(obj) is Array or type(obj) is Var or _holds_nodes(obj)


cdef object _node_array(object obj):
    """The Array of nested sequences (or an object ndarray) holding Vars or Arrays."""
    if type(obj) is Array:
        return obj
    if type(obj) is Var:
        return _to_array(obj)
    if isinstance(obj, np.ndarray) and obj.dtype == object:
        obj = obj.tolist()  # its items: Vars, Arrays, numbers (a 0-d one: the item itself)
        if not isinstance(obj, list):
            return _node_array(obj)
    return _stack_like([_node_array(o) if _holds_node(o)
                        else np.array(_float64(o), dtype=np.float64)
                        if isinstance(o, (list, tuple)) else o for o in obj], 0)


cdef bint _contains_node(object seq):
    for o in seq:
        if type(o) is Array or type(o) is Var:
            return True
        if isinstance(o, (list, tuple)) and _contains_node(o):
            return True
        if (isinstance(o, np.ndarray) and o.dtype == object
                and _contains_node(o.reshape(-1).tolist())):
            return True  # an object ndarray of Vars among the items (np.array([s, t]))
    return False


_SCALAR_IDENTITIES = frozenset([np.sum, np.prod, np.max, np.min, np.amax, np.amin, np.mean])


def _var_function(func, types, args, kwargs):
    """A NumPy function called on Vars (Var.__array_function__): Array's implementation, with
    a 0-d result as a Var."""
    if len(args) == 1 and not kwargs and func in _SCALAR_IDENTITIES:
        return args[0]  # reducing one scalar is that scalar: nothing to record
    impl = _FUNCTIONS.get(func)
    if impl is None:
        raise TypeError(f"revad: numpy.{_qualname(func)} is not supported on revad Vars "
                        "(computing it on the values would silently drop the gradient); "
                        "write it with supported functions or use .value for a constant")
    r = impl(*args, **kwargs)
    if type(r) is Array and not (<Array>r).shape:
        return r[()]
    return r


_core._register_array(Array, _apply, _var_function,
                      lambda ufunc, method, inputs, kw: _array_ufunc(ufunc, method, inputs, kw))


def _private_leaf(x):
    """A leaf for a functional-API call (grad, value_and_grad): it reads ndarray x's values in
    place (no copy: the call binds it to its private tape, which copies them, before f returns)
    and hands back its gradient through _private_grad without a copy. Nothing else sees it."""
    # np.asarray keeps 0-d (ascontiguousarray would not); the gradient is np.empty: the sweep
    # writes it whole (zeroing it first would cost a pass), _private_grad zeroes it if none did.
    cdef Array r = _init_leaf(Array.__new__(Array), np.asarray(x, dtype=np.float64, order="C"),
                              False)
    r._unset = True
    return r


def _private_grad(Array a not None):
    """The gradient of a _private_leaf, as an ndarray of its shape (its own buffer: no copy)."""
    if a._unset:  # no sweep reached it (f did not depend on it, or returned a constant)
        a._grad[...] = 0.0
        a._unset = False
    return a._grad.reshape(a.shape)


def _leaf_binding(Array a not None):
    """(id of the tape a leaf Array is bound to, its first slot, its size), for forward mode."""
    if a.tape is not None:
        raise TypeError("revad: only a leaf Array has a binding")
    return a.bound, a._first, a.size
