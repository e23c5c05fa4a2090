# revad.trace: one recording replayed at new arguments (the Trace object's call path, in C
# where it is hot), and the guards an Array's escape makes while a trace records.
# Part of revad._array (included textually by _array.pyx: one module, several files).
#
# revad/_trace.py records (boxing every float argument as a leaf, the structure handling) and
# gives this module the plan of the arguments; _core_replay.pxi runs the sweeps.

from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_Check

from revad._core import (TraceError, _InputValues, _ReplayValues, _activity, _in_place,
                         _mark_runs, _push_own_values)

cdef extern from "Python.h":
    double PyFloat_AsDouble(object o) except? -1.0


cdef int _guard_array(Array a, str kind) except -1:
    """a's values leave for Python (a.value, a mask, np.asarray): while a trace records on its
    tape, a guard on each of its slots (a replay checks each bit for bit). An input leaf not
    yet on the tape is bound to it first: its slots are the ones a replay writes."""
    cdef Tape t = a.tape
    cdef int64_t k, s, first
    if t is None:
        t = _tracing_tape()
        if t is None:
            return 0
        first = _bind(a, t)
        slots = np.arange(first, first + a.size, dtype=np.int64)
    elif t.sites is None or t.finished:
        return 0
    else:
        slots = _slot_map(_slot0(a), a.shape, a.strides).reshape(-1)
    if _guards_quiet() or a.size == 0:
        return 0
    cdef int64_t[:] sv = np.ascontiguousarray(slots, dtype=np.int64)
    _trace_site(t, t.n, kind)
    t.reserve(sv.shape[0])
    for k in range(sv.shape[0]):
        s = sv[k]
        t.push(RV_GUARD, <int32_t>s, -1, t.val[s])
    return 0


class _TiesCheck:
    """A replay's check of the ties of a max/min (_split_ties): the same elements tie, or, where
    none did, none do. ma, mr: the slots of the operand and of the result (shaped to keep the
    reduced axes); ties: the recorded ties, or None. Called with a replay's values (a float64
    column), it runs in C (sweep.h, rv_ties_hold) and returns None, or what it found instead:
    (recorded, now)."""

    def __init__(self, ma, mr, axes, ties):
        self.ma, self.mr, self.axes, self.ties = ma, mr, axes, ties

    def __getstate__(self):
        return {"ma": self.ma, "mr": self.mr, "axes": self.axes, "ties": self.ties}

    def __call__(self, val):
        flat = self.__dict__.get("_flat")
        if flat is None or flat[0] != val.shape[0]:
            flat = self._flat = _ties_flat(self.ma, self.mr, self.ties, val.shape[0])
        if _ties_hold(val, flat):
            return None
        return ("no ties", "a tie") if self.ties is None else ("the recorded ties", "other ties")


cdef tuple _ties_flat(object ma, object mr, object ties, int64_t n):
    """_TiesCheck's slot maps flattened for rv_ties_hold, checked against n slots (a pickle's
    reach C): (n, operand slots, result slots, result numbers, ties or None, counters)."""
    ma = np.asarray(ma, dtype=np.int64)
    mr = np.asarray(mr, dtype=np.int64)
    try:
        r = np.ascontiguousarray(np.broadcast_to(mr, ma.shape)).reshape(-1)
        rk = np.ascontiguousarray(np.broadcast_to(np.arange(mr.size).reshape(mr.shape),
                                                  ma.shape)).reshape(-1)
    except ValueError:
        raise ValueError("revad: a trace's tape is damaged (a max/min's ties)") from None
    a = np.ascontiguousarray(ma).reshape(-1)
    tie = None if ties is None else np.ascontiguousarray(ties, dtype=np.uint8).reshape(-1)
    if ((a.size and (a.min() < 0 or a.max() >= n or r.min() < 0 or r.max() >= n))
            or (tie is not None and tie.shape[0] != a.shape[0])):
        raise ValueError("revad: a trace's tape is damaged (a max/min's ties)")
    return n, a, r, rk, tie, np.empty(max(mr.size, 1), dtype=np.int32)


cdef bint _ties_hold(object val, tuple flat) except -1:
    cdef const double[::1] v = val
    cdef const int64_t[::1] a = flat[1], r = flat[2], rk = flat[3]
    cdef const uint8_t[::1] tie
    cdef int32_t[::1] cnt = flat[5]
    cdef const uint8_t *tp = NULL
    if a.shape[0] == 0:
        return True
    if flat[4] is not None:
        tie = flat[4]
        tp = &tie[0]
    return rv_ties_hold(&v[0], &a[0], &r[0], &rk[0], a.shape[0], tp, &cnt[0], cnt.shape[0])


cdef int _ties_check(Array a, Array r, tuple kshape, tuple axes, object ties) except -1:
    """max/min r of a recorded its ties: a replay checks them from its values (_TiesCheck)."""
    ma = _slot_map(_slot0(a), a.shape, a.strides)
    mr = _slot_map(_slot0(r), r.shape, r.strides).reshape(kshape)
    _trace_site(a.tape, a.tape.n - 1, "max/min ties", _TiesCheck(ma, mr, axes, ties))
    return 0


def _trace_start(Tape t not None):
    """Make t record guard sites (revad.trace's recording)."""
    t.sites = []


def _trace_tape():
    """This thread's current tape (revad.trace records on it)."""
    return _current_tape()


def _var_binding(Var x not None, Tape t not None):
    """x's slot on t if x is a leaf bound there or a node of t, else -1."""
    if x.tape is t:
        return x.slot
    if x.tape is None and x.bound == t.id:
        return x.slot
    return -1


def _array_binding(Array a not None, Tape t not None):
    """a leaf Array's first slot on t, or -1 if it never reached t."""
    if a.tape is None and a.bound == t.id:
        return a._first
    return -1


cdef enum:
    _T_NUMBER, _T_REALS, _T_NDARRAY, _T_STATIC, _T_TREE


cdef object _numbers = (float, int)


@cython.final
cdef class _Plan:
    """One argument of a trace: how its new value is checked and written, and its gradient
    read. kind: _T_*; slot: NUMBER's slot, NDARRAY's first (-1: never on the tape); slots:
    REALS' (an int64 array); shape, dtype: NDARRAY's; value: STATIC's recorded value; for TREE,
    `leaves` (plans) and `flatten`/`build` (revad/_trace.py); cidx: an NDARRAY read in place,
    its cptr entry (_in_place), else -1; direct: a differentiated NDARRAY read in place, whose
    one matrix product writes its gradient (_direct_args; worked out anew on unpickling)."""
    cdef public int kind
    cdef public int64_t slot
    cdef public object slots, shape, dtype, value, leaves, flatten, build, rtype, name
    cdef public int64_t size, cidx
    cdef public bint direct

    def __reduce__(self):
        return _new_plan, (self.kind, self.slot, self.slots, self.shape, self.dtype, self.value,
                           self.leaves, None, None, self.rtype, self.name, self.size, self.cidx)


@cython.final
cdef class Trace:
    """One recording of a function, replayed in C at new arguments (made by ``revad.trace``).

    ``value_and_grad(*args)`` gives what ``revad.value_and_grad(f, argnums)(*args)`` gives,
    ``value(*args)`` the value alone, ``grad(*args)`` the gradient; ``batch(*args)`` runs many
    points at once on threads. A replay runs no Python (but for ``revad.primitive`` functions,
    SciPy's special functions and large matrix products); where the recorded program would not
    be the one Python runs at the new arguments -- a comparison, a value that escaped into
    Python -- it raises ``revad.TraceError`` instead. An array argument that is not
    differentiated (data) is read where it lies during the call, not copied
    (``stats["arguments_in_place"]``), and so is a differentiated one that only a matrix product
    reads (``stats["differentiated_in_place"]``): do not write them from another thread
    meanwhile.

    >>> import revad
    >>> tr = revad.trace(lambda x: x[0] * x[1] + revad.exp(x[0]), [0.0, 2.0])
    >>> tr.value_and_grad([1.0, 3.0])
    (5.718281828459045, [5.718281828459045, 1.0])
    """
    cdef Tape t
    cdef list plans          # one per positional argument
    cdef tuple nums          # argnums, normalised (a repeated one twice)
    cdef bint single
    cdef int64_t out         # the output's slot; -1: f returned a constant (out_value)
    cdef double out_value
    cdef _Replay spare       # buffers for the next call (None while one is running)
    cdef _Active active      # what the replays' reverse sweeps skip (activity.h)
    cdef public object info  # revad/_trace.py's: the function's name, the argnums' spelling
    cdef str blocker         # hvp's: a kind with no second-order rule, "" none, None unknown

    @property
    def stats(self):
        """What the recording holds: entries, those a replay's reverse sweep skips because they
        depend on no differentiated argument (``inactive_entries``: the data and what is
        computed from it alone), the array arguments a replay reads where the caller keeps them
        instead of copying them into its values (``arguments_in_place``: data that only
        elementwise operations and matrix products read), the differentiated array arguments
        it reads there too, whose gradient their one matrix product writes as a new array
        (``differentiated_in_place``: a weight matrix that only a product reads), the array
        groups whose values a
        replay never writes because only a sum reads them, which computes from their operands
        (``unwritten_groups``, as eager evaluation leaves them), the bytes of the tape per
        entry, and the bytes a replay's own buffers add per entry (values and adjoints).

        >>> import revad
        >>> tr = revad.trace(lambda x: x * x + 1.0, 2.0)
        >>> s = tr.stats
        >>> s["entries"], s["replay_bytes_per_entry"]
        (3, 16.0)
        """
        cdef Tape t = self.t
        n = max(t.n, 1)
        tape = (t.n * (1 + 4 + 4 + 8) + t.n_cst * 8 + t.n_blk * 8 + t.n_cptr * 8
                + sum(a.nbytes for a in t.refs if isinstance(a, np.ndarray)))
        return {"entries": t.n, "inactive_entries": self.active.inactive,
                "arguments_in_place": sum(1 for o in t.refs if type(o) is _InputValues),
                "differentiated_in_place": _count_direct(self.plans),
                "unwritten_groups": len(self.active.lazy),
                "guards": sum(1 for k in range(t.n) if t.op[k] == RV_GUARD),
                "comparisons": sum(1 for k in range(t.n) if RV_LT <= t.op[k] <= RV_NE + 2),
                "tape_bytes": tape, "tape_bytes_per_entry": tape / n,
                "replay_bytes_per_entry": 16.0,
                "bytes_per_entry": tape / n + 16.0}

    # -- the call path -------------------------------------------------------------------------

    cdef _Replay _take(self):
        cdef _Replay r = self.spare
        if r is not None:
            self.spare = None
            return r
        return _replay_new(self.t, self.active)

    cdef int _load(self, _Replay r, tuple args, bint direct=True) except -1:
        """Check the arguments against the recording's and write their values into r (direct:
        the differentiated arguments read in place are read there, _Plan.direct)."""
        cdef Py_ssize_t k, n = len(args)
        cdef _Plan p
        if n != len(self.plans):
            raise TypeError(f"revad: this trace was recorded with {len(self.plans)} "
                            f"positional argument(s), got {n}")
        if r.inputs:
            r.inputs = []
        if r.vals_at:
            r.vals_at.clear()
        for k in range(n):
            p = <_Plan>self.plans[k]
            _load_arg(r, p, args[k], k, direct)
        return 0

    cdef object _run(self, tuple args, bint grads):
        cdef _Replay r = self._take()
        result = _run_with(self, r, args, grads, None)
        r.records = {}
        if r.inputs:
            r.inputs = []
        if r.vals_at:  # (the caller's arrays: not kept alive by the spare buffers)
            r.vals_at.clear()
            r.grads_at.clear()
        self.spare = r  # (not on an error: a failed sweep may leave adjoints in its buffers)
        return result

    cdef object _grads(self, _Replay r):
        cdef Py_ssize_t m = len(self.nums), i
        out = [None] * m
        for i in range(m):
            out[i] = _grad_of(r, <_Plan>self.plans[self.nums[i]],
                              self.nums[i] not in self.nums[i + 1:])
        return out[0] if self.single else tuple(out)

    def value_and_grad(self, *args):
        """``(f(*args), gradient)`` by replaying the recording, as ``revad.value_and_grad``.

        >>> import revad, numpy as np
        >>> tr = revad.trace(lambda w, x: np.sum(np.tanh(w * x)), np.ones(2), np.ones(2))
        >>> v, g = tr.value_and_grad(np.zeros(2), np.array([1.0, 2.0]))
        >>> v, g
        (0.0, array([1., 2.]))
        """
        return self._run(args, True)

    def value(self, *args):
        """``f(*args)`` by replaying the recording forward only.

        >>> import revad
        >>> revad.trace(lambda x: x * x, 3.0).value(4.0)
        16.0
        """
        return self._run(args, False)

    def grad(self, *args):
        """The gradient alone, as ``revad.grad``.

        >>> import revad
        >>> revad.trace(lambda x: x * x, 3.0).grad(4.0)
        8.0
        """
        return self._run(args, True)[1]

    def hvp(self, *args):
        """The Hessian-vector product, as ``revad.hvp(f, argnums)(*args, v)``: ``args`` the
        function's arguments and ``v`` last, shaped like the differentiated argument (one
        argnum, a number or an array, as ``revad.hvp`` takes). A forward replay at the new
        arguments (guards checked as ``value_and_grad``'s), then ``revad.hvp``'s sweeps in C
        (one tangent sweep, one second-order sweep) over the replayed values. A recording that
        holds a ``revad.primitive`` or SciPy function (no second-order rule in C) raises
        ``NotImplementedError``: ``revad.hvp`` (or ``revad.compile(f).hvp``) records instead.

        >>> import revad, numpy as np
        >>> tr = revad.trace(lambda x: x[0] ** 2 * x[1] + x[1] ** 3, np.ones(2))
        >>> tr.hvp(np.array([1.0, 2.0]), np.array([1.0, 0.0]))    # H = [[2x1, 2x0], [2x0, 6x1]]
        array([4., 2.])
        """
        if not args:
            raise TypeError("revad: Trace.hvp(*args, v) needs the arguments and v")
        return _second_of(self, args[:-1], args[-1], "hvp")

    def hessian(self, *args):
        """The Hessian, as ``revad.hessian(f, argnums)(*args)``: shaped ``x.shape + x.shape``
        for the differentiated argument x (one argnum, a number or an array). One forward replay,
        then one tangent and one second-order sweep per element of x over the replayed values;
        ``NotImplementedError`` as ``hvp``'s.

        >>> import revad, numpy as np
        >>> tr = revad.trace(lambda x: x[0] ** 2 * x[1] + x[1] ** 3, np.ones(2))
        >>> tr.hessian(np.array([1.0, 2.0]))
        array([[ 4.,  2.],
               [ 2., 12.]])
        """
        return _second_of(self, args, None, "hessian")

    def batch(self, *args, threads=2):
        """Replay at m points: each differentiated argument has a leading axis of m (the
        others are shared by every row). Returns the values, shape (m,), and the gradients
        with a leading axis m, in the structure ``value_and_grad`` gives. The rows are shared
        by up to ``threads`` threads, each with buffers of its own, the sweeps without the GIL
        (where the recording runs in C alone -- no ``revad.primitive``, SciPy function or large
        matrix product -- each row wholly without it, on revad's helper threads: no more than
        REVAD_NUM_THREADS allows); a row whose guards fail raises ``TraceError`` naming the
        first such row. Each row gives the bits ``value_and_grad`` gives there.

        >>> import revad, numpy as np
        >>> tr = revad.trace(lambda x: np.sum(x * x), np.zeros(2))
        >>> values, grads = tr.batch(np.array([[1.0, 2.0], [3.0, 4.0]]))
        >>> values, grads
        (array([ 5., 25.]), array([[2., 4.],
               [6., 8.]]))
        """
        from revad._trace import _batch
        return _batch(self, args, threads)

    def __reduce__(self):
        from revad._trace import _restore
        return _restore, (_tape_state(self.t), self.plans, self.nums, self.single, self.out,
                          self.out_value, self.info)

    def _buffers_clean(self):
        """Testing hook: whether the kept buffers' adjoints are all zero, as the next replay
        needs them (a clean sweep and _replay_clear leave them so)."""
        cdef _Replay r = self.spare
        return r is None or r.n == 0 or not np.asarray(<double[:r.n]>r.adj).any()

    def _plans(self):
        return list(self.plans)

    def _sites(self):
        """Testing hook: the tape's guard sites (entry, kind, where, check or None)."""
        return list(self.t.sites or ())

    def _new_buffers(self):
        """Buffers of one's own, for a thread of batch()."""
        return _replay_new(self.t, self.active)

    def _batch_in_c(self, tuple row0, int64_t m, list cols, xs, gs, int64_t threads):
        """batch()'s m rows in C, shared by up to `threads` threads without the GIL (revad/
        _trace.py, _batch): row j's inputs, row j of the (m, k) arrays `cols` side by side, go
        to the slots xs (int64), its gradient is read from the slots gs (int64; -1: zero).
        row0: the arguments of row 0,
        checked as a call's and loaded: the shared ones stay for every row. Returns (values,
        gradients (m, ng), the lowest row whose guards failed or -1), or None where the tape
        needs Python (a primitive's function, a SciPy row, a BLAS product, a check of ties)."""
        cdef Tape t = self.t
        cdef _Replay r
        cdef cnp.ndarray x, sx, sg, v, g
        if not _replay_in_c(t):
            return None
        if t.readonly:
            t.check_readonly()  # a referenced read-only constant made writable: it may differ
        # Arrays of this call's own, so that no other thread can move what the rows read.
        x = (np.concatenate(cols, axis=1, dtype=np.float64) if cols
             else np.empty((m, 0)))  # (a new C-order array, always)
        sx = np.array(xs, dtype=np.int64, order="C", copy=True)
        sg = np.array(gs, dtype=np.int64, order="C", copy=True)
        if (x.ndim != 2 or x.shape[0] != m or sx.ndim != 1 or sg.ndim != 1
                or x.shape[1] != sx.shape[0] or not cnp.PyArray_IS_C_CONTIGUOUS(x)):
            raise ValueError("revad: internal error: a batch's rows do not match their slots")
        v = np.empty(m)
        g = np.empty((m, sg.shape[0]))
        r = self._take()
        self._load(r, row0, False)  # (the rows read every value in r.val, in C)
        fail = _replay_rows(r, m, <const double *>cnp.PyArray_DATA(x),
                            <const int64_t *>cnp.PyArray_DATA(sx), sx.shape[0],
                            <double *>cnp.PyArray_DATA(v), <double *>cnp.PyArray_DATA(g),
                            <const int64_t *>cnp.PyArray_DATA(sg), sg.shape[0], self.out,
                            self.out_value, threads)
        self.spare = r  # (its adjoints zero: every row's sweep was clean, a failed row had none)
        return v, g, fail

    def _replay_with(self, _Replay r not None, tuple args, object row):
        """value_and_grad(*args) in r's buffers (one thread of batch(), row `row`)."""
        return _run_with(self, r, args, True, row)

    cdef object _failure(self, _Replay r, int64_t fail, object row):
        """The TraceError for the guard or comparison at entry `fail`."""
        cdef Tape t = self.t
        import bisect
        sites = t.sites or []
        k = bisect.bisect_right([s[0] for s in sites], fail) - 1
        kind, where = (sites[k][1], sites[k][2]) if k >= 0 else ("guard", "<unknown>")
        c = t.op[fail]
        if c == RV_GUARD:
            was, now = t.val[fail], r.val[t.arg0[fail]]
            what = f"the value {was!r} when recorded, now {now!r}"
        elif RV_LT <= c <= RV_NE + 2:
            name = _COMPARE_NAMES.get((c - RV_LT) // 3, "comparison")
            j = (c - RV_LT) % 3
            a_now = t.cst[t.arg0[fail]] if j == 2 else r.val[t.arg0[fail]]
            b_now = t.cst[t.arg1[fail]] if j == 1 else r.val[t.arg1[fail]]
            a_was = t.cst[t.arg0[fail]] if j == 2 else t.val[t.arg0[fail]]
            b_was = t.cst[t.arg1[fail]] if j == 1 else t.val[t.arg1[fail]]
            what = (f"{a_was!r} {name} {b_was!r} was {bool(t.val[fail])} when recorded; now "
                    f"{a_now!r} {name} {b_now!r} is {not bool(t.val[fail])}")
        else:
            what = "a check of the replay's values failed"
            for s in sites:
                if s[0] == fail and s[3] is not None:
                    res = s[3](np.asarray(<double[:r.n]>r.val))
                    if res is not None:
                        what = f"{res[0]} when recorded, {res[1]} now"
                        kind, where = s[1], s[2]
                    break
        at = "" if row is None else f" (batch row {row})"
        return TraceError(f"revad: guard failed ({kind}){at}: {what}; recorded at {where}. The "
                          f"recorded program is not the one Python would run at these "
                          f"arguments: call revad.value_and_grad (or trace again) here")


cdef class _Replays:
    """revad.compile's call path (the Python class Compiled derives from it): the Trace that
    answered last replays the call from C, before Compiled makes any key; where it cannot
    (TraceError, or the arguments' structure, a shape, a static value differ: TypeError,
    ValueError), Compiled._miss takes over. `_replays` counts the calls a Trace answered."""
    cdef public Trace _mru
    cdef public Py_ssize_t _replays

    def __call__(self, *args):
        """``(f(*args), gradient)``, exactly as ``revad.value_and_grad(f, argnums)(*args)``."""
        cdef Trace tr = self._mru
        if tr is None:
            return self._miss(args, "value_and_grad", None)
        try:
            out = tr._run(args, True)
        except (TraceError, TypeError, ValueError) as exc:
            return self._miss(args, "value_and_grad", exc)
        self._replays += 1
        return out


cdef object _second_of(Trace tr, tuple args, object v, str what):
    """Trace.hvp (v given) or Trace.hessian (v None): checked as revad.hvp and revad.hessian
    check theirs, replayed forward in the Trace's buffers, then _second_products over them."""
    from revad._second import _like, _single
    if not tr.single or len(tr.nums) != 1:
        _single(tr.info["argnums"], what)  # raises revad.hvp's TypeError
    if len(args) != len(tr.plans):
        raise TypeError(f"revad: this trace was recorded with {len(tr.plans)} positional "
                        f"argument(s), got {len(args)}" + (" and v" if v is not None else ""))
    cdef int64_t k = tr.nums[0]
    x = args[k]
    if v is None:
        _like(np.zeros(np.shape(x)), x, what)  # (a TypeError for a list, tuple or dict)
        V = np.eye(np.size(x))
    else:
        V = np.reshape(_like(v, x, what), (-1, 1))
    if tr.blocker is None:  # (looked up once: the tape never changes)
        tr.blocker = "" if tr.out < 0 else (_second_order_blocker_at(tr.t, tr.out) or "")
    if tr.blocker:
        raise NotImplementedError(
            f"revad: this trace holds a {tr.blocker!r} entry (a revad.primitive or SciPy "
            f"function), which has no second-order rule in C, so Trace.{what} cannot replay it; "
            f"call revad.{what} (or revad.compile(f).{what}, which falls back to it)")
    cdef _Replay r = tr._take()
    _, HV = _second_with(tr, r, args, k, V)
    r.records = {}
    tr.spare = r  # (not on an error, as Trace._run)
    shape = np.shape(x)
    if v is None:
        return np.ascontiguousarray(HV.T).reshape(shape + shape)  # H is symmetric
    return HV[:, 0].reshape(shape) if isinstance(x, np.ndarray) else float(HV[0, 0])


cdef tuple _second_with(Trace tr, _Replay r, tuple args, int64_t k, object V):
    """(gradient, H V) in argument k (flattened, C order) at args: the forward replay in r's
    buffers, then one tangent and one second-order sweep per column of V over r's values."""
    cdef Tape t = tr.t
    cdef _Plan p = <_Plan>tr.plans[k]
    cdef int64_t fail
    if t.readonly:
        t.check_readonly()
    tr._load(r, args, False)  # (the second-order sweeps read every value in r.val, in C)
    _hold(t)  # (as _run_with)
    try:
        fail = _replay_forward(r)
        if fail >= 0:
            raise tr._failure(r, fail, None)
        if tr.out < 0:  # f returned a constant
            return np.zeros(V.shape[0]), np.zeros(V.shape)
        # The leaves of x (-1: never read). Large referenced constants were checked by the
        # forward replay (each one a BLAS product's operand, _replay_python).
        if p.kind == _T_NUMBER:
            slots = np.array([p.slot], dtype=np.int64)
        elif p.slot >= 0:
            slots = np.arange(p.slot, p.slot + V.shape[0], dtype=np.int64)
        else:
            slots = np.full(V.shape[0], -1, dtype=np.int64)
        return _second_products(t, r.val, r.cptr, tr.out, slots, V)
    finally:
        _unhold(t)


cdef object _run_with(Trace tr, _Replay r, tuple args, bint grads, object row):
    """A replay in r's buffers: value, or (value, gradients)."""
    cdef int64_t fail
    cdef double value
    if tr.t.readonly:
        tr.t.check_readonly()  # a referenced read-only constant made writable: it may differ
    tr._load(r, args)
    # Held while the sweeps read it, as every sweep holds its tape (a recorded tape never grows;
    # the hold keeps the Python calls' let-go-and-take-back (_user_call) balanced).
    _hold(tr.t)
    try:
        fail = _replay_forward(r)
        if fail >= 0:
            raise tr._failure(r, fail, row)
        value = r.val[tr.out] if tr.out >= 0 else tr.out_value
        if not grads:
            return value
        if tr.out >= 0:
            _replay_reverse(r, tr.out)
    finally:
        _unhold(tr.t)
    result = tr._grads(r)
    _replay_clear(r)
    return value, result


# -- pickling: the tape's columns, its constants and guards --------------------------------

cdef object _span_of(object a):
    """(bytes of a's memory from its lowest to its highest element, the offset of its first
    element in them, shape, strides): a view rebuilt over a copy of them has a's layout, so the
    offsets and strides the tape's entries hold for it stay right."""
    lo = hi = 0
    for n, st in zip(a.shape, a.strides):
        if n == 0:
            return b"", 0, a.shape, a.strides
        if st < 0:
            lo += (n - 1) * st
        else:
            hi += (n - 1) * st
    base = np.asarray(a).__array_interface__["data"][0]
    nbytes = hi - lo + a.itemsize
    buf = bytes(<char[:nbytes]><char *><size_t>(base + lo))
    return buf, -lo, a.shape, a.strides


def _from_span(buf, offset, shape, strides):
    if not buf:
        return np.zeros(shape)
    mem = bytearray(buf)
    return np.ndarray(shape, np.float64, mem, offset, strides)


cdef object _tape_state(Tape t):
    cdef int64_t n = t.n, k
    refs = []
    for k in range(t.n_cptr):
        o = t.refs[k]
        if type(o) is _ReplayValues:
            refs.append(("values", None))
        elif type(o) is _InputValues:
            refs.append(("input", (o.first, o.size)))
        elif t.cptr[k] != NULL:
            refs.append(("array", _span_of(o)))
        elif hasattr(o, "rerun"):
            refs.append(("call", o.for_replay()))
        elif type(o) is tuple and len(o) == 3:
            refs.append(("pair", o[2]))
        else:
            refs.append(("object", o))
    return {"op": bytes(<char[:max(n, 1)]><char *>t.op)[:n],
            "arg0": bytes(<char[:max(n * 4, 1)]><char *>t.arg0)[:n * 4],
            "arg1": bytes(<char[:max(n * 4, 1)]><char *>t.arg1)[:n * 4],
            "val": bytes(<char[:max(n * 8, 1)]><char *>t.val)[:n * 8],
            "cst": (bytes(<char[:max(t.n_cst * 8, 1)]><char *>t.cst)[:t.n_cst * 8]
                    if t.n_cst else b""),
            "blk": (bytes(<char[:max(t.n_blk * 8, 1)]><char *>t.blk)[:t.n_blk * 8]
                    if t.n_blk else b""),
            "refs": refs, "sites": list(t.sites or []), "absent": sorted(t.absent)}


def _tape_from_state(dict s):
    """A finished tape from _tape_state's dict (a trace unpickled)."""
    cdef Tape t = Tape()
    cdef int64_t n = len(s["op"]), k
    t.reserve(n)
    if n:
        memcpy(t.op, <char *>s["op"], n)
        memcpy(t.arg0, <char *>s["arg0"], n * 4)
        memcpy(t.arg1, <char *>s["arg1"], n * 4)
        memcpy(t.val, <char *>s["val"], n * 8)
    t.n = n
    cst = s["cst"]
    t.reserve_const(len(cst) // 8)
    if cst:
        memcpy(t.cst, <char *>cst, len(cst))
    t.n_cst = len(cst) // 8
    blk = s["blk"]
    if blk:
        t.push_blk(len(blk) // 8)
        memcpy(t.blk, <char *>blk, len(blk))
    for kind, o in s["refs"]:
        if kind == "array":
            t.push_cptr(_from_span(*o))
        elif kind == "call":
            t.push_ref(o)
        elif kind == "pair":
            t.push_ref((None, None, o))
        elif kind == "values":  # (activity.h: an operand reading the values as a constant)
            _push_own_values(t)
        elif kind == "input":  # (activity.h: a data argument read in place)
            first, size = o
            if not (0 <= first and 0 < size and first + size <= n):
                raise ValueError("revad: a trace's tape is damaged (an argument read in place)")
            k = t.push_ref(_InputValues(first, size))
            t.cptr[k] = t.val + <int64_t>first
        else:
            t.push_ref(o)
    _check_tape(t)
    # The groups left unwritten (a replay leaves them so too; checked by _activity), none in a
    # pickle made before they were kept: a replay then writes every group.
    t.absent = {int(bi) for bi in s.get("absent", ())}
    t.sites = list(s["sites"])
    t.finished = True
    return t


cdef int _check_tape(Tape t) except -1:
    """Every operand slot of an op row below its entry, every block index inside blk: a tape
    from a pickle is read by C without bounds checks."""
    cdef int64_t i, c
    for i in range(t.n):
        c = t.op[i]
        if c >= RV_N_OPS:
            raise ValueError(f"revad: a trace's tape is damaged (op code {c} at {i})")
        if c == RV_LEAF or c == RV_CONST or c == RV_GROUP_SLOT:
            continue
        if c >= RV_DOTC:
            if not 0 <= t.arg0[i] < t.n_blk:
                raise ValueError(f"revad: a trace's tape is damaged (block index at {i})")
        elif c == RV_GUARD or c < RV_ADD:
            if not 0 <= t.arg0[i] < i:
                raise ValueError(f"revad: a trace's tape is damaged (operand at {i})")
        else:
            j = (c - RV_ADD) % 3
            if j != 2 and not 0 <= t.arg0[i] < i or j == 2 and not 0 <= t.arg0[i] < t.n_cst:
                raise ValueError(f"revad: a trace's tape is damaged (operand at {i})")
            if j != 1 and not 0 <= t.arg1[i] < i or j == 1 and not 0 <= t.arg1[i] < t.n_cst:
                raise ValueError(f"revad: a trace's tape is damaged (operand at {i})")
    return 0


def _restore_trace(state, list plans, tuple nums, bint single, int64_t out, double out_value,
                   info):
    cdef Trace tr = Trace.__new__(Trace)
    tr.t = _tape_from_state(state)
    if out >= tr.t.n:
        raise ValueError("revad: a trace's tape is damaged (its output)")
    tr.plans, tr.nums, tr.single, tr.out, tr.out_value, tr.info = (
        plans, nums, single, out, out_value, info)
    _mark_runs(tr.t)  # (not the pickle's marks: a damaged one could skip entries)
    tr.active = _activity(tr.t, _active_slots(plans, nums), out)
    _direct_args(tr)
    return tr


cdef object _active_slots(list plans, tuple nums):
    """The slots of the differentiated arguments' leaves (those on the tape), as int64."""
    parts = [np.zeros(0, dtype=np.int64)]
    todo = [plans[k] for k in sorted(set(nums))]
    while todo:
        p = <_Plan>todo.pop()
        if p.kind == _T_NUMBER and p.slot >= 0:
            parts.append(np.array([p.slot], dtype=np.int64))
        elif p.kind == _T_REALS:
            parts.append(p.slots[p.slots >= 0])
        elif p.kind == _T_NDARRAY and p.slot >= 0:
            parts.append(np.arange(p.slot, p.slot + p.size, dtype=np.int64))
        elif p.kind == _T_TREE:
            todo.extend(p.leaves)
    return np.concatenate(parts)


cdef dict _COMPARE_NAMES = {0: "<", 1: "<=", 2: ">", 3: ">=", 4: "==", 5: "!="}


cdef inline int _set_number(_Replay r, int64_t slot, object x, _Plan p, Py_ssize_t k) except -1:
    cdef double c
    if PyFloat_Check(x):
        c = PyFloat_AS_DOUBLE(x)
    elif type(x) is int or isinstance(x, (np.floating, np.integer)):
        c = PyFloat_AsDouble(x)
    else:
        raise TypeError(f"revad: argument {k}{p.name} was a number when the trace was recorded, "
                        f"got {type(x).__name__}")
    if slot >= 0:
        r.val[slot] = c
    return 0


cdef int _load_arg(_Replay r, _Plan p, object x, Py_ssize_t k, bint direct) except -1:
    cdef Py_ssize_t i, n
    cdef const int64_t *sv
    cdef cnp.ndarray a
    if p.kind == _T_NUMBER:
        return _set_number(r, p.slot, x, p, k)
    if p.kind == _T_REALS:
        if type(x) is not p.rtype or len(x) != p.size:
            raise ValueError(f"revad: argument {k}{p.name} was a {p.rtype.__name__} of "
                             f"{p.size} numbers when the trace was recorded, got "
                             f"{_describe(x)}")
        sv = <const int64_t *>cnp.PyArray_DATA(<cnp.ndarray>p.slots)  # (int64, C order)
        n = p.size
        for i in range(n):
            _set_number(r, sv[i], x[i], p, k)
        return 0
    if p.kind == _T_NDARRAY:
        if type(x) is not np.ndarray or x.shape != p.shape or x.dtype != p.dtype:
            raise ValueError(f"revad: argument {k}{p.name} was an array of shape {p.shape} "
                             f"and dtype {p.dtype} when the trace was recorded, got "
                             f"{_describe(x)}")
        if p.slot >= 0 and p.size:
            a = <cnp.ndarray>x
            if not cnp.PyArray_IS_C_CONTIGUOUS(a) or a.dtype != _F64:
                a = np.ascontiguousarray(x, dtype=np.float64)
                if p.cidx >= 0:
                    r.inputs.append(a)  # (the caller's x lives through the call; this copy not)
            if p.cidx >= 0:  # read in place (_in_place): its readers point at it
                r.cptr[p.cidx] = <const double *>cnp.PyArray_DATA(a)
            elif p.direct and direct:  # its one product reads it there (_direct_args)
                r.vals_at[p.slot] = a
            else:
                memcpy(r.val + p.slot, cnp.PyArray_DATA(a), p.size * sizeof(double))
        return 0
    if p.kind == _T_STATIC:
        if not _same_static(p.value, x):
            raise TraceError(f"revad: guard failed (a static argument): argument {k}{p.name} "
                             f"was {_short(p.value)} when the trace was recorded, got "
                             f"{_short(x)}; a trace takes it as a constant")
        return 0
    # _T_TREE: a list, tuple or dict of the recorded length (and keys, p.value), in order
    if type(x) is not p.rtype or len(x) != p.size or (p.value is not None
                                                      and list(x) != p.value):
        raise ValueError(f"revad: argument {k}{p.name} was a {p.rtype.__name__} of {p.size}"
                         + (f" with keys {p.value}" if p.value is not None else "")
                         + f" when the trace was recorded, got {_describe(x)}"
                         + (f" with keys {list(x)}" if type(x) is dict else ""))
    leaves = [x[key] for key in p.value] if p.value is not None else x
    for i in range(len(p.leaves)):
        _load_arg(r, <_Plan>p.leaves[i], leaves[i], k, direct)
    return 0


cdef bint _same_static(object was, object now) except -1:
    if type(was) is not type(now):
        return False
    if type(was) is np.ndarray:
        return was.shape == now.shape and was.dtype == now.dtype and np.array_equal(was, now)
    try:
        return bool(was is now or was == now)
    except Exception:
        return False


cdef str _short(object x):
    s = repr(x)
    return s if len(s) <= 60 else s[:57] + "..."


cdef str _describe(object x):
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape} and dtype {x.dtype}"
    if isinstance(x, (list, tuple)):
        return f"a {type(x).__name__} of {len(x)}"
    return f"a {type(x).__name__}"


cdef object _grad_of(_Replay r, _Plan p, bint take):
    """Argument p's gradient, read from r's adjoints after a sweep; take: and zeroed as read,
    which leaves them clean for the next sweep (its last read: an argnum may repeat)."""
    cdef Py_ssize_t i, n
    cdef const int64_t *sv
    cdef double c
    if p.kind == _T_NUMBER:
        if p.slot < 0:
            return 0.0
        c = r.adj[p.slot]
        if take:
            r.adj[p.slot] = 0.0
        return c
    if p.kind == _T_REALS:
        sv = <const int64_t *>cnp.PyArray_DATA(<cnp.ndarray>p.slots)
        n = p.size
        out = [None] * n
        for i in range(n):
            out[i] = r.adj[sv[i]] if sv[i] >= 0 else 0.0
        if take:
            for i in range(n):
                if sv[i] >= 0:
                    r.adj[sv[i]] = 0.0
        return out if p.rtype is list else tuple(out)
    if p.kind == _T_NDARRAY:
        if p.direct and r.vals_at:  # (its product wrote it, or never ran: a zero gradient)
            g = r.grads_at.pop(p.slot, None) if take else r.grads_at.get(p.slot)
            if g is None:
                return np.zeros(p.shape)
            return g.reshape(p.shape) if take else g.reshape(p.shape).copy()
        g = np.empty(p.shape)
        if p.slot >= 0 and p.size:
            rv_take_adjoints(<double *>cnp.PyArray_DATA(<cnp.ndarray>g), r.adj + p.slot, p.size,
                             take, True)
        elif p.size:
            g[...] = 0.0
        return g
    if p.kind == _T_TREE:
        grads = [_grad_of(r, <_Plan>q, take) for q in p.leaves]
        if p.value is not None:
            return dict(zip(p.value, grads))
        return p.rtype(grads)
    return None  # a static leaf of a structure: no gradient


def _make_trace(Tape t not None, list plans, tuple nums, bint single, Var out, double out_value,
                info):
    """The Trace over recorded tape t (revad/_trace.py). out: the result (None: a constant)."""
    cdef Trace tr = Trace.__new__(Trace)
    tr.t, tr.plans, tr.nums, tr.single, tr.info = t, plans, nums, single, info
    tr.out = -1 if out is None else _var_binding(out, t)
    tr.out_value = out_value
    if out is not None and tr.out < 0:
        raise ValueError("revad: the function's result was recorded on another computation's "
                         "tape: it combines the arguments with a Var computed outside the "
                         "function. Pass that Var as an argument, or detach() it")
    t.finished = True
    _read_in_place(t, plans, nums, tr.out)
    _mark_runs(t)
    tr.active = _activity(t, _active_slots(plans, nums), tr.out)
    _direct_args(tr)
    return tr


cdef object _busy_slots(Tape t, int64_t out):
    """The slots the output and the Python checks of t's guard sites read (int64), or None if a
    check this module does not know may read any slot."""
    busy = [np.zeros(0, dtype=np.int64)]
    if out >= 0:
        busy.append(np.array([out], dtype=np.int64))
    for site in t.sites or ():
        if site[3] is None:
            continue
        if type(site[3]) is not _TiesCheck:
            return None
        busy += [np.asarray(site[3].ma).reshape(-1), np.asarray(site[3].mr).reshape(-1)]
    return np.concatenate(busy).astype(np.int64)


cdef list _lone_arrays(list plans):
    """The array plans among plans (their structures' leaves too) that are on the tape and not
    empty, but for any whose slots another of them shares (one array passed twice)."""
    arrays, todo = [], list(plans)
    while todo:
        p = <_Plan>todo.pop()
        if p.kind == _T_NDARRAY and p.slot >= 0 and p.size:
            arrays.append(p)
        elif p.kind == _T_TREE:
            todo.extend(p.leaves)
    firsts = {}
    for p in arrays:
        firsts[p.slot] = firsts.get(p.slot, 0) + 1
    return [p for p in arrays if firsts[(<_Plan>p).slot] == 1]


cdef Py_ssize_t _count_direct(list plans):
    return sum((<_Plan>p).direct for p in _lone_arrays(plans))  # (a direct one is lone)


cdef int _direct_args(Trace tr) except -1:
    """Mark the differentiated array arguments (_Plan.direct) that a replay reads where the
    caller keeps them, and whose gradient is written as a new array, no copy in or out
    (_Replay.vals_at, grads_at): those whose only reader (rv_sole_reader) is one matrix product
    that BLAS runs, reading the whole argument in C order as an operand, the other operand not
    differentiated (so that only the forward product reads its values); not read by the output
    or a Python check, nor sharing its slots with another argument."""
    cdef Tape t = tr.t
    cdef _Plan p
    cdef const rv_mm_blk *h
    cdef const rv_mm_operand *o
    cdef const rv_mm_operand *other
    cdef int64_t i, rows, cols
    cands = _lone_arrays([tr.plans[k] for k in sorted(set(tr.nums))])
    busy = _busy_slots(t, tr.out) if cands else None
    if busy is None:
        return 0
    for p in cands:
        if ((busy >= p.slot) & (busy < p.slot + p.size)).any():
            continue
        i = rv_sole_reader(t.op, t.arg0, t.arg1, t.blk, t.n, p.slot, p.slot + p.size)
        if i < 0 or t.op[i] != RV_MM:
            continue
        h = <const rv_mm_blk *>(t.blk + t.arg0[i])
        if h.a.src < 0 and h.a.off == p.slot:
            o, other, rows, cols = &h.a, &h.b, h.m, h.n
        elif h.b.src < 0 and h.b.off == p.slot:
            o, other, rows, cols = &h.b, &h.a, h.n, h.q
        else:
            continue
        p.direct = (h.blas != 0 and other.src >= 0 and o.cs == 1 and o.rs == cols
                    and rows * cols == p.size)
    return 0


cdef int _read_in_place(Tape t, list plans, tuple nums, int64_t out) except -1:
    """Let the array arguments that nothing differentiates be read where the caller keeps them,
    not copied into each replay's values (_in_place): those not differentiated, not read by the
    output or a Python check, not on the slots of another argument (one array passed twice)."""
    cands = _lone_arrays(plans)
    if not cands:
        return 0
    busy = _busy_slots(t, out)
    if busy is None:
        return 0  # (a check this pass does not know may read any slot)
    busy = np.concatenate([_active_slots(plans, nums), busy])
    keep = []
    for p in cands:
        if not ((busy >= p.slot) & (busy < p.slot + p.size)).any():
            keep.append(p)
    keep.sort(key=lambda q: (<_Plan>q).slot)
    for p, c in zip(keep, _in_place(t, [(<_Plan>q).slot for q in keep],
                                    [(<_Plan>q).size for q in keep])):
        p.cidx = c
    return 0


def _new_plan(int kind, int64_t slot=-1, slots=None, shape=None, dtype=None, value=None,
              leaves=None, flatten=None, build=None, rtype=None, str name="", int64_t size=0,
              int64_t cidx=-1):
    cdef _Plan p = _Plan.__new__(_Plan)
    p.kind, p.slot, p.slots, p.shape, p.dtype, p.value = kind, slot, slots, shape, dtype, value
    p.leaves, p.flatten, p.build, p.rtype = leaves, flatten, build, rtype
    p.name, p.size, p.cidx = name, size, cidx
    return p


def _describe_py(x):
    return _describe(x)


_PLAN_NUMBER, _PLAN_REALS, _PLAN_NDARRAY, _PLAN_STATIC, _PLAN_TREE = (
    _T_NUMBER, _T_REALS, _T_NDARRAY, _T_STATIC, _T_TREE)
