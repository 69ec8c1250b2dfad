"""NYU Depth v2 (labeled subset) as FCN's Table 4 uses it: readers for the published files and the
preparation into the FCN / Gupta et al. form.

Published files (shared/spec/data.md):
- ``nyu_depth_v2_labeled.mat``: MATLAB v7.3 (HDF5, read with h5py; axes reversed w.r.t. MATLAB):
  images (N, 3, W, H) uint8, depths (N, W, H) float32 metres (in-painted), rawDepths (same, 0 =
  missing), labels (N, W, H) uint16 (0 = unlabeled, 1..894 raw classes);
- ``classMapping40.mat`` (MATLAB v5): mapClass (1, 894) with values 1..40;
- ``splits.mat`` (MATLAB v5): trainNdxs (795) and testNdxs (654), 1-based.

FCN / Gupta form: every frame cropped to rows 45..469 and columns 40..599 (425 x 560), named
img_5001 ... (1-based index + 5000), labels 1..40 -> 0..39 and 0 -> void 255. The synthetic twin
writes the same files at a smaller frame size; every geometric constant (crop, camera) scales with
the frame, which is read from the data, never configured twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segcore.core.progress import track
from segcore.data.voc import DataError
from segcore.data.hha import NYU_CAMERA, Camera

CLASSES: tuple[str, ...] = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
    "picture", "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror",
    "floor mat", "clothes", "ceiling", "books", "refridgerator", "television", "paper", "towel",
    "shower curtain", "box", "whiteboard", "person", "night stand", "toilet", "sink", "lamp",
    "bathtub", "bag", "otherstructure", "otherfurniture", "otherprop",
)  # fmt: skip
NUM_CLASSES = len(CLASSES)  # 40
NUM_RAW_CLASSES = 894
VOID = 255
FRAME = (480, 640)  # the Kinect frame of the real data (rows, cols)
CROP_ROWS = (45, 470)  # 0-based, end exclusive: 425 rows
CROP_COLS = (40, 600)  # 560 columns
NAME_OFFSET = 5000     # img_5001 is frame 1
LABELED_DATASETS = ("images", "depths", "rawDepths", "labels")

LABELED_MAT = "nyu_depth_v2_labeled.mat"
MAPPING_MAT = "classMapping40.mat"
SPLITS_MAT = "splits.mat"


@dataclass(frozen=True)
class Geometry:
    """Frame size, crop box and cameras of one data set (the real one, or a scaled twin)."""

    frame: tuple[int, int]
    rows: tuple[int, int]
    cols: tuple[int, int]
    camera: Camera  # full frame, 1-based pixel coordinates

    @property
    def crop_camera(self) -> Camera:
        """The camera of the cropped frame: the principal point moves with the crop's corner."""
        c = self.camera
        return Camera(c.fx, c.fy, c.cx - self.cols[0], c.cy - self.rows[0])


def geometry(frame: tuple[int, int]) -> Geometry:
    """Geometry of a frame of ``frame`` = (rows, cols): the real 480 x 640, or a uniform scaling of it."""
    h, w = frame
    scale = h / FRAME[0]
    if abs(w - FRAME[1] * scale) > 0.5 or h < 32:
        raise DataError(f"NYUD frames must be 480 x 640 or a uniform scaling of it (>= 32 rows), got {h} x {w}")
    if (h, w) == FRAME:
        return Geometry(FRAME, CROP_ROWS, CROP_COLS, NYU_CAMERA)

    def span(bounds: tuple[int, int]) -> tuple[int, int]:
        start = int(round(bounds[0] * scale))
        return start, start + int(round((bounds[1] - bounds[0]) * scale))

    c = NYU_CAMERA
    # Pixel centres sit at 1-based x; scaling the continuous image plane maps x -> s (x - 0.5) + 0.5.
    camera = Camera(c.fx * scale, c.fy * scale, scale * (c.cx - 0.5) + 0.5, scale * (c.cy - 0.5) + 0.5)
    return Geometry((h, w), span(CROP_ROWS), span(CROP_COLS), camera)


def image_name(index: int) -> str:
    """Name of the 1-based frame ``index`` in the FCN / Gupta form."""
    return f"img_{index + NAME_OFFSET}"


class Labeled:
    """Lazy reader of ``nyu_depth_v2_labeled.mat`` (2.97 GB on real data): one frame at a time."""

    def __init__(self, path: Path | str) -> None:
        import h5py

        self.path = Path(path)
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as err:
            raise DataError(f"cannot read {self.path} as a MATLAB v7.3 (HDF5) file: {err}") from None
        missing = [d for d in LABELED_DATASETS if d not in self._file]
        if missing:
            raise DataError(f"{self.path} lacks dataset(s) {missing}; expected {list(LABELED_DATASETS)}")
        images = self._file["images"]
        if images.ndim != 4 or images.shape[1] != 3:
            raise DataError(f"{self.path}: images has shape {images.shape}, expected (N, 3, W, H)")
        n, _, w, h = images.shape
        for name in LABELED_DATASETS[1:]:
            if self._file[name].shape != (n, w, h):
                raise DataError(f"{self.path}: {name} has shape {self._file[name].shape}, expected {(n, w, h)}")
        self.count, self.frame = n, (h, w)

    def __len__(self) -> int:
        return self.count

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Frame ``index`` (0-based): RGB (H, W, 3) uint8, depth and raw depth (H, W) float32 m, raw labels (H, W)."""
        f = self._file
        rgb = np.asarray(f["images"][index]).transpose(2, 1, 0)
        depth, raw, label = (np.asarray(f[name][index]).T for name in LABELED_DATASETS[1:])
        return np.ascontiguousarray(rgb), depth.astype(np.float32), raw.astype(np.float32), label

    def close(self) -> None:
        self._file.close()


def _loadmat(path: Path, keys: tuple[str, ...]) -> dict:
    import scipy.io

    try:
        data = scipy.io.loadmat(path)
    except (OSError, ValueError, NotImplementedError) as err:
        raise DataError(f"cannot read {path} as a MATLAB .mat file: {err}") from None
    missing = [k for k in keys if k not in data]
    if missing:
        raise DataError(f"{path} lacks variable(s) {missing}")
    return data


def read_mapping(path: Path | str) -> np.ndarray:
    """Lookup table raw label (0..894) -> training label (0..39, void 255), from classMapping40.mat."""
    path = Path(path)
    map_class = np.asarray(_loadmat(path, ("mapClass",))["mapClass"]).ravel()
    if map_class.size != NUM_RAW_CLASSES or map_class.min() < 1 or map_class.max() > NUM_CLASSES:
        raise DataError(f"{path}: mapClass must hold {NUM_RAW_CLASSES} values in 1..{NUM_CLASSES}, "
                        f"got {map_class.size} in {map_class.min()}..{map_class.max()}")
    return np.concatenate([[VOID], map_class.astype(np.int64) - 1]).astype(np.uint8)


def read_splits(path: Path | str, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) 1-based frame indices from splits.mat; checked to be disjoint and within 1..count."""
    path = Path(path)
    data = _loadmat(path, ("trainNdxs", "testNdxs"))
    train, test = (np.asarray(data[k]).ravel().astype(np.int64) for k in ("trainNdxs", "testNdxs"))
    for name, ids in (("trainNdxs", train), ("testNdxs", test)):
        if ids.size == 0 or ids.min() < 1 or ids.max() > count:
            raise DataError(f"{path}: {name} must hold 1-based indices in 1..{count}")
    if np.intersect1d(train, test).size:
        raise DataError(f"{path}: trainNdxs and testNdxs overlap")
    return train, test


# ---------------------------------------------------------------- the FCN / Gupta form

SPLIT_FILES = ("trainval", "train", "val", "test")


def split_trainval(trainval: np.ndarray, val_fraction: float, seed: int,
                   hold_out: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) from the training frames: a seeded ``val_fraction`` of them draws the validation curves.

    ``hold_out``: val is left out of train (our deviation, so the curves show generalisation), or
    train keeps every frame as the papers did, and val is then a fixed subset of it.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    n_val = max(1, int(round(len(trainval) * val_fraction)))
    val = np.sort(rng.choice(trainval, size=n_val, replace=False))
    return (np.setdiff1d(trainval, val) if hold_out else np.sort(trainval)), val


def prepare(src: Path | str, out: Path | str, *, val_fraction: float, seed: int,
            hold_out: bool = True, progress: bool = True) -> dict[str, int]:
    """Crop, relabel and name every frame of ``src`` (the three .mat files) into ``out``.

    Writes images/<name>.png (RGB), depth/<name>.npy and raw_depth/<name>.npy (float32 metres,
    0 = missing in the raw one), labels/<name>.png (0..39, void 255), splits/<split>.txt and
    geometry.json (frame, crop, crop camera). Returns the size of each split.
    """
    import json

    from PIL import Image

    src, out = Path(src), Path(out)
    labeled = Labeled(src / LABELED_MAT)
    try:
        lut = read_mapping(src / MAPPING_MAT)
        trainval, test = read_splits(src / SPLITS_MAT, len(labeled))
        train, val = split_trainval(trainval, val_fraction, seed, hold_out)
        geo = geometry(labeled.frame)
        (r0, r1), (c0, c1) = geo.rows, geo.cols
        for folder in ("images", "depth", "raw_depth", "labels", "splits"):
            (out / folder).mkdir(parents=True, exist_ok=True)
        # h5py reads one frame at a time from the 2.9 GB file: the stage's long phase on the real data.
        for index in track(np.union1d(trainval, test), f"read {LABELED_MAT}", unit="frames", enabled=progress):
            rgb, depth, raw, label = (a[r0:r1, c0:c1] for a in labeled.read(int(index) - 1))
            if label.max() > NUM_RAW_CLASSES:
                raise DataError(f"{src / LABELED_MAT}: frame {index} has raw label {label.max()} > {NUM_RAW_CLASSES}")
            if not np.isfinite(depth).all() or (depth <= 0).any():
                raise DataError(f"{src / LABELED_MAT}: frame {index} has NaN or non-positive filled depth")
            name = image_name(int(index))
            Image.fromarray(rgb).save(out / "images" / f"{name}.png")
            np.save(out / "depth" / f"{name}.npy", np.ascontiguousarray(depth))
            np.save(out / "raw_depth" / f"{name}.npy", np.ascontiguousarray(raw))
            Image.fromarray(lut[label]).save(out / "labels" / f"{name}.png")
    finally:
        labeled.close()
    splits = {"trainval": trainval, "train": train, "val": val, "test": test}
    for split, ids in splits.items():
        (out / "splits" / f"{split}.txt").write_text("".join(f"{image_name(int(i))}\n" for i in ids))
    cam = geo.crop_camera
    (out / "geometry.json").write_text(json.dumps(
        {"frame": geo.frame, "crop_rows": geo.rows, "crop_cols": geo.cols,
         "crop_camera": {"fx": cam.fx, "fy": cam.fy, "cx": cam.cx, "cy": cam.cy}}, indent=2) + "\n")
    return {k: len(v) for k, v in splits.items()}


def read_geometry(prepared: Path | str) -> Camera:
    """The crop camera recorded by `prepare`."""
    import json

    path = Path(prepared) / "geometry.json"
    try:
        return Camera(**json.loads(path.read_text())["crop_camera"])
    except (OSError, KeyError, TypeError, ValueError) as err:
        raise DataError(f"cannot read the crop camera from {path}: {err}") from None


def split_names(prepared: Path | str, split: str, dataset: str = "NYUD") -> list[str]:
    """Names of ``split`` (one of SPLIT_FILES) in a prepared folder, splits/<split>.txt (NYUD, SIFT Flow)."""
    if split not in SPLIT_FILES:
        raise DataError(f"unknown {dataset} split {split!r}; allowed: {', '.join(SPLIT_FILES)}")
    path = Path(prepared) / "splits" / f"{split}.txt"
    try:
        return path.read_text().split()
    except OSError as err:
        raise DataError(f"cannot read {path}: {err}") from None
