"""autograd's ``autograd.misc.optimizers``: ``sgd`` (with momentum), ``rmsprop`` and ``adam``,
for any structure of arrays ``revad.misc.flatten`` takes (dicts, lists, tuples).

``grad(x, i)`` gives the gradient at ``x`` in iteration ``i`` (``revad.grad`` of ``f(x, i)``),
``callback(x, i, g)``, if given, sees each iterate and its gradient before the step; the
result has the structure of ``x0``. The arithmetic is NumPy's on one flat vector.

>>> import numpy as np, revad
>>> from revad.misc.optimizers import adam
>>> def loss(params, i):
...     return np.sum((params["w"] - 3.0) ** 2) + (params["b"] + 1.0) ** 2
>>> params = adam(revad.grad(loss), {"w": np.zeros(2), "b": 0.0}, step_size=0.1, num_iters=500)
>>> np.round(params["w"], 4), round(params["b"], 4)
(array([3., 3.]), -1.0)
"""
import functools

import numpy as onp

from revad.misc.flatten import flatten

__all__ = ["sgd", "rmsprop", "adam"]


def _on_vectors(optimize):
    """An optimizer written for one float vector, run on a structure: x0 and each gradient
    flattened, the callback and the result given the structure back."""
    @functools.wraps(optimize)
    def optimizer(grad, x0, callback=None, *args, **kwargs):
        flat_x0, unflatten = flatten(x0)

        def flat_grad(x, i):
            return onp.asarray(flatten(grad(unflatten(x), i))[0], dtype=onp.float64)

        def flat_callback(x, i, g):
            callback(unflatten(x), i, unflatten(g))

        x = optimize(flat_grad, onp.array(flat_x0, dtype=onp.float64),
                     flat_callback if callback else None, *args, **kwargs)
        return unflatten(x)
    return optimizer


@_on_vectors
def sgd(grad, x, callback=None, num_iters=200, step_size=0.1, mass=0.9):
    """Gradient descent with momentum: the velocity is an exponential average of -gradients."""
    velocity = onp.zeros_like(x)
    for i in range(num_iters):
        g = grad(x, i)
        if callback:
            callback(x, i, g)
        velocity = mass * velocity - (1.0 - mass) * g
        x = x + step_size * velocity
    return x


@_on_vectors
def rmsprop(grad, x, callback=None, num_iters=100, step_size=0.1, gamma=0.9, eps=10**-8):
    """Steps scaled by a running root mean square of the gradients (starting from ones)."""
    avg_sq_grad = onp.ones_like(x)
    for i in range(num_iters):
        g = grad(x, i)
        if callback:
            callback(x, i, g)
        avg_sq_grad = avg_sq_grad * gamma + g ** 2 * (1 - gamma)
        x = x - step_size * g / (onp.sqrt(avg_sq_grad) + eps)
    return x


@_on_vectors
def adam(grad, x, callback=None, num_iters=100, step_size=0.001, b1=0.9, b2=0.999, eps=10**-8):
    """Adam (Kingma and Ba, 2015): bias-corrected running moments of the gradient."""
    m = onp.zeros_like(x)
    v = onp.zeros_like(x)
    for i in range(num_iters):
        g = grad(x, i)
        if callback:
            callback(x, i, g)
        m = (1 - b1) * g + b1 * m
        v = (1 - b2) * g ** 2 + b2 * v
        m_hat = m / (1 - b1 ** (i + 1))
        v_hat = v / (1 - b2 ** (i + 1))
        x = x - step_size * m_hat / (onp.sqrt(v_hat) + eps)
    return x
