"""The seven benchmark workloads: their specs, sizes and seeded synthetic float32 data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).parent / "workloads"


@dataclass(frozen=True)
class Workload:
    """One row of the benchmark: what is trained (or predicted), on how much data."""

    key: str
    spec_file: str
    samples: int
    quick_samples: int
    batch_size: int
    mode: str  # "fit" or "predict"
    make_data: Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]]
    macs_per_sample: int

    def spec(self) -> dict:
        return yaml.safe_load((HERE / self.spec_file).read_text())


def _tabular(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((n, 4)).astype(np.float32)
    w = np.array([1.0, -2.0, 0.5, 1.5], dtype=np.float32)
    return x, (x @ w > 0).astype(np.float32).reshape(-1, 1)


def _teacher_labels(x: np.ndarray, rng: np.random.Generator, classes: int) -> np.ndarray:
    """Labels from a random linear teacher, so the data is learnable but synthetic."""
    flat = x.reshape(len(x), -1)
    teacher = rng.standard_normal((flat.shape[1], classes)).astype(np.float32)
    return np.argmax(flat @ teacher, axis=1).astype(np.int32)


def _mnist_flat(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.random((n, 784), dtype=np.float32)
    return x, _teacher_labels(x, rng, 10)


def _mnist_images(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    return x, _teacher_labels(x, rng, 10)


def _cifar_images(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.random((n, 32, 32, 3), dtype=np.float32)
    return x, _teacher_labels(x, rng, 10)


def _tokens(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.integers(1, 10000, size=(n, 100), dtype=np.int32)
    y = (x[:, :10].mean(axis=1) > 5000).astype(np.float32).reshape(-1, 1)
    return x, y


def _tokens_w6(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.integers(1, 1000, size=(n, 128), dtype=np.int32)
    y = (x[:, :10].mean(axis=1) > 500).astype(np.float32).reshape(-1, 1)
    return x, y


_MLP_MACS = 784 * 512 + 512 * 256 + 256 * 10
# conv1: 26*26*32 outputs of 3*3*1 MACs; conv2: 11*11*64 outputs of 3*3*32; dense: 1600*10
_CNN_MACS = 26 * 26 * 32 * 9 + 11 * 11 * 64 * 9 * 32 + 1600 * 10
# per step: input GEMM 64*256 + recurrent 64*256, over 100 steps; dense 64
_LSTM_MACS = 100 * (64 * 256 * 2) + 64
# per block: 4 projections 128x128 and 2 feed-forward products 128x256 per position, scores
# and weighted values 128x128 per position and head dim; 2 blocks; dense 128
_ENCODER_MACS = 2 * (128 * (4 * 128 * 128 + 2 * 128 * 256) + 2 * 128 * 128 * 128) + 128


def _resnet_macs() -> int:
    """W7 per sample: each conv's output positions x filters x (kernel area x input channels)."""
    stem = 32 * 32 * 16 * 9 * 3
    stage1 = 4 * 32 * 32 * 16 * 9 * 16
    # first conv strided from 16 channels, three 32->32 convs, the 1x1 projection
    stage2 = 16 * 16 * 32 * (9 * 16 + 3 * 9 * 32 + 16)
    stage3 = 8 * 8 * 64 * (9 * 32 + 3 * 9 * 64 + 32)
    return stem + stage1 + stage2 + stage3 + 64 * 10


WORKLOADS = {
    w.key: w
    for w in [
        Workload("W1", "seed_mlp.yaml", 65536, 8192, 32, "fit", _tabular, 4 * 16 + 16 * 8 + 8),
        Workload("W2", "mnist_mlp.yaml", 60000, 7680, 128, "fit", _mnist_flat, _MLP_MACS),
        Workload("W3", "mnist_cnn.yaml", 10000, 1280, 128, "fit", _mnist_images, _CNN_MACS),
        Workload("W4", "lstm_text.yaml", 4096, 512, 64, "fit", _tokens, _LSTM_MACS),
        Workload("W5", "mnist_mlp.yaml", 60000, 15360, 1024, "predict", _mnist_flat, _MLP_MACS),
        Workload("W6", "transformer_text.yaml", 2048, 256, 64, "fit", _tokens_w6, _ENCODER_MACS),
        Workload("W7", "resnet_cifar.yaml", 4096, 512, 128, "fit", _cifar_images, _resnet_macs()),
    ]
}

NAMES = {
    "W1": "seed_mlp",
    "W2": "mnist_mlp",
    "W3": "mnist_cnn",
    "W4": "lstm_text",
    "W5": "mnist_mlp_predict",
    "W6": "transformer_text",
    "W7": "resnet_cifar",
}


def data(workload: Workload, quick: bool) -> tuple[np.ndarray, np.ndarray]:
    n = workload.quick_samples if quick else workload.samples
    return workload.make_data(n, np.random.default_rng(1234))
