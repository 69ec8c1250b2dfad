"""AlexNet classifier (torchvision layout, paper layer names) and FCN-AlexNet.

torchvision's AlexNet is not the Caffe AlexNet of the paper: conv1 has 64 filters instead of 96,
conv2/conv4/conv5 are not grouped, and there is no LRN. The geometry (kernels, strides, pads) is the
same, so FCN-AlexNet built on it has the reference net's crop offset (18), but its parameter count
is its own (see `tests/test_models_table1.py`).
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from segcore.models.fcn import SingleUpsamplingFCN
from segcore.models.layers import SurgeryPlan, channel_scaler, load_torchvision_classifier, sequential_key_map
from segcore.models.vgg import init_vgg_weights

# (name, output channels at width 1, kernel, stride, padding) for conv1 ... conv5.
ALEXNET_CONVS: tuple[tuple[str, int, int, int, int], ...] = (
    ("conv1", 64, 11, 4, 2),
    ("conv2", 192, 5, 1, 2),
    ("conv3", 384, 3, 1, 1),
    ("conv4", 256, 3, 1, 1),
    ("conv5", 256, 3, 1, 1),
)
POOL_AFTER = {"conv1": "pool1", "conv2": "pool2", "conv5": "pool5"}  # 3x3 max pools, stride 2
FC6_KERNEL = 6  # fc6 sees a 6x6 pool5 map at 224 px input
_BASE_FC = 4096
FCN_CONV1_PAD = 100  # as voc-fcn-alexnet: lets any input size survive fc6 (6x6, pad 0)
UPSCORE_KERNEL = 63  # odd: with k64 the upscore centre would sit half a pixel off the input grid


class AlexNetPlan(NamedTuple):
    """Channel plan of a (possibly slimmed) AlexNet."""

    convs: tuple[int, ...]  # output channels of conv1 ... conv5
    fc: int  # width of fc6 / fc7


def alexnet_channels(width: float) -> AlexNetPlan:
    """Channel plan scaled by `width` in (0, 1]: width 1 gives 64, 192, 384, 256, 256 and fc 4096."""
    scale = channel_scaler(width)
    return AlexNetPlan(tuple(scale(c) for _, c, *_ in ALEXNET_CONVS), scale(_BASE_FC))


def _add_trunk(
    module: nn.Module, plan: AlexNetPlan, in_channels: int, conv1_pad: int, ceil_mode: bool
) -> list[str]:
    """Add conv1 ... pool5 to `module`; return their names in forward order."""
    names, c_in = [], in_channels
    for (name, _, k, s, p), c_out in zip(ALEXNET_CONVS, plan.convs):
        pad = conv1_pad if name == "conv1" else p
        module.add_module(name, nn.Conv2d(c_in, c_out, k, stride=s, padding=pad))
        names.append(name)
        if name in POOL_AFTER:
            module.add_module(POOL_AFTER[name], nn.MaxPool2d(3, 2, ceil_mode=ceil_mode))
            names.append(POOL_AFTER[name])
        c_in = c_out
    return names


def _run_trunk(module: nn.Module, names: list[str], x: torch.Tensor) -> torch.Tensor:
    """conv (+ ReLU) and pool layers in order: (N, C_in, H, W) -> pool5."""
    for name in names:
        x = getattr(module, name)(x)
        if name.startswith("conv"):
            x = F.relu(x, inplace=True)
    return x


class AlexNetClassifier(nn.Module):
    """torchvision AlexNet with paper names: conv1 ... conv5, pool1/2/5, fc6, fc7, fc8.

    Input (N, 3, H, W) with H, W >= 63; output logits (N, n_classes). Dropout sits where torchvision
    has it (on pool5 and on fc6's output: `drop5`, `drop6`); it only matters in training.
    """

    def __init__(self, n_classes: int = 1000, width: float = 1.0, dropout: float = 0.5) -> None:
        super().__init__()
        if n_classes < 1:
            raise ValueError(f"n_classes must be >= 1, got {n_classes}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        plan = alexnet_channels(width)
        self.n_classes, self.width = n_classes, width
        self.trunk_names = _add_trunk(self, plan, 3, conv1_pad=2, ceil_mode=False)
        self.avgpool = nn.AdaptiveAvgPool2d(FC6_KERNEL)  # identity at 224 px input
        self.fc6 = nn.Linear(plan.convs[-1] * FC6_KERNEL * FC6_KERNEL, plan.fc)
        self.fc7 = nn.Linear(plan.fc, plan.fc)
        self.fc8 = nn.Linear(plan.fc, n_classes)
        self.drop5, self.drop6 = nn.Dropout(dropout), nn.Dropout(dropout)
        init_vgg_weights(self)  # He init: an untrained net still passes signal (see vgg.py)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Conv trunk: (N, 3, H, W) -> pool5 (N, C5, h, w); 6x6 at 224 px."""
        return _run_trunk(self, self.trunk_names, x)

    def surgery_plan(self) -> SurgeryPlan:
        """Its convolutions copied; fc6 becomes a 6x6 and fc7 a 1x1 convolution."""
        convs = tuple(n for n in self.trunk_names if n.startswith("conv"))
        return SurgeryPlan(convs, (("fc6", FC6_KERNEL), ("fc7", 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> logits (N, n_classes)."""
        x = torch.flatten(self.avgpool(self.features(x)), 1)  # (N, C5 * 6 * 6)
        x = F.relu(self.fc6(self.drop5(x)), inplace=True)
        x = F.relu(self.fc7(self.drop6(x)), inplace=True)
        return self.fc8(x)


def torchvision_alexnet_key_map() -> dict[str, str]:
    """torchvision `alexnet` key -> our key (features.0.weight -> conv1.weight, ...)."""
    features: list[str | None] = []  # torchvision's `features` Sequential
    for name, *_ in ALEXNET_CONVS:
        features += [name, None] + ([None] if name in POOL_AFTER else [])  # conv, ReLU, [MaxPool]
    # torchvision classifier: Dropout, Linear, ReLU, Dropout, Linear, ReLU, Linear
    classifier = [None, "fc6", None, None, "fc7", None, "fc8"]
    return sequential_key_map({"features": features, "classifier": classifier})


def load_torchvision_alexnet(
    state_dict: Mapping[str, torch.Tensor], dropout: float = 0.5
) -> AlexNetClassifier:
    """Full-width AlexNetClassifier holding a torchvision `alexnet` state dict (ImageNet weights)."""
    return load_torchvision_classifier(  # type: ignore[return-value]
        state_dict,
        lambda n: AlexNetClassifier(n_classes=n, width=1.0, dropout=dropout),
        torchvision_alexnet_key_map(),
        "alexnet",
        "classifier.6.weight",
        fc_name="fc8",
    )


class FCNAlexNet(SingleUpsamplingFCN):
    """FCN-AlexNet (paper Table 1): conv1 pad 100, ceil pools, fc6 6x6 conv, upscore k63 s32.

    Input (N, in_channels, H, W) -> logits (N, n_classes, H, W) for any H, W >= 1.
    """

    def __init__(self, n_classes: int, width: float = 1.0, in_channels: int = 3) -> None:
        super().__init__()
        if n_classes < 1 or in_channels < 1:
            raise ValueError(
                f"n_classes and in_channels must be >= 1, got {n_classes} and {in_channels}"
            )
        self.n_classes, self.in_channels = n_classes, in_channels
        plan = alexnet_channels(width)
        # Caffe pooling rounds up; FCN's crop arithmetic assumes it (as in fcn.py).
        self.trunk_names = _add_trunk(self, plan, in_channels, FCN_CONV1_PAD, ceil_mode=True)
        self.fc6 = nn.Conv2d(plan.convs[-1], plan.fc, FC6_KERNEL)
        self.fc7 = nn.Conv2d(plan.fc, plan.fc, 1)
        self.drop6, self.drop7 = nn.Dropout(0.5), nn.Dropout(0.5)  # element-wise, as Caffe
        init_vgg_weights(self)  # trunk only; the head below has its own zero / bilinear init
        self._build_head(plan.fc, n_classes, UPSCORE_KERNEL, 32)

    def coordinate_path(self) -> list[nn.Module]:
        return [getattr(self, n) for n in self.trunk_names] + [self.fc6, self.fc7]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> fc7 (N, F, h, w)."""
        x = _run_trunk(self, self.trunk_names, x)
        x = self.drop6(F.relu(self.fc6(x), inplace=True))
        return self.drop7(F.relu(self.fc7(x), inplace=True))
