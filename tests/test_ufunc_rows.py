"""The op table's rows for NumPy's other ufuncs (issue 16): their special values and NaN rules
against NumPy, on Vars and Arrays; the % operator; and a Var met with an ndarray, which gives one
Array group (tests/test_ops.py holds each row's mpmath reference)."""
import math

import numpy as np
import pytest

import revad
from revad import Var

from conftest import fd_array_gradient

NEW_UNARY = ["log2", "log10", "exp2", "arcsinh", "arccosh", "arctanh", "cbrt", "reciprocal",
             "sinc", "fabs", "sign", "floor", "ceil", "rint", "trunc", "deg2rad", "radians",
             "rad2deg", "degrees", "positive", "conjugate"]
NEW_BINARY = ["logaddexp", "logaddexp2", "fmax", "fmin", "remainder", "fmod"]
# Where each is differentiable, away from jumps (values, on a (2, 3) grid).
DOMAIN = {"arccosh": (1.2, 3.0), "arctanh": (-0.8, 0.8), "log2": (0.2, 3.0),
          "log10": (0.2, 3.0), "reciprocal": (0.3, 2.0), "cbrt": (0.2, 3.0)}


def _grid(name, shape=(2, 3)):
    lo, hi = DOMAIN.get(name, (-1.9, 1.9))
    # off the integers and half-integers, where the step functions jump
    return np.linspace(lo, hi, int(np.prod(shape))).reshape(shape) + 0.0123


def _sum(f):
    return lambda a: np.sum(f(a))


@pytest.mark.parametrize("name", NEW_UNARY)
def test_unary_rows_on_arrays_vs_numpy_and_finite_differences(name):
    ufunc = getattr(np, name)
    for shape, view in [((2, 3), lambda x: x), ((), lambda x: x), ((0, 3), lambda x: x),
                        ((4, 6), lambda x: x[::2, ::-2]), ((3, 2), lambda x: x.T)]:
        x = _grid(name, shape)
        a = revad.Array(x)
        y = ufunc(view(a))
        assert type(y) is revad.Array
        np.testing.assert_allclose(y.value, ufunc(view(x)), rtol=1e-15, atol=0)
        g = revad.grad(_sum(lambda u: ufunc(view(u))))(x)
        fd = fd_array_gradient(_sum(lambda u: ufunc(view(u))), x)
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8, err_msg=f"{name} {shape}")
        # forward mode: the tangent of a sum is the sum of the gradient
        if x.size:
            _, t = revad.jvp(_sum(lambda u: ufunc(view(u))), x, np.ones_like(x))
            assert t == pytest.approx(np.sum(g), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("name", NEW_BINARY)
def test_binary_rows_on_broadcast_arrays_vs_numpy_and_finite_differences(name):
    ufunc = getattr(np, name)
    x = _grid(name, (2, 3))
    yv = np.array([0.7, -2.3, 1.9])  # broadcast along the rows; no ties with x, no jumps
    for other in (yv, yv[::-1], yv[None, :]):
        r = ufunc(revad.Array(x), other)
        np.testing.assert_allclose(r.value, ufunc(x, other), rtol=1e-15, atol=0)
        gx, gy = revad.grad(lambda a, b: np.sum(ufunc(a, b)), argnums=(0, 1))(x, other)
        np.testing.assert_allclose(gx, fd_array_gradient(lambda a: np.sum(ufunc(a, other)), x),
                                   rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(gy, fd_array_gradient(lambda b: np.sum(ufunc(x, b)), other),
                                   rtol=1e-6, atol=1e-8)


def test_sinc_is_one_at_zero_with_derivative_zero():
    x = revad.Array(np.array([0.0, -0.0, 1e-300, 0.159, 0.16, 1.0]))
    y = np.sinc(x)
    np.sum(y).backward()
    np.testing.assert_array_equal(y.value[:3], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(y.value, np.sinc(x.value), rtol=1e-15)
    assert x.grad[0] == 0.0 and x.grad[1] == 0.0
    assert x.grad[5] == pytest.approx(-1.0, rel=1e-15)  # (cos(pi) - 0) / 1


def test_rint_rounds_halves_to_even_as_numpy():
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5])
    np.testing.assert_array_equal(np.rint(revad.Array(x)).value, np.rint(x))
    assert [revad.rint(Var(v)).value for v in x] == list(np.rint(x))


@pytest.mark.parametrize("fn", [revad.fmax, revad.fmin])
def test_fmax_fmin_skip_nan_and_give_the_gradient_to_the_number(fn):
    for a, b, ga, gb in [(math.nan, 1.0, 0.0, 1.0), (1.0, math.nan, 1.0, 0.0),
                         (2.0, 2.0, 0.5, 0.5)]:
        x, y = Var(a), Var(b)
        z = fn(x, y)
        z.backward()
        assert z.value == getattr(np, fn.__name__)(a, b)
        assert (x.grad, y.grad) == (ga, gb)
    x = revad.Array(np.array([math.nan, 1.0, 2.0, math.nan]))
    y = revad.Array(np.array([1.0, math.nan, 2.0, math.nan]))
    z = fn(x, y)
    np.sum(z).backward()
    np.testing.assert_array_equal(z.value, getattr(np, fn.__name__)(x.value, y.value))
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 0.5, 1.0])
    np.testing.assert_array_equal(y.grad, [1.0, 0.0, 0.5, 0.0])
    # maximum, by contrast, propagates nan (NumPy's rule for it)
    assert math.isnan(revad.maximum(Var(math.nan), 1.0).value)


@pytest.mark.parametrize("name", ["logaddexp", "logaddexp2"])
def test_logaddexp_of_equal_infinities_is_that_infinity_without_nan(name):
    inf = math.inf
    a = np.array([inf, -inf, inf, -inf, 1.0, 0.0, -inf])
    b = np.array([inf, -inf, 1.0, 1.0, 2.0, 0.0, inf])
    x, y = revad.Array(a), revad.Array(b)
    z = getattr(np, name)(x, y)
    np.sum(z).backward()
    np.testing.assert_array_equal(z.value, getattr(np, name)(a, b))
    s = 1.0 / (1.0 + (math.e if name == "logaddexp" else 2.0))  # e^1 / (e^1 + e^2)
    np.testing.assert_allclose(x.grad, [0.5, 0.5, 1.0, 0.0, s, 0.5, 0.0], rtol=1e-15)
    np.testing.assert_allclose(y.grad, [0.5, 0.5, 0.0, 1.0, 1 - s, 0.5, 1.0], rtol=1e-15)
    u, v = Var(-inf), Var(-inf)
    w = getattr(revad, name)(u, v)
    w.backward()
    assert w.value == -inf and (u.grad, v.grad) == (0.5, 0.5)


PAIRS = [(-7.5, 2.0), (7.5, -2.0), (7.5, 2.0), (-7.5, -2.0), (5.3, 0.7), (-0.0, 3.0), (0.0, -3.0),
         (1.0, 0.1), (1e-300, -3.0), (6.0, 3.0), (-6.0, 3.0), (2.0, math.inf), (2.0, -math.inf)]


def test_percent_on_vars_is_pythons_and_numpys_remainder():
    for a, b in PAIRS:
        want = a % b
        with np.errstate(invalid="ignore"):  # (NumPy flags x % inf, and gives Python's answer)
            assert want == np.remainder(a, b)
        for got in ((Var(a) % b).value, (a % Var(b)).value, (Var(a) % Var(b)).value,
                    revad.remainder(a, b), np.remainder(Var(a), b).value):
            assert got == want and math.copysign(1, got) == math.copysign(1, want), (a, b, got)
        x, y = Var(a), Var(b)
        (x % y).backward()
        assert x.grad == 1.0
        # minus the quotient NumPy pairs with the value: 1 // 0.1 is 9, not floor(1 / 0.1)
        assert y.grad == -np.floor_divide(a, b), (a, b)
    x = Var(1.0)
    assert math.isnan((x % 0.0).value)  # NumPy's answer where Python's float raises


def test_fmod_takes_the_quotient_toward_zero():
    for a, b in PAIRS[:-2]:
        x, y = Var(a), Var(b)
        z = revad.fmod(x, y)
        z.backward()
        assert z.value == np.fmod(a, b)
        assert x.grad == 1.0
        assert y.grad == -((a - np.fmod(a, b)) / b).__round__(), (a, b)


def test_percent_on_arrays():
    a = np.array([[-7.5, 7.5, 5.3], [1.0, -0.0, 6.0]])
    b = np.array([2.0, -2.0, 0.7])
    x = revad.Array(a)
    with np.errstate(invalid="ignore"):  # (3.0 % -0.0 is nan)
        cases = [(x % b, np.remainder(a, b)), (b % x, np.remainder(b, a)),
                 (x % 2.0, np.remainder(a, 2.0)), (3.0 % x, np.remainder(3.0, a)),
                 (x % Var(2.0), np.remainder(a, 2.0))]
    for r, want in cases:
        assert type(r) is revad.Array
        np.testing.assert_array_equal(r.value, want)
    gx, gb = revad.grad(lambda u, v: np.sum(u % v), argnums=(0, 1))(a, b)
    np.testing.assert_array_equal(gx, np.ones_like(a))
    np.testing.assert_array_equal(gb, -np.sum(np.floor_divide(a, b), axis=0))


def test_real_imag_conjugate_of_arrays():
    x = revad.Array(np.array([[1.0, -2.0], [3.0, 0.5]]))
    assert np.real(x) is x
    im = np.imag(x)
    assert type(im) is np.ndarray and im.shape == (2, 2) and not im.any()
    y = np.conjugate(x) * 2.0 + np.positive(x) + np.imag(x)
    np.sum(y).backward()
    np.testing.assert_array_equal(y.value, 3.0 * x.value)
    np.testing.assert_array_equal(x.grad, np.full((2, 2), 3.0))


# ---------------------------------------------------------------------------------------------
# A Var with an ndarray: one Array group, broadcast, never NumPy's object loop

X = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])

VAR_WITH_ARRAY = {
    "v * X": lambda v, X: v * X,
    "X * v": lambda v, X: X * v,
    "X / v": lambda v, X: X / v,
    "v - X": lambda v, X: v - X,
    "X ** v": lambda v, X: np.abs(X) ** v,
    "v % X": lambda v, X: v % X,
    "np.add(v, X)": lambda v, X: np.add(v, X),
    "np.multiply(X, v)": lambda v, X: np.multiply(X, v),
    "np.exp(v) * X": lambda v, X: np.exp(v) * X,
    "np.logaddexp(v, X)": lambda v, X: np.logaddexp(v, X),
    "np.fmax(X, v)": lambda v, X: np.fmax(X, v),
    "np.arctan2(v, X)": lambda v, X: np.arctan2(v, X),
    "np.maximum(X[:, :1], v)": lambda v, X: np.maximum(X[:, :1], v),
}


@pytest.mark.parametrize("case", list(VAR_WITH_ARRAY))
def test_a_var_with_an_ndarray_gives_an_array_group(case):
    f = VAR_WITH_ARRAY[case]
    v = Var(0.6)
    r = f(v, X)
    assert type(r) is revad.Array, type(r)
    np.testing.assert_allclose(r.value, f(0.6, X), rtol=1e-15)
    w = np.linspace(-1.0, 1.0, r.value.size).reshape(r.shape)
    np.sum(r * w).backward()
    h = 1e-6
    fd = (np.sum(f(0.6 + h, X) * w) - np.sum(f(0.6 - h, X) * w)) / (2 * h)
    assert v.grad == pytest.approx(fd, rel=1e-6, abs=1e-8)


def test_a_scalar_of_an_array_parameter_times_data():
    # The autograd idiom that used to give an object array of Vars: np.exp(params[1]) * X.
    def loss(params):
        return np.sum((params[0] + np.exp(params[1]) * X) ** 2)

    p = np.array([0.3, -0.2])
    g = revad.grad(loss)(p)
    fd = [(loss(p + d) - loss(p - d)) / 2e-6 for d in np.eye(2) * 1e-6]
    np.testing.assert_allclose(g, fd, rtol=1e-6)
    params = revad.Array(p)
    assert type(np.exp(params[1]) * X) is revad.Array


def test_a_var_with_an_object_array_of_vars_gives_an_array():
    vs = np.array([Var(1.0), Var(2.0), Var(-0.5)], dtype=object)
    s = Var(3.0)
    r = s * vs
    assert type(r) is revad.Array
    np.testing.assert_array_equal(r.value, [3.0, 6.0, -1.5])
    np.sum(r).backward()
    assert s.grad == 2.5 and [v.grad for v in vs] == [3.0, 3.0, 3.0]


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # (np.matrix)
def test_a_var_with_an_ndarray_refuses_what_arrays_refuse():
    with pytest.raises(TypeError, match="nextafter"):
        np.nextafter(Var(1.0), X)
    with pytest.raises(TypeError, match="out="):
        np.multiply(Var(1.0), X, out=np.empty_like(X))
    with pytest.raises(TypeError, match="matrix"):
        np.multiply(Var(1.0), np.matrix([[1.0, 2.0]]))
    assert type(Var(2.0) * np.array(3.0)) is Var  # a 0-d array is a number
