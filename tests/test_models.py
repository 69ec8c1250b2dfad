"""FCN models, VGG16 classifier, surgery and registry. Slim nets (width 1/16) keep this fast."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segcore.models.fcn import FCN, VARIANTS, crop_offsets
from segcore.models.layers import bilinear_kernel, bilinear_upsampling
from segcore.models.registry import (
    MODELS,
    PARENT,
    build_model,
    freeze_all_but,
    parameter_count,
)
from segcore.models.vgg import (
    VGG16_BLOCKS,
    VGG16Classifier,
    load_torchvision_vgg16,
    vgg16_channels,
)
from segcore.models.surgery import convolutionalise, transplant

TINY = 0.0625  # 4..32 conv channels, fc 256: same spatial sizes as the full net

# (H, W) pairs covering odd, even, tiny and large sizes on both axes.
SIZES = [(1, 1), (17, 500), (31, 257), (32, 256), (33, 255), (63, 127), (64, 100), (100, 64),
         (127, 63), (255, 33), (256, 32), (257, 31), (500, 17)]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _perturb(model: nn.Module, seed: int) -> None:
    """Make every learnable parameter random and non-zero ("trained-ish")."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn(p.shape, generator=gen))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_contract_logits_at_input_size(name: str) -> None:
    model = build_model(name, n_classes=5, width=TINY).eval()
    _perturb(model, seed=0)
    with torch.no_grad():
        for h, w in SIZES:
            n = 2 if h * w < 10_000 else 1
            out = model(torch.randn(n, model.in_channels, h, w))
            assert out.shape == (n, 5, h, w), (name, h, w)
            assert out.dtype == torch.float32 and torch.isfinite(out).all()


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_input_size_comes_out_at_input_size(variant: str) -> None:
    # Shape-only check on the meta device: full width, no weights, no arithmetic.
    with torch.device("meta"):
        model = FCN(21, variant)
        for size in range(1, 521):
            assert model(torch.empty(1, 3, size, size)).shape[-2:] == (size, size), size


def test_input_channels_are_checked() -> None:
    model = FCN(2, "32s", width=TINY, in_channels=1)
    assert model(torch.randn(1, 1, 20, 20)).shape == (1, 2, 20, 20)
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        model(torch.randn(1, 3, 20, 20))


@pytest.mark.parametrize("k, s", [(4, 2), (16, 8), (63, 32), (64, 32)])
def test_fixed_grouped_upsampling_equals_the_dense_diagonal_kernel(k: int, s: int) -> None:
    # The reference's upscore is a dense n x n kernel, zero off the diagonal; ours is grouped.
    fixed = bilinear_upsampling(5, k, s)
    assert fixed.groups == 5 and fixed.weight.shape == (5, 1, k, k)
    x = torch.randn(2, 5, 3, 4, dtype=torch.float64)
    dense = F.conv_transpose2d(x, bilinear_kernel(5, k).double(), stride=s)
    assert torch.allclose(F.conv_transpose2d(x, fixed.weight.double(), stride=s, groups=5), dense, atol=1e-12)
    assert bilinear_upsampling(5, k, s, learnable=True).weight.shape == (5, 5, k, k)


def test_full_fcn32s_parameter_count_and_500px_shapes() -> None:
    with torch.device("meta"):
        model = FCN(21, "32s")
        # Paper: 134M. The fixed 64x64 bilinear upscore adds one 64 x 64 filter per class (not learned).
        assert abs(parameter_count(model) - 134.3e6) < 0.05e6
        fixed = parameter_count(model, trainable_only=False) - parameter_count(model)
        assert fixed == 21 * 64**2
        shapes: dict[str, tuple[int, ...]] = {}
        for name in ("pool4", "score_fr", "upscore"):
            getattr(model, name).register_forward_hook(
                lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape[-2:]))
            )
        assert model(torch.empty(1, 3, 500, 500)).shape == (1, 21, 500, 500)
    assert shapes == {"pool4": (44, 44), "score_fr": (16, 16), "upscore": (544, 544)}


@pytest.mark.parametrize(
    "variant, layer, size", [("16s", "upscore16", 560), ("8s", "upscore8", 568)]
)
def test_final_upsampling_size_at_500px(variant: str, layer: str, size: int) -> None:
    with torch.device("meta"):
        model = FCN(21, variant)
        seen = []
        getattr(model, layer).register_forward_hook(lambda _m, _i, out: seen.append(out.shape))
        model(torch.empty(1, 3, 500, 500))
    assert seen[0][-2:] == (size, size)


def test_crop_offsets_derived_from_layers() -> None:
    assert crop_offsets("32s") == {"score": 19}
    assert crop_offsets("16s") == {"score_pool4c": 5, "score": 27}
    assert crop_offsets("8s") == {"score_pool4c": 5, "score_pool3c": 9, "score": 31}
    assert crop_offsets("8s-atonce") == crop_offsets("8s")
    assert FCN(3, "8s", width=TINY).crop_offsets == crop_offsets("8s")  # width-independent


@pytest.mark.parametrize("variant", VARIANTS)
def test_score_layers_start_at_zero(variant: str) -> None:
    model = FCN(7, variant, width=TINY)
    for name in ("score_fr", "score_pool4", "score_pool3"):
        if hasattr(model, name):
            layer = getattr(model, name)
            assert not layer.weight.any() and not layer.bias.any(), name
    assert not model(torch.randn(1, 3, 40, 40)).any()  # zero score layers -> zero logits


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("learn", [False, True])
def test_upsampling_frozen_unless_learned(variant: str, learn: bool) -> None:
    model = FCN(3, variant, width=TINY, learn_upsampling=learn)
    for name in ("upscore", "upscore16", "upscore8"):  # the final one is always fixed
        if hasattr(model, name):
            assert getattr(model, name).bias is None
            assert not getattr(model, name).weight.requires_grad, name
    for name in ("upscore2", "upscore_pool4"):  # the paper learns these, the reference does not
        if hasattr(model, name):
            layer = getattr(model, name)
            assert layer.weight.requires_grad is learn, name
            # learned: dense, diagonal at the start; fixed: grouped, one filter per class
            dense = bilinear_kernel(3, 4)
            assert torch.equal(layer.weight, dense if learn else dense[range(3), range(3)].unsqueeze(1))


@pytest.mark.parametrize("child, parent", sorted((c, p) for c, p in PARENT.items() if c in ("fcn16s", "fcn8s")))
def test_staged_child_starts_from_parent_prediction(child: str, parent: str) -> None:
    src = build_model(parent, n_classes=4, width=TINY).eval()
    _perturb(src, seed=1)
    dst = build_model(child, n_classes=4, width=TINY).eval()
    copied = transplant(src.state_dict(), dst)
    assert "score_fr.weight" in copied and "fc6.weight" in copied
    new_skip = dst.score_pool4 if child == "fcn16s" else dst.score_pool3
    assert not new_skip.weight.any() and not new_skip.bias.any()  # the new skip stays zero
    if child == "fcn8s":
        assert torch.equal(dst.score_pool4.weight, src.score_pool4.weight)  # the old one is copied
    # The parent's last upsampling input (score_fr for 32s, fuse_pool4 for 16s) must reach the
    # child unchanged; the child's next upsampling consumes it.
    parent_tap = src.upscore if parent == "fcn32s" else src.upscore16
    child_tap = dst.upscore2 if child == "fcn16s" else dst.upscore_pool4
    captured: dict[str, torch.Tensor] = {}
    for tag, layer in (("src", parent_tap), ("dst", child_tap)):
        layer.register_forward_hook(lambda _m, inp, _o, tag=tag: captured.__setitem__(tag, inp[0]))
    x = torch.randn(1, 3, 70, 90)
    with torch.no_grad():
        out, _ = dst(x), src(x)
        assert torch.equal(captured["src"], captured["dst"])
        # The zero skip adds nothing: the child's output is the parent's coarse map through the
        # child's bilinear upsampling path alone. (Not bit-equal to the parent's output: 2x then
        # 16x bilinear is not the same interpolation as one 32x step.)
        if child == "fcn16s":
            expected = dst.upscore16(dst.upscore2(captured["src"]))
        else:
            expected = dst.upscore8(dst.upscore_pool4(captured["src"]))
    off = dst.crop_offsets["score"]
    assert torch.allclose(out, expected[..., off : off + 70, off : off + 90], atol=1e-5)


def test_bilinear_kernel_matches_formula() -> None:
    w4 = torch.tensor([0.25, 0.75, 0.75, 0.25])
    w3 = torch.tensor([0.5, 1.0, 0.5])
    k4, k3 = bilinear_kernel(3, 4), bilinear_kernel(2, 3)
    assert k4.shape == (3, 3, 4, 4) and k3.shape == (2, 2, 3, 3)
    for k, w in ((k4, w4), (k3, w3)):
        eye = torch.eye(k.shape[0])[:, :, None, None]
        assert torch.allclose(k, eye * torch.outer(w, w))  # diagonal only


@pytest.mark.parametrize("k, s", [(4, 2), (16, 8), (32, 16), (64, 32)])
def test_bilinear_upsampling_keeps_constant_map_constant(k: int, s: int) -> None:
    x = torch.full((1, 2, 6, 6), 3.0)
    y = F.conv_transpose2d(x, bilinear_kernel(2, k), stride=s)
    interior = y[..., k : -k, k : -k]  # away from the borders every output sees full support
    assert torch.allclose(interior, torch.full_like(interior, 3.0))


def _conv_classifier_logits(state: dict[str, torch.Tensor], fc8: nn.Linear, x: torch.Tensor):
    """The classifier as a pure conv net (pad 1, floor pools, fc6/fc7/fc8 as convs)."""
    for block, n in VGG16_BLOCKS:
        for i in range(1, n + 1):
            key = f"conv{block}_{i}"
            x = F.relu(F.conv2d(x, state[f"{key}.weight"], state[f"{key}.bias"], padding=1))
        x = F.max_pool2d(x, 2, 2)
    x = F.relu(F.conv2d(x, state["fc6.weight"], state["fc6.bias"]))
    x = F.relu(F.conv2d(x, state["fc7.weight"], state["fc7.bias"]))
    return F.conv2d(x, fc8.weight[:, :, None, None], fc8.bias)  # (N, classes, h, w)


def test_convolutionalise_reproduces_classifier_logits() -> None:
    torch.manual_seed(0)
    clf = VGG16Classifier(n_classes=10, width=0.125).eval()
    state = convolutionalise(clf)
    assert "fc8.weight" not in state
    assert state["fc6.weight"].shape == (512, 64, 7, 7)
    assert state["fc7.weight"].shape == (512, 512, 1, 1)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        conv = _conv_classifier_logits(state, clf.fc8, x)
        assert conv.shape == (2, 10, 1, 1)
        assert torch.allclose(conv[:, :, 0, 0], clf(x), atol=1e-4)
        # Larger input: the same net slides the classifier, one prediction per 32 px step.
        wide = _conv_classifier_logits(state, clf.fc8, torch.randn(1, 3, 288, 288))
        assert wide.shape == (1, 10, 3, 3)


def test_fcn32s_from_classifier_is_not_constant() -> None:
    torch.manual_seed(0)
    clf = VGG16Classifier(n_classes=10, width=0.125)
    model = FCN(21, "32s", width=0.125).eval()
    copied = transplant(convolutionalise(clf), model)
    assert len(copied) == 2 * 15  # 13 convs + fc6 + fc7, weight and bias each
    with torch.no_grad():
        model.score_fr.weight.normal_()
        x = torch.zeros(1, 3, 96, 96)
        x[..., 20:60, 30:80] = 2.0  # non-trivial input: a bright rectangle
        x += 0.3 * torch.randn_like(x)
        out = model(x)
    assert out.std() > 0 and out.argmax(1).unique().numel() > 1


def test_transplant_shape_mismatch_names_key_unless_skipped() -> None:
    src = FCN(4, "32s", width=TINY).state_dict()
    dst = FCN(6, "16s", width=TINY)
    with pytest.raises(ValueError, match="score_fr.weight"):
        transplant(src, dst)
    copied = transplant(src, dst, skip=("score_fr",))
    assert not any(k.startswith("score_fr") for k in copied) and "conv1_1.weight" in copied
    with pytest.raises(ValueError, match="copied nothing"):
        transplant({"unrelated.weight": torch.zeros(1)}, dst)


def test_torchvision_vgg16_mapping_gives_identical_logits() -> None:
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    tv = torchvision.models.vgg16(weights=None).eval()  # untrained: no download
    ours = VGG16Classifier.from_torchvision(tv).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(ours(x), tv(x), atol=1e-5)
    bn_like = dict(tv.state_dict(), **{"features.1.running_mean": torch.zeros(64)})  # vgg16_bn
    with pytest.raises(ValueError, match="features.1.running_mean"):
        load_torchvision_vgg16(bn_like)


def test_vgg16_channels() -> None:
    full = vgg16_channels(1.0)
    assert full.convs == (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)
    assert full.fc == 4096
    assert vgg16_channels(1 / 1024).convs[0] == 1  # never zero channels
    for bad in (0, -0.5, 1.5, "1"):
        with pytest.raises(ValueError, match="width"):
            vgg16_channels(bad)


def test_registry_errors_and_staging_chain() -> None:
    with pytest.raises(ValueError, match="unknown model 'fcn4s'; allowed: fcn-alexnet, .*fcn32s, "):
        build_model("fcn4s", n_classes=2)
    with pytest.raises(ValueError, match="depth"):
        build_model("fcn32s", n_classes=2, depth=3)
    with pytest.raises(ValueError, match="variant"):
        FCN(2, "4s")
    assert all(c in MODELS and p in MODELS for c, p in PARENT.items())


def test_freeze_all_but_trains_only_score_fr() -> None:
    model = build_model("fcn32s", n_classes=3, width=TINY)
    score_fr = ["score_fr.weight", "score_fr.bias"]
    assert freeze_all_but(model, ("score_fr",)) == score_fr
    assert [n for n, p in model.named_parameters() if p.requires_grad] == score_fr
    with pytest.raises(ValueError, match="score_pool4"):
        freeze_all_but(model, ("score_pool4",))
