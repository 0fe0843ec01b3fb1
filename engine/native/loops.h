/* Element-wise loops shared by the one-thread kernels (_kernels.c) and the two-thread split
 * (_split.c). Each does the same float32 operations in the same order as its NumPy composite. */
#ifndef ENGINE_NATIVE_LOOPS_H
#define ENGINE_NATIVE_LOOPS_H

#include <float.h>
#include <math.h>
#include <stddef.h>

#include "isa.h"

VECTOR_CLONES(adam_loop,
              (float *p, const float *g, float *m, float *v, ptrdiff_t n, float c1, float c2,
               float eps, float alpha),
              (p, g, m, v, n, c1, c2, eps, alpha)) {
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

VECTOR_CLONES(bias_relu_loop,
              (float *z, const float *b, ptrdiff_t rows, ptrdiff_t cols, int relu),
              (z, b, rows, cols, relu)) {
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
VECTOR_CLONES(add_row,
              (float *restrict row, const float *restrict other, ptrdiff_t d),
              (row, other, d)) {
    for (ptrdiff_t j = 0; j < d; j++) row[j] = row[j] + other[j];
}

#endif
