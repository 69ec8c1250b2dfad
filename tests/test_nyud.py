"""NYU Depth v2: the twin in the published formats, the download path, preparation and its HHA."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import json
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from segcore.data import hha_encode as hha_stage
from segcore.data import nyud
from segcore.data.twin_nyud import write_nyud_twin
from segcore.data.download import CATALOG, DownloadError
from segcore.config.params import load_params
from segcore.data.fetch import NYUD_FILES, download_nyud, prepare_nyud

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def twin(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("nyud") / "raw"
    write_nyud_twin(root, seed=1, n_train=10, n_test=6, scale=0.25)
    return root


@pytest.fixture(scope="module")
def prepared(twin, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("nyud_fcn") / "fcn"
    nyud.prepare(twin, out, val_fraction=0.2, seed=0)
    return out


def test_real_geometry_is_the_published_crop_and_camera():
    geo = nyud.geometry((480, 640))
    assert (geo.rows[1] - geo.rows[0], geo.cols[1] - geo.cols[0]) == (425, 560)
    cam = geo.crop_camera  # spec: cx - 40, cy - 45
    assert cam.cx == pytest.approx(285.58244941119034) and cam.cy == pytest.approx(208.73616633400465)
    with pytest.raises(nyud.DataError, match="uniform scaling"):
        nyud.geometry((480, 500))


def test_twin_is_a_v73_mat_with_matlab_axes_and_is_byte_identical(twin, tmp_path):
    head = (twin / nyud.LABELED_MAT).read_bytes()[:128]
    assert head.startswith(b"MATLAB 7.3 MAT-file") and head[126:128] == b"IM"
    with h5py.File(twin / nyud.LABELED_MAT, "r") as f:
        assert f["images"].shape == (16, 3, 160, 120) and f["images"].dtype == np.uint8  # (N, 3, W, H)
        assert f["depths"].dtype == np.float32 and f["labels"].dtype == np.uint16
        assert f["images"].attrs["MATLAB_class"] == b"uint8"
    again = tmp_path / "again"
    write_nyud_twin(again, seed=1, n_train=10, n_test=6, scale=0.25)
    for name in (nyud.LABELED_MAT, nyud.MAPPING_MAT, nyud.SPLITS_MAT):
        assert (again / name).read_bytes() == (twin / name).read_bytes(), name


def test_readers_give_frames_labels_and_splits(twin):
    labeled = nyud.Labeled(twin / nyud.LABELED_MAT)
    rgb, depth, raw, label = labeled.read(0)
    labeled.close()
    assert rgb.shape == (120, 160, 3) and depth.shape == raw.shape == label.shape == (120, 160)
    assert (depth > 0).all() and (raw == 0).any() and (raw[raw > 0] == depth[raw > 0]).all()
    lut = nyud.read_mapping(twin / nyud.MAPPING_MAT)
    assert lut[0] == nyud.VOID and lut[1:].max() <= 39 and len(lut) == 895
    classes = set(np.unique(lut[label]))
    assert {0, 1} <= classes and classes <= set(range(40)) | {nyud.VOID}  # wall and floor in every room
    train, test = nyud.read_splits(twin / nyud.SPLITS_MAT, 16)
    assert (len(train), len(test)) == (10, 6) and not set(train) & set(test)


def test_prepare_writes_the_fcn_form(prepared):
    train, val, test = (nyud.split_names(prepared, s) for s in ("train", "val", "test"))
    trainval = nyud.split_names(prepared, "trainval")
    assert sorted(train + val) == sorted(trainval) and len(val) == 2 and len(test) == 6
    assert not set(trainval) & set(test) and all(n.startswith("img_50") for n in trainval)
    name = train[0]
    image = np.asarray(Image.open(prepared / "images" / f"{name}.png"))
    label = np.asarray(Image.open(prepared / "labels" / f"{name}.png"))
    depth = np.load(prepared / "depth" / f"{name}.npy")
    assert image.shape == (106, 140, 3) and label.shape == depth.shape == (106, 140)  # 425 x 560 / 4
    assert set(np.unique(label)) <= set(range(40)) | {255}


def test_twin_hha_has_a_flat_floor_at_38_and_height_near_0(prepared, tmp_path):
    assert hha_stage.encode_all(prepared, tmp_path, workers=2) == 16
    floor_angle, floor_height, wall_angle = [], [], []
    for name in nyud.split_names(prepared, "trainval"):
        hha = np.asarray(Image.open(tmp_path / f"{name}.png")).astype(int)
        label = np.asarray(Image.open(prepared / "labels" / f"{name}.png"))
        if (label == 1).mean() < 0.05:  # furniture hides the floor: its few pixels are mostly edges
            continue
        floor_angle.append(np.median(hha[..., 2][label == 1]))
        floor_height.append(np.median(hha[..., 1][label == 1]))
        wall_angle.append(np.median(hha[..., 2][label == 0]))
    assert len(floor_angle) >= 6
    assert np.abs(np.array(floor_angle) - 38).max() <= 1
    assert np.max(floor_height) <= 6  # cm: the gravity estimate is a fraction of a degree off, floors are 3-5 m away
    assert np.abs(np.array(wall_angle) - 128).max() <= 2


def _write_bad(src: Path, dst: Path, edit) -> Path:
    dst.mkdir()
    for name in (nyud.MAPPING_MAT, nyud.SPLITS_MAT):
        (dst / name).write_bytes((src / name).read_bytes())
    with h5py.File(src / nyud.LABELED_MAT, "r") as f, h5py.File(dst / nyud.LABELED_MAT, "w") as g:
        data = {k: np.asarray(f[k]) for k in nyud.LABELED_DATASETS}
        edit(data)
        for k, v in data.items():
            g.create_dataset(k, data=v)
    return dst


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("rawDepths"), r"lacks dataset\(s\) \['rawDepths'\]"),
    (lambda d: d.update(labels=d["labels"][:, :100]), "labels has shape"),
    (lambda d: d["depths"].__setitem__((0, 80, 60), np.nan), "NaN or non-positive filled depth"),
])
def test_bad_labeled_mat_is_one_clear_error(twin, tmp_path, edit, message):
    bad = _write_bad(twin, tmp_path / "bad", edit)
    with pytest.raises(nyud.DataError, match=message):
        nyud.prepare(bad, tmp_path / "out", val_fraction=0.2, seed=0)


def test_failed_preparation_leaves_no_output(twin, tmp_path):
    bad = _write_bad(twin, tmp_path / "bad", lambda d: d["depths"].__setitem__((3, 80, 60), 0.0))
    params = load_params(ROOT / "params.yaml")
    with pytest.raises(nyud.DataError):
        prepare_nyud(bad, tmp_path / "nyud_fcn", params.nyud.val_fraction, params.seed)
    assert not (tmp_path / "nyud_fcn").exists() and not (tmp_path / "nyud_fcn.tmp").exists()


@pytest.fixture(scope="module")
def served(twin):
    """The twin's three files served over HTTP on 127.0.0.1, with a catalog pointing at them."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(twin))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    catalog = {}
    for key in NYUD_FILES:
        a = CATALOG[key]
        data = (twin / a.filename).read_bytes()
        md5 = None if a.md5 is None else hashlib.md5(data).hexdigest()  # the labeled .mat has none
        catalog[key] = dataclasses.replace(a, url=f"{base}/{a.filename}", md5=md5, size=len(data))
    yield catalog
    server.shutdown()


def test_download_records_the_unpublished_checksum_and_enforces_it(served, twin, tmp_path):
    record = tmp_path / "recorded.json"
    out = tmp_path / "data" / "nyud"
    download_nyud(None, out, tmp_path / "downloads", progress=False, catalog=served, record_file=record)
    for name in (nyud.LABELED_MAT, nyud.MAPPING_MAT, nyud.SPLITS_MAT):
        assert (out / name).read_bytes() == (twin / name).read_bytes()
    pinned = json.loads(record.read_text())[nyud.LABELED_MAT]
    assert pinned["sha256"] == hashlib.sha256((twin / nyud.LABELED_MAT).read_bytes()).hexdigest()
    # A later run with different bytes of the same size is refused, naming the record.
    (tmp_path / "downloads" / nyud.LABELED_MAT).write_bytes(b"x" * pinned["size"])
    with pytest.raises(DownloadError, match="recorded size"):
        download_nyud(None, tmp_path / "other", tmp_path / "downloads", progress=False, catalog=served,
                      record_file=record)
    assert not (tmp_path / "other" / nyud.LABELED_MAT).exists()


@pytest.mark.parametrize("modality, channels", [("rgb", 3), ("rgbd", 4), ("hha", 3), ("rgbhha", 6)])
def test_dataset_gives_each_modality_its_channels(prepared, tmp_path, modality, channels):
    from segcore.data.nyud_dataset import NyudDataset, hha_mean, hha_preprocess
    from segcore.data.preprocess import TORCHVISION_IMAGENET

    hha_stage.encode_all(prepared, tmp_path, workers=1)
    mean = hha_mean(tmp_path, nyud.split_names(prepared, "train"))
    data = NyudDataset(prepared, tmp_path, "train", modality, TORCHVISION_IMAGENET,
                       hha_preprocess(TORCHVISION_IMAGENET, mean))
    x, label, name = data[0]
    assert x.shape == (channels, 106, 140) and label.shape == (106, 140) and name.startswith("img_")
    if modality == "rgbd":  # log(depth in mm) - 7.844: rooms of 1.5-5 m give about -0.4 .. +0.8
        assert -1.0 < float(x[3].min()) and float(x[3].max()) < 1.0
    if modality == "rgbhha":  # HHA centred by its own training mean
        hha = torch.stack([data[i][0][3:] for i in range(len(data))])
        assert hha.mean(dim=(0, 2, 3)).abs().max() < 0.05


def test_a_frame_without_raw_depth_is_encoded_from_the_filled_depth(prepared, tmp_path, capsys):
    import shutil

    copy = tmp_path / "prepared"
    shutil.copytree(prepared, copy)
    name = nyud.split_names(copy, "train")[0]
    raw = np.load(copy / "raw_depth" / f"{name}.npy")
    np.save(copy / "raw_depth" / f"{name}.npy", np.zeros_like(raw))
    hha_stage.encode_all(copy, tmp_path / "hha", workers=1)
    assert f"{name} has no valid raw depth" in capsys.readouterr().out
    hha = np.asarray(Image.open(tmp_path / "hha" / f"{name}.png"))
    label = np.asarray(Image.open(copy / "labels" / f"{name}.png"))
    assert abs(np.median(hha[..., 2][label == 1]) - 38) <= 1  # still a floor, not 180 degrees everywhere
