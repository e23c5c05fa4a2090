# The compiled core: the tape, the Var extension type, and the functions of the op table.
#
# Recording appends one row to the tape's flat columns per op and returns one small Var; the
# reverse sweep is plain C (ops.h) over those columns, run without the GIL. Nothing here keeps a
# Python object per node except the Var the user holds.
cimport cython
from cpython.buffer cimport PyBUF_STRIDES, PyBuffer_Release, PyObject_GetBuffer
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_Check, PyFloat_FromDouble
from cpython.long cimport PyLong_AsDouble, PyLong_Check
from cpython.ref cimport Py_DECREF, Py_INCREF, PyObject
from libc.stdint cimport INT32_MAX, int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport calloc, free, realloc
from libc.string cimport memset

import operator
import os
import threading

import numpy as np

cdef extern from "Python.h":
    Py_ssize_t _refcnt "Py_REFCNT" (PyObject *o)


# ---------------------------------------------------------------------------------------------
# Memory: every raw array grows through here, doubling; the GIL is held by every caller.

cdef int64_t _next_cap(int64_t cap, int64_t need) except -1:
    """Doubling growth, capped where int32 operand slots end."""
    if need > INT32_MAX:
        raise OverflowError("revad: a tape holds at most 2**31 - 1 entries")
    cdef int64_t new_cap = cap * 2 if cap else 64
    while new_cap < need:
        new_cap *= 2
    return min(new_cap, <int64_t>INT32_MAX)


# Large columns are written once per entry and swept once: on 4 KiB pages, faulting them in
# costs as much as the sweep itself (measured: a 10^6-element vectorised Rosenbrock records
# 8 * 10^6 entries, 200 MB). Where the kernel offers transparent huge pages on request, ask.
cdef extern from *:
    """
    #if defined(__linux__)
    #include <sys/mman.h>
    #endif
    static void rv_prefer_huge_pages(void *p, size_t n) {
    #if defined(__linux__) && defined(MADV_HUGEPAGE)
        const uintptr_t H = (uintptr_t)2 << 20;
        const uintptr_t a = ((uintptr_t)p + H - 1) & ~(H - 1), e = ((uintptr_t)p + n) & ~(H - 1);
        if (e > a) (void)madvise((void *)a, (size_t)(e - a), MADV_HUGEPAGE);
    #else
        (void)p; (void)n;
    #endif
    }
    """
    void rv_prefer_huge_pages(void *p, size_t n) nogil


# Threads and one tape. Loops that run without the GIL (sweeps, groups, BLAS and NumPy calls on
# views of a column) read and write the tape's columns through raw pointers, so nothing may move
# those columns while one runs: such a loop holds the tape (_hold, _unhold, with the GIL), and
# every growth that reallocates a column waits, with the GIL released, until no thread holds it
# (_wait_unheld). Slots are claimed (t.n advanced) before a loop that writes them lets go of the
# GIL, so another thread's entries land after them. A thread that holds a tape and would grow
# one that is held (only a bug could ask that) raises instead of waiting for itself forever.
cdef extern from *:
    """
    #if defined(_MSC_VER)
    #include <windows.h>
    static __declspec(thread) long rv_holds_here;
    static void rv_wait_unheld(volatile int64_t *busy) {
        while (*busy > 0) Sleep(0);
    }
    #else
    #include <sched.h>
    #include <time.h>
    static __thread long rv_holds_here;
    static void rv_wait_unheld(int64_t *busy) {
        const struct timespec pause = {0, 20000};
        for (int k = 0; __atomic_load_n(busy, __ATOMIC_ACQUIRE) > 0; k++) {
            if (k < 64) sched_yield(); else nanosleep(&pause, NULL);
        }
    }
    #endif
    """
    long rv_holds_here
    void rv_wait_unheld(int64_t *busy) nogil


cdef uint64_t _fork_generation = 0  # counts forks into this process (_after_fork_in_child)


cdef void _hold(Tape t) noexcept:
    global rv_holds_here
    _forget_holders_before_fork(t)
    t.busy += 1
    rv_holds_here += 1


cdef inline void _forget_holders_before_fork(Tape t) noexcept:
    # A fork copies no threads: holds counted before it are of threads this process lacks.
    if t.busy_generation != _fork_generation:
        t.busy, t.busy_generation = 0, _fork_generation


cdef void _unhold(Tape t) noexcept:
    global rv_holds_here
    if t.busy > 0 and t.busy_generation == _fork_generation:
        t.busy -= 1
    rv_holds_here -= 1


cdef int _wait_unheld(Tape t) except -1:
    """Return once no loop holds t (see _hold); the GIL is held on return, so none starts."""
    _forget_holders_before_fork(t)
    while t.busy > 0:
        if rv_holds_here:
            raise RuntimeError("revad: internal error: a tape would grow while this thread runs a "
                               "loop over it")
        with nogil:
            rv_wait_unheld(&t.busy)
    return 0


cdef int _resize(void **p, int64_t count, size_t itemsize) except -1:
    cdef void *q = realloc(p[0], <size_t>count * itemsize)
    if q == NULL:
        raise MemoryError(f"revad: no memory to grow the tape to {count} entries")
    p[0] = q
    rv_prefer_huge_pages(q, <size_t>count * itemsize)
    return 0


cdef uint64_t _next_tape_id = 1


# ---------------------------------------------------------------------------------------------
# NumPy arrays' data and layout, read where a small functional call would pay more for asking
# (a buffer-protocol request, a typed memoryview) than for its own arithmetic. An ndarray begins
# with these fields in every NumPy since 1.7, 2.x too (ndarraytypes.h, PyArrayObject_fields),
# which NumPy's own C API macros (PyArray_DATA, PyArray_DIMS) read; revad builds without
# NumPy's headers, so it names them here and checks them against the buffer protocol at import,
# which it keeps to if they disagree.
cdef extern from *:
    """
    typedef struct {
        PyObject_HEAD
        char *data;
        int nd;
        Py_ssize_t *dimensions;
        Py_ssize_t *strides;
    } rv_ndarray_head;
    """
    ctypedef struct rv_ndarray_head:
        char *data
        int nd
        Py_ssize_t *dimensions
        Py_ssize_t *strides


cdef bint _nd_fields = False  # the fields above agree with the buffer protocol
cdef object _ndarray = np.ndarray


cdef char *_nd_data(object a) except? NULL:
    """The data pointer of ndarray a (the caller keeps a alive)."""
    cdef Py_buffer view
    if _nd_fields and type(a) is _ndarray:
        return (<rv_ndarray_head *><PyObject *>a).data
    PyObject_GetBuffer(a, &view, PyBUF_STRIDES)
    cdef char *p = <char *>view.buf
    PyBuffer_Release(&view)
    return p


cdef Py_ssize_t _nd_flat(object a, Py_ssize_t itemsize) except -2:
    """The length of ndarray a if it is 1-d with consecutive items of itemsize bytes, else -1."""
    cdef Py_buffer view
    cdef rv_ndarray_head *h
    cdef Py_ssize_t n
    if _nd_fields and type(a) is _ndarray:
        h = <rv_ndarray_head *><PyObject *>a
        if h.nd != 1:
            return -1
        n = h.dimensions[0]
        return n if n < 2 or h.strides[0] == itemsize else -1
    PyObject_GetBuffer(a, &view, PyBUF_STRIDES)
    n = view.shape[0] if view.ndim == 1 and (view.shape[0] < 2 or view.strides[0] == itemsize) else -1
    PyBuffer_Release(&view)
    return n


cdef bint _check_nd_fields() except -1:
    cdef Py_buffer view
    cdef rv_ndarray_head *h
    cdef int d
    m = np.arange(24.0).reshape(2, 3, 4)
    for a in (m, m[:, ::-1, 1::2], m[1, 1], np.empty(0), np.float32([1.0, 2.0])[::-1]):
        PyObject_GetBuffer(a, &view, PyBUF_STRIDES)
        h = <rv_ndarray_head *><PyObject *>a
        ok = view.buf == <void *>h.data and view.ndim == h.nd
        for d in range(view.ndim if ok else 0):  # (a stride along a length 0 or 1 is free)
            ok = ok and view.shape[d] == h.dimensions[d] and (
                view.shape[d] < 2 or view.strides[d] == h.strides[d])
        PyBuffer_Release(&view)
        if not ok:
            return False
    return True


_nd_fields = _check_nd_fields()


def _reads_ndarray_fields():
    """Testing hook: whether revad reads ndarrays' data and layout from their fields."""
    return _nd_fields


# The buffers of the last tape that died, handed to the next tape made: a training loop then
# records into warm memory instead of growing (copying) and page-faulting fresh columns each step.
cdef struct _Spare:
    uint8_t *op
    int32_t *arg0
    int32_t *arg1
    double *val
    int64_t cap
    double *cst
    int64_t cap_cst
    double *adj
    int64_t cap_adj
    int64_t adj_zero

cdef _Spare _spare


cdef void _take_spare(Tape t):
    t.op, t.arg0, t.arg1, t.val, t.cap = _spare.op, _spare.arg0, _spare.arg1, _spare.val, _spare.cap
    t.cst, t.cap_cst, t.adj, t.cap_adj = _spare.cst, _spare.cap_cst, _spare.adj, _spare.cap_adj
    t.adj_zero = _spare.adj_zero
    memset(&_spare, 0, sizeof(_Spare))


# Larger buffers go back to the system: the spare must not pin a huge tape's memory for good.
# The bound fits a 10^6-element vectorised objective (8 * 10^6 entries): re-growing and
# faulting in its 200 MB every step cost more than recording and sweeping it (measured 3x).
cdef enum:
    _SPARE_MAX_ENTRIES = 1 << 24  # about 400 MiB of columns


cdef void _free_spare():
    free(_spare.op); free(_spare.arg0); free(_spare.arg1); free(_spare.val)
    free(_spare.cst); free(_spare.adj)
    memset(&_spare, 0, sizeof(_Spare))


cdef void _give_spare(Tape t):
    """Keep t's buffers for the next tape if they are larger than the spare ones (GIL held)."""
    if t.cap <= _spare.cap or t.cap > _SPARE_MAX_ENTRIES:
        return
    _free_spare()
    _spare.op, _spare.arg0, _spare.arg1, _spare.val, _spare.cap = t.op, t.arg0, t.arg1, t.val, t.cap
    _spare.cst, _spare.cap_cst, _spare.adj, _spare.cap_adj = t.cst, t.cap_cst, t.adj, t.cap_adj
    _spare.adj_zero = 0 if t.has_adj else t.adj_zero
    t.op = t.arg0 = t.arg1 = NULL
    t.val = t.cst = t.adj = NULL


cdef bint _readonly_chain(object a):
    """Whether nothing can write a's memory: a and every array it views are read-only."""
    while isinstance(a, np.ndarray):
        if a.flags.writeable:
            return False
        a = a.base
    return a is None or isinstance(a, bytes)


# Bytes of one entry's columns: op code, two operand slots, value.
cdef size_t _ENTRY_BYTES = sizeof(uint8_t) + 2 * sizeof(int32_t) + sizeof(double)


def release_memory():
    """Free the buffers revad keeps from the last large tape for the next one; returns the bytes.

    After a tape dies, its columns (up to about 400 MiB) are kept so that the next tape, in a
    training loop say, records into warm memory instead of growing and page-faulting fresh
    columns. A program done with large gradients can hand that memory back.

    >>> import numpy as np, revad
    >>> g = revad.grad(lambda x: np.sum(x * x))(np.ones(100_000))
    >>> revad.release_memory() > 0
    True
    >>> revad.release_memory()
    0
    """
    cdef size_t nbytes = 0
    cdef _ThreadState st = _state()
    cdef Tape kept = st.spare_private  # this thread's private tape, kept for its next call
    if kept is not None:
        st.spare_private = None
        nbytes = kept.cap * _ENTRY_BYTES + (kept.cap_cst + kept.cap_adj) * sizeof(double)
        kept.cap = 0  # (empty since cleared): its buffers are freed, not made the spare
        kept = None
    nbytes += (_spare.cap * _ENTRY_BYTES
               + (_spare.cap_cst + _spare.cap_adj) * sizeof(double))
    _free_spare()
    return nbytes


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
        free(self.op); free(self.arg0); free(self.arg1); free(self.val); free(self.cst)
        free(self.adj); free(self.leaves); free(self.leaf_slot); free(self.blk); free(self.cptr)
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
            _run_group(self.blk + bi, 0, self, NULL, False)
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
            cap = _next_cap(self.cap, self.n + extra)
            _wait_unheld(self)
            _resize(<void **>&self.op, cap, sizeof(uint8_t))
            _resize(<void **>&self.arg0, cap, sizeof(int32_t))
            _resize(<void **>&self.arg1, cap, sizeof(int32_t))
            _resize(<void **>&self.val, cap, sizeof(double))
            self.cap = cap
        return 0

    cdef int reserve_const(self, int64_t extra) except -1:
        cdef int64_t cap
        if self.n_cst + extra > self.cap_cst:
            cap = _next_cap(self.cap_cst, self.n_cst + extra)
            _wait_unheld(self)
            _resize(<void **>&self.cst, cap, sizeof(double))
            self.cap_cst = cap
        return 0

    cdef int64_t push_blk(self, int64_t count) except -1:
        """Room for `count` block parameters; returns the index of the first (an entry's arg0
        holds it: int32, like a slot)."""
        cdef int64_t cap, i = self.n_blk
        if i + count > INT32_MAX:
            raise OverflowError("revad: the tape's block table is full")
        if i + count > self.cap_blk:
            cap = _next_cap(self.cap_blk, i + count)
            _wait_unheld(self)
            _resize(<void **>&self.blk, cap, sizeof(int64_t))
            self.cap_blk = cap
        self.n_blk = i + count
        return i

    cdef int64_t push_cptr(self, object array) except -1:
        """Keep float64 ndarray `array` alive with the tape; returns its index in cptr."""
        cdef int64_t cap, i = self.n_cptr
        if i == self.cap_cptr:
            cap = _next_cap(self.cap_cptr, i + 1)
            _wait_unheld(self)
            _resize(<void **>&self.cptr, cap, sizeof(double *))
            self.cap_cptr = cap
        self.refs.append(array)
        self.cptr[i] = <const double *><size_t>array.__array_interface__["data"][0]
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
            cap = _next_cap(self.cap_cst, self.n_cst + 1)
            _wait_unheld(self)
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
        if self.n_leaves == self.cap_leaves:
            cap = _next_cap(self.cap_leaves, self.n_leaves + 1)
            _wait_unheld(self)
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
        several threads on one tape stays exact. A private tape's first sweep is clean (ops.h,
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
        stopping where a matrix product goes to BLAS (NumPy, with the GIL) or a large group to
        the helper threads."""
        cdef int64_t seed = i
        cdef const int64_t *p
        cdef const int64_t *q
        while i >= 0:
            with nogil:
                i = rv_backward(self.op, self.arg0, self.arg1, self.val, self.cst, self.blk,
                                self.cptr, buf, i, clean, _split_min, seed)
            if i < 0:
                break
            p = self.blk + self.arg0[i]
            q = NULL
            if self.op[i] == RV_SUMS:
                q = rv_sums_fused(self.op, self.arg0, self.blk, p, clean)
            if q != NULL:  # a sum and the elementwise group below it, swept together
                _run_group(q, 4, self, buf, clean, p, not rv_reads_below(
                    self.op, self.arg0, self.arg1, self.blk, seed, i, q[0], q[0] + q[1]))
                memset(buf + p[0], 0, p[1] * sizeof(double))
                p = q
            elif self.op[i] == RV_MM:
                _mm_backward_blas(self, buf, n, p, clean)
            else:
                _run_group(p, 1 if self.op[i] == RV_EW else 3, self, buf, clean)
            i = p[0] - 1  # below the group
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


# Threads for large array groups. An elementwise op or a sum over 10^6 elements streams tens
# of MB through memory: one core cannot use all the bandwidth, two get about 1.4x more
# (measured: NumPy's multiply of 2 * 10^6 elements, 2.9 ms on one thread, 2.1 on two). Below
# _split_min outputs the hand-off costs more than it saves (measured on vectorised Rosenbrock:
# n = 7 * 10^4, 1.05 ms on two threads and 0.88 on one; n = 10^5, 1.6 and 2.0). Helper threads
# (up to three) are started on first use (again after a fork) and wait on one queue; a group is
# cut into pieces that the threads claim one at a time (ops.h, rv_claim), each piece C without
# the GIL. A piece gives the same bits whichever thread runs it: each output is computed the same
# way. Big fingerprinted products share the helpers too (_array: _watched_product).
cdef int64_t _split_min = 100_000
cdef int64_t _NO_SPLIT = 1 << 62
cdef int64_t _PIECES = 16        # pieces per group: enough that a slowed thread takes fewer
cdef int64_t _RUN_FLOOR = 1024   # elements in a run of a backward's piece, at least (_run_group)
cdef int64_t _RUN_MIN = _RUN_FLOOR  # (lower under _set_split_min)
cdef int64_t _helpers_max = 0    # helper threads: the threads revad may use (at most 4), less one
cdef int64_t _n_helpers = 0      # helpers started in this process
cdef object _jobs = None
cdef object _worker_pid = None
cdef object _start_lock = threading.Lock()


def _threads_available():
    """The cores this process may run on, or the environment's REVAD_NUM_THREADS (1: no second
    thread)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:
        n = os.cpu_count() or 1
    setting = os.environ.get("REVAD_NUM_THREADS", "").strip()
    if setting:
        try:
            n = int(setting)
        except ValueError:
            import warnings
            warnings.warn(f"revad: REVAD_NUM_THREADS={setting!r} is not a whole number; ignored",
                          RuntimeWarning, stacklevel=2)
    return n


_helpers_max = max(0, min(4, _threads_available()) - 1)
if _helpers_max == 0:
    _split_min = _NO_SPLIT


def _after_fork_in_child():
    # A fork copies no threads: the child starts its own helpers (_share, by the pid), a lock
    # another thread held at the fork would stay held, and so would its holds on tapes (_hold).
    global _start_lock, _fork_generation
    _start_lock = threading.Lock()
    _fork_generation += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _set_split_min(n):
    """Testing hook: groups of at least n outputs are shared by threads (None: never), and a
    backward's runs may be as short as n (up to _RUN_FLOOR); returns the previous setting."""
    global _split_min, _RUN_MIN
    old = None if _split_min == _NO_SPLIT else _split_min
    _split_min = _NO_SPLIT if n is None else max(1, int(n))
    _RUN_MIN = min(_RUN_FLOOR, _split_min)
    return old


def _set_helpers(n):
    """Testing hook: at most n helper threads take each job from now on (those started stay);
    returns the previous setting."""
    global _helpers_max
    old = _helpers_max
    _helpers_max = max(0, int(n))
    return old


def _work(jobs):
    while True:
        fn, done = jobs.get()
        try:
            fn()
        except BaseException:  # a job keeps its own errors (_Blocks.work); a helper must live on
            pass
        finally:
            fn = None  # keep nothing alive while waiting (a job holds a tape, a user's array)
            done.release()


cdef list _share(object fn):
    """Run fn() on each helper thread too, starting them if need be (fn claims its share of the
    work itself); returns a lock per helper, released once its fn() has returned. No helpers
    (one thread allowed, or none can be started): an empty list."""
    global _jobs, _worker_pid, _n_helpers
    with _start_lock:
        if _worker_pid != os.getpid():
            import queue  # here, not at import: most programs never start a helper
            _jobs, _worker_pid, _n_helpers = queue.SimpleQueue(), os.getpid(), 0
        while _n_helpers < _helpers_max:
            try:
                threading.Thread(target=_work, args=(_jobs,), daemon=True, name="revad-worker").start()
            except RuntimeError:  # no new thread (the interpreter is shutting down, a thread limit)
                break
            _n_helpers += 1
    locks = []
    for k in range(min(_n_helpers, _helpers_max)):
        done = threading.Lock()
        done.acquire()
        _jobs.put((fn, done))
        locks.append(done)
    return locks


@cython.final
cdef class _Part:
    """A group that threads share: its pieces (ranges of outputs, or of indices along the
    dimension d a backward is cut along), claimed one at a time."""
    cdef const int64_t *p
    cdef const int64_t *ps         # an elementwise backward: the sum fused with it, or NULL
    cdef int zero                  # and its outputs' own adjoints are all zero (ops.h, rv_ewb_sum)
    cdef Tape t
    cdef double *adj
    cdef int kind, clean
    cdef int64_t n, piece, d, next

    cdef void pieces(self) noexcept nogil:
        cdef int64_t e0
        while True:
            e0 = rv_claim(&self.next) * self.piece
            if e0 >= self.n:
                return
            _run_part(self.p, self.kind, self.t.val, self.t.cst, self.t.cptr, self.adj,
                      self.clean, e0, min(self.n, e0 + self.piece), self.d, self.ps, self.zero)

    def run(self):
        with nogil:
            self.pieces()


cdef void _run_part(const int64_t *p, int kind, double *val, const double *cst,
                    const double **cptr, double *adj, int clean, int64_t e0, int64_t e1,
                    int64_t d, const int64_t *ps, int zero) noexcept nogil:
    """Outputs [e0, e1) of the group at p (C order); an elementwise backward (kind 1, or 4 with
    the sum ps): the outputs whose index along dimension d is in [e0, e1) (ops.h,
    rv_ew_backward_box)."""
    if kind == 0:
        rv_ew_forward_part(p, val, cst, cptr, e0, e1)
    elif kind == 1 or kind == 4:
        if d < 0:
            rv_ew_backward_part(p, val, cst, cptr, adj, clean, e0, e1, ps, zero)
        else:
            rv_ew_backward_box(p, val, cst, cptr, adj, clean, d, e0, e1, ps, zero)
    elif kind == 2:
        rv_sums_forward_part(p, val, e0, e1)
    elif kind == 5:
        rv_sums_forward_lazy(p, ps, val, cst, cptr, e0, e1)
    else:
        rv_sums_backward_part(p, adj, clean, e0, e1)


cdef int _run_group(const int64_t *p, int kind, Tape t, double *adj, bint clean,
                    const int64_t *ps=NULL, int zero=0) except -1:
    """_run_loops, holding the tape (_hold): the loops read its columns without the GIL."""
    _hold(t)
    try:
        return _run_loops(p, kind, t, adj, clean, ps, zero)
    finally:
        _unhold(t)


cdef int _run_loops(const int64_t *p, int kind, Tape t, double *adj, bint clean,
                    const int64_t *ps, int zero) except -1:
    """Run a group: kind 0/1 an elementwise group forward/backward, 2/3 a sum group's, 4 an
    elementwise backward with the sum ps after it (ops.h, rv_sums_fused; zero: see rv_ewb_sum),
    5 a sum group's forward over the lazy elementwise group ps (ops.h, rv_sums_forward_lazy);
    shared with the helper threads if it has _split_min outputs or more and, for a backward,
    where ops.h says it may be cut (rv_ew_split_dim: d, the dimension to cut along;
    rv_sums_splittable). Each element's sum is read, not written: any cut of the elementwise
    group will do for it."""
    cdef int64_t n = p[1], d = 0, pieces = _PIECES, inner = 1, k
    cdef bint ew_backward = kind == 1 or kind == 4
    cdef _Part part
    if n >= _split_min:
        if ew_backward:
            d = rv_ew_split_dim(p)
            if d >= 0:
                # A piece is one run of outputs for each index of the dimensions before d
                # (ops.h, rv_ew_backward_box); each run costs a call and a seek. GMM's product,
                # cut along K, ran 13,000 runs of 200 elements: its backward took 6.0-8.0 ms on
                # two threads, 3.7-4.3 uncut. So no fewer than _RUN_MIN elements to a run.
                for k in range(d + 1, p[3]):
                    inner *= p[4 + k]
                pieces = min(_PIECES, p[4 + d] * inner // _RUN_MIN)
                if pieces < 2:
                    d = -1
        elif kind == 3 and not rv_sums_splittable(p):
            d = -1
    if n < _split_min or d < 0:
        with nogil:
            _run_part(p, kind, t.val, t.cst, t.cptr, adj, clean, 0, n, -1, ps, zero)
        return 0
    part = _Part.__new__(_Part)
    part.p, part.kind, part.t, part.adj, part.clean, part.d = p, kind, t, adj, clean, d
    part.ps, part.zero = ps, zero
    part.n = p[4 + d] if ew_backward else n  # elementwise backward: indices along d
    part.piece = (part.n + pieces - 1) // pieces  # (C division: no -(-a // b))
    if not ew_backward:  # whole cache lines of outputs in each piece
        part.piece = (part.piece + 7) & ~(<int64_t>7)
    locks = _share(part.run)
    try:
        with nogil:
            part.pieces()
    finally:
        _join(locks)
    return 0


cdef int _join(list locks) except -1:
    """Wait for every helper's share of a job: a loop that still runs must keep its tape held,
    so an interrupt (KeyboardInterrupt) is raised only once all have finished."""
    err = None
    for done in locks:
        while True:
            try:
                done.acquire()
                break
            except BaseException as e:
                err = e
    if err is not None:
        raise err
    return 0


cdef object _mm_operand(Tape t, object col, const int64_t *o, int64_t rows, int64_t cols):
    """A group's operand (ops.h, MM) as an ndarray: the constant kept for it, or a view of the
    column `col` (val or adj) over its slots, which are rows or columns of one contiguous block."""
    if o[0] >= 0:
        return t.refs[o[0]]
    cdef int64_t a0 = o[1]
    block = col[a0:a0 + rows * cols]
    if o[3] == 1:
        return block.reshape(rows, cols)
    return block.reshape(cols, rows).T


cdef int _add_product(object d, object P, object Q, object checked, const double *dp) except -1:
    """d += P @ Q (or checked(out), a referenced constant's product); written straight into d
    where d is still all zero, as an operand's adjoints are before its first product in a clean
    sweep: no temporary to fault in, add and free (the MLP's 784 x 128 weight gradient: 200 page
    faults a call, each BLAS zeroing a fresh page). dp: d's first element, d's memory when d is
    C-contiguous (tested in C: NumPy's d.any() cast each element to bool first, 2% of the MLP)."""
    if d.flags.c_contiguous and rv_all_zero(dp, d.size):
        if checked is None:
            np.matmul(P, Q, out=d)
        else:
            checked(d)
    else:
        d += P @ Q if checked is None else checked(None)
    return 0


cdef int _mm_backward_blas(Tape t, double *buf, int64_t n, const int64_t *p, bint clean) except -1:
    """dA += G @ B^T, dB += A^T @ G for the group at p: one BLAS call each, through NumPy.

    A large constant the tape references instead of copying (revad._array._Watched) computes
    its product itself, block by block, checking each block's fingerprint as it reads it: the
    result is added only if the constant is unchanged since it was recorded, else it raises."""
    cdef int64_t m = p[1], k = p[2], q = p[3], out = p[0]
    adj = np.asarray(<double[:n]>buf)
    val = np.asarray(<double[:n]>t.val)
    G = adj[out:out + m * q].reshape(m, q)
    A = _mm_operand(t, val, p + 4, m, k)
    B = _mm_operand(t, val, p + 8, k, q)
    # A zero adjoint passes nothing down, here as in every other entry; BLAS would multiply it
    # by an inf or nan of the other operand into nan. Only then the group's own loops run.
    if rv_any_zero(buf + out, m * q) and ((p[4] < 0 and not np.isfinite(B).all())
                        or (p[8] < 0 and not np.isfinite(A).all())):
        for c in (A, B):
            if type(c) is not np.ndarray:
                c.check()  # a referenced constant: the loops read it unchecked
        rv_mm_backward(p, t.val, t.cptr, buf, clean)
        return 0
    if p[4] < 0:
        _add_product(_mm_operand(t, adj, p + 4, m, k), G, B.T, None if type(B) is np.ndarray
                     else lambda out: B.rmatmul_t_checked(G, out), buf + p[5])
    if p[8] < 0:
        _add_product(_mm_operand(t, adj, p + 8, k, q), A.T, G, None if type(A) is np.ndarray
                     else lambda out: A.t_matmul_checked(G, out), buf + p[9])
    if clean:
        G[...] = 0.0
    return 0


cdef inline int32_t _push(Tape t, int code, int32_t a0, int32_t a1, double v) except -1:
    """Append one entry; the hot path of recording, inlined into every op."""
    cdef int64_t i = t.n
    if i == t.cap:
        t.grow()
    t.op[i] = <uint8_t>code
    t.arg0[i] = a0
    t.arg1[i] = a1
    t.val[i] = v
    t.n = i + 1
    return <int32_t>i


# ---------------------------------------------------------------------------------------------
# Per-thread recording state, kept in the Python thread state's dict (as threading.local does)
# so that it and its tape go when the thread state goes. A one-entry cache, keyed by the thread
# state's unique id, makes the common single-threaded lookup a comparison. The cached pointer is
# borrowed: it is only followed while the id matches, and ids are never reused, so a thread state
# torn down under us (a C library's thread calling back into Python) cannot leave it dangling.

@cython.final
cdef class _ThreadState:
    # This thread's current tape, borrowed: the Vars recorded on a tape own it, and a tape that
    # dies clears this (Tape.__dealloc__), so that its memory goes with its last Var.
    cdef PyObject *tape
    cdef int no_grad
    cdef Tape spare_private  # a cleared private tape for this thread's next functional call


cdef extern from "Python.h":
    ctypedef struct PyThreadState
    PyThreadState *PyThreadState_Get()
    uint64_t PyThreadState_GetID(PyThreadState *tstate)
    PyObject *PyThreadState_GetDict()

cdef uint64_t _cached_id = 0
cdef PyObject *_cached_state = NULL
cdef str _STATE_KEY = "revad._core.thread_state"
cdef int _n_no_grad = 0  # threads inside no_grad(); while 0 no op looks at the thread state


cdef inline _ThreadState _state():
    cdef uint64_t tid = PyThreadState_GetID(PyThreadState_Get())
    if _cached_state != NULL and tid == _cached_id:
        return <_ThreadState>_cached_state
    return _state_lookup(tid)


cdef _ThreadState _state_lookup(uint64_t tid):
    global _cached_id, _cached_state
    cdef PyObject *d = PyThreadState_GetDict()
    if d == NULL:
        raise RuntimeError("revad: no Python thread state dict to keep the recording state in")
    states = <dict>d
    st = states.get(_STATE_KEY)
    if st is None:
        st = _ThreadState()
        states[_STATE_KEY] = st
    _cached_id = tid
    _cached_state = <PyObject *>st
    return <_ThreadState>st


cdef Tape _current_tape():
    """The tape that ops on leaves alone record on: this thread's, renewed after backward()."""
    cdef _ThreadState st = _state()
    if st.tape != NULL and not (<Tape>st.tape).finished:
        return <Tape>st.tape
    return _make_current(st, Tape())


cdef Tape _make_current(_ThreadState st, Tape t):
    t.state = st
    st.tape = <PyObject *>t
    return t


cdef inline bint _recording():
    return _n_no_grad == 0 or not _state().no_grad


cdef bint _is_recording():
    return _recording()


cdef Tape _recording_tape():
    """_current_tape(), or None under no_grad: what an op on leaves alone records on
    (with one look at the thread state, not two)."""
    cdef _ThreadState st = _state()
    if _n_no_grad != 0 and st.no_grad:
        return None
    if st.tape != NULL and not (<Tape>st.tape).finished:  # as _current_tape()
        return <Tape>st.tape
    return _make_current(st, Tape())


cdef int _spent() except -1:
    raise RuntimeError("revad: the gradients of intermediate values of a grad/value_and_grad "
                       "call are not kept; call .backward() on a result of your own to read them")


# A functional call on a small function costs about as much as making and freeing its tape (the
# object, its containers, its leaf table) and the rest of its bookkeeping: a thread keeps its
# last private tape, cleared, for its next call when nothing of that call is alive any more.
# Only a small one: a large tape's columns go back to the shared spare (_give_spare) as before.
cdef enum:
    _KEEP_PRIVATE_ENTRIES = 1 << 16


cdef tuple _begin_private():
    """Start a private tape for one functional-API call; returns what _end_private restores."""
    cdef _ThreadState st = _state()
    cdef Tape private = st.spare_private
    if private is not None and _refcnt(<PyObject *>private) == 2:  # the cache and `private`
        st.spare_private = None  # (a call nested in this one makes its own)
    else:
        private = Tape()
    private.private = True
    # The tuple holds both tapes while the call runs (the thread state only borrows them).
    saved = (<object>st.tape if st.tape != NULL else None, st.no_grad, private)
    _make_current(st, private)
    st.no_grad = 0
    return saved


cdef int _end_private(tuple saved) except -1:
    """Restore what _begin_private saved; keep its tape for the next call if no Var, Array or
    frame of this call holds it any more (only `saved` and `private` below do)."""
    global _next_tape_id
    cdef _ThreadState st = _state()
    cdef Tape private = <Tape>saved[2]
    st.tape = NULL if saved[0] is None else <PyObject *>saved[0]
    st.no_grad = saved[1]
    if (st.spare_private is None and _refcnt(<PyObject *>private) == 2
            and private.cap <= _KEEP_PRIVATE_ENTRIES and private.cap_adj <= _KEEP_PRIVATE_ENTRIES
            and private.cap_cst <= _KEEP_PRIVATE_ENTRIES and private.cap_blk <= _KEEP_PRIVATE_ENTRIES):
        private.clear()
        # A new id: leaves bound to the old one (a Var the user keeps) must bind again.
        private.id = _next_tape_id
        _next_tape_id += 1
        st.spare_private = private
    return 0


def _enter_private():
    """Start a private tape for one functional-API call; returns what _exit_private restores."""
    return _begin_private()


def _lazy_rows():
    """Testing hook: (name, d/da, d/db) of the table's rows that may be lazy (ops.h, rv_ew_lazy)."""
    cdef int k
    return [(rv_op_table[k].name.decode(), rv_op_table[k].d_da.decode(),
             rv_op_table[k].d_db.decode())
            for k in range(rv_n_op_table) if rv_ew_lazy(rv_op_table[k].code)]


def _spare_adjoints():
    """Testing hook: (n, all zero) for the first n adjoints of the buffer the next functional
    call sweeps into (this thread's kept private tape's, else the spare), the ones a clean sweep
    left known to be zero."""
    cdef Tape kept = _state().spare_private
    cdef double *adj = _spare.adj if kept is None else kept.adj
    cdef int64_t n = 0 if adj == NULL else (_spare.adj_zero if kept is None else kept.adj_zero)
    return n, bool(n == 0 or not np.asarray(<double[:n]>adj).any())


def _current_refs():
    """Testing hook: the constant arrays this thread's current tape keeps alive."""
    return list(_current_tape().refs)


def _exit_private(tuple saved):
    _end_private(saved)


def _on_current_tape(Var y not None):
    """Whether y was recorded on this thread's current tape."""
    cdef _ThreadState st = _state()
    return y.tape is not None and st.tape == <PyObject *>y.tape


@cython.final
cdef class no_grad:
    """Context manager: ops inside record nothing and return leaves holding exact values.

    Use it for evaluation (validation losses, line searches): it is faster and memory stays flat.

    >>> import revad
    >>> w = revad.Var(2.0)
    >>> with revad.no_grad():
    ...     y = w * 3.0
    >>> y.value, revad.tape_info(y)["n_ops"]
    (6.0, 0)
    """

    def __enter__(self):
        global _n_no_grad
        st = _state()
        if st.no_grad == 0:
            _n_no_grad += 1
        st.no_grad += 1
        return self

    def __exit__(self, *exc):
        global _n_no_grad
        st = _state()
        st.no_grad -= 1
        if st.no_grad == 0:
            _n_no_grad -= 1
        return False


# ---------------------------------------------------------------------------------------------
# Operands. A number (int, float, bool, NumPy real scalar, 0-d real array) is an immediate.

cdef object _np_real = (np.floating, np.integer, np.bool_)
cdef object _np_complex = (complex, np.complexfloating)


cdef int _as_double(object o, double *out) except -1:
    """1 and *out set for a real number; 0 for an object that is not a number; raises for complex."""
    if PyFloat_Check(o):
        out[0] = PyFloat_AS_DOUBLE(o)
        return 1
    if PyLong_Check(o):  # bool included: True counts as 1, as in NumPy
        out[0] = PyLong_AsDouble(o)
        return 1
    if isinstance(o, _np_real):
        out[0] = float(o)
        return 1
    if isinstance(o, _np_complex):
        raise TypeError(f"revad differentiates real functions; got a complex number of type {type(o).__name__}")
    if type(o) is np.ndarray and (<object>o).ndim == 0 and (<object>o).dtype.kind in "biuf":
        out[0] = float(o)
        return 1
    return 0


cdef inline Var _new(Tape t, int32_t slot, double v):
    cdef Var r = Var.__new__(Var)
    r.tape = t
    r.slot = slot
    r.v = v
    return r


cdef inline Var _leaf(double v):
    cdef Var r = Var.__new__(Var)
    r.v = v
    return r


cdef Var _var_at(Tape t, int32_t slot, double v):
    return _new(t, slot, v)


cdef Var _var_leaf(double v):
    return _leaf(v)


cdef inline Tape _tape_of2(Var a, Var b):
    """The tape an op on a and b records on, or None under no_grad."""
    cdef Tape t
    if not _recording():
        return None
    if a.tape is not None:
        t = a.tape
        if b.tape is not None and b.tape is not t:
            raise ValueError("revad: these two Vars belong to different tapes (different "
                             "computations, or different grad() calls); combine Vars of one "
                             "computation only, or detach() one of them")
    elif b.tape is not None:
        t = b.tape
    else:
        return _current_tape()
    if t.finished:
        _raise_finished()
    return t


cdef inline Tape _tape_of1(Var a):
    if not _recording():
        return None
    if a.tape is None:
        return _current_tape()
    if a.tape.finished:
        _raise_finished()
    return a.tape


cdef int _raise_finished() except -1:
    raise RuntimeError("revad: this Var is an intermediate result of a computation that "
                       "backward() has finished; its gradient path is closed. Use x.detach() "
                       "(or revad.Var(x.value)) to start a new computation from its value")


cdef inline int32_t _slot(Var x, Tape t) except -1:
    return x.slot if x.tape is not None else t.bind_leaf(x)


cdef int32_t _var_slot(Var x, Tape t) except -1:
    return _slot(x, t)


cdef inline object _unary(int code, Var a):
    cdef double v = rv_unary(code, a.v)
    cdef Tape t = _tape_of1(a)
    if t is None:
        return _leaf(v)
    return _new(t, _push(t, code, _slot(a, t), -1, v), v)


cdef inline object _vv(int code, Var a, Var b):
    cdef double v = rv_binary(code, a.v, b.v)
    cdef Tape t = _tape_of2(a, b)
    if t is None:
        return _leaf(v)
    cdef int32_t i0 = _slot(a, t)
    cdef int32_t i1 = _slot(b, t)
    return _new(t, _push(t, code, i0, i1, v), v)


cdef inline object _vc(int code, Var a, double c):
    # VC and CV codes follow each binary op's VV code in ops.h's enum.
    cdef double v = rv_binary(code, a.v, c)
    cdef Tape t = _tape_of1(a)
    if t is None:
        return _leaf(v)
    cdef int32_t i0 = _slot(a, t)
    return _new(t, _push(t, code + 1, i0, t.push_const(c), v), v)


cdef inline object _cv(int code, double c, Var b):
    cdef double v = rv_binary(code, c, b.v)
    cdef Tape t = _tape_of1(b)
    if t is None:
        return _leaf(v)
    cdef int32_t i1 = _slot(b, t)
    return _new(t, _push(t, code + 2, t.push_const(c), i1, v), v)


cdef inline object _binary(int code, object x, object y):
    """An arithmetic op with at least one Var operand; NotImplemented for foreign operands."""
    cdef double c
    if type(x) is Var:
        if type(y) is Var:
            return _vv(code, <Var>x, <Var>y)
        if not _as_double(y, &c):
            return _foreign(y)
        return _vc(code, <Var>x, c)
    if not _as_double(x, &c):
        return _foreign(x)
    return _cv(code, c, <Var>y)


cdef object _method2(int code, str name, Var x, object other):
    """x.maximum(other) and the like: an operator's NotImplemented (for an array operand) is
    not a result a method may return; the function applies elementwise instead."""
    r = _binary(code, x, other)
    return functions[name](x, other) if r is NotImplemented else r


# Python would turn these into confusing messages (str * Var: "can't multiply sequence").
cdef tuple _never_operands = (str, bytes, type(None), list, tuple, dict, set)


cdef object _foreign(object o):
    """NotImplemented, so that other array-like types (NumPy's) can take over; or a clear error."""
    if isinstance(o, _never_operands):
        raise TypeError(f"revad: a Var cannot be combined with a {type(o).__name__}; "
                        "operands must be Vars, real numbers, or NumPy arrays")
    return NotImplemented


cdef object _compare(int code, Var a, object other):
    """A comparison: a Python bool from the values, recorded on an open tape for replay."""
    cdef double c
    cdef Var b
    cdef Tape t = None
    if type(other) is Var:
        b = <Var>other
        c = b.v
    elif _as_double(other, &c):
        b = None
    else:
        return NotImplemented
    cdef bint r = rv_binary(code, a.v, c) != 0.0
    if _recording():
        t = a.tape if a.tape is not None else (b.tape if b is not None else None)
        if t is not None and not t.finished and (b is None or b.tape is None or b.tape is t):
            if b is None:
                t.push(code + 1, _slot(a, t), t.push_const(c), r)
            else:
                t.push(code, _slot(a, t), _slot(b, t), r)
    return r


# ---------------------------------------------------------------------------------------------

@cython.final
@cython.auto_pickle(False)
@cython.freelist(4096)
@cython.no_gc  # a Var refers only to its tape and a tape to leaves only: no cycle can form
cdef class Var:
    """A scalar that records the operations applied to it, for reverse-mode differentiation.

    ``Var(value)`` makes a leaf (an input). Arithmetic and the functions of ``revad`` (also as
    methods, and through NumPy's ufuncs) return new Vars and append one entry each to the tape.
    ``y.backward()`` sweeps the tape once from ``y`` and adds dy/dx to every leaf's ``.grad``.

    >>> import revad
    >>> x, y = revad.Var(40.0), revad.Var(4.0)
    >>> z = 2 * x * y + y + 3          # the seed's example 1
    >>> z.backward()
    >>> z.value, x.grad, y.grad
    (327.0, 8.0, 81.0)
    """

    def __init__(self, value):
        cdef double c
        if type(value) is Var:
            c = (<Var>value).v
        elif not _as_double(value, &c):
            raise TypeError(f"revad.Var needs a real number, got {type(value).__name__}")
        self.v = c

    # -- values and gradients ------------------------------------------------------------------

    @property
    def value(self):
        """The forward value (a float). Settable on leaves only.

        >>> import revad
        >>> p = revad.Var(1.0)
        >>> p.value = 0.5
        >>> (p * 4).value
        2.0
        """
        return self.v

    @value.setter
    def value(self, new):
        cdef double c
        if self.tape is not None:
            raise AttributeError("revad: the value of an intermediate Var is read-only; "
                                 "only leaves (made by revad.Var(...)) can be set")
        if not _as_double(new, &c):
            raise TypeError(f"revad: a Var's value must be a real number, got {type(new).__name__}")
        self.v = c
        self.bound = 0  # the next use records the new value as a fresh leaf entry

    @property
    def grad(self):
        """d(output)/d(self), summed over every backward() that reached this Var (0.0 before).

        Settable on leaves, so that a training loop can reset it.

        >>> import revad
        >>> x = revad.Var(3.0)
        >>> (x * x).backward()
        >>> x.grad
        6.0
        >>> x.grad = 0.0
        """
        if self.tape is None:
            return self.g
        if self.tape.spent:
            _spent()
        if not self.tape.has_adj or self.slot >= self.tape.cap_adj:
            return 0.0  # (no sweep yet, or none since another thread recorded this Var)
        return self.tape.adj[self.slot]

    @grad.setter
    def grad(self, new):
        cdef double c
        if self.tape is not None:
            raise AttributeError("revad: the grad of an intermediate Var is read-only; "
                                 "reset the leaves' grads instead")
        if new is None:
            c = 0.0  # PyTorch's `p.grad = None` idiom
        elif not _as_double(new, &c):
            raise TypeError(f"revad: a grad must be a real number, got {type(new).__name__}")
        self.g = c

    @property
    def is_leaf(self):
        """True for inputs made by ``revad.Var(...)`` (and results computed under no_grad)."""
        return self.tape is None

    def backward(self):
        """Run the reverse sweep from this Var, adding d(self)/d(leaf) to every leaf's ``.grad``.

        It finishes the tape: values and grads stay readable, but this computation's
        intermediates can no longer be used in new ops (leaves can, on a new tape).

        >>> import revad
        >>> w = [revad.Var(2.0), revad.Var(-3.0), revad.Var(-3.0)]
        >>> x = [-1.0, -2.0]
        >>> f = revad.sigmoid(w[0] * x[0] + w[1] * x[1] + w[2])   # the seed's example 2
        >>> f.backward()
        >>> [round(v.grad, 3) for v in w]
        [-0.197, -0.393, 0.197]
        """
        if self.tape is None:
            self.g += 1.0
            return
        self.tape.finished = True
        self.tape.sweep(self.slot)

    def detach(self):
        """A new leaf with this Var's value, cut from its computation.

        >>> import revad
        >>> x = revad.Var(2.0)
        >>> y = (x * x).detach()
        >>> y.is_leaf, y.value
        (True, 4.0)
        """
        return _leaf(self.v)

    def item(self):
        """The value as a Python float (PyTorch's spelling)."""
        return self.v

    def __float__(self):
        return self.v

    def __int__(self):
        return int(self.v)

    def __bool__(self):
        return self.v != 0.0

    def __hash__(self):
        # By identity, like PyTorch tensors and micrograd Values: Vars go in sets and dicts.
        return <Py_ssize_t><void *>self

    def __repr__(self):
        return f"Var(value={self.v!r}, grad={self.grad!r})"

    def __reduce__(self):
        # A tape is not serialisable: pickling or copying keeps the value and grad, as a leaf.
        return _restore_leaf, (self.v, self.grad)

    def __copy__(self):
        return _restore_leaf(self.v, self.grad)

    def __deepcopy__(self, memo):
        return _restore_leaf(self.v, self.grad)

    # -- arithmetic (c_api_binop_methods: self may be either operand) -------------------------

    def __add__(x, y):
        return _binary(RV_ADD, x, y)

    def __sub__(x, y):
        return _binary(RV_SUB, x, y)

    def __mul__(x, y):
        return _binary(RV_MUL, x, y)

    def __truediv__(x, y):
        return _binary(RV_DIV, x, y)

    def __pow__(x, y, mod):
        cdef double c
        if mod is not None:
            return NotImplemented
        if type(x) is Var and type(y) is not Var:
            if not _as_double(y, &c):
                return _foreign(y)
            if c == 2.0:
                return _unary(RV_SQUARE, <Var>x)  # x**2 is everywhere; its partial needs no pow()
            return _vc(RV_POW, <Var>x, c)
        return _binary(RV_POW, x, y)

    def __neg__(self):
        return _unary(RV_NEG, self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _unary(RV_ABS, self)

    def __lt__(self, other):
        return _compare(RV_LT, self, other)

    def __le__(self, other):
        return _compare(RV_LE, self, other)

    def __gt__(self, other):
        return _compare(RV_GT, self, other)

    def __ge__(self, other):
        return _compare(RV_GE, self, other)

    def __eq__(self, other):
        return _compare(RV_EQ, self, other)

    def __ne__(self, other):
        return _compare(RV_NE, self, other)

    # -- the op table's functions as methods (micrograd's x.relu(), x.tanh(), x.exp()) --------

    def exp(self): return _unary(RV_EXP, self)
    def log(self): return _unary(RV_LOG, self)
    def log1p(self): return _unary(RV_LOG1P, self)
    def expm1(self): return _unary(RV_EXPM1, self)
    def sqrt(self): return _unary(RV_SQRT, self)
    def square(self): return _unary(RV_SQUARE, self)
    def sin(self): return _unary(RV_SIN, self)
    def cos(self): return _unary(RV_COS, self)
    def tan(self): return _unary(RV_TAN, self)
    def arcsin(self): return _unary(RV_ARCSIN, self)
    def arccos(self): return _unary(RV_ARCCOS, self)
    def arctan(self): return _unary(RV_ARCTAN, self)
    def sinh(self): return _unary(RV_SINH, self)
    def cosh(self): return _unary(RV_COSH, self)
    def tanh(self): return _unary(RV_TANH, self)
    def sigmoid(self): return _unary(RV_SIGMOID, self)
    def relu(self): return _unary(RV_RELU, self)
    def softplus(self): return _unary(RV_SOFTPLUS, self)
    def erf(self): return _unary(RV_ERF, self)
    def negative(self): return _unary(RV_NEG, self)
    def absolute(self): return _unary(RV_ABS, self)
    def arctan2(self, other): return _method2(RV_ARCTAN2, "arctan2", self, other)
    def hypot(self, other): return _method2(RV_HYPOT, "hypot", self, other)
    def maximum(self, other): return _method2(RV_MAXIMUM, "maximum", self, other)
    def minimum(self, other): return _method2(RV_MINIMUM, "minimum", self, other)
    # A real number is its own conjugate: NumPy's var and std on object arrays call it.
    def conjugate(self): return self

    # -- NumPy: np.exp(v), np.float64(2) * v, and arrays holding Vars ------------------------

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        name = ufunc.__name__
        if (method == "reduce" and name in ("add", "multiply", "maximum", "minimum")
                and len(inputs) == 1 and kwargs.get("out") is None and not kwargs.get("keepdims")):
            return inputs[0]  # np.sum(v) of one scalar is that scalar
        fn = _by_ufunc.get(name)
        if fn is None or method != "__call__" or kwargs:
            raise TypeError(f"revad: numpy.{name} (method {method!r}) is not "
                            "differentiable by revad; use revad's functions on Vars")
        args = []
        cdef double c
        for o in inputs:
            if isinstance(o, np.ndarray):
                if type(o) is not np.ndarray:  # np.matrix and other subclasses change the rules
                    raise TypeError(f"revad: a Var cannot be combined with a {type(o).__name__} "
                                    "(an ndarray subclass); use a plain ndarray (np.asarray)")
                if (<object>o).ndim > 0:
                    # Arrays of numbers or Vars: NumPy's object loops call Var per element.
                    return ufunc(*[_as_object_array(i) for i in inputs])
                o = (<object>o)[()]  # a 0-d array: its number or Var
            if isinstance(o, np.generic) and _as_double(o, &c):
                o = c  # a NumPy scalar (longdouble too): its value, or it would ask us again
            args.append(o)
        return fn(*args)

    def __array_function__(self, func, types, args, kwargs):
        """NumPy's functions (np.clip(v, 0, 1), np.where(c, v, w), ...) on a Var: the Array
        implementation, a 0-d result handed back as a Var; unsupported ones raise."""
        return _array_function(func, types, args, kwargs)


def _restore_leaf(double value, double grad):
    cdef Var x = _leaf(value)
    x.g = grad
    return x


cdef object _as_object_array(object o):
    if type(o) is Var:
        a = np.empty((), dtype=object)
        a[()] = o
        return a
    return o


# ---------------------------------------------------------------------------------------------
# The op table as Python sees it: one Function object per row (like NumPy's ufuncs).

cdef dict _code = {}       # name -> op code

# revad.Array lives in _array, which cimports this module; it registers itself here at import
# so that the functions of the table (revad.exp(array)) can hand arrays over to it.
cdef object _array_type = None
cdef object _array_apply = None


cdef object _array_function = None


def _register_array(array_type, apply, array_function):
    """Called once by revad._array: the Array type, its apply(code, arity, args) and the
    __array_function__ that serves Vars too."""
    global _array_type, _array_apply, _array_function
    _array_type, _array_apply, _array_function = array_type, apply, array_function
cdef dict _by_ufunc = {}   # NumPy ufunc name -> Function


@cython.final
cdef class Function:
    """One op of revad's table as a callable: ``revad.exp``, ``revad.maximum``, ...

    On Vars it records the op; on real numbers it returns a float; on arrays (of numbers or of
    Vars) it applies elementwise. Its docstring shows the exact formulas the tape uses.

    >>> import revad
    >>> revad.tanh
    <revad function tanh>
    >>> revad.tanh(0.0), revad.maximum(1.0, 2.0), revad.sigmoid([0.0, 0.0])
    (0.0, 2.0, array([0.5, 0.5]))
    """
    cdef readonly str name
    cdef readonly int code, arity
    cdef str doc

    @property
    def __name__(self):
        return self.name

    @property
    def __doc__(self):
        return self.doc

    def __repr__(self):
        return f"<revad function {self.name}>"

    def __call__(self, *args):
        cdef double a, b
        if len(args) != self.arity:
            raise TypeError(f"revad.{self.name}() takes {self.arity} argument"
                            f"{'s' if self.arity > 1 else ''}, got {len(args)}")
        if self.arity == 1:
            x = args[0]
            if type(x) is Var:
                return _unary(self.code, <Var>x)
            if _as_double(x, &a):
                return rv_unary(self.code, a)
        else:
            x, y = args
            if isinstance(x, _sequences) or isinstance(y, _sequences):
                pass  # elementwise, below
            elif type(x) is Var or type(y) is Var:
                r = _binary(self.code, x, y)
                if r is not NotImplemented:
                    return r
            elif _as_double(x, &a) and _as_double(y, &b):
                return rv_binary(self.code, a, b)
        if _array_type is not None:
            for x in args:
                if type(x) is _array_type:
                    return _array_apply(self.code, self.arity, args)
        for x in args:
            if isinstance(x, (np.ndarray, list, tuple)) or type(x) is Var:
                continue
            if not _is_number(x):
                raise TypeError(f"revad.{self.name}() needs real numbers, Vars or arrays of "
                                f"them, got {type(x).__name__}")
        arrays = [np.asarray(x) if type(x) is not Var else _as_object_array(x) for x in args]
        out = np.frompyfunc(self, self.arity, 1)(*arrays)
        if all(type(x) is not Var and np.asarray(x).dtype != object for x in args):
            return np.asarray(out, dtype=np.float64)
        return out


cdef tuple _sequences = (np.ndarray, list, tuple)


cdef bint _is_number(object x) except -1:
    cdef double c
    return _as_double(x, &c)


def _is_real(x):
    """Whether x is a real number revad takes as a constant (int, float, bool, NumPy real)."""
    return _is_number(x)


def _all_real(seq):
    """Whether every item of a list or tuple is a real number."""
    cdef object x
    for x in seq:
        if not _is_number(x):
            return False
    return True


cdef str _docstring(rv_op_info info, str example):
    name = info.name.decode()
    lines = [f"{name}({'x' if info.arity == 1 else 'x, y'})", "",
             f"Recorded as one tape entry. With a = x{', b = y' if info.arity == 2 else ''} and "
             "y the saved output:", "",
             f"    value:  {info.forward.decode()}",
             f"    d/da:   {info.d_da.decode()}"]
    if info.arity == 2:
        lines.append(f"    d/db:   {info.d_db.decode()}")
    if info.note[0]:
        lines += ["", f"Not differentiable everywhere: {info.note.decode()}."]
    lines += ["", "On real numbers it returns a float; on arrays it applies elementwise.",
              "", example]
    return "\n".join(lines)


# A runnable example per function: the value and derivative at one point, each checked by the
# doctests against the numbers here (computed independently, with mpmath).
_examples = {
    "exp": ("0.5", "1.648721 1.648721"), "log": ("2.0", "0.693147 0.500000"),
    "log1p": ("0.5", "0.405465 0.666667"), "expm1": ("0.5", "0.648721 1.648721"),
    "sqrt": ("4.0", "2.000000 0.250000"), "sin": ("0.5", "0.479426 0.877583"),
    "cos": ("0.5", "0.877583 -0.479426"), "tan": ("0.5", "0.546302 1.298446"),
    "arcsin": ("0.5", "0.523599 1.154701"), "arccos": ("0.5", "1.047198 -1.154701"),
    "arctan": ("0.5", "0.463648 0.800000"), "sinh": ("0.5", "0.521095 1.127626"),
    "cosh": ("0.5", "1.127626 0.521095"), "tanh": ("0.5", "0.462117 0.786448"),
    "sigmoid": ("0.5", "0.622459 0.235004"), "relu": ("-0.5", "0.000000 0.000000"),
    "softplus": ("0.5", "0.974077 0.622459"), "erf": ("0.5", "0.520500 0.878783"),
    "abs": ("-0.5", "0.500000 -1.000000"), "negative": ("0.5", "-0.500000 -1.000000"),
    "square": ("0.5", "0.250000 1.000000"),
    "maximum": ("1.0, 2.0", "2.000000 0.000000 1.000000"),
    "minimum": ("1.0, 2.0", "1.000000 1.000000 0.000000"),
    "arctan2": ("1.0, 2.0", "0.463648 0.400000 -0.200000"),
    "hypot": ("3.0, 4.0", "5.000000 0.600000 0.800000"),
    "add": ("1.0, 2.0", "3.000000 1.000000 1.000000"),
    "subtract": ("1.0, 2.0", "-1.000000 1.000000 -1.000000"),
    "multiply": ("3.0, 2.0", "6.000000 2.000000 3.000000"),
    "divide": ("3.0, 2.0", "1.500000 0.500000 -0.750000"),
    "power": ("3.0, 2.0", "9.000000 6.000000 9.887511"),
}


cdef str _example(str name, int arity):
    arg, out = _examples[name]
    if arity == 1:
        return (f">>> import revad\n>>> x = revad.Var({arg})\n>>> y = revad.{name}(x)\n"
                f">>> y.backward()\n>>> print(f\"{{y.value:.6f}} {{x.grad:.6f}}\")\n{out}")
    return (f">>> import revad\n>>> x, y = revad.Var({arg.split(', ')[0]}), revad.Var({arg.split(', ')[1]})\n"
            f">>> z = revad.{name}(x, y)\n>>> z.backward()\n"
            f">>> print(f\"{{z.value:.6f}} {{x.grad:.6f}} {{y.grad:.6f}}\")\n{out}")


def _make_functions():
    """Build the public Function objects from ops.h's table: {name: Function}."""
    cdef int k
    cdef Function fn
    out = {}
    for k in range(rv_n_op_table):
        info = rv_op_table[k]
        if info.arity == 0 or info.name[0] == b"_":
            continue  # comparisons are operators, not functions; "_" marks internal ops
        fn = Function.__new__(Function)
        fn.name = info.name.decode()
        fn.code = info.code
        fn.arity = info.arity
        fn.doc = _docstring(info, _example(fn.name, info.arity))
        _code[fn.name] = fn.code
        out[fn.name] = fn
    return out


functions = _make_functions()
# NumPy's names for the same ops, and SciPy's special functions that are ours too.
_aliases = {"absolute": "abs", "true_divide": "divide", "float_power": "power", "expit": "sigmoid"}
_by_ufunc.update(functions)
for _alias, _name in _aliases.items():
    _by_ufunc[_alias] = functions[_name]
_by_ufunc.update(less=operator.lt, less_equal=operator.le, greater=operator.gt,
                 greater_equal=operator.ge, equal=operator.eq, not_equal=operator.ne,
                 positive=operator.pos)


# ---------------------------------------------------------------------------------------------
# Bulk helpers for the functional API: one C loop per argument, not one Python call per element.

def _make_leaves(list values not None):
    """Leaves for a list of real numbers, bound to this thread's current tape."""
    cdef Tape t = _current_tape()
    cdef Py_ssize_t k, n = len(values)
    cdef double c
    cdef Var x
    out = [None] * n
    for k in range(n):
        v = values[k]
        if not _as_double(v, &c):
            raise TypeError(f"revad: expected real numbers, got {type(v).__name__} at index {k}")
        x = _leaf(c)
        t.bind_leaf(x)
        out[k] = x
    return out


def _leaf_grads(list leaves not None):
    """The .grad of each leaf in a list, as a list of floats."""
    cdef Py_ssize_t k, n = len(leaves)
    out = [None] * n
    for k in range(n):
        out[k] = PyFloat_FromDouble((<Var?>leaves[k]).g)  # checked: a list from anywhere
    return out


def tape_info(Var y not None):
    """Size of the tape that recorded y: entries, constants, leaves and bytes held.

    ``nbytes`` counts what the tape has written and holds: per entry its columns (op code, two
    operand slots, value: 17 bytes), except the slots of a group (an array op) after its first,
    whose operand columns stay untouched (9 bytes); the constant pool, the block table and the
    leaf table. Capacity slack is reported apart, and so is ``constant_nbytes``: the constant
    arrays the tape keeps alive (its copies, and the arrays it references: read-only ones, and
    large ones it fingerprints).

    >>> import revad
    >>> x = revad.Var(1.5)
    >>> info = revad.tape_info(revad.exp(x) * 2.0)
    >>> info["n_ops"], info["n_consts"], info["n_leaves"]
    (3, 1, 1)
    """
    cdef Tape t = y.tape
    if t is None:
        return {"n_ops": 0, "n_consts": 0, "n_leaves": 0, "nbytes": 0, "capacity_nbytes": 0,
                "bytes_per_op": 0.0, "finished": False}
    per_entry = _ENTRY_BYTES
    cdef int64_t k, grouped = 0
    for k in range(t.n):
        grouped += t.op[k] == RV_MMP
    used = (t.n * per_entry - grouped * 2 * sizeof(int32_t) + t.n_cst * sizeof(double)
            + t.n_blk * sizeof(int64_t) + t.n_leaves * (sizeof(PyObject *) + sizeof(int32_t)))
    cap = (t.cap * per_entry + t.cap_cst * sizeof(double)
           + t.cap_leaves * (sizeof(PyObject *) + sizeof(int32_t)))
    adj = t.n * sizeof(double) if t.has_adj else 0
    return {"n_ops": t.n, "n_consts": t.n_cst, "n_leaves": t.n_leaves, "nbytes": used,
            "capacity_nbytes": cap, "adjoint_nbytes": adj,
            "constant_nbytes": sum(a.nbytes for a in t.refs if isinstance(a, np.ndarray)),
            "bytes_per_op": used / t.n if t.n else 0.0, "finished": bool(t.finished)}


# ---------------------------------------------------------------------------------------------
# Forward mode and drawing: the same columns, read another way.

# Which operand columns of an entry hold slots (bit 0: arg0, bit 1: arg1); the others hold a
# constant-pool index or nothing. Built from ops.h's table, as everything else is.
cdef uint8_t _slot_args[256]
cdef list _op_kinds = [("input", "leaf")] + [None] * (RV_N_OPS - 1)


cdef void _init_op_kinds():
    cdef int k, c
    cdef rv_op_info info
    memset(_slot_args, 0, sizeof(_slot_args))
    for k in range(rv_n_op_table):
        info = rv_op_table[k]
        c = info.code
        name = info.name.decode()
        if info.arity == 1:
            _slot_args[c] = 1
            _op_kinds[c] = (name, "unary")
        else:
            kind = "binary" if info.arity == 2 else "compare"
            _slot_args[c], _slot_args[c + 1], _slot_args[c + 2] = 3, 1, 2
            _op_kinds[c] = (name, kind)
            _op_kinds[c + 1] = (name, kind + "_const_b")  # arg1 indexes the constant pool
            _op_kinds[c + 2] = (name, kind + "_const_a")  # arg0 does
    # Entries whose operands are not in arg0/arg1 (block entries read the side table `blk`):
    # drawn as nodes without operand edges.
    _op_kinds[RV_CONST] = ("constant", "block")
    _op_kinds[RV_DOTC] = ("dot", "block")
    _op_kinds[RV_DOT] = ("dot", "block")
    _op_kinds[RV_MM] = ("matmul", "block")
    _op_kinds[RV_EW] = ("elementwise", "block")
    _op_kinds[RV_SUMS] = ("sum", "block")
    _op_kinds[RV_MMP] = ("group", "block")


_init_op_kinds()


def _tangent_sweep(Var y not None, list leaves not None, tangents):
    """d(y) along a direction in which the leaves move at rates `tangents`: one forward sweep.

    ``leaves`` holds Var leaves (one tangent each) and Array leaves (one per element, in C
    order), in the order of ``tangents``. The tape is read as recorded (values saved, nothing
    re-evaluated); leaves not on y's tape contribute nothing.
    """
    from revad._array import _leaf_binding  # not at import: revad._array cimports this module
    cdef const double[::1] tv = np.ascontiguousarray(tangents, dtype=np.float64)
    cdef Py_ssize_t k, j, p = 0, m = len(leaves), size
    cdef Tape t = y.tape
    cdef Var x
    cdef double r = 0.0
    cdef int64_t top = 0, first
    cdef double *tng = NULL
    if t is not None:
        top = rv_group_end(t.op, y.slot)  # y may be one output of a group carried above it
        tng = <double *>calloc(top + 1, sizeof(double))
        if tng == NULL:
            raise MemoryError("revad: no memory for the tangents of the forward sweep")
    try:
        for k in range(m):
            if type(leaves[k]) is Var:
                x = <Var>leaves[k]
                if p >= tv.shape[0]:
                    p += 1
                    break
                if t is None:
                    if x is y:
                        r += tv[p]
                elif x.tape is None and x.bound == t.id and x.slot <= top:
                    tng[x.slot] += tv[p]
                p += 1
            else:
                bound, first, size = _leaf_binding(leaves[k])
                if p + size > tv.shape[0]:
                    p += size
                    break
                if t is not None and bound == t.id and first + size - 1 <= top:
                    for j in range(size):
                        tng[first + j] += tv[p + j]
                p += size
        if p != tv.shape[0]:
            raise ValueError(f"revad: the leaves take {p} tangents or more, but {tv.shape[0]} were given")
        if t is None:
            return r
        t.settle()
        t.check_readonly()
        _hold(t)
        try:
            with nogil:
                rv_forward_tangent(t.op, t.arg0, t.arg1, t.val, t.cst, t.blk, t.cptr, tng, top)
        finally:
            _unhold(t)
        r = tng[y.slot]
    finally:
        free(tng)
    return r


def _graph_columns(Var y not None, vars=()):
    """The tape that recorded y, up to y's slot, as NumPy columns; None for a leaf.

    Keys: ``top`` (y's slot), ``op``, ``arg0``, ``arg1``, ``val`` (one entry per slot),
    ``shown_op`` (the op each slot stands for: a group's slots show the group's op),
    ``cst`` (the constant pool), ``adj`` (None before backward), ``reached`` (True for the
    entries y depends on), ``leaf_slots``, ``slots`` (the slot of each Var of ``vars`` on this
    tape, or -1), and ``ops``: for each op code, ``(name, kind)``, kind being "leaf", "unary",
    "binary", "compare" or "block" (operands in the side table, not drawn), with the suffix "_const_b" when arg1 indexes ``cst`` instead of
    naming a slot (``x * 2.0``) or "_const_a" when arg0 does (``2.0 / x``).
    """
    cdef Tape t = y.tape
    if t is None:
        return None
    t.settle()
    _hold(t)  # (NumPy's copies may let go of the GIL)
    try:
        return _columns(t, y, vars)
    finally:
        _unhold(t)


cdef dict _columns(Tape t, Var y, vars):
    cdef int64_t n = <int64_t>y.slot + 1, i, k
    cdef uint8_t[::1] reach = np.zeros(n, dtype=np.uint8)
    cdef uint8_t mask
    reach[n - 1] = 1
    for i in range(n - 1, -1, -1):
        if reach[i]:
            mask = _slot_args[t.op[i]]
            if mask & 1:
                reach[t.arg0[i]] = 1
            if mask & 2:
                reach[t.arg1[i]] = 1
    cdef Var x
    slots = []
    for v in vars:
        s = -1
        if type(v) is Var:
            x = <Var>v
            if x.tape is t and x.slot < n:
                s = x.slot
            elif x.tape is None:
                for k in range(t.n_leaves):
                    if t.leaves[k] == <PyObject *>x and t.leaf_slot[k] < n:
                        s = t.leaf_slot[k]
        slots.append(s)
    leaf_slots = [t.leaf_slot[k] for k in range(t.n_leaves) if t.leaf_slot[k] < n]
    # The op each slot shows: a group's slots show the group's op (an elementwise group's row).
    shown = np.asarray(<uint8_t[:n]>t.op).copy()
    cdef uint8_t[::1] show = shown
    cdef uint8_t c, cur = RV_MM
    for i in range(rv_group_end(t.op, n - 1), -1, -1):
        c = t.op[i]
        if c == RV_EW:
            cur = <uint8_t>t.blk[t.arg0[i] + 2]
        elif c == RV_MM or c == RV_SUMS:
            cur = c
        if i < n and c >= RV_MM:  # a group's carrier or placeholder (groups come last)
            show[i] = cur
    adj = None
    if t.has_adj:  # (entries recorded since the last sweep, by another thread, have none yet)
        adj = np.zeros(n)
        adj[:min(n, t.cap_adj)] = np.asarray(<double[:min(n, t.cap_adj)]>t.adj)
    return {
        "top": y.slot,
        "op": np.asarray(<uint8_t[:n]>t.op).copy(),
        "arg0": np.asarray(<int32_t[:n]>t.arg0).copy(),
        "arg1": np.asarray(<int32_t[:n]>t.arg1).copy(),
        "val": np.asarray(<double[:n]>t.val).copy(),
        "cst": np.asarray(<double[:t.n_cst]>t.cst).copy() if t.n_cst else np.zeros(0),
        "adj": adj,
        "reached": np.asarray(reach).astype(bool),
        "leaf_slots": np.array(leaf_slots, dtype=np.int32),
        "slots": slots,
        "shown_op": shown,
        "ops": list(_op_kinds),
    }
