"""U-Net training augmentation: elastic deformation on a coarse grid, shift, rotation, grey values.

The paper's elastic deformation: random displacement vectors on a coarse 3 x 3 grid, drawn from a
Gaussian with 10 px standard deviation, turned into per-pixel displacements by bicubic
interpolation. Here the grid nodes sit on the image corners, edge midpoints and centre, and the
interpolation is scipy's cubic spline (`map_coordinates`, order 3), which passes through the
nodes. (The common recipe that smooths a per-pixel random field is a different method.)

One sampling grid combines the deformation with a random shift and rotation about the centre, so
every array of a sample is resampled once, consistently:
- image: cubic spline (order 3), may overshoot its range slightly (not clipped);
- labels: nearest neighbour (order 0), so no new label value appears;
- weight map: nearest neighbour too, so each output pixel keeps the (label, weight) pair of one
  source pixel (linear interpolation would blend a border's weight into the cell next to it).
Outside the image, all arrays read the image mirrored at its border ('mirror': edge pixels not
repeated), as in overlap-tile inference.

Randomness comes from one `numpy.random.Generator`, always in the same order and amount (a zero
range still draws), so a seed fixes the result and changing a range does not shift other draws.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage

GRID = 3
ELASTIC_STD = 10.0  # px
MODE = "mirror"


class Augmented(NamedTuple):
    """One augmented training sample (None where the input had no weight map)."""

    image: np.ndarray  # (H, W) float32
    label: np.ndarray  # (H, W), the input label's dtype
    weight: np.ndarray | None  # (H, W) float32


def elastic_field(shape: tuple[int, int], rng: np.random.Generator, *, grid: int = GRID,
                  std: float = ELASTIC_STD) -> np.ndarray:
    """(2, H, W) float64 displacement (dy, dx): N(0, std) vectors on a grid x grid lattice over the
    image (corners included), interpolated bicubically to every pixel."""
    if grid < 2 or std < 0:
        raise ValueError(f"need grid >= 2 and std >= 0, got grid={grid}, std={std}")
    h, w = shape
    nodes = rng.normal(0.0, std, size=(2, grid, grid))
    # Pixel (y, x) sits at lattice coordinate (y * (grid-1) / (H-1), x * (grid-1) / (W-1)).
    ly, lx = np.meshgrid(np.linspace(0, grid - 1, h), np.linspace(0, grid - 1, w), indexing="ij")
    return np.stack([ndimage.map_coordinates(n, [ly, lx], order=3, mode=MODE) for n in nodes])


def sampling_grid(shape: tuple[int, int], rng: np.random.Generator, *, grid: int = GRID,
                  elastic_std: float = ELASTIC_STD, max_shift: float = 0.0,
                  max_rotation: float = 0.0) -> np.ndarray:
    """(2, H, W) source coordinates: rotation by U(-max_rotation, max_rotation) degrees about the
    centre, shift by U(-max_shift, max_shift) px per axis, plus the elastic field."""
    if max_shift < 0 or max_rotation < 0:
        raise ValueError(f"need max_shift >= 0 and max_rotation >= 0, got {max_shift}, {max_rotation}")
    h, w = shape
    field = elastic_field(shape, rng, grid=grid, std=elastic_std)
    angle = np.radians(rng.uniform(-max_rotation, max_rotation))
    shift = rng.uniform(-max_shift, max_shift, size=2)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    cos, sin = np.cos(angle), np.sin(angle)
    src_y = cos * (yy - cy) - sin * (xx - cx) + cy + shift[0] + field[0]
    src_x = sin * (yy - cy) + cos * (xx - cx) + cx + shift[1] + field[1]
    return np.stack([src_y, src_x])


def warp(array: np.ndarray, coords: np.ndarray, order: int) -> np.ndarray:
    """Resample (H, W) `array` at (2, H, W) `coords` with spline `order` (0 nearest, 3 cubic)."""
    return ndimage.map_coordinates(array, coords, order=order, mode=MODE)


def vary_grey(image: np.ndarray, rng: np.random.Generator, *, brightness: float = 0.0,
              contrast: float = 0.0) -> np.ndarray:
    """Contrast factor U(1 - contrast, 1 + contrast) about the mean, then + U(-brightness, brightness)
    (in the image's units: 0.1 is a tenth of the range for images scaled to [0, 1])."""
    if brightness < 0 or not 0 <= contrast < 1:
        raise ValueError(f"need brightness >= 0 and contrast in [0, 1), got {brightness}, {contrast}")
    factor = rng.uniform(1 - contrast, 1 + contrast)
    offset = rng.uniform(-brightness, brightness)
    mean = image.mean()
    return (image - mean) * factor + mean + offset


def augment(image: np.ndarray, label: np.ndarray, rng: np.random.Generator,
            weight: np.ndarray | None = None, *, grid: int = GRID, elastic_std: float = ELASTIC_STD,
            max_shift: float = 16.0, max_rotation: float = 180.0, brightness: float = 0.1,
            contrast: float = 0.2) -> Augmented:
    """Deform, shift, rotate (one resampling) and vary the grey values of one (H, W) sample.

    `image` float (scaled to [0, 1] for the grey ranges to mean what they say), `label` any
    integer labels, `weight` an optional float weight map warped like the labels. Ranges: shift in
    px per axis, rotation in degrees, elastic_std in px at the grid nodes.
    """
    if image.ndim != 2 or image.shape != label.shape or (weight is not None and weight.shape != label.shape):
        shapes = [a.shape for a in (image, label, weight) if a is not None]
        raise ValueError(f"image, label (and weight) must be the same (H, W) shape, got {shapes}")
    coords = sampling_grid(image.shape, rng, grid=grid, elastic_std=elastic_std,
                           max_shift=max_shift, max_rotation=max_rotation)
    out_image = warp(np.asarray(image, np.float64), coords, order=3)
    out_image = vary_grey(out_image, rng, brightness=brightness, contrast=contrast)
    out_weight = None if weight is None else warp(weight, coords, order=0).astype(np.float32)
    return Augmented(out_image.astype(np.float32), warp(label, coords, order=0), out_weight)
