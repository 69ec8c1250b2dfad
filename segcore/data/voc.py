"""Readers for PASCAL VOC 2011/2012 and SBD, real or synthetic twin (same layout on disk).

Layout under one `root` directory (as the published archives extract):

    root/VOCdevkit/VOC2012/{JPEGImages, SegmentationClass, ImageSets/Segmentation}
    root/TrainVal/VOCdevkit/VOC2011/...            (the 2011 tar has an extra top folder)
    root/Test/VOCdevkit/VOC2011/...                (optional: the VOC2011 test tar, placed by hand)
    root/benchmark_RELEASE/dataset/{img, cls, inst, train.txt, val.txt}     (SBD)

Labels are uint8 class indices 0..20 with 255 = void. Every reader raises `DataError`
with one line naming the file when something is missing, unreadable or out of range.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.io
import torch
from PIL import Image, UnidentifiedImageError
from scipy.io.matlab import MatReadError

from segcore.core.errors import UserError

CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)
NUM_CLASSES = len(CLASSES)  # 21
VOID = 255
SEG11VALID_SIZE = 736  # VOC2011 seg val minus SBD train, on the real data (FCN paper, sec. 4)


class DataError(UserError, ValueError):
    """A data file is missing, unreadable, corrupt or holds values outside the allowed set."""


# Test splits sent to the evaluation server, by year. The VOC2011 test tar comes from the server
# (login needed; no published checksum): its split is optional, read where it lies on disk.
TEST_YEARS = {"voc2011_test": "2011", "voc2012_test": "2012"}
# The VOC2011 test tar, as the evaluation server names it; placed by hand in the download folder.
VOC2011_TEST_TAR = "VOC2011test.tar"
# Where VOC2011's test.txt may lie, first found wins: as VOC2011test.tar extracts (top folder Test/),
# as other years' test tars extract (VOCdevkit/), or merged by hand into the trainval tree.
VOC2011_TEST_DIRS = ("Test/VOCdevkit/VOC2011", "VOCdevkit/VOC2011", "TrainVal/VOCdevkit/VOC2011")


def submission_folder(year: str) -> str:
    """Folder of the segmentation results inside an evaluation-server archive (comp6: any training data)."""
    return f"results/VOC{year}/Segmentation/comp6_test_cls"


def voc_dir(root: Path | str, year: str) -> Path:
    """Folder `VOC<year>` as the published tar extracts it (2011 has an extra `TrainVal/`)."""
    root = Path(root)
    if year == "2012":
        return root / "VOCdevkit" / "VOC2012"
    if year == "2011":
        return root / "TrainVal" / "VOCdevkit" / "VOC2011"
    raise ValueError(f"VOC year {year!r} not supported; allowed: '2011', '2012'")


def sbd_dir(root: Path | str) -> Path:
    """Folder holding SBD's `img/`, `cls/`, `train.txt`, `val.txt`."""
    return Path(root) / "benchmark_RELEASE" / "dataset"


def palette() -> list[int]:
    """The VOC colour map as 768 ints (R, G, B per index 0..255).

    Bits 0, 1, 2 of the index go to bit 7 of R, G, B; the next three bits to bit 6, and so on.
    This gives index 255 = (224, 224, 192), the void colour.
    """
    colours: list[int] = []
    for index in range(256):
        rgb = [0, 0, 0]
        c = index
        for bit in range(7, -1, -1):
            for channel in range(3):
                rgb[channel] |= ((c >> channel) & 1) << bit
            c >>= 3
        colours.extend(rgb)
    return colours


def check_label_values(label: np.ndarray, path: Path | str, n_classes: int = NUM_CLASSES) -> None:
    """Raise DataError naming `path` if `label` holds a value outside {0..n_classes - 1, 255}."""
    bad = (label >= n_classes) & (label != VOID)
    if bad.any():
        values = sorted(set(np.unique(label[bad]).tolist()))[:5]
        raise DataError(f"label {path} holds values {values} outside 0..{n_classes - 1} and {VOID}")


def read_image(path: Path | str) -> np.ndarray:
    """Read an image file as uint8 (H, W, 3) RGB."""
    try:
        with Image.open(path) as img:
            img.load()  # force decoding now so a truncated file fails here, not later
            return np.array(img.convert("RGB"), dtype=np.uint8)  # a writable copy
    except FileNotFoundError:
        raise DataError(f"image file missing: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise DataError(f"image file {path} is unreadable or corrupt: {err}") from None


def read_label_png(path: Path | str) -> np.ndarray:
    """Read a VOC label PNG (mode "P" or "L": pixel value = class index) as uint8 (H, W)."""
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode not in ("P", "L"):
                raise DataError(f"label {path} has mode {img.mode!r}; allowed: 'P', 'L' (class indices)")
            label = np.array(img, dtype=np.uint8)  # palette indices, not colours
    except FileNotFoundError:
        raise DataError(f"label file missing: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise DataError(f"label file {path} is unreadable or corrupt: {err}") from None
    check_label_values(label, path)
    return label


def read_sbd_label(path: Path | str) -> np.ndarray:
    """Read `GTcls.Segmentation` from an SBD `cls/<id>.mat` file as uint8 (H, W)."""
    if not Path(path).is_file():
        raise DataError(f"label file missing: {path}")
    try:
        mat = scipy.io.loadmat(path)
        label = np.asarray(mat["GTcls"][0]["Segmentation"][0])
    except (MatReadError, OSError, ValueError, TypeError, KeyError, IndexError) as err:
        raise DataError(f"SBD label {path} is unreadable or corrupt: {err!r}") from None
    if label.ndim != 2 or label.dtype != np.uint8:
        raise DataError(f"SBD label {path} is {label.dtype} {label.shape}; expected uint8 (H, W)")
    check_label_values(label, path)
    return label


def write_label_png(path: Path | str, label: np.ndarray, n_classes: int = NUM_CLASSES) -> None:
    """Write a uint8 (H, W) label as a VOC palette PNG, atomically (temp name + os.replace).

    ``n_classes``: labels above it (other than void) are refused; NYUD and SIFT Flow maps use more.
    """
    path = Path(path)
    data = encode_label_png(label, name=str(path), n_classes=n_classes)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def encode_label_png(label: np.ndarray, name: str = "<label>", n_classes: int = NUM_CLASSES) -> bytes:
    """Encode a uint8 (H, W) label as palette-PNG bytes (deterministic: no timestamps)."""
    if label.ndim != 2 or label.dtype != np.uint8:
        raise ValueError(f"label {name} must be uint8 (H, W), got {label.dtype} {label.shape}")
    check_label_values(label, name, n_classes)
    img = Image.fromarray(label)
    img.putpalette(palette())  # turns the "L" image into mode "P" with the VOC colours
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def read_ids(path: Path | str) -> list[str]:
    """Read a split list (one id per line); raise DataError if missing, empty or duplicated."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise DataError(f"split list missing: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"split list {path} is unreadable: {err}") from None
    ids = [line.strip() for line in text.splitlines() if line.strip()]
    if not ids:
        raise DataError(f"split list {path} is empty")
    if len(set(ids)) != len(ids):
        dup = next(i for n, i in enumerate(ids) if i in ids[:n])
        raise DataError(f"split list {path} lists id {dup!r} more than once")
    return ids


def seg11valid(voc2011_val: list[str], sbd_train: list[str]) -> list[str]:
    """VOC2011 seg val minus SBD train ids, in VOC order: the FCN paper's validation set."""
    train = set(sbd_train)
    return [i for i in voc2011_val if i not in train]


def check_seg11valid_count(ids: list[str], real: bool) -> None:
    """Raise DataError unless seg11valid has 736 ids (real data) or at least one (twin)."""
    if real and len(ids) != SEG11VALID_SIZE:
        raise DataError(f"seg11valid has {len(ids)} ids; the real data gives {SEG11VALID_SIZE}")
    if not ids:
        raise DataError("seg11valid is empty: every VOC2011 val id is in SBD train")


@dataclass(frozen=True)
class Sample:
    """One image and its label file; `label` is None where labels are withheld (VOC test)."""

    id: str
    image: Path
    label: Path | None
    label_kind: str  # "png" (VOC SegmentationClass) or "sbd" (cls/<id>.mat)


def _voc_samples(base: Path, ids: list[str]) -> list[Sample]:
    return [
        Sample(i, base / "JPEGImages" / f"{i}.jpg", base / "SegmentationClass" / f"{i}.png", "png")
        for i in ids
    ]


def _voc_split(root: Path, year: str, name: str) -> list[Sample]:
    base = voc_dir(root, year)
    return _voc_samples(base, read_ids(base / "ImageSets" / "Segmentation" / f"{name}.txt"))


def _sbd_split(root: Path, name: str) -> list[Sample]:
    base = sbd_dir(root)
    ids = read_ids(base / f"{name}.txt")
    return [Sample(i, base / "img" / f"{i}.jpg", base / "cls" / f"{i}.mat", "sbd") for i in ids]


def _seg11valid_split(root: Path) -> list[Sample]:
    val = read_ids(voc_dir(root, "2011") / "ImageSets" / "Segmentation" / "val.txt")
    ids = seg11valid(val, read_ids(sbd_dir(root) / "train.txt"))
    check_seg11valid_count(ids, real=False)
    return _voc_samples(voc_dir(root, "2011"), ids)


def _test_samples(base: Path) -> list[Sample]:
    """A test split under ``base``: every image must be there; labels all or none (twin: all, real: none)."""
    samples = _voc_samples(base, read_ids(base / "ImageSets" / "Segmentation" / "test.txt"))
    missing = next((s.image for s in samples if not s.image.is_file()), None)
    if missing is not None:
        raise DataError(f"test image missing: {missing} (listed in {base}/ImageSets/Segmentation/test.txt)")
    present = [s.label is not None and s.label.is_file() for s in samples]
    if not any(present):
        return [Sample(s.id, s.image, None, s.label_kind) for s in samples]
    if not all(present):
        missing = samples[present.index(False)].label
        raise DataError(f"test labels are only partly present: {missing} is missing")
    return samples


def voc2011_test_dir(root: Path | str) -> Path | None:
    """The folder holding VOC2011's test.txt (see VOC2011_TEST_DIRS), or None where it is absent."""
    found = (Path(root) / d for d in VOC2011_TEST_DIRS)
    return next((d for d in found if (d / "ImageSets" / "Segmentation" / "test.txt").is_file()), None)


def _voc2011_test_split(root: Path) -> list[Sample]:
    """Optional: empty where the VOC2011 test images are not on disk (they are not downloaded)."""
    base = voc2011_test_dir(root)
    return [] if base is None else _test_samples(base)


_SPLITS: dict[str, Callable[[Path], list[Sample]]] = {
    "sbd_train": lambda r: _sbd_split(r, "train"),
    "sbd_val": lambda r: _sbd_split(r, "val"),
    "seg11valid": _seg11valid_split,
    "voc2011_train": lambda r: _voc_split(r, "2011", "train"),
    "voc2011_val": lambda r: _voc_split(r, "2011", "val"),
    "voc2012_train": lambda r: _voc_split(r, "2012", "train"),
    "voc2012_val": lambda r: _voc_split(r, "2012", "val"),
    "voc2011_test": _voc2011_test_split,
    "voc2012_test": lambda r: _test_samples(voc_dir(r, "2012")),
}
SPLIT_NAMES = tuple(_SPLITS)


def split_samples(root: Path | str, split: str) -> list[Sample]:
    """List the samples of a named split (see SPLIT_NAMES) under `root`.

    Only an optional split (voc2011_test) may come back empty, meaning absent from disk.
    """
    if split not in _SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLIT_NAMES)}")
    return _SPLITS[split](Path(root))


def read_label(sample: Sample) -> np.ndarray | None:
    """Read a sample's label by its kind; None when the sample has no label file."""
    if sample.label is None:
        return None
    if sample.label_kind == "png":
        return read_label_png(sample.label)
    if sample.label_kind == "sbd":
        return read_sbd_label(sample.label)
    raise ValueError(f"label_kind {sample.label_kind!r} of {sample.id} not allowed; use 'png' or 'sbd'")


def read_sample(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """Image uint8 (H, W, 3) and label uint8 (H, W); a missing label reads as all void."""
    image = read_image(sample.image)
    label = read_label(sample)
    if label is None:
        return image, np.full(image.shape[:2], VOID, dtype=np.uint8)
    if label.shape != image.shape[:2]:
        raise DataError(
            f"label {sample.label} is {label.shape[0]}x{label.shape[1]} but image {sample.image} "
            f"is {image.shape[0]}x{image.shape[1]}"
        )
    return image, label


class SegmentationDataset(torch.utils.data.Dataset):
    """Whole images at native size: (image float32 (3, H, W), label int64 (H, W), id)."""

    def __init__(
        self,
        samples: list[Sample],
        transform: Callable[[np.ndarray], torch.Tensor] | None = None,
    ) -> None:
        self.samples = list(samples)
        self.transform = transform  # uint8 (H, W, 3) -> float (3, H, W); default: scale to [0, 1]

    @property
    def ids(self) -> list[str]:
        """The distinct images of the split (training records its size and overlap with validation)."""
        return [s.id for s in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        sample = self.samples[index]
        image, label = read_sample(sample)
        if self.transform is None:
            x = torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0)
        else:
            x = self.transform(image)
        if tuple(x.shape) != (3, *label.shape):
            h, w = label.shape
            raise ValueError(f"transform gave shape {tuple(x.shape)} for {sample.id}; expected (3, {h}, {w})")
        y = torch.from_numpy(label.astype(np.int64))  # (H, W)
        return x.to(torch.float32), y, sample.id
