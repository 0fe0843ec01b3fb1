"""Lambda's safe formulas: a tokenizer and recursive-descent parser for a tiny array language.

A formula such as `mean(square(x), axis=-1, keepdims=true)` or `x[0] * sigmoid(x[1])` becomes a
tree of whitelisted nodes; nothing from the text is ever executed as Python. The tree infers its
output shape from the input shapes, and evaluates forward and backward (vector-Jacobian
products) on backend arrays, so Lambda is a fused layer like any other.

Grammar (precedence low to high, `**` binds right and tighter than unary minus, as in Python):
    expr   := term (("+" | "-") term)*
    term   := unary (("*" | "/") unary)*
    unary  := "-" unary | power
    power  := atom ("**" unary)?
    atom   := NUMBER | "x" ("[" INT "]")? | NAME "(" args ")" | "(" expr ")"
    args   := expr ("," expr)* ("," NAME "=" value)*     value := INT | [INT, ...] | true | false
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine import activations
from engine.lazy import autodiff, backend

Array = Any
Shape = tuple[int | None, ...]
MAX_LENGTH = 2000
MAX_DEPTH = 64


class ExpressionError(ValueError):
    """A formula that cannot be parsed or applied; `column` is 1-based in the formula text."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"column {column}: {message}")
        self.message = message
        self.column = column


# ----- the whitelisted functions ------------------------------------------------------------
Forward = Callable[..., Array]
Vjp = Callable[..., tuple[Array | None, ...]]


@dataclass(frozen=True)
class Function:
    """An element-wise function: `forward(xp, *args)`, `vjp(xp, args, y, g)` -> one grad per arg."""

    arity: int
    forward: Forward
    vjp: Vjp


def _act(name: str) -> Function:
    act = activations.get(name)
    return Function(1, lambda xp, a: act(a), lambda xp, args, y, g: (act.grad(args[0], y, g),))


def _pick_vjp(xp: Any, args: Sequence[Array], y: Array, g: Array) -> tuple[Array, Array]:
    """Gradient of minimum/maximum: the first argument wins ties, as TensorFlow does."""
    first = args[0] == y
    return g * first, g * ~first


def _clip_vjp(xp: Any, args: Sequence[Array], y: Array, g: Array) -> tuple[Array, ...]:
    a, lo, hi = args
    below, above = a < lo, a > hi
    return g * ~(below | above), g * below, g * above


FUNCTIONS: dict[str, Function] = {
    "exp": Function(1, lambda xp, a: xp.exp(a), lambda xp, args, y, g: (g * y,)),
    "log": Function(1, lambda xp, a: xp.log(a), lambda xp, args, y, g: (g / args[0],)),
    "sqrt": Function(1, lambda xp, a: xp.sqrt(a), lambda xp, args, y, g: (g * 0.5 / y,)),
    "abs": Function(1, lambda xp, a: xp.abs(a), lambda xp, args, y, g: (g * xp.sign(args[0]),)),
    "square": Function(1, lambda xp, a: a * a, lambda xp, args, y, g: (2.0 * g * args[0],)),
    "sin": Function(1, lambda xp, a: xp.sin(a), lambda xp, args, y, g: (g * xp.cos(args[0]),)),
    "cos": Function(1, lambda xp, a: xp.cos(a), lambda xp, args, y, g: (-g * xp.sin(args[0]),)),
    "tanh": _act("tanh"),
    "sigmoid": _act("sigmoid"),
    "relu": _act("relu"),
    "softplus": _act("softplus"),
    "minimum": Function(2, lambda xp, a, b: xp.minimum(a, b), _pick_vjp),
    "maximum": Function(2, lambda xp, a, b: xp.maximum(a, b), _pick_vjp),
    "clip": Function(3, lambda xp, a, lo, hi: xp.minimum(xp.maximum(a, lo), hi), _clip_vjp),
}


def _binary_vjp_pow(xp: Any, args: Sequence[Array], y: Array, g: Array) -> tuple[Array, Array]:
    a, b = args
    return g * b * a ** (b - 1), g * y * xp.log(xp.where(a > 0, a, 1))


OPERATORS: dict[str, Function] = {
    "+": Function(2, lambda xp, a, b: a + b, lambda xp, args, y, g: (g, g)),
    "-": Function(2, lambda xp, a, b: a - b, lambda xp, args, y, g: (g, -g)),
    "*": Function(2, lambda xp, a, b: a * b, lambda xp, args, y, g: (g * args[1], g * args[0])),
    "/": Function(
        2,
        lambda xp, a, b: a / b,
        lambda xp, args, y, g: (g / args[1], -g * y / args[1]),
    ),
    "**": Function(2, lambda xp, a, b: a**b, _binary_vjp_pow),
    "neg": Function(1, lambda xp, a: -a, lambda xp, args, y, g: (-g,)),
}


def _reduce_extreme_vjp(xp: Any, a: Array, y: Array, g: Array, axes: tuple[int, ...]) -> Array:
    """Ties share the gradient equally, as TensorFlow's and PyTorch's max/min reductions do."""
    hit = a == y
    return g * hit / hit.sum(axis=axes, keepdims=True)


REDUCTIONS: dict[str, tuple[Callable[..., Array], Callable[..., Array]]] = {
    "sum": (lambda xp, a, axes: a.sum(axis=axes, keepdims=True), lambda xp, a, y, g, axes: g),
    "mean": (
        lambda xp, a, axes: a.mean(axis=axes, keepdims=True),
        lambda xp, a, y, g, axes: g / math.prod(a.shape[i] for i in axes),
    ),
    "max": (lambda xp, a, axes: a.max(axis=axes, keepdims=True), _reduce_extreme_vjp),
    "min": (lambda xp, a, axes: a.min(axis=axes, keepdims=True), _reduce_extreme_vjp),
}
KEYWORDS = ("axis", "keepdims")


# ----- the tree -----------------------------------------------------------------------------
@dataclass
class Node:
    """One operation of a formula; `column` points at it in the text for error messages."""

    column: int
    children: list[Node] = field(default_factory=list)

    def shape(self, shapes: list[Shape], inputs: list[Shape]) -> Shape:
        raise NotImplementedError

    def forward(self, xp: Any, values: list[Array], inputs: list[Array], dtype: Any) -> Array:
        raise NotImplementedError

    def vjp(self, xp: Any, values: list[Array], y: Array, g: Array) -> Sequence[Array | None]:
        return ()


@dataclass
class Const(Node):
    value: float = 0.0

    def shape(self, shapes: list[Shape], inputs: list[Shape]) -> Shape:
        return ()

    def forward(self, xp: Any, values: list[Array], inputs: list[Array], dtype: Any) -> Array:
        return xp.asarray(self.value, dtype=dtype)


@dataclass
class Input(Node):
    index: int = 0

    def shape(self, shapes: list[Shape], inputs: list[Shape]) -> Shape:
        return tuple(inputs[self.index])

    def forward(self, xp: Any, values: list[Array], inputs: list[Array], dtype: Any) -> Array:
        return inputs[self.index]


@dataclass
class Apply(Node):
    """An operator or an element-wise function over broadcast arguments."""

    fn: Function = field(default_factory=lambda: OPERATORS["+"])
    name: str = "+"

    def shape(self, shapes: list[Shape], inputs: list[Shape]) -> Shape:
        return broadcast_shapes(shapes, self.column, self.name)

    def forward(self, xp: Any, values: list[Array], inputs: list[Array], dtype: Any) -> Array:
        return self.fn.forward(xp, *values)

    def vjp(self, xp: Any, values: list[Array], y: Array, g: Array) -> Sequence[Array | None]:
        return self.fn.vjp(xp, values, y, g)


@dataclass
class Reduce(Node):
    name: str = "sum"
    axis: tuple[int, ...] | None = None
    keepdims: bool = False

    def axes(self, rank: int) -> tuple[int, ...]:
        """Non-negative axes; None means every axis but the batch."""
        if self.axis is None:
            return tuple(range(1, rank))
        axes = []
        for a in self.axis:
            if not -rank <= a < rank:
                raise ExpressionError(
                    f"{self.name}: axis {a} is out of range for a rank-{rank} value", self.column
                )
            axes.append(a % rank)
        if 0 in axes:
            raise ExpressionError(
                f"{self.name}: axis 0 is the batch, which a layer cannot reduce", self.column
            )
        return tuple(sorted(set(axes)))

    def shape(self, shapes: list[Shape], inputs: list[Shape]) -> Shape:
        (s,) = shapes
        axes = self.axes(len(s))
        if self.keepdims:
            return tuple(1 if i in axes else d for i, d in enumerate(s))
        return tuple(d for i, d in enumerate(s) if i not in axes)

    def forward(self, xp: Any, values: list[Array], inputs: list[Array], dtype: Any) -> Array:
        (a,) = values
        axes = self.axes(a.ndim)
        y = REDUCTIONS[self.name][0](xp, a, axes)
        return (
            y if self.keepdims else y.reshape([d for i, d in enumerate(a.shape) if i not in axes])
        )

    def vjp(self, xp: Any, values: list[Array], y: Array, g: Array) -> Sequence[Array | None]:
        (a,) = values
        axes = self.axes(a.ndim)
        kept = [1 if i in axes else d for i, d in enumerate(a.shape)]
        yk, gk = y.reshape(kept), g.reshape(kept)
        return (xp.broadcast_to(REDUCTIONS[self.name][1](xp, a, yk, gk, axes), a.shape),)


def broadcast_shapes(shapes: Sequence[Shape], column: int, what: str) -> Shape:
    """NumPy broadcasting over shapes with unknown (None) sizes."""
    rank = max((len(s) for s in shapes), default=0)
    out: list[int | None] = []
    for i in range(rank):
        sizes = {s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0}
        known = sizes - {1, None}
        if len(known) > 1:
            raise ExpressionError(
                f"{what}: shapes {', '.join(str(tuple(s)) for s in shapes)} do not broadcast",
                column,
            )
        out.append(known.pop() if known else (None if None in sizes else 1))
    return tuple(out)


# ----- the tokenizer and parser -------------------------------------------------------------
_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<op>\*\*|[-+*/()\[\],=]))"
)
_ALLOWED = ", ".join(["x", "numbers", *FUNCTIONS, *REDUCTIONS])


@dataclass(frozen=True)
class Token:
    kind: str  # number | name | op | end
    text: str
    column: int


def tokenize(source: str) -> list[Token]:
    """Tokens up to the first character outside the language, which becomes a `bad` token so
    that the parser reports whichever problem comes first in the text."""
    tokens = []
    pos = 0
    while source[pos:].strip():
        m = _TOKEN.match(source, pos)
        if m is None or m.lastgroup is None:
            col = len(source) - len(source[pos:].lstrip()) + 1
            tokens.append(Token("bad", source[col - 1], col))
            break
        tokens.append(Token(m.lastgroup, m.group(m.lastgroup), m.start(m.lastgroup) + 1))
        pos = m.end()
    tokens.append(Token("end", "", len(source) + 1))
    return tokens


class _Parser:
    def __init__(self, source: str, n_inputs: int | None) -> None:
        self.tokens = tokenize(source)
        self.pos = 0
        self.depth = 0
        self.n_inputs = n_inputs
        self.bare_x = False
        self.indexed = False

    @property
    def tok(self) -> Token:
        tok = self.tokens[self.pos]
        if tok.kind == "bad":
            why = "attributes are not allowed" if tok.text == "." else "it is not part of a formula"
            raise ExpressionError(f"unexpected character {tok.text!r}: {why}", tok.column)
        return tok

    def take(self, text: str | None = None) -> Token:
        tok = self.tok
        if text is not None and tok.text != text:
            found = "the end" if tok.kind == "end" else repr(tok.text)
            raise ExpressionError(f"expected {text!r}; found {found}", tok.column)
        self.pos += 1
        return tok

    def parse(self) -> Node:
        node = self.expr()
        if self.tok.kind != "end":
            raise ExpressionError(f"unexpected {self.tok.text!r}", self.tok.column)
        return node

    def nest(self, parse: Callable[[], Node]) -> Node:
        """Run a recursive rule, refusing formulas nested deeper than MAX_DEPTH."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"formula nests deeper than {MAX_DEPTH} levels", self.tok.column)
        node = parse()
        self.depth -= 1
        return node

    def expr(self) -> Node:
        return self.nest(self.sum)

    def sum(self) -> Node:
        node = self.term()
        while self.tok.text in ("+", "-"):
            op = self.take()
            node = Apply(op.column, [node, self.term()], OPERATORS[op.text], op.text)
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.tok.text in ("*", "/"):
            op = self.take()
            node = Apply(op.column, [node, self.unary()], OPERATORS[op.text], op.text)
        return node

    def unary(self) -> Node:
        if self.tok.text == "-":
            op = self.take()
            inner = self.nest(self.unary)
            if isinstance(inner, Const):
                return Const(op.column, value=-inner.value)
            return Apply(op.column, [inner], OPERATORS["neg"], "-")
        return self.power()

    def power(self) -> Node:
        node = self.atom()
        if self.tok.text == "**":
            op = self.take()
            node = Apply(op.column, [node, self.nest(self.unary)], OPERATORS["**"], "**")
        return node

    def atom(self) -> Node:
        tok = self.tok
        if tok.kind == "number":
            self.take()
            return Const(tok.column, value=float(tok.text))
        if tok.text == "(":
            self.take()
            node = self.expr()
            self.take(")")
            return node
        if tok.kind == "name":
            self.take()
            if tok.text == "x":
                return self.input(tok)
            if tok.text in FUNCTIONS or tok.text in REDUCTIONS:
                return self.call(tok)
            raise ExpressionError(
                f"unknown name {tok.text!r}; a formula may use {_ALLOWED}", tok.column
            )
        found = "the end of the formula" if tok.kind == "end" else repr(tok.text)
        raise ExpressionError(f"expected a number, x or a function; found {found}", tok.column)

    def input(self, tok: Token) -> Node:
        if self.tok.text != "[":
            if self.n_inputs is not None and self.n_inputs > 1:
                raise ExpressionError(
                    f"there are {self.n_inputs} inputs: use x[0] ... x[{self.n_inputs - 1}]",
                    tok.column,
                )
            self.bare_x = True
            return Input(tok.column, index=0)
        self.take("[")
        idx = self.tok
        if idx.kind != "number" or not idx.text.isdigit():
            raise ExpressionError("x[...] takes a whole number: x[0], x[1], ...", idx.column)
        self.take()
        self.take("]")
        index = int(idx.text)
        if self.n_inputs is not None and index >= self.n_inputs:
            raise ExpressionError(
                f"x[{index}] does not exist: there {'is' if self.n_inputs == 1 else 'are'} "
                f"{self.n_inputs} input{'s' if self.n_inputs != 1 else ''}",
                idx.column,
            )
        self.indexed = True
        return Input(tok.column, index=index)

    def call(self, name: Token) -> Node:
        self.take("(")
        args: list[Node] = []
        kwargs: dict[str, Any] = {}
        while self.tok.text != ")":
            if args or kwargs:
                self.take(",")
            if self.tok.kind == "name" and self.tokens[self.pos + 1].text == "=":
                key = self.take()
                self.take("=")
                if key.text not in KEYWORDS or name.text not in REDUCTIONS:
                    raise ExpressionError(
                        f"{name.text} takes no keyword {key.text!r}"
                        + (
                            "; reductions take axis and keepdims" if name.text in REDUCTIONS else ""
                        ),
                        key.column,
                    )
                kwargs[key.text] = self.keyword_value(key.text)
            elif kwargs:
                raise ExpressionError("positional argument after a keyword", self.tok.column)
            else:
                args.append(self.expr())
        self.take(")")
        if name.text in REDUCTIONS:
            if len(args) != 1:
                raise ExpressionError(f"{name.text} takes one value; got {len(args)}", name.column)
            return Reduce(
                name.column, args, name.text, kwargs.get("axis"), kwargs.get("keepdims", False)
            )
        fn = FUNCTIONS[name.text]
        if len(args) != fn.arity:
            raise ExpressionError(
                f"{name.text} takes {fn.arity} argument{'s' if fn.arity > 1 else ''}; "
                f"got {len(args)}",
                name.column,
            )
        return Apply(name.column, args, fn, name.text)

    def keyword_value(self, key: str) -> Any:
        tok = self.tok
        if key == "keepdims":
            if tok.text.lower() not in ("true", "false"):
                raise ExpressionError("keepdims takes true or false", tok.column)
            self.take()
            return tok.text.lower() == "true"
        if tok.text == "[":
            self.take()
            axes = [self.integer()]
            while self.tok.text == ",":
                self.take()
                axes.append(self.integer())
            self.take("]")
            return tuple(axes)
        return (self.integer(),)

    def integer(self) -> int:
        sign = -1 if self.tok.text == "-" else 1
        if sign < 0:
            self.take()
        tok = self.tok
        if tok.kind != "number" or not tok.text.isdigit():
            raise ExpressionError("axis takes an integer or a list of integers", tok.column)
        self.take()
        return sign * int(tok.text)


# ----- the compiled formula -----------------------------------------------------------------
@dataclass
class Expr:
    """A parsed formula, flattened to its nodes in evaluation (post) order."""

    source: str
    root: Node
    indexed: bool
    n_inputs: int
    steps: list[Node] = field(init=False)
    slots: dict[int, int] = field(init=False)

    def __post_init__(self) -> None:
        self.steps = []
        self.slots = {}

        def visit(node: Node) -> None:
            for child in node.children:
                visit(child)
            self.slots[id(node)] = len(self.steps)
            self.steps.append(node)

        visit(self.root)
        if not any(isinstance(s, Input) for s in self.steps):
            raise ExpressionError("the formula never uses its input x", 1)

    def _child_slots(self, node: Node) -> list[int]:
        return [self.slots[id(c)] for c in node.children]

    def output_shape(self, input_shapes: Sequence[Shape]) -> Shape:
        """The result's shape for these (batch-inclusive) input shapes."""
        shapes: list[Shape] = []
        inputs = [tuple(s) for s in input_shapes]
        for node in self.steps:
            if isinstance(node, Input) and node.index >= len(inputs):
                raise ExpressionError(
                    f"x[{node.index}] does not exist: the layer has {len(inputs)} input(s)",
                    node.column,
                )
            shapes.append(node.shape([shapes[i] for i in self._child_slots(node)], inputs))
        return shapes[-1]

    def forward(self, inputs: Sequence[Array]) -> tuple[Array, list[Array]]:
        """The value, and every node's value (the cache backward needs)."""
        xp = backend.backend_of(inputs[0]).xp
        dtype = inputs[0].dtype
        values: list[Array] = []
        for node in self.steps:
            values.append(
                node.forward(xp, [values[i] for i in self._child_slots(node)], list(inputs), dtype)
            )
        return values[-1], values

    def backward(self, values: list[Array], grad: Array) -> list[Array | None]:
        """Vector-Jacobian product: the gradient of each input (None where it is unused)."""
        xp = backend.backend_of(grad).xp
        grads: list[Array | None] = [None] * len(self.steps)
        grads[-1] = grad
        result: list[Array | None] = [None] * self.n_inputs
        for slot in range(len(self.steps) - 1, -1, -1):
            node, g = self.steps[slot], grads[slot]
            if g is None:
                continue
            if isinstance(node, Input):
                prev = result[node.index]
                result[node.index] = g if prev is None else prev + g
                continue
            kids = self._child_slots(node)
            for i, cg in zip(
                kids, node.vjp(xp, [values[i] for i in kids], values[slot], g), strict=False
            ):
                if cg is None or isinstance(self.steps[i], Const):
                    continue
                cg = autodiff.unbroadcast(cg, tuple(values[i].shape))
                grads[i] = cg if grads[i] is None else grads[i] + cg
        return result


def parse(expression: str, n_inputs: int | None = None) -> Expr:
    """Parse a formula over `x` (one input) or `x[0]`, `x[1]`, ... (n_inputs of them).

    With n_inputs None, either form is accepted and the count comes from the highest x[i].
    Raises ExpressionError(message, column) for anything outside the language.
    """
    if len(expression) > MAX_LENGTH:
        raise ExpressionError(f"formula is longer than {MAX_LENGTH} characters", MAX_LENGTH)
    if not expression.strip():
        raise ExpressionError("the formula is empty", 1)
    parser = _Parser(expression, n_inputs)
    root = parser.parse()
    if parser.bare_x and parser.indexed:
        raise ExpressionError("use either x (one input) or x[0], x[1], ... (several), not both", 1)
    count = n_inputs
    if count is None:
        indices = [0]
        stack = [root]
        while stack:
            node = stack.pop()
            stack.extend(node.children)
            if isinstance(node, Input):
                indices.append(node.index)
        count = max(indices) + 1
    return Expr(expression, root, parser.indexed, count)
