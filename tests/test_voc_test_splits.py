"""The VOC test splits of Table 3: VOC2011 test beside VOC2012 test, twin and real layouts.

The twin writes VOC2011 test where its test tar extracts (with labels, like its VOC2012 test); the
real data has it only where the tar was placed by hand. Evaluation scores a labelled split, packs an
unlabelled one for the evaluation server, and skips an absent one; Table 3 fills its column from it.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segcore.config.params import load_params
from segcore.data import voc
from segcore.data.fetch import download_voc
from segcore.data.preprocess import TORCHVISION_IMAGENET
from segcore.data.twin_voc import write_voc_twin
from segcore.eval.predict import write_submission
from segcore.models.modelfile import save_model
from segcore.models.registry import build_model
from segcore.pipeline import views
from segcore.pipeline.evaluate import evaluate_experiment
from segcore.report import paper
from segcore.report import render as report
from segcore.report.table3 import table3_notes, table3_values
from segcore.train.experiments import EXPERIMENTS, Experiment

ROOT = Path(__file__).resolve().parents[1]
TWIN = dict(seed=5, n_sbd_train=6, n_voc_train=3, n_voc_val=6, n_test=4, min_size=32, max_size=40)
TIMING = {"mean_ms": 10.0, "size": 64, "dtype": "float32", "trials": 1, "warmup": 0, "std_ms": 0.0,
          "device": "cpu", "torch": "x"}


@pytest.fixture(scope="module")
def twin(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("voc_tests") / "voc"
    write_voc_twin(root, **TWIN)
    return root


@pytest.fixture(scope="module")
def fcn8s_model(tmp_path_factory) -> Path:
    """A tiny FCN-8s with random weights: evaluation only needs its output contract."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("fcn8s") / "model.pt"
    save_model(path, build_model("fcn8s", n_classes=voc.NUM_CLASSES, width=0.0625), arch="fcn8s",
               n_classes=voc.NUM_CLASSES, width=0.0625, learn_upsampling=False, preprocess=TORCHVISION_IMAGENET)
    return path


def _evaluate(data: Path, model: Path, tmp: Path) -> dict:
    view = {**views.evaluate(load_params(ROOT / "params.yaml"), "fcn8s"), "figure_images": 1}
    view["runtime"] = {**view["runtime"], "channels_last": False}
    return evaluate_experiment(view, data, model, tmp / "fcn8s.json", tmp / "eval")


def _unlabelled_copy(twin: Path, dst: Path, with_2011_test: bool) -> Path:
    """The twin as the real data looks: test labels withheld, VOC2011 test present or not."""
    shutil.copytree(twin, dst)
    for split in voc.TEST_YEARS:
        for s in voc.split_samples(dst, split):
            s.label.unlink(missing_ok=True)  # ids shared by both test sets live in two trees
    if not with_2011_test:
        shutil.rmtree(dst / "Test")
    return dst


def test_twin_writes_voc2011_test_where_its_tar_extracts(twin: Path) -> None:
    base = twin / "Test" / "VOCdevkit" / "VOC2011"
    assert voc.voc2011_test_dir(twin) == base
    ids = voc.read_ids(base / "ImageSets" / "Segmentation" / "test.txt")
    v12 = [s.id for s in voc.split_samples(twin, "voc2012_test")]
    assert ids == sorted(ids) and len(ids) == 3 and set(ids) < set(v12)  # 3/4 of VOC2012 test, as real
    assert sorted(p.name for p in (base / "ImageSets" / "Segmentation").iterdir()) == ["test.txt"]
    samples = voc.split_samples(twin, "voc2011_test")
    assert [s.id for s in samples] == ids and all(s.label is not None for s in samples)
    for s in samples:
        with Image.open(s.label) as label:
            assert label.mode == "P"
        twin12 = voc.voc_dir(twin, "2012") / "JPEGImages" / f"{s.id}.jpg"
        assert s.image.read_bytes() == twin12.read_bytes()  # an image depends only on (seed, id)
        image, label = voc.read_sample(s)
        assert image.shape[:2] == label.shape
    # the VOC2011 trainval tree is as before: no test list of its own
    assert not (voc.voc_dir(twin, "2011") / "ImageSets" / "Segmentation" / "test.txt").exists()


def test_voc2011_test_is_optional_but_never_half_there(twin: Path, tmp_path: Path) -> None:
    copy = _unlabelled_copy(twin, tmp_path / "voc", with_2011_test=False)
    assert voc.voc2011_test_dir(copy) is None and voc.split_samples(copy, "voc2011_test") == []
    merged = voc.voc_dir(copy, "2011")  # the test tar merged by hand into the trainval tree
    test_ids = voc.read_ids(twin / "Test/VOCdevkit/VOC2011/ImageSets/Segmentation/test.txt")
    (merged / "ImageSets" / "Segmentation" / "test.txt").write_text("".join(f"{i}\n" for i in test_ids))
    with pytest.raises(voc.DataError, match=f"test image missing: .*{test_ids[0]}.jpg"):
        voc.split_samples(copy, "voc2011_test")
    for i in test_ids:
        shutil.copy(twin / "Test/VOCdevkit/VOC2011/JPEGImages" / f"{i}.jpg", merged / "JPEGImages")
    samples = voc.split_samples(copy, "voc2011_test")
    assert [s.id for s in samples] == test_ids and all(s.label is None for s in samples)


def test_write_submission_lays_out_the_years_server_folder(tmp_path: Path, monkeypatch) -> None:
    preds = [("2008_000001", np.array([[0, 15], [255, 3]], dtype=np.int64)), ("2009_000002", np.zeros((3, 5)))]
    out = tmp_path / "voc2011_test_submission.tar.gz"
    assert write_submission(iter(preds), voc.palette(), out, voc.submission_folder("2011")) == 2
    with tarfile.open(out) as tar:
        names = tar.getnames()
        assert names == [f"results/VOC2011/Segmentation/comp6_test_cls/{i}.png" for i, _ in preds]
        with Image.open(io.BytesIO(tar.extractfile(names[0]).read())) as png:
            assert png.mode == "P" and png.getpalette()[:48] == voc.palette()[:48]
            np.testing.assert_array_equal(np.array(png), preds[0][1])
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]
    again = tmp_path / "again" / out.name  # the same predictions later: the same bytes (no time in the gzip header)
    again.parent.mkdir()
    monkeypatch.setattr("time.time", lambda: 2e9)  # a later clock: gzip would write it into the header
    write_submission(iter(preds), voc.palette(), again, voc.submission_folder("2011"))
    assert again.read_bytes() == out.read_bytes()


def test_twin_test_splits_are_scored(twin: Path, fcn8s_model: Path, tmp_path: Path) -> None:
    metrics = _evaluate(twin, fcn8s_model, tmp_path)
    assert metrics["voc2011_test"]["images"] == 3 and metrics["voc2012_test"]["images"] == 4
    assert 0 <= metrics["voc2011_test"]["mean_iu"] <= 100
    # Labels exist: scored, and the archive a real run submits is written all the same, one PNG per image.
    import tarfile

    for split, count in (("voc2011_test", 3), ("voc2012_test", 4)):
        with tarfile.open(tmp_path / "eval" / f"{split}_submission.tar.gz") as tar:
            assert len([n for n in tar.getnames() if n.endswith(".png")]) == count
        assert metrics[split]["submitted_images"] == count


def test_real_layout_packs_one_archive_per_present_test_split(twin: Path, fcn8s_model: Path,
                                                               tmp_path: Path) -> None:
    data = _unlabelled_copy(twin, tmp_path / "with", with_2011_test=True)
    metrics = _evaluate(data, fcn8s_model, tmp_path / "a")
    assert metrics["voc2011_test"] == {"submitted_images": 3} and metrics["voc2012_test"] == {"submitted_images": 4}
    for split, year in voc.TEST_YEARS.items():
        with tarfile.open(tmp_path / "a" / "eval" / f"{split}_submission.tar.gz") as tar:
            ids = [s.id for s in voc.split_samples(data, split)]
            assert tar.getnames() == [f"results/VOC{year}/Segmentation/comp6_test_cls/{i}.png" for i in ids]
    # Without the VOC2011 test images: no archive, no entry, no error; VOC2012's archive as before.
    data = _unlabelled_copy(twin, tmp_path / "without", with_2011_test=False)
    metrics = _evaluate(data, fcn8s_model, tmp_path / "b")
    assert "voc2011_test" not in metrics and metrics["voc2012_test"] == {"submitted_images": 4}
    assert sorted(p.name for p in (tmp_path / "b" / "eval").glob("*.tar.gz")) == ["voc2012_test_submission.tar.gz"]
    assert "not in data/voc" in table3_notes(metrics, TIMING)[0]


def test_table3_fills_the_voc2011_column_from_metrics() -> None:
    metrics = {"voc2011_test": {"mean_iu": 31.5, "images": 3}, "voc2012_test": {"mean_iu": 28.0, "images": 4}}
    values = table3_values(metrics, TIMING)
    assert values == {"voc2011_test": 31.5, "voc2012_test": 28.0, "inference_ms": 10.0}
    notes = table3_notes(metrics, TIMING)
    assert "synthetic twin's labelled VOC2011 test split (3 images)" in notes[0]
    assert "VOC2012 test split (4 images)" in notes[1]
    page = report.render(paper.TABLE3, {"fcn8s": values}, {}, smoke=False, notes=notes)
    row = next(line for line in page.splitlines() if line.startswith("| FCN-8s"))
    assert "31.5" in row and "-31.2" in row  # ours and ours - paper (62.7)
    server = table3_notes({"voc2011_test": {"submitted_images": 1111}}, TIMING)[0]
    assert "eval/fcn8s/voc2011_test_submission.tar.gz" in server and "submit the archive" in server
    assert table3_values({}, TIMING)["voc2011_test"] is None


def test_experiments_take_several_test_splits() -> None:
    assert EXPERIMENTS["fcn8s"].test_splits == ("voc2012_test", "voc2011_test")
    assert EXPERIMENTS["nyud-rgb"].test_split == "test" and EXPERIMENTS["fcn32s"].test_split is None
    with pytest.raises(TypeError, match="test_splits must be a tuple"):
        Experiment("x", "X", "fcn32s", "backbone", 0, "train", "val", "test")


def test_placed_voc2011_test_tar_is_pinned_and_extracted(twin: Path, tmp_path: Path) -> None:
    out = tmp_path / "voc"
    shutil.copytree(twin, out, ignore=shutil.ignore_patterns("Test"))  # trainval data already in place
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    download_voc(None, out, downloads, progress=False, check_count=False, record_file=tmp_path / "rec.json")
    assert voc.split_samples(out, "voc2011_test") == []  # nothing placed: absent, no error
    with tarfile.open(downloads / voc.VOC2011_TEST_TAR, "w") as tar:
        tar.add(twin / "Test", arcname="Test")
    download_voc(None, out, downloads, progress=False, check_count=False, record_file=tmp_path / "rec.json")
    assert [s.id for s in voc.split_samples(out, "voc2011_test")] == [s.id for s in voc.split_samples(twin, "voc2011_test")]
    assert voc.VOC2011_TEST_TAR in (tmp_path / "rec.json").read_text()
