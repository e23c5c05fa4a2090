/* Activity (revad.trace): which slots of a recording depend on a differentiated input. A trace
 * boxes every float argument as a leaf, the data too (a design matrix, labels), so that a
 * replay uses new data; but only the differentiated arguments' gradients are read, and eager
 * value_and_grad treats the data as constants. After this pass a replay's reverse sweep computes
 * the adjoints of active slots only: an inactive operand of an active elementwise group or
 * matrix product becomes a constant operand read from the replay's own values (the cptr entry
 * `vsrc`, which each replay points at its value buffer), and every inactive entry is a leaf to
 * the reverse sweep (the caller's copy of the op column). Where an active entry must still add
 * into an inactive slot's adjoint (an op row, a dot entry, a sum, a Python or SciPy function:
 * their operands have no constant form), the slot is marked RV_ACT_DIRTY: zeroed after the
 * sweep, never passed down.
 *
 * The activity is per entry, not per element: a group's outputs are all active if any slot it
 * reads is (an over-approximation, which costs work but never a wrong gradient). */
#ifndef REVAD_ACTIVITY_H
#define REVAD_ACTIVITY_H

#include "kind_table.h"

#define RV_ACT_OFF 0   /* depends on no differentiated input: never gets an adjoint */
#define RV_ACT_ON 1    /* may depend on one */
#define RV_ACT_DIRTY 2 /* inactive, but an active entry adds into its adjoint */

typedef struct {
    uint8_t *act;
    int32_t *cnt;  /* cnt[s]: the active slots below s, for s <= done */
    int64_t done;
} rv_act;

/* cnt up to slot s (every entry below s is settled: operands are always below). */
static inline void rv_act_upto(rv_act *A, int64_t s) {
    for (; A->done < s; ++A->done)
        A->cnt[A->done + 1] = A->cnt[A->done] + (A->act[A->done] == RV_ACT_ON);
}

/* A view operand (off, shape[nd], st[nd]) below the settled slots: its span in *lo, *hi;
 * -1 if it is empty, else whether any slot of its span is active. */
static inline int rv_act_view(const rv_act *A, int64_t off, int64_t nd, const int64_t *shape,
                              const int64_t *st, int64_t *lo, int64_t *hi) {
    if (!rv_view_span(off, nd, shape, st, lo, hi)) return -1;
    return A->cnt[*hi + 1] - A->cnt[*lo] > 0;
}

static inline void rv_act_dirty(rv_act *A, int64_t lo, int64_t hi) {
    for (int64_t s = lo; s <= hi; ++s)
        if (A->act[s] == RV_ACT_OFF) A->act[s] = RV_ACT_DIRTY;
}

/* The activity of every slot of op[0, n) into act (the caller sets RV_ACT_ON at the
 * differentiated leaves, RV_ACT_OFF elsewhere), rewriting blk's inactive operands of active
 * groups (MM, EW) to read cptr[vsrc]; cnt: n + 1 ints of scratch. */
static inline void rv_activity(const uint8_t *op, const int32_t *arg0, const int32_t *arg1,
                               int64_t *blk, int64_t n, uint8_t *act, int32_t *cnt, int64_t vsrc) {
    rv_act A = {act, cnt, 0};
    int64_t lo[2], hi[2];
    int any[2];
    cnt[0] = 0;
    for (int64_t i = 0; i < n; ++i) {
        const int c = op[i];
        if (c == RV_LEAF || c == RV_GROUP_SLOT) continue;  /* (a group's: at its carrier) */
        if (c == RV_CONST || c == RV_GUARD || (c >= RV_LT && c <= RV_NE + 2)) {
            act[i] = RV_ACT_OFF;  /* a comparison passes no adjoint down */
            continue;
        }
        if (c < RV_DOTC) {  /* an op row: unary, or binary VV, VC, CV */
            const int j = c < RV_ADD ? 1 : (c - RV_ADD) % 3;
            const int64_t s0 = j != 2 ? arg0[i] : -1, s1 = c >= RV_ADD && j != 1 ? arg1[i] : -1;
            const int on = (s0 >= 0 && act[s0] == RV_ACT_ON) || (s1 >= 0 && act[s1] == RV_ACT_ON);
            if (on) {
                if (s0 >= 0 && act[s0] == RV_ACT_OFF) act[s0] = RV_ACT_DIRTY;
                if (s1 >= 0 && act[s1] == RV_ACT_OFF) act[s1] = RV_ACT_DIRTY;
            }
            act[i] = on ? RV_ACT_ON : RV_ACT_OFF;
            continue;
        }
        int64_t *p = blk + arg0[i];
        const int64_t first = rv_kind_of(c)->first(p, i);
        int on = 0;
        rv_act_upto(&A, first);
        switch (c) {
        case RV_DOTC: {
            const rv_dotc_blk *h = (const rv_dotc_blk *)p;
            on = rv_act_view(&A, h->start, 1, &h->count, &h->stride, lo, hi) == 1;
            if (on) rv_act_dirty(&A, lo[0], hi[0]);
        } break;
        case RV_DOT: {
            const rv_dot_blk *h = (const rv_dot_blk *)p;
            any[0] = rv_act_view(&A, h->start0, 1, &h->count, &h->stride0, &lo[0], &hi[0]);
            any[1] = rv_act_view(&A, h->start1, 1, &h->count, &h->stride1, &lo[1], &hi[1]);
            on = any[0] == 1 || any[1] == 1;
            for (int k = 0; on && k < 2; ++k)
                if (any[k] >= 0) rv_act_dirty(&A, lo[k], hi[k]);
        } break;
        case RV_MM: {
            rv_mm_blk *h = (rv_mm_blk *)p;
            rv_mm_operand *o[2] = {&h->a, &h->b};
            const int64_t rows[2] = {h->m, h->n}, cols[2] = {h->n, h->q};
            for (int k = 0; k < 2; ++k) {
                const int64_t shape[2] = {rows[k], cols[k]}, st[2] = {o[k]->rs, o[k]->cs};
                any[k] = o[k]->src < 0 ? rv_act_view(&A, o[k]->off, 2, shape, st, &lo[k], &hi[k])
                                       : -1;
                on |= any[k] == 1;
            }
            for (int k = 0; on && k < 2; ++k)
                if (any[k] == 0) o[k]->src = vsrc;  /* data: a constant, read from the values */
                else if (any[k] == 1) rv_act_dirty(&A, lo[k], hi[k]);
        } break;
        case RV_EW: {
            rv_ew_blk *h = (rv_ew_blk *)p;
            const int arity = rv_ew_arity(h->op);
            for (int k = 0; k < 2; ++k) {
                rv_ew_operand *q = k < arity ? rv_ew_operand_at(h, k) : NULL;
                any[k] = q && q->src == RV_SRC_SLOTS
                    ? rv_act_view(&A, q->off, h->nd, h->shape, q->stride, &lo[k], &hi[k]) : -1;
                on |= any[k] == 1;
            }
            /* (an active group keeps an active operand on the slots, as its loops need) */
            for (int k = 0; on && k < arity; ++k)
                if (any[k] == 0) rv_ew_operand_at(h, k)->src = vsrc;
                else if (any[k] == 1) rv_act_dirty(&A, lo[k], hi[k]);
        } break;
        case RV_SUMS: {
            const rv_sums_blk *h = (const rv_sums_blk *)p;
            if (h->count > 0 && rv_act_view(&A, h->first, h->nd, h->shape, rv_sums_ostride(h),
                                            &lo[0], &hi[0]) >= 0) {
                const int64_t r = h->stride * (h->count - 1);
                if (r < 0) lo[0] += r; else hi[0] += r;
                on = A.cnt[hi[0] + 1] - A.cnt[lo[0]] > 0;
                if (on) rv_act_dirty(&A, lo[0], hi[0]);
            }
        } break;
        case RV_CALL: {
            const rv_call_blk *h = (const rv_call_blk *)p;
            for (int64_t k = 0; k < h->n_in; ++k) {
                const int64_t s = h->span[2 * k], m = h->span[2 * k + 1];
                on |= m > 0 && A.cnt[s + m] - A.cnt[s] > 0;
            }
            for (int64_t k = 0; on && k < h->n_in; ++k)
                if (h->span[2 * k + 1] > 0)
                    rv_act_dirty(&A, h->span[2 * k], h->span[2 * k] + h->span[2 * k + 1] - 1);
        } break;
        case RV_PAIR: {
            const rv_pair_blk *h = (const rv_pair_blk *)p;
            for (int64_t k = 0; k < h->nargs; ++k) {
                const rv_pair_operand *q = rv_pair_operand_at(h, k);
                on |= rv_act_view(&A, q->off, h->nd, h->shape, q->stride, lo, hi) == 1;
            }
            for (int64_t k = 0; on && k < h->nargs; ++k) {
                const rv_pair_operand *q = rv_pair_operand_at(h, k);
                if (rv_act_view(&A, q->off, h->nd, h->shape, q->stride, lo, hi) >= 0)
                    rv_act_dirty(&A, lo[0], hi[0]);
            }
        } break;
        default:  /* a kind this pass does not know: active, every slot below it dirty */
            on = 1;
            rv_act_dirty(&A, 0, first - 1);
            break;
        }
        memset(act + first, on ? RV_ACT_ON : RV_ACT_OFF, (size_t)(i + 1 - first));
    }
}

/* Data read in place (revad.trace). A replay writes each argument into its value buffer, the
 * data too, so that the entries reading it find it there: a copy of a design matrix per call.
 * Where only operands of elementwise groups and matrix products read an argument that nothing
 * differentiates (operands that can read a constant array instead), those operands are
 * rewritten to read cptr[src[k]] at their offset within the argument, and each replay points
 * that entry at the caller's array: no copy.
 *
 * The candidates: m arguments, argument k on the slots [lo[k], lo[k] + size[k]), sorted by lo
 * and disjoint, src[k] its cptr entry. rewrite 0: set src[k] = -1 where anything else reads a
 * slot of argument k (an op row, a guard, a comparison, any other kind) or an operand reads
 * past its edge; rewrite 1: rewrite the operands of the arguments left (the caller runs both,
 * in that order, and activity after them: the rewritten operands are constants to it). */
typedef struct {
    const int64_t *lo, *size;
    int64_t *src;
    int64_t m;
} rv_inputs;

/* An operand (or slot run) spanning [a, b]: the argument it lies within, or -1 (and every
 * argument it meets but does not lie within loses its place: it reads past the edge). */
static inline int64_t rv_input_within(const rv_inputs *I, int64_t a, int64_t b) {
    int64_t l = 0, h = I->m;  /* the first argument whose lo > b */
    while (l < h) {
        const int64_t mid = (l + h) / 2;
        if (I->lo[mid] <= b) l = mid + 1; else h = mid;
    }
    int64_t k = l - 1, in = -1;
    for (; k >= 0 && I->lo[k] + I->size[k] > a; --k) {
        if (a >= I->lo[k] && b < I->lo[k] + I->size[k]) in = k;
        else I->src[k] = -1;
    }
    return in;
}

static inline void rv_input_read(const rv_inputs *I, int64_t a, int64_t b) {
    const int64_t k = rv_input_within(I, a, b);
    if (k >= 0) I->src[k] = -1;
}

static inline void rv_inputs_in_place(const uint8_t *op, const int32_t *arg0,
                                      const int32_t *arg1, int64_t *blk, int64_t n,
                                      const int64_t *lo, const int64_t *size, int64_t *src,
                                      int64_t m, int rewrite) {
    const rv_inputs I = {lo, size, src, m};
    int64_t a, b;
    if (m == 0) return;
    for (int64_t i = 0; i < n; ++i) {
        const int c = op[i];
        if (c == RV_LEAF || c == RV_CONST || c == RV_GROUP_SLOT) continue;
        if (c < RV_DOTC) {  /* an op row, a guard, a comparison: the slots it reads */
            if (rewrite) continue;
            if (c == RV_GUARD || c < RV_ADD) {
                rv_input_read(&I, arg0[i], arg0[i]);
            } else {
                const int j = (c - RV_ADD) % 3;
                if (j != 2) rv_input_read(&I, arg0[i], arg0[i]);
                if (j != 1) rv_input_read(&I, arg1[i], arg1[i]);
            }
            continue;
        }
        int64_t *p = blk + arg0[i];
        if (c == RV_MM) {
            rv_mm_blk *h = (rv_mm_blk *)p;
            rv_mm_operand *o[2] = {&h->a, &h->b};
            const int64_t rows[2] = {h->m, h->n}, cols[2] = {h->n, h->q};
            for (int j = 0; j < 2; ++j) {
                const int64_t shape[2] = {rows[j], cols[j]}, st[2] = {o[j]->rs, o[j]->cs};
                if (o[j]->src >= 0 || !rv_view_span(o[j]->off, 2, shape, st, &a, &b)) continue;
                const int64_t k = rv_input_within(&I, a, b);
                if (rewrite && k >= 0 && src[k] >= 0) {
                    o[j]->src = src[k];
                    o[j]->off -= lo[k];
                }
            }
        } else if (c == RV_EW) {
            rv_ew_blk *h = (rv_ew_blk *)p;
            for (int j = 0; j < rv_ew_arity(h->op); ++j) {
                rv_ew_operand *q = rv_ew_operand_at(h, j);
                if (q->src != RV_SRC_SLOTS || !rv_view_span(q->off, h->nd, h->shape, q->stride,
                                                            &a, &b)) continue;
                const int64_t k = rv_input_within(&I, a, b);
                if (rewrite && k >= 0 && src[k] >= 0) {
                    q->src = src[k];
                    q->off -= lo[k];
                }
            }
        } else if (!rewrite) {  /* any other kind reads the slots themselves */
            const rv_kind *kind = rv_kind_of(c);
            for (int64_t k = 0; k < m; ++k)
                if (src[k] >= 0 && kind->reads(p, lo[k], lo[k] + size[k])) src[k] = -1;
        }
    }
}

/* Which operands of the matrix product at slot i have adjoints still all zero when a clean
 * reverse sweep from slot `seed` over the op column `op` (a trace's: inactive entries read as
 * leaves) reaches it, so that its products write them instead of adding to them (_core_blas.pxi,
 * _add_product): those on slots that no entry above it may add to (rv_reads_below, which counts
 * one past its budget as a reader) and, for B, not on A's slots (the product adds A's first).
 * A fused sum's elementwise group adds to its operands' adjoints at the sum's slot, above the
 * group's own, but the sum comes right after the group (rv_sums_fused): no product between.
 * Bits: 1, A's; 2, B's. */
static inline int rv_mm_fresh(const uint8_t *op, const int32_t *arg0, const int32_t *arg1,
                              const int64_t *blk, int64_t seed, int64_t i) {
    const rv_mm_blk *h = (const rv_mm_blk *)(blk + arg0[i]);
    const rv_mm_operand *o[2] = {&h->a, &h->b};
    const int64_t rows[2] = {h->m, h->n}, cols[2] = {h->n, h->q};
    int64_t lo[2], hi[2];
    int on[2], bits = 0;
    for (int j = 0; j < 2; ++j) {
        const int64_t shape[2] = {rows[j], cols[j]}, st[2] = {o[j]->rs, o[j]->cs};
        on[j] = o[j]->src < 0 && rv_view_span(o[j]->off, 2, shape, st, &lo[j], &hi[j]);
        if (on[j] && !rv_reads_below(op, arg0, arg1, blk, seed, i, lo[j], hi[j] + 1))
            bits |= 1 << j;
    }
    if (on[0] && on[1] && rv_meets(lo[0], hi[0], lo[1], hi[1] + 1)) bits &= 1;
    return bits;
}

/* The entry of finished tape (op, ...) that reads a slot in [a, b), if exactly one does (an op
 * row, a guard, a comparison, or an entry of any kind by its operands); -1: none; -2: more. */
static inline int64_t rv_sole_reader(const uint8_t *op, const int32_t *arg0, const int32_t *arg1,
                                     const int64_t *blk, int64_t n, int64_t a, int64_t b) {
    int64_t found = -1;
    for (int64_t i = 0; i < n; ++i) {
        const int c = op[i];
        if (c == RV_LEAF || c == RV_CONST || c == RV_GROUP_SLOT) continue;
        if (c >= RV_DOTC ? rv_kind_of(c)->reads(blk + arg0[i], a, b)
                         : rv_row_reads(c, arg0[i], arg1[i], a, b)) {
            if (found >= 0) return -2;
            found = i;
        }
    }
    return found;
}

#endif
