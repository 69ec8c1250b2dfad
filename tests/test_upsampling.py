"""The fixed bilinear upsampling's forms (segcore.models.upsampling) compute what the grouped transposed
conv computes, forward and backward, and switching forms changes no state dict, model file or net output."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from segcore.data.preprocess import CAFFE_VGG16
from segcore.models.fcn import FCN
from segcore.models.layers import bilinear_kernel, bilinear_upsampling
from segcore.models.modelfile import load_model, save_model
from segcore.models.registry import build_model
from segcore.models.upsampling import (
    FORMS,
    FixedBilinearUpsampling,
    _can_time,
    interpolation_matrix,
    set_upsampling_form,
    time_forms,
)

PAIRS = [(4, 2), (16, 8), (32, 16), (64, 32), (63, 32)]  # 2x, 8x, 16x, 32x; 63: AlexNet / GoogLeNet
SIZES = [(1, 1), (3, 5), (7, 4)]  # odd and uneven inputs
TINY = 0.0625


def legacy(n: int, k: int, s: int) -> nn.ConvTranspose2d:
    """The layer as it was before the forms: a plain grouped ConvTranspose2d, frozen."""
    layer = nn.ConvTranspose2d(n, n, k, stride=s, bias=False, groups=n)
    with torch.no_grad():
        layer.weight.copy_(bilinear_kernel(n, k)[range(n), range(n)].unsqueeze(1))
    return layer.requires_grad_(False)


def with_legacy_upsampling(model: nn.Module) -> nn.Module:
    """`model` with every fixed upsampling swapped for the legacy layer holding the same weight."""
    for name, m in list(model.named_modules()):
        if isinstance(m, FixedBilinearUpsampling):
            parent, _, attr = name.rpartition(".")
            old = legacy(m.out_channels, m.kernel_size[0], m.stride[0]).to(m.weight.dtype)
            setattr(model.get_submodule(parent) if parent else model, attr, old)
    return model


def randomise_scores(model: nn.Module, seed: int = 0) -> nn.Module:
    """Score layers start at zero (every logit 0); random ones make outputs worth comparing."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("score"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model


@pytest.mark.parametrize("k, s", PAIRS)
@pytest.mark.parametrize("form", FORMS)
def test_every_form_equals_the_grouped_conv_in_float64(form: str, k: int, s: int) -> None:
    torch.manual_seed(k)
    layer = bilinear_upsampling(3, k, s).double()
    assert layer.usable(form)
    for h, w in SIZES:
        x = torch.randn(2, 3, h, w, dtype=torch.float64)
        expected = legacy(3, k, s).double()(x)
        out = layer.compute(form, x)
        assert out.shape == expected.shape == (2, 3, (h - 1) * s + k, (w - 1) * s + k)
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("k, s", PAIRS)
@pytest.mark.parametrize("form", FORMS)
def test_every_form_equals_the_grouped_conv_in_float32_and_channels_last(form: str, k: int, s: int) -> None:
    torch.manual_seed(k)
    layer = bilinear_upsampling(4, k, s)
    x = torch.randn(3, 4, 5, 7)
    expected = legacy(4, k, s)(x)
    for inp in (x, x.to(memory_format=torch.channels_last)):
        torch.testing.assert_close(layer.compute(form, inp), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k, s", PAIRS)
@pytest.mark.parametrize("form", FORMS)
def test_every_form_has_the_grouped_conv_input_gradient(form: str, k: int, s: int) -> None:
    # The upsampling sits mid-net in FCN-16s / 8s: training backpropagates through it.
    torch.manual_seed(k)
    layer = bilinear_upsampling(3, k, s).double()
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64, requires_grad=True)
    expected = legacy(3, k, s).double()(x)
    g = torch.randn_like(expected)
    (want,) = torch.autograd.grad(expected, x, g)
    (got,) = torch.autograd.grad(layer.compute(form, x), x, g)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_interpolation_matrix_is_a_1d_transposed_conv() -> None:
    taps = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    x = torch.tensor([10.0, 100.0], dtype=torch.float64)
    a = interpolation_matrix(taps, 2, 2)  # outputs 0..2 from x[0], 2..4 from x[1]
    assert a.shape == (5, 2)
    assert (a @ x).tolist() == [10.0, 20.0, 130.0, 200.0, 300.0]


@pytest.mark.parametrize("variant", ["32s", "16s", "8s"])
def test_state_dict_is_the_legacy_one_and_legacy_weights_load(variant: str) -> None:
    torch.manual_seed(0)
    model = randomise_scores(FCN(5, variant, width=TINY)).eval()
    old = with_legacy_upsampling(FCN(5, variant, width=TINY)).eval()
    new_sd, old_sd = model.state_dict(), old.state_dict()
    assert list(new_sd) == list(old_sd)
    assert all(new_sd[k].shape == old_sd[k].shape and new_sd[k].dtype == old_sd[k].dtype for k in new_sd)
    old.load_state_dict(new_sd)  # strict, both ways
    fresh = FCN(5, variant, width=TINY).eval()
    fresh.load_state_dict(old.state_dict())
    x = torch.randn(1, 3, 37, 29)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), old(x), rtol=1e-5, atol=1e-5)


def test_model_file_round_trip_is_unchanged(tmp_path) -> None:
    torch.manual_seed(0)
    model = randomise_scores(build_model("fcn8s", n_classes=4, width=TINY)).eval()
    path = tmp_path / "fcn8s.pt"
    save_model(path, model, arch="fcn8s", n_classes=4, width=TINY, learn_upsampling=False,
               preprocess=CAFFE_VGG16)
    record = torch.load(path, weights_only=True)
    assert record["state_dict"]["upscore8.weight"].shape == (4, 1, 16, 16)
    loaded, _, _ = load_model(path)
    x = torch.randn(1, 3, 41, 33)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


@pytest.mark.parametrize("dtype, tol, layout", [(torch.float64, 1e-12, torch.contiguous_format),
                                                (torch.float32, 1e-5, torch.contiguous_format),
                                                (torch.float32, 1e-5, torch.channels_last)])
def test_forcing_each_form_on_fcn8s_gives_the_same_output(dtype, tol, layout) -> None:
    torch.manual_seed(0)
    model = randomise_scores(FCN(3, "8s", width=TINY)).to(dtype=dtype, memory_format=layout).eval()
    x = torch.randn(2, 3, 45, 37, dtype=dtype).to(memory_format=layout)
    outs = {}
    with torch.no_grad():
        for form in FORMS:
            assert set_upsampling_form(model, form) == 3  # upscore2, upscore_pool4, upscore8
            outs[form] = model(x)
    set_upsampling_form(model, None)
    assert outs["grouped"].abs().max() > 0.1
    for form in FORMS:
        torch.testing.assert_close(outs[form], outs["grouped"], rtol=tol, atol=tol, msg=form)


def test_automatic_choice_per_device() -> None:
    layer = bilinear_upsampling(3, 16, 8)
    x = torch.zeros(1, 3, 4, 4)
    # CPU, measured (tests/benchmarks/upsampling.py): two GEMMs on NCHW, oneDNN's conv on NHWC.
    assert layer.form_for(x) == "matmul"
    assert layer.form_for(x.to(memory_format=torch.channels_last)) == "grouped"
    with torch.device("meta"):
        meta = bilinear_upsampling(3, 16, 8)
        assert meta.form_for(torch.empty(1, 3, 4, 4)) == "grouped"  # shapes only, no arithmetic
        assert meta(torch.empty(1, 3, 4, 4)).shape == (1, 3, 40, 40)


def test_an_edited_or_trainable_weight_keeps_the_grouped_conv() -> None:
    layer = bilinear_upsampling(2, 4, 2)
    x = torch.randn(1, 2, 3, 3)
    with torch.no_grad():
        layer.weight.mul_(2)  # no longer u u^T: the rebuilt forms would be wrong
    assert layer.form_for(x) == "grouped" and not layer.usable("matmul") and layer.usable("dense")
    torch.testing.assert_close(layer(x), 2 * legacy(2, 4, 2)(x))
    layer.set_form("separable")
    with pytest.raises(ValueError, match="'separable' is not exact"):
        layer(x)
    layer.set_form(None)
    layer.weight.requires_grad_(True)
    assert [f for f in FORMS if layer.usable(f)] == ["grouped"]


def test_derived_tensors_follow_dtype_changes_and_inference_mode() -> None:
    layer = bilinear_upsampling(2, 4, 2)
    with torch.inference_mode():
        layer(torch.randn(1, 2, 3, 3))  # builds the cached matrices here ...
    x = torch.randn(1, 2, 3, 3, requires_grad=True)
    layer(x).sum().backward()  # ... and they must still be saved for backward outside
    assert x.grad is not None
    assert layer.double()(x.double()).dtype == torch.float64


def test_set_form_names_the_allowed_forms() -> None:
    with pytest.raises(ValueError, match="'fast'.*grouped, dense, separable, matmul"):
        bilinear_upsampling(2, 4, 2).set_form("fast")


def test_learnable_upsampling_is_a_plain_dense_conv() -> None:
    layer = bilinear_upsampling(3, 4, 2, learnable=True)
    assert type(layer) is nn.ConvTranspose2d and layer.groups == 1 and layer.weight.requires_grad
    assert torch.equal(layer.weight, bilinear_kernel(3, 4))


def test_time_forms_times_every_form() -> None:
    times = time_forms(bilinear_upsampling(2, 4, 2), torch.randn(1, 2, 3, 3), trials=1)
    assert list(times) == list(FORMS) and all(t > 0 for t in times.values())


def test_no_timing_under_deterministic_algorithms() -> None:
    # Two deterministic runs must compute the same way, so CUDA then uses the fixed rule (matmul).
    before = torch.are_deterministic_algorithms_enabled()
    try:
        torch.use_deterministic_algorithms(True)
        assert not _can_time()
    finally:
        torch.use_deterministic_algorithms(before)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_choice_is_timed_and_exact() -> None:
    layer = bilinear_upsampling(21, 64, 32).cuda()
    x = torch.randn(1, 21, 16, 16, device="cuda")
    assert layer.form_for(x) in FORMS
    torch.testing.assert_close(layer(x), layer.compute("grouped", x), rtol=1e-4, atol=1e-4)
