"""Fault injection: a full disk, crafted pickles, a truncated training image, YAML's special floats.

Each fault must end in one line naming the file or value (a UserError, printed by the stage entry
point with exit code 2), with nothing half-written left behind and no code of the user's run.
The bad-params corpus against a real `dvc repro` lives in tests/test_pipeline.py, which has a
built pipeline to protect.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from segcore.config.params import load_params
from segcore.config.schema import ConfigError
from segcore.core import atomic
from segcore.core.errors import UserError
from segcore.data.twin_voc import write_voc_twin
from segcore.data.voc import DataError
from segcore.models.backbone import load_record
from segcore.models.modelfile import ModelFileError, read_model_record
from segcore.pipeline import cli, views
from segcore.pipeline.backbone import make_backbone
from segcore.pipeline.train import train_experiment
from segcore.train.loop import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
FULL = Path("/dev/full")  # writes to it fail with ENOSPC, as on a full disk
needs_dev_full = pytest.mark.skipif(not FULL.exists(), reason="needs /dev/full (Linux)")


def _full_disk_at(path: Path) -> Path:
    """Make the temp name of ``path`` point at /dev/full: the next write to it gets ENOSPC from the kernel."""
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.symlink_to(FULL)
    return tmp


@needs_dev_full
@pytest.mark.parametrize("write", [
    lambda p: atomic.write_text(p, "x" * 10_000),
    lambda p: atomic.write_json(p, {"mean_iu": 1.0}),
    lambda p: atomic.torch_save({"w": torch.zeros(1000)}, p),
], ids=["text", "json", "torch"])
def test_a_full_disk_gives_one_line_and_leaves_no_temp_file(tmp_path, write):
    path = tmp_path / "out" / "file"
    path.parent.mkdir()
    path.write_text("previous")
    tmp = _full_disk_at(path)
    with pytest.raises(atomic.DiskFullError) as err:
        write(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and "MB free" in message
    assert not tmp.exists() and not tmp.is_symlink()  # the temp file is gone
    assert path.read_text() == "previous"  # and the old output untouched


@needs_dev_full
def test_a_full_disk_in_a_folder_build_removes_the_folder(tmp_path):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "old.json").write_text("{}")

    def build(tmp: Path) -> None:
        tmp.mkdir()
        (tmp / "pred.png").symlink_to(FULL)
        (tmp / "pred.png").write_bytes(b"\0" * 4096)

    with pytest.raises(atomic.DiskFullError, match=str(out)):
        atomic.build_dir(out, build)
    assert not (tmp_path / "eval.tmp").exists() and (out / "old.json").exists()


@needs_dev_full
def test_a_full_disk_stops_a_stage_with_one_line_and_exit_2(tmp_path, capsys):
    out = tmp_path / "device.json"
    _full_disk_at(out)
    import importlib.util

    spec = importlib.util.spec_from_file_location("stage_device", ROOT / "stages" / "device.py")
    stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage)
    assert cli.run(stage.main, ["--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: no space left on the device writing {out}")
    assert not out.exists() and not out.with_name("device.json.tmp").is_symlink()


class _Payload:
    """What a crafted file carries: unpickling it would run os.system."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("kind", ["model file", "backbone record", "checkpoint"])
def test_a_crafted_pickle_is_refused_before_it_runs(tmp_path, kind, capsys):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "crafted.pt"
    torch.save({"arch": "fcn32s", "state_dict": {}, "evil": _Payload(marker)}, path)
    if kind == "checkpoint":  # a checkpoint is not a pipeline output: refused, and training starts over
        assert load_checkpoint(path, "any") is None
        assert "is not a plain checkpoint" in capsys.readouterr().out
    else:
        with pytest.raises(ModelFileError, match=f"is not a plain {kind}") as err:
            (read_model_record if kind == "model file" else load_record)(path)
        assert "\n" not in str(err.value)
    assert not marker.exists()


@pytest.mark.parametrize("text, key", [
    ("lr: .nan", "lr"), ("lr: .inf", "lr"), ("lr: -.Inf", "lr"), ("lr: .NaN", "lr"),
])
def test_yaml_special_floats_get_the_bad_number_line(tmp_path, text, key):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in params.items() if k != "lr"}) + text + "\n")
    with pytest.raises(ConfigError) as err:
        load_params(path)
    assert str(err.value).startswith(f"{key} = ") and "must be a finite number" in str(err.value)


def test_a_truncated_image_in_a_training_split_names_the_file(tmp_path):
    params = load_params(ROOT / "params.yaml")
    smoke = dataclasses.replace(params.train.smoke, schedules={**params.train.smoke.schedules, "voc": 2},
                                batch_size=2, val_every=2, checkpoint_every=2)
    pre = dataclasses.replace(params.backbone.smoke, iterations={"vgg16": 1, "alexnet": 1, "googlenet": 1},
                              batch_size=2, image_size=32)
    params = dataclasses.replace(
        params, net=dataclasses.replace(params.net, smoke=dataclasses.replace(params.net.smoke, width=0.0625)),
        train=dataclasses.replace(params.train, smoke=smoke), backbone=dataclasses.replace(params.backbone, smoke=pre))
    write_voc_twin(tmp_path / "voc", seed=3, n_sbd_train=2, n_voc_train=2, n_voc_val=2, n_test=1, min_size=32,
                   max_size=40)
    for image in (tmp_path / "voc").rglob("img/*.jpg"):  # SBD's images: the training split of fcn32s
        image.write_bytes(image.read_bytes()[:200])
    make_backbone(views.backbone(params, "vgg16"), "vgg16", tmp_path / "bb.pt", progress=False)
    with pytest.raises(DataError, match=r"\.jpg is unreadable or corrupt") as err:
        train_experiment(views.train(params, "fcn32s"), tmp_path / "voc", tmp_path / "bb.pt", [tmp_path / "bb.pt"],
                         tmp_path / "m", tmp_path / "ck" / "c.pt", progress=False)
    assert isinstance(err.value, UserError) and not (tmp_path / "m").exists()
    shutil.rmtree(tmp_path / "voc")
