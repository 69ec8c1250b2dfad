"""The one training loop every FCN and U-Net experiment goes through (FCN paper Sec. 4.3).

Whole-image training: images differ in size, so a minibatch of ``batch_size`` images is one image
per forward pass with gradients accumulated (Caffe's iter_size); same-size images may share a
pass. SGD with momentum, weight decay on weights only, biases at ``bias_lr_mult`` x lr, void 255
ignored. Training images are drawn at random with replacement, as in the reference solvers, each
step's draw a function of the seed and the step (segcore.train.batches): on the CPU two runs give the
same weights bit for bit, a resumed run continues exactly where the killed one was, and N
processes train on the same minibatches as one."""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from segcore.core.errors import UserError
from segcore.core import atomic
from segcore.models import heads
from segcore.train.batches import micro_seed, positions, step_loader
from segcore.eval.predict import accumulate_heads
from segcore.eval.metrics import scores
from segcore.models.modelfile import ModelFileError, load_plain, plain
from segcore.models.registry import freeze_all_but
from segcore.train.progress import StepReport
from segcore.train.runtime import Runtime

VOID = 255


class TrainingError(UserError, RuntimeError):
    """Training cannot go on (a non-finite loss, an unusable checkpoint)."""


@dataclass(frozen=True)
class TrainSpec:
    """Everything that determines a training run, besides the data and the initial weights."""

    lr: float
    momentum: float             # SGD momentum; Adam keeps its default betas
    weight_decay: float
    bias_lr_mult: float
    batch_size: int
    iterations: int
    normalise_loss: bool
    val_every: int
    checkpoint_every: int
    seed: int
    optimizer: str = "sgd"      # "sgd" (the paper) or "adam" (smoke scale only, see params.yaml)
    images_per_forward: int = 1  # same-size images sharing one forward pass (the reference: 1)
    only: tuple[str, ...] = ()  # train only these layers (FCN-32s-fixed: ("score_fr",)); () = all


def pixel_loss(logits: torch.Tensor, label: torch.Tensor, normalise: bool,
               weight: torch.Tensor | None = None) -> torch.Tensor:
    """Multinomial logistic loss over the non-void pixels of (N, K, H, W) logits, summed over images.

    ``normalise`` divides each image's loss by its own count of valid pixels (our reading of the
    paper's lr 1e-4; the paper writes the loss as a plain sum over pixels), so a batch of N
    same-size images gives what N single-image passes give; otherwise the loss is summed, as the
    paper's formula and the reference "heavy" solvers, which then need lr around 1e-10.
    ``weight`` (N, H, W) multiplies each pixel's loss (U-Net's weight map, Eq. 1 and 2).
    """
    ce = F.cross_entropy(logits, label, ignore_index=VOID, reduction="none")  # (N, H, W), 0 at void
    if weight is not None:
        ce = ce * weight
    if not normalise:
        return ce.sum()
    valid = (label != VOID).flatten(1).sum(1).clamp(min=1)  # (N,)
    return (ce.flatten(1).sum(1) / valid).sum()


def heads_loss(logits: torch.Tensor, label: torch.Tensor, n_classes: int | dict[str, int],
               normalise: bool, weight: torch.Tensor | None = None) -> torch.Tensor:
    """The sum of every head's pixel loss (SIFT Flow: semantic + geometric, as the reference net)."""
    return sum(pixel_loss(part, plane, normalise, weight)
               for part, plane in zip(heads.split_logits(logits, n_classes), heads.split_labels(label, n_classes)))


def val_scores(hists: list[np.ndarray], n_classes: int | dict[str, int]) -> dict[str, float]:
    """Scores of the first head, plus the pixel accuracy of every other head (``<name>_pixel_acc``)."""
    extra = {f"{name}_pixel_acc": scores(h)["pixel_acc"] for name, h in zip(heads.names(n_classes)[1:], hists[1:])}
    return {**scores(hists[0]), **extra}


def make_optimizer(model: nn.Module, spec: TrainSpec) -> torch.optim.Optimizer:
    """Two groups: weights (lr, decay) and biases (bias_lr_mult x lr, no decay); SGD or Adam."""
    weights, biases = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (biases if name.endswith("bias") else weights).append(param)
    if not weights and not biases:
        raise TrainingError("the model has no trainable parameter")
    groups = [
        {"params": weights, "lr": spec.lr, "weight_decay": spec.weight_decay},
        {"params": biases, "lr": spec.lr * spec.bias_lr_mult, "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    if spec.optimizer == "adam":
        return torch.optim.Adam(groups)
    if spec.optimizer != "sgd":
        raise ValueError(f"optimizer {spec.optimizer!r} not allowed; use sgd or adam")
    return torch.optim.SGD(groups, momentum=spec.momentum)


def load_checkpoint(path: Path, fingerprint: str) -> dict | None:
    """The checkpoint at ``path`` if it belongs to this exact run (same fingerprint), else None."""
    if not path.exists():
        return None
    try:
        state = load_plain(path, "checkpoint")  # weights only: a crafted file never runs
    except ModelFileError as err:  # a torn, foreign or crafted file: say so, then start over
        print(f"ignoring checkpoint: {err}; training from the start")
        return None
    if state.get("fingerprint") != fingerprint:
        print(f"checkpoint {path} belongs to other params or inputs; training from the start")
        return None
    return state


def train(model: nn.Module, train_set, val_set, spec: TrainSpec, *, n_classes: int | dict[str, int],
          checkpoint: Path, fingerprint: str, live=None, runtime: Runtime | None = None,
          progress: bool = True, step_offset: int = 0) -> dict[str, float]:
    """Train ``model`` in place for ``spec.iterations`` optimizer steps; returns the last val scores.

    ``checkpoint`` is written every ``spec.checkpoint_every`` steps before the last and read back on start when its
    ``fingerprint`` matches (same params, same initial weights, same data), so a killed run
    resumes. ``live`` is a dvclive.Live (or None) that receives train/loss and val/mean_iu, at step
    ``step_offset + done``: a staged net's curves continue from its parent's.
    ``n_classes``: an int, or the heads of a multi-head net (segcore.models.heads), whose losses are summed.
    ``runtime``: device, precision and ranks (segcore.train.runtime); one CPU process by default. With
    several ranks each trains on its share of every minibatch, DistributedDataParallel sums the
    gradients, validation matrices are summed over ranks, and only rank 0 writes the checkpoint.
    """
    runtime = runtime or Runtime(torch.device("cpu"))
    runtime.place(model).train()
    if spec.only:
        freeze_all_but(model, spec.only)
    optimizer = make_optimizer(model, spec)
    scaler = runtime.grad_scaler()
    start, last = 0, {}
    state = load_checkpoint(checkpoint, fingerprint)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state.get("scaler") or {})
        start, last = state["step"], state["last"]
        if runtime.main:
            print(f"resuming from {checkpoint} at step {start}")
    net = runtime.wrap(model)
    batches = step_loader(train_set, spec.batch_size, spec.seed, start, spec.iterations, runtime)
    bar = tqdm(zip(range(start, spec.iterations), batches), initial=start, total=spec.iterations, desc="train",
               disable=None if progress and runtime.main else True, dynamic_ncols=True)
    report = StepReport(spec.iterations, start, device_type=runtime.device.type, enabled=progress and runtime.main,
                        n_params=sum(p.numel() for p in model.parameters()))
    for step, items in bar:
        loss = _train_step(net, optimizer, scaler, items, step, spec, n_classes, runtime)
        if not np.isfinite(loss):
            hint = "" if spec.normalise_loss else " or set normalise_loss: true"
            raise TrainingError(f"loss is {loss} at step {step + 1}: lower the learning rate "
                                f"(now {spec.lr:g}){hint}")
        bar.set_postfix(loss=f"{loss:.3f}")
        done = step + 1
        report.step(done, loss)
        if live is not None:
            live.step = step_offset + done
            live.log_metric("train/loss", loss)
        if done % spec.val_every == 0 or done == spec.iterations:
            last = validate(model, val_set, n_classes, runtime)
            if live is not None:
                live.log_metric("val/mean_iu", last["mean_iu"])
                live.make_summary()
        # Not after the last step: the caller saves the finished model, and a full-size checkpoint (weights
        # and momentum) is 1.6 GB that would take seconds to write and then be thrown away.
        if runtime.main and done % spec.checkpoint_every == 0 and done < spec.iterations:
            atomic.torch_save(plain({"fingerprint": fingerprint, "step": done, "model": model.state_dict(),
                               "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                               "last": last}), checkpoint)
    return last


def validate(model: nn.Module, val_set, n_classes: int | dict[str, int], runtime: Runtime) -> dict[str, float]:
    """Scores of ``val_set`` in fp32: each rank scores its share, the confusion matrices are summed.

    Why the sum of matrices, not of scores: means of per-rank scores are not the split's scores,
    and a reduction must happen on every rank's matrix, not on a copy one rank keeps.
    """
    hists, _ = accumulate_heads(model, runtime.shard(val_set), n_classes, runtime.device,
                                channels_last=runtime.channels_last)
    return val_scores([runtime.all_reduce_sum(h) for h in hists], n_classes)


def _train_step(net: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, items: list,
                step: int, spec: TrainSpec, n_classes: int | dict[str, int], runtime: Runtime) -> float:
    """One optimizer step on this rank's share ``items`` of the minibatch; returns the minibatch's mean loss.

    Images of one size share a forward pass (at most ``images_per_forward``): the same gradient
    as one pass per image, faster on small images. A 4th item element is a per-pixel loss weight.
    Each rank's loss is scaled by world / batch_size: DistributedDataParallel averages gradients
    over ranks, so the update is the paper's mean over the whole minibatch. Gradients are
    exchanged once per step, after the rank's last pass (no_sync before it).
    """
    optimizer.zero_grad(set_to_none=True)
    placed = list(zip(positions(spec.batch_size, runtime), items))
    groups = same_size_groups(placed, spec.images_per_forward, shape=lambda p: tuple(p[1][0].shape))
    total = 0.0
    for i, group in enumerate(groups):
        batch = [item for _, item in group]
        x = torch.stack([item[0] for item in batch])  # (n, C, H, W)
        label = torch.stack([item[1] for item in batch]).to(runtime.device, non_blocking=True)
        weight = (torch.stack([item[3] for item in batch]).to(runtime.device, non_blocking=True)
                  if len(batch[0]) > 3 else None)
        last_pass = i == len(groups) - 1
        with contextlib.nullcontext() if last_pass or runtime.world == 1 else net.no_sync():
            torch.manual_seed(micro_seed(spec.seed, step, group[0][0]))  # dropout masks by image place
            with runtime.autocast():
                logits = net(runtime.place(x))  # (n, K, H, W)
            loss = heads_loss(logits.float(), label, n_classes, spec.normalise_loss, weight) / spec.batch_size
            scaler.scale(loss * runtime.world).backward()
        total += loss.item()
    total = runtime.all_reduce_sum(total)  # every rank decides on the same minibatch loss
    if np.isfinite(total):  # never apply a non-finite update: the caller stops with an error
        scaler.step(optimizer)
        scaler.update()
    return total


def same_size_groups(items: list, limit: int, shape=lambda item: tuple(item[0].shape)) -> list[list]:
    """Items grouped by image size (first-seen order), each group at most ``limit`` long."""
    groups: dict[tuple, list[list]] = {}
    for item in items:
        runs = groups.setdefault(shape(item), [[]])
        if len(runs[-1]) == limit:
            runs.append([])
        runs[-1].append(item)
    return [g for runs in groups.values() for g in runs]


def spec_fingerprint(spec: TrainSpec, *parts: str) -> str:
    """A stable digest of the spec and the identities of its inputs (files' hashes, model name)."""
    import hashlib
    import json

    text = json.dumps({"spec": asdict(spec), "inputs": list(parts)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
