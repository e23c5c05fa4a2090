# Shapes, strides and slot maps: the arithmetic of views.
# Part of revad._array (included textually by _array.pyx: one module, several files).

# ---------------------------------------------------------------------------------------------
# Shapes and slot maps

cdef tuple _c_strides(tuple shape):
    """Strides (in slots) of a C-contiguous array of this shape."""
    cdef list st = [0] * len(shape)
    cdef int64_t acc = 1
    cdef Py_ssize_t d
    for d in range(len(shape) - 1, -1, -1):
        st[d] = acc
        acc *= <int64_t>shape[d]
    return tuple(st)


# The most elements an Array may have (NumPy's bound for float64: its bytes fit in an intp).
cdef object _MAX_ELEMENTS = 1 << 60


cdef int64_t _prod(tuple shape):
    """The number of elements of a shape; one too large for int64 (two broadcast views, say)
    gives INT64_MAX, which no tape can reserve, rather than wrapping around."""
    cdef int64_t n = 1, m
    cdef bint big = False
    for s in shape:
        m = <int64_t>s
        if m == 0:
            return 0
        if n > INT64_MAX // m:
            big = True
        else:
            n *= m
    return INT64_MAX if big else n


cdef int _check_entries(int64_t n) except -1:
    """Raise unless n new entries fit on a tape (int32 slots): before any is reserved, since a
    size near INT64_MAX would wrap the tape's own check around. (OverflowError, as the tape's.)"""
    if n > INT32_MAX:
        raise OverflowError(f"revad: an op with {n} elements is larger than a tape holds "
                            "(a tape holds at most 2**31 - 1 entries)")
    return 0


cdef bint _is_contiguous(tuple shape, tuple strides):
    cdef int64_t acc = 1
    cdef Py_ssize_t d
    for d in range(len(shape) - 1, -1, -1):
        if shape[d] != 1 and strides[d] != acc:
            return False
        acc *= <int64_t>shape[d]
    return True


cdef object _slot_map(int64_t first, tuple shape, tuple strides):
    """int64 ndarray of `shape`: the slot of every element (vectorised, no Python per element)."""
    if _is_contiguous(shape, strides):
        return np.arange(first, first + _prod(shape), dtype=np.int64).reshape(shape)
    m = np.array(first, dtype=np.int64)
    for n, s in zip(shape, strides):
        m = np.add.outer(m, np.arange(n, dtype=np.int64) * s)
    return np.asarray(m, order="C").reshape(shape)


cdef tuple _aligned_strides(Array a, tuple out_shape):
    """a's strides for broadcasting to out_shape (0 along broadcast dimensions)."""
    cdef Py_ssize_t lead = len(out_shape) - len(a.shape)
    st = [0] * lead
    for d in range(len(a.shape)):
        st.append(0 if a.shape[d] == 1 and out_shape[lead + d] != 1 else a.strides[d])
    return tuple(st)


cdef tuple _broadcast(tuple s1, tuple s2):
    """NumPy's broadcast shape of s1 and s2 (in C: it is on every elementwise op's path)."""
    if s1 == s2 or len(s2) == 0:
        return s1
    if len(s1) == 0:
        return s2
    cdef Py_ssize_t n1 = len(s1), n2 = len(s2), n = max(n1, n2), d
    cdef list out = [1] * n
    for d in range(n):
        a = s1[d - n + n1] if d >= n - n1 else 1
        b = s2[d - n + n2] if d >= n - n2 else 1
        if a == b or b == 1:
            out[d] = a
        elif a == 1:
            out[d] = b
        else:
            raise ValueError(f"revad: operands could not be broadcast together with shapes "
                             f"{s1} {s2}")
    return tuple(out)


cdef void *_data(object m) except NULL:
    """Address of element (0, ..., 0) of ndarray m, which the caller keeps alive. Through the
    buffer protocol: __array_interface__ builds a dict per call, 10x slower on small arrays."""
    cdef Py_buffer view
    PyObject_GetBuffer(m, &view, PyBUF_STRIDES)
    cdef void *p = view.buf
    PyBuffer_Release(&view)
    return p


cdef inline const int64_t *_iptr(object m) except NULL:
    """Data pointer of a contiguous int64 ndarray (kept alive by the caller)."""
    return <const int64_t *>_data(m)


cdef inline const double *_dptr(object m) except NULL:
    return <const double *>_data(m)
