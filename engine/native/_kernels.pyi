from typing import Any

def adam(
    param: Any, grad: Any, m: Any, v: Any, c1: float, c2: float, eps: float, alpha: float, /
) -> None: ...
def relu_grad(y: Any, dy: Any, out: Any, /) -> None: ...
def relu_grad_sum(y: Any, dy: Any, out: Any, sum: Any, cols: int, /) -> None: ...
def add_relu(a: Any, b: Any, out: Any, /) -> None: ...
def bias_relu(z: Any, bias: Any, cols: int, has_bias: bool, relu: bool, /) -> None: ...
def scatter_rows(ids: Any, rows: Any, out: Any, d: int, levels: int, /) -> None: ...
def softmax_rows(scores: Any, mask: Any, n: int, has_mask: bool, /) -> None: ...
def softmax_grad_rows(dp: Any, p: Any, n: int, /) -> None: ...
def sparse_xent_rows(
    probs: Any, labels: Any, grad: Any, qc: Any, n: int, lo: float, hi: float, up: float, /
) -> bool: ...
def layer_norm_rows(
    x: Any,
    gamma: Any,
    beta: Any,
    y: Any,
    xhat: Any,
    inv: Any,
    n: int,
    has_gamma: bool,
    has_beta: bool,
    eps: float,
    /,
) -> None: ...
def layer_norm_grad_rows(
    g: Any,
    xhat: Any,
    inv: Any,
    gamma: Any,
    dx: Any,
    dgamma: Any,
    dbeta: Any,
    n: int,
    has_gamma: bool,
    want_dgamma: bool,
    want_dbeta: bool,
    /,
) -> None: ...
