/* im2col for channels-last 2-d convolution: the column matrix that NumPy builds by padding the
 * input and copying a strided window view, written straight from the unpadded input.
 *
 * Row (n, oh, ow) of the output holds, for each kernel offset (a, b) in C order, the C channels
 * of x[n, oh * sh + a * dh - ph, ow * sw + b * dw - pw] (zeros outside the image). The values
 * are copies, so the matrix is bit-identical to NumPy's; NumPy's general strided copy moved one
 * 64-byte run of channels at a time through its iterator and took as long as the product that
 * follows it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

typedef struct {
    Py_ssize_t n, h, w, c, kh, kw, sh, sw, dh, dw, ph, pw, oh, ow;
} Geometry;

static void im2col_loop(const float *x, float *cols, const Geometry *g) {
    size_t run = (size_t)g->c * sizeof(float);
    for (Py_ssize_t n = 0; n < g->n; n++) {
        const float *image = x + n * g->h * g->w * g->c;
        for (Py_ssize_t i = 0; i < g->oh; i++) {
            for (Py_ssize_t j = 0; j < g->ow; j++) {
                float *dst = cols + ((n * g->oh + i) * g->ow + j) * g->kh * g->kw * g->c;
                for (Py_ssize_t a = 0; a < g->kh; a++) {
                    Py_ssize_t y = i * g->sh + a * g->dh - g->ph;
                    for (Py_ssize_t b = 0; b < g->kw; b++, dst += g->c) {
                        Py_ssize_t z = j * g->sw + b * g->dw - g->pw;
                        if (y < 0 || y >= g->h || z < 0 || z >= g->w) {
                            memset(dst, 0, run);
                        } else {
                            memcpy(dst, image + (y * g->w + z) * g->c, run);
                        }
                    }
                }
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
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_im2col", NULL, -1, methods};

PyMODINIT_FUNC PyInit__im2col(void) { return PyModule_Create(&module); }
