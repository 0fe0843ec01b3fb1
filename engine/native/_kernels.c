/* Single-pass element-wise kernels for the CPU training step.
 *
 * Each kernel performs, element by element, the same float32 operations in the same order as
 * its NumPy composite in the engine, so results are bit-identical to it: no FMA contraction
 * (built with -ffp-contract=off), and only IEEE-exact operations (+, -, *, /, sqrt). The NumPy
 * composite makes one pass over memory per operation; these make one in all and run without
 * the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "gate_exp.h"
#include "loops.h"
#include "rows.h"

/* LayerNormalization.forward's composite over rows of n: xhat = (x - mean) * inv with
 * inv = 1 / sqrt(var + eps), y = xhat * gamma + beta (either may be NULL); tmp is scratch. */
WIDE_CLONES(layer_norm_loop,
            (const float *restrict x, const float *restrict gamma, const float *restrict beta,
             float *restrict y, float *restrict xhat, float *restrict inv, float *restrict tmp,
             Py_ssize_t rows, Py_ssize_t n, float eps),
            (x, gamma, beta, y, xhat, inv, tmp, rows, n, eps)) {
    for (Py_ssize_t r = 0; r < rows; r++, x += n, y += n, xhat += n) {
        float mean = row_sum(x, n) / (float)n;
        for (Py_ssize_t j = 0; j < n; j++) {
            xhat[j] = x[j] - mean;
            tmp[j] = xhat[j] * xhat[j];
        }
        float var = row_sum(tmp, n) / (float)n;
        float iv = 1.0f / sqrtf(var + eps);
        inv[r] = iv;
        for (Py_ssize_t j = 0; j < n; j++) {
            xhat[j] = xhat[j] * iv;
            y[j] = gamma ? xhat[j] * gamma[j] : xhat[j];
        }
        if (beta) {
            for (Py_ssize_t j = 0; j < n; j++) y[j] = y[j] + beta[j];
        }
    }
}

/* LayerNormalization.backward over rows of n: with d = g * gamma, the input's gradient
 * dx = (d - mean(d) - xhat * mean(d * xhat)) * inv, and, where given, gamma's gradient
 * sum(g * xhat) and beta's sum(g) over the rows, added up row after row from 0 as NumPy's
 * reduction over the leading axes does. tmp is scratch of n. */
WIDE_CLONES(layer_norm_grad_loop,
            (const float *restrict g, const float *restrict xhat, const float *restrict inv,
             const float *restrict gamma, float *restrict dx, float *restrict dgamma,
             float *restrict dbeta, float *restrict tmp, Py_ssize_t rows, Py_ssize_t n),
            (g, xhat, inv, gamma, dx, dgamma, dbeta, tmp, rows, n)) {
    for (Py_ssize_t j = 0; j < n; j++) {
        if (dgamma) dgamma[j] = 0.0f;
        if (dbeta) dbeta[j] = 0.0f;
    }
    for (Py_ssize_t r = 0; r < rows; r++, g += n, xhat += n, dx += n) {
        if (dgamma) {
            for (Py_ssize_t j = 0; j < n; j++) dgamma[j] = dgamma[j] + g[j] * xhat[j];
        }
        if (dbeta) {
            for (Py_ssize_t j = 0; j < n; j++) dbeta[j] = dbeta[j] + g[j];
        }
        for (Py_ssize_t j = 0; j < n; j++) {
            dx[j] = gamma ? g[j] * gamma[j] : g[j];
            tmp[j] = dx[j] * xhat[j];
        }
        float mean_d = row_sum(dx, n) / (float)n;
        float mean_dx = row_sum(tmp, n) / (float)n;
        for (Py_ssize_t j = 0; j < n; j++) dx[j] = ((dx[j] - mean_d) - xhat[j] * mean_dx) * inv[r];
    }
}

static int same_length(Py_buffer *bufs, int count) {
    for (int k = 0; k < count; k++) {
        if (bufs[k].len != bufs[0].len || bufs[k].len % (Py_ssize_t)sizeof(float)) {
            PyErr_SetString(PyExc_ValueError, "buffers must hold the same number of float32s");
            return 0;
        }
    }
    return 1;
}

static PyObject *adam(PyObject *self, PyObject *args) {
    Py_buffer b[4];
    float c1, c2, eps, alpha;
    if (!PyArg_ParseTuple(args, "w*y*w*w*ffff", &b[0], &b[1], &b[2], &b[3], &c1, &c2, &eps,
                          &alpha))
        return NULL;
    int ok = same_length(b, 4);
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        adam_loop((float *)b[0].buf, (const float *)b[1].buf, (float *)b[2].buf,
                  (float *)b[3].buf, b[0].len / (Py_ssize_t)sizeof(float), c1, c2, eps, alpha);
        Py_END_ALLOW_THREADS
    }
    for (int k = 0; k < 4; k++) PyBuffer_Release(&b[k]);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

/* out = dy * (y > 0): ReLU's gradient read from its output, as NumPy multiplies by the mask
 * cast to 1.0 or 0.0 (so dy * 0.0 keeps NaN and gives -0.0 for negative dy). */
VECTOR_CLONES(relu_grad_loop,
              (const float *restrict y, const float *restrict dy, float *restrict out,
               Py_ssize_t n),
              (y, dy, out, n)) {
    for (Py_ssize_t i = 0; i < n; i++) out[i] = relu_masked(dy[i], y[i]);
}

/* relu_grad_loop over rows of `cols`, and sum = 0 + each row of out in turn: NumPy's
 * out.sum(axis=0) for rows of two or more values (a bias's gradient), in the same pass. */
VECTOR_CLONES(relu_grad_sum_loop,
              (const float *restrict y, const float *restrict dy, float *restrict out,
               float *restrict sum, Py_ssize_t rows, Py_ssize_t cols),
              (y, dy, out, sum, rows, cols)) {
    for (Py_ssize_t j = 0; j < cols; j++) sum[j] = 0.0f;
    for (Py_ssize_t r = 0; r < rows; r++, y += cols, dy += cols, out += cols) {
        for (Py_ssize_t j = 0; j < cols; j++) {
            out[j] = relu_masked(dy[j], y[j]);
            sum[j] = sum[j] + out[j];
        }
    }
}

/* out = maximum(a + b, 0): an Add of two inputs and the ReLU after it, as NumPy computes them */
VECTOR_CLONES(add_relu_loop,
              (const float *restrict a, const float *restrict b, float *restrict out, Py_ssize_t n),
              (a, b, out, n)) {
    for (Py_ssize_t i = 0; i < n; i++) out[i] = numpy_relu(a[i] + b[i]);
}

/* out = loop(a, b) over three contiguous float32 buffers of one length: the element-wise
 * kernels of two inputs. */
typedef void (*binary_loop)(const float *restrict, const float *restrict, float *restrict,
                            Py_ssize_t);

static PyObject *binary(PyObject *args, binary_loop loop) {
    Py_buffer b[3]; /* a, b, out */
    if (!PyArg_ParseTuple(args, "y*y*w*", &b[0], &b[1], &b[2])) return NULL;
    int ok = same_length(b, 3);
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        loop((const float *)b[0].buf, (const float *)b[1].buf, (float *)b[2].buf,
             b[0].len / (Py_ssize_t)sizeof(float));
        Py_END_ALLOW_THREADS
    }
    for (int k = 0; k < 3; k++) PyBuffer_Release(&b[k]);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

static PyObject *relu_grad(PyObject *self, PyObject *args) { return binary(args, relu_grad_loop); }

static PyObject *add_relu(PyObject *self, PyObject *args) { return binary(args, add_relu_loop); }

static PyObject *relu_grad_sum(PyObject *self, PyObject *args) {
    Py_buffer b[4]; /* y, dy, out, sum */
    Py_ssize_t cols;
    if (!PyArg_ParseTuple(args, "y*y*w*w*n", &b[0], &b[1], &b[2], &b[3], &cols)) return NULL;
    int ok = same_length(b, 3);
    Py_ssize_t n = b[0].len / (Py_ssize_t)sizeof(float);
    if (ok && (cols < 1 || n % cols || b[3].len != cols * (Py_ssize_t)sizeof(float))) {
        PyErr_SetString(PyExc_ValueError,
                        "relu_grad_sum: rows of `cols` float32s and a sum of cols");
        ok = 0;
    }
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        relu_grad_sum_loop((const float *)b[0].buf, (const float *)b[1].buf, (float *)b[2].buf,
                           (float *)b[3].buf, n / cols, cols);
        Py_END_ALLOW_THREADS
    }
    for (int k = 0; k < 4; k++) PyBuffer_Release(&b[k]);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

static PyObject *bias_relu(PyObject *self, PyObject *args) {
    Py_buffer z, b;
    Py_ssize_t cols;
    int has_bias, relu;
    if (!PyArg_ParseTuple(args, "w*y*npp", &z, &b, &cols, &has_bias, &relu)) return NULL;
    Py_ssize_t n = z.len / (Py_ssize_t)sizeof(float);
    int ok = cols > 0 && z.len % (Py_ssize_t)sizeof(float) == 0 && n % cols == 0 &&
             (!has_bias || b.len == cols * (Py_ssize_t)sizeof(float));
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "bias_relu: rows of `cols` float32s and a bias of cols");
    } else {
        Py_BEGIN_ALLOW_THREADS
        bias_relu_loop((float *)z.buf, has_bias ? (const float *)b.buf : NULL, n / cols, cols,
                       relu);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&z);
    PyBuffer_Release(&b);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

/* NumPy's pairwise float32 sum (its add reduction's inner loop) of rows[idx[i] * d + c] over
 * i < n: fewer than 8 terms one by one from -0.0; up to 128 in 8 interleaved accumulators
 * combined as a tree, then the remainder; more split in two at a multiple of 8. */
static float pairwise_column(const float *rows, const Py_ssize_t *idx, Py_ssize_t n,
                             Py_ssize_t d, Py_ssize_t c) {
    if (n < 8) {
        float res = -0.0f;
        for (Py_ssize_t i = 0; i < n; i++) res = res + rows[idx[i] * d + c];
        return res;
    }
    if (n <= 128) {
        float r[8];
        for (int j = 0; j < 8; j++) r[j] = rows[idx[j] * d + c];
        Py_ssize_t i = 8;
        for (; i < n - n % 8; i += 8) {
            for (int j = 0; j < 8; j++) r[j] = r[j] + rows[idx[i + j] * d + c];
        }
        float res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res = res + rows[idx[i] * d + c];
        return res;
    }
    Py_ssize_t half = n / 2;
    half -= half % 8;
    return pairwise_column(rows, idx, half, d, c) +
           pairwise_column(rows, idx + half, n - half, d, c);
}

/* out = 0, then out[ids[k]] += rows[k] in the order of engine.layers.embedding.scatter_rows:
 * per id, its first `levels` occurrences (in k order) added one by one, then the rest summed
 * as NumPy's add.reduceat sums a segment (its first row plus the pairwise sum of the others)
 * and added once. order and start are scratch of n and vocab + 1. */
static int scatter_rows_loop(const int64_t *ids, const float *rows, float *out, Py_ssize_t n,
                             Py_ssize_t d, Py_ssize_t vocab, int levels, Py_ssize_t *order,
                             Py_ssize_t *start) {
    for (Py_ssize_t k = 0; k < n; k++) {
        if (ids[k] < 0 || ids[k] >= vocab) return 0;
    }
    memset(out, 0, (size_t)(vocab * d) * sizeof(float));
    memset(start, 0, (size_t)(vocab + 1) * sizeof(Py_ssize_t));
    for (Py_ssize_t k = 0; k < n; k++) start[ids[k] + 1]++;
    for (Py_ssize_t v = 0; v < vocab; v++) start[v + 1] += start[v];
    for (Py_ssize_t k = 0; k < n; k++) order[start[ids[k]]++] = k;
    /* start[v] is now the end of v's run; v's run begins at start[v - 1] (0 for v = 0) */
    for (Py_ssize_t v = 0; v < vocab; v++) {
        Py_ssize_t lo = v ? start[v - 1] : 0, count = start[v] - lo;
        if (!count) continue;
        float *o = out + v * d;
        Py_ssize_t head = count < levels ? count : levels;
        for (Py_ssize_t j = 0; j < head; j++) add_row(o, rows + order[lo + j] * d, d);
        if (count > levels) {
            const Py_ssize_t *rest = order + lo + levels;
            for (Py_ssize_t c = 0; c < d; c++) {
                float tail = rows[rest[0] * d + c] +
                             pairwise_column(rows, rest + 1, count - levels - 1, d, c);
                o[c] = o[c] + tail;
            }
        }
    }
    return 1;
}

static PyObject *scatter_rows(PyObject *self, PyObject *args) {
    Py_buffer ids, rows, out;
    Py_ssize_t d;
    int levels;
    if (!PyArg_ParseTuple(args, "y*y*w*ni", &ids, &rows, &out, &d, &levels)) return NULL;
    Py_ssize_t n = ids.len / (Py_ssize_t)sizeof(int64_t);
    Py_ssize_t vocab = d > 0 ? out.len / (Py_ssize_t)sizeof(float) / d : 0;
    int ok = d > 0 && levels > 0 && rows.len == n * d * (Py_ssize_t)sizeof(float) &&
             out.len == vocab * d * (Py_ssize_t)sizeof(float);
    Py_ssize_t *order = NULL, *start = NULL;
    if (ok) {
        order = PyMem_RawMalloc((size_t)(n ? n : 1) * sizeof(Py_ssize_t));
        start = PyMem_RawMalloc((size_t)(vocab + 1) * sizeof(Py_ssize_t));
        if (!order || !start) {
            PyErr_NoMemory();
            ok = 0;
        }
    } else {
        PyErr_SetString(PyExc_ValueError, "scatter_rows: rows (n, d) and out (vocab, d) float32");
    }
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        ok = scatter_rows_loop((const int64_t *)ids.buf, (const float *)rows.buf, (float *)out.buf,
                               n, d, vocab, levels, order, start);
        Py_END_ALLOW_THREADS
        if (!ok) PyErr_SetString(PyExc_IndexError, "scatter_rows: an id is outside [0, vocab)");
    }
    PyMem_RawFree(order);
    PyMem_RawFree(start);
    PyBuffer_Release(&ids);
    PyBuffer_Release(&rows);
    PyBuffer_Release(&out);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

/* Rows of `n` float32s: the number of rows, or -1 (with an exception set) when `len` bytes
 * are not whole rows. */
static Py_ssize_t row_count(Py_buffer *b, Py_ssize_t n, const char *name) {
    Py_ssize_t row = n * (Py_ssize_t)sizeof(float);
    if (n <= 0 || b->len % row) {
        PyErr_Format(PyExc_ValueError, "%s: buffers must hold whole rows of float32s", name);
        return -1;
    }
    return b->len / row;
}

/* n floats of scratch when *ok, else NULL; clears *ok (with MemoryError set) if none. */
static float *scratch_row(int *ok, Py_ssize_t n) {
    float *tmp = *ok ? PyMem_RawMalloc((size_t)n * sizeof(float)) : NULL;
    if (*ok && !tmp) {
        PyErr_NoMemory();
        *ok = 0;
    }
    return tmp;
}

static PyObject *softmax_rows(PyObject *self, PyObject *args) {
    Py_buffer s, m;
    Py_ssize_t n;
    int has_mask;
    if (!PyArg_ParseTuple(args, "w*y*np", &s, &m, &n, &has_mask)) return NULL;
    Py_ssize_t rows = row_count(&s, n, "softmax_rows");
    int ok = rows >= 0;
    if (ok && has_mask && m.len != rows * n) {
        PyErr_SetString(PyExc_ValueError, "softmax_rows: the mask needs one byte per score");
        ok = 0;
    }
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        softmax_loop((float *)s.buf, has_mask ? (const uint8_t *)m.buf : NULL, rows, n);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&s);
    PyBuffer_Release(&m);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

static PyObject *softmax_grad_rows(PyObject *self, PyObject *args) {
    Py_buffer b[2]; /* dp, p */
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "w*y*n", &b[0], &b[1], &n)) return NULL;
    Py_ssize_t rows = row_count(&b[0], n, "softmax_grad_rows");
    int ok = rows >= 0 && same_length(b, 2);
    float *tmp = scratch_row(&ok, n);
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        softmax_grad_loop((float *)b[0].buf, (const float *)b[1].buf, tmp, rows, n);
        Py_END_ALLOW_THREADS
    }
    PyMem_RawFree(tmp);
    for (int k = 0; k < 2; k++) PyBuffer_Release(&b[k]);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

/* Sparse categorical cross-entropy on probability rows of n and its gradient with respect to
 * the logits of a softmax that made them (SparseCategoricalCrossentropy's forward and
 * logits_backward): q = p[label] / rowsum(p), qc = clip(q, lo, hi) (NaN stays), and
 * grad = p * kept, minus kept at the label, with kept = (qc == q) * up. Returns 0, writing
 * nothing, when a label lies outside [0, n): the caller's composite then raises its error. */
static int sparse_xent_loop(const float *restrict p, const void *labels, int wide,
                            float *restrict grad, float *restrict qc_out, Py_ssize_t rows,
                            Py_ssize_t n, float lo, float hi, float up) {
    for (Py_ssize_t r = 0; r < rows; r++) {
        int64_t k = wide ? ((const int64_t *)labels)[r] : ((const int32_t *)labels)[r];
        if (k < 0 || k >= n) return 0;
    }
    for (Py_ssize_t r = 0; r < rows; r++, p += n, grad += n) {
        int64_t k = wide ? ((const int64_t *)labels)[r] : ((const int32_t *)labels)[r];
        float q = p[k] / row_sum(p, n);
        float qc = q < lo ? lo : q;
        qc = qc > hi ? hi : qc;
        float kept = (qc == q ? 1.0f : 0.0f) * up;
        for (Py_ssize_t j = 0; j < n; j++) grad[j] = p[j] * kept;
        grad[k] = grad[k] - kept;
        qc_out[r] = qc;
    }
    return 1;
}

static PyObject *sparse_xent_rows(PyObject *self, PyObject *args) {
    Py_buffer b[4]; /* probs, labels, grad, qc */
    Py_ssize_t n;
    float lo, hi, up;
    if (!PyArg_ParseTuple(args, "y*y*w*w*nfff", &b[0], &b[1], &b[2], &b[3], &n, &lo, &hi, &up))
        return NULL;
    Py_ssize_t rows = row_count(&b[0], n, "sparse_xent_rows");
    Py_ssize_t row_bytes = rows * (Py_ssize_t)sizeof(float);
    int wide = rows > 0 && b[1].len == rows * 8;
    int ok = rows >= 0 && b[2].len == b[0].len && b[3].len == row_bytes &&
             (wide || b[1].len == rows * 4);
    if (rows >= 0 && !ok && !PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "sparse_xent_rows: shapes do not match rows of n");
    int ran = 0;
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        ran = sparse_xent_loop((const float *)b[0].buf, b[1].buf, wide, (float *)b[2].buf,
                               (float *)b[3].buf, rows, n, lo, hi, up);
        Py_END_ALLOW_THREADS
    }
    for (int k = 0; k < 4; k++) PyBuffer_Release(&b[k]);
    if (!ok) return NULL;
    return PyBool_FromLong(ran);
}

static PyObject *layer_norm_rows(PyObject *self, PyObject *args) {
    Py_buffer b[6]; /* x, gamma, beta, y, xhat, inv */
    Py_ssize_t n;
    int has_gamma, has_beta;
    float eps;
    if (!PyArg_ParseTuple(args, "y*y*y*w*w*w*nppf", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &n,
                          &has_gamma, &has_beta, &eps))
        return NULL;
    Py_ssize_t rows = row_count(&b[0], n, "layer_norm_rows");
    Py_buffer same[3] = {b[0], b[3], b[4]};
    Py_ssize_t row_bytes = n * (Py_ssize_t)sizeof(float);
    int ok = rows >= 0 && same_length(same, 3) &&
             b[5].len == rows * (Py_ssize_t)sizeof(float) &&
             (!has_gamma || b[1].len == row_bytes) && (!has_beta || b[2].len == row_bytes);
    if (rows >= 0 && !ok && !PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "layer_norm_rows: shapes do not match rows of n");
    float *tmp = scratch_row(&ok, n);
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        layer_norm_loop((const float *)b[0].buf, has_gamma ? (const float *)b[1].buf : NULL,
                        has_beta ? (const float *)b[2].buf : NULL, (float *)b[3].buf,
                        (float *)b[4].buf, (float *)b[5].buf, tmp, rows, n, eps);
        Py_END_ALLOW_THREADS
    }
    PyMem_RawFree(tmp);
    for (int k = 0; k < 6; k++) PyBuffer_Release(&b[k]);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

static PyObject *layer_norm_grad_rows(PyObject *self, PyObject *args) {
    Py_buffer b[7]; /* g, xhat, inv, gamma, dx, dgamma, dbeta */
    Py_ssize_t n;
    int has_gamma, want_dgamma, want_dbeta;
    if (!PyArg_ParseTuple(args, "y*y*y*y*w*w*w*nppp", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
                          &b[6], &n, &has_gamma, &want_dgamma, &want_dbeta))
        return NULL;
    Py_ssize_t rows = row_count(&b[0], n, "layer_norm_grad_rows");
    Py_buffer same[3] = {b[0], b[1], b[4]};
    Py_ssize_t row_bytes = n * (Py_ssize_t)sizeof(float);
    int ok = rows >= 0 && same_length(same, 3) &&
             b[2].len == rows * (Py_ssize_t)sizeof(float) &&
             (!has_gamma || b[3].len == row_bytes) && (!want_dgamma || b[5].len == row_bytes) &&
             (!want_dbeta || b[6].len == row_bytes);
    if (rows >= 0 && !ok && !PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "layer_norm_grad_rows: shapes do not match rows of n");
    float *tmp = scratch_row(&ok, n);
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        layer_norm_grad_loop((const float *)b[0].buf, (const float *)b[1].buf,
                             (const float *)b[2].buf, has_gamma ? (const float *)b[3].buf : NULL,
                             (float *)b[4].buf, want_dgamma ? (float *)b[5].buf : NULL,
                             want_dbeta ? (float *)b[6].buf : NULL, tmp, rows, n);
        Py_END_ALLOW_THREADS
    }
    PyMem_RawFree(tmp);
    for (int k = 0; k < 7; k++) PyBuffer_Release(&b[k]);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"adam", adam, METH_VARARGS,
     "adam(param, grad, m, v, 1 - beta_1, 1 - beta_2, epsilon, alpha): Keras's Adam step in "
     "place on contiguous float32 buffers."},
    {"relu_grad", relu_grad, METH_VARARGS,
     "relu_grad(y, dy, out): out = dy * (y > 0) on contiguous float32 buffers of one length."},
    {"relu_grad_sum", relu_grad_sum, METH_VARARGS,
     "relu_grad_sum(y, dy, out, sum, cols): relu_grad over rows of `cols`, and "
     "sum = out.sum(axis=0) as NumPy adds the rows."},
    {"add_relu", add_relu, METH_VARARGS,
     "add_relu(a, b, out): out = maximum(a + b, 0) on contiguous float32 buffers of one length."},
    {"bias_relu", bias_relu, METH_VARARGS,
     "bias_relu(z, bias, cols, has_bias, relu): z = relu(z + bias) in place, row by row, on a "
     "contiguous float32 buffer of rows of `cols`."},
    {"scatter_rows", scatter_rows, METH_VARARGS,
     "scatter_rows(ids, rows, out, d, levels): out = 0, then each row added to out[id] in "
     "Embedding's order (int64 ids, float32 rows of d)."},
    {"softmax_rows", softmax_rows, METH_VARARGS,
     "softmax_rows(scores, mask, n, has_mask): the masked softmax of each row of n, in place."},
    {"softmax_grad_rows", softmax_grad_rows, METH_VARARGS,
     "softmax_grad_rows(dp, p, n): dp = (dp - rowsum(dp * p)) * p, in place."},
    {"sparse_xent_rows", sparse_xent_rows, METH_VARARGS,
     "sparse_xent_rows(probs, labels, grad, qc, n, lo, hi, up): sparse cross-entropy's clipped "
     "label probability and logits gradient over rows of n (int32 or int64 labels); False, "
     "writing nothing, when a label is out of range."},
    {"layer_norm_rows", layer_norm_rows, METH_VARARGS,
     "layer_norm_rows(x, gamma, beta, y, xhat, inv, n, has_gamma, has_beta, eps): "
     "LayerNormalization over rows of n."},
    {"layer_norm_grad_rows", layer_norm_grad_rows, METH_VARARGS,
     "layer_norm_grad_rows(g, xhat, inv, gamma, dx, dgamma, dbeta, n, has_gamma, "
     "want_dgamma, want_dbeta): its gradients."},
    ISA_METHOD,
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels", NULL, -1, methods};

PyMODINIT_FUNC PyInit__kernels(void) {
    isa_init();
    return PyModule_Create(&module);
}
