from typing import Any

def stats(x: Any, mean: Any, var: Any, c: int, channels: tuple[int, int], /) -> None: ...
def normalize(
    x: Any, y: Any, mean: Any, inv: Any, gamma: Any, beta: Any, c: int, relu: bool, /
) -> None: ...
def backward_sums(
    g: Any,
    mask: Any | None,
    x: Any,
    mean: Any,
    inv: Any,
    gamma: Any,
    sums: Any,
    c: int,
    channels: tuple[int, int],
    /,
) -> None: ...
def backward_dx(
    g: Any,
    mask: Any | None,
    x: Any,
    dx: Any,
    mean: Any,
    gamma: Any,
    mean_d: Any,
    mean_dx: Any,
    inv: Any,
    c: int,
    /,
) -> None: ...
