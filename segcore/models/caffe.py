"""The paper's own VGG16 weights, read from a Caffe ``.caffemodel`` without Caffe or protobuf.

A .caffemodel is one protobuf ``NetParameter`` message. Its weights need only the wire format
(varints and length-delimited fields) and a handful of field numbers from caffe.proto:

    NetParameter      layer = 100 (LayerParameter, current)   layers = 2 (V1LayerParameter, 2014)
    LayerParameter    name = 1, type = 2, blobs = 7
    V1LayerParameter  name = 4, blobs = 6
    BlobProto         num = 1, channels = 2, height = 3, width = 4 (legacy 4-D shape),
                      data = 5 (float32, packed or not), shape = 7 (BlobShape: dim = 1, int64),
                      double_data = 8 (float64)

Every other field is skipped by its wire type. Only numbers and names are decoded: reading a file
never runs anything in it. ``VGG_ILSVRC_16_layers.caffemodel`` uses the V1 layout with legacy
shapes, so fc6's weight arrives as (1, 1, 4096, 25088); ``caffe_vgg16`` drops those leading ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from segcore.models.modelfile import ModelFileError
from segcore.models.vgg import VGG16Classifier, vgg16_conv_names

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5  # protobuf wire types (3 and 4, groups, are not used by Caffe)
NET_LAYER, NET_LAYERS_V1 = 100, 2
LAYER_FIELDS = {NET_LAYER: (1, 7), NET_LAYERS_V1: (4, 6)}  # (name, blobs) field of each layer message
BLOB_LEGACY_DIMS = (1, 2, 3, 4)  # num, channels, height, width
BLOB_DATA, BLOB_SHAPE, BLOB_DOUBLE_DATA = 5, 7, 8

# The layers of the VGG group's 16-layer net that carry weights, in forward order.
VGG16_LAYERS = (*(name for _, name in vgg16_conv_names()), "fc6", "fc7", "fc8")


class _WireError(ValueError):
    """The bytes are not a protobuf message of the expected shape; the reader adds the file name."""


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    """(value, position after it) of the base-128 varint at ``pos``."""
    value = shift = 0
    while True:
        if pos >= end:
            raise _WireError(f"a number at byte {pos} runs past the end of its message")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise _WireError(f"a number longer than 10 bytes ends at byte {pos}")


def _fields(buf: memoryview, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, a, b) of each field in buf[start:end].

    VARINT: a is the value (b unused); the other wire types: buf[a:b] holds the payload.
    """
    pos = start
    while pos < end:
        at = pos
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _WireError(f"field number 0 at byte {at}")
        if wire == VARINT:
            value, pos = _varint(buf, pos, end)
            yield number, wire, value, 0
            continue
        if wire == LENGTH:
            size, pos = _varint(buf, pos, end)
        elif wire in (FIXED64, FIXED32):
            size = 8 if wire == FIXED64 else 4
        else:
            raise _WireError(f"wire type {wire} (field {number}) at byte {at}")
        if pos + size > end:
            raise _WireError(f"field {number} at byte {at} needs {size} bytes, only {end - pos} are left")
        yield number, wire, pos, pos + size
        pos += size


def _numbers(buf: memoryview, wire: int, a: int, b: int, dtype: str, what: str) -> np.ndarray:
    """A packed run (LENGTH) or one unpacked value (FIXED32/FIXED64) of little-endian ``dtype``."""
    width = np.dtype(dtype).itemsize
    if wire not in (LENGTH, FIXED32 if width == 4 else FIXED64) or (b - a) % width:
        raise _WireError(f"{what} at byte {a} is not a run of {width}-byte numbers")
    return np.frombuffer(buf[a:b], dtype=dtype).astype(np.float32)  # astype copies: the array owns its data


def _dims(buf: memoryview, wire: int, a: int, b: int) -> list[int]:
    """BlobShape.dim values (packed or one unpacked varint); negative int64 dims are refused."""
    if wire == VARINT:
        values = [a]
    elif wire == LENGTH:
        values, pos = [], a
        while pos < b:
            value, pos = _varint(buf, pos, b)
            values.append(value)
    else:
        raise _WireError(f"a blob dimension at byte {a} is not a varint")
    if any(v >= 1 << 63 for v in values):
        raise _WireError("a negative blob dimension")
    return values


def _blob(buf: memoryview, start: int, end: int, where: str) -> np.ndarray:
    """One BlobProto as a float32 array of its recorded shape (BlobShape, else the legacy 4-D one)."""
    legacy: dict[int, int] = {}
    shape: list[int] | None = None
    floats: list[np.ndarray] = []
    doubles: list[np.ndarray] = []
    for number, wire, a, b in _fields(buf, start, end):
        if number in BLOB_LEGACY_DIMS and wire == VARINT:
            legacy[number] = a
        elif number == BLOB_DATA:
            floats.append(_numbers(buf, wire, a, b, "<f4", f"{where} data"))
        elif number == BLOB_DOUBLE_DATA:
            doubles.append(_numbers(buf, wire, a, b, "<f8", f"{where} double_data"))
        elif number == BLOB_SHAPE and wire == LENGTH:
            shape = shape or []  # a repeated dim may arrive in several runs
            shape += [d for n, w, x, y in _fields(buf, a, b) if n == 1 for d in _dims(buf, w, x, y)]
    data = np.concatenate(floats or doubles) if floats or doubles else np.zeros(0, np.float32)
    if shape is None:  # the 2014 layout: four int32 dims, missing ones 0 as in caffe.proto
        shape = [legacy.get(n, 0) for n in BLOB_LEGACY_DIMS] if legacy else [data.size]
    if int(np.prod(shape)) != data.size:
        raise _WireError(f"{where} holds {data.size} values but its shape {tuple(shape)} needs {int(np.prod(shape))}")
    return data.reshape(shape)


def _layer(buf: memoryview, start: int, end: int, name_field: int, blobs_field: int,
           index: int) -> tuple[str, list[np.ndarray]]:
    """(name, blobs) of one LayerParameter or V1LayerParameter."""
    name, spans = None, []
    for number, wire, a, b in _fields(buf, start, end):
        if number == name_field and wire == LENGTH:
            try:
                name = bytes(buf[a:b]).decode("utf-8")
            except UnicodeDecodeError:
                raise _WireError(f"layer {index} at byte {start} has a name that is not UTF-8 text") from None
        elif number == blobs_field and wire == LENGTH:
            spans.append((a, b))
    if name is None:
        raise _WireError(f"layer {index} at byte {start} has no name")
    return name, [_blob(buf, a, b, f"layer {name} blob {i}") for i, (a, b) in enumerate(spans)]


def parse_caffemodel(data: bytes) -> dict[str, list[np.ndarray]]:
    """{layer name: its blobs} of a serialised NetParameter, current and V1 layers alike.

    Raises ValueError (with a byte offset) where the bytes are not such a message.
    """
    buf = memoryview(data)
    layers: dict[str, list[np.ndarray]] = {}
    for number, wire, a, b in _fields(buf, 0, len(buf)):
        if number not in LAYER_FIELDS or wire != LENGTH:
            continue  # the net's name, inputs, state, ...
        name, blobs = _layer(buf, a, b, *LAYER_FIELDS[number], index=len(layers))
        if name in layers:
            raise _WireError(f"layer {name} appears twice")
        layers[name] = blobs
    return layers


def read_caffemodel(path: Path) -> dict[str, list[np.ndarray]]:
    """{layer name: blobs as float32 arrays of their recorded shapes} from the .caffemodel at ``path``.

    Layers without weights (ReLU, pooling, ...) map to an empty list. A missing, truncated or
    foreign file raises ModelFileError in one line naming the file and what is wrong.
    """
    path = Path(path)
    try:
        data = path.read_bytes()  # 528 MB for VGG16: read once, each blob copied out of it
    except FileNotFoundError:
        raise ModelFileError(f"caffemodel {path} does not exist") from None
    except OSError as err:
        raise ModelFileError(f"cannot read caffemodel {path}: {err.strerror or err}") from None
    try:
        layers = parse_caffemodel(data)
    except _WireError as err:
        raise ModelFileError(f"{path} is not a readable caffemodel (truncated or another kind of file?): "
                             f"{err}") from None
    if not any(layers.values()):
        raise ModelFileError(f"{path} is not a caffemodel: it holds no layer with weights")
    return layers


def _fit(blob: np.ndarray, expected: tuple[int, ...], where: str, path: Path) -> torch.Tensor:
    """``blob`` as a tensor of shape ``expected``; legacy 4-D shapes may pad it with leading ones."""
    extra = blob.ndim - len(expected)
    if blob.shape == expected or (extra > 0 and blob.shape[extra:] == expected
                                  and all(d == 1 for d in blob.shape[:extra])):
        return torch.from_numpy(blob.reshape(expected))
    raise ModelFileError(f"{path}: {where} has shape {blob.shape}, expected {expected} for VGG16")


def caffe_vgg16(path: Path, width: float = 1.0) -> VGG16Classifier:
    """VGG16Classifier holding the weights of a Caffe VGG16 (conv1_1 ... conv5_3, fc6, fc7, fc8).

    Caffe's blobs are laid out as ours: convolutions (out, in, kh, kw), inner products (out, in)
    with fc6's inputs flattened from pool5 as (C, H, W), then each bias. ``width`` < 1 reads a
    slimmed net of the same layout (tests). Missing layers and wrong shapes raise ModelFileError.
    """
    path = Path(path)
    layers = read_caffemodel(path)
    missing = [name for name in VGG16_LAYERS if not layers.get(name)]
    if missing:
        found = [name for name, blobs in layers.items() if blobs]
        raise ModelFileError(f"{path} is not a Caffe VGG16: no weights for {', '.join(missing)} "
                             f"(layers with weights: {', '.join(found[:8])}{' ...' if len(found) > 8 else ''})")
    fc8 = layers["fc8"][0]
    n_classes = fc8.shape[-2] if fc8.ndim >= 2 else 0
    with torch.device("meta"):  # no initialisation of 138M parameters that are overwritten next
        model = VGG16Classifier(n_classes=max(n_classes, 1), width=width)
    own = model.state_dict()
    state = {}
    for name in VGG16_LAYERS:
        blobs = layers[name]
        if len(blobs) != 2:
            raise ModelFileError(f"{path}: layer {name} has {len(blobs)} blobs, expected 2 (weight, bias)")
        for blob, kind in zip(blobs, ("weight", "bias")):
            key = f"{name}.{kind}"
            state[key] = _fit(blob, tuple(own[key].shape), f"{name} {kind}", path)
    model.load_state_dict(state, assign=True)
    return model
