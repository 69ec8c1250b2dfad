"""VGG16 ImageNet classifier with the paper's layer names (conv1_1 ... conv5_3, fc6, fc7, fc8).

This is the network that FCN "convolutionalises" (see `segcore.models.surgery`). It mirrors torchvision's
`vgg16` layer for layer, so torchvision's ImageNet weights load through `load_torchvision_vgg16`,
but it names its layers like the paper's Caffe code so surgery can copy weights by name.
"""

from __future__ import annotations

from typing import Iterator, Mapping, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from segcore.models.layers import SurgeryPlan, channel_scaler, load_torchvision_classifier, sequential_key_map

# (block index, number of 3x3 convs in the block); a 2x2 max pool follows every block.
VGG16_BLOCKS: tuple[tuple[int, int], ...] = ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))
_BASE_BLOCK_CHANNELS = (64, 128, 256, 512, 512)
_BASE_FC = 4096
# fc6 sees a 7x7 map: the 224 px ImageNet input after five /2 pools.
FC6_KERNEL = 7


class VGGPlan(NamedTuple):
    """Channel plan of a (possibly slimmed) VGG16."""

    convs: tuple[int, ...]  # output channels of conv1_1 ... conv5_3 (13 entries)
    fc: int  # width of fc6 / fc7


def vgg16_channels(width: float) -> VGGPlan:
    """Channel plan of VGG16 scaled by `width` in (0, 1]; every width is rounded and at least 1.

    width=1.0 gives 64,64 | 128,128 | 256x3 | 512x3 | 512x3 and fc 4096. Slim nets (width 1/16)
    keep every spatial size of the full net, which is what fast tests need.
    """
    scale = channel_scaler(width)
    convs = tuple(
        scale(c) for (_, n), c in zip(VGG16_BLOCKS, _BASE_BLOCK_CHANNELS) for _ in range(n)
    )
    return VGGPlan(convs=convs, fc=scale(_BASE_FC))


def vgg16_conv_names() -> Iterator[tuple[int, str]]:
    """Yield (block, name) for conv1_1 ... conv5_3 in forward order."""
    for block, n in VGG16_BLOCKS:
        for i in range(1, n + 1):
            yield block, f"conv{block}_{i}"


def init_vgg_weights(module: nn.Module) -> None:
    """torchvision's VGG init: He-normal convs (fan_out), N(0, 0.01) linears, zero biases.

    PyTorch's default init shrinks activations layer by layer; 15 layers deep the signal is
    almost gone, so an untrained net would predict its biases everywhere.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
        else:
            continue
        if m.bias is not None:
            nn.init.zeros_(m.bias)


class VGG16Classifier(nn.Module):
    """VGG16 classifier: 13 convs (pad 1), 5 max pools (floor), adaptive 7x7 avg pool, fc6-fc8.

    Input (N, 3, H, W) with H, W >= 32; output logits (N, n_classes). The adaptive pool (as in
    torchvision) is the identity at 224x224, which is where convolutionalisation is exact.
    """

    def __init__(self, n_classes: int = 1000, width: float = 1.0, dropout: float = 0.5) -> None:
        super().__init__()
        if n_classes < 1:
            raise ValueError(f"n_classes must be >= 1, got {n_classes}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        plan = vgg16_channels(width)
        self.n_classes, self.width = n_classes, width
        c_in, widths = 3, iter(plan.convs)
        for block, n in VGG16_BLOCKS:
            for i in range(1, n + 1):
                c_out = next(widths)
                self.add_module(f"conv{block}_{i}", nn.Conv2d(c_in, c_out, 3, padding=1))
                c_in = c_out
            self.add_module(f"pool{block}", nn.MaxPool2d(2, 2))
        self.avgpool = nn.AdaptiveAvgPool2d(FC6_KERNEL)
        self.fc6 = nn.Linear(c_in * FC6_KERNEL * FC6_KERNEL, plan.fc)
        self.fc7 = nn.Linear(plan.fc, plan.fc)
        self.fc8 = nn.Linear(plan.fc, n_classes)
        self.drop6, self.drop7 = nn.Dropout(dropout), nn.Dropout(dropout)
        init_vgg_weights(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Conv trunk: (N, 3, H, W) -> pool5 (N, C5, H // 32, W // 32)."""
        for block, n in VGG16_BLOCKS:
            for i in range(1, n + 1):
                x = F.relu(getattr(self, f"conv{block}_{i}")(x), inplace=True)
            x = getattr(self, f"pool{block}")(x)
        return x

    def surgery_plan(self) -> SurgeryPlan:
        """conv1_1 ... conv5_3 copied; fc6 becomes a 7x7 and fc7 a 1x1 convolution."""
        return SurgeryPlan(tuple(name for _, name in vgg16_conv_names()), (("fc6", FC6_KERNEL), ("fc7", 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> logits (N, n_classes)."""
        x = torch.flatten(self.avgpool(self.features(x)), 1)  # (N, C5 * 7 * 7)
        x = self.drop6(F.relu(self.fc6(x), inplace=True))
        x = self.drop7(F.relu(self.fc7(x), inplace=True))
        return self.fc8(x)

    @classmethod
    def from_torchvision(cls, tv_model: nn.Module, dropout: float = 0.5) -> "VGG16Classifier":
        """Build from a torchvision `vgg16` module (weights copied, not shared)."""
        return load_torchvision_vgg16(tv_model.state_dict(), dropout=dropout)


def torchvision_key_map() -> dict[str, str]:
    """torchvision `vgg16` state-dict key -> our key (e.g. features.0.weight -> conv1_1.weight)."""
    features: list[str | None] = []  # torchvision's `features` Sequential
    for block, n in VGG16_BLOCKS:
        for i in range(1, n + 1):
            features += [f"conv{block}_{i}", None]  # conv, ReLU
        features.append(None)  # MaxPool2d
    # torchvision classifier: Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear
    classifier = ["fc6", None, None, "fc7", None, None, "fc8"]
    return sequential_key_map({"features": features, "classifier": classifier})


def load_torchvision_vgg16(
    state_dict: Mapping[str, torch.Tensor], dropout: float = 0.5
) -> VGG16Classifier:
    """Full-width VGG16Classifier holding a torchvision `vgg16` state dict (e.g. ImageNet weights).

    Rejects state dicts with missing or extra keys (vgg16_bn, vgg19, ...) by naming the first one.
    """
    return load_torchvision_classifier(  # type: ignore[return-value]
        state_dict,
        lambda n: VGG16Classifier(n_classes=n, width=1.0, dropout=dropout),
        torchvision_key_map(),
        "vgg16",
        "classifier.6.weight",
        fc_name="fc8",
        kind=" (without BN)",
    )
