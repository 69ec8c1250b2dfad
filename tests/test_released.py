"""The FCN authors' released nets: the catalogue, the strict loader, and the command line.

Each released layout is written by tests/caffe_writer.py from a registry net built directly at
1/16 width with random weights; converting the file must give back that net (same weights, same
output) with the reference's preprocessing, and every malformed file must be refused in one line
naming the layer, with nothing written.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from segcore.config.schema import ConfigError
from segcore.data.preprocess import CAFFE_VGG16, Preprocess
from segcore.data.specs import DATASETS, Inputs
from segcore.eval.predict import accumulate_heads
from segcore.models.modelfile import ModelFileError, load_model
from segcore.models.registry import MODELS, build_model
from segcore.models.released import RELEASED, convert, released_net, write_model_file
from segcore.models.upsampling import FixedBilinearUpsampling, bilinear_ramp
from segcore.train.experiments import EXPERIMENTS

from caffe_writer import released_layers, write_net, write_released  # tests/caffe_writer.py

WIDTH = 1 / 16  # VGG conv 4..32 channels, fc 256: every layer name and layout of the real nets, tiny
ROOT = Path(__file__).resolve().parents[1]

# The reference's input conventions, typed in from its *_layers.py (not read from segcore).
VOC = ("BGR", (104.00699, 116.66877, 122.67892))
NYUD_COLOR = ("BGR", (116.190, 97.203, 92.318))
NYUD_HHA = ("RGB", (132.431, 94.076, 118.477))  # the PNG's channel order, unflipped
SIFT = ("BGR", (114.578, 115.294, 108.353))
EXPECTED = {  # name: (arch, n_classes, in_channels, rgb convention, hha convention)
    "voc-fcn32s": ("fcn32s", 21, 3, VOC, None),
    "voc-fcn16s": ("fcn16s", 21, 3, VOC, None),
    "voc-fcn8s": ("fcn8s", 21, 3, VOC, None),
    "voc-fcn8s-atonce": ("fcn8s-atonce", 21, 3, VOC, None),
    "voc-fcn-alexnet": ("fcn-alexnet", 21, 3, VOC, None),
    "nyud-fcn32s-color": ("fcn32s", 40, 3, NYUD_COLOR, None),
    "nyud-fcn32s-hha": ("fcn32s", 40, 3, NYUD_COLOR, NYUD_HHA),
    "nyud-fcn32s-color-hha": ("fcn32s-rgbhha", 40, 6, NYUD_COLOR, NYUD_HHA),
    "siftflow-fcn32s": ("fcn32s", {"sem": 33, "geo": 3}, 3, SIFT, None),
    "siftflow-fcn16s": ("fcn16s", {"sem": 33, "geo": 3}, 3, SIFT, None),
    "siftflow-fcn8s": ("fcn8s", {"sem": 33, "geo": 3}, 3, SIFT, None),
}


def caffe_record(convention: tuple[str, tuple[float, ...]] | None) -> dict | None:
    return None if convention is None else Preprocess(convention[0], 1.0, convention[1], (1.0, 1.0, 1.0)).to_dict()


def random_net(name: str, seed: int = 0, **changes) -> nn.Module:
    """Registry net of released net ``name`` at WIDTH, every learnable weight random (score layers too,
    which start at zero), the fixed upsampling left bilinear."""
    net = released_net(name)
    kwargs = {"n_classes": net.n_classes, "width": WIDTH, "in_channels": net.in_channels, **changes}
    torch.manual_seed(seed)
    model = build_model(net.arch, **kwargs)
    with torch.no_grad():
        for module in model.modules():
            if type(module) is nn.Conv2d:
                fan_in = module.weight[0].numel()
                module.weight.normal_(0, (2 / fan_in) ** 0.5)
                module.bias.normal_(0, 0.1)
    return model.eval()


def one_line(err: pytest.ExceptionInfo, *names: str) -> str:
    message = str(err.value)
    assert "\n" not in message, message
    for name in names:
        assert name in message, message
    return message


@pytest.fixture(scope="module", autouse=True)
def _threads(one_thread):
    """Tiny convs run fastest on one thread (conftest)."""


# ---------------------------------------------------------------- the catalogue


def test_the_catalogue_names_the_eleven_released_nets():
    assert list(RELEASED) == list(EXPECTED)
    splits = {d: {s for e in EXPERIMENTS.values() if e.dataset == d for s in (e.val_split, *e.test_splits)}
              for d in DATASETS}
    for name, net in RELEASED.items():
        arch, n_classes, channels, rgb, hha = EXPECTED[name]
        assert (net.name, net.arch, net.n_classes, net.in_channels) == (name, arch, n_classes, channels)
        assert net.arch in MODELS and net.dataset in DATASETS and net.split in splits[net.dataset], name
        assert net.url == "http://dl.caffe.berkeleyvision.org/" + net.file and net.file.endswith(".caffemodel")
        assert net.preprocess.to_dict() == caffe_record(rgb) and net.hha_preprocess == (
            None if hha is None else Preprocess.from_dict(caffe_record(hha)))
        assert net.reference_note
    assert {n: RELEASED[n].reference for n in RELEASED if n.startswith("voc")} == {
        "voc-fcn32s": 63.6, "voc-fcn16s": 65.0, "voc-fcn8s": 65.5, "voc-fcn8s-atonce": 65.4, "voc-fcn-alexnet": 48.0}
    assert all(RELEASED[n].reference is None for n in RELEASED if not n.startswith("voc"))
    assert CAFFE_VGG16.to_dict() == caffe_record(VOC)
    with pytest.raises(ModelFileError) as err:
        released_net("voc-fcn4s")
    one_line(err, "voc-fcn4s", "voc-fcn8s", "siftflow-fcn8s")


@pytest.mark.parametrize("k", [4, 16, 32, 63, 64])
def test_bilinear_taps_are_dyadic_so_float32_comparison_is_exact(k):
    u = bilinear_ramp(k)  # float64
    assert torch.all(torch.ldexp(u, torch.tensor(6)) % 1 == 0)  # multiples of 1/64: exact in 7 bits
    kernel = u[:, None] * u[None, :]
    assert torch.equal(kernel.float().double(), kernel)  # float32 holds every product exactly
    # The reference's surgery.upsample_filt, in numpy float64.
    factor = (k + 1) // 2
    center = factor - 1 if k % 2 == 1 else factor - 0.5
    og = np.ogrid[:k, :k]
    reference = (1 - abs(og[0] - center) / factor) * (1 - abs(og[1] - center) / factor)
    np.testing.assert_array_equal(reference.astype(np.float32), kernel.float().numpy())


# ---------------------------------------------------------------- every net converts exactly


@pytest.mark.parametrize("name", list(RELEASED))
def test_a_released_file_converts_to_the_net_that_wrote_it(tmp_path, name):
    direct = random_net(name, seed=len(name))
    path = write_released(tmp_path / RELEASED[name].file, name, direct)
    model, record = convert(path, name, width=WIDTH)
    assert not model.training
    want = direct.state_dict()
    got = model.state_dict()
    assert list(got) == list(want) and all(torch.equal(got[k], want[k]) for k in want)
    x = torch.randn(1, RELEASED[name].in_channels, 37, 45) * 50  # odd size, on the 0..255 scale
    with torch.no_grad():
        expected = direct(x)
        assert expected.shape[-2:] == (37, 45) and expected.abs().max() > 0
        assert torch.equal(model(x), expected)
    arch, n_classes, channels, rgb, hha = EXPECTED[name]
    assert record["preprocess"] == caffe_record(rgb) and record["hha_preprocess"] == caffe_record(hha)
    assert Inputs.from_record(record) == Inputs(RELEASED[name].preprocess, RELEASED[name].hha_preprocess)
    assert {k: record[k] for k in ("arch", "n_classes", "width", "learn_upsampling", "in_channels")} == {
        "arch": arch, "n_classes": n_classes, "width": WIDTH, "learn_upsampling": False, "in_channels": channels}
    assert record["released"]["net"] == name and record["released"]["file"] == RELEASED[name].file
    assert len(record["released"]["sha256"]) == 64 and "state_dict" not in record
    # The model file: load_model rebuilds the same net.
    out = tmp_path / "model.pt"
    assert write_model_file(path, name, out, width=WIDTH, sha256="ab" * 32)["released"]["sha256"] == "ab" * 32
    loaded, preprocess, saved = load_model(out)
    assert preprocess == RELEASED[name].preprocess and saved["dataset"] == RELEASED[name].dataset
    assert saved["modality"] == RELEASED[name].modality
    with torch.no_grad():
        assert torch.equal(loaded(x), expected)


def test_the_fixed_upsampling_is_stored_in_our_form_and_the_fused_upscore_feeds_both_streams(tmp_path):
    name = "nyud-fcn32s-color-hha"
    direct = random_net(name)
    layers = released_layers(name, direct)
    weighted = [n for n, blobs in layers.items() if blobs]
    assert len(weighted) == 33 and weighted[0] == "conv1_1color" and "score_frhha" in weighted
    assert [n for n in weighted if "upscore" in n] == ["upscore"] and layers["upscore"][0].shape == (40, 40, 64, 64)
    model, _ = convert(write_net(tmp_path / "f.caffemodel", layers), name, width=WIDTH)
    for up in (model.rgb.upscore, model.hha.upscore):
        assert isinstance(up, FixedBilinearUpsampling) and up.weight.shape == (40, 1, 64, 64)
        assert not up.weight.requires_grad and up.usable("matmul")  # still exactly bilinear
    assert model.rgb.upscore.weight.data_ptr() != model.hha.upscore.weight.data_ptr()


def test_a_converted_file_is_scored_as_the_net_that_wrote_it(tmp_path):
    name = "voc-fcn8s"
    direct = random_net(name, seed=3)
    with torch.no_grad():  # quiet the coarse path: random padding-borne scores would win every pixel
        direct.score_fr.weight.mul_(0.01)
        for layer in ("score_fr", "score_pool4", "score_pool3"):
            getattr(direct, layer).bias.zero_()
    out = tmp_path / "model.pt"
    write_model_file(write_released(tmp_path / "f.caffemodel", name, direct), name, out, width=WIDTH)
    loaded, preprocess, record = load_model(out)
    rng = np.random.default_rng(0)
    images = []
    for i, (h, w) in enumerate([(41, 53), (37, 37), (50, 31)]):
        # 8 x 8 blocks: structure the skips pick up (noise averages out to one class everywhere)
        image = np.kron(rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3)), np.ones((8, 8, 1)))[:h, :w]
        label = torch.from_numpy(rng.integers(0, 21, (h, w))).long()
        label[:3] = 255  # ignored, as VOC's borders
        images.append((image.astype(np.uint8), label, f"img{i}"))
    ours = [(preprocess(im), label, sid) for im, label, sid in images]
    reference = [(CAFFE_VGG16(im), label, sid) for im, label, sid in images]
    got, kept = accumulate_heads(loaded, ours, record["n_classes"], keep=3, channels_last=False)
    want, kept_direct = accumulate_heads(direct, reference, 21, keep=3, channels_last=False)
    assert (got[0] == want[0]).all() and got[0].sum() == sum(int((lab != 255).sum()) for _, lab, _ in images)
    assert all((kept[k] == kept_direct[k]).all() for k in kept)
    assert (got[0].sum(0) > 0).sum() > 1  # the random net predicts more than one class


# ---------------------------------------------------------------- refusals: one line, the layer, nothing written


@pytest.fixture(scope="module")
def fcn8s_layers() -> dict[str, list[np.ndarray]]:
    return released_layers("voc-fcn8s", random_net("voc-fcn8s"))


def refused(tmp_path: Path, layers: dict, name: str = "voc-fcn8s", width: float = WIDTH) -> str:
    """The one-line refusal of converting ``layers`` as ``name``; checks that no model file appears."""
    path = write_net(tmp_path / "bad.caffemodel", layers)
    out = tmp_path / "out" / "model.pt"
    with pytest.raises(ModelFileError) as err:
        write_model_file(path, name, out, width=width)
    assert not out.parent.exists() or not any(out.parent.iterdir())
    return one_line(err, str(path))


def changed(layers: dict, layer: str, blobs: list | None) -> dict:
    """``layers`` with ``layer``'s blobs replaced (None: the layer removed)."""
    out = {k: [b.copy() for b in v] for k, v in layers.items() if k != layer or blobs is not None}
    if blobs is not None:
        out[layer] = blobs
    return out


def test_missing_and_extra_weighted_layers_are_named(tmp_path, fcn8s_layers):
    message = refused(tmp_path, changed(fcn8s_layers, "score_pool3", None))
    assert "no weights for score_pool3" in message
    extra = changed(fcn8s_layers, "score_pool2", fcn8s_layers["score_pool3"])
    assert "unexpected weighted layer(s) score_pool2" in refused(tmp_path, extra)
    # A weightless layer more or less is not a difference.
    fine = {k: v for k, v in fcn8s_layers.items() if k not in ("relu1_1", "loss")} | {"relu9": []}
    convert(write_net(tmp_path / "fine.caffemodel", fine), "voc-fcn8s", width=WIDTH)
    # Another net's file: VOC FCN-8s read as FCN-16s.
    assert "unexpected weighted layer(s) upscore_pool4, score_pool3, upscore8" in refused(
        tmp_path, fcn8s_layers, "voc-fcn16s")


def test_blob_counts_shapes_and_class_counts_are_named(tmp_path, fcn8s_layers):
    weight = fcn8s_layers["score_fr"][0]
    assert "score_fr has 1 blobs, expected 2 (weight and bias)" in refused(
        tmp_path, changed(fcn8s_layers, "score_fr", [weight]))
    up = fcn8s_layers["upscore8"][0]
    assert "upscore8 has 2 blobs, expected 1 (weight, no bias)" in refused(
        tmp_path, changed(fcn8s_layers, "upscore8", [up, up[0, 0, 0]]))
    assert "conv1_1 blob 0 has shape (4, 3, 3, 3), expected (8, 3, 3, 3) (voc-fcn8s at width 0.125)" in refused(
        tmp_path, fcn8s_layers, width=1 / 8)
    assert "conv3_2 blob 1 has shape (17,), expected (16,)" in refused(
        tmp_path, changed(fcn8s_layers, "conv3_2", [fcn8s_layers["conv3_2"][0], np.zeros(17, np.float32)]))
    twenty = released_layers("voc-fcn8s", random_net("voc-fcn8s", n_classes=20))
    assert "score_fr has 20 classes, voc-fcn8s has 21" in refused(tmp_path, twenty)
    four = random_net("siftflow-fcn8s", n_classes={"sem": 33, "geo": 4})
    assert "score_fr_geo has 4 classes, siftflow-fcn8s has 3 in its geo head" in refused(
        tmp_path, released_layers("siftflow-fcn8s", four), "siftflow-fcn8s")
    # Legacy leading ones (a V1-style (1, 1, 1, O) bias) are the same shape.
    legacy = changed(fcn8s_layers, "fc7", [fcn8s_layers["fc7"][0], fcn8s_layers["fc7"][1].reshape(1, 1, 1, -1)])
    convert(write_net(tmp_path / "legacy.caffemodel", legacy), "voc-fcn8s", width=WIDTH)


@pytest.mark.parametrize("where", ["diagonal", "off-diagonal"])
def test_a_learned_upsampling_kernel_is_refused(tmp_path, fcn8s_layers, where):
    up = fcn8s_layers["upscore8"][0].copy()
    up[2, 2 if where == "diagonal" else 5, 7, 7] += 0.01
    message = refused(tmp_path, changed(fcn8s_layers, "upscore8", [up]))
    assert ("upscore8: a learned (non-bilinear) kernel" in message
            and "only the reference's fixed bilinear upsampling is supported" in message)
    assert ("class 2's filter" if where == "diagonal" else "1 nonzero weights between different classes") in message


def test_the_at_once_scales_are_checked_not_loaded(tmp_path):
    name = "voc-fcn8s-atonce"
    layers = released_layers(name, random_net(name))
    assert layers["scale_pool4"][0].shape == (32,) and layers["scale_pool3"][0].shape == (16,)
    model, _ = convert(write_net(tmp_path / "ok.caffemodel", layers), name, width=WIDTH)
    assert not any("scale" in k for k in model.state_dict())
    for layer, value in (("scale_pool4", 0.02), ("scale_pool3", 1e-3)):
        blob = layers[layer][0].copy()
        blob[-1] = value
        message = refused(tmp_path, changed(layers, layer, [blob]), name)
        assert f"{layer} scales by" in message and f"{value:g}" in message
    assert "no weights for scale_pool4" in refused(tmp_path, changed(layers, "scale_pool4", None), name)
    assert "unexpected weighted layer(s) scale_pool4, scale_pool3" in refused(tmp_path, layers, "voc-fcn8s")


def test_other_refusals_are_one_line(tmp_path):
    with pytest.raises(ModelFileError) as err:
        convert(tmp_path / "absent.caffemodel", "voc-fcn8s")
    one_line(err, "absent.caffemodel", "does not exist")
    (tmp_path / "noise.caffemodel").write_bytes(bytes(range(256)) * 8)
    with pytest.raises(ModelFileError) as err:
        convert(tmp_path / "noise.caffemodel", "voc-fcn8s")
    one_line(err, "noise.caffemodel")
    with pytest.raises(ConfigError) as err:
        convert(tmp_path / "absent.caffemodel", "voc-fcn8s", width=0)
    one_line(err, "width")


# ---------------------------------------------------------------- the command line


def cli(path: Path, out: Path) -> subprocess.CompletedProcess:
    """``python -m segcore.released PATH --net voc-fcn8s --out OUT --width WIDTH``, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "segcore.released", str(path), "--net", "voc-fcn8s",
                           "--out", str(out), "--width", str(WIDTH)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_the_command_line_writes_the_model_file(tmp_path, fcn8s_layers):
    out = tmp_path / "voc-fcn8s.pt"
    done = cli(write_net(tmp_path / "fcn8s-heavy-pascal.caffemodel", fcn8s_layers), out)
    assert done.returncode == 0, done.stderr
    assert "voc-fcn8s" in done.stdout and load_model(out)[2]["released"]["file"] == "fcn8s-heavy-pascal.caffemodel"


def test_the_command_line_refuses_in_one_line_and_writes_nothing(tmp_path, fcn8s_layers):
    out = tmp_path / "never.pt"
    failed = cli(write_net(tmp_path / "bad.caffemodel", changed(fcn8s_layers, "upscore2", None)), out)
    lines = failed.stderr.strip().splitlines()
    assert failed.returncode == 2 and len(lines) == 1 and "Traceback" not in failed.stderr, failed.stderr
    assert lines[0].startswith("error: ") and "no weights for upscore2" in lines[0]
    assert not out.exists() and not out.with_name(out.name + ".tmp").exists()
