/* im2col for channels-last 2-d convolution: the column matrix that NumPy builds by padding the
 * input and copying a strided window view, written straight from the unpadded input.
 *
 * Row (n, oh, ow) of the output holds, for each kernel offset (a, b) in C order, the C channels
 * of x[n, oh * sh + a * dh - ph, ow * sw + b * dw - pw] (zeros outside the image). The values
 * are copies, so the matrix is bit-identical to NumPy's, without the padded copy of x and
 * NumPy's strided-copy iterator.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "loops.h"

typedef struct {
    Py_ssize_t n, h, w, c, kh, kw, sh, sw, dh, dw, ph, pw, oh, ow;
} Geometry;

/* Short copies as plain loops: a memcpy call per 16-64 floats cost more than the copy. */
static inline void copy_floats(float *restrict dst, const float *restrict src, Py_ssize_t n) {
    for (Py_ssize_t k = 0; k < n; k++) dst[k] = src[k];
}

static inline void zero_floats(float *restrict dst, Py_ssize_t n) {
    for (Py_ssize_t k = 0; k < n; k++) dst[k] = 0.0f;
}

/* One window row: kernel row at input row y, output column j. With no dilation and the whole
 * row inside the image, its kw * c floats are contiguous in x: one copy. */
static inline float *window_row(float *dst, const float *image, Py_ssize_t y, Py_ssize_t j,
                                const Geometry *g) {
    Py_ssize_t span = g->kw * g->c, z0 = j * g->sw - g->pw;
    if (y < 0 || y >= g->h) {
        zero_floats(dst, span);
        return dst + span;
    }
    const float *row = image + y * g->w * g->c;
    if (g->dw == 1 && z0 >= 0 && z0 + g->kw <= g->w) {
        copy_floats(dst, row + z0 * g->c, span);
        return dst + span;
    }
    for (Py_ssize_t b = 0; b < g->kw; b++, dst += g->c) {
        Py_ssize_t z = z0 + b * g->dw;
        if (z < 0 || z >= g->w) {
            zero_floats(dst, g->c);
        } else {
            copy_floats(dst, row + z * g->c, g->c);
        }
    }
    return dst;
}

VECTOR_CLONES(im2col_loop, (const float *x, float *cols, const Geometry *g), (x, cols, g)) {
    for (Py_ssize_t n = 0; n < g->n; n++) {
        const float *image = x + n * g->h * g->w * g->c;
        for (Py_ssize_t i = 0; i < g->oh; i++) {
            for (Py_ssize_t j = 0; j < g->ow; j++) {
                float *dst = cols + ((n * g->oh + i) * g->ow + j) * g->kh * g->kw * g->c;
                for (Py_ssize_t a = 0; a < g->kh; a++)
                    dst = window_row(dst, image, i * g->sh + a * g->dh - g->ph, j, g);
            }
        }
    }
}

static PyObject *im2col(PyObject *self, PyObject *args) {
    Py_buffer x, cols;
    Geometry g;
    if (!PyArg_ParseTuple(args, "y*w*(nnnn)(nn)(nn)(nn)(nn)(nn)", &x, &cols, &g.n, &g.h, &g.w,
                          &g.c, &g.kh, &g.kw, &g.sh, &g.sw, &g.dh, &g.dw, &g.ph, &g.pw, &g.oh,
                          &g.ow))
        return NULL;
    Py_ssize_t f = (Py_ssize_t)sizeof(float);
    int ok = g.n >= 0 && g.h > 0 && g.w > 0 && g.c > 0 && g.kh > 0 && g.kw > 0 && g.sh > 0 &&
             g.sw > 0 && g.dh > 0 && g.dw > 0 && g.oh > 0 && g.ow > 0 &&
             x.len == g.n * g.h * g.w * g.c * f &&
             cols.len == g.n * g.oh * g.ow * g.kh * g.kw * g.c * f;
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        im2col_loop((const float *)x.buf, (float *)cols.buf, &g);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&x);
    PyBuffer_Release(&cols);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "im2col: buffers do not match the geometry");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"im2col", im2col, METH_VARARGS,
     "im2col(x, cols, (n, h, w, c), (kh, kw), (sh, sw), (dh, dw), (ph, pw), (oh, ow)): the "
     "channels-last column matrix of a 2-d convolution, zeros where the window leaves x."},
    ISA_METHOD,
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_im2col", NULL, -1, methods};

PyMODINIT_FUNC PyInit__im2col(void) {
    isa_init();
    return PyModule_Create(&module);
}
