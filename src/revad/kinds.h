/* The parameters of the tape's entry kinds that are not one op row: block entries (DOTC, DOT)
 * and groups (MM, EW, SUMS). An entry of such a kind has its parameters in the tape's int64
 * side table `blk`, at the index in its arg0; each struct below overlays that table (every field
 * an int64_t, so no padding), and _core.pxd declares the same structs, so that the writers in
 * Cython and the readers in C name the same fields.
 *
 * Strides count slots or doubles. An operand's `src` says where it lives: -1 the tape's slots
 * (val, adj, tng), -2 (EW only) the constant pool cst, c >= 0 the constant array cptr[c]. */
#ifndef REVAD_KINDS_H
#define REVAD_KINDS_H

#include <stddef.h>
#include <stdint.h>

#define RV_SRC_SLOTS (-1)
#define RV_SRC_POOL (-2)

/* DOTC: y = sum_k val[start + k*stride] * cptr[c][coff + k*cstride]. */
typedef struct {
    int64_t start, stride, count;
    int64_t c, coff, cstride;
} rv_dotc_blk;

/* DOT: y = sum_k val[start0 + k*stride0] * val[start1 + k*stride1]. */
typedef struct {
    int64_t start0, stride0, start1, stride1, count;
} rv_dot_blk;

/* A matrix operand: element (i, k) at off + i*rs + k*cs of the slots (src < 0) or of cptr[src]. */
typedef struct {
    int64_t src, off, rs, cs;
} rv_mm_operand;

/* MM: Y = A @ B, A (m, n), B (n, q), Y on the m*q slots from out (C order). `blas`: the sweep
 * stops at the group so that the caller, which holds NumPy's BLAS, takes its backward. */
typedef struct {
    int64_t out, m, n, q;
    rv_mm_operand a, b;
    int64_t blas;
} rv_mm_blk;

/* EW: y = op(a) or op(a, b) over the collapsed shape[nd] (nd >= 1), on the n slots from out;
 * then one rv_ew_operand per operand (rv_ew_operand_at). */
typedef struct {
    int64_t out, n, op, nd;
    int64_t shape[];
} rv_ew_blk;

/* An elementwise operand: its base (src), offset, and one stride per dimension (0: broadcast). */
typedef struct {
    int64_t src, off;
    int64_t stride[];
} rv_ew_operand;

static inline int64_t rv_ew_width(int64_t nd, int arity) { return 4 + nd + arity * (2 + nd); }
static inline rv_ew_operand *rv_ew_operand_at(const rv_ew_blk *h, int j) {
    return (rv_ew_operand *)(h->shape + h->nd + j * (2 + h->nd));
}

/* SUMS: n sums, one per element of shape[nd] (C order), on the n slots from out. Output k sums
 * `count` slots `stride` apart from first + (k's index . ostride) (rv_sums_ostride). */
typedef struct {
    int64_t out, n, nd, first, count, stride;
    int64_t shape[];  /* shape[nd], then ostride[nd] */
} rv_sums_blk;

static inline int64_t rv_sums_width(int64_t nd) { return 6 + 2 * nd; }
static inline int64_t *rv_sums_ostride(const rv_sums_blk *h) { return (int64_t *)h->shape + h->nd; }

/* CALL: the n outputs from `out` of a Python function (revad.primitive), whose backward and
 * tangent the caller runs with the GIL (the tape's refs[obj] holds them); its inputs are
 * n_in runs of slots, input k the span[2k + 1] slots from span[2k] (C order). */
typedef struct {
    int64_t out, n, obj, n_in;
    int64_t span[];
} rv_call_blk;

static inline int64_t rv_call_width(int64_t n_in) { return 4 + 2 * n_in; }

/* PAIR (group_pair.h): values and partials computed by SciPy at record time. y over shape[nd]
 * (nd >= 1) on the n slots from out; then one rv_pair_operand per operand ON THE TAPE (nargs of
 * them; constant operands have no partial and are not listed): its first slot, its strides
 * (0: broadcast), and d, the index in cptr of its partials (n doubles, the output's C order). */
typedef struct {
    int64_t out, n, nd, nargs;
    int64_t src;  /* the index in refs of its row and operands, for revad._nested; -1: none */
    int64_t shape[];
} rv_pair_blk;
typedef struct {
    int64_t off, d;
    int64_t stride[];
} rv_pair_operand;
static inline int64_t rv_pair_width(int64_t nd, int64_t nargs) { return 5 + nd + nargs * (2 + nd); }
static inline rv_pair_operand *rv_pair_operand_at(const rv_pair_blk *h, int64_t j) {
    return (rv_pair_operand *)(h->shape + h->nd + j * (2 + h->nd));
}

/* The int64 each kind takes in blk. */
#define RV_BLK_DOTC ((int64_t)(sizeof(rv_dotc_blk) / sizeof(int64_t)))
#define RV_BLK_DOT ((int64_t)(sizeof(rv_dot_blk) / sizeof(int64_t)))
#define RV_BLK_MM ((int64_t)(sizeof(rv_mm_blk) / sizeof(int64_t)))

/* Every group's struct begins with its first output slot, `out`, so that the kind table reads it
 * the same way for all of them (rv_group_first); the check below fails the build otherwise. */
typedef struct {
    int64_t out;
} rv_group_head;
typedef char rv_groups_begin_with_out[
    (offsetof(rv_mm_blk, out) == 0 && offsetof(rv_ew_blk, out) == 0
     && offsetof(rv_sums_blk, out) == 0 && offsetof(rv_call_blk, out) == 0
     && offsetof(rv_pair_blk, out) == 0) ? 1 : -1];

#endif
