# cython: wraparound=True
# revad.Array: a view over node slots of a tape, like a NumPy array is a view over memory.
#
# An Array is (tape, first slot, shape, strides in slots). Views (slicing, .T, reshape of a
# contiguous array) record nothing. An elementwise op is one group (ops.h, EW): its values on
# consecutive new slots, one entry at the last of them naming the table row and the operands'
# strides (broadcast, strided or reversed), and the sweeps run the row's formulas in one loop
# per line. Reductions and dot products are block entries: one entry per output element; a
# matrix product is one group whose backward is one BLAS call per operand. Nothing here runs
# Python per element.
cimport cython
from cpython.buffer cimport PyBUF_STRIDES, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport INT32_MAX, int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcpy, memset

cdef extern from "fingerprint.h" nogil:
    uint64_t rv_fingerprint(const void *data, size_t len, uint64_t seed)

from revad._core cimport (
    RV_ADD, RV_CONST, RV_COPY, RV_DIV, RV_DOT, RV_DOTC, RV_LEAF, RV_MUL, RV_POW, RV_SQUARE,
    RV_SUB, RV_MAXIMUM, RV_MINIMUM, RV_NEG, RV_ABS, RV_EXP, RV_LOG, RV_SQRT,
    RV_BLK_DOT, RV_BLK_DOTC, RV_MM, RV_MMP, RV_BLK_MM, RV_EW, RV_EW_MAXD,
    RV_LT, RV_LE, RV_GT, RV_GE, RV_EQ, RV_NE,
    Tape, Var, _as_double, _current_tape, _is_recording, _raise_finished, _var_at, _var_leaf,
    _var_slot, rv_binary, rv_block_forward, rv_ew_arity, rv_ew_forward, rv_ew_width,
    rv_sums_forward, rv_sums_width, rv_unary, RV_SUMS)

import operator
import os
import threading

import numpy as np

# NumPy >= 1.25 keeps it in numpy.exceptions; older ones (down to our floor, 1.23) at the top.
_AxisError = getattr(np, "exceptions", np).AxisError

from revad import _core


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


cdef int64_t _prod(tuple shape):
    cdef int64_t n = 1
    for s in shape:
        n *= <int64_t>s
    return n


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


# ---------------------------------------------------------------------------------------------
# The Array type

@cython.final
cdef class Array:
    """An n-dimensional array whose elements are recorded on revad's tape.

    ``revad.Array(values)`` makes a leaf (an input) from real numbers; ``grad(f)`` passes Arrays
    to ``f`` for ndarray arguments. Arithmetic, indexing, NumPy's ufuncs (``np.exp(a)``) and
    functions (``np.sum(a, axis=0)``, ``np.dot(A, a)``) return Arrays; ``a[i]`` of a 1-d Array is
    a ``Var``. Each elementwise op, sum along axes or matrix product is one group on the tape:
    its values on consecutive slots and one entry that the sweeps run as one C loop (or BLAS
    call).

    A constant NumPy matrix used in a dot product is copied into the tape, so that changing it
    before ``backward()`` cannot change the gradient. A large one (1 MiB or more) is not copied:
    the tape references it and records a fingerprint of its bytes along with the product, and
    ``backward()`` raises if it was modified after it was recorded. A read-only one (all the way
    down: ``A.setflags(write=False)``) is referenced without a fingerprint.

    >>> import numpy as np, revad
    >>> x = revad.Array([1.0, 2.0, 3.0])
    >>> y = np.sum(np.exp(x) * 2.0)
    >>> y.backward()
    >>> np.round(x.grad, 4)
    array([ 5.4366, 14.7781, 40.1711])
    """
    cdef Tape tape            # None for a leaf
    cdef int64_t first        # slot of element (0, ..., 0); for a leaf, where it is bound
    cdef readonly tuple shape
    cdef tuple strides        # in slots; may be 0 (broadcast) or negative
    cdef readonly int64_t size
    cdef object _value        # leaves: float64 1-d contiguous values
    cdef object _grad         # leaves: float64 1-d contiguous, summed over backward calls
    cdef uint64_t bound       # leaves: id of the tape where `first` is valid (0: none)

    def __init__(self, values):
        v = np.asarray(values)
        if v.dtype.kind not in "biuf":
            raise TypeError(f"revad.Array needs real numbers, got an array of dtype {v.dtype}")
        v = np.array(v, dtype=np.float64, order="C", copy=True)
        self.shape = v.shape
        self.strides = _c_strides(v.shape)
        self.size = v.size
        self._value = v.reshape(-1)
        self._grad = np.zeros(v.size)

    # -- what NumPy code asks of an array ----------------------------------------------------

    @property
    def ndim(self):
        """Number of dimensions."""
        return len(self.shape)

    @property
    def dtype(self):
        """Always float64: what the values are."""
        return np.dtype(np.float64)

    @property
    def T(self):
        """The transpose (a view: records nothing)."""
        return self.transpose()

    @property
    def value(self):
        """The values, as a new float64 ndarray.

        >>> import revad
        >>> (revad.Array([1.0, 2.0]) * 3).value
        array([3., 6.])
        """
        if self.tape is None:
            return self._value.reshape(self.shape).copy()
        return _col_view(self.tape.val, self).copy()

    @property
    def is_leaf(self):
        """True for inputs made by ``revad.Array(...)``."""
        return self.tape is None

    @property
    def grad(self):
        """d(output)/d(self) as a float64 ndarray of this shape (zeros before backward).

        For a leaf it sums over backward calls; settable to None (or zeros) to reset it.

        >>> import revad
        >>> x = revad.Array([1.0, 2.0])
        >>> (x * x).sum().backward()
        >>> x.grad
        array([2., 4.])
        """
        if self.tape is None:
            return self._grad.reshape(self.shape).copy()
        if not self.tape.has_adj:
            return np.zeros(self.shape)
        return _col_view(self.tape.adj, self).copy()

    @grad.setter
    def grad(self, new):
        if self.tape is not None:
            raise AttributeError("revad: the grad of an intermediate Array is read-only")
        self._grad[:] = 0.0 if new is None else np.broadcast_to(np.asarray(new, np.float64), self.shape).reshape(-1)

    def backward(self):
        """Sweep back from this 0-d (or one-element) Array, as ``Var.backward``.

        >>> import revad
        >>> x = revad.Array([3.0])
        >>> (x * x).sum().backward()
        >>> x.grad
        array([6.])
        """
        if self.size != 1:
            raise ValueError(f"revad: backward() needs a scalar output, this Array has shape "
                             f"{self.shape}; reduce it (e.g. .sum()) first")
        self._scalar().backward()

    cdef object _scalar(self):
        """The one element of a size-1 Array as a Var."""
        cdef Array b = _bound(self)
        if b is None:
            return _var_leaf(float(self._value[0]))
        return _var_at(b.tape, <int32_t>b.first, b.tape.val[b.first])

    def item(self):
        """The value of a one-element Array as a float."""
        if self.size != 1:
            raise ValueError(f"revad: item() needs a one-element Array, got shape {self.shape}")
        return float(self.value.reshape(-1)[0])

    def __float__(self):
        return self.item()

    def __bool__(self):
        if self.size != 1:
            raise ValueError(f"revad: the truth value of an Array of shape {self.shape} is "
                             "ambiguous; use .value.any() or .value.all()")
        return self.item() != 0.0

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d revad Array")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d revad Array")
        for i in range(self.shape[0]):
            yield self[i]

    def __repr__(self):
        return f"Array(value={self.value!r})"

    def __array__(self, dtype=None, copy=None):
        raise TypeError("revad: converting a revad Array to a NumPy array would drop its "
                        "gradient; use .value for the numbers, or a NumPy function revad "
                        "supports (see revad.numpy)")

    def __reduce__(self):
        return Array, (self.value,)

    # -- indexing ----------------------------------------------------------------------------

    def __getitem__(self, key):
        return _getitem(self, key)

    def __setitem__(self, key, value):
        raise TypeError("revad: Arrays are immutable (the tape records values once); build a "
                        "new one, e.g. with revad.numpy.where or concatenate")

    # -- views -------------------------------------------------------------------------------

    def transpose(self, *axes):
        """The transpose, or the axes permuted (a view)."""
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return _transpose(self, axes if axes else None)

    def reshape(self, *shape, order="C"):
        """The same elements in a new shape (a view when they are evenly spaced)."""
        if order != "C":
            raise TypeError("revad: reshape supports order='C' only")
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        return _reshape(self, tuple(shape))

    def ravel(self):
        """The elements as a 1-d Array (a view when they are evenly spaced)."""
        return _reshape(self, (-1,))

    def flatten(self):
        """As ravel."""
        return _reshape(self, (-1,))

    def squeeze(self, axis=None):
        """Drop dimensions of size 1 (a view)."""
        return _squeeze(self, axis)

    def copy(self):
        """Arrays are immutable: the same Array."""
        return self

    def astype(self, dtype, copy=True):
        """Only float dtypes keep a gradient; returns the same Array."""
        if np.dtype(dtype).kind != "f":
            raise TypeError(f"revad: cannot cast an Array to {np.dtype(dtype)}; it would drop "
                            "the gradient (use .value)")
        return self

    # -- reductions and products as methods ---------------------------------------------------

    def sum(self, axis=None, keepdims=False):
        """Sum over axis (None: all), one tape entry per output element."""
        return _sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        """Mean over axis (None: all)."""
        return _mean(self, axis, keepdims)

    def prod(self, axis=None, keepdims=False):
        """Product over axis (None: all)."""
        return _tree_reduce(self, RV_MUL, axis, keepdims, "prod")

    def max(self, axis=None, keepdims=False):
        """Maximum over axis (None: all); ties split the gradient."""
        return _tree_reduce(self, RV_MAXIMUM, axis, keepdims, "max")

    def min(self, axis=None, keepdims=False):
        """Minimum over axis (None: all); ties split the gradient."""
        return _tree_reduce(self, RV_MINIMUM, axis, keepdims, "min")

    def cumsum(self, axis=None):
        """Cumulative sum along axis (None: of the flattened Array)."""
        return _cumsum(self, axis)

    def dot(self, other):
        """As numpy.dot."""
        return _dot(self, other)

    def clip(self, a_min=None, a_max=None):
        """As numpy.clip: the gradient passes where the value is inside [a_min, a_max]."""
        return _clip(self, a_min, a_max)

    # -- arithmetic (c_api_binop_methods: self may be either operand) -------------------------

    def __add__(x, y):
        return _binop(RV_ADD, x, y)

    def __sub__(x, y):
        return _binop(RV_SUB, x, y)

    def __mul__(x, y):
        return _binop(RV_MUL, x, y)

    def __truediv__(x, y):
        return _binop(RV_DIV, x, y)

    def __pow__(x, y, mod):
        if mod is not None:
            return NotImplemented
        return _binop(RV_POW, x, y)

    def __matmul__(x, y):
        return _matmul(x, y)

    def __neg__(self):
        return _unop(RV_NEG, self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _unop(RV_ABS, self)

    def __lt__(self, other):
        return _compare(RV_LT, self, other)

    def __le__(self, other):
        return _compare(RV_LE, self, other)

    def __gt__(self, other):
        return _compare(RV_GT, self, other)

    def __ge__(self, other):
        return _compare(RV_GE, self, other)

    def __eq__(self, other):
        return _compare(RV_EQ, self, other)

    def __ne__(self, other):
        return _compare(RV_NE, self, other)

    # -- NumPy's protocols -------------------------------------------------------------------

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        impl = _FUNCTIONS.get(func)
        if impl is None:
            raise TypeError(f"revad: numpy.{_qualname(func)} is not supported on revad Arrays "
                            "(computing it on the values would silently drop the gradient); "
                            "write it with supported functions or use .value for a constant")
        return impl(*args, **kwargs)


cdef str _qualname(func):
    mod = getattr(func, "__module__", "") or ""
    name = getattr(func, "__name__", repr(func))
    if mod.startswith("numpy.") and mod not in ("numpy.core.fromnumeric", "numpy._core.fromnumeric",
                                                 "numpy._core.multiarray", "numpy._core.numeric",
                                                 "numpy._core.shape_base", "numpy.lib._shape_base_impl",
                                                 "numpy.lib._function_base_impl"):
        sub = mod.split(".")[1].lstrip("_")
        if sub in ("linalg", "fft", "random"):
            return f"{sub}.{name}"
    return name


# ---------------------------------------------------------------------------------------------
# Making Arrays

cdef inline Array _view(Tape t, int64_t first, tuple shape, tuple strides):
    cdef Array r = Array.__new__(Array)
    r.tape = t
    r.first = first
    r.shape = shape
    r.strides = strides
    r.size = _prod(shape)
    return r


cdef inline Array _fresh(Tape t, int64_t first, tuple shape):
    return _view(t, first, shape, _c_strides(shape))


cdef Array _const_leaf(object values):
    """A leaf holding values (the result of an op under no_grad)."""
    cdef Array r = Array.__new__(Array)
    v = np.array(values, dtype=np.float64, order="C", copy=True)
    r.shape = v.shape
    r.strides = _c_strides(v.shape)
    r.size = v.size
    r._value = v.reshape(-1)
    r._grad = np.zeros(v.size)
    return r


cdef int64_t _bind(Array a, Tape t) except -1:
    """Record leaf a on tape t (once: n LEAF entries in one loop) and return its first slot."""
    if a.bound == t.id:
        return a.first
    cdef int64_t n = a.size, i0
    t.reserve(n)
    i0 = t.n
    if n:
        _fill_entries(t, i0, n, RV_LEAF)
        memcpy(t.val + i0, _dptr(a._value), n * sizeof(double))
    t.n = i0 + n
    t.leaf_blocks.append((a._grad, i0))
    a.bound = t.id
    a.first = i0
    return i0


cdef Array _on(Array a, Tape t):
    """a as a view on tape t (binding a leaf there)."""
    if a.tape is not None:
        return a
    return _view(t, _bind(a, t), a.shape, a.strides)


cdef Array _bound(Array a):
    """a on a tape (a leaf binds to this thread's current one); None when not recording."""
    if a.tape is not None:
        return a
    if not _is_recording():
        return None
    return _on(a, _current_tape())


cdef Tape _tape_for(tuple operands):
    """The tape an op on these operands records on, or None under no_grad."""
    if not _is_recording():
        return None
    cdef Tape t = None, ot
    for o in operands:
        if type(o) is Array:
            ot = (<Array>o).tape
        elif type(o) is Var:
            ot = (<Var>o).tape
        else:
            continue
        if ot is None:
            continue
        if t is None:
            t = ot
        elif ot is not t:
            raise ValueError("revad: these operands belong to different tapes (different "
                             "computations, or different grad() calls); combine values of one "
                             "computation only")
    if t is None:
        return _current_tape()
    if t.finished:
        _raise_finished()
    return t


cdef inline void _fill_entries(Tape t, int64_t i0, int64_t n, int code) noexcept:
    """Entries i0 .. i0+n-1 get op `code` and no operand slots (-1: all bits set); values apart."""
    memset(t.op + i0, code, <size_t>n)
    memset(t.arg0 + i0, 0xFF, <size_t>n * sizeof(int32_t))
    memset(t.arg1 + i0, 0xFF, <size_t>n * sizeof(int32_t))


cdef object _col_view(double *col, Array a):
    """a's elements in one of its tape's double columns (val or adj) as an ndarray VIEW (strides
    in bytes; no slot map, no copy). Valid until the tape's columns next grow: copy or use it
    before recording more."""
    if a.size == 0:
        return np.zeros(a.shape)
    cdef int64_t lo = a.first, hi = a.first, n, st
    cdef Py_ssize_t d
    for d in range(len(a.shape)):
        n, st = a.shape[d], a.strides[d]
        if st < 0:
            lo += (n - 1) * st
        else:
            hi += (n - 1) * st
    return np.ndarray(a.shape, np.float64, <double[:hi - lo + 1]>(col + lo), (a.first - lo) * 8,
                      tuple([8 * st for st in a.strides]))


cdef object _peek(Array a):
    """a's values without a copy (a view of its tape's column, or of a leaf's values), to read at
    once: before anything more is recorded."""
    if a.tape is None:
        return a._value.reshape(a.shape)
    return _col_view(a.tape.val, a)


cdef object _values(object o):
    """The values of an operand: ndarray for an Array, float for a Var, else as given."""
    if type(o) is Array:
        return (<Array>o).value
    if type(o) is Var:
        return (<Var>o).v
    return o


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
        a = np.asarray(o)
        if a.dtype.kind not in "biuf":
            if a.dtype == object:
                raise TypeError("revad: an object array (of Vars?) cannot be combined with a "
                                "revad Array; make it an Array (revad.numpy.array)")
            raise TypeError(f"revad: cannot combine a revad Array with an array of dtype {a.dtype}")
        if a.ndim == 0:
            return float(a)
        return a.astype(np.float64, copy=False)
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
    """x op y with NumPy broadcasting; at least one of x, y is an Array."""
    cdef double c
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
    return _emit_ew(t, code, _broadcast(_shape_or_const(a, cx), _shape_or_const(b, cy)), a, cx, b, cy)


cdef inline tuple _shape_or_const(Array a, object c):
    """The shape of an operand: Array a, or constant c (a float or a float64 ndarray)."""
    return a.shape if a is not None else (() if type(c) is float else c.shape)


# Constant array operands of up to this many elements go into the tape's constant pool; larger
# ones are kept as arrays of their own (copied, or referenced if read-only all the way down).
cdef int64_t _EW_POOL_MAX = 64


cdef int _ew_operand(Tape t, tuple out_shape, Array v, object c, int64_t *q, int64_t *st) except -1:
    """Describe one operand of an elementwise group (ops.h, EW): its base and offset into q[0:2],
    its strides aligned to out_shape (0 where broadcast) into st."""
    cdef Py_ssize_t nd = len(out_shape), lead, d
    cdef int64_t k, m, c0
    cdef const double *pc
    if v is not None:
        q[0], q[1] = -1, v.first
        shape, strides = v.shape, v.strides
    elif type(c) is float:
        q[0], q[1] = -2, t.push_const(<double>c)
        for d in range(nd):
            st[d] = 0
        return 0
    else:
        shape = c.shape
        if (c.dtype == np.float64 and _readonly_chain(c) and c.strides is not None
                and all(s % 8 == 0 for s in c.strides)):
            q[0], q[1] = t.push_cptr(c), 0
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
                q[0], q[1] = -2, c0
            else:
                q[0], q[1] = t.push_cptr(np.array(c, dtype=np.float64, order="C", copy=True)), 0
    lead = nd - len(shape)
    for d in range(nd):
        if d < lead or (shape[d - lead] == 1 and out_shape[d] != 1):
            st[d] = 0
        else:
            st[d] = strides[d - lead]
    return 0


cdef Array _emit_ew(Tape t, int code, tuple out_shape, Array a, object ca, Array b, object cb):
    """One elementwise group (ops.h, EW): code over out_shape with broadcast operands, each an
    Array view (a, b) or a constant (ca, cb: a float or a float64 ndarray); b/cb unused for a
    unary code. Its n values are computed here by the same C loop a replay runs."""
    cdef int arity = rv_ew_arity(code)
    cdef int64_t n = _prod(out_shape), nd0 = len(out_shape), nd = 0, d, ext, w, bi, i0
    cdef int64_t shp[RV_EW_MAXD]
    cdef int64_t st0[RV_EW_MAXD]
    cdef int64_t st1[RV_EW_MAXD]
    cdef int64_t q0[2]
    cdef int64_t q1[2]
    cdef int64_t *p
    if nd0 > RV_EW_MAXD:
        raise ValueError(f"revad: arrays of more than {RV_EW_MAXD} dimensions are not supported")
    if n == 0:
        return _fresh(t, t.n, out_shape)
    _ew_operand(t, out_shape, a, ca, q0, st0)
    if arity == 2:
        _ew_operand(t, out_shape, b, cb, q1, st1)
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
    t.reserve(n)
    bi = t.push_blk(w)
    if bi + w > INT32_MAX:
        raise OverflowError("revad: the tape's block table is full")
    i0 = t.n
    p = t.blk + bi
    p[0], p[1], p[2], p[3] = i0, n, code, nd
    for d in range(nd):
        p[4 + d] = shp[d]
    p += 4 + nd
    p[0], p[1] = q0[0], q0[1]
    for d in range(nd):
        p[2 + d] = st0[d]
    if arity == 2:
        p += 2 + nd
        p[0], p[1] = q1[0], q1[1]
        for d in range(nd):
            p[2 + d] = st1[d]
    memset(t.op + i0, RV_MMP, n - 1)
    t.op[i0 + n - 1] = RV_EW
    t.arg0[i0 + n - 1] = <int32_t>bi
    t.arg1[i0 + n - 1] = -1
    t.n = i0 + n
    rv_ew_forward(t.blk + bi, t.val, t.cst, t.cptr)
    return _fresh(t, i0, out_shape)


def _apply(int code, int arity, tuple args):
    """revad's Function objects hand Array arguments here (registered with _core)."""
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
    return np.asarray(<double[:t.n]>t.val)[r.first:r.first + r.size].reshape(r.shape) != 0.0


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
    """An Array over the slots in int64 ndarray m: a view if they are evenly spaced, else a gather."""
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
        r = self._value.reshape(self.shape)[key]
        return _var_leaf(float(r)) if np.ndim(r) == 0 and not _has_ellipsis(key) else _const_leaf(r)
    if type(key) is not tuple:
        key = (key,)
    for k in key:
        if not (_is_int(k) or k is None or k is Ellipsis or type(k) is slice):
            return _advanced(a, key)
    cdef int64_t first = a.first, i, n, st
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
            strides.append(st * step)
            d += 1
        else:
            n = a.shape[d]
            i = k
            if i < -n or i >= n:
                raise IndexError(f"index {i} is out of bounds for axis {d} with size {n}")
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


cdef bint _has_ellipsis(object key):
    return key is Ellipsis or (type(key) is tuple and any(k is Ellipsis for k in key))


cdef Array _advanced(Array a, tuple key):
    for k in key:
        if type(k) is Array or type(k) is Var:
            raise TypeError("revad: an index must be constant (ints, slices, integer or boolean "
                            "ndarrays), not a revad Array or Var")
    m = _slot_map(a.first, a.shape, a.strides)
    return _from_slots(a.tape, m[key])


cdef Array _transpose(Array self, axes):
    cdef int nd = len(self.shape)
    if axes is None:
        axes = tuple(range(nd - 1, -1, -1))
    axes = tuple(int(ax) + nd if int(ax) < 0 else int(ax) for ax in axes)
    if sorted(axes) != list(range(nd)):
        raise ValueError(f"revad: axes {axes} don't match an Array of shape {self.shape}")
    a = _bound(self)
    if a is None:
        return _const_leaf(np.transpose(self.value, axes))
    return _view(a.tape, a.first, tuple(a.shape[ax] for ax in axes),
                 tuple(a.strides[ax] for ax in axes))


cdef tuple _resolve_shape(tuple shape, int64_t size, tuple old):
    shape = tuple(int(s) for s in shape)
    if shape.count(-1) > 1 or any(s < -1 for s in shape):
        raise ValueError(f"revad: cannot reshape an Array of shape {old} into shape {shape}")
    if -1 in shape:
        rest = _prod(tuple(s for s in shape if s != -1))
        if rest == 0 or size % rest:
            raise ValueError(f"revad: cannot reshape an Array of shape {old} into shape {shape}")
        shape = tuple(size // rest if s == -1 else s for s in shape)
    if _prod(shape) != size:
        raise ValueError(f"revad: cannot reshape an Array of shape {old} into shape {shape}")
    return shape


cdef Array _reshape(Array self, tuple shape):
    shape = _resolve_shape(shape, self.size, self.shape)
    a = _bound(self)
    if a is None:
        return _const_leaf(self._value.reshape(shape))
    if _is_contiguous(a.shape, a.strides):
        return _view(a.tape, a.first, shape, _c_strides(shape))
    return _from_slots(a.tape, _slot_map(a.first, a.shape, a.strides).reshape(shape))


cdef tuple _norm_axes(object axis, int ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if not isinstance(axis, (tuple, list)) else tuple(axis)
    out = []
    for ax in axes:
        if not _is_int(ax) or not -ndim <= ax < max(ndim, 1) or (ndim == 0):
            raise _AxisError(f"revad: axis {ax} is out of bounds for an Array of "
                                          f"dimension {ndim}")
        ax = int(ax) % ndim
        if ax in out:
            raise ValueError(f"revad: repeated axis {ax}")
        out.append(ax)
    return tuple(sorted(out))


cdef Array _squeeze(Array self, axis):
    if axis is None:
        axes = tuple(d for d in range(len(self.shape)) if self.shape[d] == 1)
    else:
        axes = _norm_axes(axis, len(self.shape))
        for d in axes:
            if self.shape[d] != 1:
                raise ValueError(f"revad: cannot squeeze axis {d} of an Array of shape {self.shape}")
    a = _bound(self)
    if a is None:
        return _const_leaf(np.squeeze(self.value, axes))
    return _view(a.tape, a.first, tuple(s for d, s in enumerate(a.shape) if d not in axes),
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
    return _view(a.tape, a.first, tuple(shape), tuple(strides))


cdef Array _broadcast_to(Array self, shape):
    shape = tuple(shape) if isinstance(shape, (tuple, list)) else (int(shape),)
    if _broadcast(self.shape, shape) != shape:
        raise ValueError(f"revad: cannot broadcast an Array of shape {self.shape} to {shape}")
    a = _bound(self)
    if a is None:
        return _const_leaf(np.broadcast_to(self.value, shape))
    return _view(a.tape, a.first, shape, _aligned_strides(a, shape))


cdef Array _moveaxis_last(Array a, int axis):
    """The same Array with `axis` moved to the end (a view)."""
    order = [d for d in range(len(a.shape)) if d != axis] + [axis]
    return _view(a.tape, a.first, tuple(a.shape[d] for d in order),
                 tuple(a.strides[d] for d in order))


# ---------------------------------------------------------------------------------------------
# Reductions: sum groups (SUMS) and trees of elementwise groups.

cdef Array _emit_sum(Tape t, int64_t first, tuple out_shape, tuple out_strides, int64_t stride,
                     int64_t count):
    """One sum group (ops.h, SUMS): for each element of out_shape, the sum of the `count` slots
    `stride` apart from first + (the element's index . out_strides)."""
    cdef int64_t nd = len(out_shape), n = _prod(out_shape), w, bi, i0, d
    if nd > RV_EW_MAXD:
        raise ValueError(f"revad: arrays of more than {RV_EW_MAXD} dimensions are not supported")
    if n == 0:
        return _fresh(t, t.n, out_shape)
    w = rv_sums_width(nd)
    t.reserve(n)
    bi = t.push_blk(w)
    if bi + w > INT32_MAX:
        raise OverflowError("revad: the tape's block table is full")
    i0 = t.n
    cdef int64_t *p = t.blk + bi
    p[0], p[1], p[2] = i0, n, nd
    for d in range(nd):
        p[3 + d] = out_shape[d]
        p[4 + nd + d] = out_strides[d]
    p[3 + nd], p[4 + 2 * nd], p[5 + 2 * nd] = first, count, stride
    memset(t.op + i0, RV_MMP, <size_t>(n - 1))
    t.op[i0 + n - 1] = RV_SUMS
    t.arg0[i0 + n - 1] = <int32_t>bi
    t.arg1[i0 + n - 1] = -1
    t.n = i0 + n
    rv_sums_forward(t.blk + bi, t.val)
    return _fresh(t, i0, out_shape)


cdef tuple _collapse(tuple shape, tuple strides):
    """Merge dimensions into as few (size, stride) lines as possible (size-1 dims dropped)."""
    dims = [(n, s) for n, s in zip(shape, strides) if n != 1]
    out = []
    for n, s in reversed(dims):
        if out and out[-1][1] * out[-1][0] == s:
            out[-1] = (out[-1][0] * n, out[-1][1])
        else:
            out.append((n, s))
    return tuple(reversed(out))


cdef object _sum(object x, object axis, bint keepdims):
    if type(x) is not Array:
        x = _to_array(x)
    cdef Array self = <Array>x
    axes = _norm_axes(axis, len(self.shape))
    cdef Array a = _bound(self)
    if a is None:
        return _const_leaf(np.sum(self.value, axis=axes, keepdims=keepdims))
    kept = [d for d in range(len(a.shape)) if d not in axes]
    out_shape = tuple(a.shape[d] for d in kept)
    lines = _collapse(tuple(a.shape[d] for d in axes), tuple(a.strides[d] for d in axes))
    if len(lines) <= 1:
        count, stride = lines[0] if lines else (_prod(tuple(a.shape[d] for d in axes)), 1)
        r = _emit_sum(a.tape, a.first, out_shape, tuple(a.strides[d] for d in kept), stride, count)
    else:
        # Not one evenly spaced line: sum the innermost reduced axis first, then the rest.
        inner = axes[0]
        for d in axes:
            if abs(a.strides[d]) < abs(a.strides[inner]):
                inner = d
        part = _sum(a, inner, False)
        rest = tuple(d - (d > inner) for d in axes if d != inner)
        r = _sum(part, rest, False)
    if keepdims:
        r = _reshape(r, tuple([1 if d in axes else a.shape[d] for d in range(len(a.shape))]))
    return r


cdef object _mean(object x, object axis, bint keepdims):
    if type(x) is not Array:
        x = _to_array(x)
    axes = _norm_axes(axis, len((<Array>x).shape))
    cdef int64_t count = _prod(tuple((<Array>x).shape[d] for d in axes))
    return _binop(RV_DIV, _sum(x, axis, keepdims), float(count))


cdef object _tree_reduce(object x, int code, object axis, bint keepdims, str name):
    """prod/max/min over axes by a balanced tree of elementwise entries: O(input) entries,
    O(log n) Python steps, and (unlike picking the argmax) replayable at new inputs."""
    if type(x) is not Array:
        x = _to_array(x)
    cdef Array self = <Array>x
    axes = _norm_axes(axis, len(self.shape))
    for d in axes:
        if self.shape[d] == 0 and code != RV_MUL:
            raise ValueError(f"revad: zero-size Array (shape {self.shape}) to reduction "
                             f"operation {name}, which has no identity")
    cdef Array a = _bound(self)
    if a is None:
        fn = {RV_MUL: np.prod, RV_MAXIMUM: np.max, RV_MINIMUM: np.min}[code]
        return _const_leaf(fn(self.value, axis=axes, keepdims=keepdims))
    kept = [d for d in range(len(a.shape)) if d not in axes]
    out_shape = tuple(a.shape[d] for d in kept)
    # The reduced axis goes first (a view, for one axis): each level's pairs are then two blocks
    # of lines, and an odd line out is appended to the level's fresh block as a view.
    r = _transpose(a, axes + tuple(kept))
    if len(axes) != 1:
        r = _reshape(r, (-1,) + out_shape) if axes else _reshape(r, (1,) + out_shape)
    cdef int64_t L = r.shape[0], h
    if L == 0:  # an empty product is 1
        r = _emit_gather(a.tape, np.full(out_shape, -1, np.int64), np.ones(out_shape))
    else:
        while L > 1:
            h = L // 2
            paired = _binop(code, r[:h], r[h:2 * h])
            r = _append_line(a.tape, paired, r[2 * h, ...]) if L % 2 else paired
            L = r.shape[0]
        r = r[0, ...]
    if keepdims:
        r = _reshape(r, tuple(1 if d in axes else a.shape[d] for d in range(len(a.shape))))
    return r


cdef Array _append_line(Tape t, Array block, Array line):
    """block (lines along axis 0) with `line` appended: when block is the last thing recorded, in
    C order, COPY entries of line's elements right after it make both one view; else joined."""
    if block.first + block.size == t.n and _is_contiguous(block.shape, block.strides):
        _emit_gather(t, _slot_map(line.first, line.shape, line.strides), None)
        shape = (block.shape[0] + 1,) + block.shape[1:]
        return _view(t, block.first, shape, _c_strides(shape))
    return _concatenate([block, _expand_dims(line, 0)], 0)


cdef object _cumsum(object x, object axis):
    if type(x) is not Array:
        x = _to_array(x)
    cdef Array self = <Array>x
    if axis is None:
        self = _reshape(self, (-1,))
        axis = 0
    ax = _norm_axes(axis, len(self.shape))[0]
    cdef Array a = _bound(self)
    if a is None:
        return _const_leaf(np.cumsum(self.value, axis=ax))
    cdef Array last = _moveaxis_last(a, ax)
    m = _slot_map(last.first, last.shape, last.strides)
    cdef Tape t = a.tape
    cdef int64_t L = a.shape[ax], lines = m.size // L if L else 0, i, j, s, i0, k = 0
    m = np.asarray(m, dtype=np.int64, order="C")
    cdef const int64_t *pm = _iptr(m) if m.size else NULL
    t.reserve(m.size)
    i0 = t.n
    for i in range(lines):
        for j in range(L):
            s = pm[i * L + j]
            if j == 0:
                t.op[i0 + k] = RV_COPY
                t.arg0[i0 + k] = <int32_t>s
                t.arg1[i0 + k] = -1
                t.val[i0 + k] = t.val[s]
            else:
                t.op[i0 + k] = RV_ADD
                t.arg0[i0 + k] = <int32_t>(i0 + k - 1)
                t.arg1[i0 + k] = <int32_t>s
                t.val[i0 + k] = t.val[i0 + k - 1] + t.val[s]
            k += 1
    t.n = i0 + k
    r = _fresh(t, i0, m.shape)
    # back from (..., axis last) to the original order
    nd = len(a.shape)
    inv = list(range(nd - 1))
    inv.insert(ax, nd - 1)
    return _transpose(r, tuple(inv))


cdef object _logsumexp(object x, object axis, bint keepdims):
    """log(sum(exp(x))) computed stably: the maximum (a constant) is subtracted first."""
    if type(x) is not Array:
        x = _to_array(x)
    axes = _norm_axes(axis, len((<Array>x).shape))
    v = _peek(<Array>x)
    m = np.max(v, axis=axes, keepdims=True) if v.size else np.zeros([1] * v.ndim)
    m = np.where(np.isfinite(m), m, 0.0)
    m.setflags(write=False)  # ours alone: the tape may reference it rather than copy it
    r = _core.functions["log"](_sum(_unop(RV_EXP, _binop(RV_SUB, x, m)), axes, True)) + m
    if not keepdims:
        r = _squeeze(r, axes)
    return r


# ---------------------------------------------------------------------------------------------
# Dot products: DOTC (Array with a constant) and DOT (Array with Array) block entries.

cdef bint _readonly_chain(object a):
    """Whether nothing can write a's memory: a and every array it views are read-only."""
    while isinstance(a, np.ndarray):
        if a.flags.writeable:
            return False
        a = a.base
    return a is None or isinstance(a, bytes)


cdef tuple _keep_const(Tape t, object c, bint rows):
    """Store constant matrix c (k, n) for the tape; returns (cptr index, row step, element step)
    in doubles, so that row r, element j is at cptr[i][r*row + j*elem]. It is copied (rows
    contiguous) unless it is read-only all the way down, which is the zero-copy opt-in."""
    if not (c.dtype == np.float64 and _readonly_chain(c)
            and c.strides[0] % 8 == 0 and c.strides[1] % 8 == 0):
        c = np.array(c, dtype=np.float64, order="C", copy=True)
    return t.push_cptr(c), c.strides[0] // 8, c.strides[1] // 8


cdef Array _emit_dots(Tape t, int code, object values, object starts0, int64_t stride0,
                      object starts1, int64_t stride1, int64_t count, int64_t ci,
                      object coffs, int64_t cstride):
    """One DOTC (starts1 None) or DOT entry per element of starts0, with the given values."""
    starts0 = np.asarray(starts0, dtype=np.int64, order="C")
    values = np.asarray(values, dtype=np.float64, order="C")
    cdef int64_t n = starts0.size, k, i0, b, w = RV_BLK_DOTC if code == RV_DOTC else RV_BLK_DOT
    if n == 0:
        return _fresh(t, t.n, starts0.shape)
    other = np.asarray(coffs if code == RV_DOTC else starts1, dtype=np.int64, order="C")
    cdef const int64_t *p0 = _iptr(starts0)
    cdef const int64_t *p1 = _iptr(other)
    cdef const double *pv = _dptr(values)
    cdef int64_t *p
    t.reserve(n)
    b = t.push_blk(w * n)
    if b + w * n > INT32_MAX:
        raise OverflowError("revad: the tape's block table is full")
    i0 = t.n
    for k in range(n):
        p = t.blk + b + w * k
        if code == RV_DOTC:
            p[0] = p0[k]; p[1] = stride0; p[2] = count; p[3] = ci; p[4] = p1[k]; p[5] = cstride
        else:
            p[0] = p0[k]; p[1] = stride0; p[2] = p1[k]; p[3] = stride1; p[4] = count
        t.op[i0 + k] = <uint8_t>code
        t.arg0[i0 + k] = <int32_t>(b + w * k)
        t.arg1[i0 + k] = -1
        t.val[i0 + k] = pv[k]
    t.n = i0 + n
    return _fresh(t, i0, starts0.shape)


# A product with more than one output is one matrix-product group (ops.h, MM) whose backward
# is one BLAS call per operand once it has at least _mm_blas_work multiply-adds (below that the
# group's C loops beat NumPy's call overhead). A single output (a dot of two vectors) stays one
# DOT or DOTC entry. _mm_groups off records DOTC/DOT entries throughout (the reference path).
cdef bint _mm_groups = True
cdef int64_t _mm_blas_work = 4096


def _matmul_config(groups=None, blas_work=None, watch_block=None, watch_threads=None):
    """Testing hook: (groups, blas_work, watch_block, watch_threads) as they were; sets those
    given."""
    global _mm_groups, _mm_blas_work, _WATCH_BLOCK_BYTES, _WATCH_THREADS
    old = (_mm_groups, _mm_blas_work, _WATCH_BLOCK_BYTES, _WATCH_THREADS)
    if groups is not None:
        _mm_groups = groups
    if blas_work is not None:
        _mm_blas_work = blas_work
    if watch_block is not None:
        _WATCH_BLOCK_BYTES = watch_block
    if watch_threads is not None:
        _WATCH_THREADS = watch_threads
    return old



cdef Array _mm_block(Tape t, Array a, int64_t *o):
    """a (2-d) as a group operand: rows or columns of one contiguous block of slots (gathered
    into one if it is neither); writes its descriptor (ops.h, MM) to o and returns it."""
    rows, cols = a.shape
    if not _is_contiguous(a.shape, a.strides) and not _is_contiguous((cols, rows), (a.strides[1], a.strides[0])):
        a = _emit_gather(t, _slot_map(a.first, a.shape, a.strides), None)
    o[0] = -1
    o[1] = a.first
    if _is_contiguous(a.shape, a.strides):
        o[2], o[3] = cols, 1
    else:
        o[2], o[3] = 1, rows
    return a


cdef Array _emit_mm(Tape t, object x, object y, Array a, Array b):
    """One matrix-product group for x @ y (a, b: x, y as views on t, None for a constant): m*q
    new slots, the last one carrying it. The product is computed straight into the tape's val
    column (no temporary to fault in, nothing to copy)."""
    cdef int64_t d[13]
    cdef int64_t m, n, q, size, i0, bi, k
    kx = ky = None
    if a is not None:
        a = _mm_block(t, a, d + 4)
        m, n = a.shape
    else:
        kx = _keep_matrix(t, x, d + 4)
        m, n = x.shape
    if b is not None:
        b = _mm_block(t, b, d + 8)
        q = b.shape[1]
    else:
        ky = _keep_matrix(t, y, d + 8)
        q = y.shape[1]
    size = m * q
    bi = t.push_blk(RV_BLK_MM)
    if bi + RV_BLK_MM > INT32_MAX:
        raise OverflowError("revad: the tape's block table is full")
    t.reserve(size)  # the gathers (if any) are done: views of val stay valid from here on
    i0 = t.n
    d[0], d[1], d[2], d[3] = i0, m, n, q
    # A referenced constant is checked as BLAS reads it: its group always takes the BLAS path.
    d[12] = 1 if (m * n * q >= _mm_blas_work or type(kx) is _Watched or type(ky) is _Watched) else 0
    for k in range(RV_BLK_MM):
        t.blk[bi + k] = d[k]
    out = np.ndarray((m, q), np.float64, <double[:size]>(t.val + i0))
    xv = _col_view(t.val, a) if a is not None else kx
    yv = _col_view(t.val, b) if b is not None else ky
    if type(kx) is _Watched:
        _watched_product(kx, yv, True, False, out, False)
    elif type(ky) is _Watched:
        _watched_product(ky, xv, False, False, out, False)
    else:
        np.matmul(xv, yv, out=out)
    memset(t.op + i0, RV_MMP, <size_t>(size - 1))  # placeholders: their operand columns unused
    t.op[i0 + size - 1] = RV_MM
    t.arg0[i0 + size - 1] = <int32_t>bi
    t.arg1[i0 + size - 1] = -1
    t.n = i0 + size
    return _fresh(t, i0, (m, q))


# Constant matrices in a group. A small one is copied: changing the user's array after recording
# cannot change the gradient. A read-only one (all the way down) is referenced: nothing can change
# it. A large writable one (1 MiB or more: a data matrix, read by every training step) is
# referenced too -- a copy, or a comparison with an earlier copy, would read it a second time in
# the forward pass -- and fingerprinted instead: the forward product multiplies it block of rows
# by block of rows (about 2 MiB each) and hashes each block while it is in cache; each backward
# product does the same and adds its result to the adjoints only if every block is unchanged. A
# changed one raises (as PyTorch does for a tensor modified in place after it was saved for
# backward). Block size, measured on the 10^4 x 10^3 logreg and the MLP's 256 x 784 data (2
# cores, one busy elsewhere): 1 MiB splits the MLP's 1.6 MB matrix in two and doubles its BLAS
# calls (twice as slow on BLAS's threads); from 4 MiB up OpenBLAS threads each block's gemv,
# which lost 5-10x while the other core was busy; one block of all 80 MB is hashed from memory,
# not cache (+40%).
cdef int64_t _WATCH_MIN_BYTES = 1 << 20
cdef int64_t _WATCH_BLOCK_BYTES = 1 << 21


class _Watched(np.ndarray):
    """A large writable constant the tape references instead of copying (a view of the user's
    array, same memory), with the fingerprints of its blocks as the forward product read them.
    The backward sweep (``_mm_backward_blas``) takes its products from here, checked."""

    def t_matmul_checked(self, G):
        """self.T @ G, raising if self changed since it was recorded."""
        return _watched_product(self, G, True, True, None, True)

    def rmatmul_t_checked(self, G):
        """G @ self.T, raising if self changed since it was recorded."""
        return _watched_product(self, G, False, True, None, True)

    def check(self):
        """Raise if self changed since it was recorded (for readers of the tape other than BLAS)."""
        _watched_product(self, None, True, False, None, True)


cdef bint _watchable(object c):
    return (c.nbytes >= _WATCH_MIN_BYTES and c.dtype == np.float64
            and (c.flags.c_contiguous or c.flags.f_contiguous))


cdef object _keep_matrix(Tape t, object c, int64_t *o):
    """Constant matrix c for a group, as the tape keeps it (see above); writes its descriptor
    (ops.h, MM) to o and returns what the tape holds."""
    if c.dtype == np.float64 and c.strides[0] % 8 == 0 and c.strides[1] % 8 == 0 and _readonly_chain(c):
        k = np.asarray(c)  # a plain ndarray (not a subclass such as memmap) over the same memory
    elif _watchable(c):
        k = c.view(_Watched)
        m = c if c.flags.c_contiguous else c.T
        k._rv_m = np.asarray(m)         # the memory in C order: its rows are the hashed blocks
        k._rv_trans = m is not c        # c is m.T
        k._rv_rows = max(1, _WATCH_BLOCK_BYTES // max(1, m.strides[0]))
        k._rv_digests = np.zeros(-(-m.shape[0] // k._rv_rows), dtype=np.uint64)
        k._rv_shape = c.shape
    else:
        k = np.array(c, dtype=np.float64, order="C", copy=True)
    o[0] = t.push_cptr(k)
    o[1] = 0
    o[2] = k.strides[0] // 8
    o[3] = k.strides[1] // 8
    return k


cdef object _watched_product(object w, object Z, bint left, bint transpose, object out, bint verify):
    """op(w) @ Z (left) or Z @ op(w), op: transposed or not; into out (or a new array), block of
    rows of w's memory by block: each block is multiplied, then hashed (seeded with its index)
    while it is in cache. verify: compare each hash with the recorded one (raise on a mismatch);
    else record it. Z None: only hash (check or record)."""
    cdef _Blocks run = _Blocks.__new__(_Blocks)
    M = w._rv_m
    run.M, run.Z, run.digests, run.verify = M, Z, w._rv_digests, verify
    run.left = left
    run.te = w._rv_trans != transpose           # op(w) is M.T
    run.direct = left != run.te                 # blocks of M rows split the output
    run.rows, run.nrows, run.rb = w._rv_rows, M.shape[0], M.strides[0]
    run.base = <const char *>_dptr(M)
    run.bad = []
    cdef int64_t nblk = -(-run.nrows // run.rows), k, nthreads = 1
    if Z is not None and out is None:
        if left:
            oshape = (M.shape[1] if run.te else run.nrows, Z.shape[1])
        else:
            oshape = (Z.shape[0], run.nrows if run.te else M.shape[1])
        out = np.empty(oshape)
    run.out = out
    # A product with a thin Z (a matrix-vector product, say) streams w from memory doing little
    # arithmetic: one core's bandwidth is then the limit, and BLAS on a 2 MiB block stays on one
    # thread. Blocks are then shared out to threads (each multiplies and hashes its blocks).
    if Z is not None and (Z.shape[1] if left else Z.shape[0]) <= _WATCH_THIN:
        nthreads = max(1, min(_WATCH_THREADS, nblk // 2))
    if nthreads == 1:
        run.work(0, 1, out)
    else:
        parts = [out] + [None if run.direct else np.empty_like(out) for k in range(nthreads - 1)]
        threads = [threading.Thread(target=run.work, args=(k, nthreads, parts[k]))
                   for k in range(1, nthreads)]
        for th in threads:
            th.start()
        try:
            run.work(0, nthreads, out)
        finally:
            for th in threads:
                th.join()
        if not run.direct:
            for k in range(1, nthreads):
                out += parts[k]
    if run.bad:
        if isinstance(run.bad[0], BaseException):
            raise run.bad[0]
        raise RuntimeError(
            f"revad: a constant array used by this computation was modified after it was "
            f"recorded (shape {w._rv_shape}, dtype float64); the gradient would be wrong. "
            f"Copy it before modifying it, or record again")
    return out


cdef int64_t _WATCH_THIN = 16
cdef int64_t _WATCH_THREADS = min(4, os.cpu_count() or 1)


@cython.final
cdef class _Blocks:
    """One fingerprinted product (see _watched_product): the blocks of M that work() takes."""
    cdef object M, Z, out, digests
    cdef list bad                  # mismatched blocks, or an exception from a thread
    cdef bint left, te, direct, verify
    cdef int64_t rows, nrows, rb
    cdef const char *base

    def work(self, int64_t first, int64_t step, acc):
        """Blocks first, first + step, ...: multiplied (into out, or summed into acc), hashed."""
        cdef int64_t blk = first, r0, r1
        cdef uint64_t[::1] dig = self.digests
        cdef uint64_t h
        cdef size_t nb
        cdef bint fresh = True
        M, Z, out = self.M, self.Z, self.out
        part = None
        try:
            while blk * self.rows < self.nrows:
                r0 = blk * self.rows
                r1 = min(self.nrows, r0 + self.rows)
                if Z is not None:
                    # np.dot, not np.matmul: two threads' matmul calls ran one at a time (measured)
                    Mb = M[r0:r1]
                    if self.direct:
                        res = out[r0:r1] if self.left else out[:, r0:r1]
                        X1, X2 = (Mb, Z) if self.left else (Z, Mb.T)
                        if res.flags.c_contiguous:
                            np.dot(X1, X2, out=res)
                        else:
                            res[...] = np.dot(X1, X2)
                    else:
                        X1, X2 = (Mb.T, Z[r0:r1]) if self.left else (Z[:, r0:r1], Mb)
                        if fresh:
                            np.dot(X1, X2, out=acc)
                            fresh = False
                        else:
                            if part is None:
                                part = np.empty_like(acc)
                            np.dot(X1, X2, out=part)
                            acc += part
                # Hashed after the product: BLAS has just brought the block into cache.
                nb = <size_t>((r1 - r0) * self.rb)
                with nogil:
                    h = rv_fingerprint(self.base + r0 * self.rb, nb, <uint64_t>blk)
                if not self.verify:
                    dig[blk] = h
                elif h != dig[blk]:
                    self.bad.append(blk)
                    return
                blk += step
            if fresh and not self.direct and Z is not None:
                acc[...] = 0.0  # this thread had no block
        except BaseException as e:
            self.bad.append(e)


def _check_constants(Var y):
    """Raise if a large constant referenced by y's tape changed since it was recorded: for a
    sweep that reads constants other than through BLAS (forward mode)."""
    if y.tape is not None:
        for c in y.tape.refs:
            if type(c) is _Watched:
                c.check()


def _fingerprint(a, seed=0):
    """The 64-bit fingerprint (fingerprint.h) of a C-contiguous array's bytes (for tests)."""
    a = np.ascontiguousarray(a)
    return int(rv_fingerprint(<const void *><size_t>a.__array_interface__["data"][0],
                              <size_t>a.nbytes, <uint64_t>seed))


cdef object _matmul2(object x, object y, Tape t):
    """(m, n) @ (n, p) with at least one Array operand, both 2-d."""
    cdef Array a = _as_view(x, t)
    cdef Array b = _as_view(y, t)
    sx = a.shape if a is not None else x.shape
    sy = b.shape if b is not None else y.shape
    m, n = sx
    n2, p = sy
    if n != n2:
        raise ValueError(f"revad: matmul shapes {sx} and {sy} do not align ({n} != {n2})")
    # A single output stays one DOT/DOTC entry, unless a large constant would have to be copied
    # for it: a group references it instead.
    if _mm_groups and (m * p > 1 or (a is None and _watchable(x)) or (b is None and _watchable(y))):
        return _emit_mm(t, x, y, a, b)
    values = np.dot(_peek(a) if a is not None else x, _peek(b) if b is not None else y)
    I = np.arange(m, dtype=np.int64)[:, None]
    J = np.arange(p, dtype=np.int64)[None, :]
    # Each row of x and column of y is one strided line of slots. A line that several outputs
    # read and that is not contiguous is first gathered contiguous (COPY entries, O(input)),
    # so that the backward's axpy over it streams through memory instead of striding.
    cdef int64_t row_first = 0, row_step = 0, row_stride = 0, col_first = 0, col_step = 0, col_stride = 0
    if a is not None:
        if a.strides[1] != 1 and n > 1 and p > 1:
            a = _emit_gather(t, _slot_map(a.first, (m, n), a.strides), None)
        row_first, row_step, row_stride = a.first, a.strides[0], a.strides[1]
    if b is not None:
        if b.strides[0] != 1 and n > 1 and m > 1:
            b = _emit_gather(t, _slot_map(b.first, (p, n), (b.strides[1], b.strides[0])), None)
            col_first, col_step, col_stride = b.first, n, 1
        else:
            col_first, col_step, col_stride = b.first, b.strides[1], b.strides[0]
    if a is not None and b is not None:
        s0 = np.broadcast_to(row_first + I * row_step, (m, p))
        s1 = np.broadcast_to(col_first + J * col_step, (m, p))
        return _emit_dots(t, RV_DOT, values, s0, row_stride, s1, col_stride, n, 0, None, 0)
    if a is not None:  # Array rows . constant columns: store y transposed, columns as rows
        ci, row, elem = _keep_const(t, np.asarray(y).T, True)
        s0 = np.broadcast_to(row_first + I * row_step, (m, p))
        co = np.broadcast_to(J * row, (m, p))
        return _emit_dots(t, RV_DOTC, values, s0, row_stride, None, 0, n, ci, co, elem)
    ci, row, elem = _keep_const(t, np.asarray(x), True)
    s0 = np.broadcast_to(col_first + J * col_step, (m, p))
    co = np.broadcast_to(I * row, (m, p))
    return _emit_dots(t, RV_DOTC, values, s0, col_stride, None, 0, n, ci, co, elem)


cdef object _operand(object o):
    """An Array, Var, or a float64 ndarray constant for dot products."""
    if type(o) is Array or type(o) is Var:
        return o
    c = _as_const(o)
    if c is NotImplemented:
        raise TypeError(f"revad: cannot take a dot product with a {type(o).__name__}")
    return np.asarray(c, dtype=np.float64)


cdef tuple _shape_of(object o):
    return (<Array>o).shape if type(o) is Array else (() if type(o) is Var else o.shape)


cdef object _matmul(object x, object y):
    x, y = _operand(x), _operand(y)
    sx, sy = _shape_of(x), _shape_of(y)
    if len(sx) == 0 or len(sy) == 0:
        raise ValueError(f"revad: matmul: input operand does not have enough dimensions "
                         f"(shapes {sx} and {sy})")
    if len(sx) > 2 or len(sy) > 2:
        return _matmul_stack(x, y, sx, sy)
    return _dot(x, y)


cdef object _dot(object x, object y):
    """numpy.dot for 0-d, 1-d and 2-d operands."""
    x, y = _operand(x), _operand(y)
    sx, sy = _shape_of(x), _shape_of(y)
    if len(sx) == 0 or len(sy) == 0:
        return _binop(RV_MUL, x, y)
    if len(sx) > 2 or len(sy) > 2:
        raise TypeError(f"revad: numpy.dot of arrays with more than 2 dimensions (shapes {sx} "
                        f"and {sy}) is not supported; matmul (@) and einsum are")
    if sx[-1] != sy[0]:
        raise ValueError(f"revad: shapes {sx} and {sy} not aligned: {sx[-1]} (dim {len(sx) - 1}) "
                         f"!= {sy[0]} (dim 0)")
    cdef Tape t = _tape_for((x, y))
    if t is None:
        return _const_leaf(np.dot(np.asarray(_values(x)), np.asarray(_values(y))))
    x2 = x if len(sx) == 2 else (_reshape(_on(x, t), (1, sx[0])) if type(x) is Array else x.reshape(1, -1))
    y2 = y if len(sy) == 2 else (_reshape(_on(y, t), (sy[0], 1)) if type(y) is Array else y.reshape(-1, 1))
    r = _matmul2(x2, y2, t)
    out_shape = sx[:-1] + sy[1:]
    return _reshape(r, out_shape) if r.shape != out_shape else r


cdef object _outer(object x, object y):
    x = _ravel_any(x)
    y = _ravel_any(y)
    return _binop(RV_MUL, _index_any(x, (slice(None), None)), _index_any(y, (None, slice(None))))


cdef object _ravel_any(object o):
    if type(o) is Array:
        return _reshape(o, (-1,))
    if type(o) is Var:
        return _stack_like([o], 0)
    return np.ravel(o)


cdef object _index_any(object o, tuple key):
    return o[key]


# ---------------------------------------------------------------------------------------------
# Stacks of matrices (matmul of more than 2 dimensions) and einsum, built on the 2-d products.

cdef object _reshape_any(object o, tuple shape):
    return _reshape(<Array>o, shape) if type(o) is Array else np.reshape(o, shape)


cdef object _matmul_stack(object x, object y, tuple sx, tuple sy):
    """NumPy's matmul of stacks: (..., m, n) @ (..., n, p), the leading dimensions broadcast
    (a 1-d operand is a row or a column, as in NumPy); one matrix product per matrix."""
    x0, y0 = sx, sy
    if len(sx) == 1:
        x, sx = _reshape_any(x, (1,) + sx), (1,) + sx
    if len(sy) == 1:
        y, sy = _reshape_any(y, sy + (1,)), sy + (1,)
    if sx[-1] != sy[-2]:
        raise ValueError(f"revad: matmul: shapes {x0} and {y0} do not align ({sx[-1]} != {sy[-2]})")
    try:
        batch = tuple(np.broadcast_shapes(sx[:-2], sy[:-2]))
    except ValueError:
        raise ValueError(f"revad: matmul: the stacks of shapes {x0} and {y0} do not broadcast") from None
    m, p = sx[-2], sy[-1]
    out_shape = batch + (m, p)
    cdef Tape t = _tape_for((x, y))
    if t is None:
        r = _const_leaf(np.matmul(np.asarray(_values(x)), np.asarray(_values(y))))
    else:
        xs = _broadcast_to(_on(x, t), batch + sx[-2:]) if type(x) is Array else np.broadcast_to(x, batch + sx[-2:])
        ys = _broadcast_to(_on(y, t), batch + sy[-2:]) if type(y) is Array else np.broadcast_to(y, batch + sy[-2:])
        parts = [_as_array_on(_matmul2(xs[idx], ys[idx], t), t) for idx in np.ndindex(*batch)]
        r = _stacked(t, parts, out_shape)
    if len(x0) == 1:
        out_shape = out_shape[:-2] + out_shape[-1:]
    if len(y0) == 1:
        out_shape = out_shape[:-1]
    return _reshape(r, out_shape) if r.shape != out_shape else r


cdef Array _as_array_on(object r, Tape t):
    return r if type(r) is Array else _view(t, _var_slot(<Var>r, t), (), ())


cdef Array _stacked(Tape t, list parts, tuple shape):
    """parts (equal shapes) stacked: a view when they lie one after another on the tape, as
    consecutive groups do, else a gather."""
    if not parts:
        return _fresh(t, t.n, shape)
    cdef Array p0 = parts[0], p
    cdef int64_t k, size = p0.size
    for k in range(len(parts)):
        p = parts[k]
        if p.first != p0.first + k * size or not _is_contiguous(p.shape, p.strides):
            return _reshape(_stack_like(parts, 0), shape)
    return _view(t, p0.first, shape, _c_strides(shape))


cdef object _einsum(str subscripts, tuple operands):
    """numpy.einsum for one or two operands without '...': sums, transposes, products and
    contractions, the contractions as matrix products."""
    if "." in subscripts:
        raise TypeError("revad: numpy.einsum with '...' is not supported on revad Arrays")
    spec = subscripts.replace(" ", "")
    ins, arrow, out = spec.partition("->")
    terms = ins.split(",")
    if len(terms) != len(operands) or len(operands) not in (1, 2):
        raise TypeError(f"revad: numpy.einsum of {len(operands)} operands for {subscripts!r} is not "
                        "supported (one or two operands)")
    if not arrow:  # implicit output: the letters used once, in alphabetical order
        out = "".join(sorted([c for c in set(ins) if c.isalpha() and ins.count(c) == 1]))
    ops = [_to_array(o) if type(o) is Var else _operand(o) for o in operands]
    extent = {}
    for term, o in zip(terms, ops):
        shape = _shape_of(o)
        if len(term) != len(shape) or len(set(term)) != len(term):
            raise ValueError(f"revad: einsum: {term!r} does not index an operand of shape {shape} "
                             "(one letter per dimension, none repeated)")
        for c, n in zip(term, shape):
            if extent.setdefault(c, n) != n and 1 not in (n, extent[c]):
                raise ValueError(f"revad: einsum: letter {c!r} has extents {extent[c]} and {n}")
            extent[c] = max(extent[c], n)
    if len(set(out)) != len(out) or any([c not in extent for c in out]):
        raise ValueError(f"revad: einsum: invalid output subscripts {out!r}")
    # Letters in one operand only and not in the output are summed out first.
    for j in range(len(ops)):
        others = "".join(terms[:j] + terms[j + 1:]) + out
        gone = tuple([d for d, c in enumerate(terms[j]) if c not in others])
        if gone:
            ops[j] = _sum_any(ops[j], gone)
            terms[j] = "".join([c for c in terms[j] if c in others])
    if len(ops) == 1:
        return _transpose_any(ops[0], tuple([terms[0].index(c) for c in out]))
    a, b = terms
    batch = [c for c in out if c in a and c in b]
    left = [c for c in out if c in a and c not in b]
    right = [c for c in out if c in b and c not in a]
    inner = [c for c in a if c in b and c not in out]
    if not left and not right:  # a product summed over `inner`: no matrix to multiply
        order = batch + inner
        prod = _binop(RV_MUL, _aligned(ops[0], a, order), _aligned(ops[1], b, order))
        r = _sum_any(prod, tuple(range(len(batch), len(order)))) if inner else prod
        return _transpose_any(r, tuple([batch.index(c) for c in out]))
    nb, nl, nr, nc = [_prod(tuple([extent[c] for c in g])) for g in (batch, left, right, inner)]
    A = _reshape_any(_aligned(ops[0], a, batch + left + inner, extent), (nb, nl, nc))
    B = _reshape_any(_aligned(ops[1], b, batch + inner + right, extent), (nb, nc, nr))
    r = _reshape_any(_matmul_stack(A, B, (nb, nl, nc), (nb, nc, nr)),
                     tuple([extent[c] for c in batch + left + right]))
    return _transpose_any(r, tuple([(batch + left + right).index(c) for c in out]))


cdef object _aligned(object o, str term, list order, dict extent=None):
    """Operand o (indexed by term) transposed to the letters `order`; letters it lacks become
    unit dimensions, broadcast to their extent when `extent` is given."""
    o = _transpose_any(o, tuple([term.index(c) for c in order if c in term]))
    shape = tuple(_shape_of(o))
    full, k = [], 0
    for c in order:
        if c in term:
            full.append(shape[k])
            k += 1
        else:
            full.append(1)
    o = _reshape_any(o, tuple(full))
    if extent is not None:
        want = tuple([extent[c] for c in order])
        if tuple(full) != want:
            o = _broadcast_to(o, want) if type(o) is Array else np.broadcast_to(o, want)
    return o


cdef object _transpose_any(object o, tuple axes):
    if axes == tuple(range(len(axes))):
        return o
    return _transpose(<Array>o, axes) if type(o) is Array else np.transpose(o, axes)


cdef object _sum_any(object o, tuple axes):
    return _sum(o, axes, False) if type(o) is Array else np.sum(o, axis=axes)


# ---------------------------------------------------------------------------------------------
# Joining and selecting

cdef object _to_array(object o):
    """Arrays as they are; Vars, numbers and sequences of them as (recorded) Arrays."""
    if type(o) is Array:
        return o
    if type(o) is Var:
        t = _tape_for((o,))
        if t is None:
            return _const_leaf((<Var>o).v)
        return _view(t, _var_slot(<Var>o, t), (), ())
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
            maps.append(_slot_map(a.first, a.shape, a.strides))
            consts.append(np.zeros(a.shape))
        else:
            c = np.asarray(o, dtype=np.float64)
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
    items = list(arrays)
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
        raise ValueError(f"revad: cannot concatenate shapes "
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
        raise ValueError(f"revad: cannot stack shapes "
                         f"{[_shape_of(o) if type(o) in (Array, Var) else np.shape(o) for o in items]}: {e}") from None


cdef object _node_or_const(object o):
    if type(o) is Array or type(o) is Var:
        return o
    if isinstance(o, (list, tuple)) and _contains_node(o):
        return array(o)
    return np.asarray(o, dtype=np.float64)


cdef object _where(object cond, object x, object y):
    if type(cond) is Array or type(cond) is Var:
        cond = np.asarray(_values(cond)) != 0
    cond = np.asarray(cond, dtype=bool)
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
    if type(lo) in (Array, Var) or type(hi) in (Array, Var):
        r = a
        if lo is not None:
            r = _binop(RV_MAXIMUM, r, lo)
        if hi is not None:
            r = _binop(RV_MINIMUM, r, hi)
        return r
    v = np.asarray(_values(a), dtype=np.float64)
    c = np.clip(v, lo, hi)
    inside = np.ones(v.shape, dtype=bool)
    if lo is not None:
        inside &= v >= lo
    if hi is not None:
        inside &= v <= hi
    return _where(inside, a, c)


cdef object _take(object a, object indices, object axis):
    a = _to_array(a)
    if axis is None:
        return _reshape(a, (-1,))[np.asarray(indices)]
    ax = _norm_axes(axis, len((<Array>a).shape))[0]
    return a[(slice(None),) * ax + (np.asarray(indices),)]


cdef object _norm(object x, object ord, object axis, bint keepdims):
    x = _to_array(x)
    if ord is None or ord == 2 or ord == "fro":
        if ord == 2 and (axis is None and len((<Array>x).shape) == 2 or isinstance(axis, tuple) and len(axis) == 2):
            raise TypeError("revad: numpy.linalg.norm with ord=2 of a matrix (its largest "
                            "singular value) is not supported; use ord='fro'")
        return _unop(RV_SQRT, _sum(_unop(RV_SQUARE, x), axis, keepdims))
    if ord == 1:
        return _sum(_unop(RV_ABS, x), axis, keepdims)
    if ord == np.inf:
        return _tree_reduce(_unop(RV_ABS, x), RV_MAXIMUM, axis, keepdims, "max")
    raise TypeError(f"revad: numpy.linalg.norm with ord={ord!r} is not supported")


# ---------------------------------------------------------------------------------------------
# NumPy's protocols

cdef dict _UFUNC_CODES = {}
for _name, _fn in _core.functions.items():
    _UFUNC_CODES[_name] = (_fn.code, _fn.arity)
for _name, _target in _core._aliases.items():
    _UFUNC_CODES[_name] = _UFUNC_CODES[_target]

_LN2 = 0.6931471805599453
_LN10 = 2.302585092994046

_UFUNC_EXTRA = {
    "positive": lambda x: x,
    "conjugate": lambda x: x,
    "reciprocal": lambda x: _binop(RV_DIV, 1.0, x),
    "log2": lambda x: _binop(RV_DIV, _unop(RV_LOG, x), _LN2),
    "log10": lambda x: _binop(RV_DIV, _unop(RV_LOG, x), _LN10),
    "exp2": lambda x: _unop(RV_EXP, _binop(RV_MUL, x, _LN2)),
    "matmul": lambda x, y: _matmul(x, y),
    "logaddexp": lambda x, y: _logaddexp(x, y),
    # Comparisons: bool arrays, recorded for replay (see _compare).
    "less": lambda x, y: _compare(RV_LT, x, y),
    "less_equal": lambda x, y: _compare(RV_LE, x, y),
    "greater": lambda x, y: _compare(RV_GT, x, y),
    "greater_equal": lambda x, y: _compare(RV_GE, x, y),
    "equal": lambda x, y: _compare(RV_EQ, x, y),
    "not_equal": lambda x, y: _compare(RV_NE, x, y),
}
# No gradient anywhere (or almost everywhere): their results are constants, as in autograd.
_UFUNC_CONST = {"sign", "floor", "ceil", "rint", "trunc", "isnan", "isinf", "isfinite",
                "signbit", "logical_and", "logical_or", "logical_not", "logical_xor"}


cdef object _logaddexp(object x, object y):
    m = _binop(RV_MAXIMUM, x, y)
    d = _unop(RV_ABS, _binop(RV_SUB, x, y))
    return _binop(RV_ADD, m, _core.functions["log1p"](_unop(RV_EXP, _unop(RV_NEG, d))))


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
        if name in _UFUNC_CODES:
            code, arity = _UFUNC_CODES[name]
            return _apply(code, arity, inputs)
        if name in _UFUNC_EXTRA:
            return _UFUNC_EXTRA[name](*inputs)
        if name in _UFUNC_CONST:
            return ufunc(*[np.asarray(_values(i)) for i in inputs])
    elif method == "reduce" and len(inputs) == 1 and not set(kwargs) - {"axis", "keepdims", "dtype"}:
        axis = kwargs.get("axis", 0)
        keepdims = kwargs.get("keepdims", False)
        if name == "add":
            return _sum(inputs[0], axis, keepdims)
        red = {"multiply": (RV_MUL, "prod"), "maximum": (RV_MAXIMUM, "max"),
               "minimum": (RV_MINIMUM, "min")}.get(name)
        if red is not None:
            return _tree_reduce(inputs[0], red[0], axis, keepdims, red[1])
    elif method == "accumulate" and name == "add" and len(inputs) == 1:
        return _cumsum(inputs[0], kwargs.get("axis", 0))
    raise TypeError(f"revad: numpy.{name} (method {method!r}) is not differentiable by revad "
                    "on Arrays; computing it on the values would silently drop the gradient")


def _np_sum(a, axis=None, dtype=None, out=None, keepdims=False, **kw):
    _no_out("sum", out)
    return _sum(_to_array(a), axis, keepdims)


def _np_mean(a, axis=None, dtype=None, out=None, keepdims=False, **kw):
    _no_out("mean", out)
    return _mean(_to_array(a), axis, keepdims)


def _np_prod(a, axis=None, dtype=None, out=None, keepdims=False, **kw):
    _no_out("prod", out)
    return _tree_reduce(_to_array(a), RV_MUL, axis, keepdims, "prod")


def _np_max(a, axis=None, out=None, keepdims=False, **kw):
    _no_out("max", out)
    return _tree_reduce(_to_array(a), RV_MAXIMUM, axis, keepdims, "max")


def _np_min(a, axis=None, out=None, keepdims=False, **kw):
    _no_out("min", out)
    return _tree_reduce(_to_array(a), RV_MINIMUM, axis, keepdims, "min")


def _np_var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
    _no_out("var", out)
    a = _to_array(a)
    d = _binop(RV_SUB, a, _mean(a, axis, True))
    axes = _norm_axes(axis, len((<Array>a).shape))
    cdef int64_t n = _prod(tuple((<Array>a).shape[k] for k in axes))
    return _binop(RV_DIV, _sum(_unop(RV_SQUARE, d), axis, keepdims), float(n - ddof))


def _np_std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
    return _unop(RV_SQRT, _np_var(a, axis, dtype, out, ddof, keepdims))


cdef int _no_out(str name, out) except -1:
    if out is not None:
        raise TypeError(f"revad: numpy.{name} with out= would drop the gradient")
    return 0


def _np_cumsum(a, axis=None, dtype=None, out=None):
    _no_out("cumsum", out)
    return _cumsum(_to_array(a), axis)


def _np_dot(a, b, out=None):
    _no_out("dot", out)
    return _dot(a, b)


def _np_inner(a, b):
    if len(_shape_of(_operand(a))) > 1 or len(_shape_of(_operand(b))) > 1:
        raise TypeError("revad: numpy.inner of arrays with more than 1 dimension is not supported")
    return _dot(a, b)


def _np_einsum(subscripts, *operands, out=None, optimize=False, **kw):
    _no_out("einsum", out)
    if kw or not isinstance(subscripts, str):
        raise TypeError("revad: numpy.einsum is supported with a subscripts string and operands "
                        "only (no dtype, order, casting or interleaved form)")
    return _einsum(subscripts, operands)


def _np_tensordot(a, b, axes=2):
    na, nb = len(_shape_of(_operand(a))), len(_shape_of(_operand(b)))
    if isinstance(axes, (int, np.integer)):
        ax_a, ax_b = list(range(na - int(axes), na)), list(range(int(axes)))
    else:
        ax_a, ax_b = axes
        ax_a = [ax_a] if isinstance(ax_a, (int, np.integer)) else list(ax_a)
        ax_b = [ax_b] if isinstance(ax_b, (int, np.integer)) else list(ax_b)
    if len(ax_a) != len(ax_b) or na + nb > 52:
        raise ValueError(f"revad: tensordot: axes {axes} do not pair up dimensions of the operands")
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    ta = list(letters[:na])
    tb = list(letters[na:na + nb])
    for i, j in zip(ax_a, ax_b):
        tb[int(j) % nb] = ta[int(i) % na]
    out = [c for c in ta if c not in tb] + [c for c in tb if c not in ta]
    return _einsum("".join(ta) + "," + "".join(tb) + "->" + "".join(out), (a, b))


def _np_outer(a, b, out=None):
    _no_out("outer", out)
    return _outer(a, b)


def _np_concatenate(arrays, axis=0, out=None, **kw):
    _no_out("concatenate", out)
    return _concatenate(arrays, axis)


def _np_stack(arrays, axis=0, out=None, **kw):
    _no_out("stack", out)
    return _stack_like(list(arrays), axis)


def _np_hstack(tup, **kw):
    items = []
    for o in tup:
        o = _to_array(o) if type(o) in (Array, Var) else np.atleast_1d(np.asarray(o, np.float64))
        if type(o) is Array and not (<Array>o).shape:
            o = _reshape(o, (1,))
        items.append(o)
    return _concatenate(items, 0 if len(_shape_of(items[0])) == 1 else 1)


def _np_vstack(tup, **kw):
    items = []
    for o in tup:
        o = _to_array(o) if type(o) in (Array, Var) else np.asarray(o, np.float64)
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
    return _take(a, indices, axis)


def _np_reshape(a, *args, **kw):
    shape = kw.pop("newshape", kw.pop("shape", None))
    if shape is None:
        shape = args[0]
    return _to_array(a).reshape(shape)


def _np_ravel(a, order="C"):
    return _to_array(a).ravel()


def _np_transpose(a, axes=None):
    return _transpose(_to_array(a), axes)


def _np_squeeze(a, axis=None):
    return _squeeze(_to_array(a), axis)


def _np_expand_dims(a, axis):
    return _expand_dims(_to_array(a), axis)


def _np_swapaxes(a, axis1, axis2):
    a = _to_array(a)
    axes = list(range(len((<Array>a).shape)))
    i, j = _norm_axes(axis1, len(axes))[0], _norm_axes(axis2, len(axes))[0]
    axes[i], axes[j] = axes[j], axes[i]
    return _transpose(a, tuple(axes))


def _np_moveaxis(a, source, destination):
    a = _to_array(a)
    nd = len((<Array>a).shape)
    src = (source,) if _is_int(source) else tuple(source)
    dst = (destination,) if _is_int(destination) else tuple(destination)
    src = [s % nd for s in src]
    dst = [d % nd for d in dst]
    order = [n for n in range(nd) if n not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return _transpose(a, tuple(order))


def _np_broadcast_to(array, shape, subok=False):
    return _broadcast_to(_to_array(array), shape)


def _np_atleast_1d(*arys):
    r = [_reshape(a, (1,)) if type(a) is Array and not (<Array>a).shape else a for a in arys]
    return r[0] if len(r) == 1 else r


def _np_atleast_2d(*arys):
    r = []
    for a in arys:
        if type(a) is Array and len((<Array>a).shape) < 2:
            a = _reshape(a, (1, -1))
        r.append(a)
    return r[0] if len(r) == 1 else r


def _np_norm(x, ord=None, axis=None, keepdims=False):
    return _norm(x, ord, axis, keepdims)


def _np_shape(a):
    return _to_array(a).shape


def _np_ndim(a):
    return len(_shape_of(_to_array(a)))


def _np_size(a, axis=None):
    a = _to_array(a)
    return a.size if axis is None else a.shape[axis]


def _np_like(fill):
    def like(a, dtype=None, order="K", subok=True, shape=None, **kw):
        return np.full(shape if shape is not None else _shape_of(_to_array(a)), fill, dtype=dtype or np.float64)
    return like


def _np_full_like(a, fill_value, dtype=None, order="K", subok=True, shape=None, **kw):
    return np.full(shape if shape is not None else _shape_of(_to_array(a)), _values(fill_value),
                   dtype=dtype or np.float64)


def _np_copy(a, order="K", subok=False):
    return a


def _np_trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    _no_out("trace", out)
    a = _to_array(a)
    if len((<Array>a).shape) != 2:
        raise TypeError("revad: numpy.trace is supported for 2-d Arrays only")
    n = min((<Array>a).shape)
    idx = np.arange(n)
    return _sum(a[idx, idx], None, False)


def _np_diag(v, k=0):
    a = _to_array(v)
    if len((<Array>a).shape) != 2 or k != 0:
        raise TypeError("revad: numpy.diag is supported for the main diagonal of a 2-d Array only")
    idx = np.arange(min((<Array>a).shape))
    return a[idx, idx]


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
    np.diagonal: _np_diag, np.isclose: _np_isclose, np.einsum: _np_einsum,
    np.tensordot: _np_tensordot,
}


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
    return _logsumexp(_to_array(a), axis, keepdims)


def array(obj):
    """An Array from nested sequences of numbers, Vars and Arrays (recorded), or an ndarray.

    Sequences holding Vars or Arrays are stacked on the tape; plain numbers give a float64
    ndarray, as numpy.array does.
    """
    if type(obj) is Array:
        return obj
    if isinstance(obj, (list, tuple)) and _contains_node(obj):
        return _stack_like([array(o) if isinstance(o, (list, tuple)) else o for o in obj], 0)
    if type(obj) is Var:
        return _to_array(obj)
    return np.array(obj, dtype=np.float64)


cdef bint _contains_node(object seq):
    for o in seq:
        if type(o) is Array or type(o) is Var:
            return True
        if isinstance(o, (list, tuple)) and _contains_node(o):
            return True
    return False


_core._register_array(Array, _apply)


def _leaf_binding(Array a):
    """(id of the tape a leaf Array is bound to, its first slot, its size), for forward mode."""
    if a.tape is not None:
        raise TypeError("revad: only a leaf Array has a binding")
    return a.bound, a.first, a.size
