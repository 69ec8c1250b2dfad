"""Table 4 models: RGBD early fusion (a widened conv1_1) and RGB-HHA late fusion."""

from __future__ import annotations

import pytest
import torch

from segcore.models.registry import PARENT, build_model
from segcore.models.surgery import convolutionalise, transplant, transplant_streams, widen_input
from segcore.models.vgg import VGG16Classifier

TINY = 1 / 16


@pytest.mark.parametrize("name", ["fcn32s-rgbhha", "fcn16s-rgbhha"])
@pytest.mark.parametrize("size", [(1, 1), (17, 23), (64, 48)])
def test_fusion_output_is_input_sized_and_the_weighted_sum_of_its_streams(name, size):
    torch.manual_seed(0)
    model = build_model(name, n_classes=5, width=TINY).eval()
    for p in model.parameters():  # non-zero score layers, so the sum is not trivially 0
        torch.nn.init.normal_(p, std=0.05) if p.requires_grad else None
    x = torch.randn(2, 6, *size)
    out = model(x)
    assert out.shape == (2, 5, *size)
    expected = 0.5 * model.rgb(x[:, :3]) + 0.5 * model.hha(x[:, 3:])
    assert torch.allclose(out, expected)
    with pytest.raises(ValueError, match=r"expected input \(N, 6, H, W\)"):
        model(x[:, :3])


def test_summing_predictions_equals_summing_score_maps_before_one_upsampling():
    # The reference net fuses score_fr before its single upscore; with fixed upsampling the two agree.
    torch.manual_seed(1)
    model = build_model("fcn32s-rgbhha", n_classes=3, width=TINY).eval()
    for stream in (model.rgb, model.hha):
        torch.nn.init.normal_(stream.score_fr.weight, std=0.1)
    x = torch.randn(1, 6, 40, 36)
    fr = [s.score_fr(s._trunk(part)["fc7"]) for s, part in ((model.rgb, x[:, :3]), (model.hha, x[:, 3:]))]
    up = model.rgb.upscore(0.5 * fr[0] + 0.5 * fr[1])
    off = model.rgb.crop_offsets["score"]
    assert torch.allclose(model(x), up[..., off:off + 40, off:off + 36], atol=1e-6)


def test_streams_start_from_their_trained_single_modality_nets():
    torch.manual_seed(2)
    rgb, hha = (build_model("fcn32s", n_classes=4, width=TINY) for _ in range(2))
    fused = build_model("fcn32s-rgbhha", n_classes=4, width=TINY)
    copied = transplant_streams({"rgb": rgb.state_dict(), "hha": hha.state_dict()}, fused)
    assert "rgb.conv1_1.weight" in copied and "hha.score_fr.bias" in copied
    assert torch.equal(fused.rgb.fc6.weight, rgb.fc6.weight) and torch.equal(fused.hha.fc6.weight, hha.fc6.weight)
    assert PARENT["fcn16s-rgbhha"] == "fcn32s-rgbhha"
    child = build_model("fcn16s-rgbhha", n_classes=4, width=TINY)
    transplant(fused.state_dict(), child)  # staged: 16s fusion from the 32s fusion, by name
    assert torch.equal(child.hha.score_fr.weight, fused.hha.score_fr.weight)
    assert not child.rgb.score_pool4.weight.any()  # new skips start at zero
    with pytest.raises(ValueError, match="no stream 'depth'"):
        transplant_streams({"depth": rgb.state_dict()}, fused)


def test_rgbd_conv1_1_gets_the_mean_rgb_filter_as_its_depth_channel():
    trunk = convolutionalise(VGG16Classifier(n_classes=10, width=TINY))
    widened = widen_input(trunk, "conv1_1.weight", 4)
    w = widened["conv1_1.weight"]
    assert w.shape[1] == 4 and torch.equal(w[:, :3], trunk["conv1_1.weight"])
    assert torch.allclose(w[:, 3], trunk["conv1_1.weight"].mean(1))
    rgbd = build_model("fcn32s", n_classes=4, width=TINY, in_channels=4)
    transplant(widened, rgbd)
    assert torch.equal(rgbd.conv1_1.weight, w)
    # With a zero depth channel the RGBD net computes exactly what the RGB net does.
    rgb = build_model("fcn32s", n_classes=4, width=TINY)
    transplant(trunk, rgb)
    image = torch.randn(1, 3, 20, 20)
    assert torch.allclose(rgbd.conv1_1(torch.cat([image, torch.zeros(1, 1, 20, 20)], 1)), rgb.conv1_1(image))
    with pytest.raises(ValueError, match="widen_input"):
        widen_input(widened, "conv1_1.weight", 5)
