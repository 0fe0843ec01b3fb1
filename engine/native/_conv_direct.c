/* Direct 2-d convolution (channels last) for layers with few channels, where im2col + sgemm
 * spends its time writing and re-reading a column matrix kernel-area times the input.
 *
 * Each image is copied once into a zero-bordered buffer that stays in cache, and the window is
 * read from it while the sums run: an output pixel's Cout values sit in registers (16 or 8
 * float lanes a vector, as the CPU's registers hold) for a block of pixels of one row, and every (kh, kw, ci) term is one
 * broadcast multiply-add. dW does the transpose: for one kernel offset, a block of input
 * channels times Cout sits in registers while the image's pixels stream by.
 *
 * Not bit-identical to im2col + sgemm (it sums in another order, with fused multiply-adds where
 * the CPU has them): every output element is summed in a fixed order (kh, kw, ci forward;
 * pixels in row order within an image, then images in order for dW), whatever the thread
 * count, so a run repeats bit for bit on the same machine.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

#include "loops.h"

/* Two vector widths: 16 float lanes, one AVX-512 register, and 8, one AVX2 register. GCC
 * lowers a vector wider than the clone's registers through the stack: v16 blocks in the AVX2
 * clone ran at 6 GFLOP/s on W7's shapes, so each clone's dispatch takes the blocks of its
 * own width (`Geometry.wide`). */
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4), may_alias));
typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4), may_alias));

/* Inlined everywhere, so that each clone of a loop compiles them for its own instruction set */
#define INLINE static inline __attribute__((always_inline))

INLINE v16 load_v16(const float *p) { return *(const v16u *)p; }
INLINE void store_v16(float *p, v16 v) { *(v16u *)p = v; }
INLINE v8 load_v8(const float *p) { return *(const v8u *)p; }
INLINE void store_v8(float *p, v8 v) { *(v8u *)p = v; }

typedef struct {
    Py_ssize_t n, h, w, cin, kh, kw, sh, sw, ph, pw, oh, ow, cout;
    Py_ssize_t hp, wp; /* the bordered image's rows and columns */
    /* where the forward writes output (n, oh, ow, 0): y + y0 + n yn + oh yh + ow yw, in floats */
    Py_ssize_t y0, yn, yh, yw;
    int wide; /* 32 registers of 16 floats (AVX-512): the v16 blocks */
} Geometry;

/* The most pixels a forward block computes: the last block of a row may run past ow into the
 * border, by up to BLOCK_MAX - 1 pixels. */
#define BLOCK_MAX 16

/* Copy image n into buf's interior; the border was zeroed once and is never written. */
static void border_image(const float *x, float *buf, Py_ssize_t n, const Geometry *g) {
    const float *src = x + n * g->h * g->w * g->cin;
    Py_ssize_t row = g->w * g->cin;
    for (Py_ssize_t i = 0; i < g->h; i++)
        memcpy(buf + ((i + g->ph) * g->wp + g->pw) * g->cin, src + i * row,
               (size_t)row * sizeof(float));
}

/* y's pixels [ow0, ow0 + P) of row (n, oh) for output channels [co, co + L V), with V
 * vectors of type T (L float lanes). STEP, when not 0, is the floats between two pixels'
 * windows (stride times channels) fixed at compile time: each pixel's broadcast then reads
 * base + constant instead of base + index register: with 16 pixels the index registers ran
 * out and GCC reloaded them from the stack in the inner loop (W7's 16 -> 16 forward: 107 ->
 * 131 GFLOP/s of one AVX-512 core, same bits). */
#define FORWARD_BLOCK(NAME, T, L, P, V, STEP)                                                      \
    INLINE void NAME(const float *buf, const float *w, const float *bias, float *y,                \
                     Py_ssize_t oh, Py_ssize_t ow0, Py_ssize_t co, const Geometry *g) {            \
        T acc[P][V];                                                                               \
        for (int p = 0; p < P; p++)                                                                \
            for (int v = 0; v < V; v++)                                                            \
                acc[p][v] = bias ? load_##T(bias + co + L * v) : (T){0};                           \
        Py_ssize_t step = STEP ? STEP : g->sw * g->cin, taps = g->kw * g->cin;                     \
        for (Py_ssize_t a = 0; a < g->kh; a++) {                                                   \
            const float *xk = buf + ((oh * g->sh + a) * g->wp + ow0 * g->sw) * g->cin;             \
            const float *wk = w + a * taps * g->cout + co;                                         \
            for (Py_ssize_t j = 0; j < taps; j++) {                                                \
                T wv[V];                                                                           \
                for (int v = 0; v < V; v++) wv[v] = load_##T(wk + j * g->cout + L * v);            \
                for (int p = 0; p < P; p++) {                                                      \
                    float xs = xk[p * step + j];                                                   \
                    for (int v = 0; v < V; v++) acc[p][v] += wv[v] * xs;                           \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        Py_ssize_t valid = g->ow - ow0 < P ? g->ow - ow0 : P;                                      \
        for (Py_ssize_t p = 0; p < valid; p++)                                                     \
            for (int v = 0; v < V; v++)                                                         \
                store_##T(y + (ow0 + p) * g->yw + co + L * v, acc[p][v]);                       \
    }

/* One vector of filters (16) or two (32), P pixels a block: at most 16 + 1 or 16 + 2 of
 * AVX-512's 32 registers. With 16 registers of 8 floats (AVX2): 16 filters (two vectors) and
 * 4-6 pixels, at most 12 accumulators + 2 + 1. */
FORWARD_BLOCK(forward_1x8, v16, 16, 8, 1, 0)
FORWARD_BLOCK(forward_1x12, v16, 16, 12, 1, 0)
FORWARD_BLOCK(forward_1x16, v16, 16, 16, 1, 0)
FORWARD_BLOCK(forward_2x4, v16, 16, 4, 2, 0)
FORWARD_BLOCK(forward_2x6, v16, 16, 6, 2, 0)
FORWARD_BLOCK(forward_2x8, v16, 16, 8, 2, 0)
FORWARD_BLOCK(narrow_forward_4, v8, 8, 4, 2, 0)
FORWARD_BLOCK(narrow_forward_5, v8, 8, 5, 2, 0)
FORWARD_BLOCK(narrow_forward_6, v8, 8, 6, 2, 0)
/* W7's shapes: 16 -> 16 on 32x32 (forward and dX), 32 -> 32 and 16 -> 32 strided, 64 -> 64
 * and 32 -> 64 strided; the dX phases of 16 -> 32 strided (32 -> 16 on 16x16) */
FORWARD_BLOCK(forward_1x16_step16, v16, 16, 16, 1, 16)
FORWARD_BLOCK(forward_1x16_step32, v16, 16, 16, 1, 32)
FORWARD_BLOCK(forward_2x8_step32, v16, 16, 8, 2, 32)
FORWARD_BLOCK(forward_2x8_step64, v16, 16, 8, 2, 64)

/* The block width of these that wastes the fewest pixels past the row's end (ties: the
 * widest), e.g. 8 for rows of 8 or 16, 12 for 12, 6 for 11 with two vectors. */
static int block_width(Py_ssize_t ow, const int *widths) {
    int best = widths[0];
    Py_ssize_t least = -1;
    for (int i = 0; i < 3; i++) {
        Py_ssize_t waste = (ow + widths[i] - 1) / widths[i] * widths[i] - ow;
        if (least < 0 || waste <= least) best = widths[i], least = waste;
    }
    return best;
}

FMA_CLONES(forward_loop,
           (const float *x, const float *w, float *y, float *bias, float *buf, const Geometry *g),
           (x, w, y, bias, buf, g)) {
    static const int one[3] = {8, 12, 16}, two[3] = {4, 6, 8}, narrow[3] = {4, 5, 6};
    /* the case numbers below: 100 * (1 or 2 v16 vectors, or 0 for the v8 blocks) + pixels */
    int vectors = !g->wide ? 0 : g->cout % 32 == 0 ? 2 : 1;
    int block = block_width(g->ow, vectors == 0 ? narrow : vectors == 2 ? two : one);
    int span = vectors == 0 ? 16 : 16 * vectors; /* filters a block computes */
    Py_ssize_t step = g->sw * g->cin;
    int fixed = step == 16 || step == 32 || step == 64 ? (int)step : 0;
    for (Py_ssize_t n = 0; n < g->n; n++) {
        border_image(x, buf, n, g);
        for (Py_ssize_t oh = 0; oh < g->oh; oh++) {
            float *yrow = y + g->y0 + n * g->yn + oh * g->yh;
            for (Py_ssize_t co = 0; co < g->cout; co += span)
                for (Py_ssize_t ow0 = 0; ow0 < g->ow; ow0 += block) {
                    switch (fixed * 1000 + vectors * 100 + block) {
                    case 16116: forward_1x16_step16(buf, w, bias, yrow, oh, ow0, co, g); continue;
                    case 32116: forward_1x16_step32(buf, w, bias, yrow, oh, ow0, co, g); continue;
                    case 32208: forward_2x8_step32(buf, w, bias, yrow, oh, ow0, co, g); continue;
                    case 64208: forward_2x8_step64(buf, w, bias, yrow, oh, ow0, co, g); continue;
                    }
                    switch (vectors * 100 + block) {
                    case 4: narrow_forward_4(buf, w, bias, yrow, oh, ow0, co, g); break;
                    case 5: narrow_forward_5(buf, w, bias, yrow, oh, ow0, co, g); break;
                    case 6: narrow_forward_6(buf, w, bias, yrow, oh, ow0, co, g); break;
                    case 108: forward_1x8(buf, w, bias, yrow, oh, ow0, co, g); break;
                    case 112: forward_1x12(buf, w, bias, yrow, oh, ow0, co, g); break;
                    case 116: forward_1x16(buf, w, bias, yrow, oh, ow0, co, g); break;
                    case 204: forward_2x4(buf, w, bias, yrow, oh, ow0, co, g); break;
                    case 206: forward_2x6(buf, w, bias, yrow, oh, ow0, co, g); break;
                    default: forward_2x8(buf, w, bias, yrow, oh, ow0, co, g);
                    }
                }
        }
    }
}

/* dW rows (a, [j, j + C)) x channels [co, co + L V) of one image, added into dw. For one
 * kernel row a, the (b, ci) pairs are one flat index j = b * cin + ci: both the window's floats
 * in a bordered row and dW's rows run in that order, so a block may span several kernel
 * columns (3 of them for one input channel). Each element sums the pixels in row order. */
#define WEIGHT_BLOCK(NAME, T, L, C, V)                                                             \
    INLINE void NAME(const float *buf, const float *dy, float *dw, Py_ssize_t a, Py_ssize_t j,     \
                     Py_ssize_t co, const Geometry *g) {                                           \
        T acc[C][V];                                                                               \
        for (int c = 0; c < C; c++)                                                                \
            for (int v = 0; v < V; v++) acc[c][v] = (T){0};                                        \
        for (Py_ssize_t oh = 0; oh < g->oh; oh++) {                                                \
            const float *xr = buf + (oh * g->sh + a) * g->wp * g->cin + j;                         \
            const float *dr = dy + oh * g->ow * g->cout + co;                                      \
            for (Py_ssize_t ow = 0; ow < g->ow; ow++) {                                            \
                T d[V];                                                                            \
                for (int v = 0; v < V; v++) d[v] = load_##T(dr + ow * g->cout + L * v);            \
                const float *xs = xr + ow * g->sw * g->cin;                                        \
                for (int c = 0; c < C; c++)                                                        \
                    for (int v = 0; v < V; v++) acc[c][v] += d[v] * xs[c];                         \
            }                                                                                      \
        }                                                                                          \
        float *out = dw + (a * g->kw * g->cin + j) * g->cout + co;                                 \
        for (int c = 0; c < C; c++)                                                                \
            for (int v = 0; v < V; v++) {                                                          \
                float *o = out + c * g->cout + L * v;                                              \
                store_##T(o, load_##T(o) + acc[c][v]);                                             \
            }                                                                                      \
    }

/* up to 24 accumulators and 2 gradient vectors: within AVX-512's 32 registers; with AVX2's
 * 16, 16 filters (two v8) and up to 6 channels: 12 accumulators + 2 + 1 */
WEIGHT_BLOCK(weight_16x1, v16, 16, 16, 1)
WEIGHT_BLOCK(weight_12x1, v16, 16, 12, 1)
WEIGHT_BLOCK(weight_9x1, v16, 16, 9, 1)
WEIGHT_BLOCK(weight_8x1, v16, 16, 8, 1)
WEIGHT_BLOCK(weight_4x1, v16, 16, 4, 1)
WEIGHT_BLOCK(weight_3x1, v16, 16, 3, 1)
WEIGHT_BLOCK(weight_1x1, v16, 16, 1, 1)
WEIGHT_BLOCK(weight_12x2, v16, 16, 12, 2)
WEIGHT_BLOCK(weight_9x2, v16, 16, 9, 2)
WEIGHT_BLOCK(weight_8x2, v16, 16, 8, 2)
WEIGHT_BLOCK(weight_4x2, v16, 16, 4, 2)
WEIGHT_BLOCK(weight_3x2, v16, 16, 3, 2)
WEIGHT_BLOCK(weight_1x2, v16, 16, 1, 2)
WEIGHT_BLOCK(narrow_weight_6, v8, 8, 6, 2)
WEIGHT_BLOCK(narrow_weight_4, v8, 8, 4, 2)
WEIGHT_BLOCK(narrow_weight_3, v8, 8, 3, 2)
WEIGHT_BLOCK(narrow_weight_2, v8, 8, 2, 2)
WEIGHT_BLOCK(narrow_weight_1, v8, 8, 1, 2)

/* dW rows (a, [j, j + 48)) x filters [co, co + 8) of one image, added into dw, with the
 * window's floats as the vector lanes: per pixel 3 loads of the window and 8 broadcasts of dy
 * feed 24 multiply-adds, where the blocks above take one load and 16 broadcasts for 16. Each
 * element sums the same products in the same (pixel) order as those blocks: the same bits. */
INLINE void weight_lanes_3x8(const float *buf, const float *dy, float *dw, Py_ssize_t a,
                             Py_ssize_t j, Py_ssize_t co, const Geometry *g) {
    v16 acc[3][8];
    for (int k = 0; k < 3; k++)
        for (int f = 0; f < 8; f++) acc[k][f] = (v16){0};
    for (Py_ssize_t oh = 0; oh < g->oh; oh++) {
        const float *xr = buf + (oh * g->sh + a) * g->wp * g->cin + j;
        const float *dr = dy + oh * g->ow * g->cout + co;
        for (Py_ssize_t ow = 0; ow < g->ow; ow++) {
            const float *xs = xr + ow * g->sw * g->cin, *d = dr + ow * g->cout;
            v16 xv[3];
            for (int k = 0; k < 3; k++) xv[k] = load_v16(xs + 16 * k);
            for (int f = 0; f < 8; f++)
                for (int k = 0; k < 3; k++) acc[k][f] += d[f] * xv[k];
        }
    }
    float *out = dw + (a * g->kw * g->cin + j) * g->cout + co, lanes[16];
    for (int k = 0; k < 3; k++)
        for (int f = 0; f < 8; f++) {
            store_v16(lanes, acc[k][f]);
            for (int l = 0; l < 16; l++) out[(16 * k + l) * g->cout + f] += lanes[l];
        }
}

/* db += the sums of one image's dy over its pixels, in pixel order (8 lanes: every clone's
 * registers hold them). */
INLINE void bias_sums(const float *dy, float *db, const Geometry *g) {
    for (Py_ssize_t co = 0; co < g->cout; co += 8) {
        v8 acc = (v8){0};
        for (Py_ssize_t p = 0; p < g->oh * g->ow; p++) acc += load_v8(dy + p * g->cout + co);
        store_v8(db + co, load_v8(db + co) + acc);
    }
}

FMA_CLONES(weight_loop,
           (const float *x, const float *dy, float *dw, float *db, float *buf, const Geometry *g),
           (x, dy, dw, db, buf, g)) {
    Py_ssize_t row = g->kw * g->cin;
    /* the most (column, channel) pairs that divide the row, so each pass over the image fills
     * the most registers: 16 x 16 filters took W7's 16 -> 16 dW from 77 to 108 GFLOP/s of one
     * AVX-512 core, where 8 accumulators left the FMA ports waiting on their latency (24
     * spilled: 69); 12 x 32 filters gained 3-8% over 8 */
    static const int groups_of[3][9] = {
        {6, 4, 3, 2, 1}, {16, 12, 9, 8, 4, 3, 1}, {12, 9, 8, 4, 3, 1}};
    /* the case numbers below: 10 * group + (1 or 2 v16 vectors, or 0 for the v8 blocks) */
    int vectors = !g->wide ? 0 : g->cout % 32 == 0 ? 2 : 1;
    const int *groups = groups_of[vectors];
    Py_ssize_t group = 1;
    for (int i = 0; groups[i] > 1; i++)
        if (row % groups[i] == 0) {
            group = groups[i];
            break;
        }
    int span = vectors == 0 ? 16 : 16 * vectors;
    /* 16 filters and rows of 48 floats (W7's 16 -> 16): window floats as the lanes */
    int lanes = vectors == 1 && row % 48 == 0;
    if (lanes) group = 48;
    memset(dw, 0, (size_t)(g->kh * row * g->cout) * sizeof(float));
    if (db) memset(db, 0, (size_t)g->cout * sizeof(float));
    for (Py_ssize_t n = 0; n < g->n; n++) {
        border_image(x, buf, n, g);
        const float *dyn = dy + n * g->oh * g->ow * g->cout;
        if (db) bias_sums(dyn, db, g);
        for (Py_ssize_t a = 0; a < g->kh; a++)
            for (Py_ssize_t j = 0; j < row; j += group)
                for (Py_ssize_t co = 0; co < g->cout; co += span) {
                    if (lanes) {
                        for (Py_ssize_t f = co; f < co + span; f += 8)
                            weight_lanes_3x8(buf, dyn, dw, a, j, f, g);
                        continue;
                    }
                    switch (group * 10 + vectors) {
                    case 60: narrow_weight_6(buf, dyn, dw, a, j, co, g); break;
                    case 40: narrow_weight_4(buf, dyn, dw, a, j, co, g); break;
                    case 30: narrow_weight_3(buf, dyn, dw, a, j, co, g); break;
                    case 20: narrow_weight_2(buf, dyn, dw, a, j, co, g); break;
                    case 10: narrow_weight_1(buf, dyn, dw, a, j, co, g); break;
                    case 161: weight_16x1(buf, dyn, dw, a, j, co, g); break;
                    case 121: weight_12x1(buf, dyn, dw, a, j, co, g); break;
                    case 91: weight_9x1(buf, dyn, dw, a, j, co, g); break;
                    case 81: weight_8x1(buf, dyn, dw, a, j, co, g); break;
                    case 41: weight_4x1(buf, dyn, dw, a, j, co, g); break;
                    case 31: weight_3x1(buf, dyn, dw, a, j, co, g); break;
                    case 11: weight_1x1(buf, dyn, dw, a, j, co, g); break;
                    case 122: weight_12x2(buf, dyn, dw, a, j, co, g); break;
                    case 92: weight_9x2(buf, dyn, dw, a, j, co, g); break;
                    case 82: weight_8x2(buf, dyn, dw, a, j, co, g); break;
                    case 42: weight_4x2(buf, dyn, dw, a, j, co, g); break;
                    case 32: weight_3x2(buf, dyn, dw, a, j, co, g); break;
                    default: weight_1x2(buf, dyn, dw, a, j, co, g);
                    }
                }
    }
}

/* Whether the forward's output layout keeps every write inside y (of `floats` floats) and
 * apart from every other: each pixel's cout floats, each row's pixels, each image's rows. */
static int layout_fits(const Geometry *g, Py_ssize_t floats) {
    if (g->n == 0) return 1;
    Py_ssize_t row = (g->ow - 1) * g->yw + g->cout, image = (g->oh - 1) * g->yh + row;
    return g->y0 >= 0 && g->yw >= g->cout && g->yh >= row && g->yn >= image &&
           g->y0 + (g->n - 1) * g->yn + image <= floats;
}

/* Parse the geometry and size the bordered buffer: wide enough that a forward block's last
 * pixels, which may lie past ow, still read inside it. The buffers are (x, w, bias, y) for
 * the forward pass and (x, dy, dw, db) for dW; an empty bias or db means none. The forward's
 * optional last argument places its output in y (see Geometry); by default y is exactly the
 * output, C-contiguous. */
static int parse(PyObject *args, Py_buffer *b, Geometry *g, int weight) {
    g->y0 = -1;
    if (!PyArg_ParseTuple(args, "y*y*w*w*(nnnn)(nn)(nn)(nn)(nn)n|(nnnn)", &b[0], &b[1], &b[2],
                          &b[3], &g->n, &g->h, &g->w, &g->cin, &g->kh, &g->kw, &g->sh, &g->sw,
                          &g->ph, &g->pw, &g->oh, &g->ow, &g->cout, &g->y0, &g->yn, &g->yh,
                          &g->yw))
        return 0;
    Py_ssize_t f = (Py_ssize_t)sizeof(float);
    int placed = g->y0 != -1;
    if (!placed) g->y0 = 0, g->yw = g->cout, g->yh = g->ow * g->cout, g->yn = g->oh * g->yh;
    /* the loops' AVX-512 variant: its registers hold the v16 blocks */
    g->wide = isa_level == ISA_AVX512;
    Py_ssize_t reach_w = (g->ow + BLOCK_MAX - 2) * g->sw + g->kw;
    Py_ssize_t reach_h = (g->oh - 1) * g->sh + g->kh;
    g->wp = g->w + g->pw > reach_w ? g->w + g->pw : reach_w;
    g->hp = g->h + g->ph > reach_h ? g->h + g->ph : reach_h;
    Py_ssize_t kernel = g->kh * g->kw * g->cin * g->cout * f;
    Py_ssize_t out = g->n * g->oh * g->ow * g->cout * f;
    Py_ssize_t channels = weight ? b[3].len : b[2].len;
    int ok = g->n >= 0 && g->h > 0 && g->w > 0 && g->cin > 0 && g->kh > 0 && g->kw > 0 &&
             g->sh > 0 && g->sw > 0 && g->ph >= 0 && g->pw >= 0 && g->oh > 0 && g->ow > 0 &&
             g->cout > 0 && g->cout % 16 == 0 && b[0].len == g->n * g->h * g->w * g->cin * f &&
             b[1].len == (weight ? out : kernel) &&
             (weight ? !placed && b[2].len == kernel
                     : placed ? layout_fits(g, b[3].len / f) : b[3].len == out) &&
             (channels == 0 || channels == g->cout * f);
    if (!ok) {
        for (int i = 0; i < 4; i++) PyBuffer_Release(&b[i]);
        PyErr_SetString(PyExc_ValueError, "conv_direct: buffers do not match the geometry");
    }
    return ok;
}

typedef void (*Loop)(const float *, const float *, float *, float *, float *, const Geometry *);

static PyObject *run(PyObject *args, Loop loop, int weight) {
    Py_buffer b[4];
    Geometry g;
    if (!parse(args, b, &g, weight)) return NULL;
    float *buf = calloc((size_t)(g.hp * g.wp * g.cin), sizeof(float));
    if (buf != NULL) {
        /* forward: (x, w, y, bias); dW: (x, dy, dw, db) */
        float *out = (float *)b[weight ? 2 : 3].buf;
        Py_buffer *extra = &b[weight ? 3 : 2];
        float *channels = extra->len ? (float *)extra->buf : NULL;
        Py_BEGIN_ALLOW_THREADS
        loop((const float *)b[0].buf, (const float *)b[1].buf, out, channels, buf, &g);
        Py_END_ALLOW_THREADS
        free(buf);
    }
    for (int i = 0; i < 4; i++) PyBuffer_Release(&b[i]);
    if (buf == NULL) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject *forward(PyObject *self, PyObject *args) { return run(args, forward_loop, 0); }

static PyObject *weight_grad(PyObject *self, PyObject *args) { return run(args, weight_loop, 1); }

static PyMethodDef methods[] = {
    {"forward", forward, METH_VARARGS,
     "forward(x, w, bias, y, (n, h, w, cin), (kh, kw), (sh, sw), (ph, pw), (oh, ow), cout"
     "[, (y0, yn, yh, yw)]): y = bias + the convolution of x with w, zeros where a window leaves "
     "x (an empty bias: none); cout a multiple of 16. With the layout, output (n, oh, ow, 0) "
     "goes to float y0 + n yn + oh yh + ow yw of y, e.g. one phase of a strided convolution's "
     "dX; y's other floats are left as they are."},
    {"weight_grad", weight_grad, METH_VARARGS,
     "weight_grad(x, dy, dw, db, (n, h, w, cin), (kh, kw), (sh, sw), (ph, pw), (oh, ow), "
     "cout): dw and db (empty: none) = the kernel's and bias's gradients for the upstream "
     "gradient dy, summed image by image."},
    ISA_METHOD,
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_conv_direct", NULL, -1, methods};

PyMODINIT_FUNC PyInit__conv_direct(void) {
    isa_init();
    return PyModule_Create(&module);
}
