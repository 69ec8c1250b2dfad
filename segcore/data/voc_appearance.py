"""Appearance model of the synthetic VOC twin: 20 classes, backgrounds, scenes, void bands.

Each of the 20 classes is a fixed combination of hue, texture and shape (`STYLES`). Eleven
classes have thin parts (legs, spokes, bars, poles of 2-4 px) that a stride-32 score map
cannot draw but a stride-8 one can, so FCN-8s > FCN-16s > FCN-32s should hold on the twin.
The writer lives in `twin_voc.py`; `render_object_image` also serves a classification
pretraining stand-in, so both tasks see the same classes.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .voc import NUM_CLASSES

VOID_BAND_PX = 2


@dataclass(frozen=True)
class ClassStyle:
    """Appearance of one class: hue in degrees, texture name and period (px), shape name."""

    hue: float
    texture: str
    period: int
    shape: str


# Hues are the 20 multiples of 18 degrees, assigned so that two classes of the same shape are at least
# 54 degrees apart on the colour wheel (found by a one-off search); colour alone already separates them.
_STYLE_TABLE = (  # (hue deg, texture, period px, shape) of classes 1..20
    (234, "plain", 0, "cross"),           # aeroplane
    (54, "plain", 0, "wheel"),            # bicycle
    (108, "dots", 5, "triangle"),         # bird
    (270, "hstripes", 4, "triangle"),     # boat
    (216, "vstripes", 3, "rectangle"),    # bottle
    (0, "checks", 6, "rectangle"),        # bus
    (342, "hstripes", 6, "ellipse"),      # car
    (126, "dots", 4, "legs"),             # cat
    (72, "checks", 4, "legs"),            # chair
    (306, "plain", 0, "legs"),            # cow
    (252, "vstripes", 5, "legs"),         # diningtable
    (18, "diag", 4, "legs"),              # dog
    (198, "hstripes", 3, "legs"),         # horse
    (162, "checks", 5, "wheel"),          # motorbike
    (36, "plain", 0, "pole"),             # person
    (180, "dots", 6, "pole"),             # pottedplant
    (144, "dots", 3, "ellipse"),          # sheep
    (90, "diag", 6, "rectangle"),         # sofa
    (288, "hstripes", 8, "rectangle"),    # train
    (324, "checks", 3, "diamond"),        # tvmonitor
)

STYLES = {c: ClassStyle(*row) for c, row in enumerate(_STYLE_TABLE, start=1)}


# ---- shapes: integer pixel grids (yi, xi) of a bh x bw box -> bool mask --------------------------------
SHAPES = ("ellipse", "rectangle", "triangle", "diamond", "cross", "wheel", "legs", "pole")
THIN_SHAPES = ("cross", "wheel", "legs", "pole")  # parts 2-4 px wide


def _band(v: np.ndarray, centre: int, width: int) -> np.ndarray:
    """Exactly `width` pixels around `centre` along one axis (thin bars stay 2-4 px)."""
    start = centre - width // 2
    return (v >= start) & (v < start + width)


def _unit(yi: np.ndarray, xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres mapped to [-1, 1] in each axis of the box."""
    return (yi + 0.5) / (yi.shape[0] / 2) - 1, (xi + 0.5) / (xi.shape[1] / 2) - 1


def _shape_mask(shape: str, bh: int, bw: int, thin: int, rng: np.random.Generator) -> np.ndarray:
    yi, xi = np.mgrid[0:bh, 0:bw]
    u, v = _unit(yi, xi)
    if shape == "ellipse":
        return u**2 + v**2 <= 1
    if shape == "rectangle":
        return np.ones((bh, bw), dtype=bool)
    if shape == "triangle":
        return np.abs(v) <= (u + 1) / 2
    if shape == "diamond":
        return np.abs(u) + np.abs(v) <= 1
    if shape == "cross":  # two thin bars and a small hub
        return _band(yi, bh // 2, thin) | _band(xi, bw // 2, thin) | (u**2 + v**2 <= 0.12)
    if shape == "wheel":  # thin rim, two thin spokes, hub, in the inscribed circle
        r = np.hypot(yi + 0.5 - bh / 2, xi + 0.5 - bw / 2)
        radius = min(bh, bw) / 2
        spokes = (_band(yi, bh // 2, thin) | _band(xi, bw // 2, thin)) & (r <= radius)
        return (np.abs(r - (radius - thin / 2)) <= thin / 2) | spokes | (r <= radius / 4)
    if shape == "legs":  # body in the top 55 %, 2-4 thin legs down to the bottom
        body = ((yi + 0.5) / (0.275 * bh) - 1) ** 2 + v**2 <= 1
        legs = np.zeros((bh, bw), dtype=bool)
        for x in np.linspace(0.2 * bw, 0.8 * bw, int(rng.integers(2, 5))).astype(int):
            legs |= _band(xi, int(x), thin)
        return body | (legs & (yi >= int(0.3 * bh)))
    if shape == "pole":  # thin vertical pole with a flag on top
        pole = _band(xi, bw // 4, thin)
        return pole | ((yi < int(0.45 * bh)) & (xi >= bw // 4))
    raise ValueError(f"shape {shape!r} unknown; allowed: {', '.join(SHAPES)}")


def _texture(name: str, period: int, yi: np.ndarray, xi: np.ndarray) -> np.ndarray:
    """1 = bright phase, 0 = dark phase of a class texture."""
    if name == "plain":
        return np.ones(yi.shape, dtype=bool)
    if name == "hstripes":
        return (yi // period) % 2 == 0
    if name == "vstripes":
        return (xi // period) % 2 == 0
    if name == "checks":
        return (yi // period + xi // period) % 2 == 0
    if name == "diag":
        return ((yi + xi) // period) % 2 == 0
    if name == "dots":
        c = (period - 1) / 2
        return (yi % period - c) ** 2 + (xi % period - c) ** 2 > (period / 3) ** 2
    raise ValueError(f"texture {name!r} unknown; allowed: plain, hstripes, vstripes, checks, diag, dots")


def _rgb(hue: float, sat: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb((hue % 360) / 360, sat, 1.0))


def _background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Low-saturation, low-contrast textured background, float (H, W, 3) in [0, 1]."""
    yi, xi = np.mgrid[0:h, 0:w].astype(np.float64)
    style = int(rng.integers(4))
    if style == 0:  # blotches: a coarse random grid, smoothly upsampled
        grid = rng.uniform(-1, 1, size=(5, 5))
        pattern = ndimage.zoom(grid, (h / 5, w / 5), order=1)[:h, :w]
    elif style == 1:  # sinusoidal stripes at a random angle
        angle, period = rng.uniform(0, np.pi), rng.uniform(6, 20)
        pattern = np.sin(2 * np.pi * (yi * np.sin(angle) + xi * np.cos(angle)) / period)
    elif style == 2:  # linear gradient
        pattern = (yi / h - 0.5) * rng.uniform(-2, 2) + (xi / w - 0.5) * rng.uniform(-2, 2)
    else:  # faint checks
        p = int(rng.integers(8, 17))
        pattern = ((yi // p + xi // p) % 2) * 2 - 1.0
    value = rng.uniform(0.35, 0.75) + rng.uniform(0.04, 0.1) * pattern
    return value[..., None] * _rgb(rng.uniform(0, 360), rng.uniform(0.0, 0.25))


def _paint_object(canvas: np.ndarray, cls: int, top: int, left: int, bh: int, bw: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Paint one object of class `cls` into canvas (H, W, 3) in place; return its full-image mask."""
    style = STYLES[cls]
    mask = _shape_mask(style.shape, bh, bw, int(rng.integers(2, 5)), rng)
    if rng.random() < 0.5:
        mask = mask[:, ::-1]
    yi, xi = np.mgrid[0:bh, 0:bw]
    bright = _texture(style.texture, style.period, yi, xi)
    value = np.where(bright, rng.uniform(0.85, 1.0), rng.uniform(0.45, 0.6))
    colour = value[..., None] * _rgb(style.hue + rng.uniform(-5, 5), rng.uniform(0.8, 1.0))
    region = canvas[top:top + bh, left:left + bw]
    region[mask] = colour[mask]
    full = np.zeros(canvas.shape[:2], dtype=bool)
    full[top:top + bh, left:left + bw] = mask
    return full


def _to_uint8(canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noisy = canvas + rng.normal(0.0, 0.02, size=canvas.shape)  # sensor-like noise everywhere
    return np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8)


def render_object_image(cls: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One object of class `cls` (1..20) on a textured background: uint8 (size, size, 3).

    Same appearance model as the segmentation twin, for a synthetic classification pretraining task.
    """
    if cls not in STYLES:
        raise ValueError(f"class {cls} not allowed; use 1..{NUM_CLASSES - 1}")
    if size < 16:
        raise ValueError(f"size {size} too small; use at least 16 px")
    canvas = _background(size, size, rng)
    bh, bw = (int(size * rng.uniform(0.5, 0.85)) for _ in range(2))
    top, left = int(rng.integers(0, size - bh + 1)), int(rng.integers(0, size - bw + 1))
    _paint_object(canvas, cls, top, left, bh, bw, rng)
    return _to_uint8(canvas, rng)


DOMINANT_BOX = (0.75, 0.95)  # box side as a fraction of the image side
SMALL_BOX = (0.25, 0.4)


def render_scene(h: int, w: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A scene of 1-3 objects: image uint8 (H, W, 3), class label uint8 (H, W), instance ids uint8 (H, W)."""
    canvas = _background(h, w, rng)
    label = np.zeros((h, w), dtype=np.uint8)
    inst = np.zeros((h, w), dtype=np.uint8)
    n_obj = int(rng.integers(1, 4))
    for k in range(n_obj):
        cls = int(rng.integers(1, NUM_CLASSES))
        # One dominant object, as in most VOC images, that a stride-32 net can paint from its
        # coarse cells; the others are small, and with the thin parts they need the skips.
        lo, hi = DOMINANT_BOX if k == 0 else SMALL_BOX
        bh = max(12, int(h * rng.uniform(lo, hi)))
        bw = max(12, int(w * rng.uniform(lo, hi)))
        top, left = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
        mask = _paint_object(canvas, cls, top, left, bh, bw, rng)
        label[mask], inst[mask] = cls, k + 1
    return _to_uint8(canvas, rng), label, inst


def void_band(inst: np.ndarray) -> np.ndarray:
    """Pixels within VOID_BAND_PX (chessboard) outside each visible instance: VOC's outline band."""
    band = np.zeros(inst.shape, dtype=bool)
    for k in np.unique(inst[inst > 0]):
        mask = inst == k
        band |= ndimage.binary_dilation(mask, np.ones((3, 3), bool), VOID_BAND_PX) & ~mask
    return band
