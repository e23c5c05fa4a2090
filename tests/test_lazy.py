"""Lazy elementwise groups (group_ew.h, rv_ew_lazy): the rows whose partials read only the operands
leave their values unwritten until something reads them, and a sum over their lines computes
them on the fly (rv_sums_forward_lazy) without writing them. Every test starts on a tape whose
slots hold nan from the call before (its buffers are reused), so a value read before it is
written shows; the references are NumPy, the same code with the values written first (bit for
bit), Array.backward() and finite differences."""
import re

import numpy as np
import pytest

import revad
import revad.testing
from revad import _array, _core

RNG = np.random.default_rng(5)


# Every test's tape starts in buffers whose value slots are all nan (conftest.py, nan_slots):
# a value that was never written shows.
pytestmark = pytest.mark.usefixtures("nan_slots")


def test_the_lazy_rows_partials_name_operands_only():
    rows = _core._lazy_rows()
    assert sorted(r[0] for r in rows) == [
        "add", "ceil", "conjugate", "deg2rad", "degrees", "floor", "multiply", "negative",
        "positive", "rad2deg", "radians", "rint", "sign", "square", "subtract", "trunc"]
    for name, *partials in rows:  # (first and second)
        for partial in partials:
            assert not re.search(r"\by\b", partial), (name, partial)  # the output, y


OPS = {
    "multiply": lambda x, y: x * y,
    "add": lambda x, y: x + y,
    "subtract": lambda x, y: x - y,
    "square": lambda x, y: x ** 2,
    "negative": lambda x, y: -x,
    "broadcast multiply": lambda x, y: x[:, None, :] * y[None, :, :],
    "times a constant array": lambda x, y: x * np.arange(1.0, 1.0 + x.shape[-1]),
    "reversed operand": lambda x, y: x[:, ::-1] - y,
}
# lines of 5, of more than 128 (the pairwise halves), and batches of short sums (over 1024)
SHAPES = [(3, 5), (4, 130), (2, 300), (300, 7)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", list(OPS))
def test_a_sum_over_a_lazy_group_leaves_it_unwritten_and_gives_the_same_bits(name, shape):
    op = OPS[name]
    x, y = RNG.normal(size=shape), RNG.normal(size=shape)
    P = op(revad.Array(x), revad.Array(y))
    assert _array._is_lazy(P)
    S = np.sum(P, axis=-1)
    assert _array._is_lazy(P)               # summed from the operands, not written
    total = np.sum(P)                       # over all: one line
    assert _array._is_lazy(P)
    P2 = op(revad.Array(x), revad.Array(y))
    _ = P2.value                            # written first: the ordinary sum
    assert not _array._is_lazy(P2)
    np.testing.assert_array_equal(S.value, np.sum(P2, axis=-1).value)
    np.testing.assert_array_equal(total.value, np.sum(P2).value)
    np.testing.assert_allclose(S.value, np.sum(op(x, y), axis=-1), rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(P.value, op(x, y))   # written when read
    assert not _array._is_lazy(P)


USES = {
    "value": lambda P: P.value,
    "an element": lambda P: P[1, 2].value,
    "a view": lambda P: P[:, 1:].T.value,
    "an operand": lambda P: (P * 2.0).value,
    "a sum over the first axis": lambda P: np.sum(P, axis=0).value,
    "a reshape": lambda P: P.reshape(-1).value,
    "a matrix product": lambda P: (P @ np.ones((P.shape[1], 2))).value,
    "concatenate": lambda P: np.concatenate([P, P]).value,
    "a comparison": lambda P: P > 0.0,
    "item of a reduction": lambda P: float(np.max(P)),
}


@pytest.mark.parametrize("use", list(USES))
def test_every_use_of_a_lazy_array_sees_its_values(use):
    x, y = RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4))
    P = revad.Array(x) * revad.Array(y)
    np.sum(P, axis=-1)                      # a sum first: P stays unwritten
    ref = USES[use](revad.Array(x * y))
    np.testing.assert_array_equal(USES[use](P), ref)


def _gmm_like(Q, xc):
    n, K, d = xc.shape
    Lx = np.sum(np.reshape(Q, (1, K, d, d)) * np.reshape(xc, (n, K, 1, d)), axis=3)
    return np.sum(np.sum(Lx * Lx, axis=2))


FUNCTIONS = {
    "GMM's product": (_gmm_like, [(4, 3, 3), (6, 4, 3)]),
    "Rosenbrock": (lambda x: np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2),
                   [(50,)]),
    "a lazy group used again after its sum": (
        lambda x, y: np.sum(np.sum(x * y, axis=-1) ** 2) + np.sum(np.exp(x * y)), [(3, 4), (3, 4)]),
    "a lazy group no sum reads": (lambda x: np.sum(np.exp(-x) * (x - 1.0)), [(5, 2)]),
    "lazy over lazy": (lambda x, y: np.sum(np.sum((x + y) * (x - y), axis=1) ** 2),
                       [(3, 6), (3, 6)]),
}


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_gradients_through_lazy_groups(name):
    f, shapes = FUNCTIONS[name]
    args = tuple(RNG.normal(size=s) * 0.5 for s in shapes)
    argnums = tuple(range(len(args)))
    value, grads = revad.value_and_grad(f, argnums=argnums)(*args)
    np.testing.assert_allclose(value, f(*args), rtol=1e-12)
    revad.testing.assert_grad_close(f, args, argnums=argnums)
    leaves = [revad.Array(a) for a in args]   # Array.backward(): a sweep that keeps every adjoint
    f(*leaves).backward()
    for g, leaf in zip(grads, leaves, strict=True):
        np.testing.assert_array_equal(g, leaf.grad)


def test_a_lazy_sum_cut_among_threads_gives_the_same_bits():
    Q, xc = RNG.normal(size=(25, 10, 10)), RNG.normal(size=(500, 25, 10))
    old = _core._set_split_min(None)        # one thread
    try:
        ref = revad.value_and_grad(_gmm_like, argnums=(0, 1))(Q, xc)
        _core._set_split_min(1)             # every group cut, however small
        got = revad.value_and_grad(_gmm_like, argnums=(0, 1))(Q, xc)
    finally:
        _core._set_split_min(old)
    assert got[0] == ref[0]
    for a, b in zip(got[1], ref[1], strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(ref[0], _gmm_like(Q, xc), rtol=1e-12)


def test_what_reads_a_whole_tape_writes_every_lazy_group_first():
    x = revad.Var(0.5)
    P = revad.Array([1.0, 2.0, 3.0]) * x
    y = np.sum(P, keepdims=True)[0]         # P stays unwritten (y is a Var of the sum)
    assert _array._is_lazy(P)
    cols = _core._graph_columns(y)
    assert not np.isnan(cols["val"]).any()
    assert "0.5, 1.0, 1.5, 3.0]" in str(cols["val"].tolist())   # P, then its sum
    np.testing.assert_array_equal(P.value, [0.5, 1.0, 1.5])


def test_a_jvp_through_a_lazy_group():
    def f(x):
        return np.sum(np.sum(x * x, axis=-1) * (x[:, 0] - 2.0))

    x, v = RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4))
    value, tangent = revad.jvp(f, x, v)
    np.testing.assert_allclose(value, f(x), rtol=1e-13)
    np.testing.assert_allclose(tangent, np.sum(revad.grad(f)(x) * v), rtol=1e-12)
