"""FLOP counting (segcore.report.flops): hand-computed tiny net, full-size FCN-32s against a per-layer
formula written here independently, and the peak / ceiling helpers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from segcore.report.flops import (
    forward_flops,
    forward_flops_by_layer,
    measured_matmul_flops,
    peak_flops,
    training_flops,
)
from segcore.models.registry import build_model


class Tiny(nn.Module):
    """(N, 3, 6, 6) -> (N, 10): plain conv, grouped conv, grouped transposed conv (6 -> 12), linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=4)
        self.up = nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1, groups=2)
        self.fc = nn.Linear(4 * 12 * 12, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.up(self.grouped(self.conv(x))).flatten(1))


def test_tiny_net_matches_hand_count():
    n = 2  # the count scales with the batch
    expected = {
        "conv": 2 * n * (6 * 6) * 8 * 3 * 3 * 3,  # per output pixel: C_out x C_in x k x k
        "grouped": 2 * n * (6 * 6) * 8 * (8 // 4) * 3 * 3,  # each output sees C_in / groups
        "up": 2 * n * (6 * 6) * 8 * (4 // 2) * 4 * 4,  # per INPUT pixel: C_in x C_out / groups x k x k
        "fc": 2 * n * 576 * 10,
    }
    assert expected == {"conv": 31104, "grouped": 20736, "up": 36864, "fc": 23040}
    torch.manual_seed(0)
    assert forward_flops_by_layer(Tiny(), (n, 3, 6, 6)) == expected
    with torch.device("meta"):  # shapes alone give the same count
        assert forward_flops(Tiny(), (n, 3, 6, 6)) == sum(expected.values())


def fcn32s_vgg16_flops(size: int, classes: int = 21) -> int:
    """Forward FLOPs of FCN-32s on a size x size image, layer by layer from the paper's net.

    conv1_1 pads 100 (so its output is size + 198), every other 3x3 conv pads 1, the five 2x2
    pools round up (Caffe), fc6 is a 7x7 conv without padding, fc7 and score_fr are 1x1, and the
    fixed upscore (k 64, stride 32) upsamples each class on its own (groups = classes).
    """
    blocks = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))
    flops, c_in, side = 0, 3, size + 2 * 100 - 2
    for convs, c_out in blocks:
        for _ in range(convs):
            flops += 2 * side * side * c_out * c_in * 9
            c_in = c_out
        side = math.ceil(side / 2)
    side -= 6  # fc6, 7x7 valid
    flops += 2 * side * side * 4096 * 512 * 49  # fc6
    flops += 2 * side * side * 4096 * 4096  # fc7
    flops += 2 * side * side * classes * 4096  # score_fr
    flops += 2 * side * side * classes * 1 * 64 * 64  # upscore, per input pixel
    return flops


@pytest.mark.parametrize("size", [500, 333])
def test_full_fcn32s_matches_independent_formula(size):
    with torch.device("meta"):  # full-size VGG16 without allocating its 136M weights
        model = build_model("fcn32s", n_classes=21, width=1.0)
    counted = forward_flops(model, (1, 3, size, size))
    assert counted == fcn32s_vgg16_flops(size)
    # torch's own dispatch-level counter, a second independent implementation
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, size, size, device="meta"))
    assert counted == counter.get_total_flops()


def test_full_fcn32s_500_in_sensible_range():
    # About 181 GMACs: VGG16 at 224 is 15.5 GMACs; padding 100 makes conv1 run on 698x698
    # ((698 / 224)^2 = 9.7x the area) and fc6 / fc7 run on 16x16 positions instead of one.
    assert fcn32s_vgg16_flops(500) == 361_850_906_112
    assert 3.5e11 < fcn32s_vgg16_flops(500) < 3.7e11
    assert training_flops(fcn32s_vgg16_flops(500)) == 3 * 361_850_906_112


def test_peak_flops_by_name(monkeypatch):
    assert peak_flops("cpu", torch.float32) is None
    cases = {
        ("NVIDIA H100 80GB HBM3", torch.bfloat16): 989.4e12,
        ("NVIDIA H100 80GB HBM3", "tf32"): 494.7e12,
        ("NVIDIA H200", torch.float32): 67e12,
        ("NVIDIA H100 PCIe", torch.float32): 51.2e12,
        ("NVIDIA H100 PCIe", torch.float16): 756e12,
        ("NVIDIA A100-SXM4-80GB", "tf32"): 156e12,
        ("NVIDIA H100 NVL", torch.bfloat16): None,  # not in the table: no guess
        ("NVIDIA GeForce RTX 4090", torch.float32): None,
    }
    for (name, dtype), peak in cases.items():
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None, name=name: name)
        assert peak_flops("cuda", dtype) == peak, name


def test_bad_precision_names_the_value():
    with pytest.raises(ValueError, match="fp64"):
        peak_flops("cpu", "fp64")
    with pytest.raises(ValueError, match="tf32 needs a CUDA device"):
        measured_matmul_flops("cpu", "tf32")


def test_measured_matmul_flops_on_cpu(one_thread):
    rate = measured_matmul_flops("cpu", torch.float32, n=128, repeats=2)
    assert 1e8 < rate < 1e13  # any working CPU, far from any absurd value
