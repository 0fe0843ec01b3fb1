"""A few training steps here and in PyTorch, from the same weights in the same batch order."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from engine import Input, Model, layers
from engine.layers.base import clear_session

torch = pytest.importorskip("torch")

EPOCHS = 3
BATCH = 8


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(32, 4)).astype("float32")
    y = (x[:, :1] * x[:, 1:2] > 0).astype("float32")
    return x, y


def _engine_model(activation: str) -> Model:
    clear_session()
    inputs = Input(shape=(4,))
    h = layers.Dense(8, activation="tanh")(inputs)
    h = layers.Dense(6, activation="relu")(h)
    return Model(inputs=inputs, outputs=layers.Dense(1, activation=activation)(h))


def _torch_model(weights: list[np.ndarray], activation: str) -> Any:
    linears = [torch.nn.Linear(w.shape[0], w.shape[1]) for w in weights[0::2]]
    with torch.no_grad():
        for lin, kernel, bias in zip(linears, weights[0::2], weights[1::2], strict=True):
            lin.weight.copy_(torch.from_numpy(kernel.T.copy()))
            lin.bias.copy_(torch.from_numpy(bias))
    final = torch.nn.Sigmoid() if activation == "sigmoid" else torch.nn.Identity()
    return torch.nn.Sequential(
        linears[0], torch.nn.Tanh(), linears[1], torch.nn.ReLU(), linears[2], final
    )


class KerasAdam(torch.optim.Optimizer):  # type: ignore[misc]
    """torch's Adam with Keras's epsilon placement: eps is added to sqrt(v) before the bias
    correction is folded into the rate, so both sides follow the same formula exactly."""

    def __init__(
        self, params: Any, lr: float, beta_1: float = 0.9, beta_2: float = 0.999, eps: float = 1e-7
    ) -> None:
        super().__init__(params, {"lr": lr, "b1": beta_1, "b2": beta_2, "eps": eps})

    @torch.no_grad()  # type: ignore[untyped-decorator]
    def step(self, closure: Any = None) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                if not state:
                    state["t"] = 0
                    state["m"] = torch.zeros_like(p)
                    state["v"] = torch.zeros_like(p)
                state["t"] += 1
                t, b1, b2 = state["t"], group["b1"], group["b2"]
                state["m"].mul_(b1).add_(p.grad, alpha=1 - b1)
                state["v"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                rate = group["lr"] * (1 - b2**t) ** 0.5 / (1 - b1**t)
                p.sub_(rate * state["m"] / (state["v"].sqrt() + group["eps"]))


OPTIMIZERS = {
    "sgd": (
        {"type": "sgd", "learning_rate": 0.1},
        lambda params: torch.optim.SGD(params, lr=0.1),
    ),
    "sgd_momentum": (
        {"type": "sgd", "learning_rate": 0.05, "momentum": 0.9},
        lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9),
    ),
    "adam": (
        {"type": "adam", "learning_rate": 0.01},
        lambda params: KerasAdam(params, lr=0.01),
    ),
}

LOSSES = {
    "mse": ("linear", lambda: torch.nn.MSELoss()),
    "binary_crossentropy": ("sigmoid", lambda: torch.nn.BCELoss()),
}


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_training_matches_torch(optimizer: str, loss: str) -> None:
    activation, make_loss = LOSSES[loss]
    engine_opt, make_opt = OPTIMIZERS[optimizer]
    model = _engine_model(activation)
    net = _torch_model(model.get_weights(), activation)
    model.compile(optimizer=engine_opt, loss=loss)
    x, y = _data()
    history = model.fit(x, y, epochs=EPOCHS, batch_size=BATCH, shuffle=False, verbose=0)

    opt = make_opt(net.parameters())
    criterion = make_loss()
    torch_losses = []
    for _ in range(EPOCHS):
        total = 0.0
        for start in range(0, len(x), BATCH):
            xb = torch.from_numpy(x[start : start + BATCH])
            yb = torch.from_numpy(y[start : start + BATCH])
            opt.zero_grad()
            value = criterion(net(xb), yb)
            value.backward()
            opt.step()
            total += float(value.detach()) * len(xb)
        torch_losses.append(total / len(x))

    np.testing.assert_allclose(history.history["loss"], torch_losses, rtol=2e-4)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    expected = []
    for lin in linears:
        expected += [lin.weight.detach().numpy().T, lin.bias.detach().numpy()]
    for got, want in zip(model.get_weights(), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)
