# Shapes and selection: NumPy's functions that move, repeat, drop or pick elements (roll, flip,
# tile, split, pad, sort, ...) and the few that combine them (diff, kron, cross, gradient,
# select), built on the recorded ops: slot maps, gathers, views, where and elementwise groups.
# Part of revad._array (included textually by _array.pyx: one module, several files).
#
# A function that only moves elements is NumPy's own, run on the Array's slot map (the int64
# array of the tape slots of its elements, _slot_map): the moved map is a view when its slots
# are evenly spaced, else one gather (a COPY entry per element), whose backward hands each
# adjoint to the slot it copied. NumPy so decides every shape and raises every error itself.

# ---------------------------------------------------------------------------------------------
# NumPy on slot maps

cdef object _map_result(Tape t, object m, object consts):
    """The Array(s) over a moved slot map m (an ndarray, or a list/tuple of them, as split
    gives); -1 in m stands for the constant at the same place in consts."""
    if isinstance(m, (list, tuple)):
        return type(m)([_map_result(t, mi, None if consts is None else ci)
                        for mi, ci in zip(m, consts if consts is not None else m)])
    m = np.asarray(m, dtype=np.int64, order="C")  # (ascontiguousarray would make 0-d 1-d)
    if consts is not None and m.size and (m < 0).any():
        return _emit_gather(t, m, consts)
    return _from_slots(t, m)


cdef object _const_result(object v):
    if isinstance(v, (list, tuple)):
        return type(v)([_const_leaf(vi) for vi in v])
    return _const_leaf(v)


cdef object _numpy(str name, object fn, object x):
    """fn(x), NumPy's function `name` on x, its errors of NumPy's classes with the function's
    name (NumPy's words alone, "Input must be >= 2-d.", do not say where); an integer argument
    too large for C (NumPy's OverflowError names none) a ValueError that says so."""
    try:
        return fn(x)
    except OverflowError as e:
        raise ValueError(f"revad: numpy.{name}: an axis, index or count is out of range "
                         f"({e})") from None
    except (TypeError, ValueError, IndexError) as e:
        if type(e) not in (TypeError, ValueError, IndexError):
            raise  # (AxisError names the axis)
        raise type(e)(f"revad: numpy.{name}: {e}") from None


cdef object _remap(str name, object a, object fn):
    """fn(a) for fn a NumPy function that moves, repeats or drops elements: fn runs on a's slot
    map; the result is a view or one gather."""
    a = _to_array(a)
    cdef Tape t = _tape_for((a,))
    if t is None:
        return _const_result(_numpy(name, fn, np.asarray(_values(a), np.float64)))
    cdef Array v = _on(<Array>a, t)
    return _map_result(t, _numpy(name, fn, _slot_map(_slot0(v), v.shape, v.strides)), None)


cdef object _remap_fill(str name, object a, object fn):
    """fn(x, fill) for a NumPy function that also writes new elements, all equal to `fill` (tril,
    pad, diag of a vector): fn runs on the slot map + 1 with fill 0 (those places become
    constants) and on zeros with the caller's fill (their values)."""
    a = _to_array(a)
    cdef Tape t = _tape_for((a,))
    if t is None:
        return _const_result(_numpy(name, lambda x: fn(x, False),
                                    np.asarray(_values(a), np.float64)))
    cdef Array v = _on(<Array>a, t)
    m = _numpy(name, lambda x: fn(x, True), _slot_map(_slot0(v), v.shape, v.strides) + 1)
    consts = np.asarray(fn(np.zeros(v.shape), False), np.float64)
    return _map_result(t, np.asarray(m) - 1, consts)


def _moving(func):
    """The implementation of NumPy function `func` that only moves elements: func on the map."""
    def impl(a, *args, **kw):
        return _remap(func.__name__, a, lambda m: func(m, *args, **kw))
    return impl


def _np_tril(m, k=0):
    return _remap_fill("tril", m, lambda x, is_map: np.tril(x, k))


def _np_triu(m, k=0):
    return _remap_fill("triu", m, lambda x, is_map: np.triu(x, k))


def _np_repeat(a, repeats, axis=None):
    if type(repeats) is Array or type(repeats) is Var:
        raise TypeError("revad: numpy.repeat needs constant integer repeats, not a revad "
                        "Array or Var")
    return _remap("repeat", a, lambda m: np.repeat(m, repeats, axis))


# Modes that copy elements (constant writes constant_values, the others existing elements).
_PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


def _np_pad(array, pad_width, mode="constant", **kw):
    if not isinstance(mode, str) or mode not in _PAD_MODES:
        raise TypeError(f"revad: numpy.pad with mode={mode!r} is not supported on revad Arrays "
                        f"(modes {', '.join(_PAD_MODES)})")
    if kw.get("reflect_type", "even") != "even":
        raise TypeError("revad: numpy.pad with reflect_type='odd' is not supported on revad "
                        "Arrays (its new elements are computed, not copied)")
    if mode != "constant":
        return _remap("pad", array, lambda m: np.pad(m, pad_width, mode, **kw))
    cv = kw.pop("constant_values", 0)
    if type(cv) is Array or type(cv) is Var or _holds_nodes(cv):
        raise TypeError("revad: numpy.pad needs constant constant_values, not revad Arrays "
                        "or Vars")
    return _remap_fill("pad", array, lambda x, is_map: np.pad(
        x, pad_width, "constant", constant_values=0 if is_map else cv, **kw))


cdef object _by_order(str name, object a, object order, object axis):
    """a's elements in the order of index array `order` along axis (None: of the flattened a),
    as argsort or argpartition gives it for a's values."""
    if axis is None:
        return _remap(name, a, lambda m: np.take_along_axis(m.reshape(-1), order, 0))
    return _remap(name, a, lambda m: np.take_along_axis(m, order, axis))


cdef int _no_fields(str name, object order) except -1:
    if order is not None:
        raise TypeError(f"revad: numpy.{name} with order= (structured fields) is not supported "
                        "on revad Arrays")
    return 0


def _np_sort(a, axis=-1, kind=None, order=None, **kw):
    _no_fields("sort", order)
    a = _to_array(a)
    # The permutation of the values, then a gather: each output's gradient goes to the element
    # it came from. A stable sort keeps ties in order (either choice is a valid subgradient).
    kind = kind if kw else kind or "stable"
    perm = _numpy("sort", lambda v: np.argsort(v, axis=axis, kind=kind, **kw), _values(a))
    return _by_order("sort", a, perm, axis)


def _np_argsort(a, axis=-1, kind=None, order=None, **kw):
    _no_fields("argsort", order)
    return _numpy("argsort", lambda v: np.argsort(v, axis=axis, kind=kind, **kw),
                  np.asarray(_values(_to_array(a))))


def _np_partition(a, kth, axis=-1, kind="introselect", order=None):
    _no_fields("partition", order)
    a = _to_array(a)
    perm = _numpy("partition", lambda v: np.argpartition(v, kth, axis=axis, kind=kind),
                  _values(a))
    return _by_order("partition", a, perm, axis)


def _np_argpartition(a, kth, axis=-1, kind="introselect", order=None):
    _no_fields("argpartition", order)
    return _numpy("argpartition", lambda v: np.argpartition(v, kth, axis=axis, kind=kind),
                  np.asarray(_values(_to_array(a))))


def _np_take_along_axis(arr, indices, *args, **kw):
    if type(indices) is Array or type(indices) is Var:
        raise TypeError("revad: numpy.take_along_axis needs constant integer indices, not a "
                        "revad Array or Var")
    return _remap("take_along_axis", arr,
                  lambda m: np.take_along_axis(m, indices, *args, **kw))


# ---------------------------------------------------------------------------------------------
# Joins: atleast_nd, column_stack, append, r_ and c_

cdef object _atleast(object a, int nd):
    """numpy.atleast_{nd}d of one argument: an Array (or Var) as an Array view of at least nd
    dimensions, NumPy's way; anything else as NumPy gives it."""
    if type(a) is not Array and type(a) is not Var and not _holds_nodes(a):
        return (np.atleast_1d, np.atleast_2d, np.atleast_3d)[nd - 1](a)
    a = _to_array(a)
    s = (<Array>a).shape
    if len(s) >= nd:
        return a
    if nd == 1 or len(s) == 0:
        shape = (1,) * (nd - len(s)) + s
    elif nd == 2:
        shape = (1,) + s
    else:
        shape = (1,) + s + (1,) if len(s) == 1 else s + (1,)
    return _reshape(a, shape)


cdef object _atleast_all(tuple arys, int nd):
    r = [_atleast(a, nd) for a in arys]
    # NumPy 2 gives a tuple for several arguments, NumPy 1 a list: the same as this NumPy.
    return r[0] if len(r) == 1 else type(np.atleast_1d(0, 0))(r)


def _np_atleast_3d(*arys):
    return _atleast_all(arys, 3)


def _np_column_stack(tup):
    items = []
    for o in tup:
        o = _node_or_const(o)
        if type(o) is Var:
            o = _to_array(o)
        if len(_shape_of(o)) < 2:  # (0-d and 1-d items become columns)
            o = _reshape_any(o, (-1, 1))
        items.append(o)
    return _concatenate(items, 1)


def _np_append(arr, values, axis=None):
    arr, values = _node_or_const(arr), _node_or_const(values)
    if axis is None:
        return _concatenate([_ravel_any(arr), _ravel_any(values)], 0)
    return _concatenate([_to_array(arr) if type(arr) is Var else arr,
                         _to_array(values) if type(values) is Var else values], axis)


@cython.final
cdef class _Concatenator:
    """revad.numpy's ``r_`` and ``c_``: NumPy's, except that Arrays and Vars among the items are
    joined on the tape (NumPy's own turn them into arrays, and cannot see them).

    >>> import revad, revad.numpy as np
    >>> x = revad.Array([1.0, 2.0])
    >>> y = np.r_[x, 0.0, 3:5] * 2.0
    >>> y.value
    array([2., 4., 0., 6., 8.])
    >>> np.c_[x, x].shape
    (2, 2)
    """
    cdef bint columns

    def __init__(self, columns):
        self.columns = columns

    def __getitem__(self, key):
        items = key if isinstance(key, tuple) else (key,)
        if not any([type(o) is Array or type(o) is Var or _holds_nodes(o) for o in items]):
            return (np.c_ if self.columns else np.r_)[key]
        if any([isinstance(o, str) for o in items]):
            raise TypeError("revad: r_/c_ with a directive string are not supported with revad "
                            "Arrays or Vars among the items")
        parts = []
        for o in items:
            if type(o) is slice:
                o = np.r_[o]  # a range, as NumPy's r_ reads it (1:5, 0:1:5j)
            o = _node_or_const(o)
            if type(o) is Var or (type(o) is not Array and np.ndim(o) == 0):
                o = _reshape(_to_array(o), (1,)) if type(o) is Var else np.reshape(o, (1,))
            if self.columns and len(_shape_of(o)) == 1:
                # c_ is r_['-1,2,0']: 1-d items become columns.
                o = _reshape(o, (-1, 1)) if type(o) is Array else np.reshape(o, (-1, 1))
            parts.append(o)
        return _concatenate(parts, -1 if self.columns else 0)


r_ = _Concatenator(False)
c_ = _Concatenator(True)


# ---------------------------------------------------------------------------------------------
# Differences and products of elements

cdef object _shifted(object a, int axis, object lo, object hi):
    """a[..., lo:hi, ...] along axis (a view)."""
    key = [slice(None)] * len(_shape_of(a))
    key[axis] = slice(lo, hi)
    return a[tuple(key)]


def _np_diff(a, n=1, axis=-1, prepend=np._NoValue, append=np._NoValue):
    a = _to_array(a)
    if not _is_int(n):
        raise TypeError(f"revad: numpy.diff: order n must be an integer, got {n!r}")
    if n < 0:
        raise ValueError(f"revad: numpy.diff: order must be non-negative but got {n!r}")
    nd = len((<Array>a).shape)
    if nd == 0:
        raise ValueError("revad: numpy.diff requires input that is at least one dimensional")
    ax = _axis_index(axis, nd, "axis")
    if n == 0:
        return a
    parts = []
    for extra in (prepend, a, append):
        if extra is np._NoValue:
            continue
        if extra is not a:
            extra = _node_or_const(extra)
            if type(extra) is Var:
                extra = _to_array(extra)
            if len(_shape_of(extra)) == 0:  # a scalar stands for a slice along the axis
                shape = list((<Array>a).shape)
                shape[ax] = 1
                extra = _broadcast_any(extra, tuple(shape))
        parts.append(extra)
    if len(parts) > 1:
        a = _concatenate(parts, ax)
    for _ in range(n):
        a = _binop(RV_SUB, _shifted(a, ax, 1, None), _shifted(a, ax, None, -1))
    return a


def _np_ediff1d(ary, to_end=None, to_begin=None):
    a = _reshape(_to_array(ary), (-1,))
    r = _binop(RV_SUB, a[1:], a[:-1])
    parts = [_ravel_any(_node_or_const(to_begin))] if to_begin is not None else []
    parts.append(r)
    if to_end is not None:
        parts.append(_ravel_any(_node_or_const(to_end)))
    return _concatenate(parts, 0) if len(parts) > 1 else r


def _np_kron(a, b):
    a, b = _node_or_const(a), _node_or_const(b)
    a = _to_array(a) if type(a) is Var else a
    b = _to_array(b) if type(b) is Var else b
    sa, sb = _shape_of(a), _shape_of(b)
    nd = max(len(sa), len(sb))
    sa, sb = (1,) * (nd - len(sa)) + sa, (1,) * (nd - len(sb)) + sb
    # a's axes interleaved with b's: a[i, None, j, None] * b[None, k, None, l] has shape
    # (i, k, j, l), which read in C order is kron's (i*K + k, j*L + l).
    ia = tuple([d for s in sa for d in (s, 1)])
    ib = tuple([d for s in sb for d in (1, s)])
    r = _binop(RV_MUL, _reshape_any(a, ia), _reshape_any(b, ib))
    r = _to_array(r)
    return _reshape(r, tuple([x * y for x, y in zip(sa, sb)]))


cdef inline object _add(object x, object y):
    return _binop(RV_ADD, x, y)


cdef inline object _sub(object x, object y):
    return _binop(RV_SUB, x, y)


cdef inline object _mul(object x, object y):
    return _binop(RV_MUL, x, y)


cdef inline object _div(object x, object y):
    return _binop(RV_DIV, x, y)


cdef object _component(object o, int i):
    return o[..., i]


def _np_cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = _node_or_const(a), _node_or_const(b)
    a = _to_array(a) if type(a) is Var else a
    b = _to_array(b) if type(b) is Var else b
    ia = _axis_index(axisa, len(_shape_of(a)), "axisa")
    ib = _axis_index(axisb, len(_shape_of(b)), "axisb")
    a = _transpose_any(a, tuple([d for d in range(len(_shape_of(a))) if d != ia]) + (ia,))
    b = _transpose_any(b, tuple([d for d in range(len(_shape_of(b))) if d != ib]) + (ib,))
    na, nb = _shape_of(a)[-1], _shape_of(b)[-1]
    if na not in (2, 3) or nb not in (2, 3):
        raise ValueError("revad: numpy.cross: incompatible dimensions for cross product "
                         "(dimension must be 2 or 3)")
    a0, a1, b0, b1 = _component(a, 0), _component(a, 1), _component(b, 0), _component(b, 1)
    # NumPy's own formulas: a missing third component is no term at all (not a zero times).
    c2 = _sub(_mul(a0, b1), _mul(a1, b0))
    if na == 2 and nb == 2:
        return c2
    if na == 3 and nb == 3:
        a2, b2 = _component(a, 2), _component(b, 2)
        c0, c1 = _sub(_mul(a1, b2), _mul(a2, b1)), _sub(_mul(a2, b0), _mul(a0, b2))
    elif na == 2:
        b2 = _component(b, 2)
        c0, c1 = _mul(a1, b2), _unop(RV_NEG, _to_array(_mul(a0, b2)))
    else:
        a2 = _component(a, 2)
        c0, c1 = _unop(RV_NEG, _to_array(_mul(a2, b1))), _mul(a2, b0)
    r = _stack_like([c0, c1, c2], -1)
    ic = _axis_index(axisc, len(_shape_of(r)), "axisc")
    nd = len(_shape_of(r))
    return _np_moveaxis(r, nd - 1, ic) if ic != nd - 1 else r


def _np_select(condlist, choicelist, default=0):
    condlist, choicelist = list(condlist), list(choicelist)
    if len(condlist) != len(choicelist):
        raise ValueError("revad: numpy.select: list of cases must be same length as list of "
                         "conditions")
    if not condlist:
        raise ValueError("revad: numpy.select with an empty condition list is not possible")
    conds = []
    for c in condlist:
        c = np.asarray(_values(c)) if type(c) is Array or type(c) is Var else np.asarray(c)
        if c.dtype != np.bool_:
            raise TypeError(f"revad: numpy.select: invalid entry in condlist: should be boolean "
                            f"ndarray, got {c.dtype}")
        conds.append(c)
    # The first true condition wins: where() from the last one back.
    # (Each where broadcasts its operands: the last one has the shape of them all.)
    r = default
    for c, x in zip(conds[::-1], choicelist[::-1]):
        r = _where(c, x, r)
    return r


cdef object _broadcast_any(object r, tuple shape):
    if type(r) is Var:
        r = _to_array(r)
    if type(r) is Array:
        return r if (<Array>r).shape == shape else _broadcast_to(r, shape)
    return np.broadcast_to(r, shape)


def _np_nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    x = _to_array(x)
    v = np.asarray(_values(x), np.float64)
    finite = np.isfinite(v)
    if finite.all():
        return x
    # The gradient passes where the value is finite; the replaced elements are constants.
    return _where(finite, x, np.nan_to_num(v, nan=nan, posinf=posinf, neginf=neginf))


cdef object _abc(object a, object b, object c, object f, int ax, tuple x, tuple y, tuple z):
    """a * f[x] + b * f[y] + c * f[z] (slices along ax), in NumPy's order of operations."""
    return _add(_add(_mul(a, _shifted(f, ax, x[0], x[1])), _mul(b, _shifted(f, ax, y[0], y[1]))),
                _mul(c, _shifted(f, ax, z[0], z[1])))


def _np_gradient(f, *varargs, axis=None, edge_order=1):
    """numpy.gradient with NumPy's formulas, in its order of operations (so the same values)."""
    f = _to_array(f)
    for s in varargs:
        if type(s) is Array or type(s) is Var or _holds_nodes(s):
            raise TypeError("revad: numpy.gradient needs constant spacings, not revad Arrays or "
                            "Vars")
    cdef tuple shape = (<Array>f).shape
    N = len(shape)
    axes = tuple(range(N)) if axis is None else _axis_tuple(axis, N, "axis")
    n = len(varargs)
    if n == 0:
        dx = [1.0] * len(axes)
    elif n == 1 and np.ndim(varargs[0]) == 0:
        dx = list(varargs) * len(axes)
    elif n == len(axes):
        dx = list(varargs)
        for i, d in enumerate(dx):
            d = np.asarray(d)
            if d.ndim == 0:
                continue
            if d.ndim != 1:
                raise ValueError("revad: numpy.gradient: distances must be either scalars or 1d")
            if len(d) != shape[axes[i]]:
                raise ValueError("revad: numpy.gradient: when 1d, distances must match the "
                                 "length of the corresponding dimension")
            diffx = np.diff(d.astype(np.float64) if d.dtype.kind in "iub" else d)
            dx[i] = diffx[0] if (diffx == diffx[0]).all() else diffx
    else:
        raise TypeError("revad: numpy.gradient: invalid number of arguments")
    if edge_order not in (1, 2):
        raise ValueError("revad: numpy.gradient: 'edge_order' greater than 2 not supported"
                         if edge_order > 2 else "revad: numpy.gradient: 'edge_order' must be "
                         "1 or 2")
    out = []
    for ax, h in zip(axes, dx):
        if shape[ax] < edge_order + 1:
            raise ValueError("revad: numpy.gradient: Shape of array too small to calculate a "
                             "numerical gradient, at least (edge_order + 1) elements are "
                             "required.")
        uniform = np.ndim(h) == 0
        if uniform:
            inner = _div(_sub(_shifted(f, ax, 2, None), _shifted(f, ax, None, -2)), 2. * h)
        else:
            dx1, dx2 = h[0:-1], h[1:]
            cs = [-(dx2) / (dx1 * (dx1 + dx2)), (dx2 - dx1) / (dx1 * dx2),
                  dx1 / (dx2 * (dx1 + dx2))]
            bshape = [1] * N
            bshape[ax] = -1
            a, b, c = [np.reshape(x, bshape) for x in cs]
            inner = _abc(a, b, c, f, ax, (None, -2), (1, -1), (2, None))
        if edge_order == 1:
            first = _div(_sub(_shifted(f, ax, 1, 2), _shifted(f, ax, 0, 1)),
                         h if uniform else h[0])
            last = _div(_sub(_shifted(f, ax, -1, None), _shifted(f, ax, -2, -1)),
                        h if uniform else h[-1])
        else:
            if uniform:
                a, b, c = -1.5 / h, 2. / h, -0.5 / h
            else:
                dx1, dx2 = h[0], h[1]
                a = -(2. * dx1 + dx2) / (dx1 * (dx1 + dx2))
                b = (dx1 + dx2) / (dx1 * dx2)
                c = - dx1 / (dx2 * (dx1 + dx2))
            first = _abc(a, b, c, f, ax, (0, 1), (1, 2), (2, 3))
            if uniform:
                a, b, c = 0.5 / h, -2. / h, 1.5 / h
            else:
                dx1, dx2 = h[-2], h[-1]
                a = (dx2) / (dx1 * (dx1 + dx2))
                b = - (dx2 + dx1) / (dx1 * dx2)
                c = (2. * dx2 + dx1) / (dx2 * (dx1 + dx2))
            last = _abc(a, b, c, f, ax, (-3, -2), (-2, -1), (-1, None))
        out.append(_concatenate([first, inner, last], ax))
    return out[0] if len(out) == 1 else tuple(out)


# ---------------------------------------------------------------------------------------------
# The table (NumPy's functions on Arrays: Array.__array_function__ reads _FUNCTIONS)

_FUNCTIONS.update({
    np.tril: _np_tril, np.triu: _np_triu, np.repeat: _np_repeat,
    np.split: _moving(np.split), np.array_split: _moving(np.array_split),
    np.hsplit: _moving(np.hsplit), np.vsplit: _moving(np.vsplit),
    np.dsplit: _moving(np.dsplit), np.roll: _moving(np.roll), np.tile: _moving(np.tile),
    np.flip: _moving(np.flip), np.fliplr: _moving(np.fliplr), np.flipud: _moving(np.flipud),
    np.rot90: _moving(np.rot90), np.rollaxis: _moving(np.rollaxis),
    np.diff: _np_diff, np.ediff1d: _np_ediff1d, np.kron: _np_kron, np.cross: _np_cross,
    np.sort: _np_sort, np.argsort: _np_argsort, np.partition: _np_partition,
    np.argpartition: _np_argpartition, np.take_along_axis: _np_take_along_axis,
    np.pad: _np_pad, np.atleast_3d: _np_atleast_3d, np.column_stack: _np_column_stack,
    np.append: _np_append, np.select: _np_select, np.nan_to_num: _np_nan_to_num,
    np.gradient: _np_gradient,
})
