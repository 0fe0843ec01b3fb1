/* Backward of a 2-d convolution whose ReLU output only a max pooling with disjoint windows
 * reads, driven by the pooling's winners (channels last).
 *
 * The pooling sends each window's gradient to its one winner and +0 to the rest, and the ReLU
 * keeps it only where the pooled value is > 0: at most one convolution output of a window has
 * a nonzero gradient, per channel. So the convolution's gradients are sums over the winners
 * alone: for winner (output pixel p, filter co) with gradient v, dW[a, b, :, co] += v times
 * the input's channels under tap (a, b) of p's window, db[co] += v, and dX under that tap +=
 * v times the kernel's row (a, b, co, :). With 2x2 pools that is at most a quarter of the
 * terms a dense dW or dX sums, and the pre-activation gradient is never written out.
 *
 * Terms v == 0 (a pooled value <= 0, or a zero gradient) add nothing and are skipped. Each
 * element is summed in a fixed order (filters, then the images and windows in order), so a
 * run repeats bit for bit; the order is not a dense kernel's, so results agree with the
 * unfused passes within float32 rounding.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

#include "loops.h"

/* Inlined everywhere, so that each clone of the loop compiles them for its own instruction set */
#define INLINE static inline __attribute__((always_inline))

/* 8 float lanes: one AVX2 register; the sums below keep up to 12 of them in registers */
typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4), may_alias));
typedef int v8i __attribute__((vector_size(32)));

INLINE v8 load_v8(const float *p) { return *(const v8u *)p; }
INLINE void store_v8(float *p, v8 v) { *(v8u *)p = v; }

typedef struct {
    Py_ssize_t n, h, w, ci, kh, kw, sh, sw, ph, pw, qh, qw, th, tw, oh, ow, co;
} Geometry;

/* One winner of one filter: its gradient and its window's top-left input pixel (which may lie
 * in the padding: negative, or past the image). */
typedef struct {
    float v;
    Py_ssize_t row, col;
} Winner;

/* The winners of filter co in one image with a nonzero gradient, in window order; returns
 * how many. */
INLINE Py_ssize_t winners(const float *y, const unsigned char *codes, const float *gy,
                          Py_ssize_t co, const Py_ssize_t *down, const Py_ssize_t *across,
                          Winner *out, const Geometry *g) {
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i < g->oh; i++)
        for (Py_ssize_t j = 0; j < g->ow; j++) {
            Py_ssize_t o = (i * g->ow + j) * g->co + co;
            /* the ReLU's gradient at the winner as NumPy forms it: dy * (y > 0) */
            float v = gy[o] * (y[o] > 0.0f ? 1.0f : 0.0f);
            if (v == 0.0f) continue;
            Py_ssize_t r = i * g->th + down[codes[o]], c = j * g->tw + across[codes[o]];
            out[count++] = (Winner){v, r * g->sh - g->ph, c * g->sw - g->pw};
        }
    return count;
}

/* The columns [lo, hi) of a kernel row that land inside the image for a window at column col
 * (all of them without padding). */
INLINE void inside(Py_ssize_t col, const Geometry *g, Py_ssize_t *lo, Py_ssize_t *hi) {
    *lo = col < 0 ? -col : 0;
    *hi = col + g->kw > g->w ? g->w - col : g->kw;
}

/* dwt[co, a, :] += sum over the winners of v * the input row under kernel row a, for a row of
 * 8 B = kw * ci floats: the sums sit in B registers while the winners stream by. */
#define ROW_SUMS(NAME, B)                                                                          \
    INLINE void NAME(const float *x, const Winner *list, Py_ssize_t count, Py_ssize_t a,           \
                     float *dw, const Geometry *g) {                                               \
        v8 acc[B];                                                                                 \
        for (int k = 0; k < B; k++) acc[k] = (v8){0};                                              \
        for (Py_ssize_t e = 0; e < count; e++) {                                                   \
            Py_ssize_t xr = list[e].row + a, lo, hi;                                               \
            if (xr < 0 || xr >= g->h) continue;                                                    \
            inside(list[e].col, g, &lo, &hi);                                                      \
            const float *src = x + (xr * g->w + list[e].col) * g->ci;                              \
            float v = list[e].v;                                                                   \
            if (lo == 0 && hi == g->kw)                                                            \
                for (int k = 0; k < B; k++) acc[k] += v * load_v8(src + 8 * k);                    \
            else /* a window in the padding: its inside part, straight into dw */                  \
                for (Py_ssize_t k = lo * g->ci; k < hi * g->ci; k++) dw[k] += v * src[k];          \
        }                                                                                          \
        for (int k = 0; k < B; k++) store_v8(dw + 8 * k, load_v8(dw + 8 * k) + acc[k]);            \
    }

ROW_SUMS(row_sums_48, 6)
ROW_SUMS(row_sums_96, 12)

/* The same for a row of 3 floats (3 x 3 kernels on one channel), in scalar registers. */
INLINE void row_sums_3(const float *x, const Winner *list, Py_ssize_t count, Py_ssize_t a,
                       float *dw, const Geometry *g) {
    float s0 = 0, s1 = 0, s2 = 0;
    for (Py_ssize_t e = 0; e < count; e++) {
        Py_ssize_t xr = list[e].row + a, lo, hi;
        if (xr < 0 || xr >= g->h) continue;
        inside(list[e].col, g, &lo, &hi);
        const float *src = x + (xr * g->w + list[e].col) * g->ci;
        float v = list[e].v;
        if (lo == 0 && hi == g->kw) {
            s0 += v * src[0], s1 += v * src[1], s2 += v * src[2];
        } else {
            for (Py_ssize_t k = lo * g->ci; k < hi * g->ci; k++) dw[k] += v * src[k];
        }
    }
    dw[0] += s0, dw[1] += s1, dw[2] += s2;
}

/* ROW_SUMS for any row length, summing into dw directly. */
INLINE void row_sums(const float *x, const Winner *list, Py_ssize_t count, Py_ssize_t a,
                            float *dw, const Geometry *g) {
    for (Py_ssize_t e = 0; e < count; e++) {
        Py_ssize_t xr = list[e].row + a, lo, hi;
        if (xr < 0 || xr >= g->h) continue;
        inside(list[e].col, g, &lo, &hi);
        const float *src = x + (xr * g->w + list[e].col) * g->ci;
        for (Py_ssize_t k = lo * g->ci; k < hi * g->ci; k++) dw[k] += list[e].v * src[k];
    }
}

/* dx under each winner's window += v * the kernel's rows for its filter (wt[co]); rows of
 * 8 B floats as B vectors. */
#define INPUT_ROWS(NAME, B)                                                                        \
    INLINE void NAME(const float *wt, const Winner *list, Py_ssize_t count, float *dx,             \
                     const Geometry *g) {                                                          \
        Py_ssize_t len = g->kw * g->ci;                                                            \
        for (Py_ssize_t e = 0; e < count; e++) {                                                   \
            Py_ssize_t lo, hi;                                                                     \
            inside(list[e].col, g, &lo, &hi);                                                      \
            float v = list[e].v;                                                                   \
            for (Py_ssize_t a = 0; a < g->kh; a++) {                                               \
                Py_ssize_t xr = list[e].row + a;                                                   \
                if (xr < 0 || xr >= g->h) continue;                                                \
                float *dst = dx + (xr * g->w + list[e].col) * g->ci;                               \
                const float *src = wt + a * len;                                                   \
                if (B > 0 && lo == 0 && hi == g->kw)                                               \
                    for (int k = 0; k < B; k++)                                                    \
                        store_v8(dst + 8 * k, load_v8(dst + 8 * k) + v * load_v8(src + 8 * k));    \
                else                                                                               \
                    for (Py_ssize_t k = lo * g->ci; k < hi * g->ci; k++) dst[k] += v * src[k];     \
            }                                                                                      \
        }                                                                                          \
    }

INPUT_ROWS(input_rows_48, 6)
INPUT_ROWS(input_rows_96, 12)
INPUT_ROWS(input_rows, 0)

/* One image, filter by filter: its winners, then db, dW row by row and dX. */
INLINE void image_loop(const float *x, const float *wt, const float *y, const unsigned char *codes,
                       const float *gy, float *dx, float *dwt, float *db, Winner *list,
                       const Py_ssize_t *down, const Py_ssize_t *across, const Geometry *g) {
    Py_ssize_t len = g->kw * g->ci, taps = g->kh * len;
    for (Py_ssize_t co = 0; co < g->co; co++) {
        Py_ssize_t count = winners(y, codes, gy, co, down, across, list, g);
        if (db)
            for (Py_ssize_t e = 0; e < count; e++) db[co] += list[e].v;
        for (Py_ssize_t a = 0; a < g->kh; a++) {
            float *dw = dwt + co * taps + a * len;
            switch (len) {
            case 3: row_sums_3(x, list, count, a, dw, g); break;
            case 48: row_sums_48(x, list, count, a, dw, g); break;
            case 96: row_sums_96(x, list, count, a, dw, g); break;
            default: row_sums(x, list, count, a, dw, g);
            }
        }
        if (!dx) continue;
        switch (len) {
        case 48: input_rows_48(wt + co * taps, list, count, dx, g); break;
        case 96: input_rows_96(wt + co * taps, list, count, dx, g); break;
        default: input_rows(wt + co * taps, list, count, dx, g);
        }
    }
}

/* dW and db of one image for one input channel and a 3 x 3 kernel without padding (a first
 * layer, whose rows of 3 floats leave ROW_SUMS little to vectorize): 8 filters a vector, each
 * window's winner picked per lane. For every candidate k of the window, the lanes whose winner
 * is k take their gradient and the others 0, times the input under each tap of candidate k's
 * window: the 9 taps' sums for 8 filters stay in registers over the image. */
INLINE void one_channel_image(const float *x, const float *y, const unsigned char *codes,
                              const float *gy, float *dwt, float *db, const Py_ssize_t *down,
                              const Py_ssize_t *across, const Geometry *g) {
    const v8i one = (v8i){0} + 0x3f800000; /* 1.0f's bits */
    Py_ssize_t candidates = g->qh * g->qw;
    for (Py_ssize_t co = 0; co < g->co; co += 8) {
        v8 acc[9], sums = (v8){0};
        for (int t = 0; t < 9; t++) acc[t] = (v8){0};
        for (Py_ssize_t i = 0; i < g->oh; i++)
            for (Py_ssize_t j = 0; j < g->ow; j++) {
                Py_ssize_t o = (i * g->ow + j) * g->co + co;
                /* dy * (y > 0), as the unfused ReLU's gradient forms it */
                v8 v = load_v8(gy + o) * (v8)((v8i)(load_v8(y + o) > 0.0f) & one);
                v8i code;
                for (int l = 0; l < 8; l++) code[l] = codes[o + l];
                sums += v;
                for (Py_ssize_t k = 0; k < candidates; k++) {
                    v8 vk = (v8)((v8i)v & (code == (int)k));
                    Py_ssize_t r = (i * g->th + down[k]) * g->sh, c = (j * g->tw + across[k]) * g->sw;
                    const float *src = x + r * g->w + c;
                    for (int a = 0; a < 3; a++)
                        for (int b = 0; b < 3; b++) acc[a * 3 + b] += vk * src[a * g->w + b];
                }
            }
        for (int l = 0; l < 8; l++)
            for (int t = 0; t < 9; t++) dwt[(co + l) * 9 + t] += acc[t][l];
        if (db) store_v8(db + co, load_v8(db + co) + sums);
    }
}

/* Whether `one_channel_image` takes this layer (and no dX is asked for). */
static int one_channel(const Geometry *g, const float *dx) {
    return !dx && g->ci == 1 && g->kh == 3 && g->kw == 3 && g->ph == 0 && g->pw == 0 &&
           g->co % 8 == 0;
}

FMA_CLONES(backward_loop,
           (const float *x, const float *wt, const float *y, const unsigned char *codes,
            const float *gy, float *dx, float *dwt, float *db, Winner *list, const Geometry *g),
           (x, wt, y, codes, gy, dx, dwt, db, list, g)) {
    Py_ssize_t image = g->h * g->w * g->ci, pooled = g->oh * g->ow * g->co;
    Py_ssize_t down[256], across[256]; /* a winner's offset in its window by its code */
    for (Py_ssize_t k = 0; k < g->qh * g->qw; k++) down[k] = k / g->qw, across[k] = k % g->qw;
    memset(dwt, 0, (size_t)(g->co * g->kh * g->kw * g->ci) * sizeof(float));
    if (db) memset(db, 0, (size_t)g->co * sizeof(float));
    if (dx) memset(dx, 0, (size_t)(g->n * image) * sizeof(float));
    for (Py_ssize_t n = 0; n < g->n; n++) {
        if (one_channel(g, dx))
            one_channel_image(x + n * image, y + n * pooled, codes + n * pooled, gy + n * pooled,
                              dwt, db, down, across, g);
        else
            image_loop(x + n * image, wt, y + n * pooled, codes + n * pooled, gy + n * pooled,
                       dx ? dx + n * image : NULL, dwt, db, list, down, across, g);
    }
}

/* Forward for one input channel and a 3 x 3 kernel without padding: per pooled output and 8
 * filters, the convolution at each candidate of the window (the bias, then the 9 taps in
 * order, as `_conv_direct.c` sums them, so the same bits), its ReLU as NumPy's maximum(z, 0)
 * gives it (NaN kept, -0 to +0), and the window's maximum by `_pool.c`'s rule (a later
 * candidate wins when greater or NaN). The convolution's output never leaves registers. */
FMA_CLONES(one_channel_forward,
           (const float *x, const float *w, const float *bias, float *y, unsigned char *codes,
            const Geometry *g),
           (x, w, bias, y, codes, g)) {
    Py_ssize_t image = g->h * g->w, pooled = g->oh * g->ow * g->co;
    Py_ssize_t candidates = g->qh * g->qw, offset[256]; /* a candidate's input offset */
    for (Py_ssize_t k = 0; k < candidates; k++)
        offset[k] = (k / g->qw) * g->sh * g->w + (k % g->qw) * g->sw;
    for (Py_ssize_t n = 0; n < g->n; n++) {
        const float *xn = x + n * image;
        for (Py_ssize_t co = 0; co < g->co; co += 8) {
            v8 wv[9], start = bias ? load_v8(bias + co) : (v8){0};
            for (int t = 0; t < 9; t++) wv[t] = load_v8(w + t * g->co + co);
            for (Py_ssize_t i = 0; i < g->oh; i++)
                for (Py_ssize_t j = 0; j < g->ow; j++) {
                    v8 best = (v8){0};
                    v8i code = (v8i){0};
                    const float *corner = xn + i * g->th * g->sh * g->w + j * g->tw * g->sw;
                    for (Py_ssize_t k0 = 0; k0 < candidates; k0 += 4) {
                        /* four candidates' sums side by side: independent chains of FMAs */
                        int count = candidates - k0 < 4 ? (int)(candidates - k0) : 4;
                        const float *src[4];
                        for (int q = 0; q < 4; q++) src[q] = corner + offset[k0 + (q < count ? q : 0)];
                        v8 z[4] = {start, start, start, start};
                        for (int a = 0; a < 3; a++)
                            for (int b = 0; b < 3; b++)
                                for (int q = 0; q < 4; q++)
                                    z[q] += wv[a * 3 + b] * src[q][a * g->w + b];
                        for (int q = 0; q < count; q++) {
                            Py_ssize_t k = k0 + q;
                            v8i keep = (z[q] > 0.0f) | (z[q] != z[q]);
                            v8 relu = (v8)((v8i)z[q] & keep);
                            v8i win = k == 0 ? ~(v8i){0} : (relu > best) | (relu != relu);
                            best = (v8)(((v8i)relu & win) | ((v8i)best & ~win));
                            code = (((v8i){0} + (int)k) & win) | (code & ~win);
                        }
                    }
                    Py_ssize_t o = n * pooled + (i * g->ow + j) * g->co + co;
                    store_v8(y + o, best);
                    for (int l = 0; l < 8; l++) codes[o + l] = (unsigned char)code[l];
                }
        }
    }
}

static PyObject *forward(PyObject *self, PyObject *args) {
    Py_buffer b[5];
    Geometry g;
    if (!PyArg_ParseTuple(args, "y*y*y*w*w*(nnnn)(nn)(nn)(nn)(nn)(nn)(nn)n", &b[0], &b[1], &b[2],
                          &b[3], &b[4], &g.n, &g.h, &g.w, &g.ci, &g.kh, &g.kw, &g.sh, &g.sw,
                          &g.ph, &g.pw, &g.qh, &g.qw, &g.th, &g.tw, &g.oh, &g.ow, &g.co))
        return NULL;
    Py_ssize_t f = (Py_ssize_t)sizeof(float), outs = g.n * g.oh * g.ow * g.co;
    /* every window's candidates inside the convolution's output, its taps inside the image */
    int ok = g.n >= 0 && g.h > 0 && g.w > 0 && g.ci == 1 && g.kh == 3 && g.kw == 3 &&
             g.sh > 0 && g.sw > 0 && g.ph == 0 && g.pw == 0 && g.qh > 0 && g.qw > 0 &&
             g.qh * g.qw <= 256 && g.th >= g.qh && g.tw >= g.qw && g.oh > 0 && g.ow > 0 &&
             g.co > 0 && g.co % 8 == 0 &&
             ((g.oh - 1) * g.th + g.qh - 1) * g.sh + 3 <= g.h &&
             ((g.ow - 1) * g.tw + g.qw - 1) * g.sw + 3 <= g.w &&
             b[0].len == g.n * g.h * g.w * f && b[1].len == 9 * g.co * f &&
             (b[2].len == 0 || b[2].len == g.co * f) && b[3].len == outs * f && b[4].len == outs;
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        one_channel_forward((const float *)b[0].buf, (const float *)b[1].buf,
                            b[2].len ? (const float *)b[2].buf : NULL, (float *)b[3].buf,
                            (unsigned char *)b[4].buf, &g);
        Py_END_ALLOW_THREADS
    }
    for (int i = 0; i < 5; i++) PyBuffer_Release(&b[i]);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "conv_pool: buffers do not match the geometry");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *backward(PyObject *self, PyObject *args) {
    Py_buffer b[8];
    Geometry g;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*w*w*w*(nnnn)(nn)(nn)(nn)(nn)(nn)(nn)n", &b[0], &b[1],
                          &b[2], &b[3], &b[4], &b[5], &b[6], &b[7], &g.n, &g.h, &g.w, &g.ci,
                          &g.kh, &g.kw, &g.sh, &g.sw, &g.ph, &g.pw, &g.qh, &g.qw, &g.th, &g.tw,
                          &g.oh, &g.ow, &g.co))
        return NULL;
    Py_ssize_t f = (Py_ssize_t)sizeof(float), outs = g.n * g.oh * g.ow * g.co;
    Py_ssize_t kernel = g.kh * g.kw * g.ci * g.co * f, image = g.n * g.h * g.w * g.ci * f;
    int ok = g.n >= 0 && g.h > 0 && g.w > 0 && g.ci > 0 && g.kh > 0 && g.kw > 0 && g.sh > 0 &&
             g.sw > 0 && g.ph >= 0 && g.pw >= 0 && g.qh > 0 && g.qw > 0 && g.qh * g.qw <= 256 &&
             g.th >= g.qh && g.tw >= g.qw && g.oh > 0 && g.ow > 0 && g.co > 0 &&
             b[0].len == image && (b[1].len == 0 || b[1].len == kernel) &&
             b[2].len == outs * f && b[3].len == outs && b[4].len == outs * f &&
             (b[5].len == 0 || (b[5].len == image && b[1].len == kernel)) &&
             b[6].len == kernel && (b[7].len == 0 || b[7].len == g.co * f);
    Winner *list = ok ? malloc((size_t)(g.oh * g.ow) * sizeof(Winner)) : NULL;
    if (list != NULL) {
        Py_BEGIN_ALLOW_THREADS
        backward_loop((const float *)b[0].buf, (const float *)b[1].buf, (const float *)b[2].buf,
                      (const unsigned char *)b[3].buf, (const float *)b[4].buf,
                      b[5].len ? (float *)b[5].buf : NULL, (float *)b[6].buf,
                      b[7].len ? (float *)b[7].buf : NULL, list, &g);
        Py_END_ALLOW_THREADS
    }
    free(list);
    for (int i = 0; i < 8; i++) PyBuffer_Release(&b[i]);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "conv_pool: buffers do not match the geometry");
        return NULL;
    }
    if (list == NULL) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"forward", forward, METH_VARARGS,
     "forward(x, w, bias, y, codes, (n, h, w, 1), (3, 3), (sh, sw), (0, 0), (qh, qw), (th, tw), "
     "(oh, ow), co): y = the max pooling of relu(conv(x, w) + bias) and codes its winners, for "
     "one input channel and a 3 x 3 kernel without padding (an empty bias: none); co a "
     "multiple of 8."},
    {"backward", backward, METH_VARARGS,
     "backward(x, wt, y, codes, gy, dx, dwt, db, (n, h, w, ci), (kh, kw), (sh, sw), (ph, pw), "
     "(qh, qw), (th, tw), (oh, ow), co): the gradients of relu(conv(x, w) + b) max-pooled "
     "(windows qh x qw moved by th, tw; outputs oh x ow; y the pooled values, codes their "
     "winners) for the pooled gradient gy: dwt (co, kh, kw, ci), db (co; empty: none) and "
     "dx (empty: none; then wt, the kernel as (co, kh, kw, ci), may be empty)."},
    ISA_METHOD,
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_conv_pool", NULL, -1, methods};

PyMODINIT_FUNC PyInit__conv_pool(void) {
    isa_init();
    return PyModule_Create(&module);
}
