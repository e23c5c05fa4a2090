# SciPy's special functions: the ufunc-pair group (group_pair.h, PAIR), whose values and
# partials SciPy computed over the whole group at record time (the rows: revad/scipy/_rows.py),
# and the hand-off of SciPy's ufuncs from __array_ufunc__ to those rows.
# Part of revad._array (included textually by _array.pyx: one module, several files).

import sys


def _pair(values, tuple operands not None, list partials not None, source=None, rerun=None):
    """One ufunc-pair group: `values` (what a SciPy function gave on the operands' values, in the
    broadcast output shape), the operands (Arrays, Vars or constants) and, per operand, its
    partials (an array broadcastable to the output; None for a constant operand, which gets no
    entry). Returns an Array; a Var when no operand is an Array and the output is 0-d; a
    constant (an Array leaf, or a Var leaf) under no_grad. `source`, if given, is kept with the
    tape for a sweep that records itself (revad._nested): a function of the operands (as
    recorded nodes) and the output node giving the recorded partials, one per operand.
    `rerun`, for a replay (revad.trace): rerun(values) -> (values, partials) of the function
    at new values of the operands (Arrays and Vars, in order; constants as recorded)."""
    values = np.asarray(values, dtype=np.float64)
    out_shape = values.shape
    if len(partials) != len(operands):
        raise ValueError("revad: _pair needs one partial (or None) per operand")
    cdef bint scalar = out_shape == () and not any(type(o) is Array for o in operands)
    cdef Tape t = _tape_for(operands)
    if t is None:
        return _var_leaf(float(values)) if scalar else _const_leaf(values)
    cdef int64_t n = values.size, nd0 = len(out_shape), nd, nargs = 0, d, bi, i0, w, lead
    if nd0 > RV_EW_MAXD:
        raise ValueError(f"revad: arrays of more than {RV_EW_MAXD} dimensions are not supported")
    views, saved = [], []
    for o, p in zip(operands, partials):
        if type(o) is not Array and type(o) is not Var:
            continue
        if p is None:
            raise ValueError("revad: _pair: an operand on the tape needs its partials")
        if n:
            _check_entries(n)  # before anything is copied or bound
            views.append(_as_view(o, t))
            # The tape's own array, C order over the output: nothing else can change it. A
            # partial the row has just made whole (an array of its own) is kept as it is.
            p = np.asarray(p)
            if not (p.shape == out_shape and p.dtype == np.float64 and p.flags.c_contiguous
                    and p.flags.owndata and p.flags.writeable and p.base is None):
                p = np.array(np.broadcast_to(p.astype(np.float64, copy=False), out_shape),
                             order="C")
            saved.append(p)
            nargs += 1
    if n == 0:
        return _fresh(t, t.n, out_shape)
    cdef Array v
    nd = max(nd0, 1)
    w = rv_pair_width(nd, nargs)
    cptr = [t.push_cptr(p) for p in saved]
    replay = None
    if rerun is not None:
        replay = _PairReplay(rerun, [_slot_map(_slot0(<Array>v), (<Array>v).shape,
                                               (<Array>v).strides) for v in views], out_shape)
    src = -1 if source is None else t.push_ref((source, operands, replay))
    slot0s = [_slot0(<Array>v) for v in views]  # (lazy operands written before room is made)
    t.room(n, w)  # (both at once: see Tape.room)
    bi = t.push_blk(w)
    i0 = t.n
    cdef rv_pair_blk *h = <rv_pair_blk *>(t.blk + bi)
    h.out, h.n, h.nd, h.nargs, h.src = i0, n, nd, nargs, src
    for d in range(nd):
        h.shape[d] = out_shape[d] if nd0 else 1
    cdef rv_pair_operand *q
    for j in range(nargs):
        v = views[j]
        q = rv_pair_operand_at(h, j)
        q.off, q.d = slot0s[j], cptr[j]
        lead = nd0 - len(v.shape)
        for d in range(nd):
            if nd0 == 0 or d < lead or (v.shape[d - lead] == 1 and out_shape[d] != 1):
                q.stride[d] = 0
            else:
                q.stride[d] = v.strides[d - lead]
    c = np.ascontiguousarray(values)
    memcpy(t.val + i0, _dptr(c), n * sizeof(double))
    _close_group(t, i0, n, RV_PAIR, bi)
    if scalar:
        return _var_at(t, <int32_t>i0, t.val[i0])
    return _fresh(t, i0, out_shape)


class _PairReplay:
    """A SciPy row's group replayed (revad.trace): its operands' new values read from a
    replay's value buffer by their slots, the row run on them (with the GIL)."""

    def __init__(self, rerun, maps, out_shape):
        self.rerun, self.maps, self.out_shape = rerun, maps, out_shape

    def __call__(self, val):
        y, ds = self.rerun([val[m] for m in self.maps])
        return y, [np.broadcast_to(np.asarray(d, np.float64), self.out_shape) for d in ds]


cdef object _special_ufunc(ufunc, str method, tuple inputs, dict kwargs):
    """SciPy's ufunc on revad operands through its row (revad/scipy/_rows.py), or None when it
    has none. (A SciPy ufunc comes only once SciPy is imported: revad never imports it first.)"""
    if "scipy.special" not in sys.modules:
        return None
    from revad.scipy import _rows
    return _rows.apply_ufunc(ufunc, method, inputs, kwargs)


def _plain_logsumexp(a, axis=None, keepdims=False):
    """scipy.special.logsumexp of plain numbers, by NumPy: a NumPy result, no tape."""
    x = np.asarray(a, dtype=np.float64)
    axes = _norm_axes(axis, x.ndim)
    if x.size:
        m = np.max(x, axis=axes, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)
    else:
        m = np.zeros([1] * x.ndim)
    with np.errstate(divide="ignore"):
        r = np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True)) + m
    if not keepdims:
        r = np.squeeze(r, axis=axes)
    return r[()] if r.ndim == 0 else r
