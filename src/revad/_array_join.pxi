# Joining and selecting: concatenate, stack, where, clip, take.
# Part of revad._array (included textually by _array.pyx: one module, several files).

# ---------------------------------------------------------------------------------------------
# Joining and selecting

cdef object _to_array(object o):
    """Arrays as they are; Vars, numbers and sequences (or object ndarrays) of them as
    (recorded) Arrays."""
    if type(o) is Array:
        return o
    if type(o) is Var:
        t = _tape_for((o,))
        if t is None:
            return _const_leaf((<Var>o).v)
        return _view(t, _var_slot(<Var>o, t), (), ())
    o = _lift(o)
    if type(o) is Array:
        return o
    if isinstance(o, (list, tuple)):
        return _stack_like(list(o), 0)
    c = _as_const(o)
    if c is NotImplemented:
        raise TypeError(f"revad: expected an array, got {type(o).__name__}")
    return _const_leaf(c)


cdef tuple _maps(list items, Tape t):
    """Slot maps (int64, -1 for constants) and constant values of each item."""
    maps, consts = [], []
    for o in items:
        if type(o) is Array or type(o) is Var:
            a = _as_view(o, t)
            maps.append(_slot_map(_slot0(a), a.shape, a.strides))
            consts.append(np.zeros(a.shape))
        else:
            c = _float64(o)
            maps.append(np.full(c.shape, -1, np.int64))
            consts.append(c)
    return maps, consts


cdef object _join(list items, object how, object axis, bint any_const):
    """concatenate/stack (`how`): join the slot maps with NumPy, then view or gather."""
    cdef Tape t = _tape_for(tuple(items))
    if t is None:
        return _const_leaf(how([np.asarray(_values(o), np.float64) for o in items], axis=axis))
    maps, consts = _maps(items, t)
    m = how(maps, axis=axis)
    if any_const:
        return _emit_gather(t, m, how(consts, axis=axis))
    return _from_slots(t, m)


cdef object _concatenate(object arrays, object axis):
    items = [_node_or_const(o) for o in arrays]
    if not items:
        raise ValueError("revad: need at least one array to concatenate")
    nd = {np.ndim(i) if type(i) not in (Array, Var) else len(_shape_of(i)) for i in items}
    if 0 in nd:
        raise ValueError("revad: zero-dimensional arrays cannot be concatenated")
    any_const = any(type(o) is not Array and type(o) is not Var for o in items)
    if axis is None:
        items = [_ravel_any(o) for o in items]
        axis = 0
    try:
        return _join(items, np.concatenate, axis, any_const)
    except ValueError as e:
        raise ValueError(
            f"revad: cannot concatenate shapes "
            f"{[_shape_of(o) if type(o) in (Array, Var) else np.shape(o) for o in items]}"
            f" along axis {axis}: {e}") from None


cdef object _stack_like(list items, object axis):
    if not items:
        raise ValueError("revad: need at least one array to stack")
    items = [_node_or_const(o) for o in items]
    any_const = any([type(o) is not Array and type(o) is not Var for o in items])
    try:
        return _join(items, np.stack, axis, any_const)
    except ValueError as e:
        raise ValueError(
            f"revad: cannot stack shapes "
            f"{[_shape_of(o) if type(o) in (Array, Var) else np.shape(o) for o in items]}"
            f": {e}") from None


cdef object _node_or_const(object o):
    """An operand of a join, where or clip: an Array or Var as it is; a sequence or object
    ndarray holding Vars or Arrays as a recorded Array (np.array of Vars is how autograd users
    build vectors: its items must not turn into constants); anything else a float64 ndarray."""
    o = _lift(o)
    return o if type(o) is Array or type(o) is Var else _float64(o)


cdef object _where(object cond, object x, object y):
    if type(cond) is Array or type(cond) is Var:
        cond = np.asarray(_values(cond)) != 0
    cond = np.asarray(cond, dtype=bool)
    x, y = _node_or_const(x), _node_or_const(y)
    items = [x, y]
    if not any(type(o) is Array or type(o) is Var for o in items):
        return np.where(cond, x, y)
    cdef Tape t = _tape_for(tuple(items))
    if t is None:
        return _const_leaf(np.where(cond, _values(x), _values(y)))
    maps, consts = _maps(items, t)
    try:
        m = np.where(cond, maps[0], maps[1])
    except ValueError:
        raise ValueError(f"revad: where: shapes {cond.shape} {maps[0].shape} {maps[1].shape} "
                         "could not be broadcast together") from None
    if (m < 0).any():
        return _emit_gather(t, m, np.where(cond, consts[0], consts[1]))
    return _from_slots(t, np.asarray(m, order="C"))


cdef object _clip(object a, object lo, object hi):
    a = _node_or_const(a)
    lo = None if lo is None else _node_or_const(lo)
    hi = None if hi is None else _node_or_const(hi)
    if type(lo) in (Array, Var) or type(hi) in (Array, Var):
        r = a
        if lo is not None:
            r = _binop(RV_MAXIMUM, r, lo)
        if hi is not None:
            r = _binop(RV_MINIMUM, r, hi)
        return r
    v = np.asarray(_values(a), dtype=np.float64)
    # min(max(v, lo), hi), as NumPy 2's clip: a NaN bound gives NaN. Not np.clip itself, whose
    # answer depends on the NumPy (1.x skips a NaN bound given as a number).
    if lo is None or hi is None:
        c = np.clip(v, lo, hi) if lo is None and hi is None else \
            (np.minimum(v, hi) if lo is None else np.maximum(v, lo))
    else:
        c = np.minimum(np.maximum(v, lo), hi)
    inside = np.ones(v.shape, dtype=bool)
    if lo is not None:
        inside &= v >= lo
    if hi is not None:
        inside &= v <= hi
    return _where(inside, a, c)


cdef object _take(object a, object indices, object axis, object mode):
    a = _to_array(a)
    if axis is None:
        a = _reshape(a, (-1,))
        ax = 0
    else:
        ax = _axis_index(axis, len((<Array>a).shape), "axis")
    if mode not in ("raise", "wrap", "clip"):
        raise ValueError(f"revad: numpy.take: mode must be 'raise', 'wrap' or 'clip', got {mode!r}")
    idx = np.asarray(indices)
    if idx.dtype.kind == "O":  # Python ints past int64, or not integers at all
        try:
            idx = np.asarray(indices, dtype=np.intp)
        except OverflowError:
            raise IndexError(f"revad: numpy.take: an index of {indices!r:.60} "
                             "is out of bounds") from None
        except (TypeError, ValueError):
            raise TypeError("revad: numpy.take needs integer indices, "
                            f"got {indices!r:.60}") from None
    n = (<Array>a).shape[ax]
    # As NumPy: booleans are the integers 0 and 1 (not a mask), unsigned ones are cast to intp.
    if idx.dtype.kind == "b":
        idx = idx.astype(np.intp)
    elif idx.dtype.kind == "u":
        # One past intp (2**63 as uint64) is past every axis's end, not the negative intp its
        # bits make (NumPy 2 casts it so; NumPy 1.x refuses the cast): the same answer on
        # every NumPy. Wrapped in uint64; else the largest intp stands for it (clipped to the
        # last element, out of bounds otherwise).
        top = np.iinfo(np.intp).max
        if mode == "raise" and (idx > top).any():
            raise IndexError(f"revad: numpy.take: index {idx[idx > top][0]} is out of bounds "
                             f"for axis {ax} with size {n}")
        if mode == "wrap" and n:
            idx = idx % np.uint64(n)
        idx = np.minimum(idx, np.uint64(top)).astype(np.intp)
    if idx.dtype.kind != "i":
        raise TypeError(f"revad: numpy.take needs integer indices, got {idx.dtype}")
    if mode != "raise":
        if n == 0 and idx.size:
            raise IndexError("revad: numpy.take: cannot do a non-empty take from an empty axis")
        idx = idx % n if mode == "wrap" else np.clip(idx, 0, n - 1)
    return a[(slice(None),) * ax + (idx,)]


cdef object _norm(object x, object ord, object axis, bint keepdims):
    """numpy.linalg.norm: a vector norm over one axis, a matrix norm over two (as NumPy, the
    matrix 1- and inf-norms are the largest column and row sums, not sums of all elements).
    The matrix orders 2, -2 and 'nuc' are functions of the singular values: revad._linalg.norm
    computes those with its svd and calls this for the rest."""
    x = _to_array(x)
    cdef Py_ssize_t nd = len((<Array>x).shape)
    if axis is None:
        if ord is None:
            return _unop(RV_SQRT, _sum(_unop(RV_SQUARE, x), None, keepdims))
        if nd != 1 and nd != 2:
            raise ValueError(f"revad: numpy.linalg.norm of order {ord!r} needs a 1-d or 2-d "
                             f"Array or an axis, got {nd} dimensions")
        axes = tuple(range(nd))
    else:
        axes = _axis_tuple(axis, nd, "axis")
    if len(axes) == 1:
        if isinstance(ord, str):
            raise ValueError(f"revad: numpy.linalg.norm: invalid norm order {ord!r} for vectors")
        if ord is None or ord == 2:
            return _unop(RV_SQRT, _sum(_unop(RV_SQUARE, x), axes, keepdims))
        if ord == 1:
            return _sum(_unop(RV_ABS, x), axes, keepdims)
        if ord == np.inf or ord == -np.inf:
            return _tree_reduce(_unop(RV_ABS, x), RV_MAXIMUM if ord > 0 else RV_MINIMUM, axes,
                                keepdims, "max" if ord > 0 else "min")
        if ord == 0:  # the count of nonzero elements: a constant (its derivative is zero)
            return np.sum(_values(x) != 0, axis=axes, keepdims=keepdims).astype(np.float64)
        try:
            p = float(ord)
        except (TypeError, ValueError):
            raise TypeError(f"revad: numpy.linalg.norm: the order must be a number, "
                            f"got {type(ord).__name__}") from None
        return _binop(RV_POW, _sum(_binop(RV_POW, _unop(RV_ABS, x), p), axes, keepdims), 1.0 / p)
    elif len(axes) == 2:
        if ord is None or (isinstance(ord, str) and ord == "fro"):
            return _unop(RV_SQRT, _sum(_unop(RV_SQUARE, x), axes, keepdims))
        rows, cols = axes
        if not isinstance(ord, str) and ord in (1, -1, np.inf, -np.inf):
            inner, outer = (rows, cols) if abs(ord) == 1 else (cols, rows)
            code, name = (RV_MAXIMUM, "max") if ord > 0 else (RV_MINIMUM, "min")
            r = _tree_reduce(_sum(_unop(RV_ABS, x), inner, True), code, outer, True, name)
            return r if keepdims else _squeeze(r, axes)
        if not (isinstance(ord, str) and ord == "nuc" or not isinstance(ord, str)
                and ord in (2, -2)):
            raise ValueError(f"revad: numpy.linalg.norm: invalid norm order {ord!r} for matrices")
    else:
        raise ValueError(f"revad: numpy.linalg.norm: improper number of axes {axis!r}")
    raise TypeError(f"revad: numpy.linalg.norm of order {ord!r} over two axes needs the "
                    "singular values (revad._linalg.norm computes it)")
