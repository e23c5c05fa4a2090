"""revad.compile: a drop-in for value_and_grad that records once per argument structure and
branch pattern and replays after. Every call is checked against eager value_and_grad at the
same point (the route compile replaces), across code whose branches flip between calls."""
import math
import os
import pickle
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

import revad


def same(got, want):
    """Compiled and eager results agree: the value, and every gradient in the same structure."""
    (v, g), (rv, rg) = got, want
    assert v == pytest.approx(rv, rel=1e-13, abs=1e-300)
    _same_tree(g, rg)


def _same_tree(g, rg):
    if isinstance(rg, (list, tuple)):
        assert type(g) is type(rg) and len(g) == len(rg)
        for a, b in zip(g, rg, strict=True):
            _same_tree(a, b)
    elif isinstance(rg, dict):
        assert g.keys() == rg.keys()
        for k in rg:
            _same_tree(g[k], rg[k])
    elif isinstance(rg, np.ndarray):
        assert isinstance(g, np.ndarray) and g.shape == rg.shape
        np.testing.assert_allclose(g, rg, rtol=1e-13, atol=1e-300)
    else:
        assert type(g) is type(rg)
        assert g == pytest.approx(rg, rel=1e-13, abs=1e-300)


# --- the branch-flip suite: each function, at points that take its branches both ways --------

def if_else(x):
    return x * x if x > 0 else -x * x * x


def max_min_abs(x):
    return max(x[0], x[1]) * min(x[1], x[2]) + abs(x[0] - x[2])


def while_loop(x):
    y, steps = x, 0
    while y < 10.0:  # the number of steps depends on x
        y = y * 2.0 + x
        steps += 1
    return y * steps


def escape_float(x):
    return x * math.sin(float(x))  # float(x): a constant to the tape, guarded on replay


def escape_int(x):
    return x ** int(x)


def escape_bool(x):
    return x * 3.0 if bool(x - 1.0) else x


def escape_value(x):
    return x * x.value


def escape_math(x):
    return x * math.exp(x)  # math.exp takes float(x)


def escape_index(x, table):
    return x * table[int(abs(x)) % len(table)]


def array_mask(a):
    return np.sum(np.where(a > 0, a * a, -0.5 * a))


def boolean_index(a):
    return np.sum(a[a > 0.5] ** 2) + np.sum(a)


def sorted_scalars(x):
    s = sorted(x)
    return s[0] * 2.0 + s[-1] * s[1]


CASES = [
    (if_else, lambda r: float(r.normal())),
    (max_min_abs, lambda r: list(r.normal(size=3))),
    (while_loop, lambda r: float(r.uniform(0.3, 4.0))),
    (escape_float, lambda r: float(r.normal())),
    (escape_int, lambda r: float(r.uniform(0.5, 3.5))),
    (escape_bool, lambda r: float(r.choice([1.0, r.normal()]))),
    (escape_value, lambda r: float(r.normal())),
    (escape_math, lambda r: float(r.normal())),
    (array_mask, lambda r: r.normal(size=6)),
    (boolean_index, lambda r: r.uniform(size=5)),
    (sorted_scalars, lambda r: list(r.normal(size=3))),
]


@pytest.mark.filterwarnings("ignore::revad.CompileWarning")  # (escapes record on most calls)
@pytest.mark.parametrize("f, point", CASES, ids=[f.__name__ for f, _ in CASES])
def test_every_call_equals_eager_as_branches_flip(f, point):
    rng = np.random.default_rng(7)
    cf = revad.compile(f)
    eager = revad.value_and_grad(f)
    points = [point(rng) for _ in range(25)]
    for x in points + points[:5]:  # again: the recorded patterns replay
        same(cf(x), eager(x))
    stats = cf.stats
    assert stats["records"] + stats["replays"] == stats["calls"] == 30
    assert stats["records"] >= 1


@pytest.mark.filterwarnings("ignore::revad.CompileWarning")
def test_a_data_dependent_index_is_guarded():
    table = [1.0, -2.0, 3.0, 0.5]
    cf = revad.compile(escape_index)
    eager = revad.value_and_grad(escape_index)
    for x in [0.5, 0.7, 1.5, -2.5, 3.2, 0.1, 1.9]:
        same(cf(x, table), eager(x, table))
    # 0.5, 0.7 and 0.1 index table[0]: only the first of them records (int(abs(x)) is guarded
    # as a value; a replay at another value of x fails it): every call records or equals eager.
    assert cf.stats["records"] >= 4


def test_new_shapes_record_again_and_both_replay():
    def f(a):
        return np.sum(np.sin(a) * a)

    cf, eager = revad.compile(f), revad.value_and_grad(f)
    rng = np.random.default_rng(0)
    for n in (3, 4, 3, 4, 5):
        a = rng.normal(size=n)
        same(cf(a), eager(a))
    assert cf.stats["records"] == 3 and cf.stats["replays"] == 2
    a2 = rng.normal(size=(2, 3))
    same(cf(a2), eager(a2))
    assert cf.stats["records"] == 4
    # float32 is another dtype: another record
    a32 = rng.normal(size=3).astype(np.float32)
    same(cf(a32), eager(a32))
    assert cf.stats["records"] == 5


def test_new_data_and_new_scalar_arguments_are_used_on_replay():
    def loss(w, X, y, lam):
        r = X @ w - y
        return 0.5 * np.sum(r * r) + lam * np.sum(w * w)

    rng = np.random.default_rng(1)
    cf, eager = revad.compile(loss), revad.value_and_grad(loss)
    w = rng.normal(size=4)
    for _ in range(4):  # a new minibatch and a new hyper-parameter each call
        X, y, lam = rng.normal(size=(10, 4)), rng.normal(size=10), float(rng.uniform())
        same(cf(w, X, y, lam), eager(w, X, y, lam))
    assert cf.stats["records"] == 1 and cf.stats["replays"] == 3


def test_static_int_arguments_are_part_of_the_key():
    def power_sum(x, k):
        total = 0.0
        for _ in range(k):  # k sets the loop count: no traced comparison could guard it
            total = total + x
        return total * x

    cf = revad.compile(power_sum)
    for k in (2, 3, 2, 3):
        assert cf(1.5, k) == revad.value_and_grad(power_sum)(1.5, k)
    assert cf.stats["records"] == 2 and cf.stats["replays"] == 2


def test_pytree_arguments_and_tuple_argnums():
    def f(p, x, scale):
        return scale * (p["w"][0] * x[0] + p["w"][1] * x[1] + p["b"]) ** 2

    cf = revad.compile(f, argnums=(0, 1))
    eager = revad.value_and_grad(f, argnums=(0, 1))
    rng = np.random.default_rng(2)
    for _ in range(3):
        p = {"w": [float(rng.normal()), float(rng.normal())], "b": float(rng.normal())}
        x = rng.normal(size=2)
        same(cf(p, x, 0.5), eager(p, x, 0.5))
    assert cf.stats["records"] == 1


def test_value_grad_and_second_order():
    def f(x):
        return np.sum(np.exp(x) * x[::-1]) if x[0] > 0 else np.sum(x ** 3)

    cf = revad.compile(f)
    x = np.array([0.3, -0.2, 0.7])
    v, g = revad.value_and_grad(f)(x)
    assert cf.value(x) == v
    np.testing.assert_array_equal(cf.grad(x), g)
    vec = np.array([1.0, 0.5, -1.0])
    np.testing.assert_allclose(cf.hvp(x, vec), revad.hvp(f)(x, vec), rtol=1e-14)
    np.testing.assert_allclose(cf.hessian(x), revad.hessian(f)(x), rtol=1e-14)


# hvp and hessian take a number or an array (revad.hvp's arguments), not a list
SECOND_CASES = [(f, p) for f, p in CASES if not isinstance(p(np.random.default_rng(0)), list)]


@pytest.mark.filterwarnings("ignore::revad.CompileWarning")
@pytest.mark.parametrize("f, point", SECOND_CASES, ids=[f.__name__ for f, _ in SECOND_CASES])
def test_hvp_and_hessian_replay_and_equal_eager_as_branches_flip(f, point):
    rng = np.random.default_rng(8)
    cf = revad.compile(f)
    points = [point(rng) for _ in range(12)]
    for x in points + points[:4]:
        v = rng.normal(size=np.shape(x)) if np.ndim(x) else float(rng.normal())
        got, want = cf.hvp(x, v), revad.hvp(f)(x, v)
        assert type(got) is type(want)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(cf.hessian(x), revad.hessian(f)(x), rtol=1e-12, atol=1e-12)
    stats = cf.stats
    assert stats["records"] + stats["replays"] == stats["calls"] == 32
    assert stats["replays"] >= 16  # (hessian at least replays what hvp just recorded)


def test_hvp_shares_the_recordings_of_value_and_grad():
    cf = revad.compile(lambda x, a: np.sum(np.sin(x) * a) * x[0])
    x, a = np.array([0.1, 0.2]), np.array([1.0, 2.0])
    cf(x, a)
    x2, a2, v = np.array([0.7, -0.4]), np.array([3.0, -1.0]), np.array([1.0, 2.0])
    want = revad.hvp(lambda x, a: np.sum(np.sin(x) * a) * x[0])(x2, a2, v)
    np.testing.assert_allclose(cf.hvp(x2, a2, v), want, rtol=1e-14)
    cf.hessian(x2, a2)
    assert (cf.stats["records"], cf.stats["replays"]) == (1, 2)
    cf.hvp(np.zeros(3), a2[:1].repeat(3), np.ones(3))  # a new shape: recorded for it
    assert (cf.stats["records"], cf.stats["replays"]) == (2, 2)


# --- the cache ---------------------------------------------------------------------------------

def test_stats_count_records_replays_and_guard_failures():
    cf = revad.compile(if_else)
    for x in (1.0, 2.0, -1.0, -2.0, 3.0, 4.0):
        same(cf(x), revad.value_and_grad(if_else)(x))
    s = cf.stats
    # 1.0 records; 2.0 replays; -1.0 fails the positive trace's guard and records; -2.0 replays
    # the negative trace (now the most recent); 3.0 fails it and replays the positive one;
    # 4.0 replays the positive one first try.
    assert (s["records"], s["replays"], s["calls"], s["traces"]) == (2, 4, 6, 2)
    assert sum(s["guard_failures"].values()) == 2


def test_the_cache_is_bounded_least_recently_used_first():
    def f(a):
        return np.sum(a * a)

    cf = revad.compile(f, cache_size=2)
    a3, a4, a5 = np.ones(3), np.ones(4), np.ones(5)
    cf(a3), cf(a4), cf(a3)  # a4 is now the least recently used
    cf(a5)  # evicts a4
    s = cf.stats
    assert (s["records"], s["traces"], s["evictions"]) == (3, 2, 1)
    cf(a3)
    assert cf.stats["records"] == 3  # a3 kept
    cf(a4)
    assert cf.stats["records"] == 4  # a4 recorded again
    assert cf.stats["traces"] == 2


def test_one_warning_for_a_function_whose_guards_fail_on_most_calls():
    cf = revad.compile(escape_float)
    rng = np.random.default_rng(3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for x in rng.normal(size=60):
            same(cf(float(x)), revad.value_and_grad(escape_float)(float(x)))
    mine = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(mine) == 1
    text = str(mine[0].message)
    assert "compile cannot help" in text and "test_compile.py" in text
    assert cf.stats["records"] == 60


def test_no_warning_when_the_branches_replay():
    cf = revad.compile(if_else)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for k in range(60):
            cf(1.0 + k if k % 2 else -1.0 - k)
    assert cf.stats["records"] == 2


def test_wraps_the_function():
    cf = revad.compile(if_else)
    assert cf.__name__ == "if_else" and cf.__wrapped__ is if_else
    assert "if_else" in repr(cf)


def test_threads_replaying_one_compiled_function_give_the_serial_results():
    def f(x):
        return np.sum(np.tanh(x) * x) if x[0] > 0 else np.sum(x * x)

    cf = revad.compile(f)
    rng = np.random.default_rng(4)
    points = [rng.normal(size=50) for _ in range(40)]
    serial = [revad.value_and_grad(f)(x) for x in points]
    results = [None] * len(points)

    def work(j):
        for i in range(j, len(points), 4):
            results[i] = cf(points[i])

    threads = [threading.Thread(target=work, args=(j,)) for j in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, serial, strict=True):
        assert got[0] == want[0]
        np.testing.assert_array_equal(got[1], want[1])


def test_batch_equals_a_loop_and_a_row_that_flips_records_apart():
    def f(x, c):
        return np.sum(x * x) * c if x[0] > 0 else np.sum(np.sin(x)) * c

    cf = revad.compile(f)
    rng = np.random.default_rng(5)
    xs = rng.normal(size=(12, 3))
    xs[:, 0] = np.abs(xs[:, 0])
    xs[7, 0] = -1.0  # one row takes the other branch
    values, grads = cf.batch(xs, 2.0)
    for i in range(12):
        v, g = revad.value_and_grad(f)(xs[i], 2.0)
        assert values[i] == pytest.approx(v, rel=1e-13)
        np.testing.assert_allclose(grads[i], g, rtol=1e-13)


# --- pickle --------------------------------------------------------------------------------------

def loss_for_pickle(w, X):
    r = np.tanh(X @ w)
    return np.sum(r * r) if w[0] > -10.0 else np.sum(r)


def test_pickle_round_trip_in_a_fresh_process(tmp_path):
    rng = np.random.default_rng(6)
    w, X = rng.normal(size=3), rng.normal(size=(8, 3))
    cf = revad.compile(loss_for_pickle)
    cf(w, X)
    w2, X2 = rng.normal(size=3), rng.normal(size=(8, 3))
    want = revad.value_and_grad(loss_for_pickle)(w2, X2)
    path = tmp_path / "cf.pkl"
    path.write_bytes(pickle.dumps((cf, w2, X2)))
    code = ("import pickle, sys, numpy as np\n"
            "sys.path.insert(0, sys.argv[2])\n"
            "cf, w, X = pickle.loads(open(sys.argv[1], 'rb').read())\n"
            "before = cf.stats['traces']\n"
            "v, g = cf(w, X)\n"
            "print(repr(v), ' '.join(repr(float(e)) for e in g), before,"
            " cf.stats['records'], cf.stats['replays'])\n")
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-c", code, str(path), os.path.dirname(__file__)],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    fields = out.stdout.split()
    assert float(fields[0]) == want[0]
    np.testing.assert_array_equal([float(e) for e in fields[1:4]], want[1])
    # the recording came along: the fresh process replays it without recording
    assert fields[4:] == ["1", "0", "1"]


def test_pickling_a_lambda_says_why_it_cannot():
    cf = revad.compile(lambda x: x * x)
    with pytest.raises(pickle.PicklingError, match="lambda.*by reference"):
        pickle.dumps(cf)

    def inner(x):
        return x * x

    with pytest.raises(pickle.PicklingError, match="inside another function"):
        pickle.dumps(revad.compile(inner))


# --- misuse ---------------------------------------------------------------------------------

def test_bad_input():
    with pytest.raises(TypeError, match="callable"):
        revad.compile(3.0)
    with pytest.raises(TypeError, match="argnums"):
        revad.compile(if_else, argnums="x")
    with pytest.raises(ValueError, match="cache_size"):
        revad.compile(if_else, cache_size=0)
    with pytest.raises(TypeError, match="out of range"):
        revad.compile(if_else, argnums=2)(1.0)
    with pytest.raises(TypeError, match="complex|real"):
        revad.compile(if_else)(1j)
    with pytest.raises(TypeError, match="scalar"):
        revad.compile(lambda a: a * 2)(np.ones(3))
    cf = revad.compile(lambda x, y: np.sum(x * y), argnums=(0, 1))
    with pytest.raises(ValueError, match="leading"):
        cf.batch(np.ones((3, 2)), np.ones((4, 2)))
    with pytest.raises(TypeError, match="leading batch axis"):
        cf.batch(1.0, np.ones((4, 2)))


def test_the_examples_in_compiles_docstrings():
    import doctest

    import revad._compile
    result = doctest.testmod(revad._compile, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted >= 10
