"""numpy.linalg on revad Arrays end to end: values equal NumPy's, revad.grad equals central
differences, over single matrices and stacks, with the keyword arguments NumPy takes."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import revad
import revad.numpy

from conftest import check_weighted_gradient, count_programs, fd_array_gradient, property_settings

RNG = np.random.default_rng(16)


def check(f, *xs, rtol=1e-5, atol=1e-7):
    """grad of sum(f(*xs) * w) for random weights w: the value NumPy's, the gradient finite
    differences' (f written with NumPy's names runs on ndarrays and on revad Arrays)."""
    return check_weighted_gradient(f, *xs, rng=RNG, rtol=rtol, atol=atol, value_rtol=1e-10)


# ---------------------------------------------------------------------------------------------
# norm: every order NumPy takes

VECTOR_ORDS = [None, 2, 1, np.inf, -np.inf, 3, 0.5, -1, -2, 2.5]


@pytest.mark.parametrize("ord", VECTOR_ORDS)
@pytest.mark.parametrize("shape,axis", [((5,), None), ((3, 4), 1), ((3, 4), 0), ((2, 3, 4), -1),
                                        ((2, 3, 4), (1,))])
@pytest.mark.parametrize("keepdims", [False, True])
def test_vector_norms(ord, shape, axis, keepdims):
    x = RNG.uniform(0.5, 2.0, size=shape) * RNG.choice([-1, 1], size=shape)
    check(lambda a: np.linalg.norm(a, ord=ord, axis=axis, keepdims=keepdims), x)


def test_vector_norm_order_zero_counts_nonzeros():
    x = np.array([0.0, 1.5, -2.0, 0.0])
    y = np.linalg.norm(revad.Array(x), ord=0)
    assert float(y) == 2.0
    assert revad.grad(lambda a: np.linalg.norm(a, 0) + np.sum(a))(x).tolist() == [1.0] * 4


MATRIX_ORDS = [None, "fro", 1, -1, np.inf, -np.inf]


@pytest.mark.parametrize("ord", MATRIX_ORDS)
@pytest.mark.parametrize("shape,axis", [((3, 4), None), ((4, 3), (1, 0)), ((2, 3, 4), (1, 2)),
                                        ((3, 2, 4), (0, -1))])
@pytest.mark.parametrize("keepdims", [False, True])
def test_matrix_norms(ord, shape, axis, keepdims):
    x = RNG.uniform(0.5, 2.0, size=shape) * RNG.choice([-1, 1], size=shape)
    check(lambda a: np.linalg.norm(a, ord=ord, axis=axis, keepdims=keepdims), x)


@pytest.mark.parametrize("ord,axis,match", [
    ("fro", 0, "invalid norm order 'fro' for vectors"),
    (3, (0, 1), "invalid norm order 3 for matrices"),
    (None, (0, 1, 2), "improper number of axes"),
    (2, (1, 1), "repeated axis"),
])
def test_norm_bad_orders(ord, axis, match):
    x = revad.Array(RNG.normal(size=(2, 3, 4)))
    with pytest.raises(ValueError, match=match):
        np.linalg.norm(x, ord=ord, axis=axis)


# ---------------------------------------------------------------------------------------------
# The decompositions and solvers (revad._linalg's primitives)

SQUARE = [(3, 3), (1, 1), (2, 3, 3), (2, 1, 2, 2)]
RECT = [(4, 3), (3, 4), (3, 3), (2, 4, 2), (2, 2, 4)]


def T(x):
    return np.swapaxes(x, -1, -2)


def well_conditioned(shape):
    n = shape[-1]
    return RNG.normal(size=shape) + 2 * n * np.eye(n)


def spd_of(x):
    """A symmetric positive definite matrix of x, recorded (the functions of symmetric input
    read one triangle: through this, finite differences see the symmetric derivative)."""
    return x @ T(x) + x.shape[-1] * np.eye(x.shape[-1])


@pytest.mark.parametrize("shape", SQUARE)
def test_inv_det_slogdet(shape):
    a = well_conditioned(shape)
    check(np.linalg.inv, a)
    check(np.linalg.det, a)
    check(lambda x: np.linalg.slogdet(x)[1] * np.linalg.slogdet(x)[0], a)
    check(lambda x: np.linalg.slogdet(-x)[1], a)


@pytest.mark.parametrize("sa,sb", [((3, 3), (3,)), ((3, 3), (3, 2)), ((2, 3, 3), (2, 3, 4)),
                                   ((2, 3, 3), (3,)), ((2, 1, 3, 3), (4, 3, 2))])
def test_solve(sa, sb):
    check(np.linalg.solve, well_conditioned(sa), RNG.normal(size=sb))
    check(lambda b: np.linalg.solve(well_conditioned(sa[-2:]) * 0 + np.eye(sa[-1]) * 2, b),
          RNG.normal(size=sb))  # a constant matrix


@pytest.mark.parametrize("shape", SQUARE)
@pytest.mark.parametrize("upper", [False, True])
def test_cholesky(shape, upper):
    if upper and np.lib.NumpyVersion(np.__version__) < "2.0.0":
        pytest.skip("cholesky(upper=) is new in NumPy 2.0")
    check(lambda x: np.linalg.cholesky(spd_of(x), upper=upper), RNG.normal(size=shape))


@pytest.mark.parametrize("shape", SQUARE)
@pytest.mark.parametrize("uplo", ["L", "U"])
def test_eigh(shape, uplo):
    x = RNG.normal(size=shape)
    check(lambda a: np.linalg.eigh(a + T(a), UPLO=uplo)[0], x)
    check(lambda a: np.linalg.eigh(a + T(a), UPLO=uplo)[1], x)
    check(lambda a: np.linalg.eigvalsh(a + T(a), UPLO=uplo), x)


def test_eig_real_spectrum():
    p = RNG.normal(size=(2, 3, 3)) + 3 * np.eye(3)
    a = (p * np.array([1.0, 2.5, 4.0])) @ np.linalg.inv(p)
    check(lambda x: np.linalg.eig(x)[0], a)
    check(lambda x: np.linalg.eig(x)[1], a)


def test_eig_complex_spectrum_is_refused():
    rot = revad.Array(np.array([[0.0, -1.0], [1.0, 0.0]]))
    with pytest.raises(TypeError, match="complex eigenvalues"):
        np.linalg.eig(rot)
    w, _ = revad.numpy.linalg.eig(rot.value)  # plain values: NumPy's own, complex
    assert np.iscomplexobj(w)


@pytest.mark.parametrize("shape", RECT)
@pytest.mark.parametrize("full", [False, True])
def test_svd(shape, full):
    x = RNG.normal(size=shape)
    k = min(shape[-2:])
    check(lambda a: np.linalg.svd(a, compute_uv=False), x)
    check(lambda a: np.linalg.svd(a, full_matrices=full)[1], x)
    check(lambda a: np.linalg.svd(a, full_matrices=full)[0][..., :k], x)
    check(lambda a: np.linalg.svd(a, full_matrices=full)[2][..., :k, :], x)
    if full:  # the completing columns: what does not depend on their basis
        check(lambda a: (lambda u: u[..., k:] @ T(u[..., k:]))(np.linalg.svd(a)[0]), x)
        check(lambda a: (lambda v: T(v[..., k:, :]) @ v[..., k:, :])(np.linalg.svd(a)[2]), x)


@pytest.mark.parametrize("shape", RECT)
@pytest.mark.parametrize("mode", ["reduced", "complete", "r"])
def test_qr(shape, mode):
    x = RNG.normal(size=shape)
    n = shape[-1]
    if mode == "r":
        check(lambda a: np.linalg.qr(a, mode="r"), x)
        return
    check(lambda a: np.linalg.qr(a, mode=mode)[1], x)
    check(lambda a: np.linalg.qr(a, mode=mode)[0][..., :n], x)
    if mode == "complete" and shape[-2] > n:
        check(lambda a: (lambda q: q[..., n:] @ T(q[..., n:]))(np.linalg.qr(a, "complete")[0]), x)


def test_qr_raw_is_refused():
    with pytest.raises(TypeError, match="raw"):
        np.linalg.qr(revad.Array(np.eye(2)), mode="raw")


@pytest.mark.parametrize("shape", RECT)
def test_pinv(shape):
    check(np.linalg.pinv, RNG.normal(size=shape))
    check(lambda a: np.linalg.pinv(a, rcond=1e-12), RNG.normal(size=shape))


@pytest.mark.parametrize("n", [0, 1, 2, 3, 6, -1, -3])
@pytest.mark.parametrize("shape", [(3, 3), (2, 2, 2)])
def test_matrix_power(n, shape):
    check(lambda a: np.linalg.matrix_power(a, n) + 0 * a, well_conditioned(shape) / 3)


@pytest.mark.parametrize("ord", [2, -2, "nuc", 2.0, np.int64(-2)])
@pytest.mark.parametrize("shape,axis", [((3, 4), None), ((4, 3), (1, 0)), ((2, 3, 4), (1, 2)),
                                        ((3, 2, 4), (0, -1))])
@pytest.mark.parametrize("keepdims", [False, True])
def test_matrix_norms_of_singular_values(ord, shape, axis, keepdims):
    check(lambda a: np.linalg.norm(a, ord=ord, axis=axis, keepdims=keepdims),
          RNG.normal(size=shape))


def test_singular_matrix_raises_numpys_error():
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.inv(revad.Array(np.ones((2, 2))))
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.cholesky(revad.Array(-np.eye(2)))


def test_plain_values_are_numpys():
    a = well_conditioned((3, 3))
    lin = revad.numpy.linalg
    for name in ("inv", "det", "slogdet", "pinv", "svd", "qr", "eig"):
        got, want = getattr(lin, name)(a), getattr(np.linalg, name)(a)
        for g, w in zip(*(r if isinstance(r, tuple) else (r,) for r in (got, want)),
                        strict=True):
            np.testing.assert_array_equal(g, w)
    np.testing.assert_array_equal(lin.matrix_power(a, 3), np.linalg.matrix_power(a, 3))
    assert lin.norm(a, 2) == np.linalg.norm(a, 2)
    assert lin.LinAlgError is np.linalg.LinAlgError and lin.matrix_rank is np.linalg.matrix_rank


def test_results_are_arrays_and_vars():
    a = revad.Array(well_conditioned((2, 3, 3)))
    w, v = np.linalg.eigh(a + np.swapaxes(a, -1, -2))
    assert type(w) is revad.Array and type(v) is revad.Array and w.shape == (2, 3)
    d = np.linalg.det(revad.Array(well_conditioned((3, 3))))
    assert type(d) in (revad.Var, revad.Array) and np.shape(d.value) == ()


@pytest.mark.parametrize("f,make", [
    (np.linalg.inv, well_conditioned), (np.linalg.det, well_conditioned),
    (lambda a: np.linalg.svd(a)[1], lambda s: RNG.normal(size=s)),
    (lambda a: np.linalg.eigh(a + T(a))[1], lambda s: RNG.normal(size=s)),
    (lambda a: np.linalg.qr(a)[0], lambda s: RNG.normal(size=s)),
    (lambda a: np.linalg.norm(a, "nuc"), lambda s: RNG.normal(size=s)),
])
def test_forward_mode(f, make):
    x, v = make((3, 3)), RNG.normal(size=(3, 3))
    w = RNG.normal(size=np.shape(f(x)))
    value, tangent = revad.jvp(lambda a: np.sum(f(a) * w), (x,), (v,))
    fd = (np.sum(f(x + 1e-6 * v) * w) - np.sum(f(x - 1e-6 * v) * w)) / 2e-6
    assert value == pytest.approx(float(np.sum(f(x) * w)), rel=1e-12)
    assert tangent == pytest.approx(fd, rel=1e-5, abs=1e-7)


# ---------------------------------------------------------------------------------------------
# revad.scipy.linalg and revad.scipy.signal

scipy_linalg = pytest.importorskip("scipy.linalg")
scipy_signal = pytest.importorskip("scipy.signal")


def test_sqrtm():
    import revad.scipy.linalg as rsl
    for a in [spd_of(RNG.normal(size=(3, 3))), RNG.normal(size=(2, 3, 3)) + 6 * np.eye(3)]:
        check(lambda x: rsl.sqrtm(x) if type(x) is revad.Array else scipy_linalg.sqrtm(x), a)
    with pytest.raises(TypeError, match="complex"):
        rsl.sqrtm(revad.Array(np.diag([-1.0, 4.0])))


@pytest.mark.parametrize("sa,sb", [((3, 3), (3,)), ((3, 3), (3, 2)), ((2, 3, 3), (2, 3, 2))])
@pytest.mark.parametrize("kw", [{}, {"lower": True}, {"trans": "T"}, {"lower": True, "trans": 1},
                                {"unit_diagonal": True}])
def test_solve_triangular(sa, sb, kw):
    import revad.scipy.linalg as rsl
    a = well_conditioned(sa)  # its other triangle is not read: its gradient is zero
    check(lambda x, b: (rsl if type(x) is revad.Array else scipy_linalg).solve_triangular(
        x, b, **kw), a, RNG.normal(size=sb))


@pytest.mark.parametrize("sb", [(3,), (3, 2)])
@pytest.mark.parametrize("lower", [False, True])
def test_cho_solve(sb, lower):
    import revad.scipy.linalg as rsl
    c, _ = scipy_linalg.cho_factor(spd_of(RNG.normal(size=(3, 3))), lower=lower)
    check(lambda x, b: (rsl if type(x) is revad.Array else scipy_linalg).cho_solve(
        (x, lower), b), c, RNG.normal(size=sb))


@pytest.mark.parametrize("s1,s2", [((6,), (3,)), ((2,), (5,)), ((4, 5), (2, 3)), ((3, 3), (3, 3))])
@pytest.mark.parametrize("mode", ["full", "valid", "same"])
def test_convolve(s1, s2, mode):
    import revad.scipy.signal as rss
    check(lambda x, k: (rss if type(x) is revad.Array else scipy_signal).convolve(x, k, mode=mode),
          RNG.normal(size=s1), RNG.normal(size=s2))
    check(lambda x: rss.convolve(x, np.ones(s2), mode) if type(x) is revad.Array
          else scipy_signal.convolve(x, np.ones(s2), mode), RNG.normal(size=s1))


def test_scipy_namespaces_are_scipys_plus_revads():
    import revad.scipy.linalg as rsl
    import revad.scipy.signal as rss
    assert rsl.expm is scipy_linalg.expm and rss.correlate is scipy_signal.correlate
    a = RNG.normal(size=(3, 3))
    np.testing.assert_array_equal(rss.convolve(a, a), scipy_signal.convolve(a, a))
    np.testing.assert_array_equal(rsl.solve_triangular(a, a[0]),
                                  scipy_linalg.solve_triangular(a, a[0]))


def test_docstring_examples():
    import doctest

    import revad._linalg
    import revad.scipy.linalg
    import revad.scipy.signal
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    for module in (revad._linalg, revad.scipy.linalg, revad.scipy.signal):
        failed, attempted = doctest.testmod(module, optionflags=flags)
        assert failed == 0 and attempted > 0, module.__name__


def test_views_and_empty_stacks():
    a = well_conditioned((4, 4))
    check(lambda x: np.linalg.inv(T(x)[::-1]), a)  # a non-contiguous view
    check(lambda x: np.linalg.svd(x[::2, 1:], compute_uv=False), RNG.normal(size=(5, 4)))
    check(lambda x: np.linalg.solve(x[:, ::2], x[:, 1]), RNG.normal(size=(3, 6)) + np.eye(3, 6) * 4)
    for f in (np.linalg.inv, np.linalg.det, lambda x: np.linalg.eigh(x)[0]):
        value, g = revad.value_and_grad(lambda x, f=f: np.sum(f(x)))(np.zeros((2, 0, 0)))
        assert g.shape == (2, 0, 0)


@pytest.mark.parametrize("name", ["convolve", "solve_triangular", "cho_solve", "sqrtm"])
def test_scipy_forward_mode(name):
    import revad.scipy.linalg as rsl
    import revad.scipy.signal as rss
    a, b = spd_of(RNG.normal(size=(3, 3))), RNG.normal(size=3)
    f = {"convolve": lambda x: rss.convolve(x, a[:2, :2]),
         "solve_triangular": lambda x: rsl.solve_triangular(x, b, lower=True),
         "cho_solve": lambda x: rsl.cho_solve((x, True), b),
         "sqrtm": rsl.sqrtm}[name]
    x = np.linalg.cholesky(a) if name in ("solve_triangular", "cho_solve") else a
    v = np.tril(RNG.normal(size=x.shape)) if name != "sqrtm" else spd_of(RNG.normal(size=(3, 3)))
    w = RNG.normal(size=np.shape(f(x)))
    value, tangent = revad.jvp(lambda y: np.sum(f(y) * w), (x,), (v,))
    fd = (np.sum(f(x + 1e-6 * v) * w) - np.sum(f(x - 1e-6 * v) * w)) / 2e-6
    assert value == pytest.approx(float(np.sum(f(x) * w)), rel=1e-12)
    assert tangent == pytest.approx(fd, rel=1e-5, abs=1e-7)



# ---------------------------------------------------------------------------------------------
# Random programs: chains of the linear-algebra functions (each kept well defined: of an SPD
# matrix where it needs one) and elementwise ops, on stacks, against central differences.

def _spd(x):
    return x @ T(x) + np.eye(x.shape[-1])


def _unit_sum(ev):
    """Eigenvalues scaled to sum 1: a chain of eigvalsh steps then keeps x's magnitude, where the
    raw eigenvalues (at least 1 each) grow it at every step until the next inv is so
    ill-conditioned that revad and JAX agree to 1e-4 and central differences not at all."""
    return ev / np.sum(ev, axis=-1, keepdims=True)


def _as_matrices(d):
    """A number per matrix (a Var for a single matrix) with two unit axes, to scale by."""
    return np.reshape(d, np.shape(d) + (1, 1))


STEPS = [
    lambda x: np.linalg.inv(_spd(x)),
    lambda x: np.linalg.cholesky(_spd(x)),
    lambda x: np.linalg.solve(_spd(x), x),
    lambda x: np.linalg.pinv(_spd(x)) @ x,
    lambda x: _unit_sum(np.linalg.eigvalsh(_spd(x)))[..., None, :] * x,
    lambda x: x / np.linalg.norm(x, 2, axis=(-2, -1), keepdims=True),
    lambda x: x * _as_matrices(np.linalg.det(_spd(x) / 3)) ** (-1 / 3),
    lambda x: x + _as_matrices(np.linalg.slogdet(_spd(x))[1]),
    lambda x: np.linalg.qr(_spd(x))[0] @ x,
    lambda x: np.linalg.matrix_power(x / 3, 2),
    lambda x: np.tanh(x),
    lambda x: x @ T(x[..., ::-1, :]) / 3,
]


@given(st.lists(st.integers(0, len(STEPS) - 1), min_size=1, max_size=4),
       st.sampled_from([(3, 3), (2, 3, 3)]), st.integers(0, 2 ** 32 - 1))
@property_settings(40)
def test_random_linalg_programs(steps, shape, seed):
    rng = np.random.default_rng(seed)
    x, w = rng.uniform(-1.0, 1.0, size=shape), rng.normal(size=shape)

    def loss(a):
        for k in steps:
            a = STEPS[k](a)
        return np.sum(a * w)

    value, g = revad.value_and_grad(loss)(x)
    assert value == pytest.approx(float(loss(x)), rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(g, fd_array_gradient(lambda v: float(loss(v)), x),
                               rtol=1e-4, atol=1e-6)
    count_programs()
