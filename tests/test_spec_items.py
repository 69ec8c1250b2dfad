"""Spec items that had no test: FCN dropout after fc6 / fc7, FCN-8s at-once skip scaling, U-Net dropout.

Sources: shared/spec/fcn.md sections 1 and 2 (fc6 / fc7: ReLU then element-wise dropout 0.5; the
at-once net multiplies pool4 by 0.01 and pool3 by 0.0001 before their score layers) and
shared/spec/unet.md ("drop-out layers at the end of the contracting path", p = 0.5 after the last
two contracting levels in the authors' release). Each test watches the layers with forward hooks,
so it fails when a dropout is removed, moved or left on in eval mode, or a scale changes.
"""

import pytest
import torch
from torch import nn

from segcore.models import unet as unet_module
from segcore.models.registry import BACKBONE, PARENT, build_model

TINY = 1 / 16
FCN_NETS = ("fcn32s", "fcn16s", "fcn8s", "fcn8s-atonce", "fcn-alexnet")


def _fcn(name: str, seed: int = 0) -> nn.Module:
    """A tiny registered FCN whose score layers are non-zero (zero scores would hide any dropout)."""
    torch.manual_seed(seed)
    model = build_model(name, n_classes=3, width=TINY)
    for layer in ("score_fr", "score_pool4", "score_pool3"):
        if hasattr(model, layer):
            nn.init.normal_(getattr(model, layer).weight, std=0.1)
    return model


def _record(model: nn.Module, names: tuple[str, ...]) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """Hooks appending (name, input, output) per call, cloned before in-place ReLUs change them."""
    calls = []
    for name in names:
        module = model.get_submodule(name)
        module.register_forward_hook(
            lambda _m, args, out, name=name: calls.append((name, args[0].detach().clone(), out.detach().clone())))
    return calls


# --- FCN: dropout right after the ReLUs of fc6 and fc7 ---------------------------------------------

@pytest.mark.parametrize("name", FCN_NETS)
def test_fcn_dropout_is_elementwise_half_after_fc6_and_fc7(name):
    model = _fcn(name)
    for drop in ("drop6", "drop7"):
        layer = getattr(model, drop)
        # nn.Dropout, not Dropout2d: Caffe drops single activations, not whole channels.
        assert type(layer) is nn.Dropout and layer.p == 0.5, (drop, layer)


@pytest.mark.parametrize("name", FCN_NETS)
def test_fcn_dropout_follows_the_fc6_and_fc7_relus_and_feeds_the_next_layer(name):
    model = _fcn(name).train()
    calls = _record(model, ("fc6", "drop6", "fc7", "drop7", "score_fr"))
    model(torch.rand(1, 3, 37, 41))
    assert [c[0] for c in calls] == ["fc6", "drop6", "fc7", "drop7", "score_fr"]
    (_, _, fc6_out), (_, d6_in, d6_out), (_, fc7_in, fc7_out), (_, d7_in, d7_out), (_, score_in, _) = calls
    torch.testing.assert_close(d6_in, torch.relu(fc6_out))  # ReLU, then dropout
    torch.testing.assert_close(fc7_in, d6_out)  # nothing between drop6 and fc7
    torch.testing.assert_close(d7_in, torch.relu(fc7_out))
    torch.testing.assert_close(score_in, d7_out)  # score_fr reads the dropped fc7
    for d_in, d_out in ((d6_in, d6_out), (d7_in, d7_out)):  # train mode: about half dropped, the rest x 2
        alive = d_in > 0
        dropped = (d_out[alive] == 0).float().mean().item()
        assert 0.3 < dropped < 0.7, dropped
        torch.testing.assert_close(d_out[alive & (d_out != 0)], 2 * d_in[alive & (d_out != 0)])


@pytest.mark.parametrize("name", FCN_NETS)
def test_fcn_outputs_vary_in_train_mode_and_not_in_eval_mode(name):
    model = _fcn(name)
    x = torch.rand(1, 3, 37, 41)
    with torch.no_grad():
        model.train()
        assert not torch.equal(model(x), model(x))  # fresh dropout masks each pass
        model.eval()
        first = model(x)
        assert torch.equal(first, model(x))
        model.drop6, model.drop7 = nn.Identity(), nn.Identity()  # eval dropout is the identity
        assert torch.equal(first, model(x))


# --- FCN-8s at-once: fixed pool4 x 0.01, pool3 x 0.0001 --------------------------------------------

def test_at_once_net_is_registered_and_trains_from_the_backbone_in_one_stage():
    model = build_model("fcn8s-atonce", n_classes=3, width=TINY)
    assert model.variant == "8s-atonce"
    assert BACKBONE["fcn8s-atonce"] == "vgg16" and "fcn8s-atonce" not in PARENT  # no staged parent


@pytest.mark.parametrize("name, pool4_scale, pool3_scale", [("fcn8s-atonce", 0.01, 0.0001), ("fcn8s", 1.0, 1.0)])
def test_score_pool_layers_read_scaled_pool_features(name, pool4_scale, pool3_scale):
    model = _fcn(name).eval()
    record = _record(model, ("pool3", "pool4", "score_pool3", "score_pool4"))
    model(torch.rand(1, 3, 37, 41))
    calls = {c[0]: c for c in record}
    torch.testing.assert_close(calls["score_pool4"][1], pool4_scale * calls["pool4"][2], rtol=1e-6, atol=0)
    torch.testing.assert_close(calls["score_pool3"][1], pool3_scale * calls["pool3"][2], rtol=1e-6, atol=0)


def test_at_once_equals_fcn8s_with_score_pool_weights_scaled():
    """The scales are fixed factors in front of linear score layers: folding them into the weights
    of a staged FCN-8s gives the same logits, so nothing else differs between the two nets."""
    atonce = _fcn("fcn8s-atonce").eval()
    staged = build_model("fcn8s", n_classes=3, width=TINY).eval()
    state = atonce.state_dict()
    state["score_pool4.weight"] = state["score_pool4.weight"] * 0.01
    state["score_pool3.weight"] = state["score_pool3.weight"] * 0.0001
    staged.load_state_dict(state)
    x = torch.rand(1, 3, 45, 39)
    with torch.no_grad():
        torch.testing.assert_close(atonce(x), staged(x), rtol=1e-5, atol=1e-6)
        staged.load_state_dict(atonce.state_dict())  # unscaled weights: the skips weigh far more
        assert not torch.allclose(atonce(x), staged(x), rtol=1e-3, atol=1e-4)


# --- U-Net: dropout at the end of the contracting path ----------------------------------------------

U_SIDE = 188  # the smallest valid input side (output 4)


def _unet(seed: int = 0) -> unet_module.UNet:
    torch.manual_seed(seed)
    return unet_module.UNet(n_classes=2, in_channels=1, width=TINY)


def _unet_calls(model: unet_module.UNet, x: torch.Tensor) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    names = tuple(n for n, m in model.named_modules() if n and not list(m.children()))
    calls = _record(model, names)
    model(x)
    return calls


def test_unet_dropout_is_elementwise_half():
    drop = _unet().drop
    assert type(drop) is nn.Dropout and drop.p == 0.5


def test_unet_dropout_ends_the_contracting_path_before_the_first_up_convolution():
    model = _unet().train()
    calls = _unet_calls(model, torch.rand(1, 1, U_SIDE, U_SIDE))
    order = [c[0] for c in calls]
    drops = [i for i, n in enumerate(order) if n == "drop"]
    # Once after level 4 (the authors' release), once after level 5, the last contracting block.
    assert [order[i - 1] for i in drops] == ["down4_conv2", "down5_conv2"]
    last = drops[-1]
    assert order[last + 1] == "up4" and order.index("up4") == last + 1  # the first up-convolution
    assert "pool" not in order[last:] and not any(n.startswith("down") for n in order[last:])
    (_, _, conv_out), (_, d_in, d_out), (_, up_in, _) = calls[last - 1: last + 2]
    torch.testing.assert_close(d_in, torch.relu(conv_out))  # the block's ReLU, then dropout
    torch.testing.assert_close(up_in, d_out)  # up4 reads the dropped bottom map
    assert (d_out[d_in > 0] == 0).any()  # train mode drops activations
    # The level-4 skip is taken after its dropout: up4_conv1 reads crop(dropped level 4) ++ up4.
    (_, _, skip_dropped) = calls[drops[0]]
    up4_conv1_in = next(c[1] for c in calls if c[0] == "up4_conv1")
    skip = unet_module.centre_crop(skip_dropped, calls[last + 1][2])
    torch.testing.assert_close(up4_conv1_in[:, : skip.shape[1]], skip)


def test_unet_dropout_acts_only_in_train_mode():
    model = _unet()
    x = torch.rand(1, 1, U_SIDE, U_SIDE)
    with torch.no_grad():
        model.eval()
        calls = _unet_calls(model, x)
        for _, d_in, d_out in (c for c in calls if c[0] == "drop"):
            assert torch.equal(d_in, d_out)
        assert torch.equal(model(x), model(x))
        model.train()
        assert not torch.equal(model(x), model(x))


def test_same_size_unet_carries_the_dropout():
    """The net the registry builds (the project's contract wrapper) trains with the same dropout."""
    torch.manual_seed(0)
    model = build_model("unet", n_classes=2, width=TINY)
    x = torch.rand(1, 1, 20, 24)
    with torch.no_grad():
        model.train()
        assert not torch.equal(model(x), model(x))
        model.eval()
        assert torch.equal(model(x), model(x))
