"""Diagnostics as data, and the one table of diagnostic codes with the documentation of each.

A code's first letter is its severity (`E` error, `W` warning); the hundreds group the stage that
finds it: 0 reading the file, 1 the schema, 2 the model graph, 3 shapes, 4 compile, 5 data and fit,
6 the `tune` search.
docs/diagnostics.md is rendered from `CODES` (`python -m modelspec.diagnostics`), and
`modelspec explain CODE` prints one entry.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]
KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Code:
    """One kind of problem: a short title and the explanation `modelspec explain` prints."""

    title: str
    explanation: str


CODES: dict[str, Code] = {
    "E001": Code(
        "YAML syntax error",
        "The file is not valid YAML (an unclosed bracket, a bad indent, a tab, a duplicate "
        "document). The position is where the YAML parser gave up, which is usually on or just "
        "after the mistake.",
    ),
    "E002": Code(
        "unreadable file",
        "The path does not exist, is not a file, or cannot be read as UTF-8 text. `lint` exits "
        "with status 2 when a path it was given cannot be read.",
    ),
    "E003": Code(
        "not a spec document",
        "The document must be a mapping with at least a `model` section; an empty file, a list "
        "or a scalar at the top level is not a spec.",
    ),
    "E004": Code(
        "duplicate key",
        "The same key appears twice in one mapping. YAML parsers silently keep the last one, "
        "which hides mistakes, so it is an error here.",
    ),
    "E005": Code(
        "bad override",
        "A `--set KEY=VALUE` override is malformed or names a path that cannot exist, e.g. an "
        "index past the end of a list or a key below a scalar.",
    ),
    "E101": Code(
        "unknown key",
        "A key that this section or layer does not take. Keys are Keras's argument names; the "
        "message suggests the closest known key (`unit` -> `units`).",
    ),
    "E102": Code(
        "missing key",
        "A required key is absent, e.g. `units` on a Dense layer or `model` at the top level.",
    ),
    "E103": Code(
        "invalid value",
        "A value has the wrong type or is out of range, e.g. `units: -3`, `rate: 1.5` or "
        "`epochs: many`. The message says what was expected and what was found.",
    ),
    "E104": Code(
        "unknown name",
        "An unknown layer type, activation, initializer, regularizer, constraint, optimizer, "
        "schedule, loss, metric or callback. Names are Keras's; the message suggests the "
        "closest known name (`Dence` -> `Dense`).",
    ),
    "E105": Code(
        "unsupported version",
        "`version` must be 1, the only format version this release reads.",
    ),
    "E201": Code(
        "undefined name",
        "A layer's `inputs` names something that is neither a model input nor a layer entry.",
    ),
    "E202": Code(
        "duplicate name",
        "Two layers or inputs share a name, or an output is listed twice. Every name in a model "
        "must be unique, because `inputs`, `outputs` and `shares` refer to entries by name.",
    ),
    "E203": Code(
        "cycle",
        "Layers feed each other in a loop, so no order exists in which to run them. `inputs` "
        "must name a model input or an earlier layer.",
    ),
    "E204": Code(
        "bad outputs",
        "A functional model's `outputs` is missing or names nothing that exists.",
    ),
    "E205": Code(
        "ambiguous input",
        "The first layer of a functional model with several inputs omits `inputs`; with one "
        "input it would default to that input, with several it must say which.",
    ),
    "E206": Code(
        "bad shares",
        "An entry with `shares` must name an earlier layer entry and carry only `name`, "
        "`shares` and `inputs`: the shared layer's arguments are those of the entry it shares.",
    ),
    "E207": Code(
        "no input",
        "The model does not say what it takes: a sequential model needs a first "
        "`{type: Input, shape: [...]}` entry or `input_shape` on its first layer, a functional "
        "model needs `inputs`.",
    ),
    "E208": Code(
        "bad model structure",
        "The `model` section is malformed: an unknown `type`, an entry that is not a mapping, "
        "`inputs`/`shares` in a sequential model, or an Input entry that is not first.",
    ),
    "E209": Code(
        "bad input shape",
        "An input shape must be a list of positive integers (null for a free dimension), "
        "without the batch dimension, and its dtype one of float32, float64, int32, int64, "
        "bool, string.",
    ),
    "W201": Code(
        "unreachable layer",
        "A layer feeds no model output, so it would never run and its weights never train.",
    ),
    "W202": Code(
        "unused input",
        "A model input feeds no output; data for it would be read and ignored.",
    ),
    "E301": Code(
        "incompatible shape",
        "A layer cannot take the shape that reaches it, e.g. Dense after a 2D convolution "
        "without a Flatten, or a Conv2D on a rank-2 input. The message gives the shape and the "
        "hint the fix.",
    ),
    "E302": Code(
        "shared layer on an incompatible input",
        "A `shares` entry calls a layer on an input whose shape differs from the one the layer "
        "was built for, so the same weights cannot apply.",
    ),
    "E303": Code(
        "merge of incompatible shapes",
        "A merge layer (Add, Concatenate, Dot, ...) receives shapes it cannot combine, or the "
        "wrong number of inputs.",
    ),
    "E304": Code(
        "unsafe or invalid Lambda expression",
        "A Lambda `expression` is not a formula in the safe language: only `x` (or `x[i]`), "
        "numbers, arithmetic and the listed functions are allowed. Expressions are parsed, "
        "never run as Python.",
    ),
    "E305": Code(
        "Normalization cannot adapt here",
        "A Normalization layer without `mean` and `variance` adapts to the training data as "
        "the layers before it transform it; only parameter-free layers may stand between it "
        "and the input.",
    ),
    "E306": Code(
        "wrong number of inputs",
        "A single-input layer is given several inputs in `inputs`; merge them first "
        "(Concatenate, Add, ...). A merge layer given too few inputs is E303.",
    ),
    "E401": Code(
        "loss does not fit the output",
        "The loss cannot apply to the output it is attached to, e.g. binary_crossentropy on a "
        "10-way softmax, or sparse_categorical_crossentropy on a one-unit output.",
    ),
    "W402": Code(
        "from_logits after a probability activation",
        "`from_logits: true` tells the loss its input is raw scores, but the output already "
        "ends in sigmoid or softmax; the loss would squash twice. Drop the activation or set "
        "`from_logits: false`.",
    ),
    "E403": Code(
        "metric does not fit the loss",
        "A metric that cannot be computed from the labels this loss expects, e.g. "
        "sparse_categorical_accuracy with binary_crossentropy or accuracy with a regression "
        "loss.",
    ),
    "E404": Code(
        "unknown output in a per-output setting",
        "A `loss`, `loss_weights` or `metrics` map is keyed by a name that is not one of the "
        "model's outputs.",
    ),
    "W405": Code(
        "probability loss on an unbounded output",
        "A crossentropy loss without `from_logits: true` on an output with no sigmoid or "
        "softmax: the loss expects probabilities. Add the activation or set `from_logits: "
        "true`.",
    ),
    "E501": Code(
        "validation_split out of range",
        "`fit.validation_split` must lie strictly between 0 and 1 (Keras takes the last "
        "fraction of the training data before shuffling).",
    ),
    "E502": Code(
        "missing data file",
        "A `data` path does not exist. Paths are relative to the spec file's folder.",
    ),
    "E601": Code(
        "tune path names no setting",
        "A key of `tune.space` is a dotted path, as `--set` takes it (`fit.batch_size`, "
        "`model.layers[1].units`), that leads to no setting the spec accepts: a list item "
        "that is not there, or a name the section does not know.",
    ),
    "E602": Code(
        "tune value does not fit its setting",
        "An end of a `tune.space` range, or one of its choices, is a value the setting at that "
        "path does not take (a float for `units`, a name that is not an activation).",
    ),
    "E603": Code(
        "grid search over a continuous range",
        "`sampler: grid` tries every value of the space, so each float range needs a `step` "
        "(or list its values with `type: categorical`).",
    ),
    "E604": Code(
        "tune metric without validation data",
        "The search compares trials by a validation metric (`val_...`, the default), but the "
        "spec has neither `fit.validation_split` nor `data.validation`.",
    ),
}


# The code of each kind of structural problem `engine.spec_graph` reports (keyed by the
# kind's value, so this table loads no engine code).
GRAPH_PROBLEM_CODES: dict[str, str] = {
    "undefined_name": "E201",
    "duplicate_name": "E202",
    "cycle": "E203",
    "bad_output": "E204",
    "ambiguous_input": "E205",
    "bad_shares": "E206",
    "no_input": "E207",
    "bad_model": "E208",
    "bad_shape": "E209",
    "unreached": "W201",
    "unused_input": "W202",
}

_SUGGESTION = re.compile(r"did you mean '([^']*)'\?")


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in one file: where it is, its code, and what to do about it.

    `end_line`/`end_column` are where the offending key or value ends, when it is one scalar.
    `origin` is set when the problem is in a `--set KEY=VALUE` override rather than the file
    (it holds `KEY=VALUE`); the line and column are then 1:1 and mean nothing.
    """

    code: str
    severity: Severity
    path: str
    line: int
    column: int
    message: str
    hint: str | None = None
    key: KeyPath = field(default=())
    end_line: int | None = None
    end_column: int | None = None
    origin: str | None = None

    @property
    def did_you_mean(self) -> str | None:
        """The closest known name the message suggests, if any."""
        match = _SUGGESTION.search(self.message)
        return match.group(1) if match else None

    @property
    def where(self) -> str:
        """`path:line:col`, or `path: --set KEY=VALUE` for a problem in an override."""
        if self.origin is not None:
            return f"{self.path}: --set {self.origin}"
        return f"{self.path}:{self.line}:{self.column}"

    @property
    def message_with_fix(self) -> str:
        """The message and its fix, as every format meant for people shows them."""
        return self.message + (f" (fix: {self.hint})" if self.hint else "")

    @property
    def located_message(self) -> str:
        """`message_with_fix`, led by the override it came from (for formats with no `where`)."""
        origin = f"--set {self.origin}: " if self.origin is not None else ""
        return origin + self.message_with_fix

    def as_json(self) -> dict[str, object]:
        """The `lint --format json` record (docs/spec-format.md): the six keys, then the rest."""
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "end_line": self.end_line,
            "end_column": self.end_column,
            "fix": self.hint,
            "did_you_mean": self.did_you_mean,
            "origin": None if self.origin is None else f"--set {self.origin}",
        }


def severity_of(code: str) -> Severity:
    return "error" if code.startswith("E") else "warning"


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`; did you mean 'units'?` for the closest known name, or an empty string."""
    options = sorted({k for k in known if isinstance(k, str)})
    lowered = {o.lower(): o for o in options}
    if name.lower() in lowered and lowered[name.lower()] != name:
        return f"; did you mean {lowered[name.lower()]!r}?"
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def explain(code: str) -> str:
    """The documentation of one code, as `modelspec explain` prints it (KeyError if unknown)."""
    entry = CODES[code.upper()]
    return f"{code.upper()} ({severity_of(code.upper())}): {entry.title}\n\n{entry.explanation}\n"


def render_docs() -> str:
    """docs/diagnostics.md, generated from `CODES` so the two never disagree."""
    lines = [
        "# Diagnostic codes",
        "",
        "`modelspec lint` and `modelspec summary` report problems as "
        "`path:line:col: CODE message`.",
        "The first letter of a code is its severity (`E` error, `W` warning; `lint --strict` "
        "fails on",
        "warnings too); the hundreds group the stage that finds it: 0 reading the file, "
        "1 the schema,",
        "2 the model graph, 3 shapes, 4 compile, 5 data and fit, 6 the `tune` search. "
        "Codes are stable. "
        "`modelspec explain CODE`",
        "prints one entry. This page is generated: `python -m modelspec.diagnostics > "
        "docs/diagnostics.md`.",
        "",
        "Formats: `--format text` (one line per problem, then a count), `--format json` (a list",
        'of `{"path", "line", "column", "code", "severity", "message", "end_line", "end_column",',
        '"fix", "did_you_mean", "origin"}`, 1-based; the end where the problem is one scalar,',
        "else null), `--format github` (GitHub Actions `::error`/`::warning` annotations) and",
        "`--format sarif` (SARIF 2.1.0, for GitHub code scanning's `upload-sarif`). Every format",
        "carries the fix and the did-you-mean. A problem in a `train --set KEY=VALUE` override is",
        "reported as `path: --set KEY=VALUE: CODE message` (`origin` in JSON). Exit codes: 0 no",
        "errors (warnings are fine unless `--strict`), 1 findings, 2 bad usage or an unreadable",
        "path (E002).",
        "",
        "| code | severity | problem |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {c} | {severity_of(c)} | {e.title} |" for c, e in CODES.items()]
    for c, e in CODES.items():
        lines += ["", f"## {c}: {e.title}", "", e.explanation]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_docs(), end="")
