"""The paper profile as a pipeline: the whole DAG with `profile: paper, data: twin`, a few steps per net.

Everything the paper profile does runs here: the full-size nets (VGG16 at width 1, U-Net at 64 ... 1024
channels), SGD with the paper's momentum, one image per forward pass accumulated into a minibatch,
torchvision's ImageNet weights through their loader, the paper's 20 timing trials, the VOC test
submission path. Only params shrink it (tiny twins, two steps per schedule, a minibatch of two,
small timing and tile sizes); no code path the paper profile would not take. The ImageNet weights
are random: state dicts placed under the file names torchvision caches (VGG16, GoogLeNet), and a
CaffeNet caffemodel in BVLC's 2014 layout placed in downloads/ and pinned (AlexNet), so nothing is
downloaded.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from benchmarks.pipeline import timed_repro
from test_pipeline import (ALWAYS, BACKBONES, DATA, DVC, EVAL, RELEASED_STAGES, TRAIN, _env, _ran, _run, make_repo,
                           tiny_params)

pytestmark = pytest.mark.slow

TABLES = ("table1.md", "table2.md", "table3.md", "table4.md", "table5.md", "unet.md")


def paper_params() -> dict:
    """The shipped paper recipe, with the twins, step counts, minibatch and sizes cut down by params only."""
    p = tiny_params()  # the smoke half is unread; its twin sizes are the tiny ones
    p.update(profile="paper", data="twin")
    paper = p["train"]["paper"]
    # One step of a minibatch of two, one image per forward pass: the accumulation the paper's 20 use.
    paper.update(schedules=dict.fromkeys(paper["schedules"], 1), batch_size=2, val_every=1, checkpoint_every=1)
    assert paper["images_per_forward"] == 1 and paper["optimizer"] == "sgd"  # the recipe under test
    unet = p["unet"]["paper"]
    unet.update(schedules=dict.fromkeys(unet["schedules"], 1), val_every=1, checkpoint_every=1, eval_tile=36)
    assert p["net"]["paper"]["width"] == 1.0 and unet["width"] == 1.0  # full-size nets
    p["timing"].update(size=64, warmup=0)  # paper_trials stays the paper's 20
    # None of the authors' released nets, as shipped: at width 1 their stand-ins would be 0.2-1.1 GB each, and
    # tests/test_pipeline.py converts and scores them at the smoke width. Their stages still run and say so.
    p["released"]["nets"]["twin"] = []
    return p


def _results(work: Path, name: str) -> dict:
    """A net's scores (metrics/) joined with its record (eval/<name>/record.json)."""
    from segcore.report import results

    return results.read(work / "metrics" / f"{name}.json", work / "eval" / name / results.RECORD)


def place_imagenet_weights(torch_home: Path) -> None:
    """Random weights in torchvision's layout, under the names its loader finds in the cache (no download).
    Not AlexNet's: ours is CaffeNet, which starts from place_caffenet's file."""
    import torchvision

    checkpoints = torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    builders = {"VGG16_Weights": torchvision.models.vgg16,
                "GoogLeNet_Weights": lambda: torchvision.models.googlenet(aux_logits=True, init_weights=False)}
    gen = torch.Generator().manual_seed(0)
    for enum, build in builders.items():
        with torch.device("meta"):  # shapes only: filling 138M parameters twice would cost seconds
            shapes = {k: v.shape for k, v in build().state_dict().items()}
        state = {k: _random(k, s, gen) for k, s in shapes.items()}
        url = getattr(torchvision.models, enum).IMAGENET1K_V1.url
        torch.save(state, checkpoints / Path(url).name)


def place_caffenet(downloads: Path, record_file: Path) -> None:
    """A random full-size CaffeNet as BVLC's bvlc_reference_caffenet.caffemodel (V1 layers, legacy 4-D shapes,
    ~240 MB) in ``downloads``, its size + sha256 pinned in ``record_file`` as a first run leaves them: a
    pinned copy is checked against the pin, so BVLC's sha1 (which vets only an unpinned copy) is not asked."""
    from caffe_writer import write_caffemodel  # tests/caffe_writer.py
    from test_caffe_reader import caffenet_layers

    from segcore.data.download import verify_or_record
    from segcore.models.alexnet import AlexNetClassifier
    from segcore.models.backbone import CAFFE_WEIGHTS

    gen = torch.Generator().manual_seed(0)
    with torch.device("meta"):  # shapes only, then one random tensor each: no initialisation overwritten
        net = AlexNetClassifier()  # ImageNet's 1000 classes, width 1
    net.load_state_dict({k: _random(k, v.shape, gen) for k, v in net.state_dict().items()}, assign=True)
    layers = caffenet_layers(net)
    del net  # hold one copy of the 61M weights, not two, while the file is written
    downloads.mkdir(parents=True, exist_ok=True)
    path = write_caffemodel(downloads / CAFFE_WEIGHTS["alexnet"].filename, layers, v1=True)
    verify_or_record(path, record_file)


def _random(key: str, shape: torch.Size, gen: torch.Generator) -> torch.Tensor:
    if not len(shape):  # batch-norm's step counter
        return torch.zeros((), dtype=torch.long)
    if key.endswith(("running_var", "bn.weight")):  # positive, near 1: a trained net's batch-norm scale
        return 1 + 0.01 * torch.rand(shape, generator=gen)
    return 0.01 * torch.randn(shape, generator=gen)


@pytest.fixture(scope="module")
def paper_repo(tmp_path_factory) -> Iterator[tuple[Path, dict]]:
    tmp = tmp_path_factory.mktemp("paper")
    env = _env(tmp)
    env["TORCH_HOME"] = str(tmp / "torch-home")
    env.pop("OMP_NUM_THREADS")  # full-size convolutions want both cores
    place_imagenet_weights(tmp / "torch-home")
    work, env = make_repo(tmp, paper_params(), env)
    place_caffenet(work / "downloads", work / "segcore" / "data" / "recorded_checksums.json")  # not in git
    _run(["git", "commit", "-qam", "pin the stand-in CaffeNet"], work, env)  # as a user commits a first pin
    # The stages import this repo's segcore, whose pin file holds that pin, not the checkout's (editable install).
    env["PYTHONPATH"] = str(work)
    # 17 full-size nets are 9 GB of model files: link them into DVC's cache rather than copy them, as a
    # paper-profile user would (docs/paper-profile.md); DVC's behaviour is otherwise the same.
    _run([DVC, "config", "cache.type", "hardlink,copy"], work, env)
    yield work, env
    shutil.rmtree(tmp, ignore_errors=True)  # 9 GB of full-size models: gone before the next module runs


def test_paper_profile_runs_the_whole_dag_on_full_size_nets(paper_repo):
    work, env = paper_repo
    start = time.perf_counter()
    log, times = timed_repro(work, env)
    print(f"\npaper-profile dry run: {time.perf_counter() - start:.0f} s; slowest stages: "
          + ", ".join(f"{k} {v:.0f} s" for k, v in sorted(times.items(), key=lambda kv: -kv[1])[:8]))
    assert _ran(log) == {"params", *ALWAYS, *DATA, *BACKBONES, "timing", "report", *TRAIN, *EVAL,
                         *RELEASED_STAGES}
    # On this CPU every full-size net warns, after its first step, how long its schedule would take.
    assert log.count("is training on the CPU: its first step took") == len(TRAIN), log[-3000:]
    reports = work / "reports"
    for name in TABLES:
        text = (reports / name).read_text()
        assert "| profile " in text and "paper" in text, name
    # Full-size nets, the paper's recipe and batch handling, as the model files recorded them.
    record = torch.load(work / "models" / "fcn8s" / "model.pt", weights_only=True)
    assert record["width"] == 1.0 and record["arch"] == "fcn8s"
    assert sum(v.numel() for v in record["state_dict"].values()) > 134_000_000
    view = json.loads((work / "resolved" / "params" / "train" / "fcn16s.json").read_text())
    assert view["spec"]["optimizer"] == "sgd" and view["spec"]["images_per_forward"] == 1
    assert view["spec"]["lr"] == pytest.approx(1e-4 * 0.01)  # the skip stage's rate: lr / 100
    assert {t["trials"] for t in _results(work, "timing").values() if isinstance(t, dict)} == {20}
    # Paper-profile NYUD and SIFT Flow train on every training image, and the notes say so.
    for net, page in (("nyud-rgb", "table4.md"), ("sift-fcn16s", "table5.md")):
        data = _results(work, net)["training_data"]
        assert data["val_held_out"] is False
        assert f"trained on {data['images']} train images (validation curves: {data['val_images']} of them, " \
               f"not held out)" in (reports / page).read_text()
    # The evaluation-server archives a real run submits, one per VOC test year, with every test image.
    import tarfile

    for split in ("voc2011_test", "voc2012_test"):
        with tarfile.open(work / "eval" / "fcn8s" / f"{split}_submission.tar.gz") as tar:
            names = tar.getnames()
        scored = _results(work, "fcn8s")[split]
        assert len([n for n in names if n.endswith(".png")]) == scored["images"] == scored["submitted_images"] > 0
    # The backbone the FCNs started from is named; FCN-AlexNet's is the CaffeNet file, read and pinned.
    assert "torchvision VGG16_Weights.IMAGENET1K_V1" in (reports / "table2.md").read_text()
    from segcore.models.backbone import load_record

    source = load_record(work / "models" / "backbone" / "alexnet.pt", "alexnet")["source"]
    assert source == "Caffe bvlc_reference_caffenet.caffemodel (BGR, 0-255, mean pixel)"
