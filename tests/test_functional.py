"""The functional API (autograd / JAX style): structures, argnums, outputs, errors, threads."""
import math
import re
import threading

import numpy as np
import pytest

import revad
from revad import Var


def rosenbrock(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))


def rosenbrock_grad(x):
    x = np.asarray(x, dtype=float)
    g = np.zeros_like(x)
    g[:-1] = -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    g[1:] += 200 * (x[1:] - x[:-1] ** 2)
    return g


def test_grad_of_a_number_is_a_float():
    g = revad.grad(lambda x: x * x * x)(2.0)
    assert type(g) is float and g == 12.0
    assert revad.grad(lambda x: x * x)(3) == 6.0  # ints are taken as reals


@pytest.mark.parametrize("shape", [(), (5,), (2, 3), (2, 1, 3), (0,)])
def test_grad_of_an_array_has_its_shape(shape):
    rng = np.random.default_rng(1)
    x = rng.normal(size=shape)

    def f(a):
        # An ndarray argument reaches f as a revad.Array of the same shape (no Var objects).
        assert isinstance(a, revad.Array) and a.shape == shape and a.dtype == np.float64
        return np.sum(np.sin(a) * a) + 1.0

    value, g = revad.value_and_grad(f)(x)
    assert type(value) is float and value == pytest.approx(np.sum(np.sin(x) * x) + 1.0, rel=1e-14)
    assert isinstance(g, np.ndarray) and g.shape == shape and g.dtype == np.float64
    np.testing.assert_allclose(g, np.cos(x) * x + np.sin(x), rtol=1e-14)


def test_rosenbrock_list_argument_gives_a_list():
    x = [-1.2, 1.0, -1.2, 1.0, 0.5]
    value, g = revad.value_and_grad(rosenbrock)(x)
    assert type(g) is list and len(g) == 5
    np.testing.assert_allclose(g, rosenbrock_grad(x), rtol=1e-14)
    assert value == pytest.approx(rosenbrock(np.array(x)), rel=1e-14)
    g = revad.grad(rosenbrock)(tuple(x))
    assert type(g) is tuple


def test_nested_structures():
    params = {"w": np.array([[1.0, 2.0], [3.0, 4.0]]), "b": [0.5, (1.5, 2)], "s": 2.0}

    def f(p):
        return np.sum(p["w"] * p["w"]) * p["s"] + p["b"][0] * p["b"][1][0] * p["b"][1][1]

    g = revad.grad(f)(params)
    np.testing.assert_array_equal(g["w"], 2 * params["w"] * 2.0)
    assert g["b"] == [1.5 * 2, (0.5 * 2, 0.5 * 1.5)] and g["s"] == 30.0


def test_argnums_tuple_and_negative():
    def f(a, b, c):
        return a * b + c * c

    assert revad.grad(f, argnums=(0, 2))(2.0, 3.0, 4.0) == (3.0, 8.0)
    assert revad.grad(f, argnums=-1)(2.0, 3.0, 4.0) == 8.0
    assert revad.grad(f, argnums=1)(2.0, 3.0, c=4.0) == 2.0
    with pytest.raises(TypeError, match="argnums"):
        revad.grad(f, argnums=5)(1.0, 2.0, 3.0)
    with pytest.raises(TypeError, match="argnums"):
        revad.grad(f, argnums="0")


def test_repeated_argnums_give_the_same_gradient_twice():
    assert revad.grad(lambda x, y: x * y, argnums=(0, 0, -1))(2.0, 3.0) == (3.0, 3.0, 2.0)


def test_non_differentiated_arguments_pass_through_untouched():
    data = np.array([1.0, 2.0, 3.0])

    def loss(w, x):
        assert x is data
        return np.sum((w * x - 1.0) ** 2)

    g = revad.grad(loss)(0.5, data)
    assert g == pytest.approx(np.sum(2 * (0.5 * data - 1.0) * data))


def test_output_that_ignores_inputs_gives_zeros():
    value, g = revad.value_and_grad(lambda x: 3.0)(np.ones(3))
    assert value == 3.0 and np.array_equal(g, np.zeros(3))
    assert revad.grad(lambda x, y: y * 2.0)(1.0, 5.0) == 0.0


def test_identity_and_returning_an_input():
    assert revad.grad(lambda x: x)(3.0) == 1.0
    np.testing.assert_array_equal(revad.grad(lambda x: x[1])(np.zeros(3)), [0.0, 1.0, 0.0])


def test_zero_dim_array_output_is_a_scalar():
    assert revad.grad(lambda x: np.array(x * 2.0))(1.0) == 2.0


def test_non_scalar_output_is_a_type_error():
    with pytest.raises(TypeError, match="shape \\(3,\\)"):
        revad.grad(lambda x: x * 2.0)(np.ones(3))
    with pytest.raises(TypeError, match="list"):
        revad.grad(lambda x: [x, x])(1.0)


@pytest.mark.parametrize("bad", ["1", None, 1j, np.array([1j]), np.array(["a"]), {1.0}])
def test_bad_arguments_name_their_type(bad):
    with pytest.raises(TypeError, match="argument 0"):
        revad.grad(lambda x: 1.0)(bad)


def test_grad_records_even_inside_no_grad():
    with revad.no_grad():
        assert revad.grad(lambda x: x * x)(3.0) == 6.0
        y = Var(2.0) * 2.0
    assert y.is_leaf


def test_grad_does_not_disturb_an_outer_recording():
    p = Var(2.0)
    outer = p * p
    inner = revad.grad(lambda x: x * x * x)(2.0)
    outer2 = outer * 3.0
    outer2.backward()
    assert inner == 12.0 and p.grad == 12.0


def test_private_tapes_are_released():
    g = revad.grad(lambda x: np.sum(x * x))
    for _ in range(3):
        np.testing.assert_array_equal(g(np.arange(4.0)), 2 * np.arange(4.0))


def test_a_kept_private_tape_is_reused_only_when_nothing_of_its_call_is_alive():
    kept = []
    w = Var(3.0)  # a leaf of the user's, bound to each call's private tape in turn

    def f(x):
        y = x * w
        if len(kept) < 2:
            kept.append(y)
        return y * y

    for k in range(6):
        assert revad.value_and_grad(f)(float(k)) == (9.0 * k * k, 18.0 * k)
    assert w.grad == sum(2.0 * 3.0 * k * k for k in range(6))
    assert [y.value for y in kept] == [0.0, 3.0]  # their tapes were never cleared under them
    assert revad.tape_info(kept[0])["n_ops"] == revad.tape_info(kept[1])["n_ops"] == 4
    with pytest.raises(RuntimeError, match="intermediate values"):
        kept[1].grad  # noqa: B018
    # A call that raised, and one nested inside another, leave the next call right.
    with pytest.raises(ZeroDivisionError):
        revad.grad(lambda x: x / 0.0 if False else 1 / 0)(1.0)
    assert revad.grad(lambda x: x * revad.grad(lambda z: z * z * x.value)(2.0))(3.0) == 12.0
    assert revad.grad(lambda x: x * x)(5.0) == 10.0


def test_ndarray_arguments_of_every_layout_and_dtype():
    base = np.arange(12.0).reshape(3, 4)
    cases = [base, base[:, 1], base[::2, ::-1], base.T, np.arange(5), np.arange(5.0)[::-2],
             np.arange(3.0).astype(">f8"), np.float32([1.5, 2.5]), np.array(2.0), np.ones(0),
             np.array([True, False])]
    for x in cases:
        value, g = revad.value_and_grad(lambda a: np.sum(a * a * 1.5))(x)
        assert value == pytest.approx(np.sum(x.astype(float) ** 2) * 1.5)
        assert g.shape == x.shape and g.dtype == np.float64
        np.testing.assert_array_equal(g, 3.0 * x.astype(float))
    x = np.array([1.0, 2.0])
    g1, g2 = revad.grad(lambda a, b: a[0] * a[1], argnums=(0, 0))(x, 0.0)
    np.testing.assert_array_equal(g1, [2.0, 1.0])
    np.testing.assert_array_equal(g2, [2.0, 1.0])
    assert g1 is not g2
    # The argument's values are read, not kept: the next call sees new ones.
    vg = revad.value_and_grad(lambda a: a[0] * a[1])
    assert vg(x)[0] == 2.0
    x[0] = 4.0
    assert vg(x)[0] == 8.0 and x.tolist() == [4.0, 2.0]


def test_lists_and_tuples_of_numbers_and_of_other_things():
    f = revad.grad(lambda v: v[0] * v[1] * v[2])
    assert f([1.0, 2, np.float32(3.0)]) == [6.0, 3.0, 2.0]
    assert f((1.0, 2.0, True)) == (2.0, 1.0, 2.0)
    g = revad.grad(lambda v: v[0] * v[1][0] * v[2][0])([1.0, [2.0], np.array([3.0])])
    assert g[:2] == [6.0, [3.0]] and g[2].tolist() == [2.0]
    with pytest.raises(TypeError, match="complex"):
        f([1.0, 2.0, 1j])
    assert revad.grad(lambda v: 1.0)([]) == []
    assert revad.grad(lambda v: v[1])([1.0, 2.0]) == [0.0, 1.0]  # an input returned as it is


def test_a_result_from_another_tape_is_refused():
    outside = Var(2.0) * 1.0
    with pytest.raises(ValueError, match="another computation's tape"):
        revad.grad(lambda x: x * outside)(1.0)
    assert revad.grad(lambda x: x * outside.detach())(1.0) == 2.0


def test_four_threads_give_the_serial_answers():
    rng = np.random.default_rng(7)
    inputs = [rng.normal(size=300) for _ in range(8)]

    def f(x):
        return np.sum(np.tanh(x) * x) + rosenbrock(x)

    serial = [revad.value_and_grad(f)(x) for x in inputs]
    results = {}
    errors = []

    def work(k):
        try:
            for _ in range(5):
                for i, x in enumerate(inputs):
                    v, g = revad.value_and_grad(f)(x)
                    results.setdefault((k, i), []).append((v, g))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for (_, i), runs in results.items():
        for v, g in runs:
            assert v == serial[i][0]
            np.testing.assert_array_equal(g, serial[i][1])
    assert len(results) == 32


def test_object_api_in_threads_records_on_each_threads_tape():
    out = {}

    def work(k):
        x = Var(float(k))
        total = 0.0
        for _ in range(200):
            y = x * x * float(k + 1)
            y.backward()
            total = x.grad
        out[k] = total

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == {k: 200 * 2.0 * k * (k + 1) for k in range(4)}


def test_scipy_style_optimizer_usage():
    # value_and_grad plugs into a plain gradient-descent loop with ndarray in and out.
    vg = revad.value_and_grad(rosenbrock)
    x = np.array([-1.2, 1.0])
    for _ in range(2000):
        v, g = vg(x)
        x = x - 1e-3 * g
    assert v < 0.5 and math.isfinite(v)


@pytest.mark.parametrize("shape", [(1,), (1, 1), (1, 1, 1)])
def test_an_output_of_one_element_is_a_scalar_whatever_its_shape(shape):
    # autograd's grad takes any output of size 1 (its vspace size): programs return x.reshape(1)
    x = np.array([0.3, -1.2, 2.0])
    value, g = revad.value_and_grad(lambda x: np.sum(x * x * x).reshape(shape))(x)
    assert value == pytest.approx(np.sum(x ** 3), rel=1e-15)
    np.testing.assert_allclose(g, 3 * x * x, rtol=1e-15)
    assert revad.grad(lambda t: np.array([[t * t]]).reshape(shape))(1.5) == 3.0


@pytest.mark.parametrize("out", [np.zeros(2), revad.Array([1.0, 2.0]), np.zeros((1, 2))])
def test_an_output_of_several_elements_is_refused_with_its_shape(out):
    shape = re.escape(str(out.shape))
    with pytest.raises(TypeError, match=rf"returned an (Array|array) of shape {shape}"):
        revad.grad(lambda x: out + 0.0 * x)(1.0)


# --- jacobian (autograd's) ------------------------------------------------------------------

def _fd_jacobian(f, x, h=1e-6):
    x = np.asarray(x, dtype=float)
    cols = []
    for i in np.ndindex(*x.shape):
        e = np.zeros_like(x)
        e[i] = h
        cols.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * h))
    out_shape = np.shape(f(x))
    return np.moveaxis(np.array(cols), 0, -1).reshape(out_shape + x.shape)


@pytest.mark.parametrize("f, x", [
    (lambda x: np.tanh(x) * x[::-1], np.array([0.3, -1.2, 2.0])),
    (lambda x: np.outer(x, np.sin(x)), np.array([0.5, 1.5])),              # 2-d out
    (lambda x: np.sum(x ** 2, axis=0), np.array([[1.0, 2.0], [3.0, -1.0]])),  # 2-d in
    (lambda x: np.exp(x) * np.ones(3), 0.7),                               # scalar in
    (lambda x: np.sum(x ** 3), np.array([1.0, -2.0])),                     # scalar out
    (lambda x: np.array([x[0] * x[1], np.sin(x[0])]), np.array([0.5, 3.0])),  # np.array of Vars
])
def test_jacobian_against_finite_differences(f, x):
    J = revad.jacobian(f)(x)
    want = _fd_jacobian(f, x)
    assert J.shape == want.shape
    np.testing.assert_allclose(J, want, rtol=1e-6, atol=1e-8)


def test_jacobian_argnum_and_refusals():
    J = revad.jacobian(lambda a, x: a * np.sin(x), 1)(2.0, np.array([0.0, 1.0]))
    np.testing.assert_allclose(J, np.diag(2 * np.cos([0.0, 1.0])), rtol=1e-15)
    np.testing.assert_array_equal(revad.jacobian(lambda x: np.ones(2))(np.zeros(3)),
                                  np.zeros((2, 3)))
    with pytest.raises(TypeError, match="number or an array; got a list"):
        revad.jacobian(lambda x: x[0])([1.0, 2.0])
    with pytest.raises(TypeError, match="returned a tuple"):
        revad.jacobian(lambda x: (x, x))(np.ones(2))
    with pytest.raises(TypeError, match="one argnum"):
        revad.jacobian(lambda x: x, (0, 1))
    with pytest.raises(TypeError, match="out of range"):
        revad.jacobian(lambda x: x, 2)(1.0)
