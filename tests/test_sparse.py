"""Sparse Hessians and Jacobians (issue 17): the tape's sparsity patterns against the dense
derivatives' nonzeros, the colourings' defining properties, sparse results against the dense
ones (revad.hessian, revad.jacobian) on random programs, SciPy's trust-constr with a sparse
Hessian, jacobian's choice of mode, and misuse."""
import itertools

import mpmath as mp
import numpy as np
import pytest
import scipy.optimize
import scipy.sparse
from hypothesis import given
from hypothesis import strategies as st

import revad
import revad.numpy as rnp
from revad import _core, _sparse

from conftest import count_programs, property_settings
from test_ops import BINARY, UNARY


def rosen_loop(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))


def rosen_vec(x):
    return rnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def dense_nonzeros(M, tol=0.0):
    return np.abs(np.asarray(M)) > tol


def pattern(P):
    assert scipy.sparse.issparse(P) and P.dtype == bool
    return P.toarray()


# -- patterns: exact on known structures, a superset of the dense nonzeros ---------------------

def tridiagonal(n):
    return (np.abs(np.subtract.outer(np.arange(n), np.arange(n))) <= 1)


@pytest.mark.parametrize("f", [rosen_loop, rosen_vec])
def test_banded_hessian_pattern_is_exact(f):
    x = np.random.default_rng(1).normal(size=12)
    P = pattern(revad.hessian_sparsity(f)(x))
    np.testing.assert_array_equal(P, tridiagonal(12))
    np.testing.assert_array_equal(dense_nonzeros(revad.hessian(f)(x)), P)


def test_arrow_hessian_pattern_is_exact():
    def f(x):  # x0 times a sum of squares: H[0, j], H[j, j] for j >= 1; not H[0, 0]
        return x[0] * rnp.sum(x[1:] ** 2) + rnp.sum(x)

    x = np.random.default_rng(2).normal(size=7)
    want = np.zeros((7, 7), dtype=bool)
    want[0, 1:] = want[1:, 0] = True
    want[np.arange(1, 7), np.arange(1, 7)] = True
    np.testing.assert_array_equal(pattern(revad.hessian_sparsity(f)(x)), want)
    np.testing.assert_array_equal(dense_nonzeros(revad.hessian(f)(x)), want)


def test_block_diagonal_hessian_pattern_is_exact():
    def f(x):
        X = rnp.reshape(x, (-1, 3))
        return rnp.sum(X[:, 0] * X[:, 1] + rnp.sin(X[:, 2] * X[:, 0]))

    x = np.random.default_rng(3).normal(size=12)
    block = np.array([[1, 1, 1], [1, 0, 0], [1, 0, 1]], dtype=bool)
    want = np.kron(np.eye(4, dtype=bool), block)
    np.testing.assert_array_equal(pattern(revad.hessian_sparsity(f)(x)), want)
    np.testing.assert_array_equal(dense_nonzeros(revad.hessian(f)(x)), want)


@pytest.mark.parametrize("f, factor", [
    (lambda x: rnp.sum(rnp.exp(x)), 1.0),
    (lambda x: sum(revad.exp(x[i]) * 2.0 for i in range(len(x))), 2.0)])
def test_diagonal_function_has_a_diagonal_hessian(f, factor):
    x = np.linspace(-1, 1, 9)
    np.testing.assert_array_equal(pattern(revad.hessian_sparsity(f)(x)), np.eye(9, dtype=bool))
    H = revad.hessian(f, sparse=True)(x)
    assert H.nnz == 9
    np.testing.assert_allclose(H.toarray(), np.diag(factor * np.exp(x)), rtol=1e-14)


def test_linear_and_flat_ops_add_no_interactions():
    def f(x):  # linear ops, piecewise linear ones, zero-derivative ones: all H = 0
        return (rnp.sum(rnp.abs(x) - 3 * x + rnp.maximum(x, 0.5)) + rnp.sum(rnp.floor(x) * x)
                + revad.relu(x[0]) * 2.0)

    x = np.array([0.3, -1.7, 2.2])
    assert revad.hessian_sparsity(f)(x).nnz == 0
    assert revad.hessian(f, sparse=True)(x).nnz == 0
    np.testing.assert_array_equal(revad.hessian(f)(x), np.zeros((3, 3)))


def test_jacobian_patterns_exact_on_known_structures():
    x = np.random.default_rng(4).normal(size=6)
    band = lambda x: x[1:] * x[:-1] + rnp.sin(x[1:])  # noqa: E731
    want = np.zeros((5, 6), dtype=bool)
    want[np.arange(5), np.arange(5)] = want[np.arange(5), np.arange(1, 6)] = True
    np.testing.assert_array_equal(pattern(revad.jacobian_sparsity(band)(x)), want)
    np.testing.assert_array_equal(dense_nonzeros(revad.jacobian(band)(x)), want)
    cums = lambda x: rnp.cumsum(x)  # noqa: E731
    np.testing.assert_array_equal(pattern(revad.jacobian_sparsity(cums)(x)),
                                  np.tril(np.ones((6, 6), dtype=bool)))


@pytest.mark.parametrize("backwards", [False, True])
def test_running_sums_in_a_scalar_loop(backwards):
    # the running sum's set grows by one index an entry (in place in its region, or, taken
    # backwards, merged): the pattern is triangular either way
    n = 150

    def running(x):
        s, out = 0.0, []
        for i in (range(n - 1, -1, -1) if backwards else range(n)):
            s = s + x[i] * x[i]
            out.append(s)
        return out

    x = np.random.default_rng(7).normal(size=n)
    want = np.tril(np.ones((n, n), dtype=bool))
    if backwards:
        want = want[:, ::-1]
    np.testing.assert_array_equal(pattern(revad.jacobian_sparsity(running)(x)), want)
    np.testing.assert_allclose(revad.jacobian(running, sparse=True)(x).toarray(),
                               revad.jacobian(running)(x), rtol=1e-14)
    H = revad.hessian(lambda x: running(x)[-1] ** 2, sparse=True)(x)
    np.testing.assert_allclose(H.toarray(), revad.hessian(lambda x: running(x)[-1] ** 2)(x),
                               rtol=1e-12)


# -- colourings ---------------------------------------------------------------------------------

def is_star_colouring(A, colour):
    """Adjacent vertices differ; no path on four vertices takes two colours only."""
    n = len(A)
    nb = [[j for j in range(n) if A[i, j] and j != i] for i in range(n)]
    for i in range(n):
        if any(colour[j] == colour[i] for j in nb[i]):
            return False
    for a in range(n):
        for b in nb[a]:
            for c in nb[b]:
                if c == a:
                    continue
                for d in nb[c]:
                    if d in (a, b):
                        continue
                    if colour[a] == colour[c] and colour[b] == colour[d]:
                        return False
    return True


@given(st.integers(2, 12), st.floats(0.05, 0.6), st.integers(0, 2 ** 31 - 1))
@property_settings(60)
def test_star_colouring_is_one_and_recovers_any_symmetric_matrix(n, density, seed):
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(n, n)) * (rng.random((n, n)) < density)
    M = M + M.T + np.diag(rng.normal(size=n))
    S = scipy.sparse.csr_matrix(M)
    S.sort_indices()
    colour, p = _core._star_colouring(S.indptr, S.indices)
    assert is_star_colouring(M != 0, colour)
    V = np.zeros((n, p))
    V[np.arange(n), colour] = 1.0
    vals = _sparse.recover_symmetric(S.indptr, S.indices, colour, p, M @ V)
    np.testing.assert_array_equal(scipy.sparse.csr_matrix((vals, S.indices, S.indptr),
                                                          shape=(n, n)).toarray(), M)


@given(st.integers(1, 10), st.integers(1, 10), st.floats(0.05, 0.6), st.integers(0, 2 ** 31 - 1))
@property_settings(60)
def test_column_colouring_separates_columns_that_share_a_row(m, n, density, seed):
    rng = np.random.default_rng(seed)
    S = scipy.sparse.csr_matrix(rng.random((m, n)) < density)
    colour, p = _core._column_colouring(S.indptr, S.indices, n)
    A = S.toarray()
    for j, k in itertools.combinations(range(n), 2):
        if (A[:, j] & A[:, k]).any():
            assert colour[j] != colour[k]
    assert p == (colour.max() + 1 if n else 0)


@pytest.mark.parametrize("n", [10, 100, 10 ** 4])
def test_chained_rosenbrock_takes_three_colours_whatever_n(n):
    x = np.random.default_rng(n).normal(size=n)
    f = rosen_loop if n <= 100 else rosen_vec
    P = revad.hessian_sparsity(f)(x)
    _, p = _core._star_colouring(P.indptr, P.indices)
    assert p <= 3
    stats = {}
    H = _sparse.sparse_hessian(f, (x,), 0, "hessian", stats)
    assert stats["colours"] <= 3
    d = np.diag(H.toarray()) if n <= 100 else H.diagonal()
    want = np.zeros(n)  # the diagonal, analytically
    want[:-1] += 1200 * x[:-1] ** 2 - 400 * x[1:] + 2
    want[1:] += 200
    np.testing.assert_allclose(d, want, rtol=1e-12)
    np.testing.assert_allclose(H.diagonal(1), -400 * x[:-1], rtol=1e-12)


# -- sparse equals dense on random programs -----------------------------------------------------

_UN = [revad.sin, revad.exp, revad.tanh, revad.square, revad.sigmoid, abs, lambda v: v * 2.5,
       revad.cos]
_BIN = [lambda a, b: a * b, lambda a, b: a - b, lambda a, b: a / (1.5 + b * b),
        lambda a, b: revad.hypot(a, b + 2.0), lambda a, b: revad.maximum(a, b) * b]


@st.composite
def programs(draw):
    n = draw(st.integers(2, 7))
    terms = draw(st.lists(st.tuples(st.integers(0, len(_UN) - 1), st.integers(0, len(_BIN) - 1),
                                    st.integers(0, n - 1), st.integers(0, n - 1)),
                          min_size=1, max_size=8))
    x = draw(st.lists(st.floats(-0.9, 0.9), min_size=n, max_size=n))
    return terms, np.array(x)


def program_terms(terms, x):
    return [_UN[u](_BIN[b](x[i], x[j])) for u, b, i, j in terms]


@given(programs())
@property_settings(80)
def test_sparse_hessian_equals_dense_on_random_programs(prog):
    terms, x = prog
    f = lambda x: sum(program_terms(terms, x))  # noqa: E731
    H = revad.hessian(f, sparse=True)(x)
    D = revad.hessian(f)(x)
    np.testing.assert_allclose(H.toarray(), D, rtol=1e-10, atol=1e-10)
    assert not (dense_nonzeros(D) & ~pattern(revad.hessian_sparsity(f)(x))).any()
    count_programs()


@given(programs())
@property_settings(60)
def test_sparse_jacobians_equal_dense_on_random_programs(prog):
    terms, x = prog
    f = lambda x: rnp.array(program_terms(terms, x))  # noqa: E731
    D = revad.jacobian(f)(x)
    np.testing.assert_allclose(revad.jacrev(f)(x), D, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(revad.jacfwd(f)(x), D, rtol=1e-13, atol=1e-14)
    for jac in (revad.jacobian, revad.jacrev, revad.jacfwd):
        J = jac(f, sparse=True)(x)
        assert scipy.sparse.isspmatrix_csr(J)
        np.testing.assert_allclose(J.toarray(), D, rtol=1e-10, atol=1e-10)
    assert not (dense_nonzeros(D) & ~pattern(revad.jacobian_sparsity(f)(x))).any()
    count_programs()


def test_every_kind_sparse_equals_dense():
    rng = np.random.default_rng(5)
    A = rng.normal(size=(3, 4))

    @revad.primitive
    def cube(v):
        return v ** 3

    revad.defvjp(cube, lambda ans, v: lambda g: 3 * v ** 2 * g)

    def f(x):  # matmul of two variables, dot, sums along axes, broadcasting, a primitive
        W = rnp.reshape(x[:12], (3, 4))
        h = W @ x[12:16] + A @ rnp.tanh(x[12:16])
        return (rnp.sum(h ** 2) + rnp.dot(x[:4], x[4:8]) + rnp.sum(rnp.sum(W, axis=0) ** 3)
                + cube(x[16]) * x[0] + rnp.sum(rnp.exp(x[8:12][:, None] * x[12:14][None, :])))

    x = rng.normal(size=17) * 0.5
    D = revad.hessian(f)(x)
    np.testing.assert_allclose(revad.hessian(f, sparse=True)(x).toarray(), D, rtol=1e-10,
                               atol=1e-12)
    g = lambda x: rnp.concatenate([rnp.reshape(rnp.reshape(x[:12], (3, 4)) @ x[12:16], (3,)),  # noqa: E731
                                   x[:4] * x[4:8], rnp.sum(rnp.reshape(x[:12], (3, 4)), axis=1)])
    Dj = revad.jacobian(g)(x)
    for jac in (revad.jacobian, revad.jacrev, revad.jacfwd):
        np.testing.assert_allclose(jac(g, sparse=True)(x).toarray(), Dj, rtol=1e-12,
                                   atol=1e-14)


def test_special_functions_are_nonlinear_elementwise():
    special = pytest.importorskip("revad.scipy.special")

    def f(x):
        return rnp.sum(special.gammaln(x[:3] * x[3:] + 2.0))

    x = np.array([0.3, 0.8, 1.2, 0.5, 0.1, 0.9])
    want = np.zeros((6, 6), dtype=bool)
    for i in range(3):
        want[np.ix_([i, i + 3], [i, i + 3])] = True
    np.testing.assert_array_equal(pattern(revad.hessian_sparsity(f)(x)), want)
    np.testing.assert_allclose(revad.hessian(f, sparse=True)(x).toarray(), revad.hessian(f)(x),
                               rtol=1e-10, atol=1e-12)


# -- the op rows' curvature against mpmath ------------------------------------------------------

_POINTS = [0.37, 0.61, 1.3, 2.1]


def _real(v):
    return isinstance(v, mp.mpf) and mp.isfinite(v)


def test_every_row_classification_is_safe_against_mpmath():
    """A row classified linear has second derivative 0 (a flat one first derivative 0) at
    generic points; a binary row's cross term is 0 where it says so. Over-estimating is safe,
    under-estimating would be a wrong Hessian."""
    with mp.workdps(30):
        _check_rows(_core._curvatures())


def _check_rows(curves):
    for name, bits in curves.items():
        if name.startswith("_") or name not in UNARY and name not in BINARY:
            continue
        if name in UNARY:
            fn = UNARY[name][0]
            for x in _POINTS:
                try:
                    d1, d2 = mp.diff(fn, mp.mpf(x), 1), mp.diff(fn, mp.mpf(x), 2)
                except (ValueError, ZeroDivisionError):
                    continue
                if not (bits & 4) and _real(d2):
                    assert abs(d2) < 1e-15, (name, x, d2)
                if not (bits & 1) and _real(d1):
                    assert abs(d1) < 1e-15, (name, x, d1)
        else:
            fn = BINARY[name][0]
            vv, vc, cv = bits
            assert vc == vv & 5 and cv == vv & 18
            for a, b in itertools.product(_POINTS, _POINTS[1:]):
                if a == b:
                    continue
                for order, bit in (((2, 0), 4), ((1, 1), 8), ((0, 2), 16)):
                    try:
                        d = mp.diff(lambda u, v: fn(u, v), (mp.mpf(a), mp.mpf(b)), order)
                    except (ValueError, ZeroDivisionError):
                        continue
                    if not (vv & bit) and _real(d):
                        assert abs(d) < 1e-15, (name, a, b, order, d)


# -- one recording, the mode choice -------------------------------------------------------------

def test_jacrev_and_jacfwd_record_f_once():
    calls = []

    def f(x):
        calls.append(1)
        return rnp.sin(x) * x[0]

    x = np.linspace(0.1, 1, 5)
    J = revad.jacrev(f)(x)
    assert len(calls) == 1
    want = np.diag(np.cos(x) * x[0])
    want[:, 0] += np.sin(x)
    np.testing.assert_allclose(J, want, rtol=1e-14)
    np.testing.assert_allclose(revad.jacfwd(f)(x), want, rtol=1e-14)
    assert len(calls) == 2


def test_jacobian_picks_the_side_with_fewer_sweeps(monkeypatch):
    used = []
    rev, fwd = _sparse._reverse_rows, _sparse._forward_columns
    monkeypatch.setattr(_sparse, "_reverse_rows", lambda *a: used.append("rev") or rev(*a))
    monkeypatch.setattr(_sparse, "_forward_columns", lambda *a: used.append("fwd") or fwd(*a))
    rng = np.random.default_rng(6)
    A = rng.normal(size=(2, 40))
    wide = lambda x: rnp.tanh(A @ x)  # 2 outputs, 40 inputs: reverse  # noqa: E731
    tall = lambda x: rnp.tanh(A.T @ x)  # 40 outputs, 2 inputs: forward  # noqa: E731
    x, y = rng.normal(size=40) * 0.1, rng.normal(size=2)
    Jw = revad.jacobian(wide)(x)
    np.testing.assert_allclose(Jw, (1 - np.tanh(A @ x) ** 2)[:, None] * A, rtol=1e-13)
    assert used == ["rev"]
    Jt = revad.jacobian(tall)(y)
    np.testing.assert_allclose(Jt, (1 - np.tanh(A.T @ y) ** 2)[:, None] * A.T, rtol=1e-13)
    assert used == ["rev", "fwd"]
    # sparse: the side with fewer colours; a band takes 2 either way (one sweep kind only)
    band = lambda x: x[1:] * x[:-1]  # noqa: E731
    want = revad.jacobian(band)(np.arange(1.0, 8.0))
    used.clear()
    J = revad.jacobian(band, sparse=True)(np.arange(1.0, 8.0))
    np.testing.assert_allclose(J.toarray(), want)
    assert len(used) == 1
    used.clear()
    rowsum = lambda x: rnp.array([rnp.sum(x), x[0] * 2.0])  # 2 dense-ish rows: reverse  # noqa: E731
    J = revad.jacobian(rowsum, sparse=True)(np.ones(30))
    assert used == ["rev"]
    np.testing.assert_array_equal(J.toarray()[0], np.ones(30))


def test_jacobian_outputs_numbers_lists_and_constants():
    x = np.array([1.0, 2.0])
    np.testing.assert_array_equal(revad.jacrev(lambda x: [x[0] * x[1], x[1]])(x),
                                  [[2.0, 1.0], [0.0, 1.0]])
    np.testing.assert_array_equal(revad.jacfwd(lambda x: np.ones(3))(x), np.zeros((3, 2)))
    np.testing.assert_array_equal(revad.jacobian(lambda x: x)(x), np.eye(2))
    assert revad.jacobian(lambda x: x * x)(3.0) == 6.0
    assert revad.jacobian(lambda x: x * x, sparse=True)(3.0).toarray().tolist() == [[6.0]]


# -- SciPy's trust-constr with the sparse Hessian -----------------------------------------------

def test_trust_constr_with_the_sparse_hessian_converges():
    x0 = np.full(30, -0.5)
    res = scipy.optimize.minimize(revad.value_and_grad(rosen_vec), x0, jac=True,
                                  hess=revad.hessian(rosen_vec, sparse=True),
                                  method="trust-constr",
                                  options={"gtol": 1e-10, "xtol": 1e-14, "maxiter": 2000})
    assert res.success or res.status in (1, 2)
    np.testing.assert_allclose(res.x, np.ones(30), atol=1e-6)


# -- misuse -------------------------------------------------------------------------------------

def test_bad_input_raises_clear_errors():
    x = np.ones(3)
    with pytest.raises(TypeError, match="must return a scalar"):
        revad.hessian(lambda x: x * 2, sparse=True)(x)
    with pytest.raises(TypeError, match="must return a scalar"):
        revad.hessian_sparsity(lambda x: x * 2)(x)
    with pytest.raises(TypeError, match="one argnum"):
        revad.jacobian_sparsity(lambda x: x, argnums=(0, 1))
    with pytest.raises(TypeError, match="got a dict"):
        revad.jacobian_sparsity(lambda x: x)({"a": 1.0})
    with pytest.raises(TypeError, match="returned a str"):
        revad.jacobian_sparsity(lambda x: "x")(x)
    with pytest.raises(TypeError, match="one argnum"):
        revad.hessian(rosen_vec, argnums=1.0, sparse=True)
    with pytest.raises(TypeError, match="one argnum"):
        revad.jacrev(rosen_vec, argnums=True, sparse=True)
    with pytest.raises(TypeError, match="sparse is True or False"):
        revad.hessian(rosen_vec, sparse="yes")
    with pytest.raises(TypeError, match="out of range"):
        revad.hessian(rosen_vec, argnums=2, sparse=True)(x)
    with pytest.raises(TypeError, match="got a list"):
        revad.hessian(rosen_loop, sparse=True)([1.0, 2.0])
    with pytest.raises(TypeError, match="dtype complex128"):
        revad.jacobian(lambda x: x, sparse=True)(np.ones(2, dtype=complex))
    with pytest.raises(TypeError, match="not differentiable again"):
        revad.grad(lambda t: revad.hessian(rosen_vec, sparse=True)(np.ones(3)).sum() * t)(1.0)
    # an integer array is taken as floats, as grad takes it
    H = revad.hessian(rosen_vec, sparse=True)(np.array([1, 2, 3]))
    np.testing.assert_allclose(H.toarray(), revad.hessian(rosen_vec)(np.array([1.0, 2.0, 3.0])))


def test_non_1d_arguments_are_flattened():
    def f(X):
        return rnp.sum(X[:, 0] * X[:, 1] ** 2)

    X = np.arange(1.0, 7.0).reshape(3, 2)
    H = revad.hessian(f, sparse=True)(X)
    assert H.shape == (6, 6)
    np.testing.assert_allclose(H.toarray(), revad.hessian(f)(X).reshape(6, 6))
    J = revad.jacobian(lambda X: X * X, sparse=True)(X)
    np.testing.assert_allclose(J.toarray(), np.diag(2 * X.ravel()))


def test_dense_forms_still_nest():
    # inside a derivative the dense transforms record themselves (differentiable again):
    # d/dt [t * dJ/dx of x * t] = d/dt t^2 = 2t
    for jac in (revad.jacobian, revad.jacrev, revad.jacfwd):
        assert revad.grad(lambda t: jac(lambda x: x * t)(2.0) * t)(1.5) == pytest.approx(3.0)
        # J = diag(2 x t) at x = (2, 2): sum(J) t = 8 t^2, its derivative 16 t
        g = revad.grad(lambda t: rnp.sum(jac(lambda x: x * x * t)(np.full(2, 2.0))) * t)(1.5)
        assert g == pytest.approx(24.0)
