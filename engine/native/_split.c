/* Work split in two pieces over the calling thread and one worker thread, without the GIL:
 * a float32 product split by output rows or columns (with an optional bias + relu epilogue
 * on each piece), two independent products, and Keras's Adam step in chunks.
 *
 * Why: splitting in Python costs a thread wake (50-90 us on this 2-vCPU machine) and a GIL
 * hand-off each time. Here the worker waits for work by spinning, yielding the core to any
 * other runnable thread, for a short while after each piece before it sleeps, so a piece
 * starts within microseconds of being posted. `rest()` sends it to sleep at once, for when
 * Python threads are about to use both cores.
 *
 * Each product piece is the very sgemm call NumPy makes for `matmul(a[lo:hi], b, out=out[lo:hi])`
 * or, by columns, `matmul(a, b[:, lo:hi], out=out[:, lo:hi])` (same function, same arguments;
 * see numpy/_core/src/umath/matmul.c.src), so results are
 * bit-identical to the NumPy split. The function is NumPy's own bundled OpenBLAS, found with
 * dlopen(RTLD_NOLOAD) so that the thread count set through threadpoolctl applies; or, where
 * `chain_verify` found it gives that sgemm's bits, `chain_gemm.h`'s product in column chunks
 * that both threads claim in turn (`run_chunks`). If the
 * worker has not started a piece by the time the caller finishes its own, the caller takes
 * it: on a loaded machine no product waits for a descheduled thread.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "chain_gemm.h"
#include "loops.h"
#include "split_api.h"

static sgemm64_fn sgemm;
/* whether products may run `chain_sgemm` (its bits checked against `sgemm` at bind time) */
static int chain_ok, chain_on = 1;

/* How long the worker keeps looking for the next piece before it sleeps. */
#define SPIN_NS 1000000L

typedef struct {
    int trans_a, trans_b;
    int64_t m, n, k, lda, ldb, ldc;
    const float *a, *b, *bias;
    float *c;
    int relu;
    int chain; /* run by chain_sgemm instead of sgemm: the same bits */
} Product;

typedef struct {
    float *param, *m, *v;
    const float *grad;
    ptrdiff_t n;
    float c1, c2, eps, alpha;
} AdamPart;

/* A piece from another extension module (see split_call at the end). */
typedef struct {
    void (*fn)(void *);
    void *arg;
} Call;

typedef struct {
    enum { PRODUCT, CALL } kind;
    union {
        Product product;
        Call call;
    };
} Piece;

/* chain_sgemm's view of a product whose B has contiguous rows */
static ChainProduct chain_view(const Product *p) {
    int rows = p->trans_a == NO_TRANS;
    return (ChainProduct){p->a, p->b, p->c, rows ? p->lda : 1, rows ? 1 : p->lda, p->ldb, p->ldc,
                          p->m, p->n, p->k};
}

static void run_product(const Product *p) {
    ChainProduct view = chain_view(p);
    if (!p->chain || !chain_sgemm(&view))
        sgemm(ROW_MAJOR, p->trans_a, p->trans_b, p->m, p->n, p->k, 1.0f, p->a, p->lda, p->b,
              p->ldb, 0.0f, p->c, p->ldc);
    if (!p->bias && !p->relu) return;
    if (p->ldc == p->n) {
        bias_relu_loop(p->c, p->bias, p->m, p->n, p->relu);
    } else {
        for (int64_t r = 0; r < p->m; r++) bias_relu_loop(p->c + r * p->ldc, p->bias, 1, p->n, p->relu);
    }
}

static void run_piece(const Piece *piece) {
    if (piece->kind == PRODUCT) {
        run_product(&piece->product);
    } else {
        piece->call.fn(piece->call.arg);
    }
}

static struct {
    pthread_mutex_t call; /* one split product at a time */
    pthread_mutex_t sleep_lock;
    pthread_cond_t wake;
    atomic_uint posted;   /* generation of the piece on offer */
    atomic_int claimed;   /* whoever swaps this 0 -> 1 runs the piece */
    atomic_int finished;  /* set by the worker when its claimed piece is done */
    atomic_int sleeping;
    atomic_int rest;      /* sleep now instead of spinning */
    int started;
    Piece piece;
} W = {.call = PTHREAD_MUTEX_INITIALIZER,
       .sleep_lock = PTHREAD_MUTEX_INITIALIZER,
       .wake = PTHREAD_COND_INITIALIZER,
       .claimed = 1,
       .finished = 1};

static long elapsed_ns(const struct timespec *since) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) * 1000000000L + (now.tv_nsec - since->tv_nsec);
}

static void relax(unsigned spins) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    if (spins % 64 == 63) sched_yield();
}

static unsigned wait_for_post(unsigned seen) {
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (unsigned spins = 0;; spins++) {
        unsigned now = atomic_load(&W.posted);
        if (now != seen) return now;
        if (atomic_load(&W.rest)) break;
        if (spins % 256 == 255 && elapsed_ns(&start) > SPIN_NS) break;
        relax(spins);
    }
    pthread_mutex_lock(&W.sleep_lock);
    atomic_store(&W.sleeping, 1);
    unsigned now;
    while ((now = atomic_load(&W.posted)) == seen) pthread_cond_wait(&W.wake, &W.sleep_lock);
    atomic_store(&W.sleeping, 0);
    pthread_mutex_unlock(&W.sleep_lock);
    return now;
}

static void *worker(void *unused) {
    (void)unused;
    unsigned seen = 0;
    for (;;) {
        seen = wait_for_post(seen);
        int expected = 0;
        if (atomic_compare_exchange_strong(&W.claimed, &expected, 1)) {
            Piece piece = W.piece;
            run_piece(&piece);
            atomic_store(&W.finished, 1);
        }
    }
    return NULL;
}

/* A forked child has no worker thread, and the parent's threads may have held a lock at the
 * fork: start from a clean state (the next split starts a new worker). */
static void reset_after_fork(void) {
    pthread_mutex_init(&W.call, NULL);
    pthread_mutex_init(&W.sleep_lock, NULL);
    pthread_cond_init(&W.wake, NULL);
    atomic_store(&W.sleeping, 0);
    atomic_store(&W.rest, 0);
    atomic_store(&W.claimed, 1);
    atomic_store(&W.finished, 1);
    W.started = 0;
}

static int start_worker(void) {
    if (W.started) return 1;
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int ok = pthread_create(&thread, &attr, worker, NULL) == 0;
    pthread_attr_destroy(&attr);
    W.started = ok;
    return ok;
}

/* Both pieces, the second offered to the worker; called without the GIL. */
static void split_run(const Piece *mine, const Piece *offered) {
    if (pthread_mutex_trylock(&W.call) != 0) { /* another thread's product holds the worker */
        run_piece(mine);
        run_piece(offered);
        return;
    }
    if (!start_worker()) {
        pthread_mutex_unlock(&W.call);
        run_piece(mine);
        run_piece(offered);
        return;
    }
    W.piece = *offered;
    atomic_store(&W.rest, 0);
    atomic_store(&W.finished, 0);
    atomic_store(&W.claimed, 0);
    atomic_fetch_add(&W.posted, 1);
    if (atomic_load(&W.sleeping)) {
        pthread_mutex_lock(&W.sleep_lock);
        pthread_cond_signal(&W.wake);
        pthread_mutex_unlock(&W.sleep_lock);
    }
    run_piece(mine);
    int expected = 0;
    if (atomic_compare_exchange_strong(&W.claimed, &expected, 1)) {
        run_piece(offered);
    } else {
        for (unsigned spins = 0; !atomic_load(&W.finished); spins++) relax(spins);
    }
    pthread_mutex_unlock(&W.call);
}

/* NumPy's choice of operand layout: no transpose when rows are contiguous, else transpose;
 * 0 when BLAS cannot take the operand as it is. */
static int blas_layout(const Py_buffer *v, int64_t rows, int64_t cols, int *trans, int64_t *ld) {
    Py_ssize_t s0 = v->strides[0], s1 = v->strides[1], f = (Py_ssize_t)sizeof(float);
    if (s1 == f && s0 % f == 0 && s0 / f >= cols && s0 / f <= INT32_MAX) {
        *trans = NO_TRANS;
        *ld = s0 / f;
        return 1;
    }
    if (s0 == f && s1 % f == 0 && s1 / f >= rows && s1 / f <= INT32_MAX) {
        *trans = TRANS;
        *ld = s1 / f;
        return 1;
    }
    return 0;
}

static int float_matrix(const Py_buffer *v) {
    return v->ndim == 2 && v->itemsize == (Py_ssize_t)sizeof(float) && v->format &&
           strcmp(v->format, "f") == 0;
}

static int overlaps(const Py_buffer *x, const Py_buffer *y) {
    const char *x0 = x->buf, *y0 = y->buf;
    const char *x1 = x0 + (x->shape[0] - 1) * x->strides[0] + (x->shape[1] - 1) * x->strides[1];
    const char *y1 = y0 + (y->shape[0] - 1) * y->strides[0] + (y->shape[1] - 1) * y->strides[1];
    if (x1 < x0) { const char *t = x0; x0 = x1; x1 = t; }
    if (y1 < y0) { const char *t = y0; y0 = y1; y1 = t; }
    return x0 <= y1 + sizeof(float) && y0 <= x1 + sizeof(float);
}

/* Float32 matrices of matching shapes for c = a @ b, c overlapping neither operand. */
static int product_shapes(const Py_buffer *a, const Py_buffer *b, const Py_buffer *c) {
    if (!float_matrix(a) || !float_matrix(b) || !float_matrix(c)) return 0;
    int64_t m = a->shape[0], k = a->shape[1], n = b->shape[1];
    if (b->shape[0] != k || c->shape[0] != m || c->shape[1] != n) return 0;
    return m <= INT32_MAX && n <= INT32_MAX && k <= INT32_MAX && !overlaps(a, c) && !overlaps(b, c);
}

/* The whole product c = a @ b as one piece: the sgemm call NumPy makes for it; 0 where NumPy
 * would call gemv (one row or column), syrk (a is b transposed) or first copy an operand. */
static int whole(const Py_buffer *a, const Py_buffer *b, const Py_buffer *c, Piece *piece) {
    if (!product_shapes(a, b, c) || a->buf == b->buf) return 0;
    Product *p = &piece->product;
    piece->kind = PRODUCT;
    p->m = a->shape[0];
    p->k = a->shape[1];
    p->n = b->shape[1];
    if (p->m < 2 || p->n < 2 || p->k < 2) return 0;
    int trans_c;
    if (!blas_layout(c, p->m, p->n, &trans_c, &p->ldc) || trans_c != NO_TRANS) return 0;
    if (!blas_layout(a, p->m, p->k, &p->trans_a, &p->lda)) return 0;
    if (!blas_layout(b, p->k, p->n, &p->trans_b, &p->ldb)) return 0;
    p->a = a->buf;
    p->b = b->buf;
    p->c = c->buf;
    p->bias = NULL;
    p->relu = 0;
    p->chain = 0;
    return 1;
}

/* OpenBLAS hands products of up to a million multiply-adds to its small-matrix kernels, which
 * sum in other orders; above that its blocked kernel sums as chain_sgemm does. */
#define CHAIN_MIN_MACS 1e6

/* Whether chain_sgemm gives a product of B with contiguous rows NumPy's bits. */
static int chain_applies(int64_t m, int64_t n, int64_t k, int trans_b) {
    return chain_ok && chain_on && trans_b == NO_TRANS && m >= 2 && n >= 2 &&
           (double)m * (double)n * (double)k > CHAIN_MIN_MACS;
}

/* The two pieces of out = a @ b (+ bias, relu) for sgemm; 0 where NumPy would not make one
 * sgemm call per piece (or would first copy an operand). Split as `gemm.halves` does: by
 * columns when out has fewer rows than columns, else by rows. Each piece packs the whole of the
 * operand it does not split, so the split keeps the larger one in one piece each (a W2 forward
 * product (128, 784) @ (784, 512): 568 us for the two column pieces, 628 for the rows). */
static int plan(const Py_buffer *a, const Py_buffer *b, const Py_buffer *c, const float *bias,
                int relu, Piece halves[2]) {
    if (!product_shapes(a, b, c)) return 0;
    int64_t m = a->shape[0], k = a->shape[1], n = b->shape[1];
    int by_cols = m < n;
    int64_t whole = by_cols ? n : m;
    /* NumPy hands a piece of one row or column to gemv */
    if (whole < 4 || (by_cols ? m : n) < 2 || k < 2) return 0;
    int64_t size[2] = {whole / 2, whole - whole / 2}, start[2] = {0, whole / 2};
    int trans_c;
    int64_t ldc;
    if (!blas_layout(c, m, n, &trans_c, &ldc) || trans_c != NO_TRANS) return 0;
    for (int i = 0; i < 2; i++) {
        halves[i].kind = PRODUCT;
        Product *p = &halves[i].product;
        p->m = by_cols ? m : size[i];
        p->n = by_cols ? size[i] : n;
        p->k = k;
        /* NumPy calls syrk for a @ a.T; never the case for a piece of a product here */
        if (!blas_layout(a, p->m, k, &p->trans_a, &p->lda)) return 0;
        if (!blas_layout(b, k, p->n, &p->trans_b, &p->ldb)) return 0;
        p->ldc = ldc;
        const char *a0 = a->buf, *b0 = b->buf;
        char *c0 = c->buf;
        if (by_cols) {
            p->a = (const float *)a0;
            p->b = (const float *)(b0 + start[i] * b->strides[1]);
            p->c = (float *)(c0 + start[i] * c->strides[1]);
            p->bias = bias ? bias + start[i] : NULL;
        } else {
            p->a = (const float *)(a0 + start[i] * a->strides[0]);
            p->b = (const float *)b0;
            p->c = (float *)(c0 + start[i] * c->strides[0]);
            p->bias = bias;
        }
        p->relu = relu;
        p->chain = 0;
    }
    return 1;
}

/* Up to two products as a list of tasks that both threads claim one at a time: a chain_sgemm
 * product in column chunks, an sgemm product as one whole task, listed first so that it starts
 * at once. Chunks shrink as they are claimed (a third of the panels left, at least one): the
 * first are wide enough that A is read for many panels (64-column chunks throughout cost 8-10%
 * more CPU than halves), the last narrow enough that the faster thread, or on a loaded machine
 * the only one running, evens out the finish. Who computes a task changes none of its bits. */
#define CHUNKS_MAX 32
typedef struct {
    Product product[2];
    long long count[2]; /* tasks of each */
    int64_t edge[2][CHUNKS_MAX + 1]; /* their first columns, and n */
    atomic_llong next;
} Chunks;

static long long chunk_edges(const Product *p, int64_t edge[CHUNKS_MAX + 1]) {
    long long count = 0;
    edge[0] = 0;
    if (!p->chain) {
        edge[++count] = p->n;
        return count;
    }
    int64_t panels = (p->n + CHAIN_NR - 1) / CHAIN_NR;
    for (int64_t done = 0; done < panels;) {
        done += count == CHUNKS_MAX - 1 ? panels - done : (panels - done + 2) / 3;
        edge[++count] = done * CHAIN_NR < p->n ? done * CHAIN_NR : p->n;
    }
    return count;
}

static void chunks_init(Chunks *s, const Product *first, const Product *second) {
    s->product[0] = *first;
    s->count[0] = chunk_edges(first, s->edge[0]);
    s->count[1] = 0;
    if (second) {
        s->product[1] = *second;
        s->count[1] = chunk_edges(second, s->edge[1]);
    }
    atomic_init(&s->next, 0);
}

static void run_chunks(void *arg) {
    Chunks *s = arg;
    for (long long i; (i = atomic_fetch_add(&s->next, 1)) < s->count[0] + s->count[1];) {
        int second = i >= s->count[0];
        long long c = second ? i - s->count[0] : i;
        Product p = s->product[second];
        int64_t j0 = s->edge[second][c];
        p.n = s->edge[second][c + 1] - j0;
        if (p.trans_b == NO_TRANS) {
            p.b += j0;
        } else {
            p.b += j0 * p.ldb;
        }
        p.c += j0;
        if (p.bias) p.bias += j0;
        run_product(&p);
    }
}

static void split_call(void (*fn)(void *), void *mine, void *offered);

/* Adam in chunks both threads claim in turn: each element's update is its own, so who runs a
 * chunk changes no bit, and neither thread waits for a fixed half the other holds (a slower
 * vCPU, or one descheduled on a loaded machine, holds only the chunk it is in). */
#define ADAM_CHUNK 32768
typedef struct {
    AdamPart all;
    long long count;
    atomic_llong next;
} AdamChunks;

static void run_adam_chunks(void *arg) {
    AdamChunks *s = arg;
    const AdamPart *a = &s->all;
    for (long long i; (i = atomic_fetch_add(&s->next, 1)) < s->count;) {
        ptrdiff_t lo = (ptrdiff_t)i * ADAM_CHUNK;
        ptrdiff_t len = a->n - lo < ADAM_CHUNK ? a->n - lo : ADAM_CHUNK;
        adam_loop(a->param + lo, a->grad + lo, a->m + lo, a->v + lo, len, a->c1, a->c2, a->eps,
                  a->alpha);
    }
}

static PyObject *adam(PyObject *self, PyObject *args) {
    Py_buffer b[4];
    float c1, c2, eps, alpha;
    if (!PyArg_ParseTuple(args, "w*y*w*w*ffff", &b[0], &b[1], &b[2], &b[3], &c1, &c2, &eps,
                          &alpha))
        return NULL;
    Py_ssize_t n = b[0].len / (Py_ssize_t)sizeof(float);
    int ok = 1;
    for (int k = 0; k < 4; k++) ok = ok && b[k].len == b[0].len;
    if (!ok || b[0].len % (Py_ssize_t)sizeof(float)) {
        PyErr_SetString(PyExc_ValueError, "adam: buffers must hold the same number of float32s");
        ok = 0;
    } else {
        AdamChunks chunks = {{(float *)b[0].buf, (float *)b[2].buf, (float *)b[3].buf,
                              (const float *)b[1].buf, n, c1, c2, eps, alpha},
                             (n + ADAM_CHUNK - 1) / ADAM_CHUNK,
                             0};
        Py_BEGIN_ALLOW_THREADS
        split_call(run_adam_chunks, &chunks, &chunks);
        Py_END_ALLOW_THREADS
    }
    for (int k = 0; k < 4; k++) PyBuffer_Release(&b[k]);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

static PyObject *rest(PyObject *self, PyObject *unused) {
    atomic_store(&W.rest, 1);
    Py_RETURN_NONE;
}

/* Deterministic values in [-1, 1), exact in float32. */
static void fill(float *x, int64_t count, uint32_t seed) {
    for (int64_t i = 0; i < count; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) * (1.0f / 8388608.0f) - 1.0f;
    }
}

/* Whether chain_sgemm gives the bound sgemm's bits: products over one, two and three K blocks,
 * with A as rows and as a transposed view. */
static int chain_verify(void) {
    static const int64_t shapes[][4] = {{16, 1000, 80, 0}, {40, 784, 64, 1}, {24, 512, 96, 0}};
    if (!CHAIN_KERNEL || !chain_cpu() || !sgemm) return 0;
    int same = 1;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0] && same; s++) {
        int64_t m = shapes[s][0], k = shapes[s][1], n = shapes[s][2];
        int trans_a = shapes[s][3] ? TRANS : NO_TRANS;
        float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n);
        float *want = malloc(sizeof(float) * m * n), *got = malloc(sizeof(float) * m * n);
        if (a && b && want && got) {
            fill(a, m * k, 1u + (uint32_t)s);
            fill(b, k * n, 101u + (uint32_t)s);
            int64_t lda = trans_a == NO_TRANS ? k : m;
            sgemm(ROW_MAJOR, trans_a, NO_TRANS, m, n, k, 1.0f, a, lda, b, n, 0.0f, want, n);
            Product p = {trans_a, NO_TRANS, m, n, k, lda, n, n, a, b, NULL, got, 0, 1};
            ChainProduct view = chain_view(&p);
            same = chain_sgemm(&view) && memcmp(want, got, sizeof(float) * m * n) == 0;
        } else {
            same = 0;
        }
        free(a);
        free(b);
        free(want);
        free(got);
    }
    return same;
}

static PyObject *bind(PyObject *self, PyObject *args) {
    const char *path, *symbol;
    if (!PyArg_ParseTuple(args, "ss", &path, &symbol)) return NULL;
    void *lib = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    sgemm = lib ? (sgemm64_fn)dlsym(lib, symbol) : NULL;
    chain_ok = chain_verify();
    return PyBool_FromLong(sgemm != NULL);
}

static PyObject *chain_gemm(PyObject *self, PyObject *args) {
    int on = -1;
    if (!PyArg_ParseTuple(args, "|p", &on)) return NULL;
    if (on >= 0) chain_on = on;
    return PyBool_FromLong(chain_ok && chain_on);
}

/* The buffers of a product's operands a, b and its output c. */
typedef struct {
    Py_buffer a, b, c;
} Operands;

static int get_operands(PyObject *a, PyObject *b, PyObject *c, Operands *o) {
    int flags = PyBUF_STRIDES | PyBUF_FORMAT;
    if (PyObject_GetBuffer(a, &o->a, flags) < 0) return 0;
    if (PyObject_GetBuffer(b, &o->b, flags) < 0) {
        PyBuffer_Release(&o->a);
        return 0;
    }
    if (PyObject_GetBuffer(c, &o->c, flags | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&o->a);
        PyBuffer_Release(&o->b);
        return 0;
    }
    return 1;
}

static void release_operands(Operands *o) {
    PyBuffer_Release(&o->a);
    PyBuffer_Release(&o->b);
    PyBuffer_Release(&o->c);
}

/* The whole product out = a @ b (+ bias, relu) as one chain_sgemm piece for this thread; 0
 * where chain_sgemm does not apply (NumPy's own call is then as fast). */
static int plan_whole(const Py_buffer *a, const Py_buffer *b, const Py_buffer *c,
                      const float *bias, int relu, Piece *piece) {
    if (!whole(a, b, c, piece)) return 0;
    Product *p = &piece->product;
    if (p->n < CHAIN_NR || !chain_applies(p->m, p->n, p->k, p->trans_b)) return 0;
    p->chain = 1;
    p->bias = bias;
    p->relu = relu;
    return 1;
}

/* out = a @ b (+ bias, relu): split over both threads, or whole on this one */
static PyObject *product_call(PyObject *args, int split) {
    PyObject *ao, *bo, *co, *bias_o;
    int relu;
    if (!PyArg_ParseTuple(args, "OOOOp", &ao, &bo, &co, &bias_o, &relu)) return NULL;
    if (!sgemm) Py_RETURN_FALSE;
    Operands o;
    if (!get_operands(ao, bo, co, &o)) return NULL;
    Py_buffer bias = {0};
    int has_bias = bias_o != Py_None;
    int ok = !has_bias || PyObject_GetBuffer(bias_o, &bias, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) == 0;
    Piece pieces[2];
    if (ok && has_bias) {
        ok = bias.ndim == 1 && bias.format && strcmp(bias.format, "f") == 0 && o.c.ndim == 2 &&
             bias.shape[0] == o.c.shape[1];
    }
    const float *b0 = has_bias ? (const float *)bias.buf : NULL;
    int chain = ok && plan_whole(&o.a, &o.b, &o.c, b0, relu, pieces);
    int planned = chain || (ok && split && plan(&o.a, &o.b, &o.c, b0, relu, pieces));
    if (planned) {
        Chunks chunks;
        chunks_init(&chunks, &pieces[0].product, NULL);
        Py_BEGIN_ALLOW_THREADS
        if (chain && split) {
            split_call(run_chunks, &chunks, &chunks);
        } else if (chain) {
            run_piece(&pieces[0]);
        } else {
            split_run(&pieces[0], &pieces[1]);
        }
        Py_END_ALLOW_THREADS
    }
    release_operands(&o);
    if (has_bias && bias.obj) PyBuffer_Release(&bias);
    if (PyErr_Occurred()) return NULL;
    return PyBool_FromLong(planned);
}

static PyObject *matmul(PyObject *self, PyObject *args) { return product_call(args, 1); }

static PyObject *whole_matmul(PyObject *self, PyObject *args) { return product_call(args, 0); }

/* Two independent products, one offered to the worker: for a layer's weight and input
 * gradients, which need the same work, one hand-off instead of two, and each operand packed
 * once instead of once per half. Where one runs chain_sgemm, the two are a task list
 * (`run_chunks`): the sgemm product whole, the other in chunks either thread takes. */
static PyObject *pair(PyObject *self, PyObject *args) {
    PyObject *x[6];
    if (!PyArg_ParseTuple(args, "OOOOOO", &x[0], &x[1], &x[2], &x[3], &x[4], &x[5])) return NULL;
    if (!sgemm) Py_RETURN_FALSE;
    Operands o[2];
    if (!get_operands(x[0], x[1], x[2], &o[0])) return NULL;
    if (!get_operands(x[3], x[4], x[5], &o[1])) {
        release_operands(&o[0]);
        return NULL;
    }
    Piece pieces[2];
    int planned = whole(&o[0].a, &o[0].b, &o[0].c, &pieces[0]) &&
                  whole(&o[1].a, &o[1].b, &o[1].c, &pieces[1]) && !overlaps(&o[0].c, &o[1].c) &&
                  !overlaps(&o[0].a, &o[1].c) && !overlaps(&o[0].b, &o[1].c) &&
                  !overlaps(&o[1].a, &o[0].c) && !overlaps(&o[1].b, &o[0].c);
    if (planned) {
        for (int i = 0; i < 2; i++) {
            Product *p = &pieces[i].product;
            p->chain = p->n >= CHAIN_NR && chain_applies(p->m, p->n, p->k, p->trans_b);
        }
        /* an sgemm product first: it starts at once while the other thread takes chunks */
        int swap = pieces[0].product.chain && !pieces[1].product.chain;
        const Product *first = &pieces[swap].product, *second = &pieces[!swap].product;
        Chunks chunks;
        chunks_init(&chunks, first, second);
        int chunked = first->chain || second->chain;
        Py_BEGIN_ALLOW_THREADS
        if (chunked) {
            split_call(run_chunks, &chunks, &chunks);
        } else {
            split_run(&pieces[0], &pieces[1]);
        }
        Py_END_ALLOW_THREADS
    }
    release_operands(&o[0]);
    release_operands(&o[1]);
    return PyBool_FromLong(planned);
}

static PyMethodDef methods[] = {
    {"bind", bind, METH_VARARGS,
     "bind(path, symbol): use the ILP64 cblas_sgemm `symbol` of the already loaded library "
     "at `path`; returns whether it was found."},
    {"matmul", matmul, METH_VARARGS,
     "matmul(a, b, out, bias, relu): out = a @ b split in two pieces (rows, or columns when out "
     "is wider than tall) over two threads, then bias and relu on each piece; returns False, "
     "doing nothing, where it does not apply."},
    {"whole_matmul", whole_matmul, METH_VARARGS,
     "whole_matmul(a, b, out, bias, relu): out = a @ b by chain_sgemm on this thread, then bias "
     "and relu; returns False, doing nothing, where chain_sgemm does not apply."},
    {"pair", pair, METH_VARARGS,
     "pair(a1, b1, out1, a2, b2, out2): out1 = a1 @ b1 and out2 = a2 @ b2, one per thread, or "
     "in chunks both take where chain_sgemm runs one; NumPy's whole products' bits; returns "
     "False, doing nothing, where it does not apply."},
    {"adam", adam, METH_VARARGS,
     "adam(param, grad, m, v, 1 - beta_1, 1 - beta_2, epsilon, alpha): Keras's Adam step in "
     "place on contiguous float32 buffers, in chunks that this thread and the worker take in "
     "turn."},
    {"rest", rest, METH_NOARGS, "rest(): the worker sleeps now instead of spinning."},
    {"chain_gemm", chain_gemm, METH_VARARGS,
     "chain_gemm([on]): whether split products run the compiled chain_sgemm (bound, checked "
     "bit for bit against NumPy's sgemm at bind time, and switched on); `on` switches it."},
    ISA_METHOD,
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_split", NULL, -1, methods};

/* fn(mine) on this thread and fn(offered) on the worker (or this thread, if the worker is late
 * or busy); called without the GIL. Other extension modules reach it through the capsule
 * `split_api`, so the process keeps one spinning worker. */
static void split_call(void (*fn)(void *), void *mine, void *offered) {
    Piece a = {.kind = CALL, .call = {fn, mine}}, b = {.kind = CALL, .call = {fn, offered}};
    split_run(&a, &b);
}

static sgemm64_fn bound_sgemm(void) { return sgemm; }

static const SplitApi api = {split_call, bound_sgemm};

PyMODINIT_FUNC PyInit__split(void) {
    isa_init();
    if (pthread_atfork(NULL, NULL, reset_after_fork) != 0) {
        PyErr_SetString(PyExc_OSError, "_split: pthread_atfork failed");
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    PyObject *capsule = m ? PyCapsule_New((void *)&api, SPLIT_API_CAPSULE, NULL) : NULL;
    if (!capsule || PyModule_AddObject(m, "split_api", capsule) < 0) {
        Py_XDECREF(capsule);
        Py_XDECREF(m);
        return NULL;
    }
    return m;
}
