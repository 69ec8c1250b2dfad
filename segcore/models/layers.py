"""Pieces shared by the single-upsampling FCNs (FCN-AlexNet, FCN-GoogLeNet) and their classifiers.

`SingleUpsamplingFCN` is "trunk -> score_fr -> upscore -> crop": the FCN-32s head on any trunk.
Its crop offset is derived from the trunk's layers with `segcore.models.fcn.compose`, exactly as
`FCN` does for VGG16, so a trunk change moves the crop with it.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Callable, Mapping

import torch
from torch import nn

from segcore.models.fcn import (AffineMap, bilinear_upsampling, compose, crop_offset, crop_to,
                                score_layer)

IDENTITY_MAP: AffineMap = (Fraction(1), Fraction(0))


def channel_scaler(width: float) -> Callable[[int], int]:
    """Function c -> round(c * width), at least 1; `width` must be a number in (0, 1]."""
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width <= 1:
        raise ValueError(f"width must be a number in (0, 1], got {width!r}")
    return lambda c: max(1, int(round(c * width)))


class SingleUpsamplingFCN(nn.Module):
    """Base: trunk features -> score_fr (1x1, zero) -> upscore (fixed bilinear) -> crop.

    Subclasses build their trunk, call `_build_head`, and implement `features` (the trunk's
    forward) and `coordinate_path` (the trunk's layers whose kernel/stride/padding move pixel
    coordinates, in forward order).
    """

    in_channels: int
    n_classes: int

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> trunk output (N, C, h, w) fed to score_fr."""
        raise NotImplementedError

    def coordinate_path(self) -> list[nn.Module]:
        """Conv / pool layers from the input to score_fr's input, in forward order."""
        raise NotImplementedError

    def _build_head(self, c_trunk: int, n_classes: int, k: int, stride: int) -> None:
        self.score_fr = score_layer(c_trunk, n_classes)
        self.upscore = bilinear_upsampling(n_classes, k, stride)  # fixed, as the reference
        path = self.coordinate_path() + [self.score_fr, self.upscore]
        self.crop_offsets = {"score": crop_offset(compose(path), IDENTITY_MAP)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) float -> logits (N, n_classes, H, W), for any H, W >= 1."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        score = self.score_fr(self.features(x))
        return crop_to(self.upscore(score), self.crop_offsets["score"], x)


def load_mapped(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    mapping: Mapping[str, str],
    what: str,
    ignored_prefixes: tuple[str, ...] = (),
) -> nn.Module:
    """Load `state_dict` (source key -> our key via `mapping`) into `model`, checking every key.

    `model` may live on the meta device: tensors are assigned, not copied into place. Source keys
    starting with an `ignored_prefixes` entry are dropped; a missing BN `num_batches_tracked` counter
    is set to 0; any other key outside `mapping`, a
    missing key, or a shape mismatch raises ValueError naming it.
    """
    used = {k: v for k, v in state_dict.items() if not k.startswith(ignored_prefixes)}
    for key in mapping:  # checkpoints saved before torch 0.4.1 lack BN's batch counter
        if key.endswith(".num_batches_tracked") and key not in used:
            used[key] = torch.tensor(0, dtype=torch.long)
    extra = sorted(set(used) - set(mapping))
    missing = sorted(set(mapping) - set(used))
    if extra or missing:
        raise ValueError(
            f"not a {what} state dict: unexpected keys {extra[:3]}, missing keys {missing[:3]}"
        )
    own = model.state_dict()
    for src, dst in mapping.items():
        if used[src].shape != own[dst].shape:
            raise ValueError(
                f"{src} has shape {tuple(used[src].shape)}, expected {tuple(own[dst].shape)} "
                f"for {dst}"
            )
    model.load_state_dict({dst: used[src].detach().clone() for src, dst in mapping.items()},
                          assign=True)
    return model
