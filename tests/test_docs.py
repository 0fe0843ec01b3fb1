"""The format reference lives in the repository, its examples check clean, and it is cited."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from modelspec.check import SpecReport, check_document, check_text
from modelspec.load import parse

ROOT = Path(__file__).resolve().parent.parent
FORMAT = ROOT / "docs" / "spec-format.md"
BLOCKS = re.findall(r"```yaml\n(.*?)```", FORMAT.read_text(), re.S)


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.startswith(("version", "model"))])
def test_format_page_examples_check_clean(block: str) -> None:
    data, source_map, problems = parse(block, "example.yaml")
    assert problems == []
    report = check_document(data, source_map, SpecReport("example.yaml"), check_paths=False)
    assert [f"{d.code} {d.message}" for d in report.errors] == []


def test_no_file_cites_a_missing_format_page() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    citing = [
        name
        for name in tracked
        if (ROOT / name).is_file()
        and not (ROOT / name).is_symlink()
        and "SPEC.md" in (ROOT / name).read_text(encoding="utf-8", errors="ignore")
        and name != "tests/test_docs.py"
    ]
    assert citing == []


def test_not_a_spec_points_to_the_format_page() -> None:
    (found,) = check_text("- just\n- a list\n").diagnostics
    assert found.code == "E003" and found.hint is not None
    cited = re.search(r"docs/[\w-]+\.md", found.hint)
    assert cited and (ROOT / cited.group(0)).is_file()
