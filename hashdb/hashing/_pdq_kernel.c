/* PDQ's numeric core in C: luma, Jarosz box passes, 64x64 decimation, DCT and quality.
 *
 * Bit-exact with Meta's C++ (pdqhashing.cpp, downscaling.cpp): every float32 operation
 * happens in the same order with the same rounding. What differs is the walk: each box pass
 * runs across many independent rows or columns at once (the C++ walks them one after
 * another), so the compiler can put them in SIMD lanes and no add waits for the one before.
 * Build with -ffp-contract=off: a fused multiply-add rounds once where the C++ rounds twice.
 *
 * Layout: every pass is a "vertical" pass along axis 0 of a row-major array whose lanes
 * (the columns) are contiguous. A pass along rows transposes a slab of rows into a small
 * buffer first. The second pass of each round feeds the third a slab at a time, so its
 * output never exists as a whole image.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#include <xmmintrin.h>
#endif

/* The hot loops are compiled twice on x86-64 Linux (GCC): for AVX2 and for the baseline, and
 * the loader picks one per machine. Either gives the same bits (no FMA, IEEE operations). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define HOT __attribute__((target_clones("avx2", "default")))
#else
#define HOT
#endif
/* Inlined into each HOT caller, so that they are compiled for its target too (a call out of
 * the AVX2 clone to a separate function runs that function's baseline code). */
#if defined(__GNUC__)
#define INLINE static inline __attribute__((always_inline))
#else
#define INLINE static inline
#endif

#define SIDE 64
#define SLAB 32 /* rows transposed at a time for a pass along rows */

/* ---- one box pass along axis 0, one output at a time ---------------------------------- */

typedef struct {
    const float *in;   /* row 0 of the input */
    ptrdiff_t stride;  /* floats between input rows; negative walks the rows backwards */
    int n;             /* steps (input rows) */
    int lanes;
    int lead;          /* adds before the first output: (window + 2) / 2 - 1 */
    int trail;         /* outputs before the first subtract: window - lead */
    int next;          /* the next output's index */
    float *sum;        /* lanes running sums */
} box_t;

INLINE void box_init(box_t *b, const float *in, ptrdiff_t stride, int n, int lanes, int window, float *sum) {
    b->in = in;
    b->stride = stride;
    b->n = n;
    b->lanes = lanes;
    b->lead = (window + 2) / 2 - 1;
    b->trail = window - b->lead;
    b->next = 0;
    b->sum = sum;
    memset(sum, 0, sizeof(float) * (size_t)lanes);
    /* box1DFloat phase 1: adds, no writes. */
    for (int i = 0; i < b->lead && i < n; i++) {
        const float *restrict a = in + stride * i;
        float *restrict s = sum;
        for (int j = 0; j < lanes; j++) s[j] += a[j];
    }
}

/* Output b->next: add in[next + lead] (if inside), then subtract in[next - trail] (if >= 0),
 * then divide by the count. `out` NULL skips the divide (a sampled pass not keeping it).
 *
 * The divide t / count is done as float(double(t) * (1.0 / count)), a multiply instead of a
 * float divide, and it gives the same float for every t: the double product is within
 * 2**-52 (relative) of t / count, and t / count (t a float, count an integer) is never a
 * midpoint between two floats and lies at least 2**-25 / count (relative) from every one, so
 * both round to the same float for any count below 2**27 (windows are at most 2**13 here).
 * The tests compare every DCT float of the 8 variants with pdqhash's. */
INLINE void box_step(box_t *b, float *restrict out) {
    const int k = b->next++;
    const int add = k + b->lead, sub = k - b->trail;
    const int lanes = b->lanes;
    float *restrict s = b->sum;
    const float *restrict a = add < b->n ? b->in + b->stride * add : NULL;
    const float *restrict d = sub >= 0 ? b->in + b->stride * sub : NULL;
    const int adds = (add < b->n ? add + 1 : b->n), subs = (sub >= 0 ? sub + 1 : 0);
    const double inv = 1.0 / (double)(adds - subs);
    if (a && d) {
        if (out) {
            for (int j = 0; j < lanes; j++) { float t = s[j] + a[j]; t = t - d[j]; s[j] = t; out[j] = (float)((double)t * inv); }
        } else {
            for (int j = 0; j < lanes; j++) { float t = s[j] + a[j]; s[j] = t - d[j]; }
        }
    } else if (a) {
        if (out) {
            for (int j = 0; j < lanes; j++) { float t = s[j] + a[j]; s[j] = t; out[j] = (float)((double)t * inv); }
        } else {
            for (int j = 0; j < lanes; j++) s[j] += a[j];
        }
    } else if (d) {
        if (out) {
            for (int j = 0; j < lanes; j++) { float t = s[j] - d[j]; s[j] = t; out[j] = (float)((double)t * inv); }
        } else {
            for (int j = 0; j < lanes; j++) s[j] -= d[j];
        }
    } else if (out) {
        for (int j = 0; j < lanes; j++) out[j] = (float)((double)s[j] * inv);
    }
}

/* ---- helpers ---------------------------------------------------------------------------- */

static int window_for(int n) { return (n + 2 * SIDE - 1) / (2 * SIDE); }

static void decimation(int n, int keep[SIDE]) {
    for (int i = 0; i < SIDE; i++) keep[i] = (int)(((i + 0.5) * n) / SIDE);
}

/* out (cols x rows, row stride out_stride) = transpose of in (rows x cols, row stride in_stride).
 * Transposes were 40 % of a dihedral hash as scalar loops: 4 x 4 blocks go through SSE
 * registers where the target has them (every x86-64 does), the edges one value at a time. */
INLINE void transpose(const float *restrict in, ptrdiff_t in_stride, int rows, int cols,
                      float *restrict out, ptrdiff_t out_stride) {
    int r0 = 0;
#ifdef __SSE2__
    for (; r0 + 4 <= rows; r0 += 4) {
        const float *i0 = in + r0 * in_stride;
        int c = 0;
        for (; c + 4 <= cols; c += 4) {
            __m128 a = _mm_loadu_ps(i0 + c), b = _mm_loadu_ps(i0 + in_stride + c);
            __m128 d = _mm_loadu_ps(i0 + 2 * in_stride + c), e = _mm_loadu_ps(i0 + 3 * in_stride + c);
            _MM_TRANSPOSE4_PS(a, b, d, e);
            float *o = out + c * out_stride + r0;
            _mm_storeu_ps(o, a);
            _mm_storeu_ps(o + out_stride, b);
            _mm_storeu_ps(o + 2 * out_stride, d);
            _mm_storeu_ps(o + 3 * out_stride, e);
        }
        for (; c < cols; c++)
            for (int r = r0; r < r0 + 4; r++) out[c * out_stride + r] = in[r * in_stride + c];
    }
#endif
    for (int r = r0; r < rows; r++)
        for (int c = 0; c < cols; c++) out[c * out_stride + r] = in[r * in_stride + c];
}

/* ---- the passes ------------------------------------------------------------------------- */

/* A full box pass along each row of x (n x m), into out_fwd and (if not NULL) out_rev: the
 * same pass run right to left, written in the reversed frame (column j of out_rev is the
 * output at step j from the right). buf and obuf hold m x SLAB floats each. With
 * x_transposed, the array given is x's transpose (m x n), whose slabs need no transposing. */
HOT static void rows_pass(const float *x, ptrdiff_t x_stride, int x_transposed, int n, int m, int window, float *out_fwd,
                      float *out_rev, ptrdiff_t out_stride, float *buf, float *obuf, float *sum) {
    for (int r0 = 0; r0 < n; r0 += SLAB) {
        const int sl = r0 + SLAB < n ? SLAB : n - r0;
        if (x_transposed) {
            for (int k = 0; k < m; k++) memcpy(buf + (ptrdiff_t)k * SLAB, x + (ptrdiff_t)k * x_stride + r0, sizeof(float) * (size_t)sl);
        } else {
            transpose(x + (ptrdiff_t)r0 * x_stride, x_stride, sl, m, buf, SLAB);
        }
        for (int dir = 0; dir < 2; dir++) {
            float *out = dir ? out_rev : out_fwd;
            if (!out) continue;
            box_t b;
            if (dir) box_init(&b, buf + (ptrdiff_t)(m - 1) * SLAB, -SLAB, m, sl, window, sum);
            else box_init(&b, buf, SLAB, m, sl, window, sum);
            for (int k = 0; k < m; k++) box_step(&b, obuf + (ptrdiff_t)k * SLAB);
            transpose(obuf, SLAB, m, sl, out + (ptrdiff_t)r0 * out_stride, out_stride);
        }
    }
}

/* Passes 2, 3 and 4 of the filter, then decimation, for one orientation of pass 1's output
 * p1 (n x m, already in the column frame wanted): pass 2 along columns (rows walked
 * backwards when flip_rows), a slab of its rows at a time into pass 3 along rows (the kc
 * outputs listed in keep_cols kept), then pass 4 down those kc columns (the kr outputs in
 * keep_rows kept). Both lists ascending, at most KEEP_MAX long. image: kr x kc; p3: n x kc. */
#define KEEP_MAX (2 * SIDE)
HOT static void finish(const float *p1, ptrdiff_t p_stride, int n, int m, int flip_rows, float *image,
                   float *slab, float *buf, float *p3, float *sum, float *sum2,
                   const int *keep_cols, int kc, const int *keep_rows, int kr) {
    const int win_rows = window_for(m), win_cols = window_for(n);
    box_t pass2;
    if (flip_rows) box_init(&pass2, p1 + (ptrdiff_t)(n - 1) * p_stride, -p_stride, n, m, win_cols, sum);
    else box_init(&pass2, p1, p_stride, n, m, win_cols, sum);
    for (int r0 = 0; r0 < n; r0 += SLAB) {
        const int sl = r0 + SLAB < n ? SLAB : n - r0;
        for (int r = 0; r < sl; r++) box_step(&pass2, slab + (ptrdiff_t)r * m);
        /* Pass 3 on these sl rows: transposed so that the rows are lanes. */
        transpose(slab, m, sl, m, buf, SLAB);
        box_t pass3;
        float kept[KEEP_MAX][SLAB];
        box_init(&pass3, buf, SLAB, m, sl, win_rows, sum2);
        int q = 0;
        for (int k = 0; k < m; k++) {
            if (q < kc && keep_cols[q] == k) {
                box_step(&pass3, kept[q]);
                q++;
                while (q < kc && keep_cols[q] == k) { memcpy(kept[q], kept[q - 1], sizeof(float) * sl); q++; }
            } else {
                box_step(&pass3, NULL);
            }
            if (q == kc) break; /* nothing after the last kept output is read */
        }
        for (int c = 0; c < kc; c++)
            for (int r = 0; r < sl; r++) p3[(ptrdiff_t)(r0 + r) * kc + c] = kept[c][r];
    }
    /* Pass 4: along the n rows of p3 (n x kc), kc lanes, keep kr. */
    box_t pass4;
    box_init(&pass4, p3, kc, n, kc, win_cols, sum2);
    int q = 0;
    for (int k = 0; k < n && q < kr; k++) {
        if (keep_rows[q] == k) {
            box_step(&pass4, image + (ptrdiff_t)q * kc);
            q++;
            while (q < kr && keep_rows[q] == k) { memcpy(image + (ptrdiff_t)q * kc, image + (ptrdiff_t)(q - 1) * kc, sizeof(float) * kc); q++; }
        } else {
            box_step(&pass4, NULL);
        }
    }
}

/* dct64To16 (B = D A D^T, each sum in k order from 0) and pdqImageDomainQualityMetric.
 * Each sum grows one k at a time in a SIMD lane of its own: the 64 sums of a row of D A (then
 * the 16 of a row of B) are held in registers (GCC's vector types; two SSE registers for
 * each where AVX is missing) while k runs, so every sum gets the same adds in the same order
 * as one sum at a time, which the compiler cannot vectorise itself without reordering adds.
 * A third of the time: the DCT was about a quarter of a 256-pixel region's PDQ. */
#if defined(__GNUC__)
typedef float f32x8 __attribute__((vector_size(32)));
/* A statement, not a function returning a vector: the baseline clone has no AVX registers to
 * return one in (GCC warns of the ABI change). */
#define LOAD8(v, p) memcpy(&(v), (p), sizeof(f32x8))
#endif
HOT static int dct_and_quality(const float *image, const float *dct_matrix, float *out) {
    float t[16][SIDE];
#if defined(__GNUC__)
    for (int i = 0; i < 16; i++) {
        f32x8 acc[8] = {{0}};
        for (int k = 0; k < SIDE; k++) {
            const float d = dct_matrix[i * SIDE + k];
            const f32x8 dv = {d, d, d, d, d, d, d, d};
            for (int b = 0; b < 8; b++) {
                f32x8 a;
                LOAD8(a, image + k * SIDE + 8 * b);
                acc[b] += dv * a;
            }
        }
        memcpy(t[i], acc, sizeof acc);
    }
    float dt[SIDE][16]; /* dt[k][j] = D[j][k] */
    for (int k = 0; k < SIDE; k++)
        for (int j = 0; j < 16; j++) dt[k][j] = dct_matrix[j * SIDE + k];
    for (int i = 0; i < 16; i++) {
        f32x8 acc[2] = {{0}};
        for (int k = 0; k < SIDE; k++) {
            const float v = t[i][k];
            const f32x8 tv = {v, v, v, v, v, v, v, v};
            f32x8 lo, hi;
            LOAD8(lo, dt[k]);
            LOAD8(hi, dt[k] + 8);
            acc[0] += tv * lo;
            acc[1] += tv * hi;
        }
        memcpy(out + i * 16, acc, sizeof acc);
    }
#else
    for (int i = 0; i < 16; i++) {
        for (int j = 0; j < SIDE; j++) {
            float s = 0.0f;
            for (int k = 0; k < SIDE; k++) s += dct_matrix[i * SIDE + k] * image[k * SIDE + j];
            t[i][j] = s;
        }
    }
    for (int i = 0; i < 16; i++) {
        for (int j = 0; j < 16; j++) {
            float s = 0.0f;
            for (int k = 0; k < SIDE; k++) s += t[i][k] * dct_matrix[j * SIDE + k];
            out[i * 16 + j] = s;
        }
    }
#endif
    /* Each |d| is at most 100 (luma is 0..255), so the total fits in 32 bits, and 32-bit sums
     * vectorise eight to a register where 64-bit ones did not. */
    int32_t total = 0;
    for (int i = 0; i < SIDE - 1; i++)
        for (int j = 0; j < SIDE; j++) {
            int d = (int)(((image[i * SIDE + j] - image[(i + 1) * SIDE + j]) * 100.0f) / 255.0f);
            total += d < 0 ? -d : d;
        }
    for (int i = 0; i < SIDE; i++)
        for (int j = 0; j < SIDE - 1; j++) {
            int d = (int)(((image[i * SIDE + j] - image[i * SIDE + j + 1]) * 100.0f) / 255.0f);
            total += d < 0 ? -d : d;
        }
    const int32_t q = total / 90;
    return q > 100 ? 100 : q;
}

#if defined(__GNUC__)
typedef uint8_t u8x16 __attribute__((vector_size(16)));
typedef int32_t i32x4 __attribute__((vector_size(16)));
/* Channel ch of 16 packed RGB pixels (48 bytes in v0, v1, v2): bytes 3i + ch. The first
 * shuffle takes those in v0 and v1 (indices < 32), the second the rest from v2. */
#define G3(ch, i) ((3 * (i) + (ch)) < 32 ? (3 * (i) + (ch)) : 0)
#define R3(ch, i) ((3 * (i) + (ch)) < 32 ? (i) : 16 + (3 * (i) + (ch)) - 32)
#define CHANNEL(F, ch) {F(ch, 0), F(ch, 1), F(ch, 2), F(ch, 3), F(ch, 4), F(ch, 5), F(ch, 6), F(ch, 7), \
                        F(ch, 8), F(ch, 9), F(ch, 10), F(ch, 11), F(ch, 12), F(ch, 13), F(ch, 14), F(ch, 15)}
static const u8x16 ZERO16 = {0};
#ifndef __SSE2__
static const u8x16 GATHER_FIRST[3] = {CHANNEL(G3, 0), CHANNEL(G3, 1), CHANNEL(G3, 2)};
static const u8x16 GATHER_REST[3] = {CHANNEL(R3, 0), CHANNEL(R3, 1), CHANNEL(R3, 2)};
static const int32_t LUMA_WEIGHTS[3] = {299, 587, 114};
#define WIDEN_Q(q) {4 * (q), 16, 16, 16, 4 * (q) + 1, 16, 16, 16, 4 * (q) + 2, 16, 16, 16, 4 * (q) + 3, 16, 16, 16}
static const u8x16 WIDEN[4] = {WIDEN_Q(0), WIDEN_Q(1), WIDEN_Q(2), WIDEN_Q(3)};
#else
typedef int16_t i16x8 __attribute__((vector_size(16)));
/* Bytes of 4 packed RGB pixels as 16-bit pairs (indices 16 and up read ZERO16's zeros). */
static const u8x16 PAIR_RG = {0, 16, 1, 16, 3, 16, 4, 16, 6, 16, 7, 16, 9, 16, 10, 16};
static const u8x16 PAIR_B = {2, 16, 16, 16, 5, 16, 16, 16, 8, 16, 16, 16, 11, 16, 16, 16};
static const i16x8 WEIGHTS_RG = {299, 587, 299, 587, 299, 587, 299, 587};
static const i16x8 WEIGHTS_B = {114, 0, 114, 0, 114, 0, 114, 0};
/* Pillow's grey (L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16) as two pmaddwd pairs. */
static const u8x16 PAIR_GB = {1, 16, 2, 16, 4, 16, 5, 16, 7, 16, 8, 16, 10, 16, 11, 16};
static const i16x8 GREY_RG = {19595, 19235, 19595, 19235, 19595, 19235, 19595, 19235};
static const i16x8 GREY_GB = {19235, 7471, 19235, 7471, 19235, 7471, 19235, 7471};

/* Four packed RGB pixels (16 bytes from `src`: 4 read past them) as two 16-bit pairs each,
 * laid out by `first` and `second`, weighted and summed by pmaddwd: each pixel's 32-bit
 * weighted sum of its channels, the step PDQ's luma and pHash's grey share. */
static inline __m128i weighted_channels(const uint8_t *src, u8x16 first, i16x8 first_weights,
                                        u8x16 second, i16x8 second_weights) {
    u8x16 v;
    memcpy(&v, src, 16);
    const __m128i a = (__m128i)__builtin_shuffle(v, ZERO16, first);
    const __m128i b = (__m128i)__builtin_shuffle(v, ZERO16, second);
    return _mm_add_epi32(_mm_madd_epi16(a, (__m128i)first_weights), _mm_madd_epi16(b, (__m128i)second_weights));
}
#endif
#endif

/* Luma of uint8 RGB: float32(299 R + 587 G + 114 B) / 1000, correctly rounded, which equals
 * the C++'s float(0.299 R + 0.587 G + 0.114 B) in double (see pdq_core.py). */
HOT static void luma(const uint8_t *rgb, ptrdiff_t row_bytes, int pixel_bytes, int n, int m, float *out, ptrdiff_t stride) {
    /* The integer sum is exact and below 2**24, so its float is exact too, and the divide is
     * IEEE float division, vectorised or not. Where SSE2 is missing, or for the row's last
     * pixels, two loops: the integer sums (stride-3 loads), then convert and divide, which
     * the compiler vectorises once the divide is not tangled with the byte loads. */
    int32_t *k = malloc(sizeof(int32_t) * (size_t)m);
    for (int r = 0; r < n; r++) {
        const uint8_t *restrict p = rgb + row_bytes * r;
        float *restrict o = out + (ptrdiff_t)r * stride;
        if (!k) {
            for (int c = 0; c < m; c++) {
                const uint8_t *q = p + (ptrdiff_t)c * pixel_bytes;
                o[c] = (float)(299 * q[0] + 587 * q[1] + 114 * q[2]) / 1000.0f;
            }
            continue;
        }
        int done = 0; /* pixels whose luma the vector loop wrote */
        if (pixel_bytes == 3) {
            int c = 0;
#if defined(__GNUC__) && defined(__SSE2__)
            /* 4 pixels a step: one 16-byte load holds their 12 bytes; one shuffle lays out
             * (R, G) and one (B, 0) as 16-bit pairs, and pmaddwd multiplies and adds each
             * pair into 32 bits: 299 R + 587 G, then 114 B; converted and divided in place.
             * Half the instructions of the gather below (no 32-bit multiplies), and luma was a
             * third of a 512-pixel PDQ. Each load reads 4 bytes past its pixels, so the loop
             * stops while 2 pixels of the row are left (the scalar loops end it). */
            for (; c + 18 <= m; c += 16) {
                for (int q = 0; q < 4; q++) {
                    const __m128i sum = weighted_channels(p + 3 * c + 12 * q, PAIR_RG, WEIGHTS_RG, PAIR_B, WEIGHTS_B);
                    _mm_storeu_ps(o + c + 4 * q, _mm_div_ps(_mm_cvtepi32_ps(sum), _mm_set1_ps(1000.0f)));
                }
            }
            done = c;
#elif defined(__GNUC__)
            /* 16 pixels at a time: two shuffles gather each channel out of 48 bytes. */
            for (; c + 16 <= m; c += 16) {
                u8x16 v0, v1, v2;
                memcpy(&v0, p + 3 * c, 16);
                memcpy(&v1, p + 3 * c + 16, 16);
                memcpy(&v2, p + 3 * c + 32, 16);
                i32x4 sum[4] = {{0}};
                for (int ch = 0; ch < 3; ch++) {
                    const u8x16 first = __builtin_shuffle(v0, v1, GATHER_FIRST[ch]);
                    const u8x16 all = __builtin_shuffle(first, v2, GATHER_REST[ch]);
                    /* Widen to int32 by shuffling zero bytes in: pixels 4q..4q+3. */
                    for (int q = 0; q < 4; q++)
                        sum[q] += LUMA_WEIGHTS[ch] * (i32x4)__builtin_shuffle(all, ZERO16, WIDEN[q]);
                }
                memcpy(k + c, sum, sizeof sum);
            }
#endif
            for (; c < m; c++) k[c] = 299 * p[3 * c] + 587 * p[3 * c + 1] + 114 * p[3 * c + 2];
        } else {
            for (int c = 0; c < m; c++) {
                const uint8_t *q = p + (ptrdiff_t)c * pixel_bytes;
                k[c] = 299 * q[0] + 587 * q[1] + 114 * q[2];
            }
        }
        for (int c = done; c < m; c++) o[c] = (float)k[c] / 1000.0f;
    }
    free(k);
}

/* ---- scratch memory kept between calls -------------------------------------------------
 *
 * A hash's work arrays (about 12 bytes a pixel for the 8 variants) were fresh memory on every
 * call: a fresh mapping from the system, so the first touch of each 4 KiB page faulted and the
 * kernel zeroed it (about 2,400 faults, a fifth of the time, for a 1024 x 768 image). Each use
 * site keeps its last block in one slot for the next call instead, up to SCRATCH_KEEP_BYTES
 * (a 2,000 x 2,000 image's arrays; larger ones are freed as before). Calls run without the GIL:
 * a call finding its slot empty (another thread has the block) allocates its own, and a block
 * given back to a full slot is freed. Nothing reads scratch memory before writing it. */
#define SCRATCH_KEEP_BYTES ((size_t)48 << 20)
#define SCRATCH_HEADER 64 /* the block's size, and the arrays stay 64-byte aligned */
enum { SCRATCH_IMAGE, SCRATCH_PASSES, SCRATCH_SLOTS };
static char *scratch_slot[SCRATCH_SLOTS];

static float *scratch_take(int slot, size_t floats) {
    const size_t bytes = floats * sizeof(float);
#if defined(__GNUC__)
    char *kept = __atomic_exchange_n(&scratch_slot[slot], NULL, __ATOMIC_ACQ_REL);
    if (kept && *(size_t *)kept >= bytes) return (float *)(kept + SCRATCH_HEADER);
    free(kept);
#else
    (void)slot;
#endif
    char *block = malloc(bytes + SCRATCH_HEADER);
    if (!block) return NULL;
    *(size_t *)block = bytes;
    return (float *)(block + SCRATCH_HEADER);
}

static void scratch_give(int slot, float *floats) {
    if (!floats) return;
    char *block = (char *)floats - SCRATCH_HEADER;
#if defined(__GNUC__)
    char *empty = NULL;
    if (*(size_t *)block <= SCRATCH_KEEP_BYTES &&
        __atomic_compare_exchange_n(&scratch_slot[slot], &empty, block, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return;
#else
    (void)slot;
#endif
    free(block);
}

/* Whole cache lines of floats, so that each array carved out of a block starts on one; and
 * a cache line between consecutive arrays, so that a pass reading one and writing the next
 * does not find both at the same offset in a 4 KiB page (the loads would wait on the stores). */
static size_t lines(size_t floats) { return (floats + 15) / 16 * 16; }
#define SKEW 16

/* ---- the 8 orientations ---------------------------------------------------------------- */

/* Orientation order, as pdq_dihedral.DIHEDRAL: (transposed, flip rows, flip cols). */
static const int DIHEDRAL[8][3] = {
    {0, 0, 0}, {1, 1, 0}, {0, 1, 1}, {1, 0, 1}, {0, 1, 0}, {0, 0, 1}, {1, 0, 0}, {1, 1, 1},
};

/* The 64x64 images of the wanted orientations of x (n x m), for one "transposed" family:
 * x is L (family 0) or L^T (family 1), and always given as L (n x m for family 0, m x n for
 * family 1). p1a/p1b: n x m scratch. images[o] for each o with DIHEDRAL[o][0] == family. */
static ptrdiff_t padded(int m) { return (ptrdiff_t)((((m + 15) / 16) | 1) * 16); }

static int family(const float *x, ptrdiff_t x_stride, int n, int m, int family_id, const int *wanted, float *p1a,
                  float *p1b, float (*images)[SIDE * SIDE]) {
    int need_rev = 0;
    for (int o = 0; o < 8; o++)
        if (wanted[o] && DIHEDRAL[o][0] == family_id && DIHEDRAL[o][2]) need_rev = 1;
    if (n == SIDE && m == SIDE) {
        /* The C++ skips the filter for input that is already 64 x 64. */
        for (int o = 0; o < 8; o++) {
            if (!wanted[o] || DIHEDRAL[o][0] != family_id) continue;
            for (int i = 0; i < SIDE; i++)
                for (int j = 0; j < SIDE; j++) {
                    const int si = DIHEDRAL[o][1] ? SIDE - 1 - i : i, sj = DIHEDRAL[o][2] ? SIDE - 1 - j : j;
                    images[o][i * SIDE + j] = family_id ? x[sj * x_stride + si] : x[si * x_stride + sj];
                }
        }
        return 0;
    }
    const size_t lanes_max = (size_t)(n > m ? n : m), slab_floats = lines((size_t)m * SLAB);
    const size_t p3_floats = lines((size_t)n * SIDE), sum_floats = lines(lanes_max > SIDE ? lanes_max : SIDE);
    float *block = scratch_take(SCRATCH_PASSES, 3 * slab_floats + p3_floats + 2 * sum_floats + 4 * SKEW);
    int ok = block != NULL;
    if (ok) {
        float *buf = block, *obuf = buf + slab_floats + SKEW, *slab = obuf + slab_floats + SKEW;
        float *p3 = slab + slab_floats + SKEW, *sum = p3 + p3_floats + SKEW, *sum2 = sum + sum_floats;
        int keep_cols[SIDE], keep_rows[SIDE];
        decimation(m, keep_cols);
        decimation(n, keep_rows);
        rows_pass(x, x_stride, family_id, n, m, window_for(m), p1a, need_rev ? p1b : NULL, padded(m), buf, obuf, sum);
        for (int o = 0; o < 8; o++) {
            if (!wanted[o] || DIHEDRAL[o][0] != family_id) continue;
            finish(DIHEDRAL[o][2] ? p1b : p1a, padded(m), n, m, DIHEDRAL[o][1], images[o], slab, buf, p3, sum, sum2,
                   keep_cols, SIDE, keep_rows, SIDE);
        }
    }
    scratch_give(SCRATCH_PASSES, block);
    return ok ? 0 : -1;
}

/* The 64x64 buffers of the wanted orientations of an RGB image. Returns 0, or -1 (memory). */
HOT static int downsample_all(const uint8_t *rgb, ptrdiff_t row_bytes, int pixel_bytes, int n, int m,
                          const int *wanted, float (*images)[SIDE * SIDE]) {
    int want_t = 0;
    for (int o = 0; o < 8; o++)
        if (wanted[o] && DIHEDRAL[o][0]) want_t = 1;
    /* Rows an odd number of cache lines apart: at widths like 1024 floats, the transposed
     * writes of a pass all fell into the same cache sets (a dihedral hash took 7 single ones). */
    const ptrdiff_t lstride = padded(m);
    const size_t p1 = (size_t)n * (size_t)padded(m), p1t = want_t ? (size_t)m * (size_t)padded(n) : 0;
    const size_t area = lines(p1 > p1t ? p1 : p1t);
    const size_t l_floats = lines((size_t)n * (size_t)lstride > area ? (size_t)n * (size_t)lstride : area);
    const int need_b = want_t || wanted[2] || wanted[5];
    float *block = scratch_take(SCRATCH_IMAGE, l_floats + (need_b ? 2 : 1) * area + 3 * SKEW);
    int rc = -1;
    if (block) {
        float *l = block, *a = l + l_floats + SKEW, *b = need_b ? a + area + 2 * SKEW : NULL;
        luma(rgb, row_bytes, pixel_bytes, n, m, l, lstride);
        rc = family(l, lstride, n, m, 0, wanted, a, b, images);
        if (rc == 0 && want_t) rc = family(l, lstride, m, n, 1, wanted, a, b, images);
    }
    scratch_give(SCRATCH_IMAGE, block);
    return rc;
}

/* The 64x64 buffer of one image from its luma, made by the caller (luma_plane below) with rows
 * `stride` floats apart: the regions and copies of one work copy (derived.py, crops.py,
 * masked.py) each used to make the luma of their pixels again. The same floats follow:
 * luma is per pixel, so a region of the plane is the region's own luma. 0, or -1 (memory). */
static int downsample_luma(const float *l, ptrdiff_t stride, int n, int m, float *image) {
    static const int upright[8] = {1, 0, 0, 0, 0, 0, 0, 0};
    float *block = scratch_take(SCRATCH_IMAGE, lines((size_t)n * (size_t)padded(m)) + SKEW);
    int rc = -1;
    if (block) rc = family(l, stride, n, m, 0, upright, block, NULL, (float (*)[SIDE * SIDE])image);
    scratch_give(SCRATCH_IMAGE, block);
    return rc;
}

/* The 64x64 buffers of `count` regions of one luma plane that share their columns (`m` wide
 * from the plane's column 0 as given), rows tops[i] .. tops[i] + heights[i] - 1, none 64 x 64.
 * The first pass runs along rows, and a row's output depends only on that row's pixels
 * inside the columns and on the window (which follows m): so it is run once over the rows of
 * all of them, and each region's other passes start from its own rows of it, the floats
 * each region's own filter would make (a lookup's windows: three stacked windows a column).
 * 0, or -1 (memory). */
static int downsample_column_group(const float *l, ptrdiff_t stride, int m, const int *tops, const int *heights,
                                   int count, float (*images)[SIDE * SIDE]) {
    int top = tops[0], bottom = tops[0] + heights[0], tallest = heights[0];
    for (int i = 1; i < count; i++) {
        if (tops[i] < top) top = tops[i];
        if (tops[i] + heights[i] > bottom) bottom = tops[i] + heights[i];
        if (heights[i] > tallest) tallest = heights[i];
    }
    const int n = bottom - top;
    float *p1 = scratch_take(SCRATCH_IMAGE, lines((size_t)n * (size_t)padded(m)) + SKEW);
    const size_t lanes_max = (size_t)(tallest > m ? tallest : m), slab_floats = lines((size_t)m * SLAB);
    const size_t p3_floats = lines((size_t)tallest * SIDE), sum_floats = lines(lanes_max > SIDE ? lanes_max : SIDE);
    float *block = p1 ? scratch_take(SCRATCH_PASSES, 3 * slab_floats + p3_floats + 2 * sum_floats + 4 * SKEW) : NULL;
    int ok = block != NULL;
    if (ok) {
        float *buf = block, *obuf = buf + slab_floats + SKEW, *slab = obuf + slab_floats + SKEW;
        float *p3 = slab + slab_floats + SKEW, *sum = p3 + p3_floats + SKEW, *sum2 = sum + sum_floats;
        int keep_cols[SIDE], keep_rows[SIDE];
        decimation(m, keep_cols);
        rows_pass(l + (ptrdiff_t)top * stride, stride, 0, n, m, window_for(m), p1, NULL, padded(m), buf, obuf, sum);
        for (int i = 0; i < count; i++) {
            decimation(heights[i], keep_rows);
            finish(p1 + (ptrdiff_t)(tops[i] - top) * padded(m), padded(m), heights[i], m, 0, images[i], slab, buf, p3,
                   sum, sum2, keep_cols, SIDE, keep_rows, SIDE);
        }
    }
    scratch_give(SCRATCH_PASSES, block);
    scratch_give(SCRATCH_IMAGE, p1);
    return ok ? 0 : -1;
}

/* ---- the 8 orientations from one filtered image (what lookups query) ---------------------
 *
 * Mirroring an image reverses the direction every box pass runs in. A pass with an even
 * window w averages inputs k - w/2 + 1 .. k + w/2 running forwards and k - w/2 .. k + w/2 - 1
 * running backwards: the same window one step earlier (odd windows are centred either way).
 * So, away from the borders, the filtered mirror image is the upright filtered image read
 * one step back per pass (two passes an axis), and the 64 cells of the mirror image are the
 * upright filtered image at mirrored, shifted positions. A transpose only swaps the axes
 * (each axis's window and cells follow its own length). One filter kept at up to 128
 * positions an axis thus gives all 8 buffers, for about the cost of one PDQ instead of
 * four. They differ from filtering each turned image (the exact variants above) in rounding
 * only (the running sums add in another order) and in cells within two windows of a border
 * (the clipped windows there are not shifts of each other). The upright buffer is the
 * upright PDQ's, bit for bit. The one thing not to do instead is pdqhash's shortcut of
 * flipping signs of the upright DCT: that keeps the upright cells, which sit a few pixels
 * off the mirror image's own (the shift above, plus the rounding down of each cell's
 * centre), tens of bits away on sharp-edged drawings. */

typedef struct {
    int count;            /* distinct positions kept */
    int pos[KEEP_MAX];    /* ascending */
    int upright[SIDE];    /* index into pos of cell i of the upright image */
    int mirrored[SIDE];   /* index into pos of cell i of the mirror image */
} cells_t;

static void cells_init(cells_t *c, int len) {
    int up[SIDE], mir[SIDE];
    decimation(len, up);
    const int w = window_for(len), lead = (w + 2) / 2 - 1, shift = 2 * (w - 2 * lead - 1);
    for (int i = 0; i < SIDE; i++) {
        const int p = len - 1 - up[i] + shift;
        mir[i] = p < 0 ? 0 : p >= len ? len - 1 : p;
    }
    /* up ascends with i, mir descends: merge them into one ascending list without repeats. */
    int a = 0, b = SIDE - 1;
    c->count = 0;
    while (a < SIDE || b >= 0) {
        const int next = (b < 0 || (a < SIDE && up[a] <= mir[b])) ? up[a] : mir[b];
        if (c->count == 0 || c->pos[c->count - 1] != next) c->pos[c->count++] = next;
        while (a < SIDE && up[a] == next) c->upright[a++] = c->count - 1;
        while (b >= 0 && mir[b] == next) c->mirrored[b--] = c->count - 1;
    }
}

/* The 8 64x64 buffers in DIHEDRAL order from one filter of the upright image. 0, or -1 (memory). */
HOT static int sampled_all(const uint8_t *rgb, ptrdiff_t row_bytes, int pixel_bytes, int n, int m,
                           float (*images)[SIDE * SIDE]) {
    if (n == SIDE && m == SIDE) {
        /* No filter at 64 x 64 (as in the C++): the exact variants are plain transposes. */
        static const int all[8] = {1, 1, 1, 1, 1, 1, 1, 1};
        return downsample_all(rgb, row_bytes, pixel_bytes, n, m, all, images);
    }
    cells_t rows, cols;
    cells_init(&rows, n);
    cells_init(&cols, m);
    const ptrdiff_t lstride = padded(m);
    const size_t l_floats = lines((size_t)n * (size_t)lstride);
    float *image_block = scratch_take(SCRATCH_IMAGE, 2 * l_floats + 2 * SKEW);
    const size_t slab_floats = lines((size_t)m * SLAB), p3_floats = lines((size_t)n * (size_t)cols.count);
    const int most = n > m ? (n > KEEP_MAX ? n : KEEP_MAX) : (m > KEEP_MAX ? m : KEEP_MAX);
    const size_t sum_floats = lines((size_t)most), big_floats = lines((size_t)rows.count * (size_t)cols.count);
    float *pass_block = image_block ? scratch_take(SCRATCH_PASSES, 3 * slab_floats + p3_floats + 2 * sum_floats +
                                                                       big_floats + 5 * SKEW) : NULL;
    int rc = -1;
    if (pass_block) {
        float *l = image_block, *p1 = l + l_floats + SKEW;
        float *buf = pass_block, *obuf = buf + slab_floats + SKEW, *slab = obuf + slab_floats + SKEW;
        float *p3 = slab + slab_floats + SKEW, *sum = p3 + p3_floats + SKEW, *sum2 = sum + sum_floats;
        float *big = sum2 + sum_floats + SKEW;
        luma(rgb, row_bytes, pixel_bytes, n, m, l, lstride);
        rows_pass(l, lstride, 0, n, m, window_for(m), p1, NULL, lstride, buf, obuf, sum);
        finish(p1, lstride, n, m, 0, big, slab, buf, p3, sum, sum2, cols.pos, cols.count, rows.pos, rows.count);
        for (int o = 0; o < 8; o++) {
            const int transposed = DIHEDRAL[o][0], flip_rows = DIHEDRAL[o][1], flip_cols = DIHEDRAL[o][2];
            /* A turned image's rows run along the upright columns when transposed. */
            const int *down = transposed ? (flip_cols ? rows.mirrored : rows.upright) : (flip_rows ? rows.mirrored : rows.upright);
            const int *across = transposed ? (flip_rows ? cols.mirrored : cols.upright) : (flip_cols ? cols.mirrored : cols.upright);
            for (int i = 0; i < SIDE; i++)
                for (int j = 0; j < SIDE; j++)
                    images[o][i * SIDE + j] = transposed ? big[(ptrdiff_t)down[j] * cols.count + across[i]]
                                                         : big[(ptrdiff_t)down[i] * cols.count + across[j]];
        }
        rc = 0;
    }
    scratch_give(SCRATCH_PASSES, pass_block);
    scratch_give(SCRATCH_IMAGE, image_block);
    return rc;
}

/* ---- Python binding --------------------------------------------------------------------- */

/* pdq_float(rgb, height, width, row_bytes, pixel_bytes, dct_matrix, mode)
 *   -> (bytes of float32 DCTs, 16 x 16 per orientation, tuple of qualities) */
static PyObject *pdq_float_impl(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "pdq_float takes 7 arguments");
        return NULL;
    }
    long n = PyLong_AsLong(args[1]), m = PyLong_AsLong(args[2]);
    Py_ssize_t row_bytes = PyLong_AsSsize_t(args[3]);
    long pixel_bytes = PyLong_AsLong(args[4]);
    /* 0: the image only; 1: its 8 orientations, each filtered (exact); 2: the 8 from one filter. */
    long mode = PyLong_AsLong(args[6]);
    if (PyErr_Occurred()) return NULL;
    if (mode < 0 || mode > 2) {
        PyErr_SetString(PyExc_ValueError, "pdq_float: mode is 0, 1 or 2");
        return NULL;
    }
    if (n < 1 || m < 1 || n > (1 << 20) || m > (1 << 20) || pixel_bytes < 3 || row_bytes < m * pixel_bytes) {
        PyErr_SetString(PyExc_ValueError, "pdq_float: bad image shape");
        return NULL;
    }
    Py_buffer rgb, dct;
    /* A contiguous buffer of at least the rows' span, or a strided n x m x pixel_bytes view
     * of bytes whose rows are row_bytes apart and whose pixels are packed (a crop of a
     * larger image, hashed where it lies instead of copied out first). */
    if (PyObject_GetBuffer(args[0], &rgb, PyBUF_STRIDED_RO) < 0) return NULL;
    if (PyObject_GetBuffer(args[5], &dct, PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&rgb);
        return NULL;
    }
    const int fits = PyBuffer_IsContiguous(&rgb, 'C')
        ? rgb.len >= (Py_ssize_t)(row_bytes * (n - 1) + m * pixel_bytes)
        : rgb.ndim == 3 && rgb.itemsize == 1 && rgb.shape[0] == n && rgb.shape[1] == m && rgb.shape[2] == pixel_bytes &&
              rgb.strides[0] == row_bytes && rgb.strides[1] == pixel_bytes && rgb.strides[2] == 1;
    if (!fits || dct.len != (Py_ssize_t)sizeof(float) * 16 * SIDE) {
        PyBuffer_Release(&rgb);
        PyBuffer_Release(&dct);
        PyErr_SetString(PyExc_ValueError, "pdq_float: buffer too small for the shape (or strided other than as given), or a DCT matrix not 16 x 64 float32");
        return NULL;
    }
    int wanted[8] = {1, 0, 0, 0, 0, 0, 0, 0};
    const int count = mode ? 8 : 1;
    for (int o = 0; o < count; o++) wanted[o] = 1;
    float (*images)[SIDE * SIDE] = malloc(sizeof(float) * SIDE * SIDE * 8);
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)sizeof(float) * 256 * count);
    int qualities[8];
    int rc = -1;
    if (images && out) {
        float *dcts = (float *)PyBytes_AS_STRING(out);
        Py_BEGIN_ALLOW_THREADS
        if (mode == 2) rc = sampled_all((const uint8_t *)rgb.buf, row_bytes, (int)pixel_bytes, (int)n, (int)m, images);
        else rc = downsample_all((const uint8_t *)rgb.buf, row_bytes, (int)pixel_bytes, (int)n, (int)m, wanted, images);
        if (rc == 0)
            for (int o = 0; o < count; o++) qualities[o] = dct_and_quality(images[o], (const float *)dct.buf, dcts + 256 * o);
        Py_END_ALLOW_THREADS
    }
    free(images);
    PyBuffer_Release(&rgb);
    PyBuffer_Release(&dct);
    if (rc != 0) {
        Py_XDECREF(out);
        return PyErr_NoMemory();
    }
    PyObject *q = PyTuple_New(count);
    if (!q) {
        Py_DECREF(out);
        return NULL;
    }
    for (int o = 0; o < count; o++) PyTuple_SET_ITEM(q, o, PyLong_FromLong(qualities[o]));
    return Py_BuildValue("(NN)", out, q);
}

/* ---- pHash's thumbnail: Pillow's convert("L") then resize(..., LANCZOS), to the byte -------
 *
 * imagehash.phash hashes `image.convert("L").resize((32, 32), LANCZOS)`. That was a third of
 * an image's hashing time, most of it in Pillow's general-purpose resampler walking the
 * whole image. This computes the same bytes (the tests compare them with Pillow's on every
 * fixture): Pillow's 16-bit fixed-point grey, then its separable Lanczos-3 filter with the
 * coefficients computed the same way in double and rounded to 22-bit integers, a horizontal
 * pass (rows the vertical pass reads only) rounded to 8 bits, then a vertical pass. Integer
 * sums are exact in any order, so the rows can be filtered as they are made grey. */

#define RESAMPLE_BITS 22
#define PI_DOUBLE 3.14159265358979323846

static double sinc(double x) {
    if (x == 0.0) return 1.0;
    x = x * PI_DOUBLE;
    return sin(x) / x;
}

static double lanczos3(double x) { return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0; }

typedef struct {
    int ksize;
    int *first;    /* out_size: first input index */
    int *count;    /* out_size: taps */
    int32_t *k;    /* out_size x ksize */
    /* k = 2048 hi + lo, lo in 0..2047: both 16-bit, for pmaddwd (see horizontal_row); NULL
     * when a coefficient's hi does not fit or a sum of lo products could pass 2**31. */
    int16_t *hi, *lo;
} taps_t;

static int taps_init(taps_t *t, int in_size, int out_size) {
    const double scale = (double)((float)in_size - 0.0f) / out_size;
    const double filterscale = scale < 1.0 ? 1.0 : scale;
    const double support = 3.0 * filterscale;
    t->ksize = (int)ceil(support) * 2 + 1;
    t->first = malloc(sizeof(int) * (size_t)out_size);
    t->count = malloc(sizeof(int) * (size_t)out_size);
    t->k = malloc(sizeof(int32_t) * (size_t)out_size * (size_t)t->ksize);
    double *w = malloc(sizeof(double) * (size_t)t->ksize);
    if (!t->first || !t->count || !t->k || !w) {
        free(w);
        return -1;
    }
    for (int xx = 0; xx < out_size; xx++) {
        const double center = 0.0 + (xx + 0.5) * scale;
        const double ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double ww = 0.0;
        for (int x = 0; x < xmax; x++) {
            w[x] = lanczos3((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        int32_t *k = t->k + (size_t)xx * t->ksize;
        for (int x = 0; x < t->ksize; x++) {
            double v = x < xmax ? (ww != 0.0 ? w[x] / ww : w[x]) : 0.0;
            k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << RESAMPLE_BITS)) : (int32_t)(0.5 + v * (1 << RESAMPLE_BITS));
        }
        t->first[xx] = xmin;
        t->count[xx] = xmax;
    }
    free(w);
    t->hi = t->lo = NULL;
    const size_t all = (size_t)out_size * (size_t)t->ksize;
    int fits = (int64_t)t->ksize * 255 * 2047 < ((int64_t)1 << 31);
    for (size_t i = 0; i < all && fits; i++) fits = t->k[i] >> 11 >= INT16_MIN && t->k[i] >> 11 <= INT16_MAX;
    if (fits) {
        t->hi = malloc(sizeof(int16_t) * all);
        t->lo = malloc(sizeof(int16_t) * all);
        if (!t->hi || !t->lo) {
            free(t->hi);
            free(t->lo);
            t->hi = t->lo = NULL;
        } else {
            for (size_t i = 0; i < all; i++) {
                t->hi[i] = (int16_t)(t->k[i] >> 11); /* arithmetic shift: floor, as lo >= 0 needs */
                t->lo[i] = (int16_t)(t->k[i] & 2047);
            }
        }
    }
    return 0;
}

static void taps_free(taps_t *t) { free(t->first); free(t->count); free(t->k); free(t->hi); free(t->lo); }

static uint8_t clip8(int32_t v) {
    v >>= RESAMPLE_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

INLINE void grey_row(const uint8_t *restrict p, int pixel_bytes, int m, uint8_t *restrict out) {
    if (pixel_bytes == 1) {
        memcpy(out, p, (size_t)m);
        return;
    }
    if (pixel_bytes == 3) {
        int c = 0;
#if defined(__GNUC__) && defined(__SSE2__)
        /* 16 pixels a step, 4 from each 16-byte load, as the PDQ luma above: (R, G) and (G, B)
         * as 16-bit pairs, and pmaddwd's signed 16-bit weights (38470 does not fit one, so G
         * goes in twice at half of it): 19595 R + 19235 G, plus 19235 G + 7471 B, exact in 32
         * bits. Each load reads 4 bytes past its pixels: the loop leaves the last 2 to the
         * scalar loop. This conversion was most of the thumbnail's time (perf, AMD EPYC). */
        for (; c + 18 <= m; c += 16) {
            __m128i sums[4];
            for (int q = 0; q < 4; q++) {
                const __m128i sum = weighted_channels(p + 3 * c + 12 * q, PAIR_RG, GREY_RG, PAIR_GB, GREY_GB);
                sums[q] = _mm_srli_epi32(_mm_add_epi32(sum, _mm_set1_epi32(0x8000)), 16);
            }
            /* 0..255 in every lane: the saturating packs only narrow. */
            const __m128i bytes = _mm_packus_epi16(_mm_packs_epi32(sums[0], sums[1]), _mm_packs_epi32(sums[2], sums[3]));
            _mm_storeu_si128((__m128i *)(out + c), bytes);
        }
#endif
        for (; c < m; c++) out[c] = (uint8_t)((p[3 * c] * 19595 + p[3 * c + 1] * 38470 + p[3 * c + 2] * 7471 + 0x8000) >> 16);
        return;
    }
    for (int c = 0; c < m; c++) {
        const uint8_t *q = p + (ptrdiff_t)c * pixel_bytes;
        out[c] = (uint8_t)((q[0] * 19595 + q[1] * 38470 + q[2] * 7471 + 0x8000) >> 16);
    }
}

static int32_t dot(const uint8_t *restrict px, const int32_t *restrict k, int count) {
    int32_t s = 1 << (RESAMPLE_BITS - 1);
    for (int x = 0; x < count; x++) s += (int32_t)px[x] * k[x];
    return s;
}

/* One output row of the vertical pass: acc over the rows first.. of src (row length w). */
INLINE void vertical_row(const uint8_t *src, size_t w, const int32_t *k, int first, int count, int32_t *acc,
                         uint8_t *out) {
    for (size_t x = 0; x < w; x++) acc[x] = 1 << (RESAMPLE_BITS - 1);
    for (int y = 0; y < count; y++) {
        const uint8_t *restrict row = src + (size_t)(first + y) * w;
        const int32_t ky = k[y];
        for (size_t x = 0; x < w; x++) acc[x] += (int32_t)row[x] * ky;
    }
    for (size_t x = 0; x < w; x++) out[x] = clip8(acc[x]);
}

/* Products of 16-bit values summed into 32 bits: GCC makes this loop pmaddwd, 16 a step with
 * AVX2, where the 32-bit multiplies of dot() take 8. */
INLINE int32_t dot16(const int16_t *restrict px, const int16_t *restrict k, int count) {
    int32_t s = 0;
    for (int x = 0; x < count; x++) s += (int32_t)px[x] * k[x];
    return s;
}

/* One row's horizontal pass. With the split coefficients, sum(p k) = 2048 sum(p hi) +
 * sum(p lo), each sum exact in 32 bits (taps_init checks the bounds), so the same integer
 * as dot(). wide: scratch for the row as 16-bit values. */
INLINE void horizontal_row(const uint8_t *src, int m, const taps_t *t, int out_w, int16_t *wide, uint8_t *out) {
    if (!t->hi || !wide) {
        for (int xx = 0; xx < out_w; xx++) out[xx] = clip8(dot(src + t->first[xx], t->k + (size_t)xx * t->ksize, t->count[xx]));
        return;
    }
    for (int x = 0; x < m; x++) wide[x] = src[x];
    for (int xx = 0; xx < out_w; xx++) {
        const size_t at = (size_t)xx * t->ksize;
        const int64_t hi = dot16(wide + t->first[xx], t->hi + at, t->count[xx]);
        const int64_t lo = dot16(wide + t->first[xx], t->lo + at, t->count[xx]);
        out[xx] = clip8((int32_t)(hi * 2048 + lo + (1 << (RESAMPLE_BITS - 1))));
    }
}

/* out (out_h x out_w) = Pillow's image.convert("L").resize((out_w, out_h), LANCZOS), for
 * Pillow 13: it runs the vertical pass first when the height shrinks by more than twice
 * what the width does (earlier Pillows always ran the horizontal pass first). */
HOT static int grey_thumbnail(const uint8_t *rgb, ptrdiff_t row_bytes, int pixel_bytes, int n, int m,
                          int out_w, int out_h, uint8_t *out) {
    const int horizontal = out_w != m, vertical = out_h != n;
    const int horizontal_first = !((n - out_h) > 0 && (n - out_h) > (m - out_w) * 2);
    taps_t th = {0}, tv = {0};
    uint8_t *grey = malloc((size_t)m), *temp = NULL, *mid = NULL;
    int16_t *wide = malloc(sizeof(int16_t) * (size_t)m); /* NULL: horizontal_row uses dot() */
    int32_t *acc = malloc(sizeof(int32_t) * (size_t)(m > out_w ? m : out_w));
    int rc = -1;
    if (!grey || !acc || (vertical && taps_init(&tv, n, out_h)) || (horizontal && taps_init(&th, m, out_w))) goto done;
    if (horizontal_first) {
        /* The rows the vertical pass reads, each filtered horizontally as it is made grey. */
        const int r0 = vertical ? tv.first[0] : 0;
        const int r1 = vertical ? tv.first[out_h - 1] + tv.count[out_h - 1] : n;
        const int tw = horizontal ? out_w : m;
        temp = malloc((size_t)tw * (size_t)(r1 - r0));
        if (!temp) goto done;
        for (int r = r0; r < r1; r++) {
            uint8_t *dst = temp + (size_t)(r - r0) * tw;
            if (horizontal) {
                grey_row(rgb + row_bytes * r, pixel_bytes, m, grey);
                horizontal_row(grey, m, &th, out_w, wide, dst);
            } else {
                grey_row(rgb + row_bytes * r, pixel_bytes, m, dst);
            }
        }
        if (vertical) {
            for (int yy = 0; yy < out_h; yy++)
                vertical_row(temp, (size_t)tw, tv.k + (size_t)yy * tv.ksize, tv.first[yy] - r0, tv.count[yy], acc,
                             out + (size_t)yy * out_w);
        } else {
            memcpy(out, temp, (size_t)out_w * (size_t)out_h);
        }
    } else {
        /* Vertical first (so vertical is needed): the grey image, then out_h rows of width m. */
        temp = malloc((size_t)m * (size_t)n);
        mid = malloc((size_t)m * (size_t)out_h);
        if (!temp || !mid) goto done;
        for (int r = 0; r < n; r++) grey_row(rgb + row_bytes * r, pixel_bytes, m, temp + (size_t)r * m);
        for (int yy = 0; yy < out_h; yy++)
            vertical_row(temp, (size_t)m, tv.k + (size_t)yy * tv.ksize, tv.first[yy], tv.count[yy], acc, mid + (size_t)yy * m);
        for (int yy = 0; yy < out_h; yy++) {
            if (horizontal) horizontal_row(mid + (size_t)yy * m, m, &th, out_w, wide, out + (size_t)yy * out_w);
            else memcpy(out + (size_t)yy * out_w, mid + (size_t)yy * m, (size_t)m);
        }
    }
    rc = 0;
done:
    free(grey);
    free(wide);
    free(acc);
    free(temp);
    free(mid);
    if (vertical) taps_free(&tv);
    if (horizontal) taps_free(&th);
    return rc;
}

static PyObject *grey_thumbnail_impl(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "grey_thumbnail takes 7 arguments");
        return NULL;
    }
    long n = PyLong_AsLong(args[1]), m = PyLong_AsLong(args[2]);
    Py_ssize_t row_bytes = PyLong_AsSsize_t(args[3]);
    long pixel_bytes = PyLong_AsLong(args[4]), out_w = PyLong_AsLong(args[5]), out_h = PyLong_AsLong(args[6]);
    if (PyErr_Occurred()) return NULL;
    if (n < 1 || m < 1 || n > (1 << 20) || m > (1 << 20) || (pixel_bytes != 1 && pixel_bytes < 3) ||
        row_bytes < m * pixel_bytes || out_w < 1 || out_h < 1 || out_w > 4096 || out_h > 4096) {
        PyErr_SetString(PyExc_ValueError, "grey_thumbnail: bad image or thumbnail shape");
        return NULL;
    }
    Py_buffer rgb;
    if (PyObject_GetBuffer(args[0], &rgb, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (rgb.len < (Py_ssize_t)(row_bytes * (n - 1) + m * pixel_bytes)) {
        PyBuffer_Release(&rgb);
        PyErr_SetString(PyExc_ValueError, "grey_thumbnail: buffer too small for the shape");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(out_w * out_h));
    int rc = -1;
    if (out) {
        uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(out);
        Py_BEGIN_ALLOW_THREADS
        rc = grey_thumbnail((const uint8_t *)rgb.buf, row_bytes, (int)pixel_bytes, (int)n, (int)m, (int)out_w, (int)out_h, dst);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&rgb);
    if (rc != 0) {
        Py_XDECREF(out);
        return out ? PyErr_NoMemory() : NULL;
    }
    return out;
}

/* ---- The region detectors' line colours: each row's median of values 0..255 -------------
 *
 * regions._median sorts every line's samples (3 x 512 rows of 128-255 values an image) to
 * take the middle one or two; numpy's sort of such rows is not vectorised on every core
 * (BENCHMARKS.md, "Image hashing end to end"). A histogram of a row gives the same values:
 * the k-th smallest is where the counts, summed from 0, pass k. */

/* The k-th smallest value counted in two tables (even and odd samples, so that a run of
 * equal values does not make every increment wait for the one before). */
INLINE int kth_value(const uint32_t *even, const uint32_t *odd, Py_ssize_t k) {
    int v = 0;
    for (;;) { /* whole groups of 16 values first */
        uint32_t group = 0;
        for (int i = 0; i < 16; i++) group += even[v + i] + odd[v + i];
        if (k < (Py_ssize_t)group) break;
        k -= group;
        v += 16;
    }
    for (;; v++) {
        const uint32_t here = even[v] + odd[v];
        if (k < (Py_ssize_t)here) return v;
        k -= here;
    }
}

/* The k-th smallest (from 0) counted in one table of 16-bit counts. */
INLINE int kth_count16(const uint16_t *counts, Py_ssize_t k) {
    int v = 0;
    for (;;) { /* whole groups of 16 values first */
        uint32_t group = 0;
        for (int i = 0; i < 16; i++) group += counts[v + i];
        if (k < (Py_ssize_t)group) break;
        k -= group;
        v += 16;
    }
    for (;; v++) {
        if (k < (Py_ssize_t)counts[v]) return v;
        k -= counts[v];
    }
}

/* The k-th and (k+1)-th smallest (from 0) counted in one table of 16-bit counts: one scan to
 * the k-th, then on to the next value counted (the two middle values of an even count were
 * two scans from the start, about 40 % of the detectors' median time). */
INLINE int kth_pair16(const uint16_t *counts, Py_ssize_t k, int *next) {
    int v = 0;
    for (;;) {
        uint32_t group = 0;
        for (int i = 0; i < 16; i++) group += counts[v + i];
        if (k < (Py_ssize_t)group) break;
        k -= group;
        v += 16;
    }
    for (;; v++) {
        if (k < (Py_ssize_t)counts[v]) break;
        k -= counts[v];
    }
    int w = v;
    if (k + 1 >= (Py_ssize_t)counts[v])
        for (w = v + 1; !counts[w]; w++) {}
    *next = w;
    return v;
}

/* row_medians for rows of fewer than 65,536 samples (every row the detectors pass): 16 rows
 * at a time, one sample of each in turn, each into its own table of 16-bit counts. The
 * columns of the planes (rows 1 KiB apart) were read one column at a time, every sample
 * another cache line, fetched again for the next column; here the 16 columns' samples share
 * them. And 16 tables take no more zeroing than one row's two 32-bit tables did; successive
 * increments land in different tables, so a run of equal values waits on no store. The
 * counts, hence the medians, are those of the loop below. 1 on a value outside 0..255. */
#define MEDIAN_ROWS 16
static int medians_blocked(const char *base, Py_ssize_t s0, Py_ssize_t s1, Py_ssize_t s2, Py_ssize_t d0,
                           Py_ssize_t d1, Py_ssize_t n, int16_t *dst) {
    uint16_t counts[MEDIAN_ROWS][256];
    for (Py_ssize_t a = 0; a < d0; a++) {
        for (Py_ssize_t b0 = 0; b0 < d1; b0 += MEDIAN_ROWS) {
            const int rows = d1 - b0 < MEDIAN_ROWS ? (int)(d1 - b0) : MEDIAN_ROWS;
            const char *first = base + a * s0 + b0 * s1;
            memset(counts, 0, sizeof(counts[0]) * (size_t)rows);
            uint16_t any = 0;
            for (Py_ssize_t i = 0; i < n; i++) {
                const char *at = first + i * s2;
                for (int r = 0; r < rows; r++) {
                    const uint16_t v = (uint16_t)*(const int16_t *)(at + r * s1);
                    any |= v;
                    counts[r][v & 255]++;
                }
            }
            if (any > 255) return 1;
            for (int r = 0; r < rows; r++) {
                if (n % 2) {
                    *dst++ = (int16_t)kth_count16(counts[r], n / 2);
                } else {
                    int high;
                    const int low = kth_pair16(counts[r], n / 2 - 1, &high);
                    *dst++ = (int16_t)((low + high) >> 1);
                }
            }
        }
    }
    return 0;
}

/* row_medians(samples, out): samples an int16 array (1 to 3 axes, any strides) of values
 * 0..255; out a C-contiguous int16 array of its shape less the last axis, each row's median
 * written there as np.median(...).astype(np.int16) gives it (the mean of the two middle
 * values, truncated). ValueError for a value outside 0..255. */
static PyObject *row_medians_impl(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "row_medians takes 2 arguments");
        return NULL;
    }
    Py_buffer in, out;
    if (PyObject_GetBuffer(args[0], &in, PyBUF_STRIDED_RO | PyBUF_FORMAT) < 0) return NULL;
    if (PyObject_GetBuffer(args[1], &out, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&in);
        return NULL;
    }
    const int nd = in.ndim;
    const int ok_in = nd >= 1 && nd <= 3 && in.itemsize == 2 && in.format && strcmp(in.format, "h") == 0 &&
                      in.shape[nd - 1] >= 1;
    Py_ssize_t d0 = nd == 3 ? in.shape[0] : 1;
    const Py_ssize_t d1 = nd >= 2 ? in.shape[nd - 2] : 1;
    const Py_ssize_t n = ok_in ? in.shape[nd - 1] : 0;
    if (!ok_in || out.itemsize != 2 || !out.format || strcmp(out.format, "h") != 0 || out.len != 2 * d0 * d1 ||
        n >= ((Py_ssize_t)1 << 31)) {
        PyBuffer_Release(&in);
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "row_medians: samples must be int16 with 1 to 3 axes, out int16 of its shape less the last axis");
        return NULL;
    }
    const Py_ssize_t s0 = nd == 3 ? in.strides[0] : 0, s1 = nd >= 2 ? in.strides[nd - 2] : 0, s2 = in.strides[nd - 1];
    const char *base = (const char *)in.buf;
    int16_t *dst = (int16_t *)out.buf;
    uint32_t even[256], odd[256];
    int bad = 0;
    if (n < 65536) {
        bad = medians_blocked(base, s0, s1, s2, d0, d1, n, dst);
        d0 = 0; /* done */
    }
    for (Py_ssize_t a = 0; a < d0 && !bad; a++) {
        for (Py_ssize_t b = 0; b < d1; b++) {
            const char *row = base + a * s0 + b * s1;
            memset(even, 0, sizeof even);
            memset(odd, 0, sizeof odd);
            uint16_t any = 0;
            Py_ssize_t i = 0;
            for (; i + 1 < n; i += 2) {
                const uint16_t v = (uint16_t)*(const int16_t *)(row + i * s2);
                const uint16_t w = (uint16_t)*(const int16_t *)(row + (i + 1) * s2);
                any |= v | w;
                even[v & 255]++;
                odd[w & 255]++;
            }
            if (i < n) {
                const uint16_t v = (uint16_t)*(const int16_t *)(row + i * s2);
                any |= v;
                even[v & 255]++;
            }
            if (any > 255) {
                bad = 1;
                break;
            }
            const int high = kth_value(even, odd, n / 2);
            *dst++ = (int16_t)(n % 2 ? high : (kth_value(even, odd, n / 2 - 1) + high) >> 1);
        }
    }
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "row_medians: a value outside 0..255");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ---- The region detectors' band test: how many pixels of each line are its colour -------
 *
 * regions._near_counts: np.count_nonzero(_near(lines, colours), axis=1), each pixel counted
 * when every channel is within `tolerance` of its line's colour. Numpy made a boolean plane a
 * channel (subtract, abs, compare, and), then counted: twice over the whole work copy an
 * image (rows, then columns through a transposed view), a fifth of the detectors' time. Here
 * one pass, no plane; the counts are integers, the same whichever order they are made in. */

/* |d| <= tol as one unsigned compare: d + tol in 0 .. 2 tol (a negative sum wraps high). */
#define WITHIN(v, c, tol) ((uint32_t)((int32_t)(v) - (int32_t)(c) + (tol)) <= (uint32_t)(2 * (tol)))

/* lines: channel c, line i, position j at base + c sc + i sl + j sp (bytes). colours: 3 x n.
 * counts: n, zeroed by the caller. */
HOT static void near_counts(const char *base, ptrdiff_t sc, ptrdiff_t sl, ptrdiff_t sp, Py_ssize_t n, Py_ssize_t m,
                            const int16_t *colours, int tol, int32_t *counts) {
    const int16_t *cr = colours, *cg = colours + n, *cb = colours + 2 * n;
    if (sp == 2) { /* each line's positions contiguous (rows of the planes) */
        for (Py_ssize_t i = 0; i < n; i++) {
            const int16_t *restrict r = (const int16_t *)(base + i * sl);
            const int16_t *restrict g = (const int16_t *)(base + sc + i * sl);
            const int16_t *restrict b = (const int16_t *)(base + 2 * sc + i * sl);
            const int32_t vr = cr[i], vg = cg[i], vb = cb[i];
            int32_t c = 0;
            for (Py_ssize_t j = 0; j < m; j++) c += WITHIN(r[j], vr, tol) & WITHIN(g[j], vg, tol) & WITHIN(b[j], vb, tol);
            counts[i] = c;
        }
    } else if (sl == 2) { /* the lines contiguous (columns, through a transposed view): a row at a time */
        for (Py_ssize_t j = 0; j < m; j++) {
            const int16_t *restrict r = (const int16_t *)(base + j * sp);
            const int16_t *restrict g = (const int16_t *)(base + sc + j * sp);
            const int16_t *restrict b = (const int16_t *)(base + 2 * sc + j * sp);
            for (Py_ssize_t i = 0; i < n; i++)
                counts[i] += WITHIN(r[i], cr[i], tol) & WITHIN(g[i], cg[i], tol) & WITHIN(b[i], cb[i], tol);
        }
    } else {
        for (Py_ssize_t i = 0; i < n; i++) {
            int32_t c = 0;
            for (Py_ssize_t j = 0; j < m; j++) {
                const char *p = base + i * sl + j * sp;
                c += WITHIN(*(const int16_t *)p, cr[i], tol) & WITHIN(*(const int16_t *)(p + sc), cg[i], tol) &
                     WITHIN(*(const int16_t *)(p + 2 * sc), cb[i], tol);
            }
            counts[i] = c;
        }
    }
}

/* near_counts(lines, colours, tolerance, out): lines an int16 array 3 x n x m (any strides),
 * colours int16 3 x n (any strides, 0 for one colour of every line), out a C-contiguous
 * 8-byte integer array of n. tolerance 0 .. 32767. */
static PyObject *near_counts_impl(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "near_counts takes 4 arguments");
        return NULL;
    }
    const long tol = PyLong_AsLong(args[2]);
    if (tol == -1 && PyErr_Occurred()) return NULL;
    Py_buffer in, col, out;
    if (PyObject_GetBuffer(args[0], &in, PyBUF_STRIDED_RO | PyBUF_FORMAT) < 0) return NULL;
    if (PyObject_GetBuffer(args[1], &col, PyBUF_STRIDED_RO | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&in);
        return NULL;
    }
    if (PyObject_GetBuffer(args[3], &out, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&in);
        PyBuffer_Release(&col);
        return NULL;
    }
    const int ok = in.ndim == 3 && in.shape[0] == 3 && in.itemsize == 2 && in.format && strcmp(in.format, "h") == 0 &&
                   col.ndim == 2 && col.shape[0] == 3 && col.shape[1] == in.shape[1] && col.itemsize == 2 &&
                   col.format && strcmp(col.format, "h") == 0 && out.itemsize == 8 && out.len == 8 * in.shape[1] &&
                   tol >= 0 && tol <= 32767;
    int32_t *counts = NULL;
    int16_t *colours = NULL;
    const Py_ssize_t n = ok ? in.shape[1] : 0, m = ok ? in.shape[2] : 0;
    if (ok) {
        counts = calloc((size_t)(n ? n : 1), sizeof(int32_t));
        colours = malloc(sizeof(int16_t) * 3 * (size_t)(n ? n : 1));
    }
    if (ok && counts && colours) {
        for (int c = 0; c < 3; c++)
            for (Py_ssize_t i = 0; i < n; i++)
                colours[c * n + i] = *(const int16_t *)((const char *)col.buf + c * col.strides[0] + i * col.strides[1]);
        near_counts((const char *)in.buf, in.strides[0], in.strides[1], in.strides[2], n, m, colours, (int)tol, counts);
        int64_t *dst = (int64_t *)out.buf;
        for (Py_ssize_t i = 0; i < n; i++) dst[i] = counts[i];
    }
    free(counts);
    free(colours);
    PyBuffer_Release(&in);
    PyBuffer_Release(&col);
    PyBuffer_Release(&out);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "near_counts: lines must be int16 3 x n x m, colours int16 3 x n, out 8-byte of n");
        return NULL;
    }
    if (!counts || !colours) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* ---- PDQs of many regions of one image, from its luma made once ------------------------ */

/* luma_plane(rgb, height, width, row_bytes, pixel_bytes) -> (bytes, stride): the image's PDQ
 * luma as float32 rows `stride` floats apart (padded as downsample_all pads its own, so that
 * a pass's transposes do not find every row in the same cache sets). rgb C-contiguous. */
static PyObject *luma_plane_impl(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "luma_plane takes 5 arguments");
        return NULL;
    }
    long n = PyLong_AsLong(args[1]), m = PyLong_AsLong(args[2]);
    Py_ssize_t row_bytes = PyLong_AsSsize_t(args[3]);
    long pixel_bytes = PyLong_AsLong(args[4]);
    if (PyErr_Occurred()) return NULL;
    if (n < 1 || m < 1 || n > (1 << 20) || m > (1 << 20) || pixel_bytes < 3 || row_bytes < m * pixel_bytes) {
        PyErr_SetString(PyExc_ValueError, "luma_plane: bad image shape");
        return NULL;
    }
    Py_buffer rgb;
    if (PyObject_GetBuffer(args[0], &rgb, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (rgb.len < (Py_ssize_t)(row_bytes * (n - 1) + m * pixel_bytes)) {
        PyBuffer_Release(&rgb);
        PyErr_SetString(PyExc_ValueError, "luma_plane: buffer too small for the shape");
        return NULL;
    }
    const ptrdiff_t stride = padded((int)m);
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(sizeof(float) * (size_t)n * (size_t)stride));
    if (out) {
        float *l = (float *)PyBytes_AS_STRING(out);
        Py_BEGIN_ALLOW_THREADS
        luma((const uint8_t *)rgb.buf, row_bytes, (int)pixel_bytes, (int)n, (int)m, l, stride);
        for (long r = 0; r < n; r++) memset(l + r * stride + m, 0, sizeof(float) * (size_t)(stride - m));
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&rgb);
    if (!out) return NULL;
    return Py_BuildValue("(Nn)", out, (Py_ssize_t)stride);
}

/* The (plane, height, width, row_floats, ...) arguments pdq_luma and pdq_luma_boxes share:
 * `want` arguments in all, a plane of at most 2^20 a side whose rows hold its width. -1 with
 * the Python error set. */
static int plane_args(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t want, const char *name,
                      long *n, long *m, Py_ssize_t *row_floats) {
    if (nargs != want) {
        PyErr_Format(PyExc_TypeError, "%s takes %zd arguments", name, want);
        return -1;
    }
    *n = PyLong_AsLong(args[1]);
    *m = PyLong_AsLong(args[2]);
    *row_floats = PyLong_AsSsize_t(args[3]);
    if (PyErr_Occurred()) return -1;
    if (*n < 1 || *m < 1 || *n > (1 << 20) || *m > (1 << 20) || *row_floats < *m) {
        PyErr_Format(PyExc_ValueError, "%s: bad plane shape", name);
        return -1;
    }
    return 0;
}

/* pdq_luma(luma, height, width, row_floats, dct_matrix) -> (bytes of the float32 16 x 16 DCT,
 * quality): pdq_float's mode 0 from a luma plane (luma_plane's, or a region of it: rows
 * row_floats apart, floats packed). */
static PyObject *pdq_luma_impl(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    long n, m;
    Py_ssize_t row_floats;
    if (plane_args(args, nargs, 5, "pdq_luma", &n, &m, &row_floats) < 0) return NULL;
    Py_buffer plane, dct;
    if (PyObject_GetBuffer(args[0], &plane, PyBUF_STRIDED_RO | PyBUF_FORMAT) < 0) return NULL;
    if (PyObject_GetBuffer(args[4], &dct, PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&plane);
        return NULL;
    }
    const int fits = plane.ndim == 2 && plane.itemsize == 4 && plane.format && strcmp(plane.format, "f") == 0 &&
                     plane.shape[0] == n && plane.shape[1] == m && plane.strides[1] == 4 &&
                     (n == 1 || plane.strides[0] == row_floats * 4);
    if (!fits || dct.len != (Py_ssize_t)sizeof(float) * 16 * SIDE) {
        PyBuffer_Release(&plane);
        PyBuffer_Release(&dct);
        PyErr_SetString(PyExc_ValueError, "pdq_luma: a float32 plane of the shape with rows row_floats apart, and a DCT matrix 16 x 64 float32");
        return NULL;
    }
    float *image = malloc(sizeof(float) * SIDE * SIDE);
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)sizeof(float) * 256);
    int rc = -1, quality = 0;
    if (image && out) {
        Py_BEGIN_ALLOW_THREADS
        rc = downsample_luma((const float *)plane.buf, row_floats, (int)n, (int)m, image);
        if (rc == 0) quality = dct_and_quality(image, (const float *)dct.buf, (float *)PyBytes_AS_STRING(out));
        Py_END_ALLOW_THREADS
    }
    free(image);
    PyBuffer_Release(&plane);
    PyBuffer_Release(&dct);
    if (rc != 0) {
        Py_XDECREF(out);
        return PyErr_NoMemory();
    }
    return Py_BuildValue("(Ni)", out, quality);
}

/* pdq_luma_boxes(plane, height, width, row_floats, boxes, dct_matrix) -> (bytes of k float32
 * 16 x 16 DCTs, tuple of k qualities): pdq_luma of each of k regions of one luma plane (rows
 * row_floats apart, C-contiguous), boxes an int64 k x 4 array of (left, top, right, bottom).
 * One call for a lookup's 18 windows or a stored image's 4 crops: each region is filtered on
 * its own exactly as pdq_luma filters it (the same floats), without a Python call and a
 * buffer request a box. */
static PyObject *pdq_luma_boxes_impl(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    long n, m;
    Py_ssize_t row_floats;
    if (plane_args(args, nargs, 6, "pdq_luma_boxes", &n, &m, &row_floats) < 0) return NULL;
    Py_buffer plane, boxes, dct;
    if (PyObject_GetBuffer(args[0], &plane, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    if (PyObject_GetBuffer(args[4], &boxes, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&plane);
        return NULL;
    }
    if (PyObject_GetBuffer(args[5], &dct, PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&plane);
        PyBuffer_Release(&boxes);
        return NULL;
    }
    const Py_ssize_t k = boxes.itemsize == 8 ? boxes.len / 32 : 0;
    int ok = plane.itemsize == 4 && plane.format && strcmp(plane.format, "f") == 0 &&
             plane.len >= (Py_ssize_t)(4 * ((n - 1) * row_floats + m)) && boxes.itemsize == 8 && boxes.format &&
             (strcmp(boxes.format, "q") == 0 || strcmp(boxes.format, "l") == 0) && boxes.len == 32 * k &&
             dct.len == (Py_ssize_t)sizeof(float) * 16 * SIDE;
    const int64_t *b = (const int64_t *)boxes.buf;
    for (Py_ssize_t i = 0; ok && i < k; i++)
        ok = 0 <= b[4 * i] && b[4 * i] < b[4 * i + 2] && b[4 * i + 2] <= m && 0 <= b[4 * i + 1] &&
             b[4 * i + 1] < b[4 * i + 3] && b[4 * i + 3] <= n;
    if (!ok) {
        PyBuffer_Release(&plane);
        PyBuffer_Release(&boxes);
        PyBuffer_Release(&dct);
        PyErr_SetString(PyExc_ValueError, "pdq_luma_boxes: a float32 plane of the shape, int64 boxes (k x 4) inside it, and a DCT matrix 16 x 64 float32");
        return NULL;
    }
    /* Boxes sharing their columns (left and right) are filtered as one group (see
     * downsample_column_group), in the order of their first box; a 64 x 64 box on its own. */
    float (*images)[SIDE * SIDE] = malloc(sizeof(float) * SIDE * SIDE * (size_t)(k ? k : 1));
    int *qualities = malloc(sizeof(int) * (size_t)(k ? k : 1));
    int *members = malloc(sizeof(int) * 3 * (size_t)(k ? k : 1));
    char *done = calloc((size_t)(k ? k : 1), 1);
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)sizeof(float) * 256 * k);
    int rc = -1;
    if (images && qualities && members && done && out) {
        float *dcts = (float *)PyBytes_AS_STRING(out);
        const float *l = (const float *)plane.buf;
        int *tops = members + k, *heights = members + 2 * k;
        rc = 0;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; rc == 0 && i < k; i++) {
            if (done[i]) continue;
            const int64_t left = b[4 * i], right = b[4 * i + 2];
            const int square_i = right - left == SIDE && b[4 * i + 3] - b[4 * i + 1] == SIDE;
            int count = 0;
            for (Py_ssize_t j = i; j < k && !(square_i && count); j++) {
                const int64_t h = b[4 * j + 3] - b[4 * j + 1];
                if (done[j] || b[4 * j] != left || b[4 * j + 2] != right) continue;
                if (j != i && (square_i || (right - left == SIDE && h == SIDE))) continue;
                members[count] = (int)j;
                tops[count] = (int)b[4 * j + 1];
                heights[count] = (int)h;
                count++;
                done[j] = 1;
            }
            float (*group)[SIDE * SIDE] = images; /* each group's buffers, hashed before the next group */
            if (count == 1) {
                rc = downsample_luma(l + tops[0] * row_floats + left, row_floats, heights[0], (int)(right - left), group[0]);
            } else {
                rc = downsample_column_group(l + left, row_floats, (int)(right - left), tops, heights, count, group);
            }
            for (int g = 0; rc == 0 && g < count; g++)
                qualities[members[g]] = dct_and_quality(group[g], (const float *)dct.buf, dcts + 256 * members[g]);
        }
        Py_END_ALLOW_THREADS
    }
    free(images);
    free(members);
    free(done);
    PyBuffer_Release(&plane);
    PyBuffer_Release(&boxes);
    PyBuffer_Release(&dct);
    PyObject *q = rc == 0 ? PyTuple_New(k) : NULL;
    if (rc != 0 || !q) {
        free(qualities);
        Py_XDECREF(out);
        Py_XDECREF(q);
        return rc != 0 ? PyErr_NoMemory() : NULL;
    }
    for (Py_ssize_t i = 0; i < k; i++) PyTuple_SET_ITEM(q, i, PyLong_FromLong(qualities[i]));
    free(qualities);
    return Py_BuildValue("(NN)", out, q);
}

/* ---- regions' detail and colours from one summed-area table (derived.Detail) ----------- */

/* An (H + 1) x (W + 1) x 3 summed-area table, int32 or float64 (exact integers either way). */
typedef struct {
    const void *buf;
    Py_ssize_t rows, cols;
    int wide;
} sums_t;

static inline double sum_at(const sums_t *s, Py_ssize_t y, Py_ssize_t x, int c) {
    const Py_ssize_t i = (y * s->cols + x) * 3 + c;
    return s->wide ? ((const double *)s->buf)[i] : (double)((const int32_t *)s->buf)[i];
}

#define THUMB 32

/* derived.Detail's spread of one region (derived._spread of its 32 x 32 exact area averages'
 * luma): the table bilinear inside each pixel at the cells' edges, as Detail._integral. The
 * same formula in double; the sums may be added in another order than numpy's, which moves
 * the spread by ~1e-13, and the caller decides by it only when it is _ROUNDING (0.51) or
 * more from the threshold. */
/* The table's values at the cells' edges, bilinear inside each pixel (Detail._integral): one
 * loop for each kind of table, so that the compiler loads without a test a value. */
#define CUMULATIVE(TYPE)                                                                                 \
    do {                                                                                                 \
        const TYPE *t = (const TYPE *)s->buf;                                                            \
        for (int i = 0; i <= THUMB; i++) {                                                               \
            const TYPE *r0 = t + y0[i] * s->cols * 3, *r1 = r0 + s->cols * 3;                            \
            const double wy = 1 - fy[i], vy = fy[i];                                                     \
            for (int j = 0; j <= THUMB; j++) {                                                           \
                const Py_ssize_t a = x0[j] * 3;                                                          \
                for (int c = 0; c < 3; c++) {                                                            \
                    const double l = (double)r0[a + c] * wy + (double)r1[a + c] * vy;                    \
                    const double r = (double)r0[a + 3 + c] * wy + (double)r1[a + 3 + c] * vy;            \
                    cum[i][j][c] = l * (1 - fx[j]) + r * fx[j];                                          \
                }                                                                                        \
            }                                                                                            \
        }                                                                                                \
    } while (0)

HOT static double spread_of(const sums_t *s, Py_ssize_t left, Py_ssize_t top, Py_ssize_t right, Py_ssize_t bottom) {
    const double width = (double)(right - left), height = (double)(bottom - top);
    double fy[THUMB + 1], fx[THUMB + 1];
    Py_ssize_t y0[THUMB + 1], x0[THUMB + 1];
    for (int i = 0; i <= THUMB; i++) {
        const double y = (double)top + (double)i * (height / THUMB), x = (double)left + (double)i * (width / THUMB);
        y0[i] = (Py_ssize_t)y < s->rows - 2 ? (Py_ssize_t)y : s->rows - 2;
        x0[i] = (Py_ssize_t)x < s->cols - 2 ? (Py_ssize_t)x : s->cols - 2;
        fy[i] = y - (double)y0[i];
        fx[i] = x - (double)x0[i];
    }
    static const double weights[3] = {0.299, 0.587, 0.114};
    double cum[THUMB + 1][THUMB + 1][3];
    if (s->wide) CUMULATIVE(double);
    else CUMULATIVE(int32_t);
    const double area = (width / THUMB) * (height / THUMB);
    double luma[THUMB][THUMB], rows[THUMB] = {0}, cols[THUMB] = {0}, all = 0;
    for (int i = 0; i < THUMB; i++)
        for (int j = 0; j < THUMB; j++) {
            double v = 0;
            for (int c = 0; c < 3; c++)
                v += (cum[i + 1][j + 1][c] - cum[i][j + 1][c] - cum[i + 1][j][c] + cum[i][j][c]) * weights[c];
            luma[i][j] = v / area;
            rows[i] += luma[i][j];
            cols[j] += luma[i][j];
            all += luma[i][j];
        }
    double mean = 0;
    for (int i = 0; i < THUMB; i++)
        for (int j = 0; j < THUMB; j++) {
            luma[i][j] = luma[i][j] - cols[j] / THUMB - rows[i] / THUMB + all / (THUMB * THUMB);
            mean += luma[i][j];
        }
    mean /= THUMB * THUMB;
    double squares = 0;
    for (int i = 0; i < THUMB; i++)
        for (int j = 0; j < THUMB; j++) squares += (luma[i][j] - mean) * (luma[i][j] - mean);
    return sqrt(squares / (THUMB * THUMB));
}
#undef CUMULATIVE

/* colour.layout_from_sums of one region into out[27]: each of the 3 x 3 cells' mean colour,
 * floor(mean + 0.5) clipped to 0..255, the cells split as integer division does. Exact
 * integer sums in double, one IEEE divide, as numpy's: the same bytes. -1 for an empty cell. */
static int layout_of(const sums_t *s, Py_ssize_t left, Py_ssize_t top, Py_ssize_t right, Py_ssize_t bottom, uint8_t *out) {
    Py_ssize_t ys[4], xs[4];
    for (int i = 0; i < 4; i++) {
        ys[i] = top + (i * (bottom - top)) / 3;
        xs[i] = left + (i * (right - left)) / 3;
    }
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            const Py_ssize_t area = (ys[a + 1] - ys[a]) * (xs[b + 1] - xs[b]);
            if (area <= 0) return -1;
            for (int c = 0; c < 3; c++) {
                const double cell = sum_at(s, ys[a + 1], xs[b + 1], c) - sum_at(s, ys[a], xs[b + 1], c) -
                                    sum_at(s, ys[a + 1], xs[b], c) + sum_at(s, ys[a], xs[b], c);
                const double v = floor(cell / (double)area + 0.5);
                out[(a * 3 + b) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    return 0;
}

/* region_checks(sums, boxes, what) -> bytes: for each of k boxes (int64 k x 4, each inside the
 * table's image), what 0: its spread (float64, each side at least THUMB); what 1: its colour
 * layout (27 bytes). sums: a C-contiguous (H + 1) x (W + 1) x 3 table, int32 or float64. */
static PyObject *region_checks_impl(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "region_checks takes 3 arguments");
        return NULL;
    }
    const long what = PyLong_AsLong(args[2]);
    if (what == -1 && PyErr_Occurred()) return NULL;
    Py_buffer table, boxes;
    if (PyObject_GetBuffer(args[0], &table, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_ND) < 0) return NULL;
    if (PyObject_GetBuffer(args[1], &boxes, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&table);
        return NULL;
    }
    const int wide = table.format && strcmp(table.format, "d") == 0;
    const int narrow = table.format && (strcmp(table.format, "i") == 0 || (strcmp(table.format, "l") == 0 && table.itemsize == 4));
    const Py_ssize_t k = boxes.itemsize == 8 ? boxes.len / 32 : 0;
    int ok = (what == 0 || what == 1) && (wide || narrow) && table.ndim == 3 && table.shape[2] == 3 &&
             table.shape[0] >= 2 && table.shape[1] >= 2 && boxes.itemsize == 8 && boxes.format &&
             (strcmp(boxes.format, "q") == 0 || strcmp(boxes.format, "l") == 0) && boxes.len == 32 * k;
    const sums_t s = {table.buf, ok ? table.shape[0] : 0, ok ? table.shape[1] : 0, wide};
    const int64_t *b = (const int64_t *)boxes.buf;
    for (Py_ssize_t i = 0; ok && i < k; i++) {
        const int64_t left = b[4 * i], top = b[4 * i + 1], right = b[4 * i + 2], bottom = b[4 * i + 3];
        ok = 0 <= left && left < right && right < s.cols && 0 <= top && top < bottom && bottom < s.rows &&
             (what == 1 || (right - left >= THUMB && bottom - top >= THUMB));
    }
    PyObject *out = ok ? PyBytes_FromStringAndSize(NULL, k * (what == 0 ? (Py_ssize_t)sizeof(double) : 27)) : NULL;
    int rc = 0;
    if (out) {
        char *dst = PyBytes_AS_STRING(out);
        for (Py_ssize_t i = 0; rc == 0 && i < k; i++) {
            if (what == 0) ((double *)dst)[i] = spread_of(&s, b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]);
            else rc = layout_of(&s, b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3], (uint8_t *)dst + 27 * i);
        }
    }
    PyBuffer_Release(&table);
    PyBuffer_Release(&boxes);
    if (!ok || rc != 0) {
        Py_XDECREF(out);
        PyErr_SetString(PyExc_ValueError, "region_checks: an int32 or float64 (H + 1) x (W + 1) x 3 table, int64 boxes (k x 4) inside its image (spreads: sides of at least 32; layouts: cells not empty), what 0 or 1");
        return NULL;
    }
    return out;
}

/* covered_layouts(sums, boxes, fill) -> bytes: colour.covered_layout of the whole image (the
 * table's) with each of k boxes (int64 k x 4, clipped to the image) filled with `fill` (3
 * uint8), 27 bytes a box: each cell's sum less what the box covers of it, plus the fill's.
 * Exact integer sums in double and one divide a value, as numpy's: the same bytes. */
static PyObject *covered_layouts_impl(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "covered_layouts takes 3 arguments");
        return NULL;
    }
    Py_buffer table, boxes, fill;
    if (PyObject_GetBuffer(args[0], &table, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_ND) < 0) return NULL;
    if (PyObject_GetBuffer(args[1], &boxes, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&table);
        return NULL;
    }
    if (PyObject_GetBuffer(args[2], &fill, PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&table);
        PyBuffer_Release(&boxes);
        return NULL;
    }
    const int wide = table.format && strcmp(table.format, "d") == 0;
    const int narrow = table.format && (strcmp(table.format, "i") == 0 || (strcmp(table.format, "l") == 0 && table.itemsize == 4));
    const Py_ssize_t k = boxes.itemsize == 8 ? boxes.len / 32 : 0;
    const int ok = (wide || narrow) && table.ndim == 3 && table.shape[2] == 3 && table.shape[0] >= 4 &&
                   table.shape[1] >= 4 && boxes.itemsize == 8 && boxes.format &&
                   (strcmp(boxes.format, "q") == 0 || strcmp(boxes.format, "l") == 0) && boxes.len == 32 * k && fill.len == 3;
    PyObject *out = ok ? PyBytes_FromStringAndSize(NULL, 27 * k) : NULL;
    if (out) {
        const sums_t s = {table.buf, table.shape[0], table.shape[1], wide};
        const Py_ssize_t height = s.rows - 1, width = s.cols - 1;
        const uint8_t *colour = (const uint8_t *)fill.buf;
        const int64_t *b = (const int64_t *)boxes.buf;
        uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(out);
        Py_ssize_t ys[4], xs[4];
        for (int i = 0; i < 4; i++) {
            ys[i] = (i * height) / 3;
            xs[i] = (i * width) / 3;
        }
#define CLIP(v, lo, hi) ((v) < (lo) ? (lo) : (v) > (hi) ? (hi) : (v))
        for (Py_ssize_t n = 0; n < k; n++) {
            const Py_ssize_t left = b[4 * n], top = b[4 * n + 1], right = b[4 * n + 2], bottom = b[4 * n + 3];
            for (int a = 0; a < 3; a++)
                for (int c3 = 0; c3 < 3; c3++) {
                    const Py_ssize_t area = (ys[a + 1] - ys[a]) * (xs[c3 + 1] - xs[c3]);
                    const Py_ssize_t oy0 = CLIP(ys[a], top, bottom), oy1 = CLIP(ys[a + 1], top, bottom);
                    const Py_ssize_t ox0 = CLIP(xs[c3], left, right), ox1 = CLIP(xs[c3 + 1], left, right);
                    for (int c = 0; c < 3; c++) {
                        const double cell = sum_at(&s, ys[a + 1], xs[c3 + 1], c) - sum_at(&s, ys[a], xs[c3 + 1], c) -
                                            sum_at(&s, ys[a + 1], xs[c3], c) + sum_at(&s, ys[a], xs[c3], c);
                        const double under = sum_at(&s, oy1, ox1, c) - sum_at(&s, oy0, ox1, c) - sum_at(&s, oy1, ox0, c) +
                                             sum_at(&s, oy0, ox0, c);
                        const double total = cell - under + (double)((oy1 - oy0) * (ox1 - ox0)) * (double)colour[c];
                        const double v = floor(total / (double)area + 0.5);
                        dst[27 * n + (a * 3 + c3) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                    }
                }
        }
#undef CLIP
    }
    PyBuffer_Release(&table);
    PyBuffer_Release(&boxes);
    PyBuffer_Release(&fill);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "covered_layouts: an int32 or float64 (H + 1) x (W + 1) x 3 table (H, W >= 3), int64 boxes (k x 4), 3 fill bytes");
        return NULL;
    }
    return out;
}

/* planes(rgb, out): out (int16, C-contiguous 3 x h x w) = rgb (uint8 h x w x 3, any strides:
 * the detectors' crops, every k-th pixel, reversed rows, transposed views) channel by channel,
 * widened: regions.planes, which numpy did by a strided gather a value at a time (about a
 * millisecond a 512-pixel work copy, three or more a lookup). */
HOT static void split_widen(const char *base, Py_ssize_t s0, Py_ssize_t s1, Py_ssize_t s2, Py_ssize_t h, Py_ssize_t w,
                            int16_t *out) {
    int16_t *restrict r = out, *restrict g = out + h * w, *restrict b = out + 2 * h * w;
    for (Py_ssize_t y = 0; y < h; y++) {
        const uint8_t *restrict p = (const uint8_t *)base + y * s0;
        const Py_ssize_t o = y * w;
        if (s1 == 3 && s2 == 1) {
            for (Py_ssize_t x = 0; x < w; x++) {
                r[o + x] = p[3 * x];
                g[o + x] = p[3 * x + 1];
                b[o + x] = p[3 * x + 2];
            }
        } else {
            for (Py_ssize_t x = 0; x < w; x++) {
                r[o + x] = p[x * s1];
                g[o + x] = p[x * s1 + s2];
                b[o + x] = p[x * s1 + 2 * s2];
            }
        }
    }
}

static PyObject *planes_impl(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "planes takes 2 arguments");
        return NULL;
    }
    Py_buffer in, out;
    if (PyObject_GetBuffer(args[0], &in, PyBUF_STRIDED_RO | PyBUF_FORMAT) < 0) return NULL;
    if (PyObject_GetBuffer(args[1], &out, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&in);
        return NULL;
    }
    const int ok = in.ndim == 3 && in.shape[2] == 3 && in.itemsize == 1 && in.format && strcmp(in.format, "B") == 0 &&
                   out.itemsize == 2 && out.format && strcmp(out.format, "h") == 0 &&
                   out.len == 2 * 3 * in.shape[0] * in.shape[1];
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        split_widen((const char *)in.buf, in.strides[0], in.strides[1], in.strides[2], in.shape[0], in.shape[1],
                    (int16_t *)out.buf);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "planes: rgb must be uint8 h x w x 3, out int16 3 x h x w C-contiguous");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"pdq_float", (PyCFunction)(void (*)(void))pdq_float_impl, METH_FASTCALL,
     "pdq_float(rgb, height, width, row_bytes, pixel_bytes, dct_matrix, mode) -> (dcts, qualities)"},
    {"grey_thumbnail", (PyCFunction)(void (*)(void))grey_thumbnail_impl, METH_FASTCALL,
     "grey_thumbnail(pixels, height, width, row_bytes, pixel_bytes, out_width, out_height) -> bytes"},
    {"row_medians", (PyCFunction)(void (*)(void))row_medians_impl, METH_FASTCALL,
     "row_medians(samples, out): each row's median of int16 values 0..255, into out"},
    {"luma_plane", (PyCFunction)(void (*)(void))luma_plane_impl, METH_FASTCALL,
     "luma_plane(rgb, height, width, row_bytes, pixel_bytes) -> (float32 rows, stride)"},
    {"pdq_luma", (PyCFunction)(void (*)(void))pdq_luma_impl, METH_FASTCALL,
     "pdq_luma(luma, height, width, row_floats, dct_matrix) -> (dct, quality)"},
    {"pdq_luma_boxes", (PyCFunction)(void (*)(void))pdq_luma_boxes_impl, METH_FASTCALL,
     "pdq_luma_boxes(luma, height, width, row_floats, boxes, dct_matrix) -> (dcts, qualities)"},
    {"region_checks", (PyCFunction)(void (*)(void))region_checks_impl, METH_FASTCALL,
     "region_checks(sums, boxes, what) -> bytes: each box's detail spread (what 0) or colour layout (what 1)"},
    {"covered_layouts", (PyCFunction)(void (*)(void))covered_layouts_impl, METH_FASTCALL,
     "covered_layouts(sums, boxes, fill) -> bytes: the image's colour layout with each box filled, 27 bytes a box"},
    {"planes", (PyCFunction)(void (*)(void))planes_impl, METH_FASTCALL,
     "planes(rgb, out): out (int16 3 x h x w) = rgb (uint8 h x w x 3, any strides), channel by channel"},
    {"near_counts", (PyCFunction)(void (*)(void))near_counts_impl, METH_FASTCALL,
     "near_counts(lines, colours, tolerance, out): pixels of each line within tolerance of its colour, into out"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_pdq_kernel", NULL, -1, methods};

PyMODINIT_FUNC PyInit__pdq_kernel(void) {
    PyObject *m = PyModule_Create(&module);
    /* pdq_float takes strided crops (kernel.py asks, so a build older than its Python copies). */
    if (m && PyModule_AddIntConstant(m, "STRIDED_RGB", 1) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
