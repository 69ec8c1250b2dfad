"""GoogLeNet classifier and FCN-GoogLeNet in torchvision's GoogLeNet layout.

`BasicConv2d` and `Inception` below have torchvision's structure and attribute names (conv1,
conv2, conv3, inception3a ... inception5b, fc; branch1 ... branch4 inside), so its ImageNet
weights load key for key. They are written here rather than imported because importing
torchvision.models costs every stage process about a second.
The trunk differs from the paper's 2014 Caffe GoogLeNet: every conv is followed by batch norm,
the "5x5" branch uses a 3x3 kernel (torchvision issue 906), and there are no LRN layers.
Caffe names: conv1 = conv1/7x7_s2, conv2 = conv2/3x3_reduce, conv3 = conv2/3x3, pool1 ... pool4 =
pool1/3x3_s2 ... pool4/3x3_s2 (torchvision's maxpool1 ... maxpool4), fc = loss3/classifier.

torchvision's ImageNet GoogLeNet weights expect `transform_input=True`, i.e. RGB in [0, 1]
normalised with mean 0.5 and std 0.5 per channel (`TORCHVISION_GOOGLENET_NORMALISATION`), not the
usual ImageNet mean/std. Neither net here transforms its input: the backbone record must say so.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from segcore.models.fcn import SingleUpsamplingFCN
from segcore.models.layers import SurgeryPlan, channel_scaler, compose, load_torchvision_classifier

TORCHVISION_GOOGLENET_NORMALISATION = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}


class BasicConv2d(nn.Module):
    """conv (no bias) -> batch norm (eps 0.001) -> ReLU, as torchvision's."""

    def __init__(self, c_in: int, c_out: int, **conv: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, bias=False, **conv)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Four branches concatenated: 1x1 | 1x1 -> 3x3 | 1x1 -> "5x5" (3x3, as torchvision) | pool -> 1x1."""

    def __init__(self, c_in: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int,
                 pool_proj: int) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(c_in, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(BasicConv2d(c_in, ch3x3red, kernel_size=1),
                                     BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(c_in, ch5x5red, kernel_size=1),
                                     BasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                     BasicConv2d(c_in, pool_proj, kernel_size=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)

# Inception blocks: (1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool proj) at width 1; a 3x3 max
# pool (stride 2) precedes 4a, a 2x2 one precedes 5a.
INCEPTIONS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("inception3a", (64, 96, 128, 16, 32, 32)),
    ("inception3b", (128, 128, 192, 32, 96, 64)),
    ("inception4a", (192, 96, 208, 16, 48, 64)),
    ("inception4b", (160, 112, 224, 24, 64, 64)),
    ("inception4c", (128, 128, 256, 24, 64, 64)),
    ("inception4d", (112, 144, 288, 32, 64, 64)),
    ("inception4e", (256, 160, 320, 32, 128, 128)),
    ("inception5a", (256, 160, 320, 32, 128, 128)),
    ("inception5b", (384, 192, 384, 48, 128, 128)),
)
_POOL_BEFORE = {"inception4a": ("pool3", 3), "inception5a": ("pool4", 2)}
CLASSIFIER_CONV1_PAD = 3  # torchvision's
# FCN: the smallest conv1 pad with which a 1x1 input still gives pool1 ... pool4 (3, 3, 3, 2) a
# full window; VGG-FCN's 100 is not needed (no large valid conv like fc6) and would double the work.
FCN_CONV1_PAD = 18
UPSCORE_KERNEL = 63  # odd: with k64 the upscore centre would sit half a pixel off the input grid
FCN_DROPOUT = 0.4  # the 2014 GoogLeNet's dropout before its classifier


def _add_trunk(
    module: nn.Module, width: float, in_channels: int, conv1_pad: int
) -> tuple[list[str], int]:
    """Add conv1 ... inception5b to `module`; return their names in order and the output width."""
    scale = channel_scaler(width)
    c1, c2, c3 = scale(64), scale(64), scale(192)
    module.conv1 = BasicConv2d(in_channels, c1, kernel_size=7, stride=2, padding=conv1_pad)
    module.pool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
    module.conv2 = BasicConv2d(c1, c2, kernel_size=1)
    module.conv3 = BasicConv2d(c2, c3, kernel_size=3, padding=1)
    module.pool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
    names, c_in = ["conv1", "pool1", "conv2", "conv3", "pool2"], c3
    for name, channels in INCEPTIONS:
        if name in _POOL_BEFORE:
            pool, k = _POOL_BEFORE[name]
            module.add_module(pool, nn.MaxPool2d(k, stride=2, ceil_mode=True))
            names.append(pool)
        b1, b2r, b2, b3r, b3, b4 = (scale(c) for c in channels)
        module.add_module(name, Inception(c_in, b1, b2r, b2, b3r, b3, b4))
        names.append(name)
        c_in = b1 + b2 + b3 + b4  # the four branches are concatenated
    return names, c_in


def _init(module: nn.Module) -> None:
    """He-normal convs, N(0, 0.01) linears, BN at identity: an untrained net passes signal in eval."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class GoogLeNetClassifier(nn.Module):
    """torchvision GoogLeNet without auxiliary classifiers: trunk, global avg pool, dropout, fc.

    Input (N, 3, H, W) with H, W >= 15; output logits (N, n_classes). No input transform.
    """

    def __init__(self, n_classes: int = 1000, width: float = 1.0, dropout: float = 0.2) -> None:
        super().__init__()
        if n_classes < 1:
            raise ValueError(f"n_classes must be >= 1, got {n_classes}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.n_classes, self.width = n_classes, width
        self.trunk_names, c_out = _add_trunk(self, width, 3, CLASSIFIER_CONV1_PAD)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(c_out, n_classes)
        _init(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> inception5b (N, 1024 * width, H / 32, W / 32)."""
        for name in self.trunk_names:
            x = getattr(self, name)(x)
        return x

    def surgery_plan(self) -> SurgeryPlan:
        """No fc6 / fc7: the trunk ends in inception5b, and its 1000-way fc has no FCN counterpart."""
        return SurgeryPlan(tuple(n for n in self.trunk_names if not n.startswith("pool")), ())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> logits (N, n_classes)."""
        x = torch.flatten(self.avgpool(self.features(x)), 1)  # (N, 1024)
        return self.fc(self.dropout(x))


def load_torchvision_googlenet(
    state_dict: Mapping[str, torch.Tensor], dropout: float = 0.2
) -> GoogLeNetClassifier:
    """Full-width GoogLeNetClassifier holding a torchvision `googlenet` state dict.

    aux1.* / aux2.* (the auxiliary classifiers, present in torchvision's ImageNet checkpoint) are
    dropped: FCN-GoogLeNet has none. Any other unknown or missing key raises ValueError.
    """
    return load_torchvision_classifier(  # type: ignore[return-value]
        state_dict,
        lambda n: GoogLeNetClassifier(n_classes=n, width=1.0, dropout=dropout),
        None,  # our names are torchvision's (pools hold none)
        "googlenet",
        "fc.weight",
        ignored_prefixes=("aux1.", "aux2."),
    )


def _leaf_layers(module: nn.Module) -> list[nn.Module]:
    """Convs and pools of a chain of modules, in forward (= definition) order."""
    return [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.MaxPool2d))]


def check_inception_aligned(block: Inception) -> None:
    """Raise ValueError unless every branch maps pixel coordinates to themselves.

    Then the concatenation is aligned and the block is invisible to the crop arithmetic.
    """
    for name in ("branch1", "branch2", "branch3", "branch4"):
        scale, offset = compose(_leaf_layers(getattr(block, name)))
        if scale != 1 or offset != 0:
            raise ValueError(f"{name} of {block} maps x -> {scale} x + {offset}; expected x -> x")


class FCNGoogLeNet(SingleUpsamplingFCN):
    """FCN-GoogLeNet (paper Table 1): trunk to inception5b (stride 32), conv1 pad 18, no average
    pooling, dropout 0.4, score_fr 1x1 (zero), upscore k63 s32 (fixed bilinear), crop.

    Input (N, in_channels, H, W) -> logits (N, n_classes, H, W) for any H, W >= 1.

    Batch norm is frozen by default (`frozen_bn`): BN layers stay in eval mode under `.train()`,
    using their stored statistics as a fixed affine map. Why: FCN trains on one whole image per
    step, so batch statistics would come from a single image (and fail outright once a map is
    1x1), and the paper's 2014 GoogLeNet had no BN to update. BN's scale and shift still learn.
    """

    def __init__(
        self, n_classes: int, width: float = 1.0, in_channels: int = 3, frozen_bn: bool = True
    ) -> None:
        super().__init__()
        self.frozen_bn = frozen_bn
        if n_classes < 1 or in_channels < 1:
            raise ValueError(
                f"n_classes and in_channels must be >= 1, got {n_classes} and {in_channels}"
            )
        self.n_classes, self.in_channels = n_classes, in_channels
        self.trunk_names, c_out = _add_trunk(self, width, in_channels, FCN_CONV1_PAD)
        self.drop = nn.Dropout(FCN_DROPOUT)  # element-wise, as Caffe
        _init(self)
        self._build_head(c_out, n_classes, UPSCORE_KERNEL, 32)
        self.train()  # applies frozen_bn

    def train(self, mode: bool = True) -> "FCNGoogLeNet":
        """As nn.Module.train, but BN layers stay in eval mode when `frozen_bn`."""
        super().train(mode)
        if self.frozen_bn:
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self

    def coordinate_path(self) -> list[nn.Module]:
        path: list[nn.Module] = []
        for name in self.trunk_names:
            layer = getattr(self, name)
            if isinstance(layer, Inception):
                check_inception_aligned(layer)  # contributes x -> x
            else:
                path += _leaf_layers(layer)
        return path

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> inception5b after dropout (N, 1024 * width, h, w)."""
        for name in self.trunk_names:
            x = getattr(self, name)(x)
        return self.drop(x)
