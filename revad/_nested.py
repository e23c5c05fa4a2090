"""Derivatives of derivatives: ``grad`` called inside a function being differentiated, or on
Vars and Arrays (``grad(grad(f))``, ``jvp(grad(f))``, a Hessian-vector product).

Such a call records on the tape its arguments come from (or the enclosing call's private tape)
instead of a private tape of its own: its arguments become fresh nodes there (a copy of each
Var and Array, new leaves for plain numbers and arrays), ``f`` records on top, and the reverse
sweep from f's result records itself (``_recorded_adjoints``, ``src/revad/_array_nested.pxi``):
each adjoint is a node, so the gradient it returns is a recorded function of the arguments that
any sweep differentiates again. The inner call's variables are its own nodes, never the
outer's, so an inner derivative cannot confuse the two (``d/dx [x * d/dy (x + y)]`` is 1).
"""
import numpy as np

from revad import _array, _core
from revad._array import Array
from revad._core import Var
from revad._primitive import _NODES


def holds_nodes(x):
    """Whether x is or holds (in lists, tuples, dicts) a Var or an Array."""
    if type(x) in _NODES:
        return True
    if type(x) in (list, tuple):
        return any(holds_nodes(e) for e in x)
    if type(x) is dict:
        return any(holds_nodes(e) for e in x.values())
    return _array._nests_nodes(x)


def _box(x, where):
    """x with each number and array replaced by a fresh node of the current tape: (boxed,
    unbox) where unbox(adjoint_of) rebuilds x's structure from each node's adjoint."""
    kind = type(x)
    if kind is Var:
        v = _core.functions["positive"](x)  # a node of its own, equal to x (d/dx = 1)
        return v, lambda adj: adj(v)
    if kind is Array:
        a = _core.functions["positive"](x)
        return a, lambda adj: adj(a)
    if kind in (list, tuple):
        parts = [_box(e, f"{where}[{k}]") for k, e in enumerate(x)]
        return kind(p[0] for p in parts), lambda adj: kind(p[1](adj) for p in parts)
    if kind is dict:
        parts = {k: _box(e, f"{where}[{k!r}]") for k, e in x.items()}
        return ({k: p[0] for k, p in parts.items()},
                lambda adj: {k: p[1](adj) for k, p in parts.items()})
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biuf":
            raise TypeError(f"revad: {where} is an array of dtype {x.dtype}; differentiate with "
                            "respect to real numbers only")
        a = _core.functions["positive"](Array(np.asarray(x, dtype=np.float64)))
        return a, lambda adj: adj(a)
    if not isinstance(x, (complex, np.complexfloating)) and _core._is_real(x):
        v = _core.functions["positive"](Var(float(x)))
        return v, lambda adj: adj(v)
    raise TypeError(f"revad: {where} is a {type(x).__name__}; differentiable arguments are real "
                    "numbers, NumPy arrays of reals, Vars, Arrays, or lists, tuples and dicts "
                    "of them")


def value_and_grad(f, args, kwargs, nums, single, scalar_output):
    """value_and_grad's call made inside another derivative (see the module): the value is the
    recorded result, the gradients are recorded nodes (Vars, Arrays) in the arguments' shape."""
    args = list(args)
    n = len(args)
    unboxes, seen = [], {}
    for num in nums:
        k = num + n if num < 0 else num
        if k not in seen:
            args[k], seen[k] = _box(args[k], f"argument {k}")
        unboxes.append(seen[k])
    fresh = [v for k in seen for v in _leaves(args[k])]
    out = scalar_output(f(*args, **kwargs))
    swept = _array._nested_adjoints(out, fresh)

    def adjoint(node):
        g = None if swept is None else _array._adjoint_of(node, *swept)
        return _zeros_like(node) if g is None else g

    grads = tuple(u(adjoint) for u in unboxes)
    return out, (grads[0] if single else grads)


def _leaves(x):
    if type(x) in _NODES:
        return [x]
    if type(x) in (list, tuple):
        return [v for e in x for v in _leaves(e)]
    if type(x) is dict:
        return [v for e in x.values() for v in _leaves(e)]
    return []


def _zeros_like(node):
    return 0.0 if type(node) is Var else np.zeros(node.shape)


def jvp(f, args, tangents):
    """jvp's call inside a derivative (or on Vars and Arrays): (f(*args), J v) as recorded
    nodes, by reverse mode twice: the gradient of u . f(x) in x is J^T u, a recorded function
    of u, linear in it; the gradient of (J^T u) . v in u is J v."""
    from revad._functional import grad

    nums = tuple(range(len(args)))
    out = f(*args)
    if type(out) is Var or not hasattr(out, "shape") or out.shape == ():
        if type(out) is not Var and type(out) is not Array:
            return out, 0.0
        gs = grad(f, nums)(*args)
        return out, _dot_all(gs, tangents)
    u0 = np.zeros(out.shape)

    def jt_u_dot_v(u):
        gs = grad(lambda *a: _sum(f(*a) * u), nums)(*args)
        return _dot_all(gs, tangents)

    return out, grad(jt_u_dot_v)(u0)


def _sum(x):
    return x.sum() if type(x) is Array else x


def _dot_all(gs, vs):
    total = 0.0
    for g, v in zip(gs, vs, strict=True):
        total = total + _dot(g, v)
    return total


def _dot(g, v):
    if type(g) in (list, tuple):
        return sum((_dot(a, b) for a, b in zip(g, v, strict=True)), 0.0)
    if type(g) is dict:
        return sum((_dot(g[k], v[k]) for k in g), 0.0)
    if type(g) is Array:
        return (g * np.asarray(v, dtype=np.float64)).sum()
    return g * v
