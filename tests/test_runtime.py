"""Runtime settings: params validation, device and precision resolution, rank shares, mixed-precision training."""

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from segcore.train.batches import StepBatches, step_draw, step_loader
from segcore.config.schema import ConfigError, load_yaml
from segcore.config.params import load_params
from segcore.train.runtime import Runtime, Shard, resolve
from segcore.report.tables import training_description

ROOT = Path(__file__).resolve().parents[1]


def _params_with(tmp_path, **runtime):
    p = load_yaml(ROOT / "params.yaml")
    p["runtime"].update(runtime)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    return tmp_path / "params.yaml"


@pytest.mark.parametrize("key, value, message", [
    ("device", "gpu", "runtime.device = 'gpu' is not allowed; use auto, cpu, cuda or cuda:N"),
    ("precision", "fp16", "runtime.precision = 'fp16' is not allowed; use one of: fp32, mixed"),
    ("workers", -1, "runtime.workers = -1 is out of range; it must be >= 0"),
    ("launch", "torchrun", "runtime.launch = 'torchrun' is not allowed; use python or torchrun --nproc_per_node=N"),
    ("launch", "python; rm -rf /", "runtime.launch = 'python; rm -rf /' is not allowed"),
])
def test_bad_runtime_params_get_one_line_naming_the_value(tmp_path, key, value, message):
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        load_params(_params_with(tmp_path, **{key: value}))


@pytest.mark.parametrize("launch", ["python", "torchrun --nproc_per_node=8",
                                    "torchrun --standalone --nproc-per-node=2",
                                    "torchrun --nnodes=2 --nproc_per_node=4 --rdzv-endpoint=node1:29500"])
def test_launchers_users_write_are_accepted(tmp_path, launch):
    assert load_params(_params_with(tmp_path, launch=launch)).runtime.launch == launch


def test_cpu_resolution():
    rt = resolve("cpu", "mixed", True, "auto", env={})
    assert (rt.device.type, rt.precision, rt.workers, rt.world, rt.main) == ("cpu", "bf16", 0, 1, True)
    assert rt.signature() == "cpu/bf16/nhwc/x1"
    assert resolve("auto", "fp32", False, 3, env={}).signature() == ("cuda" if torch.cuda.is_available() else "cpu") + \
        "/fp32/nchw/x1"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="runtime.device = cuda but no CUDA device is visible; use auto or cpu"):
            resolve("cuda", "fp32", True, 0, env={})


def test_rank_shares_split_every_minibatch_and_the_validation_set_exactly():
    ranks = [Runtime(torch.device("cpu"), rank=r, world=3) for r in range(3)]
    for step in (0, 7):
        shares = [list(StepBatches(50, 20, 0, step, step + 1, rt))[0] for rt in ranks]
        assert sorted(sum(shares, [])) == sorted(step_draw(0, step, 50, 20).tolist())
    assert step_draw(0, 3, 50, 20).tolist() == step_draw(0, 3, 50, 20).tolist() != step_draw(0, 4, 50, 20).tolist()
    items = list(range(10))
    assert sorted(x for rt in ranks for x in Shard(items, rt.rank, rt.world)) == items  # no padding, no repeats
    with pytest.raises(ValueError, match="batch_size = 2 is smaller than the 3 training processes"):
        step_loader(items, 2, 0, 0, 1, ranks[0])


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_fp32_weights(tmp_path, precision):
    from tests.test_train import Toy, _model, _spec
    from segcore.train.loop import train

    model = _model()
    before = model.score_fr.weight.detach().clone()
    last = train(model, Toy(), Toy(3), _spec(iterations=3), n_classes=2, checkpoint=tmp_path / "c.pt",
                 fingerprint="fp", runtime=Runtime(torch.device("cpu"), precision), progress=False)
    assert np.isfinite(last["mean_iu"])
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert not torch.equal(before, model.score_fr.weight)
    state = torch.load(tmp_path / "c.pt", weights_only=True)["scaler"]
    assert bool(state) == (precision == "fp16")  # fp16's loss scale is saved for a resume


def test_table_header_names_how_a_model_was_trained():
    one = {"device": "NVIDIA H100 80GB HBM3 (CUDA 13.0)", "precision": "bf16", "processes": 4}
    assert training_description(one) == "NVIDIA H100 80GB HBM3 (CUDA 13.0), 4 processes, bf16 mixed precision"
    assert training_description({**one, "processes": 1, "precision": "fp32"}).endswith(", 1 process, fp32")
    assert training_description(None).startswith("?")


def test_loader_workers_train_the_same_weights_as_the_main_process(tmp_path):
    """Each step's images are a function of (seed, step): workers loading ahead change nothing."""
    from tests.test_train import Toy, _model, _spec
    from segcore.train.loop import train

    weights = []
    for workers in (0, 2):
        model = _model()
        train(model, Toy(), Toy(3), _spec(iterations=3), n_classes=2, checkpoint=tmp_path / f"w{workers}.pt",
              fingerprint="fp", runtime=Runtime(torch.device("cpu"), workers=workers), progress=False)
        weights.append(model.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
