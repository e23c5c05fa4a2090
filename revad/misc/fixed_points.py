"""A fixed-point solver whose gradient is implicit, as ``autograd.misc.fixed_points`` has it.

The iterations are not recorded: the solution is one entry (a user primitive), and its VJP
follows from the implicit function theorem at the fixed point x* = f(a)(x*): for a cotangent g
of x*, solve w = g + w df/dx (by the same iteration, on the adjoint), then the cotangent of a is
w df/da. Memory stays that of one step, whatever the number of iterations.
"""
import numpy as onp

import revad.numpy as rnp
from revad._functional import grad
from revad._primitive import _call


def fixed_point(f, a, x0, distance, tol):
    """Iterate ``x = f(a)(x)`` from ``x0`` until ``distance(x_new, x) < tol``; differentiable
    in ``a`` (a number or an array) by the implicit function theorem.

    ``f(a)`` must be a contraction near the fixed point (the adjoint iteration converges
    where the forward one does). Write ``f`` with ``revad.numpy``: its VJPs are taken at the
    fixed point.

    >>> import numpy as np, revad
    >>> from revad.misc.fixed_points import fixed_point
    >>> def newton_sqrt(a):   # x = (x + a / x) / 2 converges to sqrt(a)
    ...     return lambda x: 0.5 * (x + a / x)
    >>> def sqrt(a):
    ...     return fixed_point(newton_sqrt, a, 1.0, lambda x, y: abs(x - y), 1e-12)
    >>> round(float(sqrt(2.0)), 10), round(revad.grad(sqrt)(2.0), 10)   # d sqrt(a) = 1/(2 sqrt a)
    (1.4142135624, 0.3535533906)
    """
    def solve(a):
        return _iterate(lambda x: f(a)(x), onp.asarray(x0, dtype=onp.float64)
                        if onp.ndim(x0) else float(x0), distance, tol)

    def vjp_of(x_star, values, argnums):
        (a_value,) = values

        def vjp(g):
            def w_step(w):  # w -> g + w df/dx at x*
                return g + grad(lambda x: rnp.sum(f(a_value)(x) * w))(x_star)

            w = _iterate(w_step, g, distance, tol)
            return [grad(lambda a: rnp.sum(f(a)(x_star) * w))(a_value)]
        return vjp

    def jvp_of(ans, values):
        def jvp(k, tangent):
            raise TypeError("revad: fixed_point has no forward mode (revad.jvp); use revad.grad")
        return jvp

    return _call("fixed_point", solve, (a,), {}, vjp_of, jvp_of)


def _iterate(step, x, distance, tol, max_iter=100_000):
    for _ in range(max_iter):
        x_new = step(x)
        if distance(x_new, x) < tol:
            return x_new
        x = x_new
    raise RuntimeError(f"revad: fixed_point did not converge to tol={tol} in {max_iter} "
                       "iterations")
