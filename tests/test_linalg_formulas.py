"""revad._linalg's VJP and JVP formulas on plain NumPy values, against central differences.

For each function f and random directions dx (one per argument) and cotangents g (one per
output): the JVP equals the directional derivative (f(x + h dx) - f(x - h dx)) / 2h, and
<g, that derivative> equals sum_k <vjp_k(g), dx_k>. Shapes: single matrices and stacks.
Symmetric-input functions (cholesky, eigh) are checked along symmetric directions (their
gradients are symmetric by convention), spectra are well separated (see _linalg's docstring).
"""
import numpy as np
import pytest

from revad import _linalg as L

RNG = np.random.default_rng(2026)
H = 1e-6


def _tuple(x):
    return tuple(x) if isinstance(x, tuple) else (x,)


def _T(a):
    return np.swapaxes(a, -1, -2)


def _sym(a):
    return (a + _T(a)) / 2


def check(f, args, vjps, jvps=None, kwargs=None, directions=None, rtol=1e-6):
    """vjps/jvps: the makers per argument (None: not differentiated)."""
    kwargs = kwargs or {}
    args = [np.asarray(a, dtype=np.float64) for a in args]
    dxs = directions or [RNG.normal(size=a.shape) for a in args]
    dxs = [None if m is None else d for m, d in zip(vjps, dxs, strict=True)]

    def shifted(t):
        moved = [a if d is None else a + t * d for a, d in zip(args, dxs, strict=True)]
        return _tuple(f(*moved, **kwargs))
    ans = f(*args, **kwargs)
    tangent = [(p - m) / (2 * H) for p, m in zip(shifted(H), shifted(-H), strict=True)]
    gs = [RNG.normal(size=np.shape(o)) for o in _tuple(ans)]
    g = tuple(gs) if isinstance(ans, tuple) else gs[0]
    lhs = sum(float(np.sum(gi * ti)) for gi, ti in zip(gs, tangent, strict=True))
    rhs = sum(float(np.sum(m(ans, *args, **kwargs)(g) * d))
              for m, d in zip(vjps, dxs, strict=True) if m is not None)
    scale = max(1.0, abs(lhs))
    assert abs(lhs - rhs) <= rtol * 1e2 * scale, (lhs, rhs)
    if jvps is not None:
        total = None
        for m, d in zip(jvps, dxs, strict=True):
            if m is None:
                continue
            t = _tuple(m(d, ans, *args, **kwargs))
            total = t if total is None else tuple(x + y for x, y in zip(total, t, strict=True))
        for t, fd in zip(total, tangent, strict=True):
            np.testing.assert_allclose(t, fd, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(fd).max()))
    return lhs


SQUARE = [(3, 3), (1, 1), (2, 4, 4), (2, 1, 3, 3)]
RECT = [(4, 3), (3, 4), (3, 3), (2, 5, 2), (2, 2, 5), (1, 1)]


def well_conditioned(shape):
    n = shape[-1]
    sign = RNG.choice([-1, 1], size=shape[:-2] + (1, 1))
    return RNG.normal(size=shape) + 2 * n * np.eye(n) * sign


def spd(shape):
    b = RNG.normal(size=shape)
    return b @ _T(b) + shape[-1] * np.eye(shape[-1])


def symmetric(shape):
    return _sym(RNG.normal(size=shape))


@pytest.mark.parametrize("shape", SQUARE)
def test_inv(shape):
    check(np.linalg.inv, [well_conditioned(shape)], [L._inv_vjp], [L._inv_jvp])


@pytest.mark.parametrize("sa,sb", [((3, 3), (3,)), ((3, 3), (3, 2)), ((2, 3, 3), (2, 3, 4)),
                                   ((2, 3, 3), (3,)), ((3, 3), (2, 3, 1)),
                                   ((2, 1, 3, 3), (4, 3, 2))])
def test_solve(sa, sb):
    check(np.linalg.solve, [well_conditioned(sa), RNG.normal(size=sb)],
          [L._solve_vjp_a, L._solve_vjp_b], [L._solve_jvp_a, L._solve_jvp_b])


@pytest.mark.parametrize("shape", SQUARE)
def test_det_slogdet(shape):
    a = well_conditioned(shape)
    check(np.linalg.det, [a], [L._det_vjp], [L._det_jvp])
    check(lambda x: tuple(np.linalg.slogdet(x)), [a], [L._slogdet_vjp], [L._slogdet_jvp])


@pytest.mark.parametrize("shape", SQUARE)
@pytest.mark.parametrize("upper", [False, True])
def test_cholesky(shape, upper):
    if upper and np.lib.NumpyVersion(np.__version__) < "2.0.0":
        pytest.skip("cholesky(upper=) is new in NumPy 2.0")
    a = spd(shape)
    check(np.linalg.cholesky, [a], [L._cholesky_vjp], [L._cholesky_jvp],
          kwargs={"upper": upper}, directions=[symmetric(shape)])


@pytest.mark.parametrize("a", [[[1.0, 2.0], [2.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]],
                               [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]])
def test_det_of_singular_matrices(a):
    check(np.linalg.det, [np.array(a)], [L._det_vjp], [L._det_jvp])


def test_cholesky_gradient_is_symmetric():
    a = spd((4, 4))
    g = L._cholesky_vjp(np.linalg.cholesky(a), a)(RNG.normal(size=(4, 4)))
    np.testing.assert_array_equal(g, g.T)


@pytest.mark.parametrize("shape", SQUARE)
@pytest.mark.parametrize("uplo", ["L", "U"])
def test_eigh(shape, uplo):
    a = symmetric(shape)
    check(lambda x, **k: tuple(np.linalg.eigh(x, **k)), [a], [L._eigh_vjp], [L._eigh_jvp],
          kwargs={"UPLO": uplo}, directions=[symmetric(shape)])
    check(np.linalg.eigvalsh, [a], [L._eigvalsh_vjp], [L._eigvalsh_jvp],
          kwargs={"UPLO": uplo}, directions=[symmetric(shape)])


def real_spectrum(shape):
    n = shape[-1]
    p = RNG.normal(size=shape) + n * np.eye(n)
    w = RNG.permuted(np.broadcast_to(np.arange(1.0, n + 1), shape[:-1]), axis=-1)
    return (p * w[..., None, :]) @ np.linalg.inv(p)


@pytest.mark.parametrize("shape", SQUARE)
def test_eig(shape):
    check(L._eig_real, [real_spectrum(shape)], [L._eig_vjp], [L._eig_jvp])


def test_eig_complex_spectrum_raises():
    with pytest.raises(TypeError, match="complex eigenvalues"):
        L._eig_real(np.array([[0.0, -1.0], [1.0, 0.0]]))


def _projector_cotangent(g, basis):
    """The cotangent of basis from one of P = basis basis^T."""
    return (g + _T(g)) @ basis


@pytest.mark.parametrize("shape", RECT)
@pytest.mark.parametrize("full", [False, True])
def test_svd(shape, full):
    a = RNG.normal(size=shape)
    check(lambda x, compute_uv: np.linalg.svd(x, compute_uv=compute_uv), [a], [L._svd_vjp],
          [L._svd_jvp], kwargs={"compute_uv": False})
    m, n = shape[-2:]
    k = min(m, n)
    if not full or m == n:
        check(lambda x, **kw: tuple(np.linalg.svd(x, **kw)), [a], [L._svd_vjp], [L._svd_jvp],
              kwargs={"full_matrices": full})
        return

    # The completing columns are any orthonormal basis: only what does not depend on the
    # choice (here U2 U2^T and V2 V2^T, and the first k columns) has a gradient.
    def f(x):
        u, s, vh = np.linalg.svd(x)
        u2, v2 = u[..., k:], _T(vh[..., k:, :])
        return u2 @ _T(u2), u[..., :k], s, vh[..., :k, :], v2 @ _T(v2)

    def vjp(ans, x):
        u, s, vh = np.linalg.svd(x)
        inner = L._svd_vjp((u, s, vh), x)

        def back(g):
            gp, gu1, gs, gvh1, gpv = g
            gu = np.concatenate([gu1, _projector_cotangent(gp, u[..., k:])], axis=-1)
            gvh2 = _T(_projector_cotangent(gpv, _T(vh[..., k:, :])))
            return inner((gu, gs, np.concatenate([gvh1, gvh2], axis=-2)))
        return back

    def jvp(g, ans, x):
        u, s, vh = np.linalg.svd(x)
        du, ds, dvh = L._svd_jvp(g, (u, s, vh), x)
        u2, v2, du2, dv2 = u[..., k:], _T(vh[..., k:, :]), du[..., k:], _T(dvh[..., k:, :])
        return (du2 @ _T(u2) + u2 @ _T(du2), du[..., :k], ds, dvh[..., :k, :],
                dv2 @ _T(v2) + v2 @ _T(dv2))
    check(f, [a], [vjp], [jvp])


@pytest.mark.parametrize("shape", RECT)
@pytest.mark.parametrize("mode", ["reduced", "complete", "r"])
def test_qr(shape, mode):
    a = RNG.normal(size=shape)
    m, n = shape[-2:]
    if mode != "complete" or m <= n:
        check(lambda x, mode: np.linalg.qr(x, mode=mode) if mode == "r"
              else tuple(np.linalg.qr(x, mode=mode)), [a], [L._qr_vjp], [L._qr_jvp],
              kwargs={"mode": mode})
        return

    def f(x):  # as for svd: the completing columns through their projector only
        q, r = np.linalg.qr(x, mode="complete")
        return q[..., n:] @ _T(q[..., n:]), q[..., :n], r

    def vjp(ans, x):
        q, r = np.linalg.qr(x, mode="complete")
        inner = L._qr_vjp((q, r), x, mode="complete")

        def back(g):
            gp, gq1, gr = g
            return inner((np.concatenate([gq1, _projector_cotangent(gp, q[..., n:])], axis=-1), gr))
        return back

    def jvp(g, ans, x):
        q, r = np.linalg.qr(x, mode="complete")
        dq, dr = L._qr_jvp(g, (q, r), x, mode="complete")
        return dq[..., n:] @ _T(q[..., n:]) + q[..., n:] @ _T(dq[..., n:]), dq[..., :n], dr
    check(f, [a], [vjp], [jvp])


def test_qr_raw_refused():
    a = RNG.normal(size=(3, 2))
    with pytest.raises(TypeError, match="raw"):
        L._qr_vjp(np.linalg.qr(a, mode="raw"), a, mode="raw")


@pytest.mark.parametrize("shape", RECT)
def test_pinv(shape):
    check(np.linalg.pinv, [RNG.normal(size=shape)], [L._pinv_vjp], [L._pinv_jvp])


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, -1, -4])
def test_matrix_power_value(n):
    a = well_conditioned((2, 3, 3))
    np.testing.assert_allclose(L._matrix_power(a, n, np.linalg.inv),
                               np.linalg.matrix_power(a, n), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# revad.scipy: linalg.sqrtm, solve_triangular, cho_solve; signal.convolve

sl = pytest.importorskip("scipy.linalg")
ss = pytest.importorskip("scipy.signal")


@pytest.mark.parametrize("shape", [(3, 3), (1, 1), (2, 4, 4)])
def test_sqrtm(shape):
    from revad.scipy import linalg as RL
    a = spd(shape)
    check(RL._sqrtm_real, [a], [RL._sqrtm_vjp], [RL._sqrtm_jvp])
    nonsym = RNG.normal(size=shape) + 2 * shape[-1] * np.eye(shape[-1])  # eigenvalues > 0
    check(RL._sqrtm_real, [nonsym], [RL._sqrtm_vjp], [RL._sqrtm_jvp])


def test_sqrtm_complex_raises():
    from revad.scipy import linalg as RL
    with pytest.raises(TypeError, match="complex"):
        RL._sqrtm_real(np.diag([-1.0, 1.0]))


def triangular(shape, lower):
    a = well_conditioned(shape)
    return np.tril(a) if lower else np.triu(a)


@pytest.mark.parametrize("sa,sb", [((3, 3), (3,)), ((3, 3), (3, 2)), ((2, 4, 4), (2, 4, 3)),
                                   ((2, 3, 3), (3, 1))])
@pytest.mark.parametrize("lower", [False, True])
@pytest.mark.parametrize("trans", [0, 1, "T", "C"])
@pytest.mark.parametrize("unit", [False, True])
def test_solve_triangular(sa, sb, lower, trans, unit):
    from revad.scipy import linalg as RL
    a, b = triangular(sa, lower), RNG.normal(size=sb)
    kw = {"lower": lower, "trans": trans, "unit_diagonal": unit}
    da = RNG.normal(size=sa)  # the unread triangle too: its derivative is zero
    check(sl.solve_triangular, [a, b], [RL._solve_triangular_vjp_a, RL._solve_triangular_vjp_b],
          [RL._solve_triangular_jvp_a, RL._solve_triangular_jvp_b], kwargs=kw,
          directions=[da, RNG.normal(size=sb)])


@pytest.mark.parametrize("sc,sb", [((3, 3), (3,)), ((3, 3), (3, 2)), ((2, 4, 4), (2, 4, 3)),
                                   ((2, 3, 3), (3, 1))])
@pytest.mark.parametrize("lower", [False, True])
def test_cho_solve(sc, sb, lower):
    from revad.scipy import linalg as RL
    c = np.linalg.cholesky(spd(sc))
    c = c if lower else _T(c)
    c = c + 0.3 * _T(c)  # garbage in the unread triangle, as cho_factor may leave
    b = RNG.normal(size=sb)
    check(RL._cho_solve, [c, b, lower], [RL._cho_solve_vjp_c, RL._cho_solve_vjp_b, None],
          [RL._cho_solve_jvp_c, RL._cho_solve_jvp_b, None])


@pytest.mark.parametrize("s1,s2", [((5,), (3,)), ((3,), (5,)), ((1,), (4,)), ((4, 5), (2, 3)),
                                   ((2, 3), (4, 5)), ((3, 4), (3, 4)), ((2, 3, 4), (2, 2, 2))])
@pytest.mark.parametrize("mode", ["full", "valid", "same"])
@pytest.mark.parametrize("method", ["direct", "fft"])
def test_convolve(s1, s2, mode, method):
    from revad.scipy import signal as RS
    if mode == "valid" and not (all(a >= b for a, b in zip(s1, s2, strict=True))
                                or all(a <= b for a, b in zip(s1, s2, strict=True))):
        pytest.skip("scipy: 'valid' needs one input at least as large in every dimension")
    check(ss.convolve, [RNG.normal(size=s1), RNG.normal(size=s2)],
          [RS._convolve_vjp(0), RS._convolve_vjp(1)], [RS._convolve_jvp(0), RS._convolve_jvp(1)],
          kwargs={"mode": mode, "method": method})
