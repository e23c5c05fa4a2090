# Sparse derivatives' compiled side: a tape's sparsity patterns (sparsity.h), the colourings
# (colouring.h), and reverse sweeps from weighted seeds on one recording (Jacobian rows,
# Hessian-vector products). revad/_sparse.py drives them.
# Part of revad._core (included textually by _core.pyx: one module, several files).

cdef extern from "revad.h" nogil:
    ctypedef struct rv_cols:
        const uint8_t *op
        const int32_t *arg0
        const int32_t *arg1
        const double *val
        const double *cst
        const int64_t *blk
        const double *const *cptr
    ctypedef struct rv_pat:
        int mode
        uint8_t *live
        int64_t *off
        int32_t *len
        int32_t *pool
        int32_t n_in
        int oom
    enum:
        RV_PAT_LIVE
        RV_PAT_JAC
        RV_PAT_HESS
    int rv_pat_init(rv_pat *P, int mode, int64_t top, int32_t n_in, const int64_t *in_slot)
    void rv_pat_free(rv_pat *P)
    void rv_pattern_live(const rv_cols *t, rv_pat *P, int64_t top)
    void rv_pattern_forward(const rv_cols *t, rv_pat *P, int64_t top)
    int rv_pat_hessian_csr(rv_pat *P, int64_t **indptr, int32_t **indices)
    int rv_curve(int64_t op)
    int32_t rv_star_colouring(int64_t n, const int64_t *ptr, const int32_t *idx,
                              const int64_t *order, int32_t *colour, int64_t *forbid,
                              int32_t *count)
    int32_t rv_column_colouring(int64_t n, const int64_t *rptr, const int32_t *ridx,
                                const int64_t *cptr, const int32_t *cidx, const int64_t *order,
                                int32_t *colour, int64_t *forbid, int64_t cap)
    void rv_star_recover(int64_t n, const int64_t *ptr, const int32_t *idx,
                         const int32_t *colour, int64_t p, const double *HV, double *vals,
                         int32_t *cnt)


def _node_slots(Var ref not None, list nodes not None):
    """The slot on ref's tape of each Var in nodes (a leaf bound there: its slot), -1 for one
    that is not on it (a number, another tape's Var), as an int64 array."""
    cdef Tape t = ref.tape
    cdef Py_ssize_t k, n = len(nodes)
    cdef Var v
    out = np.full(n, -1, dtype=np.int64)
    cdef int64_t[::1] o = out
    for k in range(n):
        if type(nodes[k]) is Var:
            v = <Var>nodes[k]
            if t is not None and (v.tape is t or (v.tape is None and v.bound == t.id)):
                o[k] = v.slot
    return out


def _sparsity_pattern(Var ref not None, in_slots, out_slots, bint hessian):
    """The pattern of the outputs' derivatives (slots out_slots of ref's tape, -1: a constant)
    in the inputs (slots in_slots, -1: unused) as CSR (indptr int64, indices int32): the
    Jacobian's, one row per output, or (hessian) the Hessian's of the one output, n x n."""
    cdef Tape t = ref.tape
    cdef const int64_t[::1] ins = np.ascontiguousarray(in_slots, dtype=np.int64)
    cdef const int64_t[::1] outs = np.ascontiguousarray(out_slots, dtype=np.int64)
    cdef Py_ssize_t n = ins.shape[0], m = outs.shape[0], k
    cdef int64_t top = -1, s
    if n >= INT32_MAX:
        raise ValueError("revad: too many inputs for a sparsity pattern")
    if hessian and m != 1:
        raise ValueError("revad: a Hessian's pattern is of one output")
    for k in range(m):
        s = outs[k]
        if t is None or s >= t.n:
            raise ValueError(f"revad: output slot {s} is not on the tape")
        top = max(top, s)
    for k in range(n):
        if ins[k] >= (t.n if t is not None else 0):
            raise ValueError(f"revad: input slot {ins[k]} is not on the tape")
    if t is None or top < 0:  # constants only
        return (np.zeros((1 if hessian else m) * (n if hessian else 1) + 1, dtype=np.int64),
                np.zeros(0, dtype=np.int32))
    top = rv_group_end(t.op, top)
    cdef rv_cols c
    cdef rv_pat P
    cdef int ok
    cdef int64_t *ptr = NULL
    cdef int32_t *idx = NULL
    memset(&P, 0, sizeof(rv_pat))
    c.op, c.arg0, c.arg1, c.val = t.op, t.arg0, t.arg1, t.val
    c.cst, c.blk, c.cptr = t.cst, t.blk, t.cptr
    t.settle()
    _hold(t)
    try:
        ok = rv_pat_init(&P, RV_PAT_HESS if hessian else RV_PAT_JAC, top, <int32_t>n,
                         &ins[0] if n else NULL)
        if ok:
            for k in range(m):
                if outs[k] >= 0 and P.live[outs[k]] == 0:
                    P.live[outs[k]] = 1
            with nogil:
                P.mode = RV_PAT_LIVE
                rv_pattern_live(&c, &P, top)
                P.mode = RV_PAT_HESS if hessian else RV_PAT_JAC
                rv_pattern_forward(&c, &P, top)
                if hessian and not P.oom:
                    ok = rv_pat_hessian_csr(&P, &ptr, &idx)
            ok = ok and not P.oom
        if not ok:
            raise MemoryError("revad: no memory for the sparsity pattern")
        if hessian:
            nnz = ptr[n]
            indptr = np.asarray(<int64_t[:n + 1]>ptr).copy()
            indices = (np.asarray(<int32_t[:nnz]>idx).copy() if nnz
                       else np.zeros(0, dtype=np.int32))
            return indptr, indices
        indptr = np.zeros(m + 1, dtype=np.int64)
        for k in range(m):
            indptr[k + 1] = indptr[k] + (P.len[outs[k]] if outs[k] >= 0 else 0)
        indices = np.empty(indptr[m], dtype=np.int32)
        for k in range(m):
            if outs[k] >= 0 and P.len[outs[k]]:
                indices[indptr[k]:indptr[k + 1]] = np.asarray(
                    <int32_t[:P.len[outs[k]]]>(P.pool + P.off[outs[k]]))
        return indptr, indices
    finally:
        _unhold(t)
        free(ptr)
        free(idx)
        rv_pat_free(&P)


def _star_colouring(indptr, indices):
    """A star colouring (colouring.h) of a symmetric CSR pattern, vertices by degree, largest
    first: (colours as int32, their number)."""
    cdef const int64_t[::1] ptr = np.ascontiguousarray(indptr, dtype=np.int64)
    cdef const int32_t[::1] idx = np.ascontiguousarray(indices, dtype=np.int32)
    cdef Py_ssize_t n = ptr.shape[0] - 1
    order = np.argsort(-np.diff(np.asarray(ptr)), kind="stable").astype(np.int64)
    colour = np.full(n, -1, dtype=np.int32)
    forbid = np.empty(max(n, 1), dtype=np.int64)
    count = np.empty(max(n, 1), dtype=np.int32)
    cdef const int64_t[::1] o = order
    cdef int32_t[::1] col = colour
    cdef int64_t[::1] fb = forbid
    cdef int32_t[::1] cn = count
    cdef int32_t used = 0
    if n:
        with nogil:
            used = rv_star_colouring(n, &ptr[0], &idx[0] if idx.shape[0] else NULL, &o[0],
                                     &col[0], &fb[0], &cn[0])
    return colour, int(used)


def _star_recover(indptr, indices, colour, HV):
    """The values of a symmetric matrix at its CSR pattern from HV = H V, V the indicators of a
    star colouring (colouring.h, rv_star_recover)."""
    cdef const int64_t[::1] ptr = np.ascontiguousarray(indptr, dtype=np.int64)
    cdef const int32_t[::1] idx = np.ascontiguousarray(indices, dtype=np.int32)
    cdef const int32_t[::1] col = np.ascontiguousarray(colour, dtype=np.int32)
    cdef const double[:, ::1] hv = np.ascontiguousarray(HV, dtype=np.float64)
    cdef Py_ssize_t n = ptr.shape[0] - 1, p = hv.shape[1], k
    if col.shape[0] != n or hv.shape[0] != n or (n and ptr[n] != idx.shape[0]):
        raise ValueError("revad: a pattern, colouring and products that do not match")
    for k in range(idx.shape[0]):
        if idx[k] < 0 or idx[k] >= n:
            raise ValueError("revad: a pattern's column out of range")
    for k in range(n):
        if col[k] < 0 or col[k] >= p:
            raise ValueError("revad: a colour out of range")
    vals = np.empty(idx.shape[0], dtype=np.float64)
    cnt = np.zeros(max(p, 1), dtype=np.int32)
    cdef double[::1] v = vals
    cdef int32_t[::1] c = cnt
    if n and idx.shape[0]:
        with nogil:
            rv_star_recover(n, &ptr[0], &idx[0], &col[0], p, &hv[0, 0], &v[0], &c[0])
    return vals


def _column_colouring(indptr, indices, Py_ssize_t ncols, int64_t cap=-1):
    """A distance-2 colouring of the columns of a CSR pattern (columns that share a row differ),
    natural order: (colours as int32, their number), or (None, -1) past `cap` colours."""
    cdef const int64_t[::1] rptr = np.ascontiguousarray(indptr, dtype=np.int64)
    cdef const int32_t[::1] ridx = np.ascontiguousarray(indices, dtype=np.int32)
    cdef Py_ssize_t m = rptr.shape[0] - 1
    # the transpose (CSC), by a stable sort of the entries by column
    rows = np.repeat(np.arange(m, dtype=np.int32), np.diff(np.asarray(rptr)))
    by_col = np.argsort(np.asarray(ridx), kind="stable")
    cdef const int32_t[::1] cidx = np.ascontiguousarray(rows[by_col], dtype=np.int32)
    cptr_a = np.zeros(ncols + 1, dtype=np.int64)
    np.cumsum(np.bincount(np.asarray(ridx), minlength=ncols), out=cptr_a[1:])
    cdef const int64_t[::1] cptr = cptr_a
    order = np.arange(ncols, dtype=np.int64)
    colour = np.full(ncols, -1, dtype=np.int32)
    forbid = np.empty(max(ncols, 1), dtype=np.int64)
    cdef const int64_t[::1] o = order
    cdef int32_t[::1] col = colour
    cdef int64_t[::1] fb = forbid
    cdef int32_t used = 0
    if cap < 0:
        cap = ncols
    if ncols:
        with nogil:
            used = rv_column_colouring(ncols, &rptr[0], &ridx[0] if ridx.shape[0] else NULL,
                                       &cptr[0], &cidx[0] if cidx.shape[0] else NULL, &o[0],
                                       &col[0], &fb[0], cap)
    if used < 0:
        return None, -1
    return colour, int(used)


def _curvatures():
    """Testing hook: {row name: its curvature bits (sparsity.h)}, the VC and CV variants' too
    for binary rows as (VV, VC, CV)."""
    cdef int k
    out = {}
    for k in range(rv_n_op_table):
        info = rv_op_table[k]
        if info.arity == 1:
            out[info.name.decode()] = rv_curve(info.code)
        elif info.arity == 2:
            out[info.name.decode()] = (rv_curve(info.code), rv_curve(info.code + 1),
                                       rv_curve(info.code + 2))
    return out


def _reverse_sweeps(Var ref not None, seed_slots, weights, read_slots):
    """For each row w of weights (k, m): one reverse sweep on ref's tape seeded with adjoint
    w[j] at slot seed_slots[j] (-1: none), reading the adjoints at read_slots (-1: zero).
    Returns (k, len(read_slots)): rows of W J, J the derivative of the seeded slots in the
    read ones. The sweeps keep their intermediates (not clean: a seed may sit on any slot)."""
    cdef Tape t = ref.tape
    cdef const int64_t[::1] seeds = np.ascontiguousarray(seed_slots, dtype=np.int64)
    cdef const int64_t[::1] reads = np.ascontiguousarray(read_slots, dtype=np.int64)
    cdef const double[:, ::1] W = np.ascontiguousarray(weights, dtype=np.float64)
    cdef Py_ssize_t k = W.shape[0], m = seeds.shape[0], r = reads.shape[0], i, j
    if W.shape[1] != m:
        raise ValueError(f"revad: weights have {W.shape[1]} columns for {m} seeds")
    out = np.zeros((k, r), dtype=np.float64)
    if t is None:
        return out
    cdef double[:, ::1] o = out
    cdef int64_t top = -1, n = t.n
    for j in range(m):
        if seeds[j] >= n:
            raise ValueError(f"revad: seed slot {seeds[j]} is not on the tape")
        top = max(top, seeds[j])
    for j in range(r):
        if reads[j] >= n:
            raise ValueError(f"revad: read slot {reads[j]} is not on the tape")
    if top < 0:
        return out
    top = rv_group_end(t.op, top)
    t.check_readonly()
    cdef double *buf = <double *>calloc(max(n, 1), sizeof(double))
    if buf == NULL:
        raise MemoryError("revad: no memory for the adjoints of the reverse sweeps")
    _hold(t)
    try:
        for i in range(k):
            memset(buf, 0, (top + 1) * sizeof(double))
            for j in range(m):
                if seeds[j] >= 0:
                    buf[seeds[j]] += W[i, j]
            t._reverse(buf, n, top, False)
            for j in range(r):
                if reads[j] >= 0:
                    o[i, j] = buf[reads[j]]
    finally:
        _unhold(t)
        free(buf)
    return out
