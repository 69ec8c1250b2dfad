"""Backbone records of the three Table 1 classifiers: weights, surgery and preprocessing travel together."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from segcore.models import backbone
from segcore.models.registry import BACKBONE, build_model
from segcore.config.params import load_params
from segcore.models.surgery import transplant

torchvision = pytest.importorskip("torchvision")

FCN_OF = {"vgg16": "fcn32s", "alexnet": "fcn-alexnet", "googlenet": "fcn-googlenet"}
TORCHVISION_BUILDERS = {"vgg16": "vgg16", "alexnet": "alexnet", "googlenet": "googlenet"}


@pytest.mark.parametrize("arch", ["alexnet", "googlenet", "vgg16"])
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
    with pytest.raises(ValueError, match="backbone.smoke.image_size = 32 is too small for alexnet: it needs >= 63"):
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
