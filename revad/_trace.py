"""revad.trace: record a function once, replay it in C at new arguments.

The recording is an ordinary tape (the one ``value_and_grad`` makes), recorded with every float
argument boxed as a leaf -- the differentiated ones and the others (data, hyper-parameters) --
so that new values of any of them are used on replay, never the recorded ones. Integer and
boolean arguments, integer arrays and other objects are static: a replay compares them with
the recorded ones (``==``, ``np.array_equal``) and raises ``TraceError`` if they differ.

Guards (``src/revad/_core_replay.pxi``): every comparison on a traced value is on the tape, and
every escape of one into Python (``float``, ``int``, ``bool``, ``.value``, ``.item()``,
``math.sin``, a mask) records a guard entry while the trace records; the C forward replay
checks each, bit for bit, and a replay that would not run the recorded program raises
``TraceError`` naming the guard, its recorded and new value and the line that made it.

What no guard sees: a global or closure variable changed between calls (as under JAX's jit),
``repr``/``str`` of a traced value, and Python state the function mutates.

Second order (``Trace.hvp``, ``Trace.hessian``) replays forward, then runs ``revad.hvp``'s sweeps
in C over the replayed values (``_core_second.pxi``'s ``_second_products``); a recording holding
a ``revad.primitive`` or SciPy function, which have no second-order rule in C, raises
``NotImplementedError`` there (``revad.compile`` then calls ``revad.hvp``).
"""
import operator

import numpy as np

from revad import _array, _core
from revad._array import Array, Trace, _make_trace, _new_plan
from revad._core import TraceError, Var

__all__ = ["trace", "Trace", "TraceError"]

_NUMBER, _REALS, _NDARRAY, _STATIC, _TREE = (
    _array._PLAN_NUMBER, _array._PLAN_REALS, _array._PLAN_NDARRAY, _array._PLAN_STATIC,
    _array._PLAN_TREE)


def _argnums(argnums):
    from revad._functional import _argnums as check
    return check(argnums)


def _is_number(x):
    return type(x) in (float, int) or isinstance(x, (np.floating, np.integer))


def _is_float(x, diff):
    """Whether x is a number a trace boxes: a float (any real number when differentiated)."""
    if type(x) is bool or isinstance(x, np.bool_):
        return diff
    if type(x) is float or isinstance(x, np.floating):
        return True
    return diff and (type(x) is int or isinstance(x, np.integer))


class _Boxer:
    """Boxes one argument on tape t, and makes its plan (_array_trace.pxi, _Plan)."""

    def __init__(self, t):
        self.t = t
        self.pending = []  # (plan, leaf): slots read once f has run (Array leaves bind lazily)

    def box(self, x, diff, where):
        kind = type(x)
        if _is_number(x) or type(x) is bool or isinstance(x, np.bool_):
            if not _is_float(x, diff):
                return x, _new_plan(_STATIC, value=x, name=where)
            v = _core._make_leaves([float(x)])[0]
            _core._bind_leaves([v])
            plan = _new_plan(_NUMBER, name=where)
            self.pending.append((plan, v))
            return v, plan
        if (kind is list or kind is tuple) and x and all(_is_number(e) and _is_float(e, diff)
                                                          for e in x):
            leaves = _core._make_leaves([float(e) for e in x])
            _core._bind_leaves(leaves)
            plan = _new_plan(_REALS, rtype=kind, size=len(x), name=where)
            self.pending.append((plan, leaves))
            return (leaves if kind is list else tuple(leaves)), plan
        if kind is np.ndarray:
            if x.dtype.kind == "f" or (diff and x.dtype.kind in "biu"):
                leaf = _array._private_leaf(x)
                plan = _new_plan(_NDARRAY, shape=x.shape, dtype=x.dtype, size=x.size,
                                 name=where)
                self.pending.append((plan, leaf))
                return leaf, plan
            return x, _new_plan(_STATIC, value=x.copy(), name=where)
        if kind is list or kind is tuple or kind is dict:
            return self._tree(x, diff, where)
        if kind is Var or kind is Array:
            raise TypeError(f"revad: {where[2:] or 'an argument'} is a {kind.__name__}: a trace "
                            "records a function of plain numbers and arrays; pass values")
        if isinstance(x, (complex, np.complexfloating)):
            raise TypeError(f"revad: {where[2:] or 'an argument'} is complex; revad "
                            "differentiates real functions")
        return x, _new_plan(_STATIC, value=x, name=where)

    def _tree(self, x, diff, where):
        kind = type(x)
        if kind is dict:
            keys = list(x)
            parts = [self.box(x[k], diff, f"{where}[{k!r}]") for k in keys]
            boxed = {k: p[0] for k, p in zip(keys, parts, strict=True)}
        else:
            keys = None
            parts = [self.box(e, diff, f"{where}[{i}]") for i, e in enumerate(x)]
            boxed = kind([p[0] for p in parts])
        # Checked and rebuilt from data (_array_trace.pxi: the kind, its length and keys), so
        # that a trace pickles.
        plan = _new_plan(_TREE, leaves=[p[1] for p in parts], rtype=kind, value=keys,
                         size=len(parts), name=where)
        return boxed, plan

    def settle(self):
        """Every plan's slots, once f has run."""
        t = self.t
        for plan, leaf in self.pending:
            if plan.kind == _NUMBER:
                plan.slot = _array._var_binding(leaf, t)
            elif plan.kind == _REALS:
                plan.slots = np.array([_array._var_binding(v, t) for v in leaf], dtype=np.int64)
            else:
                plan.slot = _array._array_binding(leaf, t)


def trace(f, *args, argnums=0, static_argnums=()):
    """Record ``f(*args)`` once; the returned ``Trace`` replays it in C at new arguments.

    ``tr.value_and_grad(*new_args)`` gives exactly what ``revad.value_and_grad(f, argnums)``
    gives at ``new_args`` -- or raises ``revad.TraceError`` where the recorded program is not the
    one Python would run there (a comparison comes out the other way, a value that escaped into
    Python by ``float(v)``, ``.value``, a mask, ... changed). Every float argument is an input
    of the recording, not only the differentiated ones: new data, a new scalar hyper-parameter
    are used on replay. Integer, boolean and other arguments, and those in ``static_argnums``,
    are constants of the recording: a replay checks that they are equal. The arguments must
    keep their structure, shapes and dtypes. A trace pickles (functions it calls back, such as
    ``revad.primitive``'s, by reference).

    >>> import revad
    >>> def f(x):
    ...     return revad.sigmoid(x[0] * x[1] + x[2]) if x[2] > 0 else -x[2]
    >>> tr = revad.trace(f, [1.0, 2.0, 3.0])
    >>> v, g = tr.value_and_grad([2.0, -1.0, 0.5])
    >>> round(v, 6), [round(d, 6) for d in g]
    (0.182426, [-0.149146, 0.298293, 0.149146])
    >>> tr.value_and_grad([2.0, -1.0, -0.5])
    Traceback (most recent call last):
    ...
    revad.TraceError: revad: guard failed (comparison): 3.0 > 0.0 was True when recorded; ...
    """
    from revad._functional import _scalar_output
    nums = _argnums(argnums)
    single = not isinstance(argnums, (tuple, list))
    n = len(args)
    for k in nums:
        if not -n <= k < n:
            raise TypeError(f"revad: argnums={argnums!r} but the function was called with {n} "
                            "positional argument(s)")
    nums = tuple(k + n if k < 0 else k for k in nums)
    statics = {operator.index(k) % n if n else k for k in static_argnums}
    if statics & set(nums):
        raise ValueError("revad: an argument cannot be both differentiated and static")
    saved = _core._enter_private()
    t = _array._trace_tape()
    _array._trace_start(t)
    _core._tracing_begin(1)
    try:
        boxer = _Boxer(t)
        boxed, plans = [], []
        for k, x in enumerate(args):
            if k in statics:
                b, p = x, _new_plan(_STATIC, value=x, name=f" ({k})")
            else:
                b, p = boxer.box(x, k in nums, "")
            boxed.append(b)
            plans.append(p)
        for k in nums:
            if plans[k].kind == _STATIC or (plans[k].kind == _TREE
                                            and _all_static(plans[k])):
                raise TypeError(f"revad: argument {k} is a {type(args[k]).__name__}; "
                                "differentiable arguments are real numbers, NumPy arrays of "
                                "reals, or lists, tuples and dicts of them")
        out = f(*boxed)
        if type(out) is not Var:
            out = _scalar_output(out)
        boxed = None
        boxer.settle()
    finally:
        _core._tracing_begin(-1)
        _core._exit_private(saved)
    value = float(out.value) if type(out) is Var else float(out)
    return _make_trace(t, plans, nums, single, out if type(out) is Var else None, value,
                       {"name": getattr(f, "__name__", repr(f)), "argnums": argnums,
                        "nums": nums, "single": single})


def _all_static(plan):
    if plan.kind == _TREE:
        return all(_all_static(p) for p in plan.leaves)
    return plan.kind == _STATIC


def _restore(state, plans, nums, single, out, out_value, info):
    """A pickled Trace, rebuilt (Trace.__reduce__)."""
    return _array._restore_trace(state, plans, nums, single, out, out_value, info)


def _row(x, j, plan):
    """Row j of a batched differentiated argument, as the recorded argument was."""
    if plan.kind == _NUMBER:
        return float(x[j])
    if plan.kind == _REALS:
        return plan.rtype(_reals(x)[j].tolist())
    if plan.kind == _NDARRAY:
        return np.asarray(x[j], dtype=plan.dtype)
    if plan.kind == _TREE:
        if plan.value is not None:
            return {k: _row(x[k], j, p) for k, p in zip(plan.value, plan.leaves, strict=True)}
        return plan.rtype(_row(e, j, p) for e, p in zip(x, plan.leaves, strict=True))
    return x  # a static leaf: shared


def _reals(x):
    """A batched list (or tuple) of numbers as an (m, k) float64 array: given as one (an
    ndarray, its rows the points), or as a list or tuple of the k numbers' (m,) batches, as
    compile's batch and the other leaves of a structure take it."""
    if isinstance(x, (list, tuple)):
        return np.stack([np.asarray(e, dtype=np.float64) for e in x], axis=-1)
    return np.asarray(x, dtype=np.float64)


def _rows_of(x, plan, where):
    """The batch size of a batched argument (its leading axis)."""
    if plan.kind == _STATIC:
        return None
    if plan.kind == _TREE:
        sizes = {m for e, p in zip(x.values() if plan.value is not None else x, plan.leaves,
                                   strict=True)
                 if (m := _rows_of(e, p, where)) is not None}
        if len(sizes) > 1:
            raise ValueError(f"revad: batch: {where} has leaves of different batch sizes {sizes}")
        return sizes.pop() if sizes else None
    a = _reals(x) if plan.kind == _REALS else np.asarray(x)
    if a.ndim == 0:
        raise ValueError(f"revad: batch: {where} needs a leading batch axis")
    return a.shape[0]


def _stack(items):
    first = items[0]
    if type(first) is dict:
        return {k: _stack([it[k] for it in items]) for k in first}
    # A list or tuple of numbers is one leaf (an (m, k) array, as batch takes it); any other,
    # [number, list] say, keeps its structure with each position stacked.
    if type(first) in (list, tuple) and not all(_is_number(e) for e in first):
        return type(first)(_stack([it[i] for it in items]) for i in range(len(first)))
    if first is None:
        return None
    return np.asarray(items, dtype=np.float64)


# Which route each batch took (tests read it): "c", the rows in C without the GIL; "python",
# a row at a time through value_and_grad's call path (a tape that needs Python, arguments the
# C route does not take).
_batch_routes = {"c": 0, "python": 0}


def _columns(x, plan, m, cols, xs):
    """Batched argument x's inputs as (m, k) float64 arrays onto cols, and their slots onto
    xs, as _row's rows would write them; False where the C route does not take it (a static
    leaf in it, or x not as its plan: the row by row route says what is wrong)."""
    kind = plan.kind
    try:
        if kind == _NUMBER or kind == _REALS:  # (_row: float(x[j]), a row of float64)
            a = _reals(x) if kind == _REALS else np.asarray(x, dtype=np.float64)
            a = a.reshape(m, 1) if kind == _NUMBER and a.shape == (m,) else a
            slots = np.array([plan.slot]) if kind == _NUMBER else plan.slots
        elif kind == _NDARRAY:  # (_row: x[j] as the recorded dtype; a call: as float64)
            a = np.asarray(x, dtype=plan.dtype)
            if a.shape != (m, *plan.shape):
                return False
            a = a.reshape(m, plan.size)
            slots = (np.arange(plan.slot, plan.slot + plan.size) if plan.slot >= 0
                     else np.full(plan.size, -1))
        elif kind == _TREE and plan.size:
            if plan.value is not None:
                if type(x) is not dict or not all(k in x for k in plan.value):
                    return False
                parts = [x[k] for k in plan.value]
            elif isinstance(x, (list, tuple)) and len(x) == plan.size:
                parts = x
            else:
                return False
            return all(_columns(e, p, m, cols, xs) for e, p in zip(parts, plan.leaves,
                                                                    strict=True))
        else:
            return False
    except (TypeError, ValueError):
        return False
    if a.shape != (m, len(slots)):
        return False
    keep = slots >= 0  # (an input the function never read has no slot)
    cols.append(a if keep.all() else a[:, keep])
    xs.append(slots[keep])
    return True


def _shaper(plan, gs):
    """The gradient of an argument of this plan read from slots appended to gs: a function of
    the (m, ng) gradients giving what _stack makes of the rows' value_and_grad gradients; None
    where the C route does not shape it."""
    c = sum(len(s) for s in gs)
    kind = plan.kind
    if kind == _NUMBER:
        gs.append(np.array([plan.slot]))
        return lambda G: G[:, c].copy()
    if kind == _REALS:
        gs.append(plan.slots)
        return lambda G: G[:, c:c + plan.size].copy()
    if kind == _NDARRAY:
        gs.append(np.arange(plan.slot, plan.slot + plan.size) if plan.slot >= 0
                  else np.full(plan.size, -1))
        return lambda G: np.ascontiguousarray(G[:, c:c + plan.size]).reshape((len(G),
                                                                               *plan.shape))
    if kind != _TREE or not plan.size:
        return None
    # _stack goes into a list or tuple per position unless every element is a number; then
    # it makes one array of the rows (not shaped here).
    if plan.value is None and all(p.kind == _NUMBER for p in plan.leaves):
        return None
    parts = [_shaper(p, gs) for p in plan.leaves]
    if any(p is None for p in parts):
        return None
    if plan.value is not None:
        return lambda G: {k: p(G) for k, p in zip(plan.value, parts, strict=True)}
    return lambda G: plan.rtype(p(G) for p in parts)


def _batch_in_c(tr, args, plans, nums, m, threads):
    """The C route of _batch, or None where it does not run."""
    cols, xs, gs = [], [], []
    batched = set(nums)
    if not all(_columns(args[k], plans[k], m, cols, xs) for k in sorted(batched)):
        return None
    shapers = [_shaper(plans[k], gs) for k in nums]
    if any(s is None for s in shapers):
        return None
    row0 = tuple(_row(a, 0, plans[k]) if k in batched else a for k, a in enumerate(args))
    out = tr._batch_in_c(row0, m, cols, np.concatenate(xs), np.concatenate(gs),
                         max(1, int(threads)))
    if out is None:
        return None
    values, G, fail = out
    _batch_routes["c"] += 1
    if fail >= 0:  # the row's TraceError, as the row by row route makes it
        row = tuple(_row(a, fail, plans[k]) if k in batched else a for k, a in enumerate(args))
        tr._replay_with(tr._new_buffers(), row, fail)
        raise RuntimeError(f"revad: internal error: batch row {fail} failed in C, not in a call")
    if tr.info["single"]:
        return values, shapers[0](G)
    return values, tuple(s(G) for s in shapers)


def _batch(tr, args, threads):
    import itertools
    import threading

    plans = tr._plans()
    nums = tr.info["nums"]
    if len(args) != len(plans):
        raise TypeError(f"revad: this trace was recorded with {len(plans)} positional "
                        f"argument(s), got {len(args)}")
    sizes = {_rows_of(args[k], plans[k], f"argument {k}") for k in set(nums)}
    sizes.discard(None)
    if len(sizes) != 1:
        raise ValueError(f"revad: batch: the differentiated arguments need one leading batch "
                         f"axis of one size, got {sorted(sizes)}")
    m = sizes.pop()
    if m and (out := _batch_in_c(tr, args, plans, nums, m, threads)) is not None:
        return out
    _batch_routes["python"] += 1
    batched = set(nums)
    results = [None] * m
    rows = itertools.count()  # next() is atomic under the GIL: each row is claimed once
    errors = []

    def work():
        buffers = tr._new_buffers()
        try:
            while not errors:
                j = next(rows)
                if j >= m:
                    return
                row = tuple(_row(a, j, plans[k]) if k in batched else a
                            for k, a in enumerate(args))
                results[j] = tr._replay_with(buffers, row, j)
        except BaseException as e:
            errors.append(e)

    n = max(1, min(int(threads), m))
    workers = [threading.Thread(target=work) for _ in range(n - 1)]
    for w in workers:
        w.start()
    work()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    if m == 0:
        return np.zeros(0), None
    values = np.array([r[0] for r in results])
    grads = [r[1] for r in results]
    if tr.info["single"]:
        return values, _stack(grads)
    return values, tuple(_stack([g[i] for g in grads]) for i in range(len(nums)))
