/* Row loops shared by the one-thread kernels (_kernels.c) and the fused attention
 * (_attention.c): NumPy's pairwise row sum, the row max, and the masked softmax with its
 * gradient, each the same float32 operations in the same order as its NumPy composite. */
#ifndef ENGINE_NATIVE_ROWS_H
#define ENGINE_NATIVE_ROWS_H

#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "gate_exp.h"
#include "isa.h"

/* NumPy's float32 sum of a contiguous row (its add reduction: 0 plus the pairwise sum, whose
 * order pairwise_column below spells out). Inlined up to 128 terms, so that the loops calling
 * it keep their vector width (a call into code built for another one stalls). */
static float pairwise_split(const float *a, Py_ssize_t n);

static inline __attribute__((always_inline)) float pairwise_row(const float *a, Py_ssize_t n) {
    if (n < 8) {
        float res = -0.0f;
        for (Py_ssize_t i = 0; i < n; i++) res = res + a[i];
        return res;
    }
    if (n > 128) return pairwise_split(a, n);
    float r[8];
    for (int j = 0; j < 8; j++) r[j] = a[j];
    Py_ssize_t i = 8;
    for (; i < n - n % 8; i += 8) {
        for (int j = 0; j < 8; j++) r[j] = r[j] + a[i + j];
    }
    float res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) res = res + a[i];
    return res;
}

static float pairwise_split(const float *a, Py_ssize_t n) {
    Py_ssize_t half = n / 2;
    half -= half % 8;
    return pairwise_row(a, half) + pairwise_row(a + half, n - half);
}

static inline float row_sum(const float *a, Py_ssize_t n) { return 0.0f + pairwise_row(a, n); }

/* The largest value of a row, or its first NaN if it has one (NumPy's max). A max does not
 * depend on the order, so it runs in 8 lanes, written as vector operations because GCC does
 * not vectorize the select of a running max by itself. */
typedef float lanes_f __attribute__((vector_size(32)));
typedef int32_t lanes_i __attribute__((vector_size(32)));

static inline __attribute__((always_inline)) float row_max(const float *a, Py_ssize_t n) {
    float top = a[0];
    int any = 0;
    Py_ssize_t i = 0;
    if (n >= 8) {
        lanes_f m = {a[0], a[0], a[0], a[0], a[0], a[0], a[0], a[0]};
        lanes_i bad = {0};
        for (; i + 8 <= n; i += 8) {
            lanes_f v;
            memcpy(&v, a + i, sizeof v);
            lanes_i gt = v > m;
            m = (lanes_f)(((lanes_i)v & gt) | ((lanes_i)m & ~gt));
            bad |= v != v;
        }
        for (int j = 0; j < 8; j++) {
            top = m[j] > top ? m[j] : top;
            any |= bad[j];
        }
    }
    for (; i < n; i++) {
        any |= a[i] != a[i];
        top = a[i] > top ? a[i] : top;
    }
    if (!any) return top;
    for (i = 0; a[i] == a[i]; i++) {
    }
    return a[i];
}

/* engine.kernels.softmax.masked_softmax on rows of n: masked scores set to -1e9, the row's
 * max subtracted, gate_exp1, divided by the row's sum, masked probabilities set to 0. */
WIDE_CLONES(softmax_loop,
            (float *restrict s, const uint8_t *restrict mask, Py_ssize_t rows, Py_ssize_t n),
            (s, mask, rows, n)) {
    for (Py_ssize_t r = 0; r < rows; r++, s += n) {
        const uint8_t *restrict m = mask ? mask + r * n : NULL;
        if (m) {
            for (Py_ssize_t j = 0; j < n; j++) s[j] = m[j] ? s[j] : -1e9f;
        }
        float top = row_max(s, n);
        for (Py_ssize_t j = 0; j < n; j++) s[j] = gate_exp1(s[j] - top);
        float total = row_sum(s, n);
        for (Py_ssize_t j = 0; j < n; j++) s[j] = s[j] / total;
        if (m) {
            for (Py_ssize_t j = 0; j < n; j++) s[j] = s[j] * (m[j] ? 1.0f : 0.0f);
        }
    }
}

/* engine.kernels.softmax.softmax_backward: dp = (dp - sum(dp * p)) * p, row by row; tmp is
 * scratch of n. */
WIDE_CLONES(softmax_grad_loop,
            (float *restrict dp, const float *restrict p, float *restrict tmp, Py_ssize_t rows,
             Py_ssize_t n),
            (dp, p, tmp, rows, n)) {
    for (Py_ssize_t r = 0; r < rows; r++, dp += n, p += n) {
        for (Py_ssize_t j = 0; j < n; j++) tmp[j] = dp[j] * p[j];
        float dot = row_sum(tmp, n);
        for (Py_ssize_t j = 0; j < n; j++) dp[j] = (dp[j] - dot) * p[j];
    }
}

#endif
