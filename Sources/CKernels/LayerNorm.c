#include "CKernels.h"
#include "Lanes.h"
#include <immintrin.h>
#include <math.h>

// No contraction of a * b + c into a fused multiply-add behind our back: the two paths must fuse
// exactly the same operations, the ones written as fmaf / _mm256_fmadd_ps.
#pragma STDC FP_CONTRACT OFF

// LayerNorm rows with AVX2+FMA when the CPU has them, and a scalar path that computes the same
// bits: every sum runs over 8 lanes (lane j takes elements j, j+8, ... of the vector part), the
// lanes meet in a fixed tree, the tail is added in order, and every multiply-add is fused (fmaf
// in the scalar path). The Swift loops these replace were serial dependency chains (a float sum
// does not vectorize without reordering) compiled for the baseline ISA.

static inline float rstd_of(float sq, int64_t d, float eps) { return 1.0f / sqrtf(sq / (float)d + eps); }

// One row, scalar: s = x (+ add), statistics, y.
static void layernorm_row_scalar(const float *x, const float *add, float *s, int64_t d, const float *gamma,
                                 const float *beta, float eps, float *y, float *mean, float *rstd) {
    int64_t vend = d - d % 8;
    if (add) {
        for (int64_t j = 0; j < d; j++) s[j] = x[j] + add[j];
        x = s;
    }
    float l[8] = {0};
    for (int64_t j = 0; j < vend; j += 8)
        for (int k = 0; k < 8; k++) l[k] += x[j + k];
    float sum = lanes_sum(l);
    for (int64_t j = vend; j < d; j++) sum += x[j];
    float mu = sum / (float)d;
    for (int k = 0; k < 8; k++) l[k] = 0;
    for (int64_t j = 0; j < vend; j += 8)
        for (int k = 0; k < 8; k++) {
            float t = x[j + k] - mu;
            l[k] = fmaf(t, t, l[k]);
        }
    float sq = lanes_sum(l);
    for (int64_t j = vend; j < d; j++) {
        float t = x[j] - mu;
        sq = fmaf(t, t, sq);
    }
    float rs = rstd_of(sq, d, eps);
    *mean = mu;
    *rstd = rs;
    for (int64_t j = 0; j < d; j++) y[j] = fmaf((x[j] - mu) * rs, gamma[j], beta[j]);
}

__attribute__((target("avx2,fma")))
static inline float hsum8(__m256 v) {
    // (l0 + l4, l1 + l5, l2 + l6, l3 + l7), then (a0 + a2, a1 + a3), then their sum.
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 b = _mm_add_ps(a, _mm_movehl_ps(a, a));
    return _mm_cvtss_f32(_mm_add_ss(b, _mm_shuffle_ps(b, b, 1)));
}

__attribute__((target("avx2,fma")))
static void layernorm_row_avx2(const float *x, const float *add, float *s, int64_t d, const float *gamma,
                               const float *beta, float eps, float *y, float *mean, float *rstd) {
    int64_t vend = d - d % 8;
    __m256 acc = _mm256_setzero_ps();
    if (add) {
        for (int64_t j = 0; j < vend; j += 8) {
            __m256 v = _mm256_add_ps(_mm256_loadu_ps(x + j), _mm256_loadu_ps(add + j));
            _mm256_storeu_ps(s + j, v);
            acc = _mm256_add_ps(acc, v);
        }
        for (int64_t j = vend; j < d; j++) s[j] = x[j] + add[j];
        x = s;
    } else {
        for (int64_t j = 0; j < vend; j += 8) acc = _mm256_add_ps(acc, _mm256_loadu_ps(x + j));
    }
    float sum = hsum8(acc);
    for (int64_t j = vend; j < d; j++) sum += x[j];
    float mu = sum / (float)d;
    __m256 vmu = _mm256_set1_ps(mu);
    acc = _mm256_setzero_ps();
    for (int64_t j = 0; j < vend; j += 8) {
        __m256 t = _mm256_sub_ps(_mm256_loadu_ps(x + j), vmu);
        acc = _mm256_fmadd_ps(t, t, acc);
    }
    float sq = hsum8(acc);
    for (int64_t j = vend; j < d; j++) {
        float t = x[j] - mu;
        sq = fmaf(t, t, sq);
    }
    float rs = rstd_of(sq, d, eps);
    *mean = mu;
    *rstd = rs;
    __m256 vrs = _mm256_set1_ps(rs);
    for (int64_t j = 0; j < vend; j += 8) {
        __m256 xhat = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + j), vmu), vrs);
        _mm256_storeu_ps(y + j, _mm256_fmadd_ps(xhat, _mm256_loadu_ps(gamma + j), _mm256_loadu_ps(beta + j)));
    }
    for (int64_t j = vend; j < d; j++) y[j] = fmaf((x[j] - mu) * rs, gamma[j], beta[j]);
}

// One row of the input gradient, scalar: dx += rs * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma.
static void layernorm_dx_row_scalar(const float *dy, const float *x, int64_t d, const float *gamma, float mu,
                                    float rs, float *dx) {
    int64_t vend = d - d % 8;
    float lg[8] = {0}, lgx[8] = {0};
    for (int64_t j = 0; j < vend; j += 8)
        for (int k = 0; k < 8; k++) {
            float g = dy[j + k] * gamma[j + k];
            lg[k] += g;
            lgx[k] = fmaf(g, (x[j + k] - mu) * rs, lgx[k]);
        }
    float sumG = lanes_sum(lg), sumGX = lanes_sum(lgx);
    for (int64_t j = vend; j < d; j++) {
        float g = dy[j] * gamma[j];
        sumG += g;
        sumGX = fmaf(g, (x[j] - mu) * rs, sumGX);
    }
    float mG = sumG / (float)d, mGX = sumGX / (float)d;
    for (int64_t j = 0; j < d; j++) {
        float xhat = (x[j] - mu) * rs;
        dx[j] = fmaf(rs, fmaf(-xhat, mGX, dy[j] * gamma[j] - mG), dx[j]);
    }
}

__attribute__((target("avx2,fma")))
static void layernorm_dx_row_avx2(const float *dy, const float *x, int64_t d, const float *gamma, float mu,
                                  float rs, float *dx) {
    int64_t vend = d - d % 8;
    __m256 vmu = _mm256_set1_ps(mu), vrs = _mm256_set1_ps(rs);
    __m256 ag = _mm256_setzero_ps(), agx = _mm256_setzero_ps();
    for (int64_t j = 0; j < vend; j += 8) {
        __m256 g = _mm256_mul_ps(_mm256_loadu_ps(dy + j), _mm256_loadu_ps(gamma + j));
        __m256 xhat = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + j), vmu), vrs);
        ag = _mm256_add_ps(ag, g);
        agx = _mm256_fmadd_ps(g, xhat, agx);
    }
    float sumG = hsum8(ag), sumGX = hsum8(agx);
    for (int64_t j = vend; j < d; j++) {
        float g = dy[j] * gamma[j];
        sumG += g;
        sumGX = fmaf(g, (x[j] - mu) * rs, sumGX);
    }
    float mG = sumG / (float)d, mGX = sumGX / (float)d;
    __m256 vmG = _mm256_set1_ps(mG), vmGX = _mm256_set1_ps(mGX);
    for (int64_t j = 0; j < vend; j += 8) {
        __m256 g = _mm256_mul_ps(_mm256_loadu_ps(dy + j), _mm256_loadu_ps(gamma + j));
        __m256 xhat = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + j), vmu), vrs);
        __m256 t = _mm256_fnmadd_ps(xhat, vmGX, _mm256_sub_ps(g, vmG));
        _mm256_storeu_ps(dx + j, _mm256_fmadd_ps(vrs, t, _mm256_loadu_ps(dx + j)));
    }
    for (int64_t j = vend; j < d; j++) {
        float xhat = (x[j] - mu) * rs;
        dx[j] = fmaf(rs, fmaf(-xhat, mGX, dy[j] * gamma[j] - mG), dx[j]);
    }
}

// Columns [c0, c1) of the parameter gradients over all rows, rows in order: scalar.
static void layernorm_params_scalar(const float *dy, const float *x, int64_t rows, int64_t d, int64_t c0,
                                    int64_t c1, const float *mean, const float *rstd, float *dgamma, float *dbeta) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * d, *gr = dy + r * d;
        float mu = mean[r], rs = rstd[r];
        for (int64_t j = c0; j < c1; j++) {
            dgamma[j] = fmaf(gr[j], (xr[j] - mu) * rs, dgamma[j]);
            dbeta[j] += gr[j];
        }
    }
}

__attribute__((target("avx2,fma")))
static void layernorm_params_avx2(const float *dy, const float *x, int64_t rows, int64_t d, int64_t c0,
                                  int64_t c1, const float *mean, const float *rstd, float *dgamma, float *dbeta) {
    // 32 columns at a time held in registers across all rows, then the rest 8 and 1 at a time.
    int64_t j = c0;
    for (; j + 32 <= c1; j += 32) {
        __m256 g[4], b[4];
        for (int q = 0; q < 4; q++) {
            g[q] = _mm256_loadu_ps(dgamma + j + 8 * q);
            b[q] = _mm256_loadu_ps(dbeta + j + 8 * q);
        }
        for (int64_t r = 0; r < rows; r++) {
            const float *xr = x + r * d + j, *gr = dy + r * d + j;
            __m256 vmu = _mm256_set1_ps(mean[r]), vrs = _mm256_set1_ps(rstd[r]);
            for (int q = 0; q < 4; q++) {
                __m256 vdy = _mm256_loadu_ps(gr + 8 * q);
                __m256 xhat = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + 8 * q), vmu), vrs);
                g[q] = _mm256_fmadd_ps(vdy, xhat, g[q]);
                b[q] = _mm256_add_ps(b[q], vdy);
            }
        }
        for (int q = 0; q < 4; q++) {
            _mm256_storeu_ps(dgamma + j + 8 * q, g[q]);
            _mm256_storeu_ps(dbeta + j + 8 * q, b[q]);
        }
    }
    for (; j + 8 <= c1; j += 8) {
        __m256 g = _mm256_loadu_ps(dgamma + j), b = _mm256_loadu_ps(dbeta + j);
        for (int64_t r = 0; r < rows; r++) {
            __m256 vdy = _mm256_loadu_ps(dy + r * d + j);
            __m256 xhat = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + r * d + j), _mm256_set1_ps(mean[r])),
                                        _mm256_set1_ps(rstd[r]));
            g = _mm256_fmadd_ps(vdy, xhat, g);
            b = _mm256_add_ps(b, vdy);
        }
        _mm256_storeu_ps(dgamma + j, g);
        _mm256_storeu_ps(dbeta + j, b);
    }
    if (j < c1) layernorm_params_scalar(dy, x, rows, d, j, c1, mean, rstd, dgamma, dbeta);
}

int ckernels_layernorm_uses_avx2(void) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
}

void ckernels_layernorm_forward_path(int use_avx2, const float *x, const float *add, float *sum, int64_t rows,
                                     int64_t d, const float *gamma, const float *beta, float eps, float *y,
                                     float *mean, float *rstd) {
    for (int64_t r = 0; r < rows; r++) {
        const float *a = add ? add + r * d : 0;
        float *s = add ? sum + r * d : 0;
        if (use_avx2)
            layernorm_row_avx2(x + r * d, a, s, d, gamma, beta, eps, y + r * d, mean + r, rstd + r);
        else
            layernorm_row_scalar(x + r * d, a, s, d, gamma, beta, eps, y + r * d, mean + r, rstd + r);
    }
}

void ckernels_layernorm_forward(const float *x, const float *add, float *sum, int64_t rows, int64_t d,
                                const float *gamma, const float *beta, float eps, float *y, float *mean,
                                float *rstd) {
    ckernels_layernorm_forward_path(ckernels_layernorm_uses_avx2(), x, add, sum, rows, d, gamma, beta, eps, y,
                                    mean, rstd);
}

void ckernels_layernorm_input_gradient_path(int use_avx2, const float *dy, const float *x, int64_t rows,
                                            int64_t d, const float *gamma, const float *mean, const float *rstd,
                                            float *dx) {
    for (int64_t r = 0; r < rows; r++) {
        if (use_avx2)
            layernorm_dx_row_avx2(dy + r * d, x + r * d, d, gamma, mean[r], rstd[r], dx + r * d);
        else
            layernorm_dx_row_scalar(dy + r * d, x + r * d, d, gamma, mean[r], rstd[r], dx + r * d);
    }
}

void ckernels_layernorm_input_gradient(const float *dy, const float *x, int64_t rows, int64_t d,
                                       const float *gamma, const float *mean, const float *rstd, float *dx) {
    ckernels_layernorm_input_gradient_path(ckernels_layernorm_uses_avx2(), dy, x, rows, d, gamma, mean, rstd, dx);
}

void ckernels_layernorm_parameter_gradients_path(int use_avx2, const float *dy, const float *x, int64_t rows,
                                                 int64_t d, int64_t column_start, int64_t column_end,
                                                 const float *mean, const float *rstd, float *dgamma,
                                                 float *dbeta) {
    if (use_avx2)
        layernorm_params_avx2(dy, x, rows, d, column_start, column_end, mean, rstd, dgamma, dbeta);
    else
        layernorm_params_scalar(dy, x, rows, d, column_start, column_end, mean, rstd, dgamma, dbeta);
}

void ckernels_layernorm_parameter_gradients(const float *dy, const float *x, int64_t rows, int64_t d,
                                            int64_t column_start, int64_t column_end, const float *mean,
                                            const float *rstd, float *dgamma, float *dbeta) {
    ckernels_layernorm_parameter_gradients_path(ckernels_layernorm_uses_avx2(), dy, x, rows, d, column_start,
                                                column_end, mean, rstd, dgamma, dbeta);
}
