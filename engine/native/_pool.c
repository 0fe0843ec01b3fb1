/* Channels-last 2-d max pooling with disjoint windows (stride >= pool), forward and backward,
 * bit for bit as engine/kernels/pool.py's NumPy passes.
 *
 * The NumPy composite pools rows first, then columns; each pass keeps a later offset only when
 * it is greater (`>`) and takes the value from x at the winner. Here each window runs the same
 * two stages, per window column the row winner r_j, then among those the column winner. Backward
 * retraces NumPy's two routing passes arithmetic for arithmetic (g * 1.0, g * 0.0, g - g * m),
 * so it needs every r_j: `codes` holds cj in its low bits(pw) bits, then each r_j in bits(ph)
 * bits (bits(n) = bits to hold n - 1), which fits a byte for 2x2, 3x3, 2x3, 4x2, ...
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

#include "loops.h"

typedef struct {
    Py_ssize_t n, h, w, c, ph, pw, sh, sw, oh, ow;
} Geometry;

static int bits(Py_ssize_t n) {
    int b = 0;
    while (((Py_ssize_t)1 << b) < n) b++;
    return b;
}

typedef struct {
    float *rbest, *best;
    int *rarg, *carg, *rows;
} Scratch;

/* One output pixel's c channels, window top-left at `corner`; vectorized over channels. */
static inline void max_window(const float *restrict corner, float *restrict y,
                              unsigned char *restrict code, const Geometry *g,
                              const Scratch *t) {
    Py_ssize_t c = g->c, row = g->w * c;
    int shift = bits(g->pw), step = bits(g->ph);
    for (Py_ssize_t j = 0; j < g->pw; j++) {
        const float *col = corner + j * c;
        for (Py_ssize_t k = 0; k < c; k++) {
            t->rbest[k] = col[k];
            t->rarg[k] = 0;
        }
        for (Py_ssize_t i = 1; i < g->ph; i++) {
            const float *src = col + i * row;
            for (Py_ssize_t k = 0; k < c; k++) {
                int win = src[k] > t->rbest[k];
                t->rbest[k] = win ? src[k] : t->rbest[k];
                t->rarg[k] = win ? (int)i : t->rarg[k];
            }
        }
        if (j == 0) {
            for (Py_ssize_t k = 0; k < c; k++) {
                t->best[k] = t->rbest[k];
                t->carg[k] = 0;
                t->rows[k] = t->rarg[k] << shift;
            }
        } else {
            for (Py_ssize_t k = 0; k < c; k++) {
                int win = t->rbest[k] > t->best[k];
                t->best[k] = win ? t->rbest[k] : t->best[k];
                t->carg[k] = win ? (int)j : t->carg[k];
                t->rows[k] |= t->rarg[k] << shift;
            }
        }
        shift += step;
    }
    for (Py_ssize_t k = 0; k < c; k++) {
        y[k] = t->best[k];
        code[k] = (unsigned char)(t->carg[k] | t->rows[k]);
    }
}

VECTOR_CLONES
static void forward_loop(const float *x, float *y, unsigned char *codes, const Geometry *g,
                         const Scratch *t) {
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

/* NumPy's routing of v along one axis of `size` offsets to `offset`, its winner `winner`:
 * size 2 as g * mask and g - g * mask, otherwise g * (winner == offset). */
static inline float route(Py_ssize_t size, Py_ssize_t offset, int winner, float v) {
    if (size == 2) {
        float second = v * (winner == 1 ? 1.0f : 0.0f);
        return offset == 1 ? second : v - second;
    }
    return v * (winner == offset ? 1.0f : 0.0f);
}

typedef struct {
    float *v;
    int *row;
} Codes;

/* One output pixel's c channels: decode the winners, then route column by column. */
static inline void unpool_window(const float *restrict g, const unsigned char *restrict code,
                                 float *restrict corner, const Geometry *geo, const Codes *t) {
    Py_ssize_t c = geo->c;
    int cbits = bits(geo->pw), rbits = bits(geo->ph);
    int cmask = (1 << cbits) - 1, rmask = (1 << rbits) - 1;
    for (Py_ssize_t b = 0; b < geo->pw; b++) {
        int shift = cbits + (int)b * rbits;
        for (Py_ssize_t k = 0; k < c; k++) {
            t->v[k] = route(geo->pw, b, code[k] & cmask, g[k]);
            t->row[k] = (code[k] >> shift) & rmask;
        }
        for (Py_ssize_t a = 0; a < geo->ph; a++) {
            float *dst = corner + (a * geo->w + b) * c;
            for (Py_ssize_t k = 0; k < c; k++) dst[k] = route(geo->ph, a, t->row[k], t->v[k]);
        }
    }
}

VECTOR_CLONES
static void backward_loop(const float *dy, const unsigned char *codes, float *dx,
                          const Geometry *g, const Codes *t) {
    Py_ssize_t c = g->c;
    int tiled = g->sh == g->ph && g->sw == g->pw && g->oh * g->ph == g->h && g->ow * g->pw == g->w;
    if (!tiled) memset(dx, 0, (size_t)(g->n * g->h * g->w * c) * sizeof(float));
    for (Py_ssize_t n = 0; n < g->n; n++) {
        float *image = dx + n * g->h * g->w * c;
        for (Py_ssize_t i = 0; i < g->oh; i++) {
            for (Py_ssize_t j = 0; j < g->ow; j++) {
                Py_ssize_t o = ((n * g->oh + i) * g->ow + j) * c;
                float *corner = image + (i * g->sh * g->w + j * g->sw) * c;
                unpool_window(dy + o, codes + o, corner, g, t);
            }
        }
    }
}

static int fits_byte(Py_ssize_t ph, Py_ssize_t pw) { return bits(pw) + pw * bits(ph) <= 8; }

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
    float *floats = malloc(2 * c * sizeof(float));
    int *ints = malloc(3 * c * sizeof(int));
    if (floats != NULL && ints != NULL) {
        Scratch t = {floats, floats + c, ints, ints + c, ints + 2 * c};
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
    size_t c = (size_t)g.c;
    float *floats = malloc(c * sizeof(float));
    int *ints = malloc(c * sizeof(int));
    if (floats != NULL && ints != NULL) {
        Codes t = {floats, ints};
        Py_BEGIN_ALLOW_THREADS
        backward_loop((const float *)dy.buf, (const unsigned char *)codes.buf, (float *)dx.buf,
                      &g, &t);
        Py_END_ALLOW_THREADS
    }
    int failed = floats == NULL || ints == NULL;
    free(floats);
    free(ints);
    PyBuffer_Release(&dx);
    PyBuffer_Release(&dy);
    PyBuffer_Release(&codes);
    if (failed) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"max_pool", max_pool, METH_VARARGS,
     "max_pool(x, y, codes, (n, h, w, c), (ph, pw), (sh, sw), (oh, ow)): window maxima into y "
     "and each window's winners into codes (uint8)."},
    {"max_unpool", max_unpool, METH_VARARGS,
     "max_unpool(dx, dy, codes, (n, h, w, c), (ph, pw), (sh, sw), (oh, ow)): dy routed to the "
     "winners as NumPy's passes route it, zeros outside the windows."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_pool", NULL, -1, methods};

PyMODINIT_FUNC PyInit__pool(void) { return PyModule_Create(&module); }
