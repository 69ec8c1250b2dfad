"""Backbone records of the three Table 1 classifiers: weights, surgery and preprocessing travel together."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from segcore.config.schema import ConfigError
from segcore.data.download import Archive, DownloadError, file_digest
from segcore.data.preprocess import CAFFE_VGG16, Preprocess
from segcore.models import backbone
from segcore.models.alexnet import AlexNetClassifier
from segcore.models.caffe import caffe_alexnet
from segcore.models.registry import BACKBONE, build_model
from segcore.config.params import load_params
from segcore.models.surgery import convolutionalise, transplant
from segcore.pipeline.backbone import make_backbone

from caffe_writer import write_caffemodel  # tests/caffe_writer.py
from test_caffe_reader import caffenet_layers

torchvision = pytest.importorskip("torchvision")

FCN_OF = {"vgg16": "fcn32s", "alexnet": "fcn-alexnet", "googlenet": "fcn-googlenet"}
TORCHVISION_BUILDERS = {"vgg16": "vgg16", "googlenet": "googlenet"}  # AlexNet: ours is CaffeNet, see below


@pytest.mark.parametrize("arch", ["googlenet", "vgg16"])
def test_imagenet_record_loads_into_its_fcn_with_its_preprocessing(arch, monkeypatch):
    # Stand in for the download: a torchvision net with random weights, served by the weights enum.
    kwargs = {"aux_logits": True, "init_weights": False} if arch == "googlenet" else {}
    state = getattr(torchvision.models, TORCHVISION_BUILDERS[arch])(weights=None, **kwargs).state_dict()
    enum = getattr(torchvision.models, backbone.ARCHS[arch].weights_enum)
    monkeypatch.setattr(enum, "get_state_dict", lambda self, progress=True, check_hash=True: state)

    record = backbone.imagenet(arch, "IMAGENET1K_V1", progress=False)
    assert record["arch"] == arch and record["width"] == 1.0
    assert record["source"] == f"torchvision {enum.__name__}.IMAGENET1K_V1"
    expected_mean = (0.5, 0.5, 0.5) if arch == "googlenet" else (0.485, 0.456, 0.406)
    assert tuple(record["preprocess"]["mean"]) == expected_mean
    fcn = build_model(FCN_OF[arch], n_classes=21)
    assert BACKBONE[FCN_OF[arch]] == arch
    copied = transplant(record["trunk"], fcn)
    assert sorted(copied) == sorted(record["trunk"])  # every trunk tensor has its place in the FCN
    first = next(k for k in record["trunk"] if k.endswith("weight"))
    assert torch.equal(fcn.state_dict()[first], record["trunk"][first])


def test_smoke_pretraining_gives_each_arch_a_record_the_trainer_accepts(tmp_path):
    params = load_params("params.yaml")
    spec = dataclasses.replace(params.backbone.smoke, iterations={"vgg16": 1, "alexnet": 2, "googlenet": 3}, batch_size=2, image_size=64)
    for arch, steps in (("alexnet", 2), ("googlenet", 3)):  # each architecture its own schedule
        record = backbone.pretrain_smoke(arch, 0.0625, spec, seed=0, progress=False)
        assert record["iterations"] == steps
        backbone.save_record(record, tmp_path / f"{arch}.pt")
        loaded = backbone.load_record(tmp_path / f"{arch}.pt", arch)
        assert 0.0 <= loaded["held_out_accuracy"] <= 1.0
        transplant(loaded["trunk"], build_model(FCN_OF[arch], n_classes=21, width=0.0625))


def test_a_record_of_the_wrong_arch_or_an_old_record_is_refused(tmp_path):
    params = load_params("params.yaml")
    spec = dataclasses.replace(params.backbone.smoke, iterations={"vgg16": 1, "alexnet": 1, "googlenet": 1}, batch_size=2, image_size=32)
    smallest, net = backbone.ARCHS["alexnet"].min_image_size, AlexNetClassifier(3, width=0.0625).eval()
    with torch.no_grad():  # min_image_size is the smallest input whose pool5 is not empty
        assert net(torch.zeros(1, 3, smallest, smallest)).shape == (1, 3)
        with pytest.raises(RuntimeError):
            net(torch.zeros(1, 3, smallest - 1, smallest - 1))
    with pytest.raises(ValueError, match="backbone.smoke.image_size = 32 is too small for alexnet: it needs >= 39"):
        backbone.pretrain_smoke("alexnet", 0.0625, spec, 0, False)
    spec = dataclasses.replace(spec, image_size=64)
    backbone.save_record(backbone.pretrain_smoke("alexnet", 0.0625, spec, 0, False), tmp_path / "a.pt")
    with pytest.raises(ValueError, match="holds the alexnet backbone, expected googlenet"):
        backbone.load_record(tmp_path / "a.pt", "googlenet")
    old = torch.load(tmp_path / "a.pt", weights_only=True)
    del old["arch"]
    torch.save(old, tmp_path / "old.pt")
    with pytest.raises(ValueError, match=r"missing \['arch'\]; rerun the backbone stage"):
        backbone.load_record(tmp_path / "old.pt")
    with pytest.raises(ValueError, match="unknown backbone 'resnet'; allowed: vgg16, alexnet, googlenet"):
        backbone.get_arch("resnet")


# ---------------------------------------------------------------- AlexNet: the paper's CaffeNet weights


def test_paper_weights_per_architecture_and_the_alexnet_refusal():
    assert {a: backbone.paper_weights(a) for a in backbone.ARCHS} == {
        "vgg16": ("IMAGENET1K_V1", "caffe"), "alexnet": ("caffe",), "googlenet": ("IMAGENET1K_V1",)}
    assert set(backbone.CAFFE_READERS) == set(backbone.CAFFE_WEIGHTS)
    assert load_params("params.yaml").backbone.paper.weights["alexnet"] == "caffe"
    # Refused before any download: torchvision's AlexNet weights are another net's.
    with pytest.raises(ConfigError) as err:
        backbone.imagenet("alexnet", "IMAGENET1K_V1", progress=False)
    assert str(err.value) == ("backbone.paper.weights.alexnet = IMAGENET1K_V1 is not allowed (no torchvision "
                              "weights fit its layout); use caffe")


@pytest.fixture
def slim_caffenet(tmp_path, monkeypatch):
    """downloads/ holding a slim CaffeNet (V1 layout, legacy shapes) under the real file name, its sha1
    standing in for the published one; returns (downloads, the classifier written)."""
    torch.manual_seed(0)
    net = AlexNetClassifier(n_classes=10, width=0.0625).eval()
    archives = tmp_path / "downloads"
    archives.mkdir()
    real = backbone.CAFFE_WEIGHTS["alexnet"]
    path = write_caffemodel(archives / real.filename, caffenet_layers(net), v1=True)
    monkeypatch.setitem(backbone.CAFFE_WEIGHTS, "alexnet", Archive(real.name, "http://127.0.0.1:9/unreachable",
                                                                   real.filename, None, None, real.extracts_to))
    monkeypatch.setitem(backbone.CAFFE_SHA1, "alexnet", file_digest(path, "sha1"))
    monkeypatch.setitem(backbone.CAFFE_READERS, "alexnet", lambda p: caffe_alexnet(p, width=0.0625))
    monkeypatch.setattr(backbone, "RECORDED_CHECKSUMS", tmp_path / "recorded.json")
    return archives, net


def test_fcn_alexnet_on_the_caffenet_record_scores_as_on_the_same_weights_given_directly(tmp_path, slim_caffenet):
    archives, net = slim_caffenet
    summary = make_backbone({"scale": "paper", "weights": "caffe"}, "alexnet", tmp_path / "a.pt", progress=False,
                            archives=archives)
    assert summary["source"] == "Caffe bvlc_reference_caffenet.caffemodel (BGR, 0-255, mean pixel)"
    assert (tmp_path / "recorded.json").exists()  # pinned on first use, on top of the sha1
    record = backbone.load_record(tmp_path / "a.pt", "alexnet")
    pre = Preprocess.from_dict(record["preprocess"])
    assert pre == CAFFE_VGG16  # BGR 0..255 minus the ILSVRC 2012 mean pixel
    x = pre(np.random.default_rng(0).integers(0, 256, size=(45, 71, 3), dtype=np.uint8))[None]
    scores = []
    for trunk in (record["trunk"], convolutionalise(net)):  # read from the file, and the weights themselves
        fcn = build_model("fcn-alexnet", n_classes=21, width=0.0625)
        assert sorted(transplant(trunk, fcn)) == sorted(trunk)  # grouped convs included
        torch.manual_seed(1)  # the same non-zero score_fr in both
        torch.nn.init.normal_(fcn.score_fr.weight, std=0.1)
        with torch.no_grad():
            scores.append(fcn.eval()(x))
    assert scores[0].shape == (1, 21, 45, 71) and scores[0].std() > 0
    assert torch.equal(scores[0], scores[1])


def test_a_caffenet_file_that_is_not_the_published_one_is_refused_before_it_is_pinned(tmp_path, slim_caffenet,
                                                                                      monkeypatch):
    archives, _ = slim_caffenet
    published = backbone.CAFFE_SHA1["alexnet"]
    monkeypatch.setitem(backbone.CAFFE_SHA1, "alexnet", "0" * 40)
    with pytest.raises(DownloadError, match="bvlc_reference_caffenet.caffemodel is not the expected file "
                                            r"\(sha1 [0-9a-f]{40}, expected 0{40}\); delete it and rerun"):
        backbone.caffe("alexnet", archives, progress=False)
    assert not (tmp_path / "recorded.json").exists()  # nothing pinned from a wrong file
    monkeypatch.setitem(backbone.CAFFE_SHA1, "alexnet", published)
    backbone.caffe("alexnet", archives, progress=False)  # vetted, then pinned
    monkeypatch.setitem(backbone.CAFFE_SHA1, "alexnet", "0" * 40)
    backbone.caffe("alexnet", archives, progress=False)  # pinned: the pin is what later runs check
