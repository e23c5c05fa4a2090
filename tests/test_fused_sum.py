"""A sum over the last axis (or over all) right after an elementwise op is swept with it in one pass
by the functional API's clean sweep (group_sums.h, rv_sums_fused). The user's own backward() keeps
every intermediate adjoint, so it never fuses: it is the reference here, bit for bit, along with
finite differences where the sum's group has other readers."""
import gc

import numpy as np
import pytest

import revad
import revad.testing
from revad import _core

RNG = np.random.default_rng(11)


def _unfused(f, args):
    """The gradients of f at args by Array.backward(): a sweep that keeps intermediate adjoints,
    which rv_sums_fused declines."""
    leaves = [revad.Array(a) for a in args]
    f(*leaves).backward()
    return [a.grad for a in leaves]


def _fused(f, args):
    return list(revad.grad(f, argnums=tuple(range(len(args))))(*args))


def _gmm_like(Q, xc):  # GMM's Lx: an (n, K, d, d) product summed over its last axis
    n, K, d = xc.shape
    Lx = np.sum(np.reshape(Q, (1, K, d, d)) * np.reshape(xc, (n, K, 1, d)), axis=3)
    return np.sum(np.sum(Lx * Lx, axis=2))


CASES = {
    "square, last axis": (lambda x: np.sum(np.sum(x * x, axis=-1) ** 3), [(6, 5)]),
    "exp, all": (lambda x: np.sum(np.exp(x)), [(7, 3)]),
    "tanh times a constant, keepdims": (
        lambda x: np.sum(np.sum(np.tanh(x) * np.arange(4.0), axis=-1, keepdims=True) ** 2),
        [(3, 4)]),
    "1-d": (lambda x: np.sum(np.sin(x)) ** 2, [(9,)]),
    "sum of a reshaped view": (lambda x: np.sum(np.sum((x * x).reshape(-1, 2), axis=1) ** 2),
                               [(4, 6)]),
    "broadcast operands (GMM)": (_gmm_like, [(3, 4, 4), (5, 3, 4)]),
    "subtract, operands both slots": (lambda x, y: np.sum(np.sum(x - y, axis=-1) ** 2),
                                      [(4, 5), (4, 5)]),
    "large enough for threads": (lambda x: np.sum(np.sum(np.exp(x) * x, axis=-1) ** 2),
                                 [(300, 400)]),
    "GMM large enough for threads": (_gmm_like, [(25, 10, 10), (500, 25, 10)]),
}


@pytest.mark.parametrize("split", [None, 1])
@pytest.mark.parametrize("name", list(CASES))
def test_a_fused_sum_gives_the_unfused_gradient_bit_for_bit(name, split):
    f, shapes = CASES[name]
    args = [RNG.normal(size=s) * 0.5 for s in shapes]
    ref = _unfused(f, args)
    old = _core._set_split_min(split)
    try:
        got = _fused(f, args)
    finally:
        _core._set_split_min(old)
    for a, b in zip(got, ref, strict=True):
        np.testing.assert_array_equal(a, b)


def test_readers_of_the_summed_values_after_the_sum_add_their_part():
    # P's adjoints already hold (P * 3)'s part when the sweep reaches the sum
    def f(x, y):
        P = x * y
        S = np.sum(P, axis=-1)
        return np.sum(S * S) + np.sum(P * 3.0) + P[1, 2] * P[0, 0]

    args = [RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4))]
    got = _fused(f, args)
    x, y = args
    S = np.sum(x * y, axis=-1, keepdims=True)
    gP = 2 * S + 3.0 + 0 * x
    gP[1, 2] += x[0, 0] * y[0, 0]
    gP[0, 0] += x[1, 2] * y[1, 2]
    np.testing.assert_allclose(got[0], gP * y, rtol=1e-13)
    np.testing.assert_allclose(got[1], gP * x, rtol=1e-13)
    for a, b in zip(got, _unfused(f, args), strict=True):
        np.testing.assert_array_equal(a, b)


W, V = RNG.normal(size=(4, 2)), RNG.normal(size=4)
READERS = {
    "elementwise": lambda P: np.sum(P * 3.0),
    "sum of a strided view": lambda P: np.sum(P[:, ::3]),
    "matrix product": lambda P: np.sum(np.tanh(P @ W)),
    "dot product": lambda P: P[1] @ V,
    "scalar entries": lambda P: P[1, 2] * P[0, 0] + revad.sin(P[2, 3]),
    "scalar entries past the walk's budget": lambda P: _chain(P[0, 0], 5000) * P[2, 1],
}


def _chain(v, n):
    for _ in range(n):
        v = v * 1.0001
    return v


@pytest.mark.parametrize("name", list(READERS))
def test_every_kind_of_reader_after_the_sum_is_seen(name):
    # the sweep skips reading the op's own adjoints only when no entry above the sum reads its
    # outputs (sweep.h, rv_reads_below): each kind of entry must be seen as a reader
    reader = READERS[name]

    def f(x, y):
        P = np.exp(x) * y
        return np.sum(np.sum(P, axis=-1) ** 2) + reader(P)

    args = [RNG.normal(size=(3, 4)) * 0.5, RNG.normal(size=(3, 4))]
    got = _fused(f, args)
    for a, b in zip(got, _unfused(f, args), strict=True):
        np.testing.assert_array_equal(a, b)
    revad.testing.assert_grad_close(f, tuple(args), argnums=(0, 1))


def test_a_reader_between_the_op_and_the_sum_is_not_lost():
    def f(x):
        P = x * x
        Z = P * 2.0          # recorded between P and its sum: the sum is not fused
        return np.sum(np.sum(P, axis=-1) ** 2) + np.sum(Z)

    x = RNG.normal(size=(4, 3))
    got = _fused(f, [x])[0]
    S = np.sum(x * x, axis=-1, keepdims=True)
    np.testing.assert_allclose(got, (2 * S * 2 * x) + 4 * x, rtol=1e-13)
    revad.testing.assert_grad_close(f, (x,))


@pytest.mark.parametrize("f", [
    lambda x: np.sum(np.sum(x, axis=0) * np.exp(x[0])),                  # first axis: not fused
    lambda x: np.sum(np.sum(np.exp(x), axis=(0, 1))),                     # several axes
    lambda x: np.sum(np.sum(np.exp(x).T, axis=-1) ** 2),                  # a transposed view
    lambda x: np.sum(np.sum(np.exp(x)[:, ::2], axis=-1) ** 2),            # part of the group
])
def test_sums_that_do_not_fuse_stay_right(f):
    x = RNG.normal(size=(3, 4))
    for a, b in zip(_fused(f, [x]), _unfused(f, [x]), strict=True):
        np.testing.assert_array_equal(a, b)
    revad.testing.assert_grad_close(f, (x,))


def test_a_zero_adjoint_passes_nothing_through_an_infinite_partial():
    # sqrt's partial at 0 is inf: a sum whose adjoint is 0 must not turn it into nan, and
    # another reader's adjoint must still pass where it is nonzero
    def f(x):
        P = np.sqrt(x)
        return np.sum(P, axis=-1)[0] * 0.0 + P[0, 1]

    x = np.array([[0.0, 4.0, 1.0]])
    got = _fused(f, [x])[0]
    np.testing.assert_array_equal(got, [[0.0, 0.25, 0.0]])
    np.testing.assert_array_equal(got, _unfused(f, [x])[0])


def test_a_fused_sweep_leaves_every_adjoint_zero_and_the_next_call_right():
    def f(x, y):
        P = np.exp(x) * y
        return np.sum(np.sum(P, axis=-1) ** 2) + np.sum(P[:, ::3])   # P has another reader

    args = [RNG.normal(size=(40, 30)), RNG.normal(size=(40, 30))]
    revad.release_memory()
    first = _fused(f, args)
    gc.collect()
    n, zero = _core._spare_adjoints()
    assert n > 2 * 40 * 30 and zero
    again = _fused(f, args)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    revad.testing.assert_grad_close(f, tuple(args), argnums=(0, 1))
