#include "CKernels.h"
#include <immintrin.h>

// Elementwise kernels whose Swift loops did not vectorize (branchy ReLU, lane-switching dropout):
// compiled at -O3 for the baseline ISA, with an AVX2 dropout chosen at run time.

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void philox_block(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                                uint32_t k0, uint32_t k1, uint32_t out[4]) {
    uint32_t x0 = c0, x1 = c1, x2 = c2, x3 = c3;
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * x0, p1 = (uint64_t)PHILOX_M1 * x2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        x0 = hi1 ^ x1 ^ k0; x1 = lo1; x2 = hi0 ^ x3 ^ k1; x3 = lo0;
        k0 += PHILOX_W0; k1 += PHILOX_W1;
    }
    out[0] = x0; out[1] = x1; out[2] = x2; out[3] = x3;
}

void ckernels_philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1,
                            uint32_t out[4]) {
    philox_block(c0, c1, c2, c3, k0, k1, out);
}

void ckernels_dropout_scalar(const float *src, float *dst, int64_t start, int64_t end,
                             uint32_t key0, uint32_t key1, uint32_t site, uint32_t micro_batch, uint32_t step,
                             uint32_t threshold, float scale) {
    int64_t i = start;
    while (i < end) {
        int64_t block = i >> 3;
        uint32_t w[4];
        philox_block((uint32_t)block, site, micro_batch, step, key0, key1, w);
        int64_t stop = (block + 1) << 3;
        if (stop > end) stop = end;
        for (; i < stop; i++) {
            int lane = (int)(i & 7);
            uint32_t word = w[lane >> 1];
            uint32_t u = (lane & 1) ? (word >> 16) : (word & 0xFFFFu);
            dst[i] = u >= threshold ? src[i] * scale : 0.0f;
        }
    }
}

// 32x32 -> 64-bit products of 8 lanes by a constant, split into high and low words.
__attribute__((target("avx2")))
static inline void mulhilo8(__m256i a, __m256i m, __m256i *hi, __m256i *lo) {
    __m256i even = _mm256_mul_epu32(a, m);                                   // lanes 0,2,4,6
    __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);             // lanes 1,3,5,7
    __m256i evenHi = _mm256_srli_epi64(even, 32);
    __m256i oddHi = _mm256_and_si256(odd, _mm256_set1_epi64x((long long)0xFFFFFFFF00000000ull));
    *hi = _mm256_or_si256(evenHi, oddHi);
    __m256i evenLo = _mm256_and_si256(even, _mm256_set1_epi64x(0xFFFFFFFFll));
    *lo = _mm256_or_si256(evenLo, _mm256_slli_epi64(odd, 32));
}

// 8 consecutive blocks (64 elements) from `block` on, fully inside the range.
__attribute__((target("avx2")))
static void dropout64_avx2(const float *src, float *dst, int64_t block,
                           uint32_t key0, uint32_t key1, uint32_t site, uint32_t micro_batch, uint32_t step,
                           uint32_t threshold, float scale) {
    __m256i x0 = _mm256_add_epi32(_mm256_set1_epi32((int)(uint32_t)block), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i x1 = _mm256_set1_epi32((int)site), x2 = _mm256_set1_epi32((int)micro_batch), x3 = _mm256_set1_epi32((int)step);
    const __m256i m0 = _mm256_set1_epi64x(PHILOX_M0), m1 = _mm256_set1_epi64x(PHILOX_M1);
    uint32_t k0 = key0, k1 = key1;
    for (int r = 0; r < 10; r++) {
        __m256i hi0, lo0, hi1, lo1;
        mulhilo8(x0, m0, &hi0, &lo0);
        mulhilo8(x2, m1, &hi1, &lo1);
        __m256i kk0 = _mm256_set1_epi32((int)k0), kk1 = _mm256_set1_epi32((int)k1);
        x0 = _mm256_xor_si256(_mm256_xor_si256(hi1, x1), kk0);
        x1 = lo1;
        x2 = _mm256_xor_si256(_mm256_xor_si256(hi0, x3), kk1);
        x3 = lo0;
        k0 += PHILOX_W0; k1 += PHILOX_W1;
    }
    // Words in element order: block j's words 0..3 are elements 8j..8j+7 (low half first).
    uint32_t w[4][8], words[32];
    _mm256_storeu_si256((__m256i *)w[0], x0); _mm256_storeu_si256((__m256i *)w[1], x1);
    _mm256_storeu_si256((__m256i *)w[2], x2); _mm256_storeu_si256((__m256i *)w[3], x3);
    for (int j = 0; j < 8; j++) for (int k = 0; k < 4; k++) words[4 * j + k] = w[k][j];
    const uint16_t *u = (const uint16_t *)words;
    const __m256i below = _mm256_set1_epi32((int)threshold - 1);
    const __m256 s = _mm256_set1_ps(scale);
    for (int e = 0; e < 64; e += 8) {
        __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(u + e)));
        __m256 keep = _mm256_castsi256_ps(_mm256_cmpgt_epi32(v, below));        // u >= threshold
        __m256 x = _mm256_mul_ps(_mm256_loadu_ps(src + e), s);
        _mm256_storeu_ps(dst + e, _mm256_and_ps(x, keep));
    }
}

__attribute__((target("avx2")))
static void dropout_avx2(const float *src, float *dst, int64_t start, int64_t end,
                         uint32_t key0, uint32_t key1, uint32_t site, uint32_t micro_batch, uint32_t step,
                         uint32_t threshold, float scale) {
    int64_t first = (start + 63) & ~(int64_t)63;
    if (first >= end) {
        ckernels_dropout_scalar(src, dst, start, end, key0, key1, site, micro_batch, step, threshold, scale);
        return;
    }
    ckernels_dropout_scalar(src, dst, start, first, key0, key1, site, micro_batch, step, threshold, scale);
    int64_t i = first;
    for (; i + 64 <= end; i += 64) {
        dropout64_avx2(src + i, dst + i, i >> 3, key0, key1, site, micro_batch, step, threshold, scale);
    }
    ckernels_dropout_scalar(src, dst, i, end, key0, key1, site, micro_batch, step, threshold, scale);
}

int ckernels_dropout_uses_avx2(void) {
    return __builtin_cpu_supports("avx2") ? 1 : 0;
}

void ckernels_dropout(const float *src, float *dst, int64_t start, int64_t end,
                      uint32_t key0, uint32_t key1, uint32_t site, uint32_t micro_batch, uint32_t step,
                      uint32_t threshold, float scale) {
    if (ckernels_dropout_uses_avx2()) {
        dropout_avx2(src, dst, start, end, key0, key1, site, micro_batch, step, threshold, scale);
    } else {
        ckernels_dropout_scalar(src, dst, start, end, key0, key1, site, micro_batch, step, threshold, scale);
    }
}

void ckernels_relu(float *x, size_t count) {
    for (size_t i = 0; i < count; i++) x[i] = x[i] < 0.0f ? 0.0f : x[i];
}

void ckernels_relu_backward(float *dh, const float *h, size_t count, float scale) {
    // Both sides computed, then selected (not multiplied by a 0/1 mask, which would turn an
    // infinite gradient into NaN where the unit is off): this form vectorizes.
    for (size_t i = 0; i < count; i++) {
        float v = dh[i] * scale;
        dh[i] = h[i] > 0.0f ? v : 0.0f;
    }
}

// 32 columns held in registers over all rows, then 8, then 1: each column still sums its rows
// in order, so the result is the scalar loop's, bit for bit.
__attribute__((target("avx2")))
static void column_sums_avx2(const float *m, int64_t rows, int64_t ld, int64_t c0, int64_t c1, float *out) {
    int64_t c = c0;
    for (; c + 32 <= c1; c += 32) {
        __m256 a0 = _mm256_loadu_ps(out + c), a1 = _mm256_loadu_ps(out + c + 8);
        __m256 a2 = _mm256_loadu_ps(out + c + 16), a3 = _mm256_loadu_ps(out + c + 24);
        for (int64_t r = 0; r < rows; r++) {
            const float *row = m + r * ld + c;
            a0 = _mm256_add_ps(a0, _mm256_loadu_ps(row));
            a1 = _mm256_add_ps(a1, _mm256_loadu_ps(row + 8));
            a2 = _mm256_add_ps(a2, _mm256_loadu_ps(row + 16));
            a3 = _mm256_add_ps(a3, _mm256_loadu_ps(row + 24));
        }
        _mm256_storeu_ps(out + c, a0); _mm256_storeu_ps(out + c + 8, a1);
        _mm256_storeu_ps(out + c + 16, a2); _mm256_storeu_ps(out + c + 24, a3);
    }
    for (; c + 8 <= c1; c += 8) {
        __m256 a = _mm256_loadu_ps(out + c);
        for (int64_t r = 0; r < rows; r++) a = _mm256_add_ps(a, _mm256_loadu_ps(m + r * ld + c));
        _mm256_storeu_ps(out + c, a);
    }
    for (; c < c1; c++) {
        float a = out[c];
        for (int64_t r = 0; r < rows; r++) a += m[r * ld + c];
        out[c] = a;
    }
}

void ckernels_column_sums(const float *m, int64_t rows, int64_t ld, int64_t column_start, int64_t column_end,
                          float *out) {
    if (__builtin_cpu_supports("avx2")) {
        column_sums_avx2(m, rows, ld, column_start, column_end, out);
        return;
    }
    for (int64_t c = column_start; c < column_end; c++) {
        float a = out[c];
        for (int64_t r = 0; r < rows; r++) a += m[r * ld + c];
        out[c] = a;
    }
}
