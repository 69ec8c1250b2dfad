"""The FCN authors' released nets (fcn.berkeleyvision.org): a catalogue, and a strict loader that
turns one of their .caffemodel files into a segcore model file that the evaluate stage scores as is.

The loader is generic: it builds the registry net (on the meta device), derives from that net the
Caffe layout it expects (layer name -> blob shapes, in Caffe's conventions), and compares the file
against it. Only a small per-family name map is typed in (`CAFFE_NAMES`): the VGG, AlexNet and SIFT
Flow nets already use the reference's layer names, and the NYUD colour-HHA fusion appends its
stream to every name (conv1_1color, score_frhha) and shares one upscore between the streams.

Caffe conventions: a convolution holds (O, I / groups, k, k) and (O,); a deconvolution without
bias is dense (C, C, k, k), and the reference's are fixed bilinear filters on the diagonal (channel
i -> i), zero elsewhere (surgery.interp), which our FixedBilinearUpsampling stores as its diagonal
(C, 1, k, k); the at-once net's Scale layers hold one fixed factor per channel, (C,), which FCN
applies as the constants ATONCE_POOL4_SCALE / ATONCE_POOL3_SCALE, so they are checked, not loaded.
Every refusal is one ModelFileError line naming the file, the layer and what was expected.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from segcore.config.schema import ConfigError
from segcore.data.preprocess import (
    CAFFE_NYUD_COLOR,
    CAFFE_NYUD_HHA,
    CAFFE_SIFTFLOW,
    CAFFE_VGG16,
    Preprocess,
)
from segcore.data.specs import Inputs
from segcore.models.caffe import read_caffemodel
from segcore.models.fcn import ATONCE_POOL3_SCALE, ATONCE_POOL4_SCALE
from segcore.models.modelfile import ModelFileError, save_model
from segcore.models.registry import build_model
from segcore.models.upsampling import FixedBilinearUpsampling, bilinear_ramp

URL_BASE = "http://dl.caffe.berkeleyvision.org/"


@dataclass(frozen=True)
class ReleasedNet:
    """One released .caffemodel: which registry net it fits, and how its inputs were prepared."""

    name: str                        # "voc-fcn8s": the reference repository's folder
    file: str                        # "fcn8s-heavy-pascal.caffemodel"
    arch: str                        # registry key (segcore.models.registry.MODELS)
    n_classes: int | dict[str, int]  # 21, 40, or {"sem": 33, "geo": 3}
    dataset: str                     # key of segcore.data.specs.DATASETS
    modality: str                    # "rgb", "hha" or "rgbhha"
    split: str                       # the split its reference score is on (segcore.train.experiments names)
    reference: float | None          # published mean IU (percent); None where none is published
    reference_note: str              # where that number comes from
    in_channels: int                 # 3, or 6 for colour + HHA
    preprocess: Preprocess           # the RGB stream's input convention (an HHA-only net reads none)
    hha_preprocess: Preprocess | None = None

    @property
    def url(self) -> str:
        """Where the authors serve the file (no checksum is published)."""
        return URL_BASE + self.file


def _voc_note(port: float | None) -> str:
    note = "README of the reference repository (fcn.berkeleyvision.org), seg11valid"
    return note + (f"; pytorch-fcn 1.7.0's README measured {port:.2f} from the same file" if port else "")


_NYUD_NOTE = ("none in the reference README; the CVPR tables score earlier, non-heavy nets "
              "(RGB 29.2, HHA 24.2, RGB-HHA 32.8 mean IU)")
_SIFT_NOTE = ("none in the reference README ('semantic evaluation not quite right ... missing classes'); "
              "CVPR Table 5 scores an earlier FCN-16s (39.5 mean IU)")
_SIFT = {"sem": 33, "geo": 3}


def _voc(variant: str, file: str, reference: float, port: float | None, arch: str | None = None) -> ReleasedNet:
    return ReleasedNet(f"voc-{variant}", file, arch or variant, 21, "voc", "rgb", "seg11valid", reference,
                       _voc_note(port), 3, CAFFE_VGG16)


def _nyud(modality: str, file: str) -> ReleasedNet:
    arch, channels = ("fcn32s-rgbhha", 6) if modality == "color-hha" else ("fcn32s", 3)
    ours = {"color": "rgb", "hha": "hha", "color-hha": "rgbhha"}[modality]
    hha = CAFFE_NYUD_HHA if "hha" in modality else None
    return ReleasedNet(f"nyud-fcn32s-{modality}", file, arch, 40, "nyud", ours, "test", None, _NYUD_NOTE,
                       channels, CAFFE_NYUD_COLOR, hha)


def _sift(variant: str) -> ReleasedNet:
    return ReleasedNet(f"siftflow-{variant}", f"siftflow-{variant}-heavy.caffemodel", variant, _SIFT, "siftflow",
                       "rgb", "test", None, _SIFT_NOTE, 3, CAFFE_SIFTFLOW)


RELEASED: dict[str, ReleasedNet] = {
    n.name: n
    for n in (
        _voc("fcn32s", "fcn32s-heavy-pascal.caffemodel", 63.6, 63.63),
        _voc("fcn16s", "fcn16s-heavy-pascal.caffemodel", 65.0, 65.01),
        _voc("fcn8s", "fcn8s-heavy-pascal.caffemodel", 65.5, 65.51),
        _voc("fcn8s-atonce", "fcn8s-atonce-pascal.caffemodel", 65.4, 65.40),
        _voc("fcn-alexnet", "fcn-alexnet-pascal.caffemodel", 48.0, None),
        _nyud("color", "nyud-fcn32s-color-heavy.caffemodel"),
        _nyud("hha", "nyud-fcn32s-hha-heavy.caffemodel"),
        _nyud("color-hha", "nyud-fcn32s-color-hha-heavy.caffemodel"),
        *(_sift(v) for v in ("fcn32s", "fcn16s", "fcn8s")),
    )
}


def released_net(name: str) -> ReleasedNet:
    """The catalogue entry ``name``; an unknown one raises ModelFileError listing the known ones."""
    try:
        return RELEASED[name]
    except KeyError:
        raise ModelFileError(f"unknown released net {name!r}; allowed: {', '.join(RELEASED)}") from None


# --- the layout a net expects ------------------------------------------------------------------


def _fusion_name(module: str) -> str:
    """rgb.conv1_1 -> conv1_1color, hha.score_fr -> score_frhha; both upscores -> the one upscore."""
    stream, _, layer = module.partition(".")
    return layer if layer == "upscore" else layer + {"rgb": "color", "hha": "hha"}[stream]


# Our module name -> the reference's layer name, per registry net; absent: the names are the same.
CAFFE_NAMES: dict[str, Callable[[str], str]] = {"fcn32s-rgbhha": _fusion_name}
# The at-once net's fixed Scale layers: (layer, factor, the score layer that reads the scaled pool).
ATONCE_SCALES = (("scale_pool4", ATONCE_POOL4_SCALE, "score_pool4"), ("scale_pool3", ATONCE_POOL3_SCALE, "score_pool3"))


@dataclass(frozen=True)
class CaffeLayer:
    """One weighted layer as a net expects to find it in a .caffemodel."""

    kind: str                            # "conv", "bilinear" (fixed deconvolution) or "scale"
    shapes: tuple[tuple[int, ...], ...]  # expected blob shapes, Caffe's conventions
    targets: tuple[str, ...]             # our modules taking its weights (two for the fused upscore)
    classes: int | None = None           # class count of a score / upsampling layer
    value: float | None = None           # a Scale layer's fixed factor


def caffe_layout(model: nn.Module, arch: str) -> dict[str, CaffeLayer]:
    """{Caffe layer name: what it must hold} for ``model`` (registry net ``arch``), in forward order."""
    rename = CAFFE_NAMES.get(arch, lambda module: module)
    layout: dict[str, CaffeLayer] = {}
    for module_name, module in model.named_modules():
        if not any(True for _ in module.parameters(recurse=False)):
            continue  # containers, pools, LRN, dropout
        short = module_name.rpartition(".")[2]
        if isinstance(module, FixedBilinearUpsampling):
            c, k = module.out_channels, module.kernel_size[0]
            layer = CaffeLayer("bilinear", ((c, c, k, k),), (module_name,), classes=c)
        elif type(module) is nn.Conv2d:
            shapes = tuple(tuple(p.shape) for p in (module.weight, module.bias) if p is not None)
            classes = module.out_channels if short.startswith("score") else None
            layer = CaffeLayer("conv", shapes, (module_name,), classes=classes)
        else:  # a learnable deconvolution, BN, ...: no released net has one
            raise ValueError(f"{arch}: no Caffe layout for {module_name} ({type(module).__name__})")
        name = rename(module_name)
        if name in layout:  # one Caffe layer feeding several of ours: the fused upscore
            if layout[name].shapes != layer.shapes:
                raise ValueError(f"{arch}: {name} would feed modules of different shapes")
            layer = replace(layout[name], targets=layout[name].targets + layer.targets)
        layout[name] = layer
    if arch == "fcn8s-atonce":
        for name, factor, reader in ATONCE_SCALES:
            layout[name] = CaffeLayer("scale", ((getattr(model, reader).in_channels,),), (), value=factor)
    return layout


# --- checks ------------------------------------------------------------------------------------


def _names(names: list[str]) -> str:
    return ", ".join(names[:6]) + (f" ... ({len(names)} in all)" if len(names) > 6 else "")


def _fit(blob: np.ndarray, want: tuple[int, ...]) -> np.ndarray | None:
    """``blob`` reshaped to ``want``, allowing legacy leading ones ((1, 1, 1, O) for a bias); else None."""
    extra = blob.ndim - len(want)
    if blob.shape == want or (extra > 0 and blob.shape[extra:] == want and set(blob.shape[:extra]) == {1}):
        return blob.reshape(want)
    return None


def _bilinear(blob: np.ndarray, where: str) -> torch.Tensor:
    """The diagonal (C, 1, k, k) of a dense (C, C, k, k) deconvolution that must be fixed bilinear.

    Exact comparison: the taps of bilinear_ramp(k) are dyadic (j / 32 at k = 63, odd / 2k at even
    k), so the reference's float64 filter and ours round to the same float32 values
    (tests/test_released.py checks k = 4, 16, 32, 63, 64).
    """
    c, k = blob.shape[0], blob.shape[-1]
    u = bilinear_ramp(k)
    kernel = (u[:, None] * u[None, :]).to(torch.float32).numpy()  # (k, k)
    diagonal = blob[np.arange(c), np.arange(c)]  # (C, k, k)
    mixed = np.count_nonzero(blob) - np.count_nonzero(diagonal)  # nonzero entries off the diagonal
    unlike = [i for i in range(c) if not np.array_equal(diagonal[i], kernel)]
    if mixed or unlike:
        found = (f"{mixed} nonzero weights between different classes" if mixed
                 else f"class {unlike[0]}'s filter is not the {k}x{k} bilinear one")
        raise ModelFileError(f"{where}: a learned (non-bilinear) kernel ({found}); only the reference's "
                             "fixed bilinear upsampling is supported")
    return torch.from_numpy(np.ascontiguousarray(diagonal[:, None]))


def _scale(blob: np.ndarray, factor: float, where: str) -> None:
    """A Scale layer must hold the one fixed factor FCN applies as a constant (compared in float32)."""
    if not np.array_equal(blob, np.full(blob.shape, factor, np.float32)):
        found = np.unique(blob)
        raise ModelFileError(f"{where} scales by {_names([f'{v:g}' for v in found])}, expected {factor:g} "
                             "in every channel (the reference's fixed at-once factor)")


def _classes(blob: np.ndarray, layer: CaffeLayer, caffe: str, net: ReleasedNet, path: Path) -> None:
    """A score or upsampling layer with another class count than the net's: said in so many words."""
    if blob.ndim != len(layer.shapes[0]):
        return  # not even the right rank: the shape check names it
    dims = blob.shape[:2] if layer.kind == "bilinear" else blob.shape[:1]  # deconv: (C, C, k, k)
    wrong = [d for d in dims if d != layer.classes]
    if wrong:
        heads = net.n_classes if isinstance(net.n_classes, dict) else {}
        head = next((f" in its {h} head" for h in heads if caffe.endswith(f"_{h}")), "")
        raise ModelFileError(f"{path}: {caffe} has {wrong[0]} classes, {net.name} has {layer.classes}{head}")


def _blobs(path: Path, caffe: str, blobs: list[np.ndarray], layer: CaffeLayer, net: ReleasedNet,
           width: float) -> list[np.ndarray]:
    """The layer's blobs in their expected shapes, or one ModelFileError saying what differs."""
    what = {"conv": "weight and bias", "bilinear": "weight, no bias", "scale": "one factor per channel"}[layer.kind]
    if len(blobs) != len(layer.shapes):
        raise ModelFileError(f"{path}: {caffe} has {len(blobs)} blobs, expected {len(layer.shapes)} ({what})")
    if layer.classes is not None:
        _classes(blobs[0], layer, caffe, net, path)
    fitted = [_fit(blob, want) for blob, want in zip(blobs, layer.shapes)]
    for i, (blob, want, fit) in enumerate(zip(blobs, layer.shapes, fitted)):
        if fit is None:
            raise ModelFileError(f"{path}: {caffe} blob {i} has shape {blob.shape}, expected {want} "
                                 f"({net.name} at width {width:g})")
    return fitted


def file_sha256(path: Path) -> str:
    """Hex sha256 of the file at ``path``, read in 16 MB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for piece in iter(lambda: f.read(1 << 24), b""):
            digest.update(piece)
    return digest.hexdigest()


# --- conversion --------------------------------------------------------------------------------


def convert(path: Path, name: str, *, width: float = 1.0, sha256: str | None = None) -> tuple[nn.Module, dict]:
    """(the net in eval mode, its model-file record without state_dict) from released net ``name``'s file.

    Strict: a missing or extra weighted layer, a wrong blob count, shape or class count, a learned
    upsampling kernel or another at-once factor raises ModelFileError (one line). ``width`` < 1 reads
    a slimmed file of the same layout (tests); ``sha256``, when the caller has it, skips hashing.
    """
    path, net = Path(path), released_net(name)
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width <= 1:
        raise ConfigError(f"width must be a number in (0, 1], got {width!r}")
    layers = read_caffemodel(path)
    n_classes = dict(net.n_classes) if isinstance(net.n_classes, dict) else net.n_classes
    with torch.device("meta"):  # no initialisation of weights the file overwrites
        model = build_model(net.arch, n_classes=n_classes, width=width, learn_upsampling=False,
                            in_channels=net.in_channels)
    layout = caffe_layout(model, net.arch)
    missing = [n for n in layout if not layers.get(n)]
    extra = [n for n, blobs in layers.items() if blobs and n not in layout]
    if missing or extra:
        parts = ([f"no weights for {_names(missing)}"] if missing else []) + (
            [f"unexpected weighted layer(s) {_names(extra)}"] if extra else [])
        raise ModelFileError(f"{path} is not the released {net.name}: {'; '.join(parts)}")
    state: dict[str, torch.Tensor] = {}
    for caffe, layer in layout.items():
        blobs = _blobs(path, caffe, layers[caffe], layer, net, width)
        if layer.kind == "scale":
            _scale(blobs[0], layer.value, f"{path}: {caffe}")
            continue
        tensors = ([_bilinear(blobs[0], f"{path}: {caffe}")] if layer.kind == "bilinear"
                   else [torch.from_numpy(b) for b in blobs])
        for i, target in enumerate(layer.targets):
            for kind, tensor in zip(("weight", "bias"), tensors):
                state[f"{target}.{kind}"] = tensor.clone() if i else tensor  # the fused upscore: own copies
    model.load_state_dict(state, assign=True)  # strict: the layout covers every parameter
    record = {"arch": net.arch, "n_classes": n_classes, "width": width, "learn_upsampling": False,
              "in_channels": net.in_channels, **Inputs(net.preprocess, net.hha_preprocess).to_dict(),
              "dataset": net.dataset, "modality": net.modality,
              "released": {"net": net.name, "file": path.name, "sha256": sha256 or file_sha256(path)}}
    return model.eval(), record


def write_model_file(path: Path, name: str, out: Path, *, width: float = 1.0, sha256: str | None = None) -> dict:
    """Convert released net ``name``'s file at ``path`` and write the model file ``out`` atomically.

    Returns the record (without state_dict). Nothing is written when the conversion fails.
    """
    model, record = convert(path, name, width=width, sha256=sha256)
    build = ("arch", "n_classes", "width", "learn_upsampling", "preprocess")
    meta = {k: v for k, v in record.items() if k not in build}
    save_model(Path(out), model, arch=record["arch"], n_classes=record["n_classes"], width=width,
               learn_upsampling=False, preprocess=released_net(name).preprocess, **meta)
    return record
