"""The paper's own ImageNet weights, read from a Caffe ``.caffemodel`` without Caffe or protobuf.

A .caffemodel is one protobuf ``NetParameter`` message. Its weights need only the wire format
(varints and length-delimited fields) and a handful of field numbers from caffe.proto:

    NetParameter      layer = 100 (LayerParameter, current)   layers = 2 (V1LayerParameter, 2014)
    LayerParameter    name = 1, type = 2, blobs = 7
    V1LayerParameter  name = 4, blobs = 6
    BlobProto         num = 1, channels = 2, height = 3, width = 4 (legacy 4-D shape, int32),
                      data = 5 (float32, packed or not), shape = 7 (BlobShape: dim = 1, int64),
                      double_data = 8 (float64)

Every other field is skipped by its wire type. Only numbers and names are decoded: reading a file
never runs anything in it. Nothing is allocated on a length's word: every length, packed run and
blob shape is checked against the bytes that hold it first (shape products in Python integers,
which cannot overflow), and the count of layers, blobs and dimensions is capped, so a crafted or
damaged file is refused in one line, never read into a huge allocation. The VGG group's
``VGG_ILSVRC_16_layers.caffemodel`` and BVLC's ``bvlc_reference_caffenet.caffemodel`` use the V1
layout with legacy shapes, so fc6's weight arrives as (1, 1, 4096, 25088); ``caffe_classifier``
drops those leading ones.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import numpy as np
import torch
from torch import nn

from segcore.models.alexnet import ALEXNET_CONVS, AlexNetClassifier
from segcore.models.modelfile import ModelFileError
from segcore.models.vgg import VGG16Classifier, vgg16_conv_names

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5  # protobuf wire types (3 and 4, groups, are not used by Caffe)
NET_LAYER, NET_LAYERS_V1 = 100, 2
LAYER_FIELDS = {NET_LAYER: (1, 7), NET_LAYERS_V1: (4, 6)}  # (name, blobs) field of each layer message
BLOB_LEGACY_DIMS = (1, 2, 3, 4)  # num, channels, height, width
BLOB_DATA, BLOB_SHAPE, BLOB_DOUBLE_DATA = 5, 7, 8
SHAPE_DIM = 1
# Caps far above any real net (Caffe's kMaxBlobAxes is 32; its largest nets have about a thousand
# layers of at most a few blobs): a crafted file of millions of empty layers or dims is refused
# rather than turned into millions of Python objects.
MAX_AXES = 32
MAX_LAYERS = 1 << 16
MAX_BLOBS_PER_LAYER = 64

# The layers of each classifier that carry weights, in forward order (Caffe's names are ours).
VGG16_LAYERS = (*(name for _, name in vgg16_conv_names()), "fc6", "fc7", "fc8")
ALEXNET_LAYERS = (*(c.name for c in ALEXNET_CONVS), "fc6", "fc7", "fc8")

Net = TypeVar("Net", bound=nn.Module)


class _WireError(ValueError):
    """The bytes are not a protobuf message of the expected shape; the reader adds the file name."""


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    """(value, position after it) of the base-128 varint at ``pos``; at most 10 bytes, below 2^64."""
    value = shift = 0
    while True:
        if pos >= end:
            raise _WireError(f"a number at byte {pos} runs past the end of its message")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if value >> 64:
                raise _WireError(f"the number ending at byte {pos} does not fit 64 bits")
            return value, pos
        shift += 7
        if shift > 63:
            raise _WireError(f"a number longer than 10 bytes ends at byte {pos}")


def _fields(buf: memoryview, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, a, b) of each field in buf[start:end].

    VARINT: a is the value (b unused); the other wire types: buf[a:b] holds the payload, whose
    length has been checked against ``end`` (never beyond the message, hence never beyond the file).
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
        if size > end - pos:
            raise _WireError(f"field {number} at byte {at} needs {size} bytes, only {end - pos} are left")
        yield number, wire, pos, pos + size
        pos += size


class _Values:
    """The values of one repeated float field, in file order: packed runs and single unpacked values.

    A lone packed run (what Caffe writes) stays a view of the file until ``array`` copies it once;
    unpacked values are gathered as bytes (4 or 8 per value), not as one array object each.
    """

    def __init__(self, dtype: str, what: str) -> None:
        self.dtype, self.what = np.dtype(dtype), what
        self.runs: list[memoryview | bytes] = []
        self.loose = bytearray()

    def add(self, buf: memoryview, wire: int, a: int, b: int) -> None:
        width = self.dtype.itemsize
        if wire not in (LENGTH, FIXED32 if width == 4 else FIXED64) or (b - a) % width:
            raise _WireError(f"{self.what} at byte {a} is not a run of {width}-byte numbers")
        if wire == LENGTH:
            self._flush()
            self.runs.append(buf[a:b])
        else:
            self.loose += buf[a:b]

    def _flush(self) -> None:
        if self.loose:
            self.runs.append(bytes(self.loose))
            self.loose = bytearray()

    def __bool__(self) -> bool:
        return bool(self.runs or self.loose)

    def array(self) -> np.ndarray:
        """float32 copy of every value (it owns its data: the file's bytes may go)."""
        self._flush()
        raw = self.runs[0] if len(self.runs) == 1 else b"".join(self.runs)
        return np.frombuffer(raw, dtype=self.dtype).astype(np.float32)


def _dims(buf: memoryview, wire: int, a: int, b: int, room: int, where: str) -> list[int]:
    """BlobShape.dim values (a packed run or one unpacked varint); more than ``room`` are refused.

    int64 dims arrive as 64-bit two's complement: values >= 2^63 are negative and refused.
    """
    too_many = f"{where} has a shape with more than {MAX_AXES} dimensions (byte {a})"
    if wire == VARINT:
        if room < 1:
            raise _WireError(too_many)
        values = [a]
    elif wire == LENGTH:
        values, pos = [], a
        while pos < b:
            if len(values) == room:  # before the list grows: a run of a million dims is never built
                raise _WireError(too_many)
            value, pos = _varint(buf, pos, b)
            values.append(value)
    else:
        raise _WireError(f"{where} has a dimension that is not a varint (byte {a})")
    negative = [v - (1 << 64) for v in values if v >= 1 << 63]
    if negative:
        raise _WireError(f"{where} has a negative dimension {negative[0]} (byte {a})")
    return values


def _shape(buf: memoryview, a: int, b: int, shape: list[int], where: str) -> None:
    """Append one BlobShape message's dims to ``shape`` (a repeated field may come in several parts)."""
    for number, wire, x, y in _fields(buf, a, b):
        if number == SHAPE_DIM:
            shape += _dims(buf, wire, x, y, MAX_AXES - len(shape), where)


def _blob(buf: memoryview, start: int, end: int, where: str) -> np.ndarray:
    """One BlobProto as a float32 array of its recorded shape (BlobShape, else the legacy 4-D one)."""
    legacy: dict[int, int] = {}
    shape: list[int] | None = None
    floats, doubles = _Values("<f4", f"{where} data"), _Values("<f8", f"{where} double_data")
    for number, wire, a, b in _fields(buf, start, end):
        if number in BLOB_LEGACY_DIMS:
            if wire != VARINT:
                raise _WireError(f"{where} (byte {start}) has a legacy dimension that is not a varint")
            if a >= 1 << 31:  # int32: a negative one arrives as a 10-byte varint (sign-extended to 64 bits)
                value = a - (1 << 64) if a >= 1 << 63 else a
                raise _WireError(f"{where} (byte {start}) has a legacy dimension {value}: not an int32 >= 0")
            legacy[number] = a
        elif number == BLOB_DATA:
            floats.add(buf, wire, a, b)
        elif number == BLOB_DOUBLE_DATA:
            doubles.add(buf, wire, a, b)
        elif number == BLOB_SHAPE:
            if wire != LENGTH:
                raise _WireError(f"{where} (byte {start}) has a shape that is not a message")
            shape = shape if shape is not None else []
            _shape(buf, a, b, shape, where)
    # As Caffe's Blob::FromProto: double_data when there is any, else data.
    data = doubles.array() if doubles else floats.array() if floats else np.zeros(0, np.float32)
    if shape is None:  # the 2014 layout: four int32 dims, missing ones 0 as in caffe.proto
        shape = [legacy.get(n, 0) for n in BLOB_LEGACY_DIMS] if legacy else [data.size]
    need = math.prod(shape)  # Python integers: np.prod would wrap around in int64
    if need != data.size:
        raise _WireError(f"{where} holds {data.size} values but its shape {tuple(shape)} needs {need}")
    if any(d > len(buf) for d in shape):  # only an empty blob gets here with such a dim
        raise _WireError(f"{where} has a shape {tuple(shape)} with a dimension larger than the file")
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
            if len(spans) == MAX_BLOBS_PER_LAYER:
                raise _WireError(f"layer {index} at byte {start} has more than {MAX_BLOBS_PER_LAYER} blobs")
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
        if len(layers) == MAX_LAYERS:
            raise _WireError(f"more than {MAX_LAYERS} layers")
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


def _fit(blob: np.ndarray, expected: tuple[int, ...], where: str, path: Path, what: str) -> torch.Tensor:
    """``blob`` as a tensor of shape ``expected``; legacy 4-D shapes may pad it with leading ones."""
    extra = blob.ndim - len(expected)
    if blob.shape == expected or (extra > 0 and blob.shape[extra:] == expected
                                  and all(d == 1 for d in blob.shape[:extra])):
        return torch.from_numpy(blob.reshape(expected))
    raise ModelFileError(f"{path}: {where} has shape {blob.shape}, expected {expected} for {what}")


def caffe_classifier(path: Path, build: Callable[[int], Net], names: tuple[str, ...], what: str) -> Net:
    """``build(n_classes)`` holding the weights of the Caffe classifier at ``path``.

    ``names`` are the layers with a weight and a bias, in forward order, the last one the classifier
    (its rows give n_classes); Caffe's name is our module's. Caffe's blobs are laid out as ours:
    convolutions (out, in / groups, kh, kw), inner products (out, in) with fc6's inputs flattened
    from pool5 as (C, H, W), then each bias. The net is built on the meta device (no initialisation
    of weights that are overwritten next), then given the file's tensors. A file without one of
    ``names``, or with a wrong shape or blob count, raises ModelFileError naming ``what`` it is not.
    """
    path = Path(path)
    layers = read_caffemodel(path)
    missing = [name for name in names if not layers.get(name)]
    if missing:
        found = [name for name, blobs in layers.items() if blobs]
        raise ModelFileError(f"{path} is not a Caffe {what}: no weights for {', '.join(missing)} "
                             f"(layers with weights: {', '.join(found[:8])}{' ...' if len(found) > 8 else ''})")
    last = layers[names[-1]][0]
    n_classes = last.shape[-2] if last.ndim >= 2 else 0
    with torch.device("meta"):
        model = build(max(n_classes, 1))
    own = model.state_dict()
    state = {}
    for name in names:
        blobs = layers[name]
        if len(blobs) != 2:
            raise ModelFileError(f"{path}: layer {name} has {len(blobs)} blobs, expected 2 (weight, bias)")
        for blob, kind in zip(blobs, ("weight", "bias")):
            key = f"{name}.{kind}"
            state[key] = _fit(blob, tuple(own[key].shape), f"{name} {kind}", path, what)
    model.load_state_dict(state, assign=True)
    return model


def caffe_vgg16(path: Path, width: float = 1.0) -> VGG16Classifier:
    """VGG16Classifier holding a Caffe VGG16 (conv1_1 ... conv5_3, fc6, fc7, fc8), as the VGG group's
    ``VGG_ILSVRC_16_layers.caffemodel``. ``width`` < 1 reads a slimmed net of the same layout (tests)."""
    return caffe_classifier(path, lambda n: VGG16Classifier(n_classes=n, width=width), VGG16_LAYERS, "VGG16")


def caffe_alexnet(path: Path, width: float = 1.0) -> AlexNetClassifier:
    """AlexNetClassifier holding a Caffe CaffeNet (conv1 ... conv5, fc6, fc7, fc8), as BVLC's
    ``bvlc_reference_caffenet.caffemodel``; grouped convs arrive as ours, conv2 (256, 48, 5, 5).
    ``width`` < 1 reads a slimmed net of the same layout (tests)."""
    return caffe_classifier(path, lambda n: AlexNetClassifier(n_classes=n, width=width), ALEXNET_LAYERS,
                            "AlexNet (CaffeNet)")
