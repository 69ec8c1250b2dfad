"""Two processes (torchrun, gloo on this CPU) train and evaluate a tiny FCN to the metrics of one process.

The train stage runs as users run it: `python stages/train.py ...` against `torchrun
--nproc_per_node=2 stages/train.py ...`, then the evaluate stage scores both models. The same
minibatches are drawn and the same dropout masks used either way (segcore.train.batches); what may
differ is only the order of float additions: each rank sums its own images' gradients before
DistributedDataParallel adds the two sums. Stated tolerance: weights within 1e-5 (absolute; every
layer moves by more than 1e-4 in the run) and every metric within 0.01 points; measured, the
weights agree to 1.5e-8 and the metrics exactly.

The recipe is SGD, the paper's. Under Adam the two runs drift apart by about the learning rate:
Adam divides each gradient by its own running magnitude, so a weight whose gradient is float
noise (1e-9) takes a full-size step whose sign the summation order decides.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from segcore.config.schema import load_yaml
from segcore.report import results
from segcore.data.twin_voc import write_voc_twin
from segcore.config.params import load_params
from segcore.pipeline import views
from segcore.pipeline.backbone import make_backbone

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="this torch build has no gloo backend")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    p = load_yaml(ROOT / "params.yaml")
    p["net"]["smoke"]["width"] = 0.0625
    p["backbone"]["smoke"].update(iterations={"vgg16": 2, "alexnet": 2, "googlenet": 2}, batch_size=2, image_size=32)
    # 4 images per step shared out 2 + 2, dropout on. SGD as the paper recipe (see the module docstring).
    p["train"]["smoke"].update(optimizer="sgd", lr_multiplier=100.0, schedules={**p["train"]["smoke"]["schedules"], "voc": 12}, batch_size=4,
                               images_per_forward=1, val_every=6, checkpoint_every=6)
    (tmp / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    params = load_params(tmp / "params.yaml")
    write_voc_twin(tmp / "voc", seed=2, n_sbd_train=8, n_voc_train=2, n_voc_val=5, n_test=1, min_size=32,
                   max_size=40)
    make_backbone(views.backbone(params, "vgg16"), "vgg16", tmp / "bb.pt", progress=False)
    _run([sys.executable, str(ROOT / "stages/params.py"), "--params", str(tmp / "params.yaml"), "--out",
          str(tmp / "resolved")], tmp, dict(os.environ, PYTHONPATH=str(ROOT)))
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo", MASTER_ADDR="127.0.0.1",
               PYTHONPATH=str(ROOT))
    runs = {}
    for name, launch in (("one", [sys.executable]), ("two", TORCHRUN)):
        train = [*launch, str(ROOT / "stages/train.py"), "fcn32s", "--view", str(tmp / "resolved/train/fcn32s.json"),
                 "--data", str(tmp / "voc"), "--backbone", str(tmp / "bb.pt"), "--init", str(tmp / "bb.pt"),
                 "--out", str(tmp / name), "--checkpoint", str(tmp / f"ck-{name}" / "checkpoint.pt"), "--no-progress"]
        evaluate = [sys.executable, str(ROOT / "stages/evaluate.py"), "fcn32s", "--view", str(tmp / "resolved/evaluate/fcn32s.json"),
                    "--data", str(tmp / "voc"), "--model", str(tmp / name / "model.pt"),
                    "--metrics", str(tmp / f"{name}.json"), "--eval-dir", str(tmp / f"eval-{name}")]
        logs = [_run(cmd, tmp, env) for cmd in (train, evaluate)]
        runs[name] = {"log": logs[0], "record": torch.load(tmp / name / "model.pt", weights_only=True),
                      "metrics": results.read(tmp / f"{name}.json", tmp / f"eval-{name}" / results.RECORD),
                      "loss": (tmp / name / "live/plots/metrics/train/loss.tsv").read_text()}
    runs["backbone"] = tmp / "bb.pt"
    return runs


def _run(cmd: list[str], cwd: Path, env: dict) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def test_both_runs_record_how_they_were_trained(setup):
    assert setup["one"]["record"]["trained_on"]["processes"] == 1
    assert setup["two"]["record"]["trained_on"]["processes"] == 2
    assert "cpu/fp32/nhwc/x2" in setup["two"]["log"]
    assert setup["two"]["log"].count("fcn32s: validation mean IU") == 1  # rank 1 prints nothing and writes nothing


def test_two_processes_reach_the_weights_of_one(setup):
    one, two = (setup[k]["record"]["state_dict"] for k in ("one", "two"))
    assert one.keys() == two.keys()
    moved = [k for k in one if not torch.equal(one[k], two[k])]
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=0, atol=1e-5, msg=k)
    assert len(moved) < len(one)  # most tensors are bit-identical; some differ by float summation order
    start = torch.load(setup["backbone"], weights_only=True)["trunk"]
    moved_by = {k: float((one[k] - start[k]).abs().max()) for k in start if k in one}
    assert min(moved_by.values()) > 1e-4, moved_by  # training moved every layer 10x beyond the tolerance


def test_two_processes_give_the_metrics_of_one(setup):
    one, two = setup["one"], setup["two"]
    for key, value in one["record"]["val"].items():  # validation during training: matrices summed over ranks
        assert two["record"]["val"][key] == pytest.approx(value, abs=1e-4), key
    for key, value in one["metrics"]["seg11valid"].items():
        assert two["metrics"]["seg11valid"][key] == pytest.approx(value, abs=0.01), key
    losses = [[float(line.split("\t")[-1]) for line in run["loss"].splitlines()[1:]] for run in (one, two)]
    assert len(losses[0]) == 12 and losses[1] == pytest.approx(losses[0], rel=1e-5)
