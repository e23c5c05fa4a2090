# The reverse sweep that records itself: derivatives of derivatives (revad._nested).
# Part of revad._array (included textually by _array.pyx: one module, several files).
#
# The C sweep (sweep.h) multiplies numbers. This one walks the same entries, from an output down
# to a slot `lo`, and records each multiplication as an op on the same tape: every adjoint
# becomes a node (a slot), so the gradient it leaves is itself a recorded function of the
# inputs, and any sweep (C or this one) differentiates it again. Each kind's rule is its
# backward written with recorded ops: a row's partials come from the op table's own
# expressions (revad._partials), a sum broadcasts, a matrix product multiplies by the other
# operand, a Python function calls its VJP on nodes.

cdef class _Run  # (below)


cdef object _partials_of = None   # revad._partials.partials, bound on first use
# op code -> (row code, variant: 0 both operands on the tape, 1 b a constant, 2 a a constant)
cdef dict _row_variant = None


cdef dict _variants():
    cdef int k
    out = {}
    for k in range(rv_n_op_table):
        info = rv_op_table[k]
        if info.arity == 1:
            out[info.code] = (info.code, 0)
        elif info.arity == 2:
            out[info.code] = (info.code, 0)
            out[info.code + 1] = (info.code, 1)  # _VC (ops_table.h's enum: N, N_VC, N_CV)
            out[info.code + 2] = (info.code, 2)  # _CV
    return out


@cython.final
cdef class _RecordedSweep:
    """The adjoints of slots [lo, hi] of tape t, each the slot of a node on t (-1: zero)."""
    cdef Tape t
    cdef int64_t lo, hi
    cdef object amap_arr
    cdef int64_t[::1] amap

    def __cinit__(self, Tape t, int64_t lo, int64_t hi):
        self.t, self.lo, self.hi = t, lo, hi
        self.amap_arr = np.full(hi - lo + 1, -1, dtype=np.int64)
        self.amap = self.amap_arr

    cdef object var(self, int64_t s):
        return _var_at(self.t, <int32_t>s, self.t.val[s])

    cdef object adjoint(self, int64_t s):
        """The adjoint node of slot s (a Var), or None."""
        cdef int64_t a = self.amap[s - self.lo]
        return None if a < 0 else self.var(a)

    cdef int add(self, int64_t s, object c) except -1:
        """Add contribution c (a Var on t, or a number: a constant) into slot s's adjoint."""
        if s < self.lo:
            return 0  # below the inputs: nothing there depends on them
        cdef int64_t a = self.amap[s - self.lo]
        if type(c) is not Var:
            if c == 0.0:
                return 0
            c = _to_node(self.t, c)
        if a >= 0:
            c = self.var(a) + c
        self.amap[s - self.lo] = (<Var>c).slot
        return 0

    cdef object adjoints(self, object slots):
        """The adjoints of `slots` (a _Run, or an int64 ndarray of slots) as an Array of its
        shape (zero where there is none: constants), or None if none has one."""
        cdef _Run r
        cdef int64_t n
        if type(slots) is _Run:
            r = <_Run>slots
            if r.first < self.lo:
                return self.adjoints(r.slot_map())
            n = _prod(r.shape)
            m = self.amap_arr[r.first - self.lo:r.first - self.lo + n]
            have = m >= 0
            if not have.any():
                return None
            if have.all() and (n == 1 or (m[n - 1] - m[0] == n - 1
                                          and (np.diff(m) == 1).all())):
                return _view(self.t, m[0], r.shape, _c_strides(r.shape))  # one run of nodes
            return _adjoint_nodes(self.t, self.amap_arr, self.lo, r.slot_map())
        return _adjoint_nodes(self.t, self.amap_arr, self.lo, slots)

    cdef int add_many(self, object slots, object c) except -1:
        """Add Array (or constant) c, of slots' shape, into the adjoints of `slots` (a _Run, or
        an int64 ndarray of slots, each once: broadcast contributions are summed by the
        caller)."""
        if type(slots) is _Run and (<_Run>slots).first < self.lo:
            slots = (<_Run>slots).slot_map()
        if type(slots) is _Run:
            shape = (<_Run>slots).shape
            a = (<_Run>slots).first - self.lo
            where = slice(a, a + _prod(shape))  # a slice of the map: no index array
        else:
            keep = slots >= self.lo
            if not keep.all():
                if not keep.any():
                    return 0
                c = (_to_array(c)[keep] if type(c) is Array
                     else np.broadcast_to(c, slots.shape)[keep])
                slots = slots[keep]
            shape = slots.shape
            where = slots.reshape(-1) - self.lo
        old = self.adjoints(slots)
        if type(c) is not Array or (<Array>c).tape is None:  # a constant (no derivative)
            c = _to_node(self.t, c.value if type(c) is Array else c)
        cdef Array new = _to_array(c if old is None else old + c)
        if new.shape != shape:
            new = _broadcast_to(new, shape)
        self.amap_arr[where] = _slot_map(_slot0(new), new.shape, new.strides).reshape(-1)
        return 0

    cdef int run(self) except -1:
        """The sweep, from hi down to lo."""
        global _partials_of, _row_variant
        if _partials_of is None:
            from revad._partials import partials
            _partials_of = partials
            _row_variant = _variants()
        cdef Tape t = self.t
        cdef int64_t i, g
        cdef int c
        for i in range(self.hi, self.lo - 1, -1):
            c = t.op[i]
            if c == RV_GROUP_SLOT or c == RV_LEAF or c == RV_CONST:
                continue
            if c >= RV_DOTC:
                self.group(i, c)
                continue
            g = self.amap[i - self.lo]
            if g < 0 or c not in _row_variant:
                continue  # no adjoint, or a comparison
            self.row(i, c)
        return 0

    cdef int row(self, int64_t i, int c) except -1:
        cdef Tape t = self.t
        code, variant = _row_variant[c]
        ps = _partials_of(code)
        cdef int32_t i0 = t.arg0[i], i1 = t.arg1[i]
        a = t.cst[i0] if variant == 2 else self.var(i0)
        b = None
        if len(ps) == 2:
            b = t.cst[i1] if variant == 1 else self.var(i1)
        env = {"a": a, "b": b, "y": self.var(i)}
        g = self.adjoint(i)
        if variant != 2:
            self.add(i0, _scaled(g, ps[0](env)))
        if len(ps) == 2 and variant != 1:
            self.add(i1, _scaled(g, ps[1](env)))
        return 0

    cdef int group(self, int64_t i, int c) except -1:
        cdef Tape t = self.t
        cdef int64_t bi = t.arg0[i]
        if c == RV_EW:
            return self.elementwise(bi)
        if c == RV_SUMS:
            return self.sums(bi)
        if c == RV_MM:
            return self.matmul(bi)
        if c == RV_DOTC or c == RV_DOT:
            return self.dot(i, bi, c)
        if c == RV_CALL:
            return self.call(bi)
        if c == RV_PAIR:
            return self.pair(bi)
        raise TypeError(f"revad: derivatives of derivatives do not go through a "
                        f"{rv_kind_of(c).name.decode()} entry yet")

    cdef object operand(self, const rv_ew_operand *o, tuple shape):
        """An elementwise group's operand over its (collapsed) shape: an Array view of its
        slots, or the constant's values as an ndarray."""
        strides = tuple([o.stride[d] for d in range(len(shape))])
        if o.src == RV_SRC_SLOTS:
            return _view(self.t, o.off, shape, strides)
        if o.src == RV_SRC_POOL:
            return _strided_copy(self.t.cst, o.off, shape, strides)
        return _strided_copy(self.t.cptr[o.src], o.off, shape, strides)

    cdef int elementwise(self, int64_t bi) except -1:
        cdef Tape t = self.t
        cdef rv_ew_blk *h = <rv_ew_blk *>(t.blk + bi)
        cdef int64_t out = h.out, n = h.n, d
        cdef int arity = rv_ew_arity(h.op)
        shape = tuple([h.shape[d] for d in range(h.nd)])
        g = self.adjoints(_slots(out, shape, _c_strides(shape)))
        if g is None:
            return 0
        t.write_group(bi)  # a lazy group's values, if its partials read y (they do not)
        h = <rv_ew_blk *>(t.blk + bi)  # (recording may have moved blk)
        code = h.op
        ops, slots = [], []
        for j in range(arity):
            o = rv_ew_operand_at(h, j)
            ops.append(self.operand(o, shape))
            st = tuple([o.stride[d] for d in range(len(shape))])
            slots.append((o.src == RV_SRC_SLOTS, o.off, st))
        env = {"a": ops[0], "b": ops[1] if arity == 2 else None,
               "y": _view(t, out, shape, _c_strides(shape))}
        ps = _partials_of(code)
        for j in range(arity):
            on_tape, off, st = slots[j]
            if not on_tape:
                continue
            contrib = _scaled(g, ps[j](env))
            if type(contrib) is float and contrib == 0.0:
                continue  # a step function's partial: nothing flows
            # Broadcast dimensions (stride 0) of this operand: each of its elements took part
            # several times, so its adjoint is the sum.
            axes = tuple([d for d in range(len(shape)) if st[d] == 0 and shape[d] > 1])
            own = tuple([1 if d in axes else shape[d] for d in range(len(shape))])
            if axes:
                contrib = _sum(_broadcast_like(contrib, shape), axes, True)
            self.add_many(_slots(off, own, st), contrib)
        return 0

    cdef int sums(self, int64_t bi) except -1:
        cdef Tape t = self.t
        cdef rv_sums_blk *h = <rv_sums_blk *>(t.blk + bi)
        cdef int64_t d
        shape = tuple([h.shape[d] for d in range(h.nd)])
        ost = tuple([rv_sums_ostride(h)[d] for d in range(h.nd)])
        out, first, count, stride = h.out, h.first, h.count, h.stride
        g = self.adjoints(_slots(out, shape, _c_strides(shape)))
        if g is None or count == 0:
            return 0
        full = shape + (count,)
        self.add_many(_slots(first, full, ost + (stride,)),
                      _broadcast_to(_reshape(g, shape + (1,)), full))
        return 0

    cdef object matrix(self, const rv_mm_operand *o, int64_t rows, int64_t cols):
        if o.src < 0:
            return _view(self.t, o.off, (rows, cols), (o.rs, o.cs))
        return _strided_copy(self.t.cptr[o.src], o.off, (rows, cols), (o.rs, o.cs))

    cdef int matmul(self, int64_t bi) except -1:
        cdef Tape t = self.t
        cdef rv_mm_blk h = (<rv_mm_blk *>(t.blk + bi))[0]  # a copy: recording moves blk
        G = self.adjoints(_slots(h.out, (h.m, h.q), (h.q, 1)))
        if G is None:
            return 0
        A = self.matrix(&h.a, h.m, h.n)
        B = self.matrix(&h.b, h.n, h.q)
        if h.a.src < 0:
            self.add_many(_slots(h.a.off, (h.m, h.n), (h.a.rs, h.a.cs)),
                          _matmul(G, B.T))
        if h.b.src < 0:
            self.add_many(_slots(h.b.off, (h.n, h.q), (h.b.rs, h.b.cs)),
                          _matmul(A.T, G))
        return 0

    cdef int dot(self, int64_t i, int64_t bi, int c) except -1:
        cdef Tape t = self.t
        g = self.adjoint(i)
        if g is None:
            return 0
        cdef rv_dotc_blk hc
        cdef rv_dot_blk hd
        if c == RV_DOTC:
            hc = (<rv_dotc_blk *>(t.blk + bi))[0]
            w = _strided_copy(t.cptr[hc.c], hc.coff, (hc.count,), (hc.cstride,))
            self.add_many(_slots(hc.start, (hc.count,), (hc.stride,)), g * w)
        else:
            hd = (<rv_dot_blk *>(t.blk + bi))[0]
            x0 = _view(t, hd.start0, (hd.count,), (hd.stride0,))
            x1 = _view(t, hd.start1, (hd.count,), (hd.stride1,))
            self.add_many(_slots(hd.start0, (hd.count,), (hd.stride0,)), g * x1)
            self.add_many(_slots(hd.start1, (hd.count,), (hd.stride1,)), g * x0)
        return 0

    cdef int pair(self, int64_t bi) except -1:
        cdef Tape t = self.t
        cdef rv_pair_blk *h = <rv_pair_blk *>(t.blk + bi)
        cdef int64_t out = h.out, d
        if h.src < 0:
            raise TypeError("revad: derivatives of derivatives do not go through this special "
                            "function: its row gives no recorded partials")
        source, operands = t.refs[h.src][:2]  # (the third: a replay's rerun)
        shape = tuple([h.shape[d] for d in range(h.nd)])
        g = self.adjoints(_slots(out, shape, _c_strides(shape)))
        if g is None:
            return 0
        out_shape = np.broadcast_shapes(*[np.shape(o.value if type(o) in (Var, Array) else o)
                                          for o in operands])
        y = _var_at(t, <int32_t>out, t.val[out]) if not out_shape else _view(
            t, out, out_shape, _c_strides(out_shape))
        g = _reshape(_to_array(g), out_shape)
        for o, p in zip(operands, source(operands, y)):
            if type(o) is Var:
                self.add(_var_slot(<Var>o, t), _sum_to(_scaled(g, p), ())[()])
            elif type(o) is Array:
                self.add_many(_slots(_slot0(<Array>o), (<Array>o).shape, (<Array>o).strides),
                              _sum_to(_scaled(g, p), (<Array>o).shape))
        return 0

    cdef int call(self, int64_t bi) except -1:
        cdef Tape t = self.t
        cdef rv_call_blk *h = <rv_call_blk *>(t.blk + bi)
        cdef int64_t k, out = h.out, m = h.n
        spans = [(h.span[2 * k], h.span[2 * k + 1]) for k in range(h.n_in)]
        record = t.refs[h.obj]
        g = self.adjoints(_slots(out, (m,), (1,)))
        if g is None:
            return 0
        inputs = [_view(t, first, (count,), (1,)) for first, count in spans]
        cts = record.backward_recorded(g, _view(t, out, (m,), (1,)), inputs)
        for (first, count), ct in zip(spans, cts):
            if ct is not None:
                self.add_many(_slots(first, (count,), (1,)), ct)
        return 0


cdef object _strided_copy(const double *base, int64_t off, tuple shape, tuple strides):
    """A copy of the doubles at base + off with `shape` and `strides` (in doubles): a constant
    operand as the loops read it (the pool, or a constant array's memory from its cptr)."""
    cdef int64_t lo = off, hi = off, n, st
    cdef Py_ssize_t d
    if _prod(shape) == 0:
        return np.zeros(shape)
    for d in range(len(shape)):
        n, st = shape[d], strides[d]
        if st < 0:
            lo += (n - 1) * st
        else:
            hi += (n - 1) * st
    return np.ndarray(shape, np.float64, <double[:hi - lo + 1]>(base + lo), (off - lo) * 8,
                      tuple([8 * st for st in strides])).copy()


cdef object _sum_to(object c, tuple shape):
    """Recorded contribution c (of the output's shape) summed to an operand's `shape` over the
    axes along which that operand was broadcast."""
    c = _to_array(c)
    lead = len(c.shape) - len(shape)
    if lead > 0:
        c = _sum(c, tuple(range(lead)), False)
    axes = tuple([d for d in range(len(shape)) if shape[d] == 1 and c.shape[d] != 1])
    return _sum(c, axes, True) if axes else c


@cython.final
cdef class _Run:
    """Slots first, first + 1, ... in C order over `shape`: what most entries read and write,
    held as two numbers instead of a map of every slot."""
    cdef int64_t first
    cdef tuple shape

    cdef object slot_map(self):
        return _slot_map(self.first, self.shape, _c_strides(self.shape))


cdef object _slots(int64_t first, tuple shape, tuple strides):
    """The slots of a view: a _Run where they are consecutive in C order, else their map."""
    cdef _Run r
    if _is_contiguous(shape, strides):
        r = _Run.__new__(_Run)
        r.first, r.shape = first, shape
        return r
    return _slot_map(first, shape, strides)


cdef object _scaled(object g, object d):
    """g * d, without an entry where d is 1 (a sum's, a copy's partial) or 0."""
    if type(d) is float or type(d) is int:
        if d == 1.0:
            return g
        if d == 0.0:
            return 0.0
    return g * d


cdef object _broadcast_like(object c, tuple shape):
    c = _to_array(c)
    return c if c.shape == shape else _broadcast_to(c, shape)


cdef object _to_node(Tape t, object c):
    """A constant contribution (a number or an ndarray) as a node on t: the adjoint map holds
    slots. (A constant has no derivative: a CONST entry.)"""
    v = np.asarray(c, dtype=np.float64)
    r = _emit_gather(t, np.full(v.shape, -1, dtype=np.int64), v)
    return r if v.ndim else r[()]


def _recorded_adjoints(Var out not None, int64_t lo):
    """Record the reverse sweep from out down to slot lo on out's tape: returns the adjoint
    map, an int64 ndarray: slot - lo -> the slot of the node holding that slot's adjoint, or
    -1 where it is zero."""
    cdef Tape t = out.tape
    cdef int64_t top = rv_group_end(t.op, out.slot)
    cdef _RecordedSweep s = _RecordedSweep(t, lo, top)
    one = _to_node(t, 1.0)
    s.amap[out.slot - lo] = (<Var>one).slot
    s.run()
    return s.amap_arr


def _adjoint_nodes(Tape t, object amap, int64_t lo, object slots):
    """The adjoints of `slots` (int64 ndarray) from an adjoint map: an Array (zeros where none),
    or None if none has one."""
    m = amap[slots.reshape(-1) - lo].reshape(slots.shape)
    if not (m >= 0).any():
        return None
    if (m >= 0).all():
        return _from_slots(t, m)
    return _emit_gather(t, m, np.zeros(m.shape))


def _nested_adjoints(out, list nodes not None):
    """(adjoint map, lo) of a recorded sweep from out (a Var) down to the lowest slot of
    `nodes` (the call's fresh Vars and Arrays, on one tape), or None when out does not
    depend on them (a number, a leaf, another tape's Var)."""
    cdef int64_t lo = INT64_MAX
    cdef Tape t = None
    for o in nodes:
        if type(o) is Var:
            t, lo = (<Var>o).tape, min(lo, (<Var>o).slot)
        elif (<Array>o).size:
            t = (<Array>o).tape
            lo = min(lo, _slot_map(_slot0(<Array>o), (<Array>o).shape,
                                   (<Array>o).strides).min())
    if type(out) is not Var or t is None or (<Var>out).tape is not t or (<Var>out).slot < lo:
        return None
    return _recorded_adjoints(out, lo), lo


def _adjoint_of(node, amap, int64_t lo):
    """The adjoint of a Var or an Array (its recorded node), from an adjoint map; None when
    it has none."""
    cdef Var v
    if type(node) is Var:
        v = <Var>node
        a = amap[v.slot - lo] if v.slot >= lo else -1
        return None if a < 0 else _var_at(v.tape, <int32_t>a, v.tape.val[a])
    cdef Array x = <Array>node
    if x.size == 0:
        return None
    return _adjoint_nodes(x.tape, amap, lo, _slot_map(_slot0(x), x.shape, x.strides))


def _slots_of(Array a not None):
    """The slots of a recorded Array's elements (int64, its shape), its values written; None
    for an Array not recorded (a leaf, a constant)."""
    if a.tape is None:
        return None
    return _slot_map(_slot0(a), a.shape, a.strides)
