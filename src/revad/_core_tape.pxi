# The Tape: flat columns of op codes, operand slots and values, and the reverse sweep
# over them (the C headers' loops, handed to threads and BLAS where they pay).
# Part of revad._core (included textually by _core.pyx: one module, several files).

@cython.final
# The cyclic collector must not clear `state` before __dealloc__ reads it: a dead tape still
# borrowed by its thread's state would be recorded on (the lists it holds break any cycle).
@cython.no_gc_clear
cdef class Tape:
    """The record of one computation: flat columns of op codes, operand slots and values.

    Tapes are made and finished implicitly (see ``Var.backward``); users rarely see one.

    >>> import revad
    >>> x = revad.Var(3.0)
    >>> y = x * x + 1.0
    >>> revad.tape_info(y)["n_ops"]   # leaf x, x*x, +1.0
    3
    """

    def __cinit__(self):
        global _next_tape_id
        self.id = _next_tape_id
        _next_tape_id += 1
        _take_spare(self)
        self.refs = []
        self.absent = set()
        self.readonly = []

    def __dealloc__(self):
        if self.state is not None and (<_ThreadState>self.state).tape == <PyObject *>self:
            (<_ThreadState>self.state).tape = NULL
        self.clear()
        _give_spare(self)
        free(self.op)
        free(self.arg0)
        free(self.arg1)
        free(self.val)
        free(self.cst)
        free(self.adj)
        free(self.leaves)
        free(self.leaf_slot)
        free(self.blk)
        free(self.cptr)
        free(self.blocks)

    cdef void clear(self):
        """Forget every entry but keep the buffers (a tape abandoned by all its Vars is reused)."""
        cdef int64_t k
        for k in range(self.n_leaves):
            Py_DECREF(<object>self.leaves[k])
        self.n_leaves = 0
        for k in range(self.n_blocks):
            Py_DECREF(<object>self.blocks[k].owner)
        self.n_blocks = 0
        self.n = 0
        self.n_cst = 0
        self.n_blk = 0
        self.n_cptr = 0
        # Fresh containers only where something is in them: nothing else holds them.
        if self.refs:
            self.refs = []
        if self.absent:
            self.absent = set()
        if self.readonly:
            self.readonly = []
        if self.has_adj:
            self.adj_zero = 0
        self.has_adj = False
        self.private = self.spent = False
        self.finished = False

    cdef int32_t push(self, int code, int32_t a0, int32_t a1, double v) except -1:
        return _push(self, code, a0, a1, v)

    cdef int write_group(self, int64_t bi) except -1:
        """Write the values of the lazy group whose parameters are blk[bi:], unless written."""
        if bi in self.absent:
            _run_group(self.blk + bi, RV_RUN_EW_FORWARD, self, NULL, False)
            self.absent.discard(bi)
        return 0

    cdef int settle(self) except -1:
        """Write the values of every lazy group."""
        for bi in list(self.absent):
            self.write_group(bi)
        return 0

    cdef int grow(self) except -1:
        return self.reserve(1)

    cdef int reserve(self, int64_t extra) except -1:
        """Room for `extra` more entries (the columns grow together, doubling)."""
        cdef int64_t cap
        if self.n + extra > self.cap:
            # The wait may let go of the GIL, and another thread may record (and grow the tape)
            # meanwhile: what to grow is decided after it (here and in every growth below).
            _wait_unheld(self)
        if self.n + extra > self.cap:
            cap = _next_cap(self.cap, self.n + extra)
            _resize(<void **>&self.op, cap, sizeof(uint8_t))
            _resize(<void **>&self.arg0, cap, sizeof(int32_t))
            _resize(<void **>&self.arg1, cap, sizeof(int32_t))
            _resize(<void **>&self.val, cap, sizeof(double))
            self.cap = cap
        return 0

    cdef int reserve_const(self, int64_t extra) except -1:
        cdef int64_t cap
        if self.n_cst + extra > self.cap_cst:
            _wait_unheld(self)
        if self.n_cst + extra > self.cap_cst:
            cap = _next_cap(self.cap_cst, self.n_cst + extra)
            _resize(<void **>&self.cst, cap, sizeof(double))
            self.cap_cst = cap
        return 0

    cdef int reserve_blk(self, int64_t count) except -1:
        """Room for `count` more block parameters."""
        cdef int64_t cap
        if self.n_blk + count > self.cap_blk:
            _wait_unheld(self)
        if self.n_blk + count > INT32_MAX:
            raise OverflowError("revad: the tape's block table is full")
        if self.n_blk + count > self.cap_blk:
            cap = _next_cap(self.cap_blk, self.n_blk + count)
            _resize(<void **>&self.blk, cap, sizeof(int64_t))
            self.cap_blk = cap
        return 0

    cdef int room(self, int64_t entries, int64_t blk) except -1:
        """Room for `entries` more entries and `blk` more block parameters, for a caller that
        then claims both (push_blk, t.n). reserve() then push_blk() would not do: the second
        may wait for holders with the GIL released, and another thread may fill the room the
        first made. One wait first; after it nothing holds the tape and this thread has the GIL,
        so neither growth lets go of it again."""
        if self.n + entries > self.cap or self.n_blk + blk > self.cap_blk:
            _wait_unheld(self)
        self.reserve(entries)
        self.reserve_blk(blk)
        return 0

    cdef int64_t push_blk(self, int64_t count) except -1:
        """Room for `count` block parameters; returns the index of the first (an entry's arg0
        holds it: int32, like a slot)."""
        self.reserve_blk(count)
        cdef int64_t i = self.n_blk  # (read after the growth: it may have waited)
        self.n_blk = i + count
        return i

    cdef int64_t push_cptr(self, object array) except -1:
        """Keep float64 ndarray `array` alive with the tape; returns its index in cptr."""
        cdef int64_t cap, i
        if self.n_cptr == self.cap_cptr:
            _wait_unheld(self)
        i = self.n_cptr  # (read after the wait: another thread may have pushed meanwhile)
        if i == self.cap_cptr:
            cap = _next_cap(self.cap_cptr, i + 1)
            _resize(<void **>&self.cptr, cap, sizeof(double *))
            self.cap_cptr = cap
        self.refs.append(array)
        self.cptr[i] = <const double *><size_t>array.__array_interface__["data"][0]
        self.n_cptr = i + 1
        return i

    cdef int64_t push_ref(self, object obj) except -1:
        """Keep any object alive with the tape (a Python function's record: CALL, kinds.h);
        returns its index in refs (its cptr entry is NULL: no loop reads it)."""
        cdef int64_t cap, i
        if self.n_cptr == self.cap_cptr:
            _wait_unheld(self)
        i = self.n_cptr
        if i == self.cap_cptr:
            cap = _next_cap(self.cap_cptr, i + 1)
            _resize(<void **>&self.cptr, cap, sizeof(double *))
            self.cap_cptr = cap
        self.refs.append(obj)
        self.cptr[i] = NULL
        self.n_cptr = i + 1
        return i

    cdef int64_t push_readonly(self, object array) except -1:
        """push_cptr for a constant referenced, not copied, because nothing could write it
        (_readonly_chain); every sweep checks that this still holds (check_readonly)."""
        cdef int64_t i = self.push_cptr(array)
        self.readonly.append(i)
        return i

    cdef int check_readonly(self) except -1:
        """Raise if a referenced read-only constant was made writable since it was recorded:
        it may have changed, and the gradient would use the new values."""
        for i in self.readonly:
            a = self.refs[i]
            if not _readonly_chain(a):
                raise RuntimeError(
                    f"revad: a read-only array referenced by this computation (shape "
                    f"{a.shape}) was made writable after it was recorded; it may have changed, "
                    f"so the gradient could be wrong. Keep it read-only until backward(), or "
                    f"record again")
        return 0

    cdef int32_t push_const(self, double c) except -1:
        cdef int64_t cap
        if self.n_cst == self.cap_cst:
            _wait_unheld(self)
        if self.n_cst == self.cap_cst:
            cap = _next_cap(self.cap_cst, self.n_cst + 1)
            _resize(<void **>&self.cst, cap, sizeof(double))
            self.cap_cst = cap
        self.cst[self.n_cst] = c
        self.n_cst += 1
        return <int32_t>(self.n_cst - 1)

    cdef int32_t bind_leaf(self, Var x) except -1:
        """Record leaf x on this tape (once) and return its slot."""
        if x.bound == self.id:
            return x.slot
        cdef int64_t cap
        if self.n_leaves == self.cap_leaves or self.n == self.cap:
            # One wait for both growths (see room()); another thread may bind x meanwhile.
            _wait_unheld(self)
            if x.bound == self.id:
                return x.slot
        if self.n_leaves == self.cap_leaves:
            cap = _next_cap(self.cap_leaves, self.n_leaves + 1)
            _resize(<void **>&self.leaves, cap, sizeof(PyObject *))
            _resize(<void **>&self.leaf_slot, cap, sizeof(int32_t))
            self.cap_leaves = cap
        cdef int32_t s = self.push(RV_LEAF, -1, -1, x.v)
        Py_INCREF(x)
        self.leaves[self.n_leaves] = <PyObject *>x
        self.leaf_slot[self.n_leaves] = s
        self.n_leaves += 1
        x.bound = self.id
        x.slot = s
        return s

    cdef int bind_block(self, object owner, double *grad, int64_t n, int64_t first,
                        bint *unset) except -1:
        """Keep an Array leaf bound here from slot `first` (the caller recorded its
        values): sweep adds its n adjoints into grad (the data of an ndarray of
        owner's), or writes them while *unset (a flag in owner), then clears it."""
        cdef int64_t cap
        if self.n_blocks == self.cap_blocks:
            cap = _next_cap(self.cap_blocks, self.n_blocks + 1)
            _resize(<void **>&self.blocks, cap, sizeof(rv_leaf_block))
            self.cap_blocks = cap
        cdef rv_leaf_block *b = &self.blocks[self.n_blocks]
        Py_INCREF(owner)
        b.owner = <PyObject *>owner
        b.grad = grad
        b.n = n
        b.first = first
        b.unset = unset
        self.n_blocks += 1
        return 0

    cdef int sweep(self, int32_t top) except -1:
        """One reverse sweep seeded at slot `top`; adds into every leaf's .grad and into adj.

        The sweep runs without the GIL into a buffer of its own (_reverse); `adj` is only read
        or written with the GIL held and no loop holding the tape, so that backward() from
        several threads on one tape stays exact. A private tape's first sweep is clean (group_ew.h,
        rv_backward): its buffer ends zero, ready for the next tape, and the intermediates'
        adjoints are not kept.
        """
        cdef int64_t n = self.n
        cdef bint clean = self.private and not self.has_adj
        self.check_readonly()
        cdef double *buf = self._take_adjoints(n)
        buf[top] = 1.0
        _hold(self)
        try:
            self._reverse(buf, n, rv_group_end(self.op, top), clean)
        except BaseException:  # (a referenced constant changed): no leaf got anything yet
            _unhold(self)
            self._keep_spare(buf, n)
            raise
        _unhold(self)
        _wait_unheld(self)  # a thread copying adj (Array.grad) finishes before adj changes
        self._deliver(buf, clean)
        self._keep_adjoints(buf, n, clean)
        return 0

    cdef double *_take_adjoints(self, int64_t n) except NULL:
        """A zeroed buffer of n adjoints: the spare one if it is free and large enough."""
        cdef double *buf
        if not self.has_adj and self.adj != NULL and self.cap_adj >= n:
            buf, self.adj = self.adj, NULL  # claim the spare buffer: no other sweep will see it
            if self.adj_zero < n:
                memset(buf + self.adj_zero, 0, (n - self.adj_zero) * sizeof(double))
            return buf
        buf = <double *>calloc(max(n, 1), sizeof(double))
        if buf == NULL:
            raise MemoryError("revad: no memory for the adjoints of the backward pass")
        rv_prefer_huge_pages(buf, n * sizeof(double))
        return buf

    cdef int _reverse(self, double *buf, int64_t n, int64_t i, bint clean) except -1:
        """The reverse sweep from entry i down into buf (n adjoints): C without the GIL,
        stopping where a matrix product goes to BLAS (NumPy, with the GIL), a Python function's
        backward is called (revad.primitive), or a large group goes to the helper threads."""
        cdef int64_t seed = i, first
        cdef const int64_t *p
        cdef const rv_ew_blk *q
        cdef const rv_kind *kind
        while i >= 0:
            with nogil:
                i = rv_backward(self.op, self.arg0, self.arg1, self.val, self.cst, self.blk,
                                self.cptr, buf, i, clean, _split_min, seed, 0)
            if i < 0:
                break
            # Stopped at a group (kind_table.h: its kind's backward returned -1).
            p = self.blk + self.arg0[i]
            kind = rv_kind_of(self.op[i])
            first = kind.first(p, i)
            q = NULL
            if self.op[i] == RV_SUMS:
                q = rv_sums_fused(self.op, self.arg0, self.blk, <const rv_sums_blk *>p, clean)
            if q != NULL:  # a sum and the elementwise group below it, swept together
                _run_group(<const int64_t *>q, RV_RUN_EW_SUM_BACKWARD, self, buf, clean, p,
                           not rv_reads_below(self.op, self.arg0, self.arg1, self.blk, seed, i,
                                              q.out, q.out + q.n))
                memset(buf + first, 0, (i + 1 - first) * sizeof(double))
                first = q.out
            elif kind.run_backward == RV_RUN_BLAS:
                _mm_backward_blas(self, buf, n, <const rv_mm_blk *>p, clean)
            elif kind.run_backward == RV_RUN_PYTHON:
                _call_backward(self, buf, n, <const rv_call_blk *>p, clean)
            else:
                _run_group(p, kind.run_backward, self, buf, clean)
            i = first - 1  # below the group
        return 0

    cdef void _keep_spare(self, double *buf, int64_t n) noexcept:
        """A failed sweep's buffer: the spare again, unless another has come meanwhile."""
        if not self.has_adj and self.adj == NULL:
            self.adj, self.cap_adj, self.adj_zero = buf, max(n, 1), 0
        else:
            free(buf)

    cdef int _deliver(self, double *buf, bint clean) except -1:
        """Add the leaves' adjoints into their gradients: a Var's .g, an Array leaf's ndarray."""
        cdef int64_t k
        cdef bint assign
        cdef rv_leaf_block *b
        for k in range(self.n_leaves):
            (<Var>self.leaves[k]).g += buf[self.leaf_slot[k]]
            if clean:
                buf[self.leaf_slot[k]] = 0.0
        for k in range(self.n_blocks):
            b = &self.blocks[k]
            assign = b.unset[0]  # a functional leaf's np.empty gradient
            if b.n > 0:
                rv_take_adjoints(b.grad, buf + b.first, b.n, clean, assign)
            if assign:
                b.unset[0] = False
        return 0

    cdef int _keep_adjoints(self, double *buf, int64_t n, bint clean) except -1:
        """After a sweep of n entries: its buffer becomes adj, is added into adj, or (clean:
        every adjoint was zeroed as it was read) becomes the spare again."""
        cdef int64_t k
        if clean:
            free(self.adj)  # a spare that arrived while this sweep ran, if any
            self.adj, self.cap_adj = buf, max(n, 1)
            self.adj_zero = max(self.adj_zero, n)
            self.spent = True
        elif self.has_adj:  # an earlier backward's adjoints: add this one's in
            if self.cap_adj < n:  # entries recorded since (by another thread) have some now
                _resize(<void **>&self.adj, n, sizeof(double))
                memset(self.adj + self.cap_adj, 0, (n - self.cap_adj) * sizeof(double))
                self.cap_adj = n
            for k in range(n):
                self.adj[k] += buf[k]
            free(buf)
        else:
            free(self.adj)  # a spare that arrived while this sweep ran, if any
            self.adj, self.cap_adj, self.has_adj, self.adj_zero = buf, max(n, 1), True, 0
        return 0
