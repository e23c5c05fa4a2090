# Per-thread recording state: the current tape, private tapes, no_grad.
# Part of revad._core (included textually by _core.pyx: one module, several files).

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
    cdef int quiet  # > 0: revad reads values a replay recomputes: no guards (_core_replay.pxi)


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


cdef Tape _enclosing_call():
    """The private tape of the functional call whose function this thread is running (a grad
    inside a function being differentiated), or None: a call made there records on it."""
    cdef _ThreadState st = _state()
    if _n_no_grad != 0 and st.no_grad:
        return None
    if st.tape != NULL and (<Tape>st.tape).private and not (<Tape>st.tape).finished:
        return <Tape>st.tape
    return None


def _in_derivative():
    """Whether this thread runs the function of a functional call (revad._nested)."""
    return _enclosing_call() is not None


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
            and private.cap <= _KEEP_PRIVATE_ENTRIES
            and private.cap_adj <= _KEEP_PRIVATE_ENTRIES
            and private.cap_cst <= _KEEP_PRIVATE_ENTRIES
            and private.cap_blk <= _KEEP_PRIVATE_ENTRIES):
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
    """Testing hook: (name, d/da, d/db) of the table's rows that may be lazy (group_ew.h,
    rv_ew_lazy)."""
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
        if _tracing_tape() is not None:
            # Values computed without a record would be constants of the trace, unguarded.
            raise TypeError("revad: no_grad() inside a function being traced (revad.trace): its "
                            "results would be constants of the recording; compute them outside "
                            "f and pass them as arguments, or use revad.value_and_grad")
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
