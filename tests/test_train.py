"""The training loop: determinism, resume after a kill, NaN stop, optimizer groups, fixed training."""

from pathlib import Path

import pytest
import torch

from segcore.models.registry import build_model
from segcore.train.runtime import Runtime
from segcore.train.loop import TrainingError, TrainSpec, make_optimizer, pixel_loss, train


CPU = Runtime(torch.device("cpu"))


class Toy(torch.utils.data.Dataset):
    """Images whose left half is class 1 and right half class 0, with a void column."""

    def __init__(self, n=6, size=24, explode_after=None):
        g = torch.Generator().manual_seed(1)
        self.items = []
        for i in range(n):
            x = torch.rand(3, size, size + i % 3, generator=g)
            y = torch.zeros(size, size + i % 3, dtype=torch.long)
            y[:, : size // 2] = 1
            x[0, :, : size // 2] += 1.0
            y[:, size // 2] = 255
            self.items.append((x, y, f"img{i}"))
        self.calls, self.explode_after = 0, explode_after

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        self.calls += 1
        if self.explode_after is not None and self.calls > self.explode_after:
            raise KeyboardInterrupt("simulated kill")
        return self.items[i]


def _spec(**kw):
    base = dict(lr=1e-2, momentum=0.9, weight_decay=5e-4, bias_lr_mult=2.0, batch_size=2, iterations=4,
                normalise_loss=True, val_every=2, checkpoint_every=2, seed=0)
    base.update(kw)
    return TrainSpec(**base)


def _model(seed=0):
    torch.manual_seed(seed)
    model = build_model("fcn32s", n_classes=2, width=1 / 16)
    torch.nn.init.normal_(model.score_fr.weight, std=0.01)
    return model


def _run(tmp_path: Path, name: str, spec: TrainSpec, data=None, model=None):
    model = model or _model()
    last = train(model, data or Toy(), Toy(3), spec, n_classes=2, checkpoint=tmp_path / f"{name}.pt",
                 fingerprint="fp", progress=False)
    return model, last


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_two_runs_give_identical_weights_bit_for_bit(tmp_path, optimizer):
    a, last_a = _run(tmp_path, "a", _spec(optimizer=optimizer))
    b, last_b = _run(tmp_path, "b", _spec(optimizer=optimizer))
    assert last_a == last_b
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    full, _ = _run(tmp_path, "full", _spec())
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, "killed", _spec(), data=Toy(explode_after=5))  # dies during step 3
    assert torch.load(tmp_path / "killed.pt", weights_only=True)["step"] == 2
    resumed, _ = _run(tmp_path, "killed", _spec())
    for (k, va), vb in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(va, vb), k


def test_checkpoint_of_other_params_is_not_resumed(tmp_path, capsys):
    _run(tmp_path, "x", _spec(iterations=3))  # leaves the step-2 checkpoint (none after the last step)
    model = _model()
    train(model, Toy(), Toy(3), _spec(iterations=3), n_classes=2, checkpoint=tmp_path / "x.pt",
          fingerprint="other", progress=False)
    assert "training from the start" in capsys.readouterr().out


def test_nan_loss_stops_with_a_clear_error_and_no_nonfinite_update(tmp_path):
    model = _model()
    with pytest.raises(TrainingError, match=r"loss is (nan|inf) at step \d+: lower the learning rate \(now 1e\+30\)$"):
        _run(tmp_path, "nan", _spec(lr=1e30, momentum=0.0), model=model)
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())


def test_biases_get_twice_the_rate_and_no_decay():
    model = _model()
    weights, biases = make_optimizer(model, _spec()).param_groups
    assert (weights["lr"], weights["weight_decay"]) == (1e-2, 5e-4)
    assert (biases["lr"], biases["weight_decay"]) == (2e-2, 0.0)
    assert all(p.requires_grad for g in (weights, biases) for p in g["params"])  # fixed deconvs left out


def test_adam_keeps_the_bias_groups_and_unknown_optimizers_are_refused():
    weights, biases = make_optimizer(_model(), _spec(optimizer="adam")).param_groups
    assert (biases["lr"], biases["weight_decay"]) == (2e-2, 0.0)
    with pytest.raises(ValueError, match="optimizer 'rmsprop' not allowed; use sgd or adam"):
        make_optimizer(_model(), _spec(optimizer="rmsprop"))


def test_fixed_training_changes_only_the_score_layer(tmp_path):
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _run(tmp_path, "fixed", _spec(only=("score_fr",)), model=model)
    changed = {k.split(".")[0] for k, v in model.state_dict().items() if not torch.equal(before[k], v)}
    assert changed == {"score_fr"}


def test_loss_ignores_void_and_normalises_by_valid_pixels():
    logits = torch.zeros(1, 2, 2, 2)
    label = torch.tensor([[[0, 1], [255, 255]]])
    assert pixel_loss(logits, label, normalise=True).item() == pytest.approx(torch.log(torch.tensor(2.0)).item())
    assert pixel_loss(logits, label, normalise=False).item() == pytest.approx(2 * torch.log(torch.tensor(2.0)).item())


def test_same_size_images_share_a_pass_and_give_the_same_gradient():
    from segcore.train.loop import _train_step, same_size_groups

    data = Toy(n=6)  # widths 24, 25, 26, 24, 25, 26
    groups = same_size_groups([data[i] for i in (0, 3, 1, 0, 0)], limit=2)
    assert [[item[2] for item in g] for g in groups] == [["img0", "img3"], ["img0", "img0"], ["img1"]]
    grads = []
    for per_pass in (1, 4):
        model = _model()
        model.drop6.p = model.drop7.p = 0.0  # dropout masks would differ between the two ways
        with torch.no_grad():
            model.score_fr.weight.normal_(0, 0.1)
        optimizer = make_optimizer(model, _spec(lr=0.0))
        items = [data[i] for i in (0, 3, 1, 0, 2, 5)]
        loss = _train_step(model, optimizer, CPU.grad_scaler(), items, 0, _spec(batch_size=6, images_per_forward=per_pass),
                           2, CPU)
        grads.append((loss, model.score_fr.weight.grad.clone()))
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-5)
    assert torch.allclose(grads[0][1], grads[1][1], rtol=1e-4, atol=1e-7)
