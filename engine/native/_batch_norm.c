/* BatchNormalization's training passes over channels-last rows (rows of c channels), with the
 * float32 operations of the NumPy composite in engine/layers/normalization.py in its order, so
 * the results are bit-identical to it (built with -ffp-contract=off).
 *
 * NumPy sums a C-contiguous (rows, c) array over its rows one row after another (from +0.0,
 * each row added in turn), not pairwise; its mean divides that float32 sum by an intp
 * count, which computes in double and rounds to float32. The composite makes about a dozen
 * passes over memory in training (forward and backward); these make five and run without the
 * GIL, each on a part of the channels (sums) or of the rows (element-wise), so that two threads
 * can share one call's work with the same result.
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
VECTOR_CLONES
static void stats_loop(const float *restrict x, float *restrict mean, float *restrict var,
                       ptrdiff_t rows, ptrdiff_t c, ptrdiff_t j0, ptrdiff_t j1) {
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

/* xhat = (x - mean) * inv; y = xhat * gamma + beta */
VECTOR_CLONES
static void normalize_loop(const float *restrict x, const float *restrict mean,
                           const float *restrict inv, const float *restrict gamma,
                           const float *restrict beta, float *restrict xhat, float *restrict y,
                           ptrdiff_t rows, ptrdiff_t c) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        ptrdiff_t o = r * c;
        for (ptrdiff_t j = 0; j < c; j++) {
            float h = (x[o + j] - mean[j]) * inv[j];
            xhat[o + j] = h;
            y[o + j] = h * gamma[j] + beta[j];
        }
    }
}

/* The column sums of backward over channels j0..j1, from g and xhat: sums[0] = sum(g * xhat)
 * (d gamma), sums[1] = sum(g) (d beta), sums[2] = sum(g * gamma), sums[3] = sum(g * gamma *
 * xhat); sums is (4, c). */
VECTOR_CLONES
static void backward_sums_loop(const float *restrict g, const float *restrict xhat,
                               const float *restrict gamma, float *restrict sums,
                               ptrdiff_t rows, ptrdiff_t c, ptrdiff_t j0, ptrdiff_t j1) {
    for (ptrdiff_t lo = j0; lo < j1; lo += BLOCK) {
        ptrdiff_t m = j1 - lo < BLOCK ? j1 - lo : BLOCK;
        float s_gx[BLOCK], s_g[BLOCK], s_d[BLOCK], s_dx[BLOCK];
        for (ptrdiff_t j = 0; j < m; j++) s_gx[j] = s_g[j] = s_d[j] = s_dx[j] = 0.0f;
        for (ptrdiff_t r = 0; r < rows; r++) {
            const float *gr = g + r * c + lo, *xr = xhat + r * c + lo;
            for (ptrdiff_t j = 0; j < m; j++) {
                float d = gr[j] * gamma[lo + j];
                s_gx[j] = s_gx[j] + gr[j] * xr[j];
                s_g[j] = s_g[j] + gr[j];
                s_d[j] = s_d[j] + d;
                s_dx[j] = s_dx[j] + d * xr[j];
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

/* dx = (g * gamma - mean_d - xhat * mean_dx) * inv */
VECTOR_CLONES
static void backward_dx_loop(const float *restrict g, const float *restrict xhat,
                             const float *restrict gamma, const float *restrict mean_d,
                             const float *restrict mean_dx, const float *restrict inv,
                             float *restrict dx, ptrdiff_t rows, ptrdiff_t c) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        ptrdiff_t o = r * c;
        for (ptrdiff_t j = 0; j < c; j++) {
            float d = g[o + j] * gamma[j] - mean_d[j];
            dx[o + j] = (d - xhat[o + j] * mean_dx[j]) * inv[j];
        }
    }
}

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
    Py_buffer b[7]; /* x, xhat, y, mean, inv, gamma, beta */
    Py_ssize_t c, rows = 0;
    if (!PyArg_ParseTuple(args, "y*w*w*y*y*y*y*n", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
                          &b[6], &c))
        return NULL;
    int ok = shapes_ok(b, 7, 3, c, 0, &rows);
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        normalize_loop((const float *)b[0].buf, (const float *)b[3].buf, (const float *)b[4].buf,
                       (const float *)b[5].buf, (const float *)b[6].buf, (float *)b[1].buf,
                       (float *)b[2].buf, rows, c);
        Py_END_ALLOW_THREADS
    }
    return finish(b, 7, ok, "normalize: x, xhat, y (rows, c), the rest (c,) float32");
}

static PyObject *backward_sums(PyObject *self, PyObject *args) {
    Py_buffer b[4]; /* g, xhat, gamma, sums */
    Py_ssize_t c, j0, j1, rows = 0;
    if (!PyArg_ParseTuple(args, "y*y*y*w*n(nn)", &b[0], &b[1], &b[2], &b[3], &c, &j0, &j1))
        return NULL;
    int ok = shapes_ok(b, 4, 2, c, 4 * c, &rows) && 0 <= j0 && j0 <= j1 && j1 <= c;
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        backward_sums_loop((const float *)b[0].buf, (const float *)b[1].buf,
                           (const float *)b[2].buf, (float *)b[3].buf, rows, c, j0, j1);
        Py_END_ALLOW_THREADS
    }
    return finish(b, 4, ok, "backward_sums: g, xhat (rows, c), gamma (c,), sums (4, c) float32");
}

static PyObject *backward_dx(PyObject *self, PyObject *args) {
    Py_buffer b[7]; /* g, xhat, dx, gamma, mean_d, mean_dx, inv */
    Py_ssize_t c, rows = 0;
    if (!PyArg_ParseTuple(args, "y*y*w*y*y*y*y*n", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
                          &b[6], &c))
        return NULL;
    int ok = shapes_ok(b, 7, 3, c, 0, &rows);
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        backward_dx_loop((const float *)b[0].buf, (const float *)b[1].buf,
                         (const float *)b[3].buf, (const float *)b[4].buf,
                         (const float *)b[5].buf, (const float *)b[6].buf, (float *)b[2].buf,
                         rows, c);
        Py_END_ALLOW_THREADS
    }
    return finish(b, 7, ok, "backward_dx: g, xhat, dx (rows, c), the rest (c,) float32");
}

static PyMethodDef methods[] = {
    {"stats", stats, METH_VARARGS,
     "stats(x, mean, var, c, (j0, j1)): channels j0..j1's mean and biased variance over the "
     "rows."},
    {"normalize", normalize, METH_VARARGS,
     "normalize(x, xhat, y, mean, inv, gamma, beta, c): xhat = (x - mean) * inv and "
     "y = xhat * gamma + beta."},
    {"backward_sums", backward_sums, METH_VARARGS,
     "backward_sums(g, xhat, gamma, sums, c, (j0, j1)): channels j0..j1's sums of g * xhat, g, "
     "g * gamma and g * gamma * xhat."},
    {"backward_dx", backward_dx, METH_VARARGS,
     "backward_dx(g, xhat, dx, gamma, mean_d, mean_dx, inv, c): the input gradient."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_batch_norm", NULL, -1, methods};

PyMODINIT_FUNC PyInit__batch_norm(void) { return PyModule_Create(&module); }
