"""The backbone record: a convolutionalised ImageNet-style classifier plus the preprocessing it expects.

One record per classifier architecture of the paper's Table 1 (VGG16, AlexNet, GoogLeNet):
- paper profile: torchvision's ImageNet weights (downloaded into the torch cache, hash-checked), or
  the paper's own Caffe weights (segcore.models.caffe): VGG16's VGG_ILSVRC_16_layers.caffemodel
  (an option) and AlexNet's bvlc_reference_caffenet.caffemodel (the only one: our AlexNet is
  CaffeNet, which torchvision's AlexNet weights do not fit);
- smoke profile: the scaled classifier pretrained on a synthetic classification task (single twin
  objects, 20 classes) as a stand-in for ImageNet.
Both go through the same surgery (segcore.models.surgery.convolutionalise), and the record carries the
input preprocessing its weights were trained with, so training never hard-codes it.
"""

from __future__ import annotations

import json
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
from segcore.data.download import RECORDED_CHECKSUMS, Archive, DownloadError, fetch, file_digest, verify_or_record
from segcore.data.twin_voc import render_object_image
from segcore.models.alexnet import AlexNetClassifier
from segcore.models.caffe import caffe_alexnet, caffe_vgg16
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
    # torchvision's ImageNet weights, None where they do not fit our net (AlexNet: ours is CaffeNet)
    load_torchvision: Callable[[Mapping[str, torch.Tensor]], nn.Module] | None  # full-width classifier
    weights_enum: str | None                                        # torchvision.models.<enum>
    imagenet_preprocess: Preprocess | None                          # what those weights expect
    min_image_size: int                                             # smallest classifier input


# torchvision's GoogLeNet weights are meant for transform_input=True: RGB in [0, 1], mean 0.5, std 0.5.
TORCHVISION_GOOGLENET = Preprocess("RGB", 1 / 255, TORCHVISION_GOOGLENET_NORMALISATION["mean"],
                                   TORCHVISION_GOOGLENET_NORMALISATION["std"])

ARCHS: dict[str, BackboneArch] = {
    "vgg16": BackboneArch(VGG16Classifier, load_torchvision_vgg16, "VGG16_Weights", TORCHVISION_IMAGENET, 32),
    "alexnet": BackboneArch(AlexNetClassifier, None, None, None, 39),
    "googlenet": BackboneArch(GoogLeNetClassifier, load_torchvision_googlenet, "GoogLeNet_Weights",
                              TORCHVISION_GOOGLENET, 15),
}


# backbone.paper.weights naming the paper's own Caffe weights, and the architectures that have them.
# Not GoogLeNet: the 2014 Caffe GoogLeNet is another net than the torchvision one our FCN-GoogLeNet
# is built on (docs/faithfulness.md). Each is read by its CAFFE_READERS entry.
CAFFE = "caffe"
TORCHVISION = "IMAGENET1K_V1"
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
    # The paper's AlexNet: "the publicly available CaffeNet reference model" (not bvlc_alexnet, which
    # normalises before pooling). V1 layers, legacy 4-D shapes, about 233 MB; no size published.
    "alexnet": Archive(
        name="alexnet_caffe",
        url="http://dl.caffe.berkeleyvision.org/bvlc_reference_caffenet.caffemodel",
        filename="bvlc_reference_caffenet.caffemodel",
        md5=None,
        size=None,
        extracts_to="bvlc_reference_caffenet.caffemodel",
    ),
}
# The sha1 BVLC's model zoo publishes (models/bvlc_reference_caffenet/readme.md): vets the copy that is pinned.
CAFFE_SHA1: dict[str, str] = {"alexnet": "4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46"}
CAFFE_READERS: dict[str, Callable[[Path], nn.Module]] = {"vgg16": caffe_vgg16, "alexnet": caffe_alexnet}


def get_arch(name: str) -> BackboneArch:
    """The backbone architecture called ``name``; the error lists the known ones."""
    try:
        return ARCHS[name]
    except KeyError:
        raise ConfigError(f"unknown backbone {name!r}; allowed: {', '.join(ARCHS)}") from None


def paper_weights(arch: str) -> tuple[str, ...]:
    """The backbone.paper.weights values ``arch`` allows: torchvision's where they fit, caffe where it exists."""
    return ((TORCHVISION,) if get_arch(arch).weights_enum else ()) + ((CAFFE,) if arch in CAFFE_WEIGHTS else ())


def check_paper_weights(arch: str, weights: str) -> None:
    """Refuse, in one line naming the value and the allowed ones, weights that ``arch`` has no net for."""
    allowed = paper_weights(arch)
    if weights not in allowed:
        why = "no torchvision weights fit its layout" if weights == TORCHVISION else "no Caffe weights fit its layout"
        raise ConfigError(f"backbone.paper.weights.{arch} = {weights} is not allowed ({why}); "
                          f"use {' or '.join(allowed)}")


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

    check_paper_weights(arch, weights)
    spec = get_arch(arch)
    enum = getattr(torchvision.models, spec.weights_enum)[weights]
    net = spec.load_torchvision(enum.get_state_dict(progress=progress, check_hash=True))
    return _record(arch, net, spec.imagenet_preprocess, 1.0, f"torchvision {spec.weights_enum}.{weights}", {})


def caffe(arch: str, archives: Path | None, progress: bool = True, record_file: Path | None = None) -> dict:
    """The paper's Caffe ``arch`` (VGG16 or AlexNet) as a backbone record.

    Both nets expect BGR 0..255 minus the ILSVRC 2012 mean pixel: the record carries CAFFE_VGG16,
    (104.00699, 116.66877, 122.67892), the per-channel mean of Caffe's ImageNet mean image, which
    the reference voc-fcn-alexnet subtracts too (Caffe's classification example rounds it to
    104, 117, 123). The caffemodel is taken from ``archives`` where it was placed by hand, else
    downloaded there; either way it is verified: its size where known, and the sha256 pinned in
    ``record_file`` on first use, when the sha1 BVLC publishes (where there is one) vets it first.
    """
    check_paper_weights(arch, CAFFE)
    if archives is None:
        raise ConfigError(f"backbone.paper.weights = {CAFFE} needs the download folder: pass --archives")
    file = CAFFE_WEIGHTS[arch]
    path = fetch(file.url, Path(archives) / file.filename, md5=file.md5, size=file.size, sha256=file.sha256,
                 progress=progress)
    if file.md5 is None and file.sha256 is None:
        _pin(arch, path, Path(record_file or RECORDED_CHECKSUMS), progress)
    net = CAFFE_READERS[arch](path)
    return _record(arch, net, CAFFE_VGG16, 1.0, f"Caffe {file.filename} (BGR, 0-255, mean pixel)", {})


def _pin(arch: str, path: Path, record_file: Path, progress: bool) -> None:
    """The first copy is checked against the sha1 its publisher gives (where one is), then pinned; later
    runs check the pin (verify_or_record)."""
    pinned = record_file.exists() and path.name in json.loads(record_file.read_text())
    if not pinned and arch in CAFFE_SHA1 and (sha1 := file_digest(path, "sha1", progress=progress)) != CAFFE_SHA1[arch]:
        raise DownloadError(f"{path} is not the expected file (sha1 {sha1}, expected {CAFFE_SHA1[arch]}); "
                            f"delete it and rerun")
    verify_or_record(path, record_file, progress=progress)


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
