from typing import Any

def max_pool(
    x: Any,
    y: Any,
    codes: Any,
    shape: tuple[int, int, int, int],
    pool: tuple[int, int],
    strides: tuple[int, int],
    out: tuple[int, int],
    /,
) -> None: ...
def max_unpool(
    dx: Any,
    dy: Any,
    codes: Any,
    shape: tuple[int, int, int, int],
    pool: tuple[int, int],
    strides: tuple[int, int],
    out: tuple[int, int],
    /,
) -> None: ...
