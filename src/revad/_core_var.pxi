# Operands and the Var type: the scalar API that records one entry per op.
# Part of revad._core (included textually by _core.pyx: one module, several files).

# Recording's hot path.

cdef inline int32_t _push(Tape t, int code, int32_t a0, int32_t a1, double v) except -1:
    """Append one entry; the hot path of recording, inlined into every op."""
    cdef int64_t i = t.n
    if i == t.cap:
        t.grow()
    t.op[i] = <uint8_t>code
    t.arg0[i] = a0
    t.arg1[i] = a1
    t.val[i] = v
    t.n = i + 1
    return <int32_t>i


# Operands. A number (int, float, bool, NumPy real scalar, 0-d real array) is an immediate.

cdef object _np_real = (np.floating, np.integer, np.bool_)
cdef object _np_complex = (complex, np.complexfloating)
cdef object _FLOAT64 = np.dtype(np.float64)


class _VarDType:
    """Var.dtype: float64 to whatever asks (==, hash, repr, kind, itemsize, np.dtype(d), dtype=
    arguments: NumPy reads a dtype-like's .dtype), except that d.type(v) keeps a Var a Var.
    NumPy's mean, var and std of an object array of Vars end with `r.dtype.type(r / n)` when the
    result r has a dtype; np.float64(r) would take the Var's value and silently drop its
    gradient (NumPy accepts no subclass of its dtypes, so this stands in for one)."""
    __slots__ = ()
    dtype = _FLOAT64

    def type(self, v=0.0):
        return v if type(v) is Var else _FLOAT64.type(v)

    def __getattr__(self, name):
        return getattr(_FLOAT64, name)

    def __eq__(self, other):
        return _FLOAT64 == other

    def __ne__(self, other):
        return _FLOAT64 != other

    def __hash__(self):
        return hash(_FLOAT64)

    def __repr__(self):
        return repr(_FLOAT64)

    def __str__(self):
        return str(_FLOAT64)


cdef object _VAR_DTYPE = _VarDType()


cdef int _as_double(object o, double *out) except -1:
    """1 and *out set for a real number; 0 for an object that is not a number; raises for
    complex."""
    if PyFloat_Check(o):
        out[0] = PyFloat_AS_DOUBLE(o)
        return 1
    if PyLong_Check(o):  # bool included: True counts as 1, as in NumPy
        out[0] = PyLong_AsDouble(o)
        return 1
    if isinstance(o, _np_real):
        out[0] = float(o)
        return 1
    if isinstance(o, _np_complex):
        raise TypeError(f"revad differentiates real functions; got a complex number of type "
                        f"{type(o).__name__}")
    if type(o) is np.ndarray and (<object>o).ndim == 0 and (<object>o).dtype.kind in "biuf":
        out[0] = float(o)
        return 1
    return 0


cdef inline Var _new(Tape t, int32_t slot, double v):
    cdef Var r = Var.__new__(Var)
    r.tape = t
    r.slot = slot
    r.v = v
    return r


cdef inline Var _leaf(double v):
    cdef Var r = Var.__new__(Var)
    r.v = v
    return r


cdef Var _var_at(Tape t, int32_t slot, double v):
    return _new(t, slot, v)


cdef Var _var_leaf(double v):
    return _leaf(v)


cdef inline Tape _tape_of2(Var a, Var b):
    """The tape an op on a and b records on, or None under no_grad."""
    cdef Tape t
    if not _recording():
        return None
    if a.tape is not None:
        t = a.tape
        if b.tape is not None and b.tape is not t:
            raise ValueError("revad: these two Vars belong to different tapes (different "
                             "computations, or different grad() calls); combine Vars of one "
                             "computation only, or detach() one of them")
    elif b.tape is not None:
        t = b.tape
    else:
        return _current_tape()
    if t.finished:
        _raise_finished()
    return t


cdef inline Tape _tape_of1(Var a):
    if not _recording():
        return None
    if a.tape is None:
        return _current_tape()
    if a.tape.finished:
        _raise_finished()
    return a.tape


cdef int _raise_finished() except -1:
    raise RuntimeError("revad: this Var is an intermediate result of a computation that "
                       "backward() has finished; its gradient path is closed. Use x.detach() "
                       "(or revad.Var(x.value)) to start a new computation from its value")


cdef inline int32_t _slot(Var x, Tape t) except -1:
    return x.slot if x.tape is not None else t.bind_leaf(x)


cdef int32_t _var_slot(Var x, Tape t) except -1:
    return _slot(x, t)


cdef inline object _unary(int code, Var a):
    cdef double v = rv_unary(code, a.v)
    cdef Tape t = _tape_of1(a)
    if t is None:
        return _leaf(v)
    return _new(t, _push(t, code, _slot(a, t), -1, v), v)


cdef inline object _vv(int code, Var a, Var b):
    cdef double v = rv_binary(code, a.v, b.v)
    cdef Tape t = _tape_of2(a, b)
    if t is None:
        return _leaf(v)
    cdef int32_t i0 = _slot(a, t)
    cdef int32_t i1 = _slot(b, t)
    return _new(t, _push(t, code, i0, i1, v), v)


cdef inline object _vc(int code, Var a, double c):
    # VC and CV codes follow each binary op's VV code in ops_table.h's enum.
    cdef double v = rv_binary(code, a.v, c)
    cdef Tape t = _tape_of1(a)
    if t is None:
        return _leaf(v)
    cdef int32_t i0 = _slot(a, t)
    return _new(t, _push(t, code + 1, i0, t.push_const(c), v), v)


cdef inline object _cv(int code, double c, Var b):
    cdef double v = rv_binary(code, c, b.v)
    cdef Tape t = _tape_of1(b)
    if t is None:
        return _leaf(v)
    cdef int32_t i1 = _slot(b, t)
    return _new(t, _push(t, code + 2, t.push_const(c), i1, v), v)


cdef inline object _binary(int code, object x, object y):
    """An arithmetic op with at least one Var operand; NotImplemented for foreign operands."""
    cdef double c
    if type(x) is Var:
        if type(y) is Var:
            return _vv(code, <Var>x, <Var>y)
        if not _as_double(y, &c):
            return _foreign(y)
        return _vc(code, <Var>x, c)
    if not _as_double(x, &c):
        return _foreign(x)
    return _cv(code, c, <Var>y)


cdef object _method2(int code, str name, Var x, object other):
    """x.maximum(other) and the like: an operator's NotImplemented (for an array operand) is
    not a result a method may return; the function applies elementwise instead."""
    r = _binary(code, x, other)
    return functions[name](x, other) if r is NotImplemented else r


# Python would turn these into confusing messages (str * Var: "can't multiply sequence").
cdef tuple _never_operands = (str, bytes, type(None), list, tuple, dict, set)


cdef object _foreign(object o):
    """NotImplemented, so that other array-like types (NumPy's) can take over; or a clear error."""
    if isinstance(o, _never_operands):
        raise TypeError(f"revad: a Var cannot be combined with a {type(o).__name__}; "
                        "operands must be Vars, real numbers, or NumPy arrays")
    return NotImplemented


cdef object _compare(int code, Var a, object other):
    """A comparison: a Python bool from the values, recorded on an open tape for replay."""
    cdef double c
    cdef Var b
    cdef Tape t = None
    if type(other) is Var:
        b = <Var>other
        c = b.v
    elif _as_double(other, &c):
        b = None
    else:
        return NotImplemented
    cdef bint r = rv_binary(code, a.v, c) != 0.0
    if _recording():
        t = a.tape if a.tape is not None else (b.tape if b is not None else None)
        if t is None and _n_tracing != 0:
            t = _tracing_tape()  # leaves only (a trace's inputs): recorded, to be checked
        if t is not None and not t.finished and (b is None or b.tape is None or b.tape is t):
            if b is None:
                t.push(code + 1, _slot(a, t), t.push_const(c), r)
            else:
                t.push(code, _slot(a, t), _slot(b, t), r)
            if t.sites is not None:  # a trace records: say where (revad.TraceError)
                _trace_site(t, t.n - 1, "comparison")
    return r


# The comparison rows as Python's operators, for NumPy's comparison ufuncs on a Var: the
# operators reach _compare through Var's dunders, reflected when the Var is the right operand.
cdef dict _COMPARISON_OPERATORS = {RV_LT: operator.lt, RV_LE: operator.le, RV_GT: operator.gt,
                                   RV_GE: operator.ge, RV_EQ: operator.eq, RV_NE: operator.ne}


# ---------------------------------------------------------------------------------------------

@cython.final
@cython.auto_pickle(False)
@cython.freelist(4096)
@cython.no_gc  # a Var refers only to its tape and a tape to leaves only: no cycle can form
cdef class Var:
    """A scalar that records the operations applied to it, for reverse-mode differentiation.

    ``Var(value)`` makes a leaf (an input). Arithmetic and the functions of ``revad`` (also as
    methods, and through NumPy's ufuncs) return new Vars and append one entry each to the tape.
    ``y.backward()`` sweeps the tape once from ``y`` and adds dy/dx to every leaf's ``.grad``.

    >>> import revad
    >>> x, y = revad.Var(40.0), revad.Var(4.0)
    >>> z = 2 * x * y + y + 3          # the seed's example 1
    >>> z.backward()
    >>> z.value, x.grad, y.grad
    (327.0, 8.0, 81.0)
    """

    def __init__(self, value):
        cdef double c
        if type(value) is Var:
            _escape(<Var>value, "Var(v)")
            c = (<Var>value).v
        elif not _as_double(value, &c):
            raise TypeError(f"revad.Var needs a real number, got {type(value).__name__}")
        self.v = c

    # -- values and gradients ------------------------------------------------------------------

    @property
    def value(self):
        """The forward value (a float). Settable on leaves only.

        >>> import revad
        >>> p = revad.Var(1.0)
        >>> p.value = 0.5
        >>> (p * 4).value
        2.0
        """
        _escape(self, ".value")
        return self.v

    @value.setter
    def value(self, new):
        cdef double c
        if self.tape is not None:
            raise AttributeError("revad: the value of an intermediate Var is read-only; "
                                 "only leaves (made by revad.Var(...)) can be set")
        if not _as_double(new, &c):
            raise TypeError(f"revad: a Var's value must be a real number, got {type(new).__name__}")
        self.v = c
        self.bound = 0  # the next use records the new value as a fresh leaf entry

    @property
    def grad(self):
        """d(output)/d(self), summed over every backward() that reached this Var (0.0 before).

        Settable on leaves, so that a training loop can reset it.

        >>> import revad
        >>> x = revad.Var(3.0)
        >>> (x * x).backward()
        >>> x.grad
        6.0
        >>> x.grad = 0.0
        """
        if self.tape is None:
            return self.g
        if self.tape.spent:
            _spent()
        if not self.tape.has_adj or self.slot >= self.tape.cap_adj:
            return 0.0  # (no sweep yet, or none since another thread recorded this Var)
        return self.tape.adj[self.slot]

    @grad.setter
    def grad(self, new):
        cdef double c
        if self.tape is not None:
            raise AttributeError("revad: the grad of an intermediate Var is read-only; "
                                 "reset the leaves' grads instead")
        if new is None:
            c = 0.0  # PyTorch's `p.grad = None` idiom
        elif not _as_double(new, &c):
            raise TypeError(f"revad: a grad must be a real number, got {type(new).__name__}")
        self.g = c

    # What NumPy code asks of a number: a Var is like a NumPy float64 scalar.
    @property
    def dtype(self):
        """float64, as a NumPy float64 scalar's (a stand-in equal to ``np.dtype('float64')``
        whose ``.type`` keeps a Var a Var: see _VarDType).

        >>> import revad
        >>> x = revad.Var(1.5)
        >>> x.dtype, x.shape, x.ndim
        (dtype('float64'), (), 0)
        """
        return _VAR_DTYPE

    @property
    def shape(self):
        """(), as a NumPy scalar's."""
        return ()

    @property
    def ndim(self):
        """0, as a NumPy scalar's."""
        return 0

    @property
    def is_leaf(self):
        """True for inputs made by ``revad.Var(...)`` (and results computed under no_grad)."""
        return self.tape is None

    def backward(self):
        """Run the reverse sweep from this Var, adding d(self)/d(leaf) to every leaf's ``.grad``.

        It finishes the tape: values and grads stay readable, but this computation's
        intermediates can no longer be used in new ops (leaves can, on a new tape).

        >>> import revad
        >>> w = [revad.Var(2.0), revad.Var(-3.0), revad.Var(-3.0)]
        >>> x = [-1.0, -2.0]
        >>> f = revad.sigmoid(w[0] * x[0] + w[1] * x[1] + w[2])   # the seed's example 2
        >>> f.backward()
        >>> [round(v.grad, 3) for v in w]
        [-0.197, -0.393, 0.197]
        """
        if self.tape is None:
            self.g += 1.0
            return
        self.tape.finished = True
        self.tape.sweep(self.slot)

    def detach(self):
        """A new leaf with this Var's value, cut from its computation.

        >>> import revad
        >>> x = revad.Var(2.0)
        >>> y = (x * x).detach()
        >>> y.is_leaf, y.value
        (True, 4.0)
        """
        _escape(self, "detach()")
        return _leaf(self.v)

    def item(self):
        """The value as a Python float (PyTorch's spelling)."""
        _escape(self, ".item()")
        return self.v

    # A value that leaves for Python may steer it (an index, a loop count, a branch): while a
    # trace records, each of these becomes a guard on it (_core_replay.pxi).
    def __float__(self):
        _escape(self, "float()")
        return self.v

    def __int__(self):
        _escape(self, "int()")
        return int(self.v)

    def __bool__(self):
        _escape(self, "bool()")
        return self.v != 0.0

    def __hash__(self):
        # By identity, like PyTorch tensors and micrograd Values: Vars go in sets and dicts.
        return <Py_ssize_t><void *>self

    def __repr__(self):
        return f"Var(value={self.v!r}, grad={self.grad!r})"

    def __reduce__(self):
        # A tape is not serialisable: pickling or copying keeps the value and grad, as a leaf.
        _escape(self, "pickle")
        return _restore_leaf, (self.v, self.grad)

    def __copy__(self):
        _escape(self, "copy")
        return _restore_leaf(self.v, self.grad)

    def __deepcopy__(self, memo):
        _escape(self, "copy")
        return _restore_leaf(self.v, self.grad)

    # -- arithmetic (c_api_binop_methods: self may be either operand) -------------------------

    def __add__(x, y):
        return _binary(RV_ADD, x, y)

    def __sub__(x, y):
        return _binary(RV_SUB, x, y)

    def __mul__(x, y):
        return _binary(RV_MUL, x, y)

    def __truediv__(x, y):
        return _binary(RV_DIV, x, y)

    def __mod__(x, y):
        # NumPy's remainder, which Python's float % is too: the sign of the divisor (x % 0 is
        # nan, as NumPy, where Python's float raises).
        return _binary(RV_REMAINDER, x, y)

    def __pow__(x, y, mod):
        cdef double c
        if mod is not None:
            return NotImplemented
        if type(x) is Var and type(y) is not Var:
            if not _as_double(y, &c):
                return _foreign(y)
            if c == 2.0:
                return _unary(RV_SQUARE, <Var>x)  # x**2 is everywhere; its partial needs no pow()
            return _vc(RV_POW, <Var>x, c)
        return _binary(RV_POW, x, y)

    def __neg__(self):
        return _unary(RV_NEG, self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _unary(RV_ABS, self)

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

    # The op table's functions as methods (x.exp(), x.maximum(y)) are added to this type at
    # import, from the table (_add_var_methods, _core_functions.pxi).

    # A real number is its own conjugate: NumPy's var and std on object arrays call it.
    def conjugate(self): return self

    # -- NumPy: np.exp(v), np.float64(2) * v, and arrays holding Vars ------------------------

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        name = ufunc.__name__
        if (method == "reduce" and name in ("add", "multiply", "maximum", "minimum")
                and len(inputs) == 1 and kwargs.get("out") is None and not kwargs.get("keepdims")):
            return inputs[0]  # np.sum(v) of one scalar is that scalar
        # The map Array.__array_ufunc__ reads too (_core_functions.pxi).
        fn = _ufunc_functions.get(name)
        compare = _ufunc_comparisons.get(name)
        for o in inputs:
            if isinstance(o, np.ndarray) and type(o) is not np.ndarray:
                # np.matrix and other subclasses change the rules
                raise TypeError(f"revad: a Var cannot be combined with a {type(o).__name__} "
                                "(an ndarray subclass); use a plain ndarray (np.asarray)")
        for o in inputs:
            if isinstance(o, np.ndarray) and (<object>o).ndim > 0 and _array_ufunc is not None:
                # A Var with an array (of numbers, or an object array of Vars): one Array group
                # broadcast over it (the Array's ufunc, reading the same map), never NumPy's
                # object loop calling Var per element.
                return _array_ufunc(ufunc, method, inputs, kwargs)
        if fn is None and compare is None and "scipy.special" in sys.modules:
            from revad.scipy import _rows  # SciPy's ufuncs: their rows (the ufunc-pair group)
            r = _rows.apply_ufunc(ufunc, method, inputs, kwargs)
            if r is not None:
                return r
        if (fn is None and compare is None) or method != "__call__" or kwargs:
            raise TypeError(f"revad: numpy.{name} (method {method!r}) is not "
                            "differentiable by revad; use revad's functions on Vars")
        args = []
        cdef double c
        for o in inputs:
            if isinstance(o, np.ndarray):
                o = (<object>o)[()]  # a 0-d array: its number or Var
            if isinstance(o, np.generic) and _as_double(o, &c):
                o = c  # a NumPy scalar (longdouble too): its value, or it would ask us again
            args.append(o)
        if fn is not None:
            return fn(*args)
        # Python's operators, which also reflect np.less(2.0, x) to x > 2.0.
        return _COMPARISON_OPERATORS[compare](*args)

    def __array_function__(self, func, types, args, kwargs):
        """NumPy's functions (np.clip(v, 0, 1), np.where(c, v, w), ...) on a Var: the Array
        implementation, a 0-d result handed back as a Var; unsupported ones raise."""
        return _array_function(func, types, args, kwargs)


def _restore_leaf(double value, double grad):
    cdef Var x = _leaf(value)
    x.g = grad
    return x


cdef object _as_object_array(object o):
    if type(o) is Var:
        a = np.empty((), dtype=object)
        a[()] = o
        return a
    return o
