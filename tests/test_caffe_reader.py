"""The .caffemodel reader: the paper's CaffeNet read into our AlexNet, and crafted files refused cheaply.

Every crafted file below is a few bytes claiming far more than it holds (a 2^60-byte field, a
blob shape whose product overflows int64, a negative dimension, ...). Each must be refused in one
line naming the file, with no traceback and no allocation of what it claims: tracemalloc's peak
(numpy reports its buffers to it) stays far below what any of the claims would take.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

from segcore.models.alexnet import AlexNetClassifier
from segcore.models.caffe import (ALEXNET_LAYERS, MAX_AXES, MAX_BLOBS_PER_LAYER, MAX_LAYERS, caffe_alexnet,
                                  read_caffemodel)
from segcore.models.modelfile import ModelFileError

from caffe_writer import key, message, varint, write_caffemodel  # tests/caffe_writer.py

WIDTH = 1 / 16  # conv 6..24 channels (even: the groups hold), fc 256
N_CLASSES = 10


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def caffenet_layers(net: AlexNetClassifier) -> dict[str, list[np.ndarray]]:
    """{caffe layer: blobs} of ``net`` in CaffeNet's order, weightless layers included as in the real file."""
    state = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    layers: dict[str, list[np.ndarray]] = {}
    for name in ALEXNET_LAYERS:
        layers[name] = [state[f"{name}.weight"], state[f"{name}.bias"]]
        suffix = name.removeprefix("conv").removeprefix("fc")
        layers[f"relu{suffix}"] = []
        if name in ("conv1", "conv2"):
            layers.update({f"pool{suffix}": [], f"norm{suffix}": []})
    return layers


def test_caffenet_in_v1_layout_reads_into_the_classifier_exactly(tmp_path):
    torch.manual_seed(0)
    net = AlexNetClassifier(n_classes=N_CLASSES, width=WIDTH).eval()
    path = write_caffemodel(tmp_path / "caffenet.caffemodel", caffenet_layers(net), v1=True)
    read = read_caffemodel(path)
    assert read["conv2"][0].shape == (16, 3, 5, 5)  # grouped: 6 conv1 channels, 3 per group
    assert read["fc6"][0].shape == (1, 1, 256, 16 * 6 * 6)  # legacy 4-D shapes, leading ones
    loaded = caffe_alexnet(path, width=WIDTH).eval()
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in net.state_dict().items())
    x = torch.randn(2, 3, 227, 227)
    with torch.no_grad():
        expected = net(x)
        assert expected.std() > 0
        assert torch.equal(loaded(x), expected)


def test_a_vgg16_or_wider_file_is_not_a_caffenet(tmp_path):
    torch.manual_seed(0)
    layers = caffenet_layers(AlexNetClassifier(n_classes=N_CLASSES, width=WIDTH))
    path = write_caffemodel(tmp_path / "x.caffemodel", {k: v for k, v in layers.items() if k != "conv4"}, v1=True)
    with pytest.raises(ModelFileError, match=r"is not a Caffe AlexNet \(CaffeNet\): no weights for conv4"):
        caffe_alexnet(path, width=WIDTH)
    path = write_caffemodel(tmp_path / "x.caffemodel", layers, v1=False)
    with pytest.raises(ModelFileError, match=r"conv1 weight has shape \(6, 3, 11, 11\), expected \(12, 3, 11, 11\) "
                                             r"for AlexNet \(CaffeNet\)"):
        caffe_alexnet(path, width=2 * WIDTH)


# ---------------------------------------------------------------- crafted files: refused, not allocated


def blob_layer(blob: bytes, v1: bool = False) -> bytes:
    """A NetParameter with one layer "conv1" holding one blob message ``blob``."""
    if v1:
        return message(2, message(4, b"conv1") + message(6, blob))
    return message(100, message(1, b"conv1") + message(7, blob))


def shape(*dims: int) -> bytes:
    """A BlobShape with packed int64 dims (negative ones as 10-byte two's complement)."""
    return message(7, message(1, b"".join(varint(d % (1 << 64)) for d in dims)))


def legacy(**dims: int) -> bytes:
    """Legacy int32 dims num, channels, height, width (negative ones as 10-byte varints, as protobuf)."""
    fields = {"num": 1, "channels": 2, "height": 3, "width": 4}
    return b"".join(key(fields[n], 0) + varint(d % (1 << 64)) for n, d in dims.items())


FLOATS = message(5, np.zeros(4, "<f4").tobytes())
CRAFTED = {
    # lengths
    "layer of 2^60 bytes": key(100, 2) + varint(1 << 60) + b"\x0a\x01x",
    "name of 2^60 bytes": key(100, 2) + varint(12) + key(1, 2) + varint(1 << 60) + b"conv1",
    "data of 2^60 bytes": blob_layer(shape(4) + key(5, 2) + varint(1 << 60) + bytes(16)),
    "double data of 2^59 bytes": blob_layer(key(8, 2) + varint(1 << 59) + bytes(16)),
    "shape of 2^62 bytes": blob_layer(key(7, 2) + varint(1 << 62) + bytes(4)),
    # varints
    "varint of 11 bytes": blob_layer(key(1, 0) + b"\xff" * 10 + b"\x01"),
    "varint above 2^64": blob_layer(key(1, 0) + b"\xff" * 9 + b"\x7f"),
    "varint cut short": key(100, 2) + varint(3) + key(1, 0) + b"\xff\xff",
    # packed runs
    "data of 7 bytes": blob_layer(shape(2) + message(5, bytes(7))),
    "dims run cut inside a varint": blob_layer(message(7, message(1, b"\x02\x80"))),
    "dims as fixed64": blob_layer(message(7, key(1, 1) + bytes(8))),
    "data as a varint": blob_layer(key(5, 0) + varint(3)),
    # dims
    "dims overflowing int64 to 0": blob_layer(shape(1 << 32, 1 << 32)),
    "dims overflowing int64 to 4": blob_layer(shape((1 << 62) + 1, 4) + FLOATS),  # np.prod: 4, as the data
    "dims multiplying to 2^120": blob_layer(shape(1 << 60, 1 << 60) + FLOATS),
    "negative dim": blob_layer(shape(-4) + FLOATS),
    "negative dims whose product is positive": blob_layer(shape(-2, -2) + FLOATS),
    "huge dim of an empty blob": blob_layer(shape(0, 1 << 62)),
    "too many dims": blob_layer(shape(*[1] * (MAX_AXES + 1)) + message(5, bytes(4))),
    "a million packed dims": blob_layer(message(7, message(1, b"\x01" * 1_000_000))),
    "dims over several shapes": blob_layer(b"".join(shape(*[1] * 20) for _ in range(2)) + message(5, bytes(4))),
    "shape as a varint": blob_layer(key(7, 0) + varint(3)),
    # legacy dims (V1 layout)
    "legacy dims overflowing int64": blob_layer(legacy(num=1 << 30, channels=1 << 30, height=1 << 30,
                                                       width=1 << 30) + FLOATS, v1=True),
    "negative legacy dim": blob_layer(legacy(num=1, channels=1, height=-1, width=4) + FLOATS, v1=True),
    "legacy dim beyond int32": blob_layer(legacy(num=1 << 40) + FLOATS, v1=True),
    "legacy dim as a message": blob_layer(message(2, b"\x01") + FLOATS, v1=True),
    "empty legacy blob with a huge dim": blob_layer(legacy(num=0, channels=(1 << 31) - 1), v1=True),
}


@pytest.mark.parametrize("content", CRAFTED.values(), ids=CRAFTED.keys())
def test_crafted_lengths_and_shapes_are_refused_in_one_line_without_allocating(tmp_path, content):
    path = tmp_path / "crafted.caffemodel"
    path.write_bytes(content)
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError) as err:
            read_caffemodel(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message_ = str(err.value)
    assert "\n" not in message_ and str(path) in message_ and "readable caffemodel" in message_, message_
    assert err.value.__cause__ is None and err.value.__suppress_context__  # the user sees one line
    assert peak < 4 * len(content) + (1 << 20), peak  # the file's bytes and small change, nothing claimed


def test_the_limits_do_not_refuse_a_real_blob(tmp_path):
    """The caps sit far above real nets: 32 dims, a zero-size blob, doubles, unpacked runs are all read."""
    dims = [1] * (MAX_AXES - 2) + [2, 3]
    values = np.arange(6, dtype="<f4")
    unpacked = b"".join(key(5, 5) + v.tobytes() for v in values[:3]) + message(5, values[3:].tobytes())
    blobs = [shape(*dims) + message(5, values.tobytes()), shape(0, 5),
             legacy(num=1, channels=2, height=3, width=1) + unpacked,
             shape(6) + message(8, values.astype("<f8").tobytes()) + message(5, bytes(24))]
    path = tmp_path / "ok.caffemodel"
    path.write_bytes(message(100, message(1, b"conv1") + b"".join(message(7, b) for b in blobs)))
    got = read_caffemodel(path)["conv1"]
    assert got[0].shape == tuple(dims) and got[1].shape == (0, 5) and got[2].shape == (1, 2, 3, 1)
    np.testing.assert_array_equal(got[0].ravel(), values)
    np.testing.assert_array_equal(got[2].ravel(), values)  # unpacked then packed, in file order
    np.testing.assert_array_equal(got[3], values)  # double_data wins over data, as in Caffe


def test_more_layers_or_blobs_than_any_net_has_are_refused(tmp_path):
    path = tmp_path / "many.caffemodel"
    path.write_bytes(b"".join(message(100, message(1, b"%d" % i)) for i in range(MAX_LAYERS + 1)))
    with pytest.raises(ModelFileError, match=f"more than {MAX_LAYERS} layers$"):
        read_caffemodel(path)
    path.write_bytes(message(100, message(1, b"conv1") + message(7, b"") * (MAX_BLOBS_PER_LAYER + 1)))
    with pytest.raises(ModelFileError, match=f"has more than {MAX_BLOBS_PER_LAYER} blobs$"):
        read_caffemodel(path)
