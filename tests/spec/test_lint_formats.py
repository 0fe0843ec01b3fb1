"""Every `lint --format` carries the same fields, and SARIF output is what code scanning takes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.cli.terminal import COLOUR, run_cli

HERE = Path(__file__).resolve().parent
TYPOS = str(HERE / "fixtures" / "bad" / "typos.yaml")
SEMANTIC = str(HERE / "fixtures" / "bad" / "semantic.yaml")

# The required fields of SARIF 2.1.0 (OASIS sarif-schema-2.1.0.json) for the objects we write,
# plus what GitHub code scanning needs on top: a rule id, a location with a file and a line.
_MESSAGE = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
_REGION = {
    "type": "object",
    "required": ["startLine"],
    "properties": {
        name: {"type": "integer", "minimum": 1}
        for name in ("startLine", "startColumn", "endLine", "endColumn")
    },
}
_RULE = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "string"},
        "shortDescription": _MESSAGE,
        "fullDescription": _MESSAGE,
        "help": _MESSAGE,
        "defaultConfiguration": {
            "type": "object",
            "properties": {"level": {"enum": ["none", "note", "warning", "error"]}},
        },
    },
}
_RESULT = {
    "type": "object",
    "required": ["message", "ruleId", "locations"],
    "properties": {
        "ruleId": {"type": "string"},
        "ruleIndex": {"type": "integer", "minimum": 0},
        "level": {"enum": ["none", "note", "warning", "error"]},
        "message": _MESSAGE,
        "locations": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["physicalLocation"],
                "properties": {
                    "physicalLocation": {
                        "type": "object",
                        "required": ["artifactLocation", "region"],
                        "properties": {
                            "artifactLocation": {
                                "type": "object",
                                "required": ["uri"],
                                "properties": {"uri": {"type": "string", "pattern": "^[^\\\\]+$"}},
                            },
                            "region": _REGION,
                        },
                    }
                },
            },
        },
    },
}
SARIF_SCHEMA = {
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "version": {"const": "2.1.0"},
        "$schema": {"type": "string", "format": "uri"},
        "runs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["tool"],
                "properties": {
                    "tool": {
                        "type": "object",
                        "required": ["driver"],
                        "properties": {
                            "driver": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "rules": {"type": "array", "items": _RULE},
                                },
                            }
                        },
                    },
                    "results": {"type": "array", "items": _RESULT},
                },
            },
        },
    },
}


def _lint(fmt: str, *paths: str) -> Any:
    outcome = run_cli("lint", *paths, "--format", fmt)
    assert outcome.code == 1
    return outcome.stdout


def test_json_carries_fix_did_you_mean_and_end() -> None:
    records = json.loads(_lint("json", TYPOS, SEMANTIC))
    assert {"path", "line", "column", "code", "severity", "message"} <= set(records[0])
    by_code = {r["code"]: r for r in records}
    assert by_code["E501"]["fix"] and "0.2" in by_code["E501"]["fix"]
    typo = next(r for r in records if "Dence" in r["message"])
    assert typo["did_you_mean"] == "Dense"
    assert (typo["line"], typo["column"], typo["end_line"], typo["end_column"]) == (3, 14, 3, 19)


@COLOUR
def test_text_and_github_show_the_same_fix_as_json(colour: bool) -> None:
    records = json.loads(_lint("json", TYPOS))
    text = run_cli("lint", TYPOS, colour=colour).stdout
    github = _lint("github", TYPOS)
    for record in records:
        if record["fix"]:
            assert f"(fix: {record['fix']})" in text
            assert f"(fix: {record['fix']})".replace("%", "%25") in github
        if record["end_line"]:
            assert f"endLine={record['end_line']},endColumn={record['end_column']}" in github


def test_sarif_is_valid_and_holds_every_diagnostic() -> None:
    records = json.loads(_lint("json", TYPOS, SEMANTIC))
    log = json.loads(_lint("sarif", TYPOS, SEMANTIC))
    jsonschema.validate(log, SARIF_SCHEMA)
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    results = run["results"]
    assert len(results) == len(records)
    for result, record in zip(results, records, strict=True):
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"] == record["code"]
        assert result["level"] == record["severity"]
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"] == Path(record["path"]).as_posix()
        assert location["region"]["startLine"] == record["line"]
        assert location["region"]["startColumn"] == record["column"]
        assert result["message"]["text"].startswith(record["message"])
        assert result["properties"]["fix"] == record["fix"]


@pytest.mark.parametrize("fmt", ["json", "sarif"])
def test_clean_files_give_an_empty_list(fmt: str) -> None:
    outcome = run_cli("lint", str(HERE / "fixtures" / "tutorial_mlp.yaml"), "--format", fmt)
    assert outcome.code == 0
    parsed = json.loads(outcome.stdout)
    assert parsed == [] if fmt == "json" else parsed["runs"][0]["results"] == []
