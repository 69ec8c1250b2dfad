"""Write a deterministic synthetic twin of PASCAL VOC 2011/2012 + SBD in the real on-disk layout.

The split structure mirrors the real data: SBD train holds about a third of VOC2011 val (so
seg11valid = VOC2011 val minus SBD train is a real, smaller set) and half of VOC2011 train;
VOC2012 train/val extend VOC2011's; SBD val overlaps VOC2011 val too; VOC2012 has a test split
whose labels (unlike the real one) exist, and VOC2011's test split is three quarters of it (real:
1,111 of 1,456; each year's test set holds the earlier ones), written where VOC2011test.tar
extracts (Test/VOCdevkit/VOC2011), labels included. An image depends only on (seed, id), so an id listed
in several data sets has byte-identical files in each. Files are byte-identical across runs.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import zlib
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse
from PIL import Image
from scipy import ndimage

from .voc import NUM_CLASSES, VOC2011_TEST_DIRS, VOID, encode_label_png, sbd_dir, voc_dir
from .voc_appearance import render_object_image, render_scene, void_band

__all__ = ["write_voc_twin", "plan_splits", "render_id", "render_object_image", "encode_cls_mat"]

JPEG_QUALITY = 95
# savemat stamps the creation time into the 116-byte text header; a fixed text keeps files byte-identical.
_MAT_HEADER = b"MATLAB 5.0 MAT-file, Platform: posix, Created by: segcore synthetic VOC twin".ljust(116)


def plan_splits(rng: np.random.Generator, *, n_sbd_train: int, n_voc_train: int, n_voc_val: int,
                n_test: int) -> dict[str, list[str]]:
    """Id lists (sorted, like the real lists) of every twin split, with real-like overlaps."""
    total = 2 * (n_sbd_train + n_voc_train + n_voc_val) + n_test
    numbers = rng.choice(10 * total + 1000, size=total, replace=False) + 1
    years = rng.integers(2007, 2012, size=total)  # VOC ids look like 2008_000123
    pool = iter(f"{y}_{n:06d}" for y, n in zip(years, numbers))

    def take(n: int) -> list[str]:
        return [next(pool) for _ in range(n)]

    voc11_train, voc11_val = take(n_voc_train), take(n_voc_val)
    # A third of VOC2011 val goes into SBD train (at least one, never all), as on the real data.
    k_val = min(max(1, n_voc_val // 3), n_voc_val - 1, n_sbd_train)
    k_train = min(n_voc_train // 2, n_sbd_train - k_val)
    sbd_train = voc11_val[:k_val] + voc11_train[:k_train] + take(n_sbd_train - k_val - k_train)
    n_sbd_val = max(1, n_sbd_train // 4)
    val_rest = voc11_val[k_val:k_val + min(n_voc_val // 3, n_sbd_val)]
    sbd_val = val_rest + take(n_sbd_val - len(val_rest))
    splits = {
        "voc2011_train": voc11_train,
        "voc2011_val": voc11_val,
        "voc2012_train": voc11_train + take(n_voc_train // 3),
        "voc2012_val": voc11_val + take(n_voc_val // 3),
        "voc2012_test": take(n_test),
        "sbd_train": sbd_train,
        "sbd_val": sbd_val,
    }
    # No new draws, so the other splits keep their ids; real VOC2011 test is 1,111 of VOC2012's 1,456.
    splits["voc2011_test"] = splits["voc2012_test"][:max(1, 3 * n_test // 4)]
    return {name: sorted(ids) for name, ids in splits.items()}


def _id_rng(seed: int, image_id: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(image_id.encode())])


def render_id(seed: int, image_id: str, min_size: int, max_size: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The twin's image uint8 (H, W, 3), class label and instance map uint8 (H, W) for one id."""
    rng = _id_rng(seed, image_id)
    h, w = (int(v) for v in rng.integers(min_size, max_size + 1, size=2))  # H, W independent
    return render_scene(h, w, rng)


def _encode_jpeg(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    # 4:4:4 chroma keeps the hue of 2-4 px thin parts; 4:2:0 would smear it into the background.
    Image.fromarray(image).save(buf, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    return buf.getvalue()


def _boundary(mask: np.ndarray) -> scipy.sparse.csc_matrix:
    """Inner outline of a mask as a sparse logical matrix, as SBD stores boundaries."""
    return scipy.sparse.csc_matrix(mask & ~ndimage.binary_erosion(mask))


def encode_mat(mdict: dict, header: bytes = _MAT_HEADER) -> bytes:
    """MATLAB v5 .mat bytes with a fixed 116-byte text header (byte-identical across runs)."""
    buf = io.BytesIO()
    scipy.io.savemat(buf, mdict, do_compression=False)
    data = bytearray(buf.getvalue())
    data[:116] = header.ljust(116)[:116]
    return bytes(data)


def _cell(items: list) -> np.ndarray:
    cell = np.empty((len(items), 1), dtype=object)  # MATLAB cell column
    for i, item in enumerate(items):
        cell[i, 0] = item
    return cell


def encode_cls_mat(label: np.ndarray) -> bytes:
    """SBD `cls/<id>.mat` bytes: struct GTcls with Segmentation, Boundaries (20x1 cell), CategoriesPresent."""
    present = [c for c in range(1, NUM_CLASSES) if (label == c).any()]
    gt = {
        "Segmentation": label,
        "Boundaries": _cell([_boundary(label == c) for c in range(1, NUM_CLASSES)]),
        "CategoriesPresent": np.array(present, dtype=np.uint8).reshape(-1, 1),
    }
    return encode_mat({"GTcls": gt})


def encode_inst_mat(inst: np.ndarray, label: np.ndarray) -> bytes:
    """SBD `inst/<id>.mat` bytes: struct GTinst with Segmentation (1..n), Boundaries, Categories."""
    visible = [int(k) for k in np.unique(inst) if k > 0]
    renumbered = np.zeros_like(inst)
    for new, k in enumerate(visible, start=1):
        renumbered[inst == k] = new  # occluded instances vanish, so renumber 1..n
    categories = [int(label[inst == k][0]) for k in visible]
    gt = {
        "Segmentation": renumbered,
        "Boundaries": _cell([_boundary(inst == k) for k in visible]),
        "Categories": np.array(categories, dtype=np.uint8).reshape(-1, 1),
    }
    return encode_mat({"GTinst": gt})


def _write_list(path: Path, ids: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{i}\n" for i in ids))


def _write_tree(tmp: Path, splits: dict[str, list[str]], files: dict[str, dict[str, bytes]]) -> None:
    """Write lists and per-id files under `tmp` (which plays the role of root)."""

    def trainval(year: str, *extra: str) -> dict[str, list[str]]:
        lists = {n: splits[f"voc{year}_{n}"] for n in ("train", "val", *extra)}
        return {**lists, "trainval": sorted(lists["train"] + lists["val"])}

    trees = {voc_dir(tmp, "2011"): trainval("2011"), voc_dir(tmp, "2012"): trainval("2012", "test"),
             tmp / VOC2011_TEST_DIRS[0]: {"test": splits["voc2011_test"]}}  # the VOC2011 test tar's tree
    for base, lists in trees.items():
        for name, ids in lists.items():
            _write_list(base / "ImageSets" / "Segmentation" / f"{name}.txt", ids)
        for sub in ("JPEGImages", "SegmentationClass"):
            (base / sub).mkdir(parents=True)
        for i in sorted({i for ids in lists.values() for i in ids}):
            (base / "JPEGImages" / f"{i}.jpg").write_bytes(files[i]["jpg"])
            (base / "SegmentationClass" / f"{i}.png").write_bytes(files[i]["png"])
    sbd = sbd_dir(tmp)
    for sub in ("img", "cls", "inst"):
        (sbd / sub).mkdir(parents=True)
    _write_list(sbd / "train.txt", splits["sbd_train"])
    _write_list(sbd / "val.txt", splits["sbd_val"])
    for i in sorted(set(splits["sbd_train"]) | set(splits["sbd_val"])):
        (sbd / "img" / f"{i}.jpg").write_bytes(files[i]["jpg"])
        (sbd / "cls" / f"{i}.mat").write_bytes(files[i]["cls"])
        (sbd / "inst" / f"{i}.mat").write_bytes(files[i]["inst"])


def _check_args(n_sbd_train: int, n_voc_train: int, n_voc_val: int, n_test: int,
                min_size: int, max_size: int) -> None:
    counts = {"n_sbd_train": n_sbd_train, "n_voc_train": n_voc_train, "n_test": n_test}
    for name, value in counts.items():
        if value < 1:
            raise ValueError(f"{name}={value} not allowed; use at least 1")
    if n_voc_val < 2:
        raise ValueError(f"n_voc_val={n_voc_val} not allowed; use at least 2 (some overlap SBD train)")
    if not 32 <= min_size <= max_size:
        raise ValueError(f"sizes min_size={min_size}, max_size={max_size} not allowed; need 32 <= min <= max")


def write_voc_twin(root: Path | str, *, seed: int, n_sbd_train: int, n_voc_train: int, n_voc_val: int,
                   n_test: int, min_size: int, max_size: int) -> dict[str, int]:
    """Write the VOC2011/VOC2012/SBD twin under `root` (must not exist); return split sizes.

    Everything is built in a temporary folder beside `root` and renamed at the end, so a
    crash never leaves a half-written `root`.
    """
    _check_args(n_sbd_train, n_voc_train, n_voc_val, n_test, min_size, max_size)
    root = Path(root)
    if root.exists():
        raise FileExistsError(f"twin root {root} already exists; delete it first")
    splits = plan_splits(np.random.default_rng(seed), n_sbd_train=n_sbd_train, n_voc_train=n_voc_train,
                         n_voc_val=n_voc_val, n_test=n_test)
    sbd_ids = set(splits["sbd_train"]) | set(splits["sbd_val"])
    files: dict[str, dict[str, bytes]] = {}
    for i in sorted({i for ids in splits.values() for i in ids}):
        image, label, inst = render_id(seed, i, min_size, max_size)
        voc_label = np.where(void_band(inst), np.uint8(VOID), label)  # SBD labels keep no void
        files[i] = {"jpg": _encode_jpeg(image), "png": encode_label_png(voc_label, name=i)}
        if i in sbd_ids:
            files[i].update(cls=encode_cls_mat(label), inst=encode_inst_mat(inst, label))
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".tmp", dir=root.parent))
    try:
        _write_tree(tmp, splits, files)
        tmp.chmod(0o755)  # mkdtemp makes it private; the data set should read like any folder
        os.rename(tmp, root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)  # only reached on failure: the rename moved it otherwise
    counts = {name: len(ids) for name, ids in splits.items()}
    val = set(splits["sbd_train"])
    counts["seg11valid"] = sum(i not in val for i in splits["voc2011_val"])
    counts["images"] = len(files)
    return counts
