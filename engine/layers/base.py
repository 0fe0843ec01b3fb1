"""The Layer contract: everything about a layer type lives in its own module, on one class.

A layer module declares, in one place:
- `config_class`: the pydantic model of its spec entry (`type: Literal["Dense"]` plus Keras's
  arguments and defaults), so the spec schema and the Python API read the same fields;
- `compute_output_shape(input_shape)`: the shape rule, batch dimension included as `None`,
  raising `ShapeError` (with the offending field and a hint) for inputs it cannot take;
- `weight_specs(input_shape)`: its weights (name, shape, initializer, trainable, regularizer,
  constraint) in Keras's order, trainable ones first. Parameter counts, allocation,
  checkpoint keys and the summary all come from this list;
- `forward(params, inputs, ctx)` / `backward(params, cache, grad_output, grads, ctx)`: the
  math on backend arrays, a fused pair that both the planned training step and the tape use;
- `flops(input_shape)`: forward floating-point operations per sample, for the summary.

Custom layers from the Python API instead override `build` / `call` with Tensor ops; the
default `forward` / `backward` then run `call` under a GradientTape, so every layer looks the
same to the training loop.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import ConfigDict

from engine import constraints as _constraints
from engine import initializers as _initializers
from engine import lazy
from engine import regularizers as _regularizers
from engine import rng as _rng
from engine.call_context import CallContext
from engine.config.base import SpecConfig
from engine.lazy import autodiff, backend, tensor
from engine.lazy import numpy as np

if TYPE_CHECKING:
    from engine.tensor import Tensor, Variable


Shape = tuple[int | None, ...]
Array = Any


class ShapeError(ValueError):
    """A layer cannot take an input of this shape; `field` names the config key to blame."""

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.hint = hint


class LayerConfig(SpecConfig):
    """Arguments every layer takes. Subclasses add `type: Literal[...]` and their own."""

    model_config = ConfigDict(populate_by_name=True)
    type: str
    name: str | None = None
    trainable: bool = True
    dtype: Literal["float32", "float64"] | None = None
    input_shape: tuple[int | None, ...] | None = None


@dataclass(frozen=True)
class WeightSpec:
    """One weight a layer owns: enough to count, allocate, initialize and save it."""

    name: str
    shape: tuple[int, ...]
    initializer: Any = "zeros"
    trainable: bool = True
    regularizer: Any = None
    constraint: Any = None

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def configured_weight(
    config: Any, name: str, shape: tuple[int, ...], prefix: str | None = None
) -> WeightSpec:
    """A trainable weight set up by the config's `<prefix>_initializer`, `_regularizer` and
    `_constraint` fields, Keras's naming (the prefix is the weight's name unless given)."""
    stem = prefix or name
    return WeightSpec(
        name,
        shape,
        getattr(config, f"{stem}_initializer"),
        True,
        getattr(config, f"{stem}_regularizer", None),
        getattr(config, f"{stem}_constraint", None),
    )


_name_counts: dict[str, int] = {}


def clear_session() -> None:
    """Restart automatic layer names at `dense`, `dense_1`, ... as Keras's clear_session does."""
    _name_counts.clear()


@functools.cache
def snake_case(type_name: str) -> str:
    """Keras's automatic name stem: Conv2D -> conv2d, BatchNormalization -> batch_normalization."""
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", type_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


def unique_name(stem: str) -> str:
    count = _name_counts.get(stem, 0)
    _name_counts[stem] = count + 1
    return stem if count == 0 else f"{stem}_{count}"


class SymbolicTensor:
    """A placeholder flowing through the Functional API: a shape, a dtype and where it came from."""

    def __init__(
        self,
        shape: Shape,
        dtype: str = "float32",
        layer: Layer | None = None,
        inputs: Sequence[SymbolicTensor] = (),
        name: str | None = None,
    ) -> None:
        self.shape = tuple(shape)
        self.dtype = dtype
        self.layer = layer
        self.inputs = tuple(inputs)
        self.name = name

    def __repr__(self) -> str:
        return f"<SymbolicTensor shape={self.shape} dtype={self.dtype} name={self.name!r}>"


class Layer:
    """Base of every layer. See the module docstring for the contract a layer type fills in."""

    type_name: ClassVar[str] = "Layer"
    config_class: ClassVar[type[LayerConfig]] = LayerConfig
    positional: ClassVar[tuple[str, ...]] = ()
    supports_masking: ClassVar[bool] = False
    multi_input: ClassVar[bool] = False
    # Named call inputs, in call order, that a spec may map (`inputs: {query: x, value: y}`);
    # a left-out one before a given one takes the port named in `port_defaults`.
    call_ports: ClassVar[tuple[str, ...]] = ()
    port_defaults: ClassVar[dict[str, str]] = {}
    # Two executors may run this layer's inference forward at once, one per thread: true for
    # built-in layers whose forward keeps no state on the layer (`engine.train.loops.predict`).
    concurrent_inference: ClassVar[bool] = False
    # Its `backward` takes d loss / d logits when `ctx.preactivation_grad` is set, so a
    # cross-entropy on its softmax or sigmoid output hands it that (engine.train.trainer).
    takes_logits_gradient: ClassVar[bool] = False
    # Non-trainable weights that training updates from each batch; data-parallel training
    # averages them over ranks after every step so that every rank keeps the same values.
    replica_averaged: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass with its own `backward` does not inherit the logits-gradient promise."""
        super().__init_subclass__(**kwargs)
        if "backward" in cls.__dict__ and "takes_logits_gradient" not in cls.__dict__:
            cls.takes_logits_gradient = False

    _init_arguments: dict[str, Any]

    def __new__(cls, *args: Any, **kwargs: Any) -> Layer:
        layer = super().__new__(cls)
        if cls.custom():
            layer._init_arguments = _init_arguments(cls, args, kwargs)
        return layer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        config = kwargs.pop("config", None)
        if config is None:
            if len(args) > len(self.positional):
                raise TypeError(
                    f"{self.type_name} takes at most {len(self.positional)} "
                    f"positional arguments; got {len(args)}"
                )
            kwargs.update(zip(self.positional, args, strict=False))
            if self.config_class is not LayerConfig or "type" in self.config_class.model_fields:
                kwargs.setdefault("type", self.type_name)
            config = self.config_class(**kwargs)
        self.config = config
        self.name: str = config.name or unique_name(snake_case(self._class_name()))
        self.trainable: bool = config.trainable
        self.dtype: str = config.dtype or "float32"
        self.built = False
        self.input_shape: Any = None
        self.output_shape: Any = None
        self._weights: list[Variable] = []
        self._specs: list[WeightSpec] = []

    @classmethod
    def custom(cls) -> bool:
        """A user's subclass (no `type_name` of its own): built from its constructor's arguments."""
        return "type_name" not in cls.__dict__

    @classmethod
    def _class_name(cls) -> str:
        """Keras names a layer after its class."""
        return cls.__name__ if cls.custom() else cls.type_name

    # ----- configuration -------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: dict[str, Any] | LayerConfig) -> Layer:
        """The layer of a `get_config()` mapping; a custom class gets it as keyword arguments,
        less the common ones (name, trainable, dtype) its `__init__` does not take."""
        if cls.custom() and isinstance(config, dict):
            kwargs = {k: v for k, v in config.items() if k != "type"}
            accepted = _parameters(cls.__init__)
            common = {
                k: kwargs.pop(k)
                for k in _COMMON
                if k in kwargs and k not in accepted and "..." not in accepted
            }
            layer = cls(**kwargs)
            layer.name = common.get("name", layer.name)
            layer.trainable = common.get("trainable", layer.trainable)
            layer.dtype = common.get("dtype", layer.dtype)
            return layer
        if isinstance(config, dict):
            config = cls.config_class(**{"type": cls.type_name, **config})
        return cls(config=config)

    def get_config(self) -> dict[str, Any]:
        """The spec entry for this layer, in JSON types, with its name filled in.

        A custom layer's entry is its class name and its constructor's arguments, as Keras 3
        records them; a subclass with other state overrides this and adds its keys."""
        if self.custom():
            data = {"type": type(self).__name__, **self._init_arguments}
            data.update(name=self.name, trainable=self.trainable, dtype=self.dtype)
            try:
                json.dumps(data)
            except TypeError:
                raise ValueError(
                    f"layer {self.name!r} ({type(self).__name__}) was made with arguments that "
                    f"are not plain values ({data}); define get_config() to return plain ones"
                ) from None
            return data
        data = self.config.model_dump(mode="json", exclude_none=True)
        data["name"] = self.name
        data["trainable"] = self.trainable
        return data

    # ----- pure shape rules ----------------------------------------------------------------
    def compute_output_shape(self, input_shape: Any) -> Any:
        """Output shape (batch included, as None) for an input shape; ShapeError if invalid."""
        return input_shape

    def weight_specs(self, input_shape: Any) -> list[WeightSpec]:
        """The weights this layer would create for `input_shape`, trainable ones first."""
        return []

    def flops(self, input_shape: Any) -> int:
        """Forward FLOPs per sample (multiply-adds count 2)."""
        return 0

    def count_params(self) -> int:
        if not self.built:
            raise ValueError(f"layer {self.name!r} is not built yet: call it on an input first")
        return sum(int(np.prod(w.shape)) for w in self._weights)

    # ----- weights -------------------------------------------------------------------------
    def build(self, input_shape: Any, rng: np.random.Generator | None = None) -> None:
        """Create the weights that `weight_specs` declares."""
        lazy.load_all()
        gen = rng if rng is not None else _rng.generator()
        for spec in self.weight_specs(input_shape):
            self.add_weight(
                name=spec.name,
                shape=spec.shape,
                initializer=spec.initializer,
                trainable=spec.trainable,
                regularizer=spec.regularizer,
                constraint=spec.constraint,
                rng=gen,
            )
        self.input_shape = input_shape
        self.built = True

    def add_weight(
        self,
        name: str | None = None,
        shape: Sequence[int] = (),
        initializer: Any = "glorot_uniform",
        trainable: bool = True,
        regularizer: Any = None,
        constraint: Any = None,
        dtype: Any = None,
        rng: np.random.Generator | None = None,
    ) -> Variable:
        """Create, initialize and track one weight (the custom-layer API, as in Keras)."""
        if isinstance(name, (tuple, list)) and not shape:
            name, shape = None, name
        wname = name or f"weight_{len(self._weights)}"
        shape = tuple(int(s) for s in shape)
        init = _initializers.get(initializer)
        value = init(shape, rng if rng is not None else _rng.generator(), dtype or self.dtype)
        var = tensor.Variable(value, trainable=trainable, name=f"{self.name}/{wname}")
        var.regularizer = _regularizers.get(regularizer)
        var.constraint = _constraints.get(constraint)
        self._weights.append(var)
        self._specs.append(
            WeightSpec(wname, shape, initializer, trainable, regularizer, constraint)
        )
        return var

    @property
    def weights(self) -> list[Variable]:
        return [w for w in self._weights if w.trainable] + [
            w for w in self._weights if not w.trainable
        ]

    @property
    def trainable_weights(self) -> list[Variable]:
        return [w for w in self._weights if w.trainable and self.trainable]

    @property
    def non_trainable_weights(self) -> list[Variable]:
        return [w for w in self._weights if not (w.trainable and self.trainable)]

    def get_weights(self) -> list[np.ndarray]:
        return [w.numpy() for w in self.weights]

    def set_weights(self, values: Sequence[Any]) -> None:
        weights = self.weights
        if len(values) != len(weights):
            raise ValueError(
                f"layer {self.name!r} has {len(weights)} weights; got {len(values)} arrays"
            )
        for w, v in zip(weights, values, strict=True):
            arr = np.asarray(v)
            if tuple(arr.shape) != w.shape:
                raise ValueError(f"weight {w.name!r} has shape {w.shape}; got {arr.shape}")
            w.assign(arr)

    @property
    def losses(self) -> list[Tensor]:
        """Regularization penalties of this layer's weights, as scalar tensors."""
        return [
            tensor.as_tensor(np.asarray(w.regularizer.penalty(w.data), dtype=self.dtype))
            for w in self._weights
            if w.regularizer is not None
        ]

    @property
    def input_spec(self) -> Any:
        return self.input_shape

    # ----- math on backend arrays ----------------------------------------------------------
    def forward(self, params: list[Array], inputs: Any, ctx: CallContext) -> tuple[Any, Any]:
        """Output and cache for backward. Default: run `call` under a tape (custom layers)."""
        xs = [tensor.Tensor(a) for a in (inputs if isinstance(inputs, (list, tuple)) else [inputs])]
        tape = autodiff.GradientTape(persistent=True)
        with tape:
            for x in xs:
                if x.dtype.is_floating:
                    tape.watch(x)
            out = self._run_call(xs, ctx.training, ctx.mask)
        return tensor.as_tensor(out).data, (tape, xs, out)

    def backward(
        self,
        params: list[Array],
        cache: Any,
        grad_output: Array,
        grads: list[Array | None],
        ctx: CallContext,
    ) -> Any:
        """Gradient for the inputs; writes each weight's gradient into `grads[i]` (if not None)."""
        tape, xs, out = cache
        sources = [*xs, *self.weights]
        result = tape.gradient(out, sources, output_gradients=tensor.Tensor(grad_output))
        for target, g in zip(grads, result[len(xs) :], strict=True):
            if target is not None:
                target[...] = 0 if g is None else g.data
        gin = [None if g is None else g.data for g in result[: len(xs)]]
        return gin if self.multi_input else gin[0]

    def output_mask(self, inputs: Any, mask: Any) -> Any:
        """The mask this layer passes on (default: its input mask if it supports masking)."""
        return mask if self.supports_masking else None

    def call(self, inputs: Any, training: bool = False) -> Any:
        """Tensor-level forward for custom layers. Built-in layers use `forward` instead."""
        raise NotImplementedError(f"{type(self).__name__} defines neither call nor forward")

    # ----- calling a layer -----------------------------------------------------------------
    def _run_call(self, tensors: list[Tensor], training: bool, mask: Any) -> Any:
        """`call`, given `training` and `mask` only where its signature takes them (as Keras)."""
        kwargs: dict[str, Any] = {}
        accepts = _parameters(type(self).call)
        if "training" in accepts or "..." in accepts:
            kwargs["training"] = training
        if mask is not None and ("mask" in accepts or "..." in accepts):
            kwargs["mask"] = _mask_tensors(mask)
        return self.call(tensors if self.multi_input else tensors[0], **kwargs)

    def ensure_built(self, input_shape: Any, rng: np.random.Generator | None = None) -> None:
        """Build once; a custom `build` need not set `built`, call the base class or take `rng`."""
        if self.built:
            return
        lazy.load_all()
        if rng is not None and "rng" in _parameters(type(self).build):
            self.build(input_shape, rng=rng)
        else:
            self.build(input_shape)
        self.built = True
        self.input_shape = input_shape

    def _custom_call(self) -> bool:
        return type(self).forward is Layer.forward

    def __call__(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if any(isinstance(t, SymbolicTensor) for t in items):
            return self._call_symbolic(items)
        tensors = [tensor.as_tensor(t) for t in items]
        shapes = [(None, *t.shape[1:]) for t in tensors]
        in_shape = shapes if self.multi_input else shapes[0]
        self.ensure_built(in_shape)
        if not self._custom_call():
            if self.output_shape is None:
                self.output_shape = self.compute_output_shape(in_shape)
            out = self._fused_call(tensors, bool(training), mask)
            lazy.device_checks.flush()  # an eager call on a device raises its range errors now
            return out
        out = self._run_call(tensors, bool(training), mask)
        if self.output_shape is None:
            self.output_shape = (None, *tensor.as_tensor(out).shape[1:])
        return out

    def _call_symbolic(self, items: list[Any]) -> SymbolicTensor:
        shapes = [t.shape for t in items]
        in_shape = shapes if self.multi_input else shapes[0]
        if self._custom_call() and type(self).compute_output_shape is Layer.compute_output_shape:
            self.ensure_built(in_shape)
            out_shape = self._traced_output_shape(shapes)
        else:
            out_shape = self.compute_output_shape(in_shape)
            self.ensure_built(in_shape)
        self.output_shape = out_shape
        return SymbolicTensor(out_shape, self.dtype, layer=self, inputs=items)

    def _traced_output_shape(self, shapes: list[Shape]) -> Shape:
        """Keras's way for a layer without `compute_output_shape`: run `call` on placeholders.

        Zeros stand in for the input, every unknown dimension (the batch) set to 1 and then
        to 2; an output dimension that follows them is unknown too.
        """
        runs = [self._placeholder_shape(shapes, size) for size in (1, 2)]
        first, second = runs
        if len(first) != len(second):
            raise ShapeError(f"{self.name}: call's output rank depends on the batch size")
        return tuple(a if a == b else None for a, b in zip(first, second, strict=True))

    def _placeholder_shape(self, shapes: list[Shape], size: int) -> tuple[int, ...]:
        xs = [
            tensor.Tensor(np.zeros([size if d is None else d for d in shape], dtype=self.dtype))
            for shape in shapes
        ]
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            out = self._run_call(xs, False, None)
        return tuple(tensor.as_tensor(out).shape)

    def _fused_call(self, tensors: list[Tensor], training: bool, mask: Any) -> Tensor:
        params = [w.data for w in self.weights]
        arrays = [t.data for t in tensors]
        ctx = CallContext(training=training, mask=mask)
        out, cache = self.forward(params, arrays if self.multi_input else arrays[0], ctx)
        result = tensor.Tensor(out)
        weights = self.weights
        n_in = len(tensors)

        def vjp(g: Array) -> list[Array | None]:
            xp = backend.backend_of(g).xp
            grads = [
                xp.empty_like(p) if (w.trainable and self.trainable) else None
                for w, p in zip(weights, params, strict=True)
            ]
            gin = self.backward(params, cache, g, grads, ctx)
            gin_list = gin if self.multi_input else [gin]
            return [*list(gin_list)[:n_in], *grads]

        return autodiff.record(result, [*tensors, *weights], vjp)

    def __repr__(self) -> str:
        return f"<{self.type_name} name={self.name!r} built={self.built}>"


def _mask_tensors(mask: Any) -> Any:
    """Masks reach `call` as Tensors (a list of them, or None, per input for merge layers)."""
    if isinstance(mask, (list, tuple)):
        return [None if m is None else tensor.as_tensor(m) for m in mask]
    return tensor.as_tensor(mask)


_COMMON = ("name", "trainable", "dtype")


@functools.cache
def _parameters(function: Any) -> frozenset[str]:
    """The names a function takes by keyword (all names, with **kwargs, as `...`)."""
    params = inspect.signature(function).parameters.values()
    names = {p.name for p in params if p.kind is not inspect.Parameter.VAR_POSITIONAL}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        names.add("...")
    return frozenset(names)


def _init_arguments(cls: type[Layer], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict:
    """A custom layer's constructor arguments by name (its automatic config, as in Keras 3)."""
    try:
        bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
    except TypeError:
        return {}  # __init__ itself will raise the error
    values: dict[str, Any] = {}
    for i, (name, value) in enumerate(bound.arguments.items()):
        kind = bound.signature.parameters[name].kind
        if i == 0 or kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        if kind is inspect.Parameter.VAR_KEYWORD:
            values.update(value)
        else:
            values[name] = value
    return {k: v for k, v in values.items() if k not in _COMMON}
