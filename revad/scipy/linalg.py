"""``scipy.linalg`` for revad Arrays: ``sqrtm``, ``solve_triangular`` and ``cho_solve`` are
differentiable (SciPy computes the values; their VJPs and JVPs are below); every other name is
SciPy's own. Stacks of matrices work where SciPy's functions take them.
"""
import numpy as np
import scipy.linalg as _sl

from revad._linalg import _T, _unbroadcast


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
        gb = _sl.solve_triangular(a, g, trans=1 - t, lower=lower, unit_diagonal=unit_diagonal)
        x = ans
        if vector:
            gb, x = gb[..., None], x[..., None]
        ga = -(gb @ _T(x)) if t == 0 else -(x @ _T(gb))
        return _unbroadcast(_triangle(ga, lower, unit_diagonal), np.shape(a))
    return vjp


def _solve_triangular_vjp_b(ans, a, b, trans=0, lower=False, unit_diagonal=False, **kwargs):
    t = _trans_code(trans)
    return lambda g: _unbroadcast(
        _sl.solve_triangular(a, g, trans=1 - t, lower=lower, unit_diagonal=unit_diagonal),
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
        gb = _sl.cho_solve((c, lower), g)
        x = ans
        if vector:
            gb, x = gb[..., None], x[..., None]
        ga = -(gb @ _T(x))
        ga = ga + _T(ga)
        f = _triangle(c, lower, False)
        return _unbroadcast(_triangle(ga @ f if lower else f @ ga, lower, False), np.shape(c))
    return vjp


def _cho_solve_vjp_b(ans, c, b, lower, **kwargs):
    return lambda g: _unbroadcast(_sl.cho_solve((c, lower), g), np.shape(b))


def _cho_solve_jvp_c(g, ans, c, b, lower, **kwargs):
    f, df = _triangle(c, lower, False), _triangle(g, lower, False)
    da = df @ _T(f) + f @ _T(df) if lower else _T(df) @ f + _T(f) @ df
    x = ans[..., None] if np.ndim(b) == 1 else ans
    r = -_sl.cho_solve((c, lower), da @ x)
    return r[..., 0] if np.ndim(b) == 1 else r


def _cho_solve_jvp_b(g, ans, c, b, lower, **kwargs):
    return _sl.cho_solve((c, lower), g)
