"""A trace's forward replay leaves unwritten the array groups that eager recording left
unwritten (kind_table.h, rv_replay): lazy elementwise groups (group_ew.h, rv_ew_lazy) that only
a sum over them read, whose sums it computes from their operands as recording did; and it
shares large groups out to the helper threads (_core_replay.pxi, _replay_forward) as the sweeps
do. Either way a replay must give eager value_and_grad's bits.

Every test starts on tapes whose value slots hold nan from the call before (their buffers are
reused, as in test_lazy.py), so a replay that read a value it had not written would show. The
references: eager value_and_grad at the same new point (it records afresh), bit for bit, and an
analytic gradient."""
import pickle

import numpy as np
import pytest

import revad
from revad import TraceError, _core

rng = np.random.default_rng(4242)


# Every test's tape starts in buffers whose value slots are all nan (conftest.py, nan_slots):
# a value that was never written shows.
pytestmark = pytest.mark.usefixtures("nan_slots")


@pytest.fixture(params=["one thread", "threads"])
def split(request):
    """Replays on one thread, and with every group of 64 outputs or more cut for threads."""
    if request.param == "one thread":
        yield None
        return
    old_helpers = _core._set_helpers(3)
    old = _core._set_split_min(64)
    try:
        yield 64
    finally:
        _core._set_split_min(old)
        _core._set_helpers(old_helpers)


def same(got, want):
    """Bit for bit: values, gradients (numbers, arrays, tuples of them)."""
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        for a, b in zip(got, want, strict=True):
            same(a, b)
        return
    assert type(got) is type(want), (type(got), type(want))
    if isinstance(want, np.ndarray):
        assert got.shape == want.shape and np.array_equal(got, want, equal_nan=False), (
            np.max(np.abs(got - want)))
    else:
        assert got == want, (got, want)


def check(f, make, argnums=0, calls=3, unwritten=1):
    """Trace f at make(); replay at `calls` new points: value_and_grad and value as eager's,
    bit for bit; the trace leaves `unwritten` groups unwritten (at least)."""
    tr = revad.trace(f, *make(), argnums=argnums)
    assert tr.stats["unwritten_groups"] >= unwritten
    for _ in range(calls):
        args = make()
        want = revad.value_and_grad(f, argnums)(*args)
        same(tr.value_and_grad(*args), want)
        same(tr.value(*args), want[0])
        assert tr._buffers_clean()
    return tr


def rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def rosen_grad(x):
    g = np.zeros_like(x)
    d = x[1:] - x[:-1] ** 2
    g[:-1] = -400.0 * x[:-1] * d - 2.0 * (1.0 - x[:-1])
    g[1:] += 200.0 * d
    return g


@pytest.mark.parametrize("n", [50, 3000])
def test_rosenbrock_leaves_its_last_group_unwritten(split, n):
    tr = check(rosen, lambda: (rng.uniform(-2, 2, size=n),))
    assert tr.stats["unwritten_groups"] == 1  # the last add: the others are read by ops
    x = rng.uniform(-2, 2, size=n)
    v, g = tr.value_and_grad(x)
    np.testing.assert_allclose(g, rosen_grad(x), rtol=1e-12, atol=1e-9)
    assert v == pytest.approx(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2),
                              rel=1e-12)


# Sums over each lazy row and layout: lines of 5, of more than 128 (pairwise halves), batches of
# short sums, over all, a broadcast operand and a constant one.
SUMS = {
    "add, rows": lambda a, b: np.sum(a + b, axis=1),
    "subtract, all": lambda a, b: np.sum(a - b),
    "multiply, rows": lambda a, b: np.sum(a * b, axis=-1),
    "square, all": lambda a, b: np.sum(a ** 2),
    "negative, rows": lambda a, b: np.sum(-a, axis=1),
    "broadcast": lambda a, b: np.sum(a * b[:1, :], axis=1),
    "times a constant": lambda a, b: np.sum(a * np.arange(1.0, 1.0 + a.shape[1]), axis=1),
}


@pytest.mark.parametrize("shape", [(3, 5), (4, 130), (2, 300), (300, 7)])
@pytest.mark.parametrize("name", list(SUMS))
def test_sums_over_unwritten_groups_give_eager_bits(split, name, shape):
    s = SUMS[name]

    def f(a, b):
        return np.sum(revad.tanh(s(a, b)))  # (a nonlinear use: the sums' adjoints differ)

    check(f, lambda: (rng.normal(size=shape), rng.normal(size=shape)), argnums=(0, 1))


def test_a_group_an_op_reads_is_written_and_one_only_summed_is_not():
    def f(x):
        a = x * 3.0            # read by the tanh below: written
        b = x - 1.0            # only summed: unwritten
        return np.sum(revad.tanh(a)) + np.sum(b) + np.sum(a * a)  # a * a: unwritten

    check(f, lambda: (rng.normal(size=200),), unwritten=2)
    tr = revad.trace(f, rng.normal(size=200))
    assert tr.stats["unwritten_groups"] == 2


def test_data_an_active_group_reads_as_a_constant_is_written(split):
    # d * d depends on the data alone and is lazy; w * dd reads it, and the activity pass
    # (activity.h) makes that operand read the replay's values as a constant: they must be the
    # new data's, written by the replay. A second d * d only summed stays unwritten.
    def f(w, d):
        dd = d * d
        return np.sum(w * dd) + np.sum(d * d)

    tr = check(f, lambda: (rng.normal(size=(6, 6)), rng.normal(size=(6, 6))))
    assert tr.stats["inactive_entries"] > 0

    def g(w, d):  # a matrix product's operand the same way (eager's product is NumPy's:
        return np.sum((d * 2.0) @ w) + np.sum(d - 1.0)  # its sums may round otherwise)

    tr = revad.trace(g, rng.normal(size=6), rng.normal(size=(6, 6)))
    assert tr.stats["unwritten_groups"] >= 1 and tr.stats["inactive_entries"] > 0
    w, d = rng.normal(size=6), rng.normal(size=(6, 6))
    v, grad = tr.value_and_grad(w, d)
    np.testing.assert_allclose(grad, (d * 2.0).sum(axis=0), rtol=1e-12)
    assert v == pytest.approx(np.sum((d * 2.0) @ w) + np.sum(d - 1.0), rel=1e-12)


def test_comparisons_guards_and_ties_read_written_values():
    def f(x):
        y = x * x
        if np.sum(y) > 1.0:               # a comparison of a sum over y: y stays unwritten
            y = y + 1.0
        m = np.max(x - 0.5)               # reads x - 0.5: its ties are checked
        return np.sum(y) + m

    x0 = np.array([1.0, -2.0, 3.0, 0.5])
    tr = check(f, lambda: (x0 + rng.uniform(0.0, 0.1, size=4),))
    with pytest.raises(TraceError, match="comparison"):
        tr.value_and_grad(np.full(4, 0.1))

    def g(x):
        mask = (x + 2.0).value > 2.0      # x + 2.0's values escape: guarded, bit for bit
        return np.sum(x[mask] * 2.0) + np.sum(x - 1.0)

    tr = check(g, lambda: (x0.copy(),))   # (the guard's values must be the replay's own)
    with pytest.raises(TraceError, match="guard failed"):
        tr.value_and_grad(x0 + 0.25)


def test_hvp_and_hessian_over_unwritten_groups():
    def f(x):
        return np.sum((x - 1.0) ** 2 * 3.0) + np.sum(x * x * x) + np.sum(x[1:] * x[:-1])

    tr = revad.trace(f, np.zeros(40))
    assert tr.stats["unwritten_groups"] >= 1
    for _ in range(2):
        x, v = rng.normal(size=40), rng.normal(size=40)
        same(tr.hvp(x, v), revad.hvp(f)(x, v))
        H = tr.hessian(x)
        same(H, revad.hessian(f)(x))
        want = np.diag(6.0 + 6.0 * x) + np.diag(np.ones(39), 1) + np.diag(np.ones(39), -1)
        np.testing.assert_allclose(H, want, rtol=1e-12)
    assert tr._buffers_clean()


def test_batch_rows_over_unwritten_groups():
    X = rng.uniform(-1.5, 1.5, size=(50, 30))
    tr = revad.trace(rosen, np.zeros(30))
    assert tr.stats["unwritten_groups"] == 1
    for threads in (1, 2):
        values, grads = tr.batch(X, threads=threads)
        for j in range(50):
            v, g = revad.value_and_grad(rosen)(X[j])
            assert values[j] == v and np.array_equal(grads[j], g)


def test_pickle_keeps_the_unwritten_groups(split):
    def f(w, d):
        return np.sum((w - d) ** 2) + np.sum(w * d, axis=0).dot(np.ones(4))

    tr = revad.trace(f, np.zeros((30, 4)), np.ones((30, 4)))
    n = tr.stats["unwritten_groups"]
    assert n >= 1
    tr2 = pickle.loads(pickle.dumps(tr))
    assert tr2.stats["unwritten_groups"] == n
    w, d = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
    same(tr2.value_and_grad(w, d), revad.value_and_grad(f)(w, d))

    restore, (state, *rest) = tr.__reduce__()
    old = dict(state)
    del old["absent"]  # a pickle made before: every group written, the same bits
    tr3 = restore(old, *rest)
    assert tr3.stats["unwritten_groups"] == 0
    same(tr3.value_and_grad(w, d), revad.value_and_grad(f)(w, d))
    for bad in ([max(state["absent"]) + 1], [len(state["blk"]) // 8], [-1]):
        with pytest.raises(ValueError, match="damaged"):
            restore(dict(state, absent=bad), *rest)


def test_groups_shared_by_threads_give_one_threads_bits():
    # The same trace replayed with its large groups cut for threads (forward and reverse) and
    # on one thread: the same bits (each output computed by one expression; each sum's line by
    # one thread, in its pairwise order).
    def f(a, b):
        p = revad.tanh(a * b)                   # an elementwise group, written
        return (np.sum(p * p) + np.sum(np.sum(a - b, axis=1) ** 2)  # sums over unwritten ones
                + np.sum(np.sum(p, axis=0)))    # a sum of 300 lines of 40

    tr = revad.trace(f, np.zeros((40, 300)), np.zeros((40, 300)), argnums=(0, 1))
    assert tr.stats["unwritten_groups"] == 3  # p * p, a - b, and the square of its sums
    a, b = rng.normal(size=(40, 300)), rng.normal(size=(40, 300))
    one = tr.value_and_grad(a, b)
    old_helpers = _core._set_helpers(3)
    try:
        for n in (1, 64, 1000):
            old = _core._set_split_min(n)
            try:
                same(tr.value_and_grad(a, b), one)
                same(tr.value(a, b), one[0])
            finally:
                _core._set_split_min(old)
    finally:
        _core._set_helpers(old_helpers)
    p = np.tanh(a * b)
    ga = 2 * p * (1 - p * p) * b + 2 * np.sum(a - b, axis=1)[:, None] + (1 - p * p) * b
    np.testing.assert_allclose(one[1][0], ga, rtol=1e-10, atol=1e-12)
