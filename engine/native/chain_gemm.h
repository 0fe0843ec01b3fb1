/* A float32 product C = A @ B whose every element is summed as NumPy's bundled OpenBLAS sums it
 * on AVX-512 cores (its SkylakeX sgemm, one thread), so its results are NumPy's bits, written so
 * that the two threads of a split product each pack only their own columns of B.
 *
 * OpenBLAS cuts K into blocks (`chain_blocks`), sums each block as one chain of fused
 * multiply-adds from +0 and adds the blocks' sums in order to a zeroed C; how it tiles M and N
 * changes nothing in an element's sum. Here each thread computes whole columns of C: it packs
 * its columns of B, a K block at a time, into 32-column panels and streams A as it is (rows or
 * columns of a transposed view), so no operand is packed twice, where two OpenBLAS calls on the
 * halves each pack the whole shared operand. `chain_verify` compares the kernel with the bound
 * sgemm at start-up; the kernel is used only where they agree bit for bit.
 */
#ifndef ENGINE_NATIVE_CHAIN_GEMM_H
#define ENGINE_NATIVE_CHAIN_GEMM_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A[i][k] = a[i * a_row + k * a_col]; B[k][j] = b[k * ldb + j]; C[i][j] = c[i * ldc + j] */
typedef struct {
    const float *a, *b;
    float *c;
    int64_t a_row, a_col, ldb, ldc, m, n, k;
} ChainProduct;

/* C is computed in tiles of MR rows and NR columns (16 AVX-512 registers) */
enum { CHAIN_MR = 8, CHAIN_NR = 32 };

/* OpenBLAS's K blocking for its SkylakeX sgemm (GEMM_Q = 448, unroll 16), as its level-3
 * driver takes it: whole blocks of Q while two or more remain, then the rest in two halves
 * rounded up to 16 if it exceeds Q. Returns the number of blocks; bounds[0] = 0. */
#define CHAIN_Q 448
#define CHAIN_MAX_BLOCKS 64
static int chain_blocks(int64_t k, int64_t bounds[CHAIN_MAX_BLOCKS + 1]) {
    int count = 0;
    bounds[0] = 0;
    for (int64_t done = 0; done < k && count < CHAIN_MAX_BLOCKS;) {
        int64_t size = k - done;
        if (size >= 2 * CHAIN_Q) {
            size = CHAIN_Q;
        } else if (size > CHAIN_Q) {
            size = (size / 2 + 15) / 16 * 16;
        }
        done += size;
        bounds[++count] = done;
    }
    return bounds[count] == k ? count : 0;
}

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define CHAIN_KERNEL 1
#define CHAIN_TARGET __attribute__((target("avx512f,fma")))
#define CHAIN_INLINE CHAIN_TARGET static inline __attribute__((always_inline))

/* Columns [j0, j0 + NR) of B's rows [k0, k1), zero past column n, as kb rows of NR floats. */
CHAIN_INLINE void chain_pack_panel(const ChainProduct *p, int64_t k0, int64_t k1, int64_t j0,
                                   float *panel) {
    int64_t left = p->n - j0;
    __mmask16 m0 = left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1);
    __mmask16 m1 = left >= 32 ? 0xFFFF : left <= 16 ? 0 : (__mmask16)((1u << (left - 16)) - 1);
    const float *row = p->b + k0 * p->ldb + j0;
    for (int64_t k = k0; k < k1; k++, row += p->ldb, panel += CHAIN_NR) {
        _mm512_store_ps(panel, _mm512_maskz_loadu_ps(m0, row));
        _mm512_store_ps(panel + 16, _mm512_maskz_loadu_ps(m1, row + 16));
    }
}

/* One MR x NR tile of C (mr rows, columns masked by m0/m1) over K block [k0, k0 + kb): each
 * element a chain of fused multiply-adds from +0, then added to C (to +0 in the first block).
 * `a_row == 1` is the transposed view's layout (A's columns contiguous). */
CHAIN_INLINE void chain_tile(const int mr, const int cols_contiguous, const float *a,
                             int64_t a_row, int64_t a_col, const float *panel, int64_t kb,
                             float *c, int64_t ldc, int first, __mmask16 m0, __mmask16 m1) {
    __m512 acc0[CHAIN_MR], acc1[CHAIN_MR];
    for (int r = 0; r < mr; r++) acc0[r] = acc1[r] = _mm512_setzero_ps();
    if (cols_contiguous) a_row = 1;
    for (int64_t k = 0; k < kb; k++, a += a_col, panel += CHAIN_NR) {
        __m512 b0 = _mm512_load_ps(panel), b1 = _mm512_load_ps(panel + 16);
        for (int r = 0; r < mr; r++) {
            __m512 x = _mm512_set1_ps(a[r * a_row]);
            acc0[r] = _mm512_fmadd_ps(x, b0, acc0[r]);
            acc1[r] = _mm512_fmadd_ps(x, b1, acc1[r]);
        }
    }
    __m512 zero = _mm512_setzero_ps();
    for (int r = 0; r < mr; r++, c += ldc) {
        __m512 c0 = first ? zero : _mm512_maskz_loadu_ps(m0, c);
        __m512 c1 = first ? zero : _mm512_maskz_loadu_ps(m1, c + 16);
        _mm512_mask_storeu_ps(c, m0, _mm512_add_ps(c0, acc0[r]));
        _mm512_mask_storeu_ps(c + 16, m1, _mm512_add_ps(c1, acc1[r]));
    }
}

/* Rows [0, m) of C for one packed K block, MR rows at a time, every panel for each. */
CHAIN_INLINE void chain_rows(const ChainProduct *p, const int cols_contiguous, int64_t k0,
                             int64_t kb, const float *packed, int first) {
    int64_t panels = (p->n + CHAIN_NR - 1) / CHAIN_NR;
    for (int64_t i = 0; i < p->m; i += CHAIN_MR) {
        const float *a = p->a + i * p->a_row + k0 * p->a_col;
        float *c_rows = p->c + i * p->ldc;
        int64_t rows = p->m - i < CHAIN_MR ? p->m - i : CHAIN_MR;
        for (int64_t q = 0; q < panels; q++) {
            int64_t left = p->n - q * CHAIN_NR;
            __mmask16 m0 = left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1);
            __mmask16 m1 =
                left >= 32 ? 0xFFFF : left <= 16 ? 0 : (__mmask16)((1u << (left - 16)) - 1);
            const float *panel = packed + q * kb * CHAIN_NR;
            float *c = c_rows + q * CHAIN_NR;
            switch (rows) {
#define CHAIN_CASE(R)                                                                           \
    case R:                                                                                     \
        chain_tile(R, cols_contiguous, a, p->a_row, p->a_col, panel, kb, c, p->ldc, first, m0, \
                   m1);                                                                         \
        break;
                CHAIN_CASE(8)
                CHAIN_CASE(7)
                CHAIN_CASE(6)
                CHAIN_CASE(5)
                CHAIN_CASE(4)
                CHAIN_CASE(3)
                CHAIN_CASE(2)
                CHAIN_CASE(1)
#undef CHAIN_CASE
            }
        }
    }
}

/* The packing buffer of the calling thread, kept between calls (a fresh one would be new pages
 * every product). */
static float *chain_buffer(int64_t floats) {
    static __thread float *buffer;
    static __thread int64_t size;
    if (floats <= size) return buffer;
    free(buffer);
    size = 0;
    buffer = aligned_alloc(64, (size_t)((floats + 15) / 16 * 16) * sizeof(float));
    if (buffer) size = floats;
    return buffer;
}

/* C = A @ B; returns 0 (writing nothing) when the packing buffer cannot be had. */
CHAIN_TARGET static int chain_sgemm(const ChainProduct *p) {
    int64_t bounds[CHAIN_MAX_BLOCKS + 1];
    int blocks = chain_blocks(p->k, bounds);
    int64_t panels = (p->n + CHAIN_NR - 1) / CHAIN_NR;
    int64_t widest = blocks ? bounds[1] : 0;
    float *packed = blocks ? chain_buffer(widest * panels * CHAIN_NR) : NULL;
    if (!packed) return 0;
    for (int blk = 0; blk < blocks; blk++) {
        int64_t k0 = bounds[blk], kb = bounds[blk + 1] - k0;
        for (int64_t q = 0; q < panels; q++)
            chain_pack_panel(p, k0, k0 + kb, q * CHAIN_NR, packed + q * kb * CHAIN_NR);
        if (p->a_row == 1) {
            chain_rows(p, 1, k0, kb, packed, blk == 0);
        } else {
            chain_rows(p, 0, k0, kb, packed, blk == 0);
        }
    }
    return 1;
}

static int chain_cpu(void) { return __builtin_cpu_supports("avx512f") != 0; }
#else
#define CHAIN_KERNEL 0
static int chain_sgemm(const ChainProduct *p) {
    (void)p;
    return 0;
}
static int chain_cpu(void) { return 0; }
#endif

#endif
