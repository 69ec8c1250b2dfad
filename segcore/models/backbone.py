"""The backbone record: a convolutionalised ImageNet-style classifier plus the preprocessing it expects.

One record per classifier architecture of the paper's Table 1 (VGG16, AlexNet, GoogLeNet):
- paper profile: torchvision's ImageNet weights (downloaded into the torch cache, hash-checked), or
  for VGG16 the paper's own Caffe weights (VGG_ILSVRC_16_layers.caffemodel, segcore.models.caffe);
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
from segcore.data.download import RECORDED_CHECKSUMS, Archive, fetch, verify_or_record
from segcore.data.twin_voc import render_object_image
from segcore.models.alexnet import AlexNetClassifier, load_torchvision_alexnet
from segcore.models.caffe import caffe_vgg16
from segcore.models.modelfile import ModelFileError, load_plain, plain
from segcore.models.googlenet import (TORCHVISION_GOOGLENET_NORMALISATION, GoogLeNetClassifier,
                                      load_torchvision_googlenet)
from segcore.models.vgg import VGG16Classifier, load_torchvision_vgg16
from segcore.config.params import PretrainSmoke
from segcore.data.preprocess import CAFFE_VGG16, TORCHVISION_IMAGENET, Preprocess, fit_preprocess
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


# backbone.paper.weights naming the paper's own Caffe weights, and the architectures that have them.
# Only VGG16: Caffe's AlexNet (96 conv1 filters, LRN, grouped convs) and the paper's GoogLeNet are
# other nets than the torchvision ones our FCN-AlexNet and FCN-GoogLeNet are built on.
CAFFE = "caffe"
CAFFE_WEIGHTS: dict[str, Archive] = {
    "vgg16": Archive(
        name="vgg16_caffe",
        url="http://www.robots.ox.ac.uk/~vgg/software/very_deep/caffe/VGG_ILSVRC_16_layers.caffemodel",
        filename="VGG_ILSVRC_16_layers.caffemodel",
        # No checksum is published: fill md5 from a first real download. Until then the size (as public
        # directory listings of the file show it) is checked, and the first copy's size + sha256 are
        # pinned in segcore/data/recorded_checksums.json (verify_or_record) and enforced after.
        md5=None,
        size=553_432_081,
        extracts_to="VGG_ILSVRC_16_layers.caffemodel",
    ),
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


def caffe(arch: str, archives: Path | None, progress: bool = True, record_file: Path | None = None) -> dict:
    """The paper's Caffe ``arch`` (VGG16 only) as a backbone record, expecting BGR 0..255 minus the mean pixel.

    The caffemodel is taken from ``archives`` where it was placed by hand, else downloaded there;
    either way it is verified (size, then the sha256 pinned in ``record_file`` on first use).
    """
    get_arch(arch)
    if arch not in CAFFE_WEIGHTS:
        raise ConfigError(f"backbone.paper.weights = {CAFFE} exists for {', '.join(CAFFE_WEIGHTS)} only, "
                          f"not {arch} (its Caffe net differs from ours): use IMAGENET1K_V1")
    if archives is None:
        raise ConfigError(f"backbone.paper.weights = {CAFFE} needs the download folder: pass --archives")
    file = CAFFE_WEIGHTS[arch]
    path = fetch(file.url, Path(archives) / file.filename, md5=file.md5, size=file.size, sha256=file.sha256,
                 progress=progress)
    if file.md5 is None and file.sha256 is None:
        verify_or_record(path, record_file or RECORDED_CHECKSUMS)
    net = caffe_vgg16(path)
    return _record(arch, net, CAFFE_VGG16, 1.0, f"Caffe {file.filename} (BGR, 0-255, mean pixel)", {})


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
