"""revad.trace reads a differentiated weight matrix in place and writes its gradient straight out
(_array_trace.pxi, _direct_args): an array argument whose only reader is one matrix product that
BLAS runs (all of it, in C order, the other operand data) is neither copied into a replay's
values nor its gradient copied out of the adjoints; and a product whose operand no entry swept
before it adds to writes that operand's adjoints instead of testing them for zero and adding
(activity.h, rv_mm_fresh).

Each case replays at new points against eager value_and_grad at the same point (an independent
route: eager records afresh), and checks which arguments took the direct route
(Trace.stats["differentiated_in_place"]): a case that must not take it (another reader of the
values or of the adjoints) would give a stale value or a lost gradient if it did."""
import pickle
import threading

import numpy as np
import pytest

import revad

rng = np.random.default_rng(7)


def same(got, ref):
    """got == ref to 1e-12 (nan where ref has nan), structure and all."""
    if isinstance(ref, (tuple, list)):
        assert type(got) is type(ref) and len(got) == len(ref)
        for a, b in zip(got, ref, strict=True):
            same(a, b)
    else:
        np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-12, atol=1e-12)


def check(f, make, direct, argnums=0, calls=3):
    tr = revad.trace(f, *make(), argnums=argnums)
    assert tr.stats["differentiated_in_place"] == direct
    for _ in range(calls):
        args = make()
        v, g = tr.value_and_grad(*args)
        ev, eg = revad.value_and_grad(f, argnums)(*args)
        same(v, ev)
        same(g, eg)
        np.testing.assert_array_equal(tr.value(*args), v)  # (nan equals nan)
        assert tr._buffers_clean()
    return tr


def mlp(W1, b1, W2, b2, X, Y):  # benchmarks/arrays.py's, at BLAS sizes (m n q >= 4096)
    h = np.tanh(X @ W1 + b1)
    o = h @ W2 + b2
    m = np.max(o, axis=1, keepdims=True)
    return np.mean(np.log(np.sum(np.exp(o - m), axis=1)) + m[:, 0] - np.sum(o * Y, axis=1))


def make_mlp(n=16, d=40, k=24, c=5):
    return (0.2 * rng.normal(size=(d, k)), rng.normal(size=k), 0.2 * rng.normal(size=(k, c)),
            rng.normal(size=c), rng.normal(size=(n, d)), np.eye(c)[rng.integers(0, c, n)])


@pytest.mark.parametrize("argnums", [(0, 1, 2, 3), 0, (0, 0, 2), (2, 0), (3, 0, 1)])
def test_the_first_layer_weights_are_read_and_written_in_place(argnums):
    tr = check(mlp, make_mlp, direct=1, argnums=argnums)
    # the gradients handed back are the caller's own: no two alias, none aliases an input, and
    # writing one changes nothing in the next call
    args = make_mlp()
    g1 = tr.grad(*args)
    gs = g1 if isinstance(g1, tuple) else (g1,)
    for i, a in enumerate(gs):
        assert not any(np.shares_memory(a, b) for b in gs[i + 1:])
        assert not any(np.shares_memory(a, x) for x in args)
        a[...] = 1e300
    same(tr.grad(*args), revad.grad(mlp, argnums)(*args))


def test_the_second_layer_and_the_differentiated_data_are_not_direct():
    # W2's product reads h (differentiated: its gradient flows on): W2's values are read by
    # the backward too; with X differentiated, W1's product needs W1's values for dX
    check(mlp, make_mlp, direct=1, argnums=(2, 0))
    check(mlp, make_mlp, direct=0, argnums=(0, 4))


def twice(W, X, Z):  # W in two products: the later (swept first) writes, the earlier adds
    return np.sum(np.tanh(X @ W)) + np.sum((Z @ W) ** 2)


def make_twice():
    return rng.normal(size=(30, 12)), rng.normal(size=(20, 30)), rng.normal(size=(15, 30))


def regularised(W, X):  # W read by an elementwise group too, before and after its product
    s = np.sum(W * W)
    return np.sum(np.tanh(X @ W)) + 0.5 * s + np.sum(np.cos(W))


def transposed(W, X):  # the product reads W.T: not in C order
    return np.sum(np.tanh(X @ W.T))


def left(W, X):  # W as the left operand: direct too
    return np.sum(np.sin(W @ X))


def escaped(W, X):  # W's value escapes into Python: a guard reads it (make_escaped keeps it)
    return np.sum(np.tanh(X @ W)) * float(W[0, 0])


def make_escaped():
    W = rng.normal(size=(30, 12))
    W[0, 0] = 0.5
    return W, rng.normal(size=(20, 30))


@pytest.mark.parametrize("f, make, direct", [
    (twice, make_twice, 0),
    (regularised, lambda: (rng.normal(size=(30, 12)), rng.normal(size=(20, 30))), 0),
    (transposed, lambda: (rng.normal(size=(12, 30)), rng.normal(size=(20, 30))), 0),
    (left, lambda: (rng.normal(size=(20, 30)), rng.normal(size=(30, 12))), 1),
    (escaped, make_escaped, 0),
])
def test_other_readers_of_the_weights_keep_them_on_the_slots(f, make, direct):
    check(f, make, direct)


def test_a_product_adds_to_adjoints_an_earlier_sweep_step_wrote():
    # the elementwise reader of W recorded after the product is swept before it: the product
    # must add to W's adjoints, not overwrite them (rv_mm_fresh)
    def f(W, X):
        p = np.tanh(X @ W)
        return np.sum(p) + np.sum(np.exp(0.1 * W))

    check(f, lambda: (rng.normal(size=(30, 12)), rng.normal(size=(20, 30))), 0)
    # a product reading W on both sides: B's write must not undo A's
    check(lambda W: np.sum(np.tanh(W @ W)), lambda: (0.3 * rng.normal(size=(20, 20)),), 0)


def test_non_finite_data_takes_the_products_own_loops():
    # a zero adjoint beside an inf in X: the product's C loops run (no BLAS nan), and the
    # direct gradient is taken from them
    def f(W, X, M):
        return np.sum((X @ W) * M)

    def make():
        X = rng.normal(size=(20, 30))
        X[3, 4] = np.inf
        M = rng.normal(size=(20, 12))
        M[3] = 0.0
        M[5, 2] = 0.0
        return rng.normal(size=(30, 12)), X, M

    tr = check(f, make, direct=1)
    v, g = tr.value_and_grad(*make())
    assert np.isnan(v) and np.isfinite(g).all()  # (BLAS would give X[3, 4] * 0 = nan in g[4])


def test_another_layout_or_dtype_is_converted_for_the_call():
    def make():
        W1, b1, W2, b2, X, Y = make_mlp()
        return np.asfortranarray(W1).astype(np.float32), b1, W2, b2, X, Y

    tr = revad.trace(mlp, *make(), argnums=(0, 2))
    assert tr.stats["differentiated_in_place"] == 1
    for _ in range(2):
        args = make()
        same(tr.value_and_grad(*args), revad.value_and_grad(mlp, (0, 2))(*args))


def test_pickle_hvp_batch_compile_and_threads():
    args = make_mlp()
    tr = revad.trace(mlp, *args, argnums=0)
    back = pickle.loads(pickle.dumps(tr))
    assert back.stats["differentiated_in_place"] == 1
    new = make_mlp()
    same(back.value_and_grad(*new), revad.value_and_grad(mlp)(*new))
    v = rng.normal(size=new[0].shape)
    same(tr.hvp(*new, v), revad.hvp(mlp)(*new, v))
    same(tr.value_and_grad(*new), revad.value_and_grad(mlp)(*new))  # (after the hvp's copy)
    W1s = 0.2 * rng.normal(size=(4,) + new[0].shape)
    values, grads = tr.batch(W1s, *new[1:])
    for i in range(4):
        ev, eg = revad.value_and_grad(mlp)(W1s[i], *new[1:])
        same((values[i], grads[i]), (ev, eg))
    cf = revad.compile(mlp, argnums=(0, 1))
    for _ in range(3):
        new = make_mlp()
        same(cf(*new), revad.value_and_grad(mlp, (0, 1))(*new))
    points = [make_mlp() for _ in range(6)]
    serial = [tr.value_and_grad(*p) for p in points]
    out = [None] * len(points)

    def run(j):
        for _ in range(20):
            out[j] = tr.value_and_grad(*points[j])

    threads = [threading.Thread(target=run, args=(j,)) for j in range(len(points))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for j in range(len(points)):
        assert out[j][0] == serial[j][0]
        np.testing.assert_array_equal(out[j][1], serial[j][1])
