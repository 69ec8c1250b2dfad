"""FCN-32s / 16s / 8s / 8s-at-once on a VGG16 trunk (Long, Shelhamer, Darrell, CVPR 2015).

One class for every variant. Layer names are the paper's Caffe names (conv1_1 ... fc7, score_fr,
upscore2, score_pool4, upscore_pool4, score_pool3, upscore8, upscore16, upscore), so state dicts
of the variants share keys and staged training copies weights by name.

Crop offsets are not typed in: `FCN` derives them from its own layers' kernel/stride/padding with
Caffe's coordinate-mapping rule (`segcore.models.layers.coord_map`), so changing a layer changes
its crop.

`SingleUpsamplingFCN` is "trunk -> score_fr -> upscore -> crop": the FCN-32s head on any trunk,
the base of FCN-AlexNet and FCN-GoogLeNet. Its crop offset is derived from the trunk's layers in
the same way, so a trunk change moves the crop with it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from segcore.models.layers import (
    IDENTITY_MAP,
    bilinear_upsampling,
    compose,
    crop_offset,
    crop_to,
    score_layer,
)
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
        data = IDENTITY_MAP
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


class SingleUpsamplingFCN(nn.Module):
    """Base: trunk features -> score_fr (1x1, zero) -> upscore (fixed bilinear) -> crop.

    Subclasses build their trunk, call `_build_head`, and implement `features` (the trunk's
    forward) and `coordinate_path` (the trunk's layers whose kernel/stride/padding move pixel
    coordinates, in forward order).
    """

    in_channels: int
    n_classes: int

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> trunk output (N, C, h, w) fed to score_fr."""
        raise NotImplementedError

    def coordinate_path(self) -> list[nn.Module]:
        """Conv / pool layers from the input to score_fr's input, in forward order."""
        raise NotImplementedError

    def _build_head(self, c_trunk: int, n_classes: int, k: int, stride: int) -> None:
        self.score_fr = score_layer(c_trunk, n_classes)
        self.upscore = bilinear_upsampling(n_classes, k, stride)  # fixed, as the reference
        path = self.coordinate_path() + [self.score_fr, self.upscore]
        self.crop_offsets = {"score": crop_offset(compose(path), IDENTITY_MAP)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) float -> logits (N, n_classes, H, W), for any H, W >= 1."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        score = self.score_fr(self.features(x))
        return crop_to(self.upscore(score), self.crop_offsets["score"], x)
