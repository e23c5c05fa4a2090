"""Elementwise groups: one tape entry per array op (group_ew.h, EW), read by every sweep.

An array op records its n values on n slots but only one entry, at its last slot; the other
slots are placeholders. These tests pin what that layout must not change: gradients equal to
the scalar path's (zero adjoints included), sweeps seeded at any output of a group, aliased and
broadcast operands, constants copied or referenced, comparisons recorded, drawing.
"""
import numpy as np
import pytest

import revad

RNG = np.random.default_rng(2026)


def scalar_grad(f, x):
    """The same function on a list of scalar Vars: the reference the groups must reproduce."""
    xs = [revad.Var(float(v)) for v in np.ravel(x)]
    y = f(np.array(xs, dtype=object).reshape(np.shape(x)))
    y.backward()
    return np.array([v.grad for v in xs]).reshape(np.shape(x))


def on_private_tape(fn):
    saved = revad._core._enter_private()
    try:
        return fn()
    finally:
        revad._core._exit_private(saved)


# -- one entry per op ---------------------------------------------------------------------------

def test_an_array_op_is_one_group_of_n_slots():
    def record():
        a = revad.Array(RNG.normal(size=1000))
        n0 = revad.tape_info(a[0])["n_ops"]
        b = np.exp(a) * 2.0 + a
        return n0, revad.tape_info(b[0])["n_ops"], revad._core._graph_columns(b[999])
    n0, n1, cols = on_private_tape(record)
    assert n1 - n0 == 3 * 1000                      # three ops: 1000 slots each
    kinds = [cols["ops"][c][0] for c in cols["op"][n0:]]
    assert kinds.count("elementwise") == 3          # ... but one entry each
    assert kinds.count("group") == 3 * 999


@pytest.mark.parametrize("k", [0, 3, 5])
def test_a_sweep_seeded_at_any_output_of_a_group(k):
    # The seed may sit on a placeholder below the slot that carries the group: the sweep must
    # start at the group, not at the seed (a lost gradient would be silently zero).
    x = RNG.normal(size=6)
    A = RNG.normal(size=(6, 6))
    g = revad.grad(lambda x: np.exp(x)[k])(x)
    np.testing.assert_allclose(g, np.where(np.arange(6) == k, np.exp(x), 0.0), rtol=1e-15)
    g = revad.grad(lambda x: (A @ x)[k])(x)
    np.testing.assert_allclose(g, A[k], rtol=1e-15)
    a = revad.Array(x)
    y = np.sin(a)[k]
    y.backward()
    np.testing.assert_allclose(a.grad, np.where(np.arange(6) == k, np.cos(x), 0.0), rtol=1e-15)


@pytest.mark.parametrize("k", [0, 2, 3])
def test_a_sweep_seeded_at_any_output_of_a_sum_group(k):
    X = RNG.normal(size=(4, 3, 2))
    g = revad.grad(lambda X: np.sum(X, axis=(1, 2))[k])(X)
    np.testing.assert_array_equal(g, (np.arange(4) == k)[:, None, None] * np.ones((4, 3, 2)))
    g = revad.grad(lambda X: np.sum(X[:, ::-1] ** 2, axis=1)[k, 1])(X)
    ref = np.zeros_like(X)
    ref[k, :, 1] = 2 * X[k, :, 1]
    np.testing.assert_array_equal(g, ref)
    V = RNG.normal(size=X.shape)
    _, t = revad.jvp(lambda X: np.sum(np.sin(X), axis=0)[k % 3, 1], (X,), (V,))
    assert t == pytest.approx(np.sum(np.cos(X[:, k % 3, 1]) * V[:, k % 3, 1]), rel=1e-14)


def test_a_sum_along_axes_is_one_group():
    def record():
        a = revad.Array(RNG.normal(size=(50, 40)))
        n0 = revad.tape_info(a[0, 0])["n_ops"]
        cols = revad._core._graph_columns(np.sum(a, axis=1)[49])
        return [cols["ops"][c] for c in cols["op"][n0:]]
    kinds = on_private_tape(record)
    assert kinds == [("group", "block")] * 49 + [("sum", "block")]  # one carrier, 49 placeholders


@pytest.mark.parametrize("k", [0, 2])
def test_jvp_seeded_at_any_output_of_a_group(k):
    x, v = RNG.normal(size=3), RNG.normal(size=3)
    A = RNG.normal(size=(3, 3))
    _, t = revad.jvp(lambda x: np.tanh(x)[k], (x,), (v,))
    assert t == pytest.approx((1 - np.tanh(x[k]) ** 2) * v[k], rel=1e-14)
    _, t = revad.jvp(lambda x: (A @ x)[k], (x,), (v,))
    assert t == pytest.approx(A[k] @ v, rel=1e-14)


# -- the scalar path's gradients, exactly ---------------------------------------------------------

@pytest.mark.parametrize("f", [
    lambda x: (x * x).sum(),
    lambda x: (x[::-1] * x + x / (1.5 + x * x)).sum(),
    lambda x: (x[1:] * x[:-1] - np.tanh(x[:-1]) ** 3).sum(),
    lambda x: (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum(),
    lambda x: (np.maximum(x, 0.1) * np.minimum(x[::-1], -0.2) + np.hypot(x, 2.0)).sum(),
], ids=["square", "reversed", "shifted", "rosenbrock", "max-min-hypot"])
def test_groups_give_the_scalar_paths_gradients(f):
    x = RNG.normal(size=7)
    g = revad.grad(lambda x: f(x))(x)
    np.testing.assert_array_max_ulp(g, scalar_grad(lambda v: f(v), x), maxulp=4)


def test_a_zero_adjoint_passes_nothing_down_as_on_scalars():
    # sqrt'(0) is inf; an output whose adjoint is 0 passes nothing on, so no 0 * inf = nan.
    x = np.array([0.0, 4.0, 0.0, 9.0])
    w = np.array([0.0, 1.0, 0.0, 2.0])
    def f(v):
        return (np.sqrt(v) * w).sum()

    g = revad.grad(f)(x)
    np.testing.assert_array_equal(g, [0.0, 0.25, 0.0, 2.0 / 6.0])
    np.testing.assert_array_equal(g, scalar_grad(f, x))


def test_broadcast_operands_sum_their_gradients():
    X, v, u = RNG.normal(size=(4, 5)), RNG.normal(size=4), RNG.normal(size=5)
    def f(X, v, u):
        return np.sum(np.exp(X * v[:, None] + u) * 0.5)

    gX, gv, gu = revad.grad(f, argnums=(0, 1, 2))(X, v, u)
    E = 0.5 * np.exp(X * v[:, None] + u)
    np.testing.assert_allclose(gX, E * v[:, None], rtol=1e-14)
    np.testing.assert_allclose(gv, (E * X).sum(axis=1), rtol=1e-13)
    np.testing.assert_allclose(gu, E.sum(axis=0), rtol=1e-13)


def test_unit_and_mergeable_dimensions_collapse_without_changing_results():
    x = RNG.normal(size=(2, 1, 3, 4))
    c = RNG.normal(size=(1, 1, 3, 1))
    def f(x):
        return np.sum(np.sin(x.transpose(0, 1, 3, 2)[:, :, ::-1, :] * c.transpose(0, 1, 3, 2)) ** 2)

    got = revad.grad(f)(x)
    xs = np.transpose(x, (0, 1, 3, 2))[:, :, ::-1, :]
    ct = c.transpose(0, 1, 3, 2)
    ref = 2 * np.sin(xs * ct) * np.cos(xs * ct) * ct
    back = np.zeros_like(xs)
    back[:, :, ::-1, :] = ref
    np.testing.assert_allclose(got, back.transpose(0, 1, 3, 2), rtol=1e-13)


def test_empty_and_zero_dimensional_ops():
    g = revad.grad(lambda x: np.sum(np.exp(x[:0]) * 3.0) + np.sum(x))(np.ones(3))
    np.testing.assert_array_equal(g, [1.0, 1.0, 1.0])
    g = revad.grad(lambda x: (np.exp(x.sum()) * np.ones(()) * 2.0))(np.zeros(2))
    np.testing.assert_array_equal(g, [2.0, 2.0])


# -- constants ---------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [3, 1000])  # the constant pool, and a kept array
def test_a_writable_constant_is_copied_when_recorded(n):
    x, c = RNG.normal(size=n), RNG.normal(size=n)
    keep = c.copy()
    a = revad.Array(x)
    y = np.sum(np.sin(a * c))
    c[:] = 7.0                                   # after recording, before backward
    y.backward()
    np.testing.assert_allclose(a.grad, np.cos(x * keep) * keep, rtol=1e-15)


def test_a_read_only_constant_is_referenced_not_copied():
    c = RNG.normal(size=10_000)
    c.setflags(write=False)
    w = c.copy()                                 # writable: copied

    def kept(const):
        def record():
            a = revad.Array(np.ones(10_000))
            return revad.tape_info((a * const)[0])["constant_nbytes"], revad._core._current_refs()
        return on_private_tape(record)
    (nw, _), (nc, refs) = kept(w), kept(c)
    assert nw == nc == 8 * 10_000
    assert any(r is c for r in refs)             # the array itself ...
    assert not any(r is w for r in kept(w)[1])   # ... but a copy of a writable one
    np.testing.assert_allclose(revad.grad(lambda x: np.sum(x * c))(np.ones(10_000)), c, rtol=0)


# -- comparisons -----------------------------------------------------------------------------

def test_comparisons_answer_from_the_values_and_are_recorded():
    x = np.array([-1.0, 0.0, 2.0])

    def record():
        a = revad.Array(x)
        n0 = revad.tape_info(a[0])["n_ops"]
        m = a > 0.0
        n1 = revad.tape_info(a[0])["n_ops"]
        return m, n1 - n0, np.less(a, a[::-1]), np.equal(0.0, a), a[::-1] >= a
    m, grew, lt, eq, ge = on_private_tape(record)
    assert m.dtype == bool
    np.testing.assert_array_equal(m, [False, False, True])
    assert grew == 3                              # one group: three slots for a replay to check
    np.testing.assert_array_equal(lt, [True, False, False])
    np.testing.assert_array_equal(eq, [False, True, False])
    np.testing.assert_array_equal(ge, [True, True, False])
    g = revad.grad(lambda v: np.sum(np.where(v > 0, v * v, -v)))(x)
    np.testing.assert_array_equal(g, [-1.0, -1.0, 4.0])


def test_comparisons_of_mismatched_shapes_name_them():
    with pytest.raises(ValueError, match=r"\(3,\) \(2,\)"):
        revad.Array(np.ones(3)) < np.ones(2)  # noqa: B015


# -- drawing -------------------------------------------------------------------------------

def test_a_drawn_group_shows_its_op():
    a = revad.Array(np.array([0.5, 1.5]))
    dot = revad.to_dot(np.exp(a)[0] + np.tanh(a)[1] + np.sum(a[None] * a[:, None], axis=0)[1])
    assert "exp" in dot and "tanh" in dot and "sum" in dot


def test_a_group_beyond_the_tapes_capacity_raises_before_allocating():
    # 2**32 outputs from a broadcast view of one element: slots are int32, so the tape refuses
    # (OverflowError) before it reserves anything, and it goes on recording.
    a = revad.Array(np.ones(1))
    b = np.broadcast_to(a, (1 << 16, 1 << 16))
    with pytest.raises(OverflowError, match="2\\*\\*31 - 1 entries"):
        np.exp(b)
    y = np.sum(np.exp(b[:3, :2]))
    y.backward()
    assert a.grad[0] == pytest.approx(6 * np.e, rel=1e-15)


def test_functional_leaves_read_the_argument_and_return_fresh_gradients():
    # grad() reads an ndarray argument in place (no copy) and returns each call's gradient in
    # its own array: the argument is untouched, and one call's result is not another's.
    x = np.array([1.0, -2.0, 0.5])
    keep = x.copy()
    f = revad.grad(lambda v: np.sum(v * v * v))
    g1, g2 = f(x), f(x)
    np.testing.assert_array_equal(x, keep)
    np.testing.assert_array_equal(g1, 3 * keep ** 2)
    g1[0] = 99.0
    np.testing.assert_array_equal(g2, 3 * keep ** 2)
    assert revad.grad(lambda v: v * 2.0)(np.array(3.0)).shape == ()
