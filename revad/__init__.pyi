# Type stub for the revad package: what type checkers see of `import revad`. Written by hand
# because revad/__init__.py installs the op table's functions (revad.exp, revad.add, ...) with
# globals().update, which no type checker follows. .ci/lint checks this file against the built
# module with mypy's stubtest; a new public name or op fails it until it is declared here.
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias, TypeVar, overload, type_check_only

import numpy as np

from revad import testing as testing
from revad._array import Array as Array
from revad._array import Trace as Trace
from revad._array import logsumexp as logsumexp
from revad._core import Function as Function
from revad._core import TraceError as TraceError
from revad._core import Var as Var
from revad._core import no_grad as no_grad
from revad._core import release_memory as release_memory
from revad._core import tape_info as tape_info
from revad.testing import check_grad as check_grad

__version__: str
__all__ = [
    "Var", "Array", "Function", "no_grad", "grad", "value_and_grad", "elementwise_grad",
    "logsumexp", "tape_info", "release_memory", "__version__", "jvp", "check_grad", "to_dot",
    "draw", "primitive", "defvjp", "defjvp", "custom_vjp", "make_vjp", "vjp", "jacobian",
    "hvp", "hessian", "jacfwd", "jacrev", "hessian_vector_product", "make_hvp", "make_jvp",
    "linear_combination_of_hessians", "hessian_sparsity", "jacobian_sparsity",
    "trace", "Trace", "TraceError", "compile", "CompileWarning",
    # the op table, sorted
    "abs", "add", "arccos", "arcsin", "arctan", "arctan2", "cos", "cosh", "divide", "erf", "exp",
    "expm1", "hypot", "log", "log1p", "maximum", "minimum", "multiply", "negative", "power",
    "relu", "sigmoid", "sin", "sinh", "softplus", "sqrt", "square", "subtract", "tan", "tanh",
    # the op table's rows for NumPy's other ufuncs (issue 16), sorted
    "arccosh", "arcsinh", "arctanh", "cbrt", "ceil", "conjugate", "deg2rad", "degrees", "exp2",
    "fabs", "floor", "fmax", "fmin", "fmod", "log10", "log2", "logaddexp", "logaddexp2",
    "positive", "rad2deg", "radians", "reciprocal", "remainder", "rint", "sign", "sinc", "trunc",
]

# A plain real number: a function of the op table gives a float for it.
_Number: TypeAlias = float | int | np.floating[Any] | np.integer[Any]
_Argnums: TypeAlias = int | Sequence[int]

# The op table's functions are instances of revad.Function; these two stub-only subclasses
# give their calls the types that their arity allows (an ndarray or a list gives an ndarray, or
# a float for a 0-d array: Any). Function's own __call__ takes one or two operands, so each
# narrows it: hence the ignore[override].
@type_check_only
class _UnaryFunction(Function):
    @overload  # type: ignore[override]
    def __call__(self, x: Var, /) -> Var: ...
    @overload
    def __call__(self, x: Array, /) -> Array: ...
    @overload
    def __call__(self, x: _Number, /) -> float: ...
    @overload
    def __call__(self, x: Any, /) -> Any: ...

@type_check_only
class _BinaryFunction(Function):
    @overload  # type: ignore[override]
    def __call__(self, x: Array, y: Any, /) -> Array: ...
    @overload
    def __call__(self, x: Any, y: Array, /) -> Array: ...
    @overload
    def __call__(self, x: Var, y: Var | _Number, /) -> Var: ...
    @overload
    def __call__(self, x: _Number, y: Var, /) -> Var: ...
    @overload
    def __call__(self, x: _Number, y: _Number, /) -> float: ...
    @overload
    def __call__(self, x: Any, y: Any, /) -> Any: ...

# The functional API (revad/_functional.py, revad/_forward.py).
def value_and_grad(
    f: Callable[..., Any], argnums: _Argnums = 0
) -> Callable[..., tuple[float, Any]]: ...
def grad(f: Callable[..., Any], argnums: _Argnums = 0) -> Callable[..., Any]: ...
def elementwise_grad(f: Callable[..., Any], argnums: _Argnums = 0) -> Callable[..., Any]: ...
def jacobian(
    f: Callable[..., Any], argnum: int = 0, sparse: bool = False
) -> Callable[..., Any]: ...

# Second order (revad/_second.py).
def hvp(f: Callable[..., Any], argnums: int = 0) -> Callable[..., Any]: ...
def hessian(
    f: Callable[..., Any], argnums: int = 0, sparse: bool = False
) -> Callable[..., Any]: ...
def jacfwd(f: Callable[..., Any], argnums: int = 0, sparse: bool = False) -> Callable[..., Any]: ...
def jacrev(f: Callable[..., Any], argnums: int = 0, sparse: bool = False) -> Callable[..., Any]: ...
def hessian_sparsity(f: Callable[..., Any], argnums: int = 0) -> Callable[..., Any]: ...
def jacobian_sparsity(f: Callable[..., Any], argnums: int = 0) -> Callable[..., Any]: ...
def hessian_vector_product(f: Callable[..., Any], argnum: int = 0) -> Callable[..., Any]: ...
def make_hvp(
    f: Callable[..., Any], argnum: int = 0
) -> Callable[..., tuple[Callable[[Any], Any], Any]]: ...
def make_jvp(
    f: Callable[..., Any], argnum: int = 0
) -> Callable[..., Callable[[Any], tuple[Any, Any]]]: ...
def linear_combination_of_hessians(
    f: Callable[..., Any], argnum: int = 0
) -> Callable[..., np.ndarray]: ...
def jvp(f: Callable[..., Any], primals: Any, tangents: Any) -> tuple[float, float]: ...

# Record once, replay in C (revad/_trace.py, src/revad/_array_trace.pxi).

def trace(
    f: Callable[..., Any], *args: Any, argnums: _Argnums = 0, static_argnums: Sequence[int] = ()
) -> Trace: ...

# Record once per argument structure and branch pattern, replay after (revad/_compile.py).
class CompileWarning(RuntimeWarning): ...

@type_check_only
class _Compiled:
    __wrapped__: Callable[..., Any]
    def __call__(self, *args: Any) -> tuple[float, Any]: ...
    def value(self, *args: Any) -> float: ...
    def grad(self, *args: Any) -> Any: ...
    def batch(self, *args: Any, threads: int = 2) -> tuple[np.ndarray, Any]: ...
    def hvp(self, *args: Any) -> Any: ...
    def hessian(self, *args: Any) -> Any: ...
    @property
    def stats(self) -> dict[str, Any]: ...
    @property
    def cache_size(self) -> int: ...
    @cache_size.setter
    def cache_size(self, size: int) -> None: ...

def compile(
    f: Callable[..., Any], argnums: _Argnums = 0, cache_size: int = 8
) -> _Compiled: ...

# User primitives (revad/_primitive.py).
_F = TypeVar("_F", bound=Callable[..., Any])

def primitive(f: _F) -> _F: ...
def defvjp(
    f: Callable[..., Any],
    *vjpmakers: Callable[..., Any] | None,
    argnums: Sequence[int] | None = None,
) -> None: ...
def defjvp(
    f: Callable[..., Any],
    *jvpmakers: Callable[..., Any] | None,
    argnums: Sequence[int] | None = None,
) -> None: ...

class custom_vjp:
    fun: Callable[..., Any]
    fwd: Callable[..., Any] | None
    bwd: Callable[..., Any] | None
    def __init__(self, fun: Callable[..., Any]) -> None: ...
    def defvjp(self, fwd: Callable[..., Any], bwd: Callable[..., Any]) -> None: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

def make_vjp(
    fun: Callable[..., Any], argnum: _Argnums = 0
) -> Callable[..., tuple[Callable[[Any], Any], Any]]: ...
def vjp(fun: Callable[..., Any], *primals: Any) -> tuple[Any, Callable[[Any], Any]]: ...

# The graph drawing (revad/_graph.py).
def to_dot(
    y: Var, names: Mapping[Any, Var] | None = None, *, max_nodes: int = 200, precision: int = 6
) -> str: ...
def draw(
    y: Var,
    path: str | os.PathLike[str],
    names: Mapping[Any, Var] | None = None,
    *,
    format: str | None = None,
    max_nodes: int = 200,
    precision: int = 6,
) -> str: ...

# The op table (revad._core.functions), one name per entry.
abs: _UnaryFunction
arccos: _UnaryFunction
arcsin: _UnaryFunction
arctan: _UnaryFunction
cos: _UnaryFunction
cosh: _UnaryFunction
erf: _UnaryFunction
exp: _UnaryFunction
expm1: _UnaryFunction
log: _UnaryFunction
log1p: _UnaryFunction
negative: _UnaryFunction
relu: _UnaryFunction
sigmoid: _UnaryFunction
sin: _UnaryFunction
sinh: _UnaryFunction
softplus: _UnaryFunction
sqrt: _UnaryFunction
square: _UnaryFunction
tan: _UnaryFunction
tanh: _UnaryFunction
add: _BinaryFunction
arctan2: _BinaryFunction
divide: _BinaryFunction
hypot: _BinaryFunction
maximum: _BinaryFunction
minimum: _BinaryFunction
multiply: _BinaryFunction
power: _BinaryFunction
subtract: _BinaryFunction
# the op table's rows for NumPy's other ufuncs (issue 16)
log2: _UnaryFunction
log10: _UnaryFunction
exp2: _UnaryFunction
arcsinh: _UnaryFunction
arccosh: _UnaryFunction
arctanh: _UnaryFunction
cbrt: _UnaryFunction
reciprocal: _UnaryFunction
sinc: _UnaryFunction
fabs: _UnaryFunction
sign: _UnaryFunction
floor: _UnaryFunction
ceil: _UnaryFunction
rint: _UnaryFunction
trunc: _UnaryFunction
deg2rad: _UnaryFunction
radians: _UnaryFunction
rad2deg: _UnaryFunction
degrees: _UnaryFunction
positive: _UnaryFunction
conjugate: _UnaryFunction
logaddexp: _BinaryFunction
logaddexp2: _BinaryFunction
fmax: _BinaryFunction
fmin: _BinaryFunction
remainder: _BinaryFunction
fmod: _BinaryFunction
