"""What users build on primitives: revad.scipy.integrate.odeint (adjoint method) and
revad.misc.fixed_points.fixed_point (implicit gradient), against finite differences and closed
forms."""
import numpy as onp
import pytest

import revad
import revad.numpy as np
from revad.misc.fixed_points import fixed_point


def fd(f, args, k, h=1e-6):
    x = onp.asarray(args[k], dtype=float)
    out = onp.zeros(x.shape)
    for i in onp.ndindex(*x.shape):
        e = onp.zeros(x.shape)
        e[i] = h
        up, down = list(args), list(args)
        up[k], down[k] = x + e, x - e
        out[i] = (f(*up) - f(*down)) / (2 * h)
    return out


def lotka_volterra(y, t, a, b):
    return np.array([a * y[0] - b * y[0] * y[1], -y[1] + 0.5 * b * y[0] * y[1]])


def test_odeint_gradients_in_every_argument():
    odeint = pytest.importorskip("revad.scipy.integrate").odeint
    w = onp.arange(1.0, 9.0).reshape(4, 2)

    def loss(y0, t, a, b):
        yt = odeint(lotka_volterra, y0, t, (a, b), rtol=1e-11, atol=1e-11)
        return np.sum(yt ** 2 * w)

    args = [onp.array([1.0, 0.5]), onp.array([0.0, 0.3, 0.7, 1.2]), onp.array(0.8),
            onp.array(1.1)]
    grads = revad.grad(loss, argnums=(0, 1, 2, 3))(*args)
    for k in range(4):
        onp.testing.assert_allclose(grads[k], fd(loss, args, k), rtol=2e-6, atol=1e-6)


def test_odeint_value_is_scipys_and_closed_form_gradient():
    odeint = pytest.importorskip("revad.scipy.integrate").odeint
    import scipy.integrate

    t = onp.linspace(0.0, 2.0, 5)
    plain = odeint(lambda y, t, k: -k * y, onp.array([2.0]), t, (0.7,))
    onp.testing.assert_array_equal(plain, scipy.integrate.odeint(lambda y, t, k: -k * y,
                                                                 onp.array([2.0]), t, (0.7,)))

    def total(y0, k):  # sum_i y0 exp(-k t_i)
        return np.sum(odeint(lambda y, t, k: -k * y, y0, t, (k,), rtol=1e-12, atol=1e-12))

    gy, gk = revad.grad(total, argnums=(0, 1))(onp.array([2.0]), 0.7)
    onp.testing.assert_allclose(gy, [onp.exp(-0.7 * t).sum()], rtol=1e-8)
    assert gk == pytest.approx(-(2.0 * t * onp.exp(-0.7 * t)).sum(), rel=1e-8)


def test_odeint_errors():
    odeint = pytest.importorskip("revad.scipy.integrate").odeint
    with pytest.raises(TypeError, match="full_output"):
        revad.grad(lambda k: odeint(lambda y, t: -k * y, [1.0], [0.0, 1.0], full_output=True))(1.0)
    with pytest.raises(TypeError, match="no forward mode"):
        revad.jvp(lambda y0: np.sum(odeint(lambda y, t: -y, y0, onp.array([0.0, 1.0]))),
                  onp.array([1.0]), onp.array([1.0]))


def test_fixed_point_scalar_and_vector():
    def sqrt(a):
        return fixed_point(lambda a: lambda x: 0.5 * (x + a / x), a, 1.0,
                           lambda x, y: abs(x - y), 1e-13)

    for a in (0.5, 2.0, 9.0):
        assert revad.grad(sqrt)(a) == pytest.approx(0.5 / onp.sqrt(a), rel=1e-10)

    # x = M x + tanh(a): x* = (I - M)^-1 tanh(a), a contraction for ||M|| < 1.
    m = onp.array([[0.2, -0.1, 0.0], [0.3, 0.1, 0.1], [0.0, 0.2, -0.3]])

    def loss(a):
        x = fixed_point(lambda a: lambda x: m @ x + np.tanh(a), a, onp.zeros(3),
                        lambda x, y: onp.max(onp.abs(x - y)), 1e-14)
        return np.sum(x * onp.array([1.0, -2.0, 0.5]))

    a0 = onp.array([0.3, -0.4, 1.2])
    expect = (1 - onp.tanh(a0) ** 2) * (onp.linalg.solve((onp.eye(3) - m).T,
                                                         onp.array([1.0, -2.0, 0.5])))
    onp.testing.assert_allclose(revad.grad(loss)(a0), expect, rtol=1e-10)


def test_fixed_point_that_does_not_converge_raises():
    with pytest.raises(RuntimeError, match="did not converge"):
        fixed_point(lambda a: lambda x: x + a, 1.0, 0.0, lambda x, y: abs(x - y), 1e-12)


def test_module_examples_run():
    import doctest

    import revad.misc
    import revad.misc.fixed_points

    modules = [revad.misc, revad.misc.fixed_points]
    try:
        import revad.scipy.integrate
        modules.append(revad.scipy.integrate)
    except ImportError:  # without SciPy
        pass
    for m in modules:
        result = doctest.testmod(m)
        assert result.failed == 0 and result.attempted > 0, m.__name__
