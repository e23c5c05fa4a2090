"""The functional API's clean sweep (sweep.h, rv_backward): every adjoint is zeroed as it is read,
so the next call's sweep needs no pass to zero its buffer first. A slot missed would add a stale
adjoint into the next call's gradient: these tests look at the buffer itself and at gradients of
calls that follow each other."""
import gc

import numpy as np
import pytest

import revad
import revad.testing
from revad import _core

RNG = np.random.default_rng(7)


def _every_kind_of_entry(x, W):
    """Elementwise groups (dense, sparse, broadcast, overlapping views), sums, products by BLAS
    and by loops, comparisons, gathers and scalar entries, all on one tape."""
    h = np.tanh(W @ x)                        # product group (BLAS: W is 64 x 64)
    s = x[1:] * x[:-1] + x[::2].sum()         # overlapping operands, a strided view, a sum
    small = x[:3].reshape(1, 3) @ np.ones((3, 2))  # a small product: the group's own loops
    b = np.maximum(h, 0.1) * (x > 0)          # a comparison, a constant mask
    v = x[0] * x[5] + revad.sin(x[7])         # scalar entries on array slots
    return np.sum(s) + np.sum(b * b) + np.sum(small) + v + np.sum(x[[3, 1, 3]] ** 3)


def test_a_clean_sweep_leaves_every_adjoint_zero():
    x, W = RNG.normal(size=64), RNG.normal(size=(64, 64))
    revad.release_memory()
    revad.grad(_every_kind_of_entry)(x, W)  # the first call: a tape of fresh buffers
    gc.collect()
    n, zero = _core._spare_adjoints()
    assert n > 64 * 5 and zero


def test_calls_that_follow_each_other_give_the_first_calls_gradient():
    x, W = RNG.normal(size=64), RNG.normal(size=(64, 64))
    revad.release_memory()
    first = revad.grad(_every_kind_of_entry, argnums=(0, 1))(x, W)
    for _ in range(3):
        revad.grad(lambda z: np.sum(np.exp(z) * z[::-1]))(x)  # a different tape in between
        again = revad.grad(_every_kind_of_entry, argnums=(0, 1))(x, W)
        for a, b in zip(first, again, strict=True):
            np.testing.assert_array_equal(a, b)
    revad.testing.assert_grad_close(_every_kind_of_entry, (x, W), argnums=0)


def test_a_users_tape_keeps_its_adjoints_and_the_next_call_is_right():
    x0 = RNG.normal(size=100)
    x = revad.Array(x0)
    y = x * x
    z = np.sum(y * 3.0)
    z.backward()
    np.testing.assert_allclose(y.grad, np.full(100, 3.0))   # kept: not a clean sweep
    np.testing.assert_allclose(x.grad, 6.0 * x0)
    del x, y, z
    gc.collect()
    g = revad.grad(lambda v: np.sum(v * v * v))(x0)   # on the spare of that dirty buffer
    np.testing.assert_allclose(g, 3.0 * x0 ** 2)


def test_the_intermediate_gradients_of_a_functional_call_are_not_kept():
    kept = []

    def f(x):
        y = x * 2.0
        kept.append(y)
        return np.sum(y * y)

    revad.grad(f)(np.ones(5))
    with pytest.raises(RuntimeError, match="intermediate values of a grad/value_and_grad"):
        kept[0].grad  # noqa: B018
    kept.clear()

    def g(x):
        y = x[0] * 2.0
        kept.append(y)
        return y * y

    revad.grad(g)(np.ones(5))
    with pytest.raises(RuntimeError, match="not kept"):
        kept[0].grad  # noqa: B018


@pytest.mark.parametrize("f, df", [
    (lambda x: np.sum(x[1:] * x[:-1]), lambda x: np.r_[x[1:], 0] + np.r_[0, x[:-1]]),
    (lambda x: np.sum((x[:-1] - x[1:]) ** 2),
     lambda x: np.r_[2 * (x[:-1] - x[1:]), 0] - np.r_[0, 2 * (x[:-1] - x[1:])]),
    (lambda x: np.sum(x * x), lambda x: 2 * x),
    (lambda x: np.sum(x[::2] * x[1::2]), lambda x: np.ravel(np.c_[x[1::2], x[::2]])),
    (lambda x: np.sum(x[2:] / x[:-2]),
     lambda x: np.r_[-x[2:] / x[:-2] ** 2, 0, 0] + np.r_[0, 0, 1 / x[:-2]]),
])
@pytest.mark.parametrize("n", [6, 1000])
def test_operands_that_overlap_get_every_contribution(f, df, n):
    # Dense (vectorised) backward loops are only for operands no two elements of which share
    # an adjoint; x[1:] * x[:-1] shares one between its two operands, a line apart.
    x = RNG.uniform(0.5, 2.0, size=n)
    for _ in range(2):  # the second call runs on the first's clean buffer
        np.testing.assert_allclose(revad.grad(f)(x), df(x), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("n", [7, 50_000])
def test_an_argument_the_result_does_not_depend_on_gets_zeros(n):
    # A functional leaf's gradient is np.empty until the sweep writes it whole: one the sweep
    # never reached (here after memory of sevens was freed for np.empty to hand out) is zeros.
    for _ in range(5):
        junk = np.full(n, 7.0)
        del junk
        gx, gy = revad.grad(lambda x, y: np.sum(y * y), argnums=(0, 1))(np.ones(n), np.ones(3))
        assert gx.shape == (n,) and not gx.any()
        np.testing.assert_array_equal(gy, [2.0, 2.0, 2.0])
        junk = np.full(n, 7.0)
        del junk
        assert not revad.grad(lambda x: 3.0 * revad.Var(1.0))(np.ones(n)).any()


def test_a_functional_leaf_swept_twice_adds_the_second_sweep():
    # f sweeps its own result once, the call sweeps it again: the first sweep sets the np.empty
    # gradient, the second adds to it (as leaves' gradients add up over backward calls).
    def f(x):
        y = np.sum(x * x)
        y.backward()
        return y

    x0 = RNG.normal(size=10)
    np.testing.assert_allclose(revad.grad(f)(x0), 4 * x0, rtol=1e-15)
