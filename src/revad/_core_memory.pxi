# Tape memory: raw arrays that grow, holds that keep them still while C reads them,
# NumPy arrays' data, and the spare buffers a finished tape leaves for the next.
# Part of revad._core (included textually by _core.pyx: one module, several files).

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
# costs as much as the sweep itself. Where the kernel offers transparent huge pages on request,
# ask.
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
# The bound keeps the columns of a 10^6-element vectorised objective (8 * 10^6 entries): one
# that re-grew and faulted in its 200 MB on every call would spend more on that than on
# recording and sweeping.
cdef enum:
    _SPARE_MAX_ENTRIES = 1 << 24  # about 400 MiB of columns


cdef void _free_spare():
    free(_spare.op)
    free(_spare.arg0)
    free(_spare.arg1)
    free(_spare.val)
    free(_spare.cst)
    free(_spare.adj)
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
    columns; so are the buffers of the last Hessian-vector product. A program done with large
    gradients can hand that memory back.

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
    nbytes += _free_second_spare()  # (the second-order sweep's, _core_second.pxi)
    return nbytes
