"""User primitives: functions revad cannot see into, with derivatives the user gives.

autograd's ``primitive`` / ``defvjp`` / ``defjvp`` and JAX's ``custom_vjp``: the function runs
on plain NumPy values, its call is recorded as one entry (a CALL group, ``kinds.h``), and the
sweeps hand that entry back to the VJP (reverse) or JVP (forward mode) given here, with the GIL.
Also ``make_vjp`` (autograd) and ``vjp`` (JAX).
"""
import functools
import operator

import numpy as np

from revad import _core
from revad._array import Array, _nests_nodes, _record_call, array
from revad._core import Var

_NODES = (Var, Array)


# ---------------------------------------------------------------------------------------------
# The output's structure: which leaves of a result (a number, an array, a tuple of them) are
# recorded, and where each sits in the flat run of values the CALL group holds.

class _Layout:
    """The float leaves of a result in order: (offset, shape, scalar), and how to rebuild it."""

    __slots__ = ("ans", "leaves", "size", "build")

    def __init__(self, ans, name):
        self.ans = ans
        self.leaves = []
        self.size = 0
        self.build = self._walk(ans, name)

    def _walk(self, x, name):
        if isinstance(x, tuple) or type(x) is list:
            parts = [self._walk(e, name) for e in x]
            kind = type(x)
            make = kind._make if hasattr(kind, "_fields") else kind  # namedtuple: EighResult
            return lambda flat, rebuild: make([p(flat, rebuild) for p in parts])
        if isinstance(x, (complex, np.complexfloating)) or (
                isinstance(x, np.ndarray) and x.dtype.kind == "c"):
            raise TypeError(f"revad: primitive {name} returned complex numbers; revad "
                            "differentiates real functions only")
        scalar = isinstance(x, (float, np.floating))
        if not scalar and not (isinstance(x, np.ndarray) and x.dtype.kind == "f"):
            return lambda flat, rebuild: x  # ints, bools, None, strings: constants as they are
        shape = np.shape(x)
        k, off = len(self.leaves), self.size
        self.leaves.append((off, shape, scalar))
        self.size += int(np.prod(shape, dtype=np.int64))
        return lambda flat, rebuild: rebuild(flat, k)

    def values(self, ans):
        """The result's float leaves, flat, in order."""
        out = []
        self._collect(self.ans, ans, out, None)
        return np.concatenate(out) if out else np.zeros(0)

    def tangent_values(self, t, what):
        """A JVP's result (the structure of the function's), its float leaves flat, in order;
        each conformed to its leaf's shape."""
        out = []
        self._collect(self.ans, t, out, what)
        return np.concatenate(out) if out else np.zeros(0)

    def _collect(self, template, x, out, what):
        if isinstance(template, (tuple, list)):
            if what is not None and (not isinstance(x, (tuple, list))
                                     or len(x) != len(template)):
                raise ValueError(f"revad: {what} must return a {type(template).__name__} of "
                                 f"{len(template)}, as the function does")
            for e, y in zip(template, x, strict=True):
                self._collect(e, y, out, what)
        elif isinstance(template, (float, np.floating)) or (
                isinstance(template, np.ndarray) and template.dtype.kind == "f"):
            shape = np.shape(template)
            v = np.asarray(x, dtype=np.float64) if what is None else _conform(x, shape, what)
            out.append(v.reshape(-1))

    def leaf_values(self, flat, k):
        off, shape, scalar = self.leaves[k]
        v = flat[off:off + int(np.prod(shape, dtype=np.int64))]
        return float(v[0]) if scalar else v.reshape(shape)

    def leaf_nodes(self, flat, k):
        off, shape, scalar = self.leaves[k]
        if not shape:
            return flat[off]  # a Var
        return flat[off:off + int(np.prod(shape, dtype=np.int64))].reshape(shape)


def _conform(ct, shape, what):
    """A cotangent or tangent the user's code returned, as float64 of `shape`: summed over the
    axes it was broadcast along (as autograd's unbroadcast), or a ValueError."""
    if type(ct) in _NODES:
        ct = ct.value
    ct = np.asarray(ct)
    if ct.dtype.kind == "c":
        raise TypeError(f"revad: {what} returned complex numbers; revad differentiates real "
                        "functions only")
    ct = ct.astype(np.float64, copy=False)
    return ct if ct.shape == shape else _unbroadcast(ct, shape, what)


class _Record:
    """One recorded call: what the sweeps ask of it (_core_call.pxi)."""

    __slots__ = ("name", "layout", "shapes", "vjp", "jvp", "values", "vjp_on", "again")

    def __init__(self, name, layout, shapes, vjp, jvp, values, vjp_on):
        self.name, self.layout, self.shapes = name, layout, shapes
        self.vjp, self.jvp = vjp, jvp  # g -> cotangents; (k, tangent) -> output tangent
        # For a sweep that records itself (revad._nested): the arguments' values, and
        # vjp_on(ans, values) -> the VJP, given the result and the arguments as recorded nodes.
        self.values, self.vjp_on = values, vjp_on
        # (fn, kwargs, vjp_of, jvp_of, argnums): what rerun() calls again (revad.trace)
        self.again = None

    def rerun(self, inputs):
        """The call again at new values of its inputs (flat, one per differentiated argument),
        for a replay (revad.trace): (its result's values, flat; the record of that call)."""
        fn, kwargs, vjp_of, jvp_of, argnums = self.again
        values = list(self.values)
        for (k, shape), x in zip(self.shapes, inputs, strict=True):
            values[k] = float(x[0]) if not shape and type(values[k]) is float else (
                np.asarray(x).reshape(shape))
        ans = fn(*values, **kwargs)
        layout = _Layout(ans, self.name)
        record = _Record(self.name, layout, self.shapes, vjp_of(ans, values, argnums),
                         jvp_of(ans, values), values, None)
        record.again = self.again
        return layout.values(ans), record

    def for_replay(self):
        """What a pickled trace keeps of this record: enough to rerun it."""
        return _Replayed(self.name, self.shapes, self.values, self.again)

    def backward_recorded(self, g, outputs, inputs):
        """The VJP as recorded ops: g and outputs (flat Arrays: the result's adjoints and
        values), inputs (flat Arrays, one per differentiated argument); returns one flat
        cotangent per input (an Array, or a constant)."""
        layout = self.layout
        values = list(self.values)
        for (k, shape), x in zip(self.shapes, inputs, strict=True):
            values[k] = x[0] if not shape else x.reshape(shape)
        cts = self.vjp_on(layout.build(outputs, layout.leaf_nodes), values)(
            layout.build(g, layout.leaf_nodes))
        out = []
        for (k, shape), ct in zip(self.shapes, cts, strict=True):
            if ct is None:
                out.append(None)
                continue
            if type(ct) is Var:
                ct = _stack(ct)
            if type(ct) is Array:
                if ct.shape != shape:
                    ct = _unbroadcast(ct, shape, f"the VJP of {self.name} for its argument {k}")
                out.append(ct.reshape(-1))
            else:
                out.append(_conform(ct, shape, f"the VJP of {self.name}").reshape(-1))
        return out

    def backward(self, g):
        g = self.layout.build(g, self.layout.leaf_values)
        cts = self.vjp(g)
        return [None if ct is None else
                _conform(ct, shape, f"the VJP of {self.name} for its argument {k}")
                for (k, shape), ct in zip(self.shapes, cts, strict=True)]

    def tangent(self, tangents):
        total = np.zeros(self.layout.size)
        for (k, shape), t in zip(self.shapes, tangents, strict=True):
            if not t.any():
                continue  # an input held still moves nothing (and needs no JVP)
            out = self.jvp(k, t[0] if not shape else t.reshape(shape))
            if out is None:
                continue
            total += self.layout.tangent_values(out, f"the JVP of {self.name}")
        return total


class _Replayed(_Record):
    """A record from a pickled trace: it reruns (the function and its VJP maker pickled by
    reference: a primitive's, through the wrapper revad.primitive made)."""

    __slots__ = ()

    def __init__(self, name, shapes, values, again):
        super().__init__(name, None, shapes, None, None, values, None)
        self.again = again

    def __reduce__(self):
        fn, kwargs, vjp_of, jvp_of, argnums = self.again
        if (isinstance(vjp_of, functools.partial) and vjp_of.func is _vjp_of
                and getattr(vjp_of.args[0], "fun", None) is fn):
            return _replayed_primitive, (self.name, self.shapes, self.values, vjp_of.args[0],
                                         kwargs, argnums)
        return _Replayed, (self.name, self.shapes, self.values, self.again)

    def for_replay(self):
        return self


def _replayed_primitive(name, shapes, values, fw, kwargs, argnums):
    return _Replayed(name, shapes, values, (fw.fun, kwargs, functools.partial(_vjp_of, fw, kwargs),
                                            functools.partial(_jvp_of, fw, kwargs), argnums))


def _stack(v):
    from revad._array import array
    return array([v])


def _unbroadcast(ct, shape, what):
    """A cotangent (an ndarray, or a recorded Array) summed back to `shape` over the axes it
    was broadcast along (as autograd's unbroadcast), or a ValueError naming the shapes."""
    try:
        if np.broadcast_shapes(ct.shape, shape) != ct.shape:
            raise ValueError
    except ValueError:
        raise ValueError(f"revad: {what} returned shape {ct.shape}, but it must have shape "
                         f"{shape}") from None
    lead = ct.ndim - len(shape)
    if lead:
        ct = ct.sum(axis=tuple(range(lead)))
    axes = tuple(d for d, s in enumerate(shape) if s == 1 and ct.shape[d] != 1)
    return ct.sum(axis=axes, keepdims=True).reshape(shape) if axes else ct.reshape(shape)


def _call(name, fn, args, kwargs, vjp_of, jvp_of, vjp_on=None):
    """Record fn(*args, **kwargs) as one entry: fn runs on the values of the Vars and Arrays
    among args; vjp_of(ans, values, argnums) gives the VJP (g -> cotangents in argnums' order),
    jvp_of(ans, values) the JVP ((k, tangent) -> output tangent)."""
    for key, v in kwargs.items():
        if type(v) in _NODES or _nests_nodes(v):
            raise TypeError(f"revad: {name} got a Var or an Array as keyword argument {key!r}; "
                            "pass differentiable values as positional arguments")
    argnums = [k for k, a in enumerate(args) if type(a) in _NODES]
    for k, a in enumerate(args):
        if type(a) not in _NODES and _nests_nodes(a):
            raise TypeError(f"revad: argument {k} of {name} holds Vars or Arrays in a "
                            f"{type(a).__name__}; pass each as an argument of its own, or stack "
                            "them with revad.numpy.array")
    _core._quiet(1)  # values a replay passes again (_Record.rerun): no guards (revad.trace)
    try:
        values = [a.value if type(a) in _NODES else a for a in args]
    finally:
        _core._quiet(-1)
    ans = fn(*values, **kwargs)
    if not argnums:
        return ans
    layout = _Layout(ans, name)
    if not layout.leaves:
        return ans  # integers or booleans only: nothing to differentiate
    shapes = [(k, np.shape(values[k])) for k in argnums]
    if vjp_on is None:
        def vjp_on(ans_nodes, value_nodes):
            return vjp_of(ans_nodes, value_nodes, argnums)
    record = _Record(name, layout, shapes, vjp_of(ans, values, argnums),
                     jvp_of(ans, values), values, vjp_on)
    record.again = (fn, kwargs, vjp_of, jvp_of, argnums)
    flat = _record_call(record, tuple(args[k] for k in argnums), layout.values(ans))
    return layout.build(flat, layout.leaf_nodes)


# ---------------------------------------------------------------------------------------------
# autograd's API

def primitive(f):
    """Make ``f`` (written with plain NumPy) one step of revad's record, differentiated by the
    VJP (``defvjp``) and JVP (``defjvp``) you give, as autograd's ``primitive``.

    Called with Vars or Arrays among its positional arguments, ``f`` runs on their values and
    its result (numbers, float arrays, or a tuple of them) comes back as Vars and Arrays,
    recorded as one entry; the reverse sweep calls the VJP there (with the GIL). Called on plain
    values, it is ``f``. A derivative of a derivative calls the VJP on recorded values: written
    with NumPy's functions and operators, it is differentiated in turn.

    >>> import numpy as np, revad
    >>> @revad.primitive
    ... def logsumexp(x):
    ...     m = np.max(x)
    ...     return m + np.log(np.sum(np.exp(x - m)))
    >>> revad.defvjp(logsumexp, lambda ans, x: lambda g: g * np.exp(x - ans))
    >>> revad.grad(logsumexp)(np.array([0.0, np.log(3.0)]))
    array([0.25, 0.75])
    """
    if not callable(f):
        raise TypeError(f"revad: primitive() takes a function, got {type(f).__name__}")
    name = getattr(f, "__name__", repr(f))

    @functools.wraps(f)
    def f_wrapped(*args, **kwargs):
        return _call(name, f, args, kwargs, functools.partial(_vjp_of, f_wrapped, kwargs),
                     functools.partial(_jvp_of, f_wrapped, kwargs))

    f_wrapped._revad_vjps = {}
    f_wrapped._revad_jvps = {}
    f_wrapped.fun = f
    return f_wrapped


def _vjp_of(fw, kwargs, ans, values, argnums):
    def vjp(g):
        out = []
        for k in argnums:
            maker = fw._revad_vjps.get(k)
            if maker is None:
                raise TypeError(f"revad: no VJP of {fw.__name__} for its argument {k}; give one "
                                f"with revad.defvjp")
            out.append(maker(ans, *values, **kwargs)(g))
        return out
    return vjp


def _jvp_of(fw, kwargs, ans, values):
    def jvp(k, t):
        maker = fw._revad_jvps.get(k)
        if maker is None:
            raise TypeError(f"revad: no JVP of {fw.__name__} for its argument {k} (forward mode "
                            "needs one); give one with revad.defjvp")
        return maker(t, ans, *values, **kwargs)
    return jvp


def _primitive_of(f, what):
    if not hasattr(f, "_revad_vjps"):
        raise TypeError(f"revad: {what} takes a function made by revad.primitive, got "
                        f"{getattr(f, '__name__', type(f).__name__)}")
    return f


def _makers(f, makers, argnums, table, what):
    _primitive_of(f, what)
    if argnums is None:
        argnums = range(len(makers))
    argnums = [operator.index(k) for k in argnums]
    if len(argnums) != len(makers):
        raise ValueError(f"revad: {what} got {len(makers)} functions for argnums {argnums}")
    for k, m in zip(argnums, makers, strict=True):
        if m is not None and not callable(m):
            raise TypeError(f"revad: {what}: the maker for argument {k} is not callable")
        table[k] = m


def defvjp(f, *vjpmakers, argnums=None):
    """Give primitive ``f`` its VJP for each positional argument, as autograd's ``defvjp``.

    ``vjpmaker(ans, *args, **kwargs)`` (``ans``: f's result, ``args``: its arguments' values, as
    plain NumPy values) returns ``vjp(g)``, which maps the cotangent ``g`` of the result (shaped
    like it; a tuple for a tuple result) to the argument's (its shape; a result broadcast
    against the argument is summed back). ``None`` leaves an argument without one.

    >>> import numpy as np, revad
    >>> @revad.primitive
    ... def cube(x):
    ...     return x ** 3
    >>> revad.defvjp(cube, lambda ans, x: lambda g: 3 * x ** 2 * g)
    >>> revad.grad(cube)(2.0)
    12.0
    """
    _makers(f, vjpmakers, argnums, f._revad_vjps if hasattr(f, "_revad_vjps") else None,
            "defvjp")


def defjvp(f, *jvpmakers, argnums=None):
    """Give primitive ``f`` its JVP for each positional argument (forward mode: ``revad.jvp``),
    as autograd's ``defjvp``: ``jvpmaker(t, ans, *args, **kwargs)`` maps the argument's tangent
    ``t`` to the result's; the contributions of the arguments are summed.

    >>> import numpy as np, revad
    >>> @revad.primitive
    ... def cube(x):
    ...     return x ** 3
    >>> revad.defjvp(cube, lambda t, ans, x: 3 * x ** 2 * t)
    >>> revad.jvp(cube, 2.0, 1.0)
    (8.0, 12.0)
    """
    _makers(f, jvpmakers, argnums, f._revad_jvps if hasattr(f, "_revad_jvps") else None,
            "defjvp")


# ---------------------------------------------------------------------------------------------
# JAX's custom_vjp

class custom_vjp:
    """A function with a VJP you give, as JAX's ``custom_vjp``: ``f.defvjp(fwd, bwd)``, where
    ``fwd(*args)`` returns ``(f(*args), residuals)`` and ``bwd(residuals, g)`` a tuple of one
    cotangent per positional argument (``None`` for none).

    >>> import numpy as np, revad
    >>> @revad.custom_vjp
    ... def clip_gradient(x):
    ...     return x
    >>> clip_gradient.defvjp(lambda x: (x, None), lambda res, g: (np.clip(g, -1.0, 1.0),))
    >>> revad.grad(lambda x: 5.0 * clip_gradient(x))(2.0)
    1.0
    """

    def __init__(self, fun):
        if not callable(fun):
            raise TypeError(f"revad: custom_vjp takes a function, got {type(fun).__name__}")
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.fwd = self.bwd = None

    def defvjp(self, fwd, bwd):
        if not (callable(fwd) and callable(bwd)):
            raise TypeError("revad: custom_vjp.defvjp takes two functions, fwd and bwd")
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args, **kwargs):
        name = getattr(self.fun, "__name__", repr(self.fun))
        if not any(type(a) in _NODES for a in args):
            return self.fun(*args, **kwargs)
        if self.fwd is None:
            raise TypeError(f"revad: custom_vjp function {name} has no VJP yet; call its "
                            ".defvjp(fwd, bwd)")
        box = {}

        def run(*values, **kw):
            ans, box["res"] = self.fwd(*values, **kw)
            return ans

        def vjp_of(ans, values, argnums):
            def vjp(g):
                cts = self.bwd(box["res"], g)
                if not isinstance(cts, tuple) or len(cts) != len(values):
                    raise ValueError(f"revad: the bwd of {name} must return a tuple of "
                                     f"{len(values)} cotangents (one per positional argument)")
                return [cts[k] for k in argnums]
            return vjp

        def jvp_of(ans, values):
            def jvp(k, t):
                raise TypeError(f"revad: {name} is a custom_vjp function: forward mode "
                                "(revad.jvp) needs a JVP (revad.primitive with revad.defjvp)")
            return jvp

        def vjp_on(ans_nodes, value_nodes):  # fwd again, on recorded nodes: residuals too
            _, res = self.fwd(*value_nodes, **kwargs)
            box["res"] = res
            return vjp_of(ans_nodes, value_nodes,
                          [k for k, a in enumerate(args) if type(a) in _NODES])

        return _call(name, run, args, kwargs, vjp_of, jvp_of, vjp_on)


# ---------------------------------------------------------------------------------------------
# make_vjp (autograd) and vjp (JAX): the cotangent-weighted gradient of a function of any shape

def _weighted(out, g, where="the result"):
    """sum(out * g) over a result and its cotangent of the same structure."""
    if isinstance(out, (tuple, list)):
        if not isinstance(g, (tuple, list)) or len(g) != len(out):
            raise ValueError(f"revad: the cotangent must have the structure of {where}: "
                             f"a {type(out).__name__} of {len(out)}")
        total = 0.0
        for k, (o, c) in enumerate(zip(out, g, strict=True)):
            total = total + _weighted(o, c, f"{where}[{k}]")
        return total
    shape = np.shape(out.value if type(out) in _NODES else out)
    c = np.asarray(g, dtype=np.float64)
    if c.shape != shape:
        raise ValueError(f"revad: the cotangent of {where} has shape {c.shape}, but {where} "
                         f"has shape {shape}")
    if type(out) is Var or not shape:
        return out * float(c)
    return (out * c).sum() if type(out) is Array else float(np.sum(out * c))


def _stacked(out):
    """out with NumPy's object arrays (np.array of recorded Vars: NumPy's own np.array, not
    revad.numpy's) stacked into Arrays while the tape records, so that their value and their
    cotangent's weight reach the tape instead of being read off loose Vars as floats."""
    if isinstance(out, (tuple, list)):
        parts = [_stacked(e) for e in out]
        return type(out)._make(parts) if hasattr(type(out), "_fields") else type(out)(parts)
    if isinstance(out, np.ndarray) and out.dtype == object:
        return array(out)
    return out


def _plain(x):
    if isinstance(x, (tuple, list)):
        return type(x)(_plain(e) for e in x)
    return x.value if type(x) in _NODES else x


def make_vjp(fun, argnum=0):
    """autograd's ``make_vjp``: ``make_vjp(f, argnum)(*args)`` returns ``(vjp, f(*args))``,
    ``vjp(g)`` the gradient of ``sum(f(*args) * g)`` with respect to ``args[argnum]``
    (each call of ``vjp`` records f once more).

    >>> import numpy as np, revad
    >>> vjp, ans = revad.make_vjp(lambda x: x ** 2)(np.array([1.0, 3.0]))
    >>> ans, vjp(np.array([1.0, 10.0]))
    (array([1., 9.]), array([ 2., 60.]))
    """
    from revad._functional import grad, value_and_grad

    def maker(*args, **kwargs):
        box = {}

        def keep(*a, **kw):
            box["out"] = out = _stacked(fun(*a, **kw))
            return _first_scalar(out)

        value_and_grad(keep, argnum)(*args, **kwargs)
        ans = _plain(box["out"])

        def vjp(g):
            return grad(lambda *a, **kw: _weighted(_stacked(fun(*a, **kw)), g), argnum)(
                *args, **kwargs)

        return vjp, ans
    return maker


def _first_scalar(out):
    """Some scalar of out, to sweep from (make_vjp's first recording only keeps the value)."""
    if isinstance(out, (tuple, list)):
        return _first_scalar(out[0]) if out else 0.0
    if type(out) is Array or isinstance(out, np.ndarray):
        return out.reshape(-1)[0] if out.size else 0.0
    return out


def vjp(fun, *primals):
    """JAX's ``vjp``: ``(f(*primals), vjp_fn)``, ``vjp_fn(g)`` a tuple of one cotangent per
    primal (the gradient of ``sum(f(*primals) * g)``).

    >>> import numpy as np, revad
    >>> out, vjp_fn = revad.vjp(lambda x, y: x * y, np.array([1.0, 2.0]), 3.0)
    >>> out, vjp_fn(np.array([1.0, 1.0]))
    (array([3., 6.]), (array([3., 3.]), 3.0))
    """
    if not primals:
        raise TypeError("revad: vjp needs at least one primal argument")
    nums = tuple(range(len(primals)))
    fn, ans = make_vjp(fun, nums)(*primals)
    return ans, fn
