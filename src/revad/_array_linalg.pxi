# Dot and matrix products, constant matrices (copied, or referenced and fingerprinted), stacks of
# matrices and einsum.
# Part of revad._array (included textually by _array.pyx: one module, several files).

# ---------------------------------------------------------------------------------------------
# Dot products: DOTC (Array with a constant) and DOT (Array with Array) block entries.

cdef bint _referencable(object c):
    """Whether the tape may keep constant ndarray c itself instead of a copy: float64, strides
    whole doubles, and read-only all the way down (the zero-copy opt-in)."""
    return (c.dtype == np.float64 and all([s % 8 == 0 for s in c.strides])
            and _readonly_chain(c))


cdef tuple _keep_const(Tape t, object c, bint rows):
    """Store constant matrix c (k, n) for the tape; returns (cptr index, row step, element step)
    in doubles, so that row r, element j is at cptr[i][r*row + j*elem]. It is copied (rows
    contiguous) unless it is read-only all the way down, which is the zero-copy opt-in."""
    if _referencable(c):
        return t.push_readonly(c), c.strides[0] // 8, c.strides[1] // 8
    c = np.array(c, dtype=np.float64, order="C", copy=True)
    return t.push_cptr(c), c.strides[0] // 8, c.strides[1] // 8


cdef Array _emit_dots(Tape t, int code, object values, object starts0, int64_t stride0,
                      object starts1, int64_t stride1, int64_t count, int64_t ci,
                      object coffs, int64_t cstride):
    """One DOTC (starts1 None) or DOT entry per element of starts0, with the given values."""
    starts0 = np.asarray(starts0, dtype=np.int64, order="C")
    values = np.asarray(values, dtype=np.float64, order="C")
    cdef int64_t n = starts0.size, k, i0, b, w = RV_BLK_DOTC if code == RV_DOTC else RV_BLK_DOT
    if n == 0:
        return _fresh(t, t.n, starts0.shape)
    other = np.asarray(coffs if code == RV_DOTC else starts1, dtype=np.int64, order="C")
    cdef const int64_t *p0 = _iptr(starts0)
    cdef const int64_t *p1 = _iptr(other)
    cdef const double *pv = _dptr(values)
    cdef rv_dotc_blk *hc
    cdef rv_dot_blk *hd
    t.room(n, w * n)  # (both at once: see Tape.room)
    b = t.push_blk(w * n)
    i0 = t.n
    for k in range(n):
        if code == RV_DOTC:
            hc = <rv_dotc_blk *>(t.blk + b + w * k)
            hc.start, hc.stride, hc.count = p0[k], stride0, count
            hc.c, hc.coff, hc.cstride = ci, p1[k], cstride
        else:
            hd = <rv_dot_blk *>(t.blk + b + w * k)
            hd.start0, hd.stride0, hd.count = p0[k], stride0, count
            hd.start1, hd.stride1 = p1[k], stride1
        t.op[i0 + k] = <uint8_t>code
        t.arg0[i0 + k] = <int32_t>(b + w * k)
        t.arg1[i0 + k] = -1
        t.val[i0 + k] = pv[k]
    t.n = i0 + n
    return _fresh(t, i0, starts0.shape)


# A product with more than one output is one matrix-product group (group_products.h, MM) whose
# backward is one BLAS call per operand once it has at least _mm_blas_work multiply-adds (below
# that the group's C loops beat NumPy's call overhead). A single output (a dot of two vectors)
# stays one DOT or DOTC entry. _mm_groups off records DOTC/DOT entries throughout (the reference
# path).
cdef bint _mm_groups = True
cdef int64_t _mm_blas_work = 4096


def _matmul_config(groups=None, blas_work=None, watch_block=None, watch_chunks=None):
    """Testing hook: (groups, blas_work, watch_block, watch_chunks) as they were; sets those
    given."""
    global _mm_groups, _mm_blas_work, _WATCH_BLOCK_BYTES, _WATCH_CHUNKS
    old = (_mm_groups, _mm_blas_work, _WATCH_BLOCK_BYTES, _WATCH_CHUNKS)
    if groups is not None:
        _mm_groups = groups
    if blas_work is not None:
        _mm_blas_work = blas_work
    if watch_block is not None:
        _WATCH_BLOCK_BYTES = watch_block
    if watch_chunks is not None:
        _WATCH_CHUNKS = watch_chunks
    return old


cdef Array _mm_block(Tape t, Array a, rv_mm_operand *o):
    """a (2-d) as a group operand: rows or columns of one contiguous block of slots (gathered
    into one if it is neither); writes its descriptor (kinds.h, MM) to o and returns it."""
    rows, cols = a.shape
    if (not _is_contiguous(a.shape, a.strides)
            and not _is_contiguous((cols, rows), (a.strides[1], a.strides[0]))):
        a = _emit_gather(t, _slot_map(_slot0(a), a.shape, a.strides), None)
    o.src = RV_SRC_SLOTS
    o.off = _slot0(a)
    if _is_contiguous(a.shape, a.strides):
        o.rs, o.cs = cols, 1
    else:
        o.rs, o.cs = 1, rows
    return a


cdef Array _emit_mm(Tape t, object x, object y, Array a, Array b):
    """One matrix-product group for x @ y (a, b: x, y as views on t, None for a constant): m*q
    new slots, the last one carrying it. The product is computed straight into the tape's val
    column (no temporary to fault in, nothing to copy)."""
    cdef rv_mm_blk h  # built here: a gather for an operand may move blk
    cdef int64_t m, n, q, size, i0, bi
    kx = ky = None
    if a is not None:
        a = _mm_block(t, a, &h.a)
        m, n = a.shape
    else:
        kx = _keep_matrix(t, x, &h.a)
        m, n = x.shape
    if b is not None:
        b = _mm_block(t, b, &h.b)
        q = b.shape[1]
    else:
        ky = _keep_matrix(t, y, &h.b)
        q = y.shape[1]
    size = m * q
    bi = t.push_blk(RV_BLK_MM)
    t.reserve(size)  # the gathers (if any) are done: views of val stay valid from here on
    i0 = t.n
    h.out, h.m, h.n, h.q = i0, m, n, q
    # A referenced constant is checked as BLAS reads it: its group always takes the BLAS path.
    h.blas = (m * n * q >= _mm_blas_work or type(kx) is _Watched or type(ky) is _Watched)
    (<rv_mm_blk *>(t.blk + bi))[0] = h
    out = np.ndarray((m, q), np.float64, <double[:size]>(t.val + i0))
    xv = _col_view(t.val, a) if a is not None else kx
    yv = _col_view(t.val, b) if b is not None else ky
    # The slots are the group's before BLAS lets go of the GIL: another thread's entries land
    # after them, and its growth of the tape waits (_hold).
    _close_group(t, i0, size, RV_MM, bi)
    _hold(t)
    try:
        if type(kx) is _Watched:
            _watched_product(kx, yv, True, False, out, False)
        elif type(ky) is _Watched:
            _watched_product(ky, xv, False, False, out, False)
        elif h.blas:
            np.matmul(xv, yv, out=out)
        else:  # (a replay's loop: its bits)
            rv_mm_values(t.blk + bi, t.val, t.cptr)
    finally:
        _unhold(t)
    return _fresh(t, i0, (m, q))


# Constant matrices in a group. A small one is copied: changing the user's array after recording
# cannot change the gradient. A read-only one (all the way down) is referenced: nothing can change
# it. A large writable one (1 MiB or more: a data matrix, read by every training step) is
# referenced too -- a copy, or a comparison with an earlier copy, would read it a second time in
# the forward pass -- and fingerprinted instead: the forward product multiplies it block of rows
# by block of rows (about 2 MiB each) and hashes each block while it is in cache; each backward
# product does the same and adds its result to the adjoints only if every block is unchanged. A
# changed one raises (as PyTorch does for a tensor modified in place after it was saved for
# backward). A block is about 2 MiB of rows: small enough to stay in cache while it is multiplied
# and hashed, and below the size from which OpenBLAS threads a block's product (which loses
# several times over when another process holds a core); large enough that a matrix of a few MB
# takes few BLAS calls. A matrix-vector product (X @ w, X.T @ g) does not call BLAS:
# fingerprint.h's rv_fp_matvec multiplies and hashes each stripe from one load, so that the
# hash's arithmetic hides in the time the memory takes.
cdef int64_t _WATCH_MIN_BYTES = 1 << 20
cdef int64_t _WATCH_BLOCK_BYTES = 1 << 21


class _Watched(np.ndarray):
    """A large writable constant the tape references instead of copying (a view of the user's
    array, same memory), with the fingerprints of its blocks as the forward product read them.
    The backward sweep (``_mm_backward_blas``) takes its products from here, checked."""

    def t_matmul_checked(self, G, out=None):
        """self.T @ G (into out, C order, if given), raising if self changed since it was
        recorded."""
        return _watched_product(self, G, True, True, out, True)

    def rmatmul_t_checked(self, G, out=None):
        """G @ self.T (into out, C order, if given), raising if self changed since it was
        recorded."""
        return _watched_product(self, G, False, True, out, True)

    def matmul_checked(self, Z, out=None):
        """self @ Z (into out, C order, if given), raising if self changed since it was
        recorded: a replay's forward product (_core_replay.pxi), one pass over self."""
        return _watched_product(self, Z, True, False, out, True)

    def rmatmul_checked(self, Z, out=None):
        """Z @ self (into out, C order, if given), raising if self changed since it was
        recorded."""
        return _watched_product(self, Z, False, False, out, True)

    def check(self):
        """Raise if self changed since it was recorded (for readers of the tape other than BLAS)."""
        _watched_product(self, None, True, False, None, True)


cdef bint _watchable(object c):
    return (c.nbytes >= _WATCH_MIN_BYTES and c.dtype == np.float64
            and (c.flags.c_contiguous or c.flags.f_contiguous))


cdef object _keep_matrix(Tape t, object c, rv_mm_operand *o):
    """Constant matrix c for a group, as the tape keeps it (see above); writes its descriptor
    (kinds.h, MM) to o and returns what the tape holds."""
    cdef bint readonly = _referencable(c)
    if readonly:
        k = np.asarray(c)  # a plain ndarray (not a subclass such as memmap) over the same memory
    elif _watchable(c):
        k = c.view(_Watched)
        m = c if c.flags.c_contiguous else c.T
        k._rv_m = np.asarray(m)         # the memory in C order: its rows are the hashed blocks
        k._rv_trans = m is not c        # c is m.T
        k._rv_rows = max(1, _WATCH_BLOCK_BYTES // max(1, m.shape[1] * 8))
        k._rv_digests = np.zeros(-(-m.shape[0] // k._rv_rows), dtype=np.uint64)
        k._rv_shape = c.shape
    else:
        k = np.array(c, dtype=np.float64, order="C", copy=True)
    o.src = t.push_readonly(k) if readonly else t.push_cptr(k)
    o.off = 0
    o.rs = k.strides[0] // 8
    o.cs = k.strides[1] // 8
    return k


cdef object _watched_product(object w, object Z, bint left, bint transpose, object out,
                             bint verify):
    """op(w) @ Z (left) or Z @ op(w), op: transposed or not; into out (or a new array), block of
    rows of w's memory by block: each block is multiplied, then hashed (seeded with its index)
    while it is in cache. verify: compare each hash with the recorded one (raise on a mismatch);
    else record it. Z None: only hash (check or record)."""
    cdef _Blocks run = _Blocks.__new__(_Blocks)
    M = w._rv_m
    run.M, run.Z, run.verify = M, Z, verify
    run.left = left
    run.te = w._rv_trans != transpose           # op(w) is M.T
    run.direct = left != run.te                 # blocks of M rows split the output
    run.rows, run.nrows, run.ncols = w._rv_rows, M.shape[0], M.shape[1]
    run.rb = run.ncols * 8                      # M is C-order float64: rows are contiguous
    run.nblk = (run.nrows + run.rows - 1) // run.rows  # (C division: no -(-a // b))
    run.base = <const char *>_dptr(M)
    run.digests = w._rv_digests
    run.dig = <uint64_t *>_dptr(run.digests)
    run.bad = []
    if Z is not None and out is None:
        if left:
            oshape = (M.shape[1] if run.te else run.nrows, Z.shape[1])
        else:
            oshape = (Z.shape[0], run.nrows if run.te else M.shape[1])
        out = np.empty(oshape)
    run.out = out
    # A product with a thin Z (a matrix-vector product, say), or a hash alone, streams w from
    # memory doing little arithmetic: one core's bandwidth is then the limit, and BLAS on a 2 MiB
    # block stays on one thread. Its blocks are then shared with the helper threads (_core,
    # _share), in chunks of consecutive blocks that each thread claims when it is free. Where
    # the blocks' products are summed (not direct), each chunk sums its own, into parts, and the
    # chunks are added in order after: the same bits on any number of threads.
    cdef int64_t nchunks = 1, c
    if Z is None or (Z.shape[1] if left else Z.shape[0]) <= _WATCH_THIN:
        nchunks = max(1, min(run.nblk, _WATCH_CHUNKS))
        if Z is not None and not run.direct:
            nchunks = max(1, min(nchunks, _WATCH_PARTS_BYTES // max(1, out.nbytes)))
    run.per_chunk = max(1, (run.nblk + nchunks - 1) // nchunks)
    nchunks = max(1, (run.nblk + run.per_chunk - 1) // run.per_chunk)
    if Z is not None and not run.direct:
        run.parts = out[None] if nchunks == 1 else np.empty((nchunks,) + out.shape)
    # A matrix-vector product (Z one column) over whole 64-byte stripes: loaded once, multiplied
    # and hashed together (fingerprint.h, rv_fp_matvec), where AVX2 and FMA run it.
    run.fused = (Z is not None and left and Z.shape[1] == 1 and run.ncols % 8 == 0
                 and M.flags.c_contiguous and out.flags.c_contiguous and _fused_matvec)
    if run.fused:
        run.zv = np.ascontiguousarray(Z[:, 0], dtype=np.float64)
        run.zp = <const double *>_dptr(run.zv)
        run.yp = <double *>_dptr(out if run.direct else run.parts)
    locks = _share(run.work) if nchunks > 1 else []
    try:
        run.work()
    finally:
        for done in locks:
            done.acquire()
    if run.bad:
        raise run.bad[0]
    if run.failed:
        raise RuntimeError(
            f"revad: a constant array used by this computation was modified after it was "
            f"recorded (shape {w._rv_shape}, dtype float64); the gradient would be wrong. "
            f"Copy it before modifying it, or record again")
    if nchunks > 1 and Z is not None and not run.direct:
        parts = run.parts
        out[...] = parts[0]
        for c in range(1, nchunks):
            out += parts[c]
    return out


cdef bint _fused_matvec = rv_fp_fused_available()
cdef int64_t _WATCH_THIN = 16
cdef int64_t _WATCH_CHUNKS = 16              # enough that a slowed thread takes fewer
cdef int64_t _WATCH_PARTS_BYTES = 32 << 20   # at most this much for the chunks' sums


@cython.final
cdef class _Blocks:
    """One fingerprinted product (see _watched_product): its blocks of rows of M, in chunks of
    per_chunk consecutive blocks that threads claim one at a time (engine_common.h, rv_claim)."""
    cdef object M, Z, out, digests, zv, parts
    cdef list bad                  # an exception from a thread
    cdef bint left, te, direct, verify, fused
    cdef int failed                # a block's hash did not match: every thread stops
    cdef int64_t rows, nrows, rb, ncols, nblk, per_chunk, next
    cdef const char *base
    cdef uint64_t *dig
    cdef const double *zp          # fused: the vector
    cdef double *yp                # fused: out (direct) or parts (a chunk's sum each)

    cdef int64_t claim(self) noexcept nogil:
        """The next chunk for this thread, or -1: none is left, or a block did not match."""
        if self.failed:
            return -1
        cdef int64_t c = rv_claim(&self.next)
        return c if c * self.per_chunk < self.nblk else -1

    cdef bint digest(self, int64_t blk, uint64_t h) noexcept nogil:
        """Record block blk's hash h, or check it against the recorded one (False, and every
        thread stops, on a mismatch)."""
        if not self.verify:
            self.dig[blk] = h
        elif h != self.dig[blk]:
            self.failed = 1
            return False
        return True

    cdef void fused_chunks(self) noexcept nogil:
        """The fused product (fingerprint.h, rv_fp_matvec), chunk by claimed chunk."""
        cdef int64_t c, blk, last, r0, r1
        cdef uint64_t h
        cdef double *y = NULL
        while True:
            c = self.claim()
            if c < 0:
                return
            blk = c * self.per_chunk
            last = min(self.nblk, blk + self.per_chunk)
            if not self.direct:
                y = self.yp + c * self.ncols
                memset(y, 0, self.ncols * sizeof(double))
            while blk < last:
                r0 = blk * self.rows
                r1 = min(self.nrows, r0 + self.rows)
                if self.direct:  # out[r0:r1] = M[r0:r1] @ z
                    h = rv_fp_matvec(<const double *>(self.base + r0 * self.rb), r1 - r0,
                                     self.ncols, self.zp, self.yp + r0, 0, <uint64_t>blk)
                else:            # part += M[r0:r1].T @ z[r0:r1]
                    h = rv_fp_matvec(<const double *>(self.base + r0 * self.rb), r1 - r0,
                                     self.ncols, self.zp + r0, y, 1, <uint64_t>blk)
                if not self.digest(blk, h):
                    return
                blk += 1

    def work(self):
        """Claim chunks until none is left: multiply each block (into out, or summed into its
        chunk's part), hash it."""
        cdef int64_t c, blk, last, r0, r1
        cdef uint64_t h = 0
        if self.fused:
            with nogil:
                self.fused_chunks()
            return
        M, Z, out = self.M, self.Z, self.out
        scratch = None
        try:
            while True:
                c = self.claim()
                if c < 0:
                    return
                blk = c * self.per_chunk
                last = min(self.nblk, blk + self.per_chunk)
                acc = None if self.direct or Z is None else self.parts[c]
                while blk < last:
                    r0 = blk * self.rows
                    r1 = min(self.nrows, r0 + self.rows)
                    # np.dot, not np.matmul: NumPy runs two threads' matmul calls one at a time
                    Mb = M[r0:r1]
                    if Z is not None and self.direct:
                        res = out[r0:r1] if self.left else out[:, r0:r1]
                        X1, X2 = (Mb, Z) if self.left else (Z, Mb.T)
                        if res.flags.c_contiguous:
                            np.dot(X1, X2, out=res)
                        else:
                            res[...] = np.dot(X1, X2)
                    elif Z is not None:
                        X1, X2 = (Mb.T, Z[r0:r1]) if self.left else (Z[:, r0:r1], Mb)
                        if blk == c * self.per_chunk:
                            np.dot(X1, X2, out=acc)
                        else:
                            if scratch is None:
                                scratch = np.empty_like(acc)
                            np.dot(X1, X2, out=scratch)
                            acc += scratch
                    # Hashed after the product: BLAS has just brought the block into cache.
                    with nogil:
                        h = rv_fp_rows(self.base + r0 * self.rb, r1 - r0, <size_t>self.rb,
                                       <uint64_t>blk)
                    if not self.digest(blk, h):
                        return
                    blk += 1
        except BaseException as e:
            self.bad.append(e)
            self.failed = 1


def _check_constants(Var y not None):
    """Raise if a large constant referenced by y's tape changed since it was recorded: for a
    sweep that reads constants other than through BLAS (forward mode)."""
    if y.tape is not None:
        for c in y.tape.refs:
            if type(c) is _Watched:
                c.check()


def _matvec_hashed(M, v, bint axpy, seed=0):
    """Testing hook: (fingerprint, product) from fingerprint.h's rv_fp_matvec over C-order M
    (columns a multiple of 8): M @ v, or M.T @ v with axpy; None where the CPU cannot run it."""
    if not _fused_matvec:
        return None
    M = np.ascontiguousarray(M, dtype=np.float64)
    v = np.ascontiguousarray(v, dtype=np.float64)
    if M.ndim != 2 or M.shape[1] % 8 or v.shape != (M.shape[1 - axpy],):
        raise ValueError("revad: _matvec_hashed needs C-order M with a multiple of 8 columns")
    y = np.zeros(M.shape[axpy])
    h = rv_fp_matvec(<const double *>_dptr(M), M.shape[0], M.shape[1], <const double *>_dptr(v),
                     <double *>_dptr(y), axpy, <uint64_t>seed)
    return int(h), y


def _fingerprint(a, seed=0):
    """The 64-bit fingerprint (fingerprint.h) of a C-contiguous array's bytes (for tests)."""
    a = np.ascontiguousarray(a)
    return int(rv_fingerprint(<const void *><size_t>a.__array_interface__["data"][0],
                              <size_t>a.nbytes, <uint64_t>seed))


def _block_digest(M, seed=0):
    """The fingerprint of a block of rows (fingerprint.h, rv_fp_rows), as the tape records it
    for a block of a large constant: a 2-d array's rows (for tests)."""
    M = np.ascontiguousarray(M)
    if M.ndim != 2:
        raise ValueError("revad: _block_digest needs a 2-d array")
    return int(rv_fp_rows(<const void *><size_t>M.__array_interface__["data"][0], M.shape[0],
                          <size_t>(M.shape[1] * M.itemsize), <uint64_t>seed))


cdef object _matmul2(object x, object y, Tape t):
    """(m, n) @ (n, p) with at least one Array operand, both 2-d."""
    cdef Array a = _as_view(x, t)
    cdef Array b = _as_view(y, t)
    sx = a.shape if a is not None else x.shape
    sy = b.shape if b is not None else y.shape
    m, n = sx
    n2, p = sy
    if n != n2:
        raise ValueError(f"revad: matmul shapes {sx} and {sy} do not align ({n} != {n2})")
    # A single output stays one DOT/DOTC entry, unless a large constant would have to be copied
    # for it: a group references it instead.
    if _mm_groups and (m * p > 1 or (a is None and _watchable(x)) or (b is None and _watchable(y))):
        return _emit_mm(t, x, y, a, b)
    _hold(t)
    try:
        values = np.dot(_peek(a) if a is not None else x, _peek(b) if b is not None else y)
    finally:
        _unhold(t)
    row_index = np.arange(m, dtype=np.int64)[:, None]
    J = np.arange(p, dtype=np.int64)[None, :]
    # Each row of x and column of y is one strided line of slots. A line that several outputs
    # read and that is not contiguous is first gathered contiguous (COPY entries, O(input)),
    # so that the backward's axpy over it streams through memory instead of striding.
    cdef int64_t row_first = 0, row_step = 0, row_stride = 0
    cdef int64_t col_first = 0, col_step = 0, col_stride = 0
    if a is not None:
        if a.strides[1] != 1 and n > 1 and p > 1:
            a = _emit_gather(t, _slot_map(_slot0(a), (m, n), a.strides), None)
        row_first, row_step, row_stride = _slot0(a), a.strides[0], a.strides[1]
    if b is not None:
        if b.strides[0] != 1 and n > 1 and m > 1:
            b = _emit_gather(t, _slot_map(_slot0(b), (p, n), (b.strides[1], b.strides[0])), None)
            col_first, col_step, col_stride = _slot0(b), n, 1
        else:
            col_first, col_step, col_stride = _slot0(b), b.strides[1], b.strides[0]
    if a is not None and b is not None:
        s0 = np.broadcast_to(row_first + row_index * row_step, (m, p))
        s1 = np.broadcast_to(col_first + J * col_step, (m, p))
        return _emit_dots(t, RV_DOT, values, s0, row_stride, s1, col_stride, n, 0, None, 0)
    if a is not None:  # Array rows . constant columns: store y transposed, columns as rows
        ci, row, elem = _keep_const(t, np.asarray(y).T, True)
        s0 = np.broadcast_to(row_first + row_index * row_step, (m, p))
        co = np.broadcast_to(J * row, (m, p))
        return _emit_dots(t, RV_DOTC, values, s0, row_stride, None, 0, n, ci, co, elem)
    ci, row, elem = _keep_const(t, np.asarray(x), True)
    s0 = np.broadcast_to(col_first + J * col_step, (m, p))
    co = np.broadcast_to(row_index * row, (m, p))
    return _emit_dots(t, RV_DOTC, values, s0, col_stride, None, 0, n, ci, co, elem)


cdef object _operand(object o):
    """An Array, Var, or a float64 ndarray constant for dot products."""
    if type(o) is Array or type(o) is Var:
        return o
    c = _as_const(o)
    if c is NotImplemented:
        raise TypeError(f"revad: cannot take a dot product with a {type(o).__name__}")
    return np.asarray(c, dtype=np.float64)


cdef tuple _shape_of(object o):
    return (<Array>o).shape if type(o) is Array else (() if type(o) is Var else o.shape)


cdef object _matmul(object x, object y):
    x, y = _operand(x), _operand(y)
    sx, sy = _shape_of(x), _shape_of(y)
    if len(sx) == 0 or len(sy) == 0:
        raise ValueError(f"revad: matmul: input operand does not have enough dimensions "
                         f"(shapes {sx} and {sy})")
    if len(sx) > 2 or len(sy) > 2:
        return _matmul_stack(x, y, sx, sy)
    return _dot(x, y)


cdef object _dot(object x, object y):
    """numpy.dot for 0-d, 1-d and 2-d operands."""
    x, y = _operand(x), _operand(y)
    sx, sy = _shape_of(x), _shape_of(y)
    if len(sx) == 0 or len(sy) == 0:
        return _binop(RV_MUL, x, y)
    if len(sx) > 2 or len(sy) > 2:
        # NumPy's rule: a's last axis against b's second-to-last (its only one if 1-d).
        return _np_tensordot(x, y, ([len(sx) - 1], [max(len(sy) - 2, 0)]))
    if sx[-1] != sy[0]:
        raise ValueError(f"revad: shapes {sx} and {sy} not aligned: {sx[-1]} (dim {len(sx) - 1}) "
                         f"!= {sy[0]} (dim 0)")
    cdef Tape t = _tape_for((x, y))
    if t is None:
        return _const_leaf(np.dot(np.asarray(_values(x)), np.asarray(_values(y))))
    x2 = x if len(sx) == 2 else (_reshape(_on(x, t), (1, sx[0])) if type(x) is Array
                                 else x.reshape(1, -1))
    y2 = y if len(sy) == 2 else (_reshape(_on(y, t), (sy[0], 1)) if type(y) is Array
                                 else y.reshape(-1, 1))
    r = _matmul2(x2, y2, t)
    out_shape = sx[:-1] + sy[1:]
    return _reshape(r, out_shape) if r.shape != out_shape else r


cdef object _outer(object x, object y):
    x = _ravel_any(x)
    y = _ravel_any(y)
    return _binop(RV_MUL, _index_any(x, (slice(None), None)), _index_any(y, (None, slice(None))))


cdef object _ravel_any(object o):
    if type(o) is Array:
        return _reshape(o, (-1,))
    if type(o) is Var:
        return _stack_like([o], 0)
    return np.ravel(o)


cdef object _index_any(object o, tuple key):
    return o[key]


# ---------------------------------------------------------------------------------------------
# Stacks of matrices (matmul of more than 2 dimensions) and einsum, built on the 2-d products.

cdef object _reshape_any(object o, tuple shape):
    return _reshape(<Array>o, shape) if type(o) is Array else np.reshape(o, shape)


cdef object _matmul_stack(object x, object y, tuple sx, tuple sy):
    """NumPy's matmul of stacks: (..., m, n) @ (..., n, p), the leading dimensions broadcast
    (a 1-d operand is a row or a column, as in NumPy); one matrix product per matrix."""
    x0, y0 = sx, sy
    if len(sx) == 1:
        x, sx = _reshape_any(x, (1,) + sx), (1,) + sx
    if len(sy) == 1:
        y, sy = _reshape_any(y, sy + (1,)), sy + (1,)
    if sx[-1] != sy[-2]:
        raise ValueError(f"revad: matmul: shapes {x0} and {y0} do not align ({sx[-1]} != {sy[-2]})")
    try:
        batch = _broadcast(sx[:-2], sy[:-2])  # (NumPy's broadcast_shapes stops at 32 dimensions)
    except ValueError:
        raise ValueError(f"revad: matmul: the stacks of shapes {x0} and {y0} "
                         "do not broadcast") from None
    m, p = sx[-2], sy[-1]
    out_shape = batch + (m, p)
    cdef Tape t = _tape_for((x, y))
    if t is None:
        r = _const_leaf(np.matmul(np.asarray(_values(x)), np.asarray(_values(y))))
    else:
        xs = (_broadcast_to(_on(x, t), batch + sx[-2:]) if type(x) is Array
              else np.broadcast_to(x, batch + sx[-2:]))
        ys = (_broadcast_to(_on(y, t), batch + sy[-2:]) if type(y) is Array
              else np.broadcast_to(y, batch + sy[-2:]))
        parts = [_as_array_on(_matmul2(xs[idx], ys[idx], t), t) for idx in np.ndindex(*batch)]
        r = _stacked(t, parts, out_shape)
    if len(x0) == 1:
        out_shape = out_shape[:-2] + out_shape[-1:]
    if len(y0) == 1:
        out_shape = out_shape[:-1]
    return _reshape(r, out_shape) if r.shape != out_shape else r


cdef Array _as_array_on(object r, Tape t):
    return r if type(r) is Array else _view(t, _var_slot(<Var>r, t), (), ())


cdef Array _stacked(Tape t, list parts, tuple shape):
    """parts (equal shapes) stacked: a view when they lie one after another on the tape, as
    consecutive groups do, else a gather."""
    if not parts:
        return _fresh(t, t.n, shape)
    cdef Array p0 = parts[0], p
    cdef int64_t k, size = p0.size
    for k in range(len(parts)):
        p = parts[k]
        if _slot0(p) != _slot0(p0) + k * size or not _is_contiguous(p.shape, p.strides):
            return _reshape(_stack_like(parts, 0), shape)
    return _view(t, _slot0(p0), shape, _c_strides(shape))


cdef object _einsum(str subscripts, tuple operands):
    """numpy.einsum for one or two operands without '...' nor repeated letters in a term
    (_einsum_many reduces every einsum to these): sums, transposes, products and
    contractions, the contractions as matrix products."""
    spec = subscripts.replace(" ", "")
    for c in spec:
        if not (c.isascii() and c.isalpha()) and c not in ",->":
            raise ValueError(f"revad: einsum: invalid subscript {c!r} in {subscripts!r}: "
                             "subscripts are letters a-z and A-Z")
    ins, arrow, out = spec.partition("->")
    terms = ins.split(",")
    if len(terms) != len(operands) or len(operands) not in (1, 2):
        raise TypeError(f"revad: numpy.einsum of {len(operands)} operands for {subscripts!r} "
                        "is not supported (one or two operands)")
    if not arrow:  # implicit output: the letters used once, in alphabetical order
        out = "".join(sorted([c for c in set(ins) if c.isalpha() and ins.count(c) == 1]))
    ops = [_to_array(o) if type(o) is Var else _operand(o) for o in operands]
    extent = {}
    for term, o in zip(terms, ops):
        shape = _shape_of(o)
        if len(term) != len(shape) or len(set(term)) != len(term):
            raise ValueError(f"revad: einsum: {term!r} does not index an operand of shape {shape} "
                             "(one letter per dimension, none repeated)")
        for c, n in zip(term, shape):
            if extent.setdefault(c, n) != n and 1 not in (n, extent[c]):
                raise ValueError(f"revad: einsum: letter {c!r} has extents {extent[c]} and {n}")
            extent[c] = max(extent[c], n)
    if len(set(out)) != len(out) or any([c not in extent for c in out]):
        raise ValueError(f"revad: einsum: invalid output subscripts {out!r}")
    # Letters in one operand only and not in the output are summed out first.
    for j in range(len(ops)):
        others = "".join(terms[:j] + terms[j + 1:]) + out
        gone = tuple([d for d, c in enumerate(terms[j]) if c not in others])
        if gone:
            ops[j] = _sum_any(ops[j], gone)
            terms[j] = "".join([c for c in terms[j] if c in others])
    if len(ops) == 1:
        return _transpose_any(ops[0], tuple([terms[0].index(c) for c in out]))
    a, b = terms
    batch = [c for c in out if c in a and c in b]
    left = [c for c in out if c in a and c not in b]
    right = [c for c in out if c in b and c not in a]
    inner = [c for c in a if c in b and c not in out]
    if not left and not right:  # a product summed over `inner`: no matrix to multiply
        order = batch + inner
        prod = _binop(RV_MUL, _aligned(ops[0], a, order), _aligned(ops[1], b, order))
        r = _sum_any(prod, tuple(range(len(batch), len(order)))) if inner else prod
        return _transpose_any(r, tuple([batch.index(c) for c in out]))
    nb, nl, nr, nc = [_prod(tuple([extent[c] for c in g])) for g in (batch, left, right, inner)]
    A = _reshape_any(_aligned(ops[0], a, batch + left + inner, extent), (nb, nl, nc))
    B = _reshape_any(_aligned(ops[1], b, batch + inner + right, extent), (nb, nc, nr))
    r = _reshape_any(_matmul_stack(A, B, (nb, nl, nc), (nb, nc, nr)),
                     tuple([extent[c] for c in batch + left + right]))
    return _transpose_any(r, tuple([(batch + left + right).index(c) for c in out]))


cdef str _LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


cdef object _einsum_many(str subscripts, tuple operands, object optimize):
    """numpy.einsum for any number of operands, with '...' and repeated letters in a term:
    '...' becomes letters of its own, a repeated letter a diagonal (a view), and the operands
    are contracted two at a time by _einsum, in the order NumPy's einsum_path gives for
    `optimize` (left to right without it)."""
    spec = subscripts.replace(" ", "")
    ins, arrow, out = spec.partition("->")
    terms = ins.split(",")
    if not operands or len(terms) != len(operands):
        raise ValueError(f"revad: einsum: {len(terms)} terms in {subscripts!r} for "
                         f"{len(operands)} operands")
    ops = [_to_array(o) if type(o) is Var else _operand(o) for o in operands]
    for c in spec.replace("...", ""):
        if not (c.isascii() and c.isalpha()) and c not in ",->":
            raise ValueError(f"revad: einsum: invalid subscript {c!r} in {subscripts!r}: "
                             "subscripts are letters a-z and A-Z")
    # '...': letters not in the subscripts, right-aligned across the operands (they broadcast).
    free = [c for c in _LETTERS if c not in spec]
    counts = []
    for term, o in zip(terms, ops):
        k = len(_shape_of(o)) - (len(term) - 3) if "..." in term else 0
        if k < 0 or term.count("...") > 1 or ("..." not in term and "." in term):
            raise ValueError(f"revad: einsum: {term!r} does not index an operand of shape "
                             f"{_shape_of(o)}")
        counts.append(k)
    ell = "".join(free[:max(counts)])
    terms = [t.replace("...", ell[len(ell) - k:]) for t, k in zip(terms, counts)]
    if arrow:
        if "." in out.replace("...", "", 1):
            raise ValueError(f"revad: einsum: invalid output subscripts {out!r}")
        if ell and "..." not in out:
            raise ValueError("revad: einsum: output has more dimensions than subscripts given "
                             "in einstein sum, but no '...' ellipsis provided to broadcast the "
                             "extra dimensions")
        out = out.replace("...", ell)
    else:  # implicit output: '...' first, then the letters used once, in alphabetical order
        joined = "".join(terms)
        out = ell + "".join(sorted([c for c in set(joined)
                                    if c not in ell and joined.count(c) == 1]))
    # A letter repeated in one term: the diagonal of those axes (it moves to the end).
    for j in range(len(ops)):
        term = terms[j]
        while len(set(term)) != len(term):
            c = next(c for c in term if term.count(c) > 1)
            i1 = term.index(c)
            i2 = term.index(c, i1 + 1)
            shape = _shape_of(ops[j])
            if i2 >= len(shape) or shape[i1] != shape[i2]:
                raise ValueError(f"revad: einsum: dimensions in operand {j} for collapsing "
                                 f"index {c!r} don't match ({shape})")
            ops[j] = (_diagonal(ops[j], 0, i1, i2) if type(ops[j]) is Array
                      else np.diagonal(ops[j], 0, i1, i2))
            term = term[:i1] + term[i1 + 1:i2] + term[i2 + 1:] + c
        terms[j] = term
    if len(ops) == 1:
        return _einsum(terms[0] + "->" + out, (ops[0],))
    if optimize is False or optimize is None:
        path = [(0, 1)] * (len(ops) - 1)
    else:
        shapes = [np.broadcast_to(0.0, _shape_of(o)) for o in ops]
        path = np.einsum_path(",".join(terms) + "->" + out, *shapes, optimize=optimize)[0][1:]
    pending = list(zip(terms, ops))
    for step in path:
        step = sorted(step, reverse=True)
        group = [pending.pop(i) for i in step][::-1]
        rest = "".join([t for t, _ in pending]) + out
        term, o = group[0]
        if len(group) == 1:
            keep = "".join([c for c in term if c in rest])
            o = _einsum(term + "->" + keep, (o,))
            term = keep
        for k in range(1, len(group)):
            later = "".join([t for t, _ in group[k + 1:]]) + rest
            t2, o2 = group[k]
            keep = "".join([c for c in term + t2 if c in later])
            keep = "".join(sorted(set(keep), key=keep.index))
            if type(o) is not Array and type(o2) is not Array:
                o = np.einsum(term + "," + t2 + "->" + keep, o, o2)  # two constants
            else:
                o = _einsum(term + "," + t2 + "->" + keep, (o, o2))
            term = keep
        pending.append((term, o))
    term, o = pending[0]
    return _einsum(term + "->" + out, (o,)) if type(o) is Array else np.einsum(
        term + "->" + out, o)


cdef object _aligned(object o, str term, list order, dict extent=None):
    """Operand o (indexed by term) transposed to the letters `order`; letters it lacks become
    unit dimensions, broadcast to their extent when `extent` is given."""
    o = _transpose_any(o, tuple([term.index(c) for c in order if c in term]))
    shape = tuple(_shape_of(o))
    full, k = [], 0
    for c in order:
        if c in term:
            full.append(shape[k])
            k += 1
        else:
            full.append(1)
    o = _reshape_any(o, tuple(full))
    if extent is not None:
        want = tuple([extent[c] for c in order])
        if tuple(full) != want:
            o = _broadcast_to(o, want) if type(o) is Array else np.broadcast_to(o, want)
    return o


cdef object _transpose_any(object o, tuple axes):
    if axes == tuple(range(len(axes))):
        return o
    return _transpose(<Array>o, axes) if type(o) is Array else np.transpose(o, axes)


cdef object _sum_any(object o, tuple axes):
    return _sum(o, axes, False) if type(o) is Array else np.sum(o, axis=axes)
