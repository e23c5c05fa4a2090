/* A 64-bit fingerprint of a block of memory: how the tape knows that a large constant array
 * it references (instead of copying) still holds the bytes it held when it was recorded.
 *
 * The forward product hashes a block of the array and then multiplies it while it is in cache;
 * the backward product does the same and compares. So the hash must run at least at memory
 * speed: xxHash64's round needs two 64x64-bit multiplies per word, about 8 GB/s on one core,
 * slower than the memory it reads. This is xxHash's other design (XXH3's accumulate): per
 * 64-bit word w at a position with key k, x = w ^ k adds lo32(x) * hi32(x) to its lane and w
 * itself to the neighbouring lane. A 32x32-bit product is one SIMD instruction for two (SSE2)
 * or four (AVX2) lanes. Every 16 stripes of 64 bytes the lanes are scrambled (xorshift, key,
 * multiply), so that changes in different stripes cannot cancel, and at the end they are merged
 * with xxHash64's merge round and avalanche. It is a checksum against accidents (an in-place
 * update, a sign flip, a swap), not a cryptographic hash.
 *
 * The scalar, SSE2 and AVX2 versions compute the same function; words are read in the host's
 * byte order, so a fingerprint is only compared on the machine that made it. */
#ifndef REVAD_FINGERPRINT_H
#define REVAD_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <emmintrin.h>
#define RV_FP_SSE2 1
#endif
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define RV_FP_AVX2 1
#endif

#define RV_FP_P1 0x9E3779B185EBCA87ULL
#define RV_FP_P2 0xC2B2AE3D27D4EB4FULL
#define RV_FP_P3 0x165667B19E3779F9ULL
#define RV_FP_P4 0x85EBCA77C2B2AE63ULL
#define RV_FP_P5 0x27D4EB2F165667C5ULL
#define RV_FP_P32 0x9E3779B1ULL /* the scramble's multiplier: 32 bits, so SIMD can multiply */
#define RV_FP_STRIPE 64          /* bytes: one 64-bit word per lane */
#define RV_FP_SCRAMBLE 16        /* stripes between scrambles */

/* Keys, the first 40 outputs of splitmix64 from 0x2545F4914F6CDD1D: 8 + 15 for the stripes
 * (stripe s uses 8 from offset s % 16), 8 for the scramble, 8 to start the lanes. */
static const uint64_t rv_fp_key[40] = {
    0xc0e16b163a85a4dcULL, 0x890acd8dd443c47cULL, 0xb3889d8a6dc47761ULL, 0x6a0398e528f0ae6aULL,
    0x048344ece48a855eULL, 0xf175cfea21871330ULL, 0x391ceef02702c2fdULL, 0x4baf8cac4784cb12ULL,
    0x3547744583a3f88eULL, 0xd9cf2b15c6b6c90eULL, 0x961facc76d5fe21cULL, 0x0094ab49d50f11f9ULL,
    0xe3211e37bdbeb6dcULL, 0x62fe6c274ff3511aULL, 0x5ac30b329fdf0574ULL, 0x1450582c6b65b406ULL,
    0x7a30fcc7888eb791ULL, 0x5540f5ba6a15576eULL, 0x16cef0559096d3e9ULL, 0x2cf8f14b06874899ULL,
    0xc9c9263b6e2ce103ULL, 0xd6ff920b0a9faa6dULL, 0x53192697db998dc1ULL, 0x73ea9b9bc7cd18d7ULL,
    0x102713f872c33fceULL, 0xf4183a0e5d2a033eULL, 0x71b63e307eebb517ULL, 0xda61f5713d036000ULL,
    0x46eb7409ae691b21ULL, 0xb23ad691d6707698ULL, 0x67c8fe11d22fc4b9ULL, 0x7eb4661419481338ULL,
    0x98077547fb070efcULL, 0x1ee63336c2e3a9a8ULL, 0xbc353656348c36f6ULL, 0xce3898cbf1bb1bd8ULL,
    0x265b1c23c82915cbULL, 0xfd1948c91687e355ULL, 0xd976893961980ffaULL, 0x336e77a6288e4c34ULL,
};
#define RV_FP_KEY_SCRAMBLE (rv_fp_key + 24)
#define RV_FP_KEY_INIT (rv_fp_key + 32)

static inline uint64_t rv_fp_rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t rv_fp_read64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* xxHash64 (the reference algorithm): for the bytes after the last whole stripe. */
static inline uint64_t rv_xxh64_round(uint64_t acc, uint64_t w) {
    acc += w * RV_FP_P2;
    acc = rv_fp_rotl(acc, 31);
    return acc * RV_FP_P1;
}

static inline uint64_t rv_xxh64_merge(uint64_t h, uint64_t v) {
    h ^= rv_xxh64_round(0, v);
    return h * RV_FP_P1 + RV_FP_P4;
}

static inline uint64_t rv_xxh64_avalanche(uint64_t h) {
    h ^= h >> 33;
    h *= RV_FP_P2;
    h ^= h >> 29;
    h *= RV_FP_P3;
    h ^= h >> 32;
    return h;
}

static uint64_t rv_xxh64(const void *data, size_t len, uint64_t seed) {
    const unsigned char *p = (const unsigned char *)data, *end = p + len;
    uint64_t h;
    if (len >= 32) {
        uint64_t v1 = seed + RV_FP_P1 + RV_FP_P2, v2 = seed + RV_FP_P2, v3 = seed, v4 = seed - RV_FP_P1;
        do {
            v1 = rv_xxh64_round(v1, rv_fp_read64(p));
            v2 = rv_xxh64_round(v2, rv_fp_read64(p + 8));
            v3 = rv_xxh64_round(v3, rv_fp_read64(p + 16));
            v4 = rv_xxh64_round(v4, rv_fp_read64(p + 24));
            p += 32;
        } while (p + 32 <= end);
        h = rv_fp_rotl(v1, 1) + rv_fp_rotl(v2, 7) + rv_fp_rotl(v3, 12) + rv_fp_rotl(v4, 18);
        h = rv_xxh64_merge(h, v1);
        h = rv_xxh64_merge(h, v2);
        h = rv_xxh64_merge(h, v3);
        h = rv_xxh64_merge(h, v4);
    } else {
        h = seed + RV_FP_P5;
    }
    h += (uint64_t)len;
    for (; p + 8 <= end; p += 8) {
        h ^= rv_xxh64_round(0, rv_fp_read64(p));
        h = rv_fp_rotl(h, 27) * RV_FP_P1 + RV_FP_P4;
    }
    if (p + 4 <= end) {
        uint32_t w;
        memcpy(&w, p, 4);
        h ^= (uint64_t)w * RV_FP_P1;
        h = rv_fp_rotl(h, 23) * RV_FP_P2 + RV_FP_P3;
        p += 4;
    }
    for (; p < end; ++p) {
        h ^= (uint64_t)(*p) * RV_FP_P5;
        h = rv_fp_rotl(h, 11) * RV_FP_P1;
    }
    return rv_xxh64_avalanche(h);
}

/* The stripes: acc[8] over n whole stripes from p (stripe 0 of the buffer first). */
static void rv_fp_stripes_scalar(uint64_t *acc, const unsigned char *p, size_t n) {
    for (size_t s = 0; s < n; ++s, p += RV_FP_STRIPE) {
        const uint64_t *k = rv_fp_key + (s % RV_FP_SCRAMBLE);
        uint64_t w[8];
        for (int l = 0; l < 8; ++l) w[l] = rv_fp_read64(p + 8 * l);
        for (int l = 0; l < 8; ++l) {
            const uint64_t x = w[l] ^ k[l];
            acc[l] += w[l ^ 1] + (x & 0xffffffffULL) * (x >> 32);
        }
        if (s % RV_FP_SCRAMBLE == RV_FP_SCRAMBLE - 1) {
            for (int l = 0; l < 8; ++l) {
                uint64_t a = acc[l];
                a ^= a >> 47;
                a ^= RV_FP_KEY_SCRAMBLE[l];
                acc[l] = a * RV_FP_P32;
            }
        }
    }
}

#ifdef RV_FP_SSE2
static void rv_fp_stripes_sse2(uint64_t *acc, const unsigned char *p, size_t n) {
    __m128i a[4];
    const __m128i m = _mm_set1_epi64x((long long)RV_FP_P32);
    for (int j = 0; j < 4; ++j) a[j] = _mm_loadu_si128((const __m128i *)(acc + 2 * j));
    for (size_t s = 0; s < n; ++s, p += RV_FP_STRIPE) {
        const uint64_t *k = rv_fp_key + (s % RV_FP_SCRAMBLE);
        for (int j = 0; j < 4; ++j) {
            const __m128i w = _mm_loadu_si128((const __m128i *)(p + 16 * j));
            const __m128i x = _mm_xor_si128(w, _mm_loadu_si128((const __m128i *)(k + 2 * j)));
            const __m128i prod = _mm_mul_epu32(x, _mm_srli_epi64(x, 32));
            a[j] = _mm_add_epi64(a[j], _mm_add_epi64(_mm_shuffle_epi32(w, 0x4E), prod));
        }
        if (s % RV_FP_SCRAMBLE == RV_FP_SCRAMBLE - 1) {
            for (int j = 0; j < 4; ++j) {
                __m128i v = _mm_xor_si128(a[j], _mm_srli_epi64(a[j], 47));
                v = _mm_xor_si128(v, _mm_loadu_si128((const __m128i *)(RV_FP_KEY_SCRAMBLE + 2 * j)));
                const __m128i lo = _mm_mul_epu32(v, m);
                const __m128i hi = _mm_mul_epu32(_mm_srli_epi64(v, 32), m);
                a[j] = _mm_add_epi64(lo, _mm_slli_epi64(hi, 32));
            }
        }
    }
    for (int j = 0; j < 4; ++j) _mm_storeu_si128((__m128i *)(acc + 2 * j), a[j]);
}
#endif

#ifdef RV_FP_AVX2
/* One stripe's half (four lanes, w the data, k its keys) into a, and the scramble of four
 * lanes: the AVX2 steps, written once for rv_fp_stripes_avx2 and rv_fp_matvec_avx2. */
__attribute__((target("avx2")))
static inline __m256i rv_fp_stripe_avx2(__m256i a, __m256i w, const uint64_t *k) {
    const __m256i x = _mm256_xor_si256(w, _mm256_loadu_si256((const __m256i *)k));
    const __m256i prod = _mm256_mul_epu32(x, _mm256_srli_epi64(x, 32));
    return _mm256_add_epi64(a, _mm256_add_epi64(_mm256_shuffle_epi32(w, 0x4E), prod));
}
__attribute__((target("avx2")))
static inline __m256i rv_fp_scramble_avx2(__m256i a, const uint64_t *k) {
    const __m256i m = _mm256_set1_epi64x((long long)RV_FP_P32);
    __m256i v = _mm256_xor_si256(a, _mm256_srli_epi64(a, 47));
    v = _mm256_xor_si256(v, _mm256_loadu_si256((const __m256i *)k));
    const __m256i lo = _mm256_mul_epu32(v, m);
    const __m256i hi = _mm256_mul_epu32(_mm256_srli_epi64(v, 32), m);
    return _mm256_add_epi64(lo, _mm256_slli_epi64(hi, 32));
}
__attribute__((target("avx2")))
static void rv_fp_stripes_avx2(uint64_t *acc, const unsigned char *p, size_t n) {
    __m256i a[2];
    for (int j = 0; j < 2; ++j) a[j] = _mm256_loadu_si256((const __m256i *)(acc + 4 * j));
    for (size_t s = 0; s < n; ++s, p += RV_FP_STRIPE) {
        const uint64_t *k = rv_fp_key + (s % RV_FP_SCRAMBLE);
        for (int j = 0; j < 2; ++j)
            a[j] = rv_fp_stripe_avx2(a[j], _mm256_loadu_si256((const __m256i *)(p + 32 * j)), k + 4 * j);
        if (s % RV_FP_SCRAMBLE == RV_FP_SCRAMBLE - 1)
            for (int j = 0; j < 2; ++j) a[j] = rv_fp_scramble_avx2(a[j], RV_FP_KEY_SCRAMBLE + 4 * j);
    }
    for (int j = 0; j < 2; ++j) _mm256_storeu_si256((__m256i *)(acc + 4 * j), a[j]);
}
#endif

typedef void (*rv_fp_stripes_fn)(uint64_t *, const unsigned char *, size_t);

/* The fastest version this CPU runs (decided once). `force` (tests): 1 scalar, 2 SSE2, 3 AVX2. */
static rv_fp_stripes_fn rv_fp_stripes_impl(int force) {
    if (force == 1) return rv_fp_stripes_scalar;
#ifdef RV_FP_SSE2
    if (force == 2) return rv_fp_stripes_sse2;
#endif
#ifdef RV_FP_AVX2
    if (force == 3) return __builtin_cpu_supports("avx2") ? rv_fp_stripes_avx2 : NULL;
    if (force == 0 && __builtin_cpu_supports("avx2")) return rv_fp_stripes_avx2;
#endif
    if (force > 1) return NULL;
#ifdef RV_FP_SSE2
    return rv_fp_stripes_sse2;
#else
    return rv_fp_stripes_scalar;
#endif
}

/* A fingerprint's lanes before its first stripe, and its value from the lanes after its last
 * and the bytes after the last whole stripe (the tail, hashed by xxHash64). */
static inline void rv_fp_start(uint64_t *acc, uint64_t seed) {
    for (int l = 0; l < 8; ++l) acc[l] = RV_FP_KEY_INIT[l] ^ (seed * RV_FP_P1);
}
static inline uint64_t rv_fp_finish(const uint64_t *acc, const unsigned char *tail, size_t len,
                                    uint64_t seed) {
    uint64_t h = seed ^ ((uint64_t)len * RV_FP_P1);
    for (int l = 0; l < 8; ++l) h = rv_xxh64_merge(h, acc[l]);
    h = rv_xxh64_merge(h, rv_xxh64(tail, len % RV_FP_STRIPE, seed));
    return rv_xxh64_avalanche(h);
}

static uint64_t rv_fingerprint_with(rv_fp_stripes_fn stripes, const void *data, size_t len,
                                    uint64_t seed) {
    const unsigned char *p = (const unsigned char *)data;
    const size_t n = len / RV_FP_STRIPE;
    uint64_t acc[8];
    rv_fp_start(acc, seed);
    stripes(acc, p, n);
    return rv_fp_finish(acc, p + n * RV_FP_STRIPE, len, seed);
}

static rv_fp_stripes_fn rv_fp_best = NULL;

/* The fingerprint of len bytes at data; seed: e.g. the block's index. */
static uint64_t rv_fingerprint(const void *data, size_t len, uint64_t seed) {
    if (rv_fp_best == NULL) rv_fp_best = rv_fp_stripes_impl(0); /* idempotent: a race is harmless */
    return rv_fingerprint_with(rv_fp_best, data, len, seed);
}

/* The fingerprint of a block of rows (nrows of rowbytes each, contiguous): its first nrows / 2
 * rows and the rest are fingerprinted apart (the second half's seed altered) and merged, so
 * that the fused product below can read the two halves side by side. */
#define RV_FP_SEED2 0x6A09E667F3BCC909ULL
static inline uint64_t rv_fp_merge2(uint64_t a, uint64_t b) {
    return rv_xxh64_avalanche(rv_xxh64_merge(a, b));
}
static uint64_t rv_fp_rows(const void *data, int64_t nrows, size_t rowbytes, uint64_t seed) {
    const size_t split = (size_t)(nrows / 2) * rowbytes;
    return rv_fp_merge2(rv_fingerprint(data, split, seed),
                        rv_fingerprint((const unsigned char *)data + split,
                                       (size_t)nrows * rowbytes - split, seed ^ RV_FP_SEED2));
}

/* A matrix-vector product that fingerprints the matrix as it reads it. A product with a thin
 * operand streams the matrix from memory doing little arithmetic, and hashing the block again
 * afterwards, even from cache, costs as much again; here each 64-byte stripe is loaded once and
 * goes both into the product and into the hash, whose arithmetic then hides in the time the
 * memory takes. Row i and row i + nrows / 2 are read side by side: two streams from memory keep
 * more loads in flight than one (OpenBLAS's gemv reads four rows at once). For a block of rows of
 * C-order M (ncols doubles each, ncols % 8 == 0, so that each row is whole stripes):
 *   dot  (axpy == 0): y[i] = M[i, :] . v
 *   axpy (axpy == 1): y[:] += v[i] * M[i, :]   (rows i and i + nrows / 2 added together)
 * and it returns rv_fp_rows(M, nrows, ncols * 8, seed), bit for bit. Only with AVX2 and FMA
 * (rv_fp_fused_available); the caller otherwise multiplies and hashes apart. */
#ifndef RV_FP_AHEAD
#define RV_FP_AHEAD 1024
#endif
#ifdef RV_FP_AVX2
/* One stripe of one stream into its two lane halves (a[0], a[1]); s: the stream's stripe. */
__attribute__((target("avx2")))
static inline void rv_fp_stream_avx2(__m256i *a, __m256d w0, __m256d w1, size_t s) {
    const uint64_t *k = rv_fp_key + (s % RV_FP_SCRAMBLE);
    a[0] = rv_fp_stripe_avx2(a[0], _mm256_castpd_si256(w0), k);
    a[1] = rv_fp_stripe_avx2(a[1], _mm256_castpd_si256(w1), k + 4);
    if (s % RV_FP_SCRAMBLE == RV_FP_SCRAMBLE - 1) {
        a[0] = rv_fp_scramble_avx2(a[0], RV_FP_KEY_SCRAMBLE);
        a[1] = rv_fp_scramble_avx2(a[1], RV_FP_KEY_SCRAMBLE + 4);
    }
}
__attribute__((target("avx2")))
static inline uint64_t rv_fp_stream_finish(const __m256i *a, const double *start, size_t len,
                                           uint64_t seed) {
    uint64_t acc[8];
    _mm256_storeu_si256((__m256i *)acc, a[0]);
    _mm256_storeu_si256((__m256i *)(acc + 4), a[1]);
    return rv_fp_finish(acc, (const unsigned char *)start + len, len, seed);  /* no tail */
}
__attribute__((target("avx2")))
static inline void rv_fp_stream_start(__m256i *a, uint64_t seed) {
    uint64_t acc[8];
    rv_fp_start(acc, seed);
    a[0] = _mm256_loadu_si256((const __m256i *)acc);
    a[1] = _mm256_loadu_si256((const __m256i *)(acc + 4));
}
__attribute__((target("avx2")))
static inline double rv_fp_hsum(__m256d d0, __m256d d1) {
    double part[4];
    _mm256_storeu_pd(part, _mm256_add_pd(d0, d1));
    return (part[0] + part[1]) + (part[2] + part[3]);
}
__attribute__((target("avx2,fma")))
static uint64_t rv_fp_matvec_avx2(const double *M, int64_t nrows, int64_t ncols, const double *v,
                                  double *y, int axpy, uint64_t seed) {
    const int64_t h = nrows / 2;
    const double *B = M + h * ncols;  /* the second stream: rows h, h + 1, ... */
    __m256i a[2], b[2];
    rv_fp_stream_start(a, seed);
    rv_fp_stream_start(b, seed ^ RV_FP_SEED2);
    size_t s = 0, t = 0;  /* each stream's stripe */
    for (int64_t i = 0; i < h; ++i) {
        const double *ra = M + i * ncols, *rb = B + i * ncols;
        __m256d da0 = _mm256_setzero_pd(), da1 = da0, db0 = da0, db1 = da0;
        const __m256d ga = _mm256_set1_pd(axpy ? v[i] : 0.0), gb = _mm256_set1_pd(axpy ? v[h + i] : 0.0);
        for (int64_t c = 0; c < ncols; c += 8, ++s) {
            _mm_prefetch((const char *)(ra + c) + RV_FP_AHEAD, _MM_HINT_T0);
            _mm_prefetch((const char *)(rb + c) + RV_FP_AHEAD, _MM_HINT_T0);
            const __m256d a0 = _mm256_loadu_pd(ra + c), a1 = _mm256_loadu_pd(ra + c + 4);
            const __m256d b0 = _mm256_loadu_pd(rb + c), b1 = _mm256_loadu_pd(rb + c + 4);
            if (axpy) {
                _mm256_storeu_pd(y + c, _mm256_fmadd_pd(gb, b0, _mm256_fmadd_pd(ga, a0, _mm256_loadu_pd(y + c))));
                _mm256_storeu_pd(y + c + 4, _mm256_fmadd_pd(gb, b1, _mm256_fmadd_pd(ga, a1, _mm256_loadu_pd(y + c + 4))));
            } else {
                const __m256d v0 = _mm256_loadu_pd(v + c), v1 = _mm256_loadu_pd(v + c + 4);
                da0 = _mm256_fmadd_pd(a0, v0, da0);
                da1 = _mm256_fmadd_pd(a1, v1, da1);
                db0 = _mm256_fmadd_pd(b0, v0, db0);
                db1 = _mm256_fmadd_pd(b1, v1, db1);
            }
            rv_fp_stream_avx2(a, a0, a1, s);
            rv_fp_stream_avx2(b, b0, b1, s);
        }
        if (!axpy) {
            y[i] = rv_fp_hsum(da0, da1);
            y[h + i] = rv_fp_hsum(db0, db1);
        }
    }
    t = s;
    if (nrows % 2) {  /* the second stream's last row */
        const double *rb = B + h * ncols;
        __m256d db0 = _mm256_setzero_pd(), db1 = db0;
        const __m256d gb = _mm256_set1_pd(axpy ? v[nrows - 1] : 0.0);
        for (int64_t c = 0; c < ncols; c += 8, ++t) {
            const __m256d b0 = _mm256_loadu_pd(rb + c), b1 = _mm256_loadu_pd(rb + c + 4);
            if (axpy) {
                _mm256_storeu_pd(y + c, _mm256_fmadd_pd(gb, b0, _mm256_loadu_pd(y + c)));
                _mm256_storeu_pd(y + c + 4, _mm256_fmadd_pd(gb, b1, _mm256_loadu_pd(y + c + 4)));
            } else {
                db0 = _mm256_fmadd_pd(b0, _mm256_loadu_pd(v + c), db0);
                db1 = _mm256_fmadd_pd(b1, _mm256_loadu_pd(v + c + 4), db1);
            }
            rv_fp_stream_avx2(b, b0, b1, t);
        }
        if (!axpy) y[nrows - 1] = rv_fp_hsum(db0, db1);
    }
    const size_t rowbytes = (size_t)ncols * sizeof(double);
    return rv_fp_merge2(rv_fp_stream_finish(a, M, (size_t)h * rowbytes, seed),
                        rv_fp_stream_finish(b, B, (size_t)(nrows - h) * rowbytes, seed ^ RV_FP_SEED2));
}
#endif

static int rv_fp_fused_available(void) {
#ifdef RV_FP_AVX2
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

static uint64_t rv_fp_matvec(const double *M, int64_t nrows, int64_t ncols, const double *v,
                             double *y, int axpy, uint64_t seed) {
#ifdef RV_FP_AVX2
    return rv_fp_matvec_avx2(M, nrows, ncols, v, y, axpy, seed);
#else
    (void)M; (void)nrows; (void)ncols; (void)v; (void)y; (void)axpy; (void)seed;
    return 0;
#endif
}

#endif /* REVAD_FINGERPRINT_H */
