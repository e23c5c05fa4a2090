"""autograd's ``autograd.misc.flatten``: a structure of arrays (dicts, lists, tuples) as one
vector and back, differentiable (inside ``grad`` the vector is a revad Array).

>>> import numpy as np, revad
>>> from revad.misc.flatten import flatten
>>> params = {"W": np.ones((2, 2)), "b": np.array([3.0, 4.0])}
>>> flat, unflatten = flatten(params)
>>> flat
array([1., 1., 1., 1., 3., 4.])
>>> unflatten(flat * 2)["b"]
array([6., 8.])
>>> revad.grad(lambda p: np.dot(flatten(p)[0], flatten(p)[0]))(params)["b"]   # 2 b
array([6., 8.])
"""
import numpy as onp

import revad.numpy as rnp
from revad._array import Array
from revad._core import Var

__all__ = ["flatten", "flatten_func"]


def flatten(value):
    """``(vector, unflatten)``: the leaves of value (numbers and arrays, in dicts by sorted key,
    lists and tuples) raveled and joined, as autograd's; ``unflatten(vector)`` rebuilds the
    structure from a vector of that length."""
    leaves = []
    build = _walk(value, leaves)
    parts = [rnp.ravel(x) for x, _ in leaves]
    vector = rnp.concatenate(parts) if parts else onp.zeros(0)
    size = sum(int(onp.prod(shape, dtype=onp.int64)) for _, shape in leaves)

    def unflatten(vector):
        if onp.shape(vector) != (size,):
            raise ValueError(f"revad: unflatten needs a vector of length {size}, got shape "
                             f"{onp.shape(vector)}")
        return build(vector, [0])

    return vector, unflatten


def flatten_func(func, example):
    """``(flat_func, unflatten, flat_example)``: func of a structure like example as a
    function of one vector, as autograd's (for optimizers that take vectors)."""
    flat_example, unflatten = flatten(example)

    def flat_func(vector, *args, **kwargs):
        return func(unflatten(vector), *args, **kwargs)

    return flat_func, unflatten, flat_example


def _walk(x, leaves):
    """Collect x's leaves; return the function that rebuilds x from a vector and a cursor."""
    if isinstance(x, dict):
        keys = sorted(x)
        parts = [_walk(x[k], leaves) for k in keys]
        return lambda v, at: {k: p(v, at) for k, p in zip(keys, parts, strict=True)}
    if isinstance(x, (list, tuple)):
        parts = [_walk(e, leaves) for e in x]
        kind = type(x)
        make = kind._make if hasattr(kind, "_fields") else kind  # namedtuples
        return lambda v, at: make([p(v, at) for p in parts])
    shape = onp.shape(x.value if type(x) in (Var, Array) else x)
    n = int(onp.prod(shape, dtype=onp.int64))
    leaves.append((x, shape))

    def rebuild(v, at):
        start = at[0]
        at[0] += n
        if shape == ():
            x = v[start]
            return float(x) if isinstance(x, onp.generic) else x  # a Var inside grad
        return rnp.reshape(v[start:start + n], shape)

    return rebuild
