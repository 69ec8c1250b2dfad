"""ISBI 2012 readers (TIFF stacks, HDF5 mirror), held-out split and the synthetic twin."""

import h5py
import numpy as np
import pytest

from segcore.data.isbi import (MIRROR_H5, SPLITS, TEST_VOLUME, TRAIN_LABELS, TRAIN_VOLUME, holdout_split,
                               load_isbi, read_prepared, read_tiff_stack, write_tiff_stack)
from segcore.data.twin_isbi import write_isbi_twin
from segcore.data.voc import DataError


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    root = tmp_path_factory.mktemp("isbi") / "twin"
    write_isbi_twin(root, seed=0, n_slices=3, size=64)
    return root


def test_twin_round_trip(twin):
    data = load_isbi(twin)
    assert data.source == "tiff"
    assert data.train_volume.shape == data.train_labels.shape == data.test_volume.shape == (3, 64, 64)
    assert data.train_volume.dtype == data.train_labels.dtype == np.uint8
    assert set(np.unique(data.train_labels).tolist()) == {0, 255}
    cell_fraction = (data.train_labels == 255).mean()
    assert 0.6 < cell_fraction < 0.92  # touching cells, thin membranes
    # membranes are darker than cells, but not trivially: grey levels overlap
    img, lab = data.train_volume.astype(float), data.train_labels
    assert img[lab == 0].mean() + 40 < img[lab == 255].mean()
    assert img[lab == 255].min() < img[lab == 0].max()
    assert not np.array_equal(data.test_volume, data.train_volume)
    assert sorted(p.name for p in twin.iterdir()) == sorted([TRAIN_VOLUME, TRAIN_LABELS, TEST_VOLUME])


def test_twin_is_byte_identical_for_a_seed(twin, tmp_path):
    write_isbi_twin(tmp_path / "again", seed=0, n_slices=3, size=64)
    write_isbi_twin(tmp_path / "other", seed=1, n_slices=3, size=64)
    for name in (TRAIN_VOLUME, TRAIN_LABELS, TEST_VOLUME):
        assert (tmp_path / "again" / name).read_bytes() == (twin / name).read_bytes()
    assert (tmp_path / "other" / TRAIN_VOLUME).read_bytes() != (twin / TRAIN_VOLUME).read_bytes()


def write_mirror(path, membranes):
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f["raw"] = rng.integers(0, 256, size=membranes.shape, dtype=np.uint8)
        f["labels/membranes"] = membranes
        f["labels/gt_segmentation"] = rng.integers(1, 9, size=membranes.shape, dtype=np.uint32)


def original_labels() -> np.ndarray:
    labels = np.full((2, 20, 24), 255, np.uint8)
    labels[:, ::6, :] = 0
    labels[:, :, ::8] = 0
    return labels


@pytest.mark.parametrize("encoding", ["original", "inverted01"])
def test_h5_mirror(tmp_path, encoding):
    labels = original_labels()
    stored = labels if encoding == "original" else (labels == 0).astype(np.uint8)  # 1 = membrane
    write_mirror(tmp_path / MIRROR_H5, stored)
    for where in (tmp_path, tmp_path / MIRROR_H5):
        data = load_isbi(where)
        assert data.source == "h5" and data.test_volume is None
        assert data.train_volume.shape == (2, 20, 24) and data.train_volume.dtype == np.uint8
        assert np.array_equal(data.train_labels, labels)


def test_bad_inputs(tmp_path, twin):
    with pytest.raises(DataError, match=f"{TRAIN_VOLUME} and {TRAIN_LABELS}.*{MIRROR_H5}"):
        load_isbi(tmp_path)
    bad = tmp_path / "pages"
    bad.mkdir()
    write_tiff_stack(bad / TRAIN_VOLUME, read_tiff_stack(twin / TRAIN_VOLUME))
    write_tiff_stack(bad / TRAIN_LABELS, read_tiff_stack(twin / TRAIN_LABELS)[:2])
    with pytest.raises(ValueError, match="has 3 pages but train-labels.tif has 2"):
        load_isbi(bad)
    labels = read_tiff_stack(twin / TRAIN_LABELS)
    labels[0, 0, 0] = 128
    write_tiff_stack(bad / TRAIN_LABELS, labels)
    with pytest.raises(ValueError, match=r"0 \(membrane\) or 255 \(cell\), found \[0, 128, 255\]"):
        load_isbi(bad)
    write_mirror(tmp_path / "three.h5", np.array([[[0, 1, 2]]], np.uint8))
    with pytest.raises(ValueError, match=r"two-valued mask.*\[0, 1, 2\]"):
        load_isbi(tmp_path / "three.h5")
    with pytest.raises(ValueError, match="n_slices"):
        write_isbi_twin(tmp_path / "t", n_slices=0)


def test_holdout_split():
    train, held = holdout_split(10, 3)
    assert train.tolist() == list(range(7)) and held.tolist() == [7, 8, 9]
    for bad in (0, 10, 2.0):
        with pytest.raises(ValueError, match=r"n_eval must be an int in \[1, 9\]"):
            holdout_split(10, bad)


def test_read_prepared_returns_the_split_and_names_bad_input(tmp_path):
    volume = np.arange(3 * 4 * 4, dtype=np.uint8).reshape(3, 4, 4)
    labels = np.full_like(volume, 255)
    (tmp_path / "splits").mkdir()
    np.save(tmp_path / "volume.npy", volume)
    np.save(tmp_path / "labels.npy", labels)
    for name, idx in zip(SPLITS, ([0, 1], [2])):
        (tmp_path / "splits" / f"{name}.txt").write_text("".join(f"{i}\n" for i in idx))
    v, lab, held = read_prepared(tmp_path, "heldout")
    assert held == [2] and (v == volume).all() and (lab == labels).all()
    assert read_prepared(tmp_path, "train")[2] == [0, 1]
    with pytest.raises(ValueError, match="'test'; allowed: train, heldout"):
        read_prepared(tmp_path, "test")
    with pytest.raises(ValueError, match="not a prepared ISBI folder"):
        read_prepared(tmp_path / "missing", "train")
