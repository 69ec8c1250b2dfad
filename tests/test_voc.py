"""VOC/SBD readers and the synthetic VOC+SBD twin: layout, torchvision compatibility, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image
from scipy import ndimage
from torchvision.datasets import SBDataset, VOCSegmentation

from segcore.data import voc
from segcore.data.twin_voc import render_object_image, write_voc_twin
from segcore.data.voc_appearance import STYLES, THIN_SHAPES

TWIN = dict(seed=3, n_sbd_train=16, n_voc_train=8, n_voc_val=9, n_test=4, min_size=40, max_size=71)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("twin") / "voc"
    write_voc_twin(path, **TWIN)
    return path


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# torchvision knows no VOC2012 "test" image_set; our reader of it is tested below.
@pytest.mark.parametrize("year,image_set", [("2012", "train"), ("2012", "val"), ("2011", "train"),
                                            ("2011", "val")])
def test_torchvision_voc_reads_twin(root: Path, year: str, image_set: str) -> None:
    ds = VOCSegmentation(str(root), year=year, image_set=image_set)
    ours = voc.split_samples(root, f"voc{year}_{image_set}")
    assert len(ds) == len(ours) > 0
    for (img, target), sample in zip(ds, ours):
        assert target.mode == "P"
        image, label = voc.read_sample(sample)
        np.testing.assert_array_equal(np.asarray(img), image)
        np.testing.assert_array_equal(np.asarray(target), label)


@pytest.mark.parametrize("image_set", ["train", "val"])
def test_torchvision_sbd_reads_twin(root: Path, image_set: str) -> None:
    ds = SBDataset(str(voc.sbd_dir(root)), image_set=image_set, mode="segmentation")
    ours = voc.split_samples(root, f"sbd_{image_set}")
    assert len(ds) == len(ours) > 0
    for (img, target), sample in zip(ds, ours):
        image, label = voc.read_sample(sample)
        np.testing.assert_array_equal(np.asarray(img), image)
        np.testing.assert_array_equal(np.asarray(target), label)
    boundaries = SBDataset(str(voc.sbd_dir(root)), image_set=image_set, mode="boundaries")[0][1]
    assert boundaries.shape == (20, *label_shape(ours[0]))
    inst = scipy.io.loadmat(voc.sbd_dir(root) / "inst" / f"{ours[0].id}.mat")["GTinst"][0]
    assert inst["Segmentation"][0].shape == label_shape(ours[0])


def label_shape(sample: voc.Sample) -> tuple[int, int]:
    return voc.read_label(sample).shape


def test_palette() -> None:
    pal = voc.palette()
    assert len(pal) == 768
    rgb = lambda i: tuple(pal[3 * i:3 * i + 3])  # noqa: E731
    assert rgb(0) == (0, 0, 0) and rgb(1) == (128, 0, 0) and rgb(2) == (0, 128, 0)
    assert rgb(15) == (192, 128, 128) and rgb(20) == (0, 64, 128) and rgb(255) == (224, 224, 192)
    assert len(voc.CLASSES) == 21 and voc.CLASSES[15] == "person"


def test_void_band_in_voc_not_in_sbd(root: Path) -> None:
    sbd = {s.id: s for s in voc.split_samples(root, "sbd_train")}
    shared = [s for s in voc.split_samples(root, "voc2011_val") if s.id in sbd]
    assert shared
    for s in shared:
        voc_label, sbd_label = voc.read_label(s), voc.read_label(sbd[s.id])
        void = voc_label == voc.VOID
        assert void.any() and not (sbd_label == voc.VOID).any()
        np.testing.assert_array_equal(voc_label[~void], sbd_label[~void])
        near_object = ndimage.binary_dilation(sbd_label > 0, np.ones((3, 3), bool), 2)
        assert near_object[void].all()  # the band hugs object outlines
        assert (voc.read_image(s.image) == voc.read_image(sbd[s.id].image)).all()


def test_seg11valid_is_real_set_difference(root: Path) -> None:
    val = [s.id for s in voc.split_samples(root, "voc2011_val")]
    sbd_train = {s.id for s in voc.split_samples(root, "sbd_train")}
    ids = [s.id for s in voc.split_samples(root, "seg11valid")]
    assert 0 < len(ids) < len(val)
    assert set(ids) < set(val) and not set(ids) & sbd_train
    assert ids == [i for i in val if i in set(ids)]  # VOC order kept
    assert voc.seg11valid(["a", "b", "c"], ["b", "x"]) == ["a", "c"]
    with pytest.raises(voc.DataError, match="736"):
        voc.check_seg11valid_count(ids, real=True)


def test_twin_is_deterministic_and_atomic(root: Path, tmp_path: Path) -> None:
    again = tmp_path / "voc"
    counts = write_voc_twin(again, **TWIN)
    assert _files(again) == _files(root)
    assert counts["sbd_train"] == TWIN["n_sbd_train"] and counts["voc2011_val"] == TWIN["n_voc_val"]
    assert [p.name for p in tmp_path.iterdir()] == ["voc"]  # no temp folder left behind
    with pytest.raises(FileExistsError, match=str(again)):
        write_voc_twin(again, **TWIN)
    other = tmp_path / "other"
    write_voc_twin(other, **{**TWIN, "seed": 4})
    assert _files(other) != _files(root)


def test_sizes_vary_include_odd_and_labels_in_range(root: Path) -> None:
    shapes = set()
    for split in voc.SPLIT_NAMES:
        for sample in voc.split_samples(root, split):
            image, label = voc.read_sample(sample)  # readers reject values outside {0..20, 255}
            assert image.dtype == np.uint8 and label.dtype == np.uint8
            shapes.add(label.shape)
            assert TWIN["min_size"] <= min(label.shape) and max(label.shape) <= TWIN["max_size"]
    assert len(shapes) > 5
    assert any(h % 2 for h, _ in shapes) and any(w % 2 for _, w in shapes)


def test_readers_name_the_bad_file(root: Path, tmp_path: Path) -> None:
    sample = voc.split_samples(root, "voc2012_train")[0]
    missing = tmp_path / "nope.jpg"
    with pytest.raises(voc.DataError, match="nope.jpg"):
        voc.read_image(missing)
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(sample.image.read_bytes()[:300])
    with pytest.raises(voc.DataError, match="cut.jpg"):
        voc.read_image(truncated)
    garbage = tmp_path / "bad.png"
    garbage.write_bytes(b"\x89PNG not really")
    with pytest.raises(voc.DataError, match="bad.png"):
        voc.read_label_png(garbage)
    bad_mat = tmp_path / "bad.mat"
    bad_mat.write_bytes(b"MATLAB 5.0 garbage" * 3)
    with pytest.raises(voc.DataError, match="bad.mat"):
        voc.read_sbd_label(bad_mat)
    wrong_key = tmp_path / "wrong.mat"
    scipy.io.savemat(wrong_key, {"S": np.zeros((4, 4), np.uint8)})
    with pytest.raises(voc.DataError, match="wrong.mat"):
        voc.read_sbd_label(wrong_key)


def test_out_of_range_labels_and_size_mismatch(root: Path, tmp_path: Path) -> None:
    label = np.zeros((5, 6), np.uint8)
    label[2, 3] = 30
    png = tmp_path / "range.png"
    Image.fromarray(label).save(png)
    with pytest.raises(voc.DataError, match="range.png.*30"):
        voc.read_label_png(png)
    mat = tmp_path / "range.mat"
    scipy.io.savemat(mat, {"GTcls": {"Segmentation": label}})
    with pytest.raises(voc.DataError, match="range.mat"):
        voc.read_sbd_label(mat)
    with pytest.raises(voc.DataError, match="range.png"):
        voc.write_label_png(png, label)
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.zeros((5, 6, 3), np.uint8)).save(rgb)
    with pytest.raises(voc.DataError, match="rgb.png.*'RGB'"):
        voc.read_label_png(rgb)
    small = tmp_path / "small.png"
    voc.write_label_png(small, np.zeros((5, 6), np.uint8))
    image = voc.split_samples(root, "voc2012_val")[0].image
    with pytest.raises(voc.DataError, match="small.png"):
        voc.read_sample(voc.Sample("x", image, small, "png"))


def test_label_png_roundtrip(tmp_path: Path) -> None:
    label = np.array([[0, 1, 20], [255, 15, 3]], np.uint8)
    path = tmp_path / "l.png"
    voc.write_label_png(path, label)
    assert Image.open(path).mode == "P"
    np.testing.assert_array_equal(voc.read_label_png(path), label)
    assert Image.open(path).convert("RGB").getpixel((1, 1)) == (192, 128, 128)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.png"]


def test_split_lists(root: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="allowed: .*seg11valid"):
        voc.split_samples(root, "trainval")
    with pytest.raises(voc.DataError, match="gone.txt"):
        voc.read_ids(tmp_path / "gone.txt")
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(voc.DataError, match="empty.txt"):
        voc.read_ids(tmp_path / "empty.txt")
    (tmp_path / "dup.txt").write_text("a\nb\na\n")
    with pytest.raises(voc.DataError, match="dup.txt.*'a'"):
        voc.read_ids(tmp_path / "dup.txt")
    with pytest.raises(voc.DataError, match="split list missing"):
        voc.split_samples(tmp_path, "voc2012_val")


def test_voc2012_test_labels_all_or_nothing(root: Path, tmp_path: Path) -> None:
    assert all(s.label is not None for s in voc.split_samples(root, "voc2012_test"))
    copy = tmp_path / "voc"
    shutil.copytree(root / "VOCdevkit", copy / "VOCdevkit")
    test_ids = voc.read_ids(voc.voc_dir(copy, "2012") / "ImageSets/Segmentation/test.txt")
    (voc.voc_dir(copy, "2012") / "SegmentationClass" / f"{test_ids[0]}.png").unlink()
    with pytest.raises(voc.DataError, match=test_ids[0]):
        voc.split_samples(copy, "voc2012_test")
    for i in test_ids[1:]:
        (voc.voc_dir(copy, "2012") / "SegmentationClass" / f"{i}.png").unlink()
    assert all(s.label is None for s in voc.split_samples(copy, "voc2012_test"))


def test_segmentation_dataset(root: Path) -> None:
    samples = voc.split_samples(root, "sbd_train")[:3]
    ds = voc.SegmentationDataset(samples)
    x, y, image_id = ds[0]
    assert x.dtype == torch.float32 and y.dtype == torch.int64 and image_id == samples[0].id
    assert x.shape == (3, *y.shape) and 0.0 <= x.min() and x.max() <= 1.0
    means = torch.tensor([0.5, 0.4, 0.3]).view(3, 1, 1)
    ds = voc.SegmentationDataset(samples, transform=lambda im: torch.from_numpy(im).permute(2, 0, 1) - means)
    assert ds[1][0].dtype == torch.float32 and len(ds) == 3
    unlabeled = voc.Sample("u", samples[0].image, None, "png")
    _, y, _ = voc.SegmentationDataset([unlabeled])[0]
    assert (y == voc.VOID).all()
    bad = voc.SegmentationDataset(samples, transform=lambda im: torch.zeros(3, 2, 2))
    with pytest.raises(ValueError, match=samples[0].id):
        bad[0]


def test_render_object_image() -> None:
    a = render_object_image(15, 48, np.random.default_rng(0))
    b = render_object_image(15, 48, np.random.default_rng(0))
    assert a.shape == (48, 48, 3) and a.dtype == np.uint8 and (a == b).all()
    with pytest.raises(ValueError, match="class 0"):
        render_object_image(0, 48, np.random.default_rng(0))


def test_class_styles_are_distinct_with_thin_parts() -> None:
    styles = [STYLES[c] for c in range(1, 21)]
    assert len({s.hue for s in styles}) == 20
    assert sum(s.shape in THIN_SHAPES for s in styles) >= 8  # where FCN-8s should beat FCN-32s


# The data set registry (segcore.data.specs): one DataSpec per data set, looked up by experiments.

def _exp(dataset: str, modality: str = "rgb"):
    from types import SimpleNamespace

    return SimpleNamespace(name=f"test-{dataset}", dataset=dataset, modality=modality, train_split="voc2011_train",
                           border_weights=True)


def test_split_dataset_comes_from_the_voc_spec(root: Path) -> None:
    from segcore.data import specs
    from segcore.data.preprocess import TORCHVISION_IMAGENET

    exp = _exp("voc")
    inputs = specs.make_inputs(exp, TORCHVISION_IMAGENET, root, None)
    assert inputs == specs.Inputs(TORCHVISION_IMAGENET)
    data = specs.split_dataset(exp, "voc2011_val", root, None, inputs)
    assert len(data) == TWIN["n_voc_val"] and data[0][0].shape[0] == specs.in_channels(exp) == 3


def test_every_data_set_has_one_spec() -> None:
    from segcore.data import specs
    from segcore.data.isbi_dataset import GREY

    assert list(specs.DATASETS) == ["voc", "nyud", "siftflow", "isbi"]
    assert specs.n_classes(_exp("siftflow")) == {"sem": 33, "geo": 3} and specs.n_classes(_exp("voc")) == 21
    assert [specs.in_channels(_exp("nyud", m)) for m in ("rgb", "rgbd", "hha", "rgbhha")] == [3, 4, 3, 6]
    assert specs.in_channels(_exp("isbi")) == 1 and specs.scratch_preprocess(_exp("isbi")) == GREY
    assert specs.EXCLUDE_ABSENT == {"siftflow"} and specs.CLASS_NAMES["isbi"] == ("membrane", "cell")
    with pytest.raises(ValueError, match="unknown data set 'kitti'; known: voc, nyud, siftflow, isbi"):
        specs.n_classes(_exp("kitti"))
    with pytest.raises(ValueError, match="pass the hha stage's output"):
        specs.make_inputs(_exp("nyud", "hha"), GREY, Path("."), None)


def test_report_descriptions_of_the_real_data_and_the_twins() -> None:
    from segcore.data.specs import DATASETS

    nyud = DATASETS["nyud"]
    assert nyud.describe("real") == "NYU Depth v2 labeled (795 / 654 split, 40 classes)"
    assert (nyud.describe("twin", {"seed": 1, "n_train": 24, "n_test": 16, "scale": 0.25})
            == "synthetic NYUD twin (segcore.data.twin_nyud, seed 1, 24 + 16 rooms at x0.25 of 480 x 640)")
    assert DATASETS["voc"].describe("twin", {"seed": 0}) == "synthetic VOC + SBD twin (segcore.data.twin_voc, seed 0)"
    with pytest.raises(ValueError, match="'twin' with the twin's sizes"):
        DATASETS["isbi"].describe("twin")
