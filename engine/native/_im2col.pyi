from typing import Any

def im2col(
    x: Any,
    cols: Any,
    shape: tuple[int, int, int, int],
    kernel: tuple[int, int],
    strides: tuple[int, int],
    dilation: tuple[int, int],
    pads: tuple[int, int],
    out: tuple[int, int],
    /,
) -> None: ...
