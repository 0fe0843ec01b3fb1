"""Golden-file tests of summary, lint, schema and explain: arguments, exit code, stdout, stderr.

Goldens live in tests/spec/golden/; regenerate them only on purpose with
`MODELSPEC_UPDATE_GOLDEN=1 python -m pytest tests/spec/test_cli.py`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from modelspec.commands import spec as spec_commands

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
UPDATE = os.environ.get("MODELSPEC_UPDATE_GOLDEN") == "1"

# (golden name, arguments); paths are relative to tests/spec/.
RUNS = [
    ("summary_mlp", "summary fixtures/tutorial_mlp.yaml"),
    ("summary_mlp_json", "summary fixtures/tutorial_mlp.yaml --format json"),
    ("summary_functional", "summary fixtures/two_heads.yaml"),
    ("summary_shared", "summary fixtures/shared.yaml"),
    ("summary_bad", "summary fixtures/bad/typos.yaml"),
    ("summary_missing", "summary fixtures/nope.yaml"),
    ("lint_bad_text", "lint fixtures/bad"),
    ("lint_bad_json", "lint fixtures/bad --format json"),
    ("lint_bad_github", "lint fixtures/bad/typos.yaml --format github"),
    ("lint_clean_glob", "lint fixtures/*.yaml"),
    ("lint_warning", "lint fixtures/warn_only.yaml"),
    ("lint_warning_strict", "lint fixtures/warn_only.yaml --strict"),
    ("lint_unreadable", "lint fixtures/tutorial_mlp.yaml fixtures/nope.yaml"),
    ("lint_no_match", "lint fixtures/*.json"),
    ("explain", "explain E101"),
    ("explain_unknown", "explain X999"),
]


def _app() -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False)
    spec_commands.register(app)
    return app


def _render(args: str, code: int, stdout: str, stderr: str) -> str:
    return f"$ modelspec {args}\nexit: {code}\n--- stdout\n{stdout}--- stderr\n{stderr}"


@pytest.mark.parametrize(("name", "args"), RUNS, ids=[r[0] for r in RUNS])
def test_golden(name: str, args: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(HERE)
    monkeypatch.delenv("CI", raising=False)
    result = CliRunner().invoke(_app(), shlex.split(args))
    assert result.exception is None or isinstance(result.exception, SystemExit)
    got = _render(args, result.exit_code, result.stdout, result.stderr)
    path = GOLDEN / f"{name}.txt"
    if UPDATE:
        path.write_text(got)
    assert got == path.read_text()


def test_bad_option_is_usage_error() -> None:
    result = CliRunner().invoke(_app(), ["lint", ".", "--format", "xml"])
    assert result.exit_code == 2 and "xml" in result.stderr


def test_schema_is_json_and_covers_every_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.layers import registry

    result = CliRunner().invoke(_app(), ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    text = result.stdout
    for type_name in registry.all_layers():
        assert f'"const": "{type_name}"' in text or f'"{type_name}"' in text


def test_schema_refs_all_resolve() -> None:
    schema = json.loads(CliRunner().invoke(_app(), ["schema"]).stdout)
    refs = set(re.findall(r'"\$ref": "#/\$defs/([^"]+)"', json.dumps(schema)))
    assert refs and refs <= set(schema["$defs"])
    assert set(schema["properties"]) == {
        "version",
        "name",
        "description",
        "seed",
        "dtype",
        "model",
        "compile",
        "data",
        "fit",
        "tune",
    }
    assert schema["required"] == ["model"] and schema["additionalProperties"] is False


def test_schema_accepts_the_fixtures_and_rejects_typos() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    schema = json.loads(CliRunner().invoke(_app(), ["schema"]).stdout)
    for name in ("tutorial_mlp", "two_heads", "shared"):
        jsonschema.validate(
            yaml.safe_load((HERE / "fixtures" / f"{name}.yaml").read_text()), schema
        )
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(yaml.safe_load((HERE / "fixtures/bad/typos.yaml").read_text()), schema)


def test_mlp_summary_totals_are_keras_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(HERE)
    result = CliRunner().invoke(_app(), ["summary", "fixtures/tutorial_mlp.yaml"])
    out = result.stdout
    assert [int(n) for n in re.findall(r"│\s+([\d,]+) │\s+[\d.]+K? │", out)] == [80, 136, 9]
    assert " Total params: 225 (900.00 B)" in out
    assert " Trainable params: 225 (900.00 B)" in out
    assert " Non-trainable params: 0 (0.00 B)" in out


def test_folders_skip_hidden_directories(tmp_path: Path) -> None:
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "ci.yml").write_text("on: push\n")
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "a.yml").write_text((HERE / "fixtures/tutorial_mlp.yaml").read_text())
    (tmp_path / "specs" / "notes.txt").write_text("not yaml")
    files, bad = spec_commands.expand([str(tmp_path)])
    assert files == [tmp_path / "specs" / "a.yml"] and bad == []


@pytest.mark.parametrize("columns", [80, 60])
def test_a_narrow_terminal_folds_the_summary_instead_of_cutting_it(columns: int) -> None:
    """Below Keras's table width every column stays, each line fits, cells wrap at their
    spaces and numbers stay whole."""
    import io

    from rich.console import Console

    from modelspec import summary as summaries
    from modelspec.check import check_spec

    report = check_spec(HERE / "fixtures" / "two_heads.yaml", [])
    assert report.model is not None and summaries.width(report.model) > columns
    buffer = io.StringIO()
    summaries.print_summary(report.model, Console(file=buffer, width=columns, color_system=None))
    lines = buffer.getvalue().splitlines()
    assert max(len(line) for line in lines) <= columns
    text = " ".join(lines)
    for header in ("Layer", "Output", "Connec", "FLOPs", "Act. memory"):
        assert header in text
    rows = report.model.rows
    cells = [line.split("│") for line in lines if line.startswith("│")]
    params = sorted(int(c[3].strip().replace(",", "")) for c in cells if c[3].strip())
    assert params == sorted(r.params for r in rows)


def test_a_pipe_gets_keras_widths_so_rows_do_not_wrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(HERE)
    out = CliRunner().invoke(_app(), ["summary", "fixtures/two_heads.yaml"]).stdout
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert all("(" in line.split("│")[1] for line in rows), out


def test_train_folds_its_summary_to_a_narrow_terminal_and_widens_it_in_a_log() -> None:
    import io

    from rich.console import Console

    from modelspec.check import check_spec
    from modelspec.commands import run as run_commands

    report = check_spec(HERE / "fixtures" / "two_heads.yaml", [])
    widths = {}
    for terminal in (True, False):
        buffer = io.StringIO()
        console = Console(file=buffer, width=80, force_terminal=terminal, color_system=None)
        run_commands._print_summary(console, report)
        widths[terminal] = max(len(line) for line in buffer.getvalue().splitlines())
    assert widths[True] <= 80 < widths[False]
