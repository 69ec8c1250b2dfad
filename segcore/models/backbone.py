"""The backbone record: a convolutionalised ImageNet-style classifier plus the preprocessing it expects.

One record per classifier architecture of the paper's Table 1 (VGG16, AlexNet, GoogLeNet):
- paper profile: torchvision's ImageNet weights (downloaded into the torch cache, hash-checked);
- smoke profile: the scaled classifier pretrained on a synthetic classification task (single twin
  objects, 20 classes) as a stand-in for ImageNet.
Both go through the same surgery (segcore.models.surgery.convolutionalise), and the record carries the
input preprocessing its weights were trained with, so training never hard-codes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from segcore.config.schema import ConfigError
from segcore.core import atomic
from segcore.data.twin_voc import render_object_image
from segcore.models.alexnet import AlexNetClassifier, load_torchvision_alexnet
from segcore.models.modelfile import ModelFileError, load_plain, plain
from segcore.models.googlenet import (TORCHVISION_GOOGLENET_NORMALISATION, GoogLeNetClassifier,
                                      load_torchvision_googlenet)
from segcore.models.vgg import VGG16Classifier, load_torchvision_vgg16
from segcore.config.params import PretrainSmoke
from segcore.data.preprocess import TORCHVISION_IMAGENET, Preprocess, fit_preprocess
from segcore.models.surgery import convolutionalise

N_OBJECT_CLASSES = 20  # the VOC object classes; background is not a classification target


@dataclass(frozen=True)
class BackboneArch:
    """What it takes to make one architecture's backbone record."""

    classifier: Callable[..., nn.Module]                            # (n_classes=, width=) -> classifier
    load_torchvision: Callable[[Mapping[str, torch.Tensor]], nn.Module]  # full-width ImageNet classifier
    weights_enum: str                                               # torchvision.models.<enum>
    imagenet_preprocess: Preprocess                                 # what those weights expect
    min_image_size: int                                             # smallest classifier input


# torchvision's GoogLeNet weights are meant for transform_input=True: RGB in [0, 1], mean 0.5, std 0.5.
TORCHVISION_GOOGLENET = Preprocess("RGB", 1 / 255, TORCHVISION_GOOGLENET_NORMALISATION["mean"],
                                   TORCHVISION_GOOGLENET_NORMALISATION["std"])

ARCHS: dict[str, BackboneArch] = {
    "vgg16": BackboneArch(VGG16Classifier, load_torchvision_vgg16, "VGG16_Weights", TORCHVISION_IMAGENET, 32),
    "alexnet": BackboneArch(AlexNetClassifier, load_torchvision_alexnet, "AlexNet_Weights",
                            TORCHVISION_IMAGENET, 63),
    "googlenet": BackboneArch(GoogLeNetClassifier, load_torchvision_googlenet, "GoogLeNet_Weights",
                              TORCHVISION_GOOGLENET, 15),
}


def get_arch(name: str) -> BackboneArch:
    """The backbone architecture called ``name``; the error lists the known ones."""
    try:
        return ARCHS[name]
    except KeyError:
        raise ConfigError(f"unknown backbone {name!r}; allowed: {', '.join(ARCHS)}") from None


def _batch(rng: np.random.Generator, size: int, n: int) -> tuple[list[np.ndarray], np.ndarray]:
    labels = rng.integers(0, N_OBJECT_CLASSES, size=n)
    # render_object_image takes VOC class indices 1..20
    return [render_object_image(int(c) + 1, size, rng) for c in labels], labels


def pretrain_smoke(arch: str, width: float, spec: PretrainSmoke, seed: int, progress: bool = True) -> dict:
    """Train the scaled ``arch`` classifier on synthetic objects; returns the backbone record.

    Every architecture sees the same images in the same order (same seed), so differences between
    the three Table 1 backbones come from the architectures, not from their data.
    """
    minimum = get_arch(arch).min_image_size
    if spec.image_size < minimum:
        raise ConfigError(f"backbone.smoke.image_size = {spec.image_size} is too small for {arch}: "
                         f"it needs >= {minimum}")
    torch.manual_seed(seed)
    rng = np.random.Generator(np.random.PCG64(seed))
    fit_images, _ = _batch(rng, spec.image_size, 64)
    pre = fit_preprocess(fit_images)
    net = get_arch(arch).classifier(n_classes=N_OBJECT_CLASSES, width=width)
    if spec.optimizer == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    else:
        opt = torch.optim.SGD(net.parameters(), lr=spec.lr, momentum=spec.momentum,
                              weight_decay=spec.weight_decay)
    net.train()
    # disable=None: a bar on a terminal, nothing in a captured log
    bar = tqdm(range(spec.iterations[arch]), desc=f"pretrain {arch}", disable=None if progress else True,
               dynamic_ncols=True)
    for _ in bar:
        images, labels = _batch(rng, spec.image_size, spec.batch_size)
        x = torch.stack([pre(im) for im in images])  # (B, 3, S, S)
        loss = F.cross_entropy(net(x), torch.from_numpy(labels))
        if not torch.isfinite(loss):
            raise RuntimeError(f"{arch} pretraining loss is {loss.item()}: lower backbone.smoke.lr "
                               f"(now {spec.lr:g})")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    accuracy = _held_out_accuracy(net, pre, spec.image_size, seed)
    return _record(arch, net, pre, width, "synthetic twin-object classification",
                   {"held_out_accuracy": accuracy, "iterations": spec.iterations[arch]})


@torch.inference_mode()
def _held_out_accuracy(net: nn.Module, pre: Preprocess, size: int, seed: int) -> float:
    """Top-1 accuracy on 200 fresh objects (chance: 1/20), drawn from a generator the training never used."""
    rng = np.random.Generator(np.random.PCG64(seed + 10_000))
    images, labels = _batch(rng, size, 200)
    net.eval()
    logits = torch.cat([net(torch.stack([pre(im) for im in images[i:i + 50]])) for i in range(0, 200, 50)])
    return float((logits.argmax(1).numpy() == labels).mean())


def imagenet(arch: str, weights: str, progress: bool = True) -> dict:
    """torchvision's ImageNet ``arch`` (hash-checked download to the torch cache) as a backbone record."""
    import torchvision

    spec = get_arch(arch)
    enum = getattr(torchvision.models, spec.weights_enum)[weights]
    net = spec.load_torchvision(enum.get_state_dict(progress=progress, check_hash=True))
    return _record(arch, net, spec.imagenet_preprocess, 1.0, f"torchvision {spec.weights_enum}.{weights}", {})


def _record(arch: str, net: nn.Module, pre: Preprocess, width: float, source: str, extra: dict) -> dict:
    return {"arch": arch, "trunk": convolutionalise(net), "preprocess": pre.to_dict(), "width": width,
            "source": source, **extra}


def save_record(record: dict, path: Path) -> None:
    """Write atomically so an interrupted stage never leaves a half-written backbone."""
    atomic.torch_save(plain(record), path)


def load_record(path: Path, arch: str | None = None) -> dict:
    """Read a backbone record (of architecture ``arch`` when given); errors name the file and the problem."""
    record = load_plain(path, "backbone record")
    missing = {"arch", "trunk", "preprocess", "width", "source"} - set(record if isinstance(record, dict) else {})
    if missing:
        raise ModelFileError(f"{path} is not a backbone record: missing {sorted(missing)}; rerun the backbone stage")
    if arch is not None and record["arch"] != arch:
        raise ModelFileError(f"{path} holds the {record['arch']} backbone, expected {arch}: check --backbone")
    return record
