"""``scipy.linalg`` for revad Arrays: ``sqrtm``, ``solve_triangular`` and ``cho_solve`` are
differentiable (SciPy computes the values; their VJPs and JVPs are below); every other name is
SciPy's own. Stacks of matrices work where SciPy's functions take them. The VJPs of the two
solvers call the solvers' primitives (on Arrays they would record too).
"""
import numpy as np
import scipy.linalg as _sl  # type: ignore[import-untyped]

from revad._linalg import _NODES, _T, _unbroadcast
from revad._primitive import defjvp, defvjp, primitive


def _sqrtm_real(a, **kwargs):
    """scipy.linalg.sqrtm, refusing a complex root (revad differentiates real numbers only)."""
    x = _sl.sqrtm(a, **kwargs)
    if np.iscomplexobj(x):
        raise TypeError("revad: scipy.linalg.sqrtm of this matrix is complex (it has a negative "
                        "eigenvalue); complex numbers are not supported")
    return x


def _sqrtm_vjp(ans, a, **kwargs):
    # X X = A: dX solves X dX + dX X = dA, so the cotangent solves X^T Y + Y X^T = g.
    # (solve_sylvester is SciPy's on values: this VJP is not differentiated again.)
    return lambda g: _sl.solve_sylvester(_T(ans), _T(ans), np.asarray(g))


def _sqrtm_jvp(g, ans, a, **kwargs):
    return _sl.solve_sylvester(ans, ans, np.asarray(g))


def _trans_code(trans):
    codes = {0: 0, "N": 0, 1: 1, "T": 1, 2: 1, "C": 1}  # real matrices: 'C' is 'T'
    if trans not in codes:
        raise ValueError(f"revad: solve_triangular: invalid trans {trans!r}")
    return codes[trans]


def _triangle(x, lower, unit_diagonal):
    """x's entries that a triangular solve reads (the diagonal too unless it is unit)."""
    n = np.shape(x)[-1]
    k = -1 if unit_diagonal else 0
    mask = np.tril(np.ones((n, n)), k) if lower else np.triu(np.ones((n, n)), -k)
    return x * mask


def _solve_triangular_vjp_a(ans, a, b, trans=0, lower=False, unit_diagonal=False, **kwargs):
    t = _trans_code(trans)
    vector = np.ndim(b) == 1

    def vjp(g):
        gb = solve_triangular(a, g, trans=1 - t, lower=lower, unit_diagonal=unit_diagonal)
        x = ans
        if vector:
            gb, x = gb[..., None], x[..., None]
        ga = -(gb @ _T(x)) if t == 0 else -(x @ _T(gb))
        return _unbroadcast(_triangle(ga, lower, unit_diagonal), np.shape(a))
    return vjp


def _solve_triangular_vjp_b(ans, a, b, trans=0, lower=False, unit_diagonal=False, **kwargs):
    t = _trans_code(trans)
    return lambda g: _unbroadcast(
        solve_triangular(a, g, trans=1 - t, lower=lower, unit_diagonal=unit_diagonal),
        np.shape(b))


def _solve_triangular_jvp_a(g, ans, a, b, trans=0, lower=False, unit_diagonal=False, **kwargs):
    t = _trans_code(trans)
    da = _triangle(g, lower, unit_diagonal)
    x = ans[..., None] if np.ndim(b) == 1 else ans
    r = -_sl.solve_triangular(a, (da if t == 0 else _T(da)) @ x, trans=t, lower=lower,
                              unit_diagonal=unit_diagonal)
    return r[..., 0] if np.ndim(b) == 1 else r


def _solve_triangular_jvp_b(g, ans, a, b, trans=0, lower=False, unit_diagonal=False, **kwargs):
    return _sl.solve_triangular(a, g, trans=_trans_code(trans), lower=lower,
                                unit_diagonal=unit_diagonal)


def _cho_solve(c, b, lower, **kwargs):
    """scipy.linalg.cho_solve((c, lower), b) with c a positional argument of its own."""
    return _sl.cho_solve((c, lower), b, **kwargs)


def _cho_solve_vjp_c(ans, c, b, lower, **kwargs):
    # A = L L^T (U^T U): the cotangent of A is -gb x^T; of L, (Ab + Ab^T) L in L's triangle.
    vector = np.ndim(b) == 1

    def vjp(g):
        gb = _cho_solve_p(c, g, lower)
        x = ans
        if vector:
            gb, x = gb[..., None], x[..., None]
        ga = -(gb @ _T(x))
        ga = ga + _T(ga)
        f = _triangle(c, lower, False)
        return _unbroadcast(_triangle(ga @ f if lower else f @ ga, lower, False), np.shape(c))
    return vjp


def _cho_solve_vjp_b(ans, c, b, lower, **kwargs):
    return lambda g: _unbroadcast(_cho_solve_p(c, g, lower), np.shape(b))


def _cho_solve_jvp_c(g, ans, c, b, lower, **kwargs):
    f, df = _triangle(c, lower, False), _triangle(g, lower, False)
    da = df @ _T(f) + f @ _T(df) if lower else _T(df) @ f + _T(f) @ df
    x = ans[..., None] if np.ndim(b) == 1 else ans
    r = -_sl.cho_solve((c, lower), da @ x)
    return r[..., 0] if np.ndim(b) == 1 else r


def _cho_solve_jvp_b(g, ans, c, b, lower, **kwargs):
    return _sl.cho_solve((c, lower), g)


# ---------------------------------------------------------------------------------------------
# The primitives (on plain values, SciPy's own functions).

_sqrtm = primitive(_sqrtm_real)
defvjp(_sqrtm, _sqrtm_vjp)
defjvp(_sqrtm, _sqrtm_jvp)
solve_triangular = primitive(_sl.solve_triangular)
defvjp(solve_triangular, _solve_triangular_vjp_a, _solve_triangular_vjp_b)
defjvp(solve_triangular, _solve_triangular_jvp_a, _solve_triangular_jvp_b)
_cho_solve_p = primitive(_cho_solve)
defvjp(_cho_solve_p, _cho_solve_vjp_c, _cho_solve_vjp_b)
defjvp(_cho_solve_p, _cho_solve_jvp_c, _cho_solve_jvp_b)


def sqrtm(A, **kwargs):
    """scipy.linalg.sqrtm; differentiable on a revad Array whose root is real (a complex root
    raises a TypeError). Its VJP solves a Sylvester equation with SciPy (not differentiable
    again).

    >>> import numpy as np, revad, revad.scipy.linalg
    >>> a = np.array([[4.0, 0.0], [0.0, 9.0]])
    >>> revad.grad(lambda x: np.trace(revad.scipy.linalg.sqrtm(x)))(a).round(6)
    array([[0.25    , 0.      ],
           [0.      , 0.166667]])
    """
    return _sqrtm(A, **kwargs) if type(A) in _NODES else _sl.sqrtm(A, **kwargs)


def cho_solve(c_and_lower, b, overwrite_b=False, check_finite=True):
    """scipy.linalg.cho_solve: x with A x = b, A = L L^T from its Cholesky factor (c, lower),
    differentiable in c (the triangle SciPy reads) and b.

    >>> import numpy as np, revad, revad.scipy.linalg
    >>> L = np.array([[2.0, 0.0], [1.0, 1.0]])
    >>> solve = lambda c, b: revad.scipy.linalg.cho_solve((c, True), b)
    >>> revad.grad(lambda b: np.sum(solve(L, b)))(np.ones(2))
    array([0. , 0.5])
    """
    c, lower = c_and_lower
    return _cho_solve_p(c, b, lower, check_finite=check_finite)


def __getattr__(name):
    if name.startswith("__"):  # (not _sl's __all__ and the like: this module's own)
        raise AttributeError(name)
    return getattr(_sl, name)
