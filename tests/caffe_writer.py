"""A writer of Caffe's .caffemodel wire format, for tests only: caffemodels from known weights.

Two uses: `write_caffemodel` writes a VGG16-like net in either layout (current `layer` messages,
or the 2014 V1 `layers` with 4-D legacy shapes) for tests/test_caffe.py; `write_released` writes
the layout of one of the FCN authors' released nets (segcore.models.released) from a registry net
built at any width, so nothing near the 0.5-1.1 GB real files is needed.

Field numbers (caffe.proto): NetParameter name 1, layer 100, layers 2 (V1); LayerParameter name 1,
type 2 (a string), blobs 7; V1LayerParameter name 4, type 5 (an enum), blobs 6; BlobProto
num/channels/height/width 1-4, data 5, shape 7 (BlobShape: dim 1), double_data 8.

This writer is written from the reference's own net.py files, not from segcore's loader, so a
test that writes with it and reads with the loader checks one against the other.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import torch
from torch import nn

from segcore.models.fusion import LateFusionFCN
from segcore.models.upsampling import FixedBilinearUpsampling

# The at-once net's Scale layers (voc-fcn8s-atonce/net.py): before the score layer reading the pool.
ATONCE_SCALES = {"score_pool4": ("scale_pool4", 0.01), "score_pool3": ("scale_pool3", 1e-4)}
FINAL_UPSAMPLING = ("upscore", "upscore16", "upscore8")  # followed by the crop "score" and the loss
FUSION_STREAMS = (("rgb", "color"), ("hha", "hha"))  # our stream -> the reference's name suffix


# --- the wire format ---------------------------------------------------------------------------


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def key(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def message(number: int, payload: bytes) -> bytes:
    return key(number, 2) + varint(len(payload)) + payload


def blob(array: np.ndarray, legacy: bool, packed: bool = True, double: bool = False) -> bytes:
    """One BlobProto: legacy 4-D dims (num, channels, height, width) or a BlobShape, then the data."""
    if legacy:  # leading ones pad fewer dims, as Caffe wrote 2014 nets
        dims = (1,) * (4 - array.ndim) + array.shape
        out = b"".join(key(n, 0) + varint(d) for n, d in zip((1, 2, 3, 4), dims))
    else:
        out = message(7, message(1, b"".join(varint(d) for d in array.shape)))
    flat = array.ravel()
    if double:
        out += message(8, flat.astype("<f8").tobytes())
    elif packed:
        out += message(5, flat.astype("<f4").tobytes())
    else:
        out += b"".join(key(5, 5) + struct.pack("<f", v) for v in flat)
    return out


def write_caffemodel(path: Path, layers: dict[str, list[np.ndarray]], v1: bool, **blob_kw) -> Path:
    """A NetParameter with a name, then each layer (V1: name 4, type enum 5, blobs 6; else 1, 2, 7)."""
    out = message(1, b"VGG_ILSVRC_16_layers")
    for name, blobs in layers.items():
        if v1:
            body = message(4, name.encode()) + key(5, 0) + varint(4 if blobs else 18)
            body += b"".join(message(6, blob(b, legacy=True, **blob_kw)) for b in blobs)
            out += message(2, body)
        else:
            body = message(1, name.encode()) + message(2, b"Convolution" if blobs else b"ReLU")
            body += b"".join(message(7, blob(b, legacy=False, **blob_kw)) for b in blobs)
            out += message(100, body)
    path.write_bytes(out)
    return path


def caffe_type(name: str, blobs: list[np.ndarray]) -> str:
    """The Caffe layer type of a layer in the released nets, from its name (as their net.py names them)."""
    if blobs:
        return "Deconvolution" if name.startswith("up") else "Scale" if name.startswith("scale") else "Convolution"
    for prefix, kind in (("relu", "ReLU"), ("pool", "Pooling"), ("norm", "LRN"), ("drop", "Dropout"),
                         ("fuse", "Eltwise"), ("score_fused", "Eltwise"), ("score", "Crop"),
                         ("loss", "SoftmaxWithLoss"), ("data", "Python")):
        if name.startswith(prefix):
            return kind
    raise ValueError(f"no Caffe type for a weightless layer named {name!r}")


def write_net(path: Path, layers: dict[str, list[np.ndarray]], net_name: str = "") -> Path:
    """A current-format NetParameter (layer 100, type strings, BlobShape, packed data), written layer by
    layer: a full-size net is 0.5-1.1 GB, and one growing bytes object would copy it once per layer."""
    with open(path, "wb") as f:
        f.write(message(1, net_name.encode()))
        for name, blobs in layers.items():
            body = message(1, name.encode()) + message(2, caffe_type(name, blobs).encode())
            parts = [body] + [message(7, blob(b, legacy=False)) for b in blobs]
            f.write(key(100, 2) + varint(sum(map(len, parts))))
            for part in parts:
                f.write(part)
    return Path(path)


# --- the released layouts ----------------------------------------------------------------------


def dense(layer: FixedBilinearUpsampling) -> np.ndarray:
    """The reference's dense deconvolution weight (C, C, k, k): each class's filter on the diagonal."""
    w = layer.weight.detach().numpy()  # (C, 1, k, k)
    c = w.shape[0]
    out = np.zeros((c, c, *w.shape[-2:]), np.float32)
    out[np.arange(c), np.arange(c)] = w[:, 0]
    return out


def _head_of(name: str, model: nn.Module) -> tuple[str, str]:
    """(layer without its head suffix, the suffix): "upscore8_sem" -> ("upscore8", "_sem")."""
    for suffix in getattr(model, "heads", {}):
        if suffix and name.endswith(suffix):
            return name[: -len(suffix)], suffix
    return name, ""


def _walk(model: nn.Module, stream: str = "", skip: tuple[str, ...] = ()) -> dict[str, list[np.ndarray]]:
    """The layers of one trunk and its heads, in the reference's order, names ending in ``stream``."""
    layers: dict[str, list[np.ndarray]] = {}
    atonce = getattr(model, "variant", None) == "8s-atonce"
    for name, module in model.named_children():
        base, head = _head_of(name, model)
        if name in skip or isinstance(module, nn.Dropout):  # dropout follows its ReLU below
            continue
        if isinstance(module, FixedBilinearUpsampling):
            layers[name + stream] = [dense(module)]
            if base in FINAL_UPSAMPLING:
                layers.update({f"score{head}{stream}": [], f"loss{head}{stream}": []})
        elif isinstance(module, nn.Conv2d):
            if atonce and base in ATONCE_SCALES:
                scale, factor = ATONCE_SCALES[base]
                layers[scale] = [np.full(module.in_channels, factor, np.float32)]
            layers[name + stream] = [module.weight.detach().numpy().copy(), module.bias.detach().numpy().copy()]
            if name.startswith(("conv", "fc")):  # relu1_1 after conv1_1, relu6 and drop6 after fc6
                layers["relu" + name[4 if name.startswith("conv") else 2:] + stream] = []
            if name.startswith("fc"):
                layers["drop" + name[2:] + stream] = []
            if base in ("score_pool4", "score_pool3"):  # crop to the upsampled map, then sum
                layers.update({f"{name}c{stream}": [], f"fuse_{base[6:]}{head}{stream}": []})
        elif isinstance(module, (nn.MaxPool2d, nn.LocalResponseNorm)):
            layers[name + stream] = []
        elif any(True for _ in module.parameters()):
            raise ValueError(f"no Caffe layer for {name} ({type(module).__name__})")
    return layers


def released_layers(name: str, model: nn.Module) -> dict[str, list[np.ndarray]]:
    """{layer: blobs} of released net ``name``'s .caffemodel holding ``model``'s weights, in file order.

    ``model`` is the registry net the release maps to, at any width. Weightless layers (data, ReLU,
    pooling, crops, sums, the loss) come along with no blobs, as in a real file. The colour-HHA
    fusion writes each stream's layers with the suffix "color" / "hha" and one shared upscore.
    """
    if not isinstance(model, LateFusionFCN):
        return {"data": [], **_walk(model)}
    up_rgb, up_hha = dense(model.rgb.upscore), dense(model.hha.upscore)
    if not np.array_equal(up_rgb, up_hha):
        raise ValueError(f"{name}: the reference shares one upscore, but the streams' upscores differ")
    layers: dict[str, list[np.ndarray]] = {"data": []}
    for stream, suffix in FUSION_STREAMS:
        layers.update(_walk(getattr(model, stream), suffix, skip=("upscore",)))
    return {**layers, "score_fused": [], "upscore": [up_rgb], "score": [], "loss": []}


def write_released(path: Path, name: str, model: nn.Module) -> Path:
    """Write ``model``'s weights as released net ``name``'s .caffemodel at ``path``."""
    with torch.no_grad():
        return write_net(Path(path), released_layers(name, model), name)
