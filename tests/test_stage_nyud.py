"""Table 4 end to end on a tiny NYUD twin: every modality trains, the fusion starts from its streams."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from segcore.config.params import load_params
from segcore.pipeline import views
from segcore.pipeline.backbone import make_backbone
from segcore.pipeline.train import train_experiment
from segcore.pipeline.evaluate import evaluate_experiment
from segcore.pipeline import data as pipe_data
from segcore.data import fetch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nyud_stage")
    params = load_params(ROOT / "params.yaml")
    smoke = dataclasses.replace(params.train.smoke, schedules=dict.fromkeys(params.train.smoke.schedules, 2),
                                batch_size=1, val_every=2, checkpoint_every=2)
    params = dataclasses.replace(
        params, train=dataclasses.replace(params.train, smoke=smoke),
        net=dataclasses.replace(params.net, smoke=dataclasses.replace(params.net.smoke, width=0.0625)),
        backbone=dataclasses.replace(params.backbone, smoke=dataclasses.replace(
            params.backbone.smoke, iterations={"vgg16": 2, "alexnet": 2, "googlenet": 2}, batch_size=2, image_size=32)),
        twin=dataclasses.replace(params.twin, nyud=dataclasses.replace(params.twin.nyud, n_train=5, n_test=2,
                                                                       scale=0.125)))
    fetch.download_nyud(views.download(params, "nyud")["twin"], tmp / "nyud", tmp / "dl", progress=False)
    pipe_data.prepare("nyud", views.prepare(params, "nyud"), tmp / "nyud", tmp / "fcn")
    pipe_data.encode_hha(tmp / "fcn", tmp / "hha", workers=1)
    make_backbone(views.backbone(params, "vgg16"), "vgg16", tmp / "vgg16.pt", progress=False)
    return params, tmp


def _train(params, tmp, name, inits):
    return train_experiment(views.train(params, name), tmp / "fcn", tmp / "vgg16.pt", inits, tmp / name,
                                     tmp / name / "ck.pt", progress=False, hha_root=tmp / "hha")


def test_every_table4_net_trains_evaluates_and_fuses_its_streams(tiny):
    params, tmp = tiny
    for name in ("nyud-rgb", "nyud-rgbd", "nyud-hha"):
        _train(params, tmp, name, [tmp / "vgg16.pt"])
    rgbd = torch.load(tmp / "nyud-rgbd" / "model.pt", weights_only=True)
    assert rgbd["in_channels"] == 4 and rgbd["state_dict"]["conv1_1.weight"].shape[1] == 4
    hha = torch.load(tmp / "nyud-hha" / "model.pt", weights_only=True)
    assert hha["hha_preprocess"] is not None and hha["n_classes"] == 40
    _train(params, tmp, "nyud-rgbhha", [tmp / "nyud-rgb" / "model.pt", tmp / "nyud-hha" / "model.pt"])
    _train(params, tmp, "nyud-rgbhha16s", [tmp / "nyud-rgbhha" / "model.pt"])
    fused = torch.load(tmp / "nyud-rgbhha16s" / "model.pt", weights_only=True)
    assert "hha.score_pool4.weight" in fused["state_dict"]
    metrics = evaluate_experiment({**views.evaluate(params, "nyud-rgbhha16s"), "figure_images": 1}, tmp / "fcn", tmp / "nyud-rgbhha16s" / "model.pt",
                                           tmp / "m.json", tmp / "eval", hha_root=tmp / "hha")
    assert metrics["test"]["images"] == 2 and 0 <= metrics["test"]["mean_iu"] <= 100
    assert metrics["val"]["images"] == 1


def test_fusion_refuses_parents_in_the_wrong_places(tiny):
    params, tmp = tiny
    _train(params, tmp, "nyud-rgb", [tmp / "vgg16.pt"])
    with pytest.raises(ValueError, match="starts from 2 file"):
        _train(params, tmp, "nyud-rgbhha", [tmp / "nyud-rgb" / "model.pt"])
    with pytest.raises(ValueError, match="starts from nyud-hha, but .* holds 'nyud-rgb'"):
        _train(params, tmp, "nyud-rgbhha", [tmp / "nyud-rgb" / "model.pt", tmp / "nyud-rgb" / "model.pt"])
