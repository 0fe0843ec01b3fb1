"""Diagnostics as a SARIF 2.1.0 log, the format GitHub code scanning shows on pull requests.

Upload it with `github/codeql-action/upload-sarif`. Each code is a rule (its title and the
`modelspec explain` text); each diagnostic a result at its file region, its fix in the message
(SARIF's own `fixes` need exact text edits, which a hint is not) and in `properties`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelspec.diagnostics import CODES, Diagnostic, severity_of

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _version() -> str:
    # importlib.metadata is slow to import; only SARIF output needs it.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("modelspec")
    except PackageNotFoundError:
        return "0+unknown"


def _rules() -> list[dict[str, Any]]:
    return [
        {
            "id": code,
            "name": "".join(word.capitalize() for word in entry.title.split()),
            "shortDescription": {"text": entry.title},
            "fullDescription": {"text": entry.explanation},
            "help": {"text": f"{entry.explanation} See `modelspec explain {code}`."},
            "defaultConfiguration": {"level": severity_of(code)},
        }
        for code, entry in CODES.items()
    ]


def _region(d: Diagnostic) -> dict[str, int]:
    region = {"startLine": d.line, "startColumn": d.column}
    if d.origin is None and d.end_line is not None and d.end_column is not None:
        region |= {"endLine": d.end_line, "endColumn": d.end_column}
    return region


def _result(d: Diagnostic, rule_index: dict[str, int]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": d.code,
        "level": d.severity,
        "message": {"text": d.located_message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": Path(d.path).as_posix()},
                    "region": _region(d),
                }
            }
        ],
        "properties": {"fix": d.hint, "did_you_mean": d.did_you_mean, "origin": d.origin},
    }
    if d.code in rule_index:
        result["ruleIndex"] = rule_index[d.code]
    return result


def sarif(diagnostics: Sequence[Diagnostic], files: int) -> str:
    """One SARIF run of the `modelspec` tool holding every diagnostic."""
    rules = _rules()
    index = {rule["id"]: i for i, rule in enumerate(rules)}
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "modelspec",
                        "version": _version(),
                        "rules": rules,
                    }
                },
                "results": [_result(d, index) for d in diagnostics],
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"
