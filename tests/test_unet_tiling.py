"""Overlap-tile inference equals the one-pass prediction (spec/unet.md)."""

import pytest
import torch

from segcore.models.unet import SameSizeUNet
from segcore.eval.tiling import check_tile, predict_tiled, tile_origins

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def net() -> SameSizeUNet:
    torch.manual_seed(0)
    return SameSizeUNet(n_classes=2, in_channels=1, width=1 / 16).double().eval()


@pytest.mark.parametrize("size,tile", [((45, 70), 20), ((45, 70), 36), ((7, 9), 20), ((37, 21), 52)])
def test_tiled_equals_one_pass(net, size, tile):
    torch.manual_seed(1)
    image = torch.rand(1, *size, dtype=torch.float64)
    with torch.no_grad():
        one_pass = net(image[None])[0]
    tiled = predict_tiled(net, image, tile)
    assert tiled.shape == (2, *size)
    torch.testing.assert_close(tiled, one_pass, rtol=0, atol=1e-10)


def test_tile_checks():
    assert tile_origins(45, 20) == [0, 16, 32] and tile_origins(100, 388) == [0]
    for bad in (4, 19, 21, 388.0):
        with pytest.raises(ValueError, match="16k \\+ 4"):
            check_tile(bad)
