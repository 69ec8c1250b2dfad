"""Architecture figures (FCN Table 1) computed from modules: hand-checked small nets + FCN-VGG16."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segcore.report import archfig
from segcore.models.fcn import compose
from segcore.models.registry import build_model, freeze_all_but


class Inception(nn.Module):
    """Toy inception module: 1x1 | 1x1 -> 3x3 | pool -> 1x1, concatenated (depth 2)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.b1 = nn.Conv2d(c, 2, 1)
        self.b2 = nn.Sequential(nn.Conv2d(c, 2, 1), nn.ReLU(), nn.Conv2d(2, 2, 3, padding=1))
        self.b3 = nn.Sequential(nn.MaxPool2d(3, 1, padding=1), nn.Conv2d(c, 2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b2(x), self.b3(x)], 1)


class Skip(nn.Module):
    """score = conv_a(x) + conv_c(conv_b(x)): the longer branch (2 layers) decides the depth."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_a, self.conv_b = nn.Conv2d(1, 2, 1), nn.Conv2d(1, 2, 3, padding=1)
        self.conv_c = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_a(x) + self.conv_c(F.relu(self.conv_b(x)))


class Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(2, 1, 3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.w)


@pytest.fixture(scope="module")
def fcn_vgg16() -> nn.Module:
    with torch.device("meta"):  # geometry and counts only: no 134M weights allocated
        return build_model("fcn32s", n_classes=21, width=1.0)


def test_receptive_field_of_small_chains() -> None:
    conv3 = lambda: nn.Conv2d(1, 1, 3, padding=1)  # noqa: E731
    assert archfig.receptive_field([conv3(), conv3()]) == (5, 1)
    assert archfig.receptive_field([conv3(), nn.MaxPool2d(2, 2), conv3()]) == (8, 2)
    assert archfig.receptive_field([nn.Conv2d(1, 1, 3, dilation=2)]) == (5, 1)
    assert archfig.receptive_field([nn.AvgPool2d(2), nn.Conv2d(1, 1, 3, stride=2)]) == (6, 4)
    assert archfig.receptive_field([]) == (1, 1)


def test_receptive_field_rejects_unknown_and_non_square_layers() -> None:
    with pytest.raises(ValueError, match="no receptive-field rule for ReLU"):
        archfig.receptive_field([nn.ReLU()])
    with pytest.raises(ValueError, match="non-square"):
        archfig.receptive_field([nn.Conv2d(1, 1, (3, 5))])


def test_full_fcn_vgg16_matches_table_1(fcn_vgg16: nn.Module) -> None:
    chain = archfig.fcn_chain(fcn_vgg16)
    assert archfig.receptive_field(chain) == (404, 32)
    assert compose(chain)[0] == Fraction(1, 32)  # same stride as the crop arithmetic
    fig = archfig.figures(fcn_vgg16, size=500)
    assert (fig.layers, fig.rf, fig.stride) == (16, 404, 32)
    assert fig.params == 134_346_581  # paper: 134M
    assert round(fig.params / 1e6, 1) == 134.3
    # 362.73 with a dense 21 x 21 upscore kernel; grouped, its 16 x 16 x 21 inputs spread over
    # 1 instead of 21 classes: 2 x 5376 x 20 x 64^2 = 0.88 GFLOPs fewer.
    assert fig.gflops == pytest.approx(362.73 - 2 * 16 * 16 * 21 * 20 * 64**2 / 1e9, abs=0.01)


def test_fcn_skip_variants_keep_the_trunk_figures() -> None:
    with torch.device("meta"):
        model = build_model("fcn8s", n_classes=21, learn_upsampling=True)
    fig = archfig.figures(model)
    assert (fig.layers, fig.rf, fig.stride) == (16, 404, 32)
    # To the output the learnable 2x upsamplings and the fixed upscore8 are on the path as well.
    assert archfig.parameter_layers(model, end=None) == 19


def test_frozen_layers_still_count() -> None:
    model = build_model("fcn32s", n_classes=3, width=1 / 16)
    freeze_all_but(model, ("score_fr",))
    assert archfig.parameter_layers(model, size=32) == 16


def test_parameter_layers_of_small_nets() -> None:
    plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 4, 1), nn.Conv2d(4, 2, 1))
    assert archfig.parameter_layers(plain, end=None, size=8) == 3  # batch norm is not counted
    assert archfig.parameter_layers(Skip(), end=None, size=8) == 2
    assert archfig.parameter_layers(Skip(), end="conv_a", size=8) == 1
    stem = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    net = nn.Sequential(stem, Inception(4), Inception(6), Inception(6))
    assert archfig.parameter_layers(net, end=None, size=8) == 1 + 3 * 2
    assert archfig.parameter_layers(net, end="1", size=8) == 3


def test_googlenet_is_22_deep() -> None:
    torchvision = pytest.importorskip("torchvision")
    with torch.device("meta"):
        net = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False)
    assert archfig.parameter_layers(net, end=None) == 22  # 3 + 9 inceptions x 2 + fc
    # torchvision's trunk (3x3 "5x5" branch, 2x2 pool4) sees less than Caffe GoogLeNet's 715.
    assert archfig.trace(net, 224, end="inception5b").field == (379, 32)


def test_caffe_googlenet_arithmetic_gives_the_papers_907() -> None:
    # The footnote in reports/table1.md: the 2014 Caffe GoogLeNet's widest path (5x5 branches, 3x3
    # pools) reaches 715 at inception5b; the paper's 907 counts the 7x7 average pooling FCN drops.
    def five_by_five() -> list[nn.Module]:  # an inception's widest branch: 1x1 reduce, then 5x5
        return [nn.Conv2d(1, 1, 1), nn.Conv2d(1, 1, 5, padding=2)]

    chain: list[nn.Module] = [nn.Conv2d(1, 1, 7, 2, 3), nn.MaxPool2d(3, 2), nn.Conv2d(1, 1, 1),
                              nn.Conv2d(1, 1, 3, padding=1), nn.MaxPool2d(3, 2)]
    for n_blocks in (2, 5, 2):  # 3a-3b, 4a-4e, 5a-5b, each group after a 3x3 stride-2 pool but the first
        if len(chain) > 5:
            chain.append(nn.MaxPool2d(3, 2))
        for _ in range(n_blocks):
            chain += five_by_five()
    assert archfig.receptive_field(chain) == (715, 32)
    assert archfig.receptive_field([*chain, nn.AvgPool2d(7, 1)]) == (907, 32)


def test_receptive_field_through_branches_and_adaptive_pooling() -> None:
    stem = nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2, 2))
    net = nn.Sequential(stem, Inception(4))
    fig = archfig.figures(net, size=16, end=None)
    assert (fig.rf, fig.stride) == (3 + 1 + 2 * 2, 2)  # the 3x3 branch is the widest
    pooled = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                           nn.Linear(4, 2))
    fig = archfig.figures(pooled, size=8, end=None)
    assert (fig.layers, fig.rf, fig.stride) == (2, None, None)


def test_flops_of_single_layers_by_hand() -> None:
    conv = nn.Conv2d(3, 8, 3, padding=1)
    assert archfig.flops(conv, size=10) == 2 * (8 * 10 * 10) * (3 * 3 * 3)
    grouped = nn.Conv2d(4, 8, 3, groups=2)
    assert archfig.flops(grouped, size=6) == 2 * (8 * 4 * 4) * (2 * 3 * 3)
    up = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ConvTranspose2d(2, 3, 4, stride=2, bias=False))
    # 1x1: 2 * (2*5*5) * 1; transposed: every input value (2*5*5) spreads 3 * 4*4 MACs.
    assert archfig.flops(up, size=5) == 2 * 50 + 2 * 50 * 3 * 16
    x, lin = torch.zeros(4, 10), nn.Linear(10, 6)
    assert archfig.layer_flops(lin, x, lin(x)) == 2 * 4 * 6 * 10


def test_trace_restores_mode_and_rejects_bad_use() -> None:
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Dropout())
    net.train()
    archfig.trace(net, 8, end=None)
    assert net.training and all(m.training for m in net.modules())
    with pytest.raises(ValueError, match="no module named 'score_fr'"):
        archfig.parameter_layers(net)
    with pytest.raises(ValueError, match="size must be >= 1"):
        archfig.trace(net, 0, end=None)
    with pytest.raises(ValueError, match="conv2d called outside a layer module"):
        archfig.trace(nn.Sequential(nn.Conv2d(1, 1, 1), Functional()), 8, end=None)
    with pytest.raises(ValueError, match="fcn_chain needs a segcore FCN"):
        archfig.fcn_chain(net)
