"""`modelspec graph`: the diagram's boxes and arrows, Graphviz's files and our own SVG layout."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine import saving
from engine.build import from_spec
from modelspec.check import check_spec
from modelspec.cli import app
from modelspec.pictures import diagram as diagrams
from modelspec.pictures import svg_layout
from modelspec.pictures.graph_file import diagram_from
from tests.artifacts import train_script

SPECS = Path(__file__).resolve().parents[2] / "specs"
SVG = "{http://www.w3.org/2000/svg}"
runner = CliRunner()

SIAMESE_EDGES = {
    ("left", "scale_left"),
    ("scale_left", "conv_left"),
    ("conv_left", "flat_left"),
    ("flat_left", "embed_left"),
    ("right", "scale_right"),
    ("scale_right", "conv_right"),
    ("conv_right", "flat_right"),
    ("flat_right", "embed_right"),
    ("embed_left", "difference"),
    ("embed_right", "difference"),
    ("difference", "squared"),
    ("squared", "hidden"),
    ("hidden", "same"),
}


def _diagram(name: str) -> diagrams.Diagram:
    return diagram_from(check_spec(SPECS / f"{name}.yaml"))


def test_siamese_diagram_has_every_call_edge_and_share() -> None:
    found = _diagram("digits_siamese")
    assert set(found.edges) == SIAMESE_EDGES
    assert len(found.edges) == len(SIAMESE_EDGES)  # `squared` reads `difference` twice: one arrow
    assert set(found.shares) == {
        (f"{p}_left", f"{p}_right") for p in ("scale", "conv", "flat", "embed")
    }
    boxes = {b.name: b for b in found.boxes}
    assert boxes["embed_right"].type == "Dense" and boxes["embed_right"].shares == "embed_left"
    assert boxes["embed_left"].params == 576 * 32 + 32
    assert boxes["same"].output and not boxes["hidden"].output
    assert boxes["conv_left"].shape == "(None, 6, 6, 16)"


def test_multi_io_diagram_marks_both_outputs_and_inputs() -> None:
    found = _diagram("digits_multi_io")
    boxes = {b.name: b for b in found.boxes}
    assert [b.name for b in found.boxes if b.type == "InputLayer"] == ["image", "meta"]
    assert {n for n, b in boxes.items() if b.output} == {"digit", "big"}
    assert ("meta", "both") in found.edges and ("hidden", "big") in found.edges


def _svg_boxes(svg: str) -> dict[str, tuple[float, float, float, float]]:
    root = ET.fromstring(svg)
    boxes = {}
    for group in root.iter(f"{SVG}g"):
        if group.get("class") == "box":
            rect = group.find(f"{SVG}rect")
            assert rect is not None
            x, y, w, h = (float(rect.get(k, "0")) for k in ("x", "y", "width", "height"))
            boxes[group.get("id", "")[len("node-") :]] = (x, y, w, h)
    return boxes


@pytest.mark.parametrize("name", ["digits_siamese", "digits_multi_io", "tutorial_mlp"])
def test_own_layout_places_boxes_apart_and_arrows_downward(name: str) -> None:
    found = _diagram(name)
    svg = svg_layout.to_svg(found, show_shapes=True, show_params=True)
    boxes = _svg_boxes(svg)
    assert set(boxes) == {b.name for b in found.boxes}
    placed = list(boxes.values())
    for i, (x, y, w, h) in enumerate(placed):
        for x2, y2, w2, h2 in placed[i + 1 :]:
            assert x + w <= x2 or x2 + w2 <= x or y + h <= y2 or y2 + h2 <= y, "boxes overlap"
    edges = [e for e in ET.fromstring(svg).iter(f"{SVG}path") if e.get("class") == "edge"]
    assert {(e.get("data-from"), e.get("data-to")) for e in edges} == set(found.edges)
    for source, target in found.edges:
        assert boxes[source][1] + boxes[source][3] < boxes[target][1]


SKIP_SPEC = """
name: skipnet
model:
  type: functional
  inputs:
    - {name: x, shape: [16]}
    - {name: extra, shape: [4]}
  layers:
    - {name: d1, type: Dense, units: 16, inputs: x}
    - {name: d2, type: Dense, units: 16}
    - {name: d3, type: Dense, units: 16}
    - {name: add, type: Add, inputs: [d3, x]}
    - {name: cat, type: Concatenate, inputs: [add, extra]}
    - {name: head_a, type: Dense, units: 3}
    - {name: head_b, type: Dense, units: 1, inputs: cat}
  outputs: [head_a, head_b]
"""


def test_own_layout_runs_skip_connections_beside_the_boxes(tmp_path: Path) -> None:
    spec = tmp_path / "skip.yaml"
    spec.write_text(SKIP_SPEC)
    laid = svg_layout.layout(diagram_from(check_spec(spec)), True, True)
    route = laid.routes[("x", "add")]
    assert len(route) == 2 + 2 * 3  # start, a gap in d1's, d2's and d3's layers, end
    for (xa, ya), (xb, yb) in zip(route[1::2], route[2::2], strict=False):
        assert xa == xb  # straight down through the gap kept for it
        for p in laid.boxes:
            overlaps_rows = p.y < yb and ya < p.y + p.h
            assert not (overlaps_rows and p.x <= xa <= p.x + p.w), f"passes behind {p.box.name}"


def test_labels_follow_the_flags() -> None:
    box = diagrams.Box("dense", "Dense", "(None, 8)", 40)
    assert box.lines(False, False) == ["dense (Dense)"]
    assert box.lines(True, True) == ["dense (Dense)", "output: (None, 8)", "params: 40"]


@pytest.mark.skipif(not diagrams.dot_available(), reason="Graphviz's dot is not installed")
def test_graphviz_svg_has_a_node_per_call(tmp_path: Path) -> None:
    out = tmp_path / "model.svg"
    result = runner.invoke(
        app, ["graph", str(SPECS / "digits_siamese.yaml"), "-o", str(out), "--show-shapes"]
    )
    assert result.exit_code == 0, result.output
    assert "Graphviz dot" in result.output
    root = ET.fromstring(out.read_text())
    titles = {
        g.findtext(f"{SVG}title"): g.get("class") for g in root.iter(f"{SVG}g") if g.get("class")
    }
    names = {n for n, kind in titles.items() if kind == "node"}
    assert names == {b.name for b in _diagram("digits_siamese").boxes}
    arrows = {n for n, kind in titles.items() if kind == "edge"}
    assert {f"{s}->{t}" for s, t in SIAMESE_EDGES} <= arrows
    assert "(None, 6, 6, 16)" in out.read_text()


@pytest.mark.skipif(not diagrams.dot_available(), reason="Graphviz's dot is not installed")
def test_png_and_dot_from_a_run_folder(tmp_path: Path) -> None:
    model = from_spec(train_script.SPEC)
    saving.write_artifact(tmp_path / "run", saving.model_artifact(model))
    for name, head in (("m.png", b"\x89PNG"), ("m.dot", b"digraph")):
        result = runner.invoke(app, ["graph", str(tmp_path / "run"), "-o", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        assert (tmp_path / name).read_bytes().startswith(head)


def test_without_dot_svg_uses_our_layout_and_png_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    spec = str(SPECS / "digits_multi_io.yaml")
    result = runner.invoke(app, ["graph", spec, "-o", str(tmp_path / "m.svg")])
    assert result.exit_code == 0, result.output
    assert "own layout" in result.output
    assert set(_svg_boxes((tmp_path / "m.svg").read_text())) >= {"image", "meta", "digit", "big"}
    result = runner.invoke(app, ["graph", spec, "-o", str(tmp_path / "m.png")])
    assert result.exit_code == 1
    assert "apt-get install graphviz" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "m.png").exists()


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["nowhere.yaml"], 2, "no such spec file"),
        ([str(SPECS / "iris_mlp.yaml"), "-o", "m.gif"], 1, "cannot write .gif"),
    ],
)
def test_user_errors_are_one_line(
    args: list[str], code: int, words: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["graph", *args])
    assert result.exit_code == code and words in result.output
    assert "Traceback" not in result.output


def test_a_spec_with_errors_gets_its_diagnostics(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  type: sequential\n  layers:\n    - {type: Dense, units: -3}\n")
    result = runner.invoke(app, ["graph", str(bad), "-o", str(tmp_path / "m.svg")])
    assert result.exit_code == 1 and "bad.yaml:4" in result.output
    assert not (tmp_path / "m.svg").exists()
