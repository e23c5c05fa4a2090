/* Greedy colourings of a sparsity pattern (CSR: ptr[n + 1], idx sorted per row), for computing
 * a sparse derivative from a few products (Gebremedhin, Manne and Pothen 2005, "What color is
 * your Jacobian?"; ColPack):
 * - a star colouring of a symmetric pattern (a Hessian's): adjacent vertices differ, and every
 *   path on four vertices uses three colours at least. Then each nonzero H[i, j] is read
 *   directly from H V (V: one column per colour, the indicator of its vertices), at row i of
 *   colour(j)'s column or at row j of colour(i)'s (revad/_sparse.py);
 * - a distance-2 colouring of the columns of a rectangular pattern (a Jacobian's): columns that
 *   share a row differ, so J S (S: the colours' indicators) holds each nonzero alone (a
 *   Jacobian's rows: the same on its transpose).
 * Vertices are taken in the order given (the caller's: largest degree first, or natural).
 * `forbid` holds, per colour, the last vertex that ruled it out (n entries). */
#ifndef REVAD_COLOURING_H
#define REVAD_COLOURING_H

#include <stdint.h>

/* colour[v] = -1 on entry. Returns the number of colours. */
static inline int32_t rv_star_colouring(int64_t n, const int64_t *ptr, const int32_t *idx,
                                 const int64_t *order, int32_t *colour, int64_t *forbid,
                                 int32_t *count) {
    int32_t used = 0;
    for (int64_t c = 0; c < n; ++c) { forbid[c] = -1; count[c] = 0; }
    for (int64_t oi = 0; oi < n; ++oi) {
        const int64_t v = order[oi];
        /* its neighbours' colours; count how many neighbours have each */
        for (int64_t a = ptr[v]; a < ptr[v + 1]; ++a) {
            const int64_t w = idx[a];
            if (w == v || colour[w] < 0) continue;
            forbid[colour[w]] = v;
            count[colour[w]] = 0;
        }
        for (int64_t a = ptr[v]; a < ptr[v + 1]; ++a) {
            const int64_t w = idx[a];
            if (w != v && colour[w] >= 0) ++count[colour[w]];
        }
        for (int64_t a = ptr[v]; a < ptr[v + 1]; ++a) {
            const int64_t w = idx[a];
            if (w == v || colour[w] < 0) continue;
            const int32_t cw = colour[w];
            for (int64_t b = ptr[w]; b < ptr[w + 1]; ++b) {
                const int64_t x = idx[b];
                if (x == w || x == v || colour[x] < 0) continue;
                /* w - v - w' - x with colour(w) = colour(w'): v must not take x's colour */
                if (count[cw] >= 2) forbid[colour[x]] = v;
                /* v - w - x - y with colour(y) = colour(w): v must not take x's colour */
                if (forbid[colour[x]] == v) continue;
                for (int64_t d = ptr[x]; d < ptr[x + 1]; ++d) {
                    const int64_t y = idx[d];
                    if (y != x && y != w && colour[y] == cw) { forbid[colour[x]] = v; break; }
                }
            }
        }
        int32_t c = 0;
        while (forbid[c] == v) ++c;
        colour[v] = c;
        if (c + 1 > used) used = c + 1;
    }
    return used;
}

/* Columns of an (m, n) pattern: rows by CSR (rptr, ridx), columns by CSC (cptr, cidx).
 * Returns the number of colours, or -1 as soon as it would exceed `cap` (the caller has a
 * cheaper way). */
static inline int32_t rv_column_colouring(int64_t n, const int64_t *rptr, const int32_t *ridx,
                                   const int64_t *cptr, const int32_t *cidx, const int64_t *order,
                                   int32_t *colour, int64_t *forbid, int64_t cap) {
    int32_t used = 0;
    for (int64_t c = 0; c < n; ++c) forbid[c] = -1;
    for (int64_t oi = 0; oi < n; ++oi) {
        const int64_t j = order[oi];
        for (int64_t a = cptr[j]; a < cptr[j + 1]; ++a) {
            const int64_t r = cidx[a];
            for (int64_t b = rptr[r]; b < rptr[r + 1]; ++b) {
                const int64_t k = ridx[b];
                if (k != j && colour[k] >= 0) forbid[colour[k]] = j;
            }
        }
        int32_t c = 0;
        while (forbid[c] == j) ++c;
        colour[j] = c;
        if (c + 1 > used) used = c + 1;
        if (used > cap) return -1;
    }
    return used;
}

/* The values of a symmetric H at its pattern (CSR, n rows) from HV = H V (n x p, C order), V
 * the indicators of a star colouring: H[i, j] is HV[i, colour j] unless another neighbour of i
 * has j's colour; then (a star colouring) no other neighbour of j has i's colour, and it is
 * HV[j, colour i]. cnt: p ints, zero (and left zero). */
static inline void rv_star_recover(int64_t n, const int64_t *ptr, const int32_t *idx,
                                   const int32_t *colour, int64_t p, const double *HV,
                                   double *vals, int32_t *cnt) {
    for (int64_t i = 0; i < n; ++i) {
        for (int64_t a = ptr[i]; a < ptr[i + 1]; ++a)
            if (idx[a] != i) ++cnt[colour[idx[a]]];
        for (int64_t a = ptr[i]; a < ptr[i + 1]; ++a) {
            const int64_t j = idx[a];
            const int32_t cj = colour[j];
            vals[a] = (j == i || cnt[cj] == 1) ? HV[i * p + cj] : HV[j * p + colour[i]];
        }
        for (int64_t a = ptr[i]; a < ptr[i + 1]; ++a)
            if (idx[a] != i) cnt[colour[idx[a]]] = 0;
    }
}

#endif
