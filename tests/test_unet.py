"""U-Net architecture facts (spec/unet.md) and the same-size wrapper."""

import math

import pytest
import torch
from torch import nn

from segcore.models.unet import (MARGIN, SameSizeUNet, UNet, check_size, input_size_for,
                                 is_valid_size, mirror_index, nearest_valid_sizes, skip_crops)

pytestmark = pytest.mark.usefixtures("one_thread")


def meta_unet(**kw) -> UNet:
    with torch.device("meta"):  # the full-size net without allocating 31M weights
        return UNet(**kw)


def test_parameter_count_and_conv_layers():
    net = meta_unet(n_classes=2, in_channels=1, width=1.0)
    assert sum(p.numel() for p in net.parameters()) == 31_030_658
    convs = [n for n, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert len(convs) == 23
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in net.modules()) == 4
    assert convs[:2] == ["down1_conv1", "down1_conv2"] and convs[-1] == "final"
    assert net.up4.in_channels == 1024 and net.up4.out_channels == 512  # halving


def test_full_size_572_gives_388():
    net = meta_unet()
    out = net(torch.empty(1, 1, 572, 572, device="meta"))
    assert out.shape == (1, 2, 388, 388)


def test_skip_crops_match_the_forward():
    assert skip_crops() == (4, 16, 40, 88) == skip_crops(188)
    net, seen = meta_unet(), {}
    for level in (4, 3, 2, 1):  # up{l}_conv1's input = cropped skip ++ up-conv output
        getattr(net, f"down{level}_conv2").register_forward_hook(
            lambda m, i, o, level=level: seen.__setitem__(("skip", level), o.shape[-1]))
        getattr(net, f"up{level}").register_forward_hook(
            lambda m, i, o, level=level: seen.__setitem__(("up", level), o.shape[-1]))
    net(torch.empty(1, 1, 572, 572, device="meta"))
    crops = tuple((seen["skip", lv] - seen["up", lv]) // 2 for lv in (4, 3, 2, 1))
    assert crops == (4, 16, 40, 88)


def test_valid_sizes_and_errors():
    assert MARGIN == 92 and is_valid_size(188) and is_valid_size(572) and not is_valid_size(172)
    assert [n for n in range(150, 240) if is_valid_size(n)] == [188, 204, 220, 236]
    assert nearest_valid_sizes(573) == (572, 588) and nearest_valid_sizes(100) == (188,)
    assert input_size_for(1) == 188 and input_size_for(388) == 572 and input_size_for(389) == 588
    with pytest.raises(ValueError, match=r"573 is not valid.*572 or 588"):
        check_size(573)
    net = UNet(width=1 / 16)
    with pytest.raises(ValueError, match=r"input width 200 .*188 or 204"):
        net(torch.zeros(1, 1, 188, 200))
    with pytest.raises(ValueError, match="width"):
        UNet(width=0)


def test_he_init_std():
    torch.manual_seed(0)
    net = UNet(width=0.25)  # channels 16, 32, 64, 128, 256
    for layer in (net.up4, net.down5_conv2, net.up1_conv1):  # transposed, 3x3, 3x3 on a concat
        k = layer.kernel_size[0] * layer.kernel_size[1]
        want = math.sqrt(2.0 / (k * layer.in_channels))
        assert layer.weight.std().item() == pytest.approx(want, rel=0.03)
        assert layer.weight.mean().abs().item() < 0.05 * want
        assert torch.count_nonzero(layer.bias) == 0


@pytest.mark.parametrize("size", [(1, 1), (17, 500), (63, 127), (4, 188)])
def test_same_size_wrapper_shapes(size):
    torch.manual_seed(0)
    net = SameSizeUNet(n_classes=3, in_channels=2, width=1 / 16).eval()
    out = net(torch.rand(2, 2, *size))
    assert out.shape == (2, 3, *size) and torch.isfinite(out).all()
    assert net.n_classes == 3 and net.in_channels == 2


def test_same_size_state_dict_is_the_inner_nets():
    net = SameSizeUNet(width=1 / 16)
    inner = set(net.unet.state_dict())
    assert set(net.state_dict()) == {f"unet.{k}" for k in inner}
    with pytest.raises(ValueError, match=r"expected input \(N, 1, H, W\)"):
        net(torch.zeros(1, 3, 8, 8))


def test_mirror_index_reflects_repeatedly():
    assert mirror_index(3, 4, 4).tolist() == [0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2]
    assert mirror_index(1, 2, 3).tolist() == [0] * 6
    assert mirror_index(5, 2, 0).tolist() == [2, 1, 0, 1, 2, 3, 4]
