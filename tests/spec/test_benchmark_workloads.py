"""The benchmark's W7 ResNet: its size against Keras 3's formulas and its PyTorch peer.

A Conv2D has k*k*cin*filters + filters weights, a BatchNormalization 4 per channel (gamma and
beta trainable, the moving mean and variance not), a Dense in*out + out. The PyTorch peer must
hold the same trainable weights and the same moving statistics, or the comparison is unfair.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.workloads import WORKLOADS
from modelspec.check import check_text

SPEC = Path(__file__).resolve().parents[2] / "benchmarks" / "workloads" / "resnet_cifar.yaml"
# (input channels, filters, strides) of each residual block
BLOCKS = [(16, 16, 1), (16, 16, 1), (16, 32, 2), (32, 32, 1), (32, 64, 2), (64, 64, 1)]


def _conv_bn(cin: int, filters: int, kernel: int) -> tuple[int, int]:
    """(trainable, non-trainable) weights of Conv2D + BatchNormalization."""
    return kernel * kernel * cin * filters + filters + 2 * filters, 2 * filters


def _keras_counts() -> tuple[int, int]:
    parts = [_conv_bn(3, 16, 3)]
    for cin, filters, strides in BLOCKS:
        parts += [_conv_bn(cin, filters, 3), _conv_bn(filters, filters, 3)]
        if strides > 1:
            parts.append(_conv_bn(cin, filters, 1))
    parts.append((64 * 10 + 10, 0))
    return sum(p[0] for p in parts), sum(p[1] for p in parts)


def test_resnet_parameter_counts_follow_keras_formulas() -> None:
    report = check_text(SPEC.read_text(), str(SPEC))
    assert [d for d in report.diagnostics if d.severity == "error"] == []
    assert report.model is not None
    trainable, frozen = _keras_counts()
    assert (trainable, frozen) == (175_818, 1_120)  # Keras 3's model.summary()
    assert report.model.total("trainable_params") == trainable
    assert report.model.total("non_trainable_params") == frozen


def test_resnet_macs_match_the_inferred_shapes() -> None:
    """MACs per sample from each conv's inferred output and kernel, against the workload's."""
    report = check_text(SPEC.read_text(), str(SPEC))
    assert report.model is not None
    macs = 0
    for row in report.model.rows:
        if row.type in ("Conv2D", "Dense"):
            _, *spatial, filters = row.output_shape
            kernel_weights = row.params - filters
            positions = 1
            for d in spatial:
                positions *= d
            macs += positions * kernel_weights
    assert macs == WORKLOADS["W7"].macs_per_sample


def test_torch_peer_holds_the_same_weights() -> None:
    torch = pytest.importorskip("torch")
    from benchmarks.peers import _torch_model

    net, _ = _torch_model("W7")
    trainable, frozen = _keras_counts()
    assert sum(p.numel() for p in net.parameters()) == trainable
    stats = [b for name, b in net.named_buffers() if name.endswith(("running_mean", "running_var"))]
    assert sum(b.numel() for b in stats) == frozen
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert {(m.momentum, m.eps) for m in norms} == {(0.01, 1e-3)}
