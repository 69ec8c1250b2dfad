"""Apply a model file to a user's images (``python -m segcore.segment``), as the FCN reference repository's
infer.py does: per image a label map (palette PNG of class ids) and a colour overlay with a legend.

Everything is checked before the first file is written: the model file, the device, the inputs the
net reads (RGB, grey, RGB + HHA, HHA alone), every image and HHA file, and the output names. A net
is fed exactly as the evaluate stage feeds it: its record's preprocessing (segcore.data.specs.Inputs),
whole images at native size, segcore.eval.predict.predict.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import nn

from segcore.core import atomic
from segcore.core.device import describe, pick_device, place
from segcore.core.errors import UserError
from segcore.data import voc
from segcore.data.isbi_dataset import normalise
from segcore.data.specs import DATASETS, Inputs
from segcore.eval.predict import predict
from segcore.models import heads
from segcore.models.modelfile import ModelFileError, load_model
from segcore.train.experiments import get_experiment

DEVICES = ("cpu", "cuda", "auto")
# Modalities whose nets read an HHA image (segcore.data.nyud_dataset builds their inputs the same way:
# RGB channels first, then HHA); "rgbd" reads a depth channel, which this command does not take.
HHA_MODALITIES = ("hha", "rgbhha")
DEPTH_MODALITIES = ("rgbd",)
ALPHA = 0.5  # weight of the class colour in the overlay; the image keeps the rest
# Legend panel beside the image: one row per present class, a colour swatch then "<id> <name>".
PAD, SWATCH, ROW = 6, 12, 16
PANEL, INK = (255, 255, 255), (0, 0, 0)


class SegmentError(UserError, ValueError):
    """An image, HHA file, option or output folder of the segment command is not usable."""


class _FirstHead(nn.Module):
    """A multi-head net (SIFT Flow: semantic + geometric) seen through its first head's logits only."""

    def __init__(self, net: nn.Module, n_classes: int | dict[str, int]) -> None:
        super().__init__()
        self.net, self.n_classes = net, n_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return heads.split_logits(self.net(x), self.n_classes)[0]  # (N, K_first, H, W)


@dataclass(frozen=True)
class Net:
    """A model file ready to apply: the net (first head only), what it reads and its class names."""

    model: nn.Module
    name: str                  # experiment, or released net's name, for messages
    dataset: str               # key of segcore.data.specs.DATASETS
    modality: str              # rgb, hha, rgbhha (NYUD), rgbd (refused)
    in_channels: int
    inputs: Inputs
    classes: tuple[str, ...]   # the first head's class names, index = class id


def data_set_of(record: dict, path: Path) -> tuple[str, str, str]:
    """(name, data set, modality) of a model file: a trained net's experiment, or a converted released
    net's own ``dataset`` and ``modality`` keys."""
    if "experiment" in record:
        exp = get_experiment(record["experiment"])
        return exp.name, exp.dataset, exp.modality
    if "dataset" not in record:
        raise ModelFileError(f"{path} names no data set: its record has neither 'experiment' (a trained net) "
                             "nor 'dataset' and 'modality' (a converted released net)")
    dataset, modality = record["dataset"], record.get("modality", "rgb")
    if dataset not in DATASETS:
        raise ModelFileError(f"{path}: unknown data set {dataset!r}; known: {', '.join(DATASETS)}")
    channels = DATASETS[dataset].channels
    allowed = tuple(channels) if isinstance(channels, dict) else ("rgb",)
    if modality not in allowed:
        raise ModelFileError(f"{path}: modality {modality!r} is not one of {dataset}'s: {', '.join(allowed)}")
    released = record.get("released")  # segcore.models.released: {"net": "voc-fcn8s", "file": ..., ...}
    name = released.get("net") if isinstance(released, dict) else None
    return str(name or record["arch"]), dataset, modality


def load_net(path: Path | str) -> Net:
    """The net of a model file (segcore.models.modelfile.load_model) with its inputs and class names."""
    path = Path(path)
    model, _, record = load_model(path)
    name, dataset, modality = data_set_of(record, path)
    spec = DATASETS[dataset]
    in_channels = int(record.get("in_channels", 3))
    if in_channels != spec.in_channels(modality):
        raise ModelFileError(f"{path}: {name} reads {in_channels} channels, but {dataset} {modality} "
                             f"inputs have {spec.in_channels(modality)}")
    inputs = Inputs.from_record(record)
    if modality in HHA_MODALITIES and inputs.hha is None:
        raise ModelFileError(f"{path}: {name} reads HHA but its record has no hha_preprocess")
    n_classes = record["n_classes"]
    if isinstance(n_classes, dict):  # the record's head names are the spec's (SIFT Flow: sem, geo)
        model = _FirstHead(model, n_classes)
    classes = tuple(next(iter(spec.heads.values())))
    if heads.sizes(n_classes)[0] != len(classes):
        raise ModelFileError(f"{path}: {name}'s first head has {heads.sizes(n_classes)[0]} classes, "
                             f"{dataset} has {len(classes)}")
    return Net(model, name, dataset, modality, in_channels, inputs, classes)


def check_inputs(net: Net, images: Sequence[Path], hha: Sequence[Path]) -> None:
    """Refuse, in one line, a call that does not give the net what it reads."""
    if not images:
        raise SegmentError("no images given; pass one or more image files")
    if net.modality in DEPTH_MODALITIES:
        raise SegmentError(f"{net.name} reads RGB + depth ({net.modality}, {net.in_channels} channels); this command "
                           "takes RGB, grey and HHA images only: use an RGB, HHA or RGB-HHA net")
    if net.modality in HHA_MODALITIES and not hha:
        raise SegmentError(f"{net.name} reads {'RGB + HHA' if net.modality == 'rgbhha' else 'HHA'} images "
                           f"({net.modality}): pass one --hha HHA_PNG per image")
    if net.modality not in HHA_MODALITIES and hha:
        raise SegmentError(f"{net.name} reads {net.modality} images only: --hha is for HHA and RGB-HHA nets")
    if hha and len(hha) != len(images):
        raise SegmentError(f"{len(images)} image(s) but {len(hha)} --hha file(s): pass one HHA_PNG per image")


def output_paths(images: Sequence[Path], out: Path) -> list[tuple[Path, Path]]:
    """(label map, overlay) path of each image: ``<out>/<stem>.png`` and ``<out>/<stem>_overlay.png``."""
    if out.exists() and not out.is_dir():
        raise SegmentError(f"--out {out} is a file; pass a folder (created if missing)")
    pairs = [(out / f"{p.stem}.png", out / f"{p.stem}_overlay.png") for p in images]
    names = [q.name for pair in pairs for q in pair]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise SegmentError(f"images would write the same output {clash[0]}: give images distinct file stems")
    written = {q.resolve() for pair in pairs for q in pair}
    for p in images:
        if p.resolve() in written:
            raise SegmentError(f"output would overwrite the input {p}: pass another --out folder")
    return pairs


def read_inputs(net: Net, image: Path, hha: Path | None) -> tuple[torch.Tensor, np.ndarray]:
    """The net's input (C, H, W) float32 for one image, and the image as uint8 (H, W, 3) RGB to draw on."""
    rgb = voc.read_image(image)  # any format and mode Pillow reads; one DataError line if it cannot
    if net.in_channels == 1:  # grey nets (ISBI U-Net): fed as segcore.eval.isbi feeds its slices
        grey = np.asarray(Image.fromarray(rgb).convert("L"), np.float64)
        return normalise(grey / 255, net.inputs.rgb), rgb
    parts = []
    if net.modality != "hha":
        parts.append(net.inputs.rgb(rgb))
    if hha is not None:
        hha_image = voc.read_image(hha)
        if hha_image.shape != rgb.shape:
            raise SegmentError(f"HHA {hha} is {hha_image.shape[1]} x {hha_image.shape[0]}, its image {image} "
                               f"{rgb.shape[1]} x {rgb.shape[0]}: they must be the same size")
        parts.append(net.inputs.hha(hha_image))
    return torch.cat(parts).float(), rgb


def present(label: np.ndarray, classes: Sequence[str]) -> list[tuple[int, str]]:
    """(class id, name) of every class in the label map, by id: the legend's rows."""
    return [(int(c), classes[int(c)]) for c in np.unique(label)]


def swatch_box(row: int, left: int = 0) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of legend row ``row``'s colour swatch, in a panel whose left edge is ``left``."""
    y0 = PAD + row * ROW + (ROW - SWATCH) // 2
    return left + PAD, y0, left + PAD + SWATCH - 1, y0 + SWATCH - 1


def overlay(rgb: np.ndarray, label: np.ndarray, entries: Sequence[tuple[int, str]]) -> Image.Image:
    """The image with each pixel's class colour blended in, at its size, and the legend panel to its right.

    The canvas is as tall as the image or as the legend, whichever is taller (panel colour below).
    """
    colours = np.array(voc.palette(), np.uint8).reshape(256, 3)
    blend = ((1 - ALPHA) * rgb + ALPHA * colours[label]).round().astype(np.uint8)  # (H, W, 3)
    font = ImageFont.load_default()
    texts = [f"{c} {name}" for c, name in entries]
    text_w = max(int(font.getlength(t)) for t in texts)
    h, w = label.shape
    canvas = Image.new("RGB", (w + 3 * PAD + SWATCH + text_w, max(h, 2 * PAD + ROW * len(entries))), PANEL)
    canvas.paste(Image.fromarray(blend), (0, 0))
    draw = ImageDraw.Draw(canvas)
    for row, ((c, _), text) in enumerate(zip(entries, texts)):
        box = swatch_box(row, w)
        draw.rectangle(box, fill=tuple(int(v) for v in colours[c]), outline=INK)
        draw.text((box[2] + 1 + PAD, box[1] + SWATCH // 2), text, fill=INK, font=font, anchor="lm")
    return canvas


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _device(requested: str) -> torch.device:
    if requested not in DEVICES:
        raise SegmentError(f"--device {requested!r} is not allowed; allowed: {', '.join(DEVICES)}")
    device = pick_device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SegmentError("--device cuda: torch sees no CUDA device here; allowed: cpu, auto")
    return device


def segment(model_path: Path | str, images: Sequence[Path | str], out: Path | str, *,
            hha: Sequence[Path | str] = (), device: str = "auto",
            echo: Callable[[str], None] = print) -> list[tuple[Path, Path]]:
    """Write ``<out>/<stem>.png`` (label map) and ``<out>/<stem>_overlay.png`` for every image; returns
    their paths. ``echo`` gets a line naming the model and device, then one line per image.

    Every input is read once before the first output is written, so a bad one stops the run with
    one UserError line and an untouched ``out``.
    """
    net = load_net(model_path)
    dev = _device(device)
    images, hha, out = [Path(p) for p in images], [Path(p) for p in hha], Path(out)
    check_inputs(net, images, hha)
    pairs = output_paths(images, out)
    pairs_in = list(zip(images, hha or [None] * len(images)))
    for image, hha_file in pairs_in:  # decoded here and again below: memory stays one image
        read_inputs(net, image, hha_file)
    model = place(net.model, dev)
    echo(f"model {model_path} ({net.name}: {DATASETS[net.dataset].title} {net.modality}, "
         f"{len(net.classes)} classes), device: {describe(dev)}")
    for (image, hha_file), (label_path, overlay_path) in zip(pairs_in, pairs):
        x, rgb = read_inputs(net, image, hha_file)
        label = predict(model, x, dev).numpy().astype(np.uint8)  # (H, W) class ids
        entries = present(label, net.classes)
        out.mkdir(parents=True, exist_ok=True)
        atomic.write_bytes(label_path, voc.encode_label_png(label, str(label_path), n_classes=len(net.classes)))
        atomic.write_bytes(overlay_path, _png(overlay(rgb, label, entries)))
        echo(f"{image} -> {label_path}, {overlay_path} ({label.shape[1]} x {label.shape[0]}): "
             + ", ".join(name for _, name in entries))
    return pairs
