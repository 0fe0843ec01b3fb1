"""dX of a strided 2-d convolution as one stride-1 convolution of dy per phase of the input.

With strides (sh, sw) the input positions split into sh * sw phases (row mod sh, column mod sw).
The kernel taps that reach one phase are those a with (a - phase - pad) divisible by the
stride, and through them an input position 2m + phase sees the outputs m + c for a few small
offsets c: a stride-1 correlation of dy with those taps (the sub-kernel, channel axes swapped).
So each phase is one call of the direct kernel on dy, whose result is written into dx with a
stride: every dx element is written once, where col2im ran one skinny product per kernel
offset (K = Cout, N = Cin) and added each into a zeroed padded buffer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.kernels import conv_direct
from engine.kernels.conv_chunks import Geometry

Array = Any


@dataclass(frozen=True)
class Phase:
    """One phase of dx: where it starts, its sub-kernel (th, tw, Cout, Cin) and the geometry of
    its stride-1 convolution of dy."""

    start: tuple[int, int]
    kernel: Array | None  # None: no tap reaches this phase (a kernel smaller than the stride)
    geometry: Geometry


def _taps(k: int, s: int, lo: int, phase: int) -> tuple[list[int], int]:
    """The taps of one axis reaching `phase`, in the order the correlation reads them (output
    offsets c = (phase + lo - a) / s increasing), and the correlation's front padding."""
    taps = sorted((a for a in range(k) if (a - phase - lo) % s == 0), reverse=True)
    offsets = [(phase + lo - a) // s for a in taps]
    return taps, -min(offsets) if offsets else 0


def plan(g: Geometry, w: Array) -> list[Phase] | None:
    """The phases of dx for a strided 2-d convolution with kernel w (kh, kw, Cin, Cout), or None
    where the direct kernel does not take them all (the caller runs col2im)."""
    cin, cout = w.shape[-2:]
    strided = len(g.kernel) == 2 and any(s > 1 for s in g.strides)
    if not strided or any(d != 1 for d in g.dilation) or type(w) is not np.ndarray:
        return None
    phases = []
    for py in range(g.strides[0]):
        for px in range(g.strides[1]):
            (rows, lo_r), (cols, lo_c) = (
                _taps(k, s, lo, p)
                for k, s, (lo, _), p in zip(g.kernel, g.strides, g.pads, (py, px), strict=True)
            )
            phase_at = zip(g.spatial, (py, px), g.strides, strict=True)
            size = tuple(math.ceil((n - p) / s) for n, p, s in phase_at)
            if min(size) <= 0:
                return None
            taps = (max(len(rows), 1), max(len(cols), 1))
            geometry = Geometry(taps, (1, 1), (1, 1), ((lo_r, 0), (lo_c, 0)), g.out, size)
            if not rows or not cols:
                phases.append(Phase((py, px), None, geometry))
                continue
            if not conv_direct.forward_wins(geometry, cout, cin):
                return None
            sub = np.ascontiguousarray(w[rows][:, cols].swapaxes(-1, -2))
            phases.append(Phase((py, px), sub, geometry))
    return phases


def input_grad(phases: list[Phase], dy: Array, strides: tuple[int, ...], dx: Array) -> bool:
    """dx (n, h, w, Cin) from dy (n, oh, ow, Cout), phase by phase, each written by the kernel
    straight into its strided place in dx; returns whether the direct kernel took every phase
    (it declines arrays that are not plain float32). Phases no tap reaches are zero: when
    there are some, dx is zeroed whole first, one contiguous fill instead of strided ones."""
    (sh, sw) = strides
    if any(phase.kernel is None for phase in phases):
        dx.fill(0)
    for phase in phases:
        if phase.kernel is None:
            continue
        geometry = phase.geometry
        if not conv_direct.forward_into(dy, phase.kernel, geometry, dx, phase.start, (sh, sw)):
            return False
    return True
