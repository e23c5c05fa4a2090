# The op table as Python sees it: one Function object per row (like NumPy's ufuncs).
# Part of revad._core (included textually by _core.pyx: one module, several files).

cdef dict _code = {}       # name -> op code

# revad.Array lives in _array, which cimports this module; it registers itself here at import
# so that the functions of the table (revad.exp(array)) can hand arrays over to it.
cdef object _array_type = None
cdef object _array_apply = None


cdef object _array_function = None
cdef object _array_ufunc = None


def _register_array(array_type, apply, array_function, array_ufunc):
    """Called once by revad._array: the Array type, its apply(code, arity, args), the
    __array_function__ that serves Vars too, and the __array_ufunc__ that serves a Var met with
    an ndarray (ufunc, method, inputs, kwargs)."""
    global _array_type, _array_apply, _array_function, _array_ufunc
    _array_type, _array_apply, _array_function = array_type, apply, array_function
    _array_ufunc = array_ufunc


@cython.final
cdef class Function:
    """One op of revad's table as a callable: ``revad.exp``, ``revad.maximum``, ...

    On Vars it records the op; on real numbers it returns a float; on arrays (of numbers or of
    Vars) it applies elementwise. Its docstring shows the exact formulas the tape uses.

    >>> import revad
    >>> revad.tanh
    <revad function tanh>
    >>> revad.tanh(0.0), revad.maximum(1.0, 2.0), revad.sigmoid([0.0, 0.0])
    (0.0, 2.0, array([0.5, 0.5]))
    """
    cdef readonly str name
    cdef readonly int code, arity
    cdef str doc

    @property
    def __name__(self):
        return self.name

    @property
    def __doc__(self):
        return self.doc

    def __repr__(self):
        return f"<revad function {self.name}>"

    def __call__(self, *args):
        cdef double a, b
        if len(args) != self.arity:
            raise TypeError(f"revad.{self.name}() takes {self.arity} argument"
                            f"{'s' if self.arity > 1 else ''}, got {len(args)}")
        if self.arity == 1:
            x = args[0]
            if type(x) is Var:
                return _unary(self.code, <Var>x)
            if _as_double(x, &a):
                return rv_unary(self.code, a)
        else:
            x, y = args
            if isinstance(x, _sequences) or isinstance(y, _sequences):
                pass  # elementwise, below
            elif type(x) is Var or type(y) is Var:
                r = _binary(self.code, x, y)
                if r is not NotImplemented:
                    return r
            elif _as_double(x, &a) and _as_double(y, &b):
                return rv_binary(self.code, a, b)
        if _array_type is not None:
            for x in args:
                if type(x) is _array_type:
                    return _array_apply(self.code, self.arity, args)
            if self.arity == 2 and (type(args[0]) is Var or type(args[1]) is Var):
                y = args[1] if type(args[0]) is Var else args[0]
                if isinstance(y, (list, tuple)) or isinstance(y, np.ndarray) and y.ndim > 0:
                    # A Var with an array: one Array group, as np.NAME(v, X) gives
                    return _array_apply(self.code, self.arity, args)
        for x in args:
            if isinstance(x, (np.ndarray, list, tuple)) or type(x) is Var:
                continue
            if not _is_number(x):
                raise TypeError(f"revad.{self.name}() needs real numbers, Vars or arrays of "
                                f"them, got {type(x).__name__}")
        arrays = [np.asarray(x) if type(x) is not Var else _as_object_array(x) for x in args]
        out = np.frompyfunc(self, self.arity, 1)(*arrays)
        if all(type(x) is not Var and np.asarray(x).dtype != object for x in args):
            return np.asarray(out, dtype=np.float64)
        return out


cdef tuple _sequences = (np.ndarray, list, tuple)


cdef bint _is_number(object x) except -1:
    cdef double c
    return _as_double(x, &c)


def _is_real(x):
    """Whether x is a real number revad takes as a constant (int, float, bool, NumPy real)."""
    return _is_number(x)


def _all_real(seq):
    """Whether every item of a list or tuple is a real number."""
    cdef object x
    for x in seq:
        if not _is_number(x):
            return False
    return True


cdef str _docstring(rv_op_info info, str example):
    name = info.name.decode()
    lines = [f"{name}({'x' if info.arity == 1 else 'x, y'})", "",
             f"Recorded as one tape entry. With a = x{', b = y' if info.arity == 2 else ''} and "
             "y the saved output:", "",
             f"    value:  {info.forward.decode()}",
             f"    d/da:   {info.d_da.decode()}"]
    if info.arity == 2:
        lines.append(f"    d/db:   {info.d_db.decode()}")
    lines.append(f"    d2/da2: {info.d2_da2.decode()}")
    if info.arity == 2:
        lines += [f"    d2/dadb: {info.d2_dadb.decode()}", f"    d2/db2: {info.d2_db2.decode()}"]
    if info.note[0]:
        lines += ["", f"Not differentiable everywhere: {info.note.decode()}."]
    lines += ["", "On real numbers it returns a float; on arrays it applies elementwise.",
              "", example]
    return "\n".join(lines)


# What is wrong with the table's rows as the Python side reads them (a malformed EXAMPLE, a name
# Var already has): tests/test_ops.py fails with these messages. Import never does, so that the
# rest of revad stays usable while a row is being written.
cdef list _problems = []


def _row_problems():
    """Testing hook: one message per problem found in ops_table.h's rows at import."""
    return list(_problems)


cdef str _example(str name, int arity, str text):
    """The doctest of a row's EXAMPLE column ("x -> value d/dx", "x, y -> value d/dx d/dy"),
    or, if the column is malformed, a docstring line that says so (and a problem)."""
    args, _, out = text.partition(" -> ")
    args, out = args.split(", "), out.split()
    try:
        [float(v) for v in args + out]
        well_formed = len(args) == arity and len(out) == arity + 1
    except ValueError:
        well_formed = False
    if not well_formed:
        form = "x -> value d/dx" if arity == 1 else "x, y -> value d/dx d/dy"
        _problems.append(f"ops_table.h: row {name!r} has EXAMPLE {text!r}; expected \"{form}\" "
                         "with the numbers computed independently (mpmath), printed to 6 decimals")
        return f"(No example: ops_table.h's EXAMPLE column of {name} is malformed.)"
    out = " ".join(out)
    if arity == 1:
        return (f">>> import revad\n>>> x = revad.Var({args[0]})\n>>> y = revad.{name}(x)\n"
                f">>> y.backward()\n>>> print(f\"{{y.value:.6f}} {{x.grad:.6f}}\")\n{out}")
    return (f">>> import revad\n>>> x, y = revad.Var({args[0]}), revad.Var({args[1]})\n"
            f">>> z = revad.{name}(x, y)\n>>> z.backward()\n"
            f">>> print(f\"{{z.value:.6f}} {{x.grad:.6f}} {{y.grad:.6f}}\")\n{out}")


def _make_functions():
    """Build the public Function objects from ops_table.h's table: {name: Function}."""
    cdef int k
    cdef Function fn
    out = {}
    for k in range(rv_n_op_table):
        info = rv_op_table[k]
        if info.arity == 0 or info.name[0] == b"_":
            continue  # comparisons are operators, not functions; "_" marks internal ops
        fn = Function.__new__(Function)
        fn.name = info.name.decode()
        fn.code = info.code
        fn.arity = info.arity
        fn.doc = _docstring(info, _example(fn.name, info.arity, info.example.decode()))
        _code[fn.name] = fn.code
        out[fn.name] = fn
    return out


functions = _make_functions()


def _row_partials():
    """{op code: (name, arity, d/da, d/db)} for every differentiable row, internal ones too: the
    partials as the table writes them (C expressions in a, b, y), for revad._partials."""
    cdef int k
    out = {}
    for k in range(rv_n_op_table):
        info = rv_op_table[k]
        if info.arity:
            out[info.code] = (info.name.decode(), info.arity, info.d_da.decode(),
                              info.d_db.decode())
    return out


# ---------------------------------------------------------------------------------------------
# The table's functions as Var methods (micrograd's x.relu(), x.tanh(), x.exp()).

# Rows that Python spells as operators (x + y, x ** y, x % y) get no method: they would be
# second names. Var writes conjugate() itself: like float.conjugate it returns the Var itself
# rather than record a copy (NumPy's var on an object array calls it per item).
cdef frozenset _OPERATOR_ROWS = frozenset({"add", "subtract", "multiply", "divide", "power",
                                           "remainder"})
cdef frozenset _OWN_METHODS = frozenset({"conjugate"})
# NumPy's names that Var also takes as methods.
cdef dict _METHOD_ALIASES = {"absolute": "abs"}


def _unary_method(int code):
    def method(Var self):
        return _unary(code, self)
    return method


def _binary_method(int code, str name):
    def method(Var self, other):
        return _method2(code, name, self, other)
    return method


cdef int _add_var_methods() except -1:
    """Put a method per public row into Var's type dict.

    They cannot be written in Var's source from the table: Cython allows no `include` inside a
    class body, and no freelist on a subclass (which a generated base class would make Var).
    So they are added here, at import, the way Cython stores a cdef class's class attributes:
    into the type's dict, then PyType_Modified so that the method cache sees them. A call
    costs what a `def` method's does."""
    cdef dict type_dict = <dict>(<PyTypeObject *>Var).tp_dict
    methods = {name: fn for name, fn in functions.items()
               if name not in _OPERATOR_ROWS and name not in _OWN_METHODS}
    methods.update({alias: functions[row] for alias, row in _METHOD_ALIASES.items()})
    for name, fn in methods.items():
        if name in type_dict:
            _problems.append(f"ops_table.h: row {fn.name!r} would replace Var.{name}, which "
                             "means something else; rename the row")
            continue
        method = _unary_method(fn.code) if fn.arity == 1 else _binary_method(fn.code, fn.name)
        method.__name__ = name
        method.__qualname__ = f"Var.{name}"
        method.__doc__ = (f"``x.{name}({'' if fn.arity == 1 else 'other'})`` is "
                          f"``revad.{fn.name}(x{'' if fn.arity == 1 else ', other'})``: "
                          "one tape entry; see its docstring for the formulas.")
        type_dict[name] = method
    PyType_Modified(Var)
    return 0


_add_var_methods()


# ---------------------------------------------------------------------------------------------
# NumPy's ufuncs: one map from their names to revad, read by Var.__array_ufunc__ and by
# Array.__array_ufunc__ (_array_numpy.pxi) alike, so that np.log2(x) works on both or neither.

# NumPy's (and SciPy's) other names for the table's rows.
_aliases = {"absolute": "abs", "true_divide": "divide", "float_power": "power", "expit": "sigmoid"}
# name -> Function: every public row under its own name and its aliases.
_ufunc_functions = dict(functions)
_ufunc_functions.update({alias: functions[row] for alias, row in _aliases.items()})


def _comparison_codes():
    cdef int k
    return {rv_op_table[k].name.decode(): rv_op_table[k].code
            for k in range(rv_n_op_table) if rv_op_table[k].arity == 0}


# name -> op code of a comparison row (its name is NumPy's: less, greater_equal, ...): no
# gradient, bools, recorded for replay.
_ufunc_comparisons = _comparison_codes()


def _row_second(str name not None, double a, double b=0.0):
    """Testing hook: (value, d2/da2, d2/dadb, d2/db2) of row `name` at (a, b) as the C sweeps
    compute them (ops_table.h's last columns, y the row's value there; 0 for what a unary row
    lacks)."""
    cdef int k, code = -1, arity = 0
    for k in range(rv_n_op_table):
        if rv_op_table[k].name.decode() == name and rv_op_table[k].arity:
            code, arity = rv_op_table[k].code, rv_op_table[k].arity
    if code < 0:
        raise ValueError(f"revad: no differentiable row named {name!r}")
    cdef double y = rv_unary(code, a) if arity == 1 else rv_binary(code, a, b)
    return (y, rv_row_daa(code, a, b, y), rv_row_dab(code, a, b, y),
            rv_row_dbb(code, a, b, y))
