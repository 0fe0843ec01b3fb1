/* A stack of float32 products, out[i] = a[i] @ b[i], with the stack split in two fixed halves
 * over this thread and the compiled split's worker (`_split.c`, reached through its capsule).
 *
 * Why: attention's products are hundreds of small matrices (one per sample and head). NumPy's
 * stacked matmul runs them on one thread; splitting them from Python costs a thread hand-off
 * and the GIL for every product. Here each matrix is the very sgemm call NumPy's matmul makes
 * for it (numpy/_core/src/umath/matmul.c.src: per matrix, no transpose when rows are
 * contiguous, else a transpose flag, any leading dimension), so the results are bit-identical
 * to `np.matmul(a, b, out=out)`, whichever thread runs which half. Operands and output may be
 * strided views (a head-split view of a (batch, T, heads, dim) buffer, a transposed stack), as
 * long as NumPy would hand each matrix to BLAS as it is.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "split_api.h"

typedef struct {
    int trans_a, trans_b;
    int64_t m, n, k, lda, ldb, ldc;
    const char *a, *b;
    char *c;
    int64_t inner;                   /* size of the second stack axis (1 for one axis) */
    Py_ssize_t sa[2], sb[2], sc[2];  /* byte strides of the stack axes */
    int64_t lo, hi;                  /* matrices lo..hi-1, in row-major stack order */
    sgemm64_fn sgemm;
} Half;

static const SplitApi *api;

static void run_half(void *arg) {
    const Half *h = arg;
    for (int64_t i = h->lo; i < h->hi; i++) {
        int64_t i0 = i / h->inner, i1 = i % h->inner;
        const float *a = (const float *)(h->a + i0 * h->sa[0] + i1 * h->sa[1]);
        const float *b = (const float *)(h->b + i0 * h->sb[0] + i1 * h->sb[1]);
        float *c = (float *)(h->c + i0 * h->sc[0] + i1 * h->sc[1]);
        h->sgemm(ROW_MAJOR, h->trans_a, h->trans_b, h->m, h->n, h->k, 1.0f, a, h->lda, b, h->ldb,
                 0.0f, c, h->ldc);
    }
}

/* NumPy's layout choice for one matrix of `v` (rows x cols, the last two axes): no transpose
 * when its rows are contiguous, else a transpose; 0 when BLAS cannot take it as it is. */
static int layout(const Py_buffer *v, int64_t rows, int64_t cols, int *trans, int64_t *ld) {
    Py_ssize_t s0 = v->strides[v->ndim - 2], s1 = v->strides[v->ndim - 1];
    Py_ssize_t f = (Py_ssize_t)sizeof(float);
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

static int float_stack(const Py_buffer *v, int ndim) {
    if (v->ndim != ndim || v->itemsize != (Py_ssize_t)sizeof(float) || !v->format ||
        strcmp(v->format, "f") != 0 || (uintptr_t)v->buf % sizeof(float))
        return 0;
    for (int d = 0; d < ndim; d++)
        if (v->strides[d] % (Py_ssize_t)sizeof(float)) return 0;
    return 1;
}

/* Both halves of the stack; 0 where NumPy would not make one plain sgemm call per matrix. */
static int plan(const Py_buffer *a, const Py_buffer *b, const Py_buffer *c, Half halves[2]) {
    int nd = c->ndim;
    if ((nd != 3 && nd != 4) || !float_stack(a, nd) || !float_stack(b, nd) || !float_stack(c, nd))
        return 0;
    for (int d = 0; d < nd - 2; d++)
        if (a->shape[d] != c->shape[d] || b->shape[d] != c->shape[d]) return 0;
    int64_t m = a->shape[nd - 2], k = a->shape[nd - 1], n = b->shape[nd - 1];
    if (b->shape[nd - 2] != k || c->shape[nd - 2] != m || c->shape[nd - 1] != n) return 0;
    if (m < 2 || n < 2 || k < 2 || m > INT32_MAX || n > INT32_MAX || k > INT32_MAX) return 0;
    Half h = {.m = m, .n = n, .k = k, .a = a->buf, .b = b->buf, .c = c->buf};
    int trans_c;
    if (!layout(a, m, k, &h.trans_a, &h.lda) || !layout(b, k, n, &h.trans_b, &h.ldb)) return 0;
    if (!layout(c, m, n, &trans_c, &h.ldc) || trans_c != NO_TRANS) return 0;
    int two = nd == 4;
    h.inner = two ? c->shape[1] : 1;
    for (int d = 0; d < 2; d++) {
        h.sa[d] = d < nd - 2 ? a->strides[d] : 0;
        h.sb[d] = d < nd - 2 ? b->strides[d] : 0;
        h.sc[d] = d < nd - 2 ? c->strides[d] : 0;
    }
    int64_t count = c->shape[0] * h.inner;
    if (count < 2) return 0;
    h.sgemm = api->sgemm();
    if (!h.sgemm) return 0;
    halves[0] = halves[1] = h;
    halves[0].lo = 0;
    halves[0].hi = halves[1].lo = count / 2;
    halves[1].hi = count;
    return 1;
}

/* a and b read, out written, as strided float buffers; on failure none is held. */
static int get_operands(PyObject *objects[3], Py_buffer views[3]) {
    for (int i = 0; i < 3; i++) {
        int flags = PyBUF_STRIDES | PyBUF_FORMAT | (i == 2 ? PyBUF_WRITABLE : 0);
        if (PyObject_GetBuffer(objects[i], &views[i], flags) < 0) {
            while (i--) PyBuffer_Release(&views[i]);
            return 0;
        }
    }
    return 1;
}

static PyObject *matmul(PyObject *self, PyObject *args) {
    PyObject *objects[3];
    if (!PyArg_ParseTuple(args, "OOO", &objects[0], &objects[1], &objects[2])) return NULL;
    if (!api) {
        api = PyCapsule_Import(SPLIT_API_CAPSULE, 0);
        if (!api) return NULL;
    }
    Py_buffer v[3];
    if (!get_operands(objects, v)) return NULL;
    Half halves[2];
    int planned = plan(&v[0], &v[1], &v[2], halves);
    if (planned) {
        Py_BEGIN_ALLOW_THREADS
        api->call(run_half, &halves[0], &halves[1]);
        Py_END_ALLOW_THREADS
    }
    for (int i = 0; i < 3; i++) PyBuffer_Release(&v[i]);
    return PyBool_FromLong(planned);
}

static PyMethodDef methods[] = {
    {"matmul", matmul, METH_VARARGS,
     "matmul(a, b, out): out[i] = a[i] @ b[i] over stacks of one or two leading axes, the "
     "stack in two halves on two threads; returns False, doing nothing, where it does not "
     "apply. The operands must not overlap `out` or each other (the caller checks)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_batched", NULL, -1, methods};

PyMODINIT_FUNC PyInit__batched(void) { return PyModule_Create(&module); }
