"""`modelspec --version` names the release and each compiled kernel module, built or not."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from engine import native
from modelspec import __version__
from modelspec.cli import app


def _version_output() -> str:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    return result.output


def test_version_lists_every_compiled_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(native.SWITCH, raising=False)
    extensions = native._Extensions()
    extensions.batched = None  # as when this one module failed to compile
    monkeypatch.setattr(native, "_ext", extensions)
    lines = _version_output().splitlines()
    assert lines[0] == f"modelspec {__version__}"
    for name in native.COMPILED:
        (line,) = [x for x in lines if x.split()[:1] == [name]]
        assert ("not built" in line) == (name == "_batched" or not native.built()[name]), line


def test_version_says_when_the_switch_turns_the_kernels_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(native.SWITCH, "0")
    monkeypatch.setattr(native, "_ext", native._Extensions())
    assert "switched off (MODELSPEC_NATIVE=0)" in _version_output()
