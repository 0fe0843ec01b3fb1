/* The instruction-set variants of the compiled loops, and which one runs.
 *
 * A loop declared with WIDE_CLONES, VECTOR_CLONES or FMA_CLONES is compiled once per variant
 * (its body inlined into each, built for that instruction set) and called through a switch on
 * `isa_level`: the CPU's best level, or a lower one where MODELSPEC_NATIVE_ISA asks for it at
 * the module's import, or where a test sets it through the module's `isa` function. So an
 * AVX2-only bug shows on an AVX-512 machine too. GCC's target_clones would pick the variant in
 * a resolver at load time, with no way to ask for another one.
 */
#ifndef ENGINE_NATIVE_ISA_H
#define ENGINE_NATIVE_ISA_H

#include <Python.h>
#include <stdlib.h>
#include <string.h>

enum { ISA_DEFAULT, ISA_AVX2, ISA_AVX512, ISA_LEVELS };
static const char *const isa_names[ISA_LEVELS] = {"default", "avx2", "avx512"};

static int isa_level = ISA_DEFAULT;

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
/* avx512 needs all of x86-64-v4 (AVX-512 F, BW, CD, DQ, VL) and avx2 all of x86-64-v3 (AVX2,
 * FMA, BMI1/2, ...), as the FMA loops' variants are built for those levels. */
static int isa_best(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) return ISA_AVX512;
    return __builtin_cpu_supports("x86-64-v3") ? ISA_AVX2 : ISA_DEFAULT;
}

#define ISA_VARIANT(TARGET, name, suffix, params, args)                                            \
    __attribute__((target(TARGET))) static void name##suffix params { name##_body args; }

/* `XXX_CLONES(name, (parameters), (argument names)) { body }` defines the loop `name`. */
#define ISA_LOOP(WIDE, MID, name, params, args)                                                    \
    static inline __attribute__((always_inline)) void name##_body params;                          \
    ISA_VARIANT(WIDE, name, _wide, params, args)                                                   \
    ISA_VARIANT(MID, name, _mid, params, args)                                                     \
    static void name##_default params { name##_body args; }                                        \
    static void name params {                                                                      \
        if (isa_level == ISA_AVX512)                                                               \
            name##_wide args;                                                                      \
        else if (isa_level == ISA_AVX2)                                                            \
            name##_mid args;                                                                       \
        else                                                                                       \
            name##_default args;                                                                   \
    }                                                                                              \
    static inline __attribute__((always_inline)) void name##_body params

/* The LSTM, softmax and LayerNormalization loops: an AVX-512 variant (the exp is most of the
 * first two's time); the same IEEE operations give the same bits at any width. */
#define WIDE_CLONES(name, params, args) ISA_LOOP("avx512f", "avx2", name, params, args)
/* Element-wise loops: AVX2 at both levels (their AVX-512 variant is AVX2's code). */
#define VECTOR_CLONES(name, params, args) ISA_LOOP("avx2", "avx2", name, params, args)
/* Loops whose results may use fused multiply-adds: AVX-512 and AVX2 with FMA. */
#define FMA_CLONES(name, params, args)                                                             \
    ISA_LOOP("arch=x86-64-v4", "arch=x86-64-v3", name, params, args)
#else
static int isa_best(void) { return ISA_DEFAULT; }

#define WIDE_CLONES(name, params, args) static void name params
#define VECTOR_CLONES(name, params, args) static void name params
#define FMA_CLONES(name, params, args) static void name params
#endif

static int isa_named(const char *name) {
    for (int level = 0; level < ISA_LEVELS; level++)
        if (strcmp(name, isa_names[level]) == 0) return level;
    return -1;
}

/* Called by each module's PyInit: the best level, capped by MODELSPEC_NATIVE_ISA (the Python
 * loader rejects a value that names no level before the import). */
static void isa_init(void) {
    const char *wanted = getenv("MODELSPEC_NATIVE_ISA");
    int best = isa_best(), level = wanted && *wanted ? isa_named(wanted) : best;
    isa_level = level < 0 || level > best ? best : level;
}

static PyObject *isa_method(PyObject *self, PyObject *args) {
    const char *name = NULL;
    if (!PyArg_ParseTuple(args, "|s", &name)) return NULL;
    if (name) {
        int level = isa_named(name);
        if (level < 0 || level > isa_best()) {
            PyErr_Format(PyExc_ValueError, "isa: %s is not a level this CPU runs", name);
            return NULL;
        }
        isa_level = level;
    }
    return Py_BuildValue("(ss)", isa_names[isa_level], isa_names[isa_best()]);
}

#define ISA_METHOD                                                                                 \
    {"isa", isa_method, METH_VARARGS,                                                              \
     "isa([level]) -> (level, best): the instruction-set variant the loops run (default, avx2 "   \
     "or avx512) and the best this CPU runs; with a level, run that one from now on."}

#endif
