"""revad: fast reverse-mode automatic differentiation for Python.

Record a computation by operator overloading on ``Var``; one backward sweep in compiled code
gives every partial derivative.

>>> import revad
>>> x, y = revad.Var(40.0), revad.Var(4.0)
>>> z = 2 * x * y + y + 3
>>> z.backward()
>>> x.grad, y.grad
(8.0, 81.0)
>>> revad.grad(lambda x, y: 2 * x * y + y + 3, argnums=(0, 1))(40.0, 4.0)
(8.0, 81.0)
"""
from revad import _linalg  # noqa: F401  (numpy.linalg's functions for Arrays)
from revad._array import Array, logsumexp
from revad._compile import CompileWarning, compile
from revad._core import Function, Var, no_grad, release_memory, tape_info
from revad._core import functions as _functions
from revad._forward import jvp
from revad._functional import elementwise_grad, grad, jacobian, value_and_grad
from revad._graph import draw, to_dot
from revad._primitive import custom_vjp, defjvp, defvjp, make_vjp, primitive, vjp
from revad._second import (
    hessian,
    hessian_sparsity,
    hessian_vector_product,
    hvp,
    jacfwd,
    jacobian_sparsity,
    jacrev,
    linear_combination_of_hessians,
    make_hvp,
    make_jvp,
)
from revad._trace import Trace, TraceError, trace
from revad._version import __version__
from revad.testing import check_grad

# The op table's functions, each also a Var method and reachable through NumPy's ufuncs.
globals().update(_functions)

__all__ = ["Var", "Array", "Function", "no_grad", "grad", "value_and_grad", "elementwise_grad",
           "logsumexp", "tape_info", "release_memory", "__version__", "jvp", "check_grad", "to_dot",
           "draw", "primitive", "defvjp", "defjvp", "custom_vjp", "make_vjp", "vjp",
           "jacobian", "hvp", "hessian", "jacfwd", "jacrev", "hessian_vector_product",
           "make_hvp", "make_jvp", "linear_combination_of_hessians", "hessian_sparsity",
           "jacobian_sparsity", "trace", "Trace", "TraceError", "compile", "CompileWarning",
           *sorted(_functions)]
