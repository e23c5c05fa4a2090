"""revad.trace reads data in place (src/revad/activity.h, rv_inputs_in_place): an array
argument that nothing differentiates and that only elementwise operations and matrix products
read is not copied into each replay's values; those operands read the caller's array.

Each case replays at new parameters and new data against eager value_and_grad at the same point
(eager records afresh, the data as constant ndarrays: an independent route), and checks which
arguments took the in-place route (Trace.stats["arguments_in_place"]): a case that must not
take it (a reader with no constant form) would read stale values if it did."""
import pickle
import threading

import numpy as np
import pytest

import revad

rng = np.random.default_rng(2024)


def eager(f, args, argnums=0):
    return revad.value_and_grad(f, argnums)(*args)


def same(got, ref, exact):
    """got == ref: bit for bit where no BLAS product runs, else to 1e-12."""
    if isinstance(ref, tuple):
        for a, b in zip(got, ref, strict=True):
            same(a, b, exact)
    elif exact:
        np.testing.assert_array_equal(np.asarray(got), np.asarray(ref))
    else:
        np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-12, atol=1e-12)


def check(f, make, in_place, argnums=0, calls=3, exact=True):
    tr = revad.trace(f, *make(), argnums=argnums)
    assert tr.stats["arguments_in_place"] == in_place
    for _ in range(calls):
        args = make()
        v, g = tr.value_and_grad(*args)
        ev, eg = eager(f, args, argnums)
        same(v, ev, exact)
        same(g, eg, exact)
        assert tr.value(*args) == v
        assert tr._buffers_clean()
    return tr


def logreg(w, X, y):
    z = X @ w
    return np.sum(np.log1p(np.exp(-z)) + (1.0 - y) * z)


def make_logreg(n=30, p=7):
    return rng.normal(size=p), rng.normal(size=(n, p)), rng.integers(0, 2, n).astype(float)


def test_a_design_matrix_and_labels_are_read_where_the_caller_keeps_them():
    # X: a product's operand; y: an elementwise operand (of an inactive group, 1 - y)
    check(logreg, make_logreg, in_place=2)


def test_products_on_both_sides_and_views_of_the_data():
    def f(w, X, Y):
        return (np.sum(np.tanh(w @ X) * Y[0]) + np.sum(X[:, 1:] * w[:, None] ** 2)
                + np.sum((X.T @ w) * Y[1, ::-1]))

    check(f, lambda: (rng.normal(size=5), rng.normal(size=(5, 4)), rng.normal(size=(2, 4))),
          in_place=2)


def test_blas_sized_products():
    def mlp(W1, b1, X, Y):
        h = np.tanh(X @ W1 + b1)
        return np.sum((h @ Y.T) ** 2) / X.shape[0]

    check(mlp, lambda: (rng.normal(size=(40, 30)) / 6, rng.normal(size=30),
                        rng.normal(size=(50, 40)), rng.normal(size=(20, 30))),
          in_place=2, argnums=(0, 1), exact=False)


@pytest.mark.parametrize("layout", ["fortran", "strided", "float32"])
def test_data_in_another_layout_is_converted_for_the_call(layout):
    w, X, y = make_logreg()
    tr = revad.trace(logreg, w, X, y)
    assert tr.stats["arguments_in_place"] == 2
    w2, X2, y2 = make_logreg()
    ref = eager(logreg, (w2, X2, y2))
    if layout == "fortran":
        X3 = np.asfortranarray(X2)
    elif layout == "strided":
        X3 = np.zeros((X2.shape[0], 2 * X2.shape[1]))[:, ::2]
        X3[...] = X2
    else:  # a dtype other than the recorded one is refused, as before
        with pytest.raises(ValueError, match="dtype float64"):
            tr.value_and_grad(w2, X2.astype(np.float32), y2)
        return
    same(tr.value_and_grad(w2, X3, y2), ref, True)


def test_the_data_changed_in_place_between_calls_is_read_anew():
    w, X, y = make_logreg()
    tr = revad.trace(logreg, w, X, y)
    first = tr.value_and_grad(w, X, y)
    X *= 1.5
    y[:] = 1.0 - y
    same(tr.value_and_grad(w, X, y), eager(logreg, (w, X, y)), True)
    assert tr.value_and_grad(w, X, y)[0] != first[0]


@pytest.mark.parametrize("case", ["element", "sum", "escape", "dot", "unary", "gather"])
def test_data_read_by_entries_with_no_constant_form_is_copied(case):
    # Each reader here reads the data's slots themselves (an op row, a sum, a guard, a dot
    # entry, a gather): the argument stays copied into the values.
    def f(w, X):
        base = np.sum(np.tanh(X @ w))
        if case == "element":
            return base + X[1, 2] * w[0]
        if case == "sum":
            return base + np.sum(X) * w[1]
        if case == "escape":
            return base + float(np.asarray(X.value if hasattr(X, "value") else X)[0, 0]) * w[0]
        if case == "dot":
            return base + np.dot(X[0], w)
        if case == "unary":
            return base + revad.exp(X[0, 1]) * w[2]
        return base + np.sum(X[[2, 0, 1]][:, 1] * w[1:])

    make = lambda: (rng.normal(size=4), rng.normal(size=(3, 4)))  # noqa: E731
    if case == "escape":
        w, X = make()
        tr = revad.trace(f, w, X)
        assert tr.stats["arguments_in_place"] == 0
        same(tr.value_and_grad(w + 1.0, X), eager(f, (w + 1.0, X)), True)
        with pytest.raises(revad.TraceError):
            tr.value_and_grad(w, X + 1.0)
        return
    check(f, make, in_place=0)


def test_an_output_on_the_data_is_not_read_in_place():
    def f(w, X):
        return X[0]  # the result is the data itself

    tr = revad.trace(f, 1.0, np.array([2.0, 3.0]))
    assert tr.stats["arguments_in_place"] == 0
    assert tr.value_and_grad(1.0, np.array([5.0, 6.0])) == (5.0, 0.0)


def test_one_array_passed_twice():
    # Each argument is a leaf of its own: one array passed as two is two inputs, and a replay
    # may pass two arrays there.
    def f(w, A, B):
        return np.sum(w * A) + np.sum(np.exp(w) * B)

    w, A = rng.normal(size=4), rng.normal(size=4)
    tr = revad.trace(f, w, A, A)
    assert tr.stats["arguments_in_place"] == 2
    tr2 = revad.trace(f, w, A, A, argnums=(0, 1))  # an argnum and data, the same array
    assert tr2.stats["arguments_in_place"] == 1
    B = rng.normal(size=4)
    same(tr.value_and_grad(w, A, B), eager(f, (w, A, B)), True)
    same(tr2.value_and_grad(w, A, B), eager(f, (w, A, B), (0, 1)), True)
    same(tr2.value_and_grad(w, B, B), eager(f, (w, B, B), (0, 1)), True)


def test_data_inside_a_structure():
    def f(p, data):
        return np.sum(np.tanh(data["X"] @ p["w"]) * data["y"]) + p["b"] ** 2

    def make():
        return ({"w": rng.normal(size=3), "b": 0.5},
                {"X": rng.normal(size=(6, 3)), "y": rng.normal(size=6)})

    tr = revad.trace(f, *make())
    assert tr.stats["arguments_in_place"] == 2
    for _ in range(2):
        args = make()
        v, g = tr.value_and_grad(*args)
        ev, eg = eager(f, args)
        assert v == ev
        same(g["w"], eg["w"], True)
        assert g["b"] == eg["b"]


def test_pickle_batch_hvp_and_compile_read_the_new_data():
    w, X, y = make_logreg()
    tr = pickle.loads(pickle.dumps(revad.trace(logreg, w, X, y)))
    assert tr.stats["arguments_in_place"] == 2
    w2, X2, y2 = make_logreg()
    same(tr.value_and_grad(w2, X2, y2), eager(logreg, (w2, X2, y2)), True)
    W = rng.normal(size=(300, w.shape[0]))  # (enough rows for two threads: _ROWS_SHARE_MIN)
    values, grads = tr.batch(W, X2, y2, threads=2)
    for j in range(0, 300, 7):
        same((values[j], grads[j]), eager(logreg, (W[j], X2, y2)), True)
    v = rng.normal(size=w.shape[0])
    ref = revad.hvp(logreg)(w2, X2, y2, v)
    np.testing.assert_allclose(tr.hvp(w2, X2, y2, v), ref, rtol=1e-12, atol=1e-14)
    cf = revad.compile(logreg)
    for _ in range(3):
        w3, X3, y3 = make_logreg()
        same(cf(w3, X3, y3), eager(logreg, (w3, X3, y3)), True)
    assert cf.stats["records"] == 1


def test_threads_replaying_with_their_own_data():
    tr = revad.trace(logreg, *make_logreg())
    points = [make_logreg() for _ in range(4)]
    serial = [tr.value_and_grad(*a) for a in points]
    out = [None] * 4
    wrong = []

    def run(k):
        for _ in range(20):
            r = tr.value_and_grad(*points[k])
            if out[k] is None:
                out[k] = r
            if not (r[0] == serial[k][0] and np.array_equal(r[1], serial[k][1])):
                wrong.append(k)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
    for k in range(4):
        same(out[k], serial[k], True)


def test_long_runs_of_leaves_and_placeholders_are_stepped_over():
    # A forward replay jumps over each run of leaves and group placeholders (rv_replay_skip, its
    # marks written when the trace is made and again when unpickled), a reverse sweep over each
    # long run of leaves in its op column (the _Active's gaps): data read in place, data copied
    # (read by a sum), inactive groups, between active entries on both sides.
    def f(W, X, Z, s):
        a = np.tanh(X @ W)                   # X (70, 80): 5600 leaves read in place
        b = np.sum(Z) * np.sum(Z * Z)        # Z: 6000 leaves, copied, inactive
        return np.sum(a * a) * s + b * s + np.sum(W[:3, :3]) * s ** 2

    def make():
        return (rng.normal(size=(80, 8)) / 9, rng.normal(size=(70, 80)),
                rng.normal(size=6000), float(rng.normal()))

    tr = check(f, make, in_place=1, argnums=(0, 3), exact=False)
    tr2 = pickle.loads(pickle.dumps(tr))
    args = make()
    same(tr2.value_and_grad(*args), eager(f, args, (0, 3)), False)
    assert tr2._buffers_clean()
