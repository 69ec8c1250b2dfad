"""Encode every prepared NYUD depth map as HHA, frames in parallel across processes."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np

from segcore.core.progress import track
from segcore.data import nyud
from segcore.data.hha import Camera, hha


def _encode_one(name: str, prepared: Path, out: Path, camera: Camera) -> str:
    from PIL import Image

    depth = np.load(prepared / "depth" / f"{name}.npy")
    raw = np.load(prepared / "raw_depth" / f"{name}.npy")
    missing = raw == 0  # Gupta et al.: raw-depth holes leave the plane fits
    if missing.all():
        # No raw return at all (a failed frame): no plane could be fitted, every angle would read
        # 180 degrees and gravity would be arbitrary. Fit the in-painted depth instead and say so.
        print(f"hha: {name} has no valid raw depth; its normals come from the in-painted depth")
        missing = None
    encoded = hha(depth, camera, missing=missing)
    tmp = out / f".{name}.png.tmp"
    Image.fromarray(encoded).save(tmp, format="PNG")
    os.replace(tmp, out / f"{name}.png")
    return name


def encode_all(prepared: Path | str, out: Path | str, workers: int | None = None, progress: bool = True) -> int:
    """HHA PNGs (disparity, height, angle) for every frame in ``prepared`` into ``out``; returns the count."""
    prepared, out = Path(prepared), Path(out)
    camera = nyud.read_geometry(prepared)
    names = sorted({n for split in ("trainval", "test") for n in nyud.split_names(prepared, split)})
    out.mkdir(parents=True, exist_ok=True)
    work = partial(_encode_one, prepared=prepared, out=out, camera=camera)
    workers = workers or os.cpu_count() or 1
    shown = partial(track, what="HHA", total=len(names), unit="frames", enabled=progress)
    if workers == 1 or len(names) < 8:
        return len(list(shown(map(work, names))))
    # One process per core; each frame is independent and numpy releases no GIL for long enough
    # to make threads worth it. chunksize keeps the inter-process traffic to a few messages.
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return len(list(shown(pool.map(work, names, chunksize=max(1, len(names) // (4 * workers))))))
