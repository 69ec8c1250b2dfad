"""A deterministic synthetic twin of ISBI 2012: grey EM-like tissue of touching cells.

Each slice is a Voronoi tessellation (jittered seeds, coordinates bent by a smooth random field
so boundaries curve) whose cell borders are dark membranes of varying width (about 1 to 4 px)
and contrast. Cell interiors have their own brightness and a fine texture, plus dark organelle
blobs (mitochondria-like) and small bright vesicles, which a membrane detector must learn not to
call membrane. Then blur and noise. Labels: 255 = cell interior, 0 = membrane, as the real ones.

Written as the published files (train-volume.tif, train-labels.tif, test-volume.tif, multi-page
8-bit TIFFs), so `segcore.data.isbi.load_isbi` reads twin and real data alike. Byte-identical for
the same arguments; the folder is built aside and renamed into place.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from segcore.core.atomic import build_dir
from segcore.data.isbi import CELL, MEMBRANE, TEST_VOLUME, TRAIN_LABELS, TRAIN_VOLUME, write_tiff_stack

CELL_PITCH = 22.0  # px between neighbouring cell centres (real ISBI cells: a few tens of px)
_TRAIN, _TEST = 0, 1  # random stream ids: the test stack is not a copy of the training one


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-smoothed white noise rescaled to zero mean, unit std."""
    field = ndimage.gaussian_filter(rng.normal(size=shape), sigma, mode="wrap")
    return (field - field.mean()) / (field.std() + 1e-12)


def _seeds(rng: np.random.Generator, size: int) -> np.ndarray:
    """(n, 2) cell centres: a jittered grid covering the slice and a margin around it."""
    n = int(np.ceil(size / CELL_PITCH)) + 2
    grid = (np.stack(np.meshgrid(np.arange(n), np.arange(n), indexing="ij"), -1).reshape(-1, 2) - 1 + 0.5)
    return grid * CELL_PITCH + rng.uniform(-0.35, 0.35, size=grid.shape) * CELL_PITCH


def tessellate(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(cell index (H, W) int, distance to the nearest cell border (H, W) px) of a bent Voronoi."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    bend = 0.12 * CELL_PITCH
    by, bx = _smooth_field(rng, (size, size), 8) * bend, _smooth_field(rng, (size, size), 8) * bend
    points = np.stack([(yy + by).ravel(), (xx + bx).ravel()], -1)
    seeds = _seeds(rng, size)
    dist, index = cKDTree(seeds).query(points, k=2)
    # Distance to the bisector of the two nearest seeds: (d2^2 - d1^2) / (2 |s1 - s2|).
    gap = np.linalg.norm(seeds[index[:, 0]] - seeds[index[:, 1]], axis=1)
    border = (dist[:, 1] ** 2 - dist[:, 0] ** 2) / (2 * gap)
    return index[:, 0].reshape(size, size), border.reshape(size, size)


def render_slice(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One twin slice: (image (H, W) uint8, labels (H, W) uint8 with 255 cell, 0 membrane)."""
    cell, border = tessellate(rng, size)
    half_width = 0.5 + 0.9 * (1 + np.tanh(_smooth_field(rng, (size, size), 10)))  # 0.5 .. 2.3 px
    membrane = border < half_width
    labels = np.where(membrane, MEMBRANE, CELL).astype(np.uint8)
    brightness = rng.uniform(0.55, 0.8, size=cell.max() + 1)[cell]  # one level per cell
    image = brightness + 0.05 * _smooth_field(rng, (size, size), 1.2)  # cytoplasm texture
    image = _add_blobs(rng, image, border, count=int(size * size / 600), value=(0.25, 0.4), radius=(2.0, 5.0))
    image = _add_blobs(rng, image, border, count=int(size * size / 700), value=(0.85, 0.95), radius=(1.0, 1.8))
    darkness = rng.uniform(0.1, 0.25) + 0.12 * (1 + np.tanh(_smooth_field(rng, (size, size), 12)))
    image = np.where(membrane, darkness, image)  # faint in places: darkness 0.1 .. 0.49
    image = ndimage.gaussian_filter(image, 0.9) + rng.normal(0, 0.04, size=image.shape)
    return np.clip(np.round(image * 255), 0, 255).astype(np.uint8), labels


def _add_blobs(rng: np.random.Generator, image: np.ndarray, border: np.ndarray, count: int,
               value: tuple[float, float], radius: tuple[float, float]) -> np.ndarray:
    """Paint `count` elliptic blobs of grey `value` inside cells (centres >= 3 px from a border)."""
    size = image.shape[0]
    out = image.copy()
    inside = np.flatnonzero(border.ravel() > 3)
    if inside.size == 0:
        return out
    reach = int(np.ceil(radius[1]))
    for centre in rng.choice(inside, size=count):
        cy, cx = divmod(int(centre), size)
        ry, rx = rng.uniform(*radius, size=2)
        angle = rng.uniform(0, np.pi)
        y0, x0 = max(cy - reach, 0), max(cx - reach, 0)
        dy, dx = np.mgrid[y0: min(cy + reach + 1, size), x0: min(cx + reach + 1, size)]
        dy, dx = dy - cy, dx - cx  # a box around the blob, not the whole slice
        u, v = dy * np.cos(angle) + dx * np.sin(angle), -dy * np.sin(angle) + dx * np.cos(angle)
        box = out[y0: y0 + dy.shape[0], x0: x0 + dy.shape[1]]
        box[(u / ry) ** 2 + (v / rx) ** 2 <= 1] = rng.uniform(*value)
    return out


def render_stack(seed: int, stream: int, n_slices: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels), each (n_slices, size, size) uint8; slice i uses the stream (seed, stream, i)."""
    slices = [render_slice(np.random.Generator(np.random.PCG64([seed, stream, i])), size)
              for i in range(n_slices)]
    return np.stack([s[0] for s in slices]), np.stack([s[1] for s in slices])


def write_isbi_twin(out_dir: Path | str, seed: int = 0, n_slices: int = 10, size: int = 128) -> None:
    """Write train-volume.tif, train-labels.tif and test-volume.tif (n_slices pages each, size x size)."""
    if n_slices < 1 or size < 32:
        raise ValueError(f"need n_slices >= 1 and size >= 32, got n_slices={n_slices}, size={size}")
    train, labels = render_stack(seed, _TRAIN, n_slices, size)
    test, _ = render_stack(seed, _TEST, n_slices, size)

    def build(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        write_tiff_stack(tmp / TRAIN_VOLUME, train)
        write_tiff_stack(tmp / TRAIN_LABELS, labels)
        write_tiff_stack(tmp / TEST_VOLUME, test)

    build_dir(out_dir, build)
