"""The op table's partial derivatives as recorded operations, for derivatives of derivatives.

Each row of ``src/revad/ops_table.h`` writes its partials as C expressions in ``a``, ``b`` and
the saved output ``y`` (``Function.d_da``, ``d_db``). The reverse sweep that records itself
(``revad._nested``) evaluates the same expressions on Vars and Arrays, so that the gradient it
records is the table's, and differentiating it again uses the table's rows once more: one table
serves every order.

The expressions are parsed once (a small C expression grammar: numbers, names, calls, unary
``-`` and ``!``, ``* /``, ``+ -``, comparisons, ``&& ||`` and ``?:``) into Python closures.
Functions of the C library map to the rows that compute them; the table's helpers (``rv_*``)
to expressions of rows (``_HELPERS``), or, where they are piecewise constant (the partials of
``maximum``, ``floor_divide``), to their values, which have no derivative.
"""
import math
import re

import numpy as np

from revad import _core

_TOKEN = re.compile(r"\s*(?:(\d+\.\d*(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?|\.\d+)|"
                    r"([A-Za-z_]\w*)|(\|\||&&|[<>=!]=|[-+*/()?:,<>!]))")


def _tokens(text):
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"revad: cannot read the partial {text!r} at {text[pos:]!r}")
        num, name, op = m.groups()
        out.append(("num", float(num)) if num else ("name", name) if name else ("op", op))
        pos = m.end()
    out.append(("end", None))
    return out


class _Parser:
    """Recursive descent over C's precedence; each rule returns a closure env -> value."""

    def __init__(self, text, functions):
        self.toks, self.k, self.text, self.functions = _tokens(text), 0, text, functions

    def peek(self):
        return self.toks[self.k]

    def take(self, op=None):
        tok = self.toks[self.k]
        if op is not None and tok != ("op", op):
            raise ValueError(f"revad: expected {op!r} in the partial {self.text!r}")
        self.k += 1
        return tok

    def parse(self):
        e = self.ternary()
        if self.peek()[0] != "end":
            raise ValueError(f"revad: cannot read the partial {self.text!r}")
        return e

    def ternary(self):
        cond = self.binary(0)
        if self.peek() != ("op", "?"):
            return cond
        self.take("?")
        yes = self.ternary()
        self.take(":")
        no = self.ternary()
        return lambda env: _select(cond(env), yes, no, env)

    _LEVELS = [("||",), ("&&",), ("==", "!="), ("<", ">", "<=", ">="), ("+", "-"), ("*", "/")]

    def binary(self, level):
        if level == len(self._LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek()[0] == "op" and self.peek()[1] in self._LEVELS[level]:
            op = self.take()[1]
            right = self.binary(level + 1)
            left = _BINARY[op](left, right)
        return left

    def unary(self):
        tok = self.peek()
        if tok == ("op", "-"):
            self.take()
            e = self.unary()
            return lambda env: -e(env)
        if tok == ("op", "!"):
            self.take()
            e = self.unary()
            return lambda env: np.logical_not(_mask(e(env)))
        if tok == ("op", "+"):
            self.take()
            return self.unary()
        return self.primary()

    def primary(self):
        kind, v = self.take()
        if kind == "num":
            return lambda env: v
        if kind == "op" and v == "(":
            e = self.ternary()
            self.take(")")
            return e
        if kind != "name":
            raise ValueError(f"revad: cannot read the partial {self.text!r}")
        if self.peek() == ("op", "("):
            self.take("(")
            args = []
            if self.peek() != ("op", ")"):
                args.append(self.ternary())
                while self.peek() == ("op", ","):
                    self.take(",")
                    args.append(self.ternary())
            self.take(")")
            fn = self.functions.get(v)
            if fn is None:
                raise ValueError(f"revad: the partial {self.text!r} calls {v}, which has no "
                                 "recorded form (revad/_partials.py)")
            return lambda env: fn(*[a(env) for a in args])
        if v in _CONSTANTS:
            c = _CONSTANTS[v]
            return lambda env: c
        return lambda env: env[v]


_CONSTANTS = {"M_PI": math.pi, "NAN": math.nan, "INFINITY": math.inf}


def _values(x):
    """The values of an operand: a Var's float, an Array's ndarray, a number as it is."""
    return x.value if type(x) in (_core.Var, _array_type()) else x


def _mask(c):
    """A condition's truth: a bool, or a bool ndarray (of a comparison of Arrays)."""
    if isinstance(c, np.ndarray):
        return c.astype(bool, copy=False)
    return bool(c)


def _select(c, yes, no, env):
    c = _mask(c)
    if isinstance(c, np.ndarray) and c.ndim:
        if c.all():
            return yes(env)
        if not c.any():
            return no(env)
        import revad.numpy as rnp
        return rnp.where(c, yes(env), no(env))
    return yes(env) if c else no(env)


def _compare(op):
    def cmp(x, y):
        return op(np.asarray(_values(x)), np.asarray(_values(y)))[()]
    return cmp


def _logical(op):
    def f(x, y):
        return op(_mask(x), _mask(y))
    return f


_OPS = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y,
        "/": lambda x, y: x / y,
        "<": _compare(np.less), ">": _compare(np.greater), "<=": _compare(np.less_equal),
        ">=": _compare(np.greater_equal), "==": _compare(np.equal),
        "!=": _compare(np.not_equal),
        "&&": _logical(np.logical_and), "||": _logical(np.logical_or)}
def _binary(fn):
    return lambda left, right: lambda env: fn(left(env), right(env))


_BINARY = {op: _binary(fn) for op, fn in _OPS.items()}


def _array_type():
    from revad._array import Array
    return Array


def _constant(fn):
    """A piecewise-constant helper (a partial of maximum, a quotient): its value, no gradient."""
    def f(*args):
        return fn(*[np.asarray(_values(a), dtype=np.float64) for a in args])[()]
    return f


def _dmax(a, b):
    return np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0))


def _dfmax(a, b):
    return np.where(np.isnan(b), 1.0, np.where(np.isnan(a), 0.0, _dmax(a, b)))


def _dfmin(a, b):
    return np.where(np.isnan(b), 1.0, np.where(np.isnan(a), 0.0, 1.0 - _dmax(a, b)))


def _functions():
    fn = _core.functions
    table = {
        # C's math library, by the row that computes it
        "exp": fn["exp"], "log": fn["log"], "log1p": fn["log1p"], "expm1": fn["expm1"],
        "sqrt": fn["sqrt"], "sin": fn["sin"], "cos": fn["cos"], "tan": fn["tan"],
        "asin": fn["arcsin"], "acos": fn["arccos"], "atan": fn["arctan"],
        "sinh": fn["sinh"], "cosh": fn["cosh"], "atan2": fn["arctan2"], "hypot": fn["hypot"],
        "pow": fn["power"], "fabs": fn["abs"], "erf": fn["erf"],
        "rv_vm_tanh": fn["tanh"], "rv_sigmoid": fn["sigmoid"], "rv_softplus": fn["softplus"],
        "rv_max": fn["maximum"], "rv_min": fn["minimum"],
        # piecewise constant: values only
        "rv_dmax": _constant(_dmax), "rv_dfmax": _constant(_dfmax),
        "rv_dfmin": _constant(_dfmin),
    }
    for c_name, row in (("log2", "log2"), ("log10", "log10"), ("exp2", "exp2"),
                        ("cbrt", "cbrt"), ("asinh", "arcsinh"), ("acosh", "arccosh"),
                        ("atanh", "arctanh"), ("rv_sign", "sign"), ("floor", "floor"),
                        ("ceil", "ceil"), ("rint", "rint"), ("trunc", "trunc"),
                        ("rv_sinc", "sinc"), ("rv_logaddexp", "logaddexp"),
                        ("rv_logaddexp2", "logaddexp2"), ("fmax", "fmax"), ("fmin", "fmin"),
                        ("rv_remainder", "remainder")):
        if row in fn:
            table[c_name] = fn[row]
    # Helpers that are partials themselves: written here with the rows, as C writes them.
    for name, (params, text) in _HELPERS.items():
        table[name] = _helper(params, text, table)
    return table


# name -> (its parameters, its C expression over them, using rows and helpers)
_HELPERS = {
    "rv_dsigmoid": (("a", "y"), "a <= 0 ? y * (1.0 - y) : y * y * exp(-a)"),
    "rv_vm_dtanh": (("a",), "1.0 / (cosh(a) * cosh(a))"),
    # C's b == 0 branch only where b * a^(b - 1) is not 0 itself (0 * inf, 0 * nan): a constant
    # branch at every b == 0 would lose d/db (a^-1 there).
    "rv_dpow_da": (("a", "b"), "(b == 0 && (a == 0 || a != a)) ? 0.0 : b * pow(a, b - 1.0)"),
    "rv_dpow_db": (("a", "b", "y"), "(a == 0 && b >= 0) ? 0.0 : y * log(a)"),
    # (C's tie branch 0.5 is sigmoid(0): only equal infinities, inf - inf, need it apart; a
    # constant branch at a == b would lose the derivative there.)
    "rv_dlogaddexp": (("a", "b"), "a - b != a - b ? 0.5 : rv_sigmoid(a - b)"),
    "rv_dlogaddexp2": (("a", "b"),
                       "a - b != a - b ? 0.5 : rv_sigmoid(0.6931471805599453 * (a - b))"),
    # C's series near 0, where the direct form cancels (its derivative there too)
    "rv_dsinc": (("a",), "fabs(M_PI * a) < 0.5 ? M_PI * (M_PI * a) * (-1.0 / 3 + (M_PI * a) "
                         "* (M_PI * a) * (1.0 / 30 + (M_PI * a) * (M_PI * a) * (-1.0 / 840 "
                         "+ (M_PI * a) * (M_PI * a) * (1.0 / 45360 + (M_PI * a) * (M_PI * a) "
                         "* (-1.0 / 3991680 + (M_PI * a) * (M_PI * a) * (1.0 / 518918400))))))"
                         " : (cos(M_PI * a) - rv_sinc(a)) / a"),
    "rv_floor_divide": (("a", "b"), "_constant_floor_divide(a, b)"),
    "rv_fmod_quotient": (("a", "b"), "_constant_fmod_quotient(a, b)"),
}


def _helper(params, text, table):
    table.setdefault("_constant_floor_divide", _constant(np.floor_divide))
    table.setdefault("_constant_fmod_quotient",
                     _constant(lambda a, b: np.trunc((a - np.fmod(a, b)) / b)))
    expr = _Parser(text, table).parse()
    return lambda *args: expr(dict(zip(params, args, strict=True)))


_compiled = None


def partials(code):
    """The partials of op-table row `code`: a tuple of functions (a, b, y) -> value (one per
    operand), evaluated on Vars and Arrays as recorded ops."""
    global _compiled
    if _compiled is None:
        table = _functions()
        rows = {}
        for row, (_, arity, d_da, d_db) in _core._row_partials().items():
            rows[row] = tuple(_Parser(e, table).parse() for e in [d_da, d_db][:arity])
        _compiled = rows
    return _compiled[code]
