#include "CKernels.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

// y = x * w^T for few rows of x (decoding: one row per sentence or beam hypothesis).
//
// sgemm packs all of w on every call; with a handful of rows that copy costs as much as the
// product itself (most of a decoding step's time was OpenBLAS's packing). Here w is streamed
// once, row by row, straight from where it lies, and each output is one dot product.
//
// Every output is computed in the same order, wherever it falls in a tile and however the
// columns are split among threads: eight lanes, lane l summing k = l, l + 8, ... by fused
// multiply-adds; then the fixed tree (l, l + 4) -> (l, l + 2) -> (0, 1); then the k % 8 tail
// in order. The scalar path replays exactly that, so results do not depend on the CPU, the
// thread count or the number of rows.
//
// `ckernels_gemm_nt_half` reads w as IEEE binary16 (Float16 parameters), converting each value
// to Float32 as it is loaded. The conversion is exact, and the order is the same, so it gives
// exactly the bits of `ckernels_gemm_nt` on the converted matrix while reading half the bytes:
// decoding one sentence is bound by streaming the weights from memory.

static inline float reduce8(const float a[8]) {
    float h0 = a[0] + a[4], h1 = a[1] + a[5], h2 = a[2] + a[6], h3 = a[3] + a[7];
    float g0 = h0 + h2, g1 = h1 + h3;
    return g0 + g1;
}

/// binary16 -> binary32, exact (as F16C's vcvtph2ps: subnormals kept, NaNs quieted).
static inline float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
    uint32_t bits;
    if (exponent == 0x1fu) {
        bits = sign | 0x7f800000u | (mantissa << 13) | (mantissa ? 0x400000u : 0);
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        bits = sign;
    } else {  // subnormal: normalise
        int shift = 0;
        while (!(mantissa & 0x400u)) {
            mantissa <<= 1;
            shift++;
        }
        bits = sign | ((uint32_t)(113 - shift) << 23) | ((mantissa & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/// Element p of row w: Float32, or binary16 converted.
static inline float weight_at(const void *w, int half, int64_t p) {
    return half ? half_to_float(((const uint16_t *)w)[p]) : ((const float *)w)[p];
}

static float dot_scalar(const float *x, const void *w, int half, int64_t k) {
    float a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t k8 = k & ~(int64_t)7;
    for (int64_t p = 0; p < k8; p += 8) {
        for (int l = 0; l < 8; l++) a[l] = fmaf(x[p + l], weight_at(w, half, p + l), a[l]);
    }
    float s = reduce8(a);
    for (int64_t p = k8; p < k; p++) s = fmaf(x[p], weight_at(w, half, p), s);
    return s;
}

__attribute__((target("avx2,fma")))
static inline float reduce8_avx2(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));   // l + (l + 4)
    __m128 g = _mm_add_ps(h, _mm_movehl_ps(h, h));                                   // l + (l + 2)
    __m128 s = _mm_add_ss(g, _mm_shuffle_ps(g, g, 1));                                // 0 + 1
    return _mm_cvtss_f32(s);
}

// Eight consecutive weights of a row as Float32 (binary16 ones converted by F16C).
__attribute__((target("avx2,fma,f16c"), always_inline))
static inline __m256 load_weights(const void *w, const int half, int64_t p) {
    return half ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + p)))
                : _mm256_loadu_ps((const float *)w + p);
}

// An R x J tile (R rows of x against J rows of w), R * J <= 12: 12 accumulators at most, so the
// loop keeps every partial sum in a register. Constant R, J and half unroll it. A tile's
// accumulators are independent chains of fused multiply-adds: with one row, 3 columns would
// leave the loop waiting on FMA latency when the weights come from cache, hence 1 x 6 and 2 x 6
// (Float16 weights from L3, 1 x 1536 x 512: 61-83 -> 46-69 us; 1 x 12 streams slowed the
// 8000-row vocabulary matrix).
//
// With `ahead` rows of w after this tile's first one (`prefetched` of them, 0 for none), each
// stream also asks for the cache line of row j + ahead at the offset it reads, once per 64
// bytes: the hardware prefetcher alone does not keep six interleaved streams fed from DRAM
// (1 x 2048 x 512 Float16 weights from DRAM, Intel Xeon, 3 alternating runs: ~325 -> ~225
// us). A hint, not a load: it changes no result.
__attribute__((target("avx2,fma,f16c"), always_inline))
static inline void tile_avx2(const float *x, int64_t ldx, const void *w, int64_t ldw, int64_t k,
                             float *y, int64_t ldy, int accumulate, const int R, const int J, const int half,
                             int64_t ahead, int prefetched) {
    const size_t element = half ? sizeof(uint16_t) : sizeof(float);
    const char *future = prefetched > 0 ? (const char *)w + ahead * ldw * element : (const char *)w;
    __m256 acc[12];
    for (int i = 0; i < R * J; i++) acc[i] = _mm256_setzero_ps();
    int64_t k8 = k & ~(int64_t)7;
    for (int64_t p = 0; p < k8; p += 8) {
        if (((p * (int64_t)element) & 63) == 0)
            for (int j = 0; j < prefetched; j++) _mm_prefetch(future + (j * ldw + p) * element, _MM_HINT_T0);
        __m256 wv[12];
        for (int j = 0; j < J; j++) wv[j] = load_weights((const char *)w + j * ldw * element, half, p);
        for (int r = 0; r < R; r++) {
            __m256 xv = _mm256_loadu_ps(x + r * ldx + p);
            for (int j = 0; j < J; j++) acc[r * J + j] = _mm256_fmadd_ps(xv, wv[j], acc[r * J + j]);
        }
    }
    for (int r = 0; r < R; r++) {
        for (int j = 0; j < J; j++) {
            float s = reduce8_avx2(acc[r * J + j]);
            const void *row = (const char *)w + j * ldw * element;
            for (int64_t p = k8; p < k; p++) s = fmaf(x[r * ldx + p], weight_at(row, half, p), s);
            float *out = y + r * ldy + j;
            *out = accumulate ? *out + s : s;
        }
    }
}

// How many rows of w ahead the tiles prefetch: about 12 KB, at least the 6 of a tile (measured
// with rows of 512 and 2048 weights, Float32 and Float16: for 512 Float16 weights a row, one tile
// ahead, 6 KB, was slower than two).
static inline int64_t prefetch_rows_ahead(int64_t ldw, size_t element) {
    int64_t rows = (int64_t)(12288 / ((size_t)ldw * element));
    return rows < 6 ? 6 : rows;
}

// The rows of w at j + ahead, j + ahead + 1, ... that exist, up to J.
static inline int prefetch_count(int64_t j, int64_t ahead, int64_t n, int J) {
    int64_t left = n - (j + ahead);
    return left <= 0 ? 0 : left < J ? (int)left : J;
}

// Both macros read the enclosing function's x, rows, ldx, w, n, ldw, k, y, ldy, accumulate, half
// and ahead. Only the first row tile of a column block prefetches: the others find w in cache.
#define TILE(R, J, r, wj, pf) \
    tile_avx2(x + (r) * ldx, ldx, wj, ldw, k, y + (r) * ldy + j, ldy, accumulate, R, J, half, ahead, pf)
#define TILE_ROWS(J)                                                                                 \
    do {                                                                                             \
        int pf = prefetch_count(j, ahead, n, J);                                                     \
        int64_t r = 0;                                                                               \
        for (; r + 4 <= rows; r += 4, pf = 0) TILE(4, J, r, wj, pf);                                 \
        switch (rows - r) {                                                                          \
        case 3: TILE(3, J, r, wj, pf); break;                                                        \
        case 2: TILE(2, J, r, wj, pf); break;                                                        \
        case 1: TILE(1, J, r, wj, pf); break;                                                        \
        default: break;                                                                              \
        }                                                                                            \
    } while (0)

// Columns outside, rows inside: three rows of w stay in L1 while every row of x passes. One or
// two rows take 6 columns at a time first (the same sums, so the same bits).
#define GEMM_NT_COLUMNS()                                                                           \
    do {                                                                                             \
        const size_t element = half ? sizeof(uint16_t) : sizeof(float);                              \
        const int64_t ahead = prefetch_rows_ahead(ldw, element);                                     \
        int64_t j = 0;                                                                               \
        if (rows == 1) {                                                                             \
            for (; j + 6 <= n; j += 6)                                                               \
                TILE(1, 6, 0, (const char *)w + j * ldw * element, prefetch_count(j, ahead, n, 6));  \
        } else if (rows == 2) {                                                                      \
            for (; j + 6 <= n; j += 6)                                                               \
                TILE(2, 6, 0, (const char *)w + j * ldw * element, prefetch_count(j, ahead, n, 6));  \
        }                                                                                            \
        for (; j + 3 <= n; j += 3) { const void *wj = (const char *)w + j * ldw * element; TILE_ROWS(3); } \
        if (n - j == 2) { const void *wj = (const char *)w + j * ldw * element; TILE_ROWS(2); }    \
        else if (n - j == 1) { const void *wj = (const char *)w + j * ldw * element; TILE_ROWS(1); } \
    } while (0)

__attribute__((target("avx2,fma,f16c")))
static void gemm_nt_avx2(const float *x, int64_t rows, int64_t ldx, const float *w, int64_t n, int64_t ldw,
                         int64_t k, float *y, int64_t ldy, int accumulate) {
    const int half = 0;
    GEMM_NT_COLUMNS();
}

__attribute__((target("avx2,fma,f16c")))
static void gemm_nt_half_avx2(const float *x, int64_t rows, int64_t ldx, const uint16_t *w, int64_t n,
                              int64_t ldw, int64_t k, float *y, int64_t ldy, int accumulate) {
    const int half = 1;
    GEMM_NT_COLUMNS();
}

int ckernels_gemm_nt_uses_avx2(void) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c") ? 1
                                                                                                            : 0;
}

static void gemm_nt_scalar(const float *x, int64_t rows, int64_t ldx, const void *w, int half, int64_t n,
                           int64_t ldw, int64_t k, float *y, int64_t ldy, int accumulate) {
    const size_t element = half ? sizeof(uint16_t) : sizeof(float);
    for (int64_t j = 0; j < n; j++) {
        for (int64_t r = 0; r < rows; r++) {
            float s = dot_scalar(x + r * ldx, (const char *)w + j * ldw * element, half, k);
            float *out = y + r * ldy + j;
            *out = accumulate ? *out + s : s;
        }
    }
}

void ckernels_gemm_nt_scalar(const float *x, int64_t rows, int64_t ldx, const float *w, int64_t n, int64_t ldw,
                             int64_t k, float *y, int64_t ldy, int accumulate) {
    gemm_nt_scalar(x, rows, ldx, w, 0, n, ldw, k, y, ldy, accumulate);
}

void ckernels_gemm_nt_half_scalar(const float *x, int64_t rows, int64_t ldx, const uint16_t *w, int64_t n,
                                  int64_t ldw, int64_t k, float *y, int64_t ldy, int accumulate) {
    gemm_nt_scalar(x, rows, ldx, w, 1, n, ldw, k, y, ldy, accumulate);
}

void ckernels_gemm_nt(const float *x, int64_t rows, int64_t ldx, const float *w, int64_t n, int64_t ldw,
                      int64_t k, float *y, int64_t ldy, int accumulate) {
    if (rows <= 0 || n <= 0) return;
    if (ckernels_gemm_nt_uses_avx2()) {
        gemm_nt_avx2(x, rows, ldx, w, n, ldw, k, y, ldy, accumulate);
    } else {
        ckernels_gemm_nt_scalar(x, rows, ldx, w, n, ldw, k, y, ldy, accumulate);
    }
}

void ckernels_gemm_nt_half(const float *x, int64_t rows, int64_t ldx, const uint16_t *w, int64_t n, int64_t ldw,
                           int64_t k, float *y, int64_t ldy, int accumulate) {
    if (rows <= 0 || n <= 0) return;
    if (ckernels_gemm_nt_uses_avx2()) {
        gemm_nt_half_avx2(x, rows, ldx, w, n, ldw, k, y, ldy, accumulate);
    } else {
        ckernels_gemm_nt_half_scalar(x, rows, ldx, w, n, ldw, k, y, ldy, accumulate);
    }
}
