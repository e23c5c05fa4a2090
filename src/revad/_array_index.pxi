# Gathers, indexing and views.
# Part of revad._array (included textually by _array.pyx: one module, several files).

# ---------------------------------------------------------------------------------------------
# Gathers: COPY entries (and CONST entries for constants), or a view when slots are affine.

cdef Array _emit_gather(Tape t, object srcs, object consts):
    """One entry per element of srcs (int64): COPY of that slot, or CONST consts[k] where -1."""
    srcs = np.asarray(srcs, dtype=np.int64, order="C")
    cdef int64_t n = srcs.size, k, s, i0
    cdef const int64_t *ps = _iptr(srcs) if n else NULL
    cdef const double *pc = NULL
    if consts is not None:
        consts = np.asarray(consts, dtype=np.float64, order="C")
        pc = _dptr(consts) if n else NULL
    t.reserve(n)
    i0 = t.n
    for k in range(n):
        s = ps[k]
        if s >= 0:
            t.op[i0 + k] = RV_COPY
            t.arg0[i0 + k] = <int32_t>s
            t.val[i0 + k] = t.val[s]
        else:
            t.op[i0 + k] = RV_CONST
            t.arg0[i0 + k] = -1
            t.val[i0 + k] = pc[k]
        t.arg1[i0 + k] = -1
    t.n = i0 + n
    return _fresh(t, i0, srcs.shape)


cdef Array _from_slots(Tape t, object m):
    """An Array over the slots in int64 ndarray m: a view if they are evenly spaced, else a
    gather."""
    shape = m.shape
    if m.size == 0:
        return _view(t, 0, shape, _c_strides(shape))
    flat = m.reshape(-1)
    cdef int64_t first = flat[0]
    strides = []
    for d in range(m.ndim):
        if shape[d] > 1:
            idx = [0] * m.ndim
            idx[d] = 1
            strides.append(int(m[tuple(idx)]) - first)
        else:
            strides.append(0)
    strides = tuple(strides)
    if np.array_equal(_slot_map(first, shape, strides), m):
        return _view(t, first, shape, strides)
    return _emit_gather(t, m, None)


# ---------------------------------------------------------------------------------------------
# Indexing and views

cdef bint _is_int(object k):
    return (isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_)))


cdef object _getitem(Array self, object key):
    cdef Array a = _bound(self)
    if a is None:  # no_grad: indexing the values
        try:
            r = self._value.reshape(self.shape)[key]
        except OverflowError:  # as recorded indexing says it
            raise IndexError(f"revad: index {key!r:.60} is out of bounds for an Array of shape "
                             f"{self.shape}") from None
        return _var_leaf(float(r)) if np.ndim(r) == 0 and not _has_ellipsis(key) else _const_leaf(r)
    if type(key) is not tuple:
        key = (key,)
    for k in key:
        if not (_is_int(k) or k is None or k is Ellipsis or type(k) is slice):
            return _advanced(a, key)
    cdef int64_t first = _slot0(a), i, n, st
    shape, strides = [], []
    cdef int nfixed = sum(1 for k in key if k is not None and k is not Ellipsis)
    if nfixed > len(a.shape):
        raise IndexError(f"too many indices for revad Array: array is {len(a.shape)}-dimensional, "
                         f"but {nfixed} were indexed")
    cdef int d = 0
    seen_ellipsis = False
    for k in key:
        if k is Ellipsis:
            if seen_ellipsis:
                raise IndexError("an index can only have a single ellipsis ('...')")
            seen_ellipsis = True
            for _ in range(len(a.shape) - nfixed):
                shape.append(a.shape[d])
                strides.append(a.strides[d])
                d += 1
        elif k is None:
            shape.append(1)
            strides.append(0)
        elif type(k) is slice:
            n, st = a.shape[d], a.strides[d]
            start, stop, step = k.indices(n)
            length = len(range(start, stop, step))
            if length:
                first += start * st
            shape.append(length)
            # A step past the axis (up to 2**63 and beyond) takes one element at most: its
            # stride is then never used, and must not overflow.
            strides.append(st * step if length > 1 else st)
            d += 1
        else:
            n = a.shape[d]
            if not -n <= k < n:  # in Python ints: k may not fit in C
                raise IndexError(f"revad: index {k} is out of bounds for axis {d} with size {n}")
            i = k
            if i < 0:
                i += n
            first += i * a.strides[d]
            d += 1
    while d < len(a.shape):
        shape.append(a.shape[d])
        strides.append(a.strides[d])
        d += 1
    if not shape and not seen_ellipsis:
        return _var_at(a.tape, <int32_t>first, a.tape.val[first])
    return _view(a.tape, first, tuple(shape), tuple(strides))


cdef object _item_1d(Array self, object key):
    """self[key] for a 1-d Array and an integer key: as _getitem gives it, without building a key
    tuple, lists or a bound view. Scalar code over an ndarray argument does this once per use of
    an element. A key past int64 raises OverflowError, for the caller to take _getitem's
    way."""
    return _element(self, key, key)


cdef inline object _element(Array self, int64_t i, object key):
    """self[i] of a 1-d Array: the element's Var, the index checked before any slot is
    read. Under no_grad a leaf's element is a leaf Var of its value. The errors are
    _out_of_bounds' (their formatting is most of the code)."""
    cdef int64_t n = self.size
    cdef Tape t = self.tape
    if i < -n or i >= n:
        return _out_of_bounds(self, i, key)
    if i < 0:
        i += n
    cdef int64_t slot
    if t is None:  # a leaf (C-contiguous): bound to this thread's tape, as _bound does
        t = _recording_tape()
        if t is None:
            return _var_leaf(_dptr(self._value)[i])
        # (the test _bind starts with, here: every element after the first takes it)
        slot = (self._first if self.bound == t.id else _bind(self, t)) + i
    else:
        slot = _slot0(self) + i * <int64_t>self.strides[0]
    return _var_at(t, <int32_t>slot, t.val[slot])


cdef object _out_of_bounds(Array self, int64_t i, object key):
    """_element's error for index i: under no_grad a leaf's goes to _getitem with the
    caller's key, if given (NumPy words it)."""
    if self.tape is None and key is not None and not _is_recording():
        return _getitem(self, key)
    raise IndexError(f"revad: index {i} is out of bounds for axis 0 with size "
                     f"{self.size}")


cdef Array _slice_1d(Array self, slice key):
    """self[key] for a 1-d Array and a slice: the view _getitem makes, without its lists."""
    cdef Py_ssize_t start, stop, step, length
    PySlice_GetIndicesEx(key, self.size, &start, &stop, &step, &length)
    cdef Array a = _bound(self)
    if a is None:  # no_grad: indexing the values
        return _const_leaf(self._value[key])
    cdef int64_t first = _slot0(a), st = a.strides[0]
    if length:
        first += start * st
    return _view(a.tape, first, (length,), (st * step,))


@cython.final
cdef class _Iter:
    """Iteration over an Array's first axis: a[0], a[1], ... (Vars of a 1-d Array), each taken
    when asked for, as a generator of a[i] would."""
    cdef Array a
    cdef Py_ssize_t k, n

    def __iter__(self):
        return self

    def __next__(self):
        cdef Py_ssize_t k = self.k
        if k >= self.n:
            raise StopIteration
        self.k = k + 1
        if len(self.a.shape) == 1:
            return _element(self.a, k, None)
        return _getitem(self.a, k)

    def __length_hint__(self):
        return self.n - self.k


cdef bint _has_ellipsis(object key):
    return key is Ellipsis or (type(key) is tuple and any(k is Ellipsis for k in key))


cdef Array _advanced(Array a, tuple key):
    for k in key:
        if type(k) is Array or type(k) is Var:
            raise TypeError("revad: an index must be constant (ints, slices, integer or boolean "
                            "ndarrays), not a revad Array or Var")
    m = _slot_map(_slot0(a), a.shape, a.strides)
    return _from_slots(a.tape, m[key])


cdef Array _transpose(Array self, axes):
    cdef int nd = len(self.shape)
    if axes is None:
        axes = tuple(range(nd - 1, -1, -1))
    else:
        if not isinstance(axes, (tuple, list)):
            axes = (axes,)
        for ax in axes:
            _axis_index(ax, max(nd, len(axes)), "axes")  # the type first, as NumPy
        if len(axes) != nd:
            raise ValueError(f"revad: axes {axes!r} don't match an Array of shape {self.shape}")
        axes = _axis_tuple(axes, nd, "axes")
    a = _bound(self)
    if a is None:
        return _const_leaf(np.transpose(self.value, axes))
    return _view(a.tape, _slot0(a), tuple(a.shape[ax] for ax in axes),
                 tuple(a.strides[ax] for ax in axes))


cdef tuple _dims(object shape, str what):
    """A shape a user gives (an integer or a sequence of them), as a tuple of Python ints."""
    dims = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    out = []
    for s in dims:
        if isinstance(s, (bool, np.bool_)):
            raise TypeError(f"revad: {what}: a dimension must be an integer, got {s!r}")
        try:
            out.append(operator.index(s))
        except TypeError:
            raise TypeError(f"revad: {what}: a dimension must be an integer, got "
                            f"{type(s).__name__} {s!r:.40}") from None
    return tuple(out)


cdef object _py_prod(tuple shape):
    """The product of Python ints, exact (a C product may wrap around)."""
    n = 1
    for s in shape:
        n *= s
    return n


cdef tuple _resolve_shape(tuple shape, int64_t size, tuple old):
    shape = _dims(shape, "reshape")
    if shape.count(-1) > 1 or any(s < -1 for s in shape):
        raise ValueError(f"revad: cannot reshape an Array of shape {old} into shape {shape}")
    if -1 in shape:
        rest = _py_prod(tuple(s for s in shape if s != -1))
        if rest == 0 or size % rest:
            raise ValueError(f"revad: cannot reshape an Array of shape {old} into shape {shape}")
        shape = tuple(size // rest if s == -1 else s for s in shape)
    if _py_prod(shape) != size:
        raise ValueError(f"revad: cannot reshape an Array of shape {old} into shape {shape}")
    return shape


cdef Array _reshape(Array self, tuple shape):
    shape = _resolve_shape(shape, self.size, self.shape)
    a = _bound(self)
    if a is None:
        return _const_leaf(self._value.reshape(shape))
    if _is_contiguous(a.shape, a.strides):
        return _view(a.tape, _slot0(a), shape, _c_strides(shape))
    return _from_slots(a.tape, _slot_map(_slot0(a), a.shape, a.strides).reshape(shape))


cdef object _axis_index(object ax, Py_ssize_t ndim, str argname):
    """One axis as NumPy takes it (an integer, not a bool; -ndim <= ax < ndim), as 0..ndim-1.
    Every axis a user names comes through here: shapes and strides are read at it unchecked."""
    if isinstance(ax, (bool, np.bool_)):
        raise TypeError(f"revad: {argname} must be an integer, got {ax!r}")
    try:
        i = operator.index(ax)
    except TypeError:
        raise TypeError(f"revad: {argname} must be an integer, got "
                        f"{type(ax).__name__} {ax!r:.40}") from None
    if not -ndim <= i < ndim:
        raise _AxisError(f"revad: {argname} {i} is out of bounds for an Array of dimension {ndim}")
    return i + ndim if i < 0 else i


cdef tuple _axis_tuple(object axis, Py_ssize_t ndim, str argname):
    """An axis or a tuple (list) of them, normalised, in the order given; repeats raise."""
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for ax in axes:
        ax = _axis_index(ax, ndim, argname)
        if ax in out:
            raise ValueError(f"revad: repeated axis {ax} in {argname} {axis!r}")
        out.append(ax)
    return tuple(out)


cdef tuple _norm_axes(object axis, Py_ssize_t ndim):
    """The axes a reduction runs over, sorted: None for all of them."""
    if axis is None:
        return tuple(range(ndim))
    if ndim == 0 and not isinstance(axis, (tuple, list)):
        _axis_index(axis, 1, "axis")  # as NumPy: one axis, 0 or -1, of a 0-d Array is all of it
        return ()
    return tuple(sorted(_axis_tuple(axis, ndim, "axis")))


cdef Array _squeeze(Array self, axis):
    if axis is None:
        axes = tuple(d for d in range(len(self.shape)) if self.shape[d] == 1)
    else:
        axes = _norm_axes(axis, len(self.shape))
        for d in axes:
            if self.shape[d] != 1:
                raise ValueError(f"revad: cannot squeeze axis {d} of an Array "
                                 f"of shape {self.shape}")
    a = _bound(self)
    if a is None:
        return _const_leaf(np.squeeze(self.value, axes))
    return _view(a.tape, _slot0(a), tuple(s for d, s in enumerate(a.shape) if d not in axes),
                 tuple(s for d, s in enumerate(a.strides) if d not in axes))


cdef Array _expand_dims(Array self, axis):
    axes = (axis,) if not isinstance(axis, (tuple, list)) else tuple(axis)
    nd = len(self.shape) + len(axes)
    axes = _norm_axes(axes, nd)
    a = _bound(self)
    if a is None:
        return _const_leaf(np.expand_dims(self.value, axes))
    shape, strides = list(a.shape), list(a.strides)
    for ax in axes:
        shape.insert(ax, 1)
        strides.insert(ax, 0)
    return _view(a.tape, _slot0(a), tuple(shape), tuple(strides))


cdef Array _broadcast_to(Array self, shape):
    shape = _dims(shape, "broadcast_to")
    if any(s < 0 for s in shape):
        raise ValueError(f"revad: broadcast_to: all elements of the shape {shape} must be "
                         "non-negative")
    if _py_prod(shape) > _MAX_ELEMENTS:
        raise ValueError(f"revad: broadcast_to: an Array of shape {shape} is too big")
    if _broadcast(self.shape, shape) != shape:
        raise ValueError(f"revad: cannot broadcast an Array of shape {self.shape} to {shape}")
    a = _bound(self)
    if a is None:
        return _const_leaf(np.broadcast_to(self.value, shape))
    return _view(a.tape, _slot0(a), shape, _aligned_strides(a, shape))


cdef Array _moveaxis_last(Array a, int axis):
    """The same Array with `axis` moved to the end (a view)."""
    order = [d for d in range(len(a.shape)) if d != axis] + [axis]
    return _view(a.tape, _slot0(a), tuple(a.shape[d] for d in order),
                 tuple(a.strides[d] for d in order))
