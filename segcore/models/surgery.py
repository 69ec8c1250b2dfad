"""Net surgery: turn a classifier into an FCN trunk, and copy weights between nets by name.

`convolutionalise` is the paper's core trick: fc6 / fc7 of the ImageNet classifier become k x k and
1x1 convolutions with the same weights (k = 7 for VGG16, 6 for AlexNet), so the net slides the
classifier over larger images. One function serves every backbone; a small `SurgeryPlan` per
classifier (its ``surgery_plan()``) says which modules are copied and which fc layers become which kernels.
`transplant` is how staged training starts FCN-16s from FCN-32s and FCN-8s from FCN-16s.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from segcore.models.layers import SurgeryPlan


def _plan(classifier: nn.Module) -> SurgeryPlan:
    """The classifier's own surgery plan (its ``surgery_plan()``); other modules raise ValueError."""
    plan = getattr(classifier, "surgery_plan", None)
    if plan is None:
        raise ValueError(f"no surgery plan for {type(classifier).__name__}: it has no surgery_plan() method")
    return plan()


def _fc_as_conv(fc: nn.Linear, name: str, c_in: int, k: int) -> torch.Tensor:
    """fc weight (F, c_in * k * k) -> conv weight (F, c_in, k, k)."""
    if fc.in_features != c_in * k * k:
        raise ValueError(
            f"{name} has {fc.in_features} inputs, expected {c_in} channels x {k} x {k} = "
            f"{c_in * k * k}"
        )
    # torchvision flattens pool5 as (C, H, W), so rows of fc6 reshape to (C, k, k) directly.
    return fc.weight.detach().reshape(fc.out_features, c_in, k, k).clone()


def convolutionalise(classifier: nn.Module) -> dict[str, torch.Tensor]:
    """FCN trunk state dict from an ImageNet classifier; its last (1000-way) layer is dropped.

    VGG16: conv1_1 ... conv5_3 copied, fc6 (F, C5 * 7 * 7) -> (F, C5, 7, 7), fc7 -> (F, F, 1, 1).
    AlexNet: conv1 ... conv5 copied, fc6 (F, C5 * 6 * 6) -> (F, C5, 6, 6), fc7 -> (F, F, 1, 1).
    GoogLeNet: conv1 ... inception5b copied with their BN statistics (no fc layers to reshape).
    The FCN's score_fr is new (zero init, its own class count). Returned tensors are detached
    copies, not views of the classifier's parameters.
    """
    plan = _plan(classifier)
    state: dict[str, torch.Tensor] = {}
    for name in plan.copied:
        for key, value in getattr(classifier, name).state_dict().items():
            state[f"{name}.{key}"] = value.detach().clone()
    c_in = getattr(classifier, plan.copied[-1]).out_channels if plan.fc_kernels else 0
    for name, k in plan.fc_kernels:
        fc = getattr(classifier, name)
        state[f"{name}.weight"] = _fc_as_conv(fc, name, c_in, k)
        state[f"{name}.bias"] = fc.bias.detach().clone()
        c_in = fc.out_features
    return state


def _skipped(key: str, skip: tuple[str, ...]) -> bool:
    """A key is skipped if it, or the module it belongs to, is listed ("score_fr" skips both)."""
    return any(key == s or key.startswith(s + ".") for s in skip)


def transplant(
    src_state: Mapping[str, torch.Tensor], dst: nn.Module, *, skip: tuple[str, ...] = ()
) -> list[str]:
    """Copy every tensor of `src_state` whose name and shape match into `dst`; return the names.

    Names only in one side are left alone (new skip layers keep their zero init). A name in both
    with different shapes is an error unless it is in `skip` (a key or a module name); names in
    `skip` are never copied. Copying nothing at all is an error: it means the nets do not match.
    """
    dst_state = dst.state_dict()
    copied: list[str] = []
    with torch.no_grad():
        for key, value in src_state.items():
            if key not in dst_state or _skipped(key, skip):
                continue
            if value.shape != dst_state[key].shape:
                raise ValueError(
                    f"transplant: {key} has shape {tuple(value.shape)} in the source but "
                    f"{tuple(dst_state[key].shape)} in {type(dst).__name__} (pass skip=({key!r},))"
                )
            dst_state[key].copy_(value)  # state_dict tensors share storage with the parameters
            copied.append(key)
    if not copied:
        raise ValueError(
            f"transplant copied nothing into {type(dst).__name__}: no source key matches "
            f"(source keys start {sorted(src_state)[:3]})"
        )
    return copied


def widen_input(state: Mapping[str, torch.Tensor], key: str, in_channels: int) -> dict[str, torch.Tensor]:
    """Copy of `state` whose first conv `key` takes `in_channels` inputs instead of 3.

    Each extra input channel starts as the mean of the RGB filters (FCN's RGBD net: depth as a 4th
    channel), so at the start the depth channel acts like a grey-level image would.
    """
    weight = state[key]
    if weight.dim() != 4 or weight.shape[1] != 3 or in_channels < 3:
        raise ValueError(f"widen_input: {key} has shape {tuple(weight.shape)}; expected (C, 3, k, k) and "
                         f"in_channels >= 3, got {in_channels}")
    extra = weight.mean(dim=1, keepdim=True).expand(-1, in_channels - 3, -1, -1)
    return {**state, key: torch.cat([weight, extra], dim=1).clone()}


def transplant_streams(parents: Mapping[str, Mapping[str, torch.Tensor]], dst: nn.Module) -> list[str]:
    """Seed each stream of a fusion net from its own trained net: {"rgb": state, "hha": state}.

    Keys go to "<stream>.<key>"; every stream must receive weights (see `transplant`).
    """
    copied: list[str] = []
    for stream, state in parents.items():
        if not hasattr(dst, stream):
            raise ValueError(f"transplant_streams: {type(dst).__name__} has no stream {stream!r}")
        copied += [f"{stream}.{k}" for k in transplant(state, getattr(dst, stream))]
    return copied
