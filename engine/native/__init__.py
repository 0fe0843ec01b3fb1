"""Optional compiled kernels for the CPU step, bit-identical to their NumPy composites.

`engine/native/_kernels.c` (one-thread kernels), `_recurrent.c` (the LSTM's step and its whole
time loop), `_batch_norm.c` (BatchNormalization's training passes), `_im2col.c` (convolution's
column matrix), `_pool.c` (2-d max pooling), `_conv_direct.c` (convolution without a column
matrix, for few channels), `_split.c` (products, pairs of products and Adam split over this
thread and a spinning worker; products by `chain_gemm.h` where it gives OpenBLAS's bits),
`_batched.c` (stacks of products split the same way, on `_split`'s worker), `_attention.c`
(scaled dot-product attention, one (sample, head) pair at a time, on the same worker) and
`_conv_pool.c` (the backward of a convolution + ReLU + max pooling
from the pooling's winners) are built when the package is installed, if a C compiler is there;
without one the build is skipped and every caller runs its NumPy composite, with the same
results bit for bit, except for the direct convolution: it sums in another order than im2col +
sgemm, so its results agree within float32 rounding (and repeat bit for bit), for the fused
convolution + pooling backward (the same), and for the fused attention, which scales the query
before its product and reads the key transposed where NumPy copies it (the same: close, and
repeating bit for bit). A kernel applies only to plain float32 NumPy arrays, C-contiguous except
for the fused attention's (batch, heads, L, dim) operands, which are views with contiguous rows
(checked in `_attention.c`): CuPy arrays, the strict fake device's arrays and every other dtype
take the NumPy path.
`MODELSPEC_NATIVE=0` in the environment (read at the first kernel call) leaves the built
modules unloaded, so a process runs exactly as on a machine without a compiler: that is how
the benchmark measures the fallback and how a user rules the kernels out of a problem.
`MODELSPEC_NATIVE_ISA=avx2` (or `default`) makes the loops built for several instruction sets
run that variant instead of the CPU's best, so that one machine can test them all.

Why: an element-wise update written as NumPy operations makes one pass over memory per
operation and takes the GIL between them. Keras's Adam is 12 such passes; as one pass it runs
about 3x faster (measured on W2's 536k parameters: 236 us against 779 us for the NumPy
composite split over both cores). A Dense layer's bias and relu are two passes; an LSTM
step after its recurrent product is 12 small calls forward and 17 back; an Embedding
gradient is a sort and a fancy-index add per level.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

Array = Any


# Every compiled module by file stem: pyproject.toml's ext-modules (a test holds them equal).
COMPILED = (
    "_kernels",
    "_recurrent",
    "_batch_norm",
    "_im2col",
    "_pool",
    "_conv_direct",
    "_split",
    "_batched",
    "_attention",
    "_conv_pool",
)


def built() -> dict[str, bool]:
    """Each compiled module and whether it loads: False when it was not built (each is optional,
    so one can fail to compile while the others build) or `MODELSPEC_NATIVE=0` is set."""
    return {name: getattr(_ext, name[1:]) is not None for name in COMPILED}


def available() -> bool:
    """Whether every compiled module loads: the install is the one the benchmarks measure.

    False as soon as one is missing; `built()` says which. The split products also need NumPy's
    own OpenBLAS at run time, which `split_gemm_available()` checks on top of this.
    """
    return _ext.every_module


def _numpy_sgemm() -> tuple[str, str] | None:
    """The library file and ILP64 sgemm symbol of the OpenBLAS that NumPy's wheel bundles."""
    blas = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
    if blas.get("name") != "scipy-openblas" or "USE64BITINT" not in str(
        blas.get("openblas configuration", "")
    ):
        return None
    libs = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    found = sorted(libs.glob("libscipy_openblas64_*.so*"))
    return (str(found[0]), "scipy_cblas_sgemm64_") if len(found) == 1 else None


SWITCH = "MODELSPEC_NATIVE"


def switched_off() -> bool:
    """Whether the environment asks for the NumPy composites only (`MODELSPEC_NATIVE=0`)."""
    return os.environ.get(SWITCH, "").strip().lower() in ("0", "false", "no", "off")


# The instruction-set variants of the compiled loops, lowest first (`engine/native/isa.h`). The
# modules run the CPU's best, or the one `MODELSPEC_NATIVE_ISA` names if lower, read at import.
ISA = "MODELSPEC_NATIVE_ISA"
ISA_LEVELS = ("default", "avx2", "avx512")


def _check_isa_request() -> None:
    """A `MODELSPEC_NATIVE_ISA` naming no level is refused before a module reads it (the modules
    would run their best level, so a misspelt CI setting would test nothing)."""
    wanted = os.environ.get(ISA, "")
    if wanted and wanted not in ISA_LEVELS:
        raise ValueError(f"{ISA}={wanted!r}: expected one of {', '.join(ISA_LEVELS)}")


def _load(name: str) -> ModuleType | None:
    """The compiled module `engine.native.<name>`, or None when switched off or not built (no C
    compiler at install time): the NumPy composites then run instead."""
    if switched_off():
        return None
    _check_isa_request()
    try:
        return importlib.import_module(f"engine.native.{name}")
    except ImportError:
        return None


class _Extensions:
    """The compiled modules, loaded on first use: importing the engine to check a spec (lint)
    then loads no shared library and binds no BLAS symbol."""

    def __getattr__(self, name: str) -> ModuleType | None:
        """`COMPILED`'s module `_<name>` (None when switched off or not built), loaded at the
        first access and kept as a plain attribute, so later reads skip this lookup and a test
        can set one to None to run without it."""
        if f"_{name}" not in COMPILED:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        module = _load(f"_{name}")
        setattr(self, name, module)
        return module

    @functools.cached_property
    def every_module(self) -> bool:
        return all(getattr(self, name[1:]) is not None for name in COMPILED)

    @functools.cached_property
    def split_gemm(self) -> bool:
        """Whether the compiled split is bound to the sgemm of NumPy's own OpenBLAS."""
        split = self.split
        if split is None:
            return False
        target = _numpy_sgemm()
        if target is None:
            return False
        # binding checks chain_sgemm against one-thread sgemm calls
        from engine.fused.blas_threads import single_threaded_blas

        with single_threaded_blas():
            return bool(split.bind(*target))


_ext = _Extensions()


def isa_levels() -> tuple[str, ...]:
    """The levels of `ISA_LEVELS` this CPU runs the compiled loops at, or () when not built."""
    kernels = _ext.kernels
    if kernels is None:
        return ()
    _, best = kernels.isa()
    return ISA_LEVELS[: ISA_LEVELS.index(best) + 1]


def use_isa(level: str) -> str:
    """Run every compiled module's loops at `level` (one of `isa_levels()`) from now on, in this
    process, and return the level they ran at: the tests run each variant this way. Loads
    every module."""
    before = ""
    for name in COMPILED:
        module = getattr(_ext, name[1:])
        if module is not None and hasattr(module, "isa"):  # _batched has no loops of its own
            before = before or module.isa()[0]
            module.isa(level)
    return before


def split_gemm_available() -> bool:
    """Whether `split_matmul` can run: built, and NumPy's own OpenBLAS found in the process."""
    return _ext.split_gemm


def _product_split(a: Array, b: Array, out: Array, bias: Array | None) -> Any:
    """`_split` where it may take the product: plain NumPy operands and a float32 bias."""
    if not _ext.split_gemm or not (type(a) is type(b) is type(out) is np.ndarray):
        return None
    if bias is not None and not _plain_float32(bias):
        return None
    return _ext.split


def split_matmul(a: Array, b: Array, out: Array, bias: Array | None, relu: bool) -> bool:
    """`out = a @ b` over this thread and a compiled worker, in the two pieces of `gemm.halves`
    (rows, or columns when `out` is wider than tall) or, where `chain_gemm` takes it, in column
    chunks both threads claim, then `bias` and relu on each piece, bit-identical to NumPy's
    matmul on each piece followed by `bias_relu`; returns whether it ran (plain float32 NumPy
    matrices NumPy would hand to one sgemm per piece, `out` not overlapping an operand)."""
    split = _product_split(a, b, out, bias)
    return split is not None and bool(split.matmul(a, b, out, bias, relu))


def whole_matmul(a: Array, b: Array, out: Array, bias: Array | None, relu: bool) -> bool:
    """`out = a @ b` on this thread by `_split`'s own sgemm, then `bias` and relu, NumPy's bits
    (see `chain_gemm`); returns whether it ran: not where the kernel is off or does not apply
    (fewer than 32 columns, `b` transposed, a product NumPy hands to its small-matrix kernels)."""
    split = _product_split(a, b, out, bias)
    return split is not None and bool(split.whole_matmul(a, b, out, bias, relu))


def chain_gemm(on: bool | None = None) -> bool:
    """Whether split products run `_split`'s own sgemm (`chain_gemm.h`): NumPy's bits where
    its check at bind time found them, each piece packing only its own columns of `b`; `on`
    switches it (for measurements and tests)."""
    split = _ext.split
    if split is None or not _ext.split_gemm:
        return False
    return bool(split.chain_gemm() if on is None else split.chain_gemm(on))


def pair_matmul(first: tuple[Array, Array, Array], second: tuple[Array, Array, Array]) -> bool:
    """`out = a @ b` for both `(a, b, out)`, one on this thread and one on the compiled split's
    worker, each the one sgemm call NumPy makes for it (or, where `chain_gemm` takes one, in
    column chunks both threads claim), so bit-identical to NumPy's matmul; returns whether it
    ran (plain float32 NumPy matrices, no output overlapping an operand or the other output)."""
    if not _ext.split_gemm or not all(type(x) is np.ndarray for x in (*first, *second)):
        return False
    split = _ext.split
    assert split is not None
    return bool(split.pair(*first, *second))


def batched_matmul(a: Array, b: Array, out: Array) -> bool:
    """`np.matmul(a, b, out=out)` over stacks of one or two leading axes, the stack split in
    halves over this thread and the compiled split's worker, bit-identical to NumPy's; returns
    whether it ran (float32 NumPy arrays, no overlap, each matrix one plain sgemm for NumPy)."""
    if not _ext.split_gemm or _ext.batched is None:
        return False
    if not (type(a) is type(b) is type(out) is np.ndarray):
        return False
    if a.dtype != np.float32 or b.dtype != np.float32 or out.dtype != np.float32:
        return False
    if any(np.may_share_memory(x, y) for x, y in ((a, out), (b, out), (a, b))):
        return False
    return bool(_ext.batched.matmul(a, b, out))


def _attention_operands(*arrays: Array | None) -> bool:
    """Float32 NumPy arrays (or None) that the fused attention may take."""
    return all(a is None or (type(a) is np.ndarray and a.dtype == np.float32) for a in arrays)


def attention_forward(
    q: Array,
    k: Array,
    v: Array,
    mask: Array | None,
    keep: Array | None,
    probs: Array,
    out: Array,
    scale: float,
    split: bool,
) -> bool:
    """The fused attention's forward (`_attention.c`): `probs` = softmax(scale q k^T, mask),
    `out` = (probs * keep) v, over (batch, heads, L, dim) views with contiguous rows (not
    necessarily C-contiguous: strides in whole floats), the pairs split over both cores when
    `split`; `mask` is uint8 (batch or 1, heads or 1, T, S), C-contiguous; `probs` and `keep`
    C-contiguous. Returns whether it ran: not where a layout does not suit it or a written
    array shares memory with another argument."""
    module = _ext.attention
    if module is None or not _ext.split_gemm or not _attention_operands(q, k, v, keep, probs, out):
        return False
    if mask is not None and not (type(mask) is np.ndarray and mask.dtype == np.uint8):
        return False
    return bool(module.forward(q, k, v, mask, keep, probs, out, scale, split))


def attention_backward(
    q: Array,
    k: Array,
    v: Array,
    keep: Array | None,
    probs: Array,
    dout: Array,
    grads: tuple[Array, Array, Array],
    scale: float,
    split: bool,
) -> bool:
    """The fused attention's backward: the query's, key's and value's gradients of
    `attention_forward` written into `grads`; returns whether it ran."""
    module = _ext.attention
    if module is None or not _ext.split_gemm:
        return False
    if not _attention_operands(q, k, v, keep, probs, dout, *grads):
        return False
    return bool(module.backward(q, k, v, keep, probs, dout, *grads, scale, split))


def rest_split_worker() -> None:
    """Send the compiled split's worker to sleep instead of spinning: Python threads are about
    to use both cores (`engine.fused.parallel.run`), and a spinning worker would take one."""
    split = _ext.split
    if split is not None:
        split.rest()


_FLOAT32 = np.dtype(np.float32)


def _plain_float32(*arrays: Array) -> bool:
    """Whether every array is a C-contiguous float32 NumPy array (checked on every product and
    element-wise kernel call, so written as a plain loop: a generator cost more than the check)."""
    for a in arrays:
        if type(a) is not np.ndarray or a.dtype != _FLOAT32 or not a.flags.c_contiguous:
            return False
    return True


def _plain(arrays: tuple[Array, ...], dtypes: tuple[np.dtype[Any] | type, ...]) -> bool:
    """Whether every array is a C-contiguous NumPy array of one of `dtypes` (a plain loop, as
    in `_plain_float32`)."""
    for a in arrays:
        if type(a) is not np.ndarray or a.dtype not in dtypes or not a.flags.c_contiguous:
            return False
    return True


# The compiled modules that callers drive themselves, and the dtypes of the arrays they take
_OPERANDS: dict[str, tuple[np.dtype[Any], ...]] = {
    "im2col": (_FLOAT32,),  # convolution's column matrix
    "conv_direct": (_FLOAT32,),  # convolution without a column matrix
    "pool": (_FLOAT32, np.dtype(np.uint8)),  # 2-d max pooling: values and winner codes
    "batch_norm": (_FLOAT32,),  # BatchNormalization's training passes
    # a convolution's backward from its max pooling's winners: values and winner codes
    "conv_pool": (_FLOAT32, np.dtype(np.uint8)),
}


def _fitting(name: str, *arrays: Array) -> ModuleType | None:
    """The compiled module `_<name>` of `_OPERANDS` when it was built and every array is a
    C-contiguous NumPy array of one of its dtypes, else None (the caller runs its NumPy
    composite): the kernels read raw memory, so CuPy arrays, the strict fake device's arrays,
    strided views and other dtypes must not reach them."""
    module: ModuleType | None = getattr(_ext, name)
    return module if module is not None and _plain(arrays, _OPERANDS[name]) else None


im2col = functools.partial(_fitting, "im2col")
conv_direct = functools.partial(_fitting, "conv_direct")
pool = functools.partial(_fitting, "pool")
batch_norm = functools.partial(_fitting, "batch_norm")
conv_pool = functools.partial(_fitting, "conv_pool")


def _adam_arrays(param: Array, grad: Array, m: Array, v: Array) -> bool:
    return _plain_float32(param, grad, m, v) and param.shape == grad.shape == m.shape == v.shape


def adam(
    param: Array, grad: Array, m: Array, v: Array, c1: float, c2: float, eps: float, alpha: float
) -> bool:
    """Keras's Adam step in place (see `engine.optimizers.adam.adam_update`), when the arrays
    suit the kernel; returns whether it ran."""
    kernels = _ext.kernels
    if kernels is None or not _adam_arrays(param, grad, m, v):
        return False
    kernels.adam(param, grad, m, v, c1, c2, eps, alpha)
    return True


def adam_both_cores(
    param: Array, grad: Array, m: Array, v: Array, c1: float, c2: float, eps: float, alpha: float
) -> bool:
    """`adam` in chunks that this thread and the compiled split's worker take in turn; same bits."""
    split = _ext.split
    if split is None or not _adam_arrays(param, grad, m, v):
        return False
    split.adam(param, grad, m, v, c1, c2, eps, alpha)
    return True


_NO_BIAS = np.zeros(1, dtype=np.float32)


def bias_relu(z: Array, bias: Array | None, relu: bool) -> bool:
    """`z += bias`, then relu (NumPy's `maximum(z, 0)`), in place over a 2-D block of rows;
    returns whether it ran."""
    kernels = _ext.kernels
    if kernels is None or z.ndim != 2 or not _plain_float32(z):
        return False
    if bias is not None and (not _plain_float32(bias) or bias.shape != (z.shape[1],)):
        return False
    kernels.bias_relu(z, _NO_BIAS if bias is None else bias, z.shape[1], bias is not None, relu)
    return True


def relu_grad(y: Array, dy: Array, out: Array | None = None) -> Array | None:
    """`dy * (y > 0)` in one pass (NumPy makes a mask, then the product), into `out` when
    given, or None where the kernel does not apply (not plain float32 arrays of one shape)."""
    kernels = _ext.kernels
    if kernels is None or y.shape != dy.shape or not _plain_float32(y, dy):
        return None
    if out is None:
        out = np.empty_like(dy)
    elif out.shape != dy.shape or not _plain_float32(out):
        return None
    kernels.relu_grad(y, dy, out)
    return out


def relu_grad_sum(y: Array, dy: Array, out: Array, total: Array) -> bool:
    """`relu_grad(y, dy, out)` and `out.sum(axis=0, out=total)` in one pass over 2-D rows, bit
    for bit (a relu Dense layer's pre-activation and bias gradients); returns whether it ran
    (plain float32 arrays, rows of two or more values: NumPy sums a column of one pairwise)."""
    kernels = _ext.kernels
    if kernels is None or y.ndim != 2 or y.shape != dy.shape or y.shape[1] < 2:
        return False
    if out.shape != y.shape or total.shape != (y.shape[1],):
        return False
    if not _plain_float32(y, dy, out, total):
        return False
    kernels.relu_grad_sum(y, dy, out, total, y.shape[1])
    return True


def elementwise(*arrays: Array) -> bool:
    """Whether the one-thread element-wise kernels (`relu_grad`, `add_relu`) are built and can
    take these arrays: plain float32 of one shape."""
    return (
        _ext.kernels is not None
        and all(a.shape == arrays[0].shape for a in arrays)
        and _plain_float32(*arrays)
    )


def add_relu(a: Array, b: Array, out: Array) -> bool:
    """`out = maximum(a + b, 0)` in one pass (NumPy makes the sum, then the maximum); returns
    whether it ran (plain float32 arrays of one shape)."""
    kernels = _ext.kernels
    if kernels is None or not a.shape == b.shape == out.shape or not _plain_float32(a, b, out):
        return False
    kernels.add_relu(a, b, out)
    return True


def scatter_rows(ids: Array, rows: Array, out: Array, levels: int) -> bool:
    """`engine.kernels.scatter.host_sum_rows` (out = 0; out[ids[k]] += rows[k]) in one pass,
    bit for bit; returns whether it ran (integer ids, plain float32 rows (n, d) and out)."""
    kernels = _ext.kernels
    if kernels is None or not _plain_float32(rows, out):
        return False
    if type(ids) is not np.ndarray or ids.dtype.kind not in "iu":
        return False
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if rows.ndim != 2 or out.ndim != 2 or rows.shape != (ids.size, out.shape[1]):
        return False
    kernels.scatter_rows(ids, rows, out, out.shape[1], levels)
    return True


def lstm_forward_steps(
    gates: Array, rec: Array, cs: Array, tanh_cs: Array, hs: Array
) -> Callable[[int], None] | None:
    """The compiled LSTM step for each step t of a loop, checked once for the whole loop (a
    check per step cost as much as a tenth of the kernel), or None where it does not apply.

    `gates` (T, 4, N, u) holds the scaled gate pre-activations and `rec` (4, N, u) step t's
    recurrent product; `step(t)` does what `kernels.recurrent.lstm_forward`'s composite does
    after that product: the gates in place, `cs[t + 1]`, `tanh_cs[t]` and `hs[t + 1]`.
    """
    module = _ext.recurrent
    if module is None or not _lstm_forward_arrays(gates, rec, cs, tanh_cs, hs):
        return None
    kernel = module.lstm_step_forward

    def step(t: int) -> None:
        kernel(gates[t], rec, cs[t], cs[t + 1], tanh_cs[t], hs[t + 1])

    return step


def lstm_backward_steps(
    dh: Array, dc: Array, gates: Array, tanh_cs: Array, cs: Array, dxz: Array
) -> Callable[[int, Array], None] | None:
    """One backward step of `kernels.recurrent.lstm_backward` (sigmoid gates, tanh cell, no
    masks) for each t, checked once for the loop, or None where it does not apply.

    `step(t, dh)` writes the gate gradients of step t row-major into `dxz[t]` (N, 4u) and
    replaces `dc` (N, u) by the gradient reaching `cs[t]`. `dh` must be a fresh float32 (N, u)
    array each step, as the loop's own GEMM makes it; no two buffers may overlap.
    """
    module = _ext.recurrent
    if module is None or not _lstm_backward_arrays(dh, dc, gates, tanh_cs, cs, dxz):
        return None
    kernel = module.lstm_cell_backward
    n, u = dh.shape

    def step(t: int, dh: Array) -> None:
        kernel(dh, dc, gates[t], tanh_cs[t], cs[t], dxz[t], n, u)

    return step


def _lstm_forward_arrays(gates: Array, rec: Array, cs: Array, tanh_cs: Array, hs: Array) -> bool:
    if not _plain_float32(gates, rec, cs, tanh_cs, hs) or gates.ndim != 4:
        return False
    steps, four, n, u = gates.shape
    return (
        four == 4
        and rec.shape == (4, n, u)
        and cs.shape == hs.shape == (steps + 1, n, u)
        and tanh_cs.shape == (steps, n, u)
    )


def _lstm_backward_arrays(
    dh: Array, dc: Array, gates: Array, tanh_cs: Array, cs: Array, dxz: Array
) -> bool:
    if not _plain_float32(dh, dc, gates, tanh_cs, cs, dxz) or gates.ndim != 4:
        return False
    steps, four, n, u = gates.shape
    return (
        four == 4
        and dh.shape == dc.shape == (n, u)
        and tanh_cs.shape == (steps, n, u)
        and cs.shape == (steps + 1, n, u)
        and dxz.shape == (steps, n, 4 * u)
    )


def _loop_applies(n: int, u: int) -> bool:
    """Whether the compiled LSTM loop can run: built, NumPy's sgemm bound, and products NumPy
    hands to sgemm as they are (it takes a single row or column to gemv instead)."""
    return _ext.recurrent is not None and n >= 2 and u >= 2 and _ext.split_gemm


def lstm_forward_loop(gates: Array, rk: Array, cs: Array, tanh_cs: Array, hs: Array) -> bool:
    """`kernels.recurrent.lstm_forward`'s loop (sigmoid gates and a tanh cell, no masks) over
    every step in one call, bit for bit, the batch's rows in the halves of
    `kernels.recurrent.row_halves` on this thread and the compiled split's worker; returns
    whether it ran. `rk` (4, u, u) is the scaled recurrent kernel; `hs[0]` and `cs[0]` hold
    the initial states, and `gates` every step's input projections."""
    if not _plain_float32(gates, rk, cs, tanh_cs, hs) or gates.ndim != 4:
        return False
    steps, four, n, u = gates.shape
    shapes_match = (
        four == 4
        and rk.shape == (4, u, u)
        and cs.shape == hs.shape == (steps + 1, n, u)
        and tanh_cs.shape == (steps, n, u)
    )
    if not shapes_match or not _loop_applies(n, u):
        return False
    module = _ext.recurrent
    assert module is not None
    return bool(module.lstm_forward(gates, rk, hs, cs, tanh_cs, steps, n, u))


def lstm_backward_loop(
    dh: Array,
    dc: Array,
    gates: Array,
    tanh_cs: Array,
    cs: Array,
    rkt: Array,
    dxz: Array,
    dys: Array | None,
    at: Array,
    hook: Callable[[int], None] | None,
) -> bool:
    """`kernels.recurrent.lstm_backward`'s loop (sigmoid gates, tanh cell, no masks) over every
    step in one call, bit for bit; returns whether it ran.

    `dh` (N, u) starts as the gradient reaching the last state and ends as the initial
    state's, `dc` starts at zero; `rkt` (4u, u) is the recurrent kernel as the loop's product
    takes it. `hook(t)` runs after step t wherever `at` (T,) marks it.
    """
    if not _lstm_backward_arrays(dh, dc, gates, tanh_cs, cs, dxz) or not _plain_float32(rkt):
        return False
    steps, _, n, u = gates.shape
    if rkt.shape != (4 * u, u) or not _loop_applies(n, u) or not _plain((at,), (np.bool_,)):
        return False
    if dys is not None and (not _plain_float32(dys) or dys.shape != (steps, n, u)):
        return False
    module = _ext.recurrent
    assert module is not None
    return bool(
        module.lstm_backward(dh, dc, gates, tanh_cs, cs, rkt, dxz, dys, at, hook, steps, n, u)
    )


def lstm_project(
    xt: Array, kernel: Array, bias: Array | None, scale: Array | None, out: Array
) -> bool:
    """`out = (xt[:, None] @ kernel + bias) * scale` for a chunk of the LSTM's input
    projections, bit for bit, the bias and scale taken on each (step, gate) block right after
    its product; returns whether it ran. `xt` (C, N, F), `kernel` (4, F, u), `bias` (4, 1, u),
    `scale` (4, 1, 1), `out` (C, 4, N, u), all plain float32; N and u of at least 2, as NumPy
    takes a single row or column to gemv."""
    if not _plain_float32(xt, kernel, out) or xt.ndim != 3 or kernel.ndim != 3:
        return False
    chunks, n, f = xt.shape
    u = kernel.shape[-1]
    if kernel.shape != (4, f, u) or out.shape != (chunks, 4, n, u) or not _loop_applies(n, u):
        return False
    if bias is not None and (not _plain_float32(bias) or bias.shape != (4, 1, u)):
        return False
    if scale is not None and (not _plain_float32(scale) or scale.shape != (4, 1, 1)):
        return False
    module = _ext.recurrent
    assert module is not None
    return bool(module.lstm_project(xt, kernel, bias, scale, out, chunks, n, f, u))


def softmax_rows(scores: Array, mask: Array | None) -> bool:
    """`engine.kernels.softmax.masked_softmax` in place on `scores` (rows over the last axis),
    bit for bit; returns whether it ran (plain float32 scores, a boolean mask of their shape)."""
    kernels = _ext.kernels
    if kernels is None or scores.ndim == 0 or not _plain_float32(scores):
        return False
    if mask is not None:
        plain = type(mask) is np.ndarray and mask.dtype == np.bool_ and mask.flags.c_contiguous
        if not plain or mask.shape != scores.shape:
            return False
    flags = _NO_MASK if mask is None else mask.view(np.uint8)
    kernels.softmax_rows(scores, flags, scores.shape[-1], mask is not None)
    return True


_NO_MASK = np.zeros(1, dtype=np.uint8)


def softmax_grad_rows(dprobs: Array, probs: Array) -> bool:
    """`engine.kernels.softmax.softmax_backward` in place on `dprobs`, bit for bit; returns
    whether it ran."""
    kernels = _ext.kernels
    if kernels is None or dprobs.ndim == 0 or not _plain_float32(dprobs, probs):
        return False
    if dprobs.shape != probs.shape:
        return False
    kernels.softmax_grad_rows(dprobs, probs, dprobs.shape[-1])
    return True


_LABELS = (np.dtype(np.int32), np.dtype(np.int64))


def sparse_xent_rows(
    probs: Array, labels: Array, lo: float, hi: float, upstream: float
) -> tuple[Array, Array] | None:
    """SparseCategoricalCrossentropy's clipped label probabilities `qc` (one per row of 2-D
    `probs`) and its gradient with respect to the softmax logits, `(qc, grad)`, bit for bit
    with its composite; None where the kernel does not apply (not plain float32 rows, labels
    not one int32 or int64 per row, a label out of range)."""
    kernels = _ext.kernels
    if kernels is None or probs.ndim != 2 or probs.shape[1] < 1 or not _plain_float32(probs):
        return None
    if type(labels) is not np.ndarray or labels.dtype not in _LABELS:
        return None
    if labels.shape != probs.shape[:1] or not labels.flags.c_contiguous:
        return None
    grad = np.empty_like(probs)
    qc = np.empty(len(probs), dtype=np.float32)
    if not kernels.sparse_xent_rows(probs, labels, grad, qc, probs.shape[1], lo, hi, upstream):
        return None
    return qc, grad


def _row_weight(p: Array | None, n: int) -> bool:
    return p is None or (_plain_float32(p) and p.shape == (n,))


def layer_norm_rows(
    x: Array, gamma: Array | None, beta: Array | None, eps: float, y: Array, xhat: Array, inv: Array
) -> bool:
    """LayerNormalization's forward composite over the last axis into `y`, `xhat` and `inv`
    (one per row), bit for bit; returns whether it ran."""
    kernels = _ext.kernels
    if kernels is None or x.ndim == 0 or not _plain_float32(x, y, xhat, inv):
        return False
    n = x.shape[-1]
    if not (_row_weight(gamma, n) and _row_weight(beta, n)):
        return False
    if not (y.shape == xhat.shape == x.shape and inv.size * n == x.size):
        return False
    g = _NO_BIAS if gamma is None else gamma
    b = _NO_BIAS if beta is None else beta
    kernels.layer_norm_rows(x, g, b, y, xhat, inv, n, gamma is not None, beta is not None, eps)
    return True


def layer_norm_grad_rows(
    g: Array,
    xhat: Array,
    inv: Array,
    gamma: Array | None,
    dx: Array,
    dgamma: Array | None,
    dbeta: Array | None,
) -> bool:
    """LayerNormalization's backward composite over the last axis: the input's gradient into
    `dx`, gamma's and beta's into `dgamma` and `dbeta` where given, bit for bit; returns
    whether it ran (nothing is written when it does not)."""
    kernels = _ext.kernels
    if kernels is None or g.ndim == 0 or not _plain_float32(g, xhat, inv, dx):
        return False
    n = g.shape[-1]
    # NumPy sums gamma's and beta's gradients row after row only when rows have 2 or more
    # values; a column of one is summed pairwise
    weights_ok = all(_row_weight(p, n) for p in (gamma, dgamma, dbeta))
    shapes_ok = g.shape == xhat.shape == dx.shape and inv.size * n == g.size
    if n < 2 or not weights_ok or not shapes_ok:
        return False
    kernels.layer_norm_grad_rows(
        g,
        xhat,
        inv,
        _NO_BIAS if gamma is None else gamma,
        dx,
        _NO_BIAS if dgamma is None else dgamma,
        _NO_BIAS if dbeta is None else dbeta,
        n,
        gamma is not None,
        dgamma is not None,
        dbeta is not None,
    )
    return True
