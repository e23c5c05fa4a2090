# Replay (revad.trace): a recorded tape re-evaluated at new inputs, forward (sweep.h,
# rv_forward_replay) then reverse (rv_backward), into buffers of the replay's own (_Replay), so
# that several threads may replay one recording at once; and the guards a recording makes.
# Part of revad._core (included textually by _core.pyx: one module, several files).

class TraceError(RuntimeError):
    """A replayed trace would not run the program it recorded: a comparison on a traced value
    came out the other way, a value that escaped into Python (``float(v)``, a mask, an index)
    changed, or the arguments differ in structure, shape or type. The message says which guard,
    the recorded value and the new one, and where in your code it was recorded.

    >>> import revad
    >>> tr = revad.trace(lambda x: x * x if x > 0 else -x, 1.0)
    >>> try:
    ...     tr.value_and_grad(-1.0)
    ... except revad.TraceError as e:
    ...     print(str(e).startswith("revad: guard failed (comparison)"))
    True
    """
    __module__ = "revad"


# Traces recording in this process (any thread): while 0, an escape (float(v), ...) costs one
# comparison of this counter, and eager code nothing more.
cdef int _n_tracing = 0


cdef bint _tracing_active() noexcept:
    return _n_tracing != 0


def _tracing_begin(int delta):
    """revad.trace's bracket around f's recording (+1, then -1)."""
    global _n_tracing
    _n_tracing += delta


cdef Tape _tracing_tape():
    """This thread's current tape if a trace records on it, else None."""
    if _n_tracing == 0:
        return None
    cdef _ThreadState st = _state()
    if st.tape != NULL and (<Tape>st.tape).sites is not None and not (<Tape>st.tape).finished:
        return <Tape>st.tape
    return None


cdef str _user_site():
    """"file:line" of the innermost frame outside revad and NumPy: where the user's code made
    the guard. Frames only: cheap, and only while a trace records."""
    f = sys._getframe(0)
    while f is not None:
        mod = f.f_globals.get("__name__", "")
        if not (mod == "revad" or mod.startswith("revad.") or mod.startswith("numpy")
                or mod.startswith("scipy") or mod == "functools"):
            return f"{f.f_code.co_filename}:{f.f_lineno}"
        f = f.f_back
    return "<unknown>"


cdef int _trace_site(Tape t, int64_t entry, str kind, object check=None) except -1:
    """Note that the guard (or comparison) at `entry` was made here; a run of guards from one
    escape shares its first entry's site. `check`: a Python function of the replay's values
    (an ndarray over its value buffer) returning None when it holds, else (recorded, new)."""
    t.sites.append((entry, kind, _user_site(), check))
    return 0


cdef int _guard_var(Var x, str kind) except -1:
    """A traced Var's value escaped into Python: guard it (a replay checks it bit for bit)."""
    cdef Tape t = x.tape
    if t is None:  # a leaf: guarded where the trace bound it (an input), else a constant
        t = _tracing_tape()
        if t is None or x.bound != t.id:
            return 0
    elif t.sites is None or t.finished:
        return 0
    if _guards_quiet():
        return 0
    _trace_site(t, t.n, kind)
    t.push(RV_GUARD, x.slot, -1, t.val[x.slot])
    return 0


cdef inline int _escape(Var x, str kind) except -1:
    if _n_tracing != 0:
        _guard_var(x, kind)
    return 0


def _quiet(int delta):
    """revad's own reads of values that a replay recomputes in Python (a primitive's call, a
    SciPy row) on this thread: no guards meanwhile (+1, then -1). Only while a trace records."""
    cdef _ThreadState st
    if _n_tracing != 0:
        st = _state()
        st.quiet += delta


cdef bint _guards_quiet():
    cdef _ThreadState st = _state()
    return st.quiet != 0


# ---------------------------------------------------------------------------------------------
# One replay's buffers.

@cython.final
cdef class _Replay:
    """The buffers one replay of a recorded tape runs in (see _core.pxd); reused call after
    call by one thread at a time."""

    def __dealloc__(self):
        free(self.runs)
        free(self.val)
        free(self.adj)
        free(<void *>self.cptr)


@cython.final
cdef class _Active:
    """A trace's activity (activity.h, made by _activity): the op column its replays' reverse
    sweeps read, and the runs of adjoints they zero after (see _core.pxd)."""


def _push_own_values(Tape t not None):
    """Push t's _OWN_VALUES entry (a sweep on the tape itself reads its recorded values)."""
    cdef int64_t k = t.push_ref(_OWN_VALUES)
    t.cptr[k] = t.val
    return k


def _activity(Tape t not None, object active, int64_t out):
    """The activity of finished tape t whose differentiated leaves are the slots `active`
    (int64), its output at `out` (-1: none): rewrites the inactive operands of its active
    groups to read the values as constants (activity.h; _OWN_VALUES's cptr entry, pushed once)
    and returns the _Active its replays take."""
    cdef int64_t n = t.n, vsrc = -1, k
    if not t.finished:
        raise ValueError("revad: internal error: activity of a tape still recording")
    for k in range(t.n_cptr):
        if t.refs[k] is _OWN_VALUES:
            vsrc = k
            break
    if vsrc < 0:
        vsrc = _push_own_values(t)
    op = np.asarray(<uint8_t[:max(n, 1)]>t.op)[:n] if n else np.zeros(0, np.uint8)
    act = np.zeros(max(n, 1), dtype=np.uint8)
    slots = np.asarray(active, dtype=np.int64).reshape(-1)
    if slots.size:
        if slots.min() < 0 or slots.max() >= n or (op[slots] != RV_LEAF).any():
            raise ValueError("revad: internal error: an active slot that is not a leaf")
        act[slots] = 1
    cnt = np.empty(n + 1, dtype=np.int32)
    cdef uint8_t[::1] av = act
    cdef int32_t[::1] cv = cnt
    if n:
        rv_activity(t.op, t.arg0, t.arg1, t.blk, n, &av[0], &cv[0], vsrc)
    act = act[:n]
    if 0 <= out < n and act[out] != 1:
        act[out] = 2  # an output that depends on no input: its seed is zeroed after
    cdef _Active a = _Active.__new__(_Active)
    a.rop = np.where(act == 1, op, RV_LEAF).astype(np.uint8)
    a.gaps = _long_runs(a.rop == RV_LEAF)[::-1, ::-1].copy()  # (last, first), top first
    a.inactive = n - int(np.count_nonzero(act == 1))
    clear = _long_runs(act == 2, 1)  # (the active leaves' adjoints: taken by the reads)
    a.runs = np.ascontiguousarray(np.stack([clear[:, 0], clear[:, 1] - clear[:, 0] + 1],
                                           axis=1), dtype=np.int64)
    a.lazy = _lazy_groups(t)
    a.fresh = {}
    cdef const uint8_t[::1] rop = a.rop if n else np.zeros(1, np.uint8)
    cdef int64_t seed = rv_group_end(&rop[0], out) if 0 <= out < n and act[out] == 1 else -1
    cdef int bits
    if seed >= 0:
        for k in np.flatnonzero(a.rop[:seed + 1] == RV_MM):
            bits = rv_mm_fresh(&rop[0], t.arg0, t.arg1, t.blk, seed, k)
            if bits:
                a.fresh[int(k)] = bits
    return a


cdef object _lazy_groups(Tape t):
    """The last slots, ascending (int64), of the groups t's recording left unwritten (Tape.absent:
    lazy elementwise groups that only sums over them read), which a replay leaves unwritten too
    (kind_table.h, rv_replay). Each is checked to be an elementwise group's (a pickled tape's
    reach C unchecked)."""
    cdef int64_t bi, last
    cdef const rv_ew_blk *h
    lasts = []
    for bi in t.absent:
        if not 0 <= bi <= t.n_blk - 4:
            raise ValueError("revad: a trace's tape is damaged (a lazy group)")
        h = <const rv_ew_blk *>(t.blk + bi)
        last = h.out + h.n - 1
        if not (0 <= h.out <= last < t.n and t.op[last] == RV_EW and t.arg0[last] == bi
                and rv_ew_lazy(h.op)):
            raise ValueError("revad: a trace's tape is damaged (a lazy group)")
        lasts.append(last)
    return np.array(sorted(lasts), dtype=np.int64)


def _in_place(Tape t not None, object firsts, object sizes):
    """Read data arguments of finished tape t in place (activity.h, rv_inputs_in_place):
    argument k on the slots [firsts[k], firsts[k] + sizes[k]), leaves (sorted, disjoint; the
    caller leaves out any that the output or a Python check reads). Each one that only operands
    able to read a constant read gets an _InputValues entry, and those operands read it; returns
    each argument's cptr entry (-1: a replay copies it into its values, as before)."""
    lo = np.ascontiguousarray(firsts, dtype=np.int64).reshape(-1)
    size = np.ascontiguousarray(sizes, dtype=np.int64).reshape(-1)
    cdef int64_t m = lo.shape[0], k, i
    src = np.zeros(m, dtype=np.int64)  # (0: a candidate)
    if m == 0:
        return src
    op = np.asarray(<uint8_t[:max(t.n, 1)]>t.op)[:t.n]
    if (not t.finished or size.shape[0] != m or (size <= 0).any() or lo.min() < 0
            or (lo + size).max() > t.n or (m > 1 and ((lo + size)[:m - 1] > lo[1:]).any())
            or any((op[lo[k]:lo[k] + size[k]] != RV_LEAF).any() for k in range(m))):
        raise ValueError("revad: internal error: arguments read in place are not leaves of a "
                         "finished tape, in order")
    cdef const int64_t[::1] lv = lo, sv = size
    cdef int64_t[::1] cv = src
    rv_inputs_in_place(t.op, t.arg0, t.arg1, t.blk, t.n, &lv[0], &sv[0], &cv[0], m, 0)
    for k in range(m):
        if cv[k] >= 0:
            i = t.push_ref(_InputValues(lv[k], sv[k]))
            t.cptr[i] = t.val + lv[k]  # (a sweep on the tape itself reads the recorded values)
            cv[k] = i
    rv_inputs_in_place(t.op, t.arg0, t.arg1, t.blk, t.n, &lv[0], &sv[0], &cv[0], m, 1)
    return src


# A run of leaves in a replay's reverse op column at least this long is stepped over in one
# jump (_replay_reverse), not scanned: a data argument's block, a skipped subexpression.
cdef int64_t _GAP_MIN = 4096


cdef object _long_runs(object mask, int64_t least=_GAP_MIN):
    """(first, last) of each run of True in bool array `mask` at least `least` long, int64."""
    edges = np.flatnonzero(np.diff(np.concatenate(([False], mask, [False])).view(np.int8)))
    first, end = edges[0::2], edges[1::2]
    keep = end - first >= least
    return np.stack([first[keep], end[keep] - 1], axis=1).astype(np.int64)


def _mark_runs(Tape t not None):
    """Write, at each leaf and group placeholder of finished tape t, the distance to the last
    slot of its run of them into arg0 (unused there): a forward replay steps over a run in one
    jump (sweep.h, rv_replay_skip). Every replayed tape is marked (revad.trace, unpickling)."""
    cdef int64_t n = t.n
    if not t.finished:
        raise ValueError("revad: internal error: marking a tape still recording")
    if n == 0:
        return
    op = np.asarray(<uint8_t[:n]>t.op)
    arg0 = np.asarray(<int32_t[:n]>t.arg0)
    run = (op == RV_LEAF) | (op == RV_GROUP_SLOT)
    rest = np.append(np.flatnonzero(~run), n)  # the entries that end runs, then the end
    at = np.flatnonzero(run)
    arg0[at] = (rest[np.searchsorted(rest, at)] - 1 - at).astype(np.int32)


cdef _Replay _replay_new(Tape t, _Active act):
    """Buffers for replays of t, whose activity (_activity) is act: its reverse sweeps skip the
    inactive entries and zero act.runs after."""
    cdef _Replay r = _Replay.__new__(_Replay)
    cdef int64_t n = max(t.n, 1), k
    cdef const int64_t[:, ::1] rv = act.runs
    r.t, r.n = t, t.n
    r.val = <double *>malloc(n * sizeof(double))
    r.adj = <double *>calloc(n, sizeof(double))
    r.cptr = <const double **>malloc(max(t.n_cptr, 1) * sizeof(double *))
    r.runs = <int64_t *>malloc(max(2 * rv.shape[0], 1) * sizeof(int64_t))
    if r.val == NULL or r.adj == NULL or r.cptr == NULL or r.runs == NULL:
        raise MemoryError("revad: no memory for a replay's buffers")
    memcpy(r.val, t.val, t.n * sizeof(double))  # the leaves that are not inputs keep these
    for k in range(t.n_cptr):
        r.cptr[k] = t.cptr[k] if t.refs[k] is not _OWN_VALUES else r.val
    r.records, r.keep, r.inputs, r.vals_at, r.grads_at = {}, [], [], {}, {}
    r.act = act
    r.rop = <const uint8_t *><size_t>act.rop.__array_interface__["data"][0]
    r.gaps, r.n_gaps = NULL, act.gaps.shape[0]
    if r.n_gaps:
        r.gaps = <const int64_t *><size_t>act.gaps.__array_interface__["data"][0]
    r.lazy = <const int64_t *><size_t>act.lazy.__array_interface__["data"][0]
    r.n_lazy = act.lazy.shape[0]
    for k in range(rv.shape[0]):
        r.runs[2 * k], r.runs[2 * k + 1] = rv[k, 0], rv[k, 1]
    r.n_runs = rv.shape[0]
    r.checks = [s for s in t.sites or () if s[3] is not None]
    return r


cdef object _col(double *p, int64_t n):
    return np.asarray(<double[:max(n, 1)]>p)[:n]


cdef int _replay_python(_Replay r, int64_t i, object val) except -1:
    """The values of the group at slot i that C cannot compute: a BLAS product (NumPy), a
    Python function (its record's rerun), a SciPy row (its rerun, which gives the partials too:
    our cptr points at them from now on)."""
    cdef Tape t = r.t
    cdef int code = t.op[i]
    cdef const int64_t *p = t.blk + t.arg0[i]
    cdef const rv_mm_blk *mm
    cdef const rv_call_blk *call
    cdef const rv_pair_blk *pair
    cdef const rv_pair_operand *q
    cdef int64_t k
    if code == RV_MM:
        mm = <const rv_mm_blk *>p
        A = _mm_operand(t, val, r.cptr, &mm.a, mm.m, mm.n, r.vals_at)
        B = _mm_operand(t, val, r.cptr, &mm.b, mm.n, mm.q, r.vals_at)
        out = val[mm.out:mm.out + mm.m * mm.q].reshape(mm.m, mm.q)
        # A large constant referenced (revad._array._Watched): its product checks it block by
        # block as it reads it (raises if it changed since recorded), one pass over it.
        if type(A) is not np.ndarray and type(B) is np.ndarray:
            A.matmul_checked(B, out)
        elif type(B) is not np.ndarray and type(A) is np.ndarray:
            B.rmatmul_checked(A, out)
        else:
            for c in (A, B):
                if type(c) is not np.ndarray:
                    c.check()
            np.matmul(A, B, out=out)
    elif code == RV_CALL:
        call = <const rv_call_blk *>p
        record = t.refs[call.obj]
        ins = [np.array(val[call.span[2 * k]:call.span[2 * k] + call.span[2 * k + 1]])
               for k in range(call.n_in)]
        flat, new = _user_call(t, record.rerun, ins)
        flat = np.ascontiguousarray(flat, dtype=np.float64).reshape(-1)
        if flat.shape[0] != call.n:
            raise TraceError(f"revad: guard failed (a primitive's result): {record.name} gave "
                             f"{flat.shape[0]} numbers where the recording had {call.n}")
        val[call.out:call.out + call.n] = flat
        r.records[call.obj] = new
    elif code == RV_PAIR:
        pair = <const rv_pair_blk *>p
        if pair.src < 0:
            raise TraceError("revad: a SciPy function recorded without its row cannot be replayed")
        y, ds = _user_call(t, t.refs[pair.src][2], val)
        val[pair.out:pair.out + pair.n] = np.asarray(y, dtype=np.float64).reshape(-1)
        for k in range(pair.nargs):
            q = rv_pair_operand_at(pair, k)
            d = np.ascontiguousarray(ds[k], dtype=np.float64).reshape(-1)
            if d.shape[0] != pair.n:
                raise ValueError("revad: internal error: a SciPy row's partials changed shape")
            r.keep.append(d)
            r.cptr[q.d] = <const double *><size_t>d.__array_interface__["data"][0]
    else:
        raise ValueError(f"revad: internal error: a replay stopped at op {code}")
    return 0


# Tapes smaller than this replay with the GIL held: a sweep of them takes less than letting go
# of it and taking it back.
cdef int64_t _NOGIL_MIN = 256


cdef int64_t _replay_forward(_Replay r) except -2:
    """The forward replay at the inputs the caller wrote into r.val; returns -1, or the entry of
    the first guard or comparison that failed. A group of _split_min outputs or more that its
    kind may cut (an elementwise group, a sum group's lines) is shared with the helper threads,
    as recording shared it: each output computed as one thread computes it."""
    cdef Tape t = r.t
    cdef int64_t i = 0, fail = -1, top = t.n - 1, split = _split_min
    cdef rv_replay s
    cdef const int64_t *ps
    cdef int run, code
    val = None
    if r.keep:
        r.keep = []
    while True:
        if t.n < _NOGIL_MIN:  # (letting go of the GIL costs more than a small sweep)
            i = rv_forward_replay(t.op, t.arg0, t.arg1, t.val, t.cst, t.blk, r.cptr, r.val, i,
                                  top, &fail, r.lazy, r.n_lazy, split)
        else:
            with nogil:
                i = rv_forward_replay(t.op, t.arg0, t.arg1, t.val, t.cst, t.blk, r.cptr, r.val,
                                      i, top, &fail, r.lazy, r.n_lazy, split)
        if fail >= 0:
            return fail
        if i < 0:
            break
        code = t.op[i]
        if code == RV_EW or code == RV_SUMS:  # stopped for threads (rv_forward_replay)
            s.t.op, s.t.arg0, s.t.arg1, s.t.val, s.t.cst, s.t.blk, s.t.cptr = (
                t.op, t.arg0, t.arg1, r.val, t.cst, t.blk, r.cptr)
            s.lazy, s.n_lazy, s.split = r.lazy, r.n_lazy, split
            run = rv_replay_run(&s, i, r.val, &ps)
            _run_loops_on(t.blk + t.arg0[i], run, t, r.val, r.cptr, NULL, False, ps, 0)
        else:
            if val is None:
                val = _col(r.val, r.n)
            _replay_python(r, i, val)
        i += 1
    for site in r.checks:
        if val is None:
            val = _col(r.val, r.n)
        if site[3](val) is not None:
            return site[0]
    return -1


cdef int _replay_reverse(_Replay r, int64_t top) except -1:
    """The reverse sweep from slot top into r.adj (zero before: a clean sweep leaves it zero,
    but for the differentiated leaves, which the caller takes (_grad_of), and the slots
    _replay_clear zeroes)."""
    cdef Tape t = r.t
    cdef double *buf = r.adj
    cdef const uint8_t *op = r.rop  # (activity.h)
    cdef int64_t i = rv_group_end(op, top), seed, first, g = 0, floor
    cdef const int64_t *p
    cdef const rv_ew_blk *q
    cdef const rv_kind *kind
    seed = i
    buf[top] = 1.0
    while i >= 0:
        # The next long run of leaves below i (r.gaps, top first): swept down to just above
        # it, then on from just below it.
        while g < r.n_gaps and r.gaps[2 * g + 1] > i:
            g += 1
        if g < r.n_gaps and r.gaps[2 * g] >= i:
            i = r.gaps[2 * g + 1] - 1
            g += 1
            continue
        floor = r.gaps[2 * g] + 1 if g < r.n_gaps else 0
        if t.n < _NOGIL_MIN:
            i = rv_backward(op, t.arg0, t.arg1, r.val, t.cst, t.blk, r.cptr, buf, i, True,
                            _split_min, seed, floor)
        else:
            with nogil:
                i = rv_backward(op, t.arg0, t.arg1, r.val, t.cst, t.blk, r.cptr, buf, i, True,
                                _split_min, seed, floor)
        if i < 0:
            if floor == 0:
                break
            i = floor - 1  # (the gap's last slot: stepped over next time round)
            continue
        p = t.blk + t.arg0[i]
        kind = rv_kind_of(op[i])
        first = kind.first(p, i)
        q = NULL
        if op[i] == RV_SUMS:
            q = rv_sums_fused(op, t.arg0, t.blk, <const rv_sums_blk *>p, True)
        if q != NULL:
            _run_loops_on(<const int64_t *>q, RV_RUN_EW_SUM_BACKWARD, t, r.val, r.cptr, buf,
                          True, p, not rv_reads_below(op, t.arg0, t.arg1, t.blk, seed, i,
                                                      q.out, q.out + q.n))
            memset(buf + first, 0, (i + 1 - first) * sizeof(double))
            first = q.out
        elif kind.run_backward == RV_RUN_BLAS:
            _mm_backward_blas_on(t, r.val, r.cptr, buf, r.n, <const rv_mm_blk *>p, True,
                                 r.act.fresh.get(i, 0), r.vals_at, r.grads_at)
        elif kind.run_backward == RV_RUN_PYTHON:
            _call_backward_of(t, r.records[(<const rv_call_blk *>p).obj], buf, r.n,
                              <const rv_call_blk *>p, True)
        else:
            _run_loops_on(p, kind.run_backward, t, r.val, r.cptr, buf, True, NULL, 0)
        i = first - 1
    return 0


cdef int _replay_clear(_Replay r) except -1:
    """Zero what a clean sweep leaves in the adjoints but for the differentiated leaves' (taken
    as the gradient is read): the inactive slots that active entries add into (activity.h,
    RV_ACT_DIRTY), an output that depends on no input."""
    cdef int64_t k
    for k in range(r.n_runs):
        memset(r.adj + r.runs[2 * k], 0, r.runs[2 * k + 1] * sizeof(double))
    return 0


def _bind_leaves(list leaves not None):
    """Bind leaf Vars to this thread's current tape (revad.trace's inputs), in order."""
    cdef Tape t = _current_tape()
    for v in leaves:
        t.bind_leaf(<Var>v)


# ---------------------------------------------------------------------------------------------
# A batch's rows (Trace.batch) in C, shared by threads without the GIL.

# Rows of a batch under this many tape entries in all run on the calling thread alone: handing
# work to a helper costs tens of microseconds.
cdef int64_t _ROWS_SHARE_MIN = 1 << 15


cdef bint _replay_in_c(Tape t) except -1:
    """Whether a replay of t runs in C alone (sweep.h, rv_replay_in_c) and checks nothing in
    Python (a max/min's ties: a guard site with a check)."""
    if not rv_replay_in_c(t.op, t.arg0, t.blk, t.n):
        return False
    return not any(s[3] is not None for s in t.sites or ())


@cython.final
cdef class _Rows:
    """A batch's rows, claimed one at a time by threads that each replay them in buffers of
    their own (a seat: r, or a copy of it), without the GIL. What the rows read and write is
    the batch call's own: the inputs x and the outputs v, g are arrays it made and keeps until
    every thread is done (_replay_rows), the tape is held (_hold), the buffers are kept here."""
    cdef Tape t
    cdef list bufs                 # the seats' _Replay buffers (kept alive)
    cdef double **vals
    cdef double **adjs
    cdef const double ***cptrs     # each seat's constants (_OWN_VALUES: its own values)
    cdef const uint8_t *rop        # the op column of the reverse sweeps (activity.h)
    cdef const int64_t *runs       # the first seat's adjoints to zero after a row (all seats')
    cdef int64_t n_runs
    cdef const int64_t *lazy       # the groups the forward replays leave unwritten (r's)
    cdef int64_t n_lazy
    cdef const double *x
    cdef const int64_t *xs
    cdef const int64_t *gs
    cdef double *v
    cdef double *g
    cdef int64_t m, nx, ng, out, top, seats, seat, next
    cdef int64_t fail              # the lowest row whose guards failed (m: none)
    cdef double out_value

    def __dealloc__(self):
        free(self.vals)
        free(self.adjs)
        free(self.cptrs)

    cdef void rows(self) noexcept nogil:
        cdef int64_t s = rv_claim(&self.seat), j, e
        cdef rv_cols c
        if s >= self.seats:
            return
        c.op, c.arg0, c.arg1, c.val, c.cst, c.blk, c.cptr = (
            self.t.op, self.t.arg0, self.t.arg1, self.t.val, self.t.cst, self.t.blk,
            self.cptrs[s])
        while True:
            # Rows are claimed in order: once one has failed, every row claimed after it is a
            # later one, and every earlier one is finished by its thread; the lowest failing
            # row is the one a serial loop would name.
            j = rv_claim(&self.next)
            if j >= self.m or j > rv_peek(&self.fail):
                return
            e = rv_replay_row(&c, self.rop, self.vals[s], self.adjs[s], self.out,
                              self.x + j * self.nx, self.xs, self.nx, self.g + j * self.ng,
                              self.gs, self.ng, self.runs, self.n_runs, self.lazy,
                              self.n_lazy, self.top)
            if e >= 0:
                rv_lower_to(&self.fail, j)
                return
            self.v[j] = self.vals[s][self.out] if self.out >= 0 else self.out_value

    def run(self):
        with nogil:
            self.rows()


cdef int64_t _replay_rows(_Replay r, int64_t m, const double *x, const int64_t *xs, int64_t nx,
                          double *v, double *g, const int64_t *gs, int64_t ng, int64_t out,
                          double out_value, int64_t threads) except -2:
    """Trace.batch's m rows for a tape that replays in C alone (_replay_in_c): row j's nx
    inputs x[j * nx:] written into slots xs, its value into v[j], its gradient read from slots
    gs (-1: zero) into g[j * ng:]. The caller owns x, v and g and keeps them for the call. r:
    buffers whose values hold the arguments every row shares and whose adjoints are zero; up to
    `threads` threads share the rows, each in a copy of r. Returns the lowest row whose guards
    failed, or -1; every row before it is done."""
    cdef Tape t = r.t
    cdef int64_t k, n, i
    cdef _Replay c
    cdef _Rows rows = _Rows.__new__(_Rows)
    # The slots reach C unchecked: inputs go to leaves; gradients come from any slot, or none.
    for k in range(nx):
        if not (0 <= xs[k] < t.n and t.op[xs[k]] == RV_LEAF):
            raise ValueError("revad: internal error: a batch's input is not a leaf of its tape")
    for k in range(ng):
        if not -1 <= gs[k] < t.n:
            raise ValueError("revad: internal error: a batch's gradient slot is off its tape")
    if out >= t.n or r.n != t.n:
        raise ValueError("revad: internal error: a batch's output is off its tape")
    n = 1 if m * max(t.n, 1) < _ROWS_SHARE_MIN else max(1, min(threads, m))
    rows.bufs = [r]
    for k in range(1, n):
        c = _Replay.__new__(_Replay)
        c.t, c.n, c.records, c.keep, c.checks, c.inputs = t, r.n, {}, [], [], []
        c.val = <double *>malloc(max(r.n, 1) * sizeof(double))
        c.adj = <double *>calloc(max(r.n, 1), sizeof(double))
        c.cptr = <const double **>malloc(max(t.n_cptr, 1) * sizeof(double *))
        if c.val == NULL or c.adj == NULL or c.cptr == NULL:
            raise MemoryError("revad: no memory for a replay's buffers")
        memcpy(c.val, r.val, r.n * sizeof(double))
        for i in range(t.n_cptr):  # (a tape that replays in C has no SciPy row's partials)
            if t.refs[i] is _OWN_VALUES:
                c.cptr[i] = c.val
            else:
                c.cptr[i] = r.cptr[i]
        rows.bufs.append(c)
    rows.vals = <double **>malloc(n * sizeof(double *))
    rows.adjs = <double **>malloc(n * sizeof(double *))
    rows.cptrs = <const double ***>malloc(n * sizeof(double **))
    if rows.vals == NULL or rows.adjs == NULL or rows.cptrs == NULL:
        raise MemoryError("revad: no memory for a batch")
    for k in range(n):
        c = <_Replay>rows.bufs[k]
        rows.vals[k], rows.adjs[k], rows.cptrs[k] = c.val, c.adj, c.cptr
    rows.t, rows.x, rows.xs, rows.gs, rows.v, rows.g = t, x, xs, gs, v, g
    rows.rop = r.rop
    rows.runs, rows.n_runs, rows.lazy, rows.n_lazy = r.runs, r.n_runs, r.lazy, r.n_lazy
    rows.m, rows.nx, rows.ng, rows.out, rows.top = m, nx, ng, out, t.n - 1
    rows.seats, rows.seat, rows.next, rows.fail, rows.out_value = n, 0, 0, m, out_value
    _hold(t)
    try:
        locks = _share(rows.run, n - 1) if n > 1 else []
        try:
            with nogil:
                rows.rows()
        finally:
            _join(locks)
    finally:
        _unhold(t)
    return rows.fail if rows.fail < m else -1
