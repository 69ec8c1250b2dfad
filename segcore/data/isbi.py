"""ISBI 2012 EM segmentation data: the three published TIFF stacks, or the HDF5 mirror.

Published layout (registration needed, so usually placed by hand) in one folder:
    train-volume.tif   30 pages, 512 x 512, 8-bit grey
    train-labels.tif   30 pages, 255 = cell interior, 0 = membrane
    test-volume.tif    30 pages (its labels are secret)
Mirror: one HDF5 file (saved here as isbi.h5) with datasets `raw`, `labels/membranes` and
`labels/gt_segmentation`, training slices only.

`labels/membranes` are the challenge's original annotations (torch-em reads them as
"use_original_labels"); this project could not open the file to see which value marks a
membrane. Assumption, checked on reading: a two-valued mask, values {0, 255} or {0, 1}, in which
the cell value is the one covering most pixels of the stack (cells fill about three quarters of
an ISBI slice, membranes the thin rest). The original 0/255 encoding then passes unchanged; an
inverted 0/1 mask (1 = membrane) is converted. Anything else raises ValueError.

No test labels exist, so evaluation uses held-out training slices (`holdout_split`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence

from segcore.core import atomic
from segcore.data.voc import DataError

TRAIN_VOLUME = "train-volume.tif"
TRAIN_LABELS = "train-labels.tif"
TEST_VOLUME = "test-volume.tif"
MIRROR_H5 = "isbi.h5"
MIRROR_URL = "https://oc.embl.de/index.php/s/h0TkwqxU0PJDdMd/download"
MIRROR_SHA256 = "0e10fe909a1243084d91773470856993b7d40126a12e85f0f1345a7a9e512f29"
CELL, MEMBRANE = 255, 0
SPLITS = ("train", "heldout")  # the prepared folder's splits/<split>.txt (no test labels exist)


@dataclass(frozen=True)
class IsbiData:
    """Training stack, its labels and (if present) the test stack, all uint8 (S, H, W)."""

    train_volume: np.ndarray
    train_labels: np.ndarray  # 255 = cell interior, 0 = membrane
    test_volume: np.ndarray | None
    source: str  # "tiff" or "h5"


def read_tiff_stack(path: Path | str) -> np.ndarray:
    """Every page of a multi-page 8-bit TIFF as (S, H, W) uint8 (bilevel pages become 0 / 255)."""
    pages = []
    with Image.open(path) as image:
        for page in ImageSequence.Iterator(image):
            if page.mode not in ("L", "1"):
                raise DataError(f"{path}: page {len(pages)} has mode {page.mode!r}; "
                                 "expected 8-bit grey ('L') or bilevel ('1')")
            pages.append(np.array(page.convert("L")))
    if len({p.shape for p in pages}) > 1:
        raise DataError(f"{path}: pages differ in size: {sorted({p.shape for p in pages})}")
    return np.stack(pages)


def write_tiff_stack(path: Path | str, stack: np.ndarray) -> None:
    """Write (S, H, W) uint8 as an uncompressed multi-page TIFF: temp name, then rename."""
    stack = np.asarray(stack)
    if stack.ndim != 3 or stack.dtype != np.uint8 or len(stack) == 0:
        raise DataError(f"expected a non-empty (S, H, W) uint8 stack, got {stack.dtype} {stack.shape}")
    pages = [Image.fromarray(page) for page in stack]
    buf = io.BytesIO()
    pages[0].save(buf, format="TIFF", save_all=True, append_images=pages[1:])
    atomic.write_bytes(path, buf.getvalue())


def check_labels(labels: np.ndarray, volume: np.ndarray, what: str) -> None:
    """Labels must match the volume's (S, H, W) and hold only 0 (membrane) and 255 (cell)."""
    if labels.shape != volume.shape:
        raise DataError(f"{what}: labels have shape {labels.shape} (pages, H, W) but the volume "
                         f"has {volume.shape}")
    values = np.unique(labels)
    if not set(values.tolist()) <= {MEMBRANE, CELL}:
        raise DataError(f"{what}: labels must be 0 (membrane) or 255 (cell), found {values[:8].tolist()}")


def membranes_to_labels(mask: np.ndarray) -> np.ndarray:
    """The mirror's two-valued membrane mask -> uint8 labels, 255 = cell, 0 = membrane.

    The cell value is the majority value of the whole stack (see the module docstring).
    """
    values = np.unique(mask)
    if len(values) != 2 or not (set(values.tolist()) <= {0, 1} or set(values.tolist()) <= {0, 255}):
        raise DataError(f"labels/membranes must be a two-valued mask, {{0, 255}} or {{0, 1}}, "
                         f"found values {values[:8].tolist()}")
    cell_value = values[1] if np.mean(mask == values[1]) >= 0.5 else values[0]
    return np.where(mask == cell_value, CELL, MEMBRANE).astype(np.uint8)


def read_h5_mirror(path: Path | str) -> IsbiData:
    """Training stack and labels from the HDF5 mirror (no test stack in it)."""
    import h5py  # only the mirror needs it

    with h5py.File(path, "r") as f:
        missing = [k for k in ("raw", "labels/membranes") if k not in f]
        if missing:
            raise DataError(f"{path}: missing dataset(s) {missing}; expected raw, labels/membranes")
        raw, membranes = f["raw"][()], f["labels/membranes"][()]
    if raw.ndim != 3 or raw.dtype != np.uint8:
        raise DataError(f"{path}: raw must be (S, H, W) uint8, got {raw.dtype} {raw.shape}")
    labels = membranes_to_labels(membranes)
    check_labels(labels, raw, str(path))
    return IsbiData(raw, labels, None, "h5")


def read_tiffs(root: Path) -> IsbiData:
    """The three published TIFFs under `root` (test-volume.tif optional)."""
    volume, labels = read_tiff_stack(root / TRAIN_VOLUME), read_tiff_stack(root / TRAIN_LABELS)
    if len(volume) != len(labels):
        raise DataError(f"{root}: {TRAIN_VOLUME} has {len(volume)} pages but {TRAIN_LABELS} has "
                         f"{len(labels)}")
    check_labels(labels, volume, str(root / TRAIN_LABELS))
    test = read_tiff_stack(root / TEST_VOLUME) if (root / TEST_VOLUME).exists() else None
    if test is not None and test.shape[1:] != volume.shape[1:]:
        raise DataError(f"{root}: {TEST_VOLUME} pages are {test.shape[1:]}, training pages "
                         f"{volume.shape[1:]}")
    return IsbiData(volume, labels, test, "tiff")


def load_isbi(root: Path | str) -> IsbiData:
    """ISBI data from `root`: the TIFFs if both training stacks are there, else the mirror
    `isbi.h5` (or `root` itself if it is an .h5 file)."""
    root = Path(root)
    if root.suffix == ".h5" and root.is_file():
        return read_h5_mirror(root)
    if (root / TRAIN_VOLUME).exists() and (root / TRAIN_LABELS).exists():
        return read_tiffs(root)
    if (root / MIRROR_H5).exists():
        return read_h5_mirror(root / MIRROR_H5)
    raise DataError(
        f"no ISBI 2012 data in {root}: place {TRAIN_VOLUME} and {TRAIN_LABELS} (and optionally "
        f"{TEST_VOLUME}) there, or the HDF5 mirror as {MIRROR_H5} ({MIRROR_URL}, sha256 {MIRROR_SHA256})")


def holdout_split(n_slices: int, n_eval: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, eval) slice indices: the last `n_eval` slices are held out for evaluation.

    The last ones, not a random draw, so neighbouring (correlated) serial sections stay on one
    side of the split except at the one cut.
    """
    if isinstance(n_eval, bool) or not isinstance(n_eval, int) or not 1 <= n_eval < n_slices:
        raise ValueError(f"n_eval must be an int in [1, {n_slices - 1}] for {n_slices} slices, "
                         f"got {n_eval!r}")
    return np.arange(n_slices - n_eval), np.arange(n_slices - n_eval, n_slices)


def read_prepared(root: Path | str, split: str) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(volume (S, H, W) uint8, labels (S, H, W) uint8, slice indices of ``split``) of a prepared folder.

    The folder holds volume.npy, labels.npy and splits/<split>.txt, as the prepare_isbi stage writes them.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown ISBI split {split!r}; allowed: {', '.join(SPLITS)}")
    root = Path(root)
    try:
        volume, labels = np.load(root / "volume.npy"), np.load(root / "labels.npy")
        indices = [int(v) for v in (root / "splits" / f"{split}.txt").read_text().split()]
    except (OSError, ValueError) as err:
        raise DataError(f"{root} is not a prepared ISBI folder (run prepare_isbi): {err}") from None
    return volume, labels, indices
