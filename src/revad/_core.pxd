# The contract of the compiled core: C types, the op table's entry points, and the fields of
# the two extension types. Later compiled modules (arrays) cimport from here.
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from cpython.ref cimport PyObject


cdef extern from "kinds.h" nogil:
    # The parameters of block entries and groups in the tape's int64 table blk (kinds.h says
    # what each field means); writers cast t.blk + index to one of these and set its fields.
    enum:
        RV_SRC_SLOTS
        RV_SRC_POOL
    ctypedef struct rv_dotc_blk:
        int64_t start, stride, count, c, coff, cstride
    ctypedef struct rv_dot_blk:
        int64_t start0, stride0, start1, stride1, count
    ctypedef struct rv_mm_operand:
        int64_t src, off, rs, cs
    ctypedef struct rv_mm_blk:
        int64_t out, m, n, q
        rv_mm_operand a, b
        int64_t blas
    ctypedef struct rv_ew_blk:
        int64_t out, n, op, nd
        int64_t shape[1]  # shape[nd] (a flexible array in C)
    ctypedef struct rv_ew_operand:
        int64_t src, off
        int64_t stride[1]  # stride[nd]
    ctypedef struct rv_sums_blk:
        int64_t out, n, nd, first, count, stride
        int64_t shape[1]  # shape[nd], then ostride[nd] (rv_sums_ostride)
    ctypedef struct rv_call_blk:
        int64_t out, n, obj, n_in
        int64_t span[1]  # span[2 * n_in]: (first slot, count) per input (a flexible array in C)
    int64_t rv_call_width(int64_t n_in)
    int64_t rv_ew_width(int64_t nd, int arity)
    rv_ew_operand *rv_ew_operand_at(const rv_ew_blk *h, int j)
    int64_t rv_sums_width(int64_t nd)
    int64_t *rv_sums_ostride(const rv_sums_blk *h)
    ctypedef struct rv_pair_blk:
        int64_t out, n, nd, nargs, src
        int64_t shape[1]  # shape[nd], then an rv_pair_operand per operand (rv_pair_operand_at)
    ctypedef struct rv_pair_operand:
        int64_t off, d
        int64_t stride[1]  # stride[nd]
    int64_t rv_pair_width(int64_t nd, int64_t nargs)
    rv_pair_operand *rv_pair_operand_at(const rv_pair_blk *h, int64_t j)


cdef extern from "revad.h" nogil:
    # The op codes Cython code names directly (operators, the array engine); ops_table.h defines
    # them all. A new row needs none here: the functions, Var methods and ufunc map read their
    # codes from rv_op_table at import (_core_functions.pxi).
    enum:
        RV_LEAF
        RV_NEG
        RV_ABS
        RV_SQUARE
        RV_ADD
        RV_SUB
        RV_MUL
        RV_DIV
        RV_POW
        RV_EXP
        RV_LOG
        RV_SQRT
        RV_MAXIMUM
        RV_MINIMUM
        RV_REMAINDER
        RV_LT
        RV_LE
        RV_GT
        RV_GE
        RV_EQ
        RV_NE
        RV_COPY
        RV_SHIFT
        RV_CONST
        RV_GUARD
        RV_DOTC
        RV_DOT
        RV_MM
        RV_EW
        RV_SUMS
        RV_CALL
        RV_PAIR
        RV_GROUP_SLOT
        RV_EW_MAXD
        RV_BLK_DOTC
        RV_BLK_DOT
        RV_BLK_MM
        RV_N_OPS
    ctypedef struct rv_op_info:
        int code
        int arity
        const char *name
        const char *forward
        const char *d_da
        const char *d_db
        const char *note
        const char *example
        int lazy
        const char *d2_da2
        const char *d2_dadb
        const char *d2_db2
    const rv_op_info rv_op_table[]
    const int rv_n_op_table
    double rv_unary(int op, double a)
    double rv_binary(int op, double a, double b)
    void rv_mm_backward(const rv_mm_blk *h, const double *val, const double *const *cptr,
                        double *adj, int clean)
    void rv_mm_second(const rv_mm_blk *h, const double *val, const double *const *cptr,
                      const double *tng, double *adj, double *adt)
    int rv_ew_arity(int64_t op)
    double rv_row_daa(int op, double a, double b, double y)
    double rv_row_dab(int op, double a, double b, double y)
    double rv_row_dbb(int op, double a, double b, double y)
    int64_t rv_group_end(const uint8_t *op, int64_t i)
    int rv_ew_lazy(int64_t op)
    int rv_sums_over(const rv_sums_blk *ps, const rv_ew_blk *q)
    int64_t rv_claim(int64_t *next)
    void rv_lower_to(int64_t *p, int64_t v)
    int64_t rv_peek(int64_t *p)
    # The kind table (kind_table.h): what runs a group's loops, where threads may cut them, and
    # each kind's name and shown op for graphs.
    enum rv_run:
        RV_RUN_NONE
        RV_RUN_EW_FORWARD
        RV_RUN_EW_BACKWARD
        RV_RUN_EW_SUM_BACKWARD
        RV_RUN_SUMS_FORWARD
        RV_RUN_SUMS_LAZY_FORWARD
        RV_RUN_SUMS_BACKWARD
        RV_RUN_BLAS
        RV_RUN_PYTHON
    enum:
        RV_CUT_ANY
        RV_CUT_NONE
    ctypedef struct rv_kind:
        const char *name
        int group
        int64_t (*first)(const int64_t *p, int64_t i)
        int run_backward
        int (*shows)(const int64_t *p, int code)
        void *second  # (only tested against NULL here: no second-order rule)
    const rv_kind *rv_kind_of(int c)
    void rv_mm_values(const int64_t *p, double *val, const double *const *cptr)
    void rv_run_part(int run, const int64_t *p, double *val, const double *cst,
                     const double *const *cptr, double *adj, int clean, int64_t e0, int64_t e1,
                     int64_t d, const int64_t *ps, int zero)
    int64_t rv_run_cut(int run, const int64_t *p)
    const rv_ew_blk *rv_sums_fused(const uint8_t *op, const int32_t *arg0, const int64_t *blk,
                                   const rv_sums_blk *ps, int clean)
    int rv_reads_below(const uint8_t *op, const int32_t *arg0, const int32_t *arg1,
                       const int64_t *blk, int64_t top, int64_t stop, int64_t a, int64_t b)
    int64_t rv_backward(const uint8_t *op, const int32_t *arg0, const int32_t *arg1,
                        const double *val, const double *cst, const int64_t *blk,
                        const double *const *cptr, double *adj, int64_t top, int clean,
                        int64_t split, int64_t seed, int64_t floor)
    int rv_all_zero(const double *x, int64_t n)
    int rv_ties_hold(const double *val, const int64_t *a, const int64_t *r, const int64_t *rk,
                     int64_t n, const uint8_t *tie, int32_t *cnt, int64_t nr)
    int rv_any_zero(const double *x, int64_t n)
    void rv_take_adjoints(double *grad, double *adj, int64_t n, int clean, int assign)
    void rv_activity(const uint8_t *op, const int32_t *arg0, const int32_t *arg1, int64_t *blk,
                     int64_t n, uint8_t *act, int32_t *cnt, int64_t vsrc)
    void rv_inputs_in_place(const uint8_t *op, const int32_t *arg0, const int32_t *arg1,
                            int64_t *blk, int64_t n, const int64_t *lo, const int64_t *size,
                            int64_t *src, int64_t m, int rewrite)
    int rv_mm_fresh(const uint8_t *op, const int32_t *arg0, const int32_t *arg1,
                    const int64_t *blk, int64_t seed, int64_t i)
    int64_t rv_sole_reader(const uint8_t *op, const int32_t *arg0, const int32_t *arg1,
                           const int64_t *blk, int64_t n, int64_t a, int64_t b)
    int64_t rv_forward_replay(const uint8_t *op, const int32_t *arg0, const int32_t *arg1,
                              const double *rec, const double *cst, const int64_t *blk,
                              const double *const *cptr, double *val, int64_t start,
                              int64_t top, int64_t *fail, const int64_t *lazy, int64_t n_lazy,
                              int64_t split)
    ctypedef struct rv_cols:
        const uint8_t *op
        const int32_t *arg0
        const int32_t *arg1
        const double *val
        const double *cst
        const int64_t *blk
        const double *const *cptr
    ctypedef struct rv_replay:
        rv_cols t
        const int64_t *lazy
        int64_t n_lazy
        int64_t split
    int rv_replay_run(const rv_replay *s, int64_t i, double *val, const int64_t **ps)
    int rv_replay_in_c(const uint8_t *op, const int32_t *arg0, const int64_t *blk, int64_t n)
    int64_t rv_replay_row(const rv_cols *t, const uint8_t *rop, double *val, double *adj,
                          int64_t out, const double *x, const int64_t *xs, int64_t nx,
                          double *g, const int64_t *gs, int64_t ng, const int64_t *runs,
                          int64_t n_runs, const int64_t *lazy, int64_t n_lazy, int64_t top)
    int64_t rv_forward_tangent(const uint8_t *op, const int32_t *arg0, const int32_t *arg1,
                               const double *val, const double *cst, const int64_t *blk,
                               const double *const *cptr, double *tng, int64_t start,
                               int64_t top)
    int64_t rv_second_order(const uint8_t *op, const int32_t *arg0, const int32_t *arg1,
                            const double *val, const double *cst, const int64_t *blk,
                            const double *const *cptr, const double *tng, double *adj,
                            double *adt, int64_t top)
    int64_t rv_second_order_walk(const uint8_t *op, const int32_t *arg0, const int64_t *blk,
                                 int64_t top, double *tng, double *adj, double *adt)


# An Array leaf bound to a tape (_array.pyx): the leaf itself (`owner`, held by the
# tape: its gradient ndarray and its flag live in it), the data of that gradient (n
# doubles, which the sweep adds the adjoints into), its first slot, and `unset`, the
# leaf's flag that its gradient holds no number yet (a functional call's np.empty
# buffer): the first sweep to reach it writes instead.
ctypedef struct rv_leaf_block:
    PyObject *owner
    double *grad
    int64_t n, first
    bint *unset


cdef class Tape:
    # Structure of arrays, node = slot, in recording (= topological) order.
    cdef uint8_t *op          # op code (ops_table.h)
    cdef int32_t *arg0        # operand slots, or an index into cst for a constant operand
    cdef int32_t *arg1
    cdef double *val          # saved output value
    cdef int64_t n, cap
    cdef double *cst          # constant pool: the Python-number operands
    cdef int64_t n_cst, cap_cst
    cdef double *adj          # adjoints, summed over backward calls (valid once has_adj)
    cdef int64_t cap_adj
    cdef int64_t adj_zero     # adj[:adj_zero] is known to be zero (a clean sweep's buffer)
    cdef bint has_adj
    # A functional-API call's tape (revad._functional): its sweep is clean (sweep.h, rv_backward),
    # and then its intermediates' adjoints are gone (spent).
    cdef bint private, spent
    # The leaf Vars recorded here (owned references) and their slots, to hand gradients back.
    cdef PyObject **leaves
    cdef int32_t *leaf_slot
    cdef int64_t n_leaves, cap_leaves
    # Block entries' and groups' parameters (kinds.h), and the constant arrays they read: `refs`
    # keeps each alive, `cptr` holds its data pointer for the sweep.
    cdef int64_t *blk
    cdef int64_t n_blk, cap_blk
    cdef const double **cptr
    cdef int64_t n_cptr, cap_cptr
    cdef list refs
    # Array leaves bound here; sweep adds their adjoints into their gradients.
    cdef rv_leaf_block *blocks
    cdef int64_t n_blocks, cap_blocks
    # Unique for the process's lifetime: leaves remember where they are bound.
    cdef uint64_t id
    cdef bint finished        # set by backward(): recording on this tape is over
    # Lazy elementwise groups (group_ew.h, rv_ew_lazy) whose values are not written yet: their
    # parameters' indexes in blk. A lazy Array (_array.pyx) writes its group's when first used;
    # settle() writes them all, for what reads a whole tape (graphs, tangents).
    cdef set absent
    # Loops running over the columns without the GIL (_core: _hold); growth waits for none.
    cdef int64_t busy
    cdef uint64_t busy_generation  # the process (_core: _fork_generation) that counted busy
    # The recording state of the thread whose current tape this is (or was): it borrows the
    # tape, which clears it on dying. The indexes in refs of the read-only constants referenced,
    # not copied, that each sweep checks (check_readonly).
    cdef object state
    cdef list readonly
    # While revad.trace records on this tape (else None): where each guard and comparison was
    # made, (first entry, kind, "file:line", check or None), in entry order; a check is a
    # Python function of the replay's values (_core_replay.pxi).
    cdef list sites

    cdef int write_group(self, int64_t bi) except -1
    cdef int settle(self) except -1

    cdef int32_t push(self, int code, int32_t a0, int32_t a1, double v) except -1
    cdef int grow(self) except -1
    cdef int reserve(self, int64_t extra) except -1
    cdef int reserve_const(self, int64_t extra) except -1
    cdef int reserve_blk(self, int64_t count) except -1
    cdef int room(self, int64_t entries, int64_t blk) except -1
    cdef int64_t push_blk(self, int64_t count) except -1
    cdef int64_t push_cptr(self, object array) except -1
    cdef int64_t push_ref(self, object obj) except -1
    cdef int64_t push_readonly(self, object array) except -1
    cdef int check_readonly(self) except -1
    cdef int32_t push_const(self, double c) except -1
    cdef int32_t bind_leaf(self, Var x) except -1
    cdef int bind_block(self, object owner, double *grad, int64_t n, int64_t first,
                        bint *unset) except -1
    cdef int sweep(self, int32_t top) except -1
    cdef double *_take_adjoints(self, int64_t n) except NULL
    cdef int _reverse(self, double *buf, int64_t n, int64_t i, bint clean) except -1
    cdef void _keep_spare(self, double *buf, int64_t n) noexcept
    cdef int _deliver(self, double *buf, bint clean) except -1
    cdef int _keep_adjoints(self, double *buf, int64_t n, bint clean) except -1
    cdef void clear(self)


cdef class Var:
    cdef Tape tape        # the tape that owns this node; None for a leaf
    cdef int32_t slot     # this node's slot (for a leaf: on the tape `bound` names)
    cdef uint64_t bound   # leaves only: id of the tape where `slot` is valid (0: none)
    cdef double v         # the value (cached here so recording never reads the tape)
    cdef double g         # leaves only: the accumulated gradient


# For the Array module (_array.pyx), which records on the same tapes.
cdef Tape _current_tape()
cdef bint _is_recording()
cdef Tape _recording_tape()
cdef Tape _enclosing_call()
cdef Var _var_at(Tape t, int32_t slot, double v)
cdef Var _var_leaf(double v)
cdef int32_t _var_slot(Var x, Tape t) except -1
cdef int _as_double(object o, double *out) except -1
cdef int _raise_finished() except -1
cdef int _spent() except -1
cdef int _run_group(const int64_t *p, int run, Tape t, double *adj, bint clean,
                    const int64_t *ps=*, int zero=*) except -1
cdef list _share(object fn, int64_t most=*)
cdef int _join(list locks) except -1
cdef bint _readonly_chain(object a)
cdef void _hold(Tape t) noexcept
cdef void _unhold(Tape t) noexcept
cdef tuple _begin_private()
cdef int _end_private(tuple saved) except -1


# A trace's activity (activity.h): what its replays' reverse sweeps skip and zero; and the
# groups their forward sweeps leave unwritten.
cdef class _Active:
    cdef object rop              # uint8: the op column, every inactive entry a leaf
    # int64 (first, count) pairs: the adjoints a sweep leaves nonzero but for the differentiated
    # leaves' (which the gradient's read takes, zeroing them: _grad_of, rv_replay_row)
    cdef object runs
    # the matrix products whose operands' adjoints are still all zero when the sweep reaches
    # them: slot -> bits (1: A's, 2: B's; activity.h, rv_mm_fresh), written, not added to
    cdef dict fresh
    cdef object gaps             # int64 (last, first), descending: long runs of rop's leaves
    cdef readonly int64_t inactive  # the entries no gradient depends on (their count)
    # int64, ascending: the last slots of the elementwise groups that eager recording left
    # unwritten (Tape.absent), which the replays' forward sweeps leave unwritten too
    # (kind_table.h, rv_replay)
    cdef object lazy

# Replay (revad.trace, _core_replay.pxi): one set of buffers replaying a recorded tape.
cdef class _Replay:
    cdef Tape t
    cdef double *val             # this replay's values (the recorded ones at leaves not inputs)
    cdef double *adj             # its adjoints: zero between replays
    cdef const double **cptr     # the tape's constants, a SciPy row's partials replaced by ours
    cdef int64_t n
    cdef dict records            # a Python function's entry (h.obj) -> its record at our values
    cdef list keep               # arrays our cptr points into
    cdef list inputs             # a call's data arguments read in place, converted (_load_arg)
    # A call's differentiated arguments read in place (_Plan.direct): first slot -> the array
    # (values, _load_arg), and -> the gradient their one product wrote (_mm_backward_blas_on)
    cdef dict vals_at, grads_at
    cdef int64_t *runs           # (first, count): adjoints zeroed after a sweep (_Active.runs)
    cdef int64_t n_runs
    cdef const int64_t *gaps     # (last, first) of each long run its reverse sweep skips
    cdef int64_t n_gaps
    cdef list checks             # the tape's guard sites with a Python check (after the sweep)
    cdef bint busy               # a call is using these buffers
    cdef const uint8_t *rop      # the op column its reverse sweep reads (activity.h)
    cdef _Active act             # the trace's activity (owns rop, gaps and lazy)
    cdef const int64_t *lazy     # the groups its forward replay leaves unwritten (_Active.lazy)
    cdef int64_t n_lazy

cdef bint _tracing_active() noexcept
cdef Tape _tracing_tape()
cdef bint _guards_quiet()
cdef int _guard_var(Var x, str kind) except -1
cdef int _trace_site(Tape t, int64_t entry, str kind, object check=*) except -1
cdef _Replay _replay_new(Tape t, _Active act)
cdef int64_t _replay_forward(_Replay r) except -2
cdef int _replay_reverse(_Replay r, int64_t top) except -1
cdef int _replay_clear(_Replay r) except -1
cdef bint _replay_in_c(Tape t) except -1
cdef int64_t _replay_rows(_Replay r, int64_t m, const double *x, const int64_t *xs, int64_t nx,
                          double *v, double *g, const int64_t *gs, int64_t ng, int64_t out,
                          double out_value, int64_t threads) except -2

# Second order (_core_second.pxi), for a Trace's replay as for the eager tape.
cdef str _second_order_blocker_at(Tape t, int64_t out)
cdef tuple _second_products(Tape t, const double *val, const double **cptr, int64_t out,
                            object slots, object V)
