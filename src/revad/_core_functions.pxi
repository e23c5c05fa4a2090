# The op table as Python sees it: one Function object per row (like NumPy's ufuncs).
# Part of revad._core (included textually by _core.pyx: one module, several files).

cdef dict _code = {}       # name -> op code

# revad.Array lives in _array, which cimports this module; it registers itself here at import
# so that the functions of the table (revad.exp(array)) can hand arrays over to it.
cdef object _array_type = None
cdef object _array_apply = None


cdef object _array_function = None


def _register_array(array_type, apply, array_function):
    """Called once by revad._array: the Array type, its apply(code, arity, args) and the
    __array_function__ that serves Vars too."""
    global _array_type, _array_apply, _array_function
    _array_type, _array_apply, _array_function = array_type, apply, array_function
cdef dict _by_ufunc = {}   # NumPy ufunc name -> Function


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
    if info.note[0]:
        lines += ["", f"Not differentiable everywhere: {info.note.decode()}."]
    lines += ["", "On real numbers it returns a float; on arrays it applies elementwise.",
              "", example]
    return "\n".join(lines)


# A runnable example per function: the value and derivative at one point, each checked by the
# doctests against the numbers here (computed independently, with mpmath).
_examples = {
    "exp": ("0.5", "1.648721 1.648721"), "log": ("2.0", "0.693147 0.500000"),
    "log1p": ("0.5", "0.405465 0.666667"), "expm1": ("0.5", "0.648721 1.648721"),
    "sqrt": ("4.0", "2.000000 0.250000"), "sin": ("0.5", "0.479426 0.877583"),
    "cos": ("0.5", "0.877583 -0.479426"), "tan": ("0.5", "0.546302 1.298446"),
    "arcsin": ("0.5", "0.523599 1.154701"), "arccos": ("0.5", "1.047198 -1.154701"),
    "arctan": ("0.5", "0.463648 0.800000"), "sinh": ("0.5", "0.521095 1.127626"),
    "cosh": ("0.5", "1.127626 0.521095"), "tanh": ("0.5", "0.462117 0.786448"),
    "sigmoid": ("0.5", "0.622459 0.235004"), "relu": ("-0.5", "0.000000 0.000000"),
    "softplus": ("0.5", "0.974077 0.622459"), "erf": ("0.5", "0.520500 0.878783"),
    "abs": ("-0.5", "0.500000 -1.000000"), "negative": ("0.5", "-0.500000 -1.000000"),
    "square": ("0.5", "0.250000 1.000000"),
    "maximum": ("1.0, 2.0", "2.000000 0.000000 1.000000"),
    "minimum": ("1.0, 2.0", "1.000000 1.000000 0.000000"),
    "arctan2": ("1.0, 2.0", "0.463648 0.400000 -0.200000"),
    "hypot": ("3.0, 4.0", "5.000000 0.600000 0.800000"),
    "add": ("1.0, 2.0", "3.000000 1.000000 1.000000"),
    "subtract": ("1.0, 2.0", "-1.000000 1.000000 -1.000000"),
    "multiply": ("3.0, 2.0", "6.000000 2.000000 3.000000"),
    "divide": ("3.0, 2.0", "1.500000 0.500000 -0.750000"),
    "power": ("3.0, 2.0", "9.000000 6.000000 9.887511"),
}


cdef str _example(str name, int arity):
    arg, out = _examples[name]
    if arity == 1:
        return (f">>> import revad\n>>> x = revad.Var({arg})\n>>> y = revad.{name}(x)\n"
                f">>> y.backward()\n>>> print(f\"{{y.value:.6f}} {{x.grad:.6f}}\")\n{out}")
    return (f">>> import revad\n>>> x, y = revad.Var({arg.split(', ')[0]}), revad.Var({arg.split(', ')[1]})\n"
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
        fn.doc = _docstring(info, _example(fn.name, info.arity))
        _code[fn.name] = fn.code
        out[fn.name] = fn
    return out


functions = _make_functions()
# NumPy's names for the same ops, and SciPy's special functions that are ours too.
_aliases = {"absolute": "abs", "true_divide": "divide", "float_power": "power", "expit": "sigmoid"}
_by_ufunc.update(functions)
for _alias, _name in _aliases.items():
    _by_ufunc[_alias] = functions[_name]
_by_ufunc.update(less=operator.lt, less_equal=operator.le, greater=operator.gt,
                 greater_equal=operator.ge, equal=operator.eq, not_equal=operator.ne,
                 positive=operator.pos)
