"""Matrix-product groups (ops.h, MM): ``A @ W`` as one group of m*q output slots whose backward
is one BLAS call per operand (or the group's C loops, for small products).

Each product is checked three ways: the reference path (one DOTC/DOT entry per output), the
group with its C loops, and the group through NumPy's BLAS; all against finite differences.
"""
import numpy as np
import pytest

import revad
from revad import _array

from test_array_ops import check, fd

RNG = np.random.default_rng(77)

PATHS = {"entries": (False, None), "loops": (True, 1 << 62), "blas": (True, 0)}


@pytest.fixture(params=sorted(PATHS))
def path(request):
    groups, work = PATHS[request.param]
    old = _array._matmul_config(groups, work)
    yield request.param
    _array._matmul_config(*old)


def grads_on_every_path(f, *xs):
    """value_and_grad of f on each path; asserts they agree (to rounding), returns one."""
    out = []
    for groups, work in PATHS.values():
        old = _array._matmul_config(groups, work)
        try:
            out.append(revad.value_and_grad(f, argnums=tuple(range(len(xs))))(*xs))
        finally:
            _array._matmul_config(*old)
    for value, grads in out[1:]:
        assert value == pytest.approx(out[0][0], rel=1e-12, abs=1e-12)
        for g, g0 in zip(grads, out[0][1]):
            np.testing.assert_allclose(g, g0, rtol=1e-12, atol=1e-12)
    return out[0]


SHAPES = [((2, 3), (3, 4)), ((1, 5), (5, 3)), ((4, 5), (5, 1)), ((5, 1), (1, 4)), ((3, 2), (2,)),
          ((3,), (3, 4)), ((0, 3), (3, 2)), ((2, 0), (0, 3)), ((3, 2), (2, 0)), ((7, 6), (6, 5))]


@pytest.mark.parametrize("sa, sb", SHAPES, ids=str)
@pytest.mark.parametrize("which", ["array@const", "const@array", "array@array"])
def test_products_against_finite_differences(path, sa, sb, which):
    a, b = RNG.normal(size=sa), RNG.normal(size=sb)
    if which == "array@const":
        check(lambda x: x @ b, a)
    elif which == "const@array":
        check(lambda y: a @ y, b)
    else:
        check(lambda x, y: x @ y, a, b)


def test_non_contiguous_operands(path):
    A = RNG.normal(size=(6, 8))
    check(lambda X: X.T @ A[:, ::2], RNG.normal(size=(6, 5)))          # transposed Array
    check(lambda X: X[::2, 1:] @ X[1::2, :4].T, RNG.normal(size=(6, 5)))  # strided, gathered
    check(lambda X: A[::-1, ::3] @ X[::-1], RNG.normal(size=(3, 4)))   # negative strides
    check(lambda X: X @ X.T + X.T[:2] @ X[:, :1], RNG.normal(size=(2, 3)))  # one operand twice
    Af = np.asfortranarray(RNG.normal(size=(5, 4)))
    check(lambda X: Af @ X + (X.T @ Af.T).T, RNG.normal(size=(4, 3)))


def test_paths_agree_on_a_network():
    X = RNG.normal(size=(9, 12))
    W1, W2 = RNG.normal(size=(12, 7)), RNG.normal(size=(7, 3))

    def loss(W1, W2):
        h = np.tanh(X @ W1)
        z = h @ W2
        return np.sum(z * z) + np.sum(h.T @ h)

    value, (g1, g2) = grads_on_every_path(loss, W1, W2)
    np.testing.assert_allclose(g1, fd(loss, [W1, W2], 0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(g2, fd(loss, [W1, W2], 1), rtol=1e-5, atol=1e-7)


def test_a_group_is_one_entry_per_output_and_its_outputs_are_contiguous():
    A = RNG.normal(size=(50, 20))
    w = revad.Array(RNG.normal(size=20))
    y = A @ w
    info = revad.tape_info(y[0])
    assert info["n_ops"] == 20 + 50  # the leaves, the outputs
    z = w.reshape(4, 5).T @ w.reshape(4, 5)
    assert z.shape == (5, 5) and np.allclose(z.value, w.value.reshape(4, 5).T @ w.value.reshape(4, 5))


def test_group_outputs_used_many_times(path):
    X = RNG.normal(size=(4, 3))
    W = revad.Array(RNG.normal(size=(3, 2)))
    Y = X @ W
    loss = np.sum(Y * Y) + np.sum(Y[0] * Y[3]) + Y[1, 1]
    loss.backward()
    Wv = W.value
    Yv = X @ Wv
    G = 2 * Yv
    G[0] += Yv[3]
    G[3] += Yv[0]
    G[1, 1] += 1.0
    np.testing.assert_allclose(W.grad, X.T @ G, rtol=1e-12)


def test_jvp_through_a_group_equals_grad(path):
    X = RNG.normal(size=(5, 4))
    w0, v0 = RNG.normal(size=(4, 3)), RNG.normal(size=(3,))

    def f(W, v):
        h = np.tanh(X @ W)
        return np.sum((h @ v) ** 2) + np.sum(W.T @ W)

    g = revad.grad(f, argnums=(0, 1))(w0, v0)
    for i in range(w0.size):
        e = np.zeros(w0.size)
        e[i] = 1.0
        _, d = revad.jvp(f, (w0, v0), (e.reshape(w0.shape), np.zeros(3)))
        assert d == pytest.approx(g[0].ravel()[i], rel=1e-10, abs=1e-12)
    t = RNG.normal(size=3)
    _, d = revad.jvp(f, (w0, v0), (np.zeros(w0.shape), t))
    assert d == pytest.approx(float(g[1] @ t), rel=1e-10)


def test_the_constant_is_kept_as_it_was_recorded(path):
    A = RNG.normal(size=(6, 5))
    A0 = A.copy()
    W0 = RNG.normal(size=(5, 2))

    def f(W):
        y = A @ W
        A[:] = 7.0  # after recording: the gradient still uses A0
        return np.sum(y * y)

    g = revad.grad(f)(W0)
    np.testing.assert_allclose(g, 2 * A0.T @ (A0 @ W0), rtol=1e-12)


def test_under_no_grad_and_shape_errors():
    W = revad.Array(RNG.normal(size=(3, 2)))
    with revad.no_grad():
        y = np.ones((4, 3)) @ W
    assert y.is_leaf and y.shape == (4, 2)
    with pytest.raises(ValueError, match=r"\(4, 2\)"):
        np.ones((4, 2)) @ W


def test_a_large_constant_reused_across_calls_is_still_a_snapshot():
    # Large writable matrices are snapshotted once and the snapshot reused while their bytes are
    # unchanged; any change, even of one element, between calls or after recording, is seen.
    import gc
    A = RNG.normal(size=(400, 400))  # 1.25 MB: above the snapshot threshold
    W0 = RNG.normal(size=(400, 2))

    def f(W):
        return np.sum((A @ W) ** 2)

    def expected():
        return 2 * A.T @ (A @ W0)

    g1 = revad.grad(f)(W0)
    np.testing.assert_allclose(g1, expected(), rtol=1e-10)
    snap = _array._snapshots[id(A)][1]
    np.testing.assert_array_equal(revad.grad(f)(W0), g1)
    assert _array._snapshots[id(A)][1] is snap  # reused
    A[123, 45] += 1.0
    np.testing.assert_allclose(revad.grad(f)(W0), expected(), rtol=1e-10)
    assert _array._snapshots[id(A)][1] is not snap and snap[123, 45] != A[123, 45]

    A0 = A.copy()

    def h(W):
        y = A @ W
        A[7, 7] = 1e6          # after recording, in place: the tape's snapshot is unchanged
        A[:] = A0
        A[:] *= 3.0
        return np.sum(y * y)

    np.testing.assert_allclose(revad.grad(h)(W0), 2 * A0.T @ (A0 @ W0), rtol=1e-10)
    A[:] = A0
    np.testing.assert_allclose(revad.grad(h)(W0), 2 * A0.T @ (A0 @ W0), rtol=1e-10)

    # The snapshot goes with its matrix.
    n = len(_array._snapshots)
    del A, A0
    gc.collect()
    assert len(_array._snapshots) == n - 1


def test_a_snapshot_is_not_shared_with_another_matrix_of_the_same_id():
    W0 = RNG.normal(size=(300, 1))
    for k in range(3):  # fresh matrices, likely at recycled ids
        A = np.full((600, 300), float(k))
        g = revad.grad(lambda W: np.sum(A @ W))(W0)
        np.testing.assert_allclose(g, np.full((300, 1), 600.0 * k))
        del A


def test_a_change_in_a_late_block_of_a_large_constant_is_seen():
    # The snapshot check of a constant left operand runs block of rows by block of rows along
    # with the product; a difference in the last block must still make a new snapshot.
    A = RNG.normal(size=(3000, 200))  # 4.8 MB: three blocks
    W0 = RNG.normal(size=(200, 3))
    f = revad.value_and_grad(lambda W: np.sum(np.tanh(A @ W)))
    for row in (2999, 0, 1500, None):
        if row is not None:
            A[row, 17] *= -2.0
        value, g = f(W0)
        assert value == pytest.approx(np.sum(np.tanh(A @ W0)), rel=1e-12)
        np.testing.assert_allclose(g, A.T @ (1 - np.tanh(A @ W0) ** 2), rtol=1e-10)


def test_a_graph_through_block_entries_draws():
    W = revad.Array(RNG.normal(size=(3, 2)))
    Y = np.ones((2, 3)) @ W
    dot = revad.to_dot(Y[1, 1] * Y[0, 0])  # the group's last slot and a placeholder
    assert dot.count("matmul") == 2
