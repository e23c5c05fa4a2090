"""numpy.linalg's functions on revad Arrays: each a user primitive (NumPy/LAPACK computes the
value; one "Python callback" entry on the tape runs its vector-Jacobian product in the sweep)
with its VJP and JVP declared next to it, as autograd's ``numpy/linalg.py`` does.

The products are written with NumPy's functions on the arguments they are given: on ndarrays
they are NumPy's, on revad Arrays they dispatch (``__array_function__``, ``__array_ufunc__``) to
recorded ops and to the primitives below, so that a VJP can itself be differentiated.
Every function takes stacks of matrices (the last two axes), as NumPy does.

Formulas: M. Giles, "An extended collection of matrix derivative results for forward and
reverse mode AD" (2008); J. Townsend, "Differentiating the singular value decomposition"
(2016); I. Murray, "Differentiation of the Cholesky decomposition" (2016); H.-J. Walter and
Lehmann, QR (2018).

Where a derivative is undefined revad does not invent one: eigh/eig with a repeated
eigenvalue and svd with a repeated (or, for the vectors, zero) singular value give inf/nan
(the formulas divide by the gaps), as autograd's and JAX's do; test at separated spectra.
"""
import operator

import numpy as np
from numpy.linalg import LinAlgError  # noqa: F401

from revad import _array
from revad._primitive import _NODES, defjvp, defvjp, primitive

# ---------------------------------------------------------------------------------------------
# Helpers: each works on ndarrays and revad Arrays alike (stacks: the last two axes).


def _T(x):
    return np.swapaxes(x, -1, -2)


def _diag_embed(v):
    """(..., n) -> (..., n, n) with v on the diagonal."""
    return v[..., None] * np.eye(v.shape[-1])


def _diagonal(x):
    return np.diagonal(x, axis1=-2, axis2=-1)


def _tril_mask(n, k=0):
    return np.tril(np.ones((n, n)), k)


def _sym(x):
    return (x + _T(x)) / 2.0


def _gaps_inverse(w):
    """F[..., i, j] = 1 / (w[j] - w[i]) off the diagonal, 0 on it (inf where two are equal)."""
    eye = np.eye(w.shape[-1])
    with np.errstate(divide="ignore"):
        return 1.0 / (w[..., None, :] - w[..., :, None] + eye) - eye


def _unbroadcast(x, shape):
    """Sum x down to shape (the adjoint of broadcasting shape to x's shape)."""
    lead = len(x.shape) - len(shape)
    if lead:
        x = np.sum(x, axis=tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and x.shape[i] != 1)
    return np.sum(x, axis=axes, keepdims=True) if axes else x


def _zeros_if_none(g, like):
    return np.zeros(np.shape(like)) if g is None else g


# ---------------------------------------------------------------------------------------------
# inv, solve, det, slogdet

def _inv_vjp(ans, a):
    return lambda g: -(_T(ans) @ g @ _T(ans))


def _inv_jvp(g, ans, a):
    return -(ans @ g @ ans)


def _solve_is_vector(a, b):
    """NumPy's rule for whether solve's b is a (stack of) vector(s): 1-d only since NumPy 2."""
    if np.lib.NumpyVersion(np.__version__) >= "2.0.0":
        return np.ndim(b) == 1
    return np.ndim(b) == np.ndim(a) - 1


def _solve_cotangent_b(g, a, vector):
    """A^-T g, as a stack of matrices (vectors get a trailing axis of one)."""
    return np.linalg.solve(_T(a), g[..., None] if vector else g)


def _solve_vjp_a(ans, a, b):
    vector = _solve_is_vector(a, b)

    def vjp(g):
        gb = _solve_cotangent_b(g, a, vector)
        x = ans[..., None] if vector else ans
        return _unbroadcast(-(gb @ _T(x)), np.shape(a))
    return vjp


def _solve_vjp_b(ans, a, b):
    vector = _solve_is_vector(a, b)

    def vjp(g):
        gb = _solve_cotangent_b(g, a, vector)
        return _unbroadcast(gb[..., 0] if vector else gb, np.shape(b))
    return vjp


def _solve_jvp_a(g, ans, a, b):
    vector = _solve_is_vector(a, b)
    x = ans[..., None] if vector else ans
    r = -np.linalg.solve(a, g @ x)
    return r[..., 0] if vector else r


def _solve_jvp_b(g, ans, a, b):
    return np.linalg.solve(a, g)


def _cofactor(a):
    """The cofactor matrix det(A) A^-T, from the SVD A = U S V^T as det(U) det(V) U diag(prod of
    the other singular values) V^T: defined (no inverse) for singular A too."""
    u, s, vh = np.linalg.svd(a)
    ones = np.ones(np.shape(s)[:-1] + (1,))
    left = np.cumprod(np.concatenate([ones, s[..., :-1]], axis=-1), axis=-1)
    right = np.cumprod(np.concatenate([ones, s[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    sign = np.linalg.det(u) * np.linalg.det(vh)
    return sign[..., None, None] * ((u * (left * right)[..., None, :]) @ vh)


def _det_vjp(ans, a):
    return lambda g: np.asarray(g)[..., None, None] * _cofactor(a)


def _det_jvp(g, ans, a):
    return np.sum(_cofactor(a) * g, axis=(-2, -1))


def _slogdet_vjp(ans, a):
    return lambda g: np.asarray(g[1])[..., None, None] * _T(np.linalg.inv(a))


def _slogdet_jvp(g, ans, a):
    return (np.zeros(np.shape(ans[0])), np.trace(np.linalg.solve(a, g), axis1=-2, axis2=-1))


# ---------------------------------------------------------------------------------------------
# cholesky, eigh, eigvalsh, eig: symmetric input's gradients are symmetric (the convention of
# autograd and JAX: a perturbation of a symmetric matrix is symmetric; NumPy reads one triangle).

def _cholesky_vjp(ans, a, upper=False):
    L = _T(ans) if upper else ans
    n = np.shape(a)[-1]
    phi = _tril_mask(n) - 0.5 * np.eye(n)  # the lower triangle, its diagonal halved

    def vjp(g):
        if upper:
            g = _T(g)
        p = (_T(L) @ g) * phi
        s = _T(np.linalg.solve(_T(L), _T(np.linalg.solve(_T(L), p))))  # L^-T p L^-1
        return _sym(s)
    return vjp


def _cholesky_jvp(g, ans, a, upper=False):
    L = _T(ans) if upper else ans
    n = np.shape(a)[-1]
    phi = _tril_mask(n) - 0.5 * np.eye(n)
    x = np.linalg.solve(L, _T(np.linalg.solve(L, _T(_sym(g)))))  # L^-1 g L^-T
    d = L @ (x * phi)
    return _T(d) if upper else d


def _eigh_vjp(ans, a, UPLO="L"):
    w, v = ans

    def vjp(g):
        gw, gv = _zeros_if_none(g[0], w), _zeros_if_none(g[1], v)
        inner = _diag_embed(gw) + _gaps_inverse(w) * (_T(v) @ gv)
        return _sym(v @ inner @ _T(v))
    return vjp


def _eigh_jvp(g, ans, a, UPLO="L"):
    w, v = ans
    x = _T(v) @ _sym(g) @ v
    return _diagonal(x), v @ (_gaps_inverse(w) * x)


def _eigvalsh_vjp(ans, a, UPLO="L"):
    _, v = np.linalg.eigh(a, UPLO)
    return lambda g: _sym((v * g[..., None, :]) @ _T(v))


def _eigvalsh_jvp(g, ans, a, UPLO="L"):
    _, v = np.linalg.eigh(a, UPLO)
    return _diagonal(_T(v) @ _sym(g) @ v)


def _eig_real(a):
    """numpy.linalg.eig, refusing a complex spectrum (revad differentiates real numbers only)."""
    r = np.linalg.eig(a)
    if np.iscomplexobj(r[0]) or np.iscomplexobj(r[1]):
        raise TypeError("revad: numpy.linalg.eig of this matrix has complex eigenvalues; complex "
                        "numbers are not supported (eig is differentiable for real spectra: use "
                        "eigh for a symmetric matrix)")
    return r


def _eig_vjp(ans, a):
    w, v = ans

    def vjp(g):
        gw, gv = _zeros_if_none(g[0], w), _zeros_if_none(g[1], v)
        # NumPy's eigenvectors have unit norm: remove each column's own component first.
        gv = gv - v * np.sum(v * gv, axis=-2, keepdims=True)
        inner = _diag_embed(gw) + _gaps_inverse(w) * (_T(v) @ gv)
        return np.linalg.solve(_T(v), inner @ _T(v))  # V^-T inner V^T
    return vjp


def _eig_jvp(g, ans, a):
    w, v = ans
    x = np.linalg.solve(v, g @ v)  # V^-1 dA V
    dv = v @ (_gaps_inverse(w) * x)
    return _diagonal(x), dv - v * np.sum(v * dv, axis=-2, keepdims=True)


# ---------------------------------------------------------------------------------------------
# svd, qr, pinv

def _transport(q, gq, k):
    """The cotangent of q's first k columns when its other columns complete them to an
    orthonormal basis. Those columns are not unique: revad moves them with the first ones
    (dQ2 = -Q1 dQ1^T Q2), which is exact for what does not depend on the choice of basis
    (products Q2 Q2^T, norms); a function of NumPy's particular basis has no defined gradient."""
    q1, q2 = q[..., :, :k], q[..., :, k:]
    return gq[..., :, :k] - q2 @ (_T(gq[..., :, k:]) @ q1)


def _svd_vjp(ans, a, full_matrices=True, compute_uv=True, hermitian=False):
    m, n = np.shape(a)[-2:]
    k = min(m, n)
    if not compute_uv:
        u, _, vh = np.linalg.svd(a, full_matrices=False, hermitian=hermitian)
        return lambda g: (u * g[..., None, :]) @ vh
    u, s, vh = ans

    def vjp(g):
        gu, gs, gvh = (_zeros_if_none(c, x) for c, x in zip(g, ans, strict=True))
        if full_matrices:
            gu, gvh = _transport(u, gu, k), _T(_transport(_T(vh), _T(gvh), k))
        u1, v1, gv1 = u[..., :, :k], _T(vh[..., :k, :]), _T(gvh)
        f = _gaps_inverse(s * s)  # 1 / (s_j^2 - s_i^2)
        ut_gu, vt_gv = _T(u1) @ gu, _T(v1) @ gv1
        core = ((f * (ut_gu - _T(ut_gu))) * s[..., None, :] + _diag_embed(gs)
                + s[..., :, None] * (f * (vt_gv - _T(vt_gv))))
        r = u1 @ core @ _T(v1)
        if m > k:
            r = r + ((gu - u1 @ ut_gu) / s[..., None, :]) @ _T(v1)
        if n > k:
            r = r + u1 @ ((_T(gv1 - v1 @ vt_gv)) / s[..., :, None])
        return r
    return vjp


def _svd_jvp(g, ans, a, full_matrices=True, compute_uv=True, hermitian=False):
    m, n = np.shape(a)[-2:]
    k = min(m, n)
    u, s, vh = ans if compute_uv else np.linalg.svd(a, full_matrices=False, hermitian=hermitian)
    u1, v1 = u[..., :, :k], _T(vh[..., :k, :])
    ds = _T(u1) @ g @ v1
    if not compute_uv:
        return _diagonal(ds)
    f = _gaps_inverse(s * s)
    du = u1 @ (f * (ds * s[..., None, :] + s[..., :, None] * _T(ds)))
    dv = v1 @ (f * (s[..., :, None] * ds + _T(ds) * s[..., None, :]))
    if m > k:
        du = du + (g @ v1 - u1 @ (_T(u1) @ g @ v1)) / s[..., None, :]
    if n > k:
        dv = dv + (_T(g) @ u1 - v1 @ (_T(v1) @ _T(g) @ u1)) / s[..., None, :]
    if full_matrices:
        du, dv = _transport_tangent(u, du, k), _transport_tangent(_T(vh), dv, k)
    return du, _diagonal(ds), _T(dv)


def _transport_tangent(q, dq1, k):
    """The tangent of q (first k columns' tangent dq1), its completing columns moved as
    _transport says: dQ2 = -Q1 dQ1^T Q2."""
    q1, q2 = q[..., :, :k], q[..., :, k:]
    return np.concatenate([dq1, -(q1 @ (_T(dq1) @ q2))], axis=-1)


def _qr_core(q, r, gq, gr):
    """The QR VJP for a matrix with at least as many rows as columns (r square, invertible)."""
    m = r @ _T(gr) - _T(gq) @ q
    n = np.shape(r)[-1]
    m = m * _tril_mask(n) + _T(m * _tril_mask(n, -1))  # the lower triangle copied up
    b = gq + q @ m
    return _T(np.linalg.solve(r, _T(b)))  # b R^-T


def _qr_vjp(ans, a, mode="reduced"):
    if mode not in ("reduced", "complete", "r"):
        raise TypeError(f"revad: numpy.linalg.qr(mode={mode!r}) is not differentiable "
                        "(modes 'reduced', 'complete' and 'r' are)")
    m, n = np.shape(a)[-2:]
    k = min(m, n)
    q, r = np.linalg.qr(a, mode="complete" if mode == "complete" else "reduced")

    def vjp(g):
        gq, gr = (np.zeros(np.shape(q)), g) if mode == "r" else g
        gq, gr = _zeros_if_none(gq, q), _zeros_if_none(gr, r)
        if mode == "complete" and m > n:
            gq, gr = _transport(q, gq, k), gr[..., :k, :]
        q1, r1 = q[..., :, :k], r[..., :k, :]
        if m >= n:
            return _qr_core(q1, r1, gq, gr)
        # wide: A = [X Y] with X = Q R1 square; Y = Q R2 adds to Q's cotangent.
        gr2 = gr[..., :, m:]
        gx = _qr_core(q1, r1[..., :, :m], gq + a[..., :, m:] @ _T(gr2), gr[..., :, :m])
        return np.concatenate([gx, q1 @ gr2], axis=-1)
    return vjp


def _qr_jvp(g, ans, a, mode="reduced"):
    if mode not in ("reduced", "complete", "r"):
        raise TypeError(f"revad: numpy.linalg.qr(mode={mode!r}) is not differentiable "
                        "(modes 'reduced', 'complete' and 'r' are)")
    m, n = np.shape(a)[-2:]
    k = min(m, n)
    q, r = np.linalg.qr(a, mode="complete" if mode == "complete" else "reduced")
    q1, r1 = q[..., :, :k], r[..., :k, :]
    gx = g[..., :, :k]
    dx_rinv = _T(np.linalg.solve(_T(r1[..., :, :k]), _T(gx)))  # dX R1^-1
    qt = _T(q1) @ dx_rinv
    lower = qt * _tril_mask(k, -1)
    omega = lower - _T(lower)  # Q^T dQ: skew-symmetric
    dq = q1 @ (omega - qt) + dx_rinv
    dr = (qt - omega) @ r1[..., :, :k]
    if n > m:  # wide: A = [X Y], Y = Q R2
        dr = np.concatenate([dr, _T(q1) @ (g[..., :, m:] - dq @ r1[..., :, m:])], axis=-1)
    if mode == "complete" and m > n:
        dq = _transport_tangent(q, dq, k)
        dr = np.concatenate([dr, np.zeros(np.shape(r)[:-2] + (m - k, n))], axis=-2)
    return dr if mode == "r" else (dq, dr)


def _pinv_vjp(ans, a, *args, **kwargs):
    """Golub and Pereyra's formula: exact where the rank does not change (full rank)."""
    m, n = np.shape(a)[-2:]
    p, pt = ans, _T(ans)

    def vjp(g):
        gt = _T(g)
        return (-(pt @ g @ pt) + (np.eye(m) - a @ p) @ gt @ p @ pt
                + pt @ p @ gt @ (np.eye(n) - p @ a))
    return vjp


def _pinv_jvp(g, ans, a, *args, **kwargs):
    m, n = np.shape(a)[-2:]
    p = ans
    return (-(p @ g @ p) + p @ _T(p) @ _T(g) @ (np.eye(m) - a @ p)
            + (np.eye(n) - p @ a) @ _T(g) @ _T(p) @ p)


# ---------------------------------------------------------------------------------------------
# Compositions of recorded ops: matrix_power.

def _matrix_power(a, n, inv, matmul=np.matmul):
    """numpy.linalg.matrix_power by repeated squaring (inv for a negative n)."""
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"revad: matrix_power's exponent must be an integer, got "
                        f"{type(n).__name__}") from None
    shape = np.shape(a)
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise np.linalg.LinAlgError("Last 2 dimensions of the array must be square")
    if n == 0:
        return np.broadcast_to(np.eye(shape[-1]), shape).copy()
    if n < 0:
        a, n = inv(a), -n
    result = None
    while n:
        if n & 1:
            result = a if result is None else matmul(result, a)
        n >>= 1
        if n:
            a = matmul(a, a)
    return result


# ---------------------------------------------------------------------------------------------
# The primitives. On plain values each is NumPy's own function; on revad Arrays it records one
# entry whose sweeps call the VJP/JVP above.

def _differentiable(fun, vjps, jvps):
    """fun as a primitive, with a VJP and a JVP for each argument it differentiates in."""
    p = primitive(fun)
    defvjp(p, *vjps)
    defjvp(p, *jvps)
    return p


inv = _differentiable(np.linalg.inv, [_inv_vjp], [_inv_jvp])
solve = _differentiable(np.linalg.solve, [_solve_vjp_a, _solve_vjp_b],
                        [_solve_jvp_a, _solve_jvp_b])
det = _differentiable(np.linalg.det, [_det_vjp], [_det_jvp])
slogdet = _differentiable(np.linalg.slogdet, [_slogdet_vjp], [_slogdet_jvp])
cholesky = _differentiable(np.linalg.cholesky, [_cholesky_vjp], [_cholesky_jvp])
eigh = _differentiable(np.linalg.eigh, [_eigh_vjp], [_eigh_jvp])
eigvalsh = _differentiable(np.linalg.eigvalsh, [_eigvalsh_vjp], [_eigvalsh_jvp])
svd = _differentiable(np.linalg.svd, [_svd_vjp], [_svd_jvp])
pinv = _differentiable(np.linalg.pinv, [_pinv_vjp], [_pinv_jvp])
_qr = _differentiable(np.linalg.qr, [_qr_vjp], [_qr_jvp])
_eig = _differentiable(_eig_real, [_eig_vjp], [_eig_jvp])


def qr(a, mode="reduced"):
    """numpy.linalg.qr; on a revad Array, modes 'reduced', 'complete' and 'r' (not 'raw').

    >>> import numpy as np, revad
    >>> a = np.array([[3.0, 1.0], [4.0, 2.0], [0.0, 1.0]])
    >>> float(np.linalg.qr(a)[1][0, 0])  # minus the first column's norm
    -5.0
    >>> revad.grad(lambda x: np.linalg.qr(x)[1][0, 0])(a)
    array([[-0.6,  0. ],
           [-0.8,  0. ],
           [ 0. ,  0. ]])
    """
    if type(a) in _NODES and mode == "raw":
        raise TypeError(f"revad: numpy.linalg.qr(mode={mode!r}) is not differentiable "
                        "(modes 'reduced', 'complete' and 'r' are)")
    return _qr(a, mode)


def eig(a):
    """numpy.linalg.eig; on a revad Array, matrices with real eigenvalues only (a complex
    spectrum raises a TypeError: revad differentiates real numbers).

    >>> import numpy as np, revad
    >>> a = np.array([[2.0, 1.0], [0.0, 3.0]])
    >>> revad.grad(lambda x: np.sum(np.linalg.eig(x)[0] ** 2))(a)
    array([[4., 0.],
           [2., 6.]])
    """
    return _eig(a) if type(a) in _NODES else np.linalg.eig(a)


def matrix_power(a, n):
    """numpy.linalg.matrix_power; on a revad Array, recorded as matrix products (and inv for a
    negative n).

    >>> import numpy as np, revad
    >>> revad.grad(lambda x: np.sum(np.linalg.matrix_power(x, 3)))(np.eye(2))
    array([[3., 3.],
           [3., 3.]])
    """
    if type(a) not in _NODES:
        return np.linalg.matrix_power(a, n)
    return _matrix_power(a, n, inv)


def norm(x, ord=None, axis=None, keepdims=False):
    """numpy.linalg.norm, every order: the matrix orders 2, -2 and 'nuc' through the singular
    values (svd), the others as recorded elementwise ops and reductions.

    >>> import numpy as np, revad
    >>> a = np.array([[3.0, 0.0], [0.0, -1.0]])
    >>> revad.grad(lambda x: np.linalg.norm(x, "nuc"))(a)
    array([[ 1.,  0.],
           [ 0., -1.]])
    """
    if type(x) not in _NODES:
        return np.linalg.norm(x, ord, axis, keepdims)
    if isinstance(ord, str):
        reduce = np.sum if ord == "nuc" else None
    else:
        reduce = np.max if ord == 2 else np.min if ord == -2 else None  # (2.0, np.int64(2) too)
    nd = len(np.shape(x))
    axes = (0, 1) if axis is None and nd == 2 else axis
    if reduce is None or not isinstance(axes, tuple) or len(axes) != 2:
        return _array._np_norm(x, ord, axis, keepdims)
    axes = tuple(operator.index(d) % nd if -nd <= operator.index(d) < nd else d for d in axes)
    if axes[0] == axes[1] or not all(0 <= d < nd for d in axes):
        return _array._np_norm(x, ord, axis, keepdims)  # its error for bad axes
    r = reduce(svd(np.moveaxis(x, axes, (-2, -1)), compute_uv=False), axis=-1)
    return np.expand_dims(r, tuple(sorted(axes))) if keepdims else r


# NumPy's functions on revad Arrays and Vars (Array.__array_function__) dispatch to these.
_array._FUNCTIONS.update({  # type: ignore[attr-defined]
    np.linalg.inv: inv, np.linalg.solve: solve, np.linalg.det: det, np.linalg.slogdet: slogdet,
    np.linalg.cholesky: cholesky, np.linalg.eigh: eigh, np.linalg.eigvalsh: eigvalsh,
    np.linalg.eig: eig, np.linalg.svd: svd, np.linalg.qr: qr, np.linalg.pinv: pinv,
    np.linalg.norm: norm, np.linalg.matrix_power: matrix_power,
})


def __getattr__(name):
    """revad.numpy.linalg is NumPy's namespace with the functions above."""
    if name.startswith("__"):  # (not np.linalg's __all__ and the like: this module's own)
        raise AttributeError(name)
    return getattr(np.linalg, name)
