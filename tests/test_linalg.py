"""numpy.linalg on revad Arrays end to end: values equal NumPy's, revad.grad equals central
differences, over single matrices and stacks, with the keyword arguments NumPy takes."""
import numpy as np
import pytest

import revad

from conftest import fd_array_gradient

RNG = np.random.default_rng(16)


def check(f, *xs, rtol=1e-5, atol=1e-7):
    """grad of sum(f(*xs) * w) for random weights w: the value NumPy's, the gradient finite
    differences' (f written with NumPy's names runs on ndarrays and on revad Arrays)."""
    xs = [np.asarray(x, dtype=np.float64) for x in xs]
    out = np.asarray(f(*xs), dtype=np.float64)
    w = RNG.normal(size=out.shape)

    def loss(*a):
        return np.sum(f(*a) * w)

    value, grads = revad.value_and_grad(loss, argnums=tuple(range(len(xs))))(*xs)
    assert value == pytest.approx(float(np.sum(out * w)), rel=1e-10, abs=1e-12)
    for k, (x, g) in enumerate(zip(xs, grads, strict=True)):
        assert isinstance(g, np.ndarray) and g.shape == x.shape
        ref = fd_array_gradient(lambda v: float(loss(*xs[:k], v, *xs[k + 1:])), x)
        np.testing.assert_allclose(g, ref, rtol=rtol, atol=atol)
    return value, grads


# ---------------------------------------------------------------------------------------------
# norm: every order NumPy takes

VECTOR_ORDS = [None, 2, 1, np.inf, -np.inf, 3, 0.5, -1, -2, 2.5]


@pytest.mark.parametrize("ord", VECTOR_ORDS)
@pytest.mark.parametrize("shape,axis", [((5,), None), ((3, 4), 1), ((3, 4), 0), ((2, 3, 4), -1),
                                        ((2, 3, 4), (1,))])
@pytest.mark.parametrize("keepdims", [False, True])
def test_vector_norms(ord, shape, axis, keepdims):
    x = RNG.uniform(0.5, 2.0, size=shape) * RNG.choice([-1, 1], size=shape)
    check(lambda a: np.linalg.norm(a, ord=ord, axis=axis, keepdims=keepdims), x)


def test_vector_norm_order_zero_counts_nonzeros():
    x = np.array([0.0, 1.5, -2.0, 0.0])
    y = np.linalg.norm(revad.Array(x), ord=0)
    assert float(y) == 2.0
    assert revad.grad(lambda a: np.linalg.norm(a, 0) + np.sum(a))(x).tolist() == [1.0] * 4


MATRIX_ORDS = [None, "fro", 1, -1, np.inf, -np.inf]


@pytest.mark.parametrize("ord", MATRIX_ORDS)
@pytest.mark.parametrize("shape,axis", [((3, 4), None), ((4, 3), (1, 0)), ((2, 3, 4), (1, 2)),
                                        ((3, 2, 4), (0, -1))])
@pytest.mark.parametrize("keepdims", [False, True])
def test_matrix_norms(ord, shape, axis, keepdims):
    x = RNG.uniform(0.5, 2.0, size=shape) * RNG.choice([-1, 1], size=shape)
    check(lambda a: np.linalg.norm(a, ord=ord, axis=axis, keepdims=keepdims), x)


@pytest.mark.parametrize("ord,axis,match", [
    ("fro", 0, "invalid norm order 'fro' for vectors"),
    (3, (0, 1), "invalid norm order 3 for matrices"),
    (None, (0, 1, 2), "improper number of axes"),
    (2, (1, 1), "repeated axis"),
])
def test_norm_bad_orders(ord, axis, match):
    x = revad.Array(RNG.normal(size=(2, 3, 4)))
    with pytest.raises(ValueError, match=match):
        np.linalg.norm(x, ord=ord, axis=axis)
