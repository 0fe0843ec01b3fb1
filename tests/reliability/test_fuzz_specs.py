"""Fuzzing the spec path: generated YAML, mutated example specs and `--set` values through
load, validate, infer, `lint` and `summary`. Property: success or clean diagnostics and an exit
code, never an uncaught exception, never a hang, never a file written by lint or summary."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from modelspec.check import check_spec
from modelspec.cli import app
from modelspec.diagnostics import CODES
from tests.reliability.bounds import bounded
from tests.spec.test_properties import documents

SPECS = sorted((Path(__file__).parents[2] / "specs").glob("*.yaml"))
EXAMPLES = {path.name: path.read_text(encoding="utf-8") for path in SPECS}


def _files(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


def _run_read_only(folder: Path, text: str) -> None:
    """`lint` and `summary` on `text`: an exit code and no traceback, and no file written."""
    spec = folder / "fuzzed.yaml"
    spec.write_text(text, encoding="utf-8", errors="surrogatepass")
    before = _files(folder)
    for args in (
        ["lint", str(spec)],
        ["lint", "--format", "sarif", str(spec)],
        ["summary", str(spec)],
    ):
        with bounded():
            result = CliRunner().invoke(app, args)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code in (0, 1, 2), (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stdout + result.stderr
        assert _files(folder) == before, args


def _mutate(text: str, edits: list[tuple[int, int, str]]) -> str:
    for at, length, insert in edits:
        at %= max(1, len(text))
        text = text[:at] + insert + text[at + length :]
    return text


Edits = list[tuple[int, int, str]]
edits = st.lists(
    st.tuples(
        st.integers(0, 100_000),
        st.integers(0, 12),
        st.one_of(
            st.text(max_size=6),
            st.sampled_from(["\n", "\t", ": ", "- ", "  ", "[", "{", "}", "&a", "*a", "!!python"]),
        ),
    ),
    min_size=1,
    max_size=4,
)


@given(st.sampled_from(sorted(EXAMPLES)), edits)
def test_mutated_example_specs(
    tmp_path_factory: pytest.TempPathFactory, name: str, changes: Edits
) -> None:
    folder = tmp_path_factory.mktemp("mutated")
    _run_read_only(folder, _mutate(EXAMPLES[name], changes))


@given(documents)
def test_generated_documents(tmp_path_factory: pytest.TempPathFactory, doc: object) -> None:
    folder = tmp_path_factory.mktemp("generated")
    _run_read_only(folder, yaml.safe_dump({"model": {"layers": doc}, "fit": doc}))


keys = st.one_of(
    st.sampled_from(
        [
            "fit.epochs",
            "fit.batch_size",
            "compile.optimizer",
            "model.layers.1.units",
            "model.layers",
            "data.train.path",
            "seed",
            "fit.callbacks",
            "name",
        ]
    ),
    st.text(max_size=12),
)
values = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["[]", "{}", "-1", "0", "1e309", "nan", "[1, [2", "{a: b}", "null", "~"]),
)


@given(
    st.sampled_from(sorted(EXAMPLES)), st.lists(st.tuples(keys, values), max_size=3), st.booleans()
)
def test_set_values(name: str, overrides: list[tuple[str, str]], with_equals: bool) -> None:
    joined = [f"{k}={v}" if with_equals else f"{k}{v}" for k, v in overrides]
    path = next(p for p in SPECS if p.name == name)
    with bounded():
        report = check_spec(path, joined)
    for diagnostic in report.diagnostics:
        assert diagnostic.code in CODES
