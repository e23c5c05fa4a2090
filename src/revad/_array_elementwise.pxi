# Elementwise ops and comparisons: one group (group_ew.h, EW) per op.
# Part of revad._array (included textually by _array.pyx: one module, several files).

# ---------------------------------------------------------------------------------------------
# Elementwise ops: one group per op.

cdef Array _as_view(object o, Tape t):
    """An Array or a Var operand as an Array view on t; None for a constant."""
    if type(o) is Array:
        return _on(<Array>o, t)
    if type(o) is Var:
        return _view(t, _var_slot(<Var>o, t), (), ())
    return None


cdef object _as_const(object o):
    """A constant operand as a float or a float64 ndarray; NotImplemented if it is not one."""
    cdef double c
    if _as_double(o, &c):
        return c
    if isinstance(o, (np.ndarray, list, tuple)):
        a = _float64(o)
        return float(a) if a.ndim == 0 else a
    return NotImplemented


cdef object _unop(int code, object x):
    cdef Tape t = _tape_for((x,))
    if t is None:
        return _const_leaf(_values_unary(code, np.asarray(_values(x), np.float64)))
    cdef Array a = _as_view(x, t)
    return _emit_ew(t, code, a.shape, a, None, None, None)


cdef object _values_unary(int code, object v):
    v = np.asarray(v, dtype=np.float64, order="C")
    out = np.empty(v.shape)
    cdef int64_t k, n = v.size
    cdef const double *src = _dptr(v) if n else NULL
    cdef double *dst = <double *>_dptr(out) if n else NULL
    for k in range(n):
        dst[k] = rv_unary(code, src[k])
    return out


cdef object _values_binary(int code, object a, object b):
    a, b = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
    a = np.asarray(a, order="C")
    b = np.asarray(b, order="C")
    out = np.empty(a.shape)
    cdef int64_t k, n = a.size
    cdef const double *pa = _dptr(a) if n else NULL
    cdef const double *pb = _dptr(b) if n else NULL
    cdef double *dst = <double *>_dptr(out) if n else NULL
    for k in range(n):
        dst[k] = rv_binary(code, pa[k], pb[k])
    return out


cdef object _binop(int code, object x, object y):
    """x op y with NumPy broadcasting; x, y Arrays, Vars or constants (two constants, as clip's
    maximum(a, lo) when only hi is a node, give a constant: _emit_ew)."""
    cdef double c
    x, y = _lift(x), _lift(y)
    if code == RV_POW and type(x) is Array and _as_double(y, &c) and c == 2.0:
        return _unop(RV_SQUARE, x)  # x**2 is everywhere; its partial needs no pow()
    cx = None if type(x) is Array or type(x) is Var else _as_const(x)
    cy = None if type(y) is Array or type(y) is Var else _as_const(y)
    if cx is NotImplemented or cy is NotImplemented:
        return NotImplemented
    cdef Tape t = _tape_for((x, y))
    if t is None:
        return _const_leaf(_values_binary(code, _values(x) if cx is None else cx,
                                          _values(y) if cy is None else cy))
    cdef Array a = _as_view(x, t)
    cdef Array b = _as_view(y, t)
    return _emit_ew(t, code, _broadcast(_shape_or_const(a, cx), _shape_or_const(b, cy)),
                    a, cx, b, cy)


cdef inline tuple _shape_or_const(Array a, object c):
    """The shape of an operand: Array a, or constant c (a float or a float64 ndarray)."""
    return a.shape if a is not None else (() if type(c) is float else c.shape)


# Constant array operands of up to this many elements go into the tape's constant pool; larger
# ones are kept as arrays of their own (copied, or referenced if read-only all the way down).
cdef int64_t _EW_POOL_MAX = 64


cdef int _ew_operand(Tape t, tuple out_shape, Array v, object c, rv_ew_operand *q,
                     int64_t *st) except -1:
    """Describe one operand of an elementwise group (kinds.h, EW): its base and offset into q,
    its strides aligned to out_shape (0 where broadcast) into st."""
    cdef Py_ssize_t nd = len(out_shape), lead, d
    cdef int64_t k, m, c0
    cdef const double *pc
    if v is not None:
        q.src, q.off = RV_SRC_SLOTS, _slot0(v)
        shape, strides = v.shape, v.strides
    elif type(c) is float:
        q.src, q.off = RV_SRC_POOL, t.push_const(<double>c)
        for d in range(nd):
            st[d] = 0
        return 0
    else:
        shape = c.shape
        if _referencable(c):
            q.src, q.off = t.push_readonly(c), 0
            strides = tuple(s // 8 for s in c.strides)
        else:  # copied: mutating c later must not change this tape
            strides = _c_strides(shape)
            m = c.size
            if m <= _EW_POOL_MAX:
                c = np.ascontiguousarray(c, dtype=np.float64)
                t.reserve_const(m)
                c0 = t.n_cst
                pc = _dptr(c)
                for k in range(m):
                    t.cst[c0 + k] = pc[k]
                t.n_cst = c0 + m
                q.src, q.off = RV_SRC_POOL, c0
            else:
                q.src, q.off = t.push_cptr(np.array(c, dtype=np.float64, order="C", copy=True)), 0
    lead = nd - len(shape)
    for d in range(nd):
        if d < lead or (shape[d - lead] == 1 and out_shape[d] != 1):
            st[d] = 0
        else:
            st[d] = strides[d - lead]
    return 0


cdef Array _emit_ew(Tape t, int code, tuple out_shape, Array a, object ca, Array b, object cb):
    """One elementwise group (group_ew.h, EW): code over out_shape with broadcast operands, each an
    Array view (a, b) or a constant (ca, cb: a float or a float64 ndarray); b/cb unused for a
    unary code. Its n values are computed here by the group's C loop, or, for a lazy
    row (group_ew.h, rv_ew_lazy), when something first reads them (_slot0); a sum over them computes
    them on the fly instead (_sum)."""
    cdef int arity = rv_ew_arity(code)
    cdef Array r
    cdef int64_t n = _prod(out_shape), nd0 = len(out_shape), nd = 0, d, ext, w, bi, i0
    cdef int64_t shp[RV_EW_MAXD]
    cdef int64_t st0[RV_EW_MAXD]
    cdef int64_t st1[RV_EW_MAXD]
    cdef rv_ew_operand q[2]  # src and off of each operand (their strides: st0, st1)
    cdef rv_ew_blk *h
    cdef rv_ew_operand *o
    if a is None and (arity == 1 or b is None):
        # No operand on the tape: a constant. (A group's backward loops take one operand to be
        # a slot: without one they would add into unrelated adjoints.)
        return _const_leaf(_values_unary(code, ca) if arity == 1 else _values_binary(code, ca, cb))
    if nd0 > RV_EW_MAXD:
        raise ValueError(f"revad: arrays of more than {RV_EW_MAXD} dimensions are not supported")
    if n == 0:
        return _fresh(t, t.n, out_shape)
    _check_entries(n)  # before a constant operand is copied
    _ew_operand(t, out_shape, a, ca, &q[0], st0)
    if arity == 2:
        _ew_operand(t, out_shape, b, cb, &q[1], st1)
    else:
        for d in range(nd0):
            st1[d] = 0
    # Collapse: unit dimensions go, and a dimension merges into the one before it wherever every
    # operand steps through both as through one (the output, C-contiguous, always does).
    for d in range(nd0):
        ext = out_shape[d]
        if ext == 1:
            continue
        if nd > 0 and st0[nd - 1] == st0[d] * ext and st1[nd - 1] == st1[d] * ext:
            shp[nd - 1] *= ext
            st0[nd - 1], st1[nd - 1] = st0[d], st1[d]
        else:
            shp[nd], st0[nd], st1[nd] = ext, st0[d], st1[d]
            nd += 1
    if nd == 0:
        nd, shp[0], st0[0], st1[0] = 1, 1, 0, 0
    w = rv_ew_width(nd, arity)
    t.room(n, w)  # (both at once: see Tape.room)
    bi = t.push_blk(w)
    i0 = t.n
    h = <rv_ew_blk *>(t.blk + bi)
    h.out, h.n, h.op, h.nd = i0, n, code, nd
    for d in range(nd):
        h.shape[d] = shp[d]
    o = rv_ew_operand_at(h, 0)
    o.src, o.off = q[0].src, q[0].off
    for d in range(nd):
        o.stride[d] = st0[d]
    if arity == 2:
        o = rv_ew_operand_at(h, 1)
        o.src, o.off = q[1].src, q[1].off
        for d in range(nd):
            o.stride[d] = st1[d]
    _close_group(t, i0, n, RV_EW, bi)
    r = _fresh(t, i0, out_shape)
    if rv_ew_lazy(code):  # its values are written when first needed (_slot0), if ever (_sum)
        t.absent.add(bi)
        r.lazy = bi + 1
    else:
        _run_group(t.blk + bi, RV_RUN_EW_FORWARD, t, NULL, False)
    return r


def _apply(int code, int arity, tuple args not None):
    """revad's Function objects hand Array arguments here (registered with _core)."""
    if (code, arity) not in _APPLY_ROWS or len(args) != arity:  # the code reaches C unchecked
        raise ValueError(f"revad: _apply: no elementwise op {code} of arity {arity} taking "
                         f"{len(args)} argument(s)")
    if arity == 1:
        return _unop(code, args[0])
    r = _binop(code, args[0], args[1])
    if r is NotImplemented:
        raise TypeError(f"revad: cannot apply this function to {type(args[0]).__name__} and "
                        f"{type(args[1]).__name__}")
    return r


_COMPARE_VALUES = {RV_LT: operator.lt, RV_LE: operator.le, RV_GT: operator.gt,
                   RV_GE: operator.ge, RV_EQ: operator.eq, RV_NE: operator.ne}


cdef object _compare(int code, object x, object y):
    """A comparison: a bool ndarray from the values, with no gradient. While recording, it is
    also recorded (an elementwise group of the table's comparison row), as a Var comparison is,
    so that a replayed tape can check that it takes the branches the recording took."""
    x, y = _lift(x), _lift(y)
    cx = None if type(x) is Array or type(x) is Var else _as_const(x)
    cy = None if type(y) is Array or type(y) is Var else _as_const(y)
    if cx is NotImplemented or cy is NotImplemented:
        return NotImplemented
    cdef Tape t = _open_tape(x, y)
    cdef Array r
    if t is None:
        vx = np.asarray(_values(x)) if cx is None else cx
        vy = np.asarray(_values(y)) if cy is None else cy
        _broadcast(np.shape(vx), np.shape(vy))
        return np.asarray(_COMPARE_VALUES[code](vx, vy))
    cdef Array a = _as_view(x, t)
    cdef Array b = _as_view(y, t)
    r = _emit_ew(t, code, _broadcast(_shape_or_const(a, cx), _shape_or_const(b, cy)), a, cx, b, cy)
    # (r: C-order, new) its values, as bools: a mask Python reads, guarded while a trace records
    return _on_values(r, np.not_equal, (0.0,), None, False, "array comparison")


cdef Tape _open_tape(object x, object y):
    """The tape a comparison of x and y is recorded on: their one open tape, this thread's
    current one if neither is on a tape yet, or None (not recording, a finished tape, or two
    tapes: the comparison still answers, from the values, as a Var comparison does)."""
    if not _is_recording():
        return None
    cdef Tape t = None, ot
    for o in (x, y):
        ot = (<Array>o).tape if type(o) is Array else ((<Var>o).tape if type(o) is Var else None)
        if ot is None:
            continue
        if ot.finished or (t is not None and ot is not t):
            return None
        t = ot
    return t if t is not None else _current_tape()
