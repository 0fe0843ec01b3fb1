/* Scaled dot-product attention, forward and backward, one (sample, head) pair at a time, the
 * pairs shared between this thread and the compiled split's worker (`_split.c`, reached
 * through its capsule), without the GIL.
 *
 * Why: the NumPy chain runs each step (scale, transposed copy, scores, softmax, dropout,
 * product) over the whole (batch, heads, T, S) stack before the next one starts, so the
 * weights leave the cache between steps and every step allocates. Here one pair's scores,
 * softmax and products follow each other while its T x S weights are in cache, in scratch
 * reused from pair to pair. The products are NumPy's own OpenBLAS sgemm; the softmax and its
 * gradient are `rows.h`'s loops, the NumPy composite's float32 operations. The two threads
 * take samples (all of a sample's heads) from a shared counter, so a thread slowed by another
 * process does fewer instead of making the other wait at the end; each pair is computed by
 * one thread with the same calls whichever thread takes it, so results repeat bit for bit.
 * They are not NumPy's bits: the query is scaled into scratch and the key read transposed in
 * place, where NumPy copies it, and OpenBLAS may round those differently.
 *
 * Layouts: query, key, value, output and their gradients are (batch, heads, L, dim) views
 * whose rows are contiguous and whose strides are whole floats (the head-split view of a
 * (batch, L, heads, dim) buffer, for one), not necessarily C-contiguous; the weights are
 * C-contiguous (batch, heads, T, S); the mask is uint8 (batch or 1, heads or 1, T, S),
 * broadcast over size-1 axes; dropout's factors are C-contiguous like the weights. A written
 * array shares no byte with any other argument and its own rows do not alias (both halves
 * write at once, and inputs are read after outputs are written); otherwise the call declines.
 * Views with the same strides are compared exactly, so the three gradients may be
 * interleaved columns of one (batch, L, 3 * heads * dim) buffer (MultiHeadAttention's
 * packed projection), where comparing extents would refuse them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rows.h"
#include "split_api.h"

static const SplitApi *api;

/* A (batch, heads, rows, cols) float32 view: its base and byte strides. */
typedef struct {
    char *buf;
    Py_ssize_t sb, sh;
    int64_t ld; /* floats between rows */
} Stack;

typedef struct {
    Stack q, k, v, out, dout, dq, dk, dv;
    float *probs;         /* (batch, heads, T, S) */
    const float *keep;    /* same shape, or NULL */
    const uint8_t *mask;  /* T x S per pair, or NULL */
    Py_ssize_t mask_sb, mask_sh;
    int64_t heads, t, s, d, dv_dim;
    float scale;
    atomic_llong *next; /* the next sample not yet taken, shared by both threads */
    int64_t pairs;      /* in (batch, head) order */
    int64_t end;        /* the end of this thread's current sample's pairs */
    sgemm64_fn sgemm;
    int ok;         /* cleared when scratch could not be allocated */
} Job;

/* The next pair for this thread to compute, or j->pairs when none is left. A thread takes a
 * whole sample's heads at a time, [p, end): heads of one sample write neighbouring bytes of
 * each output row, which would otherwise bounce between the cores' caches. */
static int64_t take(Job *j, int64_t p) {
    if (p + 1 < j->end) return p + 1;
    int64_t sample = atomic_fetch_add_explicit(j->next, 1, memory_order_relaxed);
    p = sample * j->heads;
    if (p >= j->pairs) return j->pairs;
    j->end = p + j->heads;
    return p;
}

static inline float *at(const Stack *x, int64_t pair, int64_t heads) {
    return (float *)(x->buf + (pair / heads) * x->sb + (pair % heads) * x->sh);
}

static const uint8_t *mask_at(const Job *j, int64_t pair) {
    if (!j->mask) return NULL;
    return j->mask + (pair / j->heads) * j->mask_sb + (pair % j->heads) * j->mask_sh;
}

/* rows x cols of src (row stride ld) times c into dst (contiguous). */
static void scaled_copy(float *restrict dst, const float *restrict src, int64_t rows,
                        int64_t cols, int64_t ld, float c) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < cols; i++) dst[r * cols + i] = src[r * ld + i] * c;
}

WIDE_CLONES(multiply,
            (float *restrict dst, const float *restrict a, const float *restrict b, int64_t n),
            (dst, a, b, n)) {
    for (int64_t i = 0; i < n; i++) dst[i] = a[i] * b[i];
}

WIDE_CLONES(multiply_in_place, (float *restrict x, const float *restrict b, int64_t n), (x, b, n)) {
    for (int64_t i = 0; i < n; i++) x[i] = x[i] * b[i];
}

/* probs = softmax(scale * q k^T, mask); out = (probs * keep) v. */
static void forward_pairs(void *arg) {
    Job *j = arg;
    int64_t t = j->t, s = j->s, d = j->d, ts = t * s;
    float *qs = malloc(sizeof(float) * (size_t)(t * d + (j->keep ? ts : 0)));
    if (!qs) {
        j->ok = 0;
        return;
    }
    float *dropped = qs + t * d;
    for (int64_t p = take(j, -1); p < j->pairs; p = take(j, p)) {
        float *probs = j->probs + p * ts;
        scaled_copy(qs, at(&j->q, p, j->heads), t, d, j->q.ld, j->scale);
        j->sgemm(ROW_MAJOR, NO_TRANS, TRANS, t, s, d, 1.0f, qs, d, at(&j->k, p, j->heads), j->k.ld,
                 0.0f, probs, s);
        softmax_loop(probs, mask_at(j, p), t, s);
        const float *weights = probs;
        if (j->keep) {
            multiply(dropped, probs, j->keep + p * ts, ts);
            weights = dropped;
        }
        j->sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, t, j->dv_dim, s, 1.0f, weights, s,
                 at(&j->v, p, j->heads), j->v.ld, 0.0f, at(&j->out, p, j->heads), j->out.ld);
    }
    free(qs);
}

/* dv = (probs * keep)^T dout; dS = softmax's gradient of (dout v^T) * keep;
 * dq = scale dS k; dk = dS^T (scale q). */
static void backward_pairs(void *arg) {
    Job *j = arg;
    int64_t t = j->t, s = j->s, d = j->d, ts = t * s;
    float *qs = malloc(sizeof(float) * (size_t)(t * d + 2 * ts + s));
    if (!qs) {
        j->ok = 0;
        return;
    }
    float *ds = qs + t * d, *dropped = ds + ts, *tmp = dropped + ts;
    for (int64_t p = take(j, -1); p < j->pairs; p = take(j, p)) {
        const float *probs = j->probs + p * ts;
        const float *keep = j->keep ? j->keep + p * ts : NULL;
        const float *dout = at(&j->dout, p, j->heads);
        const float *v = at(&j->v, p, j->heads);
        const float *weights = probs;
        if (keep) {
            multiply(dropped, probs, keep, ts);
            weights = dropped;
        }
        j->sgemm(ROW_MAJOR, TRANS, NO_TRANS, s, j->dv_dim, t, 1.0f, weights, s, dout, j->dout.ld,
                 0.0f, at(&j->dv, p, j->heads), j->dv.ld);
        j->sgemm(ROW_MAJOR, NO_TRANS, TRANS, t, s, j->dv_dim, 1.0f, dout, j->dout.ld, v, j->v.ld,
                 0.0f, ds, s);
        if (keep) multiply_in_place(ds, keep, ts);
        softmax_grad_loop(ds, probs, tmp, t, s);
        j->sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, t, d, s, j->scale, ds, s, at(&j->k, p, j->heads),
                 j->k.ld, 0.0f, at(&j->dq, p, j->heads), j->dq.ld);
        scaled_copy(qs, at(&j->q, p, j->heads), t, d, j->q.ld, j->scale);
        j->sgemm(ROW_MAJOR, TRANS, NO_TRANS, s, d, t, 1.0f, ds, s, qs, d, 0.0f,
                 at(&j->dk, p, j->heads), j->dk.ld);
    }
    free(qs);
}

/* Runs `fn` over all pairs: on both cores when `split`, else on this thread. */
static int run(void (*fn)(void *), Job *job, int64_t pairs, int split) {
    atomic_llong next;
    atomic_init(&next, 0);
    job->next = &next;
    job->pairs = pairs;
    job->end = 0;
    Job both[2] = {*job, *job};
    Py_BEGIN_ALLOW_THREADS
    if (split && pairs >= 2) {
        api->call(fn, &both[0], &both[1]);
    } else {
        fn(&both[0]);
    }
    Py_END_ALLOW_THREADS
    return both[0].ok && both[1].ok;
}

/* A 4-d float32 view with contiguous rows of `rows` x `cols` per pair; 0 if it is not one.
 * Every stride must be a whole number of floats: `at` and `ld` count in floats and bytes. */
static int stack_of(const Py_buffer *b, int64_t batch, int64_t heads, int64_t rows,
                    int64_t cols, Stack *out) {
    Py_ssize_t f = (Py_ssize_t)sizeof(float);
    if (b->ndim != 4 || b->itemsize != f || !b->format || strcmp(b->format, "f") != 0) return 0;
    if (b->shape[0] != batch || b->shape[1] != heads || b->shape[2] != rows || b->shape[3] != cols)
        return 0;
    if ((uintptr_t)b->buf % sizeof(float) || b->strides[3] != f) return 0;
    if (b->strides[0] % f || b->strides[1] % f) return 0;
    if (b->strides[2] % f || b->strides[2] / f < cols || b->strides[2] / f > INT32_MAX) return 0;
    *out = (Stack){b->buf, b->strides[0], b->strides[1], b->strides[2] / f};
    return 1;
}

/* Whether no two (batch, head, row) rows of a stack share a byte: the axes of more than one
 * element, by stride, each step past everything the smaller ones span (sufficient, and what
 * every split view of a (batch, L, heads, dim) buffer satisfies). Two threads write a
 * written stack's pairs, so rows that alias would race. */
static int rows_disjoint(const Py_buffer *b) {
    Py_ssize_t stride[3], size[3];
    int n = 0;
    for (int a = 0; a < 3; a++) {
        if (b->shape[a] < 2) continue;
        Py_ssize_t s = b->strides[a] < 0 ? -b->strides[a] : b->strides[a];
        int i = n++;
        for (; i > 0 && stride[i - 1] > s; i--) {
            stride[i] = stride[i - 1];
            size[i] = size[i - 1];
        }
        stride[i] = s;
        size[i] = b->shape[a];
    }
    Py_ssize_t span = b->shape[3] * b->itemsize;
    for (int i = 0; i < n; i++) {
        if (stride[i] < span) return 0;
        span += stride[i] * (size[i] - 1);
    }
    return 1;
}

/* The bytes a buffer (taken with its strides) may touch, [lo, hi); lo == hi when empty. */
static void extent(const Py_buffer *b, char **lo, char **hi) {
    char *first = b->buf, *last = b->buf;
    for (int a = 0; a < b->ndim; a++) {
        if (b->shape[a] == 0) {
            *lo = *hi = b->buf;
            return;
        }
        Py_ssize_t reach = (b->shape[a] - 1) * b->strides[a];
        if (reach < 0) first += reach;
        else last += reach;
    }
    *lo = first;
    *hi = last + b->itemsize;
}

/* Whether offset r plus sum(k[a] * stride[a]) over axes a >= from, each k[a] within
 * [kmin[a], kmax[a]], can land in [lo, hi]. Axes come largest stride first; rest[a] bounds
 * what axes a.. can still add, so each axis tries only the few k that leave a reachable
 * remainder (one or two when the axes nest, as a split view's do). */
typedef struct {
    Py_ssize_t stride[3], kmin[3], kmax[3], rest_lo[4], rest_hi[4];
    int n;
} Lattice;

static Py_ssize_t floor_div(Py_ssize_t a, Py_ssize_t b) {
    Py_ssize_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int reaches(const Lattice *l, int from, Py_ssize_t r, Py_ssize_t lo, Py_ssize_t hi) {
    if (from == l->n) return lo <= r && r <= hi;
    Py_ssize_t s = l->stride[from];
    /* r + k s + (rest in [rest_lo, rest_hi]) within [lo, hi] */
    Py_ssize_t a = lo - l->rest_hi[from + 1] - r, b = hi - l->rest_lo[from + 1] - r;
    Py_ssize_t k0 = -floor_div(-a, s), k1 = floor_div(b, s);
    if (k0 < l->kmin[from]) k0 = l->kmin[from];
    if (k1 > l->kmax[from]) k1 = l->kmax[from];
    for (Py_ssize_t k = k0; k <= k1; k++)
        if (reaches(l, from + 1, r + k * s, lo, hi)) return 1;
    return 0;
}

/* Whether two 4-d views with the same strides on their three leading axes (the head-split
 * views of one (batch, L, parts * heads * dim) buffer, for one) share a byte: exact, where
 * comparing their extents would refuse views that interleave row by row. Row i of a and
 * row j of b start delta + (j - i) . strides apart; they meet when that lies in
 * (-row bytes of b, row bytes of a). Other views are compared by extent. */
static int views_meet(const Py_buffer *a, const Py_buffer *b) {
    char *alo, *ahi, *blo, *bhi;
    extent(a, &alo, &ahi);
    extent(b, &blo, &bhi);
    if (!(alo < bhi && blo < ahi)) return 0;
    if (a->ndim != 4 || b->ndim != 4 || a->strides[3] != b->strides[3]) return 1;
    Lattice l = {.n = 0};
    for (int ax = 0; ax < 3; ax++) {
        if (a->strides[ax] != b->strides[ax]) return 1;
        Py_ssize_t s = a->strides[ax], kmin = 1 - a->shape[ax], kmax = b->shape[ax] - 1;
        if (s == 0 || (kmin == 0 && kmax == 0)) continue;
        if (s < 0) {
            s = -s;
            Py_ssize_t t = kmin;
            kmin = -kmax;
            kmax = -t;
        }
        int i = l.n++;
        for (; i > 0 && l.stride[i - 1] < s; i--) {
            l.stride[i] = l.stride[i - 1];
            l.kmin[i] = l.kmin[i - 1];
            l.kmax[i] = l.kmax[i - 1];
        }
        l.stride[i] = s;
        l.kmin[i] = kmin;
        l.kmax[i] = kmax;
    }
    l.rest_lo[l.n] = l.rest_hi[l.n] = 0;
    for (int i = l.n - 1; i >= 0; i--) {
        l.rest_lo[i] = l.rest_lo[i + 1] + l.kmin[i] * l.stride[i];
        l.rest_hi[i] = l.rest_hi[i + 1] + l.kmax[i] * l.stride[i];
    }
    Py_ssize_t delta = (char *)b->buf - (char *)a->buf;
    Py_ssize_t a_row = a->shape[3] * a->itemsize, b_row = b->shape[3] * b->itemsize;
    return reaches(&l, 0, delta, 1 - b_row, a_row - 1);
}

/* Whether each written buffer (from `first_written` on) keeps clear of every other buffer's
 * bytes and its own rows do not alias: the kernel reads inputs after writing outputs. */
static int writes_apart(const Py_buffer *views, int count, int first_written) {
    for (int w = first_written; w < count; w++) {
        if (!views[w].obj) continue;
        if (views[w].ndim == 4 && !rows_disjoint(&views[w])) return 0;
        for (int i = 0; i < count; i++) {
            if (i == w || !views[i].obj) continue;
            if (views_meet(&views[w], &views[i])) return 0;
        }
    }
    return 1;
}

static int contiguous_floats(const Py_buffer *b, Py_ssize_t count) {
    return b->itemsize == (Py_ssize_t)sizeof(float) && b->format && strcmp(b->format, "f") == 0 &&
           PyBuffer_IsContiguous(b, 'C') && b->len == count * (Py_ssize_t)sizeof(float);
}

/* The mask (uint8, C-contiguous (batch or 1, heads or 1, T, S)) as per-pair strides. */
static int mask_of(const Py_buffer *m, int64_t batch, int64_t heads, int64_t t, int64_t s,
                   Job *j) {
    if (m->ndim != 4 || m->itemsize != 1 || !PyBuffer_IsContiguous(m, 'C')) return 0;
    if ((m->shape[0] != 1 && m->shape[0] != batch) || (m->shape[1] != 1 && m->shape[1] != heads))
        return 0;
    if (m->shape[2] != t || m->shape[3] != s) return 0;
    j->mask = m->buf;
    j->mask_sh = m->shape[1] == 1 ? 0 : t * s;
    j->mask_sb = m->shape[0] == 1 ? 0 : m->shape[1] * t * s;
    return 1;
}

enum { N_FORWARD = 6, N_BACKWARD = 10 };

/* Buffers by position: read-only ones first, then the written ones from `first_written`. */
static int get_buffers(PyObject **objects, Py_buffer *views, int count, int first_written) {
    for (int i = 0; i < count; i++) {
        views[i].obj = NULL;
        if (objects[i] == Py_None) continue;
        int flags = PyBUF_STRIDES | PyBUF_FORMAT | (i >= first_written ? PyBUF_WRITABLE : 0);
        if (PyObject_GetBuffer(objects[i], &views[i], flags) < 0) {
            while (i--)
                if (views[i].obj) PyBuffer_Release(&views[i]);
            return 0;
        }
    }
    return 1;
}

static void release(Py_buffer *views, int count) {
    for (int i = 0; i < count; i++)
        if (views[i].obj) PyBuffer_Release(&views[i]);
}

static int bind_api(void) {
    if (!api) api = PyCapsule_Import(SPLIT_API_CAPSULE, 0);
    return api != NULL;
}

/* Shapes from q (batch, heads, T, d), k (.., S, d), v (.., S, dv); common checks of a call. */
static int plan(Job *j, const Py_buffer *q, const Py_buffer *k, const Py_buffer *v,
                const Py_buffer *mask, const Py_buffer *keep, const Py_buffer *probs) {
    if (q->ndim != 4 || k->ndim != 4 || v->ndim != 4) return 0;
    int64_t batch = q->shape[0], heads = q->shape[1];
    j->heads = heads;
    j->t = q->shape[2];
    j->d = q->shape[3];
    j->s = k->shape[2];
    j->dv_dim = v->shape[3];
    if (j->t < 1 || j->s < 1 || j->d < 1 || j->dv_dim < 1 || j->s > INT32_MAX) return 0;
    if (!stack_of(q, batch, heads, j->t, j->d, &j->q) ||
        !stack_of(k, batch, heads, j->s, j->d, &j->k) ||
        !stack_of(v, batch, heads, j->s, j->dv_dim, &j->v))
        return 0;
    Py_ssize_t weights = batch * heads * j->t * j->s;
    if (!contiguous_floats(probs, weights)) return 0;
    j->probs = probs->buf;
    j->keep = NULL;
    if (keep->obj) {
        if (!contiguous_floats(keep, weights)) return 0;
        j->keep = keep->buf;
    }
    j->mask = NULL;
    if (mask->obj && !mask_of(mask, batch, heads, j->t, j->s, j)) return 0;
    j->sgemm = api->sgemm();
    j->ok = 1;
    return j->sgemm != NULL;
}

static PyObject *finish(Py_buffer *views, int count, int planned, int ran) {
    release(views, count);
    if (planned && !ran) return PyErr_NoMemory();
    return PyBool_FromLong(planned);
}

static PyObject *forward(PyObject *self, PyObject *args) {
    PyObject *o[N_FORWARD + 1];
    float scale;
    int split;
    /* q, k, v, mask, keep, probs (written), out (written) */
    if (!PyArg_ParseTuple(args, "OOOOOOOfp", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6],
                          &scale, &split))
        return NULL;
    if (!bind_api()) return NULL;
    Py_buffer b[N_FORWARD + 1];
    if (!get_buffers(o, b, N_FORWARD + 1, 5)) return NULL;
    Job j = {.scale = scale};
    int planned = b[0].obj && b[1].obj && b[2].obj && b[5].obj && b[6].obj &&
                  plan(&j, &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) &&
                  stack_of(&b[6], b[0].shape[0], j.heads, j.t, j.dv_dim, &j.out) &&
                  writes_apart(b, N_FORWARD + 1, 5);
    int ran = planned && run(forward_pairs, &j, b[0].shape[0] * j.heads, split);
    return finish(b, N_FORWARD + 1, planned, ran);
}

static PyObject *backward(PyObject *self, PyObject *args) {
    PyObject *o[N_BACKWARD];
    float scale;
    int split;
    /* q, k, v, keep, probs, dout, then dq, dk, dv (written); the mask is already in probs */
    PyObject *none = Py_None;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOfp", &o[0], &o[1], &o[2], &o[4], &o[5], &o[6], &o[7],
                          &o[8], &o[9], &scale, &split))
        return NULL;
    o[3] = none;
    if (!bind_api()) return NULL;
    Py_buffer b[N_BACKWARD];
    if (!get_buffers(o, b, N_BACKWARD, 7)) return NULL;
    Job j = {.scale = scale};
    int ok = b[0].obj && b[1].obj && b[2].obj && b[5].obj && b[6].obj && b[7].obj && b[8].obj &&
             b[9].obj;
    int64_t batch = ok ? b[0].shape[0] : 0;
    int planned = ok && plan(&j, &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) &&
                  stack_of(&b[6], batch, j.heads, j.t, j.dv_dim, &j.dout) &&
                  stack_of(&b[7], batch, j.heads, j.t, j.d, &j.dq) &&
                  stack_of(&b[8], batch, j.heads, j.s, j.d, &j.dk) &&
                  stack_of(&b[9], batch, j.heads, j.s, j.dv_dim, &j.dv) &&
                  writes_apart(b, N_BACKWARD, 7);
    int ran = planned && run(backward_pairs, &j, batch * j.heads, split);
    return finish(b, N_BACKWARD, planned, ran);
}

static PyMethodDef methods[] = {
    {"forward", forward, METH_VARARGS,
     "forward(q, k, v, mask, keep, probs, out, scale, split): probs = softmax(scale q k^T, "
     "mask) and out = (probs * keep) v per (batch, head); mask and keep may be None. Returns "
     "False, doing nothing, where the arrays do not suit it (shapes, dtypes, layouts, or a "
     "written array sharing bytes with another)."},
    {"backward", backward, METH_VARARGS,
     "backward(q, k, v, keep, probs, dout, dq, dk, dv, scale, split): the gradients of "
     "`forward`'s q, k and v. Returns False, doing nothing, where the arrays do not suit it."},
    ISA_METHOD,
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_attention", NULL, -1, methods};

PyMODINIT_FUNC PyInit__attention(void) {
    isa_init();
    return PyModule_Create(&module);
}
