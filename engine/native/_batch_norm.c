/* BatchNormalization's training passes over channels-last rows (rows of c channels), with the
 * float32 operations of the NumPy composite in engine/layers/normalization.py in its order, so
 * the results are bit-identical to it (built with -ffp-contract=off). A ReLU that follows the
 * layer can run inside the same passes: forward as the last step of normalize, backward as the
 * mask on the upstream gradient that its own backward would have applied.
 *
 * NumPy sums a C-contiguous (rows, c) array over its rows one row after another (from +0.0,
 * each row added in turn), not pairwise; its mean divides that float32 sum by an intp
 * count, which computes in double and rounds to float32. The composite makes about a dozen
 * passes over memory in training (forward and backward); these make five and run without the
 * GIL, each on a part of the channels (sums) or of the rows (element-wise), so that two threads
 * can share one call's work with the same result (engine/kernels/batch_norm.py shares only the
 * element-wise passes: two threads summing halves of the channels both stream every row).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>

#include "loops.h"

static inline float mean_of(float sum, ptrdiff_t rows) {
    return (float)((double)sum / (double)rows);
}

/* Channels are summed BLOCK at a time in local accumulators, so that two threads summing
 * different channels never write to one cache line. */
#define BLOCK 128

/* mean and (biased) var of channels j0..j1: mean = sum(x) / rows; var = sum((x - mean)^2) /
 * rows */
VECTOR_CLONES(stats_loop,
              (const float *restrict x, float *restrict mean, float *restrict var, ptrdiff_t rows,
               ptrdiff_t c, ptrdiff_t j0, ptrdiff_t j1),
              (x, mean, var, rows, c, j0, j1)) {
    for (ptrdiff_t lo = j0; lo < j1; lo += BLOCK) {
        ptrdiff_t m = j1 - lo < BLOCK ? j1 - lo : BLOCK;
        float s[BLOCK], q[BLOCK];
        for (ptrdiff_t j = 0; j < m; j++) s[j] = q[j] = 0.0f;
        for (ptrdiff_t r = 0; r < rows; r++) {
            const float *row = x + r * c + lo;
            for (ptrdiff_t j = 0; j < m; j++) s[j] = s[j] + row[j];
        }
        for (ptrdiff_t j = 0; j < m; j++) s[j] = mean_of(s[j], rows);
        for (ptrdiff_t r = 0; r < rows; r++) {
            const float *row = x + r * c + lo;
            for (ptrdiff_t j = 0; j < m; j++) {
                float d = row[j] - s[j];
                q[j] = q[j] + d * d;
            }
        }
        for (ptrdiff_t j = 0; j < m; j++) {
            mean[lo + j] = s[j];
            var[lo + j] = mean_of(q[j], rows);
        }
    }
}

/* y = (x - mean) * inv * gamma + beta, then maximum(y, 0) when relu: the ReLU that follows the
 * layer in the same pass. xhat = (x - mean) * inv is not kept: backward computes it again from
 * x with the same operations, which costs less than writing and reading it. */
VECTOR_CLONES(normalize_loop,
              (const float *restrict x, const float *restrict mean, const float *restrict inv,
               const float *restrict gamma, const float *restrict beta, float *restrict y,
               ptrdiff_t rows, ptrdiff_t c, int relu),
              (x, mean, inv, gamma, beta, y, rows, c, relu)) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        ptrdiff_t o = r * c;
        for (ptrdiff_t j = 0; j < c; j++) {
            float v = (x[o + j] - mean[j]) * inv[j] * gamma[j] + beta[j];
            y[o + j] = relu ? numpy_relu(v) : v;
        }
    }
}

/* The upstream gradient as backward uses it: masked by a following ReLU's output when there is
 * one (mask not NULL), as that ReLU's own backward would have written it. */
static inline float upstream(const float *restrict g, const float *restrict mask, ptrdiff_t i) {
    return mask ? relu_masked(g[i], mask[i]) : g[i];
}

/* The column sums of backward over channels j0..j1, from g and xhat = (x - mean) * inv:
 * sums[0] = sum(g * xhat) (d gamma), sums[1] = sum(g) (d beta), sums[2] = sum(g * gamma),
 * sums[3] = sum(g * gamma * xhat); sums is (4, c). */
VECTOR_CLONES(backward_sums_loop,
              (const float *restrict g, const float *restrict mask, const float *restrict x,
               const float *restrict mean, const float *restrict inv, const float *restrict gamma,
               float *restrict sums, ptrdiff_t rows, ptrdiff_t c, ptrdiff_t j0, ptrdiff_t j1),
              (g, mask, x, mean, inv, gamma, sums, rows, c, j0, j1)) {
    for (ptrdiff_t lo = j0; lo < j1; lo += BLOCK) {
        ptrdiff_t m = j1 - lo < BLOCK ? j1 - lo : BLOCK;
        float s_gx[BLOCK], s_g[BLOCK], s_d[BLOCK], s_dx[BLOCK];
        for (ptrdiff_t j = 0; j < m; j++) s_gx[j] = s_g[j] = s_d[j] = s_dx[j] = 0.0f;
        for (ptrdiff_t r = 0; r < rows; r++) {
            ptrdiff_t o = r * c + lo;
            for (ptrdiff_t j = 0; j < m; j++) {
                float h = (x[o + j] - mean[lo + j]) * inv[lo + j];
                float gv = upstream(g, mask, o + j);
                float d = gv * gamma[lo + j];
                s_gx[j] = s_gx[j] + gv * h;
                s_g[j] = s_g[j] + gv;
                s_d[j] = s_d[j] + d;
                s_dx[j] = s_dx[j] + d * h;
            }
        }
        for (ptrdiff_t j = 0; j < m; j++) {
            sums[lo + j] = s_gx[j];
            sums[c + lo + j] = s_g[j];
            sums[2 * c + lo + j] = s_d[j];
            sums[3 * c + lo + j] = s_dx[j];
        }
    }
}

/* dx = (g * gamma - mean_d - xhat * mean_dx) * inv, xhat = (x - mean) * inv */
VECTOR_CLONES(backward_dx_loop,
              (const float *restrict g, const float *restrict mask, const float *restrict x,
               const float *restrict mean, const float *restrict gamma,
               const float *restrict mean_d, const float *restrict mean_dx,
               const float *restrict inv, float *restrict dx, ptrdiff_t rows, ptrdiff_t c),
              (g, mask, x, mean, gamma, mean_d, mean_dx, inv, dx, rows, c)) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        ptrdiff_t o = r * c;
        for (ptrdiff_t j = 0; j < c; j++) {
            float h = (x[o + j] - mean[j]) * inv[j];
            float d = upstream(g, mask, o + j) * gamma[j] - mean_d[j];
            dx[o + j] = (d - h * mean_dx[j]) * inv[j];
        }
    }
}

/* An optional buffer argument: None gives an empty view (NULL, length 0). */
static int optional(PyObject *obj, Py_buffer *view, int writable) {
    if (obj == Py_None) {
        view->obj = NULL;
        view->buf = NULL;
        view->len = 0;
        return 1;
    }
    return PyObject_GetBuffer(obj, view, writable ? PyBUF_WRITABLE : PyBUF_SIMPLE) == 0;
}

/* Whether an optional buffer is absent or holds `len` bytes. */
static int absent_or(Py_buffer *view, Py_ssize_t len) { return !view->obj || view->len == len; }

/* Whether every buffer holds float32s, the first `big` of them rows * c and the rest c (or
 * `last_len` floats for the final one when it is not 0). */
static int shapes_ok(Py_buffer *b, int count, int big, Py_ssize_t c, Py_ssize_t last_len,
                     Py_ssize_t *rows) {
    Py_ssize_t f = (Py_ssize_t)sizeof(float);
    if (c <= 0 || b[0].len % (c * f) || b[0].len == 0) return 0;
    *rows = b[0].len / (c * f);
    for (int k = 0; k < count; k++) {
        Py_ssize_t want = k < big ? b[0].len : c * f;
        if (k == count - 1 && last_len) want = last_len * f;
        if (b[k].len != want) return 0;
    }
    return 1;
}

static PyObject *finish(Py_buffer *b, int count, int ok, const char *message) {
    for (int k = 0; k < count; k++) PyBuffer_Release(&b[k]);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, message);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *stats(PyObject *self, PyObject *args) {
    Py_buffer b[3]; /* x, mean, var */
    Py_ssize_t c, j0, j1, rows = 0;
    if (!PyArg_ParseTuple(args, "y*w*w*n(nn)", &b[0], &b[1], &b[2], &c, &j0, &j1)) return NULL;
    int ok = shapes_ok(b, 3, 1, c, 0, &rows) && 0 <= j0 && j0 <= j1 && j1 <= c;
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        stats_loop((const float *)b[0].buf, (float *)b[1].buf, (float *)b[2].buf, rows, c, j0,
                   j1);
        Py_END_ALLOW_THREADS
    }
    return finish(b, 3, ok, "stats: x (rows, c), mean and var (c,) float32");
}

static PyObject *normalize(PyObject *self, PyObject *args) {
    Py_buffer b[6]; /* x, y, mean, inv, gamma, beta */
    Py_ssize_t c, rows = 0;
    int relu;
    if (!PyArg_ParseTuple(args, "y*w*y*y*y*y*np", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &c,
                          &relu))
        return NULL;
    int ok = shapes_ok(b, 6, 2, c, 0, &rows);
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        normalize_loop((const float *)b[0].buf, (const float *)b[2].buf, (const float *)b[3].buf,
                       (const float *)b[4].buf, (const float *)b[5].buf, (float *)b[1].buf, rows,
                       c, relu);
        Py_END_ALLOW_THREADS
    }
    return finish(b, 6, ok, "normalize: x, y (rows, c), the rest (c,) float32");
}

static PyObject *backward_sums(PyObject *self, PyObject *args) {
    Py_buffer b[7]; /* g, x, mean, inv, gamma, sums, then the ReLU output or empty */
    PyObject *mask;
    Py_ssize_t c, j0, j1, rows = 0;
    if (!PyArg_ParseTuple(args, "y*Oy*y*y*y*w*n(nn)", &b[0], &mask, &b[1], &b[2], &b[3], &b[4],
                          &b[5], &c, &j0, &j1))
        return NULL;
    if (!optional(mask, &b[6], 0))
        return finish(b, 6, 0, "backward_sums: mask must be None or a float32 buffer");
    int ok = shapes_ok(b, 6, 2, c, 4 * c, &rows) && absent_or(&b[6], b[0].len) && 0 <= j0 &&
             j0 <= j1 && j1 <= c;
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        backward_sums_loop((const float *)b[0].buf, (const float *)b[6].buf,
                           (const float *)b[1].buf, (const float *)b[2].buf,
                           (const float *)b[3].buf, (const float *)b[4].buf, (float *)b[5].buf,
                           rows, c, j0, j1);
        Py_END_ALLOW_THREADS
    }
    return finish(b, 7, ok,
                  "backward_sums: g, mask (or None), x (rows, c), mean, inv, gamma (c,), sums "
                  "(4, c) float32");
}

static PyObject *backward_dx(PyObject *self, PyObject *args) {
    Py_buffer b[9]; /* g, x, dx, mean, gamma, mean_d, mean_dx, inv, then the ReLU output or empty */
    PyObject *mask;
    Py_ssize_t c, rows = 0;
    if (!PyArg_ParseTuple(args, "y*Oy*w*y*y*y*y*y*n", &b[0], &mask, &b[1], &b[2], &b[3], &b[4],
                          &b[5], &b[6], &b[7], &c))
        return NULL;
    if (!optional(mask, &b[8], 0))
        return finish(b, 8, 0, "backward_dx: mask must be None or a float32 buffer");
    int ok = shapes_ok(b, 8, 3, c, 0, &rows) && absent_or(&b[8], b[0].len);
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        backward_dx_loop((const float *)b[0].buf, (const float *)b[8].buf,
                         (const float *)b[1].buf, (const float *)b[3].buf,
                         (const float *)b[4].buf, (const float *)b[5].buf,
                         (const float *)b[6].buf, (const float *)b[7].buf, (float *)b[2].buf,
                         rows, c);
        Py_END_ALLOW_THREADS
    }
    return finish(b, 9, ok,
                  "backward_dx: g, mask (or None), x, dx (rows, c), the rest (c,) float32");
}

static PyMethodDef methods[] = {
    {"stats", stats, METH_VARARGS,
     "stats(x, mean, var, c, (j0, j1)): channels j0..j1's mean and biased variance over the "
     "rows."},
    {"normalize", normalize, METH_VARARGS,
     "normalize(x, y, mean, inv, gamma, beta, c, relu): y = (x - mean) * inv * gamma + beta, "
     "then maximum(y, 0) if relu."},
    {"backward_sums", backward_sums, METH_VARARGS,
     "backward_sums(g, mask, x, mean, inv, gamma, sums, c, (j0, j1)): channels j0..j1's sums of "
     "g * xhat, g, g * gamma and g * gamma * xhat, xhat = (x - mean) * inv, g first masked by "
     "a ReLU output unless mask is None."},
    {"backward_dx", backward_dx, METH_VARARGS,
     "backward_dx(g, mask, x, dx, mean, gamma, mean_d, mean_dx, inv, c): the input gradient, "
     "g masked as in backward_sums."},
    ISA_METHOD,
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_batch_norm", NULL, -1, methods};

PyMODINIT_FUNC PyInit__batch_norm(void) {
    isa_init();
    return PyModule_Create(&module);
}
