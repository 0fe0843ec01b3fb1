"""The tutorial's tensor section (sections 1-8) with `en` for `tf`: the same printed outputs,
with `Tensor` in place of `tf.Tensor`.
"""

from __future__ import annotations

import importlib.util
import logging

import numpy as np
import pytest

import engine as en
from engine import api


def test_1_what_are_tensors(capsys: pytest.CaptureFixture[str]) -> None:
    t = en.constant([[1, 2, 3], [4, 5, 6]])
    print(t)
    assert capsys.readouterr().out == "Tensor(\n[[1 2 3]\n [4 5 6]], shape=(2, 3), dtype=int32)\n"


def test_3_immutability(capsys: pytest.CaptureFixture[str]) -> None:
    x = en.constant([1, 2, 3])
    y = x + 10
    print(x)
    print(y)
    assert capsys.readouterr().out == (
        "Tensor([1 2 3], shape=(3,), dtype=int32)\nTensor([11 12 13], shape=(3,), dtype=int32)\n"
    )
    with pytest.raises(TypeError, match="immutable"):
        x[0] = 5


@pytest.mark.parametrize("name", ["/CPU:0", "cpu"])
def test_4_device_placement_cpu(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with en.device(name):
        a = en.constant([[1.0, 2.0], [3.0, 4.0]])
        b = en.constant([[2.0, 0.0], [0.0, 2.0]])
        c = en.matmul(a, b)
    print(c)
    assert c.device == "cpu"
    assert capsys.readouterr().out == (
        "Tensor(\n[[2. 4.]\n [6. 8.]], shape=(2, 2), dtype=float32)\n"
    )


def test_4_device_placement_gpu_falls_back_to_the_cpu_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu = importlib.util.find_spec("cupy") is not None
    monkeypatch.setattr(api, "_fallbacks", set())
    with caplog.at_level(logging.WARNING, logger="engine"):
        for _ in range(2):
            with en.device("/GPU:0"):
                c = en.matmul(en.constant([[1.0, 2.0]]), en.constant([[2.0], [0.0]]))
    assert c.numpy().tolist() == [[2.0]]
    if not gpu:
        assert c.device == "cpu"
        assert [r.getMessage().endswith("running on the CPU") for r in caplog.records] == [True]


def test_5a_shape(capsys: pytest.CaptureFixture[str]) -> None:
    t = en.constant([[1, 2, 3], [4, 5, 6]])
    print(t.shape)
    assert capsys.readouterr().out == "(2, 3)\n"


def test_5b_rank(capsys: pytest.CaptureFixture[str]) -> None:
    a = en.constant(4)
    b = en.constant([1, 2, 3])
    c = en.constant([[1, 2], [3, 4]])
    d = en.constant([[[1], [2]], [[3], [4]]])
    for t in (a, b, c, d):
        print(en.rank(t).numpy())
    assert capsys.readouterr().out == "0\n1\n2\n3\n"


@pytest.mark.parametrize(
    ("axis", "expected"), [(0, [5, 7, 9]), (1, [6, 15]), (None, 21), (-1, [6, 15])]
)
def test_5c_reduce_sum_over_each_axis(axis: int | None, expected: object) -> None:
    t = en.constant([[1, 2, 3], [4, 5, 6]])
    s = en.reduce_sum(t, axis=axis)
    assert s.numpy().tolist() == expected
    assert s.dtype == en.int32


def test_5d_size(capsys: pytest.CaptureFixture[str]) -> None:
    t = en.constant([[1, 2, 3], [4, 5, 6]])
    print(en.size(t).numpy())
    assert capsys.readouterr().out == "6\n"


def test_6_vector(capsys: pytest.CaptureFixture[str]) -> None:
    v = en.constant([10, 20, 30, 40])
    print(v.shape)
    print(en.rank(v))
    assert capsys.readouterr().out == "(4,)\nTensor(1, shape=(), dtype=int32)\n"


def test_7_dtypes(capsys: pytest.CaptureFixture[str]) -> None:
    x = en.constant([1.0, 2.0, 3.0], dtype=en.float32)
    print(x.dtype)
    assert capsys.readouterr().out == "<dtype: 'float32'>\n"
    assert en.constant([True]).dtype == en.bool
    assert en.constant(["a"]).dtype == en.string


def test_8_operations(capsys: pytest.CaptureFixture[str]) -> None:
    a = en.constant([1, 2, 3])
    b = en.constant([10, 20, 30])
    print(a + b)
    print(a * b)
    print(en.matmul([[1, 2]], [[2], [3]]))
    assert capsys.readouterr().out == (
        "Tensor([11 22 33], shape=(3,), dtype=int32)\n"
        "Tensor([10 40 90], shape=(3,), dtype=int32)\n"
        "Tensor([[8]], shape=(1, 1), dtype=int32)\n"
    )


def test_tensor_vs_numpy() -> None:
    t = en.constant([[1, 2], [3, 4]])
    host = t.numpy()
    host[0, 0] = 99
    assert isinstance(host, np.ndarray)
    assert t.numpy()[0, 0] == 1
