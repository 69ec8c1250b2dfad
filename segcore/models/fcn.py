"""FCN-32s / 16s / 8s / 8s-at-once on a VGG16 trunk (Long, Shelhamer, Darrell, CVPR 2015).

One class for every variant. Layer names are the paper's Caffe names (conv1_1 ... fc7, score_fr,
upscore2, score_pool4, upscore_pool4, score_pool3, upscore8, upscore16, upscore), so state dicts
of the variants share keys and staged training copies weights by name.

Crop offsets are not typed in: `FCN` derives them from its own layers' kernel/stride/padding with
Caffe's coordinate-mapping rule (see `coord_map`), so changing a layer changes its crop.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segcore.models.vgg import (
    FC6_KERNEL,
    VGG16_BLOCKS,
    VGGPlan,
    init_vgg_weights,
    vgg16_channels,
)

VARIANTS = ("32s", "16s", "8s", "8s-atonce")
# 8s-at-once: fixed scaling of the pool features so the skips do not swamp the fresh net
# (reference net voc-fcn8s-atonce, Scale layers with lr 0).
ATONCE_POOL4_SCALE = 0.01
ATONCE_POOL3_SCALE = 0.0001
CONV1_1_PAD = 100  # lets any input size survive fc6 (7x7, pad 0) and the crops

AffineMap = tuple[Fraction, Fraction]  # out = scale * in + offset, in pixel-centre coordinates


def bilinear_kernel(channels: int, k: int) -> torch.Tensor:
    """Bilinear-interpolation weight (channels, channels, k, k) for a k x k transposed conv.

    Nonzero only on the diagonal (channel i -> channel i) so every class upsamples on its own.
    """
    if channels < 1 or k < 1:
        raise ValueError(f"channels and k must be >= 1, got channels={channels}, k={k}")
    f = (k + 1) // 2
    c = f - 1 if k % 2 == 1 else f - 0.5
    ramp = 1 - (torch.arange(k, dtype=torch.float64) - c).abs() / f  # (k,)
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

    A fixed one is grouped (one k x k filter per class, weight (n, 1, k, k)): it computes exactly
    what the reference's dense diagonal kernel computes, with 1/n of the work. Why it matters: at
    n = 21 the dense 64x64 upscore cost more than the whole 1/8-width trunk. A learnable one stays
    dense (weight (n, n, k, k), diagonal at the start), so training may mix classes as Caffe's can.
    """
    groups = 1 if learnable else n_classes
    layer = nn.ConvTranspose2d(n_classes, n_classes, k, stride=stride, bias=False, groups=groups)
    kernel = bilinear_kernel(n_classes, k)
    with torch.no_grad():
        layer.weight.copy_(kernel if learnable else kernel[range(n_classes), range(n_classes)].unsqueeze(1))
    layer.weight.requires_grad_(learnable)
    return layer


def crop_to(t: torch.Tensor, offset: int, like: torch.Tensor) -> torch.Tensor:
    """t[..., off:off + H, off:off + W] with (H, W) of `like`; never silently comes out short."""
    h, w = like.shape[-2:]
    if t.shape[-2] < offset + h or t.shape[-1] < offset + w:
        raise ValueError(f"cannot crop {tuple(t.shape[-2:])} at offset {offset} to {(h, w)}")
    return t[..., offset : offset + h, offset : offset + w]


def _square(value: int | tuple[int, ...], what: str, layer: nn.Module) -> int:
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
    k = _square(layer.kernel_size, "kernel_size", layer)
    s = _square(layer.stride, "stride", layer)
    p = _square(layer.padding, "padding", layer)
    d = _square(getattr(layer, "dilation", 1), "dilation", layer)
    k_eff = (k - 1) * d + 1
    if isinstance(layer, nn.ConvTranspose2d):
        return Fraction(s), Fraction(k_eff - 1, 2) - p
    if isinstance(layer, (nn.Conv2d, nn.MaxPool2d)):
        return Fraction(1, s), (p - Fraction(k_eff - 1, 2)) / s
    raise ValueError(f"no coordinate map for {type(layer).__name__}; expected conv, pool or deconv")


def compose(layers: Sequence[nn.Module]) -> AffineMap:
    """Coordinate map of a chain of layers, input of the first -> output of the last."""
    scale, offset = Fraction(1), Fraction(0)
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


Heads = dict[str, int]  # head name -> class count, e.g. {"sem": 33, "geo": 3} (SIFT Flow)


def head_suffixes(n_classes: int | Heads) -> dict[str, int]:
    """Layer-name suffix -> class count: "" for a plain net, "_sem" / "_geo" for a multi-head one."""
    if isinstance(n_classes, int):
        heads = {"": n_classes}
    elif isinstance(n_classes, dict) and n_classes:
        bad = [k for k in n_classes if not (isinstance(k, str) and k.isidentifier())]
        if bad:
            raise ValueError(f"head names must be identifiers, got {bad}")
        heads = {f"_{name}": n for name, n in n_classes.items()}
    else:
        raise ValueError(f"n_classes must be an int or a non-empty {{head: classes}} dict, got {n_classes!r}")
    if any(not isinstance(n, int) or n < 1 for n in heads.values()):
        raise ValueError(f"class counts must be ints >= 1, got {n_classes!r}")
    return heads


class FCN(nn.Module):
    """Fully convolutional VGG16. Input (N, in_channels, H, W) -> logits (N, K, H, W).

    ``n_classes`` is an int (one head, K classes) or a dict of heads sharing the trunk (SIFT Flow's
    {"sem": 33, "geo": 3}): each head has its own score and upsampling layers, named with the
    head's suffix as in the reference net (score_fr_sem, upscore2_geo, ...), and the logits of the
    heads are concatenated along channels in dict order (K = 33 + 3).
    """

    def __init__(
        self,
        n_classes: int | Heads,
        variant: str = "32s",
        width: float = 1.0,
        learn_upsampling: bool = False,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown FCN variant {variant!r}; allowed: {', '.join(VARIANTS)}")
        heads = head_suffixes(n_classes)
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        self.n_classes, self.variant, self.in_channels = n_classes, variant, in_channels
        self.heads = heads
        self.trunk_names = self._build_trunk(vgg16_channels(width), in_channels)
        init_vgg_weights(self)  # trunk only: the head below has its own (zero / bilinear) init
        for suffix, n in heads.items():
            self._build_head(n, variant, learn_upsampling, suffix)
        self.crop_offsets = self._derive_crop_offsets()

    def _build_trunk(self, plan: VGGPlan, in_channels: int) -> list[str]:
        """conv1_1 ... pool5, fc6, fc7 as attributes; returns their names in forward order."""
        names, c_in, widths = [], in_channels, iter(plan.convs)
        self._pool_channels: dict[str, int] = {}  # skip layers need pool3 / pool4 widths
        for block, n in VGG16_BLOCKS:
            for i in range(1, n + 1):
                c_out, name = next(widths), f"conv{block}_{i}"
                pad = CONV1_1_PAD if name == "conv1_1" else 1
                self.add_module(name, nn.Conv2d(c_in, c_out, 3, padding=pad))
                names.append(name)
                c_in = c_out
            # Caffe pooling rounds up; with floor many input sizes end up smaller than the crops.
            self.add_module(f"pool{block}", nn.MaxPool2d(2, 2, ceil_mode=True))
            names.append(f"pool{block}")
            self._pool_channels[f"pool{block}"] = c_in
        self.fc6 = nn.Conv2d(c_in, plan.fc, FC6_KERNEL)
        self.fc7 = nn.Conv2d(plan.fc, plan.fc, 1)
        # Element-wise dropout as Caffe (Dropout2d would drop whole channels).
        self.drop6, self.drop7 = nn.Dropout(0.5), nn.Dropout(0.5)
        return names + ["fc6", "fc7"]

    def _build_head(self, n: int, variant: str, learn_upsampling: bool, suffix: str = "") -> None:
        """Score layers (zero init) and bilinear transposed convs (no bias), names ending in ``suffix``."""
        add = lambda name, layer: self.add_module(name + suffix, layer)  # noqa: E731
        add("score_fr", score_layer(self.fc7.out_channels, n))
        if variant == "32s":
            add("upscore", bilinear_upsampling(n, 64, 32, learnable=False))
            return
        add("upscore2", bilinear_upsampling(n, 4, 2, learnable=learn_upsampling))
        add("score_pool4", score_layer(self._pool_channels["pool4"], n))
        if variant == "16s":
            add("upscore16", bilinear_upsampling(n, 32, 16, learnable=False))
            return
        add("upscore_pool4", bilinear_upsampling(n, 4, 2, learnable=learn_upsampling))
        add("score_pool3", score_layer(self._pool_channels["pool3"], n))
        add("upscore8", bilinear_upsampling(n, 16, 8, learnable=False))

    def _chain(self, *names: str) -> list[nn.Module]:
        """Trunk layers up to and including names[0], then the named head layers (first head's)."""
        upto = self.trunk_names[: self.trunk_names.index(names[0]) + 1]
        return [getattr(self, n) for n in upto] + [self._first(n) for n in names[1:]]

    def _first(self, name: str) -> nn.Module:
        """Head layer ``name`` of the first head (every head has the same geometry)."""
        return getattr(self, name + next(iter(self.heads)))

    def _derive_crop_offsets(self) -> dict[str, int]:
        """Crop offsets from layer arithmetic: 32s {score: 19}; 8s {score_pool4c: 5, ...}."""
        data: AffineMap = (Fraction(1), Fraction(0))
        if self.variant == "32s":
            return {"score": crop_offset(compose(self._chain("fc7", "score_fr", "upscore")), data)}
        # A fuse is an addition: it lives on the grid of the upsampled map it adds to.
        fuse4 = self._chain("fc7", "score_fr", "upscore2")
        pool4 = compose(self._chain("pool4", "score_pool4"))
        offsets = {"score_pool4c": crop_offset(pool4, compose(fuse4))}
        if self.variant == "16s":
            offsets["score"] = crop_offset(compose(fuse4 + [self._first("upscore16")]), data)
            return offsets
        fuse3 = fuse4 + [self._first("upscore_pool4")]
        offsets["score_pool3c"] = crop_offset(compose(self._chain("pool3", "score_pool3")),
                                              compose(fuse3))
        offsets["score"] = crop_offset(compose(fuse3 + [self._first("upscore8")]), data)
        return offsets

    def _trunk(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(N, C_in, H, W) -> {'pool3', 'pool4', 'fc7'} feature maps."""
        taps: dict[str, torch.Tensor] = {}
        for name in self.trunk_names[:-2]:
            x = getattr(self, name)(x)
            if name.startswith("conv"):
                x = F.relu(x, inplace=True)
            elif name in ("pool3", "pool4"):
                taps[name] = x
        x = self.drop6(F.relu(self.fc6(x), inplace=True))
        taps["fc7"] = self.drop7(F.relu(self.fc7(x), inplace=True))
        return taps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) float -> logits (N, K, H, W), for any H, W >= 1."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        taps = self._trunk(x)
        outs = [self._head(taps, x, suffix) for suffix in self.heads]
        return outs[0] if len(outs) == 1 else torch.cat(outs, 1)

    def _head(self, taps: dict[str, torch.Tensor], x: torch.Tensor, suffix: str) -> torch.Tensor:
        """One head's logits (N, n, H, W) from the trunk's taps."""
        layer = lambda name: getattr(self, name + suffix)  # noqa: E731
        score = layer("score_fr")(taps["fc7"])
        off = self.crop_offsets
        if self.variant == "32s":
            return crop_to(layer("upscore")(score), off["score"], x)
        pool4, pool3 = taps["pool4"], taps["pool3"]
        if self.variant == "8s-atonce":
            pool4, pool3 = pool4 * ATONCE_POOL4_SCALE, pool3 * ATONCE_POOL3_SCALE
        up = layer("upscore2")(score)
        fuse_pool4 = up + crop_to(layer("score_pool4")(pool4), off["score_pool4c"], up)
        if self.variant == "16s":
            return crop_to(layer("upscore16")(fuse_pool4), off["score"], x)
        up = layer("upscore_pool4")(fuse_pool4)
        fuse_pool3 = up + crop_to(layer("score_pool3")(pool3), off["score_pool3c"], up)
        return crop_to(layer("upscore8")(fuse_pool3), off["score"], x)


def crop_offsets(variant: str) -> dict[str, int]:
    """Crop offsets of an FCN variant, derived from its layers (they do not depend on width)."""
    with torch.device("meta"):  # geometry only: no weights allocated
        return FCN(n_classes=1, variant=variant).crop_offsets
