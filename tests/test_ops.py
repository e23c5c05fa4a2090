"""Every op of the table: its value and local derivative against mpmath (50 digits, independent
of revad's formulas) and central finite differences, including the edges of its domain."""
import ast
import math
import os

import mpmath as mp
import numpy as np
import pytest

import revad
from revad import Var

from conftest import central_diff, close

mp.mp.dps = 50

# name -> (mpmath reference, points where it is differentiable)
UNARY = {
    "negative": (lambda a: -a, [-2.5, 0.0, 3.0]),
    "abs": (abs, [-2.5, -1e-300, 1e-300, 3.0]),
    "square": (lambda a: a * a, [-2.5, 0.0, 1e150]),
    "exp": (mp.exp, [-745.0, -1.0, 0.0, 1.0, 700.0]),
    "log": (mp.log, [1e-300, 0.5, 1.0, 1e300]),
    "log1p": (lambda a: mp.log(1 + a), [-0.999999, -1e-12, 0.0, 1e-12, 3.0, 1e300]),
    "expm1": (mp.expm1, [-50.0, -1e-12, 0.0, 1e-12, 2.0, 700.0]),
    "sqrt": (mp.sqrt, [1e-300, 0.25, 4.0, 1e300]),
    "sin": (mp.sin, [-3.0, 0.0, 0.5, 1e5]),
    "cos": (mp.cos, [-3.0, 0.0, 0.5, 1e5]),
    "tan": (mp.tan, [-1.5, 0.0, 0.5, 1.5]),
    "arcsin": (mp.asin, [-0.999999, -0.5, 0.0, 0.5, 0.999999]),
    "arccos": (mp.acos, [-0.999999, -0.5, 0.0, 0.5, 0.999999]),
    "arctan": (mp.atan, [-1e10, -1.0, 0.0, 2.0, 1e10]),
    "sinh": (mp.sinh, [-700.0, -1.0, 0.0, 1e-8, 3.0]),
    "cosh": (mp.cosh, [-700.0, -1.0, 0.0, 3.0]),
    "tanh": (mp.tanh, [-30.0, -1.0, 0.0, 0.5, 30.0]),
    "sigmoid": (lambda a: 1 / (1 + mp.exp(-a)), [-800.0, -30.0, -1.0, 0.0, 2.0, 30.0, 800.0]),
    "relu": (lambda a: max(a, 0), [-2.0, 1e-300, 3.0]),
    "softplus": (lambda a: mp.log(1 + mp.exp(a)), [-800.0, -30.0, -1.0, 0.0, 2.0, 30.0, 800.0]),
    "erf": (mp.erf, [-6.0, -1.0, 0.0, 0.5, 6.0]),
    "log2": (lambda a: mp.log(a, 2), [1e-300, 0.5, 1.0, 8.0, 1e300]),
    "log10": (mp.log10, [1e-300, 0.5, 1.0, 100.0, 1e300]),
    "exp2": (lambda a: mp.power(2, a), [-1000.0, -1.0, 0.0, 0.5, 1000.0]),
    "arcsinh": (mp.asinh, [-1e300, -1.0, 0.0, 1e-8, 3.0, 1e300]),
    "arccosh": (mp.acosh, [1.0 + 2.0 ** -40, 1.000001, 1.5, 2.0, 1e300]),
    "arctanh": (mp.atanh, [-0.999999, -0.5, 0.0, 1e-8, 0.5, 0.999999]),
    "cbrt": (lambda a: mp.sign(a) * mp.cbrt(abs(a)), [-8.0, -1e-300, 1e-300, 0.5, 27.0, 1e300]),
    "reciprocal": (lambda a: 1 / a, [-2.5, 1e-300, 3.0, 1e300]),
    # around 0 (the series) and either side of |pi a| = 0.5 (where the direct form takes over)
    "sinc": (lambda a: mp.sin(mp.pi * a) / (mp.pi * a) if a else mp.mpf(1),
             [-2.5, -1e-3, 0.0, 1e-8, 0.1, 0.159, 0.16, 0.5, 3.3]),
    "fabs": (abs, [-2.5, -1e-300, 1e-300, 3.0]),
    "sign": (mp.sign, [-2.5, -1e-300, 1e-300, 3.0]),
    "floor": (mp.floor, [-2.5, -0.3, 0.7, 2.0 ** 52 - 0.5]),
    "ceil": (mp.ceil, [-2.5, -0.3, 0.7, 2.0 ** 52 - 0.5]),
    "rint": (mp.nint, [-2.7, -0.3, 0.7, 2.2, 2.0 ** 52 - 0.75]),
    "trunc": (lambda a: mp.floor(a) if a >= 0 else mp.ceil(a), [-2.5, -0.3, 0.7, 2.0 ** 52 - 0.5]),
    "deg2rad": (lambda a: a * mp.pi / 180, [-720.0, 0.0, 180.0, 1e300]),
    "radians": (lambda a: a * mp.pi / 180, [-720.0, 0.0, 180.0, 1e300]),
    "rad2deg": (lambda a: a * 180 / mp.pi, [-7.0, 0.0, 1.0, 1e300]),
    "degrees": (lambda a: a * 180 / mp.pi, [-7.0, 0.0, 1.0, 1e300]),
    "positive": (lambda a: +a, [-2.5, 0.0, 1e300]),
    "conjugate": (lambda a: a, [-2.5, 0.0, 1e300]),
}

BINARY = {
    "add": (lambda a, b: a + b, [(1.5, -2.0), (0.0, 0.0)]),
    "subtract": (lambda a, b: a - b, [(1.5, -2.0), (1e300, 1e300)]),
    "multiply": (lambda a, b: a * b, [(1.5, -2.0), (0.0, 3.0)]),
    "divide": (lambda a, b: a / b, [(1.5, -2.0), (0.0, 3.0), (1.0, 1e-300)]),
    "power": (lambda a, b: a ** b, [(1.5, -2.0), (2.0, 0.5), (0.5, 10.0), (3.0, 0.0), (7.0, 1.0)]),
    "maximum": (max, [(1.5, -2.0), (-1.0, 3.0)]),
    "minimum": (min, [(1.5, -2.0), (-1.0, 3.0)]),
    "arctan2": (mp.atan2, [(1.0, 2.0), (-1.0, -2.0), (1e-300, 1.0), (3.0, 0.0)]),
    "hypot": (mp.hypot, [(3.0, 4.0), (-1e200, 1e200), (1e-200, 0.0)]),
    "logaddexp": (lambda a, b: mp.log(mp.exp(a) + mp.exp(b)),
                  [(1.0, 2.0), (-800.0, -801.0), (800.0, 0.0), (-1000.0, 1000.0), (0.0, 0.0)]),
    "logaddexp2": (lambda a, b: mp.log(mp.power(2, a) + mp.power(2, b), 2),
                   [(1.0, 2.0), (-1100.0, -1101.0), (1100.0, 0.0), (-2000.0, 2000.0), (0.0, 0.0)]),
    "fmax": (max, [(1.5, -2.0), (-1.0, 3.0), (-1e300, 1e300)]),
    "fmin": (min, [(1.5, -2.0), (-1.0, 3.0), (-1e300, 1e300)]),
    "remainder": (lambda a, b: a - b * mp.floor(a / b),
                  [(-7.5, 2.0), (7.5, -2.0), (5.3, 0.7), (-5.3, -0.7), (-1e-3, 3.0), (1e10, 3.1)]),
    "fmod": (lambda a, b: a - b * (mp.floor(a / b) if a * b >= 0 else mp.ceil(a / b)),
             [(-7.5, 2.0), (7.5, -2.0), (5.3, 0.7), (-5.3, -0.7), (-1e-3, 3.0), (1e10, 3.1)]),
}


def test_table_and_api_cover_the_same_ops():
    # Each public row of ops_table.h is a revad function with a reference row here, what NumPy's
    # ufunc of its name maps to, and a Var method unless Python spells it as an operator (x + y).
    names = {name for name, fn in vars(revad).items() if isinstance(fn, revad.Function)}
    references = set(UNARY) | set(BINARY)
    assert names == references, (f"rows without a reference row here: {sorted(names - references)}"
                                 f"; reference rows without a row: {sorted(references - names)}")
    operators = {"add", "subtract", "multiply", "divide", "power", "remainder"}
    for name in names - operators:
        assert callable(getattr(Var(1.0), name)), name
        assert getattr(Var, name).__qualname__ == f"Var.{name}", name
    for name in names:
        assert revad._core._ufunc_functions[name] is getattr(revad, name)


def test_every_row_reads_cleanly():
    # A malformed EXAMPLE column (or a row named like a Var attribute) is reported here, by row,
    # rather than at import.
    assert not revad._core._row_problems(), "\n".join(revad._core._row_problems())


def test_every_row_shows_its_example_and_formulas():
    # tests/test_docs.py runs the examples; here, that each row has one.
    for name, fn in revad._core.functions.items():
        call = f"revad.{name}(x, y)" if fn.arity == 2 else f"revad.{name}(x)"
        assert f" = {call}\n" in fn.__doc__, name
        assert "d/da:" in fn.__doc__, name


def _stub(name):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "revad", name)) as f:
        return ast.parse(f.read())


def _stub_methods(cls_name):
    tree = _stub("_core.pyi")
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls_name)
    return {node.name for node in cls.body if isinstance(node, ast.FunctionDef)}


def test_every_public_var_attribute_has_a_stub():
    # The stub is source, read by type checkers from the checkout; this names the lines it lacks.
    stubbed = _stub_methods("Var")
    missing = []
    for name in sorted(n for n in dir(Var) if not n.startswith("_") and n not in stubbed):
        fn = revad._core._ufunc_functions.get(name)
        other = ", other: Operand" if fn is not None and fn.arity == 2 else ""
        missing.append(f"    def {name}(self{other}) -> Var: ...")
    assert not missing, "revad/_core.pyi: class Var needs\n" + "\n".join(missing)
    extra = {n for n in stubbed if not n.startswith("_")} - set(dir(Var))
    assert not extra, f"revad/_core.pyi: class Var declares methods Var lacks: {sorted(extra)}"



def test_every_function_has_a_stub():
    # revad/__init__.pyi declares the functions that revad/__init__.py installs from the table
    # (mypy's stubtest in .ci/lint checks it too); this names the lines it lacks.
    tree = _stub("__init__.pyi")
    declared = {n.target.id: ast.unparse(n.annotation) for n in tree.body
                if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    listed = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                  and [ast.unparse(t) for t in n.targets] == ["__all__"])
    missing = []
    for name, fn in sorted(revad._core.functions.items()):
        kind = "_UnaryFunction" if fn.arity == 1 else "_BinaryFunction"
        if declared.get(name) != kind:
            missing.append(f"{name}: {kind}")
        if name not in listed:
            missing.append(f'"{name}" in __all__')
    assert not missing, "revad/__init__.pyi needs\n" + "\n".join(missing)

def test_numpy_ufuncs_agree_on_var_and_array():
    # One map serves both: every ufunc revad takes on an Array it takes on a Var, with the same
    # value and derivative.
    core = revad._core
    for name in sorted(core._ufunc_functions):
        ufunc = getattr(np, name, None)
        if not isinstance(ufunc, np.ufunc):
            continue  # revad's own rows (sigmoid, relu) and SciPy's names (expit)
        args = (1.3 if name == "arccosh" else 0.3, 0.7)[:ufunc.nin]  # inside every domain
        vs = [Var(a) for a in args]
        y = ufunc(*vs)
        arrays = [revad.Array(np.array([a])) for a in args]
        ya = ufunc(*arrays)
        assert type(y) is Var, name
        y.backward()
        np.sum(ya).backward()
        assert y.value == ya.value[0], name
        assert y.value == pytest.approx(ufunc(*args), rel=1e-15), name  # (libm's last bit)
        assert [v.grad for v in vs] == [a.grad[0] for a in arrays], name
    for name in core._ufunc_comparisons:
        ufunc = getattr(np, name)
        assert ufunc(Var(0.3), 0.7) == ufunc(revad.Array(np.array([0.3])), 0.7)[0], name
        assert ufunc(0.3, Var(0.7)) == ufunc(0.3, revad.Array(np.array([0.7])))[0], name


def test_numpy_aliases_and_identities_on_a_var():
    x = Var(8.0)
    y = np.log2(x)
    y.backward()
    assert type(y) is Var and y.value == 3.0
    assert x.grad == pytest.approx(1.0 / (8.0 * math.log(2.0)), rel=1e-15)
    assert np.mod is np.remainder and np.abs is np.absolute  # one ufunc under two names
    x = Var(2.0)
    for y in (np.positive(x), np.conjugate(x), x.positive(), np.real(x)):
        assert y.value == 2.0
    assert x.conjugate() is x  # as float.conjugate: NumPy's var on object arrays calls it
    assert np.real(x) is x and np.imag(x) == 0.0
    y = np.positive(x) * 3.0 + np.conjugate(x) + np.imag(x)
    y.backward()
    assert x.grad == 4.0


def _mp_derivative(f, x):
    # A step relative to x keeps the stencil inside the domain near 0 (log at 1e-300).
    x = mp.mpf(x)
    return float(mp.diff(f, x, h=abs(x) * mp.mpf("1e-20") if x else mp.mpf("1e-30")))


def _check(got, want, rtol):
    if math.isinf(want) or want == 0:
        assert got == want
    else:
        assert got == pytest.approx(want, rel=rtol, abs=1e-300)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_value_and_derivative_vs_mpmath(name):
    ref, points = UNARY[name]
    fn = getattr(revad, name)
    for p in points:
        x = Var(p)
        y = fn(x)
        y.backward()
        _check(y.value, float(ref(mp.mpf(p))), 1e-13)
        # arcsin/arccos near +-1 lose digits to 1 - a*a in double precision.
        rtol = 1e-9 if name in ("arcsin", "arccos") else 1e-12
        _check(x.grad, _mp_derivative(ref, p), rtol)


def _ulps(got, want):
    return 0.0 if got == want else abs(got - want) / math.ulp(want)


def test_tanh_and_its_derivative_within_a_few_ulps_everywhere():
    # vmath.h computes both without libm (so that the loops vectorise): checked against mpmath
    # on every scale, through the array loops and the scalar entries alike.
    rng = np.random.default_rng(7)
    scales = (1e-300, 1e-8, 1e-3, 0.3, 1, 3, 10, 30, 300)
    xs = np.concatenate([rng.normal(size=300) * s for s in scales]
                        + [np.linspace(-21, 21, 1201)])
    a = revad.Array(xs)
    y = np.tanh(a)
    np.sum(y).backward()
    worst_y = worst_g = 0.0
    for k, x in enumerate(xs):
        want_y = float(mp.tanh(mp.mpf(x)))
        want_g = float(mp.sech(mp.mpf(x)) ** 2)
        worst_y = max(worst_y, _ulps(y.value[k], want_y))
        worst_g = max(worst_g, _ulps(a.grad[k], want_g) if abs(x) < 354 else a.grad[k] / 1e-300)
    assert worst_y <= 3 and worst_g <= 5, (worst_y, worst_g)
    v = Var(float(xs[123]))
    revad.tanh(v).backward()
    assert revad.tanh(Var(float(xs[123]))).value == y.value[123] and v.grad == a.grad[123]
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e308, 400.0])
    a = revad.Array(special)
    y = np.tanh(a)
    np.sum(y).backward()
    np.testing.assert_array_equal(y.value,
                                  [0.0, -0.0, 1.0, -1.0, np.nan, 5e-324, -5e-324, 1.0, 1.0])
    assert np.signbit(y.value[1]) and not np.signbit(y.value[0])
    np.testing.assert_array_equal(a.grad, [1.0, 1.0, 0.0, 0.0, np.nan, 1.0, 1.0, 0.0, 0.0])


def fd_points(name):
    """The reference row's points where central finite differences are trustworthy: moderate
    ones, inside the domain (tests/test_forward.py checks forward mode there too)."""
    fn = getattr(revad, name)
    return [p for p in UNARY[name][1]
            if all(math.isfinite(fn(p + s)) for s in (-1e-3, 1e-3))
            and (1e-3 < abs(p) < 20 or p == 0.0) and not (name == "tan" and abs(p) > 1)]


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_derivative_vs_central_differences(name):
    fn = getattr(revad, name)
    assert fd_points(name), name
    for p in fd_points(name):
        x = Var(p)
        fn(x).backward()
        assert close(x.grad, central_diff(fn, p), rtol=1e-6, atol=1e-8), (name, p)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_value_and_partials_vs_mpmath(name):
    ref, points = BINARY[name]
    fn = getattr(revad, name)
    for a, b in points:
        x, y = Var(a), Var(b)
        z = fn(x, y)
        z.backward()
        _check(z.value, float(ref(mp.mpf(a), mp.mpf(b))), 1e-14)
        _check(x.grad, _mp_derivative(lambda t: ref(t, mp.mpf(b)), a), 1e-12)
        _check(y.grad, _mp_derivative(lambda t: ref(mp.mpf(a), t), b), 1e-12)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_with_constant_operand_on_either_side(name):
    # x op c and c op x are recorded as one entry with an immediate; same numbers as Var op Var.
    _, points = BINARY[name]
    fn = getattr(revad, name)
    for a, b in points:
        x, y = Var(a), Var(b)
        fn(x, y).backward()
        xc, yc = Var(a), Var(b)
        left = fn(xc, b)
        assert revad.tape_info(left)["n_ops"] == 2 and revad.tape_info(left)["n_consts"] == 1
        left.backward()
        right = fn(a, yc)
        right.backward()
        assert left.value == right.value == fn(a, b)
        assert (xc.grad, yc.grad) == (x.grad, y.grad)


def test_operators_match_functions():
    a, b = 1.7, -0.4
    for op, fn in [("__add__", revad.add), ("__sub__", revad.subtract),
                   ("__mul__", revad.multiply), ("__truediv__", revad.divide)]:
        x, y = Var(a), Var(b)
        getattr(x, op)(y).backward()
        x2, y2 = Var(a), Var(b)
        fn(x2, y2).backward()
        assert (x.grad, y.grad) == (x2.grad, y2.grad)
    x = Var(a)
    (x ** 3.0).backward()
    assert x.grad == pytest.approx(3 * a * a, rel=1e-15)
    x = Var(2.0)
    (3.0 ** x).backward()
    assert x.grad == pytest.approx(9.0 * math.log(3.0), rel=1e-15)
    x = Var(a)
    (-x).backward()
    assert x.grad == -1.0
    x = Var(-a)
    abs(x).backward()
    assert x.grad == -1.0
    x = Var(a)
    y = +x
    assert y is x


def test_square_is_one_entry_and_exact():
    x = Var(3.0)
    y = x ** 2
    assert revad.tape_info(y)["n_ops"] == 2 and revad.tape_info(y)["n_consts"] == 0
    y.backward()
    assert (y.value, x.grad) == (9.0, 6.0)


# -- points where an op is not differentiable: the documented PyTorch choices ------------------

@pytest.mark.parametrize("fn, x0, grad", [
    (revad.relu, 0.0, 0.0),
    (revad.abs, 0.0, 0.0),
    (abs, 0.0, 0.0),
    (revad.sqrt, 0.0, math.inf),
    (lambda x: x ** 0.0, 0.0, 0.0),
    (lambda x: x ** 0, 5.0, 0.0),
    (lambda x: 0.0 ** x, 2.0, 0.0),
    (lambda x: 0.0 ** x, 0.0, 0.0),
    (revad.arcsin, 1.0, math.inf),
    # issue 16's rows: the step functions are flat at their jumps too (autograd, PyTorch)
    (revad.sign, 0.0, 0.0), (revad.fabs, 0.0, 0.0),
    (revad.floor, 2.0, 0.0), (revad.ceil, -2.0, 0.0), (revad.rint, 2.5, 0.0),
    (revad.trunc, 0.0, 0.0), (revad.trunc, -3.0, 0.0),
    (revad.cbrt, 0.0, math.inf), (revad.arccosh, 1.0, math.inf), (revad.arctanh, 1.0, math.inf),
    (revad.arctanh, -1.0, math.inf), (revad.sinc, 0.0, 0.0),
    (lambda x: x % 2.0, 4.0, 1.0), (lambda x: 4.0 % x, 2.0, -2.0),
    (lambda x: revad.fmod(x, 2.0), -4.0, 1.0), (lambda x: revad.fmod(-4.0, x), 2.0, 2.0),
])
def test_non_differentiable_points(fn, x0, grad):
    x = Var(x0)
    fn(x).backward()
    assert x.grad == grad


def test_maximum_minimum_split_the_gradient_at_a_tie():
    for fn in (revad.maximum, revad.minimum):
        x, y = Var(2.0), Var(2.0)
        fn(x, y).backward()
        assert (x.grad, y.grad) == (0.5, 0.5)


def test_hypot_and_arctan2_at_origin_are_nan():
    for fn in (revad.hypot, revad.arctan2):
        x, y = Var(0.0), Var(0.0)
        fn(x, y).backward()
        assert math.isnan(x.grad) and math.isnan(y.grad)


def test_out_of_domain_values_follow_numpy():
    with np.errstate(all="ignore"):
        cases = [(revad.log, -1.0), (revad.log, 0.0), (revad.sqrt, -1.0), (revad.arcsin, 2.0),
                 (revad.arccos, -2.0), (revad.log1p, -1.0), (revad.log1p, -2.0)]
        for fn, x0 in cases:
            x = Var(x0)
            y = fn(x)
            want = getattr(np, fn.__name__)(x0)
            assert (math.isnan(y.value) and math.isnan(want)) or y.value == want
            y.backward()  # never an exception from the sweep
            assert fn(x0) == y.value or (math.isnan(fn(x0)) and math.isnan(y.value))
    x = Var(1.0)
    y = x / 0.0
    y.backward()
    assert y.value == math.inf and x.grad == math.inf
    x = Var(0.0)
    (1.0 / x).backward()
    assert x.grad == -math.inf or math.isnan(x.grad)


def test_nan_propagates_through_maximum_like_numpy():
    assert math.isnan(revad.maximum(Var(math.nan), 1.0).value)
    assert math.isnan(revad.maximum(1.0, Var(math.nan)).value)
    assert math.isnan(revad.minimum(Var(1.0), math.nan).value)
    assert revad.maximum(Var(math.inf), 1.0).value == math.inf


# -- the functions on plain numbers, arrays, and through NumPy -----------------------------------

def test_functions_on_floats_return_floats():
    assert type(revad.exp(2.0)) is float and revad.exp(2.0) == math.exp(2.0)
    assert revad.sigmoid(0) == 0.5
    assert revad.arctan2(1, 1) == math.atan2(1, 1)
    assert revad.relu(np.float32(-2.0)) == 0.0


def test_binary_functions_with_a_var_and_an_array_give_an_array():
    # one group broadcast over the array, as np.maximum(v, X) gives (tests/test_ufunc_rows.py)
    x = Var(1.0)
    for out in (revad.maximum(x, [0.0, 2.0]), revad.maximum(np.array([0.0, 2.0]), x),
                revad.logaddexp([0.0, 2.0], x)):
        assert type(out) is revad.Array and out.shape == (2,)
    np.testing.assert_array_equal(revad.maximum(x, [0.0, 2.0]).value, [1.0, 2.0])
    np.sum(revad.maximum(x, [0.0, 2.0])).backward()
    assert x.grad == 1.0
    assert type(revad.maximum(Var(1.0), np.array(2.0))) is Var  # a 0-d array is a number


def test_functions_on_arrays():
    a = np.array([[0.5, -1.0], [2.0, 0.0]])
    np.testing.assert_allclose(revad.tanh(a), np.tanh(a), rtol=5e-16, atol=0)
    assert revad.tanh(a).dtype == np.float64
    np.testing.assert_array_equal(revad.maximum(a, 0.0), np.maximum(a, 0.0))
    xs = np.array([Var(0.5), Var(-1.0)], dtype=object)
    ys = revad.exp(xs)
    assert ys.dtype == object and all(type(v) is Var for v in ys)
    sum(ys).backward()
    assert [v.grad for v in xs] == [math.exp(0.5), math.exp(-1.0)]


@pytest.mark.parametrize("ufunc, name", [
    (np.exp, "exp"), (np.tanh, "tanh"), (np.sqrt, "sqrt"), (np.abs, "abs"),
    (np.negative, "negative"),
    (np.log1p, "log1p"), (np.arcsin, "arcsin"), (np.square, "square"), (np.cosh, "cosh"),
])
def test_numpy_ufuncs_on_a_var_record_the_op(ufunc, name):
    x = Var(0.3)
    y = ufunc(x)
    assert type(y) is Var
    y.backward()
    x2 = Var(0.3)
    getattr(revad, name)(x2).backward()
    assert (y.value, x.grad) == (getattr(revad, name)(0.3), x2.grad)


def test_numpy_binary_ufuncs_and_scalars():
    x = Var(1.5)
    for y in (np.float64(2.0) * x, x * np.float32(2.0), np.int64(2) * x, np.multiply(x, 2.0),
              np.array(2.0) * x):
        assert type(y) is Var and y.value == 3.0
    z = np.arctan2(x, 2.0) + np.hypot(x, 2.0) + np.maximum(x, 0.0) + np.power(x, 2.0)
    z.backward()
    want = 2.0 / (1.5 ** 2 + 4.0) + 1.5 / 2.5 + 1.0 + 3.0
    assert x.grad == pytest.approx(want, rel=1e-14)


def test_numpy_arrays_of_vars():
    xs = np.array([Var(1.0), Var(2.0), Var(3.0)], dtype=object)
    w = np.array([0.5, -1.0, 2.0])
    y = np.dot(w, xs) + np.sum(np.tanh(xs) * xs)
    assert type(y) is Var
    y.backward()
    want = w + np.tanh([1.0, 2.0, 3.0]) + np.array([1.0, 2.0, 3.0]) / np.cosh([1.0, 2.0, 3.0]) ** 2
    np.testing.assert_allclose([v.grad for v in xs], want, rtol=1e-14)


def test_unsupported_numpy_function_names_itself():
    with pytest.raises(TypeError, match="spacing"):
        np.spacing(Var(1.5))
    with pytest.raises(TypeError, match="spacing"):
        np.spacing(Var(1.5) * np.ones(3))
    with pytest.raises(TypeError, match="accumulate"):
        np.add.accumulate(Var(1.5))
    x = Var(1.5)
    assert np.sum(x) is x and np.prod(x) is x  # reducing one scalar is that scalar


def test_docstrings_show_formulas_and_notes():
    assert "d/da:   y" in revad.exp.__doc__
    assert "relu'(0) = 0" in revad.relu.__doc__
    assert revad.hypot.__name__ == "hypot" and "d/db" in revad.hypot.__doc__
