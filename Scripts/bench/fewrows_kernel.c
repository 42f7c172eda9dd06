// The few-rows product kernel alone (Sources/CKernels/SkinnyGemm.c) at the weight shapes of one
// `base` decoder step: 6 layers x (QKV 1536x512, self out 512x512, cross Q 512x512, cross out
// 512x512, FF1 2048x512, FF2 512x2048) + the 8000x512 vocabulary projection = 104 MB of Float32.
// Columns are split across persistent OpenMP threads with a spinning barrier, so the figure is
// what the kernel and the memory can do, without our thread pool's wake-up cost: compare it with
// `transformer bench decode --config base --batch 1` (ms_per_step) to see what the pool loses.
// Build and run from the repository root (see Scripts/bench/README.md):
//   gcc -O3 -fopenmp -ISources/CKernels/include Scripts/bench/fewrows_kernel.c
//       Sources/CKernels/SkinnyGemm.c -o /tmp/fewrows_kernel -lm     (one line)
//   /tmp/fewrows_kernel ROWS THREADS [f16]  (e.g. 1 1, 1 2, 4 1, 4 2; f16: Float16 weights through
//                                            ckernels_gemm_nt_half, 52 MB per step)
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void ckernels_gemm_nt(const float *x, int64_t rows, int64_t ldx, const float *w, int64_t n, int64_t ldw,
                      int64_t k, float *y, int64_t ldy, int accumulate);
void ckernels_gemm_nt_half(const float *x, int64_t rows, int64_t ldx, const uint16_t *w, int64_t n, int64_t ldw,
                           int64_t k, float *y, int64_t ldy, int accumulate);

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// A 64-bit linear congruential generator (Knuth's MMIX constants); returns 31 upper bits.
static uint32_t next_random(uint64_t *state) {
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*state >> 33);
}

enum { MATRICES = 37, REPEATS = 15, MAX_ROWS = 48 };

int main(int argc, char **argv) {
    int rows = argc > 1 ? atoi(argv[1]) : 1, threads = argc > 2 ? atoi(argv[2]) : 1;
    int half = argc > 3 && strcmp(argv[3], "f16") == 0;
    if (rows < 1 || rows > MAX_ROWS || threads < 1 || (argc > 3 && !half) || argc > 4) {
        fprintf(stderr, "usage: %s ROWS(1-%d) THREADS [f16]\n", argv[0], MAX_ROWS);
        return 2;
    }
    const size_t element = half ? sizeof(uint16_t) : sizeof(float);
    omp_set_num_threads(threads);
    const int64_t layer[6][2] = {{1536, 512}, {512, 512}, {512, 512}, {512, 512}, {2048, 512}, {512, 2048}};
    uint64_t seed = 1;
    void *w[MATRICES];
    int64_t n[MATRICES], k[MATRICES];
    size_t bytes = 0;
    for (int i = 0; i < MATRICES; i++) {
        n[i] = i < 36 ? layer[i % 6][0] : 8000;
        k[i] = i < 36 ? layer[i % 6][1] : 512;
        w[i] = malloc((size_t)(n[i] * k[i]) * element);
        if (!w[i]) return 1;
        // Varied values of a trained layer's size (|w| < 0.03, random signs): with a constant
        // pattern the same kernels timed differently (Float16 at 32 rows looked 20% faster).
        for (int64_t q = 0; q < n[i] * k[i]; q++) {
            uint32_t r = next_random(&seed);
            if (half) ((uint16_t *)w[i])[q] = (uint16_t)((r & 0x8000u) | (0x2000u + (r & 0x7ffu)));
            else ((float *)w[i])[q] = ((r & 0x8000u) ? -0.03f : 0.03f) * (float)(r & 0x7ffu) / 2048.0f;
        }
        bytes += (size_t)(n[i] * k[i]) * element;
    }
    float *x = malloc(MAX_ROWS * 2048 * sizeof(float)), *y = malloc(MAX_ROWS * 8000 * sizeof(float));
    if (!x || !y) return 1;
    for (int i = 0; i < MAX_ROWS * 2048; i++) x[i] = (float)(next_random(&seed) % 2001) / 1000.0f - 1.0f;
    double seconds[REPEATS];
    for (int rep = 0; rep < REPEATS; rep++) {
        double t = now();
#pragma omp parallel
        {
            int me = omp_get_thread_num(), all = omp_get_num_threads();
            for (int i = 0; i < MATRICES; i++) {
                int64_t lo = n[i] * me / all, hi = n[i] * (me + 1) / all;
                if (half)
                    ckernels_gemm_nt_half(x, rows, k[i], (const uint16_t *)w[i] + lo * k[i], hi - lo, k[i], k[i],
                                          y + lo, n[i], 0);
                else
                    ckernels_gemm_nt(x, rows, k[i], (const float *)w[i] + lo * k[i], hi - lo, k[i], k[i], y + lo,
                                     n[i], 0);
#pragma omp barrier
            }
        }
        seconds[rep] = now() - t;
    }
    qsort(seconds, REPEATS, sizeof(double), by_value);
    printf("{\"rows\":%d,\"threads\":%d,\"float16\":%s,\"weight_bytes\":%zu,\"ms_per_step_median\":%.3f,\"ms_per_step_min\":%.3f,"
           "\"gb_per_second\":%.2f}\n",
           rows, threads, half ? "true" : "false", bytes, seconds[REPEATS / 2] * 1e3, seconds[0] * 1e3, bytes / seconds[REPEATS / 2] / 1e9);
    return 0;
}
