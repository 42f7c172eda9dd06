#ifndef CKERNELS_H
#define CKERNELS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/// One Philox4x32-10 block: the four words for counter (c0, c1, c2, c3) under key (k0, k1).
/// The only implementation in the project (Swift's `Philox.block` calls it).
void ckernels_philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1,
                            uint32_t out[4]);

/// Inverted dropout over elements [start, end): dst[i] = src[i] * scale when the i-th 16-bit
/// uniform is >= threshold, else 0 (src and dst may alias). The uniforms come from
/// Philox4x32-10 with key (key0, key1) and counter (i / 8, site, micro_batch, step): one block gives
/// the 8 uniforms of elements 8b..8b+7, word w's low half first. Uses AVX2 when the CPU has it;
/// the result is identical either way.
void ckernels_dropout(const float *src, float *dst, int64_t start, int64_t end,
                      uint32_t key0, uint32_t key1, uint32_t site, uint32_t micro_batch, uint32_t step,
                      uint32_t threshold, float scale);

/// The same without AVX2 (for tests and CPUs without it).
void ckernels_dropout_scalar(const float *src, float *dst, int64_t start, int64_t end,
                             uint32_t key0, uint32_t key1, uint32_t site, uint32_t micro_batch, uint32_t step,
                             uint32_t threshold, float scale);

/// 1 when ckernels_dropout takes the AVX2 path on this CPU.
int ckernels_dropout_uses_avx2(void);

/// x[i] = max(x[i], 0), NaN kept (as torch.relu).
void ckernels_relu(float *x, size_t count);

/// dh[i] = h[i] > 0 ? dh[i] * scale : 0, where h is the layer's output after ReLU (and dropout,
/// whose zeros then also block the gradient).
void ckernels_relu_backward(float *dh, const float *h, size_t count, float scale);

/// y[r, j] = (accumulate ? y[r, j] : 0) + sum_p x[r, p] * w[j, p] for r < rows, j < n, p < k:
/// a product with w stored [n, k] (PyTorch's Linear weight), for few rows (decoding). Streams w
/// once instead of packing it as sgemm does. Each output's summation order is fixed (eight
/// fused multiply-add lanes, a fixed tree, the tail in order), so the bits do not depend on the
/// CPU, on `rows`, or on how the columns are split into calls. Uses AVX2+FMA when present.
void ckernels_gemm_nt(const float *x, int64_t rows, int64_t ldx, const float *w, int64_t n, int64_t ldw,
                      int64_t k, float *y, int64_t ldy, int accumulate);

/// The same without AVX2 (identical results; for tests and CPUs without it).
void ckernels_gemm_nt_scalar(const float *x, int64_t rows, int64_t ldx, const float *w, int64_t n, int64_t ldw,
                             int64_t k, float *y, int64_t ldy, int accumulate);

/// The same product with w stored as IEEE binary16 (Float16 parameters): each weight is converted
/// exactly to Float32 as it is read, in the same order, so the result is bit-identical to
/// ckernels_gemm_nt on the converted matrix, for half the bytes streamed.
void ckernels_gemm_nt_half(const float *x, int64_t rows, int64_t ldx, const uint16_t *w, int64_t n, int64_t ldw,
                           int64_t k, float *y, int64_t ldy, int accumulate);

/// ckernels_gemm_nt_half without AVX2/F16C (identical results).
void ckernels_gemm_nt_half_scalar(const float *x, int64_t rows, int64_t ldx, const uint16_t *w, int64_t n,
                                  int64_t ldw, int64_t k, float *y, int64_t ldy, int accumulate);

/// 1 when ckernels_gemm_nt(_half) take the AVX2 (+FMA, F16C) path on this CPU.
int ckernels_gemm_nt_uses_avx2(void);

/// out[c] += sum over r < rows of m[r * ld + c], for c in [column_start, column_end), rows added in
/// order (the same bits for any column split or CPU path). AVX2 when present.
void ckernels_column_sums(const float *m, int64_t rows, int64_t ld, int64_t column_start, int64_t column_end,
                          float *out);

/// Softmax pieces over a row of n floats, AVX2+FMA when present (`ckernels_softmax_uses_avx2`), a
/// scalar path with the same bits otherwise (the `_path` forms choose: 0 scalar, 1 AVX2, for tests).
/// Sums run over 8 lanes in a fixed order, so a row's results do not depend on where it lies.
///
/// max_and_sum: the largest element (as a chain of `a > b ? a : b`; callers check finiteness)
/// and the plain sum.
void ckernels_max_and_sum(const float *x, int64_t n, float *max, float *sum);
void ckernels_max_and_sum_path(int use_avx2, const float *x, int64_t n, float *max, float *sum);
/// The first index j with x[j] == value, or n.
int64_t ckernels_first_index_of(const float *x, int64_t n, float value);
/// sum_j exp(x[j] - shift), writing each exp to out[j] when out is not NULL (out may be x). exp is
/// Cephes' single-precision scheme (relative error below 2e-7 for arguments <= 0; below -87 clamped).
float ckernels_exp_sum(const float *x, int64_t n, float shift, float *out);
float ckernels_exp_sum_path(int use_avx2, const float *x, int64_t n, float shift, float *out);
/// x[j] = x[j] * a - b, fused.
void ckernels_scale_shift(float *x, int64_t n, float a, float b);
void ckernels_scale_shift_path(int use_avx2, float *x, int64_t n, float a, float b);
/// 1 when the softmax kernels take the AVX2+FMA path on this CPU.
int ckernels_softmax_uses_avx2(void);
/// Attention's softmax of one row of `columns` scores in place. Entry j is visible when j < limit
/// and (visible == NULL or visible[j]); invisible entries become exactly 0, and a row with no
/// visible entry becomes all 0. exp as in ckernels_exp_sum; the result is e_j * (1 / sum e).
void ckernels_attention_softmax_row(float *row, int64_t columns, int64_t limit, const bool *visible);
void ckernels_attention_softmax_row_path(int use_avx2, float *row, int64_t columns, int64_t limit,
                                         const bool *visible);
/// Softmax's backward of one row of n: g holds d(loss)/d(dropped probabilities) and becomes
/// d(loss)/d(scores) = p * (g' - sum_j g'_j p_j), where g' = dropped_j != 0 ? g_j * keep : 0 when
/// `dropped` (the probabilities after dropout) is given, and g' = g otherwise.
void ckernels_softmax_backward_row(const float *p, const float *dropped, float keep, float *g, int64_t n);
void ckernels_softmax_backward_row_path(int use_avx2, const float *p, const float *dropped, float keep, float *g,
                                        int64_t n);

/// LayerNorm over `rows` rows of width d (PyTorch's definition: biased variance, eps inside the
/// square root): y = (s - mean) * rstd * gamma + beta, with s = x, or s = x + add written to `sum`
/// when `add` is not NULL (a residual connection and its norm in one pass). Stores each row's
/// mean and rstd. Every sum runs over 8 lanes in a fixed order, so the bits do not depend on the
/// CPU or on how rows are split into calls. Uses AVX2+FMA when present.
void ckernels_layernorm_forward(const float *x, const float *add, float *sum, int64_t rows, int64_t d,
                                const float *gamma, const float *beta, float eps, float *y, float *mean,
                                float *rstd);

/// dx += the gradient of the rows' LayerNorm input, given dy and the forward's input x, mean, rstd.
void ckernels_layernorm_input_gradient(const float *dy, const float *x, int64_t rows, int64_t d,
                                       const float *gamma, const float *mean, const float *rstd, float *dx);

/// dgamma[j] += sum_r dy[r, j] * xhat[r, j] and dbeta[j] += sum_r dy[r, j] for columns
/// [column_start, column_end), rows summed in order (so a column split gives the same bits).
void ckernels_layernorm_parameter_gradients(const float *dy, const float *x, int64_t rows, int64_t d,
                                            int64_t column_start, int64_t column_end, const float *mean,
                                            const float *rstd, float *dgamma, float *dbeta);

/// 1 when the LayerNorm kernels take the AVX2+FMA path on this CPU.
int ckernels_layernorm_uses_avx2(void);

/// The three LayerNorm kernels with the path chosen by the caller (use_avx2 = 0: scalar; 1 only
/// where ckernels_layernorm_uses_avx2()), for tests that the two agree bit for bit.
void ckernels_layernorm_forward_path(int use_avx2, const float *x, const float *add, float *sum, int64_t rows,
                                     int64_t d, const float *gamma, const float *beta, float eps, float *y,
                                     float *mean, float *rstd);
void ckernels_layernorm_input_gradient_path(int use_avx2, const float *dy, const float *x, int64_t rows,
                                            int64_t d, const float *gamma, const float *mean, const float *rstd,
                                            float *dx);
void ckernels_layernorm_parameter_gradients_path(int use_avx2, const float *dy, const float *x, int64_t rows,
                                                 int64_t d, int64_t column_start, int64_t column_end,
                                                 const float *mean, const float *rstd, float *dgamma,
                                                 float *dbeta);

/// Runs fn(context, i) for every i in [0, count), on the calling thread and up to threads - 1
/// threads of a persistent pool, and returns when all have finished. Which thread runs which
/// chunk is not fixed; callers make each chunk's result independent of that. A call made while
/// the pool runs another job (nested inside a chunk, or from another thread) runs its chunks
/// inline, in order. Pool threads spin briefly after a job before parking (see below).
void ckernels_pool_run(int threads, int count, void (*fn)(void *context, int index), void *context);
/// The most threads a job runs on (helpers plus the caller); larger budgets use this many.
int ckernels_pool_max_threads(void);

/// How long a pool thread (and a caller waiting for the last chunk) spins before parking on a
/// condition variable. Default 50 us, or TRANSFORMER_POOL_SPIN_US (0...1000000) if set before the
/// first parallel call; the setter overrides both.
void ckernels_pool_set_spin_microseconds(long microseconds);
long ckernels_pool_spin_microseconds(void);

/// Between begin and end (they nest and may come from several threads), threads spin at least
/// 200 us: longer than the gaps between a decoding step's ~40 short products.
void ckernels_pool_begin_latency_bound(void);
void ckernels_pool_end_latency_bound(void);
/// The spin in effect now, in microseconds (raised inside a latency-bound scope).
long ckernels_pool_current_spin_microseconds(void);

/// Pool threads started so far (they start on the first parallel call).
int ckernels_pool_threads(void);

#endif
