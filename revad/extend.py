"""autograd's ``autograd.extend`` import path for user primitives: code written as
``from autograd.extend import primitive, defvjp`` runs as ``from revad.extend import ...``.

>>> import numpy as np, revad
>>> from revad.extend import primitive, defvjp
>>> @primitive
... def cube(x):
...     return x ** 3
>>> defvjp(cube, lambda ans, x: lambda g: 3 * x ** 2 * g)
>>> revad.grad(cube)(2.0)
12.0
"""
from revad._primitive import defjvp, defvjp, primitive

__all__ = ["primitive", "defvjp", "defjvp"]
