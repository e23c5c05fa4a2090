"""Second order (issue 17): grad nested to any depth, through every kind of entry, against
closed forms, mpmath and finite differences of the gradient; Hessian-vector products, Hessians,
Jacobians; SciPy's second-order optimisers."""
import math

import mpmath as mp
import numpy as np
import pytest

import revad
import revad.numpy as rnp

from conftest import fd_array_gradient as fd_grad
from test_ops import BINARY, UNARY

grad = revad.grad




# -- nesting ------------------------------------------------------------------------------------

def test_three_levels_deep_closed_forms():
    f = lambda x: x ** 3 * revad.sin(x)  # noqa: E731
    x = 0.7
    d1 = 3 * x ** 2 * math.sin(x) + x ** 3 * math.cos(x)
    d2 = 6 * x * math.sin(x) + 6 * x ** 2 * math.cos(x) - x ** 3 * math.sin(x)
    d3 = (6 * math.sin(x) + 18 * x * math.cos(x) - 9 * x ** 2 * math.sin(x)
          - x ** 3 * math.cos(x))
    assert grad(f)(x) == pytest.approx(d1, rel=1e-14)
    assert grad(grad(f))(x) == pytest.approx(d2, rel=1e-13)
    assert grad(grad(grad(f)))(x) == pytest.approx(d3, rel=1e-12)


def test_six_derivatives_of_tanh_as_autograd_example():
    fn = revad.elementwise_grad
    f = np.tanh
    for _ in range(6):
        f = fn(f)
    x = np.array([-0.8, 0.1, 1.3])
    want = [float(mp.diff(mp.tanh, mp.mpf(v), 6)) for v in x]
    np.testing.assert_allclose(f(x), want, rtol=1e-9)


def test_no_perturbation_confusion():
    # d/dx [x * d/dy (x + y)] = d/dx [x * 1] = 1 (Siskind and Pearlmutter's example)
    assert grad(lambda x: x * grad(lambda y: x + y)(1.0))(2.0) == 1.0
    # the inner variable is the inner call's even when it is given the outer's value
    assert grad(lambda x: grad(lambda y: x * y)(x))(3.0) == 1.0
    assert grad(lambda x: x * grad(lambda y: x * y)(2.0))(3.0) == 6.0


def test_grad_of_a_var_records_on_its_tape_like_create_graph():
    x = revad.Var(2.0)
    g = revad.grad(lambda t: t ** 3)(x)  # 3 x^2, recorded on x's tape
    assert type(g) is revad.Var and g.value == 12.0
    g.backward()
    assert x.grad == 12.0  # 6 x


def test_value_and_grad_nested_gives_recorded_values():
    def inner(x):
        v, g = revad.value_and_grad(lambda y: y ** 3)(x)
        return v + g  # x^3 + 3x^2

    assert grad(inner)(2.0) == 3 * 4 + 6 * 2


def test_nested_through_arrays_products_and_reductions():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(4, 3))

    def f(x):  # elementwise, broadcast, matmul (Array with Array), sums, max, indexing
        W = rnp.reshape(x[:12], (4, 3))
        h = rnp.tanh(W @ x[12:15] + A @ x[12:15])
        return rnp.sum(h ** 2) + rnp.max(x) * x[0] + rnp.sum(rnp.exp(x[3:6]) * x[6:9])

    x0 = rng.normal(size=15) * 0.5
    v = rng.normal(size=15)
    hv = revad.hvp(f)(x0, v)
    want = fd_grad(lambda x: float(np.dot(revad.grad(f)(x), v)), x0)  # d/dx (g . v)
    np.testing.assert_allclose(hv, want, rtol=1e-6, atol=1e-7)
    gfd = (revad.grad(f)(x0 + 1e-6 * v) - revad.grad(f)(x0 - 1e-6 * v)) / 2e-6
    np.testing.assert_allclose(hv, gfd, rtol=1e-6, atol=1e-7)


def test_nested_through_primitives_linalg_and_special_functions():
    ss = pytest.importorskip("scipy.special")
    assert grad(grad(lambda x: ss.gammaln(x)))(2.5) == pytest.approx(
        float(ss.polygamma(1, 2.5)), rel=1e-12)
    X = np.array([[2.0, 0.3, 0.1], [0.3, 1.5, -0.2], [0.1, -0.2, 1.0]])
    V = np.array([[0.5, 1.0, 0.0], [1.0, -1.0, 0.2], [0.0, 0.2, 0.3]])
    # d/dX logdet X = X^-T; its derivative along V is -X^-1 V X^-1 (transposed)
    hv = revad.hvp(lambda a: rnp.linalg.slogdet(a)[1])(X, V)
    inv = np.linalg.inv(X)
    np.testing.assert_allclose(hv, -(inv @ V @ inv).T, rtol=1e-10)

    @revad.primitive
    def cube(x):
        return x ** 3

    revad.defvjp(cube, lambda ans, x: lambda g: 3 * x ** 2 * g)
    assert grad(grad(cube))(2.0) == 12.0


# -- every row of the op table, second derivatives against mpmath ---------------------------------

def _moderate(points):
    return [p for p in points if 1e-3 < abs(p) < 20]


@pytest.mark.parametrize("name", sorted(UNARY))
def test_every_unary_row_second_derivative_vs_mpmath(name):
    ref, points = UNARY[name]
    fn = getattr(revad, name)
    pts = _moderate(points) or [0.7]
    for p in pts:
        if name in ("floor", "ceil", "rint", "trunc", "sign", "relu", "abs", "fabs"):
            want = 0.0
        else:
            want = float(mp.diff(ref, mp.mpf(p), 2))
        got = grad(grad(fn))(p)
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12), (name, p)
        # the inner gradient, recorded by the sweep that records itself, is the C sweep's
        assert revad.value_and_grad(grad(fn))(p)[0] == pytest.approx(grad(fn)(p), rel=1e-14)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_every_binary_row_hessian_vs_mpmath(name):
    ref, points = BINARY[name]
    fn = getattr(revad, name)
    for a, b in points:
        if not (0.01 < abs(a) < 50 and 0.01 < abs(b) < 50) or a == b:
            continue
        H = revad.hessian(lambda x: fn(x[0], x[1]))(np.array([a, b]))
        for i, j in [(0, 0), (0, 1), (1, 1)]:
            order = (2 - i - j, i + j) if (i, j) != (0, 1) else (1, 1)
            want = float(mp.diff(ref, (mp.mpf(a), mp.mpf(b)), order))
            if name in ("maximum", "minimum", "fmax", "fmin", "remainder", "fmod"):
                want = 0.0  # piecewise linear away from its kinks
            assert H[i, j] == pytest.approx(want, rel=1e-9, abs=1e-12), (name, a, b, i, j)


def test_second_derivatives_at_removable_singularities_and_ties():
    sinc = lambda a: mp.sin(mp.pi * a) / (mp.pi * a) if a else mp.mpf(1)  # noqa: E731
    for p in [0.0, 1e-8, 1e-3, 0.1, 0.17]:
        want = float(mp.diff(sinc, mp.mpf(p), 2)) if p else -math.pi ** 2 / 3
        assert grad(grad(revad.sinc))(p) == pytest.approx(want, rel=1e-9), p
    # x ** b at b = 0: d/db (b x^(b-1)) = 1/x (hypothesis found the constant branch losing it)
    H = revad.hessian(lambda x: x[0] ** x[1])(np.array([2.0, 0.0]))
    np.testing.assert_allclose(H, [[0.0, 0.5], [0.5, math.log(2.0) ** 2]], rtol=1e-15)
    H = revad.hessian(lambda x: revad.logaddexp(x[0], x[1]))(np.array([0.5, 0.5]))
    np.testing.assert_allclose(H, [[0.25, -0.25], [-0.25, 0.25]], rtol=1e-15)


# -- the op table's second-partial columns (the C route's), against mpmath ------------------------

def _mp_second(ref, point, order):
    """d^2 ref at point (a tuple of floats) in the order given, by mpmath's central differences,
    each coordinate stepped by 1e-40 of its own size (of the other's, or 1, where it is 0: the
    step stays inside the domain and below the other coordinate's scale), with digits enough
    that the differences keep 40 beyond the spread of the magnitudes (1e-300 beside 1)."""
    x = [mp.mpf(p) for p in point]
    nonzero = [abs(p) for p in x if p]
    c = [abs(p) if p else min(nonzero + [mp.mpf(1)]) for p in x]
    spread = max([abs(int(mp.log10(v))) for v in nonzero + [abs(ref(*x)) or mp.mpf(1)]
                  if mp.isfinite(v)] + [0])
    with mp.workdps(200 + 3 * spread):
        x = [mp.mpf(p) for p in point]

        def scaled(*s):
            return ref(*[p + ci * si for p, ci, si in zip(x, c, s, strict=True)])

        d = mp.diff(scaled, (0,) * len(x) if len(x) > 1 else 0, order if len(x) > 1 else order[0],
                    h=mp.mpf("1e-40"))
        for ci, k in zip(c, order, strict=True):
            d /= ci ** k
        return float(d)


# Points at the edges of the rows' domains, with the value the table takes there (the first
# partials' conventions: inf where the first partial is inf, 0 on a constant branch).
SECOND_EDGES = {
    "sqrt": [(0.0, -math.inf)], "cbrt": [(0.0, -math.inf), (-0.0, math.inf)],
    "log": [(0.0, -math.inf)], "arcsin": [(1.0, math.inf), (-1.0, -math.inf)],
    "arccos": [(1.0, -math.inf), (-1.0, math.inf)], "arctanh": [(1.0, math.inf)],
    "arccosh": [(1.0, -math.inf)], "sinc": [(0.0, -math.pi ** 2 / 3)],
    "reciprocal": [(1e-300, math.inf)], "abs": [(0.0, 0.0)], "relu": [(0.0, 0.0)],
    "sign": [(0.0, 0.0)], "floor": [(2.0, 0.0)],
}
SECOND_EDGES_2 = {  # (a, b) -> (d2/da2, d2/dadb, d2/db2)
    "power": [((0.0, 0.0), (0.0, 0.0, 0.0)), ((0.0, 1.0), (0.0, 0.0, 0.0)),
              ((0.0, 2.0), (2.0, 0.0, 0.0)), ((0.0, 0.5), (-math.inf, 0.0, 0.0)),
              ((2.0, 0.0), (0.0, 0.5, math.log(2.0) ** 2)),
              ((-2.0, 0.0), (0.0, -0.5, math.nan)), ((3.0, 1.0), (0.0, 1 + math.log(3.0),
                                                                    3 * math.log(3.0) ** 2))],
    "logaddexp": [((0.5, 0.5), (0.25, -0.25, 0.25)), ((math.inf, math.inf), (0.25, -0.25, 0.25))],
    "logaddexp2": [((0.5, 0.5), tuple(math.log(2.0) * c for c in (0.25, -0.25, 0.25)))],
    "hypot": [((0.0, 0.0), (math.nan,) * 3)], "arctan2": [((0.0, 0.0), (math.nan,) * 3)],
    "maximum": [((1.0, 1.0), (0.0, 0.0, 0.0))], "divide": [((1.0, 1e-300), (0.0, -math.inf,
                                                                          math.inf))],
}


def _same(got, want, rel):
    if math.isnan(want):
        return math.isnan(got)
    if math.isinf(want) or want == 0:
        return got == want
    return got == pytest.approx(want, rel=rel, abs=1e-300)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_every_unary_row_second_partial_column_vs_mpmath(name):
    ref, points = UNARY[name]
    rel = 1e-8 if name in ("arcsin", "arccos") else 1e-12  # (1 - a*a near +-1, as d/da)
    for p in points:
        got = revad._core._row_second(name, p)[1]
        want = _mp_second(ref, (p,), (2,))
        assert _same(got, want, rel), (name, p, got, want)
    for p, want in SECOND_EDGES.get(name, []):
        got = revad._core._row_second(name, p)[1]
        assert _same(got, want, 1e-15) and math.copysign(1, got) == math.copysign(1, want), (
            name, p, got)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_every_binary_row_second_partial_columns_vs_mpmath(name):
    ref, points = BINARY[name]
    for a, b in points:
        got = revad._core._row_second(name, a, b)[1:]
        for k, order in enumerate([(2, 0), (1, 1), (0, 2)]):
            if name in ("maximum", "minimum", "fmax", "fmin", "remainder", "fmod"):
                want = 0.0  # piecewise linear (their first partials piecewise constant)
            elif name == "logaddexp2" and abs(a - b) > 1000:
                want = 0.0  # 2^-2000 in mpmath's differences: below the smallest double
            else:
                want = _mp_second(ref, (a, b), order)
            assert _same(got[k], want, 1e-11), (name, a, b, order, got[k], want)
    for (a, b), want in SECOND_EDGES_2.get(name, []):
        got = revad._core._row_second(name, a, b)[1:]
        for g, w in zip(got, want, strict=True):
            assert _same(g, w, 1e-15), (name, a, b, got, want)


def test_second_partials_series_and_direct_forms_meet():
    # sinc'' takes its series for |pi a| < 0.5 and the closed form above: both sides of the
    # switch against mpmath, where the closed form cancels most
    ref = UNARY["sinc"][0]
    for p in [0.159, 0.15915, 0.1591549, 0.16, 0.17, -0.16, 1e-4, 1e-9]:
        assert _same(revad._core._row_second("sinc", p)[1], _mp_second(ref, (p,), (2,)), 1e-13), p


# -- the C route (one tangent sweep, one second-order sweep) ---------------------------------

def _c_hvp(f, x, v):
    r = revad._second._hessian_products(f, (x,), 0, np.reshape(v, (-1, 1)))
    assert r is not None, "the C route did not run"
    return r[2][:, 0].reshape(np.shape(x))


def _recorded_hvp(f, x, v):
    return revad._second._recorded_hvp(f, 0)((x,), v)


ARRAY_PROGRAMS = {
    # elementwise groups: unary and binary rows, broadcasting, constants on either side,
    # overlapping views (x[1:] * x[:-1]); sums along axes
    "elementwise and sums": lambda x: rnp.sum(
        rnp.tanh(x[:6].reshape(2, 3)) * rnp.exp(x[6:9])[None, :] / (2.0 + rnp.sin(x[9:12]))
        + (x[1:] * x[:-1])[:3] ** 3.0 + 2.0 ** x[:3] - np.log1p(x[2:5] ** 2)),
    "sums along axes": lambda x: rnp.sum(rnp.sum(x.reshape(3, 4) ** 2, axis=0) ** 2)
    + rnp.sum(rnp.sum(rnp.sin(x).reshape(2, 6), axis=1) ** 3),
    "dot of arrays (DOT)": lambda x: rnp.dot(rnp.sin(x[:6]), x[6:]) ** 2,
    "dot with a constant (DOTC)": lambda x: rnp.cos(x @ np.linspace(-1.0, 1.0, 12)) * x[0],
    "matmul group": lambda x: rnp.sum(rnp.tanh(x[:6].reshape(2, 3) @ x[6:].reshape(3, 2)) ** 2)
    + rnp.sum((np.arange(4.0).reshape(2, 2) @ x[:4].reshape(2, 2)) ** 3),
    "scalar entries of an array": lambda x: x[0] * x[1] ** 3 + revad.arctan2(x[2], x[3])
    + revad.hypot(x[4], x[5]) * revad.logaddexp(x[6], x[7]) + x[8] / x[9] + x[10] ** x[11],
}


@pytest.mark.parametrize("name", sorted(ARRAY_PROGRAMS))
def test_c_route_matches_the_recorded_route_and_differences(name):
    f = ARRAY_PROGRAMS[name]
    rng = np.random.default_rng(5)
    x = rng.uniform(0.2, 1.2, 12)
    for v in (rng.normal(size=12), np.eye(12)[3]):
        c = _c_hvp(f, x, v)
        np.testing.assert_allclose(c, _recorded_hvp(f, x, v), rtol=1e-11, atol=1e-12)
        gfd = (revad.grad(f)(x + 1e-6 * v) - revad.grad(f)(x - 1e-6 * v)) / 2e-6
        np.testing.assert_allclose(c, gfd, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(revad.hvp(f)(x, v), c, rtol=0)  # hvp takes it


@pytest.mark.parametrize("work", [0, 10 ** 9])
def test_c_route_matmul_through_blas_and_loops(work):
    from revad import _array
    old = _array._matmul_config(True, work)  # every product through BLAS, or none
    try:
        rng = np.random.default_rng(2)
        M = rng.normal(size=(4, 3))

        def f(x):
            A = x[:12].reshape(4, 3)
            B = x[12:].reshape(3, 4)
            return rnp.sum(rnp.sin(A @ B) * (M @ B)) + rnp.sum((A @ M.T) ** 2)

        x = rng.normal(size=24) * 0.5
        v = rng.normal(size=24)
        c = _c_hvp(f, x, v)
        np.testing.assert_allclose(c, _recorded_hvp(f, x, v), rtol=1e-11, atol=1e-12)
        H = revad.hessian(f)(x)
        np.testing.assert_allclose(H, H.T, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(H @ v, c, rtol=1e-11, atol=1e-12)
    finally:
        _array._matmul_config(*old)


def test_c_route_zero_passes_nothing_on():
    # sqrt at 0 (an infinite partial) reached by a zero adjoint and a zero tangent: no nan
    f = lambda x: revad.sqrt(x[0]) * 0.0 + x[1] ** 2  # noqa: E731
    x = np.array([0.0, 3.0])
    np.testing.assert_array_equal(_c_hvp(f, x, np.array([0.0, 1.0])), [0.0, 2.0])
    np.testing.assert_array_equal(revad.hessian(lambda x: x[1] ** 2 + 0.0 * revad.sqrt(x[0]))(
        np.array([0.0, 1.0]))[1], [0.0, 2.0])


def test_c_route_results_value_gradient_and_shapes():
    f = lambda x: rnp.sum(x ** 3) * x[0, 1]  # noqa: E731
    x = np.array([[1.0, 2.0], [0.5, -1.0]])
    value, g, HV = revad._second._hessian_products(f, (x,), 0, np.eye(4)[:, :2])
    assert value == pytest.approx(float(np.sum(x ** 3) * x[0, 1]), rel=1e-15)
    np.testing.assert_allclose(g, revad.grad(f)(x), rtol=1e-15)
    assert g.shape == (2, 2) and HV.shape == (4, 2)
    np.testing.assert_allclose(HV.T, revad.hessian(f)(x).reshape(4, 4)[:2], rtol=1e-15)
    # a number argument, a 0-d array, f that returns its argument or a constant
    assert revad.hvp(lambda t: t ** 3)(2.0, 0.5) == 6.0
    assert type(revad.hvp(lambda t: t)(2.0, 1.0)) is float
    assert revad.hvp(lambda t: t)(2.0, 1.0) == 0.0 and revad.hvp(lambda t: 5.0)(2.0, 1.0) == 0.0
    h0 = revad.hvp(lambda t: t ** 3)(np.array(2.0), np.array(0.5))
    assert isinstance(h0, np.ndarray) and h0.shape == () and h0 == 6.0
    assert revad._second._hessian_products(lambda t: t, (2.0,), 0, [[1.0]])[1] == 1.0
    np.testing.assert_array_equal(revad.hessian(lambda t: t[0] * 2.0)(np.ones(3)), np.zeros((3, 3)))
    # f returns an element of its argument: the leaves bound above it are not read (rows 0)
    np.testing.assert_array_equal(revad.hvp(lambda t: t[1])(np.ones(3), np.ones(3)), np.zeros(3))
    np.testing.assert_array_equal(revad.hessian(lambda t: t[0])(np.ones(3)), np.zeros((3, 3)))
    # other arguments are constants; argnums picks the variable
    b = np.array([1.0, 2.0])
    h = revad.hvp(lambda a, b: rnp.sum(a ** 2 * b), argnums=1)(np.ones(2), b, np.ones(2))
    np.testing.assert_array_equal(h, [0.0, 0.0])
    h = revad.hvp(lambda a, b: rnp.sum(a ** 2 * b ** 2), argnums=1)(np.ones(2), b, np.ones(2))
    np.testing.assert_array_equal(h, [2.0, 2.0])
    with pytest.raises(ValueError, match="V must have shape"):
        revad._second._hessian_products(f, (x,), 0, np.ones(4))


def test_a_user_primitive_or_a_scipy_function_falls_back_to_the_recorded_route():
    @revad.primitive
    def cube(t):
        return t ** 3

    revad.defvjp(cube, lambda ans, t: lambda g: 3 * t ** 2 * g)
    f = lambda x: rnp.sum(cube(x) * rnp.sin(x))  # noqa: E731
    x = np.array([0.3, -0.8])
    v = np.array([1.0, 2.0])
    assert revad._second._hessian_products(f, (x,), 0, v[:, None]) is None
    d2 = 6 * x * np.sin(x) + 6 * x ** 2 * np.cos(x) - x ** 3 * np.sin(x)
    np.testing.assert_allclose(revad.hvp(f)(x, v), d2 * v, rtol=1e-13)
    np.testing.assert_allclose(revad.hessian(f)(x), np.diag(d2), rtol=1e-13, atol=1e-15)
    ss = pytest.importorskip("scipy.special")
    g = lambda x: rnp.sum(ss.gammaln(x) * x)  # noqa: E731
    x = np.array([1.5, 2.5])
    assert revad._second._hessian_products(g, (x,), 0, np.eye(2)) is None
    want = 2 * ss.polygamma(0, x) + x * ss.polygamma(1, x)
    np.testing.assert_allclose(revad.hessian(g)(x), np.diag(want), rtol=1e-12)
    with pytest.raises(ValueError, match="'call' entry, which has no second-order rule"):
        y = revad.Var(1.0)
        revad._core._hessian_products(cube(y) * 2.0, np.zeros(0, dtype=np.int64), np.zeros((0, 1)))


def test_nested_hvp_keeps_the_recorded_route():
    # grad of an hvp (a third derivative) and an hvp inside an outer derivative
    f = lambda x: rnp.sum(rnp.sin(x) * x[0])  # noqa: E731
    x = np.array([0.4, -0.3])
    v = np.array([1.0, 0.5])
    w = np.array([2.0, -1.0])
    third = revad.grad(lambda x: rnp.sum(revad.hvp(f)(x, v) * w))(x)
    want = fd_grad(lambda x: float(np.dot(revad.hvp(f)(x, v), w)), x)
    np.testing.assert_allclose(third, want, rtol=1e-6, atol=1e-8)
    h = revad.Var(0.7)
    hv = revad.hvp(lambda t: t ** 4)(h, 1.0)
    assert type(hv) is revad.Var and hv.value == pytest.approx(12 * 0.7 ** 2, rel=1e-14)


def test_hessian_records_f_once():
    calls = []

    def f(x):
        calls.append(1)
        return rnp.sum(rnp.exp(x) * x[::-1])

    x = np.array([0.1, 0.2, 0.3, 0.4])
    H = revad.hessian(f)(x)
    assert len(calls) == 1
    e = np.exp(x)
    want = np.diag(e * x[::-1]) + np.diag(e)[::-1] + np.diag(e)[::-1].T
    np.testing.assert_allclose(H, want, rtol=1e-14)


# -- Hessians, HVPs, Jacobians against closed forms ------------------------------------------------

def test_rosenbrock_hessian_scalar_loop_and_vectorised():
    from scipy.optimize import rosen_hess
    x = np.array([1.2, 0.8, -0.5, 1.0, 0.3])

    def loop(x):
        return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2
                   for i in range(len(x) - 1))

    def vec(x):
        return rnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)

    np.testing.assert_allclose(revad.hessian(loop)(x), rosen_hess(x), rtol=1e-14)
    np.testing.assert_allclose(revad.hessian(vec)(x), rosen_hess(x), rtol=1e-14)


def test_neuron_hessian_is_sigma_second_times_outer_product():
    a = np.array([-1.0, -2.0, 1.0])  # the seed's neuron: sigmoid(w . a)
    w = np.array([2.0, -3.0, -3.0])
    s = 1 / (1 + np.exp(-w @ a))
    H = revad.hessian(lambda w: revad.sigmoid(rnp.dot(w, a)))(w)
    np.testing.assert_allclose(H, s * (1 - s) * (1 - 2 * s) * np.outer(a, a), rtol=1e-13)


def test_quadratic_form_and_softmax_cross_entropy():
    rng = np.random.default_rng(3)
    A = rng.normal(size=(4, 4))
    x = rng.normal(size=4)
    np.testing.assert_allclose(revad.hessian(lambda x: x @ A @ x)(x), A + A.T, rtol=1e-14)
    y = np.array([0.0, 1.0, 0.0, 0.0])

    def ce(z):
        return revad.logsumexp(z) - rnp.sum(z * y)

    p = np.exp(x) / np.exp(x).sum()
    np.testing.assert_allclose(revad.hessian(ce)(x), np.diag(p) - np.outer(p, p), rtol=1e-12,
                               atol=1e-15)


def test_jacobians_forward_and_reverse_agree_with_closed_form():
    x = np.array([0.3, -1.2, 2.0])

    def f(x):
        return rnp.stack([x[0] * x[1], rnp.sin(x[2]) * x[0], rnp.exp(x[1])])

    want = np.array([[x[1], x[0], 0.0], [np.sin(x[2]), 0.0, x[0] * np.cos(x[2])],
                     [0.0, np.exp(x[1]), 0.0]])
    for jac in (revad.jacfwd, revad.jacrev, revad.jacobian):
        np.testing.assert_allclose(jac(f)(x), want, rtol=1e-15)


def test_forward_over_reverse_and_autograd_names():
    f = lambda x: rnp.sum(x ** 3 * rnp.sin(x))  # noqa: E731
    x = np.array([0.3, 1.2, -0.5])
    v = np.array([1.0, 0.5, -2.0])
    d2 = 6 * x * np.sin(x) + 6 * x ** 2 * np.cos(x) - x ** 3 * np.sin(x)
    np.testing.assert_allclose(revad.jvp(revad.grad(f), (x,), (v,))[1], d2 * v, rtol=1e-13)
    np.testing.assert_allclose(revad.hvp(f)(x, v), d2 * v, rtol=1e-13)
    np.testing.assert_allclose(revad.hessian_vector_product(f)(x, v), d2 * v, rtol=1e-13)
    hvp_fn, g = revad.make_hvp(f)(x)
    np.testing.assert_allclose(hvp_fn(v), d2 * v, rtol=1e-13)
    np.testing.assert_allclose(g, revad.grad(f)(x), rtol=0)
    value, t = revad.make_jvp(f)(x)(v)
    assert t == pytest.approx(np.dot(revad.grad(f)(x), v), rel=1e-14)


def test_reverse_over_forward():
    f = lambda x: rnp.sum(x ** 3 * rnp.sin(x))  # noqa: E731
    x = np.array([0.3, 1.2, -0.5])
    v = np.array([1.0, 0.5, -2.0])
    d2 = 6 * x * np.sin(x) + 6 * x ** 2 * np.cos(x) - x ** 3 * np.sin(x)
    np.testing.assert_allclose(revad.grad(lambda x: revad.jvp(f, (x,), (v,))[1])(x), d2 * v,
                               rtol=1e-13)
    # a vector-valued f: the gradient of u . (J v) (J v by reverse mode twice, recorded)
    g = lambda x: rnp.sin(x) * x[0]  # noqa: E731
    u = np.array([1.0, -1.0, 2.0])
    got = revad.grad(lambda x: rnp.sum(revad.jvp(g, (x,), (v,))[1] * u))(x)
    want = fd_grad(lambda x: float(np.dot(revad.jvp(g, (x,), (v,))[1], u)), x)
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)


def test_check_grad_order_2_finds_a_wrong_second_derivative():
    x = np.array([0.3, -0.7])
    f = lambda x: rnp.sum(rnp.tanh(x) ** 2 * x[::-1])  # noqa: E731
    assert revad.check_grad(f, x, order=2).max_rel_error < 1e-6

    @revad.primitive
    def cube(t):
        return t ** 3

    # right at first order, but float() takes x's value: its derivative is lost
    revad.defvjp(cube, lambda ans, t: lambda g: 3 * float(t) ** 2 * g)
    assert revad.check_grad(cube, 1.5).max_rel_error < 1e-8
    err, report = revad.check_grad(cube, 1.5, order=2)
    assert err > 0.5 and "second partial" in report
    with pytest.raises(ValueError, match="order is 1 or 2"):
        revad.check_grad(cube, 1.5, order=3)
    with pytest.raises(TypeError, match="numbers and arrays"):
        revad.check_grad(lambda v: v[0] * v[1], ([1.0, 2.0],), order=2)


def test_errors_name_the_shapes():
    f = lambda x: rnp.sum(x ** 2)  # noqa: E731
    with pytest.raises(ValueError, match=r"v has shape \(2,\), but the argument has shape \(3,\)"):
        revad.hvp(f)(np.ones(3), np.ones(2))
    with pytest.raises(TypeError, match="must return a scalar"):
        revad.hessian(lambda x: x * 2.0)(np.ones(3))
    with pytest.raises(TypeError, match="one argnum"):
        revad.hessian(f, argnums=(0, 1))
    with pytest.raises(TypeError, match="needs the arguments and v"):
        revad.hvp(f)()


# -- SciPy's second-order optimisers ---------------------------------------------------------

def test_scipy_newton_cg_trust_krylov_and_trust_exact_converge():
    opt = pytest.importorskip("scipy.optimize")

    def rosen(x):
        return rnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)

    x0 = np.array([1.3, 0.7, 0.8, 1.9, 1.2])
    vg = revad.value_and_grad(rosen)
    for method, mine, theirs, options in [
            ("Newton-CG", {"hessp": revad.hvp(rosen)}, {"hessp": opt.rosen_hess_prod},
             {"xtol": 1e-10}),
            ("trust-krylov", {"hessp": revad.hvp(rosen)}, {"hessp": opt.rosen_hess_prod},
             {"gtol": 1e-10}),
            ("trust-exact", {"hess": revad.hessian(rosen)}, {"hess": opt.rosen_hess},
             {"gtol": 1e-10})]:
        r = opt.minimize(vg, x0, jac=True, method=method, options=options, **mine)
        ref = opt.minimize(opt.rosen, x0, jac=opt.rosen_der, method=method, options=options,
                           **theirs)
        assert r.success, (method, r.message)
        np.testing.assert_allclose(r.x, np.ones(5), atol=1e-7, err_msg=method)
        assert r.nit == ref.nit, method  # the same steps as with SciPy's own derivatives
