"""The train stage's resume contract: a matching checkpoint continues the run and its curves."""

import dataclasses
from pathlib import Path

import pytest
import torch

from segcore.data.twin_voc import write_voc_twin
from segcore.config.params import load_params
from segcore.pipeline import train as pipe_train
from segcore.pipeline import views
from segcore.pipeline.backbone import make_backbone
from segcore.pipeline.train import train_experiment

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stage")
    params = load_params(ROOT / "params.yaml")
    smoke = dataclasses.replace(params.train.smoke, schedules={**params.train.smoke.schedules, "voc": 4, "voc_skip": 4}, batch_size=1, val_every=2, checkpoint_every=2)
    pre = dataclasses.replace(params.backbone.smoke, iterations={"vgg16": 2, "alexnet": 2, "googlenet": 2}, batch_size=2, image_size=32)
    params = dataclasses.replace(
        params, net=dataclasses.replace(params.net, smoke=dataclasses.replace(params.net.smoke, width=0.0625)),
        train=dataclasses.replace(params.train, smoke=smoke),
        backbone=dataclasses.replace(params.backbone, smoke=pre))
    write_voc_twin(tmp / "voc", seed=1, n_sbd_train=4, n_voc_train=2, n_voc_val=4, n_test=1, min_size=32, max_size=40)
    make_backbone(views.backbone(params, "vgg16"), "vgg16", tmp / "bb.pt", progress=False)
    return params, tmp


def _train(params, tmp, out="m", net="fcn32s", init=None):
    """Train ``net`` into ``out``: from the backbone, or from the model file ``init`` of its parent."""
    return train_experiment(views.train(params, net), tmp / "voc", tmp / "bb.pt", [init or tmp / "bb.pt"], tmp / out,
                            tmp / "ck" / f"{out}.pt", progress=False)


def _curve(tmp, out="m"):
    return (tmp / out / "live/plots/metrics/val/mean_iu.tsv").read_text()


def _kill_at_fourth_step(params, tmp, out, monkeypatch, **net):
    """Train ``out`` and kill it during step 4: the step-2 checkpoint and the curves through step 3 stay."""
    from segcore.train import loop

    real_step = loop._train_step

    def killed(net, optimizer, scaler, items, step, *rest):
        if step == 3:
            raise KeyboardInterrupt  # as a kill: nothing after this step's start is written
        return real_step(net, optimizer, scaler, items, step, *rest)

    monkeypatch.setattr(loop, "_train_step", killed)
    with pytest.raises(KeyboardInterrupt):
        _train(params, tmp, out, **net)
    monkeypatch.setattr(loop, "_train_step", real_step)
    assert (tmp / "ck" / f"{out}.pt").exists()


def test_a_finished_run_is_whole_in_its_outputs_and_leaves_no_working_state(setup):
    """DVC deletes a stage's outputs before a rerun; a finished run's rerun gives the same files again."""
    params, tmp = setup
    first = _train(params, tmp)
    assert not (tmp / "ck" / "m.pt").exists() and not (tmp / "ck" / "m.live").exists()  # 1.6 GB at full size
    weights = torch.load(tmp / "m" / "model.pt", weights_only=True)["state_dict"]
    curve = _curve(tmp)
    assert curve.count("\n") == 3  # header + steps 2 and 4
    import shutil

    shutil.rmtree(tmp / "m")  # what `dvc repro` does to a non-persistent output before the command
    assert _train(params, tmp) == first
    again = torch.load(tmp / "m" / "model.pt", weights_only=True)
    assert all(torch.equal(weights[k], again["state_dict"][k]) for k in weights)
    assert _curve(tmp) == curve
    assert again["trained_on"]["processes"] == 1 and again["trained_on"]["device"].startswith("CPU: ")


def test_checkpoint_without_its_curves_trains_from_the_start(setup, capsys, monkeypatch):
    params, tmp = setup
    _train(params, tmp, "n")
    curve = _curve(tmp, "n")
    import shutil

    for gone in ("n.live/plots", "n.live"):  # curves lost (a stage killed early, or removed by hand)
        _kill_at_fourth_step(params, tmp, "n", monkeypatch)
        shutil.rmtree(tmp / "ck" / gone)
        capsys.readouterr()
        _train(params, tmp, "n")
        assert "training from the start" in capsys.readouterr().out
        assert _curve(tmp, "n") == curve


def test_checkpoint_written_by_other_code_is_not_resumed(setup, capsys, monkeypatch):
    params, tmp = setup
    _kill_at_fourth_step(params, tmp, "c", monkeypatch)
    monkeypatch.setattr(pipe_train, "code_digest", lambda: "other code")
    capsys.readouterr()
    _train(params, tmp, "c")
    assert "belongs to other params or inputs; training from the start" in capsys.readouterr().out


def _live_files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_killed_and_resumed_run_equals_an_uninterrupted_one(setup, monkeypatch, capsys):
    """Killed after step 3 (checkpoint at step 2, curves logged through step 3), then rerun."""
    params, tmp = setup
    _train(params, tmp, "straight")
    _kill_at_fourth_step(params, tmp, "resumed", monkeypatch)
    loss = (tmp / "ck" / "resumed.live" / "plots/metrics/train/loss.tsv").read_text()
    assert [line.split("\t")[0] for line in loss.splitlines()] == ["step", "1", "2", "3"]
    capsys.readouterr()
    resumed_scores = _train(params, tmp, "resumed")
    assert "at step 2" in capsys.readouterr().out  # it resumed, rather than starting over
    assert resumed_scores == _train(params, tmp, "straight")
    straight = torch.load(tmp / "straight" / "model.pt", weights_only=True)
    resumed = torch.load(tmp / "resumed" / "model.pt", weights_only=True)
    assert all(torch.equal(straight["state_dict"][k], resumed["state_dict"][k]) for k in straight["state_dict"])
    assert straight["val"] == resumed["val"]
    assert _live_files(tmp / "resumed" / "live") == _live_files(tmp / "straight" / "live")  # curves, byte for byte


def _steps(folder, curve):
    return [line.split("\t")[0] for line in (folder / "plots/metrics" / curve).read_text().splitlines()[1:]]


def test_a_staged_net_continues_its_parents_step_axis_through_a_resume(setup, monkeypatch, capsys):
    """FCN-16s starts from a 4-step FCN-32s: its curves (what `dvc plots` draws) run from step 5, and a
    run killed after its 3rd step is cut back to its checkpoint on that same axis, then completed."""
    params, tmp = setup
    _train(params, tmp, "p32")
    assert torch.load(tmp / "p32" / "model.pt", weights_only=True)[pipe_train.LAST_STEP] == 4
    parent = {"net": "fcn16s", "init": tmp / "p32" / "model.pt"}
    _train(params, tmp, "s16", **parent)
    assert _steps(tmp / "s16" / "live", "train/loss.tsv") == ["5", "6", "7", "8"]
    assert _steps(tmp / "s16" / "live", "val/mean_iu.tsv") == ["6", "8"]
    assert torch.load(tmp / "s16" / "model.pt", weights_only=True)[pipe_train.LAST_STEP] == 8
    _kill_at_fourth_step(params, tmp, "r16", monkeypatch, **parent)
    assert _steps(tmp / "ck" / "r16.live", "train/loss.tsv") == ["5", "6", "7"]
    capsys.readouterr()
    _train(params, tmp, "r16", **parent)
    assert "at step 2" in capsys.readouterr().out
    assert _live_files(tmp / "r16" / "live") == _live_files(tmp / "s16" / "live")
