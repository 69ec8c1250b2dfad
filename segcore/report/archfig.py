"""Architecture figures of FCN Table 1, measured from built modules (never typed in).

Table 1 gives, per classifier made fully convolutional: "conv. layers" (parameter layers),
parameters, receptive-field size and max stride. This module derives them from an `nn.Module`:

- `receptive_field(layers)`: size and stride of a sequential chain (conv / pool arithmetic).
- `fcn_chain(model)`: that chain for the VGG16 `FCN`, input -> score_fr.
- `trace(model, ...)`: one forward pass (on the meta device for full-size nets: only shapes are
  needed) that follows the data through every op, so branching nets (inception modules, skips)
  are measured too. Per tensor it keeps the number of weight layers on the longest path from the
  input, and the receptive field and stride of its pixels.
- `parameter_layers`, `flops`, `figures` / `ArchFigures` on top of `trace`.

Counting rules (stated once here so every table cites the same ones):

- A *parameter layer* is a Conv1d/2d/3d, ConvTranspose1d/2d/3d or Linear module. Depth is counted
  along the longest input -> `end` path; branches merged by add / cat take the deeper branch. So an
  inception module adds 2 (1x1 reduce then 3x3 or 5x5), and GoogLeNet is 3 + 9 x 2 + 1 = 22 deep.
  Batch norm, LRN, pooling and ReLU are not parameter layers. `end` defaults to score_fr, the layer
  that takes the classifier's fc8 place (VGG16: 13 conv + fc6 + fc7 + score_fr = 16, as the paper's
  13 + 3); the bilinear upsampling after it is the FCN head, not the classifier, and is left out.
  Frozen layers still count: freezing is a training choice, not an architecture change.
- Receptive field: size r and stride j in input pixels; a layer with kernel k, dilation d, stride s
  gives r += ((k - 1) d) j, j *= s (padding shifts the field, it does not grow it). A transposed
  conv divides j by s first. Linear layers act per position (as fc6/fc7 once convolutionalised)
  and leave r, j unchanged. Adaptive pooling makes the field depend on the input size: `trace` and
  `figures` report it as undefined (None) and `receptive_field` on such a layer raises.
- FLOPs = 2 x multiply-accumulates of Conv/ConvTranspose/Linear modules over the whole forward
  pass; biases, pooling, ReLU, normalisation, dropout, adds and crops are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import prod
from typing import Any, Iterator, Sequence

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from segcore.models.fcn import FCN
from segcore.models.layers import square as _square
from segcore.models.registry import parameter_count

WEIGHT_LAYERS = (
    nn.Conv1d, nn.Conv2d, nn.Conv3d,
    nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
    nn.Linear,
)  # fmt: skip
SPATIAL_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d, nn.AvgPool2d)
# Ops whose geometry is read from the module that calls them (func.__name__ as torch reports it).
_LAYER_OPS = {
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "linear", "max_pool2d", "avg_pool2d",
}  # fmt: skip
_ADAPTIVE_OPS = {"adaptive_avg_pool2d", "adaptive_max_pool2d", "adaptive_avg_pool1d"}

Field = tuple[Fraction, Fraction]  # (receptive-field size, stride), in input pixels


@dataclass(frozen=True)
class ArchFigures:
    """One Table 1 column. rf / stride are None where adaptive pooling makes them undefined."""

    layers: int  # parameter layers, input -> score layer
    params: int  # learnable parameters of the whole model
    rf: int | None  # receptive-field size of one score pixel, input pixels
    stride: int | None  # max stride: input pixels per score pixel
    gflops: float  # 1e9 FLOPs (2 x MACs) of one forward pass


def layer_field(field: Field, layer: nn.Module) -> Field:
    """Receptive field after `layer`, given the field (size, stride) of its input pixels."""
    if not isinstance(layer, SPATIAL_LAYERS):
        raise ValueError(
            f"no receptive-field rule for {type(layer).__name__}; "
            "expected Conv2d, ConvTranspose2d, MaxPool2d or AvgPool2d"
        )
    size, jump = field
    k = _square(layer.kernel_size, "kernel_size", layer)
    s = _square(layer.stride if layer.stride is not None else k, "stride", layer)
    d = _square(getattr(layer, "dilation", 1), "dilation", layer)
    if isinstance(layer, nn.ConvTranspose2d):
        jump = jump / s
        return size + (k - 1) * d * jump, jump
    return size + (k - 1) * d * jump, jump * s


def receptive_field(layers: Sequence[nn.Module]) -> tuple[int, int]:
    """(size, stride) in input pixels of one output pixel of a sequential chain of layers.

    Two 3x3 convs -> (5, 1); conv 3x3, pool 2x2/2, conv 3x3 -> (8, 2); FCN-VGG16 -> (404, 32).
    """
    field: Field = (Fraction(1), Fraction(1))
    for layer in layers:
        field = layer_field(field, layer)
    return _whole(field[0], "receptive-field size"), _whole(field[1], "stride")


def fcn_chain(model: FCN) -> list[nn.Module]:
    """Layers of a VGG16 `FCN` from the input to score_fr: conv1_1 ... pool5, fc6, fc7, score_fr."""
    if not isinstance(model, FCN):
        raise ValueError(f"fcn_chain needs a segcore FCN, got {type(model).__name__}")
    return [getattr(model, name) for name in model.trunk_names] + [model.score_fr]


def _whole(value: Fraction, what: str) -> int:
    if value.denominator != 1:
        raise ValueError(f"{what} {value} is not a whole number of input pixels")
    return int(value)


@dataclass
class _State:
    """What is known about one tensor derived from the input."""

    depth: int  # parameter layers on the longest path from the input
    field: Field | None  # None: undefined (adaptive pooling on the path)


@dataclass
class Trace:
    """Result of `trace`: figures at the `end` module (or the output) and FLOPs of the pass."""

    depth: int
    field: Field | None
    flops: int


class _Tracer(TorchFunctionMode):
    """Follows input-derived tensors through every torch op, updating their `_State`."""

    def __init__(self) -> None:
        super().__init__()
        self.states: dict[int, tuple[torch.Tensor, _State]] = {}  # id -> (tensor kept alive, state)
        self.modules: list[nn.Module] = []  # call stack, innermost last
        self.flops = 0

    def state(self, t: Any) -> _State | None:
        entry = self.states.get(id(t)) if isinstance(t, torch.Tensor) else None
        return entry[1] if entry is not None and entry[0] is t else None

    def mark(self, t: torch.Tensor, state: _State) -> None:
        self.states[id(t)] = (t, state)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if name in _LAYER_OPS:
            source = self.state(args[0] if args else kwargs.get("input"))
            new = None if source is None else self._through_layer(name, source)
        else:
            found = [s for s in map(self.state, _tensors((args, kwargs))) if s is not None]
            new = _merge(found, adaptive=name in _ADAPTIVE_OPS) if found else None
        if new is not None:
            for t in _tensors(out):
                self.mark(t, new)
        return out

    def _through_layer(self, op: str, source: _State) -> _State:
        layer = self.modules[-1] if self.modules else None
        if not isinstance(layer, WEIGHT_LAYERS + SPATIAL_LAYERS):
            # A functional conv/pool has no module to read its geometry from: refuse, not guess.
            raise ValueError(
                f"{op} called outside a layer module (in {type(layer).__name__}); "
                "archfig needs nn.Conv*/ConvTranspose*/Linear/MaxPool2d/AvgPool2d modules"
            )
        depth = source.depth + isinstance(layer, WEIGHT_LAYERS)
        field = source.field
        if field is not None and isinstance(layer, SPATIAL_LAYERS):
            field = layer_field(field, layer)
        return _State(depth, field)


def _merge(states: list[_State], adaptive: bool) -> _State:
    """State of an op's output from its inputs' states: the deepest path and the widest field."""
    depth = max(s.depth for s in states)
    fields = [s.field for s in states]
    if adaptive or any(f is None for f in fields):
        return _State(depth, None)
    return _State(depth, (max(f[0] for f in fields), max(f[1] for f in fields)))  # type: ignore


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    """Every tensor inside nested tuples / lists / dicts."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)


def layer_flops(layer: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """2 x multiply-accumulates of one Conv/ConvTranspose/Linear call, from shapes only (meta-safe).

    conv: every output value takes C_in / groups x prod(kernel) MACs; transposed conv: every input
    value is spread by C_out / groups x prod(kernel) MACs; linear: in_features MACs per output.
    """
    if isinstance(layer, nn.Linear):
        return 2 * y.numel() * layer.in_features
    kernel = prod(layer.weight.shape[2:])
    if isinstance(layer, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        return 2 * x.numel() * (layer.out_channels // layer.groups) * kernel
    return 2 * y.numel() * (layer.in_channels // layer.groups) * kernel


def _input_channels(model: nn.Module) -> int:
    """model.in_channels if set (segcore FCNs), else the first Conv2d's input channels."""
    if isinstance(getattr(model, "in_channels", None), int):
        return model.in_channels
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    raise ValueError(f"cannot tell the input channels of {type(model).__name__}: no Conv2d in it")


def trace(model: nn.Module, size: int = 500, end: str | None = "score_fr") -> Trace:
    """One forward pass of a (1, C, size, size) input in eval mode; depth / field at `end`.

    `end` names the score module (default score_fr); None measures at the model output. Works on
    meta-device models (build them under `with torch.device("meta"):`) since only shapes are used.
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    modules = dict(model.named_modules())
    if end is not None and (end == "" or end not in modules):
        raise ValueError(f"no module named {end!r} in {type(model).__name__}; pass end=None "
                         "to measure at the model output")
    device = next(model.parameters()).device
    x = torch.zeros(1, _input_channels(model), size, size, device=device)
    tracer, at_end, handles = _Tracer(), [], []

    def push(m: nn.Module, _inputs: Any) -> None:
        tracer.modules.append(m)

    def pop(m: nn.Module, inputs: Any, output: Any) -> None:
        tracer.modules.pop()
        if isinstance(m, WEIGHT_LAYERS) and tracer.state(inputs[0]) is not None:
            tracer.flops += layer_flops(m, inputs[0], output)

    for m in modules.values():
        handles += [m.register_forward_pre_hook(push), m.register_forward_hook(pop)]
    if end is not None:
        handles.append(modules[end].register_forward_hook(lambda m, i, o: at_end.append(o)))
    was_training = model.training
    try:
        model.eval()  # dropout off: the figures describe inference
        with torch.no_grad(), tracer:
            tracer.mark(x, _State(0, (Fraction(1), Fraction(1))))
            out = model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    if end is not None and not at_end:
        raise ValueError(f"module {end!r} was never called in the forward pass")
    state = tracer.state(at_end[-1] if at_end else out)
    if state is None:
        raise ValueError(f"the output of {end or 'the model'} does not depend on the input")
    return Trace(depth=state.depth, field=state.field, flops=tracer.flops)


def parameter_layers(model: nn.Module, end: str | None = "score_fr", size: int = 224) -> int:
    """Parameter layers on the longest input -> `end` path (VGG16 16, AlexNet 8, GoogLeNet 22)."""
    return trace(model, size, end).depth


def flops(model: nn.Module, size: int = 500) -> int:
    """FLOPs (2 x MACs of conv / transposed conv / linear layers) of a size x size forward pass."""
    return trace(model, size, end=None).flops


def figures(model: nn.Module, size: int = 500, end: str | None = "score_fr") -> ArchFigures:
    """Table 1 figures of `model`: one traced forward pass plus its learnable parameter count."""
    t = trace(model, size, end)
    rf = stride = None
    if t.field is not None:
        rf, stride = _whole(t.field[0], "receptive-field size"), _whole(t.field[1], "stride")
    return ArchFigures(
        layers=t.depth,
        params=parameter_count(model, trainable_only=True),
        rf=rf,
        stride=stride,
        gflops=t.flops / 1e9,
    )
