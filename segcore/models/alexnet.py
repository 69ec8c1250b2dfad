"""AlexNet in the paper's layout (Caffe's CaffeNet) as a classifier, and FCN-AlexNet on it.

The paper's AlexNet is Caffe's reference CaffeNet (BVLC's `bvlc_reference_caffenet`, on which the
reference voc-fcn-alexnet is built too):

    conv1 96 11x11 s4 -> ReLU -> pool1 3x3 s2 -> norm1 (LRN)
    conv2 256 5x5 pad 2, 2 groups -> ReLU -> pool2 -> norm2
    conv3 384 3x3 pad 1 ; conv4 384 3x3 pad 1, 2 groups ; conv5 256 3x3 pad 1, 2 groups -> pool5
    fc6 4096 (pool5's 256 x 6 x 6) ; fc7 4096 ; fc8 (classifier) or score_fr (FCN)

Pooling comes before normalisation, CaffeNet's order (BVLC's `bvlc_alexnet` normalises first: its
weights belong to another net). The groups are AlexNet's two-GPU split: each half of conv2/4/5's
filters sees one half of its input channels. Max pools round up, as Caffe's. LRN is Caffe's
ACROSS_CHANNELS: x / (k + alpha / n * sum of x^2 over n neighbouring channels)^beta, which is
`nn.LocalResponseNorm(n, alpha, beta, k)` (it divides alpha by n too; tests/test_models_table1.py
checks it against the formula). torchvision's AlexNet is another net (64 conv1 filters, no groups,
no LRN): its ImageNet weights do not fit this layout.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from segcore.models.fcn import SingleUpsamplingFCN
from segcore.models.layers import SurgeryPlan, channel_scaler
from segcore.models.vgg import init_vgg_weights


class ConvSpec(NamedTuple):
    name: str
    channels: int  # output channels at width 1
    kernel: int
    stride: int
    pad: int  # the classifier's; the FCN pads conv1 by FCN_CONV1_PAD instead
    groups: int


ALEXNET_CONVS: tuple[ConvSpec, ...] = (
    ConvSpec("conv1", 96, 11, 4, 0, 1),
    ConvSpec("conv2", 256, 5, 1, 2, 2),
    ConvSpec("conv3", 384, 3, 1, 1, 1),
    ConvSpec("conv4", 384, 3, 1, 1, 2),
    ConvSpec("conv5", 256, 3, 1, 1, 2),
)
GROUPS = 2  # the largest group count above: every conv width is a multiple of it at any net width
POOL_AFTER = {"conv1": "pool1", "conv2": "pool2", "conv5": "pool5"}  # 3x3 max pools, stride 2, ceil
NORM_AFTER = {"pool1": "norm1", "pool2": "norm2"}
LRN = {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 1.0}  # Caffe's lrn_param in CaffeNet
FC6_KERNEL = 6  # fc6 sees a 6x6 pool5 map at 224 and 227 px input
_BASE_FC = 4096
FCN_CONV1_PAD = 100  # as voc-fcn-alexnet: lets any input size survive fc6 (6x6, pad 0)
UPSCORE_KERNEL = 63  # odd: with k64 the upscore centre would sit half a pixel off the input grid


class AlexNetPlan(NamedTuple):
    """Channel plan of a (possibly slimmed) AlexNet."""

    convs: tuple[int, ...]  # output channels of conv1 ... conv5
    fc: int  # width of fc6 / fc7


def alexnet_channels(width: float) -> AlexNetPlan:
    """Channel plan scaled by `width` in (0, 1]: width 1 gives 96, 256, 384, 384, 256 and fc 4096.

    Conv widths are rounded to a multiple of GROUPS so the grouped convs stay valid at any width
    (1/16: 6, 16, 24, 24, 16).
    """
    scale = channel_scaler(width)
    convs = tuple(GROUPS * scale(c.channels // GROUPS) for c in ALEXNET_CONVS)
    return AlexNetPlan(convs, scale(_BASE_FC))


def _add_trunk(module: nn.Module, plan: AlexNetPlan, in_channels: int, conv1_pad: int) -> list[str]:
    """Add conv1 ... pool5 (with norm1, norm2) to `module`; return their names in forward order."""
    names, c_in = [], in_channels
    for spec, c_out in zip(ALEXNET_CONVS, plan.convs):
        pad = conv1_pad if spec.name == "conv1" else spec.pad
        module.add_module(spec.name, nn.Conv2d(c_in, c_out, spec.kernel, spec.stride, pad, groups=spec.groups))
        names.append(spec.name)
        pool = POOL_AFTER.get(spec.name)
        if pool is not None:
            module.add_module(pool, nn.MaxPool2d(3, 2, ceil_mode=True))  # Caffe rounds up
            names.append(pool)
            if pool in NORM_AFTER:
                module.add_module(NORM_AFTER[pool], nn.LocalResponseNorm(**LRN))
                names.append(NORM_AFTER[pool])
        c_in = c_out
    return names


def _run_trunk(module: nn.Module, names: list[str], x: torch.Tensor) -> torch.Tensor:
    """conv (+ ReLU), pool and LRN layers in order: (N, C_in, H, W) -> pool5."""
    for name in names:
        x = getattr(module, name)(x)
        if name.startswith("conv"):
            x = F.relu(x, inplace=True)
    return x


class AlexNetClassifier(nn.Module):
    """CaffeNet with Caffe's names: conv1 ... conv5, pool1/2/5, norm1/2, fc6, fc7, fc8.

    Input (N, 3, H, W) with H, W >= 39 (pool5 at least 1x1); output logits (N, n_classes). As Caffe's deploy net, conv1
    is unpadded and dropout follows fc6 and fc7 (`drop6`, `drop7`; only in training). pool5 is
    adaptively average-pooled to 6x6 (the identity at 224 or 227 px), so small images fit too.
    """

    def __init__(self, n_classes: int = 1000, width: float = 1.0, dropout: float = 0.5) -> None:
        super().__init__()
        if n_classes < 1:
            raise ValueError(f"n_classes must be >= 1, got {n_classes}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        plan = alexnet_channels(width)
        self.n_classes, self.width = n_classes, width
        self.trunk_names = _add_trunk(self, plan, 3, conv1_pad=ALEXNET_CONVS[0].pad)
        self.avgpool = nn.AdaptiveAvgPool2d(FC6_KERNEL)
        self.fc6 = nn.Linear(plan.convs[-1] * FC6_KERNEL * FC6_KERNEL, plan.fc)
        self.fc7 = nn.Linear(plan.fc, plan.fc)
        self.fc8 = nn.Linear(plan.fc, n_classes)
        self.drop6, self.drop7 = nn.Dropout(dropout), nn.Dropout(dropout)
        init_vgg_weights(self)  # He init: an untrained net still passes signal (see vgg.py)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Conv trunk: (N, 3, H, W) -> pool5 (N, C5, h, w); 6x6 at 224 or 227 px."""
        return _run_trunk(self, self.trunk_names, x)

    def surgery_plan(self) -> SurgeryPlan:
        """Its convolutions copied (groups and all); fc6 becomes a 6x6 and fc7 a 1x1 convolution."""
        return SurgeryPlan(tuple(c.name for c in ALEXNET_CONVS), (("fc6", FC6_KERNEL), ("fc7", 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> logits (N, n_classes)."""
        x = torch.flatten(self.avgpool(self.features(x)), 1)  # (N, C5 * 6 * 6), Caffe's (C, H, W) order
        x = self.drop6(F.relu(self.fc6(x), inplace=True))
        x = self.drop7(F.relu(self.fc7(x), inplace=True))
        return self.fc8(x)


class FCNAlexNet(SingleUpsamplingFCN):
    """FCN-AlexNet (paper Table 1): CaffeNet with conv1 pad 100, fc6 a 6x6 conv, upscore k63 s32.

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
        self.trunk_names = _add_trunk(self, plan, in_channels, FCN_CONV1_PAD)
        self.fc6 = nn.Conv2d(plan.convs[-1], plan.fc, FC6_KERNEL)
        self.fc7 = nn.Conv2d(plan.fc, plan.fc, 1)
        self.drop6, self.drop7 = nn.Dropout(0.5), nn.Dropout(0.5)  # element-wise, as Caffe
        init_vgg_weights(self)  # trunk only; the head below has its own zero / bilinear init
        self._build_head(plan.fc, n_classes, UPSCORE_KERNEL, 32)

    def coordinate_path(self) -> list[nn.Module]:
        # LRN works across channels, pixel by pixel: it does not move coordinates.
        layers = [getattr(self, n) for n in self.trunk_names if n not in NORM_AFTER.values()]
        return layers + [self.fc6, self.fc7]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> fc7 (N, F, h, w)."""
        x = _run_trunk(self, self.trunk_names, x)
        x = self.drop6(F.relu(self.fc6(x), inplace=True))
        return self.drop7(F.relu(self.fc7(x), inplace=True))
