/* Channels-last 2-d max pooling with disjoint windows (stride >= pool), forward and backward,
 * bit for bit as engine/kernels/pool.py's NumPy passes.
 *
 * A window is scanned in C order, as PyTorch's CPU kernel does: a later element wins when it is
 * greater or NaN, so the first of tied maxima and the last NaN win, and the value is copied from
 * x at the winner (NaN bits and the sign of a zero kept). NumPy's passes, innermost axis first,
 * pick the same element. `codes` holds each output's winner as its C-order offset in the window
 * (a * pw + b), so windows of up to 256 elements fit a byte. Backward writes each gradient plus
 * +0 (so -0 arrives as +0, as in PyTorch's sum into zeros) to its winner and +0 to the window's
 * other elements (and to gaps between windows).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loops.h"

typedef struct {
    Py_ssize_t n, h, w, c, ph, pw, sh, sw, oh, ow;
} Geometry;

typedef struct {
    float *best;
    int *arg;
} Scratch;

/* One output pixel's c channels, window top-left at `corner`; vectorized over channels. */
static inline void max_window(const float *restrict corner, float *restrict y,
                              unsigned char *restrict code, const Geometry *g,
                              const Scratch *t) {
    Py_ssize_t c = g->c;
    for (Py_ssize_t k = 0; k < c; k++) {
        t->best[k] = corner[k];
        t->arg[k] = 0;
    }
    for (Py_ssize_t a = 0; a < g->ph; a++) {
        for (Py_ssize_t b = a == 0 ? 1 : 0; b < g->pw; b++) {
            const float *src = corner + (a * g->w + b) * c;
            int offset = (int)(a * g->pw + b);
            for (Py_ssize_t k = 0; k < c; k++) {
                int win = src[k] > t->best[k] || isnan(src[k]);
                t->best[k] = win ? src[k] : t->best[k];
                t->arg[k] = win ? offset : t->arg[k];
            }
        }
    }
    for (Py_ssize_t k = 0; k < c; k++) {
        y[k] = t->best[k];
        code[k] = (unsigned char)t->arg[k];
    }
}

VECTOR_CLONES(forward_loop,
              (const float *x, float *y, unsigned char *codes, const Geometry *g, const Scratch *t),
              (x, y, codes, g, t)) {
    for (Py_ssize_t n = 0; n < g->n; n++) {
        const float *image = x + n * g->h * g->w * g->c;
        for (Py_ssize_t i = 0; i < g->oh; i++) {
            for (Py_ssize_t j = 0; j < g->ow; j++) {
                Py_ssize_t o = ((n * g->oh + i) * g->ow + j) * g->c;
                const float *corner = image + (i * g->sh * g->w + j * g->sw) * g->c;
                max_window(corner, y + o, codes + o, g, t);
            }
        }
    }
}

/* One output pixel's c channels: its gradient to the winner, +0 to the rest of the window. */
static inline void unpool_window(const float *restrict g, const unsigned char *restrict code,
                                 float *restrict corner, const Geometry *geo) {
    Py_ssize_t c = geo->c;
    for (Py_ssize_t a = 0; a < geo->ph; a++) {
        for (Py_ssize_t b = 0; b < geo->pw; b++) {
            float *dst = corner + (a * geo->w + b) * c;
            int offset = (int)(a * geo->pw + b);
            for (Py_ssize_t k = 0; k < c; k++) dst[k] = code[k] == offset ? g[k] + 0.0f : 0.0f;
        }
    }
}

VECTOR_CLONES(backward_loop,
              (const float *dy, const unsigned char *codes, float *dx, const Geometry *g),
              (dy, codes, dx, g)) {
    Py_ssize_t c = g->c;
    int tiled = g->sh == g->ph && g->sw == g->pw && g->oh * g->ph == g->h && g->ow * g->pw == g->w;
    if (!tiled) memset(dx, 0, (size_t)(g->n * g->h * g->w * c) * sizeof(float));
    for (Py_ssize_t n = 0; n < g->n; n++) {
        float *image = dx + n * g->h * g->w * c;
        for (Py_ssize_t i = 0; i < g->oh; i++) {
            for (Py_ssize_t j = 0; j < g->ow; j++) {
                Py_ssize_t o = ((n * g->oh + i) * g->ow + j) * c;
                float *corner = image + (i * g->sh * g->w + j * g->sw) * c;
                unpool_window(dy + o, codes + o, corner, g);
            }
        }
    }
}

static int fits_byte(Py_ssize_t ph, Py_ssize_t pw) { return ph * pw <= 256; }

static int parse(PyObject *args, Py_buffer *big, Py_buffer *small, Py_buffer *codes, Geometry *g,
                 const char *format) {
    if (!PyArg_ParseTuple(args, format, big, small, codes, &g->n, &g->h, &g->w, &g->c, &g->ph,
                          &g->pw, &g->sh, &g->sw, &g->oh, &g->ow))
        return 0;
    Py_ssize_t f = (Py_ssize_t)sizeof(float), outs = g->n * g->oh * g->ow * g->c;
    int ok = g->n >= 0 && g->c > 0 && g->ph > 0 && g->pw > 0 && fits_byte(g->ph, g->pw) &&
             g->sh >= g->ph && g->sw >= g->pw && g->oh > 0 && g->ow > 0 &&
             (g->oh - 1) * g->sh + g->ph <= g->h && (g->ow - 1) * g->sw + g->pw <= g->w &&
             big->len == g->n * g->h * g->w * g->c * f && small->len == outs * f &&
             codes->len == outs;
    if (!ok) {
        PyBuffer_Release(big);
        PyBuffer_Release(small);
        PyBuffer_Release(codes);
        PyErr_SetString(PyExc_ValueError, "max pool: buffers do not match the geometry");
    }
    return ok;
}

static PyObject *max_pool(PyObject *self, PyObject *args) {
    Py_buffer x, y, codes;
    Geometry g;
    if (!parse(args, &x, &y, &codes, &g, "y*w*w*(nnnn)(nn)(nn)(nn)")) return NULL;
    size_t c = (size_t)g.c;
    float *floats = malloc(c * sizeof(float));
    int *ints = malloc(c * sizeof(int));
    if (floats != NULL && ints != NULL) {
        Scratch t = {floats, ints};
        Py_BEGIN_ALLOW_THREADS
        forward_loop((const float *)x.buf, (float *)y.buf, (unsigned char *)codes.buf, &g, &t);
        Py_END_ALLOW_THREADS
    }
    int failed = floats == NULL || ints == NULL;
    free(floats);
    free(ints);
    PyBuffer_Release(&x);
    PyBuffer_Release(&y);
    PyBuffer_Release(&codes);
    if (failed) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject *max_unpool(PyObject *self, PyObject *args) {
    Py_buffer dx, dy, codes;
    Geometry g;
    if (!parse(args, &dx, &dy, &codes, &g, "w*y*y*(nnnn)(nn)(nn)(nn)")) return NULL;
    Py_BEGIN_ALLOW_THREADS
    backward_loop((const float *)dy.buf, (const unsigned char *)codes.buf, (float *)dx.buf, &g);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&dx);
    PyBuffer_Release(&dy);
    PyBuffer_Release(&codes);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"max_pool", max_pool, METH_VARARGS,
     "max_pool(x, y, codes, (n, h, w, c), (ph, pw), (sh, sw), (oh, ow)): window maxima into y "
     "and each window's winners into codes (uint8)."},
    {"max_unpool", max_unpool, METH_VARARGS,
     "max_unpool(dx, dy, codes, (n, h, w, c), (ph, pw), (sh, sw), (oh, ow)): dy written to "
     "the winners, +0 everywhere else."},
    ISA_METHOD,
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_pool", NULL, -1, methods};

PyMODINIT_FUNC PyInit__pool(void) {
    isa_init();
    return PyModule_Create(&module);
}
