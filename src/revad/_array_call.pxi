# Python functions recorded as one entry (revad.primitive): a CALL group (kinds.h), whose
# backward and tangent revad._core hands back to Python (_core_call.pxi).
# Part of revad._array (included textually by _array.pyx: one module, several files).

cdef Array _consecutive(Tape t, object o):
    """Var or Array o on tape t over consecutive slots in C order: itself if it is, else a
    gather (a strided or broadcast view, whose adjoints one run of slots could not take)."""
    cdef Array a = _as_view(o, t)
    cdef int64_t first = _slot0(a)
    if a.size <= 1 or _is_contiguous(a.shape, a.strides):
        return a
    return _emit_gather(t, _slot_map(first, a.shape, a.strides), None)


def _record_call(record, tuple inputs not None, values):
    """Record a Python function's call as one CALL group: its inputs (Vars and Arrays), its
    output `values` (flat float64) and `record`, which answers the sweeps (_core_call.pxi).
    Returns the outputs as a flat Array (a constant one under no_grad)."""
    values = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
    cdef Tape t = _tape_for(inputs)
    if t is None:
        return _const_leaf(values)
    cdef int64_t m = values.shape[0], n_in = len(inputs), k, bi, i0
    _check_entries(m)
    spans = []
    for o in inputs:
        a = _consecutive(t, o)
        spans.append((_slot0(a), a.size))
    if m == 0:  # no outputs: nothing to record, nothing flows back
        return _fresh(t, 0, (0,))
    obj = t.push_ref(record)
    t.room(m, rv_call_width(n_in))  # nothing waits after this: the room stays ours
    bi = t.push_blk(rv_call_width(n_in))
    i0 = t.n
    cdef rv_call_blk *h = <rv_call_blk *>(t.blk + bi)
    h.out, h.n, h.obj, h.n_in = i0, m, obj, n_in
    for k in range(n_in):
        h.span[2 * k], h.span[2 * k + 1] = spans[k]
    memcpy(t.val + i0, cnp.PyArray_DATA(<cnp.ndarray>values), m * sizeof(double))
    _close_group(t, i0, m, RV_CALL, bi)
    return _fresh(t, i0, (m,))


def _nests_nodes(o):
    """Whether o is a sequence or object ndarray holding Vars or Arrays (for revad._primitive)."""
    return _holds_nodes(o)
