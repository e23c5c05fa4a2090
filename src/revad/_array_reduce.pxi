# Reductions: sum groups (group_sums.h, SUMS) and trees of elementwise groups.
# Part of revad._array (included textually by _array.pyx: one module, several files).

# ---------------------------------------------------------------------------------------------
# Reductions: sum groups (SUMS) and trees of elementwise groups.

cdef Array _emit_sum(Tape t, int64_t first, tuple out_shape, tuple out_strides, int64_t stride,
                     int64_t count, Array src=None):
    """One sum group (group_sums.h, SUMS): for each element of out_shape, the sum of the `count`
    slots `stride` apart from first + (the element's index . out_strides). src: the Array summed,
    if it may be lazy (first is then its raw first slot): a sum over its lines computes its values
    on the fly and leaves them unwritten; any other writes them first."""
    cdef int64_t nd = len(out_shape), n = _prod(out_shape), w, bi, i0, d
    if nd > RV_EW_MAXD:
        raise ValueError(f"revad: arrays of more than {RV_EW_MAXD} dimensions are not supported")
    if n == 0:
        return _fresh(t, t.n, out_shape)
    _check_entries(n)
    w = rv_sums_width(nd)
    t.room(n, w)  # (both at once: see Tape.room)
    bi = t.push_blk(w)
    i0 = t.n
    cdef rv_sums_blk *h = <rv_sums_blk *>(t.blk + bi)
    h.out, h.n, h.nd, h.first, h.count, h.stride = i0, n, nd, first, count, stride
    cdef int64_t *ostride = rv_sums_ostride(h)  # (after nd)
    for d in range(nd):
        h.shape[d] = out_shape[d]
        ostride[d] = out_strides[d]
    _close_group(t, i0, n, RV_SUMS, bi)
    cdef const rv_ew_blk *pe = NULL
    if src is not None and src.lazy and src.lazy - 1 in t.absent:
        pe = <const rv_ew_blk *>(t.blk + src.lazy - 1)
    if pe != NULL and rv_sums_over(h, pe):
        _run_group(t.blk + bi, RV_RUN_SUMS_LAZY_FORWARD, t, NULL, False, <const int64_t *>pe)
    else:
        if src is not None:
            _slot0(src)
        _run_group(t.blk + bi, RV_RUN_SUMS_FORWARD, t, NULL, False)
    return _fresh(t, i0, out_shape)


cdef tuple _collapse(tuple shape, tuple strides):
    """Merge dimensions into as few (size, stride) lines as possible (size-1 dims dropped)."""
    dims = [(n, s) for n, s in zip(shape, strides) if n != 1]
    out = []
    for n, s in reversed(dims):
        if out and out[-1][1] * out[-1][0] == s:
            out[-1] = (out[-1][0] * n, out[-1][1])
        else:
            out.append((n, s))
    return tuple(reversed(out))


cdef object _sum(object x, object axis, bint keepdims):
    if type(x) is not Array:
        x = _to_array(x)
    cdef Array self = <Array>x
    axes = _norm_axes(axis, len(self.shape))
    cdef Array a = _bound(self)
    if a is None:
        return _const_leaf(np.sum(self.value, axis=axes, keepdims=keepdims))
    kept = [d for d in range(len(a.shape)) if d not in axes]
    out_shape = tuple(a.shape[d] for d in kept)
    lines = _collapse(tuple(a.shape[d] for d in axes), tuple(a.strides[d] for d in axes))
    if len(lines) <= 1:
        count, stride = lines[0] if lines else (_prod(tuple(a.shape[d] for d in axes)), 1)
        r = _emit_sum(a.tape, a._first, out_shape, tuple(a.strides[d] for d in kept), stride, count,
                      a)
    else:
        # Not one evenly spaced line: sum the innermost reduced axis first, then the rest.
        inner = axes[0]
        for d in axes:
            if abs(a.strides[d]) < abs(a.strides[inner]):
                inner = d
        part = _sum(a, inner, False)
        rest = tuple(d - (d > inner) for d in axes if d != inner)
        r = _sum(part, rest, False)
    if keepdims:
        r = _reshape(r, tuple([1 if d in axes else a.shape[d] for d in range(len(a.shape))]))
    return r


cdef object _mean(object x, object axis, bint keepdims):
    if type(x) is not Array:
        x = _to_array(x)
    axes = _norm_axes(axis, len((<Array>x).shape))
    cdef int64_t count = _prod(tuple((<Array>x).shape[d] for d in axes))
    return _binop(RV_DIV, _sum(x, axis, keepdims), float(count))


cdef object _tree_reduce(object x, int code, object axis, bint keepdims, str name,
                         bint split_ties=True):
    """prod/max/min over axes by a balanced tree of elementwise entries: O(input) entries,
    O(log n) Python steps, and (unlike picking the argmax) replayable at new inputs.
    split_ties=False: a max/min whose gradient is never used (logsumexp's shift) leaves a tie
    as the tree splits it, and a trace then guards no ties."""
    if type(x) is not Array:
        x = _to_array(x)
    cdef Array self = <Array>x
    axes = _norm_axes(axis, len(self.shape))
    for d in axes:
        if self.shape[d] == 0 and code != RV_MUL:
            raise ValueError(f"revad: zero-size Array (shape {self.shape}) to reduction "
                             f"operation {name}, which has no identity")
    cdef Array a = _bound(self)
    if a is None:
        fn = {RV_MUL: np.prod, RV_MAXIMUM: np.max, RV_MINIMUM: np.min}[code]
        return _const_leaf(fn(self.value, axis=axes, keepdims=keepdims))
    kept = [d for d in range(len(a.shape)) if d not in axes]
    out_shape = tuple(a.shape[d] for d in kept)
    # The reduced axis goes first (a view, for one axis): each level's pairs are then two blocks
    # of lines, and an odd line out is appended to the level's fresh block as a view.
    r = _transpose(a, axes + tuple(kept))
    if len(axes) != 1:
        r = _reshape(r, (-1,) + out_shape) if axes else _reshape(r, (1,) + out_shape)
    cdef int64_t L = r.shape[0], h
    if L == 0:  # an empty product is 1
        r = _emit_gather(a.tape, np.full(out_shape, -1, np.int64), np.ones(out_shape))
    else:
        while L > 1:
            h = L // 2
            paired = _binop(code, r[:h], r[h:2 * h])
            r = _append_line(a.tape, paired, r[2 * h, ...]) if L % 2 else paired
            L = r.shape[0]
        r = r[0, ...]
    if code != RV_MUL and split_ties:
        r = _split_ties(a, r, axes)
    if keepdims:
        r = _reshape(r, tuple(1 if d in axes else a.shape[d] for d in range(len(a.shape))))
    return r


cdef object _split_ties(Array a, object r, tuple axes):
    """max/min r of a over axes, with the gradient of a tie split evenly among the k elements
    that tie (1/k each, PyTorch's rule); the pairwise tree alone gives 1/2, 1/4, ... Where a
    (finite) tie occurs: r + sum over the ties of (x - r) / k, whose value is r exactly (each
    x - r is 0) and whose partials are 1/k for each tied x."""
    kshape = tuple([1 if d in axes else a.shape[d] for d in range(len(a.shape))])
    # The ties decide what is recorded; a trace guards them, not the values (_ties_check).
    _core._quiet(1)
    try:
        mv = _on_values(<Array>r, np.copy).reshape(kshape)
        ties = (_on_values(a, np.copy) == mv) & np.isfinite(mv)
    finally:
        _core._quiet(-1)
    k = ties.sum(axis=axes, keepdims=True)
    if a.tape.sites is not None:
        _ties_check(a, <Array>r, kshape, axes, ties if (k > 1).any() else None)
    if not (k > 1).any():
        return r
    w = np.where(ties, 1.0 / np.maximum(k, 1), 0.0)
    w.setflags(write=False)  # ours alone: the tape may reference it rather than copy it
    d = _where(ties, _binop(RV_SUB, a, _reshape(r, kshape)), 0.0)
    return _binop(RV_ADD, r, _sum(_binop(RV_MUL, d, w), axes, False))


cdef Array _append_line(Tape t, Array block, Array line):
    """block (lines along axis 0) with `line` appended: when block is the last thing recorded, in
    C order, COPY entries of line's elements right after it make both one view; else joined."""
    if _slot0(block) + block.size == t.n and _is_contiguous(block.shape, block.strides):
        _emit_gather(t, _slot_map(_slot0(line), line.shape, line.strides), None)
        shape = (block.shape[0] + 1,) + block.shape[1:]
        return _view(t, _slot0(block), shape, _c_strides(shape))
    return _concatenate([block, _expand_dims(line, 0)], 0)


cdef object _cumsum(object x, object axis):
    if type(x) is not Array:
        x = _to_array(x)
    cdef Array self = <Array>x
    if axis is None or not self.shape:  # (as NumPy: a 0-d Array's one axis is 0 or -1)
        if axis is not None:
            _axis_index(axis, 1, "axis")
        self = _reshape(self, (-1,))
        axis = 0
    ax = _axis_index(axis, len(self.shape), "axis")
    cdef Array a = _bound(self)
    if a is None:
        return _const_leaf(np.cumsum(self.value, axis=ax))
    cdef Array last = _moveaxis_last(a, ax)
    m = _slot_map(_slot0(last), last.shape, last.strides)
    cdef Tape t = a.tape
    cdef int64_t L = a.shape[ax], lines = m.size // L if L else 0, i, j, s, i0, k = 0
    m = np.asarray(m, dtype=np.int64, order="C")
    cdef const int64_t *pm = _iptr(m) if m.size else NULL
    t.reserve(m.size)
    i0 = t.n
    for i in range(lines):
        for j in range(L):
            s = pm[i * L + j]
            if j == 0:
                t.op[i0 + k] = RV_COPY
                t.arg0[i0 + k] = <int32_t>s
                t.arg1[i0 + k] = -1
                t.val[i0 + k] = t.val[s]
            else:
                t.op[i0 + k] = RV_ADD
                t.arg0[i0 + k] = <int32_t>(i0 + k - 1)
                t.arg1[i0 + k] = <int32_t>s
                t.val[i0 + k] = t.val[i0 + k - 1] + t.val[s]
            k += 1
    t.n = i0 + k
    r = _fresh(t, i0, m.shape)
    # back from (..., axis last) to the original order
    nd = len(a.shape)
    inv = list(range(nd - 1))
    inv.insert(ax, nd - 1)
    return _transpose(r, tuple(inv))


cdef object _logsumexp(object x, object axis, bint keepdims):
    """log(sum(exp(x))) computed stably: the maximum (a constant) is subtracted first."""
    if type(x) is not Array:
        x = _to_array(x)
    axes = _norm_axes(axis, len((<Array>x).shape))
    m = _lse_shift(<Array>x, axes)
    r = _core.functions["log"](_sum(_unop(RV_EXP, _binop(RV_SUB, x, m)), axes, True)) + m
    return r if keepdims else _squeeze(r, axes)


cdef object _lse_shift(Array x, tuple axes):
    """The shift a logsumexp of x over axes subtracts first: x's maximum there (kept), 0 where
    it is not finite, of derivative 0. While a trace records, the shift is recorded (a max,
    then _shift: isfinite ? m : 0), so that a replay shifts by the new maximum, as eager would,
    without a guard on every element of x; else it is a constant."""
    if x.size and _tracing_tape() is not None:
        return _unop(RV_SHIFT, _tree_reduce(x, RV_MAXIMUM, axes, True, "max", False))
    if x.size:
        m = _on_values(x, np.max, (axes, None, True))
    else:
        m = np.zeros([1] * len(x.shape))
    m = np.where(np.isfinite(m), m, 0.0)
    m.setflags(write=False)  # ours alone: the tape may reference it rather than copy it
    return m


def _logsumexp_shift(x, axis):
    """_lse_shift for revad.scipy.special.logsumexp (its b= and return_sign forms): x an Array,
    axis None, an int or a tuple."""
    cdef Array a = <Array>_to_array(x)
    return _lse_shift(a, _norm_axes(axis, len(a.shape)))
