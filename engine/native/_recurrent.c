/* The LSTM's time loop, forward and backward, each in one call without the GIL, and the
 * one-step kernels of that loop for the Python loop.
 *
 * Why: the sequential loop is W4's critical path, and the second core idled through most of
 * the forward loop (its input projections took a third of the loop's time). Each row of the
 * batch runs its own recurrence, so the forward loop runs in two fixed halves of the batch's
 * rows, on this thread and the compiled split's worker (`_split.c`), once the caller has all
 * input projections. The backward loop runs on one thread and calls the caller's hook (its
 * `Behind`, which hands the finished time chunks' weight and input products to a worker
 * thread) with the GIL at the steps the caller marks.
 * Each step makes the very sgemm calls NumPy's matmul makes for the Python loop's products
 * (`hs[t][rows] @ rk` over the 4 gate matrices for each half of the rows, then `dxz[t] @ rkt`;
 * see numpy/_core/src/umath/matmul.c.src: row-major, no transposes, beta 0), on NumPy's own
 * OpenBLAS (bound by `_split.c`), or, at shapes where it gives the same bits, its own product
 * (`own_product` below), followed by the same element-wise loops as the per-step kernels, so
 * the results are bit-identical to the Python loop, with or without the compiled step.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "gate_exp.h"
#include "isa.h"
#include "split_api.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#include <immintrin.h>
#define OWN_PRODUCT 1
#endif

static const SplitApi *api;

/* The loops' per-step products without a BLAS call. A step's product is small (W4: 32 x 64 x
 * 64 per gate and half of the rows forward, 64 x 256 x 64 backward), and sgemm spends a good
 * part of it on packing both operands and on its dispatch. OpenBLAS's AVX-512 (SkylakeX)
 * kernels sum each output of such a product as one fused multiply-add chain over k from +0;
 * `own_product` does the same on the operands in place, a tile of up to 12 rows x 32 columns in
 * 24 registers (32 columns of k = 64 or 256 rows of B stay in the 48 KiB L1 while the rows go
 * by). It runs at the avx512 level (isa.h) and only at shapes where a probe product gives
 * sgemm's bits (`own_serves`), so the loops stay bit-identical to NumPy's matmul; elsewhere
 * (OpenBLAS's AVX2 kernels sum in another order, so does a k split into blocks) they call
 * sgemm as before. */
#ifdef OWN_PRODUCT
#define TILE_ROWS 12

/* c[rows x 32] = a[rows x k] @ b[k x 32], leading dimensions lda, ldb, ldc. */
__attribute__((target("avx512f"), always_inline)) static inline void
product_tile(const float *a, int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc,
             int64_t k, int rows) {
    __m512 acc[TILE_ROWS][2];
    for (int r = 0; r < rows; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t p = 0; p < k; p++) {
        __m512 b0 = _mm512_loadu_ps(b + p * ldb), b1 = _mm512_loadu_ps(b + p * ldb + 16);
        for (int r = 0; r < rows; r++) {
            __m512 x = _mm512_set1_ps(a[r * lda + p]);
            acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
        }
    }
    for (int r = 0; r < rows; r++) {
        _mm512_storeu_ps(c + r * ldc, acc[r][0]);
        _mm512_storeu_ps(c + r * ldc + 16, acc[r][1]);
    }
}

#define TILE_CASE(R) \
    case R:          \
        product_tile(a + i * lda, lda, b + j, ldb, c + i * ldc + j, ldc, k, R); \
        break;

/* c (m x n) = a (m x k) @ b (k x n), row-major, n a multiple of 32; the rows in tiles of as
 * even a size as TILE_ROWS allows (64 rows: 11 11 11 11 10 10, a few % faster than 12s and a
 * tile of 4). */
__attribute__((target("avx512f"))) static void own_product(int64_t m, int64_t n, int64_t k,
                                                           const float *a, int64_t lda,
                                                           const float *b, int64_t ldb, float *c,
                                                           int64_t ldc) {
    int64_t tiles = (m + TILE_ROWS - 1) / TILE_ROWS;
    for (int64_t j = 0; j < n; j += 32) {
        for (int64_t t = 0, i = 0; t < tiles; t++) {
            int64_t rows = m / tiles + (t < m % tiles);
            switch (rows) {
                TILE_CASE(12) TILE_CASE(11) TILE_CASE(10) TILE_CASE(9) TILE_CASE(8) TILE_CASE(7)
                TILE_CASE(6) TILE_CASE(5) TILE_CASE(4) TILE_CASE(3) TILE_CASE(2) TILE_CASE(1)
            }
            i += rows;
        }
    }
}
#endif

/* The product c = a @ b of a loop step (a m x k, b k x n, c m x n, each row-major and
 * contiguous), by `own_product` where `own`, else by the bound sgemm. */
static void step_product(sgemm64_fn sgemm, int own, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                         const float *a, const float *b, float *c) {
#ifdef OWN_PRODUCT
    if (own) {
        own_product(m, n, k, a, k, b, n, c, n);
        return;
    }
#endif
    sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
}

/* Whether `own_product` gives the bound sgemm's bits for (m x k) @ (k x n): one product of each
 * on the same pseudo-random operands, remembered per shape. Called with the GIL (the table is
 * shared). */
static int own_serves(sgemm64_fn sgemm, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k) {
#ifdef OWN_PRODUCT
    static struct {
        Py_ssize_t m, n, k;
        int same;
    } seen[8];
    static int count;
    if (m < 1 || k < 1 || n % 32 != 0 || isa_level != ISA_AVX512) return 0;
    for (int i = 0; i < count && i < 8; i++) {
        if (seen[i].m == m && seen[i].n == n && seen[i].k == k) return seen[i].same;
    }
    float *a = PyMem_RawMalloc((m * k + k * n + 2 * m * n) * sizeof(float));
    if (!a) return 0;
    float *b = a + m * k, *c = b + k * n, *mine = c + m * n;
    uint32_t state = 0x9e3779b9u;
    for (Py_ssize_t i = 0; i < m * k + k * n; i++) {
        state ^= state << 13, state ^= state >> 17, state ^= state << 5;
        a[i] = (float)((int32_t)state >> 8) * 0x1p-23f; /* in [-1, 1), all 24 bits used */
    }
    sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
    own_product(m, n, k, a, k, b, n, mine, n);
    int same = memcmp(c, mine, m * n * sizeof(float)) == 0;
    PyMem_RawFree(a);
    seen[count % 8].m = m, seen[count % 8].n = n, seen[count % 8].k = k;
    seen[count % 8].same = same;
    count++;
    return same;
#else
    (void)sgemm, (void)m, (void)n, (void)k;
    return 0;
#endif
}

/* One LSTM step after the recurrent product, as kernels.recurrent.lstm_forward's composite:
 * z (4 gates of m values, `stride` apart: i, f, o, c, pre-activations scaled by
 * _EXP_GATE_SCALE) += rec (4 blocks of m); each gate 1 / (1 + exp(z)), the candidate
 * g = 2 * that - 1 (tanh); c = f * c_prev + i * g; tc = tanh(c) as 2 / (1 + exp(-2c)) - 1;
 * h = o * tc. exp is gate_exp1. A stride above m runs the step on some rows of the batch. */
WIDE_CLONES(lstm_gates_loop,
            (float *restrict z, const float *restrict rec, const float *restrict c_prev,
             float *restrict c, float *restrict tc, float *restrict h, Py_ssize_t m,
             Py_ssize_t stride),
            (z, rec, c_prev, c, tc, h, m, stride)) {
    for (Py_ssize_t g = 0; g < 4; g++) {
        float *restrict zg = z + g * stride;
        const float *restrict rg = rec + g * m;
        for (Py_ssize_t k = 0; k < m; k++) zg[k] = 1.0f / (gate_exp1(zg[k] + rg[k]) + 1.0f);
    }
    const float *restrict i = z, *restrict f = z + stride, *restrict o = z + 2 * stride;
    float *restrict g = z + 3 * stride;
    for (Py_ssize_t k = 0; k < m; k++) {
        g[k] = g[k] * 2.0f - 1.0f;
        c[k] = f[k] * c_prev[k] + i[k] * g[k];
        float e = 1.0f / (gate_exp1(c[k] * -2.0f) + 1.0f);
        tc[k] = e * 2.0f - 1.0f;
        h[k] = o[k] * tc[k];
    }
}

/* The step above on all rows: the four gate blocks of m follow one another. */
static void lstm_step_forward_loop(float *z, const float *rec, const float *c_prev, float *c,
                                   float *tc, float *h, Py_ssize_t m) {
    lstm_gates_loop(z, rec, c_prev, c, tc, h, m, m);
}

/* One step of backpropagation through the cell: from dh, dc, the gates (4, n, u), tanh(c) and
 * c_prev, the gate pre-activation gradients written row-major into dxz (n, 4u), and dc
 * replaced by the gradient reaching c_prev. The six buffers must not overlap (restrict lets
 * the compiler vectorize the loop). */
WIDE_CLONES(lstm_cell_backward_loop,
            (const float *restrict dh, float *restrict dc, const float *restrict z,
             const float *restrict tc, const float *restrict c_prev, float *restrict dxz,
             Py_ssize_t n, Py_ssize_t u),
            (dh, dc, z, tc, c_prev, dxz, n, u)) {
    Py_ssize_t m = n * u;
    const float *restrict i = z, *restrict f = z + m, *restrict o = z + 2 * m;
    const float *restrict g = z + 3 * m;
    for (Py_ssize_t r = 0; r < n; r++) {
        float *restrict row = dxz + r * 4 * u;
        for (Py_ssize_t j = 0; j < u; j++) {
            Py_ssize_t k = r * u + j;
            float d_o = dh[k] * tc[k];
            float dtc = dh[k] * o[k];
            dtc = dtc * (1.0f - tc[k] * tc[k]);
            float dcc = dc[k] + dtc;
            float d_i = dcc * g[k], d_f = dcc * c_prev[k], d_g = dcc * i[k];
            row[j] = d_i * ((1.0f - i[k]) * i[k]);
            row[u + j] = d_f * ((1.0f - f[k]) * f[k]);
            row[2 * u + j] = d_o * ((1.0f - o[k]) * o[k]);
            row[3 * u + j] = d_g * (1.0f - g[k] * g[k]);
            dc[k] = dcc * f[k];
        }
    }
}


static int same_length(Py_buffer *bufs, int count) {
    for (int k = 1; k < count; k++) {
        if (bufs[k].len != bufs[0].len) return 0;
    }
    return 1;
}

static PyObject *lstm_step_forward(PyObject *self, PyObject *args) {
    Py_buffer b[6]; /* gates, rec, c_prev, c, tc, h */
    if (!PyArg_ParseTuple(args, "w*y*y*w*w*w*", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]))
        return NULL;
    Py_ssize_t m = b[2].len / (Py_ssize_t)sizeof(float);
    int ok = same_length(b + 2, 4) && b[0].len == 4 * b[2].len && b[1].len == b[0].len;
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        lstm_step_forward_loop((float *)b[0].buf, (const float *)b[1].buf,
                               (const float *)b[2].buf, (float *)b[3].buf, (float *)b[4].buf,
                               (float *)b[5].buf, m);
        Py_END_ALLOW_THREADS
    } else if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, "lstm_step_forward: gates must hold 4 states");
    }
    for (int k = 0; k < 6; k++) PyBuffer_Release(&b[k]);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

static PyObject *lstm_cell_backward(PyObject *self, PyObject *args) {
    Py_buffer b[6]; /* dh, dc, gates, tc, c_prev, dxz */
    Py_ssize_t n, u;
    if (!PyArg_ParseTuple(args, "y*w*y*y*y*w*nn", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &n,
                          &u))
        return NULL;
    Py_buffer states[4] = {b[0], b[1], b[3], b[4]};
    int ok = same_length(states, 4) && b[0].len == n * u * (Py_ssize_t)sizeof(float) &&
             b[2].len == 4 * b[0].len && b[5].len == 4 * b[0].len;
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        lstm_cell_backward_loop((const float *)b[0].buf, (float *)b[1].buf,
                                (const float *)b[2].buf, (const float *)b[3].buf,
                                (const float *)b[4].buf, (float *)b[5].buf, n, u);
        Py_END_ALLOW_THREADS
    } else if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, "lstm_cell_backward: shapes do not match (n, u)");
    }
    for (int k = 0; k < 6; k++) PyBuffer_Release(&b[k]);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

/* The caller's hook at step t, if `at` marks it: called with the GIL, which is then released
 * again; 0 when the hook raised (its error stays set). */
static int run_hook(PyThreadState **save, PyObject *hook, const uint8_t *at, Py_ssize_t t) {
    if (!at[t] || hook == Py_None) return 1;
    PyEval_RestoreThread(*save);
    PyObject *result = PyObject_CallFunction(hook, "n", t);
    Py_XDECREF(result);
    *save = PyEval_SaveThread();
    return result != NULL;
}

/* Whether the bound sgemm is there and every buffer holds `sizes[k]` float32s (`at` steps
 * bytes); sets ValueError on a size mismatch. */
static int check_sizes(Py_buffer *b, const Py_ssize_t *sizes, int count, const Py_buffer *at,
                       Py_ssize_t steps, const char *name) {
    int ok = at->len == steps;
    for (int k = 0; k < count; k++) ok = ok && b[k].len == sizes[k] * (Py_ssize_t)sizeof(float);
    if (!ok) PyErr_Format(PyExc_ValueError, "%s: buffer sizes do not match (steps, n, u)", name);
    return ok;
}

static int bound(void) {
    if (!api) api = PyCapsule_Import(SPLIT_API_CAPSULE, 0);
    return api && api->sgemm();
}

/* The forward loop on batch rows r0..r1-1 (each row's recurrence is independent of the
 * others'), with its own product buffer `rec` (4, r1 - r0, u). */
typedef struct {
    float *xz, *hs, *cs, *tcs, *rec;
    const float *rk;
    Py_ssize_t steps, n, u, r0, r1;
    sgemm64_fn sgemm;
    int own; /* the products by own_product */
} Rows;

static void forward_rows(void *arg) {
    const Rows *p = arg;
    Py_ssize_t m = p->n * p->u, u = p->u, rows = p->r1 - p->r0, mh = rows * u, at = p->r0 * u;
    for (Py_ssize_t t = 0; t < p->steps; t++) {
        for (Py_ssize_t g = 0; g < 4; g++) {
            step_product(p->sgemm, p->own, rows, u, u, p->hs + t * m + at, p->rk + g * u * u,
                         p->rec + g * mh);
        }
        lstm_gates_loop(p->xz + t * 4 * m + at, p->rec, p->cs + t * m + at,
                        p->cs + (t + 1) * m + at, p->tcs + t * m + at, p->hs + (t + 1) * m + at,
                        mh, m);
    }
}

static PyObject *lstm_forward(PyObject *self, PyObject *args) {
    Py_buffer b[5]; /* xz (T,4,n,u), rk (4,u,u), hs (T+1,n,u), cs (T+1,n,u), tcs (T,n,u) */
    Py_ssize_t steps, n, u;
    if (!PyArg_ParseTuple(args, "w*y*w*w*w*nnn", &b[0], &b[1], &b[2], &b[3], &b[4], &steps, &n,
                          &u))
        return NULL;
    Py_ssize_t m = n * u;
    Py_ssize_t sizes[5] = {steps * 4 * m, 4 * u * u, (steps + 1) * m, (steps + 1) * m, steps * m};
    int ok = 1;
    for (int k = 0; k < 5; k++) ok = ok && b[k].len == sizes[k] * (Py_ssize_t)sizeof(float);
    if (!ok) PyErr_SetString(PyExc_ValueError, "lstm_forward: sizes do not match");
    int ran = ok && bound();
    ok = ok && !PyErr_Occurred();
    float *rec = ran ? PyMem_RawMalloc(4 * m * sizeof(float)) : NULL;
    if (ran && !rec) {
        PyErr_NoMemory();
        ok = ran = 0;
    }
    if (ran) {
        Rows half[2];
        Py_ssize_t split = n >= 4 ? n / 2 : n;
        for (int k = 0; k < 2; k++) {
            Py_ssize_t r0 = k ? split : 0, r1 = k ? n : split;
            half[k] = (Rows){b[0].buf, b[2].buf, b[3].buf, b[4].buf, rec + 4 * r0 * u,
                             b[1].buf, steps, n, u, r0, r1, api->sgemm(),
                             own_serves(api->sgemm(), r1 - r0, u, u)};
        }
        Py_BEGIN_ALLOW_THREADS
        if (split < n) {
            api->call(forward_rows, &half[0], &half[1]);
        } else {
            forward_rows(&half[0]);
        }
        Py_END_ALLOW_THREADS
    }
    PyMem_RawFree(rec);
    for (int k = 0; k < 5; k++) PyBuffer_Release(&b[k]);
    if (!ok) return NULL;
    return PyBool_FromLong(ran);
}

/* The input projections of `chunks` steps, as the LSTM layer's composite: out[c, g] =
 * xt[c] @ kernel[g] (the sgemm call NumPy's broadcast matmul makes for that block), then
 * + bias[g] and * scale[g] on the block while it is in cache, where the composite makes
 * each a pass over the whole chunk (a fifth of the projection's time). */
static void project_blocks(const float *xt, const float *kernel, const float *bias,
                           const float *scale, float *out, Py_ssize_t chunks, Py_ssize_t n,
                           Py_ssize_t f, Py_ssize_t u, sgemm64_fn sgemm) {
    for (Py_ssize_t c = 0; c < chunks; c++) {
        for (Py_ssize_t g = 0; g < 4; g++) {
            float *o = out + (c * 4 + g) * n * u;
            sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, n, u, f, 1.0f, xt + c * n * f, f,
                  kernel + g * f * u, u, 0.0f, o, u);
            if (bias) {
                for (Py_ssize_t r = 0; r < n; r++) {
                    for (Py_ssize_t j = 0; j < u; j++) o[r * u + j] += bias[g * u + j];
                }
            }
            if (scale) {
                for (Py_ssize_t k = 0; k < n * u; k++) o[k] *= scale[g];
            }
        }
    }
}

/* A buffer for an argument that may be None (then `view` stays empty); 0 on error. */
static int optional_buffer(PyObject *o, Py_buffer *view) {
    return o == Py_None || PyObject_GetBuffer(o, view, PyBUF_C_CONTIGUOUS) == 0;
}

static PyObject *lstm_project(PyObject *self, PyObject *args) {
    /* xt (C,n,f), kernel (4,f,u), out (C,4,n,u); bias (4,1,u) and scale (4,) or None */
    Py_buffer b[3], opt[2] = {{0}, {0}};
    PyObject *bias_o, *scale_o;
    Py_ssize_t chunks, n, f, u;
    if (!PyArg_ParseTuple(args, "y*y*OOw*nnnn", &b[0], &b[1], &bias_o, &scale_o, &b[2], &chunks,
                          &n, &f, &u))
        return NULL;
    Py_ssize_t sizes[3] = {chunks * n * f, 4 * f * u, chunks * 4 * n * u};
    int ok = 1;
    for (int k = 0; k < 3; k++) ok = ok && b[k].len == sizes[k] * (Py_ssize_t)sizeof(float);
    ok = ok && optional_buffer(bias_o, &opt[0]) && optional_buffer(scale_o, &opt[1]);
    ok = ok && (!opt[0].obj || opt[0].len == 4 * u * (Py_ssize_t)sizeof(float)) &&
         (!opt[1].obj || opt[1].len == 4 * (Py_ssize_t)sizeof(float));
    if (!ok && !PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, "lstm_project: sizes do not match");
    }
    int ran = ok && bound();
    ok = ok && !PyErr_Occurred();
    if (ran) {
        sgemm64_fn sgemm = api->sgemm();
        Py_BEGIN_ALLOW_THREADS
        project_blocks(b[0].buf, b[1].buf, opt[0].obj ? opt[0].buf : NULL,
                       opt[1].obj ? opt[1].buf : NULL, b[2].buf, chunks, n, f, u, sgemm);
        Py_END_ALLOW_THREADS
    }
    for (int k = 0; k < 3; k++) PyBuffer_Release(&b[k]);
    for (int k = 0; k < 2; k++) {
        if (opt[k].obj) PyBuffer_Release(&opt[k]);
    }
    if (!ok) return NULL;
    return PyBool_FromLong(ran);
}

static PyObject *lstm_backward(PyObject *self, PyObject *args) {
    /* dh (n,u), dc (n,u), gates (T,4,n,u), tcs (T,n,u), cs (T+1,n,u), rkt (4u,u), dxz (T,n,4u) */
    Py_buffer b[7], at, dys = {0};
    PyObject *dys_o, *hook;
    Py_ssize_t steps, n, u;
    if (!PyArg_ParseTuple(args, "w*w*y*y*y*y*w*Oy*Onnn", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
                          &b[6], &dys_o, &at, &hook, &steps, &n, &u))
        return NULL;
    Py_ssize_t m = n * u;
    Py_ssize_t sizes[7] = {m, m, steps * 4 * m, steps * m, (steps + 1) * m, 4 * u * u,
                           steps * 4 * m};
    int ok = check_sizes(b, sizes, 7, &at, steps, "lstm_backward");
    int has_dys = dys_o != Py_None;
    if (ok && has_dys) {
        ok = PyObject_GetBuffer(dys_o, &dys, PyBUF_C_CONTIGUOUS) == 0;
        if (ok && dys.len != steps * m * (Py_ssize_t)sizeof(float)) {
            PyErr_SetString(PyExc_ValueError, "lstm_backward: dys must be (steps, n, u)");
            ok = 0;
        }
    }
    int ran = ok && bound();
    ok = ok && !PyErr_Occurred();
    if (ran) {
        sgemm64_fn sgemm = api->sgemm();
        int own = own_serves(sgemm, n, u, 4 * u);
        float *dh = b[0].buf, *dc = b[1].buf, *dxz = b[6].buf;
        const float *gates = b[2].buf, *tcs = b[3].buf, *cs = b[4].buf, *rkt = b[5].buf;
        const float *dy = has_dys ? dys.buf : NULL;
        PyThreadState *save = PyEval_SaveThread();
        for (Py_ssize_t t = steps - 1; t >= 0; t--) {
            if (dy) {
                for (Py_ssize_t k = 0; k < m; k++) dh[k] = dh[k] + dy[t * m + k];
            }
            lstm_cell_backward_loop(dh, dc, gates + t * 4 * m, tcs + t * m, cs + t * m,
                                    dxz + t * 4 * m, n, u);
            step_product(sgemm, own, n, u, 4 * u, dxz + t * 4 * m, rkt, dh);
            ok = run_hook(&save, hook, at.buf, t);
            if (!ok) break;
        }
        PyEval_RestoreThread(save);
    }
    for (int k = 0; k < 7; k++) PyBuffer_Release(&b[k]);
    PyBuffer_Release(&at);
    if (dys.obj) PyBuffer_Release(&dys);
    if (!ok) return NULL;
    return PyBool_FromLong(ran);
}

static PyObject *own_product_serves(PyObject *self, PyObject *args) {
    Py_ssize_t m, n, k;
    if (!PyArg_ParseTuple(args, "nnn", &m, &n, &k)) return NULL;
    int ran = bound();
    if (PyErr_Occurred()) return NULL;
    return PyBool_FromLong(ran && own_serves(api->sgemm(), m, n, k));
}

static PyMethodDef methods[] = {
    {"own_product_serves", own_product_serves, METH_VARARGS,
     "own_product_serves(m, n, k): whether the loops take their (m, k) @ (k, n) step products "
     "without sgemm, having found that this gives sgemm's bits."},
    {"lstm_step_forward", lstm_step_forward, METH_VARARGS,
     "lstm_step_forward(gates, rec, c_prev, c, tanh_c, h): one LSTM step after its recurrent "
     "product, exp included."},
    {"lstm_cell_backward", lstm_cell_backward, METH_VARARGS,
     "lstm_cell_backward(dh, dc, gates, tanh_c, c_prev, dxz, n, u): one step of the cell's "
     "backward pass."},
    {"lstm_forward", lstm_forward, METH_VARARGS,
     "lstm_forward(xz, rk, hs, cs, tanh_cs, steps, n, u): the forward loop over every "
     "step, the batch in two halves of rows on two threads (the compiled split's worker) "
     "from 4 rows on; returns False, doing nothing, when no sgemm is bound."},
    {"lstm_project", lstm_project, METH_VARARGS,
     "lstm_project(xt, kernel, bias, scale, out, chunks, n, f, u): out[c, g] = (xt[c] @ "
     "kernel[g] + bias[g]) * scale[g] (bias and scale may be None); returns False, doing "
     "nothing, when no sgemm is bound."},
    {"lstm_backward", lstm_backward, METH_VARARGS,
     "lstm_backward(dh, dc, gates, tanh_cs, cs, rkt, dxz, dys, at, hook, steps, n, u): the "
     "backward loop from the last step down, hook(t) after step t where at[t]; dh ends as "
     "the gradient of the initial state. Returns False, doing nothing, when no sgemm is bound."},
    ISA_METHOD,
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_recurrent", NULL, -1, methods};

PyMODINIT_FUNC PyInit__recurrent(void) {
    isa_init();
    return PyModule_Create(&module);
}
