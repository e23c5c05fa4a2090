# Reading a tape back: bulk leaf helpers, tape_info, forward mode, graph export.
# Part of revad._core (included textually by _core.pyx: one module, several files).

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
        grouped += t.op[k] == RV_GROUP_SLOT
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
# constant-pool index or nothing. Built from ops_table.h's table, as everything else is.
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
    # Entries whose operands are not in arg0/arg1 (block entries and groups read the side table
    # `blk`): drawn as nodes without operand edges, named by their kind (kind_table.h).
    _op_kinds[RV_CONST] = ("constant", "block")
    _op_kinds[RV_GUARD] = ("guard", "unary")  # a replay's check of slot arg0 (revad.trace)
    _slot_args[RV_GUARD] = 1
    for c in range(RV_DOTC, RV_N_OPS):
        _op_kinds[c] = (rv_kind_of(c).name.decode(), "block")


_init_op_kinds()


def _tangent_sweep(Var y not None, list leaves not None, tangents, slots=None):
    """d(y) along a direction in which the leaves move at rates `tangents`: one forward sweep.

    ``leaves`` holds Var leaves (one tangent each) and Array leaves (one per element, in C
    order), in the order of ``tangents``. The tape is read as recorded (values saved, nothing
    re-evaluated); leaves not on y's tape contribute nothing. With `slots` (an int64 ndarray of
    slots of y's tape, y among them), the tangents of all those slots, in slots' shape.
    """
    from revad._array import _leaf_binding  # not at import: revad._array cimports this module
    cdef const double[::1] tv = np.ascontiguousarray(tangents, dtype=np.float64)
    cdef Py_ssize_t k, j, p = 0, m = len(leaves), size
    cdef Tape t = y.tape
    cdef Var x
    cdef double r = 0.0
    cdef int64_t top = 0, first, start = 0
    cdef double *tng = NULL
    if slots is not None:
        slots = np.asarray(slots, dtype=np.int64)
    if t is not None:
        top = y.slot if slots is None or not slots.size else max(y.slot, int(slots.max()))
        top = rv_group_end(t.op, top)  # y may be one output of a group carried above it
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
            raise ValueError(f"revad: the leaves take {p} tangents or more, "
                             f"but {tv.shape[0]} were given")
        if t is None:
            return r if slots is None else np.full(slots.shape, r)
        t.settle()
        t.check_readonly()
        _hold(t)
        try:
            while start >= 0:  # stopping at each Python function (revad.primitive)
                with nogil:
                    start = rv_forward_tangent(t.op, t.arg0, t.arg1, t.val, t.cst, t.blk,
                                               t.cptr, tng, start, top)
                if start >= 0:
                    _call_tangent(t, tng, <const rv_call_blk *>(t.blk + t.arg0[start]))
                    start += 1
        finally:
            _unhold(t)
        r = tng[y.slot]
        if slots is not None:
            return np.asarray(<double[:top + 1]>tng)[slots]
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
    "binary", "compare" or "block" (operands in the side table, not drawn), with the suffix
    "_const_b" when arg1 indexes ``cst`` instead of naming a slot (``x * 2.0``) or "_const_a"
    when arg0 does (``2.0 / x``).
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
        if c >= RV_DOTC and rv_kind_of(c).group:
            if c != RV_GROUP_SLOT:  # a group's carrier: what its slots show (kind_table.h)
                cur = <uint8_t>rv_kind_of(c).shows(t.blk + t.arg0[i], c)
            if i < n:
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
