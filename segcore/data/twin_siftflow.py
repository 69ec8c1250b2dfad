"""A deterministic synthetic twin of SIFT Flow in the published layout (segcore.data.siftflow).

Each image is an outdoor scene of the eight SIFT Flow categories: sky on top (with sun, moon or
birds), vertical things standing on the horizon (buildings with windows and doors, trees,
mountains, poles, cars, cows) and horizontal ground below (road, sidewalk, grass, field, sea, sand,
desert). Every class has its own colour and texture, so the semantic head can learn it; the
geometric label follows from the class (sky / horizontal / vertical), as in the real annotation.

As in the real data: a few training images have no annotation at all (semantic 0, geometric -1
everywhere), thin unlabelled bands run along some outlines, and some classes (cow, desert, moon)
occur only in training images, so the test means must leave them out.
"""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from segcore.core import atomic
from segcore.data.siftflow import CLASSES, FOLDER, TEST_LIST, image_path, label_path
from segcore.data.twin_voc import encode_mat

_HEADER = b"MATLAB 5.0 MAT-file, Platform: posix, Created by: segcore synthetic SIFT Flow twin"
CLASS_ID = {name: i + 1 for i, name in enumerate(CLASSES)}  # 1-based, as the .mat files
SKY, HORIZONTAL, VERTICAL = 1, 2, 3
# class: (colour RGB, texture period in px or 0, geometric class)
LOOK = {
    "sky": ((120, 170, 235), 0, SKY), "sun": ((255, 230, 90), 0, SKY), "moon": ((225, 225, 210), 0, SKY),
    "bird": ((40, 30, 30), 0, VERTICAL), "mountain": ((110, 100, 120), 9, VERTICAL),
    "building": ((170, 120, 90), 0, VERTICAL), "window": ((60, 80, 110), 0, VERTICAL),
    "door": ((90, 50, 30), 0, VERTICAL), "tree": ((40, 110, 40), 4, VERTICAL),
    "pole": ((80, 80, 80), 0, VERTICAL), "car": ((200, 30, 40), 0, VERTICAL), "cow": ((240, 240, 240), 5, VERTICAL),
    "road": ((70, 70, 75), 0, HORIZONTAL), "sidewalk": ((160, 160, 150), 6, HORIZONTAL),
    "grass": ((90, 170, 60), 3, HORIZONTAL), "field": ((190, 170, 80), 7, HORIZONTAL),
    "sea": ((30, 80, 150), 5, HORIZONTAL), "sand": ((220, 200, 150), 4, HORIZONTAL),
    "desert": ((230, 160, 90), 11, HORIZONTAL),
}
# category: (ground classes near -> far, things on the horizon, things on the ground)
CATEGORIES = {
    "coast": (("sand", "sea"), ("mountain",), ()),
    "forest": (("grass",), ("tree", "tree"), ()),
    "highway": (("road", "grass"), ("pole", "tree"), ("car",)),
    "insidecity": (("road", "sidewalk"), ("building",), ("car",)),
    "mountain": (("grass",), ("mountain",), ()),
    "opencountry": (("field", "grass"), ("tree",), ("cow",)),
    "street": (("road", "sidewalk"), ("building", "pole"), ()),
    "tallbuilding": (("sidewalk",), ("building", "building"), ()),
}
TRAIN_ONLY = ("cow", "desert", "moon")  # absent from the twin's test split, as in the real one
_TAGS = ("natu", "arnat", "urb", "bost", "land", "par")


def _rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


class _Canvas:
    """Semantic class ids painted back to front; colours come from LOOK at the end."""

    def __init__(self, size: int) -> None:
        self.ids = np.zeros((size, size), np.int64)
        self.yy, self.xx = np.mgrid[0:size, 0:size]

    def paint(self, mask: np.ndarray, name: str) -> None:
        self.ids[mask] = CLASS_ID[name]


def _horizon_things(c: _Canvas, rng: np.random.Generator, things: tuple[str, ...], horizon: int) -> None:
    size = c.ids.shape[0]
    for name in things:
        x0 = int(rng.integers(0, size * 2 // 3))
        w = int(rng.integers(size // 6, size // 2))
        top = int(rng.integers(size // 10, max(size // 10 + 1, horizon - 4)))
        inside_x = (c.xx >= x0) & (c.xx < x0 + w)
        if name == "mountain":  # a triangle profile
            peak = x0 + w / 2
            c.paint((c.yy >= top + 2 * np.abs(c.xx - peak) * (horizon - top) / w) & (c.yy < horizon), name)
        elif name == "tree":  # trunk and round crown
            r = w / 3
            cx, cy = x0 + w / 2, top + r
            c.paint(((c.xx - cx) ** 2 + (c.yy - cy) ** 2 < r * r) | ((np.abs(c.xx - cx) < 2) & (c.yy > cy)
                                                                     & (c.yy < horizon)), name)
        elif name == "pole":
            c.paint((np.abs(c.xx - x0) < 2) & (c.yy >= top) & (c.yy < horizon), name)
        else:  # building with a window grid and a door
            c.paint(inside_x & (c.yy >= top) & (c.yy < horizon), "building")
            win = inside_x & (c.yy >= top + 3) & (c.yy < horizon - 8) & ((c.xx - x0) % 8 >= 3) & ((c.xx - x0) % 8 < 6) \
                & ((c.yy - top) % 9 >= 3) & ((c.yy - top) % 9 < 7)
            c.paint(win, "window")
            c.paint((np.abs(c.xx - (x0 + w // 2)) < 3) & (c.yy >= horizon - 8) & (c.yy < horizon), "door")


def render(seed: int, name: str, size: int, train: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image uint8 (size, size, 3), semantic S (0 void, 1..33) and geometric S (-1 void, 1..3)."""
    rng = _rng(seed, name)
    category = name.split("_")[0]
    ground, things, on_ground = CATEGORIES[category]
    if train and category in ("coast", "opencountry") and rng.random() < 0.4:
        ground = ("desert",)
    c = _Canvas(size)
    horizon = int(size * rng.uniform(0.4, 0.62))
    c.paint(c.yy < horizon, "sky")
    body = "moon" if train and rng.random() < 0.3 else ("sun" if rng.random() < 0.5 else None)
    if body:
        cx, cy, r = rng.uniform(0.1, 0.9) * size, rng.uniform(0.1, 0.3) * size, size / 14
        c.paint((c.xx - cx) ** 2 + (c.yy - cy) ** 2 < r * r, body)
    if rng.random() < 0.5:
        for _ in range(int(rng.integers(1, 4))):  # small birds
            bx, by = rng.integers(0, size - 4), rng.integers(2, max(3, horizon // 2))
            c.paint((np.abs(c.xx - bx - 2) <= 2) & (np.abs(c.yy - by) <= 1), "bird")
    _horizon_things(c, rng, things, horizon)
    bands = np.linspace(horizon, size, len(ground) + 1).astype(int)[::-1]  # near ground at the bottom
    for cls, lo, hi in zip(ground, bands[1:], bands[:-1]):
        c.paint((c.yy >= lo) & (c.yy < hi), cls)
    for thing in on_ground:
        if thing == "cow" and not train:
            continue
        x0, y0 = int(rng.integers(0, size - size // 5)), int(rng.integers(horizon + 2, size - size // 8))
        c.paint((c.xx >= x0) & (c.xx < x0 + size // 5) & (c.yy >= y0 - size // 8) & (c.yy < y0), thing)
    return _colour(c.ids, rng), c.ids, _geometric(c.ids)


def _colour(ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Class colours with their textures, lit a little differently per image, plus noise."""
    image = np.zeros((*ids.shape, 3))
    yy, xx = np.mgrid[0:ids.shape[0], 0:ids.shape[1]]
    for name, (rgb, period, _) in LOOK.items():
        mask = ids == CLASS_ID[name]
        if not mask.any():
            continue
        shade = 1.0
        if period:
            shade = 1 + 0.25 * np.sign(np.sin(2 * np.pi * (xx + 0.5 * yy) / period))[mask]
        image[mask] = np.clip(np.array(rgb) * rng.uniform(0.85, 1.15) * np.atleast_1d(shade)[:, None], 0, 255)
    image += rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _geometric(ids: np.ndarray) -> np.ndarray:
    geo = np.zeros(ids.shape, np.int64)
    for name, (_, _, g) in LOOK.items():
        geo[ids == CLASS_ID[name]] = g
    return geo


def _void_bands(semantic: np.ndarray, geo: np.ndarray, rng: np.random.Generator) -> None:
    """Leave some outlines unlabelled (semantic 0, geometric -1), as real annotators did."""
    edge = np.zeros(semantic.shape, bool)
    edge[:-1] |= semantic[:-1] != semantic[1:]
    edge[:, :-1] |= semantic[:, :-1] != semantic[:, 1:]
    edge &= rng.random(semantic.shape) < 0.5
    semantic[edge], geo[edge] = 0, -1


def plan_names(seed: int, n_train: int, n_test: int) -> tuple[list[str], list[str]]:
    """Image names like coast_natu975, categories cycling so every split sees all eight."""
    rng = np.random.default_rng(seed)
    cats = list(CATEGORIES)
    numbers = rng.choice(1000, size=n_train + n_test, replace=False)
    names = [f"{cats[i % len(cats)]}_{_TAGS[int(rng.integers(len(_TAGS)))]}{n}" for i, n in enumerate(numbers)]
    return sorted(names[:n_train]), sorted(names[n_train:])


def write_siftflow_twin(root: Path | str, *, seed: int, n_train: int, n_test: int, n_unannotated: int,
                        size: int) -> dict[str, int]:
    """SiftFlowDataset/ under ``root`` (replaced whole, built in a temp folder); returns counts."""
    if n_train < 8 or n_test < 8 or not 0 <= n_unannotated < n_train or size < 32:
        raise ValueError(f"SIFT Flow twin: n_train={n_train}, n_test={n_test} (each >= 8), n_unannotated="
                         f"{n_unannotated} (0 <= it < n_train), size={size} (>= 32) not allowed")
    train, test = plan_names(seed, n_train, n_test)
    empty = set(train[:: max(1, n_train // n_unannotated)][:n_unannotated]) if n_unannotated else set()

    def build(tmp: Path) -> None:
        top = tmp / "SiftFlowDataset"
        for name in train + test:
            image, semantic, geo = render(seed, name, size, train=name not in test)
            if name in empty:
                semantic[:], geo[:] = 0, -1
            else:
                _void_bands(semantic, geo, _rng(seed + 1, name))
            _write(image_path(top, name), _jpeg(image))
            for kind, s in (("semantic", semantic), ("geometric", geo)):
                names = np.array([[np.array([c]) for c in CLASSES]], dtype=object)
                _write(label_path(top, kind, name), encode_mat({"S": s.astype(np.int16), "names": names}, _HEADER))
        (top / TEST_LIST).write_text("".join(f"Images\\{FOLDER}\\{n}.jpg\n" for n in test))

    atomic.build_dir(Path(root), build)
    return {"train": n_train, "test": n_test, "unannotated": len(empty)}


def _jpeg(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=95, subsampling=0)
    return buf.getvalue()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
