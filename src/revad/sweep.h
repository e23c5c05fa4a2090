/* The sweeps over a tape's flat columns: reverse (with the fusion walk, rv_reads_below),
 * tangent (forward mode), second order (forward over reverse), and the hand-over of leaf
 * adjoints. */
#ifndef REVAD_SWEEP_H
#define REVAD_SWEEP_H

#include "kind_table.h"

/* Whether an entry that a sweep from slot `top` meets before it reaches slot `stop` may read a
 * slot in [a, b): that is, may add to their adjoints. It looks at a few thousand entries at most
 * (leaves apart), and counts an entry it does not know, or one past that, as a reader. */
static inline int rv_reads_below(const uint8_t *op, const int32_t *arg0, const int32_t *arg1,
                                 const int64_t *blk, int64_t top, int64_t stop, int64_t a,
                                 int64_t b) {
    int64_t budget = 4096;
    for (int64_t i = top; i > stop; --i) {
        const int c = op[i];
        if (c == RV_LEAF) continue;
        if (--budget < 0) return 1;
        if (c == RV_CONST || c == RV_GUARD) continue;
        if (c >= RV_DOTC) {  /* block entries and groups: their kind says */
            if (c == RV_GROUP_SLOT) return 1;  /* not met: a walk steps from group to group */
            const rv_kind *k = rv_kind_of(c);
            const int64_t *p = blk + arg0[i];
            if (k->reads(p, a, b)) return 1;
            i = k->first(p, i);
        } else if (rv_row_reads(c, arg0[i], arg1[i], a, b)) {
            return 1;
        }
    }
    return 0;
}

/* From a leaf at slot i, a downward sweep's next stop: past a run of leaves (an Array leaf's
 * block), skipped eight op codes (zero bytes) at a time, not below `floor`; the sweep's --i
 * takes the rest. */
static inline int64_t rv_leaf_run_down(const uint8_t *op, int64_t i, int64_t floor) {
    uint64_t w;
    while (i - 8 >= floor && (memcpy(&w, op + i - 8, 8), w == 0)) i -= 8;
    return i;
}

/* From a leaf or a group's placeholder at slot i, an upward sweep's last slot of the run of
 * them (an Array leaf's block, a group) that it may skip, eight op codes at a time; the
 * sweep's ++i takes the rest. */
static inline int64_t rv_run_up(const uint8_t *op, int64_t i, int64_t top) {
    uint64_t w;
    const uint64_t run = 0x0101010101010101ull * op[i];
    while (i + 8 < top && (memcpy(&w, op + i + 1, 8), w == run)) i += 8;
    return i;
}

/* The last slot of the group that slot i belongs to (i itself if it is an ordinary entry): a
 * sweep seeded at a group's output must start where the group is carried. */
static inline int64_t rv_group_end(const uint8_t *op, int64_t i) {
    while (op[i] == RV_GROUP_SLOT) ++i;
    return i;
}

/* The reverse sweep over a tape's flat columns, from slot `top` down to 0.
 * adj[i] holds dOutput/dNode_i; an entry whose adjoint is zero has nothing to pass down.
 * Reads only plain arrays: it runs without the GIL. Argument slots are always below i. */
#define RV_BWD_U(N, name, f, da, ...) \
    case RV_##N: { \
        const int32_t i0 = arg0[i]; const double a = val[i0]; (void)a; \
        adj[i0] += g * (da); \
    } break;
#define RV_BWD_B(N, name, f, da, db, ...) \
    case RV_##N: { \
        const int32_t i0 = arg0[i], i1 = arg1[i]; const double a = val[i0], b = val[i1]; (void)a; (void)b; \
        const double pa = (da), pb = (db); \
        adj[i0] += g * pa; adj[i1] += g * pb; \
    } break; \
    case RV_##N##_VC: { \
        const int32_t i0 = arg0[i]; const double a = val[i0], b = cst[arg1[i]]; (void)a; (void)b; \
        adj[i0] += g * (da); \
    } break; \
    case RV_##N##_CV: { \
        const int32_t i1 = arg1[i]; const double a = cst[arg0[i]], b = val[i1]; (void)a; (void)b; \
        adj[i1] += g * (db); \
    } break;

/* Returns -1 when done, or the slot of a group it stopped at (not taken: the caller takes it,
 * then resumes the sweep just below it): a BLAS matrix-product group, or an elementwise or sum
 * group of at least `split` outputs (a sum fused with the elementwise group below it: when
 * that group has), which the caller shares out to threads where it may (rv_ew_split_dim,
 * rv_sums_splittable).
 *
 * `seed`: the slot the sweep started at (rv_reads_below walks down from it).
 *
 * `clean`: zero each adjoint once it has been read (every slot but the leaves', which the
 * caller reads afterwards). A sweep whose intermediate adjoints nobody reads (the functional
 * API's) then leaves its buffer zero for the next one, instead of the next one zeroing it all
 * first: an extra pass over memory as large as the tape's values. */
/* The backward of the block entry or group at slot i (kind_table.h): out of line, so that the
 * sweep's loop over op rows holds nothing of it. */
static RV_NOINLINE int64_t rv_kind_backward(const uint8_t *op, const int32_t *arg0,
                                            const int32_t *arg1, const double *val,
                                            const double *cst, const int64_t *blk,
                                            const double *const *cptr, double *adj, int64_t i,
                                            int clean, int64_t split, int64_t seed) {
    const rv_sweep s = {{op, arg0, arg1, val, cst, blk, cptr}, adj, clean, split, seed};
    return rv_kind_of(op[i])->backward(&s, blk + arg0[i], i);
}

static inline int64_t rv_backward(const uint8_t *op, const int32_t *arg0, const int32_t *arg1,
                                  const double *val, const double *cst, const int64_t *blk,
                                  const double *const *cptr, double *adj, int64_t top, int clean,
                                  int64_t split, int64_t seed, int64_t floor) {
    for (int64_t i = top; i >= floor; --i) {
        const int c = op[i];
        /* Block entries and groups (their codes come last): their kind's backward, groups
         * before the zero test (the group's other outputs may be nonzero). Done, the sweep
         * jumps below the entry (i = its first slot, then --i). One comparison keeps them off
         * the path of ordinary entries. */
        if (c >= RV_DOTC) {
            if (c == RV_GROUP_SLOT) continue; /* a placeholder: not met, sweeps start at a group's end */
            const int64_t below = rv_kind_backward(op, arg0, arg1, val, cst, blk, cptr, adj, i,
                                                   clean, split, seed);
            if (below < 0) return i;
            i = below;
            continue;
        }
        if (c == RV_LEAF) { /* leaves pass nothing down */
            i = rv_leaf_run_down(op, i, floor);
            continue;
        }
        const double g = adj[i];
        if (g == 0.0) continue;
        if (clean) adj[i] = 0.0;
        const double y = val[i];
        (void)y;
        switch (c) {
            REVAD_UNARY_OPS(RV_BWD_U)
            REVAD_BINARY_OPS(RV_BWD_B)
            default: break; /* constants and comparisons pass nothing down */
        }
    }
    return -1;
}

/* A leaf block's adjoints added into its gradient (or, `assign`, written over a gradient not
 * yet set); after a clean sweep, zeroed as they are read. */
static inline void rv_take_adjoints(double *grad, double *adj, int64_t n, int clean, int assign) {
    if (assign && clean) { RV_IVDEP for (int64_t k = 0; k < n; ++k) { grad[k] = adj[k]; adj[k] = 0.0; } }
    else if (assign) memcpy(grad, adj, (size_t)n * sizeof(double));
    else if (clean) { RV_IVDEP for (int64_t k = 0; k < n; ++k) { grad[k] += adj[k]; adj[k] = 0.0; } }
    else { RV_IVDEP for (int64_t k = 0; k < n; ++k) grad[k] += adj[k]; }
}

/* The tangent (forward-mode) sweep over the same columns, from slot `from` up to `top`: the same
 * local partials applied the other way, tng[i] = da * tng[a0] + db * tng[a1]. The caller seeds
 * the leaves' tangents and zeroes the rest; constant operands have tangent zero. A zero tangent
 * passes nothing on, as a zero adjoint does in rv_backward: an input held still never turns an
 * infinite partial (sqrt at 0) into nan, and jvp along e_i equals the reverse sweep's dy/dx_i. */
#define RV_TAN_U(N, name, f, da, ...) \
    case RV_##N: { \
        const double a = val[arg0[i]]; (void)a; \
        tng[i] = RV_TNG(tng[arg0[i]], (da)); \
    } break;
#define RV_TAN_B(N, name, f, da, db, ...) \
    case RV_##N: { \
        const double a = val[arg0[i]], b = val[arg1[i]]; (void)a; (void)b; \
        tng[i] = RV_TNG(tng[arg0[i]], (da)) + RV_TNG(tng[arg1[i]], (db)); \
    } break; \
    case RV_##N##_VC: { \
        const double a = val[arg0[i]], b = cst[arg1[i]]; (void)a; (void)b; \
        tng[i] = RV_TNG(tng[arg0[i]], (da)); \
    } break; \
    case RV_##N##_CV: { \
        const double a = cst[arg0[i]], b = val[arg1[i]]; (void)a; (void)b; \
        tng[i] = RV_TNG(tng[arg1[i]], (db)); \
    } break;

static inline int64_t rv_forward_tangent(const uint8_t *op, const int32_t *arg0,
                                         const int32_t *arg1, const double *val,
                                         const double *cst, const int64_t *blk,
                                         const double *const *cptr, double *tng, int64_t from,
                                         int64_t top) {
    const rv_cols t = {op, arg0, arg1, val, cst, blk, cptr};
    for (int64_t i = from; i <= top; ++i) {
        const double y = val[i];
        (void)y;
        switch (op[i]) {
            case RV_LEAF: /* seeded by the caller */
            case RV_GROUP_SLOT: /* set by the group's last slot, before anything reads it */
                i = rv_run_up(op, i, top);
                break;
            REVAD_UNARY_OPS(RV_TAN_U)
            REVAD_BINARY_OPS(RV_TAN_B)
            default:
                if (op[i] >= RV_DOTC) {
                    const rv_kind *k = rv_kind_of(op[i]);
                    if (!k->tangent) return i; /* the caller's (a Python function's) */
                    k->tangent(&t, blk + arg0[i], i, tng);
                } else {
                    tng[i] = 0.0; /* constants and comparisons carry no derivative */
                }
                break;
        }
    }
    return -1;
}

/* The second-order sweep (ADOL-C's hess_vec: forward over reverse), from slot `top` down to 0,
 * after a tangent sweep (rv_forward_tangent) has left in tng each slot's derivative along a
 * direction v of the leaves. It carries each slot's adjoint adj[i] (dOutput/dNode_i) and that
 * adjoint's own derivative along v, adt[i]; for y = f(a, b), with g, gt those of y and ta, tb
 * the operands' tangents:
 *     adj[a] += g fa                    adt[a] += gt fa + g (faa ta + fab tb)
 *     adj[b] += g fb                    adt[b] += gt fb + g (fab ta + fbb tb)
 * (the op table's first and second partials). At the leaves adj is the gradient and adt is H v.
 * The caller zeroes adj and adt, seeds the output's adj with 1, and keeps tng from the tangent
 * sweep. The sweep is clean (as rv_backward's clean sweep): every slot's adj and adt are zeroed
 * once read, so that only the leaves' are left, and once the caller has read and zeroed those
 * (rv_second_order_walk) the buffers are ready for the next direction. A zero (adjoint,
 * tangent, adjoint's tangent) passes nothing on, as in rv_backward: 0 * inf is never taken.
 * Returns -1 when done, or the slot of a group it stopped at (a BLAS matrix product, which the
 * caller takes, then resumes just below it). */
/* One operand k's share: adjoint partial p, second partial s (along that operand alone). */
#define RV_SO_ONE(k, p, s) { \
        const double pk = (p); \
        double hk = RV_TNG(gt, pk); \
        if (g != 0.0) { \
            const double sk = (s); \
            adj[k] += g * pk; \
            hk += g * RV_TNG(tng[k], sk); \
        } \
        adt[k] += hk; \
    }
#define RV_SO_U(N, name, f, da, lazy, example, note, daa) \
    case RV_##N: { \
        const int32_t i0 = arg0[i]; const double a = val[i0]; (void)a; \
        RV_SO_ONE(i0, (da), (daa)) \
    } break;
#define RV_SO_B(N, name, f, da, db, lazy, example, note, daa, dab, dbb) \
    case RV_##N: { \
        const int32_t i0 = arg0[i], i1 = arg1[i]; const double a = val[i0], b = val[i1]; (void)a; (void)b; \
        const double pa = (da), pb = (db), ta = tng[i0], tb = tng[i1]; \
        double ha = RV_TNG(gt, pa), hb = RV_TNG(gt, pb); \
        if (g != 0.0) { \
            const double saa = (daa), sab = (dab), sbb = (dbb); \
            adj[i0] += g * pa; adj[i1] += g * pb; \
            ha += g * (RV_TNG(ta, saa) + RV_TNG(tb, sab)); \
            hb += g * (RV_TNG(ta, sab) + RV_TNG(tb, sbb)); \
        } \
        adt[i0] += ha; adt[i1] += hb; \
    } break; \
    case RV_##N##_VC: { \
        const int32_t i0 = arg0[i]; const double a = val[i0], b = cst[arg1[i]]; (void)a; (void)b; \
        RV_SO_ONE(i0, (da), (daa)) \
    } break; \
    case RV_##N##_CV: { \
        const int32_t i1 = arg1[i]; const double a = cst[arg0[i]], b = val[i1]; (void)a; (void)b; \
        RV_SO_ONE(i1, (db), (dbb)) \
    } break;

/* The second-order step of the block entry or group at slot i (kind_table.h), out of line as
 * rv_kind_backward is; -1 also for a kind with no rule (the caller checked there is none). */
static RV_NOINLINE int64_t rv_kind_second(const uint8_t *op, const int32_t *arg0,
                                          const int32_t *arg1, const double *val,
                                          const double *cst, const int64_t *blk,
                                          const double *const *cptr, const double *tng,
                                          double *adj, double *adt, int64_t i) {
    const rv_sweep2 s = {{op, arg0, arg1, val, cst, blk, cptr}, tng, adj, adt};
    const rv_kind *k = rv_kind_of(op[i]);
    return k->second ? k->second(&s, blk + arg0[i], i) : -1;
}

static inline int64_t rv_second_order(const uint8_t *op, const int32_t *arg0,
                                      const int32_t *arg1, const double *val, const double *cst,
                                      const int64_t *blk, const double *const *cptr,
                                      const double *tng, double *adj, double *adt, int64_t top) {
    for (int64_t i = top; i >= 0; --i) {
        const int c = op[i];
        if (c >= RV_DOTC) {
            if (c == RV_GROUP_SLOT) continue;
            const int64_t below = rv_kind_second(op, arg0, arg1, val, cst, blk, cptr, tng, adj,
                                                 adt, i);
            if (below < 0) return i;
            i = below;
            continue;
        }
        if (c == RV_LEAF) {  /* as in rv_backward */
            i = rv_leaf_run_down(op, i, 0);
            continue;
        }
        const double g = adj[i], gt = adt[i];
        if (g == 0.0 && gt == 0.0) continue;
        adj[i] = adt[i] = 0.0;
        const double y = val[i];
        (void)y;
        switch (c) {
            REVAD_UNARY_OPS(RV_SO_U)
            REVAD_BINARY_OPS(RV_SO_B)
            default: break; /* constants and comparisons pass nothing down */
        }
    }
    return -1;
}

/* A replay's step over a run of leaves and group placeholders: one jump, whatever its length.
 * A trace's tape has each such slot's distance to its run's last slot in arg0 (_mark_runs,
 * _core_replay.pxi), a column those entries do not use otherwise. */
static inline int64_t rv_replay_skip(const int32_t *arg0, int64_t i, int64_t top) {
    const int64_t j = i + (arg0[i] > 0 ? arg0[i] : 0);
    return j < top ? j : top;
}

/* The forward replay (revad.trace): the recorded tape re-evaluated at new inputs into `val`, a
 * buffer of the caller's (not the tape's: several threads may replay one recording at once),
 * from slot `from` up to `top`. `rec` is the tape's own values: what the recording saw.
 *
 * The caller wrote the new inputs into their leaves' slots, and `val` holds the recorded value
 * at every other leaf and constant node (copied once: nothing here writes them). Every op row
 * recomputes its value by the op table's forward column, as recording did (rv_unary,
 * rv_binary), so a replay gives the bits eager evaluation gives. Comparisons and guards are
 * checked against what the recording saw: a comparison that now comes out the other way, or a
 * guarded value that changed, means Python would have taken another path; *fail is set to its
 * slot and the replay stops. Returns -1 when done (or failed), or the slot of a group it
 * stopped at for the caller, which runs it (a BLAS product, a Python function, a SciPy row;
 * an elementwise or sum group of `split` outputs or more, for threads: rv_replay_run) and
 * resumes just above it.
 *
 * The elementwise groups at the ascending slots lazy[0, n_lazy) are left unwritten, as eager
 * recording left them (kind_table.h, rv_replay): a sum over one computes from its operands. */
#define RV_REP_U(N, name, f, da, ...) \
    case RV_##N: { const double a = val[arg0[i]]; (void)a; val[i] = (f); } break;
#define RV_REP_B(N, name, f, da, db, ...) \
    case RV_##N: { const double a = val[arg0[i]], b = val[arg1[i]]; val[i] = (f); } break; \
    case RV_##N##_VC: { const double a = val[arg0[i]], b = cst[arg1[i]]; val[i] = (f); } break; \
    case RV_##N##_CV: { const double a = cst[arg0[i]], b = val[arg1[i]]; val[i] = (f); } break;
#define RV_REP_C(N, name, f) \
    case RV_##N: { const double a = val[arg0[i]], b = val[arg1[i]]; \
        if (((f) ? 1.0 : 0.0) != rec[i]) { *fail = i; return -1; } } break; \
    case RV_##N##_VC: { const double a = val[arg0[i]], b = cst[arg1[i]]; \
        if (((f) ? 1.0 : 0.0) != rec[i]) { *fail = i; return -1; } } break; \
    case RV_##N##_CV: { const double a = cst[arg0[i]], b = val[arg1[i]]; \
        if (((f) ? 1.0 : 0.0) != rec[i]) { *fail = i; return -1; } } break;

static inline int64_t rv_forward_replay(const uint8_t *op, const int32_t *arg0,
                                        const int32_t *arg1, const double *rec, const double *cst,
                                        const int64_t *blk, const double *const *cptr,
                                        double *val, int64_t from, int64_t top, int64_t *fail,
                                        const int64_t *lazy, int64_t n_lazy, int64_t split) {
    const rv_replay s = {{op, arg0, arg1, val, cst, blk, cptr}, lazy, n_lazy, split};
    *fail = -1;
    for (int64_t i = from; i <= top; ++i) {
        switch (op[i]) {
            case RV_LEAF: case RV_GROUP_SLOT: i = rv_replay_skip(arg0, i, top); break;
            case RV_CONST: break;
            REVAD_UNARY_OPS(RV_REP_U)
            REVAD_BINARY_OPS(RV_REP_B)
            REVAD_COMPARE_OPS(RV_REP_C)
            case RV_GUARD:
                if (memcmp(val + arg0[i], rec + i, sizeof(double)) != 0) { *fail = i; return -1; }
                break;
            default:
                if (op[i] >= RV_DOTC && rv_kind_of(op[i])->forward(&s, blk + arg0[i], i, val))
                    return i;
                break;
        }
    }
    return -1;
}

/* The loops of the group at slot i that rv_forward_replay (run as s) stopped at for threads
 * (enum rv_run), and in *ps the lazy group a sum's values come from (rv_replay_lazy_source),
 * or NULL. */
static inline int rv_replay_run(const rv_replay *s, int64_t i, double *val, const int64_t **ps) {
    const int64_t *p = s->t.blk + s->t.arg0[i];
    *ps = NULL;
    if (s->t.op[i] == RV_EW) return RV_RUN_EW_FORWARD;
    *ps = (const int64_t *)rv_replay_lazy_source(s, (const rv_sums_blk *)p, val);
    return *ps ? RV_RUN_SUMS_LAZY_FORWARD : RV_RUN_SUMS_FORWARD;
}

/* Whether a replay of the tape's n entries runs in C alone: no entry's forward stops for the
 * caller (a Python function's, a SciPy row's: rv_python_forward; a product BLAS takes), and so
 * no backward does either once groups are not cut for threads. Then a batch's rows replay
 * without the GIL (rv_replay_row). */
static inline int rv_replay_in_c(const uint8_t *op, const int32_t *arg0, const int64_t *blk,
                                 int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const int c = op[i];
        if (c < RV_DOTC || c == RV_GROUP_SLOT) continue;
        const rv_kind *k = rv_kind_of(c);
        if (k->forward == rv_python_forward) return 0;
        if (k->run_backward == RV_RUN_BLAS && ((const rv_mm_blk *)(blk + arg0[i]))->blas)
            return 0;
    }
    return 1;
}

/* A max/min's ties, checked on a replay's values (_array_trace.pxi, _TiesCheck): operand
 * element k (slot a[k]) ties with its result (slot r[k], result number rk[k] of nr) where it
 * equals it and is finite. With the recorded ties (tie: a byte per element) they must be the
 * same; without (NULL: there were none), no result may have two. cnt: nr counters of the
 * caller's. Returns whether they hold. */
static inline int rv_ties_hold(const double *val, const int64_t *a, const int64_t *r,
                               const int64_t *rk, int64_t n, const uint8_t *tie, int32_t *cnt,
                               int64_t nr) {
    if (!tie) memset(cnt, 0, (size_t)nr * sizeof(int32_t));
    for (int64_t k = 0; k < n; ++k) {
        const double y = val[r[k]];
        const int now = val[a[k]] == y && isfinite(y);
        if (tie ? now != tie[k] : (now && ++cnt[rk[k]] > 1)) return 0;
    }
    return 1;
}

/* One row of a batch (revad.trace's batch; _core_replay.pxi, _Rows), for a tape that replays
 * in C alone (rv_replay_in_c), in a replay's buffers val and adj (adj zero but for nothing):
 * the row's nx inputs x written into their slots xs, the forward replay, the reverse sweep
 * seeded at slot `out` (none if out < 0: f returned a constant), the adjoints of the ng slots
 * gs read into g (0.0 for a slot -1: an input the function never read) and zeroed, and the
 * other slots the sweep leaves nonzero zeroed (`runs`: (first, count) pairs), leaving adj zero
 * for the next row. The same steps as Trace.value_and_grad's (_run_with), so each row has its
 * bits; groups are not cut for threads (the rows are). Returns -1, or the entry of the guard
 * or comparison that failed (nothing written to g). t->val: the tape's recorded values; rop:
 * the op column the reverse sweep reads (the trace's activity, activity.h: inactive entries
 * read as leaves), t->cptr: this row's buffers' constants (the _OWN_VALUES entry points at
 * val); lazy: the groups the forward replay leaves unwritten (rv_forward_replay). */
static inline int64_t rv_replay_row(const rv_cols *t, const uint8_t *rop, double *val,
                                    double *adj, int64_t out, const double *x, const int64_t *xs,
                                    int64_t nx, double *g, const int64_t *gs, int64_t ng,
                                    const int64_t *runs, int64_t n_runs, const int64_t *lazy,
                                    int64_t n_lazy, int64_t top) {
    int64_t fail;
    for (int64_t k = 0; k < nx; ++k) val[xs[k]] = x[k];
    rv_forward_replay(t->op, t->arg0, t->arg1, t->val, t->cst, t->blk, t->cptr, val, 0, top,
                      &fail, lazy, n_lazy, INT64_MAX);
    if (fail >= 0) return fail;
    if (out >= 0) {
        const int64_t seed = rv_group_end(rop, out);
        adj[out] = 1.0;
        rv_backward(rop, t->arg0, t->arg1, val, t->cst, t->blk, t->cptr, adj, seed, 1,
                    INT64_MAX, seed, 0);
    }
    for (int64_t k = 0; k < ng; ++k) g[k] = gs[k] >= 0 ? adj[gs[k]] : 0.0;
    for (int64_t k = 0; k < ng; ++k)  /* (after all reads: an argnum may repeat) */
        if (gs[k] >= 0) adj[gs[k]] = 0.0;
    for (int64_t k = 0; k < n_runs; ++k)
        memset(adj + runs[2 * k], 0, (size_t)runs[2 * k + 1] * sizeof(double));
    return -1;
}

/* A walk over the entries at or below `top` (a group stepped over from its last slot to its
 * first): returns the highest slot whose entry's kind has no second-order rule (kind_table.h: a
 * Python function's, a SciPy function's), or -1, whether the second-order sweep can run; and,
 * unless tng is NULL, zeroes tng, adj and adt at every leaf, the slots that the sweeps leave
 * (the tangent sweep writes every other one, the clean second-order sweep zeroes it). */
static inline int64_t rv_second_order_walk(const uint8_t *op, const int32_t *arg0,
                                           const int64_t *blk, int64_t top, double *tng,
                                           double *adj, double *adt) {
    for (int64_t i = top; i >= 0; --i) {
        const int c = op[i];
        if (c == RV_LEAF) {
            if (tng) tng[i] = adj[i] = adt[i] = 0.0;
        } else if (c >= RV_DOTC && c != RV_GROUP_SLOT) {
            const rv_kind *k = rv_kind_of(c);
            if (!k->second) return i;
            i = k->first(blk + arg0[i], i);
        }
    }
    return -1;
}

/* Sparsity (sparsity.h). The pass down from slot `top` (the caller marks the outputs live):
 * which slots the outputs depend on through a nonzero derivative. */
static inline void rv_pattern_live(const rv_cols *t, rv_pat *P, int64_t top) {
    for (int64_t i = top; i >= 0; --i) {
        const int c = t->op[i];
        if (c == RV_LEAF || c == RV_CONST || c == RV_GROUP_SLOT) continue;
        if (c >= RV_DOTC) {
            const rv_kind *k = rv_kind_of(c);
            const int64_t *p = t->blk + t->arg0[i];
            k->pattern(t, p, i, P);
            i = k->first(p, i);
            continue;
        }
        if (P->live[i] == 1) rv_pat_row(P, c, t->arg0[i], t->arg1[i], i);
    }
}

/* The pass up, after rv_pattern_live: each live slot's index set (and, RV_PAT_HESS, the
 * interacting pairs). */
static inline void rv_pattern_forward(const rv_cols *t, rv_pat *P, int64_t top) {
    for (int64_t i = 0; i <= top && !P->oom; ++i) {
        const int c = t->op[i];
        if (c == RV_LEAF || c == RV_CONST || c == RV_GROUP_SLOT) continue;
        if (c >= RV_DOTC) rv_kind_of(c)->pattern(t, t->blk + t->arg0[i], i, P);
        else if (P->live[i] == 1) rv_pat_row(P, c, t->arg0[i], t->arg1[i], i);
    }
}

#endif
