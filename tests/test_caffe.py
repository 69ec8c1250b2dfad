"""The paper's Caffe VGG16 weights: the .caffemodel reader, its errors, and the backbone built on it.

A small writer of the protobuf wire format (tests/caffe_writer.py) writes caffemodels with the
real VGG16 layer names in both layouts (current `layer`, 2014 V1 `layers` with 4-D legacy shapes)
for a slimmed VGG16, so nothing near the 528 MB real file is needed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from segcore.config.params import PretrainPaper
from segcore.config.schema import ConfigError, build
from segcore.data.download import Archive, DownloadError
from segcore.data.preprocess import CAFFE_VGG16, Preprocess
from segcore.models import backbone
from segcore.models.caffe import VGG16_LAYERS, caffe_vgg16, read_caffemodel
from segcore.models.modelfile import ModelFileError
from segcore.models.registry import build_model
from segcore.models.surgery import convolutionalise, transplant
from segcore.models.vgg import VGG16Classifier
from segcore.pipeline import cli
from segcore.pipeline.backbone import make_backbone

from caffe_writer import message as _message, varint as _varint, write_caffemodel  # tests/caffe_writer.py

WIDTH = 1 / 16  # conv 4..32 channels, fc 256: every layer name and layout of the real net, tiny
N_CLASSES = 10  # fc8 rows (the real net: 1000)


def vgg_layers(net: VGG16Classifier) -> dict[str, list[np.ndarray]]:
    """{caffe layer: [weight, bias]} of ``net``, with a weightless ReLU among them as in the real file."""
    state = net.state_dict()
    layers: dict[str, list[np.ndarray]] = {}
    for name in VGG16_LAYERS:
        layers[name] = [state[f"{name}.{k}"].numpy().copy() for k in ("weight", "bias")]
        if name == "conv1_1":
            layers["relu1_1"] = []
    return layers


@pytest.fixture(scope="module")
def net() -> VGG16Classifier:
    torch.manual_seed(0)
    return VGG16Classifier(n_classes=N_CLASSES, width=WIDTH).eval()


# ---------------------------------------------------------------- reading


@pytest.mark.parametrize("v1", [True, False], ids=["v1-layers", "layer"])
def test_written_weights_come_back_exactly_in_either_layout(tmp_path, net, v1):
    layers = vgg_layers(net)
    read = read_caffemodel(write_caffemodel(tmp_path / "vgg.caffemodel", layers, v1=v1))
    assert list(read) == list(layers) and read["relu1_1"] == []
    for name in VGG16_LAYERS:
        for got, want in zip(read[name], layers[name]):
            assert got.dtype == np.float32
            if v1:  # legacy blobs are 4-D: fc6 (1, 1, 256, 1568), biases (1, 1, 1, out)
                assert got.shape == (1,) * (4 - want.ndim) + want.shape
            np.testing.assert_array_equal(got.reshape(want.shape), want)
    loaded = caffe_vgg16(tmp_path / "vgg.caffemodel", width=WIDTH).state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in net.state_dict().items())


@pytest.mark.parametrize("kw", [{"packed": False}, {"double": True}], ids=["unpacked-floats", "double-data"])
def test_unpacked_and_double_blobs_are_read(tmp_path, kw):
    blob = np.arange(6, dtype=np.float32).reshape(2, 3) / 4
    read = read_caffemodel(write_caffemodel(tmp_path / "m.caffemodel", {"ip": [blob, blob[0]]}, v1=False, **kw))
    np.testing.assert_array_equal(read["ip"][0], blob)
    np.testing.assert_array_equal(read["ip"][1], blob[0])


# ---------------------------------------------------------------- errors: one line naming the file


def one_line(err: pytest.ExceptionInfo, path: Path) -> str:
    message = str(err.value)
    assert "\n" not in message and str(path) in message, message
    return message


def test_truncated_files_are_refused_in_one_line(tmp_path, net):
    whole = write_caffemodel(tmp_path / "vgg.caffemodel", vgg_layers(net), v1=True).read_bytes()
    cut = tmp_path / "cut.caffemodel"
    for n in (0, 1, 5, 40, len(whole) // 3, len(whole) // 2, len(whole) - 100, len(whole) - 1):
        cut.write_bytes(whole[:n])
        with pytest.raises(ModelFileError) as err:
            caffe_vgg16(cut, width=WIDTH)
        one_line(err, cut)
    cut.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(ModelFileError, match="is not a readable caffemodel .*runs past|needs .* bytes"):
        read_caffemodel(cut)


@pytest.mark.parametrize("content", [b"name: 'VGG_ILSVRC_16_layers'\nlayers { }\n", b"PK\x03\x04" + bytes(60),
                                     bytes(range(256)) * 4, b""],
                         ids=["prototxt", "zip", "noise", "empty"])
def test_other_kinds_of_file_are_refused_in_one_line(tmp_path, content):
    path = tmp_path / "x.caffemodel"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match="caffemodel") as err:
        read_caffemodel(path)
    one_line(err, path)
    with pytest.raises(ModelFileError, match="does not exist"):
        read_caffemodel(tmp_path / "absent.caffemodel")


def test_missing_layers_wrong_shapes_and_short_blobs_are_named(tmp_path, net):
    path = tmp_path / "vgg.caffemodel"
    layers = vgg_layers(net)
    write_caffemodel(path, {k: v for k, v in layers.items() if k != "fc7"}, v1=True)
    with pytest.raises(ModelFileError, match="not a Caffe VGG16: no weights for fc7") as err:
        caffe_vgg16(path, width=WIDTH)
    one_line(err, path)
    write_caffemodel(path, layers, v1=False)
    with pytest.raises(ModelFileError, match=r"conv1_1 weight has shape \(4, 3, 3, 3\), expected \(8, 3, 3, 3\)"):
        caffe_vgg16(path, width=WIDTH * 2)  # a net twice as wide
    write_caffemodel(path, {**layers, "conv3_2": layers["conv3_2"][:1]}, v1=True)
    with pytest.raises(ModelFileError, match="layer conv3_2 has 1 blobs, expected 2"):
        caffe_vgg16(path, width=WIDTH)
    # A blob whose shape promises more values than it holds.
    bad = _message(7, _message(1, _varint(2) + _varint(3))) + _message(5, np.zeros(5, "<f4").tobytes())
    path.write_bytes(_message(100, _message(1, b"conv1_1") + _message(7, bad)))
    with pytest.raises(ModelFileError, match=r"layer conv1_1 blob 0 holds 5 values but its shape \(2, 3\) needs 6"):
        read_caffemodel(path)


# ---------------------------------------------------------------- the backbone record and its FCN


@pytest.fixture
def slim_caffe_weights(tmp_path, net, monkeypatch) -> Path:
    """downloads/ holding the slim net's caffemodel under the real file name, accepted as the real file."""
    archives = tmp_path / "downloads"
    archives.mkdir()
    real = backbone.CAFFE_WEIGHTS["vgg16"]
    write_caffemodel(archives / real.filename, vgg_layers(net), v1=True)
    monkeypatch.setitem(backbone.CAFFE_WEIGHTS, "vgg16", Archive(real.name, "http://127.0.0.1:9/unreachable",
                                                                 real.filename, None, None, real.extracts_to))
    monkeypatch.setattr(backbone, "RECORDED_CHECKSUMS", tmp_path / "recorded.json")
    monkeypatch.setitem(backbone.CAFFE_READERS, "vgg16", lambda path: caffe_vgg16(path, width=WIDTH))
    return archives


def test_fcn_on_the_caffe_record_scores_as_on_the_same_weights_given_directly(tmp_path, net, slim_caffe_weights):
    view = {"scale": "paper", "weights": "caffe"}
    summary = make_backbone(view, "vgg16", tmp_path / "vgg16.pt", progress=False, archives=slim_caffe_weights)
    assert summary["source"] == "Caffe VGG_ILSVRC_16_layers.caffemodel (BGR, 0-255, mean pixel)"
    assert (tmp_path / "recorded.json").exists()  # no published checksum: the first copy is pinned
    record = backbone.load_record(tmp_path / "vgg16.pt", "vgg16")
    pre = Preprocess.from_dict(record["preprocess"])
    assert pre == CAFFE_VGG16 and pre.channel_order == "BGR" and pre.scale == 1.0

    image = np.random.default_rng(0).integers(0, 256, size=(67, 93, 3), dtype=np.uint8)  # odd sizes
    x = pre(image)[None]  # (1, 3, 67, 93)
    bgr = torch.from_numpy(image[..., ::-1].copy()).permute(2, 0, 1).float()
    torch.testing.assert_close(x[0], bgr - torch.tensor(CAFFE_VGG16.mean).view(3, 1, 1))

    scores = []
    for trunk in (record["trunk"], convolutionalise(net)):  # caffe-read, and the weights as a state dict
        fcn = build_model("fcn32s", n_classes=21, width=WIDTH)
        assert sorted(transplant(trunk, fcn)) == sorted(trunk)
        torch.manual_seed(1)  # the same score_fr in both (it starts at zero, which would hide any difference)
        torch.nn.init.normal_(fcn.score_fr.weight, std=0.1)
        with torch.no_grad():
            scores.append(fcn.eval()(x))
    assert scores[0].shape == (1, 21, 67, 93) and scores[0].std() > 0
    assert torch.equal(scores[0], scores[1])


def test_weights_that_do_not_fit_the_net_are_refused_in_one_line(tmp_path, capsys):
    # GoogLeNet has no Caffe weights of its layout, AlexNet (CaffeNet) no torchvision weights.
    for arch, weights, allowed in (("googlenet", "caffe", "IMAGENET1K_V1"), ("alexnet", "IMAGENET1K_V1", "caffe")):
        with pytest.raises(ConfigError, match=f"^backbone.paper.weights.{arch} = {weights} is not allowed "
                                              f".*; use {allowed}$"):
            make_backbone({"scale": "paper", "weights": weights}, arch, tmp_path / "a.pt", archives=tmp_path)
    view = tmp_path / "view.json"
    view.write_text('{"scale": "paper", "weights": "caffe"}')
    spec = importlib.util.spec_from_file_location("stage_backbone", Path(__file__).parents[1] / "stages/backbone.py")
    stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage)
    argv = ["googlenet", "--view", str(view), "--out", str(tmp_path / "a.pt"), "--archives", str(tmp_path)]
    assert cli.run(stage.main, argv) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "a.pt").exists()
    assert cli.run(stage.main, ["vgg16", *argv[1:-2]]) == 2  # without --archives: where would the caffemodel be?
    err = capsys.readouterr().err.strip()
    assert err == "error: backbone.paper.weights = caffe needs the download folder: pass --archives"


def test_a_placed_file_of_the_wrong_size_is_refused_before_reading(tmp_path):
    real = backbone.CAFFE_WEIGHTS["vgg16"]
    (tmp_path / real.filename).write_bytes(b"\x00" * 10)
    with pytest.raises(DownloadError, match=f"not the expected file .size 10 bytes, expected {real.size}"):
        backbone.caffe("vgg16", tmp_path, progress=False)


def test_params_accept_caffe_per_architecture_and_name_the_allowed_values(tmp_path):
    assert build(PretrainPaper, {"weights": {"vgg16": "caffe"}}).weights == {"vgg16": "caffe"}
    with pytest.raises(ConfigError, match="IMAGENET1K_V1"):
        build(PretrainPaper, {"weights": {"vgg16": "CAFFE"}})
    # The params stage refuses caffe for an architecture without Caffe weights, before any stage runs.
    import yaml

    from segcore.config.params import load_params
    from segcore.pipeline.views import all_views

    root = Path(__file__).resolve().parents[1]
    data = yaml.safe_load((root / "params.yaml").read_text().replace("1e-4", "0.0001").replace("5e-4", "0.0005"))
    data.update(profile="paper")
    data["backbone"]["paper"]["weights"]["vgg16"] = "caffe"
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(data))
    assert all_views(load_params(tmp_path / "p.yaml"))["backbone/vgg16.json"]["weights"] == "caffe"
    data["backbone"]["paper"]["weights"]["googlenet"] = "caffe"
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="backbone.paper.weights.googlenet = caffe is not allowed"):
        all_views(load_params(tmp_path / "p.yaml"))
