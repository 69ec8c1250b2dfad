"""U-Net (Ronneberger, Fischer, Brox, MICCAI 2015), as the paper describes it.

Unpadded 3x3 convs, so the output is smaller than the input: a valid input side is 16k + 60
(k >= 8) and gives an output side 184 px smaller (572 -> 388; smallest 188 -> 4). Every output
pixel sees 92 px of context on each side (`MARGIN`). The skip feature maps are centre-cropped by
4, 16, 40 and 88 px per side (levels 4 .. 1) before the concatenation.

`UNet` is the bare network (valid sizes only). `SameSizeUNet` wraps it in the project's model
contract: any (N, C, H, W) in, logits (N, K, H, W) out, the missing context mirrored.

Layer names: down1_conv1 .. down5_conv2 (contracting path, level 5 is the bottom), up4 .. up1
(2x2 up-convolutions), up4_conv1 .. up1_conv2 (expansive path), final (1x1). 23 convs in all.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from segcore.models.layers import channel_scaler

BASE_CHANNELS = (64, 128, 256, 512, 1024)  # levels 1 .. 5
LEVELS = len(BASE_CHANNELS)
MARGIN = 92  # context per side: input side = output side + 2 * MARGIN
SIZE_STEP = 16  # 2 ** (LEVELS - 1): four 2x2 pools
MIN_INPUT = 188  # smallest valid input side (output side 4)
DROPOUT_LEVELS = (4, 5)  # the authors' release drops out after the last two contracting levels


def is_valid_size(n: int) -> bool:
    """True if a side of `n` px passes every pool evenly and leaves an output: n = 16k + 60, n >= 188."""
    return n >= MIN_INPUT and (n - MIN_INPUT) % SIZE_STEP == 0


def output_size(n: int) -> int:
    """Output side for a valid input side `n` (n - 184); raises ValueError for invalid sides."""
    check_size(n)
    return n - 2 * MARGIN


def _valid_at_least(n: int) -> int:
    """Smallest valid input side >= n."""
    return MIN_INPUT + SIZE_STEP * max(0, math.ceil((n - MIN_INPUT) / SIZE_STEP))


def nearest_valid_sizes(n: int) -> tuple[int, ...]:
    """Valid input sides nearest to `n`: the one below (if any) and the one above; (n,) if valid."""
    above = _valid_at_least(n)
    below = above - SIZE_STEP
    return (below, above) if below >= MIN_INPUT and above != n else (above,)


def input_size_for(out: int) -> int:
    """Smallest valid input side whose output covers `out` >= 1 px."""
    if isinstance(out, bool) or not isinstance(out, int) or out < 1:
        raise ValueError(f"output side must be an int >= 1, got {out!r}")
    return _valid_at_least(out + 2 * MARGIN)


def check_size(n: int, what: str = "input side") -> None:
    """Raise ValueError naming `n` and the nearest valid sides unless `n` is a valid input side."""
    if not is_valid_size(n):
        near = " or ".join(str(s) for s in nearest_valid_sizes(n))
        raise ValueError(f"U-Net {what} {n} is not valid: sides must be 16k + 60 >= {MIN_INPUT} "
                         f"(so every 2x2 pool sees an even size); nearest valid: {near}")


def skip_crops(n: int = 572) -> tuple[int, ...]:
    """Per-side crop of the skip maps at levels 4, 3, 2, 1 for a valid input side `n`.

    Follows the layer arithmetic (2 unpadded convs lose 4 px, a pool halves, an up-conv doubles);
    the result is (4, 16, 40, 88) for every valid `n`.
    """
    check_size(n)
    skips = []
    for _ in range(LEVELS - 1):
        n -= 4
        skips.append(n)  # skip map side at this level
        n //= 2
    n -= 4  # bottom
    crops = []
    for skip in reversed(skips):
        n *= 2  # up-conv
        crops.append((skip - n) // 2)
        n -= 4
    return tuple(crops)


def _he_normal_(conv: nn.Conv2d | nn.ConvTranspose2d) -> None:
    """N(0, sqrt(2 / N)) weights, N = k * k * input channels (the paper's rule), zero bias.

    Set by hand: `kaiming_normal_` takes a ConvTranspose2d's fan-in from its output channels.
    """
    k = conv.kernel_size[0] * conv.kernel_size[1]
    nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / (k * conv.in_channels)))
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def centre_crop(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Crop (N, C, H, W) `t` to the centre (H', W') of `like`; the difference must be even and >= 0."""
    dh, dw = t.shape[-2] - like.shape[-2], t.shape[-1] - like.shape[-1]
    if dh < 0 or dw < 0 or dh % 2 or dw % 2:
        raise ValueError(f"cannot centre-crop {tuple(t.shape[-2:])} to {tuple(like.shape[-2:])}")
    return t[..., dh // 2: t.shape[-2] - dh // 2, dw // 2: t.shape[-1] - dw // 2]


def _double_conv(module: nn.Module, prefix: str, c_in: int, c_out: int) -> None:
    """Add `<prefix>_conv1` (c_in -> c_out) and `<prefix>_conv2` (c_out -> c_out), 3x3, unpadded."""
    module.add_module(f"{prefix}_conv1", nn.Conv2d(c_in, c_out, 3))
    module.add_module(f"{prefix}_conv2", nn.Conv2d(c_out, c_out, 3))


class UNet(nn.Module):
    """The paper's U-Net: (N, in_channels, n, m) -> logits (N, n_classes, n - 184, m - 184).

    Both sides must be valid (16k + 60, >= 188; see `check_size`). `width` in (0, 1] scales every
    channel count (rounded, at least 1) for fast smoke runs; width 1 is the paper's net with
    31,030,658 parameters at 1 input channel and 2 classes. Dropout (element-wise, p=`dropout`)
    acts on the outputs of levels 4 and 5, so the level-4 skip is taken after it, as in the
    authors' release.
    """

    def __init__(self, n_classes: int = 2, in_channels: int = 1, width: float = 1.0,
                 dropout: float = 0.5) -> None:
        super().__init__()
        if n_classes < 1 or in_channels < 1:
            raise ValueError(f"n_classes and in_channels must be >= 1, got {n_classes} and {in_channels}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        scale = channel_scaler(width)
        self.n_classes, self.in_channels = n_classes, in_channels
        self.channels = tuple(scale(c) for c in BASE_CHANNELS)
        c_in = in_channels
        for level, c in enumerate(self.channels, start=1):
            _double_conv(self, f"down{level}", c_in, c)
            c_in = c
        self.pool = nn.MaxPool2d(2, 2)
        self.drop = nn.Dropout(dropout)
        for level in range(LEVELS - 1, 0, -1):  # 4, 3, 2, 1
            c = self.channels[level - 1]
            # The up-conv maps the level below's channels to this level's (a halving at width 1);
            # no ReLU after it (the paper's Fig. 1; the Caffe release adds one).
            self.add_module(f"up{level}", nn.ConvTranspose2d(self.channels[level], c, 2, stride=2))
            _double_conv(self, f"up{level}", 2 * c, c)  # input: cropped skip ++ up-conv output
        self.final = nn.Conv2d(self.channels[0], n_classes, 1)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                _he_normal_(m)

    def _block(self, prefix: str, x: torch.Tensor) -> torch.Tensor:
        conv1, conv2 = getattr(self, f"{prefix}_conv1"), getattr(self, f"{prefix}_conv2")
        return torch.relu(conv2(torch.relu(conv1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) with valid H, W -> logits (N, n_classes, H - 184, W - 184)."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        check_size(x.shape[-2], "input height")
        check_size(x.shape[-1], "input width")
        skips = []
        for level in range(1, LEVELS + 1):
            x = self._block(f"down{level}", x)  # (N, c_level, h - 4, w - 4)
            if level in DROPOUT_LEVELS:
                x = self.drop(x)
            if level < LEVELS:
                skips.append(x)
                x = self.pool(x)  # sizes are even: check_size guarantees it
        for level in range(LEVELS - 1, 0, -1):
            up = getattr(self, f"up{level}")(x)  # (N, c_level, 2h, 2w)
            x = torch.cat([centre_crop(skips[level - 1], up), up], dim=1)
            x = self._block(f"up{level}", x)
        return self.final(x)


def mirror_index(n: int, before: int, after: int) -> np.ndarray:
    """Indices of a length-`n` axis extended by `before` / `after` mirrored entries, (before + n + after,).

    Mirrors about the edge pixels without repeating them (..., 2, 1, 0, 1, 2, ...), as often as
    needed: a pad larger than the axis keeps reflecting, so any n >= 1 works (n = 1 repeats).
    """
    if n < 1 or before < 0 or after < 0:
        raise ValueError(f"need n >= 1 and non-negative pads, got n={n}, before={before}, after={after}")
    pos = np.arange(-before, n + after)
    if n == 1:
        return np.zeros_like(pos)
    period = 2 * (n - 1)
    pos = np.mod(pos, period)
    return np.where(pos < n, pos, period - pos)


def mirror_pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """Mirror-pad the last two axes of `x` (see `mirror_index`); pads may exceed the image."""
    rows = torch.from_numpy(mirror_index(x.shape[-2], top, bottom)).to(x.device)
    cols = torch.from_numpy(mirror_index(x.shape[-1], left, right)).to(x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


class SameSizeUNet(nn.Module):
    """`UNet` under the project's model contract: (N, C, H, W), any H, W >= 1 -> (N, K, H, W).

    The image is mirror-padded by `MARGIN` px on the top/left and by enough on the bottom/right to
    reach a valid size, run once, and the output cropped to H x W: the one-pass form of the
    paper's overlap-tile strategy (`segcore.eval.tiling.predict_tiled` gives the same result tile by
    tile). State dict keys are the inner net's under `unet.`.
    """

    def __init__(self, n_classes: int = 2, in_channels: int = 1, width: float = 1.0,
                 dropout: float = 0.5) -> None:
        super().__init__()
        self.unet = UNet(n_classes, in_channels, width, dropout)
        self.n_classes, self.in_channels = n_classes, in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) float -> logits (N, n_classes, H, W)."""
        if x.dim() != 4 or x.shape[1] != self.in_channels or min(x.shape[-2:]) < 1:
            raise ValueError(f"expected input (N, {self.in_channels}, H, W) with H, W >= 1, "
                             f"got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        ph, pw = input_size_for(h), input_size_for(w)
        padded = mirror_pad(x, MARGIN, ph - h - MARGIN, MARGIN, pw - w - MARGIN)
        return self.unet(padded)[..., :h, :w]
