from typing import Any

def adam(
    param: Any, grad: Any, m: Any, v: Any, c1: float, c2: float, eps: float, alpha: float, /
) -> None: ...
