"""Model registry: names used in params.yaml -> keyword-only builders, plus training helpers.

FCN-32s-fixed (paper Table 2: only score_fr trained) is `fcn32s` trained after
`freeze_all_but(model, ("score_fr",))`, not a separate architecture.
"""

from __future__ import annotations

import inspect
from typing import Callable

from torch import nn

from segcore.models.alexnet import FCNAlexNet
from segcore.models.fcn import FCN, Heads
from segcore.models.fusion import LateFusionFCN
from segcore.models.googlenet import FCNGoogLeNet
from segcore.models.unet import SameSizeUNet


def fcn32s(
    *, n_classes: int | Heads, width: float = 1.0, learn_upsampling: bool = False, in_channels: int = 3
) -> FCN:
    """FCN-32s: score_fr upsampled 32x (fixed bilinear). A {head: classes} dict gives one head each."""
    return FCN(n_classes, "32s", width, learn_upsampling, in_channels)


def fcn16s(
    *, n_classes: int | Heads, width: float = 1.0, learn_upsampling: bool = False, in_channels: int = 3
) -> FCN:
    """FCN-16s: 2x score_fr + score_pool4, then 16x."""
    return FCN(n_classes, "16s", width, learn_upsampling, in_channels)


def fcn8s(
    *, n_classes: int | Heads, width: float = 1.0, learn_upsampling: bool = False, in_channels: int = 3
) -> FCN:
    """FCN-8s: FCN-16s fuse + score_pool3, then 8x."""
    return FCN(n_classes, "8s", width, learn_upsampling, in_channels)


def fcn8s_atonce(
    *, n_classes: int, width: float = 1.0, learn_upsampling: bool = False, in_channels: int = 3
) -> FCN:
    """FCN-8s trained in one stage: pool4 x 0.01 and pool3 x 0.0001 before their score layers."""
    return FCN(n_classes, "8s-atonce", width, learn_upsampling, in_channels)


def _single_upsampling_only(name: str, learn_upsampling: bool) -> None:
    # The only upsampling of a single-stage net is the final one, which the paper keeps fixed.
    if learn_upsampling:
        raise ValueError(
            f"{name} has only its final, fixed upsampling: learn_upsampling must be False, got True"
        )


def fcn_alexnet(
    *, n_classes: int, width: float = 1.0, learn_upsampling: bool = False, in_channels: int = 3
) -> FCNAlexNet:
    """FCN-AlexNet (Table 1): the paper's CaffeNet trunk (LRN, grouped convs), fc6 6x6, score_fr upsampled 32x."""
    _single_upsampling_only("fcn-alexnet", learn_upsampling)
    return FCNAlexNet(n_classes, width, in_channels)


def fcn_googlenet(
    *, n_classes: int, width: float = 1.0, learn_upsampling: bool = False, in_channels: int = 3
) -> FCNGoogLeNet:
    """FCN-GoogLeNet (Table 1): torchvision GoogLeNet trunk to inception5b, upsampled 32x."""
    _single_upsampling_only("fcn-googlenet", learn_upsampling)
    return FCNGoogLeNet(n_classes, width, in_channels)


def fcn32s_rgbhha(
    *, n_classes: int, width: float = 1.0, learn_upsampling: bool = False, in_channels: int = 6
) -> LateFusionFCN:
    """FCN-32s RGB-HHA (Table 4): an RGB and an HHA FCN-32s, predictions summed 0.5 / 0.5."""
    _six_channels("fcn32s-rgbhha", in_channels)
    return LateFusionFCN(n_classes, "32s", width, learn_upsampling)


def fcn16s_rgbhha(
    *, n_classes: int, width: float = 1.0, learn_upsampling: bool = False, in_channels: int = 6
) -> LateFusionFCN:
    """FCN-16s RGB-HHA (Table 4): both streams FCN-16s, started from the trained 32s fusion."""
    _six_channels("fcn16s-rgbhha", in_channels)
    return LateFusionFCN(n_classes, "16s", width, learn_upsampling)


def unet(
    *, n_classes: int, width: float = 1.0, learn_upsampling: bool = False, in_channels: int = 1
) -> SameSizeUNet:
    """U-Net (Ronneberger et al. 2015), any input size through mirrored context (segcore.models.unet).

    Its 2x2 up-convolutions are always learned (the paper's design); ``learn_upsampling``, an FCN
    option, is accepted for the common builder signature and changes nothing.
    """
    return SameSizeUNet(n_classes, in_channels, width)


def _six_channels(name: str, in_channels: int) -> None:
    if in_channels != 6:
        raise ValueError(f"{name} takes RGB + HHA: in_channels must be 6, got {in_channels}")


MODELS: dict[str, Callable[..., nn.Module]] = {
    "fcn32s": fcn32s,
    "fcn16s": fcn16s,
    "fcn8s": fcn8s,
    "fcn8s-atonce": fcn8s_atonce,
    "fcn-alexnet": fcn_alexnet,
    "fcn-googlenet": fcn_googlenet,
    "fcn32s-rgbhha": fcn32s_rgbhha,
    "fcn16s-rgbhha": fcn16s_rgbhha,
    "unet": unet,
}

# The ImageNet classifier whose convolutionalised trunk each model starts from (segcore.models.backbone.ARCHS);
# models not listed (U-Net) train from scratch, as in their paper.
BACKBONE: dict[str, str] = {
    "fcn32s": "vgg16",
    "fcn16s": "vgg16",
    "fcn8s": "vgg16",
    "fcn8s-atonce": "vgg16",
    "fcn-alexnet": "alexnet",
    "fcn-googlenet": "googlenet",
    "fcn32s-rgbhha": "vgg16",
    "fcn16s-rgbhha": "vgg16",
}

# Staged training: each model starts from its trained parent (weights copied by name).
PARENT: dict[str, str] = {"fcn16s": "fcn32s", "fcn8s": "fcn16s", "fcn16s-rgbhha": "fcn32s-rgbhha"}


def build_model(name: str, **kwargs: object) -> nn.Module:
    """Build registered model `name`; unknown names or keyword arguments raise ValueError."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; allowed: {', '.join(sorted(MODELS))}")
    builder = MODELS[name]
    allowed = inspect.signature(builder).parameters
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown argument(s) {unknown} for model {name!r}; allowed: {', '.join(allowed)}"
        )
    return builder(**kwargs)


def input_channels(model: nn.Module) -> int:
    """Channels a net reads: those of its first conv (3 for RGB nets, 4 for RGBD, 6 for RGB-HHA, 1 for ISBI)."""
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels


def freeze_all_but(model: nn.Module, names: tuple[str, ...]) -> list[str]:
    """Freeze every parameter outside the modules `names`; return the names still trainable.

    Parameters inside `names` keep their flag (a fixed bilinear upsampling stays fixed).
    A name that is not a submodule of `model` raises ValueError.
    """
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules or n == ""]
    if missing:
        raise ValueError(f"freeze_all_but: no module named {missing} in {type(model).__name__}")
    trainable: list[str] = []
    for key, param in model.named_parameters():
        keep = any(key.startswith(n + ".") for n in names)
        if not keep:
            param.requires_grad_(False)
        elif param.requires_grad:
            trainable.append(key)
    return trainable


def parameter_count(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of parameters; by default only learnable ones (fixed bilinear upsampling excluded).

    Full FCN-32s with 21 classes: 134,346,581 learnable (the paper's 134M), 134,432,597 in all (its
    fixed upscore stores one 64x64 filter per class: 21 x 4,096).
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
