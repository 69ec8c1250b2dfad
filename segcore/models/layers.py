"""Layers and helpers shared by every net in `segcore.models`; imports only `upsampling`, a leaf.

- Coordinate arithmetic (Caffe's coord_map): `AffineMap`, `IDENTITY_MAP`, `square`, `coord_map`,
  `compose`, `crop_offset`, and `crop_to` that applies a derived offset.
- FCN head layers: `score_layer` (1x1, zero init), `bilinear_kernel` / `bilinear_upsampling`
  (a fixed one is `upsampling.FixedBilinearUpsampling`, computed the fastest exact way per device).
- Channel plans: `channel_scaler` (width multiplier for slim nets).
- Weight loading: `load_mapped` (state dict under a key map, every key checked),
  `sequential_key_map` (torchvision's `features.i` / `classifier.i` keys -> our layer names) and
  `load_torchvision_classifier` (a torchvision ImageNet state dict into one of our classifiers).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Callable, Mapping, NamedTuple, Sequence

import torch
from torch import nn

from segcore.models.upsampling import FixedBilinearUpsampling, bilinear_ramp

AffineMap = tuple[Fraction, Fraction]  # out = scale * in + offset, in pixel-centre coordinates
IDENTITY_MAP: AffineMap = (Fraction(1), Fraction(0))


def channel_scaler(width: float) -> Callable[[int], int]:
    """Function c -> round(c * width), at least 1; `width` must be a number in (0, 1]."""
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width <= 1:
        raise ValueError(f"width must be a number in (0, 1], got {width!r}")
    return lambda c: max(1, int(round(c * width)))


# --- FCN head layers -------------------------------------------------------------------------


def bilinear_kernel(channels: int, k: int) -> torch.Tensor:
    """Bilinear-interpolation weight (channels, channels, k, k) for a k x k transposed conv.

    Nonzero only on the diagonal (channel i -> channel i) so every class upsamples on its own.
    """
    if channels < 1 or k < 1:
        raise ValueError(f"channels and k must be >= 1, got channels={channels}, k={k}")
    ramp = bilinear_ramp(k)  # (k,)
    filt = (ramp[:, None] * ramp[None, :]).to(torch.float32)  # (k, k)
    weight = torch.zeros(channels, channels, k, k)
    weight[range(channels), range(channels)] = filt
    return weight


def score_layer(c_in: int, n_classes: int) -> nn.Conv2d:
    """1x1 scoring conv, zero init: a fresh skip adds nothing, so a 16s net starts from its 32s
    parent's coarse scores, and a fresh net predicts all zeros instead of random noise."""
    layer = nn.Conv2d(c_in, n_classes, 1)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def bilinear_upsampling(n_classes: int, k: int, stride: int, learnable: bool = False) -> nn.ConvTranspose2d:
    """Transposed conv without bias, bilinear weights; frozen unless `learnable` (reference: lr 0).

    A fixed one stores one k x k filter per class (weight (n, 1, k, k), a grouped conv): it computes
    exactly what the reference's dense diagonal kernel computes, with 1/n of the work (at n = 21 the
    dense 64x64 upscore cost more than the whole 1/8-width trunk), and on CPU / CUDA it runs as
    whichever equivalent form is fastest there (`FixedBilinearUpsampling`). A learnable one stays a
    plain dense conv (weight (n, n, k, k), diagonal at the start), so training may mix classes as
    Caffe's can.
    """
    if not learnable:
        return FixedBilinearUpsampling(n_classes, k, stride)
    layer = nn.ConvTranspose2d(n_classes, n_classes, k, stride=stride, bias=False)
    with torch.no_grad():
        layer.weight.copy_(bilinear_kernel(n_classes, k))
    return layer


# --- coordinate arithmetic and crops ---------------------------------------------------------


def crop_to(t: torch.Tensor, offset: int, like: torch.Tensor) -> torch.Tensor:
    """t[..., off:off + H, off:off + W] with (H, W) of `like`; never silently comes out short."""
    h, w = like.shape[-2:]
    if t.shape[-2] < offset + h or t.shape[-1] < offset + w:
        raise ValueError(f"cannot crop {tuple(t.shape[-2:])} at offset {offset} to {(h, w)}")
    return t[..., offset : offset + h, offset : offset + w]


def square(value: int | tuple[int, ...], what: str, layer: nn.Module) -> int:
    """One int from a possibly-tuple conv attribute; FCN only uses square kernels."""
    if isinstance(value, int):
        return value
    if len(set(value)) != 1:
        raise ValueError(f"non-square {what} {value} in {layer}; only square layers are supported")
    return value[0]


def coord_map(layer: nn.Module) -> AffineMap:
    """Affine map of pixel coordinates from a layer's input to its output (Caffe's coord_map).

    conv / pool (k, s, p): out = in / s + (p - (k - 1) / 2) / s
    transposed conv:       out = s * in + (k - 1) / 2 - p
    """
    k = square(layer.kernel_size, "kernel_size", layer)
    s = square(layer.stride, "stride", layer)
    p = square(layer.padding, "padding", layer)
    d = square(getattr(layer, "dilation", 1), "dilation", layer)
    k_eff = (k - 1) * d + 1
    if isinstance(layer, nn.ConvTranspose2d):
        return Fraction(s), Fraction(k_eff - 1, 2) - p
    if isinstance(layer, (nn.Conv2d, nn.MaxPool2d)):
        return Fraction(1, s), (p - Fraction(k_eff - 1, 2)) / s
    raise ValueError(f"no coordinate map for {type(layer).__name__}; expected conv, pool or deconv")


def compose(layers: Sequence[nn.Module]) -> AffineMap:
    """Coordinate map of a chain of layers, input of the first -> output of the last."""
    scale, offset = IDENTITY_MAP
    for layer in layers:
        a, b = coord_map(layer)
        scale, offset = a * scale, a * offset + b
    return scale, offset


def crop_offset(big: AffineMap, ref: AffineMap) -> int:
    """Offset at which map `big` is cropped to align with map `ref` (both mapped from the input).

    Equal scales are required; the offset difference must be a non-negative whole pixel count.
    """
    diff = big[1] - ref[1]
    if big[0] != ref[0] or diff < 0 or diff.denominator != 1:
        raise ValueError(f"cannot align coordinate maps {big} and {ref} by an integer crop >= 0")
    return int(diff)


# --- weight loading --------------------------------------------------------------------------


def load_mapped(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    mapping: Mapping[str, str],
    what: str,
    ignored_prefixes: tuple[str, ...] = (),
) -> nn.Module:
    """Load `state_dict` (source key -> our key via `mapping`) into `model`, checking every key.

    `model` may live on the meta device: tensors are assigned, not copied into place. Source keys
    starting with an `ignored_prefixes` entry are dropped; a missing BN `num_batches_tracked` counter
    is set to 0; any other key outside `mapping`, a
    missing key, or a shape mismatch raises ValueError naming it.
    """
    used = {k: v for k, v in state_dict.items() if not k.startswith(ignored_prefixes)}
    for key in mapping:  # checkpoints saved before torch 0.4.1 lack BN's batch counter
        if key.endswith(".num_batches_tracked") and key not in used:
            used[key] = torch.tensor(0, dtype=torch.long)
    extra = sorted(set(used) - set(mapping))
    missing = sorted(set(mapping) - set(used))
    if extra or missing:
        raise ValueError(
            f"not a {what} state dict: unexpected keys {extra[:3]}, missing keys {missing[:3]}"
        )
    own = model.state_dict()
    for src, dst in mapping.items():
        if used[src].shape != own[dst].shape:
            raise ValueError(
                f"{src} has shape {tuple(used[src].shape)}, expected {tuple(own[dst].shape)} "
                f"for {dst}"
            )
    model.load_state_dict({dst: used[src].detach().clone() for src, dst in mapping.items()},
                          assign=True)
    return model


def sequential_key_map(containers: Mapping[str, Sequence[str | None]]) -> dict[str, str]:
    """torchvision key -> our key for a net made of `nn.Sequential` containers.

    `containers` maps a torchvision container ("features", "classifier") to our layer name for
    each of its entries in order, None for an entry without parameters (ReLU, pool, dropout):
    {"classifier": [None, "fc6"]} gives classifier.1.weight -> fc6.weight and the bias likewise.
    """
    mapping: dict[str, str] = {}
    for container, names in containers.items():
        for index, name in enumerate(names):
            if name is not None:
                for p in ("weight", "bias"):
                    mapping[f"{container}.{index}.{p}"] = f"{name}.{p}"
    return mapping


def load_torchvision_classifier(
    state_dict: Mapping[str, torch.Tensor],
    build: Callable[[int], nn.Module],
    mapping: Mapping[str, str] | None,
    arch: str,
    fc_key: str,
    fc_name: str | None = None,
    kind: str = "",
    ignored_prefixes: tuple[str, ...] = (),
) -> nn.Module:
    """`build(n_classes)` (a full-width classifier) holding a torchvision `arch` state dict.

    n_classes is the first dimension of `state_dict[fc_key]` (the last layer's weight; our name
    for it, `fc_name`, goes into the error when the key is absent). The model is built on the meta
    device, skipping an initialisation that would be overwritten. `mapping` is torchvision key ->
    our key, None when our keys are torchvision's. `kind` qualifies `arch` in the key-set error
    (" (without BN)"); `ignored_prefixes` are dropped (see `load_mapped`).
    """
    if fc_key not in state_dict:
        label = f" ({fc_name})" if fc_name else ""
        raise ValueError(f"not a torchvision {arch} state dict: no {fc_key}{label}")
    n_classes = state_dict[fc_key].shape[0]
    with torch.device("meta"):
        model = build(n_classes)
    if mapping is None:
        mapping = {k: k for k in model.state_dict()}
    return load_mapped(model, state_dict, mapping, f"torchvision {arch}{kind}",
                       ignored_prefixes=ignored_prefixes)


class SurgeryPlan(NamedTuple):
    """How a classifier becomes an FCN trunk (segcore.models.surgery); each classifier says its own."""

    copied: tuple[str, ...]  # modules whose whole state (weights, biases, BN buffers) is copied
    fc_kernels: tuple[tuple[str, int], ...]  # fc layers that become k x k convs, in forward order
