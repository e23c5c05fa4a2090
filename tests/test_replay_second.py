"""Second order replayed from a trace: Trace.hvp and Trace.hessian (a forward replay, then
revad.hvp's tangent and second-order sweeps in C over the replayed values) must give what eager
revad.hvp / revad.hessian give at the same new point -- to 1e-12, since a product's sum may run
in another order -- or raise TraceError where a guard fails; never the recorded point's."""
import pickle
import threading

import numpy as np
import pytest

import revad
from revad import TraceError

from test_replay import softsign  # (a primitive: no second-order rule in C)

rng = np.random.default_rng(1818)


def close(got, want, rtol=1e-12):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * (1 + np.abs(want).max(initial=0)))


def check(f, args, new_points, argnums=0):
    """tr.hvp and tr.hessian at each new point equal eager revad.hvp and revad.hessian there,
    with the same types and shapes."""
    tr = revad.trace(f, *args, argnums=argnums)
    for new in new_points:
        x = new[argnums]
        v = rng.normal(size=np.shape(x)) if np.ndim(x) else float(rng.normal())
        got, want = tr.hvp(*new, v), revad.hvp(f, argnums)(*new, v)
        assert type(got) is type(want)
        close(got, want)
        got, want = tr.hessian(*new), revad.hessian(f, argnums)(*new)
        assert type(got) is type(want)
        close(got, want)
    assert tr._buffers_clean()
    return tr


def rosen(x):
    t = 0.0
    for i in range(len(x) - 1):
        t = t + 100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2
    return t


def rosen_hessian(x):
    """The analytic Hessian of rosen: the independent reference."""
    n = len(x)
    H = np.zeros((n, n))
    for i in range(n - 1):
        H[i, i] += 1200 * x[i] ** 2 - 400 * x[i + 1] + 2
        H[i + 1, i + 1] += 200
        H[i, i + 1] -= 400 * x[i]
        H[i + 1, i] -= 400 * x[i]
    return H


def np_rosen(x):
    return np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


# -- equal to eager at new points ----------------------------------------------------------------

def test_scalar_loop_rosenbrock_against_its_analytic_hessian_and_eager():
    tr = check(rosen, (np.zeros(12),), [(rng.normal(size=12),) for _ in range(4)])
    x = rng.normal(size=12)
    close(tr.hessian(x), rosen_hessian(x))
    v = rng.normal(size=12)
    close(tr.hvp(x, v), rosen_hessian(x) @ v)


def test_scalar_functions_of_a_number_and_new_data():
    def f(x, a, b):
        return revad.sigmoid(a * x + b) * revad.exp(-x * x) + revad.log(1.0 + a * a * x ** 4)

    check(f, (0.3, 1.5, -0.5), [(float(rng.normal()), float(rng.normal()), float(rng.normal()))
                                for _ in range(4)])
    # the second argument differentiated: the first is data then
    check(f, (0.3, 1.5, -0.5), [(float(rng.normal()), float(rng.normal()), float(rng.normal()))
                                for _ in range(3)], argnums=1)
    # d2/dx2 of x**3 * a at x = 2, a = 5: 6 x a = 60 (not the recorded a = 1)
    tr = revad.trace(lambda x, a: x ** 3 * a, 1.0, 1.0)
    assert tr.hvp(2.0, 5.0, 1.0) == 60.0
    assert tr.hessian(2.0, 5.0).shape == ()
    assert float(tr.hessian(2.0, 5.0)) == 60.0


def test_numpy_elementwise_sums_dot_and_matmul_with_new_data():
    A = rng.normal(size=(4, 6))
    fs = {
        "rosenbrock": (np_rosen, (np.ones(9),)),
        "elementwise": (lambda x, c: np.sum(np.tanh(x * c) * np.exp(-x) + np.sqrt(1.0 + x * x)),
                        (np.ones(6), np.ones(6))),
        "sums": (lambda x, c: np.sum(np.sum((x.reshape(2, 3) * c.reshape(2, 3)) ** 2, axis=0)
                                     ** 1.5), (np.ones(6), np.ones(6))),
        "dot": (lambda x, c: (x @ c) ** 2 + np.sin(x) @ np.cos(x), (np.ones(6), np.ones(6))),
        "dotc": (lambda x, c: (x @ np.arange(6.0)) ** 3 * c[0], (np.ones(6), np.ones(6))),
        "mm_small": (lambda x, c: np.sum(np.tanh(x.reshape(6, 1) @ c.reshape(1, 6))),
                     (np.ones(6), np.ones(6))),
        "mm_const": (lambda x, c: np.sum((A @ x) ** 3 * c[:4]), (np.ones(6), np.ones(6))),
        "matrix": (lambda X, W: np.sum(np.tanh(X @ W) ** 2), (np.ones((3, 4)), np.ones((4, 2)))),
    }
    for f, args in fs.values():
        new = [tuple(rng.normal(size=np.shape(a)) * 0.7 for a in args) for _ in range(3)]
        check(f, args, new)
        if len(args) > 1:
            check(f, args, new, argnums=1)



def test_large_matrix_products_through_blas():
    def f(W, X):
        return np.sum(np.tanh(X @ W) ** 2)

    W, X = rng.normal(size=(40, 30)) * 0.1, rng.normal(size=(50, 40))
    tr = revad.trace(f, W, X)
    for _ in range(2):
        W2, X2 = rng.normal(size=W.shape) * 0.1, rng.normal(size=X.shape)
        V = rng.normal(size=W.shape)
        close(tr.hvp(W2, X2, V), revad.hvp(f)(W2, X2, V))
        close(tr.hvp(W2, X2, V), revad.hvp(f)(W2, X2, V))
    assert tr._buffers_clean()


def test_argnums_as_revad_hvp_takes_them():
    def f(x, y):
        return np.sum(x * x * y)

    x, y = rng.normal(size=3), rng.normal(size=3)
    # one argnum, an int, as revad.hvp and revad.hessian take (not a tuple): the same TypeError
    for nums in [(0,), (0, 1), [1]]:
        tr = revad.trace(f, x, y, argnums=nums)
        assert tr.value_and_grad(x, y)[1][0].shape == (3,)  # (the trace itself serves)
        with pytest.raises(TypeError, match="takes one argnum, an int") as eager_error:
            revad.hvp(f, nums)
        with pytest.raises(TypeError, match="takes one argnum, an int") as e:
            tr.hvp(x, y, x)
        assert str(e.value) == str(eager_error.value)
        with pytest.raises(TypeError, match="hessian takes one argnum, an int"):
            tr.hessian(x, y)
        with pytest.raises(TypeError, match="takes one argnum, an int"):
            revad.compile(f, nums).hvp(x, y, x)
    # a negative argnum counts from the end, as eager's
    tr = revad.trace(f, x, y, argnums=-1)
    close(tr.hvp(x, y, x), revad.hvp(f, -1)(x, y, x))
    # a list of numbers is not something revad.hvp differentiates in: the same TypeError
    def g(p):
        return p[0] * p[1] ** 2

    with pytest.raises(TypeError, match="a number or an array; got a list"):
        revad.hvp(g)([1.0, 2.0], [1.0, 0.0])
    with pytest.raises(TypeError, match="a number or an array; got a list"):
        revad.trace(g, [1.0, 2.0]).hvp([1.0, 2.0], [1.0, 0.0])


def test_a_constant_result_a_returned_input_and_an_unread_argument():
    for f in (lambda x, y: 3.0, lambda x, y: x[1], lambda x, y: np.sum(y ** 3)):
        tr = revad.trace(f, np.ones(3), np.ones(2))
        x, y = rng.normal(size=3), rng.normal(size=2)
        v = rng.normal(size=3)
        got, want = tr.hvp(x, y, v), revad.hvp(f)(x, y, v)
        assert np.array_equal(got, want) and not got.any()
        assert np.array_equal(tr.hessian(x, y), revad.hessian(f)(x, y))
    tr = revad.trace(lambda x: x, 1.0)
    assert tr.hvp(2.0, 1.0) == revad.hvp(lambda x: x)(2.0, 1.0) == 0.0


# -- guards, buffers, threads ------------------------------------------------------------------

def branchy(x):
    return np.sum(x ** 3) if x[0] > 0 else np.sum(np.sin(x) * x)


def test_a_failed_guard_raises_and_compile_records_again():
    x = np.array([1.0, 2.0])
    tr = revad.trace(branchy, x)
    with pytest.raises(TraceError, match=r"guard failed \(comparison\)"):
        tr.hvp(np.array([-1.0, 2.0]), np.ones(2))
    with pytest.raises(TraceError, match=r"guard failed \(comparison\)"):
        tr.hessian(np.array([-1.0, 2.0]))
    # the failed replay left nothing behind: the next one is right
    close(tr.hvp(np.array([0.5, 2.0]), np.ones(2)), revad.hvp(branchy)(np.array([0.5, 2.0]),
                                                                       np.ones(2)))
    cf = revad.compile(branchy)
    for x0 in (1.0, -1.0, 2.0, -2.0, 0.5):
        x = np.array([x0, 0.3])
        close(cf.hvp(x, np.array([1.0, -1.0])), revad.hvp(branchy)(x, np.array([1.0, -1.0])))
        close(cf.hessian(x), revad.hessian(branchy)(x))
    s = cf.stats
    assert s["records"] == 2 and s["replays"] == 8 and s["guard_failures"] == {"comparison": 4}


def test_a_float_escape_is_guarded():
    import math

    def f(x):
        return x[0] ** 2 * math.cos(x[1])  # float(x[1]): a guard

    tr = revad.trace(f, np.array([1.0, 2.0]))
    assert tr.hvp(np.array([3.0, 2.0]), np.array([1.0, 0.0]))[0] == 2 * math.cos(2.0)
    with pytest.raises(TraceError, match=r"guard failed \(float\(\)\)"):
        tr.hvp(np.array([3.0, 2.5]), np.array([1.0, 0.0]))


def test_buffers_stay_clean_across_calls_of_every_kind():
    tr = revad.trace(np_rosen, np.zeros(50))
    x, v = rng.normal(size=50), rng.normal(size=50)
    first = tr.hvp(x, v)
    H = tr.hessian(x)
    vg = tr.value_and_grad(x)
    for _ in range(3):
        assert np.array_equal(tr.hvp(x, v), first)
        assert np.array_equal(tr.hessian(x), H)
        tr.hvp(rng.normal(size=50), v)
        v2, g2 = tr.value_and_grad(x)
        assert v2 == vg[0] and np.array_equal(g2, vg[1])
        assert tr._buffers_clean()
    close(H @ v, first)


def test_threads_replaying_hvp_on_one_trace_give_serial_results():
    tr = revad.trace(rosen, np.zeros(300))  # (large enough to sweep without the GIL)
    X, V = rng.normal(size=(16, 300)), rng.normal(size=(16, 300))
    serial = [tr.hvp(x, v) for x, v in zip(X, V, strict=True)]
    out = [None] * 16

    def run(k):
        for j in range(k, 16, 4):
            out[j] = tr.hvp(X[j], V[j])

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(out, serial, strict=True):
        assert np.array_equal(got, want)
    close(serial[0], rosen_hessian(X[0]) @ V[0], rtol=1e-10)


def test_a_pickled_trace_replays_second_order():
    tr = pickle.loads(pickle.dumps(revad.trace(np_rosen, np.zeros(7))))
    x, v = rng.normal(size=7), rng.normal(size=7)
    close(tr.hvp(x, v), revad.hvp(np_rosen)(x, v))
    close(tr.hessian(x), rosen_hessian(x))


# -- what cannot be replayed, and misuse --------------------------------------------------------

def test_a_primitive_has_no_second_order_rule_trace_says_so_compile_falls_back():
    def f(x):
        return np.sum(softsign(x * 2.0) * x ** 2)

    x, v = rng.normal(size=5), rng.normal(size=5)
    tr = revad.trace(f, x)
    with pytest.raises(NotImplementedError, match="'call' entry.*revad.hvp"):
        tr.hvp(x, v)
    with pytest.raises(NotImplementedError, match="'call' entry.*revad.hessian"):
        tr.hessian(x)
    cf = revad.compile(f)
    for _ in range(3):
        x, v = rng.normal(size=5), rng.normal(size=5)
        close(cf.hvp(x, v), revad.hvp(f)(x, v))
        close(cf.hessian(x), revad.hessian(f)(x))
    s = cf.stats
    assert s["records"] == 1  # (recorded once, for value_and_grad's replays)
    assert (s["eager"], s["calls"]) == (6, 6)  # every hvp and hessian handed to revad's
    close(cf(x)[1], revad.grad(f)(x))


def test_a_scipy_function_falls_back_too():
    pytest.importorskip("scipy")
    import scipy.special as ss

    import revad.scipy.special  # (registers the rows)

    def f(x):
        return np.sum(ss.gammaln(x) * x)

    x = rng.uniform(0.5, 2, 4)
    with pytest.raises(NotImplementedError, match="'special' entry"):
        revad.trace(f, x).hvp(x, x)
    close(revad.compile(f).hessian(x), revad.hessian(f)(x))


def test_misuse_gets_clear_errors():
    tr = revad.trace(np_rosen, np.zeros(4))
    with pytest.raises(TypeError, match=r"Trace.hvp\(\*args, v\) needs the arguments and v"):
        tr.hvp()
    with pytest.raises(TypeError, match="recorded with 1 positional argument"):
        tr.hvp(np.zeros(4))
    with pytest.raises(ValueError, match=r"v has shape \(3,\), but the argument has shape"):
        tr.hvp(np.zeros(4), np.zeros(3))
    with pytest.raises(ValueError, match="shape"):
        tr.hvp(np.zeros(5), np.zeros(5))
    with pytest.raises(TypeError, match="recorded with 1 positional argument"):
        tr.hessian(np.zeros(4), np.zeros(4))
    cf = revad.compile(np_rosen)
    with pytest.raises(TypeError, match="needs the arguments and v"):
        cf.hvp()
    with pytest.raises(ValueError, match=r"v has shape \(3,\)"):
        cf.hvp(np.zeros(4), np.zeros(3))
    with pytest.raises(TypeError, match="out of range for 0 positional"):
        cf.hvp(np.zeros(4))
    assert cf.stats["records"] == 0  # a bad v is refused before anything is recorded
