"""The summed loss (the FCN paper's formula, normalise_loss: false) against our per-pixel normalisation.

The paper writes the loss as a sum over pixels (Sec. 3); dividing each image's loss by its valid
pixels is our interpretation (params.yaml). These tests pin what a user switching between the two
relies on: the sum is the normalised loss times the valid pixels, so SGD on the sum at lr / N
takes the same step as SGD on the normalised loss at lr, and params.yaml can select the sum.
"""

from pathlib import Path

import pytest
import torch
import yaml

from segcore.models.registry import build_model
from segcore.train.loop import VOID, TrainSpec, heads_loss, train

ROOT = Path(__file__).resolve().parents[1]


def _logits_and_label(seed=0, n_classes=3, size=(2, 9, 11)):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(size[0], n_classes, *size[1:], generator=g)
    label = torch.randint(0, n_classes, size, generator=g)
    label[0, :, 4] = VOID  # a void column in one image, a void block in the other
    label[1, 2:6, 3:8] = VOID
    return logits, label


@pytest.mark.parametrize("weighted", [False, True])
def test_summed_loss_is_the_normalised_loss_times_the_valid_pixels(weighted):
    logits, label = _logits_and_label()
    weight = torch.rand(label.shape, generator=torch.Generator().manual_seed(1)) + 0.5 if weighted else None
    for i in range(2):  # per image: normalisation divides each image by its own valid count
        x, y = logits[i:i + 1], label[i:i + 1]
        w = weight[i:i + 1] if weighted else None
        n_valid = int((y != VOID).sum())
        assert n_valid < y.numel()  # void pixels are present and must not count
        summed = heads_loss(x, y, 3, normalise=False, weight=w)
        normalised = heads_loss(x, y, 3, normalise=True, weight=w)
        assert summed.item() == pytest.approx(n_valid * normalised.item(), rel=1e-5)


def test_void_pixels_add_nothing_to_the_summed_loss():
    logits, label = _logits_and_label()
    wild = logits.clone()
    wild[label.unsqueeze(1).expand_as(wild) == VOID] = 1e4  # absurd scores where the label is void
    assert heads_loss(wild, label, 3, normalise=False).item() == pytest.approx(
        heads_loss(logits, label, 3, normalise=False).item(), rel=1e-6)


class OneImage(torch.utils.data.Dataset):
    """A single image with void pixels: every training step draws it, so N is known."""

    def __init__(self):
        g = torch.Generator().manual_seed(2)
        self.x = torch.rand(3, 20, 22, generator=g)
        self.y = torch.randint(0, 2, (20, 22), generator=g)
        self.y[:, 7] = VOID
        self.y[3:5, :] = VOID

    def __len__(self):
        return 1

    def __getitem__(self, i):
        return [(self.x, self.y, "img0")][i]  # IndexError past the end: plain iteration stops

    @property
    def valid(self) -> int:
        return int((self.y != VOID).sum())


def _first_step(tmp_path: Path, name: str, lr: float, normalise: bool) -> dict[str, torch.Tensor]:
    """Weight change of one training-loop step (SGD, momentum 0, no decay: the step is lr x gradient)."""
    torch.manual_seed(0)
    model = build_model("fcn32s", n_classes=2, width=1 / 16)
    torch.nn.init.normal_(model.score_fr.weight, std=0.05)  # zero scores would stop the trunk's gradient
    before = {k: v.clone() for k, v in model.state_dict().items()}
    spec = TrainSpec(lr=lr, momentum=0.0, weight_decay=0.0, bias_lr_mult=2.0, batch_size=1, iterations=1,
                     normalise_loss=normalise, val_every=1, checkpoint_every=1, seed=0)
    train(model, OneImage(), OneImage(), spec, n_classes=2, checkpoint=tmp_path / f"{name}.pt",
          fingerprint=name, progress=False)
    return {k: v - before[k] for k, v in model.state_dict().items() if v.is_floating_point()}


def test_summed_loss_at_lr_over_n_steps_like_the_normalised_loss_at_lr(tmp_path):
    lr, n = 1e-2, OneImage().valid
    normalised = _first_step(tmp_path, "norm", lr, normalise=True)
    summed = _first_step(tmp_path, "sum", lr / n, normalise=False)
    summed_same_lr = _first_step(tmp_path, "sum_lr", lr, normalise=False)
    moved = [k for k, d in normalised.items() if d.abs().max() > 0]
    assert "score_fr.weight" in moved and "conv1_1.weight" in moved  # the step reaches the trunk
    for k in moved:
        # Tolerance relative to the layer's largest step: a step is read back as (w + step) - w in
        # float32, which rounds small entries; a wrong scale would be off by a factor near N.
        scale = normalised[k].abs().max().item()
        torch.testing.assert_close(summed[k], normalised[k], rtol=1e-3, atol=2e-3 * scale, msg=k)
        # ... and at the same lr the sum steps N times as far: the lr must follow the loss.
        torch.testing.assert_close(summed_same_lr[k], n * normalised[k], rtol=1e-3, atol=2e-3 * n * scale, msg=k)


def test_params_yaml_selects_the_summed_loss(tmp_path):
    from segcore.config.params import load_params
    from segcore.pipeline.views import train_spec
    from segcore.train.experiments import EXPERIMENTS

    data = yaml.safe_load((ROOT / "params.yaml").read_text().replace("1e-4", "0.0001").replace("5e-4", "0.0005"))
    assert data["train"]["paper"]["normalise_loss"] is True  # our interpretation is the default
    data["profile"] = "paper"
    data["train"]["paper"]["normalise_loss"] = False
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    assert train_spec(load_params(path), EXPERIMENTS["fcn32s"]).normalise_loss is False
