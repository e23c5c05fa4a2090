"""Jacobians and Hessians from one recording, dense or sparse (issue 17).

f is recorded once on a private tape; then
- a Jacobian's rows are reverse sweeps over that one recording (one per output element, or
  one per colour of the rows), its columns tangent sweeps (one per input element, or colour);
- a sparse Hessian is its pattern (the tape's nonlinear interactions, ``sparsity.h``), a star
  colouring of it (``colouring.h``) and one Hessian-vector product per colour (``_hvp_block``).
The patterns and colourings run in compiled code (``src/revad/_core_sparsity.pxi``).
"""
import numpy as np

from revad import _core
from revad._array import (
    Array,
    _adjoint_of,
    _check_constants,
    _nested_adjoints,
    _private_leaf,
    _slots_of,
)
from revad._core import Var

_ROWS_PER_CALL = 256  # reverse sweeps per call of _reverse_sweeps (its weights are dense)


def scipy_sparse():
    """scipy.sparse, or an ImportError saying how to get it (SciPy is optional)."""
    try:
        import scipy.sparse
    except ImportError as e:  # pragma: no cover - the test environment has SciPy
        raise ImportError("revad: sparse=True returns a scipy.sparse matrix and needs SciPy: "
                          "pip install scipy (or revad[test])") from e
    return scipy.sparse


def _as_point(x, what):
    """Argument x as a float64 ndarray (a number: 0-d), or a TypeError naming what it is."""
    if isinstance(x, (list, tuple, dict)):
        raise TypeError(f"revad: {what} differentiates in a number or an array; got a "
                        f"{type(x).__name__}")
    if type(x) in (Var, Array):
        raise TypeError(f"revad: {what} takes numbers and arrays, not a {type(x).__name__}: "
                        "it is not differentiable again (use the dense form inside a derivative)")
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"revad: {what} differentiates in real numbers; the argument has dtype "
                        f"{a.dtype}")
    return a.astype(np.float64)


class Recording:
    """f(*args) recorded once on a private tape, args[k] replaced by a node of its own (``node``:
    a Var for a number, an Array for an array; ``leaf`` the leaf under it). Use as a context
    manager: the tape is this thread's current one until it closes."""

    def __init__(self, f, args, k, what, kwargs=None):
        if not -len(args) <= k < len(args):
            raise TypeError(f"revad: {what}'s argnums={k} is out of range for {len(args)} "
                            "positional argument(s)")
        if _core._in_derivative():
            raise TypeError(f"revad: {what} is not differentiable again: call it outside the "
                            "function being differentiated (or use its dense form there)")
        self.x = _as_point(args[k], what)
        self.shape, self.n = self.x.shape, self.x.size
        self.saved = _core._enter_private()
        try:
            if isinstance(args[k], np.ndarray):
                self.leaf = _private_leaf(self.x)
            else:
                self.leaf = _core._make_leaves([float(self.x)])[0]
            self.node = _core.functions["positive"](self.leaf)
            if type(self.node) is Var:
                self.ref = self.node
                self.in_slots = _core._node_slots(self.node, [self.node])
            else:
                self.ref = self.node.reshape(-1)[0] if self.n else None
                self.in_slots = _slots_of(self.node).reshape(-1)
            a = list(args)
            a[k] = self.node
            self.out = f(*a, **(kwargs or {}))
        except BaseException:
            _core._exit_private(self.saved)
            raise
        self.grad_slots = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _core._exit_private(self.saved)
        return False

    def output(self):
        """f's result as (its shape, the slot of each element, C order; -1: a constant)."""
        from revad._primitive import _stacked

        out = _stacked(self.out)
        if isinstance(out, (list, tuple)):
            if not all(type(e) is Var or (np.ndim(e) == 0 and _core._is_real(e))
                       for e in out):
                raise TypeError("revad: jacobian needs f to return a number or an array (or a "
                                f"flat list or tuple of numbers); it returned a "
                                f"{type(self.out).__name__} of other things")
            out = np.array(list(out), dtype=object) if out else np.zeros(0)
            out = _stacked(out) if out.dtype == object else out
        if type(out) is Var:
            node = _core.functions["positive"](out)
            if self.ref is None:
                return (), np.full(1, -1, dtype=np.int64)
            return (), _core._node_slots(self.ref, [node])
        if type(out) is Array:
            if out.size == 0:
                return out.shape, np.zeros(0, dtype=np.int64)
            node = _core.functions["positive"](out)
            return out.shape, _slots_of(node).reshape(-1)
        a = np.asarray(out)
        if a.dtype.kind not in "biuf":
            raise TypeError("revad: jacobian needs f to return a number or an array; it "
                            f"returned a {type(self.out).__name__}")
        return a.shape, np.full(a.size, -1, dtype=np.int64)  # a constant

    def scalar_output(self):
        """f's result as a Var (a number: None, its Hessian zero), or a TypeError."""
        from revad._functional import _check_private, _scalar_output

        out = _scalar_output(self.out)
        if type(out) is not Var:
            return None
        if not out.is_leaf:
            _check_private(out)
        return out


def hvp_block(rec, V):
    """H V for a block of directions V (n, p), H the Hessian of rec's scalar output (a Var) in
    its argument, on rec's one recording. In C (one tangent and one second-order sweep per
    direction, revad._second's route) unless the tape holds an entry with no second-order rule
    (a Python or SciPy function): then the gradient is recorded once on the same tape
    (revad._nested: reverse over reverse), and each direction is one reverse sweep seeded with
    it at the gradient's nodes (H symmetric: H v = (v^T H)^T)."""
    out = rec.scalar_output()
    if out is None or out.is_leaf or rec.n == 0:
        return np.zeros((rec.n, V.shape[1]))
    if _core._second_order_blocker(out) is None:
        slots = _core._leaf_slots(out, [rec.leaf])
        return _core._hessian_products(out, slots, np.asarray(V, dtype=np.float64))[1]
    if rec.grad_slots is None:
        swept = _nested_adjoints(out, [rec.node])
        g = None if swept is None else _adjoint_of(rec.node, *swept)
        if g is None:
            rec.grad_slots = np.full(rec.n, -1, dtype=np.int64)
        elif type(g) is Var:
            rec.grad_slots = _core._node_slots(out, [g])
        else:
            rec.grad_slots = _slots_of(g).reshape(-1)
    _check_constants(out)
    return _core._reverse_sweeps(out, rec.grad_slots, np.asarray(V, dtype=np.float64).T,
                                 rec.in_slots).T


# ---- Jacobians ---------------------------------------------------------------------------------

def _reverse_rows(rec, out_slots, W=None):
    """W J (W: weights over the outputs, (k, m); None: the identity, J itself): one reverse
    sweep per row of W, all over rec's one recording."""
    m = len(out_slots)
    k = m if W is None else W.shape[0]
    if rec.ref is None or not m or not k:
        return np.zeros((k, rec.n))
    _check_constants(rec.ref)
    parts = []
    for r in range(0, k, _ROWS_PER_CALL):
        if W is None:
            w = np.zeros((min(_ROWS_PER_CALL, k - r), m))
            w[np.arange(len(w)), r + np.arange(len(w))] = 1.0
        else:
            w = W[r:r + _ROWS_PER_CALL]
        parts.append(_core._reverse_sweeps(rec.ref, out_slots, w, rec.in_slots))
    return np.concatenate(parts)


def _forward_columns(rec, out_slots, S=None):
    """J S (S: directions in the inputs, (n, k); None: the identity, J itself): one tangent
    sweep per column of S, all over rec's one recording."""
    m, n = len(out_slots), rec.n
    k = n if S is None else S.shape[1]
    B = np.zeros((m, k))
    have = out_slots >= 0
    if rec.ref is None or not have.any():
        return B
    _check_constants(rec.ref)
    slots = out_slots[have]
    for c in range(k):
        if S is None:
            s = np.zeros(n)
            s[c] = 1.0
        else:
            s = S[:, c]
        B[have, c] = _core._tangent_sweep(rec.ref, [rec.leaf], s, slots)
    return B


def jacobian(f, args, kwargs, k, mode, sparse, what):
    """The Jacobian of f in args[k] from one recording: dense (out.shape + x.shape) or a CSR
    matrix (out.size, x.size); mode "rev", "fwd" or "auto" (the side with fewer sweeps)."""
    sp = scipy_sparse() if sparse else None
    with Recording(f, args, k, what, kwargs) as rec:
        oshape, out_slots = rec.output()
        m, n = len(out_slots), rec.n
        if not sparse:
            if mode == "fwd" or (mode == "auto" and n < m):
                J = _forward_columns(rec, out_slots)
            else:
                J = _reverse_rows(rec, out_slots)
            return J.reshape(tuple(oshape) + rec.shape)
        if rec.ref is None or not m:
            return sp.csr_matrix((m, n))
        ptr, idx = _core._sparsity_pattern(rec.ref, rec.in_slots, out_slots, False)
        # the colourings: the smaller side's first (at most that many colours), the other's
        # given up as soon as it needs more (a dense row makes every column a colour)
        cols = rows = None
        pc = pr = -1
        T = sp.csr_matrix((np.ones(len(idx)), idx, ptr), shape=(m, n)).T.tocsr()
        if mode == "fwd" or (mode == "auto" and n < m):
            cols, pc = _core._column_colouring(ptr, idx, n)
            if mode == "auto":
                rows, pr = _core._column_colouring(T.indptr, T.indices, m, max(pc - 1, 0))
        else:
            rows, pr = _core._column_colouring(T.indptr, T.indices, m)
            if mode == "auto":
                cols, pc = _core._column_colouring(ptr, idx, n, max(pr - 1, 0))
        if rows is not None and cols is not None:  # (the second one won: strictly fewer)
            rows = None if pc < pr else rows
            cols = None if rows is not None else cols
        r = np.repeat(np.arange(m), np.diff(ptr))
        if cols is not None:
            S = np.zeros((n, pc))
            S[np.arange(n), cols] = 1.0
            vals = _forward_columns(rec, out_slots, S)[r, cols[idx]]
        else:
            W = np.zeros((pr, m))
            W[rows, np.arange(m)] = 1.0
            vals = _reverse_rows(rec, out_slots, W)[rows[r], idx]
        return sp.csr_matrix((vals, idx, ptr), shape=(m, n))


def jacobian_pattern(f, args, k, what):
    sp = scipy_sparse()
    with Recording(f, args, k, what) as rec:
        _, out_slots = rec.output()
        m, n = len(out_slots), rec.n
        if rec.ref is None or not m:
            return sp.csr_matrix((m, n), dtype=bool)
        ptr, idx = _core._sparsity_pattern(rec.ref, rec.in_slots, out_slots, False)
        return sp.csr_matrix((np.ones(len(idx), dtype=bool), idx, ptr), shape=(m, n))


# ---- Hessians ----------------------------------------------------------------------------------

def hessian_pattern(f, args, k, what):
    sp = scipy_sparse()
    with Recording(f, args, k, what) as rec:
        out = rec.scalar_output()
        if out is None:
            return sp.csr_matrix((rec.n, rec.n), dtype=bool)
        ptr, idx = _core._sparsity_pattern(out, rec.in_slots, _core._node_slots(out, [out]),
                                           True)
        return sp.csr_matrix((np.ones(len(idx), dtype=bool), idx, ptr), shape=(rec.n, rec.n))


def recover_symmetric(ptr, idx, colour, p, HV):
    """The values of a symmetric matrix H at its pattern (CSR ptr, idx) from HV = H V, V the
    indicators of a star colouring (colour, p colours): H[i, j] is HV[i, colour j] unless
    another neighbour of i has j's colour; then (a star colouring) no other neighbour of j has
    i's colour, and it is HV[j, colour i]."""
    return _core._star_recover(ptr, idx, colour, HV)


def sparse_hessian(f, args, k, what, stats=None):
    """The Hessian of scalar f in args[k] (flattened: n x n) as a CSR matrix: its pattern, a
    star colouring, one Hessian-vector product per colour, each nonzero read off directly.
    `stats`, a dict, gets the colours and each step's time."""
    import time

    sp = scipy_sparse()
    t0 = time.perf_counter()
    with Recording(f, args, k, what) as rec:
        out = rec.scalar_output()
        n = rec.n
        t1 = time.perf_counter()
        if out is None:
            return sp.csr_matrix((n, n))
        ptr, idx = _core._sparsity_pattern(out, rec.in_slots, _core._node_slots(out, [out]),
                                           True)
        t2 = time.perf_counter()
        colour, p = _core._star_colouring(ptr, idx)
        t3 = time.perf_counter()
        V = np.zeros((n, p))
        V[np.arange(n), colour] = 1.0
        HV = hvp_block(rec, V)
        t4 = time.perf_counter()
    vals = recover_symmetric(ptr, idx, colour, p, HV)
    H = sp.csr_matrix((vals, idx, ptr), shape=(n, n))
    if stats is not None:
        stats.update(colours=p, record=t1 - t0, pattern=t2 - t1, colouring=t3 - t2,
                     hvps=t4 - t3, recover=time.perf_counter() - t4)
    return H
