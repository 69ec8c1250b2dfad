"""The training stage's last line says how `lr` became the rate it trained at: after
`dvc exp run -S lr=1e-5` the smoke profile trains at 1e-4, and the line must not read as the value ignored."""

import dataclasses
import shlex
from pathlib import Path

import pytest

from segcore.config.params import load_params
from segcore.pipeline import views
from segcore.pipeline.train import lr_text
from test_readme import readme_command

ROOT = Path(__file__).resolve().parents[1]
SMOKE = {"lr": 1e-5, "scale": "smoke", "optimizer": "adam", "lr_multiplier": 10.0, "backbone": "vgg16",
         "net_lr_scale": 1.0, "stage": 0, "stage_lr_factor": 0.5}


def test_the_smoke_multiplier_is_named():
    assert lr_text(1e-4, SMOKE) == "0.0001 (= lr 1e-05 x 10, the smoke profile's multiplier for adam)"


def test_skip_stages_and_per_net_scales_are_named_and_unit_factors_left_out():
    assert lr_text(2.5e-5, {**SMOKE, "stage": 2}) == (
        "2.5e-05 (= lr 1e-05 x 10, the smoke profile's multiplier for adam, x 0.25 for skip stage 2)")
    paper = {**SMOKE, "lr": 1e-4, "scale": "paper", "optimizer": "sgd", "lr_multiplier": 1.0, "stage_lr_factor": 0.01}
    assert lr_text(1e-4, paper) == "0.0001"  # the paper's rate as it is: nothing to explain
    alexnet = {**paper, "backbone": "alexnet", "net_lr_scale": 10.0}
    assert lr_text(1e-3, alexnet) == "0.001 (= lr 0.0001 x 10 for alexnet)"
    assert lr_text(1e-6, {**paper, "stage": 1}) == "1e-06 (= lr 0.0001 x 0.01 for skip stage 1)"


def test_a_rate_read_as_it_is_or_an_origin_that_does_not_add_up_prints_the_rate_alone():
    assert lr_text(1e-3, {"key": "unet.smoke.lr"}) == "0.001 (unet.smoke.lr)"
    assert lr_text(1e-4, None) == "0.0001"
    assert lr_text(3e-4, SMOKE) == "0.0003"  # not 1e-5 x 10: never a wrong explanation


@pytest.mark.parametrize("name", ["fcn32s", "fcn8s", "t1-alexnet", "unet-isbi"])
def test_every_train_view_says_how_its_rate_was_made(name):
    """The contract with segcore.pipeline.views.train: its ``lr_origin`` explains its ``spec.lr``; and the
    line the README quotes for its experiment is the one FCN-32s prints."""
    run = shlex.split(readme_command("dvc exp run -S"))
    key, value = run[run.index("-S") + 1].split("=")
    params = dataclasses.replace(load_params(ROOT / "params.yaml"), **{key: float(value)})
    view = views.train(params, name)
    text = lr_text(view["spec"]["lr"], view["lr_origin"])
    assert text.startswith(f"{view['spec']['lr']:g} (")
    if name == "fcn32s" and params.scale_name == "smoke":
        assert f"`at lr {text}`" in (ROOT / "README.md").read_text()
