"""exp for the LSTM's gates and attention's softmax, defined by its float32 operations so a
compiled loop can match it.

NumPy's exp is a library routine whose last bits only NumPy knows, so a compiled LSTM step
had to call it (about a third of the recurrent loop's time on W4). This exp is written as
IEEE-exact float32 operations instead: `engine/native/_kernels.c` does the same operations in
the same order, vectorized, so the two paths agree bit for bit (`tests/engine/test_native.py`).

The method is the classic one (as in Cephes' expf): clamp x to [LO, HI], take the nearest
integer k to x / ln 2 (adding and subtracting 1.5 * 2^23 rounds to it), reduce r = x - k ln 2
in two parts, evaluate a degree-7 polynomial in r and scale by 2^k, built from k's bits.
Measured error: at most 0.91 ulp on N(0, 9) inputs, against 2.0 ulp for np.exp. The clamp
keeps 2^k a normal number: exp(HI) = 1.65e38 stands in for overflow, which leaves
1 / (1 + e) at 6e-39 instead of 0, and exp(LO) = 1.18e-38 for underflow; NaN stays NaN.

Arrays that are not host float32 NumPy arrays take `xp.exp`: float64 has no compiled path to
match, CuPy's results never matched the CPU's bits anyway, and on a GPU one kernel beats a
chain of small ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.backend import backend_of

Array = Any

LO = np.float32(float.fromhex("-0x1.5d58a0p+6"))  # -87.3365478515625
HI = np.float32(88.0)
LOG2E = np.float32(float.fromhex("0x1.715476p+0"))
MAGIC = np.float32(12582912.0)  # 1.5 * 2^23: x + MAGIC - MAGIC rounds x to an integer
LN2_HI = np.float32(float.fromhex("0x1.630000p-1"))
LN2_LO = np.float32(float.fromhex("-0x1.bd0106p-13"))
POLY = tuple(
    np.float32(float.fromhex(h))
    for h in ("0x1.a0d2cep-13", "0x1.6e879cp-10", "0x1.111210p-7", "0x1.555382p-5")
) + (np.float32(float.fromhex("0x1.555554p-3")), np.float32(0.5))
MAGIC_BITS = np.uint32(0x4B400000)


def gate_exp(x: Array) -> None:
    """x = exp(x) in place, by the operations above (see the module docstring)."""
    if not isinstance(x, np.ndarray) or x.dtype != np.float32:
        backend_of(x).xp.exp(x, out=x)
        return
    xp = backend_of(x).xp
    xp.maximum(x, LO, out=x)
    xp.minimum(x, HI, out=x)
    t = x * LOG2E
    t += MAGIC
    k = t - MAGIC
    r = k * LN2_HI
    xp.subtract(x, r, out=r)
    tmp = k * LN2_LO
    r -= tmp
    y = POLY[0] * r
    y += POLY[1]
    for c in POLY[2:]:
        y *= r
        y += c
    xp.multiply(r, r, out=tmp)
    y *= tmp
    y += r
    y += np.float32(1.0)
    bits = t.view(np.uint32)
    bits -= MAGIC_BITS
    bits += np.uint32(127)
    bits <<= np.uint32(23)
    xp.multiply(y, bits.view(np.float32), out=x)


def tanh_by_exp(c: Array, out: Array) -> None:
    """out = tanh(c) as 2 / (1 + exp(-2c)) - 1, with `gate_exp` (the LSTM's cell output)."""
    xp = backend_of(c).xp
    xp.multiply(c, np.float32(-2.0), out=out)
    gate_exp(out)
    out += np.float32(1.0)
    xp.reciprocal(out, out=out)
    out *= np.float32(2.0)
    out -= np.float32(1.0)
