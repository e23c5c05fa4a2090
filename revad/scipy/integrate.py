"""``scipy.integrate.odeint`` with gradients, as ``autograd.scipy.integrate`` has it.

The solution is SciPy's; its gradient with respect to the initial state, the times and the
arguments of the dynamics comes from the adjoint method (one backward solve of an augmented
system between each pair of output times: Froehlich, Loos and Hasenauer 2017, sec. 2.4.2),
built on revad's user primitives: the solve is one recorded entry whose VJP integrates the
adjoint system, asking revad for the VJPs of the dynamics along the way.
"""
import importlib.util

import numpy as onp

if importlib.util.find_spec("scipy") is None:  # pragma: no cover - without SciPy only
    raise ImportError("revad.scipy needs SciPy: pip install scipy")

import scipy.integrate as _integrate

import revad.numpy as rnp
from revad._functional import grad
from revad._primitive import _NODES, _call


def _shape(a):
    return onp.shape(a.value if type(a) in _NODES else a)


def _unflatten(flat, shapes):
    out, k = [], 0
    for s in shapes:
        n = int(onp.prod(s, dtype=onp.int64))
        out.append(flat[k:k + n].reshape(s) if s else flat[k])
        k += n
    return tuple(out)


def odeint(func, y0, t, args=(), **kwargs):
    """Integrate ``dy/dt = func(y, t, *args)`` (``scipy.integrate.odeint``), differentiably in
    ``y0``, ``t`` and ``args`` (numbers and arrays, Vars and Arrays among them).

    ``func`` is called with plain NumPy values (by SciPy, and by the adjoint method with
    revad's leaves: write it with ``revad.numpy``). ``kwargs`` go to SciPy (``rtol``,
    ``atol``, ...; not ``full_output``). The result has shape ``(len(t), len(y0))``.

    >>> import numpy as np, revad
    >>> from revad.scipy.integrate import odeint
    >>> def final(k):   # dy/dt = -k y, y(0) = 1: y(1) = exp(-k)
    ...     return odeint(lambda y, t, k: -k * y, np.array([1.0]), np.array([0.0, 1.0]),
    ...                   (k,), rtol=1e-12, atol=1e-12)[-1, 0]
    >>> round(revad.grad(final)(0.5), 8), round(float(-np.exp(-0.5)), 8)
    (-0.60653066, -0.60653066)
    """
    if kwargs.get("full_output"):
        raise TypeError("revad: odeint with full_output=True is not differentiable; leave it out")
    args = tuple(args) if isinstance(args, (tuple, list)) else (args,)
    shapes = [_shape(a) for a in args]
    parts = [rnp.ravel(rnp.asarray(a)) for a in args]
    flat = rnp.concatenate(parts) if parts else onp.zeros(0)
    if type(y0) not in _NODES:
        y0 = onp.asarray(y0, dtype=onp.float64)
    if type(t) not in _NODES:
        t = onp.asarray(t, dtype=onp.float64)

    def solve(y0, t, flat):
        return _integrate.odeint(func, y0, t, args=_unflatten(flat, shapes), **kwargs)

    def vjp_of(yt, values, argnums):
        return lambda g: [_adjoint(func, yt, g, values, shapes, kwargs)[k] for k in argnums]

    def jvp_of(ans, values):
        def jvp(k, tangent):
            raise TypeError("revad: odeint has no forward mode (revad.jvp); use revad.grad")
        return jvp

    return _call("odeint", solve, (y0, t, flat), {}, vjp_of, jvp_of)


def _adjoint(func, yt, g, values, shapes, kwargs):
    """The cotangents of (y0, t, flat args) for cotangent g of the solution yt (T, D)."""
    _, t, p = (onp.asarray(v, dtype=onp.float64) for v in values)
    T, D = yt.shape

    def f(y, s, q):
        return func(y, s, *_unflatten(q, shapes))

    def augmented(state, s, q):
        # d/ds [y, a_y, a_t, a_p] = [f, -a_y df/dy, -a_y df/dt, -a_y df/dp]
        y, a = state[:D], state[D:2 * D]
        w = -a
        gy, gs, gq = grad(lambda y, s, q: rnp.sum(f(y, s, q) * w), argnums=(0, 1, 2))(y, s, q)
        return onp.concatenate([onp.asarray(f(y, s, q), dtype=onp.float64).reshape(-1), gy,
                                [gs], gq])

    a_y, a_t0, a_p = g[-1].copy(), 0.0, onp.zeros(p.size)
    a_times = onp.zeros(T)
    for i in range(T - 1, 0, -1):
        # Moving the output time t[i] moves y(t[i]) along f.
        a_times[i] = float(onp.dot(onp.asarray(f(yt[i], t[i], p), dtype=onp.float64), g[i]))
        a_t0 -= a_times[i]
        state = onp.concatenate([yt[i], a_y, [a_t0], a_p])
        back = _integrate.odeint(augmented, state, onp.array([t[i], t[i - 1]]), args=(p,),
                                 **kwargs)[1]
        a_y, a_t0, a_p = back[D:2 * D] + g[i - 1], back[2 * D], back[2 * D + 1:]
    a_times[0] = a_t0
    return a_y, a_times, a_p


__all__ = ["odeint"]
