# Second order in C: Hessian-vector products by one tangent sweep and one second-order sweep
# over a recorded tape (sweep.h, rv_second_order: ADOL-C's hess_vec, forward over reverse).
# Part of revad._core (included textually by _core.pyx: one module, several files).
#
# revad._second records f once on a private tape and calls _hessian_products with the slots of
# its leaves and the directions; a tape holding an entry whose kind has no second-order rule
# (_second_order_blocker: a Python function, a SciPy function) takes the recorded route instead.
# A Trace (revad.trace, _array_trace.pxi) runs the same sweeps, _second_products, over a
# replay's values at new arguments instead of the tape's own.

# The buffers of the last call (3 * cap doubles: tangents, adjoints, their tangents, cap
# each), kept for the next as _core_memory.pxi keeps a tape's columns: an optimiser calls hvp
# again and again at one size, and faulting in fresh pages each time would cost more than the
# sweeps. The second-order sweep is clean, so the adjoints and their tangents come back zero
# (the first `zero` of each known to be): the next call need not zero them again. Bounded as
# the spare columns are; revad.release_memory() frees them.
cdef double *_second_spare = NULL
cdef int64_t _second_spare_cap = 0
cdef int64_t _second_spare_zero = 0


cdef double *_take_second_buffers(int64_t need, int64_t *cap, int64_t *zero) except NULL:
    """3 * cap doubles (cap >= need): the spare ones if they are large enough, with how many
    leading adjoints and adjoint tangents (each third's) are known zero, else new ones."""
    global _second_spare, _second_spare_cap, _second_spare_zero
    cdef double *buf
    if _second_spare != NULL and _second_spare_cap >= need:
        buf, cap[0], zero[0] = _second_spare, _second_spare_cap, _second_spare_zero
        _second_spare = NULL  # (taken: a call on another thread makes its own)
        return buf
    cap[0], zero[0] = max(need, 1), 0
    buf = <double *>malloc(3 * cap[0] * sizeof(double))
    if buf == NULL:
        raise MemoryError("revad: no memory for the buffers of the second-order sweep")
    rv_prefer_huge_pages(buf, 3 * cap[0] * sizeof(double))
    return buf


cdef void _give_second_buffers(double *buf, int64_t cap, int64_t zero) noexcept:
    """Keep buf (from _take_second_buffers) for the next call, unless the spare is larger."""
    global _second_spare, _second_spare_cap, _second_spare_zero
    if cap > _SPARE_MAX_ENTRIES or (_second_spare != NULL and _second_spare_cap >= cap):
        free(buf)
        return
    free(_second_spare)
    _second_spare, _second_spare_cap, _second_spare_zero = buf, cap, zero


cdef size_t _free_second_spare() noexcept:
    """Free the spare buffers (release_memory); returns their bytes."""
    global _second_spare, _second_spare_cap, _second_spare_zero
    cdef size_t nbytes = 0 if _second_spare == NULL else 3 * _second_spare_cap * sizeof(double)
    free(_second_spare)
    _second_spare, _second_spare_cap, _second_spare_zero = NULL, 0, 0
    return nbytes


def _second_order_blocker(Var y not None):
    """The kind (kind_table.h's name: "call", "special") of the highest entry at or below y on
    y's tape that the second-order sweep has no rule for, or None: whether _hessian_products
    can run on y's tape."""
    return None if y.tape is None else _second_order_blocker_at(y.tape, y.slot)


cdef str _second_order_blocker_at(Tape t, int64_t out):
    """_second_order_blocker of the result at slot `out` of t (a Trace's)."""
    cdef int64_t i = rv_second_order_walk(t.op, t.arg0, t.blk, rv_group_end(t.op, out), NULL,
                                          NULL, NULL)
    return None if i < 0 else rv_kind_of(t.op[i]).name.decode()


def _leaf_slots(Var y not None, list leaves not None):
    """The slot on y's tape of each number `leaves` stands for, in order: one for a Var leaf,
    one per element (C order) for an Array leaf; -1 where it is not on that tape (f never read
    it). An int64 ndarray, for _hessian_products."""
    from revad._array import _leaf_binding  # not at import: revad._array cimports this module
    cdef Tape t = y.tape
    cdef uint64_t tid = 0 if t is None else t.id
    cdef Var x
    out = []
    for leaf in leaves:
        if type(leaf) is Var:
            x = <Var>leaf
            out.append(x.slot if t is not None and x.tape is None and x.bound == tid else -1)
        else:
            bound, first, size = _leaf_binding(leaf)
            if t is not None and bound == tid:
                out.append(np.arange(first, first + size, dtype=np.int64))
            else:
                out.append(np.full(size, -1, dtype=np.int64))
    if not out:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.atleast_1d(np.asarray(s, dtype=np.int64)) for s in out])


def _hessian_products(Var y not None, slots, V):
    """(gradient, H V): the gradient of y in the leaves at `slots` of y's tape, and the product
    of its Hessian there with each column of V, by one tangent sweep and one second-order sweep
    per column (f recorded once: the tape is read as it is, nothing re-evaluated).

    ``slots``: int64, one slot of a leaf of y's tape per variable (_leaf_slots), or -1 for a
    variable y does not read (its rows of both results are 0, as for a leaf above y's entry).
    ``V``: float64 of shape (len(slots), k), the directions. Returns the gradient, shape
    (len(slots),), and H V, shape (len(slots), k). y must be recorded (not a leaf) and its
    tape must have no entry that _second_order_blocker names. This is the entry point for
    whatever needs many products of one Hessian (revad.hessian: V the identity; a sparse
    Hessian: V its colours' seeds).
    """
    from revad._array import _check_constants  # not at import, as _leaf_slots'
    cdef Tape t = y.tape
    if t is None:
        raise ValueError("revad: _hessian_products needs a recorded result, not a leaf")
    # (No settle(): a sweep reads a lazy group's operands, never its values, which stay unwritten
    # where nothing but a sum read them: its rows' partials, first and second, do not read y,
    # tests/test_lazy.py.)
    t.check_readonly()
    _check_constants(y)
    return _second_products(t, t.val, <const double **>t.cptr, y.slot, slots, V)


cdef tuple _second_products(Tape t, const double *val, const double **cptr, int64_t out,
                            object slots, object V):
    """_hessian_products over the values `val` and constants `cptr` of t's entries: the tape's
    own (eager revad.hvp), or a replay's at new arguments (Trace.hvp, _array_trace.pxi), which
    the caller has checked as _hessian_products checks the tape's. `out` is the result's slot.
    Raises ValueError where a slot is not a leaf of t, or where t holds an entry with no
    second-order rule (_second_order_blocker)."""
    cdef int64_t[::1] sl = np.array(slots, dtype=np.int64).reshape(-1)  # (a copy: edited)
    cdef const double[:, ::1] dirs = np.ascontiguousarray(V, dtype=np.float64)
    cdef Py_ssize_t n = sl.shape[0], k = dirs.shape[1], r, j
    if dirs.shape[0] != n:
        raise ValueError(f"revad: V has {dirs.shape[0]} rows, but there are {n} slots")
    cdef int64_t top = rv_group_end(t.op, out), s, i
    for r in range(n):  # (C trusts them: indices are checked here)
        s = sl[r]
        if s < -1 or s >= t.n or (s >= 0 and t.op[s] != RV_LEAF):
            raise ValueError(f"revad: slot {s} (row {r}) is not a leaf of the tape")
        if s > top:  # bound after the result was computed (f read it later): not read by it
            sl[r] = -1
    grad = np.zeros(n)
    HV = np.zeros((n, k))
    cdef double[::1] gv = grad
    cdef double[:, ::1] hv = HV
    cdef int64_t cap, zero
    cdef double *buf = _take_second_buffers(top + 1, &cap, &zero)
    cdef double *tng = buf
    cdef double *adj = buf + cap
    cdef double *adt = buf + 2 * cap
    cdef const rv_mm_blk *h
    cdef bint clean = False  # (whether the buffers end zero: not after an error midway)
    try:
        if zero < top + 1:
            memset(adj + zero, 0, (top + 1 - zero) * sizeof(double))
            memset(adt + zero, 0, (top + 1 - zero) * sizeof(double))
            zero = top + 1
        _hold(t)
        try:
            # The tangent sweep writes every slot but the leaves', and the clean second-order
            # sweep zeroes every slot but the leaves': the walk zeroes those, before each
            # direction and after the last. The first walk also finds a kind with no
            # second-order rule (it stops there).
            i = rv_second_order_walk(t.op, t.arg0, t.blk, top, tng, adj, adt)
            if i >= 0:
                raise ValueError(f"revad: the tape holds a {rv_kind_of(t.op[i]).name.decode()!r} "
                                 "entry, which has no second-order rule in C; take the "
                                 "recorded route (revad.hvp does)")
            for j in range(k):
                for r in range(n):
                    if sl[r] >= 0:
                        tng[sl[r]] += dirs[r, j]
                with nogil:
                    rv_forward_tangent(t.op, t.arg0, t.arg1, val, t.cst, t.blk, cptr, tng,
                                       0, top)  # (no Python function on the tape: no stop)
                adj[out] = 1.0
                i = top
                while i >= 0:
                    with nogil:
                        i = rv_second_order(t.op, t.arg0, t.arg1, val, t.cst, t.blk, cptr,
                                            tng, adj, adt, i)
                    if i < 0:
                        break
                    # Stopped at a matrix product for BLAS (kind_table.h: MM's second).
                    h = <const rv_mm_blk *>(t.blk + t.arg0[i])
                    _mm_second_blas(t, val, cptr, tng, adj, adt, top + 1, h)
                    i = h.out - 1
                for r in range(n):
                    if sl[r] >= 0:
                        hv[r, j] = adt[sl[r]]
                        if j == 0:
                            gv[r] = adj[sl[r]]
                rv_second_order_walk(t.op, t.arg0, t.blk, top, tng, adj, adt)
            clean = True
        finally:
            _unhold(t)
    finally:
        _give_second_buffers(buf, cap, zero if clean else 0)
    return grad, HV


cdef int _mm_second_blas(Tape t, const double *vals, const double **cptr, double *tng,
                         double *adj, double *adt, int64_t n, const rv_mm_blk *h) except -1:
    """A matrix product's second-order step (group_products.h, rv_mm_second) through NumPy's
    BLAS: dA += G B^T, dA' += G' B^T + G B'^T; dB += A^T G, dB' += A^T G' + A'^T G (G the
    outputs' adjoints, ' a tangent; a constant operand has none), at the values `vals`."""
    cdef int64_t m = h.m, k = h.n, q = h.q, out = h.out
    val = np.asarray(<double[:n]><double *>vals)
    tv = np.asarray(<double[:n]>tng)
    av = np.asarray(<double[:n]>adj)
    hv = np.asarray(<double[:n]>adt)
    G = av[out:out + m * q].reshape(m, q)
    GT = hv[out:out + m * q].reshape(m, q)
    # (referenced constants were checked before the sweep: plain views of them here)
    A = np.asarray(_mm_operand(t, val, cptr, &h.a, m, k))
    B = np.asarray(_mm_operand(t, val, cptr, &h.b, k, q))
    TA = _mm_operand(t, tv, cptr, &h.a, m, k) if h.a.src < 0 else None
    TB = _mm_operand(t, tv, cptr, &h.b, k, q) if h.b.src < 0 else None
    # A zero passes nothing on (as in every sweep); BLAS would multiply it by an inf or nan of
    # the other factor into nan: then the loops run instead.
    if not all(np.isfinite(c).all() for c in (A, B, TA, TB) if c is not None):
        rv_mm_second(h, vals, cptr, tng, adj, adt)
        return 0
    if h.a.src < 0:  # (each a view of the buffers: += writes them)
        dA = _mm_operand(t, av, cptr, &h.a, m, k)
        dA += G @ B.T
        tA = _mm_operand(t, hv, cptr, &h.a, m, k)
        tA += GT @ B.T
        if TB is not None:
            tA += G @ TB.T
    if h.b.src < 0:
        dB = _mm_operand(t, av, cptr, &h.b, k, q)
        dB += A.T @ G
        tB = _mm_operand(t, hv, cptr, &h.b, k, q)
        tB += A.T @ GT
        if TA is not None:
            tB += TA.T @ G
    G[...] = 0.0  # (the sweep is clean)
    GT[...] = 0.0
    return 0
