"""The integer arithmetic of convolution and pooling windows: output lengths, padding, tuples.

Shared by the shape rules of the conv and pooling layers (which `modelspec lint` runs) and the
convolution kernels (which training runs), and kept apart from the kernels so that checking a
spec loads no NumPy. Padding follows Keras/TensorFlow: `same` pads
max((ceil(n/s)-1)*s + (k-1)*d + 1 - n, 0) with the extra element at the end; `causal` (1-d)
pads (k-1)*d on the left.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

IntOrSeq = int | Sequence[int]
PADDINGS = ("valid", "same", "causal")


def conv_output_length(
    length: int | None, kernel: int, stride: int, padding: str, dilation: int = 1
) -> int | None:
    """Output length of one spatial axis as Keras computes it (None stays None).

    The result is zero or negative when a `valid` kernel does not fit; callers report that.
    """
    if length is None:
        return None
    mode = padding.lower()
    if mode not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}; got {padding!r}")
    if mode == "valid":
        span = (kernel - 1) * dilation + 1
        return (length - span) // stride + 1
    return (length + stride - 1) // stride


def pad_amounts(
    length: int, kernel: int, stride: int, padding: str, dilation: int = 1
) -> tuple[int, int]:
    """(before, after) padding of one axis for `valid`, `same` or `causal`."""
    mode = padding.lower()
    span = (kernel - 1) * dilation + 1
    if mode == "same":
        total = max((math.ceil(length / stride) - 1) * stride + span - length, 0)
        return total // 2, total - total // 2
    if mode == "causal":
        return span - 1, 0
    if mode == "valid":
        return 0, 0
    raise ValueError(f"padding must be one of {PADDINGS}; got {padding!r}")


def as_tuple(value: IntOrSeq, nd: int, name: str) -> tuple[int, ...]:
    """Expand an int to an nd-tuple, checking a sequence has nd entries."""
    if isinstance(value, int):
        return (value,) * nd
    out = tuple(int(v) for v in value)
    if len(out) != nd:
        raise ValueError(f"{name} needs {nd} values; got {value!r}")
    return out
