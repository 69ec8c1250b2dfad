"""The backbone record: a convolutionalised VGG16 trunk plus the preprocessing its weights expect.

Paper profile: torchvision's ImageNet VGG16 (downloaded into the torch cache, hash-checked).
Smoke profile: the scaled VGG16 classifier, fc6/fc7/fc8 included, pretrained on a synthetic
classification task (single twin objects, 20 classes) as a stand-in for ImageNet. Both go through
the same fc -> conv surgery (segcore.surgery.convolutionalise).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from segcore import atomic
from segcore.data.twin_voc import render_object_image
from segcore.models.vgg import VGG16Classifier
from segcore.params import PretrainSmoke
from segcore.preprocess import TORCHVISION_IMAGENET, Preprocess, fit_preprocess
from segcore.surgery import convolutionalise

N_OBJECT_CLASSES = 20  # the VOC object classes; background is not a classification target


def _batch(rng: np.random.Generator, size: int, n: int) -> tuple[list[np.ndarray], np.ndarray]:
    labels = rng.integers(0, N_OBJECT_CLASSES, size=n)
    # render_object_image takes VOC class indices 1..20
    return [render_object_image(int(c) + 1, size, rng) for c in labels], labels


def pretrain_smoke(width: float, spec: PretrainSmoke, seed: int, progress: bool = True) -> dict:
    """Train the scaled classifier on synthetic objects; returns the backbone record."""
    torch.manual_seed(seed)
    rng = np.random.Generator(np.random.PCG64(seed))
    fit_images, _ = _batch(rng, spec.image_size, 64)
    pre = fit_preprocess(fit_images)
    net = VGG16Classifier(n_classes=N_OBJECT_CLASSES, width=width)
    if spec.optimizer == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    else:
        opt = torch.optim.SGD(net.parameters(), lr=spec.lr, momentum=spec.momentum,
                              weight_decay=spec.weight_decay)
    net.train()
    # disable=None: a bar on a terminal, nothing in a captured log
    bar = tqdm(range(spec.iterations), desc="pretrain", disable=None if progress else True,
               dynamic_ncols=True)
    for _ in bar:
        images, labels = _batch(rng, spec.image_size, spec.batch_size)
        x = torch.stack([pre(im) for im in images])  # (B, 3, S, S)
        loss = F.cross_entropy(net(x), torch.from_numpy(labels))
        if not torch.isfinite(loss):
            raise RuntimeError(f"pretraining loss is {loss.item()}: lower backbone.smoke.lr (now {spec.lr:g})")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    accuracy = _held_out_accuracy(net, pre, spec.image_size, seed)
    return _record(net, pre, width, "synthetic twin-object classification", {"held_out_accuracy": accuracy})


@torch.inference_mode()
def _held_out_accuracy(net: VGG16Classifier, pre: Preprocess, size: int, seed: int) -> float:
    """Top-1 accuracy on 200 fresh objects (chance: 1/20), drawn from a generator the training never used."""
    rng = np.random.Generator(np.random.PCG64(seed + 10_000))
    images, labels = _batch(rng, size, 200)
    net.eval()
    logits = torch.cat([net(torch.stack([pre(im) for im in images[i:i + 50]])) for i in range(0, 200, 50)])
    return float((logits.argmax(1).numpy() == labels).mean())


def imagenet_vgg16(weights: str, progress: bool = True) -> dict:
    """torchvision's ImageNet VGG16 (hash-checked download to the torch cache) as a backbone record."""
    import torchvision

    enum = torchvision.models.VGG16_Weights[weights]
    state = enum.get_state_dict(progress=progress, check_hash=True)
    net = VGG16Classifier(n_classes=1000, width=1.0)
    net.load_torchvision_vgg16(state)
    return _record(net, TORCHVISION_IMAGENET, 1.0, f"torchvision VGG16_Weights.{weights}", {})


def _record(net: VGG16Classifier, pre: Preprocess, width: float, source: str, extra: dict) -> dict:
    return {"trunk": convolutionalise(net), "preprocess": pre.to_dict(), "width": width,
            "source": source, **extra}


def save_record(record: dict, path: Path) -> None:
    """Write atomically so an interrupted stage never leaves a half-written backbone."""
    atomic.torch_save(record, path)


def load_record(path: Path) -> dict:
    """Read a backbone record; the error names the file and what is missing."""
    try:
        record = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as err:
        raise ValueError(f"cannot read backbone record {path}: {err}") from None
    missing = {"trunk", "preprocess", "width", "source"} - set(record if isinstance(record, dict) else {})
    if missing:
        raise ValueError(f"{path} is not a backbone record: missing {sorted(missing)}")
    return record
