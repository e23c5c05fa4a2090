/* Sparsity patterns from a recorded tape: which inputs each slot depends on (index sets,
 * propagated forward: a Jacobian's pattern) and which pairs of inputs interact through a
 * nonlinear entry (Walther 2008, "Computing sparse Hessians with automatic differentiation";
 * ADOL-C's hess_pat: a Hessian's pattern). Over-estimating a pattern only costs colours;
 * under-estimating gives a wrong Hessian, so every rule here errs on the side of "depends".
 *
 * Two passes over the tape's columns (sweep.h: rv_pattern_live, rv_pattern_forward). The first,
 * from the outputs down, marks the slots an output depends on through a nonzero derivative
 * ("live"); the second, from the leaves up, gives each live slot its index set and, for a
 * Hessian, collects the interacting pairs. Op rows follow their curvature (below); each kind of
 * block entry or group reports its outputs itself (rv_kind.pattern, kind_table.h), through the
 * four calls rv_pat_begin, rv_pat_dep, rv_pat_end and rv_pat_cross.
 *
 * Index sets are sorted int32 runs in one pool, shared where a result equals an operand's (a
 * copy, a linear op of one operand) and, for large ones, extended in place where a result is
 * an operand's set plus larger indices (a running sum over a loop: linear, not quadratic). Pairs are (i, j), i <= j, deduplicated by a
 * counting sort by i whenever they have doubled, so memory stays near the pattern's size. */
#ifndef REVAD_SPARSITY_H
#define REVAD_SPARSITY_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ops_table.h"

/* ---- Curvature of each op row: one obvious place --------------------------------------------
 * Bits: the output depends on a (RV_DEP_A) / b (RV_DEP_B) through a derivative that is not zero
 * everywhere; its second derivative in a, a and b, b may be nonzero (RV_AA, RV_AB, RV_BB).
 * Piecewise linear rows (abs, relu, maximum, remainder, ...) are linear: their recorded second
 * derivative is zero wherever they are differentiable, as revad's dense Hessian computes it.
 * Rows whose derivative is zero everywhere (sign, floor, ...) depend on nothing.
 * Each row of ops_table.h needs its line here: a row without one fails to compile, naming
 * RV_CURVE_<ROW>, so a new op cannot be classified by default. */
#define RV_DEP_A 1
#define RV_DEP_B 2
#define RV_AA 4
#define RV_AB 8
#define RV_BB 16

#define RV_FLAT 0                                  /* derivative zero everywhere */
#define RV_LIN1 RV_DEP_A                           /* unary, linear */
#define RV_NONLIN1 (RV_DEP_A | RV_AA)              /* unary, nonlinear */
#define RV_LIN2 (RV_DEP_A | RV_DEP_B)              /* binary, linear in both */
#define RV_BILIN (RV_LIN2 | RV_AB)                 /* a * b: the cross term only */
#define RV_LIN_A (RV_LIN2 | RV_AB | RV_BB)         /* a / b: linear in a alone */
#define RV_NONLIN2 (RV_LIN2 | RV_AA | RV_AB | RV_BB)

#define RV_CURVE_NEG RV_LIN1
#define RV_CURVE_ABS RV_LIN1
#define RV_CURVE_SQUARE RV_NONLIN1
#define RV_CURVE_EXP RV_NONLIN1
#define RV_CURVE_LOG RV_NONLIN1
#define RV_CURVE_LOG1P RV_NONLIN1
#define RV_CURVE_EXPM1 RV_NONLIN1
#define RV_CURVE_SQRT RV_NONLIN1
#define RV_CURVE_SIN RV_NONLIN1
#define RV_CURVE_COS RV_NONLIN1
#define RV_CURVE_TAN RV_NONLIN1
#define RV_CURVE_ARCSIN RV_NONLIN1
#define RV_CURVE_ARCCOS RV_NONLIN1
#define RV_CURVE_ARCTAN RV_NONLIN1
#define RV_CURVE_SINH RV_NONLIN1
#define RV_CURVE_COSH RV_NONLIN1
#define RV_CURVE_TANH RV_NONLIN1
#define RV_CURVE_SIGMOID RV_NONLIN1
#define RV_CURVE_RELU RV_LIN1
#define RV_CURVE_SOFTPLUS RV_NONLIN1
#define RV_CURVE_ERF RV_NONLIN1
#define RV_CURVE_LOG2 RV_NONLIN1
#define RV_CURVE_LOG10 RV_NONLIN1
#define RV_CURVE_EXP2 RV_NONLIN1
#define RV_CURVE_ARCSINH RV_NONLIN1
#define RV_CURVE_ARCCOSH RV_NONLIN1
#define RV_CURVE_ARCTANH RV_NONLIN1
#define RV_CURVE_CBRT RV_NONLIN1
#define RV_CURVE_RECIPROCAL RV_NONLIN1
#define RV_CURVE_SINC RV_NONLIN1
#define RV_CURVE_FABS RV_LIN1
#define RV_CURVE_SIGN RV_FLAT
#define RV_CURVE_FLOOR RV_FLAT
#define RV_CURVE_CEIL RV_FLAT
#define RV_CURVE_RINT RV_FLAT
#define RV_CURVE_TRUNC RV_FLAT
#define RV_CURVE_DEG2RAD RV_LIN1
#define RV_CURVE_RADIANS RV_LIN1
#define RV_CURVE_RAD2DEG RV_LIN1
#define RV_CURVE_DEGREES RV_LIN1
#define RV_CURVE_POSITIVE RV_LIN1
#define RV_CURVE_CONJUGATE RV_LIN1
#define RV_CURVE_COPY RV_LIN1
#define RV_CURVE_SHIFT RV_FLAT

#define RV_CURVE_ADD RV_LIN2
#define RV_CURVE_SUB RV_LIN2
#define RV_CURVE_MUL RV_BILIN
#define RV_CURVE_DIV RV_LIN_A
#define RV_CURVE_POW RV_NONLIN2
#define RV_CURVE_MAXIMUM RV_LIN2
#define RV_CURVE_MINIMUM RV_LIN2
#define RV_CURVE_ARCTAN2 RV_NONLIN2
#define RV_CURVE_HYPOT RV_NONLIN2
#define RV_CURVE_LOGADDEXP RV_NONLIN2
#define RV_CURVE_LOGADDEXP2 RV_NONLIN2
#define RV_CURVE_FMAX RV_LIN2
#define RV_CURVE_FMIN RV_LIN2
#define RV_CURVE_REMAINDER RV_LIN2
#define RV_CURVE_FMOD RV_LIN2

/* A binary row with b a constant (_VC) keeps a's terms, with a a constant (_CV) b's. */
#define RV_CURVE_VC(k) ((k) & (RV_DEP_A | RV_AA))
#define RV_CURVE_CV(k) ((k) & (RV_DEP_B | RV_BB))
#define RV_CURVE_U(N, ...) [RV_##N] = RV_CURVE_##N,
#define RV_CURVE_B(N, ...) \
    [RV_##N] = RV_CURVE_##N, [RV_##N##_VC] = RV_CURVE_VC(RV_CURVE_##N), \
    [RV_##N##_CV] = RV_CURVE_CV(RV_CURVE_##N),
/* Indexed by op code; comparisons, constants, leaves and kinds are 0 here. */
static const uint8_t rv_curves[RV_N_OPS] = {
    REVAD_UNARY_OPS(RV_CURVE_U)
    REVAD_BINARY_OPS(RV_CURVE_B)
};
static inline int rv_curve(int64_t op) { return op >= 0 && op < RV_N_OPS ? rv_curves[op] : 0; }

/* ---- The pattern engine --------------------------------------------------------------------- */
enum { RV_PAT_LIVE, RV_PAT_JAC, RV_PAT_HESS };

typedef struct {
    int mode;                /* RV_PAT_LIVE: the pass down; RV_PAT_JAC, RV_PAT_HESS: up */
    uint8_t *live;           /* per slot: 0 dead, 1 live, 2 an input (its set is fixed) */
    int64_t *off;            /* per slot: its index set, pool[off, off + len) */
    int32_t *len;
    int32_t *pool;
    int64_t np, cap;
    int on;                  /* the current output (out) is being computed */
    int64_t out;
    int k;                   /* distinct nonempty sources so far: 0, 1, 2, or 3 (scratch) */
    int64_t soff[2];
    int32_t slen[2];
    int64_t sslot[2];        /* the slots they came from */
    /* Large sets live in regions with room to grow: a set that is a region's used prefix is
     * extended in place (a running sum's set grows by its new indices, not by a copy of
     * itself). reg: per slot, its set's region (-1: none); a region's used and reserved end. */
    int32_t *reg;
    int64_t *reg_used, *reg_end;
    int64_t nreg, capreg, capreg_end;
    int32_t *scratch;        /* a union of three or more sets, marked in `mark` */
    int64_t ns, caps;
    int32_t *mark, stamp;    /* per input */
    int32_t *pairs;          /* interacting pairs (i, j), i <= j, flat */
    int64_t npairs, cappairs, kept;
    int32_t *tmp;            /* for the counting sort of pairs */
    int64_t *cnt;
    int32_t n_in;
    int oom;
} rv_pat;

static inline int rv_pat_room(rv_pat *P, void **p, int64_t *cap, int64_t need, size_t size) {
    if (need <= *cap) return 1;
    int64_t c = *cap > 1024 ? *cap : 1024;
    while (c < need) c *= 2;
    void *q = realloc(*p, (size_t)c * size);
    if (!q) { P->oom = 1; return 0; }
    *p = q;
    *cap = c;
    return 1;
}

/* A new pass over slots [0, top]; input j is slot in_slot[j] (-1: not on the tape), its index set
 * {j}. Returns 0 when out of memory. */
static inline int rv_pat_init(rv_pat *P, int mode, int64_t top, int32_t n_in, const int64_t *in_slot) {
    memset(P, 0, sizeof(*P));
    P->mode = mode;
    P->n_in = n_in;
    P->live = (uint8_t *)calloc((size_t)top + 1, 1);
    P->off = (int64_t *)calloc((size_t)top + 1, sizeof(int64_t));
    P->len = (int32_t *)calloc((size_t)top + 1, sizeof(int32_t));
    P->mark = (int32_t *)calloc((size_t)n_in + 1, sizeof(int32_t));
    P->cnt = (int64_t *)calloc((size_t)n_in + 2, sizeof(int64_t));
    P->reg = (int32_t *)malloc(((size_t)top + 1) * sizeof(int32_t));
    if (P->reg) memset(P->reg, 0xff, ((size_t)top + 1) * sizeof(int32_t));  /* all -1 */
    if (!P->live || !P->off || !P->len || !P->mark || !P->cnt || !P->reg
        || !rv_pat_room(P, (void **)&P->pool, &P->cap, (int64_t)n_in + 1024, sizeof(int32_t)))
        return 0;
    for (int32_t j = 0; j < n_in; ++j) {
        P->pool[j] = j;  /* input j's set {j} is pool[j, j + 1) */
        if (in_slot[j] >= 0 && in_slot[j] <= top) {
            P->live[in_slot[j]] = 2;
            P->off[in_slot[j]] = j;
            P->len[in_slot[j]] = 1;
        }
    }
    P->np = n_in;
    return 1;
}

static inline void rv_pat_free(rv_pat *P) {
    free(P->live); free(P->off); free(P->len); free(P->pool); free(P->scratch);
    free(P->mark); free(P->pairs); free(P->tmp); free(P->cnt);
    free(P->reg); free(P->reg_used); free(P->reg_end);
    memset(P, 0, sizeof(*P));
}

/* Starts output slot o: whether its rule must be reported (the pass down: o is live; the pass
 * up: o is live and not an input). Then rv_pat_dep for each slot it reads through a nonzero
 * derivative, rv_pat_end, and rv_pat_cross for each pair of read slots it is nonlinear in. */
static inline int rv_pat_begin(rv_pat *P, int64_t o) {
    P->out = o;
    P->k = 0;
    P->on = P->live[o] == 1 && !P->oom;
    return P->on;
}

static inline void rv_pat_mark(rv_pat *P, int64_t off, int32_t n) {
    if (!rv_pat_room(P, (void **)&P->scratch, &P->caps, P->ns + n, sizeof(int32_t))) return;
    const int32_t *s = P->pool + off;
    for (int32_t k = 0; k < n; ++k)
        if (P->mark[s[k]] != P->stamp) { P->mark[s[k]] = P->stamp; P->scratch[P->ns++] = s[k]; }
}

static inline void rv_pat_dep(rv_pat *P, int64_t s) {
    if (P->mode == RV_PAT_LIVE) { if (!P->live[s]) P->live[s] = 1; return; }
    const int32_t n = P->len[s];
    if (!n) return;
    const int64_t off = P->off[s];
    if (P->k < 2) {
        for (int j = 0; j < P->k; ++j)
            if (P->soff[j] == off && P->slen[j] == n) return;
        P->soff[P->k] = off; P->slen[P->k] = n; P->sslot[P->k] = s; ++P->k;
        return;
    }
    if (P->k == 2) {  /* a third set: a union by marks from here on */
        if (P->stamp == INT32_MAX) { memset(P->mark, 0, (size_t)P->n_in * sizeof(int32_t)); P->stamp = 0; }
        ++P->stamp;
        P->ns = 0;
        rv_pat_mark(P, P->soff[0], P->slen[0]);
        rv_pat_mark(P, P->soff[1], P->slen[1]);
        P->k = 3;
    }
    rv_pat_mark(P, off, n);
}

static inline int rv_pat_cmp(const void *a, const void *b) {
    const int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

#define RV_PAT_REGION 64  /* sets of at least this many indices get a region */

/* n indices from src (NULL: none yet) as out's new set; a large one in a region with as much
 * room again. */
static inline int32_t *rv_pat_place(rv_pat *P, int64_t o, int64_t n) {
    const int64_t room = n >= RV_PAT_REGION ? 2 * n : n;
    if (!rv_pat_room(P, (void **)&P->pool, &P->cap, P->np + room, sizeof(int32_t))) return NULL;
    P->off[o] = P->np;
    P->len[o] = (int32_t)n;
    P->reg[o] = -1;
    if (room > n) {
        if (!rv_pat_room(P, (void **)&P->reg_used, &P->capreg, P->nreg + 1, sizeof(int64_t)))
            return NULL;
        if (!rv_pat_room(P, (void **)&P->reg_end, &P->capreg_end, P->nreg + 1, sizeof(int64_t)))
            return NULL;
        P->reg_used[P->nreg] = P->np + n;
        P->reg_end[P->nreg] = P->np + room;
        P->reg[o] = (int32_t)P->nreg++;
    }
    int32_t *r = P->pool + P->np;
    P->np += room;
    return r;
}

static inline int rv_pat_in(const int32_t *a, int32_t n, int32_t v) {
    int32_t lo = 0, hi = n;
    while (lo < hi) {
        const int32_t mid = lo + (hi - lo) / 2;
        if (a[mid] < v) lo = mid + 1; else hi = mid;
    }
    return lo < n && a[lo] == v;
}

/* The union of the two sources into out's set. A small one with a large one: the large one
 * itself where it holds the small one (shared), or the large one extended by the small one's
 * larger indices (in place where its region has room). Otherwise a merge. */
static inline void rv_pat_merge(rv_pat *P, int64_t o) {
    int j = P->slen[0] >= P->slen[1] ? 0 : 1;
    const int64_t ao = P->soff[j], bo = P->soff[1 - j], as = P->sslot[j];
    const int32_t an = P->slen[j], bn = P->slen[1 - j];
    if ((int64_t)bn * 8 <= an) {
        const int32_t *a = P->pool + ao, *b = P->pool + bo, top = a[an - 1];
        int32_t h = bn;
        while (h > 0 && b[h - 1] > top) --h;  /* b[h:] come after all of a */
        int32_t k = 0;
        while (k < h && rv_pat_in(a, an, b[k])) ++k;
        if (k == h) {
            const int32_t extra = bn - h;
            if (!extra) { P->off[o] = ao; P->len[o] = an; P->reg[o] = P->reg[as]; return; }
            const int32_t r = P->reg[as];
            if (r >= 0 && P->reg_used[r] == ao + an && P->reg_used[r] + extra <= P->reg_end[r]) {
                memcpy(P->pool + ao + an, b + h, (size_t)extra * sizeof(int32_t));
                P->reg_used[r] += extra;
                P->off[o] = ao; P->len[o] = an + extra; P->reg[o] = r;
                return;
            }
            int32_t *q = rv_pat_place(P, o, (int64_t)an + extra);
            if (!q) return;
            memcpy(q, P->pool + ao, (size_t)an * sizeof(int32_t));
            memcpy(q + an, P->pool + bo + h, (size_t)extra * sizeof(int32_t));
            return;
        }
    }
    if (!rv_pat_room(P, (void **)&P->pool, &P->cap, P->np + an + bn, sizeof(int32_t))) return;
    const int32_t *a = P->pool + ao, *b = P->pool + bo;
    int32_t *r = P->pool + P->np;
    int32_t i = 0, jj = 0, n = 0;
    while (i < an && jj < bn) {
        if (a[i] < b[jj]) r[n++] = a[i++];
        else if (b[jj] < a[i]) r[n++] = b[jj++];
        else { r[n++] = a[i++]; ++jj; }
    }
    while (i < an) r[n++] = a[i++];
    while (jj < bn) r[n++] = b[jj++];
    if (n == an) { P->off[o] = ao; P->len[o] = an; P->reg[o] = P->reg[as]; return; }
    if (n >= RV_PAT_REGION) {  /* moved into a region of its own, with room */
        int32_t *tmp = (int32_t *)malloc((size_t)n * sizeof(int32_t));
        if (!tmp) { P->oom = 1; return; }
        memcpy(tmp, r, (size_t)n * sizeof(int32_t));
        int32_t *q = rv_pat_place(P, o, n);
        if (q) memcpy(q, tmp, (size_t)n * sizeof(int32_t));
        free(tmp);
        return;
    }
    P->off[o] = P->np; P->len[o] = n; P->reg[o] = -1; P->np += n;
}

static inline void rv_pat_end(rv_pat *P) {
    if (P->mode == RV_PAT_LIVE || !P->on || P->oom) return;
    const int64_t o = P->out;
    if (P->k == 0) { P->len[o] = 0; return; }
    if (P->k == 1) {
        P->off[o] = P->soff[0]; P->len[o] = P->slen[0]; P->reg[o] = P->reg[P->sslot[0]];
        return;
    }
    if (P->k == 2) { rv_pat_merge(P, o); return; }
    int32_t *s = P->scratch;
    for (int64_t k = 1; k < P->ns; ++k)
        if (s[k] < s[k - 1]) { qsort(s, (size_t)P->ns, sizeof(int32_t), rv_pat_cmp); break; }
    int32_t *q = rv_pat_place(P, o, P->ns);
    if (q) memcpy(q, P->scratch, (size_t)P->ns * sizeof(int32_t));
}

/* Deduplicates the pairs: a counting sort by i, then each i's js marked once, sorted. */
static inline void rv_pat_compact(rv_pat *P) {
    const int64_t m = P->npairs, n = P->n_in;
    int64_t captmp = 0;
    if (!rv_pat_room(P, (void **)&P->tmp, &captmp, 2 * m + 2, sizeof(int32_t))) return;
    int64_t *cnt = P->cnt;
    memset(cnt, 0, (size_t)(n + 2) * sizeof(int64_t));
    for (int64_t k = 0; k < m; ++k) ++cnt[P->pairs[2 * k] + 1];
    for (int64_t i = 0; i < n; ++i) cnt[i + 1] += cnt[i];
    for (int64_t k = 0; k < m; ++k) P->tmp[cnt[P->pairs[2 * k]]++] = P->pairs[2 * k + 1];
    /* cnt[i] is now the end of i's js in tmp; their start is cnt[i - 1] (0 for i = 0) */
    int64_t w = 0, start = 0;
    for (int64_t i = 0; i < n; ++i) {
        const int64_t end = cnt[i];
        if (P->stamp == INT32_MAX) { memset(P->mark, 0, (size_t)n * sizeof(int32_t)); P->stamp = 0; }
        ++P->stamp;
        const int64_t w0 = w;
        for (int64_t k = start; k < end; ++k) {
            const int32_t j = P->tmp[k];
            if (P->mark[j] != P->stamp) { P->mark[j] = P->stamp; P->pairs[2 * w + 1] = j; ++w; }
        }
        if (w - w0 > 1 && w - w0 <= 16) {  /* a few (the usual): an insertion sort in place */
            for (int64_t k = w0 + 1; k < w; ++k) {
                const int32_t v = P->pairs[2 * k + 1];
                int64_t q = k;
                while (q > w0 && P->pairs[2 * (q - 1) + 1] > v) {
                    P->pairs[2 * q + 1] = P->pairs[2 * (q - 1) + 1];
                    --q;
                }
                P->pairs[2 * q + 1] = v;
            }
        } else if (w - w0 > 1) {  /* the js of i in order: gathered into tmp's free front, sorted */
            int32_t *js = P->tmp;  /* tmp[0, start) is read already: free */
            int64_t c = w - w0;
            if (c > start) {  /* (no room in front: sort in place through a stride-2 copy) */
                int32_t *buf = (int32_t *)malloc((size_t)c * sizeof(int32_t));
                if (!buf) { P->oom = 1; return; }
                for (int64_t k = 0; k < c; ++k) buf[k] = P->pairs[2 * (w0 + k) + 1];
                qsort(buf, (size_t)c, sizeof(int32_t), rv_pat_cmp);
                for (int64_t k = 0; k < c; ++k) P->pairs[2 * (w0 + k) + 1] = buf[k];
                free(buf);
            } else {
                for (int64_t k = 0; k < c; ++k) js[k] = P->pairs[2 * (w0 + k) + 1];
                qsort(js, (size_t)c, sizeof(int32_t), rv_pat_cmp);
                for (int64_t k = 0; k < c; ++k) P->pairs[2 * (w0 + k) + 1] = js[k];
            }
        }
        for (int64_t k = w0; k < w; ++k) P->pairs[2 * k] = (int32_t)i;
        start = end;
    }
    P->npairs = P->kept = w;
    free(P->tmp);
    P->tmp = NULL;
}

/* Every input that s depends on interacts with every input that r depends on (s == r: the
 * square of one operand's set). Only a Hessian's pass up collects pairs. */
static inline void rv_pat_cross(rv_pat *P, int64_t s, int64_t r) {
    if (P->mode != RV_PAT_HESS || P->oom) return;
    const int32_t ns = P->len[s], nr = P->len[r];
    if (!ns || !nr) return;
    if (!rv_pat_room(P, (void **)&P->pairs, &P->cappairs, 2 * (P->npairs + (int64_t)ns * nr),
                     sizeof(int32_t)))
        return;
    const int32_t *a = P->pool + P->off[s], *b = P->pool + P->off[r];
    int32_t *q = P->pairs + 2 * P->npairs;
    if (P->off[s] == P->off[r] && ns == nr) {  /* one set with itself: i <= j only */
        for (int32_t i = 0; i < ns; ++i)
            for (int32_t j = i; j < ns; ++j) { *q++ = a[i]; *q++ = a[j]; }
    } else {
        for (int32_t i = 0; i < ns; ++i)
            for (int32_t j = 0; j < nr; ++j) {
                const int32_t x = a[i], y = b[j];
                *q++ = x < y ? x : y; *q++ = x < y ? y : x;
            }
    }
    P->npairs = (q - P->pairs) / 2;
    if (P->npairs > 2 * P->kept + (1 << 20)) rv_pat_compact(P);
}

/* An output begun (rv_pat_begin) from operand slots a and b (-1: a constant) of curvature k:
 * its set, then its pairs. */
static inline void rv_pat_operands(rv_pat *P, int k, int64_t a, int64_t b) {
    if (k & RV_DEP_A) rv_pat_dep(P, a);
    if (k & RV_DEP_B) rv_pat_dep(P, b);
    rv_pat_end(P);
    if (k & RV_AA) rv_pat_cross(P, a, a);
    if (k & RV_AB) rv_pat_cross(P, a, b);
    if (k & RV_BB) rv_pat_cross(P, b, b);
}

/* An op row at slot i (not a kind): its operands by its curvature. */
static inline void rv_pat_row(rv_pat *P, int c, int32_t a0, int32_t a1, int64_t i) {
    const int k = rv_curve(c);
    if (!k || !rv_pat_begin(P, i)) return;
    int64_t a = a0, b = a1;
    if (c >= RV_ADD) {  /* binary (comparisons have k == 0): VV, VC, CV */
        const int j = (c - RV_ADD) % 3;
        if (j == 1) b = -1;
        if (j == 2) a = -1;
    }
    rv_pat_operands(P, k, a, b);
}

/* The Hessian's pattern as symmetric CSR (n_in rows, each sorted): indptr[n_in + 1] and
 * indices (malloc'ed, the caller frees). Returns 0 when out of memory. */
static inline int rv_pat_hessian_csr(rv_pat *P, int64_t **indptr, int32_t **indices) {
    rv_pat_compact(P);
    if (P->oom) return 0;
    const int64_t n = P->n_in, m = P->npairs;
    int64_t *ptr = (int64_t *)calloc((size_t)n + 1, sizeof(int64_t));
    int64_t nnz = 0;
    for (int64_t k = 0; k < m; ++k) {
        ++ptr[P->pairs[2 * k] + 1];
        if (P->pairs[2 * k] != P->pairs[2 * k + 1]) ++ptr[P->pairs[2 * k + 1] + 1];
    }
    for (int64_t i = 0; i < n; ++i) ptr[i + 1] += ptr[i];
    nnz = ptr[n];
    int32_t *idx = (int32_t *)malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof(int32_t));
    int64_t *fill = (int64_t *)malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    if (!ptr || !idx || !fill) { free(ptr); free(idx); free(fill); P->oom = 1; return 0; }
    memcpy(fill, ptr, (size_t)n * sizeof(int64_t));
    /* pairs are by i, then j ascending: row r gets the i < r (from (i, r), in order of i) first,
     * then its own js >= r in order: sorted without a sort */
    for (int64_t k = 0; k < m; ++k) {
        const int32_t i = P->pairs[2 * k], j = P->pairs[2 * k + 1];
        if (i != j) idx[fill[j]++] = i;
    }
    for (int64_t k = 0; k < m; ++k) {
        const int32_t i = P->pairs[2 * k], j = P->pairs[2 * k + 1];
        idx[fill[i]++] = j;
    }
    free(fill);
    *indptr = ptr;
    *indices = idx;
    return 1;
}

#endif
