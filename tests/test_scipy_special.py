"""SciPy's special functions (the ufunc-pair group, group_pair.h, and revad.scipy.special):
values equal SciPy's, gradients equal central finite differences of SciPy's function, over
shapes (0-d to 3-d, empty, non-contiguous, broadcast), through SciPy's ufuncs and through
revad.scipy.special; forward mode; partials against mpmath at a few points; refused arguments."""
import subprocess
import sys

import numpy as np
import pytest

import revad

from conftest import fd_partial as _fd

ss = pytest.importorskip("scipy.special")
sp = pytest.importorskip("revad.scipy.special")

# name -> one entry per argument: (lo, hi) draws a differentiable argument there, anything
# else is a constant passed as it is (an order, a shape parameter).
SPECS = {
    "gammaln": [(0.3, 5.0)], "psi": [(0.3, 5.0)], "digamma": [(0.3, 5.0)],
    "gamma": [(0.3, 4.0)], "rgamma": [(0.3, 4.0)],
    "beta": [(0.5, 3.0), (0.5, 3.0)], "betaln": [(0.5, 3.0), (0.5, 3.0)],
    "erf": [(-2.0, 2.0)], "erfc": [(-2.0, 2.0)], "erfinv": [(-0.9, 0.9)],
    "erfcinv": [(0.1, 1.9)], "logit": [(0.05, 0.95)], "expit": [(-3.0, 3.0)],
    "xlogy": [(-2.0, 2.0), (0.2, 3.0)], "xlog1py": [(-2.0, 2.0), (-0.5, 3.0)],
    "i0": [(-3.0, 3.0)], "i1": [(-3.0, 3.0)], "iv": [1.5, (0.2, 3.0)], "ive": [1.0, (-3.0, 3.0)],
    "j0": [(0.1, 10.0)], "j1": [(0.1, 10.0)], "jv": [2.5, (0.1, 10.0)],
    "y0": [(0.5, 10.0)], "y1": [(0.5, 10.0)], "yn": [2, (0.5, 8.0)],
    "gammainc": [2.5, (0.1, 5.0)], "gammaincc": [2.5, (0.1, 5.0)],
    "entr": [(0.1, 3.0)], "kl_div": [(0.1, 3.0), (0.1, 3.0)], "rel_entr": [(0.1, 3.0), (0.1, 3.0)],
    "ndtr": [(-4.0, 4.0)], "log_ndtr": [(-4.0, 4.0)], "ndtri": [(0.05, 0.95)],
    "poch": [(0.5, 3.0), (0.2, 2.0)], "stdtr": [3.5, (-3.0, 3.0)],
    "betainc": [2.0, 3.0, (0.1, 0.9)], "polygamma": [2, (0.5, 4.0)],
}
if hasattr(ss, "betaincc"):
    SPECS["betaincc"] = [2.0, 3.0, (0.1, 0.9)]
# The list (issue 16, SciPy's special functions), each of which must have a spec here.
LISTED = ("gammaln digamma psi polygamma gamma rgamma beta betaln erf erfc erfinv erfcinv logit "
          "expit xlogy xlog1py i0 i1 iv ive j0 j1 jv y0 y1 yn gammainc gammaincc entr kl_div "
          "rel_entr ndtr log_ndtr ndtri").split()
UFUNCS = [n for n in SPECS if isinstance(getattr(ss, n), np.ufunc)]


def test_every_listed_function_is_tested_and_exported():
    assert set(LISTED) <= set(SPECS)
    assert set(LISTED) <= set(sp.__all__)
    for name in [*LISTED, "logsumexp", "softmax", "log_softmax", "multigammaln"]:
        assert callable(getattr(sp, name)), name


def _draw(spec, shape, rng):
    return [rng.uniform(*s, size=shape) if isinstance(s, tuple) else s for s in spec]



def _check(name, args, call, rtol=1e-6):
    """Value and gradient of sum(w * call(*args)) against SciPy's value and differences."""
    ref_fn = getattr(ss, name)
    diff = [j for j, s in enumerate(SPECS[name]) if isinstance(s, tuple)]
    want = np.asarray(ref_fn(*args))
    w = np.linspace(0.5, 1.5, want.size).reshape(want.shape)

    def loss(*a):
        return np.sum(w * call(*a))

    got = call(*[(revad.Array(a) if np.ndim(a) else revad.Var(float(a))) if j in diff else a
                 for j, a in enumerate(args)])
    np.testing.assert_allclose(np.asarray(got.value), want, rtol=1e-14, atol=0)
    grads = revad.grad(loss, argnums=tuple(diff))(*args)
    for j, g in zip(diff, grads, strict=True):
        fd = _fd(lambda *a: float(np.sum(w * ref_fn(*a))), args, j)
        np.testing.assert_allclose(np.asarray(g), fd, rtol=rtol, atol=1e-7)


SHAPES = [(), (4,), (2, 3), (2, 1, 3), (0,), (0, 3)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(SPECS))
def test_through_revad_scipy_special(name, shape):
    args = _draw(SPECS[name], shape, np.random.default_rng(len(name)))
    _check(name, args, getattr(sp, name))


@pytest.mark.parametrize("name", sorted(UFUNCS))
def test_through_scipys_own_ufunc(name):
    """scipy.special.gammaln(Array) reaches the same rows through __array_ufunc__."""
    args = _draw(SPECS[name], (2, 3), np.random.default_rng(1))
    _check(name, args, getattr(ss, name))


@pytest.mark.parametrize("name", sorted(SPECS))
def test_broadcast_and_non_contiguous_operands(name):
    """Differentiable arguments of shapes (3, 1) and (4,) (broadcast to (3, 4)), read through
    a strided, reversed view of a larger Array."""
    rng = np.random.default_rng(7)
    spec = SPECS[name]
    diff = [j for j, s in enumerate(spec) if isinstance(s, tuple)]
    shapes = {j: ((3, 1) if k % 2 == 0 else (4,)) for k, j in enumerate(diff)}
    big = {j: rng.uniform(*spec[j], size=(2 * shapes[j][0],) + shapes[j][1:]) for j in diff}
    args = [big[j][::-2] if j in diff else s for j, s in enumerate(spec)]
    w = rng.uniform(0.5, 1.5, size=np.broadcast_shapes(*[np.shape(a) for a in args]))
    f = getattr(sp, name)

    def loss(*bs):
        a = [bs[diff.index(j)][::-2] if j in diff else s for j, s in enumerate(spec)]
        return np.sum(w * f(*a))

    grads = revad.grad(loss, argnums=tuple(range(len(diff))))(*[big[j] for j in diff])
    ref_fn = getattr(ss, name)
    for k, j in enumerate(diff):
        def plain(b, j=j):
            a = list(args)
            a[j] = b[::-2]
            return float(np.sum(w * ref_fn(*a)))
        np.testing.assert_allclose(grads[k], _fd(plain, [big[j]], 0), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_scalar_vars_give_vars(name):
    args = [s[0] + 0.3 * (s[1] - s[0]) if isinstance(s, tuple) else s for s in SPECS[name]]
    diff = [j for j, s in enumerate(SPECS[name]) if isinstance(s, tuple)]
    vs = [revad.Var(a) if j in diff else a for j, a in enumerate(args)]
    y = getattr(sp, name)(*vs)
    assert type(y) is revad.Var
    assert y.value == pytest.approx(float(getattr(ss, name)(*args)), rel=1e-14)
    y.backward()
    for j in diff:
        fd = _fd(lambda *a: float(getattr(ss, name)(*a)), [np.float64(a) for a in args], j)
        assert vs[j].grad == pytest.approx(float(fd), rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_forward_mode_equals_reverse(name):
    rng = np.random.default_rng(3)
    spec = SPECS[name]
    diff = [j for j, s in enumerate(spec) if isinstance(s, tuple)]
    args = _draw(spec, (5,), rng)
    f = getattr(sp, name)

    def loss(*xs):
        a = list(args)
        for k, j in enumerate(diff):
            a[j] = xs[k]
        return np.sum(f(*a) * np.arange(1.0, 6.0))

    xs = tuple(args[j] for j in diff)
    ts = tuple(rng.normal(size=5) for _ in diff)
    grads = revad.grad(loss, argnums=tuple(range(len(diff))))(*xs)
    _, tangent = revad.jvp(loss, xs, ts)
    want = sum(float(np.dot(g, t)) for g, t in zip(grads, ts, strict=True))
    assert tangent == pytest.approx(want, rel=1e-12, abs=1e-12)


# Partials against mpmath at points of their own: (name, args, d/d(last argument)).
def _mpmath_partials():
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 30
    def d(f):
        return lambda x: mp.diff(f, x)

    pts = [("gammaln", (3.7,), lambda x: mp.digamma(x)),
           ("psi", (0.8,), lambda x: mp.polygamma(1, x)),
           ("rgamma", (0.0,), lambda x: mp.diff(mp.rgamma, x)),
           ("rgamma", (-2.0,), lambda x: mp.diff(mp.rgamma, x)),
           ("rgamma", (2.3,), lambda x: mp.diff(mp.rgamma, x)),
           ("erfinv", (0.7,), lambda x: mp.diff(lambda t: mp.erfinv(t), x)),
           ("log_ndtr", (-30.0,), lambda x: mp.diff(lambda t: mp.log(mp.ncdf(t)), x)),
           ("jv", (2.5, 4.0), lambda x: mp.diff(lambda t: mp.besselj(2.5, t), x)),
           ("ive", (0.7, 2.0), d(lambda t: mp.besseli(0.7, t) * mp.exp(-abs(t)))),
           ("ive", (1.0, -2.0), d(lambda t: mp.besseli(1, t) * mp.exp(-abs(t)))),
           ("yn", (2, 3.0), lambda x: mp.diff(lambda t: mp.bessely(2, t), x)),
           ("gammaincc", (2.5, 1.5), d(lambda t: mp.gammainc(2.5, t, regularized=True))),
           ("stdtr", (3.5, 0.7), None),
           ("polygamma", (2, 1.5), lambda x: mp.polygamma(3, x))]
    return mp, pts


def test_partials_against_mpmath():
    mp, pts = _mpmath_partials()
    for name, args, d in pts:
        x = revad.Var(float(args[-1]))
        y = getattr(sp, name)(*args[:-1], x)
        y.backward()
        if d is None:  # stdtr: the t density
            df, t = args
            want = (mp.gamma((df + 1) / 2) / (mp.sqrt(df * mp.pi) * mp.gamma(df / 2))
                    * (1 + mp.mpf(t) ** 2 / df) ** (-(df + 1) / 2))
        else:
            want = d(mp.mpf(args[-1]))
        assert x.grad == pytest.approx(float(want), rel=1e-9), (name, args)


def test_zero_adjoint_passes_nothing():
    """gammaln's partial at 0 is inf: an element whose adjoint is 0 must not turn it into nan."""
    g = revad.grad(lambda x: sp.gammaln(x)[1])(np.array([0.0, 2.0]))
    assert g[0] == 0.0 and g[1] == pytest.approx(float(ss.digamma(2.0)), rel=1e-14)


@pytest.mark.parametrize("name, args, what", [
    ("jv", (revad.Var(1.0), 2.0), "order"), ("iv", (revad.Var(1.0), 2.0), "order"),
    ("ive", (revad.Var(1.0), 2.0), "order"), ("yn", (revad.Var(1.0), 2.0), "integer"),
    ("gammainc", (revad.Var(1.0), 2.0), "shape"), ("gammaincc", (revad.Var(1.0), 2.0), "shape"),
    ("polygamma", (revad.Var(1.0), 2.0), "order n"), ("stdtr", (revad.Var(1.0), 2.0), "shape"),
])
def test_arguments_without_a_derivative_are_refused(name, args, what):
    with pytest.raises(TypeError, match=what):
        getattr(sp, name)(*args)
    if isinstance(getattr(ss, name), np.ufunc):
        with pytest.raises(TypeError, match=what):
            getattr(ss, name)(*args)


def test_bad_input_is_refused():
    x = revad.Array([1.0, 2.0])
    with pytest.raises(TypeError, match="complex"):
        sp.xlogy(np.array([1j]), x)
    with pytest.raises(TypeError, match="argument"):
        sp.gammaln(x, x)
    with pytest.raises(TypeError, match="out"):
        ss.gammaln(x, out=np.zeros(2))
    with pytest.raises(TypeError):
        ss.xlogy.reduce(x)


def test_plain_data_gives_scipys_plain_result():
    a = np.array([[0.5, 1.5], [2.0, 3.0]])
    for name in ("gammaln", "jv", "xlogy", "erf", "expit", "polygamma"):
        args = [s if not isinstance(s, tuple) else a for s in SPECS[name]]
        got = getattr(sp, name)(*args)
        assert type(got) is np.ndarray
        np.testing.assert_array_equal(got, getattr(ss, name)(*args))
    assert type(sp.gammaln(2.5)) is type(ss.gammaln(2.5))


def test_gradients_inside_a_larger_program():
    """A pair group among elementwise groups, sums and a matrix product."""
    rng = np.random.default_rng(5)
    A = rng.normal(size=(3, 4))

    def f(x, y):
        z = np.exp(0.1 * (A @ x)) + sp.gammaln(y) * sp.xlogy(y, np.abs(x[:3]) + 1.0)
        return np.sum(sp.erfc(z) * z) + sp.jv(1.0, np.sum(y))

    x, y = rng.uniform(0.5, 2.0, size=4), rng.uniform(0.5, 2.0, size=3)
    gx, gy = revad.grad(f, argnums=(0, 1))(x, y)

    def plain(x, y):
        z = np.exp(0.1 * (A @ x)) + ss.gammaln(y) * ss.xlogy(y, np.abs(x[:3]) + 1.0)
        return float(np.sum(ss.erfc(z) * z) + ss.jv(1.0, np.sum(y)))

    np.testing.assert_allclose(gx, _fd(plain, [x, y], 0), rtol=1e-6)
    np.testing.assert_allclose(gy, _fd(plain, [x, y], 1), rtol=1e-6)


def test_graph_and_tape_show_the_kind():
    import revad.numpy as rnp
    x = revad.Var(2.0)
    z = ss.gammaln(rnp.array([x, x]) * 1.0)
    y = z[0] + z[1]
    assert "special" in revad.to_dot(y)
    y.backward()
    assert x.grad == pytest.approx(2 * float(ss.digamma(2.0)), rel=1e-14)


def test_no_grad_gives_constants():
    with revad.no_grad():
        y = ss.gammaln(revad.Array([1.5, 2.5]))
        v = sp.gammaln(revad.Var(1.5))
    assert y.is_leaf and type(v) is revad.Var
    np.testing.assert_array_equal(y.value, ss.gammaln([1.5, 2.5]))


def test_logsumexp_softmax_log_softmax():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(3, 4)), rng.uniform(0.5, 2.0, size=(3, 4))
    for axis in (None, 0, 1, (0, 1), -1):
        for keepdims in (False, True):
            want = ss.logsumexp(a, axis=axis, b=b, keepdims=keepdims)
            got = sp.logsumexp(revad.Array(a), axis=axis, b=revad.Array(b), keepdims=keepdims)
            np.testing.assert_allclose(got.value, want, rtol=1e-12)
            for j in (0, 1):
                g = revad.grad(lambda a, b: np.sum(sp.logsumexp(a, axis=axis, b=b,
                                                                keepdims=keepdims) ** 2),
                               argnums=j)(a, b)
                fd = _fd(lambda a, b: float(np.sum(ss.logsumexp(a, axis=axis, b=b,
                                                                 keepdims=keepdims) ** 2)),
                         [a, b], j)
                np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
        for fn in ("softmax", "log_softmax"):
            w = rng.normal(size=a.shape)
            np.testing.assert_allclose(getattr(sp, fn)(revad.Array(a), axis=axis).value,
                                       getattr(ss, fn)(a, axis=axis), rtol=1e-12)
            g = revad.grad(lambda x: np.sum(w * getattr(sp, fn)(x, axis=axis)))(a)
            fd = _fd(lambda x: float(np.sum(w * getattr(ss, fn)(x, axis=axis))), [a], 0)
            np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
    # b with negative terms and return_sign
    bs = np.array([1.0, -2.0, 0.5])
    av = np.array([0.3, 0.1, -0.4])
    r, sgn = sp.logsumexp(revad.Array(av), b=bs, return_sign=True)
    wr, ws = ss.logsumexp(av, b=bs, return_sign=True)
    assert float(r.value) == pytest.approx(float(wr), rel=1e-12) and sgn == ws
    g = revad.grad(lambda x: sp.logsumexp(x, b=bs, return_sign=True)[0])(av)
    fd = _fd(lambda x: float(ss.logsumexp(x, b=bs, return_sign=True)[0]), [av], 0)
    np.testing.assert_allclose(g, fd, rtol=1e-6)
    # large values stay finite (the maximum is subtracted)
    np.testing.assert_allclose(sp.logsumexp(revad.Array([1000.0, 1000.0])).value,
                               1000.0 + np.log(2.0), rtol=1e-15)


def test_logsumexp_of_plain_data_is_plain():
    a = np.array([[1.0, 2.0], [3.0, -1.0]])
    for fn in (revad.logsumexp, sp.logsumexp):
        for axis in (None, 0, 1):
            got, want = fn(a, axis=axis), ss.logsumexp(a, axis=axis)
            assert type(got) is type(want)
            np.testing.assert_allclose(got, want, rtol=1e-14)
    assert type(revad.logsumexp([1.0, 2.0])) is np.float64
    assert type(sp.softmax(a)) is np.ndarray and type(sp.multigammaln(3.0, 2)) is type(
        ss.multigammaln(3.0, 2))
    import revad.numpy as rnp
    assert type(rnp.logsumexp(a)) is np.float64
    x = revad.Var(1.0)  # a Var among the data: recorded
    y = revad.logsumexp(revad.numpy.array([x, 2.0]))
    y.backward()
    assert x.grad == pytest.approx(float(ss.softmax([1.0, 2.0])[0]), rel=1e-14)


def test_multigammaln():
    a = np.array([[2.0, 3.5], [4.0, 7.25]])
    for d in (1, 2, 3):
        np.testing.assert_allclose(sp.multigammaln(revad.Array(a), d).value,
                                   ss.multigammaln(a, d), rtol=1e-13)
        g = revad.grad(lambda x: np.sum(sp.multigammaln(x, d)))(a)
        np.testing.assert_allclose(g, _fd(lambda x: float(np.sum(ss.multigammaln(x, d))), [a], 0),
                                   rtol=1e-6)
    with pytest.raises(ValueError, match="greater"):
        sp.multigammaln(revad.Var(0.5), 3)
    with pytest.raises(ValueError, match="integer"):
        sp.multigammaln(revad.Var(3.0), 2.5)


def test_revad_works_without_scipy():
    """revad imports and runs without SciPy; revad.scipy then raises a clear ImportError."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'scipy' or name.startswith('scipy.'):\n"
        "            raise ImportError('no scipy here')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import numpy as np, revad\n"
        "assert revad.grad(lambda x: np.sum(np.exp(x)))(np.zeros(2)).tolist() == [1.0, 1.0]\n"
        "assert type(revad.logsumexp(np.zeros(3))) is np.float64\n"
        "try:\n"
        "    import revad.scipy.special\n"
        "except ImportError as e:\n"
        "    assert 'SciPy' in str(e), e\n"
        "else:\n"
        "    raise AssertionError('revad.scipy imported without SciPy')\n"
        "assert 'scipy' not in sys.modules\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=str(__import__("pathlib").Path(revad.__file__).parent.parent))
    assert out.stdout.strip() == "ok", out.stderr
