"""Render an inferred model as Keras 3's summary table (plus FLOPs and activation memory) or JSON.

The text form keeps Keras's layout: `Model: "name"`, a boxed table with Layer (type), Output
Shape, Param # (and Connected to for non-chain functional models), then Total / Trainable /
Non-trainable params with their size. Two columns go beyond Keras: forward FLOPs and activation
memory per sample. Sequential models omit the input row, as Keras does; JSON lists it.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from engine.sizes import readable_size
from modelspec.infer import INPUT_LAYER, InferredModel, LayerRow, OutputShape

# Keras's widths: 88 columns for a chain, 108 with "Connected to"; ours add 26 for two columns.
CHAIN_WIDTHS = (39, 31, 18)
GRAPH_WIDTHS = (32, 28, 19, 29)
EXTRA_WIDTHS = (12, 14)


def readable_count(count: float) -> str:
    """FLOPs with a metric suffix: 470, 1.2K, 3.4M, 5.6G."""
    for unit in ("", "K", "M", "G", "T"):
        if abs(count) < 1000:
            return f"{count:.0f}" if unit == "" else f"{count:.1f}{unit}"
        count /= 1000
    return f"{count:.1f}P"


def format_shape(shape: OutputShape) -> str:
    if isinstance(shape, list):
        return "[" + ", ".join(format_shape(s) for s in shape) + "]"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _visible_rows(model: InferredModel) -> list[LayerRow]:
    if model.kind == "sequential":
        return [r for r in model.rows if r.type != INPUT_LAYER]
    return model.rows


def table(model: InferredModel, available: int | None = None) -> Table:
    """Keras's boxed table at Keras's column widths; narrower than that (`available` columns,
    a small terminal), the columns shrink and a cell wraps at its spaces instead of the
    table being cut off at the right. Numbers never wrap."""
    graph = not model.chain
    widths = (*(GRAPH_WIDTHS if graph else CHAIN_WIDTHS), *EXTRA_WIDTHS)
    fits = available is None or available >= sum(widths)
    headers = ["Layer (type)", "Output Shape", "Param #"]
    justify = ["left", "left", "right"]
    if graph:
        headers.append("Connected to")
        justify.append("left")
    headers += ["FLOPs", "Act. memory"]
    justify += ["right", "right"]
    columns = [
        Column(
            h,
            justify=j,  # type: ignore[arg-type]
            width=w if fits else None,
            no_wrap=j == "right",
            overflow="fold",
        )
        for h, j, w in zip(headers, justify, widths, strict=True)
    ]
    result = Table(*columns, width=sum(widths) if fits else None, show_lines=True)
    for row in _visible_rows(model):
        cells = [
            f"{escape(row.name)} ({escape(row.type)})",
            format_shape(row.output_shape),
            f"{row.params:,}",
        ]
        if graph:
            cells.append(escape(", ".join(row.connections)) or "-")
        cells += [readable_count(row.flops), readable_size(row.activation_bytes)]
        result.add_row(*cells)
    return result


def width(model: InferredModel) -> int:
    return sum((*(GRAPH_WIDTHS if not model.chain else CHAIN_WIDTHS), *EXTRA_WIDTHS))


def print_summary(model: InferredModel, console: Console) -> None:
    """Keras's summary, then the per-sample totals Keras does not print."""
    trainable = model.total("trainable_params")
    non_trainable = model.total("non_trainable_params")
    weight_bytes = model.total("weight_bytes")
    trainable_bytes = sum(
        r.weight_bytes * r.trainable_params // r.params for r in model.rows if r.params
    )
    console.print(f'[bold]Model: "{escape(model.name)}"[/]')
    console.print(table(model, console.width))
    lines = [
        ("Total params", f"{trainable + non_trainable:,} ({readable_size(weight_bytes)})"),
        ("Trainable params", f"{trainable:,} ({readable_size(trainable_bytes)})"),
        (
            "Non-trainable params",
            f"{non_trainable:,} ({readable_size(weight_bytes - trainable_bytes)})",
        ),
        ("Forward FLOPs per sample", f"{model.total('flops'):,}"),
        ("Activation memory per sample", readable_size(model.total("activation_bytes"))),
    ]
    for label, value in lines:
        console.print(f"[bold] {label}: [/]{value}")


def _shape_json(shape: OutputShape) -> Any:
    if isinstance(shape, list):
        return [_shape_json(s) for s in shape]
    return list(shape)


def as_json(model: InferredModel) -> dict[str, Any]:
    """docs/spec-format.md's machine-readable summary, plus FLOPs and memory totals."""
    return {
        "name": model.name,
        "layers": [
            {
                "name": r.name,
                "type": r.type,
                "output_shape": _shape_json(r.output_shape),
                "params": r.params,
                "trainable_params": r.trainable_params,
                "non_trainable_params": r.non_trainable_params,
                "inputs": list(r.inputs),
                "flops": r.flops,
                "activation_bytes": r.activation_bytes,
            }
            for r in model.rows
        ],
        "total_params": model.total("params"),
        "trainable_params": model.total("trainable_params"),
        "non_trainable_params": model.total("non_trainable_params"),
        "weight_bytes": model.total("weight_bytes"),
        "flops": model.total("flops"),
        "activation_bytes": model.total("activation_bytes"),
    }
