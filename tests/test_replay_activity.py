"""revad.trace's activity (src/revad/activity.h): a replay's reverse sweep computes no adjoint
for the data (the arguments not in argnums), yet uses new data on every replay and gives eager
value_and_grad's gradient w.r.t. the differentiated arguments.

Each case replays at new parameters AND new data, against eager value_and_grad at the same
point (an independent route: eager records afresh, the data as constant ndarrays), and checks
that the replay's buffers are left zero for the next call (a skipped entry must not leave an
adjoint behind)."""
import numpy as np
import pytest

import revad

rng = np.random.default_rng(1818)


def eager(f, args, argnums):
    return revad.value_and_grad(f, argnums)(*args)


def check(f, make, argnums=0, calls=3, rtol=1e-12, inactive=True):
    """Trace f at make(), replay at `calls` new make()s: value and gradients as eager's."""
    tr = revad.trace(f, *make(), argnums=argnums)
    for _ in range(calls):
        args = make()
        v, g = tr.value_and_grad(*args)
        ev, eg = eager(f, args, argnums)
        np.testing.assert_allclose(v, ev, rtol=rtol, atol=rtol)
        gs, egs = (g, eg) if isinstance(argnums, tuple) else ((g,), (eg,))
        assert len(gs) == len(egs)
        for a, b in zip(gs, egs, strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=rtol)
        assert tr._buffers_clean()
    if inactive:  # the data's entries are skipped by the reverse sweep
        assert tr.stats["inactive_entries"] > 0
    return tr


def test_design_matrix_times_weights_both_ways():
    def xw(w, X, y):
        return np.sum(np.log1p(np.exp(-(X @ w))) + (1.0 - y) * (X @ w))

    def wx(w, X, y):
        return np.sum(np.tanh(w @ X) * y)

    check(xw, lambda: (rng.normal(size=6), rng.normal(size=(9, 6)), rng.normal(size=9)))
    check(wx, lambda: (rng.normal(size=9), rng.normal(size=(9, 6)), rng.normal(size=6)))


def test_products_large_enough_for_blas():
    # m * n * q >= 4096: the BLAS path, whose backward must skip dX = G @ W^T.
    def mlp(W1, b1, X, Y):
        h = np.tanh(X @ W1 + b1)
        return np.sum((h @ Y.T) ** 2) / X.shape[0]

    tr = check(mlp, lambda: (rng.normal(size=(40, 30)) / 6, rng.normal(size=30),
                             rng.normal(size=(50, 40)), rng.normal(size=(20, 30))),
               argnums=(0, 1), rtol=1e-10)
    n_data = 50 * 40 + 20 * 30
    assert tr.stats["inactive_entries"] >= n_data


def test_an_inactive_operand_feeding_a_later_active_op():
    def f(w, X, y):
        S = X * X + 1.0           # data only: an elementwise group with no active operand
        c = np.sum(np.exp(-y))    # data only: a sum, then a scalar
        z = S @ w                 # the data subexpression as an operand of an active product
        return np.sum(np.tanh(z) * y) * c + np.sum(z * S[:, 0])

    check(f, lambda: (rng.normal(size=5), rng.normal(size=(7, 5)), rng.normal(size=7)))


def test_broadcasting_with_data():
    def f(w, b, X):
        return np.sum(np.sin(w[None, :] * X + b)) + np.sum((X - w) ** 2 * b[0])

    check(f, lambda: (rng.normal(size=4), rng.normal(size=4), rng.normal(size=(6, 4))),
          argnums=(0, 1))


def test_scalar_data_and_scalar_rows():
    # Numbers not in argnums are data too: op rows that read them mark them dirty, not active.
    def f(w, lam, d):
        return lam * np.sum(w * w) + sum(wi * di for wi, di in zip(w, d, strict=True))

    check(f, lambda: (rng.normal(size=3), float(rng.uniform(0.1, 2)), list(rng.normal(size=3))))

    def g(x, a):
        return x[0] * a[0] + x[1] / a[1] + a[0] * a[1]

    check(g, lambda: (list(rng.normal(size=2)), list(rng.uniform(1, 2, size=2))))


def test_an_argnum_and_a_data_argument_are_the_same_array():
    # The same object passed twice: the gradient is w.r.t. the first only, the second is data
    # (as eager's value_and_grad(f, 0) has it).
    def f(a, b):
        return np.sum(np.tanh(b @ a)) + np.sum(a * b[0])

    def make():
        x = rng.normal(size=(4, 4))
        return x, x

    check(f, make)

    def g(a, b):
        return np.sum(a * b) + np.sum(b ** 2)

    def make1():
        x = rng.normal(size=5)
        return x, x

    check(g, make1)
    check(g, make1, argnums=(0, 1), inactive=False)


def test_an_output_that_depends_on_no_differentiated_argument():
    def f(w, X):
        return np.sum(X ** 2) + 0.0 * 1.0

    tr = check(f, lambda: (rng.normal(size=3), rng.normal(size=(2, 3))))
    v, g = tr.value_and_grad(np.ones(3), np.full((2, 3), 2.0))
    assert v == 24.0 and np.array_equal(g, np.zeros(3))


def test_data_into_python_and_scipy_functions():
    @revad.primitive
    def scaled(x, s):
        return x * s

    revad.defvjp(scaled, lambda ans, x, s: lambda g: g * s, lambda ans, x, s: lambda g: g * x)

    def f(w, X):
        return np.sum(scaled(w, X) ** 2)

    check(f, lambda: (rng.normal(size=4), rng.normal(size=4)))
    pytest.importorskip("scipy")
    import importlib

    import scipy.special as ss
    importlib.import_module("revad.scipy.special")  # (SciPy's ufuncs on Arrays)

    def h(x, a):
        return np.sum(ss.gammaln(x + a) * a)

    check(h, lambda: (rng.uniform(0.5, 2, 6), rng.uniform(0.5, 2, 6)))


def test_workloads_and_their_data_as_inputs():
    from benchmarks import arrays as ba

    for fn, make, sizes in [(ba.logreg, ba._logreg_data, dict(n=60, p=80)),
                            (ba.mlp, ba._mlp_data, dict(batch=32, sizes=(64, 16, 4))),
                            (ba.gmm, ba._gmm_data, dict(d=3, K=4, n=20))]:
        def mk(make=make, sizes=sizes):
            params, data = make(np.random.default_rng(int(rng.integers(1 << 30))), **sizes)
            params = tuple(p + 0.01 * rng.normal(size=np.shape(p)) for p in params)
            return (*params, *data)

        k = len(make(np.random.default_rng(0), **sizes)[0])
        check(lambda *a, fn=fn: fn(np, *a), mk, argnums=tuple(range(k)), rtol=1e-10)


def test_batch_and_pickle_keep_the_activity():
    import pickle

    def f(w, X):
        return np.sum(np.tanh(X @ w))

    w, X = rng.normal(size=3), rng.normal(size=(5, 3))
    tr = revad.trace(f, w, X)
    tr2 = pickle.loads(pickle.dumps(tr))
    W = rng.normal(size=(4, 3))
    values, grads = tr2.batch(W, X)
    for j in range(4):
        v, g = eager(f, (W[j], X), 0)
        assert values[j] == pytest.approx(v, rel=1e-13)
        np.testing.assert_allclose(grads[j], g, rtol=1e-12)
    assert tr2.stats["inactive_entries"] == tr.stats["inactive_entries"] > 0


def test_a_large_constant_closed_over_is_checked_as_its_product_reads_it():
    # X >= 1 MiB is referenced, not copied (revad._array._Watched): a replay's forward product
    # multiplies and checks it in one pass (matmul_checked, rmatmul_checked), and refuses once
    # it changed in place.
    X = rng.normal(size=(400, 400))

    def f(w):
        return np.sum(np.tanh(X @ w)) + np.sum((w[None, :] @ X) ** 2) / 400

    tr = revad.trace(f, rng.normal(size=400) / 20)
    for _ in range(2):
        w = rng.normal(size=400) / 20
        v, g = tr.value_and_grad(w)
        ev, eg = eager(f, (w,), 0)
        assert v == pytest.approx(ev, rel=1e-12)
        np.testing.assert_allclose(g, eg, rtol=1e-11, atol=1e-12)
    X[3, 5] += 1.0
    with pytest.raises(RuntimeError, match="modified after it was recorded"):
        tr.value_and_grad(w)
