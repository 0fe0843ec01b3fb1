"""A run as one self-contained HTML page: summary, final metrics, curves, diagram and spec.

Pictures are embedded as data URIs and the style sheet is inline, so the page is one file that
opens anywhere, offline; it has no scripts. A picture that cannot be drawn here (no matplotlib,
a stored model that cannot be laid out) is replaced by a sentence saying why.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from html import escape
from string import Template

import yaml

from engine import saving
from modelspec.extras import MissingExtraError
from modelspec.history import diagnose
from modelspec.pictures.curves import curves_png
from modelspec.pictures.graph_file import DiagramError, render, stored_diagram
from modelspec.run_summary import final_metrics, summary_rows

PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>
body { font-family: Helvetica, Arial, sans-serif; margin: 2rem auto; max-width: 70rem;
       padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.7rem; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
pre { background: #f6f6f6; padding: 1rem; overflow-x: auto; }
.note { color: #8a5a00; }
</style>
</head>
<body>
<h1>$title</h1>
<h2>Summary</h2>
$summary
<h2>Final metrics</h2>
$metrics
<h2>Training curves</h2>
$curves
<p id="diagnosis">$diagnosis</p>
<h2>Architecture</h2>
$diagram
<h2>Spec</h2>
<pre id="spec"><code>$spec</code></pre>
</body>
</html>
""")


def html_page(source: str, run_name: str, artifact: saving.Artifact) -> str:
    """The page for a run read from `source` (final model or checkpoint)."""
    return PAGE.substitute(
        title=escape(f"Run {run_name}"),
        summary=_table(summary_rows(source, artifact), "summary"),
        metrics=_table(
            [(k, f"{v:.6g}") for k, v in final_metrics(artifact).items()],
            "metrics",
            ("metric", "value"),
        ),
        curves=_curves(artifact.history),
        diagnosis=escape(f"Curves: {diagnose(artifact.history).message}"),
        diagram=_diagram(artifact, run_name),
        spec=escape(yaml.safe_dump(artifact.spec, sort_keys=False)),
    )


def _table(
    rows: Sequence[tuple[str, str]], ident: str, header: tuple[str, str] | None = None
) -> str:
    head = f"<tr><th>{escape(header[0])}</th><th>{escape(header[1])}</th></tr>" if header else ""
    cell = '<td class="number">' if header else "<td>"
    body = "".join(
        f'<tr><th scope="row">{escape(k)}</th>{cell}{escape(v)}</td></tr>' for k, v in rows
    )
    return f'<table id="{ident}">{head}{body}</table>'


def _image(data: bytes, mime: str, alt: str, ident: str) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img id="{ident}" alt="{escape(alt)}" src="data:{mime};base64,{encoded}">'


def _curves(history: Mapping[str, Sequence[float]]) -> str:
    try:
        return _image(curves_png(history), "image/png", "training curves", "curves")
    except MissingExtraError as exc:
        return f'<p class="note">No curves: {escape(str(exc))}</p>'


def _diagram(artifact: saving.Artifact, where: str) -> str:
    try:
        diagram = stored_diagram(artifact.spec, where)
        rendered = render(diagram, "svg", show_shapes=True, show_params=True)
    except (DiagramError, MissingExtraError) as exc:
        return f'<p class="note">No diagram: {escape(str(exc))}</p>'
    picture = _image(rendered.data, "image/svg+xml", "architecture diagram", "diagram")
    return f'{picture}<p class="caption">Diagram: {escape(rendered.renderer)}.</p>'
