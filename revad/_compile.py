"""revad.compile: value_and_grad that records once per argument structure and branch pattern,
then replays the recorded tape (revad.trace) at new arguments.

A Trace replays one recording and raises revad.TraceError when a guard (a comparison or an
escape of a traced value into Python) would go the other way; compile keeps a few Traces per
argument structure, tries them most recently used first, and records a new one when none fits.
"""
import collections
import functools
import importlib
import pickle
import re
import threading
import warnings

import numpy as np

from revad._array import _Replays
from revad._core import TraceError
from revad._functional import _argnums
from revad._trace import trace

# What a Trace raises where it cannot replay a call: a guard failed (TraceError), or the
# arguments differ from the recorded ones in structure, shape, dtype or a static value.
_MISS = (TraceError, TypeError, ValueError)
_KIND = re.compile(r"revad: guard failed \(([^)]*)\)")

# A function that has to record again on more than this share of its calls, after at least
# WARN_AFTER calls, gets one warning: compile then costs more than value_and_grad.
WARN_AFTER = 20
WARN_SHARE = 0.5


class CompileWarning(RuntimeWarning):
    """``revad.compile`` cannot help a function: the guards of its recordings fail on most
    calls (more than half of at least 20), so most calls record again. Given once per compiled
    function; the message names the guard that failed last and the line that made it.

    >>> import math, warnings, revad
    >>> cf = revad.compile(lambda x: x * math.sin(x))  # math.sin(x) takes float(x): a guard
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     for k in range(30):
    ...         _ = cf(0.1 * k)
    >>> [w.category.__name__ for w in caught]
    ['CompileWarning']
    """


def _signature(x, static):
    """What a Trace is specific to in argument x: its pytree structure, its arrays' shapes and
    dtypes and its numbers' types; for an argument not differentiated (``static``), the value
    of anything that is not a float or a float array (ints, strings, None: they may set a loop
    count or choose a code path without any traced comparison)."""
    kind = type(x)
    if kind is float:
        return float
    if kind is np.ndarray:
        if static and x.dtype.kind != "f":
            return (np.ndarray, x.shape, x.dtype.str, x.tobytes())
        return (np.ndarray, x.shape, x.dtype.str)
    if kind is list or kind is tuple:
        return (kind, tuple([_signature(e, static) for e in x]))
    if kind is dict:
        return (dict, tuple([(k, _signature(v, static)) for k, v in x.items()]))
    if isinstance(x, np.floating):
        return kind
    if static or not isinstance(x, (int, np.integer)):
        try:
            hash(x)
        except TypeError:
            return (kind, "id", id(x))
        return (kind, x)
    return kind  # an int or a bool that is differentiated: its value is an input


class Compiled(_Replays):
    """The object ``revad.compile(f)`` returns; see ``revad.compile``."""

    def __init__(self, f, argnums=0, cache_size=8):
        if not callable(f):
            raise TypeError(f"revad.compile: f must be callable, got a {type(f).__name__}")
        nums = _argnums(argnums)
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 1:
            raise ValueError(f"revad.compile: cache_size must be a positive int, got "
                             f"{cache_size!r}")
        functools.update_wrapper(self, f)
        self._f = f
        self._argnums = argnums
        self._nums = nums
        self._cache_size = cache_size
        # (signature, serial) -> Trace, least recently used first: the one LRU order of all
        # Traces; _by_sig lists each signature's keys, most recently used first.
        self._traces = collections.OrderedDict()
        self._by_sig = {}
        self._serial = 0
        self._mru = None  # the Trace that answered last: __call__ (_Replays) tries it first
        self._lock = threading.RLock()
        self._records = self._evictions = 0
        self._eager = 0  # hvp/hessian calls handed to revad.hvp/hessian (no rule in C)
        self._unanswered = 0  # recordings made by such a call (it counts as eager)
        self._failures = collections.Counter()
        self._rerecords = 0  # calls on a known signature that no cached Trace could replay
        self._last_failure = None
        self._warned = False

    # --- calls --------------------------------------------------------------------------------

    def _call(self, what, args, extra=()):
        """Trace method `what` at f's args (and `extra`, hvp's v, after them)."""
        tr = self._mru
        if tr is not None:
            try:
                out = getattr(tr, what)(*args, *extra)
            except _MISS as exc:
                return self._miss(args, what, exc, extra)
            self._replays += 1
            return out
        return self._miss(args, what, None, extra)

    def value(self, *args):
        """``f(*args)`` as a float, by a forward replay only.

        >>> import revad
        >>> revad.compile(lambda x: x * x).value(3.0)
        9.0
        """
        return self._call("value", args)

    def grad(self, *args):
        """The gradient alone, as ``revad.grad(f, argnums)(*args)``.

        >>> import revad
        >>> revad.compile(lambda x: x * x).grad(3.0)
        6.0
        """
        return self._call("grad", args)

    def batch(self, *args, threads=2):
        """value_and_grad at m points: each differentiated argument gets a leading batch axis
        of m (an (m, ...) array for an array, an (m,) array for a number, the same for each
        leaf of a list, tuple or dict); the others are shared by every row. Returns the values,
        shape (m,), and the gradients with a leading m. The rows are shared by ``threads``
        threads. If a row fails a guard of the recording, the batch is computed row by row
        instead, each row as a call (recording what it needs).

        >>> import numpy as np, revad
        >>> cf = revad.compile(lambda x: x * x if x > 0 else -x)
        >>> values, grads = cf.batch(np.array([1.0, 2.0, -3.0]))
        >>> values, grads
        (array([1., 4., 3.]), array([ 2.,  4., -1.]))
        """
        if not args:
            raise TypeError("revad.compile: batch needs the arguments of f")
        n = len(args)
        self._check_argnums(n)
        nums = sorted({k % n for k in self._nums})
        m = None
        for k in nums:
            sizes = set(_leading(args[k], f"argument {k}"))
            if m is not None:
                sizes.add(m)
            if len(sizes) != 1:
                raise ValueError(f"revad.compile: batch's differentiated arguments need one "
                                 f"leading length, got {sorted(sizes)}")
            m = sizes.pop()
        if m == 0:
            raise ValueError("revad.compile: batch of no rows")
        row = _row(args, nums, 0)
        key = self._key(row)
        with self._lock:
            tkeys = list(self._by_sig.get(key, ()))
        if not tkeys:  # nothing recorded for this structure yet: the first row records
            self._miss(row, "value", None)
            with self._lock:
                tkeys = list(self._by_sig.get(key, ()))
        tr = self._traces.get(tkeys[0]) if tkeys else None
        if tr is not None:
            try:
                out = tr.batch(*args, threads=threads)
            except TraceError as exc:
                self._failed(exc)
            else:
                with self._lock:
                    self._replays += m
                    self._touch(key, tkeys[0], tr)
                return out
        results = [self(*_row(args, nums, j)) for j in range(m)]
        from revad._trace import _stack
        values = np.array([r[0] for r in results])
        grads = [r[1] for r in results]
        if not isinstance(self._argnums, (tuple, list)):
            return values, _stack(grads)
        return values, tuple(_stack([g[i] for g in grads]) for i in range(len(self._nums)))

    def hvp(self, *args):
        """The Hessian-vector product, ``revad.hvp(f, argnums)(*args, v)`` (one argnum; v, last,
        shaped like that argument), replayed (``Trace.hvp``) from the recording of f's
        arguments that value_and_grad would replay, recorded the same way where none fits.
        Where that recording holds a ``revad.primitive`` or SciPy function, which have no
        second-order rule in C, this calls ``revad.hvp``, which records every call.

        >>> import revad
        >>> revad.compile(lambda x: x ** 3).hvp(2.0, 1.0)
        12.0
        """
        from revad._second import _like, _single, hvp
        _single(self._argnums, "hvp")  # (revad.hvp's TypeError for a tuple)
        if not args:
            raise TypeError("revad: hvp(f)(*args, v) needs the arguments and v")
        xs = args[:-1]
        self._check_argnums(len(xs))
        _like(args[-1], xs[self._nums[0] % len(xs)], "hvp")  # (before any recording is made)
        try:
            return self._call("hvp", xs, args[-1:])
        except NotImplementedError:  # (Trace.hvp's: no second-order rule in C)
            self._count_eager()
            return hvp(self._f, self._argnums)(*args)

    def hessian(self, *args):
        """The Hessian, ``revad.hessian(f, argnums)(*args)`` (one argnum), replayed
        (``Trace.hessian``) as ``hvp`` is, with ``hvp``'s fall-back to ``revad.hessian``.

        >>> import numpy as np, revad
        >>> revad.compile(lambda x: np.sum(x ** 3)).hessian(np.array([1.0, 2.0]))
        array([[ 6.,  0.],
               [ 0., 12.]])
        """
        from revad._second import _single, hessian
        _single(self._argnums, "hessian")
        try:
            return self._call("hessian", args)
        except NotImplementedError:
            self._count_eager()
            return hessian(self._f, self._argnums)(*args)

    def _count_eager(self):
        with self._lock:
            self._eager += 1

    @property
    def stats(self):
        """What the calls did: ``calls`` (each answered once: by a new recording, a replay or
        revad's eager route; a batch counts its rows),
        ``records`` (recordings made), ``replays`` (calls answered by a recording), ``eager``
        (``hvp``/``hessian`` calls answered by ``revad.hvp``/``revad.hessian`` because the
        recording holds a function with no second-order rule in C),
        ``guard_failures`` ({guard kind: count}: a recording refused a call), ``traces``
        (held now), ``evictions`` (recordings dropped by the cache's bound).

        >>> import revad
        >>> cf = revad.compile(lambda x: x * x if x > 0 else -x)
        >>> _ = cf(1.0), cf(2.0), cf(-3.0), cf(4.0)
        >>> s = cf.stats
        >>> s["records"], s["replays"], s["guard_failures"]
        (2, 2, {'comparison': 2})
        """
        with self._lock:
            return {"calls": self._records - self._unanswered + self._replays + self._eager,
                    "records": self._records, "replays": self._replays, "eager": self._eager,
                    "guard_failures": dict(self._failures), "traces": len(self._traces),
                    "evictions": self._evictions}

    @property
    def cache_size(self):
        """The most recordings kept (all argument structures together); settable.

        >>> import revad
        >>> cf = revad.compile(lambda x: x * x, cache_size=2)
        >>> cf.cache_size = 4
        >>> cf.cache_size
        4
        """
        return self._cache_size

    @cache_size.setter
    def cache_size(self, size):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"revad.compile: cache_size must be a positive int, got {size!r}")
        with self._lock:
            self._cache_size = size
            self._evict()

    # --- the cache ------------------------------------------------------------------------------

    def _check_argnums(self, n):
        for k in self._nums:
            if not -n <= k < n:
                raise TypeError(f"revad.compile: argnums={self._argnums!r} is out of range for "
                                f"{n} positional argument(s)")

    def _key(self, args):
        """What a recording is specific to (_signature of each argument)."""
        n = len(args)
        self._check_argnums(n)
        diff = {k % n for k in self._nums}
        return tuple([_signature(a, k not in diff) for k, a in enumerate(args)])

    def _miss(self, args, what, exc, extra=()):
        """The call that the last Trace refused (exc), or the first: the other recordings of
        the arguments' structure, most recently used first, else a new recording. `extra`:
        what the Trace's method takes after f's arguments (hvp's v)."""
        tried = self._mru
        if isinstance(exc, TraceError):
            self._failed(exc)
        key = self._key(args)
        with self._lock:
            tkeys = [k for k in self._by_sig.get(key, ()) if self._traces.get(k) is not tried]
            known = key in self._by_sig
        for tkey in tkeys:
            tr = self._traces.get(tkey)
            if tr is None:  # evicted by another thread meanwhile
                continue
            try:
                out = getattr(tr, what)(*args, *extra)
            except TraceError as e:
                self._failed(e)
                continue
            with self._lock:
                self._replays += 1
                self._touch(key, tkey, tr)
            return out
        return self._record(key, args, what, known, extra)

    def _record(self, key, args, what, known, extra=()):
        tr = trace(self._f, *args, argnums=self._argnums)
        # (Kept before it is called: a Trace.hvp that cannot replay its recording, a
        # NotImplementedError, leaves it for the calls that can.)
        with self._lock:
            self._records += 1
            self._serial += 1
            tkey = (key, self._serial)
            self._traces[tkey] = tr
            self._by_sig.setdefault(key, []).insert(0, tkey)
            self._set_mru(tr)
            self._evict()
            if known:
                self._rerecords += 1
            self._maybe_warn()
        try:
            return getattr(tr, what)(*args, *extra)
        except NotImplementedError:  # (hvp's caller answers it: the call counts as eager)
            with self._lock:
                self._unanswered += 1
            raise

    def _evict(self):
        while len(self._traces) > self._cache_size:
            old, tr = self._traces.popitem(last=False)
            sig_keys = self._by_sig[old[0]]
            sig_keys.remove(old)
            if not sig_keys:
                del self._by_sig[old[0]]
            if self._mru is tr:
                self._set_mru(next(reversed(self._traces.values()), None))
            self._evictions += 1

    def _touch(self, key, tkey, tr):
        """Mark a Trace most recently used (in the LRU order, and first for its signature)."""
        if tkey in self._traces:
            self._traces.move_to_end(tkey)
            sig_keys = self._by_sig[key]
            if sig_keys[0] != tkey:
                sig_keys.remove(tkey)
                sig_keys.insert(0, tkey)
            self._set_mru(tr)

    def _set_mru(self, tr):
        self._mru = tr

    def _failed(self, exc):
        with self._lock:
            self._failures[_guard_kind(exc)] += 1
            self._last_failure = exc

    def _maybe_warn(self):
        calls = self._records + self._replays
        if self._warned or calls < WARN_AFTER or self._rerecords <= WARN_SHARE * calls:
            return
        self._warned = True
        warnings.warn(
            f"revad.compile({_name(self._f)}): {self._rerecords} of {calls} calls recorded "
            f"again because the guards of every recording failed, so compile cannot help this "
            f"function (such a call costs a recording and more); the guard that failed last: "
            f"{self._last_failure}. Use revad.value_and_grad for it, or compute that branch "
            f"or value from NumPy selections (np.where) instead of Python's if, float() or "
            f"indexing", CompileWarning, stacklevel=5)

    # --- pickling -----------------------------------------------------------------------------

    def __reduce__(self):
        _check_by_reference(self._f)
        with self._lock:
            traces = list(self._traces.items())
        return (_rebuild, (self._f, self._argnums, self._cache_size, traces))

    def __repr__(self):
        return (f"<revad.compile of {_name(self._f)}, argnums={self._argnums!r}, "
                f"{len(self._traces)} recording(s)>")


def _leading(x, where):
    """The leading lengths of a batched argument's leaves."""
    if type(x) is dict:
        return [m for k, v in x.items() for m in _leading(v, f"{where}[{k!r}]")]
    if type(x) in (list, tuple) and not (x and all(_is_number(e) for e in x)):
        return [m for i, e in enumerate(x) for m in _leading(e, f"{where}[{i}]")]
    a = x if isinstance(x, np.ndarray) else None
    if a is None or a.ndim == 0:
        raise TypeError(f"revad.compile: batch takes each differentiated argument with a "
                        f"leading batch axis (an ndarray, or a list, tuple or dict of them); "
                        f"{where} is a {type(x).__name__}"
                        + (" of 0 dimensions" if a is not None else ""))
    return [a.shape[0]]


def _is_number(e):
    return isinstance(e, (int, float, np.integer, np.floating))


def _row_of(x, j):
    if type(x) is dict:
        return {k: _row_of(v, j) for k, v in x.items()}
    if type(x) in (list, tuple):
        return type(x)(_row_of(e, j) for e in x)
    r = x[j]
    return float(r) if r.ndim == 0 else r


def _row(args, nums, j):
    """Row j of a batch: the differentiated arguments' row j, the others as given."""
    row = list(args)
    for k in nums:
        row[k] = _row_of(args[k], j)
    return tuple(row)


def _rebuild(f, argnums, cache_size, traces):
    cf = Compiled(f, argnums, cache_size)
    for tkey, tr in traces:
        cf._traces[tkey] = tr
        cf._by_sig.setdefault(tkey[0], []).insert(0, tkey)
        cf._serial = max(cf._serial, tkey[1])
    return cf


def _name(f):
    return getattr(f, "__qualname__", None) or getattr(f, "__name__", None) or repr(f)


def _check_by_reference(f):
    """Raise a clear PicklingError unless f can be found again by its module and name (how
    pickle ships a function: a lambda or a function defined inside another has no such name)."""
    module, qualname = getattr(f, "__module__", None), getattr(f, "__qualname__", None)
    found = None
    if module and qualname and "<" not in qualname:
        try:
            found = importlib.import_module(module)
            for part in qualname.split("."):
                found = getattr(found, part)
        except (ImportError, AttributeError):
            found = None
    if found is not f:
        what = ("a lambda" if qualname and "<lambda>" in qualname else
                "defined inside another function" if qualname and "<locals>" in qualname else
                "not reachable by its module and name")
        raise pickle.PicklingError(
            f"revad.compile: cannot pickle the compiled function {_name(f)!s} ({what}): pickle "
            f"ships a function by reference, its module and name, and loads it again there. "
            f"Define f with def at the top level of a module, or pickle a revad.trace of it "
            f"instead (a trace carries its tape, not the function)")


def _guard_kind(exc):
    """The kind of guard that a TraceError names ("comparison", "float", ...): its message
    starts "revad: guard failed (kind)" (src/revad/_array_trace.pxi, Trace._failure)."""
    found = _KIND.match(str(exc))
    return found.group(1) if found else "other"


def compile(f, argnums=0, cache_size=8):
    """A drop-in for ``revad.value_and_grad(f, argnums)`` that records ``f`` once and replays
    the recorded tape in C at later calls: same call, same results.

    The first call with a given argument structure (the pytree of lists, tuples and dicts, the
    shapes and dtypes of arrays, and the value of every argument that is not differentiated
    and not a float or a float array) records ``f`` (``revad.trace``); later calls replay that
    recording at the new arguments, data arguments included. Every comparison of a traced
    value and every escape of one into Python (``float(v)``, ``v.value``, ``bool(v)``, an
    index) is a guard: a replay at arguments that would take another branch raises inside,
    and compile tries its other recordings of that structure (most recently used first), else
    records again. At most ``cache_size`` recordings are kept (least recently used dropped).
    ``.stats`` counts records, replays and guard failures by kind; a function that records
    again on most calls gets one ``revad.CompileWarning``.

    ``.value(*args)``, ``.grad(*args)``, ``.batch(*args)``, ``.hvp(*args, v)`` and
    ``.hessian(*args)`` replay too (the last two call ``revad.hvp`` / ``revad.hessian`` instead
    where the recording holds a ``revad.primitive`` or SciPy function: no second-order rule).
    What no guard can see: a global or closure variable that ``f`` reads and that changes
    between calls (the recording keeps the value it had), as with JAX's jit.
    A compiled function pickles as its function, by reference (module and name; a lambda
    cannot be pickled), plus its recordings.

    >>> import revad
    >>> def rosenbrock(x):
    ...     return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2
    ...                for i in range(len(x) - 1))
    >>> cf = revad.compile(rosenbrock)
    >>> cf([1.0, 2.0])                      # records
    (100.0, [-400.0, 200.0])
    >>> cf([0.5, 0.5])                      # replays at a new point
    (6.5, [-51.0, 50.0])
    >>> cf.stats["records"], cf.stats["replays"]
    (1, 1)
    """
    return Compiled(f, argnums, cache_size)
