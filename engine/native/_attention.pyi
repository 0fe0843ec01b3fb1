from typing import Any

def forward(
    q: Any,
    k: Any,
    v: Any,
    mask: Any,
    keep: Any,
    probs: Any,
    out: Any,
    scale: float,
    split: bool,
    /,
) -> bool: ...
def backward(
    q: Any,
    k: Any,
    v: Any,
    keep: Any,
    probs: Any,
    dout: Any,
    dq: Any,
    dk: Any,
    dv: Any,
    scale: float,
    split: bool,
    /,
) -> bool: ...
