"""FCN-AlexNet and FCN-GoogLeNet (paper Table 1): layouts, weights, surgery, geometry, counts.

The generic model contract (logits at input size for odd sizes) runs over these models in
tests/test_models.py because they are registered in MODELS.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segcore.models.alexnet import (
    ALEXNET_CONVS,
    LRN,
    NORM_AFTER,
    POOL_AFTER,
    AlexNetClassifier,
    FCNAlexNet,
    alexnet_channels,
)
from segcore.models.googlenet import FCNGoogLeNet, GoogLeNetClassifier, load_torchvision_googlenet
from segcore.models.layers import bilinear_kernel
from segcore.models.registry import MODELS, build_model, parameter_count
from segcore.models.surgery import convolutionalise, transplant

torchvision = pytest.importorskip("torchvision")

TINY = 0.0625
FCN_CLASSES = (FCNAlexNet, FCNGoogLeNet)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _randomise(model: nn.Module, seed: int) -> None:
    """Random, non-trivial parameters and BN statistics, so equality tests mean something."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))


# The reference voc-fcn-alexnet (CaffeNet): (weight shape, stride, pad, groups) per weighted layer, 21 classes.
CAFFENET_FCN = {
    "conv1": ((96, 3, 11, 11), 4, 100, 1),
    "conv2": ((256, 48, 5, 5), 1, 2, 2),
    "conv3": ((384, 256, 3, 3), 1, 1, 1),
    "conv4": ((384, 192, 3, 3), 1, 1, 2),
    "conv5": ((256, 192, 3, 3), 1, 1, 2),
    "fc6": ((4096, 256, 6, 6), 1, 0, 1),
    "fc7": ((4096, 4096, 1, 1), 1, 0, 1),
    "score_fr": ((21, 4096, 1, 1), 1, 0, 1),
}


def test_fcn_alexnet_is_the_reference_caffenet_layout() -> None:
    with torch.device("meta"):
        fcn, clf = FCNAlexNet(21), AlexNetClassifier(1000)
    for name, (shape, stride, pad, groups) in CAFFENET_FCN.items():
        conv = getattr(fcn, name)
        assert (tuple(conv.weight.shape), conv.stride, conv.padding, conv.groups) == \
            (shape, (stride, stride), (pad, pad), groups), name
    assert fcn.upscore.kernel_size == (63, 63) and fcn.upscore.stride == (32, 32)
    # Pool, then LRN (CaffeNet's order); every pool 3x3 stride 2 rounding up, as Caffe's.
    assert fcn.trunk_names == ["conv1", "pool1", "norm1", "conv2", "pool2", "norm2", "conv3", "conv4", "conv5",
                               "pool5"]
    for pool in ("pool1", "pool2", "pool5"):
        p = getattr(fcn, pool)
        assert (p.kernel_size, p.stride, p.padding, p.ceil_mode) == (3, 2, 0, True)
    for norm in ("norm1", "norm2"):
        n = getattr(fcn, norm)
        assert isinstance(n, nn.LocalResponseNorm) and (n.size, n.alpha, n.beta, n.k) == (5, 1e-4, 0.75, 1.0)
    # The classifier: conv1 unpadded (Caffe's deploy net), fc6 over pool5's 256 x 6 x 6, fc8 1000-way.
    assert clf.trunk_names == fcn.trunk_names and clf.conv1.padding == (0, 0)
    assert {n: tuple(getattr(clf, n).weight.shape) for n in ("conv2", "fc6", "fc7", "fc8")} == {
        "conv2": (256, 48, 5, 5), "fc6": (4096, 9216), "fc7": (4096, 4096), "fc8": (1000, 4096)}
    x = torch.empty(1, 3, 227, 227, device="meta")
    assert clf.features(x).shape == (1, 256, 6, 6)  # the deploy net's input size


def test_lrn_is_caffes_across_channel_formula() -> None:
    """Caffe: x / (k + alpha / n * sum of x^2 over the n channels centred on x, zero-padded)^beta."""
    x = 20 * torch.randn(2, 7, 3, 4, dtype=torch.float64)  # large values: the normaliser is far from 1
    n, alpha, beta, k = LRN["size"], LRN["alpha"], LRN["beta"], LRN["k"]
    padded = F.pad(x * x, (0, 0, 0, 0, n // 2, n // 2))  # (2, 7 + 4, 3, 4) along channels
    window = sum(padded[:, i:i + x.shape[1]] for i in range(n))  # (2, 7, 3, 4)
    caffe = x / (k + alpha / n * window) ** beta
    assert (caffe / x - 1).abs().max() > 0.01  # the test would pass with an identity otherwise
    torch.testing.assert_close(nn.LocalResponseNorm(**LRN)(x), caffe, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("width", [0.01, 0.03, 0.0625, 0.1, 0.125, 0.3, 0.77, 1.0])
def test_every_width_keeps_the_groups_valid(width: float) -> None:
    plan = alexnet_channels(width)
    assert all(c % 2 == 0 and c >= 2 for c in plan.convs), plan
    with torch.device("meta"):  # building checks every grouped conv's channel counts
        clf, fcn = AlexNetClassifier(3, width=width), FCNAlexNet(3, width=width)
        assert fcn(torch.empty(1, 3, 40, 40)).shape == (1, 3, 40, 40)
        assert clf(torch.empty(1, 3, 64, 64)).shape == (1, 3)


def test_torchvision_googlenet_mapping_gives_identical_logits() -> None:
    torch.manual_seed(0)
    tv = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True).eval()
    _randomise(tv, seed=0)
    ours = load_torchvision_googlenet(tv.state_dict()).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        expected = tv(x)
        assert expected.std() > 0.1  # not a near-constant output
        assert torch.allclose(ours(x), expected, atol=1e-5 * expected.abs().max().item())
    # torchvision's ImageNet checkpoint also holds the auxiliary classifiers: they are dropped.
    with_aux = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False)
    load_torchvision_googlenet(with_aux.state_dict())
    with pytest.raises(ValueError, match="missing keys \\['conv1.bn.bias'"):
        load_torchvision_googlenet({k: v for k, v in tv.state_dict().items() if k != "conv1.bn.bias"})


def _alexnet_as_convs(state: dict[str, torch.Tensor], fc8: nn.Linear, x: torch.Tensor):
    """The AlexNet classifier as a pure conv net (its own pads and groups, ceil pools, LRN, fc6/7/8 as convs)."""
    for c in ALEXNET_CONVS:
        x = F.relu(F.conv2d(x, state[f"{c.name}.weight"], state[f"{c.name}.bias"], c.stride, c.pad, groups=c.groups))
        if c.name in POOL_AFTER:
            x = F.max_pool2d(x, 3, 2, ceil_mode=True)
            if POOL_AFTER[c.name] in NORM_AFTER:
                x = F.local_response_norm(x, **LRN)
    x = F.relu(F.conv2d(x, state["fc6.weight"], state["fc6.bias"]))
    x = F.relu(F.conv2d(x, state["fc7.weight"], state["fc7.bias"]))
    return F.conv2d(x, fc8.weight[:, :, None, None], fc8.bias)  # (N, classes, h, w)


def test_alexnet_convolutionalise_reproduces_classifier_logits() -> None:
    torch.manual_seed(0)
    clf = AlexNetClassifier(n_classes=10, width=0.125).eval()
    state = convolutionalise(clf)
    assert "fc8.weight" not in state
    assert state["fc6.weight"].shape == (512, 32, 6, 6)  # 4096/8 filters over conv5's 256/8
    assert state["fc7.weight"].shape == (512, 512, 1, 1)
    assert state["conv2.weight"].shape == (32, 6, 5, 5)  # grouped: each filter sees half of conv1's 12
    x = torch.randn(2, 3, 227, 227)
    with torch.no_grad():
        conv = _alexnet_as_convs(state, clf.fc8, x)
        assert conv.shape == (2, 10, 1, 1)
        assert torch.allclose(conv[:, :, 0, 0], clf(x), atol=1e-4)
    fcn = FCNAlexNet(21, width=0.125)
    copied = transplant(state, fcn)
    assert len(copied) == 2 * 7  # conv1 ... conv5, fc6, fc7: weight and bias each


def test_googlenet_transplant_reproduces_classifier_trunk() -> None:
    torch.manual_seed(0)
    clf = GoogLeNetClassifier(n_classes=10, width=TINY).eval()
    _randomise(clf, seed=1)
    state = convolutionalise(clf)
    assert not any(k.startswith("fc.") for k in state)
    fcn = FCNGoogLeNet(21, width=TINY).eval()
    copied = transplant(state, fcn)
    head = {"score_fr.weight", "score_fr.bias", "upscore.weight"}
    assert set(copied) == set(fcn.state_dict()) - head  # every trunk tensor, BN stats included
    # With the classifier's conv1 pad the FCN trunk must be the classifier's trunk exactly.
    fcn.conv1.conv.padding = (3, 3)
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        pooled = fcn.features(x).mean(dim=(2, 3))  # (N, C): the classifier's global avg pool
        assert torch.allclose(clf.fc(pooled), clf(x), atol=1e-5)


def test_convolutionalise_rejects_unknown_architecture() -> None:
    with pytest.raises(ValueError, match="no surgery plan for Linear"):
        convolutionalise(nn.Linear(2, 2))


def test_full_size_parameter_counts() -> None:
    with torch.device("meta"):
        alex, goog = FCNAlexNet(21), FCNGoogLeNet(21)
    # CaffeNet (60,965,224) less its fc8 (4,097,000) plus score_fr (86,037): the paper's 57M.
    assert parameter_count(alex) == 56_954_261
    # torchvision GoogLeNet without aux (6,624,904) less fc (1,025,000) plus score_fr (21,525);
    # the paper says 6M for its BN-free 2014 trunk.
    assert parameter_count(goog) == 5_621_429
    for model in (alex, goog):  # the fixed k63 upscore is not learned
        fixed = parameter_count(model, trainable_only=False) - parameter_count(model)
        assert fixed == 21 * 63**2  # one filter per class (grouped)
    print(f"FCN-AlexNet {parameter_count(alex):,} / FCN-GoogLeNet {parameter_count(goog):,}")


def test_crop_offsets_derived_from_layers() -> None:
    with torch.device("meta"):
        assert FCNAlexNet(21).crop_offsets == {"score": 18}  # = voc-fcn-alexnet's crop
        assert FCNGoogLeNet(21).crop_offsets == {"score": 24}  # conv1 pad 18, upscore k63
    assert FCNAlexNet(3, width=TINY).crop_offsets == {"score": 18}  # width-independent
    assert FCNGoogLeNet(3, width=TINY).crop_offsets == {"score": 24}


@pytest.mark.parametrize("cls, sizes", [
    (FCNAlexNet, range(1, 521)),
    # 60 ms a call (many small modules): one full stride period plus typical image sizes.
    (FCNGoogLeNet, list(range(1, 34)) + [63, 64, 65, 223, 224, 225, 333, 499, 500, 501]),
])
def test_every_input_size_comes_out_at_input_size(cls: type, sizes: range) -> None:
    # Shape-only check on the meta device: full width, no weights, no arithmetic.
    with torch.device("meta"):
        model = cls(21).eval()
        for size in sizes:
            assert model(torch.empty(1, 3, size, size)).shape[-2:] == (size, size), size
        for h, w in ((1, 999), (999, 1), (37, 611), (500, 375)):
            assert model(torch.empty(1, 3, h, w)).shape[-2:] == (h, w), (h, w)


@pytest.mark.parametrize("cls", FCN_CLASSES)
def test_crop_centres_output_on_its_input_pixel(cls: type) -> None:
    """An impulse at input column u gives a response centred on output column u (no shift).

    With uniform positive kernels the response is a blob whose centre of mass follows u up to
    stride-32 sampling ripple (up to 3 px); over one full stride period the mean error is 0.31 px
    (AlexNet) and a crop off by one pixel would move it by a whole pixel.
    """
    model = cls(1, width=TINY).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.fill_(1.0 / m.weight[0].numel())
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()  # identity: mean 0, var 1, scale 1, shift 0
        x = torch.zeros(32, 3, 3, 400)
        cols = torch.arange(150, 182)
        x[torch.arange(32), :, :, cols] = 1.0
        out = model(x)[:, 0, 1].double()  # (32, 400), middle row
        centre = (out * torch.arange(400)).sum(1) / out.sum(1)
    errors = centre - cols
    assert errors.abs().max() < 4 and abs(errors.mean()) < 0.5, errors  # AlexNet: 3.0 and 0.31


@pytest.mark.parametrize("cls", FCN_CLASSES)
def test_score_layer_starts_at_zero_and_upscore_is_fixed_bilinear(cls: type) -> None:
    model = cls(7, width=TINY).eval()
    assert not model.score_fr.weight.any() and not model.score_fr.bias.any()
    assert not model(torch.randn(1, 3, 40, 40)).any()  # zero score layer -> zero logits
    assert model.upscore.bias is None and not model.upscore.weight.requires_grad
    assert model.upscore.stride == (32, 32)
    assert model.upscore.groups == 7  # one bilinear filter per class
    assert torch.equal(model.upscore.weight[:, 0], bilinear_kernel(7, 63)[range(7), range(7)])


@pytest.mark.parametrize("name", ["fcn-alexnet", "fcn-googlenet"])
def test_registry_builds_and_rejects_learned_upsampling(name: str) -> None:
    assert name in MODELS
    model = build_model(name, n_classes=2, width=TINY, in_channels=1)
    assert model(torch.randn(1, 1, 33, 47)).shape == (1, 2, 33, 47)
    with pytest.raises(ValueError, match="learn_upsampling must be False"):
        build_model(name, n_classes=2, width=TINY, learn_upsampling=True)


def test_googlenet_bn_frozen_in_training_unless_asked() -> None:
    frozen = FCNGoogLeNet(3, width=TINY).train()
    assert frozen.training and not frozen.conv1.bn.training
    before = frozen.conv1.bn.running_mean.clone()
    frozen(torch.randn(1, 3, 1, 1)).sum().backward()  # batch 1, 1x1 maps: fine with frozen BN
    assert torch.equal(frozen.conv1.bn.running_mean, before)
    live = FCNGoogLeNet(3, width=TINY, frozen_bn=False).train()
    assert live.conv1.bn.training


def test_alexnet_channels_and_bad_width() -> None:
    assert alexnet_channels(1.0) == ((96, 256, 384, 384, 256), 4096)
    assert alexnet_channels(TINY) == ((6, 16, 24, 24, 16), 256)
    for cls in (FCNAlexNet, FCNGoogLeNet, AlexNetClassifier, GoogLeNetClassifier):
        with pytest.raises(ValueError, match="width must be a number in \\(0, 1\\], got 2"):
            cls(3, width=2)
