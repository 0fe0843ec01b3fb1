"""The contenders: each builds one workload and returns a callable that runs one epoch.

modelspec runs the spec through `engine.from_spec`; PyTorch runs the same architecture in eager
mode with tensors sliced directly (no DataLoader); Keras 3 runs `model.fit` on the JAX backend.
Epoch functions shuffle as each library does by default.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.workloads import Workload

Epoch = Callable[[], None]


def modelspec_epoch(w: Workload, x: np.ndarray, y: np.ndarray, threads: int) -> Epoch:
    import engine

    model = engine.from_spec(w.spec())
    if w.mode == "predict":
        return lambda: model.predict(x, batch_size=w.batch_size, verbose=0)
    return lambda: model.fit(x, y, epochs=1, batch_size=w.batch_size, verbose=0)


def keras_epoch(w: Workload, x: np.ndarray, y: np.ndarray, threads: int) -> Epoch:
    import os

    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    spec = w.spec()
    if w.key in _KERAS_FUNCTIONAL:
        model = _KERAS_FUNCTIONAL[w.key](keras)
        model.compile(optimizer=keras.optimizers.Adam(), loss=spec["compile"]["loss"])
        return lambda: model.fit(x, y, epochs=1, batch_size=w.batch_size, verbose=0)
    entries = spec["model"]["layers"]
    first = entries[0]
    layers: list[Any] = [
        keras.Input(shape=tuple(first["shape"]), dtype=first.get("dtype", "float32"))
    ]
    for entry in entries[1:]:
        args = {k: v for k, v in entry.items() if k != "type"}
        layers.append(getattr(keras.layers, entry["type"])(**args))
    model = keras.Sequential(layers)
    opt = spec["compile"]["optimizer"]
    optimizer = keras.optimizers.Adam(
        **({} if isinstance(opt, str) else {"learning_rate": opt["learning_rate"]})
    )
    model.compile(optimizer=optimizer, loss=spec["compile"]["loss"])
    if w.mode == "predict":
        return lambda: model.predict(x, batch_size=w.batch_size, verbose=0)
    return lambda: model.fit(x, y, epochs=1, batch_size=w.batch_size, verbose=0)


def _keras_encoder(keras: Any) -> Any:
    """W6 in Keras: its MultiHeadAttention, and Keras-Hub's PositionEmbedding written out (a
    learned table broadcast over the batch) so the peer needs no keras_hub."""

    class PositionEmbedding(keras.layers.Layer):
        def build(self, input_shape: Any) -> None:
            self.table = self.add_weight(shape=tuple(input_shape[1:]), name="embeddings")

        def call(self, inputs: Any) -> Any:
            return keras.ops.broadcast_to(self.table, keras.ops.shape(inputs))

    L = keras.layers
    tokens = keras.Input(shape=(128,), dtype="int32")
    embed = L.Embedding(1000, 128)(tokens)
    x = L.Add()([embed, PositionEmbedding()(embed)])
    for _ in range(2):
        x = L.LayerNormalization(epsilon=1e-6)(L.Add()([x, L.MultiHeadAttention(4, 32)(x, x)]))
        ff = L.Dense(128)(L.Dense(256, activation="relu")(x))
        x = L.LayerNormalization(epsilon=1e-6)(L.Add()([x, ff]))
    out = L.Dense(1, activation="sigmoid")(L.GlobalAveragePooling1D()(x))
    return keras.Model(tokens, out)


def _keras_resnet(keras: Any) -> Any:
    """W7 in Keras: the CIFAR ResNet of resnet_cifar.yaml, Keras's default initializers."""
    L = keras.layers

    def conv_bn(x: Any, filters: int, kernel: int, strides: int = 1) -> Any:
        return L.BatchNormalization()(L.Conv2D(filters, kernel, strides, padding="same")(x))

    image = keras.Input(shape=(32, 32, 3))
    x = L.Activation("relu")(conv_bn(image, 16, 3))
    for filters, strides in RESNET_BLOCKS:
        y = conv_bn(L.Activation("relu")(conv_bn(x, filters, 3, strides)), filters, 3)
        shortcut = x if strides == 1 else conv_bn(x, filters, 1, strides)
        x = L.Activation("relu")(L.Add()([shortcut, y]))
    out = L.Dense(10, activation="softmax")(L.GlobalAveragePooling2D()(x))
    return keras.Model(image, out)


_KERAS_FUNCTIONAL = {"W6": _keras_encoder, "W7": _keras_resnet}
# (filters, strides) of W7's six residual blocks
RESNET_BLOCKS = [(16, 1), (16, 1), (32, 2), (32, 1), (64, 2), (64, 1)]


def _torch_resnet() -> tuple[Any, Any]:
    """W7 in PyTorch eager, initialized as Keras does (Glorot-uniform kernels, zero biases) and
    with Keras's BatchNormalization defaults (momentum 0.99 is PyTorch's 0.01, epsilon 1e-3)."""
    import torch
    from torch import nn

    def conv_bn(cin: int, cout: int, kernel: int, strides: int = 1) -> nn.Sequential:
        conv = nn.Conv2d(cin, cout, kernel, strides, padding=kernel // 2)
        return nn.Sequential(conv, nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01))

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, strides: int) -> None:
            super().__init__()
            self.first = conv_bn(cin, cout, 3, strides)
            self.second = conv_bn(cout, cout, 3)
            self.shortcut = conv_bn(cin, cout, 1, strides) if strides > 1 else nn.Identity()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.second(torch.relu(self.first(x)))
            return torch.relu(self.shortcut(x) + y)

    blocks, cin = [], 16
    for filters, strides in RESNET_BLOCKS:
        blocks.append(Block(cin, filters, strides))
        cin = filters
    net = nn.Sequential(
        conv_bn(3, 16, 3),
        nn.ReLU(),
        *blocks,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return net, nn.CrossEntropyLoss()


def _torch_encoder() -> tuple[Any, Any]:
    """W6 in PyTorch eager: the same encoder (post-norm blocks, learned positions, mean pool)."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attention = nn.MultiheadAttention(128, 4, batch_first=True)
            self.norm_a = nn.LayerNorm(128, eps=1e-6)
            self.feed = nn.Sequential(nn.Linear(128, 256), nn.ReLU(), nn.Linear(256, 128))
            self.norm_b = nn.LayerNorm(128, eps=1e-6)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.norm_a(x + self.attention(x, x, x, need_weights=False)[0])
            return self.norm_b(x + self.feed(x))

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(1000, 128)
            self.positions = nn.Parameter(torch.zeros(128, 128).uniform_(-0.1, 0.1))
            self.blocks = nn.Sequential(Block(), Block())
            self.out = nn.Linear(128, 1)

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            x = self.blocks(self.embed(tokens) + self.positions)
            return self.out(x.mean(dim=1))

    return Encoder(), nn.BCEWithLogitsLoss()


def _torch_model(key: str) -> tuple[Any, Any]:
    import torch
    from torch import nn

    if key == "W1":
        net = nn.Sequential(
            nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 1)
        )
        return net, nn.BCEWithLogitsLoss()
    if key in ("W2", "W5"):
        net = nn.Sequential(
            nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10)
        )
        return net, nn.CrossEntropyLoss()
    if key == "W3":
        net = nn.Sequential(
            nn.Conv2d(1, 32, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(1600, 10),
        )
        return net, nn.CrossEntropyLoss()

    if key == "W6":
        return _torch_encoder()
    if key == "W7":
        return _torch_resnet()

    class LstmText(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(10000, 64)
            self.lstm = nn.LSTM(64, 64, batch_first=True)
            self.out = nn.Linear(64, 1)

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            _, (h, _) = self.lstm(self.embed(tokens))
            return self.out(h[-1])

    return LstmText(), nn.BCEWithLogitsLoss()


def torch_epoch(w: Workload, x: np.ndarray, y: np.ndarray, threads: int) -> Epoch:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net, loss_fn = _torch_model(w.key)
    xt = torch.from_numpy(np.transpose(x, (0, 3, 1, 2)).copy() if w.key in ("W3", "W7") else x)
    if w.key in ("W4", "W6"):
        xt = xt.long()
    yt = torch.from_numpy(y.astype(np.int64) if y.dtype.kind == "i" else y)
    bs = w.batch_size
    if w.mode == "predict":
        net.eval()

        def predict() -> None:
            with torch.inference_mode():
                for i in range(0, len(xt), bs):
                    torch.softmax(net(xt[i : i + bs]), dim=1)

        return predict
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    net.train()

    def fit() -> None:
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), bs):
            idx = perm[i : i + bs]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()

    return fit


CONTENDERS: dict[str, Callable[[Workload, np.ndarray, np.ndarray, int], Epoch]] = {
    "modelspec": modelspec_epoch,
    "torch": torch_epoch,
    "keras": keras_epoch,
}
