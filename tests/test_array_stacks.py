"""Stacks of matrices (matmul of more than 2 dimensions) and numpy.einsum on Arrays, against
NumPy's values and central finite differences."""
import numpy as np
import pytest

import revad

RNG = np.random.default_rng(31)


def fd(f, xs, k, h=1e-6):
    g = np.zeros(xs[k].shape)
    for idx in np.ndindex(*g.shape):
        up = [x.copy() for x in xs]
        down = [x.copy() for x in xs]
        step = h * max(1.0, abs(xs[k][idx]))
        up[k][idx] += step
        down[k][idx] -= step
        g[idx] = (f(*up) - f(*down)) / (2 * step)
    return g


def check(f, *xs):
    """f returns an array; the loss is sum(sin(f) * w), so every output element matters."""
    out = np.asarray(f(*xs))
    w = RNG.normal(size=out.shape)
    def loss(*a):
        return np.sum(np.sin(f(*a)) * w)

    value, grads = revad.value_and_grad(loss, argnums=tuple(range(len(xs))))(*xs)
    assert value == pytest.approx(loss(*xs), rel=1e-12, abs=1e-12)
    for k, g in enumerate(grads):
        np.testing.assert_allclose(g, fd(loss, xs, k), rtol=1e-6, atol=1e-8)


A, B = RNG.normal(size=(4, 3, 5)), RNG.normal(size=(4, 5, 2))
C, v = RNG.normal(size=(5, 2)), RNG.normal(size=5)
W = RNG.normal(size=(2, 1, 3, 5))


@pytest.mark.parametrize("f, args", [
    (lambda a, b: a @ b, (A, B)),
    (lambda a, c: a @ c, (A, C)),                      # a stack times one matrix
    (lambda c, b: c.T @ b[:, :, ::-1], (C, B)),       # one matrix times a stack, views
    (lambda a, x: a @ x, (A, v)),                      # a 1-d operand is a column ...
    (lambda x, b: x @ b, (v, B)),                      # ... or a row
    (lambda w, b: np.matmul(w, b), (W, B)),            # broadcast stacks: (2,1) with (4,)
    (lambda a, b: a[::2, ::-1, :] @ b[1::2], (A, B)),  # reversed and strided
], ids=["stack@stack", "stack@matrix", "matrix@stack", "stack@vector", "vector@stack",
        "broadcast", "views"])
def test_matmul_of_stacks(f, args):
    got = f(*[revad.Array(a) for a in args])
    np.testing.assert_allclose(got.value, f(*args), rtol=1e-13)
    check(f, *args)


def test_a_stack_of_products_is_one_group_each_and_a_view():
    saved = revad._core._enter_private()
    try:
        a = revad.Array(A)
        n0 = revad.tape_info(a[0, 0, 0])["n_ops"]
        r = a @ B
        assert revad.tape_info(r[0, 0, 0])["n_ops"] - n0 == r.size   # no gather after the groups
        np.testing.assert_allclose(r.value, A @ B, rtol=1e-14)
    finally:
        revad._core._exit_private(saved)


def test_matmul_errors_name_the_shapes():
    a = revad.Array(A)
    with pytest.raises(ValueError, match=r"\(4, 3, 5\) and \(4, 4, 2\)"):
        a @ np.ones((4, 4, 2))
    with pytest.raises(ValueError, match="do not broadcast"):
        a @ np.ones((3, 5, 2))
    with pytest.raises(ValueError, match="shape-mismatch"):
        np.dot(a, np.ones((4, 4, 2)))                  # N-d dot: a's last axis against b's -2


@pytest.mark.parametrize("spec, shapes", [
    ("ij,jk->ik", [(3, 5), (5, 2)]),
    ("bij,bjk->bik", [(4, 3, 5), (4, 5, 2)]),
    ("bij,bjk->kib", [(4, 3, 5), (4, 5, 2)]),
    ("bij,jk", [(4, 3, 5), (5, 2)]),                 # implicit output: b, i, k
    ("bij->jb", [(4, 3, 5)]),
    ("ij->", [(3, 5)]),
    ("ij", [(3, 5)]),
    ("ji", [(3, 5)]),                                 # implicit: transposed
    ("bij,bij->b", [(4, 3, 5), (4, 3, 5)]),
    ("bij,bij->", [(4, 3, 5), (4, 3, 5)]),
    ("i,i", [(5,), (5,)]),
    ("i,j->ij", [(5,), (3,)]),
    ("bij,j->bi", [(4, 3, 5), (5,)]),
    ("bij,k->bik", [(4, 3, 5), (2,)]),
    ("ij,ij->ij", [(3, 5), (3, 5)]),
    ("ik,jk->ijk", [(3, 1), (2, 4)]),                # broadcast along k
])
def test_einsum(spec, shapes):
    xs = [RNG.normal(size=s) for s in shapes]
    np.testing.assert_allclose(
        np.einsum(spec, *[revad.Array(x) for x in xs]).value, np.einsum(spec, *xs),
        rtol=1e-13, atol=1e-14)
    check(lambda *a: np.einsum(spec, *a), *xs)


def test_einsum_with_a_constant_operand():
    M = RNG.normal(size=(5, 2))
    check(lambda a: np.einsum("bij,jk->bki", a, M), A)


def test_einsum_errors():
    a = revad.Array(A)
    with pytest.raises(ValueError, match="no '...'"):
        np.einsum("...ij->i", a)
    with pytest.raises(ValueError, match="don't match"):
        np.einsum("ii->i", a[0])
    with pytest.raises(ValueError, match="extents 4 and 3"):
        np.einsum("bij,bjk->bik", a, np.ones((3, 5, 2)))
    with pytest.raises(ValueError, match="3 terms"):
        np.einsum("i,i,i", a[0, 0], a[0, 0])


@pytest.mark.parametrize("axes, sa, sb", [
    (2, (3, 4, 5), (4, 5, 3)), (1, (3, 4, 5), (5, 2)), (0, (3, 2), (2,)),
    (([1, 2], [0, 1]), (3, 4, 5), (4, 5, 3)), (([0], [2]), (3, 4, 5), (4, 5, 3)),
    ((1, 0), (3, 4, 5), (4, 5, 3))])
def test_tensordot(axes, sa, sb):
    a, b = RNG.normal(size=sa), RNG.normal(size=sb)
    np.testing.assert_allclose(np.tensordot(revad.Array(a), b, axes).value,
                               np.tensordot(a, b, axes), rtol=1e-13, atol=1e-14)
    check(lambda a, b: np.tensordot(a, b, axes), a, b)
