#include "CKernels.h"
#include "Lanes.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

// Softmax rows (the label-smoothed loss, beam search's log-normaliser, attention's masked softmax
// and its backward) with AVX2+FMA when the CPU has them and a scalar path that computes the same
// bits: sums run over 8 lanes (lane j takes elements j, j+8, ... of the vector part), meet in a
// fixed tree, and the tail is added in order; exp is elementwise, with the same fused operations
// in both paths. (A NaN input gives NaN on both paths, but its payload and sign may differ.)

#pragma STDC FP_CONTRACT OFF

// Cephes' single-precision exp: exp(x) = 2^n * exp(r), n = round(x / ln 2) by the 1.5 * 2^23
// trick, r from a two-part ln 2, exp(r) a degree-7 polynomial; relative error below 2e-7 on
// the range softmax uses. Inputs below -87 are clamped (exp(-87) ~ 1.6e-38, the bottom of the
// normal range), NaN stays NaN, inputs above 88 overflow (softmax only passes x - max <= 0).
#define EXP_LOWER (-87.0f)
#define EXP_LOG2E 1.44269504f
#define EXP_MAGIC 12582912.0f
#define EXP_MAGIC_BITS 0x4B400000u
#define EXP_LN2_HIGH 0.693359375f
#define EXP_LN2_LOW (-2.12194440e-4f)
#define EXP_P0 1.9875691500e-4f
#define EXP_P1 1.3981999507e-3f
#define EXP_P2 8.3334519073e-3f
#define EXP_P3 4.1665795894e-2f
#define EXP_P4 1.6666665459e-1f
#define EXP_P5 5.0000001201e-1f

static inline float exp_scalar(float x) {
    float xc = x < EXP_LOWER ? EXP_LOWER : x;
    float t = fmaf(xc, EXP_LOG2E, EXP_MAGIC);
    float n = t - EXP_MAGIC;
    float r = fmaf(-n, EXP_LN2_HIGH, xc);
    r = fmaf(-n, EXP_LN2_LOW, r);
    float y = EXP_P0;
    y = fmaf(y, r, EXP_P1);
    y = fmaf(y, r, EXP_P2);
    y = fmaf(y, r, EXP_P3);
    y = fmaf(y, r, EXP_P4);
    y = fmaf(y, r, EXP_P5);
    y = fmaf(y, r * r, r) + 1.0f;
    uint32_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits - EXP_MAGIC_BITS + 127u) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return y * scale;
}

__attribute__((target("avx2,fma")))
static inline __m256 exp_avx2(__m256 x) {
    __m256 lower = _mm256_set1_ps(EXP_LOWER);
    __m256 xc = _mm256_blendv_ps(x, lower, _mm256_cmp_ps(x, lower, _CMP_LT_OQ));
    __m256 magic = _mm256_set1_ps(EXP_MAGIC);
    __m256 t = _mm256_fmadd_ps(xc, _mm256_set1_ps(EXP_LOG2E), magic);
    __m256 n = _mm256_sub_ps(t, magic);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(EXP_LN2_HIGH), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(EXP_LN2_LOW), r);
    __m256 y = _mm256_set1_ps(EXP_P0);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(EXP_P1));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(EXP_P2));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(EXP_P3));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(EXP_P4));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(EXP_P5));
    y = _mm256_add_ps(_mm256_fmadd_ps(y, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    __m256i bits = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_set1_epi32((int)(EXP_MAGIC_BITS - 127u)));
    return _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(bits, 23)));
}

// a > b ? a : b, which is what _mm256_max_ps(a, b) computes (b when either is NaN).
static inline float max_of(float a, float b) { return a > b ? a : b; }

static inline float lanes_max(const float l[8]) {
    float a0 = max_of(l[0], l[4]), a1 = max_of(l[1], l[5]), a2 = max_of(l[2], l[6]), a3 = max_of(l[3], l[7]);
    return max_of(max_of(a0, a2), max_of(a1, a3));
}

__attribute__((target("avx2,fma")))
static inline void store_lanes(__m256 v, float l[8]) { _mm256_storeu_ps(l, v); }

__attribute__((target("avx2,fma")))
static void max_and_sum_avx2_lanes(const float *x, int64_t vend, float *lm, float *ls) {
    __m256 m = _mm256_loadu_ps(lm), s = _mm256_loadu_ps(ls);
    for (int64_t j = 0; j < vend; j += 8) {
        __m256 v = _mm256_loadu_ps(x + j);
        m = _mm256_max_ps(m, v);
        s = _mm256_add_ps(s, v);
    }
    store_lanes(m, lm);
    store_lanes(s, ls);
}

void ckernels_max_and_sum_path(int use_avx2, const float *x, int64_t n, float *max, float *sum) {
    int64_t vend = n - n % 8;
    float lm[8], ls[8];
    for (int k = 0; k < 8; k++) {
        lm[k] = -INFINITY;
        ls[k] = 0;
    }
    if (use_avx2) {
        max_and_sum_avx2_lanes(x, vend, lm, ls);
    } else {
        for (int64_t j = 0; j < vend; j += 8)
            for (int k = 0; k < 8; k++) {
                lm[k] = max_of(lm[k], x[j + k]);
                ls[k] += x[j + k];
            }
    }
    float m = lanes_max(lm), s = lanes_sum(ls);
    for (int64_t j = vend; j < n; j++) {
        m = max_of(m, x[j]);
        s += x[j];
    }
    *max = m;
    *sum = s;
}

int ckernels_softmax_uses_avx2(void) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
}

__attribute__((target("avx2,fma")))
static int64_t first_index_of_avx2(const float *x, int64_t n, float value) {
    __m256 v = _mm256_set1_ps(value);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        int mask = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + j), v, _CMP_EQ_OQ));
        if (mask) return j + __builtin_ctz((unsigned)mask);
    }
    for (; j < n; j++)
        if (x[j] == value) return j;
    return n;
}

int64_t ckernels_first_index_of(const float *x, int64_t n, float value) {
    if (ckernels_softmax_uses_avx2()) return first_index_of_avx2(x, n, value);
    for (int64_t j = 0; j < n; j++)
        if (x[j] == value) return j;
    return n;
}

// Entry j of a row is visible when visible == NULL or visible[j] (attention's key mask).
static inline int is_visible(const bool *visible, int64_t j) { return visible == NULL || visible[j]; }

// Lanes j..j+7 of `visible` as an all-ones / all-zeros float mask.
__attribute__((target("avx2,fma")))
static inline __m256 visible_mask(const bool *visible, int64_t j) {
    __m128i bytes = _mm_loadl_epi64((const __m128i *)(visible + j));
    __m256i words = _mm256_cvtepu8_epi32(bytes);
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(words, _mm256_setzero_si256()));
}

// The vector part [0, vend) of exp_sum, its 8 lane sums met in the fixed tree.
__attribute__((target("avx2,fma")))
static float exp_sum_avx2_lanes(const float *x, int64_t vend, float shift, float *out, const bool *visible) {
    __m256 vshift = _mm256_set1_ps(shift), acc = _mm256_setzero_ps();
    for (int64_t j = 0; j < vend; j += 8) {
        __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + j), vshift));
        if (visible) e = _mm256_and_ps(e, visible_mask(visible, j));
        acc = _mm256_add_ps(acc, e);
        if (out) _mm256_storeu_ps(out + j, e);
    }
    float l[8];
    store_lanes(acc, l);
    return lanes_sum(l);
}

// sum_j e_j with e_j = exp(x[j] - shift) for visible entries and exactly 0 for the others, each
// e_j written to out[j] when out is not NULL.
static float exp_sum_visible(int use_avx2, const float *x, int64_t n, float shift, float *out, const bool *visible) {
    int64_t vend = n - n % 8;
    float s;
    if (use_avx2) {
        s = exp_sum_avx2_lanes(x, vend, shift, out, visible);
    } else {
        float l[8] = {0};
        for (int64_t j = 0; j < vend; j += 8)
            for (int k = 0; k < 8; k++) {
                float e = is_visible(visible, j + k) ? exp_scalar(x[j + k] - shift) : 0.0f;
                l[k] += e;
                if (out) out[j + k] = e;
            }
        s = lanes_sum(l);
    }
    for (int64_t j = vend; j < n; j++) {
        float e = is_visible(visible, j) ? exp_scalar(x[j] - shift) : 0.0f;
        s += e;
        if (out) out[j] = e;
    }
    return s;
}

float ckernels_exp_sum_path(int use_avx2, const float *x, int64_t n, float shift, float *out) {
    return exp_sum_visible(use_avx2, x, n, shift, out, NULL);
}

__attribute__((target("avx2,fma")))
static void scale_shift_avx2(float *x, int64_t n, float a, float b) {
    int64_t vend = n - n % 8;
    __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b);
    for (int64_t j = 0; j < vend; j += 8) _mm256_storeu_ps(x + j, _mm256_fmsub_ps(_mm256_loadu_ps(x + j), va, vb));
    for (int64_t j = vend; j < n; j++) x[j] = fmaf(x[j], a, -b);
}

void ckernels_scale_shift_path(int use_avx2, float *x, int64_t n, float a, float b) {
    if (use_avx2) {
        scale_shift_avx2(x, n, a, b);
        return;
    }
    for (int64_t j = 0; j < n; j++) x[j] = fmaf(x[j], a, -b);
}

void ckernels_max_and_sum(const float *x, int64_t n, float *max, float *sum) {
    ckernels_max_and_sum_path(ckernels_softmax_uses_avx2(), x, n, max, sum);
}

float ckernels_exp_sum(const float *x, int64_t n, float shift, float *out) {
    return ckernels_exp_sum_path(ckernels_softmax_uses_avx2(), x, n, shift, out);
}

void ckernels_scale_shift(float *x, int64_t n, float a, float b) {
    ckernels_scale_shift_path(ckernels_softmax_uses_avx2(), x, n, a, b);
}

// Attention rows: softmax over the visible keys of a row of scores, and its backward. Entry j of
// a row is visible when j < limit and (visible == NULL or visible[j]); invisible entries are
// exactly 0 (never exp(-87)), and a row without a visible entry is all 0.

__attribute__((target("avx2,fma")))
static float attention_row_max_avx2(const float *row, int64_t vend, const bool *visible) {
    __m256 m = _mm256_set1_ps(-INFINITY), ninf = _mm256_set1_ps(-INFINITY);
    for (int64_t j = 0; j < vend; j += 8) {
        __m256 v = _mm256_loadu_ps(row + j);
        if (visible) v = _mm256_blendv_ps(ninf, v, visible_mask(visible, j));
        m = _mm256_max_ps(m, v);
    }
    float l[8];
    store_lanes(m, l);
    return lanes_max(l);
}

void ckernels_attention_softmax_row_path(int use_avx2, float *row, int64_t columns, int64_t limit,
                                         const bool *visible) {
    if (limit > columns) limit = columns;
    if (limit < 0) limit = 0;
    int64_t vend = limit - limit % 8;
    float m;
    if (use_avx2) {
        m = attention_row_max_avx2(row, vend, visible);
    } else {
        float l[8];
        for (int k = 0; k < 8; k++) l[k] = -INFINITY;
        for (int64_t j = 0; j < vend; j += 8)
            for (int k = 0; k < 8; k++) l[k] = max_of(l[k], is_visible(visible, j + k) ? row[j + k] : -INFINITY);
        m = lanes_max(l);
    }
    for (int64_t j = vend; j < limit; j++)
        if (is_visible(visible, j)) m = max_of(m, row[j]);
    if (m == -INFINITY) {
        memset(row, 0, (size_t)columns * sizeof(float));
        return;
    }
    float sum = exp_sum_visible(use_avx2, row, limit, m, row, visible);
    if (limit < columns) memset(row + limit, 0, (size_t)(columns - limit) * sizeof(float));
    // e * (1 / sum) as fma(e, 1 / sum, -0), which is the same rounding of the same product.
    ckernels_scale_shift_path(use_avx2, row, limit, 1.0f / sum, 0.0f);
}

void ckernels_attention_softmax_row(float *row, int64_t columns, int64_t limit, const bool *visible) {
    ckernels_attention_softmax_row_path(ckernels_softmax_uses_avx2(), row, columns, limit, visible);
}

// g' = dropped != 0 ? g * keep : 0 (through dropout; skipped when dropped is NULL), then
// g = p * (g' - sum_j g'_j p_j), the dot product fused and summed over 8 lanes.
__attribute__((target("avx2,fma")))
static float softmax_backward_dot_avx2(const float *p, const float *dropped, float keep, float *g, int64_t vend) {
    __m256 acc = _mm256_setzero_ps(), vkeep = _mm256_set1_ps(keep), zero = _mm256_setzero_ps();
    for (int64_t j = 0; j < vend; j += 8) {
        __m256 v = _mm256_loadu_ps(g + j);
        if (dropped) {
            __m256 kept = _mm256_cmp_ps(_mm256_loadu_ps(dropped + j), zero, _CMP_NEQ_UQ);
            v = _mm256_and_ps(_mm256_mul_ps(v, vkeep), kept);
            _mm256_storeu_ps(g + j, v);
        }
        acc = _mm256_fmadd_ps(v, _mm256_loadu_ps(p + j), acc);
    }
    float l[8];
    store_lanes(acc, l);
    return lanes_sum(l);
}

__attribute__((target("avx2,fma")))
static void softmax_backward_apply_avx2(const float *p, float *g, int64_t vend, float dot) {
    __m256 vdot = _mm256_set1_ps(dot);
    for (int64_t j = 0; j < vend; j += 8)
        _mm256_storeu_ps(g + j, _mm256_mul_ps(_mm256_loadu_ps(p + j), _mm256_sub_ps(_mm256_loadu_ps(g + j), vdot)));
}

static inline float through_dropout(const float *dropped, float keep, float g, int64_t j) {
    return dropped == NULL ? g : (dropped[j] != 0.0f ? g * keep : 0.0f);
}

void ckernels_softmax_backward_row_path(int use_avx2, const float *p, const float *dropped, float keep, float *g,
                                        int64_t n) {
    int64_t vend = n - n % 8;
    float dot;
    if (use_avx2) {
        dot = softmax_backward_dot_avx2(p, dropped, keep, g, vend);
    } else {
        float l[8] = {0};
        for (int64_t j = 0; j < vend; j += 8)
            for (int k = 0; k < 8; k++) {
                g[j + k] = through_dropout(dropped, keep, g[j + k], j + k);
                l[k] = fmaf(g[j + k], p[j + k], l[k]);
            }
        dot = lanes_sum(l);
    }
    for (int64_t j = vend; j < n; j++) {
        g[j] = through_dropout(dropped, keep, g[j], j);
        dot = fmaf(g[j], p[j], dot);
    }
    if (use_avx2)
        softmax_backward_apply_avx2(p, g, vend, dot);
    else
        for (int64_t j = 0; j < vend; j++) g[j] = p[j] * (g[j] - dot);
    for (int64_t j = vend; j < n; j++) g[j] = p[j] * (g[j] - dot);
}

void ckernels_softmax_backward_row(const float *p, const float *dropped, float keep, float *g, int64_t n) {
    ckernels_softmax_backward_row_path(ckernels_softmax_uses_avx2(), p, dropped, keep, g, n);
}
