"""SIFT Flow (Liu et al.; FCN paper Table 5): the published layout, its label shifts and splits.

The zip unpacks to ``SiftFlowDataset/`` with, per image name (``coast_natu975``):
  Images/<FOLDER>/<name>.jpg           256 x 256 RGB
  SemanticLabels/<FOLDER>/<name>.mat   variable S: 0 = unlabelled, 1..33 = the classes below
  GeoLabels/<FOLDER>/<name>.mat        variable S: -1 = unlabelled, 1..3 = sky, horizontal, vertical
and TestSet1.txt naming the 200 test images. Both label sets shift to 0-based with void 255, the
convention of every other data set here. Two training images carry no annotation at all and are
dropped (2,488 -> 2,486 used); which ones is read from the labels, not from a list.

`prepare` writes the FCN form the training code reads: images/<name>.jpg (hard links),
labels/<name>.npy (uint8 (2, H, W): semantic, geometric) and splits/{trainval,train,val,test}.txt.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from segcore.core import atomic
from segcore.core.progress import track
from segcore.data import nyud
from segcore.data.voc import DataError, read_image

ROOT = "SiftFlowDataset"
FOLDER = "spatial_envelope_256x256_static_8outdoorcategories"
TEST_LIST = "TestSet1.txt"
CLASSES = ("awning", "balcony", "bird", "boat", "bridge", "building", "bus", "car", "cow", "crosswalk",
           "desert", "door", "fence", "field", "grass", "moon", "mountain", "person", "plant", "pole",
           "river", "road", "rock", "sand", "sea", "sidewalk", "sign", "sky", "staircase", "streetlight",
           "sun", "tree", "window")
GEO_CLASSES = ("sky", "horizontal", "vertical")
VOID = 255
N_TRAIN, N_TEST, N_UNANNOTATED = 2488, 200, 2  # the real data set (shared/spec/data.md)
_NAME = re.compile(r"[A-Za-z0-9_]+")


def image_path(root: Path, name: str) -> Path:
    return Path(root) / "Images" / FOLDER / f"{name}.jpg"


def label_path(root: Path, kind: str, name: str) -> Path:
    """kind: "semantic" or "geometric"."""
    folder = {"semantic": "SemanticLabels", "geometric": "GeoLabels"}[kind]
    return Path(root) / folder / FOLDER / f"{name}.mat"


def shift_semantic(s: np.ndarray) -> np.ndarray:
    """0 (unlabelled) -> 255, 1..33 -> 0..32; anything else is an error."""
    return _shift(s, low=0, n=len(CLASSES), what="semantic")


def shift_geometric(s: np.ndarray) -> np.ndarray:
    """-1 (unlabelled) -> 255, 1..3 -> 0..2; anything else is an error."""
    return _shift(s, low=-1, n=len(GEO_CLASSES), what="geometric")


def _shift(s: np.ndarray, *, low: int, n: int, what: str) -> np.ndarray:
    s = np.asarray(s)
    if s.ndim != 2:
        raise DataError(f"{what} label map must be 2-D, got shape {s.shape}")
    values = np.unique(s)
    bad = values[(values != low) & ((values < 1) | (values > n))]
    if bad.size:
        raise DataError(f"{what} labels must be {low} (void) or 1..{n}, found {bad[:5].tolist()}")
    return np.where(s == low, VOID, s.astype(np.int64) - 1).astype(np.uint8)


def read_label(root: Path, kind: str, name: str) -> np.ndarray:
    """One shifted label map (uint8, void 255) from its .mat file."""
    from scipy.io import loadmat

    path = label_path(root, kind, name)
    try:
        data = loadmat(path, variable_names=["S"])
    except (OSError, ValueError, TypeError) as err:
        raise DataError(f"cannot read {path}: {err}") from None
    if "S" not in data:
        raise DataError(f"{path} has no variable S (the label map)")
    shift = shift_semantic if kind == "semantic" else shift_geometric
    try:
        return shift(data["S"])
    except DataError as err:
        raise DataError(f"{path}: {err}") from None


def read_test_list(root: Path) -> list[str]:
    """Names in TestSet1.txt; a line may be a bare name or a path (either slash) to the .jpg."""
    path = Path(root) / TEST_LIST
    try:
        lines = path.read_text().split()
    except OSError as err:
        raise DataError(f"cannot read the test list {path}: {err}") from None
    names = [re.split(r"[\\/]", line)[-1].removesuffix(".jpg") for line in lines]
    bad = [n for n in names if not _NAME.fullmatch(n)]
    if bad:
        raise DataError(f"{path}: unexpected entries {bad[:3]}; expected image names like coast_natu975")
    return names


def list_images(root: Path) -> list[str]:
    """All image names of the data set, sorted."""
    folder = Path(root) / "Images" / FOLDER
    if not folder.is_dir():
        raise DataError(f"{folder} is missing: not a SIFT Flow data set ({ROOT}/Images/{FOLDER})")
    return sorted(p.stem for p in folder.glob("*.jpg"))


def split_names(root: Path, check_counts: bool = False) -> tuple[list[str], list[str], list[str]]:
    """(train, test, unannotated): train excludes the test list and the unannotated images.

    An image is unannotated when its semantic map is void everywhere. ``check_counts`` asserts
    the real data set's 2,488 / 200 / 2.
    """
    names, test = list_images(root), read_test_list(root)
    missing = sorted(set(test) - set(names))
    if missing:
        raise DataError(f"{TEST_LIST} names {len(missing)} image(s) not in Images/, e.g. {missing[0]}")
    test_set = set(test)
    train_all = [n for n in names if n not in test_set]
    empty = [n for n in train_all if (read_label(root, "semantic", n) == VOID).all()]
    if check_counts and (len(train_all), len(test), len(empty)) != (N_TRAIN, N_TEST, N_UNANNOTATED):
        raise DataError(f"SIFT Flow has {len(train_all)} train / {len(test)} test images and {len(empty)} "
                        f"unannotated; expected {N_TRAIN} / {N_TEST} / {N_UNANNOTATED}")
    unannotated = set(empty)
    return [n for n in train_all if n not in unannotated], sorted(test), empty


def prepare(src: Path, out: Path, *, val_fraction: float, seed: int, hold_out: bool = True,
            check_counts: bool = False, progress: bool = True) -> dict[str, int]:
    """The FCN form of the data set under ``out`` (see the module docstring); returns split sizes."""
    src, out = Path(src), Path(out)
    trainval, test, empty = split_names(src, check_counts)
    train, val = nyud.split_trainval(np.array(trainval), val_fraction, seed, hold_out)
    for folder in ("images", "labels", "splits"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    for name in track(trainval + test, "read SIFT Flow labels", unit="images", enabled=progress):
        sem, geo = read_label(src, "semantic", name), read_label(src, "geometric", name)
        if sem.shape != geo.shape:
            raise DataError(f"{name}: semantic {sem.shape} and geometric {geo.shape} labels differ in size")
        np.save(out / "labels" / f"{name}.npy", np.stack([sem, geo]))
        image = image_path(src, name)
        if not image.exists():
            raise DataError(f"image {image} is missing")
        atomic.link_or_copy(image, out / "images" / f"{name}.jpg")  # no second copy of 2,688 JPEGs
    splits = {"trainval": trainval, "train": list(train), "val": list(val), "test": test}
    for split, names in splits.items():
        (out / "splits" / f"{split}.txt").write_text("".join(f"{n}\n" for n in names))
    (out / "unannotated.txt").write_text("".join(f"{n}\n" for n in empty))
    return {k: len(v) for k, v in splits.items()}


def read_split(prepared: Path, split: str) -> list[str]:
    """Image names of ``split`` (one of SPLIT_FILES) in a prepared folder (the NYUD form)."""
    return nyud.split_names(prepared, split, "SIFT Flow")


class SiftFlowDataset(torch.utils.data.Dataset):
    """One split of a prepared folder: (image float32 (3, H, W), labels int64 (2, H, W), name).

    The two label planes are the semantic (0..32) and geometric (0..2) maps, void 255; the
    two-headed net predicts one per head (segcore.models.heads).
    """

    def __init__(self, prepared: Path | str, split: str, transform) -> None:
        self.prepared, self.transform = Path(prepared), transform
        self.names = read_split(self.prepared, split)

    @property
    def ids(self) -> list[str]:
        """The distinct images of the split (training records its size and overlap with validation)."""
        return list(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        name = self.names[index]
        x = self.transform(read_image(self.prepared / "images" / f"{name}.jpg"))
        path = self.prepared / "labels" / f"{name}.npy"
        try:
            labels = np.load(path)
        except (OSError, ValueError) as err:
            raise DataError(f"cannot read {path}: {err}") from None
        if labels.shape != (2, *x.shape[1:]):
            raise DataError(f"{path}: labels {labels.shape} do not fit image {tuple(x.shape[1:])}")
        return x.to(torch.float32), torch.from_numpy(labels.astype(np.int64)), name
