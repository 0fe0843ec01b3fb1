/* Element-wise loops shared by the one-thread kernels (_kernels.c) and the two-thread split
 * (_split.c). Each does the same float32 operations in the same order as its NumPy composite. */
#ifndef ENGINE_NATIVE_LOOPS_H
#define ENGINE_NATIVE_LOOPS_H

#include <float.h>
#include <math.h>
#include <stddef.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
/* for kernels whose results may use fused multiply-adds: AVX-512 and AVX2 with FMA */
#define FMA_CLONES \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VECTOR_CLONES
#define FMA_CLONES
#endif

VECTOR_CLONES
static void adam_loop(float *p, const float *g, float *m,
                      float *v, ptrdiff_t n, float c1, float c2, float eps,
                      float alpha) {
    for (ptrdiff_t i = 0; i < n; i++) {
        float mi = m[i] + (g[i] - m[i]) * c1;
        float vi = v[i] + (g[i] * g[i] - v[i]) * c2;
        /* moments below float32's normal range become +0 (see adam_update) */
        mi = fabsf(mi) < FLT_MIN ? 0.0f : mi;
        vi = vi < FLT_MIN ? 0.0f : vi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] - (mi / (sqrtf(vi) + eps)) * alpha;
    }
}

/* NumPy's maximum(x, 0): NaN stays NaN, -0.0 becomes +0.0 */
static inline float numpy_relu(float x) { return (x > 0.0f || x != x) ? x : 0.0f; }

/* NumPy's dy * (y > 0): the mask cast to 1.0 or 0.0, so NaN stays and negative dy gives -0.0 */
static inline float relu_masked(float dy, float y) { return dy * (y > 0.0f ? 1.0f : 0.0f); }

VECTOR_CLONES
static void bias_relu_loop(float *z, const float *b, ptrdiff_t rows, ptrdiff_t cols, int relu) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        float *row = z + r * cols;
        if (b) {
            for (ptrdiff_t j = 0; j < cols; j++) row[j] = row[j] + b[j];
        }
        if (relu) {
            for (ptrdiff_t j = 0; j < cols; j++) row[j] = numpy_relu(row[j]);
        }
    }
}

/* row += other, element by element: one level of a scatter-add. */
VECTOR_CLONES
static void add_row(float *restrict row, const float *restrict other, ptrdiff_t d) {
    for (ptrdiff_t j = 0; j < d; j++) row[j] = row[j] + other[j];
}

#endif
