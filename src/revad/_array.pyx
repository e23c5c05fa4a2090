# cython: wraparound=True
# revad.Array: a view over node slots of a tape, like a NumPy array is a view over memory.
#
# An Array is (tape, first slot, shape, strides in slots). Views (slicing, .T, reshape of a
# contiguous array) record nothing. An elementwise op is one group (group_ew.h, EW): its values on
# consecutive new slots, one entry at the last of them naming the table row and the operands'
# strides (broadcast, strided or reversed), and the sweeps run the row's formulas in one loop
# per line. Sums along axes are groups too; a dot product with one output is a block entry; a
# matrix product is one group whose backward is one BLAS call per operand. Nothing here runs
# Python per element.
#
# One module in several files, included in this order: _array_shapes.pxi (view arithmetic),
# this file (the Array type, making Arrays), _array_elementwise.pxi, _array_index.pxi,
# _array_reduce.pxi, _array_linalg.pxi (products, constants, einsum), _array_join.pxi,
# _array_numpy.pxi (NumPy's protocols and the functions behind them), _array_functional.pxi,
# _array_call.pxi (a Python function's call: the CALL group), _array_select.pxi (NumPy's
# functions that move and pick elements: roll, sort, pad, ...) and _array_special.pxi (SciPy's
# special functions: the ufunc-pair group).
cimport cython
from cpython.buffer cimport PyBUF_STRIDES, PyBuffer_Release, PyObject_GetBuffer
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.ref cimport _Py_REFCNT, Py_INCREF, Py_XDECREF, PyObject
from cpython.slice cimport PySlice_GetIndicesEx
from libc.stdint cimport INT32_MAX, INT64_MAX, int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcpy, memset

cdef extern from "fingerprint.h" nogil:
    uint64_t rv_fingerprint(const void *data, size_t len, uint64_t seed)
    uint64_t rv_fp_rows(const void *data, int64_t nrows, size_t rowbytes, uint64_t seed)
    int rv_fp_fused_available()
    uint64_t rv_fp_matvec(const double *M, int64_t nrows, int64_t ncols, const double *v,
                          double *y, int axpy, uint64_t seed)

from revad._core cimport (
    RV_ADD, RV_CONST, RV_COPY, RV_SHIFT, RV_DIV, RV_DOT, RV_DOTC, RV_LEAF, RV_MUL, RV_POW,
    RV_SQUARE, RV_SUB, RV_MAXIMUM, RV_MINIMUM, RV_NEG, RV_ABS, RV_EXP, RV_SQRT, RV_REMAINDER,
    RV_BLK_DOT, RV_BLK_DOTC, RV_MM, RV_GROUP_SLOT, RV_BLK_MM, RV_EW, RV_EW_MAXD,
    RV_LT, RV_LE, RV_GT, RV_GE, RV_EQ, RV_NE,
    Tape, Var, _as_double, _begin_private, _current_tape, _end_private, _is_recording,
    _raise_finished, _spent, _var_at, _var_leaf, _hold, _unhold, _readonly_chain,
    _recording_tape, _enclosing_call, _run_group, _share, _var_slot, rv_binary, rv_claim,
    RV_GUARD, RV_N_OPS, _tracing_active, _tracing_tape, _guards_quiet, _trace_site,
    _Replay, _Active, _replay_new, _replay_forward, _replay_reverse, _replay_clear,
    _replay_in_c, _replay_rows, _second_order_blocker_at, _second_products,
    rv_ew_arity,
    rv_ew_width, rv_sums_width, rv_unary, RV_SUMS, rv_ew_lazy, rv_sums_over,
    RV_SRC_SLOTS, RV_SRC_POOL, rv_dotc_blk, rv_dot_blk, rv_mm_operand, rv_mm_blk, rv_ew_blk,
    rv_ew_operand, rv_sums_blk, rv_ew_operand_at, rv_sums_ostride, RV_RUN_EW_FORWARD,
    RV_RUN_SUMS_FORWARD, RV_RUN_SUMS_LAZY_FORWARD, RV_CALL, rv_call_blk, rv_call_width,
    RV_PAIR, rv_pair_blk, rv_pair_operand, rv_pair_width, rv_pair_operand_at,
    rv_n_op_table, rv_op_table, rv_kind_of, rv_group_end, rv_mm_values, rv_take_adjoints,
    rv_sole_reader, rv_ties_hold)

import operator

import numpy as np

cimport numpy as cnp

# NumPy's C API (a functional call's gradient buffers: _array_functional.pxi).
cnp.import_array()

# NumPy >= 1.25 keeps it in numpy.exceptions; older ones (down to our floor, 1.23) at the top.
_AxisError = getattr(np, "exceptions", np).AxisError
cdef object _np_integer = np.integer

from revad import _core


include "_array_shapes.pxi"


# ---------------------------------------------------------------------------------------------
# The Array type

@cython.final
@cython.freelist(64)  # views and a functional call's leaves come and go by the thousand
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
    # Slot of element (0, ..., 0); for a leaf, where it is bound. Read it with _slot0(), which
    # writes a lazy group's values first.
    cdef int64_t _first
    # 1 + the index in tape.blk of the lazy group (group_ew.h, rv_ew_lazy) that made this Array,
    # while its values may be unwritten; else 0.
    cdef int64_t lazy
    cdef readonly tuple shape
    cdef tuple strides        # in slots; may be 0 (broadcast) or negative
    cdef readonly int64_t size
    cdef object _value        # leaves: float64 1-d contiguous values
    cdef object _grad         # leaves: float64 1-d contiguous, summed over backward calls
    cdef bint _unset          # a functional call's leaf: _grad not set yet (np.empty)
    cdef uint64_t bound       # leaves: id of the tape where `first` is valid (0: none)

    def __init__(self, values):
        v = np.asarray(values)
        if v.dtype.kind not in "biuf":
            raise TypeError(f"revad.Array needs real numbers, got an array of dtype {v.dtype}")
        _init_leaf(self, np.array(v, dtype=np.float64, order="C", copy=True), True)

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
            if _tracing_active():
                _guard_array(self, ".value")  # an input of a trace: guarded (_array_trace.pxi)
            return self._value.reshape(self.shape).copy()
        return _on_values(self, np.copy)

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
        if self.tape.spent:
            _spent()
        if not self.tape.has_adj or _slot_end(self) > self.tape.cap_adj:
            return np.zeros(self.shape)  # (no sweep yet, or none since another thread made it)
        return _on_values(self, np.copy, (), None, True)

    @grad.setter
    def grad(self, new):
        if self.tape is not None:
            raise AttributeError("revad: the grad of an intermediate Array is read-only")
        self._grad[:] = (0.0 if new is None
                         else np.broadcast_to(np.asarray(new, np.float64), self.shape).reshape(-1))

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
        return _var_at(b.tape, <int32_t>_slot0(b), b.tape.val[_slot0(b)])

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
        cdef _Iter it = _Iter.__new__(_Iter)
        it.a, it.n = self, self.shape[0]
        return it

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
        # Scalar code over an ndarray argument indexes a 1-d Array once per use of an element:
        # an integer or a slice there takes the short way (_array_index.pxi).
        cdef int past
        cdef int64_t i, n = self.size
        cdef Tape t
        if len(self.shape) == 1:
            if type(key) is slice:
                return _slice_1d(self, key)
            if type(key) is int:  # (no try block: past int64 is a flag, not an error)
                i = PyLong_AsLongLongAndOverflow(key, &past)
                if past:
                    return _getitem(self, key)
                if self.tape is None and self.bound and -n <= i < n:
                    # A leaf bound before: on the recording tape, its element is
                    # _element's without the call (each but the first of a functional
                    # call's elements).
                    t = _recording_tape()
                    if t is not None and t.id == self.bound:
                        i = self._first + (i + n if i < 0 else i)
                        return _var_at(t, <int32_t>i, t.val[i])
                return _element(self, i, key)
            elif isinstance(key, _np_integer):
                try:
                    return _item_1d(self, key)
                except OverflowError:  # past int64: the general way words NumPy's IndexError
                    pass
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
        """The same elements in a new shape (a view when they are evenly spaced); order 'C'
        reads and writes the elements in row-major order, 'F' in column-major order."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        if order == "F":  # column-major: reversed axes in, reversed axes out
            return _transpose(_reshape(_transpose(self, None), _dims(shape, "reshape")[::-1]),
                              None)
        if order != "C":
            _check_order(order, "reshape")
            _resolve_shape(_dims(shape, "reshape"), self.size, self.shape)
            if order == "K":
                raise ValueError("revad: order 'K' is not permitted for reshaping")
            raise TypeError("revad: reshape in order 'A' (by memory layout) is not supported; "
                            "use order 'C' or 'F'")
        return _reshape(self, tuple(shape))

    def ravel(self, order="C"):
        """The elements as a 1-d Array (a view when they are evenly spaced), in order 'C' or 'F'."""
        _check_order(order, "ravel")
        if order not in ("C", "F"):
            raise TypeError(f"revad: ravel in order {order!r} (by memory layout) is not supported; "
                            "use order 'C' or 'F'")
        return self.reshape((-1,), order=order)

    def flatten(self, order="C"):
        """As ravel."""
        return self.ravel(order)

    def squeeze(self, axis=None):
        """Drop dimensions of size 1 (a view)."""
        return _squeeze(self, axis)

    def copy(self):
        """Arrays are immutable: the same Array."""
        return self

    def astype(self, dtype, copy=True):
        """A float dtype returns the same Array (revad records float64). An integer or bool
        dtype returns NumPy's cast of the values, a plain ndarray: truncation is a step
        function, whose derivative is zero wherever it has one (as floor's and trunc's), so
        there is no gradient to keep. Other dtypes raise.

        >>> import revad, numpy as np
        >>> a = revad.Array([1.7, -2.5])
        >>> a.astype(np.float64) is a, np.floor(a).astype(int)
        (True, array([ 1, -3]))
        """
        kind = np.dtype(dtype).kind
        if kind == "f":
            return self
        if kind in "biu":
            return self.value.astype(dtype)
        raise TypeError(f"revad: cannot cast an Array to {np.dtype(dtype)}; revad records "
                        "real numbers (use .value for the values)")

    # -- reductions and products as methods ---------------------------------------------------

    # NumPy's signatures, positional arguments included: a.sum(0, np.float64) names a dtype.
    def sum(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        """Sum over axis (None: all), one tape entry per output element."""
        return _np_sum(self, axis, dtype, out, keepdims, **kw)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        """Mean over axis (None: all)."""
        return _np_mean(self, axis, dtype, out, keepdims, **kw)

    def prod(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        """Product over axis (None: all)."""
        return _np_prod(self, axis, dtype, out, keepdims, **kw)

    def max(self, axis=None, out=None, keepdims=False, **kw):
        """Maximum over axis (None: all); ties split the gradient."""
        return _np_max(self, axis, out, keepdims, **kw)

    def min(self, axis=None, out=None, keepdims=False, **kw):
        """Minimum over axis (None: all); ties split the gradient."""
        return _np_min(self, axis, out, keepdims, **kw)

    def cumsum(self, axis=None, dtype=None, out=None):
        """Cumulative sum along axis (None: of the flattened Array)."""
        return _np_cumsum(self, axis, dtype, out)

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

    def __mod__(x, y):
        return _binop(RV_REMAINDER, x, y)  # NumPy's remainder: the sign of the divisor

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


cdef int _check_order(object order, str what) except -1:
    if not (isinstance(order, str) and order in ("C", "F", "A", "K")):
        raise ValueError(f"revad: {what}: order must be one of 'C', 'F', 'A' or 'K', got {order!r}")
    return 0


cdef str _qualname(func):
    mod = getattr(func, "__module__", "") or ""
    name = getattr(func, "__name__", repr(func))
    if mod.startswith("numpy.") and mod not in ("numpy.core.fromnumeric",
                                                "numpy._core.fromnumeric",
                                                "numpy._core.multiarray", "numpy._core.numeric",
                                                "numpy._core.shape_base",
                                                "numpy.lib._shape_base_impl",
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
    r._first = first
    r.shape = shape
    r.strides = strides
    r.size = _prod(shape)
    return r


cdef inline Array _fresh(Tape t, int64_t first, tuple shape):
    return _view(t, first, shape, _c_strides(shape))


cdef inline int64_t _slot0(Array a) except? -1:
    """a's first slot, once its values are written. Everything that reaches an Array's slots
    (views, operands, values, Vars of elements) comes through here, so a lazy group's values are
    written before anything can read them; only a sum over it reads the raw slot (_sum)."""
    if a.lazy:
        _settle(a)
    return a._first


def _is_lazy(Array a not None):
    """Testing hook: whether a's values are still unwritten."""
    return a.lazy != 0 and (a.lazy - 1) in a.tape.absent


cdef int _settle(Array a) except -1:
    a.tape.write_group(a.lazy - 1)  # (a tape's settle() may have written it already)
    a.lazy = 0
    return 0


cdef inline void _close_group(Tape t, int64_t i0, int64_t n, int code, int64_t bi) noexcept:
    """Entries i0 .. i0+n-1 (reserved, values written or about to be) become one group (group_ew.h):
    placeholders whose operand columns stay unwritten, and the carrier `code` at the last,
    whose arg0 is its parameters' index bi in the block table."""
    memset(t.op + i0, RV_GROUP_SLOT, <size_t>(n - 1))
    t.op[i0 + n - 1] = <uint8_t>code
    t.arg0[i0 + n - 1] = <int32_t>bi
    t.arg1[i0 + n - 1] = -1
    t.n = i0 + n


cdef Array _init_leaf(Array r, object v, bint zero_grad):
    """r as a leaf over v (a C-order float64 ndarray: its values, not copied), with a gradient
    buffer of zeros, or an empty one for a sweep to write whole (zero_grad False)."""
    r.shape = v.shape
    r.strides = _c_strides(v.shape)
    r.size = v.size
    r._value = v.reshape(-1)
    r._grad = np.zeros(v.size) if zero_grad else np.empty(v.size)
    return r


cdef Array _const_leaf(object values):
    """A leaf holding values (the result of an op under no_grad)."""
    return _init_leaf(Array.__new__(Array),
                      np.array(values, dtype=np.float64, order="C", copy=True), True)


cdef int64_t _bind(Array a, Tape t) except -1:
    """Record leaf a on tape t (once: n LEAF entries in one loop) and return its first slot."""
    if a.bound == t.id:
        return a._first
    cdef int64_t n = a.size, i0
    t.reserve(n)
    if a.bound == t.id:  # bound by another thread while reserve() waited (_wait_unheld)
        return a._first
    i0 = t.n
    if n:  # (_value and _grad are ndarrays: _init_leaf, _ndarray_leaf)
        _fill_entries(t, i0, n, RV_LEAF)
        memcpy(t.val + i0, cnp.PyArray_DATA(<cnp.ndarray>a._value), n * sizeof(double))
    t.n = i0 + n
    t.bind_block(a, <double *>cnp.PyArray_DATA(<cnp.ndarray>a._grad), n, i0, &a._unset)
    a.bound = t.id
    a._first = i0
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
    """Entries i0 .. i0+n-1 get op `code`, values apart. Their operand slots are left as they
    are: no reader looks at a leaf's (as none looks at a group placeholder's), and writing them
    cost 8 bytes an element, as much as the values."""
    memset(t.op + i0, code, <size_t>n)


cdef object _col_view(double *col, Array a):
    """a's elements in one of its tape's double columns (val or adj) as an ndarray VIEW (strides
    in bytes; no slot map, no copy). Valid until the tape's columns next grow: copy or use it
    before recording more."""
    if a.size == 0:
        return np.zeros(a.shape)
    cdef int64_t lo = _slot0(a), hi = _slot0(a), n, st
    cdef Py_ssize_t d
    for d in range(len(a.shape)):
        n, st = a.shape[d], a.strides[d]
        if st < 0:
            lo += (n - 1) * st
        else:
            hi += (n - 1) * st
    return np.ndarray(a.shape, np.float64, <double[:hi - lo + 1]>(col + lo), (_slot0(a) - lo) * 8,
                      tuple([8 * st for st in a.strides]))


cdef int64_t _slot_end(Array a) noexcept:
    """One past the highest slot of a's elements (a on a tape, nonempty or not)."""
    cdef int64_t hi = a._first
    cdef Py_ssize_t d
    for d in range(len(a.shape)):
        if a.strides[d] > 0:
            hi += (a.shape[d] - 1) * a.strides[d]
    return hi + 1


cdef object _on_values(Array a, object fn, tuple args=(), dict kw=None, bint adjoints=False,
                       str kind=".value"):
    """fn(view of a's values, or adjoints, *args, **kw), e.g. np.copy: NumPy may let go of the
    GIL while it reads, so the tape is held (_core, _hold) and its columns cannot move meanwhile.
    The values leave for Python: while a trace records, a guard on each (_guard_array)."""
    if not adjoints and _tracing_active():
        _guard_array(a, kind)
    cdef Tape t = a.tape
    kw = kw or {}
    if t is None:
        return fn(a._value.reshape(a.shape), *args, **kw)
    v = _col_view(t.adj if adjoints else t.val, a)
    _hold(t)
    try:
        return fn(v, *args, **kw)
    finally:
        _unhold(t)


cdef object _peek(Array a):
    """a's values without a copy (a view of its tape's column, or of a leaf's values), to read at
    once: before anything more is recorded."""
    if a.tape is None:
        return a._value.reshape(a.shape)
    return _col_view(a.tape.val, a)


cdef bint _holds_nodes(object o):
    """Whether o is a sequence or an object ndarray with a Var or an Array among its items."""
    if type(o) is Array or type(o) is Var or type(o) is float:
        return False
    if isinstance(o, (list, tuple)):
        return _contains_node(o)
    if isinstance(o, np.ndarray) and o.dtype == object:
        return _contains_node(o.reshape(-1).tolist())
    return False


cdef inline object _lift(object o):
    """o, or the recorded Array it stands for if it holds Vars or Arrays (_holds_nodes)."""
    return array(o) if _holds_nodes(o) else o


cdef object _float64(object o):
    """A constant operand as a float64 ndarray; TypeError for anything but real numbers (an
    object array of Vars among them: float() would take their values as constants)."""
    a = np.asarray(o)
    if a.dtype.kind in "biuf":
        return a.astype(np.float64, copy=False)
    if a.dtype == object:
        r = _real_items(a)
        if r is not None:
            return r  # an object array of plain numbers (np.clip of Vars may leave one)
        raise TypeError("revad: expected real numbers, got an object array; an array of Vars "
                        "becomes an Array with revad.numpy.array")
    raise TypeError(f"revad: expected real numbers, got an array of dtype {a.dtype}")


cdef object _real_items(object a):
    """Object ndarray a as float64 if every item is a real number, else None (None, strings,
    Vars: float() would take None for nan and a Var for its value)."""
    cdef double c
    out = np.empty(a.shape)
    flat = out.reshape(-1)
    for k, e in enumerate(a.reshape(-1).tolist()):
        if not _as_double(e, &c):
            return None
        flat[k] = c
    return out


cdef object _values(object o):
    """The values of an operand: ndarray for an Array, float for a Var, else as given (for
    Python to use: guarded while a trace records)."""
    if type(o) is Array:
        return (<Array>o).value
    if type(o) is Var:
        return float(o)
    return o


include "_array_elementwise.pxi"


include "_array_index.pxi"


include "_array_reduce.pxi"


include "_array_linalg.pxi"


include "_array_join.pxi"


include "_array_numpy.pxi"


include "_array_functional.pxi"


include "_array_call.pxi"


include "_array_select.pxi"


include "_array_special.pxi"


include "_array_nested.pxi"


include "_array_trace.pxi"
