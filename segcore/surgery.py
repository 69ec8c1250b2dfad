"""Net surgery: turn a classifier into an FCN trunk, and copy weights between nets by name.

`convolutionalise` is the paper's core trick: fc6 / fc7 of the ImageNet classifier become 7x7 and
1x1 convolutions with the same weights, so the net slides the classifier over larger images.
`transplant` is how staged training starts FCN-16s from FCN-32s and FCN-8s from FCN-16s.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from segcore.models.vgg import FC6_KERNEL, VGG16Classifier, vgg16_conv_names


def convolutionalise(classifier: VGG16Classifier) -> dict[str, torch.Tensor]:
    """FCN trunk state dict (conv1_1 ... fc7) from a VGG16 classifier; fc8 is dropped.

    fc6 (F, C5 * 7 * 7) -> (F, C5, 7, 7); fc7 (F, F) -> (F, F, 1, 1); biases and convs copied.
    fc8 has no counterpart: the FCN's score_fr is new (zero init, its own class count).
    Returned tensors are detached copies, not views of the classifier's parameters.
    """
    state: dict[str, torch.Tensor] = {}
    for _, name in vgg16_conv_names():
        conv = getattr(classifier, name)
        state[f"{name}.weight"] = conv.weight.detach().clone()
        state[f"{name}.bias"] = conv.bias.detach().clone()
    c5 = classifier.conv5_3.out_channels
    fc6, fc7 = classifier.fc6, classifier.fc7
    if fc6.in_features != c5 * FC6_KERNEL * FC6_KERNEL:
        raise ValueError(
            f"fc6 has {fc6.in_features} inputs, expected conv5_3 channels x 7 x 7 = "
            f"{c5 * FC6_KERNEL * FC6_KERNEL}"
        )
    # torchvision flattens pool5 as (C, H, W), so rows of fc6 reshape to (C5, 7, 7) directly.
    state["fc6.weight"] = fc6.weight.detach().reshape(
        fc6.out_features, c5, FC6_KERNEL, FC6_KERNEL
    ).clone()
    state["fc6.bias"] = fc6.bias.detach().clone()
    state["fc7.weight"] = fc7.weight.detach().reshape(*fc7.weight.shape, 1, 1).clone()
    state["fc7.bias"] = fc7.bias.detach().clone()
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
