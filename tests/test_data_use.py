"""Which training images the nets see: the papers trained NYUD and SIFT Flow on every training image.

The paper profile keeps them all and draws its validation curves from a fixed subset of them; the
smoke profile holds that subset out (a stated deviation). The table notes say which, from what the
model file recorded.
"""

from pathlib import Path

import numpy as np
import pytest
import yaml

from segcore.config.params import load_params
from segcore.data import nyud
from segcore.pipeline import views
from segcore.pipeline.train import training_data
from segcore.report.context import trained_on
from segcore.train.experiments import EXPERIMENTS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("hold_out", [True, False])
def test_split_trainval_holds_out_or_keeps_every_frame(hold_out):
    trainval = np.arange(1, 101)
    train, val = nyud.split_trainval(trainval, 0.2, seed=3, hold_out=hold_out)
    assert len(val) == 20 and set(val) <= set(trainval)
    if hold_out:
        assert not set(train) & set(val) and len(train) == 80
    else:  # as the papers: every training frame trains; the curves run on 20 of them
        assert list(train) == list(trainval)
    again = nyud.split_trainval(trainval, 0.2, seed=3, hold_out=not hold_out)[1]
    assert list(again) == list(val)  # the same validation subset either way: only training changes


@pytest.mark.parametrize("profile, held", [("smoke", True), ("paper", False)])
def test_prepare_views_resolve_hold_out_per_scale(tmp_path, profile, held):
    data = yaml.safe_load((ROOT / "params.yaml").read_text().replace("1e-4", "0.0001").replace("5e-4", "0.0005"))
    data.update(profile=profile, data="twin")
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    params = load_params(path)
    for dataset in ("nyud", "siftflow"):
        view = views.prepare(params, dataset)
        assert view["hold_out"] is held and 0 < view["val_fraction"] < 1


class _Split:
    def __init__(self, ids):
        self.ids = ids


def test_training_data_records_sizes_and_whether_validation_was_held_out():
    exp = EXPERIMENTS["nyud-rgb"]
    record = training_data(exp, _Split(["a", "b", "c", "d"]), _Split(["b"]))
    assert record == {"split": "train", "images": 4, "val_split": "val", "val_images": 1, "val_held_out": False}
    assert "trained on 4 train images (validation curves: 1 of them, not held out)" == trained_on(exp, record)
    record = training_data(exp, _Split(["a", "c", "d"]), _Split(["b"]))
    assert record["val_held_out"] is True
    assert trained_on(exp, record) == "trained on 3 train images (validation curves: 1 val images, held out)"
    assert trained_on(exp, None) == "trained on train"  # model files written before the record existed
