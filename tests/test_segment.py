"""python -m segcore.segment: label maps and overlays of a user's images, with every bad input refused
in one line before anything is written. Tiny random-weight nets: only the output contract matters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segcore.core.errors import UserError
from segcore.data import siftflow, voc
from segcore.data.isbi_dataset import GREY
from segcore.data.nyud_dataset import hha_preprocess
from segcore.data.preprocess import TORCHVISION_IMAGENET
from segcore.data.twin_voc import render_id
from segcore.eval.predict import predict
from segcore.models.modelfile import load_model, save_model
from segcore.models.registry import build_model
from segcore.pipeline.segment import PANEL, overlay, present, segment, swatch_box

ROOT = Path(__file__).resolve().parents[1]
TINY = 1 / 16
HHA = hha_preprocess(TORCHVISION_IMAGENET, (132.4, 94.1, 118.5))


def _model(path: Path, arch: str, n_classes, in_channels: int = 3, preprocess=TORCHVISION_IMAGENET,
           **meta) -> Path:
    torch.manual_seed(0)
    net = build_model(arch, n_classes=n_classes, width=TINY, in_channels=in_channels)
    save_model(path, net, arch=arch, n_classes=n_classes, width=TINY, learn_upsampling=False,
               preprocess=preprocess, in_channels=in_channels, **meta)
    return path


def _image(path: Path, h: int, w: int, seed: int = 0, mode: str = "RGB") -> Path:
    rgb = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(rgb).convert(mode).save(path)
    return path


@pytest.fixture(scope="module")
def fcn8s(tmp_path_factory) -> Path:
    return _model(tmp_path_factory.mktemp("fcn8s") / "model.pt", "fcn8s", voc.NUM_CLASSES, experiment="fcn8s")


@pytest.fixture(scope="module")
def rgbhha(tmp_path_factory) -> Path:
    return _model(tmp_path_factory.mktemp("rgbhha") / "model.pt", "fcn32s-rgbhha", 40, in_channels=6,
                  experiment="nyud-rgbhha", hha_preprocess=HHA.to_dict())


def _one_line_refusal(call, out: Path, match: str) -> None:
    with pytest.raises(UserError, match=match) as err:
        call()
    assert "\n" not in str(err.value)
    assert not out.exists()  # nothing written, not even the folder


def test_label_maps_and_overlays_of_odd_sized_images(fcn8s, tmp_path):
    images = [_image(tmp_path / "a.jpg", 29, 37), _image(tmp_path / "b.png", 41, 33, 1, "RGBA"),
              _image(tmp_path / "c.png", 17, 23, 2, "L")]
    lines: list[str] = []
    pairs = segment(fcn8s, images, tmp_path / "out", device="cpu", echo=lines.append)
    assert "device: CPU" in lines[0] and len(lines) == 1 + len(images)
    for image, (label_path, overlay_path), line in zip(images, pairs, lines[1:]):
        w, h = Image.open(image).size
        assert label_path == tmp_path / "out" / f"{image.stem}.png"
        label_png = Image.open(label_path)
        assert label_png.mode == "P" and label_png.size == (w, h)
        label = np.array(label_png)
        assert label.max() < voc.NUM_CLASSES
        ov = Image.open(overlay_path)
        assert ov.width > w and ov.height >= h  # the legend panel sits right of the image
        # The line lists exactly the classes present, as the legend does.
        assert line.endswith(": " + ", ".join(voc.CLASSES[c] for c in np.unique(label)))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "a.png", "a_overlay.png", "b.png", "b_overlay.png", "c.png", "c_overlay.png"]  # no temp files left


def test_the_legend_lists_exactly_the_classes_present():
    rgb = np.full((90, 40, 3), 200, np.uint8)  # taller than the legend
    label = np.zeros((90, 40), np.uint8)
    label[5:10, 5:20], label[20:, :] = 15, 7
    entries = present(label, voc.CLASSES)
    assert entries == [(0, "background"), (7, "car"), (15, "person")]
    image = np.array(overlay(rgb, label, entries))
    colours = np.array(voc.palette()).reshape(256, 3)
    for row, (c, _) in enumerate(entries):
        x0, y0, x1, y1 = swatch_box(row, left=40)
        assert tuple(image[(y0 + y1) // 2, (x0 + x1) // 2]) == tuple(colours[c])
    x0, y0, x1, y1 = swatch_box(len(entries), left=40)
    assert tuple(image[(y0 + y1) // 2, (x0 + x1) // 2]) == PANEL  # no fourth row
    # The image part is the image blended half and half with the class colours, at the image's size.
    assert tuple(image[25, 3]) == tuple(((rgb[25, 3] + colours[7]) / 2).round().astype(np.uint8))


def test_a_twin_image_is_segmented_as_the_evaluation_predicts_it(fcn8s, tmp_path):
    rgb, _, _ = render_id(5, "2008_000123", 32, 48)  # a synthetic VOC twin image
    path = tmp_path / "2008_000123.jpg"
    Image.fromarray(rgb).save(path, quality=95)
    (label_path, _), = segment(fcn8s, [path], tmp_path / "out", device="cpu", echo=lambda line: None)
    model, pre, _ = load_model(fcn8s)
    expected = predict(model, pre(voc.read_image(path))).numpy()
    assert np.array_equal(voc.read_label_png(label_path), expected)


def test_an_rgb_hha_net_needs_one_hha_image_per_image(rgbhha, tmp_path):
    image, hha = _image(tmp_path / "room.png", 27, 35), _image(tmp_path / "room_hha.png", 27, 35, 3)
    out = tmp_path / "out"
    _one_line_refusal(lambda: segment(rgbhha, [image], out, device="cpu"), out, "pass one --hha HHA_PNG per image")
    _one_line_refusal(lambda: segment(rgbhha, [image], out, hha=[hha, hha], device="cpu"), out,
                      "1 image.* but 2 --hha")
    small = _image(tmp_path / "small_hha.png", 20, 35, 4)
    _one_line_refusal(lambda: segment(rgbhha, [image], out, hha=[small], device="cpu"), out, "same size")
    (label_path, _), = segment(rgbhha, [image], out, hha=[hha], device="cpu", echo=lambda line: None)
    label = np.array(Image.open(label_path))
    assert label.shape == (27, 35) and label.max() < 40


def test_an_hha_net_reads_the_hha_image_and_draws_on_the_image(tmp_path):
    hha_net = _model(tmp_path / "hha.pt", "fcn32s", 40, experiment="nyud-hha", hha_preprocess=HHA.to_dict())
    hha = _image(tmp_path / "frame_hha.png", 26, 30, 5)
    maps = []
    for seed in (6, 7):  # two different images, one HHA: the same label map
        image = _image(tmp_path / f"frame{seed}.png", 26, 30, seed)
        _one_line_refusal(lambda: segment(hha_net, [image], tmp_path / "out"), tmp_path / "out", "reads HHA images")
        (label_path, _), = segment(hha_net, [image], tmp_path / f"out{seed}", hha=[hha], echo=lambda line: None)
        maps.append(np.array(Image.open(label_path)))
    assert maps[0].shape == (26, 30) and np.array_equal(*maps)


def test_hha_files_for_an_rgb_net_and_rgbd_nets_are_refused(fcn8s, tmp_path):
    image = _image(tmp_path / "a.png", 20, 20)
    out = tmp_path / "out"
    _one_line_refusal(lambda: segment(fcn8s, [image], out, hha=[image], device="cpu"), out, "--hha is for HHA")
    rgbd = _model(tmp_path / "rgbd.pt", "fcn32s", 40, in_channels=4, experiment="nyud-rgbd")
    _one_line_refusal(lambda: segment(rgbd, [image], out, device="cpu"), out, "reads RGB \\+ depth")


def test_bad_images_model_files_and_outputs_are_one_line_with_nothing_written(fcn8s, tmp_path):
    good = _image(tmp_path / "good.png", 20, 24)
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    out = tmp_path / "out"
    _one_line_refusal(lambda: segment(fcn8s, [good, tmp_path / "bad.jpg"], out), out, "bad.jpg is unreadable")
    _one_line_refusal(lambda: segment(fcn8s, [good, tmp_path / "gone.png"], out), out, "missing: .*gone.png")
    _one_line_refusal(lambda: segment(tmp_path / "none.pt", [good], out), out, "none.pt does not exist")
    _one_line_refusal(lambda: segment(fcn8s, [good, tmp_path / "x" / "good.jpg"], out), out, "same output good.png")
    _one_line_refusal(lambda: segment(fcn8s, [good], out, device="tpu"), out, "allowed: cpu, cuda, auto")
    with pytest.raises(UserError, match="overwrite the input"):
        segment(fcn8s, [good], tmp_path)  # good.png would be replaced by its own label map
    unnamed = _model(tmp_path / "unnamed.pt", "fcn8s", voc.NUM_CLASSES)
    _one_line_refusal(lambda: segment(unnamed, [good], out), out, "names no data set")


def test_a_released_record_two_heads_and_a_grey_unet(tmp_path):
    image = _image(tmp_path / "img.jpg", 31, 26)
    released = _model(tmp_path / "voc.pt", "fcn8s", voc.NUM_CLASSES, released={"net": "voc-fcn8s"},
                      dataset="voc", modality="rgb")  # as segcore.models.released writes it
    sift = _model(tmp_path / "sift.pt", "fcn16s", {"sem": 33, "geo": 3}, experiment="sift-fcn16s")
    unet = _model(tmp_path / "unet.pt", "unet", 2, in_channels=1, preprocess=GREY, experiment="unet-isbi")
    nets = ((released, 21, voc.CLASSES), (sift, 33, siftflow.CLASSES), (unet, 2, ("membrane", "cell")))
    for model, n, names in nets:
        lines: list[str] = []
        (label_path, _), = segment(model, [image], tmp_path / model.stem, device="cpu", echo=lines.append)
        label = np.array(Image.open(label_path))
        assert label.shape == (31, 26) and label.max() < n  # SIFT Flow: the semantic head only
        assert model != released or "(voc-fcn8s: VOC + SBD rgb, 21 classes)" in lines[0]
        assert lines[1].endswith(": " + ", ".join(names[c] for c in np.unique(label)))


def test_the_command_line_prints_the_device_and_one_line_per_image(fcn8s, tmp_path):
    images = [str(_image(tmp_path / f"{k}.png", 19 + k, 25)) for k in range(2)]
    run = subprocess.run([sys.executable, "-m", "segcore.segment", str(fcn8s), *images, "--out", str(tmp_path / "out"),
                          "--device", "cpu"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 3 and "device: CPU" in lines[0]
    assert (tmp_path / "out" / "1_overlay.png").exists()
    bad = subprocess.run([sys.executable, "-m", "segcore.segment", str(fcn8s), str(tmp_path / "no.png"),
                          "--out", str(tmp_path / "out2")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and bad.stderr.startswith("error: ")
    assert not (tmp_path / "out2").exists()


def test_a_converted_released_caffemodel_segments_an_image(tmp_path):
    from caffe_writer import write_released  # tests/caffe_writer.py
    from segcore.data.preprocess import CAFFE_VGG16
    from segcore.models.released import write_model_file

    torch.manual_seed(1)
    net = build_model("fcn8s", n_classes=voc.NUM_CLASSES, width=TINY).eval()
    caffemodel = write_released(tmp_path / "fcn8s-heavy-pascal.caffemodel", "voc-fcn8s", net)  # slimmed
    model_file = tmp_path / "voc-fcn8s.pt"
    write_model_file(caffemodel, "voc-fcn8s", model_file, width=TINY)
    image = _image(tmp_path / "street.jpg", 35, 43, 8)
    lines: list[str] = []
    (label_path, overlay_path), = segment(model_file, [image], tmp_path / "out", device="cpu", echo=lines.append)
    assert "(voc-fcn8s: VOC + SBD rgb, 21 classes)" in lines[0]
    # The released nets read Caffe's BGR minus the mean: the record says so, and the map is the net's own.
    expected = predict(net, CAFFE_VGG16(voc.read_image(image))).numpy()
    assert np.array_equal(voc.read_label_png(label_path), expected) and overlay_path.exists()
