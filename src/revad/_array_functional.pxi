# The functional API's call (revad/_functional.py: value_and_grad), in C.
# Part of revad._array (included textually by _array.pyx: one module, several files).
#
# In a call on a small function (the seed's neuron) most of the time would be the Python around
# f: boxing the arguments, the private tape, the sweep, unboxing. Here the common arguments (a
# number, a list or tuple of numbers, a float64 ndarray) are boxed and unboxed without a Python
# call; any other argument, a result that is not a Var, and every error go through
# _functional.py's own functions (set by _set_functional_hooks), so that the messages and the
# nested structures stay in one place.

cdef object _box_other = None       # _functional._box(x, where) -> (boxed, leaves, unbox)
cdef object _nested_call = None     # _nested.value_and_grad: a call inside a derivative
cdef object _Nested = None          # _functional._Nested: _box met a Var or an Array
cdef object _scalar_other = None    # _functional._scalar_output(out)
cdef object _not_private = None     # _functional._check_private(out): raises
cdef object _ndarray = np.ndarray
cdef object _F64 = np.dtype(np.float64)
cdef cnp.PyArray_Descr *_F64_DESCR = <cnp.PyArray_Descr *>_F64  # (kept alive by _F64)

cdef extern from "numpy/arrayobject.h":
    # A new C-order ndarray of that dtype and shape, its data uninitialised; steals a
    # reference to descr.
    object PyArray_SimpleNewFromDescr(int nd, cnp.npy_intp *dims,
                                      cnp.PyArray_Descr *descr)


cdef tuple _UNIT_STRIDE = (1,)
cdef tuple _SHAPES_1D = tuple([(n,) for n in range(64)])  # small leaves' shapes


# The gradients of small ndarray arguments, kept for reuse as CPython keeps a freelist
# of floats: making an ndarray costs more than the rest of a small call's work for its
# argument (NumPy's allocator looks its memory policy up on every allocation and every
# free). A buffer handed out stays in this list; once the list is all that holds it (the
# caller dropped it: a loop that keeps the last gradient while it asks for the next one
# drops the one before) and it is still as it was made, the next call takes it instead
# of a new one. No one else can see it by then: a weak reference to it, a view of it or
# an exported buffer each keep it out.
cdef enum:
    _N_SPARE_GRADS = 8      # two calls' worth of gradients for up to four arguments
    _SPARE_GRAD_MAX = 256   # elements: larger ones are new (their size dominates)
cdef PyObject *_spare_grads[_N_SPARE_GRADS]  # owned references, or NULL
cdef int _spare_next = 0                      # the slot a new buffer takes
cdef int _GRAD_FLAGS = (cnp.NPY_ARRAY_C_CONTIGUOUS | cnp.NPY_ARRAY_OWNDATA
                        | cnp.NPY_ARRAY_ALIGNED | cnp.NPY_ARRAY_WRITEABLE)


cdef extern from *:
    """
    /* Whether o may have weak references (its type's list of them is not empty, or is
       one the interpreter keeps where this cannot look). */
    static inline int rv_weakly_held(PyObject *o) {
        Py_ssize_t off = Py_TYPE(o)->tp_weaklistoffset;
        return off != 0 && (off < 0 || *(PyObject **)((char *)o + off) != NULL);
    }
    """
    bint rv_weakly_held(PyObject *o)


cdef inline bint _as_made(PyObject *p, cnp.npy_intp n) noexcept:
    """Whether ndarray p is a 1-d float64 buffer of n elements as _grad_buffer made it:
    nobody reshaped it, viewed it as another dtype, resized it, made it read-only, or
    holds a weak reference to it."""
    cdef cnp.ndarray a = <cnp.ndarray>p
    return (cnp.PyArray_NDIM(a) == 1 and cnp.PyArray_DIMS(a)[0] == n
            and cnp.PyArray_STRIDES(a)[0] == sizeof(double)
            and cnp.PyArray_DESCR(a) == _F64_DESCR and cnp.PyArray_BASE(a) == NULL
            and (cnp.PyArray_FLAGS(a) & _GRAD_FLAGS) == _GRAD_FLAGS
            and not cnp.PyArray_FLAGS(a) & cnp.NPY_ARRAY_WRITEBACKIFCOPY
            and not rv_weakly_held(p))


cdef object _grad_buffer(cnp.npy_intp n):
    """A new float64 ndarray of n elements, its values unset (np.empty(n)), or a spare
    one (above)."""
    global _spare_next
    cdef int k
    cdef PyObject *p
    if n > _SPARE_GRAD_MAX:
        Py_INCREF(_F64)
        return PyArray_SimpleNewFromDescr(1, &n, _F64_DESCR)
    for k in range(_N_SPARE_GRADS):
        p = _spare_grads[k]
        if p != NULL and _Py_REFCNT(p) == 1 and _as_made(p, n):
            return <object>p
    Py_INCREF(_F64)
    g = PyArray_SimpleNewFromDescr(1, &n, _F64_DESCR)
    k = _spare_next
    _spare_next = (k + 1) % _N_SPARE_GRADS
    p = _spare_grads[k]
    Py_INCREF(g)
    _spare_grads[k] = <PyObject *>g
    Py_XDECREF(p)
    return g


def _set_functional_hooks(box, scalar_output, check_private, nested_call, nested):
    global _box_other, _scalar_other, _not_private, _nested_call, _Nested
    _box_other, _scalar_other, _not_private = box, scalar_output, check_private
    _nested_call, _Nested = nested_call, nested


cdef enum:
    _NUMBER, _REALS, _NDARRAY, _OTHER


@cython.final
@cython.freelist(8)
cdef class _Box:
    """One differentiated argument: its leaves, and how its gradient comes back."""
    cdef int kind
    # _NUMBER: the Var; _REALS: list of Vars; _NDARRAY: the Array leaf; _OTHER: the list _box gave
    cdef object leaves
    cdef object unbox    # _REALS: list or tuple; _OTHER: _box's unbox()
    cdef bint taken      # _NDARRAY: its gradient was handed out once already


cdef object _box_arg(Tape t, object x, Py_ssize_t k, _Box b):
    """Box argument x (number k) into b; returns what f receives in its place."""
    cdef object kind = type(x)
    cdef double c
    cdef Py_ssize_t i, n
    cdef Var v
    if kind is float or kind is int:
        _as_double(x, &c)
        v = _var_leaf(c)
        t.bind_leaf(v)
        b.kind, b.leaves = _NUMBER, v
        return v
    if kind is list or kind is tuple:
        n = len(x)
        for i in range(n):  # all numbers, or the general path (no leaf made yet)
            if not _as_double(x[i], &c):
                break
        else:
            leaves = [None] * n
            for i in range(n):
                _as_double(x[i], &c)
                v = _var_leaf(c)
                t.bind_leaf(v)
                leaves[i] = v
            b.kind, b.leaves, b.unbox = _REALS, leaves, kind
            return leaves if kind is list else tuple(leaves)
    elif kind is Var or kind is Array:
        raise _Nested()  # a derivative of a derivative: revad._nested records it
    elif kind is _ndarray and <object>cnp.PyArray_DESCR(<cnp.ndarray>x) is _F64:  # x.dtype
        b.kind, b.leaves = _NDARRAY, _ndarray_leaf(x)
        return b.leaves
    boxed, leaves, unbox = _box_other(x, f"argument {k}")
    b.kind, b.leaves, b.unbox = _OTHER, leaves, unbox
    return boxed


cdef Array _ndarray_leaf(object x):
    """_private_leaf(x) for a float64 ndarray x; a 1-d contiguous one is the leaf's values as it
    is (np.asarray and reshape(-1) would each return x or a view of it), in C."""
    cdef cnp.ndarray a = <cnp.ndarray>x
    cdef cnp.npy_intp n = cnp.PyArray_DIMS(a)[0] if cnp.PyArray_NDIM(a) == 1 else -1
    if n < 0 or (n > 1 and cnp.PyArray_STRIDES(a)[0] != sizeof(double)):
        return _private_leaf(x)
    cdef Array r = Array.__new__(Array)
    r.shape = _SHAPES_1D[n] if n < 64 else (n,)
    r.strides = _UNIT_STRIDE
    r.size = n
    r._value = x
    r._grad = _grad_buffer(n)  # written whole by the sweep, or zeroed by _leaf_grad
    r._unset = True
    return r


cdef object _leaf_grad(Array a):
    """_private_grad(a): the gradient of a functional call's ndarray leaf, its own buffer."""
    if a._unset:  # no sweep reached it (f did not depend on it, or returned a constant)
        a._grad[...] = 0.0
        a._unset = False
    return a._grad if len(a.shape) == 1 else a._grad.reshape(a.shape)


cdef object _unbox(_Box b):
    cdef Py_ssize_t i, n
    if b.kind == _NUMBER:
        return (<Var>b.leaves).g
    if b.kind == _REALS:
        n = len(b.leaves)
        out = [None] * n
        for i in range(n):
            out[i] = (<Var>b.leaves[i]).g
        return out if b.unbox is list else tuple(out)
    if b.kind == _NDARRAY:
        g = _leaf_grad(<Array>b.leaves)
        if b.taken:  # the argument named twice in argnums: a second view, as before
            return g.reshape(g.shape)
        b.taken = True
        return g
    return b.unbox()


cdef int _seed_leaf(Var out, list boxes) except -1:
    """f returned one of its inputs unchanged (or a constant Var): d out/d out = 1."""
    cdef _Box b
    for b in boxes:
        if b.kind == _NUMBER:
            leaves = (b.leaves,)
        elif b.kind == _NDARRAY:
            continue
        else:
            leaves = b.leaves
        for leaf in leaves:
            if leaf is out:
                out.g = 1.0
                return 0
    return 0


def _value_and_grad_call(f, tuple args, dict kwargs, object argnums, tuple nums, bint single):
    """(f(*args, **kwargs), its gradient with respect to args[nums]) on a private tape, as
    _functional.value_and_grad documents; argnums is the caller's spelling, for the message."""
    cdef Py_ssize_t n = len(args), m = len(nums), i, j, k
    for num in nums:
        if not -n <= num < n:
            raise TypeError(f"revad: argnums={argnums!r} but the function was called with "
                            f"{n} positional argument(s)")
    cdef list a = list(args)
    cdef list boxes = [None] * m
    cdef Py_ssize_t *ks = <Py_ssize_t *>PyMem_Malloc(m * sizeof(Py_ssize_t)) if m > 4 else NULL
    cdef Py_ssize_t small[4]
    if m > 4 and ks == NULL:
        raise MemoryError()
    if ks == NULL:
        ks = &small[0]
    # Inside a function being differentiated, or given Vars or Arrays to differentiate with
    # respect to (_box meets one: _Nested), the call records on that tape instead
    # (revad._nested): its gradient is then a recorded function, differentiable again.
    cdef bint nested = _enclosing_call() is not None
    cdef tuple saved = None if nested else _begin_private()
    cdef Tape t = None if nested else <Tape>saved[2]
    cdef _Box b
    try:
        if not nested:
            try:
                for i in range(m):
                    k = nums[i]
                    if k < 0:
                        k += n
                    ks[i] = k
                    for j in range(i):  # a repeated argnum is boxed once, as in JAX
                        if ks[j] == k:
                            boxes[i] = boxes[j]
                            break
                    else:
                        b = _Box.__new__(_Box)
                        a[k] = _box_arg(t, a[k], k, b)
                        boxes[i] = b
            except _Nested:
                nested = True
        if not nested:
            out = f(*a, **kwargs)
            a = None
            if type(out) is not Var:
                out = _scalar_other(out)
            if type(out) is Var:
                value = (<Var>out).v
                if (<Var>out).tape is None:
                    _seed_leaf(<Var>out, boxes)
                elif (<Var>out).tape is not t:
                    _not_private(out)
                else:
                    t.finished = True
                    t.sweep((<Var>out).slot)
            else:
                value = out
            out = None
            t = None
            grads = tuple([_unbox(<_Box>b) for b in boxes])
    finally:
        if ks != &small[0]:
            PyMem_Free(ks)
        if saved is not None:
            _end_private(saved)
    if nested:
        return _nested_call(f, args, kwargs, nums, single, _scalar_other)
    return value, (grads[0] if single else grads)
