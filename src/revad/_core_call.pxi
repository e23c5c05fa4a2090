# Python functions on the tape (revad.primitive): the backward and the tangent of a CALL entry
# (kinds.h), which the sweeps stop at and hand here, with the GIL.
# Part of revad._core (included textually by _core.pyx: one module, several files).
#
# The entry's record (t.refs[h.obj], made by revad._primitive) answers two calls:
# ``backward(g)``, g the outputs' adjoints (flat float64), returns one flat float64 array (or
# None: nothing) per input; ``tangent(tangents)``, one flat float64 array per input, returns the
# outputs' tangents (flat). The user's code runs meanwhile and may record, on other tapes or on
# this one: the tape is not held, and nothing read from its columns before the call is used
# after it, only the sweep's own buffer.

cdef list _call_spans(const rv_call_blk *h):
    cdef int64_t k
    return [(h.span[2 * k], h.span[2 * k + 1]) for k in range(h.n_in)]


cdef object _user_call(Tape t, object fn, object arg):
    """fn(arg), the tape let go meanwhile (a sweep holds it: see _hold)."""
    _unhold(t)
    try:
        return fn(arg)
    finally:
        _hold(t)


cdef object _flat_result(object r, int64_t count, str what):
    """A record's answer as `count` doubles, or raise (it is the user's code's)."""
    r = np.ascontiguousarray(r, dtype=np.float64).reshape(-1)
    if r.shape[0] != count:
        raise ValueError(f"revad: internal error: {what} gave {r.shape[0]} numbers, not {count}")
    return r


cdef int _call_backward(Tape t, double *buf, int64_t n, const rv_call_blk *h,
                        bint clean) except -1:
    return _call_backward_of(t, t.refs[h.obj], buf, n, h, clean)


cdef int _call_backward_of(Tape t, object record, double *buf, int64_t n, const rv_call_blk *h,
                           bint clean) except -1:
    """Add the record's VJP of the outputs' adjoints into its inputs' adjoints (buf, n): the
    tape's record, or a replay's (made at the replay's values)."""
    cdef int64_t out = h.out, m = h.n
    spans = _call_spans(h)
    g = np.array(<double[:m]>(buf + out)) if m else np.zeros(0)
    if clean:
        memset(buf + out, 0, <size_t>m * sizeof(double))
    cts = _user_call(t, record.backward, g)
    adj = np.asarray(<double[:n]>buf)
    for (first, count), ct in zip(spans, cts):
        if ct is not None:
            adj[first:first + count] += _flat_result(ct, count, "a VJP")
    return 0


cdef int _call_tangent(Tape t, double *tng, const rv_call_blk *h) except -1:
    """Write the record's tangents of the outputs, from its inputs' (tng)."""
    cdef int64_t out = h.out, m = h.n, first, count
    ins = []
    for first, count in _call_spans(h):
        ins.append(np.array(<double[:count]>(tng + first)) if count else np.zeros(0))
    r = _flat_result(_user_call(t, t.refs[h.obj].tangent, ins), m, "a JVP")
    if m:
        np.asarray(<double[:m]>(tng + out))[:] = r
    return 0
