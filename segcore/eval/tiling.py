"""Overlap-tile inference (U-Net paper, Fig. 2): predict an image of any size tile by tile.

Each output tile of side `tile` is predicted from an input window reaching `MARGIN` (92) px
beyond it; where the window leaves the image, the missing context is the image mirrored at its
border (`segcore.models.unet.mirror_index`), exactly as `SameSizeUNet` pads the whole image.

Why tiles step by a multiple of 16 (tile - 4, neighbouring tiles overlap by 4 px): four 2x2 pools
make U-Net shift-equivariant only for shifts of 16 px. Tile origins on the 16 px grid of the
one-pass prediction make every tile see the same pooling grid, so the tiled and the one-pass
prediction agree up to floating-point rounding. Valid output tiles are 16k + 4, never a multiple
of 16, hence the small overlap (whose pixels both tiles predict identically).
"""

from __future__ import annotations

import torch

from segcore.models.unet import MARGIN, SIZE_STEP, SameSizeUNet, UNet, is_valid_size, mirror_index

MIN_TILE = 20  # smallest output tile whose step (tile - 4) is positive


def check_tile(tile: int) -> None:
    """Raise ValueError unless `tile` is a valid output side (tile + 184 valid) and >= 20."""
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < MIN_TILE \
            or not is_valid_size(tile + 2 * MARGIN):
        raise ValueError(f"tile must be an output side 16k + 4 >= {MIN_TILE} (so tile + 184 is a "
                         f"valid U-Net input), e.g. 20, 36, 388; got {tile!r}")


def tile_origins(n: int, tile: int) -> list[int]:
    """Start of each output tile along an axis of `n` px: 0, s, 2s, ... < n with s = tile - tile % 16."""
    check_tile(tile)
    step = tile - tile % SIZE_STEP
    return list(range(0, n, step))


def predict_tiled(net: UNet | SameSizeUNet, image: torch.Tensor, tile: int) -> torch.Tensor:
    """Logits (K, H, W) of `net` on `image` (C, H, W), any H, W >= 1, predicted in tiles.

    `tile` is the output side of one tile (16k + 4 >= 20; the net sees tile + 184 px). The last
    tile along an axis may reach past the image: its extra output is dropped. The net's mode
    (train / eval) is the caller's; gradients are off.
    """
    unet = net.unet if isinstance(net, SameSizeUNet) else net
    if image.dim() != 3 or image.shape[0] != unet.in_channels or min(image.shape[1:]) < 1:
        raise ValueError(f"expected image ({unet.in_channels}, H, W) with H, W >= 1, "
                         f"got {tuple(image.shape)}")
    _, h, w = image.shape
    ys, xs = tile_origins(h, tile), tile_origins(w, tile)
    window = tile + 2 * MARGIN
    # Mirrored source index of every padded row / column; padded position p is image position p - 92.
    rows = torch.from_numpy(mirror_index(h, MARGIN, ys[-1] + tile + MARGIN - h)).to(image.device)
    cols = torch.from_numpy(mirror_index(w, MARGIN, xs[-1] + tile + MARGIN - w)).to(image.device)
    out: torch.Tensor | None = None
    with torch.no_grad():
        for y0 in ys:
            band = image.index_select(1, rows[y0: y0 + window])  # (C, window, W)
            for x0 in xs:
                patch = band.index_select(2, cols[x0: x0 + window])  # (C, window, window)
                logits = unet(patch.unsqueeze(0))[0]  # (K, tile, tile)
                if out is None:
                    out = logits.new_empty((logits.shape[0], h, w))
                th, tw = min(tile, h - y0), min(tile, w - x0)
                out[:, y0: y0 + th, x0: x0 + tw] = logits[:, :th, :tw]
    assert out is not None  # ys and xs are never empty for h, w >= 1
    return out
