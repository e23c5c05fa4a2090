"""revad.trace: one recording replayed in C at new arguments. Every replay must give exactly what
eager value_and_grad gives at the same point (bit for bit where the same code runs; to 1e-12
where a product's sum runs in another order), or raise TraceError: never another program's
gradient."""
import math
import os
import pickle
import subprocess
import sys
import threading

import numpy as np
import pytest

import revad
from revad import TraceError

from test_ops import BINARY, UNARY

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)


def eager(f, args, argnums=0):
    return revad.value_and_grad(f, argnums)(*args)


def _flat(g):
    if isinstance(g, dict):
        return [x for k in g for x in _flat(g[k])]
    if isinstance(g, (list, tuple)):
        return [x for e in g for x in _flat(e)]
    return [np.asarray(g, dtype=np.float64)]


def same(got, want, exact=True, rtol=1e-12):
    """got == want: values and gradients, structure included; bit for bit where exact."""
    (v1, g1), (v2, g2) = got, want
    assert type(g1) is type(g2) or isinstance(g2, float) and isinstance(g1, float), (g1, g2)
    assert type(v1) is float
    pairs = [(np.asarray(v1), np.asarray(v2))] + list(zip(_flat(g1), _flat(g2), strict=True))
    for a, b in pairs:
        assert a.shape == b.shape
        if exact:
            assert np.array_equal(a, b, equal_nan=True), (a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)


def equal_or_refused(tr, f, args, argnums=0, exact=True):
    """A replay equals eager, or raises TraceError; returns which."""
    want = eager(f, args, argnums)
    try:
        got = tr.value_and_grad(*args)
    except TraceError:
        return "refused"
    same(got, want, exact)
    return "equal"


rng = np.random.default_rng(18)


# -- the seed's examples and the call path -----------------------------------------------------

def neuron(x):
    w0, w1, w2, x0, x1 = x
    return revad.sigmoid(w0 * x0 + w1 * x1 + w2)


def test_neuron_replays_bit_for_bit():
    tr = revad.trace(neuron, [2.0, -3.0, -3.0, -1.0, -2.0])
    for _ in range(20):
        x = list(rng.normal(size=5))
        same(tr.value_and_grad(x), eager(neuron, [x]))
        assert tr.value(x) == eager(neuron, [x])[0]
        assert tr.grad(x) == eager(neuron, [x])[1]


def test_every_argument_is_an_input_and_argnums_choose_the_gradients():
    def f(w, x, c, n):
        return np.sum(np.tanh(w * x) * c) * n

    args = (rng.normal(size=3), rng.normal(size=3), 0.5, 2)
    tr = revad.trace(f, *args, argnums=(0, 2))
    for _ in range(5):
        new = (rng.normal(size=3), rng.normal(size=3), float(rng.normal()), 2)
        same(tr.value_and_grad(*new), eager(f, new, (0, 2)))
    with pytest.raises(TraceError, match="static argument"):
        tr.value_and_grad(args[0], args[1], 0.5, 3)


def test_pytrees_as_value_and_grad_takes_them():
    def f(p, data):
        return np.sum(p["w"] * data[0]) + p["b"][0] * data[1] + p["b"][1]

    p = {"w": rng.normal(size=4), "b": [0.5, -1.0]}
    data = (rng.normal(size=4), 3.0)
    tr = revad.trace(f, p, data)
    for _ in range(3):
        p2 = {"w": rng.normal(size=4), "b": list(rng.normal(size=2))}
        d2 = (rng.normal(size=4), float(rng.normal()))
        same(tr.value_and_grad(p2, d2), eager(f, (p2, d2)))


def test_a_constant_result_and_a_returned_input():
    tr = revad.trace(lambda x: 3.0, 1.0)
    assert tr.value_and_grad(2.0) == eager(lambda x: 3.0, [2.0])
    tr = revad.trace(lambda x: x, 1.0)
    assert tr.value_and_grad(2.0) == (2.0, 1.0)


# -- every op-table row, every kind ------------------------------------------------------------

def _domain(name):
    return (1.1, 3.0) if name == "arccosh" else (0.1, 0.9)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_every_unary_row_scalar_and_array(name):
    fn = getattr(revad, name)
    lo, hi = _domain(name)

    def scalar(x):
        return fn(x[0] * 1.0) * x[1]

    def array(x):
        return np.sum(getattr(np, name)(x) if hasattr(np, name) else fn(x))

    tr_s = revad.trace(scalar, [0.5 * (lo + hi), 1.5])
    tr_a = revad.trace(array, np.full(6, 0.5 * (lo + hi)))
    for _ in range(4):
        x = [float(rng.uniform(lo, hi)), float(rng.normal())]
        same(tr_s.value_and_grad(x), eager(scalar, [x]))
        v = rng.uniform(lo, hi, 6)
        same(tr_a.value_and_grad(v), eager(array, [v]))


@pytest.mark.parametrize("name", sorted(BINARY))
def test_every_binary_row_vv_vc_cv_and_array(name):
    fn = getattr(revad, name)
    fs = {"vv": lambda x: fn(x[0], x[1]), "vc": lambda x: fn(x[0], 0.7),
          "cv": lambda x: fn(0.7, x[1]),
          "array": lambda x: np.sum(fn(revad.Array([1.0, 2.0]) * x[0], x[1]))}
    for f in fs.values():
        tr = revad.trace(f, [0.5, 1.25])
        for _ in range(4):
            x = [float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.5, 2.0))]
            same(tr.value_and_grad(x), eager(f, [x]))
    arr = revad.trace(lambda a, b: np.sum(fn(a, b)), np.full(5, 0.5), np.full(5, 1.2),
                      argnums=(0, 1))
    for _ in range(3):
        a, b = rng.uniform(0.1, 0.9, 5), rng.uniform(0.5, 2.0, 5)
        same(arr.value_and_grad(a, b), eager(lambda a, b: np.sum(fn(a, b)), (a, b), (0, 1)))


def test_comparison_rows_are_guards():
    for op in ("<", "<=", ">", ">=", "==", "!="):
        f = eval(f"lambda x: x[0] * 2.0 if x[0] {op} x[1] else x[1] * 3.0")
        g = eval(f"lambda x: x[0] * 2.0 if x[0] {op} 0.5 else x[1] * 3.0")
        h = eval(f"lambda x: x[0] * 2.0 if 0.5 {op} x[1] else x[1] * 3.0")
        for fn in (f, g, h):
            tr = revad.trace(fn, [0.3, 0.6])
            seen = set()
            for x in ([0.3, 0.6], [0.7, 0.2], [0.5, 0.5], [0.1, 0.9]):
                seen.add(equal_or_refused(tr, fn, [x]))
            assert seen == {"equal", "refused"}


def test_a_replay_leaves_its_adjoints_zero_for_the_next():
    from benchmarks import arrays as ba

    params, data = ba._mlp_data(np.random.default_rng(1), batch=8, sizes=(12, 6, 3))
    f = lambda *a: ba.mlp(np, *a)  # noqa: E731
    tr = revad.trace(f, *params, *data, argnums=(0, 1, 2, 3))
    tr.value_and_grad(*params, *data)
    assert tr._buffers_clean()
    tr = revad.trace(lambda x: sum(v * v for v in x) + x[0] * 3.0, [1.0, 2.0, 3.0])
    tr.value_and_grad([1.0, 2.0, 4.0])
    assert tr._buffers_clean()


def test_kinds_dot_dotc_mm_sums():
    A = rng.normal(size=(4, 3))
    fs = {
        "dot": (lambda x, y: x @ y, (rng.normal(size=5), rng.normal(size=5))),
        "dotc": (lambda x, y: x @ np.arange(5.0) * y[0], (rng.normal(size=5), rng.normal(size=5))),
        "mm_small": (lambda x, y: np.sum(np.tanh(x.reshape(5, 1) @ y.reshape(1, 5))),
                     (rng.normal(size=5), rng.normal(size=5))),
        "mm_const": (lambda x, y: np.sum((A @ x[:3]) ** 2) + y[0], (rng.normal(size=5),
                                                                    rng.normal(size=5))),
        "sums": (lambda x, y: np.sum(np.sum((x.reshape(5, 1) * y) ** 2, axis=0) ** 0.5),
                 (rng.normal(size=5), rng.normal(size=5))),
    }
    for name, (f, args) in fs.items():
        tr = revad.trace(f, *args, argnums=(0, 1))
        for _ in range(3):
            new = (rng.normal(size=5), rng.normal(size=5))
            same(tr.value_and_grad(*new), eager(f, new, (0, 1)), exact=False)
        assert tr._buffers_clean(), name


def test_large_matrix_product_through_blas():
    def f(W, X):
        return np.sum(np.tanh(X @ W))

    W, X = rng.normal(size=(60, 50)), rng.normal(size=(70, 60))
    tr = revad.trace(f, W, X, argnums=(0, 1))
    for _ in range(2):
        new = (rng.normal(size=(60, 50)), rng.normal(size=(70, 60)))
        same(tr.value_and_grad(*new), eager(f, new, (0, 1)), exact=False)


def test_scipy_pair_rows():
    pytest.importorskip("scipy")
    import scipy.special as ss

    import revad.scipy.special

    def f(x, a):
        return np.sum(ss.gammaln(x) * a) + np.sum(ss.erfc(x))

    tr = revad.trace(f, rng.uniform(0.5, 2, 6), rng.uniform(0.5, 2, 6), argnums=(0, 1))
    for _ in range(3):
        new = (rng.uniform(0.5, 2, 6), rng.uniform(0.5, 2, 6))
        same(tr.value_and_grad(*new), eager(f, new, (0, 1)))


@revad.primitive
def softsign(x):
    return x / (1.0 + np.abs(x))


revad.defvjp(softsign, lambda ans, x: lambda g: g / (1.0 + np.abs(x)) ** 2)


def test_call_primitives_rerun_at_new_inputs():
    def f(x):
        return np.sum(softsign(x * 2.0) ** 2)

    tr = revad.trace(f, rng.normal(size=7))
    for _ in range(3):
        x = rng.normal(size=7)
        same(tr.value_and_grad(x), eager(f, [x]))


# -- the benchmark's workloads -----------------------------------------------------------------

def test_scalar_workloads():
    from benchmarks import workloads as w

    for fn, n in ((w.seed_polynomial, 2), (w.seed_sigmoid, 5), (w.rosenbrock, 30)):
        f = (lambda fn: lambda x: fn(x, revad))(fn)
        tr = revad.trace(f, list(rng.normal(size=n)))
        for _ in range(3):
            x = list(rng.normal(size=n))
            same(tr.value_and_grad(x), eager(f, [x]))


def test_array_workloads():
    from benchmarks import arrays as ba

    sizes = {"rosenbrock": dict(n=200), "logreg": dict(n=50, p=10),
             "mlp": dict(batch=8, sizes=(12, 6, 3)), "gmm": dict(d=3, K=4, n=20)}
    makers = {"rosenbrock": ba._rosen_data, "logreg": ba._logreg_data, "mlp": ba._mlp_data,
              "gmm": ba._gmm_data}
    fns = {"rosenbrock": ba.rosenbrock, "logreg": ba.logreg, "mlp": ba.mlp, "gmm": ba.gmm}
    for name, fn in fns.items():
        params, data = makers[name](np.random.default_rng(1), **sizes[name])
        k = len(params)

        def f(*a, fn=fn):
            return fn(np, *a)

        nums = tuple(range(k))
        tr = revad.trace(f, *params, *data, argnums=nums)
        for seed in range(2):
            p2, d2 = makers[name](np.random.default_rng(seed + 2), **sizes[name])
            p2 = tuple(p + 0.01 * np.random.default_rng(seed).normal(size=np.shape(p))
                       for p in p2)
            assert equal_or_refused(tr, f, (*p2, *d2), nums, exact=False) == "equal", name


def test_families():
    from benchmarks import families

    for _family, label, op, x in families._families(200):
        def f(v, op=op):
            return np.sum(op(v))

        tr = revad.trace(f, x)
        x2 = x * (1 + 0.01 * rng.normal(size=x.shape))
        if label.startswith("slogdet"):
            x2 = (x2 + x2.T) / 2
        assert equal_or_refused(tr, f, [x2], exact=False) == "equal", label


# -- branches: every call equals eager or raises TraceError -----------------------------------

def _branchy():
    def if_else(x):
        return x[0] * x[1] if x[0] > 0 else x[1] ** 2

    def py_max_min_abs(x):
        return max(x[0], x[1]) * min(x[1], x[2]) + abs(x[2])

    def sorted_(x):
        return sum(v * (i + 1) for i, v in enumerate(sorted(x)))

    def while_loop(x):
        y, k = x[0], 0
        while y < 10.0 and k < 50:
            y = y * 1.5 + x[1] ** 2
            k += 1
        return y

    def escapes(x):
        k = int(abs(x[0]) * 3) % 3
        return x[k] * float(x[1]) + math.sin(x[2]) + (1.0 if bool(x[0] > 0) else 2.0)

    def value_escape(x):
        return x[0] * x[1].value + x[2].item()

    def index(x):
        i = int(x[0] > 0)
        return x[i + 1] * 2.0

    def mask(x):
        a = revad.numpy.array(x)
        return np.sum(np.where(a > 0, a * 2.0, -a))

    def array_max(x):
        a = revad.numpy.array(x)
        return np.max(a) + np.sum(np.maximum(a, 0.1))

    return [if_else, py_max_min_abs, sorted_, while_loop, escapes, value_escape, index, mask,
            array_max]


@pytest.mark.parametrize("f", _branchy(), ids=lambda f: f.__name__)
def test_branch_flip_suite(f):
    import revad.numpy

    tr = revad.trace(f, [0.3, -0.4, 0.8])
    outcomes = []
    for _ in range(40):
        x = list(rng.normal(size=3))
        outcomes.append(equal_or_refused(tr, f, [x]))
    assert "equal" in outcomes or f.__name__ in ("escapes", "value_escape")


def test_a_max_replays_where_its_ties_are_as_recorded_and_refuses_elsewhere():
    # rows 0 and 2 tie (their gradient split evenly), row 1 does not; the check runs in C
    # (rv_ties_hold) on the replay's values
    def f(x):
        return np.sum(np.max(x * 1.0, axis=1) ** 2)

    x0 = np.array([[1.0, 3.0, 3.0], [2.0, 0.5, 1.0], [4.0, 4.0, 4.0]])
    tr = revad.trace(f, x0)
    for x in (x0 * 2.0, x0 - 5.0):  # the same ties
        assert equal_or_refused(tr, f, [x]) == "equal"
    moved = x0.copy()
    moved[0] = [3.0, 3.0, 1.0]
    broken = x0.copy()
    broken[2, 0] = 3.0  # row 2 ties two, not three
    for x in (moved, broken):
        with pytest.raises(TraceError, match="the recorded ties when recorded, other ties now"):
            tr.value_and_grad(x)
    # recorded with no ties at all: a new tie refuses; an infinite max ties with nothing
    tr = revad.trace(f, np.array([[1.0, 2.0, 3.0], [6.0, 5.0, 4.0]]))
    assert equal_or_refused(tr, f, [np.array([[0.0, 7.0, 3.0], [6.0, 5.0, -4.0]])]) == "equal"
    with pytest.raises(TraceError, match="no ties when recorded, a tie now"):
        tr.value_and_grad(np.array([[1.0, 3.0, 3.0], [6.0, 5.0, 4.0]]))
    got = tr.value_and_grad(np.array([[1.0, np.inf, np.inf], [6.0, 5.0, 4.0]]))
    assert got[0] == np.inf
    # a pickle carries the check (its C form is rebuilt), and a damaged one is refused
    back = pickle.loads(pickle.dumps(tr))
    with pytest.raises(TraceError, match="a tie now"):
        back.value_and_grad(np.array([[1.0, 3.0, 3.0], [6.0, 5.0, 4.0]]))
    check = [s[3] for s in back._sites() if s[3] is not None][0]
    check.ma = check.ma + 10 ** 6
    check.__dict__.pop("_flat", None)
    with pytest.raises(ValueError, match="damaged"):
        back.value_and_grad(np.array([[1.0, 2.0, 3.0], [6.0, 5.0, 4.0]]))


def test_refusal_says_which_guard_and_where():
    def f(x):
        if x > 1.0:
            return x * 2.0
        return x

    tr = revad.trace(f, 2.0)
    with pytest.raises(TraceError) as e:
        tr.value_and_grad(0.5)
    msg = str(e.value)
    assert "comparison" in msg and "2.0 > 1.0 was True" in msg and "0.5 > 1.0 is False" in msg
    assert f"test_replay.py:{f.__code__.co_firstlineno + 1}" in msg

    tr = revad.trace(lambda x: x * float(x), 2.0)
    with pytest.raises(TraceError, match=r"float\(\).*2.0 when recorded, now 3.0"):
        tr.value_and_grad(3.0)
    assert tr.value_and_grad(2.0) == eager(lambda x: x * float(x), [2.0])


def test_escape_of_an_array_value_and_a_mask_is_guarded():
    def f(x):
        scale = x.value.max()  # leaves for Python: a constant of the recording
        return np.sum(x * scale)

    x = np.array([1.0, 2.0, 3.0])
    tr = revad.trace(f, x)
    same(tr.value_and_grad(x.copy()), eager(f, [x]))
    with pytest.raises(TraceError, match=r"\.value"):
        tr.value_and_grad(np.array([1.0, 2.0, 4.0]))


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
def test_logsumexp_shift_is_recorded_not_guarded(axis):
    # Its stabilising shift (the maximum) is recorded while a trace records, so a replay at new
    # points, overflowing ones included, shifts by the new maximum: bit for bit eager's result.
    def f(x, keep):
        return np.sum(revad.logsumexp(2.0 * x - 1.0, axis=axis, keepdims=keep) ** 2)

    for keep in (False, True):
        x = rng.normal(size=(3, 4))
        tr = revad.trace(f, x, keep)
        assert tr.stats["guards"] == 0
        for scale in (1.0, 3.0, 40.0):
            x2 = scale * rng.normal(size=(3, 4))
            x2[1, 2] = x2[1, 0]  # a tie: the shift's derivative is 0, so nothing splits
            same(tr.value_and_grad(x2, keep), eager(f, [x2, keep]))
        inf = x.copy()
        inf[0, :] = -np.inf  # an all -inf line: no shift, as eager's
        same(tr.value_and_grad(inf, keep), eager(f, [inf, keep]))


def test_scipy_logsumexp_with_b_and_sign_replays_at_new_points():
    # SciPy's b= and return_sign forms: the shift is recorded, b's zeros and the sum's signs are
    # guarded (comparisons), not every element: a replay at new points equals eager, and a new
    # sign refuses
    import scipy.special as ss

    import revad.scipy.special as sp

    def f(x, b, axis):
        r, sign = sp.logsumexp(x, axis=axis, b=b, return_sign=True)
        return np.sum(r * sign) + np.sum(sp.logsumexp(x, axis=axis, b=b * b))

    for axis in (None, 1, -1):
        x = rng.normal(size=(3, 4))
        b = rng.uniform(0.5, 2.0, size=(3, 4))
        b[0, 1] = 0.0  # left out of the shift, as SciPy leaves it
        if axis is not None:
            b[2, :] *= -1.0  # a negative sum in row 2
        tr = revad.trace(f, x, b, axis, argnums=(0, 1))
        sums = 1 if axis is None else 3  # guards: 3 per signed sum, b's zeros in each call
        assert tr.stats["guards"] == 3 * sums + 2 * b.size
        for scale in (1.0, 30.0):
            x2 = scale * rng.normal(size=(3, 4))
            same(tr.value_and_grad(x2, b * 1.5, axis), eager(f, [x2, b * 1.5, axis], (0, 1)))
        r, sign = sp.logsumexp(revad.Array(x2), axis=axis, b=b, return_sign=True)
        want = ss.logsumexp(x2, axis=axis, b=b, return_sign=True)
        np.testing.assert_allclose(r.value, want[0], rtol=1e-13)
        np.testing.assert_array_equal(sign, want[1])
        flipped = -b
        flipped[0, 1] = 0.0
        with pytest.raises(TraceError):
            tr.value_and_grad(x, flipped, axis)
    # b broadcasting a up, with a as data and b differentiated
    g = lambda b, a: np.sum(sp.logsumexp(a, b=b, axis=0))  # noqa: E731
    a, b = rng.normal(size=3), rng.uniform(1.0, 2.0, size=(2, 3))
    tr = revad.trace(g, b, a)
    assert tr.stats["guards"] == b.size  # (b's zeros: none)
    b2, a2 = rng.uniform(1.0, 2.0, size=(2, 3)), 5.0 * rng.normal(size=3)
    same(tr.value_and_grad(b2, a2), eager(g, [b2, a2]))
    # over every axis of the broadcast shape, as SciPy's (not only a's)
    np.testing.assert_allclose(sp.logsumexp(revad.Array(a2), b=b2).value,
                               ss.logsumexp(a2, b=b2), rtol=1e-14)


def test_new_shapes_and_dtypes_are_refused_clearly():
    tr = revad.trace(lambda x: np.sum(x * x), np.ones(3))
    with pytest.raises(ValueError, match=r"shape \(3,\).*shape \(4,\)"):
        tr.value_and_grad(np.ones(4))
    with pytest.raises(ValueError, match="float32"):
        tr.value_and_grad(np.ones(3, dtype=np.float32))
    with pytest.raises(ValueError, match="got a list"):
        tr.value_and_grad([1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="1 positional argument"):
        tr.value_and_grad(np.ones(3), 1.0)
    tr = revad.trace(lambda x: x[0] * x[1], [1.0, 2.0])
    with pytest.raises(ValueError, match="list of 2"):
        tr.value_and_grad([1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="number"):
        tr.value_and_grad([1.0, "a"])
    tr = revad.trace(lambda p: p["a"] * 2.0, {"a": 1.0})
    with pytest.raises(ValueError, match="keys"):
        tr.value_and_grad({"b": 1.0})


def test_misuse_at_record_time():
    with pytest.raises(TypeError, match="argnums"):
        revad.trace(lambda x: x, 1.0, argnums=3)
    with pytest.raises(TypeError, match="differentiable"):
        revad.trace(lambda s: 1.0, "a")


# -- batch, threads, pickle --------------------------------------------------------------------

def rosen(x):
    t = 0.0
    for i in range(len(x) - 1):
        t = t + 100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2
    return t


def test_batch_equals_a_loop():
    tr = revad.trace(rosen, np.zeros(20))
    X = rng.normal(size=(9, 20))
    values, grads = tr.batch(X)
    assert values.shape == (9,) and grads.shape == (9, 20)
    for j in range(9):
        v, g = tr.value_and_grad(X[j])
        assert values[j] == v and np.array_equal(grads[j], g)

    def f(w, X, y):
        return np.sum((X @ w - y) ** 2)

    tr = revad.trace(f, np.zeros(3), rng.normal(size=(5, 3)), rng.normal(size=5), argnums=0)
    W = rng.normal(size=(4, 3))
    X, y = rng.normal(size=(5, 3)), rng.normal(size=5)
    values, grads = tr.batch(W, X, y)
    for j in range(4):
        v, g = eager(f, (W[j], X, y))
        assert values[j] == pytest.approx(v, rel=1e-12)
        np.testing.assert_allclose(grads[j], g, rtol=1e-12)


def test_batch_of_a_list_of_numbers_either_layout_and_nested():
    # A list of k numbers batched: an (m, k) array, or a list of the k numbers' (m,) batches
    # (as compile's batch and the leaves of a structure take it). m == k here, so reading one
    # layout as the other would give other points, silently.
    def f(p):
        return p[0] * p[1][0] + p[1][1] ** 2 + p[0] * p[1][1]

    a, b, c = np.array([1.0, 2.0]), np.array([2.0, 5.0]), np.array([3.0, 7.0])
    rows = [[a[j], [b[j], c[j]]] for j in range(2)]
    tr = revad.trace(f, rows[0])
    loop = [tr.value_and_grad(r) for r in rows]
    want_v = np.array([v for v, _ in loop])
    for arg in ([a, [b, c]], [a, np.stack([b, c], axis=1)], (a, (b, c))):
        for run in (tr.batch, revad.compile(f).batch):
            values, (g0, g1) = run(list(arg) if isinstance(arg, tuple) else arg)
            assert np.array_equal(values, want_v)
            assert np.array_equal(g0, [g[0] for _, g in loop])
            assert np.array_equal(g1, [g[1] for _, g in loop])  # (m, k): a list leaf's rows


def test_batch_names_the_row_that_fails():
    tr = revad.trace(lambda x: x[0] * 2.0 if x[0] > 0 else x[1], np.ones(2))
    X = np.ones((5, 2))
    X[3, 0] = -1.0
    with pytest.raises(TraceError, match="batch row 3"):
        tr.batch(X)


def rosen_grad(x):
    """The analytic gradient of rosen: the independent reference."""
    g = np.zeros_like(x)
    d = x[1:] - x[:-1] ** 2
    g[:-1] += -400.0 * x[:-1] * d - 2.0 * (1.0 - x[:-1])
    g[1:] += 200.0 * d
    return g


def routes(fn):
    """fn()'s result, and which routes its batches took ({"c": n, "python": n})."""
    from revad import _trace
    before = dict(_trace._batch_routes)
    out = fn()
    return out, {k: _trace._batch_routes[k] - before[k] for k in before}


def loop(tr, args, nums, m):
    """value_and_grad at each row of a batch, stacked as batch() stacks them."""
    from revad._trace import _row, _stack
    plans, rows = tr._plans(), []
    for j in range(m):
        row = list(args)
        for k in set(nums):
            row[k] = _row(args[k], j, plans[k])
        rows.append(tr.value_and_grad(*row))
    values = np.array([r[0] for r in rows])
    if isinstance(tr.info["argnums"], (tuple, list)):
        return values, tuple(_stack([r[1][i] for r in rows]) for i in range(len(nums)))
    return values, _stack([r[1] for r in rows])


def same_batch(got, want):
    """Two batches' (values, gradients): equal bit for bit, structure and dtypes included."""
    assert np.array_equal(got[0], want[0]) and got[0].dtype == np.float64
    g1, g2 = got[1], want[1]
    assert type(g1) is type(g2)
    if isinstance(g2, dict):
        assert list(g1) == list(g2)
        g1, g2 = list(g1.values()), list(g2.values())
    if isinstance(g2, (list, tuple)):
        for a, b in zip(g1, g2, strict=True):
            same_batch((got[0], a), (want[0], b))
        return
    assert g1.shape == g2.shape and g1.dtype == g2.dtype == np.float64
    assert np.array_equal(g1, g2)


def test_batch_rows_in_c_equal_a_loop_bit_for_bit():
    # The C route (the rows without the GIL) for numbers, lists, arrays and structures of them,
    # shared float arguments and arguments never read: each row what value_and_grad gives.
    X = rng.uniform(-1.5, 1.5, size=(40, 30))
    tr = revad.trace(rosen, np.zeros(30))
    (values, grads), taken = routes(lambda: tr.batch(X))
    assert taken == {"c": 1, "python": 0}
    same_batch((values, grads), loop(tr, (X,), (0,), 40))
    for j in (0, 17, 39):  # and the independent reference
        np.testing.assert_allclose(grads[j], rosen_grad(X[j]), rtol=1e-12)
        assert values[j] == pytest.approx(sum(100 * (X[j, 1:] - X[j, :-1] ** 2) ** 2
                                              + (1 - X[j, :-1]) ** 2), rel=1e-12)

    def g(p, data, scale, unused):
        return scale * (rosen(p["x"]) + p["s"] * np.sum(revad.sin(p["t"][0]))
                        + np.sum(data * p["t"][1]))

    p0 = {"x": [0.0] * 5, "s": 1.0, "t": (np.zeros(2), np.zeros((2, 2), dtype=np.float32))}
    data = rng.normal(size=(2, 2))
    tr = revad.trace(g, p0, data, 0.5, np.zeros(3), argnums=(0, 3))
    m = 7
    P = {"x": rng.normal(size=(m, 5)), "s": rng.normal(size=m),
         "t": (rng.normal(size=(m, 2)), rng.normal(size=(m, 2, 2)))}
    U = rng.normal(size=(m, 3))
    got, taken = routes(lambda: tr.batch(P, data, 0.75, U))
    assert taken == {"c": 1, "python": 0}
    want = loop(tr, (P, data, 0.75, U), (0, 3), m)
    same_batch(got, want)
    assert np.array_equal(got[1][1], np.zeros((m, 3)))  # never read: no gradient
    # the float32 leaf was rounded to float32 first, as a call rounds it
    row = {"x": list(P["x"][2]), "s": P["s"][2],
           "t": (P["t"][0][2], P["t"][1][2].astype(np.float32))}
    v, gr = eager(g, (row, data, 0.75, U[2]), (0, 3))
    assert got[0][2] == v and np.array_equal(got[1][0]["t"][1][2], gr[0]["t"][1])

    tr = revad.trace(lambda x: 3.0, 1.0)  # a constant: each row's value, a zero gradient
    got, taken = routes(lambda: tr.batch(np.arange(4.0)))
    assert taken["c"] == 1 and got[0].tolist() == [3.0] * 4 and got[1].tolist() == [0.0] * 4


def test_batch_threads_give_serial_results_bit_for_bit():
    from revad import _core
    X = rng.uniform(-2.0, 2.0, size=(300, 60))  # past the work under which one thread runs
    tr = revad.trace(rosen, np.zeros(60))
    old = _core._set_helpers(3)
    try:
        (serial, taken) = routes(lambda: tr.batch(X, threads=1))
        assert taken == {"c": 1, "python": 0}
        for threads in (2, 4):
            for _ in range(3):
                same_batch(tr.batch(X, threads=threads), serial)
    finally:
        _core._set_helpers(old)
    same_batch(serial, loop(tr, (X,), (0,), 300))
    assert tr._buffers_clean()


def test_batch_in_c_names_the_first_row_that_fails_whatever_the_threads():
    def f(x):
        return rosen(x) if x[0] > 0 else -rosen(x)

    tr = revad.trace(f, np.ones(60))
    X = rng.uniform(0.5, 1.5, size=(300, 60))
    X[[41, 150, 299], 0] = -1.0
    for threads in (1, 2):
        with pytest.raises(TraceError, match=r"\(batch row 41\).* 1.0 > 0.0 was True"):
            routes(lambda: tr.batch(X, threads=threads))
    X[41, 0] = 1.0
    out, taken = routes(lambda: tr.batch(X[:100], threads=2))
    assert taken == {"c": 1, "python": 0}
    same_batch(out, loop(tr, (X[:100],), (0,), 100))
    # revad.compile's batch: a failing row makes it go row by row, each row a call
    cf = revad.compile(f)
    values, grads = cf.batch(X[140:160])
    for j in range(20):
        v, g = eager(f, (X[140 + j],))
        assert values[j] == v and np.array_equal(grads[j], g)


def test_batch_goes_row_by_row_where_a_row_needs_python():
    # A primitive's function and a max's ties run in Python: the rows go through the call path.
    def f(x):
        return np.sum(softsign(x)) + rosen(x)

    tr = revad.trace(f, np.zeros(4))
    X = rng.normal(size=(6, 4))
    got, taken = routes(lambda: tr.batch(X))
    assert taken == {"c": 0, "python": 1}
    same_batch(got, loop(tr, (X,), (0,), 6))

    tr = revad.trace(lambda x: np.max(x * x), np.array([1.0, 2.0, 3.0]))
    got, taken = routes(lambda: tr.batch(rng.normal(size=(5, 3))))
    assert taken == {"c": 0, "python": 1}

    # arguments not as recorded go row by row too, and meet the call's errors
    tr = revad.trace(lambda x: np.sum(x * x), np.zeros(3))
    with pytest.raises(ValueError, match="shape"):
        routes(lambda: tr.batch(np.ones((4, 2))))


def test_threads_replaying_one_trace_give_serial_results():
    tr = revad.trace(rosen, np.zeros(200))
    X = rng.normal(size=(16, 200))
    serial = [tr.value_and_grad(x) for x in X]
    out = [None] * 16

    def run(k):
        for j in range(k, 16, 4):
            out[j] = tr.value_and_grad(X[j])

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (v1, g1), (v2, g2) in zip(out, serial, strict=True):
        assert v1 == v2 and np.array_equal(g1, g2)


def test_pickle_round_trip_in_a_fresh_process(tmp_path):
    def f(w, X):
        return np.sum(np.tanh(X @ w) * np.arange(4.0)) + rosen(w) + np.sum(softsign(w))

    w, X = rng.normal(size=3), rng.normal(size=(4, 3))
    tr = revad.trace(f, w, X)
    w2, X2 = rng.normal(size=3), rng.normal(size=(4, 3))
    want = tr.value_and_grad(w2, X2)
    path = tmp_path / "trace.pkl"
    path.write_bytes(pickle.dumps((tr, w2, X2)))
    code = (f"import pickle, numpy as np, sys; sys.path[:0] = [{HERE!r}, {ROOT!r}]\n"
            f"tr, w, X = pickle.loads(open({str(path)!r}, 'rb').read())\n"
            "v, g = tr.value_and_grad(w, X)\n"
            "print(repr(v)); print(repr(g.tolist()))\n")
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=HERE, timeout=120)
    assert out.returncode == 0, out.stderr
    v, g = out.stdout.strip().splitlines()
    assert float(v) == want[0] and eval(g) == want[1].tolist()


def test_stats():
    tr = revad.trace(rosen, list(np.zeros(10)))
    s = tr.stats
    assert s["entries"] == revad.tape_info(revad.Var(0.0) * 1.0)["n_ops"] * 0 + s["entries"]
    assert s["entries"] > 10 * 7 and 17 <= s["tape_bytes_per_entry"] < 40
    assert s["bytes_per_entry"] == s["tape_bytes_per_entry"] + 16.0
