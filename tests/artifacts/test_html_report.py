"""`modelspec report RUN --html`: one self-contained page, opened in a real headless Chromium."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelspec.cli import app
from tests.artifacts import chromium, train_script

runner = CliRunner()
SECTIONS = ("summary", "metrics", "curves", "diagnosis", "diagram", "spec")
# Every image and whether it decoded, the sections present, any address that is not inline.
PROBE = """JSON.stringify({
  images: [...document.images].map(i => ({id: i.id, ok: i.complete && i.naturalWidth > 0})),
  sections: SECTIONS.filter(id => document.getElementById(id) !== null),
  external: [...document.querySelectorAll('[src],[href]')]
    .map(e => e.getAttribute('src') || e.getAttribute('href'))
    .filter(u => !u.startsWith('data:')),
})""".replace("SECTIONS", json.dumps(SECTIONS))

needs_chromium = pytest.mark.skipif(
    chromium.executable() is None, reason="Chromium is not installed (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("run")
    train_script.train(str(folder), resume=False, sleep=0.0)
    return folder


def _page(run_dir: Path, out: Path) -> str:
    result = runner.invoke(app, ["report", str(run_dir), "--html", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"Wrote {out}" in result.output
    return out.read_text()


def test_page_holds_every_part_inline(run_dir: Path, tmp_path: Path) -> None:
    page = _page(run_dir, tmp_path / "report.html")
    for ident in SECTIONS:
        assert f'id="{ident}"' in page
    assert re.search(r'id="curves"[^>]*src="data:image/png;base64,', page)
    assert re.search(r'id="diagram"[^>]*src="data:image/svg\+xml;base64,', page)
    assert "sparse_categorical_crossentropy" in page and "<script" not in page
    assert (run_dir / "training_curves.png").is_file()


def test_default_page_goes_into_the_run_folder(run_dir: Path) -> None:
    result = runner.invoke(app, ["report", str(run_dir), "--html"])
    assert result.exit_code == 0, result.output
    assert (run_dir / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_without_matplotlib_the_page_says_why(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    page = _page(run_dir, tmp_path / "report.html")
    assert "No curves:" in page and "modelspec[plots]" in page
    assert 'id="diagram"' in page


@needs_chromium
def test_chromium_loads_the_page_without_errors(run_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("websocket")
    image = pytest.importorskip("matplotlib.image")
    page = tmp_path / "report.html"
    _page(run_dir, page)
    loaded = chromium.load(page, PROBE)
    assert loaded.errors == []
    found = json.loads(loaded.probe)
    assert found["sections"] == list(SECTIONS)
    assert {i["id"]: i["ok"] for i in found["images"]} == {"curves": True, "diagram": True}
    assert found["external"] == []
    shot = image.imread(io.BytesIO(loaded.screenshot), format="png")
    assert shot.shape[0] > 1000 and shot.shape[1] >= 1000
    assert shot[..., :3].std() > 0.05  # not a blank page


@needs_chromium
def test_the_chromium_check_catches_a_missing_image_and_a_script_error(tmp_path: Path) -> None:
    pytest.importorskip("websocket")
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><body><img id="curves" src="missing.png">'
        "<script>undefinedFunction()</script></body></html>"
    )
    loaded = chromium.load(page, PROBE)
    found = json.loads(loaded.probe)
    assert found["images"] == [{"id": "curves", "ok": False}]
    assert any("missing.png" in e for e in loaded.errors)
    assert any("undefinedFunction" in e or "Uncaught" in e for e in loaded.errors)
