"""U-Net in the pipeline: ISBI data stages, the weighted loss in the generic loop, held-out scoring."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from segcore.data import isbi
from segcore.data.isbi_dataset import IsbiDataset
from segcore.config.params import load_params
from segcore.train.loop import pixel_loss
from segcore.pipeline import views
from segcore.pipeline.train import train_experiment
from segcore.pipeline.evaluate import evaluate_experiment
from segcore.pipeline import data as pipe_data
from segcore.data import fetch

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_thread")


def test_weighted_pixel_loss_scales_each_pixel():
    logits, label = torch.randn(1, 2, 5, 6), torch.randint(0, 2, (1, 5, 6))
    label[0, 0, 0] = 255
    plain = pixel_loss(logits, label, normalise=True)
    assert pixel_loss(logits, label, True, torch.ones(1, 5, 6)).item() == pytest.approx(plain.item(), rel=1e-6)
    assert pixel_loss(logits, label, True, torch.full((1, 5, 6), 3.0)).item() == pytest.approx(3 * plain.item(),
                                                                                                rel=1e-6)
    w = torch.zeros(1, 5, 6)
    w[0, 2, 3] = 1.0  # only one pixel counts: its loss over the 29 valid pixels
    one = torch.nn.functional.cross_entropy(logits[:, :, 2, 3], label[:, 2, 3])
    assert pixel_loss(logits, label, True, w).item() == pytest.approx(one.item() / 29, rel=1e-5)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("unet")
    params = load_params(ROOT / "params.yaml")
    smoke = dataclasses.replace(params.unet.smoke, schedules={"isbi": 3, "voc": 3}, val_every=3, checkpoint_every=3, eval_tile=36)
    params = dataclasses.replace(
        params, unet=dataclasses.replace(params.unet, smoke=smoke),
        twin=dataclasses.replace(params.twin, isbi=dataclasses.replace(params.twin.isbi, n_slices=5, size=64)))
    fetch.download_isbi(views.download(params, "isbi")["twin"], tmp / "raw", tmp / "dl", progress=False)
    sizes = pipe_data.prepare("isbi", views.prepare(params, "isbi"), tmp / "raw", tmp / "fcn")
    return params, tmp, sizes


def test_prepare_holds_out_the_last_slices(tiny):
    params, tmp, sizes = tiny
    assert sizes == {"train": 4, "heldout": 1, "test": 5}
    _, _, held = isbi.read_prepared(tmp / "fcn", "heldout")
    assert held == [4]
    with pytest.raises(ValueError, match="unknown ISBI split 'test'"):
        isbi.read_prepared(tmp / "fcn", "test")


def test_training_items_are_augmented_and_weighted_deterministically(tiny):
    _, tmp, _ = tiny
    volume, labels, idx = isbi.read_prepared(tmp / "fcn", "train")
    ds = IsbiDataset(volume, labels, idx, train=True)
    x, target, name, weight = ds[7]
    assert x.shape == (1, 64, 64) and target.shape == weight.shape == (64, 64)
    assert set(target.unique().tolist()) <= {0, 1} and weight.min() > 0 and weight.max() > 2
    again = ds[7]
    assert torch.equal(x, again[0]) and torch.equal(weight, again[3])
    assert not torch.equal(x, ds[7 + len(idx)][0])  # same slice, another augmentation draw
    plain = IsbiDataset(volume, labels, idx, train=True, border_weights=False)[7][3]
    assert plain.max() < weight.max()  # without border weights only the class balance is left
    held = IsbiDataset(volume, labels, [4])
    assert len(held) == 1 and len(held[0]) == 3
    assert torch.equal(held[0][1], torch.from_numpy((labels[4] == isbi.CELL).astype(np.int64)))


def test_unet_trains_from_scratch_and_is_scored_like_the_challenge(tiny):
    params, tmp, _ = tiny
    train_experiment(views.train(params, "unet-isbi"), tmp / "fcn", None, [], tmp / "m", tmp / "m" / "ck.pt",
                              progress=False)
    record = torch.load(tmp / "m" / "model.pt", weights_only=True)
    assert record["arch"] == "unet" and record["in_channels"] == 1 and record["width"] == params.unet.smoke.width
    metrics = evaluate_experiment({**views.evaluate(params, "unet-isbi"), "figure_images": 1}, tmp / "fcn", tmp / "m" / "model.pt",
                                           tmp / "m.json", tmp / "eval")
    held = metrics["heldout"]
    for key in ("warping_error", "rand_error", "pixel_error"):
        assert 0.0 <= held[key] <= 1.0
    assert held["slices"] == 1 and held["heldout_slices"] == "4"
    test = isbi.read_tiff_stack(tmp / "eval" / "test-probabilities.tif")
    assert test.shape == (5, 64, 64)
    assert set(np.load(tmp / "eval" / "figure.npz")) == {"image", "label", "weight", "prob"}


def test_scratch_nets_refuse_init_files_and_fcns_need_a_backbone(tiny):
    params, tmp, _ = tiny
    with pytest.raises(ValueError, match="starts from 0 file"):
        train_experiment(views.train(params, "unet-isbi"), tmp / "fcn", None, [tmp / "x.pt"], tmp / "m2",
                                  tmp / "m2" / "ck.pt", progress=False)
