from typing import Any

def forward(
    x: Any,
    w: Any,
    bias: Any,
    y: Any,
    shape: tuple[int, int, int, int],
    kernel: tuple[int, int],
    strides: tuple[int, int],
    pads: tuple[int, int],
    out: tuple[int, int],
    cout: int,
    layout: tuple[int, int, int, int] = ...,
    /,
) -> None: ...
def weight_grad(
    x: Any,
    dy: Any,
    dw: Any,
    db: Any,
    shape: tuple[int, int, int, int],
    kernel: tuple[int, int],
    strides: tuple[int, int],
    pads: tuple[int, int],
    out: tuple[int, int],
    cout: int,
    /,
) -> None: ...
