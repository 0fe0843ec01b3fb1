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

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define VECTOR_CLONES
#endif

VECTOR_CLONES
static void adam_loop(float *p, const float *g, float *m,
                      float *v, Py_ssize_t n, float c1, float c2, float eps,
                      float alpha) {
    for (Py_ssize_t i = 0; i < n; i++) {
        float mi = m[i] + (g[i] - m[i]) * c1;
        float vi = v[i] + (g[i] * g[i] - v[i]) * c2;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] - (mi / (sqrtf(vi) + eps)) * alpha;
    }
}

VECTOR_CLONES
static void bias_relu_loop(float *z, const float *b, Py_ssize_t rows, Py_ssize_t cols, int relu) {
    for (Py_ssize_t r = 0; r < rows; r++) {
        float *row = z + r * cols;
        if (b) {
            for (Py_ssize_t j = 0; j < cols; j++) row[j] = row[j] + b[j];
        }
        if (relu) {
            /* NumPy's maximum(x, 0): NaN stays NaN, -0.0 becomes +0.0 */
            for (Py_ssize_t j = 0; j < cols; j++) {
                float x = row[j];
                row[j] = (x > 0.0f || x != x) ? x : 0.0f;
            }
        }
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

static PyMethodDef methods[] = {
    {"adam", adam, METH_VARARGS,
     "adam(param, grad, m, v, 1 - beta_1, 1 - beta_2, epsilon, alpha): Keras's Adam step in "
     "place on contiguous float32 buffers."},
    {"bias_relu", bias_relu, METH_VARARGS,
     "bias_relu(z, bias, cols, has_bias, relu): z = relu(z + bias) in place, row by row, on a "
     "contiguous float32 buffer of rows of `cols`."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels", NULL, -1, methods};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
