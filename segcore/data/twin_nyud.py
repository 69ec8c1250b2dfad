"""Write a deterministic synthetic twin of NYU Depth v2 (labeled) in the published file formats.

Each frame is a ray-cast room seen by a pinhole camera at the NYU intrinsics (scaled with the
frame): floor, walls and ceiling, furniture boxes standing on the floor and flat objects on the
floor and walls. The camera sits 1.1-1.5 m above the floor, pitched down and turned a little, so
gravity is not the image's y axis. Depth is exact (the "filled" depth); the raw depth has holes
(windows give no return, plus random dropouts). RGB is each class's colour and texture shaded by
the surface's orientation and distance.

Some classes are told apart by geometry only: a floor mat and a picture share colour and texture
(one lies on the floor, one hangs on a wall), and so do a table and a counter (75 vs 95 cm high).
HHA's height and angle channels separate them; RGB alone cannot.

Files: nyu_depth_v2_labeled.mat (MATLAB v7.3 = HDF5 with MATLAB's userblock and reversed axes),
classMapping40.mat and splits.mat (MATLAB v5), as the real downloads.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from .nyud import CLASSES, FRAME, LABELED_MAT, MAPPING_MAT, NUM_RAW_CLASSES, SPLITS_MAT, geometry
from .twin_voc import encode_mat

_V5_HEADER = b"MATLAB 5.0 MAT-file, Platform: posix, Created by: segcore synthetic NYUD twin"
# MATLAB v7.3 files are HDF5 with a 512-byte userblock: 116 bytes of text, 8 bytes of subsystem
# offset, version 0x0200 and the endian indicator "IM".
_V73_HEADER = (b"MATLAB 7.3 MAT-file, Platform: posix, Created by: segcore synthetic NYUD twin "
               b"HDF5 schema 1.00 .").ljust(116) + bytes(8) + b"\x00\x02" + b"IM"

CLASS_ID = {name: i + 1 for i, name in enumerate(CLASSES)}  # 1-based, as mapClass

# name: (base colour RGB, texture period in cm or 0)
APPEARANCE = {
    "wall": ((200, 190, 170), 0), "floor": ((140, 100, 70), 40), "ceiling": ((235, 235, 230), 0),
    "bed": ((70, 90, 160), 25), "cabinet": ((150, 80, 40), 0), "chair": ((200, 60, 50), 10),
    "sofa": ((90, 140, 80), 30), "table": ((120, 70, 130), 15), "counter": ((120, 70, 130), 15),
    "picture": ((230, 200, 40), 8), "floor mat": ((230, 200, 40), 8), "window": ((150, 200, 230), 0),
    "door": ((110, 70, 50), 50), "box": ((190, 150, 90), 12),
}
# Furniture standing on the floor: (class, width, height, depth) in cm.
FURNITURE = (("bed", 160, 50, 200), ("cabinet", 80, 120, 45), ("chair", 45, 90, 45),
             ("sofa", 180, 80, 85), ("table", 120, 75, 80), ("counter", 150, 95, 60), ("box", 45, 35, 45))
# Flat things: on the floor (mat) or on the back wall (picture, window; door reaches the floor).
FLAT = (("floor mat", 140, 90), ("picture", 90, 70), ("window", 110, 100), ("door", 90, 205))


@dataclass(frozen=True)
class Box:
    """Axis-aligned box in world coordinates (cm; y points down, the floor is at y = floor_y)."""

    name: str
    lo: np.ndarray
    hi: np.ndarray


def _rotation(pitch: float, yaw: float) -> np.ndarray:
    """Camera -> world: pitch down about x, then yaw about the vertical."""
    cp, sp, cy, sy = np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw)
    pitch_m = np.array([[1, 0, 0], [0, cp, sp], [0, -sp, cp]])
    yaw_m = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    return yaw_m @ pitch_m


def _room(rng: np.random.Generator) -> tuple[float, list[Box]]:
    """Camera height and the boxes of one room (room shell included, as thick slabs)."""
    cam_h = rng.uniform(110, 150)  # floor at y = cam_h, camera at the origin
    height, depth, half_w = rng.uniform(240, 290), rng.uniform(380, 560), rng.uniform(200, 300)
    floor_y, ceil_y = cam_h, cam_h - height
    t = 50.0  # shell thickness
    boxes = [
        Box("floor", np.array([-half_w - t, floor_y, -t]), np.array([half_w + t, floor_y + t, depth + t])),
        Box("ceiling", np.array([-half_w - t, ceil_y - t, -t]), np.array([half_w + t, ceil_y, depth + t])),
        Box("wall", np.array([-half_w - t, ceil_y - t, depth]), np.array([half_w + t, floor_y + t, depth + t])),
        Box("wall", np.array([-half_w - t, ceil_y - t, -t]), np.array([-half_w, floor_y + t, depth + t])),
        Box("wall", np.array([half_w, ceil_y - t, -t]), np.array([half_w + t, floor_y + t, depth + t])),
    ]
    for name, w, h, d in (FURNITURE[i] for i in rng.choice(len(FURNITURE), size=3, replace=False)):
        x = rng.uniform(-half_w + w / 2, half_w - w / 2)
        z = rng.uniform(depth * 0.45, depth - d / 2 - 5)
        boxes.append(Box(name, np.array([x - w / 2, floor_y - h, z - d / 2]), np.array([x + w / 2, floor_y, z + d / 2])))
    for name, w, h in (FLAT[i] for i in rng.choice(len(FLAT), size=3, replace=False)):
        x = rng.uniform(-half_w + w / 2 + 10, half_w - w / 2 - 10)
        if name == "floor mat":  # 1 cm thick, on the floor in the near half of the room
            z = rng.uniform(120, depth * 0.5)
            boxes.append(Box(name, np.array([x - w / 2, floor_y - 1, z - h / 2]), np.array([x + w / 2, floor_y, z + h / 2])))
        else:  # 2 cm proud of the back wall
            bottom = floor_y if name == "door" else floor_y - rng.uniform(90, 130)
            boxes.append(Box(name, np.array([x - w / 2, bottom - h, depth - 2]), np.array([x + w / 2, bottom, depth])))
    return cam_h, boxes


def _cast(origin_dirs: np.ndarray, boxes: list[Box]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest hit of each ray (origin 0) against the boxes: distance t, box index, hit-face axis."""
    n = origin_dirs.shape[0]
    best_t, best_box, best_axis = np.full(n, np.inf), np.zeros(n, np.int64), np.zeros(n, np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / origin_dirs
    for k, box in enumerate(boxes):
        t1, t2 = box.lo * inv, box.hi * inv  # (n, 3) slab entry/exit distances
        near = np.nan_to_num(np.minimum(t1, t2), nan=-np.inf)
        far = np.nan_to_num(np.maximum(t1, t2), nan=np.inf)
        t_near, axis = near.max(1), near.argmax(1)
        t_far = far.min(1)
        # The camera is inside the room shell's slabs' gaps, never inside a box: entry t_near > 0.
        hit = (t_near <= t_far) & (t_near > 0) & (t_near < best_t)
        best_t[hit], best_box[hit], best_axis[hit] = t_near[hit], k, axis[hit]
    return best_t, best_box, best_axis


def render_frame(seed: int, index: int, frame: tuple[int, int]) -> dict[str, np.ndarray]:
    """One twin frame: rgb (H, W, 3) uint8, depth / raw (H, W) float32 metres, label (H, W) 40-class (1-based, 0 = unlabeled)."""
    rng = np.random.Generator(np.random.PCG64([seed, index]))
    geo = geometry(frame)
    cam = geo.camera
    h, w = frame
    cam_h, boxes = _room(rng)
    rot = _rotation(np.radians(rng.uniform(5, 18)), np.radians(rng.uniform(-20, 20)))
    u, v = np.meshgrid(np.arange(1, w + 1, dtype=np.float64), np.arange(1, h + 1, dtype=np.float64))
    rays_cam = np.stack([(u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, np.ones_like(u)], -1).reshape(-1, 3)
    t, box_index, axis = _cast(rays_cam @ rot.T, boxes)
    if not np.isfinite(t).all():
        raise RuntimeError(f"twin frame {index}: a ray left the room")  # a bug in _room, not bad input
    names = [boxes[k].name for k in box_index]
    label = np.array([CLASS_ID[n] for n in names], dtype=np.uint8).reshape(h, w)
    depth = (t / 100.0).reshape(h, w)  # rays have camera z = 1, so t is the depth Z in cm
    # Shading: the face's world normal against a light from above and behind the camera.
    normal_world = np.eye(3)[axis]
    light = np.array([0.3, -0.8, -0.5]) / np.linalg.norm([0.3, -0.8, -0.5])
    shade = (0.55 + 0.45 * np.abs(normal_world @ light)).reshape(h, w)
    points = (rays_cam * t[:, None]) @ rot.T  # world coordinates of the hits (cm)
    rgb = _colour(names, points, axis, shade, depth, rng)
    raw = depth.copy()
    raw[label == CLASS_ID["window"]] = 0.0  # glass returns no depth
    raw[_blobs(rng, frame, count=3, radius=0.06)] = 0.0  # dropouts
    label[_blobs(rng, frame, count=2, radius=0.04)] = 0  # unlabeled patches, as in the real labels
    return {"rgb": rgb, "depth": depth.astype(np.float32), "raw": raw.astype(np.float32), "label": label}


def _colour(names: list[str], points: np.ndarray, axis: np.ndarray, shade: np.ndarray, depth: np.ndarray,
            rng: np.random.Generator) -> np.ndarray:
    h, w = shade.shape
    base = np.array([APPEARANCE[n][0] for n in names], dtype=np.float64)
    period = np.array([APPEARANCE[n][1] for n in names], dtype=np.float64)
    # Stripes along the face's in-plane coordinate (the first axis that is not the normal).
    in_plane = points[np.arange(len(names)), (axis + 1) % 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        stripes = np.where(period > 0, 0.85 + 0.15 * np.sign(np.sin(2 * np.pi * in_plane / period)), 1.0)
    far = np.clip(1.15 - 0.06 * depth.ravel(), 0.6, 1.0)  # darker with distance
    rgb = base * (stripes * shade.ravel() * far)[:, None] + rng.normal(0, 4, size=base.shape)
    return np.clip(rgb, 0, 255).round().astype(np.uint8).reshape(h, w, 3)


def _blobs(rng: np.random.Generator, frame: tuple[int, int], count: int, radius: float) -> np.ndarray:
    h, w = frame
    yy, xx = np.mgrid[0:h, 0:w]
    mask = np.zeros(frame, bool)
    for _ in range(count):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.5, 1.0) * radius * h
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
    return ndimage.binary_opening(mask) if mask.any() else mask


def raw_ids(rng: np.random.Generator) -> np.ndarray:
    """Twin classMapping40: mapClass (894,) with values 1..40; raw ids 1..40 map to themselves so
    every class has at least one raw id."""
    map_class = rng.integers(1, len(CLASSES) + 1, size=NUM_RAW_CLASSES)
    map_class[: len(CLASSES)] = np.arange(1, len(CLASSES) + 1)  # every class has at least one raw id
    return map_class


def write_nyud_twin(root: Path | str, *, seed: int, n_train: int, n_test: int, scale: float) -> None:
    """The three NYUD files under ``root`` (built in a temp folder, then renamed into place)."""
    root = Path(root)
    frame = (int(round(FRAME[0] * scale)), int(round(FRAME[1] * scale)))
    geometry(frame)  # rejects a scale that gives no usable frame before any work
    rng = np.random.Generator(np.random.PCG64(seed))
    map_class = raw_ids(rng)
    # Raw labels: each 40-class pixel gets one of the raw ids mapping to it, chosen per frame.
    raw_of = {c: np.flatnonzero(map_class == c) + 1 for c in range(1, len(CLASSES) + 1)}
    n = n_train + n_test
    frames = [render_frame(seed, i, frame) for i in range(n)]
    labels = np.zeros((n, *frame), np.uint16)
    for i, f in enumerate(frames):
        for c in np.unique(f["label"]):
            if c:
                labels[i][f["label"] == c] = rng.choice(raw_of[int(c)])
    order = rng.permutation(n) + 1  # 1-based, interleaved like the real lists
    train, test = np.sort(order[:n_train]), np.sort(order[n_train:])
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".tmp", dir=root.parent))
    try:
        _write_labeled(tmp / LABELED_MAT, frames, labels)
        names = np.array([[np.array([name]) for name in CLASSES]], dtype=object)
        (tmp / MAPPING_MAT).write_bytes(encode_mat({"mapClass": map_class[None, :].astype(np.float64),
                                                    "className": names}, _V5_HEADER))
        (tmp / SPLITS_MAT).write_bytes(encode_mat({"trainNdxs": train[:, None].astype(np.float64),
                                                   "testNdxs": test[:, None].astype(np.float64)}, _V5_HEADER))
        tmp.chmod(0o755)
        if root.exists():
            shutil.rmtree(root)
        os.rename(tmp, root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def _write_labeled(path: Path, frames: list[dict], labels: np.ndarray) -> None:
    """nyu_depth_v2_labeled.mat as MATLAB v7.3 writes it: HDF5, 512-byte userblock, axes reversed."""
    import h5py

    arrays = {
        "images": (np.stack([f["rgb"] for f in frames]).transpose(0, 3, 2, 1), "uint8"),
        "depths": (np.stack([f["depth"] for f in frames]).transpose(0, 2, 1), "single"),
        "rawDepths": (np.stack([f["raw"] for f in frames]).transpose(0, 2, 1), "single"),
        "labels": (labels.transpose(0, 2, 1), "uint16"),
    }
    with h5py.File(path, "w", userblock_size=512, track_order=False) as f:
        for name, (data, matlab_class) in arrays.items():
            dataset = f.create_dataset(name, data=np.ascontiguousarray(data), track_times=False)
            dataset.attrs["MATLAB_class"] = np.bytes_(matlab_class)
    with open(path, "r+b") as fh:
        fh.write(_V73_HEADER)
