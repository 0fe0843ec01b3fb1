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
 *
 * Forward, where it runs here, keeps the convolution's outputs in registers until they are
 * pooled: a first layer's one-channel 3 x 3 loops, and on CPUs with 16-float registers any
 * layer with 2 x 2 windows moved by 2 (`pooled_forward`). Each output is summed as
 * `_conv_direct.c` sums it (the bias, then the (kh, kw, ci) terms in order), so forward gives
 * the unfused layers' bits.
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

/* 16 float lanes, one AVX-512 register: the pooled forward's blocks run only where the loops
 * run their AVX-512 variant (`wide_registers`); GCC would lower them through the stack in
 * the AVX2 one. */
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4), may_alias));

INLINE v16 load_v16(const float *p) { return *(const v16u *)p; }
INLINE void store_v16(float *p, v16 v) { *(v16u *)p = v; }

/* Whether the loops run their AVX-512 variant: `_conv_direct.c`'s test, so the pooled forward
 * runs exactly where the direct kernel's v16 blocks do (whose bits it repeats). */
static int wide_registers(void) { return isa_level == ISA_AVX512; }

/* Copy image x into buf's rows, bordered: row r, column col's ci channels at
 * buf + (r * wp + col) * ci. The border (the padding, and columns no window reads) was zeroed
 * once and is never written. */
INLINE void border_rows(const float *x, float *buf, Py_ssize_t hp, Py_ssize_t wp,
                        const Geometry *g) {
    Py_ssize_t cols = g->w < wp - g->pw ? g->w : wp - g->pw;
    for (Py_ssize_t r = 0; r < hp; r++) {
        Py_ssize_t xr = r - g->ph;
        if (xr < 0 || xr >= g->h) continue;
        memcpy(buf + (r * wp + g->pw) * g->ci, x + xr * g->w * g->ci,
               (size_t)(cols * g->ci) * sizeof(float));
    }
}

/* 16 filters of one pooled output from its 2 x 2 window's four candidates (z: 4 x 16 floats in
 * C order): the ReLU as NumPy's maximum(z, 0) gives it (NaN kept, -0 to +0), then the maximum
 * by `_pool.c`'s rule (a later one wins when greater or NaN). In halves of 8 lanes: GCC 12
 * lowers 16-lane comparisons one lane at a time in a function built for a target attribute
 * (not with -march). */
INLINE void relu_pool_4(const float *z, float *y, unsigned char *codes) {
    for (int half = 0; half < 16; half += 8) {
        v8 best = (v8){0};
        v8i code = (v8i){0};
        for (int k = 0; k < 4; k++) {
            v8 c = load_v8(z + 16 * k + half);
            v8 relu = (v8)((v8i)c & ((c > 0.0f) | (c != c)));
            v8i win = k == 0 ? ~(v8i){0} : (relu > best) | (relu != relu);
            best = (v8)(((v8i)relu & win) | ((v8i)best & ~win));
            code = (((v8i){0} + k) & win) | (code & ~win);
        }
        store_v8(y + half, best);
        for (int l = 0; l < 8; l++) codes[half + l] = (unsigned char)code[l];
    }
}

/* Pooled outputs (i, [j0, j0 + J)) for filters [co, co + 16 V) of one image, 2 x 2 windows
 * moved by 2 over a stride-1 (in width) convolution: the 2 x 2J candidates' sums for V vectors
 * of filters sit in registers, each the bias and then the (kh, kw, ci) terms in
 * `_conv_direct.c`'s order, so the same bits as its forward. */
#define POOL_BLOCK(NAME, J, V)                                                                     \
    INLINE void NAME(const float *buf, const float *w, const float *bias, float *y,                \
                     unsigned char *codes, Py_ssize_t i, Py_ssize_t j0, Py_ssize_t co,             \
                     Py_ssize_t wp, const Geometry *g) {                                           \
        v16 acc[2][2 * J][V];                                                                      \
        for (int r = 0; r < 2; r++)                                                                \
            for (int p = 0; p < 2 * J; p++)                                                        \
                for (int v = 0; v < V; v++)                                                        \
                    acc[r][p][v] = bias ? load_v16(bias + co + 16 * v) : (v16){0};                 \
        Py_ssize_t ci = g->ci, row = wp * ci, below = g->sh * row;                                 \
        for (Py_ssize_t a = 0; a < g->kh; a++) {                                                   \
            const float *top = buf + (2 * i * g->sh + a) * row + 2 * j0 * ci;                      \
            for (Py_ssize_t b = 0; b < g->kw; b++) {                                               \
                const float *wk = w + (a * g->kw + b) * g->ci * g->co + co;                        \
                for (Py_ssize_t c = 0; c < g->ci; c++) {                                           \
                    v16 wv[V];                                                                     \
                    for (int v = 0; v < V; v++) wv[v] = load_v16(wk + c * g->co + 16 * v);         \
                    const float *x0 = top + b * ci + c, *x1 = x0 + below;                          \
                    for (int p = 0; p < 2 * J; p++) {                                              \
                        float s0 = x0[p * ci], s1 = x1[p * ci];                                    \
                        for (int v = 0; v < V; v++) {                                              \
                            acc[0][p][v] += wv[v] * s0;                                            \
                            acc[1][p][v] += wv[v] * s1;                                            \
                        }                                                                          \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        for (int q = 0; q < J; q++)                                                                \
            for (int v = 0; v < V; v++) {                                                          \
                float z[64];                                                                       \
                for (int k = 0; k < 4; k++) store_v16(z + 16 * k, acc[k / 2][2 * q + k % 2][v]);   \
                Py_ssize_t o = (i * g->ow + j0 + q) * g->co + co + 16 * v;                         \
                relu_pool_4(z, y + o, codes + o);                                                  \
            }                                                                                      \
    }

/* up to 20 accumulators with one vector of filters, 24 with two: within 32 registers */
POOL_BLOCK(pool_1x1, 1, 1)
POOL_BLOCK(pool_1x2, 2, 1)
POOL_BLOCK(pool_1x3, 3, 1)
POOL_BLOCK(pool_1x4, 4, 1)
POOL_BLOCK(pool_1x5, 5, 1)
POOL_BLOCK(pool_2x1, 1, 2)
POOL_BLOCK(pool_2x2, 2, 2)
POOL_BLOCK(pool_2x3, 3, 2)

/* Forward of a layer whose 2 x 2 windows move by 2 over a convolution of stride 1 in width
 * and filters in 16s, on a CPU with 16-float registers: per image its bordered copy, then per 16 or
 * 32 filters each pooled row's blocks. The convolution's outputs no window reads (W3's second
 * layer: the 11th row and column of 11 x 11) are never computed. */
FMA_CLONES(pooled_forward,
           (const float *x, const float *w, const float *bias, float *y, unsigned char *codes,
            float *buf, Py_ssize_t hp, Py_ssize_t wp, const Geometry *g),
           (x, w, bias, y, codes, buf, hp, wp, g)) {
    int vectors = g->co % 32 == 0 ? 2 : 1, most = vectors == 2 ? 3 : 5;
    Py_ssize_t image = g->h * g->w * g->ci, pooled = g->oh * g->ow * g->co;
    for (Py_ssize_t n = 0; n < g->n; n++) {
        border_rows(x + n * image, buf, hp, wp, g);
        float *yn = y + n * pooled;
        unsigned char *cn = codes + n * pooled;
        for (Py_ssize_t co = 0; co < g->co; co += 16 * vectors)
            for (Py_ssize_t i = 0; i < g->oh; i++)
                for (Py_ssize_t j0 = 0; j0 < g->ow; j0 += most) {
                    Py_ssize_t span = g->ow - j0 < most ? g->ow - j0 : most;
                    switch (vectors * 10 + (int)span) {
                    case 11: pool_1x1(buf, w, bias, yn, cn, i, j0, co, wp, g); break;
                    case 12: pool_1x2(buf, w, bias, yn, cn, i, j0, co, wp, g); break;
                    case 13: pool_1x3(buf, w, bias, yn, cn, i, j0, co, wp, g); break;
                    case 14: pool_1x4(buf, w, bias, yn, cn, i, j0, co, wp, g); break;
                    case 15: pool_1x5(buf, w, bias, yn, cn, i, j0, co, wp, g); break;
                    case 21: pool_2x1(buf, w, bias, yn, cn, i, j0, co, wp, g); break;
                    case 22: pool_2x2(buf, w, bias, yn, cn, i, j0, co, wp, g); break;
                    default: pool_2x3(buf, w, bias, yn, cn, i, j0, co, wp, g);
                    }
                }
    }
}

/* Whether `one_channel_forward` takes the layer: one input channel, a 3 x 3 kernel without
 * padding, and every window's candidates inside the convolution's output, its taps inside
 * the image. */
static int one_channel_fits(const Geometry *g) {
    return g->ci == 1 && g->kh == 3 && g->kw == 3 && g->ph == 0 && g->pw == 0 && g->co % 8 == 0 &&
           ((g->oh - 1) * g->th + g->qh - 1) * g->sh + 3 <= g->h &&
           ((g->ow - 1) * g->tw + g->qw - 1) * g->sw + 3 <= g->w;
}

/* Whether `pooled_forward` takes the layer: 2 x 2 windows moved by 2, a convolution of stride 1
 * in width, filters in 16s, and 16-float registers. */
static int pooled_fits(const Geometry *g) {
    return g->qh == 2 && g->qw == 2 && g->th == 2 && g->tw == 2 && g->sw == 1 &&
           g->co % 16 == 0 && wide_registers();
}

static PyObject *forward(PyObject *self, PyObject *args) {
    Py_buffer b[5];
    Geometry g;
    if (!PyArg_ParseTuple(args, "y*y*y*w*w*(nnnn)(nn)(nn)(nn)(nn)(nn)(nn)n", &b[0], &b[1], &b[2],
                          &b[3], &b[4], &g.n, &g.h, &g.w, &g.ci, &g.kh, &g.kw, &g.sh, &g.sw,
                          &g.ph, &g.pw, &g.qh, &g.qw, &g.th, &g.tw, &g.oh, &g.ow, &g.co))
        return NULL;
    Py_ssize_t f = (Py_ssize_t)sizeof(float), outs = g.n * g.oh * g.ow * g.co;
    int ok = g.n >= 0 && g.h > 0 && g.w > 0 && g.ci > 0 && g.kh > 0 && g.kw > 0 && g.sh > 0 &&
             g.sw > 0 && g.ph >= 0 && g.pw >= 0 && g.qh > 0 && g.qw > 0 && g.qh * g.qw <= 256 &&
             g.th >= g.qh && g.tw >= g.qw && g.oh > 0 && g.ow > 0 && g.co > 0 &&
             (one_channel_fits(&g) || pooled_fits(&g)) &&
             b[0].len == g.n * g.h * g.w * g.ci * f && b[1].len == g.kh * g.kw * g.ci * g.co * f &&
             (b[2].len == 0 || b[2].len == g.co * f) && b[3].len == outs * f && b[4].len == outs;
    /* the pooled forward's bordered image: the rows and columns its windows read */
    Py_ssize_t hp = (2 * g.oh - 1) * g.sh + g.kh, wp = 2 * g.ow + g.kw - 1;
    int pooled = ok && pooled_fits(&g);
    float *buf = pooled ? calloc((size_t)(hp * g.ci * wp), sizeof(float)) : NULL;
    if (ok && (!pooled || buf != NULL)) {
        const float *x = b[0].buf, *w = b[1].buf, *bias = b[2].len ? b[2].buf : NULL;
        Py_BEGIN_ALLOW_THREADS
        if (pooled)
            pooled_forward(x, w, bias, b[3].buf, b[4].buf, buf, hp, wp, &g);
        else
            one_channel_forward(x, w, bias, b[3].buf, b[4].buf, &g);
        Py_END_ALLOW_THREADS
    }
    free(buf);
    for (int i = 0; i < 5; i++) PyBuffer_Release(&b[i]);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "conv_pool: buffers do not match the geometry");
        return NULL;
    }
    if (pooled && buf == NULL) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject *wide(PyObject *self, PyObject *args) { return PyBool_FromLong(wide_registers()); }

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
     "forward(x, w, bias, y, codes, (n, h, w, ci), (kh, kw), (sh, sw), (ph, pw), (qh, qw), "
     "(th, tw), (oh, ow), co): y = the max pooling of relu(conv(x, w) + bias) and codes its "
     "winners (an empty bias: none), for one input channel and a 3 x 3 kernel without padding "
     "(co a multiple of 8), or, where wide() holds, 2 x 2 windows moved by 2 over a "
     "convolution of stride 1 in width (co a multiple of 16)."},
    {"wide", wide, METH_NOARGS,
     "wide(): whether the CPU has 16-float registers, where forward takes 2 x 2 windows of "
     "any layer whose convolution has stride 1 in width and filters in 16s."},
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
