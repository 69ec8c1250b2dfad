"""Late fusion of two FCN streams (FCN paper Table 4, RGB-HHA): the streams' predictions summed.

Each stream is a full FCN on its own modality (RGB, and HHA-encoded depth). The paper fuses
"by summing their predictions"; the reference net sums the two score_fr maps (weights 0.5 / 0.5)
before one upsampling. With fixed upsampling layers (the reference setting) both are the same
function, because upsampling and cropping are linear: 0.5 up(a) + 0.5 up(b) = up(0.5 a + 0.5 b)
(tests/test_models_fusion.py checks it). Summing the outputs keeps every stream a complete FCN,
so a trained single-modality net transplants into its stream key for key ("rgb.conv1_1.weight").
"""

from __future__ import annotations

import torch
from torch import nn

from segcore.models.fcn import FCN

STREAMS = ("rgb", "hha")
FUSION_WEIGHTS = (0.5, 0.5)


class LateFusionFCN(nn.Module):
    """Two FCNs of one variant; input (N, 6, H, W) = RGB channels then HHA channels.

    Output (N, n_classes, H, W) = 0.5 rgb(x[:, :3]) + 0.5 hha(x[:, 3:]).
    """

    def __init__(self, n_classes: int, variant: str = "32s", width: float = 1.0,
                 learn_upsampling: bool = False) -> None:
        super().__init__()
        self.n_classes, self.variant, self.in_channels = n_classes, variant, 3 * len(STREAMS)
        self.rgb = FCN(n_classes, variant, width, learn_upsampling, 3)
        self.hha = FCN(n_classes, variant, width, learn_upsampling, 3)
        self.crop_offsets = self.rgb.crop_offsets  # both streams share the geometry

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (N, {self.in_channels}, H, W) = RGB + HHA, got {tuple(x.shape)}")
        (w_rgb, w_hha) = FUSION_WEIGHTS
        return w_rgb * self.rgb(x[:, :3]) + w_hha * self.hha(x[:, 3:])
