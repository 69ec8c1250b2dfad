"""Input preprocessing, carried by the backbone record so training never hard-codes it.

The paper's Caffe nets (VGG16, CaffeNet) want BGR in 0..255 minus a mean; torchvision's ImageNet
weights want RGB in [0, 1] normalised by mean and std. Feeding one net the other's preprocessing
costs several points of mean IU, so the backbone stage writes which one its weights expect, and the
data pipeline reads it from there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch

from segcore.config.schema import build


@dataclass(frozen=True)
class Preprocess:
    """uint8 HxWx3 RGB image -> float (3, H, W) tensor: reorder, scale, subtract mean, divide std."""

    channel_order: Literal["RGB", "BGR"]
    scale: float                       # multiply raw 0..255 values first (1/255 for torchvision)
    mean: tuple[float, ...]            # per channel, in channel_order, after scaling
    std: tuple[float, ...]

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()  # (3, H, W)
        if self.channel_order == "BGR":
            x = x.flip(0)
        x = x * self.scale
        mean = torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        return (x - mean) / std

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Preprocess:
        return build(cls, dict(data), "preprocess")


# torchvision's ImageNet weights (torchvision.models.VGG16_Weights.IMAGENET1K_V1 transforms).
TORCHVISION_IMAGENET = Preprocess("RGB", 1 / 255, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# The paper's Caffe VGG16 and CaffeNet AlexNet (reference code, voc_layers.py).
CAFFE_VGG16 = Preprocess("BGR", 1.0, (104.00699, 116.66877, 122.67892), (1.0, 1.0, 1.0))
# The FCN authors' released NYUD and SIFT Flow nets (reference code, nyud_layers.py and
# siftflow_layers.py): BGR 0..255 minus each data set's own mean, as the VOC nets with CAFFE_VGG16.
CAFFE_NYUD_COLOR = Preprocess("BGR", 1.0, (116.190, 97.203, 92.318), (1.0, 1.0, 1.0))
CAFFE_SIFTFLOW = Preprocess("BGR", 1.0, (114.578, 115.294, 108.353), (1.0, 1.0, 1.0))
# HHA keeps the PNG's channel order (disparity, height, angle): "RGB" here means no flip.
CAFFE_NYUD_HHA = Preprocess("RGB", 1.0, (132.431, 94.076, 118.477), (1.0, 1.0, 1.0))


def fit_preprocess(images: list[np.ndarray]) -> Preprocess:
    """RGB in [0, 1] normalised by the per-channel mean and std of ``images`` (synthetic pretraining)."""
    pixels = np.concatenate([im.reshape(-1, 3) for im in images]).astype(np.float64) / 255
    mean = tuple(round(float(v), 5) for v in pixels.mean(0))
    std = tuple(round(float(v), 5) for v in pixels.std(0))
    return Preprocess("RGB", 1 / 255, mean, std)
