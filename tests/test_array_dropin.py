"""NumPy code differentiates unchanged: autograd-style examples with only the import changed,
scipy.optimize with revad's value_and_grad, elementwise_grad, and revad.numpy."""
import numpy as onp
import pytest

import revad
import revad.numpy as np


def fd_grad(f, x, h=1e-6):
    g = onp.zeros_like(x)
    for i in onp.ndindex(*x.shape):
        e = onp.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


# autograd's README example, with `import revad.numpy as np` in place of autograd's.
def sigmoid(x):
    return 0.5 * (np.tanh(x / 2.0) + 1)


def logistic_predictions(weights, inputs):
    return sigmoid(np.dot(inputs, weights))


INPUTS = onp.array([[0.52, 1.12, 0.77], [0.88, -1.08, 0.15], [0.52, 0.06, -1.30],
                    [0.74, -2.49, 1.39]])
TARGETS = onp.array([True, True, False, True])


def training_loss(weights):
    preds = logistic_predictions(weights, INPUTS)
    label_probabilities = preds * TARGETS + (1 - preds) * (1 - TARGETS)
    return -np.sum(np.log(label_probabilities))


def test_autograd_readme_logistic_regression():
    w = onp.array([0.0, 0.0, 0.0])
    g = revad.grad(training_loss)(w)
    onp.testing.assert_allclose(g, fd_grad(training_loss, w), rtol=1e-6)
    for _ in range(100):
        w = w - revad.grad(training_loss)(w) * 0.01
    assert training_loss(w) < training_loss(onp.zeros(3))


def test_two_layer_mlp_with_params_in_a_dict():
    rng = onp.random.default_rng(0)
    X = rng.normal(size=(16, 5))
    Y = onp.eye(3)[rng.integers(0, 3, 16)]
    params = {"W1": rng.normal(size=(5, 4)), "b1": onp.zeros(4),
              "W2": rng.normal(size=(4, 3)), "b2": onp.zeros(3)}

    def loss(p):
        h = np.tanh(X @ p["W1"] + p["b1"])
        o = h @ p["W2"] + p["b2"]
        return np.mean(revad.logsumexp(o, axis=1) - np.sum(o * Y, axis=1))

    def loss_np(p):
        from scipy.special import logsumexp
        h = onp.tanh(X @ p["W1"] + p["b1"])
        o = h @ p["W2"] + p["b2"]
        return onp.mean(logsumexp(o, axis=1) - onp.sum(o * Y, axis=1))

    value, g = revad.value_and_grad(loss)(params)
    assert value == pytest.approx(loss_np(params), rel=1e-13)
    for k in params:
        def part(v, k=k):
            return loss_np({**params, k: v})
        onp.testing.assert_allclose(g[k], fd_grad(part, params[k]), rtol=1e-5, atol=1e-8)


def rosenbrock(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def test_scipy_minimize_rosenbrock_100d():
    from scipy.optimize import minimize, rosen_der
    x0 = onp.full(100, -1.0)
    x0[::2] = -1.2
    v, g = revad.value_and_grad(rosenbrock)(x0)
    onp.testing.assert_allclose(g, rosen_der(x0), rtol=1e-13)
    # ftol: L-BFGS-B's default stops on the relative reduction of f (2.2e-9), wherever that
    # falls; rounding-level differences in the gradient then decide whether x is within 1e-5.
    res = minimize(revad.value_and_grad(rosenbrock), x0, jac=True, method="L-BFGS-B",
                   options={"maxiter": 5000, "gtol": 1e-10, "ftol": 1e-15})
    assert res.success and onp.allclose(res.x, 1.0, atol=1e-5)


def test_elementwise_grad():
    x = onp.linspace(-2, 2, 9)
    onp.testing.assert_allclose(revad.elementwise_grad(np.tanh)(x), 1 - onp.tanh(x) ** 2,
                                rtol=1e-14)
    onp.testing.assert_allclose(revad.elementwise_grad(lambda v: v ** 3 + np.sin(v))(x),
                                3 * x ** 2 + onp.cos(x), rtol=1e-14)


def test_several_array_arguments_with_argnums():
    A = onp.arange(6.0).reshape(2, 3)
    b = onp.array([1.0, -1.0])

    def f(x, A, b):
        r = A @ x - b
        return np.dot(r, r)

    x = onp.array([0.5, 0.1, -0.3])
    gx, gA, gb = revad.grad(f, argnums=(0, 1, 2))(x, A, b)
    r = A @ x - b
    onp.testing.assert_allclose(gx, 2 * A.T @ r)
    onp.testing.assert_allclose(gA, 2 * onp.outer(r, x))
    onp.testing.assert_allclose(gb, -2 * r)


def test_revad_numpy_is_numpy_plus_array():
    assert np.exp is onp.exp and np.linalg.matrix_rank is onp.linalg.matrix_rank and np.pi == onp.pi
    a = np.array([revad.Var(1.0), revad.Var(2.0)])
    assert isinstance(a, revad.Array) and a.shape == (2,)
    assert isinstance(np.array([1.0, 2.0]), onp.ndarray)


def test_scalar_style_code_still_works_on_arrays():
    # code that loops over an array element by element (the scalar core's style)
    def loop_rosenbrock(x):
        return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))
    x = onp.array([-1.2, 1.0, 0.5, 0.3])
    onp.testing.assert_allclose(revad.grad(loop_rosenbrock)(x), revad.grad(rosenbrock)(x),
                                rtol=1e-14)


@pytest.mark.parametrize("data, kw", [
    ([1, 2, 3], {}), ([[1, 2], [3, 4]], {}), ([1, 2], {"dtype": float}),
    ([1.5, 2.5], {"dtype": onp.float32}), ([True, False], {}), (3, {}), ([1, 2], {"ndmin": 3}),
    (onp.arange(6).reshape(2, 3), {"order": "F"}), ([], {})])
def test_array_of_plain_data_is_numpys(data, kw):
    # autograd programs index and count with np.array of ints: the dtype must stay NumPy's
    for fn, ref in ((np.array, onp.array), (np.asarray, onp.asarray)):
        kw = {k: v for k, v in kw.items() if fn is np.array or k in ("dtype", "order")}
        got, want = fn(data, **kw), ref(data, **kw)
        assert type(got) is onp.ndarray and got.dtype == want.dtype
        onp.testing.assert_array_equal(got, want)


def test_array_of_vars_is_recorded_and_refuses_another_dtype():
    x = revad.Var(2.0)
    a = np.array([[x, 1], [3, x * x]], ndmin=3)
    assert isinstance(a, revad.Array) and a.shape == (1, 2, 2)
    y = np.sum(a * onp.arange(4.0).reshape(2, 2))
    y.backward()
    assert x.grad == 12.0  # d/dx (0 x + 1 + 2 * 3 + 3 x^2) at x = 2
    assert np.array([x, x], dtype=float).shape == (2,)
    with pytest.raises(TypeError, match=r"dtype=int64\) of Vars or Arrays would drop"):
        np.array([x, x], dtype=int)
    b = revad.Array([1.0, 2.0])
    assert np.asarray(b) is b and np.array(b) is b
    assert isinstance(np.asarray([b, b]), revad.Array)
