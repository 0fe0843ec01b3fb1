from typing import Any

def lstm_step_forward(
    gates: Any, rec: Any, c_prev: Any, c: Any, tanh_c: Any, h: Any, /
) -> None: ...
def lstm_cell_backward(
    dh: Any, dc: Any, gates: Any, tanh_c: Any, c_prev: Any, dxz: Any, n: int, u: int, /
) -> None: ...
def lstm_forward(
    xz: Any, rk: Any, hs: Any, cs: Any, tanh_cs: Any, steps: int, n: int, u: int, /
) -> bool: ...
def own_product_serves(m: int, n: int, k: int, /) -> bool: ...
def lstm_backward(
    dh: Any,
    dc: Any,
    gates: Any,
    tanh_cs: Any,
    cs: Any,
    rkt: Any,
    dxz: Any,
    dys: Any,
    at: Any,
    hook: Any,
    steps: int,
    n: int,
    u: int,
    /,
) -> bool: ...
