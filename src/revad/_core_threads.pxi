# Helper threads for large array groups: pieces of a group's loop, claimed one at a time.
# Part of revad._core (included textually by _core.pyx: one module, several files).

# Threads for large array groups. An elementwise op or a sum over 10^6 elements streams tens
# of MB through memory: one core cannot use all the bandwidth, two use more. Below _split_min
# outputs the hand-off costs more than it saves. Helper threads (up to three) are started on
# first use (again after a fork) and wait on one queue; a group is cut into pieces that the
# threads claim one at a time (engine_common.h, rv_claim), each piece C without the GIL. A
# piece gives the same bits whichever thread runs it: each output is computed the same way. Big
# fingerprinted products share the helpers too (_array: _watched_product).
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


cdef list _share(object fn, int64_t most=-1):
    """Run fn() on each helper thread too (on `most` of them at most, unless most < 0),
    starting them if need be (fn claims its share of the work itself); returns a lock per
    helper, released once its fn() has returned. No helpers (one thread allowed, or none can be
    started): an empty list."""
    global _jobs, _worker_pid, _n_helpers
    with _start_lock:
        if _worker_pid != os.getpid():
            import queue  # here, not at import: most programs never start a helper
            _jobs, _worker_pid, _n_helpers = queue.SimpleQueue(), os.getpid(), 0
        while _n_helpers < _helpers_max:
            try:
                threading.Thread(target=_work, args=(_jobs,), daemon=True,
                                 name="revad-worker").start()
            except RuntimeError:  # no new thread (the interpreter is shutting down, a thread limit)
                break
            _n_helpers += 1
    locks = []
    for k in range(min(_n_helpers, _helpers_max) if most < 0 else
                   min(_n_helpers, _helpers_max, most)):
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
    # ps: an elementwise backward: the sum fused with it, or NULL; zero: and its outputs' own
    # adjoints are all zero (group_ew.h, rv_ewb_sum)
    cdef const int64_t *ps
    cdef int zero
    cdef Tape t                    # (kept alive while the helpers run)
    cdef double *val               # the columns the loops read: the tape's, or a replay's
    cdef const double *cst
    cdef const double *const *cptr
    cdef double *adj
    cdef int mode, clean           # mode: what runs (kind_table.h, enum rv_run)
    cdef int64_t n, piece, d, next

    cdef void pieces(self) noexcept nogil:
        cdef int64_t e0
        while True:
            e0 = rv_claim(&self.next) * self.piece
            if e0 >= self.n:
                return
            rv_run_part(self.mode, self.p, self.val, self.cst, self.cptr, self.adj,
                        self.clean, e0, min(self.n, e0 + self.piece), self.d, self.ps, self.zero)

    def run(self):
        with nogil:
            self.pieces()


cdef int _run_group(const int64_t *p, int run, Tape t, double *adj, bint clean,
                    const int64_t *ps=NULL, int zero=0) except -1:
    """_run_loops, holding the tape (_hold): the loops read its columns without the GIL."""
    _hold(t)
    try:
        return _run_loops(p, run, t, adj, clean, ps, zero)
    finally:
        _unhold(t)


cdef int _run_loops(const int64_t *p, int run, Tape t, double *adj, bint clean,
                    const int64_t *ps, int zero) except -1:
    return _run_loops_on(p, run, t, t.val, t.cptr, adj, clean, ps, zero)


cdef int _run_loops_on(const int64_t *p, int run, Tape t, double *val, const double **cptr,
                       double *adj, bint clean, const int64_t *ps, int zero) except -1:
    """Run a group's loops (run: kind_table.h, enum rv_run; ps, zero: rv_run_part), shared
    with the helper threads if it has _split_min outputs or more and kind_table.h's rv_run_cut
    says where it may be cut: anywhere (a forward; a sum's backward whose lines do not meet), or
    along a dimension d (an elementwise backward). Each element's sum is read, not written: any
    cut of the elementwise group will do for it."""
    cdef const rv_ew_blk *ew = <const rv_ew_blk *>p
    cdef int64_t n = ew.n  # (every group that runs loops has n outputs: EW, SUMS)
    cdef int64_t d = RV_CUT_NONE, pieces = _PIECES, inner = 1, k
    cdef _Part part
    if n >= _split_min:
        d = rv_run_cut(run, p)
        if d >= 0:
            # A piece is one run of outputs for each index of the dimensions before d
            # (parallel.h, rv_ew_backward_box); each run costs a call and a seek, so no
            # fewer than _RUN_MIN elements to a run.
            for k in range(d + 1, ew.nd):
                inner *= ew.shape[k]
            pieces = min(_PIECES, ew.shape[d] * inner // _RUN_MIN)
            if pieces < 2:
                d = RV_CUT_NONE
    if d == RV_CUT_NONE:
        with nogil:
            rv_run_part(run, p, val, t.cst, cptr, adj, clean, 0, n, -1, ps, zero)
        return 0
    part = _Part.__new__(_Part)
    part.p, part.mode, part.t, part.adj, part.clean, part.d = p, run, t, adj, clean, d
    part.val, part.cst, part.cptr = val, t.cst, cptr
    part.ps, part.zero = ps, zero
    part.n = ew.shape[d] if d >= 0 else n  # cut along d: indices along d
    part.piece = (part.n + pieces - 1) // pieces  # (C division: no -(-a // b))
    if d < 0:  # whole cache lines of outputs in each piece
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
