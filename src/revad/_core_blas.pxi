# Matrix-product groups' backward through NumPy's BLAS.
# Part of revad._core (included textually by _core.pyx: one module, several files).

class _ReplayValues:
    """The refs entry of a trace's own values (activity.h, vsrc): an operand that reads it is
    a constant to the sweeps (data a trace takes as an input), read from the values the sweep
    runs on, t.val or a replay's (its cptr entry points there)."""

    def __repr__(self):
        return "<a replay's values>"


cdef object _OWN_VALUES = _ReplayValues()


class _InputValues:
    """The refs entry of a trace's data argument read in place (activity.h, rv_inputs_in_place):
    its operands read it as a constant at their offset within it. The tape's cptr entry points
    at the recorded values (its slots from `first`), a replay's at the caller's array."""

    def __init__(self, first, size):
        self.first, self.size = first, size

    def __repr__(self):
        return f"<a trace's argument read in place, {self.size} values>"


cdef object _mm_operand(Tape t, object col, const double **cptr, const rv_mm_operand *o,
                        int64_t rows, int64_t cols, dict at=None):
    """A group's operand (kinds.h, MM) as an ndarray: the constant kept for it, or a view of the
    column `col` (val or adj) over its slots, which are rows or columns of one contiguous block
    (an operand reading the values as a constant, _OWN_VALUES: a view of `col`, the values; a
    data argument read in place, _InputValues: a view of the array cptr points at). at: a
    replay's differentiated arguments read in place (first slot -> array, _Replay.vals_at),
    whose values are read there, not in `col`."""
    cdef int64_t size
    if o.src >= 0:
        k = t.refs[o.src]
        if type(k) is _InputValues:
            size = k.size
            col = np.asarray(<double[:size]><double *>cptr[o.src])
        elif k is not _OWN_VALUES:
            return k
    elif at:
        a = at.get(o.off)
        if a is not None:  # (the operand is the whole argument, in C order: _Plan.direct)
            return a.reshape(rows, cols)
    cdef int64_t a0 = o.off
    block = col[a0:a0 + rows * cols]
    if o.cs == 1:
        return block.reshape(rows, cols)
    return block.reshape(cols, rows).T


cdef int _add_product(object d, object P, object Q, object checked, const double *dp,
                      bint fresh) except -1:
    """d += P @ Q (or checked(out), a referenced constant's product); written straight into d
    where d is still all zero, as an operand's adjoints are before its first product in a clean
    sweep: no temporary to fault in (a fresh page faults and is zeroed), add and free. fresh: d
    is known to be all zero (a replay's, _Active.fresh); else it is tested, in C (NumPy's
    d.any() casts each element to bool first). dp: d's first element, d's memory when d is
    C-contiguous."""
    if d.flags.c_contiguous and (fresh or rv_all_zero(dp, d.size)):
        if checked is None:
            np.matmul(P, Q, out=d)
        else:
            checked(d)
    else:
        d += P @ Q if checked is None else checked(None)
    return 0


cdef int _product_into(Tape t, object adj, const double **cptr, const rv_mm_operand *o,
                       int64_t rows, int64_t cols, object P, object Q, object checked,
                       double *buf, bint fresh, dict vals_at, dict grads_at) except -1:
    """The adjoints of operand o (rows x cols) += P @ Q (_add_product); for a differentiated
    argument a replay reads in place (in vals_at: _Plan.direct, the product its only reader),
    written as a new array into grads_at instead."""
    if vals_at and o.off in vals_at:
        grads_at[o.off] = P @ Q if checked is None else checked(None)
    else:
        _add_product(_mm_operand(t, adj, cptr, o, rows, cols), P, Q, checked, buf + o.off,
                     fresh)
    return 0


cdef int _mm_backward_blas(Tape t, double *buf, int64_t n, const rv_mm_blk *h,
                           bint clean) except -1:
    return _mm_backward_blas_on(t, t.val, t.cptr, buf, n, h, clean, 0)


cdef int _mm_backward_blas_on(Tape t, double *valp, const double **cptr, double *buf, int64_t n,
                              const rv_mm_blk *h, bint clean, int fresh, dict vals_at=None,
                              dict grads_at=None) except -1:
    """dA += G @ B^T, dB += A^T @ G for the group at p: one BLAS call each, through NumPy.
    fresh: bit 1, A's adjoints are known to be all zero; bit 2, B's (a replay's, _Active.fresh).
    vals_at, grads_at: a replay's differentiated arguments read in place (_Replay): an operand
    that is one is read from vals_at, and its gradient is written to a new array in grads_at.

    A large constant the tape references instead of copying (revad._array._Watched) computes
    its product itself, block by block, checking each block's fingerprint as it reads it: the
    result is added only if the constant is unchanged since it was recorded, else it raises."""
    cdef int64_t m = h.m, k = h.n, q = h.q, out = h.out, j
    cdef const rv_mm_operand *ops[2]
    adj = np.asarray(<double[:n]>buf)
    val = np.asarray(<double[:n]>valp)  # (the tape's values, or a replay's)
    G = adj[out:out + m * q].reshape(m, q)
    A = _mm_operand(t, val, cptr, &h.a, m, k, vals_at)
    B = _mm_operand(t, val, cptr, &h.b, k, q, vals_at)
    # A zero adjoint passes nothing down, here as in every other entry; BLAS would multiply it
    # by an inf or nan of the other operand into nan. Only then the group's own loops run.
    if rv_any_zero(buf + out, m * q) and ((h.a.src < 0 and not np.isfinite(B).all())
                                          or (h.b.src < 0 and not np.isfinite(A).all())):
        for c in (A, B):
            if type(c) is not np.ndarray:
                c.check()  # a referenced constant: the loops read it unchecked
        rv_mm_backward(h, valp, cptr, buf, clean)
        ops[0], ops[1] = &h.a, &h.b
        for j in range(2):  # (a differentiated argument read in place: its gradient from buf)
            if ops[j].src < 0 and vals_at and ops[j].off in vals_at:
                d = np.empty(m * k if j == 0 else k * q)  # (the operand's slots: on the tape)
                rv_take_adjoints(<double *><size_t>d.__array_interface__["data"][0],
                                 buf + ops[j].off, d.size, True, True)
                grads_at[ops[j].off] = d
        return 0
    if h.a.src < 0:
        _product_into(t, adj, cptr, &h.a, m, k, G, B.T,
                      None if type(B) is np.ndarray
                      else lambda out: B.rmatmul_t_checked(G, out), buf, fresh & 1,
                      vals_at, grads_at)
    if h.b.src < 0:
        _product_into(t, adj, cptr, &h.b, k, q, A.T, G,
                      None if type(A) is np.ndarray
                      else lambda out: A.t_matmul_checked(G, out), buf, fresh & 2,
                      vals_at, grads_at)
    if clean:
        G[...] = 0.0
    return 0
