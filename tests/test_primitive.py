"""User primitives (revad.primitive, defvjp, defjvp, custom_vjp) and make_vjp / vjp: the values
are the function's own, the gradients equal central finite differences or closed forms, and
every misuse raises a clear error (never a wrong number, a hang or a crash)."""
import collections
import threading

import numpy as onp
import pytest

import revad
import revad.numpy as np
from revad import _array

from conftest import fd_array_gradient as fd_grad


@revad.primitive
def cube(x):
    return x ** 3


revad.defvjp(cube, lambda ans, x: lambda g: 3 * x ** 2 * g)
revad.defjvp(cube, lambda t, ans, x: 3 * x ** 2 * t)


@revad.primitive
def scaled_sin(x, a):
    """a * sin(x): differentiable in both."""
    return a * onp.sin(x)


revad.defvjp(scaled_sin, lambda ans, x, a: lambda g: g * a * onp.cos(x),
             lambda ans, x, a: lambda g: g * onp.sin(x))
revad.defjvp(scaled_sin, lambda t, ans, x, a: t * a * onp.cos(x),
             lambda t, ans, x, a: t * onp.sin(x))

Eig = collections.namedtuple("Eig", "values vectors")


@revad.primitive
def sym_eig(a):
    w, v = onp.linalg.eigh(a)
    return Eig(w, v)


def _sym_eig_vjp(ans, a):
    w, v = ans

    def vjp(g):
        gw, gv = g
        f = w[None, :] - w[:, None]
        onp.fill_diagonal(f, onp.inf)
        inner = v @ (onp.diag(gw) + (v.T @ gv) / f) @ v.T
        return (inner + inner.T) / 2
    return vjp


revad.defvjp(sym_eig, _sym_eig_vjp)


def test_plain_values_call_the_function_itself():
    assert cube(2.0) == 8.0
    r = scaled_sin(onp.array([0.0, 1.0]), 2.0)
    assert type(r) is onp.ndarray
    onp.testing.assert_array_equal(r, 2.0 * onp.sin([0.0, 1.0]))


def test_scalar_gradient_and_value():
    v, g = revad.value_and_grad(lambda x: cube(x) * 2.0 + x)(1.5)
    assert v == 2 * 1.5 ** 3 + 1.5
    assert g == pytest.approx(6 * 1.5 ** 2 + 1.0, rel=1e-15)


def test_array_inputs_outputs_and_two_arguments():
    x0, a0 = onp.array([0.3, -1.2, 2.0]), onp.array([1.5, 0.5, -2.0])

    def f(x, a):
        return np.sum(scaled_sin(x, a) ** 2)

    gx, ga = revad.grad(f, argnums=(0, 1))(x0, a0)
    onp.testing.assert_allclose(gx, fd_grad(lambda x: f(x, a0), x0), rtol=1e-7)
    onp.testing.assert_allclose(ga, fd_grad(lambda a: f(x0, a), a0), rtol=1e-7)


def test_constant_argument_gets_no_vjp_call():
    calls = []

    @revad.primitive
    def f(x, a):
        return x * a

    revad.defvjp(f, lambda ans, x, a: lambda g: calls.append(0) or g * a, None)
    assert revad.grad(lambda x: np.sum(f(x, onp.array([2.0, 3.0]))))(
        onp.array([1.0, 1.0])).tolist() == [2.0, 3.0]
    assert calls == [0]


def test_strided_reversed_and_broadcast_inputs():
    x0 = onp.arange(12.0).reshape(3, 4) / 10

    def f(x):
        views = [x[::2, ::-1], x.T, np.broadcast_to(x[0], (2, 4)), x[1, 1]]
        return sum(np.sum(cube(v) * (k + 1)) for k, v in enumerate(views))

    onp.testing.assert_allclose(revad.grad(f)(x0), fd_grad(f, x0), rtol=1e-7, atol=1e-9)


def test_tuple_result_namedtuple_and_unused_output():
    rng = onp.random.default_rng(0)
    m = rng.normal(size=(4, 4))
    a0 = m + m.T + onp.diag([1.0, 3.0, 5.0, 7.0])

    def f(a):
        r = sym_eig((a + a.T) / 2)
        assert type(r) is Eig and type(r.values) is type(a)  # Arrays when recording
        return np.sum(r.values ** 2) + r.vectors[0, 0] ** 2

    def only_values(a):
        return np.sum(sym_eig((a + a.T) / 2).values * onp.arange(4.0))

    for fn in (f, only_values):
        onp.testing.assert_allclose(revad.grad(fn)(a0), fd_grad(fn, a0), rtol=1e-6, atol=1e-8)


def test_integer_leaves_of_a_result_stay_constants():
    @revad.primitive
    def with_count(x):
        return onp.sum(x), int(x.size)

    revad.defvjp(with_count, lambda ans, x: lambda g: onp.full(x.shape, g[0]))
    x0 = onp.array([1.0, 2.0])
    assert revad.grad(lambda x: with_count(x)[0] * with_count(x)[1])(x0).tolist() == [2.0, 2.0]


def test_var_backward_path_and_accumulation():
    x = revad.Var(2.0)
    y = cube(x) * 3.0 + cube(x)
    y.backward()
    assert x.grad == 4 * 3 * 4.0
    a = revad.Array([1.0, 2.0])
    s = np.sum(cube(a))
    s.backward()
    assert a.grad.tolist() == [3.0, 12.0]


def test_under_no_grad_results_are_constants():
    a = revad.Array([1.0, 2.0])
    with revad.no_grad():
        r = cube(a)
    assert type(r) is revad.Array and r.value.tolist() == [1.0, 8.0]


def test_forward_mode_through_defjvp():
    x0, a0 = onp.array([0.3, -1.2]), onp.array([1.5, 0.5])
    tx, ta = onp.array([1.0, -2.0]), onp.array([0.5, 0.25])

    def f(x, a):
        return np.sum(scaled_sin(x, a) * x)

    _, d = revad.jvp(f, (x0, a0), (tx, ta))
    gx, ga = revad.grad(f, argnums=(0, 1))(x0, a0)
    assert d == pytest.approx(gx @ tx + ga @ ta, rel=1e-13)


def test_missing_vjp_and_jvp_are_errors():
    @revad.primitive
    def f(x):
        return x * 2.0

    with pytest.raises(TypeError, match="no VJP of f for its argument 0"):
        revad.grad(f)(1.0)
    with pytest.raises(TypeError, match="no JVP of f for its argument 0"):
        revad.jvp(f, 1.0, 1.0)
    assert revad.grad(lambda x: x * 3.0)(1.0) == 3.0  # the thread's state survived


def test_vjp_of_wrong_shape_and_broadcast_cotangent():
    @revad.primitive
    def f(x):
        return x * 2.0

    revad.defvjp(f, lambda ans, x: lambda g: onp.ones(5))
    with pytest.raises(ValueError, match=r"returned shape \(5,\), but it must have shape \(3,\)"):
        revad.grad(lambda x: np.sum(f(x)))(onp.zeros(3))

    @revad.primitive
    def h(x):
        return x * 2.0

    revad.defvjp(h, lambda ans, x: lambda g: onp.full((4, 2, 3), 0.5))
    g = revad.grad(lambda x: np.sum(h(x)))(onp.zeros((2, 1)))
    onp.testing.assert_array_equal(g, onp.full((2, 1), 6.0))  # summed over 4 and 3


def test_errors_in_the_vjp_propagate_and_leave_revad_usable():
    @revad.primitive
    def f(x):
        return x

    def bad(ans, x):
        def vjp(g):
            raise ZeroDivisionError("boom")
        return vjp

    revad.defvjp(f, bad)
    for _ in range(3):
        with pytest.raises(ZeroDivisionError, match="boom"):
            revad.grad(lambda x: np.sum(f(x) * 2.0))(onp.ones(4))
    assert revad.grad(lambda x: np.sum(x * 2.0))(onp.ones(2)).tolist() == [2.0, 2.0]


def test_a_vjp_may_differentiate_and_record_itself():
    @revad.primitive
    def f(x):
        return onp.sin(x)

    def vjp_maker(ans, x):
        return lambda g: g * revad.grad(lambda y: np.sum(np.sin(y)))(x)

    revad.defvjp(f, vjp_maker)
    x0 = onp.linspace(0, 1, 5)
    onp.testing.assert_allclose(revad.grad(lambda x: np.sum(f(x) * x))(x0),
                                onp.cos(x0) * x0 + onp.sin(x0), rtol=1e-15)


def test_threads_each_get_their_own_gradients():
    xs = [onp.linspace(-1, 1, 50) * (k + 1) for k in range(4)]
    out = [None] * 4

    def work(k):
        for _ in range(20):
            out[k] = revad.grad(lambda x: np.sum(cube(x) * np.sin(x)))(xs[k])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        x = xs[k]
        onp.testing.assert_allclose(out[k], 3 * x ** 2 * onp.sin(x) + x ** 3 * onp.cos(x),
                                    rtol=1e-13)


def test_misuse_messages():
    with pytest.raises(TypeError, match="takes a function"):
        revad.primitive(3)
    with pytest.raises(TypeError, match="made by revad.primitive"):
        revad.defvjp(lambda x: x, lambda ans, x: lambda g: g)
    with pytest.raises(ValueError, match="2 functions for argnums"):
        revad.defvjp(cube, None, None, argnums=(0,))
    with pytest.raises(TypeError, match="keyword argument 'a'"):
        revad.grad(lambda x: scaled_sin(1.0, a=x))(1.0)
    with pytest.raises(TypeError, match="holds Vars or Arrays in a list"):
        revad.grad(lambda x: cube([x, x]))(1.0)

    @revad.primitive
    def to_complex(x):
        return x * 1j

    with pytest.raises(TypeError, match="complex"):
        revad.grad(lambda x: to_complex(x))(1.0)
    a = revad.Var(1.0)
    b = a * 2.0
    b.backward()  # b's tape is finished: c records on a new one
    c = revad.Var(2.0) * 3.0
    with pytest.raises(ValueError, match="different tapes"):
        scaled_sin(c, b)


def test_custom_vjp():
    @revad.custom_vjp
    def f(x, y):
        return onp.sin(x) * y

    def fwd(x, y):
        return f(x, y), (onp.cos(x), onp.sin(x), y)

    def bwd(res, g):
        cos_x, sin_x, y = res
        return cos_x * g * y, sin_x * g

    f.defvjp(fwd, bwd)
    gx, gy = revad.grad(lambda x, y: np.sum(f(x, y)), argnums=(0, 1))(
        onp.array([0.5, 1.0]), 2.0)
    onp.testing.assert_allclose(gx, onp.cos([0.5, 1.0]) * 2.0, rtol=1e-15)
    assert gy == pytest.approx(onp.sin([0.5, 1.0]).sum(), rel=1e-15)
    f.defvjp(fwd, lambda res, g: (g,))
    with pytest.raises(ValueError, match="tuple of 2 cotangents"):
        revad.grad(lambda x: np.sum(f(x, 2.0)))(onp.ones(2))

    @revad.custom_vjp
    def h(x):
        return x

    with pytest.raises(TypeError, match="has no VJP yet"):
        revad.grad(h)(1.0)
    with pytest.raises(TypeError, match="forward mode"):
        f.defvjp(fwd, bwd)
        revad.jvp(lambda x: f(x, 1.0), 1.0, 1.0)


def test_make_vjp_and_vjp():
    a = onp.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.0]])

    def f(x):
        return np.tanh(a @ x)

    x0 = onp.array([0.2, -0.4])
    vjp_fn, ans = revad.make_vjp(f)(x0)
    onp.testing.assert_allclose(ans, onp.tanh(a @ x0), rtol=1e-15)
    jac = (1 - onp.tanh(a @ x0) ** 2)[:, None] * a
    for g in onp.eye(3):
        onp.testing.assert_allclose(vjp_fn(g), g @ jac, rtol=1e-14)

    out, fn = revad.vjp(lambda x, y: (x * y, np.sum(x)), onp.array([1.0, 2.0]), 3.0)
    assert out[0].tolist() == [3.0, 6.0] and out[1] == 3.0
    gx, gy = fn((onp.array([1.0, 0.0]), 2.0))
    assert gx.tolist() == [5.0, 2.0] and gy == 1.0
    with pytest.raises(ValueError, match=r"cotangent of the result\[0\] has shape \(3,\)"):
        fn((onp.ones(3), 1.0))


def test_graph_of_a_call_entry_draws():
    x = revad.Var(2.0)
    y = cube(x) + 1.0
    assert "call" in revad.to_dot(y)


def test_large_output_and_empty_input():
    x0 = onp.linspace(-1, 1, 100_000)
    g = revad.grad(lambda x: np.sum(cube(x)))(x0)
    onp.testing.assert_allclose(g, 3 * x0 ** 2, rtol=1e-15)
    assert revad.grad(lambda x: np.sum(cube(x)) + 1.0)(onp.zeros(0)).shape == (0,)
    assert _array._nests_nodes([revad.Var(1.0)])


def test_make_vjp_of_numpy_array_of_vars():
    """NumPy's own np.array of recorded Vars (an object array) is stacked onto the tape: the
    value is a float array and the VJP its true one, not zero (as when the loose Vars were read
    as floats)."""
    f = lambda x: onp.array([x[0] * x[1], onp.sin(x[0])])  # noqa: E731
    x = onp.array([0.5, 3.0])
    vjp, ans = revad.make_vjp(f)(x)
    assert ans.dtype == onp.float64
    onp.testing.assert_allclose(ans, [1.5, onp.sin(0.5)], rtol=1e-15)
    onp.testing.assert_allclose(vjp(onp.array([1.0, 2.0])), [3.0 + 2 * onp.cos(0.5), 0.5],
                                rtol=1e-15)
    out, vjp_fn = revad.vjp(lambda x, y: (onp.array([x * y, y]), x), 2.0, 3.0)
    onp.testing.assert_allclose(out[0], [6.0, 3.0])
    assert vjp_fn((onp.array([1.0, 1.0]), 1.0)) == (4.0, 3.0)
