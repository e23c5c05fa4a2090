"""revad.scipy.stats: every function's value equals SciPy's (rtol 1e-12) and its gradient in
each differentiable argument equals central finite differences of SciPy's; plain data gives
SciPy's own result; arguments without a derivative are refused."""
import numpy as np
import pytest

import revad

from conftest import fd_partial as _fd

scipy_stats = pytest.importorskip("scipy.stats")
from revad.scipy import stats  # noqa: E402

# dist -> ranges of x, then its shape parameters, then loc and scale (z stays in the support).
CONTINUOUS = {
    "norm": [(-2.0, 2.0), (-0.5, 0.5), (0.5, 2.0)],
    "t": [(-2.0, 2.0), (1.5, 6.0), (-0.5, 0.5), (0.5, 2.0)],
    "gamma": [(0.5, 5.0), (1.5, 4.0), (-0.2, 0.1), (0.5, 2.0)],
    "chi2": [(0.5, 5.0), (1.5, 6.0), (-0.2, 0.1), (0.5, 2.0)],
    "beta": [(0.2, 0.8), (1.5, 4.0), (1.5, 4.0), (-0.05, 0.05), (1.0, 1.2)],
}
SHAPE_COUNT = {"norm": 0, "t": 1, "gamma": 1, "chi2": 1, "beta": 2}
METHODS = ("pdf", "logpdf", "cdf", "logcdf", "sf", "logsf")



def _differentiable(dist, method):
    """Indexes of the arguments the method differentiates: all for densities; for the cdf
    family, x, loc and scale (not the shape parameters: SciPy has no derivative there)."""
    n = len(CONTINUOUS[dist])
    if method in ("pdf", "logpdf"):
        return list(range(n))
    return [0, n - 2, n - 1]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dist", sorted(CONTINUOUS))
@pytest.mark.parametrize("shape", [(), (4,), (2, 3)], ids=str)
def test_continuous(dist, method, shape):
    rng = np.random.default_rng(len(dist) + len(method))
    args = [rng.uniform(*r, size=shape) for r in CONTINUOUS[dist]]
    ref = getattr(getattr(scipy_stats, dist), method)
    mine = getattr(getattr(stats, dist), method)
    diff = _differentiable(dist, method)
    w = rng.uniform(0.5, 1.5, size=shape)
    got = mine(*[revad.Array(a) if j in diff else a for j, a in enumerate(args)])
    np.testing.assert_allclose(np.asarray(got.value), ref(*args), rtol=1e-12, atol=0)

    def loss(*xs):
        a = list(args)
        for k, j in enumerate(diff):
            a[j] = xs[k]
        return np.sum(w * mine(*a))

    grads = revad.grad(loss, argnums=tuple(range(len(diff))))(*[args[j] for j in diff])
    for k, j in enumerate(diff):
        fd = _fd(lambda *a: float(np.sum(w * ref(*a))), args, j)
        np.testing.assert_allclose(np.asarray(grads[k]), fd, rtol=1e-5, atol=1e-8,
                                   err_msg=f"{dist}.{method} d/d argument {j}")


@pytest.mark.parametrize("dist", sorted(CONTINUOUS))
def test_scalar_vars_keywords_and_broadcast(dist):
    """Scalar Var parameters as keywords (loc=, scale=) with an Array x of shape (2, 3)."""
    rng = np.random.default_rng(11)
    r = CONTINUOUS[dist]
    x = rng.uniform(*r[0], size=(2, 3))
    params = [0.5 * (lo + hi) for lo, hi in r[1:]]
    ns = SHAPE_COUNT[dist]
    ref = getattr(scipy_stats, dist).logpdf
    mine = getattr(stats, dist).logpdf

    def f(x, *p):
        return np.sum(mine(x, *p[:ns], loc=p[ns], scale=p[ns + 1]))

    grads = revad.grad(f, argnums=tuple(range(1 + len(params))))(x, *params)
    np.testing.assert_allclose(np.asarray(mine(x, *params[:ns], loc=revad.Var(params[ns]),
                                               scale=params[ns + 1]).value),
                               ref(x, *params), rtol=1e-12)
    plain = [x, *[np.float64(p) for p in params]]
    for j in range(len(plain)):
        fd = _fd(lambda *a: float(np.sum(ref(*a))), plain, j)
        np.testing.assert_allclose(np.asarray(grads[j]), fd, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("dist", ["gamma", "chi2", "beta"])
def test_outside_the_support(dist):
    r = CONTINUOUS[dist]
    x = np.array([-1.0, 0.5 * (r[0][0] + r[0][1]), 3.0 if dist == "beta" else 2.0])
    params = [0.5 * (lo + hi) for lo, hi in r[1:-2]] + [0.0, 1.0]
    for method in METHODS:
        got = getattr(getattr(stats, dist), method)(revad.Array(x), *params)
        want = getattr(getattr(scipy_stats, dist), method)(x, *params)
        np.testing.assert_allclose(got.value, want, rtol=1e-12)
    g = revad.grad(lambda x: np.sum(getattr(stats, dist).cdf(x, *params)))(x)
    assert g[0] == 0.0 and (dist != "beta" or g[2] == 0.0) and g[1] > 0


@pytest.mark.parametrize("dist", sorted(CONTINUOUS))
def test_plain_data_gives_scipys_result(dist):
    r = CONTINUOUS[dist]
    args = [np.linspace(*r[0], 3)] + [0.5 * (lo + hi) for lo, hi in r[1:]]
    for method in METHODS:
        got = getattr(getattr(stats, dist), method)(*args)
        want = getattr(getattr(scipy_stats, dist), method)(*args)
        assert type(got) is type(want)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dist, shape_arg", [("t", 1), ("gamma", 1), ("chi2", 1), ("beta", 1),
                                             ("beta", 2)])
def test_shape_parameters_of_the_cdf_family_are_refused(dist, shape_arg):
    r = CONTINUOUS[dist]
    args = [0.5 * (lo + hi) for lo, hi in r]
    args[shape_arg] = revad.Var(args[shape_arg])
    for method in ("cdf", "logcdf", "sf", "logsf"):
        with pytest.raises(TypeError, match="shape"):
            getattr(getattr(stats, dist), method)(*args)


def test_bad_calls():
    with pytest.raises(TypeError, match="shape parameter"):
        stats.gamma.logpdf(revad.Var(1.0))
    with pytest.raises(TypeError, match="unexpected"):
        stats.norm.logpdf(revad.Var(1.0), 0.0, 1.0, 5.0)
    assert np.isnan(stats.norm.logpdf(revad.Var(1.0), 0.0, -1.0).value)
    for dist in CONTINUOUS:  # nan in, nan out, as SciPy
        args = [np.nan] + [0.5 * (lo + hi) for lo, hi in CONTINUOUS[dist][1:]]
        for method in METHODS:
            got = getattr(getattr(stats, dist), method)(revad.Var(np.nan), *args[1:])
            assert np.isnan(float(np.asarray(got.value))), (dist, method)
            assert np.isnan(getattr(getattr(scipy_stats, dist), method)(*args))


@pytest.mark.parametrize("method", ["pmf", "logpmf", "cdf", "logcdf", "sf", "logsf"])
def test_poisson(method):
    k = np.array([0, 1, 3, 7, 2, -1])
    mu = np.array([0.5, 2.0, 4.0, 3.5, 1.2, 2.0])
    ref = getattr(scipy_stats.poisson, method)
    mine = getattr(stats.poisson, method)
    np.testing.assert_allclose(mine(k, revad.Array(mu)).value, ref(k, mu), rtol=1e-12)
    np.testing.assert_allclose(mine(k, revad.Array(mu), loc=1).value, ref(k, mu, loc=1),
                               rtol=1e-12)
    g = revad.grad(lambda m: np.sum(np.where(k >= 0, mine(k, m), 0.0)))(mu)
    fd = _fd(lambda m: float(np.sum(np.where(k >= 0, ref(k, m), 0.0))), [mu], 0)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)
    v = revad.Var(2.5)  # a scalar mu with an array of counts
    y = np.sum(mine(k[:4], v))
    y.backward()
    assert v.grad == pytest.approx(float(_fd(lambda m: float(np.sum(ref(k[:4], m))),
                                              [np.float64(2.5)], 0)), rel=1e-6)
    with pytest.raises(TypeError, match="counts"):
        mine(revad.Var(2.0), 1.0)
    assert type(mine(k, mu)) is type(ref(k, mu))


@pytest.mark.parametrize("method", ["pdf", "logpdf"])
def test_dirichlet(method):
    rng = np.random.default_rng(4)
    alpha = np.array([1.5, 2.0, 3.0])
    x1 = np.array([0.2, 0.3, 0.5])
    xs = rng.dirichlet(alpha, size=4).T  # (K, N): SciPy's layout for several points
    ref = getattr(scipy_stats.dirichlet, method)
    mine = getattr(stats.dirichlet, method)
    for x in (x1, xs, x1[:2], xs[:2]):
        np.testing.assert_allclose(np.asarray(mine(x, revad.Array(alpha)).value), ref(x, alpha),
                                   rtol=1e-12)
        ga, gx = revad.grad(lambda a, x: np.sum(mine(x, a)), argnums=(0, 1))(alpha, x)
        np.testing.assert_allclose(ga, _fd(lambda a: float(np.sum(ref(x, a))), [alpha], 0),
                                   rtol=1e-6)
        # x moves in the simplex: the derivative along x0 - x1 (both free when all K are given)
        if x.shape[0] == 3:
            e = np.zeros_like(x)
            e[0], e[1] = 1e-6, -1e-6
            fd = (np.sum(ref(x + e, alpha)) - np.sum(ref(x - e, alpha))) / 2e-6
            assert float(np.sum(gx[0] - gx[1])) == pytest.approx(float(fd), rel=1e-6)
        else:
            np.testing.assert_allclose(gx, _fd(lambda x: float(np.sum(ref(x, alpha))), [x], 0),
                                       rtol=1e-6)
    with pytest.raises(ValueError):
        mine(np.array([0.5, 0.6, 0.7]), revad.Array(alpha))


@pytest.mark.parametrize("method", ["pdf", "logpdf"])
def test_multivariate_normal(method):
    rng = np.random.default_rng(6)
    cov = np.array([[2.0, 0.3, 0.1], [0.3, 1.0, -0.2], [0.1, -0.2, 1.5]])
    mean = rng.normal(size=3)
    ref = getattr(scipy_stats.multivariate_normal, method)
    mine = getattr(stats.multivariate_normal, method)
    for x, c in ((rng.normal(size=3), cov), (rng.normal(size=(4, 3)), cov),
                 (rng.normal(size=(2, 2, 3)), np.array([1.0, 2.0, 0.5])),
                 (rng.normal(size=3), 2.0)):
        np.testing.assert_allclose(np.asarray(mine(revad.Array(x), revad.Array(mean), c).value),
                                   ref(x, mean, c), rtol=1e-12)
        gx, gm = revad.grad(lambda x, m: np.sum(mine(x, m, c)), argnums=(0, 1))(x, mean)
        np.testing.assert_allclose(gx, _fd(lambda x: float(np.sum(ref(x, mean, c))), [x], 0),
                                   rtol=1e-6, atol=1e-10)
        np.testing.assert_allclose(gm, _fd(lambda m: float(np.sum(ref(x, m, c))), [mean], 0),
                                   rtol=1e-6, atol=1e-10)
    g = revad.grad(lambda x: np.sum(mine(x, cov=cov)))(np.ones(3))  # mean None
    np.testing.assert_allclose(g, _fd(lambda x: float(np.sum(ref(x, cov=cov))), [np.ones(3)], 0),
                               rtol=1e-6)
    # Differentiable in cov too (a recorded Cholesky factor), at full, diagonal and scalar cov.
    x = rng.normal(size=(4, 3))
    for c in (cov, np.array([1.0, 2.0, 0.5]), 1.7):
        got = mine(x, mean, revad.Array(c) if np.ndim(c) else revad.Var(c))
        np.testing.assert_allclose(np.asarray(got.value), ref(x, mean, c), rtol=1e-12)
        gc = revad.grad(lambda c: np.sum(mine(x, mean, c)))(np.asarray(c) if np.ndim(c) else c)
        fd = _fd(lambda c: float(np.sum(ref(x, mean, c))), [np.asarray(c, dtype=float)], 0)
        if np.ndim(c) == 2:  # SciPy reads the symmetric matrix: compare symmetrised
            gc, fd = (gc + gc.T) / 2, (fd + fd.T) / 2
        np.testing.assert_allclose(gc, fd, rtol=1e-6, atol=1e-9)
    with pytest.raises(TypeError, match="not differentiable"):
        stats.multivariate_normal.cdf(revad.Array(np.zeros(2)), np.zeros(2), np.eye(2))
    assert type(mine(np.zeros(3), mean, cov)) is type(ref(np.zeros(3), mean, cov))


def test_docstring_examples_of_the_namespace():
    """revad.scipy's modules and functions: each docstring example runs (tests/test_docs.py
    covers revad's own namespace)."""
    import doctest
    import importlib

    import revad.scipy.special as sp
    names = ["revad.scipy", "revad.scipy.special", "revad.scipy.stats",
             *[f"revad.scipy.stats.{d}" for d in stats.__all__]]
    checked = 0
    for modname in names:
        mod = importlib.import_module(modname)
        objs = [mod] + [getattr(mod, n) for n in getattr(mod, "__all__", dir(mod))
                        if callable(getattr(mod, n)) and not n.startswith("_")
                        and getattr(getattr(mod, n), "__module__", "").startswith("revad.scipy")]
        for obj in objs:
            doc = obj.__doc__
            assert doc and ">>>" in doc, f"{modname}: {obj!r} has no example"
            test = doctest.DocTestParser().get_doctest(doc, {}, modname, None, 0)
            runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
            runner.run(test)
            assert runner.summarize(verbose=False).failed == 0, (modname, obj)
            checked += 1
    assert checked > 60 and sp.gammaln.__doc__
