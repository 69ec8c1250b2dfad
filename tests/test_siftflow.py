"""Table 5 (SIFT Flow): label shifts, the published layout, absent-class exclusion, two-headed nets."""

from __future__ import annotations

import dataclasses
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from segcore.data import specs as datasets
from segcore.models import heads
from segcore.data import siftflow
from segcore.data.twin_siftflow import write_siftflow_twin
from segcore.data.download import Archive, DownloadError
from segcore.eval.metrics import scores
from segcore.models.registry import build_model
from segcore.config.params import load_params
from segcore.train.loop import heads_loss
from segcore.pipeline import views
from segcore.pipeline.backbone import make_backbone
from segcore.pipeline.train import train_experiment
from segcore.pipeline.evaluate import evaluate_experiment
from segcore.pipeline.evaluate import split_scores
from segcore.pipeline import data as pipe_data
from segcore.train.experiments import get_experiment
from segcore.data import fetch

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_thread")


def test_label_shifts_make_void_255():
    sem = np.array([[0, 1, 33], [5, 0, 2]])
    assert siftflow.shift_semantic(sem).tolist() == [[255, 0, 32], [4, 255, 1]]
    geo = np.array([[-1, 1], [2, 3]])
    assert siftflow.shift_geometric(geo).tolist() == [[255, 0], [1, 2]]
    assert siftflow.shift_semantic(sem).dtype == np.uint8


@pytest.mark.parametrize("kind, bad", [("semantic", 34), ("semantic", -1), ("geometric", 0), ("geometric", 4)])
def test_label_values_outside_the_published_range_are_refused(kind, bad):
    shift = siftflow.shift_semantic if kind == "semantic" else siftflow.shift_geometric
    with pytest.raises(siftflow.DataError, match=f"{kind} labels must be .* found \\[{bad}\\]"):
        shift(np.array([[1, bad]]))


def test_absent_classes_leave_the_means_predicted_or_not():
    # 4 classes; class 2 never in the ground truth but predicted 10 times, class 3 neither.
    hist = np.array([[50, 0, 10, 0],
                     [5, 35, 0, 0],
                     [0, 0, 0, 0],
                     [0, 0, 0, 0]])
    kept = scores(hist, exclude_absent=True)
    iu0, iu1 = 50 / (60 + 55 - 50), 35 / (40 + 35 - 35)
    assert kept["mean_iu"] == pytest.approx((iu0 + iu1) / 2)
    assert kept["mean_acc"] == pytest.approx((50 / 60 + 35 / 40) / 2)
    assert kept["fw_iu"] == pytest.approx(0.6 * iu0 + 0.4 * iu1)
    # Without the exclusion, a predicted-but-absent class counts 0 (the VOC rule).
    assert scores(hist)["mean_iu"] == pytest.approx((iu0 + iu1 + 0) / 3)


def test_split_scores_name_the_absent_classes_from_the_matrix():
    exp = get_experiment("sift-fcn16s")
    sem = np.zeros((33, 33), np.int64)
    present = [i for i in range(33) if siftflow.CLASSES[i] not in ("cow", "desert", "moon")]
    sem[present, present] = 7
    geo = np.diag([5, 3, 2]).astype(np.int64)
    geo[0, 1] = 10
    metrics, per_class = split_scores(exp, [sem, geo], images=4)
    assert per_class["absent_from_ground_truth"] == ["cow", "desert", "moon"]
    assert metrics["classes_scored"] == 30 and metrics["mean_iu"] == 100.0
    assert metrics["geo_acc"] == pytest.approx(100 * 10 / 20)
    assert per_class["geo"]["sky"] == pytest.approx(5 / 15)


def test_twin_layout_reads_back_with_unannotated_images_dropped(tmp_path):
    write_siftflow_twin(tmp_path / "raw", seed=3, n_train=12, n_test=8, n_unannotated=2, size=40)
    src = tmp_path / "raw" / siftflow.ROOT
    assert (src / "Images" / siftflow.FOLDER).is_dir() and (src / siftflow.TEST_LIST).exists()
    train, test, empty = siftflow.split_names(src)
    assert len(train) == 10 and len(test) == 8 and len(empty) == 2 and not set(train) & set(test)
    with pytest.raises(siftflow.DataError, match="expected 2488 / 200 / 2"):
        siftflow.split_names(src, check_counts=True)
    sizes = siftflow.prepare(src, tmp_path / "fcn", val_fraction=0.2, seed=0)
    assert sizes == {"trainval": 10, "train": 8, "val": 2, "test": 8}
    ds = siftflow.SiftFlowDataset(tmp_path / "fcn", "train", lambda im: torch.from_numpy(im).permute(2, 0, 1) / 255)
    x, y, name = ds[0]
    assert x.shape == (3, 40, 40) and y.shape == (2, 40, 40) and name in train
    assert set(y[0].unique().tolist()) <= set(range(33)) | {255}
    assert set(y[1].unique().tolist()) <= {0, 1, 2, 255}
    before = (src / "GeoLabels" / siftflow.FOLDER / f"{test[0]}.mat").read_bytes()
    write_siftflow_twin(tmp_path / "raw", seed=3, n_train=12, n_test=8, n_unannotated=2, size=40)
    assert (src / "GeoLabels" / siftflow.FOLDER / f"{test[0]}.mat").read_bytes() == before  # byte-identical


def test_twin_keeps_cow_desert_and_moon_out_of_the_test_split(tmp_path):
    write_siftflow_twin(tmp_path / "raw", seed=0, n_train=40, n_test=16, n_unannotated=2, size=48)
    siftflow.prepare(tmp_path / "raw" / siftflow.ROOT, tmp_path / "fcn", val_fraction=0.1, seed=0)
    def classes(split):
        found = set()
        for name in siftflow.read_split(tmp_path / "fcn", split):
            found |= set(np.unique(np.load(tmp_path / "fcn" / "labels" / f"{name}.npy")[0]).tolist())
        return {siftflow.CLASSES[c] for c in found if c != 255}
    test, train = classes("test"), classes("trainval")
    assert not {"cow", "desert", "moon"} & test
    assert {"cow", "desert", "moon"} <= train and len(test) >= 10


def test_test_list_accepts_names_and_paths(tmp_path):
    (tmp_path / siftflow.TEST_LIST).write_text("coast_natu975\nImages\\x\\street_urb506.jpg\n a/b/forest_for1.jpg\n")
    assert siftflow.read_test_list(tmp_path) == ["coast_natu975", "street_urb506", "forest_for1"]
    (tmp_path / siftflow.TEST_LIST).write_text("coast natu\u00e9\n")
    with pytest.raises(siftflow.DataError, match="unexpected entries"):
        siftflow.read_test_list(tmp_path)


@pytest.mark.parametrize("variant", ["fcn32s", "fcn16s", "fcn8s"])
def test_two_headed_output_contract_at_several_sizes(variant):
    n = {"sem": 5, "geo": 3}
    model = build_model(variant, n_classes=n, width=0.0625).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
        for h, w in [(1, 1), (17, 40), (64, 64), (33, 100)]:
            out = model(torch.randn(2, 3, h, w))
            assert out.shape == (2, 8, h, w) and torch.isfinite(out).all()
            sem, geo = heads.split_logits(out, n)
            assert sem.shape[1] == 5 and geo.shape[1] == 3
    assert "score_fr_sem.weight" in model.state_dict() and "score_fr_geo.weight" in model.state_dict()
    assert "score_fr.weight" not in model.state_dict()


def test_heads_are_independent_and_the_loss_is_their_sum():
    n = {"sem": 4, "geo": 3}
    model = build_model("fcn16s", n_classes=n, width=0.0625).eval()
    x = torch.randn(1, 3, 40, 40)
    with torch.no_grad():
        model.score_fr_geo.weight.normal_()
        before = model(x)
        model.score_fr_geo.weight.normal_()  # touching the geometric head leaves the semantic logits alone
        after = model(x)
    assert torch.equal(before[:, :4], after[:, :4]) and not torch.equal(before[:, 4:], after[:, 4:])
    label = torch.stack([torch.randint(0, 4, (1, 40, 40)), torch.randint(0, 3, (1, 40, 40))], 1)
    label[0, 1, :5] = 255
    loss = heads_loss(after, label, n, normalise=True)
    ce = torch.nn.functional.cross_entropy
    expected = ce(after[:, :4], label[:, 0], ignore_index=255) + ce(after[:, 4:], label[:, 1], ignore_index=255)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ValueError, match="do not fit 2 head"):
        heads_loss(after, label[:, 0], n, normalise=True)


def test_staged_16s_starts_from_the_two_headed_32s():
    n = {"sem": 5, "geo": 3}
    parent = build_model("fcn32s", n_classes=n, width=0.0625).eval()
    with torch.no_grad():
        for name in ("score_fr_sem", "score_fr_geo"):
            getattr(parent, name).weight.normal_()
    child = build_model("fcn16s", n_classes=n, width=0.0625).eval()
    from segcore.models.surgery import transplant
    transplant(parent.state_dict(), child)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a, b = parent(x), child(x)
    # zero-initialised score_pool4 heads: the 16s starts as the 32s, up to the two upsamplings' difference
    assert (a.argmax(1)[:, 8:-8, 8:-8] == b.argmax(1)[:, 8:-8, 8:-8]).float().mean() > 0.9


def test_download_serves_the_zip_from_127_0_0_1_and_pins_its_checksum(tmp_path):
    import shutil
    write_siftflow_twin(tmp_path / "twin", seed=1, n_train=8, n_test=8, n_unannotated=0, size=32)
    shutil.make_archive(str(tmp_path / "serve" / "SiftFlowDataset"), "zip", tmp_path / "twin")
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path / "serve"), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/SiftFlowDataset.zip"
        catalog = {"siftflow": Archive("siftflow", url, "SiftFlowDataset.zip", None, None, "SiftFlowDataset")}
        params = dataclasses.replace(load_params(ROOT / "params.yaml"), data="real")
        record = tmp_path / "records.json"
        fetch.download_siftflow(views.download(params, "siftflow")["twin"], tmp_path / "data", tmp_path / "dl", progress=False,
                                            catalog=catalog, record_file=record)
        assert (tmp_path / "data" / siftflow.ROOT / siftflow.TEST_LIST).exists()
        assert "SiftFlowDataset.zip" in record.read_text()
        (tmp_path / "dl" / "SiftFlowDataset.zip").write_bytes(b"changed")  # a later, different download
        shutil.rmtree(tmp_path / "data")
        with pytest.raises(DownloadError):
            fetch.download_siftflow(views.download(params, "siftflow")["twin"], tmp_path / "data", tmp_path / "dl", progress=False,
                                                catalog=catalog, record_file=record)
        assert not (tmp_path / "data" / siftflow.ROOT).exists()
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """A two-headed FCN-32s trained briefly on a small SIFT Flow twin, plus its untrained start."""
    tmp = tmp_path_factory.mktemp("siftflow")
    params = load_params(ROOT / "params.yaml")
    smoke = dataclasses.replace(params.train.smoke, schedules={**params.train.smoke.schedules, "siftflow": 120}, batch_size=2, val_every=120,
                                checkpoint_every=120)
    params = dataclasses.replace(
        params, train=dataclasses.replace(params.train, smoke=smoke),
        net=dataclasses.replace(params.net, smoke=dataclasses.replace(params.net.smoke, width=0.0625)),
        backbone=dataclasses.replace(params.backbone, smoke=dataclasses.replace(
            params.backbone.smoke, iterations={"vgg16": 30, "alexnet": 2, "googlenet": 2}, batch_size=8, image_size=32)),
        twin=dataclasses.replace(params.twin, siftflow=dataclasses.replace(params.twin.siftflow, n_train=24,
                                                                           n_test=8, size=48)))
    fetch.download_siftflow(views.download(params, "siftflow")["twin"], tmp / "raw", tmp / "dl", progress=False)
    pipe_data.prepare("siftflow", views.prepare(params, "siftflow"), tmp / "raw", tmp / "fcn")
    make_backbone(views.backbone(params, "vgg16"), "vgg16", tmp / "vgg16.pt", progress=False)
    train_experiment(views.train(params, "sift-fcn32s"), tmp / "fcn", tmp / "vgg16.pt", [tmp / "vgg16.pt"],
                              tmp / "m32", tmp / "m32" / "ck.pt", progress=False)
    metrics = evaluate_experiment({**views.evaluate(params, "sift-fcn32s"), "figure_images": 1}, tmp / "fcn", tmp / "m32" / "model.pt",
                                           tmp / "m32.json", tmp / "eval32")
    return params, tmp, metrics


def test_both_heads_learn_on_the_twin(learned):
    params, tmp, metrics = learned
    test = metrics["test"]
    # The untrained net (zero score layers) predicts class 0 everywhere: awning (absent) and sky.
    ds = siftflow.SiftFlowDataset(tmp / "fcn", "test", lambda im: torch.zeros(3, *im.shape[:2]))
    labels = torch.stack([ds[i][1] for i in range(len(ds))])
    sky_share = ((labels[:, 1] == 0).sum() / (labels[:, 1] != 255).sum()).item()
    majority = max(((labels[:, 0] == c).sum() / (labels[:, 0] != 255).sum()).item() for c in range(33))
    assert test["geo_acc"] > 100 * sky_share + 20, (test, sky_share)
    assert test["pixel_acc"] > 100 * majority + 10, (test, majority)
    assert test["images"] == 8 and test["classes_scored"] < 33


def test_two_headed_model_file_rebuilds_and_16s_trains_from_it(learned):
    params, tmp, _ = learned
    record = torch.load(tmp / "m32" / "model.pt", weights_only=True)
    assert record["n_classes"] == {"sem": 33, "geo": 3}
    assert datasets.n_classes(get_experiment("sift-fcn16s")) == {"sem": 33, "geo": 3}
    short = dataclasses.replace(params, train=dataclasses.replace(params.train, smoke=dataclasses.replace(
        params.train.smoke, schedules={**params.train.smoke.schedules, "siftflow_skip": 2}, val_every=2, checkpoint_every=2)))
    train_experiment(views.train(short, "sift-fcn16s"), tmp / "fcn", tmp / "vgg16.pt", [tmp / "m32" / "model.pt"],
                              tmp / "m16", tmp / "m16" / "ck.pt", progress=False)
    state = torch.load(tmp / "m16" / "model.pt", weights_only=True)["state_dict"]
    assert "score_pool4_geo.weight" in state and "upscore16_sem.weight" in state
